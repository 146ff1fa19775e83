/*
 * test_ext_load.c -- mrt.so as any host program loads it: through
 * sqlite3_load_extension(), with no libmrt linked into the program.
 *
 *   test_ext_load MRT_SO SAMPLES_DIR MRT_CLI
 *
 * Two connections load the extension (the second while the first is open,
 * then a third after both closed: sqlite3_close() dlclose()s it), encode and
 * decode a sample, and see one shared model. Makes its model with
 * `MRT_CLI init-model`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

static int failures;
#define CHECK(cond, ...)                                          \
    do {                                                          \
        if (!(cond)) {                                            \
            failures++;                                           \
            fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                         \
            fputc('\n', stderr);                                  \
        }                                                         \
    } while (0)

static sqlite3 *open_and_load(const char *so) {
    sqlite3 *db = NULL;
    char *err = NULL;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK) exit(1);
    /* The C-API-only switch: load_extension() stays off in SQL. */
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 1, NULL);
    if (sqlite3_load_extension(db, so, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "sqlite3_load_extension(%s): %s\n", so, err ? err : "?");
        exit(1);
    }
    return db;
}

/* Runs a query with one text result, compared with `want`. */
static void expect(sqlite3 *db, const char *sql, const char *want) {
    sqlite3_stmt *st;
    const char *got = NULL;
    char buf[256] = "";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && (got = (const char *)sqlite3_column_text(st, 0)))
            snprintf(buf, sizeof buf, "%s", got);
        sqlite3_finalize(st);
    }
    CHECK(got && !strcmp(buf, want), "%s: got '%s' (%s), want '%s'", sql, got ? buf : "no row",
          sqlite3_errmsg(db), want);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: test_ext_load MRT_SO SAMPLES_DIR MRT_CLI\n");
        return 2;
    }
    const char *so = argv[1];
    char dir[] = "/tmp/mrt-ext-load-XXXXXX", cmd[8192], model[64];
    if (!mkdtemp(dir)) return 1;
    snprintf(model, sizeof model, "%s/model.gguf", dir);
    snprintf(cmd, sizeof cmd, "'%s' init-model '%s' --seed 4 --quiet", argv[3], model);
    if (system(cmd) != 0) {
        fprintf(stderr, "%s failed\n", cmd);
        return 1;
    }
    setenv("MRT_MODEL", model, 1);

    sqlite3 *a = open_and_load(so);
    expect(a, "SELECT json_extract(mrt_debug(), '$.build.linkage')", "loadable");
    /* A sample through encode and decode, the bytes bound from here. */
    snprintf(cmd, sizeof cmd, "%s/coffee.jpg", argv[2]);
    FILE *f = fopen(cmd, "rb");
    static unsigned char img[1 << 20];
    size_t n = f ? fread(img, 1, sizeof img, f) : 0;
    if (f) fclose(f);
    CHECK(n > 1000, "cannot read %s", cmd);
    sqlite3_stmt *st;
    int w = 0;
    if (sqlite3_prepare_v2(a, "SELECT json_extract(mrt_info(mrt_encode(?1)), '$.width'), "
                              "length(mrt_decode(mrt_encode(?1)))",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_blob(st, 1, img, (int)n, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 1) > 1000)
            w = sqlite3_column_int(st, 0);
        else
            fprintf(stderr, "encode/decode: %s\n", sqlite3_errmsg(a));
        sqlite3_finalize(st);
    }
    CHECK(w == 600, "coffee.jpg came back %d pixels wide, want 600", w);

    /* A second connection, while the first is open: the same model. */
    sqlite3 *b = open_and_load(so);
    expect(b, "SELECT json_extract(mrt_debug(), '$.models_loaded')", "1");
    sqlite3_close(a);
    expect(b, "SELECT json_extract(mrt_debug(), '$.model.source')", "MRT_MODEL");
    sqlite3_close(b);

    /* Loaded again after every connection closed (and dlclose'd it). */
    sqlite3 *c = open_and_load(so);
    expect(c, "SELECT json_extract(mrt_debug(), '$.models_loaded')", "1");
    sqlite3_close(c);

    unlink(model);
    rmdir(dir);
    if (failures) {
        fprintf(stderr, "test_ext_load: %d failures\n", failures);
        return 1;
    }
    printf("test_ext_load: loaded three times through sqlite3_load_extension, model shared\n");
    return 0;
}
