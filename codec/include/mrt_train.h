/*
 * mrt_train.h -- `mrt train`: training in C on the runtime's backward passes
 * (DESIGN.md §4). Stage 0, the auxiliary tokenizer (a conv encoder with
 * LFQ codes and the pixel generator), then stage 1 (code alignment) and
 * stage 2 (end to end) on its checkpoint.
 *
 * A run is resumable at any point: the checkpoint (a GGUF file) holds the
 * weights, AdamW's moments, the EMA weights, the step and the seeds, and
 * batches are a function of (seed, step), so "k steps, resume, N - k
 * steps" equals "N steps" bit for bit (with the same thread count).
 */
#ifndef MRT_TRAIN_H
#define MRT_TRAIN_H

#include <stdint.h>

#include "mrt.h"

/* A folder of photos in memory (train/dataset.c): every PNG/JPEG under the
 * given folders, recursively, in sorted order, decoded once; the trainer
 * crops batches from it and `mrt eval` measures the codec on it. */
typedef struct mrt_dataset {
    mrt_image *images;
    char **names;
    int count;
    int skipped_small; /* images with a side under the crop size */
    int skipped_bad;   /* files that did not decode */
    long long pixels;
} mrt_dataset;

/* Loads every image with both sides >= min_side. Fails when none is found. */
mrt_status mrt_dataset_load(mrt_dataset *ds, const char *const *dirs, int ndirs, int min_side,
                            mrt_error *err);
void mrt_dataset_free(mrt_dataset *ds);

typedef struct mrt_train_options {
    int stage;                 /* 0 */
    const char *const *data;   /* folders or files of PNG/JPEG */
    int ndata;
    const char *out;           /* checkpoint path (written atomically) */
    const char *log;           /* JSONL log path, or NULL */
    int log_every;             /* steps between log lines */
    int resume;                /* continue from `out` */
    long steps;                /* total steps of the schedule */
    int batch, crop;
    float lr, lr_min;
    int warmup;
    const char *lr_mult_prefix; /* tensors whose names start with this (NULL: none) ... */
    float lr_mult;              /* ... train at lr_mult times the learning rate (grown
                                 * tensors, which start at zero, catch up with the rest) */
    float weight_decay, clip, ema;
    int tok_bits;              /* LFQ bits per 8x8 patch */
    float entropy_weight;
    uint64_t seed;
    int threads;
    double save_every;         /* seconds between checkpoints */
    int quiet;
    long stop_after;           /* stop (and save) after this many steps of this run; 0 = no */
    /* stages 1 and 2 */
    const char *tokenizer;     /* stage-0 checkpoint: targets (1) and the generator's init */
    const char *init;          /* stage 2: the stage-1 checkpoint to start from */
    const char *export_path;   /* write the codec model here at every checkpoint */
    float lambda;              /* rate weight: loss = distortion + lambda * bpp */
    double target_bpp;         /* > 0: steer lambda so that the training crops' estimated
                                * rate stays at this many bits per pixel (lambda is then
                                * the starting value, and the checkpoint keeps the
                                * current one); 0: lambda stays fixed */
    long lambda_ramp;          /* steps over which lambda rises from 0 */
    int rate_id;               /* written into the exported model */
    int train_encoder;         /* stage 2: also train the encoder (straight-through rounding) */
    int latents;               /* stages 1-2: latent tokens per window; 0 = XS's (2) */
    int dec_pairs;             /* stages 1-2: decoder pairs (ViT + Bi-RWKV); 0 = those of
                                * what the run continues, else XS's (2); weights with
                                * fewer are grown by identity pairs at the end */
    float mse_weight;          /* stage 2: distortion also has mse_weight * MSE (on [0, 1]
                                * pixel values), which moves the balance towards PSNR */
} mrt_train_options;

void mrt_train_defaults(mrt_train_options *o);
mrt_status mrt_train(const mrt_train_options *o, mrt_error *err);

/* `mrt fit-thumbnails` (train/thumbnails.c): a model's thumbnail head for
 * mrt_decode_scaled at 1/4 (and 1/8, its picture shrunk), fitted by least
 * squares against Lanczos-shrunk originals, written as the model's
 * NAME.thumbs.gguf. */
typedef struct mrt_thumb_fit_options {
    const char *model;         /* the model file */
    const char *const *data;   /* folders of photos (the training set) */
    int ndata;
    int images;                /* photos used, a seeded choice (400) */
    int crop;                  /* a centred crop of at most crop x crop (768) */
    uint64_t seed;             /* (1) */
    double ridge;              /* added to X'X's diagonal, times its mean (1e-4) */
    int level;                 /* what the heads read: 0 the decoder's map, 1 the pixel
                                * generator's first layer, 2 after its residual block (2) */
    int radius;                /* the neighbourhood read: (2 radius + 1)^2 positions (1) */
    int threads;
    const char *out;           /* NULL: beside the model (mrt_thumb_heads_path) */
    int quiet;
} mrt_thumb_fit_options;

void mrt_thumb_fit_defaults(mrt_thumb_fit_options *o);
mrt_status mrt_fit_thumbnails(const mrt_thumb_fit_options *o, mrt_error *err);

#endif /* MRT_TRAIN_H */
