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
