/*
 * train.c -- the trainer (see mrt_train.h). Stage 0: the tokenizer.
 *
 *   x (B, 3, S, S) in [-1, 1]
 *   z   = enc3(relu(enc2(relu(enc1(relu(enc0(x)))))))    3x3 convs, /8, `bits` channels
 *   q   = sign(z) (z > 0 -> +1, else -1), straight-through where |z| <= 1
 *   out = generator(embed(q))                           1x1 conv bits -> D, then gen.*
 *   loss = L1(out, x) + (1 - MS-SSIM) + w (mean_t sum_i H(p_ti) - sum_i H(mean_t p_ti))
 *          with p = sigmoid(4 z): confident bits, all codes in use (MAGVIT-v2's
 *          entropy penalty, with the batch term factorised over bits)
 *
 * AdamW with warm-up and cosine decay, global gradient clipping, EMA
 * weights; checkpoints every few minutes and on SIGINT/SIGTERM.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec_internal.h"
#include "ctxmodel_grad.h"
#include "dataset.h"
#include "gguf.h"
#include "model.h"
#include "status.h"
#include "mrt_train.h"
#include "transform_grad.h"
#include "transform.h"

#define MAX_TENSORS 512

void mrt_train_defaults(mrt_train_options *o) {
    memset(o, 0, sizeof *o);
    o->stage = 0;
    o->steps = 100000;
    o->batch = 16;
    o->crop = 128;
    o->lr = 5e-4f;
    o->lr_min = 1e-5f;
    o->warmup = 500;
    o->weight_decay = 1e-4f;
    o->clip = 1.0f;
    o->ema = 0.999f;
    o->tok_bits = 10;
    o->entropy_weight = 0.1f;
    o->seed = 1;
    o->save_every = 300.0;
    o->log_every = 10;
}

static volatile sig_atomic_t stop_requested = 0;
static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------- parameters */

typedef struct {
    mrt_config cfg;
    int stage, bits;
    mrt_tok_weights w, g;  /* stage 0: views of P and G */
    mrt_weights mw, mg;    /* stages 1-2: the codec's float weights ... */
    mrt_ctx_float cf, cg;  /* ... and the context model's float twin */
    mrt_tensor_ref refs[MAX_TENSORS], grefs[MAX_TENSORS];
    int ntensors;
    size_t n;
    float *P, *G, *M, *V, *E;
    long step;
    float lambda;          /* stages 1-2: the rate weight now (see steer_lambda) */
    bool lambda_saved;     /* the checkpoint it resumed from held one */
} params;

/* The trained tensors of a stage, in a fixed order: stage 0 the
 * tokenizer's, stages 1-2 the codec's float tensors plus the float context
 * model (its integer tensors are made from it at export). */
static int describe(params *p, mrt_tensor_ref *refs, mrt_tok_weights *tw, mrt_weights *mw,
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

static size_t ref_size(const mrt_tensor_ref *r) {
    size_t n = 1;
    for (int i = 0; i < r->n_dims; i++) n *= (size_t)r->dims[i];
    return n;
}

static int params_alloc(params *p, const mrt_config *cfg, int stage, int bits) {
    memset(p, 0, sizeof *p);
    p->cfg = *cfg;
    p->stage = stage;
    p->bits = bits;
    p->ntensors = describe(p, p->refs, &p->w, &p->mw, &p->cf);
    describe(p, p->grefs, &p->g, &p->mg, &p->cg);
    for (int i = 0; i < p->ntensors; i++) p->n += ref_size(&p->refs[i]);
    float **bufs[] = {&p->P, &p->G, &p->M, &p->V, &p->E};
    for (int i = 0; i < 5; i++)
        if (!(*bufs[i] = calloc(p->n, sizeof(float)))) return -1;
    size_t off = 0;
    for (int i = 0; i < p->ntensors; i++) {
        *p->refs[i].slot = p->P + off;
        *p->grefs[i].slot = p->G + off;
        off += ref_size(&p->refs[i]);
    }
    return 0;
}

static void params_free(params *p) {
    free(p->P), free(p->G), free(p->M), free(p->V), free(p->E);
}

/* He-uniform for layers followed by a ReLU, variance-preserving otherwise;
 * biases zero. */
static void params_init(params *p, uint64_t seed) {
    mrt_rng rng;
    mrt_rng_seed(&rng, seed);
    for (int i = 0; i < p->ntensors; i++) {
        mrt_tensor_ref *r = &p->refs[i];
        float *f = *(float **)r->slot;
        size_t n = ref_size(r);
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
#define LAMBDA_MAX 1e4f

static float steer_lambda(float lambda, double bpp, double target) {
    double next = lambda * exp(LAMBDA_GAIN * (bpp / target - 1.0));
    return next < LAMBDA_MIN ? LAMBDA_MIN : next > LAMBDA_MAX ? LAMBDA_MAX : (float)next;
}

/* ------------------------------------------------------ checkpoints */

static mrt_status save_checkpoint(const params *p, const mrt_train_options *o, const char *path,
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
    /* the EMA weights under the plain names (what later stages load), the
     * raw weights and AdamW's moments under prefixes */
    static const char *prefixes[] = {"", "raw.", "adam.m.", "adam.v."};
    const float *bufs[] = {p->E, p->P, p->M, p->V};
    for (int k = 0; k < 4; k++) {
        size_t off = 0;
        for (int i = 0; i < p->ntensors; i++) {
            const mrt_tensor_ref *r = &p->refs[i];
            char name[96];
            snprintf(name, sizeof name, "%s%s", prefixes[k], r->name);
            int64_t gdims[4];
            for (int d = 0; d < r->n_dims; d++) gdims[d] = r->dims[r->n_dims - 1 - d];
            mrt_gguf_writer_add_tensor(w, name, MRT_GGUF_F32, r->n_dims, gdims, bufs[k] + off);
            off += ref_size(r);
        }
    }
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

static mrt_status load_checkpoint(params *p, const mrt_train_options *o, const char *path,
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
    static const char *prefixes[] = {"", "raw.", "adam.m.", "adam.v."};
    float *bufs[] = {p->E, p->P, p->M, p->V};
    for (int k = 0; k < 4; k++) {
        size_t off = 0;
        for (int i = 0; i < p->ntensors; i++) {
            const mrt_tensor_ref *r = &p->refs[i];
            char name[96];
            snprintf(name, sizeof name, "%s%s", prefixes[k], r->name);
            int64_t gdims[4];
            for (int d = 0; d < r->n_dims; d++) gdims[d] = r->dims[r->n_dims - 1 - d];
            const float *data = mrt_gguf_get_f32(g, name, r->n_dims, gdims, msg, sizeof msg);
            if (!data) {
                st = mrt_fail(err, MRT_ERR_MODEL, "resuming: %s", msg);
                goto done;
            }
            memcpy(bufs[k] + off, data, sizeof(float) * ref_size(r));
            off += ref_size(r);
        }
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

/* ------------------------------------------------- stage 0: tokenizer */

typedef struct {
    int B, S, bits, D;
    float *x01;                  /* input in [0, 1] for MS-SSIM */
    float *a[MRT_TOK_LAYERS];    /* pre-activations; a[3] = z */
    float *r[MRT_TOK_LAYERS - 1];
    float *q, *e, *out01, *dout;
    mrt_gen_acts gen;
    float *mem;
} tok_acts;

static int tok_side(int S, int layer) { return layer < MRT_TOK_LAYERS - 1 ? S >> (layer + 1) : S >> 3; }

static int tok_acts_alloc(tok_acts *t, const mrt_config *cfg, int bits, int B, int S) {
    memset(t, 0, sizeof *t);
    t->B = B, t->S = S, t->bits = bits, t->D = cfg->dim;
    size_t img = (size_t)B * 3 * S * S, low = (size_t)B * (S / 8) * (S / 8);
    size_t total = 3 * img + 2 * low * bits + low * cfg->dim;
    for (int l = 0; l < MRT_TOK_LAYERS; l++) {
        int side = tok_side(S, l);
        total += (size_t)(l < MRT_TOK_LAYERS - 1 ? 2 : 1) * B * mrt_tok_width(l, bits) * side * side;
    }
    if (!(t->mem = malloc(sizeof(float) * total))) return -1;
    float *p = t->mem;
    t->x01 = p, p += img;
    t->out01 = p, p += img;
    t->dout = p, p += img;
    for (int l = 0; l < MRT_TOK_LAYERS; l++) {
        int side = tok_side(S, l);
        size_t n = (size_t)B * mrt_tok_width(l, bits) * side * side;
        t->a[l] = p, p += n;
        if (l < MRT_TOK_LAYERS - 1) t->r[l] = p, p += n;
    }
    t->q = p, p += low * bits;
    t->e = p, p += low * cfg->dim;
    (void)p;
    return mrt_gen_acts_alloc(&t->gen, B, S / 8, S / 8, cfg->dim, cfg->gen_width, true);
}

static void tok_acts_free(tok_acts *t) {
    mrt_gen_acts_free(&t->gen);
    free(t->mem);
}

typedef struct {
    double loss, l1, msssim, entropy, psnr, bit_balance;
} step_stats;

/* Binary entropy in bits, and its derivative d/dp, safe at 0 and 1. */
static double hb(double p) {
    p = p < 1e-7 ? 1e-7 : p > 1 - 1e-7 ? 1 - 1e-7 : p;
    return -(p * log2(p) + (1 - p) * log2(1 - p));
}
static double hb_grad(double p) {
    p = p < 1e-7 ? 1e-7 : p > 1 - 1e-7 ? 1 - 1e-7 : p;
    return log2((1 - p) / p);
}

/* The tokenizer's encoder, LFQ and embedding: fills t->a, t->r, t->q and
 * t->e (the generator's input, also stage 1's target features). */
static void tok_encode(const mrt_rt *rt, const mrt_tok_weights *w, tok_acts *t, const float *x) {
    int B = t->B, S = t->S, bits = t->bits, D = t->D, s8 = S / 8;
    const float *in = x;
    int cin = 3, side = S;
    for (int l = 0; l < MRT_TOK_LAYERS; l++) {
        int cout = mrt_tok_width(l, bits), stride = l < MRT_TOK_LAYERS - 1 ? 2 : 1;
        mrt_conv2d_forward(rt, t->a[l], in, w->enc_w[l], w->enc_b[l], B, cin, side, side, cout, 3,
                           stride);
        side = mrt_conv2d_out_size(side, stride);
        if (l < MRT_TOK_LAYERS - 1) {
            mrt_relu_forward(rt, t->r[l], t->a[l], (size_t)B * cout * side * side);
            in = t->r[l];
        }
        cin = cout;
    }
    const float *z = t->a[MRT_TOK_LAYERS - 1];
    size_t nz = (size_t)B * s8 * s8 * bits;
    for (size_t i = 0; i < nz; i++) t->q[i] = z[i] > 0.0f ? 1.0f : -1.0f;
    mrt_conv2d_forward(rt, t->e, t->q, w->embed_w, w->embed_b, B, bits, s8, s8, D, 1, 1);
}

/* Forward + backward of one batch; gradients accumulate into p->G. */
static step_stats tok_step(const mrt_rt *rt, params *p, tok_acts *t, const float *x,
                           float entropy_weight) {
    int B = t->B, S = t->S, bits = t->bits, D = t->D, s8 = S / 8;
    size_t img = (size_t)B * 3 * S * S, low = (size_t)B * s8 * s8;
    const mrt_tok_weights *w = &p->w, *g = &p->g;
    step_stats st = {0};
    tok_encode(rt, w, t, x);
    const float *z = t->a[MRT_TOK_LAYERS - 1];
    size_t nz = low * bits;
    mrt_gen_forward(rt, &w->gen, &t->gen, t->e);
    const float *out = t->gen.out;
    /* losses; d(loss)/d(out) into t->dout */
    memset(t->dout, 0, sizeof(float) * img);
    st.l1 = mrt_l1_loss(t->dout, out, x, img, 1.0f);
    for (size_t i = 0; i < img; i++) {
        t->x01[i] = 0.5f * (x[i] + 1.0f);
        t->out01[i] = 0.5f * (out[i] + 1.0f);
    }
    double mse = 0;
    for (size_t i = 0; i < img; i++) {
        double d = (double)t->out01[i] - t->x01[i];
        mse += d * d;
    }
    mse /= img;
    st.psnr = 10.0 * log10(1.0 / (mse > 1e-10 ? mse : 1e-10));
    /* d(1 - ms)/d(out) = -0.5 d(ms)/d(out01): accumulate with scale -0.5 */
    st.msssim = mrt_msssim(rt, t->dout, t->out01, t->x01, B, 3, S, S, -0.5f);
    /* entropy penalty on z, gradient straight into dz (below) */
    float *dz = malloc(sizeof(float) * nz);
    double *mean_p = calloc(bits, sizeof(double));
    if (!dz || !mean_p) {
        free(dz), free(mean_p);
        st.loss = NAN;
        return st;
    }
    size_t tokens = low; /* per bit: B * s8 * s8 values, layout (B, bits, s8, s8) */
    double per_sample = 0;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < bits; i++)
            for (int k = 0; k < s8 * s8; k++) {
                double pr = 1.0 / (1.0 + exp(-4.0 * z[((size_t)b * bits + i) * s8 * s8 + k]));
                per_sample += hb(pr);
                mean_p[i] += pr;
            }
    per_sample /= tokens;
    double batch = 0, balance = 0;
    for (int i = 0; i < bits; i++) {
        mean_p[i] /= tokens;
        batch += hb(mean_p[i]);
        balance += fabs(mean_p[i] - 0.5);
    }
    st.entropy = per_sample - batch;
    st.bit_balance = balance / bits;
    /* backward through the generator and the embedding to q */
    float *de = malloc(sizeof(float) * low * D), *dq = calloc(nz, sizeof(float));
    if (!de || !dq) {
        free(dz), free(mean_p), free(de), free(dq);
        st.loss = NAN;
        return st;
    }
    memset(de, 0, sizeof(float) * low * D);
    mrt_gen_backward(rt, &w->gen, &g->gen, &t->gen, t->e, t->dout, de);
    mrt_conv2d_backward(rt, dq, g->embed_w, g->embed_b, de, t->q, w->embed_w, B, bits, s8, s8, D,
                        1, 1);
    /* straight-through LFQ, plus the entropy terms' gradients */
    for (int b = 0; b < B; b++)
        for (int i = 0; i < bits; i++)
            for (int k = 0; k < s8 * s8; k++) {
                size_t idx = ((size_t)b * bits + i) * s8 * s8 + k;
                double pr = 1.0 / (1.0 + exp(-4.0 * z[idx]));
                double dpdz = 4.0 * pr * (1.0 - pr);
                double dent = (hb_grad(pr) - hb_grad(mean_p[i])) * dpdz / tokens;
                float ste = fabsf(z[idx]) <= 1.0f ? dq[idx] : 0.0f;
                dz[idx] = ste + (float)(entropy_weight * dent);
            }
    /* encoder backward */
    float *dcur = dz, *dprev = NULL;
    int side = s8;
    for (int l = MRT_TOK_LAYERS - 1; l >= 0; l--) {
        int cout = mrt_tok_width(l, bits), stride = l < MRT_TOK_LAYERS - 1 ? 2 : 1;
        int cin_l = l > 0 ? mrt_tok_width(l - 1, bits) : 3;
        int side_in = l > 0 ? tok_side(S, l - 1) : S;
        const float *input = l > 0 ? t->r[l - 1] : x;
        if (l < MRT_TOK_LAYERS - 1) {
            /* dcur holds d(r[l]); through the ReLU into d(a[l]) */
            size_t n = (size_t)B * cout * side * side;
            float *da = calloc(n, sizeof(float));
            if (!da) break;
            mrt_relu_backward(rt, da, dcur, t->a[l], n);
            free(dcur);
            dcur = da;
        }
        dprev = l > 0 ? calloc((size_t)B * cin_l * side_in * side_in, sizeof(float)) : NULL;
        if (l > 0 && !dprev) break;
        mrt_conv2d_backward(rt, dprev, g->enc_w[l], g->enc_b[l], dcur, input, w->enc_w[l], B,
                            cin_l, side_in, side_in, cout, 3, stride);
        free(dcur);
        dcur = dprev;
        side = side_in;
    }
    free(dcur);
    free(mean_p), free(de), free(dq);
    st.loss = st.l1 + (1.0 - st.msssim) + entropy_weight * st.entropy;
    return st;
}


/* --------------------------------------------- stages 1 and 2: the codec */

typedef struct {
    int B, S, stage;
    bool train_encoder; /* stage 2 with --train-encoder */
    float mse_weight;   /* stage 2: --mse-weight */
    mrt_latent_shape lsh;
    mrt_analysis_acts an;
    mrt_synthesis_acts sy;
    mrt_gen_acts gen; /* stage 2 */
    params tokp;      /* stage 1: the frozen tokenizer */
    tok_acts tok;
    float *y_noisy, *dy, *dy_rate, *dmap, *x01, *out01, *dout;
    float *mu, *y_hat; /* stage 2: the means and the decoded latent */
    uint8_t *side;
    size_t ctx_offset; /* where the float context model starts in P/G */
} codec_acts;

static void codec_acts_free(codec_acts *c, const mrt_config *cfg) {
    mrt_analysis_acts_free(&c->an, cfg);
    mrt_synthesis_acts_free(&c->sy, cfg);
    mrt_gen_acts_free(&c->gen);
    if (c->stage == 1) {
        tok_acts_free(&c->tok);
        params_free(&c->tokp);
    }
    free(c->y_noisy), free(c->dy), free(c->dy_rate), free(c->dmap);
    free(c->x01), free(c->out01), free(c->dout), free(c->side);
    free(c->mu), free(c->y_hat);
}

/* The latent tokens per window of a model or checkpoint file; 0 if it
 * cannot be read or has none (the run then reports the file properly). */
static int weights_latents(const char *path) {
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
static mrt_status load_weights(params *p, const char *path, const char *prefix, mrt_error *err) {
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
            for (int d = 0; d < r->n_dims; d++) gdims[d] = r->dims[r->n_dims - 1 - d];
            const float *data = mrt_gguf_get_f32(g, r->name, r->n_dims, gdims, msg, sizeof msg);
            if (!data)
                st = mrt_fail(err, MRT_ERR_MODEL, "%s", msg);
            else
                memcpy(p->P + off, data, sizeof(float) * ref_size(r));
        }
        off += ref_size(r);
    }
    mrt_gguf_close(g);
    memcpy(p->E, p->P, sizeof(float) * p->n);
    return st;
}

/* Stage 1 starts from the codec's random initialisation with the
 * tokenizer's generator; stage 2 from a stage-1 checkpoint or from a codec
 * model file (fine-tuning a shipped model on one's own photos: its integer
 * context model is read back into floats). */
static mrt_status codec_init(params *p, const mrt_train_options *o, mrt_error *err) {
    if (o->stage == 2) {
        if (!o->init)
            return mrt_fail(err, MRT_ERR_ARGUMENT, "stage 2 needs --init (a stage-1 checkpoint "
                            "or a model)");
        mrt_model *m = NULL;
        if (mrt_model_load(o->init, &m, NULL) != MRT_OK) return load_weights(p, o->init, NULL, err);
        mrt_status st = load_weights(p, o->init, "enc.", err);
        static const char *parts[] = {"side.", "dec.", "gen."};
        for (int i = 0; i < 3 && st == MRT_OK; i++) st = load_weights(p, o->init, parts[i], err);
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
        size_t n = ref_size(&all[i]);
        memcpy(p->P + off, *(float **)all[i].slot, sizeof(float) * n);
        off += n;
    }
    mrt_ctx_float_from_int(&p->cfg, &tmp, &p->cf);
    free(storage);
    memcpy(p->E, p->P, sizeof(float) * p->n);
    return load_weights(p, o->tokenizer, "gen.", err);
}

/* Writes the codec model made of the EMA weights (context model rounded to
 * its fixed-point form). */
static mrt_status export_model(const params *p, const mrt_train_options *o, mrt_error *err) {
    params view = *p; /* refs bound to E instead of P */
    mrt_weights w;
    mrt_ctx_float cf;
    static mrt_tensor_ref refs[MAX_TENSORS];
    int n = describe(&view, refs, NULL, &w, &cf);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        *refs[i].slot = p->E + off;
        off += ref_size(&refs[i]);
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
    mrt_status st = mrt_model_save(&p->cfg, &w, o->rate_id, o->mse_weight, o->export_path,
                                   err);
    free(ints);
    return st;
}

static int codec_acts_alloc(codec_acts *c, params *p, const mrt_train_options *o, mrt_error *err) {
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
        if (params_alloc(&c->tokp, cfg, 0, o->tok_bits) != 0 ||
            tok_acts_alloc(&c->tok, cfg, o->tok_bits, o->batch, o->crop) != 0)
            return mrt_fail(err, MRT_ERR_NOMEM, "out of memory"), -1;
        if (load_weights(&c->tokp, o->tokenizer, NULL, err) != MRT_OK) return -1;
    }
    /* the float context model is the last block of the table */
    size_t off = 0;
    for (int i = 0; i < p->ntensors; i++) {
        if (!strncmp(p->refs[i].name, "ctxf.", 5)) break;
        off += ref_size(&p->refs[i]);
    }
    c->ctx_offset = off;
    return 0;
}

static step_stats codec_step(const mrt_rt *rt, params *p, codec_acts *c, const float *x,
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
        tok_encode(rt, &c->tokp.w, &c->tok, x); /* target features: c->tok.e */
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
        memset(c->dout, 0, sizeof(float) * img);
        st.l1 = mrt_l1_loss(c->dout, out, x, img, 1.0f);
        for (size_t i = 0; i < img; i++) {
            c->x01[i] = 0.5f * (x[i] + 1.0f);
            c->out01[i] = 0.5f * (out[i] + 1.0f);
        }
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

/* ------------------------------------------- stages 1-2: batch split */

/* Stages 1 and 2 split the batch across threads: each worker runs the
 * whole step on its share of the crops, single-threaded, with its own
 * activations and gradients, and the gradients are then averaged in
 * worker order, so a run is deterministic for a given thread count. This
 * scales better than threads inside each op, where the small GEMMs, the
 * scans and the barriers between them cost time: stage 2 on 2 cores runs
 * 41 crops/s split against 36 (models/README.md, "Throughput"), and far
 * less unsplit when other work shares the cores. Every loss term is a mean
 * over the crops it sees, so the average of the workers' gradients is the
 * whole batch's. */
#define MAX_WORKERS 16

typedef struct {
    int n;                       /* 1: no split (the ops use the threads) */
    params view[MAX_WORKERS];    /* shared weights (P), own gradients (G) */
    codec_acts acts[MAX_WORKERS];
    bool have_acts[MAX_WORKERS];
} workers;

/* A view of p whose weights are p's and whose gradients are its own. */
static int params_view(params *v, const params *p) {
    *v = *p;
    if (!(v->G = calloc(p->n, sizeof(float)))) return -1;
    describe(v, v->grefs, &v->g, &v->mg, &v->cg);
    size_t off = 0;
    for (int i = 0; i < v->ntensors; i++) {
        *v->grefs[i].slot = v->G + off;
        off += ref_size(&v->grefs[i]);
    }
    return 0;
}

static void workers_free(workers *w, const mrt_config *cfg) {
    for (int i = 0; i < w->n && w->n > 1; i++) {
        if (w->have_acts[i]) codec_acts_free(&w->acts[i], cfg);
        free(w->view[i].G);
    }
}

/* As many workers as threads, fewer if the batch does not divide evenly
 * (the most that do); one means no split. */
static int workers_alloc(workers *w, const params *p, const mrt_train_options *o, int threads,
                         mrt_error *err) {
    memset(w, 0, sizeof *w);
    if (threads > MAX_WORKERS) threads = MAX_WORKERS;
    while (threads > 1 && o->batch % threads) threads--;
    w->n = o->stage == 0 || threads < 1 ? 1 : threads;
    if (w->n == 1) return 0;
    mrt_train_options share = *o;
    share.batch = o->batch / threads;
    for (int i = 0; i < w->n; i++) {
        if (params_view(&w->view[i], p) != 0)
            return mrt_fail(err, MRT_ERR_NOMEM, "out of memory"), -1;
        if (codec_acts_alloc(&w->acts[i], &w->view[i], &share, err) != 0) return -1;
        w->have_acts[i] = true;
    }
    return 0;
}

/* One step of stages 1-2 with the batch split across the workers; the
 * averaged gradient lands in p->G. Worker 0's noise seed is the unsplit
 * step's. */
static step_stats split_step(workers *w, params *p, const float *x, int batch, int crop,
                             float lambda, uint64_t noise_seed) {
    step_stats part[MAX_WORKERS];
    size_t share = (size_t)(batch / w->n) * 3 * crop * crop;
    mrt_rt one = mrt_rt_make(1);
#pragma omp parallel for num_threads(w->n) schedule(static, 1)
    for (int i = 0; i < w->n; i++) {
        memset(w->view[i].G, 0, sizeof(float) * p->n);
        part[i] = codec_step(&one, &w->view[i], &w->acts[i], x + i * share, lambda,
                             noise_seed + 0x9e3779b97f4a7c15ULL * (uint64_t)i);
    }
    float inv = 1.0f / (float)w->n;
    for (size_t k = 0; k < p->n; k++) {
        float sum = 0;
        for (int i = 0; i < w->n; i++) sum += w->view[i].G[k];
        p->G[k] = sum * inv;
    }
    step_stats avg = {0};
    for (int i = 0; i < w->n; i++) {
        avg.loss += part[i].loss * inv, avg.l1 += part[i].l1 * inv;
        avg.msssim += part[i].msssim * inv, avg.entropy += part[i].entropy * inv;
        avg.psnr += part[i].psnr * inv, avg.bit_balance += part[i].bit_balance * inv;
    }
    return avg;
}

/* --------------------------------------------------------------- loop */

static float learning_rate(const mrt_train_options *o, long step) {
    if (step < o->warmup) return o->lr * (float)(step + 1) / (float)o->warmup;
    double t = (double)(step - o->warmup) / (double)(o->steps > o->warmup ? o->steps - o->warmup : 1);
    if (t > 1) t = 1;
    return (float)(o->lr_min + 0.5 * (o->lr - o->lr_min) * (1.0 + cos(3.141592653589793 * t)));
}

mrt_status mrt_train(const mrt_train_options *o, mrt_error *err) {
    if (o->stage < 0 || o->stage > 2)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "stage %d: the stages are 0, 1 and 2", o->stage);
    if (o->stage >= 1 && o->crop % 64)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "stages 1 and 2 need crops that are whole "
                        "64-pixel windows");
    if (o->stage == 1 && !o->tokenizer)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "stage 1 needs --tokenizer STAGE0.gguf (its "
                        "targets)");
    if (!o->out || o->ndata < 1) return mrt_fail(err, MRT_ERR_ARGUMENT, "need --data and --out");
    if (o->crop < 16 || o->crop % 8 || o->batch < 1 || o->steps < 1 || o->tok_bits < 1 ||
        o->tok_bits > 16)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "crop must be a multiple of 8 >= 16, batch and "
                        "steps positive, bits 1..16");
    mrt_rt rt = mrt_rt_make(o->threads);
    mrt_config cfg = mrt_config_xs();
    if (!isfinite(o->lambda) || o->lambda < 0 || !(o->target_bpp >= 0 && o->target_bpp <= 24))
        return mrt_fail(err, MRT_ERR_ARGUMENT, "--lambda must be >= 0, and --target-bpp 0 "
                        "(off) or in (0, 24]");
    if (o->target_bpp > 0 && (o->stage == 0 || !(o->lambda > 0)))
        return mrt_fail(err, MRT_ERR_ARGUMENT, "--target-bpp is for stages 1 and 2, and needs "
                        "a --lambda > 0 to start from");
    if (!mrt_mse_weight_ok(o->mse_weight) || (o->mse_weight > 0 && o->stage != 2))
        return mrt_fail(err, MRT_ERR_ARGUMENT, "--mse-weight is for stage 2, in [0, %g]",
                        (double)MRT_MAX_MSE_WEIGHT);
    if (o->latents && o->stage == 0)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "--latents is for stages 1 and 2 (the tokenizer "
                        "has none)");
    if (o->stage > 0) {
        /* --latents, else the size of what this run continues: the
         * checkpoint it resumes, or the weights stage 2 starts from (so
         * that fine-tuning a shipped model needs no --latents) */
        cfg.latents = o->latents                ? o->latents
                      : o->resume               ? weights_latents(o->out)
                      : o->stage == 2 && o->init ? weights_latents(o->init)
                                                : cfg.latents;
        if (!cfg.latents) cfg.latents = mrt_config_xs().latents;
        mrt_status cst = mrt_config_validate(&cfg, err);
        if (cst != MRT_OK) return cst;
    }
    params p;
    tok_acts acts;
    codec_acts cacts;
    workers *split = NULL; /* large (the views hold tensor tables): on the heap */
    bool have_cacts = false;
    mrt_dataset ds;
    mrt_prefetch pf;
    bool have_acts = false, have_ds = false, have_pf = false;
    FILE *log = NULL;
    mrt_status st = MRT_OK;
    if (params_alloc(&p, &cfg, o->stage, o->tok_bits) != 0 ||
        (o->stage == 0 && tok_acts_alloc(&acts, &cfg, o->tok_bits, o->batch, o->crop) != 0)) {
        st = mrt_fail(err, MRT_ERR_NOMEM, "out of memory");
        goto done;
    }
    have_acts = true;
    if (o->stage > 0) {
        if (!(split = malloc(sizeof *split))) {
            st = mrt_fail(err, MRT_ERR_NOMEM, "out of memory");
            goto done;
        }
        if (workers_alloc(split, &p, o, rt.threads, err) != 0 ||
            (split->n == 1 && codec_acts_alloc(&cacts, &p, o, err) != 0)) {
            st = err ? err->status : MRT_ERR_NOMEM;
            goto done;
        }
        have_cacts = split->n == 1;
    }
    if (o->resume) {
        if ((st = load_checkpoint(&p, o, o->out, err)) != MRT_OK) goto done;
    } else if (o->stage == 0) {
        params_init(&p, o->seed);
    } else if ((st = codec_init(&p, o, err)) != MRT_OK) {
        goto done;
    }
    if ((st = mrt_dataset_load(&ds, o->data, o->ndata, o->crop, err)) != MRT_OK) goto done;
    have_ds = true;
    if (!o->quiet)
        fprintf(stderr, "stage %d: %d images (%.1f MP; %d smaller than %d px and %d unreadable "
                "skipped), %zu parameters, %d threads%s, from step %ld of %ld\n", o->stage,
                ds.count, ds.pixels / 1e6, ds.skipped_small, o->crop, ds.skipped_bad, p.n,
                rt.threads, split && split->n > 1 ? " (each on its share of the batch)" : "",
                p.step, o->steps);
    if (o->log && !(log = fopen(o->log, "a"))) {
        st = mrt_fail(err, MRT_ERR_IO, "%s: cannot open the log", o->log);
        goto done;
    }
    if (mrt_prefetch_start(&pf, &ds, o->seed, (uint64_t)p.step, o->batch, o->crop) != 0) {
        st = mrt_fail(err, MRT_ERR_NOMEM, "cannot start the data thread");
        goto done;
    }
    have_pf = true;
    stop_requested = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    /* stages 1-2 keep some tensors fixed (the generator in stage 1, the
     * encoder in stage 2): no weight decay, so a zero gradient moves nothing */
    mrt_adamw opt = {o->lr, 0.9f, 0.99f, 1e-8f, o->stage == 0 ? o->weight_decay : 0.0f};
    /* a fixed lambda is the command's; a steered one continues from the
     * checkpoint's, if it has one */
    if (o->stage > 0 && !(o->target_bpp > 0 && p.lambda_saved)) p.lambda = o->lambda;
    float lambda = p.lambda;
    double t_start = now(), t_saved = now(), t_report = now();
    long first_step = p.step, report_steps = 0;
    step_stats avg = {0};
    while (p.step < o->steps && !stop_requested &&
           !(o->stop_after > 0 && p.step - first_step >= o->stop_after)) {
        const float *x = mrt_prefetch_get(&pf, (uint64_t)p.step);
        memset(p.G, 0, sizeof(float) * p.n);
        step_stats s;
        if (o->stage == 0) {
            s = tok_step(&rt, &p, &acts, x, o->entropy_weight);
        } else {
            double ramp = o->lambda_ramp > 0 ? (double)p.step / o->lambda_ramp : 1.0;
            lambda = (float)(p.lambda * (ramp < 1.0 ? ramp : 1.0));
            uint64_t noise_seed = o->seed ^ (0xd1342543de82ef95ULL * (uint64_t)(p.step + 1));
            s = split->n > 1 ? split_step(split, &p, x, o->batch, o->crop, lambda, noise_seed)
                             : codec_step(&rt, &p, &cacts, x, lambda, noise_seed);
        }
        if (!isfinite(s.loss)) {
            st = mrt_fail(err, MRT_ERR_NOMEM, "step %ld: the loss is not finite (out of memory "
                          "or diverged)", p.step);
            break;
        }
        if (o->stage > 0 && o->target_bpp > 0 && p.step >= o->lambda_ramp)
            p.lambda = steer_lambda(p.lambda, s.entropy, o->target_bpp);
        float gnorm = mrt_clip_grad_norm(p.G, p.n, o->clip);
        opt.lr = learning_rate(o, p.step);
        mrt_adamw_update(&opt, p.P, p.G, p.M, p.V, p.n, p.step + 1);
        for (size_t i = 0; i < p.n; i++) p.E[i] = o->ema * p.E[i] + (1.0f - o->ema) * p.P[i];
        p.step++;
        report_steps++;
        avg.loss += s.loss, avg.l1 += s.l1, avg.msssim += s.msssim, avg.entropy += s.entropy;
        avg.psnr += s.psnr, avg.bit_balance += s.bit_balance;
        if (log && p.step % (o->log_every > 0 ? o->log_every : 1) == 0) {
            fprintf(log, "{\"stage\": %d, \"step\": %ld, \"loss\": %.6f, \"l1\": %.6f, "
                    "\"msssim\": %.6f, \"entropy\": %.6f, \"psnr\": %.3f, \"grad_norm\": %.4f, "
                    "\"lr\": %.3g", o->stage, p.step, s.loss, s.l1, s.msssim, s.entropy,
                    s.psnr, gnorm, opt.lr);
            if (o->stage > 0) fprintf(log, ", \"lambda\": %.5g", lambda);
            fputs("}\n", log);
        }
        double t = now();
        if (t - t_report >= 10.0 || p.step == o->steps) {
            double rate = report_steps * o->batch / (t - t_report);
            double eta = (o->steps - p.step) * o->batch / (rate > 0 ? rate : 1);
            char lambda_part[32] = "";
            if (o->stage > 0) snprintf(lambda_part, sizeof lambda_part, " lambda %.3g", lambda);
            if (!o->quiet)
                fprintf(stderr, "stage %d step %ld/%ld loss %.4f l1 %.4f ms-ssim %.4f psnr %.2f "
                        "entropy %.3f%s lr %.2e %.1f crops/s eta %.1f h\n", o->stage, p.step,
                        o->steps, avg.loss / report_steps, avg.l1 / report_steps,
                        avg.msssim / report_steps, avg.psnr / report_steps,
                        avg.entropy / report_steps, lambda_part, opt.lr, rate, eta / 3600);
            if (log) fflush(log);
            memset(&avg, 0, sizeof avg);
            report_steps = 0;
            t_report = t;
        }
        if (t - t_saved >= o->save_every) {
            if ((st = save_checkpoint(&p, o, o->out, err)) != MRT_OK) break;
            if (o->stage > 0 && o->export_path && (st = export_model(&p, o, err)) != MRT_OK) break;
            t_saved = t;
        }
    }
    if (st == MRT_OK) st = save_checkpoint(&p, o, o->out, err);
    if (st == MRT_OK && o->stage > 0 && o->export_path) st = export_model(&p, o, err);
    if (st == MRT_OK && !o->quiet)
        fprintf(stderr, "saved %s at step %ld (%.1f s this run)%s\n", o->out, p.step,
                now() - t_start, stop_requested ? " after a stop signal" : "");
done:
    if (have_pf) mrt_prefetch_stop(&pf);
    if (have_ds) mrt_dataset_free(&ds);
    if (have_acts && o->stage == 0) tok_acts_free(&acts);
    if (have_cacts) codec_acts_free(&cacts, &cfg);
    if (split) workers_free(split, &cfg);
    free(split);
    if (log) fclose(log);
    params_free(&p);
    return st == MRT_OK ? mrt_ok(err) : st;
}
