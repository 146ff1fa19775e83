/*
 * quality.c -- PSNR and MS-SSIM between two RGB8 images: the one
 * implementation the CLI's eval, the SQL functions and the benchmarks use.
 */
#include <math.h>
#include <stdlib.h>

#include "runtime.h"
#include "status.h"

mrt_status mrt_image_compare(const mrt_image *ref, const mrt_image *test, int threads,
                             double *psnr, double *msssim, mrt_error *err) {
    if (!ref || !test || !ref->rgb || !test->rgb)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_image_compare: missing image");
    if (ref->width != test->width || ref->height != test->height)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "images differ in size: %dx%d and %dx%d",
                        ref->width, ref->height, test->width, test->height);
    size_t n = (size_t)ref->width * ref->height * 3;
    if (psnr) {
        double se = 0;
        for (size_t i = 0; i < n; i++) {
            double d = (double)ref->rgb[i] - test->rgb[i];
            se += d * d;
        }
        /* identical images have no finite PSNR; 100 dB stands for it */
        *psnr = se == 0 ? 100.0 : 10.0 * log10(255.0 * 255.0 * n / se);
    }
    if (msssim) {
        /* planar floats in [0, 1], as the loss sees them */
        size_t plane = (size_t)ref->width * ref->height;
        float *a = malloc(sizeof(float) * 2 * n);
        if (!a) return mrt_fail(err, MRT_ERR_NOMEM, "out of memory comparing images");
        float *b = a + n;
        for (size_t i = 0; i < plane; i++)
            for (int c = 0; c < 3; c++) {
                a[c * plane + i] = ref->rgb[3 * i + c] / 255.0f;
                b[c * plane + i] = test->rgb[3 * i + c] / 255.0f;
            }
        mrt_rt rt = mrt_rt_make(threads);
        float v = mrt_msssim(&rt, NULL, b, a, 1, 3, ref->height, ref->width, 1.0f);
        free(a);
        if (!(v == v)) return mrt_fail(err, MRT_ERR_NOMEM, "out of memory comparing images");
        *msssim = v;
    }
    return mrt_ok(err);
}
