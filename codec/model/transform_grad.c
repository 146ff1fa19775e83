/*
 * transform_grad.c -- analysis and synthesis with activations and backward
 * (see transform_grad.h). Forward and backward of each transform side by side.
 */
#include <stdlib.h>
#include <string.h>

#include "transform_grad.h"

mrt_train_shape mrt_train_shape_of(const mrt_config *cfg, int B, int W, int H) {
    mrt_train_shape s;
    s.B = B;
    s.W = W;
    s.H = H;
    s.gx = W / cfg->patch;
    s.gy = H / cfg->patch;
    s.nwx = s.gx / cfg->window;
    s.nwy = s.gy / cfg->window;
    s.nwin = B * s.nwx * s.nwy;
    s.tokens = B * s.gx * s.gy;
    s.n = cfg->window * cfg->window + cfg->latents;
    return s;
}

/* Row of the grid token k (0 .. window^2) of window w, batch-major; the
 * windows of an image in raster order, like the codec's (analysis.c). */
static size_t grid_row(const mrt_config *cfg, const mrt_train_shape *s, int w, int k) {
    int per = s->nwx * s->nwy, b = w / per, wl = w % per;
    int y = (wl / s->nwx) * cfg->window + k / cfg->window;
    int x = (wl % s->nwx) * cfg->window + k % cfg->window;
    return ((size_t)b * s->gy + y) * s->gx + x;
}

/* windows [grid tokens; latents] <- grid, Z */
static void gather(const mrt_config *cfg, const mrt_train_shape *s, float *win, const float *grid,
                   const float *Z) {
    int D = cfg->dim, L = cfg->latents, win2 = cfg->window * cfg->window;
    for (int w = 0; w < s->nwin; w++) {
        float *dst = win + (size_t)w * s->n * D;
        for (int k = 0; k < win2; k++)
            memcpy(dst + (size_t)k * D, grid + grid_row(cfg, s, w, k) * D, sizeof(float) * D);
        memcpy(dst + (size_t)win2 * D, Z + (size_t)w * L * D, sizeof(float) * L * D);
    }
}

/* grid, Z <- windows (or, with accumulate, grid += and Z += : the adjoint
 * of gather) */
static void scatter(const mrt_config *cfg, const mrt_train_shape *s, const float *win,
                    float *grid, float *Z, bool accumulate) {
    int D = cfg->dim, L = cfg->latents, win2 = cfg->window * cfg->window;
    for (int w = 0; w < s->nwin; w++) {
        const float *src = win + (size_t)w * s->n * D;
        for (int k = 0; k < win2; k++) {
            float *g = grid + grid_row(cfg, s, w, k) * D;
            if (accumulate)
                mrt_add_inplace(g, src + (size_t)k * D, D);
            else
                memcpy(g, src + (size_t)k * D, sizeof(float) * D);
        }
        float *z = Z + (size_t)w * L * D;
        if (accumulate)
            mrt_add_inplace(z, src + (size_t)win2 * D, (size_t)L * D);
        else
            memcpy(z, src + (size_t)win2 * D, sizeof(float) * L * D);
    }
}

/* ------------------------------------------------------------ analysis */

int mrt_analysis_acts_alloc(mrt_analysis_acts *a, const mrt_config *cfg, int B, int W, int H) {
    memset(a, 0, sizeof *a);
    mrt_train_shape s = mrt_train_shape_of(cfg, B, W, H);
    a->sh = s;
    int D = cfg->dim, L = cfg->latents, np = cfg->enc_pairs, K = 3 * cfg->patch * cfg->patch;
    size_t td = (size_t)s.tokens * D, zd = (size_t)s.nwin * L * D, wd = (size_t)s.nwin * s.n * D;
    size_t nl = (size_t)s.nwin * L;
    size_t total = (size_t)s.tokens * K + (2 * np + 1) * td + (np + 1) * zd + 2 * np * wd +
                   zd + 2 * nl + 2 * nl * D + nl * cfg->channels;
    if (!(a->mem = malloc(sizeof(float) * total))) return -1;
    float *p = a->mem;
    a->patches = p, p += (size_t)s.tokens * K;
    for (int i = 0; i <= 2 * np; i++) a->P[i] = p, p += td;
    for (int i = 0; i <= np; i++) a->Z[i] = p, p += zd;
    for (int i = 0; i < np; i++) a->win_in[i] = p, p += wd, a->win_out[i] = p, p += wd;
    a->ln = p, p += zd;
    a->ln_mean = p, p += nl;
    a->ln_rstd = p, p += nl;
    a->h = p, p += nl * D;
    a->hg = p, p += nl * D;
    a->y = p;
    for (int i = 0; i < np; i++)
        if (mrt_rwkv_acts_alloc(&a->rwkv[i], s.tokens, D, cfg->ffn) ||
            mrt_vit_acts_alloc(&a->vit[i], s.nwin, s.n, D, cfg->ffn, cfg->heads))
            return -1;
    return 0;
}

void mrt_analysis_acts_free(mrt_analysis_acts *a, const mrt_config *cfg) {
    for (int i = 0; i < cfg->enc_pairs; i++) {
        mrt_rwkv_acts_free(&a->rwkv[i]);
        mrt_vit_acts_free(&a->vit[i]);
    }
    free(a->mem);
    memset(a, 0, sizeof *a);
}

void mrt_analysis_train_forward(const mrt_rt *rt, const mrt_config *cfg, const mrt_weights *w,
                                mrt_analysis_acts *a, const float *x) {
    const mrt_train_shape *s = &a->sh;
    int D = cfg->dim, L = cfg->latents, c = cfg->channels, K = 3 * cfg->patch * cfg->patch;
    int nl = s->nwin * L;
    mrt_patchify_forward(a->patches, x, s->B, 3, s->H, s->W, cfg->patch);
    mrt_linear_forward(rt, a->P[0], a->patches, w->embed_w, w->embed_b, s->tokens, K, D);
    for (int t = 0; t < s->tokens; t++) {
        int y = (t / s->gx) % s->gy, xx = t % s->gx;
        int k = (y % cfg->window) * cfg->window + xx % cfg->window;
        mrt_add_inplace(a->P[0] + (size_t)t * D, w->enc_pos + (size_t)k * D, D);
    }
    for (int i = 0; i < s->nwin; i++)
        memcpy(a->Z[0] + (size_t)i * L * D, w->enc_latents, sizeof(float) * L * D);
    for (int i = 0; i < cfg->enc_pairs; i++) {
        mrt_rwkv_block_forward(rt, a->P[2 * i + 1], a->P[2 * i], &w->enc_rwkv[i], &a->rwkv[i],
                               s->B, s->gy, s->gx);
        gather(cfg, s, a->win_in[i], a->P[2 * i + 1], a->Z[i]);
        mrt_vit_block_forward(rt, a->win_out[i], a->win_in[i], &w->enc_vit[i], &a->vit[i]);
        scatter(cfg, s, a->win_out[i], a->P[2 * i + 2], a->Z[i + 1], false);
    }
    mrt_layernorm_forward(rt, a->ln, a->ln_mean, a->ln_rstd, a->Z[cfg->enc_pairs], w->enc_ln_g,
                          w->enc_ln_b, nl, D);
    mrt_linear_forward(rt, a->h, a->ln, w->lat_w1, w->lat_b1, nl, D, D);
    mrt_gelu_forward(rt, a->hg, a->h, (size_t)nl * D);
    mrt_linear_forward(rt, a->y, a->hg, w->lat_w2, w->lat_b2, nl, D, c);
}

int mrt_analysis_train_backward(const mrt_rt *rt, const mrt_config *cfg, const mrt_weights *w,
                                const mrt_weights *dw, mrt_analysis_acts *a, const float *dy) {
    const mrt_train_shape *s = &a->sh;
    int D = cfg->dim, L = cfg->latents, c = cfg->channels, K = 3 * cfg->patch * cfg->patch;
    int nl = s->nwin * L, np = cfg->enc_pairs;
    size_t td = (size_t)s->tokens * D, zd = (size_t)nl * D, wd = (size_t)s->nwin * s->n * D;
    float *buf = calloc(2 * td + 2 * zd + 2 * wd + 2 * zd, sizeof(float));
    if (!buf) return -1;
    float *dP = buf, *dPn = dP + td, *dZ = dPn + td, *dZn = dZ + zd, *dwo = dZn + zd,
          *dwi = dwo + wd, *dh = dwi + wd, *dln = dh + zd;
    /* output MLP and LN: dZ (of Z[np]) */
    mrt_linear_backward(rt, dh, dw->lat_w2, dw->lat_b2, dy, a->hg, w->lat_w2, nl, D, c);
    memset(dln, 0, sizeof(float) * zd);
    mrt_gelu_backward(rt, dln, dh, a->h, zd); /* dln temporarily holds d(h) */
    memset(dh, 0, sizeof(float) * zd);
    mrt_linear_backward(rt, dh, dw->lat_w1, dw->lat_b1, dln, a->ln, w->lat_w1, nl, D, D);
    mrt_layernorm_backward(rt, dZ, dw->enc_ln_g, dw->enc_ln_b, dh, a->Z[np], w->enc_ln_g,
                           a->ln_mean, a->ln_rstd, nl, D);
    /* dP stays zero: the last grid tokens feed nothing */
    for (int i = np - 1; i >= 0; i--) {
        /* scatter's backward: windows' output gradient from (dP, dZ) */
        gather(cfg, s, dwo, dP, dZ);
        memset(dwi, 0, sizeof(float) * wd);
        mrt_vit_block_backward(rt, dwi, &dw->enc_vit[i], dwo, a->win_in[i], &w->enc_vit[i],
                               &a->vit[i]);
        memset(dPn, 0, sizeof(float) * td);
        memset(dZn, 0, sizeof(float) * zd);
        scatter(cfg, s, dwi, dPn, dZn, true); /* gather's backward */
        memset(dP, 0, sizeof(float) * td);
        mrt_rwkv_block_backward(rt, dP, &dw->enc_rwkv[i], dPn, a->P[2 * i], &w->enc_rwkv[i],
                                &a->rwkv[i], s->B, s->gy, s->gx);
        float *t = dZ;
        dZ = dZn, dZn = t;
    }
    /* dZ is d(Z[0]): the latent tokens are shared by all windows */
    if (dw->enc_latents)
        for (int i = 0; i < s->nwin; i++)
            mrt_add_inplace(dw->enc_latents, dZ + (size_t)i * L * D, (size_t)L * D);
    if (dw->enc_pos)
        for (int t = 0; t < s->tokens; t++) {
            int y = (t / s->gx) % s->gy, xx = t % s->gx;
            int k = (y % cfg->window) * cfg->window + xx % cfg->window;
            mrt_add_inplace(dw->enc_pos + (size_t)k * D, dP + (size_t)t * D, D);
        }
    mrt_linear_backward(rt, NULL, dw->embed_w, dw->embed_b, dP, a->patches, w->embed_w,
                        s->tokens, K, D);
    free(buf);
    return 0;
}

/* ----------------------------------------------------------- synthesis */

int mrt_synthesis_acts_alloc(mrt_synthesis_acts *a, const mrt_config *cfg, int B, int W,
                             int H) {
    memset(a, 0, sizeof *a);
    mrt_train_shape s = mrt_train_shape_of(cfg, B, W, H);
    a->sh = s;
    int D = cfg->dim, L = cfg->latents, np = cfg->dec_pairs;
    size_t td = (size_t)s.tokens * D, nl = (size_t)s.nwin * L, zd = nl * D;
    size_t wd = (size_t)s.nwin * s.n * D;
    size_t total = nl * cfg->channels + 2 * zd + (np + 1) * zd + (2 * np + 1) * td + 2 * np * wd +
                   td + 2 * (size_t)s.tokens + td;
    if (!(a->mem = malloc(sizeof(float) * total))) return -1;
    float *p = a->mem;
    a->y_hat = p, p += nl * cfg->channels;
    a->h = p, p += zd;
    a->hg = p, p += zd;
    for (int i = 0; i <= np; i++) a->Z[i] = p, p += zd;
    for (int i = 0; i <= 2 * np; i++) a->Q[i] = p, p += td;
    for (int i = 0; i < np; i++) a->win_in[i] = p, p += wd, a->win_out[i] = p, p += wd;
    a->ln = p, p += td;
    a->ln_mean = p, p += s.tokens;
    a->ln_rstd = p, p += s.tokens;
    a->map = p;
    for (int i = 0; i < np; i++)
        if (mrt_rwkv_acts_alloc(&a->rwkv[i], s.tokens, D, cfg->ffn) ||
            mrt_vit_acts_alloc(&a->vit[i], s.nwin, s.n, D, cfg->ffn, cfg->heads))
            return -1;
    return 0;
}

void mrt_synthesis_acts_free(mrt_synthesis_acts *a, const mrt_config *cfg) {
    for (int i = 0; i < cfg->dec_pairs; i++) {
        mrt_rwkv_acts_free(&a->rwkv[i]);
        mrt_vit_acts_free(&a->vit[i]);
    }
    free(a->mem);
    memset(a, 0, sizeof *a);
}

void mrt_synthesis_train_forward(const mrt_rt *rt, const mrt_config *cfg, const mrt_weights *w,
                                 mrt_synthesis_acts *a, const float *y_hat) {
    const mrt_train_shape *s = &a->sh;
    int D = cfg->dim, L = cfg->latents, c = cfg->channels, win2 = cfg->window * cfg->window;
    int nl = s->nwin * L, np = cfg->dec_pairs;
    memcpy(a->y_hat, y_hat, sizeof(float) * nl * c);
    mrt_linear_forward(rt, a->h, y_hat, w->unlat_w1, w->unlat_b1, nl, c, D);
    mrt_gelu_forward(rt, a->hg, a->h, (size_t)nl * D);
    mrt_linear_forward(rt, a->Z[0], a->hg, w->unlat_w2, w->unlat_b2, nl, D, D);
    /* queries: position + a learned mix of the window's latents */
    for (int win = 0; win < s->nwin; win++)
        for (int k = 0; k < win2; k++) {
            float *q = a->Q[0] + grid_row(cfg, s, win, k) * D;
            memcpy(q, w->dec_pos + (size_t)k * D, sizeof(float) * D);
            for (int l = 0; l < L; l++) {
                float m = w->dec_mix[(size_t)k * L + l];
                const float *z = a->Z[0] + ((size_t)win * L + l) * D;
                for (int d = 0; d < D; d++) q[d] += m * z[d];
            }
        }
    for (int i = 0; i < np; i++) {
        gather(cfg, s, a->win_in[i], a->Q[2 * i], a->Z[i]);
        mrt_vit_block_forward(rt, a->win_out[i], a->win_in[i], &w->dec_vit[i], &a->vit[i]);
        scatter(cfg, s, a->win_out[i], a->Q[2 * i + 1], a->Z[i + 1], false);
        mrt_rwkv_block_forward(rt, a->Q[2 * i + 2], a->Q[2 * i + 1], &w->dec_rwkv[i],
                               &a->rwkv[i], s->B, s->gy, s->gx);
    }
    mrt_layernorm_forward(rt, a->ln, a->ln_mean, a->ln_rstd, a->Q[2 * np], w->dec_ln_g,
                          w->dec_ln_b, s->tokens, D);
    /* tokens (B, g*g, D) -> map (B, D, g, g) */
    int gg = s->gx * s->gy;
    for (int b = 0; b < s->B; b++)
        for (int t = 0; t < gg; t++)
            for (int d = 0; d < D; d++)
                a->map[((size_t)b * D + d) * gg + t] = a->ln[((size_t)b * gg + t) * D + d];
}

int mrt_synthesis_train_backward(const mrt_rt *rt, const mrt_config *cfg, const mrt_weights *w,
                                 const mrt_weights *dw, mrt_synthesis_acts *a, const float *dmap,
                                 float *d_y_hat) {
    const mrt_train_shape *s = &a->sh;
    int D = cfg->dim, L = cfg->latents, c = cfg->channels, win2 = cfg->window * cfg->window;
    int nl = s->nwin * L, np = cfg->dec_pairs, gg = s->gx * s->gy;
    size_t td = (size_t)s->tokens * D, zd = (size_t)nl * D, wd = (size_t)s->nwin * s->n * D;
    float *buf = calloc(3 * td + 2 * zd + 2 * wd + zd, sizeof(float));
    if (!buf) return -1;
    float *dQ = buf, *dQn = dQ + td, *dln = dQn + td, *dZ = dln + td, *dZn = dZ + zd,
          *dwo = dZn + zd, *dwi = dwo + wd, *dh = dwi + wd;
    for (int b = 0; b < s->B; b++)
        for (int t = 0; t < gg; t++)
            for (int d = 0; d < D; d++)
                dln[((size_t)b * gg + t) * D + d] = dmap[((size_t)b * D + d) * gg + t];
    mrt_layernorm_backward(rt, dQ, dw->dec_ln_g, dw->dec_ln_b, dln, a->Q[2 * np], w->dec_ln_g,
                           a->ln_mean, a->ln_rstd, s->tokens, D);
    /* dZ (of Z[np]) is zero: the last latent tokens feed nothing */
    for (int i = np - 1; i >= 0; i--) {
        memset(dQn, 0, sizeof(float) * td);
        mrt_rwkv_block_backward(rt, dQn, &dw->dec_rwkv[i], dQ, a->Q[2 * i + 1], &w->dec_rwkv[i],
                                &a->rwkv[i], s->B, s->gy, s->gx); /* d(Q[2i+1]) */
        gather(cfg, s, dwo, dQn, dZ);
        memset(dwi, 0, sizeof(float) * wd);
        mrt_vit_block_backward(rt, dwi, &dw->dec_vit[i], dwo, a->win_in[i], &w->dec_vit[i],
                               &a->vit[i]);
        memset(dQ, 0, sizeof(float) * td);
        memset(dZn, 0, sizeof(float) * zd);
        scatter(cfg, s, dwi, dQ, dZn, true); /* d(Q[2i]), d(Z[i]) */
        float *t = dZ;
        dZ = dZn, dZn = t;
    }
    /* queries: dQ is d(Q[0]); dZ is d(Z[0]) from the ViTs so far */
    for (int win = 0; win < s->nwin; win++)
        for (int k = 0; k < win2; k++) {
            const float *g = dQ + grid_row(cfg, s, win, k) * D;
            if (dw->dec_pos) mrt_add_inplace(dw->dec_pos + (size_t)k * D, g, D);
            for (int l = 0; l < L; l++) {
                float m = w->dec_mix[(size_t)k * L + l];
                const float *z = a->Z[0] + ((size_t)win * L + l) * D;
                float *dz = dZ + ((size_t)win * L + l) * D;
                float dot = 0.0f;
                for (int d = 0; d < D; d++) {
                    dot += g[d] * z[d];
                    dz[d] += m * g[d];
                }
                if (dw->dec_mix) dw->dec_mix[(size_t)k * L + l] += dot;
            }
        }
    memset(dh, 0, sizeof(float) * zd);
    mrt_linear_backward(rt, dh, dw->unlat_w2, dw->unlat_b2, dZ, a->hg, w->unlat_w2, nl, D, D);
    memset(dln, 0, sizeof(float) * zd); /* reused for d(h) */
    mrt_gelu_backward(rt, dln, dh, a->h, zd);
    mrt_linear_backward(rt, d_y_hat, dw->unlat_w1, dw->unlat_b1, dln, a->y_hat, w->unlat_w1, nl, c,
                        D);
    free(buf);
    return 0;
}
