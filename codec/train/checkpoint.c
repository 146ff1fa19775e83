/*
 * checkpoint.c -- checkpoints (weights, Adam moments, EMA, step, lambda),
 * weights files read into a run (with latent tokens grown), and the
 * export of the codec model a run trains
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

/* A checkpoint holds every trained tensor four times: the EMA weights
 * under the plain names (what later stages load), the raw weights and
 * AdamW's moments under prefixes. */
typedef struct {
    char name[96];
    int64_t gdims[4]; /* GGUF order */
    const mrt_tensor_ref *ref;
    float *data;      /* its floats in p->E, P, M or V */
} checkpoint_tensor;

/* Calls each(ctx, t) for every tensor of p's checkpoint, in file order;
 * stops at the first non-zero return and returns it. */
typedef int (*checkpoint_tensor_fn)(void *ctx, const checkpoint_tensor *t);

static int for_each_checkpoint_tensor(const params *p, checkpoint_tensor_fn each, void *ctx) {
    static const char *prefixes[] = {"", "raw.", "adam.m.", "adam.v."};
    float *bufs[] = {p->E, p->P, p->M, p->V};
    for (int k = 0; k < 4; k++) {
        size_t off = 0;
        for (int i = 0; i < p->ntensors; i++) {
            checkpoint_tensor t = {.ref = &p->refs[i], .data = bufs[k] + off};
            snprintf(t.name, sizeof t.name, "%s%s", prefixes[k], t.ref->name);
            mrt_tensor_ref_gguf_dims(t.ref, t.gdims);
            int rc = each(ctx, &t);
            if (rc) return rc;
            off += mrt_tensor_ref_elems(t.ref);
        }
    }
    return 0;
}

static int add_tensor(void *writer, const checkpoint_tensor *t) {
    mrt_gguf_writer_add_tensor(writer, t->name, MRT_GGUF_F32, t->ref->n_dims, t->gdims, t->data);
    return 0;
}

typedef struct {
    const mrt_gguf *g;
    char *msg; /* why a tensor is missing or misshapen */
    size_t msg_size;
} loading;

static int get_tensor(void *ctx, const checkpoint_tensor *t) {
    loading *ld = ctx;
    const float *data = mrt_gguf_get_f32(ld->g, t->name, t->ref->n_dims, t->gdims, ld->msg,
                                         ld->msg_size);
    if (!data) return 1;
    memcpy(t->data, data, sizeof(float) * mrt_tensor_ref_elems(t->ref));
    return 0;
}

mrt_status mrt_checkpoint_save(const params *p, const mrt_train_options *o, const char *path,
                               mrt_error *err) {
    mrt_gguf_writer *w = mrt_gguf_writer_new();
    if (!w) return mrt_fail(err, MRT_ERR_NOMEM, "out of memory");
    mrt_gguf_writer_add_str(w, "general.architecture", "mrt-train");
    mrt_gguf_writer_add_u32(w, "mrt.train.stage", (uint32_t)o->stage);
    mrt_gguf_writer_add_u64(w, "mrt.train.step", (uint64_t)p->step);
    mrt_gguf_writer_add_u64(w, "mrt.train.seed", o->seed);
    mrt_gguf_writer_add_u64(w, "mrt.train.steps", (uint64_t)o->steps);
    mrt_gguf_writer_add_u32(w, "mrt.train.batch", (uint32_t)o->batch);
    mrt_gguf_writer_add_u32(w, "mrt.train.crop", (uint32_t)o->crop);
    mrt_gguf_writer_add_u32(w, "mrt.tok_bits", (uint32_t)p->bits);
    mrt_gguf_writer_add_u32(w, "mrt.dim", (uint32_t)p->cfg.dim);
    if (o->stage > 0) mrt_gguf_writer_add_f32(w, "mrt.train.lambda", p->lambda);
    for (int i = 0; i <= MRT_GEN_STAGES; i++) {
        char key[40];
        snprintf(key, sizeof key, "mrt.gen_width.%d", i);
        mrt_gguf_writer_add_u32(w, key, (uint32_t)p->cfg.gen_width[i]);
    }
    for_each_checkpoint_tensor(p, add_tensor, w);
    char msg[512];
    mrt_status st = MRT_OK;
    if (mrt_gguf_writer_save(w, path, msg, sizeof msg) != 0)
        st = mrt_fail(err, MRT_ERR_IO, "saving the checkpoint: %s", msg);
    mrt_gguf_writer_free(w);
    return st;
}

/* Latent tokens per window of the codec weights in g (enc.latents is
 * (L, D)); 0 when g holds none. */
static int file_latents(const mrt_gguf *g) {
    const mrt_gguf_tensor *t = mrt_gguf_find(g, "enc.latents");
    return t && t->n_dims == 2 && t->dims[1] >= 1 && t->dims[1] <= 64 ? (int)t->dims[1] : 0;
}

mrt_status mrt_checkpoint_load(params *p, const mrt_train_options *o, const char *path,
                               mrt_error *err) {
    mrt_gguf *g = NULL;
    char msg[512];
    if (mrt_gguf_open(&g, path, msg, sizeof msg) != 0)
        return mrt_fail(err, MRT_ERR_MODEL, "resuming: %s", msg);
    mrt_status st = MRT_OK;
    uint64_t step, seed;
    uint32_t bits, stage;
    if (mrt_gguf_meta_u64(g, "mrt.train.step", &step, msg, sizeof msg) ||
        mrt_gguf_meta_u64(g, "mrt.train.seed", &seed, msg, sizeof msg) ||
        mrt_gguf_meta_u32(g, "mrt.tok_bits", &bits, msg, sizeof msg) ||
        mrt_gguf_meta_u32(g, "mrt.train.stage", &stage, msg, sizeof msg)) {
        st = mrt_fail(err, MRT_ERR_MODEL, "resuming: %s", msg);
        goto done;
    }
    if ((int)bits != p->bits || (int)stage != o->stage || seed != o->seed) {
        st = mrt_fail(err, MRT_ERR_MODEL, "resuming %s: it is stage %u with %u bits and seed "
                      "%llu; this run asks for stage %d, %d bits, seed %llu", path, stage, bits,
                      (unsigned long long)seed, o->stage, p->bits, (unsigned long long)o->seed);
        goto done;
    }
    int latents = file_latents(g);
    if (p->stage > 0 && latents != p->cfg.latents) {
        st = mrt_fail(err, MRT_ERR_MODEL, "resuming %s: it has %d latent tokens per window; "
                      "this run asks for %d (--latents)", path, latents, p->cfg.latents);
        goto done;
    }
    loading ld = {g, msg, sizeof msg};
    if (for_each_checkpoint_tensor(p, get_tensor, &ld) != 0) {
        st = mrt_fail(err, MRT_ERR_MODEL, "resuming: %s", msg);
        goto done;
    }
    p->step = (long)step;
    /* older checkpoints have no lambda: the run's --lambda then */
    if (o->stage > 0 && mrt_gguf_meta_f32(g, "mrt.train.lambda", &p->lambda, msg, sizeof msg) == 0) {
        if (!isfinite(p->lambda) || p->lambda < 0 || p->lambda > LAMBDA_MAX) {
            st = mrt_fail(err, MRT_ERR_MODEL, "resuming %s: its lambda %g is not in [0, %g]", path,
                          p->lambda, LAMBDA_MAX);
            goto done;
        }
        p->lambda_saved = true;
    }
done:
    mrt_gguf_close(g);
    return st;
}

/* The latent tokens per window of a model or checkpoint file; 0 if it
 * cannot be read or has none (the run then reports the file properly). */
int mrt_weights_latents(const char *path) {
    mrt_gguf *g = NULL;
    char msg[256];
    if (mrt_gguf_open(&g, path, msg, sizeof msg) != 0) return 0;
    int L = file_latents(g);
    mrt_gguf_close(g);
    return L;
}

static bool depends_on_latents(const char *name) {
    return !strcmp(name, "enc.latents") || !strcmp(name, "dec.mix") ||
           !strcmp(name, "side.fc1.weight");
}

/* Starts a run with L latent tokens per window from weights with L0 < L
 * (a rate point given more room, models/README.md): the three tensors
 * whose shape depends on L are copied into the larger shape. The new
 * tokens' queries start as copies of the old ones plus a little noise (so
 * they can drift apart), and their entries in dec.mix and side.fc1 start
 * at zero, so the decoder's queries and the side bits start out as before. */
static mrt_status grow_latents(const params *p, const mrt_gguf *g, const mrt_tensor_ref *r,
                               int L0, float *dst, mrt_error *err) {
    int L = p->cfg.latents, D = p->cfg.dim, c = p->cfg.channels;
    int win2 = p->cfg.window * p->cfg.window;
    char msg[512];
    if (!strcmp(r->name, "enc.latents")) {
        const float *src = mrt_gguf_get_f32(g, r->name, 2, (int64_t[]){D, L0}, msg, sizeof msg);
        if (!src) return mrt_fail(err, MRT_ERR_MODEL, "%s", msg);
        mrt_rng rng;
        mrt_rng_seed(&rng, 0x6c6174656e7473u); /* "latents" */
        float rms = 0;
        for (int k = 0; k < L0 * D; k++) rms += src[k] * src[k];
        rms = sqrtf(rms / (float)(L0 * D));
        for (int l = 0; l < L; l++)
            for (int k = 0; k < D; k++)
                dst[l * D + k] = src[(l % L0) * D + k] +
                                 (l >= L0 ? 0.1f * rms * mrt_rng_normal(&rng) : 0.0f);
    } else if (!strcmp(r->name, "dec.mix")) {
        const float *src = mrt_gguf_get_f32(g, r->name, 2, (int64_t[]){L0, win2}, msg, sizeof msg);
        if (!src) return mrt_fail(err, MRT_ERR_MODEL, "%s", msg);
        for (int i = 0; i < win2; i++)
            for (int l = 0; l < L; l++) dst[i * L + l] = l < L0 ? src[i * L0 + l] : 0.0f;
    } else if (!strcmp(r->name, "side.fc1.weight")) {
        /* columns: (window of the 2x2 group, token, channel) */
        const float *src = mrt_gguf_get_f32(g, r->name, 2, (int64_t[]){4 * L0 * c, D}, msg,
                                            sizeof msg);
        if (!src) return mrt_fail(err, MRT_ERR_MODEL, "%s", msg);
        for (int o = 0; o < D; o++)
            for (int q = 0; q < 4; q++)
                for (int l = 0; l < L; l++)
                    for (int ch = 0; ch < c; ch++)
                        dst[((size_t)o * 4 + q) * L * c + l * c + ch] =
                            l < L0 ? src[((size_t)o * 4 + q) * L0 * c + l * c + ch] : 0.0f;
    }
    return MRT_OK;
}

/* Copies tensors of a checkpoint (plain names: its EMA weights) into P
 * and E; with `prefix`, only names starting with it. Weights with fewer
 * latent tokens per window than this run's are grown (grow_latents). */
mrt_status mrt_load_weights(params *p, const char *path, const char *prefix, mrt_error *err) {
    mrt_gguf *g = NULL;
    char msg[512];
    if (mrt_gguf_open(&g, path, msg, sizeof msg) != 0)
        return mrt_fail(err, MRT_ERR_MODEL, "%s", msg);
    mrt_status st = MRT_OK;
    int L0 = p->stage > 0 ? file_latents(g) : 0;
    if (L0 > p->cfg.latents) {
        st = mrt_fail(err, MRT_ERR_MODEL, "%s has %d latent tokens per window; this run has "
                      "%d (a model can grow, not shrink)", path, L0, p->cfg.latents);
        L0 = 0;
    }
    size_t off = 0;
    for (int i = 0; i < p->ntensors && st == MRT_OK; i++) {
        const mrt_tensor_ref *r = &p->refs[i];
        bool wanted = !prefix || !strncmp(r->name, prefix, strlen(prefix));
        if (wanted && L0 && L0 < p->cfg.latents && depends_on_latents(r->name)) {
            st = grow_latents(p, g, r, L0, p->P + off, err);
        } else if (wanted) {
            int64_t gdims[4];
            mrt_tensor_ref_gguf_dims(r, gdims);
            const float *data = mrt_gguf_get_f32(g, r->name, r->n_dims, gdims, msg, sizeof msg);
            if (!data)
                st = mrt_fail(err, MRT_ERR_MODEL, "%s", msg);
            else
                memcpy(p->P + off, data, sizeof(float) * mrt_tensor_ref_elems(r));
        }
        off += mrt_tensor_ref_elems(r);
    }
    mrt_gguf_close(g);
    memcpy(p->E, p->P, sizeof(float) * p->n);
    return st;
}

/* Writes the codec model made of the EMA weights (context model rounded to
 * its fixed-point form). */
mrt_status mrt_train_export(const params *p, const mrt_train_options *o, mrt_error *err) {
    params view = *p; /* refs bound to E instead of P */
    mrt_weights w;
    mrt_ctx_float cf;
    static mrt_tensor_ref refs[MAX_TENSORS];
    int n = mrt_params_describe(&view, refs, NULL, &w, &cf);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        *refs[i].slot = p->E + off;
        off += mrt_tensor_ref_elems(&refs[i]);
    }
    size_t nint = mrt_ctx_float_size(&p->cfg);
    int32_t *ints = malloc(sizeof(int32_t) * (nint ? nint : 1));
    if (!ints) return mrt_fail(err, MRT_ERR_NOMEM, "out of memory");
    int32_t *q = ints;
    int K = mrt_ctx_inputs(&p->cfg), H = p->cfg.ctx_hidden;
    for (int g = 0; g < p->cfg.ctx_groups; g++)
        for (int par = 0; par < 2; par++) {
            int out = 2 * p->cfg.ctx_group_size[g];
            w.ctx[g][par].w1 = q, q += (size_t)H * K;
            w.ctx[g][par].b1 = q, q += H;
            w.ctx[g][par].w2 = q, q += (size_t)out * H;
            w.ctx[g][par].b2 = q, q += out;
        }
    mrt_ctx_float_to_int(&p->cfg, &cf, &w);
    mrt_status st = mrt_model_save(&p->cfg, &w, o->rate_id, o->mse_weight, 1.0f, o->export_path,
                                   err);
    free(ints);
    return st;
}
