/*
 * fuzz_image.c -- libFuzzer harness for the image readers:
 * mrt_image_read_memory on arbitrary bytes (PNG and JPEG, recognised by
 * their signatures, so one harness covers both and the signature sniffing).
 *
 * libpng rejects a chunk whose CRC is wrong, so almost every mutation of
 * a PNG would stop there. A PNG input is therefore read twice: as it is,
 * and with every chunk's CRC recomputed, which lets the mutations reach
 * the header checks, the zlib stream and the pixel conversions.
 *
 * Besides "no crash, leak or UB" it checks what mrt.h promises: a rejected
 * input leaves {0, 0, NULL} and a status with a message; an accepted one is
 * inside the size limits, and every one of its w*h*3 bytes is readable
 * (ASan checks the buffer is that long). Accepted images of up to 1 Mpixel
 * are also written as PNG with mrt_image_write_png_memory and read back,
 * which must give the same pixels: the writer and reader round-trip
 * exactly.
 *
 * Inputs can declare up to 8192 x 8192 pixels, which the reader accepts by
 * design; run with -rss_limit_mb=2048 or more (such an image needs 200 MB
 * for its pixels plus libjpeg's or libpng's buffers).
 *
 * fuzz_seeds writes small PNGs of every colour type and bit depth
 * (interlaced or not, with tRNS) and JPEGs (gray, 4:2:0 and 4:4:4 YCbCr,
 * RGB, Adobe CMYK, progressive, with an EXIF orientation).
 *
 * Run (see fuzz/README.md):
 *     ./fuzz_image -max_total_time=600 -rss_limit_mb=2048 work/image seeds/image
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitstream.h" /* mrt_crc32: the CRC-32 PNG uses */
#include "mrt.h"
#include "fuzz_expect.h"

#define ROUND_TRIP_MAX_PIXELS (1 << 20)


static volatile unsigned sink;

/* Rewrites the CRC of every whole chunk after the 8-byte signature
 * (length, type, data, CRC; the CRC covers type and data). */
static void fix_png_crcs(uint8_t *p, size_t len) {
    size_t pos = 8;
    while (len - pos >= 12) {
        uint32_t n = (uint32_t)p[pos] << 24 | (uint32_t)p[pos + 1] << 16 |
                     (uint32_t)p[pos + 2] << 8 | p[pos + 3];
        if (n > len - pos - 12) break;
        uint32_t crc = mrt_crc32(0, p + pos + 4, (size_t)n + 4);
        uint8_t *c = p + pos + 8 + n;
        c[0] = (uint8_t)(crc >> 24), c[1] = (uint8_t)(crc >> 16);
        c[2] = (uint8_t)(crc >> 8), c[3] = (uint8_t)crc;
        pos += (size_t)n + 12;
    }
}

static void read_and_check(const uint8_t *data, size_t size) {
    mrt_image img;
    mrt_error err;
    mrt_status st = mrt_image_read_memory(data, size, &img, &err);
    if (st != MRT_OK) {
        expect_clean_failure(st, &img, &err);
        return;
    }
    EXPECT(img.rgb && img.width >= 1 && img.height >= 1 && img.width <= MRT_MAX_SIDE &&
           img.height <= MRT_MAX_SIDE && (long long)img.width * img.height <= MRT_MAX_PIXELS,
           "accepted a %dx%d image", img.width, img.height);
    size_t n = (size_t)img.width * img.height * 3;
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) sum += img.rgb[i];
    sink = sum; /* keeps the reads from being optimised away */

    if ((long long)img.width * img.height <= ROUND_TRIP_MAX_PIXELS) {
        uint8_t *png = NULL;
        size_t png_len = 0;
        EXPECT(mrt_image_write_png_memory(&img, &png, &png_len, &err) == MRT_OK, "%s",
               err.message);
        mrt_image back;
        EXPECT(mrt_image_read_memory(png, png_len, &back, &err) == MRT_OK, "%s", err.message);
        EXPECT(back.width == img.width && back.height == img.height &&
               memcmp(back.rgb, img.rgb, n) == 0, "PNG round trip of a %dx%d image differs",
               img.width, img.height);
        mrt_image_free(&back);
        mrt_free(png);
    }
    mrt_image_free(&img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    read_and_check(data, size);
    static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (size > 8 && memcmp(data, png_signature, 8) == 0) {
        uint8_t *copy = malloc(size);
        if (!copy) return 0;
        memcpy(copy, data, size);
        fix_png_crcs(copy, size);
        read_and_check(copy, size);
        free(copy);
    }
    return 0;
}
