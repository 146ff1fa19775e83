/*
 * merge.c -- mrtarchive merge OUT SHARD... (mrtarchive.h): archives made
 * apart, such as the shards of an ingest spread over many hosts
 * (archive-tool/mrtarchive-parallel), become one.
 *
 * What a merge keeps is what `add` would have made of the same files:
 *   - content is stored once: a shard's image whose SHA-256 (of the original
 *     file, table image_sha256) is in OUT already joins that image under its
 *     names, as add's duplicates do;
 *   - every name is kept, each with its own mtime; a name OUT has already is
 *     left alone when it shows the same content (so merging a shard twice
 *     changes nothing) and is a conflict when it does not: OUT's stays, the
 *     name is reported and the exit status is 1;
 *   - kept originals and recorded ingest errors come along (an error only
 *     for a name OUT does not store, and only if newer than OUT's own);
 *   - bitstreams are copied as they are, never re-encoded. Each must be
 *     readable (its header agreeing with its row) and made with a model
 *     that decodes OUT (its model set's own, a rate point, or retired
 *     weights kept for decoding): a shard with images of any other model is
 *     refused, its images listed, before anything is written.
 * The whole merge is one transaction of OUT: interrupted at any point (a
 * kill -9 included), OUT holds none of it or all of it. Shards are opened
 * read-only, each as its own connection (any number of them, no ATTACH
 * limit), in defensive mode: a shard is untrusted input.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mrtarchive.h"
#include "mrt.h"
#include "mrt_json.h"

#define MRT_APPLICATION_ID 1297240129 /* 'MRTA', sql/schema.sql */
#define LISTED_NAMES_MAX 10           /* names shown for a refused model */

/* One shard, open for reading. */
typedef struct shard {
    const char *path;
    sqlite3 *db;
    int has_sha, has_aliases, has_originals, has_errors; /* which tables it has */
    long images;
} shard;

/* What a merge did (all shards). */
typedef struct merge_counts {
    long stored, names, unchanged, conflicts, originals, errors;
    long long bytes;
} merge_counts;

static void shard_fail(const shard *s, const char *what) {
    msg("%s: %s: %s", s->path, what, s->db ? sqlite3_errmsg(s->db) : "out of memory");
}

static void shard_close(shard *s) {
    if (s->db) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(s->db);
    }
    s->db = NULL;
}

static sqlite3_stmt *shard_prep(shard *s, const char *sql) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        shard_fail(s, "not a readable mrt archive");
        return NULL;
    }
    return st;
}

/* The first column of a one-row query as an integer; -1 on failure. */
static long long shard_int(shard *s, const char *sql) {
    sqlite3_stmt *st = shard_prep(s, sql);
    long long v = -1;
    if (st && sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    else if (st)
        shard_fail(s, "not a readable mrt archive");
    sqlite3_finalize(st);
    return v;
}

/* Opens a shard read-only, in one read transaction (a snapshot, should an
 * add still be writing it), and checks it is an mrt archive this mrtarchive
 * knows. `out` is OUT's inode, to refuse merging OUT into itself. */
static int shard_open(shard *s, const char *path, const struct stat *out) {
    memset(s, 0, sizeof *s);
    s->path = path;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        msg("%s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        msg("%s: not an archive (not a regular file)", path);
        return -1;
    }
    if (out && sb.st_dev == out->st_dev && sb.st_ino == out->st_ino) {
        msg("%s: is the output archive itself", path);
        return -1;
    }
    char *uri = file_uri(path, "mode=ro");
    if (!uri || sqlite3_open_v2(uri, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) !=
                    SQLITE_OK) {
        free(uri);
        shard_fail(s, "cannot open");
        shard_close(s);
        return -1;
    }
    free(uri);
    sqlite3_busy_timeout(s->db, 30000);
    /* untrusted: no writes to the schema's internals, and no function with
     * side effects called from the shard's own views or triggers */
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        shard_fail(s, "cannot read");
        shard_close(s);
        return -1;
    }
    long long app = shard_int(s, "PRAGMA application_id");
    long long version = app < 0 ? -1 : shard_int(s, "PRAGMA user_version");
    if (version < 0) {
        shard_close(s);
        return -1;
    }
    if (app != MRT_APPLICATION_ID || version < 1) {
        msg("%s: not an mrt archive", path);
        shard_close(s);
        return -1;
    }
    if (version > 2) {
        msg("%s: archive schema version %lld is newer than this mrtarchive knows (1 and 2)", path,
            version);
        shard_close(s);
        return -1;
    }
    /* tables, not views of the same name: reading a table runs no SQL of the
     * shard's */
    sqlite3_stmt *st = shard_prep(s, "SELECT name FROM sqlite_schema WHERE type = 'table'");
    int has_images = 0;
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        if (!t) continue;
        has_images |= strcmp(t, "images") == 0;
        s->has_sha |= strcmp(t, "image_sha256") == 0;
        s->has_aliases |= strcmp(t, "aliases") == 0;
        s->has_originals |= strcmp(t, "originals") == 0;
        s->has_errors |= strcmp(t, "ingest_errors") == 0;
    }
    sqlite3_finalize(st);
    if (!has_images || (version == 2 && !s->has_aliases)) {
        msg("%s: not an mrt archive (no %s table)", path, has_images ? "aliases" : "images");
        shard_close(s);
        return -1;
    }
    s->images = (long)shard_int(s, "SELECT count(*) FROM images");
    if (s->images < 0) {
        shard_close(s);
        return -1;
    }
    return 0;
}

/* Whether OUT's model set decodes streams of the model whose fingerprint
 * is `hex`: its own model, a rate point beside it, or retired weights. */
static int decodable(const char *hex) { return model_for_hex(archive_models(), hex) != NULL; }

/* Refuses a shard holding images of a model OUT's models do not include,
 * listing them. 0: every model decodable. */
static int check_models(shard *s) {
    sqlite3_stmt *st = shard_prep(s, "SELECT model, count(*) FROM images GROUP BY model");
    if (!st) return -1;
    int bad = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *model = (const char *)sqlite3_column_text(st, 0);
        if (decodable(model)) continue;
        long count = (long)sqlite3_column_int64(st, 1);
        bad++;
        msg("%s: %ld image%s made with model %s, which is not among the models that decode the "
            "output (%s, the rate points beside it and the retired ones in its retired/); merge with --model naming that model, or "
            "re-encode the shard:",
            s->path, count, count == 1 ? " was" : "s were", model ? model : "(none)",
            mrt_model_set_path(archive_models()));
        sqlite3_stmt *names =
            shard_prep(s, "SELECT name FROM images WHERE model IS ?1 ORDER BY name LIMIT ?2");
        if (names) {
            sqlite3_bind_value(names, 1, sqlite3_column_value(st, 0));
            sqlite3_bind_int(names, 2, LISTED_NAMES_MAX);
        }
        while (names && sqlite3_step(names) == SQLITE_ROW) {
            fputs("  ", stderr);
            const char *name = (const char *)sqlite3_column_text(names, 0);
            put_shown(stderr, name ? name : "");
            fputc('\n', stderr);
        }
        sqlite3_finalize(names);
        if (count > LISTED_NAMES_MAX) fprintf(stderr, "  and %ld more\n", count - LISTED_NAMES_MAX);
    }
    if (rc != SQLITE_DONE) {
        shard_fail(s, "cannot read");
        bad++;
    }
    sqlite3_finalize(st);
    return bad ? -1 : 0;
}

/* ------------------------------------------------------------ the merge */

/* OUT's statements, prepared once for the whole merge. */
enum {
    Q_BY_SHA,      /* the image holding this content */
    Q_BY_NAME,     /* what a name shows: id, SHA-256, bitstream */
    Q_INS_IMAGE,
    Q_INS_SHA,
    Q_INS_ALIAS,
    Q_DEL_ERRORS,  /* a name stored: its recorded errors go */
    Q_HAS_ORIGINAL,
    Q_INS_ORIGINAL,
    Q_NEWER_ERROR, /* OUT has an error for the name as new or newer */
    Q_INS_ERROR,
    Q_COUNT
};
static const char *const out_sql[Q_COUNT] = {
    "SELECT id FROM image_sha256 WHERE sha256 = ?1 LIMIT 1",
    "SELECT n.id, h.sha256, i.data FROM names n JOIN images i ON i.id = n.id "
    "LEFT JOIN image_sha256 h ON h.id = i.id WHERE n.name = ?1",
    "INSERT INTO images(name, mtime, sz, format, width, height, model, rate_id, data) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    "INSERT INTO image_sha256(id, sha256) VALUES (?1, ?2)",
    "INSERT INTO aliases(name, image_id, mtime) VALUES (?1, ?2, ?3)",
    "DELETE FROM ingest_errors WHERE name = ?1",
    "SELECT 1 FROM originals WHERE id = ?1",
    "INSERT INTO originals(id, data) VALUES (?1, ?2)",
    "SELECT 1 FROM ingest_errors WHERE name = ?1 AND time >= ?2",
    "INSERT INTO ingest_errors(name, source, time, message) VALUES (?1, ?2, ?3, ?4)",
};
static sqlite3_stmt *out_st[Q_COUNT];

/* Runs a statement of OUT's to its end (no row wanted); 0 or -1. */
static int out_run(int q) {
    int rc = sqlite3_step(out_st[q]);
    sqlite3_reset(out_st[q]);
    sqlite3_clear_bindings(out_st[q]);
    if (rc != SQLITE_DONE) {
        db_fail("merge");
        return -1;
    }
    return 0;
}

static void out_done(int q) {
    sqlite3_reset(out_st[q]);
    sqlite3_clear_bindings(out_st[q]);
}

static void bind_mtime(sqlite3_stmt *st, int i, sqlite3_value *mtime) {
    if (sqlite3_value_type(mtime) == SQLITE_INTEGER) sqlite3_bind_value(st, i, mtime);
    else sqlite3_bind_null(st, i);
}

static int is_sha256_hex(const char *h) {
    if (!h || strlen(h) != 64) return 0;
    for (; *h; h++)
        if (!((*h >= '0' && *h <= '9') || (*h >= 'a' && *h <= 'f'))) return 0;
    return 1;
}

/* One name of a shard's image, with its mtime (a column of the shard's
 * current row: valid until its next step). */
typedef struct shard_name {
    char *name;
    sqlite3_value *mtime;
} shard_name;

/* Merges the image on `row` (the shard's images query) with its names.
 * 0, or -1: the merge stops (the shard is unusable or OUT failed). */
static int merge_image(shard *s, sqlite3_stmt *row, sqlite3_stmt *aliases, sqlite3_stmt *original,
                       merge_counts *c) {
    sqlite3_int64 shard_id = sqlite3_column_int64(row, 0);
    const char *own = (const char *)sqlite3_column_text(row, 1);
    const void *bits = sqlite3_column_blob(row, 9);
    size_t nbits = (size_t)sqlite3_column_bytes(row, 9);
    const char *sha = sqlite3_column_type(row, 10) == SQLITE_NULL
                          ? NULL
                          : (const char *)sqlite3_column_text(row, 10);
    const char *format = (const char *)sqlite3_column_text(row, 4);

    /* the row must be what add would have written */
    mrt_info hdr;
    char why[sizeof ((mrt_error *)0)->message + 80] = "";
    const char *model = sqlite3_column_type(row, 7) == SQLITE_TEXT
                            ? (const char *)sqlite3_column_text(row, 7)
                            : NULL;
    if (sqlite3_column_type(row, 1) != SQLITE_TEXT || !own || !name_is_safe(own))
        snprintf(why, sizeof why, "a name that is not a safe relative path");
    else if (sqlite3_column_type(row, 9) != SQLITE_BLOB || !bits)
        snprintf(why, sizeof why, "no bitstream");
    else if (row_header_check(bits, nbits, sqlite3_column_int(row, 5), sqlite3_column_int(row, 6),
                              model, sqlite3_column_int(row, 8), &hdr, why, sizeof why) != 0)
        ; /* why says it */
    else if (!decodable(model))
        snprintf(why, sizeof why, "its bitstream names model %s, not one of the output's", model);
    else if (sha && !is_sha256_hex(sha))
        snprintf(why, sizeof why, "its SHA-256 is not 64 lower-case hex digits");
    else if (!format || (strcmp(format, "png") != 0 && strcmp(format, "jpeg") != 0) ||
             sqlite3_column_type(row, 3) != SQLITE_INTEGER || sqlite3_column_int64(row, 3) < 0)
        snprintf(why, sizeof why, "its format or size is not a valid one");
    if (*why) {
        msg("%s: image %lld ('%s'): %s; nothing merged", s->path, (long long)shard_id,
            own ? own : "", why);
        return -1;
    }

    /* its names: its own, then its aliases */
    size_t nnames = 1, cap = 4;
    shard_name *names = malloc(cap * sizeof *names);
    int ret = -1;
    if (!names) goto oom;
    names[0].name = strdup(own);
    names[0].mtime = sqlite3_value_dup(sqlite3_column_value(row, 2));
    if (!names[0].name || !names[0].mtime) goto oom;
    if (aliases) {
        sqlite3_bind_int64(aliases, 1, shard_id);
        int rc;
        while ((rc = sqlite3_step(aliases)) == SQLITE_ROW) {
            const char *a = (const char *)sqlite3_column_text(aliases, 0);
            if (sqlite3_column_type(aliases, 0) != SQLITE_TEXT || !a || !name_is_safe(a)) {
                msg("%s: a further name of image %lld ('%s') is not a safe relative path; nothing "
                    "merged", s->path, (long long)shard_id, own);
                goto out;
            }
            if (nnames == cap) {
                shard_name *nn = realloc(names, (cap *= 2) * sizeof *names);
                if (!nn) goto oom;
                names = nn;
            }
            names[nnames].name = strdup(a);
            names[nnames].mtime = sqlite3_value_dup(sqlite3_column_value(aliases, 1));
            if (!names[nnames].name || !names[nnames].mtime) {
                free(names[nnames].name);
                sqlite3_value_free(names[nnames].mtime);
                goto oom;
            }
            nnames++;
        }
        sqlite3_reset(aliases);
        if (rc != SQLITE_DONE) {
            shard_fail(s, "cannot read");
            goto out;
        }
    }

    /* where its content is in OUT already: by SHA-256, or under one of its
     * names with the same content */
    sqlite3_int64 target = -1;
    if (sha) {
        sqlite3_bind_text(out_st[Q_BY_SHA], 1, sha, -1, SQLITE_STATIC);
        if (sqlite3_step(out_st[Q_BY_SHA]) == SQLITE_ROW)
            target = sqlite3_column_int64(out_st[Q_BY_SHA], 0);
        out_done(Q_BY_SHA);
    }
    size_t npending = 0;
    for (size_t i = 0; i < nnames; i++) {
        sqlite3_stmt *q = out_st[Q_BY_NAME];
        sqlite3_bind_text(q, 1, names[i].name, -1, SQLITE_STATIC);
        int rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
            const char *their = (const char *)sqlite3_column_text(q, 1);
            int same = sha && their ? strcmp(sha, their) == 0
                                    : (size_t)sqlite3_column_bytes(q, 2) == nbits &&
                                          memcmp(sqlite3_column_blob(q, 2), bits, nbits) == 0;
            if (same) {
                if (target < 0) target = sqlite3_column_int64(q, 0);
                c->unchanged++;
            } else {
                c->conflicts++;
                msg("%s: %s: the output has a different photo under this name (kept the "
                    "output's)", s->path, names[i].name);
            }
        } else if (rc == SQLITE_DONE) {
            shard_name t = names[npending]; /* the names to store come first */
            names[npending++] = names[i];
            names[i] = t;
        } else {
            out_done(Q_BY_NAME);
            db_fail("merge");
            goto out;
        }
        out_done(Q_BY_NAME);
    }

    /* the first new name stores the image (unless OUT has its content);
     * the others become further names of it */
    for (size_t i = 0; i < npending; i++) {
        if (target < 0) {
            sqlite3_stmt *ins = out_st[Q_INS_IMAGE];
            sqlite3_bind_text(ins, 1, names[i].name, -1, SQLITE_STATIC);
            bind_mtime(ins, 2, names[i].mtime);
            sqlite3_bind_int64(ins, 3, sqlite3_column_int64(row, 3));
            sqlite3_bind_text(ins, 4, format, -1, SQLITE_STATIC);
            sqlite3_bind_int(ins, 5, hdr.width);
            sqlite3_bind_int(ins, 6, hdr.height);
            sqlite3_bind_text(ins, 7, model, -1, SQLITE_STATIC);
            sqlite3_bind_int(ins, 8, hdr.rate_id);
            sqlite3_bind_blob64(ins, 9, bits, nbits, SQLITE_STATIC);
            if (out_run(Q_INS_IMAGE) != 0) goto out;
            target = sqlite3_last_insert_rowid(db);
            if (sha) {
                sqlite3_bind_int64(out_st[Q_INS_SHA], 1, target);
                sqlite3_bind_text(out_st[Q_INS_SHA], 2, sha, -1, SQLITE_STATIC);
                if (out_run(Q_INS_SHA) != 0) goto out;
            }
            c->stored++;
            c->bytes += (long long)nbits;
            info_msg("stored %s", names[i].name);
        } else {
            sqlite3_bind_text(out_st[Q_INS_ALIAS], 1, names[i].name, -1, SQLITE_STATIC);
            sqlite3_bind_int64(out_st[Q_INS_ALIAS], 2, target);
            bind_mtime(out_st[Q_INS_ALIAS], 3, names[i].mtime);
            if (out_run(Q_INS_ALIAS) != 0) goto out;
            c->names++;
            info_msg("stored %s (a further name of the same photo)", names[i].name);
        }
        sqlite3_bind_text(out_st[Q_DEL_ERRORS], 1, names[i].name, -1, SQLITE_STATIC);
        if (out_run(Q_DEL_ERRORS) != 0) goto out;
    }

    /* its kept original, if OUT's image has none */
    if (original && target >= 0) {
        sqlite3_bind_int64(out_st[Q_HAS_ORIGINAL], 1, target);
        int has = sqlite3_step(out_st[Q_HAS_ORIGINAL]) == SQLITE_ROW;
        out_done(Q_HAS_ORIGINAL);
        sqlite3_bind_int64(original, 1, shard_id);
        if (!has && sqlite3_step(original) == SQLITE_ROW &&
            sqlite3_column_type(original, 0) == SQLITE_BLOB) {
            sqlite3_bind_int64(out_st[Q_INS_ORIGINAL], 1, target);
            sqlite3_bind_value(out_st[Q_INS_ORIGINAL], 2, sqlite3_column_value(original, 0));
            if (out_run(Q_INS_ORIGINAL) != 0) {
                sqlite3_reset(original);
                goto out;
            }
            c->originals++;
        }
        sqlite3_reset(original);
    }
    ret = 0;
    goto out;
oom:
    msg("out of memory");
out:
    for (size_t i = 0; names && i < nnames; i++) {
        free(names[i].name);
        sqlite3_value_free(names[i].mtime);
    }
    free(names);
    return ret;
}

/* The shard's recorded ingest errors for names OUT does not store, unless
 * OUT has one as new for that name (the latest only, as add keeps them). */
static int merge_errors(shard *s, merge_counts *c) {
    if (!s->has_errors) return 0;
    sqlite3_stmt *st = shard_prep(s, "SELECT name, source, time, message FROM ingest_errors "
                                     "ORDER BY time, id");
    if (!st) return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        const char *message = (const char *)sqlite3_column_text(st, 3);
        if (!name || !message || sqlite3_column_type(st, 2) != SQLITE_INTEGER) continue;
        sqlite3_bind_text(out_st[Q_BY_NAME], 1, name, -1, SQLITE_STATIC);
        int stored = sqlite3_step(out_st[Q_BY_NAME]) == SQLITE_ROW;
        out_done(Q_BY_NAME);
        sqlite3_bind_text(out_st[Q_NEWER_ERROR], 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(out_st[Q_NEWER_ERROR], 2, sqlite3_column_int64(st, 2));
        int newer = sqlite3_step(out_st[Q_NEWER_ERROR]) == SQLITE_ROW;
        out_done(Q_NEWER_ERROR);
        if (stored || newer) continue;
        sqlite3_bind_text(out_st[Q_DEL_ERRORS], 1, name, -1, SQLITE_STATIC);
        if (out_run(Q_DEL_ERRORS) != 0) break;
        sqlite3_stmt *ins = out_st[Q_INS_ERROR];
        sqlite3_bind_text(ins, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_value(ins, 2, sqlite3_column_value(st, 1));
        sqlite3_bind_int64(ins, 3, sqlite3_column_int64(st, 2));
        sqlite3_bind_text(ins, 4, message, -1, SQLITE_STATIC);
        if (out_run(Q_INS_ERROR) != 0) break;
        c->errors++;
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW) return -1; /* OUT failed (its message is out) */
    if (rc != SQLITE_DONE) {
        shard_fail(s, "cannot read");
        return -1;
    }
    return 0;
}

static int merge_shard(shard *s, merge_counts *c, long *done) {
    char sql[400];
    snprintf(sql, sizeof sql,
             "SELECT i.id, i.name, i.mtime, i.sz, i.format, i.width, i.height, i.model, "
             "i.rate_id, i.data, %s FROM images i %s ORDER BY i.id",
             s->has_sha ? "h.sha256" : "NULL",
             s->has_sha ? "LEFT JOIN image_sha256 h ON h.id = i.id" : "");
    sqlite3_stmt *row = shard_prep(s, sql);
    sqlite3_stmt *aliases =
        s->has_aliases
            ? shard_prep(s, "SELECT name, mtime FROM aliases WHERE image_id = ?1 ORDER BY name")
            : NULL;
    sqlite3_stmt *original =
        s->has_originals ? shard_prep(s, "SELECT data FROM originals WHERE id = ?1") : NULL;
    int ok = row && (aliases || !s->has_aliases) && (original || !s->has_originals), rc = 0;
    merge_counts before = *c;
    while (ok && (rc = sqlite3_step(row)) == SQLITE_ROW) {
        ok = merge_image(s, row, aliases, original, c) == 0;
        progress_update(++*done, 0, c->bytes);
    }
    if (ok && rc != SQLITE_DONE) {
        shard_fail(s, "cannot read");
        ok = 0;
    }
    sqlite3_finalize(row);
    sqlite3_finalize(aliases);
    sqlite3_finalize(original);
    if (ok) ok = merge_errors(s, c) == 0;
    if (ok)
        info_msg("%s: %ld images: %ld stored, %ld further names, %ld unchanged, %ld conflicts, "
                 "%ld originals, %ld ingest errors", s->path, s->images, c->stored - before.stored,
                 c->names - before.names, c->unchanged - before.unchanged,
                 c->conflicts - before.conflicts, c->originals - before.originals,
                 c->errors - before.errors);
    return ok ? 0 : -1;
}

int cmd_merge(int argc, char **argv) {
    if (opt.archive_option) {
        /* `-f X merge A B` would make A the output: refused, not guessed */
        msg("merge writes the archive its first argument names (merge OUT SHARD...): -f is not "
            "used with it");
        return EXIT_FATAL;
    }
    if (argc < 2) {
        usage(stderr, "merge");
        return EXIT_FATAL;
    }
    opt.archive = argv[0];
    struct stat out_sb;
    int out_exists = stat(opt.archive, &out_sb) == 0;
    if (!archive_models()) return EXIT_FATAL;

    /* First every shard is checked, before OUT is touched: readable, an
     * archive of a known version, every image of a model OUT's set decodes. */
    int nshards = argc - 1, bad = 0;
    long total = 0;
    for (int i = 0; i < nshards; i++) {
        shard s;
        if (shard_open(&s, argv[1 + i], out_exists ? &out_sb : NULL) != 0) {
            bad++;
            continue;
        }
        if (check_models(&s) != 0) bad++;
        total += s.images;
        shard_close(&s);
    }
    if (bad) {
        msg("%d of %d shards refused: nothing merged", bad, nshards);
        return EXIT_FATAL;
    }

    if (open_archive(ARCHIVE_CREATE) != 0) return EXIT_FATAL;
    int ok = exec("BEGIN IMMEDIATE") == 0;
    for (int q = 0; ok && q < Q_COUNT; q++) ok = (out_st[q] = prep(out_sql[q])) != NULL;
    merge_counts c = {0};
    long done = 0;
    progress_begin("merge", "images", "stored", total, 0);
    for (int i = 0; ok && i < nshards; i++) {
        shard s;
        /* (re-checked: a shard may have changed since) */
        ok = shard_open(&s, argv[1 + i], NULL) == 0 && merge_shard(&s, &c, &done) == 0;
        shard_close(&s);
    }
    progress_end();
    for (int q = 0; q < Q_COUNT; q++) {
        sqlite3_finalize(out_st[q]);
        out_st[q] = NULL;
    }
    /* all of it or none of it: one commit */
    if (!ok || exec("COMMIT") != 0) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        msg("%s: nothing merged", opt.archive);
        return EXIT_FATAL;
    }
    if (opt.json) {
        mrt_json w;
        json_line_begin(&w);
        mrt_json_int(&w, "shards", nshards);
        mrt_json_int(&w, "stored", c.stored);
        mrt_json_int(&w, "names", c.names);
        mrt_json_int(&w, "unchanged", c.unchanged);
        mrt_json_int(&w, "conflicts", c.conflicts);
        mrt_json_int(&w, "originals", c.originals);
        mrt_json_int(&w, "ingest_errors", c.errors);
        json_line_end(&w);
    } else
        info_msg("%s: merged %d shard%s: %ld images stored, %ld further names, %ld unchanged, "
                 "%ld conflicts, %ld originals kept, %ld ingest errors carried", opt.archive,
                 nshards, nshards == 1 ? "" : "s", c.stored, c.names, c.unchanged, c.conflicts,
                 c.originals, c.errors);
    return c.conflicts ? EXIT_SOME : 0;
}
