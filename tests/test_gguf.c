/*
 * test_gguf.c -- SHA-256 and the GGUF subset reader/writer.
 *
 *   - SHA-256 against the FIPS 180-2 vectors, and independence from how the
 *     input is split into updates;
 *   - a writer -> file -> reader round trip using every metadata type and
 *     every tensor type, checking values, 64-byte alignment in memory, and
 *     the fingerprint against a separate hash of the file's bytes;
 *   - hand-built broken files (one per rule in gguf.h), each rejected with
 *     a message that contains the expected words;
 *   - truncation at every offset, and seeded random byte corruption: the
 *     reader must fail cleanly or succeed, never crash or over-read (run
 *     this under -fsanitize=address,undefined as well);
 *   - typed lookups whose messages name both shapes / types.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"
#include "mrt_sha256.h"
#include "testutil.h"

static char tmp_dir[200];

/* ---------------------------------------------------------------- SHA-256 */

static void hex_of(const void *data, size_t len, char hex[65]) {
    uint8_t digest[32];
    mrt_sha256_buffer(data, len, digest);
    mrt_sha256_hex(digest, hex);
}

static void test_sha256_vectors(void) {
    char hex[65];
    hex_of("", 0, hex);
    CHECK(strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0,
          "sha256('') = %s", hex);
    hex_of("abc", 3, hex);
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0,
          "sha256('abc') = %s", hex);
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(m448, strlen(m448), hex);
    CHECK(strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0,
          "sha256(448-bit message) = %s", hex);
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                       "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    hex_of(m896, strlen(m896), hex);
    CHECK(strcmp(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1") == 0,
          "sha256(896-bit message) = %s", hex);

    /* One million 'a': once in one call, once in awkward pieces. */
    const char *million_a = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    size_t n = 1000000;
    char *a = malloc(n);
    memset(a, 'a', n);
    hex_of(a, n, hex);
    CHECK(strcmp(hex, million_a) == 0, "sha256(10^6 x 'a') one-shot = %s", hex);
    mrt_sha256 ctx;
    mrt_sha256_init(&ctx);
    size_t done = 0, piece = 1;
    while (done < n) {
        size_t take = piece < n - done ? piece : n - done;
        mrt_sha256_update(&ctx, a + done, take);
        done += take;
        piece = piece * 7 % 1000 + 1; /* 1, 8, 57, 400, ... crosses block edges */
    }
    uint8_t digest[32];
    mrt_sha256_final(&ctx, digest);
    mrt_sha256_hex(digest, hex);
    CHECK(strcmp(hex, million_a) == 0, "sha256(10^6 x 'a') in pieces = %s", hex);
    free(a);

    /* Every length around the padding boundary (55/56/64 bytes), split at
     * every point, equals the one-shot digest. */
    uint8_t msg[130];
    for (int i = 0; i < 130; i++) msg[i] = (uint8_t)(i * 37 + 11);
    int mismatches = 0;
    for (size_t len = 50; len <= 130; len++) {
        uint8_t whole[32];
        mrt_sha256_buffer(msg, len, whole);
        for (size_t cut = 0; cut <= len; cut++) {
            mrt_sha256_init(&ctx);
            mrt_sha256_update(&ctx, msg, cut);
            mrt_sha256_update(&ctx, NULL, 0);
            mrt_sha256_update(&ctx, msg + cut, len - cut);
            mrt_sha256_final(&ctx, digest);
            mismatches += memcmp(digest, whole, 32) != 0;
        }
    }
    CHECK(mismatches == 0, "%d split digests differ from the one-shot digest", mismatches);
}

/* ------------------------------------------------------------- round trip */

static uint8_t *read_whole_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *p = malloc(cap);
    size_t k;
    while ((k = fread(p + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) p = realloc(p, cap *= 2);
    }
    fclose(f);
    *len = n;
    return p;
}

/* Number of directory entries whose name contains `part`. */
static int count_entries_containing(const char *dir, const char *part) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) n += strstr(e->d_name, part) != NULL;
    closedir(d);
    return n;
}

/* Removes the test's scratch directory and the plain files in it. */
static void remove_scratch_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char path[512];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    if (rmdir(dir) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

static void write_whole_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    if (len) fwrite(data, 1, len, f);
    fclose(f);
}

/* The tensors of the round trip: odd sizes so there is padding between them. */
typedef struct {
    const char *name;
    mrt_gguf_type type;
    int n_dims;
    int64_t dims[4];
} tensor_spec;

static const tensor_spec round_trip_tensors[] = {
    {"enc.0.att.w", MRT_GGUF_F32, 2, {48, 64}},
    {"enc.0.att.b", MRT_GGUF_F32, 1, {64}},
    {"enc.conv.w", MRT_GGUF_F32, 4, {3, 3, 5, 7}},
    {"q.scale", MRT_GGUF_F32, 1, {1}},
    {"lut.i8", MRT_GGUF_I8, 1, {13}},
    {"lut.i8.2d", MRT_GGUF_I8, 2, {7, 3}},
    {"lut.i16", MRT_GGUF_I16, 3, {5, 2, 3}},
    {"lut.i16.small", MRT_GGUF_I16, 1, {1}},
    {"cdf.i32", MRT_GGUF_I32, 2, {17, 2}},
    {"cdf.i32.big", MRT_GGUF_I32, 1, {1000}},
};
#define N_RT_TENSORS (int)(sizeof round_trip_tensors / sizeof round_trip_tensors[0])

static int64_t spec_nelems(const tensor_spec *s) {
    int64_t n = 1;
    for (int d = 0; d < s->n_dims; d++) n *= s->dims[d];
    return n;
}

/* Fills a writer with every metadata type and the tensors above; the
 * tensor data comes from rng and is returned in data[i]. */
static mrt_gguf_writer *build_round_trip(mrt_rng *rng, void *data[N_RT_TENSORS]) {
    mrt_gguf_writer *w = mrt_gguf_writer_new();
    uint8_t u8 = 250;
    int8_t i8 = -100;
    uint16_t u16 = 65000;
    int16_t i16 = -32000;
    int64_t i64 = INT64_MIN + 5;
    double f64 = -1.0 / 3.0;
    CHECK(mrt_gguf_writer_add_scalar(w, "t.u8", MRT_GGUF_V_U8, &u8) == 0, "add u8");
    CHECK(mrt_gguf_writer_add_scalar(w, "t.i8", MRT_GGUF_V_I8, &i8) == 0, "add i8");
    CHECK(mrt_gguf_writer_add_scalar(w, "t.u16", MRT_GGUF_V_U16, &u16) == 0, "add u16");
    CHECK(mrt_gguf_writer_add_scalar(w, "t.i16", MRT_GGUF_V_I16, &i16) == 0, "add i16");
    CHECK(mrt_gguf_writer_add_u32(w, "t.u32", 4000000000u) == 0, "add u32");
    CHECK(mrt_gguf_writer_add_i32(w, "t.i32", -2000000000) == 0, "add i32");
    CHECK(mrt_gguf_writer_add_f32(w, "t.f32", 3.25f) == 0, "add f32");
    CHECK(mrt_gguf_writer_add_bool(w, "t.bool", true) == 0, "add bool");
    CHECK(mrt_gguf_writer_add_str(w, "general.name", "mrt-xs \xc3\xa9t\xc3\xa9") == 0, "add str");
    CHECK(mrt_gguf_writer_add_str(w, "t.empty_str", "") == 0, "add empty str");
    CHECK(mrt_gguf_writer_add_u64(w, "t.u64", UINT64_MAX - 1) == 0, "add u64");
    CHECK(mrt_gguf_writer_add_scalar(w, "t.i64", MRT_GGUF_V_I64, &i64) == 0, "add i64");
    CHECK(mrt_gguf_writer_add_scalar(w, "t.f64", MRT_GGUF_V_F64, &f64) == 0, "add f64");
    const int32_t ints[5] = {1, -2, 3, -4, INT32_MAX};
    const float floats[3] = {0.5f, -1e30f, 1e-30f};
    const bool bools[4] = {true, false, false, true};
    const uint16_t shorts[2] = {1, 65535};
    const double doubles[2] = {1e300, -0.0};
    const char *const strings[3] = {"alpha", "", "gamma delta"};
    CHECK(mrt_gguf_writer_add_array(w, "a.i32", MRT_GGUF_V_I32, 5, ints) == 0, "add i32 array");
    CHECK(mrt_gguf_writer_add_array(w, "a.f32", MRT_GGUF_V_F32, 3, floats) == 0, "add f32 array");
    CHECK(mrt_gguf_writer_add_array(w, "a.bool", MRT_GGUF_V_BOOL, 4, bools) == 0, "add bool array");
    CHECK(mrt_gguf_writer_add_array(w, "a.u16", MRT_GGUF_V_U16, 2, shorts) == 0, "add u16 array");
    CHECK(mrt_gguf_writer_add_array(w, "a.f64", MRT_GGUF_V_F64, 2, doubles) == 0, "add f64 array");
    CHECK(mrt_gguf_writer_add_array(w, "a.str", MRT_GGUF_V_STRING, 3, strings) == 0, "add str array");
    CHECK(mrt_gguf_writer_add_array(w, "a.empty", MRT_GGUF_V_U8, 0, NULL) == 0, "add empty array");

    for (int i = 0; i < N_RT_TENSORS; i++) {
        const tensor_spec *s = &round_trip_tensors[i];
        size_t n = (size_t)spec_nelems(s);
        size_t bytes = n * mrt_gguf_type_size(s->type);
        uint8_t *p = malloc(bytes);
        if (s->type == MRT_GGUF_F32) {
            for (size_t k = 0; k < n; k++) {
                float v = mrt_rng_normal(rng);
                memcpy(p + 4 * k, &v, 4);
            }
        } else {
            for (size_t k = 0; k < bytes; k++) p[k] = (uint8_t)mrt_rng_next(rng);
        }
        data[i] = p;
        CHECK(mrt_gguf_writer_add_tensor(w, s->name, s->type, s->n_dims, s->dims, p) == 0,
              "add tensor %s: %s", s->name, mrt_gguf_writer_error(w));
    }
    return w;
}

/* Checks every value written by build_round_trip. */
static void check_round_trip(const mrt_gguf *g, void *data[N_RT_TENSORS]) {
    char err[512];
    CHECK(mrt_gguf_kv_count(g) == 21, "kv_count %d, want 21 (20 + general.alignment)",
          mrt_gguf_kv_count(g));
    const mrt_gguf_kv *first = mrt_gguf_kv_at(g, 0);
    CHECK(first && strcmp(first->key, "general.alignment") == 0 && first->type == MRT_GGUF_V_U32 &&
              first->v.u32 == 64, "general.alignment comes first and is u32 64");
    const mrt_gguf_kv *kv;
    kv = mrt_gguf_find_kv(g, "t.u8");
    CHECK(kv && kv->type == MRT_GGUF_V_U8 && kv->v.u8 == 250, "u8");
    kv = mrt_gguf_find_kv(g, "t.i8");
    CHECK(kv && kv->type == MRT_GGUF_V_I8 && kv->v.i8 == -100, "i8");
    kv = mrt_gguf_find_kv(g, "t.u16");
    CHECK(kv && kv->type == MRT_GGUF_V_U16 && kv->v.u16 == 65000, "u16");
    kv = mrt_gguf_find_kv(g, "t.i16");
    CHECK(kv && kv->type == MRT_GGUF_V_I16 && kv->v.i16 == -32000, "i16");
    kv = mrt_gguf_find_kv(g, "t.i64");
    CHECK(kv && kv->type == MRT_GGUF_V_I64 && kv->v.i64 == INT64_MIN + 5, "i64");
    kv = mrt_gguf_find_kv(g, "t.f64");
    CHECK(kv && kv->type == MRT_GGUF_V_F64 && kv->v.f64 == -1.0 / 3.0, "f64");

    uint32_t u32 = 0;
    int32_t i32 = 0;
    uint64_t u64 = 0;
    float f32 = 0;
    bool b = false;
    const char *s = NULL;
    size_t slen = 99;
    CHECK(mrt_gguf_meta_u32(g, "t.u32", &u32, err, sizeof err) == 0 && u32 == 4000000000u, "u32");
    CHECK(mrt_gguf_meta_i32(g, "t.i32", &i32, err, sizeof err) == 0 && i32 == -2000000000, "i32");
    CHECK(mrt_gguf_meta_u64(g, "t.u64", &u64, err, sizeof err) == 0 && u64 == UINT64_MAX - 1, "u64");
    CHECK(mrt_gguf_meta_f32(g, "t.f32", &f32, err, sizeof err) == 0 && f32 == 3.25f, "f32");
    CHECK(mrt_gguf_meta_bool(g, "t.bool", &b, err, sizeof err) == 0 && b, "bool");
    CHECK(mrt_gguf_meta_str(g, "general.name", &s, &slen, err, sizeof err) == 0 &&
              strcmp(s, "mrt-xs \xc3\xa9t\xc3\xa9") == 0 && slen == 12, "string");
    CHECK(mrt_gguf_meta_str(g, "t.empty_str", &s, &slen, err, sizeof err) == 0 && s[0] == 0 &&
              slen == 0, "empty string");

    kv = mrt_gguf_find_kv(g, "a.i32");
    CHECK(kv && kv->type == MRT_GGUF_V_ARRAY && kv->elem_type == MRT_GGUF_V_I32 && kv->count == 5 &&
              ((const int32_t *)kv->v.array)[1] == -2 &&
              ((const int32_t *)kv->v.array)[4] == INT32_MAX, "i32 array");
    kv = mrt_gguf_find_kv(g, "a.f32");
    CHECK(kv && kv->elem_type == MRT_GGUF_V_F32 && kv->count == 3 &&
              ((const float *)kv->v.array)[1] == -1e30f && ((const float *)kv->v.array)[2] == 1e-30f,
          "f32 array");
    kv = mrt_gguf_find_kv(g, "a.bool");
    CHECK(kv && kv->elem_type == MRT_GGUF_V_BOOL && kv->count == 4 &&
              ((const bool *)kv->v.array)[0] && !((const bool *)kv->v.array)[1] &&
              ((const bool *)kv->v.array)[3], "bool array");
    kv = mrt_gguf_find_kv(g, "a.u16");
    CHECK(kv && kv->elem_type == MRT_GGUF_V_U16 && ((const uint16_t *)kv->v.array)[1] == 65535,
          "u16 array");
    kv = mrt_gguf_find_kv(g, "a.f64");
    CHECK(kv && kv->elem_type == MRT_GGUF_V_F64 && ((const double *)kv->v.array)[0] == 1e300,
          "f64 array");
    kv = mrt_gguf_find_kv(g, "a.str");
    const mrt_gguf_string *strs = kv ? kv->v.array : NULL;
    CHECK(kv && kv->elem_type == MRT_GGUF_V_STRING && kv->count == 3 &&
              strcmp(strs[0].str, "alpha") == 0 && strs[1].len == 0 && strs[1].str[0] == 0 &&
              strcmp(strs[2].str, "gamma delta") == 0 && strs[2].len == 11, "string array");
    kv = mrt_gguf_find_kv(g, "a.empty");
    CHECK(kv && kv->type == MRT_GGUF_V_ARRAY && kv->count == 0 && kv->v.array == NULL, "empty array");

    CHECK(mrt_gguf_tensor_count(g) == N_RT_TENSORS, "tensor count %d", mrt_gguf_tensor_count(g));
    uint64_t prev_end = 0;
    for (int i = 0; i < N_RT_TENSORS; i++) {
        const tensor_spec *sp = &round_trip_tensors[i];
        const mrt_gguf_tensor *t = mrt_gguf_tensor_at(g, i);
        CHECK(t && strcmp(t->name, sp->name) == 0, "tensor %d is %s", i, sp->name);
        if (!t) continue;
        CHECK(mrt_gguf_find(g, sp->name) == t, "find %s", sp->name);
        CHECK(t->type == sp->type && t->n_dims == sp->n_dims, "%s type/n_dims", sp->name);
        for (int d = 0; d < 4; d++)
            CHECK(t->dims[d] == (d < sp->n_dims ? sp->dims[d] : 1), "%s dims[%d] = %lld", sp->name,
                  d, (long long)t->dims[d]);
        CHECK(t->nelems == spec_nelems(sp), "%s nelems", sp->name);
        CHECK(t->nbytes == (size_t)spec_nelems(sp) * mrt_gguf_type_size(sp->type), "%s nbytes",
              sp->name);
        CHECK(((uintptr_t)t->data & 63) == 0, "%s data at %p is not 64-byte aligned", sp->name,
              t->data);
        CHECK(t->file_offset % 64 == 0 && t->file_offset >= prev_end, "%s file offset", sp->name);
        prev_end = t->file_offset + t->nbytes;
        CHECK(memcmp(t->data, data[i], t->nbytes) == 0, "%s data differs", sp->name);
        const mrt_gguf_tensor *typed =
            mrt_gguf_get_tensor(g, sp->name, sp->type, sp->n_dims, sp->dims, err, sizeof err);
        CHECK(typed == t, "get_tensor %s: %s", sp->name, err);
    }
    const float *w = mrt_gguf_get_f32(g, "enc.0.att.w", 2, (const int64_t[]){48, 64}, err, sizeof err);
    CHECK(w && w == mrt_gguf_find(g, "enc.0.att.w")->data, "get_f32: %s", err);
    CHECK(mrt_gguf_find(g, "nope") == NULL && mrt_gguf_find(g, "") == NULL, "find of absent names");
    CHECK(mrt_gguf_find_kv(g, "nope") == NULL, "find_kv of an absent key");
    CHECK(mrt_gguf_tensor_at(g, -1) == NULL && mrt_gguf_tensor_at(g, N_RT_TENSORS) == NULL,
          "tensor_at out of range");
    CHECK(mrt_gguf_kv_at(g, -1) == NULL && mrt_gguf_kv_at(g, 21) == NULL, "kv_at out of range");
}

static void test_round_trip(void) {
    mrt_rng rng;
    mrt_rng_seed(&rng, 1234);
    void *data[N_RT_TENSORS];
    mrt_gguf_writer *w = build_round_trip(&rng, data);
    char err[512] = "";
    char path[256];
    snprintf(path, sizeof path, "%s/model.gguf", tmp_dir);
    CHECK(mrt_gguf_writer_save(w, path, err, sizeof err) == 0, "save: %s", err);

    mrt_gguf *g = NULL;
    int rc = mrt_gguf_open(&g, path, err, sizeof err);
    CHECK(rc == 0 && g, "open: %s", err);
    size_t file_len = 0;
    uint8_t *file = read_whole_file(path, &file_len);
    CHECK(file && file_len % 64 == 0, "file length %zu is a multiple of 64", file_len);
    if (g) {
        check_round_trip(g, data);
        /* The fingerprint, recomputed from the bytes read with stdio, in pieces. */
        mrt_sha256 ctx;
        mrt_sha256_init(&ctx);
        for (size_t off = 0; off < file_len; off += 100)
            mrt_sha256_update(&ctx, file + off, file_len - off < 100 ? file_len - off : 100);
        uint8_t digest[32];
        mrt_sha256_final(&ctx, digest);
        CHECK(memcmp(digest, mrt_gguf_sha256(g), 32) == 0, "fingerprint differs from the file hash");
        CHECK(strcmp(mrt_gguf_label(g), path) == 0, "label is the path");
        mrt_gguf_close(g);
    }

    /* The same image through open_memory and save_memory. */
    uint8_t *image = NULL;
    size_t image_len = 0;
    CHECK(mrt_gguf_writer_save_memory(w, &image, &image_len, err, sizeof err) == 0, "save_memory: %s",
          err);
    CHECK(image_len == file_len && memcmp(image, file, file_len) == 0,
          "save_memory and save give the same bytes");
    rc = mrt_gguf_open_memory(&g, image, image_len, "mem", err, sizeof err);
    CHECK(rc == 0, "open_memory: %s", err);
    if (rc == 0) {
        free(image); /* the reader keeps its own copy */
        image = NULL;
        check_round_trip(g, data);
        uint8_t digest[32];
        mrt_sha256_buffer(file, file_len, digest);
        CHECK(memcmp(digest, mrt_gguf_sha256(g), 32) == 0, "open_memory fingerprint");
        mrt_gguf_close(g);
    }
    free(image);

    /* Saving again over the existing file replaces it and leaves no temporaries. */
    CHECK(mrt_gguf_writer_add_u32(w, "t.extra", 7) == 0, "add after save");
    CHECK(mrt_gguf_writer_save(w, path, err, sizeof err) == 0, "second save: %s", err);
    rc = mrt_gguf_open(&g, path, err, sizeof err);
    uint32_t extra = 0;
    CHECK(rc == 0 && mrt_gguf_meta_u32(g, "t.extra", &extra, err, sizeof err) == 0 && extra == 7,
          "replaced file has the new key: %s", err);
    mrt_gguf_close(g);
    CHECK(count_entries_containing(tmp_dir, ".tmp-") == 0, "a temporary file was left in %s",
          tmp_dir);

    /* Failures of save: a directory that does not exist. */
    char bad_path[256];
    snprintf(bad_path, sizeof bad_path, "%s/no/such/dir/m.gguf", tmp_dir);
    CHECK(mrt_gguf_writer_save(w, bad_path, err, sizeof err) == -1 &&
              strstr(err, bad_path) && strstr(err, "temporary"), "save to a missing dir: %s", err);

    free(file);
    for (int i = 0; i < N_RT_TENSORS; i++) free(data[i]);
    mrt_gguf_writer_free(w);
}

/* A writer with nothing added makes the smallest valid file. */
static void test_empty_model(void) {
    mrt_gguf_writer *w = mrt_gguf_writer_new();
    uint8_t *image;
    size_t len;
    char err[512] = "";
    CHECK(mrt_gguf_writer_save_memory(w, &image, &len, err, sizeof err) == 0, "%s", err);
    CHECK(len == 64, "empty model is %zu bytes, want 64 (57 bytes + padding)", len);
    mrt_gguf *g;
    CHECK(mrt_gguf_open_memory(&g, image, len, NULL, err, sizeof err) == 0, "open empty: %s", err);
    if (g) {
        CHECK(mrt_gguf_tensor_count(g) == 0 && mrt_gguf_kv_count(g) == 1, "empty counts");
        CHECK(strcmp(mrt_gguf_label(g), "<memory>") == 0, "default label");
        mrt_gguf_close(g);
    }
    /* Without its header padding it is still valid (padding is optional). */
    CHECK(mrt_gguf_open_memory(&g, image, 57, "e", err, sizeof err) == 0, "unpadded: %s", err);
    mrt_gguf_close(g);
    free(image);
    mrt_gguf_writer_free(w);
}

/* ------------------------------------------------------ writer validation */

static void expect_writer_error(mrt_gguf_writer *w, int rc, const char *want) {
    const char *msg = mrt_gguf_writer_error(w);
    CHECK(rc == -1 && msg && strstr(msg, want), "want a writer error containing \"%s\", got rc %d "
          "\"%s\"", want, rc, msg ? msg : "(none)");
    char err[512] = "";
    uint8_t *image = (uint8_t *)1;
    size_t len = 1;
    CHECK(mrt_gguf_writer_save_memory(w, &image, &len, err, sizeof err) == -1 && image == NULL &&
              strstr(err, want), "save after a failed add must fail with \"%s\": \"%s\"", want, err);
}

static void test_writer_validation(void) {
    static const float one[1] = {1};
    struct {
        const char *want;
        int which;
    } cases[] = {
        {"duplicate key 'k'", 0},      {"duplicate tensor name 't'", 1},
        {"written by the writer", 2},  {"key is empty", 3},
        {"printable ASCII", 4},        {"n_dims is 5", 5},
        {"dims[1] is 0", 6},           {"not supported", 7},
        {"over the 256-byte limit", 8}, {"not a scalar", 9},
        {"array element type 9", 10},                 {"dims are too large", 11},
    };
    char long_name[300];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mrt_gguf_writer *w = mrt_gguf_writer_new();
        int rc = 0;
        int64_t dims1[1] = {1};
        switch (cases[i].which) {
        case 0:
            mrt_gguf_writer_add_u32(w, "k", 1);
            rc = mrt_gguf_writer_add_str(w, "k", "again");
            break;
        case 1:
            mrt_gguf_writer_add_tensor(w, "t", MRT_GGUF_F32, 1, dims1, one);
            rc = mrt_gguf_writer_add_tensor(w, "t", MRT_GGUF_F32, 1, dims1, one);
            break;
        case 2: rc = mrt_gguf_writer_add_u32(w, "general.alignment", 64); break;
        case 3: rc = mrt_gguf_writer_add_u32(w, "", 1); break;
        case 4: rc = mrt_gguf_writer_add_u32(w, "has space", 1); break;
        case 5:
            rc = mrt_gguf_writer_add_tensor(w, "t", MRT_GGUF_F32, 5,
                                            (const int64_t[]){1, 1, 1, 1, 1}, one);
            break;
        case 6: rc = mrt_gguf_writer_add_tensor(w, "t", MRT_GGUF_F32, 2, (const int64_t[]){1, 0}, one); break;
        case 7: rc = mrt_gguf_writer_add_tensor(w, "t", (mrt_gguf_type)1, 1, dims1, one); break;
        case 8: rc = mrt_gguf_writer_add_tensor(w, long_name, MRT_GGUF_F32, 1, dims1, one); break;
        case 9: rc = mrt_gguf_writer_add_scalar(w, "k", MRT_GGUF_V_STRING, "x"); break;
        case 10: rc = mrt_gguf_writer_add_array(w, "k", MRT_GGUF_V_ARRAY, 1, one); break;
        case 11:
            rc = mrt_gguf_writer_add_tensor(w, "t", MRT_GGUF_F32, 4,
                                            (const int64_t[]){1 << 20, 1 << 20, 1 << 20, 1 << 20},
                                            one);
            break;
        }
        /* Later good adds do not clear the first error. */
        mrt_gguf_writer_add_u32(w, "fine.after", 1);
        expect_writer_error(w, rc, cases[i].want);
        mrt_gguf_writer_free(w);
    }
}

/* ------------------------------------------------- hand-built broken files */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} raw;

static void put(raw *b, const void *data, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void put_le(raw *b, uint64_t v, int n) {
    for (int i = 0; i < n; i++) {
        uint8_t byte = (uint8_t)(v >> (8 * i));
        put(b, &byte, 1);
    }
}

static void put_str(raw *b, const char *s) {
    put_le(b, strlen(s), 8);
    put(b, s, strlen(s));
}

static void put_header(raw *b, uint64_t n_tensors, uint64_t n_kvs) {
    put(b, "GGUF", 4);
    put_le(b, 3, 4);
    put_le(b, n_tensors, 8);
    put_le(b, n_kvs, 8);
}

static void put_kv_u32(raw *b, const char *key, uint32_t value) {
    put_str(b, key);
    put_le(b, 4, 4);
    put_le(b, value, 4);
}

static void put_alignment(raw *b) { put_kv_u32(b, "general.alignment", 64); }

static void put_tensor_info(raw *b, const char *name, uint32_t n_dims, const uint64_t *dims,
                            uint32_t type, uint64_t offset) {
    put_str(b, name);
    put_le(b, n_dims, 4);
    for (uint32_t d = 0; d < n_dims; d++) put_le(b, dims[d], 8);
    put_le(b, type, 4);
    put_le(b, offset, 8);
}

/* Zero padding to the data section, then `n` data bytes (non-zero). */
static void put_data(raw *b, size_t n) {
    while (b->len % 64) put_le(b, 0, 1);
    for (size_t i = 0; i < n; i++) put_le(b, 0x5a, 1);
}

/* The file that the broken cases start from: 2 KVs, 2 tensors. */
static raw valid_raw(void) {
    raw b = {0};
    put_header(&b, 2, 2);
    put_alignment(&b);
    put_kv_u32(&b, "mrt.width", 8);
    put_tensor_info(&b, "a", 1, (const uint64_t[]){16}, 0, 0);
    put_tensor_info(&b, "b", 2, (const uint64_t[]){3, 5}, 25, 64);
    put_data(&b, 64 + 30);
    return b;
}

static void expect_reject(raw *b, const char *label, const char *want) {
    mrt_gguf *g = (mrt_gguf *)&g;
    char err[512] = "";
    int rc = mrt_gguf_open_memory(&g, b->p, b->len, label, err, sizeof err);
    CHECK(rc == -1 && g == NULL, "%s: accepted a broken file", label);
    CHECK(strncmp(err, label, strlen(label)) == 0 && strstr(err, want),
          "%s: message \"%s\" lacks \"%s\"", label, err, want);
    if (getenv("MRT_TEST_VERBOSE")) printf("  %s\n", err);
    if (rc == 0) mrt_gguf_close(g);
    free(b->p);
    b->p = NULL;
}

/* Overwrites n little-endian bytes at `offset`. */
static void patch(raw *b, size_t offset, uint64_t v, int n) {
    for (int i = 0; i < n; i++) b->p[offset + i] = (uint8_t)(v >> (8 * i));
}

/* Offsets of fields in valid_raw(). */
enum {
    OFF_KV0_KEYLEN = 24,
    OFF_KV0_TYPE = 24 + 8 + 17,
    OFF_KV0_VALUE = OFF_KV0_TYPE + 4,
    OFF_KV1 = OFF_KV0_VALUE + 4,              /* "mrt.width" u32 */
    OFF_KV1_TYPE = OFF_KV1 + 8 + 9,
    OFF_T0 = OFF_KV1_TYPE + 4 + 4,            /* tensor "a" */
    OFF_T0_NDIMS = OFF_T0 + 8 + 1,
    OFF_T0_DIM0 = OFF_T0_NDIMS + 4,
    OFF_T0_TYPE = OFF_T0_DIM0 + 8,
    OFF_T0_OFFSET = OFF_T0_TYPE + 4,
    OFF_T1 = OFF_T0_OFFSET + 8,               /* tensor "b" */
    OFF_T1_OFFSET = OFF_T1 + 8 + 1 + 4 + 16 + 4,
};

static void test_broken_files(void) {
    raw b;
    /* The starting point is valid, so each rejection below is due to its one change. */
    b = valid_raw();
    {
        mrt_gguf *g;
        char err[512] = "";
        CHECK(mrt_gguf_open_memory(&g, b.p, b.len, "base", err, sizeof err) == 0, "base: %s", err);
        if (g) {
            const mrt_gguf_tensor *tb = mrt_gguf_find(g, "b");
            CHECK(tb && tb->file_offset == (uint64_t)(b.len - 30) && tb->nbytes == 30,
                  "the offsets in this test match the file");
            mrt_gguf_close(g);
        }
        free(b.p);
    }

    b = valid_raw(); b.p[0] = 'X'; expect_reject(&b, "magic", "magic at offset 0 is 58 47 55 46");
    b = valid_raw(); patch(&b, 4, 2, 4); expect_reject(&b, "version", "GGUF version 2");
    b = valid_raw(); patch(&b, 8, 1ull << 40, 8); expect_reject(&b, "tensors_huge", "tensor_count 1099511627776");
    b = valid_raw(); patch(&b, 8, 65536, 8); expect_reject(&b, "tensors_many", "need at least");
    b = valid_raw(); patch(&b, 16, UINT64_MAX, 8); expect_reject(&b, "kvs_huge", "kv_count 18446744073709551615");
    b = valid_raw(); patch(&b, 16, 1000, 8); expect_reject(&b, "kvs_many", "need at least");
    b = valid_raw(); patch(&b, 16, 3, 8); expect_reject(&b, "kvs_one_more", "");
    b = valid_raw(); patch(&b, OFF_KV0_KEYLEN, 1ull << 62, 8); expect_reject(&b, "keylen_huge", "over the 256-byte limit");
    b = valid_raw(); patch(&b, OFF_KV0_KEYLEN, 0, 8); expect_reject(&b, "keylen_zero", "KV #0: key at offset 24 is empty");
    b = valid_raw(); b.p[OFF_KV0_KEYLEN + 8 + 3] = 0; expect_reject(&b, "key_nul", "byte 3 is 0x00");
    b = valid_raw(); b.p[OFF_KV0_KEYLEN + 8 + 3] = ' '; expect_reject(&b, "key_space", "printable ASCII");
    b = valid_raw(); patch(&b, OFF_KV1_TYPE, 13, 4); expect_reject(&b, "vtype", "KV #1 'mrt.width': unknown value type 13");
    b = valid_raw(); patch(&b, OFF_KV0_TYPE, 5, 4); expect_reject(&b, "align_type", "'general.alignment' has type i32; must be u32");
    b = valid_raw(); patch(&b, OFF_KV0_VALUE, 32, 4); expect_reject(&b, "align_32", "'general.alignment' is 32; only 64");
    b = valid_raw(); patch(&b, OFF_T0_NDIMS, 0, 4); expect_reject(&b, "ndims0", "tensor 'a' (info #0): n_dims is 0");
    b = valid_raw(); patch(&b, OFF_T0_NDIMS, 5, 4); expect_reject(&b, "ndims5", "n_dims is 5");
    b = valid_raw(); patch(&b, OFF_T0_DIM0, 0, 8); expect_reject(&b, "dim0", "dims[0] is 0");
    b = valid_raw(); patch(&b, OFF_T0_DIM0, 1ull << 40, 8); expect_reject(&b, "dim_big", "more than the whole file");
    b = valid_raw(); patch(&b, OFF_T0_TYPE, 1, 4); expect_reject(&b, "ggml_f16", "ggml type 1 at offset");
    b = valid_raw(); patch(&b, OFF_T0_TYPE, 0xffffffffu, 4); expect_reject(&b, "ggml_junk", "ggml type 4294967295");
    b = valid_raw(); patch(&b, OFF_T0_OFFSET, 32, 8); expect_reject(&b, "misaligned", "data offset 32 (at offset");
    b = valid_raw(); patch(&b, OFF_T1_OFFSET, 128, 8); expect_reject(&b, "past_end", "tensor 'b' (info #1): data offset 128 + 30 bytes runs past the end");
    b = valid_raw(); patch(&b, OFF_T0_OFFSET, 1ull << 63, 8); expect_reject(&b, "offset_huge", "runs past the end");
    b = valid_raw(); patch(&b, OFF_T1_OFFSET, 0, 8); expect_reject(&b, "overlap", "tensor 'b' (data offset 0, 30 bytes) overlaps tensor 'a' (data offset 0, 64 bytes)");
    b = valid_raw(); b.p[OFF_T1 + 8] = 'a'; expect_reject(&b, "dup_name", "duplicate tensor name 'a' (infos #0 and #1)");
    b = valid_raw(); put(&b, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 35);
    expect_reject(&b, "trailing", "1 unexpected bytes at the end");
    b = valid_raw(); put_le(&b, 7, 1); expect_reject(&b, "pad_nonzero", "padding after the last tensor");
    b = valid_raw(); b.p[OFF_T1_OFFSET + 8] = 1; expect_reject(&b, "hdr_pad", "padding before the data section");

    /* Cases that need a different layout. */
    b = (raw){0};
    put_header(&b, 0, 2);
    put_alignment(&b);
    put_kv_u32(&b, "general.alignment", 64);
    expect_reject(&b, "dup_key", "duplicate key 'general.alignment' (KV #0 and KV #1)");

    b = (raw){0};
    put_header(&b, 0, 1);
    put_kv_u32(&b, "mrt.width", 8);
    expect_reject(&b, "no_alignment", "required key 'general.alignment' is missing");

    b = (raw){0};
    put_header(&b, 0, 2);
    put_alignment(&b);
    put_str(&b, "s");
    put_le(&b, 8, 4);
    put_le(&b, 1ull << 40, 8);
    expect_reject(&b, "strlen_huge", "string value at offset 70 has length 1099511627776, over the 65536-byte limit");

    b = (raw){0};
    put_header(&b, 0, 2);
    put_alignment(&b);
    put_str(&b, "s");
    put_le(&b, 8, 4);
    put_le(&b, 1000, 8);
    put(&b, "abc", 3);
    expect_reject(&b, "strlen_past_end", "file truncated: string value bytes needs 1000 bytes at offset 78 but only 3 remain");

    b = (raw){0};
    put_header(&b, 0, 2);
    put_alignment(&b);
    put_str(&b, "s");
    put_le(&b, 8, 4);
    put_le(&b, 3, 8);
    put(&b, "a\0c", 3);
    expect_reject(&b, "str_nul", "contains a NUL byte");

    b = (raw){0};
    put_header(&b, 0, 2);
    put_alignment(&b);
    put_str(&b, "arr");
    put_le(&b, 9, 4);
    put_le(&b, 4, 4);
    put_le(&b, 1ull << 60, 8);
    expect_reject(&b, "array_huge", "array count 1152921504606846976 at offset");

    b = (raw){0};
    put_header(&b, 0, 2);
    put_alignment(&b);
    put_str(&b, "arr");
    put_le(&b, 9, 4);
    put_le(&b, 4, 4);
    put_le(&b, 1000, 8);
    put_le(&b, 1, 4);
    expect_reject(&b, "array_past_end", "needs at least 4000 bytes but only 4 remain");

    b = (raw){0};
    put_header(&b, 0, 2);
    put_alignment(&b);
    put_str(&b, "arr");
    put_le(&b, 9, 4);
    put_le(&b, 8, 4);
    put_le(&b, 100000, 8);
    for (int i = 0; i < 100000; i++) put_str(&b, "x");
    b.len -= 1; /* the last string's byte is cut off */
    expect_reject(&b, "str_array_past_end", "array element 99999");

    b = (raw){0};
    put_header(&b, 0, 2);
    put_alignment(&b);
    put_str(&b, "arr");
    put_le(&b, 9, 4);
    put_le(&b, 9, 4);
    put_le(&b, 1, 8);
    expect_reject(&b, "array_of_arrays", "arrays of arrays are not supported");

    b = (raw){0};
    put_header(&b, 0, 2);
    put_alignment(&b);
    put_str(&b, "arr");
    put_le(&b, 9, 4);
    put_le(&b, 77, 4);
    put_le(&b, 1, 8);
    expect_reject(&b, "array_elem_type", "unknown array element type 77");

    b = (raw){0};
    put_header(&b, 0, 2);
    put_alignment(&b);
    put_str(&b, "flag");
    put_le(&b, 7, 4);
    put_le(&b, 2, 1);
    expect_reject(&b, "bool_2", "a bool must be 0 or 1");

    b = (raw){0};
    put_header(&b, 0, 2);
    put_alignment(&b);
    put_str(&b, "flags");
    put_le(&b, 9, 4);
    put_le(&b, 7, 4);
    put_le(&b, 3, 8);
    put(&b, "\1\0\3", 3);
    expect_reject(&b, "bool_array", "array element 2 at offset");

    b = (raw){0};
    put_header(&b, 1, 1);
    put_alignment(&b);
    put_tensor_info(&b, "x", 3, (const uint64_t[]){1ull << 32, 1ull << 32, 2}, 0, 0);
    put_data(&b, 64);
    expect_reject(&b, "dims_overflow", "element count of dims [4294967296, 4294967296, 2] overflows 64 bits");

    b = (raw){0};
    put_header(&b, 1, 1);
    put_alignment(&b);
    put_tensor_info(&b, "x", 2, (const uint64_t[]){1ull << 31, 1ull << 31}, 26, 0);
    put_data(&b, 64);
    expect_reject(&b, "bytes_overflow", "more than the whole file");

    b = (raw){0};
    put_header(&b, 1, 1);
    put_alignment(&b);
    put_tensor_info(&b, "x", 1, (const uint64_t[]){16}, 0, 0);
    expect_reject(&b, "no_data", "data offset 0 + 64 bytes runs past the end of the data section (0 bytes");

    b = (raw){0};
    put_header(&b, 0, 1);
    put_alignment(&b);
    while (b.len < 64) put_le(&b, 0, 1);
    put_le(&b, 0, 1);
    expect_reject(&b, "no_tensors_trailing", "1 unexpected bytes");

    b = (raw){0};
    put_header(&b, 2, 1);
    put_alignment(&b);
    put_tensor_info(&b, "x", 1, (const uint64_t[]){1}, 24, 0);
    put_tensor_info(&b, "x y", 1, (const uint64_t[]){1}, 24, 64);
    put_data(&b, 65);
    expect_reject(&b, "name_space", "tensor info #1: name at offset");

    b = (raw){0};
    put_header(&b, 1, 1);
    put_alignment(&b);
    char long_name[258];
    memset(long_name, 'n', 257);
    long_name[257] = 0;
    put_tensor_info(&b, long_name, 1, (const uint64_t[]){1}, 24, 0);
    put_data(&b, 1);
    expect_reject(&b, "name_257", "has length 257, over the 256-byte limit");

    /* A 256-byte name is the longest allowed. */
    b = (raw){0};
    put_header(&b, 1, 1);
    put_alignment(&b);
    long_name[256] = 0;
    put_tensor_info(&b, long_name, 1, (const uint64_t[]){1}, 24, 0);
    put_data(&b, 1);
    {
        mrt_gguf *g;
        char err[512] = "";
        CHECK(mrt_gguf_open_memory(&g, b.p, b.len, "name_256", err, sizeof err) == 0, "%s", err);
        mrt_gguf_close(g);
        free(b.p);
    }

    /* Gaps between tensors are allowed; they are not our bytes to judge. */
    b = (raw){0};
    put_header(&b, 2, 1);
    put_alignment(&b);
    put_tensor_info(&b, "late", 1, (const uint64_t[]){4}, 24, 192);
    put_tensor_info(&b, "early", 1, (const uint64_t[]){4}, 24, 0);
    put_data(&b, 196);
    {
        mrt_gguf *g;
        char err[512] = "";
        CHECK(mrt_gguf_open_memory(&g, b.p, b.len, "gaps", err, sizeof err) == 0, "%s", err);
        mrt_gguf_close(g);
        free(b.p);
    }

    /* File-level failures of mrt_gguf_open. */
    char path[256], err[512] = "";
    mrt_gguf *g = (mrt_gguf *)&g;
    snprintf(path, sizeof path, "%s/empty.gguf", tmp_dir);
    write_whole_file(path, "", 0);
    CHECK(mrt_gguf_open(&g, path, err, sizeof err) == -1 && g == NULL && strstr(err, path) &&
              strstr(err, "empty"), "empty file: %s", err);
    snprintf(path, sizeof path, "%s/missing.gguf", tmp_dir);
    CHECK(mrt_gguf_open(&g, path, err, sizeof err) == -1 && strstr(err, "cannot open"),
          "missing file: %s", err);
    CHECK(mrt_gguf_open(&g, tmp_dir, err, sizeof err) == -1 && strstr(err, "not a regular file"),
          "directory: %s", err);
    b = valid_raw();
    patch(&b, OFF_T1_OFFSET, 128, 8);
    snprintf(path, sizeof path, "%s/weights.gguf", tmp_dir);
    write_whole_file(path, b.p, b.len);
    free(b.p);
    CHECK(mrt_gguf_open(&g, path, err, sizeof err) == -1 && strncmp(err, path, strlen(path)) == 0 &&
              strstr(err, ": tensor 'b' (info #1): data offset 128 + 30 bytes runs past the end of "
                          "the data section (94 bytes from file offset 192; file is 286 bytes)"),
          "mmap path message: %s", err);
    /* A NULL err buffer is allowed. */
    CHECK(mrt_gguf_open(&g, path, NULL, 0) == -1, "NULL err");
}

/* --------------------------------------------------- truncation and fuzzing */

/* A small valid image whose last tensor does not end on a multiple of 64. */
static uint8_t *small_image(size_t *len) {
    mrt_gguf_writer *w = mrt_gguf_writer_new();
    mrt_gguf_writer_add_u32(w, "mrt.width", 32);
    mrt_gguf_writer_add_str(w, "general.name", "tiny");
    mrt_gguf_writer_add_array(w, "mrt.rates", MRT_GGUF_V_F32, 2, (const float[]){0.01f, 0.05f});
    mrt_gguf_writer_add_array(w, "mrt.names", MRT_GGUF_V_STRING, 2,
                              (const char *const[]){"lo", "hi"});
    mrt_gguf_writer_add_bool(w, "mrt.flag", false);
    float f[12];
    for (int i = 0; i < 12; i++) f[i] = (float)i - 5.5f;
    int16_t s[6] = {-3, 2, 1, 0, 32767, -32768};
    mrt_gguf_writer_add_tensor(w, "w", MRT_GGUF_F32, 2, (const int64_t[]){4, 3}, f);
    mrt_gguf_writer_add_tensor(w, "s", MRT_GGUF_I16, 1, (const int64_t[]){6}, s);
    uint8_t *image = NULL;
    char err[512] = "";
    CHECK(mrt_gguf_writer_save_memory(w, &image, len, err, sizeof err) == 0, "small image: %s", err);
    mrt_gguf_writer_free(w);
    return image;
}

static void test_truncation(void) {
    size_t len;
    uint8_t *image = small_image(&len);
    mrt_gguf *g;
    char err[512];
    CHECK(mrt_gguf_open_memory(&g, image, len, "full", err, sizeof err) == 0, "%s", err);
    const mrt_gguf_tensor *last = mrt_gguf_tensor_at(g, 1);
    size_t content_end = (size_t)(last->file_offset + last->nbytes);
    mrt_gguf_close(g);
    CHECK(content_end % 64 != 0 && content_end < len, "the image ends with padding");

    int bad = 0;
    for (size_t cut = 0; cut < len; cut++) {
        err[0] = 0;
        g = (mrt_gguf *)&g;
        int rc = mrt_gguf_open_memory(&g, image, cut, "cut", err, sizeof err);
        /* Only the optional trailing padding may be cut off. */
        int want_ok = cut >= content_end;
        if (want_ok ? rc != 0 : (rc != -1 || g != NULL || strncmp(err, "cut: ", 5) != 0)) {
            if (bad++ < 5)
                fprintf(stderr, "truncation at %zu of %zu: rc %d, \"%s\"\n", cut, len, rc, err);
        }
        if (rc == 0) mrt_gguf_close(g);
    }
    CHECK(bad == 0, "%d truncations misbehaved", bad);

    /* The same through real files (the mmap path), every 9th length. */
    char path[256];
    snprintf(path, sizeof path, "%s/cut.gguf", tmp_dir);
    bad = 0;
    for (size_t cut = 1; cut < content_end; cut += 9) {
        write_whole_file(path, image, cut);
        if (mrt_gguf_open(&g, path, err, sizeof err) != -1 || !strstr(err, "cut.gguf: ")) bad++;
    }
    CHECK(bad == 0, "%d file truncations misbehaved", bad);
    free(image);
}

/* Opens a corrupted image; when it is accepted, touches everything the
 * reader hands out, so a sanitizer sees any bad pointer. */
static int open_and_walk(const uint8_t *image, size_t len, unsigned *checksum) {
    mrt_gguf *g;
    char err[512] = "";
    if (mrt_gguf_open_memory(&g, image, len, "fuzz", err, sizeof err) != 0)
        return strncmp(err, "fuzz: ", 6) == 0 && strlen(err) > 10 ? 0 : -1;
    for (int i = 0; i < mrt_gguf_kv_count(g); i++) {
        const mrt_gguf_kv *kv = mrt_gguf_kv_at(g, i);
        *checksum += (unsigned)strlen(kv->key);
        if (kv->type == MRT_GGUF_V_STRING) *checksum += (unsigned)strlen(kv->v.str.str);
        if (kv->type == MRT_GGUF_V_ARRAY && kv->elem_type == MRT_GGUF_V_STRING) {
            const mrt_gguf_string *s = kv->v.array;
            for (uint64_t k = 0; k < kv->count; k++) *checksum += (unsigned)strlen(s[k].str);
        } else if (kv->type == MRT_GGUF_V_ARRAY && kv->count) {
            *checksum += ((const uint8_t *)kv->v.array)[kv->count - 1];
        }
        if (mrt_gguf_find_kv(g, kv->key) != kv) *checksum = 0xdead;
    }
    for (int i = 0; i < mrt_gguf_tensor_count(g); i++) {
        const mrt_gguf_tensor *t = mrt_gguf_tensor_at(g, i);
        const uint8_t *d = t->data;
        *checksum += d[0] + d[t->nbytes - 1] + (unsigned)strlen(t->name);
        if (((uintptr_t)d & 63) != 0 || mrt_gguf_find(g, t->name) != t) *checksum = 0xdead;
    }
    mrt_gguf_close(g);
    return 1;
}

/* Seeded random corruption of `image`: 1-4 mutations in its first
 * `hot_len` bytes (where the header is), sometimes also a truncation. */
static void fuzz_image(const char *what, const uint8_t *image, size_t len, size_t hot_len,
                       int iterations, uint64_t seed) {
    uint8_t *mutated = malloc(len);
    mrt_rng rng;
    mrt_rng_seed(&rng, seed);
    /* Values that tend to hit limits when written into a length or count. */
    static const uint8_t interesting[] = {0x00, 0x01, 0x3f, 0x40, 0x7f, 0x80, 0xfe, 0xff};
    const uint64_t wide[] = {0, 1, 63, 64, 65, len - 1, len, 1ull << 31, 1ull << 32,
                             1ull << 63, UINT64_MAX, UINT64_MAX - 63};
    int accepted = 0, rejected = 0, bad_messages = 0;
    unsigned checksum = 0;
    for (int it = 0; it < iterations; it++) {
        memcpy(mutated, image, len);
        int flips = 1 + (int)mrt_rng_below(&rng, 4);
        for (int f = 0; f < flips; f++) {
            size_t at = mrt_rng_below(&rng, (uint32_t)hot_len);
            switch (mrt_rng_below(&rng, 4)) {
            case 0: mutated[at] ^= (uint8_t)(1u << mrt_rng_below(&rng, 8)); break;
            case 1: mutated[at] = (uint8_t)mrt_rng_next(&rng); break;
            case 2: mutated[at] = interesting[mrt_rng_below(&rng, sizeof interesting)]; break;
            default: {
                /* A whole little-endian u32/u64 field: lengths, counts, offsets. */
                uint64_t v = wide[mrt_rng_below(&rng, sizeof wide / sizeof wide[0])];
                int width = mrt_rng_below(&rng, 2) ? 8 : 4;
                for (int k = 0; k < width && at + (size_t)k < len; k++)
                    mutated[at + (size_t)k] = (uint8_t)(v >> (8 * k));
                break;
            }
            }
        }
        size_t cut = it % 5 == 0 ? mrt_rng_below(&rng, (uint32_t)len + 1) : len;
        int r = open_and_walk(mutated, cut, &checksum);
        if (r == 1) accepted++;
        else if (r == 0) rejected++;
        else bad_messages++;
    }
    CHECK(bad_messages == 0, "%s: %d rejections without a proper message", what, bad_messages);
    /* Flips in tensor data or in values keep the file valid, so both
     * outcomes must occur. */
    CHECK(accepted > 0 && rejected > 0, "%s: accepted %d, rejected %d", what, accepted, rejected);
    printf("random corruption of %s: %d accepted, %d rejected (checksum %u)\n", what, accepted,
           rejected, checksum);
    free(mutated);
}

static void test_random_corruption(void) {
    size_t len;
    uint8_t *image = small_image(&len);
    fuzz_image("the small image", image, len, len, 100000, 20240601);
    free(image);

    /* The round-trip image has every value type; aim at its header. */
    mrt_rng rng;
    mrt_rng_seed(&rng, 99);
    void *data[N_RT_TENSORS];
    mrt_gguf_writer *w = build_round_trip(&rng, data);
    char err[512] = "";
    CHECK(mrt_gguf_writer_save_memory(w, &image, &len, err, sizeof err) == 0, "%s", err);
    mrt_gguf *g;
    CHECK(mrt_gguf_open_memory(&g, image, len, "rt", err, sizeof err) == 0, "%s", err);
    size_t header_len = (size_t)mrt_gguf_tensor_at(g, 0)->file_offset;
    mrt_gguf_close(g);
    fuzz_image("the round-trip image", image, len, header_len, 30000, 7);
    free(image);
    for (int i = 0; i < N_RT_TENSORS; i++) free(data[i]);
    mrt_gguf_writer_free(w);
}

/* ------------------------------------------------------------ typed lookups */

static void test_lookup_messages(void) {
    size_t len;
    uint8_t *image = small_image(&len);
    mrt_gguf *g;
    char err[512] = "";
    CHECK(mrt_gguf_open_memory(&g, image, len, "tiny.gguf", err, sizeof err) == 0, "%s", err);
    free(image);
    if (!g) return;
    const int64_t want_dims[2] = {4, 5};
    CHECK(mrt_gguf_get_f32(g, "w", 2, want_dims, err, sizeof err) == NULL &&
              strcmp(err, "tiny.gguf: tensor 'w': shape [4, 3] but the model needs [4, 5]") == 0,
          "shape message: %s", err);
    CHECK(mrt_gguf_get_f32(g, "w", 1, (const int64_t[]){12}, err, sizeof err) == NULL &&
              strstr(err, "shape [4, 3] but the model needs [12]"), "rank message: %s", err);
    CHECK(mrt_gguf_get_f32(g, "s", 1, (const int64_t[]){6}, err, sizeof err) == NULL &&
              strcmp(err, "tiny.gguf: tensor 's': type I16 but the model needs F32") == 0,
          "type message: %s", err);
    CHECK(mrt_gguf_get_tensor(g, "s", MRT_GGUF_I16, 1, (const int64_t[]){6}, err, sizeof err) != NULL,
          "I16 lookup: %s", err);
    CHECK(mrt_gguf_get_f32(g, "enc.missing", 1, (const int64_t[]){6}, err, sizeof err) == NULL &&
              strcmp(err, "tiny.gguf: no tensor named 'enc.missing'") == 0, "missing: %s", err);
    const float *w = mrt_gguf_get_f32(g, "w", 2, (const int64_t[]){4, 3}, err, sizeof err);
    CHECK(w && w[0] == -5.5f && w[11] == 5.5f, "w values");

    uint32_t u32;
    uint64_t u64;
    int32_t i32;
    CHECK(mrt_gguf_meta_u64(g, "mrt.width", &u64, err, sizeof err) == -1 &&
              strcmp(err, "tiny.gguf: metadata key 'mrt.width' has type u32 but u64 is needed") == 0,
          "meta type message: %s", err);
    CHECK(mrt_gguf_meta_i32(g, "mrt.width", &i32, err, sizeof err) == -1, "u32 is not i32");
    CHECK(mrt_gguf_meta_u32(g, "mrt.height", &u32, err, sizeof err) == -1 &&
              strcmp(err, "tiny.gguf: missing metadata key 'mrt.height' (u32)") == 0,
          "meta missing message: %s", err);
    const char *s;
    CHECK(mrt_gguf_meta_str(g, "general.name", &s, NULL, err, sizeof err) == 0 &&
              strcmp(s, "tiny") == 0, "meta_str with NULL len");
    bool flag = true;
    CHECK(mrt_gguf_meta_bool(g, "mrt.flag", &flag, NULL, 0) == 0 && !flag, "meta_bool false");
    mrt_gguf_close(g);
    mrt_gguf_close(NULL);
    mrt_gguf_writer_free(NULL);
}

int main(void) {
    const char *tmp_root = getenv("TMPDIR");
    if (!tmp_root || !tmp_root[0] || strlen(tmp_root) > 160) tmp_root = "/tmp";
    snprintf(tmp_dir, sizeof tmp_dir, "%s/test_gguf_XXXXXX", tmp_root);
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 2;
    }
    test_sha256_vectors();
    test_round_trip();
    test_empty_model();
    test_writer_validation();
    test_broken_files();
    test_truncation();
    test_random_corruption();
    test_lookup_messages();

    remove_scratch_dir(tmp_dir);
    return tu_finish("test_gguf");
}
