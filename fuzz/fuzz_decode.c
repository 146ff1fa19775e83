/*
 * fuzz_decode.c -- libFuzzer harness for the bitstream: mrt_info_read,
 * mrt_bitstream_parse and mrt_decode on arbitrary bytes.
 *
 * Every input is tried two ways:
 *
 *   raw     the bytes are a bitstream as they stand. This explores the
 *           container parser (magic, version, flags, varints, the stream
 *           table, CRCs, size limits) and, for mutations of the seed
 *           bitstreams that keep their CRCs, the decoder.
 *
 *   framed  the harness wraps the bytes in a valid container for its model,
 *           so that the fuzzer need not guess CRCs and a fingerprint to get
 *           past the parser:
 *               byte 0      width - 1   (1..256 pixels)
 *               byte 1      height - 1
 *               next N      stream 0, the side bits (N is what the model
 *                           needs for that size; zeros if the input is short)
 *               the rest    stream 1, the range-coded symbols
 *           This reaches the side bits, the context model, the range and
 *           Gaussian decoders and, whenever the symbol stream happens to end
 *           consistently, the synthesis transform. The size is capped at
 *           256 x 256 so that one input decodes in milliseconds. The same
 *           streams are then framed once more as version 2, that size being
 *           the working size of a larger picture (BITSTREAM.md §7), which
 *           adds the normative upscale.
 *
 * Besides "no crash, leak or UB" it checks what the API promises: info_read
 * and decode reject a damaged container with the same status; a rejected
 * decode leaves an empty image and a message; a decoded image has the size
 * the header declares; and decoding is deterministic (the same bytes give
 * the same pixels twice).
 *
 * The model is the small seeded random model of fuzz_model.h, written to a
 * temporary file and loaded once in LLVMFuzzerInitialize. fuzz_seeds
 * writes seed bitstreams encoded with that same model, in both forms.
 *
 * Run (see fuzz/README.md):
 *     ./fuzz_decode -max_total_time=600 -timeout=10 work/decode seeds/decode
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitstream.h"
#include "codec_internal.h"
#include "ctxmodel.h"
#include "fuzz_model.h"
#include "mrt.h"
#include "fuzz_expect.h"

#define FRAMED_MAX_SIDE 256

MRT_FUZZ_WITH_MODEL(model)

/* Decodes data[0..len) and checks the result against the header (h, when
 * the container is known to be valid). */
static void decode_and_check(const uint8_t *data, size_t len, const mrt_info *h) {
    mrt_image img;
    mrt_error err;
    mrt_status st = mrt_decode(model, data, len, 1, &img, &err);
    if (st != MRT_OK) {
        expect_clean_failure(st, &img, &err);
        return;
    }
    EXPECT(h != NULL, "decoded a bitstream info_read rejects");
    EXPECT(img.rgb && img.width == h->width && img.height == h->height,
           "decoded %dx%d, header says %dx%d", img.width, img.height, h->width, h->height);
    mrt_image again;
    EXPECT(mrt_decode(model, data, len, 1, &again, &err) == MRT_OK, "%s", err.message);
    EXPECT(memcmp(img.rgb, again.rgb, (size_t)img.width * img.height * 3) == 0,
           "two decodes of the same %dx%d bitstream differ", img.width, img.height);
    mrt_image_free(&again);
    mrt_image_free(&img);
}

static void fuzz_raw(const uint8_t *data, size_t len) {
    mrt_info info;
    mrt_error err;
    mrt_status st = mrt_info_read(data, len, &info, &err);
    if (st != MRT_OK) {
        /* decode parses with the same function before anything else */
        mrt_image img;
        mrt_error derr;
        mrt_status dst = mrt_decode(model, data, len, 1, &img, &derr);
        EXPECT(dst == st, "info_read says %s, decode says %s (%s)", mrt_status_name(st),
               mrt_status_name(dst), derr.message);
        EXPECT(img.rgb == NULL, "a rejected decode returned pixels");
        return;
    }
    EXPECT(info.bytes == len && info.width >= 1 && info.height >= 1 &&
           (long long)info.width * info.height <= MRT_MAX_PIXELS && info.nstreams >= 1 &&
           info.nstreams <= 4, "implausible header %dx%d, %d streams", info.width, info.height,
           info.nstreams);
    size_t total = 0;
    for (int i = 0; i < info.nstreams; i++) total += info.stream_bytes[i];
    EXPECT(total < len, "streams of %zu bytes in a %zu-byte bitstream", total, len);
    /* A mutated seed can keep valid CRCs and declare a huge image whose
     * decode is legitimately slow; the framed path covers the decoder at
     * small sizes, so leave those out rather than report timeouts. */
    if ((long long)info.width * info.height > FRAMED_MAX_SIDE * FRAMED_MAX_SIDE) return;
    decode_and_check(data, len, &info);
}

static void fuzz_framed(const uint8_t *data, size_t len) {
    if (len < 2) return;
    mrt_bitstream_header h;
    memset(&h, 0, sizeof h);
    h.width = data[0] + 1u;
    h.height = data[1] + 1u;
    data += 2, len -= 2;
    const mrt_config *cfg = mrt_model_config(model);
    mrt_latent_shape sh = mrt_latent_shape_of(cfg, (int)h.width, (int)h.height);
    size_t side_len = ((size_t)sh.ngx * sh.ngy * cfg->side_bits + 7) / 8;
    uint8_t *side = calloc(side_len + 1, 1);
    if (!side) return;
    size_t from_input = len < side_len ? len : side_len;
    memcpy(side, data, from_input);
    data += from_input, len -= from_input;

    memcpy(h.fingerprint, mrt_model_fingerprint(model), MRT_FINGERPRINT_BYTES);
    h.rate_id = (uint8_t)mrt_model_rate_id(model);
    h.nstreams = 2;
    const uint8_t *streams[2] = {side, data};
    size_t lens[2] = {side_len, len};
    uint8_t *bits = NULL;
    size_t nbits = 0;
    mrt_error err;
    mrt_status st = mrt_bitstream_write(&h, streams, lens, &bits, &nbits, &err);
    EXPECT(st == MRT_OK, "cannot frame a %ux%u bitstream: %s", (unsigned)h.width,
           (unsigned)h.height, err.message);
    mrt_info info;
    st = mrt_info_read(bits, nbits, &info, &err);
    EXPECT(st == MRT_OK, "info_read rejects what bitstream_write wrote: %s", err.message);
    decode_and_check(bits, nbits, &info);
    free(bits);
    /* The same streams as a version-2 bitstream whose latent codes that
     * size as the working size of a larger picture: the decoder then also
     * runs the normative upscale. */
    h.coded_width = h.width, h.coded_height = h.height;
    h.width = h.coded_width + 1 + h.coded_width / 2;
    h.height = h.coded_height + h.coded_height / 3;
    bits = NULL;
    st = mrt_bitstream_write(&h, streams, lens, &bits, &nbits, &err);
    EXPECT(st == MRT_OK, "cannot frame a %ux%u bitstream at working size %ux%u: %s",
           (unsigned)h.width, (unsigned)h.height, (unsigned)h.coded_width,
           (unsigned)h.coded_height, err.message);
    st = mrt_info_read(bits, nbits, &info, &err);
    EXPECT(st == MRT_OK && info.version == 2 && info.working_width == (int)h.coded_width,
           "info_read of a version-2 frame: %s", err.message);
    decode_and_check(bits, nbits, &info);
    free(bits);
    free(side);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_raw(data, size);
    fuzz_framed(data, size);
    return 0;
}
