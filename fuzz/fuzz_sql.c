/*
 * fuzz_sql.c -- libFuzzer harness for the SQL functions' arguments: each
 * input is one call of mrt_encode (1, 2 or 3 arguments), mrt_decode (1 or 2),
 * mrt_info, mrt_psnr or mrt_msssim, with arguments of every SQLite type
 * built from the input bytes, through a real in-memory connection with the
 * extension registered (mrt_sqlite_register, the static flavour
 * mrtarchive links).
 *
 * Input layout: byte 0 picks the function; then per argument one type byte
 * and its payload:
 *   0 NULL          1 INTEGER (8 bytes, little-endian)   2 REAL (8 bytes)
 *   3 TEXT (1 length byte, then bytes)   4 BLOB (2 length bytes, then bytes)
 *   5 a valid PNG (24x16), 6 a valid bitstream of it (fuzz_model.h's model)
 * Missing bytes read as zero. mrt_encode's refinement steps are taken
 * modulo 4: the point is the argument checks, not thousands of steps.
 *
 * Besides "no crash, leak or UB" it checks what ext/README.md promises: a
 * call either returns a value of its documented type (NULL for a NULL
 * argument) or fails with an error message that names the function; a
 * bitstream from mrt_encode with a byte budget is within the budget and
 * reads back with mrt_info_read; a decoded image is a PNG.
 *
 * Run (see fuzz/README.md):
 *     ./fuzz_sql -max_total_time=600 -timeout=10 work/sql seeds/sql
 */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_expect.h"
#include "fuzz_model.h"
#include "mrt.h"
#include "mrt_sqlite.h"

static sqlite3 *db;
static uint8_t *seed_png, *seed_bits;
static size_t seed_png_len, seed_bits_len;

static const struct {
    const char *sql;
    int nargs;
    int result; /* the SQLite type of a value */
} calls[] = {
    {"SELECT mrt_encode(?1)", 1, SQLITE_BLOB},
    {"SELECT mrt_encode(?1, ?2)", 2, SQLITE_BLOB},
    {"SELECT mrt_encode(?1, ?2, ?3)", 3, SQLITE_BLOB},
    {"SELECT mrt_decode(?1)", 1, SQLITE_BLOB},
    {"SELECT mrt_info(?1)", 1, SQLITE_TEXT},
    {"SELECT mrt_psnr(?1, ?2)", 2, SQLITE_FLOAT},
    {"SELECT mrt_msssim(?1, ?2)", 2, SQLITE_FLOAT},
    {"SELECT mrt_decode(?1, ?2)", 2, SQLITE_BLOB}, /* at a scale */
};
#define NCALLS (sizeof calls / sizeof calls[0])

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    /* the model stays on disk for the process: the connection loads it by name */
    const char *dir = getenv("TMPDIR");
    static char path[512];
    snprintf(path, sizeof path, "%s/mrt-fuzz-sql-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    mrt_error err;
    if (fd < 0 || mrt_fuzz_model_write(path, &err) != MRT_OK) {
        fprintf(stderr, "fuzz_sql: cannot write the model\n");
        exit(1);
    }
    close(fd);
    char sql[600];
    snprintf(sql, sizeof sql, "SELECT mrt_model('%s')", path);
    if (sqlite3_open(":memory:", &db) != SQLITE_OK || mrt_sqlite_register(db) != SQLITE_OK ||
        sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "fuzz_sql: cannot set up the connection: %s\n", sqlite3_errmsg(db));
        exit(1);
    }
    /* a small photo-like PNG and its bitstream */
    mrt_image img = {24, 16, malloc(24 * 16 * 3)};
    for (int i = 0; i < 24 * 16 * 3; i++) img.rgb[i] = (uint8_t)(i * 7 + (i / 72) * 13);
    mrt_model *m = NULL;
    if (mrt_image_write_png_memory(&img, &seed_png, &seed_png_len, &err) != MRT_OK ||
        mrt_model_load(path, &m, &err) != MRT_OK ||
        mrt_encode(m, &img, 1, &seed_bits, &seed_bits_len, &err) != MRT_OK) {
        fprintf(stderr, "fuzz_sql: cannot make the seeds: %s\n", err.message);
        exit(1);
    }
    mrt_model_free(m);
    free(img.rgb);
    return 0;
}

typedef struct {
    const uint8_t *p;
    size_t left;
} input;

static uint8_t take_byte(input *in) {
    if (!in->left) return 0;
    in->left--;
    return *in->p++;
}

static uint64_t take_u64(input *in) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)take_byte(in) << (8 * i);
    return v;
}

/* Binds argument i from the input; returns its SQLite type (a TEXT's bytes
 * in *text, *text_len). */
static int bind_arg(sqlite3_stmt *st, int i, input *in, int is_refine, const uint8_t **text,
                    size_t *text_len) {
    switch (take_byte(in) % 7) {
    case 0:
        sqlite3_bind_null(st, i);
        return SQLITE_NULL;
    case 1: {
        int64_t v = (int64_t)take_u64(in);
        if (is_refine) v = (v % 4 + 4) % 4;
        sqlite3_bind_int64(st, i, v);
        return SQLITE_INTEGER;
    }
    case 2: {
        uint64_t bits = take_u64(in);
        double d;
        memcpy(&d, &bits, sizeof d);
        sqlite3_bind_double(st, i, d);
        return d != d ? SQLITE_NULL : SQLITE_FLOAT; /* SQLite stores a NaN as NULL */
    }
    case 3: {
        size_t n = take_byte(in);
        if (n > in->left) n = in->left;
        sqlite3_bind_text(st, i, (const char *)in->p, (int)n, SQLITE_TRANSIENT);
        *text = in->p, *text_len = n;
        in->p += n, in->left -= n;
        return SQLITE_TEXT;
    }
    case 4: {
        size_t n = take_byte(in) | (size_t)take_byte(in) << 8;
        if (n > in->left) n = in->left;
        sqlite3_bind_blob(st, i, in->p, (int)n, SQLITE_TRANSIENT);
        in->p += n, in->left -= n;
        return SQLITE_BLOB;
    }
    case 5:
        sqlite3_bind_blob(st, i, seed_png, (int)seed_png_len, SQLITE_STATIC);
        return SQLITE_BLOB;
    default:
        sqlite3_bind_blob(st, i, seed_bits, (int)seed_bits_len, SQLITE_STATIC);
        return SQLITE_BLOB;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    input in = {data, size};
    size_t which = take_byte(&in) % NCALLS;
    sqlite3_stmt *st = NULL;
    EXPECT(sqlite3_prepare_v2(db, calls[which].sql, -1, &st, NULL) == SQLITE_OK, "%s",
           sqlite3_errmsg(db));
    int any_null = 0, budget_given = 0;
    size_t budget = 0;
    for (int a = 1; a <= calls[which].nargs; a++) {
        const uint8_t *text = NULL;
        size_t text_len = 0;
        int type = bind_arg(st, a, &in, which == 2 && a == 3, &text, &text_len);
        any_null |= type == SQLITE_NULL;
        /* mrt_encode's rate as a byte budget: the result must fit it */
        if (which >= 1 && which <= 2 && a == 2 && type == SQLITE_TEXT && text_len < 64 &&
            !memchr(text, 0, text_len)) {
            char t[64];
            memcpy(t, text, text_len);
            t[text_len] = 0;
            budget_given = mrt_parse_byte_budget(t, &budget) == 0;
        }
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int got = sqlite3_column_type(st, 0);
        if (any_null)
            EXPECT(got == SQLITE_NULL, "%s with a NULL argument gave type %d", calls[which].sql, got);
        else
            EXPECT(got == calls[which].result || (calls[which].result == SQLITE_FLOAT && got == SQLITE_NULL),
                   "%s gave type %d", calls[which].sql, got);
        if (got == SQLITE_BLOB && which <= 2) {
            mrt_info info;
            mrt_error err;
            const uint8_t *b = sqlite3_column_blob(st, 0);
            size_t n = (size_t)sqlite3_column_bytes(st, 0);
            EXPECT(mrt_info_read(b, n, &info, &err) == MRT_OK, "mrt_encode's result: %s",
                   err.message);
            if (budget_given) EXPECT(n <= budget, "%zu bytes over a %zu-byte budget", n, budget);
        }
        if (got == SQLITE_BLOB && (which == 3 || which == 7))
            EXPECT(sqlite3_column_bytes(st, 0) > 8 &&
                       !memcmp(sqlite3_column_blob(st, 0), "\x89PNG\r\n\x1a\n", 8),
                   "mrt_decode's result is not a PNG");
    } else {
        const char *msg = sqlite3_errmsg(db);
        EXPECT(rc != SQLITE_DONE && rc != SQLITE_MISUSE && rc != SQLITE_INTERNAL,
               "%s: step gave %d", calls[which].sql, rc);
        EXPECT(msg && strncmp(msg, "mrt_", 4) == 0, "%s: the error does not name the function: %s",
               calls[which].sql, msg ? msg : "(none)");
    }
    sqlite3_finalize(st);
    return 0;
}
