/*
 * synthesis.c -- the decoder's transform: decoded latent -> RGB8 (see
 * model.h for the architecture).
 *
 * The pixel generator is fully convolutional, so it runs in horizontal
 * strips of the 1/p map with a halo of GEN_HALO rows on each side: its
 * receptive field reaches 3 rows at 1/8 (three 3x3 convs) plus one row at
 * each finer scale (32 full-resolution rows in all: exactly the 4 rows of
 * the halo), so a strip's kept rows see the same inputs as a whole-image
 * pass while memory stays bounded at any image size. tests/test_codec.c
 * checks the strips against one whole-image pass (a 3-row halo misses by
 * 100 levels at the borders). The halo is the strips' overhead: at 768x512
 * they compute 88 rows of the 64-row map (94 with the 5-row halo used
 * before).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"
#include "transform.h"

#define GEN_STRIP 16 /* rows of the 1/p map per strip */
#define GEN_HALO 4 /* = the receptive field, see above */


/* The pixel generator on rows [r0, r1) of the (D, hp, wp) map `map` (the
 * strip plus its halo); writes RGB8 for the full-resolution rows of
 * [s0, s1) that fall inside the image. `in` holds D x (GEN_STRIP + 2
 * GEN_HALO) x wp floats; `acts` was allocated for that many rows. */
static void generate_strip(const mrt_rt *rt, const mrt_config *cfg, const mrt_weights *w,
                           const mrt_grid *g, const float *map, int s0, int s1, float *in,
                           mrt_gen_acts *acts, uint8_t *rgb) {
    int D = cfg->dim;
    int r0 = s0 - GEN_HALO < 0 ? 0 : s0 - GEN_HALO;
    int r1 = s1 + GEN_HALO > g->hp ? g->hp : s1 + GEN_HALO;
    int H = r1 - r0, W = g->wp;
    for (int c = 0; c < D; c++)
        memcpy(in + (size_t)c * H * W, map + ((size_t)c * g->hp + r0) * W, sizeof(float) * H * W);
    acts->h = H; /* a short strip uses the front of each buffer */
    mrt_gen_forward(rt, &w->gen, acts, in);
    /* keep the rows of [s0, s1) that lie in the image; [-1, 1] -> 0..255 */
    int scale = 1 << MRT_GEN_STAGES, OH = H * scale, OW = W * scale;
    int y_end = s1 * scale < g->height ? s1 * scale : g->height;
#pragma omp parallel for num_threads(rt->threads) schedule(static)
    for (int y = s0 * scale; y < y_end; y++) {
        int ly = y - r0 * scale;
        for (int x0 = 0; x0 < g->width; x0++) {
            uint8_t *px = rgb + ((size_t)y * g->width + x0) * 3;
            for (int c = 0; c < 3; c++) {
                float v = acts->out[((size_t)c * OH + ly) * OW + x0];
                v = (v + 1.0f) * 127.5f + 0.5f;
                /* !(v > 0) also catches NaN, which must not reach the cast */
                px[c] = !(v > 0.0f) ? 0 : v >= 255.0f ? 255 : (uint8_t)v;
            }
        }
    }
}

mrt_status mrt_synthesis_map(const mrt_rt *rt, const mrt_config *cfg, const mrt_weights *w,
                             const float *y_hat, int width, int height, float **map_out,
                             mrt_error *err) {
    *map_out = NULL;
    mrt_grid g = mrt_grid_of(cfg, width, height);
    int D = cfg->dim, L = cfg->latents, c = cfg->channels, F = cfg->ffn;
    int win2 = cfg->window * cfg->window;
    size_t nlat = (size_t)g.nwin * L;
    float *Z = malloc(sizeof(float) * nlat * D);
    float *Q = malloc(sizeof(float) * (size_t)g.tokens * D);
    float *ws = malloc(sizeof(float) * mrt_rwkv_infer_floats(g.tokens, D, F));
    mrt_status st = MRT_OK;
    if (!Z || !Q || !ws) {
        st = MRT_ERR_NOMEM;
        goto done;
    }
    if ((st = mrt_mlp2(rt, Z, y_hat, (int)nlat, c, D, D, w->unlat_w1, w->unlat_b1, w->unlat_w2,
                   w->unlat_b2)))
        goto done;
    /* queries: position + a learned mix of the window's latent tokens */
#pragma omp parallel for num_threads(rt->threads) schedule(static)
    for (int win = 0; win < g.nwin; win++) {
        int wy = win / g.nwx, wx = win % g.nwx;
        for (int k = 0; k < win2; k++) {
            int y = wy * cfg->window + k / cfg->window, x = wx * cfg->window + k % cfg->window;
            float *q = Q + ((size_t)y * g.wp + x) * D;
            memcpy(q, w->dec_pos + (size_t)k * D, sizeof(float) * D);
            for (int l = 0; l < L; l++) {
                float m = w->dec_mix[(size_t)k * L + l];
                const float *z = Z + ((size_t)win * L + l) * D;
                for (int d = 0; d < D; d++) q[d] += m * z[d];
            }
        }
    }
    for (int i = 0; i < cfg->dec_pairs; i++) {
        if ((st = mrt_window_vit(rt, cfg, &w->dec_vit[i], &g, Q, Z)) != MRT_OK) goto done;
        mrt_rwkv_block_infer(rt, Q, &w->dec_rwkv[i], 1, g.hp, g.wp, D, F, ws);
    }
    mrt_layernorm_forward(rt, Q, NULL, NULL, Q, w->dec_ln_g, w->dec_ln_b, g.tokens, D);
    /* tokens (hp*wp, D) -> map (D, hp, wp); the RWKV workspace (larger than
     * the map) becomes the map */
#pragma omp parallel for num_threads(rt->threads) schedule(static)
    for (int d = 0; d < D; d++)
        for (int t = 0; t < g.tokens; t++) ws[(size_t)d * g.tokens + t] = Q[(size_t)t * D + d];
    *map_out = ws;
    ws = NULL;
done:
    if (st == MRT_ERR_NOMEM)
        mrt_fail(err, st, "out of memory decoding a %dx%d image", width, height);
    free(Z);
    free(Q);
    free(ws);
    return st;
}

mrt_status mrt_synthesis(const mrt_rt *rt, const mrt_config *cfg, const mrt_weights *w,
                         const float *y_hat, int width, int height, uint8_t *rgb,
                         mrt_error *err) {
    mrt_grid g = mrt_grid_of(cfg, width, height);
    int D = cfg->dim;
    float *map = NULL, *in = NULL;
    mrt_status st = mrt_synthesis_map(rt, cfg, w, y_hat, width, height, &map, err);
    if (st != MRT_OK) return st;
    /* strips of the pixel generator, with bounded buffers */
    int rows = GEN_STRIP + 2 * GEN_HALO;
    mrt_gen_acts acts;
    in = malloc(sizeof(float) * (size_t)D * rows * g.wp);
    if (!in || mrt_gen_acts_alloc(&acts, 1, rows, g.wp, D, cfg->gen_width, false) != 0) {
        st = MRT_ERR_NOMEM;
        goto done;
    }
    for (int s0 = 0; s0 < g.hp; s0 += GEN_STRIP) {
        int s1 = s0 + GEN_STRIP < g.hp ? s0 + GEN_STRIP : g.hp;
        if (s0 * (1 << MRT_GEN_STAGES) >= height) break; /* only padding below */
        generate_strip(rt, cfg, w, &g, map, s0, s1, in, &acts, rgb);
    }
    mrt_gen_acts_free(&acts);
done:
    if (st == MRT_ERR_NOMEM)
        mrt_fail(err, st, "out of memory decoding a %dx%d image", width, height);
    free(map);
    free(in);
    return st;
}
