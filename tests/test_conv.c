/*
 * test_conv.c -- convolution and the spatial maps (conv.c).
 *
 *   - mrt_conv2d_forward against its naive twin for k in {1,3} x stride in
 *     {1,2} x odd/even/tiny sizes x bias/no bias x 1 and 2 threads, and the
 *     1- and 2-thread results must be bitwise identical (conv.c promises it);
 *   - mrt_conv2d_backward against direct loops written here (every gradient,
 *     NULL combinations, accumulation into non-zero buffers), plus
 *     finite-difference checks of din, dweight and dbias;
 *   - shapes whose GEMM spans end mid-row and whose bands meet (Cin = 64);
 *   - the direct 3x3 path's block and tile edges and channel limits;
 *   - the maps: explicit index layouts, and the transposition identity
 *     <forward(a), b> == <a, backward(b)> (backward is the adjoint);
 *   - conv with every array ending at an inaccessible page, so that a read
 *     past the end of any of them (by conv.c or by BLIS) crashes the test.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */

#include "guarded.h"
#include "testutil.h"

/* ------------------------------------------------------------ reference */

/* Direct loops for the three gradients, in double; accumulates like the op. */
static void conv_backward_ref(float *din, float *dweight, float *dbias, const float *dout,
                              const float *in, const float *weight, int B, int Cin, int H,
                              int W, int Cout, int k, int s) {
    int Ho = mrt_conv2d_out_size(H, s), Wo = mrt_conv2d_out_size(W, s), pad = k / 2;
    size_t nin = (size_t)B * Cin * H * W, nw = (size_t)Cout * Cin * k * k;
    double *gi = calloc(nin, sizeof(double)), *gw = calloc(nw, sizeof(double));
    double *gb = calloc((size_t)Cout, sizeof(double));
    for (int b = 0; b < B; b++)
        for (int co = 0; co < Cout; co++)
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++) {
                    double g = dout[(((size_t)b * Cout + co) * Ho + oy) * Wo + ox];
                    gb[co] += g;
                    for (int ci = 0; ci < Cin; ci++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                int iy = oy * s - pad + ky, ix = ox * s - pad + kx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                size_t ii = (((size_t)b * Cin + ci) * H + iy) * W + ix;
                                size_t wi = (((size_t)co * Cin + ci) * k + ky) * k + kx;
                                gw[wi] += g * in[ii];
                                gi[ii] += g * weight[wi];
                            }
                }
    if (din)
        for (size_t i = 0; i < nin; i++) din[i] += (float)gi[i];
    if (dweight)
        for (size_t i = 0; i < nw; i++) dweight[i] += (float)gw[i];
    if (dbias)
        for (int i = 0; i < Cout; i++) dbias[i] += (float)gb[i];
    free(gi);
    free(gw);
    free(gb);
}

static float *copy_of(const float *a, size_t n) {
    float *c = tu_alloc(n);
    memcpy(c, a, sizeof(float) * n);
    return c;
}

/* ---------------------------------------------- forward/backward vs twin */

static void check_conv_case(mrt_rng *rng, int B, int Cin, int H, int W, int Cout, int k, int s,
                            int use_bias) {
    char what[160];
    int Ho = mrt_conv2d_out_size(H, s), Wo = mrt_conv2d_out_size(W, s);
    size_t nin = (size_t)B * Cin * H * W, nw = (size_t)Cout * Cin * k * k;
    size_t nout = (size_t)B * Cout * Ho * Wo;
    float *in = tu_randn(rng, nin, 1.0f), *w = tu_randn(rng, nw, 0.3f);
    float *bias = use_bias ? tu_randn(rng, (size_t)Cout, 1.0f) : NULL;
    float *ref = tu_alloc(nout), *o1 = tu_alloc(nout), *o2 = tu_alloc(nout);
    mrt_conv2d_forward_naive(ref, in, w, bias, B, Cin, H, W, Cout, k, s);
    mrt_rt rt1 = mrt_rt_make(1), rt2 = mrt_rt_make(2);
    mrt_conv2d_forward(&rt1, o1, in, w, bias, B, Cin, H, W, Cout, k, s);
    mrt_conv2d_forward(&rt2, o2, in, w, bias, B, Cin, H, W, Cout, k, s);
    /* float GEMM vs double loops over K = Cin*k*k <= 576 terms of size ~0.3:
     * a few ulp of the sum's magnitude; 1e-4 relative + 1e-4 absolute. */
    snprintf(what, sizeof what, "conv fwd B%d Cin%d %dx%d Cout%d k%d s%d bias%d", B, Cin, H, W,
             Cout, k, s, use_bias);
    tu_close(what, o1, ref, nout, 1e-4f, 1e-4f);
    CHECK(memcmp(o1, o2, sizeof(float) * nout) == 0, "%s: 1 vs 2 threads differ", what);

    /* Backward: every gradient, starting from non-zero buffers (+=). */
    float *dout = tu_randn(rng, nout, 1.0f);
    float *din0 = tu_randn(rng, nin, 1.0f), *dw0 = tu_randn(rng, nw, 1.0f);
    float *db0 = tu_randn(rng, (size_t)Cout, 1.0f);
    float *rin = copy_of(din0, nin), *rw = copy_of(dw0, nw), *rb = copy_of(db0, (size_t)Cout);
    conv_backward_ref(rin, rw, rb, dout, in, w, B, Cin, H, W, Cout, k, s);
    float *din1 = copy_of(din0, nin), *dw1 = copy_of(dw0, nw), *db1 = copy_of(db0, (size_t)Cout);
    float *din2 = copy_of(din0, nin), *dw2 = copy_of(dw0, nw), *db2 = copy_of(db0, (size_t)Cout);
    mrt_conv2d_backward(&rt1, din1, dw1, db1, dout, in, w, B, Cin, H, W, Cout, k, s);
    mrt_conv2d_backward(&rt2, din2, dw2, db2, dout, in, w, B, Cin, H, W, Cout, k, s);
    /* din sums Cout*k*k <= 144 terms; dweight and dbias sum up to B*Ho*Wo
     * (~7000) terms of size ~1 in float: 1e-4 relative + 2e-3 absolute. */
    snprintf(what, sizeof what, "conv bwd din B%d Cin%d %dx%d Cout%d k%d s%d", B, Cin, H, W, Cout,
             k, s);
    tu_close(what, din1, rin, nin, 1e-4f, 2e-3f);
    snprintf(what, sizeof what, "conv bwd dweight B%d Cin%d %dx%d Cout%d k%d s%d", B, Cin, H, W,
             Cout, k, s);
    tu_close(what, dw1, rw, nw, 1e-4f, 2e-3f);
    snprintf(what, sizeof what, "conv bwd dbias B%d Cin%d %dx%d Cout%d k%d s%d", B, Cin, H, W,
             Cout, k, s);
    tu_close(what, db1, rb, (size_t)Cout, 1e-4f, 2e-3f);
    CHECK(memcmp(din1, din2, sizeof(float) * nin) == 0 &&
              memcmp(dw1, dw2, sizeof(float) * nw) == 0 &&
              memcmp(db1, db2, sizeof(float) * (size_t)Cout) == 0,
          "%s: backward 1 vs 2 threads differ", what);

    /* NULL means skip: each gradient alone must equal its part of the full call. */
    float *din3 = copy_of(din0, nin), *dw3 = copy_of(dw0, nw), *db3 = copy_of(db0, (size_t)Cout);
    mrt_conv2d_backward(&rt2, din3, NULL, NULL, dout, in, w, B, Cin, H, W, Cout, k, s);
    mrt_conv2d_backward(&rt2, NULL, dw3, NULL, dout, in, w, B, Cin, H, W, Cout, k, s);
    mrt_conv2d_backward(&rt2, NULL, NULL, db3, dout, in, w, B, Cin, H, W, Cout, k, s);
    mrt_conv2d_backward(&rt2, NULL, NULL, NULL, dout, in, w, B, Cin, H, W, Cout, k, s);
    CHECK(memcmp(din3, din2, sizeof(float) * nin) == 0 &&
              memcmp(dw3, dw2, sizeof(float) * nw) == 0 &&
              memcmp(db3, db2, sizeof(float) * (size_t)Cout) == 0,
          "%s: separate NULL-skipping calls differ from the joint call", what);

    free(in), free(w), free(bias), free(ref), free(o1), free(o2), free(dout);
    free(din0), free(dw0), free(db0), free(rin), free(rw), free(rb);
    free(din1), free(dw1), free(db1), free(din2), free(dw2), free(db2);
    free(din3), free(dw3), free(db3);
}

static void test_conv_vs_naive(mrt_rng *rng) {
    static const int sizes[][2] = {{1, 1}, {2, 3}, {7, 9}, {8, 6}, {5, 5}, {16, 13}};
    for (int k = 1; k <= 3; k += 2)
        for (int s = 1; s <= 2; s++)
            for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
                for (int bias = 0; bias <= 1; bias++)
                    check_conv_case(rng, 2, 3, sizes[i][0], sizes[i][1], 4, k, s, bias);
    /* Bigger images: several bands per image (odd/even col2im phases), spans
     * that end mid-row (Cin = 64: 455-pixel spans for k = 3, 4096 for k = 1,
     * against 3000-pixel rows),
     * and B larger than the unit target. */
    for (int k = 1; k <= 3; k += 2)
        for (int s = 1; s <= 2; s++) {
            check_conv_case(rng, 1, 3, 67, 45, 5, k, s, 1);
            check_conv_case(rng, 1, 64, 5, 3000, 2, k, s, 1);
            check_conv_case(rng, 40, 2, 6, 7, 3, k, s, 0);
        }
    /* The direct 3x3 stride-1 path (conv.c): widths around its 16-pixel
     * blocks and 18-column border tiles, output channels around its blocks
     * of 4 and its limit (DIRECT_MAX_COUT, 32; 33 takes the GEMM). Backward's
     * din runs the same path with the channel roles swapped. */
    static const int widths[] = {15, 16, 17, 18, 19, 33, 34};
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++)
        check_conv_case(rng, 1, 5, 4, widths[i], 7, 3, 1, 1);
    check_conv_case(rng, 2, 16, 9, 40, 16, 3, 1, 1);
    check_conv_case(rng, 1, 33, 6, 35, 32, 3, 1, 0);
    check_conv_case(rng, 1, 8, 6, 35, 33, 3, 1, 1);
}

/* --------------------------------------------------- finite differences */

typedef struct {
    const mrt_rt *rt;
    float *out, *in, *w, *bias;
    int B, Cin, H, W, Cout, k, s;
} conv_ctx;

static void conv_fwd(void *vctx) {
    conv_ctx *c = vctx;
    mrt_conv2d_forward(c->rt, c->out, c->in, c->w, c->bias, c->B, c->Cin, c->H, c->W, c->Cout,
                       c->k, c->s);
}

static void test_conv_gradcheck(mrt_rng *rng) {
    mrt_rt rt = mrt_rt_make(2);
    for (int k = 1; k <= 3; k += 2)
        for (int s = 1; s <= 2; s++) {
            conv_ctx c = {&rt, NULL, NULL, NULL, NULL, 2, 3, 7, 6, 4, k, s};
            int Ho = mrt_conv2d_out_size(c.H, s), Wo = mrt_conv2d_out_size(c.W, s);
            size_t nin = (size_t)c.B * c.Cin * c.H * c.W, nw = (size_t)c.Cout * c.Cin * k * k;
            size_t nout = (size_t)c.B * c.Cout * Ho * Wo;
            c.in = tu_randn(rng, nin, 1.0f);
            c.w = tu_randn(rng, nw, 0.5f);
            c.bias = tu_randn(rng, (size_t)c.Cout, 0.5f);
            c.out = tu_alloc(nout);
            float *r = tu_randn(rng, nout, 1.0f);
            float *din = tu_alloc(nin), *dw = tu_alloc(nw), *db = tu_alloc((size_t)c.Cout);
            conv_fwd(&c);
            mrt_conv2d_backward(&rt, din, dw, db, r, c.in, c.w, c.B, c.Cin, c.H, c.W, c.Cout, k,
                                s);
            /* The loss is linear in each parameter, so the central difference
             * is exact up to float rounding of the outputs: ~1e-6 * |out| / h.
             * h = 1e-2, rtol 1e-3, atol 1e-3. */
            char what[64];
            snprintf(what, sizeof what, "conv din k%d s%d", k, s);
            tu_gradcheck(what, conv_fwd, &c, c.in, nin, din, c.out, r, nout, 1e-2f, 1e-3f, 1e-3f,
                         400);
            snprintf(what, sizeof what, "conv dweight k%d s%d", k, s);
            tu_gradcheck(what, conv_fwd, &c, c.w, nw, dw, c.out, r, nout, 1e-2f, 1e-3f, 1e-3f,
                         400);
            snprintf(what, sizeof what, "conv dbias k%d s%d", k, s);
            tu_gradcheck(what, conv_fwd, &c, c.bias, (size_t)c.Cout, db, c.out, r, nout, 1e-2f,
                         1e-3f, 1e-3f, 400);
            free(c.in), free(c.w), free(c.bias), free(c.out), free(r), free(din), free(dw),
                free(db);
        }
}

/* ------------------------------------------------------------- the maps */

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* <F(a), g> == <a, F^T(g)>, with F^T accumulating onto a non-zero buffer
 * (whose initial content is subtracted back out). Sums of products of
 * N(0,1) values in double; the maps only copy or add up to 4 floats, so the
 * two sides agree to ~1e-6 relative: tolerance 1e-5 relative. */
static void check_adjoint(const char *what, const float *a, size_t na, const float *Fa,
                          const float *g, size_t ng, const float *FTg_plus_z, const float *z) {
    double lhs = dot(Fa, g, ng), rhs = dot(a, FTg_plus_z, na) - dot(a, z, na);
    CHECK(fabs(lhs - rhs) <= 1e-5 * (fabs(lhs) + 1.0), "%s: <Fa,g> %.10g vs <a,F^T g> %.10g",
          what, lhs, rhs);
}

static void test_upsample(mrt_rng *rng) {
    int B = 2, C = 3, H = 5, W = 4;
    size_t n = (size_t)B * C * H * W, n4 = 4 * n;
    float *a = tu_randn(rng, n, 1.0f), *out = tu_alloc(n4);
    mrt_upsample2x_forward(out, a, B, C, H, W);
    int bad = 0;
    for (int p = 0; p < B * C; p++)
        for (int y = 0; y < 2 * H; y++)
            for (int x = 0; x < 2 * W; x++)
                bad += out[((size_t)p * 2 * H + y) * 2 * W + x] !=
                       a[((size_t)p * H + y / 2) * W + x / 2];
    CHECK(bad == 0, "upsample2x layout: %d wrong values", bad);
    float *g = tu_randn(rng, n4, 1.0f), *z = tu_randn(rng, n, 1.0f), *d = copy_of(z, n);
    mrt_upsample2x_backward(d, g, B, C, H, W);
    check_adjoint("upsample2x", a, n, out, g, n4, d, z);
    free(a), free(out), free(g), free(z), free(d);
}

static void test_pixelshuffle(mrt_rng *rng) {
    int B = 2, C = 3, H = 3, W = 5;
    size_t n = (size_t)B * 4 * C * H * W;
    float *a = tu_randn(rng, n, 1.0f), *out = tu_alloc(n);
    mrt_pixelshuffle_forward(NULL, out, a, B, C, H, W);
    /* PyTorch: out[b, c, 2y+i, 2x+j] = in[b, c*4 + i*2 + j, y, x]. */
    int bad = 0;
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    for (int i = 0; i < 2; i++)
                        for (int j = 0; j < 2; j++)
                            bad += out[(((size_t)b * C + c) * 2 * H + 2 * y + i) * 2 * W + 2 * x +
                                       j] !=
                                   a[(((size_t)b * 4 * C + c * 4 + i * 2 + j) * H + y) * W + x];
    CHECK(bad == 0, "pixelshuffle layout: %d wrong values", bad);
    float *g = tu_randn(rng, n, 1.0f), *z = tu_randn(rng, n, 1.0f), *d = copy_of(z, n);
    mrt_pixelshuffle_backward(NULL, d, g, B, C, H, W);
    check_adjoint("pixelshuffle", a, n, out, g, n, d, z);
    /* A permutation: backward of forward's output gives the input back. */
    float *back = tu_alloc(n);
    mrt_pixelshuffle_backward(NULL, back, out, B, C, H, W);
    CHECK(memcmp(back, a, sizeof(float) * n) == 0, "pixelshuffle backward(forward(a)) != a");
    free(a), free(out), free(g), free(z), free(d), free(back);
}

static void test_patchify(mrt_rng *rng) {
    int B = 2, C = 3, H = 8, W = 12, p = 4, Hp = H / p, Wp = W / p, F = C * p * p;
    size_t n = (size_t)B * C * H * W;
    float *img = tu_randn(rng, n, 1.0f), *tok = tu_alloc(n);
    mrt_patchify_forward(tok, img, B, C, H, W, p);
    int bad = 0;
    for (int b = 0; b < B; b++)
        for (int py = 0; py < Hp; py++)
            for (int px = 0; px < Wp; px++)
                for (int c = 0; c < C; c++)
                    for (int dy = 0; dy < p; dy++)
                        for (int dx = 0; dx < p; dx++) {
                            size_t t = ((size_t)b * Hp + py) * Wp + px;
                            bad += tok[t * F + (size_t)(c * p + dy) * p + dx] !=
                                   img[(((size_t)b * C + c) * H + py * p + dy) * W + px * p + dx];
                        }
    CHECK(bad == 0, "patchify layout: %d wrong values", bad);
    float *back = tu_alloc(n);
    mrt_unpatchify_forward(back, tok, B, C, H, W, p);
    CHECK(memcmp(back, img, sizeof(float) * n) == 0, "unpatchify(patchify(x)) != x");

    float *g = tu_randn(rng, n, 1.0f), *z = tu_randn(rng, n, 1.0f), *d = copy_of(z, n);
    mrt_patchify_backward(d, g, B, C, H, W, p);
    check_adjoint("patchify", img, n, tok, g, n, d, z);
    /* unpatchify: a = tokens, F(a) = image. */
    float *tok2 = tu_randn(rng, n, 1.0f), *img2 = tu_alloc(n), *d2 = copy_of(z, n);
    mrt_unpatchify_forward(img2, tok2, B, C, H, W, p);
    mrt_unpatchify_backward(d2, g, B, C, H, W, p);
    check_adjoint("unpatchify", tok2, n, img2, g, n, d2, z);
    /* p = 1 is a plain NCHW -> NHWC transpose. */
    float *t1 = tu_alloc(n);
    mrt_patchify_forward(t1, img, B, C, H, W, 1);
    CHECK(t1[((size_t)1 * H * W + 2 * W + 3) * C + 2] == img[(((size_t)1 * C + 2) * H + 2) * W + 3],
          "patchify p=1 is not NHWC");
    free(img), free(tok), free(back), free(g), free(z), free(d), free(tok2), free(img2),
        free(d2), free(t1);
}

/* ------------------------------------------------- reads past the end */

static void check_guarded(mrt_rng *rng, int B, int Cin, int H, int W, int Cout, int k, int s) {
    int Ho = mrt_conv2d_out_size(H, s), Wo = mrt_conv2d_out_size(W, s);
    size_t nin = (size_t)B * Cin * H * W, nw = (size_t)Cout * Cin * k * k;
    size_t nout = (size_t)B * Cout * Ho * Wo;
    snprintf(guard_case, sizeof guard_case, "conv B%d Cin%d %dx%d Cout%d k%d s%d", B, Cin, H, W,
             Cout, k, s);
    float *in = tu_randn(rng, nin, 1.0f), *w = tu_randn(rng, nw, 0.3f);
    float *bias = tu_randn(rng, (size_t)Cout, 1.0f), *dout = tu_randn(rng, nout, 1.0f);
    float *out = tu_alloc(nout), *din = tu_alloc(nin), *dw = tu_alloc(nw);
    float *db = tu_alloc((size_t)Cout);
    mrt_rt rt = mrt_rt_make(2);
    mrt_conv2d_forward(&rt, out, in, w, bias, B, Cin, H, W, Cout, k, s);
    mrt_conv2d_backward(&rt, din, dw, db, dout, in, w, B, Cin, H, W, Cout, k, s);
    guarded gin = guarded_copy(in, nin), gw = guarded_copy(w, nw);
    guarded gb = guarded_copy(bias, (size_t)Cout), gdout = guarded_copy(dout, nout);
    guarded gout = guarded_copy(out, nout), gdin = guarded_copy(din, nin);
    guarded gdw = guarded_copy(dw, nw), gdb = guarded_copy(db, (size_t)Cout);
    memset(gout.p, 0, sizeof(float) * nout);
    memset(gdin.p, 0, sizeof(float) * nin);
    memset(gdw.p, 0, sizeof(float) * nw);
    memset(gdb.p, 0, sizeof(float) * (size_t)Cout);
    mrt_conv2d_forward(&rt, gout.p, gin.p, gw.p, gb.p, B, Cin, H, W, Cout, k, s);
    mrt_conv2d_backward(&rt, gdin.p, gdw.p, gdb.p, gdout.p, gin.p, gw.p, B, Cin, H, W, Cout, k,
                        s);
    /* Same arrays, other addresses: the same bits. */
    CHECK(memcmp(gout.p, out, sizeof(float) * nout) == 0 &&
              memcmp(gdin.p, din, sizeof(float) * nin) == 0 &&
              memcmp(gdw.p, dw, sizeof(float) * nw) == 0 &&
              memcmp(gdb.p, db, sizeof(float) * (size_t)Cout) == 0,
          "%s: guarded copies give different results", guard_case);
    guarded all[] = {gin, gw, gb, gdout, gout, gdin, gdw, gdb};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) guarded_free(all[i]);
    free(in), free(w), free(bias), free(dout), free(out), free(din), free(dw), free(db);
}

/* Debian's BLIS 0.9.0 has "sup" (small/unpacked) zen3/haswell kernels that
 * read past the end of an operand for some shapes (flame/blis#821, fixed
 * upstream by PR #824 in 2024; also #635); with the conv's strides that read
 * can land a whole image beyond the array. gemm.c must keep BLIS off that
 * path (bli_rntm_disable_l3_sup) for this test to pass. */
static void test_conv_guarded(mrt_rng *rng) {
    signal(SIGSEGV, guard_segv);
    for (int k = 1; k <= 3; k += 2)
        for (int s = 1; s <= 2; s++) {
            check_guarded(rng, 1, 16, 64, 64, 16, k, s);
            check_guarded(rng, 2, 3, 33, 17, 5, k, s);
            check_guarded(rng, 1, 64, 24, 40, 16, k, s);
            check_guarded(rng, 1, 16, 96, 128, 3, k, s);
        }
    signal(SIGSEGV, SIG_DFL);
}

int main(void) {
    mrt_rng rng;
    mrt_rng_seed(&rng, 1234);
    test_conv_vs_naive(&rng);
    test_conv_gradcheck(&rng);
    test_upsample(&rng);
    test_pixelshuffle(&rng);
    test_patchify(&rng);
    test_conv_guarded(&rng);
    return tu_finish("test_conv");
}
