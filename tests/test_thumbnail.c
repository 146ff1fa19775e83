/*
 * test_thumbnail.c -- scaled decoding and thumbnail heads
 * (codec/model/thumbnail.h, codec/train/thumbnails.c), with seeded random
 * weights and generated photos:
 *   - mrt_decode_scaled: the sizes (each side rounded up) at 1, 2, 4, 8,
 *     other scales refused, scale 1 = mrt_decode, a version-2 stream;
 *   - mrt_fit_thumbnails writes NAME.thumbs.gguf beside the model; the
 *     model then loads its heads and 1/4 and 1/8 go through them: the same
 *     bytes with 1 and 2 threads, closer to the shrunk original than a flat
 *     grey on a photo it was fitted on (least squares does at least as
 *     well as its bias alone);
 *   - heads that name another model, or a damaged heads file, are not used
 *     (the reason is kept) and thumbnails still decode, the long way.
 */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec_internal.h"
#include "mrt_train.h"
#include "testutil.h"
#include "thumbnail.h"

static char dir[] = "/tmp/mrt-test-thumbnail-XXXXXX";

/* a smooth picture with some edges: seeded, w x h */
static mrt_image picture(int w, int h, int seed) {
    mrt_image img = {w, h, malloc((size_t)w * h * 3)};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                int v = 128 + (int)(90 * sin(0.05 * (x + 7 * seed) * (c + 1)) * cos(0.04 * y)) +
                        ((x / 16 + y / 16 + seed) % 2) * 20;
                img.rgb[((size_t)y * w + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    return img;
}

static int same_image(const mrt_image *a, const mrt_image *b) {
    return a->width == b->width && a->height == b->height &&
           !memcmp(a->rgb, b->rgb, (size_t)a->width * a->height * 3);
}

static void test_sizes(const char *model_path) {
    mrt_model *m = NULL;
    mrt_error err;
    CHECK(mrt_model_load(model_path, &m, &err) == MRT_OK, "%s", err.message);
    if (!m) return;
    mrt_image img = picture(150, 101, 1);
    uint8_t *bits = NULL;
    size_t len = 0;
    CHECK(mrt_encode(m, &img, 1, &bits, &len, &err) == MRT_OK, "%s", err.message);
    static const int scales[] = {1, 2, 4, 8}, widths[] = {150, 75, 38, 19}, heights[] = {101, 51, 26, 13};
    for (int i = 0; i < 4; i++) {
        mrt_image out = {0};
        CHECK(mrt_decode_scaled(m, bits, len, scales[i], 1, &out, &err) == MRT_OK, "%s", err.message);
        CHECK(out.width == widths[i] && out.height == heights[i], "1/%d: %dx%d", scales[i],
              out.width, out.height);
        if (scales[i] == 1) {
            mrt_image full = {0};
            CHECK(mrt_decode(m, bits, len, 1, &full, &err) == MRT_OK, "%s", err.message);
            CHECK(same_image(&out, &full), "scale 1 is not mrt_decode");
            mrt_image_free(&full);
        }
        mrt_image_free(&out);
    }
    mrt_image out = {0};
    CHECK(mrt_decode_scaled(m, bits, len, 3, 1, &out, &err) == MRT_ERR_ARGUMENT &&
              strstr(err.message, "scale 3") && !out.rgb,
          "scale 3: %s", err.message);
    /* a version-2 stream coded at 75x51: 1/4 is still 38x26 */
    mrt_free(bits);
    mrt_encode_options eo = {.threads = 1, .working_width = 75, .working_height = 51};
    CHECK(mrt_encode_with(m, &img, &eo, &bits, &len, &err) == MRT_OK, "%s", err.message);
    CHECK(mrt_decode_scaled(m, bits, len, 4, 1, &out, &err) == MRT_OK && out.width == 38 &&
              out.height == 26,
          "v2 at 1/4: %dx%d %s", out.width, out.height, err.message);
    mrt_image_free(&out);
    mrt_free(bits);
    mrt_image_free(&img);
    mrt_model_free(m);
}

static void test_heads(const char *model_path, const char *data_dir) {
    mrt_thumb_fit_options o;
    mrt_thumb_fit_defaults(&o);
    const char *data[] = {data_dir};
    o.model = model_path, o.data = data, o.ndata = 1, o.images = 6, o.crop = 128, o.quiet = 1;
    o.level = 2;
    mrt_error err;
    CHECK(mrt_fit_thumbnails(&o, &err) == MRT_OK, "fit: %s", err.message);
    char heads_path[300];
    snprintf(heads_path, sizeof heads_path, "%s/m.thumbs.gguf", dir);
    struct stat sb;
    CHECK(stat(heads_path, &sb) == 0 && sb.st_size > 0, "no %s", heads_path);

    mrt_model *m = NULL;
    CHECK(mrt_model_load(model_path, &m, &err) == MRT_OK, "%s", err.message);
    if (!m) return;
    const mrt_thumb_heads *h = mrt_model_thumb_heads(m);
    CHECK(h->file && !h->problem[0] && h->level == 2, "heads not loaded: %s", h->problem);
    CHECK(mrt_thumb_head_for(h, 4) && !mrt_thumb_head_for(h, 8) && !mrt_thumb_head_for(h, 2),
          "a head for 1/4 only (1/8 is its picture shrunk)");

    /* one of the photos the heads were fitted on, its centre crop as the
     * fitter took it: least squares is at least as close as its bias alone */
    mrt_image photo = picture(160, 128, 10), img = {128, 128, malloc(128 * 128 * 3)};
    for (int y = 0; y < 128; y++)
        memcpy(img.rgb + (size_t)y * 128 * 3, photo.rgb + ((size_t)y * 160 + 16) * 3, 128 * 3);
    mrt_image_free(&photo);
    uint8_t *bits = NULL;
    size_t len = 0;
    CHECK(mrt_encode(m, &img, 1, &bits, &len, &err) == MRT_OK, "%s", err.message);
    for (int s = 4; s <= 8; s *= 2) {
        mrt_image one = {0}, two = {0}, ref = {0}, grey = {0};
        CHECK(mrt_decode_scaled(m, bits, len, s, 1, &one, &err) == MRT_OK, "%s", err.message);
        CHECK(mrt_decode_scaled(m, bits, len, s, 2, &two, &err) == MRT_OK, "%s", err.message);
        CHECK(same_image(&one, &two), "1/%d: 1 and 2 threads differ", s);
        CHECK(one.width == 128 / s && one.height == 128 / s, "1/%d: %dx%d", s, one.width, one.height);
        CHECK(mrt_image_resize(&img, one.width, one.height, 1, &ref, &err) == MRT_OK, "%s",
              err.message);
        /* a flat picture of the reference's mean: what a head that learned
         * nothing but its bias would give */
        grey = (mrt_image){ref.width, ref.height, malloc((size_t)ref.width * ref.height * 3)};
        double mean = 0;
        for (size_t i = 0; i < (size_t)ref.width * ref.height * 3; i++) mean += ref.rgb[i];
        mean /= (double)ref.width * ref.height * 3;
        memset(grey.rgb, (int)(mean + 0.5), (size_t)ref.width * ref.height * 3);
        double p_head, p_grey, ms;
        mrt_image_compare(&ref, &one, 1, &p_head, &ms, &err);
        mrt_image_compare(&ref, &grey, 1, &p_grey, &ms, &err);
        CHECK(p_head > p_grey + 1.0, "1/%d: the head's %.2f dB is not above grey's %.2f", s,
              p_head, p_grey);
        mrt_image_free(&one), mrt_image_free(&two), mrt_image_free(&ref), mrt_image_free(&grey);
    }
    mrt_model_free(m);

    /* the same heads beside another model: not used, thumbnails still decode */
    char other[300], other_heads[300];
    snprintf(other, sizeof other, "%s/other.gguf", dir);
    snprintf(other_heads, sizeof other_heads, "%s/other.thumbs.gguf", dir);
    CHECK(mrt_model_write_random(other, 9, 0, &err) == MRT_OK, "%s", err.message);
    uint8_t *copy = NULL;
    size_t copy_len = 0;
    CHECK(mrt_read_file(heads_path, 1 << 24, &copy, &copy_len, &err) == MRT_OK, "%s", err.message);
    CHECK(mrt_write_file_atomic(other_heads, copy, copy_len, &err) == MRT_OK, "%s", err.message);
    mrt_model *o2 = NULL;
    CHECK(mrt_model_load(other, &o2, &err) == MRT_OK, "a stale heads file broke the model: %s",
          err.message);
    if (o2) {
        const mrt_thumb_heads *h2 = mrt_model_thumb_heads(o2);
        CHECK(!h2->file && strstr(h2->problem, "another model"), "stale heads: '%s'",
              h2->problem);
        mrt_image img2 = picture(64, 64, 5), out = {0};
        uint8_t *b2 = NULL;
        size_t l2 = 0;
        CHECK(mrt_encode(o2, &img2, 1, &b2, &l2, &err) == MRT_OK &&
                  mrt_decode_scaled(o2, b2, l2, 4, 1, &out, &err) == MRT_OK && out.width == 16,
              "the long way: %s", err.message);
        mrt_free(b2);
        mrt_image_free(&out), mrt_image_free(&img2);
        mrt_model_free(o2);
    }
    /* a damaged heads file: not used, the reason kept */
    CHECK(mrt_write_file_atomic(other_heads, copy, copy_len / 2, &err) == MRT_OK, "%s",
          err.message);
    o2 = NULL;
    CHECK(mrt_model_load(other, &o2, &err) == MRT_OK, "a damaged heads file broke the model: %s",
          err.message);
    if (o2) {
        const mrt_thumb_heads *h2 = mrt_model_thumb_heads(o2);
        CHECK(!h2->file && h2->problem[0], "damaged heads were used");
        mrt_model_free(o2);
    }
    mrt_free(copy);
    unlink(other), unlink(other_heads), unlink(heads_path);
    mrt_free(bits);
    mrt_image_free(&img);
}

int main(void) {
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    char model_path[300], data_dir[300];
    snprintf(model_path, sizeof model_path, "%s/m.gguf", dir);
    snprintf(data_dir, sizeof data_dir, "%s/photos", dir);
    mrt_error err;
    if (mrt_model_write_random(model_path, 1, 2, &err) != MRT_OK || mkdir(data_dir, 0755) != 0) {
        fprintf(stderr, "setup: %s\n", err.message);
        return 2;
    }
    for (int i = 0; i < 6; i++) {
        char path[400];
        snprintf(path, sizeof path, "%s/p%d.png", data_dir, i);
        mrt_image img = picture(160 + 8 * i, 128, 10 + i);
        CHECK(mrt_image_write_png_file(&img, path, &err) == MRT_OK, "%s", err.message);
        mrt_image_free(&img);
    }
    test_sizes(model_path);
    test_heads(model_path, data_dir);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return tu_finish("test_thumbnail");
}
