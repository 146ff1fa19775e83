/*
 * transform.h -- the float halves of the codec: analysis (pixels -> latent
 * y and side bits) and synthesis (decoded latent -> pixels). Both run on
 * BLIS and may differ in the last bits between machines; nothing here
 * feeds the entropy coder's probabilities (DESIGN.md §5).
 *
 * Memory: about 7 * D floats per 8x8 patch for the global (Bi-RWKV) work,
 * i.e. ~1.8 KB per 64 pixels at D = 64 (~1.9 GB at the 8192 x 8192 limit);
 * windows and the pixel generator run in bounded chunks and strips.
 */
#ifndef MRT_TRANSFORM_H
#define MRT_TRANSFORM_H

#include "model.h"

/* Geometry derived from an image size. */
typedef struct mrt_grid {
    int width, height; /* the image */
    int hp, wp;        /* patch grid after padding to whole windows */
    int nwx, nwy, nwin;
    int tokens;        /* hp * wp */
} mrt_grid;

mrt_grid mrt_grid_of(const mrt_config *cfg, int width, int height);

/* y: (nwin * L, c) floats; side_bits: ngx * ngy * d bytes of 0/1. */
mrt_status mrt_analysis(const mrt_rt *rt, const mrt_config *cfg, const mrt_weights *w,
                        const uint8_t *rgb, int width, int height, float *y, uint8_t *side_bits,
                        mrt_error *err);

/* The LFQ side bits of `images` latents of one shape, laid out one after
 * the other (ngx * ngy * d bytes of 0/1 per image). */
mrt_status mrt_side_bits(const mrt_rt *rt, const mrt_config *cfg, const mrt_weights *w,
                         const mrt_latent_shape *sh, int images, const float *y,
                         uint8_t *side_bits);

/* y_hat: (nwin * L, c) floats; rgb: width * height * 3 bytes. */
mrt_status mrt_synthesis(const mrt_rt *rt, const mrt_config *cfg, const mrt_weights *w,
                         const float *y_hat, int width, int height, uint8_t *rgb,
                         mrt_error *err);

/* The decoder up to its 1/p map, before the pixel generator: *map_out is
 * (D, hp, wp) floats of mrt_grid_of(cfg, width, height), malloc'd. What
 * mrt_synthesis generates pixels from, and what thumbnail heads read. */
mrt_status mrt_synthesis_map(const mrt_rt *rt, const mrt_config *cfg, const mrt_weights *w,
                             const float *y_hat, int width, int height, float **map_out,
                             mrt_error *err);

/* out = W2 gelu(W1 in + b1) + b2 over rows (the latent MLPs). */
mrt_status mrt_mlp2(const mrt_rt *rt, float *out, const float *in, int rows, int cin, int hid,
                    int cout, const float *w1, const float *b1, const float *w2, const float *b2);

/* Shared by both: ViT blocks over windows of [grid tokens of the window;
 * its L latent tokens], processed in chunks of windows. grid: (hp*wp, D)
 * raster; latents: (nwin * L, D). Both are updated in place. */
mrt_status mrt_window_vit(const mrt_rt *rt, const mrt_config *cfg, const mrt_vit_weights *vw,
                          const mrt_grid *g, float *grid, float *latents);

#endif /* MRT_TRANSFORM_H */
