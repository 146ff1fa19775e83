/*
 * mrtarchive.h -- what mrtarchive's files share. The program is a thin main
 * (mrtarchive.c: options, dispatch) over these, built as one static
 * library (mrtarchive_core) that the fuzzer links too:
 *
 *   archive.c   options, messages, names, the database (open, schema,
 *               migration), the model set, usage
 *   add.c       add: ingest of files, folders and tar/zip members, the
 *               encoder threads, storing, names and aliases
 *   read.c      ls, info, stats, cat, and the decode and row helpers
 *   export.c    extract, export and backup
 *   maintain.c  rm and verify
 *   merge.c     merge: archives made apart (shards) into one
 *   progress.c  the progress line of add, export and extract
 *   serve.c     serve: the web gallery (libmicrohttpd)
 */
#ifndef MRTARCHIVE_H
#define MRTARCHIVE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sqlite3.h>
#include <time.h>

#include "mrt.h"
#include "mrt_json.h"

#define EXIT_SOME 1
#define EXIT_FATAL 2
#define MAX_INPUT_BYTES ((long long)MRT_MAX_FILE_BYTES) /* as mrt_image_read_file */
#define BATCH_FILES 16                         /* commit at least this often... */
#define BATCH_SECONDS 2                        /* ...or after this long */

/* ------------------------------------------------------------ archive.c */

typedef struct archive_options {
    const char *archive;
    int archive_option; /* the archive was named by -f */
    const char *model;
    const char *rate;  /* --rate: a rate point beside the model */
    size_t bytes;      /* --bytes: a byte budget per photo; 0: none */
    const char *dir; /* -C */
    const char *files_from; /* add -T/--files-from LIST: paths named as given */
    int threads;       /* -j: add's encoders; the codec's threads for the others */
    int refine;        /* --refine: latent refinement steps */
    int quiet, json, sqlar, help;
    int keep_original; /* add --keep-original */
    int original;      /* extract/cat --original */
    int scale;         /* cat/extract/export --scale: 2, 4 or 8; 0 or 1: full size */
    const char *listen; /* serve --listen ADDR:PORT */
} archive_options;
extern archive_options opt;

/* The archive's connection (open_archive). */
extern sqlite3 *db;

typedef struct archive_command {
    const char *name, *usage;
} archive_command;
extern const archive_command commands[];
extern const int ncommands;

enum { ARCHIVE_READ, ARCHIVE_WRITE, ARCHIVE_CREATE };

void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void info_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* --json summaries: one inline object on its own line of stdout; members go
 * between the two calls */
void json_line_begin(mrt_json *w);
void json_line_end(mrt_json *w);
/* bytes as "812 B", "3.4 KB", "2.4 MB", "1.07 GB" (powers of 1000) */
void human_bytes(double b, char *out, size_t size);
void msg(const char *fmt, ...);
void info_msg(const char *fmt, ...);
void put_shown(FILE *f, const char *text);
void usage(FILE *f, const char *cmd);
int name_is_safe(const char *name);
char *make_name(const char *path, const char **why);
int ends_with(const char *s, const char *suffix);
char *png_name(const char *name);
void db_fail(const char *what);
int exec(const char *sql);
sqlite3_stmt *prep(const char *sql);
/* A "file:" URI of `path` with `query` ("mode=ro", ...); malloc'd. */
char *file_uri(const char *path, const char *query);
mrt_model_set *archive_models(void);
/* The model of `set` that decodes streams of the fingerprint `hex` (an
 * images.model value, 16 hex digits): its own, a rate point beside it, or
 * retired weights kept for decoding; NULL when none does, or `hex` is not
 * a fingerprint. */
const mrt_model *model_for_hex(mrt_model_set *set, const char *hex);
/* A row's bitstream against the row's copies of its header (images.width,
 * height, model, rate_id): 0 when the header reads (into *hdr) and agrees;
 * else -1 with why in `why` (the header's error, or the disagreement). */
int row_header_check(const void *bits, size_t len, int width, int height, const char *model,
                     int rate_id, mrt_info *hdr, char *why, size_t size);
int codec_threads(int encoders);
int open_archive(int mode);
/* The start of a command: the usage when its arguments are not right
 * (args_ok false), else the archive opened in `mode`; -1 on failure. */
int begin_command(const char *name, int args_ok, int mode);
/* Frees the model set (the end of a run). */
void archive_models_free(void);

/* ----------------------------------------------------------- progress.c */

/* The progress line on a terminal (see progress.c); nothing elsewhere.
 * total_items, total_bytes: < 0 or 0 when unknown; out_word: NULL for no
 * output size ("stored", "written"). */
/* on a terminal and without --quiet (worth counting the work first) */
bool progress_wanted(void);
void progress_begin(const char *verb, const char *items, const char *out_word, long total_items,
                    long long total_bytes);
void progress_update(long items_done, long long bytes_in, long long bytes_out);
/* true while the line is shown: the per-file lines are left out */
bool progress_shown(void);
/* wipes the line before a message (the next update redraws it) */
void progress_clear(void);
void progress_end(void);

/* ---------------------------------------------------------------- add.c */

/* What one add did, and whether the archive stopped taking images. */
typedef struct add_state {
    long stored, unchanged, duplicates, skipped, failed;
    long long bytes_in, bytes_stored; /* read from the inputs; bitstreams stored */
    int in_tx;
    long batch;
    long batch_stored; /* images stored in the open transaction */
    time_t batch_start;
    /* The archive cannot take more (disk full, I/O error): the add stops,
     * with one message at the end (add_stopped). */
    int stopped;
    char stopped_why[300];
} add_state;
extern add_state ing;

int remove_name(const char *name);
int cmd_add(int argc, char **argv);
void add_archive(const char *path);
int tx_commit(void);
void deferred_add_all(void);
int resolve_encoder(void);
/* Forgets the encoder resolve_encoder chose (the end of a run). */
void add_reset(void);

/* --------------------------------------------------------------- read.c */

/* A list of (id, name, mtime) rows: the named images, or all; `out` is
 * the file name extract and export write (assign_outputs). */
typedef struct {
    sqlite3_int64 id;
    long long mtime;
    char *name;
    char *out;
} row;

uint8_t *decode_id(sqlite3_int64 id, const char *name, size_t *len);
uint8_t *original_id(sqlite3_int64 id, const char *name, size_t *len);
int assign_outputs(row *rows, size_t n, int original);
void report_output(const char *verb, const row *r);
row *select_rows(int argc, char **argv, size_t *n, int *missing);
void free_rows(row *rows, size_t n);
int cmd_ls(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_cat(int argc, char **argv);

/* -------------------------------------------------------------- serve.c */

int cmd_serve(int argc, char **argv);

/* ----------------------------------------------------- export.c, maintain.c */

int cmd_extract(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_merge(int argc, char **argv);

#endif /* MRTARCHIVE_H */
