/*
 * mrtarchive.c -- a photo archive in one SQLite file (sql/schema.sql), over
 * libmrt and the mrt SQL functions (ext/, linked statically) and libarchive.
 * This file is the command line (options, dispatch); the commands are the
 * library behind mrtarchive.h.
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

#include "mrtarchive.h"
#include "mrt.h"
#include "mrt_sha256.h"

/* ------------------------------------------------------------- main */

/* The options, one table (getopt_long): they may stand before or after
 * the command and its arguments; "--" ends them. */
enum {
    OPT_FILE = 'f', OPT_FILES_FROM = 'T', OPT_DIR = 'C', OPT_THREADS = 'j', OPT_QUIET = 'q', OPT_HELP = 'h',
    OPT_MODEL = 256, OPT_RATE, OPT_BYTES, OPT_REFINE, OPT_JSON, OPT_SQLAR, OPT_KEEP_ORIGINAL,
    OPT_ORIGINAL, OPT_SCALE, OPT_LISTEN,
};
static const struct option long_options[] = {
    {"file", required_argument, NULL, OPT_FILE},
    {"files-from", required_argument, NULL, OPT_FILES_FROM},
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
    {"scale", required_argument, NULL, OPT_SCALE},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {NULL, 0, NULL, 0},
};

/* The first argument that names a command, for the usage after a bad option. */
static const char *command_named(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        for (int c = 0; c < ncommands; c++)
            if (strcmp(argv[i], commands[c].name) == 0) return argv[i];
    return NULL;
}

static int run(int argc, char **argv, char **pos) {
    opt.archive = getenv("MRT_ARCHIVE");
    if (!opt.archive || !*opt.archive) opt.archive = "photos.mrtdb";
    int npos = 0;
    opterr = 0;
    optind = 1;
    for (int id; (id = getopt_long(argc, argv, ":f:T:C:j:qh", long_options, NULL)) != -1;) {
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
        case OPT_FILE:
            opt.archive = optarg;
            opt.archive_option = 1;
            break;
        case OPT_FILES_FROM: opt.files_from = optarg; break;
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
        case OPT_SCALE:
            opt.scale = 0;
            for (int d = 1; d <= 8; d *= 2) {
                char fraction[8];
                snprintf(fraction, sizeof fraction, "1/%d", d);
                if (strcmp(optarg, fraction) == 0 || (optarg[0] == '0' + d && !optarg[1]))
                    opt.scale = d;
            }
            if (!opt.scale) {
                msg("--scale: expected 1/2, 1/4 or 1/8, got '%s'", optarg);
                return EXIT_FATAL;
            }
            break;
        case OPT_LISTEN: opt.listen = optarg; break;
        case OPT_HELP: opt.help = 1; break;
        }
    }
    for (int i = optind; i < argc; i++) pos[npos++] = argv[i];
    if (opt.original && opt.scale > 1) {
        msg("--original is the kept file's bytes as they are: it cannot be scaled");
        return EXIT_FATAL;
    }
    if (npos == 0) {
        usage(opt.help ? stdout : stderr, NULL);
        return opt.help ? 0 : EXIT_FATAL;
    }
    const char *cmd = pos[0];
    int known = 0;
    for (int i = 0; i < ncommands; i++) known |= strcmp(cmd, commands[i].name) == 0;
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
    else if (strcmp(cmd, "serve") == 0) rc = cmd_serve(nargs, args);
    else if (strcmp(cmd, "backup") == 0) rc = cmd_backup(nargs, args);
    else if (strcmp(cmd, "merge") == 0) rc = cmd_merge(nargs, args);
    else rc = cmd_stats(nargs, args);
    if (db && sqlite3_close(db) != SQLITE_OK) msg("%s: close: %s", opt.archive, sqlite3_errmsg(db));
    archive_models_free();
    add_reset();
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
