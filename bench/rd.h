/*
 * rd.h -- what bench_rd's files share: rd.c (the measurement and main),
 * tools.c (temporary files, PPM files, running the classical codecs'
 * tools) and report.c (JSON, Markdown and gnuplot output).
 */
#ifndef MRT_BENCH_RD_H
#define MRT_BENCH_RD_H

#include <stdio.h>

#include "mrt.h"

/* Each codec's quality knob is searched as an integer q in [0, qsteps),
 * oriented so that a larger q means better quality and (nearly always)
 * more bytes; native() maps it to the tool's own parameter. */
typedef struct codec {
    const char *name;     /* JSON file and table name */
    const char *label;    /* plot legend */
    const char *enc, *dec;
    const char *ext;      /* of the compressed file */
    int in_png, out_png;  /* encoder input / decoder output: PNG, else PPM */
    int qsteps;
    const char *param;    /* what "quality" means in the JSON */
    const char *version_flag;
    const char *settings; /* the fixed settings, for the description */
} codec;

enum { C_JPEG, C_WEBP, C_AVIF, C_JXL, NCODECS };

extern const codec codecs[NCODECS];

/* One coded image: what was measured at the chosen setting. */
typedef struct outcome {
    int fits;
    long bytes;
    double bpp, psnr, msssim, enc_s, dec_s;
    double factor, quality;
} outcome;

/* One image at one rate point through one codec: the factor kept by
 * MS-SSIM (`best`) and the one that PSNR would keep (`best_psnr`). */
typedef struct result {
    long budget;
    outcome best, best_psnr;
} result;

typedef struct point {
    const char *model; /* NULL: a --bpp or --budget point */
    double bpp;
    long budget; /* > 0: a --budget point, in bytes */
    char fingerprint[MRT_FINGERPRINT_HEX]; /* the model's, in hex */
} point;

/* rd.c: our encoder's refinement (--refine, --refine-mse-weight), which
 * names our rate points in the output */
extern int refine_steps, refine_mse_weight_given;
extern float refine_mse_weight;

/* tools.c */
extern double tool_timeout;
double now(void);
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void make_tmpdir(void);
const char *tmp_path(const char *name);
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void write_ppm(const mrt_image *img, const char *path);
int read_ppm(const char *path, mrt_image *out, char *why, size_t whylen);
long file_size(const char *path);
int in_path(const char *name);
double native_param(int c, int q);
int encode_with(int c, int q, const char *in, const char *out, double *sec, char *why,
                size_t whylen);
int decode_with(int c, const char *in, const char *out, double *sec, char *why, size_t whylen);
void tool_version(int c, char *buf, size_t len);

/* report.c */
const char *base_name(const char *path);
void write_json(const char *dir, const char *name, const char *description, const char *param,
                result **res, const point *pts, int npts, char **images, const mrt_image *sizes,
                int nimg);
void point_name(const point *pt, char *buf, size_t len);
void write_markdown(const char *dir, result ***res, const int *active, int ncodec_slots,
                    const char *const *names, const point *pts, int npts, char **images,
                    const mrt_image *sizes, int nimg, const char *factors_text);
void write_gnuplot(const char *dir, result ***res, const int *active, int ncodec_slots,
                   const char *const *names, const char *const *labels, int npts, int nimg);

#endif /* MRT_BENCH_RD_H */
