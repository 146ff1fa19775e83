/*
 * gemm.c -- the one file that calls BLIS.
 *
 * Every matrix product in the runtime goes through mrt_sgemm. Each BLIS call
 * carries its own rntm_t, so we never touch BLIS's global thread setting and
 * a host process (sqlite3, a Python program) keeps whatever it configured.
 *
 * Threading. BLIS's own threading is excellent on big square products but
 * loses badly on the tall, skinny shapes a small model is made of: on the
 * 2-core EPYC machines (DESIGN.md §10) a 4096x64 . 64x64 product runs at 93
 * GFLOP/s on one thread and 39 on two. So for shapes where one dimension is
 * long and the others short we cut the long dimension into one block per
 * thread and run single-threaded BLIS on each block; a product that is long
 * only along K (a weight gradient) is split along K into per-thread partial
 * sums that are added afterwards. Only products that are large in M, N and K
 * use BLIS's internal threading.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include <blis.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif

#include "runtime.h"

/* Kernel choice. Debian's BLIS 0.9.0 picks its AVX-512 ("skx") kernels
 * only on Intel CPUs, so on AMD's AVX-512 CPUs (Zen 4 and later) it falls
 * back to its plain C "generic" kernels: on the 2-core Zen 4 machines of
 * DESIGN.md §10 that is 84 GFLOP/s of sgemm against 388 with skx, and
 * decoding a 768x512 photo takes 0.35 s instead of 0.24 s.
 *
 * BLIS reads another choice only from the environment variable
 * BLIS_ARCH_TYPE, once, when it initialises. So before this process's first
 * call into BLIS we set it to the skx family, when all of these hold:
 *   - the user has not set BLIS_ARCH_TYPE (any value of theirs wins);
 *   - the BLIS we are built against has the skx kernels (BLIS_CONFIG_SKX;
 *     asking a BLIS without them for them aborts the process);
 *   - the CPU is AMD's and has the AVX-512 subsets those kernels use
 *     (F, DQ, BW, VL), and the OS saves the AVX-512 registers (XCR0).
 * Intel CPUs keep BLIS's own choice (it weighs their FMA units). If the host
 * process has already initialised BLIS, the variable changes nothing.
 * The choice never changes a bitstream: nothing the entropy coder uses is
 * computed by BLIS (DESIGN.md §5; tests/determinism.sh runs every family). */
#if defined(BLIS_CONFIG_SKX) && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
static bool cpu_is_amd_with_avx512(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d) || a < 7) return false;
    /* "AuthenticAMD" in EBX, EDX, ECX */
    if (b != 0x68747541u || d != 0x69746e65u || c != 0x444d4163u) return false;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return false; /* OSXSAVE */
    unsigned xcr0_lo, xcr0_hi;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    /* SSE, AVX, opmask, ZMM0-15 upper halves, ZMM16-31 */
    if ((xcr0_lo & 0xe6u) != 0xe6u) return false;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    const unsigned f = 1u << 16, dq = 1u << 17, bw = 1u << 30, vl = 1u << 31;
    return (b & (f | dq | bw | vl)) == (f | dq | bw | vl);
}

static void choose_blis_kernels(void) {
    if (getenv("BLIS_ARCH_TYPE") || !cpu_is_amd_with_avx512()) return;
    char id[16];
    snprintf(id, sizeof id, "%d", (int)BLIS_ARCH_SKX);
    setenv("BLIS_ARCH_TYPE", id, 0);
}
#else
static void choose_blis_kernels(void) {}
#endif

static pthread_once_t blis_kernels_once = PTHREAD_ONCE_INIT;

/* Every call into BLIS goes through here first. */
static void blis_prepare(void) { pthread_once(&blis_kernels_once, choose_blis_kernels); }

/* C = alpha op(A) op(B) + beta C through BLIS with nthreads (row-major). */
static void blis_gemm(int nthreads, bool ta, bool tb, int M, int N, int K, float alpha,
                      const float *A, int lda, const float *B, int ldb, float beta, float *C,
                      int ldc) {
    if (M <= 0 || N <= 0) return;
    blis_prepare();
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(nthreads, &rntm);
    /* BLIS 0.9.0's small/unpacked ("sup") kernels read past the end of their
     * operands for many small shapes (flame/blis#821, fixed after 0.9.0):
     * a matrix that ends just before an unmapped page -- a tensor at the
     * end of an mmap-ed weights file -- crashes the process. The packed
     * path has no such reads (tests/test_conv.c checks with guard pages). */
    bli_rntm_disable_l3_sup(&rntm);
    /* Row-major storage: row stride = leading dimension, column stride 1.
     * BLIS applies trans to the matrix as described by its strides. */
    bli_sgemm_ex(ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
                 M, N, K, &alpha, (float *)A, lda, 1, (float *)B, ldb, 1, &beta, C, ldc, 1,
                 NULL, &rntm);
}

void mrt_sgemm_1t(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc) {
    blis_gemm(1, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* Address of row r of op(A) when A is stored row-major with stride lda. */
static const float *op_rows(const float *A, bool trans, int r, int lda) {
    return trans ? A + r : A + (size_t)r * lda;
}

/* Block boundaries: [begin, end) of part `i` of `n` cut into `parts`,
 * rounded to multiples of `align` so SIMD kernels see whole panels. */
static void split_range(int n, int parts, int i, int align, int *begin, int *end) {
    int units = (n + align - 1) / align;
    int b = (int)((long)units * i / parts) * align;
    int e = (int)((long)units * (i + 1) / parts) * align;
    *begin = b < n ? b : n;
    *end = e < n ? e : n;
}

void mrt_sgemm(const mrt_rt *rt, bool ta, bool tb, int M, int N, int K, float alpha,
               const float *A, int lda, const float *B, int ldb, float beta, float *C,
               int ldc) {
    int nt = rt ? rt->threads : 1;
    double flops = 2.0 * M * N * K;
    if (M <= 0 || N <= 0) return;
    /* Below ~1 MFLOP thread start-up costs more than it saves. */
    if (nt <= 1 || flops < 1.0e6) {
        blis_gemm(1, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    const int big = 512;
    if (M >= big && N >= big && K >= big) {
        blis_gemm(nt, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    if (M >= N && M >= 32 * nt) {
        /* Tall: rows of C (and of op(A)) split across threads. */
#pragma omp parallel num_threads(nt)
        {
            int b, e;
            split_range(M, omp_get_num_threads(), omp_get_thread_num(), 16, &b, &e);
            if (e > b)
                blis_gemm(1, ta, tb, e - b, N, K, alpha, op_rows(A, ta, b, lda), lda, B, ldb,
                          beta, C + (size_t)b * ldc, ldc);
        }
        return;
    }
    if (N >= 32 * nt) {
        /* Wide: columns of C (and of op(B)) split across threads. Column c of
         * op(B) starts at B + c (no trans) or B + c*ldb (trans). */
#pragma omp parallel num_threads(nt)
        {
            int b, e;
            split_range(N, omp_get_num_threads(), omp_get_thread_num(), 16, &b, &e);
            if (e > b)
                blis_gemm(1, ta, tb, M, e - b, K, alpha, A, lda,
                          tb ? B + (size_t)b * ldb : B + b, ldb, beta, C + b, ldc);
        }
        return;
    }
    if (K >= 256 * nt) {
        /* Long only in K (weight gradients: C is small, K = tokens). Each
         * thread sums its slice of K into a private C; the partial products
         * are then added in thread order, so the result does not depend on
         * scheduling. */
        size_t csize = (size_t)M * N;
        float *part = malloc(sizeof(float) * csize * nt);
        if (!part) {
            blis_gemm(nt, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
            return;
        }
#pragma omp parallel num_threads(nt)
        {
            int t = omp_get_thread_num(), b, e;
            split_range(K, omp_get_num_threads(), t, 16, &b, &e);
            float *P = part + csize * t;
            memset(P, 0, sizeof(float) * csize);
            if (e > b) {
                /* Column slice b..e of op(A) and row slice b..e of op(B). */
                const float *Ak = ta ? A + (size_t)b * lda : A + b;
                const float *Bk = tb ? B + b : B + (size_t)b * ldb;
                blis_gemm(1, ta, tb, M, N, e - b, alpha, Ak, lda, Bk, ldb, 0.0f, P, N);
            }
        }
        int used = nt;
        for (int i = 0; i < M; i++) {
            float *c = C + (size_t)i * ldc;
            for (int j = 0; j < N; j++) {
                float s = 0.0f;
                for (int t = 0; t < used; t++) s += part[csize * t + (size_t)i * N + j];
                c[j] = (beta == 0.0f ? 0.0f : beta * c[j]) + s;
            }
        }
        free(part);
        return;
    }
    blis_gemm(nt, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void mrt_sgemm_naive(bool ta, bool tb, int M, int N, int K, float alpha, const float *A,
                     int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int k = 0; k < K; k++) {
                float a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += (double)a * b;
            }
            float *c = &C[(size_t)i * ldc + j];
            *c = (float)(alpha * s + (beta == 0.0f ? 0.0 : (double)beta * *c));
        }
    }
}

/* bli_init first: queried before BLIS is initialised, with BLIS_ARCH_TYPE
 * set, BLIS 0.9 looks up the kernel family's context before registering
 * any and aborts the process ("Accessed uninitialized context in gks"),
 * e.g. when SELECT mrt_debug() is a session's first call into BLIS. */
const char *mrt_blis_arch(void) {
    blis_prepare();
    bli_init();
    return bli_arch_string(bli_arch_query_id());
}

const char *mrt_blis_version(void) { return bli_info_get_version_str(); }
