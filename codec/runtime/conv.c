/*
 * conv.c -- 2-D convolution and the spatial maps (upsample, pixel shuffle,
 * patchify) of the pixel generator.
 *
 * 3x3 stride-1 convolutions with at most DIRECT_MAX_COUT output channels are
 * computed directly (see "direct 3x3" below). The others are im2col + GEMM:
 * for one image,
 *     out(Cout x P) = W(Cout x K) . col(K x P),   K = Cin*k*k, P = Hout*Wout,
 * where row (c, ky, kx) of col holds the input pixel that tap (ky, kx) of
 * channel c sees for every output pixel. The model's convs have few channels
 * (K = 144..576) and many pixels, so the product is short and very wide; we
 * never build the whole col (at 8192x8192 it would be gigabytes) but cut the
 * output pixels into spans of at most SPAN_FLOATS/K pixels, so the column
 * buffer is at most SPAN_FLOATS floats (1 MiB) per thread and stays in cache
 * between im2col and the GEMM that reads it. A 1x1 stride-1 conv needs no
 * im2col at all: col is the input itself. Backward also keeps DW_GROUPS
 * partial weight gradients (16 * Cout * K floats, 2.4 MB at 64 -> 64 3x3).
 *
 * Threading and determinism. The work is cut into "units" (one band of
 * output rows of one image) whose boundaries depend only on the shape, never
 * on the thread count; each unit is processed by one thread with
 * single-threaded BLIS (DESIGN.md §10: BLIS's own threading loses on these
 * skinny shapes). Every output value is therefore computed by the same GEMM
 * call, in the same order, whatever the number of threads, and the results
 * for 1 and 2 threads are bitwise identical (tests check it). Backward keeps
 * that property:
 *   - dbias: one thread per output channel, summed in a fixed order;
 *   - dweight: units are grouped into DW_GROUPS fixed groups, each summed in
 *     order into its own slot; the slots are then added in group order;
 *   - din: a unit's col2im also touches the input rows just outside its band
 *     (k = 3), which belong to the neighbouring bands; bands have >= 2 rows,
 *     so even bands never touch each other, nor do odd ones. Even bands run
 *     first, then odd bands: no races and a fixed order of accumulation.
 */
#include <stdlib.h>
#include <string.h>
#include <omp.h>

#include "fastmath.h"
#include "runtime.h"

/* Floats of im2col buffer per thread: 1 MiB. Of 128 KiB..4 MiB this was the
 * fastest for Cin = Cout = 16, k = 3 at 256^2 and 768x512 on the 2-core EPYC
 * (forward ~2x faster than 2-4 MiB): a span's col is written by im2col and
 * read straight back by the GEMM, so it should stay in cache. -D to tune. */
#ifndef SPAN_FLOATS
#define SPAN_FLOATS (256 * 1024)
#endif
/* Fixed number of partial sums for dweight (independent of thread count). */
#define DW_GROUPS 16
/* Aim for this many units in total so two (or more) threads balance well. */
#define TARGET_UNITS 32
/* ... but do not cut a unit below this many output pixels. */
#define MIN_UNIT_PIXELS 512

typedef struct conv_plan {
    int B, Cin, H, W, Cout, k, s, pad, Ho, Wo;
    int K;      /* Cin*k*k: rows of col */
    int direct; /* 1x1 stride 1: col is the input itself */
    int span;   /* max output pixels per GEMM */
    int nbands; /* bands (units) per image */
} conv_plan;

static conv_plan make_plan(int B, int Cin, int H, int W, int Cout, int k, int s) {
    conv_plan p;
    p.B = B;
    p.Cin = Cin;
    p.H = H;
    p.W = W;
    p.Cout = Cout;
    p.k = k;
    p.s = s;
    p.pad = k / 2;
    p.Ho = mrt_conv2d_out_size(H, s);
    p.Wo = mrt_conv2d_out_size(W, s);
    p.K = Cin * k * k;
    p.direct = (k == 1 && s == 1);
    p.span = SPAN_FLOATS / p.K;
    if (p.span < 16) p.span = 16;
    long pixels = (long)p.Ho * p.Wo;
    long nb = (TARGET_UNITS + B - 1) / B;
    if (nb > pixels / MIN_UNIT_PIXELS) nb = pixels / MIN_UNIT_PIXELS;
    if (nb > p.Ho / 2) nb = p.Ho / 2; /* every band >= 2 rows (see top) */
    if (nb < 1) nb = 1;
    p.nbands = (int)nb;
    return p;
}

/* Output rows [r0, r1) of band `band`. */
static void band_rows(const conv_plan *p, int band, int *r0, int *r1) {
    *r0 = (int)((long)p->Ho * band / p->nbands);
    *r1 = (int)((long)p->Ho * (band + 1) / p->nbands);
}

/* Output columns ox in [lo, hi) read an input column inside [0, W) for tap
 * kx: 0 <= ox*s - pad + kx <= W-1. */
static void valid_cols(const conv_plan *p, int kx, int *lo, int *hi) {
    int off = kx - p->pad; /* ix = ox*s + off */
    int l = off >= 0 ? 0 : (-off + p->s - 1) / p->s;
    int h = p->W - 1 - off < 0 ? 0 : (p->W - 1 - off) / p->s + 1;
    if (h > p->Wo) h = p->Wo;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/*
 * im2col of output pixels [p0, p0+n) of one image `img` (Cin x H x W) into
 * col (K x n, row stride n). The span may start and end mid-row.
 */
static void im2col_span(const conv_plan *p, float *col, const float *img, int p0, int n) {
    const int k = p->k, s = p->s, W = p->W, Wo = p->Wo;
    for (int c = 0; c < p->Cin; c++) {
        const float *plane = img + (size_t)c * p->H * W;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                float *dst = col + (size_t)((c * k + ky) * k + kx) * n;
                int lo, hi;
                valid_cols(p, kx, &lo, &hi);
                int off = kx - p->pad;
                for (int q = p0; q < p0 + n;) {
                    int oy = q / Wo, ox0 = q - oy * Wo;
                    int ox1 = Wo < ox0 + (p0 + n - q) ? Wo : ox0 + (p0 + n - q);
                    float *d = dst + (q - p0); /* d[ox - ox0] for ox in [ox0, ox1) */
                    int iy = oy * s - p->pad + ky;
                    /* [a, e): the columns of this row piece that read inside the image. */
                    int a = lo > ox0 ? lo : ox0, e = hi < ox1 ? hi : ox1;
                    if (iy < 0 || iy >= p->H || a >= e) a = e = ox1;
                    for (int ox = ox0; ox < a; ox++) d[ox - ox0] = 0.0f;
                    if (e > a) {
                        const float *src = plane + (size_t)iy * W;
                        if (s == 1)
                            memcpy(d + (a - ox0), src + (a + off), sizeof(float) * (size_t)(e - a));
                        else
                            for (int ox = a; ox < e; ox++) d[ox - ox0] = src[ox * 2 + off];
                    }
                    for (int ox = e; ox < ox1; ox++) d[ox - ox0] = 0.0f;
                    q += ox1 - ox0;
                }
            }
        }
    }
}

/* The adjoint of im2col_span: img += col2im(col), for the same span. */
static void col2im_span(const conv_plan *p, float *img, const float *col, int p0, int n) {
    const int k = p->k, s = p->s, W = p->W, Wo = p->Wo;
    for (int c = 0; c < p->Cin; c++) {
        float *plane = img + (size_t)c * p->H * W;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                const float *srcrow = col + (size_t)((c * k + ky) * k + kx) * n;
                int lo, hi;
                valid_cols(p, kx, &lo, &hi);
                int off = kx - p->pad;
                for (int q = p0; q < p0 + n;) {
                    int oy = q / Wo, ox0 = q - oy * Wo;
                    int ox1 = Wo < ox0 + (p0 + n - q) ? Wo : ox0 + (p0 + n - q);
                    int iy = oy * s - p->pad + ky;
                    int a = lo > ox0 ? lo : ox0, e = hi < ox1 ? hi : ox1;
                    if (iy >= 0 && iy < p->H && e > a) {
                        const float *sv = srcrow + (q - p0); /* sv[ox - ox0] */
                        float *d = plane + (size_t)iy * W;
                        if (s == 1)
                            for (int ox = a; ox < e; ox++) d[ox + off] += sv[ox - ox0];
                        else
                            for (int ox = a; ox < e; ox++) d[ox * 2 + off] += sv[ox - ox0];
                    }
                    q += ox1 - ox0;
                }
            }
        }
    }
}

/* One buffer of `each` floats per thread, or NULL. */
static float *alloc_per_thread(int nt, size_t each) {
    return malloc(sizeof(float) * (each ? each : 1) * (size_t)nt);
}

static size_t col_floats(const conv_plan *p) {
    return p->direct ? 0 : (size_t)p->K * (size_t)p->span;
}


/* ------------------------------------------------ direct 3x3, stride 1 */

/*
 * A 3x3 stride-1 convolution computed directly, without im2col. The
 * generator's convolutions have few channels (16 -> 16 and 16 -> 3 at full
 * resolution): as a GEMM their left operand has only Cout = 3..16 rows, so
 * each column of the im2col buffer is written once, packed by BLIS once
 * more and then used for only Cout multiply-adds; the copies cost as much
 * as the arithmetic (memmove was 8 % of a decode, BLIS's packing more).
 * Here each input vector is loaded once per tap and used by DIRECT_CO
 * output channels held in registers.
 *
 * Register block: DIRECT_CO = 4 output channels x DIRECT_PX = 16 output
 * pixels (two 8-lane vectors): 8 accumulators, 2 input vectors, 4
 * broadcast weights and a product fit the 16 ymm registers of AVX2. Every
 * output is the bias (or, accumulating, its old value) plus its Cin*9
 * products added one by one in the order (ci, ky, kx): the same in every
 * clone, at every position in the block, for any thread count.
 *
 * Borders: a block whose 18 input columns all lie inside the row reads the
 * image in place; the first and last blocks of a row copy their columns
 * into a zero-padded tile first. Rows above and below the image are
 * skipped (they would add zeros).
 */
#define DIRECT_CO 4
#define DIRECT_PX 16
#define DIRECT_TILE (DIRECT_PX + 2) /* input columns one block reads */
#ifndef DIRECT_MAX_COUT
#define DIRECT_MAX_COUT 32
#endif
typedef float dvf8 __attribute__((vector_size(32), aligned(4))); /* unaligned-safe */
#define dload8(p) (*(const dvf8 *)(p))
#define dstore8(p, v) (*(dvf8 *)(p) = (v))

/* Weights regrouped for the kernel: for each block of DIRECT_CO output
 * channels, [ci][tap][co], zero for channels past Cout. */
static size_t direct_weight_floats(int Cin, int Cout) {
    return (size_t)(Cout + DIRECT_CO - 1) / DIRECT_CO * DIRECT_CO * Cin * 9;
}

static void direct_pack_weights(float *wp, const float *weight, int Cin, int Cout) {
    int nblk = (Cout + DIRECT_CO - 1) / DIRECT_CO;
    for (int blk = 0; blk < nblk; blk++)
        for (int ci = 0; ci < Cin; ci++)
            for (int t = 0; t < 9; t++)
                for (int j = 0; j < DIRECT_CO; j++) {
                    int co = blk * DIRECT_CO + j;
                    wp[(((size_t)blk * Cin + ci) * 9 + t) * DIRECT_CO + j] =
                        co < Cout ? weight[((size_t)co * Cin + ci) * 9 + t] : 0.0f;
                }
}

/* dst[j][i] = init[j][i] + sum over (ci, ky < nky, kx) of w[ci][ky][kx][j] *
 * x[ci][ky][kx + i], i < DIRECT_PX: x is the first input row and column
 * the block reads (cs: channel stride, rs: row stride), w the weights of
 * that first row's taps. */
MRT_INLINE void direct_block(float *dst[DIRECT_CO], const float *init[DIRECT_CO], const float *x,
                             size_t cs, size_t rs, int nky, const float *w, int Cin) {
    dvf8 a00 = dload8(init[0]), a01 = dload8(init[0] + 8);
    dvf8 a10 = dload8(init[1]), a11 = dload8(init[1] + 8);
    dvf8 a20 = dload8(init[2]), a21 = dload8(init[2] + 8);
    dvf8 a30 = dload8(init[3]), a31 = dload8(init[3] + 8);
    for (int ci = 0; ci < Cin; ci++) {
        const float *xc = x + (size_t)ci * cs;
        const float *wc = w + (size_t)ci * 9 * DIRECT_CO;
        for (int ky = 0; ky < nky; ky++) {
            const float *r = xc + (size_t)ky * rs;
            const float *wt = wc + ky * 3 * DIRECT_CO;
            for (int kx = 0; kx < 3; kx++, wt += DIRECT_CO) {
                dvf8 x0 = dload8(r + kx), x1 = dload8(r + kx + 8);
                float w0 = wt[0], w1 = wt[1], w2 = wt[2], w3 = wt[3];
                a00 += w0 * x0;
                a01 += w0 * x1;
                a10 += w1 * x0;
                a11 += w1 * x1;
                a20 += w2 * x0;
                a21 += w2 * x1;
                a30 += w3 * x0;
                a31 += w3 * x1;
            }
        }
    }
    dstore8(dst[0], a00), dstore8(dst[0] + 8, a01);
    dstore8(dst[1], a10), dstore8(dst[1] + 8, a11);
    dstore8(dst[2], a20), dstore8(dst[2] + 8, a21);
    dstore8(dst[3], a30), dstore8(dst[3] + 8, a31);
}

/* Scratch floats per thread: the border tile, and DIRECT_CO rows of a
 * partial block's outputs and of its starting values. */
static size_t direct_scratch_floats(int Cin) {
    return (size_t)Cin * 3 * DIRECT_TILE + 2 * DIRECT_CO * DIRECT_PX;
}

/* Output rows [r0, r1) of image `img` (Cin x H x W) into o (Cout x H x W):
 * o = bias + conv, or with `accumulate` o += conv. wp from
 * direct_pack_weights; scratch of direct_scratch_floats(Cin). */
MRT_SIMD_CLONES
static void direct_rows(float *o, const float *img, const float *wp, const float *bias,
                        int accumulate, int Cin, int H, int W, int Cout, int r0, int r1,
                        float *scratch) {
    float *tile = scratch, *part = tile + (size_t)Cin * 3 * DIRECT_TILE;
    float *part_init = part + DIRECT_CO * DIRECT_PX;
    float biasrow[DIRECT_CO][DIRECT_PX];
    size_t HW = (size_t)H * W;
    int nblk = (Cout + DIRECT_CO - 1) / DIRECT_CO;
    /* output row by output row, all channel blocks in turn: the three input
     * rows of all channels that a row reads stay in L2 (a channel block at
     * a time over the whole band re-read them from memory) */
    for (int oy = r0; oy < r1; oy++) {
        /* taps [ky0, ky1) read rows inside the image; x0 is row oy-1+ky0 */
        int ky0 = oy == 0 ? 1 : 0, ky1 = oy == H - 1 ? 2 : 3, nky = ky1 - ky0;
        const float *x0 = img + (size_t)(oy - 1 + ky0) * W;
        for (int blk = 0; blk < nblk; blk++) {
            const float *wk = wp + (size_t)blk * Cin * 9 * DIRECT_CO + (size_t)ky0 * 3 * DIRECT_CO;
            for (int j = 0; j < DIRECT_CO; j++) {
                int co = blk * DIRECT_CO + j;
                float v = bias && co < Cout ? bias[co] : 0.0f;
                for (int i = 0; i < DIRECT_PX; i++) biasrow[j][i] = v;
            }
            for (int ox0 = 0; ox0 < W; ox0 += DIRECT_PX) {
                int n = W - ox0 < DIRECT_PX ? W - ox0 : DIRECT_PX;
                float *dst[DIRECT_CO];
                const float *init[DIRECT_CO];
                for (int j = 0; j < DIRECT_CO; j++) {
                    int co = blk * DIRECT_CO + j;
                    float *orow = o + (size_t)co * HW + (size_t)oy * W + ox0;
                    if (n == DIRECT_PX && co < Cout) {
                        dst[j] = orow;
                        init[j] = accumulate ? orow : biasrow[j];
                    } else { /* a partial block or a padding channel */
                        dst[j] = part + j * DIRECT_PX;
                        float *pi = part_init + j * DIRECT_PX;
                        for (int i = 0; i < DIRECT_PX; i++)
                            pi[i] = co >= Cout || i >= n ? 0.0f
                                    : accumulate ? orow[i] : biasrow[j][i];
                        init[j] = pi;
                    }
                }
                if (ox0 >= 1 && ox0 + DIRECT_TILE - 1 <= W) {
                    direct_block(dst, init, x0 + ox0 - 1, HW, (size_t)W, nky, wk, Cin);
                } else {
                    /* tile[ci][ky][i] = column ox0 - 1 + i of the ky-th row read, 0 outside */
                    for (int ci = 0; ci < Cin; ci++)
                        for (int ky = 0; ky < nky; ky++) {
                            const float *src = x0 + (size_t)ci * HW + (size_t)ky * W;
                            float *t = tile + ((size_t)ci * 3 + ky) * DIRECT_TILE;
                            for (int i = 0; i < DIRECT_TILE; i++) {
                                int ix = ox0 - 1 + i;
                                t[i] = ix >= 0 && ix < W ? src[ix] : 0.0f;
                            }
                        }
                    direct_block(dst, init, tile, 3 * DIRECT_TILE, DIRECT_TILE, nky, wk, Cin);
                }
                for (int j = 0; j < DIRECT_CO; j++) {
                    int co = blk * DIRECT_CO + j;
                    if (dst[j] != o + (size_t)co * HW + (size_t)oy * W + ox0 && co < Cout)
                        memcpy(o + (size_t)co * HW + (size_t)oy * W + ox0, dst[j],
                               sizeof(float) * (size_t)n);
                }
            }
        }
    }
}

/* Whether a convolution takes the direct path: 3x3, stride 1, and few
 * enough output channels that the GEMM's packing would dominate (measured
 * with bench_runtime; with 64 channels BLIS does better). */
static int use_direct(const conv_plan *p) {
    return p->k == 3 && p->s == 1 && p->Cout <= DIRECT_MAX_COUT;
}

/* The direct path over all units (the same bands as the GEMM path, so the
 * result does not depend on the thread count). Returns 0, having done
 * nothing, if its scratch memory cannot be had. */
static int direct_forward(int nt, const conv_plan *p, float *out, const float *in,
                          const float *weight, const float *bias, int accumulate) {
    int units = p->B * p->nbands;
    if (nt > units) nt = units;
    size_t sf = direct_scratch_floats(p->Cin);
    float *wp = malloc(sizeof(float) * direct_weight_floats(p->Cin, p->Cout));
    float *scratch = alloc_per_thread(nt, sf);
    if (!wp || !scratch) {
        free(wp);
        free(scratch);
        return 0;
    }
    direct_pack_weights(wp, weight, p->Cin, p->Cout);
    size_t HW = (size_t)p->H * p->W;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int u = 0; u < units; u++) {
        int b = u / p->nbands, r0, r1;
        band_rows(p, u % p->nbands, &r0, &r1);
        direct_rows(out + (size_t)b * p->Cout * HW, in + (size_t)b * p->Cin * HW, wp, bias,
                    accumulate, p->Cin, p->H, p->W, p->Cout, r0, r1,
                    scratch + sf * (size_t)omp_get_thread_num());
    }
    free(wp);
    free(scratch);
    return 1;
}

/* Forward for unit u: all spans of its band. With `accumulate` the result
 * is added to out (bias must then be NULL). */
static void forward_unit(const conv_plan *p, int u, float *out, const float *in,
                         const float *weight, const float *bias, float *col, int accumulate) {
    int b = u / p->nbands, r0, r1;
    band_rows(p, u % p->nbands, &r0, &r1);
    size_t HWo = (size_t)p->Ho * p->Wo, HW = (size_t)p->H * p->W;
    const float *img = in + (size_t)b * p->Cin * HW;
    float *o = out + (size_t)b * p->Cout * HWo;
    for (int q = r0 * p->Wo, qend = r1 * p->Wo; q < qend; q += p->span) {
        int n = qend - q < p->span ? qend - q : p->span;
        const float *Bm;
        int ldb;
        if (p->direct) {
            Bm = img + q;
            ldb = (int)HW;
        } else {
            im2col_span(p, col, img, q, n);
            Bm = col;
            ldb = n;
        }
        float beta = accumulate ? 1.0f : 0.0f;
        if (bias) {
            /* Start from the bias and let the GEMM add to it. */
            for (int co = 0; co < p->Cout; co++) {
                float *row = o + co * HWo + q;
                for (int i = 0; i < n; i++) row[i] = bias[co];
            }
            beta = 1.0f;
        }
        mrt_sgemm_1t(false, false, p->Cout, n, p->K, 1.0f, weight, p->K, Bm, ldb, beta, o + q,
                     (int)HWo);
    }
}

void mrt_conv2d_forward(const mrt_rt *rt, float *out, const float *in, const float *weight,
                        const float *bias, int B, int Cin, int H, int W, int Cout, int k,
                        int stride) {
    if (B <= 0 || H <= 0 || W <= 0 || Cout <= 0) return;
    if (Cin <= 0) { /* no inputs: the bias alone (the naive loops do exactly that) */
        mrt_conv2d_forward_naive(out, in, weight, bias, B, Cin, H, W, Cout, k, stride);
        return;
    }
    conv_plan p = make_plan(B, Cin, H, W, Cout, k, stride);
    int units = B * p.nbands;
    int nt = rt && rt->threads > 1 ? rt->threads : 1;
    if (use_direct(&p) && direct_forward(nt, &p, out, in, weight, bias, 0)) return;
    if (nt > units) nt = units;
    size_t cf = col_floats(&p);
    float *cols = alloc_per_thread(nt, cf);
    if (!cols) {
        /* Out of memory for even 1 MiB per thread: the direct loops need none. */
        mrt_conv2d_forward_naive(out, in, weight, bias, B, Cin, H, W, Cout, k, stride);
        return;
    }
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int u = 0; u < units; u++)
        forward_unit(&p, u, out, in, weight, bias, cols + cf * (size_t)omp_get_thread_num(), 0);
    free(cols);
}

/* Direct-loop backward, used only when scratch memory cannot be had. */
static void conv_backward_direct(float *din, float *dweight, float *dbias, const float *dout,
                                 const float *in, const float *weight, const conv_plan *p) {
    const int k = p->k;
    for (int b = 0; b < p->B; b++)
        for (int co = 0; co < p->Cout; co++)
            for (int oy = 0; oy < p->Ho; oy++)
                for (int ox = 0; ox < p->Wo; ox++) {
                    float g = dout[(((size_t)b * p->Cout + co) * p->Ho + oy) * p->Wo + ox];
                    if (dbias) dbias[co] += g;
                    for (int ci = 0; ci < p->Cin; ci++)
                        for (int ky = 0; ky < k; ky++) {
                            int iy = oy * p->s - p->pad + ky;
                            if (iy < 0 || iy >= p->H) continue;
                            for (int kx = 0; kx < k; kx++) {
                                int ix = ox * p->s - p->pad + kx;
                                if (ix < 0 || ix >= p->W) continue;
                                size_t ii = (((size_t)b * p->Cin + ci) * p->H + iy) * p->W + ix;
                                size_t wi = (((size_t)co * p->Cin + ci) * k + ky) * k + kx;
                                if (dweight) dweight[wi] += g * in[ii];
                                if (din) din[ii] += g * weight[wi];
                            }
                        }
                }
}

/*
 * din += conv3x3(dout, W') for a 3x3 stride-1 conv, where W'[ci][co][ky][kx]
 * = W[co][ci][2-ky][2-kx]: with stride 1 and padding 1 the transposed
 * convolution is itself a "same" convolution with the kernel flipped and the
 * channel roles swapped. That turns din into a forward-shaped GEMM
 * (Cin x Cout*9 . Cout*9 x span) written straight into din, about twice as
 * fast as W^T . dout (inner dimension only Cout) followed by col2im, and
 * every din pixel is written by exactly one span: no phases needed.
 * Returns 0 (nothing done) if scratch memory cannot be had.
 */
static int din_by_flipped_conv(int nt, float *din, const float *dout, const float *weight,
                               int B, int Cin, int H, int W, int Cout) {
    conv_plan pt = make_plan(B, Cout, H, W, Cin, 3, 1);
    int units = B * pt.nbands;
    if (nt > units) nt = units;
    float *wt = malloc(sizeof(float) * (size_t)Cin * Cout * 9);
    if (!wt) return 0;
    for (int ci = 0; ci < Cin; ci++)
        for (int co = 0; co < Cout; co++)
            for (int t = 0; t < 9; t++) /* tap (ky, kx) = t -> (2-ky, 2-kx) = 8 - t */
                wt[((size_t)ci * Cout + co) * 9 + t] = weight[((size_t)co * Cin + ci) * 9 + 8 - t];
    if (use_direct(&pt) && direct_forward(nt, &pt, din, dout, wt, NULL, 1)) {
        free(wt);
        return 1;
    }
    size_t cf = col_floats(&pt);
    float *cols = alloc_per_thread(nt, cf);
    if (!cols) {
        free(wt);
        return 0;
    }
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int u = 0; u < units; u++)
        forward_unit(&pt, u, din, dout, wt, NULL, cols + cf * (size_t)omp_get_thread_num(), 1);
    free(wt);
    free(cols);
    return 1;
}

void mrt_conv2d_backward(const mrt_rt *rt, float *din, float *dweight, float *dbias,
                         const float *dout, const float *in, const float *weight, int B,
                         int Cin, int H, int W, int Cout, int k, int stride) {
    if (B <= 0 || H <= 0 || W <= 0 || Cout <= 0) return;
    conv_plan p = make_plan(B, Cin, H, W, Cout, k, stride);
    int nt = rt && rt->threads > 1 ? rt->threads : 1;
    size_t HWo = (size_t)p.Ho * p.Wo, HW = (size_t)H * W;
    int units = B * p.nbands;

    if (dbias) {
        /* Per channel, a double sum in a fixed order (b, then pixels). */
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int co = 0; co < Cout; co++) {
            double s = 0.0;
            for (int b = 0; b < B; b++) {
                const float *g = dout + ((size_t)b * Cout + co) * HWo;
                for (size_t i = 0; i < HWo; i++) s += g[i];
            }
            dbias[co] += (float)s;
        }
    }
    if ((!dweight && !din) || Cin <= 0) return;
    /* 3x3 stride 1: din as a convolution of dout (see din_by_flipped_conv). */
    if (din && k == 3 && stride == 1 && din_by_flipped_conv(nt, din, dout, weight, B, Cin, H, W,
                                                            Cout))
        din = NULL;
    if (!dweight && !din) return;

    size_t cf = col_floats(&p);
    int ntc = nt < units ? nt : units;
    float *cols = alloc_per_thread(ntc, cf);
    int groups = units < DW_GROUPS ? units : DW_GROUPS;
    size_t wsize = (size_t)Cout * p.K;
    float *slots = dweight ? malloc(sizeof(float) * wsize * (size_t)groups) : NULL;
    if (!cols || (dweight && !slots)) {
        free(cols);
        free(slots);
        conv_backward_direct(din, dweight, NULL, dout, in, weight, &p);
        return;
    }

    if (dweight) {
        /* slot[g] = sum over the units of group g of dout_span . col_span^T. */
        int ntg = ntc < groups ? ntc : groups;
#pragma omp parallel for num_threads(ntg) schedule(dynamic, 1)
        for (int g = 0; g < groups; g++) {
            float *col = cols + cf * (size_t)omp_get_thread_num();
            float *slot = slots + wsize * (size_t)g;
            memset(slot, 0, sizeof(float) * wsize);
            int u0 = (int)((long)units * g / groups), u1 = (int)((long)units * (g + 1) / groups);
            for (int u = u0; u < u1; u++) {
                int b = u / p.nbands, r0, r1;
                band_rows(&p, u % p.nbands, &r0, &r1);
                const float *img = in + (size_t)b * Cin * HW;
                const float *go = dout + (size_t)b * Cout * HWo;
                for (int q = r0 * p.Wo, qend = r1 * p.Wo; q < qend; q += p.span) {
                    int n = qend - q < p.span ? qend - q : p.span;
                    const float *Bm = img + q;
                    int ldb = (int)HW;
                    if (!p.direct) {
                        im2col_span(&p, col, img, q, n);
                        Bm = col;
                        ldb = n;
                    }
                    mrt_sgemm_1t(false, true, Cout, p.K, n, 1.0f, go + q, (int)HWo, Bm, ldb,
                                 1.0f, slot, p.K);
                }
            }
        }
        /* Add the group sums in group order: independent of the thread count. */
#pragma omp parallel for num_threads(nt) schedule(static)
        for (size_t i = 0; i < wsize; i++) {
            double s = 0.0;
            for (int g = 0; g < groups; g++) s += slots[wsize * (size_t)g + i];
            dweight[i] += (float)s;
        }
    }

    if (din) {
        /* dcol = W^T . dout_span, then col2im. k = 1 bands touch only their
         * own rows, so one phase suffices; k = 3 runs even bands, then odd. */
        int phases = (k == 1 || p.nbands == 1) ? 1 : 2;
        for (int ph = 0; ph < phases; ph++) {
#pragma omp parallel for num_threads(ntc) schedule(dynamic, 1)
            for (int u = 0; u < units; u++) {
                int band = u % p.nbands;
                if (phases == 2 && band % 2 != ph) continue;
                float *col = cols + cf * (size_t)omp_get_thread_num();
                int b = u / p.nbands, r0, r1;
                band_rows(&p, band, &r0, &r1);
                float *dimg = din + (size_t)b * Cin * HW;
                const float *go = dout + (size_t)b * Cout * HWo;
                for (int q = r0 * p.Wo, qend = r1 * p.Wo; q < qend; q += p.span) {
                    int n = qend - q < p.span ? qend - q : p.span;
                    if (p.direct) {
                        /* din_span += W^T . dout_span straight into din. */
                        mrt_sgemm_1t(true, false, Cin, n, Cout, 1.0f, weight, Cin, go + q,
                                     (int)HWo, 1.0f, dimg + q, (int)HW);
                    } else {
                        mrt_sgemm_1t(true, false, p.K, n, Cout, 1.0f, weight, p.K, go + q,
                                     (int)HWo, 0.0f, col, n);
                        col2im_span(&p, dimg, col, q, n);
                    }
                }
            }
        }
    }
    free(cols);
    free(slots);
}

void mrt_conv2d_forward_naive(float *out, const float *in, const float *weight,
                              const float *bias, int B, int Cin, int H, int W, int Cout,
                              int k, int stride) {
    int Ho = mrt_conv2d_out_size(H, stride), Wo = mrt_conv2d_out_size(W, stride);
    int pad = k / 2;
    for (int b = 0; b < B; b++)
        for (int co = 0; co < Cout; co++)
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++) {
                    double s = bias ? bias[co] : 0.0;
                    for (int ci = 0; ci < Cin; ci++)
                        for (int ky = 0; ky < k; ky++) {
                            int iy = oy * stride - pad + ky;
                            if (iy < 0 || iy >= H) continue;
                            for (int kx = 0; kx < k; kx++) {
                                int ix = ox * stride - pad + kx;
                                if (ix < 0 || ix >= W) continue;
                                s += (double)in[(((size_t)b * Cin + ci) * H + iy) * W + ix] *
                                     weight[(((size_t)co * Cin + ci) * k + ky) * k + kx];
                            }
                        }
                    out[(((size_t)b * Cout + co) * Ho + oy) * Wo + ox] = (float)s;
                }
}

/* ------------------------------------------------------------- the maps */

void mrt_upsample2x_forward(float *out, const float *in, int B, int C, int H, int W) {
    size_t planes = (size_t)B * C;
    for (size_t pl = 0; pl < planes; pl++) {
        const float *src = in + pl * H * W;
        float *dst = out + pl * 4 * H * W;
        for (int y = 0; y < H; y++) {
            float *r0 = dst + (size_t)(2 * y) * 2 * W, *r1 = r0 + 2 * W;
            for (int x = 0; x < W; x++) {
                float v = src[(size_t)y * W + x];
                r0[2 * x] = r0[2 * x + 1] = v;
            }
            memcpy(r1, r0, sizeof(float) * 2 * (size_t)W);
        }
    }
}

void mrt_upsample2x_backward(float *din, const float *dout, int B, int C, int H, int W) {
    size_t planes = (size_t)B * C;
    for (size_t pl = 0; pl < planes; pl++) {
        float *d = din + pl * H * W;
        const float *g = dout + pl * 4 * H * W;
        for (int y = 0; y < H; y++) {
            const float *r0 = g + (size_t)(2 * y) * 2 * W, *r1 = r0 + 2 * W;
            for (int x = 0; x < W; x++)
                d[(size_t)y * W + x] += (r0[2 * x] + r0[2 * x + 1]) + (r1[2 * x] + r1[2 * x + 1]);
        }
    }
}

/* out[b, c, 2y+i, 2x+j] = in[b, 4c + 2i + j, y, x] (torch.nn.PixelShuffle(2)).
 * Planes are independent copies, spread over the threads. */
void mrt_pixelshuffle_forward(const mrt_rt *rt, float *out, const float *in, int B, int C, int H,
                              int W) {
    size_t HW = (size_t)H * W;
    int nt = rt && rt->threads > 1 ? rt->threads : 1;
    /* one output row at a time, interleaving its two source rows: the
     * writes are sequential (a stride-2 write per source plane was 2 % of a
     * decode) */
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int bc = 0; bc < B * C; bc++) {
        float *dst = out + (size_t)bc * 4 * HW;
        for (int i = 0; i < 2; i++) {
            const float *src0 = in + ((size_t)bc * 4 + 2 * i) * HW;
            const float *src1 = src0 + HW;
            for (int y = 0; y < H; y++) {
                float *row = dst + (size_t)(2 * y + i) * 2 * W;
                const float *a = src0 + (size_t)y * W, *e = src1 + (size_t)y * W;
                for (int x = 0; x < W; x++) {
                    row[2 * x] = a[x];
                    row[2 * x + 1] = e[x];
                }
            }
        }
    }
}

void mrt_pixelshuffle_backward(const mrt_rt *rt, float *din, const float *dout, int B, int C,
                               int H, int W) {
    size_t HW = (size_t)H * W;
    int nt = rt && rt->threads > 1 ? rt->threads : 1;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int bc = 0; bc < B * C; bc++) {
        const float *g = dout + (size_t)bc * 4 * HW;
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++) {
                float *d = din + ((size_t)bc * 4 + 2 * i + j) * HW;
                for (int y = 0; y < H; y++) {
                    const float *row = g + (size_t)(2 * y + i) * 2 * W + j;
                    for (int x = 0; x < W; x++) d[(size_t)y * W + x] += row[2 * x];
                }
            }
    }
}

/*
 * Token t = (b*Hp + py)*Wp + px, feature f = (c*p + dy)*p + dx holds
 * img[b, c, py*p + dy, px*p + dx]. The four functions below walk the same
 * index pairs; only the direction of the copy (or accumulation) differs.
 */
#define PATCH_LOOP(BODY)                                                                 \
    do {                                                                                 \
        int Hp = H / p, Wp = W / p, F = C * p * p;                                       \
        for (int b = 0; b < B; b++)                                                      \
            for (int py = 0; py < Hp; py++)                                              \
                for (int px = 0; px < Wp; px++) {                                        \
                    size_t t = ((size_t)b * Hp + py) * Wp + px;                          \
                    for (int c = 0; c < C; c++)                                          \
                        for (int dy = 0; dy < p; dy++) {                                 \
                            size_t ti = t * F + (size_t)(c * p + dy) * p;                \
                            size_t ii = (((size_t)b * C + c) * H + (size_t)py * p + dy) * W + \
                                        (size_t)px * p;                                  \
                            for (int dx = 0; dx < p; dx++) { BODY; }                     \
                        }                                                                \
                }                                                                        \
    } while (0)

void mrt_patchify_forward(float *tokens, const float *img, int B, int C, int H, int W, int p) {
    PATCH_LOOP(tokens[ti + dx] = img[ii + dx]);
}

void mrt_patchify_backward(float *dimg, const float *dtokens, int B, int C, int H, int W, int p) {
    PATCH_LOOP(dimg[ii + dx] += dtokens[ti + dx]);
}

void mrt_unpatchify_forward(float *img, const float *tokens, int B, int C, int H, int W, int p) {
    PATCH_LOOP(img[ii + dx] = tokens[ti + dx]);
}

void mrt_unpatchify_backward(float *dtokens, const float *dimg, int B, int C, int H, int W,
                             int p) {
    PATCH_LOOP(dtokens[ti + dx] += dimg[ii + dx]);
}
