/*
 * train.c -- the trainer's loop (see mrt_train.h): data, learning-rate
 * schedule, the step of the stage (stage0.c, codec_step.c, batch_split.c),
 * logging, checkpoints every few minutes and on SIGINT/SIGTERM
 * (checkpoint.c), the export.
 *
 * AdamW with warm-up and cosine decay, global gradient clipping, EMA
 * weights.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mrt_json.h"
#include "train_internal.h"

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

/* The parameter ranges (offsets into P) of the tensors --lr-mult names. */
typedef struct {
    int n;
    size_t begin[MAX_TENSORS], end[MAX_TENSORS];
} param_ranges;

static int find_boosted(const params *p, const char *prefix, param_ranges *r) {
    r->n = 0;
    size_t off = 0;
    for (int i = 0; i < p->ntensors; i++) {
        size_t n = mrt_tensor_ref_elems(&p->refs[i]);
        if (prefix && !strncmp(p->refs[i].name, prefix, strlen(prefix))) {
            if (r->n && r->end[r->n - 1] == off)
                r->end[r->n - 1] = off + n; /* contiguous with the last: one range */
            else
                r->begin[r->n] = off, r->end[r->n] = off + n, r->n++;
        }
        off += n;
    }
    return r->n;
}

/* AdamW over all of P, the boosted ranges at lr * mult. */
static void adamw_update(const mrt_adamw *opt, params *p, const param_ranges *boosted,
                         float mult) {
    mrt_adamw fast = *opt;
    fast.lr = opt->lr * mult;
    size_t at = 0;
    for (int k = 0; k <= boosted->n; k++) {
        size_t b = k < boosted->n ? boosted->begin[k] : p->n;
        if (b > at)
            mrt_adamw_update(opt, p->P + at, p->G + at, p->M + at, p->V + at, b - at, p->step + 1);
        if (k == boosted->n) break;
        size_t e = boosted->end[k];
        mrt_adamw_update(&fast, p->P + b, p->G + b, p->M + b, p->V + b, e - b, p->step + 1);
        at = e;
    }
}

/* A size of the model (latent tokens, decoder pairs) for stages 1-2: the
 * option's, else that of what this run continues (the checkpoint it
 * resumes, or the weights stage 2 starts from, so that fine-tuning a
 * shipped model needs no option), else XS's. */
static int size_to_continue(const mrt_train_options *o, int option,
                            int (*in_file)(const char *path), int xs) {
    int n = option                    ? option
            : o->resume               ? in_file(o->out)
            : o->stage == 2 && o->init ? in_file(o->init)
                                      : 0;
    return n ? n : xs;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

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
    if (o->lr_mult_prefix && !(o->lr_mult > 0 && o->lr_mult <= 1000))
        return mrt_fail(err, MRT_ERR_ARGUMENT, "--lr-mult takes PREFIX=X with X in (0, 1000]");
    if (o->dec_pairs && o->stage == 0)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "--dec-pairs is for stages 1 and 2 (the "
                        "tokenizer has no decoder pairs)");
    if (o->stage > 0) {
        /* growing either: DESIGN.md §4.9 */
        cfg.latents = size_to_continue(o, o->latents, mrt_weights_latents, cfg.latents);
        cfg.dec_pairs = size_to_continue(o, o->dec_pairs, mrt_weights_dec_pairs, cfg.dec_pairs);
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
    if (mrt_params_alloc(&p, &cfg, o->stage, o->tok_bits) != 0 ||
        (o->stage == 0 && mrt_tok_acts_alloc(&acts, &cfg, o->tok_bits, o->batch, o->crop) != 0)) {
        st = mrt_fail(err, MRT_ERR_NOMEM, "out of memory");
        goto done;
    }
    have_acts = true;
    if (o->stage > 0) {
        if (!(split = malloc(sizeof *split))) {
            st = mrt_fail(err, MRT_ERR_NOMEM, "out of memory");
            goto done;
        }
        if (mrt_workers_alloc(split, &p, o, rt.threads, err) != 0 ||
            (split->n == 1 && mrt_codec_acts_alloc(&cacts, &p, o, err) != 0)) {
            st = err ? err->status : MRT_ERR_NOMEM;
            goto done;
        }
        have_cacts = split->n == 1;
    }
    if (o->resume) {
        if ((st = mrt_checkpoint_load(&p, o, o->out, err)) != MRT_OK) goto done;
    } else if (o->stage == 0) {
        mrt_params_init(&p, o->seed);
    } else if ((st = mrt_codec_train_init(&p, o, err)) != MRT_OK) {
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
    param_ranges boosted; /* none without --lr-mult */
    if (!find_boosted(&p, o->lr_mult_prefix, &boosted) && o->lr_mult_prefix) {
        st = mrt_fail(err, MRT_ERR_ARGUMENT, "--lr-mult: no trained tensor's name starts "
                      "with '%s'", o->lr_mult_prefix);
        goto done;
    }
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
            s = mrt_tok_step(&rt, &p, &acts, x, o->entropy_weight);
        } else {
            double ramp = o->lambda_ramp > 0 ? (double)p.step / o->lambda_ramp : 1.0;
            lambda = (float)(p.lambda * (ramp < 1.0 ? ramp : 1.0));
            uint64_t noise_seed = o->seed ^ (0xd1342543de82ef95ULL * (uint64_t)(p.step + 1));
            s = split->n > 1 ? mrt_split_step(split, &p, x, o->batch, o->crop, lambda, noise_seed)
                             : mrt_codec_step(&rt, &p, &cacts, x, lambda, noise_seed);
        }
        if (!isfinite(s.loss)) {
            st = mrt_fail(err, MRT_ERR_NOMEM, "step %ld: the loss is not finite (out of memory "
                          "or diverged)", p.step);
            break;
        }
        if (o->stage > 0 && o->target_bpp > 0 && p.step >= o->lambda_ramp)
            p.lambda = mrt_steer_lambda(p.lambda, s.entropy, o->target_bpp);
        float gnorm = mrt_clip_grad_norm(p.G, p.n, o->clip);
        opt.lr = learning_rate(o, p.step);
        adamw_update(&opt, &p, &boosted, o->lr_mult);
        for (size_t i = 0; i < p.n; i++) p.E[i] = o->ema * p.E[i] + (1.0f - o->ema) * p.P[i];
        p.step++;
        report_steps++;
        avg.loss += s.loss, avg.l1 += s.l1, avg.msssim += s.msssim, avg.entropy += s.entropy;
        avg.psnr += s.psnr, avg.bit_balance += s.bit_balance;
        if (log && p.step % (o->log_every > 0 ? o->log_every : 1) == 0) {
            /* one line of the .jsonl; like the fprintf it replaces, a failed
             * write of the log does not stop training */
            mrt_json w;
            mrt_json_to_file(&w, log);
            mrt_json_object(&w, NULL, MRT_JSON_INLINE);
            mrt_json_int(&w, "stage", o->stage);
            mrt_json_int(&w, "step", p.step);
            mrt_json_real(&w, "loss", "%.6f", s.loss);
            mrt_json_real(&w, "l1", "%.6f", s.l1);
            mrt_json_real(&w, "msssim", "%.6f", s.msssim);
            mrt_json_real(&w, "entropy", "%.6f", s.entropy);
            mrt_json_real(&w, "psnr", "%.3f", s.psnr);
            mrt_json_real(&w, "grad_norm", "%.4f", gnorm);
            mrt_json_real(&w, "lr", "%.3g", opt.lr);
            if (o->stage > 0) mrt_json_real(&w, "lambda", "%.5g", lambda);
            mrt_json_end(&w);
            fputc('\n', log);
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
            if ((st = mrt_checkpoint_save(&p, o, o->out, err)) != MRT_OK) break;
            if (o->stage > 0 && o->export_path && (st = mrt_train_export(&p, o, err)) != MRT_OK) break;
            t_saved = t;
        }
    }
    if (st == MRT_OK) st = mrt_checkpoint_save(&p, o, o->out, err);
    if (st == MRT_OK && o->stage > 0 && o->export_path) st = mrt_train_export(&p, o, err);
    if (st == MRT_OK && !o->quiet)
        fprintf(stderr, "saved %s at step %ld (%.1f s this run)%s\n", o->out, p.step,
                now() - t_start, stop_requested ? " after a stop signal" : "");
done:
    if (have_pf) mrt_prefetch_stop(&pf);
    if (have_ds) mrt_dataset_free(&ds);
    if (have_acts && o->stage == 0) mrt_tok_acts_free(&acts);
    if (have_cacts) mrt_codec_acts_free(&cacts, &cfg);
    if (split) mrt_workers_free(split, &cfg);
    free(split);
    if (log) fclose(log);
    mrt_params_free(&p);
    return st == MRT_OK ? mrt_ok(err) : st;
}
