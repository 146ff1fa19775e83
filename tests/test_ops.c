/*
 * test_ops.c -- gradient checks and reference twins for linear, layer norm,
 * the activations, softmax, element-wise products, Q-Shift and token mix.
 *
 * Gradient checks use L = sum(out * r) for a random r, central differences
 * with step h = 1e-2 (inputs of order 1), and pass when
 * |analytic - numeric| <= 1e-3 + 2e-2 * max(|analytic|, |numeric|)
 * (float32 forward passes; the numeric side carries ~1e-4 noise).
 */
#include "testutil.h"

#define H_STEP 1e-2f
#define RTOL 2e-2f
#define ATOL 1e-3f

static mrt_rng rng;
static mrt_rt rt;

/* ------------------------------------------------------------- linear */

typedef struct {
    float *out, *in, *w, *b;
    int N, Cin, Cout;
} linear_ctx;

static void linear_fwd(void *p) {
    linear_ctx *c = p;
    mrt_linear_forward(&rt, c->out, c->in, c->w, c->b, c->N, c->Cin, c->Cout);
}

static void test_linear(int N, int Cin, int Cout, bool with_bias) {
    linear_ctx c = {tu_alloc((size_t)N * Cout), tu_randn(&rng, (size_t)N * Cin, 1.0f),
                    tu_randn(&rng, (size_t)Cout * Cin, 0.3f),
                    with_bias ? tu_randn(&rng, Cout, 1.0f) : NULL, N, Cin, Cout};
    linear_fwd(&c);
    /* twin: plain loops */
    float *ref = tu_alloc((size_t)N * Cout);
    for (int i = 0; i < N; i++)
        for (int o = 0; o < Cout; o++) {
            double s = with_bias ? c.b[o] : 0.0;
            for (int k = 0; k < Cin; k++) s += (double)c.in[i * Cin + k] * c.w[o * Cin + k];
            ref[i * Cout + o] = (float)s;
        }
    tu_close("linear forward vs loops", c.out, ref, (size_t)N * Cout, 1e-4f, 1e-5f);
    float *r = tu_randn(&rng, (size_t)N * Cout, 1.0f);
    float *din = tu_alloc((size_t)N * Cin), *dw = tu_alloc((size_t)Cout * Cin);
    float *db = tu_alloc(Cout);
    mrt_linear_backward(&rt, din, dw, with_bias ? db : NULL, r, c.in, c.w, N, Cin, Cout);
    size_t no = (size_t)N * Cout;
    tu_gradcheck("linear din", linear_fwd, &c, c.in, (size_t)N * Cin, din, c.out, r, no, H_STEP,
                 RTOL, ATOL, 60);
    tu_gradcheck("linear dweight", linear_fwd, &c, c.w, (size_t)Cout * Cin, dw, c.out, r, no,
                 H_STEP, RTOL, ATOL, 60);
    if (with_bias)
        tu_gradcheck("linear dbias", linear_fwd, &c, c.b, Cout, db, c.out, r, no, H_STEP, RTOL,
                     ATOL, 60);
    /* accumulation: a second backward doubles every gradient */
    float *din2 = tu_alloc((size_t)N * Cin);
    memcpy(din2, din, sizeof(float) * N * Cin);
    mrt_linear_backward(&rt, din2, NULL, NULL, r, c.in, c.w, N, Cin, Cout);
    for (int i = 0; i < N * Cin; i++) din[i] *= 2.0f;
    tu_close("linear backward accumulates", din2, din, (size_t)N * Cin, 1e-5f, 1e-6f);
    free(c.out), free(c.in), free(c.w), free(c.b), free(ref), free(r), free(din), free(dw);
    free(db), free(din2);
}

/* --------------------------------------------------------- layer norm */

typedef struct {
    float *out, *mean, *rstd, *in, *g, *b;
    int N, C;
} ln_ctx;

static void ln_fwd(void *p) {
    ln_ctx *c = p;
    mrt_layernorm_forward(&rt, c->out, c->mean, c->rstd, c->in, c->g, c->b, c->N, c->C);
}

static void test_layernorm(void) {
    int N = 7, C = 24;
    ln_ctx c = {tu_alloc(N * C), tu_alloc(N), tu_alloc(N), tu_randn(&rng, N * C, 2.0f),
                tu_randn(&rng, C, 1.0f), tu_randn(&rng, C, 1.0f), N, C};
    for (int i = 0; i < N * C; i++) c.in[i] += 3.0f; /* non-zero mean */
    ln_fwd(&c);
    /* twin: normalised rows have mean beta-weighted ... check directly */
    float *ref = tu_alloc(N * C);
    for (int i = 0; i < N; i++) {
        double m = 0, v = 0;
        for (int k = 0; k < C; k++) m += c.in[i * C + k];
        m /= C;
        for (int k = 0; k < C; k++) v += (c.in[i * C + k] - m) * (c.in[i * C + k] - m);
        v /= C;
        for (int k = 0; k < C; k++)
            ref[i * C + k] = (float)((c.in[i * C + k] - m) / sqrt(v + 1e-5) * c.g[k] + c.b[k]);
    }
    tu_close("layernorm forward vs double", c.out, ref, N * C, 1e-4f, 1e-5f);
    float *r = tu_randn(&rng, N * C, 1.0f);
    float *din = tu_alloc(N * C), *dg = tu_alloc(C), *db = tu_alloc(C);
    mrt_layernorm_backward(&rt, din, dg, db, r, c.in, c.g, c.mean, c.rstd, N, C);
    tu_gradcheck("layernorm din", ln_fwd, &c, c.in, N * C, din, c.out, r, N * C, H_STEP, RTOL,
                 ATOL, 200);
    tu_gradcheck("layernorm dgamma", ln_fwd, &c, c.g, C, dg, c.out, r, N * C, H_STEP, RTOL, ATOL,
                 200);
    tu_gradcheck("layernorm dbeta", ln_fwd, &c, c.b, C, db, c.out, r, N * C, H_STEP, RTOL, ATOL,
                 200);
    free(c.out), free(c.mean), free(c.rstd), free(c.in), free(c.g), free(c.b), free(ref);
    free(r), free(din), free(dg), free(db);
}

/* -------------------------------------------------------- activations */

typedef void (*act_fwd_fn)(const mrt_rt *, float *, const float *, size_t);
typedef struct {
    float *out, *in;
    size_t n;
    act_fwd_fn f;
} act_ctx;

static void act_fwd(void *p) {
    act_ctx *c = p;
    c->f(&rt, c->out, c->in, c->n);
}

static void test_activation(const char *name, act_fwd_fn f,
                            void (*b)(const mrt_rt *, float *, const float *, const float *, size_t),
                            bool backward_uses_output, double (*ref)(double)) {
    size_t n = 300;
    act_ctx c = {tu_alloc(n), tu_randn(&rng, n, 2.0f), n, f};
    /* keep inputs away from kinks (relu at 0) so differences are smooth */
    for (size_t i = 0; i < n; i++)
        if (fabsf(c.in[i]) < 0.05f) c.in[i] = c.in[i] < 0 ? -0.1f : 0.1f;
    c.in[0] = 30.0f; /* large magnitudes must not overflow */
    c.in[1] = -30.0f;
    act_fwd(&c);
    float *want = tu_alloc(n);
    for (size_t i = 0; i < n; i++) want[i] = (float)ref(c.in[i]);
    char what[64];
    snprintf(what, sizeof what, "%s forward vs double", name);
    tu_close(what, c.out, want, n, 1e-5f, 1e-6f);
    float *r = tu_randn(&rng, n, 1.0f), *din = tu_alloc(n);
    b(&rt, din, r, backward_uses_output ? c.out : c.in, n);
    snprintf(what, sizeof what, "%s backward", name);
    tu_gradcheck(what, act_fwd, &c, c.in, n, din, c.out, r, n, 1e-3f, RTOL, ATOL, n);
    free(c.out), free(c.in), free(want), free(r), free(din);
}

static double gelu_ref(double x) {
    return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}
static double relu2_ref(double x) { return x > 0 ? x * x : 0.0; }
static double relu_ref(double x) { return x > 0 ? x : 0.0; }
static double sigmoid_ref(double x) { return 1.0 / (1.0 + exp(-x)); }

/* ------------------------------------------------------------ softmax */

typedef struct {
    float *out, *in;
    int N, C;
} sm_ctx;

static void sm_fwd(void *p) {
    sm_ctx *c = p;
    mrt_softmax_forward(&rt, c->out, c->in, c->N, c->C);
}

static void test_softmax(void) {
    int N = 5, C = 13;
    sm_ctx c = {tu_alloc(N * C), tu_randn(&rng, N * C, 3.0f), N, C};
    c.in[0] = 200.0f; /* would overflow expf without the max shift */
    sm_fwd(&c);
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int k = 0; k < C; k++) s += c.out[i * C + k];
        CHECK(fabs(s - 1.0) < 1e-5, "softmax row %d sums to %g", i, s);
    }
    float *r = tu_randn(&rng, N * C, 1.0f), *din = tu_alloc(N * C);
    mrt_softmax_backward(&rt, din, r, c.out, N, C);
    tu_gradcheck("softmax", sm_fwd, &c, c.in, N * C, din, c.out, r, N * C, 1e-2f, RTOL, ATOL,
                 N * C);
    free(c.out), free(c.in), free(r), free(din);
}

/* -------------------------------------------------- element-wise product */

typedef struct {
    float *out, *a, *b;
    size_t n;
} mul_ctx;

static void mul_fwd(void *p) {
    mul_ctx *c = p;
    mrt_mul_forward(c->out, c->a, c->b, c->n);
}

static void test_mul_add(void) {
    size_t n = 50;
    mul_ctx c = {tu_alloc(n), tu_randn(&rng, n, 1.0f), tu_randn(&rng, n, 1.0f), n};
    mul_fwd(&c);
    float *r = tu_randn(&rng, n, 1.0f), *da = tu_alloc(n), *db = tu_alloc(n);
    mrt_mul_backward(da, db, r, c.a, c.b, n);
    tu_gradcheck("mul da", mul_fwd, &c, c.a, n, da, c.out, r, n, H_STEP, RTOL, ATOL, n);
    tu_gradcheck("mul db", mul_fwd, &c, c.b, n, db, c.out, r, n, H_STEP, RTOL, ATOL, n);
    float *s = tu_alloc(n);
    mrt_add(s, c.a, c.b, n);
    mrt_add_inplace(s, c.a, n);
    int ok = 1;
    for (size_t i = 0; i < n; i++) ok &= s[i] == (c.a[i] + c.b[i]) + c.a[i];
    CHECK(ok, "add/add_inplace");
    free(c.out), free(c.a), free(c.b), free(r), free(da), free(db), free(s);
}

/* ------------------------------------------------------------- Q-Shift */

static void test_qshift(void) {
    int B = 2, Hg = 3, Wg = 4, C = 10; /* C not a multiple of 4 */
    size_t n = (size_t)B * Hg * Wg * C;
    float *in = tu_randn(&rng, n, 1.0f), *out = tu_alloc(n);
    mrt_qshift_forward(out, in, B, Hg, Wg, C);
    int ok = 1;
    for (int b = 0; b < B; b++)
        for (int y = 0; y < Hg; y++)
            for (int x = 0; x < Wg; x++)
                for (int c = 0; c < C; c++) {
                    int q = 4 * c / C;
                    int sy = y + (q == 2 ? -1 : q == 3 ? 1 : 0);
                    int sx = x + (q == 0 ? -1 : q == 1 ? 1 : 0);
                    float want = (sy < 0 || sy >= Hg || sx < 0 || sx >= Wg)
                                     ? 0.0f
                                     : in[(((size_t)b * Hg + sy) * Wg + sx) * C + c];
                    ok &= out[(((size_t)b * Hg + y) * Wg + x) * C + c] == want;
                }
    CHECK(ok, "qshift forward moves each quarter from its neighbour");
    /* backward is the adjoint: <shift(a), g> == <a, shift^T(g)> */
    float *g = tu_randn(&rng, n, 1.0f), *din = tu_alloc(n);
    mrt_qshift_backward(din, g, B, Hg, Wg, C);
    double lhs = tu_dot(out, g, n), rhs = tu_dot(in, din, n);
    CHECK(fabs(lhs - rhs) < 1e-4 * (1 + fabs(lhs)), "qshift adjoint %g vs %g", lhs, rhs);
    free(in), free(out), free(g), free(din);
}

/* ----------------------------------------------------------- token mix */

typedef struct {
    float *out, *x, *xs, *mu;
    int N, C;
} tm_ctx;

static void tm_fwd(void *p) {
    tm_ctx *c = p;
    mrt_tokenmix_forward(&rt, c->out, c->x, c->xs, c->mu, c->N, c->C);
}

static void test_tokenmix(void) {
    int N = 6, C = 8;
    tm_ctx c = {tu_alloc(N * C), tu_randn(&rng, N * C, 1.0f), tu_randn(&rng, N * C, 1.0f),
                tu_rand_uniform(&rng, C, 0.0f, 1.0f), N, C};
    tm_fwd(&c);
    float *r = tu_randn(&rng, N * C, 1.0f);
    float *dx = tu_alloc(N * C), *dxs = tu_alloc(N * C), *dmu = tu_alloc(C);
    mrt_tokenmix_backward(&rt, dx, dxs, dmu, r, c.x, c.xs, c.mu, N, C);
    tu_gradcheck("tokenmix dx", tm_fwd, &c, c.x, N * C, dx, c.out, r, N * C, H_STEP, RTOL, ATOL, 99);
    tu_gradcheck("tokenmix dxs", tm_fwd, &c, c.xs, N * C, dxs, c.out, r, N * C, H_STEP, RTOL, ATOL,
                 99);
    tu_gradcheck("tokenmix dmu", tm_fwd, &c, c.mu, C, dmu, c.out, r, N * C, H_STEP, RTOL, ATOL, 99);
    free(c.out), free(c.x), free(c.xs), free(c.mu), free(r), free(dx), free(dxs), free(dmu);
}

/* Large inputs take the threaded, chunked paths: every element must come out
 * the same as with one thread (element-wise work has no reductions to reorder),
 * and the same as the reference within the small-input tolerance. */
static void test_threaded_paths(void) {
    size_t n = 100003; /* odd, so chunks have uneven sizes */
    float *x = tu_randn(&rng, n, 3.0f), *g = tu_randn(&rng, n, 1.0f);
    float *a1 = tu_alloc(n), *a2 = tu_alloc(n), *want = tu_alloc(n);
    mrt_rt one = mrt_rt_make(1), two = mrt_rt_make(2);
    act_fwd_fn fwd[] = {mrt_gelu_forward, mrt_relu2_forward, mrt_relu_forward, mrt_sigmoid_forward};
    double (*ref[])(double) = {gelu_ref, relu2_ref, relu_ref, sigmoid_ref};
    for (int f = 0; f < 4; f++) {
        fwd[f](&one, a1, x, n);
        fwd[f](&two, a2, x, n);
        CHECK(memcmp(a1, a2, n * sizeof(float)) == 0, "activation %d: 1 vs 2 threads", f);
        for (size_t i = 0; i < n; i++) want[i] = (float)ref[f](x[i]);
        tu_close("activation, threaded", a2, want, n, 1e-5f, 1e-6f);
    }
    memset(a1, 0, n * sizeof(float)), memset(a2, 0, n * sizeof(float));
    mrt_gelu_backward(&one, a1, g, x, n);
    mrt_gelu_backward(&two, a2, g, x, n);
    CHECK(memcmp(a1, a2, n * sizeof(float)) == 0, "gelu backward: 1 vs 2 threads");
    int rows = 1000, C = 100;
    mrt_softmax_forward(&one, a1, x, rows, C);
    mrt_softmax_forward(&two, a2, x, rows, C);
    CHECK(memcmp(a1, a2, (size_t)rows * C * sizeof(float)) == 0, "softmax: 1 vs 2 threads");
    float *mean = tu_alloc(rows), *rstd = tu_alloc(rows), *gam = tu_randn(&rng, C, 1.0f);
    float *bet = tu_randn(&rng, C, 1.0f), *dg1 = tu_alloc(C), *dg2 = tu_alloc(C);
    mrt_layernorm_forward(&one, a1, mean, rstd, x, gam, bet, rows, C);
    mrt_layernorm_forward(&two, a2, mean, rstd, x, gam, bet, rows, C);
    CHECK(memcmp(a1, a2, (size_t)rows * C * sizeof(float)) == 0, "layernorm: 1 vs 2 threads");
    memset(a1, 0, n * sizeof(float)), memset(a2, 0, n * sizeof(float));
    mrt_layernorm_backward(&one, a1, dg1, NULL, g, x, gam, mean, rstd, rows, C);
    mrt_layernorm_backward(&two, a2, dg2, NULL, g, x, gam, mean, rstd, rows, C);
    CHECK(memcmp(a1, a2, (size_t)rows * C * sizeof(float)) == 0 &&
              memcmp(dg1, dg2, C * sizeof(float)) == 0,
          "layernorm backward: 1 vs 2 threads");
    free(x), free(g), free(a1), free(a2), free(want), free(mean), free(rstd), free(gam);
    free(bet), free(dg1), free(dg2);
}

int main(void) {
    mrt_rng_seed(&rng, 42);
    test_threaded_paths();
    for (int threads = 1; threads <= 2; threads++) {
        rt = mrt_rt_make(threads);
        test_linear(5, 7, 3, true);
        test_linear(300, 64, 48, true); /* big enough for the threaded GEMM paths */
        test_linear(9, 16, 16, false);
    }
    test_layernorm();
    test_activation("gelu", mrt_gelu_forward, mrt_gelu_backward, false, gelu_ref);
    test_activation("relu2", mrt_relu2_forward, mrt_relu2_backward, false, relu2_ref);
    test_activation("relu", mrt_relu_forward, mrt_relu_backward, false, relu_ref);
    test_activation("sigmoid", mrt_sigmoid_forward, mrt_sigmoid_backward, true, sigmoid_ref);
    test_softmax();
    test_mul_add();
    test_qshift();
    test_tokenmix();
    return tu_finish("test_ops");
}
