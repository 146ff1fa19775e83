/*
 * optim.c -- AdamW (Loshchilov & Hutter) and global gradient-norm clipping.
 *
 * Matches torch.optim.AdamW: the decay multiplies the parameter by
 * (1 - lr*wd) before the Adam step, moments are bias-corrected.
 */
#include <math.h>

#include "runtime.h"

void mrt_adamw_update(const mrt_adamw *opt, float *param, const float *grad, float *m, float *v,
                      size_t n, long step) {
    double bc1 = 1.0 - pow(opt->beta1, (double)step);
    double bc2 = 1.0 - pow(opt->beta2, (double)step);
    float step_size = (float)(opt->lr / bc1);
    float inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    float decay = 1.0f - opt->lr * opt->weight_decay;
    for (size_t i = 0; i < n; i++) {
        float g = grad[i];
        m[i] = opt->beta1 * m[i] + (1.0f - opt->beta1) * g;
        v[i] = opt->beta2 * v[i] + (1.0f - opt->beta2) * g * g;
        float denom = sqrtf(v[i]) * inv_sqrt_bc2 + opt->eps;
        param[i] = param[i] * decay - step_size * m[i] / denom;
    }
}

float mrt_clip_grad_norm(float *grad, size_t n, float max_norm) {
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) ss += (double)grad[i] * grad[i];
    float norm = (float)sqrt(ss);
    /* Same rule as torch.nn.utils.clip_grad_norm_: scale by max/(norm+1e-6)
     * when that factor is below 1. */
    float coef = max_norm / (norm + 1e-6f);
    if (coef < 1.0f)
        for (size_t i = 0; i < n; i++) grad[i] *= coef;
    return norm;
}
