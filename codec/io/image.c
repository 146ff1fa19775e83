/*
 * image.c -- PNG and JPEG in, PNG out, through libpng and libjpeg-turbo.
 *
 * The rules (mrt.h, "images", is the short version for callers):
 *
 * Input
 *   - The format comes from the signature: PNG's 8 bytes, JPEG's FF D8 FF.
 *   - Bounds first: the PNG IHDR is read straight from the bytes, and the
 *     JPEG SOF by jpeg_read_header, and width, height and width*height are
 *     checked against MRT_MAX_SIDE / MRT_MAX_PIXELS before any pixel memory
 *     is allocated. Memory is then bounded by the pixel count: at most one
 *     output image (3 bytes a pixel) plus one decode buffer (an interlaced
 *     16-bit RGBA PNG: 8 bytes a pixel; an EXIF-rotated JPEG: 3).
 *   - Everything is read up to the end marker (PNG IEND, JPEG EOI), so a
 *     file cut anywhere is an error ("data ended early"), never a picture
 *     with a grey or black bottom.
 *
 * PNG
 *   - Palette, gray and 1/2/4-bit samples are expanded to 8 bits, gray
 *     becomes R = G = B, tRNS becomes an alpha channel, interlacing is
 *     undone (libpng's transforms). 16-bit samples are kept to the end and
 *     rounded once: out = round(v * 255 / 65535).
 *   - Alpha is composited onto white on the stored (sRGB-encoded) values,
 *     as browsers do, rounding to nearest:
 *         8-bit:  out = (c*a + 255*(255-a) + 127) / 255
 *         16-bit: out = round((c*a + 65535*(65535-a)) * 255 / 65535^2)
 *     (integer arithmetic; no ties are possible since 255 and 65535^2 are
 *     odd). An 8-bit image expanded to 16 bits by v*257 gives the same
 *     result under either formula.
 *   - gAMA, cHRM, sRGB, iCCP, sBIT and eXIf are ignored: samples are taken
 *     as sRGB, and PNG orientation metadata (rare) is not applied.
 *   - Any CRC error, critical or ancillary chunk, is an error: a damaged
 *     file is reported, not half-trusted. libpng's "benign" errors (an
 *     odd ICC profile, extra zlib data after the image) stay warnings, and
 *     warnings are dropped: a library must not print to stderr.
 *   - libpng's own limits are set too (sides <= MRT_MAX_SIDE, at most 8 MiB
 *     for one ancillary chunk, 1000 ancillary chunks) as a second line.
 *
 * JPEG
 *   - Decoded with libjpeg's defaults (accurate integer IDCT, smooth chroma
 *     upsampling) to RGB; grayscale becomes R = G = B.
 *   - CMYK and YCCK are decoded to CMYK and converted here without a colour
 *     profile: R = (255-C)(255-K)/255 (likewise G with M, B with Y), rounded.
 *     Files with an Adobe APP14 marker (Photoshop: nearly all CMYK JPEGs)
 *     store inverted ink values, so there R = C*K/255.
 *   - Corruption policy: libjpeg "warnings" about the data itself
 *     (premature end of file, premature end of a data segment, bad Huffman
 *     or arithmetic code, a lost restart marker, a broken progression) are
 *     errors, because libjpeg's answer to them is to fill the rest of the
 *     picture with grey, and a user archiving photos has to know. Four
 *     warnings are ignored as harmless to the pixels: an unknown JFIF
 *     revision, an unknown Adobe transform code, a bad ICC marker (ICC is
 *     not used) and extraneous bytes before a marker (padding after the
 *     entropy data, written by some cameras). Corruption that decodes
 *     without complaint (a flipped bit inside the entropy data) cannot be
 *     seen by any decoder and gives a changed picture.
 *   - A progressive JPEG with more than 500 scans is refused: each scan may
 *     re-decode the whole image, so a small file could otherwise take
 *     minutes (libjpeg-turbo's TJFLAG_LIMITSCANS uses the same bound).
 *   - The EXIF orientation tag (APP1 "Exif", IFD0 tag 0x0112, values 2-8)
 *     is applied, so the picture comes out the way viewers show it; values
 *     5-8 swap width and height. A malformed EXIF block is ignored, never
 *     an error (the pixels are fine).
 *
 * Output
 *   - 8-bit RGB PNG, not interlaced, every row Paeth-filtered and deflated
 *     with zlib's run-length strategy (Z_RLE). The writer's pictures are
 *     decoded photos, smooth at these rates: after the Paeth predictor they
 *     are mostly runs of small values, which Z_RLE codes about 10x faster
 *     than libpng's default (adaptive filters, level 6) and, on the decoded
 *     samples/, 9 % smaller (1,144,339 bytes against 1,252,082; bench/
 *     README.md). On sharp originals it would be about 35 % larger, but
 *     the codec never writes those.
 *   - To a file: made in memory, then written by mrt_write_file_atomic
 *     (files.c: a temporary file beside <path>, fsync'ed, renamed over
 *     it), so a crash leaves either the old file or the new one (plus, at
 *     worst, a stray temp file), never half a PNG.
 *
 * libpng and libjpeg report errors by calling a function that must not
 * return; ours longjmp back. All state that lives across a setjmp is kept
 * in a job struct owned by the caller of the function that calls setjmp,
 * so no local variable is read after a longjmp (C11 7.13.2.1), and the
 * caller frees everything the job holds whichever way it ended. There is
 * no global state: any number of threads may decode and encode at once.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>
#include <zlib.h>
/* jpeglib.h needs FILE and size_t declared before it. */
#include <jpeglib.h>
#include <jerror.h>

#include "status.h"

#define MRT_JPEG_MAX_SCANS 500
#define MRT_PNG_MAX_CHUNK_BYTES (8u << 20)
#define MRT_PNG_MAX_ANCILLARY_CHUNKS 1000u

static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

/* ------------------------------------------------------------- helpers */

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The size checks every reader and the writer share. `what` names the
 * format in the message ("PNG"). A zero side is a broken header (IMAGE),
 * a large one is a refusal (TOO_BIG). */
static mrt_status check_dims(const char *what, uint64_t w, uint64_t h, mrt_error *err) {
    if (w == 0 || h == 0)
        return mrt_fail(err, MRT_ERR_IMAGE, "%s header says %llu x %llu pixels: a side is zero",
                        what, (unsigned long long)w, (unsigned long long)h);
    if (w > MRT_MAX_SIDE || h > MRT_MAX_SIDE)
        return mrt_fail(err, MRT_ERR_TOO_BIG,
                        "%s image is %llu x %llu pixels: a side is over the limit of %d", what,
                        (unsigned long long)w, (unsigned long long)h, MRT_MAX_SIDE);
    if (w * h > (uint64_t)MRT_MAX_PIXELS)
        return mrt_fail(err, MRT_ERR_TOO_BIG,
                        "%s image is %llu x %llu = %llu pixels, over the limit of %lld (8192 x 8192)",
                        what, (unsigned long long)w, (unsigned long long)h,
                        (unsigned long long)(w * h), (long long)MRT_MAX_PIXELS);
    return MRT_OK;
}

/* ------------------------------------------------------------- PNG in */

typedef struct png_in_job {
    jmp_buf jmp;
    const uint8_t *data;
    size_t len, pos;
    int truncated;      /* the read callback ran out of bytes */
    char msg[256];      /* libpng's reason, when it failed */
    png_structp png;
    png_infop info;
    uint8_t *rgb;       /* the result, w*h*3; handed over on success */
    uint8_t *buf;       /* one decoded row, or the whole image if interlaced */
    png_bytep *rows;    /* row pointers for png_read_image */
    uint32_t w, h;
} png_in_job;

static void png_in_error(png_structp png, png_const_charp msg) {
    png_in_job *j = png_get_error_ptr(png);
    snprintf(j->msg, sizeof j->msg, "%s", msg);
    longjmp(j->jmp, 1);
}

/* Warnings are about ancillary data we do not use: drop them silently. */
static void png_quiet_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

static void png_in_read(png_structp png, png_bytep out, size_t n) {
    png_in_job *j = png_get_io_ptr(png);
    if (n > j->len - j->pos) {
        j->truncated = 1;
        png_error(png, "data ended early");
    }
    memcpy(out, j->data + j->pos, n);
    j->pos += n;
}

/* One decoded row (3 or 4 channels of 8 or 16 bits, 16-bit big-endian as
 * PNG stores it) to 8-bit RGB, with the rounding and compositing above. */
static void png_row_to_rgb(const uint8_t *src, uint8_t *dst, uint32_t w, int channels,
                           int depth) {
    if (depth == 8 && channels == 3) {
        if (src != dst) memcpy(dst, src, (size_t)w * 3);
    } else if (depth == 8) {
        for (uint32_t x = 0; x < w; x++, src += 4, dst += 3) {
            uint32_t a = src[3];
            for (int k = 0; k < 3; k++)
                dst[k] = (uint8_t)((src[k] * a + 255u * (255u - a) + 127u) / 255u);
        }
    } else if (channels == 3) {
        for (uint32_t x = 0; x < w; x++, src += 6, dst += 3)
            for (int k = 0; k < 3; k++) {
                uint32_t v = (uint32_t)src[2 * k] << 8 | src[2 * k + 1];
                dst[k] = (uint8_t)((v * 255u + 32767u) / 65535u);
            }
    } else {
        const uint64_t d = 65535ull * 65535ull;
        for (uint32_t x = 0; x < w; x++, src += 8, dst += 3) {
            uint64_t a = (uint64_t)src[6] << 8 | src[7];
            for (int k = 0; k < 3; k++) {
                uint64_t c = (uint64_t)src[2 * k] << 8 | src[2 * k + 1];
                uint64_t v = c * a + 65535u * (65535u - a); /* composited, scaled by 65535 */
                dst[k] = (uint8_t)((2 * v * 255u + d) / (2 * d));
            }
        }
    }
}

/* Decodes j->data into j->rgb. Returns MRT_OK or a status with `err`
 * filled; either way the caller frees what j holds. */
static mrt_status png_decode(png_in_job *j, mrt_error *err) {
    if (setjmp(j->jmp)) {
        if (j->truncated)
            return mrt_fail(err, MRT_ERR_IMAGE,
                            "PNG data ended early: the file is truncated (%zu bytes)", j->len);
        if (strstr(j->msg, "out of memory") || strstr(j->msg, "Out of memory"))
            return mrt_fail(err, MRT_ERR_NOMEM, "PNG: libpng: %s", j->msg);
        return mrt_fail(err, MRT_ERR_IMAGE, "corrupt or unsupported PNG: %s", j->msg);
    }
    j->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, j, png_in_error, png_quiet_warning);
    if (!j->png) return mrt_fail(err, MRT_ERR_NOMEM, "PNG: cannot create a libpng reader");
    j->info = png_create_info_struct(j->png);
    if (!j->info) return mrt_fail(err, MRT_ERR_NOMEM, "PNG: cannot create a libpng reader");
    png_set_read_fn(j->png, j, png_in_read);
    png_set_user_limits(j->png, MRT_MAX_SIDE, MRT_MAX_SIDE);
    png_set_chunk_malloc_max(j->png, MRT_PNG_MAX_CHUNK_BYTES);
    png_set_chunk_cache_max(j->png, MRT_PNG_MAX_ANCILLARY_CHUNKS);
    png_set_crc_action(j->png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);

    png_read_info(j->png, j->info);
    png_uint_32 w, h;
    int depth, color, interlace;
    png_get_IHDR(j->png, j->info, &w, &h, &depth, &color, &interlace, NULL, NULL);
    /* Already checked on the raw IHDR bytes; again here so that this
     * function is safe on its own. */
    mrt_status st = check_dims("PNG", w, h, err);
    if (st != MRT_OK) return st;
    j->w = w;
    j->h = h;

    if (color == PNG_COLOR_TYPE_PALETTE || depth < 8 || png_get_valid(j->png, j->info, PNG_INFO_tRNS))
        png_set_expand(j->png); /* palette -> RGB, 1/2/4-bit -> 8, tRNS -> alpha */
    if (!(color & PNG_COLOR_MASK_COLOR)) png_set_gray_to_rgb(j->png);
    int passes = png_set_interlace_handling(j->png);
    png_read_update_info(j->png, j->info);

    int channels = png_get_channels(j->png, j->info);
    int odepth = png_get_bit_depth(j->png, j->info);
    size_t rowbytes = png_get_rowbytes(j->png, j->info);
    if ((channels != 3 && channels != 4) || (odepth != 8 && odepth != 16) ||
        rowbytes != (size_t)w * (size_t)channels * (size_t)(odepth / 8))
        return mrt_fail(err, MRT_ERR_IMAGE,
                        "PNG: unexpected layout after expansion (%d channels of %d bits, %zu "
                        "bytes a row)",
                        channels, odepth, rowbytes);

    size_t out_row = (size_t)w * 3;
    j->rgb = malloc(out_row * h);
    if (!j->rgb)
        return mrt_fail(err, MRT_ERR_NOMEM, "PNG: out of memory for %u x %u pixels", (unsigned)w,
                        (unsigned)h);
    int direct = channels == 3 && odepth == 8; /* libpng can write straight into j->rgb */

    if (passes > 1) {
        /* Interlaced: every pass revisits every row, so the whole image
         * must be in memory in libpng's layout before it is converted. */
        j->rows = malloc(sizeof *j->rows * h);
        if (!direct) j->buf = malloc(rowbytes * h);
        if (!j->rows || (!direct && !j->buf))
            return mrt_fail(err, MRT_ERR_NOMEM, "PNG: out of memory for an interlaced image");
        uint8_t *base = direct ? j->rgb : j->buf;
        size_t stride = direct ? out_row : rowbytes;
        for (uint32_t y = 0; y < h; y++) j->rows[y] = base + (size_t)y * stride;
        png_read_image(j->png, j->rows);
        if (!direct)
            for (uint32_t y = 0; y < h; y++)
                png_row_to_rgb(j->rows[y], j->rgb + (size_t)y * out_row, w, channels, odepth);
    } else {
        if (!direct) {
            j->buf = malloc(rowbytes);
            if (!j->buf) return mrt_fail(err, MRT_ERR_NOMEM, "PNG: out of memory for a row");
        }
        for (uint32_t y = 0; y < h; y++) {
            uint8_t *dst = j->rgb + (size_t)y * out_row;
            png_read_row(j->png, direct ? dst : j->buf, NULL);
            if (!direct) png_row_to_rgb(j->buf, dst, w, channels, odepth);
        }
    }
    /* Through IEND: the trailing zlib checksum and every CRC get checked,
     * and a file cut after the last row is still reported. */
    png_read_end(j->png, NULL);
    return MRT_OK;
}

static mrt_status read_png(const uint8_t *data, size_t len, mrt_image *out, mrt_error *err) {
    /* Bounds first, straight from the bytes: IHDR must be the first chunk,
     * at offset 8 (length 13, "IHDR", width, height). A file that does not
     * have it there is left to libpng to reject. */
    if (len >= 24 && memcmp(data + 12, "IHDR", 4) == 0) {
        mrt_status st = check_dims("PNG", be32(data + 16), be32(data + 20), err);
        if (st != MRT_OK) return st;
    }
    png_in_job j;
    memset(&j, 0, sizeof j);
    j.data = data;
    j.len = len;
    mrt_status st = png_decode(&j, err);
    if (j.png) png_destroy_read_struct(&j.png, j.info ? &j.info : NULL, NULL);
    free(j.rows);
    free(j.buf);
    if (st != MRT_OK) {
        free(j.rgb);
        return st;
    }
    out->width = (int)j.w;
    out->height = (int)j.h;
    out->rgb = j.rgb;
    return mrt_ok(err);
}

/* ------------------------------------------------------------ JPEG in */

typedef struct jpeg_in_job {
    jmp_buf jmp;
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr jerr;
    struct jpeg_progress_mgr progress;
    int created;        /* jpeg_create_decompress has run */
    int msg_code;       /* libjpeg's message code for the failure, or -1 */
    char msg[JMSG_LENGTH_MAX + 64];
    uint8_t *rgb;       /* the result; handed over on success */
    uint8_t *row;       /* one CMYK row */
    uint32_t w, h;
} jpeg_in_job;

static void jpeg_in_fail(j_common_ptr c) {
    jpeg_in_job *j = c->client_data;
    char text[JMSG_LENGTH_MAX];
    (*c->err->format_message)(c, text);
    j->msg_code = c->err->msg_code;
    snprintf(j->msg, sizeof j->msg, "%s", text);
    longjmp(j->jmp, 1);
}

/* Warnings that leave the pixels intact; every other warning fails the
 * decode (the corruption policy at the top of this file). */
static int jpeg_warning_is_harmless(int code) {
    return code == JWRN_JFIF_MAJOR || code == JWRN_ADOBE_XFORM || code == JWRN_BOGUS_ICC ||
           code == JWRN_EXTRANEOUS_DATA;
}

static void jpeg_in_emit(j_common_ptr c, int level) {
    if (level >= 0) return; /* trace messages */
    if (jpeg_warning_is_harmless(c->err->msg_code)) return;
    jpeg_in_fail(c);
}

/* libjpeg's default prints to stderr; a library must not. */
static void jpeg_quiet_output(j_common_ptr c) { (void)c; }

static void jpeg_in_progress(j_common_ptr c) {
    j_decompress_ptr d = (j_decompress_ptr)c;
    if (d->progressive_mode && d->input_scan_number > MRT_JPEG_MAX_SCANS) {
        jpeg_in_job *j = c->client_data;
        j->msg_code = -1;
        snprintf(j->msg, sizeof j->msg, "progressive JPEG with more than %d scans",
                 MRT_JPEG_MAX_SCANS);
        longjmp(j->jmp, 1);
    }
}

static unsigned rd16(const uint8_t *p, int le) {
    return le ? (unsigned)p[0] | (unsigned)p[1] << 8 : (unsigned)p[0] << 8 | p[1];
}

static uint32_t rd32(const uint8_t *p, int le) {
    return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
              : be32(p);
}

/* The EXIF orientation (1-8) from the first APP1 "Exif" marker; 1 when
 * there is none or it is malformed. Every offset is checked against the
 * marker's length before it is read. */
static int jpeg_exif_orientation(j_decompress_ptr ci) {
    for (jpeg_saved_marker_ptr m = ci->marker_list; m; m = m->next) {
        if (m->marker != JPEG_APP0 + 1 || m->data_length < 6 + 8 ||
            memcmp(m->data, "Exif\0\0", 6) != 0)
            continue;
        const uint8_t *t = m->data + 6; /* the TIFF header; offsets count from here */
        size_t n = m->data_length - 6;
        int le;
        if (t[0] == 'I' && t[1] == 'I')
            le = 1;
        else if (t[0] == 'M' && t[1] == 'M')
            le = 0;
        else
            return 1;
        if (rd16(t + 2, le) != 42) return 1;
        uint32_t ifd = rd32(t + 4, le);
        if (ifd > n || n - ifd < 2) return 1;
        unsigned count = rd16(t + ifd, le);
        for (unsigned i = 0; i < count; i++) {
            size_t e = (size_t)ifd + 2 + (size_t)12 * i;
            if (e > n || n - e < 12) return 1;
            if (rd16(t + e, le) != 0x0112) continue;
            /* type 3 = SHORT, one value, stored in the first 2 value bytes */
            if (rd16(t + e + 2, le) != 3 || rd32(t + e + 4, le) != 1) return 1;
            unsigned v = rd16(t + e + 8, le);
            return v >= 1 && v <= 8 ? (int)v : 1;
        }
        return 1; /* only the first EXIF block counts, as in viewers */
    }
    return 1;
}

/* Applies EXIF orientation o to the w x h image *rgb, replacing it (and
 * swapping *w, *h for 5-8). Display pixel (x, y) comes from stored pixel
 * (sx, sy), with W, H the stored size:
 *   2 mirror:     (W-1-x, y)      5 transpose:  (y, x)
 *   3 rotate 180: (W-1-x, H-1-y)  6 rotate 90 cw:  (y, H-1-x)
 *   4 flip:       (x, H-1-y)      7 transverse: (W-1-y, H-1-x)
 *                                 8 rotate 90 ccw: (W-1-y, x)        */
static mrt_status jpeg_apply_orientation(uint8_t **rgb, uint32_t *w, uint32_t *h, int o,
                                         mrt_error *err) {
    if (o <= 1 || o > 8) return MRT_OK;
    uint32_t W = *w, H = *h;
    uint32_t dw = o >= 5 ? H : W, dh = o >= 5 ? W : H;
    uint8_t *dst = malloc((size_t)W * H * 3);
    if (!dst) return mrt_fail(err, MRT_ERR_NOMEM, "JPEG: out of memory rotating the image");
    const uint8_t *src = *rgb;
    for (uint32_t y = 0; y < dh; y++) {
        uint8_t *d = dst + (size_t)y * dw * 3;
        for (uint32_t x = 0; x < dw; x++, d += 3) {
            uint32_t sx, sy;
            switch (o) {
            case 2: sx = W - 1 - x; sy = y; break;
            case 3: sx = W - 1 - x; sy = H - 1 - y; break;
            case 4: sx = x; sy = H - 1 - y; break;
            case 5: sx = y; sy = x; break;
            case 6: sx = y; sy = H - 1 - x; break;
            case 7: sx = W - 1 - y; sy = H - 1 - x; break;
            default: sx = W - 1 - y; sy = x; break; /* 8 */
            }
            memcpy(d, src + ((size_t)sy * W + sx) * 3, 3);
        }
    }
    free(*rgb);
    *rgb = dst;
    *w = dw;
    *h = dh;
    return MRT_OK;
}

static mrt_status jpeg_decode(jpeg_in_job *j, const uint8_t *data, size_t len, mrt_error *err) {
    j_decompress_ptr ci = &j->cinfo;
    if (setjmp(j->jmp)) {
        switch (j->msg_code) {
        case JWRN_JPEG_EOF:
        case JERR_INPUT_EOF:
        case JERR_INPUT_EMPTY:
            return mrt_fail(err, MRT_ERR_IMAGE,
                            "JPEG data ended early: the file is truncated (%zu bytes)", len);
        case JERR_IMAGE_TOO_BIG:
            /* libjpeg's own limit (65500 a side), met inside
             * jpeg_read_header; get_sof has stored the size by then. */
            return mrt_fail(err, MRT_ERR_TOO_BIG,
                            "JPEG image is %u x %u pixels: libjpeg reads at most %ld a side",
                            (unsigned)ci->image_width, (unsigned)ci->image_height,
                            (long)JPEG_MAX_DIMENSION);
        case JERR_OUT_OF_MEMORY:
            return mrt_fail(err, MRT_ERR_NOMEM, "JPEG: libjpeg: %s", j->msg);
        default:
            return mrt_fail(err, MRT_ERR_IMAGE, "corrupt or unsupported JPEG: %s", j->msg);
        }
    }
    j->msg_code = -1;
    ci->err = jpeg_std_error(&j->jerr);
    j->jerr.error_exit = jpeg_in_fail;
    j->jerr.emit_message = jpeg_in_emit;
    j->jerr.output_message = jpeg_quiet_output;
    ci->client_data = j; /* jpeg_create_decompress keeps err and client_data */
    jpeg_create_decompress(ci);
    j->created = 1;
    j->progress.progress_monitor = jpeg_in_progress;
    ci->progress = &j->progress;
    jpeg_mem_src(ci, data, (unsigned long)len);
    jpeg_save_markers(ci, JPEG_APP0 + 1, 0xFFFF); /* EXIF, for the orientation */
    jpeg_read_header(ci, TRUE); /* a tables-only stream fails here (no image) */

    mrt_status st = check_dims("JPEG", ci->image_width, ci->image_height, err);
    if (st != MRT_OK) return st;
    int orientation = jpeg_exif_orientation(ci);
    int cmyk;
    switch (ci->jpeg_color_space) {
    case JCS_GRAYSCALE:
    case JCS_YCbCr:
    case JCS_RGB:
        ci->out_color_space = JCS_RGB;
        cmyk = 0;
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        ci->out_color_space = JCS_CMYK;
        cmyk = 1;
        break;
    default:
        return mrt_fail(err, MRT_ERR_IMAGE,
                        "unsupported JPEG: colour space %d with %d components",
                        (int)ci->jpeg_color_space, ci->num_components);
    }
    jpeg_start_decompress(ci);
    uint32_t w = ci->output_width, h = ci->output_height;
    if (w != ci->image_width || h != ci->image_height || ci->output_components != (cmyk ? 4 : 3))
        return mrt_fail(err, MRT_ERR_IMAGE, "JPEG: unexpected output layout (%u x %u x %d)",
                        (unsigned)w, (unsigned)h, ci->output_components);
    size_t out_row = (size_t)w * 3;
    j->rgb = malloc(out_row * h);
    if (cmyk) j->row = malloc((size_t)w * 4);
    if (!j->rgb || (cmyk && !j->row))
        return mrt_fail(err, MRT_ERR_NOMEM, "JPEG: out of memory for %u x %u pixels",
                        (unsigned)w, (unsigned)h);
    int inverted = ci->saw_Adobe_marker;
    while (ci->output_scanline < h) {
        uint8_t *dst = j->rgb + (size_t)ci->output_scanline * out_row;
        JSAMPROW r = cmyk ? j->row : dst;
        /* The memory source never suspends, so 0 rows would be a bug in
         * libjpeg; stop rather than loop. */
        if (jpeg_read_scanlines(ci, &r, 1) != 1)
            return mrt_fail(err, MRT_ERR_IMAGE, "JPEG: libjpeg returned no row");
        if (cmyk) {
            const uint8_t *s = j->row;
            for (uint32_t x = 0; x < w; x++, s += 4, dst += 3) {
                unsigned k = inverted ? s[3] : 255u - s[3];
                for (int c = 0; c < 3; c++) {
                    unsigned v = inverted ? s[c] : 255u - s[c];
                    dst[c] = (uint8_t)((v * k + 127u) / 255u);
                }
            }
        }
    }
    /* Reads up to EOI, so a file cut after the last row still fails. */
    jpeg_finish_decompress(ci);
    j->w = w;
    j->h = h;
    return jpeg_apply_orientation(&j->rgb, &j->w, &j->h, orientation, err);
}

static mrt_status read_jpeg(const uint8_t *data, size_t len, mrt_image *out, mrt_error *err) {
    if (len > ULONG_MAX) /* jpeg_mem_src takes an unsigned long */
        return mrt_fail(err, MRT_ERR_TOO_BIG, "JPEG of %zu bytes is too large to read", len);
    jpeg_in_job *j = calloc(1, sizeof *j); /* ~1 KiB of libjpeg state: keep it off the stack */
    if (!j) return mrt_fail(err, MRT_ERR_NOMEM, "JPEG: out of memory");
    mrt_status st = jpeg_decode(j, data, len, err);
    if (j->created) jpeg_destroy_decompress(&j->cinfo);
    free(j->row);
    if (st == MRT_OK) {
        out->width = (int)j->w;
        out->height = (int)j->h;
        out->rgb = j->rgb;
    } else {
        free(j->rgb);
    }
    free(j);
    return st == MRT_OK ? mrt_ok(err) : st;
}

/* --------------------------------------------------------- reading API */

mrt_status mrt_image_read_memory(const void *data, size_t len, mrt_image *out, mrt_error *err) {
    if (!out) return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_image_read_memory: out is NULL");
    memset(out, 0, sizeof *out);
    /* Before the NULL check: an empty SQLite BLOB comes as (NULL, 0), and
     * it is an empty image, not a programming error. */
    if (len == 0)
        return mrt_fail(err, MRT_ERR_IMAGE, "empty input (0 bytes): not a PNG or JPEG image");
    if (!data)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_image_read_memory: data is NULL (len %zu)",
                        len);
    const uint8_t *p = data;
    if (len >= 8 && memcmp(p, png_signature, 8) == 0) return read_png(p, len, out, err);
    if (len >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return read_jpeg(p, len, out, err);
    if (len < 8 && memcmp(p, png_signature, len) == 0)
        return mrt_fail(err, MRT_ERR_IMAGE,
                        "PNG data ended early: %zu bytes, shorter than the PNG signature", len);
    if (len < 3 && p[0] == 0xFF && (len == 1 || p[1] == 0xD8))
        return mrt_fail(err, MRT_ERR_IMAGE, "JPEG data ended early: only %zu bytes", len);
    /* Show the first bytes, and as text too when they are printable (an
     * HTML error page saved as .jpg is the usual culprit). */
    char hex[16] = "", text[8] = "";
    size_t n = len < 4 ? len : 4;
    int printable = 1;
    for (size_t i = 0; i < n; i++) {
        snprintf(hex + (i ? 3 * i - 1 : 0), sizeof hex - 3 * i, "%s%02x", i ? " " : "", p[i]);
        printable &= p[i] >= 0x20 && p[i] < 0x7f;
        text[i] = (char)p[i];
    }
    text[n] = '\0';
    if (printable)
        return mrt_fail(err, MRT_ERR_IMAGE, "not a PNG or JPEG image (starts with %s \"%s\")", hex,
                        text);
    return mrt_fail(err, MRT_ERR_IMAGE, "not a PNG or JPEG image (starts with %s)", hex);
}

mrt_status mrt_image_read_file(const char *path, mrt_image *out, mrt_error *err) {
    if (!out) return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_image_read_file: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path) return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_image_read_file: path is NULL");
    uint8_t *buf;
    size_t len;
    mrt_status st = mrt_read_file(path, MRT_MAX_FILE_BYTES, &buf, &len, err);
    if (st != MRT_OK) return st;
    st = mrt_image_read_memory(buf, len, out, err);
    if (st != MRT_OK) mrt_fail(err, st, "%s: %s", path, err ? err->message : "");
    free(buf);
    return st;
}

void mrt_image_free(mrt_image *img) {
    if (!img) return;
    free(img->rgb);
    img->rgb = NULL;
    img->width = img->height = 0;
}

/* ------------------------------------------------------------ PNG out */

typedef struct png_out_job {
    jmp_buf jmp;
    char msg[256];
    png_structp png;
    png_infop info;
    uint8_t *buf;           /* the PNG so far */
    size_t len, cap;
    int nomem;              /* the buffer could not grow */
} png_out_job;

static void png_out_error(png_structp png, png_const_charp msg) {
    png_out_job *j = png_get_error_ptr(png);
    snprintf(j->msg, sizeof j->msg, "%s", msg);
    longjmp(j->jmp, 1);
}

static void png_out_write(png_structp png, png_bytep data, size_t n) {
    png_out_job *j = png_get_io_ptr(png);
    if (n > j->cap - j->len) {
        size_t need = j->len + n;
        if (need < j->len) { /* overflow */
            j->nomem = 1;
            png_error(png, "out of memory");
        }
        size_t ncap = j->cap ? j->cap : 4096;
        while (ncap < need) ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
        uint8_t *nb = realloc(j->buf, ncap);
        if (!nb) {
            j->nomem = 1;
            png_error(png, "out of memory");
        }
        j->buf = nb;
        j->cap = ncap;
    }
    memcpy(j->buf + j->len, data, n);
    j->len += n;
}

static void png_out_flush(png_structp png) { (void)png; }

static mrt_status check_image(const mrt_image *img, mrt_error *err) {
    if (!img) return mrt_fail(err, MRT_ERR_ARGUMENT, "image is NULL");
    if (!img->rgb) return mrt_fail(err, MRT_ERR_ARGUMENT, "image has no pixels (rgb is NULL)");
    if (img->width < 1 || img->height < 1 || img->width > MRT_MAX_SIDE ||
        img->height > MRT_MAX_SIDE || (long long)img->width * img->height > MRT_MAX_PIXELS)
        return mrt_fail(err, MRT_ERR_ARGUMENT,
                        "image size %d x %d is out of range (sides 1..%d, at most %lld pixels)",
                        img->width, img->height, MRT_MAX_SIDE, (long long)MRT_MAX_PIXELS);
    return MRT_OK;
}

static mrt_status png_encode(png_out_job *j, const mrt_image *img, mrt_error *err) {
    if (setjmp(j->jmp)) {
        if (j->nomem) return mrt_fail(err, MRT_ERR_NOMEM, "out of memory writing a PNG");
        return mrt_fail(err, MRT_ERR_IMAGE, "libpng: %s", j->msg);
    }
    j->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, j, png_out_error, png_quiet_warning);
    if (!j->png) return mrt_fail(err, MRT_ERR_NOMEM, "cannot create a libpng writer");
    j->info = png_create_info_struct(j->png);
    if (!j->info) return mrt_fail(err, MRT_ERR_NOMEM, "cannot create a libpng writer");
    png_set_write_fn(j->png, j, png_out_write, png_out_flush);
    png_set_IHDR(j->png, j->info, (png_uint_32)img->width, (png_uint_32)img->height, 8,
                 PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_set_filter(j->png, PNG_FILTER_TYPE_BASE, PNG_FILTER_PAETH);
    png_set_compression_strategy(j->png, Z_RLE); /* the level plays no part under Z_RLE */
    png_write_info(j->png, j->info);
    size_t row = (size_t)img->width * 3;
    for (int y = 0; y < img->height; y++) png_write_row(j->png, img->rgb + (size_t)y * row);
    png_write_end(j->png, j->info);
    return MRT_OK;
}

static void png_out_release(png_out_job *j) {
    if (j->png) png_destroy_write_struct(&j->png, j->info ? &j->info : NULL);
}

mrt_status mrt_image_write_png_memory(const mrt_image *img, uint8_t **out, size_t *out_len,
                                      mrt_error *err) {
    if (!out || !out_len)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_image_write_png_memory: out or out_len is NULL");
    *out = NULL;
    *out_len = 0;
    mrt_status st = check_image(img, err);
    if (st != MRT_OK) return st;
    png_out_job j;
    memset(&j, 0, sizeof j);
    st = png_encode(&j, img, err);
    png_out_release(&j);
    if (st != MRT_OK) {
        free(j.buf);
        return st;
    }
    *out = j.buf;
    *out_len = j.len;
    return mrt_ok(err);
}

/* The PNG is made in memory and then written with mrt_write_file_atomic,
 * so that a failure at any step never leaves a half-written file. */
mrt_status mrt_image_write_png_file(const mrt_image *img, const char *path, mrt_error *err) {
    if (!path) return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_image_write_png_file: path is NULL");
    /* A bad image is the caller's mistake, not the file's: no path in front. */
    mrt_status st = check_image(img, err);
    if (st != MRT_OK) return st;
    uint8_t *png;
    size_t len;
    st = mrt_image_write_png_memory(img, &png, &len, err);
    if (st != MRT_OK) return mrt_fail(err, st, "%s: %s", path, err ? err->message : "");
    st = mrt_write_file_atomic(path, png, len, err);
    free(png);
    return st;
}
