/*
 * attention.c -- multi-head self-attention inside windows.
 *
 * Each (window, head) pair is an independent small problem (n = 66 tokens
 * for a 64-patch window with 2 latent tokens, head size 16), far too small
 * for BLIS's own threading. So the pairs are spread over threads and each
 * runs single-threaded BLIS on strided views of the packed qkv rows: no
 * copies of Q, K or V are made.
 */
#include <math.h>
#include <stdlib.h>

#include "runtime.h"

/* Each (window, head) job already runs on its own thread. */
static const mrt_rt serial = {1};

void mrt_attention_forward(const mrt_rt *rt, float *out, float *att, const float *qkv, int nwin,
                           int n, int D, int heads) {
    int hd = D / heads, ld = 3 * D;
    float scale = 1.0f / sqrtf((float)hd);
    int jobs = nwin * heads;
#pragma omp parallel for schedule(static) num_threads(rt->threads)
    for (int job = 0; job < jobs; job++) {
        int w = job / heads, h = job % heads;
        const float *Q = qkv + (size_t)w * n * ld + h * hd;
        const float *K = Q + D, *V = Q + 2 * D;
        float *P = att + (size_t)job * n * n;
        /* S = scale * Q K^T, then row softmax in place. */
        mrt_sgemm_1t(false, true, n, n, hd, scale, Q, ld, K, ld, 0.0f, P, n);
        mrt_softmax_forward(&serial, P, P, n, n);
        mrt_sgemm_1t(false, false, n, hd, n, 1.0f, P, n, V, ld, 0.0f,
                     out + (size_t)w * n * D + h * hd, D);
    }
}

void mrt_attention_backward(const mrt_rt *rt, float *dqkv, const float *dout, const float *qkv,
                            const float *att, int nwin, int n, int D, int heads) {
    int hd = D / heads, ld = 3 * D;
    float scale = 1.0f / sqrtf((float)hd);
    int jobs = nwin * heads;
#pragma omp parallel num_threads(rt->threads)
    {
        float *dP = malloc(sizeof(float) * 2 * (size_t)n * n);
#pragma omp for schedule(static)
        for (int job = 0; job < jobs; job++) {
            if (!dP) continue; /* out of memory: gradients stay untouched */
            float *dS = dP + (size_t)n * n;
            int w = job / heads, h = job % heads;
            size_t row0 = (size_t)w * n;
            const float *Q = qkv + row0 * ld + h * hd, *K = Q + D, *V = Q + 2 * D;
            float *dQ = dqkv + row0 * ld + h * hd, *dK = dQ + D, *dV = dQ + 2 * D;
            const float *dO = dout + row0 * D + h * hd;
            const float *P = att + (size_t)job * n * n;
            /* dP = dO V^T;  dV += P^T dO */
            mrt_sgemm_1t(false, true, n, n, hd, 1.0f, dO, D, V, ld, 0.0f, dP, n);
            mrt_sgemm_1t(true, false, n, hd, n, 1.0f, P, n, dO, D, 1.0f, dV, ld);
            /* dS = softmax'(dP) (the 1/sqrt(hd) scale is folded into the GEMMs) */
            for (size_t i = 0; i < (size_t)n * n; i++) dS[i] = 0.0f;
            mrt_softmax_backward(&serial, dS, dP, P, n, n);
            /* dQ += scale dS K;  dK += scale dS^T Q */
            mrt_sgemm_1t(false, false, n, hd, n, scale, dS, n, K, ld, 1.0f, dQ, ld);
            mrt_sgemm_1t(true, false, n, hd, n, scale, dS, n, Q, ld, 1.0f, dK, ld);
        }
        free(dP);
    }
}

void mrt_attention_forward_naive(float *out, const float *qkv, int nwin, int n, int D,
                                 int heads) {
    int hd = D / heads, ld = 3 * D;
    double scale = 1.0 / sqrt((double)hd);
    double *s = malloc(sizeof(double) * n);
    if (!s) return;
    for (int w = 0; w < nwin; w++)
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < n; i++) {
                const float *qi = qkv + ((size_t)w * n + i) * ld + h * hd;
                double mx = -INFINITY, sum = 0.0;
                for (int j = 0; j < n; j++) {
                    const float *kj = qkv + ((size_t)w * n + j) * ld + D + h * hd;
                    double dot = 0.0;
                    for (int d = 0; d < hd; d++) dot += (double)qi[d] * kj[d];
                    s[j] = dot * scale;
                    if (s[j] > mx) mx = s[j];
                }
                for (int j = 0; j < n; j++) {
                    s[j] = exp(s[j] - mx);
                    sum += s[j];
                }
                for (int d = 0; d < hd; d++) {
                    double acc = 0.0;
                    for (int j = 0; j < n; j++)
                        acc += s[j] / sum * qkv[((size_t)w * n + j) * ld + 2 * D + h * hd + d];
                    out[((size_t)w * n + i) * D + h * hd + d] = (float)acc;
                }
            }
    free(s);
}
