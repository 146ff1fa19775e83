/*
 * fuzz_encode.c -- libFuzzer harness for the round trip: any image the
 * readers can hand over must encode, and what the encoder writes must
 * decode to the very symbols it coded.
 *
 * Input:   byte 0      width - 1   (mod 64: 1..64 pixels)
 *          byte 1      height - 1  (mod 64)
 *          the rest    RGB pixels, repeated to fill the image (zeros if
 *                      there are none), so short inputs still give texture
 *
 * Checked: mrt_encode succeeds; mrt_info_read accepts the result and
 * reports the image's size and the model's fingerprint and rate id;
 * mrt_decode succeeds with the same size; and the decoder's trace (every
 * residual, mean, scale index and side bit, in bitstream order) equals the
 * encoder's. That last one is the codec's central invariant (DESIGN.md §5):
 * encoder and decoder run the same integer context model on the same
 * values, so a difference anywhere is a bitstream the decoder misreads.
 * Then the same image with 2 steps of latent refinement (refine.c): it
 * must encode, decode, and be no more than the coder's last bytes larger.
 *
 * The model is fuzz_model.h's (as for fuzz_decode). Images are small
 * because each input runs the analysis and the synthesis transforms.
 *
 * Run (see fuzz/README.md):
 *     ./fuzz_encode -max_total_time=600 -timeout=10 work/encode seeds/encode
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"
#include "fuzz_model.h"
#include "mrt.h"
#include "fuzz_expect.h"

#define MAX_SIDE 64

MRT_FUZZ_WITH_MODEL(model)


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    mrt_image img = {data[0] % MAX_SIDE + 1, data[1] % MAX_SIDE + 1, NULL};
    data += 2, size -= 2;
    size_t n = (size_t)img.width * img.height * 3;
    img.rgb = calloc(n, 1);
    if (!img.rgb) return 0;
    for (size_t i = 0; size && i < n; i++) img.rgb[i] = data[i % size];

    mrt_trace enc = {0}, dec = {0};
    uint8_t *bits = NULL;
    size_t len = 0;
    mrt_error err;
    mrt_status st = mrt_encode_traced(model, &img, 1, &bits, &len, &enc, &err);
    EXPECT(st == MRT_OK, "encoding a %dx%d image: %s", img.width, img.height, err.message);

    mrt_info info;
    st = mrt_info_read(bits, len, &info, &err);
    EXPECT(st == MRT_OK, "info_read of a fresh %dx%d bitstream: %s", img.width, img.height,
           err.message);
    EXPECT(info.width == img.width && info.height == img.height && info.bytes == len &&
           info.rate_id == mrt_model_rate_id(model) &&
           !memcmp(info.fingerprint, mrt_model_fingerprint(model), MRT_FINGERPRINT_BYTES),
           "header says %dx%d, rate %d", info.width, info.height, info.rate_id);

    mrt_image out;
    st = mrt_decode_traced(model, bits, len, 1, &out, &dec, &err);
    EXPECT(st == MRT_OK, "decoding a fresh %dx%d bitstream (%zu bytes): %s", img.width,
           img.height, len, err.message);
    EXPECT(out.width == img.width && out.height == img.height, "decoded %dx%d from %dx%d",
           out.width, out.height, img.width, img.height);
    EXPECT(mrt_trace_equal(&enc, &dec), "the decoder read other symbols than the encoder wrote "
           "(%zu and %zu symbols, %dx%d)", enc.count, dec.count, img.width, img.height);

    mrt_refine_options refine = {2, MRT_REFINE_LR, false, 0.0f};
    uint8_t *refined = NULL;
    size_t refined_len = 0;
    mrt_image refined_out;
    st = mrt_encode_refined(model, &img, 1, &refine, NULL, &refined, &refined_len, &err);
    EXPECT(st == MRT_OK, "refining a %dx%d image: %s", img.width, img.height, err.message);
    EXPECT(refined_len <= len + 2, "refinement grew a %dx%d stream from %zu to %zu bytes",
           img.width, img.height, len, refined_len);
    st = mrt_decode(model, refined, refined_len, 1, &refined_out, &err);
    EXPECT(st == MRT_OK, "decoding a refined %dx%d bitstream: %s", img.width, img.height,
           err.message);

    mrt_trace_free(&enc);
    mrt_trace_free(&dec);
    mrt_image_free(&out);
    mrt_image_free(&refined_out);
    mrt_free(bits);
    mrt_free(refined);
    free(img.rgb);
    return 0;
}
