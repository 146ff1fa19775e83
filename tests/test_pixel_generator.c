/*
 * test_pixel_generator.c -- the pixel generator: backward against finite
 * differences (input and every weight), and the in-place inference
 * buffers giving exactly the training forward's output.
 * Tolerance 2e-2 + 2e-2 max(|a|, |n|) with step h = 1e-3. The generator is
 * a stack of ReLUs: a step that makes a unit cross zero is recognised by
 * its one-sided differences disagreeing (tu_gradcheck), and there the
 * analytic value must match one side. A smaller step does not avoid this
 * and drowns the differences in float32 rounding: at h = 1e-4 one weight
 * missed by 12 % with BLIS's generic kernels (a CPU BLIS 0.9 does not
 * know), while both one-sided differences agreed with each other.
 */
#include "pixel_generator.h"
#include "testutil.h"

#define H_STEP 1e-3f

static mrt_rng rng;
static mrt_rt rt;

typedef struct {
    const mrt_gen_weights *g;
    mrt_gen_acts *a;
    float *x;
} gen_ctx;

static void gen_fwd(void *p) {
    gen_ctx *c = p;
    mrt_gen_forward(&rt, c->g, c->a, c->x);
}

int main(void) {
    mrt_rng_seed(&rng, 99);
    rt = mrt_rt_make(2);
    int B = 2, h = 2, w = 2, cin = 3, width[4] = {6, 5, 4, 3};
    mrt_gen_weights g, dg;
    float **slots[] = {&g.in_w, &g.in_b, &g.res1_w, &g.res1_b, &g.res2_w, &g.res2_b,
                       &g.up_w[0], &g.up_b[0], &g.conv_w[0], &g.conv_b[0],
                       &g.up_w[1], &g.up_b[1], &g.conv_w[1], &g.conv_b[1],
                       &g.up_w[2], &g.up_b[2], &g.conv_w[2], &g.conv_b[2], &g.out_w, &g.out_b};
    float **dslots[] = {&dg.in_w, &dg.in_b, &dg.res1_w, &dg.res1_b, &dg.res2_w, &dg.res2_b,
                        &dg.up_w[0], &dg.up_b[0], &dg.conv_w[0], &dg.conv_b[0],
                        &dg.up_w[1], &dg.up_b[1], &dg.conv_w[1], &dg.conv_b[1],
                        &dg.up_w[2], &dg.up_b[2], &dg.conv_w[2], &dg.conv_b[2], &dg.out_w, &dg.out_b};
    size_t sizes[] = {
        (size_t)width[0] * cin * 9, width[0], (size_t)width[0] * width[0] * 9, width[0],
        (size_t)width[0] * width[0] * 9, width[0],
        (size_t)4 * width[1] * width[0], 4 * width[1], (size_t)width[1] * width[1] * 9, width[1],
        (size_t)4 * width[2] * width[1], 4 * width[2], (size_t)width[2] * width[2] * 9, width[2],
        (size_t)4 * width[3] * width[2], 4 * width[3], (size_t)width[3] * width[3] * 9, width[3],
        (size_t)3 * width[3] * 9, 3};
    int ntensors = (int)(sizeof sizes / sizeof sizes[0]);
    /* fan-in of each weight tensor (biases: 0), for activations of order 1:
     * larger ones would drown the finite differences in float rounding */
    int fan_in[] = {cin * 9, 0, width[0] * 9, 0, width[0] * 9, 0, width[0], 0, width[1] * 9, 0,
                    width[1], 0, width[2] * 9, 0, width[2], 0, width[3] * 9, 0, width[3] * 9, 0};
    for (int i = 0; i < ntensors; i++) {
        *slots[i] = tu_randn(&rng, sizes[i], fan_in[i] ? 1.4f / sqrtf((float)fan_in[i]) : 0.1f);
        *dslots[i] = tu_alloc(sizes[i]);
    }
    size_t nx = (size_t)B * cin * h * w, nout = (size_t)B * 3 * h * w * 64;
    float *x = tu_randn(&rng, nx, 1.0f), *dx = tu_alloc(nx), *r = tu_randn(&rng, nout, 1.0f);
    mrt_gen_acts a, inf;
    CHECK(mrt_gen_acts_alloc(&a, B, h, w, cin, width, true) == 0, "alloc");
    CHECK(mrt_gen_acts_alloc(&inf, B, h, w, cin, width, false) == 0, "alloc");
    gen_ctx c = {&g, &a, x};
    gen_fwd(&c);
    mrt_gen_forward(&rt, &g, &inf, x);
    CHECK(memcmp(a.out, inf.out, nout * sizeof(float)) == 0, "inference buffers change the output");
    CHECK(mrt_gen_backward(&rt, &g, &dg, &a, x, r, dx) == 0, "backward");
    /* backward keeps its scratch in the activations: a second call, on
     * scratch the first left dirty, gives the same dx bit for bit */
    float *dx_again = tu_alloc(nx);
    CHECK(mrt_gen_backward(&rt, &g, NULL, &a, x, r, dx_again) == 0 &&
              memcmp(dx, dx_again, nx * sizeof(float)) == 0,
          "a second backward on the same activations gives another dx");
    free(dx_again);
    CHECK(mrt_gen_backward(&rt, &g, &dg, &inf, x, r, dx) != 0, "backward needs train activations");
    tu_gradcheck("generator dx", gen_fwd, &c, x, nx, dx, a.out, r, nout, H_STEP, 2e-2f, 2e-2f, 40);
    for (int i = 0; i < ntensors; i++) {
        char what[64];
        snprintf(what, sizeof what, "generator tensor %d", i);
        tu_gradcheck(what, gen_fwd, &c, *slots[i], sizes[i], *dslots[i], a.out, r, nout, H_STEP,
                     2e-2f, 2e-2f, 10);
    }
    for (int i = 0; i < ntensors; i++) free(*slots[i]), free(*dslots[i]);
    mrt_gen_acts_free(&a);
    mrt_gen_acts_free(&inf);
    free(x), free(dx), free(r);
    return tu_finish("test_pixel_generator");
}
