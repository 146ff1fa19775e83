/*
 * rng.c -- seeded random numbers and parameter initialisation.
 *
 * xoshiro256** (Blackman & Vigna) seeded through splitmix64. Integer-only
 * state updates, so a seed gives the same stream on every machine; the
 * 4-word state is what a training checkpoint saves.
 */
#include <math.h>

#include "runtime.h"

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void mrt_rng_seed(mrt_rng *rng, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t mrt_rng_next(mrt_rng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float mrt_rng_uniform(mrt_rng *rng) {
    return (float)(mrt_rng_next(rng) >> 40) * (1.0f / 16777216.0f);
}

float mrt_rng_normal(mrt_rng *rng) {
    /* Box-Muller on (0, 1] so log() never sees 0. */
    double u1 = ((double)(mrt_rng_next(rng) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    double u2 = (double)(mrt_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint32_t mrt_rng_below(mrt_rng *rng, uint32_t n) {
    /* Lemire's multiply-shift with rejection: no modulo bias. */
    uint64_t m = (uint64_t)(uint32_t)(mrt_rng_next(rng) >> 32) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)(uint32_t)(mrt_rng_next(rng) >> 32) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

void mrt_init_uniform(mrt_rng *rng, float *w, size_t n, float bound) {
    for (size_t i = 0; i < n; i++) w[i] = bound * (2.0f * mrt_rng_uniform(rng) - 1.0f);
}

void mrt_init_normal(mrt_rng *rng, float *w, size_t n, float std) {
    for (size_t i = 0; i < n; i++) w[i] = std * mrt_rng_normal(rng);
}

void mrt_fill(float *w, size_t n, float value) {
    for (size_t i = 0; i < n; i++) w[i] = value;
}
