/*
 * test_gemm.c -- mrt_sgemm against its naive twin, for every transpose
 * combination and for shapes that take each threading path in gemm.c
 * (single call, rows split, columns split, K split, BLIS-threaded), with
 * padded leading dimensions and beta 0 and 1.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include "guarded.h"
#include "testutil.h"

static void check_shape(mrt_rng *rng, int threads, bool ta, bool tb, int M, int N, int K,
                        float beta) {
    int pad = 3; /* leading dimensions larger than the rows, as in strided views */
    int arows = ta ? K : M, acols = ta ? M : K;
    int brows = tb ? N : K, bcols = tb ? K : N;
    int lda = acols + pad, ldb = bcols + pad, ldc = N + pad;
    float *A = tu_randn(rng, (size_t)arows * lda, 1.0f);
    float *B = tu_randn(rng, (size_t)brows * ldb, 1.0f);
    float *C = tu_randn(rng, (size_t)M * ldc, 1.0f);
    float *Cref = tu_alloc((size_t)M * ldc);
    memcpy(Cref, C, sizeof(float) * (size_t)M * ldc);
    mrt_rt rt = mrt_rt_make(threads);
    mrt_sgemm(&rt, ta, tb, M, N, K, 0.5f, A, lda, B, ldb, beta, C, ldc);
    mrt_sgemm_naive(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, beta, Cref, ldc);
    char what[128];
    snprintf(what, sizeof what, "sgemm %c%c %dx%dx%d beta %g threads %d", ta ? 'T' : 'N',
             tb ? 'T' : 'N', M, N, K, (double)beta, threads);
    /* float accumulation over K terms of unit variance: error ~ sqrt(K) eps */
    tu_close(what, C, Cref, (size_t)M * ldc, 1e-4f, 2e-5f * sqrtf((float)K));
    free(A);
    free(B);
    free(C);
    free(Cref);
}

/* Every operand ends at an unreadable page: BLIS 0.9.0's small-matrix
 * kernels read past their operands (flame/blis#821) and gemm.c must never
 * let them run. Random small shapes, all transposes, 1 and 2 threads. */
static void check_guarded(mrt_rng *rng) {
    signal(SIGSEGV, guard_segv);
    for (int iter = 0; iter < 400; iter++) {
        int M = 1 + (int)mrt_rng_below(rng, 70), N = 1 + (int)mrt_rng_below(rng, 70);
        int K = 1 + (int)mrt_rng_below(rng, 70);
        bool ta = mrt_rng_below(rng, 2), tb = mrt_rng_below(rng, 2);
        int threads = 1 + iter % 2;
        snprintf(guard_case, sizeof guard_case, "sgemm %c%c %dx%dx%d threads %d", ta ? 'T' : 'N',
                 tb ? 'T' : 'N', M, N, K, threads);
        float *A = tu_randn(rng, (size_t)M * K, 1.0f), *B = tu_randn(rng, (size_t)K * N, 1.0f);
        float *C = tu_alloc((size_t)M * N);
        guarded gA = guarded_copy(A, (size_t)M * K), gB = guarded_copy(B, (size_t)K * N);
        guarded gC = guarded_copy(C, (size_t)M * N);
        mrt_rt rt = mrt_rt_make(threads);
        mrt_sgemm(&rt, ta, tb, M, N, K, 1.0f, gA.p, ta ? M : K, gB.p, tb ? K : N, 0.0f, gC.p, N);
        mrt_sgemm_naive(ta, tb, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, 0.0f, C, N);
        tu_close(guard_case, gC.p, C, (size_t)M * N, 1e-4f, 2e-5f * sqrtf((float)K));
        guarded_free(gA), guarded_free(gB), guarded_free(gC);
        free(A), free(B), free(C);
    }
    signal(SIGSEGV, SIG_DFL);
}

int main(void) {
    mrt_rng rng;
    mrt_rng_seed(&rng, 1);
    static const int shapes[][3] = {
        {7, 5, 3},       /* tiny: one single-threaded call */
        {1000, 64, 64},  /* tall: rows split */
        {64, 1000, 48},  /* wide: columns split */
        {24, 40, 3000},  /* long K: split-K with ordered reduction */
        {520, 530, 515}, /* large everywhere: BLIS threads */
        {33, 17, 1},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int threads = 1; threads <= 2; threads++)
            for (int t = 0; t < 4; t++)
                check_shape(&rng, threads, t & 1, t & 2, shapes[s][0], shapes[s][1],
                            shapes[s][2], (t & 1) ? 1.0f : 0.0f);
    /* beta = 0 must overwrite C even when it holds NaN. */
    float A[4] = {1, 2, 3, 4}, B[4] = {1, 0, 0, 1}, C[4] = {NAN, NAN, NAN, NAN};
    mrt_rt rt = mrt_rt_make(1);
    mrt_sgemm(&rt, false, false, 2, 2, 2, 1.0f, A, 2, B, 2, 0.0f, C, 2);
    CHECK(C[0] == 1 && C[1] == 2 && C[2] == 3 && C[3] == 4, "beta=0 did not overwrite NaN");
    check_guarded(&rng);

    /* Thread count: MRT_THREADS when it is a positive integer, else the
     * number of cores; an explicit count always wins. */
    int cores = (setenv("MRT_THREADS", "", 1), mrt_default_threads());
    CHECK(cores >= 1, "cores %d", cores);
    setenv("MRT_THREADS", "3", 1);
    CHECK(mrt_default_threads() == 3 && mrt_rt_make(0).threads == 3, "MRT_THREADS=3");
    CHECK(mrt_rt_make(5).threads == 5, "explicit count wins over MRT_THREADS");
    static const char *bad[] = {"0", "-2", "abc", "4x", "100000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("MRT_THREADS", bad[i], 1);
        CHECK(mrt_default_threads() == cores, "MRT_THREADS=%s ignored", bad[i]);
    }
    unsetenv("MRT_THREADS");
    printf("BLIS %s, kernel family %s\n", mrt_blis_version(), mrt_blis_arch());
    return tu_finish("test_gemm");
}
