/*
 * runtime.h -- the neural-network runtime under libmrt.
 *
 * Plain forward/backward pairs over flat float32 arrays, in the style of
 * llm.c: every layer is a pair of functions, the caller owns all memory,
 * nothing is allocated behind its back except bounded scratch inside a call.
 *
 * Conventions (every op follows them; tests rely on them):
 *   - Token activations are row-major (N, C): N rows (tokens, possibly
 *     several images' worth), C channels contiguous.
 *   - Images / feature maps are NCHW: (B, C, H, W), W contiguous.
 *   - A linear weight is (C_out, C_in) like PyTorch: out = in . W^T + b.
 *   - A conv weight is (C_out, C_in, kh, kw).
 *   - backward functions ACCUMULATE (+=) into every gradient buffer, so a
 *     tensor used twice (residuals) simply receives two contributions; the
 *     caller zeroes gradients once per step.  A NULL gradient pointer means
 *     "not needed" and that part of the work is skipped.
 *   - Ops that do real work per element take an mrt_rt (the thread count for
 *     this call); cheap, memory-bound ones (add, mul, Q-Shift) run serially.
 *     BLIS is only ever called through mrt_sgemm (gemm.c) with a per-call
 *     rntm_t, so a host process's global BLIS settings are never touched.
 *
 * Nothing here is used to produce entropy-coder probabilities: BLIS and
 * OpenMP results may differ across machines in the last bits (DESIGN.md §5).
 */
#ifndef MRT_RUNTIME_H
#define MRT_RUNTIME_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* Per-call runtime settings. */
typedef struct mrt_rt {
    int threads; /* >= 1 */
} mrt_rt;

/* Thread count when the caller asks for "default" (0): MRT_THREADS from the
 * environment if it is a positive integer, otherwise the number of cores. */
int mrt_default_threads(void);
/* An mrt_rt with `threads` threads (0 = mrt_default_threads()). */
mrt_rt mrt_rt_make(int threads);

/* ------------------------------------------------------------------ GEMM */

/* Row-major C(M,N) = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T.
 * lda/ldb/ldc are row strides of the matrices as stored. Splits the work
 * over rt->threads in the way that is fastest for the shape (gemm.c). */
void mrt_sgemm(const mrt_rt *rt, bool trans_a, bool trans_b, int M, int N, int K,
               float alpha, const float *A, int lda, const float *B, int ldb,
               float beta, float *C, int ldc);
/* The same product with a plain triple loop: the reference twin in tests. */
void mrt_sgemm_naive(bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta,
                     float *C, int ldc);
/* Single-threaded BLIS call, for use inside an already-parallel region. */
void mrt_sgemm_1t(bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                  const float *A, int lda, const float *B, int ldb, float beta,
                  float *C, int ldc);
/* Kernel family BLIS picked at run time (e.g. "zen3") and its version. */
const char *mrt_blis_arch(void);
const char *mrt_blis_version(void);

/* ---------------------------------------------------------------- linear */

/* out(N,Cout) = in(N,Cin) . W(Cout,Cin)^T + bias(Cout); bias may be NULL. */
void mrt_linear_forward(const mrt_rt *rt, float *out, const float *in, const float *weight,
                        const float *bias, int N, int Cin, int Cout);
void mrt_linear_backward(const mrt_rt *rt, float *din, float *dweight, float *dbias,
                         const float *dout, const float *in, const float *weight,
                         int N, int Cin, int Cout);

/* ----------------------------------------------------- normalisation etc. */

#define MRT_LN_EPS 1e-5f
/* LayerNorm over the last dim. mean/rstd (N each) are saved for backward. */
void mrt_layernorm_forward(const mrt_rt *rt, float *out, float *mean, float *rstd, const float *in,
                           const float *gamma, const float *beta, int N, int C);
void mrt_layernorm_backward(const mrt_rt *rt, float *din, float *dgamma, float *dbeta, const float *dout,
                            const float *in, const float *gamma, const float *mean,
                            const float *rstd, int N, int C);

/* Element-wise activations over n values. GELU is the tanh approximation
 * (PyTorch gelu(approximate="tanh")). */
void mrt_gelu_forward(const mrt_rt *rt, float *out, const float *in, size_t n);
void mrt_gelu_backward(const mrt_rt *rt, float *din, const float *dout, const float *in, size_t n);
/* relu(x)^2, the RWKV channel-mix activation. */
void mrt_relu2_forward(const mrt_rt *rt, float *out, const float *in, size_t n);
void mrt_relu2_backward(const mrt_rt *rt, float *din, const float *dout, const float *in, size_t n);
void mrt_sigmoid_forward(const mrt_rt *rt, float *out, const float *in, size_t n);
/* Uses the saved output y = sigmoid(x): dx += dout * y * (1 - y). */
void mrt_sigmoid_backward(const mrt_rt *rt, float *din, const float *dout, const float *out, size_t n);
void mrt_relu_forward(const mrt_rt *rt, float *out, const float *in, size_t n);
void mrt_relu_backward(const mrt_rt *rt, float *din, const float *dout, const float *in, size_t n);

/* Row-wise softmax over the last dim of (N, C). Backward uses the output. */
void mrt_softmax_forward(const mrt_rt *rt, float *out, const float *in, int N, int C);
void mrt_softmax_backward(const mrt_rt *rt, float *din, const float *dout, const float *out, int N, int C);

/* out = a + b (out may alias a or b). Backward is "dout flows to both":
 * mrt_add_inplace(da, dout) and mrt_add_inplace(db, dout). */
void mrt_add(float *out, const float *a, const float *b, size_t n);
void mrt_add_inplace(float *acc, const float *x, size_t n);
/* out = a * b element-wise; backward da += dout*b, db += dout*a. */
void mrt_mul_forward(float *out, const float *a, const float *b, size_t n);
void mrt_mul_backward(float *da, float *db, const float *dout, const float *a,
                      const float *b, size_t n);

/* ------------------------------------------------------------ RWKV parts */

/* Q-Shift on a (B, Hg, Wg) token grid with C channels, tokens row-major in
 * the grid: channel c belongs to quarter q = 4c/C, and quarter 0 takes its
 * value from the left neighbour, 1 from the right, 2 from the one above,
 * 3 from the one below; zero where that neighbour is off the grid. */
void mrt_qshift_forward(float *out, const float *in, int B, int Hg, int Wg, int C);
void mrt_qshift_backward(float *din, const float *dout, int B, int Hg, int Wg, int C);

/* Token mix: out = mu*x + (1-mu)*xs, with mu per channel (C). */
void mrt_tokenmix_forward(const mrt_rt *rt, float *out, const float *x, const float *xs, const float *mu,
                          int N, int C);
void mrt_tokenmix_backward(const mrt_rt *rt, float *dx, float *dxs, float *dmu, const float *dout,
                           const float *x, const float *xs, const float *mu, int N, int C);

/* Bidirectional WKV of Vision-RWKV (DESIGN.md §3.2) over B sequences of T
 * tokens with C channels; k, v, out are (B*T, C); w, u are per channel.
 * O(T*C) with two scans; the backward recomputes the scans. */
void mrt_biwkv_forward(const mrt_rt *rt, float *out, const float *k, const float *v,
                       const float *w, const float *u, int B, int T, int C);
void mrt_biwkv_backward(const mrt_rt *rt, float *dk, float *dv, float *dw, float *du,
                        const float *dout, const float *k, const float *v,
                        const float *w, const float *u, int B, int T, int C);
/* The direct O(T^2) formula: the reference twin in tests. */
void mrt_biwkv_forward_naive(float *out, const float *k, const float *v, const float *w,
                             const float *u, int B, int T, int C);

/* ------------------------------------------------------ window attention */

/* Multi-head self-attention inside windows. qkv is (nwin*n, 3*D): for token
 * i of window w, row w*n+i holds [q | k | v], each D = heads*hd channels.
 * out is (nwin*n, D) before the output projection. att (nwin, heads, n, n)
 * keeps the softmax probabilities for backward. Scale 1/sqrt(hd). */
void mrt_attention_forward(const mrt_rt *rt, float *out, float *att, const float *qkv,
                           int nwin, int n, int D, int heads);
void mrt_attention_backward(const mrt_rt *rt, float *dqkv, const float *dout,
                            const float *qkv, const float *att, int nwin, int n, int D,
                            int heads);
void mrt_attention_forward_naive(float *out, const float *qkv, int nwin, int n, int D,
                                 int heads);

/* ------------------------------------------------------ convolution, maps */

/* 2-D convolution, NCHW, weight (Cout, Cin, k, k), k in {1, 3}, stride in
 * {1, 2}, zero padding k/2, so Hout = ceil(H/stride). bias may be NULL. */
void mrt_conv2d_forward(const mrt_rt *rt, float *out, const float *in, const float *weight,
                        const float *bias, int B, int Cin, int H, int W, int Cout, int k,
                        int stride);
void mrt_conv2d_backward(const mrt_rt *rt, float *din, float *dweight, float *dbias,
                         const float *dout, const float *in, const float *weight, int B,
                         int Cin, int H, int W, int Cout, int k, int stride);
void mrt_conv2d_forward_naive(float *out, const float *in, const float *weight,
                              const float *bias, int B, int Cin, int H, int W, int Cout,
                              int k, int stride);
static inline int mrt_conv2d_out_size(int size, int stride) { return (size + stride - 1) / stride; }

/* Nearest-neighbour 2x upsampling (B, C, H, W) -> (B, C, 2H, 2W). */
void mrt_upsample2x_forward(float *out, const float *in, int B, int C, int H, int W);
void mrt_upsample2x_backward(float *din, const float *dout, int B, int C, int H, int W);
/* Pixel shuffle r=2: (B, 4C, H, W) -> (B, C, 2H, 2W), PyTorch's channel order. */
void mrt_pixelshuffle_forward(const mrt_rt *rt, float *out, const float *in, int B, int C, int H,
                              int W);
void mrt_pixelshuffle_backward(const mrt_rt *rt, float *din, const float *dout, int B, int C,
                               int H, int W);

/* Patchify: image (B, C, H, W) with H, W multiples of p -> tokens
 * (B*(H/p)*(W/p), C*p*p), patches in raster order, each flattened as
 * (c, dy, dx) -- the layout of a PyTorch Conv2d(kernel=stride=p) weight.
 * Patch embed = patchify + linear; unembed = linear + unpatchify. */
void mrt_patchify_forward(float *tokens, const float *img, int B, int C, int H, int W, int p);
void mrt_patchify_backward(float *dimg, const float *dtokens, int B, int C, int H, int W, int p);
void mrt_unpatchify_forward(float *img, const float *tokens, int B, int C, int H, int W, int p);
void mrt_unpatchify_backward(float *dtokens, const float *dimg, int B, int C, int H, int W, int p);

/* ---------------------------------------------------------------- losses */

/* Each returns the loss (mean over all n values) and, if dx is non-NULL,
 * accumulates scale * d(loss)/dx into dx. y is the target. */
float mrt_l1_loss(float *dx, const float *x, const float *y, size_t n, float scale);
float mrt_mse_loss(float *dx, const float *x, const float *y, size_t n, float scale);

/* MS-SSIM of x against y, images (B, C, H, W) with values in [0, 1]:
 * 11-tap Gaussian (sigma 1.5) "valid" filtering, C1 = 0.01^2, C2 = 0.03^2,
 * 2x2 average pooling between scales (odd trailing row/column dropped),
 * weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333). Images too small for 5
 * scales use the first S scales whose side stays >= 11, weights renormalised
 * to sum to 1; images smaller than 11x11 are compared with S = 1 on a window
 * shrunk to fit. Returns the mean over (B, C) of MS-SSIM; if dx is non-NULL,
 * accumulates scale * d(MS-SSIM)/dx into dx.
 * Precisely, per (b, c) plane: scale j is floor(H/2^j) x floor(W/2^j); S is
 * the number of j < 5 with floor(min(H, W)/2^j) >= 11 (at least 1). The
 * window has ws = 11 taps, or if min(H, W) < 11 the largest odd ws <=
 * min(H, W); tap i = 0..ws-1 is exp(-(i - floor(ws/2))^2 / 4.5) divided by
 * the taps' sum (pytorch_msssim's _fspecial_gauss_1d(ws, 1.5)). At scale j,
 * cs_j and ssim_j are the means over the valid pixels of the maps
 * cs = (2 sxy + C2)/(sx2 + sy2 + C2) and l * cs, l = (2 mx my + C1)/(mx^2 +
 * my^2 + C1), where mx = G*x, sx2 = G*(x^2) - mx^2, sxy = G*(xy) - mx my.
 * MS-SSIM = prod_{j<S-1} max(cs_j, 1e-6)^w_j * max(ssim_{S-1}, 1e-6)^w_{S-1};
 * the clamp keeps value and gradient finite (zero gradient through a clamped
 * factor). w = the five weights as given when S = 5 (they sum to 1.0001),
 * else the first S divided by their sum. (pytorch_msssim differs: it pads odd
 * sizes before pooling and clamps at 0.) The gradient is exact up to float
 * rounding, w.r.t. x only: y is the target. Returns 1 when there is nothing
 * to compare (B*C, H or W is 0) and NaN, dx untouched, if scratch memory
 * (about 14*H*W floats per thread) cannot be had. */
float mrt_msssim(const mrt_rt *rt, float *dx, const float *x, const float *y, int B, int C,
                 int H, int W, float scale);

/* ------------------------------------------------------------- optimiser */

typedef struct mrt_adamw {
    float lr, beta1, beta2, eps, weight_decay;
} mrt_adamw;

/* One AdamW step (decoupled weight decay, bias-corrected moments); step
 * counts from 1. m and v are the moment buffers (zero at step 1). */
void mrt_adamw_update(const mrt_adamw *opt, float *param, const float *grad, float *m,
                      float *v, size_t n, long step);
/* Scales grad so its global L2 norm is at most max_norm; returns the norm
 * before clipping. */
float mrt_clip_grad_norm(float *grad, size_t n, float max_norm);

/* ------------------------------------------------------- random numbers */

/* xoshiro256** seeded through splitmix64: the same seed gives the same
 * numbers on every machine. The state is 4 words so it can be checkpointed. */
typedef struct mrt_rng {
    uint64_t s[4];
} mrt_rng;

void mrt_rng_seed(mrt_rng *rng, uint64_t seed);
uint64_t mrt_rng_next(mrt_rng *rng);
/* Uniform in [0, 1) with 24 random bits. */
float mrt_rng_uniform(mrt_rng *rng);
/* Standard normal (Box-Muller). */
float mrt_rng_normal(mrt_rng *rng);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint32_t mrt_rng_below(mrt_rng *rng, uint32_t n);

/* w[i] ~ U(-bound, bound); the PyTorch-style linear/conv init uses
 * bound = 1/sqrt(fan_in). */
void mrt_init_uniform(mrt_rng *rng, float *w, size_t n, float bound);
void mrt_init_normal(mrt_rng *rng, float *w, size_t n, float std);
void mrt_fill(float *w, size_t n, float value);

#endif /* MRT_RUNTIME_H */
