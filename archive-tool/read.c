/*
 * read.c -- mrtarchive ls, info, stats and cat (mrtarchive.h), and the decode
 * and row helpers extract, export and verify share.
 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "mrtarchive.h"
#include "mrt.h"
#include "mrt_sha256.h"

/* ---------------------------------------------------- decode helpers */

/* Decoded PNG of image `id` (malloc'd); NULL with a message on failure. */
uint8_t *decode_id(sqlite3_int64 id, const char *name, size_t *len) {
    sqlite3_stmt *st = prep("SELECT data FROM images WHERE id = ?1");
    if (!st) return NULL;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        msg("%s: cannot decode: %s", name, sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return NULL;
    }
    const uint8_t *bits = sqlite3_column_blob(st, 0);
    size_t nbits = (size_t)sqlite3_column_bytes(st, 0);
    static const uint8_t nothing[1];
    mrt_model_set *set = archive_models();
    mrt_error err = {0};
    mrt_info info;
    const mrt_model *model = NULL;
    mrt_image img = {0};
    uint8_t *out = NULL;
    /* the header first: damage is reported as such, and its fingerprint
     * names the rate point that made the stream */
    if (set && (mrt_info_read(bits ? bits : nothing, nbits, &info, &err) != MRT_OK ||
                mrt_model_set_for_stream(set, info.fingerprint, &model, &err) != MRT_OK ||
                mrt_decode_scaled(model, bits ? bits : nothing, nbits, opt.scale ? opt.scale : 1,
                                  codec_threads(1), &img, &err) != MRT_OK ||
                mrt_image_write_png_memory(&img, &out, len, &err) != MRT_OK))
        msg("%s: cannot decode: %s", name, err.message);
    mrt_image_free(&img);
    sqlite3_finalize(st);
    return out;
}

/* The original bytes of image `id` kept by add --keep-original (malloc'd);
 * NULL with a message when none was kept. */
uint8_t *original_id(sqlite3_int64 id, const char *name, size_t *len) {
    sqlite3_stmt *st = prep("SELECT data FROM originals WHERE id = ?1");
    if (!st) return NULL;
    sqlite3_bind_int64(st, 1, id);
    uint8_t *out = NULL;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *len = (size_t)sqlite3_column_bytes(st, 0);
        out = malloc(*len ? *len : 1);
        if (out)
            memcpy(out, sqlite3_column_blob(st, 0), *len);
        else
            msg("%s: out of memory", name);
    } else if (rc == SQLITE_DONE)
        msg("%s: no original kept (add --keep-original stores it)", name);
    else
        msg("%s: cannot read the original: %s", name, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return out;
}

static sqlite3_int64 find_id(const char *name) {
    sqlite3_stmt *st = prep("SELECT id FROM names WHERE name = ?1");
    sqlite3_int64 id = -1;
    if (!st) return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return id;
}


/* Output names taken so far: an open-addressing set of strings it does
 * not own. */
typedef struct {
    const char **slot;
    size_t cap; /* a power of two, over twice the entries */
} name_set;

static size_t name_hash(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)h;
}

/* Adds s unless present; returns 1 if it was added, 0 if present. */
static int name_set_add(name_set *set, const char *s) {
    size_t i = name_hash(s) & (set->cap - 1);
    for (; set->slot[i]; i = (i + 1) & (set->cap - 1))
        if (strcmp(set->slot[i], s) == 0) return 0;
    set->slot[i] = s;
    return 1;
}

/*
 * The names extract and export write. An image is written as its name
 * with ".png" added unless it ends so, which can make two images one file:
 * "p.jpg" and "p.jpg.png" would both be "p.jpg.png", and the second would
 * silently replace the first. So a name that is already its own output
 * keeps it, and an image whose output is taken is written as
 * "NAME~2.png" (~3, ...), which the caller reports. --original writes the
 * stored names themselves, which are unique.
 */
int assign_outputs(row *rows, size_t n, int original) {
    name_set taken = {NULL, 16};
    while (taken.cap < 4 * n) taken.cap *= 2;
    taken.slot = calloc(taken.cap, sizeof *taken.slot);
    if (!taken.slot) return -1;
    for (size_t i = 0; i < n; i++) /* first, the names that are their own output */
        if (original || ends_with(rows[i].name, ".png")) {
            if (!(rows[i].out = strdup(rows[i].name))) goto nomem;
            name_set_add(&taken, rows[i].out);
        }
    for (size_t i = 0; i < n; i++) {
        if (rows[i].out) continue;
        if (!(rows[i].out = png_name(rows[i].name))) goto nomem;
        for (int k = 2; !name_set_add(&taken, rows[i].out); k++) {
            size_t len = strlen(rows[i].name) + 32;
            free(rows[i].out);
            if (!(rows[i].out = malloc(len))) goto nomem;
            snprintf(rows[i].out, len, "%s~%d.png", rows[i].name, k);
        }
    }
    free(taken.slot);
    return 0;
nomem:
    free(taken.slot);
    msg("out of memory");
    return -1;
}

/* "extracted NAME", or "extracted NAME as OUT (...)" when renamed. */
void report_output(const char *verb, const row *r) {
    char *natural = opt.original ? NULL : png_name(r->name);
    if (natural && strcmp(natural, r->out) != 0)
        info_msg("%s %s as %s (%s is another image's name)", verb, r->name, r->out, natural);
    else
        info_msg("%s %s", verb, r->out);
    free(natural);
}

row *select_rows(int argc, char **argv, size_t *n, int *missing) {
    row *rows = calloc((size_t)(argc > 0 ? argc : 0) + 1, sizeof *rows);
    size_t cap = (size_t)argc + 1;
    *n = 0;
    *missing = 0;
    if (!rows) return NULL;
    sqlite3_stmt *st =
        prep(argc > 0 ? "SELECT id, name, ifnull(mtime, -1) FROM names WHERE name = ?1"
                      : "SELECT id, name, ifnull(mtime, -1) FROM names ORDER BY name");
    if (!st) return rows;
    for (int i = 0; i < (argc > 0 ? argc : 1); i++) {
        if (argc > 0) {
            sqlite3_reset(st);
            sqlite3_bind_text(st, 1, argv[i], -1, SQLITE_STATIC);
        }
        int found = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
            if (*n + 1 >= cap) {
                row *nr = realloc(rows, cap * 2 * sizeof *rows);
                if (!nr) break;
                rows = nr;
                cap *= 2;
            }
            rows[*n].id = sqlite3_column_int64(st, 0);
            rows[*n].name = strdup((const char *)sqlite3_column_text(st, 1));
            rows[*n].mtime = sqlite3_column_int64(st, 2);
            rows[*n].out = NULL; /* realloc'ed rows are not zeroed */
            (*n)++;
            found = 1;
        }
        if (argc > 0 && !found) {
            msg("%s: no such image", argv[i]);
            (*missing)++;
        }
    }
    sqlite3_finalize(st);
    return rows;
}

void free_rows(row *rows, size_t n) {
    for (size_t i = 0; rows && i < n; i++) free(rows[i].name), free(rows[i].out);
    free(rows);
}

/* ------------------------------------------------ read-only commands */

int cmd_ls(int argc, char **argv) {
    (void)argv;
    if (begin_command("ls", argc == 0, ARCHIVE_READ) != 0) return EXIT_FATAL;
    sqlite3_stmt *st =
        prep(opt.json ? "SELECT json_object('name', utf8_text(n.name), 'width', width, 'height', height, "
                        "'format', format, 'sz', sz, 'bytes', length(data), 'bpp', "
                        "round(length(data) * 8.0 / (width * height), 6)) FROM names n JOIN images USING (id) "
                        "ORDER BY n.name"
                      : "SELECT name FROM names ORDER BY name");
    if (!st) return EXIT_FATAL;
    if (opt.json) printf("[");
    /* names as they are for a pipe, escaped for a terminal (put_shown) */
    int first = 1, rc, to_terminal = isatty(STDOUT_FILENO);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(st, 0);
        if (opt.json) printf("%s\n  %s", first ? "" : ",", text);
        else if (to_terminal) {
            put_shown(stdout, text);
            putchar('\n');
        } else
            printf("%s\n", text);
        first = 0;
    }
    if (opt.json) printf("%s]\n", first ? "" : "\n");
    if (rc != SQLITE_DONE) db_fail("ls");
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : EXIT_FATAL;
}

/* Prints a JSON object (column 0 of st's row) as it is with --json, else
 * as "key: value" lines read back from it with json_each, so that each
 * command names its fields once, in its json_object(). */
static int print_object(sqlite3_stmt *st) {
    const char *json = (const char *)sqlite3_column_text(st, 0);
    if (opt.json) {
        printf("%s\n", json ? json : "null");
        return 0;
    }
    sqlite3_stmt *fields = prep("SELECT key, ifnull(value, 'null') FROM json_each(?1)");
    if (!fields) return -1;
    sqlite3_bind_text(fields, 1, json, -1, SQLITE_TRANSIENT);
    int rc;
    while ((rc = sqlite3_step(fields)) == SQLITE_ROW) {
        printf("%s: ", sqlite3_column_text(fields, 0));
        put_shown(stdout, (const char *)sqlite3_column_text(fields, 1));
        putchar('\n');
    }
    if (rc != SQLITE_DONE) db_fail("printing");
    sqlite3_finalize(fields);
    return rc == SQLITE_DONE ? 0 : -1;
}

int cmd_info(int argc, char **argv) {
    if (begin_command("info", argc == 1, ARCHIVE_READ) != 0) return EXIT_FATAL;
    sqlite3_stmt *st = prep(
        "SELECT json_object('name', utf8_text(n.name), 'mtime', n.mtime, 'sz', sz, 'format', format, 'width', "
        "width, 'height', height, 'model', model, 'rate_id', rate_id, 'bytes', length(data), "
        "'bpp', round(length(data) * 8.0 / (width * height), 6), 'sha256', h.sha256, 'header', "
        "json(mrt_info(data))) "
        "FROM names n JOIN images i USING (id) LEFT JOIN image_sha256 h USING (id) "
        "WHERE n.name = ?1");
    if (!st) return EXIT_FATAL;
    sqlite3_bind_text(st, 1, argv[0], -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), ret = 0;
    if (rc == SQLITE_ROW)
        ret = print_object(st) == 0 ? 0 : EXIT_SOME;
    else if (rc == SQLITE_DONE) {
        msg("%s: no such image", argv[0]);
        ret = EXIT_SOME;
    } else {
        db_fail(argv[0]);
        ret = EXIT_SOME;
    }
    sqlite3_finalize(st);
    return ret;
}

int cmd_stats(int argc, char **argv) {
    (void)argv;
    if (begin_command("stats", argc == 0, ARCHIVE_READ) != 0) return EXIT_FATAL;
    sqlite3_stmt *st = prep(
        "WITH s AS (SELECT count(*) AS images, ifnull(sum(sz), 0) AS original_bytes, "
        "ifnull(sum(length(data)), 0) AS stored_bytes, ifnull(sum(width * height), 0) AS pixels, "
        "count(DISTINCT model) AS models FROM images), "
        "a AS (SELECT count(*) AS names FROM names), "
        "e AS (SELECT count(*) AS errors FROM ingest_errors) "
        "SELECT json_object('images', images, 'names', names, 'original_bytes', original_bytes, 'stored_bytes', "
        "stored_bytes, 'pixels', pixels, 'bpp', round(stored_bytes * 8.0 / max(pixels, 1), 6), "
        "'ratio', round(original_bytes * 1.0 / max(stored_bytes, 1), 1), 'models', models, "
        "'errors', errors) FROM s, a, e");
    if (!st) return EXIT_FATAL;
    int ret = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        ret = print_object(st) == 0 ? 0 : EXIT_FATAL;
    else {
        db_fail("stats");
        ret = EXIT_FATAL;
    }
    sqlite3_finalize(st);
    if (!opt.json && !ret) {
        st = prep("SELECT name, message FROM ingest_errors ORDER BY id");
        while (st && sqlite3_step(st) == SQLITE_ROW)
            printf("error: %s: %s\n", sqlite3_column_text(st, 0), sqlite3_column_text(st, 1));
        sqlite3_finalize(st);
    }
    return ret;
}

int cmd_cat(int argc, char **argv) {
    if (begin_command("cat", argc == 1, ARCHIVE_READ) != 0) return EXIT_FATAL;
    sqlite3_int64 id = find_id(argv[0]);
    if (id < 0) {
        msg("%s: no such image", argv[0]);
        return EXIT_SOME;
    }
    size_t len = 0;
    uint8_t *png = opt.original ? original_id(id, argv[0], &len) : decode_id(id, argv[0], &len);
    if (!png) return EXIT_SOME;
    int ok = fwrite(png, 1, len, stdout) == len && fflush(stdout) == 0;
    free(png);
    if (!ok) {
        msg("cannot write to stdout: %s", strerror(errno));
        return EXIT_SOME;
    }
    return 0;
}
