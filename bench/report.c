/*
 * report.c -- bench_rd's output (rd.h): rd-<codec>.json per codec
 * (CompressAI's layout), rd.md (the tables bench/README.md quotes) and
 * rd.gp for the plot.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mrt_json.h"
#include "rd.h"

/* --------------------------------------------------------------- output */

const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}


/* Means over images of one codec at one point (selection by MS-SSIM, or
 * by PSNR when by_psnr). Returns the number of images that fit; the
 * means are only meaningful when that is every image. */
typedef struct mean {
    int nfit;
    double bpp, psnr, msssim, enc_s, dec_s;
} mean;

static mean mean_of(result *r, int nimg, int by_psnr) {
    mean m = {0};
    for (int i = 0; i < nimg; i++) {
        const outcome *o = by_psnr ? &r[i].best_psnr : &r[i].best;
        if (!o->fits) continue;
        m.nfit++;
        m.bpp += o->bpp, m.psnr += o->psnr, m.msssim += o->msssim;
        m.enc_s += o->enc_s, m.dec_s += o->dec_s;
    }
    if (m.nfit) {
        m.bpp /= m.nfit, m.psnr /= m.nfit, m.msssim /= m.nfit;
        m.enc_s /= m.nfit, m.dec_s /= m.nfit;
    }
    return m;
}

static void json_outcome(mrt_json *w, const outcome *o, const char *param) {
    mrt_json_bool(w, "fits", o->fits);
    if (!o->fits) return;
    mrt_json_int(w, "bytes", o->bytes);
    mrt_json_real(w, "bpp", "%.6g", o->bpp);
    mrt_json_real(w, "psnr-rgb", "%.6g", o->psnr);
    mrt_json_real(w, "ms-ssim-rgb", "%.6g", o->msssim);
    mrt_json_real(w, "encoding_time", "%.6g", o->enc_s);
    mrt_json_real(w, "decoding_time", "%.6g", o->dec_s);
    mrt_json_real(w, "factor", "%.6g", o->factor);
    if (param) mrt_json_real(w, "quality", "%.6g", o->quality);
}

/* CompressAI's layout ("name", "description", "results" with lists of
 * bpp, psnr-rgb, ms-ssim-rgb, encoding_time, decoding_time), the lists
 * holding the means of the rate points where every image fits, sorted by
 * rate point order; "rate_points" keeps everything, per image. */
void write_json(const char *dir, const char *name, const char *description,
                       const char *param, result **res, const point *pts, int npts,
                       char **images, const mrt_image *sizes, int nimg) {
    char path[4200];
    snprintf(path, sizeof path, "%s/rd-%s.json", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) die("%s: %s", path, strerror(errno));
    mrt_json w;
    mrt_json_to_file(&w, f);
    mrt_json_object(&w, NULL, MRT_JSON_LINES);
    mrt_json_string(&w, "name", name);
    mrt_json_string(&w, "description", description);
    if (param)
        mrt_json_string(&w, "selection", "per image, the downscale factor with the best "
                                         "ms-ssim-rgb; results_best_psnr: the one with the best "
                                         "psnr-rgb");
    for (int by_psnr = 0; by_psnr < 2; by_psnr++) {
        mrt_json_object(&w, by_psnr ? "results_best_psnr" : "results", MRT_JSON_LINES);
        static const char *keys[] = {"bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time",
                                     "decoding_time"};
        for (int k = 0; k < 5; k++) {
            mrt_json_array(&w, keys[k], MRT_JSON_INLINE);
            for (int p = 0; p < npts; p++) {
                if (!res[p]) continue;
                mean m = mean_of(res[p], nimg, by_psnr);
                if (m.nfit != nimg) continue;
                double v = k == 0 ? m.bpp : k == 1 ? m.psnr : k == 2 ? m.msssim
                                            : k == 3 ? m.enc_s : m.dec_s;
                mrt_json_real(&w, NULL, "%.6g", v);
            }
            mrt_json_end(&w);
        }
        mrt_json_end(&w);
    }
    mrt_json_string(&w, "quality_parameter", param ? param : "none");
    mrt_json_array(&w, "rate_points", MRT_JSON_LINES);
    for (int p = 0; p < npts; p++) {
        if (!res[p]) continue;
        mrt_json_object(&w, NULL, MRT_JSON_LINES);
        char target[4200];
        if (pts[p].model) {
            snprintf(target, sizeof target, "same bytes as mrt with %s", base_name(pts[p].model));
            mrt_json_string(&w, "target", target);
            mrt_json_string(&w, "model_fingerprint", pts[p].fingerprint);
        } else if (pts[p].budget) {
            snprintf(target, sizeof target, "%ld bytes", pts[p].budget);
            mrt_json_string(&w, "target", target);
            mrt_json_int(&w, "target_bytes", pts[p].budget);
        } else {
            snprintf(target, sizeof target, "%g bpp", pts[p].bpp);
            mrt_json_string(&w, "target", target);
            mrt_json_real(&w, "target_bpp", "%g", pts[p].bpp);
        }
        mean m = mean_of(res[p], nimg, 0);
        mrt_json_int(&w, "images", nimg);
        mrt_json_int(&w, "images_fit", m.nfit);
        if (m.nfit == nimg) {
            mrt_json_object(&w, "mean", MRT_JSON_INLINE);
            mrt_json_real(&w, "bpp", "%.6g", m.bpp);
            mrt_json_real(&w, "psnr-rgb", "%.6g", m.psnr);
            mrt_json_real(&w, "ms-ssim-rgb", "%.6g", m.msssim);
            mrt_json_real(&w, "encoding_time", "%.6g", m.enc_s);
            mrt_json_real(&w, "decoding_time", "%.6g", m.dec_s);
            mrt_json_end(&w);
        } else {
            mrt_json_null(&w, "mean");
        }
        mrt_json_array(&w, "per_image", MRT_JSON_LINES);
        for (int i = 0; i < nimg; i++) {
            const result *r = &res[p][i];
            mrt_json_object(&w, NULL, MRT_JSON_INLINE);
            mrt_json_string(&w, "image", base_name(images[i]));
            mrt_json_int(&w, "width", sizes[i].width);
            mrt_json_int(&w, "height", sizes[i].height);
            mrt_json_int(&w, "budget_bytes", r->budget);
            json_outcome(&w, &r->best, param);
            if (param && r->best.fits) {
                mrt_json_object(&w, "best_psnr", MRT_JSON_INLINE);
                json_outcome(&w, &r->best_psnr, param);
                mrt_json_end(&w);
            }
            mrt_json_end(&w);
        }
        mrt_json_end(&w);
        mrt_json_end(&w);
    }
    mrt_json_end(&w);
    mrt_json_end(&w);
    fputc('\n', f);
    if (mrt_json_finish(&w) != 0 || fclose(f) != 0) die("%s: write failed", path);
}

void point_name(const point *pt, char *buf, size_t len) {
    if (pt->model && refine_steps && refine_mse_weight_given)
        snprintf(buf, len, "mrt %s refine %d mse-weight %g", base_name(pt->model), refine_steps,
                 (double)refine_mse_weight);
    else if (pt->model && refine_steps)
        snprintf(buf, len, "mrt %s refine %d", base_name(pt->model), refine_steps);
    else if (pt->model)
        snprintf(buf, len, "mrt %s", base_name(pt->model));
    else if (pt->budget)
        snprintf(buf, len, "%ld bytes", pt->budget);
    else
        snprintf(buf, len, "%g bpp", pt->bpp);
}

/* "4 (2), 6 (1)": how often each factor was chosen. */
static void factor_summary(const result *r, int nimg, char *buf, size_t len) {
    double seen[64];
    int count[64], n = 0;
    for (int i = 0; i < nimg; i++) {
        if (!r[i].best.fits) continue;
        int k = 0;
        while (k < n && seen[k] != r[i].best.factor) k++;
        if (k == n && n < 64) seen[n] = r[i].best.factor, count[n++] = 0;
        if (k < n) count[k]++;
    }
    buf[0] = 0;
    size_t used = 0;
    for (int k = 0; k < n && used < len; k++)
        used += snprintf(buf + used, len - used, "%s%g (%d)", k ? ", " : "", seen[k], count[k]);
    if (!n) snprintf(buf, len, "-");
}

/* The table: one row per rate point and codec, means over the images (only
 * where every image fits: a mean over the images that fit would flatter
 * the codec), then one row per image. */
void write_markdown(const char *dir, result ***res, const int *active, int ncodec_slots,
                           const char *const *names, const point *pts, int npts, char **images,
                           const mrt_image *sizes, int nimg, const char *factors_text) {
    char path[4200];
    snprintf(path, sizeof path, "%s/rd.md", dir);
    FILE *f = fopen(path, "w");
    if (!f) die("%s: %s", path, strerror(errno));
    fprintf(f, "# Rate-distortion: mrt against classical codecs at the same bytes\n\n");
    fprintf(f, "Written by `bench_rd` (bench/README.md). %d image%s:", nimg, nimg == 1 ? "" : "s");
    for (int i = 0; i < nimg; i++)
        fprintf(f, "%s %s (%dx%d)", i ? "," : "", base_name(images[i]), sizes[i].width,
                sizes[i].height);
    fprintf(f, ".\nClassical codecs: best of downscale factors %s (Lanczos-3 down and back up) "
               "by MS-SSIM per image, quality searched for the largest file within the budget; "
               "bpp from real file bytes. PSNR and MS-SSIM on RGB at full size, the same code "
               "for every codec. Means only where every image fits the budget.\n\n",
            factors_text);
    fprintf(f, "| rate point | codec | images fit | bpp | PSNR-RGB (dB) | MS-SSIM-RGB | factors "
               "chosen (count) | encode s | decode s |\n");
    fprintf(f, "|---|---|---|---|---|---|---|---|---|\n");
    char pn[256], fs[512];
    for (int p = 0; p < npts; p++) {
        point_name(&pts[p], pn, sizeof pn);
        for (int c = 0; c < ncodec_slots; c++) {
            if (!active[c] || !res[c][p]) continue;
            mean m = mean_of(res[c][p], nimg, 0);
            factor_summary(res[c][p], nimg, fs, sizeof fs);
            if (m.nfit == nimg)
                fprintf(f, "| %s | %s | %d/%d | %.4f | %.2f | %.4f | %s | %.3f | %.3f |\n", pn,
                        names[c], m.nfit, nimg, m.bpp, m.psnr, m.msssim, fs, m.enc_s, m.dec_s);
            else
                fprintf(f, "| %s | %s | %d/%d | does not fit | | | %s | | |\n", pn, names[c],
                        m.nfit, nimg, fs);
        }
    }
    fprintf(f, "\n## Per image\n\n");
    fprintf(f, "| image | rate point | codec | budget bytes | bytes | bpp | PSNR-RGB | MS-SSIM-RGB "
               "| factor | quality | by PSNR: factor, PSNR, MS-SSIM |\n");
    fprintf(f, "|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < nimg; i++)
        for (int p = 0; p < npts; p++) {
            point_name(&pts[p], pn, sizeof pn);
            for (int c = 0; c < ncodec_slots; c++) {
                if (!active[c] || !res[c][p]) continue;
                const result *r = &res[c][p][i];
                const outcome *o = &r->best, *q = &r->best_psnr;
                if (!o->fits) {
                    fprintf(f, "| %s | %s | %s | %ld | does not fit | | | | | | |\n",
                            base_name(images[i]), pn, names[c], r->budget);
                    continue;
                }
                fprintf(f, "| %s | %s | %s | %ld | %ld | %.4f | %.2f | %.4f | %g | %.4g | ",
                        base_name(images[i]), pn, names[c], r->budget, o->bytes, o->bpp, o->psnr,
                        o->msssim, o->factor, o->quality);
                if (c == 0 && pts[p].model)
                    fprintf(f, " |\n"); /* ours has no factor to choose */
                else
                    fprintf(f, "%g, %.2f, %.4f |\n", q->factor, q->psnr, q->msssim);
            }
        }
    if (fclose(f) != 0) die("%s: write failed", path);
}

/* A gnuplot script with its data inline (datablocks), run in `dir`:
 * `gnuplot rd.gp` writes rd.png, PSNR and MS-SSIM against bpp, one line
 * per codec over the rate points where every image fits. */
void write_gnuplot(const char *dir, result ***res, const int *active, int ncodec_slots,
                          const char *const *names, const char *const *labels, int npts,
                          int nimg) {
    char path[4200];
    snprintf(path, sizeof path, "%s/rd.gp", dir);
    FILE *f = fopen(path, "w");
    if (!f) die("%s: %s", path, strerror(errno));
    fprintf(f, "# Written by bench_rd: `gnuplot rd.gp` in this directory writes rd.png.\n");
    int plotted[16] = {0}, any = 0;
    for (int c = 0; c < ncodec_slots; c++) {
        if (!active[c]) continue;
        /* sorted by bpp so the lines run left to right */
        double xs[256][3];
        int n = 0;
        for (int p = 0; p < npts && n < 256; p++) {
            if (!res[c][p]) continue;
            mean m = mean_of(res[c][p], nimg, 0);
            if (m.nfit != nimg) continue;
            int k = n++;
            while (k > 0 && xs[k - 1][0] > m.bpp) {
                memcpy(xs[k], xs[k - 1], sizeof xs[k]);
                k--;
            }
            xs[k][0] = m.bpp, xs[k][1] = m.psnr, xs[k][2] = m.msssim;
        }
        if (!n) continue;
        plotted[c] = any = 1;
        fprintf(f, "$%s << EOD\n# bpp psnr-rgb ms-ssim-rgb\n", names[c]);
        for (int k = 0; k < n; k++) fprintf(f, "%.6g %.6g %.6g\n", xs[k][0], xs[k][1], xs[k][2]);
        fprintf(f, "EOD\n");
    }
    fprintf(f, "set terminal pngcairo size 1400,560 font ',11'\nset output 'rd.png'\n");
    fprintf(f, "set multiplot layout 1,2 title 'mrt against classical codecs at the same bytes "
               "(mean over %d image%s; classical: best downscale factor by MS-SSIM)'\n",
            nimg, nimg == 1 ? "" : "s");
    /* log x: the rate points span a decade (0.005 .. 0.05 bpp); xfix and
     * the offsets keep the range to the data (not whole decades) with the
     * points off the frame */
    fprintf(f, "set grid\nset key bottom right\nset logscale x\nset autoscale xfix\n"
               "set xtics (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5)\n"
               "set xlabel 'bits per pixel'\n"
               "set offsets graph 0.05, graph 0.05, graph 0.05, graph 0.05\n");
    for (int panel = 0; panel < 2; panel++) {
        fprintf(f, "set ylabel '%s'\n", panel ? "MS-SSIM (RGB)" : "PSNR-RGB (dB)");
        if (!any) {
            fprintf(f, "set label 1 'no codec fits every image at any rate point' at graph 0.5,0.5 "
                       "center\nplot [0:1] NaN notitle\n");
            continue;
        }
        fprintf(f, "plot");
        int first = 1;
        for (int c = 0; c < ncodec_slots; c++) {
            if (!plotted[c]) continue;
            fprintf(f, "%s $%s using 1:%d with linespoints lw 2 pt 7 title '%s'", first ? "" : ",",
                    names[c], panel ? 3 : 2, labels[c]);
            first = 0;
        }
        fprintf(f, "\n");
    }
    fprintf(f, "unset multiplot\n");
    if (fclose(f) != 0) die("%s: write failed", path);
}

