/*
 * blocks.h -- the two blocks MRT is built from, composed of runtime ops:
 *
 *   Bi-RWKV block (Vision-RWKV, DESIGN.md §3.2), pre-norm, over a (B, Hg, Wg)
 *   grid of tokens with D channels:
 *     x1  = x  + SpatialMix(LN1(x))
 *     out = x1 + ChannelMix(LN2(x1))
 *     SpatialMix(h) = Wo (sigmoid(Wr h_r) * LNx(BiWKV(Wk h_k, Wv h_v)))
 *     ChannelMix(h) = sigmoid(Wr' h_r) * Wv'(relu(Wk' h_k)^2)
 *     h_* = mu_* h + (1 - mu_*) QShift(h);  linear layers have no bias.
 *
 *   ViT block, pre-norm, attention inside windows of n tokens:
 *     x1  = x  + Wo Attn(Wqkv LN1(x) + bqkv) + bo
 *     out = x1 + W2 GELU(W1 LN2(x1) + b1) + b2
 *
 * Parameters are described by a table (name, shape, slot) so that binding
 * them to a flat buffer, loading them from a weights file and comparing them
 * with PyTorch all use the same names. Shapes are in PyTorch order.
 */
#ifndef MRT_BLOCKS_H
#define MRT_BLOCKS_H

#include "runtime.h"

/* One parameter tensor of a block: its name within the block, its shape
 * (PyTorch order, unused dims 1) and where its pointer lives. */
typedef struct mrt_param_ref {
    const char *name;
    int n_dims;
    int dims[2];
    float **slot;
} mrt_param_ref;

#define MRT_BLOCK_MAX_PARAMS 24

/* Element count of a parameter. */
static inline size_t mrt_param_size(const mrt_param_ref *p) {
    return (size_t)p->dims[0] * (p->n_dims > 1 ? (size_t)p->dims[1] : 1);
}
/* Points every slot at consecutive pieces of base; returns the float count
 * (base may be NULL to only count). */
size_t mrt_params_bind(const mrt_param_ref *refs, int count, float *base);

/* ---------------------------------------------------------- Bi-RWKV */

typedef struct mrt_rwkv_weights {
    float *ln1_g, *ln1_b;
    float *att_mu_k, *att_mu_v, *att_mu_r, *att_w, *att_u;
    float *att_wk, *att_wv, *att_wr, *att_lnx_g, *att_lnx_b, *att_wo;
    float *ln2_g, *ln2_b;
    float *ffn_mu_k, *ffn_mu_r, *ffn_wk, *ffn_wv, *ffn_wr;
} mrt_rwkv_weights;

/* Fills refs (MRT_BLOCK_MAX_PARAMS entries) for a block of width D and
 * channel-mix hidden width F; returns the count. */
int mrt_rwkv_params(mrt_rwkv_weights *w, int D, int F, mrt_param_ref *refs);
/* The Vision-RWKV initialisation for layer `layer` of `nlayers`
 * (DESIGN.md §3.2): decays, bonuses and mixes by formula, linear layers
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)), norms at (1, 0). */
void mrt_rwkv_init(mrt_rwkv_weights *w, int D, int F, int layer, int nlayers, mrt_rng *rng);

/* Saved activations of one block for N = B*Hg*Wg tokens. */
typedef struct mrt_rwkv_acts {
    int N, D, F;
    float *ln1, *ln1_mean, *ln1_rstd, *sh1, *xk, *xv, *xr, *k, *v, *r, *wkv, *lnx, *lnx_mean,
        *lnx_rstd, *sr, *g, *x1;
    float *ln2, *ln2_mean, *ln2_rstd, *sh2, *fk, *fr, *hk, *hk2, *vv, *rr, *srr;
    float *scratch; /* backward temporaries */
    float *mem;
} mrt_rwkv_acts;

int mrt_rwkv_acts_alloc(mrt_rwkv_acts *a, int N, int D, int F);
void mrt_rwkv_acts_free(mrt_rwkv_acts *a);
void mrt_rwkv_block_forward(const mrt_rt *rt, float *out, const float *x,
                            const mrt_rwkv_weights *w, mrt_rwkv_acts *a, int B, int Hg, int Wg);
/* dw's pointers receive accumulated parameter gradients (any may be NULL). */
void mrt_rwkv_block_backward(const mrt_rt *rt, float *dx, const mrt_rwkv_weights *dw,
                             const float *dout, const float *x, const mrt_rwkv_weights *w,
                             mrt_rwkv_acts *a, int B, int Hg, int Wg);

/* -------------------------------------------------------------- ViT */

typedef struct mrt_vit_weights {
    float *ln1_g, *ln1_b, *wqkv, *bqkv, *wo, *bo;
    float *ln2_g, *ln2_b, *w1, *b1, *w2, *b2;
} mrt_vit_weights;

int mrt_vit_params(mrt_vit_weights *w, int D, int F, mrt_param_ref *refs);
void mrt_vit_init(mrt_vit_weights *w, int D, int F, mrt_rng *rng);

typedef struct mrt_vit_acts {
    int nwin, n, D, F, heads;
    float *ln1, *ln1_mean, *ln1_rstd, *qkv, *att, *ao, *x1;
    float *ln2, *ln2_mean, *ln2_rstd, *h, *hg;
    float *scratch;
    float *mem;
} mrt_vit_acts;

int mrt_vit_acts_alloc(mrt_vit_acts *a, int nwin, int n, int D, int F, int heads);
void mrt_vit_acts_free(mrt_vit_acts *a);
/* x, out: (nwin*n, D), window w's tokens in rows [w*n, (w+1)*n). */
void mrt_vit_block_forward(const mrt_rt *rt, float *out, const float *x,
                           const mrt_vit_weights *w, mrt_vit_acts *a);
void mrt_vit_block_backward(const mrt_rt *rt, float *dx, const mrt_vit_weights *dw,
                            const float *dout, const float *x, const mrt_vit_weights *w,
                            mrt_vit_acts *a);

#endif /* MRT_BLOCKS_H */

/* ------------------------------------------------------ inference only */

/* Forward passes that keep no activations, for the codec: x is updated in
 * place. The Bi-RWKV block needs a workspace of mrt_rwkv_infer_floats(N,
 * D, F) floats (about 6 N D: it runs over a whole image's tokens); the
 * channel mix runs in row chunks, so F adds only a fixed amount. */
size_t mrt_rwkv_infer_floats(int N, int D, int F);
void mrt_rwkv_block_infer(const mrt_rt *rt, float *x, const mrt_rwkv_weights *w, int B, int Hg,
                          int Wg, int D, int F, float *workspace);
