/*
 * resample.c -- resizing 8-bit RGB pictures (mrt.h):
 *
 *   mrt_image_resize    Lanczos-3 in float, any size to any size. The
 *                       encoder's downscale to its working size, and
 *                       bench_rd's resampler. Not part of the format: an
 *                       encoder may shrink its input any way it likes.
 *   mrt_image_upscale   the normative upscale of bitstream version 2
 *                       (codec/BITSTREAM.md §7): integer Lanczos-3 at 64
 *                       phases, so every decoder gives the same bytes.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

#include "status.h"

/* ------------------------------------------------- float Lanczos-3 */

static const double PI_D = 3.14159265358979323846;

/* Lanczos-3 kernel: sinc(x) sinc(x/3) for |x| < 3. */
static double lanczos3(double x) {
    x = fabs(x);
    if (x < 1e-9) return 1.0;
    if (x >= 3.0) return 0.0;
    double px = PI_D * x;
    return 3.0 * sin(px) * sin(px / 3.0) / (px * px);
}

/* One axis of a resampling: output sample i is sum_k w[i*taps+k] *
 * in[idx[i*taps+k]]. Pixel centres are aligned ((i + 0.5) * scale - 0.5),
 * the kernel is stretched by the scale when shrinking (so it also low-pass
 * filters), samples past the edge repeat the edge pixel, and each row of
 * weights is normalised to sum to 1 so flat areas stay exactly flat. */
typedef struct axis_filter {
    int n_out, taps;
    int *idx;
    float *w;
} axis_filter;

static int axis_filter_make(axis_filter *f, int n_in, int n_out) {
    double scale = (double)n_in / n_out;
    double fs = scale > 1.0 ? scale : 1.0;
    double support = 3.0 * fs;
    int taps = (int)ceil(2.0 * support) + 1;
    f->n_out = n_out;
    f->taps = taps;
    f->idx = malloc(sizeof(int) * (size_t)n_out * taps);
    f->w = malloc(sizeof(float) * (size_t)n_out * taps);
    double *wk = malloc(sizeof(double) * taps);
    if (!f->idx || !f->w || !wk) {
        free(f->idx), free(f->w), free(wk);
        return -1;
    }
    for (int i = 0; i < n_out; i++) {
        double centre = (i + 0.5) * scale - 0.5;
        int first = (int)ceil(centre - support);
        double sum = 0;
        for (int k = 0; k < taps; k++) {
            wk[k] = lanczos3((first + k - centre) / fs);
            sum += wk[k];
        }
        for (int k = 0; k < taps; k++) {
            int j = first + k;
            f->idx[(size_t)i * taps + k] = j < 0 ? 0 : j >= n_in ? n_in - 1 : j;
            f->w[(size_t)i * taps + k] = (float)(wk[k] / sum);
        }
    }
    free(wk);
    return 0;
}

static void axis_filter_free(axis_filter *f) {
    free(f->idx);
    free(f->w);
}

static uint8_t float_to_u8(float v) {
    if (!(v > 0.0f)) return 0;
    if (v >= 255.0f) return 255;
    return (uint8_t)(v + 0.5f);
}

static int size_ok(int w, int h) {
    return w >= 1 && h >= 1 && w <= MRT_MAX_SIDE && h <= MRT_MAX_SIDE &&
           (long long)w * h <= MRT_MAX_PIXELS;
}

/* Separable: horizontal pass into floats, then vertical, rounded once. On
 * the 8-bit sRGB values, as PIL, ImageMagick's default and most codec
 * benchmarks do; overshoot (ringing) is clamped to [0, 255]. */
mrt_status mrt_image_resize(const mrt_image *in, int w_out, int h_out, int threads,
                            mrt_image *out, mrt_error *err) {
    if (out) memset(out, 0, sizeof *out);
    if (!in || !in->rgb || !out || !size_ok(in->width, in->height) || !size_ok(w_out, h_out))
        return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_image_resize: no image, or a size outside "
                        "1..%d per side and %lld pixels", MRT_MAX_SIDE, MRT_MAX_PIXELS);
    int w = in->width, h = in->height;
    axis_filter fx, fy;
    if (axis_filter_make(&fx, w, w_out) != 0)
        return mrt_fail(err, MRT_ERR_NOMEM, "out of memory resizing to %dx%d", w_out, h_out);
    if (axis_filter_make(&fy, h, h_out) != 0) {
        axis_filter_free(&fx);
        return mrt_fail(err, MRT_ERR_NOMEM, "out of memory resizing to %dx%d", w_out, h_out);
    }
    int nt = threads > 1 ? threads : 1;
    float *tmp = malloc(sizeof(float) * (size_t)h * w_out * 3);
    float *accs = malloc(sizeof(float) * (size_t)w_out * 3 * (size_t)nt); /* a row per thread */
    uint8_t *rgb = malloc((size_t)w_out * h_out * 3);
    if (!tmp || !accs || !rgb) {
        free(tmp), free(accs), free(rgb);
        axis_filter_free(&fx);
        axis_filter_free(&fy);
        return mrt_fail(err, MRT_ERR_NOMEM, "out of memory resizing to %dx%d", w_out, h_out);
    }
    /* rows are independent in each pass, and each value is summed in the
     * same order whatever the thread count */
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int y = 0; y < h; y++) {
        const uint8_t *row = in->rgb + (size_t)y * w * 3;
        float *trow = tmp + (size_t)y * w_out * 3;
        for (int x = 0; x < w_out; x++) {
            const int *idx = fx.idx + (size_t)x * fx.taps;
            const float *wt = fx.w + (size_t)x * fx.taps;
            float r = 0, g = 0, b = 0;
            for (int k = 0; k < fx.taps; k++) {
                const uint8_t *p = row + (size_t)idx[k] * 3;
                r += wt[k] * p[0];
                g += wt[k] * p[1];
                b += wt[k] * p[2];
            }
            trow[3 * x] = r;
            trow[3 * x + 1] = g;
            trow[3 * x + 2] = b;
        }
    }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int y = 0; y < h_out; y++) {
        float *acc = accs + (size_t)w_out * 3 * (size_t)omp_get_thread_num();
        const int *idx = fy.idx + (size_t)y * fy.taps;
        const float *wt = fy.w + (size_t)y * fy.taps;
        for (int x = 0; x < w_out * 3; x++) acc[x] = 0;
        for (int k = 0; k < fy.taps; k++) {
            const float *trow = tmp + (size_t)idx[k] * w_out * 3;
            for (int x = 0; x < w_out * 3; x++) acc[x] += wt[k] * trow[x];
        }
        uint8_t *orow = rgb + (size_t)y * w_out * 3;
        for (int x = 0; x < w_out * 3; x++) orow[x] = float_to_u8(acc[x]);
    }
    free(accs);
    free(tmp);
    axis_filter_free(&fx);
    axis_filter_free(&fy);
    out->width = w_out;
    out->height = h_out;
    out->rgb = rgb;
    return mrt_ok(err);
}

/* --------------------------------------- the normative integer upscale */

/* UPSCALE_TAPS[p][t]: Lanczos-3 at fraction p/64 of a pixel, for the source
 * pixels at distance t - 2 - p/64, in units of 2^-14, each row summing to
 * exactly 2^14. Made by scripts/gen-upscale-table.py; part of the format. */
#define UPSCALE_PHASES 64
#define UPSCALE_TAPS_N 6
#define UPSCALE_ONE_BITS 14
static const int32_t UPSCALE_TAPS[UPSCALE_PHASES][UPSCALE_TAPS_N] = {
    {     0,      0,  16384,      0,      0,      0}, /* phase 0 */
    {    52,   -207,  16377,    216,    -54,      0},
    {   100,   -405,  16356,    442,   -111,      2},
    {   147,   -593,  16320,    676,   -170,      4},
    {   190,   -772,  16272,    919,   -232,      7},
    {   230,   -941,  16208,   1171,   -296,     12},
    {   268,  -1101,  16131,   1432,   -363,     17},
    {   303,  -1252,  16041,   1700,   -431,     23},
    {   335,  -1393,  15936,   1977,   -501,     30}, /* phase 8 */
    {   364,  -1524,  15818,   2261,   -573,     38},
    {   391,  -1646,  15686,   2553,   -647,     47},
    {   415,  -1758,  15541,   2852,   -723,     57},
    {   436,  -1862,  15384,   3157,   -799,     68},
    {   454,  -1956,  15214,   3469,   -877,     80},
    {   470,  -2040,  15029,   3787,   -955,     93},
    {   483,  -2116,  14833,   4111,  -1034,    107},
    {   493,  -2184,  14628,   4440,  -1114,    121}, /* phase 16 */
    {   502,  -2242,  14408,   4774,  -1194,    136},
    {   507,  -2292,  14179,   5112,  -1274,    152},
    {   511,  -2334,  13938,   5454,  -1353,    168},
    {   513,  -2367,  13685,   5800,  -1432,    185},
    {   512,  -2393,  13425,   6148,  -1510,    202},
    {   510,  -2411,  13153,   6499,  -1587,    220},
    {   505,  -2421,  12872,   6852,  -1662,    238},
    {   499,  -2425,  12583,   7206,  -1736,    257}, /* phase 24 */
    {   491,  -2421,  12286,   7561,  -1808,    275},
    {   482,  -2411,  11980,   7916,  -1877,    294},
    {   471,  -2394,  11669,   8270,  -1944,    312},
    {   459,  -2372,  11349,   8624,  -2007,    331},
    {   446,  -2343,  11024,   8976,  -2068,    349},
    {   432,  -2309,  10693,   9326,  -2125,    367},
    {   417,  -2270,  10357,   9673,  -2177,    384},
    {   401,  -2226,  10017,  10017,  -2226,    401}, /* phase 32 */
    {   384,  -2177,   9673,  10357,  -2270,    417},
    {   367,  -2125,   9326,  10693,  -2309,    432},
    {   349,  -2068,   8976,  11024,  -2343,    446},
    {   331,  -2007,   8624,  11349,  -2372,    459},
    {   312,  -1944,   8270,  11669,  -2394,    471},
    {   294,  -1877,   7916,  11980,  -2411,    482},
    {   275,  -1808,   7561,  12286,  -2421,    491},
    {   257,  -1736,   7206,  12583,  -2425,    499}, /* phase 40 */
    {   238,  -1662,   6852,  12872,  -2421,    505},
    {   220,  -1587,   6499,  13153,  -2411,    510},
    {   202,  -1510,   6148,  13425,  -2393,    512},
    {   185,  -1432,   5800,  13685,  -2367,    513},
    {   168,  -1353,   5454,  13938,  -2334,    511},
    {   152,  -1274,   5112,  14179,  -2292,    507},
    {   136,  -1194,   4774,  14408,  -2242,    502},
    {   121,  -1114,   4440,  14628,  -2184,    493}, /* phase 48 */
    {   107,  -1034,   4111,  14833,  -2116,    483},
    {    93,   -955,   3787,  15029,  -2040,    470},
    {    80,   -877,   3469,  15214,  -1956,    454},
    {    68,   -799,   3157,  15384,  -1862,    436},
    {    57,   -723,   2852,  15541,  -1758,    415},
    {    47,   -647,   2553,  15686,  -1646,    391},
    {    38,   -573,   2261,  15818,  -1524,    364},
    {    30,   -501,   1977,  15936,  -1393,    335}, /* phase 56 */
    {    23,   -431,   1700,  16041,  -1252,    303},
    {    17,   -363,   1432,  16131,  -1101,    268},
    {    12,   -296,   1171,  16208,   -941,    230},
    {     7,   -232,    919,  16272,   -772,    190},
    {     4,   -170,    676,  16320,   -593,    147},
    {     2,   -111,    442,  16356,   -405,    100},
    {     0,    -54,    216,  16377,   -207,     52},
};

/* floor(v / 2^s) for any sign (>> of a negative value is
 * implementation-defined in C). */
static int64_t floor_shift(int64_t v, int s) {
    return v >= 0 ? v >> s : -((-v + ((int64_t)1 << s) - 1) >> s);
}

/* Where output sample i of n_out falls among n_in source samples: the
 * source index of tap 2 (the pixel at or left of the position) and the
 * phase. Position = (i + 1/2) * n_in / n_out - 1/2 in units of 2^-16,
 * rounded down, then its fraction rounded to the nearest 1/64. */
static void upscale_position(int i, int n_in, int n_out, int *first, int *phase) {
    int64_t num = (((int64_t)2 * i + 1) * n_in - n_out) * 65536; /* position * 2^16 * 2 n_out */
    int64_t den = (int64_t)2 * n_out;
    int64_t pos = num >= 0 ? num / den : -((-num + den - 1) / den); /* floor */
    int64_t whole = floor_shift(pos, 16), frac = pos - whole * 65536;
    int p = (int)((frac + 512) >> 10);
    if (p == UPSCALE_PHASES) whole++, p = 0;
    *first = (int)whole - 2;
    *phase = p;
}

static inline int clamp_index(int j, int n) { return j < 0 ? 0 : j >= n ? n - 1 : j; }

/* One horizontal pass of source row y into row[] (W_out x 3 values in
 * units of 1/16 level, rounded). */
static void upscale_row(const mrt_image *in, int y, const int *xfirst, const int *xphase,
                        int w_out, int32_t *row) {
    const uint8_t *src = in->rgb + (size_t)y * in->width * 3;
    for (int x = 0; x < w_out; x++) {
        const int32_t *t = UPSCALE_TAPS[xphase[x]];
        for (int c = 0; c < 3; c++) {
            int64_t s = 0;
            for (int k = 0; k < UPSCALE_TAPS_N; k++)
                s += t[k] * (int64_t)src[(size_t)clamp_index(xfirst[x] + k, in->width) * 3 + c];
            row[3 * x + c] = (int32_t)floor_shift(s + (1 << (UPSCALE_ONE_BITS - 4 - 1)),
                                                  UPSCALE_ONE_BITS - 4);
        }
    }
}

mrt_status mrt_image_upscale(const mrt_image *in, int w_out, int h_out, int threads,
                             mrt_image *out, mrt_error *err) {
    if (out) memset(out, 0, sizeof *out);
    if (!in || !in->rgb || !out || !size_ok(in->width, in->height) || !size_ok(w_out, h_out) ||
        w_out < in->width || h_out < in->height)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_image_upscale: no image, or %dx%d is not "
                        "an upscale of %dx%d within the size limits", w_out, h_out,
                        in ? in->width : 0, in ? in->height : 0);
    int *xfirst = malloc(sizeof(int) * (size_t)w_out), *xphase = malloc(sizeof(int) * (size_t)w_out);
    uint8_t *rgb = malloc((size_t)w_out * h_out * 3);
    int nt = threads > 1 ? threads : 1;
    /* each thread keeps the last UPSCALE_TAPS_N + 2 horizontally filtered
     * source rows it used, slot = source row mod RING */
    enum { RING = UPSCALE_TAPS_N + 2 };
    int32_t *rings = malloc(sizeof(int32_t) * (size_t)nt * RING * w_out * 3);
    if (!xfirst || !xphase || !rgb || !rings) {
        free(xfirst), free(xphase), free(rgb), free(rings);
        return mrt_fail(err, MRT_ERR_NOMEM, "out of memory upscaling to %dx%d", w_out, h_out);
    }
    for (int x = 0; x < w_out; x++) upscale_position(x, in->width, w_out, &xfirst[x], &xphase[x]);
    /* contiguous bands of output rows, one per thread; integer arithmetic,
     * so the bytes do not depend on the thread count */
#pragma omp parallel num_threads(nt)
    {
        int tid = omp_get_thread_num(), n = omp_get_num_threads();
        int32_t *ring = rings + (size_t)tid * RING * w_out * 3;
        int tag[RING];
        for (int k = 0; k < RING; k++) tag[k] = -1;
        int y0 = (int)((long long)h_out * tid / n), y1 = (int)((long long)h_out * (tid + 1) / n);
        for (int y = y0; y < y1; y++) {
            int first, phase;
            upscale_position(y, in->height, h_out, &first, &phase);
            const int32_t *rows[UPSCALE_TAPS_N];
            for (int k = 0; k < UPSCALE_TAPS_N; k++) {
                int j = clamp_index(first + k, in->height), slot = j % RING;
                if (tag[slot] != j) {
                    upscale_row(in, j, xfirst, xphase, w_out, ring + (size_t)slot * w_out * 3);
                    tag[slot] = j;
                }
                rows[k] = ring + (size_t)slot * w_out * 3;
            }
            const int32_t *t = UPSCALE_TAPS[phase];
            uint8_t *orow = rgb + (size_t)y * w_out * 3;
            for (int x = 0; x < w_out * 3; x++) {
                int64_t acc = 0;
                for (int k = 0; k < UPSCALE_TAPS_N; k++) acc += t[k] * (int64_t)rows[k][x];
                /* units of 2^-18 of a level -> levels, rounded, clamped */
                int64_t v = floor_shift(acc + ((int64_t)1 << (UPSCALE_ONE_BITS + 4 - 1)),
                                        UPSCALE_ONE_BITS + 4);
                orow[x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    }
    free(xfirst), free(xphase), free(rings);
    out->width = w_out;
    out->height = h_out;
    out->rgb = rgb;
    return mrt_ok(err);
}
