/*
 * test_codec.c -- the codec end to end with seeded random weights:
 *   - encode -> decode returns exactly the encoded symbols (residuals,
 *     means, scale indices, side bits), for odd, tiny, portrait and
 *     panorama sizes, with 1 and 2 threads;
 *   - the decoded image has the right size, and 1 vs 2 threads agree;
 *   - every truncation and every single-bit flip of a small stream is
 *     rejected or decodes without a crash (run this under ASan);
 *   - a stream from another model is refused, naming both fingerprints;
 *   - broken model files are refused with the tensor named.
 */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <unistd.h>

#include "codec_internal.h"
#include "pixel_generator.h"
#include "gguf.h"
#include "testutil.h"
#include "bitstream.h"
#include "transform_grad.h"
#include "transform.h"

static char dir[] = "/tmp/mrt-test-codec-XXXXXX";
static char model_path[256], other_path[256];



static void test_round_trip(const mrt_model *m, int w, int h) {
    mrt_image img = tu_make_photo(w, h, (uint64_t)w * 1000 + h);
    mrt_trace enc = {0}, dec1 = {0}, dec2 = {0};
    mrt_error err = {0};
    uint8_t *bits = NULL;
    size_t len = 0;
    mrt_status st = mrt_encode_traced(m, &img, 2, &bits, &len, &enc, &err);
    CHECK(st == MRT_OK, "encode %dx%d: %s", w, h, err.message);
    if (st != MRT_OK) goto done;
    mrt_image out1 = {0}, out2 = {0};
    st = mrt_decode_traced(m, bits, len, 1, &out1, &dec1, &err);
    CHECK(st == MRT_OK, "decode %dx%d (1 thread): %s", w, h, err.message);
    st = mrt_decode_traced(m, bits, len, 2, &out2, &dec2, &err);
    CHECK(st == MRT_OK, "decode %dx%d (2 threads): %s", w, h, err.message);
    CHECK(mrt_trace_equal(&enc, &dec1) && mrt_trace_equal(&enc, &dec2),
          "%dx%d: decoded symbols differ from the encoded ones", w, h);
    CHECK(out1.width == w && out1.height == h && out2.width == w && out2.height == h,
          "decoded size %dx%d, want %dx%d", out1.width, out1.height, w, h);
    if (out1.rgb && out2.rgb) {
        int maxdiff = 0;
        for (size_t i = 0; i < (size_t)w * h * 3; i++) {
            int d = abs((int)out1.rgb[i] - (int)out2.rgb[i]);
            maxdiff = d > maxdiff ? d : maxdiff;
        }
        /* synthesis may round differently per thread count only in BLIS's
         * last bits; allow one level */
        CHECK(maxdiff <= 1, "%dx%d: 1 vs 2 threads differ by %d levels", w, h, maxdiff);
    }
    mrt_info info;
    CHECK(mrt_info_read(bits, len, &info, &err) == MRT_OK && info.width == w &&
              info.height == h && info.bytes == len,
          "info %dx%d: %s", w, h, err.message);
    mrt_image_free(&out1);
    mrt_image_free(&out2);
done:
    mrt_free(bits);
    mrt_image_free(&img);
    mrt_trace_free(&enc), mrt_trace_free(&dec1), mrt_trace_free(&dec2);
}

/* A working size (bitstream version 2): the encoder codes a downscale, the
 * decoder returns the full size, equal to the normative upscale of what
 * the same latent decodes to at the working size; fewer bytes than at the
 * full size; 1 and 2 threads give the same picture. */
static void test_working_size(const mrt_model *m) {
    int w = 200, h = 130, ww = 100, wh = 65;
    mrt_image img = tu_make_photo(w, h, 5);
    mrt_error err = {0};
    uint8_t *full_bits = NULL, *bits = NULL;
    size_t full_len = 0, len = 0;
    mrt_encode_options full = {.threads = 2}, half = {.threads = 2, .working_width = ww,
                                                      .working_height = wh};
    CHECK(mrt_encode_with(m, &img, &full, &full_bits, &full_len, &err) == MRT_OK, "%s",
          err.message);
    CHECK(mrt_encode_with(m, &img, &half, &bits, &len, &err) == MRT_OK, "%s", err.message);
    if (!bits || !full_bits) goto done;
    mrt_info info;
    CHECK(mrt_info_read(bits, len, &info, &err) == MRT_OK && info.version == 2 &&
              info.width == w && info.height == h && info.working_width == ww &&
              info.working_height == wh,
          "working-size info: version %d, %dx%d at %dx%d", info.version, info.width,
          info.height, info.working_width, info.working_height);
    CHECK(mrt_info_read(full_bits, full_len, &info, &err) == MRT_OK && info.version == 1,
          "a full-size stream is version 1");
    CHECK(len < full_len, "working size %zu bytes, full size %zu", len, full_len);
    char json[MRT_INFO_JSON_MAX];
    mrt_info_read(bits, len, &info, &err);
    mrt_info_json(&info, json, sizeof json);
    CHECK(strstr(json, "\"working_width\": 100, \"working_height\": 65"), "json: %s", json);
    mrt_image out1 = {0}, out2 = {0}, small = {0}, up = {0};
    CHECK(mrt_decode(m, bits, len, 1, &out1, &err) == MRT_OK, "%s", err.message);
    CHECK(mrt_decode(m, bits, len, 2, &out2, &err) == MRT_OK, "%s", err.message);
    CHECK(out1.width == w && out1.height == h && out2.width == w && out2.height == h,
          "decoded %dx%d, want %dx%d", out1.width, out1.height, w, h);
    /* the same stream as version 1 at the working size decodes to the
     * small picture; its normative upscale must be what decode returned */
    mrt_bitstream_header hd;
    const uint8_t *streams[4];
    if (mrt_bitstream_parse(bits, len, &hd, streams, &err) == MRT_OK) {
        hd.version = 0, hd.width = hd.coded_width, hd.height = hd.coded_height;
        uint8_t *v1 = NULL;
        size_t v1_len = 0;
        CHECK(mrt_bitstream_write(&hd, streams, hd.stream_len, &v1, &v1_len, &err) == MRT_OK,
              "%s", err.message);
        CHECK(mrt_decode(m, v1, v1_len, 1, &small, &err) == MRT_OK, "%s", err.message);
        CHECK(mrt_image_upscale(&small, w, h, 1, &up, &err) == MRT_OK, "%s", err.message);
        CHECK(out1.rgb && up.rgb && memcmp(out1.rgb, up.rgb, (size_t)w * h * 3) == 0,
              "decode of a working-size stream is not the upscale of its working-size picture");
        free(v1);
    }
    mrt_image_free(&out1), mrt_image_free(&out2), mrt_image_free(&small), mrt_image_free(&up);
done:
    mrt_free(bits);
    mrt_free(full_bits);
    mrt_image_free(&img);
}

/* A byte budget: never exceeded; the choice is one of the models at a
 * working size within the image; a generous budget codes the full size
 * (version 1); one below every model's smallest stream is a clear error. */
static void test_budget(const mrt_model *m, const mrt_model *other) {
    mrt_image img = tu_make_photo(160, 120, 9);
    const mrt_model *models[2] = {m, other};
    mrt_error err = {0};
    uint8_t *bits = NULL;
    size_t len = 0, full_len = 0;
    mrt_budget_choice ch;
    CHECK(mrt_encode_budget(models, 2, &img, 1000000, NULL, &bits, &full_len, &ch, &err) ==
              MRT_OK && ch.working_width == 160 && ch.working_height == 120 && full_len == ch.bytes,
          "a generous budget: %s, %dx%d", err.message, ch.working_width, ch.working_height);
    CHECK(ch.compared_width == 160 && ch.compared_height == 120,
          "a small image is compared at its own size, not %dx%d", ch.compared_width,
          ch.compared_height);
    mrt_info info;
    CHECK(bits && mrt_info_read(bits, full_len, &info, &err) == MRT_OK && info.version == 1,
          "a generous budget gives a version-1 stream");
    mrt_free(bits), bits = NULL;
    size_t budgets[] = {full_len - 1, full_len * 2 / 3, full_len / 3};
    int scaled_down = 0;
    for (size_t i = 0; i < sizeof budgets / sizeof budgets[0]; i++) {
        mrt_status st = mrt_encode_budget(models, 2, &img, budgets[i], NULL, &bits, &len, &ch, &err);
        if (st == MRT_ERR_ARGUMENT && strstr(err.message, "too small")) continue; /* tiny model */
        CHECK(st == MRT_OK, "budget %zu: %s", budgets[i], err.message);
        if (st != MRT_OK) continue;
        CHECK(len <= budgets[i] && len == ch.bytes, "budget %zu: %zu bytes", budgets[i], len);
        CHECK(ch.model >= 0 && ch.model < 2 && ch.working_width >= 1 && ch.working_width <= 160 &&
                  ch.working_height >= 1 && ch.working_height <= 120 && ch.msssim > 0 &&
                  ch.msssim <= 1,
              "budget %zu: choice model %d at %dx%d, MS-SSIM %f", budgets[i], ch.model,
              ch.working_width, ch.working_height, ch.msssim);
        mrt_image dec;
        CHECK(mrt_decode(models[ch.model], bits, len, 1, &dec, &err) == MRT_OK &&
                  dec.width == 160 && dec.height == 120,
              "budget %zu: the chosen stream decodes to the image size", budgets[i]);
        mrt_image_free(&dec);
        mrt_free(bits), bits = NULL;
        scaled_down += ch.working_width < 160;
    }
    CHECK(scaled_down >= 1, "no budget below the full size's bytes chose a smaller working size");
    mrt_status st = mrt_encode_budget(models, 2, &img, 10, NULL, &bits, &len, &ch, &err);
    CHECK(st == MRT_ERR_ARGUMENT && strstr(err.message, "budget of 10 bytes is too small") &&
              bits == NULL && len == 0,
          "a 10-byte budget: %s %s", mrt_status_name(st), err.message);
    mrt_encode_options scaled = {.working_width = 80, .working_height = 60};
    CHECK(mrt_encode_budget(models, 2, &img, 500, &scaled, &bits, &len, &ch, &err) ==
              MRT_ERR_ARGUMENT, "a budget with a working size given");
    CHECK(mrt_encode_budget(models, 0, &img, 500, NULL, &bits, &len, &ch, &err) ==
              MRT_ERR_ARGUMENT, "no models");
    mrt_image_free(&img);
}

/* A rate point made of other weights (mrt_rate_point_write): its own file,
 * fingerprint and rate id over the same weights; it codes at its working
 * scale with no options, to the same picture as those weights given that
 * working size; mrt_encode and mrt_encode_with agree; the budget search
 * tries the weights once, through the model of working scale 1. */
static void test_derived_rate_point(const mrt_model *m) {
    char path[300];
    snprintf(path, sizeof path, "%s/derived.gguf", dir);
    mrt_error err = {0};
    CHECK(mrt_rate_point_write(model_path, 3, 0.5, path, &err) == MRT_OK, "write: %s",
          err.message);
    mrt_model *d = NULL;
    CHECK(mrt_model_load(path, &d, &err) == MRT_OK, "load: %s", err.message);
    if (!d) return;
    CHECK(mrt_model_rate_id(d) == 3 && mrt_model_working_scale(d) == 0.5 &&
              mrt_model_working_scale(m) == 1.0 &&
              memcmp(mrt_model_fingerprint(d), mrt_model_fingerprint(m), 32) != 0 &&
              mrt_model_same_weights(d, m),
          "derived: rate id %d, scale %g", mrt_model_rate_id(d), mrt_model_working_scale(d));
    int w = 201, h = 130, ww = 0, wh = 0;
    mrt_working_size(d, w, h, &ww, &wh);
    CHECK(ww == 101 && wh == 65, "working size %dx%d, want 101x65", ww, wh);
    mrt_working_size(m, w, h, &ww, &wh);
    CHECK(ww == w && wh == h, "a trained model's working size %dx%d", ww, wh);
    mrt_working_size(d, 1, 1, &ww, &wh);
    CHECK(ww == 1 && wh == 1, "a 1x1 image at scale 1/2: %dx%d", ww, wh);
    mrt_image img = tu_make_photo(w, h, 21);
    uint8_t *bits = NULL, *bits2 = NULL, *ref = NULL;
    size_t len = 0, len2 = 0, ref_len = 0;
    mrt_encode_options given = {.threads = 1, .working_width = 101, .working_height = 65};
    CHECK(mrt_encode(d, &img, 1, &bits, &len, &err) == MRT_OK, "%s", err.message);
    CHECK(mrt_encode_with(d, &img, NULL, &bits2, &len2, &err) == MRT_OK, "%s", err.message);
    CHECK(mrt_encode_with(m, &img, &given, &ref, &ref_len, &err) == MRT_OK, "%s", err.message);
    mrt_info info = {0};
    CHECK(bits && mrt_info_read(bits, len, &info, &err) == MRT_OK && info.version == 2 &&
              info.working_width == 101 && info.working_height == 65 && info.rate_id == 3 &&
              memcmp(info.fingerprint, mrt_model_fingerprint(d), MRT_FINGERPRINT_BYTES) == 0,
          "derived stream: version %d at %dx%d, rate id %d", info.version, info.working_width,
          info.working_height, info.rate_id);
    CHECK(bits && bits2 && len == len2 && !memcmp(bits, bits2, len),
          "mrt_encode and mrt_encode_with differ for a derived rate point");
    mrt_image a = {0}, b = {0};
    CHECK(bits && mrt_decode(d, bits, len, 1, &a, &err) == MRT_OK, "%s", err.message);
    CHECK(ref && mrt_decode(m, ref, ref_len, 1, &b, &err) == MRT_OK, "%s", err.message);
    CHECK(a.rgb && b.rgb && a.width == w && a.height == h && len == ref_len &&
              !memcmp(a.rgb, b.rgb, (size_t)w * h * 3),
          "a derived rate point does not code what its weights code at its working size");
    mrt_image_free(&a), mrt_image_free(&b);
    CHECK(mrt_decode(m, bits, len, 1, &b, &err) == MRT_ERR_MODEL_MISMATCH,
          "the weights' own model decoded the derived rate point's stream");
    mrt_image_free(&b);
    /* the budget search: the same weights once, through m wherever it is */
    const mrt_model *both[2] = {d, m}, *alone[1] = {d};
    mrt_budget_choice ch;
    uint8_t *bb = NULL;
    size_t blen = 0;
    CHECK(mrt_encode_budget(both, 2, &img, len, NULL, &bb, &blen, &ch, &err) == MRT_OK &&
              ch.model == 1,
          "budget over a derived rate point and its weights chose %d: %s", ch.model, err.message);
    mrt_free(bb), bb = NULL;
    /* alone, at a budget its working scale fits with room to spare and at
     * one the full size fits: the search chooses the working size itself,
     * and what the stream codes is what the choice says */
    size_t budgets[2] = {len + len / 4, 1000000};
    for (int i = 0; i < 2; i++) {
        CHECK(mrt_encode_budget(alone, 1, &img, budgets[i], NULL, &bb, &blen, &ch, &err) ==
                  MRT_OK, "budget %zu over a derived rate point alone: %s", budgets[i], err.message);
        CHECK(bb && mrt_info_read(bb, blen, &info, &err) == MRT_OK &&
                  info.working_width == ch.working_width &&
                  info.working_height == ch.working_height && ch.working_width > 101,
              "budget %zu alone: chose %dx%d, the stream codes %dx%d", budgets[i],
              ch.working_width, ch.working_height, info.working_width, info.working_height);
        CHECK(i == 0 || (info.version == 1 && ch.working_width == w && ch.working_height == h),
              "a generous budget alone: %dx%d, version %d", ch.working_width, ch.working_height,
              info.version);
        mrt_free(bb), bb = NULL;
    }
    /* refused: a scale outside [1/16, 1], a rate id outside 0..255, no weights */
    CHECK(mrt_rate_point_write(model_path, 3, 0.06, path, &err) == MRT_ERR_ARGUMENT &&
              mrt_rate_point_write(model_path, 3, 1.01, path, &err) == MRT_ERR_ARGUMENT &&
              mrt_rate_point_write(model_path, 3, NAN, path, &err) == MRT_ERR_ARGUMENT &&
              mrt_rate_point_write(model_path, 256, 0.5, path, &err) == MRT_ERR_ARGUMENT,
          "a bad scale or rate id was not refused");
    /* a scale below 1 that a float would store as 1 */
    CHECK(mrt_rate_point_write(model_path, 3, 1.0 - 1e-9, path, &err) == MRT_ERR_ARGUMENT &&
              strstr(err.message, "too close to 1"),
          "1 - 1e-9: %s", err.message);
    CHECK(mrt_rate_point_write("/nonexistent/w.gguf", 3, 0.5, path, &err) == MRT_ERR_MODEL &&
              strstr(err.message, "/nonexistent/w.gguf"),
          "missing weights: %s", err.message);
    mrt_free(bits), mrt_free(bits2), mrt_free(ref);
    mrt_image_free(&img);
    mrt_model_free(d);
}

/* Above a megapixel the candidates are ranked at about a megapixel: the
 * choice says at what size, and its scores are those of the decoded
 * working picture upscaled to that size against the original resized to
 * it. */
static void test_budget_compared_size(const mrt_model *m) {
    mrt_image img = tu_make_photo(1160, 870, 4);
    const mrt_model *models[1] = {m};
    mrt_error err = {0};
    uint8_t *bits = NULL;
    size_t len = 0;
    mrt_budget_choice ch;
    mrt_image half = {0}, dec = {0}, up = {0}, ref = {0};
    CHECK(mrt_image_resize(&img, 580, 435, 0, &half, &err) == MRT_OK, "%s", err.message);
    CHECK(mrt_encode(m, &half, 0, &bits, &len, &err) == MRT_OK, "%s", err.message);
    size_t budget = len + len / 4; /* room for about half the size */
    mrt_free(bits), bits = NULL;
    mrt_status st = mrt_encode_budget(models, 1, &img, budget, NULL, &bits, &len, &ch, &err);
    CHECK(st == MRT_OK && len <= budget, "budget %zu: %s, %zu bytes", budget, err.message, len);
    if (st != MRT_OK) goto done;
    CHECK(ch.compared_width == 1155 && ch.compared_height == 866,
          "compared at %dx%d, not 1155x866", ch.compared_width, ch.compared_height);
    CHECK(ch.working_width >= 580 && ch.working_width < 1160 && ch.working_height < 870,
          "a budget for about half the size coded %dx%d", ch.working_width, ch.working_height);
    double psnr = 0, msssim = 0;
    CHECK(mrt_decode_working(m, bits, len, 0, &dec, &err) == MRT_OK &&
              dec.width == ch.working_width && dec.height == ch.working_height &&
              mrt_image_upscale(&dec, 1155, 866, 0, &up, &err) == MRT_OK &&
              mrt_image_resize(&img, 1155, 866, 0, &ref, &err) == MRT_OK &&
              mrt_image_compare(&ref, &up, 0, &psnr, &msssim, &err) == MRT_OK,
          "%s", err.message);
    CHECK(psnr == ch.psnr && msssim == ch.msssim, "the choice's scores %f %f, recomputed %f %f",
          ch.psnr, ch.msssim, psnr, msssim);
done:
    mrt_free(bits);
    mrt_image_free(&img), mrt_image_free(&half), mrt_image_free(&dec);
    mrt_image_free(&up), mrt_image_free(&ref);
}

/* A picture whose window columns are odd in number ends in side-bit
 * groups cut in half; their side bits must not cost the rest of the
 * column its predictions. With the shipped 0.02 model, camera.png coded
 * 7 windows wide took 801 bytes, more than 657 for 8 windows. */
static void test_cut_groups(void) {
    mrt_model *m = NULL;
    mrt_error err = {0};
    mrt_image img = {0};
    if (mrt_model_load("../models/mrt-0.02.gguf", &m, &err) != MRT_OK ||
        mrt_image_read_file("../samples/camera.png", &img, &err) != MRT_OK) {
        CHECK(0, "the shipped model or sample: %s", err.message);
        mrt_model_free(m);
        return;
    }
    size_t len[2] = {0, 0};
    static const int widths[2] = {448, 512};
    for (int i = 0; i < 2; i++) {
        mrt_encode_options o = {.working_width = widths[i], .working_height = 512};
        uint8_t *bits = NULL;
        CHECK(mrt_encode_with(m, &img, &o, &bits, &len[i], &err) == MRT_OK, "%s", err.message);
        mrt_free(bits);
    }
    CHECK(len[0] < len[1] * 7 / 8 + 40,
          "7 windows wide: %zu bytes, 8 wide: %zu (7/8 of that, give or take 40 bytes, expected)",
          len[0], len[1]);
    mrt_image_free(&img);
    mrt_model_free(m);
}

/* A model set (mrt.h, "model sets"): the default model, the rate points
 * beside a model by id, name and 'low'/'medium'/'high', the one of a
 * stream's fingerprint, the shared cache, and a broken file beside. */
static int same_model(const mrt_model *a, const mrt_model *b) {
    return a && b && !memcmp(mrt_model_fingerprint(a), mrt_model_fingerprint(b), 32);
}

static void test_model_set(const mrt_model *other) {
    char sub[600], path[4][700], def[700];
    snprintf(sub, sizeof sub, "%s/rates", dir);
    mkdir(sub, 0700);
    mrt_error err = {0};
    mrt_model *want[3] = {0};
    for (int i = 0; i < 3; i++) {
        snprintf(path[i], sizeof path[i], "%s/mrt-%c.gguf", sub, 'a' + i);
        CHECK(mrt_model_write_random(path[i], 5 + (uint64_t)i, 1 + i, &err) == MRT_OK &&
                  mrt_model_load(path[i], &want[i], &err) == MRT_OK,
              "%s", err.message);
    }
    snprintf(def, sizeof def, "%s/default.gguf", sub);
    CHECK(symlink("mrt-b.gguf", def) == 0, "symlink: %s", strerror(errno));

    /* the default model: $MRT_MODEL as given, else default.gguf in the folder asked first */
    const char *source = NULL;
    setenv("MRT_MODEL", "/nonexistent/m.gguf", 1);
    char *found = mrt_default_model_path(sub, "here", &source);
    CHECK(found && !strcmp(found, "/nonexistent/m.gguf") && !strcmp(source, "MRT_MODEL"),
          "MRT_MODEL first: %s (%s)", found ? found : "none", source ? source : "");
    mrt_free(found);
    unsetenv("MRT_MODEL");
    found = mrt_default_model_path(sub, "here", &source);
    CHECK(found && !strcmp(found, def) && !strcmp(source, "here"), "the folder asked: %s (%s)",
          found ? found : "none", source ? source : "");
    mrt_free(found);

    int before = mrt_models_loaded();
    mrt_model_set *set = NULL;
    CHECK(mrt_model_set_open(def, &set, &err) == MRT_OK, "open: %s", err.message);
    if (!set) return;
    CHECK(same_model(mrt_model_set_model(set), want[1]), "the set's model is default.gguf's");
    CHECK(!strcmp(mrt_model_set_rate_name(set, mrt_model_set_model(set)), "default"),
          "its name: %s", mrt_model_set_rate_name(set, mrt_model_set_model(set)));
    const mrt_model *const *points = NULL;
    int n = 0;
    CHECK(mrt_model_set_rate_points(set, &points, &n, &err) == MRT_OK && n == 3,
          "rate points: %d (%s), want 3 (default.gguf and mrt-b.gguf are one)", n, err.message);
    CHECK(mrt_models_loaded() == before + 3, "%d models loaded, want %d (each file once)",
          mrt_models_loaded(), before + 3);
    const mrt_model *got = NULL;
    CHECK(mrt_model_set_by_id(set, 3, &got, &err) == MRT_OK && same_model(got, want[2]),
          "rate id 3: %s", err.message);
    CHECK(!strcmp(mrt_model_set_rate_name(set, got), "c"), "its name");
    static const struct {
        const char *rate;
        int want;
    } names[] = {{"a", 0}, {"low", 0}, {"medium", 1}, {"high", 2}, {"2", 1}, {"c", 2}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        CHECK(mrt_model_set_rate(set, names[i].rate, &got, &err) == MRT_OK &&
                  same_model(got, want[names[i].want]),
              "rate '%s': %s", names[i].rate, err.message);
    CHECK(mrt_model_set_by_id(set, 7, &got, &err) != MRT_OK && !got &&
              strstr(err.message, "no model for rate 7; rate points beside ") &&
              strstr(err.message, "'c' (rate id 3)"),
          "rate id 7: %s", err.message);
    CHECK(mrt_model_set_by_name(set, "zzz", &got, &err) != MRT_OK &&
              strstr(err.message, "no rate point named 'zzz'"),
          "no such name: %s", err.message);
    CHECK(mrt_model_set_for_stream(set, mrt_model_fingerprint(want[0]), &got, &err) == MRT_OK &&
              same_model(got, want[0]),
          "the rate point of a stream's fingerprint: %s", err.message);
    CHECK(mrt_model_set_for_stream(set, mrt_model_fingerprint(other), &got, &err) == MRT_OK &&
              same_model(got, want[1]),
          "no rate point has it: the set's own model (decode then names both): %s", err.message);
    mrt_model_set_free(set);
    CHECK(mrt_models_loaded() == before, "the cache keeps %d models after the last set",
          mrt_models_loaded() - before);

    /* retired weights (retired/mrt-*.gguf): found for their streams, never
     * a rate point */
    char retired[650], retired_model[700];
    snprintf(retired, sizeof retired, "%s/retired", sub);
    snprintf(retired_model, sizeof retired_model, "%s/mrt-a-old.gguf", retired);
    mkdir(retired, 0700);
    mrt_model *old = NULL;
    CHECK(mrt_model_write_random(retired_model, 99, 0, &err) == MRT_OK &&
              mrt_model_load(retired_model, &old, &err) == MRT_OK,
          "%s", err.message);
    if (!old) return;
    CHECK(mrt_model_set_open(def, &set, &err) == MRT_OK, "open: %s", err.message);
    if (!set) return;
    CHECK(mrt_model_set_rate_points(set, &points, &n, &err) == MRT_OK && n == 3,
          "rate points with a retired model kept: %d, want 3", n);
    CHECK(mrt_model_set_for_stream(set, mrt_model_fingerprint(old), &got, &err) == MRT_OK &&
              same_model(got, old),
          "a retired model's stream finds it: %s", err.message);
    CHECK(mrt_model_set_for_stream(set, mrt_model_fingerprint(want[2]), &got, &err) == MRT_OK &&
              same_model(got, want[2]),
          "rate points still first: %s", err.message);
    CHECK(mrt_model_set_by_name(set, "a-old", &got, &err) != MRT_OK, "a retired model has no rate name");
    mrt_model_set_free(set);
    /* a broken file there fails only a stream no rate point has made */
    snprintf(path[3], sizeof path[3], "%s/mrt-z.gguf", retired);
    FILE *rf = fopen(path[3], "wb");
    if (rf) fputs("not a model", rf), fclose(rf);
    CHECK(mrt_model_set_open(def, &set, &err) == MRT_OK, "open: %s", err.message);
    CHECK(mrt_model_set_for_stream(set, mrt_model_fingerprint(want[0]), &got, &err) == MRT_OK,
          "a rate point's stream with a broken retired file: %s", err.message);
    CHECK(mrt_model_set_for_stream(set, mrt_model_fingerprint(old), &got, &err) != MRT_OK &&
              strstr(err.message, "retired weights: "),
          "a broken retired file is named: %s", err.message);
    mrt_model_set_free(set);
    mrt_model_free(old);
    unlink(path[3]), unlink(retired_model), rmdir(retired);

    /* a file beside that is not a model: an error naming it, never skipped */
    snprintf(path[3], sizeof path[3], "%s/mrt-d.gguf", sub);
    FILE *f = fopen(path[3], "wb");
    if (f) fputs("not a model", f), fclose(f);
    CHECK(mrt_model_set_open(def, &set, &err) == MRT_OK, "open: %s", err.message);
    CHECK(mrt_model_set_rate_points(set, &points, &n, &err) != MRT_OK &&
              strstr(err.message, "rate point 'd': "),
          "a broken rate point: %s", err.message);
    mrt_model_set_free(set);
    for (int i = 0; i < 3; i++) mrt_model_free(want[i]);
    for (int i = 0; i < 4; i++) unlink(path[i]);
    unlink(def), rmdir(sub);
}

/* Every truncation and every single-bit flip of a small stream: an error
 * or a decoded image of the stream's size, never a crash or a hang. */
static void test_damage(const mrt_model *m) {
    mrt_image img = tu_make_photo(70, 40, 3);
    uint8_t *bits = NULL;
    size_t len = 0;
    mrt_error err = {0};
    CHECK(mrt_encode(m, &img, 1, &bits, &len, &err) == MRT_OK, "encode: %s", err.message);
    uint8_t *copy = malloc(len);
    int rejected = 0, decoded = 0;
    for (size_t cut = 0; cut < len; cut++) {
        mrt_image out = {0};
        mrt_status st = mrt_decode(m, bits, cut, 1, &out, &err);
        CHECK(st != MRT_OK, "truncation to %zu of %zu bytes was accepted", cut, len);
        CHECK(st == MRT_OK || err.message[0], "truncation %zu: error without a message", cut);
        mrt_image_free(&out);
    }
    for (size_t bit = 0; bit < len * 8; bit++) {
        memcpy(copy, bits, len);
        copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        mrt_image out = {0};
        mrt_status st = mrt_decode(m, copy, len, 1, &out, &err);
        if (st == MRT_OK) {
            decoded++;
            CHECK(out.width > 0 && out.height > 0 && out.rgb, "flip %zu: empty image", bit);
        } else {
            rejected++;
            CHECK(err.message[0], "flip %zu: error without a message", bit);
        }
        mrt_image_free(&out);
    }
    printf("bit flips of a %zu-byte stream: %d rejected, %d decoded\n", len, rejected, decoded);
    free(copy);
    mrt_free(bits);
    mrt_image_free(&img);
}

static void test_mismatch(const mrt_model *m, const mrt_model *other) {
    mrt_image img = tu_make_photo(33, 21, 9);
    uint8_t *bits = NULL;
    size_t len = 0;
    mrt_error err = {0};
    CHECK(mrt_encode(m, &img, 1, &bits, &len, &err) == MRT_OK, "encode: %s", err.message);
    mrt_image out = {0};
    mrt_status st = mrt_decode(other, bits, len, 1, &out, &err);
    char a[17], b[17];
    for (int i = 0; i < 8; i++) {
        snprintf(a + 2 * i, 3, "%02x", mrt_model_fingerprint(m)[i]);
        snprintf(b + 2 * i, 3, "%02x", mrt_model_fingerprint(other)[i]);
    }
    CHECK(st == MRT_ERR_MODEL_MISMATCH && strstr(err.message, a) && strstr(err.message, b),
          "model mismatch: status %s, message '%s'", mrt_status_name(st), err.message);
    mrt_image_free(&out);
    mrt_free(bits);
    mrt_image_free(&img);
}

/* Writes each of `bad` into the float metadata `key` of the model file at
 * `path` in turn: every one must be refused on load, naming the key. */
static void check_bad_float_key(const char *path, const char *key, const float *bad, int nbad) {
    mrt_error err = {0};
    size_t len = 0, klen = strlen(key);
    uint8_t *file = NULL;
    CHECK(mrt_read_file(path, 1u << 30, &file, &len, &err) == MRT_OK, "read: %s", err.message);
    size_t at = 0;
    while (file && at + klen + 8 < len && memcmp(file + at, key, klen)) at++;
    CHECK(file && at + klen + 8 < len, "%s not in the saved file", key);
    for (int i = 0; file && at + klen + 8 < len && i < nbad; i++) {
        /* the key, then its type (uint32), then the float */
        memcpy(file + at + klen + 4, &bad[i], 4);
        CHECK(mrt_write_file_atomic(path, file, len, &err) == MRT_OK, "write: %s", err.message);
        mrt_model *m = NULL;
        mrt_status st = mrt_model_load(path, &m, &err);
        CHECK(st == MRT_ERR_MODEL && strstr(err.message, key) && strstr(err.message, "is outside"),
              "%s %g: %s", key, (double)bad[i], err.message);
        mrt_model_free(m);
    }
    mrt_free(file);
}

/* Rewrites the model file with one tensor dropped or reshaped. */
static void test_bad_models(void) {
    mrt_config cfg = mrt_config_xs();
    mrt_weights w;
    float *storage = NULL;
    mrt_error err = {0};
    CHECK(mrt_model_init_random(&cfg, 1, &w, &storage, &err) == MRT_OK, "init: %s", err.message);
    char path[300];
    snprintf(path, sizeof path, "%s/bad.gguf", dir);
    /* a context weight beyond the documented bound */
    int32_t saved = w.ctx[0][0].w1[0];
    w.ctx[0][0].w1[0] = (1 << 24) + 1;
    CHECK(mrt_model_save(&cfg, &w, 0, 0.0f, 1.0f, path, &err) == MRT_OK, "save: %s", err.message);
    mrt_model *m = NULL;
    mrt_status st = mrt_model_load(path, &m, &err);
    CHECK(st == MRT_ERR_MODEL && strstr(err.message, "ctx.0.0.fc1.weight"),
          "oversized context weight: %s", err.message);
    mrt_model_free(m);
    w.ctx[0][0].w1[0] = saved;
    /* a non-finite float weight */
    w.embed_w[5] = NAN;
    CHECK(mrt_model_save(&cfg, &w, 0, 0.0f, 1.0f, path, &err) == MRT_OK, "save: %s", err.message);
    st = mrt_model_load(path, &m, &err);
    CHECK(st == MRT_ERR_MODEL && strstr(err.message, "enc.embed.weight"),
          "NaN weight: %s", err.message);
    mrt_model_free(m);
    w.embed_w[5] = 0;
    /* the training loss's MSE weight (refinement's objective): kept when
     * sane; a file holding a negative, absurd or NaN one is refused */
    CHECK(mrt_model_save(&cfg, &w, 0, 16.0f, 1.0f, path, &err) == MRT_OK, "save: %s", err.message);
    st = mrt_model_load(path, &m, &err);
    CHECK(st == MRT_OK, "a model with mrt.train.mse_weight 16: %s", err.message);
    mrt_model_free(m);
    m = NULL;
    const float bad_weights[] = {-1.0f, 1e5f, NAN};
    check_bad_float_key(path, "mrt.train.mse_weight", bad_weights, 3);
    /* a rate point's working scale (mrt_rate_point_write): kept when in
     * [1/16, 1], refused below, above or NaN, saved or loaded */
    CHECK(mrt_model_save(&cfg, &w, 0, 0.0f, 0.5f, path, &err) == MRT_OK, "save: %s", err.message);
    st = mrt_model_load(path, &m, &err);
    CHECK(st == MRT_OK && mrt_model_working_scale(m) == 0.5,
          "a model with mrt.working_scale 0.5: %s", err.message);
    mrt_model_free(m);
    m = NULL;
    const float bad_scales[] = {0.01f, 1.5f, NAN};
    check_bad_float_key(path, "mrt.working_scale", bad_scales, 3);
    CHECK(mrt_model_save(&cfg, &w, 0, 0.0f, 0.05f, path, &err) == MRT_ERR_ARGUMENT,
          "saving a working scale of 0.05 was not refused");
    CHECK(mrt_model_save(&cfg, &w, 0, -1.0f, 1.0f, path, &err) == MRT_ERR_ARGUMENT,
          "saving a negative MSE weight was not refused");
    free(storage);
    /* missing file, not a model */
    st = mrt_model_load("/nonexistent/model.gguf", &m, &err);
    CHECK(st == MRT_ERR_MODEL && strstr(err.message, "nonexistent"), "missing: %s", err.message);
    snprintf(path, sizeof path, "%s/text.gguf", dir);
    FILE *f = fopen(path, "w");
    fputs("not a model at all\n", f);
    fclose(f);
    st = mrt_model_load(path, &m, &err);
    CHECK(st == MRT_ERR_MODEL && err.message[0], "text file: %s", err.message);
}

/* One loaded model shared by several threads encoding and decoding at
 * once: every thread must get the same bytes and pixels as a lone call. */
typedef struct {
    const mrt_model *m;
    const uint8_t *want_bits;
    size_t want_len;
    const uint8_t *want_rgb;
    int ok;
} shared_job;

static void *shared_worker(void *p) {
    shared_job *job = p;
    job->ok = 1;
    for (int iter = 0; iter < 3; iter++) {
        mrt_image img = tu_make_photo(150, 90, 42);
        uint8_t *bits = NULL;
        size_t len = 0;
        mrt_image out = {0};
        mrt_error err = {0};
        if (mrt_encode(job->m, &img, 1, &bits, &len, &err) != MRT_OK || len != job->want_len ||
            memcmp(bits, job->want_bits, len) != 0)
            job->ok = 0;
        else if (mrt_decode(job->m, bits, len, 1, &out, &err) != MRT_OK ||
                 memcmp(out.rgb, job->want_rgb, (size_t)150 * 90 * 3) != 0)
            job->ok = 0;
        mrt_image_free(&out);
        mrt_free(bits);
        mrt_image_free(&img);
    }
    return NULL;
}

static void test_shared_model(const mrt_model *m) {
    mrt_image img = tu_make_photo(150, 90, 42), ref = {0};
    uint8_t *bits = NULL;
    size_t len = 0;
    mrt_error err = {0};
    CHECK(mrt_encode(m, &img, 1, &bits, &len, &err) == MRT_OK, "encode: %s", err.message);
    CHECK(mrt_decode(m, bits, len, 1, &ref, &err) == MRT_OK, "decode: %s", err.message);
    enum { NTHREADS = 4 };
    pthread_t th[NTHREADS];
    shared_job jobs[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        jobs[i] = (shared_job){m, bits, len, ref.rgb, 0};
        CHECK(pthread_create(&th[i], NULL, shared_worker, &jobs[i]) == 0, "pthread_create");
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        CHECK(jobs[i].ok, "thread %d: results differ from a lone call", i);
    }
    mrt_image_free(&ref);
    mrt_free(bits);
    mrt_image_free(&img);
}

/* The decoder runs the pixel generator in strips with a halo (synthesis.c);
 * its pixels must be those of one pass over the whole image, which the
 * training path (mrt_synthesis_train_forward + mrt_gen_forward) computes.
 * A halo smaller than the receptive field shows at every strip border as
 * differences of many levels; float rounding between the two paths as at
 * most a level. */
static void test_strips_match_whole_image(const mrt_model *m) {
    const mrt_config *cfg = mrt_model_config(m);
    const mrt_weights *w = mrt_model_weights(m);
    int width = 200, height = 370; /* 6 windows down: 48 rows at 1/8, 3 strips */
    mrt_grid g = mrt_grid_of(cfg, width, height);
    mrt_latent_shape sh = mrt_latent_shape_of(cfg, width, height);
    size_t ny = (size_t)sh.ntokens * cfg->channels;
    int W = g.wp * cfg->patch, H = g.hp * cfg->patch;
    float *y_hat = malloc(sizeof(float) * ny);
    uint8_t *strips = malloc((size_t)width * height * 3);
    mrt_synthesis_acts sy;
    mrt_gen_acts gen;
    int have_sy = mrt_synthesis_acts_alloc(&sy, cfg, 1, W, H) == 0;
    int have_gen = mrt_gen_acts_alloc(&gen, 1, g.hp, g.wp, cfg->dim, cfg->gen_width, false) == 0;
    CHECK(y_hat && strips && have_sy && have_gen, "out of memory");
    if (!y_hat || !strips || !have_sy || !have_gen) {
        if (have_gen) mrt_gen_acts_free(&gen);
        if (have_sy) mrt_synthesis_acts_free(&sy, cfg);
        free(y_hat), free(strips);
        return;
    }
    mrt_rng rng;
    mrt_rng_seed(&rng, 5);
    for (size_t i = 0; i < ny; i++) y_hat[i] = (float)((int)mrt_rng_below(&rng, 129) - 64) / 16.0f;
    mrt_rt rt = mrt_rt_make(1);
    mrt_error err;
    CHECK(mrt_synthesis(&rt, cfg, w, y_hat, width, height, strips, &err) == MRT_OK, "%s", err.message);
    mrt_synthesis_train_forward(&rt, cfg, w, &sy, y_hat);
    mrt_gen_forward(&rt, &w->gen, &gen, sy.map);
    int worst = 0, border_rows = 0;
    double sum = 0, sum2 = 0;
    for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
            for (int c = 0; c < 3; c++) {
                float v = (gen.out[((size_t)c * H + y) * W + x] + 1.0f) * 127.5f + 0.5f;
                int whole = !(v > 0.0f) ? 0 : v >= 255.0f ? 255 : (int)v;
                int s = strips[((size_t)y * width + x) * 3 + c];
                int d = abs(s - whole);
                if (d > worst) worst = d;
                if (d > 1 && (y % 128 == 0 || y % 128 == 127)) border_rows++;
                sum += s, sum2 += (double)s * s;
            }
    double n = 3.0 * width * height, sd = sqrt(sum2 / n - (sum / n) * (sum / n));
    CHECK(sd > 5, "random decoder's picture too flat to test strips (sd %.1f)", sd);
    CHECK(worst <= 1, "strips differ from one whole-image pass by %d levels (%d at strip borders)",
          worst, border_rows);
    mrt_gen_acts_free(&gen);
    mrt_synthesis_acts_free(&sy, cfg);
    free(y_hat), free(strips);
}

int main(void) {
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(model_path, sizeof model_path, "%s/model.gguf", dir);
    snprintf(other_path, sizeof other_path, "%s/other.gguf", dir);
    mrt_error err = {0};
    CHECK(mrt_model_write_random(model_path, 1, 7, &err) == MRT_OK, "%s", err.message);
    CHECK(mrt_model_write_random(other_path, 2, 7, &err) == MRT_OK, "%s", err.message);
    mrt_model *m = NULL, *other = NULL;
    CHECK(mrt_model_load(model_path, &m, &err) == MRT_OK, "load: %s", err.message);
    CHECK(mrt_model_load(other_path, &other, &err) == MRT_OK, "load: %s", err.message);
    if (!m || !other) return tu_finish("test_codec");
    CHECK(mrt_model_rate_id(m) == 7, "rate id %d", mrt_model_rate_id(m));

    static const int sizes[][2] = {{1, 1}, {7, 5}, {64, 64}, {65, 130}, {130, 65},
                                   {200, 77}, {31, 257}, {600, 20}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        test_round_trip(m, sizes[i][0], sizes[i][1]);
    test_working_size(m);
    test_strips_match_whole_image(m);
    test_damage(m);
    test_shared_model(m);
    test_mismatch(m, other);
    test_budget(m, other);
    test_derived_rate_point(m);
    test_budget_compared_size(m);
    test_cut_groups();
    test_model_set(m);
    test_bad_models();
    mrt_model_free(m);
    mrt_model_free(other);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return tu_finish("test_codec");
}
