/*
 * ctxmodel.c -- the integer context model (see ctxmodel.h for the order
 * and the fixed-point formats). Plain scalar integer loops: the point is
 * that every machine computes exactly the same numbers.
 */
#include <stdlib.h>
#include <string.h>

#include "ctxmodel.h"
#include "entropy.h"

/* a / 2^s rounded toward minus infinity, for any sign (>> of a negative
 * number is implementation-defined in C). */
static int64_t floor_shift(int64_t a, int s) {
    int64_t d = (int64_t)1 << s;
    return a >= 0 ? a / d : -((-a + d - 1) / d);
}

/* round(a / 2^s), halves toward plus infinity */
static int64_t round_shift(int64_t a, int s) { return floor_shift(a + ((int64_t)1 << (s - 1)), s); }

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Inputs of one token at one step, Q4. */
static void gather_inputs(int32_t *in, const mrt_config *cfg, const mrt_latent_shape *sh,
                          const uint8_t *side_bits, const int32_t *decoded, int token,
                          int group_start, bool non_anchor, int group_end) {
    int c = cfg->channels, L = cfg->latents, d = cfg->side_bits;
    int win = token / L, wx = win % sh->nwx, wy = win / sh->nwx;
    int group = (wy / 2) * sh->ngx + wx / 2, quadrant = (wy % 2) * 2 + wx % 2;
    int k = 0;
    for (int b = 0; b < d; b++) in[k++] = side_bits[(size_t)group * d + b] ? MRT_CTX_Q : -MRT_CTX_Q;
    for (int q = 0; q < 4; q++) in[k++] = q == quadrant ? MRT_CTX_Q : 0;
    /* own channels of earlier groups */
    const int32_t *own = decoded + (size_t)token * c;
    for (int ch = 0; ch < c; ch++) in[k++] = ch < group_start ? own[ch] : 0;
    /* the anchor's channels decoded so far (its current group included) */
    const int32_t *anchor = decoded + (size_t)win * L * c;
    for (int ch = 0; ch < c; ch++) in[k++] = non_anchor && ch < group_end ? anchor[ch] : 0;
    for (int i = 0; i < k; i++) in[i] = (int32_t)clamp64(in[i], -MRT_CTX_VALUE_MAX, MRT_CTX_VALUE_MAX);
}

int mrt_ctx_run(const mrt_config *cfg, const mrt_weights *w, const mrt_latent_shape *sh,
                const uint8_t *side_bits, int32_t *decoded, mrt_ctx_symbol_fn step, void *ctx) {
    int K = mrt_ctx_inputs(cfg), H = cfg->ctx_hidden, L = cfg->latents;
    int32_t *in = malloc(sizeof(int32_t) * K);
    int64_t *hidden = malloc(sizeof(int64_t) * H);
    int rc = 0;
    if (!in || !hidden) {
        free(in), free(hidden);
        return -1;
    }
    int group_start = 0;
    for (int g = 0; g < cfg->ctx_groups && rc == 0; g++) {
        int gs = cfg->ctx_group_size[g], group_end = group_start + gs;
        for (int parity = 0; parity < 2 && rc == 0; parity++) {
            const mrt_ctx_step *net = &w->ctx[g][parity];
            for (int token = 0; token < sh->ntokens && rc == 0; token++) {
                bool non_anchor = token % L != 0;
                if (non_anchor != (parity == 1)) continue;
                gather_inputs(in, cfg, sh, side_bits, decoded, token, group_start, non_anchor,
                              group_end);
                for (int j = 0; j < H; j++) {
                    int64_t acc = net->b1[j];
                    const int32_t *row = net->w1 + (size_t)j * K;
                    for (int k = 0; k < K; k++) acc += (int64_t)row[k] * in[k];
                    hidden[j] = clamp64(floor_shift(acc > 0 ? acc : 0, 12), 0, MRT_CTX_HIDDEN_MAX);
                }
                for (int ch = 0; ch < gs && rc == 0; ch++) {
                    int64_t mu_acc = net->b2[ch], s_acc = net->b2[gs + ch];
                    const int32_t *mu_row = net->w2 + (size_t)ch * H;
                    const int32_t *s_row = net->w2 + (size_t)(gs + ch) * H;
                    for (int j = 0; j < H; j++) {
                        mu_acc += (int64_t)mu_row[j] * hidden[j];
                        s_acc += (int64_t)s_row[j] * hidden[j];
                    }
                    int32_t mu = (int32_t)clamp64(round_shift(mu_acc, 12), -MRT_CTX_MU_MAX,
                                                  MRT_CTX_MU_MAX);
                    int scale = (int)clamp64(round_shift(s_acc, 16), 0, MRT_GAUSS_NSCALES - 1);
                    rc = step(ctx, token, group_start + ch, mu, scale);
                }
            }
        }
        group_start = group_end;
    }
    free(in);
    free(hidden);
    return rc;
}
