/*
 * ctxmodel_grad.c -- the float context model and the rate it assigns (see
 * ctxmodel_grad.h). Training-side only: it may use libm; the codec never calls it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ctxmodel_grad.h"
#include "entropy.h"

#define SIGMA_MIN 0.11
#define SIGMA_MAX 64.0

double mrt_ctx_sigma(double s) {
    s = s < 0 ? 0 : s > MRT_GAUSS_NSCALES - 1 ? MRT_GAUSS_NSCALES - 1 : s;
    return SIGMA_MIN * exp(s * log(SIGMA_MAX / SIGMA_MIN) / (MRT_GAUSS_NSCALES - 1));
}

static size_t step_floats(const mrt_config *cfg, int g) {
    size_t K = (size_t)mrt_ctx_inputs(cfg), H = (size_t)cfg->ctx_hidden;
    size_t out = 2 * (size_t)cfg->ctx_group_size[g];
    return H * K + H + out * H + out;
}

size_t mrt_ctx_float_size(const mrt_config *cfg) {
    size_t n = 0;
    for (int g = 0; g < cfg->ctx_groups; g++) n += 2 * step_floats(cfg, g);
    return n;
}

void mrt_ctx_float_bind(const mrt_config *cfg, mrt_ctx_float *f, float *base) {
    size_t K = (size_t)mrt_ctx_inputs(cfg), H = (size_t)cfg->ctx_hidden;
    memset(f, 0, sizeof *f);
    for (int g = 0; g < cfg->ctx_groups; g++)
        for (int parity = 0; parity < 2; parity++) {
            size_t out = 2 * (size_t)cfg->ctx_group_size[g];
            mrt_ctx_float_step *s = &f->step[g][parity];
            s->w1 = base, base += H * K;
            s->b1 = base, base += H;
            s->w2 = base, base += out * H;
            s->b2 = base, base += out;
        }
}

static void convert(const mrt_config *cfg, mrt_ctx_float_step *fs, mrt_ctx_step *is, int g,
                    bool to_int) {
    size_t K = (size_t)mrt_ctx_inputs(cfg), H = (size_t)cfg->ctx_hidden;
    size_t out = 2 * (size_t)cfg->ctx_group_size[g];
    struct {
        float *f;
        int32_t *i;
        size_t n;
        double unit;
    } parts[4] = {{fs->w1, is->w1, H * K, 4096.0},
                  {fs->b1, is->b1, H, 65536.0},
                  {fs->w2, is->w2, out * H, 4096.0},
                  {fs->b2, is->b2, out, 65536.0}};
    for (int k = 0; k < 4; k++)
        for (size_t j = 0; j < parts[k].n; j++) {
            if (to_int) {
                double v = nearbyint((double)parts[k].f[j] * parts[k].unit);
                /* the loader's bound, biases included: an export it
                 * would refuse is useless */
                double lim = (double)MRT_CTX_WEIGHT_MAX;
                parts[k].i[j] = (int32_t)(v > lim ? lim : v < -lim ? -lim : v);
            } else {
                parts[k].f[j] = (float)(parts[k].i[j] / parts[k].unit);
            }
        }
}

void mrt_ctx_float_from_int(const mrt_config *cfg, const mrt_weights *w, mrt_ctx_float *f) {
    for (int g = 0; g < cfg->ctx_groups; g++)
        for (int parity = 0; parity < 2; parity++) {
            mrt_ctx_step is = w->ctx[g][parity];
            convert(cfg, &f->step[g][parity], &is, g, false);
        }
}

void mrt_ctx_float_to_int(const mrt_config *cfg, const mrt_ctx_float *f, mrt_weights *w) {
    for (int g = 0; g < cfg->ctx_groups; g++)
        for (int parity = 0; parity < 2; parity++) {
            mrt_ctx_float_step fs = f->step[g][parity];
            convert(cfg, &fs, &w->ctx[g][parity], g, true);
        }
}

static double phi_cdf(double x) { return 0.5 * erfc(-x / sqrt(2.0)); }
static double phi_pdf(double x) { return exp(-0.5 * x * x) / sqrt(2.0 * 3.141592653589793); }

double mrt_ctx_float_bits(const mrt_config *cfg, const mrt_ctx_float *f,
                          const mrt_latent_shape *sh, int images, const uint8_t *side_bits,
                          const float *y_noisy, float *dy, const mrt_ctx_float *df, float *mu_out,
                          float *s_out) {
    int K = mrt_ctx_inputs(cfg), H = cfg->ctx_hidden, L = cfg->latents, c = cfg->channels;
    int d = cfg->side_bits;
    double *in = malloc(sizeof(double) * K), *a1 = malloc(sizeof(double) * H);
    double *dh = malloc(sizeof(double) * H);
    int *src = malloc(sizeof(int) * K); /* which y value an input is, or -1 */
    double total = 0;
    double dlog = log(SIGMA_MAX / SIGMA_MIN) / (MRT_GAUSS_NSCALES - 1);
    if (!in || !a1 || !dh || !src) {
        free(in), free(a1), free(dh), free(src);
        return NAN;
    }
    size_t ngroups = (size_t)sh->ngx * sh->ngy;
    for (int img = 0; img < images; img++) {
        const float *y = y_noisy + (size_t)img * sh->ntokens * c;
        float *gy = dy ? dy + (size_t)img * sh->ntokens * c : NULL;
        const uint8_t *side = side_bits + (size_t)img * ngroups * d;
        int group_start = 0;
        for (int g = 0; g < cfg->ctx_groups; g++) {
            int gs = cfg->ctx_group_size[g], group_end = group_start + gs;
            for (int parity = 0; parity < 2; parity++) {
                const mrt_ctx_float_step *net = &f->step[g][parity];
                const mrt_ctx_float_step *dnet = df ? &df->step[g][parity] : NULL;
                for (int token = 0; token < sh->ntokens; token++) {
                    bool non_anchor = token % L != 0;
                    if (non_anchor != (parity == 1)) continue;
                    int win = token / L, wx = win % sh->nwx, wy = win / sh->nwx;
                    int group = (wy / 2) * sh->ngx + wx / 2, quadrant = (wy % 2) * 2 + wx % 2;
                    int k = 0;
                    for (int b = 0; b < d; b++, k++) {
                        in[k] = side[(size_t)group * d + b] ? 1.0 : -1.0;
                        src[k] = -1;
                    }
                    for (int q = 0; q < 4; q++, k++) {
                        in[k] = q == quadrant ? 1.0 : 0.0;
                        src[k] = -1;
                    }
                    for (int ch = 0; ch < c; ch++, k++) {
                        bool known = ch < group_start;
                        src[k] = known ? token * c + ch : -1;
                        in[k] = known ? y[(size_t)token * c + ch] : 0.0;
                    }
                    for (int ch = 0; ch < c; ch++, k++) {
                        bool known = non_anchor && ch < group_end;
                        src[k] = known ? win * L * c + ch : -1;
                        in[k] = known ? y[(size_t)win * L * c + ch] : 0.0;
                    }
                    for (int j = 0; j < H; j++) {
                        double acc = net->b1[j];
                        for (int i = 0; i < K; i++) acc += (double)net->w1[(size_t)j * K + i] * in[i];
                        a1[j] = acc;
                        dh[j] = 0;
                    }
                    for (int ch = 0; ch < gs; ch++) {
                        const float *wm = net->w2 + (size_t)ch * H, *ws = net->w2 + (size_t)(gs + ch) * H;
                        double mu = net->b2[ch], s = net->b2[gs + ch];
                        for (int j = 0; j < H; j++) {
                            double h = a1[j] > 0 ? a1[j] : 0;
                            mu += wm[j] * h;
                            s += ws[j] * h;
                        }
                        double sigma = mrt_ctx_sigma(s);
                        size_t vi = (size_t)token * c + group_start + ch;
                        double v = y[vi];
                        double hi = (v - mu + 0.5) / sigma, lo = (v - mu - 0.5) / sigma;
                        double p = phi_cdf(hi) - phi_cdf(lo);
                        if (p < 0) p = 0;
                        total += -log2(p + 1e-9);
                        if (mu_out) mu_out[(size_t)img * sh->ntokens * c + vi] = (float)mu;
                        if (s_out) s_out[(size_t)img * sh->ntokens * c + vi] = (float)s;
                        if (!gy && !dnet) continue;
                        double dbits_dp = -1.0 / ((p + 1e-9) * log(2.0));
                        double dp_dv = (phi_pdf(hi) - phi_pdf(lo)) / sigma;
                        double dp_dsigma = -(phi_pdf(hi) * hi - phi_pdf(lo) * lo) / sigma;
                        bool inside = s > 0 && s < MRT_GAUSS_NSCALES - 1;
                        double g_v = dbits_dp * dp_dv, g_mu = -g_v;
                        double g_s = inside ? dbits_dp * dp_dsigma * sigma * dlog : 0.0;
                        if (gy) gy[vi] += (float)g_v;
                        for (int j = 0; j < H; j++) {
                            double h = a1[j] > 0 ? a1[j] : 0;
                            dh[j] += wm[j] * g_mu + ws[j] * g_s;
                            if (dnet) {
                                dnet->w2[(size_t)ch * H + j] += (float)(g_mu * h);
                                dnet->w2[(size_t)(gs + ch) * H + j] += (float)(g_s * h);
                            }
                        }
                        if (dnet) {
                            dnet->b2[ch] += (float)g_mu;
                            dnet->b2[gs + ch] += (float)g_s;
                        }
                    }
                    if (!gy && !dnet) continue;
                    for (int j = 0; j < H; j++) {
                        if (a1[j] <= 0) continue;
                        double gj = dh[j];
                        if (dnet) dnet->b1[j] += (float)gj;
                        for (int i = 0; i < K; i++) {
                            if (dnet) dnet->w1[(size_t)j * K + i] += (float)(gj * in[i]);
                            if (gy && src[i] >= 0) gy[src[i]] += (float)(gj * net->w1[(size_t)j * K + i]);
                        }
                    }
                }
            }
            group_start = group_end;
        }
    }
    free(in), free(a1), free(dh), free(src);
    return total;
}
