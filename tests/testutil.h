/*
 * testutil.h -- the few helpers every C test uses: checks that count
 * failures, random tensors, comparisons with a stated tolerance, and a
 * finite-difference gradient checker.
 *
 * A test binary returns non-zero when any check failed; ctest reports it.
 */
#ifndef MRT_TESTUTIL_H
#define MRT_TESTUTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mrt.h"
#include "runtime.h"

static int tu_failures = 0;
static int tu_checks = 0;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        tu_checks++;                                                            \
        if (!(cond)) {                                                          \
            tu_failures++;                                                      \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);     \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
        }                                                                       \
    } while (0)

static inline int tu_finish(const char *name) {
    printf("%s: %d checks, %d failed\n", name, tu_checks, tu_failures);
    return tu_failures ? 1 : 0;
}

static inline void *tu_alloc(size_t nfloats) {
    float *p = calloc(nfloats ? nfloats : 1, sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static inline float *tu_randn(mrt_rng *rng, size_t n, float std) {
    float *p = tu_alloc(n);
    for (size_t i = 0; i < n; i++) p[i] = std * mrt_rng_normal(rng);
    return p;
}

static inline float *tu_rand_uniform(mrt_rng *rng, size_t n, float lo, float hi) {
    float *p = tu_alloc(n);
    for (size_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * mrt_rng_uniform(rng);
    return p;
}

/* Largest |a-b| / (atol + rtol*|b|) over the arrays; <= 1 means "close".
 * Reports the worst index under `what` when it fails. */
static inline int tu_close(const char *what, const float *a, const float *b, size_t n,
                           float rtol, float atol) {
    double worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)a[i] - (double)b[i]);
        double lim = atol + rtol * fabs((double)b[i]);
        double r = err / lim;
        if (!(r <= worst)) { /* also catches NaN */
            worst = r;
            wi = i;
        }
    }
    tu_checks++;
    if (!(worst <= 1.0)) {
        tu_failures++;
        fprintf(stderr, "FAIL %s: index %zu: got %.8g want %.8g (rtol %g atol %g)\n", what, wi,
                (double)a[wi], (double)b[wi], (double)rtol, (double)atol);
        return 0;
    }
    return 1;
}

/*
 * Finite-difference gradient check.
 *
 * The scalar under test is L = sum_i out[i] * r[i] for a fixed random r, so
 * the analytic gradient of any input is what the op's backward returns for
 * dout = r. `forward(ctx)` recomputes `out` from the current inputs; the
 * checker perturbs `param[i]` by +-h for up to max_checks indices spread over
 * the tensor and compares the central difference with grad[i]:
 *     |analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|).
 * Where +-h crosses a ReLU's kink the central difference mixes two slopes;
 * such a point shows as one-sided differences that disagree with each
 * other beyond the tolerance, and there the analytic gradient must match
 * one of them (the side without the kink) instead. Which points land on a
 * kink depends on the last bits of the forward pass, i.e. on the BLIS
 * kernels of the machine.
 */
typedef void (*tu_forward_fn)(void *ctx);

static inline double tu_dot(const float *out, const float *r, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)out[i] * (double)r[i];
    return s;
}

static inline int tu_gradcheck(const char *what, tu_forward_fn forward, void *ctx, float *param,
                               size_t n, const float *grad, const float *out, const float *r,
                               size_t nout, float h, float rtol, float atol, size_t max_checks) {
    size_t step = n > max_checks ? n / max_checks : 1;
    int ok = 1;
    double worst = 0;
    size_t wi = 0;
    double wa = 0, wn = 0;
    forward(ctx);
    double l0 = tu_dot(out, r, nout);
    for (size_t i = (step > 1 ? step / 2 : 0); i < n; i += step) {
        float saved = param[i];
        param[i] = saved + h;
        forward(ctx);
        double lp = tu_dot(out, r, nout);
        param[i] = saved - h;
        forward(ctx);
        double lm = tu_dot(out, r, nout);
        param[i] = saved;
        double numeric = (lp - lm) / (2.0 * (double)h);
        double analytic = grad[i];
        double lim = atol + rtol * fmax(fabs(analytic), fabs(numeric));
        double ratio = fabs(analytic - numeric) / lim;
        double right = (lp - l0) / (double)h, left = (l0 - lm) / (double)h;
        double sides = atol + rtol * fmax(fabs(right), fabs(left));
        if (ratio > 1.0 && fabs(right - left) > sides) { /* a kink within +-h */
            double r1 = fabs(analytic - right) / (atol + rtol * fmax(fabs(analytic), fabs(right)));
            double r2 = fabs(analytic - left) / (atol + rtol * fmax(fabs(analytic), fabs(left)));
            ratio = fmin(r1, r2);
            if (ratio > 1.0) numeric = r1 < r2 ? right : left;
        }
        if (!(ratio <= worst)) {
            worst = ratio;
            wi = i;
            wa = analytic;
            wn = numeric;
        }
    }
    forward(ctx); /* leave `out` as it was */
    tu_checks++;
    if (!(worst <= 1.0)) {
        ok = 0;
        tu_failures++;
        fprintf(stderr, "FAIL gradcheck %s: index %zu: analytic %.8g numeric %.8g\n", what, wi,
                wa, wn);
    }
    return ok;
}

/* A synthetic photo-like image, w x h: smooth gradients, a disc and some
 * texture (for the codec tests; free with mrt_image_free). */
static inline mrt_image tu_make_photo(int w, int h, uint64_t seed) {
    mrt_image img = {w, h, malloc((size_t)w * h * 3)};
    mrt_rng rng;
    mrt_rng_seed(&rng, seed);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = img.rgb + ((size_t)y * w + x) * 3;
            float fx = (float)x / (w > 1 ? w - 1 : 1), fy = (float)y / (h > 1 ? h - 1 : 1);
            float disc = (fx - 0.6f) * (fx - 0.6f) + (fy - 0.4f) * (fy - 0.4f) < 0.05f ? 80.0f : 0;
            p[0] = (uint8_t)(40 + 150 * fx + disc);
            p[1] = (uint8_t)(60 + 120 * fy);
            p[2] = (uint8_t)(90 + 40 * fx * fy + (mrt_rng_next(&rng) & 15));
        }
    return img;
}

#endif /* MRT_TESTUTIL_H */
