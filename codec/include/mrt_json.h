/*
 * mrt_json.h -- the one JSON writer of libmrt and its programs.
 *
 * Everything mrt writes as JSON goes through it: `mrt info` and SQL
 * mrt_info() (mrt_info_json), `mrt eval`, the trainer's .jsonl log, the SQL
 * functions mrt_debug() and mrt_model(), and bench_rd's rd-*.json. It keeps
 * what hand-written printf JSON gets wrong in one place: commas between
 * members, string escaping (mrt_json_quote), non-finite numbers (written as
 * null, since JSON has no NaN), nesting, and the layout.
 *
 * The writer streams to a FILE (so `mrt eval` prints each image's line as it
 * is measured) or builds the text in memory. Members are added in order;
 * `key` names the member inside an object and must be NULL inside an array
 * and at the top level. Each container is laid out inline
 * ({"a": 1, "b": 2}) or one member per line, indented two spaces a level:
 *
 *   mrt_json w;
 *   mrt_json_to_text(&w);
 *   mrt_json_object(&w, NULL, MRT_JSON_INLINE);
 *   mrt_json_int(&w, "width", 512);
 *   mrt_json_real(&w, "bpp", "%.6f", 0.0126);
 *   mrt_json_end(&w);
 *   char *text = mrt_json_text(&w);   // {"width": 512, "bpp": 0.012600}
 *
 * Errors (out of memory, a failed write, nesting deeper than
 * MRT_JSON_MAX_DEPTH, an end without a begin) are sticky: later calls do
 * nothing, and mrt_json_text / mrt_json_finish report the failure once.
 */
#ifndef MRT_JSON_H
#define MRT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MRT_JSON_MAX_DEPTH 16

typedef enum mrt_json_layout {
    MRT_JSON_INLINE = 0, /* members on one line, ", " between them */
    MRT_JSON_LINES = 1,  /* each member on its own line, indented */
} mrt_json_layout;

/* The writer's state; its fields are private (a struct, not a handle, so
 * that it can live on the stack and a writer cannot fail to be made). */
typedef struct mrt_json {
    FILE *file; /* the sink, or NULL: into text */
    char *text;
    size_t len, cap;
    int depth;
    int members[MRT_JSON_MAX_DEPTH];        /* members written so far, per level */
    unsigned char lines[MRT_JSON_MAX_DEPTH]; /* the layout of each open container */
    unsigned char is_object[MRT_JSON_MAX_DEPTH];
    bool failed;
} mrt_json;

void mrt_json_to_file(mrt_json *w, FILE *file);
void mrt_json_to_text(mrt_json *w);

/* Open an object or array as the next member; close it with mrt_json_end. */
void mrt_json_object(mrt_json *w, const char *key, mrt_json_layout layout);
void mrt_json_array(mrt_json *w, const char *key, mrt_json_layout layout);
void mrt_json_end(mrt_json *w);

/* value NULL writes null */
void mrt_json_string(mrt_json *w, const char *key, const char *value);
void mrt_json_int(mrt_json *w, const char *key, long long value);
/* format: one printf conversion of a double ("%.6f", "%g", ...); a NaN or
 * an infinity is written as null */
void mrt_json_real(mrt_json *w, const char *key, const char *format, double value);
void mrt_json_bool(mrt_json *w, const char *key, bool value);
void mrt_json_null(mrt_json *w, const char *key);
/* json: text that is already one JSON value, written as it is (the caller
 * vouches for it; NULL writes null) */
void mrt_json_raw(mrt_json *w, const char *key, const char *json);

/* In memory: the text (malloc'd, free with mrt_free), or NULL if anything
 * failed; the writer is then empty. */
char *mrt_json_text(mrt_json *w);
/* To a file: 0, or -1 if anything failed (the file is not closed). */
int mrt_json_finish(mrt_json *w);

#ifdef __cplusplus
}
#endif

#endif /* MRT_JSON_H */
