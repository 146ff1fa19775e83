/*
 * fuzz_gguf.c -- libFuzzer harness for the weights file reader (gguf.c)
 * and the model loader on top of it (mrt_model_load).
 *
 * Every input is opened twice: from memory (mrt_gguf_open_memory, which
 * copies it into a buffer of exactly its length, so ASan sees any read
 * past the end) and as a file (mrt_gguf_open, which mmaps it: the path the
 * codec really uses). The file is a memfd, reached as /proc/self/fd/N, so
 * nothing touches the disk. Both must agree: accept or reject alike, and
 * when accepted have the same SHA-256, tensors and keys.
 *
 * An accepted file is then walked through the whole reader API: every
 * tensor (its data read at both ends: the pointer and nbytes must be
 * right), every key and value (strings and arrays read in full), and the
 * lookups by name, which must find what the index gives. Last, the file
 * is loaded as a model: that validates the configuration in its metadata
 * and every tensor's shape against it; a loaded model's fingerprint must
 * be the file's SHA-256.
 *
 * fuzz_seeds writes a small file with every value type and tensor type
 * and a complete model (fuzz_model.h's), so mutations start from files
 * the reader and the loader both accept.
 *
 * Run (see fuzz/README.md):
 *     ./fuzz_gguf -max_total_time=600 work/gguf seeds/gguf
 */
#define _GNU_SOURCE /* memfd_create */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gguf.h"
#include "mrt.h"
#include "fuzz_expect.h"


static int memfd = -1;
static char memfd_path[64];
static volatile unsigned sink;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    memfd = memfd_create("mrt-fuzz-gguf", MFD_CLOEXEC);
    if (memfd < 0) {
        perror("fuzz_gguf: memfd_create");
        exit(1);
    }
    snprintf(memfd_path, sizeof memfd_path, "/proc/self/fd/%d", memfd);
    return 0;
}

static size_t native_size(mrt_gguf_vtype t) {
    switch (t) {
    case MRT_GGUF_V_U8: case MRT_GGUF_V_I8: return 1;
    case MRT_GGUF_V_U16: case MRT_GGUF_V_I16: return 2;
    case MRT_GGUF_V_U32: case MRT_GGUF_V_I32: case MRT_GGUF_V_F32: return 4;
    case MRT_GGUF_V_BOOL: return sizeof(bool);
    case MRT_GGUF_V_U64: case MRT_GGUF_V_I64: case MRT_GGUF_V_F64: return 8;
    case MRT_GGUF_V_STRING: return sizeof(mrt_gguf_string);
    default: return 0;
    }
}

static void check_string(const mrt_gguf_string *s) {
    EXPECT(s->str && strlen(s->str) == s->len, "string of %zu bytes", s->len);
}

static void walk(const mrt_gguf *g) {
    char err[512];
    int nt = mrt_gguf_tensor_count(g);
    EXPECT(nt >= 0 && nt <= MRT_GGUF_MAX_TENSORS, "%d tensors", nt);
    EXPECT(!mrt_gguf_tensor_at(g, -1) && !mrt_gguf_tensor_at(g, nt), "index out of range");
    for (int i = 0; i < nt; i++) {
        const mrt_gguf_tensor *t = mrt_gguf_tensor_at(g, i);
        EXPECT(t && t->name && t->n_dims >= 1 && t->n_dims <= MRT_GGUF_MAX_DIMS, "tensor %d", i);
        size_t esize = mrt_gguf_type_size(t->type);
        EXPECT(esize && t->nbytes == (size_t)t->nelems * esize && t->nbytes > 0,
               "tensor '%s': %zu bytes, %lld elements", t->name, t->nbytes,
               (long long)t->nelems);
        EXPECT((uintptr_t)t->data % MRT_GGUF_ALIGNMENT == 0, "tensor '%s' misaligned", t->name);
        const uint8_t *d = t->data;
        sink = d[0] + d[t->nbytes - 1];
        EXPECT(mrt_gguf_find(g, t->name) == t, "find('%s')", t->name);
        EXPECT(mrt_gguf_get_tensor(g, t->name, t->type, t->n_dims, t->dims, err, sizeof err) == t,
               "get_tensor('%s'): %s", t->name, err);
    }
    int nk = mrt_gguf_kv_count(g);
    EXPECT(nk >= 1 && nk <= MRT_GGUF_MAX_KVS, "%d keys (general.alignment is required)", nk);
    EXPECT(!mrt_gguf_kv_at(g, -1) && !mrt_gguf_kv_at(g, nk), "index out of range");
    for (int i = 0; i < nk; i++) {
        const mrt_gguf_kv *kv = mrt_gguf_kv_at(g, i);
        EXPECT(kv && kv->key && mrt_gguf_find_kv(g, kv->key) == kv, "key %d", i);
        if (kv->type == MRT_GGUF_V_STRING) {
            check_string(&kv->v.str);
            const char *s;
            size_t len;
            EXPECT(mrt_gguf_meta_str(g, kv->key, &s, &len, err, sizeof err) == 0 &&
                   s == kv->v.str.str && len == kv->v.str.len, "meta_str('%s')", kv->key);
        } else if (kv->type == MRT_GGUF_V_ARRAY) {
            size_t es = native_size(kv->elem_type);
            EXPECT(es && kv->elem_type != MRT_GGUF_V_ARRAY && kv->count <= MRT_GGUF_MAX_ARRAY_COUNT,
                   "array '%s' of type %d", kv->key, (int)kv->elem_type);
            EXPECT((kv->count == 0) == (kv->v.array == NULL), "array '%s'", kv->key);
            if (kv->elem_type == MRT_GGUF_V_STRING) {
                const mrt_gguf_string *a = kv->v.array;
                for (uint64_t k = 0; k < kv->count; k++) check_string(&a[k]);
            } else if (kv->count) {
                const uint8_t *a = kv->v.array;
                sink = a[0] + a[kv->count * es - 1];
            }
        } else if (kv->type == MRT_GGUF_V_U32) {
            uint32_t v;
            EXPECT(mrt_gguf_meta_u32(g, kv->key, &v, err, sizeof err) == 0 && v == kv->v.u32,
                   "meta_u32('%s')", kv->key);
        } else {
            EXPECT(native_size(kv->type) != 0, "key '%s' of type %d", kv->key, (int)kv->type);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err_mem[512], err_file[512];
    mrt_gguf *gm = NULL, *gf = NULL;
    int rm = mrt_gguf_open_memory(&gm, data, size, "fuzz", err_mem, sizeof err_mem);
    EXPECT((rm == 0) == (gm != NULL) && (rm == 0 || err_mem[0]), "open_memory returned %d", rm);

    EXPECT(ftruncate(memfd, 0) == 0 && (size == 0 || pwrite(memfd, data, size, 0) == (ssize_t)size),
           "cannot write the memfd");
    int rf = mrt_gguf_open(&gf, memfd_path, err_file, sizeof err_file);
    EXPECT(rf == rm, "memory: %s; file: %s", rm ? err_mem : "ok", rf ? err_file : "ok");
    if (rm != 0) return 0;

    EXPECT(memcmp(mrt_gguf_sha256(gm), mrt_gguf_sha256(gf), 32) == 0 &&
           mrt_gguf_tensor_count(gm) == mrt_gguf_tensor_count(gf) &&
           mrt_gguf_kv_count(gm) == mrt_gguf_kv_count(gf), "memory and file differ");
    walk(gm);
    walk(gf);
    mrt_gguf_close(gf);

    mrt_model *model = NULL;
    mrt_error err;
    mrt_status st = mrt_model_load(memfd_path, &model, &err);
    EXPECT((st == MRT_OK) == (model != NULL), "%s", mrt_status_name(st));
    if (st == MRT_OK)
        EXPECT(memcmp(mrt_model_fingerprint(model), mrt_gguf_sha256(gm), 32) == 0,
               "model fingerprint is not the file's SHA-256");
    else
        EXPECT(st == MRT_ERR_MODEL || st == MRT_ERR_NOMEM, "load: %s: %s", mrt_status_name(st),
               err.message);
    mrt_model_free(model);
    mrt_gguf_close(gm);
    return 0;
}
