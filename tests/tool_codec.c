/*
 * tool_codec.c -- a helper program for tests/determinism.sh:
 *
 *   tool_codec model OUT.gguf SEED          write a seeded random model
 *   tool_codec encode MODEL W H SEED OUT    encode a synthetic W x H image;
 *                                           prints the symbol-trace hash
 *   tool_codec decode MODEL STREAM RGBOUT   decode; prints the trace hash
 *                                           and writes raw RGB8
 *   tool_codec diff A.rgb B.rgb             prints the largest difference
 *
 * The trace hash (FNV-1a over every residual, mean, scale index and side
 * bit, in bitstream order) is what must be identical on every machine,
 * build and thread count; the pixels may differ within a tolerance.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"

static uint64_t fnv(uint64_t h, const void *data, size_t n) {
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t trace_hash(const mrt_trace *t) {
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv(h, t->residual, t->count * sizeof(int32_t));
    h = fnv(h, t->mu, t->count * sizeof(int32_t));
    h = fnv(h, t->scale, t->count);
    return fnv(h, t->side, t->nside);
}

static int die(const char *what, const mrt_error *err) {
    fprintf(stderr, "tool_codec: %s: %s\n", what, err ? err->message : "failed");
    return 1;
}

/* Prints the trace's hash (what determinism.sh compares) and frees. */
static int finish(mrt_trace *t, uint8_t *bits, mrt_image *img, mrt_model *m) {
    printf("%016llx\n", (unsigned long long)trace_hash(t));
    mrt_trace_free(t);
    mrt_free(bits);
    mrt_image_free(img);
    mrt_model_free(m);
    return 0;
}

int main(int argc, char **argv) {
    mrt_error err = {0};
    if (argc == 4 && !strcmp(argv[1], "model")) {
        if (mrt_model_write_random(argv[2], strtoull(argv[3], NULL, 10), 0, &err) != MRT_OK)
            return die("model", &err);
        return 0;
    }
    if (argc == 7 && !strcmp(argv[1], "encode")) {
        mrt_model *m = NULL;
        if (mrt_model_load(argv[2], &m, &err) != MRT_OK) return die("load", &err);
        int w = atoi(argv[3]), h = atoi(argv[4]);
        mrt_rng rng;
        mrt_rng_seed(&rng, strtoull(argv[5], NULL, 10));
        mrt_image img = {w, h, malloc((size_t)w * h * 3)};
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int c = 0; c < 3; c++)
                    img.rgb[((size_t)y * w + x) * 3 + c] =
                        (uint8_t)((x * (c + 1) + y * (3 - c)) / 3 + (mrt_rng_next(&rng) & 31));
        mrt_trace t = {0};
        uint8_t *bits = NULL;
        size_t len = 0;
        if (mrt_encode_traced(m, &img, 0, &bits, &len, &t, &err) != MRT_OK) return die("encode", &err);
        if (mrt_write_file_atomic(argv[6], bits, len, &err) != MRT_OK) return die("write", &err);
        return finish(&t, bits, &img, m);
    }
    if (argc == 5 && !strcmp(argv[1], "decode")) {
        mrt_model *m = NULL;
        if (mrt_model_load(argv[2], &m, &err) != MRT_OK) return die("load", &err);
        uint8_t *bits = NULL;
        size_t len = 0;
        if (mrt_read_file(argv[3], MRT_MAX_FILE_BYTES, &bits, &len, &err) != MRT_OK)
            return die("read", &err);
        mrt_trace t = {0};
        mrt_image img = {0};
        if (mrt_decode_traced(m, bits, len, 0, &img, &t, &err) != MRT_OK) return die("decode", &err);
        size_t n = (size_t)img.width * img.height * 3;
        if (mrt_write_file_atomic(argv[4], img.rgb, n, &err) != MRT_OK) return die("write", &err);
        return finish(&t, bits, &img, m);
    }
    if (argc == 4 && !strcmp(argv[1], "diff")) {
        uint8_t *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        if (mrt_read_file(argv[2], MRT_MAX_FILE_BYTES, &a, &na, &err) != MRT_OK ||
            mrt_read_file(argv[3], MRT_MAX_FILE_BYTES, &b, &nb, &err) != MRT_OK)
            return die("diff", &err);
        if (na != nb) {
            fprintf(stderr, "tool_codec: diff: sizes differ (%zu and %zu bytes)\n", na, nb);
            return 1;
        }
        int worst = 0;
        for (size_t i = 0; i < na; i++) {
            int d = abs((int)a[i] - (int)b[i]);
            worst = d > worst ? d : worst;
        }
        printf("%d\n", worst);
        mrt_free(a);
        mrt_free(b);
        return 0;
    }
    fprintf(stderr, "usage: see the comment at the top of tests/tool_codec.c\n");
    return 2;
}
