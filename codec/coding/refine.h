/*
 * refine.h -- encoder-side latent refinement.
 *
 * The analysis transform predicts a latent in one pass, for any image; a
 * better latent for *this* image can be found by gradient descent on the
 * latent itself, through the decoder the bitstream will meet. The decoder,
 * the bitstream format and the decoding are untouched, so a refined
 * bitstream decodes anywhere an unrefined one does (DESIGN.md §5: only the
 * choice of symbols changes, never how they are coded).
 *
 * The promise is "the same size, a better picture": refinement minimises
 * training's distortion, L1 + (1 - MS-SSIM) + w * MSE over the real pixels
 * (w: the model's mrt.train.mse_weight, 0 if it has none, unless the
 * caller picks another to favour MS-SSIM or PSNR), subject to a rate no
 * higher than the analysis latent's. It descends on
 *     J(y) = distortion + lambda * bpp
 * with Adam, its step size annealed to nothing over the steps so the
 * latent settles, and adjusts lambda after every step by dual ascent, up
 * while the rate is over the budget and down while it is under, since no
 * fixed lambda keeps every image's rate in place.
 *
 * Each step decodes exactly what the bitstream will carry (the integer
 * context model's means and the encoder's own rounding), runs the decoder
 * with its saved activations and passes the gradient back to y straight
 * through the rounding; the rate's gradient comes from the float context
 * model on y + uniform noise, as in training. Every step's latent is
 * measured as decoded, its rate as the coder's own tables will code it,
 * and the one kept is the least distorted within the budget -- the
 * analysis latent itself if none beats it: refinement never makes an image
 * worse, nor its bitstream larger by more than the coder's last byte.
 */
#ifndef MRT_REFINE_H
#define MRT_REFINE_H

#include <stdbool.h>

#include "entropy.h"
#include "model.h"
#include "mrt.h"
#include "status.h"

/* MRT_REFINE_MAX_PIXELS, MRT_REFINE_MAX_STEPS: mrt.h */

typedef struct mrt_refine_options {
    int steps;    /* gradient steps (0: measure only) */
    float lr;     /* Adam's first step size in latent units (MRT_REFINE_LR),
                     annealed to 0 by a cosine over the steps */
    bool mse_weight_given; /* false: w is the model's (mrt.train.mse_weight) */
    float mse_weight;      /* else w, 0..MRT_MAX_MSE_WEIGHT */
} mrt_refine_options;

#define MRT_REFINE_LR 0.1f

typedef struct mrt_refine_report {
    double start_distortion, start_bpp; /* the analysis latent */
    double distortion, bpp;             /* the kept latent */
    int best_step;                      /* 0: the analysis latent was kept */
} mrt_refine_report;

/* MRT_OK if opt is valid and a width x height image can be refined, else
 * the reason (MRT_ERR_ARGUMENT, MRT_ERR_TOO_BIG). Looks at no pixel. */
mrt_status mrt_refine_check(int width, int height, const mrt_refine_options *opt,
                            mrt_error *err);

/* y (nwin * L * c floats, from mrt_analysis) is replaced by the best latent
 * found; side_bits (from the same mrt_analysis) are kept as they are.
 * model_mse_weight is the model's (mrt.train.mse_weight, validated on
 * load), used unless opt->mse_weight_given. */
mrt_status mrt_refine_latent(const mrt_rt *rt, const mrt_config *cfg, const mrt_weights *w,
                             const mrt_gauss_tables *tables, float model_mse_weight,
                             const uint8_t *rgb,
                             int width, int height,
                             const uint8_t *side_bits, const mrt_refine_options *opt, float *y,
                             mrt_refine_report *report, mrt_error *err);

#endif /* MRT_REFINE_H */
