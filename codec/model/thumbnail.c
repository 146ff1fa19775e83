/*
 * thumbnail.c -- thumbnail heads (thumbnail.h): loading the heads file
 * beside a model, and the head itself.
 */
#define _DEFAULT_SOURCE /* realpath */
#include "thumbnail.h"

#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mrt_sha256.h"
#include "runtime.h"
#include "status.h"

char *mrt_thumb_heads_path(const char *model_path) {
    /* the real file: default.gguf is a link to mrt-0.02.gguf, whose heads
     * are mrt-0.02.thumbs.gguf */
    char *real = realpath(model_path, NULL);
    const char *base = real ? real : model_path;
    size_t n = strlen(base);
    if (n > 5 && strcmp(base + n - 5, ".gguf") == 0) n -= 5;
    char *out = malloc(n + sizeof ".thumbs.gguf");
    if (out) {
        memcpy(out, base, n);
        memcpy(out + n, ".thumbs.gguf", sizeof ".thumbs.gguf");
    }
    free(real);
    return out;
}

mrt_status mrt_thumb_heads_load(const char *model_path, const uint8_t *model_sha256, int dim,
                                int width0, mrt_thumb_heads *h, mrt_error *err) {
    memset(h, 0, sizeof *h);
    if (!model_path) return mrt_ok(err); /* a model in memory has no neighbours */
    char *path = mrt_thumb_heads_path(model_path);
    if (!path) return mrt_fail(err, MRT_ERR_NOMEM, "out of memory");
    if (access(path, F_OK) != 0) {
        free(path);
        return mrt_ok(err);
    }
    char msg[256] = "";
    mrt_gguf *g = NULL;
    if (mrt_gguf_open(&g, path, msg, sizeof msg) != 0) {
        snprintf(h->problem, sizeof h->problem, "%s", msg);
        free(path);
        return mrt_ok(err);
    }
    /* which model the heads were fitted for: the whole SHA-256 of its file */
    char want[MRT_SHA256_HEX_CHARS + 1];
    mrt_sha256_hex(model_sha256, want);
    const char *named = NULL;
    size_t named_len = 0;
    uint32_t level = 0, radius = 0;
    int ok = 0;
    if (mrt_gguf_meta_str(g, "mrt.thumbs.model_sha256", &named, &named_len, msg, sizeof msg) != 0 ||
        mrt_gguf_meta_u32(g, "mrt.thumbs.level", &level, msg, sizeof msg) != 0 ||
        mrt_gguf_meta_u32(g, "mrt.thumbs.radius", &radius, msg, sizeof msg) != 0)
        snprintf(h->problem, sizeof h->problem, "%s", msg);
    else if (named_len != MRT_SHA256_HEX_CHARS || memcmp(named, want, named_len) != 0)
        snprintf(h->problem, sizeof h->problem, "%s: fitted for another model (%.16s...), not "
                 "this one (%.16s...): fit them again (mrt fit-thumbnails)", path, named, want);
    else if (level > 2 || radius < 1 || radius > 3)
        snprintf(h->problem, sizeof h->problem, "%s: level %u, radius %u (0..2, 1..3)", path,
                 (unsigned)level, (unsigned)radius);
    else
        ok = 1;
    int channels = level > 0 ? width0 : dim; /* the generator's channels, or the map's */
    int taps = (2 * (int)radius + 1) * (2 * (int)radius + 1);
    static const int scales[MRT_THUMB_HEADS] = {4};
    for (int i = 0; ok && i < MRT_THUMB_HEADS; i++) {
        int f = 8 / scales[i], outs = 3 * f * f;
        char name[32];
        snprintf(name, sizeof name, "thumb.%d.weight", scales[i]);
        const int64_t wdims[2] = {(int64_t)taps * channels, outs}, bdims[1] = {outs};
        const float *w = mrt_gguf_get_f32(g, name, 2, wdims, msg, sizeof msg);
        snprintf(name, sizeof name, "thumb.%d.bias", scales[i]);
        const float *b = w ? mrt_gguf_get_f32(g, name, 1, bdims, msg, sizeof msg) : NULL;
        if (!w || !b) {
            snprintf(h->problem, sizeof h->problem, "%s", msg);
            ok = 0;
            break;
        }
        h->head[i] = (mrt_thumb_head){scales[i], f, channels, (int)radius, w, b};
    }
    free(path);
    if (!ok) {
        mrt_gguf_close(g);
        char problem[sizeof h->problem];
        memcpy(problem, h->problem, sizeof problem);
        memset(h, 0, sizeof *h);
        memcpy(h->problem, problem, sizeof problem);
        return mrt_ok(err);
    }
    h->file = g;
    h->level = (int)level;
    return mrt_ok(err);
}

void mrt_thumb_heads_free(mrt_thumb_heads *h) {
    if (h->file) mrt_gguf_close(h->file);
    memset(h, 0, sizeof *h);
}

int mrt_thumb_feature_map(const mrt_rt *rt, const mrt_gen_weights *g, int dim, int width0,
                          const float *map, int hp, int wp, int level, const float **out,
                          int *channels, float **owned) {
    *owned = NULL;
    if (level == 0) {
        *out = map, *channels = dim;
        return 0;
    }
    size_t n = (size_t)width0 * hp * wp;
    float *r0 = malloc(sizeof(float) * n * (level == 2 ? 3 : 1));
    if (!r0) return -1;
    /* the generator's own first layers (pixel_generator.c), on the whole map */
    mrt_conv2d_forward(rt, r0, map, g->in_w, g->in_b, 1, dim, hp, wp, width0, 3, 1);
    mrt_relu_forward(rt, r0, r0, n);
    if (level == 2) {
        float *t1 = r0 + n, *t2 = r0 + 2 * n;
        mrt_conv2d_forward(rt, t1, r0, g->res1_w, g->res1_b, 1, width0, hp, wp, width0, 3, 1);
        mrt_relu_forward(rt, t1, t1, n);
        mrt_conv2d_forward(rt, t2, t1, g->res2_w, g->res2_b, 1, width0, hp, wp, width0, 3, 1);
        mrt_add(r0, r0, t2, n);
    }
    *out = r0, *channels = width0, *owned = r0;
    return 0;
}

const mrt_thumb_head *mrt_thumb_head_for(const mrt_thumb_heads *h, int scale) {
    if (!h || !h->file) return NULL;
    for (int i = 0; i < MRT_THUMB_HEADS; i++)
        if (h->head[i].scale == scale) return &h->head[i];
    return NULL;
}

float *mrt_thumb_positions(const float *map, int channels, int hp, int wp, int threads) {
    float *t = malloc(sizeof(float) * (size_t)hp * wp * channels);
    if (!t) return NULL;
#pragma omp parallel for num_threads(threads > 0 ? threads : 1) schedule(static)
    for (int y = 0; y < hp; y++)
        for (int x = 0; x < wp; x++)
            for (int d = 0; d < channels; d++)
                t[((size_t)y * wp + x) * channels + d] = map[((size_t)d * hp + y) * wp + x];
    return t;
}

void mrt_thumb_features(const float *positions, int channels, int hp, int wp, int y, int x,
                        int radius, float *feature) {
    int side = 2 * radius + 1;
    for (int dy = 0; dy < side; dy++)
        for (int dx = 0; dx < side; dx++) {
            int yy = y + dy - radius, xx = x + dx - radius;
            float *f = feature + (size_t)(dy * side + dx) * channels;
            if (yy < 0 || yy >= hp || xx < 0 || xx >= wp)
                memset(f, 0, sizeof(float) * (size_t)channels);
            else
                memcpy(f, positions + ((size_t)yy * wp + xx) * channels,
                       sizeof(float) * (size_t)channels);
        }
}

int mrt_thumb_head_apply(const mrt_thumb_head *h, const float *map, int hp, int wp, int out_w,
                         int out_h, int threads, uint8_t *rgb) {
    int side = 2 * h->radius + 1, f = h->f, K = side * side * h->dim, outs = 3 * f * f;
    int rows = (out_h + f - 1) / f, cols = (out_w + f - 1) / f;
    int nt = threads > 0 ? threads : 1;
    /* per thread: one map row's features (cols x K) and outputs (cols x outs) */
    size_t per = (size_t)cols * (K + outs);
    float *scratch = malloc(sizeof(float) * per * nt);
    float *positions = mrt_thumb_positions(map, h->dim, hp, wp, nt);
    if (!scratch || !positions) {
        free(scratch), free(positions);
        return -1;
    }
#pragma omp parallel num_threads(nt)
    {
        float *F = scratch + per * omp_get_thread_num(), *O = F + (size_t)cols * K;
        /* a map row per iteration, its product on one thread (single-threaded
         * BLIS): the same bytes whichever thread takes it */
#pragma omp for schedule(static)
        for (int y = 0; y < rows; y++) {
            for (int x = 0; x < cols; x++)
                mrt_thumb_features(positions, h->dim, hp, wp, y, x, h->radius, F + (size_t)x * K);
            mrt_sgemm_1t(false, true, cols, outs, K, 1.0f, F, K, h->w, K, 0.0f, O, outs);
            for (int x = 0; x < cols; x++)
                for (int sy = 0; sy < f; sy++)
                    for (int sx = 0; sx < f; sx++) {
                        int oy = y * f + sy, ox = x * f + sx;
                        if (oy >= out_h || ox >= out_w) continue;
                        for (int c = 0; c < 3; c++) {
                            int o = (sy * f + sx) * 3 + c;
                            float v = O[(size_t)x * outs + o] + h->b[o] + 0.5f;
                            /* !(v > 0) also catches NaN */
                            rgb[((size_t)oy * out_w + ox) * 3 + c] =
                                !(v > 0.0f) ? 0 : v >= 255.0f ? 255 : (uint8_t)v;
                        }
                    }
        }
    }
    free(scratch);
    free(positions);
    return 0;
}
