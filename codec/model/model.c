/*
 * model.c -- configuration, the table of tensors, and loading/saving a
 * model as a GGUF weights file.
 *
 * The table (mrt_model_tensors) is the single description of the model's
 * parameters: random initialisation, saving, loading and shape checking all
 * walk it, so a tensor can never be saved under one name and looked for
 * under another.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "mrt_sha256.h"
#include "status.h"

mrt_config mrt_config_xs(void) {
    mrt_config c;
    memset(&c, 0, sizeof c);
    c.patch = 8;
    c.window = 8;
    c.dim = 64;
    c.heads = 4;
    c.ffn = 256;
    c.latents = 2;
    c.enc_pairs = 2;
    c.dec_pairs = 2;
    c.channels = 16;
    c.side_bits = 8;
    c.ctx_groups = 3;
    c.ctx_group_size[0] = 4;
    c.ctx_group_size[1] = 4;
    c.ctx_group_size[2] = 8;
    c.ctx_hidden = 32;
    c.gen_width[0] = 64;
    c.gen_width[1] = 32;
    c.gen_width[2] = 16;
    c.gen_width[3] = 16;
    return c;
}

static mrt_status bad_config(mrt_error *err, const char *what, int value, int lo, int hi) {
    return mrt_fail(err, MRT_ERR_MODEL, "model configuration: %s = %d is outside %d..%d", what,
                    value, lo, hi);
}

mrt_status mrt_config_validate(const mrt_config *c, mrt_error *err) {
    /* Bounds keep every derived size far from int overflow and the
     * context model's int64 accumulators exact. */
    if (c->patch != 8) return bad_config(err, "patch", c->patch, 8, 8);
    if (c->window < 1 || c->window > 32) return bad_config(err, "window", c->window, 1, 32);
    if (c->dim < 4 || c->dim > 1024) return bad_config(err, "dim", c->dim, 4, 1024);
    if (c->heads < 1 || c->heads > 64) return bad_config(err, "heads", c->heads, 1, 64);
    if (c->dim % c->heads != 0)
        return mrt_fail(err, MRT_ERR_MODEL, "model configuration: dim %d is not a multiple of "
                        "heads %d", c->dim, c->heads);
    if (c->ffn < 1 || c->ffn > 8192) return bad_config(err, "ffn", c->ffn, 1, 8192);
    if (c->latents < 1 || c->latents > 64) return bad_config(err, "latents", c->latents, 1, 64);
    if (c->enc_pairs < 1 || c->enc_pairs > MRT_MAX_PAIRS)
        return bad_config(err, "enc_pairs", c->enc_pairs, 1, MRT_MAX_PAIRS);
    if (c->dec_pairs < 1 || c->dec_pairs > MRT_MAX_PAIRS)
        return bad_config(err, "dec_pairs", c->dec_pairs, 1, MRT_MAX_PAIRS);
    if (c->channels < 1 || c->channels > 256) return bad_config(err, "channels", c->channels, 1, 256);
    if (c->side_bits < 0 || c->side_bits > 16)
        return bad_config(err, "side_bits", c->side_bits, 0, 16);
    if (c->ctx_groups < 1 || c->ctx_groups > MRT_MAX_CTX_GROUPS)
        return bad_config(err, "ctx_groups", c->ctx_groups, 1, MRT_MAX_CTX_GROUPS);
    int sum = 0;
    for (int g = 0; g < c->ctx_groups; g++) {
        if (c->ctx_group_size[g] < 1 || c->ctx_group_size[g] > c->channels)
            return bad_config(err, "ctx_group_size", c->ctx_group_size[g], 1, c->channels);
        sum += c->ctx_group_size[g];
    }
    if (sum != c->channels)
        return mrt_fail(err, MRT_ERR_MODEL, "model configuration: context groups cover %d "
                        "channels, the latent has %d", sum, c->channels);
    if (c->ctx_hidden < 1 || c->ctx_hidden > 1024)
        return bad_config(err, "ctx_hidden", c->ctx_hidden, 1, 1024);
    for (int s = 0; s <= MRT_MAX_GEN_STAGES; s++)
        if (c->gen_width[s] < 1 || c->gen_width[s] > 1024)
            return bad_config(err, "gen_width", c->gen_width[s], 1, 1024);
    return MRT_OK;
}

/* ---------------------------------------------------------- the table */

typedef struct {
    mrt_tensor_ref *refs; /* NULL: only count */
    int n;
} table;

static void add(table *t, mrt_gguf_type type, void **slot, int n_dims, const int64_t *dims,
                const char *fmt, ...) {
    if (t->refs) {
        mrt_tensor_ref *r = &t->refs[t->n];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->name, sizeof r->name, fmt, ap);
        va_end(ap);
        r->type = type;
        r->slot = slot;
        r->n_dims = n_dims;
        for (int i = 0; i < 4; i++) r->dims[i] = i < n_dims ? dims[i] : 1;
    }
    t->n++;
}

static void add_f32(table *t, float **slot, int64_t d0, int64_t d1, const char *fmt,
                    const char *arg) {
    int64_t dims[2] = {d0, d1};
    add(t, MRT_GGUF_F32, (void **)slot, d1 > 0 ? 2 : 1, dims, fmt, arg);
}

static void add_i32(table *t, int32_t **slot, int64_t d0, int64_t d1, const char *name) {
    int64_t dims[2] = {d0, d1};
    add(t, MRT_GGUF_I32, (void **)slot, d1 > 0 ? 2 : 1, dims, "%s", name);
}

/* A block's parameters under a prefix ("enc.0.rwkv."). */
static void add_block(table *t, const mrt_param_ref *refs, int count, const char *prefix) {
    for (int i = 0; i < count; i++) {
        int64_t dims[2] = {refs[i].dims[0], refs[i].dims[1]};
        add(t, MRT_GGUF_F32, (void **)refs[i].slot, refs[i].n_dims, dims, "%s%s", prefix,
            refs[i].name);
    }
}

static void add_linear(table *t, float **w, float **b, int out, int in, const char *name) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s.weight", name);
    add_f32(t, w, out, in, "%s", buf);
    snprintf(buf, sizeof buf, "%s.bias", name);
    add_f32(t, b, out, 0, "%s", buf);
}

static void add_conv(table *t, float **w, float **b, int out, int in, int k, const char *name) {
    int64_t dims[4] = {out, in, k, k};
    add(t, MRT_GGUF_F32, (void **)w, 4, dims, "%s.weight", name);
    add_f32(t, b, out, 0, "%s.bias", name);
}

/* The generator's tensors under `prefix` (also used by the tokenizer). */
static void mrt_gen_tensor_table(table *t, mrt_gen_weights *g, int cin, const int *gw,
                                 const char *prefix) {
    char name[48];
    snprintf(name, sizeof name, "%s.in", prefix);
    add_conv(t, &g->in_w, &g->in_b, gw[0], cin, 3, name);
    snprintf(name, sizeof name, "%s.res.conv1", prefix);
    add_conv(t, &g->res1_w, &g->res1_b, gw[0], gw[0], 3, name);
    snprintf(name, sizeof name, "%s.res.conv2", prefix);
    add_conv(t, &g->res2_w, &g->res2_b, gw[0], gw[0], 3, name);
    for (int s = 0; s < MRT_GEN_STAGES; s++) {
        snprintf(name, sizeof name, "%s.up%d", prefix, s);
        add_conv(t, &g->up_w[s], &g->up_b[s], 4 * gw[s + 1], gw[s], 1, name);
        snprintf(name, sizeof name, "%s.conv%d", prefix, s);
        add_conv(t, &g->conv_w[s], &g->conv_b[s], gw[s + 1], gw[s + 1], 3, name);
    }
    snprintf(name, sizeof name, "%s.out", prefix);
    add_conv(t, &g->out_w, &g->out_b, 3, gw[MRT_GEN_STAGES], 3, name);
}

int mrt_model_tensors(const mrt_config *c, mrt_weights *w, mrt_tensor_ref *refs) {
    table t = {refs, 0};
    int D = c->dim, F = c->ffn, L = c->latents, win2 = c->window * c->window;
    int p2 = 3 * c->patch * c->patch;
    mrt_param_ref block[MRT_BLOCK_MAX_PARAMS];
    char prefix[32];

    add_linear(&t, &w->embed_w, &w->embed_b, D, p2, "enc.embed");
    add_f32(&t, &w->enc_pos, win2, D, "%s", "enc.pos");
    add_f32(&t, &w->enc_latents, L, D, "%s", "enc.latents");
    for (int i = 0; i < c->enc_pairs; i++) {
        int n = mrt_rwkv_params(&w->enc_rwkv[i], D, F, block);
        snprintf(prefix, sizeof prefix, "enc.%d.rwkv.", i);
        add_block(&t, block, n, prefix);
        n = mrt_vit_params(&w->enc_vit[i], D, F, block);
        snprintf(prefix, sizeof prefix, "enc.%d.vit.", i);
        add_block(&t, block, n, prefix);
    }
    add_f32(&t, &w->enc_ln_g, D, 0, "%s", "enc.ln_out.weight");
    add_f32(&t, &w->enc_ln_b, D, 0, "%s", "enc.ln_out.bias");
    add_linear(&t, &w->lat_w1, &w->lat_b1, D, D, "enc.to_latent.fc1");
    add_linear(&t, &w->lat_w2, &w->lat_b2, c->channels, D, "enc.to_latent.fc2");
    add_linear(&t, &w->side_w1, &w->side_b1, D, 4 * L * c->channels, "side.fc1");
    add_linear(&t, &w->side_w2, &w->side_b2, c->side_bits, D, "side.fc2");

    int K = mrt_ctx_inputs(c);
    for (int g = 0; g < c->ctx_groups; g++)
        for (int parity = 0; parity < 2; parity++) {
            mrt_ctx_step *s = &w->ctx[g][parity];
            char name[64];
            snprintf(name, sizeof name, "ctx.%d.%d.fc1.weight", g, parity);
            add_i32(&t, &s->w1, c->ctx_hidden, K, name);
            snprintf(name, sizeof name, "ctx.%d.%d.fc1.bias", g, parity);
            add_i32(&t, &s->b1, c->ctx_hidden, 0, name);
            snprintf(name, sizeof name, "ctx.%d.%d.fc2.weight", g, parity);
            add_i32(&t, &s->w2, 2 * c->ctx_group_size[g], c->ctx_hidden, name);
            snprintf(name, sizeof name, "ctx.%d.%d.fc2.bias", g, parity);
            add_i32(&t, &s->b2, 2 * c->ctx_group_size[g], 0, name);
        }

    add_linear(&t, &w->unlat_w1, &w->unlat_b1, D, c->channels, "dec.from_latent.fc1");
    add_linear(&t, &w->unlat_w2, &w->unlat_b2, D, D, "dec.from_latent.fc2");
    add_f32(&t, &w->dec_pos, win2, D, "%s", "dec.pos");
    add_f32(&t, &w->dec_mix, win2, L, "%s", "dec.mix");
    for (int i = 0; i < c->dec_pairs; i++) {
        int n = mrt_vit_params(&w->dec_vit[i], D, F, block);
        snprintf(prefix, sizeof prefix, "dec.%d.vit.", i);
        add_block(&t, block, n, prefix);
        n = mrt_rwkv_params(&w->dec_rwkv[i], D, F, block);
        snprintf(prefix, sizeof prefix, "dec.%d.rwkv.", i);
        add_block(&t, block, n, prefix);
    }
    add_f32(&t, &w->dec_ln_g, D, 0, "%s", "dec.ln_out.weight");
    add_f32(&t, &w->dec_ln_b, D, 0, "%s", "dec.ln_out.bias");

    mrt_gen_tensor_table(&t, &w->gen, D, c->gen_width, "gen");
    return t.n;
}

int mrt_tokenizer_tensors(const mrt_config *c, int bits, mrt_tok_weights *w,
                          mrt_tensor_ref *refs) {
    table t = {refs, 0};
    int cin = 3;
    for (int l = 0; l < MRT_TOK_LAYERS; l++) {
        char name[32];
        int cout = mrt_tok_width(l, bits);
        snprintf(name, sizeof name, "tok.enc%d", l);
        add_conv(&t, &w->enc_w[l], &w->enc_b[l], cout, cin, 3, name);
        cin = cout;
    }
    add_conv(&t, &w->embed_w, &w->embed_b, c->dim, bits, 1, "tok.embed");
    mrt_gen_tensor_table(&t, &w->gen, c->dim, c->gen_width, "gen");
    return t.n;
}

mrt_latent_shape mrt_latent_shape_of(const mrt_config *cfg, int width, int height) {
    int span = cfg->patch * cfg->window;
    mrt_latent_shape s;
    s.nwx = (width + span - 1) / span;
    s.nwy = (height + span - 1) / span;
    s.ngx = (s.nwx + 1) / 2;
    s.ngy = (s.nwy + 1) / 2;
    s.ntokens = s.nwx * s.nwy * cfg->latents;
    return s;
}
