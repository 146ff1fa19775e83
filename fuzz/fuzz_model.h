/*
 * fuzz_model.h -- the model the decode fuzzer and its seed generator share.
 *
 * mrt_decode refuses a bitstream whose fingerprint (the SHA-256 of the
 * weights file) is not its model's, so the seed bitstreams are only worth
 * anything if they were encoded with the very model the fuzzer loads. Both
 * therefore write the same model with seeded random weights
 * (mrt_model_init_random is deterministic: same configuration and seed,
 * same file, same fingerprint) and load it from that file.
 *
 * The configuration is a miniature of XS, not XS itself: under ASan and
 * UBSan the XS synthesis of even a 1x1 image (one 64 x 64 window) takes
 * about 0.4 s, which would hold the fuzzer to a few inputs a second. This
 * one keeps every feature the decoder has (several latents per window, so
 * anchors and non-anchors; two context groups; multi-byte side streams;
 * every generator stage) at widths of 4 to 8 and 16-pixel windows.
 *
 * MRT_FUZZ_XS=1 in the environment selects the real XS configuration
 * instead, for slower runs over the shipped geometry (the seed bitstreams
 * then carry the wrong fingerprint; the framed ones still apply).
 */
#ifndef MRT_FUZZ_MODEL_H
#define MRT_FUZZ_MODEL_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "codec_internal.h"
#include "model.h"
#include "mrt.h"

#define MRT_FUZZ_MODEL_SEED 1
#define MRT_FUZZ_MODEL_RATE_ID 0

static inline mrt_config mrt_fuzz_config(void) {
    const char *xs = getenv("MRT_FUZZ_XS");
    if (xs && *xs && *xs != '0') return mrt_config_xs();
    mrt_config c = {.patch = 8, .window = 2, .dim = 8, .heads = 2, .ffn = 8, .latents = 2,
                    .enc_pairs = 1, .dec_pairs = 1, .channels = 4, .side_bits = 8,
                    .ctx_groups = 2, .ctx_group_size = {2, 2}, .ctx_hidden = 4};
    for (int s = 0; s <= MRT_MAX_GEN_STAGES; s++) c.gen_width[s] = 4;
    return c;
}

/* Writes the fuzz model to `path`. */
static inline mrt_status mrt_fuzz_model_write(const char *path, mrt_error *err) {
    mrt_config cfg = mrt_fuzz_config();
    return mrt_model_write_random_config(&cfg, path, MRT_FUZZ_MODEL_SEED, MRT_FUZZ_MODEL_RATE_ID,
                                         err);
}

/* Writes the fuzz model to a fresh temporary file, loads it and removes
 * the file again (the loaded model keeps its own mapping). Returns NULL
 * with a message on stderr. */
static inline mrt_model *mrt_fuzz_model(void) {
    const char *dir = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/mrt-fuzz-model-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("mrt fuzz: mkstemp");
        return NULL;
    }
    close(fd);
    mrt_error err;
    mrt_model *m = NULL;
    if (mrt_fuzz_model_write(path, &err) != MRT_OK || mrt_model_load(path, &m, &err) != MRT_OK) {
        fprintf(stderr, "mrt fuzz: cannot make the model: %s\n", err.message);
        m = NULL;
    }
    unlink(path);
    return m;
}

/* A harness that fuzzes with the model: `MRT_FUZZ_WITH_MODEL(model)` at
 * file scope declares `static mrt_model *model`, loaded by libFuzzer's
 * start-up hook (exit 1 if it cannot be made). */
#define MRT_FUZZ_WITH_MODEL(name)                               \
    static mrt_model *name;                                     \
    int LLVMFuzzerInitialize(int *argc, char ***argv) {         \
        (void)argc, (void)argv;                                 \
        name = mrt_fuzz_model();                                \
        if (!name) exit(1);                                     \
        return 0;                                               \
    }

#endif /* MRT_FUZZ_MODEL_H */
