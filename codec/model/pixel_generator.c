/*
 * pixel_generator.c -- the pixel generator's forward and backward (pixel_generator.h).
 */
#include <stdlib.h>
#include <string.h>

#include "pixel_generator.h"

/* Backward's scratch, in floats: two gradient buffers of the largest map,
 * used alternately, and two maps at 1/8 for the residual block. Kept with
 * the activations so that each backward does not fault in tens of MB anew
 * (a 768x512 image's buffers exceed glibc's mmap threshold: latent
 * refinement's steps spent a third of their time in page faults). */
static size_t gen_grad_biggest(const mrt_gen_acts *a) {
    size_t biggest = (size_t)a->B * a->width[0] * a->h * a->w;
    for (int k = 0; k < MRT_GEN_STAGES; k++) {
        size_t n = (size_t)a->B * 4 * a->width[k + 1] * a->h * a->w << (2 * k);
        if (n > biggest) biggest = n;
    }
    return biggest;
}

static size_t gen_grad_floats(const mrt_gen_acts *a) {
    return 2 * gen_grad_biggest(a) + 2 * (size_t)a->B * a->width[0] * a->h * a->w;
}

int mrt_gen_acts_alloc(mrt_gen_acts *a, int B, int h, int w, int cin, const int *width,
                       bool train) {
    memset(a, 0, sizeof *a);
    a->B = B, a->h = h, a->w = w, a->cin = cin, a->train = train;
    for (int i = 0; i <= MRT_GEN_STAGES; i++) a->width[i] = width[i];
    size_t low = (size_t)B * width[0] * h * w; /* one map at 1/8 */
    size_t stage[MRT_GEN_STAGES];              /* one map after stage k */
    size_t biggest = low;
    for (int k = 0; k < MRT_GEN_STAGES; k++) {
        stage[k] = (size_t)B * width[k + 1] * h * w << (2 * (k + 1));
        if (stage[k] > biggest) biggest = stage[k];
    }
    size_t out = (size_t)B * 3 * h * w << (2 * MRT_GEN_STAGES);
    if (out > biggest) biggest = out;
    size_t total;
    if (train) {
        total = 6 * low + out;
        for (int k = 0; k < MRT_GEN_STAGES; k++) total += 5 * stage[k];
        total += gen_grad_floats(a);
    } else {
        total = 3 * low + 2 * biggest;
    }
    a->mem = malloc(sizeof(float) * total);
    if (!a->mem) return -1;
    float *p = a->mem;
    if (train) {
        float **lows[] = {&a->a0, &a->r0, &a->t1, &a->rt1, &a->t2, &a->s0};
        for (int i = 0; i < 6; i++, p += low) *lows[i] = p;
        for (int k = 0; k < MRT_GEN_STAGES; k++) {
            a->u[k] = p, p += stage[k];
            a->p[k] = p, p += stage[k];
            a->rp[k] = p, p += stage[k];
            a->c[k] = p, p += stage[k];
            a->rc[k] = p, p += stage[k];
        }
        a->out = p, p += out;
        a->grad = p;
    } else {
        /* in place where the op allows it (ReLU, the residual add); two big
         * buffers alternate between the stages, since neither a convolution
         * nor the pixel shuffle can write over its own input */
        float *X = p, *Y = p + low, *Z = p + 2 * low, *big[2] = {p + 3 * low, p + 3 * low + biggest};
        a->a0 = a->r0 = X;
        a->t1 = a->rt1 = Y;
        a->t2 = a->s0 = Z;
        for (int k = 0; k < MRT_GEN_STAGES; k++) {
            a->u[k] = a->c[k] = a->rc[k] = big[k % 2];
            a->p[k] = a->rp[k] = big[(k + 1) % 2];
        }
        a->out = big[MRT_GEN_STAGES % 2];
    }
    return 0;
}

void mrt_gen_acts_free(mrt_gen_acts *a) {
    free(a->mem);
    memset(a, 0, sizeof *a);
}

void mrt_gen_forward(const mrt_rt *rt, const mrt_gen_weights *g, mrt_gen_acts *a,
                     const float *x) {
    int B = a->B, H = a->h, W = a->w, C0 = a->width[0];
    size_t low = (size_t)B * C0 * H * W;
    mrt_conv2d_forward(rt, a->a0, x, g->in_w, g->in_b, B, a->cin, H, W, C0, 3, 1);
    mrt_relu_forward(rt, a->r0, a->a0, low);
    mrt_conv2d_forward(rt, a->t1, a->r0, g->res1_w, g->res1_b, B, C0, H, W, C0, 3, 1);
    mrt_relu_forward(rt, a->rt1, a->t1, low);
    mrt_conv2d_forward(rt, a->t2, a->rt1, g->res2_w, g->res2_b, B, C0, H, W, C0, 3, 1);
    mrt_add(a->s0, a->r0, a->t2, low);
    const float *cur = a->s0;
    int C = C0;
    for (int k = 0; k < MRT_GEN_STAGES; k++) {
        int Cn = a->width[k + 1];
        size_t n = (size_t)B * 4 * Cn * H * W;
        mrt_conv2d_forward(rt, a->u[k], cur, g->up_w[k], g->up_b[k], B, C, H, W, 4 * Cn, 1, 1);
        mrt_pixelshuffle_forward(rt, a->p[k], a->u[k], B, Cn, H, W);
        H *= 2, W *= 2, C = Cn;
        mrt_relu_forward(rt, a->rp[k], a->p[k], n);
        mrt_conv2d_forward(rt, a->c[k], a->rp[k], g->conv_w[k], g->conv_b[k], B, C, H, W, C, 3, 1);
        mrt_relu_forward(rt, a->rc[k], a->c[k], n);
        cur = a->rc[k];
    }
    mrt_conv2d_forward(rt, a->out, cur, g->out_w, g->out_b, B, C, H, W, 3, 3, 1);
}

int mrt_gen_backward(const mrt_rt *rt, const mrt_gen_weights *g, const mrt_gen_weights *dg,
                     mrt_gen_acts *a, const float *x, const float *dout, float *dx) {
    static const mrt_gen_weights none;
    if (!a->train) return -1;
    if (!dg) dg = &none;
    int B = a->B, H = a->h << MRT_GEN_STAGES, W = a->w << MRT_GEN_STAGES, C0 = a->width[0];
    size_t biggest = gen_grad_biggest(a);
    float *d0 = a->grad, *d1 = a->grad + biggest;
    int C = a->width[MRT_GEN_STAGES];
    size_t n = (size_t)B * C * H * W;
    /* out = conv_out(rc[2]) */
    memset(d0, 0, sizeof(float) * n);
    mrt_conv2d_backward(rt, d0, dg->out_w, dg->out_b, dout, a->rc[MRT_GEN_STAGES - 1], g->out_w,
                        B, C, H, W, 3, 3, 1);
    for (int k = MRT_GEN_STAGES - 1; k >= 0; k--) {
        /* d0 holds d(rc[k]) with C channels at H x W */
        n = (size_t)B * C * H * W;
        memset(d1, 0, sizeof(float) * n);
        mrt_relu_backward(rt, d1, d0, a->c[k], n); /* d(c[k]) */
        memset(d0, 0, sizeof(float) * n);
        mrt_conv2d_backward(rt, d0, dg->conv_w[k], dg->conv_b[k], d1, a->rp[k], g->conv_w[k], B,
                            C, H, W, C, 3, 1); /* d(rp[k]) */
        memset(d1, 0, sizeof(float) * n);
        mrt_relu_backward(rt, d1, d0, a->p[k], n); /* d(p[k]) */
        H /= 2, W /= 2;
        memset(d0, 0, sizeof(float) * n);
        mrt_pixelshuffle_backward(rt, d0, d1, B, C, H, W); /* d(u[k]), 4C x H x W */
        int Cp = k > 0 ? a->width[k] : C0;
        const float *prev = k > 0 ? a->rc[k - 1] : a->s0;
        memset(d1, 0, sizeof(float) * (size_t)B * Cp * H * W);
        mrt_conv2d_backward(rt, d1, dg->up_w[k], dg->up_b[k], d0, prev, g->up_w[k], B, Cp, H, W,
                            4 * C, 1, 1); /* d(prev) */
        float *t = d0;
        d0 = d1, d1 = t;
        C = Cp;
    }
    /* d0 = d(s0); s0 = r0 + t2 */
    size_t low = (size_t)B * C0 * H * W;
    float *d_r0 = d1;
    memcpy(d_r0, d0, sizeof(float) * low); /* through the skip */
    float *d_rt1 = a->grad + 2 * biggest;
    float *d_t1 = d_rt1 + low;
    memset(d_rt1, 0, sizeof(float) * low);
    mrt_conv2d_backward(rt, d_rt1, dg->res2_w, dg->res2_b, d0, a->rt1, g->res2_w, B, C0, H, W,
                        C0, 3, 1);
    memset(d_t1, 0, sizeof(float) * low);
    mrt_relu_backward(rt, d_t1, d_rt1, a->t1, low);
    mrt_conv2d_backward(rt, d_r0, dg->res1_w, dg->res1_b, d_t1, a->r0, g->res1_w, B, C0, H, W,
                        C0, 3, 1);
    memset(d0, 0, sizeof(float) * low);
    mrt_relu_backward(rt, d0, d_r0, a->a0, low); /* d(a0) */
    mrt_conv2d_backward(rt, dx, dg->in_w, dg->in_b, d0, x, g->in_w, B, a->cin, H, W, C0, 3, 1);
    return 0;
}
