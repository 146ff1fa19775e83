/*
 * budget.c -- encoding to a byte budget: the encoder chooses the rate point
 * (one of the models given) and the working size (mrt.h,
 * mrt_encode_budget).
 *
 * At a few hundred bytes the classical codecs' best trade is a smaller
 * picture scaled back up (their best downscale factor is 4-16 at these
 * rates), and ours is no different: a 1/2-size copy at a higher rate point
 * can beat the full size at a lower one. So for each model the search
 * finds the largest working size that fits the budget among whole window
 * grids (size_path), by encoding (the bytes are exact, and encoding costs a
 * fraction of decoding) where a power law through the tries so far
 * predicts the budget to fall, then decodes each model's candidate and
 * keeps the one closest to the original by MS-SSIM (PSNR breaking ties),
 * compared at about a megapixel: the same rule bench_rd uses to give the
 * classical codecs their best factor.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"
#include "status.h"

/* The smallest working scale the search goes down to (a model's own
 * working scale has the same floor). */
#define MIN_SCALE MRT_MIN_WORKING_SCALE

/*
 * The working sizes the search walks, smallest first. The latent has a
 * fixed number of tokens per window of S x S pixels, so a working size
 * inside a partial window pays for the whole window: the sizes worth
 * coding are whole windows (or the image's own side). Point 0 is the image
 * at MIN_SCALE; the next points are window grids in the order a growing
 * scale reaches them (one more column or row of windows each, or both at
 * once), up to the image's own size. Between two points the size grows
 * linearly, so sizes with a partial column or row serve budgets that fall
 * between two grids. Bytes grow along the path (more tokens, more
 * picture), which is what lets the search bracket the budget.
 */
typedef struct size_path {
    int n;      /* points */
    int *w, *h; /* their sizes */
} size_path;

static int path_make(size_path *p, int W, int H, int S) {
    int A = (W + S - 1) / S, B = (H + S - 1) / S;
    p->w = malloc(sizeof(int) * (size_t)(A + B + 2));
    p->h = malloc(sizeof(int) * (size_t)(A + B + 2));
    if (!p->w || !p->h) return -1;
    int w0 = mrt_scaled_side(W, MIN_SCALE), h0 = mrt_scaled_side(H, MIN_SCALE);
    int a = (w0 + S - 1) / S, b = (h0 + S - 1) / S;
    p->n = 0;
    p->w[p->n] = w0, p->h[p->n++] = h0;
    for (;;) {
        int gw = a * S < W ? a * S : W, gh = b * S < H ? b * S : H;
        if (gw != p->w[p->n - 1] || gh != p->h[p->n - 1]) p->w[p->n] = gw, p->h[p->n++] = gh;
        if (a == A && b == B) break;
        /* the scale at which each side would need one more window */
        double sa = a < A ? (double)a * S / W : 2.0, sb = b < B ? (double)b * S / H : 2.0;
        if (sa <= sb) a++;
        if (sb <= sa) b++;
    }
    return 0;
}

static void path_free(size_path *p) {
    free(p->w), free(p->h);
}

/* The size at position t in [0, n-1]. */
static void path_size(const size_path *p, double t, int *w, int *h) {
    int k = (int)floor(t);
    if (k >= p->n - 1) {
        *w = p->w[p->n - 1], *h = p->h[p->n - 1];
        return;
    }
    if (k < 0) k = 0, t = 0;
    double f = t - k;
    *w = p->w[k] + (int)lround(f * (p->w[k + 1] - p->w[k]));
    *h = p->h[k] + (int)lround(f * (p->h[k + 1] - p->h[k]));
}

static double path_area(const size_path *p, double t) {
    int w, h;
    path_size(p, t, &w, &h);
    return (double)w * h;
}

/* The position whose area is `area` (the path's area only grows). */
static double path_at_area(const size_path *p, double area) {
    double lo = 0, hi = p->n - 1;
    if (area <= path_area(p, lo)) return lo;
    if (area >= path_area(p, hi)) return hi;
    for (int i = 0; i < 40; i++) {
        double mid = 0.5 * (lo + hi);
        if (path_area(p, mid) < area) lo = mid;
        else hi = mid;
    }
    return lo;
}

typedef struct candidate {
    int found;
    int ww, wh; /* the working size */
    uint8_t *bits;
    size_t len;
    double psnr, msssim; /* estimated (see COMPARE_PIXELS) */
} candidate;

/* Encodes img at working size ww x wh with model m. */
static mrt_status encode_sized(const mrt_model *m, const mrt_image *img, int ww, int wh,
                               const mrt_encode_options *base, uint8_t **bits, size_t *len,
                               mrt_error *err) {
    mrt_encode_options o = *base;
    /* always explicit: 0 x 0 would be the model's own working scale, and
     * the full size given is coded as a version-1 stream */
    o.working_width = ww;
    o.working_height = wh;
    return mrt_encode_with(m, img, &o, bits, len, err);
}

/* Encodes img at ww x wh and keeps it in c if it fits the budget (*fits
 * says whether); *len receives the bytes either way. */
static mrt_status try_size(const mrt_model *m, const mrt_image *img, int ww, int wh,
                           const mrt_encode_options *base, size_t budget, candidate *c,
                           int *fits, size_t *len, size_t *smallest, mrt_error *err) {
    uint8_t *bits = NULL;
    mrt_status st = encode_sized(m, img, ww, wh, base, &bits, len, err);
    if (st != MRT_OK) return st;
    *fits = *len <= budget;
    if (!*fits) {
        mrt_free(bits);
        if (*smallest == 0 || *len < *smallest) *smallest = *len;
        return MRT_OK;
    }
    mrt_free(c->bits);
    c->found = 1, c->bits = bits, c->len = *len, c->ww = ww, c->wh = wh;
    return MRT_OK;
}

/* Encodes per model at most on the path (the search needs 3-5). */
#define MAX_TRIES 12
/* What the prediction aims at, as a share of the budget: a little under,
 * so that the first prediction usually fits and the next one closes in. */
#define AIM 0.985

/*
 * The largest working size on the path that fits `budget` with model m
 * (c->found 0: none, and *smallest is the smallest size seen). Bytes grow
 * about as a power of the working area, so after a cheap probe at about
 * 1/4 scale (1/16 of the pixels) each try predicts, from the largest fit
 * and the smallest miss so far (before there are both: from the probe and
 * the last try; a power of 1 after the probe), the
 * area that spends AIM of the budget, and encodes the path's point at or
 * below it, pulled inside the bracket of fit and miss. It stops when they
 * are neighbours on the path. Then the sides the path's next step did not
 * grow are tried one window larger: one more column or one more row, the
 * larger picture that fits.
 */
static mrt_status largest_fit(const mrt_model *m, const mrt_image *img, size_t budget,
                              const mrt_encode_options *base, candidate *c, size_t *smallest,
                              mrt_error *err) {
    c->found = 0;
    const mrt_config *cfg = mrt_model_config(m);
    int S = cfg->window * cfg->patch;
    size_path path;
    if (path_make(&path, img->width, img->height, S) != 0) {
        path_free(&path);
        return mrt_fail(err, MRT_ERR_NOMEM, "out of memory");
    }
    mrt_status st = MRT_OK;
    int last = path.n - 1;
    int lo = -1, hi = path.n; /* the largest fit and the smallest miss (none yet) */
    double lo_bytes = 0, hi_bytes = 0;
    int probe = -1; /* the first try, and its bytes */
    double probe_bytes = 0;
    int k = (int)floor(path_at_area(&path, (double)img->width * img->height / 16.0));
    for (int tries = 0; tries < MAX_TRIES; tries++) {
        int fits;
        size_t len;
        if ((st = try_size(m, img, path.w[k], path.h[k], base, budget, c, &fits, &len, smallest,
                           err)))
            goto done;
        if (fits) lo = k, lo_bytes = (double)len;
        else hi = k, hi_bytes = (double)len;
        if (hi - lo <= 1) break; /* neighbours, the full size fits, or point 0 misses */
        /* predict: bytes = q * area^power through the fit and the miss,
         * else through this try and the probe (the widest base: bytes
         * are noisy from one grid to the next) */
        double power = 1.0;
        if (lo >= 0 && hi <= last && hi_bytes > lo_bytes)
            power = (log(hi_bytes) - log(lo_bytes)) /
                    (log(path_area(&path, hi)) - log(path_area(&path, lo)));
        else if (probe >= 0 && probe != k && (double)len != probe_bytes)
            power = (log((double)len) - log(probe_bytes)) /
                    (log(path_area(&path, k)) - log(path_area(&path, probe)));
        if (!(power >= 0.5)) power = 0.5; /* also a NaN; bytes do not shrink with area */
        if (power > 1.5) power = 1.5;
        if (probe < 0) probe = k, probe_bytes = (double)len;
        double ref_area = path_area(&path, fits ? lo : hi), ref_bytes = fits ? lo_bytes : hi_bytes;
        double area = ref_area * pow(AIM * (double)budget / ref_bytes, 1.0 / power);
        int next = (int)floor(path_at_area(&path, area));
        int first = lo + 1, end = (hi > last ? last : hi - 1);
        k = next < first ? first : next > end ? end : next;
    }
    /* one more column or row beside the path's next step */
    if (c->found && lo < last && hi == lo + 1) {
        int ww = path.w[lo], wh = path.h[lo];
        int col = ww + S < img->width ? ww + S : img->width;
        int row = wh + S < img->height ? wh + S : img->height;
        int grows_w = path.w[hi] != ww, grows_h = path.h[hi] != wh;
        /* the increment the step did not make (both, for a step that made both) */
        int try_w[2] = {col, ww}, try_h[2] = {wh, row};
        int allowed[2] = {grows_h && col != ww, grows_w && row != wh};
        /* the larger picture first: it is kept if it fits */
        int order0 = (double)col * wh >= (double)ww * row ? 0 : 1;
        for (int i = 0; i < 2; i++) {
            int j = i == 0 ? order0 : 1 - order0, fits;
            size_t len;
            if (!allowed[j]) continue;
            if ((st = try_size(m, img, try_w[j], try_h[j], base, budget, c, &fits, &len,
                               smallest, err)))
                goto done;
            if (fits) break;
        }
    }
done:
    path_free(&path);
    return st;
}

/*
 * Candidates are compared at about COMPARE_PIXELS (at most the image's own
 * size): the original resized to that (once), each candidate decoded at
 * its working size and brought to the same size (the normative upscale
 * when it is smaller on both sides). For a 13-megapixel photo that is 0.2 s
 * a candidate instead of 3 s at full size. With the shipped three models it
 * ordered all 126 pairs of candidates on the validation split and the large
 * photos (docs/DESIGN.md §7, 9 photos at 400, 1000 and 2500 B, 5 at 2, 8
 * and 32 KB) as at full size, the 37 less than 0.01 MS-SSIM apart included.
 * But detail finer than the comparison counts for nothing: with a 0.05
 * rate point in training as a fourth, the 0.05 model at 1856x1024 scored
 * 0.9474 over 0.9433 for the 0.02 model at 2816x1536 (Bridge, 8 KB), and
 * 0.9217 under 0.9226 at full size (and still over it at 4.3 MP, the
 * finer one's working size). So when the best two are closer than
 * RECHECK_MARGIN and one of them is wider than the comparison, they are
 * judged again at full size, decoded and upscaled as a reader will see
 * them. The scores differ from full-size ones unless that happened
 * (choice->compared_*).
 */
#define COMPARE_PIXELS 1000000.0

typedef struct compare_size {
    int w, h;            /* the image's size, or less */
    mrt_image reference; /* the original at w x h, made when first needed */
} compare_size;

/* The comparison size: `pixels` (at least COMPARE_PIXELS), in the image's
 * aspect, at most the image's own size. */
static void compare_size_of(const mrt_image *img, double pixels, compare_size *cmp) {
    memset(cmp, 0, sizeof *cmp);
    double target = pixels > COMPARE_PIXELS ? pixels : COMPARE_PIXELS;
    double s = sqrt(target / ((double)img->width * img->height));
    cmp->w = img->width, cmp->h = img->height;
    if (s < 1.0) cmp->w = mrt_scaled_side(img->width, s), cmp->h = mrt_scaled_side(img->height, s);
}

/* Sets c->psnr and c->msssim. */
static mrt_status compare_candidate(const mrt_model *m, const mrt_image *img, candidate *c,
                                    compare_size *cmp, int threads, mrt_error *err) {
    mrt_status st;
    mrt_image dec, sized;
    if (cmp->w == img->width && cmp->h == img->height) {
        /* at full size: exactly what a reader will see */
        if ((st = mrt_decode(m, c->bits, c->len, threads, &dec, err))) return st;
        st = mrt_image_compare(img, &dec, threads, &c->psnr, &c->msssim, err);
        mrt_image_free(&dec);
        return st;
    }
    if (!cmp->reference.rgb &&
        (st = mrt_image_resize(img, cmp->w, cmp->h, threads, &cmp->reference, err)))
        return st;
    if ((st = mrt_decode_working(m, c->bits, c->len, threads, &dec, err))) return st;
    if (dec.width <= cmp->w && dec.height <= cmp->h)
        st = mrt_image_upscale(&dec, cmp->w, cmp->h, threads, &sized, err);
    else
        st = mrt_image_resize(&dec, cmp->w, cmp->h, threads, &sized, err);
    mrt_image_free(&dec);
    if (st) return st;
    st = mrt_image_compare(&cmp->reference, &sized, threads, &c->psnr, &c->msssim, err);
    mrt_image_free(&sized);
    return st;
}

/* Candidates closer than this in MS-SSIM at about a megapixel, one of them
 * finer than that, are judged again at full size (see COMPARE_PIXELS). */
#define RECHECK_MARGIN 0.01

/* Whether candidate a ranks above b: MS-SSIM, PSNR breaking ties. */
static int better(const candidate *a, const candidate *b) {
    return a->msssim > b->msssim || (a->msssim == b->msssim && a->psnr > b->psnr);
}

/* Whether models[i]'s weights are tried through another of the models: a
 * rate point made of other weights (mrt_rate_point_write) codes what they
 * code at any working size, so the search tries each set of weights once,
 * through the model trained for them (working scale 1) when it is there,
 * else the first. */
static bool tried_elsewhere(const mrt_model *const *models, int nmodels, int i) {
    bool i_native = mrt_model_working_scale(models[i]) >= 1.0;
    for (int j = 0; j < nmodels; j++) {
        if (j == i) continue;
        bool j_native = mrt_model_working_scale(models[j]) >= 1.0;
        if ((j_native && !i_native) || (j_native == i_native && j < i))
            if (mrt_model_same_weights(models[i], models[j])) return true;
    }
    return false;
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
    compare_size cmp = {0}, close = {0};
    for (int i = 0; i < nmodels; i++) {
        if (tried_elsewhere(models, nmodels, i)) continue;
        if ((st = largest_fit(models[i], img, max_bytes, &base, &cand[i], &smallest, err)))
            goto done;
        found += cand[i].found;
    }
    if (!found) {
        st = mrt_fail(err, MRT_ERR_ARGUMENT, "a budget of %zu bytes is too small for this "
                      "%dx%d image: its smallest bitstream is %zu bytes", max_bytes, img->width,
                      img->height, smallest);
        goto done;
    }
    /* decode each model's candidate and compare it with the original, at
     * about a megapixel */
    int best = -1, second = -1;
    compare_size_of(img, 0, &cmp);
    compare_size *used = &cmp;
    for (int i = 0; i < nmodels; i++) {
        candidate *c = &cand[i];
        if (!c->found) continue;
        if ((st = compare_candidate(models[i], img, c, &cmp, base.threads, err))) goto done;
        if (best < 0 || better(c, &cand[best])) second = best, best = i;
        else if (second < 0 || better(c, &cand[second])) second = i;
    }
    /* a close call between the best two, one of them finer than that
     * comparison: judged again at full size, as a reader will see them */
    if (second >= 0 && cand[best].msssim - cand[second].msssim < RECHECK_MARGIN &&
        (cand[best].ww > cmp.w || cand[second].ww > cmp.w)) {
        compare_size_of(img, (double)img->width * img->height, &close);
        if ((st = compare_candidate(models[best], img, &cand[best], &close, base.threads, err)) ||
            (st = compare_candidate(models[second], img, &cand[second], &close, base.threads,
                                    err)))
            goto done;
        if (better(&cand[second], &cand[best])) best = second;
        used = &close;
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
        choice->compared_width = used->w;
        choice->compared_height = used->h;
    }
done:
    mrt_image_free(&cmp.reference);
    mrt_image_free(&close.reference);
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
