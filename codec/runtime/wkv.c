/*
 * wkv.c -- bidirectional WKV (Vision-RWKV), DESIGN.md §3.2.
 *
 * For one channel of one sequence, with q = exp(-w/T), b = exp(u/T) and
 * x_i = exp(k_i - m) (m = max k, which cancels in the ratio):
 *
 *     L_t = sum_{i<t} q^(t-1-i) x_i        L_0 = 0,     L_{t+1} = q L_t + x_t
 *     R_t = sum_{i>t} q^(i-t-1) x_i        R_{T-1} = 0, R_{t-1} = q R_t + x_t
 *     wkv_t = (L^v_t + R^v_t + b x^v_t) / (L^1_t + R^1_t + b x^1_t)
 *
 * where ^v scans x_i v_i and ^1 scans x_i. The kernel K (K_ti = q^(|t-i|-1),
 * K_tt = b) is symmetric, so the backward applies the same scans to
 * alpha = g/den and beta = -g wkv/den; dw needs the distance-weighted scans
 * SL_{t+1} = q (SL_t + L_t), SR_{t-1} = q (SR_t + R_t).
 *
 * Work is split over (sequence, block of 16 channels); the scan runs along
 * t with the channels of the block in the inner loop. Scan states are kept
 * in double: a 6144-token sequence (768x512 at p = 8) would otherwise lose
 * ~1e-3 relative accuracy to rounding in the recurrences.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fastmath.h"
#include "runtime.h"

#define WKV_BLOCK 16

/* Scratch floats one (sequence, channel block) needs: 5 arrays of T x 16
 * (exp(k - m) and four scan results). */
static float *wkv_scratch(int T) { return malloc(sizeof(float) * 5 * (size_t)T * WKV_BLOCK); }

/* X[t][j] = exp(k[t][c0+j] - max_t k[t][c0+j]) for the channels of a block:
 * computed once per call, vectorised, instead of once per scan. */
static void block_exp_k(float *X, const float *k, int T, int C, int c0, int nc) {
    float m[WKV_BLOCK];
    for (int j = 0; j < nc; j++) m[j] = -INFINITY;
    for (int t = 0; t < T; t++)
        for (int j = 0; j < nc; j++) {
            float kv = k[(size_t)t * C + c0 + j];
            m[j] = kv > m[j] ? kv : m[j];
        }
    for (int t = 0; t < T; t++) {
        const float *kt = k + (size_t)t * C + c0;
        float *xt = X + (size_t)t * WKV_BLOCK;
#pragma omp simd
        for (int j = 0; j < nc; j++) xt[j] = mrt_exp_approx(kt[j] - m[j]);
    }
}

/* Forward for one sequence and one channel block. */
static void wkv_forward_block(float *out, const float *k, const float *v, const float *w,
                              const float *u, int T, int C, int c0, int nc, float *scratch) {
    double q[WKV_BLOCK], bonus[WKV_BLOCK], sv[WKV_BLOCK], s1[WKV_BLOCK];
    float *Rv = scratch, *R1 = scratch + (size_t)T * WKV_BLOCK, *X = R1 + (size_t)T * WKV_BLOCK;
    block_exp_k(X, k, T, C, c0, nc);
    for (int j = 0; j < nc; j++) {
        q[j] = exp(-(double)w[c0 + j] / T);
        bonus[j] = exp((double)u[c0 + j] / T);
        sv[j] = s1[j] = 0.0;
    }
    /* Right-to-left scan: R_t for every t. */
    for (int t = T - 1; t >= 0; t--) {
        const float *vt = v + (size_t)t * C + c0;
        size_t o = (size_t)t * WKV_BLOCK;
        for (int j = 0; j < nc; j++) {
            Rv[o + j] = (float)sv[j];
            R1[o + j] = (float)s1[j];
            double x = X[o + j];
            sv[j] = q[j] * sv[j] + x * vt[j];
            s1[j] = q[j] * s1[j] + x;
        }
    }
    /* Left-to-right scan: L_t, combined with R_t into wkv_t. */
    for (int j = 0; j < nc; j++) sv[j] = s1[j] = 0.0;
    for (int t = 0; t < T; t++) {
        const float *vt = v + (size_t)t * C + c0;
        float *ot = out + (size_t)t * C + c0;
        size_t o = (size_t)t * WKV_BLOCK;
        for (int j = 0; j < nc; j++) {
            double x = X[o + j];
            double num = sv[j] + Rv[o + j] + bonus[j] * x * vt[j];
            double den = s1[j] + R1[o + j] + bonus[j] * x;
            ot[j] = (float)(num / den);
            sv[j] = q[j] * sv[j] + x * vt[j];
            s1[j] = q[j] * s1[j] + x;
        }
    }
}

void mrt_biwkv_forward(const mrt_rt *rt, float *out, const float *k, const float *v,
                       const float *w, const float *u, int B, int T, int C) {
    int nblocks = (C + WKV_BLOCK - 1) / WKV_BLOCK;
    int jobs = B * nblocks;
#pragma omp parallel num_threads(rt->threads)
    {
        float *scratch = wkv_scratch(T);
#pragma omp for schedule(static)
        for (int job = 0; job < jobs; job++) {
            if (!scratch) continue; /* cannot happen short of OOM; out stays unwritten */
            int b = job / nblocks, c0 = (job % nblocks) * WKV_BLOCK;
            int nc = C - c0 < WKV_BLOCK ? C - c0 : WKV_BLOCK;
            size_t off = (size_t)b * T * C;
            wkv_forward_block(out + off, k + off, v + off, w, u, T, C, c0, nc, scratch);
        }
        free(scratch);
    }
}

/* Backward for one sequence and one channel block; accumulates into dk, dv
 * and into the per-block partial sums dw_part/du_part (nc each). */
static void wkv_backward_block(float *dk, float *dv, double *dw_part, double *du_part,
                               const float *dout, const float *k, const float *v,
                               const float *w, const float *u, int T, int C, int c0, int nc,
                               float *scratch) {
    double q[WKV_BLOCK], bonus[WKV_BLOCK];
    double sv[WKV_BLOCK], s1[WKV_BLOCK], ssv[WKV_BLOCK], ss1[WKV_BLOCK];
    double sa[WKV_BLOCK], sb[WKV_BLOCK];
    /* Pass 1 stores R^v, R^1, SR^v, SR^1; pass 2 reads them at t and then
     * overwrites the same slots with alpha, beta, L^alpha, L^beta. */
    float *A0 = scratch, *A1 = A0 + (size_t)T * WKV_BLOCK, *A2 = A1 + (size_t)T * WKV_BLOCK,
          *A3 = A2 + (size_t)T * WKV_BLOCK, *X = A3 + (size_t)T * WKV_BLOCK;
    block_exp_k(X, k, T, C, c0, nc);
    for (int j = 0; j < nc; j++) {
        q[j] = exp(-(double)w[c0 + j] / T);
        bonus[j] = exp((double)u[c0 + j] / T);
        sv[j] = s1[j] = ssv[j] = ss1[j] = 0.0;
    }
    for (int t = T - 1; t >= 0; t--) {
        const float *vt = v + (size_t)t * C + c0;
        size_t o = (size_t)t * WKV_BLOCK;
        for (int j = 0; j < nc; j++) {
            A0[o + j] = (float)sv[j];
            A1[o + j] = (float)s1[j];
            A2[o + j] = (float)ssv[j];
            A3[o + j] = (float)ss1[j];
            double x = X[o + j];
            ssv[j] = q[j] * (ssv[j] + sv[j]);
            ss1[j] = q[j] * (ss1[j] + s1[j]);
            sv[j] = q[j] * sv[j] + x * vt[j];
            s1[j] = q[j] * s1[j] + x;
        }
    }
    double dwacc[WKV_BLOCK], duacc[WKV_BLOCK];
    for (int j = 0; j < nc; j++) sv[j] = s1[j] = ssv[j] = ss1[j] = sa[j] = sb[j] = 0.0;
    for (int j = 0; j < nc; j++) dwacc[j] = duacc[j] = 0.0;
    for (int t = 0; t < T; t++) {
        const float *vt = v + (size_t)t * C + c0;
        const float *gt = dout + (size_t)t * C + c0;
        size_t o = (size_t)t * WKV_BLOCK;
        for (int j = 0; j < nc; j++) {
            double x = X[o + j];
            double Rv = A0[o + j], R1 = A1[o + j], SRv = A2[o + j], SR1 = A3[o + j];
            double num = sv[j] + Rv + bonus[j] * x * vt[j];
            double den = s1[j] + R1 + bonus[j] * x;
            double y = num / den;
            double alpha = gt[j] / den, beta = -gt[j] * y / den;
            dwacc[j] += alpha * (ssv[j] + SRv) + beta * (ss1[j] + SR1);
            duacc[j] += bonus[j] * x * (alpha * vt[j] + beta);
            A0[o + j] = (float)alpha;
            A1[o + j] = (float)beta;
            A2[o + j] = (float)sa[j]; /* L^alpha_t */
            A3[o + j] = (float)sb[j]; /* L^beta_t */
            ssv[j] = q[j] * (ssv[j] + sv[j]);
            ss1[j] = q[j] * (ss1[j] + s1[j]);
            sv[j] = q[j] * sv[j] + x * vt[j];
            s1[j] = q[j] * s1[j] + x;
            sa[j] = q[j] * sa[j] + alpha;
            sb[j] = q[j] * sb[j] + beta;
        }
    }
    /* Pass 3, right to left: (K alpha)_t = L^a_t + R^a_t + b alpha_t. */
    for (int j = 0; j < nc; j++) sa[j] = sb[j] = 0.0;
    for (int t = T - 1; t >= 0; t--) {
        const float *vt = v + (size_t)t * C + c0;
        size_t o = (size_t)t * WKV_BLOCK, io = (size_t)t * C + c0;
        for (int j = 0; j < nc; j++) {
            double alpha = A0[o + j], beta = A1[o + j];
            double Ka = A2[o + j] + sa[j] + bonus[j] * alpha;
            double Kb = A3[o + j] + sb[j] + bonus[j] * beta;
            double x = X[o + j];
            if (dv) dv[io + j] += (float)(x * Ka);
            if (dk) dk[io + j] += (float)(x * (vt[j] * Ka + Kb));
            sa[j] = q[j] * sa[j] + alpha;
            sb[j] = q[j] * sb[j] + beta;
        }
    }
    for (int j = 0; j < nc; j++) {
        dw_part[j] = -dwacc[j] / T;
        du_part[j] = duacc[j] / T;
    }
}

void mrt_biwkv_backward(const mrt_rt *rt, float *dk, float *dv, float *dw, float *du,
                        const float *dout, const float *k, const float *v, const float *w,
                        const float *u, int B, int T, int C) {
    int nblocks = (C + WKV_BLOCK - 1) / WKV_BLOCK;
    int jobs = B * nblocks;
    /* Per-job partial sums for dw/du, reduced in a fixed order afterwards
     * so the result does not depend on thread scheduling. */
    double *dw_part = calloc((size_t)B * C, sizeof(double));
    double *du_part = calloc((size_t)B * C, sizeof(double));
    if (!dw_part || !du_part) {
        free(dw_part);
        free(du_part);
        return;
    }
#pragma omp parallel num_threads(rt->threads)
    {
        float *scratch = wkv_scratch(T);
#pragma omp for schedule(static)
        for (int job = 0; job < jobs; job++) {
            if (!scratch) continue;
            int b = job / nblocks, c0 = (job % nblocks) * WKV_BLOCK;
            int nc = C - c0 < WKV_BLOCK ? C - c0 : WKV_BLOCK;
            size_t off = (size_t)b * T * C;
            wkv_backward_block(dk ? dk + off : NULL, dv ? dv + off : NULL,
                               dw_part + (size_t)b * C + c0, du_part + (size_t)b * C + c0,
                               dout + off, k + off, v + off, w, u, T, C, c0, nc, scratch);
        }
        free(scratch);
    }
    for (int c = 0; c < C; c++) {
        double sw = 0.0, su = 0.0;
        for (int b = 0; b < B; b++) {
            sw += dw_part[(size_t)b * C + c];
            su += du_part[(size_t)b * C + c];
        }
        if (dw) dw[c] += (float)sw;
        if (du) du[c] += (float)su;
    }
    free(dw_part);
    free(du_part);
}

void mrt_biwkv_forward_naive(float *out, const float *k, const float *v, const float *w,
                             const float *u, int B, int T, int C) {
    for (int b = 0; b < B; b++) {
        size_t off = (size_t)b * T * C;
        for (int c = 0; c < C; c++) {
            for (int t = 0; t < T; t++) {
                double num = 0.0, den = 0.0;
                for (int i = 0; i < T; i++) {
                    double e;
                    if (i == t)
                        e = exp((double)u[c] / T + k[off + (size_t)i * C + c]);
                    else
                        e = exp(-(abs(t - i) - 1) * (double)w[c] / T + k[off + (size_t)i * C + c]);
                    num += e * v[off + (size_t)i * C + c];
                    den += e;
                }
                out[off + (size_t)t * C + c] = (float)(num / den);
            }
        }
    }
}
