/*
 * pixel_generator.h -- the pixel generator: a 2-D map at 1/8 resolution ->
 * RGB at full resolution. Shared by the codec's synthesis (inference, in
 * strips), the stage-0 tokenizer and end-to-end training (forward with
 * saved activations, and backward).
 *
 *   x (cin, h, w)
 *   r0 = relu(conv3x3_in(x))                         width[0] channels
 *   s  = r0 + conv3x3_res2(relu(conv3x3_res1(r0)))   a residual block
 *   3 times: s = relu(conv3x3(relu(shuffle2(conv1x1_up(s)))))   width[k+1]
 *   out = conv3x3_out(s)                             3 channels, about [-1, 1]
 */
#ifndef MRT_PIXEL_GENERATOR_H
#define MRT_PIXEL_GENERATOR_H

#include <stdbool.h>

#include "runtime.h"

#define MRT_GEN_STAGES 3

typedef struct mrt_gen_weights {
    float *in_w, *in_b, *res1_w, *res1_b, *res2_w, *res2_b;
    float *up_w[MRT_GEN_STAGES], *up_b[MRT_GEN_STAGES];
    float *conv_w[MRT_GEN_STAGES], *conv_b[MRT_GEN_STAGES];
    float *out_w, *out_b;
} mrt_gen_weights;

/* Activations of one forward pass over B maps of h x w. With `train` the
 * pre-activations are kept for backward; without it buffers are reused in
 * place (about 2 full-resolution maps plus 3 at 1/8). */
typedef struct mrt_gen_acts {
    int B, h, w, cin, width[MRT_GEN_STAGES + 1];
    bool train;
    float *a0, *r0, *t1, *rt1, *t2, *s0;
    float *u[MRT_GEN_STAGES], *p[MRT_GEN_STAGES], *rp[MRT_GEN_STAGES];
    float *c[MRT_GEN_STAGES], *rc[MRT_GEN_STAGES];
    float *out;  /* (B, 3, 8h, 8w) */
    float *grad; /* with `train`: backward's scratch */
    float *mem;
} mrt_gen_acts;

int mrt_gen_acts_alloc(mrt_gen_acts *a, int B, int h, int w, int cin, const int *width,
                       bool train);
void mrt_gen_acts_free(mrt_gen_acts *a);

void mrt_gen_forward(const mrt_rt *rt, const mrt_gen_weights *g, mrt_gen_acts *a,
                     const float *x);
/* Needs train activations. dg's pointers (any may be NULL) and dx (may be
 * NULL) receive accumulated gradients. */
int mrt_gen_backward(const mrt_rt *rt, const mrt_gen_weights *g, const mrt_gen_weights *dg,
                     mrt_gen_acts *a, const float *x, const float *dout, float *dx);

#endif /* MRT_PIXEL_GENERATOR_H */
