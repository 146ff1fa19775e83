/*
 * test_blocks.c -- the Bi-RWKV and ViT blocks against finite differences,
 * from the model's own initialisation, on grids and windows of odd sizes,
 * with 1 and 2 threads; and the parameter tables' consistency.
 * Tolerance as in test_ops.c: |a - n| <= 2e-3 + 3e-2 max(|a|, |n|), h = 1e-2.
 */
#include "blocks.h"
#include "testutil.h"

static mrt_rng rng;
static mrt_rt rt;

typedef struct {
    float *out, *x;
    mrt_rwkv_weights *w;
    mrt_vit_weights *vw;
    mrt_rwkv_acts *a;
    mrt_vit_acts *va;
    int B, Hg, Wg;
} block_ctx;

static void rwkv_fwd(void *p) {
    block_ctx *c = p;
    mrt_rwkv_block_forward(&rt, c->out, c->x, c->w, c->a, c->B, c->Hg, c->Wg);
}

static void vit_fwd(void *p) {
    block_ctx *c = p;
    mrt_vit_block_forward(&rt, c->out, c->x, c->vw, c->va);
}

/* Perturbs parameters away from their exact init (mu = 0 for channel 0,
 * norms at 1/0) so every path carries gradient. */
static void jitter(float *p, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] += 0.1f * mrt_rng_normal(&rng);
}

static void test_rwkv(int B, int Hg, int Wg, int D, int F) {
    int N = B * Hg * Wg;
    mrt_rwkv_weights w, dw;
    mrt_param_ref refs[MRT_BLOCK_MAX_PARAMS], drefs[MRT_BLOCK_MAX_PARAMS];
    int count = mrt_rwkv_params(&w, D, F, refs);
    CHECK(mrt_rwkv_params(&dw, D, F, drefs) == count && count <= MRT_BLOCK_MAX_PARAMS, "count");
    size_t np = mrt_params_bind(refs, count, NULL);
    float *params = tu_alloc(np), *grads = tu_alloc(np);
    mrt_params_bind(refs, count, params);
    mrt_params_bind(drefs, count, grads);
    mrt_rwkv_init(&w, D, F, 1, 3, &rng);
    jitter(params, np);
    mrt_rwkv_acts a;
    CHECK(mrt_rwkv_acts_alloc(&a, N, D, F) == 0, "alloc");
    block_ctx c = {tu_alloc((size_t)N * D), tu_randn(&rng, (size_t)N * D, 1.0f), &w, NULL, &a,
                   NULL, B, Hg, Wg};
    rwkv_fwd(&c);
    float *r = tu_randn(&rng, (size_t)N * D, 1.0f), *dx = tu_alloc((size_t)N * D);
    mrt_rwkv_block_backward(&rt, dx, &dw, r, c.x, &w, &a, B, Hg, Wg);
    size_t no = (size_t)N * D;
    tu_gradcheck("rwkv block dx", rwkv_fwd, &c, c.x, no, dx, c.out, r, no, 1e-2f, 3e-2f, 2e-3f, 60);
    for (int i = 0; i < count; i++) {
        char what[96];
        snprintf(what, sizeof what, "rwkv block d%s", refs[i].name);
        tu_gradcheck(what, rwkv_fwd, &c, *refs[i].slot, mrt_param_size(&refs[i]),
                     *drefs[i].slot, c.out, r, no, 1e-2f, 3e-2f, 2e-3f, 12);
    }
    /* no parameter gradients wanted: dx must not change */
    float *dx2 = tu_alloc(no);
    rwkv_fwd(&c);
    mrt_rwkv_block_backward(&rt, dx2, NULL, r, c.x, &w, &a, B, Hg, Wg);
    tu_close("rwkv block dx without param grads", dx2, dx, no, 1e-6f, 1e-7f);
    mrt_rwkv_acts_free(&a);
    free(params), free(grads), free(c.out), free(c.x), free(r), free(dx), free(dx2);
}

static void test_vit(int nwin, int n, int D, int F, int heads) {
    int N = nwin * n;
    mrt_vit_weights w, dw;
    mrt_param_ref refs[MRT_BLOCK_MAX_PARAMS], drefs[MRT_BLOCK_MAX_PARAMS];
    int count = mrt_vit_params(&w, D, F, refs);
    mrt_vit_params(&dw, D, F, drefs);
    size_t np = mrt_params_bind(refs, count, NULL);
    float *params = tu_alloc(np), *grads = tu_alloc(np);
    mrt_params_bind(refs, count, params);
    mrt_params_bind(drefs, count, grads);
    mrt_vit_init(&w, D, F, &rng);
    jitter(params, np);
    mrt_vit_acts a;
    CHECK(mrt_vit_acts_alloc(&a, nwin, n, D, F, heads) == 0, "alloc");
    block_ctx c = {tu_alloc((size_t)N * D), tu_randn(&rng, (size_t)N * D, 1.0f), NULL, &w, NULL,
                   &a, 0, 0, 0};
    vit_fwd(&c);
    float *r = tu_randn(&rng, (size_t)N * D, 1.0f), *dx = tu_alloc((size_t)N * D);
    mrt_vit_block_backward(&rt, dx, &dw, r, c.x, &w, &a);
    size_t no = (size_t)N * D;
    tu_gradcheck("vit block dx", vit_fwd, &c, c.x, no, dx, c.out, r, no, 1e-2f, 3e-2f, 2e-3f, 60);
    for (int i = 0; i < count; i++) {
        char what[96];
        snprintf(what, sizeof what, "vit block d%s", refs[i].name);
        tu_gradcheck(what, vit_fwd, &c, *refs[i].slot, mrt_param_size(&refs[i]), *drefs[i].slot,
                     c.out, r, no, 1e-2f, 3e-2f, 2e-3f, 12);
    }
    mrt_vit_acts_free(&a);
    free(params), free(grads), free(c.out), free(c.x), free(r), free(dx);
}

int main(void) {
    mrt_rng_seed(&rng, 5);
    for (int threads = 1; threads <= 2; threads++) {
        rt = mrt_rt_make(threads);
        test_rwkv(2, 3, 5, 12, 24);
        test_rwkv(1, 1, 1, 8, 8);
        test_vit(3, 7, 16, 32, 4);
    }
    mrt_vit_acts a;
    CHECK(mrt_vit_acts_alloc(&a, 1, 4, 10, 8, 3) != 0, "heads must divide D");
    return tu_finish("test_blocks");
}
