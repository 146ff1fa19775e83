/*
 * codec_step.c -- stages 1 and 2: the codec's training step (analysis,
 * rate from the float context model, synthesis, pixel generator, losses and
 * their backward passes), its activations and the start of a run
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

/* Stage 1 starts from the codec's random initialisation with the
 * tokenizer's generator; stage 2 from a stage-1 checkpoint or from a codec
 * model file (fine-tuning a shipped model on one's own photos: its integer
 * context model is read back into floats). */
mrt_status mrt_codec_train_init(params *p, const mrt_train_options *o, mrt_error *err) {
    if (o->stage == 2) {
        if (!o->init)
            return mrt_fail(err, MRT_ERR_ARGUMENT, "stage 2 needs --init (a stage-1 checkpoint "
                            "or a model)");
        mrt_model *m = NULL;
        if (mrt_model_load(o->init, &m, NULL) != MRT_OK) return mrt_load_weights(p, o->init, NULL, err);
        mrt_status st = mrt_load_weights(p, o->init, "enc.", err);
        static const char *parts[] = {"side.", "dec.", "gen."};
        for (int i = 0; i < 3 && st == MRT_OK; i++) st = mrt_load_weights(p, o->init, parts[i], err);
        mrt_ctx_float_from_int(&p->cfg, mrt_model_weights(m), &p->cf);
        memcpy(p->E, p->P, sizeof(float) * p->n);
        mrt_model_free(m);
        return st;
    }
    mrt_weights tmp;
    float *storage = NULL;
    mrt_status st = mrt_model_init_random(&p->cfg, o->seed, &tmp, &storage, err);
    if (st != MRT_OK) return st;
    static mrt_tensor_ref all[MAX_TENSORS];
    int total = mrt_model_tensors(&p->cfg, &tmp, all);
    size_t off = 0;
    for (int i = 0; i < total; i++) {
        if (all[i].type != MRT_GGUF_F32) continue;
        size_t n = mrt_tensor_ref_elems(&all[i]);
        memcpy(p->P + off, *(float **)all[i].slot, sizeof(float) * n);
        off += n;
    }
    mrt_ctx_float_from_int(&p->cfg, &tmp, &p->cf);
    free(storage);
    memcpy(p->E, p->P, sizeof(float) * p->n);
    return mrt_load_weights(p, o->tokenizer, "gen.", err);
}

void mrt_codec_acts_free(codec_acts *c, const mrt_config *cfg) {
    mrt_analysis_acts_free(&c->an, cfg);
    mrt_synthesis_acts_free(&c->sy, cfg);
    mrt_gen_acts_free(&c->gen);
    if (c->stage == 1) {
        mrt_tok_acts_free(&c->tok);
        mrt_params_free(&c->tokp);
    }
    free(c->y_noisy), free(c->dy), free(c->dy_rate), free(c->dmap);
    free(c->x01), free(c->out01), free(c->dout), free(c->side);
    free(c->mu), free(c->y_hat);
}

int mrt_codec_acts_alloc(codec_acts *c, params *p, const mrt_train_options *o, mrt_error *err) {
    const mrt_config *cfg = &p->cfg;
    memset(c, 0, sizeof *c);
    c->B = o->batch, c->S = o->crop, c->stage = o->stage;
    c->train_encoder = o->stage == 2 && o->train_encoder;
    c->mse_weight = o->mse_weight; /* 0 unless stage 2 (mrt_train refuses it elsewhere) */
    c->lsh = mrt_latent_shape_of(cfg, o->crop, o->crop);
    size_t ny = (size_t)o->batch * c->lsh.ntokens * cfg->channels;
    size_t img = (size_t)o->batch * 3 * o->crop * o->crop;
    int g = o->crop / cfg->patch;
    size_t nmap = (size_t)o->batch * cfg->dim * g * g;
    size_t nside = (size_t)o->batch * c->lsh.ngx * c->lsh.ngy * cfg->side_bits;
    if (mrt_analysis_acts_alloc(&c->an, cfg, o->batch, o->crop, o->crop) ||
        mrt_synthesis_acts_alloc(&c->sy, cfg, o->batch, o->crop, o->crop) ||
        !(c->y_noisy = malloc(sizeof(float) * ny)) || !(c->dy = malloc(sizeof(float) * ny)) ||
        !(c->dy_rate = malloc(sizeof(float) * ny)) || !(c->dmap = malloc(sizeof(float) * nmap)) ||
        !(c->x01 = malloc(sizeof(float) * img)) || !(c->out01 = malloc(sizeof(float) * img)) ||
        !(c->dout = malloc(sizeof(float) * img)) || !(c->side = malloc(nside + 1)))
        return mrt_fail(err, MRT_ERR_NOMEM, "out of memory"), -1;
    if (o->stage == 2 &&
        (mrt_gen_acts_alloc(&c->gen, o->batch, g, g, cfg->dim, cfg->gen_width, true) != 0 ||
         !(c->mu = malloc(sizeof(float) * ny)) || !(c->y_hat = malloc(sizeof(float) * ny))))
        return mrt_fail(err, MRT_ERR_NOMEM, "out of memory"), -1;
    if (o->stage == 1) {
        if (mrt_params_alloc(&c->tokp, cfg, 0, o->tok_bits) != 0 ||
            mrt_tok_acts_alloc(&c->tok, cfg, o->tok_bits, o->batch, o->crop) != 0)
            return mrt_fail(err, MRT_ERR_NOMEM, "out of memory"), -1;
        if (mrt_load_weights(&c->tokp, o->tokenizer, NULL, err) != MRT_OK) return -1;
    }
    /* the float context model is the last block of the table */
    size_t off = 0;
    for (int i = 0; i < p->ntensors; i++) {
        if (!strncmp(p->refs[i].name, "ctxf.", 5)) break;
        off += mrt_tensor_ref_elems(&p->refs[i]);
    }
    c->ctx_offset = off;
    return 0;
}

step_stats mrt_codec_step(const mrt_rt *rt, params *p, codec_acts *c, const float *x,
                          float lambda, uint64_t noise_seed) {
    const mrt_config *cfg = &p->cfg;
    int B = c->B, S = c->S, g = S / cfg->patch, D = cfg->dim;
    size_t ny = (size_t)B * c->lsh.ntokens * cfg->channels, img = (size_t)B * 3 * S * S;
    size_t nmap = (size_t)B * D * g * g;
    step_stats st = {0};
    mrt_analysis_train_forward(rt, cfg, &p->mw, &c->an, x);
    /* additive uniform noise: the training stand-in for rounding */
    mrt_rng rng;
    mrt_rng_seed(&rng, noise_seed);
    for (size_t i = 0; i < ny; i++) c->y_noisy[i] = c->an.y[i] + mrt_rng_uniform(&rng) - 0.5f;
    if (mrt_side_bits(rt, cfg, &p->mw, &c->lsh, B, c->an.y, c->side) != MRT_OK) {
        st.loss = NAN;
        return st;
    }
    memset(c->dy_rate, 0, sizeof(float) * ny);
    double bits = mrt_ctx_float_bits(cfg, &p->cf, &c->lsh, B, c->side, c->y_noisy, c->dy_rate,
                                     &p->cg, NULL, NULL);
    double pixels = (double)B * S * S;
    double side_bits = (double)B * c->lsh.ngx * c->lsh.ngy * cfg->side_bits;
    st.entropy = (bits + side_bits) / pixels; /* bpp estimate */
    const float *y_dec = c->y_noisy;
    if (c->stage == 2) {
        /* The decoder trains on what the bitstream carries,
         * mu + round(y - mu), not on the noisy stand-in: at these rates
         * most residuals round to 0, so a decoder trained on y + noise
         * leans on detail that never arrives. The means come from the
         * float context model run on the decoded latent itself (each
         * group's mean depends only on earlier groups, so a few passes
         * settle it), as the integer model does when decoding. The rate
         * stays on y + noise, which is differentiable. With
         * --train-encoder the rounding passes the decoder's gradient
         * straight through to y (d y_hat / d y = 1). */
        memcpy(c->y_hat, c->y_noisy, sizeof(float) * ny);
        for (int pass = 0; pass < 2 * cfg->ctx_groups; pass++) {
            mrt_ctx_float_bits(cfg, &p->cf, &c->lsh, B, c->side, c->y_hat, NULL, NULL, c->mu,
                               NULL);
            for (size_t i = 0; i < ny; i++)
                c->y_hat[i] = c->mu[i] + floorf(c->an.y[i] - c->mu[i] + 0.5f);
        }
        y_dec = c->y_hat;
    }
    mrt_synthesis_train_forward(rt, cfg, &p->mw, &c->sy, y_dec);
    memset(c->dmap, 0, sizeof(float) * nmap);
    double distortion;
    if (c->stage == 1) {
        mrt_tok_encode(rt, &c->tokp.w, &c->tok, x); /* target features: c->tok.e */
        double se = 0;
        for (size_t i = 0; i < nmap; i++) {
            double d = (double)c->sy.map[i] - c->tok.e[i];
            se += d * d;
            c->dmap[i] = (float)(2.0 * d / nmap);
        }
        distortion = st.l1 = se / nmap; /* reported in the l1 column: feature MSE */
        st.msssim = 0;
        st.psnr = 0;
    } else {
        mrt_gen_forward(rt, &p->mw.gen, &c->gen, c->sy.map);
        const float *out = c->gen.out;
        st.l1 = mrt_pixel_l1(c->dout, c->x01, c->out01, out, x, img);
        /* w * MSE on [0, 1] values; d(out01)/d(out) = 1/2 halves the scale.
         * Without the term the MSE is still measured, for the PSNR. */
        double mse = mrt_mse_loss(c->mse_weight > 0 ? c->dout : NULL, c->out01, c->x01, img,
                                  0.5f * c->mse_weight);
        st.psnr = 10.0 * log10(1.0 / (mse > 1e-10 ? mse : 1e-10));
        st.msssim = mrt_msssim(rt, c->dout, c->out01, c->x01, B, 3, S, S, -0.5f);
        distortion = st.l1 + (1.0 - st.msssim) + c->mse_weight * mse;
        mrt_gen_backward(rt, &p->mw.gen, &p->mg.gen, &c->gen, c->sy.map, c->dout, c->dmap);
    }
    memset(c->dy, 0, sizeof(float) * ny);
    bool train_encoder = c->stage == 1 || c->train_encoder;
    mrt_synthesis_train_backward(rt, cfg, &p->mw, &p->mg, &c->sy, c->dmap,
                                 train_encoder ? c->dy : NULL);
    /* the rate term: d(lambda * bpp) */
    float scale = (float)(lambda / pixels);
    for (size_t i = 0; i < ny; i++) c->dy[i] += scale * c->dy_rate[i];
    for (size_t i = c->ctx_offset; i < p->n; i++) p->G[i] *= scale;
    if (train_encoder) mrt_analysis_train_backward(rt, cfg, &p->mw, &p->mg, &c->an, c->dy);
    st.loss = distortion + lambda * st.entropy;
    return st;
}
