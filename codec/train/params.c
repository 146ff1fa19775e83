/*
 * params.c -- the trained tensors of a stage (train_internal.h): their table,
 * buffers (weights, gradients, Adam moments, EMA), initialisation, the
 * rate control that steers lambda, and the start of the pixel losses both
 * stages share
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

/* The trained tensors of a stage, in a fixed order: stage 0 the
 * tokenizer's, stages 1-2 the codec's float tensors plus the float context
 * model (its integer tensors are made from it at export). */
int mrt_params_describe(params *p, mrt_tensor_ref *refs, mrt_tok_weights *tw, mrt_weights *mw,
                        mrt_ctx_float *cf) {
    if (p->stage == 0) return mrt_tokenizer_tensors(&p->cfg, p->bits, tw, refs);
    static mrt_tensor_ref all[MAX_TENSORS];
    int n = 0, total = mrt_model_tensors(&p->cfg, mw, all);
    for (int i = 0; i < total; i++)
        if (all[i].type == MRT_GGUF_F32) refs[n++] = all[i];
    int K = mrt_ctx_inputs(&p->cfg), H = p->cfg.ctx_hidden;
    for (int g = 0; g < p->cfg.ctx_groups; g++)
        for (int par = 0; par < 2; par++) {
            int out = 2 * p->cfg.ctx_group_size[g];
            mrt_ctx_float_step *st = &cf->step[g][par];
            struct { const char *what; float **slot; int d0, d1; } parts[4] = {
                {"fc1.weight", &st->w1, H, K}, {"fc1.bias", &st->b1, H, 0},
                {"fc2.weight", &st->w2, out, H}, {"fc2.bias", &st->b2, out, 0}};
            for (int k = 0; k < 4; k++) {
                mrt_tensor_ref *r = &refs[n++];
                snprintf(r->name, sizeof r->name, "ctxf.%d.%d.%s", g, par, parts[k].what);
                r->type = MRT_GGUF_F32;
                r->n_dims = parts[k].d1 ? 2 : 1;
                r->dims[0] = parts[k].d0;
                r->dims[1] = parts[k].d1 ? parts[k].d1 : 1;
                r->dims[2] = r->dims[3] = 1;
                r->slot = (void **)parts[k].slot;
            }
        }
    return n;
}

int mrt_params_alloc(params *p, const mrt_config *cfg, int stage, int bits) {
    memset(p, 0, sizeof *p);
    p->cfg = *cfg;
    p->stage = stage;
    p->bits = bits;
    p->ntensors = mrt_params_describe(p, p->refs, &p->w, &p->mw, &p->cf);
    mrt_params_describe(p, p->grefs, &p->g, &p->mg, &p->cg);
    for (int i = 0; i < p->ntensors; i++) p->n += mrt_tensor_ref_elems(&p->refs[i]);
    float **bufs[] = {&p->P, &p->G, &p->M, &p->V, &p->E};
    for (int i = 0; i < 5; i++)
        if (!(*bufs[i] = calloc(p->n, sizeof(float)))) return -1;
    size_t off = 0;
    for (int i = 0; i < p->ntensors; i++) {
        *p->refs[i].slot = p->P + off;
        *p->grefs[i].slot = p->G + off;
        off += mrt_tensor_ref_elems(&p->refs[i]);
    }
    return 0;
}

void mrt_params_free(params *p) {
    free(p->P), free(p->G), free(p->M), free(p->V), free(p->E);
}

/* He-uniform for layers followed by a ReLU, variance-preserving otherwise;
 * biases zero. */
void mrt_params_init(params *p, uint64_t seed) {
    mrt_rng rng;
    mrt_rng_seed(&rng, seed);
    for (int i = 0; i < p->ntensors; i++) {
        mrt_tensor_ref *r = &p->refs[i];
        float *f = *(float **)r->slot;
        size_t n = mrt_tensor_ref_elems(r);
        size_t len = strlen(r->name);
        if (len > 5 && !strcmp(r->name + len - 5, ".bias")) {
            mrt_fill(f, n, 0.0f);
            continue;
        }
        float fan_in = (float)(n / (size_t)r->dims[0]);
        bool before_relu = !strstr(r->name, "enc3") && !strstr(r->name, "embed") &&
                           !strstr(r->name, "gen.out") && !strstr(r->name, "res.conv2");
        mrt_init_uniform(&rng, f, n, sqrtf((before_relu ? 6.0f : 3.0f) / fan_in));
    }
    memcpy(p->E, p->P, sizeof(float) * p->n);
}

/* ---------------------------------------------------- rate control */

/* Rate control: lambda *= exp(LAMBDA_GAIN * (bpp / target - 1)) after
 * every step, on the batch's estimated rate. At a fixed lambda a rate
 * point's rate drifts as its model improves (the 0.02 model's went from
 * 0.0233 to 0.0269 bpp on Kodak over 18,000 steps: models/README.md); a
 * steered lambda holds it. The gain is small because one batch's rate is
 * noisy (about +-10 % at 16 crops): 10 % over the target for 1,000 steps
 * raises lambda by a factor of e^0.2 = 1.22, while the noise alone moves it
 * by a few percent over 10,000 steps. Bounded so that a run that cannot
 * reach its target does not drive lambda to 0 or infinity. */
#define LAMBDA_GAIN 0.002
#define LAMBDA_MIN 1e-4f

float mrt_steer_lambda(float lambda, double bpp, double target) {
    double next = lambda * exp(LAMBDA_GAIN * (bpp / target - 1.0));
    return next < LAMBDA_MIN ? LAMBDA_MIN : next > LAMBDA_MAX ? LAMBDA_MAX : (float)next;
}

/* ------------------------------------------- the pixel losses' start */

double mrt_pixel_l1(float *dout, float *x01, float *out01, const float *out, const float *x,
                    size_t n) {
    memset(dout, 0, sizeof(float) * n);
    double l1 = mrt_l1_loss(dout, out, x, n, 1.0f);
    for (size_t i = 0; i < n; i++) {
        x01[i] = 0.5f * (x[i] + 1.0f);
        out01[i] = 0.5f * (out[i] + 1.0f);
    }
    return l1;
}
