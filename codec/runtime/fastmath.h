/*
 * fastmath.h -- an exp() that vectorises.
 *
 * glibc's expf/tanhf are scalar calls, and with them the activations of a
 * small model cost more than its matrix products. mrt_exp_approx is
 * straight-line arithmetic the compiler turns into SIMD code inside
 * `#pragma omp simd` loops: Cody-Waite range reduction x = n ln2 + f with
 * |f| <= ln2/2, a degree-6 Taylor polynomial for e^f (relative error below
 * 2e-7, a few float ulps), and 2^n built in the exponent bits.
 *
 * It is used only on the analysis/synthesis side, never for entropy-coder
 * probabilities (DESIGN.md §5), so its last bits need not match libm.
 */
#ifndef MRT_FASTMATH_H
#define MRT_FASTMATH_H

#include <stdint.h>
#include <string.h>

/* Compile a kernel for AVX-512, AVX2 and baseline x86-64; the loader picks
 * the best the CPU has (GNU ifunc). Never with -mfma: -ffp-contract=off keeps
 * every target's arithmetic the same operation by operation. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MRT_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MRT_SIMD_CLONES
#endif

/* Helpers called from an MRT_SIMD_CLONES kernel must be inlined into it:
 * an out-of-line copy would be compiled for baseline x86-64 only. */
#if defined(__GNUC__) || defined(__clang__)
#define MRT_INLINE static inline __attribute__((always_inline))
#else
#define MRT_INLINE static inline
#endif

#pragma omp declare simd
static inline float mrt_exp_approx(float x) {
    /* Keep 2^n normal: n stays in [-126, 127] (e^88 < FLT_MAX). */
    x = x > 88.0f ? 88.0f : x;
    x = x < -87.3f ? -87.3f : x;
    const float rounder = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float t = x * 1.44269504f + rounder;
    float n = t - rounder;
    float f = x - n * 0.693145752f; /* ln2 split in a high part exact in float... */
    f = f - n * 1.42860677e-6f;     /* ...and the low remainder */
    float p = 1.0f + f * (1.0f + f * (0.5f + f * (1.66666667e-1f +
                  f * (4.16666667e-2f + f * (8.33333333e-3f + f * 1.38888889e-3f)))));
    int32_t e = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &e, sizeof scale);
    return p * scale;
}

/* y = softmax(x) over one row of n values (y may be x): the max is
 * subtracted first so exp never overflows. Inline, so each SIMD clone that
 * calls it gets its own vector code. */
MRT_INLINE void mrt_softmax_row(float *y, const float *x, int n) {
    float m = x[0];
    for (int j = 1; j < n; j++) m = x[j] > m ? x[j] : m;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < n; j++) {
        y[j] = mrt_exp_approx(x[j] - m);
        sum += y[j];
    }
    float inv = 1.0f / sum;
#pragma omp simd
    for (int j = 0; j < n; j++) y[j] *= inv;
}

#endif /* MRT_FASTMATH_H */
