/*
 * maintain.c -- mrtarchive rm and verify (mrtarchive.h).
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

int cmd_rm(int argc, char **argv) {
    if (begin_command("rm", argc >= 1, ARCHIVE_WRITE) != 0) return EXIT_FATAL;
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


/* ----------------------------------------------------------- verify */

int cmd_verify(int argc, char **argv) {
    (void)argv;
    if (begin_command("verify", argc == 0, ARCHIVE_READ) != 0) return EXIT_FATAL;
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
        char why[sizeof ((mrt_error *)0)->message + 80];
        if (row_header_check(sqlite3_column_blob(st, 6), (size_t)sqlite3_column_bytes(st, 6),
                             sqlite3_column_int(st, 2), sqlite3_column_int(st, 3),
                             (const char *)sqlite3_column_text(st, 4), sqlite3_column_int(st, 5),
                             &hdr, why, sizeof why) != 0) {
            msg("%s: %s", name, why);
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
    if (opt.json) {
        mrt_json w;
        json_line_begin(&w);
        mrt_json_int(&w, "images", n);
        mrt_json_int(&w, "bad", bad);
        json_line_end(&w);
    } else
        info_msg("%ld images, %d problems", n, bad);
    return bad ? EXIT_SOME : 0;
}
