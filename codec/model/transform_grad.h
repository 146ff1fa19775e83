/*
 * transform_grad.h -- the MRT transforms with saved activations and backward
 * passes, for training stages 1 and 2 (DESIGN.md §4). The arithmetic is
 * the inference path's (analysis.c, synthesis.c): the same blocks, window
 * gathering, embeddings and MLPs, on a batch of B images of W x H pixels
 * (multiples of the 64-pixel window): square crops in training, a whole
 * padded image when the encoder refines its latent (refine.c).
 *
 *   analysis:  x (B, 3, H, W) in [-1, 1]  ->  y (B * nwin * L, c)
 *   synthesis: y_hat (B * nwin * L, c)    ->  map (B, D, H/8, W/8), the
 *              pixel generator's input (channels first)
 */
#ifndef MRT_TRANSFORM_GRAD_H
#define MRT_TRANSFORM_GRAD_H

#include "model.h"

typedef struct mrt_train_shape {
    int B;             /* images (crops) */
    int W, H;          /* pixels per image, multiples of the 64-pixel window */
    int gx, gy;        /* patch grid: W / patch, H / patch */
    int nwx, nwy;      /* windows per image across and down */
    int nwin;          /* windows in the batch: B * nwx * nwy */
    int tokens;        /* patch tokens in the batch: B * gx * gy */
    int n;             /* tokens per window sequence: window^2 + L */
} mrt_train_shape;

mrt_train_shape mrt_train_shape_of(const mrt_config *cfg, int B, int W, int H);

typedef struct mrt_analysis_acts {
    mrt_train_shape sh;
    float *patches;                          /* (tokens, 3 p^2) */
    float *P[2 * MRT_MAX_PAIRS + 1];         /* grid tokens before/after each block */
    float *Z[MRT_MAX_PAIRS + 1];             /* latent tokens before/after each ViT */
    float *win_in[MRT_MAX_PAIRS], *win_out[MRT_MAX_PAIRS]; /* gathered windows */
    mrt_rwkv_acts rwkv[MRT_MAX_PAIRS];
    mrt_vit_acts vit[MRT_MAX_PAIRS];
    float *ln, *ln_mean, *ln_rstd, *h, *hg;  /* output LN and MLP */
    float *y;                                /* (nwin * L, c) */
    float *mem;
} mrt_analysis_acts;

int mrt_analysis_acts_alloc(mrt_analysis_acts *a, const mrt_config *cfg, int B, int W, int H);
void mrt_analysis_acts_free(mrt_analysis_acts *a, const mrt_config *cfg);
void mrt_analysis_train_forward(const mrt_rt *rt, const mrt_config *cfg, const mrt_weights *w,
                                mrt_analysis_acts *a, const float *x);
/* dy: (nwin * L, c). dw's pointers receive accumulated gradients (NULL
 * pointers skip: a frozen encoder passes a zeroed mrt_weights). */
int mrt_analysis_train_backward(const mrt_rt *rt, const mrt_config *cfg, const mrt_weights *w,
                                const mrt_weights *dw, mrt_analysis_acts *a, const float *dy);

typedef struct mrt_synthesis_acts {
    mrt_train_shape sh;
    float *y_hat;                             /* a copy of the input */
    float *h, *hg;                            /* from-latent MLP */
    float *Z[MRT_MAX_PAIRS + 1];
    float *Q[2 * MRT_MAX_PAIRS + 1];
    float *win_in[MRT_MAX_PAIRS], *win_out[MRT_MAX_PAIRS];
    mrt_vit_acts vit[MRT_MAX_PAIRS];
    mrt_rwkv_acts rwkv[MRT_MAX_PAIRS];
    float *ln, *ln_mean, *ln_rstd;            /* output LN, tokens-major */
    float *map;                               /* (B, D, g, g) */
    float *mem;
} mrt_synthesis_acts;

int mrt_synthesis_acts_alloc(mrt_synthesis_acts *a, const mrt_config *cfg, int B, int W,
                             int H);
void mrt_synthesis_acts_free(mrt_synthesis_acts *a, const mrt_config *cfg);
void mrt_synthesis_train_forward(const mrt_rt *rt, const mrt_config *cfg, const mrt_weights *w,
                                 mrt_synthesis_acts *a, const float *y_hat);
/* dmap: (B, D, H/8, W/8). d_y_hat (may be NULL) receives the input gradient. */
int mrt_synthesis_train_backward(const mrt_rt *rt, const mrt_config *cfg, const mrt_weights *w,
                                 const mrt_weights *dw, mrt_synthesis_acts *a, const float *dmap,
                                 float *d_y_hat);

#endif /* MRT_TRANSFORM_GRAD_H */
