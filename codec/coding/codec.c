/*
 * codec.c -- the codec: a loaded model (its weights file, model_file.c, and
 * the entropy coder's tables), encode, decode, stream information.
 *
 *   encode: analysis (float) -> y, side bits
 *           context model (integer) in bitstream order -> mu, scale index
 *           r = round(y - mu), range-coded with the Gaussian tables
 *           header + stream 0 (side bits, raw) + stream 1 (symbols)
 *   decode: header -> side bits -> context model + range decoder in the
 *           same order -> y_hat = r + mu -> synthesis (float) -> RGB8
 *
 * The encoder runs the very same integer context model as the decoder, on
 * the values the decoder will have, so both see identical probabilities.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitstream.h"
#include "codec_internal.h"
#include "ctxmodel.h"
#include "entropy.h"
#include "refine.h"
#include "mrt_json.h"
#include "mrt_sha256.h"
#include "status.h"
#include "thumbnail.h"
#include "transform.h"

struct mrt_model {
    mrt_model_file file;
    mrt_gauss_tables tables;
    mrt_thumb_heads thumbs; /* the heads file beside it, if any (thumbnail.h) */
};

mrt_status mrt_model_load(const char *path, mrt_model **out, mrt_error *err) {
    return mrt_model_load_with(path, true, out, err);
}

mrt_status mrt_model_load_with(const char *path, bool thumbnail_heads, mrt_model **out,
                               mrt_error *err) {
    if (!path || !out) return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_model_load: NULL argument");
    *out = NULL;
    mrt_model *m = calloc(1, sizeof *m);
    if (!m) return mrt_fail(err, MRT_ERR_NOMEM, "out of memory loading %s", path);
    mrt_status st = mrt_model_file_open(path, &m->file, err);
    if (st != MRT_OK) {
        free(m);
        return st;
    }
    if (mrt_gauss_tables_build(&m->tables) != 0) {
        mrt_model_free(m);
        return mrt_fail(err, MRT_ERR_NOMEM, "out of memory loading %s", path);
    }
    if (thumbnail_heads)
        st = mrt_thumb_heads_load(path, m->file.fingerprint, m->file.cfg.dim,
                                  m->file.cfg.gen_width[0], &m->thumbs, err);
    if (st != MRT_OK) {
        mrt_model_free(m);
        return st;
    }
    *out = m;
    return mrt_ok(err);
}

void mrt_model_free(mrt_model *m) {
    if (!m) return;
    mrt_model_file_close(&m->file);
    mrt_gauss_tables_free(&m->tables);
    mrt_thumb_heads_free(&m->thumbs);
    free(m);
}

const uint8_t *mrt_model_fingerprint(const mrt_model *m) { return m->file.fingerprint; }
int mrt_model_rate_id(const mrt_model *m) { return m->file.rate_id; }
const char *mrt_model_path(const mrt_model *m) { return m->file.path; }
const mrt_config *mrt_model_config(const mrt_model *m) { return &m->file.cfg; }
const mrt_weights *mrt_model_weights(const mrt_model *m) { return &m->file.w; }
float mrt_model_mse_weight(const mrt_model *m) { return m->file.mse_weight; }
double mrt_model_working_scale(const mrt_model *m) { return m->file.working_scale; }

void mrt_scaled_size(int width, int height, double scale, int *sw, int *sh) {
    *sw = mrt_scaled_side(width, scale);
    *sh = mrt_scaled_side(height, scale);
}

void mrt_working_size(const mrt_model *m, int width, int height, int *ww, int *wh) {
    mrt_scaled_size(width, height, m->file.working_scale, ww, wh);
}

bool mrt_model_same_weights(const mrt_model *a, const mrt_model *b) {
    return a == b || mrt_model_file_same_weights(&a->file, &b->file);
}

mrt_status mrt_rate_point_write(const char *weights_path, int rate_id, double working_scale,
                                const char *out_path, mrt_error *err) {
    if (!weights_path || !out_path)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_rate_point_write: NULL path");
    if (rate_id < 0 || rate_id > 255)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "rate id %d is outside 0..255", rate_id);
    /* checked in double: a scale that only rounds into range as a float is
     * still refused; and one below 1 that the file's float would store as 1 */
    if (!(working_scale >= MRT_MIN_WORKING_SCALE && working_scale <= 1.0))
        return mrt_fail(err, MRT_ERR_ARGUMENT, "working scale %g is outside [%g, 1]",
                        working_scale, (double)MRT_MIN_WORKING_SCALE);
    if (working_scale < 1.0 && (float)working_scale >= 1.0f)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "working scale %.10g is too close to 1 to "
                        "store (give 1)", working_scale);
    mrt_model_file f;
    mrt_status st = mrt_model_file_open(weights_path, &f, err);
    if (st != MRT_OK) return st;
    st = mrt_model_save(&f.cfg, &f.w, rate_id, f.mse_weight, (float)working_scale, out_path, err);
    mrt_model_file_close(&f);
    return st == MRT_OK ? mrt_ok(err) : st;
}
const mrt_thumb_heads *mrt_model_thumb_heads(const mrt_model *m) { return &m->thumbs; }

/* --------------------------------------------------------------- encode */

typedef struct {
    const float *y;         /* analysis output */
    int32_t *decoded;       /* Q4 values the decoder will have */
    int channels;
    mrt_rc_encoder *enc;
    const mrt_gauss_tables *tables;
    mrt_trace *trace;
} encode_ctx;

static int encode_symbol(void *p, int token, int ch, int32_t mu_q4, int scale) {
    encode_ctx *e = p;
    size_t i = (size_t)token * e->channels + ch;
    int32_t residual = mrt_encoder_residual(e->y[i], mu_q4);
    mrt_gauss_encode(e->enc, e->tables, scale, residual);
    e->decoded[i] = residual * MRT_CTX_Q + mu_q4;
    if (e->trace) mrt_trace_add(e->trace, residual, mu_q4, scale);
    return 0;
}

static void pack_bits(uint8_t *out, const uint8_t *bits, size_t n) {
    memset(out, 0, (n + 7) / 8);
    for (size_t i = 0; i < n; i++)
        if (bits[i]) out[i / 8] |= (uint8_t)(1u << (i % 8));
}

static bool image_ok(const mrt_image *img, mrt_error *err, mrt_status *st) {
    if (!img || !img->rgb) {
        *st = mrt_fail(err, MRT_ERR_ARGUMENT, "no image");
        return false;
    }
    if (img->width < 1 || img->height < 1 || img->width > MRT_MAX_SIDE ||
        img->height > MRT_MAX_SIDE) {
        *st = mrt_fail(err, MRT_ERR_TOO_BIG, "image size %dx%d is outside 1..%d per side",
                       img->width, img->height, MRT_MAX_SIDE);
        return false;
    }
    if ((long long)img->width * img->height > MRT_MAX_PIXELS) {
        *st = mrt_fail(err, MRT_ERR_TOO_BIG, "image %dx%d has more than %lld pixels", img->width,
                       img->height, (long long)MRT_MAX_PIXELS);
        return false;
    }
    return true;
}

/* refine: NULL, or latent refinement before coding (refine.h). */
/* working: NULL, or the image downscaled to the working size (the
 * original `img` then only gives the size the header records). */
static mrt_status encode(const mrt_model *m, const mrt_image *full, const mrt_image *working,
                         int threads, const mrt_refine_options *refine, mrt_refine_report *report,
                         uint8_t **out, size_t *out_len, mrt_trace *trace, mrt_error *err) {
    mrt_status st;
    if (!m || !out || !out_len) return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_encode: NULL argument");
    if (!image_ok(full, err, &st)) return st;
    const mrt_image *img = working ? working : full;
    if (refine && (st = mrt_refine_check(img->width, img->height, refine, err)) != MRT_OK)
        return st;
    *out = NULL;
    *out_len = 0;
    const mrt_config *cfg = &m->file.cfg;
    mrt_rt rt = mrt_rt_make(threads);
    mrt_latent_shape sh = mrt_latent_shape_of(cfg, img->width, img->height);
    size_t nsym = (size_t)sh.ntokens * cfg->channels;
    size_t nside = (size_t)sh.ngx * sh.ngy * cfg->side_bits;
    float *y = malloc(sizeof(float) * nsym);
    int32_t *decoded = calloc(nsym, sizeof(int32_t));
    uint8_t *side = calloc(nside + 1, 1), *side_packed = calloc(nside / 8 + 1, 1);
    mrt_rc_encoder enc;
    bool enc_ready = false;
    uint8_t *coded = NULL;
    size_t coded_len = 0;
    if (!y || !decoded || !side || !side_packed) {
        st = mrt_fail(err, MRT_ERR_NOMEM, "out of memory encoding a %dx%d image", img->width,
                      img->height);
        goto done;
    }
    if ((st = mrt_analysis(&rt, cfg, &m->file.w, img->rgb, img->width, img->height, y, side, err)))
        goto done;
    /* refinement minimises the loss this model was trained for, unless
     * the caller weighs its MSE term otherwise */
    if (refine && (st = mrt_refine_latent(&rt, cfg, &m->file.w, &m->tables, m->file.mse_weight, img->rgb,
                                          img->width, img->height, side, refine, y, report, err)))
        goto done;
    if (mrt_rc_encoder_init(&enc) != 0) {
        st = mrt_fail(err, MRT_ERR_NOMEM, "out of memory");
        goto done;
    }
    enc_ready = true;
    encode_ctx ectx = {y, decoded, cfg->channels, &enc, &m->tables, trace};
    if (trace) mrt_trace_side(trace, side, nside);
    mrt_ctx_run(cfg, &m->file.w, &sh, side, decoded, encode_symbol, &ectx);
    if (mrt_rc_encoder_finish(&enc, &coded, &coded_len) != 0) {
        enc_ready = false;
        st = mrt_fail(err, MRT_ERR_NOMEM, "out of memory");
        goto done;
    }
    enc_ready = false;
    pack_bits(side_packed, side, nside);
    mrt_bitstream_header h;
    memset(&h, 0, sizeof h);
    h.version = 0; /* version 2 only for a working size: others stay readable by version 1 */
    h.width = (uint32_t)full->width;
    h.height = (uint32_t)full->height;
    h.coded_width = (uint32_t)img->width;
    h.coded_height = (uint32_t)img->height;
    memcpy(h.fingerprint, m->file.fingerprint, MRT_FINGERPRINT_BYTES);
    h.rate_id = (uint8_t)m->file.rate_id;
    h.nstreams = 2;
    const uint8_t *streams[2] = {side_packed, coded};
    size_t lens[2] = {(nside + 7) / 8, coded_len};
    st = mrt_bitstream_write(&h, streams, lens, out, out_len, err);
done:
    if (enc_ready) mrt_rc_encoder_free(&enc);
    free(coded);
    free(y);
    free(decoded);
    free(side);
    free(side_packed);
    return st == MRT_OK ? mrt_ok(err) : st;
}

mrt_status mrt_encode_traced(const mrt_model *m, const mrt_image *img, int threads,
                             uint8_t **out, size_t *out_len, mrt_trace *trace, mrt_error *err) {
    return encode(m, img, NULL, threads, NULL, NULL, out, out_len, trace, err);
}

mrt_status mrt_encode_refined(const mrt_model *m, const mrt_image *img, int threads,
                              const mrt_refine_options *refine, mrt_refine_report *report,
                              uint8_t **out, size_t *out_len, mrt_error *err) {
    return encode(m, img, NULL, threads, refine, report, out, out_len, NULL, err);
}

mrt_status mrt_encode(const mrt_model *m, const mrt_image *img, int threads, uint8_t **out,
                      size_t *out_len, mrt_error *err) {
    /* threads < 0 has always meant the default here, as 0 does */
    mrt_encode_options o = {.threads = threads < 0 ? 0 : threads};
    return mrt_encode_with(m, img, &o, out, out_len, err);
}

mrt_status mrt_encode_with(const mrt_model *m, const mrt_image *img,
                           const mrt_encode_options *options, uint8_t **out, size_t *out_len,
                           mrt_error *err) {
    mrt_encode_options none = {0, 0, 0, 0.0f, 0, 0};
    if (!options) options = &none;
    if (options->threads < 0)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_encode: threads must be >= 0, not %d",
                        options->threads);
    /* any step count but 0 goes to encode(), whose mrt_refine_check
     * refuses one outside 0..MRT_REFINE_MAX_STEPS */
    mrt_refine_options refine = {options->refine_steps, MRT_REFINE_LR,
                                 options->refine_mse_weight_given != 0,
                                 options->refine_mse_weight};
    const mrt_refine_options *r = options->refine_steps != 0 ? &refine : NULL;
    int ww = options->working_width, wh = options->working_height;
    mrt_status st;
    if (ww == 0 && wh == 0 && (!m || m->file.working_scale >= 1.0f))
        return encode(m, img, NULL, options->threads, r, NULL, out, out_len, NULL, err);
    if (!image_ok(img, err, &st)) return st;
    if (ww == 0 && wh == 0) mrt_working_size(m, img->width, img->height, &ww, &wh);
    if (ww < 1 || wh < 1 || ww > img->width || wh > img->height)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "working size %dx%d is not within the image's "
                        "%dx%d", ww, wh, img->width, img->height);
    if (ww == img->width && wh == img->height)
        return encode(m, img, NULL, options->threads, r, NULL, out, out_len, NULL, err);
    mrt_image working;
    if ((st = mrt_image_resize(img, ww, wh, mrt_rt_make(options->threads).threads, &working,
                               err)) != MRT_OK)
        return st;
    st = encode(m, img, &working, options->threads, r, NULL, out, out_len, NULL, err);
    mrt_image_free(&working);
    return st;
}

/* --------------------------------------------------------------- decode */

typedef struct {
    int32_t *decoded;
    int channels;
    mrt_rc_decoder *dec;
    const mrt_gauss_tables *tables;
    mrt_trace *trace;
} decode_ctx;

static int decode_symbol(void *p, int token, int ch, int32_t mu_q4, int scale) {
    decode_ctx *d = p;
    int32_t residual = mrt_gauss_decode(d->dec, d->tables, scale);
    /* a damaged stream can decode anything; keep the value bounded so the
     * arithmetic below and the synthesis stay finite */
    if (residual > MRT_RESIDUAL_MAX) residual = MRT_RESIDUAL_MAX;
    if (residual < -MRT_RESIDUAL_MAX) residual = -MRT_RESIDUAL_MAX;
    d->decoded[(size_t)token * d->channels + ch] = residual * MRT_CTX_Q + mu_q4;
    if (d->trace) mrt_trace_add(d->trace, residual, mu_q4, scale);
    return mrt_rc_decoder_overrun(d->dec) ? 1 : 0;
}

/* The decoded latent of a bitstream made with m: *y_hat (malloc'd) of the
 * working size h->coded_width x h->coded_height; the header and every
 * symbol checked. */
static mrt_status decode_latent(const mrt_model *m, const uint8_t *data, size_t len,
                                mrt_bitstream_header *h, float **y_hat_out, mrt_trace *trace,
                                mrt_error *err) {
    *y_hat_out = NULL;
    if (!m || !data) return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_decode: NULL argument");
    const uint8_t *streams[4];
    mrt_status st = mrt_bitstream_parse(data, len, h, streams, err);
    if (st != MRT_OK) return st;
    if (memcmp(h->fingerprint, m->file.fingerprint, MRT_FINGERPRINT_BYTES) != 0) {
        char a[MRT_FINGERPRINT_HEX], b[MRT_FINGERPRINT_HEX];
        mrt_fingerprint_hex(h->fingerprint, a);
        mrt_fingerprint_hex(m->file.fingerprint, b);
        return mrt_fail(err, MRT_ERR_MODEL_MISMATCH, "bitstream was made with model %s, the "
                        "loaded model is %s (%s)", a, b, m->file.path ? m->file.path : "in memory");
    }
    const mrt_config *cfg = &m->file.cfg;
    /* the latent codes the working size (version 2), upscaled at the end */
    int width = (int)h->coded_width, height = (int)h->coded_height;
    mrt_latent_shape sh = mrt_latent_shape_of(cfg, width, height);
    size_t nsym = (size_t)sh.ntokens * cfg->channels;
    size_t nside = (size_t)sh.ngx * sh.ngy * cfg->side_bits;
    if (h->nstreams != 2 || h->stream_len[0] != (nside + 7) / 8)
        return mrt_fail(err, MRT_ERR_CORRUPT, "bitstream has %d streams, side stream %zu "
                        "bytes; a %dx%d image needs 2 streams and %zu bytes of side bits",
                        h->nstreams, h->stream_len[0], width, height, (nside + 7) / 8);
    int32_t *decoded = calloc(nsym, sizeof(int32_t));
    float *y_hat = malloc(sizeof(float) * nsym);
    uint8_t *side = calloc(nside + 1, 1);
    if (!decoded || !y_hat || !side) {
        st = mrt_fail(err, MRT_ERR_NOMEM, "out of memory decoding a %dx%d image", width, height);
        goto done;
    }
    for (size_t i = 0; i < nside; i++) side[i] = (streams[0][i / 8] >> (i % 8)) & 1;
    if (trace) mrt_trace_side(trace, side, nside);
    mrt_rc_decoder dec;
    mrt_rc_decoder_init(&dec, streams[1], h->stream_len[1]);
    decode_ctx dctx = {decoded, cfg->channels, &dec, &m->tables, trace};
    if (mrt_ctx_run(cfg, &m->file.w, &sh, side, decoded, decode_symbol, &dctx) != 0 ||
        mrt_rc_decoder_overrun(&dec)) {
        st = mrt_fail(err, MRT_ERR_CORRUPT, "bitstream damaged: the symbol stream ended early "
                      "(%zu bytes)", h->stream_len[1]);
        goto done;
    }
    /* every byte used, no impossible escape: anything else is damage that
     * happened to decode */
    if (!mrt_rc_decoder_consistent(&dec)) {
        st = mrt_fail(err, MRT_ERR_CORRUPT, "bitstream damaged: the symbol stream does not end "
                      "where its last symbol does");
        goto done;
    }
    for (size_t i = 0; i < nsym; i++) y_hat[i] = (float)decoded[i] / MRT_CTX_Q;
    *y_hat_out = y_hat;
    y_hat = NULL;
done:
    free(decoded);
    free(y_hat);
    free(side);
    return st;
}

/* Decodes to the working size (upscale false) or to the image's size; with
 * a thumbnail head, to 1/head->scale of the working size through it. */
static mrt_status decode(const mrt_model *m, const uint8_t *data, size_t len, int threads,
                         bool upscale, const mrt_thumb_head *head, mrt_image *out,
                         mrt_trace *trace, mrt_error *err) {
    if (!out) return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_decode: NULL argument");
    memset(out, 0, sizeof *out);
    mrt_bitstream_header h;
    float *y_hat = NULL;
    mrt_status st = decode_latent(m, data, len, &h, &y_hat, trace, err);
    if (st != MRT_OK) return st;
    const mrt_config *cfg = &m->file.cfg;
    int width = (int)h.coded_width, height = (int)h.coded_height;
    mrt_grid g = mrt_grid_of(cfg, width, height);
    /* the picture made here: the working size, or the head's 1/scale of it */
    if (head) {
        width = (width + head->scale - 1) / head->scale;
        height = (height + head->scale - 1) / head->scale;
    }
    mrt_rt rt = mrt_rt_make(threads);
    uint8_t *rgb = malloc((size_t)width * height * 3);
    if (!rgb) {
        st = mrt_fail(err, MRT_ERR_NOMEM, "out of memory decoding a %dx%d image", width, height);
        goto done;
    }
    if (head) {
        float *map = NULL;
        if ((st = mrt_synthesis_map(&rt, cfg, &m->file.w, y_hat, (int)h.coded_width,
                                    (int)h.coded_height, &map, err)))
            goto done;
        const float *features;
        float *owned;
        int channels;
        if (mrt_thumb_feature_map(&rt, &m->file.w.gen, cfg->dim, cfg->gen_width[0], map, g.hp,
                                  g.wp, m->thumbs.level, &features, &channels, &owned) != 0 ||
            mrt_thumb_head_apply(head, features, g.hp, g.wp, width, height, rt.threads, rgb) != 0)
            st = mrt_fail(err, MRT_ERR_NOMEM, "out of memory decoding a thumbnail");
        free(owned);
        free(map);
        if (st != MRT_OK) goto done;
        *out = (mrt_image){width, height, rgb};
        rgb = NULL;
        goto done;
    }
    if ((st = mrt_synthesis(&rt, cfg, &m->file.w, y_hat, width, height, rgb, err))) goto done;
    mrt_image coded = {width, height, rgb};
    if (upscale && (width != (int)h.width || height != (int)h.height)) {
        /* free what decoding needed before the full-size picture is made */
        free(y_hat);
        y_hat = NULL;
        st = mrt_image_upscale(&coded, (int)h.width, (int)h.height, rt.threads, out, err);
        goto done; /* frees rgb, the working-size picture */
    }
    *out = coded;
    rgb = NULL;
done:
    free(y_hat);
    free(rgb);
    return st == MRT_OK ? mrt_ok(err) : st;
}

mrt_status mrt_decode_map(const mrt_model *m, const uint8_t *data, size_t len, int threads,
                          float **map, int *hp, int *wp, mrt_error *err) {
    *map = NULL;
    mrt_bitstream_header h;
    float *y_hat = NULL;
    mrt_status st = decode_latent(m, data, len, &h, &y_hat, NULL, err);
    if (st != MRT_OK) return st;
    mrt_rt rt = mrt_rt_make(threads);
    int width = (int)h.coded_width, height = (int)h.coded_height;
    st = mrt_synthesis_map(&rt, &m->file.cfg, &m->file.w, y_hat, width, height, map, err);
    mrt_grid g = mrt_grid_of(&m->file.cfg, width, height);
    *hp = g.hp, *wp = g.wp;
    free(y_hat);
    return st;
}

mrt_status mrt_decode_traced(const mrt_model *m, const uint8_t *data, size_t len, int threads,
                             mrt_image *out, mrt_trace *trace, mrt_error *err) {
    return decode(m, data, len, threads, true, NULL, out, trace, err);
}

mrt_status mrt_decode_working(const mrt_model *m, const uint8_t *data, size_t len, int threads,
                              mrt_image *out, mrt_error *err) {
    return decode(m, data, len, threads, false, NULL, out, NULL, err);
}

mrt_status mrt_decode(const mrt_model *m, const uint8_t *data, size_t len, int threads,
                      mrt_image *out, mrt_error *err) {
    return decode(m, data, len, threads, true, NULL, out, NULL, err);
}

mrt_status mrt_decode_scaled(const mrt_model *m, const uint8_t *data, size_t len, int scale,
                             int threads, mrt_image *out, mrt_error *err) {
    if (out) *out = (mrt_image){0};
    if (scale != 1 && scale != 2 && scale != 4 && scale != 8)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_decode_scaled: scale %d is not 1, 2, 4 or 8",
                        scale);
    if (scale == 1) return mrt_decode(m, data, len, threads, out, err);
    mrt_info info;
    mrt_status st = mrt_info_read(data, len, &info, err);
    if (st != MRT_OK) return st;
    /* The model's thumbnail head (thumbnail.h), when the stream codes the
     * full size: a fraction of the decode, no upsampling stages. 1/8 is the
     * 1/4 picture shrunk: 0.6 dB closer on the validation photos than a 1/8
     * head of its own, for a few percent more time. */
    const mrt_thumb_head *head = mrt_thumb_head_for(&m->thumbs, scale == 8 ? 4 : scale);
    if (head && info.working_width == info.width && info.working_height == info.height) {
        if (scale != 8) return decode(m, data, len, threads, false, head, out, NULL, err);
        mrt_image quarter = {0};
        if ((st = decode(m, data, len, threads, false, head, &quarter, NULL, err)) != MRT_OK)
            return st;
        st = mrt_image_resize(&quarter, (info.width + 7) / 8, (info.height + 7) / 8, threads, out,
                              err);
        mrt_image_free(&quarter);
        return st;
    }
    mrt_image working = {0};
    if ((st = decode(m, data, len, threads, false, NULL, &working, NULL, err)) != MRT_OK) return st;
    int w = (info.width + scale - 1) / scale, h = (info.height + scale - 1) / scale;
    if (working.width == w && working.height == h) {
        *out = working;
        return mrt_ok(err);
    }
    /* The decoder's own upscale when a small working size must grow to the
     * scaled size; else Lanczos (down, the usual case, or mixed: never made
     * by the encoder's search). */
    if (working.width <= w && working.height <= h)
        st = mrt_image_upscale(&working, w, h, threads, out, err);
    else
        st = mrt_image_resize(&working, w, h, threads, out, err);
    mrt_image_free(&working);
    return st;
}

mrt_status mrt_info_read(const uint8_t *data, size_t len, mrt_info *info, mrt_error *err) {
    if (!data || !info) return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_info_read: NULL argument");
    mrt_bitstream_header h;
    const uint8_t *streams[4];
    mrt_status st = mrt_bitstream_parse(data, len, &h, streams, err);
    if (st != MRT_OK) return st;
    memset(info, 0, sizeof *info);
    info->version = h.version;
    info->width = (int)h.width;
    info->height = (int)h.height;
    info->working_width = (int)h.coded_width;
    info->working_height = (int)h.coded_height;
    info->rate_id = h.rate_id;
    memcpy(info->fingerprint, h.fingerprint, MRT_FINGERPRINT_BYTES);
    info->bytes = len;
    info->bpp = (double)len * 8.0 / ((double)h.width * h.height);
    info->nstreams = h.nstreams;
    for (int i = 0; i < h.nstreams && i < 4; i++) info->stream_bytes[i] = h.stream_len[i];
    return mrt_ok(err);
}

size_t mrt_info_json(const mrt_info *info, char *buf, size_t size) {
    char fp[MRT_FINGERPRINT_HEX];
    mrt_fingerprint_hex(info->fingerprint, fp);
    mrt_json w;
    mrt_json_to_text(&w);
    mrt_json_object(&w, NULL, MRT_JSON_INLINE);
    mrt_json_int(&w, "version", info->version);
    mrt_json_int(&w, "width", info->width);
    mrt_json_int(&w, "height", info->height);
    /* version 2's working size; version 1's lines stay as they were */
    if (info->version >= 2) {
        mrt_json_int(&w, "working_width", info->working_width);
        mrt_json_int(&w, "working_height", info->working_height);
    }
    mrt_json_int(&w, "bytes", (long long)info->bytes);
    mrt_json_real(&w, "bpp", "%.6f", info->bpp);
    mrt_json_int(&w, "rate_id", info->rate_id);
    mrt_json_string(&w, "model", fp);
    mrt_json_array(&w, "streams", MRT_JSON_INLINE);
    for (int i = 0; i < info->nstreams && i < 4; i++)
        mrt_json_int(&w, NULL, (long long)info->stream_bytes[i]);
    mrt_json_end(&w);
    mrt_json_end(&w);
    char *text = mrt_json_text(&w);
    /* Out of memory for a text under MRT_INFO_JSON_MAX bytes: an empty
     * object, still JSON. */
    const char *out = text ? text : "{}";
    size_t need = strlen(out);
    if (buf && size) {
        size_t n = need < size - 1 ? need : size - 1;
        memcpy(buf, out, n);
        buf[n] = '\0';
    }
    mrt_free(text);
    return need;
}
