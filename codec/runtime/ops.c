/*
 * ops.c -- linear layers, layer norm, activations, softmax, element-wise
 * arithmetic and the RWKV token shift/mix. Each forward beside its backward.
 */
#include <math.h>
#include <string.h>
#include <omp.h>

#include "fastmath.h"
#include "runtime.h"

/* ---------------------------------------------------------------- linear */

void mrt_linear_forward(const mrt_rt *rt, float *out, const float *in, const float *weight,
                        const float *bias, int N, int Cin, int Cout) {
    if (bias) {
        for (int i = 0; i < N; i++) memcpy(out + (size_t)i * Cout, bias, sizeof(float) * Cout);
    }
    /* out(N,Cout) = in(N,Cin) . W(Cout,Cin)^T */
    mrt_sgemm(rt, false, true, N, Cout, Cin, 1.0f, in, Cin, weight, Cin, bias ? 1.0f : 0.0f, out,
              Cout);
}

void mrt_linear_backward(const mrt_rt *rt, float *din, float *dweight, float *dbias,
                         const float *dout, const float *in, const float *weight, int N, int Cin,
                         int Cout) {
    if (din) /* din(N,Cin) += dout(N,Cout) . W(Cout,Cin) */
        mrt_sgemm(rt, false, false, N, Cin, Cout, 1.0f, dout, Cout, weight, Cin, 1.0f, din, Cin);
    if (dweight) /* dW(Cout,Cin) += dout^T(Cout,N) . in(N,Cin) */
        mrt_sgemm(rt, true, false, Cout, Cin, N, 1.0f, dout, Cout, in, Cin, 1.0f, dweight, Cin);
    if (dbias) {
        for (int i = 0; i < N; i++) {
            const float *d = dout + (size_t)i * Cout;
            for (int o = 0; o < Cout; o++) dbias[o] += d[o];
        }
    }
}

/* Element-wise and row-wise loops split over threads only when there is
 * enough work to pay for waking them. */
#define PAR_MIN_ELEMS 32768

/* Each element-wise op is a kernel over a contiguous range, compiled for
 * AVX-512, AVX2 and baseline x86-64 (MRT_SIMD_CLONES picks at load time),
 * and a front that splits the range [0, n) over threads when the work
 * (elements touched) is worth it. */
#define FOR_CHUNKS(rt, n, work, kernel_call)                                            \
    do {                                                                                \
        int nthreads_ = (work) >= PAR_MIN_ELEMS ? (rt)->threads : 1;                    \
        _Pragma("omp parallel num_threads(nthreads_)") {                                \
            size_t parts_ = (size_t)omp_get_num_threads(), me_ = (size_t)omp_get_thread_num(); \
            size_t b = (n) * me_ / parts_, e = (n) * (me_ + 1) / parts_;                \
            if (e > b) kernel_call;                                                     \
        }                                                                               \
    } while (0)


/* ------------------------------------------------------------ layer norm */

/* Rows [0, rows) of a layer norm. The sums use `omp simd` reductions: each
 * clone adds in its own lane order, so the last bits of a result depend on
 * the CPU's vector width -- fine here (analysis/synthesis side), and
 * identical for any thread count. */
MRT_SIMD_CLONES static void layernorm_rows(float *out, float *mean, float *rstd, const float *in,
                                           const float *gamma, const float *beta, size_t rows,
                                           int C) {
    for (size_t i = 0; i < rows; i++) {
        const float *x = in + i * C;
        float *y = out + i * C;
        /* Two passes (mean, then variance about it) stay accurate when the
         * mean is large compared with the spread. */
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int c = 0; c < C; c++) s += x[c];
        float m = s / C;
        float v = 0.0f;
#pragma omp simd reduction(+ : v)
        for (int c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
        float r = 1.0f / sqrtf(v / C + MRT_LN_EPS);
#pragma omp simd
        for (int c = 0; c < C; c++) y[c] = (x[c] - m) * r * gamma[c] + beta[c];
        if (mean) mean[i] = m;
        if (rstd) rstd[i] = r;
    }
}

/* dx = r * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * gamma */
MRT_SIMD_CLONES static void layernorm_bwd_rows(float *din, const float *dout, const float *in,
                                               const float *gamma, const float *mean,
                                               const float *rstd, size_t rows, int C) {
    for (size_t i = 0; i < rows; i++) {
        const float *x = in + i * C, *dy = dout + i * C;
        float m = mean[i], r = rstd[i];
        float sum_dxhat = 0.0f, sum_dxhat_xhat = 0.0f;
#pragma omp simd reduction(+ : sum_dxhat, sum_dxhat_xhat)
        for (int c = 0; c < C; c++) {
            float dxhat = dy[c] * gamma[c];
            sum_dxhat += dxhat;
            sum_dxhat_xhat += dxhat * (x[c] - m) * r;
        }
        float mean_dxhat = sum_dxhat / C, mean_dxhat_xhat = sum_dxhat_xhat / C;
        float *dx = din + i * C;
#pragma omp simd
        for (int c = 0; c < C; c++) {
            float xhat = (x[c] - m) * r;
            dx[c] += r * (dy[c] * gamma[c] - mean_dxhat - xhat * mean_dxhat_xhat);
        }
    }
}

void mrt_layernorm_forward(const mrt_rt *rt, float *out, float *mean, float *rstd,
                           const float *in, const float *gamma, const float *beta, int N, int C) {
    size_t rows = (size_t)N;
    FOR_CHUNKS(rt, rows, rows * C,
               layernorm_rows(out + b * C, mean ? mean + b : NULL, rstd ? rstd + b : NULL,
                              in + b * C, gamma, beta, e - b, C));
}

void mrt_layernorm_backward(const mrt_rt *rt, float *din, float *dgamma, float *dbeta,
                            const float *dout, const float *in, const float *gamma,
                            const float *mean, const float *rstd, int N, int C) {
    size_t rows = (size_t)N;
    if (din)
        FOR_CHUNKS(rt, rows, rows * C,
                   layernorm_bwd_rows(din + b * C, dout + b * C, in + b * C, gamma, mean + b,
                                      rstd + b, e - b, C));
    /* gamma/beta gradients sum over rows: done serially in row order so the
     * result is the same for any thread count. */
    if (dgamma || dbeta) {
        for (int i = 0; i < N; i++) {
            const float *x = in + (size_t)i * C, *dy = dout + (size_t)i * C;
            float m = mean[i], r = rstd[i];
            if (dgamma)
                for (int c = 0; c < C; c++) dgamma[c] += dy[c] * (x[c] - m) * r;
            if (dbeta)
                for (int c = 0; c < C; c++) dbeta[c] += dy[c];
        }
    }
}

/* ----------------------------------------------------------- activations */

#define GELU_SCALE 0.7978845608028654f /* sqrt(2/pi) */

/* tanh-GELU written as x * sigmoid(2z), z = sqrt(2/pi) (x + 0.044715 x^3):
 * 0.5 (1 + tanh z) = sigmoid(2z), so one exp replaces a tanh call. */
MRT_SIMD_CLONES static void gelu_fwd_kernel(float *out, const float *in, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float x = in[i];
        float z = GELU_SCALE * (x + 0.044715f * x * x * x);
        out[i] = x / (1.0f + mrt_exp_approx(-2.0f * z));
    }
}

MRT_SIMD_CLONES static void gelu_bwd_kernel(float *din, const float *dout, const float *in,
                                            size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float x = in[i];
        float z = GELU_SCALE * (x + 0.044715f * x * x * x);
        float s = 1.0f / (1.0f + mrt_exp_approx(-2.0f * z)); /* sigmoid(2z) */
        /* d/dx [x s(2z)] = s + x * 2 s (1 - s) dz/dx */
        float dz = GELU_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
        din[i] += dout[i] * (s + 2.0f * x * s * (1.0f - s) * dz);
    }
}

MRT_SIMD_CLONES static void relu2_fwd_kernel(float *out, const float *in, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float r = in[i] > 0.0f ? in[i] : 0.0f;
        out[i] = r * r;
    }
}

MRT_SIMD_CLONES static void relu2_bwd_kernel(float *din, const float *dout, const float *in,
                                             size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) din[i] += in[i] > 0.0f ? 2.0f * in[i] * dout[i] : 0.0f;
}

MRT_SIMD_CLONES static void relu_fwd_kernel(float *out, const float *in, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

MRT_SIMD_CLONES static void relu_bwd_kernel(float *din, const float *dout, const float *in,
                                            size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) din[i] += in[i] > 0.0f ? dout[i] : 0.0f;
}

/* mrt_exp_approx clamps its argument, so 1/(1+e^-x) cannot overflow. */
MRT_SIMD_CLONES static void sigmoid_fwd_kernel(float *out, const float *in, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) out[i] = 1.0f / (1.0f + mrt_exp_approx(-in[i]));
}

MRT_SIMD_CLONES static void sigmoid_bwd_kernel(float *din, const float *dout, const float *out,
                                               size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) din[i] += dout[i] * out[i] * (1.0f - out[i]);
}

void mrt_gelu_forward(const mrt_rt *rt, float *out, const float *in, size_t n) {
    FOR_CHUNKS(rt, n, n, gelu_fwd_kernel(out + b, in + b, e - b));
}

void mrt_gelu_backward(const mrt_rt *rt, float *din, const float *dout, const float *in,
                       size_t n) {
    FOR_CHUNKS(rt, n, n, gelu_bwd_kernel(din + b, dout + b, in + b, e - b));
}

void mrt_relu2_forward(const mrt_rt *rt, float *out, const float *in, size_t n) {
    FOR_CHUNKS(rt, n, n, relu2_fwd_kernel(out + b, in + b, e - b));
}

void mrt_relu2_backward(const mrt_rt *rt, float *din, const float *dout, const float *in,
                        size_t n) {
    FOR_CHUNKS(rt, n, n, relu2_bwd_kernel(din + b, dout + b, in + b, e - b));
}

void mrt_relu_forward(const mrt_rt *rt, float *out, const float *in, size_t n) {
    FOR_CHUNKS(rt, n, n, relu_fwd_kernel(out + b, in + b, e - b));
}

void mrt_relu_backward(const mrt_rt *rt, float *din, const float *dout, const float *in,
                       size_t n) {
    FOR_CHUNKS(rt, n, n, relu_bwd_kernel(din + b, dout + b, in + b, e - b));
}

void mrt_sigmoid_forward(const mrt_rt *rt, float *out, const float *in, size_t n) {
    FOR_CHUNKS(rt, n, n, sigmoid_fwd_kernel(out + b, in + b, e - b));
}

void mrt_sigmoid_backward(const mrt_rt *rt, float *din, const float *dout, const float *out,
                          size_t n) {
    FOR_CHUNKS(rt, n, n, sigmoid_bwd_kernel(din + b, dout + b, out + b, e - b));
}

/* --------------------------------------------------------------- softmax */

MRT_SIMD_CLONES static void softmax_rows(float *out, const float *in, size_t rows, int C) {
    for (size_t i = 0; i < rows; i++) mrt_softmax_row(out + i * C, in + i * C, C);
}

MRT_SIMD_CLONES static void softmax_bwd_rows(float *din, const float *dout, const float *out,
                                             size_t rows, int C) {
    for (size_t i = 0; i < rows; i++) {
        const float *y = out + i * C, *dy = dout + i * C;
        float *dx = din + i * C;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int c = 0; c < C; c++) dot += dy[c] * y[c];
#pragma omp simd
        for (int c = 0; c < C; c++) dx[c] += y[c] * (dy[c] - dot);
    }
}

void mrt_softmax_forward(const mrt_rt *rt, float *out, const float *in, int N, int C) {
    size_t rows = (size_t)N;
    if (rows * C < PAR_MIN_ELEMS) { /* also the path attention takes per head */
        softmax_rows(out, in, rows, C);
        return;
    }
    FOR_CHUNKS(rt, rows, rows * C, softmax_rows(out + b * C, in + b * C, e - b, C));
}

void mrt_softmax_backward(const mrt_rt *rt, float *din, const float *dout, const float *out,
                          int N, int C) {
    size_t rows = (size_t)N;
    if (rows * C < PAR_MIN_ELEMS) {
        softmax_bwd_rows(din, dout, out, rows, C);
        return;
    }
    FOR_CHUNKS(rt, rows, rows * C,
               softmax_bwd_rows(din + b * C, dout + b * C, out + b * C, e - b, C));
}

/* ------------------------------------------------------------ arithmetic */

void mrt_add(float *out, const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void mrt_add_inplace(float *acc, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) acc[i] += x[i];
}

void mrt_mul_forward(float *out, const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] * b[i];
}

void mrt_mul_backward(float *da, float *db, const float *dout, const float *a, const float *b,
                      size_t n) {
    if (da)
        for (size_t i = 0; i < n; i++) da[i] += dout[i] * b[i];
    if (db)
        for (size_t i = 0; i < n; i++) db[i] += dout[i] * a[i];
}

/* ----------------------------------------------------- Q-Shift, token mix */

/* Which neighbour quarter q of the channels reads: (dy, dx). */
static const int qshift_dy[4] = {0, 0, -1, 1};
static const int qshift_dx[4] = {-1, 1, 0, 0};

/* Q-Shift is a pure permutation-with-zeros, so forward and backward share
 * one loop: backward moves gradients along the same edges in reverse. */
static void qshift(float *dst, const float *src, int B, int Hg, int Wg, int C, bool reverse) {
    for (int q = 0; q < 4; q++) {
        int c0 = (q * C + 3) / 4, c1 = ((q + 1) * C + 3) / 4; /* channels with 4c/C == q */
        int dy = qshift_dy[q], dx = qshift_dx[q];
        if (c1 <= c0) continue;
        for (int b = 0; b < B; b++) {
            for (int y = 0; y < Hg; y++) {
                int sy = y + dy;
                for (int x = 0; x < Wg; x++) {
                    int sx = x + dx;
                    size_t here = (((size_t)b * Hg + y) * Wg + x) * C;
                    bool inside = sy >= 0 && sy < Hg && sx >= 0 && sx < Wg;
                    size_t there = inside ? (((size_t)b * Hg + sy) * Wg + sx) * C : 0;
                    if (!reverse) {
                        for (int c = c0; c < c1; c++) dst[here + c] = inside ? src[there + c] : 0.0f;
                    } else if (inside) {
                        for (int c = c0; c < c1; c++) dst[there + c] += src[here + c];
                    }
                }
            }
        }
    }
}

void mrt_qshift_forward(float *out, const float *in, int B, int Hg, int Wg, int C) {
    qshift(out, in, B, Hg, Wg, C, false);
}

void mrt_qshift_backward(float *din, const float *dout, int B, int Hg, int Wg, int C) {
    qshift(din, dout, B, Hg, Wg, C, true);
}

void mrt_tokenmix_forward(const mrt_rt *rt, float *out, const float *x, const float *xs,
                          const float *mu, int N, int C) {
#pragma omp parallel for schedule(static) num_threads(rt->threads) \
    if ((size_t)N * C >= PAR_MIN_ELEMS)
    for (int i = 0; i < N; i++) {
        size_t o = (size_t)i * C;
        for (int c = 0; c < C; c++) out[o + c] = mu[c] * x[o + c] + (1.0f - mu[c]) * xs[o + c];
    }
}

void mrt_tokenmix_backward(const mrt_rt *rt, float *dx, float *dxs, float *dmu,
                           const float *dout, const float *x, const float *xs, const float *mu,
                           int N, int C) {
    if (dx || dxs) {
#pragma omp parallel for schedule(static) num_threads(rt->threads) \
    if ((size_t)N * C >= PAR_MIN_ELEMS)
        for (int i = 0; i < N; i++) {
            size_t o = (size_t)i * C;
            for (int c = 0; c < C; c++) {
                float d = dout[o + c];
                if (dx) dx[o + c] += mu[c] * d;
                if (dxs) dxs[o + c] += (1.0f - mu[c]) * d;
            }
        }
    }
    /* a sum over rows: serial, in row order, for thread-count independence */
    if (dmu) {
        for (int i = 0; i < N; i++) {
            size_t o = (size_t)i * C;
            for (int c = 0; c < C; c++) dmu[c] += (x[o + c] - xs[o + c]) * dout[o + c];
        }
    }
}
