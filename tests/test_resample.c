/*
 * test_resample.c -- the resamplers of resample.c:
 *   - mrt_image_upscale, the normative upscale of bitstream version 2:
 *     identity at the same size, flat stays flat, a smooth picture comes
 *     back close to the function it samples, the bytes do not depend on
 *     the thread count, and a pinned hash of a fixed upscale (the filter is
 *     part of the format: a change must change the bitstream version);
 *   - mrt_image_resize (float Lanczos-3): shrinking and growing back a
 *     smooth picture;
 *   - bad arguments of both.
 */
#include <inttypes.h>
#include <stdint.h>

#include "testutil.h"

static const double PI = 3.14159265358979323846;

/* Pinned: FNV-1a 64 of mrt_image_upscale(pattern 37x23 -> 100x61); an
 * independent Python implementation of BITSTREAM.md §7 gave the same hash. */
#define EXPECTED_UPSCALE_HASH UINT64_C(0xb6921e0a677f5351)

static mrt_image smooth_picture(int w, int h, double period) {
    mrt_image img = {w, h, malloc((size_t)w * h * 3)};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                img.rgb[((size_t)y * w + x) * 3 + c] =
                    (uint8_t)(128 + 90 * sin(2 * PI * (x + 0.5) / period + c) *
                                        cos(2 * PI * (y + 0.5) / (period * 0.8)) + 0.5);
    return img;
}

static uint64_t fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * UINT64_C(0x100000001b3);
    return h;
}

static void test_upscale(void) {
    mrt_error err;
    mrt_image small = smooth_picture(37, 23, 17.0), out;
    /* identity */
    CHECK(mrt_image_upscale(&small, 37, 23, 1, &out, &err) == MRT_OK, "%s", err.message);
    CHECK(out.rgb && memcmp(out.rgb, small.rgb, 37 * 23 * 3) == 0, "same-size upscale changed bytes");
    mrt_image_free(&out);
    /* the pinned bytes, and the same bytes at 1, 2 and 3 threads */
    mrt_image o1, o2, o3;
    CHECK(mrt_image_upscale(&small, 100, 61, 1, &o1, &err) == MRT_OK, "%s", err.message);
    CHECK(mrt_image_upscale(&small, 100, 61, 2, &o2, &err) == MRT_OK, "%s", err.message);
    CHECK(mrt_image_upscale(&small, 100, 61, 3, &o3, &err) == MRT_OK, "%s", err.message);
    size_t n = 100 * 61 * 3;
    CHECK(memcmp(o1.rgb, o2.rgb, n) == 0 && memcmp(o1.rgb, o3.rgb, n) == 0,
          "upscale bytes depend on the thread count");
    uint64_t h = fnv1a(o1.rgb, n);
    printf("upscale 37x23 -> 100x61: hash %016" PRIx64 "\n", h);
    CHECK(h == EXPECTED_UPSCALE_HASH, "upscale hash %016" PRIx64 " != pinned %016" PRIx64
          ": the normative filter changed (a bitstream version change)", h, EXPECTED_UPSCALE_HASH);
    mrt_image_free(&o1), mrt_image_free(&o2), mrt_image_free(&o3);
    mrt_image_free(&small);
    /* flat stays flat, every level */
    mrt_image flat = {9, 7, malloc(9 * 7 * 3)};
    int bad = 0;
    for (int v = 0; v < 256; v += 5) {
        memset(flat.rgb, v, 9 * 7 * 3);
        if (mrt_image_upscale(&flat, 31, 20, 1, &out, &err) != MRT_OK) {
            bad++;
            continue;
        }
        for (int i = 0; i < 31 * 20 * 3; i++) bad += out.rgb[i] != v;
        mrt_image_free(&out);
    }
    CHECK(bad == 0, "a flat picture did not stay flat (%d values)", bad);
    mrt_image_free(&flat);
    /* a smooth picture sampled at 1/3 comes back close to the full one */
    int factor = 3;
    mrt_image full = smooth_picture(240, 180, 60.0);
    mrt_image third = smooth_picture(80, 60, 20.0); /* the same function, 1/3 the samples */
    CHECK(mrt_image_upscale(&third, 240, 180, 2, &out, &err) == MRT_OK, "%s", err.message);
    double se = 0;
    long cnt = 0;
    for (int y = 12; y < 168; y++)
        for (int x = 12; x < 228; x++)
            for (int c = 0; c < 3; c++) {
                double d = (double)out.rgb[((size_t)y * 240 + x) * 3 + c] -
                           full.rgb[((size_t)y * 240 + x) * 3 + c];
                se += d * d, cnt++;
            }
    double rmse = sqrt(se / cnt);
    printf("upscale x%d of a smooth picture: interior rmse %.2f levels\n", factor, rmse);
    CHECK(rmse < 2.0, "upscale of a smooth picture: rmse %.2f levels", rmse);
    mrt_image_free(&out), mrt_image_free(&full), mrt_image_free(&third);
}

static void test_resize(void) {
    mrt_error err;
    mrt_image img = smooth_picture(240, 160, 60.0), small, back;
    CHECK(mrt_image_resize(&img, 96, 64, 1, &small, &err) == MRT_OK, "%s", err.message);
    CHECK(mrt_image_resize(&small, 240, 160, 3, &back, &err) == MRT_OK, "%s", err.message);
    double se = 0;
    for (size_t i = 0; i < (size_t)240 * 160 * 3; i++) {
        double d = (double)img.rgb[i] - back.rgb[i];
        se += d * d;
    }
    double rmse = sqrt(se / (240.0 * 160 * 3));
    CHECK(rmse < 1.5, "resize down and back: rmse %.2f levels", rmse);
    mrt_image one;
    CHECK(mrt_image_resize(&small, 240, 160, 1, &one, &err) == MRT_OK && one.rgb && back.rgb &&
              memcmp(one.rgb, back.rgb, (size_t)240 * 160 * 3) == 0,
          "resize bytes depend on the thread count");
    mrt_image_free(&one);
    mrt_image_free(&img), mrt_image_free(&small), mrt_image_free(&back);
}

static void test_bad_arguments(void) {
    mrt_error err;
    mrt_image img = smooth_picture(20, 10, 8.0), out = {1, 1, (uint8_t *)&err};
    CHECK(mrt_image_upscale(&img, 19, 10, 1, &out, &err) == MRT_ERR_ARGUMENT,
          "a smaller output is not an upscale");
    CHECK(out.rgb == NULL && out.width == 0, "failed upscale left *out set");
    CHECK(mrt_image_upscale(&img, 70000, 10, 1, &out, &err) == MRT_ERR_ARGUMENT, "side > 65535");
    CHECK(mrt_image_upscale(NULL, 30, 10, 1, &out, &err) == MRT_ERR_ARGUMENT, "NULL input");
    CHECK(mrt_image_resize(&img, 0, 10, 1, &out, &err) == MRT_ERR_ARGUMENT, "zero width");
    CHECK(mrt_image_resize(&img, 8193, 8193, 1, &out, &err) == MRT_ERR_ARGUMENT, "too many pixels");
    mrt_image_free(&img);
}

int main(void) {
    test_upscale();
    test_resize();
    test_bad_arguments();
    return tu_finish("test_resample");
}
