/*
 * ctxmodel_grad.h -- the context model in floating point, for training, and its
 * export to the integer weights the codec runs (ctxmodel.h).
 *
 * The float model is the integer one read in real units: with
 * W1 = w1 / 2^12, b1 = b1_int / 2^16, W2 = w2 / 2^12, b2 = b2_int / 2^16,
 *     h = relu(W1 in + b1),   mu = W2_mu h + b2_mu,   s = W2_s h + b2_s
 * where `in` holds the side bits as +-1, the quadrant flags as 0/1 and the
 * decoded values y_hat; s is a continuous scale index (sigma =
 * 0.11 (64 / 0.11)^(s / 63), clamped to [0, 63]). Exporting rounds each
 * weight to its fixed-point grid, so the codec's mu and scale index are the
 * float model's up to that rounding.
 *
 * The rate of a latent: with y_noisy = y + u, u ~ U(-1/2, 1/2) (the usual
 * training proxy for rounding), every symbol costs
 *     -log2(Phi((y_noisy - mu + 1/2) / sigma) - Phi((y_noisy - mu - 1/2) / sigma) + 1e-9)
 * bits, with the decoded values of earlier steps taken as y_noisy (teacher
 * forcing in the codec's decoding order).
 */
#ifndef MRT_CTXMODEL_GRAD_H
#define MRT_CTXMODEL_GRAD_H

#include "ctxmodel.h"

/* Float weights of one step, row-major like the integer ones. */
typedef struct mrt_ctx_float_step {
    float *w1, *b1, *w2, *b2;
} mrt_ctx_float_step;

typedef struct mrt_ctx_float {
    mrt_ctx_float_step step[MRT_MAX_CTX_GROUPS][2];
} mrt_ctx_float;

/* Floats of all steps' weights, laid out step by step (w1, b1, w2, b2). */
size_t mrt_ctx_float_size(const mrt_config *cfg);
void mrt_ctx_float_bind(const mrt_config *cfg, mrt_ctx_float *f, float *base);
/* Integer weights -> floats, and back (rounded to the fixed-point grid). */
void mrt_ctx_float_from_int(const mrt_config *cfg, const mrt_weights *w, mrt_ctx_float *f);
void mrt_ctx_float_to_int(const mrt_config *cfg, const mrt_ctx_float *f, mrt_weights *w);

/* Bits of the whole latent (sum over symbols) for `images` images of the
 * given latent shape, laid out image after image. y_noisy: (images *
 * ntokens, c); side_bits: images * ngx * ngy * d bytes of 0/1. With
 * non-NULL gradients, accumulates d(bits)/d(y_noisy) into dy and the
 * weights' gradients into df. mu and s (ntokens * c each per image) may be
 * NULL; else they receive each symbol's mean and continuous scale index. */
double mrt_ctx_float_bits(const mrt_config *cfg, const mrt_ctx_float *f,
                          const mrt_latent_shape *sh, int images, const uint8_t *side_bits,
                          const float *y_noisy, float *dy, const mrt_ctx_float *df, float *mu,
                          float *s);

/* sigma of a continuous scale index (clamped to [0, 63]). */
double mrt_ctx_sigma(double s);

#endif /* MRT_CTXMODEL_GRAD_H */
