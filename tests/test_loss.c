/*
 * test_loss.c -- L1, MSE and MS-SSIM (loss.c).
 *
 *   - L1 / MSE: values against double sums, gradients against the closed
 *     form and finite differences, accumulation with a scale;
 *   - MS-SSIM value against a direct double-precision reference written here
 *     from the definition in runtime.h (2-D window sums, no separable
 *     filtering), over sizes that use 1..5 scales and the small-image rule;
 *   - sanity: identical images give 1, values fall with noise, 1 vs 2
 *     threads are bitwise identical, the batch value is the plane mean;
 *   - the gradient: per-pixel central differences (tu_gradcheck) and
 *     directional derivatives along random directions, at 8x8 (S = 1),
 *     40x40 (S = 2), 64x64 (S = 3), 96x96 (S = 4) and 181x190 (S = 5, odd
 *     sizes so pooling drops rows and columns), and with the clamp active.
 */
#include "testutil.h"

/* ------------------------------------------------------------ L1 and MSE */

typedef struct {
    float *out, *x, *y;
    size_t n;
    int mse;
} pw_ctx;

static void pw_fwd(void *v) {
    pw_ctx *c = v;
    c->out[0] = c->mse ? mrt_mse_loss(NULL, c->x, c->y, c->n, 1.0f)
                       : mrt_l1_loss(NULL, c->x, c->y, c->n, 1.0f);
}

static void test_pointwise(mrt_rng *rng) {
    size_t n = 1000;
    float *x = tu_randn(rng, n, 1.0f), *y = tu_alloc(n);
    /* |x - y| >= 0.1 everywhere, so finite differences never cross L1's kink. */
    for (size_t i = 0; i < n; i++) {
        float d = 0.1f + mrt_rng_uniform(rng);
        y[i] = x[i] + (i % 2 ? d : -d);
    }
    double l1 = 0, l2 = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)x[i] - y[i];
        l1 += fabs(d), l2 += d * d;
    }
    l1 /= n, l2 /= n;
    for (int mse = 0; mse <= 1; mse++) {
        const char *name = mse ? "mse" : "l1";
        float *dx = tu_randn(rng, n, 1.0f), *dx0 = tu_alloc(n), *want = tu_alloc(n);
        memcpy(dx0, dx, sizeof(float) * n);
        float scale = -2.5f;
        float v = mse ? mrt_mse_loss(dx, x, y, n, scale) : mrt_l1_loss(dx, x, y, n, scale);
        double ref = mse ? l2 : l1;
        CHECK(fabs(v - ref) <= 1e-6 * ref, "%s value %.9g want %.9g", name, v, ref);
        /* Accumulates scale * dloss/dx onto what was there. */
        for (size_t i = 0; i < n; i++) {
            double d = (double)x[i] - y[i];
            double g = mse ? 2.0 * d / n : (d > 0 ? 1.0 : -1.0) / n;
            want[i] = (float)(dx0[i] + scale * g);
        }
        char what[64];
        snprintf(what, sizeof what, "%s gradient closed form", name);
        tu_close(what, dx, want, n, 1e-6f, 1e-7f);
        /* Finite differences of the loss itself (scale 1). The loss is a
         * mean of 1000 terms: a step h = 1e-2 changes it by ~1e-5, and the
         * float result is rounded at ~6e-8 * loss, so the difference
         * quotient is good to ~1e-5 absolute; gradients are ~1e-3. */
        float out = 0.0f, r = 1.0f;
        float *g1 = tu_alloc(n);
        if (mse) mrt_mse_loss(g1, x, y, n, 1.0f);
        else mrt_l1_loss(g1, x, y, n, 1.0f);
        pw_ctx c = {&out, x, y, n, mse};
        snprintf(what, sizeof what, "%s gradcheck", name);
        tu_gradcheck(what, pw_fwd, &c, x, n, g1, &out, &r, 1, 1e-2f, 2e-2f, 2e-5f, 100);
        /* NULL dx: just the value. */
        float v2 = mse ? mrt_mse_loss(NULL, x, y, n, 1.0f) : mrt_l1_loss(NULL, x, y, n, 1.0f);
        CHECK(v2 == v, "%s: NULL dx changes the value", name);
        free(dx), free(dx0), free(want), free(g1);
    }
    /* x == y: zero loss; L1's subgradient at 0 is 0 (as PyTorch). */
    float g[3] = {0, 0, 0}, a[3] = {1, 2, 3};
    CHECK(mrt_l1_loss(g, a, a, 3, 1.0f) == 0.0f && g[0] == 0 && g[1] == 0 && g[2] == 0,
          "l1 at x == y");
    CHECK(mrt_mse_loss(g, a, a, 3, 1.0f) == 0.0f && g[0] == 0, "mse at x == y");
    free(x), free(y);
}

/* ------------------------------------------------ MS-SSIM reference (double) */

/* MS-SSIM of one plane straight from the definition in runtime.h, in double:
 * the weights, the scale rule, explicit pooling, window sums over rows then
 * columns. Independent of loss.c's code; the finite differences of the
 * gradient checks run on it, since double resolves steps that the float
 * result of mrt_msssim cannot (its last bit is ~6e-8). */
static double ref_msssim_plane(const float *xf, const float *yf, int H, int W) {
    static const double wts[5] = {0.0448, 0.2856, 0.3001, 0.2363, 0.1333};
    int m = H < W ? H : W, S = 0;
    for (int side = m; S < 5 && side >= 11; side /= 2) S++;
    if (S == 0) S = 1;
    int ws = m >= 11 ? 11 : (m % 2 ? m : m - 1);
    double g[11], gs = 0;
    for (int i = 0; i < ws; i++) {
        double d = i - ws / 2;
        g[i] = exp(-d * d / 4.5), gs += g[i];
    }
    for (int i = 0; i < ws; i++) g[i] /= gs;
    double wsum = 0;
    for (int j = 0; j < S; j++) wsum += wts[j];
    size_t n = (size_t)H * W;
    double *x = malloc(sizeof(double) * n), *y = malloc(sizeof(double) * n);
    double *img[5], *row[5], *map[5];
    for (int k = 0; k < 5; k++) {
        img[k] = malloc(sizeof(double) * n);
        row[k] = malloc(sizeof(double) * n);
        map[k] = malloc(sizeof(double) * n);
    }
    for (size_t i = 0; i < n; i++) x[i] = xf[i], y[i] = yf[i];
    double ms = 1.0;
    int h = H, w = W;
    for (int j = 0; j < S; j++) {
        if (j) { /* 2x2 mean, odd row/column dropped, in place */
            int h2 = h / 2, w2 = w / 2;
            double *v[2] = {x, y};
            for (int t = 0; t < 2; t++)
                for (int r = 0; r < h2; r++)
                    for (int c = 0; c < w2; c++)
                        v[t][r * w2 + c] = (v[t][2 * r * w + 2 * c] + v[t][2 * r * w + 2 * c + 1] +
                                            v[t][(2 * r + 1) * w + 2 * c] +
                                            v[t][(2 * r + 1) * w + 2 * c + 1]) /
                                           4;
            h = h2, w = w2;
        }
        int hf = h - ws + 1, wf = w - ws + 1;
        for (int i = 0; i < h * w; i++) {
            img[0][i] = x[i], img[1][i] = y[i];
            img[2][i] = x[i] * x[i], img[3][i] = y[i] * y[i], img[4][i] = x[i] * y[i];
        }
        for (int k = 0; k < 5; k++) {
            for (int r = 0; r < h; r++)
                for (int c = 0; c < wf; c++) {
                    double s = 0;
                    for (int u = 0; u < ws; u++) s += g[u] * img[k][r * w + c + u];
                    row[k][r * wf + c] = s;
                }
            for (int r = 0; r < hf; r++)
                for (int c = 0; c < wf; c++) {
                    double s = 0;
                    for (int u = 0; u < ws; u++) s += g[u] * row[k][(r + u) * wf + c];
                    map[k][r * wf + c] = s;
                }
        }
        double scs = 0, sss = 0, C1 = 1e-4, C2 = 9e-4;
        for (int i = 0; i < hf * wf; i++) {
            double mx = map[0][i], my = map[1][i];
            double cs = (2 * (map[4][i] - mx * my) + C2) /
                        (map[2][i] - mx * mx + map[3][i] - my * my + C2);
            double l = (2 * mx * my + C1) / (mx * mx + my * my + C1);
            scs += cs, sss += l * cs;
        }
        double v = (j < S - 1 ? scs : sss) / (hf * wf);
        double wj = S == 5 ? wts[j] : wts[j] / wsum;
        ms *= pow(v < 1e-6 ? 1e-6 : v, wj);
    }
    free(x), free(y);
    for (int k = 0; k < 5; k++) free(img[k]), free(row[k]), free(map[k]);
    return ms;
}

static double ref_msssim(const float *x, const float *y, int planes, int H, int W) {
    double s = 0;
    for (int p = 0; p < planes; p++)
        s += ref_msssim_plane(x + (size_t)p * H * W, y + (size_t)p * H * W, H, W);
    return s / planes;
}

static float max_abs(const float *a, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(a[i]));
    return m;
}

/* Smooth random "photo-like" planes in [0, 1]: a blurred random field plus
 * noise of amplitude `noise` added to make y, both clipped to [0, 1]. */
static void make_pair(mrt_rng *rng, float *x, float *y, int planes, int H, int W, float noise) {
    for (int p = 0; p < planes; p++) {
        float *a = x + (size_t)p * H * W, *b = y + (size_t)p * H * W;
        float fx = 0.1f + 0.3f * mrt_rng_uniform(rng), fy = 0.1f + 0.3f * mrt_rng_uniform(rng);
        float ph = 6.2832f * mrt_rng_uniform(rng);
        for (int r = 0; r < H; r++)
            for (int c = 0; c < W; c++) {
                float v = 0.5f + 0.25f * sinf(fx * c + ph) * cosf(fy * r) +
                          0.1f * mrt_rng_normal(rng);
                a[r * W + c] = v < 0 ? 0 : v > 1 ? 1 : v;
            }
        for (int i = 0; i < H * W; i++) {
            float v = a[i] + noise * mrt_rng_normal(rng);
            b[i] = v < 0 ? 0 : v > 1 ? 1 : v;
        }
    }
}

static void test_msssim_values(mrt_rng *rng) {
    mrt_rt rt = mrt_rt_make(2);
    /* Sizes covering S = 1 (shrunk windows 1, 7, 9), 2, 3, 4, 5 scales and
     * odd sizes at every pooling. */
    static const int sizes[][2] = {{1, 1}, {8, 8}, {7, 30}, {10, 9}, {40, 40}, {13, 29},
                                   {64, 64}, {96, 96}, {200, 200}, {181, 190}};
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        int H = sizes[t][0], W = sizes[t][1], B = 1, C = 2;
        size_t n = (size_t)B * C * H * W;
        float *x = tu_alloc(n), *y = tu_alloc(n);
        make_pair(rng, x, y, B * C, H, W, 0.05f);
        float same = mrt_msssim(&rt, NULL, x, x, B, C, H, W, 1.0f);
        CHECK(fabsf(same - 1.0f) <= 1e-6f, "msssim(x, x) at %dx%d = %.9g", H, W, same);
        float v = mrt_msssim(&rt, NULL, x, y, B, C, H, W, 1.0f);
        double ref = ref_msssim(x, y, B * C, H, W);
        /* Float maps vs double sums: E[x^2] - mu^2 cancels, so allow 2e-5. */
        CHECK(fabs(v - ref) <= 2e-5, "msssim %dx%d = %.9g, reference %.9g", H, W, v, ref);
        CHECK(v > 0.0f && v <= 1.0f, "msssim %dx%d = %.9g outside (0, 1]", H, W, v);
        free(x), free(y);
    }
    /* Falls as the noise grows. */
    for (int H = 40; H <= 200; H += 160) {
        int W = H;
        size_t n = (size_t)3 * H * W;
        float *x = tu_alloc(n), *y = tu_alloc(n);
        float prev = 1.0f;
        static const float noise[] = {0.005f, 0.02f, 0.05f, 0.1f, 0.2f, 0.4f};
        for (int k = 0; k < 6; k++) {
            mrt_rng r2;
            mrt_rng_seed(&r2, 99); /* the same x each time */
            make_pair(&r2, x, y, 3, H, W, noise[k]);
            float v = mrt_msssim(&rt, NULL, x, y, 1, 3, H, W, 1.0f);
            CHECK(v > 0.0f && v < prev, "msssim at %dx%d noise %g = %.6g, not below %.6g", H, W,
                  noise[k], v, prev);
            prev = v;
        }
        free(x), free(y);
    }
    /* Threads, batch mean, accumulation with a scale. */
    {
        int B = 2, C = 3, H = 50, W = 37;
        size_t n = (size_t)B * C * H * W, hw = (size_t)H * W;
        float *x = tu_alloc(n), *y = tu_alloc(n);
        make_pair(rng, x, y, B * C, H, W, 0.1f);
        mrt_rt rt1 = mrt_rt_make(1);
        float *d1 = tu_alloc(n), *d2 = tu_alloc(n), *d3 = tu_randn(rng, n, 1.0f);
        float *d3_0 = tu_alloc(n);
        memcpy(d3_0, d3, sizeof(float) * n);
        float v1 = mrt_msssim(&rt1, d1, x, y, B, C, H, W, 1.0f);
        float v2 = mrt_msssim(&rt, d2, x, y, B, C, H, W, 1.0f);
        CHECK(v1 == v2 && memcmp(d1, d2, sizeof(float) * n) == 0, "msssim 1 vs 2 threads differ");
        double mean = 0;
        for (int p = 0; p < B * C; p++)
            mean += mrt_msssim(&rt, NULL, x + hw * p, y + hw * p, 1, 1, H, W, 1.0f);
        mean /= B * C;
        CHECK(fabs(v1 - mean) <= 1e-7, "msssim batch %.9g vs mean of planes %.9g", v1, mean);
        /* One plane alone has gradient B*C times larger (mean over planes). */
        float *dp = tu_alloc(hw);
        mrt_msssim(&rt, dp, x + hw * 4, y + hw * 4, 1, 1, H, W, 1.0f);
        float *want = tu_alloc(n);
        for (size_t i = 0; i < hw; i++) want[i] = dp[i] / (B * C);
        /* The gradient is a sum of terms that partly cancel, computed in
         * float: compare to 1e-5 of its largest value. */
        float gmax = max_abs(d1, n);
        tu_close("msssim plane gradient = batch gradient * B*C", d1 + hw * 4, want, hw, 1e-5f,
                 1e-5f * gmax);
        float v3 = mrt_msssim(&rt, d3, x, y, B, C, H, W, -3.0f);
        for (size_t i = 0; i < n; i++) want[i] = d3_0[i] - 3.0f * d1[i];
        CHECK(v3 == v1, "msssim value depends on scale");
        tu_close("msssim accumulates scale * gradient", d3, want, n, 1e-5f, 3e-5f * gmax);
        free(x), free(y), free(d1), free(d2), free(d3), free(d3_0), free(dp), free(want);
    }
    /* Identical images: the maximum, so the gradient vanishes. */
    {
        int H = 64, W = 64;
        size_t n = (size_t)H * W;
        float *x = tu_alloc(n), *y = tu_alloc(n), *d = tu_alloc(n);
        make_pair(rng, x, y, 1, H, W, 0.0f);
        mrt_msssim(&rt, d, x, x, 1, 1, H, W, 1.0f);
        float maxg = 0;
        for (size_t i = 0; i < n; i++) maxg = fmaxf(maxg, fabsf(d[i]));
        CHECK(maxg < 1e-7f, "msssim gradient at x == y: max %.3g", maxg);
        free(x), free(y), free(d);
    }
}

/* ---------------------------------------------------- MS-SSIM gradient */

/* tu_gradcheck's forward: the double reference, less its value at the
 * starting point so that the float `out` keeps the step's full precision. */
typedef struct {
    float *out, *x, *y;
    int planes, H, W;
    double base;
} ms_ctx;

static void ms_ref_fwd(void *v) {
    ms_ctx *c = v;
    c->out[0] = (float)(ref_msssim(c->x, c->y, c->planes, c->H, c->W) - c->base);
}

/* Per-pixel central differences on `checks` pixels, directional derivatives
 * along random directions and along the gradient itself, all against the
 * double reference; and one directional check against mrt_msssim itself. */
static void check_msssim_grad(mrt_rng *rng, int B, int C, int H, int W, float noise, int checks,
                              int anti) {
    mrt_rt rt = mrt_rt_make(2);
    int planes = B * C;
    size_t n = (size_t)planes * H * W;
    float *x = tu_alloc(n), *y = tu_alloc(n), *g = tu_alloc(n), out = 0, r = 1;
    make_pair(rng, x, y, planes, H, W, noise);
    if (anti) /* y = 1 - x: negative correlation, every cs < 0, the clamp is active */
        for (size_t i = 0; i < n; i++) y[i] = 1.0f - x[i];
    float v = mrt_msssim(&rt, g, x, y, B, C, H, W, 1.0f);
    int finite = 1;
    for (size_t i = 0; i < n; i++) finite &= isfinite(g[i]) != 0;
    CHECK(finite && isfinite(v), "msssim %dx%d: non-finite value or gradient", H, W);
    if (anti) /* every factor clamped: eps^(sum of weights) = 1e-6 (S < 5) */
        CHECK(fabsf(v - 1e-6f) <= 1e-9f && max_abs(g, n) == 0.0f,
              "msssim fully clamped = %.9g (want 1e-6), max |grad| %g (want 0)", v,
              max_abs(g, n));
    ms_ctx c = {&out, x, y, planes, H, W, 0.0};
    c.base = ref_msssim(x, y, planes, H, W);
    char what[96];
    /* Per pixel on the double reference, h = 2^-10 so that x +- h is exact
     * in float (a step like 1e-3 would be rounded by up to 3e-5 of itself).
     * The quotient is then exact to ~1e-9 plus an O(h^2) curvature term; the
     * analytic gradient, computed in float from terms that partly cancel, is
     * good to ~1e-5 of the largest gradient: rtol 2e-4, atol 2e-5 * max. */
    float gmax = max_abs(g, n);
    snprintf(what, sizeof what, "msssim per-pixel %dx%d B%d C%d%s", H, W, B, C,
             anti ? " (clamped)" : "");
    tu_gradcheck(what, ms_ref_fwd, &c, x, n, g, &out, &r, 1, 0x1p-10f, 2e-4f,
                 2e-5f * gmax + 1e-12f, (size_t)checks);
    /* Directional: (f(x + h d) - f(x - h d)) / 2h == <g, d>, with <g, d>
     * taken over the perturbation as actually stored in float. On the
     * reference h = 1e-4: rtol 2e-4, and since <g, d> sums n terms whose
     * float errors (~1e-5 * max |g| each, see above) add like a random walk,
     * atol 2e-5 * max|g| * |d|. On mrt_msssim itself h = 1e-2, where its
     * float value moves by ~1e-4: rtol 2e-2. */
    float *xp = tu_alloc(n), *xm = tu_alloc(n), *dir = tu_alloc(n);
    double gnorm = 0;
    for (size_t i = 0; i < n; i++) gnorm += (double)g[i] * g[i];
    gnorm = sqrt(gnorm);
    for (int t = 0; t < 4; t++) {
        int own = t == 3; /* the last one differentiates mrt_msssim itself */
        for (size_t i = 0; i < n; i++)
            dir[i] = t != 2 || gnorm == 0 ? mrt_rng_normal(rng)
                                          : (float)(g[i] / gnorm * sqrt((double)n));
        double h = own ? 1e-2 : 1e-4, dot = 0, dnorm = 0;
        for (size_t i = 0; i < n; i++) {
            xp[i] = x[i] + (float)h * dir[i];
            xm[i] = x[i] - (float)h * dir[i];
            double di = ((double)xp[i] - xm[i]) / (2 * h);
            dot += (double)g[i] * di;
            dnorm += di * di;
        }
        double fp = own ? mrt_msssim(&rt, NULL, xp, y, B, C, H, W, 1.0f)
                        : ref_msssim(xp, y, planes, H, W);
        double fm = own ? mrt_msssim(&rt, NULL, xm, y, B, C, H, W, 1.0f)
                        : ref_msssim(xm, y, planes, H, W);
        double num = (fp - fm) / (2 * h), tol = own ? 2e-2 : 2e-4;
        double atol = own ? 1e-9 : 2e-5 * gmax * sqrt(dnorm) + 1e-12;
        CHECK(fabs(num - dot) <= tol * fabs(dot) + atol,
              "msssim directional %dx%d%s dir %d: analytic %.9g numeric %.9g", H, W,
              anti ? " (clamped)" : "", t, dot, num);
    }
    free(x), free(y), free(g), free(xp), free(xm), free(dir);
}

static void test_msssim_grad(mrt_rng *rng) {
    check_msssim_grad(rng, 1, 1, 8, 8, 0.1f, 64, 0);     /* S = 1, 7-tap window */
    check_msssim_grad(rng, 1, 2, 40, 40, 0.1f, 60, 0);   /* S = 2 */
    check_msssim_grad(rng, 1, 1, 64, 64, 0.1f, 80, 0);   /* S = 3 */
    check_msssim_grad(rng, 1, 1, 96, 96, 0.1f, 60, 0);   /* S = 4 */
    check_msssim_grad(rng, 1, 1, 181, 190, 0.1f, 20, 0); /* S = 5, odd sizes */
    check_msssim_grad(rng, 1, 1, 64, 64, 0.1f, 40, 1);   /* clamp active */
}

int main(void) {
    mrt_rng rng;
    mrt_rng_seed(&rng, 4321);
    test_pointwise(&rng);
    test_msssim_values(&rng);
    test_msssim_grad(&rng);
    return tu_finish("test_loss");
}
