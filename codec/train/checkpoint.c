/*
 * checkpoint.c -- checkpoints (weights, Adam moments, EMA, step, lambda),
 * weights files read into a run (with latent tokens or decoder pairs
 * grown), and the
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
    int new_pairs_from; /* decoder pairs from this one on are grown, not read */
} loading;

static bool in_new_pair(const char *name, int new_pairs_from);

static int get_tensor(void *ctx, const checkpoint_tensor *t) {
    loading *ld = ctx;
    if (in_new_pair(t->ref->name, ld->new_pairs_from)) return 0; /* grow_dec_pairs fills it */
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

/* Decoder pairs of the codec weights in g (dec.K.vit.ln1.weight for
 * K = 0, 1, ...); 0 when g holds none. */
static int file_dec_pairs(const mrt_gguf *g) {
    int k = 0;
    char name[64];
    for (; k < MRT_MAX_PAIRS; k++) {
        snprintf(name, sizeof name, "dec.%d.vit.ln1.weight", k);
        if (!mrt_gguf_find(g, name)) break;
    }
    return k;
}

/* Whether a tensor belongs to a decoder pair numbered new_pairs_from or
 * later (a pair this run adds; new_pairs_from 0: none is added). */
static bool in_new_pair(const char *name, int new_pairs_from) {
    int k;
    return new_pairs_from > 0 && sscanf(name, "dec.%d.", &k) == 1 && k >= new_pairs_from;
}

/* The tensors that make a Bi-RWKV or ViT block's contribution to its
 * residual stream: zero, the block passes its input through unchanged. */
static bool is_block_output(const char *name) {
    static const char *const outputs[] = {".vit.attn.proj.weight", ".vit.attn.proj.bias",
                                          ".vit.mlp.fc2.weight",   ".vit.mlp.fc2.bias",
                                          ".rwkv.att.output.weight", ".rwkv.ffn.value.weight"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof outputs / sizeof *outputs; i++) {
        size_t m = strlen(outputs[i]);
        if (n >= m && !strcmp(name + n - m, outputs[i])) return true;
    }
    return false;
}

/* Gives a run more decoder pairs than the weights it continues (P0 < the
 * run's): the new pairs, numbered P0 and up, come after the old ones, just
 * before dec.ln_out. They start as a fresh random initialisation (the
 * RWKV's decay and mix formulas for their depth, a fixed seed) with every
 * output projection zero, so each block adds nothing to its residual
 * stream and the decoder computes exactly what it computed before; the
 * zero projections get gradients at once, and the blocks grow in from
 * there. Raw and EMA weights alike; Adam's moments of new tensors zero. */
static mrt_status grow_dec_pairs(params *p, int P0, mrt_error *err) {
    mrt_weights fresh;
    float *storage = NULL;
    mrt_status st = mrt_model_init_random(&p->cfg, 0x646563706169727aULL /* "decpairz" */,
                                          &fresh, &storage, err);
    if (st != MRT_OK) return st;
    static mrt_tensor_ref all[MAX_TENSORS];
    int total = mrt_model_tensors(&p->cfg, &fresh, all);
    size_t off = 0;
    for (int i = 0; i < p->ntensors; i++) {
        const mrt_tensor_ref *r = &p->refs[i];
        size_t n = mrt_tensor_ref_elems(r);
        if (in_new_pair(r->name, P0)) {
            const float *src = NULL;
            for (int j = 0; j < total && !src; j++)
                if (!strcmp(all[j].name, r->name)) src = *(float **)all[j].slot;
            if (!src) {
                free(storage);
                return mrt_fail(err, MRT_ERR_MODEL, "growing the decoder: no tensor %s", r->name);
            }
            for (size_t k = 0; k < n; k++) p->P[off + k] = is_block_output(r->name) ? 0.0f : src[k];
            memcpy(p->E + off, p->P + off, sizeof(float) * n);
            memset(p->M + off, 0, sizeof(float) * n);
            memset(p->V + off, 0, sizeof(float) * n);
        }
        off += n;
    }
    free(storage);
    return MRT_OK;
}

/* The decoder pairs a run continuing from g starts with: P0 = g's, and
 * the run's own (p->cfg.dec_pairs) must not be fewer. */
static mrt_status check_dec_pairs(const params *p, const mrt_gguf *g, const char *path, int *P0,
                                  mrt_error *err) {
    *P0 = p->stage > 0 ? file_dec_pairs(g) : 0;
    if (*P0 > p->cfg.dec_pairs)
        return mrt_fail(err, MRT_ERR_MODEL, "%s has %d decoder pairs; this run has %d (a model "
                        "can grow, not shrink)", path, *P0, p->cfg.dec_pairs);
    if (*P0 == p->cfg.dec_pairs) *P0 = 0; /* nothing to grow */
    return MRT_OK;
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
    int P0;
    if ((st = check_dec_pairs(p, g, path, &P0, err)) != MRT_OK) goto done;
    loading ld = {g, msg, sizeof msg, P0};
    if (for_each_checkpoint_tensor(p, get_tensor, &ld) != 0) {
        st = mrt_fail(err, MRT_ERR_MODEL, "resuming: %s", msg);
        goto done;
    }
    if (P0 && (st = grow_dec_pairs(p, P0, err)) != MRT_OK) goto done;
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

/* count(g) (latent tokens per window, decoder pairs) of a model or
 * checkpoint file; 0 if it cannot be read or has none (the run then
 * reports the file properly). */
static int count_in_file(const char *path, int (*count)(const mrt_gguf *)) {
    mrt_gguf *g = NULL;
    char msg[256];
    if (mrt_gguf_open(&g, path, msg, sizeof msg) != 0) return 0;
    int n = count(g);
    mrt_gguf_close(g);
    return n;
}

int mrt_weights_latents(const char *path) { return count_in_file(path, file_latents); }

int mrt_weights_dec_pairs(const char *path) { return count_in_file(path, file_dec_pairs); }

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
    int P0 = 0;
    if (st == MRT_OK) st = check_dec_pairs(p, g, path, &P0, err);
    size_t off = 0;
    for (int i = 0; i < p->ntensors && st == MRT_OK; i++) {
        const mrt_tensor_ref *r = &p->refs[i];
        bool wanted = !prefix || !strncmp(r->name, prefix, strlen(prefix));
        if (in_new_pair(r->name, P0)) {
            /* grow_dec_pairs below */
        } else if (wanted && L0 && L0 < p->cfg.latents && depends_on_latents(r->name)) {
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
    bool grows_here = P0 && (!prefix || !strncmp("dec.", prefix, strlen(prefix)));
    if (st == MRT_OK && grows_here) st = grow_dec_pairs(p, P0, err);
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
