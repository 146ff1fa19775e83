/*
 * test_image.c -- PNG/JPEG input and PNG output (codec/io/image.c).
 *
 *   - every PNG colour type and bit depth (gray 1/2/4/8/16, palette 1/2/4/8
 *     with and without tRNS, gray+alpha 8/16, RGB 8/16, RGBA 8/16, gray and
 *     RGB with a tRNS colour), each plain and Adam7-interlaced, at odd sizes:
 *     the PNGs are written here with libpng and every output pixel is checked
 *     exactly against a reference computed here in floating point (so the
 *     library's integer rounding and alpha-on-white formula are checked by an
 *     independent computation);
 *   - PNG write -> read round trips in memory and through a file (atomic:
 *     no temp file left behind), and the IHDR of what is written;
 *   - JPEG: RGB, grayscale, CMYK/YCCK (Adobe inverted and plain) encoded here
 *     with libjpeg, decoded at > 35 dB PSNR; EXIF orientation 1-8 (both byte
 *     orders) and malformed EXIF; the 500-scan progressive limit;
 *   - hostile input: every truncation of a PNG and a JPEG fails with "ended
 *     early"; seeded random byte flips never crash (and a single flip in a PNG
 *     is always caught, by the CRCs); CRC errors in critical and ancillary
 *     chunks; a JPEG with a marker inside its entropy data; oversize headers
 *     (PNG 100000 x 100000, 70000 x 1, 8193 x 8193; JPEG 65535 x 65535,
 *     65535 x 1, 20000 x 20000) refused with MRT_ERR_TOO_BIG at once; text,
 *     empty and NULL input; invalid images handed to the writer;
 *   - the photos in samples/ decode to their documented sizes;
 *   - status names and the error helpers (prefixing a message with itself).
 *
 * Inputs are copied to exact-size heap blocks, so AddressSanitizer sees any
 * read past the end. Runs in well under a second (a few seconds under ASan).
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <png.h>
#include <stdio.h>
#include <jpeglib.h>

#include "mrt.h"
#include "status.h"
#include "testutil.h"

/* ------------------------------------------------------------- helpers */

static uint32_t lcg_state = 12345u;
static uint32_t lcg(void) {
    lcg_state = lcg_state * 1664525u + 1013904223u;
    return lcg_state >> 8;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n) {
    uint8_t *q = malloc(n ? n : 1);
    if (!q) exit(2);
    if (n) memcpy(q, p, n);
    return q;
}

/* Decodes an exact-size copy of data[0..n), so ASan catches over-reads. */
static mrt_status decode(const uint8_t *data, size_t n, mrt_image *img, mrt_error *err) {
    uint8_t *copy = dup_bytes(data, n);
    mrt_status st = mrt_image_read_memory(copy, n, img, err);
    free(copy);
    return st;
}

static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static double psnr(const uint8_t *a, const uint8_t *b, size_t n) {
    double se = 0;
    for (size_t i = 0; i < n; i++) se += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    if (se == 0) return 99.0;
    return 10.0 * log10(255.0 * 255.0 / (se / (double)n));
}

/* --------------------------------------------------- writing test PNGs */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} membuf;

static void mb_write(png_structp png, png_bytep d, size_t n) {
    membuf *m = png_get_io_ptr(png);
    if (m->n + n > m->cap) {
        m->cap = (m->n + n) * 2 + 256;
        m->p = realloc(m->p, m->cap);
        if (!m->p) exit(2);
    }
    memcpy(m->p + m->n, d, n);
    m->n += n;
}
static void mb_flush(png_structp png) { (void)png; }

/* A test image as PNG samples: s[(y*w + x)*ch + k], each < 2^depth. */
typedef struct {
    int w, h, color, depth, interlace;
    uint16_t *s;
    png_color palette[256];
    int npalette;
    png_byte trans[256];
    int ntrans;
    int has_trans_color;
    png_color_16 trans_color;
} png_case;

static int channels_of(int color) {
    switch (color) {
    case PNG_COLOR_TYPE_GRAY: return 1;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB: return 3;
    case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
    default: return 1; /* palette */
    }
}

static uint8_t *make_png(const png_case *c, size_t *len) {
    int ch = channels_of(c->color);
    size_t rowbytes = ((size_t)c->w * ch * c->depth + 7) / 8;
    uint8_t *raw = calloc((size_t)c->h, rowbytes);
    png_bytep *rows = malloc(sizeof *rows * (size_t)c->h);
    if (!raw || !rows) exit(2);
    for (int y = 0; y < c->h; y++) {
        uint8_t *r = raw + (size_t)y * rowbytes;
        rows[y] = r;
        for (int i = 0; i < c->w * ch; i++) {
            unsigned v = c->s[(size_t)y * c->w * ch + i];
            if (c->depth == 16) {
                r[2 * i] = (uint8_t)(v >> 8);
                r[2 * i + 1] = (uint8_t)v;
            } else if (c->depth == 8) {
                r[i] = (uint8_t)v;
            } else { /* packed, most significant bits first */
                int bit = i * c->depth;
                r[bit / 8] |= (uint8_t)(v << (8 - c->depth - bit % 8));
            }
        }
    }
    membuf m = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        fprintf(stderr, "libpng failed writing a test PNG\n");
        exit(2);
    }
    png_set_write_fn(png, &m, mb_write, mb_flush);
    png_set_IHDR(png, info, (png_uint_32)c->w, (png_uint_32)c->h, c->depth, c->color,
                 c->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (c->npalette) png_set_PLTE(png, info, c->palette, c->npalette);
    if (c->ntrans || c->has_trans_color)
        png_set_tRNS(png, info, c->ntrans ? c->trans : NULL, c->ntrans,
                     c->has_trans_color ? &c->trans_color : NULL);
    png_write_info(png, info);
    png_write_image(png, rows); /* handles the interlace passes itself */
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(rows);
    free(raw);
    *len = m.n;
    return m.p;
}

/* What the decoder must produce, computed in double from the documented
 * rules: samples scaled to [0,1], alpha composited on white, rounded to the
 * nearest of 0..255 (no ties can occur: see image.c). */
static uint8_t *png_reference(const png_case *c) {
    int ch = channels_of(c->color);
    double max = (double)((1u << c->depth) - 1);
    uint8_t *out = malloc((size_t)c->w * c->h * 3);
    if (!out) exit(2);
    for (int i = 0; i < c->w * c->h; i++) {
        const uint16_t *s = c->s + (size_t)i * ch;
        double rgb[3], a = 1.0;
        if (c->color == PNG_COLOR_TYPE_PALETTE) {
            const png_color *p = &c->palette[s[0]];
            rgb[0] = p->red / 255.0;
            rgb[1] = p->green / 255.0;
            rgb[2] = p->blue / 255.0;
            if (s[0] < c->ntrans) a = c->trans[s[0]] / 255.0;
        } else if (c->color & PNG_COLOR_MASK_COLOR) {
            for (int k = 0; k < 3; k++) rgb[k] = s[k] / max;
            if (c->color & PNG_COLOR_MASK_ALPHA) a = s[3] / max;
            if (c->has_trans_color && s[0] == c->trans_color.red &&
                s[1] == c->trans_color.green && s[2] == c->trans_color.blue)
                a = 0;
        } else {
            rgb[0] = rgb[1] = rgb[2] = s[0] / max;
            if (c->color & PNG_COLOR_MASK_ALPHA) a = s[1] / max;
            if (c->has_trans_color && s[0] == c->trans_color.gray) a = 0;
        }
        for (int k = 0; k < 3; k++)
            out[(size_t)i * 3 + k] = (uint8_t)floor(255.0 * (rgb[k] * a + (1.0 - a)) + 0.5);
    }
    return out;
}

/* Fills c->s (and palette / tRNS) with random samples, including the
 * extremes, for the case's colour type and depth. */
static void png_case_fill(png_case *c, int with_trans) {
    int ch = channels_of(c->color);
    unsigned max = (1u << c->depth) - 1;
    size_t n = (size_t)c->w * c->h * ch;
    c->s = malloc(sizeof *c->s * (n ? n : 1));
    if (!c->s) exit(2);
    if (c->color == PNG_COLOR_TYPE_PALETTE) {
        c->npalette = c->depth == 8 ? 200 : (int)max + 1;
        for (int i = 0; i < c->npalette; i++) {
            c->palette[i].red = (png_byte)lcg();
            c->palette[i].green = (png_byte)lcg();
            c->palette[i].blue = (png_byte)lcg();
        }
        if (with_trans) {
            c->ntrans = c->npalette > 3 ? c->npalette - 1 : c->npalette;
            for (int i = 0; i < c->ntrans; i++) c->trans[i] = (png_byte)lcg();
            c->trans[0] = 0;
            if (c->ntrans > 1) c->trans[1] = 255;
            if (c->ntrans > 2) c->trans[2] = 128;
        }
        max = (unsigned)c->npalette - 1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned r = lcg() % 8;
        c->s[i] = (uint16_t)(r == 0 ? 0 : r == 1 ? max : lcg() % (max + 1));
    }
    if (with_trans && c->color != PNG_COLOR_TYPE_PALETTE) {
        /* The transparent colour: the first pixel's, so it surely occurs. */
        c->has_trans_color = 1;
        if (c->color == PNG_COLOR_TYPE_GRAY) {
            c->trans_color.gray = c->s[0];
        } else {
            c->trans_color.red = c->s[0];
            c->trans_color.green = c->s[1];
            c->trans_color.blue = c->s[2];
        }
    }
}

static void test_png_formats(void) {
    static const struct {
        int color, depth, trans;
    } kinds[] = {
        {PNG_COLOR_TYPE_GRAY, 1, 0},       {PNG_COLOR_TYPE_GRAY, 2, 0},
        {PNG_COLOR_TYPE_GRAY, 4, 0},       {PNG_COLOR_TYPE_GRAY, 8, 0},
        {PNG_COLOR_TYPE_GRAY, 16, 0},      {PNG_COLOR_TYPE_GRAY, 8, 1},
        {PNG_COLOR_TYPE_GRAY, 16, 1},      {PNG_COLOR_TYPE_GRAY, 2, 1},
        {PNG_COLOR_TYPE_PALETTE, 1, 0},    {PNG_COLOR_TYPE_PALETTE, 2, 1},
        {PNG_COLOR_TYPE_PALETTE, 4, 0},    {PNG_COLOR_TYPE_PALETTE, 8, 0},
        {PNG_COLOR_TYPE_PALETTE, 8, 1},    {PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0},
        {PNG_COLOR_TYPE_GRAY_ALPHA, 16, 0}, {PNG_COLOR_TYPE_RGB, 8, 0},
        {PNG_COLOR_TYPE_RGB, 16, 0},       {PNG_COLOR_TYPE_RGB, 8, 1},
        {PNG_COLOR_TYPE_RGB, 16, 1},       {PNG_COLOR_TYPE_RGB_ALPHA, 8, 0},
        {PNG_COLOR_TYPE_RGB_ALPHA, 16, 0},
    };
    static const int sizes[][2] = {{13, 7}, {1, 1}, {3, 17}, {33, 2}};
    int cases = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            for (int interlace = 0; interlace < 2; interlace++) {
                png_case c;
                memset(&c, 0, sizeof c);
                c.w = sizes[s][0];
                c.h = sizes[s][1];
                c.color = kinds[k].color;
                c.depth = kinds[k].depth;
                c.interlace = interlace;
                png_case_fill(&c, kinds[k].trans);
                size_t len;
                uint8_t *png = make_png(&c, &len);
                uint8_t *want = png_reference(&c);
                mrt_image img;
                mrt_error err;
                mrt_status st = decode(png, len, &img, &err);
                CHECK(st == MRT_OK, "color %d depth %d trns %d %dx%d il %d: %s", c.color, c.depth,
                      kinds[k].trans, c.w, c.h, interlace, err.message);
                if (st == MRT_OK) {
                    CHECK(img.width == c.w && img.height == c.h, "size %dx%d", img.width,
                          img.height);
                    size_t bad = 0, first = 0;
                    for (size_t i = 0; i < (size_t)c.w * c.h * 3; i++)
                        if (img.rgb[i] != want[i] && bad++ == 0) first = i;
                    CHECK(bad == 0,
                          "color %d depth %d trns %d %dx%d il %d: %zu wrong, first at %zu: got %d "
                          "want %d",
                          c.color, c.depth, kinds[k].trans, c.w, c.h, interlace, bad, first,
                          img.rgb[first], want[first]);
                }
                mrt_image_free(&img);
                free(want);
                free(png);
                free(c.s);
                cases++;
            }
    printf("  %d PNG format cases\n", cases);
}

/* A few alpha values worked out by hand from the formula in mrt.h. */
static void test_png_alpha_values(void) {
    png_case c;
    memset(&c, 0, sizeof c);
    c.w = 4;
    c.h = 1;
    c.color = PNG_COLOR_TYPE_RGB_ALPHA;
    c.depth = 8;
    uint16_t s[16] = {0, 0, 0, 0,  0, 100, 255, 128,  10, 20, 30, 255,  200, 0, 0, 1};
    c.s = s;
    size_t len;
    uint8_t *png = make_png(&c, &len);
    mrt_image img;
    mrt_error err;
    CHECK(decode(png, len, &img, &err) == MRT_OK, "%s", err.message);
    /* (c*a + 255*(255-a) + 127) / 255 */
    const uint8_t want[12] = {255, 255, 255,  127, 177, 255,  10, 20, 30,  255, 254, 254};
    CHECK(img.rgb && memcmp(img.rgb, want, 12) == 0, "alpha values differ");
    for (int i = 0; img.rgb && i < 12; i++)
        CHECK(img.rgb[i] == want[i], "byte %d: got %d want %d", i, img.rgb[i], want[i]);
    mrt_image_free(&img);
    free(png);
}

/* ------------------------------------------------------ PNG round trips */

static uint8_t *random_rgb(int w, int h) {
    uint8_t *p = malloc((size_t)w * h * 3);
    if (!p) exit(2);
    for (size_t i = 0; i < (size_t)w * h * 3; i++) p[i] = (uint8_t)lcg();
    return p;
}

static char tmp_dir[256];

static int dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void test_png_round_trip(void) {
    static const int sizes[][2] = {{37, 23}, {1, 1}, {1, 300}, {300, 1}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        mrt_image src = {sizes[s][0], sizes[s][1], random_rgb(sizes[s][0], sizes[s][1])};
        uint8_t *png = NULL;
        size_t len = 0;
        mrt_error err;
        CHECK(mrt_image_write_png_memory(&src, &png, &len, &err) == MRT_OK, "%s", err.message);
        CHECK(png && len > 33, "png %p len %zu", (void *)png, len);
        if (png && len > 33) {
            /* IHDR: 8-bit RGB, not interlaced */
            CHECK(png[24] == 8 && png[25] == 2 && png[28] == 0, "IHDR depth %d color %d il %d",
                  png[24], png[25], png[28]);
        }
        mrt_image back;
        CHECK(decode(png, len, &back, &err) == MRT_OK, "%s", err.message);
        CHECK(back.width == src.width && back.height == src.height && back.rgb &&
                  memcmp(back.rgb, src.rgb, (size_t)src.width * src.height * 3) == 0,
              "round trip %dx%d differs", src.width, src.height);
        mrt_image_free(&back);
        mrt_free(png);
        free(src.rgb);
    }

    /* Through a file: replaced atomically, nothing left beside it. */
    char path[300];
    snprintf(path, sizeof path, "%s/out.png", tmp_dir);
    mrt_image a = {61, 17, random_rgb(61, 17)}, b = {5, 9, random_rgb(5, 9)};
    mrt_error err;
    CHECK(mrt_image_write_png_file(&a, path, &err) == MRT_OK, "%s", err.message);
    CHECK(mrt_image_write_png_file(&b, path, &err) == MRT_OK, "overwrite: %s", err.message);
    CHECK(dir_entries(tmp_dir) == 1, "%d entries in %s (a temp file left?)", dir_entries(tmp_dir),
          tmp_dir);
    mrt_image back;
    CHECK(mrt_image_read_file(path, &back, &err) == MRT_OK, "%s", err.message);
    CHECK(back.width == 5 && back.height == 9 && back.rgb &&
              memcmp(back.rgb, b.rgb, 5 * 9 * 3) == 0,
          "file round trip differs (%dx%d)", back.width, back.height);
    mrt_image_free(&back);
    /* The new file's mode comes from mrt_write_file_atomic (test_files.c). */

    /* Writing into a directory that does not exist: IO, nothing created. */
    char bad[300];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.png", tmp_dir);
    CHECK(mrt_image_write_png_file(&a, bad, &err) == MRT_ERR_IO, "%s", err.message);
    CHECK(strstr(err.message, "No such file") != NULL, "%s", err.message);
    /* Writing over a directory: IO, and the temp file is removed. */
    char sub[300];
    snprintf(sub, sizeof sub, "%s/sub", tmp_dir);
    mkdir(sub, 0700);
    CHECK(mrt_image_write_png_file(&a, sub, &err) == MRT_ERR_IO, "%s", err.message);
    CHECK(dir_entries(tmp_dir) == 2, "%d entries: temp file not removed", dir_entries(tmp_dir));
    rmdir(sub);

    /* Reading: missing file, directory, empty file, text file. */
    char missing[300];
    snprintf(missing, sizeof missing, "%s/missing.png", tmp_dir);
    CHECK(mrt_image_read_file(missing, &back, &err) == MRT_ERR_IO, "%s", err.message);
    CHECK(strstr(err.message, "missing.png") && strstr(err.message, "No such file"), "%s",
          err.message);
    CHECK(back.rgb == NULL && back.width == 0, "out not cleared on failure");
    CHECK(mrt_image_read_file(tmp_dir, &back, &err) == MRT_ERR_IO, "%s", err.message);
    char empty[300];
    snprintf(empty, sizeof empty, "%s/empty.jpg", tmp_dir);
    FILE *f = fopen(empty, "wb");
    if (f) fclose(f);
    CHECK(mrt_image_read_file(empty, &back, &err) == MRT_ERR_IMAGE, "%s", err.message);
    CHECK(strstr(err.message, "empty.jpg: empty input"), "%s", err.message);
    f = fopen(empty, "wb");
    if (f) {
        fputs("<html><body>404</body></html>", f);
        fclose(f);
    }
    CHECK(mrt_image_read_file(empty, &back, &err) == MRT_ERR_IMAGE, "%s", err.message);
    CHECK(strstr(err.message, "empty.jpg: not a PNG or JPEG image (starts with 3c 68 74 6d \"<htm\")"),
          "%s", err.message);
    unlink(empty);
    unlink(path);
    free(a.rgb);
    free(b.rgb);
}

/* ------------------------------------------------------ writing JPEGs */

typedef struct {
    const uint8_t *pix;
    int w, h, comps;
    J_COLOR_SPACE in_cs, jpeg_cs; /* jpeg_cs JCS_UNKNOWN: libjpeg's default */
    int quality;
    int no_adobe;                 /* CMYK without the Adobe marker */
    int full_chroma;              /* 4:4:4 */
    const uint8_t *app1;
    unsigned app1_len;
    const jpeg_scan_info *scans;
    int nscans;
} jpeg_case;

static uint8_t *make_jpeg(const jpeg_case *c, size_t *len) {
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr); /* exits on error: fine for a test's own valid input */
    jpeg_create_compress(&ci);
    unsigned char *out = NULL;
    unsigned long outlen = 0;
    jpeg_mem_dest(&ci, &out, &outlen);
    ci.image_width = (JDIMENSION)c->w;
    ci.image_height = (JDIMENSION)c->h;
    ci.input_components = c->comps;
    ci.in_color_space = c->in_cs;
    jpeg_set_defaults(&ci);
    if (c->jpeg_cs != JCS_UNKNOWN) jpeg_set_colorspace(&ci, c->jpeg_cs);
    if (c->no_adobe) ci.write_Adobe_marker = FALSE;
    if (c->full_chroma)
        for (int i = 0; i < ci.num_components; i++)
            ci.comp_info[i].h_samp_factor = ci.comp_info[i].v_samp_factor = 1;
    jpeg_set_quality(&ci, c->quality, TRUE);
    if (c->scans) {
        ci.scan_info = c->scans;
        ci.num_scans = c->nscans;
    }
    jpeg_start_compress(&ci, TRUE);
    if (c->app1) jpeg_write_marker(&ci, JPEG_APP0 + 1, c->app1, c->app1_len);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = (JSAMPROW)(c->pix + (size_t)ci.next_scanline * c->w * c->comps);
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    *len = outlen;
    return out;
}

/* A smooth synthetic photo-like image with `comps` channels. */
static uint8_t *smooth_image(int w, int h, int comps) {
    uint8_t *p = malloc((size_t)w * h * comps);
    if (!p) exit(2);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < comps; k++) {
                double v = 128 + 90 * sin(x / (5.0 + k) + k) * cos(y / (7.0 + 2 * k)) +
                           20.0 * (x - w / 2.0) / w;
                p[((size_t)y * w + x) * comps + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    return p;
}

static void test_jpeg_basic(void) {
    /* RGB, 4:2:0 */
    {
        int w = 64, h = 48;
        uint8_t *pix = smooth_image(w, h, 3);
        jpeg_case c = {pix, w, h, 3, JCS_RGB, JCS_UNKNOWN, 95, 0, 0, NULL, 0, NULL, 0};
        size_t len;
        uint8_t *jpg = make_jpeg(&c, &len);
        mrt_image img;
        mrt_error err;
        CHECK(decode(jpg, len, &img, &err) == MRT_OK, "%s", err.message);
        CHECK(img.width == w && img.height == h, "%dx%d", img.width, img.height);
        double p = img.rgb ? psnr(img.rgb, pix, (size_t)w * h * 3) : 0;
        CHECK(p > 35, "RGB JPEG PSNR %.2f dB", p);
        printf("  JPEG RGB 64x48 q95: %zu bytes, %.1f dB\n", len, p);
        /* Garbage after EOI is ignored, and so are extraneous bytes before
         * the EOI marker (harmless: documented policy) */
        uint8_t *more = malloc(len + 16);
        memcpy(more, jpg, len);
        memset(more + len, 0xAB, 16);
        mrt_image img2;
        CHECK(decode(more, len + 16, &img2, &err) == MRT_OK, "trailing garbage: %s", err.message);
        mrt_image_free(&img2);
        memcpy(more, jpg, len - 2);
        memset(more + len - 2, 0x00, 5);
        memcpy(more + len + 3, jpg + len - 2, 2);
        CHECK(decode(more, len + 5, &img2, &err) == MRT_OK, "extraneous bytes: %s", err.message);
        CHECK(img.rgb && img2.rgb && memcmp(img.rgb, img2.rgb, (size_t)w * h * 3) == 0,
              "extraneous bytes changed the pixels");
        mrt_image_free(&img2);
        /* An EOI marker in the middle of the entropy data: libjpeg would
         * fill the rest with grey; we call it corrupt. */
        memcpy(more, jpg, len);
        more[len * 3 / 4] = 0xFF;
        more[len * 3 / 4 + 1] = 0xD9;
        CHECK(decode(more, len, &img2, &err) == MRT_ERR_IMAGE, "marker in data: %s",
              err.message);
        CHECK(strstr(err.message, "corrupt") != NULL, "%s", err.message);
        CHECK(img2.rgb == NULL, "no pixels on failure");
        free(more);
        mrt_image_free(&img);
        free(jpg);
        free(pix);
    }
    /* Grayscale, odd size, 4:4:4 RGB */
    {
        int w = 61, h = 37;
        uint8_t *pix = smooth_image(w, h, 1);
        jpeg_case c = {pix, w, h, 1, JCS_GRAYSCALE, JCS_UNKNOWN, 95, 0, 0, NULL, 0, NULL, 0};
        size_t len;
        uint8_t *jpg = make_jpeg(&c, &len);
        mrt_image img;
        mrt_error err;
        CHECK(decode(jpg, len, &img, &err) == MRT_OK, "%s", err.message);
        CHECK(img.width == w && img.height == h, "%dx%d", img.width, img.height);
        if (img.rgb) {
            int gray = 1;
            uint8_t *g = malloc((size_t)w * h);
            for (size_t i = 0; i < (size_t)w * h; i++) {
                gray &= img.rgb[3 * i] == img.rgb[3 * i + 1] && img.rgb[3 * i] == img.rgb[3 * i + 2];
                g[i] = img.rgb[3 * i];
            }
            CHECK(gray, "grayscale JPEG: R, G, B differ");
            double p = psnr(g, pix, (size_t)w * h);
            CHECK(p > 35, "gray JPEG PSNR %.2f dB", p);
            free(g);
        }
        mrt_image_free(&img);
        free(jpg);
        free(pix);
    }
    {
        int w = 33, h = 9;
        uint8_t *pix = smooth_image(w, h, 3);
        jpeg_case c = {pix, w, h, 3, JCS_RGB, JCS_RGB, 98, 0, 1, NULL, 0, NULL, 0};
        size_t len;
        uint8_t *jpg = make_jpeg(&c, &len);
        mrt_image img;
        mrt_error err;
        CHECK(decode(jpg, len, &img, &err) == MRT_OK, "%s", err.message);
        double p = img.rgb ? psnr(img.rgb, pix, (size_t)w * h * 3) : 0;
        CHECK(img.width == w && img.height == h && p > 35, "RGB-coded JPEG %dx%d %.2f dB",
              img.width, img.height, p);
        mrt_image_free(&img);
        free(jpg);
        free(pix);
    }
}

/* CMYK and YCCK: with the Adobe marker the stored values are inverted ink
 * (R = C*K/255), without it plain ink (R = (255-C)(255-K)/255). */
static void test_jpeg_cmyk(void) {
    int w = 40, h = 24;
    uint8_t *cmyk = smooth_image(w, h, 4);
    static const struct {
        J_COLOR_SPACE cs;
        int no_adobe;
    } kinds[] = {{JCS_CMYK, 0}, {JCS_YCCK, 0}, {JCS_CMYK, 1}};
    for (size_t k = 0; k < 3; k++) {
        uint8_t *want = malloc((size_t)w * h * 3);
        for (size_t i = 0; i < (size_t)w * h; i++)
            for (int c = 0; c < 3; c++) {
                double v = cmyk[4 * i + c], kk = cmyk[4 * i + 3];
                if (kinds[k].no_adobe) {
                    v = 255 - v;
                    kk = 255 - kk;
                }
                want[3 * i + c] = (uint8_t)floor(v * kk / 255.0 + 0.5);
            }
        jpeg_case c = {cmyk, w, h, 4, JCS_CMYK, kinds[k].cs, 98, kinds[k].no_adobe, 1,
                       NULL, 0, NULL, 0};
        size_t len;
        uint8_t *jpg = make_jpeg(&c, &len);
        mrt_image img;
        mrt_error err;
        CHECK(decode(jpg, len, &img, &err) == MRT_OK, "%s", err.message);
        double p = img.rgb ? psnr(img.rgb, want, (size_t)w * h * 3) : 0;
        CHECK(img.width == w && img.height == h && p > 35, "CMYK kind %zu: %dx%d %.2f dB", k,
              img.width, img.height, p);
        mrt_image_free(&img);
        free(jpg);
        free(want);
    }
    free(cmyk);
}

/* ---------------------------------------------------- EXIF orientation */

static void put16(uint8_t *p, unsigned v, int le) {
    p[le ? 0 : 1] = (uint8_t)v;
    p[le ? 1 : 0] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v, int le) {
    for (int i = 0; i < 4; i++) p[le ? i : 3 - i] = (uint8_t)(v >> (8 * i));
}

/* APP1 payload: "Exif\0\0", TIFF header, IFD0 with a Make tag and the
 * orientation tag. Returns the length. */
static unsigned make_exif(uint8_t *b, unsigned orientation, int le, unsigned type) {
    memset(b, 0, 64);
    memcpy(b, "Exif\0\0", 6);
    uint8_t *t = b + 6;
    t[0] = t[1] = le ? 'I' : 'M';
    put16(t + 2, 42, le);
    put32(t + 4, 8, le);
    put16(t + 8, 2, le);
    uint8_t *e = t + 10;
    put16(e, 0x010F, le); /* Make, ASCII, 4 bytes inline */
    put16(e + 2, 2, le);
    put32(e + 4, 4, le);
    memcpy(e + 8, "mrt", 4);
    e += 12;
    put16(e, 0x0112, le);
    put16(e + 2, type, le);
    put32(e + 4, 1, le);
    put16(e + 8, orientation, le);
    put32(e + 12, 0, le); /* no next IFD */
    return 6 + 10 + 24 + 4;
}

static void test_jpeg_orientation(void) {
    /* 32 x 16, quadrants 16 x 8: red, green / blue, white. */
    enum { R, G, B, W };
    static const uint8_t colors[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}};
    int w = 32, h = 16;
    uint8_t *pix = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            memcpy(pix + ((size_t)y * w + x) * 3, colors[(y >= 8) * 2 + (x >= 16)], 3);
    /* What a viewer shows in its top-left, top-right, bottom-left and
     * bottom-right quadrants, from the EXIF definitions. */
    static const int shown[9][4] = {
        {0, 0, 0, 0}, {R, G, B, W}, {G, R, W, B}, {W, B, G, R}, {B, W, R, G},
        {R, B, G, W}, {B, R, W, G}, {W, G, B, R}, {G, W, R, B},
    };
    for (int le = 0; le < 2; le++)
        for (unsigned o = 1; o <= 8; o++) {
            uint8_t exif[64];
            unsigned n = make_exif(exif, o, le, 3);
            jpeg_case c = {pix, w, h, 3, JCS_RGB, JCS_UNKNOWN, 95, 0, 1, exif, n, NULL, 0};
            size_t len;
            uint8_t *jpg = make_jpeg(&c, &len);
            mrt_image img;
            mrt_error err;
            CHECK(decode(jpg, len, &img, &err) == MRT_OK, "%s", err.message);
            int dw = o >= 5 ? h : w, dh = o >= 5 ? w : h;
            CHECK(img.width == dw && img.height == dh, "orientation %u: %dx%d, want %dx%d", o,
                  img.width, img.height, dw, dh);
            if (img.rgb && img.width == dw && img.height == dh)
                for (int q = 0; q < 4; q++) {
                    int x = (q & 1) ? dw * 3 / 4 : dw / 4, y = (q & 2) ? dh * 3 / 4 : dh / 4;
                    const uint8_t *p = img.rgb + ((size_t)y * dw + x) * 3;
                    const uint8_t *want = colors[shown[o][q]];
                    int ok = 1;
                    for (int k = 0; k < 3; k++) ok &= abs(p[k] - want[k]) < 40;
                    CHECK(ok, "orientation %u (%s) quadrant %d: got %d %d %d want %d %d %d", o,
                          le ? "II" : "MM", q, p[0], p[1], p[2], want[0], want[1], want[2]);
                }
            mrt_image_free(&img);
            free(jpg);
        }
    /* Malformed EXIF: ignored (orientation 1), never an error. */
    for (int variant = 0; variant < 6; variant++) {
        uint8_t exif[64];
        unsigned n = make_exif(exif, 6, 1, 3);
        switch (variant) {
        case 0: put32(exif + 10, 60000, 1); break;        /* IFD offset past the end */
        case 1: /* entry count past the end, cut inside the orientation entry */
            put16(exif + 14, 0xFFFF, 1);
            n = 6 + 10 + 12 + 6;
            break;
        case 2: n = 20; break;                            /* cut inside the IFD */
        case 3: make_exif(exif, 9, 1, 3); break;          /* value out of range */
        case 4: make_exif(exif, 6, 1, 4); break;          /* type LONG */
        case 5: exif[6] = 'X'; break;                     /* not a TIFF header */
        }
        jpeg_case c = {pix, w, h, 3, JCS_RGB, JCS_UNKNOWN, 90, 0, 1, exif, n, NULL, 0};
        size_t len;
        uint8_t *jpg = make_jpeg(&c, &len);
        mrt_image img;
        mrt_error err;
        CHECK(decode(jpg, len, &img, &err) == MRT_OK, "bad EXIF %d: %s", variant, err.message);
        CHECK(img.width == w && img.height == h, "bad EXIF %d: %dx%d", variant, img.width,
              img.height);
        mrt_image_free(&img);
        free(jpg);
    }
    free(pix);
}

/* ----------------------------------------------- progressive scan limit */

static void test_jpeg_scan_limit(void) {
    int w = 16, h = 16;
    uint8_t *pix = smooth_image(w, h, 1);
    /* DC, then each AC coefficient on its own, refined bit by bit from al0
     * down: 1 + 63*(al0+1) scans. */
    for (int al0 = 5; al0 <= 8; al0 += 3) {
        int n = 1 + 63 * (al0 + 1);
        jpeg_scan_info *s = calloc((size_t)n, sizeof *s);
        int i = 0;
        s[i].comps_in_scan = 1;
        i++;
        for (int k = 1; k < 64; k++)
            for (int al = al0; al >= 0; al--, i++) {
                s[i].comps_in_scan = 1;
                s[i].Ss = s[i].Se = k;
                s[i].Ah = al == al0 ? 0 : al + 1;
                s[i].Al = al;
            }
        jpeg_case c = {pix, w, h, 1, JCS_GRAYSCALE, JCS_UNKNOWN, 90, 0, 0, NULL, 0, s, n};
        size_t len;
        uint8_t *jpg = make_jpeg(&c, &len);
        mrt_image img;
        mrt_error err;
        mrt_status st = decode(jpg, len, &img, &err);
        if (n <= 500) {
            CHECK(st == MRT_OK, "%d scans: %s", n, err.message);
        } else {
            CHECK(st == MRT_ERR_IMAGE && strstr(err.message, "more than 500 scans"),
                  "%d scans: %s %s", n, mrt_status_name(st), err.message);
        }
        mrt_image_free(&img);
        free(jpg);
        free(s);
    }
    free(pix);
}

/* ------------------------------------------------------ hostile input */

static void check_all_truncations(const char *what, const uint8_t *data, size_t len) {
    int bad = 0;
    for (size_t n = 0; n < len; n++) {
        mrt_image img;
        mrt_error err;
        mrt_status st = decode(data, n, &img, &err);
        int ok = st == MRT_ERR_IMAGE && img.rgb == NULL && img.width == 0 &&
                 strstr(err.message, n ? "ended early" : "empty input") != NULL;
        if (!ok && bad++ < 5)
            CHECK(ok, "%s cut to %zu of %zu bytes: %s: %s", what, n, len, mrt_status_name(st),
                  err.message);
        mrt_image_free(&img);
    }
    CHECK(bad == 0, "%s: %d truncations not reported as such", what, bad);
    mrt_image img;
    mrt_error err;
    CHECK(decode(data, len, &img, &err) == MRT_OK, "%s whole: %s", what, err.message);
    mrt_image_free(&img);
}

/* Random byte changes: a decode may fail or succeed, but never crash, leak
 * or read out of bounds; a success must be a sane image. Returns the number
 * of successes. */
static int fuzz(const char *what, const uint8_t *data, size_t len, int iters, int max_flips) {
    int okn = 0;
    uint8_t *buf = malloc(len);
    for (int it = 0; it < iters; it++) {
        memcpy(buf, data, len);
        int flips = 1 + (int)(lcg() % (unsigned)max_flips);
        for (int f = 0; f < flips; f++) buf[lcg() % len] ^= (uint8_t)(1 + lcg() % 255);
        mrt_image img;
        mrt_error err;
        mrt_status st = decode(buf, len, &img, &err);
        if (st == MRT_OK) {
            okn++;
            CHECK(img.rgb && img.width >= 1 && img.height >= 1 &&
                      (long long)img.width * img.height <= MRT_MAX_PIXELS,
                  "%s fuzz %d: ok but %dx%d", what, it, img.width, img.height);
        } else {
            CHECK(img.rgb == NULL && err.message[0] && err.status == st,
                  "%s fuzz %d: failure without a message", what, it);
        }
        mrt_image_free(&img);
    }
    free(buf);
    return okn;
}

static void test_hostile(void) {
    /* A small PNG (RGBA, interlaced, so every path is in play) and JPEG. */
    png_case c;
    memset(&c, 0, sizeof c);
    c.w = 9;
    c.h = 6;
    c.color = PNG_COLOR_TYPE_RGB_ALPHA;
    c.depth = 8;
    c.interlace = 1;
    png_case_fill(&c, 0);
    size_t plen;
    uint8_t *png = make_png(&c, &plen);
    free(c.s);
    uint8_t *pix = smooth_image(24, 16, 3);
    jpeg_case jc = {pix, 24, 16, 3, JCS_RGB, JCS_UNKNOWN, 80, 0, 0, NULL, 0, NULL, 0};
    size_t jlen;
    uint8_t *jpg = make_jpeg(&jc, &jlen);
    size_t prlen;
    uint8_t *prog;
    { /* progressive variant via libjpeg's standard script */
        struct jpeg_compress_struct ci;
        struct jpeg_error_mgr jerr;
        ci.err = jpeg_std_error(&jerr);
        jpeg_create_compress(&ci);
        unsigned char *out = NULL;
        unsigned long outlen = 0;
        jpeg_mem_dest(&ci, &out, &outlen);
        ci.image_width = 24;
        ci.image_height = 16;
        ci.input_components = 3;
        ci.in_color_space = JCS_RGB;
        jpeg_set_defaults(&ci);
        jpeg_simple_progression(&ci);
        jpeg_start_compress(&ci, TRUE);
        while (ci.next_scanline < ci.image_height) {
            JSAMPROW row = (JSAMPROW)(pix + (size_t)ci.next_scanline * 24 * 3);
            jpeg_write_scanlines(&ci, &row, 1);
        }
        jpeg_finish_compress(&ci);
        jpeg_destroy_compress(&ci);
        prog = out;
        prlen = outlen;
    }

    /* Every truncation: an error that says the data ended early. For JPEG
     * that includes a cut inside the entropy-coded data (libjpeg would
     * return a picture with a grey bottom; we refuse it). */
    check_all_truncations("PNG", png, plen);
    check_all_truncations("JPEG", jpg, jlen);
    check_all_truncations("progressive JPEG", prog, prlen);

    /* Seeded random corruption. Every single-byte change to a PNG is caught
     * (CRCs cover every chunk; the signature and lengths frame them). */
    int png_single_ok = fuzz("PNG 1 flip", png, plen, 1000, 1);
    CHECK(png_single_ok == 0, "%d single-byte PNG corruptions went unnoticed", png_single_ok);
    fuzz("PNG", png, plen, 1000, 8);
    int jok = fuzz("JPEG", jpg, jlen, 1500, 4);
    int pok = fuzz("progressive JPEG", prog, prlen, 1000, 4);
    printf("  fuzz: %d/1500 baseline and %d/1000 progressive JPEG corruptions decoded without "
           "complaint\n", jok, pok);

    /* CRC errors: in IDAT (critical) and in a tEXt chunk (ancillary). */
    {
        uint8_t *b = dup_bytes(png, plen);
        b[plen - 12 - 1] ^= 0x01; /* IDAT's CRC (IEND is the last 12 bytes) */
        mrt_image img;
        mrt_error err;
        CHECK(decode(b, plen, &img, &err) == MRT_ERR_IMAGE && strstr(err.message, "CRC"),
              "IDAT CRC: %s", err.message);
        /* The last IDAT data byte is zlib's Adler-32: caught before the CRC. */
        b[plen - 12 - 1] ^= 0x01;
        b[plen - 12 - 5] ^= 0x01;
        CHECK(decode(b, plen, &img, &err) == MRT_ERR_IMAGE && strstr(err.message, "data check"),
              "Adler-32: %s", err.message);
        free(b);
        /* tEXt after IHDR (8 + 25 bytes in) */
        static const char text[] = "tEXtComment\0hello";
        size_t tl = sizeof text - 1, clen = 12 + tl - 4;
        uint8_t *t = malloc(plen + clen);
        memcpy(t, png, 33);
        put_be32(t + 33, (uint32_t)(tl - 4));
        memcpy(t + 37, text, tl);
        put_be32(t + 37 + tl, crc32_of(t + 37, tl));
        memcpy(t + 33 + clen, png + 33, plen - 33);
        CHECK(decode(t, plen + clen, &img, &err) == MRT_OK, "valid tEXt: %s", err.message);
        mrt_image_free(&img);
        t[37 + tl] ^= 0x40;
        CHECK(decode(t, plen + clen, &img, &err) == MRT_ERR_IMAGE && strstr(err.message, "CRC"),
              "tEXt CRC: %s %s", mrt_status_name(err.status), err.message);
        free(t);
    }

    /* Oversize headers: refused at once, before any pixel memory. The PNG
     * is signature + IHDR only (valid CRC); the JPEG is a real one with the
     * size in its SOF0 patched. */
    {
        static const uint32_t dims[][3] = {
            {100000, 100000, MRT_ERR_TOO_BIG}, {70000, 1, MRT_ERR_TOO_BIG},
            {1, 70000, MRT_ERR_TOO_BIG},       {8193, 8193, MRT_ERR_TOO_BIG},
            {0xFFFFFFFFu, 1, MRT_ERR_TOO_BIG}, {0, 5, MRT_ERR_IMAGE},
            {65535, 1024, MRT_ERR_IMAGE}, /* allowed size, but no data: ended early */
        };
        double t0 = now_s();
        for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
            uint8_t h[33];
            memcpy(h, png, 8);
            put_be32(h + 8, 13);
            memcpy(h + 12, "IHDR", 4);
            put_be32(h + 16, dims[i][0]);
            put_be32(h + 20, dims[i][1]);
            h[24] = 8;
            h[25] = 2;
            h[26] = h[27] = h[28] = 0;
            put_be32(h + 29, crc32_of(h + 12, 17));
            mrt_image img;
            mrt_error err;
            mrt_status st = decode(h, sizeof h, &img, &err);
            char want[64];
            snprintf(want, sizeof want, "%u x %u", dims[i][0], dims[i][1]);
            CHECK(st == (mrt_status)dims[i][2] && (st != MRT_ERR_TOO_BIG || strstr(err.message, want)),
                  "PNG %s: %s %s", want, mrt_status_name(st), err.message);
            CHECK(img.rgb == NULL, "pixels on failure");
        }
        /* JPEG: find SOF0 (FF C0 len prec H H W W) */
        size_t sof = 0;
        for (size_t i = 2; i + 9 < jlen; i++)
            if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) {
                sof = i;
                break;
            }
        CHECK(sof > 0, "no SOF0 in the test JPEG");
        static const unsigned jd[][2] = {{65535, 65535}, {65535, 1}, {20000, 20000}, {8193, 8192}};
        for (size_t i = 0; sof && i < sizeof jd / sizeof jd[0]; i++) {
            uint8_t *b = dup_bytes(jpg, jlen);
            b[sof + 5] = (uint8_t)(jd[i][1] >> 8);
            b[sof + 6] = (uint8_t)jd[i][1];
            b[sof + 7] = (uint8_t)(jd[i][0] >> 8);
            b[sof + 8] = (uint8_t)jd[i][0];
            mrt_image img;
            mrt_error err;
            mrt_status st = decode(b, jlen, &img, &err);
            char want[64];
            snprintf(want, sizeof want, "%u x %u", jd[i][0], jd[i][1]);
            CHECK(st == MRT_ERR_TOO_BIG && strstr(err.message, want), "JPEG %s: %s %s", want,
                  mrt_status_name(st), err.message);
            free(b);
        }
        double dt = now_s() - t0;
        CHECK(dt < 0.5, "oversize headers took %.3f s: pixel memory allocated first?", dt);
    }

    /* Not an image, empty, NULL. */
    {
        mrt_image img = {7, 7, (uint8_t *)1};
        mrt_error err;
        const char *html = "<html><head><title>404";
        CHECK(decode((const uint8_t *)html, strlen(html), &img, &err) == MRT_ERR_IMAGE &&
                  strstr(err.message, "not a PNG or JPEG image (starts with 3c 68 74 6d"),
              "%s", err.message);
        CHECK(img.rgb == NULL && img.width == 0 && img.height == 0, "out not cleared");
        const uint8_t bin[] = {0x00, 0x01, 0xFE};
        CHECK(mrt_image_read_memory(bin, 3, &img, &err) == MRT_ERR_IMAGE &&
                  strstr(err.message, "(starts with 00 01 fe)"),
              "%s", err.message);
        CHECK(mrt_image_read_memory(html, 0, &img, &err) == MRT_ERR_IMAGE &&
                  strstr(err.message, "empty input"),
              "%s", err.message);
        CHECK(mrt_image_read_memory(NULL, 0, &img, &err) == MRT_ERR_IMAGE, "%s", err.message);
        CHECK(mrt_image_read_memory(NULL, 10, &img, &err) == MRT_ERR_ARGUMENT, "%s", err.message);
        CHECK(mrt_image_read_memory(html, 5, NULL, &err) == MRT_ERR_ARGUMENT, "%s", err.message);
        CHECK(mrt_image_read_memory(html, 5, &img, NULL) == MRT_ERR_IMAGE, "err NULL");
        CHECK(mrt_image_read_memory(png, plen, &img, NULL) == MRT_OK, "err NULL, valid PNG");
        mrt_image_free(&img);
        CHECK(mrt_image_read_file(NULL, &img, &err) == MRT_ERR_ARGUMENT, "%s", err.message);
        CHECK(mrt_image_read_file("x", NULL, &err) == MRT_ERR_ARGUMENT, "%s", err.message);
        /* A reused mrt_error is reset by a success. */
        err.status = MRT_ERR_IO;
        snprintf(err.message, sizeof err.message, "stale");
        CHECK(mrt_image_read_memory(jpg, jlen, &img, &err) == MRT_OK && err.status == MRT_OK &&
                  err.message[0] == '\0',
              "error not reset: %s", err.message);
        mrt_image_free(&img);
        mrt_image_free(&img); /* twice is fine */
        mrt_image_free(NULL);
    }

    /* The writer refuses invalid images. */
    {
        uint8_t px[3] = {1, 2, 3};
        uint8_t *out = (uint8_t *)1;
        size_t out_len = 99;
        mrt_error err;
        mrt_image bad[] = {{1, 1, NULL}, {0, 1, px}, {1, -1, px}, {70000, 1, px},
                           {8192, 8193, px}};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            CHECK(mrt_image_write_png_memory(&bad[i], &out, &out_len, &err) == MRT_ERR_ARGUMENT,
                  "bad image %zu: %s", i, err.message);
            CHECK(out == NULL && out_len == 0, "outputs not cleared");
            CHECK(mrt_image_write_png_file(&bad[i], "/nonexistent/x.png", &err) == MRT_ERR_ARGUMENT,
                  "bad image %zu to file: %s", i, err.message);
        }
        mrt_image one = {1, 1, px};
        CHECK(mrt_image_write_png_memory(NULL, &out, &out_len, &err) == MRT_ERR_ARGUMENT, "%s",
              err.message);
        CHECK(mrt_image_write_png_memory(&one, NULL, &out_len, &err) == MRT_ERR_ARGUMENT, "%s",
              err.message);
        CHECK(mrt_image_write_png_memory(&one, &out, NULL, &err) == MRT_ERR_ARGUMENT, "%s",
              err.message);
        CHECK(mrt_image_write_png_file(&one, NULL, &err) == MRT_ERR_ARGUMENT, "%s", err.message);
        mrt_free(NULL);
    }
    free(png);
    free(jpg);
    free(prog);
    free(pix);
}

/* ------------------------------------------------------------ samples/ */

/* The shipped sample photos decode to the documented sizes (run from tests/,
 * as ctest does), grayscale ones to R = G = B, and survive a PNG round trip. */
static void test_samples(void) {
    static const struct {
        const char *file;
        int w, h, gray;
    } samples[] = {
        {"../samples/astronaut.jpg", 363, 512, 0}, {"../samples/coffee.jpg", 600, 400, 0},
        {"../samples/chelsea.png", 451, 300, 0},   {"../samples/camera.png", 512, 512, 1},
        {"../samples/gravel.jpg", 384, 384, 1},
    };
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        mrt_image img;
        mrt_error err;
        CHECK(mrt_image_read_file(samples[i].file, &img, &err) == MRT_OK, "%s", err.message);
        if (!img.rgb) continue;
        CHECK(img.width == samples[i].w && img.height == samples[i].h, "%s: %dx%d",
              samples[i].file, img.width, img.height);
        size_t n = (size_t)img.width * img.height;
        int gray = 1;
        for (size_t k = 0; k < n; k++)
            gray &= img.rgb[3 * k] == img.rgb[3 * k + 1] && img.rgb[3 * k] == img.rgb[3 * k + 2];
        CHECK(gray == samples[i].gray, "%s: gray %d", samples[i].file, gray);
        uint8_t *png;
        size_t len;
        mrt_image back;
        CHECK(mrt_image_write_png_memory(&img, &png, &len, &err) == MRT_OK, "%s", err.message);
        CHECK(mrt_image_read_memory(png, len, &back, &err) == MRT_OK && back.rgb &&
                  memcmp(back.rgb, img.rgb, n * 3) == 0,
              "%s: PNG round trip differs", samples[i].file);
        mrt_image_free(&back);
        mrt_free(png);
        mrt_image_free(&img);
    }
}

/* ---------------------------------------------------- status and errors */

static void test_status(void) {
    CHECK(strcmp(mrt_status_name(MRT_OK), "MRT_OK") == 0, "OK");
    CHECK(strcmp(mrt_status_name(MRT_ERR_TOO_BIG), "MRT_ERR_TOO_BIG") == 0, "TOO_BIG");
    CHECK(strcmp(mrt_status_name(MRT_ERR_MODEL_MISMATCH), "MRT_ERR_MODEL_MISMATCH") == 0, "MM");
    CHECK(strcmp(mrt_status_name((mrt_status)999), "MRT_ERR_UNKNOWN") == 0, "unknown");
    for (int s = MRT_OK; s <= MRT_ERR_MODEL_MISMATCH; s++)
        CHECK(strncmp(mrt_status_name((mrt_status)s), "MRT_", 4) == 0, "status %d", s);

    mrt_error err;
    CHECK(mrt_fail(&err, MRT_ERR_CORRUPT, "stream %d of %s", 2, "x") == MRT_ERR_CORRUPT &&
              err.status == MRT_ERR_CORRUPT && strcmp(err.message, "stream 2 of x") == 0,
          "%s", err.message);
    mrt_fail(&err, err.status, "%s: %s", "a.mrt", err.message); /* prefix with itself */
    CHECK(strcmp(err.message, "a.mrt: stream 2 of x") == 0, "%s", err.message);
    char longs[2000];
    memset(longs, 'z', sizeof longs - 1);
    longs[sizeof longs - 1] = '\0';
    mrt_fail(&err, MRT_ERR_IO, "%s", longs);
    CHECK(strlen(err.message) == sizeof err.message - 1, "long message not cut: %zu",
          strlen(err.message));
    CHECK(mrt_fail(NULL, MRT_ERR_IO, "x") == MRT_ERR_IO, "NULL err");
    CHECK(mrt_ok(&err) == MRT_OK && err.status == MRT_OK && err.message[0] == '\0', "ok");
    char eb[64];
    CHECK(strstr(mrt_strerror(ENOENT, eb, sizeof eb), "No such file") != NULL, "%s", eb);
}

int main(void) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/mrt_test_image_XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 2;
    }
    double t0 = now_s();
    test_status();
    test_png_formats();
    test_png_alpha_values();
    test_png_round_trip();
    test_jpeg_basic();
    test_jpeg_cmyk();
    test_jpeg_orientation();
    test_jpeg_scan_limit();
    test_hostile();
    test_samples();
    rmdir(tmp_dir);
    printf("  %.2f s\n", now_s() - t0);
    return tu_finish("test_image");
}
