/*
 * loss.c -- training losses: L1, MSE and MS-SSIM with exact gradients.
 *
 * MS-SSIM (Wang, Simoncelli & Bovik 2003) follows runtime.h to the letter;
 * the derivation of its gradient is written next to the code below. All
 * filtering is done in float (like PyTorch), every mean over a map in double.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

#include "runtime.h"

float mrt_l1_loss(float *dx, const float *x, const float *y, size_t n, float scale) {
    if (n == 0) return 0.0f;
    double s = 0.0;
    /* d|d|/dd = sign(d), 0 at d = 0 (as torch.nn.L1Loss). */
    float g = (float)((double)scale / (double)n);
    for (size_t i = 0; i < n; i++) {
        float d = x[i] - y[i];
        s += fabs((double)d);
        if (dx) dx[i] += d > 0.0f ? g : (d < 0.0f ? -g : 0.0f);
    }
    return (float)(s / (double)n);
}

float mrt_mse_loss(float *dx, const float *x, const float *y, size_t n, float scale) {
    if (n == 0) return 0.0f;
    double s = 0.0;
    float g = (float)(2.0 * (double)scale / (double)n);
    for (size_t i = 0; i < n; i++) {
        float d = x[i] - y[i];
        s += (double)d * d;
        if (dx) dx[i] += g * d;
    }
    return (float)(s / (double)n);
}

/* ---------------------------------------------------------------- MS-SSIM */

#define SSIM_C1 (0.01 * 0.01)
#define SSIM_C2 (0.03 * 0.03)
/* cs_j and the last ssim are clamped below at this before the power, so the
 * power and its derivative w * v^(w-1) stay finite (see runtime.h). */
#define SSIM_EPS 1e-6
#define SSIM_MAX_SCALES 5
#define SSIM_WIN 11

static const double ssim_weights[SSIM_MAX_SCALES] = {0.0448, 0.2856, 0.3001, 0.2363, 0.1333};

typedef struct ssim_cfg {
    int S;                  /* scales */
    int ws;                 /* window taps (odd, <= 11) */
    float g[SSIM_WIN];      /* 1-D Gaussian, sum 1 */
    double w[SSIM_MAX_SCALES];
    int H[SSIM_MAX_SCALES], W[SSIM_MAX_SCALES];   /* image size per scale */
    int Hf[SSIM_MAX_SCALES], Wf[SSIM_MAX_SCALES]; /* filtered ("valid") size */
    /* Offsets (floats) of each scale's buffers inside one plane's workspace. */
    size_t xs[SSIM_MAX_SCALES], ys[SSIM_MAX_SCALES], gx[SSIM_MAX_SCALES];
    size_t maps[SSIM_MAX_SCALES]; /* 5 maps: mu_x, mu_y, E[x^2], E[y^2], E[xy] */
    size_t tmp, prod, dmaps, total;
} ssim_cfg;

static void ssim_setup(ssim_cfg *c, int H, int W) {
    int m = H < W ? H : W;
    /* S = number of scales whose shorter side is still >= 11 (at most 5);
     * images smaller than 11 use one scale and the largest odd window that
     * fits. */
    int S = 0;
    for (int side = m; S < SSIM_MAX_SCALES && side >= SSIM_WIN; side /= 2) S++;
    c->S = S > 0 ? S : 1;
    c->ws = m >= SSIM_WIN ? SSIM_WIN : (m % 2 ? m : m - 1);
    /* Same taps as pytorch_msssim's _fspecial_gauss_1d(ws, 1.5). */
    double g[SSIM_WIN], gs = 0.0;
    for (int i = 0; i < c->ws; i++) {
        double d = i - c->ws / 2;
        g[i] = exp(-d * d / (2.0 * 1.5 * 1.5));
        gs += g[i];
    }
    for (int i = 0; i < c->ws; i++) c->g[i] = (float)(g[i] / gs);
    /* The five standard weights as published (they sum to 1.0001) when all
     * five scales are used; the first S renormalised to sum 1 otherwise. */
    double wsum = 0.0;
    for (int j = 0; j < c->S; j++) wsum += ssim_weights[j];
    for (int j = 0; j < c->S; j++)
        c->w[j] = c->S == SSIM_MAX_SCALES ? ssim_weights[j] : ssim_weights[j] / wsum;

    size_t off = 0;
    for (int j = 0; j < c->S; j++) {
        c->H[j] = j ? c->H[j - 1] / 2 : H; /* 2x2 pooling drops an odd row/col */
        c->W[j] = j ? c->W[j - 1] / 2 : W;
        c->Hf[j] = c->H[j] - c->ws + 1;
        c->Wf[j] = c->W[j] - c->ws + 1;
        size_t n = (size_t)c->H[j] * c->W[j], nf = (size_t)c->Hf[j] * c->Wf[j];
        if (j) { /* scale 0 reads the caller's arrays */
            c->xs[j] = off, off += n;
            c->ys[j] = off, off += n;
        }
        c->gx[j] = off, off += n;
        c->maps[j] = off, off += 5 * nf;
    }
    c->tmp = off, off += (size_t)c->H[0] * c->Wf[0];
    c->prod = off, off += (size_t)H * W;
    c->dmaps = off, off += 3 * (size_t)c->Hf[0] * c->Wf[0];
    c->total = off;
}

/* out(Hf x Wf) = G * in(H x W), "valid" separable correlation with the
 * ws-tap kernel g: rows first into tmp (H x Wf), then columns. The loops run
 * over x innermost and are marked `omp simd` (gcc -O2 would not vectorise
 * them): each x is independent, so the vector code computes exactly what the
 * scalar loop would, the taps of every output summed in the same order. */
static void filter_valid(float *out, const float *in, int H, int W, const float *g, int ws,
                         float *tmp) {
    int Hf = H - ws + 1, Wf = W - ws + 1;
    for (int y = 0; y < H; y++) {
        const float *r = in + (size_t)y * W;
        float *t = tmp + (size_t)y * Wf;
        #pragma omp simd
        for (int x = 0; x < Wf; x++) t[x] = g[0] * r[x];
        for (int u = 1; u < ws; u++) {
            float gu = g[u];
            const float *ru = r + u;
            #pragma omp simd
            for (int x = 0; x < Wf; x++) t[x] += gu * ru[x];
        }
    }
    for (int y = 0; y < Hf; y++) {
        float *o = out + (size_t)y * Wf;
        const float *t = tmp + (size_t)y * Wf;
        #pragma omp simd
        for (int x = 0; x < Wf; x++) o[x] = g[0] * t[x];
        for (int v = 1; v < ws; v++) {
            float gv = g[v];
            const float *tv = t + (size_t)v * Wf;
            #pragma omp simd
            for (int x = 0; x < Wf; x++) o[x] += gv * tv[x];
        }
    }
}

/* The adjoint of filter_valid: din(H x W) = G^T dout(Hf x Wf), overwriting
 * din. G^T spreads each value back over the window it came from (a "full"
 * correlation with the flipped kernel; ours is symmetric). */
static void filter_valid_adjoint(float *din, const float *dout, int H, int W, const float *g,
                                 int ws, float *tmp) {
    int Hf = H - ws + 1, Wf = W - ws + 1;
    memset(tmp, 0, sizeof(float) * (size_t)H * Wf);
    for (int y = 0; y < Hf; y++) {
        const float *d = dout + (size_t)y * Wf;
        for (int v = 0; v < ws; v++) {
            float gv = g[v];
            float *t = tmp + (size_t)(y + v) * Wf;
            #pragma omp simd
            for (int x = 0; x < Wf; x++) t[x] += gv * d[x];
        }
    }
    memset(din, 0, sizeof(float) * (size_t)H * W);
    for (int y = 0; y < H; y++) {
        const float *t = tmp + (size_t)y * Wf;
        float *r = din + (size_t)y * W;
        for (int u = 0; u < ws; u++) {
            float gu = g[u];
            float *ru = r + u;
            #pragma omp simd
            for (int x = 0; x < Wf; x++) ru[x] += gu * t[x];
        }
    }
}

/* 2x2 average pooling, trailing odd row/column dropped. */
static void pool2(float *out, const float *in, int H, int W) {
    int Ho = H / 2, Wo = W / 2;
    for (int y = 0; y < Ho; y++) {
        const float *r0 = in + (size_t)(2 * y) * W, *r1 = r0 + W;
        float *o = out + (size_t)y * Wo;
        for (int x = 0; x < Wo; x++)
            o[x] = 0.25f * ((r0[2 * x] + r0[2 * x + 1]) + (r1[2 * x] + r1[2 * x + 1]));
    }
}

/* Adjoint of pool2, accumulating: din += pool2^T(dout). */
static void pool2_adjoint_acc(float *din, const float *dout, int H, int W) {
    int Ho = H / 2, Wo = W / 2;
    for (int y = 0; y < Ho; y++) {
        float *r0 = din + (size_t)(2 * y) * W, *r1 = r0 + W;
        const float *d = dout + (size_t)y * Wo;
        for (int x = 0; x < Wo; x++) {
            float v = 0.25f * d[x];
            r0[2 * x] += v, r0[2 * x + 1] += v;
            r1[2 * x] += v, r1[2 * x + 1] += v;
        }
    }
}

/*
 * One plane. Per scale j, with the five filtered maps
 *   mx = G*x, my = G*y, Sxx = G*(x^2), Syy = G*(y^2), Sxy = G*(xy),
 *   vx = Sxx - mx^2, vy = Syy - my^2, cxy = Sxy - mx my,
 *   l  = (2 mx my + C1) / (mx^2 + my^2 + C1) = P / Q,
 *   cs = (2 cxy + C2) / (vx + vy + C2)       = A / Bv,
 * CS_j = mean(cs) and SSIM_j = mean(l cs) over the Hf x Wf valid pixels, and
 *   MS = prod_{j<S-1} max(CS_j, eps)^w_j * max(SSIM_{S-1}, eps)^w_{S-1}.
 *
 * Gradient. dMS/dCS_j = w_j MS / CS_j (0 where clamped), the same for the
 * last SSIM. For a mean, each pixel's map value gets coefficient c = dMS/dmean / N.
 * Per pixel, with c on cs (scales j < S-1):
 *   dSxy = 2c / Bv,  dSxx = -c cs / Bv,  dmx = c (2/Bv) (cs mx - my)
 * (cs reaches mx through vx: d/dmx = -2 mx, and cxy: d/dmx = -my), and with
 * c on l cs (last scale), using dl/dmx = 2 (my - l mx) / Q:
 *   dSxy = 2 c l / Bv,  dSxx = -c l cs / Bv,
 *   dmx = c [cs 2 (my - l mx) / Q + l (2/Bv) (cs mx - my)].
 * Through the filters (the adjoint G^T of "valid" filtering) and the
 * products x^2 and xy:
 *   dx_j = G^T dmx + 2 x_j (G^T dSxx) + y_j (G^T dSxy),
 * and through the pooling, scale j's gradient reaches scale j-1 as
 * pool2^T. y is the target: no gradient.
 */
static double ssim_plane(const ssim_cfg *c, float *ws, const float *x0, const float *y0,
                         float *dx, float coef) {
    const float *xs[SSIM_MAX_SCALES], *ys[SSIM_MAX_SCALES];
    double mean_cs[SSIM_MAX_SCALES], mean_ssim = 0.0;
    float *tmp = ws + c->tmp, *prod = ws + c->prod;
    for (int j = 0; j < c->S; j++) {
        int H = c->H[j], W = c->W[j], Hf = c->Hf[j], Wf = c->Wf[j];
        size_t n = (size_t)H * W, nf = (size_t)Hf * Wf;
        if (j == 0) {
            xs[0] = x0, ys[0] = y0;
        } else {
            pool2(ws + c->xs[j], xs[j - 1], c->H[j - 1], c->W[j - 1]);
            pool2(ws + c->ys[j], ys[j - 1], c->H[j - 1], c->W[j - 1]);
            xs[j] = ws + c->xs[j], ys[j] = ws + c->ys[j];
        }
        const float *x = xs[j], *y = ys[j];
        float *mx = ws + c->maps[j], *my = mx + nf, *sxx = my + nf, *syy = sxx + nf,
              *sxy = syy + nf;
        filter_valid(mx, x, H, W, c->g, c->ws, tmp);
        filter_valid(my, y, H, W, c->g, c->ws, tmp);
        for (size_t i = 0; i < n; i++) prod[i] = x[i] * x[i];
        filter_valid(sxx, prod, H, W, c->g, c->ws, tmp);
        for (size_t i = 0; i < n; i++) prod[i] = y[i] * y[i];
        filter_valid(syy, prod, H, W, c->g, c->ws, tmp);
        for (size_t i = 0; i < n; i++) prod[i] = x[i] * y[i];
        filter_valid(sxy, prod, H, W, c->g, c->ws, tmp);
        double scs = 0.0, sss = 0.0;
        for (size_t i = 0; i < nf; i++) {
            double ax = mx[i], ay = my[i];
            double vx = sxx[i] - ax * ax, vy = syy[i] - ay * ay, cxy = sxy[i] - ax * ay;
            double cs = (2.0 * cxy + SSIM_C2) / (vx + vy + SSIM_C2);
            double l = (2.0 * ax * ay + SSIM_C1) / (ax * ax + ay * ay + SSIM_C1);
            scs += cs;
            sss += l * cs;
        }
        mean_cs[j] = scs / (double)nf;
        if (j == c->S - 1) mean_ssim = sss / (double)nf;
    }
    /* The product over scales, with the clamp. */
    int last = c->S - 1;
    double f[SSIM_MAX_SCALES], ms = 1.0;
    for (int j = 0; j < c->S; j++) {
        double v = j < last ? mean_cs[j] : mean_ssim;
        f[j] = v < SSIM_EPS ? SSIM_EPS : v;
        ms *= pow(f[j], c->w[j]);
    }
    if (!dx) return ms;

    /* Backward, coarsest scale first so each scale's gradient can be pooled
     * back into the next finer one before that one adds its own part. */
    for (int j = 0; j < c->S; j++) memset(ws + c->gx[j], 0, sizeof(float) * (size_t)c->H[j] * c->W[j]);
    for (int j = last; j >= 0; j--) {
        int H = c->H[j], W = c->W[j], Hf = c->Hf[j], Wf = c->Wf[j];
        size_t n = (size_t)H * W, nf = (size_t)Hf * Wf;
        double v = j < last ? mean_cs[j] : mean_ssim;
        /* d(coef * MS)/d(mean) / N; zero where the clamp is active. */
        double cm = v < SSIM_EPS ? 0.0 : (double)coef * c->w[j] * ms / v / (double)nf;
        float *gx = ws + c->gx[j];
        if (cm != 0.0) {
            const float *mx = ws + c->maps[j], *my = mx + nf, *sxx = my + nf, *syy = sxx + nf,
                        *sxy = syy + nf;
            float *dmx = ws + c->dmaps, *dsxx = dmx + nf, *dsxy = dsxx + nf;
            for (size_t i = 0; i < nf; i++) {
                double ax = mx[i], ay = my[i];
                double vx = sxx[i] - ax * ax, vy = syy[i] - ay * ay, cxy = sxy[i] - ax * ay;
                double Bv = vx + vy + SSIM_C2, cs = (2.0 * cxy + SSIM_C2) / Bv;
                double dcs_dmx = (2.0 / Bv) * (cs * ax - ay);
                if (j < last) {
                    dsxy[i] = (float)(cm * 2.0 / Bv);
                    dsxx[i] = (float)(-cm * cs / Bv);
                    dmx[i] = (float)(cm * dcs_dmx);
                } else {
                    double Q = ax * ax + ay * ay + SSIM_C1;
                    double l = (2.0 * ax * ay + SSIM_C1) / Q;
                    dsxy[i] = (float)(cm * l * 2.0 / Bv);
                    dsxx[i] = (float)(-cm * l * cs / Bv);
                    dmx[i] = (float)(cm * (cs * 2.0 * (ay - l * ax) / Q + l * dcs_dmx));
                }
            }
            const float *x = xs[j], *y = ys[j];
            float *tmp2 = ws + c->tmp, *back = ws + c->prod;
            filter_valid_adjoint(back, dmx, H, W, c->g, c->ws, tmp2);
            for (size_t i = 0; i < n; i++) gx[i] += back[i];
            filter_valid_adjoint(back, dsxx, H, W, c->g, c->ws, tmp2);
            for (size_t i = 0; i < n; i++) gx[i] += 2.0f * x[i] * back[i];
            filter_valid_adjoint(back, dsxy, H, W, c->g, c->ws, tmp2);
            for (size_t i = 0; i < n; i++) gx[i] += y[i] * back[i];
        }
        if (j > 0) pool2_adjoint_acc(ws + c->gx[j - 1], gx, c->H[j - 1], c->W[j - 1]);
    }
    const float *g0 = ws + c->gx[0];
    for (size_t i = 0, n = (size_t)c->H[0] * c->W[0]; i < n; i++) dx[i] += g0[i];
    return ms;
}

float mrt_msssim(const mrt_rt *rt, float *dx, const float *x, const float *y, int B, int C,
                 int H, int W, float scale) {
    int planes = B * C;
    if (planes <= 0 || H <= 0 || W <= 0) return 1.0f; /* nothing differs */
    ssim_cfg cfg;
    ssim_setup(&cfg, H, W);
    int nt = rt && rt->threads > 1 ? rt->threads : 1;
    if (nt > planes) nt = planes;
    float *work = malloc(sizeof(float) * cfg.total * (size_t)nt);
    if (!work && nt > 1) {
        nt = 1;
        work = malloc(sizeof(float) * cfg.total);
    }
    double *ms = malloc(sizeof(double) * (size_t)planes);
    if (!work || !ms) {
        free(work);
        free(ms);
        return NAN; /* no scratch memory: no value, dx untouched */
    }
    /* d(mean over planes)/d(plane) = 1 / planes. */
    float coef = (float)((double)scale / planes);
    size_t HW = (size_t)H * W;
    /* Planes are independent: one per thread at a time; each writes only its
     * own slice of dx and its own ms[] entry, so the result does not depend
     * on the thread count. */
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int p = 0; p < planes; p++) {
        float *wsp = work + cfg.total * (size_t)omp_get_thread_num();
        ms[p] = ssim_plane(&cfg, wsp, x + HW * p, y + HW * p, dx ? dx + HW * p : NULL, coef);
    }
    double s = 0.0;
    for (int p = 0; p < planes; p++) s += ms[p];
    free(work);
    free(ms);
    return (float)(s / planes);
}
