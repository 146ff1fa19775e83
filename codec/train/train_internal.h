/*
 * train_internal.h -- what the trainer's files share (train/): the trained
 * parameters and their optimiser state, the activations of each stage's
 * step, the batch split, checkpoints and weights files. The loop is
 * train.c; mrt_train.h is the public side.
 *
 *   params.c      the trained tensors of a stage, their buffers, rate control
 *   checkpoint.c  checkpoints, weights files (latents and decoder pairs
 *                 grown), the export
 *   stage0.c      stage 0: the tokenizer's step
 *   codec_step.c  stages 1 and 2: the codec's step
 *   batch_split.c stages 1 and 2 on several threads
 */
#ifndef MRT_TRAIN_INTERNAL_H
#define MRT_TRAIN_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "codec_internal.h"
#include "ctxmodel_grad.h"
#include "dataset.h"
#include "gguf.h"
#include "model.h"
#include "mrt_train.h"
#include "status.h"
#include "transform.h"
#include "transform_grad.h"

#define MAX_TENSORS 512

/* ------------------------------------------------------- parameters */

typedef struct {
    mrt_config cfg;
    int stage, bits;
    mrt_tok_weights w, g;  /* stage 0: views of P and G */
    mrt_weights mw, mg;    /* stages 1-2: the codec's float weights ... */
    mrt_ctx_float cf, cg;  /* ... and the context model's float twin */
    mrt_tensor_ref refs[MAX_TENSORS], grefs[MAX_TENSORS];
    int ntensors;
    size_t n;
    float *P, *G, *M, *V, *E;
    long step;
    float lambda;          /* stages 1-2: the rate weight now (see mrt_steer_lambda) */
    bool lambda_saved;     /* the checkpoint it resumed from held one */
} params;

/* The trained tensors of a stage, in a fixed order (params.c). */
int mrt_params_describe(params *p, mrt_tensor_ref *refs, mrt_tok_weights *tw, mrt_weights *mw,
                        mrt_ctx_float *cf);
int mrt_params_alloc(params *p, const mrt_config *cfg, int stage, int bits);
void mrt_params_free(params *p);
void mrt_params_init(params *p, uint64_t seed);
/* The rate weight after one step of steering towards `target` bpp; it
 * stays within (0, LAMBDA_MAX], which a checkpoint's lambda must be too. */
#define LAMBDA_MAX 1e4f
float mrt_steer_lambda(float lambda, double bpp, double target);
/* The start of every stage's pixel losses: dout (zeroed) gets the L1
 * loss's gradient, x01 and out01 the target and the output on [0, 1] for
 * MS-SSIM and MSE; returns the L1 loss. All arrays hold n floats. */
double mrt_pixel_l1(float *dout, float *x01, float *out01, const float *out, const float *x,
                    size_t n);

/* ------------------------------------------------------ checkpoints */

mrt_status mrt_checkpoint_save(const params *p, const mrt_train_options *o, const char *path,
                               mrt_error *err);
mrt_status mrt_checkpoint_load(params *p, const mrt_train_options *o, const char *path,
                               mrt_error *err);
/* Latent tokens per window of a model or checkpoint file; 0 if unknown. */
int mrt_weights_latents(const char *path);
/* Decoder pairs of a model or checkpoint file; 0 if unknown. */
int mrt_weights_dec_pairs(const char *path);
/* The tensors of p whose names start with `prefix` (all: NULL) from a
 * weights file, grown to p's latent count and decoder pairs where the
 * file has fewer. */
mrt_status mrt_load_weights(params *p, const char *path, const char *prefix, mrt_error *err);
/* Writes the codec model (integer context model made from the float one). */
mrt_status mrt_train_export(const params *p, const mrt_train_options *o, mrt_error *err);

/* ------------------------------------------------ stage 0: tokenizer */

typedef struct {
    double loss, l1, msssim, entropy, psnr, bit_balance;
} step_stats;

typedef struct {
    int B, S, bits, D;
    float *x01;                  /* input in [0, 1] for MS-SSIM */
    float *a[MRT_TOK_LAYERS];    /* pre-activations; a[3] = z */
    float *r[MRT_TOK_LAYERS - 1];
    float *q, *e, *out01, *dout;
    mrt_gen_acts gen;
    float *mem;
} tok_acts;

int mrt_tok_acts_alloc(tok_acts *t, const mrt_config *cfg, int bits, int B, int S);
void mrt_tok_acts_free(tok_acts *t);
void mrt_tok_encode(const mrt_rt *rt, const mrt_tok_weights *w, tok_acts *t, const float *x);
step_stats mrt_tok_step(const mrt_rt *rt, params *p, tok_acts *t, const float *x,
                        float entropy_weight);

/* ------------------------------------------- stages 1 and 2: the codec */

typedef struct {
    int B, S, stage;
    bool train_encoder; /* stage 2 with --train-encoder */
    float mse_weight;   /* stage 2: --mse-weight */
    mrt_latent_shape lsh;
    mrt_analysis_acts an;
    mrt_synthesis_acts sy;
    mrt_gen_acts gen; /* stage 2 */
    params tokp;      /* stage 1: the frozen tokenizer */
    tok_acts tok;
    float *y_noisy, *dy, *dy_rate, *dmap, *x01, *out01, *dout;
    float *mu, *y_hat; /* stage 2: the means and the decoded latent */
    uint8_t *side;
    size_t ctx_offset; /* where the float context model starts in P/G */
} codec_acts;

void mrt_codec_acts_free(codec_acts *c, const mrt_config *cfg);
mrt_status mrt_codec_train_init(params *p, const mrt_train_options *o, mrt_error *err);
int mrt_codec_acts_alloc(codec_acts *c, params *p, const mrt_train_options *o, mrt_error *err);
step_stats mrt_codec_step(const mrt_rt *rt, params *p, codec_acts *c, const float *x,
                          float lambda, uint64_t noise_seed);

/* ------------------------------------------- stages 1-2: batch split */

/* Stages 1 and 2 split the batch across threads: each worker runs the
 * whole step on its share of the crops, single-threaded, with its own
 * activations and gradients, and the gradients are then averaged in
 * worker order, so a run is deterministic for a given thread count. This
 * scales better than threads inside each op, where the small GEMMs, the
 * scans and the barriers between them cost time: stage 2 on 2 cores runs
 * 41 crops/s split against 36 (models/README.md, "Throughput"), and far
 * less unsplit when other work shares the cores. Every loss term is a mean
 * over the crops it sees, so the average of the workers' gradients is the
 * whole batch's. */
#define MAX_WORKERS 16

typedef struct {
    int n;                       /* 1: no split (the ops use the threads) */
    params view[MAX_WORKERS];    /* shared weights (P), own gradients (G) */
    codec_acts acts[MAX_WORKERS];
    bool have_acts[MAX_WORKERS];
} workers;

void mrt_workers_free(workers *w, const mrt_config *cfg);
int mrt_workers_alloc(workers *w, const params *p, const mrt_train_options *o, int threads,
                      mrt_error *err);
step_stats mrt_split_step(workers *w, params *p, const float *x, int batch, int crop,
                          float lambda, uint64_t noise_seed);

#endif /* MRT_TRAIN_INTERNAL_H */
