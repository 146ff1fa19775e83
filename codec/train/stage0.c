/*
 * stage0.c -- stage 0: the tokenizer, its forward, loss and backward.
 *
 *   x (B, 3, S, S) in [-1, 1]
 *   z   = enc3(relu(enc2(relu(enc1(relu(enc0(x)))))))    3x3 convs, /8, `bits` channels
 *   q   = sign(z) (z > 0 -> +1, else -1), straight-through where |z| <= 1
 *   out = generator(embed(q))                           1x1 conv bits -> D, then gen.*
 *   loss = L1(out, x) + (1 - MS-SSIM) + w (mean_t sum_i H(p_ti) - sum_i H(mean_t p_ti))
 *          with p = sigmoid(4 z): confident bits, all codes in use (MAGVIT-v2's
 *          entropy penalty, with the batch term factorised over bits)
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

static int tok_side(int S, int layer) { return layer < MRT_TOK_LAYERS - 1 ? S >> (layer + 1) : S >> 3; }

int mrt_tok_acts_alloc(tok_acts *t, const mrt_config *cfg, int bits, int B, int S) {
    memset(t, 0, sizeof *t);
    t->B = B, t->S = S, t->bits = bits, t->D = cfg->dim;
    size_t img = (size_t)B * 3 * S * S, low = (size_t)B * (S / 8) * (S / 8);
    size_t total = 3 * img + 2 * low * bits + low * cfg->dim;
    for (int l = 0; l < MRT_TOK_LAYERS; l++) {
        int side = tok_side(S, l);
        total += (size_t)(l < MRT_TOK_LAYERS - 1 ? 2 : 1) * B * mrt_tok_width(l, bits) * side * side;
    }
    if (!(t->mem = malloc(sizeof(float) * total))) return -1;
    float *p = t->mem;
    t->x01 = p, p += img;
    t->out01 = p, p += img;
    t->dout = p, p += img;
    for (int l = 0; l < MRT_TOK_LAYERS; l++) {
        int side = tok_side(S, l);
        size_t n = (size_t)B * mrt_tok_width(l, bits) * side * side;
        t->a[l] = p, p += n;
        if (l < MRT_TOK_LAYERS - 1) t->r[l] = p, p += n;
    }
    t->q = p, p += low * bits;
    t->e = p, p += low * cfg->dim;
    (void)p;
    return mrt_gen_acts_alloc(&t->gen, B, S / 8, S / 8, cfg->dim, cfg->gen_width, true);
}

void mrt_tok_acts_free(tok_acts *t) {
    mrt_gen_acts_free(&t->gen);
    free(t->mem);
}

/* Binary entropy in bits, and its derivative d/dp, safe at 0 and 1. */
static double hb(double p) {
    p = p < 1e-7 ? 1e-7 : p > 1 - 1e-7 ? 1 - 1e-7 : p;
    return -(p * log2(p) + (1 - p) * log2(1 - p));
}
static double hb_grad(double p) {
    p = p < 1e-7 ? 1e-7 : p > 1 - 1e-7 ? 1 - 1e-7 : p;
    return log2((1 - p) / p);
}

/* The tokenizer's encoder, LFQ and embedding: fills t->a, t->r, t->q and
 * t->e (the generator's input, also stage 1's target features). */
void mrt_tok_encode(const mrt_rt *rt, const mrt_tok_weights *w, tok_acts *t, const float *x) {
    int B = t->B, S = t->S, bits = t->bits, D = t->D, s8 = S / 8;
    const float *in = x;
    int cin = 3, side = S;
    for (int l = 0; l < MRT_TOK_LAYERS; l++) {
        int cout = mrt_tok_width(l, bits), stride = l < MRT_TOK_LAYERS - 1 ? 2 : 1;
        mrt_conv2d_forward(rt, t->a[l], in, w->enc_w[l], w->enc_b[l], B, cin, side, side, cout, 3,
                           stride);
        side = mrt_conv2d_out_size(side, stride);
        if (l < MRT_TOK_LAYERS - 1) {
            mrt_relu_forward(rt, t->r[l], t->a[l], (size_t)B * cout * side * side);
            in = t->r[l];
        }
        cin = cout;
    }
    const float *z = t->a[MRT_TOK_LAYERS - 1];
    size_t nz = (size_t)B * s8 * s8 * bits;
    for (size_t i = 0; i < nz; i++) t->q[i] = z[i] > 0.0f ? 1.0f : -1.0f;
    mrt_conv2d_forward(rt, t->e, t->q, w->embed_w, w->embed_b, B, bits, s8, s8, D, 1, 1);
}

/* Forward + backward of one batch; gradients accumulate into p->G. */
step_stats mrt_tok_step(const mrt_rt *rt, params *p, tok_acts *t, const float *x,
                        float entropy_weight) {
    int B = t->B, S = t->S, bits = t->bits, D = t->D, s8 = S / 8;
    size_t img = (size_t)B * 3 * S * S, low = (size_t)B * s8 * s8;
    const mrt_tok_weights *w = &p->w, *g = &p->g;
    step_stats st = {0};
    mrt_tok_encode(rt, w, t, x);
    const float *z = t->a[MRT_TOK_LAYERS - 1];
    size_t nz = low * bits;
    mrt_gen_forward(rt, &w->gen, &t->gen, t->e);
    const float *out = t->gen.out;
    /* losses; d(loss)/d(out) into t->dout */
    st.l1 = mrt_pixel_l1(t->dout, t->x01, t->out01, out, x, img);
    double mse = 0;
    for (size_t i = 0; i < img; i++) {
        double d = (double)t->out01[i] - t->x01[i];
        mse += d * d;
    }
    mse /= img;
    st.psnr = 10.0 * log10(1.0 / (mse > 1e-10 ? mse : 1e-10));
    /* d(1 - ms)/d(out) = -0.5 d(ms)/d(out01): accumulate with scale -0.5 */
    st.msssim = mrt_msssim(rt, t->dout, t->out01, t->x01, B, 3, S, S, -0.5f);
    /* entropy penalty on z, gradient straight into dz (below) */
    float *dz = malloc(sizeof(float) * nz);
    double *mean_p = calloc(bits, sizeof(double));
    if (!dz || !mean_p) {
        free(dz), free(mean_p);
        st.loss = NAN;
        return st;
    }
    size_t tokens = low; /* per bit: B * s8 * s8 values, layout (B, bits, s8, s8) */
    double per_sample = 0;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < bits; i++)
            for (int k = 0; k < s8 * s8; k++) {
                double pr = 1.0 / (1.0 + exp(-4.0 * z[((size_t)b * bits + i) * s8 * s8 + k]));
                per_sample += hb(pr);
                mean_p[i] += pr;
            }
    per_sample /= tokens;
    double batch = 0, balance = 0;
    for (int i = 0; i < bits; i++) {
        mean_p[i] /= tokens;
        batch += hb(mean_p[i]);
        balance += fabs(mean_p[i] - 0.5);
    }
    st.entropy = per_sample - batch;
    st.bit_balance = balance / bits;
    /* backward through the generator and the embedding to q */
    float *de = malloc(sizeof(float) * low * D), *dq = calloc(nz, sizeof(float));
    if (!de || !dq) {
        free(dz), free(mean_p), free(de), free(dq);
        st.loss = NAN;
        return st;
    }
    memset(de, 0, sizeof(float) * low * D);
    mrt_gen_backward(rt, &w->gen, &g->gen, &t->gen, t->e, t->dout, de);
    mrt_conv2d_backward(rt, dq, g->embed_w, g->embed_b, de, t->q, w->embed_w, B, bits, s8, s8, D,
                        1, 1);
    /* straight-through LFQ, plus the entropy terms' gradients */
    for (int b = 0; b < B; b++)
        for (int i = 0; i < bits; i++)
            for (int k = 0; k < s8 * s8; k++) {
                size_t idx = ((size_t)b * bits + i) * s8 * s8 + k;
                double pr = 1.0 / (1.0 + exp(-4.0 * z[idx]));
                double dpdz = 4.0 * pr * (1.0 - pr);
                double dent = (hb_grad(pr) - hb_grad(mean_p[i])) * dpdz / tokens;
                float ste = fabsf(z[idx]) <= 1.0f ? dq[idx] : 0.0f;
                dz[idx] = ste + (float)(entropy_weight * dent);
            }
    /* encoder backward */
    float *dcur = dz, *dprev = NULL;
    int side = s8;
    for (int l = MRT_TOK_LAYERS - 1; l >= 0; l--) {
        int cout = mrt_tok_width(l, bits), stride = l < MRT_TOK_LAYERS - 1 ? 2 : 1;
        int cin_l = l > 0 ? mrt_tok_width(l - 1, bits) : 3;
        int side_in = l > 0 ? tok_side(S, l - 1) : S;
        const float *input = l > 0 ? t->r[l - 1] : x;
        if (l < MRT_TOK_LAYERS - 1) {
            /* dcur holds d(r[l]); through the ReLU into d(a[l]) */
            size_t n = (size_t)B * cout * side * side;
            float *da = calloc(n, sizeof(float));
            if (!da) break;
            mrt_relu_backward(rt, da, dcur, t->a[l], n);
            free(dcur);
            dcur = da;
        }
        dprev = l > 0 ? calloc((size_t)B * cin_l * side_in * side_in, sizeof(float)) : NULL;
        if (l > 0 && !dprev) break;
        mrt_conv2d_backward(rt, dprev, g->enc_w[l], g->enc_b[l], dcur, input, w->enc_w[l], B,
                            cin_l, side_in, side_in, cout, 3, stride);
        free(dcur);
        dcur = dprev;
        side = side_in;
    }
    free(dcur);
    free(mean_p), free(de), free(dq);
    st.loss = st.l1 + (1.0 - st.msssim) + entropy_weight * st.entropy;
    return st;
}
