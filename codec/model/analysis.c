/*
 * analysis.c -- the encoder's transform: RGB8 -> latent y and side bits
 * (see model.h for the architecture), plus helpers shared with synthesis.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"
#include "transform.h"

/* Windows per ViT chunk: bounds the activations of a chunk (~66 tokens per
 * window) whatever the image size. */
#define WINDOWS_PER_CHUNK 64
/* Tokens per chunk when embedding patches. */
#define EMBED_CHUNK 4096

mrt_grid mrt_grid_of(const mrt_config *cfg, int width, int height) {
    mrt_grid g;
    int span = cfg->patch * cfg->window;
    g.width = width;
    g.height = height;
    g.nwx = (width + span - 1) / span;
    g.nwy = (height + span - 1) / span;
    g.nwin = g.nwx * g.nwy;
    g.wp = g.nwx * cfg->window;
    g.hp = g.nwy * cfg->window;
    g.tokens = g.hp * g.wp;
    return g;
}

/* Raster index in the patch grid of token k (0 .. window^2) of window w. */
static size_t grid_index(const mrt_config *cfg, const mrt_grid *g, int w, int k) {
    int wy = w / g->nwx, wx = w % g->nwx;
    int y = wy * cfg->window + k / cfg->window, x = wx * cfg->window + k % cfg->window;
    return (size_t)y * g->wp + x;
}

mrt_status mrt_window_vit(const mrt_rt *rt, const mrt_config *cfg, const mrt_vit_weights *vw,
                          const mrt_grid *g, float *grid, float *latents) {
    int D = cfg->dim, L = cfg->latents, win2 = cfg->window * cfg->window, n = win2 + L;
    int chunk = g->nwin < WINDOWS_PER_CHUNK ? g->nwin : WINDOWS_PER_CHUNK;
    mrt_vit_acts acts;
    float *buf = malloc(sizeof(float) * 2 * (size_t)chunk * n * D);
    if (!buf || mrt_vit_acts_alloc(&acts, chunk, n, D, cfg->ffn, cfg->heads) != 0) {
        free(buf);
        return MRT_ERR_NOMEM;
    }
    float *out = buf + (size_t)chunk * n * D;
    for (int w0 = 0; w0 < g->nwin; w0 += chunk) {
        int nw = g->nwin - w0 < chunk ? g->nwin - w0 : chunk;
        for (int i = 0; i < nw; i++) {
            float *dst = buf + (size_t)i * n * D;
            for (int k = 0; k < win2; k++)
                memcpy(dst + (size_t)k * D, grid + grid_index(cfg, g, w0 + i, k) * D,
                       sizeof(float) * D);
            memcpy(dst + (size_t)win2 * D, latents + (size_t)(w0 + i) * L * D,
                   sizeof(float) * L * D);
        }
        acts.nwin = nw; /* a shorter last chunk uses the front of the buffers */
        mrt_vit_block_forward(rt, out, buf, vw, &acts);
        for (int i = 0; i < nw; i++) {
            const float *src = out + (size_t)i * n * D;
            for (int k = 0; k < win2; k++)
                memcpy(grid + grid_index(cfg, g, w0 + i, k) * D, src + (size_t)k * D,
                       sizeof(float) * D);
            memcpy(latents + (size_t)(w0 + i) * L * D, src + (size_t)win2 * D,
                   sizeof(float) * L * D);
        }
    }
    mrt_vit_acts_free(&acts);
    free(buf);
    return MRT_OK;
}

/* Patch embedding straight from RGB8, in chunks of tokens: each patch is
 * flattened as (channel, dy, dx) with values 2 v/255 - 1; pixels past the
 * image edge repeat the last row/column (edge-replicate padding). Then
 * the in-window position embedding is added. */
static mrt_status embed_patches(const mrt_rt *rt, const mrt_config *cfg, const mrt_weights *w,
                                const mrt_grid *g, const uint8_t *rgb, float *P) {
    int p = cfg->patch, D = cfg->dim, K = 3 * p * p;
    int chunk = g->tokens < EMBED_CHUNK ? g->tokens : EMBED_CHUNK;
    float *patches = malloc(sizeof(float) * (size_t)chunk * K);
    if (!patches) return MRT_ERR_NOMEM;
    for (int t0 = 0; t0 < g->tokens; t0 += chunk) {
        int nt = g->tokens - t0 < chunk ? g->tokens - t0 : chunk;
        for (int i = 0; i < nt; i++) {
            int t = t0 + i, py = t / g->wp, px = t % g->wp;
            float *row = patches + (size_t)i * K;
            for (int dy = 0; dy < p; dy++) {
                int y = py * p + dy;
                y = y < g->height ? y : g->height - 1;
                for (int dx = 0; dx < p; dx++) {
                    int x = px * p + dx;
                    x = x < g->width ? x : g->width - 1;
                    const uint8_t *px3 = rgb + ((size_t)y * g->width + x) * 3;
                    for (int c = 0; c < 3; c++)
                        row[(c * p + dy) * p + dx] = px3[c] * (2.0f / 255.0f) - 1.0f;
                }
            }
        }
        mrt_linear_forward(rt, P + (size_t)t0 * D, patches, w->embed_w, w->embed_b, nt, K, D);
    }
    free(patches);
    for (int t = 0; t < g->tokens; t++) {
        int py = t / g->wp, px = t % g->wp;
        int k = (py % cfg->window) * cfg->window + px % cfg->window;
        mrt_add_inplace(P + (size_t)t * D, w->enc_pos + (size_t)k * D, D);
    }
    return MRT_OK;
}

/* Two-layer MLP with GELU between: out = W2 gelu(W1 in + b1) + b2. */
mrt_status mrt_mlp2(const mrt_rt *rt, float *out, const float *in, int rows, int cin, int hid,
                       int cout, const float *w1, const float *b1, const float *w2,
                       const float *b2) {
    float *h = malloc(sizeof(float) * ((size_t)rows * hid + 1));
    if (!h) return MRT_ERR_NOMEM;
    mrt_linear_forward(rt, h, in, w1, b1, rows, cin, hid);
    mrt_gelu_forward(rt, h, h, (size_t)rows * hid);
    mrt_linear_forward(rt, out, h, w2, b2, rows, hid, cout);
    free(h);
    return MRT_OK;
}

mrt_status mrt_side_bits(const mrt_rt *rt, const mrt_config *cfg, const mrt_weights *w,
                         const mrt_latent_shape *sh, int images, const float *y,
                         uint8_t *side_bits) {
    int L = cfg->latents, c = cfg->channels, d = cfg->side_bits;
    int per_image = sh->ngx * sh->ngy, ngroups = images * per_image, gin = 4 * L * c;
    int nwin = sh->nwx * sh->nwy;
    if (d == 0) return MRT_OK;
    float *gbuf = calloc((size_t)ngroups * (gin + d) + 1, sizeof(float));
    if (!gbuf) return MRT_ERR_NOMEM;
    float *gout = gbuf + (size_t)ngroups * gin;
    for (int img = 0; img < images; img++)
        for (int gy = 0; gy < sh->ngy; gy++)
            for (int gx = 0; gx < sh->ngx; gx++)
                for (int q = 0; q < 4; q++) {
                    int wy = 2 * gy + q / 2, wx = 2 * gx + q % 2;
                    /* A group cut by the image's right or bottom edge
                     * repeats its windows into the missing places. With
                     * zeros there, the side bits of a cut group were codes
                     * the context model never saw in training (crops are
                     * whole groups), and its predictions for that column
                     * missed: a picture with an odd number of window
                     * columns cost 30-50 % more bytes with the 0.02 model
                     * (camera.png at 448x512: 801 bytes, above 657 at
                     * 512x512; now 563). The side bits travel in the
                     * stream, so decoders are unaffected. */
                    if (wy >= sh->nwy) wy--;
                    if (wx >= sh->nwx) wx--;
                    size_t group = (size_t)img * per_image + gy * sh->ngx + gx;
                    size_t win = (size_t)img * nwin + wy * sh->nwx + wx;
                    memcpy(gbuf + (group * 4 + q) * L * c, y + win * L * c,
                           sizeof(float) * L * c);
                }
    mrt_status st = mrt_mlp2(rt, gout, gbuf, ngroups, gin, cfg->dim, d, w->side_w1, w->side_b1,
                         w->side_w2, w->side_b2);
    for (size_t i = 0; st == MRT_OK && i < (size_t)ngroups * d; i++)
        side_bits[i] = gout[i] > 0.0f; /* LFQ: sign, 0 -> "negative" */
    free(gbuf);
    return st;
}

mrt_status mrt_analysis(const mrt_rt *rt, const mrt_config *cfg, const mrt_weights *w,
                        const uint8_t *rgb, int width, int height, float *y, uint8_t *side_bits,
                        mrt_error *err) {
    mrt_grid g = mrt_grid_of(cfg, width, height);
    int D = cfg->dim, L = cfg->latents, c = cfg->channels, F = cfg->ffn;
    size_t nlat = (size_t)g.nwin * L;
    float *P = malloc(sizeof(float) * (size_t)g.tokens * D);
    float *Z = malloc(sizeof(float) * nlat * D);
    float *ws = malloc(sizeof(float) * mrt_rwkv_infer_floats(g.tokens, D, F));
    mrt_status st = MRT_OK;
    if (!P || !Z || !ws) {
        st = MRT_ERR_NOMEM;
        goto done;
    }
    if ((st = embed_patches(rt, cfg, w, &g, rgb, P)) != MRT_OK) goto done;
    for (size_t i = 0; i < (size_t)g.nwin; i++)
        memcpy(Z + i * L * D, w->enc_latents, sizeof(float) * L * D);
    for (int i = 0; i < cfg->enc_pairs; i++) {
        mrt_rwkv_block_infer(rt, P, &w->enc_rwkv[i], 1, g.hp, g.wp, D, F, ws);
        if ((st = mrt_window_vit(rt, cfg, &w->enc_vit[i], &g, P, Z)) != MRT_OK) goto done;
    }
    /* y = MLP(LN(Z)) */
    mrt_layernorm_forward(rt, Z, NULL, NULL, Z, w->enc_ln_g, w->enc_ln_b, (int)nlat, D);
    if ((st = mrt_mlp2(rt, y, Z, (int)nlat, D, D, c, w->lat_w1, w->lat_b1, w->lat_w2, w->lat_b2)))
        goto done;
    /* side information: per 2x2 group of windows, signs of an MLP of their y */
    mrt_latent_shape sh = mrt_latent_shape_of(cfg, width, height);
    st = mrt_side_bits(rt, cfg, w, &sh, 1, y, side_bits);
done:
    if (st == MRT_ERR_NOMEM)
        mrt_fail(err, st, "out of memory encoding a %dx%d image", width, height);
    free(P);
    free(Z);
    free(ws);
    return st;
}
