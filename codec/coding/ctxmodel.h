/*
 * ctxmodel.h -- the 1-D spatial-channel context model, in integers.
 *
 * Everything that decides the entropy coder's probabilities must come out
 * bit-identical on every machine (DESIGN.md §5), so this network runs in
 * fixed point: int32 weights, int64 accumulators, shifts that round toward
 * minus infinity. No float, no BLIS, no libm, no threads.
 *
 * Symbols. The latent y has N = nwin * L tokens of c channels (window
 * raster order, then slot). Channels are split into groups; slot 0 of each
 * window is its anchor, the other slots are non-anchors. Decoding goes
 *     for group g: anchors of g (all windows), then non-anchors of g
 * and, within a step, windows in raster order, slots ascending, channels
 * ascending. Each step's network sees, per token: the side-information
 * bits of the token's 2x2 window group (+-1), which quadrant of the group
 * the window is (one-hot), the token's own channels of earlier groups, and
 * (non-anchors) the anchor's channels decoded so far; 0 where unknown.
 *
 * Fixed-point formats (Qn: value * 2^n):
 *     inputs Q4 (a decoded value y_hat = r + mu is a multiple of 1/16)
 *     weights Q12, biases Q16; hidden = floor(layer-1 sum / 2^12), Q4;
 *     layer 2 sums are Q16: mu = round(sum / 2^12) (Q4), scale index =
 *     round(sum / 2^16), where floor rounds toward -infinity and
 *     round(a / 2^k) = floor((a + 2^(k-1)) / 2^k) (BITSTREAM.md §3).
 * The float model the trainer uses is the same arithmetic in real numbers.
 */
#ifndef MRT_CTXMODEL_H
#define MRT_CTXMODEL_H

#include <stdint.h>

#include "model.h"

#define MRT_CTX_Q 16            /* 1.0 in the Q4 value format */
#define MRT_CTX_VALUE_MAX 65535 /* |Q4 input| clamp: +-4096.0 */
#define MRT_CTX_MU_MAX (1024 * MRT_CTX_Q) /* |mu| <= 1024 */
#define MRT_CTX_HIDDEN_MAX (1 << 24)

/* The decoding order, as a callback per step: the caller (encoder or
 * decoder) gets mu (Q4) and a scale index for every symbol of the step,
 * codes the symbols, and writes the decoded values (Q4: 16 r + mu) into
 * `decoded` (ntokens x c) before the next step reads them.
 *
 *   side_bits: ngx * ngy * d values, 0 or 1.
 *   decoded:   ntokens * c, Q4; zero before the first step.
 *   step(ctx, token, channel, mu_q4, scale_index) is called once per
 *   symbol in bitstream order and must store decoded[token * c + channel]
 *   before returning. Returns non-zero to stop (error). */
typedef int (*mrt_ctx_symbol_fn)(void *ctx, int token, int channel, int32_t mu_q4,
                                 int scale_index);

int mrt_ctx_run(const mrt_config *cfg, const mrt_weights *w, const mrt_latent_shape *shape,
                const uint8_t *side_bits, int32_t *decoded, mrt_ctx_symbol_fn step, void *ctx);

#endif /* MRT_CTXMODEL_H */
