/*
 * codec_internal.h -- what tests, the trainer and the tools need from the
 * codec beyond the public API: the symbol trace, saving and initialising
 * models from a configuration.
 */
#ifndef MRT_CODEC_INTERNAL_H
#define MRT_CODEC_INTERNAL_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctxmodel.h"
#include "model.h"
#include "mrt.h"
#include "refine.h"

/* Residuals are clamped to this magnitude before coding (a value beyond it
 * only occurs with a broken model; the Gaussian coder's escape handles
 * anything up to it). */
#define MRT_RESIDUAL_MAX (1 << 20)

/* The residual the encoder codes for a latent value y whose mean is mu_q4
 * (Q4: MRT_CTX_Q per unit): round(y - mu), bounded so the Q4 value
 * stays far from int32 limits; NaN (a broken model) becomes 0. The encoder
 * and the latent refinement (refine.c) both use it, so what refinement
 * optimises is exactly what is coded. */
static inline int32_t mrt_encoder_residual(float y, int32_t mu_q4) {
    float v = y - (float)mu_q4 / MRT_CTX_Q;
    float r = v == v ? floorf(v + 0.5f) : 0.0f;
    r = r > MRT_RESIDUAL_MAX ? MRT_RESIDUAL_MAX : r < -MRT_RESIDUAL_MAX ? -MRT_RESIDUAL_MAX : r;
    return (int32_t)r;
}

/* Every coded symbol, in bitstream order, and the side bits: the encoder's
 * and the decoder's traces of one stream must be identical. */
typedef struct mrt_trace {
    int32_t *residual, *mu;
    uint8_t *scale;
    size_t count, cap;
    uint8_t *side;
    size_t nside;
    bool failed; /* out of memory while tracing */
} mrt_trace;

static inline void mrt_trace_add(mrt_trace *t, int32_t residual, int32_t mu, int scale) {
    if (t->count == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 1024;
        int32_t *r = realloc(t->residual, cap * sizeof *r);
        if (r) t->residual = r;
        int32_t *m = realloc(t->mu, cap * sizeof *m);
        if (m) t->mu = m;
        uint8_t *s = realloc(t->scale, cap);
        if (s) t->scale = s;
        if (!r || !m || !s) {
            t->failed = true;
            return;
        }
        t->cap = cap;
    }
    t->residual[t->count] = residual;
    t->mu[t->count] = mu;
    t->scale[t->count] = (uint8_t)scale;
    t->count++;
}

static inline void mrt_trace_side(mrt_trace *t, const uint8_t *side, size_t n) {
    free(t->side);
    t->side = malloc(n + 1);
    if (!t->side) {
        t->failed = true;
        return;
    }
    memcpy(t->side, side, n);
    t->nside = n;
}

/* Two traces hold the same symbols, means, scale indices and side bits
 * (an encoder's and a decoder's of one stream must). */
static inline bool mrt_trace_equal(const mrt_trace *a, const mrt_trace *b) {
    return !a->failed && !b->failed && a->count == b->count && a->nside == b->nside &&
           !memcmp(a->residual, b->residual, a->count * sizeof(int32_t)) &&
           !memcmp(a->mu, b->mu, a->count * sizeof(int32_t)) &&
           !memcmp(a->scale, b->scale, a->count) &&
           (a->nside == 0 || !memcmp(a->side, b->side, a->nside));
}

static inline void mrt_trace_free(mrt_trace *t) {
    free(t->residual), free(t->mu), free(t->scale), free(t->side);
    memset(t, 0, sizeof *t);
}

/* The next two code the image at its own size, whatever the model's working
 * scale (tests and tools that trace or refine the full-size latent). */
mrt_status mrt_encode_traced(const mrt_model *m, const mrt_image *img, int threads,
                             uint8_t **out, size_t *out_len, mrt_trace *trace, mrt_error *err);
/* mrt_encode with latent refinement (refine.h) at the image's own size;
 * report may be NULL. */
mrt_status mrt_encode_refined(const mrt_model *m, const mrt_image *img, int threads,
                              const mrt_refine_options *refine, mrt_refine_report *report,
                              uint8_t **out, size_t *out_len, mrt_error *err);
/* mrt_decode without the final upscale: the picture at the working size
 * the bitstream codes (the image's own size for version 1). */
mrt_status mrt_decode_working(const mrt_model *m, const uint8_t *data, size_t len, int threads,
                              mrt_image *out, mrt_error *err);
/* mrt_model_load, with or without the thumbnail heads beside the model
 * (fit-thumbnails loads a model whose old heads may no longer fit it). */
mrt_status mrt_model_load_with(const char *path, bool thumbnail_heads, mrt_model **out,
                               mrt_error *err);
/* The thumbnail heads loaded with the model (none: ->file NULL, and
 * ->problem says why when a heads file was there but not used). */
const struct mrt_thumb_heads *mrt_model_thumb_heads(const mrt_model *m);
/* The decoder's 1/p map of a bitstream (mrt_synthesis_map): *map is (D,
 * *hp, *wp) floats, malloc'd. For fitting thumbnail heads. */
mrt_status mrt_decode_map(const mrt_model *m, const uint8_t *data, size_t len, int threads,
                          float **map, int *hp, int *wp, mrt_error *err);
mrt_status mrt_decode_traced(const mrt_model *m, const uint8_t *data, size_t len, int threads,
                             mrt_image *out, mrt_trace *trace, mrt_error *err);

const mrt_config *mrt_model_config(const mrt_model *m);
const mrt_weights *mrt_model_weights(const mrt_model *m);
/* mrt.train.mse_weight: 0 for a model trained without --mse-weight */
float mrt_model_mse_weight(const mrt_model *m);
/* One side shrunk by s: round(side * s), at least 1 (working sizes, the
 * budget search's grids and comparison sizes). */
static inline int mrt_scaled_side(int side, double s) {
    long v = lround(side * s);
    return v < 1 ? 1 : (int)v;
}
/* Whether two models hold the same configuration and weights (a rate point
 * made by mrt_rate_point_write and the weights it was made from do), so
 * that the budget search tries such weights once. */
bool mrt_model_same_weights(const mrt_model *a, const mrt_model *b);

#endif /* MRT_CODEC_INTERNAL_H */
