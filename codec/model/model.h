/*
 * model.h -- the MRT model: hyper-parameters, weights, and the two halves
 * of the codec's neural work (DESIGN.md §3):
 *
 *   analysis (encoder side, float/BLIS):
 *     RGB -> patches -> embed (+ in-window position) -> N x [Bi-RWKV over
 *     the image's patch grid; ViT in each window over its 64 patch tokens
 *     and its L latent tokens] -> LN(latents) -> MLP -> y (nwin*L x c)
 *     side information: per 2x2 group of windows, MLP -> d signs (LFQ)
 *
 *   context model (both sides, integer -- see ctxmodel.h): mu, sigma index
 *     per symbol, bit-exact everywhere (DESIGN.md §5)
 *
 *   synthesis (decoder side, float/BLIS):
 *     y_hat -> MLP -> latent tokens; per window, query tokens = position +
 *     a learned mix of the window's latent tokens (a direct spatial path);
 *     N x [ViT in each window over queries + latents; Bi-RWKV over all
 *     queries of the image] -> LN -> 2-D map at 1/p -> pixel generator
 *     (res-block, then three x2 pixel-shuffle stages) -> RGB
 *
 * Every size is a hyper-parameter stored in the weights file (mrt.* keys).
 */
#ifndef MRT_MODEL_H
#define MRT_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "blocks.h"
#include "pixel_generator.h"
#include "gguf.h"
#include "mrt.h"

#define MRT_MAX_PAIRS 8
#define MRT_MAX_CTX_GROUPS 4
/* MRT_MAX_MSE_WEIGHT (mrt.h) bounds stage 2's --mse-weight, a model's
 * mrt.train.mse_weight and refinement's weight */
static inline int mrt_mse_weight_ok(float w) { return w >= 0.0f && w <= MRT_MAX_MSE_WEIGHT; }
/* a model's mrt.working_scale, MRT_MIN_WORKING_SCALE..1 (mrt.h); NaN fails */
static inline int mrt_working_scale_ok(float s) { return s >= MRT_MIN_WORKING_SCALE && s <= 1.0f; }
#define MRT_MAX_GEN_STAGES MRT_GEN_STAGES /* x2 upsampling stages: p = 8 */

/* Architecture hyper-parameters (the "XS" values of DESIGN.md §3.5 are
 * mrt_config_xs()). */
typedef struct mrt_config {
    int patch;          /* p: pixels per patch side (8) */
    int window;         /* window side in patches (8: 64 px) */
    int dim;            /* D: token width (64) */
    int heads;          /* attention heads in the ViT blocks (4) */
    int ffn;            /* F: hidden width of channel mix / MLP (256) */
    int latents;        /* L: latent tokens per window (2) */
    int enc_pairs;      /* Bi-RWKV + ViT pairs in the encoder (2) */
    int dec_pairs;      /* ... and in the decoder (2) */
    int channels;       /* c: coded channels per latent token (16) */
    int side_bits;      /* d: LFQ bits per 2x2 group of windows (8) */
    int ctx_groups;     /* channel groups of the context model (3) */
    int ctx_group_size[MRT_MAX_CTX_GROUPS]; /* channels per group (4, 4, 8) */
    int ctx_hidden;     /* hidden width of each context network (32) */
    int gen_width[MRT_MAX_GEN_STAGES + 1]; /* pixel generator channels at 1/8, 1/4, 1/2, 1 */
} mrt_config;

mrt_config mrt_config_xs(void);
/* Checks ranges and consistency; on failure writes the reason into err. */
mrt_status mrt_config_validate(const mrt_config *cfg, mrt_error *err);

/* One tensor of the model as named in the weights file. dims are in
 * PyTorch order (outermost first); GGUF stores them reversed. */
typedef struct mrt_tensor_ref {
    char name[64];
    mrt_gguf_type type; /* MRT_GGUF_F32 or MRT_GGUF_I32 */
    int n_dims;
    int64_t dims[4];
    void **slot;
} mrt_tensor_ref;

/* A tensor's element count. */
static inline size_t mrt_tensor_ref_elems(const mrt_tensor_ref *r) {
    size_t n = 1;
    for (int i = 0; i < r->n_dims; i++) n *= (size_t)r->dims[i];
    return n;
}

/* A tensor's dimensions in GGUF's order: GGUF lists them innermost first,
 * the tensor table (like C arrays) outermost first. */
static inline void mrt_tensor_ref_gguf_dims(const mrt_tensor_ref *r, int64_t gdims[4]) {
    for (int d = 0; d < r->n_dims; d++) gdims[d] = r->dims[r->n_dims - 1 - d];
}

/* Weights of the integer context model for one decoding step (a channel
 * group and a parity): in -> hidden (ReLU) -> 2 * group channels. */
typedef struct mrt_ctx_step {
    int32_t *w1, *b1, *w2, *b2;
} mrt_ctx_step;

typedef struct mrt_weights {
    /* analysis */
    float *embed_w, *embed_b; /* (D, 3 p^2), (D) */
    float *enc_pos;           /* (window^2, D) */
    float *enc_latents;       /* (L, D) */
    mrt_rwkv_weights enc_rwkv[MRT_MAX_PAIRS];
    mrt_vit_weights enc_vit[MRT_MAX_PAIRS];
    float *enc_ln_g, *enc_ln_b;
    float *lat_w1, *lat_b1, *lat_w2, *lat_b2; /* D -> D -> c */
    float *side_w1, *side_b1, *side_w2, *side_b2; /* 4 L c -> D -> d */
    /* context model (integer) */
    mrt_ctx_step ctx[MRT_MAX_CTX_GROUPS][2];
    /* synthesis */
    float *unlat_w1, *unlat_b1, *unlat_w2, *unlat_b2; /* c -> D -> D */
    float *dec_pos;   /* (window^2, D) */
    float *dec_mix;   /* (window^2, L): query k = pos_k + sum_l mix[k][l] latent_l */
    mrt_vit_weights dec_vit[MRT_MAX_PAIRS];
    mrt_rwkv_weights dec_rwkv[MRT_MAX_PAIRS];
    float *dec_ln_g, *dec_ln_b;
    mrt_gen_weights gen;      /* the pixel generator (pixel_generator.h), input D channels */
} mrt_weights;

/* The stage-0 tokenizer (DESIGN.md §4): a 2-D conv encoder at 1/8 with
 * LFQ codes, and the same pixel generator the codec uses, fed by a 1x1
 * "embed" of the codes into D channels. */
#define MRT_TOK_LAYERS 4
typedef struct mrt_tok_weights {
    float *enc_w[MRT_TOK_LAYERS], *enc_b[MRT_TOK_LAYERS]; /* 3x3: s2, s2, s2, s1 */
    float *embed_w, *embed_b;                               /* 1x1: bits -> D */
    mrt_gen_weights gen;
} mrt_tok_weights;

/* Encoder widths of the tokenizer; the last layer outputs `bits` channels. */
static inline int mrt_tok_width(int layer, int bits) {
    static const int widths[MRT_TOK_LAYERS - 1] = {32, 64, 64};
    return layer < MRT_TOK_LAYERS - 1 ? widths[layer] : bits;
}

int mrt_tokenizer_tensors(const mrt_config *cfg, int bits, mrt_tok_weights *w,
                          mrt_tensor_ref *refs);

/* Context-model input width: side bits, 4 quadrant flags, the token's own
 * channels decoded so far, the anchor token's channels decoded so far. */
static inline int mrt_ctx_inputs(const mrt_config *cfg) {
    return cfg->side_bits + 4 + 2 * cfg->channels;
}

/* Lists every tensor of a model with this configuration; returns the count
 * (refs may be NULL to only count). Slots point into w (never NULL). */
int mrt_model_tensors(const mrt_config *cfg, mrt_weights *w, mrt_tensor_ref *refs);

/* Geometry of one image's latent: windows, their 2x2 groups. */
typedef struct mrt_latent_shape {
    int nwx, nwy;     /* windows across and down */
    int ngx, ngy;     /* 2x2 side-information groups across and down */
    int ntokens;      /* nwx * nwy * L */
} mrt_latent_shape;

mrt_latent_shape mrt_latent_shape_of(const mrt_config *cfg, int width, int height);


/* |every int32 of a context network| (weights Q12: 4096.0, biases Q16:
 * 256.0): the loader refuses a model beyond it and the trainer's export
 * clamps to it. It keeps every int64 accumulation exact. */
#define MRT_CTX_WEIGHT_MAX (1 << 24)

/* A model's weights file, open (model_file.c): the configuration and the
 * tensors, mapped read-only from the file. */
typedef struct mrt_model_file {
    mrt_config cfg;
    mrt_weights w;
    mrt_gguf *file;   /* the mapping the weights point into */
    uint8_t fingerprint[32]; /* SHA-256 of the file */
    int rate_id;
    float mse_weight; /* mrt.train.mse_weight: refinement minimises training's loss */
    /* mrt.working_scale: 1 for weights trained for their rate point; below 1
     * for a rate point that codes a copy shrunk by that factor with these
     * weights (mrt_rate_point_write, mrt.h) */
    float working_scale;
    char *path;
} mrt_model_file;

/* Opens and checks a weights file; on failure *f is left closed. */
mrt_status mrt_model_file_open(const char *path, mrt_model_file *f, mrt_error *err);
void mrt_model_file_close(mrt_model_file *f);
/* Whether a and b hold the same configuration, tensors (value for value)
 * and training MSE weight; their rate id and working scale may differ. */
bool mrt_model_file_same_weights(const mrt_model_file *a, const mrt_model_file *b);

/* Seeded random weights for cfg; *storage receives the one buffer that
 * holds them all (free it when done). */
mrt_status mrt_model_init_random(const mrt_config *cfg, uint64_t seed, mrt_weights *w,
                                 float **storage, mrt_error *err);
/* Writes weights as a GGUF model file (atomically). mse_weight > 0 is
 * recorded as mrt.train.mse_weight (stage 2's --mse-weight), so that
 * refinement minimises the loss the model was trained with; working_scale
 * below 1 as mrt.working_scale (1 writes no key). */
mrt_status mrt_model_save(const mrt_config *cfg, const mrt_weights *w, int rate_id,
                          float mse_weight, float working_scale, const char *path,
                          mrt_error *err);
/* mrt_model_write_random for any configuration (the fuzzers use a
 * miniature one). */
mrt_status mrt_model_write_random_config(const mrt_config *cfg, const char *path, uint64_t seed,
                                         int rate_id, mrt_error *err);

#endif /* MRT_MODEL_H */
