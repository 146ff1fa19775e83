/*
 * archive.c -- mrtarchive's core (mrtarchive.h): options, messages, names,
 * the database (open, schema, migration), the model set, usage.
 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <ctype.h>
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
#include "mrt_sqlite.h"
#include "schema_sql.h"
#include "mrt_sha256.h"

/* ------------------------------------------------------------ options */

archive_options opt;

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
void put_shown(FILE *f, const char *text) {
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
    progress_clear();
    fputs(prefix, stderr);
    put_shown(stderr, text);
    fputc('\n', stderr);
    if (text != small) free(text);
}

void msg(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmsg("mrtarchive: ", fmt, ap);
    va_end(ap);
}

void json_line_begin(mrt_json *w) {
    mrt_json_to_file(w, stdout);
    mrt_json_object(w, NULL, MRT_JSON_INLINE);
}

void json_line_end(mrt_json *w) {
    mrt_json_end(w);
    putchar('\n');
    mrt_json_finish(w); /* a failed stdout shows at exit (main checks it) */
}

void human_bytes(double b, char *out, size_t size) {
    if (b < 1e3) snprintf(out, size, "%.0f B", b);
    else if (b < 1e6) snprintf(out, size, "%.1f KB", b / 1e3);
    else if (b < 1e9) snprintf(out, size, "%.1f MB", b / 1e6);
    else snprintf(out, size, "%.2f GB", b / 1e9);
}

void info_msg(const char *fmt, ...) {
    /* per-file lines: not under --quiet, nor under the progress line */
    if (opt.quiet || progress_shown()) return;
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

const archive_command commands[] = {
    {"add", "add [--keep-original] [-T LIST] PATH...\n  Stores PNG and JPEG files, folders (recursively) and the images inside\n"
            "  archives given as arguments (.tar, .tar.gz, .tgz, .tar.xz, .tar.bz2, .tar.zst, .zip).\n"
            "  Names are paths relative to each argument's parent (add /x/photos: photos/...);\n"
            "  -T/--files-from LIST ('-': stdin) adds the paths LIST names, one a line (or\n"
            "  NUL-separated, as find -print0 writes), each named by its path as listed.\n"
            "  Other files are skipped with a reason; identical content (SHA-256) is stored once;\n"
            "  files whose name, size and mtime are unchanged are not read again.\n"
            "  --keep-original also stores each file's original bytes (table `originals`),\n"
            "  including for unchanged files stored earlier without them.\n"
            "  Exit 0: all stored or skipped, 1: some failed (see `stats`), 2: fatal.\n"},
    {"ls", "ls\n  Lists the names (with --json: name, size, format, bytes, bpp).\n"},
    {"info", "info NAME\n  One image's row and bitstream header.\n"},
    {"cat", "cat [--original | --scale 1/2|1/4|1/8] NAME\n  Writes the decoded image as PNG to\n"
            "  stdout (--original: the original file's bytes, if kept by `add --keep-original`;\n"
            "  --scale: at 1/2, 1/4 or 1/8 of its size, each side rounded up, for thumbnails).\n"},
    {"extract", "extract [--original | --scale S] [NAME...] -C DIR\n  Decodes images (all if none named)\n"
                "  to DIR/NAME, with '.png' appended unless NAME ends in .png. --original writes the\n"
                "  original bytes kept by `add --keep-original` to DIR/NAME instead (an image\n"
                "  without one is an error). Never writes outside DIR or through symlinks;\n"
                "  hostile names are refused.\n"},
    {"export", "export OUT [--sqlar] [--scale S]\n  Writes every image, decoded to PNG, into OUT: .tar, .tar.gz,\n"
               "  .tgz, .tar.xz, .tar.bz2, .tar.zst or .zip by its name; --sqlar writes an sqlar\n"
               "  file (`sqlite3 OUT -Ax` unpacks it). Written to a temporary file beside OUT\n"
               "  and renamed at the end: an interrupted export leaves no partial OUT.\n"},
    {"verify", "verify\n  Checks the database, every name, every header, and decodes every image.\n"},
    {"rm", "rm NAME...\n  Removes images.\n"},
    {"stats", "stats\n  Counts, sizes, bits per pixel, models, recorded ingest errors.\n"},
    {"backup", "backup DEST\n  A copy of the archive, safe while it is in use (VACUUM INTO: one consistent\n"
               "  snapshot), checked (integrity_check, the image count, every bitstream's\n"
               "  header) before it is renamed to DEST. An existing DEST is never replaced.\n"},
    {"merge", "merge OUT SHARD...\n  Merges archives made apart (the shards of an ingest spread over hosts,\n"
              "  mrtarchive-parallel) into OUT, created if missing: content stored once (SHA-256),\n"
              "  every name kept, kept originals and ingest errors carried, bitstreams copied as\n"
              "  they are. A shard with images of a model that is not in OUT's model set is\n"
              "  refused (its images listed); a name OUT shows a different photo under is kept as\n"
              "  OUT's and reported (exit 1). One transaction: interrupted, OUT has none of it;\n"
              "  merging a shard again changes nothing.\n"},
    {"serve", "serve [--listen ADDR:PORT]\n  A web gallery of the archive on 127.0.0.1:8080 (or\n"
              "  ADDR:PORT; port 0 picks a free one): thumbnails by name, date or size, search,\n"
              "  each photo with its numbers and original, the stats. Read-only over HTTP;\n"
              "  thumbnails are cached in the archive. Ctrl-C stops it.\n"},
};
#define NCOMMANDS (int)(sizeof commands / sizeof commands[0])
const int ncommands = NCOMMANDS;

void usage(FILE *f, const char *cmd) {
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
int name_is_safe(const char *name) {
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
char *make_name(const char *path, const char **why) {
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

int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

/* The file name an image is extracted/exported under. */
char *png_name(const char *name) {
    size_t n = strlen(name);
    char *out = malloc(n + 5);
    if (!out) return NULL;
    memcpy(out, name, n + 1);
    if (!ends_with(name, ".png")) memcpy(out + n, ".png", 5);
    return out;
}

/* ---------------------------------------------------------- database */

sqlite3 *db;

void db_fail(const char *what) {
    msg("%s: %s: %s", opt.archive, what, sqlite3_errmsg(db));
}

int exec(const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        msg("%s: %s", opt.archive, err ? err : "SQL error");
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

sqlite3_stmt *prep(const char *sql) {
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

/* A "file:" URI of `path` with `query` ("mode=ro", ...). */
char *file_uri(const char *path, const char *query) {
    size_t n = strlen(path);
    char *uri = malloc(3 * n + strlen(query) + 16);
    if (!uri) return NULL;
    char *o = uri + sprintf(uri, "file:");
    for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
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
    char *uri = file_uri(opt.archive, query);
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


/* ------------------------------------------------------------- models */

/* The model set (mrt.h, "model sets"): --model, else the default model,
 * and the rate points beside it. Opened on first need; NULL with a message
 * when there is none. Shared by the encoder threads of add -j. */
static mrt_model_set *models;

mrt_model_set *archive_models(void) {
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

const mrt_model *model_for_hex(mrt_model_set *set, const char *hex) {
    uint8_t fp[MRT_FINGERPRINT_BYTES];
    if (!set || !hex || strlen(hex) != 2 * MRT_FINGERPRINT_BYTES) return NULL;
    for (int i = 0; i < MRT_FINGERPRINT_BYTES; i++) {
        unsigned v;
        if (!isxdigit((unsigned char)hex[2 * i]) || !isxdigit((unsigned char)hex[2 * i + 1]) ||
            sscanf(hex + 2 * i, "%2x", &v) != 1)
            return NULL;
        fp[i] = (uint8_t)v;
    }
    const mrt_model *m;
    mrt_error err;
    if (mrt_model_set_for_stream(set, fp, &m, &err) != MRT_OK ||
        memcmp(mrt_model_fingerprint(m), fp, MRT_FINGERPRINT_BYTES) != 0)
        return NULL;
    return m;
}

int row_header_check(const void *bits, size_t len, int width, int height, const char *model,
                     int rate_id, mrt_info *hdr, char *why, size_t size) {
    static const uint8_t nothing[1];
    mrt_error err;
    if (mrt_info_read(bits ? bits : nothing, bits ? len : 0, hdr, &err) != MRT_OK) {
        snprintf(why, size, "%s", err.message);
        return -1;
    }
    char hex[MRT_FINGERPRINT_HEX];
    mrt_fingerprint_hex(hdr->fingerprint, hex);
    if (hdr->width != width || hdr->height != height || hdr->rate_id != rate_id || !model ||
        strcmp(hex, model) != 0) {
        snprintf(why, size, "the row's width/height/model/rate_id disagree with the bitstream header");
        return -1;
    }
    return 0;
}

void archive_models_free(void) {
    mrt_model_set_free(models);
    models = NULL;
}

/* The codec's threads for one call: add -j N (N > 1) runs N encoders of
 * one thread each, unless MRT_THREADS says otherwise; every other command
 * gives the codec the -j threads (0: libmrt's default). */
int codec_threads(int encoders) {
    if (encoders > 1) return getenv("MRT_THREADS") ? 0 : 1;
    return opt.threads;
}


/* Opens the archive: to read (the read-only commands: an archive on a disc
 * or a read-only mount is readable), to write, or to create it (and apply
 * the schema) if needed. */
int open_archive(int mode) {
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

int begin_command(const char *name, int args_ok, int mode) {
    if (!args_ok) {
        usage(stderr, name);
        return -1;
    }
    return open_archive(mode) != 0 ? -1 : 0;
}
