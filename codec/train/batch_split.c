/*
 * batch_split.c -- stages 1 and 2 on several threads: the batch split
 * (train_internal.h has why)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

/* A view of p whose weights are p's and whose gradients are its own. */
static int params_view(params *v, const params *p) {
    *v = *p;
    if (!(v->G = calloc(p->n, sizeof(float)))) return -1;
    mrt_params_describe(v, v->grefs, &v->g, &v->mg, &v->cg);
    size_t off = 0;
    for (int i = 0; i < v->ntensors; i++) {
        *v->grefs[i].slot = v->G + off;
        off += mrt_tensor_ref_elems(&v->grefs[i]);
    }
    return 0;
}

void mrt_workers_free(workers *w, const mrt_config *cfg) {
    for (int i = 0; i < w->n && w->n > 1; i++) {
        if (w->have_acts[i]) mrt_codec_acts_free(&w->acts[i], cfg);
        free(w->view[i].G);
    }
}

/* As many workers as threads, fewer if the batch does not divide evenly
 * (the most that do); one means no split. */
int mrt_workers_alloc(workers *w, const params *p, const mrt_train_options *o, int threads,
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
        if (mrt_codec_acts_alloc(&w->acts[i], &w->view[i], &share, err) != 0) return -1;
        w->have_acts[i] = true;
    }
    return 0;
}

/* One step of stages 1-2 with the batch split across the workers; the
 * averaged gradient lands in p->G. Worker 0's noise seed is the unsplit
 * step's. */
step_stats mrt_split_step(workers *w, params *p, const float *x, int batch, int crop,
                          float lambda, uint64_t noise_seed) {
    step_stats part[MAX_WORKERS];
    size_t share = (size_t)(batch / w->n) * 3 * crop * crop;
    mrt_rt one = mrt_rt_make(1);
#pragma omp parallel for num_threads(w->n) schedule(static, 1)
    for (int i = 0; i < w->n; i++) {
        memset(w->view[i].G, 0, sizeof(float) * p->n);
        part[i] = mrt_codec_step(&one, &w->view[i], &w->acts[i], x + i * share, lambda,
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
