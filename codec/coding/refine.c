/*
 * refine.c -- encoder-side latent refinement (see refine.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"
#include "ctxmodel_grad.h"
#include "entropy.h"
#include "pixel_generator.h"
#include "refine.h"
#include "transform_grad.h"
#include "transform.h"

/* Noise for the rate's gradient: fixed, so that encoding is repeatable. */
#define REFINE_SEED 0x6d72747265666e65ull

typedef struct {
    const float *y;
    int32_t *decoded;
    int channels;
    const mrt_gauss_tables *tables;
    double bits;
} exact_ctx;

/* mrt_ctx_run step: the residual the encoder will code, the value the
 * decoder will see, and its code length under the coder's own table. */
static int exact_symbol(void *p, int token, int ch, int32_t mu_q4, int scale) {
    exact_ctx *e = p;
    size_t i = (size_t)token * e->channels + ch;
    int32_t r = mrt_encoder_residual(e->y[i], mu_q4);
    e->decoded[i] = r * MRT_CTX_Q + mu_q4;
    e->bits += mrt_gauss_bits(e->tables, scale, r);
    return 0;
}

typedef struct {
    mrt_grid g;
    mrt_latent_shape lsh;
    int W, H;          /* padded image: whole windows */
    size_t ny, nout;   /* latent floats; generator output floats (3 W H) */
    size_t nreal;      /* real pixels */
    mrt_synthesis_acts sy;
    mrt_gen_acts gen;
    float *ctx_store;  /* the float context model */
    mrt_ctx_float cf;
    int32_t *decoded;
    float *y_hat, *d_y_hat, *dy_rate, *y_noisy, *dy, *m, *v, *best;
    float *target, *crop, *dcrop, *dout, *dmap, *x01, *out01;
} refine_state;

static void state_free(refine_state *s, const mrt_config *cfg) {
    mrt_synthesis_acts_free(&s->sy, cfg);
    mrt_gen_acts_free(&s->gen);
    free(s->ctx_store), free(s->decoded);
    free(s->y_hat), free(s->d_y_hat), free(s->dy_rate), free(s->y_noisy), free(s->dy);
    free(s->m), free(s->v), free(s->best);
    free(s->target), free(s->crop), free(s->dcrop), free(s->dout), free(s->dmap);
    free(s->x01), free(s->out01);
}

static int state_alloc(refine_state *s, const mrt_config *cfg, int width, int height) {
    memset(s, 0, sizeof *s);
    s->g = mrt_grid_of(cfg, width, height);
    s->lsh = mrt_latent_shape_of(cfg, width, height);
    s->W = s->g.wp * cfg->patch;
    s->H = s->g.hp * cfg->patch;
    s->ny = (size_t)s->lsh.ntokens * cfg->channels;
    s->nout = (size_t)3 * s->W * s->H;
    s->nreal = (size_t)width * height;
    size_t nmap = (size_t)cfg->dim * s->g.wp * s->g.hp, ncrop = 3 * s->nreal;
    if (mrt_synthesis_acts_alloc(&s->sy, cfg, 1, s->W, s->H) != 0 ||
        mrt_gen_acts_alloc(&s->gen, 1, s->g.hp, s->g.wp, cfg->dim, cfg->gen_width, true) != 0)
        return -1;
    size_t nctx = mrt_ctx_float_size(cfg);
    if (!(s->ctx_store = malloc(sizeof(float) * (nctx ? nctx : 1))) ||
        !(s->decoded = malloc(sizeof(int32_t) * s->ny)) ||
        !(s->y_hat = malloc(sizeof(float) * s->ny)) ||
        !(s->d_y_hat = malloc(sizeof(float) * s->ny)) ||
        !(s->dy_rate = malloc(sizeof(float) * s->ny)) ||
        !(s->y_noisy = malloc(sizeof(float) * s->ny)) || !(s->dy = malloc(sizeof(float) * s->ny)) ||
        !(s->m = calloc(s->ny, sizeof(float))) || !(s->v = calloc(s->ny, sizeof(float))) ||
        !(s->best = malloc(sizeof(float) * s->ny)) ||
        !(s->target = malloc(sizeof(float) * ncrop)) || !(s->crop = malloc(sizeof(float) * ncrop)) ||
        !(s->dcrop = malloc(sizeof(float) * ncrop)) ||
        !(s->dout = malloc(sizeof(float) * s->nout)) || !(s->dmap = malloc(sizeof(float) * nmap)) ||
        !(s->x01 = malloc(sizeof(float) * ncrop)) || !(s->out01 = malloc(sizeof(float) * ncrop)))
        return -1;
    mrt_ctx_float_bind(cfg, &s->cf, s->ctx_store);
    return 0;
}

/* The decoded latent of y, exactly as the bitstream will carry it, into
 * s->y_hat; returns the symbols' code length in bits (the coder's own
 * integer frequencies: the stream's size up to its last byte or two). */
static double decode_exactly(const mrt_config *cfg, const mrt_weights *w,
                             const mrt_gauss_tables *tables, refine_state *s,
                             const uint8_t *side, const float *y) {
    exact_ctx e = {y, s->decoded, cfg->channels, tables, 0.0};
    mrt_ctx_run(cfg, w, &s->lsh, side, s->decoded, exact_symbol, &e);
    for (size_t i = 0; i < s->ny; i++) s->y_hat[i] = (float)s->decoded[i] / MRT_CTX_Q;
    return e.bits;
}

/* Decoder forward on s->y_hat and the distortion L1 + (1 - MS-SSIM) + w MSE over
 * the real pixels; with `grad`, s->dout receives d(distortion)/d(output)
 * (zero over the padding). The losses are training's (codec_step.c: L1 on
 * [-1, 1] values, MS-SSIM on [0, 1]), on the output clipped to [-1, 1] as
 * the decoder clips it to 0..255 (synthesis.c): what is measured is the
 * picture the decoder will show, and no effort goes into values the clip
 * discards (their gradient is 0). */
static double distortion(const mrt_rt *rt, const mrt_config *cfg, const mrt_weights *w,
                         refine_state *s, int width, int height, float mse_weight, bool grad) {
    mrt_synthesis_train_forward(rt, cfg, w, &s->sy, s->y_hat);
    mrt_gen_forward(rt, &w->gen, &s->gen, s->sy.map);
    size_t plane = s->nreal;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < height; y++) {
            const float *src = s->gen.out + ((size_t)c * s->H + y) * s->W;
            float *dst = s->crop + c * plane + (size_t)y * width;
            for (int x = 0; x < width; x++) dst[x] = src[x] < -1.0f ? -1.0f : src[x] > 1.0f ? 1.0f : src[x];
        }
    size_t n = 3 * plane;
    if (grad) memset(s->dcrop, 0, sizeof(float) * n);
    double l1 = mrt_l1_loss(grad ? s->dcrop : NULL, s->crop, s->target, n, 1.0f);
    /* w * MSE on [0, 1] values (codec_step.c): a difference on [-1, 1] is twice
     * one on [0, 1], so the MSE there is a quarter, and so is its gradient */
    double mse = mse_weight > 0 ? mrt_mse_loss(grad ? s->dcrop : NULL, s->crop, s->target, n,
                                               mse_weight / 4.0f) / 4.0
                                : 0.0;
    for (size_t i = 0; i < n; i++) s->out01[i] = 0.5f * (s->crop[i] + 1.0f);
    /* d(1 - msssim)/d(out) = -d msssim/d(out01) * 0.5 */
    double ms = mrt_msssim(rt, grad ? s->dcrop : NULL, s->out01, s->x01, 1, 3, height, width,
                           -0.5f);
    if (grad) {
        memset(s->dout, 0, sizeof(float) * s->nout);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < height; y++) {
                size_t row = ((size_t)c * s->H + y) * s->W;
                const float *g = s->dcrop + c * plane + (size_t)y * width;
                for (int x = 0; x < width; x++) {
                    float v = s->gen.out[row + x];
                    s->dout[row + x] = v < -1.0f || v > 1.0f ? 0.0f : g[x];
                }
            }
    }
    return l1 + (1.0 - ms) + mse_weight * mse;
}

/* lambda's start and its dual-ascent rate: lambda *= exp(RATE * (bpp /
 * budget - 1)) after each step, so 5 % over the budget raises it 10 %. The
 * start is high enough that the first steps lower the rate (on the shipped
 * 0.02 model; at 4, samples/coffee.jpg spent its first ten steps over the
 * budget, so a short refinement kept nothing); the ascent then lowers it
 * to where the rate stays near the budget. */
#define LAMBDA_START 8.0
#define LAMBDA_RATE 2.0

/* Adam's step size for `step` of `steps`: a cosine from opt->lr down to
 * nothing at the last step. At a constant step the latent kept circling
 * its optimum (240 steps bought nothing over 120); annealed, it settles.
 * Measured on kodim01-03 at 120 steps with the step-86,245 0.02 model: the
 * constant 0.05 gave 23.31 dB and MS-SSIM 0.7501; this schedule from 0.05,
 * 23.37 / 0.7527 (to a tenth of it); from 0.1, 23.39 / 0.7552; from 0.15,
 * 23.37 / 0.7540. */
static float step_size(const mrt_refine_options *opt, int step) {
    const double pi = 3.14159265358979323846;
    return (float)(opt->lr * 0.5 * (1.0 + cos(pi * step / opt->steps)));
}

mrt_status mrt_refine_check(int width, int height, const mrt_refine_options *opt,
                            mrt_error *err) {
    if (!opt || opt->steps < 0 || opt->steps > MRT_REFINE_MAX_STEPS || !(opt->lr > 0.0f) ||
        !(opt->lr <= 10.0f))
        return mrt_fail(err, MRT_ERR_ARGUMENT, "latent refinement: steps must be 0..%d and the "
                        "step size in (0, 10]", MRT_REFINE_MAX_STEPS);
    if (opt->mse_weight_given && !mrt_mse_weight_ok(opt->mse_weight))
        return mrt_fail(err, MRT_ERR_ARGUMENT, "latent refinement: the MSE weight must be in "
                        "[0, %g], not %g", (double)MRT_MAX_MSE_WEIGHT, (double)opt->mse_weight);
    if ((long long)width * height > MRT_REFINE_MAX_PIXELS)
        return mrt_fail(err, MRT_ERR_TOO_BIG, "latent refinement: image %dx%d has more than %lld "
                        "pixels (it keeps the whole decoder's activations); encode it without "
                        "refinement", width, height, (long long)MRT_REFINE_MAX_PIXELS);
    return MRT_OK;
}

mrt_status mrt_refine_latent(const mrt_rt *rt, const mrt_config *cfg, const mrt_weights *w,
                             const mrt_gauss_tables *tables, float model_mse_weight,
                             const uint8_t *rgb,
                             int width, int height,
                             const uint8_t *side_bits, const mrt_refine_options *opt, float *y,
                             mrt_refine_report *report, mrt_error *err) {
    mrt_status st = mrt_refine_check(width, height, opt, err);
    if (st != MRT_OK) return st;
    float mse_weight = opt->mse_weight_given ? opt->mse_weight : model_mse_weight;
    refine_state s;
    if (state_alloc(&s, cfg, width, height) != 0) {
        state_free(&s, cfg);
        return mrt_fail(err, MRT_ERR_NOMEM, "out of memory refining the latent of a %dx%d image",
                        width, height);
    }
    mrt_ctx_float_from_int(cfg, w, &s.cf);
    size_t plane = s.nreal;
    /* the photo, planar: in [-1, 1] for L1, in [0, 1] for MS-SSIM */
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < plane; i++) {
            s.target[c * plane + i] = rgb[i * 3 + c] * (2.0f / 255.0f) - 1.0f;
            s.x01[c * plane + i] = 0.5f * (s.target[c * plane + i] + 1.0f);
        }
    double pixels = (double)plane;
    double side_bpp = (double)s.lsh.ngx * s.lsh.ngy * cfg->side_bits / pixels;
    double lambda = LAMBDA_START, budget = 0, best = INFINITY;
    mrt_adamw adam = {opt->lr, 0.9f, 0.999f, 1e-8f, 0.0f};
    mrt_rng rng;
    mrt_rng_seed(&rng, REFINE_SEED);
    for (int step = 0; step <= opt->steps; step++) {
        bool last = step == opt->steps;
        double bits = decode_exactly(cfg, w, tables, &s, side_bits, y);
        double d = distortion(rt, cfg, w, &s, width, height, mse_weight, !last);
        double bpp = bits / pixels + side_bpp;
        if (!isfinite(d) || !isfinite(bpp)) {
            st = mrt_fail(err, MRT_ERR_NOMEM, "latent refinement: the objective is not finite "
                          "at step %d (out of memory, or a broken model)", step);
            break;
        }
        if (step == 0) {
            budget = bpp;
            if (report) report->start_distortion = d, report->start_bpp = bpp;
        }
        if (bpp <= budget && d < best) {
            best = d;
            memcpy(s.best, y, sizeof(float) * s.ny);
            if (report) report->distortion = d, report->bpp = bpp, report->best_step = step;
        }
        if (last) break;
        if (step > 0 && budget > 0) lambda *= exp(LAMBDA_RATE * (bpp / budget - 1.0));
        /* distortion: straight through the rounding (d y_hat / d y = 1);
         * the weights get no gradients (all-NULL gradient pointers) */
        static const mrt_weights no_grads;
        memset(s.dmap, 0, sizeof(float) * cfg->dim * s.g.wp * s.g.hp);
        memset(s.d_y_hat, 0, sizeof(float) * s.ny);
        if (mrt_gen_backward(rt, &w->gen, NULL, &s.gen, s.sy.map, s.dout, s.dmap) != 0 ||
            mrt_synthesis_train_backward(rt, cfg, w, &no_grads, &s.sy, s.dmap, s.d_y_hat) != 0) {
            st = mrt_fail(err, MRT_ERR_NOMEM, "out of memory refining the latent");
            break;
        }
        /* rate: the float context model on y + uniform noise */
        for (size_t i = 0; i < s.ny; i++) s.y_noisy[i] = y[i] + mrt_rng_uniform(&rng) - 0.5f;
        memset(s.dy_rate, 0, sizeof(float) * s.ny);
        mrt_ctx_float_bits(cfg, &s.cf, &s.lsh, 1, side_bits, s.y_noisy, s.dy_rate, NULL, NULL,
                           NULL);
        float rate_scale = (float)(lambda / pixels);
        for (size_t i = 0; i < s.ny; i++) s.dy[i] = s.d_y_hat[i] + rate_scale * s.dy_rate[i];
        adam.lr = step_size(opt, step);
        mrt_adamw_update(&adam, y, s.dy, s.m, s.v, s.ny, step + 1);
    }
    if (st == MRT_OK) memcpy(y, s.best, sizeof(float) * s.ny);
    state_free(&s, cfg);
    return st == MRT_OK ? mrt_ok(err) : st;
}
