/*
 * thumbnail.h -- thumbnail heads: the decoder's 1/8 map straight to a small
 * picture, skipping the pixel generator.
 *
 * A full decode spends about 60 % of its time in the pixel generator, most
 * of it at full resolution. A thumbnail at 1/4 or 1/8 of the size does not
 * need that detail: a head reads the map the decoder's transformer makes
 * (D channels at 1/8 of the working size, mrt_synthesis_map) and maps each
 * 3x3 neighbourhood of it linearly to the f x f RGB pixels of its position
 * (f = 2 for 1/4):
 *
 *   out[(sy * f + sx) * 3 + c] = b[o] + sum_k W[o][k] * feature[k],
 *   feature[(dy * 3 + dx) * D + d] = map[d][y + dy - 1][x + dx - 1] (0 outside)
 *
 * The heads are fitted by least squares against the Lanczos-shrunk
 * originals with the rest of the model frozen (`mrt fit-thumbnails`,
 * codec/train/thumbnails.c), and shipped beside a model as
 * NAME.thumbs.gguf, which names the SHA-256 of the model file it was fitted
 * for: the model files, and so every bitstream's fingerprint, stay as they
 * are. A model without one decodes thumbnails the long way (decode, then
 * shrink).
 */
#ifndef MRT_THUMBNAIL_H
#define MRT_THUMBNAIL_H

#include <stdint.h>

#include "gguf.h"
#include "pixel_generator.h"
#include "mrt.h"

#define MRT_THUMB_HEADS 1 /* 1/4 (1/8 is its picture shrunk: closer than a head of its own) */

typedef struct mrt_thumb_head {
    int scale;       /* 4 or 8: the picture is 1/scale of the working size */
    int f;           /* 8 / scale: pixels per map position and side */
    int dim;         /* D: the channels read */
    int radius;      /* the neighbourhood read: (2 radius + 1)^2 positions */
    const float *w;  /* (3 f f, (2 radius + 1)^2 D) */
    const float *b;  /* (3 f f) */
} mrt_thumb_head;

typedef struct mrt_thumb_heads {
    mrt_gguf *file; /* the mapping the weights point into; NULL: none */
    char problem[320]; /* why a heads file beside the model is not used ("" if none) */
    int level;      /* what the heads read (mrt_thumb_feature_map) */
    mrt_thumb_head head[MRT_THUMB_HEADS];
} mrt_thumb_heads;

/* What a head reads, from the decoder's map (D, hp, wp): level 0 the map
 * itself; 1 the pixel generator's first layer, relu(conv3x3_in(map));
 * 2 the generator after its residual block (width[0] channels, still at
 * 1/8). *out is the map itself at level 0, else malloc'd (then *owned). */
int mrt_thumb_feature_map(const mrt_rt *rt, const mrt_gen_weights *g, int dim, int width0,
                          const float *map, int hp, int wp, int level, const float **out,
                          int *channels, float **owned);

/* The heads file beside the model file at `model_path` (its real path,
 * links followed, with ".gguf" replaced by ".thumbs.gguf"), if there is one
 * for this model (the SHA-256 it names is `model_sha256`) and these widths.
 * The heads only make thumbnails faster, like a cache: a file that does not
 * load, or names another model (fitted before the model was retrained), is
 * not used, with the reason in h->problem, and thumbnails decode the long
 * way; nothing fails because of it. MRT_OK unless out of memory. */
mrt_status mrt_thumb_heads_load(const char *model_path, const uint8_t *model_sha256, int dim,
                                int width0, mrt_thumb_heads *h, mrt_error *err);
void mrt_thumb_heads_free(mrt_thumb_heads *h);
/* The head for 1/scale, or NULL */
const mrt_thumb_head *mrt_thumb_head_for(const mrt_thumb_heads *h, int scale);

/* The (channels, hp, wp) map position-major, (hp, wp, channels), so that a
 * position's channels are one copy (gathered channel by channel, the
 * features cost more than the head's product); malloc'd, NULL if out of
 * memory. */
float *mrt_thumb_positions(const float *map, int channels, int hp, int wp, int threads);
/* The (2 radius + 1)^2 channels features of position (y, x), from
 * mrt_thumb_positions' layout; 0 outside the map. The fitter and the head
 * read the same. */
void mrt_thumb_features(const float *positions, int channels, int hp, int wp, int y, int x,
                        int radius, float *feature);

/* The picture of out_w x out_h (at most f wp x f hp) from a (D, hp, wp)
 * map; RGB8, clamped. Each map row is one single-threaded product: the same
 * bytes for any thread count. 0, or -1 out of memory. */
int mrt_thumb_head_apply(const mrt_thumb_head *h, const float *map, int hp, int wp, int out_w,
                          int out_h, int threads, uint8_t *rgb);

/* The heads file's name for a model file's path (malloc'd; NULL if out of
 * memory). */
char *mrt_thumb_heads_path(const char *model_path);

#endif /* MRT_THUMBNAIL_H */
