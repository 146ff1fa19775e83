/*
 * mrt_cli.c -- the `mrt` command: a thin front over libmrt.
 *
 *   mrt encode IN.(png|jpg) OUT.mrt   [--model M] [--threads N] [--refine STEPS]
 *                                     [--refine-mse-weight W] [--scale S | --bytes N]
 *                                     [--quiet]
 *   mrt decode IN.mrt OUT.png         [--model M] [--threads N] [--scale 1/2|1/4|1/8]
 *                                     [--quiet]
 *   mrt info IN.mrt                   JSON on stdout
 *   mrt init-model OUT.gguf [--seed S] [--rate-id R]   seeded random weights
 *   mrt derive-rate-point WEIGHTS.gguf OUT.gguf --scale S --rate-id R
 *                                     a rate point made of existing weights
 *
 * Statistics go to stderr (like cwebp/avifenc); exit status 0 on success,
 * 1 with a one-line reason on any error, 2 on a usage error.
 */
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

#include "mrt.h"
#include "mrt_json.h"
#include "mrt_train.h"

static const char *usage_text =
    "usage: mrt encode IN.(png|jpg) OUT.mrt [--model M] [--rate R] [--threads N]\n"
    "                  [--refine STEPS] [--refine-mse-weight W] [--scale S | --bytes N]\n"
    "                  [--quiet]\n"
    "       mrt decode IN.mrt OUT.png [--model M] [--threads N] [--scale 1/2|1/4|1/8]\n"
    "                  [--quiet]\n"
    "       mrt info IN.mrt\n"
    "       mrt eval DIR [--model M] [--threads N] [--refine STEPS] [--refine-mse-weight W]\n"
    "                 rate-distortion JSON\n"
    "       mrt init-model OUT.gguf [--seed S] [--rate-id R]\n"
    "       mrt derive-rate-point WEIGHTS.gguf OUT.gguf --scale S --rate-id R\n"
    "                 (a rate point that codes a copy shrunk by S with WEIGHTS's weights:\n"
    "                 models/README.md, \"Rate points from one model\")\n"
    "       mrt fit-thumbnails --model M --data DIR [--data DIR ...] [--images N]\n"
    "                 [--crop S] [--seed S] [--ridge R] [--level 0|1|2] [--radius 1|2|3]\n"
    "                 [--out HEADS.gguf] [--threads N]\n"
    "                 (the model's thumbnail head for decode --scale 1/4 and 1/8, fitted\n"
    "                 by least squares on N photos; default out: M's NAME.thumbs.gguf)\n"
    "       mrt train --stage 0|1|2 --data DIR [--data DIR ...] --out CKPT.gguf [--resume]\n"
    "                 [--tokenizer STAGE0.gguf] [--init STAGE1.gguf] [--export MODEL.gguf]\n"
    "                 [--lambda L] [--lambda-ramp N] [--rate-id R] [--train-encoder]\n"
    "                 [--steps N] [--batch B] [--crop S] [--lr X] [--bits D] [--seed S]\n"
    "                 [--target-bpp R]  (stages 1-2: steer lambda, from --lambda, to hold\n"
    "                 the training crops' estimated rate at R bits per pixel)\n"
    "                 [--mse-weight W]  (stage 2: add W * MSE to L1 + (1 - MS-SSIM);\n"
    "                 it moves the balance towards PSNR)\n"
    "                 [--latents L]  (stages 1-2: latent tokens per 64x64 window; default:\n"
    "                 those of the checkpoint or --init weights, else 2; weights with\n"
    "                 fewer are grown)\n"
    "                 [--dec-pairs N]  (stages 1-2: ViT + Bi-RWKV pairs in the decoder;\n"
    "                 default: those of the checkpoint or --init weights, else 2; weights\n"
    "                 with fewer are grown by pairs that start as the identity)\n"
    "                 [--lr-mult PREFIX=X]  (tensors whose names start with PREFIX, such as\n"
    "                 a grown pair's dec.2., train at X times the learning rate)\n"
    "                 [--log FILE.jsonl] [--log-every N] [--save-every SECONDS] [--stop-after N]\n"
    "                 [--threads N]\n"
    "\n"
    "IN or OUT '-' is standard input or output. An OUT that is a device or FIFO is\n"
    "written into, one that is a symbolic link is written through; OUT is never the\n"
    "same file as IN.\n"
    "The model is --model, else $MRT_MODEL, else default.gguf of the install\n"
    "(<datadir>/mrt/models) or of the source tree it was built from. Its rate points\n"
    "are the mrt-NAME.gguf beside it: --rate R encodes with the one named R (0.01),\n"
    "of rate id R (2), or low/medium/high; --bytes N chooses among all of them; decode\n"
    "takes the one the stream was made with.\n"
    "Threads: --threads, else $MRT_THREADS, else all cores.\n"
    "--refine STEPS: latent refinement, a better picture at the same size for about\n"
    "0.4 s per step per 768x512 photo on two cores (60 is a good choice, 120 a little\n"
    "better; 0 is off).\n"
    "--refine-mse-weight W: what refinement minimises, L1 + (1 - MS-SSIM) + W * MSE;\n"
    "by default W is the model's training weight (32 for the 0.02 model). Lower\n"
    "favours MS-SSIM, higher PSNR, at the same bytes (0..10000).\n"
    "--scale S: code a copy shrunk by S (0 < S <= 1, e.g. 0.5 or 1/2; each side\n"
    "rounded, at least 1 pixel); the decoder scales it back to the original size.\n"
    "Fewer bytes for a softer picture (bitstream version 2). With decode: the\n"
    "picture at 1/2, 1/4 or 1/8 of its size (each side rounded up), for thumbnails.\n"
    "--bytes N: at most N bytes (1500, 1500B, 2KB = 2000, 1.5KiB = 1536); the encoder\n"
    "chooses the rate point and the working size that decode closest to the photo\n"
    "(MS-SSIM). The rate points are every --model given (repeat it), else the model\n"
    "and every mrt-*.gguf beside it; rate points made of the same weights (0.005 and\n"
    "0.01 are the 0.02 weights on a shrunk copy) are tried once.\n"
    "--scale with --rate or a --model of its own working scale replaces that scale.\n";

static int usage(const char *problem) {
    if (problem) fprintf(stderr, "mrt: %s\n", problem);
    fputs(usage_text, stderr);
    return 2;
}

static int fail(const char *what, const mrt_error *err) {
    fprintf(stderr, "mrt: %s: %s\n", what, err->message);
    return 1;
}

/* "-" is standard input or output. */
static int is_std(const char *path) { return !strcmp(path, "-"); }

static mrt_status read_input(const char *path, uint8_t **data, size_t *len, mrt_error *err) {
    if (is_std(path)) return mrt_read_fd(0, "standard input", MRT_MAX_FILE_BYTES, data, len, err);
    return mrt_read_file(path, MRT_MAX_FILE_BYTES, data, len, err);
}

static mrt_status write_output(const char *path, const void *data, size_t len, mrt_error *err) {
    if (is_std(path)) return mrt_write_fd(1, "standard output", data, len, err);
    return mrt_write_file_atomic(path, data, len, err);
}

/* Refuses an output that is the input itself: `mrt encode a.png a.png`
 * would replace the photo with its bitstream. */
static int same_file(const char *in, const char *out) {
    struct stat a, b;
    if (is_std(in) || is_std(out) || stat(in, &a) != 0 || stat(out, &b) != 0) return 0;
    if (a.st_dev != b.st_dev || a.st_ino != b.st_ino || !S_ISREG(a.st_mode)) return 0;
    fprintf(stderr, "mrt: '%s' and '%s' are the same file: writing the output would destroy "
            "the input\n", in, out);
    return 1;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define MAX_MODELS 16

typedef struct {
    const char *model;
    const char *models[MAX_MODELS]; /* every --model, in order (encode --bytes) */
    const char *rate;               /* encode --rate: a rate point beside the model */
    int nmodels;
    size_t bytes; /* encode's byte budget; 0: none */
    int threads;
    int refine; /* latent refinement steps */
    int refine_mse_weight_given;
    float refine_mse_weight; /* refinement's MSE weight, if given */
    double scale;            /* encode's working scale, (0, 1]; 0: not given (1) */
    int quiet;
    unsigned long long seed;
    int rate_id;
    int rate_id_given;
    const char *args[2];
    int nargs;
} options;

/* Why parse() refused the command line: one line for usage(). */
static char parse_problem[512];

static int refuse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int refuse(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(parse_problem, sizeof parse_problem, fmt, ap);
    va_end(ap);
    return -1;
}

/* An integer option value in lo..hi, the whole argument. */
static int int_value(const char *opt, const char *text, long lo, long hi, long *v) {
    char *end;
    errno = 0;
    *v = strtol(text, &end, 10);
    if (end == text || *end || errno == ERANGE || *v < lo || *v > hi)
        return refuse("%s takes a whole number from %ld to %ld, not '%s'", opt, lo, hi, text);
    return 0;
}

/* Every option of the program in one table: getopt_long's entry and the
 * commands that take it (train has options of its own). */
enum {
    OPT_QUIET = 'q',
    OPT_MODEL = 256, OPT_RATE, OPT_BYTES, OPT_THREADS, OPT_REFINE, OPT_REFINE_MSE_WEIGHT,
    OPT_SCALE, OPT_SEED, OPT_RATE_ID,
    OPT_STAGE, OPT_DATA, OPT_OUT, OPT_RESUME, OPT_TOKENIZER, OPT_INIT, OPT_EXPORT, OPT_LAMBDA,
    OPT_LAMBDA_RAMP, OPT_TARGET_BPP, OPT_MSE_WEIGHT, OPT_TRAIN_ENCODER, OPT_LATENTS,
    OPT_DEC_PAIRS, OPT_LR_MULT, OPT_LOG, OPT_LOG_EVERY, OPT_SAVE_EVERY, OPT_STOP_AFTER,
    OPT_STEPS, OPT_BATCH, OPT_CROP, OPT_LR,
    OPT_BITS, OPT_WARMUP, OPT_IMAGES, OPT_RIDGE, OPT_LEVEL, OPT_RADIUS,
};
#define FOR_CODEC 1 /* encode, decode, info, eval, init-model, derive-rate-point */
#define FOR_TRAIN 2
#define FOR_FIT 4   /* fit-thumbnails */

static const struct {
    struct option option;
    int commands;
} option_table[] = {
    {{"model", required_argument, NULL, OPT_MODEL}, FOR_CODEC | FOR_FIT},
    {{"rate", required_argument, NULL, OPT_RATE}, FOR_CODEC},
    {{"bytes", required_argument, NULL, OPT_BYTES}, FOR_CODEC},
    {{"refine", required_argument, NULL, OPT_REFINE}, FOR_CODEC},
    {{"refine-mse-weight", required_argument, NULL, OPT_REFINE_MSE_WEIGHT}, FOR_CODEC},
    {{"scale", required_argument, NULL, OPT_SCALE}, FOR_CODEC},
    {{"threads", required_argument, NULL, OPT_THREADS}, FOR_CODEC | FOR_TRAIN | FOR_FIT},
    {{"seed", required_argument, NULL, OPT_SEED}, FOR_CODEC | FOR_TRAIN | FOR_FIT},
    {{"rate-id", required_argument, NULL, OPT_RATE_ID}, FOR_CODEC | FOR_TRAIN},
    {{"quiet", no_argument, NULL, OPT_QUIET}, FOR_CODEC | FOR_TRAIN | FOR_FIT},
    {{"stage", required_argument, NULL, OPT_STAGE}, FOR_TRAIN},
    {{"data", required_argument, NULL, OPT_DATA}, FOR_TRAIN | FOR_FIT},
    {{"out", required_argument, NULL, OPT_OUT}, FOR_TRAIN | FOR_FIT},
    {{"resume", no_argument, NULL, OPT_RESUME}, FOR_TRAIN},
    {{"tokenizer", required_argument, NULL, OPT_TOKENIZER}, FOR_TRAIN},
    {{"init", required_argument, NULL, OPT_INIT}, FOR_TRAIN},
    {{"export", required_argument, NULL, OPT_EXPORT}, FOR_TRAIN},
    {{"lambda", required_argument, NULL, OPT_LAMBDA}, FOR_TRAIN},
    {{"lambda-ramp", required_argument, NULL, OPT_LAMBDA_RAMP}, FOR_TRAIN},
    {{"target-bpp", required_argument, NULL, OPT_TARGET_BPP}, FOR_TRAIN},
    {{"mse-weight", required_argument, NULL, OPT_MSE_WEIGHT}, FOR_TRAIN},
    {{"train-encoder", no_argument, NULL, OPT_TRAIN_ENCODER}, FOR_TRAIN},
    {{"latents", required_argument, NULL, OPT_LATENTS}, FOR_TRAIN},
    {{"dec-pairs", required_argument, NULL, OPT_DEC_PAIRS}, FOR_TRAIN},
    {{"lr-mult", required_argument, NULL, OPT_LR_MULT}, FOR_TRAIN},
    {{"log", required_argument, NULL, OPT_LOG}, FOR_TRAIN},
    {{"log-every", required_argument, NULL, OPT_LOG_EVERY}, FOR_TRAIN},
    {{"save-every", required_argument, NULL, OPT_SAVE_EVERY}, FOR_TRAIN},
    {{"stop-after", required_argument, NULL, OPT_STOP_AFTER}, FOR_TRAIN},
    {{"steps", required_argument, NULL, OPT_STEPS}, FOR_TRAIN},
    {{"batch", required_argument, NULL, OPT_BATCH}, FOR_TRAIN},
    {{"crop", required_argument, NULL, OPT_CROP}, FOR_TRAIN | FOR_FIT},
    {{"lr", required_argument, NULL, OPT_LR}, FOR_TRAIN},
    {{"bits", required_argument, NULL, OPT_BITS}, FOR_TRAIN},
    {{"warmup", required_argument, NULL, OPT_WARMUP}, FOR_TRAIN},
    {{"images", required_argument, NULL, OPT_IMAGES}, FOR_FIT},
    {{"ridge", required_argument, NULL, OPT_RIDGE}, FOR_FIT},
    {{"level", required_argument, NULL, OPT_LEVEL}, FOR_FIT},
    {{"radius", required_argument, NULL, OPT_RADIUS}, FOR_FIT},
};
#define NOPTIONS (sizeof option_table / sizeof option_table[0])

/* The next option of argv[2..] (argv[1] is the command) that `commands`
 * take: its id, with its value in *value; -1 at the end (the operands are
 * then argv[optind..], getopt_long having moved them there), -2 with
 * parse_problem set when the option is unknown or lacks its value. */
static int next_option(int argc, char **argv, int commands, const char **value) {
    static struct option longopts[NOPTIONS + 1];
    if (!longopts[0].name)
        for (size_t i = 0; i < NOPTIONS; i++) longopts[i] = option_table[i].option;
    opterr = 0;
    int id = getopt_long(argc - 1, argv + 1, ":q", longopts, NULL);
    *value = optarg;
    if (id == -1) return -1;
    const char *given = argv[optind]; /* the option just read (argv + 1 shifted) */
    if (id == ':') return refuse("%s needs a value", given), -2;
    if (id == '?') {
        if (optopt) return refuse("unknown option '-%c'", optopt), -2;
        return refuse("unknown option '%s'", given), -2;
    }
    for (size_t i = 0; i < NOPTIONS; i++)
        if (option_table[i].option.val == id && !(option_table[i].commands & commands))
            return refuse("unknown option '--%s'", option_table[i].option.name), -2;
    return id;
}

static int parse(int argc, char **argv, options *o) {
    memset(o, 0, sizeof *o);
    optind = 1;
    const char *val;
    long v;
    for (int id; (id = next_option(argc, argv, FOR_CODEC, &val)) != -1;) {
        switch (id) {
        case -2: return -1;
        case OPT_MODEL:
            o->model = val;
            if (o->nmodels == MAX_MODELS) return refuse("at most %d --model files", MAX_MODELS);
            o->models[o->nmodels++] = o->model;
            break;
        case OPT_RATE: o->rate = val; break;
        case OPT_BYTES:
            if (mrt_parse_byte_budget(val, &o->bytes) != 0)
                return refuse("--bytes takes a budget such as 1500, 1500B, 2KB or 1.5KiB "
                              "(1 byte to 1 GB), not '%s'", val);
            break;
        case OPT_THREADS:
            if (int_value("--threads", val, 0, 1024, &v)) return -1;
            o->threads = (int)v;
            break;
        case OPT_REFINE:
            if (int_value("--refine", val, 0, MRT_REFINE_MAX_STEPS, &v)) return -1;
            o->refine = (int)v;
            break;
        case OPT_REFINE_MSE_WEIGHT: {
            char *end;
            double w = strtod(val, &end);
            if (end == val || *end || !(w >= 0.0 && w <= MRT_MAX_MSE_WEIGHT))
                return refuse("--refine-mse-weight takes a number from 0 to %g, not '%s'",
                              (double)MRT_MAX_MSE_WEIGHT, val);
            o->refine_mse_weight_given = 1;
            o->refine_mse_weight = (float)w;
            break;
        }
        case OPT_SCALE: { /* a decimal or a fraction a/b */
            char *end;
            double x = strtod(val, &end);
            int ok = end != val;
            if (ok && *end == '/') {
                const char *den = end + 1;
                double d = strtod(den, &end);
                ok = end != den && d > 0.0;
                if (ok) x /= d;
            }
            if (!ok || *end || !(x > 0.0 && x <= 1.0))
                return refuse("--scale takes a factor above 0 and at most 1 (0.5 or 1/2), "
                              "not '%s'", val);
            o->scale = x;
            break;
        }
        case OPT_SEED: {
            char *end;
            errno = 0;
            o->seed = strtoull(val, &end, 10);
            if (end == val || *end || errno == ERANGE || val[0] == '-')
                return refuse("--seed takes a whole number from 0 to %llu, not '%s'",
                              (unsigned long long)UINT64_MAX, val);
            break;
        }
        case OPT_RATE_ID:
            if (int_value("--rate-id", val, 0, 255, &v)) return -1;
            o->rate_id = (int)v;
            o->rate_id_given = 1;
            break;
        case OPT_QUIET: o->quiet = 1; break;
        }
    }
    for (int i = optind + 1; i < argc; i++) {
        if (o->nargs == 2) return refuse("one argument too many: '%s'", argv[i]);
        o->args[o->nargs++] = argv[i];
    }
    return 0;
}

/* The model set of --model, else of the default model (mrt.h, "model
 * sets": $MRT_MODEL, else default.gguf of the install or the source tree). */
static int open_models(const options *o, mrt_model_set **set, mrt_error *err) {
    char *found = o->model ? NULL : mrt_default_model_path(NULL, NULL, NULL);
    const char *path = o->model ? o->model : found;
    if (!path) {
        snprintf(err->message, sizeof err->message,
                 "no model: pass --model FILE or set MRT_MODEL (no models/default.gguf found)");
        return -1;
    }
    mrt_status st = mrt_model_set_open(path, set, err);
    mrt_free(found);
    return st == MRT_OK ? 0 : -1;
}

/* encode --bytes with several --model files: those are the rate points. */
static int load_models(const options *o, mrt_model **models, int *nmodels, mrt_error *err) {
    for (*nmodels = 0; *nmodels < o->nmodels; (*nmodels)++)
        if (mrt_model_load(o->models[*nmodels], &models[*nmodels], err) != MRT_OK) return -1;
    return 0;
}

/* encode: one model (--model or the default, or the rate point --rate
 * names beside it), or with --bytes every rate point (the --model files
 * when there are several, else the set's), mrt_encode_budget choosing. */
static int cmd_encode(const options *o) {
    mrt_error err = {0};
    mrt_model_set *set = NULL;
    mrt_model *listed[MAX_MODELS] = {0};
    int nlisted = 0, rc = 1;
    const mrt_model *const *models = NULL;
    const mrt_model *chosen = NULL;
    int nmodels = 0;
    mrt_image img = {0};
    uint8_t *bits = NULL;
    size_t len = 0;
    if (o->bytes && o->nmodels > 1) {
        if (load_models(o, listed, &nlisted, &err) != 0) {
            fail("loading the models", &err);
            goto done;
        }
        models = (const mrt_model *const *)listed;
        nmodels = nlisted;
    } else if (open_models(o, &set, &err) != 0) {
        fail(o->bytes ? "loading the models" : "loading the model", &err);
        goto done;
    } else if (o->bytes) {
        if (mrt_model_set_rate_points(set, &models, &nmodels, &err) != MRT_OK) {
            fail("loading the models", &err);
            goto done;
        }
    } else if (o->rate) {
        if (mrt_model_set_rate(set, o->rate, &chosen, &err) != MRT_OK) {
            fail("--rate", &err);
            goto done;
        }
    } else {
        chosen = mrt_model_set_model(set);
    }
    if (same_file(o->args[0], o->args[1])) goto done;
    if (is_std(o->args[0])) {
        uint8_t *data = NULL;
        size_t n = 0;
        mrt_status rs = read_input(o->args[0], &data, &n, &err);
        if (rs == MRT_OK) rs = mrt_image_read_memory(data, n, &img, &err);
        mrt_free(data);
        if (rs != MRT_OK) {
            fail("reading", &err);
            goto done;
        }
    } else if (mrt_image_read_file(o->args[0], &img, &err) != MRT_OK) {
        fail("reading", &err); /* the message starts with the path */
        goto done;
    }
    double t0 = now();
    mrt_encode_options eo = {.threads = o->threads,
                             .refine_steps = o->refine,
                             .refine_mse_weight_given = o->refine_mse_weight_given,
                             .refine_mse_weight = o->refine_mse_weight};
    mrt_budget_choice choice = {0};
    mrt_status st;
    if (o->bytes) {
        st = mrt_encode_budget(models, nmodels, &img, o->bytes, &eo, &bits, &len, &choice, &err);
    } else {
        if (o->scale > 0.0) /* replaces the model's own working scale */
            mrt_scaled_size(img.width, img.height, o->scale, &eo.working_width,
                            &eo.working_height);
        else
            mrt_working_size(chosen, img.width, img.height, &eo.working_width,
                             &eo.working_height);
        st = mrt_encode_with(chosen, &img, &eo, &bits, &len, &err);
        choice.working_width = eo.working_width;
        choice.working_height = eo.working_height;
    }
    if (st != MRT_OK) {
        fail("encoding", &err);
        goto done;
    }
    double t1 = now();
    if (write_output(o->args[1], bits, len, &err) != MRT_OK) {
        fail("writing", &err);
        goto done;
    }
    if (!o->quiet) {
        char working[48] = "", chosen[4200] = "";
        if (choice.working_width != img.width || choice.working_height != img.height)
            snprintf(working, sizeof working, " coded at %dx%d", choice.working_width,
                     choice.working_height);
        if (o->bytes) {
            char at[64] = "";
            if (choice.compared_width != img.width || choice.compared_height != img.height)
                snprintf(at, sizeof at, " compared at %dx%d", choice.compared_width,
                         choice.compared_height);
            snprintf(chosen, sizeof chosen, " with %s, decoding to %.2f dB, MS-SSIM %.4f%s",
                     mrt_model_path(models[choice.model]), choice.psnr, choice.msssim, at);
        }
        fprintf(stderr, "%s: %dx%d%s -> %zu bytes (%.4f bpp)%s in %.3f s\n", o->args[1],
                img.width, img.height, working, len,
                len * 8.0 / ((double)img.width * img.height), chosen, t1 - t0);
    }
    rc = 0;
done:
    mrt_free(bits);
    mrt_image_free(&img);
    for (int i = 0; i < nlisted; i++) mrt_model_free(listed[i]);
    mrt_model_set_free(set);
    return rc;
}

/* decode --scale: 1, 1/2, 1/4, 1/8 -> 1, 2, 4, 8; anything else 0 */
static int decode_scale(double scale) {
    for (int d = 1; d <= 8; d *= 2)
        if (scale == 1.0 / d) return d;
    return 0;
}

static int cmd_decode(const options *o) {
    mrt_error err = {0};
    mrt_model_set *set = NULL;
    const mrt_model *model = NULL;
    mrt_image img = {0};
    uint8_t *bits = NULL;
    size_t len = 0;
    int rc = 1;
    if (same_file(o->args[0], o->args[1])) return 1;
    if (read_input(o->args[0], &bits, &len, &err) != MRT_OK) return fail("reading", &err);
    /* The header first: damage is reported as such, and its fingerprint
     * says which rate point beside the model made the stream. */
    mrt_info info;
    if (mrt_info_read(bits, len, &info, &err) != MRT_OK) {
        fail(o->args[0], &err);
        goto done;
    }
    if (open_models(o, &set, &err) != 0 ||
        mrt_model_set_for_stream(set, info.fingerprint, &model, &err) != MRT_OK) {
        fail("loading the model", &err);
        goto done;
    }
    double t0 = now();
    int scale = o->scale > 0.0 ? decode_scale(o->scale) : 1;
    if (mrt_decode_scaled(model, bits, len, scale, o->threads, &img, &err) != MRT_OK) {
        fail(o->args[0], &err);
        goto done;
    }
    double t1 = now();
    if (is_std(o->args[1])) {
        uint8_t *png = NULL;
        size_t png_len = 0;
        mrt_status ws = mrt_image_write_png_memory(&img, &png, &png_len, &err);
        if (ws == MRT_OK) ws = write_output(o->args[1], png, png_len, &err);
        mrt_free(png);
        if (ws != MRT_OK) {
            fail("writing", &err);
            goto done;
        }
    } else if (mrt_image_write_png_file(&img, o->args[1], &err) != MRT_OK) {
        fail("writing", &err);
        goto done;
    }
    if (!o->quiet)
        fprintf(stderr, "%s: %zu bytes -> %dx%d in %.3f s\n", o->args[1], len, img.width,
                img.height, t1 - t0);
    rc = 0;
done:
    mrt_free(bits);
    mrt_image_free(&img);
    mrt_model_set_free(set);
    return rc;
}

static int cmd_info(const options *o) {
    mrt_error err = {0};
    uint8_t *bits = NULL;
    size_t len = 0;
    mrt_info info;
    if (read_input(o->args[0], &bits, &len, &err) != MRT_OK) return fail("reading", &err);
    if (mrt_info_read(bits, len, &info, &err) != MRT_OK) {
        mrt_free(bits);
        return fail(o->args[0], &err);
    }
    char json[MRT_INFO_JSON_MAX];
    mrt_info_json(&info, json, sizeof json);
    printf("%s\n", json);
    mrt_free(bits);
    return 0;
}

/* CompressAI-style results: bpp from the real bitstream bytes, PSNR and
 * MS-SSIM on RGB, wall-clock encode and decode seconds; per image and mean. */
/* bpp, PSNR, MS-SSIM, encoding and decoding time: one image's or the means */
static void write_eval_results(mrt_json *w, const double v[5]) {
    mrt_json_real(w, "bpp", "%.6f", v[0]);
    mrt_json_real(w, "psnr-rgb", "%.4f", v[1]);
    mrt_json_real(w, "ms-ssim-rgb", "%.6f", v[2]);
    mrt_json_real(w, "encoding_time", "%.4f", v[3]);
    mrt_json_real(w, "decoding_time", "%.4f", v[4]);
}

static int cmd_eval(const options *o) {
    mrt_error err = {0};
    mrt_model_set *set = NULL;
    mrt_dataset ds;
    const char *dirs[1] = {o->args[0]};
    if (open_models(o, &set, &err) != 0) return fail("loading the model", &err);
    const mrt_model *model = mrt_model_set_model(set);
    if (mrt_dataset_load(&ds, dirs, 1, 1, &err) != MRT_OK) {
        mrt_model_set_free(set);
        return fail("eval", &err);
    }
    double sum[5] = {0};
    int rc = 0;
    char fp[MRT_FINGERPRINT_HEX];
    mrt_fingerprint_hex(mrt_model_fingerprint(model), fp);
    /* Streamed: each image's line appears as soon as it is measured. */
    mrt_json w;
    mrt_json_to_file(&w, stdout);
    mrt_json_object(&w, NULL, MRT_JSON_LINES);
    mrt_json_string(&w, "name", "mrt");
    mrt_json_string(&w, "model", fp);
    mrt_json_int(&w, "rate_id", mrt_model_rate_id(model));
    mrt_json_real(&w, "working_scale", "%g", mrt_model_working_scale(model));
    mrt_json_int(&w, "refine_steps", o->refine);
    /* null: the model's own weight */
    if (o->refine_mse_weight_given)
        mrt_json_real(&w, "refine_mse_weight", "%g", (double)o->refine_mse_weight);
    else
        mrt_json_null(&w, "refine_mse_weight");
    mrt_json_array(&w, "images", MRT_JSON_LINES);
    fflush(stdout);
    mrt_encode_options eo = {.threads = o->threads,
                             .refine_steps = o->refine,
                             .refine_mse_weight_given = o->refine_mse_weight_given,
                             .refine_mse_weight = o->refine_mse_weight};
    for (int i = 0; i < ds.count && rc == 0; i++) {
        const mrt_image *img = &ds.images[i];
        uint8_t *bits = NULL;
        size_t len = 0;
        mrt_image out = {0};
        double psnr = 0, msssim = 0;
        double t0 = now();
        if (mrt_encode_with(model, img, &eo, &bits, &len, &err) != MRT_OK) rc = fail(ds.names[i], &err);
        double t1 = now();
        if (!rc && mrt_decode(model, bits, len, o->threads, &out, &err) != MRT_OK) rc = fail(ds.names[i], &err);
        double t2 = now();
        if (!rc && mrt_image_compare(img, &out, o->threads, &psnr, &msssim, &err) != MRT_OK)
            rc = fail(ds.names[i], &err);
        if (!rc) {
            double v[5] = {len * 8.0 / ((double)img->width * img->height), psnr, msssim, t1 - t0,
                           t2 - t1};
            const char *base = strrchr(ds.names[i], '/');
            mrt_json_object(&w, NULL, MRT_JSON_INLINE);
            mrt_json_string(&w, "name", base ? base + 1 : ds.names[i]);
            write_eval_results(&w, v);
            mrt_json_end(&w);
            fflush(stdout);
            for (int k = 0; k < 5; k++) sum[k] += v[k];
        }
        mrt_free(bits);
        mrt_image_free(&out);
    }
    if (!rc) {
        mrt_json_end(&w);
        for (int k = 0; k < 5; k++) sum[k] /= ds.count;
        mrt_json_object(&w, "results", MRT_JSON_INLINE);
        write_eval_results(&w, sum);
        mrt_json_end(&w);
        mrt_json_end(&w);
        putchar('\n');
        if (mrt_json_finish(&w) != 0) {
            fprintf(stderr, "mrt: eval: writing the results failed\n");
            rc = 1;
        }
    }
    mrt_dataset_free(&ds);
    mrt_model_set_free(set);
    return rc;
}

/* `mrt derive-rate-point`: a rate point made of existing weights. */
static int cmd_derive_rate_point(const options *o) {
    mrt_error err = {0};
    if (!(o->scale > 0.0) || !o->rate_id_given)
        return usage("derive-rate-point needs --scale S and --rate-id R");
    if (same_file(o->args[0], o->args[1])) return 1; /* the weights would be lost */
    if (mrt_rate_point_write(o->args[0], o->rate_id, o->scale, o->args[1], &err) != MRT_OK)
        return fail("writing the rate point", &err);
    if (!o->quiet)
        fprintf(stderr, "%s: rate id %d, %s's weights at working scale %g\n", o->args[1],
                o->rate_id, o->args[0], o->scale);
    return 0;
}

static int cmd_init_model(const options *o) {
    mrt_error err = {0};
    if (mrt_model_write_random(o->args[0], o->seed, o->rate_id, &err) != MRT_OK)
        return fail("writing the model", &err);
    if (!o->quiet) fprintf(stderr, "%s: random XS model, seed %llu\n", o->args[0], o->seed);
    return 0;
}

/* `mrt train`: its own option parser (many options, repeatable --data). */
/* "--name" of an option id, for messages. */
static const char *option_name(int id) {
    for (size_t i = 0; i < NOPTIONS; i++)
        if (option_table[i].option.val == id) return option_table[i].option.name;
    return "?";
}

/* A number for a train option, the whole value: a real number, or with
 * `whole` an integer (seeds and step counts need all 64 bits). */
static int train_number(int id, const char *val, int whole, double *x, long long *n) {
    char *end;
    errno = 0;
    if (whole) {
        *n = strtoll(val, &end, 10);
        *x = (double)*n;
    } else {
        *x = strtod(val, &end);
    }
    if (end == val || *end || errno == ERANGE || !isfinite(*x))
        return refuse("--%s takes %s, not '%s'", option_name(id), whole ? "a whole number" : "a number",
                      val);
    return 0;
}

/* n as an int, saturated: a size past int's range stays out of range (and
 * the configuration check refuses it) instead of wrapping into it. */
static int saturate_int(long long n) { return n > INT_MAX ? INT_MAX : n < INT_MIN ? INT_MIN : (int)n; }

static int cmd_train(int argc, char **argv) {
    mrt_train_options o;
    mrt_train_defaults(&o);
    const char **data = calloc((size_t)argc, sizeof *data);
    if (!data) return usage("out of memory");
    char *lr_mult_prefix = NULL; /* --lr-mult's PREFIX, copied out of PREFIX=X */
    int ndata = 0;
    optind = 1;
    const char *val;
    for (int id; (id = next_option(argc, argv, FOR_TRAIN, &val)) != -1;) {
        double x = 0;
        if (id == -2) goto bad;
        switch (id) {
        case OPT_RESUME: o.resume = 1; continue;
        case OPT_QUIET: o.quiet = 1; continue;
        case OPT_TRAIN_ENCODER: o.train_encoder = 1; continue;
        case OPT_DATA: data[ndata++] = val; continue;
        case OPT_OUT: o.out = val; continue;
        case OPT_TOKENIZER: o.tokenizer = val; continue;
        case OPT_INIT: o.init = val; continue;
        case OPT_EXPORT: o.export_path = val; continue;
        case OPT_LOG: o.log = val; continue;
        case OPT_LR_MULT: { /* PREFIX=X */
            const char *eq = strrchr(val, '=');
            char *end;
            double mult = eq ? strtod(eq + 1, &end) : 0;
            if (!eq || eq == val || end == eq + 1 || *end || !isfinite(mult)) {
                refuse("--lr-mult takes PREFIX=X (the tensors whose names start with PREFIX "
                       "train at X times the learning rate), not '%s'", val);
                goto bad;
            }
            free(lr_mult_prefix); /* the last --lr-mult counts */
            lr_mult_prefix = strndup(val, (size_t)(eq - val));
            if (!lr_mult_prefix) {
                refuse("out of memory");
                goto bad;
            }
            o.lr_mult_prefix = lr_mult_prefix;
            o.lr_mult = (float)mult;
            continue;
        }
        }
        /* every other train option is a number */
        int real = id == OPT_LAMBDA || id == OPT_TARGET_BPP || id == OPT_MSE_WEIGHT ||
                   id == OPT_LR || id == OPT_SAVE_EVERY;
        long long n = 0;
        if (id == OPT_SEED) { /* all of uint64 */
            char *end;
            errno = 0;
            o.seed = strtoull(val, &end, 10);
            if (end == val || *end || errno == ERANGE || val[0] == '-') {
                refuse("--seed takes a whole number from 0 to %llu, not '%s'",
                       (unsigned long long)UINT64_MAX, val);
                goto bad;
            }
            continue;
        }
        if (train_number(id, val, !real, &x, &n) != 0) goto bad;
        switch (id) {
        case OPT_LAMBDA: o.lambda = (float)x; break;
        case OPT_LAMBDA_RAMP: o.lambda_ramp = (long)n; break;
        case OPT_TARGET_BPP: o.target_bpp = x; break;
        case OPT_MSE_WEIGHT: o.mse_weight = (float)x; break;
        case OPT_RATE_ID: o.rate_id = (int)n; break;
        case OPT_STAGE: o.stage = (int)n; break;
        case OPT_STEPS: o.steps = (long)n; break;
        case OPT_STOP_AFTER: o.stop_after = (long)n; break;
        case OPT_LOG_EVERY: o.log_every = (int)n; break;
        case OPT_BATCH: o.batch = (int)n; break;
        case OPT_CROP: o.crop = (int)n; break;
        case OPT_BITS: o.tok_bits = (int)n; break;
        case OPT_LATENTS: o.latents = saturate_int(n); break;
        case OPT_DEC_PAIRS: o.dec_pairs = saturate_int(n); break;
        case OPT_THREADS: o.threads = (int)n; break;
        case OPT_LR: o.lr = (float)x; break;
        case OPT_WARMUP: o.warmup = (int)n; break;
        case OPT_SAVE_EVERY: o.save_every = x; break;
        }
    }
    if (optind + 1 < argc) {
        refuse("train takes no operands, not '%s'", argv[optind + 1]);
        goto bad;
    }
    o.data = data;
    o.ndata = ndata;
    mrt_error err = {0};
    mrt_status st = mrt_train(&o, &err);
    free(data);
    free(lr_mult_prefix);
    if (st != MRT_OK) return fail("training", &err);
    return 0;
bad:
    free(data);
    free(lr_mult_prefix);
    return usage(parse_problem);
}

/* `mrt fit-thumbnails`: the thumbnail heads of a model (train/thumbnails.c). */
static int cmd_fit_thumbnails(int argc, char **argv) {
    mrt_thumb_fit_options o;
    mrt_thumb_fit_defaults(&o);
    const char **data = calloc((size_t)argc, sizeof *data);
    if (!data) return usage("out of memory");
    int ndata = 0;
    optind = 1;
    const char *val;
    for (int id; (id = next_option(argc, argv, FOR_FIT, &val)) != -1;) {
        double x = 0;
        long long n = 0;
        if (id == -2) goto bad;
        switch (id) {
        case OPT_QUIET: o.quiet = 1; continue;
        case OPT_DATA: data[ndata++] = val; continue;
        case OPT_OUT: o.out = val; continue;
        case OPT_MODEL: o.model = val; continue;
        }
        if (train_number(id, val, id != OPT_RIDGE, &x, &n) != 0) goto bad;
        switch (id) {
        case OPT_IMAGES: o.images = (int)n; break;
        case OPT_CROP: o.crop = (int)n; break;
        case OPT_SEED: o.seed = (uint64_t)n; break;
        case OPT_THREADS: o.threads = (int)n; break;
        case OPT_RIDGE: o.ridge = x; break;
        case OPT_LEVEL: o.level = (int)n; break;
        case OPT_RADIUS: o.radius = (int)n; break;
        }
    }
    if (optind + 1 < argc) {
        refuse("fit-thumbnails takes no operands, not '%s'", argv[optind + 1]);
        goto bad;
    }
    if (!o.model || !ndata || o.images < 1 || o.crop < 64 || !(o.ridge >= 0) || o.threads < 0) {
        refuse("fit-thumbnails needs --model M and --data DIR; --images N >= 1, --crop S >= 64, "
               "--ridge R >= 0");
        goto bad;
    }
    o.data = data;
    o.ndata = ndata;
    mrt_error err = {0};
    mrt_status st = mrt_fit_thumbnails(&o, &err);
    free(data);
    if (st != MRT_OK) return fail("fitting", &err);
    return 0;
bad:
    free(data);
    return usage(parse_problem);
}

static int run(int argc, char **argv);

/* Output that cannot be written is an error too: `mrt info x.mrt >
 * /dev/full` must not exit 0. */
int main(int argc, char **argv) {
    int rc = run(argc, argv);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "mrt: writing standard output: %s\n",
                errno ? strerror(errno) : "write error");
        return 1;
    }
    return rc;
}

static int run(int argc, char **argv) {
    if (argc < 2) return usage(NULL);
    if (!strcmp(argv[1], "train")) return cmd_train(argc, argv);
    if (!strcmp(argv[1], "fit-thumbnails")) return cmd_fit_thumbnails(argc, argv);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("mrt %s\n", MRT_VERSION_STRING);
        return 0;
    }
    options o;
    if (parse(argc, argv, &o) != 0) return usage(parse_problem);
    if (o.refine_mse_weight_given && !o.refine)
        return usage("--refine-mse-weight weighs refinement's objective: it needs --refine");
    if (o.bytes && strcmp(cmd, "encode") != 0) return usage("--bytes is an option of encode");
    if (o.scale > 0.0 && strcmp(cmd, "encode") != 0 && strcmp(cmd, "decode") != 0 &&
        strcmp(cmd, "derive-rate-point") != 0)
        return usage("--scale is an option of encode, decode and derive-rate-point");
    if (o.scale > 0.0 && !strcmp(cmd, "decode") && decode_scale(o.scale) == 0)
        return usage("decode --scale takes 1, 1/2, 1/4 or 1/8");
    if (o.scale > 0.0 && o.bytes)
        return usage("--bytes chooses the working size itself: give --scale or --bytes");
    if (o.nmodels > 1 && !o.bytes)
        return usage("several --model files are the rate points of encode --bytes");
    if (!strcmp(cmd, "encode") && o.nargs == 2) return cmd_encode(&o);
    if (!strcmp(cmd, "decode") && o.nargs == 2) return cmd_decode(&o);
    if (!strcmp(cmd, "info") && o.nargs == 1) return cmd_info(&o);
    if (!strcmp(cmd, "eval") && o.nargs == 1) return cmd_eval(&o);
    if (!strcmp(cmd, "init-model") && o.nargs == 1) return cmd_init_model(&o);
    if (!strcmp(cmd, "derive-rate-point") && o.nargs == 2) return cmd_derive_rate_point(&o);
    return usage("unknown command or wrong number of arguments");
}
