/*
 * test_ext_threads.c -- the SQL functions from several threads at once,
 * linked statically (mrt_sqlite_static), as mrtarchive links them.
 *
 *   test_ext_threads SAMPLES_DIR
 *
 * 1. One connection encodes and decodes the samples: the reference bytes.
 *    The model is loaded once and freed when that connection closes.
 * 2. Four threads, each with its own connection, start together and
 *    encode and decode every sample (each in a different order): every
 *    result equals the reference byte for byte, and all of them share one
 *    loaded model, freed when the last connection closes.
 * 3. Damage through SQL: every truncation and a flipped bit in every byte
 *    of a bitstream give an error naming mrt_decode, never a result; wrong
 *    types give SQLITE_MISMATCH; NULL gives NULL; PSNR of a known pair.
 * Built with the sanitizers too (scripts/run-tests.sh), where this is the
 * check that the extension neither leaks nor races.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mrt.h"
#include "mrt_sqlite.h"

#define NTHREADS 4
static const char *names[] = {"gravel.jpg", "chelsea.png", "astronaut.jpg"};
#define NSAMPLES (int)(sizeof names / sizeof names[0])

typedef struct {
    uint8_t *data;
    size_t len;
} bytes;

static bytes images[NSAMPLES], ref_bits[NSAMPLES], ref_png[NSAMPLES];
static pthread_barrier_t start;
static int failures;
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            pthread_mutex_lock(&fail_lock);                                  \
            failures++;                                                      \
            fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);             \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
            pthread_mutex_unlock(&fail_lock);                                \
        }                                                                    \
    } while (0)

static sqlite3 *open_db(void) {
    sqlite3 *db = NULL;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK || mrt_sqlite_register(db) != SQLITE_OK) {
        fprintf(stderr, "cannot open a connection: %s\n", db ? sqlite3_errmsg(db) : "?");
        exit(1);
    }
    return db;
}

/* SELECT fn(?1) with a BLOB: returns the BLOB result (malloc'd) or an
 * error code with the message in *msg (static buffer per call site). */
static int call_blob(sqlite3 *db, const char *sql, const void *arg, size_t len, bytes *out,
                     char *msg, size_t msglen) {
    sqlite3_stmt *st;
    out->data = NULL;
    out->len = 0;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        snprintf(msg, msglen, "%s", sqlite3_errmsg(db));
        return rc;
    }
    if (arg) sqlite3_bind_blob64(st, 1, arg, len, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        rc = SQLITE_OK;
        if (sqlite3_column_type(st, 0) == SQLITE_BLOB) {
            const void *p = sqlite3_column_blob(st, 0);
            out->len = (size_t)sqlite3_column_bytes(st, 0);
            out->data = malloc(out->len ? out->len : 1);
            if (out->len) memcpy(out->data, p, out->len);
        }
    } else {
        snprintf(msg, msglen, "%s", sqlite3_errmsg(db));
        rc = sqlite3_extended_errcode(db);
    }
    sqlite3_finalize(st);
    return rc;
}

static int same(const bytes *a, const bytes *b) {
    return a->len == b->len && a->data && b->data && !memcmp(a->data, b->data, a->len);
}

static long long query_int(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    long long v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    sqlite3 *db = open_db();
    char msg[512];
    pthread_barrier_wait(&start);
    for (int k = 0; k < NSAMPLES; k++) {
        int i = (k + id) % NSAMPLES; /* each thread its own order */
        bytes bits, png;
        int rc = call_blob(db, "SELECT mrt_encode(?1)", images[i].data, images[i].len, &bits, msg,
                           sizeof msg);
        CHECK(rc == SQLITE_OK && same(&bits, &ref_bits[i]), "thread %d: encode %s: %s", id,
              names[i], rc ? msg : "bytes differ from the single-threaded run");
        rc = call_blob(db, "SELECT mrt_decode(?1)", ref_bits[i].data, ref_bits[i].len, &png, msg,
                       sizeof msg);
        CHECK(rc == SQLITE_OK && same(&png, &ref_png[i]), "thread %d: decode %s: %s", id, names[i],
              rc ? msg : "PNG differs from the single-threaded run");
        free(bits.data);
        free(png.data);
    }
    /* Every connection uses the one shared copy. */
    CHECK(query_int(db, "SELECT json_extract(mrt_debug(), '$.models_loaded')") == 1,
          "thread %d: models_loaded is not 1", id);
    pthread_barrier_wait(&start); /* all still open here: still one copy */
    CHECK(mrt_sqlite_models_loaded() == 1, "thread %d: %d models loaded", id,
          mrt_sqlite_models_loaded());
    sqlite3_close(db);
    return NULL;
}

static void damage(sqlite3 *db, const bytes *bits) {
    char msg[512];
    bytes out;
    /* Every truncation, including the empty BLOB. */
    for (size_t n = 0; n < bits->len; n++) {
        int rc = call_blob(db, "SELECT mrt_decode(?1)", bits->data, n, &out, msg, sizeof msg);
        CHECK(rc == SQLITE_ERROR && !out.data && !strncmp(msg, "mrt_decode: ", 12),
              "truncated to %zu bytes: rc %d, '%s'", n, rc, msg);
        free(out.data);
    }
    /* One flipped bit in every byte (bit i % 8 of byte i). */
    uint8_t *copy = malloc(bits->len);
    for (size_t i = 0; i < bits->len; i++) {
        memcpy(copy, bits->data, bits->len);
        copy[i] ^= (uint8_t)(1u << (i % 8));
        int rc = call_blob(db, "SELECT mrt_decode(?1)", copy, bits->len, &out, msg, sizeof msg);
        CHECK(rc == SQLITE_ERROR && !out.data && !strncmp(msg, "mrt_decode: ", 12),
              "bit flipped in byte %zu: rc %d, '%s'", i, rc, msg);
        free(out.data);
    }
    free(copy);
}

static void misc(sqlite3 *db) {
    char msg[512];
    bytes out;
    int rc = call_blob(db, "SELECT mrt_encode('text')", NULL, 0, &out, msg, sizeof msg);
    CHECK(rc == SQLITE_MISMATCH && strstr(msg, "mrt_encode: argument 1 (image)"),
          "mrt_encode('text'): rc %d, '%s'", rc, msg);
    rc = call_blob(db, "SELECT mrt_decode(7)", NULL, 0, &out, msg, sizeof msg);
    CHECK(rc == SQLITE_MISMATCH, "mrt_decode(7): rc %d, '%s'", rc, msg);
    CHECK(query_int(db, "SELECT mrt_encode(NULL) IS NULL AND mrt_decode(NULL) IS NULL") == 1,
          "NULL in is not NULL out");
    /* PSNR of a 2x1 pair written here: one pixel off by 10 in R, G, B. */
    uint8_t pa[6] = {0, 0, 0, 0, 0, 0}, pb[6] = {10, 10, 10, 0, 0, 0};
    mrt_image a = {2, 1, pa}, b = {2, 1, pb};
    uint8_t *ea = NULL, *eb = NULL;
    size_t la = 0, lb = 0;
    mrt_error e;
    CHECK(mrt_image_write_png_memory(&a, &ea, &la, &e) == MRT_OK &&
              mrt_image_write_png_memory(&b, &eb, &lb, &e) == MRT_OK,
          "writing the PNG pair");
    sqlite3_stmt *st;
    double psnr = 0;
    if (sqlite3_prepare_v2(db, "SELECT mrt_psnr(?1, ?2)", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_blob(st, 1, ea, (int)la, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, eb, (int)lb, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) psnr = sqlite3_column_double(st, 0);
        sqlite3_finalize(st);
    }
    double want = 10.0 * log10(255.0 * 255.0 / 50.0); /* MSE = 3 * 100 / 6 */
    CHECK(fabs(psnr - want) < 1e-9, "PSNR %.12f, want %.12f", psnr, want);
    mrt_free(ea);
    mrt_free(eb);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_ext_threads SAMPLES_DIR\n");
        return 2;
    }
    char dir[] = "/tmp/mrt-ext-threads-XXXXXX", model[64];
    if (!mkdtemp(dir)) return 1;
    snprintf(model, sizeof model, "%s/model.gguf", dir);
    mrt_error err;
    if (mrt_model_write_random(model, 5, 0, &err) != MRT_OK) {
        fprintf(stderr, "model: %s\n", err.message);
        return 1;
    }
    setenv("MRT_MODEL", model, 1); /* before any thread exists */
    for (int i = 0; i < NSAMPLES; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[1], names[i]);
        if (mrt_read_file(path, MRT_MAX_FILE_BYTES, &images[i].data, &images[i].len, &err) !=
            MRT_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
    }

    /* 1. The single-threaded reference. */
    sqlite3 *db = open_db();
    CHECK(mrt_sqlite_models_loaded() == 0, "a model is loaded before any use");
    char msg[512];
    for (int i = 0; i < NSAMPLES; i++) {
        int rc = call_blob(db, "SELECT mrt_encode(?1)", images[i].data, images[i].len,
                           &ref_bits[i], msg, sizeof msg);
        if (rc == SQLITE_OK)
            rc = call_blob(db, "SELECT mrt_decode(?1)", ref_bits[i].data, ref_bits[i].len,
                           &ref_png[i], msg, sizeof msg);
        if (rc != SQLITE_OK || !ref_bits[i].data || !ref_png[i].data) {
            fprintf(stderr, "reference %s: %s\n", names[i], msg);
            return 1;
        }
    }
    CHECK(mrt_sqlite_models_loaded() == 1, "%d models loaded, want 1", mrt_sqlite_models_loaded());
    damage(db, &ref_bits[0]);
    misc(db);
    sqlite3_close(db);
    CHECK(mrt_sqlite_models_loaded() == 0, "the model outlived its last connection");

    /* 2. Threads with their own connections, all at once. */
    pthread_t th[NTHREADS];
    pthread_barrier_init(&start, NULL, NTHREADS);
    for (int t = 0; t < NTHREADS; t++) pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t);
    for (int t = 0; t < NTHREADS; t++) pthread_join(th[t], NULL);
    pthread_barrier_destroy(&start);
    CHECK(mrt_sqlite_models_loaded() == 0, "the model outlived its last connection (threads)");

    for (int i = 0; i < NSAMPLES; i++) {
        free(images[i].data);
        free(ref_bits[i].data);
        free(ref_png[i].data);
    }
    unlink(model);
    rmdir(dir);
    if (failures) {
        fprintf(stderr, "test_ext_threads: %d failures\n", failures);
        return 1;
    }
    printf("test_ext_threads: %d threads x %d samples, same bytes as one thread; "
           "model shared and released; damage rejected\n", NTHREADS, NSAMPLES);
    return 0;
}
