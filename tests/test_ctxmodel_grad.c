/*
 * test_ctxmodel_grad.c -- the float context model against the integer one the
 * codec runs (same mu and scale index up to the fixed-point rounding), the
 * export round trip, and the rate's gradients against finite differences.
 */
#include "ctxmodel_grad.h"
#include "entropy.h"
#include "testutil.h"

static mrt_config cfg;
static mrt_latent_shape sh;
static mrt_ctx_float f;
static uint8_t side[64];

typedef struct {
    float *y;
    double bits;
} rate_ctx;

static float bits_out;
static void rate_fwd(void *p) {
    rate_ctx *r = p;
    r->bits = mrt_ctx_float_bits(&cfg, &f, &sh, 1, side, r->y, NULL, NULL, NULL, NULL);
    bits_out = (float)r->bits;
}

/* The integer run: feeds the true values and records mu and scale. */
typedef struct {
    const float *y;
    int32_t *decoded;
    float *mu, *scale;
    int c;
} int_ctx;

static int record(void *p, int token, int ch, int32_t mu_q4, int scale) {
    int_ctx *k = p;
    size_t i = (size_t)token * k->c + ch;
    k->decoded[i] = (int32_t)lrintf(k->y[i] * MRT_CTX_Q);
    k->mu[i] = (float)mu_q4 / MRT_CTX_Q;
    k->scale[i] = (float)scale;
    return 0;
}

int main(void) {
    mrt_rng rng;
    mrt_rng_seed(&rng, 21);
    cfg = mrt_config_xs();
    cfg.window = 2, cfg.latents = 2, cfg.channels = 4, cfg.side_bits = 4;
    cfg.ctx_groups = 2, cfg.ctx_group_size[0] = 2, cfg.ctx_group_size[1] = 2, cfg.ctx_hidden = 5;
    sh = mrt_latent_shape_of(&cfg, 48, 32); /* 3 x 2 windows of 16 px, 2 x 1 groups */
    size_t nf = mrt_ctx_float_size(&cfg), ny = (size_t)sh.ntokens * cfg.channels;
    float *fbuf = tu_randn(&rng, nf, 0.3f);
    mrt_ctx_float_bind(&cfg, &f, fbuf);
    /* biases put the scale index mid-table */
    for (int g = 0; g < cfg.ctx_groups; g++)
        for (int par = 0; par < 2; par++)
            for (int ch = 0; ch < cfg.ctx_group_size[g]; ch++)
                f.step[g][par].b2[cfg.ctx_group_size[g] + ch] = 20.0f;
    for (int i = 0; i < sh.ngx * sh.ngy * cfg.side_bits; i++) side[i] = mrt_rng_below(&rng, 2);

    /* export to integers and back: a fixed point of the rounding */
    mrt_weights w;
    int32_t *ibuf = calloc(nf, sizeof(int32_t));
    memset(&w, 0, sizeof w);
    {
        int32_t *p = ibuf;
        size_t K = (size_t)mrt_ctx_inputs(&cfg), H = (size_t)cfg.ctx_hidden;
        for (int g = 0; g < cfg.ctx_groups; g++)
            for (int par = 0; par < 2; par++) {
                size_t out = 2 * (size_t)cfg.ctx_group_size[g];
                w.ctx[g][par].w1 = p, p += H * K;
                w.ctx[g][par].b1 = p, p += H;
                w.ctx[g][par].w2 = p, p += out * H;
                w.ctx[g][par].b2 = p, p += out;
            }
    }
    mrt_ctx_float_to_int(&cfg, &f, &w);
    mrt_ctx_float_from_int(&cfg, &w, &f); /* now exactly on the grid */
    int32_t *again = malloc(nf * sizeof(int32_t));
    memcpy(again, ibuf, nf * sizeof(int32_t));
    mrt_ctx_float_to_int(&cfg, &f, &w);
    CHECK(memcmp(again, ibuf, nf * sizeof(int32_t)) == 0, "export is not a fixed point");

    /* a bias past the loader's bound (MRT_CTX_WEIGHT_MAX: every int32 value
     * within +-2^24) is clamped to it, so every export loads */
    {
        float saved_b1 = f.step[0][0].b1[0], saved_b2 = f.step[0][0].b2[0];
        f.step[0][0].b1[0] = 1000.0f;  /* 6.6e7 in Q16 */
        f.step[0][0].b2[0] = -1000.0f;
        mrt_ctx_float_to_int(&cfg, &f, &w);
        CHECK(w.ctx[0][0].b1[0] == (1 << 24) && w.ctx[0][0].b2[0] == -(1 << 24),
              "bias not clamped to +-2^24: %d %d", w.ctx[0][0].b1[0], w.ctx[0][0].b2[0]);
        f.step[0][0].b1[0] = saved_b1, f.step[0][0].b2[0] = saved_b2;
        mrt_ctx_float_to_int(&cfg, &f, &w);
    }

    /* float vs integer: values on the 1/16 grid so both see the same inputs */
    float *y = tu_alloc(ny), *mu_f = tu_alloc(ny), *s_f = tu_alloc(ny);
    for (size_t i = 0; i < ny; i++) y[i] = (float)((int)mrt_rng_below(&rng, 97) - 48) / 16.0f;
    mrt_ctx_float_bits(&cfg, &f, &sh, 1, side, y, NULL, NULL, mu_f, s_f);
    int32_t *decoded = calloc(ny, sizeof(int32_t));
    float *mu_i = tu_alloc(ny), *s_i = tu_alloc(ny);
    int_ctx k = {y, decoded, mu_i, s_i, cfg.channels};
    CHECK(mrt_ctx_run(&cfg, &w, &sh, side, decoded, record, &k) == 0, "integer run");
    /* the integer hidden layer is floored to 1/16: mu may move by up to
     * sum |W2| / 16, plus half a grid step for its own rounding */
    int worst_scale = 0;
    double worst_mu = 0;
    for (size_t i = 0; i < ny; i++) {
        double dmu = fabs(mu_i[i] - mu_f[i]);
        double ds = fabs(s_i[i] - (s_f[i] < 0 ? 0 : s_f[i] > 63 ? 63 : s_f[i]));
        worst_mu = dmu > worst_mu ? dmu : worst_mu;
        worst_scale = ds > worst_scale ? (int)ceil(ds) : worst_scale;
    }
    printf("float vs integer context model: |mu| within %.4f, scale index within %d\n", worst_mu,
           worst_scale);
    CHECK(worst_mu <= 1.0 / 32 + 5 * 0.3 * 3 / 16.0, "mu differs by %g", worst_mu);
    CHECK(worst_scale <= 1, "scale index differs by %d", worst_scale);

    /* the training sigma of an integer index is the coder's table entry */
    double worst_sigma = 0;
    for (int i = 0; i < MRT_GAUSS_NSCALES; i++) {
        double rel = fabs(mrt_ctx_sigma(i) / mrt_gauss_scales[i] - 1.0);
        worst_sigma = rel > worst_sigma ? rel : worst_sigma;
    }
    CHECK(worst_sigma < 1e-5, "training sigma vs coder scales: %g", worst_sigma);

    /* gradients of the rate */
    rate_ctx rc = {tu_randn(&rng, ny, 2.0f), 0};
    float *dy = tu_alloc(ny), *dfbuf = tu_alloc(nf), one = 1.0f;
    mrt_ctx_float df;
    mrt_ctx_float_bind(&cfg, &df, dfbuf);
    double bits = mrt_ctx_float_bits(&cfg, &f, &sh, 1, side, rc.y, dy, &df, NULL, NULL);
    CHECK(bits > 0 && isfinite(bits), "bits %g", bits);
    tu_gradcheck("rate d y", rate_fwd, &rc, rc.y, ny, dy, &bits_out, &one, 1, 1e-3f, 3e-2f, 2e-2f, 48);
    tu_gradcheck("rate d weights", rate_fwd, &rc, fbuf, nf, dfbuf, &bits_out, &one, 1, 1e-3f, 3e-2f,
                 2e-2f, 60);
    free(fbuf), free(ibuf), free(again), free(y), free(mu_f), free(s_f), free(decoded);
    free(mu_i), free(s_i), free(rc.y), free(dy), free(dfbuf);
    return tu_finish("test_ctxmodel_grad");
}
