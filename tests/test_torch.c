/*
 * test_torch.c -- every runtime op, one Bi-RWKV block and one ViT block
 * against PyTorch autograd. The reference tensors were written by
 * tests/torch/gen_fixtures.py into fixtures/torch_ops.gguf (computed in
 * float64, stored as float32); this test needs no Python.
 *
 * For case NAME the file holds NAME.<input>, NAME.out, NAME.dout and
 * NAME.grad.<input> (the gradient of sum(out * dout)). Outputs and
 * gradients must match within |c - torch| <= ATOL + RTOL |torch| with
 * RTOL = 1e-4 and ATOL = 1e-5 for single ops; 3e-4 / 3e-5 for the blocks,
 * whose gradients pass through ~20 float32 ops.
 */
#include "blocks.h"
#include "gguf.h"
#include "testutil.h"

#define RTOL 1e-4f
#define ATOL 1e-5f
#define BLOCK_RTOL 3e-4f
#define BLOCK_ATOL 3e-5f

static mrt_gguf *fx;
static mrt_rt rt;

/* The fixture tensor `case.what`, which must have n elements. */
static float *get(const char *name, const char *what, size_t n) {
    char full[160];
    snprintf(full, sizeof full, "%s.%s", name, what);
    const mrt_gguf_tensor *t = mrt_gguf_find(fx, full);
    if (!t || t->type != MRT_GGUF_F32 || (size_t)t->nelems != n) {
        fprintf(stderr, "fixture tensor %s missing or not %zu floats\n", full, n);
        exit(1);
    }
    /* A writable copy: gradchecks and ops may want to own their inputs. */
    float *p = tu_alloc(n);
    memcpy(p, t->data, n * sizeof(float));
    return p;
}

static void compare(const char *name, const char *what, const float *got, size_t n, float rtol,
                    float atol) {
    float *want = get(name, what, n);
    char label[160];
    snprintf(label, sizeof label, "torch %s.%s", name, what);
    tu_close(label, got, want, n, rtol, atol);
    free(want);
}

static void test_linear(const char *name, int N, int Cin, int Cout, bool bias) {
    float *x = get(name, "x", (size_t)N * Cin), *w = get(name, "w", (size_t)Cout * Cin);
    float *b = bias ? get(name, "b", Cout) : NULL, *dout = get(name, "dout", (size_t)N * Cout);
    float *out = tu_alloc((size_t)N * Cout), *dx = tu_alloc((size_t)N * Cin);
    float *dw = tu_alloc((size_t)Cout * Cin), *db = tu_alloc(Cout);
    mrt_linear_forward(&rt, out, x, w, b, N, Cin, Cout);
    mrt_linear_backward(&rt, dx, dw, bias ? db : NULL, dout, x, w, N, Cin, Cout);
    compare(name, "out", out, (size_t)N * Cout, RTOL, ATOL);
    compare(name, "grad.x", dx, (size_t)N * Cin, RTOL, ATOL);
    compare(name, "grad.w", dw, (size_t)Cout * Cin, RTOL, ATOL);
    if (bias) compare(name, "grad.b", db, Cout, RTOL, ATOL);
    free(x), free(w), free(b), free(dout), free(out), free(dx), free(dw), free(db);
}

static void test_layernorm(void) {
    int N = 4, C = 12;
    float *x = get("layernorm", "x", N * C), *g = get("layernorm", "g", C);
    float *b = get("layernorm", "b", C), *dout = get("layernorm", "dout", N * C);
    float *out = tu_alloc(N * C), *mean = tu_alloc(N), *rstd = tu_alloc(N);
    float *dx = tu_alloc(N * C), *dg = tu_alloc(C), *db = tu_alloc(C);
    mrt_layernorm_forward(&rt, out, mean, rstd, x, g, b, N, C);
    mrt_layernorm_backward(&rt, dx, dg, db, dout, x, g, mean, rstd, N, C);
    compare("layernorm", "out", out, N * C, RTOL, ATOL);
    compare("layernorm", "grad.x", dx, N * C, RTOL, ATOL);
    compare("layernorm", "grad.g", dg, C, RTOL, ATOL);
    compare("layernorm", "grad.b", db, C, RTOL, ATOL);
    free(x), free(g), free(b), free(dout), free(out), free(mean), free(rstd), free(dx);
    free(dg), free(db);
}

typedef void (*ew_fwd)(const mrt_rt *, float *, const float *, size_t);
typedef void (*ew_bwd)(const mrt_rt *, float *, const float *, const float *, size_t);

static void test_elementwise(const char *name, ew_fwd f, ew_bwd b, bool bwd_uses_out) {
    size_t n = 60;
    float *x = get(name, "x", n), *dout = get(name, "dout", n);
    float *out = tu_alloc(n), *dx = tu_alloc(n);
    f(&rt, out, x, n);
    b(&rt, dx, dout, bwd_uses_out ? out : x, n);
    compare(name, "out", out, n, RTOL, ATOL);
    compare(name, "grad.x", dx, n, RTOL, ATOL);
    free(x), free(dout), free(out), free(dx);
}

static void test_softmax(void) {
    int N = 6, C = 10;
    float *x = get("softmax", "x", N * C), *dout = get("softmax", "dout", N * C);
    float *out = tu_alloc(N * C), *dx = tu_alloc(N * C);
    mrt_softmax_forward(&rt, out, x, N, C);
    mrt_softmax_backward(&rt, dx, dout, out, N, C);
    compare("softmax", "out", out, N * C, RTOL, ATOL);
    compare("softmax", "grad.x", dx, N * C, RTOL, ATOL);
    free(x), free(dout), free(out), free(dx);
}

static void test_attention(void) {
    int nwin = 2, n = 5, D = 8, heads = 2;
    size_t N = (size_t)nwin * n;
    float *qkv = get("attention", "qkv", N * 3 * D), *dout = get("attention", "dout", N * D);
    float *out = tu_alloc(N * D), *att = tu_alloc((size_t)nwin * heads * n * n);
    float *dqkv = tu_alloc(N * 3 * D);
    mrt_attention_forward(&rt, out, att, qkv, nwin, n, D, heads);
    mrt_attention_backward(&rt, dqkv, dout, qkv, att, nwin, n, D, heads);
    compare("attention", "out", out, N * D, RTOL, ATOL);
    compare("attention", "grad.qkv", dqkv, N * 3 * D, RTOL, ATOL);
    free(qkv), free(dout), free(out), free(att), free(dqkv);
}

static void test_biwkv(void) {
    int B = 2, T = 9, C = 5;
    size_t n = (size_t)B * T * C;
    float *k = get("biwkv", "k", n), *v = get("biwkv", "v", n), *w = get("biwkv", "w", C);
    float *u = get("biwkv", "u", C), *dout = get("biwkv", "dout", n);
    float *out = tu_alloc(n), *dk = tu_alloc(n), *dv = tu_alloc(n), *dw = tu_alloc(C),
          *du = tu_alloc(C);
    mrt_biwkv_forward(&rt, out, k, v, w, u, B, T, C);
    mrt_biwkv_backward(&rt, dk, dv, dw, du, dout, k, v, w, u, B, T, C);
    compare("biwkv", "out", out, n, RTOL, ATOL);
    compare("biwkv", "grad.k", dk, n, RTOL, ATOL);
    compare("biwkv", "grad.v", dv, n, RTOL, ATOL);
    compare("biwkv", "grad.w", dw, C, RTOL, ATOL);
    compare("biwkv", "grad.u", du, C, RTOL, ATOL);
    free(k), free(v), free(w), free(u), free(dout), free(out), free(dk), free(dv), free(dw);
    free(du);
}

static void test_qshift_tokenmix(void) {
    int Hg = 3, Wg = 4, C = 8, N = Hg * Wg;
    float *x = get("qshift", "x", N * C), *dout = get("qshift", "dout", N * C);
    float *out = tu_alloc(N * C), *dx = tu_alloc(N * C);
    mrt_qshift_forward(out, x, 1, Hg, Wg, C);
    mrt_qshift_backward(dx, dout, 1, Hg, Wg, C);
    compare("qshift", "out", out, N * C, RTOL, ATOL);
    compare("qshift", "grad.x", dx, N * C, RTOL, ATOL);
    free(x), free(dout), free(out), free(dx);

    N = 6;
    x = get("tokenmix", "x", N * C);
    float *xs = get("tokenmix", "xs", N * C), *mu = get("tokenmix", "mu", C);
    dout = get("tokenmix", "dout", N * C);
    out = tu_alloc(N * C), dx = tu_alloc(N * C);
    float *dxs = tu_alloc(N * C), *dmu = tu_alloc(C);
    mrt_tokenmix_forward(&rt, out, x, xs, mu, N, C);
    mrt_tokenmix_backward(&rt, dx, dxs, dmu, dout, x, xs, mu, N, C);
    compare("tokenmix", "out", out, N * C, RTOL, ATOL);
    compare("tokenmix", "grad.x", dx, N * C, RTOL, ATOL);
    compare("tokenmix", "grad.xs", dxs, N * C, RTOL, ATOL);
    compare("tokenmix", "grad.mu", dmu, C, RTOL, ATOL);
    free(x), free(xs), free(mu), free(dout), free(out), free(dx), free(dxs), free(dmu);
}

static void test_conv(const char *name, int k, int stride, bool bias) {
    int B = 2, Cin = 3, H = 7, W = 6, Cout = 4;
    int Ho = mrt_conv2d_out_size(H, stride), Wo = mrt_conv2d_out_size(W, stride);
    size_t nin = (size_t)B * Cin * H * W, nout = (size_t)B * Cout * Ho * Wo;
    size_t nw = (size_t)Cout * Cin * k * k;
    float *x = get(name, "x", nin), *w = get(name, "w", nw);
    float *b = bias ? get(name, "b", Cout) : NULL, *dout = get(name, "dout", nout);
    float *out = tu_alloc(nout), *dx = tu_alloc(nin), *dw = tu_alloc(nw), *db = tu_alloc(Cout);
    mrt_conv2d_forward(&rt, out, x, w, b, B, Cin, H, W, Cout, k, stride);
    mrt_conv2d_backward(&rt, dx, dw, bias ? db : NULL, dout, x, w, B, Cin, H, W, Cout, k, stride);
    compare(name, "out", out, nout, RTOL, ATOL);
    compare(name, "grad.x", dx, nin, RTOL, ATOL);
    compare(name, "grad.w", dw, nw, RTOL, ATOL);
    if (bias) compare(name, "grad.b", db, Cout, RTOL, ATOL);
    free(x), free(w), free(b), free(dout), free(out), free(dx), free(dw), free(db);
}

static void test_maps(void) {
    {
        int B = 2, C = 3, H = 4, W = 5;
        size_t n = (size_t)B * C * H * W;
        float *x = get("upsample", "x", n), *dout = get("upsample", "dout", 4 * n);
        float *out = tu_alloc(4 * n), *dx = tu_alloc(n);
        mrt_upsample2x_forward(out, x, B, C, H, W);
        mrt_upsample2x_backward(dx, dout, B, C, H, W);
        compare("upsample", "out", out, 4 * n, RTOL, ATOL);
        compare("upsample", "grad.x", dx, n, RTOL, ATOL);
        free(x), free(dout), free(out), free(dx);
    }
    {
        int B = 2, C = 2, H = 3, W = 4; /* (B, 4C, H, W) -> (B, C, 2H, 2W) */
        size_t n = (size_t)B * 4 * C * H * W;
        float *x = get("pixelshuffle", "x", n), *dout = get("pixelshuffle", "dout", n);
        float *out = tu_alloc(n), *dx = tu_alloc(n);
        mrt_pixelshuffle_forward(NULL, out, x, B, C, H, W);
        mrt_pixelshuffle_backward(NULL, dx, dout, B, C, H, W);
        compare("pixelshuffle", "out", out, n, RTOL, ATOL);
        compare("pixelshuffle", "grad.x", dx, n, RTOL, ATOL);
        free(x), free(dout), free(out), free(dx);
    }
    {
        int B = 2, C = 3, H = 8, W = 12, p = 4;
        size_t n = (size_t)B * C * H * W;
        float *x = get("patchify", "x", n), *dout = get("patchify", "dout", n);
        float *out = tu_alloc(n), *dx = tu_alloc(n), *img = tu_alloc(n);
        mrt_patchify_forward(out, x, B, C, H, W, p);
        mrt_patchify_backward(dx, dout, B, C, H, W, p);
        compare("patchify", "out", out, n, RTOL, ATOL);
        compare("patchify", "grad.x", dx, n, RTOL, ATOL);
        /* unpatchify is the inverse permutation */
        mrt_unpatchify_forward(img, out, B, C, H, W, p);
        CHECK(memcmp(img, x, n * sizeof(float)) == 0, "unpatchify(patchify(x)) == x");
        free(x), free(dout), free(out), free(dx), free(img);
    }
}

static void test_losses(void) {
    size_t n = 37;
    float *x = get("l1", "x", n), *y = get("l1", "y", n), *dout = get("l1", "dout", 1);
    float *dx = tu_alloc(n);
    float v = mrt_l1_loss(dx, x, y, n, dout[0]);
    compare("l1", "out", &v, 1, RTOL, ATOL);
    compare("l1", "grad.x", dx, n, RTOL, ATOL);
    free(x), free(y), free(dout), free(dx);
    x = get("mse", "x", n), y = get("mse", "y", n), dout = get("mse", "dout", 1);
    dx = tu_alloc(n);
    v = mrt_mse_loss(dx, x, y, n, dout[0]);
    compare("mse", "out", &v, 1, RTOL, ATOL);
    compare("mse", "grad.x", dx, n, RTOL, ATOL);
    free(x), free(y), free(dout), free(dx);
    static const struct {
        const char *name;
        int B, C, H, W;
    } ms[] = {{"msssim", 1, 2, 48, 40}, {"msssim_small", 2, 1, 9, 10}};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        size_t m = (size_t)ms[i].B * ms[i].C * ms[i].H * ms[i].W;
        x = get(ms[i].name, "x", m), y = get(ms[i].name, "y", m);
        dout = get(ms[i].name, "dout", 1);
        dx = tu_alloc(m);
        v = mrt_msssim(&rt, dx, x, y, ms[i].B, ms[i].C, ms[i].H, ms[i].W, dout[0]);
        compare(ms[i].name, "out", &v, 1, RTOL, ATOL);
        compare(ms[i].name, "grad.x", dx, m, 1e-3f, 1e-5f);
        free(x), free(y), free(dout), free(dx);
    }
}

/* Loads a block's parameters (and later compares their gradients) by the
 * names of its parameter table, so the test also pins those names. */
static void load_params(const char *name, mrt_param_ref *refs, int count) {
    for (int i = 0; i < count; i++) *refs[i].slot = get(name, refs[i].name, mrt_param_size(&refs[i]));
}

static void check_param_grads(const char *name, mrt_param_ref *grads, int count) {
    char what[128];
    for (int i = 0; i < count; i++) {
        snprintf(what, sizeof what, "grad.%s", grads[i].name);
        compare(name, what, *grads[i].slot, mrt_param_size(&grads[i]), BLOCK_RTOL, BLOCK_ATOL);
    }
}

static void test_rwkv_block(void) {
    int D = 8, F = 16, Hg = 3, Wg = 4, N = Hg * Wg;
    mrt_rwkv_weights w, dw;
    mrt_param_ref refs[MRT_BLOCK_MAX_PARAMS], drefs[MRT_BLOCK_MAX_PARAMS];
    int count = mrt_rwkv_params(&w, D, F, refs);
    mrt_rwkv_params(&dw, D, F, drefs);
    load_params("rwkv", refs, count);
    float *grads = tu_alloc(mrt_params_bind(drefs, count, NULL));
    mrt_params_bind(drefs, count, grads);
    float *x = get("rwkv", "x", N * D), *dout = get("rwkv", "dout", N * D);
    float *out = tu_alloc(N * D), *dx = tu_alloc(N * D);
    mrt_rwkv_acts a;
    CHECK(mrt_rwkv_acts_alloc(&a, N, D, F) == 0, "rwkv acts");
    mrt_rwkv_block_forward(&rt, out, x, &w, &a, 1, Hg, Wg);
    mrt_rwkv_block_backward(&rt, dx, &dw, dout, x, &w, &a, 1, Hg, Wg);
    compare("rwkv", "out", out, N * D, BLOCK_RTOL, BLOCK_ATOL);
    compare("rwkv", "grad.x", dx, N * D, BLOCK_RTOL, BLOCK_ATOL);
    check_param_grads("rwkv", drefs, count);
    for (int i = 0; i < count; i++) free(*refs[i].slot);
    mrt_rwkv_acts_free(&a);
    free(grads), free(x), free(dout), free(out), free(dx);
}

static void test_vit_block(void) {
    int D = 8, F = 16, nwin = 2, n = 5, heads = 2, N = nwin * n;
    mrt_vit_weights w, dw;
    mrt_param_ref refs[MRT_BLOCK_MAX_PARAMS], drefs[MRT_BLOCK_MAX_PARAMS];
    int count = mrt_vit_params(&w, D, F, refs);
    mrt_vit_params(&dw, D, F, drefs);
    load_params("vit", refs, count);
    float *grads = tu_alloc(mrt_params_bind(drefs, count, NULL));
    mrt_params_bind(drefs, count, grads);
    float *x = get("vit", "x", N * D), *dout = get("vit", "dout", N * D);
    float *out = tu_alloc(N * D), *dx = tu_alloc(N * D);
    mrt_vit_acts a;
    CHECK(mrt_vit_acts_alloc(&a, nwin, n, D, F, heads) == 0, "vit acts");
    mrt_vit_block_forward(&rt, out, x, &w, &a);
    mrt_vit_block_backward(&rt, dx, &dw, dout, x, &w, &a);
    compare("vit", "out", out, N * D, BLOCK_RTOL, BLOCK_ATOL);
    compare("vit", "grad.x", dx, N * D, BLOCK_RTOL, BLOCK_ATOL);
    check_param_grads("vit", drefs, count);
    for (int i = 0; i < count; i++) free(*refs[i].slot);
    mrt_vit_acts_free(&a);
    free(grads), free(x), free(dout), free(out), free(dx);
}

int main(void) {
    char err[512];
    if (mrt_gguf_open(&fx, "fixtures/torch_ops.gguf", err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    for (int threads = 1; threads <= 2; threads++) {
        rt = mrt_rt_make(threads);
        test_linear("linear", 5, 7, 3, true);
        test_linear("linear_nobias", 4, 6, 5, false);
        test_layernorm();
        test_elementwise("gelu", mrt_gelu_forward, mrt_gelu_backward, false);
        test_elementwise("relu2", mrt_relu2_forward, mrt_relu2_backward, false);
        test_elementwise("relu", mrt_relu_forward, mrt_relu_backward, false);
        test_elementwise("sigmoid", mrt_sigmoid_forward, mrt_sigmoid_backward, true);
        test_softmax();
        test_attention();
        test_biwkv();
        test_qshift_tokenmix();
        test_conv("conv3s1", 3, 1, true);
        test_conv("conv3s2", 3, 2, true);
        test_conv("conv1s1", 1, 1, true);
        test_conv("conv3s2_nobias", 3, 2, false);
        test_maps();
        test_losses();
        test_rwkv_block();
        test_vit_block();
    }
    mrt_gguf_close(fx);
    return tu_finish("test_torch");
}
