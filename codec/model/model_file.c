/*
 * model_file.c -- a model's weights file: the configuration in GGUF
 * metadata, the tensors bound to the model's slots (mapped, checked:
 * finite floats, context-model integers within MRT_CTX_WEIGHT_MAX, no
 * unknown tensor), saving, and seeded random weights. The codec's
 * mrt_model (coding/codec.c) is this plus the entropy coder's tables.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "status.h"

#define MAX_TENSORS 512


/* ------------------------------------------------------------ config I/O */

/* Metadata keys of the configuration, in one table for reading and writing. */
#define CONFIG_KEYS(X)                     \
    X("mrt.patch", patch)                  \
    X("mrt.window", window)                \
    X("mrt.dim", dim)                      \
    X("mrt.heads", heads)                  \
    X("mrt.ffn", ffn)                      \
    X("mrt.latents", latents)              \
    X("mrt.enc_pairs", enc_pairs)          \
    X("mrt.dec_pairs", dec_pairs)          \
    X("mrt.channels", channels)            \
    X("mrt.side_bits", side_bits)          \
    X("mrt.ctx_groups", ctx_groups)        \
    X("mrt.ctx_hidden", ctx_hidden)

/* An optional f32 metadata key: `absent` when the file does not have it,
 * else its value, which must lie in [lo, hi] (NaN does not). */
static mrt_status read_optional_f32(const mrt_gguf *g, const char *key, float absent, float lo,
                                    float hi, float *out, mrt_error *err) {
    char msg[256];
    *out = absent;
    if (!mrt_gguf_find_kv(g, key)) return MRT_OK;
    if (mrt_gguf_meta_f32(g, key, out, msg, sizeof msg) != 0)
        return mrt_fail(err, MRT_ERR_MODEL, "%s", msg);
    if (!(*out >= lo && *out <= hi))
        return mrt_fail(err, MRT_ERR_MODEL, "%s: %s %g is outside [%g, %g]", mrt_gguf_label(g),
                        key, *out, (double)lo, (double)hi);
    return MRT_OK;
}

static mrt_status read_config(const mrt_gguf *g, mrt_config *c, int *rate_id, float *mse_weight,
                              float *working_scale, mrt_error *err) {
    char msg[256];
    uint32_t v;
    const char *arch;
    size_t arch_len;
    memset(c, 0, sizeof *c);
    if (mrt_gguf_meta_str(g, "general.architecture", &arch, &arch_len, msg, sizeof msg) != 0 ||
        arch_len != 3 || memcmp(arch, "mrt", 3) != 0)
        return mrt_fail(err, MRT_ERR_MODEL, "%s: not an mrt model (general.architecture "
                        "must be \"mrt\")", mrt_gguf_label(g));
#define READ_KEY(key, field)                                                          \
    if (mrt_gguf_meta_u32(g, key, &v, msg, sizeof msg) != 0) \
        return mrt_fail(err, MRT_ERR_MODEL, "%s", msg);                                 \
    if (v > 1000000) return mrt_fail(err, MRT_ERR_MODEL, "%s: %s = %u is absurd", mrt_gguf_label(g), key, v); \
    c->field = (int)v;
    CONFIG_KEYS(READ_KEY)
#undef READ_KEY
    for (int i = 0; i < c->ctx_groups && i < MRT_MAX_CTX_GROUPS; i++) {
        char key[48];
        snprintf(key, sizeof key, "mrt.ctx_group_size.%d", i);
        if (mrt_gguf_meta_u32(g, key, &v, msg, sizeof msg) != 0)
            return mrt_fail(err, MRT_ERR_MODEL, "%s", msg);
        c->ctx_group_size[i] = v > 100000 ? 100000 : (int)v;
    }
    for (int i = 0; i <= MRT_MAX_GEN_STAGES; i++) {
        char key[48];
        snprintf(key, sizeof key, "mrt.gen_width.%d", i);
        if (mrt_gguf_meta_u32(g, key, &v, msg, sizeof msg) != 0)
            return mrt_fail(err, MRT_ERR_MODEL, "%s", msg);
        c->gen_width[i] = v > 100000 ? 100000 : (int)v;
    }
    if (mrt_gguf_meta_u32(g, "mrt.rate_id", &v, msg, sizeof msg) != 0)
        return mrt_fail(err, MRT_ERR_MODEL, "%s", msg);
    if (v > 255) return mrt_fail(err, MRT_ERR_MODEL, "%s: mrt.rate_id %u is over 255", mrt_gguf_label(g), v);
    *rate_id = (int)v;
    /* optional: models trained without --mse-weight do not have the first,
     * only rate points derived from other weights the second */
    mrt_status st;
    if ((st = read_optional_f32(g, "mrt.train.mse_weight", 0.0f, 0.0f, MRT_MAX_MSE_WEIGHT,
                                mse_weight, err)) != MRT_OK ||
        (st = read_optional_f32(g, "mrt.working_scale", 1.0f, MRT_MIN_WORKING_SCALE, 1.0f,
                                working_scale, err)) != MRT_OK)
        return st;
    st = mrt_config_validate(c, err);
    if (st != MRT_OK) return mrt_fail(err, st, "%s: %s", mrt_gguf_label(g), err ? err->message : "");
    return MRT_OK;
}

static int write_config(mrt_gguf_writer *wr, const mrt_config *c, int rate_id, float mse_weight,
                        float working_scale) {
    int bad = mrt_gguf_writer_add_str(wr, "general.architecture", "mrt");
#define WRITE_KEY(key, field) bad |= mrt_gguf_writer_add_u32(wr, key, (uint32_t)c->field);
    CONFIG_KEYS(WRITE_KEY)
#undef WRITE_KEY
    for (int i = 0; i < c->ctx_groups; i++) {
        char key[48];
        snprintf(key, sizeof key, "mrt.ctx_group_size.%d", i);
        bad |= mrt_gguf_writer_add_u32(wr, key, (uint32_t)c->ctx_group_size[i]);
    }
    for (int i = 0; i <= MRT_MAX_GEN_STAGES; i++) {
        char key[48];
        snprintf(key, sizeof key, "mrt.gen_width.%d", i);
        bad |= mrt_gguf_writer_add_u32(wr, key, (uint32_t)c->gen_width[i]);
    }
    bad |= mrt_gguf_writer_add_u32(wr, "mrt.rate_id", (uint32_t)rate_id);
    if (mse_weight > 0.0f) bad |= mrt_gguf_writer_add_f32(wr, "mrt.train.mse_weight", mse_weight);
    if (working_scale < 1.0f)
        bad |= mrt_gguf_writer_add_f32(wr, "mrt.working_scale", working_scale);
    return bad;
}

/* ------------------------------------------------------------ load/save */

mrt_status mrt_model_file_open(const char *path, mrt_model_file *f, mrt_error *err) {
    char msg[512];
    if (!path || !f) return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_model_file_open: NULL argument");
    memset(f, 0, sizeof *f);
    mrt_tensor_ref *refs = calloc(MAX_TENSORS, sizeof *refs);
    mrt_status st = MRT_OK;
    if (!refs) {
        st = mrt_fail(err, MRT_ERR_NOMEM, "out of memory loading %s", path);
        goto fail;
    }
    if (mrt_gguf_open(&f->file, path, msg, sizeof msg) != 0) {
        st = mrt_fail(err, MRT_ERR_MODEL, "%s", msg);
        goto fail;
    }
    if ((st = read_config(f->file, &f->cfg, &f->rate_id, &f->mse_weight,
                          &f->working_scale, err)) != MRT_OK) goto fail;
    int n = mrt_model_tensors(&f->cfg, &f->w, NULL);
    if (n > MAX_TENSORS) {
        st = mrt_fail(err, MRT_ERR_MODEL, "%s: configuration needs %d tensors", path, n);
        goto fail;
    }
    mrt_model_tensors(&f->cfg, &f->w, refs);
    for (int i = 0; i < n; i++) {
        int64_t gdims[4];
        mrt_tensor_ref_gguf_dims(&refs[i], gdims);
        const mrt_gguf_tensor *t = mrt_gguf_get_tensor(f->file, refs[i].name, refs[i].type,
                                                       refs[i].n_dims, gdims, msg, sizeof msg);
        if (!t) {
            st = mrt_fail(err, MRT_ERR_MODEL, "%s", msg);
            goto fail;
        }
        *refs[i].slot = (void *)t->data; /* read-only mapping; never written */
        size_t count = mrt_tensor_ref_elems(&refs[i]);
        if (refs[i].type == MRT_GGUF_F32) {
            const float *v = t->data;
            for (size_t k = 0; k < count; k++)
                if (!isfinite(v[k])) {
                    st = mrt_fail(err, MRT_ERR_MODEL, "%s: tensor '%s' holds a non-finite "
                                  "value at index %zu", path, refs[i].name, k);
                    goto fail;
                }
        } else {
            const int32_t *q = t->data;
            for (size_t k = 0; k < count; k++)
                if (q[k] > MRT_CTX_WEIGHT_MAX || q[k] < -MRT_CTX_WEIGHT_MAX) {
                    st = mrt_fail(err, MRT_ERR_MODEL, "%s: tensor '%s' value %d at index %zu "
                                  "is outside +-%d", path, refs[i].name, q[k], k, MRT_CTX_WEIGHT_MAX);
                    goto fail;
                }
        }
    }
    if (mrt_gguf_tensor_count(f->file) != n) {
        /* name the first tensor the configuration does not know */
        for (int i = 0; i < mrt_gguf_tensor_count(f->file); i++) {
            const char *name = mrt_gguf_tensor_at(f->file, i)->name;
            bool known = false;
            for (int j = 0; j < n && !known; j++) known = strcmp(refs[j].name, name) == 0;
            if (!known) {
                st = mrt_fail(err, MRT_ERR_MODEL, "%s: unexpected tensor '%s'", path, name);
                goto fail;
            }
        }
    }
    memcpy(f->fingerprint, mrt_gguf_sha256(f->file), 32);
    f->path = strdup(path);
    if (!f->path) {
        st = mrt_fail(err, MRT_ERR_NOMEM, "out of memory loading %s", path);
        goto fail;
    }
    free(refs);
    return mrt_ok(err);
fail:
    free(refs);
    mrt_model_file_close(f);
    return st;
}

bool mrt_model_file_same_weights(const mrt_model_file *a, const mrt_model_file *b) {
    /* the MSE weight is refinement's objective: part of what the weights code */
    if (memcmp(&a->cfg, &b->cfg, sizeof a->cfg) != 0 || a->mse_weight != b->mse_weight)
        return false;
    mrt_tensor_ref *ra = calloc(2 * MAX_TENSORS, sizeof *ra);
    if (!ra) return false; /* only a missed saving: the search then tries both */
    mrt_tensor_ref *rb = ra + MAX_TENSORS;
    mrt_weights wa = a->w, wb = b->w; /* the table wants writable slots */
    int n = mrt_model_tensors(&a->cfg, &wa, ra);
    mrt_model_tensors(&b->cfg, &wb, rb);
    bool same = true;
    /* int32 and float tensors both take 4 bytes an element */
    for (int i = 0; i < n && same; i++)
        same = memcmp(*ra[i].slot, *rb[i].slot, mrt_tensor_ref_elems(&ra[i]) * 4) == 0;
    free(ra);
    return same;
}

void mrt_model_file_close(mrt_model_file *f) {
    if (!f) return;
    mrt_gguf_close(f->file);
    free(f->path);
    memset(f, 0, sizeof *f);
}

mrt_status mrt_model_save(const mrt_config *cfg, const mrt_weights *w, int rate_id,
                          float mse_weight, float working_scale, const char *path,
                          mrt_error *err) {
    if (!mrt_mse_weight_ok(mse_weight))
        return mrt_fail(err, MRT_ERR_ARGUMENT, "saving %s: MSE weight %g is outside [0, %g]",
                        path, (double)mse_weight, (double)MRT_MAX_MSE_WEIGHT);
    if (!mrt_working_scale_ok(working_scale))
        return mrt_fail(err, MRT_ERR_ARGUMENT, "saving %s: working scale %g is outside [%g, 1]",
                        path, (double)working_scale, (double)MRT_MIN_WORKING_SCALE);
    mrt_tensor_ref *refs = calloc(MAX_TENSORS, sizeof *refs);
    mrt_gguf_writer *wr = mrt_gguf_writer_new();
    mrt_weights copy = *w; /* the table wants writable slots */
    char msg[512];
    mrt_status st = MRT_OK;
    if (!refs || !wr) {
        st = mrt_fail(err, MRT_ERR_NOMEM, "out of memory saving %s", path);
        goto done;
    }
    int n = mrt_model_tensors(cfg, &copy, refs);
    int bad = write_config(wr, cfg, rate_id, mse_weight, working_scale);
    for (int i = 0; i < n && !bad; i++) {
        int64_t gdims[4];
        mrt_tensor_ref_gguf_dims(&refs[i], gdims);
        bad |= mrt_gguf_writer_add_tensor(wr, refs[i].name, refs[i].type, refs[i].n_dims, gdims,
                                          *refs[i].slot);
    }
    if (mrt_gguf_writer_save(wr, path, msg, sizeof msg) != 0)
        st = mrt_fail(err, MRT_ERR_IO, "%s", msg);
done:
    mrt_gguf_writer_free(wr);
    free(refs);
    return st;
}

mrt_status mrt_model_init_random(const mrt_config *cfg, uint64_t seed, mrt_weights *w,
                                 float **storage, mrt_error *err) {
    mrt_tensor_ref *refs = calloc(MAX_TENSORS, sizeof *refs);
    if (!refs) return mrt_fail(err, MRT_ERR_NOMEM, "out of memory");
    int n = mrt_model_tensors(cfg, w, refs);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += mrt_tensor_ref_elems(&refs[i]);
    float *buf = malloc(sizeof(float) * total); /* int32 tensors share the 4-byte slots */
    if (!buf) {
        free(refs);
        return mrt_fail(err, MRT_ERR_NOMEM, "out of memory");
    }
    mrt_rng rng;
    mrt_rng_seed(&rng, seed);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t count = mrt_tensor_ref_elems(&refs[i]);
        *refs[i].slot = buf + off;
        if (refs[i].type == MRT_GGUF_I32) {
            /* context model: small Q12 weights; biases put mu near 0 and
             * the scale index near the middle of the table */
            int32_t *q = (int32_t *)(buf + off);
            bool is_bias = strstr(refs[i].name, ".bias") != NULL;
            bool is_out = strstr(refs[i].name, "fc2") != NULL;
            for (size_t k = 0; k < count; k++) {
                if (!is_bias)
                    q[k] = (int32_t)((mrt_rng_uniform(&rng) - 0.5f) * 0.2f * 4096.0f);
                else if (is_out && k >= count / 2)
                    q[k] = 24 << 16; /* scale index ~24 */
                else
                    q[k] = 0;
            }
        } else {
            float *f = buf + off;
            const char *nm = refs[i].name;
            size_t len = strlen(nm);
            bool bias = len > 5 && strcmp(nm + len - 5, ".bias") == 0;
            bool norm_w = strstr(nm, "ln") && len > 7 && strcmp(nm + len - 7, ".weight") == 0;
            if (norm_w)
                mrt_fill(f, count, 1.0f);
            else if (bias)
                mrt_fill(f, count, 0.0f);
            else {
                /* variance-preserving uniform init (He init before the
                 * generator's ReLUs), so that even an untrained model draws
                 * a picture with structure: the tests then compare real
                 * pixels, not a flat grey */
                int64_t fan_in = refs[i].n_dims >= 2 ? (int64_t)(count / (size_t)refs[i].dims[0]) : 1;
                float gain = strncmp(nm, "gen.", 4) == 0 ? 6.0f : 3.0f;
                mrt_init_uniform(&rng, f, count, sqrtf(gain / (float)fan_in));
            }
        }
        off += count;
    }
    /* the RWKV decay/bonus/mix parameters follow their formula */
    for (int i = 0; i < cfg->enc_pairs; i++)
        mrt_rwkv_init(&w->enc_rwkv[i], cfg->dim, cfg->ffn, i, cfg->enc_pairs, &rng);
    for (int i = 0; i < cfg->dec_pairs; i++)
        mrt_rwkv_init(&w->dec_rwkv[i], cfg->dim, cfg->ffn, i, cfg->dec_pairs, &rng);
    free(refs);
    *storage = buf;
    return MRT_OK;
}

mrt_status mrt_model_write_random_config(const mrt_config *cfg, const char *path, uint64_t seed,
                                         int rate_id, mrt_error *err) {
    if (!path) return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_model_write_random: NULL path");
    if (rate_id < 0 || rate_id > 255)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "rate id %d is outside 0..255", rate_id);
    mrt_weights w;
    float *storage = NULL;
    mrt_status st = mrt_model_init_random(cfg, seed, &w, &storage, err);
    if (st == MRT_OK) st = mrt_model_save(cfg, &w, rate_id, 0.0f, 1.0f, path, err);
    free(storage);
    return st == MRT_OK ? mrt_ok(err) : st;
}

mrt_status mrt_model_write_random(const char *path, uint64_t seed, int rate_id, mrt_error *err) {
    mrt_config cfg = mrt_config_xs();
    return mrt_model_write_random_config(&cfg, path, seed, rate_id, err);
}

