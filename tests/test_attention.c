/*
 * test_attention.c -- window attention against its naive twin and finite
 * differences, including a window size that is not a multiple of anything
 * (n = 66: 64 patch tokens + 2 latent tokens) and several heads.
 */
#include "testutil.h"

static mrt_rng rng;
static mrt_rt rt;

typedef struct {
    float *out, *att, *qkv;
    int nwin, n, D, heads;
} att_ctx;

static void att_fwd(void *p) {
    att_ctx *c = p;
    mrt_attention_forward(&rt, c->out, c->att, c->qkv, c->nwin, c->n, c->D, c->heads);
}

static void test_case(int nwin, int n, int D, int heads, int checks) {
    size_t nt = (size_t)nwin * n;
    att_ctx c = {tu_alloc(nt * D), tu_alloc((size_t)nwin * heads * n * n),
                 tu_randn(&rng, nt * 3 * D, 1.0f), nwin, n, D, heads};
    att_fwd(&c);
    float *ref = tu_alloc(nt * D);
    mrt_attention_forward_naive(ref, c.qkv, nwin, n, D, heads);
    char what[96];
    snprintf(what, sizeof what, "attention forward nwin%d n%d D%d h%d threads %d", nwin, n, D,
             heads, rt.threads);
    tu_close(what, c.out, ref, nt * D, 1e-4f, 1e-5f);
    float *g = tu_randn(&rng, nt * D, 1.0f), *dqkv = tu_alloc(nt * 3 * D);
    mrt_attention_backward(&rt, dqkv, g, c.qkv, c.att, nwin, n, D, heads);
    snprintf(what, sizeof what, "attention dqkv nwin%d n%d D%d h%d", nwin, n, D, heads);
    tu_gradcheck(what, att_fwd, &c, c.qkv, nt * 3 * D, dqkv, c.out, g, nt * D, 1e-2f, 2e-2f,
                 1e-3f, checks);
    free(c.out), free(c.att), free(c.qkv), free(ref), free(g), free(dqkv);
}

int main(void) {
    mrt_rng_seed(&rng, 11);
    for (int threads = 1; threads <= 2; threads++) {
        rt = mrt_rt_make(threads);
        test_case(1, 1, 4, 1, 12);
        test_case(3, 5, 8, 2, 200);
        test_case(2, 66, 64, 4, 300);
    }
    return tu_finish("test_attention");
}
