/*
 * fuzz_seeds.c -- writes the fuzzers' seed corpora, so that none are
 * committed: small valid inputs of every kind each reader accepts, for
 * libFuzzer to mutate.
 *
 *     fuzz_seeds DIR      writes DIR/decode, DIR/encode, DIR/image, DIR/gguf, DIR/sql, DIR/archive
 *
 *   decode/  bitstreams of synthetic images (1x1 to 150x130; from 8x8 up
 *            also coded at half size, version 2) encoded with
 *            the fuzz model (fuzz_model.h), each as is ("raw-*") and in
 *            fuzz_decode's framed form ("framed-*": width-1, height-1,
 *            stream 0, stream 1).
 *   encode/  fuzz_encode's input form (width-1, height-1, RGB pixels) of
 *            synthetic images from 1x1 to 64x64.
 *   image/   PNGs of every colour type and bit depth, with tRNS, and
 *            interlaced; JPEGs: gray, YCbCr 4:2:0 and 4:4:4, RGB, Adobe
 *            CMYK, progressive, and one with an EXIF orientation. All
 *            a few dozen pixels, so a mutation decodes in microseconds.
 *   archive/ tarballs for fuzz_archive: small PNGs in a folder, a text
 *            file, one photo under two names, a '..' name.
 *   sql/     fuzz_sql's input form: one call of each SQL function with the
 *            harness's PNG and bitstream, byte budgets and rates as text,
 *            integers, NULLs.
 *   gguf/    one file with a key of every value type, arrays of several
 *            element types and tensors of every type and rank; one with
 *            only the required key; and the fuzz model (a complete model
 *            of a tiny configuration, which mrt_model_load accepts).
 *
 * Output is deterministic: the same files on every run. Exit status 0, or
 * 1 with a message.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <png.h>

#include "bitstream.h"
#include "fuzz_model.h"
#include "gguf.h"
#include "mrt.h"

static const char *out_dir;

_Noreturn static void die(const char *what, const char *detail) {
    fprintf(stderr, "fuzz_seeds: %s: %s\n", what, detail);
    exit(1);
}

static void make_dir(const char *sub) {
    char path[1024];
    snprintf(path, sizeof path, "%s%s%s", out_dir, sub ? "/" : "", sub ? sub : "");
    if (mkdir(path, 0755) != 0 && errno != EEXIST) die(path, strerror(errno));
}

static void write_seed(const char *sub, const char *name, const void *data, size_t len) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, sub, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) die(path, strerror(errno));
}

/* Smooth colours with some detail: what the encoder sees in a photo. */
static uint8_t *synthetic(int w, int h, int comps) {
    uint8_t *p = malloc((size_t)w * h * comps);
    if (!p) die("synthetic image", "out of memory");
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < comps; c++)
                p[((size_t)y * w + x) * comps + c] =
                    (uint8_t)((x * 255 / (w > 1 ? w - 1 : 1) + y * 97 / (h > 1 ? h - 1 : 1) +
                               c * 85 + ((x ^ y) & 7) * 5) & 0xFF);
    return p;
}

/* ------------------------------------------------------------- decode */

static void decode_seeds(void) {
    static const int sizes[][2] = {{1, 1}, {8, 8}, {23, 17}, {64, 64}, {100, 40}, {150, 130}};
    mrt_model *m = mrt_fuzz_model();
    if (!m) die("decode seeds", "no model");
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int w = sizes[i][0], h = sizes[i][1];
        mrt_image img = {w, h, synthetic(w, h, 3)};
        uint8_t *bits;
        size_t len;
        mrt_error err;
        if (mrt_encode(m, &img, 1, &bits, &len, &err) != MRT_OK) die("encode", err.message);
        char name[64];
        snprintf(name, sizeof name, "raw-%dx%d", w, h);
        write_seed("decode", name, bits, len);

        mrt_bitstream_header hd;
        const uint8_t *streams[MRT_BITSTREAM_MAX_STREAMS];
        if (mrt_bitstream_parse(bits, len, &hd, streams, &err) != MRT_OK || hd.nstreams != 2)
            die("parse", err.message);
        size_t flen = 2 + hd.stream_len[0] + hd.stream_len[1];
        uint8_t *framed = malloc(flen);
        if (!framed) die("framed seed", "out of memory");
        framed[0] = (uint8_t)(w - 1);
        framed[1] = (uint8_t)(h - 1);
        memcpy(framed + 2, streams[0], hd.stream_len[0]);
        memcpy(framed + 2 + hd.stream_len[0], streams[1], hd.stream_len[1]);
        snprintf(name, sizeof name, "framed-%dx%d", w, h);
        write_seed("decode", name, framed, flen);
        free(framed);
        mrt_free(bits);
        if (w >= 8 && h >= 8) { /* a version-2 stream: coded at half size */
            mrt_encode_options half = {.threads = 1, .working_width = w / 2,
                                       .working_height = h / 2};
            if (mrt_encode_with(m, &img, &half, &bits, &len, &err) != MRT_OK)
                die("encode at a working size", err.message);
            snprintf(name, sizeof name, "raw-v2-%dx%d", w, h);
            write_seed("decode", name, bits, len);
            mrt_free(bits);
        }
        free(img.rgb);
    }
    mrt_model_free(m);
}

/* ------------------------------------------------------------- encode */

static void encode_seeds(void) {
    static const int sizes[][2] = {{1, 1}, {16, 16}, {33, 7}, {64, 64}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int w = sizes[i][0], h = sizes[i][1];
        size_t n = (size_t)w * h * 3;
        uint8_t *seed = malloc(2 + n), *pix = synthetic(w, h, 3);
        if (!seed) die("encode seed", "out of memory");
        seed[0] = (uint8_t)(w - 1);
        seed[1] = (uint8_t)(h - 1);
        memcpy(seed + 2, pix, n);
        char name[64];
        snprintf(name, sizeof name, "%dx%d", w, h);
        write_seed("encode", name, seed, 2 + n);
        free(pix);
        free(seed);
    }
}

/* --------------------------------------------------------------- PNG */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} membuf;

static void membuf_write(png_structp png, png_bytep d, size_t n) {
    membuf *b = png_get_io_ptr(png);
    if (b->n + n > b->cap) {
        b->cap = 2 * (b->n + n) + 256;
        b->p = realloc(b->p, b->cap);
        if (!b->p) die("PNG seed", "out of memory");
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void membuf_flush(png_structp png) { (void)png; }

/* A w x h PNG of `color` at `depth` bits, samples from a pattern. */
static void png_seed(const char *name, int w, int h, int color, int depth, int interlace,
                     int trns) {
    int ch = color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_PALETTE ? 1
             : color == PNG_COLOR_TYPE_GRAY_ALPHA                           ? 2
             : color == PNG_COLOR_TYPE_RGB                                  ? 3
                                                                            : 4;
    size_t rowbytes = ((size_t)w * ch * depth + 7) / 8;
    uint8_t *raw = calloc((size_t)h, rowbytes);
    png_bytep *rows = malloc(sizeof *rows * (size_t)h);
    if (!raw || !rows) die("PNG seed", "out of memory");
    unsigned maxv = (1u << depth) - 1;
    for (int y = 0; y < h; y++) {
        rows[y] = raw + (size_t)y * rowbytes;
        for (int i = 0; i < w * ch; i++) {
            unsigned v = (unsigned)(i * 37 + y * 101) * 257u % (maxv + 1);
            if (depth == 16) {
                rows[y][2 * i] = (uint8_t)(v >> 8);
                rows[y][2 * i + 1] = (uint8_t)v;
            } else if (depth == 8) {
                rows[y][i] = (uint8_t)v;
            } else {
                int bit = i * depth;
                rows[y][bit / 8] |= (uint8_t)(v << (8 - depth - bit % 8));
            }
        }
    }
    membuf b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info || setjmp(png_jmpbuf(png))) die("PNG seed", name);
    png_set_write_fn(png, &b, membuf_write, membuf_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, color,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_color palette[256];
    png_byte alphas[256];
    if (color == PNG_COLOR_TYPE_PALETTE) {
        for (unsigned i = 0; i <= maxv; i++) {
            palette[i] = (png_color){(png_byte)(i * 53), (png_byte)(i * 91), (png_byte)(255 - i)};
            alphas[i] = (png_byte)(i * 29);
        }
        png_set_PLTE(png, info, palette, (int)maxv + 1);
        if (trns) png_set_tRNS(png, info, alphas, (int)maxv + 1, NULL);
    } else if (trns) {
        png_color_16 key = {0, (png_uint_16)(1 & maxv), (png_uint_16)(2 & maxv),
                            (png_uint_16)(3 & maxv), (png_uint_16)(1 & maxv)};
        png_set_tRNS(png, info, NULL, 0, &key);
    }
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    write_seed("image", name, b.p, b.n);
    free(b.p);
    free(rows);
    free(raw);
}

/* -------------------------------------------------------------- JPEG */

/* APP1 "Exif" with IFD0 holding one orientation tag (big-endian TIFF). */
static unsigned exif_orientation(uint8_t *b, unsigned orientation) {
    static const uint8_t head[] = {'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0, 42, 0, 0, 0, 8,
                                   0, 1,                   /* one entry */
                                   0x01, 0x12, 0, 3, 0, 0, 0, 1}; /* orientation, SHORT, 1 */
    memcpy(b, head, sizeof head);
    uint8_t *v = b + sizeof head;
    v[0] = 0, v[1] = (uint8_t)orientation, v[2] = v[3] = 0; /* value, padding */
    memset(v + 4, 0, 4);                                    /* no next IFD */
    return (unsigned)sizeof head + 8;
}

static void jpeg_seed(const char *name, int w, int h, int comps, J_COLOR_SPACE in_cs,
                      J_COLOR_SPACE jpeg_cs, int full_chroma, int progressive,
                      unsigned orientation) {
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr); /* exits on error: our own inputs are valid */
    jpeg_create_compress(&ci);
    unsigned char *out = NULL;
    unsigned long outlen = 0;
    jpeg_mem_dest(&ci, &out, &outlen);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = comps;
    ci.in_color_space = in_cs;
    jpeg_set_defaults(&ci);
    jpeg_set_colorspace(&ci, jpeg_cs);
    if (full_chroma)
        for (int i = 0; i < ci.num_components; i++)
            ci.comp_info[i].h_samp_factor = ci.comp_info[i].v_samp_factor = 1;
    jpeg_set_quality(&ci, 80, TRUE);
    if (progressive) jpeg_simple_progression(&ci);
    jpeg_start_compress(&ci, TRUE);
    if (orientation) {
        uint8_t app1[64];
        unsigned n = exif_orientation(app1, orientation);
        jpeg_write_marker(&ci, JPEG_APP0 + 1, app1, n);
    }
    uint8_t *pix = synthetic(w, h, comps);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = pix + (size_t)ci.next_scanline * w * comps;
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    write_seed("image", name, out, outlen);
    free(out);
    free(pix);
}

static void image_seeds(void) {
    png_seed("gray1.png", 9, 7, PNG_COLOR_TYPE_GRAY, 1, 0, 0);
    png_seed("gray2-interlaced.png", 9, 7, PNG_COLOR_TYPE_GRAY, 2, 1, 0);
    png_seed("gray4.png", 9, 7, PNG_COLOR_TYPE_GRAY, 4, 0, 0);
    png_seed("gray8-trns.png", 9, 7, PNG_COLOR_TYPE_GRAY, 8, 0, 1);
    png_seed("gray16.png", 9, 7, PNG_COLOR_TYPE_GRAY, 16, 0, 0);
    png_seed("graya8.png", 9, 7, PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0, 0);
    png_seed("graya16.png", 9, 7, PNG_COLOR_TYPE_GRAY_ALPHA, 16, 0, 0);
    png_seed("rgb8.png", 9, 7, PNG_COLOR_TYPE_RGB, 8, 0, 0);
    png_seed("rgb8-interlaced.png", 9, 7, PNG_COLOR_TYPE_RGB, 8, 1, 0);
    png_seed("rgb16-trns.png", 9, 7, PNG_COLOR_TYPE_RGB, 16, 0, 1);
    png_seed("rgba8.png", 9, 7, PNG_COLOR_TYPE_RGB_ALPHA, 8, 0, 0);
    png_seed("rgba16-interlaced.png", 9, 7, PNG_COLOR_TYPE_RGB_ALPHA, 16, 1, 0);
    png_seed("palette1.png", 9, 7, PNG_COLOR_TYPE_PALETTE, 1, 0, 0);
    png_seed("palette4-trns.png", 9, 7, PNG_COLOR_TYPE_PALETTE, 4, 0, 1);
    png_seed("palette8-trns.png", 9, 7, PNG_COLOR_TYPE_PALETTE, 8, 1, 1);

    jpeg_seed("gray.jpg", 19, 11, 1, JCS_GRAYSCALE, JCS_GRAYSCALE, 0, 0, 0);
    jpeg_seed("ycbcr420.jpg", 19, 11, 3, JCS_RGB, JCS_YCbCr, 0, 0, 0);
    jpeg_seed("ycbcr444.jpg", 19, 11, 3, JCS_RGB, JCS_YCbCr, 1, 0, 0);
    jpeg_seed("rgb.jpg", 19, 11, 3, JCS_RGB, JCS_RGB, 1, 0, 0);
    jpeg_seed("cmyk.jpg", 19, 11, 4, JCS_CMYK, JCS_CMYK, 1, 0, 0);
    jpeg_seed("ycck.jpg", 19, 11, 4, JCS_CMYK, JCS_YCCK, 1, 0, 0);
    jpeg_seed("progressive.jpg", 19, 11, 3, JCS_RGB, JCS_YCbCr, 0, 1, 0);
    jpeg_seed("exif6.jpg", 19, 11, 3, JCS_RGB, JCS_YCbCr, 0, 0, 6);
}

/* -------------------------------------------------------------- GGUF */

static void save_writer(mrt_gguf_writer *w, const char *name) {
    uint8_t *buf;
    size_t len;
    char err[512];
    if (!w || mrt_gguf_writer_save_memory(w, &buf, &len, err, sizeof err) != 0)
        die(name, w ? err : "out of memory");
    write_seed("gguf", name, buf, len);
    free(buf);
    mrt_gguf_writer_free(w);
}

static void gguf_seeds(void) {
    save_writer(mrt_gguf_writer_new(), "minimal.gguf");

    mrt_gguf_writer *w = mrt_gguf_writer_new();
    if (!w) die("gguf seed", "out of memory");
    uint8_t u8 = 200;
    int8_t i8 = -5;
    uint16_t u16 = 60000;
    int16_t i16 = -3000;
    int32_t i32 = -70000;
    float f32 = 1.5f;
    bool b = true;
    uint64_t u64 = 1ull << 40;
    int64_t i64 = -(1ll << 40);
    double f64 = 0.1;
    mrt_gguf_writer_add_scalar(w, "t.u8", MRT_GGUF_V_U8, &u8);
    mrt_gguf_writer_add_scalar(w, "t.i8", MRT_GGUF_V_I8, &i8);
    mrt_gguf_writer_add_scalar(w, "t.u16", MRT_GGUF_V_U16, &u16);
    mrt_gguf_writer_add_scalar(w, "t.i16", MRT_GGUF_V_I16, &i16);
    mrt_gguf_writer_add_u32(w, "t.u32", 123456u);
    mrt_gguf_writer_add_scalar(w, "t.i32", MRT_GGUF_V_I32, &i32);
    mrt_gguf_writer_add_scalar(w, "t.f32", MRT_GGUF_V_F32, &f32);
    mrt_gguf_writer_add_scalar(w, "t.bool", MRT_GGUF_V_BOOL, &b);
    mrt_gguf_writer_add_str(w, "t.str", "hello, weights");
    mrt_gguf_writer_add_scalar(w, "t.u64", MRT_GGUF_V_U64, &u64);
    mrt_gguf_writer_add_scalar(w, "t.i64", MRT_GGUF_V_I64, &i64);
    mrt_gguf_writer_add_scalar(w, "t.f64", MRT_GGUF_V_F64, &f64);
    static const uint8_t au8[] = {1, 2, 3};
    static const int32_t ai32[] = {-1, 0, 1, 2};
    static const bool abool[] = {true, false};
    static const double af64[] = {1e300, -2.5};
    static const char *const astr[] = {"a", "", "three"};
    mrt_gguf_writer_add_array(w, "a.u8", MRT_GGUF_V_U8, 3, au8);
    mrt_gguf_writer_add_array(w, "a.i32", MRT_GGUF_V_I32, 4, ai32);
    mrt_gguf_writer_add_array(w, "a.bool", MRT_GGUF_V_BOOL, 2, abool);
    mrt_gguf_writer_add_array(w, "a.f64", MRT_GGUF_V_F64, 2, af64);
    mrt_gguf_writer_add_array(w, "a.str", MRT_GGUF_V_STRING, 3, astr);
    mrt_gguf_writer_add_array(w, "a.empty", MRT_GGUF_V_U64, 0, NULL);
    static const float f[5] = {0, 1, -1, 0.5f, 2};
    static const int8_t q8[6] = {1, -2, 3, -4, 5, -6};
    static const int16_t q16[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    static const int32_t q32[16] = {0};
    mrt_gguf_writer_add_tensor(w, "w.f32", MRT_GGUF_F32, 1, (const int64_t[]){5}, f);
    mrt_gguf_writer_add_tensor(w, "w.i8", MRT_GGUF_I8, 2, (const int64_t[]){3, 2}, q8);
    mrt_gguf_writer_add_tensor(w, "w.i16", MRT_GGUF_I16, 3, (const int64_t[]){2, 2, 2}, q16);
    mrt_gguf_writer_add_tensor(w, "w.i32", MRT_GGUF_I32, 4, (const int64_t[]){2, 2, 2, 2}, q32);
    save_writer(w, "every-type.gguf");

    /* A complete model that the loader accepts: the fuzz model, a few
     * dozen KiB. */
    char path[1024];
    mrt_error err;
    mrt_model *m;
    snprintf(path, sizeof path, "%s/gguf/fuzz-model.gguf", out_dir);
    if (mrt_fuzz_model_write(path, &err) != MRT_OK) die("fuzz model", err.message);
    if (mrt_model_load(path, &m, &err) != MRT_OK) die("fuzz model does not load", err.message);
    mrt_model_free(m);
}

/* fuzz_sql's inputs (see fuzz_sql.c for the layout): function, then per
 * argument a type byte and its payload (5: the PNG, 6: its bitstream). */
static void sql_seeds(void) {
    static const struct {
        const char *name;
        uint8_t bytes[16];
        size_t len;
    } seeds[] = {
        {"encode", {0, 5}, 2},
        {"encode-budget", {1, 5, 3, 4, '4', '0', '0', 'B'}, 8},
        {"encode-kib", {1, 5, 3, 6, '1', '.', '5', 'K', 'i', 'B'}, 10},
        {"encode-rate-name", {1, 5, 3, 6, 'm', 'e', 'd', 'i', 'u', 'm'}, 10},
        {"encode-rate-id", {1, 5, 1, 0, 0, 0, 0, 0, 0, 0, 0}, 11},
        {"encode-refine", {2, 5, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0}, 16},
        {"encode-null", {1, 5, 0}, 3},
        {"decode", {3, 6}, 2},
        {"decode-png", {3, 5}, 2},
        {"info", {4, 6}, 2},
        {"psnr", {5, 5, 5}, 3},
        {"msssim", {6, 5, 5}, 3},
        {"psnr-text", {5, 5, 3, 2, 'h', 'i'}, 6},
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
        write_seed("sql", seeds[i].name, seeds[i].bytes, seeds[i].len);
}

/* One ustar member (header, data, padding) appended to buf at *len. */
static void tar_member(uint8_t *buf, size_t *len, const char *name, char type, const void *data,
                       size_t n) {
    uint8_t *h = buf + *len;
    memset(h, 0, 512);
    snprintf((char *)h, 100, "%s", name);
    snprintf((char *)h + 100, 8, "%07o", 0644);
    snprintf((char *)h + 108, 8, "%07o", 0);
    snprintf((char *)h + 116, 8, "%07o", 0);
    snprintf((char *)h + 124, 12, "%011o", (unsigned)n);
    snprintf((char *)h + 136, 12, "%011o", 1700000000u);
    h[156] = (uint8_t)type;
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++) sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    *len += 512;
    if (n) memcpy(buf + *len, data, n);
    *len += (n + 511) / 512 * 512;
}

/* fuzz_archive's inputs: tarballs of small PNGs, a folder, a text file,
 * a duplicate under a second name and a hostile name. */
static void archive_seeds(void) {
    mrt_image img = {12, 8, synthetic(12, 8, 3)}, img2 = {9, 7, synthetic(9, 7, 3)};
    uint8_t *png = NULL, *png2 = NULL;
    size_t plen = 0, plen2 = 0;
    mrt_error err;
    if (mrt_image_write_png_memory(&img, &png, &plen, &err) != MRT_OK ||
        mrt_image_write_png_memory(&img2, &png2, &plen2, &err) != MRT_OK)
        die("archive seeds", err.message);
    size_t cap = 16 * 512 + 4 * (plen + plen2) + 1024, len = 0;
    uint8_t *tar = calloc(1, cap);
    if (!tar) die("archive seeds", "out of memory");
    tar_member(tar, &len, "photos/", '5', NULL, 0);
    tar_member(tar, &len, "photos/a.png", '0', png, plen);
    tar_member(tar, &len, "photos/b.png", '0', png2, plen2);
    tar_member(tar, &len, "photos/copy-of-a.png", '0', png, plen);
    tar_member(tar, &len, "photos/notes.txt", '0', "not a photo\n", 12);
    len += 1024; /* the end: two zero blocks */
    write_seed("archive", "photos.tar", tar, len);
    len = 0;
    memset(tar, 0, cap);
    tar_member(tar, &len, "../evil.png", '0', png, plen);
    tar_member(tar, &len, "ok.png", '0', png2, plen2);
    len += 1024;
    write_seed("archive", "hostile.tar", tar, len);
    free(tar);
    mrt_free(png), mrt_free(png2);
    free(img.rgb), free(img2.rgb);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_seeds DIR\n");
        return 2;
    }
    out_dir = argv[1];
    make_dir(NULL);
    make_dir("decode");
    make_dir("encode");
    make_dir("image");
    make_dir("gguf");
    make_dir("sql");
    make_dir("archive");
    sql_seeds();
    archive_seeds();
    decode_seeds();
    encode_seeds();
    image_seeds();
    gguf_seeds();
    return 0;
}
