/*
 * export.c -- mrtarchive extract and export (mrtarchive.h).
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
#include "mrt_json.h"
#include "mrt_sha256.h"

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

int cmd_extract(int argc, char **argv) {
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
    long long written = 0;
    progress_begin("extract", "images", "written", rows ? (long)n : 0, 0);
    for (size_t i = 0; rows && i < n; progress_update((long)++i, 0, written)) {
        if (!name_is_safe(rows[i].name)) {
            msg("refusing hostile name '%s' (absolute, '..', or unsafe characters)", rows[i].name);
            failed++;
            continue;
        }
        size_t len = 0;
        /* --original: the kept bytes, under the stored name itself */
        uint8_t *png = opt.original ? original_id(rows[i].id, rows[i].name, &len)
                                    : decode_id(rows[i].id, rows[i].name, &len);
        if (!png || safe_write(root, rows[i].out, png, len, rows[i].mtime) != 0) {
            failed++;
        } else {
            written += (long long)len;
            report_output("extracted", &rows[i]);
        }
        free(png);
    }
    progress_end();
    free_rows(rows, n);
    close(root);
    return failed ? EXIT_SOME : 0;
}

/* ----------------------------------------------------------- export */

/* An export or a backup is written to a temporary file beside OUT (same
 * folder, so the final rename is atomic); SIGINT/SIGTERM/SIGHUP remove it. */
static char *export_tmp, *export_tmp_journal;

static void export_signal(int sig) {
    if (export_tmp) unlink(export_tmp);
    if (export_tmp_journal) unlink(export_tmp_journal);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Creates OUT's temporary file (mrt_temp_file_create: OUT.tmp-...) and
 * sets the signal handlers that remove it. 0, or -1 with a message. */
static int output_tmp_create(const char *out) {
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
static int output_tmp_finish(const char *out, int ok, int replace) {
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

/* Every image, decoded, handed to write(ctx, row, png, len) under the name
 * export gives it (assign_outputs): 0 written, 1 this one failed, 2 stop.
 * Hostile names are refused and images that do not decode counted in
 * *failed; returns 1 when write stopped the export. */
typedef int (*export_write_fn)(void *ctx, const row *r, const uint8_t *png, size_t len);

static int export_each(export_write_fn write, void *ctx, int *failed) {
    size_t n;
    row *rows = select_rows(0, NULL, &n, failed);
    if (rows && assign_outputs(rows, n, 0) != 0) ++*failed, n = 0;
    int fatal = 0;
    long long written = 0;
    progress_begin("export", "images", "written", rows ? (long)n : 0, 0);
    for (size_t i = 0; rows && i < n && !fatal; progress_update((long)++i, 0, written)) {
        if (!name_is_safe(rows[i].name)) {
            msg("refusing hostile name '%s'", rows[i].name);
            ++*failed;
            continue;
        }
        size_t len = 0;
        uint8_t *png = decode_id(rows[i].id, rows[i].name, &len);
        int r = png ? write(ctx, &rows[i], png, len) : 1;
        if (r == 0) {
            written += (long long)len;
            report_output("exported", &rows[i]);
        } else if (r == 1) {
            ++*failed;
        } else {
            fatal = 1;
        }
        free(png);
    }
    progress_end();
    free_rows(rows, n);
    return fatal;
}

typedef struct {
    sqlite3 *ar;
    sqlite3_stmt *ins;
    const char *out;
} sqlar_writer;

/* Stored uncompressed (sz == length(data)): PNG is compressed already. */
static int add_to_sqlar(void *ctx, const row *r, const uint8_t *png, size_t len) {
    sqlar_writer *w = ctx;
    sqlite3_reset(w->ins);
    sqlite3_bind_text(w->ins, 1, r->out, -1, SQLITE_STATIC);
    sqlite3_bind_int(w->ins, 2, 0100644);
    sqlite3_bind_int64(w->ins, 3, r->mtime >= 0 ? r->mtime : (long long)time(NULL));
    sqlite3_bind_int64(w->ins, 4, (sqlite3_int64)len);
    sqlite3_bind_blob(w->ins, 5, png, (int)len, SQLITE_STATIC);
    if (sqlite3_step(w->ins) != SQLITE_DONE) {
        msg("%s: %s", w->out, sqlite3_errmsg(w->ar));
        return 1;
    }
    return 0;
}

typedef struct {
    struct archive *a;
    const char *out;
} tar_writer;

static int add_to_tar(void *ctx, const row *r, const uint8_t *png, size_t len) {
    tar_writer *w = ctx;
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, r->out);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, (la_int64_t)len);
    archive_entry_set_mtime(e, r->mtime >= 0 ? r->mtime : time(NULL), 0);
    int stop = archive_write_header(w->a, e) != ARCHIVE_OK ||
               archive_write_data(w->a, png, len) != (la_ssize_t)len;
    if (stop) msg("%s: %s", w->out, archive_error_string(w->a));
    archive_entry_free(e);
    return stop ? 2 : 0;
}

static int export_sqlar(const char *out) {
    struct stat sb;
    if (lstat(out, &sb) == 0) {
        msg("%s: exists already (not overwritten)", out);
        return EXIT_FATAL;
    }
    if (output_tmp_create(out) != 0) return EXIT_FATAL;
    sqlite3 *ar;
    if (sqlite3_open_v2(export_tmp, &ar, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        msg("%s: %s", out, sqlite3_errmsg(ar));
        sqlite3_close(ar);
        output_tmp_finish(out, 0, 0);
        return EXIT_FATAL;
    }
    /* The table sqlite3 -A creates (https://sqlite.org/sqlar.html). */
    if (sqlite3_exec(ar,
                     "BEGIN; CREATE TABLE IF NOT EXISTS sqlar(name TEXT PRIMARY KEY, mode INT, "
                     "mtime INT, sz INT, data BLOB)",
                     NULL, NULL, NULL) != SQLITE_OK) {
        msg("%s: %s", out, sqlite3_errmsg(ar));
        sqlite3_close(ar);
        output_tmp_finish(out, 0, 0);
        return EXIT_FATAL;
    }
    sqlite3_stmt *ins = NULL;
    sqlite3_prepare_v2(ar, "INSERT OR REPLACE INTO sqlar VALUES (?1, ?2, ?3, ?4, ?5)", -1, &ins, NULL);
    sqlar_writer w = {ar, ins, out};
    int failed = 0;
    export_each(add_to_sqlar, &w, &failed);
    sqlite3_finalize(ins);
    int rc = sqlite3_exec(ar, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) msg("%s: %s", out, sqlite3_errmsg(ar));
    rc = sqlite3_close(ar) == SQLITE_OK ? rc : SQLITE_ERROR;
    if (output_tmp_finish(out, rc == SQLITE_OK, 0) != 0) return EXIT_FATAL;
    return failed ? EXIT_SOME : 0;
}

int cmd_export(int argc, char **argv) {
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
    if (output_tmp_create(out) != 0) {
        archive_write_free(a);
        return EXIT_FATAL;
    }
    if (archive_write_open_filename(a, export_tmp) != ARCHIVE_OK) {
        msg("%s: %s", out, archive_error_string(a));
        archive_write_free(a);
        output_tmp_finish(out, 0, 1);
        return EXIT_FATAL;
    }
    tar_writer w = {a, out};
    int failed = 0;
    int fatal = export_each(add_to_tar, &w, &failed);
    if (archive_write_close(a) != ARCHIVE_OK) {
        msg("%s: %s", out, archive_error_string(a));
        fatal = 1;
    }
    archive_write_free(a);
    if (output_tmp_finish(out, !fatal, 1) != 0) fatal = 1;
    return fatal ? EXIT_FATAL : failed ? EXIT_SOME : 0;
}

/* ----------------------------------------------------------- backup */

/* A backup's checks, on the finished copy: SQLite's integrity_check, and
 * every stored bitstream's header (magic, version, sizes, CRCs). */
static int check_backup(const char *path, long *images) {
    sqlite3 *c = NULL;
    int ok = sqlite3_open_v2(path, &c, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK;
    sqlite3_stmt *st = NULL;
    if (ok && sqlite3_prepare_v2(c, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(st, 0);
        if (!r || strcmp(r, "ok") != 0) {
            msg("backup check: integrity_check says: %s", r ? r : "(nothing)");
            ok = 0;
        }
    } else if (ok) {
        msg("backup check: %s", sqlite3_errmsg(c));
        ok = 0;
    }
    sqlite3_finalize(st);
    st = NULL;
    *images = 0;
    if (ok && sqlite3_prepare_v2(c, "SELECT name, data FROM images", -1, &st, NULL) == SQLITE_OK) {
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            mrt_info info;
            mrt_error e;
            static const uint8_t nothing[1];
            const uint8_t *b = sqlite3_column_blob(st, 1);
            if (mrt_info_read(b ? b : nothing, (size_t)sqlite3_column_bytes(st, 1), &info, &e) !=
                MRT_OK) {
                msg("backup check: %s: %s", sqlite3_column_text(st, 0), e.message);
                ok = 0;
                break;
            }
            ++*images;
        }
        if (ok && rc != SQLITE_DONE) {
            msg("backup check: %s", sqlite3_errmsg(c));
            ok = 0;
        }
    } else if (ok) {
        msg("backup check: %s", sqlite3_errmsg(c));
        ok = 0;
    }
    sqlite3_finalize(st);
    sqlite3_close(c);
    return ok ? 0 : -1;
}

static long count_images(void) {
    sqlite3_stmt *st = prep("SELECT count(*) FROM images");
    long n = st && sqlite3_step(st) == SQLITE_ROW ? (long)sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return n;
}

int cmd_backup(int argc, char **argv) {
    if (begin_command("backup", argc == 1, ARCHIVE_READ) != 0) return EXIT_FATAL;
    const char *out = argv[0];
    struct stat sb;
    if (lstat(out, &sb) == 0) {
        msg("%s exists: a backup never replaces a file", out);
        return EXIT_FATAL;
    }
    /* The archive's image count just before and just after the copy: the
     * copy is one snapshot in between (an add or rm may run meanwhile), so
     * its count must lie between the two (equal when nothing ran). */
    long before = count_images(), after = -1, copied = -1;
    if (before < 0 || output_tmp_create(out) != 0) return EXIT_FATAL;
    /* VACUUM INTO: a consistent, compacted copy, made by SQLite */
    sqlite3_stmt *st = prep("VACUUM INTO ?1");
    int ok = st != NULL;
    if (ok) {
        sqlite3_bind_text(st, 1, export_tmp, -1, SQLITE_STATIC);
        ok = sqlite3_step(st) == SQLITE_DONE;
        if (!ok) msg("%s: %s", out, sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    if (ok) ok = (after = count_images()) >= 0 && check_backup(export_tmp, &copied) == 0;
    if (ok && (copied < (before < after ? before : after) ||
               copied > (before > after ? before : after))) {
        msg("%s: the copy holds %ld images, the archive %ld before and %ld after", out, copied,
            before, after);
        ok = 0;
    }
    if (output_tmp_finish(out, ok, 0) != 0) return EXIT_FATAL;
    if (opt.json) {
        mrt_json w;
        json_line_begin(&w);
        mrt_json_string(&w, "backup", out);
        mrt_json_int(&w, "images", copied);
        mrt_json_string(&w, "integrity_check", "ok");
        json_line_end(&w);
    } else {
        info_msg("%s: %ld images, integrity_check ok, every bitstream's header read", out, copied);
    }
    return 0;
}
