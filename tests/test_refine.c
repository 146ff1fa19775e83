/*
 * test_refine.c -- encoder-side latent refinement (codec/coding/refine.c):
 *   - 0 steps keeps the analysis latent: the very bitstream of mrt_encode;
 *   - the kept latent is never worse than the analysis one, nor over its
 *     rate (the bitstream at most the coder's last bytes longer), and
 *     the distortion refinement reports is the one the real decoder's
 *     picture has (so the training-path decoder it descends
 *     through is the codec's, on a non-square image and a padded one);
 *   - the refined bitstream decodes to exactly its symbols, and the same
 *     encode twice gives the same bytes;
 *   - bad step counts, MSE weights and images over MRT_REFINE_MAX_PIXELS
 *     are refused before any pixel is read;
 *   - with the shipped default model (trained weights), when there is one,
 *     refinement makes a photo measurably closer at no more bytes, and a
 *     caller's MSE weight is the one its objective uses.
 */
#define _DEFAULT_SOURCE /* mkstemps */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec_internal.h"
#include "runtime.h"
#include "testutil.h"

#define MODEL_DIR "../models"


/* Training's distortion, L1 on [-1, 1] + (1 - MS-SSIM on [0, 1]) +
 * mse_weight times MSE on [0, 1], of a decoded picture against the
 * original. */
static double distortion_of(float mse_weight, const mrt_image *ref, const mrt_image *dec) {
    size_t n = (size_t)ref->width * ref->height, plane = n;
    float *a = malloc(sizeof(float) * 3 * n), *b = malloc(sizeof(float) * 3 * n);
    double l1 = 0, se = 0;
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < n; i++) {
            a[c * plane + i] = ref->rgb[i * 3 + c] / 255.0f;
            b[c * plane + i] = dec->rgb[i * 3 + c] / 255.0f;
            double d = (double)a[c * plane + i] - b[c * plane + i];
            l1 += fabs(2.0 * d);
            se += d * d;
        }
    mrt_rt rt = mrt_rt_make(2);
    double ms = mrt_msssim(&rt, NULL, b, a, 1, 3, ref->height, ref->width, 1.0f);
    free(a), free(b);
    return l1 / (3.0 * n) + (1.0 - ms) + mse_weight * se / (3.0 * n);
}


/* Refines img with `steps` (and the MSE weight, if mse_weight >= 0, else
 * the model's); returns the bitstream (caller frees). */
static uint8_t *refine_weighted(const mrt_model *m, const mrt_image *img, int steps,
                                float mse_weight, mrt_refine_report *rep, size_t *len) {
    mrt_refine_options o = {steps, MRT_REFINE_LR, mse_weight >= 0, mse_weight};
    mrt_error err = {0};
    uint8_t *bits = NULL;
    *len = 0;
    mrt_status st = mrt_encode_refined(m, img, 2, &o, rep, &bits, len, &err);
    CHECK(st == MRT_OK, "refine %dx%d, %d steps: %s", img->width, img->height, steps,
          err.message);
    return bits;
}

static uint8_t *refine(const mrt_model *m, const mrt_image *img, int steps,
                       mrt_refine_report *rep, size_t *len) {
    return refine_weighted(m, img, steps, -1.0f, rep, len);
}

static void check_image(const mrt_model *m, int w, int h, int steps, bool must_improve) {
    mrt_error err = {0};
    mrt_image img = tu_make_photo(w, h, (uint64_t)w * 7 + h);
    uint8_t *plain = NULL, *zero = NULL, *bits = NULL, *again = NULL;
    size_t plain_len = 0, zero_len = 0, len = 0, again_len = 0;
    CHECK(mrt_encode(m, &img, 2, &plain, &plain_len, &err) == MRT_OK, "encode: %s", err.message);

    mrt_refine_report r0 = {0}, r = {0}, r2 = {0};
    zero = refine(m, &img, 0, &r0, &zero_len);
    CHECK(zero && zero_len == plain_len && !memcmp(zero, plain, plain_len),
          "%dx%d: 0 refinement steps changed the bitstream", w, h);
    CHECK(r0.best_step == 0 && r0.distortion == r0.start_distortion, "0 steps: report");

    bits = refine(m, &img, steps, &r, &len);
    again = refine(m, &img, steps, &r2, &again_len);
    CHECK(bits && again && len == again_len && !memcmp(bits, again, len),
          "%dx%d: the same refinement twice gave different bytes", w, h);
    /* the rate is the coder's own: the stream may differ from the one-pass
     * one's size only by the range coder's last byte or two */
    CHECK(len <= plain_len + 2, "%dx%d: %zu bytes refined, %zu not", w, h, len, plain_len);
    CHECK(r.distortion <= r.start_distortion && r.bpp <= r.start_bpp,
          "%dx%d: kept distortion %.5f (start %.5f), rate %.5f (start %.5f)", w, h,
          r.distortion, r.start_distortion, r.bpp, r.start_bpp);
    if (must_improve)
        CHECK(r.best_step > 0 && r.distortion < r.start_distortion - 0.005,
              "%dx%d: %d steps improved the distortion only from %.5f to %.5f", w, h, steps,
              r.start_distortion, r.distortion);
    /* the real decoder's picture has the distortion refinement measured
     * (up to its rounding to 8 bits), and its symbols do not depend on
     * the decoder's thread count */
    mrt_trace dec = {0}, dec1 = {0};
    mrt_image out = {0}, out1 = {0};
    mrt_status st = mrt_decode_traced(m, bits, len, 2, &out, &dec, &err);
    CHECK(st == MRT_OK, "decode the refined %dx%d: %s", w, h, err.message);
    if (st == MRT_OK) {
        double d = distortion_of(mrt_model_mse_weight(m), &img, &out);
        CHECK(fabs(d - r.distortion) < 0.01, "%dx%d: the decoded picture's distortion is %.5f, "
              "refinement measured %.5f", w, h, d, r.distortion);
        CHECK(mrt_decode_traced(m, bits, len, 1, &out1, &dec1, &err) == MRT_OK &&
                  mrt_trace_equal(&dec, &dec1),
              "%dx%d: the refined stream decodes differently with 1 and 2 threads", w, h);
    }
    mrt_trace_free(&dec1);
    mrt_image_free(&out1);
    mrt_trace_free(&dec);
    mrt_image_free(&out);
    free(plain), free(zero), free(bits), free(again);
    mrt_image_free(&img);
    printf("%dx%d, %d steps: distortion %.4f -> %.4f (step %d), bpp %.5f -> %.5f\n", w, h,
           steps, r.start_distortion, r.distortion, r.best_step, r.start_bpp, r.bpp);
}

static void check_refusals(const mrt_model *m) {
    mrt_error err = {0};
    uint8_t *bits = NULL;
    size_t len = 0;
    mrt_image small = tu_make_photo(64, 64, 1);
    mrt_encode_options bad[] = {
        {.refine_steps = -1},
        {.refine_steps = MRT_REFINE_MAX_STEPS + 1},
        {.threads = -1},
        {.refine_steps = 5, .refine_mse_weight_given = 1, .refine_mse_weight = -1.0f},
        {.refine_steps = 5, .refine_mse_weight_given = 1, .refine_mse_weight = 10001.0f},
        {.refine_steps = 5, .refine_mse_weight_given = 1, .refine_mse_weight = NAN},
        {.working_width = 0, .working_height = 5},
        {.working_width = 161, .working_height = 100},
        {.working_width = -3, .working_height = -3}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mrt_status st = mrt_encode_with(m, &small, &bad[i], &bits, &len, &err);
        CHECK(st == MRT_ERR_ARGUMENT && bits == NULL, "options {%d, %d, %d, %g}: got %s (%s)",
              bad[i].threads, bad[i].refine_steps, bad[i].refine_mse_weight_given,
              (double)bad[i].refine_mse_weight, mrt_status_name(st), err.message);
    }
    /* 4097 x 4097 named by an image whose pixels are 3 bytes: the refusal
     * must come before anything reads (or allocates for) them */
    uint8_t three[3] = {0};
    mrt_image huge = {4097, 4097, three};
    mrt_encode_options opt = {.threads = 2, .refine_steps = 5};
    mrt_status st = mrt_encode_with(m, &huge, &opt, &bits, &len, &err);
    CHECK(st == MRT_ERR_TOO_BIG && strstr(err.message, "4097x4097"),
          "a 4097x4097 image: got %s (%s)", mrt_status_name(st), err.message);
    mrt_image_free(&small);
}

int main(void) {
    mrt_error err = {0};
    char path[] = "/tmp/mrt-test-refine-XXXXXX.gguf";
    int fd = mkstemps(path, 5);
    CHECK(fd >= 0, "temp file");
    close(fd);
    mrt_model *m = NULL;
    CHECK(mrt_model_write_random(path, 11, 0, &err) == MRT_OK &&
              mrt_model_load(path, &m, &err) == MRT_OK,
          "random model: %s", err.message);
    if (m) {
        check_image(m, 128, 192, 6, false); /* 2 x 3 windows */
        check_image(m, 100, 70, 6, false);  /* padded to 2 x 2 windows */
        check_refusals(m);
        mrt_model_free(m);
    }
    remove(path);

    /* trained weights: refinement must pay off on a real photo (16 steps:
     * with the step-98,482 0.02 model the first dozen of coffee.jpg's are
     * over the rate budget, so 8 would keep the one-pass latent) */
    mrt_model *trained = NULL;
    mrt_image photo = {0};
    if (mrt_model_load(MODEL_DIR "/default.gguf", &trained, &err) != MRT_OK) {
        printf("no shipped model (%s): the trained-weights check is skipped\n", err.message);
    } else if (mrt_image_read_file("../samples/coffee.jpg", &photo, &err) != MRT_OK) {
        CHECK(0, "samples/coffee.jpg: %s", err.message);
    } else {
        mrt_refine_report r = {0};
        size_t plain_len = 0, len = 0;
        uint8_t *plain = NULL;
        CHECK(mrt_encode(trained, &photo, 2, &plain, &plain_len, &err) == MRT_OK, "%s",
              err.message);
        uint8_t *bits = refine(trained, &photo, 16, &r, &len);
        mrt_image a = {0}, b = {0};
        double pa = 0, pb = 0, ma = 0, mb = 0;
        if (bits && plain && mrt_decode(trained, plain, plain_len, 2, &a, &err) == MRT_OK &&
            mrt_decode(trained, bits, len, 2, &b, &err) == MRT_OK &&
            mrt_image_compare(&photo, &a, 2, &pa, &ma, &err) == MRT_OK &&
            mrt_image_compare(&photo, &b, 2, &pb, &mb, &err) == MRT_OK) {
            printf("coffee.jpg, 16 steps: %zu -> %zu bytes, %.2f -> %.2f dB, MS-SSIM %.4f -> "
                   "%.4f\n", plain_len, len, pa, pb, ma, mb);
            CHECK(mb > ma + 0.005, "MS-SSIM %.4f refined, %.4f not", mb, ma);
            double decoded_distortion = distortion_of(mrt_model_mse_weight(trained), &photo, &b);
            CHECK(r.best_step > 0 && fabs(decoded_distortion - r.distortion) < 0.005,
                  "coffee.jpg: kept step %d; the decoded picture's distortion is %.5f, "
                  "refinement measured %.5f", r.best_step, decoded_distortion, r.distortion);
            CHECK(len <= plain_len + 2, "%zu bytes refined, %zu not", len, plain_len);
            /* a caller's weight replaces the model's in the objective (the
             * shipped 0.02 model's 32 * MSE is about 0.2 on this photo, far
             * above the check's tolerance) */
            mrt_refine_report r0 = {0};
            size_t len0 = 0;
            uint8_t *bits0 = refine_weighted(trained, &photo, 16, 0.0f, &r0, &len0);
            mrt_image c = {0};
            if (bits0 && mrt_decode(trained, bits0, len0, 2, &c, &err) == MRT_OK) {
                double d0 = distortion_of(0.0f, &photo, &c);
                CHECK(fabs(d0 - r0.distortion) < 0.005 && len0 <= plain_len + 2,
                      "coffee.jpg, MSE weight 0: the decoded picture's distortion is %.5f, "
                      "refinement measured %.5f; %zu bytes", d0, r0.distortion, len0);
            } else {
                CHECK(0, "coffee.jpg, MSE weight 0: %s", err.message);
            }
            mrt_image_free(&c);
            free(bits0);
        } else {
            CHECK(0, "trained model: %s", err.message);
        }
        mrt_image_free(&a), mrt_image_free(&b);
        free(plain), free(bits);
    }
    mrt_image_free(&photo);
    mrt_model_free(trained);
    return tu_finish("test_refine");
}
