/*
 * mrt.c -- the `mrt` command: a thin front over libmrt.
 *
 *   mrt encode IN.(png|jpg) OUT.mrt   [--model M] [--threads N] [--refine STEPS]
 *                                     [--refine-mse-weight W] [--quiet]
 *   mrt decode IN.mrt OUT.png         [--model M] [--threads N] [--quiet]
 *   mrt info IN.mrt                   JSON on stdout
 *   mrt init-model OUT.gguf [--seed S] [--rate-id R]   seeded random weights
 *
 * Statistics go to stderr (like cwebp/avifenc); exit status 0 on success,
 * 1 with a one-line reason on any error, 2 on a usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mrt.h"
#include "dataset.h"
#include "train.h"

static const char *usage_text =
    "usage: mrt encode IN.(png|jpg) OUT.mrt [--model M] [--threads N] [--refine STEPS]\n"
    "                  [--refine-mse-weight W] [--quiet]\n"
    "       mrt decode IN.mrt OUT.png [--model M] [--threads N] [--quiet]\n"
    "       mrt info IN.mrt\n"
    "       mrt eval DIR [--model M] [--threads N] [--refine STEPS] [--refine-mse-weight W]\n"
    "                 rate-distortion JSON\n"
    "       mrt init-model OUT.gguf [--seed S] [--rate-id R]\n"
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
    "                 [--log FILE.jsonl] [--log-every N] [--save-every SECONDS] [--stop-after N]\n"
    "                 [--threads N]\n"
    "\n"
    "The model is --model, else $MRT_MODEL, else models/default.gguf next to\n"
    "the installed program or in the source tree it was built from.\n"
    "Threads: --threads, else $MRT_THREADS, else all cores.\n"
    "--refine STEPS: latent refinement, a better picture at the same size for about\n"
    "0.4 s per step per 768x512 photo on two cores (60 is a good choice, 120 a little\n"
    "better; 0 is off).\n"
    "--refine-mse-weight W: what refinement minimises, L1 + (1 - MS-SSIM) + W * MSE;\n"
    "by default W is the model's training weight (32 for the 0.02 model). Lower\n"
    "favours MS-SSIM, higher PSNR, at the same bytes (0..10000).\n";

static int usage(const char *problem) {
    if (problem) fprintf(stderr, "mrt: %s\n", problem);
    fputs(usage_text, stderr);
    return 2;
}

static int fail(const char *what, const mrt_error *err) {
    fprintf(stderr, "mrt: %s: %s\n", what, err->message);
    return 1;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The default model: $MRT_MODEL, else models/default.gguf beside the
 * installed program (../share/mrt/models) or in the source tree. */
static const char *default_model(void) {
    const char *env = getenv("MRT_MODEL");
    if (env && *env) return env;
    static const char *candidates[] = {MRT_SOURCE_MODEL_DIR "/default.gguf",
                                       MRT_INSTALL_MODEL_DIR "/default.gguf"};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        FILE *f = fopen(candidates[i], "rb");
        if (f) {
            fclose(f);
            return candidates[i];
        }
    }
    return NULL;
}

typedef struct {
    const char *model;
    int threads;
    int refine; /* latent refinement steps */
    int refine_mse_weight_given;
    float refine_mse_weight; /* refinement's MSE weight, if given */
    int quiet;
    unsigned long long seed;
    int rate_id;
    const char *args[2];
    int nargs;
} options;

static int parse(int argc, char **argv, options *o) {
    memset(o, 0, sizeof *o);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--model") && i + 1 < argc) {
            o->model = argv[++i];
        } else if (!strcmp(a, "--threads") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 0 || v > 1024) return -1;
            o->threads = (int)v;
        } else if (!strcmp(a, "--refine") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 0 || v > MRT_REFINE_MAX_STEPS) return -1;
            o->refine = (int)v;
        } else if (!strcmp(a, "--refine-mse-weight") && i + 1 < argc) {
            char *end;
            double v = strtod(argv[++i], &end);
            if (end == argv[i] || *end || !(v >= 0.0 && v <= MRT_MAX_MSE_WEIGHT)) return -1;
            o->refine_mse_weight_given = 1;
            o->refine_mse_weight = (float)v;
        } else if (!strcmp(a, "--seed") && i + 1 < argc) {
            char *end;
            o->seed = strtoull(argv[++i], &end, 10);
            if (*end) return -1;
        } else if (!strcmp(a, "--rate-id") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 0 || v > 255) return -1;
            o->rate_id = (int)v;
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            o->quiet = 1;
        } else if (a[0] == '-' && a[1]) {
            return -1;
        } else if (o->nargs < 2) {
            o->args[o->nargs++] = a;
        } else {
            return -1;
        }
    }
    return 0;
}

static int load_model(const options *o, mrt_model **model, mrt_error *err) {
    const char *path = o->model ? o->model : default_model();
    if (!path) {
        snprintf(err->message, sizeof err->message,
                 "no model: pass --model FILE or set MRT_MODEL (no models/default.gguf found)");
        return -1;
    }
    return mrt_model_load(path, model, err) == MRT_OK ? 0 : -1;
}

static void hex(char *out, const uint8_t *b, int n) {
    for (int i = 0; i < n; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static int cmd_encode(const options *o) {
    mrt_error err = {0};
    mrt_model *model = NULL;
    mrt_image img = {0};
    uint8_t *bits = NULL;
    size_t len = 0;
    int rc = 1;
    if (load_model(o, &model, &err) != 0) return fail("loading the model", &err);
    if (mrt_image_read_file(o->args[0], &img, &err) != MRT_OK) {
        fail(o->args[0], &err);
        goto done;
    }
    double t0 = now();
    mrt_encode_options eo = {o->threads, o->refine, o->refine_mse_weight_given,
                             o->refine_mse_weight};
    if (mrt_encode_with(model, &img, &eo, &bits, &len, &err) != MRT_OK) {
        fail("encoding", &err);
        goto done;
    }
    double t1 = now();
    if (mrt_write_file_atomic(o->args[1], bits, len, &err) != MRT_OK) {
        fail("writing", &err);
        goto done;
    }
    if (!o->quiet)
        fprintf(stderr, "%s: %dx%d -> %zu bytes (%.4f bpp) in %.3f s\n", o->args[1], img.width,
                img.height, len, len * 8.0 / ((double)img.width * img.height), t1 - t0);
    rc = 0;
done:
    mrt_free(bits);
    mrt_image_free(&img);
    mrt_model_free(model);
    return rc;
}

static int cmd_decode(const options *o) {
    mrt_error err = {0};
    mrt_model *model = NULL;
    mrt_image img = {0};
    uint8_t *bits = NULL;
    size_t len = 0;
    int rc = 1;
    if (mrt_read_file(o->args[0], MRT_MAX_FILE_BYTES, &bits, &len, &err) != MRT_OK)
        return fail("reading", &err);
    if (load_model(o, &model, &err) != 0) {
        fail("loading the model", &err);
        goto done;
    }
    double t0 = now();
    if (mrt_decode(model, bits, len, o->threads, &img, &err) != MRT_OK) {
        fail(o->args[0], &err);
        goto done;
    }
    double t1 = now();
    if (mrt_image_write_png_file(&img, o->args[1], &err) != MRT_OK) {
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
    mrt_model_free(model);
    return rc;
}

static int cmd_info(const options *o) {
    mrt_error err = {0};
    uint8_t *bits = NULL;
    size_t len = 0;
    mrt_info info;
    if (mrt_read_file(o->args[0], MRT_MAX_FILE_BYTES, &bits, &len, &err) != MRT_OK)
        return fail("reading", &err);
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
static int cmd_eval(const options *o) {
    mrt_error err = {0};
    mrt_model *model = NULL;
    mrt_dataset ds;
    const char *dirs[1] = {o->args[0]};
    if (load_model(o, &model, &err) != 0) return fail("loading the model", &err);
    if (mrt_dataset_load(&ds, dirs, 1, 1, &err) != MRT_OK) {
        mrt_model_free(model);
        return fail("eval", &err);
    }
    double sum[5] = {0};
    int rc = 0;
    char fp[17];
    hex(fp, mrt_model_fingerprint(model), MRT_FINGERPRINT_BYTES);
    printf("{\n  \"name\": \"mrt\",\n  \"model\": \"%s\",\n  \"rate_id\": %d,\n"
           "  \"refine_steps\": %d,\n",
           fp, mrt_model_rate_id(model), o->refine);
    /* null: the model's own weight */
    if (o->refine_mse_weight_given)
        printf("  \"refine_mse_weight\": %g,\n", (double)o->refine_mse_weight);
    else
        printf("  \"refine_mse_weight\": null,\n");
    printf("  \"images\": [\n");
    mrt_encode_options eo = {o->threads, o->refine, o->refine_mse_weight_given,
                             o->refine_mse_weight};
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
            double bpp = len * 8.0 / ((double)img->width * img->height);
            const char *base = strrchr(ds.names[i], '/');
            printf("    {\"name\": ");
            char *name = mrt_json_quote(base ? base + 1 : ds.names[i]);
            fputs(name ? name : "null", stdout);
            mrt_free(name);
            printf(", \"bpp\": %.6f, \"psnr-rgb\": %.4f, \"ms-ssim-rgb\": %.6f, "
                   "\"encoding_time\": %.4f, \"decoding_time\": %.4f}%s\n",
                   bpp, psnr, msssim, t1 - t0, t2 - t1, i + 1 < ds.count ? "," : "");
            double v[5] = {bpp, psnr, msssim, t1 - t0, t2 - t1};
            for (int k = 0; k < 5; k++) sum[k] += v[k];
        }
        mrt_free(bits);
        mrt_image_free(&out);
    }
    if (!rc)
        printf("  ],\n  \"results\": {\"bpp\": %.6f, \"psnr-rgb\": %.4f, \"ms-ssim-rgb\": %.6f, "
               "\"encoding_time\": %.4f, \"decoding_time\": %.4f}\n}\n",
               sum[0] / ds.count, sum[1] / ds.count, sum[2] / ds.count, sum[3] / ds.count,
               sum[4] / ds.count);
    mrt_dataset_free(&ds);
    mrt_model_free(model);
    return rc;
}

static int cmd_init_model(const options *o) {
    mrt_error err = {0};
    if (mrt_model_write_random(o->args[0], o->seed, o->rate_id, &err) != MRT_OK)
        return fail("writing the model", &err);
    if (!o->quiet) fprintf(stderr, "%s: random XS model, seed %llu\n", o->args[0], o->seed);
    return 0;
}

/* `mrt train`: its own option parser (many options, repeatable --data). */
static int cmd_train(int argc, char **argv) {
    mrt_train_options o;
    mrt_train_defaults(&o);
    const char **data = calloc((size_t)argc, sizeof *data);
    if (!data) return usage("out of memory");
    int ndata = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
#define NEED_VALUE \
    if (!v) { free(data); return usage("an option needs a value"); } \
    i++;
        if (!strcmp(a, "--resume")) { o.resume = 1; continue; }
        if (!strcmp(a, "--quiet")) { o.quiet = 1; continue; }
        if (!strcmp(a, "--train-encoder")) { o.train_encoder = 1; continue; }
        NEED_VALUE
        if (!strcmp(a, "--data")) data[ndata++] = v;
        else if (!strcmp(a, "--out")) o.out = v;
        else if (!strcmp(a, "--tokenizer")) o.tokenizer = v;
        else if (!strcmp(a, "--init")) o.init = v;
        else if (!strcmp(a, "--export")) o.export_path = v;
        else if (!strcmp(a, "--lambda")) o.lambda = strtof(v, &end);
        else if (!strcmp(a, "--lambda-ramp")) o.lambda_ramp = strtol(v, &end, 10);
        else if (!strcmp(a, "--target-bpp")) o.target_bpp = strtod(v, &end);
        else if (!strcmp(a, "--mse-weight")) o.mse_weight = strtof(v, &end);
        else if (!strcmp(a, "--rate-id")) o.rate_id = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--log")) o.log = v;
        else if (!strcmp(a, "--stage")) o.stage = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--steps")) o.steps = strtol(v, &end, 10);
        else if (!strcmp(a, "--stop-after")) o.stop_after = strtol(v, &end, 10);
        else if (!strcmp(a, "--log-every")) o.log_every = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--batch")) o.batch = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--crop")) o.crop = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--bits")) o.tok_bits = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--latents")) o.latents = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--threads")) o.threads = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--seed")) o.seed = strtoull(v, &end, 10);
        else if (!strcmp(a, "--lr")) o.lr = strtof(v, &end);
        else if (!strcmp(a, "--warmup")) o.warmup = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--save-every")) o.save_every = strtod(v, &end);
        else { free(data); return usage("unknown train option"); }
#undef NEED_VALUE
        if (end && *end) { free(data); return usage("bad number"); }
    }
    o.data = data;
    o.ndata = ndata;
    mrt_error err = {0};
    mrt_status st = mrt_train(&o, &err);
    free(data);
    if (st != MRT_OK) return fail("training", &err);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) return usage(NULL);
    if (!strcmp(argv[1], "train")) return cmd_train(argc, argv);
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
    if (parse(argc, argv, &o) != 0) return usage("bad option or extra argument");
    if (o.refine_mse_weight_given && !o.refine)
        return usage("--refine-mse-weight weighs refinement's objective: it needs --refine");
    if (!strcmp(cmd, "encode") && o.nargs == 2) return cmd_encode(&o);
    if (!strcmp(cmd, "decode") && o.nargs == 2) return cmd_decode(&o);
    if (!strcmp(cmd, "info") && o.nargs == 1) return cmd_info(&o);
    if (!strcmp(cmd, "eval") && o.nargs == 1) return cmd_eval(&o);
    if (!strcmp(cmd, "init-model") && o.nargs == 1) return cmd_init_model(&o);
    return usage("unknown command or wrong number of arguments");
}
