/*
 * thumbnails.c -- `mrt fit-thumbnails`: the thumbnail heads of a model
 * (codec/model/thumbnail.h), fitted by least squares.
 *
 * A head is linear in the decoder's map (3x3 neighbourhoods of D channels,
 * plus a bias), so the best one for a set of photos is a least-squares
 * problem with a closed form: no learning rate, no schedule, the same
 * result on every run for the same photos. For each photo (a centred crop
 * of at most `crop` pixels a side) the model encodes it and decodes its map
 * exactly as a decoder will (mrt_decode_map); each map position fully
 * inside the picture gives one row: its features (level and radius as
 * asked) and, as targets, the 2 x 2 pixels of the original shrunk to 1/4
 * with Lanczos-3 (mrt_image_resize, the shrink the thumbnail replaces). The
 * normal equations X'X w = X'y are accumulated in double (blocks of rows
 * multiplied in float by BLIS, each block's sum added in double) and solved
 * by Cholesky with a small ridge, relative to X'X's mean diagonal.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec_internal.h"
#include "gguf.h"
#include "mrt_sha256.h"
#include "mrt_train.h"
#include "status.h"
#include "thumbnail.h"

#define BLOCK_ROWS 4096

void mrt_thumb_fit_defaults(mrt_thumb_fit_options *o) {
    memset(o, 0, sizeof *o);
    /* chosen on the validation split (bench/README.md, "Thumbnails") */
    o->images = 400;
    o->crop = 768;
    o->seed = 1;
    o->ridge = 1e-4;
    o->level = 2;
    o->radius = 1;
}

/* In place: A (n x n, symmetric positive definite, row-major) -> its
 * Cholesky factor L in the lower triangle. -1 if not positive definite. */
static int cholesky(double *A, int n) {
    for (int j = 0; j < n; j++) {
        double d = A[(size_t)j * n + j];
        for (int k = 0; k < j; k++) d -= A[(size_t)j * n + k] * A[(size_t)j * n + k];
        if (!(d > 0)) return -1;
        d = sqrt(d);
        A[(size_t)j * n + j] = d;
        for (int i = j + 1; i < n; i++) {
            double v = A[(size_t)i * n + j];
            for (int k = 0; k < j; k++) v -= A[(size_t)i * n + k] * A[(size_t)j * n + k];
            A[(size_t)i * n + j] = v / d;
        }
    }
    return 0;
}

/* Solves L L' x = b in place (b: n values). */
static void cholesky_solve(const double *L, int n, double *b) {
    for (int i = 0; i < n; i++) {
        double v = b[i];
        for (int k = 0; k < i; k++) v -= L[(size_t)i * n + k] * b[k];
        b[i] = v / L[(size_t)i * n + i];
    }
    for (int i = n - 1; i >= 0; i--) {
        double v = b[i];
        for (int k = i + 1; k < n; k++) v -= L[(size_t)k * n + i] * b[k];
        b[i] = v / L[(size_t)i * n + i];
    }
}

/* The normal equations of the 1/4 head: X'X and X'y for its 12 outputs;
 * rows gathered in float blocks. */
typedef struct normal_eq {
    int K;                /* 9 D + 1 (the bias's constant 1) */
    double *xtx, *xty4;
    float *X, *Y4;        /* a block of rows */
    float *bxtx, *bxty4;
    int rows;
    long long total_rows;
} normal_eq;

static void flush_block(normal_eq *ne, const mrt_rt *rt) {
    if (!ne->rows) return;
    int K = ne->K, n = ne->rows;
    mrt_sgemm(rt, true, false, K, K, n, 1.0f, ne->X, K, ne->X, K, 0.0f, ne->bxtx, K);
    mrt_sgemm(rt, true, false, K, 12, n, 1.0f, ne->X, K, ne->Y4, 12, 0.0f, ne->bxty4, 12);
    for (size_t i = 0; i < (size_t)K * K; i++) ne->xtx[i] += ne->bxtx[i];
    for (size_t i = 0; i < (size_t)K * 12; i++) ne->xty4[i] += ne->bxty4[i];
    ne->total_rows += n;
    ne->rows = 0;
}

/* Adds one photo's rows: its features and the original shrunk to 1/4. */
static void add_photo(normal_eq *ne, const mrt_rt *rt, const float *positions, int dim, int hp,
                      int wp, int radius, const mrt_image *t4) {
    int K = ne->K, rows = t4->height / 2 < hp ? t4->height / 2 : hp;
    int cols = t4->width / 2 < wp ? t4->width / 2 : wp;
    for (int y = 0; y < rows; y++)
        for (int x = 0; x < cols; x++) {
            /* fully inside: the 2x2 pixels at 1/4 (rows, cols above) */
            float *row = ne->X + (size_t)ne->rows * K;
            mrt_thumb_features(positions, dim, hp, wp, y, x, radius, row);
            row[K - 1] = 1.0f;
            float *y4 = ne->Y4 + (size_t)ne->rows * 12;
            for (int sy = 0; sy < 2; sy++)
                for (int sx = 0; sx < 2; sx++)
                    for (int c = 0; c < 3; c++)
                        y4[(sy * 2 + sx) * 3 + c] =
                            t4->rgb[((size_t)(2 * y + sy) * t4->width + 2 * x + sx) * 3 + c];
            if (++ne->rows == BLOCK_ROWS) flush_block(ne, rt);
        }
}

/* Solves for one head: weights (outs, K - 1) and bias (outs) in float. */
static int solve_head(const normal_eq *ne, const double *xty, int outs, double ridge, float *w,
                      float *b, double *L) {
    int K = ne->K;
    double mean_diag = 0;
    for (int i = 0; i < K; i++) mean_diag += ne->xtx[(size_t)i * K + i];
    mean_diag /= K;
    /* X'X is symmetric; BLIS filled both triangles */
    memcpy(L, ne->xtx, sizeof(double) * (size_t)K * K);
    for (int i = 0; i < K - 1; i++) L[(size_t)i * K + i] += ridge * mean_diag; /* not the bias */
    if (cholesky(L, K) != 0) return -1;
    double *col = malloc(sizeof(double) * (size_t)K);
    if (!col) return -1;
    for (int o = 0; o < outs; o++) {
        for (int i = 0; i < K; i++) col[i] = xty[(size_t)i * outs + o];
        cholesky_solve(L, K, col);
        for (int i = 0; i < K - 1; i++) w[(size_t)o * (K - 1) + i] = (float)col[i];
        b[o] = (float)col[K - 1];
    }
    free(col);
    return 0;
}

/* A centred crop of at most side x side (a view copied out). */
static int centre_crop(const mrt_image *img, int side, mrt_image *out) {
    int w = img->width < side ? img->width : side, h = img->height < side ? img->height : side;
    int x0 = (img->width - w) / 2, y0 = (img->height - h) / 2;
    out->width = w, out->height = h;
    out->rgb = malloc((size_t)w * h * 3);
    if (!out->rgb) return -1;
    for (int y = 0; y < h; y++)
        memcpy(out->rgb + (size_t)y * w * 3, img->rgb + ((size_t)(y0 + y) * img->width + x0) * 3,
               (size_t)w * 3);
    return 0;
}

mrt_status mrt_fit_thumbnails(const mrt_thumb_fit_options *o, mrt_error *err) {
    if (!o || !o->model || !o->data || o->ndata < 1 || o->images < 1 || o->crop < 64)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "fit-thumbnails: a model, data and at least one "
                        "photo of a crop of 64 or more are needed");
    mrt_model *model = NULL;
    mrt_status st = mrt_model_load_with(o->model, false, &model, err);
    if (st != MRT_OK) return st;
    const mrt_config *cfg = mrt_model_config(model);
    if (mrt_model_working_scale(model) < 1.0) {
        /* a head serves full-size streams only (codec.c), and this model's
         * streams code a shrunk copy */
        double scale = mrt_model_working_scale(model);
        mrt_model_free(model);
        return mrt_fail(err, MRT_ERR_ARGUMENT, "fit-thumbnails: %s codes photos at a working "
                        "scale of %g (a rate point made of other weights): its streams never "
                        "use a thumbnail head; fit the weights it was made from", o->model, scale);
    }
    if (o->level < 0 || o->level > 2 || o->radius < 1 || o->radius > 3) {
        mrt_model_free(model);
        return mrt_fail(err, MRT_ERR_ARGUMENT, "fit-thumbnails: --level is 0, 1 or 2, --radius 1, 2 or 3");
    }
    int side = 2 * o->radius + 1;
    int D = o->level ? cfg->gen_width[0] : cfg->dim, K = side * side * D + 1;
    mrt_dataset ds = {0};
    normal_eq ne = {.K = K};
    int *order = NULL;
    float *w4 = NULL, *b4 = NULL;
    double *L = NULL;
    char *out_path = NULL;
    mrt_gguf_writer *gw = NULL;
    if ((st = mrt_dataset_load(&ds, o->data, o->ndata, 64, err)) != MRT_OK) goto done;
    mrt_rt rt = mrt_rt_make(o->threads);
    ne.xtx = calloc((size_t)K * K, sizeof(double));
    ne.xty4 = calloc((size_t)K * 12, sizeof(double));
    ne.X = malloc(sizeof(float) * (size_t)BLOCK_ROWS * K);
    ne.Y4 = malloc(sizeof(float) * (size_t)BLOCK_ROWS * 12);
    ne.bxtx = malloc(sizeof(float) * (size_t)K * K);
    ne.bxty4 = malloc(sizeof(float) * (size_t)K * 12);
    order = malloc(sizeof(int) * (size_t)ds.count);
    w4 = malloc(sizeof(float) * (size_t)12 * (K - 1)), b4 = malloc(sizeof(float) * 12);
    L = malloc(sizeof(double) * (size_t)K * K);
    if (!ne.xtx || !ne.xty4 || !ne.X || !ne.Y4 || !ne.bxtx || !ne.bxty4 || !order || !w4 || !b4 ||
        !L) {
        st = mrt_fail(err, MRT_ERR_NOMEM, "fit-thumbnails: out of memory");
        goto done;
    }
    /* the photos: a seeded shuffle of the set, the first `images` of it */
    for (int i = 0; i < ds.count; i++) order[i] = i;
    mrt_rng rng;
    mrt_rng_seed(&rng, o->seed);
    for (int i = ds.count - 1; i > 0; i--) {
        int j = (int)(mrt_rng_next(&rng) % (uint64_t)(i + 1));
        int t = order[i];
        order[i] = order[j], order[j] = t;
    }
    int n = o->images < ds.count ? o->images : ds.count;
    time_t start = time(NULL);
    for (int i = 0; i < n; i++) {
        mrt_image crop = {0}, t4 = {0};
        uint8_t *bits = NULL;
        size_t len = 0;
        float *map = NULL;
        int hp = 0, wp = 0;
        if (centre_crop(&ds.images[order[i]], o->crop, &crop) != 0) {
            st = mrt_fail(err, MRT_ERR_NOMEM, "fit-thumbnails: out of memory");
        } else if ((st = mrt_encode(model, &crop, o->threads, &bits, &len, err)) == MRT_OK &&
                   (st = mrt_decode_map(model, bits, len, o->threads, &map, &hp, &wp, err)) ==
                       MRT_OK &&
                   (st = mrt_image_resize(&crop, (crop.width + 3) / 4, (crop.height + 3) / 4,
                                          o->threads, &t4, err)) == MRT_OK) {
            const float *features;
            float *owned = NULL, *positions = NULL;
            int channels;
            if (mrt_thumb_feature_map(&rt, &mrt_model_weights(model)->gen, cfg->dim,
                                      cfg->gen_width[0], map, hp, wp, o->level, &features,
                                      &channels, &owned) != 0 ||
                !(positions = mrt_thumb_positions(features, D, hp, wp, o->threads)))
                st = mrt_fail(err, MRT_ERR_NOMEM, "fit-thumbnails: out of memory");
            else
                add_photo(&ne, &rt, positions, D, hp, wp, o->radius, &t4);
            free(positions);
            free(owned);
        }
        mrt_image_free(&crop), mrt_image_free(&t4);
        mrt_free(bits);
        free(map);
        if (st != MRT_OK) {
            mrt_fail(err, st, "fit-thumbnails: %s: %s", ds.names[order[i]], err->message);
            goto done;
        }
        if (!o->quiet && ((i + 1) % 20 == 0 || i + 1 == n))
            fprintf(stderr, "fit-thumbnails: %d/%d photos, %lld rows, %lld s\n", i + 1, n,
                    ne.total_rows + ne.rows, (long long)(time(NULL) - start));
    }
    flush_block(&ne, &rt);
    if (ne.total_rows < K) {
        st = mrt_fail(err, MRT_ERR_ARGUMENT, "fit-thumbnails: %lld rows for %d unknowns: more or "
                      "larger photos are needed", ne.total_rows, K);
        goto done;
    }
    if (solve_head(&ne, ne.xty4, 12, o->ridge, w4, b4, L) != 0) {
        st = mrt_fail(err, MRT_ERR_ARGUMENT, "fit-thumbnails: the normal equations are singular "
                      "(a larger --ridge helps)");
        goto done;
    }
    /* the heads file: which model (the whole SHA-256 of its file), how it
     * was fitted, the four tensors (GGUF dims: fastest first) */
    out_path = o->out ? strdup(o->out) : mrt_thumb_heads_path(o->model);
    gw = mrt_gguf_writer_new();
    char sha[MRT_SHA256_HEX_CHARS + 1];
    mrt_sha256_hex(mrt_model_fingerprint(model), sha);
    const int64_t w4d[2] = {K - 1, 12}, b4d[1] = {12};
    char msg[256] = "out of memory";
    if (!out_path || !gw ||
        mrt_gguf_writer_add_str(gw, "general.architecture", "mrt-thumbnails") != 0 ||
        mrt_gguf_writer_add_str(gw, "mrt.thumbs.model_sha256", sha) != 0 ||
        mrt_gguf_writer_add_u32(gw, "mrt.thumbs.level", (uint32_t)o->level) != 0 ||
        mrt_gguf_writer_add_u32(gw, "mrt.thumbs.radius", (uint32_t)o->radius) != 0 ||
        mrt_gguf_writer_add_u32(gw, "mrt.thumbs.photos", (uint32_t)n) != 0 ||
        mrt_gguf_writer_add_u32(gw, "mrt.thumbs.crop", (uint32_t)o->crop) != 0 ||
        mrt_gguf_writer_add_u64(gw, "mrt.thumbs.seed", o->seed) != 0 ||
        mrt_gguf_writer_add_u64(gw, "mrt.thumbs.rows", (uint64_t)ne.total_rows) != 0 ||
        mrt_gguf_writer_add_f32(gw, "mrt.thumbs.ridge", (float)o->ridge) != 0 ||
        mrt_gguf_writer_add_tensor(gw, "thumb.4.weight", MRT_GGUF_F32, 2, w4d, w4) != 0 ||
        mrt_gguf_writer_add_tensor(gw, "thumb.4.bias", MRT_GGUF_F32, 1, b4d, b4) != 0 ||
        mrt_gguf_writer_save(gw, out_path, msg, sizeof msg) != 0) {
        st = mrt_fail(err, MRT_ERR_IO, "fit-thumbnails: %s: %s", out_path ? out_path : "",
                      gw && mrt_gguf_writer_error(gw) ? mrt_gguf_writer_error(gw) : msg);
        goto done;
    }
    if (!o->quiet)
        fprintf(stderr, "fit-thumbnails: %s: the 1/4 head from %d photos (%lld rows)\n",
                out_path, n, ne.total_rows);
done:
    mrt_gguf_writer_free(gw);
    free(out_path);
    free(ne.xtx), free(ne.xty4), free(ne.X), free(ne.Y4), free(ne.bxtx), free(ne.bxty4);
    free(order), free(w4), free(b4), free(L);
    mrt_dataset_free(&ds);
    mrt_model_free(model);
    return st;
}
