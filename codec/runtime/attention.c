/*
 * attention.c -- multi-head self-attention inside windows.
 *
 * Each (window, head) pair is an independent small problem: n = 66 tokens
 * for a 64-patch window with 2 latent tokens, head size hd = 16. Such
 * products are far too small for BLIS (packing dominates: 15-20 % of the
 * sgemm peak), so each pair is computed by the plain loops below, compiled
 * for AVX-512/AVX2/baseline, with the pairs spread over threads:
 *   - score rows S[i][:] = scale * sum_d Q[i][d] K^T[d][:], vectorised over j
 *     on a transposed copy of K (hd x n, in L1);
 *   - weighted sums O[i][:] = sum_j P[i][j] V[j][:], vectorised over d.
 * The backward has the same two shapes. Every sum runs in a fixed order, so
 * results do not depend on the thread count.
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fastmath.h"
#include "runtime.h"

/* The inner products below are written with GCC/clang vector extensions:
 * a vf8 lives in one ymm register in the AVX-512 and AVX2 clones (two xmm
 * otherwise). Plain arrays of accumulators end up in memory, and
 * `row[j] += ...` over memory chains every step through a store and a
 * reload. Several independent accumulators hide the adder's latency; they
 * are summed in a fixed order, so results do not depend on the machine
 * beyond the clone's rounding (none: no FMA contraction).
 *
 * 8 lanes, not 16: GCC lowers 64-byte vectors in the AVX2 clone through
 * the stack (spills of every half), which left attention at 4-5 % of the
 * sgemm peak on AVX2-only CPUs; with 8 lanes bench_runtime measured 3-5x
 * faster forward and backward there (bench/README.md). Every output
 * element is still summed in the order the 16-lane code used (blocks of
 * 64 score columns, each summed over d in order, then the rest over even
 * and odd d; weighted sums over j in four interleaved partial sums), for
 * any window and any head size that is a multiple of 16, such as the
 * shipped models' 16: their decoded pixels and encoded bitstreams are
 * unchanged. On Zen 4, which executes 512-bit operations as two 256-bit
 * halves, the narrower vectors cost nothing. */
#define LANES 8
#define BLOCK (8 * LANES) /* combine_rows' column block: 64, as when vectors had 16 lanes */
#define ROW_PAD 16        /* score rows padded to 16 columns, as then: the same blocks for any n */
typedef float vf8 __attribute__((vector_size(32), aligned(4))); /* unaligned-safe */

/* Macros, not functions: a vf8 passed by value would have a different ABI
 * in each clone. */
#define load8(p) (*(const vf8 *)(p))
#define store8(p, v) (*(vf8 *)(p) = (v))

static int round_up(int n, int m) { return (n + m - 1) / m * m; }

/* dst[0..n) = sum_d coef[d] * Mt[d][0..n), Mt rows of npad (a multiple of
 * ROW_PAD) floats, zero past n; dst has room for npad floats. */
MRT_INLINE void combine_rows(float *dst, const float *coef, const float *Mt, int hd, int npad) {
    int j0 = 0;
    /* blocks of 64 columns (BLOCK), each column summed over d in order */
    for (; j0 + BLOCK <= npad; j0 += BLOCK) {
        vf8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0}, a7 = {0};
        for (int d = 0; d < hd; d++) {
            const float *m = Mt + (size_t)d * npad + j0;
            float c = coef[d];
            a0 += c * load8(m);
            a1 += c * load8(m + LANES);
            a2 += c * load8(m + 2 * LANES);
            a3 += c * load8(m + 3 * LANES);
            a4 += c * load8(m + 4 * LANES);
            a5 += c * load8(m + 5 * LANES);
            a6 += c * load8(m + 6 * LANES);
            a7 += c * load8(m + 7 * LANES);
        }
        store8(dst + j0, a0);
        store8(dst + j0 + LANES, a1);
        store8(dst + j0 + 2 * LANES, a2);
        store8(dst + j0 + 3 * LANES, a3);
        store8(dst + j0 + 4 * LANES, a4);
        store8(dst + j0 + 5 * LANES, a5);
        store8(dst + j0 + 6 * LANES, a6);
        store8(dst + j0 + 7 * LANES, a7);
    }
    /* the rest, LANES columns at a time, over even and odd d */
    for (; j0 < npad; j0 += LANES) {
        vf8 a0 = {0}, a1 = {0};
        int d = 0;
        for (; d + 2 <= hd; d += 2) {
            a0 += coef[d] * load8(Mt + (size_t)d * npad + j0);
            a1 += coef[d + 1] * load8(Mt + (size_t)(d + 1) * npad + j0);
        }
        if (d < hd) a0 += coef[d] * load8(Mt + (size_t)d * npad + j0);
        store8(dst + j0, a0 + a1);
    }
}

/* out[0..hd) (+)= sum_j coef[j * cstride] * M[j][0..hd), M rows of stride ld.
 * Rows j go four at a time into four accumulators; a last partial block of
 * columns (hd not a multiple of LANES) is done by scalar loops that never
 * read past column hd. */
MRT_INLINE void weighted_rows(float *out, bool accumulate, const float *coef, int cstride,
                              const float *M, int ld, int n, int hd) {
    int d0 = 0;
    for (; d0 + LANES <= hd; d0 += LANES) {
        vf8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        int j = 0;
        for (; j + 4 <= n; j += 4) {
            const float *m = M + (size_t)j * ld + d0;
            a0 += coef[(size_t)j * cstride] * load8(m);
            a1 += coef[(size_t)(j + 1) * cstride] * load8(m + ld);
            a2 += coef[(size_t)(j + 2) * cstride] * load8(m + 2 * (size_t)ld);
            a3 += coef[(size_t)(j + 3) * cstride] * load8(m + 3 * (size_t)ld);
        }
        for (; j < n; j++) a0 += coef[(size_t)j * cstride] * load8(M + (size_t)j * ld + d0);
        vf8 sum = (a0 + a1) + (a2 + a3);
        store8(out + d0, accumulate ? load8(out + d0) + sum : sum);
    }
    for (int d = d0; d < hd; d++) {
        float sum = 0.0f;
        for (int j = 0; j < n; j++) sum += coef[(size_t)j * cstride] * M[(size_t)j * ld + d];
        out[d] = accumulate ? out[d] + sum : sum;
    }
}

/* M^T into Mt (hd x npad), zero-padded columns. */
MRT_INLINE void transpose_rows(float *Mt, const float *M, int ld, int n, int npad, int hd) {
    for (int d = 0; d < hd; d++) {
        for (int j = 0; j < n; j++) Mt[(size_t)d * npad + j] = M[(size_t)j * ld + d];
        for (int j = n; j < npad; j++) Mt[(size_t)d * npad + j] = 0.0f;
    }
}

/* Scratch floats per thread: the transposed K or V (hd x npad), a score row
 * (npad), the scaled query (hd) and, for backward, dS (n x n). */
static size_t head_scratch(int n, int hd) {
    size_t npad = (size_t)round_up(n, ROW_PAD);
    return (size_t)hd * npad + npad + hd + (size_t)n * n;
}

/* One (window, head): Q, K, V rows have stride ld, O rows stride ldo, P is
 * n x n. */
MRT_SIMD_CLONES static void head_forward(float *O, int ldo, float *P, const float *Q,
                                         const float *K, const float *V, int ld, int n, int hd,
                                         float scale, float *scratch) {
    int npad = round_up(n, ROW_PAD);
    float *Kt = scratch, *row = Kt + (size_t)hd * npad, *qs = row + npad;
    transpose_rows(Kt, K, ld, n, npad, hd);
    for (int i = 0; i < n; i++) {
        float *s = P + (size_t)i * n;
        for (int d = 0; d < hd; d++) qs[d] = Q[(size_t)i * ld + d] * scale;
        combine_rows(row, qs, Kt, hd, npad);
        memcpy(s, row, sizeof(float) * n);
        mrt_softmax_row(s, s, n);
        weighted_rows(O + (size_t)i * ldo, false, s, 1, V, ld, n, hd);
    }
}

/* Backward of one (window, head); dQ/dK/dV rows have stride ld and are
 * accumulated into. */
MRT_SIMD_CLONES static void head_backward(float *dQ, float *dK, float *dV, const float *dO,
                                          int ldo, const float *P, const float *Q,
                                          const float *K, const float *V, int ld, int n, int hd,
                                          float scale, float *scratch) {
    int npad = round_up(n, ROW_PAD);
    float *Vt = scratch, *row = Vt + (size_t)hd * npad, *dS = row + npad + hd;
    transpose_rows(Vt, V, ld, n, npad, hd);
    for (int i = 0; i < n; i++) {
        const float *p = P + (size_t)i * n;
        float *ds = dS + (size_t)i * n;
        combine_rows(row, dO + (size_t)i * ldo, Vt, hd, npad); /* dP = dO V^T */
        memcpy(ds, row, sizeof(float) * n);
        /* softmax backward, with the score scale: dS = scale P (dP - <dP, P>) */
        float dot = 0.0f;
        for (int j = 0; j < n; j++) dot += ds[j] * p[j];
#pragma omp simd
        for (int j = 0; j < n; j++) ds[j] = p[j] * (ds[j] - dot) * scale;
        weighted_rows(dQ + (size_t)i * ld, true, ds, 1, K, ld, n, hd); /* dQ += dS K */
    }
    for (int j = 0; j < n; j++) {
        weighted_rows(dV + (size_t)j * ld, true, P + j, n, dO, ldo, n, hd); /* dV += P^T dO */
        weighted_rows(dK + (size_t)j * ld, true, dS + j, n, Q, ld, n, hd); /* dK += dS^T Q */
    }
}

void mrt_attention_forward(const mrt_rt *rt, float *out, float *att, const float *qkv, int nwin,
                           int n, int D, int heads) {
    int hd = D / heads, ld = 3 * D;
    float scale = 1.0f / sqrtf((float)hd);
    int jobs = nwin * heads;
#pragma omp parallel num_threads(rt->threads)
    {
        float *scratch = malloc(sizeof(float) * head_scratch(n, hd));
#pragma omp for schedule(static)
        for (int job = 0; job < jobs; job++) {
            if (!scratch) continue; /* out of memory: outputs stay unwritten */
            int w = job / heads, h = job % heads;
            const float *Q = qkv + (size_t)w * n * ld + h * hd;
            head_forward(out + (size_t)w * n * D + h * hd, D, att + (size_t)job * n * n, Q,
                         Q + D, Q + 2 * D, ld, n, hd, scale, scratch);
        }
        free(scratch);
    }
}

void mrt_attention_backward(const mrt_rt *rt, float *dqkv, const float *dout, const float *qkv,
                            const float *att, int nwin, int n, int D, int heads) {
    int hd = D / heads, ld = 3 * D;
    float scale = 1.0f / sqrtf((float)hd);
    int jobs = nwin * heads;
#pragma omp parallel num_threads(rt->threads)
    {
        float *scratch = malloc(sizeof(float) * head_scratch(n, hd));
#pragma omp for schedule(static)
        for (int job = 0; job < jobs; job++) {
            if (!scratch) continue; /* out of memory: gradients stay untouched */
            int w = job / heads, h = job % heads;
            size_t row0 = (size_t)w * n;
            const float *Q = qkv + row0 * ld + h * hd;
            float *dQ = dqkv + row0 * ld + h * hd;
            head_backward(dQ, dQ + D, dQ + 2 * D, dout + row0 * D + h * hd, D,
                          att + (size_t)job * n * n, Q, Q + D, Q + 2 * D, ld, n, hd, scale, scratch);
        }
        free(scratch);
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
