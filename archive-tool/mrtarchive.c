/*
 * mrtarchive.c -- a photo archive in one SQLite file (sql/schema.sql), over
 * libmrt and the mrt SQL functions (ext/, linked statically) and libarchive.
 *
 *   mrtarchive add [--keep-original] PATH...   store PNG/JPEG files, folders, .tar/.zip...
 *   mrtarchive ls | info NAME | cat [--original] NAME | extract [--original] [NAME...] -C DIR
 *   mrtarchive export OUT [--sqlar] | verify | rm NAME... | stats
 *
 * Exit status: 0 all done, 1 some files failed, 2 usage or fatal error.
 * See archive-tool/README.md.
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

#include "mrt.h"
#include "mrt_sqlite.h"
#include "schema_sql.h"
#include "mrt_sha256.h"

#define EXIT_SOME 1
#define EXIT_FATAL 2
#define MAX_INPUT_BYTES ((long long)MRT_MAX_FILE_BYTES) /* as mrt_image_read_file */
#define BATCH_FILES 16                         /* commit at least this often... */
#define BATCH_SECONDS 2                        /* ...or after this long */

/* ------------------------------------------------------------ options */

static struct {
    const char *archive;
    const char *model;
    const char *rate;  /* --rate: a rate point beside the model */
    size_t bytes;      /* --bytes: a byte budget per photo; 0: none */
    const char *dir; /* -C */
    int threads;       /* -j: add's encoders; the codec's threads for the others */
    int refine;        /* --refine: latent refinement steps */
    int quiet, json, sqlar, help;
    int keep_original; /* add --keep-original */
    int original;      /* extract/cat --original */
} opt;

/* The length of the valid UTF-8 sequence at s (at most n bytes) and its
 * code point, or 0: overlong forms, surrogates and values past U+10FFFF
 * are invalid. */
static size_t utf8_next(const unsigned char *s, size_t n, unsigned *cp) {
    unsigned c = s[0];
    size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (len == 0 || len > n) return 0;
    unsigned v = len == 1 ? c : c & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    static const unsigned least[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < least[len] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
    *cp = v;
    return len;
}

/* A code point a terminal would act on rather than show: C0 and C1
 * controls and DEL (U+009B, for one, starts an escape sequence). */
static int is_control(unsigned cp) { return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f); }

/* Writes s for a terminal or a log: valid UTF-8 as it is, each control
 * character and each byte of invalid UTF-8 as \xNN, so that no name or
 * path from the input can move the cursor, recolour the terminal or split
 * a one-line message. */
static void put_shown(FILE *f, const char *text) {
    const unsigned char *s = (const unsigned char *)text;
    size_t n = strlen(text);
    for (size_t i = 0; i < n;) {
        unsigned cp = 0;
        size_t len = utf8_next(s + i, n - i, &cp);
        if (len == 0 || is_control(cp)) {
            for (size_t k = 0; k < (len ? len : 1); k++) fprintf(f, "\\x%02X", s[i + k]);
            i += len ? len : 1;
        } else {
            fwrite(s + i, 1, len, f);
            i += len;
        }
    }
}

static void vmsg(const char *prefix, const char *fmt, va_list ap) {
    char small[1024], *text = small;
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n >= (int)sizeof small && (text = malloc((size_t)n + 1)) != NULL)
        vsnprintf(text, (size_t)n + 1, fmt, again);
    va_end(again);
    if (!text) text = small; /* out of memory: the message cut short */
    fputs(prefix, stderr);
    put_shown(stderr, text);
    fputc('\n', stderr);
    if (text != small) free(text);
}

static void msg(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmsg("mrtarchive: ", fmt, ap);
    va_end(ap);
}

static void info_msg(const char *fmt, ...) {
    if (opt.quiet) return;
    va_list ap;
    va_start(ap, fmt);
    vmsg("", fmt, ap);
    va_end(ap);
}

static const char *const usage_common =
    "Options: -f ARCHIVE (else $MRT_ARCHIVE, else photos.mrtdb), -j N threads, --rate R,\n"
    "         --bytes N (add: at most N bytes per photo, e.g. 2KB; the encoder picks the\n"
    "         rate point and a working size),\n"
    "         --refine STEPS (add: a better picture at the same size, slower; 60 is good),\n"
    "         --model M, --quiet, --json, --help\n";

static const struct {
    const char *name, *usage;
} commands[] = {
    {"add", "add [--keep-original] PATH...\n  Stores PNG and JPEG files, folders (recursively) and the images inside\n"
            "  archives given as arguments (.tar, .tar.gz, .tgz, .tar.xz, .tar.bz2, .tar.zst, .zip).\n"
            "  Other files are skipped with a reason; identical content (SHA-256) is stored once;\n"
            "  files whose name, size and mtime are unchanged are not read again.\n"
            "  --keep-original also stores each file's original bytes (table `originals`),\n"
            "  including for unchanged files stored earlier without them.\n"
            "  Exit 0: all stored or skipped, 1: some failed (see `stats`), 2: fatal.\n"},
    {"ls", "ls\n  Lists the names (with --json: name, size, format, bytes, bpp).\n"},
    {"info", "info NAME\n  One image's row and bitstream header.\n"},
    {"cat", "cat [--original] NAME\n  Writes the decoded image as PNG to stdout (--original: the\n"
            "  original file's bytes, if kept by `add --keep-original`).\n"},
    {"extract", "extract [--original] [NAME...] -C DIR\n  Decodes images (all if none named)\n"
                "  to DIR/NAME, with '.png' appended unless NAME ends in .png. --original writes the\n"
                "  original bytes kept by `add --keep-original` to DIR/NAME instead (an image\n"
                "  without one is an error). Never writes outside DIR or through symlinks;\n"
                "  hostile names are refused.\n"},
    {"export", "export OUT [--sqlar]\n  Writes every image, decoded to PNG, into OUT: .tar, .tar.gz,\n"
               "  .tgz, .tar.xz, .tar.bz2, .tar.zst or .zip by its name; --sqlar writes an sqlar\n"
               "  file (`sqlite3 OUT -Ax` unpacks it). Written to a temporary file beside OUT\n"
               "  and renamed at the end: an interrupted export leaves no partial OUT.\n"},
    {"verify", "verify\n  Checks the database, every name, every header, and decodes every image.\n"},
    {"rm", "rm NAME...\n  Removes images.\n"},
    {"stats", "stats\n  Counts, sizes, bits per pixel, models, recorded ingest errors.\n"},
};
#define NCOMMANDS (int)(sizeof commands / sizeof commands[0])

static void usage(FILE *f, const char *cmd) {
    for (int i = 0; i < NCOMMANDS; i++)
        if (cmd && strcmp(cmd, commands[i].name) == 0) {
            fprintf(f, "Usage: mrtarchive [-f ARCHIVE] %s%s", commands[i].usage, usage_common);
            return;
        }
    fprintf(f, "Usage: mrtarchive [-f ARCHIVE] COMMAND [ARGS]\nCommands:\n");
    for (int i = 0; i < NCOMMANDS; i++) {
        const char *u = commands[i].usage;
        fprintf(f, "  %.*s\n", (int)strcspn(u, "\n"), u);
    }
    fputs(usage_common, f);
    fputs("`mrtarchive COMMAND --help` describes a command.\n", f);
}

/* ------------------------------------------------------------- names */

/* The schema's rule (sql/schema.sql, DESIGN.md §6), plus no control bytes. */
static int name_is_safe(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n > 4000 || name[0] == '/' || name[n - 1] == '/') return 0;
    /* UTF-8 without control characters: a name is shown on terminals and
     * written into JSON, tar and zip headers */
    for (size_t i = 0; i < n;) {
        unsigned cp = 0;
        size_t len = utf8_next((const unsigned char *)name + i, n - i, &cp);
        if (len == 0 || is_control(cp) || cp == '\\') return 0;
        i += len;
    }
    const char *p = name;
    for (;;) {
        size_t len = strcspn(p, "/");
        if (len == 0) return 0;
        if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.')) return 0;
        if (p[len] == 0) break;
        p += len + 1;
    }
    return 1;
}

/* Normalises an input path into a name: drops empty and '.' components and
 * a leading '/'. Returns NULL (with *why) for '..' or unsafe characters. */
static char *make_name(const char *path, const char **why) {
    char *out = malloc(strlen(path) + 1);
    if (!out) {
        *why = "out of memory";
        return NULL;
    }
    size_t o = 0;
    const char *p = path;
    while (*p) {
        size_t len = strcspn(p, "/");
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            free(out);
            *why = "name has a '..' component";
            return NULL;
        }
        if (len > 0 && !(len == 1 && p[0] == '.')) {
            if (o) out[o++] = '/';
            memcpy(out + o, p, len);
            o += len;
        }
        p += len;
        if (*p == '/') p++;
    }
    out[o] = 0;
    if (!name_is_safe(out)) {
        free(out);
        *why = "name is empty, or is not UTF-8, or has a control character or '\\'";
        return NULL;
    }
    return out;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

/* The file name an image is extracted/exported under. */
static char *png_name(const char *name) {
    size_t n = strlen(name);
    char *out = malloc(n + 5);
    if (!out) return NULL;
    memcpy(out, name, n + 1);
    if (!ends_with(name, ".png")) memcpy(out + n, ".png", 5);
    return out;
}

/* ---------------------------------------------------------- database */

static sqlite3 *db;

static void db_fail(const char *what) {
    msg("%s: %s: %s", opt.archive, what, sqlite3_errmsg(db));
}

static int exec(const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        msg("%s: %s", opt.archive, err ? err : "SQL error");
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

static sqlite3_stmt *prep(const char *sql) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        db_fail("prepare");
        return NULL;
    }
    return st;
}

/* A one-value query; -1 with a message when the archive cannot answer it
 * (not a database, truncated, unreadable). */
static int pragma_int(const char *sql) {
    sqlite3_stmt *st = NULL;
    int v = -1, rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) v = sqlite3_column_int(st, 0);
    else
        db_fail(sqlite3_errcode(db) == SQLITE_NOTADB ? "cannot read" : "cannot read the archive");
    sqlite3_finalize(st);
    return v;
}

/* sqlite3_exec, waiting out another process's lock: the busy handler is
 * not called for every lock (a journal-mode change, or a read lock that
 * must become a write lock), so two `add`s creating one archive at once
 * would otherwise fail with "database is locked". Up to 30 s, as the busy
 * timeout. */
static int exec_waiting(const char *sql) {
    for (int waited_ms = 0;; waited_ms += 50) {
        char *err = NULL;
        int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
        if (rc == SQLITE_OK) return 0;
        if ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && waited_ms < 30000) {
            sqlite3_free(err);
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL); /* if the SQL left one open */
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        msg("%s: %s", opt.archive, err ? err : "SQL error");
        sqlite3_free(err);
        return -1;
    }
}

/* utf8_text(X): X with each byte that is not part of valid UTF-8 replaced
 * by U+FFFD, for json_object(): JSON must be UTF-8, and names stored by
 * older versions need not be. */
static void utf8_text_func(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    const unsigned char *s = sqlite3_value_text(argv[0]);
    if (!s) return;
    size_t n = (size_t)sqlite3_value_bytes(argv[0]);
    char *out = sqlite3_malloc64(3 * (sqlite3_uint64)n + 1);
    if (!out) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned cp;
        size_t len = utf8_next(s + i, n - i, &cp);
        if (len == 0) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3, i++;
        } else {
            memcpy(out + o, s + i, len);
            o += len, i += len;
        }
    }
    sqlite3_result_text(ctx, out, (int)o, sqlite3_free);
}

/* "file:" URI of the archive's path with `query` ("mode=ro", ...). */
static char *archive_uri(const char *query) {
    size_t n = strlen(opt.archive);
    char *uri = malloc(3 * n + strlen(query) + 16);
    if (!uri) return NULL;
    char *o = uri + sprintf(uri, "file:");
    for (const unsigned char *c = (const unsigned char *)opt.archive; *c; c++) {
        if (*c == '%' || *c == '?' || *c == '#' || *c <= ' ' || *c >= 0x7f)
            o += sprintf(o, "%%%02X", *c);
        else
            *o++ = (char)*c;
    }
    sprintf(o, "?%s", query);
    return uri;
}

/* Whether the archive lies on media this process cannot write (a disc, a
 * read-only mount): its folder refuses writes. */
static int on_read_only_media(void) {
    char *dir = strdup(opt.archive);
    if (!dir) return 0;
    char *slash = strrchr(dir, '/');
    const char *d = slash ? (slash == dir ? "/" : (*slash = 0, dir)) : ".";
    int ro = access(d, W_OK) != 0 && (errno == EROFS || errno == EACCES);
    int saved = errno;
    free(dir);
    errno = saved; /* for the caller's message */
    return ro;
}

static int open_uri(const char *query) {
    char *uri = archive_uri(query);
    if (!uri) {
        msg("out of memory");
        return -1;
    }
    if (db) sqlite3_close(db);
    db = NULL;
    int rc = sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
    free(uri);
    return rc == SQLITE_OK ? 0 : -1;
}

enum { ARCHIVE_READ, ARCHIVE_WRITE, ARCHIVE_CREATE };

/* ------------------------------------------------------------- models */

/* The model set (mrt.h, "model sets"): --model, else the default model,
 * and the rate points beside it. Opened on first need; NULL with a message
 * when there is none. Shared by the encoder threads of add -j. */
static mrt_model_set *models;

static mrt_model_set *archive_models(void) {
    if (models) return models;
    const char *source = NULL;
    char *found = opt.model ? NULL : mrt_default_model_path(NULL, NULL, &source);
    const char *path = opt.model ? opt.model : found;
    mrt_error err = {0};
    if (!path)
        msg("no model: set MRT_MODEL or pass --model FILE (no default.gguf found)");
    else if (mrt_model_set_open(path, &models, &err) != MRT_OK && opt.model)
        msg("--model: %s", err.message);
    else if (!models)
        msg("no model: model from %s: %s", source, err.message);
    mrt_free(found);
    return models;
}

/* The codec's threads for one call: add -j N (N > 1) runs N encoders of
 * one thread each, unless MRT_THREADS says otherwise; every other command
 * gives the codec the -j threads (0: libmrt's default). */
static int codec_threads(int encoders) {
    if (encoders > 1) return getenv("MRT_THREADS") ? 0 : 1;
    return opt.threads;
}


/* Opens the archive: to read (the read-only commands: an archive on a disc
 * or a read-only mount is readable), to write, or to create it (and apply
 * the schema) if needed. */
static int open_archive(int mode) {
    struct stat sb;
    if (mode != ARCHIVE_CREATE && stat(opt.archive, &sb) != 0) {
        msg("%s: no such archive (mrtarchive add creates one; -f ARCHIVE picks it)", opt.archive);
        return -1;
    }
    if (mode != ARCHIVE_CREATE && !S_ISREG(sb.st_mode)) {
        msg("%s: not an archive (not a regular file)", opt.archive);
        return -1;
    }
    int uv;
    if (mode == ARCHIVE_READ) {
        if (open_uri("mode=ro") != 0) {
            db_fail("cannot open");
            return -1;
        }
        sqlite3_busy_timeout(db, 30000);
        /* A WAL archive needs its -shm file to be read; on read-only media
         * none can be made, and nothing can change the file either, so it
         * is read as immutable. */
        sqlite3_stmt *probe = NULL;
        int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &probe, NULL);
        if (rc == SQLITE_OK) rc = sqlite3_step(probe);
        sqlite3_finalize(probe);
        if (rc != SQLITE_ROW && (rc & 0xff) != SQLITE_NOTADB && on_read_only_media()) {
            if (open_uri("immutable=1") != 0) {
                db_fail("cannot open");
                return -1;
            }
        }
    } else {
        if (on_read_only_media()) {
            msg("%s: cannot change an archive on read-only media (%s); ls, cat, extract, "
                "export, verify and stats still read it", opt.archive, strerror(errno));
            return -1;
        }
        int flags = SQLITE_OPEN_READWRITE | (mode == ARCHIVE_CREATE ? SQLITE_OPEN_CREATE : 0);
        if (sqlite3_open_v2(opt.archive, &db, flags, NULL) != SQLITE_OK) {
            db_fail("cannot open");
            return -1;
        }
        sqlite3_busy_timeout(db, 30000);
    }
    if (mrt_sqlite_register(db) != SQLITE_OK ||
        sqlite3_create_function(db, "utf8_text", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                utf8_text_func, NULL, NULL) != SQLITE_OK) {
        db_fail("cannot register the mrt functions");
        return -1;
    }
    /* What the file is, read in one transaction with the schema's making:
     * two `add`s creating one archive at once must not see it half made.
     * A writer takes the write lock first (waiting out the other). */
    if (mode != ARCHIVE_READ && (exec_waiting("PRAGMA journal_mode=WAL") != 0 ||
                                 exec("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON") != 0))
        return -1;
    if (exec_waiting(mode == ARCHIVE_READ ? "BEGIN" : "BEGIN IMMEDIATE") != 0) return -1;
    int ok = (uv = pragma_int("PRAGMA user_version")) >= 0;
    int napp = ok ? pragma_int("PRAGMA application_id") : -1;
    int ntab = ok && napp >= 0 ? pragma_int("SELECT count(*) FROM sqlite_schema") : -1;
    ok = ntab >= 0;
    if (ok && uv > 2) {
        msg("%s: archive schema version %d is newer than this mrtarchive knows (1 and 2)",
            opt.archive, uv);
        ok = 0;
    } else if (ok && uv == 0 && ntab > 0 && napp != 1297240129) {
        msg("%s: not an mrt archive (it has tables but no mrt schema)", opt.archive);
        ok = 0;
    } else if (ok && uv == 0 && mode == ARCHIVE_READ) {
        msg("%s: not an mrt archive (an empty database)", opt.archive);
        ok = 0;
    } else if (ok && mode != ARCHIVE_READ && (uv < 2 || mode == ARCHIVE_CREATE)) {
        /* a new archive, or version 1 migrated: the schema only adds */
        if ((ok = exec(mrtarchive_schema_sql) == 0) && uv == 1)
            info_msg("%s: archive migrated to schema version 2 (further names of one photo)",
                     opt.archive);
    } else if (ok && uv == 1) {
        /* read as it is: version 1 has no aliases */
        ok = exec("CREATE TEMP VIEW names(name, id, mtime) AS "
                  "SELECT name, id, mtime FROM images") == 0;
    }
    if (!ok || exec("COMMIT") != 0) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    /* A --model that does not load is fatal for every command. */
    if (opt.model && !archive_models()) return -1;
    return 0;
}

/* -------------------------------------------------------------- add */

static struct {
    long stored, unchanged, duplicates, skipped, failed;
    int in_tx;
    long batch;
    long batch_stored; /* images stored in the open transaction */
    time_t batch_start;
    /* The archive cannot take more (disk full, I/O error): the add stops,
     * with one message at the end (add_stopped). */
    int stopped;
    char stopped_why[300];
} ing;

/* Whether the last SQLite error means the archive cannot take any more
 * writes this run: trying the next file would only fail again. */
static int archive_cannot_write(void) {
    int rc = sqlite3_errcode(db) & 0xff;
    return rc == SQLITE_FULL || rc == SQLITE_IOERR || rc == SQLITE_CORRUPT ||
           rc == SQLITE_CANTOPEN || rc == SQLITE_NOMEM || rc == SQLITE_READONLY;
}

/* Stops the add: what the open transaction stored is rolled back (and no
 * longer counted as stored); every later file is left for a re-run. */
static void add_stop(const char *why) {
    if (!ing.stopped)
        snprintf(ing.stopped_why, sizeof ing.stopped_why, "%s", why ? why : sqlite3_errmsg(db));
    ing.stopped = 1;
    if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    ing.in_tx = 0;
    ing.stored -= ing.batch_stored;
    ing.failed += ing.batch_stored;
    ing.batch_stored = 0;
}

static int tx_begin(void) {
    if (ing.stopped) return -1;
    if (ing.in_tx) return 0;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        add_stop(NULL);
        return -1;
    }
    ing.in_tx = 1;
    ing.batch = 0;
    ing.batch_stored = 0;
    ing.batch_start = time(NULL);
    return 0;
}

/* Commits the batch; a commit that fails (the disk full, an I/O error)
 * stops the add, and the batch's images count as not stored. */
static int tx_commit(void) {
    if (!ing.in_tx) return 0;
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        add_stop(NULL);
        return -1;
    }
    ing.in_tx = 0;
    ing.batch_stored = 0;
    return 0;
}

static int tx_tick(void) {
    ing.batch++;
    if (ing.batch >= BATCH_FILES || time(NULL) - ing.batch_start >= BATCH_SECONDS) return tx_commit();
    return 0;
}

static void record_error(const char *name, const char *source, const char *why) {
    ing.failed++;
    if (ing.stopped) return; /* the one message is add_stop's */
    msg("%s: %s", source, why);
    if (tx_begin() != 0) return;
    sqlite3_stmt *del = prep("DELETE FROM ingest_errors WHERE name = ?1"); /* the latest only */
    if (!del) return;
    sqlite3_bind_text(del, 1, name ? name : source, -1, SQLITE_STATIC);
    sqlite3_step(del);
    sqlite3_finalize(del);
    sqlite3_stmt *st =
        prep("INSERT INTO ingest_errors(name, source, time, message) VALUES (?1, ?2, ?3, ?4)");
    if (!st) return;
    sqlite3_bind_text(st, 1, name ? name : source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
    sqlite3_bind_text(st, 4, why, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) db_fail("recording an error");
    sqlite3_finalize(st);
    tx_tick();
}

static void skip(const char *source, const char *why) {
    ing.skipped++;
    info_msg("skipped %s: %s", source, why);
}

static int is_image_ext(const char *name) {
    return ends_with(name, ".png") || ends_with(name, ".jpg") || ends_with(name, ".jpeg") ||
           ends_with(name, ".jpe") || ends_with(name, ".jfif");
}

/* 1: name, size and mtime match a stored image (nothing to do). */
static int unchanged(const char *name, long long size, long long mtime) {
    sqlite3_stmt *st = prep("SELECT 1 FROM names n JOIN images i USING (id) WHERE n.name = ?1 "
                            "AND i.sz = ?2 AND n.mtime IS ?3 "
                            "AND (?4 = 0 OR EXISTS (SELECT 1 FROM originals o WHERE o.id = i.id))");
    if (!st) return 0;
    sqlite3_bind_int(st, 4, opt.keep_original);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, size);
    if (mtime >= 0) sqlite3_bind_int64(st, 3, mtime);
    int r = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return r;
}

/* What add encodes with: the rate point --rate names (else the set's own
 * model), or with --bytes every rate point, the encoder choosing. Resolved
 * once, before the first file (resolve_encoder). */
static const mrt_model *encode_model;
static const mrt_model *const *budget_models;
static int budget_nmodels;

static int resolve_encoder(void) {
    mrt_model_set *set = archive_models();
    if (!set) return -1;
    mrt_error err = {0};
    mrt_status st = MRT_OK;
    if (opt.bytes)
        st = mrt_model_set_rate_points(set, &budget_models, &budget_nmodels, &err);
    else if (opt.rate)
        st = mrt_model_set_rate(set, opt.rate, &encode_model, &err);
    else
        encode_model = mrt_model_set_model(set);
    if (st == MRT_OK && opt.bytes) {
        /* a budget too small for the smallest picture fits no photo: fatal
         * once rather than a failure per file */
        uint8_t px[16 * 16 * 3] = {0}, *bits = NULL;
        size_t nbits = 0;
        mrt_image probe = {16, 16, px};
        mrt_encode_options eo = {.threads = 1};
        st = mrt_encode_budget(budget_models, budget_nmodels, &probe, opt.bytes, &eo, &bits,
                               &nbits, NULL, &err);
        mrt_free(bits);
    }
    if (st != MRT_OK) {
        if (opt.bytes) msg("--bytes %zu: %s", opt.bytes, err.message);
        else msg("--rate %s: %s", opt.rate, err.message);
        return -1;
    }
    return 0;
}

/* Encodes one file's bytes (PNG or JPEG) on `threads` codec threads. */
static int encode(const uint8_t *data, size_t len, int threads, uint8_t **out, size_t *out_len,
                  char *why, size_t whylen) {
    mrt_error err = {0};
    mrt_image img = {0};
    if (mrt_image_read_memory(data, len, &img, &err) != MRT_OK) {
        snprintf(why, whylen, "%s", err.message);
        return -1;
    }
    mrt_encode_options eo = {.threads = threads, .refine_steps = opt.refine};
    mrt_status st = opt.bytes ? mrt_encode_budget(budget_models, budget_nmodels, &img, opt.bytes,
                                                  &eo, out, out_len, NULL, &err)
                              : mrt_encode_with(encode_model, &img, &eo, out, out_len, &err);
    mrt_image_free(&img);
    if (st != MRT_OK) snprintf(why, whylen, "%s", err.message);
    return st == MRT_OK ? 0 : -1;
}

/* One file on its way in: read and checked by the main thread, encoded by a
 * worker (-j N > 1) or inline, stored by the main thread (the one writer). */
typedef struct job {
    char *name, *source;
    uint8_t *data, *bits;
    size_t len, nbits;
    long long mtime;
    const char *format;
    char hex[MRT_SHA256_HEX_CHARS + 1];
    int failed;
    char why[600];
    struct job *next;
} job;

static void job_free(job *j) {
    if (!j) return;
    free(j->name);
    free(j->source);
    free(j->data);
    free(j->bits);
    free(j);
}

static void store(job *j);

/* The worker pool (only for -j N > 1). */
static struct {
    int n, stopping, inflight;
    pthread_t *tids;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    job *todo, *todo_tail, *fin, *fin_tail;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

static void *worker(void *arg) {
    (void)arg;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (!pool.todo && !pool.stopping) pthread_cond_wait(&pool.work, &pool.mu);
        if (!pool.todo) break;
        job *j = pool.todo;
        pool.todo = j->next;
        if (!pool.todo) pool.todo_tail = NULL;
        pthread_mutex_unlock(&pool.mu);
        j->failed = encode(j->data, j->len, codec_threads(pool.n), &j->bits, &j->nbits, j->why,
                           sizeof j->why) != 0;
        pthread_mutex_lock(&pool.mu);
        j->next = NULL;
        if (pool.fin_tail)
            pool.fin_tail->next = j;
        else
            pool.fin = j;
        pool.fin_tail = j;
        pthread_cond_signal(&pool.done);
    }
    pthread_mutex_unlock(&pool.mu);
    return NULL;
}

/* Stores finished jobs; waits for one when `wait` (and any is in flight). */
static void pool_drain(int wait) {
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (wait && !pool.fin && pool.inflight > 0) pthread_cond_wait(&pool.done, &pool.mu);
        job *j = pool.fin;
        if (!j) break;
        pool.fin = j->next;
        if (!pool.fin) pool.fin_tail = NULL;
        pool.inflight--;
        pthread_mutex_unlock(&pool.mu);
        store(j);
        pthread_mutex_lock(&pool.mu);
        wait = 0;
    }
    pthread_mutex_unlock(&pool.mu);
}

static int pool_start(int n) {
    pool.tids = calloc((size_t)n, sizeof *pool.tids);
    if (!pool.tids) return -1;
    for (pool.n = 0; pool.n < n; pool.n++)
        if (pthread_create(&pool.tids[pool.n], NULL, worker, NULL) != 0) break;
    return pool.n > 0 ? 0 : -1;
}

static void pool_finish(void) {
    if (!pool.n) return;
    while (pool.inflight > 0) pool_drain(1);
    pthread_mutex_lock(&pool.mu);
    pool.stopping = 1;
    pthread_cond_broadcast(&pool.work);
    pthread_mutex_unlock(&pool.mu);
    for (int i = 0; i < pool.n; i++) pthread_join(pool.tids[i], NULL);
    free(pool.tids);
    pool.n = 0;
}

/* SHA-256s of the jobs handed to workers and not stored yet. */
static int pending_has(const char *hex, const char **name);
static void pending_add(job *j);
static void pending_remove(job *j);

static void submit(job *j) {
    if (!pool.n) {
        j->failed = encode(j->data, j->len, codec_threads(1), &j->bits, &j->nbits, j->why,
                           sizeof j->why) != 0;
        store(j);
        return;
    }
    pending_add(j);
    pthread_mutex_lock(&pool.mu);
    int full = pool.inflight >= 2 * pool.n;
    pthread_mutex_unlock(&pool.mu);
    if (full) pool_drain(1);
    pthread_mutex_lock(&pool.mu);
    j->next = NULL;
    if (pool.todo_tail)
        pool.todo_tail->next = j;
    else
        pool.todo = j;
    pool.todo_tail = j;
    pool.inflight++;
    pthread_cond_signal(&pool.work);
    pthread_mutex_unlock(&pool.mu);
    pool_drain(0);
}

static job **pending;
static size_t npending, cappending;

static int pending_has(const char *hex, const char **name) {
    for (size_t i = 0; i < npending; i++)
        if (strcmp(pending[i]->hex, hex) == 0) {
            *name = pending[i]->name;
            return 1;
        }
    return 0;
}

static void pending_add(job *j) {
    if (npending == cappending) {
        size_t nc = cappending ? cappending * 2 : 16;
        job **np = realloc(pending, nc * sizeof *np);
        if (!np) return; /* only dedupe of in-flight duplicates is lost */
        pending = np;
        cappending = nc;
    }
    pending[npending++] = j;
}

static void pending_remove(job *j) {
    for (size_t i = 0; i < npending; i++)
        if (pending[i] == j) {
            pending[i] = pending[--npending];
            return;
        }
}

/* --keep-original for an image stored earlier without its original. */
static void keep_original_of(sqlite3_int64 id, const char *name, const char *source,
                             const uint8_t *data, size_t len) {
    if (tx_begin() != 0) return;
    sqlite3_stmt *st = prep("INSERT OR IGNORE INTO originals(id, data) VALUES (?1, ?2)");
    if (!st) return;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_bind_blob64(st, 2, data, (sqlite3_uint64)len, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
        char why[600];
        snprintf(why, sizeof why, "cannot keep the original: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        record_error(name, source, why);
        return;
    }
    if (sqlite3_changes(db) > 0) info_msg("kept original of %s", name);
    sqlite3_finalize(st);
    tx_tick();
}

/* Stores one file's bytes under `name`. */
/* Removes one name (in the caller's transaction): an alias goes; an
 * image's own name passes to its first alias, if it has one, so that the
 * photo stays under its other names; else the image goes. 1: removed, 0:
 * no such name, -1: error (with a message). */
static int remove_name(const char *name) {
    sqlite3_stmt *st = prep("DELETE FROM aliases WHERE name = ?1");
    if (!st) return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) goto fail;
    if (sqlite3_changes(db) > 0) return 1;
    sqlite3_int64 id = -1;
    if (!(st = prep("SELECT id FROM images WHERE name = ?1"))) return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) return rc == SQLITE_DONE ? 0 : (db_fail(name), -1);
    /* the first alias becomes the image's name, its mtime with it */
    if (!(st = prep("SELECT name, mtime FROM aliases WHERE image_id = ?1 ORDER BY name LIMIT 1")))
        return -1;
    sqlite3_bind_int64(st, 1, id);
    char *heir = NULL;
    sqlite3_int64 heir_mtime = 0;
    int heir_has_mtime = 0;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        heir = strdup((const char *)sqlite3_column_text(st, 0));
        heir_has_mtime = sqlite3_column_type(st, 1) != SQLITE_NULL;
        heir_mtime = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) goto fail;
    if (rc == SQLITE_ROW && !heir) {
        msg("out of memory");
        return -1;
    }
    if (heir) {
        sqlite3_stmt *del = prep("DELETE FROM aliases WHERE name = ?1");
        sqlite3_stmt *up = prep("UPDATE images SET name = ?1, mtime = ?2 WHERE id = ?3");
        int ok = del && up;
        if (ok) {
            sqlite3_bind_text(del, 1, heir, -1, SQLITE_STATIC);
            sqlite3_bind_text(up, 1, heir, -1, SQLITE_STATIC);
            if (heir_has_mtime) sqlite3_bind_int64(up, 2, heir_mtime);
            sqlite3_bind_int64(up, 3, id);
            ok = sqlite3_step(del) == SQLITE_DONE && sqlite3_step(up) == SQLITE_DONE;
        }
        sqlite3_finalize(del);
        sqlite3_finalize(up);
        free(heir);
        if (!ok) goto fail;
        return 1;
    }
    if (!(st = prep("DELETE FROM images WHERE id = ?1"))) return -1;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) goto fail;
    return 1;
fail:
    db_fail(name);
    return -1;
}

/* Keeps `name` as a further name of stored image `id` (same bytes): the
 * name is moved off whatever it showed before. */
static void add_alias(const char *name, const char *source, sqlite3_int64 id, const char *other,
                      long long mtime) {
    if (tx_begin() != 0 || exec("SAVEPOINT alias") != 0) return;
    int ok = remove_name(name) >= 0;
    sqlite3_stmt *ins = ok ? prep("INSERT INTO aliases(name, image_id, mtime) VALUES (?1, ?2, ?3)")
                           : NULL;
    sqlite3_stmt *err = ok ? prep("DELETE FROM ingest_errors WHERE name = ?1") : NULL;
    if (ins && err) {
        sqlite3_bind_text(ins, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 2, id);
        if (mtime >= 0) sqlite3_bind_int64(ins, 3, mtime);
        sqlite3_bind_text(err, 1, name, -1, SQLITE_STATIC);
        ok = sqlite3_step(ins) == SQLITE_DONE && sqlite3_step(err) == SQLITE_DONE;
    } else
        ok = 0;
    char why[300];
    snprintf(why, sizeof why, "cannot store as a further name of %s: %s", other, sqlite3_errmsg(db));
    sqlite3_finalize(ins);
    sqlite3_finalize(err);
    if (!ok) {
        if (archive_cannot_write()) {
            add_stop(why);
            ing.failed++;
            return;
        }
        exec("ROLLBACK TO alias");
        exec("RELEASE alias");
        record_error(name, source, why);
        return;
    }
    exec("RELEASE alias");
    ing.duplicates++;
    info_msg("duplicate %s: same content as %s, stored once under both names", source, other);
    tx_tick();
}

/* Duplicates of a file still being encoded: added as aliases once the
 * pool has stored it (deferred_add_all). */
typedef struct deferred {
    char *name, *source;
    uint8_t *data;
    size_t len;
    long long mtime;
    struct deferred *next;
} deferred;
static deferred *deferred_head, **deferred_tail = &deferred_head;

static void ingest(const char *name, const char *source, const uint8_t *data, size_t len,
                   long long mtime);

static void defer(const char *name, const char *source, const uint8_t *data, size_t len,
                  long long mtime) {
    deferred *d = calloc(1, sizeof *d);
    if (d) {
        d->name = strdup(name), d->source = strdup(source), d->data = malloc(len ? len : 1);
        d->len = len, d->mtime = mtime;
    }
    if (!d || !d->name || !d->source || !d->data) {
        if (d) free(d->name), free(d->source), free(d->data);
        free(d);
        record_error(name, source, "out of memory");
        return;
    }
    memcpy(d->data, data, len);
    *deferred_tail = d;
    deferred_tail = &d->next;
}

/* Ingests the deferred duplicates again, now that what they duplicate is
 * stored (or failed: then they are encoded themselves). */
static void deferred_add_all(void) {
    while (deferred_head) {
        deferred *d = deferred_head;
        deferred_head = d->next;
        if (!deferred_head) deferred_tail = &deferred_head;
        ingest(d->name, d->source, d->data, d->len, d->mtime);
        free(d->name), free(d->source), free(d->data), free(d);
    }
}

static void ingest(const char *name, const char *source, const uint8_t *data, size_t len,
                   long long mtime) {
    if (ing.stopped) {
        ing.failed++;
        return;
    }
    const char *format = NULL;
    if (len >= 8 && memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0)
        format = "png";
    else if (len >= 3 && memcmp(data, "\xff\xd8\xff", 3) == 0)
        format = "jpeg";
    if (!format) {
        if (is_image_ext(name))
            record_error(name, source, len == 0 ? "empty file" : "not a PNG or JPEG (bad signature)");
        else
            skip(source, "not a PNG or JPEG");
        return;
    }
    uint8_t digest[MRT_SHA256_DIGEST_BYTES];
    char hex[MRT_SHA256_HEX_CHARS + 1];
    mrt_sha256_buffer(data, len, digest);
    mrt_sha256_hex(digest, hex);

    /* the same bytes stored already: under this name (unchanged), or
     * under another, which this name joins */
    sqlite3_stmt *st = prep("SELECT i.name, i.id, EXISTS (SELECT 1 FROM names n "
                            "WHERE n.name = ?2 AND n.id = i.id) "
                            "FROM image_sha256 h JOIN images i ON i.id = h.id "
                            "WHERE h.sha256 = ?1 LIMIT 1");
    if (!st) return;
    sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        char *other = strdup((const char *)sqlite3_column_text(st, 0));
        sqlite3_int64 id = sqlite3_column_int64(st, 1);
        int same_name = sqlite3_column_int(st, 2);
        sqlite3_finalize(st);
        if (!other) {
            record_error(name, source, "out of memory");
            return;
        }
        if (opt.keep_original) /* the same bytes: they are that image's original */
            keep_original_of(id, other, source, data, len);
        if (same_name) {
            ing.unchanged++;
            info_msg("unchanged %s", name);
        } else {
            add_alias(name, source, id, other, mtime);
        }
        free(other);
        return;
    }
    sqlite3_finalize(st);

    const char *other = NULL;
    if (pending_has(hex, &other)) {
        defer(name, source, data, len, mtime); /* joins `other` once that is stored */
        return;
    }
    job *j = calloc(1, sizeof *j);
    if (j) {
        j->name = strdup(name);
        j->source = strdup(source);
        j->data = malloc(len ? len : 1);
    }
    if (!j || !j->name || !j->source || !j->data) {
        record_error(name, source, "out of memory");
        job_free(j);
        return;
    }
    memcpy(j->data, data, len);
    j->len = len;
    j->mtime = mtime;
    j->format = format;
    memcpy(j->hex, hex, sizeof j->hex);
    submit(j);
}

/* Writes an encoded job into the archive (main thread only). */
static void store(job *j) {
    pending_remove(j);
    if (ing.stopped) { /* left for a re-run */
        ing.failed++;
        job_free(j);
        return;
    }
    const char *name = j->name, *source = j->source, *format = j->format, *hex = j->hex;
    long long mtime = j->mtime;
    size_t len = j->len;
    uint8_t *bits = j->bits;
    size_t nbits = j->nbits;
    char *why = j->why;
    if (j->failed) {
        record_error(name, source, why);
        job_free(j);
        return;
    }
    mrt_info hdr;
    mrt_error err;
    if (mrt_info_read(bits, nbits, &hdr, &err) != MRT_OK) {
        record_error(name, source, err.message);
        job_free(j);
        return;
    }
    char model[MRT_FINGERPRINT_HEX];
    mrt_fingerprint_hex(hdr.fingerprint, model);

    if (tx_begin() != 0 || exec("SAVEPOINT image") != 0) {
        job_free(j);
        return;
    }
    /* all of the image's rows, or none (the savepoint); the name leaves
     * what it showed before (its other names keep that) */
    int ok = remove_name(name) >= 0;
    sqlite3_stmt *ins =
        ok ? prep("INSERT INTO images(name, mtime, sz, format, width, height, model, rate_id, data) "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")
           : NULL;
    if (ins) {
        sqlite3_bind_text(ins, 1, name, -1, SQLITE_STATIC);
        if (mtime >= 0) sqlite3_bind_int64(ins, 2, mtime);
        sqlite3_bind_int64(ins, 3, (sqlite3_int64)len);
        sqlite3_bind_text(ins, 4, format, -1, SQLITE_STATIC);
        sqlite3_bind_int(ins, 5, hdr.width);
        sqlite3_bind_int(ins, 6, hdr.height);
        sqlite3_bind_text(ins, 7, model, -1, SQLITE_STATIC);
        sqlite3_bind_int(ins, 8, hdr.rate_id);
        sqlite3_bind_blob(ins, 9, bits, (int)nbits, SQLITE_STATIC);
        ok = sqlite3_step(ins) == SQLITE_DONE;
        if (!ok) snprintf(why, sizeof j->why, "cannot store: %s", sqlite3_errmsg(db));
        sqlite3_finalize(ins);
    } else {
        ok = 0;
        snprintf(why, sizeof j->why, "cannot store: %s", sqlite3_errmsg(db));
    }
    if (ok) {
        sqlite3_int64 id = sqlite3_last_insert_rowid(db);
        sqlite3_stmt *h = prep("INSERT INTO image_sha256(id, sha256) VALUES (?1, ?2)");
        sqlite3_stmt *e = prep("DELETE FROM ingest_errors WHERE name = ?1");
        if (h && e) {
            sqlite3_bind_int64(h, 1, id);
            sqlite3_bind_text(h, 2, hex, -1, SQLITE_STATIC);
            sqlite3_bind_text(e, 1, name, -1, SQLITE_STATIC);
            ok = sqlite3_step(h) == SQLITE_DONE && sqlite3_step(e) == SQLITE_DONE;
        } else
            ok = 0;
        if (ok && opt.keep_original) {
            sqlite3_stmt *o = prep("INSERT INTO originals(id, data) VALUES (?1, ?2)");
            if (o) {
                sqlite3_bind_int64(o, 1, id);
                /* SQLITE_TOOBIG for an original over SQLite's blob limit */
                ok = sqlite3_bind_blob64(o, 2, j->data, (sqlite3_uint64)len, SQLITE_STATIC) ==
                         SQLITE_OK &&
                     sqlite3_step(o) == SQLITE_DONE;
                sqlite3_finalize(o);
            } else
                ok = 0;
        }
        if (!ok) snprintf(why, sizeof j->why, "cannot store: %s", sqlite3_errmsg(db));
        sqlite3_finalize(h);
        sqlite3_finalize(e);
    }
    if (!ok) {
        if (archive_cannot_write()) {
            add_stop(why);
            ing.failed++;
            job_free(j);
            return;
        }
        exec("ROLLBACK TO image");
        exec("RELEASE image");
        record_error(name, source, why);
        job_free(j);
        return;
    }
    exec("RELEASE image");
    ing.stored++;
    ing.batch_stored++;
    info_msg("stored %s (%zu bytes, %dx%d, %.4f bpp)", name, nbits, hdr.width, hdr.height, hdr.bpp);
    job_free(j);
    tx_tick();
}

static void add_file(const char *path, const char *name_path, const struct stat *sb) {
    if (ing.stopped) return; /* the archive takes no more this run */
    const char *why = NULL;
    char *name = make_name(name_path, &why);
    if (!name) {
        record_error(NULL, path, why);
        return;
    }
    if (unchanged(name, (long long)sb->st_size, (long long)sb->st_mtime)) {
        ing.unchanged++;
        info_msg("unchanged %s", name);
        free(name);
        return;
    }
    if (!is_image_ext(name) && sb->st_size == 0) {
        skip(path, "not a PNG or JPEG (empty)");
        free(name);
        return;
    }
    /* O_NOFOLLOW: the path was checked not to be a link, and must not
     * become one before it is opened. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    uint8_t *data = NULL;
    size_t len = 0;
    mrt_error e;
    if (fd < 0 || mrt_read_fd(fd, NULL, MRT_MAX_FILE_BYTES, &data, &len, &e) != MRT_OK) {
        char buf[600];
        snprintf(buf, sizeof buf, "cannot read: %s", fd < 0 ? strerror(errno) : e.message);
        record_error(name, path, buf);
    } else
        ingest(name, path, data, len, (long long)sb->st_mtime);
    if (fd >= 0) close(fd);
    free(data);
    free(name);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_tree(const char *path, const char *name_path) {
    if (ing.stopped) return; /* the archive takes no more this run */
    struct stat sb;
    if (lstat(path, &sb) != 0) {
        char buf[300];
        snprintf(buf, sizeof buf, "%s", strerror(errno));
        record_error(NULL, path, buf);
        return;
    }
    if (S_ISLNK(sb.st_mode)) {
        skip(path, "a symbolic link (not followed)");
        return;
    }
    if (S_ISREG(sb.st_mode)) {
        add_file(path, name_path, &sb);
        return;
    }
    if (!S_ISDIR(sb.st_mode)) {
        skip(path, "not a regular file");
        return;
    }
    DIR *d = opendir(path);
    if (!d) {
        char buf[300];
        snprintf(buf, sizeof buf, "cannot open folder: %s", strerror(errno));
        record_error(NULL, path, buf);
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn) break;
            names = nn;
        }
        names[n] = strdup(de->d_name);
        if (names[n]) n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        size_t l1 = strlen(path), l2 = strlen(name_path), l3 = strlen(names[i]);
        char *p = malloc(l1 + l3 + 2), *q = malloc(l2 + l3 + 2);
        if (p && q) {
            sprintf(p, "%s%s%s", path, (l1 && path[l1 - 1] == '/') ? "" : "/", names[i]);
            sprintf(q, "%s%s%s", name_path, l2 ? "/" : "", names[i]);
            add_tree(p, q);
        }
        free(p);
        free(q);
        free(names[i]);
    }
    free(names);
}

static int is_archive_name(const char *p) {
    static const char *const ext[] = {".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2",
                                      ".tbz2", ".tar.zst", ".tzst", ".zip", ".7z", ".cpio"};
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (ends_with(p, ext[i])) return 1;
    return 0;
}

static void add_archive(const char *path) {
    if (ing.stopped) return; /* the archive takes no more this run */
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_all(a);
    if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
        record_error(NULL, path, archive_error_string(a) ? archive_error_string(a) : "cannot open");
        archive_read_free(a);
        return;
    }
    struct archive_entry *e;
    int r;
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
        const char *ep = archive_entry_pathname(e);
        if (!ep) ep = "";
        size_t sl = strlen(path) + strlen(ep) + 2;
        char *source = malloc(sl);
        if (!source) break;
        snprintf(source, sl, "%s:%s", path, ep);
        if (archive_entry_filetype(e) == AE_IFDIR) {
            free(source);
            continue;
        }
        if (archive_entry_filetype(e) != AE_IFREG) {
            skip(source, "not a regular file");
            free(source);
            continue;
        }
        const char *why = NULL;
        char *name = make_name(ep, &why);
        if (!name) {
            record_error(NULL, source, why);
            free(source);
            continue;
        }
        long long mtime = archive_entry_mtime_is_set(e) ? (long long)archive_entry_mtime(e) : -1;
        long long size = archive_entry_size_is_set(e) ? (long long)archive_entry_size(e) : -1;
        if (size >= 0 && unchanged(name, size, mtime)) {
            ing.unchanged++;
            info_msg("unchanged %s", name);
        } else if (size > MAX_INPUT_BYTES) {
            record_error(name, source, "over 1 GiB");
        } else {
            /* The header's size is only a claim: a hostile member can declare
             * a gigabyte in a few bytes of tarball, so at most 1 MiB is
             * allocated up front and the buffer grows as data arrives (+1:
             * the read that finds the end needs no growth). */
            size_t cap = size >= 0 && size < (1 << 20) ? (size_t)size + 1 : (size_t)1 << 20,
                   n = 0;
            uint8_t *buf = malloc(cap);
            int bad = !buf;
            while (!bad) {
                if (n == cap) {
                    uint8_t *nb = cap < (size_t)MAX_INPUT_BYTES ? realloc(buf, cap * 2) : NULL;
                    if (!nb) {
                        bad = 1;
                        break;
                    }
                    buf = nb;
                    cap *= 2;
                }
                la_ssize_t got = archive_read_data(a, buf + n, cap - n);
                if (got < 0) {
                    bad = 2;
                    break;
                }
                if (got == 0) break;
                n += (size_t)got;
            }
            if (bad)
                record_error(name, source,
                             bad == 2 && archive_error_string(a) ? archive_error_string(a)
                                                                 : "cannot read entry");
            else
                ingest(name, source, buf, n, mtime);
            free(buf);
            if (bad == 2) {
                free(name);
                free(source);
                break;
            }
        }
        free(name);
        free(source);
    }
    if (r != ARCHIVE_EOF && r != ARCHIVE_OK && r != ARCHIVE_WARN)
        record_error(NULL, path, archive_error_string(a) ? archive_error_string(a) : "read error");
    archive_read_free(a);
}

static int cmd_add(int argc, char **argv) {
    if (argc < 1) {
        usage(stderr, "add");
        return EXIT_FATAL;
    }
    if (open_archive(ARCHIVE_CREATE) != 0) return EXIT_FATAL;
    /* No model, or a --rate or --bytes it cannot give, is fatal once, not a
     * failure per file. */
    if (resolve_encoder() != 0) return EXIT_FATAL;
    if (opt.threads > 1 && pool_start(opt.threads) != 0) {
        msg("cannot start %d threads", opt.threads);
        return EXIT_FATAL;
    }
    for (int i = 0; i < argc; i++) {
        const char *path = argv[i];
        struct stat sb;
        if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && is_archive_name(path)) {
            add_archive(path);
            continue;
        }
        /* Names are relative to the argument's parent: `add /x/photos` stores photos/... */
        char *copy = strdup(path);
        if (!copy) return EXIT_FATAL;
        size_t l = strlen(copy);
        while (l > 1 && copy[l - 1] == '/') copy[--l] = 0;
        const char *base = strrchr(copy, '/');
        base = base ? base + 1 : copy;
        if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0 || strcmp(base, "/") == 0 || !*base)
            base = "";
        add_tree(path, base);
        free(copy);
    }
    pool_finish();
    deferred_add_all(); /* after the pool: what they duplicate is stored */
    tx_commit();
    if (ing.stopped)
        msg("%s: the add stopped: %s; %ld files stored this run, the rest not (a re-run after "
            "that is fixed adds them)", opt.archive, ing.stopped_why, ing.stored);
    if (opt.json)
        printf("{\"stored\": %ld, \"unchanged\": %ld, \"duplicates\": %ld, \"skipped\": %ld, "
               "\"failed\": %ld}\n",
               ing.stored, ing.unchanged, ing.duplicates, ing.skipped, ing.failed);
    else
        info_msg("%ld stored, %ld unchanged, %ld duplicates, %ld skipped, %ld failed", ing.stored,
                 ing.unchanged, ing.duplicates, ing.skipped, ing.failed);
    return ing.stopped ? EXIT_FATAL : ing.failed ? EXIT_SOME : 0;
}

/* ---------------------------------------------------- decode helpers */

/* Decoded PNG of image `id` (malloc'd); NULL with a message on failure. */
static uint8_t *decode_id(sqlite3_int64 id, const char *name, size_t *len) {
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
                mrt_decode(model, bits ? bits : nothing, nbits, codec_threads(1), &img, &err) != MRT_OK ||
                mrt_image_write_png_memory(&img, &out, len, &err) != MRT_OK))
        msg("%s: cannot decode: %s", name, err.message);
    mrt_image_free(&img);
    sqlite3_finalize(st);
    return out;
}

/* The original bytes of image `id` kept by add --keep-original (malloc'd);
 * NULL with a message when none was kept. */
static uint8_t *original_id(sqlite3_int64 id, const char *name, size_t *len) {
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

/* A list of (id, name, mtime) rows: the named images, or all; `out` is
 * the file name extract and export write (assign_outputs). */
typedef struct {
    sqlite3_int64 id;
    long long mtime;
    char *name;
    char *out;
} row;

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
static int assign_outputs(row *rows, size_t n, int original) {
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
static void report_output(const char *verb, const row *r) {
    char *natural = opt.original ? NULL : png_name(r->name);
    if (natural && strcmp(natural, r->out) != 0)
        info_msg("%s %s as %s (%s is another image's name)", verb, r->name, r->out, natural);
    else
        info_msg("%s %s", verb, r->out);
    free(natural);
}

static row *select_rows(int argc, char **argv, size_t *n, int *missing) {
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

static void free_rows(row *rows, size_t n) {
    for (size_t i = 0; rows && i < n; i++) free(rows[i].name), free(rows[i].out);
    free(rows);
}

/* ------------------------------------------------ read-only commands */

static int cmd_ls(int argc, char **argv) {
    (void)argv;
    if (argc) {
        usage(stderr, "ls");
        return EXIT_FATAL;
    }
    if (open_archive(ARCHIVE_READ) != 0) return EXIT_FATAL;
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

static int cmd_info(int argc, char **argv) {
    if (argc != 1) {
        usage(stderr, "info");
        return EXIT_FATAL;
    }
    if (open_archive(ARCHIVE_READ) != 0) return EXIT_FATAL;
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

static int cmd_stats(int argc, char **argv) {
    (void)argv;
    if (argc) {
        usage(stderr, "stats");
        return EXIT_FATAL;
    }
    if (open_archive(ARCHIVE_READ) != 0) return EXIT_FATAL;
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

static int cmd_cat(int argc, char **argv) {
    if (argc != 1) {
        usage(stderr, "cat");
        return EXIT_FATAL;
    }
    if (open_archive(ARCHIVE_READ) != 0) return EXIT_FATAL;
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

static int cmd_rm(int argc, char **argv) {
    if (argc < 1) {
        usage(stderr, "rm");
        return EXIT_FATAL;
    }
    if (open_archive(ARCHIVE_WRITE) != 0) return EXIT_FATAL;
    int missing = 0;
    if (exec("BEGIN IMMEDIATE") != 0) return EXIT_FATAL;
    for (int i = 0; i < argc; i++) {
        int r = remove_name(argv[i]);
        if (r < 0) {
            exec("ROLLBACK");
            return EXIT_FATAL;
        }
        if (r == 0) {
            msg("%s: no such image", argv[i]);
            missing++;
        } else
            info_msg("removed %s", argv[i]);
    }
    if (exec("COMMIT") != 0) return EXIT_FATAL;
    return missing ? EXIT_SOME : 0;
}

/* ---------------------------------------------------------- extract */

/* Writes `data` to root/rel, creating folders, following no symlink. */
static int safe_write(int root, const char *rel, const uint8_t *data, size_t len, long long mtime) {
    char *path = strdup(rel);
    if (!path) return -1;
    int dfd = dup(root);
    char *p = path, *slash;
    int ret = -1;
    while (dfd >= 0 && (slash = strchr(p, '/'))) {
        *slash = 0;
        if (mkdirat(dfd, p, 0755) != 0 && errno != EEXIST) {
            msg("%s: cannot create folder '%s': %s", rel, p, strerror(errno));
            goto out;
        }
        int nfd = openat(dfd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        if (nfd < 0) {
            /* a path component that exists but is no folder */
            msg("%s: cannot write into '%s': %s", rel, p,
                errno == ELOOP     ? "it is a symbolic link (not followed)"
                : errno == ENOTDIR ? "it is a file, not a folder"
                                   : strerror(errno));
            goto out;
        }
        close(dfd);
        dfd = nfd;
        p = slash + 1;
    }
    if (dfd < 0) goto out;
    struct stat sb;
    if (fstatat(dfd, p, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(sb.st_mode)) {
        msg("%s: a folder of that name exists", rel);
        goto out;
    }
    /* Relative to dfd, which was opened without following links: the
     * temporary file and the rename (which replaces a symlink, never
     * follows it) stay inside the target folder. */
    mrt_error e;
    if (mrt_write_file_atomic_at(dfd, p, data, len, &e) != MRT_OK) {
        msg("cannot extract %s: %s", rel, e.message);
        goto out;
    }
    struct timespec times[2] = {{.tv_sec = mtime}, {.tv_sec = mtime}};
    if (mtime >= 0 && utimensat(dfd, p, times, AT_SYMLINK_NOFOLLOW) != 0) {
        msg("%s: cannot set its modification time: %s", rel, strerror(errno));
        goto out;
    }
    ret = 0;
out:
    if (dfd >= 0) close(dfd);
    free(path);
    return ret;
}

static int cmd_extract(int argc, char **argv) {
    const char *dir = opt.dir ? opt.dir : ".";
    if (open_archive(ARCHIVE_READ) != 0) return EXIT_FATAL;
    int root = open(dir, O_RDONLY | O_DIRECTORY);
    if (root < 0) {
        msg("%s: %s", dir, strerror(errno));
        return EXIT_FATAL;
    }
    size_t n;
    int failed;
    row *rows = select_rows(argc, argv, &n, &failed);
    if (rows && assign_outputs(rows, n, opt.original) != 0) failed++, n = 0;
    for (size_t i = 0; rows && i < n; i++) {
        if (!name_is_safe(rows[i].name)) {
            msg("refusing hostile name '%s' (absolute, '..', or unsafe characters)", rows[i].name);
            failed++;
            continue;
        }
        size_t len = 0;
        /* --original: the kept bytes, under the stored name itself */
        uint8_t *png = opt.original ? original_id(rows[i].id, rows[i].name, &len)
                                    : decode_id(rows[i].id, rows[i].name, &len);
        if (!png || safe_write(root, rows[i].out, png, len, rows[i].mtime) != 0)
            failed++;
        else
            report_output("extracted", &rows[i]);
        free(png);
    }
    free_rows(rows, n);
    close(root);
    return failed ? EXIT_SOME : 0;
}

/* ----------------------------------------------------------- export */

/* The export is written to a temporary file beside OUT (same folder, so the
 * final rename is atomic); SIGINT/SIGTERM/SIGHUP remove it. */
static char *export_tmp, *export_tmp_journal;

static void export_signal(int sig) {
    if (export_tmp) unlink(export_tmp);
    if (export_tmp_journal) unlink(export_tmp_journal);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Creates OUT's temporary file (mrt_temp_file_create: OUT.tmp-...) and
 * sets the signal handlers that remove it. 0, or -1 with a message. */
static int export_tmp_create(const char *out) {
    mrt_error e;
    char *tmp;
    if (mrt_temp_file_create(out, &tmp, &e) != MRT_OK) {
        msg("%s", e.message);
        return -1;
    }
    size_t n = strlen(tmp) + sizeof "-journal";
    export_tmp_journal = malloc(n);
    if (!export_tmp_journal) {
        msg("out of memory");
        unlink(tmp);
        mrt_free(tmp);
        return -1;
    }
    snprintf(export_tmp_journal, n, "%s-journal", tmp);
    export_tmp = tmp;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = export_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    return 0;
}

/* Moves the finished temporary file to OUT (`replace`: else never over an
 * existing OUT), or removes it (`ok` false). 0, or -1 with a message. */
static int export_tmp_finish(const char *out, int ok, int replace) {
    int ret = 0;
    mrt_error e;
    if (!ok) {
        unlink(export_tmp);
        ret = -1;
    } else if (mrt_temp_file_commit(export_tmp, out, replace, &e) != MRT_OK) {
        msg("%s", e.message);
        ret = -1;
    }
    unlink(export_tmp_journal);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    mrt_free(export_tmp);
    free(export_tmp_journal);
    export_tmp = export_tmp_journal = NULL;
    return ret;
}

static int export_sqlar(const char *out) {
    struct stat sb;
    if (lstat(out, &sb) == 0) {
        msg("%s: exists already (not overwritten)", out);
        return EXIT_FATAL;
    }
    if (export_tmp_create(out) != 0) return EXIT_FATAL;
    sqlite3 *ar;
    if (sqlite3_open_v2(export_tmp, &ar, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        msg("%s: %s", out, sqlite3_errmsg(ar));
        sqlite3_close(ar);
        export_tmp_finish(out, 0, 0);
        return EXIT_FATAL;
    }
    /* The table sqlite3 -A creates (https://sqlite.org/sqlar.html). */
    if (sqlite3_exec(ar,
                     "BEGIN; CREATE TABLE IF NOT EXISTS sqlar(name TEXT PRIMARY KEY, mode INT, "
                     "mtime INT, sz INT, data BLOB)",
                     NULL, NULL, NULL) != SQLITE_OK) {
        msg("%s: %s", out, sqlite3_errmsg(ar));
        sqlite3_close(ar);
        export_tmp_finish(out, 0, 0);
        return EXIT_FATAL;
    }
    sqlite3_stmt *ins = NULL;
    sqlite3_prepare_v2(ar, "INSERT OR REPLACE INTO sqlar VALUES (?1, ?2, ?3, ?4, ?5)", -1, &ins, NULL);
    size_t n;
    int failed;
    row *rows = select_rows(0, NULL, &n, &failed);
    if (rows && assign_outputs(rows, n, 0) != 0) failed++, n = 0;
    for (size_t i = 0; rows && i < n; i++) {
        if (!name_is_safe(rows[i].name)) {
            msg("refusing hostile name '%s'", rows[i].name);
            failed++;
            continue;
        }
        size_t len = 0;
        uint8_t *png = decode_id(rows[i].id, rows[i].name, &len);
        const char *name = rows[i].out;
        if (!png) {
            failed++;
        } else {
            /* Stored uncompressed (sz == length(data)): PNG is compressed already. */
            sqlite3_reset(ins);
            sqlite3_bind_text(ins, 1, name, -1, SQLITE_STATIC);
            sqlite3_bind_int(ins, 2, 0100644);
            sqlite3_bind_int64(ins, 3, rows[i].mtime >= 0 ? rows[i].mtime : (long long)time(NULL));
            sqlite3_bind_int64(ins, 4, (sqlite3_int64)len);
            sqlite3_bind_blob(ins, 5, png, (int)len, SQLITE_STATIC);
            if (sqlite3_step(ins) != SQLITE_DONE) {
                msg("%s: %s", out, sqlite3_errmsg(ar));
                failed++;
            } else
                report_output("exported", &rows[i]);
        }
        free(png);
    }
    free_rows(rows, n);
    sqlite3_finalize(ins);
    int rc = sqlite3_exec(ar, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) msg("%s: %s", out, sqlite3_errmsg(ar));
    rc = sqlite3_close(ar) == SQLITE_OK ? rc : SQLITE_ERROR;
    if (export_tmp_finish(out, rc == SQLITE_OK, 0) != 0) return EXIT_FATAL;
    return failed ? EXIT_SOME : 0;
}

static int cmd_export(int argc, char **argv) {
    if (argc != 1) {
        usage(stderr, "export");
        return EXIT_FATAL;
    }
    const char *out = argv[0];
    if (opt.sqlar) {
        if (open_archive(ARCHIVE_READ) != 0) return EXIT_FATAL;
        return export_sqlar(out);
    }
    struct archive *a = archive_write_new();
    int r;
    if (ends_with(out, ".zip"))
        r = archive_write_set_format_zip(a);
    else {
        r = archive_write_set_format_pax_restricted(a);
        if (ends_with(out, ".tar.gz") || ends_with(out, ".tgz"))
            r = r ? r : archive_write_add_filter_gzip(a);
        else if (ends_with(out, ".tar.xz") || ends_with(out, ".txz"))
            r = r ? r : archive_write_add_filter_xz(a);
        else if (ends_with(out, ".tar.bz2") || ends_with(out, ".tbz2"))
            r = r ? r : archive_write_add_filter_bzip2(a);
        else if (ends_with(out, ".tar.zst") || ends_with(out, ".tzst"))
            r = r ? r : archive_write_add_filter_zstd(a);
        else if (!ends_with(out, ".tar")) {
            msg("%s: unknown format (use .tar, .tar.gz, .tar.xz, .tar.bz2, .tar.zst, .zip or --sqlar)",
                out);
            archive_write_free(a);
            return EXIT_FATAL;
        }
    }
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
        msg("%s: %s", out, archive_error_string(a));
        archive_write_free(a);
        return EXIT_FATAL;
    }
    if (open_archive(ARCHIVE_READ) != 0) {
        archive_write_free(a);
        return EXIT_FATAL;
    }
    if (export_tmp_create(out) != 0) {
        archive_write_free(a);
        return EXIT_FATAL;
    }
    if (archive_write_open_filename(a, export_tmp) != ARCHIVE_OK) {
        msg("%s: %s", out, archive_error_string(a));
        archive_write_free(a);
        export_tmp_finish(out, 0, 1);
        return EXIT_FATAL;
    }
    size_t n;
    int failed;
    row *rows = select_rows(0, NULL, &n, &failed);
    if (rows && assign_outputs(rows, n, 0) != 0) failed++, n = 0;
    int fatal = 0;
    for (size_t i = 0; rows && i < n && !fatal; i++) {
        if (!name_is_safe(rows[i].name)) {
            msg("refusing hostile name '%s'", rows[i].name);
            failed++;
            continue;
        }
        size_t len = 0;
        uint8_t *png = decode_id(rows[i].id, rows[i].name, &len);
        const char *name = rows[i].out;
        if (!png)
            failed++;
        else {
            struct archive_entry *e = archive_entry_new();
            archive_entry_set_pathname(e, name);
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_perm(e, 0644);
            archive_entry_set_size(e, (la_int64_t)len);
            archive_entry_set_mtime(e, rows[i].mtime >= 0 ? rows[i].mtime : time(NULL), 0);
            if (archive_write_header(a, e) != ARCHIVE_OK ||
                archive_write_data(a, png, len) != (la_ssize_t)len) {
                msg("%s: %s", out, archive_error_string(a));
                fatal = 1;
            } else
                report_output("exported", &rows[i]);
            archive_entry_free(e);
        }
        free(png);
    }
    free_rows(rows, n);
    if (archive_write_close(a) != ARCHIVE_OK) {
        msg("%s: %s", out, archive_error_string(a));
        fatal = 1;
    }
    archive_write_free(a);
    if (export_tmp_finish(out, !fatal, 1) != 0) fatal = 1;
    return fatal ? EXIT_FATAL : failed ? EXIT_SOME : 0;
}

/* ----------------------------------------------------------- verify */

static int cmd_verify(int argc, char **argv) {
    (void)argv;
    if (argc) {
        usage(stderr, "verify");
        return EXIT_FATAL;
    }
    if (open_archive(ARCHIVE_READ) != 0) return EXIT_FATAL;
    int bad = 0;
    sqlite3_stmt *st = prep("PRAGMA integrity_check");
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        if (strcmp(t, "ok") != 0) {
            msg("integrity_check: %s", t);
            bad++;
        }
    }
    sqlite3_finalize(st);
    st = prep("SELECT id, name, width, height, model, rate_id, data FROM images ORDER BY name");
    long n = 0;
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        n++;
        sqlite3_int64 id = sqlite3_column_int64(st, 0);
        const char *name = (const char *)sqlite3_column_text(st, 1);
        if (!name_is_safe(name)) {
            msg("hostile name '%s'", name);
            bad++;
            continue;
        }
        mrt_info hdr;
        mrt_error err;
        const uint8_t *bits = sqlite3_column_blob(st, 6);
        size_t nb = (size_t)sqlite3_column_bytes(st, 6);
        if (mrt_info_read(bits, nb, &hdr, &err) != MRT_OK) {
            msg("%s: %s", name, err.message);
            bad++;
            continue;
        }
        char model[MRT_FINGERPRINT_HEX];
        mrt_fingerprint_hex(hdr.fingerprint, model);
        if (hdr.width != sqlite3_column_int(st, 2) || hdr.height != sqlite3_column_int(st, 3) ||
            hdr.rate_id != sqlite3_column_int(st, 5) ||
            strcmp(model, (const char *)sqlite3_column_text(st, 4)) != 0) {
            msg("%s: the row's width/height/model/rate_id disagree with the bitstream header", name);
            bad++;
            continue;
        }
        size_t len;
        uint8_t *png = decode_id(id, name, &len);
        if (!png) {
            bad++;
            continue;
        }
        free(png);
        info_msg("ok %s", name);
    }
    sqlite3_finalize(st);
    /* the further names must be as safe as the images' own */
    st = prep("SELECT name FROM names WHERE name NOT IN (SELECT name FROM images) ORDER BY name");
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (!name_is_safe(name)) {
            msg("hostile name '%s'", name);
            bad++;
        }
    }
    sqlite3_finalize(st);
    if (opt.json)
        printf("{\"images\": %ld, \"bad\": %d}\n", n, bad);
    else
        info_msg("%ld images, %d problems", n, bad);
    return bad ? EXIT_SOME : 0;
}

/* ------------------------------------------------------------- main */

/* The options, one table (getopt_long): they may stand before or after
 * the command and its arguments; "--" ends them. */
enum {
    OPT_FILE = 'f', OPT_DIR = 'C', OPT_THREADS = 'j', OPT_QUIET = 'q', OPT_HELP = 'h',
    OPT_MODEL = 256, OPT_RATE, OPT_BYTES, OPT_REFINE, OPT_JSON, OPT_SQLAR, OPT_KEEP_ORIGINAL,
    OPT_ORIGINAL,
};
static const struct option long_options[] = {
    {"file", required_argument, NULL, OPT_FILE},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"help", no_argument, NULL, OPT_HELP},
    {"model", required_argument, NULL, OPT_MODEL},
    {"rate", required_argument, NULL, OPT_RATE},
    {"bytes", required_argument, NULL, OPT_BYTES},
    {"refine", required_argument, NULL, OPT_REFINE},
    {"json", no_argument, NULL, OPT_JSON},
    {"sqlar", no_argument, NULL, OPT_SQLAR},
    {"keep-original", no_argument, NULL, OPT_KEEP_ORIGINAL},
    {"original", no_argument, NULL, OPT_ORIGINAL},
    {NULL, 0, NULL, 0},
};

/* The first argument that names a command, for the usage after a bad option. */
static const char *command_named(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        for (int c = 0; c < NCOMMANDS; c++)
            if (strcmp(argv[i], commands[c].name) == 0) return argv[i];
    return NULL;
}

static int run(int argc, char **argv, char **pos) {
    opt.archive = getenv("MRT_ARCHIVE");
    if (!opt.archive || !*opt.archive) opt.archive = "photos.mrtdb";
    int npos = 0;
    opterr = 0;
    optind = 1;
    for (int id; (id = getopt_long(argc, argv, ":f:C:j:qh", long_options, NULL)) != -1;) {
        const char *given = argv[optind - 1];
        char *end;
        long v;
        switch (id) {
        case ':':
            msg("%s needs an argument", given);
            return EXIT_FATAL;
        case '?':
            if (optopt) msg("unknown option '-%c'", optopt);
            else msg("unknown option '%s'", given);
            usage(stderr, command_named(argc, argv));
            return EXIT_FATAL;
        case OPT_FILE: opt.archive = optarg; break;
        case OPT_DIR: opt.dir = optarg; break;
        case OPT_MODEL: opt.model = optarg; break;
        case OPT_RATE:
            if (opt.rate || opt.bytes) {
                msg("--rate and --bytes: give one");
                return EXIT_FATAL;
            }
            opt.rate = optarg;
            break;
        case OPT_BYTES:
            if (mrt_parse_byte_budget(optarg, &opt.bytes) != 0) {
                msg("--bytes: expected a byte budget such as 1500, 2KB or 1.5KiB, got '%s'",
                    optarg);
                return EXIT_FATAL;
            }
            if (opt.rate) {
                msg("--rate and --bytes: give one");
                return EXIT_FATAL;
            }
            break;
        case OPT_REFINE:
            v = strtol(optarg, &end, 10);
            if (end == optarg || *end || v < 0 || v > MRT_REFINE_MAX_STEPS) {
                msg("--refine: expected 0..%d steps, got '%s'", MRT_REFINE_MAX_STEPS, optarg);
                return EXIT_FATAL;
            }
            opt.refine = (int)v;
            break;
        case OPT_THREADS:
            v = strtol(optarg, &end, 10);
            if (end == optarg || *end || v < 1 || v > 1024) {
                msg("-j: expected a thread count, got '%s'", optarg);
                return EXIT_FATAL;
            }
            opt.threads = (int)v;
            break;
        case OPT_QUIET: opt.quiet = 1; break;
        case OPT_JSON: opt.json = 1; break;
        case OPT_SQLAR: opt.sqlar = 1; break;
        case OPT_KEEP_ORIGINAL: opt.keep_original = 1; break;
        case OPT_ORIGINAL: opt.original = 1; break;
        case OPT_HELP: opt.help = 1; break;
        }
    }
    for (int i = optind; i < argc; i++) pos[npos++] = argv[i];
    if (npos == 0) {
        usage(opt.help ? stdout : stderr, NULL);
        return opt.help ? 0 : EXIT_FATAL;
    }
    const char *cmd = pos[0];
    int known = 0;
    for (int i = 0; i < NCOMMANDS; i++) known |= strcmp(cmd, commands[i].name) == 0;
    if (!known) {
        msg("unknown command '%s'", cmd);
        usage(stderr, NULL);
        return EXIT_FATAL;
    }
    if (opt.help) {
        usage(stdout, cmd);
        return 0;
    }
    int nargs = npos - 1;
    char **args = pos + 1;
    int rc;
    if (strcmp(cmd, "add") == 0) rc = cmd_add(nargs, args);
    else if (strcmp(cmd, "ls") == 0) rc = cmd_ls(nargs, args);
    else if (strcmp(cmd, "info") == 0) rc = cmd_info(nargs, args);
    else if (strcmp(cmd, "cat") == 0) rc = cmd_cat(nargs, args);
    else if (strcmp(cmd, "extract") == 0) rc = cmd_extract(nargs, args);
    else if (strcmp(cmd, "export") == 0) rc = cmd_export(nargs, args);
    else if (strcmp(cmd, "verify") == 0) rc = cmd_verify(nargs, args);
    else if (strcmp(cmd, "rm") == 0) rc = cmd_rm(nargs, args);
    else rc = cmd_stats(nargs, args);
    if (db && sqlite3_close(db) != SQLITE_OK) msg("%s: close: %s", opt.archive, sqlite3_errmsg(db));
    mrt_model_set_free(models);
    models = NULL;
    encode_model = NULL;
    budget_models = NULL;
    budget_nmodels = 0;
    return rc;
}

int main(int argc, char **argv) {
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    if (!pos) return EXIT_FATAL;
    int rc = run(argc, argv, pos);
    free(pos);
    /* a listing that could not be written is a failure (`ls > /dev/full`) */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        msg("writing standard output: %s", errno ? strerror(errno) : "write error");
        return EXIT_FATAL;
    }
    return rc;
}
