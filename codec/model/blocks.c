/*
 * blocks.c -- Bi-RWKV and ViT blocks: forward and backward side by side,
 * composed of the runtime ops (see blocks.h for the equations).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"

size_t mrt_params_bind(const mrt_param_ref *refs, int count, float *base) {
    size_t off = 0;
    for (int i = 0; i < count; i++) {
        if (base) *refs[i].slot = base + off;
        off += mrt_param_size(&refs[i]);
    }
    return off;
}

static void add_ref(mrt_param_ref *refs, int *n, const char *name, float **slot, int d0, int d1) {
    mrt_param_ref *r = &refs[(*n)++];
    r->name = name;
    r->slot = slot;
    r->dims[0] = d0;
    r->dims[1] = d1 > 0 ? d1 : 1;
    r->n_dims = d1 > 0 ? 2 : 1;
}

static void zero(float *p, size_t n) { memset(p, 0, sizeof(float) * n); }

/* U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for a (rows, fan_in) matrix. */
static void init_linear(mrt_rng *rng, float *w, int rows, int fan_in) {
    mrt_init_uniform(rng, w, (size_t)rows * fan_in, 1.0f / sqrtf((float)fan_in));
}

/* ------------------------------------------------------------ Bi-RWKV */

int mrt_rwkv_params(mrt_rwkv_weights *w, int D, int F, mrt_param_ref *refs) {
    int n = 0;
    add_ref(refs, &n, "ln1.weight", &w->ln1_g, D, 0);
    add_ref(refs, &n, "ln1.bias", &w->ln1_b, D, 0);
    add_ref(refs, &n, "att.mu_k", &w->att_mu_k, D, 0);
    add_ref(refs, &n, "att.mu_v", &w->att_mu_v, D, 0);
    add_ref(refs, &n, "att.mu_r", &w->att_mu_r, D, 0);
    add_ref(refs, &n, "att.decay", &w->att_w, D, 0);
    add_ref(refs, &n, "att.bonus", &w->att_u, D, 0);
    add_ref(refs, &n, "att.key.weight", &w->att_wk, D, D);
    add_ref(refs, &n, "att.value.weight", &w->att_wv, D, D);
    add_ref(refs, &n, "att.receptance.weight", &w->att_wr, D, D);
    add_ref(refs, &n, "att.ln_x.weight", &w->att_lnx_g, D, 0);
    add_ref(refs, &n, "att.ln_x.bias", &w->att_lnx_b, D, 0);
    add_ref(refs, &n, "att.output.weight", &w->att_wo, D, D);
    add_ref(refs, &n, "ln2.weight", &w->ln2_g, D, 0);
    add_ref(refs, &n, "ln2.bias", &w->ln2_b, D, 0);
    add_ref(refs, &n, "ffn.mu_k", &w->ffn_mu_k, D, 0);
    add_ref(refs, &n, "ffn.mu_r", &w->ffn_mu_r, D, 0);
    add_ref(refs, &n, "ffn.key.weight", &w->ffn_wk, F, D);
    add_ref(refs, &n, "ffn.value.weight", &w->ffn_wv, D, F);
    add_ref(refs, &n, "ffn.receptance.weight", &w->ffn_wr, D, D);
    return n;
}

void mrt_rwkv_init(mrt_rwkv_weights *w, int D, int F, int layer, int nlayers, mrt_rng *rng) {
    double depth = nlayers > 1 ? (double)layer / (nlayers - 1) : 0.0; /* 0 .. 1 */
    double depth_mu = nlayers > 0 ? 1.0 - (double)layer / nlayers : 1.0;
    for (int h = 0; h < D; h++) {
        double frac = D > 1 ? (double)h / (D - 1) : 0.0;
        w->att_w[h] = (float)(-5.0 + 8.0 * pow(frac, 0.7 + 1.3 * depth));
        w->att_u[h] = (float)(log(0.3) + 0.5 * (((h + 1) % 3) - 1));
        float mu = (float)pow((double)h / D, depth_mu);
        w->att_mu_k[h] = w->att_mu_v[h] = w->att_mu_r[h] = mu;
        w->ffn_mu_k[h] = w->ffn_mu_r[h] = mu;
    }
    mrt_fill(w->ln1_g, D, 1.0f), mrt_fill(w->ln1_b, D, 0.0f);
    mrt_fill(w->ln2_g, D, 1.0f), mrt_fill(w->ln2_b, D, 0.0f);
    mrt_fill(w->att_lnx_g, D, 1.0f), mrt_fill(w->att_lnx_b, D, 0.0f);
    init_linear(rng, w->att_wk, D, D);
    init_linear(rng, w->att_wv, D, D);
    init_linear(rng, w->att_wr, D, D);
    init_linear(rng, w->att_wo, D, D);
    init_linear(rng, w->ffn_wk, F, D);
    init_linear(rng, w->ffn_wv, D, F);
    init_linear(rng, w->ffn_wr, D, D);
}

#define RWKV_ND_ACTS 20 /* (N, D) activations: ln1 .. srr below */
#define RWKV_N_STATS 6
#define RWKV_ND_SCRATCH 8
#define RWKV_NF_SCRATCH 2

int mrt_rwkv_acts_alloc(mrt_rwkv_acts *a, int N, int D, int F) {
    size_t nd = (size_t)N * D, nf = (size_t)N * F;
    size_t total = nd * (RWKV_ND_ACTS + RWKV_ND_SCRATCH) + nf * (2 + RWKV_NF_SCRATCH) +
                   (size_t)N * RWKV_N_STATS;
    memset(a, 0, sizeof *a);
    a->mem = malloc(sizeof(float) * total);
    if (!a->mem) return -1;
    a->N = N, a->D = D, a->F = F;
    float *p = a->mem;
    float **nd_bufs[RWKV_ND_ACTS] = {&a->ln1, &a->sh1, &a->xk, &a->xv, &a->xr, &a->k, &a->v, &a->r,
                         &a->wkv, &a->lnx, &a->sr, &a->g, &a->x1, &a->ln2, &a->sh2, &a->fk,
                         &a->fr, &a->vv, &a->rr, &a->srr};
    for (int i = 0; i < RWKV_ND_ACTS; i++, p += nd) *nd_bufs[i] = p;
    a->hk = p, p += nf;
    a->hk2 = p, p += nf;
    float **stats[] = {&a->ln1_mean, &a->ln1_rstd, &a->lnx_mean, &a->lnx_rstd, &a->ln2_mean,
                       &a->ln2_rstd};
    for (int i = 0; i < RWKV_N_STATS; i++, p += N) *stats[i] = p;
    a->scratch = p;
    return 0;
}

void mrt_rwkv_acts_free(mrt_rwkv_acts *a) {
    free(a->mem);
    memset(a, 0, sizeof *a);
}

void mrt_rwkv_block_forward(const mrt_rt *rt, float *out, const float *x,
                            const mrt_rwkv_weights *w, mrt_rwkv_acts *a, int B, int Hg, int Wg) {
    int N = a->N, D = a->D, F = a->F;
    size_t nd = (size_t)N * D;
    /* spatial mix */
    mrt_layernorm_forward(rt, a->ln1, a->ln1_mean, a->ln1_rstd, x, w->ln1_g, w->ln1_b, N, D);
    mrt_qshift_forward(a->sh1, a->ln1, B, Hg, Wg, D);
    mrt_tokenmix_forward(rt, a->xk, a->ln1, a->sh1, w->att_mu_k, N, D);
    mrt_tokenmix_forward(rt, a->xv, a->ln1, a->sh1, w->att_mu_v, N, D);
    mrt_tokenmix_forward(rt, a->xr, a->ln1, a->sh1, w->att_mu_r, N, D);
    mrt_linear_forward(rt, a->k, a->xk, w->att_wk, NULL, N, D, D);
    mrt_linear_forward(rt, a->v, a->xv, w->att_wv, NULL, N, D, D);
    mrt_linear_forward(rt, a->r, a->xr, w->att_wr, NULL, N, D, D);
    mrt_biwkv_forward(rt, a->wkv, a->k, a->v, w->att_w, w->att_u, B, Hg * Wg, D);
    mrt_layernorm_forward(rt, a->lnx, a->lnx_mean, a->lnx_rstd, a->wkv, w->att_lnx_g, w->att_lnx_b,
                          N, D);
    mrt_sigmoid_forward(rt, a->sr, a->r, nd);
    mrt_mul_forward(a->g, a->sr, a->lnx, nd);
    mrt_linear_forward(rt, a->x1, a->g, w->att_wo, NULL, N, D, D);
    mrt_add_inplace(a->x1, x, nd);
    /* channel mix */
    mrt_layernorm_forward(rt, a->ln2, a->ln2_mean, a->ln2_rstd, a->x1, w->ln2_g, w->ln2_b, N, D);
    mrt_qshift_forward(a->sh2, a->ln2, B, Hg, Wg, D);
    mrt_tokenmix_forward(rt, a->fk, a->ln2, a->sh2, w->ffn_mu_k, N, D);
    mrt_tokenmix_forward(rt, a->fr, a->ln2, a->sh2, w->ffn_mu_r, N, D);
    mrt_linear_forward(rt, a->hk, a->fk, w->ffn_wk, NULL, N, D, F);
    mrt_relu2_forward(rt, a->hk2, a->hk, (size_t)N * F);
    mrt_linear_forward(rt, a->vv, a->hk2, w->ffn_wv, NULL, N, F, D);
    mrt_linear_forward(rt, a->rr, a->fr, w->ffn_wr, NULL, N, D, D);
    mrt_sigmoid_forward(rt, a->srr, a->rr, nd);
    mrt_mul_forward(out, a->srr, a->vv, nd);
    mrt_add_inplace(out, a->x1, nd);
}

void mrt_rwkv_block_backward(const mrt_rt *rt, float *dx, const mrt_rwkv_weights *dw,
                             const float *dout, const float *x, const mrt_rwkv_weights *w,
                             mrt_rwkv_acts *a, int B, int Hg, int Wg) {
    static const mrt_rwkv_weights none;
    if (!dw) dw = &none;
    int N = a->N, D = a->D, F = a->F;
    size_t nd = (size_t)N * D, nf = (size_t)N * F;
    float *S[RWKV_ND_SCRATCH];
    for (int i = 0; i < RWKV_ND_SCRATCH; i++) S[i] = a->scratch + nd * i;
    float *F0 = a->scratch + nd * RWKV_ND_SCRATCH, *F1 = F0 + nf;

    /* channel mix: out = x1 + srr * vv */
    float *dvv = S[1], *dsrr = S[2], *drr = S[3], *dfr = S[4];
    zero(dvv, nd), zero(dsrr, nd), zero(drr, nd), zero(dfr, nd);
    mrt_mul_backward(dsrr, dvv, dout, a->srr, a->vv, nd);
    mrt_sigmoid_backward(rt, drr, dsrr, a->srr, nd);
    mrt_linear_backward(rt, dfr, dw->ffn_wr, NULL, drr, a->fr, w->ffn_wr, N, D, D);
    float *dhk2 = F0, *dhk = F1;
    zero(dhk2, nf), zero(dhk, nf);
    mrt_linear_backward(rt, dhk2, dw->ffn_wv, NULL, dvv, a->hk2, w->ffn_wv, N, F, D);
    mrt_relu2_backward(rt, dhk, dhk2, a->hk, nf);
    float *dfk = S[1], *dln2 = S[2], *dsh2 = S[3];
    zero(dfk, nd), zero(dln2, nd), zero(dsh2, nd);
    mrt_linear_backward(rt, dfk, dw->ffn_wk, NULL, dhk, a->fk, w->ffn_wk, N, D, F);
    mrt_tokenmix_backward(rt, dln2, dsh2, dw->ffn_mu_k, dfk, a->ln2, a->sh2, w->ffn_mu_k, N, D);
    mrt_tokenmix_backward(rt, dln2, dsh2, dw->ffn_mu_r, dfr, a->ln2, a->sh2, w->ffn_mu_r, N, D);
    mrt_qshift_backward(dln2, dsh2, B, Hg, Wg, D);
    float *dx1 = S[0];
    memcpy(dx1, dout, sizeof(float) * nd);
    mrt_layernorm_backward(rt, dx1, dw->ln2_g, dw->ln2_b, dln2, a->x1, w->ln2_g, a->ln2_mean,
                           a->ln2_rstd, N, D);

    /* spatial mix: x1 = x + Wo (sr * lnx) */
    float *dg = S[1], *dsr = S[2], *dlnx = S[3], *dr = S[4];
    zero(dg, nd), zero(dsr, nd), zero(dlnx, nd), zero(dr, nd);
    mrt_linear_backward(rt, dg, dw->att_wo, NULL, dx1, a->g, w->att_wo, N, D, D);
    mrt_mul_backward(dsr, dlnx, dg, a->sr, a->lnx, nd);
    mrt_sigmoid_backward(rt, dr, dsr, a->sr, nd);
    float *dwkv = S[2];
    zero(dwkv, nd);
    mrt_layernorm_backward(rt, dwkv, dw->att_lnx_g, dw->att_lnx_b, dlnx, a->wkv, w->att_lnx_g,
                           a->lnx_mean, a->lnx_rstd, N, D);
    float *dk = S[1], *dv = S[3];
    zero(dk, nd), zero(dv, nd);
    mrt_biwkv_backward(rt, dk, dv, dw->att_w, dw->att_u, dwkv, a->k, a->v, w->att_w, w->att_u,
                       B, Hg * Wg, D);
    float *dxk = S[5], *dxv = S[6], *dxr = S[7];
    zero(dxk, nd), zero(dxv, nd), zero(dxr, nd);
    mrt_linear_backward(rt, dxk, dw->att_wk, NULL, dk, a->xk, w->att_wk, N, D, D);
    mrt_linear_backward(rt, dxv, dw->att_wv, NULL, dv, a->xv, w->att_wv, N, D, D);
    mrt_linear_backward(rt, dxr, dw->att_wr, NULL, dr, a->xr, w->att_wr, N, D, D);
    float *dln1 = S[1], *dsh1 = S[2];
    zero(dln1, nd), zero(dsh1, nd);
    mrt_tokenmix_backward(rt, dln1, dsh1, dw->att_mu_k, dxk, a->ln1, a->sh1, w->att_mu_k, N, D);
    mrt_tokenmix_backward(rt, dln1, dsh1, dw->att_mu_v, dxv, a->ln1, a->sh1, w->att_mu_v, N, D);
    mrt_tokenmix_backward(rt, dln1, dsh1, dw->att_mu_r, dxr, a->ln1, a->sh1, w->att_mu_r, N, D);
    mrt_qshift_backward(dln1, dsh1, B, Hg, Wg, D);
    if (dx) {
        mrt_add_inplace(dx, dx1, nd);
        mrt_layernorm_backward(rt, dx, dw->ln1_g, dw->ln1_b, dln1, x, w->ln1_g, a->ln1_mean,
                               a->ln1_rstd, N, D);
    } else {
        mrt_layernorm_backward(rt, NULL, dw->ln1_g, dw->ln1_b, dln1, x, w->ln1_g, a->ln1_mean,
                               a->ln1_rstd, N, D);
    }
}

/* Rows per chunk of the inference channel mix. */
#define INFER_CHUNK 4096

size_t mrt_rwkv_infer_floats(int N, int D, int F) {
    int chunk = N < INFER_CHUNK ? N : INFER_CHUNK;
    return 6 * (size_t)N * D + (size_t)chunk * (4 * (size_t)D + F);
}

void mrt_rwkv_block_infer(const mrt_rt *rt, float *x, const mrt_rwkv_weights *w, int B, int Hg,
                          int Wg, int D, int F, float *ws) {
    int N = B * Hg * Wg;
    size_t nd = (size_t)N * D;
    float *ln = ws, *sh = ln + nd, *k = sh + nd, *v = k + nd, *r = v + nd, *tmp = r + nd;
    float *chunk_buf = tmp + nd;
    /* spatial mix */
    mrt_layernorm_forward(rt, ln, NULL, NULL, x, w->ln1_g, w->ln1_b, N, D);
    mrt_qshift_forward(sh, ln, B, Hg, Wg, D);
    mrt_tokenmix_forward(rt, tmp, ln, sh, w->att_mu_k, N, D);
    mrt_linear_forward(rt, k, tmp, w->att_wk, NULL, N, D, D);
    mrt_tokenmix_forward(rt, tmp, ln, sh, w->att_mu_v, N, D);
    mrt_linear_forward(rt, v, tmp, w->att_wv, NULL, N, D, D);
    mrt_tokenmix_forward(rt, tmp, ln, sh, w->att_mu_r, N, D);
    mrt_linear_forward(rt, r, tmp, w->att_wr, NULL, N, D, D);
    mrt_biwkv_forward(rt, tmp, k, v, w->att_w, w->att_u, B, Hg * Wg, D);
    mrt_layernorm_forward(rt, k, NULL, NULL, tmp, w->att_lnx_g, w->att_lnx_b, N, D);
    mrt_sigmoid_forward(rt, r, r, nd);
    mrt_mul_forward(k, r, k, nd);
    mrt_linear_forward(rt, tmp, k, w->att_wo, NULL, N, D, D);
    mrt_add_inplace(x, tmp, nd);
    /* channel mix: token-local after the shift, so it runs in row chunks */
    mrt_layernorm_forward(rt, ln, NULL, NULL, x, w->ln2_g, w->ln2_b, N, D);
    mrt_qshift_forward(sh, ln, B, Hg, Wg, D);
    for (int r0 = 0; r0 < N; r0 += INFER_CHUNK) {
        int rows = N - r0 < INFER_CHUNK ? N - r0 : INFER_CHUNK;
        size_t off = (size_t)r0 * D, cd = (size_t)rows * D;
        float *fk = chunk_buf, *fr = fk + cd, *vv = fr + cd, *rr = vv + cd, *hk = rr + cd;
        mrt_tokenmix_forward(rt, fk, ln + off, sh + off, w->ffn_mu_k, rows, D);
        mrt_tokenmix_forward(rt, fr, ln + off, sh + off, w->ffn_mu_r, rows, D);
        mrt_linear_forward(rt, hk, fk, w->ffn_wk, NULL, rows, D, F);
        mrt_relu2_forward(rt, hk, hk, (size_t)rows * F);
        mrt_linear_forward(rt, vv, hk, w->ffn_wv, NULL, rows, F, D);
        mrt_linear_forward(rt, rr, fr, w->ffn_wr, NULL, rows, D, D);
        mrt_sigmoid_forward(rt, rr, rr, cd);
        mrt_mul_forward(vv, rr, vv, cd);
        mrt_add_inplace(x + off, vv, cd);
    }
}

/* ---------------------------------------------------------------- ViT */

int mrt_vit_params(mrt_vit_weights *w, int D, int F, mrt_param_ref *refs) {
    int n = 0;
    add_ref(refs, &n, "ln1.weight", &w->ln1_g, D, 0);
    add_ref(refs, &n, "ln1.bias", &w->ln1_b, D, 0);
    add_ref(refs, &n, "attn.qkv.weight", &w->wqkv, 3 * D, D);
    add_ref(refs, &n, "attn.qkv.bias", &w->bqkv, 3 * D, 0);
    add_ref(refs, &n, "attn.proj.weight", &w->wo, D, D);
    add_ref(refs, &n, "attn.proj.bias", &w->bo, D, 0);
    add_ref(refs, &n, "ln2.weight", &w->ln2_g, D, 0);
    add_ref(refs, &n, "ln2.bias", &w->ln2_b, D, 0);
    add_ref(refs, &n, "mlp.fc1.weight", &w->w1, F, D);
    add_ref(refs, &n, "mlp.fc1.bias", &w->b1, F, 0);
    add_ref(refs, &n, "mlp.fc2.weight", &w->w2, D, F);
    add_ref(refs, &n, "mlp.fc2.bias", &w->b2, D, 0);
    return n;
}

void mrt_vit_init(mrt_vit_weights *w, int D, int F, mrt_rng *rng) {
    mrt_fill(w->ln1_g, D, 1.0f), mrt_fill(w->ln1_b, D, 0.0f);
    mrt_fill(w->ln2_g, D, 1.0f), mrt_fill(w->ln2_b, D, 0.0f);
    init_linear(rng, w->wqkv, 3 * D, D);
    mrt_fill(w->bqkv, 3 * (size_t)D, 0.0f);
    init_linear(rng, w->wo, D, D);
    mrt_fill(w->bo, D, 0.0f);
    init_linear(rng, w->w1, F, D);
    mrt_fill(w->b1, F, 0.0f);
    init_linear(rng, w->w2, D, F);
    mrt_fill(w->b2, D, 0.0f);
}

int mrt_vit_acts_alloc(mrt_vit_acts *a, int nwin, int n, int D, int F, int heads) {
    size_t N = (size_t)nwin * n, nd = N * D, nf = N * F;
    /* acts: ln1, ao, x1, ln2 (N,D); qkv (N,3D); h, hg (N,F); att; 4 stats;
     * scratch: 2 (N,D) + (N,3D) + 2 (N,F) */
    size_t total = nd * 4 + nd * 3 + nf * 2 + (size_t)nwin * heads * n * n + N * 4 + nd * 2 +
                   nd * 3 + nf * 2;
    memset(a, 0, sizeof *a);
    if (heads <= 0 || D % heads != 0) return -1;
    a->mem = malloc(sizeof(float) * total);
    if (!a->mem) return -1;
    a->nwin = nwin, a->n = n, a->D = D, a->F = F, a->heads = heads;
    float *p = a->mem;
    a->ln1 = p, p += nd;
    a->ao = p, p += nd;
    a->x1 = p, p += nd;
    a->ln2 = p, p += nd;
    a->qkv = p, p += 3 * nd;
    a->h = p, p += nf;
    a->hg = p, p += nf;
    a->att = p, p += (size_t)nwin * heads * n * n;
    a->ln1_mean = p, p += N;
    a->ln1_rstd = p, p += N;
    a->ln2_mean = p, p += N;
    a->ln2_rstd = p, p += N;
    a->scratch = p;
    return 0;
}

void mrt_vit_acts_free(mrt_vit_acts *a) {
    free(a->mem);
    memset(a, 0, sizeof *a);
}

void mrt_vit_block_forward(const mrt_rt *rt, float *out, const float *x,
                           const mrt_vit_weights *w, mrt_vit_acts *a) {
    int N = a->nwin * a->n, D = a->D, F = a->F;
    size_t nd = (size_t)N * D;
    mrt_layernorm_forward(rt, a->ln1, a->ln1_mean, a->ln1_rstd, x, w->ln1_g, w->ln1_b, N, D);
    mrt_linear_forward(rt, a->qkv, a->ln1, w->wqkv, w->bqkv, N, D, 3 * D);
    mrt_attention_forward(rt, a->ao, a->att, a->qkv, a->nwin, a->n, D, a->heads);
    mrt_linear_forward(rt, a->x1, a->ao, w->wo, w->bo, N, D, D);
    mrt_add_inplace(a->x1, x, nd);
    mrt_layernorm_forward(rt, a->ln2, a->ln2_mean, a->ln2_rstd, a->x1, w->ln2_g, w->ln2_b, N, D);
    mrt_linear_forward(rt, a->h, a->ln2, w->w1, w->b1, N, D, F);
    mrt_gelu_forward(rt, a->hg, a->h, (size_t)N * F);
    mrt_linear_forward(rt, out, a->hg, w->w2, w->b2, N, F, D);
    mrt_add_inplace(out, a->x1, nd);
}

void mrt_vit_block_backward(const mrt_rt *rt, float *dx, const mrt_vit_weights *dw,
                            const float *dout, const float *x, const mrt_vit_weights *w,
                            mrt_vit_acts *a) {
    static const mrt_vit_weights none;
    if (!dw) dw = &none;
    int N = a->nwin * a->n, D = a->D, F = a->F;
    size_t nd = (size_t)N * D, nf = (size_t)N * F;
    float *S0 = a->scratch, *S1 = S0 + nd, *Q = S1 + nd, *F0 = Q + 3 * nd, *F1 = F0 + nf;
    /* MLP: out = x1 + W2 gelu(W1 ln2 + b1) + b2 */
    zero(F0, nf), zero(F1, nf), zero(S0, nd);
    mrt_linear_backward(rt, F0, dw->w2, dw->b2, dout, a->hg, w->w2, N, F, D);
    mrt_gelu_backward(rt, F1, F0, a->h, nf);
    mrt_linear_backward(rt, S0, dw->w1, dw->b1, F1, a->ln2, w->w1, N, D, F);
    float *dx1 = S1;
    memcpy(dx1, dout, sizeof(float) * nd);
    mrt_layernorm_backward(rt, dx1, dw->ln2_g, dw->ln2_b, S0, a->x1, w->ln2_g, a->ln2_mean,
                           a->ln2_rstd, N, D);
    /* attention: x1 = x + Wo attn(qkv) + bo */
    zero(S0, nd), zero(Q, 3 * nd);
    mrt_linear_backward(rt, S0, dw->wo, dw->bo, dx1, a->ao, w->wo, N, D, D);
    mrt_attention_backward(rt, Q, S0, a->qkv, a->att, a->nwin, a->n, D, a->heads);
    zero(S0, nd);
    mrt_linear_backward(rt, S0, dw->wqkv, dw->bqkv, Q, a->ln1, w->wqkv, N, D, 3 * D);
    if (dx) mrt_add_inplace(dx, dx1, nd);
    mrt_layernorm_backward(rt, dx, dw->ln1_g, dw->ln1_b, S0, x, w->ln1_g, a->ln1_mean, a->ln1_rstd,
                           N, D);
}
