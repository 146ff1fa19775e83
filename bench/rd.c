/*
 * rd.c -- bench_rd: mrt against the best classical codecs at the same bytes
 * (DESIGN.md §8).
 *
 *   build/bench/bench_rd [options] IMAGE...
 *     --model FILE    our codec at this model's rate (repeatable); each
 *                     model is a rate point whose classical budget, per
 *                     image, is the size of our bitstream for that image
 *     --bpp X         a rate point at X bits per pixel (repeatable), for the
 *                     classical codecs alone
 *     --budget BYTES  a rate point of BYTES per image (2000, 2KB; repeatable):
 *                     our encoder chooses the rate point among the --model
 *                     files and the working size (mrt_encode_budget), and the
 *                     classical budget is then our bytes; with --budget the
 *                     --model files are not rate points of their own
 *     --full-size-only  at --budget points, our encoder keeps the full size:
 *                     the best --model (MS-SSIM) whose bitstream fits
 *     --codecs LIST   comma-separated subset of jpeg,webp,avif,jxl
 *                     (default: every one whose tools are installed)
 *     --factors LIST  downscale factors (default 1,1.5,2,3,4,6,8,12,16)
 *     --max-side N    first shrink each image so its longer side is <= N
 *                     (quick runs and tests; the shrunk image is the reference)
 *     --out DIR       where rd-<codec>.json, rd.md and rd.gp go (default .)
 *     --threads N     threads for our codec and the metrics (default 1)
 *     --refine STEPS  our encoder refines each latent with STEPS steps
 *                     (mrt_encode_with; default 0, the one-pass encoder)
 *     --refine-mse-weight W  refinement's MSE weight (default: each model's
 *                     own; see mrt_encode_options)
 *     --timeout S     seconds allowed to one external tool call (default 120)
 *     --keep-decoded DIR  write the pictures compared into DIR, to look at:
 *                     IMAGE.png (the reference), IMAGE.POINT.mrt.png (ours, at
 *                     --model points) and IMAGE.POINT.CODEC.png (each classical
 *                     codec at the factor kept), all at the reference's size
 *     --quiet         no progress on stderr
 *     --self-test     check the Lanczos resampler and exit
 *
 * For every image, rate point and classical codec: at every factor s the
 * image is Lanczos-3 downscaled to ceil(W/s) x ceil(H/s), the codec's
 * quality is binary-searched for the largest real file <= the budget, the
 * file is decoded by the codec's own decoder and Lanczos-upscaled back to
 * W x H; PSNR and MS-SSIM come from mrt_image_compare, the same function
 * that measures our codec. Per image the factor with the best MS-SSIM is
 * kept (the best PSNR one is recorded beside it). bench/README.md has the
 * details and the reasons.
 *
 * External tools run through posix_spawnp with an explicit argv (no
 * shell), stdin from /dev/null, stdout and stderr into a log file, under a
 * timeout; their files live in one mkdtemp directory removed at exit (also
 * on SIGINT/SIGTERM).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rd.h"

#define PI 3.14159265358979323846

/* ------------------------------------------------------ Lanczos-3 resampler */

/* libmrt's Lanczos-3 (mrt_image_resize, codec/io/resample.c): the same
 * resampler the encoder uses for its working size; on --threads threads. */
static int resize_threads = 1;
static mrt_image resize_lanczos(const mrt_image *in, int w_out, int h_out) {
    mrt_image out;
    mrt_error err;
    if (mrt_image_resize(in, w_out, h_out, resize_threads, &out, &err) != MRT_OK) {
        fprintf(stderr, "bench_rd: %s\n", err.message);
        exit(1);
    }
    return out;
}

static mrt_image image_copy(const mrt_image *in) {
    size_t n = (size_t)in->width * in->height * 3;
    mrt_image out = {in->width, in->height, xmalloc(n)};
    memcpy(out.rgb, in->rgb, n);
    return out;
}

/* The downscaled size for factor s: ceil(side / s), at least 1. The small
 * epsilon keeps an exact division (768 / 1.5) from rounding up. */
static int scaled_side(int side, double s) {
    int n = (int)ceil(side / s - 1e-9);
    return n < 1 ? 1 : n;
}

/* ------------------------------------------------------------- self-test */

static int self_test(void) {
    int failures = 0;
    /* Identity: a resize to the same size must give back every byte (the
     * kernel is 1 at 0 and 0 at the other integers). */
    {
        mrt_image img = {97, 61, xmalloc(97 * 61 * 3)};
        uint32_t s = 12345;
        for (size_t i = 0; i < (size_t)97 * 61 * 3; i++) {
            s = s * 1664525u + 1013904223u;
            img.rgb[i] = (uint8_t)(s >> 24);
        }
        mrt_image same = resize_lanczos(&img, 97, 61);
        int diff = memcmp(img.rgb, same.rgb, (size_t)97 * 61 * 3) != 0;
        printf("lanczos identity 97x61 -> 97x61: %s\n", diff ? "FAIL" : "ok");
        failures += diff;
        mrt_image_free(&same);
        mrt_image_free(&img);
    }
    /* Flat stays flat at any size (normalised weights). */
    {
        mrt_image img = {50, 40, xmalloc(50 * 40 * 3)};
        memset(img.rgb, 77, 50 * 40 * 3);
        mrt_image a = resize_lanczos(&img, 17, 13), b = resize_lanczos(&a, 123, 91);
        int bad = 0;
        for (size_t i = 0; i < (size_t)17 * 13 * 3; i++) bad |= a.rgb[i] != 77;
        for (size_t i = 0; i < (size_t)123 * 91 * 3; i++) bad |= b.rgb[i] != 77;
        printf("lanczos flat 50x40 -> 17x13 -> 123x91: %s\n", bad ? "FAIL" : "ok");
        failures += bad;
        mrt_image_free(&a);
        mrt_image_free(&b);
        mrt_image_free(&img);
    }
    /* A smooth picture (ramps and a slow wave, well below the Nyquist rate
     * of the smallest size) survives down-and-up with a small error. */
    const int W = 240, H = 160;
    mrt_image img = {W, H, xmalloc((size_t)W * H * 3)};
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = img.rgb + ((size_t)y * W + x) * 3;
            p[0] = (uint8_t)(20 + 200.0 * x / (W - 1) + 0.5);
            p[1] = (uint8_t)(30 + 180.0 * y / (H - 1) + 0.5);
            p[2] = (uint8_t)(128 + 90.0 * sin(2 * PI * x / 120.0) * cos(2 * PI * y / 90.0) + 0.5);
        }
    const double factors[] = {1.5, 2, 3, 4};
    for (size_t f = 0; f < sizeof factors / sizeof factors[0]; f++) {
        int w = scaled_side(W, factors[f]), h = scaled_side(H, factors[f]);
        mrt_image small = resize_lanczos(&img, w, h);
        mrt_image back = resize_lanczos(&small, W, H);
        double se = 0;
        int maxerr = 0, margin = (int)(4 * factors[f]) + 4;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < 3; c++) {
                    size_t i = ((size_t)y * W + x) * 3 + c;
                    int d = abs((int)img.rgb[i] - back.rgb[i]);
                    se += (double)d * d;
                    /* the edges repeat their pixel, which bends a ramp:
                     * the maximum is checked on the interior only */
                    if (x >= margin && x < W - margin && y >= margin && y < H - margin &&
                        d > maxerr)
                        maxerr = d;
                }
        double rmse = sqrt(se / ((double)W * H * 3));
        int bad = !(rmse < 1.0) || maxerr > 2;
        printf("lanczos smooth 240x160 -> %dx%d -> 240x160: rmse %.3f, interior max %d: %s\n", w,
               h, rmse, maxerr, bad ? "FAIL" : "ok");
        failures += bad;
        mrt_image_free(&small);
        mrt_image_free(&back);
    }
    mrt_image_free(&img);
    /* scaled_side: ceil, exact divisions not rounded up */
    int bad = scaled_side(768, 1.5) != 512 || scaled_side(769, 2) != 385 ||
              scaled_side(5, 8) != 1;
    printf("scaled_side: %s\n", bad ? "FAIL" : "ok");
    failures += bad;
    printf("%s\n", failures ? "self-test FAILED" : "self-test passed");
    return failures ? 1 : 0;
}

/* ------------------------------------------------------------- results */


static int quiet = 0;
static int full_size_only = 0; /* --full-size-only: budget points without working sizes */
int refine_steps = 0; /* --refine: our encoder's latent refinement */
int refine_mse_weight_given = 0;  /* --refine-mse-weight */
float refine_mse_weight = 0.0f;

static void progress(const char *fmt, ...) {
    if (quiet) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

static void measure(const mrt_image *ref, const mrt_image *test, int threads, double *psnr,
                    double *msssim) {
    mrt_error err;
    if (mrt_image_compare(ref, test, threads, psnr, msssim, &err) != MRT_OK)
        die("comparing images: %s", err.message);
}

/* --keep-decoded: the directory the compared pictures go to (NULL: none). */
static const char *keep_dir;

static void keep_picture(const mrt_image *img, const char *path) {
    mrt_error err;
    if (mrt_image_write_png_file(img, path, &err) != MRT_OK) die("%s", err.message);
}

/* keep_dir/IMAGE[.POINT.CODEC].png: POINT is the model file's name without
 * ".gguf", "BYTESB" or "BPPbpp". */
static const char *keep_path(const char *image, const point *pt, const char *codec_name) {
    static char path[4096];
    char name[512], pn[256] = "";
    snprintf(name, sizeof name, "%s", base_name(image));
    char *dot = strrchr(name, '.');
    if (dot) *dot = 0;
    if (pt && pt->model) {
        snprintf(pn, sizeof pn, "%s", base_name(pt->model));
        size_t n = strlen(pn);
        if (n > 5 && !strcmp(pn + n - 5, ".gguf")) pn[n - 5] = 0;
    } else if (pt && pt->budget) {
        snprintf(pn, sizeof pn, "%ldB", pt->budget);
    } else if (pt) {
        snprintf(pn, sizeof pn, "%gbpp", pt->bpp);
    }
    if (pt)
        snprintf(path, sizeof path, "%s/%s.%s.%s.png", keep_dir, name, pn, codec_name);
    else
        snprintf(path, sizeof path, "%s/%s.png", keep_dir, name);
    return path;
}

/* The codecs' input at ws x hs: ref Lanczos-shrunk (or copied at its own
 * size) into in.ppm, and into in.png too when `png` (AVIF's encoder reads
 * PNG). Returns the seconds the shrinking took. */
static double write_codec_inputs(const mrt_image *ref, int ws, int hs, int png) {
    double t0 = now();
    mrt_image small = ws == ref->width && hs == ref->height ? image_copy(ref)
                                                            : resize_lanczos(ref, ws, hs);
    double down_s = now() - t0;
    mrt_error err;
    write_ppm(&small, tmp_path("in.ppm"));
    if (png && mrt_image_write_png_file(&small, tmp_path("in.png"), &err) != MRT_OK)
        die("%s", err.message);
    mrt_image_free(&small);
    return down_s;
}

/* One codec at one factor and budget: searches the quality, decodes and
 * measures. The small image's files (in.ppm / in.png) are written already. */
static outcome code_at_factor(int c, const mrt_image *ref, int ws, int hs, double factor,
                              double down_s, long budget, int threads, const char *keep_png) {
    outcome o = {0};
    const codec *cd = &codecs[c];
    const char *in = tmp_path(cd->in_png ? "in.png" : "in.ppm");
    char tryname[16], bestname[16];
    snprintf(tryname, sizeof tryname, "try.%s", cd->ext);
    snprintf(bestname, sizeof bestname, "best.%s", cd->ext);
    const char *try_p = tmp_path(tryname), *best_p = tmp_path(bestname);
    char why[512];
    double sec, best_sec = 0;
    long best_bytes = -1;
    int best_q = -1;

    /* fits(q): encode at q; if the real file fits, keep it as the best */
#define TRY(q, fitted)                                                                         \
    do {                                                                                       \
        if (!encode_with(c, (q), in, try_p, &sec, why, sizeof why))                            \
            die("%s at %dx%d: %s", cd->enc, ws, hs, why);                                      \
        long sz_ = file_size(try_p);                                                           \
        if (sz_ < 0) die("%s wrote no file", cd->enc);                                         \
        (fitted) = sz_ <= budget;                                                              \
        if (fitted) {                                                                          \
            if (rename(try_p, best_p) != 0) die("rename %s: %s", try_p, strerror(errno));      \
            best_bytes = sz_, best_q = (q), best_sec = sec;                                    \
        }                                                                                      \
    } while (0)

    int fit;
    TRY(0, fit);
    if (!fit) return o; /* not even the worst quality fits at this factor */
    TRY(cd->qsteps - 1, fit);
    if (!fit) {
        /* invariant: lo fits, hi does not; file size is assumed to grow
         * with quality (nearly always true; a rare non-monotone step only
         * costs a slightly lower quality than possible) */
        int lo = 0, hi = cd->qsteps - 1;
        while (hi - lo > 1) {
            int mid = lo + (hi - lo) / 2;
            TRY(mid, fit);
            if (fit)
                lo = mid;
            else
                hi = mid;
        }
    }
#undef TRY

    const char *dec_p = tmp_path(cd->out_png ? "dec.png" : "dec.ppm");
    double dsec;
    if (!decode_with(c, best_p, dec_p, &dsec, why, sizeof why))
        die("%s at %dx%d: %s", cd->dec, ws, hs, why);
    mrt_image small = {0};
    if (cd->out_png) {
        mrt_error err;
        if (mrt_image_read_file(dec_p, &small, &err) != MRT_OK)
            die("%s output: %s", cd->dec, err.message);
    } else if (!read_ppm(dec_p, &small, why, sizeof why)) {
        die("%s output: %s", cd->dec, why);
    }
    if (small.width != ws || small.height != hs)
        die("%s decoded %dx%d, expected %dx%d", cd->dec, small.width, small.height, ws, hs);
    double t0 = now();
    mrt_image back = small.width == ref->width && small.height == ref->height
                         ? image_copy(&small)
                         : resize_lanczos(&small, ref->width, ref->height);
    double up_s = now() - t0;
    o.fits = 1;
    o.bytes = best_bytes;
    o.bpp = best_bytes * 8.0 / ((double)ref->width * ref->height);
    o.enc_s = down_s + best_sec;
    o.dec_s = dsec + up_s;
    o.factor = factor;
    o.quality = native_param(c, best_q);
    measure(ref, &back, threads, &o.psnr, &o.msssim);
    if (keep_png) keep_picture(&back, keep_png);
    mrt_image_free(&small);
    mrt_image_free(&back);
    return o;
}

/* ----------------------------------------------------------------- main */

/* Ours at a byte budget: mrt_encode_budget over the rate points (the
 * working size chosen), or with --full-size-only each rate point at full
 * size, the best MS-SSIM that fits. factor = the image width over the
 * working width; quality = the chosen model's rate id. */
static outcome code_budget(mrt_model **rate_models, int n, const mrt_image *ref, long budget,
                           int threads) {
    outcome best = {0};
    double pixels = (double)ref->width * ref->height;
    mrt_encode_options eo = {.threads = threads,
                             .refine_steps = refine_steps,
                             .refine_mse_weight_given = refine_mse_weight_given,
                             .refine_mse_weight = refine_mse_weight};
    for (int r = 0; r < n; r++) {
        uint8_t *bits = NULL;
        size_t len = 0;
        mrt_error err;
        mrt_budget_choice ch = {0};
        int model = r;
        double t0 = now();
        if (full_size_only) {
            /* the full size even for a rate point with a working scale */
            mrt_encode_options full = eo;
            full.working_width = ref->width;
            full.working_height = ref->height;
            if (mrt_encode_with(rate_models[r], ref, &full, &bits, &len, &err) != MRT_OK)
                die("encode: %s", err.message);
            ch.working_width = ref->width;
            if ((long)len > budget) {
                mrt_free(bits);
                continue;
            }
        } else {
            /* the search covers every rate point at once */
            if (r > 0) break;
            mrt_status st = mrt_encode_budget((const mrt_model *const *)rate_models, n, ref,
                                              (size_t)budget, &eo, &bits, &len, &ch, &err);
            if (st == MRT_ERR_ARGUMENT && strstr(err.message, "too small")) break;
            if (st != MRT_OK) die("encode: %s", err.message);
            model = ch.model;
        }
        double t1 = now();
        mrt_image dec;
        if (mrt_decode(rate_models[model], bits, len, threads, &dec, &err) != MRT_OK)
            die("decode: %s", err.message);
        double t2 = now();
        mrt_free(bits);
        outcome o = {1, (long)len, len * 8.0 / pixels, 0, 0, t1 - t0, t2 - t1,
                     (double)ref->width / ch.working_width, mrt_model_rate_id(rate_models[model])};
        /* at full size (mrt_encode_budget ranks its candidates at about a
         * megapixel) */
        measure(ref, &dec, threads, &o.psnr, &o.msssim);
        mrt_image_free(&dec);
        if (!best.fits || o.msssim > best.msssim) best = o;
    }
    return best;
}

static void usage(void) {
    fprintf(stderr,
            "usage: bench_rd [--model FILE]... [--bpp X]... [--budget BYTES]... [--full-size-only]\n"
            "                [--codecs jpeg,webp,avif,jxl]\n"
            "                [--factors 1,1.5,2,3,4,6,8,12,16] [--max-side N] [--out DIR]\n"
            "                [--threads N] [--refine STEPS] [--refine-mse-weight W]\n"
            "                [--timeout S] [--keep-decoded DIR] [--quiet] IMAGE...\n"
            "       bench_rd --self-test\n");
    exit(2);
}

static double parse_double(const char *s, const char *what) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) {
        fprintf(stderr, "bench_rd: bad %s '%s'\n", what, s);
        usage();
    }
    return v;
}

int main(int argc, char **argv) {
    enum { MAXPTS = 64, MAXIMG = 4096, MAXF = 32 };
    point pts[MAXPTS];
    int npts = 0, nmodels = 0;
    char **images = xcalloc(MAXIMG, sizeof(char *));
    int nimg = 0;
    int want[NCODECS] = {0}, codecs_given = 0;
    /* 12 and 16 past the usual 8: at 0.01 bpp on Kodak, JPEG and JPEG XL
     * are best at 12-16 on some images (measured) */
    double factors[MAXF] = {1, 1.5, 2, 3, 4, 6, 8, 12, 16};
    int nfactors = 9;
    int max_side = 0, threads = 1;
    const char *outdir = ".";
    /* One table; getopt_long keeps the options' order, which is the
     * order of the rate points. */
    enum { O_SELF_TEST = 256, O_QUIET, O_MODEL, O_REFINE, O_REFINE_MSE_WEIGHT, O_BPP, O_BUDGET,
           O_FULL_SIZE_ONLY, O_CODECS, O_FACTORS, O_MAX_SIDE, O_OUT, O_THREADS, O_TIMEOUT,
           O_KEEP_DECODED };
    static const struct option options[] = {
        {"self-test", no_argument, NULL, O_SELF_TEST},
        {"quiet", no_argument, NULL, O_QUIET},
        {"model", required_argument, NULL, O_MODEL},
        {"refine", required_argument, NULL, O_REFINE},
        {"refine-mse-weight", required_argument, NULL, O_REFINE_MSE_WEIGHT},
        {"bpp", required_argument, NULL, O_BPP},
        {"budget", required_argument, NULL, O_BUDGET},
        {"full-size-only", no_argument, NULL, O_FULL_SIZE_ONLY},
        {"codecs", required_argument, NULL, O_CODECS},
        {"factors", required_argument, NULL, O_FACTORS},
        {"max-side", required_argument, NULL, O_MAX_SIDE},
        {"out", required_argument, NULL, O_OUT},
        {"threads", required_argument, NULL, O_THREADS},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"keep-decoded", required_argument, NULL, O_KEEP_DECODED},
        {NULL, 0, NULL, 0},
    };
    int opt;
    opterr = 0; /* usage() says it */
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case O_SELF_TEST:
            free(images);
            return self_test();
        case O_QUIET:
            quiet = 1;
            break;
        case O_MODEL:
            if (npts == MAXPTS) die("too many rate points");
            pts[npts++] = (point){optarg, 0, 0, ""};
            nmodels++;
            break;
        case O_REFINE: {
            double v = parse_double(optarg, "--refine");
            if (!(v >= 0 && v <= MRT_REFINE_MAX_STEPS) || v != floor(v))
                die("--refine must be a whole number of steps, 0..%d", MRT_REFINE_MAX_STEPS);
            refine_steps = (int)v;
            break;
        }
        case O_REFINE_MSE_WEIGHT: {
            double v = parse_double(optarg, "--refine-mse-weight");
            if (!(v >= 0 && v <= MRT_MAX_MSE_WEIGHT))
                die("--refine-mse-weight must be in [0, %g]", (double)MRT_MAX_MSE_WEIGHT);
            refine_mse_weight_given = 1;
            refine_mse_weight = (float)v;
            break;
        }
        case O_BPP: {
            if (npts == MAXPTS) die("too many rate points");
            double v = parse_double(optarg, "--bpp");
            if (!(v > 0 && v <= 24)) die("--bpp must be in (0, 24]");
            pts[npts++] = (point){NULL, v, 0, ""};
            break;
        }
        case O_BUDGET: {
            if (npts == MAXPTS) die("too many rate points");
            size_t bytes;
            if (mrt_parse_byte_budget(optarg, &bytes) != 0)
                die("--budget: a byte budget such as 2000, 2KB or 1.5KiB, not '%s'", optarg);
            pts[npts++] = (point){NULL, 0, (long)bytes, ""};
            break;
        }
        case O_FULL_SIZE_ONLY:
            full_size_only = 1;
            break;
        case O_CODECS: {
            codecs_given = 1;
            char buf[256];
            snprintf(buf, sizeof buf, "%s", optarg);
            for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
                int c = 0;
                while (c < NCODECS && strcmp(codecs[c].name, t)) c++;
                if (c == NCODECS) die("unknown codec '%s' (jpeg, webp, avif, jxl)", t);
                want[c] = 1;
            }
            break;
        }
        case O_FACTORS: {
            char buf[512];
            snprintf(buf, sizeof buf, "%s", optarg);
            nfactors = 0;
            for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
                if (nfactors == MAXF) die("too many factors");
                double v = parse_double(t, "factor");
                if (!(v >= 1 && v <= 64)) die("factors must be in [1, 64]");
                factors[nfactors++] = v;
            }
            if (!nfactors) die("no factors");
            break;
        }
        case O_MAX_SIDE:
            max_side = (int)parse_double(optarg, "--max-side");
            if (max_side < 16) die("--max-side must be at least 16");
            break;
        case O_OUT:
            outdir = optarg;
            break;
        case O_KEEP_DECODED:
            keep_dir = optarg;
            if (mkdir(keep_dir, 0777) != 0 && errno != EEXIST)
                die("--keep-decoded %s: %s", keep_dir, strerror(errno));
            break;
        case O_THREADS:
            threads = (int)parse_double(optarg, "--threads");
            if (threads < 0) die("--threads must be >= 0");
            resize_threads = threads;
            break;
        case O_TIMEOUT:
            tool_timeout = parse_double(optarg, "--timeout");
            if (!(tool_timeout > 0)) die("--timeout must be > 0");
            break;
        default:
            usage();
        }
    }
    for (int a = optind; a < argc; a++) {
        if (nimg == MAXIMG) die("too many images");
        images[nimg++] = argv[a];
    }
    if (!nimg || !npts) usage();
    /* With --budget, the --model files are the rate points the budget
     * search chooses from, not rate points of their own. */
    const char *rate_files[MAXPTS];
    int nrate_files = 0, nbudgets = 0;
    for (int p = 0; p < npts; p++) nbudgets += pts[p].budget > 0;
    if (nbudgets) {
        int kept = 0;
        for (int p = 0; p < npts; p++) {
            if (pts[p].model) rate_files[nrate_files++] = pts[p].model;
            else pts[kept++] = pts[p];
        }
        npts = kept;
        if (!nrate_files) die("--budget needs the rate points: one --model FILE or more");
        nmodels = nrate_files;
    } else if (full_size_only) {
        die("--full-size-only applies to --budget points");
    }

    /* Codecs: the ones asked for must be installed; by default every one
     * that is. Slot 0 is ours (when models are given), 1 + c classical. */
    int active[1 + NCODECS] = {0};
    active[0] = nmodels > 0;
    int nclassical = 0;
    for (int c = 0; c < NCODECS; c++) {
        int have = in_path(codecs[c].enc) && in_path(codecs[c].dec);
        if (codecs_given && want[c] && !have)
            die("%s needs %s and %s in PATH (scripts/install-deps.sh)", codecs[c].name,
                codecs[c].enc, codecs[c].dec);
        if (codecs_given ? want[c] : have) active[1 + c] = 1, nclassical++;
        if (!codecs_given && !have)
            progress("bench_rd: %s skipped: %s/%s not installed\n", codecs[c].name, codecs[c].enc,
                     codecs[c].dec);
    }
    if (!nclassical && !nmodels) die("no codec to run (none of cjpeg, cwebp, avifenc, cjxl found)");

    struct stat st;
    if (stat(outdir, &st) != 0 || !S_ISDIR(st.st_mode)) die("--out %s: not a directory", outdir);
    make_tmpdir();

    mrt_model **rate_models = xcalloc((size_t)(nrate_files ? nrate_files : 1), sizeof *rate_models);
    for (int r = 0; r < nrate_files; r++) {
        mrt_error err;
        if (mrt_model_load(rate_files[r], &rate_models[r], &err) != MRT_OK) die("%s", err.message);
    }
    mrt_model **models = xcalloc((size_t)npts, sizeof *models);
    for (int p = 0; p < npts; p++) {
        if (!pts[p].model) continue;
        mrt_error err;
        if (mrt_model_load(pts[p].model, &models[p], &err) != MRT_OK) die("%s", err.message);
        mrt_fingerprint_hex(mrt_model_fingerprint(models[p]), pts[p].fingerprint);
    }

    /* res[slot][point][image]; NULL where a slot has no result for a point
     * (ours at a --bpp point) */
    result ***res = xcalloc(1 + NCODECS, sizeof *res);
    for (int s = 0; s < 1 + NCODECS; s++) {
        res[s] = xcalloc((size_t)npts, sizeof **res);
        for (int p = 0; p < npts; p++)
            if (active[s] && (s > 0 || pts[p].model || pts[p].budget))
                res[s][p] = xcalloc((size_t)nimg, sizeof ***res);
    }
    mrt_image *sizes = xcalloc((size_t)nimg, sizeof *sizes);
    /* candidates at every factor, [point][codec][factor] */
    outcome *cand = xcalloc((size_t)npts * NCODECS * nfactors, sizeof *cand);

    for (int i = 0; i < nimg; i++) {
        mrt_image ref;
        mrt_error err;
        if (mrt_image_read_file(images[i], &ref, &err) != MRT_OK) die("%s", err.message);
        int longer = ref.width > ref.height ? ref.width : ref.height;
        if (max_side && longer > max_side) {
            double s = (double)longer / max_side;
            mrt_image small =
                resize_lanczos(&ref, scaled_side(ref.width, s), scaled_side(ref.height, s));
            mrt_image_free(&ref);
            ref = small;
        }
        sizes[i] = (mrt_image){ref.width, ref.height, NULL};
        double pixels = (double)ref.width * ref.height;
        progress("%s (%dx%d)\n", base_name(images[i]), ref.width, ref.height);
        if (keep_dir) keep_picture(&ref, keep_path(images[i], NULL, NULL));

        /* Ours first: its bytes are the other codecs' budgets. */
        long budget[MAXPTS];
        for (int p = 0; p < npts; p++) {
            if (pts[p].budget) {
                /* ours chooses rate point and working size; the classical
                 * codecs then get exactly our bytes */
                outcome o = code_budget(rate_models, nrate_files, &ref, pts[p].budget, threads);
                res[0][p][i] = (result){pts[p].budget, o, o};
                /* nothing of ours fits: the classical codecs get the budget itself */
                budget[p] = o.fits ? o.bytes : pts[p].budget;
                char pn[64];
                point_name(&pts[p], pn, sizeof pn);
                if (o.fits)
                    progress("  %-26s mrt   %6ld B  %.4f bpp  PSNR %6.2f  MS-SSIM %.4f  s=%g "
                             "rate id %g\n", pn, o.bytes, o.bpp, o.psnr, o.msssim, o.factor,
                             o.quality);
                else
                    progress("  %-26s mrt   does not fit\n", pn);
                continue;
            }
            if (!pts[p].model) {
                budget[p] = (long)floor(pts[p].bpp * pixels / 8.0);
                continue;
            }
            uint8_t *bits;
            size_t len;
            double t0 = now();
            mrt_encode_options eo = {.threads = threads,
                                     .refine_steps = refine_steps,
                                     .refine_mse_weight_given = refine_mse_weight_given,
                                     .refine_mse_weight = refine_mse_weight};
            if (mrt_encode_with(models[p], &ref, &eo, &bits, &len, &err) != MRT_OK)
                die("%s: encode: %s", images[i], err.message);
            double t1 = now();
            mrt_image dec;
            if (mrt_decode(models[p], bits, len, threads, &dec, &err) != MRT_OK)
                die("%s: decode: %s", images[i], err.message);
            double t2 = now();
            mrt_free(bits);
            int ww, wh; /* a rate point with a working scale codes a smaller copy */
            mrt_working_size(models[p], ref.width, ref.height, &ww, &wh);
            outcome o = {1, (long)len, len * 8.0 / pixels, 0, 0, t1 - t0, t2 - t1,
                         (double)ref.width / ww, mrt_model_rate_id(models[p])};
            measure(&ref, &dec, threads, &o.psnr, &o.msssim);
            if (keep_dir) keep_picture(&dec, keep_path(images[i], &pts[p], "mrt"));
            mrt_image_free(&dec);
            res[0][p][i] = (result){(long)len, o, o};
            budget[p] = (long)len;
            progress("  %-26s mrt   %6ld B  %.4f bpp  PSNR %6.2f  MS-SSIM %.4f\n",
                     base_name(pts[p].model), o.bytes, o.bpp, o.psnr, o.msssim);
        }

        /* Each factor's small image is made and written once, then every
         * point and codec is searched on it. */
        memset(cand, 0, sizeof *cand * (size_t)npts * NCODECS * nfactors);
        if (nclassical)
            for (int k = 0; k < nfactors; k++) {
                int ws = scaled_side(ref.width, factors[k]), hs = scaled_side(ref.height, factors[k]);
                double down_s = write_codec_inputs(&ref, ws, hs, active[1 + C_AVIF]);
                for (int p = 0; p < npts; p++)
                    for (int c = 0; c < NCODECS; c++)
                        if (active[1 + c])
                            cand[((size_t)p * NCODECS + c) * nfactors + k] = code_at_factor(
                                c, &ref, ws, hs, factors[k], down_s, budget[p], threads, NULL);
            }
        for (int p = 0; p < npts; p++)
            for (int c = 0; c < NCODECS; c++) {
                if (!active[1 + c]) continue;
                result r = {budget[p], {0}, {0}};
                for (int k = 0; k < nfactors; k++) {
                    const outcome *o = &cand[((size_t)p * NCODECS + c) * nfactors + k];
                    if (!o->fits) continue;
                    if (!r.best.fits || o->msssim > r.best.msssim) r.best = *o;
                    if (!r.best_psnr.fits || o->psnr > r.best_psnr.psnr) r.best_psnr = *o;
                }
                res[1 + c][p][i] = r;
                if (keep_dir && r.best.fits) {
                    /* the kept factor again, this time writing its picture */
                    int ws = scaled_side(ref.width, r.best.factor);
                    int hs = scaled_side(ref.height, r.best.factor);
                    write_codec_inputs(&ref, ws, hs, codecs[c].in_png);
                    code_at_factor(c, &ref, ws, hs, r.best.factor, 0, budget[p], threads,
                                   keep_path(images[i], &pts[p], codecs[c].name));
                }
                char pn[256];
                point_name(&pts[p], pn, sizeof pn);
                if (r.best.fits)
                    progress("  %-26s %-5s %6ld B  %.4f bpp  PSNR %6.2f  MS-SSIM %.4f  s=%g q=%g"
                             "  (by PSNR: s=%g %.2f dB)\n",
                             pn, codecs[c].name, r.best.bytes, r.best.bpp, r.best.psnr,
                             r.best.msssim, r.best.factor, r.best.quality, r.best_psnr.factor,
                             r.best_psnr.psnr);
                else
                    progress("  %-26s %-5s does not fit %ld B at any factor\n", pn,
                             codecs[c].name, budget[p]);
            }
        mrt_image_free(&ref);
    }

    /* Outputs */
    char factors_text[512] = "";
    size_t used = 0;
    for (int k = 0; k < nfactors && used < sizeof factors_text; k++)
        used += snprintf(factors_text + used, sizeof factors_text - used, "%s%g", k ? ", " : "",
                         factors[k]);
    const char *names[1 + NCODECS] = {"mrt"}, *labels[1 + NCODECS] = {"mrt (ours)"};
    for (int c = 0; c < NCODECS; c++) {
        names[1 + c] = codecs[c].name;
        labels[1 + c] = codecs[c].label;
    }
    if (active[0]) {
        char desc[1024];
        char weight[64] = "";
        if (refine_mse_weight_given)
            snprintf(weight, sizeof weight, ", MSE weight %g", (double)refine_mse_weight);
        size_t u = refine_steps ? (size_t)snprintf(desc, sizeof desc, "mrt (ours, latent "
                                                   "refinement of %d steps%s), one rate point "
                                                   "per model:", refine_steps, weight)
                          : (size_t)snprintf(desc, sizeof desc, "mrt (ours), one rate point per "
                                             "model:");
        for (int p = 0; p < npts && u < sizeof desc; p++)
            if (pts[p].model)
                u += snprintf(desc + u, sizeof desc - u, " %s", base_name(pts[p].model));
        if (nrate_files && u < sizeof desc)
            u += snprintf(desc + u, sizeof desc - u, " byte budgets, %s, among:",
                          full_size_only ? "at full size (the best rate point that fits)"
                                         : "rate point and working size chosen by "
                                           "mrt_encode_budget (factor = width / working width)");
        for (int r = 0; r < nrate_files && u < sizeof desc; r++)
            u += snprintf(desc + u, sizeof desc - u, " %s", base_name(rate_files[r]));
        write_json(outdir, "mrt", desc, NULL, res[0], pts, npts, images, sizes, nimg);
    }
    for (int c = 0; c < NCODECS; c++) {
        if (!active[1 + c]) continue;
        char ver[160], desc[1024];
        tool_version(c, ver, sizeof ver);
        snprintf(desc, sizeof desc,
                 "%s [%s]; per image the best of downscale factors %s (Lanczos-3 down, %s, %s, "
                 "Lanczos-3 up) with the quality searched for the largest file within the budget",
                 codecs[c].settings, ver, factors_text, codecs[c].enc, codecs[c].dec);
        write_json(outdir, codecs[c].name, desc, codecs[c].param, res[1 + c], pts, npts, images,
                   sizes, nimg);
    }
    write_markdown(outdir, res, active, 1 + NCODECS, names, pts, npts, images, sizes, nimg,
                   factors_text);
    write_gnuplot(outdir, res, active, 1 + NCODECS, names, labels, npts, nimg);
    progress("bench_rd: wrote rd-*.json, rd.md and rd.gp in %s\n", outdir);

    for (int s = 0; s < 1 + NCODECS; s++) {
        for (int p = 0; p < npts; p++) free(res[s][p]);
        free(res[s]);
    }
    free(res);
    for (int p = 0; p < npts; p++) mrt_model_free(models[p]);
    free(models);
    for (int r = 0; r < nrate_files; r++) mrt_model_free(rate_models[r]);
    free(rate_models);
    free(cand);
    free(sizes);
    free(images);
    return 0;
}

