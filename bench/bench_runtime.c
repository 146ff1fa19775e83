/*
 * bench_runtime.c -- how fast the runtime is, as ratios to BLIS's own sgemm
 * peak measured in the same run (machines are shared and noisy, so absolute
 * numbers mean little; ratios taken minutes apart mean more).
 *
 *   build/bench/bench_runtime [--quick] [--threads N]
 *
 * Prints one line per measurement: what, shape, milliseconds per call,
 * GFLOP/s and the percentage of the sgemm peak. FLOP counts are those of the
 * matrix products an op performs (2*M*N*K each); element-wise work (norms,
 * activations, scans) costs time but is not counted, so a layer's ratio is
 * an honest "useful GEMM work per second".
 *
 * Before measuring it runs a self-check (GEMM and Bi-WKV against their
 * naive twins) and stops with an error if the runtime computes wrong.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blocks.h"
#include "runtime.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double min_seconds = 0.5; /* per measurement; --quick lowers it */
static double peak_gflops = 0;

typedef void (*bench_fn)(void *);

/* Best time of one call over repeated runs lasting at least min_seconds. */
static double time_call(bench_fn fn, void *ctx) {
    fn(ctx); /* warm caches, page in buffers */
    double best = INFINITY, start = now();
    int reps = 0;
    while (reps < 3 || now() - start < min_seconds) {
        double t0 = now();
        fn(ctx);
        double dt = now() - t0;
        if (dt < best) best = dt;
        if (++reps > 100000) break;
    }
    return best;
}

static void report(const char *what, const char *shape, double seconds, double flops) {
    double gf = flops / seconds * 1e-9;
    if (flops > 0)
        printf("%-28s %-30s %9.3f ms %8.1f GFLOP/s %5.0f%% of peak\n", what, shape, seconds * 1e3,
               gf, peak_gflops > 0 ? 100.0 * gf / peak_gflops : 0.0);
    else
        printf("%-28s %-30s %9.3f ms\n", what, shape, seconds * 1e3);
    fflush(stdout);
}

static float *randn(mrt_rng *rng, size_t n, float std) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    if (!p) {
        fprintf(stderr, "bench: out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < n; i++) p[i] = std * mrt_rng_normal(rng);
    return p;
}

static mrt_rng rng;
static mrt_rt rt;

/* ----------------------------------------------------------------- GEMM */

typedef struct {
    int M, N, K;
    float *A, *B, *C;
} gemm_ctx;

static void gemm_run(void *p) {
    gemm_ctx *c = p;
    mrt_sgemm(&rt, false, false, c->M, c->N, c->K, 1.0f, c->A, c->K, c->B, c->N, 0.0f, c->C, c->N);
}

static double bench_gemm(int M, int N, int K, bool set_peak) {
    gemm_ctx c = {M, N, K, randn(&rng, (size_t)M * K, 1), randn(&rng, (size_t)K * N, 1),
                  randn(&rng, (size_t)M * N, 1)};
    double t = time_call(gemm_run, &c);
    double flops = 2.0 * M * N * K;
    if (set_peak) peak_gflops = flops / t * 1e-9;
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%d . %dx%d", M, K, K, N);
    report(set_peak ? "sgemm peak (BLIS)" : "sgemm", shape, t, flops);
    free(c.A), free(c.B), free(c.C);
    return t;
}

/* --------------------------------------------------------------- linear */

typedef struct {
    int N, Cin, Cout;
    float *x, *w, *b, *y, *dy, *dx, *dw, *db;
} linear_ctx;

static void linear_fwd(void *p) {
    linear_ctx *c = p;
    mrt_linear_forward(&rt, c->y, c->x, c->w, c->b, c->N, c->Cin, c->Cout);
}

static void linear_bwd(void *p) {
    linear_ctx *c = p;
    mrt_linear_backward(&rt, c->dx, c->dw, c->db, c->dy, c->x, c->w, c->N, c->Cin, c->Cout);
}

static void linear_both(void *p) {
    linear_fwd(p);
    linear_bwd(p);
}

static void bench_linear(int N, int Cin, int Cout) {
    linear_ctx c = {N, Cin, Cout, randn(&rng, (size_t)N * Cin, 1), randn(&rng, (size_t)Cout * Cin, 0.1f),
                    randn(&rng, Cout, 0.1f), randn(&rng, (size_t)N * Cout, 1),
                    randn(&rng, (size_t)N * Cout, 1), randn(&rng, (size_t)N * Cin, 1),
                    randn(&rng, (size_t)Cout * Cin, 1), randn(&rng, Cout, 1)};
    char shape[64];
    snprintf(shape, sizeof shape, "(%dx%d) . (%dx%d)", N, Cin, Cin, Cout);
    double f = 2.0 * N * Cin * Cout;
    report("linear forward", shape, time_call(linear_fwd, &c), f);
    report("linear backward", shape, time_call(linear_bwd, &c), 2 * f);
    report("linear forward+backward", shape, time_call(linear_both, &c), 3 * f);
    free(c.x), free(c.w), free(c.b), free(c.y), free(c.dy), free(c.dx), free(c.dw), free(c.db);
}

/* ------------------------------------------------------------ attention */

typedef struct {
    int nwin, n, D, heads;
    float *qkv, *att, *out, *dout, *dqkv;
} att_ctx;

static void att_fwd(void *p) {
    att_ctx *c = p;
    mrt_attention_forward(&rt, c->out, c->att, c->qkv, c->nwin, c->n, c->D, c->heads);
}

static void att_bwd(void *p) {
    att_ctx *c = p;
    mrt_attention_backward(&rt, c->dqkv, c->dout, c->qkv, c->att, c->nwin, c->n, c->D, c->heads);
}

static void bench_attention(int nwin, int n, int D, int heads) {
    size_t N = (size_t)nwin * n;
    att_ctx c = {nwin, n, D, heads, randn(&rng, N * 3 * D, 1),
                 randn(&rng, (size_t)nwin * heads * n * n, 1), randn(&rng, N * D, 1),
                 randn(&rng, N * D, 1), randn(&rng, N * 3 * D, 1)};
    char shape[64];
    snprintf(shape, sizeof shape, "%d win x %d tok, D%d h%d", nwin, n, D, heads);
    double f = 4.0 * n * n * D * nwin; /* QK^T and PV */
    report("window attention forward", shape, time_call(att_fwd, &c), f);
    report("window attention backward", shape, time_call(att_bwd, &c), 2 * f);
    free(c.qkv), free(c.att), free(c.out), free(c.dout), free(c.dqkv);
}

/* --------------------------------------------------------------- Bi-WKV */

typedef struct {
    int B, T, C;
    float *k, *v, *w, *u, *out, *dout, *dk, *dv, *dw, *du;
} wkv_ctx;

static void wkv_fwd(void *p) {
    wkv_ctx *c = p;
    mrt_biwkv_forward(&rt, c->out, c->k, c->v, c->w, c->u, c->B, c->T, c->C);
}

static void wkv_bwd(void *p) {
    wkv_ctx *c = p;
    mrt_biwkv_backward(&rt, c->dk, c->dv, c->dw, c->du, c->dout, c->k, c->v, c->w, c->u, c->B,
                       c->T, c->C);
}

static void bench_wkv(int B, int T, int C) {
    size_t n = (size_t)B * T * C;
    wkv_ctx c = {B, T, C, randn(&rng, n, 1), randn(&rng, n, 1), randn(&rng, C, 1),
                 randn(&rng, C, 1), randn(&rng, n, 1), randn(&rng, n, 1), randn(&rng, n, 1),
                 randn(&rng, n, 1), randn(&rng, C, 1), randn(&rng, C, 1)};
    char shape[64];
    snprintf(shape, sizeof shape, "B%d T%d C%d", B, T, C);
    double tf = time_call(wkv_fwd, &c), tb = time_call(wkv_bwd, &c);
    /* No GEMM work: report throughput in tokens x channels per second, and
     * for scale the time the layer's 4 DxD linears need at the GEMM rate. */
    report("Bi-WKV forward", shape, tf, 0);
    printf("%-28s %-30s %9.1f M elements/s\n", "", "", n / tf * 1e-6);
    report("Bi-WKV backward", shape, tb, 0);
    printf("%-28s %-30s %9.1f M elements/s\n", "", "", n / tb * 1e-6);
    free(c.k), free(c.v), free(c.w), free(c.u), free(c.out), free(c.dout), free(c.dk);
    free(c.dv), free(c.dw), free(c.du);
}

/* ----------------------------------------------------------------- conv */

typedef struct {
    int B, Cin, H, W, Cout, k, stride;
    float *x, *w, *b, *y, *dy, *dx, *dw, *db;
} conv_ctx;

static void conv_fwd(void *p) {
    conv_ctx *c = p;
    mrt_conv2d_forward(&rt, c->y, c->x, c->w, c->b, c->B, c->Cin, c->H, c->W, c->Cout, c->k,
                       c->stride);
}

static void conv_bwd(void *p) {
    conv_ctx *c = p;
    mrt_conv2d_backward(&rt, c->dx, c->dw, c->db, c->dy, c->x, c->w, c->B, c->Cin, c->H, c->W,
                        c->Cout, c->k, c->stride);
}

static void bench_conv(int B, int Cin, int H, int W, int Cout, int k, int stride) {
    int Ho = mrt_conv2d_out_size(H, stride), Wo = mrt_conv2d_out_size(W, stride);
    size_t nin = (size_t)B * Cin * H * W, nout = (size_t)B * Cout * Ho * Wo;
    size_t nw = (size_t)Cout * Cin * k * k;
    conv_ctx c = {B, Cin, H, W, Cout, k, stride, randn(&rng, nin, 1), randn(&rng, nw, 0.1f),
                  randn(&rng, Cout, 0.1f), randn(&rng, nout, 1), randn(&rng, nout, 1),
                  randn(&rng, nin, 1), randn(&rng, nw, 1), randn(&rng, Cout, 1)};
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%d, %d->%d, k%d s%d", H, W, Cin, Cout, k, stride);
    double f = 2.0 * B * Cout * Cin * k * k * Ho * Wo;
    report("conv forward", shape, time_call(conv_fwd, &c), f);
    report("conv backward", shape, time_call(conv_bwd, &c), 2 * f);
    free(c.x), free(c.w), free(c.b), free(c.y), free(c.dy), free(c.dx), free(c.dw), free(c.db);
}

/* ------------------------------------------------- a block stack, one step */

typedef struct {
    int B, Hg, Wg, D, F, heads, pairs;
    mrt_rwkv_weights *rw, *rdw;
    mrt_vit_weights *vw, *vdw;
    mrt_rwkv_acts *ra;
    mrt_vit_acts *va;
    float **xs; /* 2*pairs+1 activations */
    float *dA, *dB;
} stack_ctx;

/* Windows of 8x8 tokens: the grid is laid out so that each window's 64
 * tokens are contiguous, which is what the model's gather step produces;
 * for the benchmark the permutation itself is left out. */
static void stack_step(void *p) {
    stack_ctx *c = p;
    size_t nd = (size_t)c->B * c->Hg * c->Wg * c->D;
    for (int i = 0; i < c->pairs; i++) {
        mrt_rwkv_block_forward(&rt, c->xs[2 * i + 1], c->xs[2 * i], &c->rw[i], &c->ra[i], c->B,
                               c->Hg, c->Wg);
        mrt_vit_block_forward(&rt, c->xs[2 * i + 2], c->xs[2 * i + 1], &c->vw[i], &c->va[i]);
    }
    /* loss = sum(out): dout = 1 */
    float *d = c->dA, *dn = c->dB;
    for (size_t j = 0; j < nd; j++) d[j] = 1.0f;
    for (int i = c->pairs - 1; i >= 0; i--) {
        memset(dn, 0, sizeof(float) * nd);
        mrt_vit_block_backward(&rt, dn, &c->vdw[i], d, c->xs[2 * i + 1], &c->vw[i], &c->va[i]);
        memset(d, 0, sizeof(float) * nd);
        mrt_rwkv_block_backward(&rt, d, &c->rdw[i], dn, c->xs[2 * i], &c->rw[i], &c->ra[i], c->B,
                                c->Hg, c->Wg);
    }
}

static void bench_stack(int B, int Hg, int Wg, int D, int F, int heads, int pairs) {
    int N = B * Hg * Wg, win = 64, nwin = N / win;
    stack_ctx c = {B, Hg, Wg, D, F, heads, pairs, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                   NULL, NULL};
    c.rw = calloc(pairs, sizeof *c.rw), c.rdw = calloc(pairs, sizeof *c.rdw);
    c.vw = calloc(pairs, sizeof *c.vw), c.vdw = calloc(pairs, sizeof *c.vdw);
    c.ra = calloc(pairs, sizeof *c.ra), c.va = calloc(pairs, sizeof *c.va);
    c.xs = calloc(2 * pairs + 1, sizeof *c.xs);
    float **owned = calloc(4 * pairs, sizeof *owned);
    for (int i = 0; i < pairs; i++) {
        mrt_param_ref refs[MRT_BLOCK_MAX_PARAMS];
        int n = mrt_rwkv_params(&c.rw[i], D, F, refs);
        owned[4 * i] = randn(&rng, mrt_params_bind(refs, n, NULL), 0);
        mrt_params_bind(refs, n, owned[4 * i]);
        mrt_rwkv_init(&c.rw[i], D, F, i, pairs, &rng);
        n = mrt_rwkv_params(&c.rdw[i], D, F, refs);
        owned[4 * i + 1] = randn(&rng, mrt_params_bind(refs, n, NULL), 0);
        mrt_params_bind(refs, n, owned[4 * i + 1]);
        n = mrt_vit_params(&c.vw[i], D, F, refs);
        owned[4 * i + 2] = randn(&rng, mrt_params_bind(refs, n, NULL), 0);
        mrt_params_bind(refs, n, owned[4 * i + 2]);
        mrt_vit_init(&c.vw[i], D, F, &rng);
        n = mrt_vit_params(&c.vdw[i], D, F, refs);
        owned[4 * i + 3] = randn(&rng, mrt_params_bind(refs, n, NULL), 0);
        mrt_params_bind(refs, n, owned[4 * i + 3]);
        if (mrt_rwkv_acts_alloc(&c.ra[i], N, D, F) || mrt_vit_acts_alloc(&c.va[i], nwin, win, D, F, heads)) {
            fprintf(stderr, "bench: out of memory\n");
            exit(2);
        }
    }
    for (int i = 0; i <= 2 * pairs; i++) c.xs[i] = randn(&rng, (size_t)N * D, 1);
    c.dA = randn(&rng, (size_t)N * D, 1), c.dB = randn(&rng, (size_t)N * D, 1);
    /* GEMM FLOPs per token, forward: RWKV 4 DxD + DxF + FxD + DxD,
     * ViT 3DxD + DxD + 2 DxF + attention 4*win*D; backward twice that. */
    double rwkv = 2.0 * (5.0 * D * D + 2.0 * D * F), vit = 2.0 * (4.0 * D * D + 2.0 * D * F) + 4.0 * win * D;
    double flops = 3.0 * pairs * N * (rwkv + vit);
    char shape[80];
    snprintf(shape, sizeof shape, "%d x %dx%d tok, D%d F%d, %d pairs", B, Hg, Wg, D, F, pairs);
    report("RWKV+ViT stack fwd+bwd", shape, time_call(stack_step, &c), flops);
    for (int i = 0; i < pairs; i++) {
        mrt_rwkv_acts_free(&c.ra[i]);
        mrt_vit_acts_free(&c.va[i]);
    }
    for (int i = 0; i < 4 * pairs; i++) free(owned[i]);
    for (int i = 0; i <= 2 * pairs; i++) free(c.xs[i]);
    free(owned), free(c.xs), free(c.rw), free(c.rdw), free(c.vw), free(c.vdw), free(c.ra);
    free(c.va), free(c.dA), free(c.dB);
}

/* ------------------------------------------------------------ self-check */

static int self_check(void) {
    int M = 300, N = 70, K = 90;
    float *A = randn(&rng, (size_t)M * K, 1), *B = randn(&rng, (size_t)K * N, 1);
    float *C = randn(&rng, (size_t)M * N, 1), *R = randn(&rng, (size_t)M * N, 1);
    mrt_sgemm(&rt, false, false, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
    mrt_sgemm_naive(false, false, M, N, K, 1.0f, A, K, B, N, 0.0f, R, N);
    double worst = 0;
    for (size_t i = 0; i < (size_t)M * N; i++) worst = fmax(worst, fabs(C[i] - R[i]));
    int T = 200, Ch = 20;
    float *k = randn(&rng, (size_t)T * Ch, 1), *v = randn(&rng, (size_t)T * Ch, 1);
    float *w = randn(&rng, Ch, 1), *u = randn(&rng, Ch, 1);
    float *o1 = randn(&rng, (size_t)T * Ch, 1), *o2 = randn(&rng, (size_t)T * Ch, 1);
    mrt_biwkv_forward(&rt, o1, k, v, w, u, 1, T, Ch);
    mrt_biwkv_forward_naive(o2, k, v, w, u, 1, T, Ch);
    double worst_wkv = 0;
    for (size_t i = 0; i < (size_t)T * Ch; i++) worst_wkv = fmax(worst_wkv, fabs(o1[i] - o2[i]));
    free(A), free(B), free(C), free(R), free(k), free(v), free(w), free(u), free(o1), free(o2);
    if (worst > 1e-3 || worst_wkv > 1e-4) {
        fprintf(stderr, "self-check FAILED: gemm error %g, Bi-WKV error %g\n", worst, worst_wkv);
        return 1;
    }
    printf("self-check ok: GEMM and Bi-WKV agree with their naive twins (max error %.1e, %.1e)\n",
           worst, worst_wkv);
    return 0;
}

int main(int argc, char **argv) {
    bool quick = false;
    int threads = 0;
    static const struct option options[] = {
        {"quick", no_argument, NULL, 'q'},
        {"threads", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    char *end;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (opt == 'q') {
            quick = true;
        } else if (opt == 't' && (threads = (int)strtol(optarg, &end, 10)) >= 0 && *optarg &&
                   !*end) {
            /* 0: the default thread count */
        } else {
            fprintf(stderr, "usage: %s [--quick] [--threads N]\n", argv[0]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "usage: %s [--quick] [--threads N]\n", argv[0]);
        return 2;
    }
    if (quick) min_seconds = 0.05;
    mrt_rng_seed(&rng, 2024);
    rt = mrt_rt_make(threads);
    printf("mrt runtime benchmark: %d threads, BLIS %s (%s kernels)\n", rt.threads,
           mrt_blis_version(), mrt_blis_arch());
    if (self_check()) return 1;

    bench_gemm(2048, 2048, 2048, true);
    bench_gemm(4096, 64, 64, false);
    bench_gemm(4096, 128, 128, false);
    int N = quick ? 4096 : 6144; /* tokens: 768x512 at p = 8 is 6144 */
    bench_linear(4096, 128, 128);
    bench_linear(N, 64, 64);
    bench_linear(N, 64, 256);
    bench_linear(N, 256, 64);
    bench_linear(16384, 64, 64);
    bench_linear(4096, 256, 256);
    bench_attention(96, 66, 64, 4); /* 768x512: 96 windows of 64 patches + 2 latents */
    bench_wkv(1, 6144, 64);
    bench_wkv(16, 256, 64); /* a batch of 16 crops of 128x128 */
    bench_conv(1, 16, 256, 256, 16, 3, 1);
    bench_conv(1, 16, 512, 768, 16, 3, 1);
    bench_conv(1, 64, 64, 96, 64, 3, 1); /* 1/8 resolution of 768x512 */
    bench_conv(1, 32, 256, 384, 32, 3, 2);
    bench_conv(1, 64, 128, 192, 64, 1, 1);
    bench_stack(16, 16, 16, 64, 256, 4, 2);
    if (!quick) bench_stack(4, 32, 32, 128, 512, 4, 1);
    return 0;
}
