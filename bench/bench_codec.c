/*
 * bench_codec.c -- the whole codec's speed, as shares of BLIS's sgemm peak
 * measured in the same run, at each thread count (1 and 2 by default).
 *
 *   build/bench/bench_codec [--model M] [--threads 1,2] [--quick] [--no-large]
 *                           [--only NAME]   (workloads whose name contains NAME)
 *
 * Workloads (each in a child process of its own, so that its peak memory is
 * its own and one workload's heap cannot slow the next):
 *   decoder          mrt_decode of a 768x512 bitstream to RGB (in memory)
 *   mrt decode       the `mrt decode IN.mrt OUT.png` process, start to exit
 *   PNG write        mrt_image_write_png_memory of the 768x512 result
 *   encode           one-pass mrt_encode of the 768x512 photo
 *   refine step      one step of latent refinement: (encode with --refine K
 *                    - one pass) / K
 *   train step       one stage-2 step, batch 16 of 128x128, the encoder
 *                    trained: (run of S2 steps - run of S1 steps) / (S2 - S1)
 *   decode 12 MP, encode 12 MP   a 4000x3000 photo, with peak memory per pixel
 *
 * The photo is samples/coffee.jpg resized (bilinear) to the workload's size:
 * the work does not depend on the picture, only on its size.
 *
 * FLOPs are counted analytically from the model's configuration: 2 per
 * multiply-add of the matrix products and convolutions the computation
 * needs once (linear layers, attention's QK^T and PV, the generator's
 * convolutions over the padded image), not what an implementation spends on
 * top (halo rows, im2col copies); element-wise work, the Bi-WKV scans and the
 * entropy coding are not counted. A training step counts 3x the forward
 * (forward, input gradients, weight gradients) of encoder and decoder; a
 * refinement step 2x the decoder's forward (forward and input gradients).
 * "% of peak" is GFLOP/s against the sgemm peak at the same thread count.
 */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "codec_internal.h"
#include "mrt.h"
#include "model.h"
#include "runtime.h"
#include "mrt_train.h"

extern char **environ;

#ifndef MRT_SOURCE_DIR
#define MRT_SOURCE_DIR "."
#endif
#ifndef MRT_CLI_PATH
#define MRT_CLI_PATH "mrt"
#endif

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *what, const mrt_error *err) {
    fprintf(stderr, "bench_codec: %s: %s\n", what, err ? err->message : "failed");
    exit(1);
}

/* ------------------------------------------------------------ settings */

static const char *model_path = MRT_SOURCE_DIR "/models/default.gguf";
static const char *photo_path = MRT_SOURCE_DIR "/samples/coffee.jpg";
static double min_seconds = 1.0; /* per timed loop; --quick lowers it */
static int refine_steps = 8, train_steps_short = 2, train_steps_long = 8;
static char scratch_dir[] = "/tmp/bench_codec.XXXXXX";

/* ------------------------------------------------- the photo at any size */

static mrt_image resized_photo(int width, int height) {
    mrt_image src, out = {width, height, malloc((size_t)width * height * 3)};
    mrt_error err;
    if (!out.rgb) die("allocating the photo", NULL);
    if (mrt_image_read_file(photo_path, &src, &err) != MRT_OK) die(photo_path, &err);
    for (int y = 0; y < height; y++) {
        double fy = (y + 0.5) * src.height / height - 0.5;
        int y0 = fy < 0 ? 0 : (int)fy, y1 = y0 + 1 < src.height ? y0 + 1 : y0;
        double wy = fy - y0 < 0 ? 0 : fy - y0;
        for (int x = 0; x < width; x++) {
            double fx = (x + 0.5) * src.width / width - 0.5;
            int x0 = fx < 0 ? 0 : (int)fx, x1 = x0 + 1 < src.width ? x0 + 1 : x0;
            double wx = fx - x0 < 0 ? 0 : fx - x0;
            for (int c = 0; c < 3; c++) {
                double a = src.rgb[((size_t)y0 * src.width + x0) * 3 + c];
                double b = src.rgb[((size_t)y0 * src.width + x1) * 3 + c];
                double d = src.rgb[((size_t)y1 * src.width + x0) * 3 + c];
                double e = src.rgb[((size_t)y1 * src.width + x1) * 3 + c];
                double v = (1 - wy) * ((1 - wx) * a + wx * b) + wy * ((1 - wx) * d + wx * e);
                out.rgb[((size_t)y * width + x) * 3 + c] = (uint8_t)(v + 0.5);
            }
        }
    }
    mrt_image_free(&src);
    return out;
}

static mrt_model *load_model(void) {
    mrt_model *m;
    mrt_error err;
    if (mrt_model_load(model_path, &m, &err) != MRT_OK) die(model_path, &err);
    return m;
}

/* ------------------------------------------------------ analytic FLOPs */

/* Multiply-adds of the encoder's and decoder's forward passes for a
 * width x height image (see the file comment for what is counted). */
typedef struct {
    double encoder, decoder; /* decoder includes the pixel generator */
} macs;

static macs count_macs(const mrt_config *c, int width, int height) {
    double S = (double)c->window * c->patch; /* window side in pixels */
    double nwx = ceil(width / S), nwy = ceil(height / S), nwin = nwx * nwy;
    double ngroups = ceil(nwx / 2) * ceil(nwy / 2);
    double D = c->dim, F = c->ffn, L = c->latents, C = c->channels;
    double per_window = (double)c->window * c->window, T = nwin * per_window;
    double n = per_window + L; /* tokens of one window's ViT */
    double rwkv = T * (4 * D * D + 2 * D * F + D * D);
    double vit = nwin * (n * (4 * D * D + 2 * D * F) + 2 * n * n * D);
    double p2 = (double)c->patch * c->patch;
    macs m;
    m.encoder = T * 3 * p2 * D + c->enc_pairs * (rwkv + vit) + nwin * L * (D * D + D * C) +
                ngroups * (4 * L * C * D + D * c->side_bits);
    /* generator, per position of the 1/8 map (the padded patch grid) */
    const int *g = c->gen_width;
    double gen = 9.0 * D * g[0] + 18.0 * g[0] * g[0];
    double scale = 1;
    for (int k = 0; k < MRT_GEN_STAGES; k++) {
        gen += scale * g[k] * 4.0 * g[k + 1];       /* 1x1 up to 4x channels */
        gen += scale * 4 * 9.0 * g[k + 1] * g[k + 1]; /* 3x3 at twice the size */
        scale *= 4;
    }
    gen += scale * 9.0 * g[MRT_GEN_STAGES] * 3; /* to RGB */
    m.decoder = nwin * L * (C * D + D * D) + T * L * D + c->dec_pairs * (rwkv + vit) + T * gen;
    return m;
}

/* ------------------------------------------------- one isolated workload */

typedef struct {
    double seconds;     /* the workload's time (best of its repeats) */
    double flops;       /* counted as the file comment says; 0: not counted */
    double pixels;      /* > 0: report the peak memory per pixel of this many */
    long max_rss_kb;    /* the child's peak resident memory (getrusage), or that of
                         * the program it ran */
} result;

typedef void (*workload_fn)(int threads, result *r);

/* Runs fn in a child process and returns what it reported, with the
 * child's peak memory. The parent holds no model or image when it forks,
 * so what the child inherits is only the program itself. */
static result isolated(workload_fn fn, int threads) {
    int fds[2];
    result r;
    memset(&r, 0, sizeof r);
    if (pipe(fds) != 0) die("pipe", NULL);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) die("fork", NULL);
    if (pid == 0) {
        close(fds[0]);
        fn(threads, &r);
        /* a workload that ran a program reports that program's peak */
        struct rusage ru;
        if (r.max_rss_kb == 0 && getrusage(RUSAGE_SELF, &ru) == 0) r.max_rss_kb = ru.ru_maxrss;
        ssize_t w = write(fds[1], &r, sizeof r);
        _exit(w == (ssize_t)sizeof r ? 0 : 1);
    }
    close(fds[1]);
    ssize_t got = read(fds[0], &r, sizeof r);
    close(fds[0]);
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        got != (ssize_t)sizeof r) {
        fprintf(stderr, "bench_codec: a workload's process failed\n");
        exit(1);
    }
    return r;
}

/* Best time of fn over repeats lasting at least min_seconds (at least 2). */
typedef void (*call_fn)(void *);
static double best_time(call_fn fn, void *ctx) {
    double best = INFINITY, start = now();
    int reps = 0;
    while (reps < 2 || now() - start < min_seconds) {
        double t0 = now();
        fn(ctx);
        double dt = now() - t0;
        if (dt < best) best = dt;
        reps++;
    }
    return best;
}

/* ------------------------------------------------------------ workloads */

typedef struct {
    mrt_model *model;
    mrt_image photo;
    int threads;
    uint8_t *bits;
    size_t nbits;
    mrt_image decoded;
    uint8_t *png;
    size_t npng;
    int refine;
} codec_ctx;

static void call_sgemm(void *p) {
    float **m = p;
    mrt_rt rt = mrt_rt_make((int)(intptr_t)m[3]);
    mrt_sgemm(&rt, false, false, 2048, 2048, 2048, 1.0f, m[0], 2048, m[1], 2048, 0.0f, m[2], 2048);
}

static void w_sgemm(int threads, result *r) {
    size_t n = (size_t)2048 * 2048;
    float *m[4] = {malloc(n * 4), malloc(n * 4), malloc(n * 4), (float *)(intptr_t)threads};
    if (!m[0] || !m[1] || !m[2]) die("allocating matrices", NULL);
    for (size_t i = 0; i < n; i++) m[0][i] = (float)(i % 7) - 3, m[1][i] = (float)(i % 5) - 2;
    call_sgemm(m);
    r->seconds = best_time(call_sgemm, m);
    r->flops = 2.0 * 2048.0 * 2048.0 * 2048.0;
}

static void call_encode(void *p) {
    codec_ctx *c = p;
    mrt_error err;
    /* the full size even for a rate point with a working scale: the
     * FLOP counts are the full size's */
    mrt_encode_options o = {.threads = c->threads, .refine_steps = c->refine,
                            .working_width = c->photo.width, .working_height = c->photo.height};
    free(c->bits);
    if (mrt_encode_with(c->model, &c->photo, &o, &c->bits, &c->nbits, &err) != MRT_OK)
        die("encode", &err);
}

static void call_decode(void *p) {
    codec_ctx *c = p;
    mrt_error err;
    mrt_image_free(&c->decoded);
    if (mrt_decode(c->model, c->bits, c->nbits, c->threads, &c->decoded, &err) != MRT_OK)
        die("decode", &err);
}

static void call_png(void *p) {
    codec_ctx *c = p;
    mrt_error err;
    free(c->png);
    if (mrt_image_write_png_memory(&c->decoded, &c->png, &c->npng, &err) != MRT_OK)
        die("PNG write", &err);
}

static codec_ctx codec_setup(int threads, int width, int height) {
    codec_ctx c;
    memset(&c, 0, sizeof c);
    c.model = load_model();
    c.photo = resized_photo(width, height);
    c.threads = threads;
    return c;
}

static void codec_free(codec_ctx *c) {
    free(c->bits), free(c->png);
    mrt_image_free(&c->decoded);
    mrt_image_free(&c->photo);
    mrt_model_free(c->model);
}

static void w_encode(int threads, result *r) {
    codec_ctx c = codec_setup(threads, 768, 512);
    call_encode(&c);
    r->seconds = best_time(call_encode, &c);
    r->flops = 2.0 * count_macs(mrt_model_config(c.model), 768, 512).encoder;
    codec_free(&c);
}

static void w_decode(int threads, result *r) {
    codec_ctx c = codec_setup(threads, 768, 512);
    call_encode(&c);
    call_decode(&c);
    r->seconds = best_time(call_decode, &c);
    r->flops = 2.0 * count_macs(mrt_model_config(c.model), 768, 512).decoder;
    codec_free(&c);
}

static void w_png(int threads, result *r) {
    codec_ctx c = codec_setup(threads, 768, 512);
    call_encode(&c);
    call_decode(&c);
    call_png(&c);
    r->seconds = best_time(call_png, &c);
    codec_free(&c);
}

static void w_refine_step(int threads, result *r) {
    codec_ctx c = codec_setup(threads, 768, 512);
    call_encode(&c);
    double one_pass = best_time(call_encode, &c);
    c.refine = refine_steps;
    double t0 = now();
    call_encode(&c);
    r->seconds = (now() - t0 - one_pass) / refine_steps;
    r->flops = 2.0 * 2.0 * count_macs(mrt_model_config(c.model), 768, 512).decoder;
    codec_free(&c);
}

static void w_large(int threads, result *r, bool decode) {
    int W = 4000, H = 3000;
    codec_ctx c = codec_setup(threads, W, H);
    double t0 = now();
    call_encode(&c);
    double t_encode = now() - t0;
    if (decode) {
        t0 = now();
        call_decode(&c);
        r->seconds = now() - t0;
        r->flops = 2.0 * count_macs(mrt_model_config(c.model), W, H).decoder;
    } else {
        r->seconds = t_encode;
        r->flops = 2.0 * count_macs(mrt_model_config(c.model), W, H).encoder;
    }
    r->pixels = (double)W * H;
    codec_free(&c);
}
/* Encoding 12 MP is the first half of decoding it, so the two run in
 * separate processes: the encode's own peak is then the encode's. */
static void w_large_encode(int threads, result *r) { w_large(threads, r, false); }
static void w_large_decode(int threads, result *r) { w_large(threads, r, true); }

/* `mrt decode` as a user runs it: a process, from exec to exit. */
static void w_process(int threads, result *r) {
    codec_ctx c = codec_setup(threads, 768, 512);
    call_encode(&c);
    char in[300], out[300], nthreads[16];
    snprintf(in, sizeof in, "%s/photo.mrt", scratch_dir);
    snprintf(out, sizeof out, "%s/photo.png", scratch_dir);
    snprintf(nthreads, sizeof nthreads, "%d", threads);
    mrt_error err;
    if (mrt_write_file_atomic(in, c.bits, c.nbits, &err) != MRT_OK) die(in, &err);
    char *argv[] = {(char *)MRT_CLI_PATH, "decode", in, out, "--model", (char *)model_path,
                    "--threads", nthreads, "--quiet", NULL};
    double best = INFINITY, start = now();
    for (int reps = 0; reps < 3 || now() - start < min_seconds; reps++) {
        pid_t pid;
        double t0 = now();
        if (posix_spawn(&pid, MRT_CLI_PATH, NULL, NULL, argv, environ) != 0) die(MRT_CLI_PATH, NULL);
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            die("mrt decode", NULL);
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    r->seconds = best;
    r->flops = 2.0 * count_macs(mrt_model_config(c.model), 768, 512).decoder;
    struct rusage ru;
    if (getrusage(RUSAGE_CHILDREN, &ru) == 0) r->max_rss_kb = ru.ru_maxrss;
    codec_free(&c);
}

/* One stage-2 training step: the difference of two runs from the shipped
 * model, so loading the data and the model and saving the checkpoint cancel. */
static double train_run(int threads, long steps) {
    char data[300], ckpt[300];
    snprintf(data, sizeof data, "%s/data", scratch_dir);
    snprintf(ckpt, sizeof ckpt, "%s/train-%d-%ld.gguf", scratch_dir, threads, steps);
    const char *dirs[] = {data};
    mrt_train_options o;
    mrt_train_defaults(&o);
    o.stage = 2;
    o.data = dirs, o.ndata = 1;
    o.out = ckpt;
    o.init = model_path;
    o.train_encoder = 1;
    o.lambda = 5.7f;
    o.mse_weight = 32;
    o.steps = 1000, o.warmup = 200;
    o.batch = 16, o.crop = 128;
    o.lr = 1e-4f;
    o.threads = threads;
    o.quiet = 1;
    o.save_every = 1e9;
    o.stop_after = steps;
    mrt_error err;
    double t0 = now();
    if (mrt_train(&o, &err) != MRT_OK) die("training", &err);
    double t = now() - t0;
    unlink(ckpt);
    return t;
}

static void w_train_step(int threads, result *r) {
    mrt_model *m = load_model();
    const mrt_config *cfg = mrt_model_config(m);
    macs per_crop = count_macs(cfg, 128, 128);
    r->flops = 16 * 3 * 2.0 * (per_crop.encoder + per_crop.decoder);
    mrt_model_free(m);
    double best = INFINITY;
    for (int rep = 0; rep < 2; rep++) {
        double t = (train_run(threads, train_steps_long) - train_run(threads, train_steps_short)) /
                   (train_steps_long - train_steps_short);
        if (t < best) best = t;
    }
    r->seconds = best;
}

/* ---------------------------------------------------------------- main */

typedef struct {
    const char *name, *what;
    workload_fn fn;
    bool large;
} workload;

static const workload workloads[] = {
    {"decoder", "768x512, bits -> RGB", w_decode, false},
    {"mrt decode (process)", "768x512, .mrt -> .png file", w_process, false},
    {"PNG write", "768x512 RGB -> PNG bytes", w_png, false},
    {"encode, one pass", "768x512, RGB -> bits", w_encode, false},
    {"refinement step", "768x512", w_refine_step, false},
    {"training step (stage 2)", "16 crops of 128x128", w_train_step, false},
    {"decode 12 MP", "4000x3000, bits -> RGB", w_large_decode, true},
    {"encode 12 MP", "4000x3000, RGB -> bits", w_large_encode, true},
};
enum { NWORKLOADS = sizeof workloads / sizeof workloads[0], MAX_THREAD_COUNTS = 4 };

static int write_training_data(void) {
    char dir[300], path[340];
    snprintf(dir, sizeof dir, "%s/data", scratch_dir);
    if (mkdir(dir, 0700) != 0) return -1;
    mrt_image photo = resized_photo(768, 512);
    mrt_error err;
    snprintf(path, sizeof path, "%s/photo.png", dir);
    mrt_status s = mrt_image_write_png_file(&photo, path, &err);
    mrt_image_free(&photo);
    return s == MRT_OK ? 0 : -1;
}

static void remove_scratch(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch_dir);
    if (system(cmd) != 0) fprintf(stderr, "bench_codec: could not remove %s\n", scratch_dir);
}

int main(int argc, char **argv) {
    int thread_counts[MAX_THREAD_COUNTS] = {1, 2}, nthread_counts = 2;
    bool large = true;
    const char *only = NULL; /* run only workloads whose name contains this */
    static const struct option options[] = {
        {"quick", no_argument, NULL, 'q'},
        {"no-large", no_argument, NULL, 'n'},
        {"model", required_argument, NULL, 'm'},
        {"only", required_argument, NULL, 'o'},
        {"threads", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'q':
            min_seconds = 0.2, refine_steps = 4, train_steps_long = 5;
            break;
        case 'n':
            large = false;
            break;
        case 'm':
            model_path = optarg;
            break;
        case 'o':
            only = optarg;
            break;
        case 't':
            nthread_counts = 0;
            for (char *tok = strtok(optarg, ","); tok && nthread_counts < MAX_THREAD_COUNTS;
                 tok = strtok(NULL, ","))
                thread_counts[nthread_counts++] = atoi(tok);
            for (int k = 0; k < nthread_counts; k++)
                if (thread_counts[k] < 1 || thread_counts[k] > 256) {
                    fprintf(stderr, "bench_codec: --threads takes counts 1..256, e.g. 1,2\n");
                    return 2;
                }
            break;
        default:
            fprintf(stderr, "usage: %s [--model M] [--threads 1,2] [--quick] [--no-large] [--only NAME]\n", argv[0]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "usage: %s [--model M] [--threads 1,2] [--quick] [--no-large] [--only NAME]\n", argv[0]);
        return 2;
    }
    if (!mkdtemp(scratch_dir) || write_training_data() != 0) {
        fprintf(stderr, "bench_codec: cannot prepare %s\n", scratch_dir);
        return 1;
    }
    printf("mrt codec benchmark: model %s, BLIS %s (%s kernels)\n", model_path, mrt_blis_version(),
           mrt_blis_arch());

    double peak[MAX_THREAD_COUNTS];
    for (int k = 0; k < nthread_counts; k++) {
        result r = isolated(w_sgemm, thread_counts[k]);
        peak[k] = r.flops / r.seconds * 1e-9;
    }
    printf("\nsgemm peak (2048^3):");
    for (int k = 0; k < nthread_counts; k++)
        printf(" %.0f GFLOP/s at %d thread%s;", peak[k], thread_counts[k], thread_counts[k] > 1 ? "s" : "");
    printf("\n\n| workload | size | threads | time | GFLOP | GFLOP/s | %% of peak | speed-up | peak memory |\n");
    printf("|---|---|---|---|---|---|---|---|---|\n");
    for (int w = 0; w < NWORKLOADS; w++) {
        if (workloads[w].large && !large) continue;
        if (only && !strstr(workloads[w].name, only)) continue;
        double first = 0;
        for (int k = 0; k < nthread_counts; k++) {
            result r = isolated(workloads[w].fn, thread_counts[k]);
            double gflop = r.flops * 1e-9, rate = gflop / r.seconds;
            char flop_cols[64] = "", share[32] = "", speedup[32] = "", memory[64];
            if (gflop > 0) {
                snprintf(flop_cols, sizeof flop_cols, "%.2f | %.1f", gflop, rate);
                snprintf(share, sizeof share, "%.0f %%", 100 * rate / peak[k]);
            } else {
                snprintf(flop_cols, sizeof flop_cols, "– | –");
            }
            if (k == 0) first = r.seconds;
            else snprintf(speedup, sizeof speedup, "%.2fx", first / r.seconds);
            if (r.pixels > 0)
                snprintf(memory, sizeof memory, "%.0f MB, %.0f B/pixel", r.max_rss_kb / 1024.0,
                         r.max_rss_kb * 1024.0 / r.pixels);
            else
                snprintf(memory, sizeof memory, "%.0f MB", r.max_rss_kb / 1024.0);
            printf("| %s | %s | %d | %.1f ms | %s | %s | %s | %s |\n", workloads[w].name,
                   workloads[w].what, thread_counts[k], r.seconds * 1e3, flop_cols, share, speedup, memory);
        }
    }
    remove_scratch();
    return 0;
}
