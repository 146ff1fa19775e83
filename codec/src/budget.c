/*
 * budget.c -- encoding to a byte budget: the encoder chooses the rate point
 * (one of the models given) and the working size (mrt.h,
 * mrt_encode_budget).
 *
 * At a few hundred bytes the classical codecs' best trade is a smaller
 * picture scaled back up (their best downscale factor is 4-16 at these
 * rates), and ours is no different: a 1/2-size copy at a higher rate point
 * can beat the full size at a lower one. So for each model the search
 * finds the largest working scale on a fixed ladder whose bitstream fits
 * the budget, by encoding (the bytes are exact, and encoding costs a
 * fraction of decoding), narrows it by bisection towards the step that did
 * not fit, grows it to whole latent windows and then by one more column or
 * row of windows when that still fits, then decodes each model's candidate the way a
 * reader will (decode, normative upscale) and keeps the one closest to the
 * original by MS-SSIM (PSNR breaking ties): the same rule bench_rd uses to
 * give the classical codecs their best factor.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"
#include "status.h"

/* Working scales tried, largest first: steps of about 1/8 of a
 * doubling, down to 1/16. */
static const double LADDER[] = {1.0,    0.875,  0.75,   0.625, 0.5,     0.4375, 0.375,
                                0.3125, 0.25,   0.21875, 0.1875, 0.15625, 0.125, 0.109375,
                                0.09375, 0.078125, 0.0625};
enum { NLADDER = sizeof LADDER / sizeof LADDER[0] };

static int scaled(int side, double s) {
    long v = lround(side * s);
    return v < 1 ? 1 : (int)v;
}

/* Encodes img at working size ww x wh with model m. */
static mrt_status encode_sized(const mrt_model *m, const mrt_image *img, int ww, int wh,
                               const mrt_encode_options *base, uint8_t **bits, size_t *len,
                               mrt_error *err) {
    mrt_encode_options o = *base;
    o.working_width = ww;
    o.working_height = wh;
    if (o.working_width == img->width && o.working_height == img->height)
        o.working_width = o.working_height = 0;
    return mrt_encode_with(m, img, &o, bits, len, err);
}

typedef struct candidate {
    int step;
    double scale; /* LADDER[step], or between it and the step above */
    int ww, wh;   /* the working size */
    uint8_t *bits;
    size_t len;
    double psnr, msssim;
} candidate;

/* Bisections between a fitting ladder step and the one above it that did
 * not fit: each narrows the gap (about 1/8 of a doubling) by half, so the
 * budget is used to within about 1.5 % of the scale. */
#define BISECTIONS 3

/* Encodes img at working scale s with model m. */
static mrt_status encode_at(const mrt_model *m, const mrt_image *img, double s,
                            const mrt_encode_options *base, uint8_t **bits, size_t *len,
                            mrt_error *err) {
    return encode_sized(m, img, scaled(img->width, s), scaled(img->height, s), base, bits, len,
                        err);
}

/* The ladder step at or below scale s. */
static int step_at_or_below(double s) {
    int k = 0;
    while (k + 1 < NLADDER && LADDER[k] > s * 1.0001) k++;
    return k;
}

/* Keeps (k, bits, len) in c if it fits, else frees the bits; returns
 * whether it fit. */
static int keep_if_fits(candidate *c, const mrt_image *img, size_t budget, int k, double scale,
                        uint8_t *bits, size_t len, size_t *smallest) {
    if (len <= budget) {
        mrt_free(c->bits);
        c->step = k, c->scale = scale, c->bits = bits, c->len = len;
        c->ww = scaled(img->width, scale), c->wh = scaled(img->height, scale);
        return 1;
    }
    mrt_free(bits);
    if (*smallest == 0 || len < *smallest) *smallest = len;
    return 0;
}

/* Encodes img at ww x wh and, if that fits the budget, keeps it in c as
 * the candidate (its ladder step and scale stay those it grew from). */
static mrt_status try_size(const mrt_model *m, const mrt_image *img, int ww, int wh,
                           const mrt_encode_options *base, size_t budget, candidate *c,
                           mrt_error *err) {
    uint8_t *bits = NULL;
    size_t len = 0;
    mrt_status st = encode_sized(m, img, ww, wh, base, &bits, &len, err);
    if (st != MRT_OK) return st;
    if (len > budget) {
        mrt_free(bits);
        return MRT_OK;
    }
    mrt_free(c->bits);
    c->bits = bits, c->len = len, c->ww = ww, c->wh = wh;
    return MRT_OK;
}

/* The largest working scale that fits `budget` with model m (c->step -1:
 * none, and *smallest is the smallest size seen). Bytes grow with the
 * working area (a fixed number of tokens per 64x64 window), so one cheap
 * probe at PROBE_SCALE (1/16 of the pixels) predicts the ladder step to
 * start from; the search then walks up while the next step fits, or down
 * until one does, and bisects between the last fit and the first miss. */
#define PROBE_STEP 8 /* LADDER[8] = 1/4 */
static mrt_status largest_fit(const mrt_model *m, const mrt_image *img, size_t budget,
                              const mrt_encode_options *base, candidate *c, size_t *smallest,
                              mrt_error *err) {
    c->step = -1;
    uint8_t *bits = NULL;
    size_t len = 0;
    mrt_status st = encode_at(m, img, LADDER[PROBE_STEP], base, &bits, &len, err);
    if (st != MRT_OK) return st;
    int k = step_at_or_below(LADDER[PROBE_STEP] * sqrt((double)budget / (double)len));
    int probe_fits = keep_if_fits(c, img, budget, PROBE_STEP, LADDER[PROBE_STEP], bits, len, smallest);
    double over = 0; /* the smallest scale known not to fit */
    if (!probe_fits) over = LADDER[PROBE_STEP];
    if (probe_fits && k >= PROBE_STEP) k = PROBE_STEP - 1; /* the prediction is low: look up */
    if (!probe_fits && k <= PROBE_STEP) k = PROBE_STEP + 1;
    /* walk from k: up while fitting, down while not */
    for (;;) {
        if (k < 0 || k >= NLADDER || k == c->step) break;
        if (over > 0 && LADDER[k] >= over) { /* above a known miss */
            if (++k >= NLADDER) break;
            continue;
        }
        if ((st = encode_at(m, img, LADDER[k], base, &bits, &len, err)) != MRT_OK) return st;
        if (keep_if_fits(c, img, budget, k, LADDER[k], bits, len, smallest)) {
            if (k == 0) break; /* the full size fits */
            if (over > 0 && LADDER[k - 1] >= over) break;
            k--;
        } else {
            over = LADDER[k];
            if (c->step == k + 1) break; /* the fit just below: done walking */
            k++;                         /* towards the fit below, or to one */
        }
    }
    if (c->step < 0) return MRT_OK;
    /* use the rest of the budget: bisect towards the scale that did not fit */
    for (int b = 0; b < BISECTIONS && over > 0; b++) {
        double mid = 0.5 * (c->scale + over);
        if (scaled(img->width, mid) == scaled(img->width, c->scale) &&
            scaled(img->height, mid) == scaled(img->height, c->scale))
            break;
        if ((st = encode_at(m, img, mid, base, &bits, &len, err)) != MRT_OK) return st;
        if (!keep_if_fits(c, img, budget, c->step, mid, bits, len, smallest)) over = mid;
    }
    /* The latent has a fixed number of tokens per window of S x S pixels,
     * so a working size inside a partial window pays for the whole window:
     * growing each side to its window boundary (at most the image's) gives
     * the same tokens more picture, at about the same bytes. */
    const mrt_config *cfg = mrt_model_config(m);
    int S = cfg->window * cfg->patch;
    int gw = (c->ww + S - 1) / S * S, gh = (c->wh + S - 1) / S * S;
    if (gw > img->width) gw = img->width;
    if (gh > img->height) gh = img->height;
    if ((gw != c->ww || gh != c->wh) && (st = try_size(m, img, gw, gh, base, budget, c, err)))
        return st;
    /* then one more column or row of windows, whichever gives the larger
     * picture that still fits (the column on a tie): the sides need not
     * keep the image's aspect ratio, and on the validation split (nine
     * photos at 1024 px, 400-1600 bytes) this spent 2-6 % more of the
     * budget for +0.02 to +0.17 dB and +0.003 to +0.009 MS-SSIM */
    int w0 = c->ww, h0 = c->wh;
    int cw = w0 + S > img->width ? img->width : w0 + S;
    int rh = h0 + S > img->height ? img->height : h0 + S;
    if ((long)cw * h0 > (long)w0 * h0 && (st = try_size(m, img, cw, h0, base, budget, c, err)))
        return st;
    if ((long)w0 * rh > (long)c->ww * c->wh &&
        (st = try_size(m, img, w0, rh, base, budget, c, err)))
        return st;
    return MRT_OK;
}

mrt_status mrt_encode_budget(const mrt_model *const *models, int nmodels, const mrt_image *img,
                             size_t max_bytes, const mrt_encode_options *options,
                             uint8_t **out, size_t *out_len, mrt_budget_choice *choice,
                             mrt_error *err) {
    if (!models || nmodels < 1 || !img || !out || !out_len)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_encode_budget: NULL argument or no model");
    *out = NULL;
    *out_len = 0;
    if (choice) memset(choice, 0, sizeof *choice);
    for (int i = 0; i < nmodels; i++)
        if (!models[i]) return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_encode_budget: model %d is NULL", i);
    mrt_encode_options base = {0};
    if (options) base = *options;
    if (base.working_width || base.working_height)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "a byte budget chooses the working size itself");
    candidate *cand = calloc((size_t)nmodels, sizeof *cand);
    if (!cand) return mrt_fail(err, MRT_ERR_NOMEM, "out of memory");
    mrt_status st = MRT_OK;
    size_t smallest = 0;
    int found = 0;
    for (int i = 0; i < nmodels; i++) {
        if ((st = largest_fit(models[i], img, max_bytes, &base, &cand[i], &smallest, err)))
            goto done;
        found += cand[i].step >= 0;
    }
    if (!found) {
        st = mrt_fail(err, MRT_ERR_ARGUMENT, "a budget of %zu bytes is too small for this "
                      "%dx%d image: its smallest bitstream is %zu bytes", max_bytes, img->width,
                      img->height, smallest);
        goto done;
    }
    /* decode each model's candidate as a reader will, and compare */
    int best = -1;
    for (int i = 0; i < nmodels; i++) {
        candidate *c = &cand[i];
        if (c->step < 0) continue;
        mrt_image dec;
        if ((st = mrt_decode(models[i], c->bits, c->len, base.threads, &dec, err))) goto done;
        st = mrt_image_compare(img, &dec, base.threads, &c->psnr, &c->msssim, err);
        mrt_image_free(&dec);
        if (st) goto done;
        if (best < 0 || c->msssim > cand[best].msssim ||
            (c->msssim == cand[best].msssim && c->psnr > cand[best].psnr))
            best = i;
    }
    *out = cand[best].bits;
    *out_len = cand[best].len;
    cand[best].bits = NULL;
    if (choice) {
        choice->model = best;
        choice->working_width = cand[best].ww;
        choice->working_height = cand[best].wh;
        choice->bytes = cand[best].len;
        choice->psnr = cand[best].psnr;
        choice->msssim = cand[best].msssim;
    }
done:
    for (int i = 0; i < nmodels; i++) mrt_free(cand[i].bits);
    free(cand);
    return st == MRT_OK ? mrt_ok(err) : st;
}

int mrt_parse_byte_budget(const char *text, size_t *bytes) {
    if (!text || !bytes || !(*text >= '0' && *text <= '9')) return -1;
    char *end;
    double v = strtod(text, &end);
    double unit = !strcmp(end, "") || !strcmp(end, "B") ? 1.0
                  : !strcmp(end, "KB")                  ? 1000.0
                  : !strcmp(end, "KiB")                 ? 1024.0
                                                        : 0.0;
    if (unit == 0.0) return -1;
    double b = floor(v * unit + 1e-9);
    if (!(b >= 1.0 && b <= 1e9)) return -1;
    *bytes = (size_t)b;
    return 0;
}
