/*
 * bench_thumbs.c -- scaled decoding (mrt_decode_scaled) against a full
 * decode, on the same photos in the same run (bench/README.md):
 *
 *   bench_thumbs [--model M] [--threads N] [--repeats R] IMAGE...
 *
 * For each photo: one encode, then the full decode and the decodes at 1/2,
 * 1/4 and 1/8, each timed as the best of R runs. Quality is PSNR (RGB)
 * against the original shrunk with Lanczos-3 to the same size; the
 * reference for a scaled decode is the full decode shrunk the same way (what
 * a thumbnail cost before). The bars (issue 21): at 1/4, at most half the
 * full decode's time and within 0.3 dB of the full decode shrunk.
 */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mrt.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *what, const mrt_error *err) {
    fprintf(stderr, "bench_thumbs: %s: %s\n", what, err ? err->message : "failed");
    exit(1);
}

static double psnr(const mrt_image *a, const mrt_image *b, int threads) {
    double p, ms;
    mrt_error err;
    if (mrt_image_compare(a, b, threads, &p, &ms, &err) != MRT_OK) die("compare", &err);
    return p;
}

int main(int argc, char **argv) {
    const char *model_path = NULL;
    int threads = 1, repeats = 3;
    static const struct option options[] = {
        {"model", required_argument, NULL, 'm'},
        {"threads", required_argument, NULL, 't'},
        {"repeats", required_argument, NULL, 'r'},
        {NULL, 0, NULL, 0},
    };
    for (int opt; (opt = getopt_long(argc, argv, "", options, NULL)) != -1;) {
        if (opt == 'm') model_path = optarg;
        else if (opt == 't') threads = atoi(optarg);
        else if (opt == 'r') repeats = atoi(optarg);
        else {
            fprintf(stderr, "usage: bench_thumbs [--model M] [--threads N] [--repeats R] IMAGE...\n");
            return 2;
        }
    }
    if (optind >= argc || repeats < 1) {
        fprintf(stderr, "usage: bench_thumbs [--model M] [--threads N] [--repeats R] IMAGE...\n");
        return 2;
    }
    mrt_error err = {0};
    char *found = model_path ? NULL : mrt_default_model_path(NULL, NULL, NULL);
    mrt_model *model = NULL;
    if (mrt_model_load(model_path ? model_path : found, &model, &err) != MRT_OK) die("model", &err);
    printf("bench_thumbs: %s, %d thread(s), best of %d\n\n", mrt_model_path(model), threads,
           repeats);
    printf("| image | size | full decode | 1/2 time | 1/4 time | 1/8 time | 1/2 dB (shrunk full) "
           "| 1/4 dB (shrunk full) | 1/8 dB (shrunk full) |\n|---|---|---|---|---|---|---|---|---|\n");
    static const int scales[3] = {2, 4, 8};
    double sum_ratio[3] = {0}, sum_db[3] = {0}, sum_ref[3] = {0};
    int n = 0;
    for (int i = optind; i < argc; i++) {
        mrt_image img = {0}, full = {0};
        if (mrt_image_read_file(argv[i], &img, &err) != MRT_OK) die(argv[i], &err);
        uint8_t *bits = NULL;
        size_t len = 0;
        if (mrt_encode(model, &img, threads, &bits, &len, &err) != MRT_OK) die(argv[i], &err);
        double t_full = INFINITY;
        for (int r = 0; r < repeats; r++) {
            mrt_image_free(&full);
            double t0 = now();
            if (mrt_decode(model, bits, len, threads, &full, &err) != MRT_OK) die(argv[i], &err);
            double dt = now() - t0;
            if (dt < t_full) t_full = dt;
        }
        const char *base = strrchr(argv[i], '/');
        printf("| %s | %dx%d | %.3f s |", base ? base + 1 : argv[i], img.width, img.height, t_full);
        double db[3], ref_db[3];
        for (int k = 0; k < 3; k++) {
            int s = scales[k], w = (img.width + s - 1) / s, h = (img.height + s - 1) / s;
            mrt_image thumb = {0}, ref = {0}, shrunk = {0};
            double t = INFINITY;
            for (int r = 0; r < repeats; r++) {
                mrt_image_free(&thumb);
                double t0 = now();
                if (mrt_decode_scaled(model, bits, len, s, threads, &thumb, &err) != MRT_OK)
                    die(argv[i], &err);
                double dt = now() - t0;
                if (dt < t) t = dt;
            }
            if (mrt_image_resize(&img, w, h, threads, &ref, &err) != MRT_OK ||
                mrt_image_resize(&full, w, h, threads, &shrunk, &err) != MRT_OK)
                die("resize", &err);
            db[k] = psnr(&ref, &thumb, threads);
            ref_db[k] = psnr(&ref, &shrunk, threads);
            sum_ratio[k] += t / t_full;
            sum_db[k] += db[k];
            sum_ref[k] += ref_db[k];
            printf(" %.3f s (%.2f) |", t, t / t_full);
            mrt_image_free(&thumb), mrt_image_free(&ref), mrt_image_free(&shrunk);
        }
        for (int k = 0; k < 3; k++) printf(" %.2f (%.2f) |", db[k], ref_db[k]);
        printf("\n");
        n++;
        mrt_free(bits);
        mrt_image_free(&img), mrt_image_free(&full);
    }
    printf("\nmeans over %d images:\n", n);
    for (int k = 0; k < 3; k++)
        printf("  1/%d: %.2f of the full decode's time; %.2f dB, the full decode shrunk %.2f dB "
               "(%+.2f)\n", scales[k], sum_ratio[k] / n, sum_db[k] / n, sum_ref[k] / n,
               (sum_db[k] - sum_ref[k]) / n);
    mrt_model_free(model);
    mrt_free(found);
    return 0;
}
