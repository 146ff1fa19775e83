/*
 * entropy.c -- range coder, bypass bits and Gaussian conditional tables
 * (the rules are in entropy.h; the format is specified in BITSTREAM.md).
 *
 * The range coder is the classic carry-propagating design: a 32-bit
 * interval [low, low + range) kept in a 64-bit `low` so that an addition
 * can overflow into bit 32, a one-byte cache and a count of 0xFF bytes that
 * a later carry would turn into 0x00. Two details keep tiny streams tiny:
 * the first byte the textbook encoder writes (always 0) is never written,
 * and the flush writes only as many bytes as are needed to land inside the
 * final interval when the decoder pads the stream with zeros.
 *
 * The Gaussian tables are computed with +, -, *, / on doubles in a fixed
 * order -- our own exp() and erfc(), no libm -- then turned into integer
 * frequencies by an integer procedure, so the tables are bit-identical on
 * every machine, compiler and optimisation level (DESIGN.md §5).
 */
#include "entropy.h"

#include <float.h>
#include <math.h> /* log2, only in mrt_gauss_bits (statistics, not coding) */
#include <stdlib.h>
#include <string.h>

/* A double must be an IEEE binary64 evaluated at its own precision: x87's
 * 80-bit intermediates (FLT_EVAL_METHOD 2) would give other tables. */
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "entropy.c needs FLT_EVAL_METHOD == 0 (SSE2 doubles, not x87): the Gaussian tables would differ"
#endif
#if DBL_MANT_DIG != 53
#error "entropy.c needs IEEE binary64 doubles"
#endif
/* No fused multiply-add: a*b+c rounded once gives other tables. The build
 * passes -ffp-contract=off; this keeps clang honest if the file is ever
 * compiled on its own (GCC in -std=c11 mode does not contract). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define TOP (1u << 24) /* renormalise when range drops below this */

/* ===================================================== range coder: encoder */

mrt_status mrt_rc_encoder_init(mrt_rc_encoder *e) {
    memset(e, 0, sizeof *e);
    e->low = 0;
    e->range = 0xFFFFFFFFu;
    e->cache_is_virtual = 1;
    return MRT_OK;
}

static void put_byte(mrt_rc_encoder *e, uint8_t b) {
    if (e->out_of_memory) return;
    if (e->len == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 256;
        uint8_t *p = realloc(e->buf, cap);
        if (!p) {
            e->out_of_memory = 1;
            return;
        }
        e->buf = p;
        e->cap = cap;
    }
    e->buf[e->len++] = b;
}

/* Writes the cache and the pending 0xFF run, with the carry added. The
 * virtual cache stands for a leading 0 byte that is never written: the
 * whole code value is below 1.0, so no carry can ever reach it. */
static void emit_pending(mrt_rc_encoder *e, unsigned carry) {
    if (!e->cache_is_virtual) put_byte(e, (uint8_t)(e->cache + carry));
    for (; e->pending_ff; e->pending_ff--) put_byte(e, (uint8_t)(0xFFu + carry));
}

/* Moves the top byte of the 32-bit window out. A byte below 0xFF (with no
 * carry in flight) is settled except for a carry from below, so it becomes
 * the new cache and everything before it is written; a 0xFF byte may still
 * turn into 0x00 by a carry, so it is only counted. */
static void shift_low(mrt_rc_encoder *e) {
    if (e->low < 0xFF000000u || e->low > 0xFFFFFFFFu) {
        emit_pending(e, (unsigned)(e->low >> 32));
        e->cache = (uint8_t)(e->low >> 24);
        e->cache_is_virtual = 0;
    } else {
        e->pending_ff++;
    }
    e->low = (e->low & 0x00FFFFFFu) << 8;
}

static void enc_normalize(mrt_rc_encoder *e) {
    while (e->range < TOP) {
        e->range <<= 8;
        shift_low(e);
    }
}

void mrt_rc_encode(mrt_rc_encoder *e, const uint32_t *cdf, int nsym, int symbol) {
    uint32_t r = e->range >> MRT_RC_PRECISION; /* >= 2^8 since range >= 2^24 */
    e->low += (uint64_t)r * cdf[symbol];
    if (symbol == nsym - 1)
        e->range -= r * cdf[symbol]; /* the last symbol also takes the rounding remainder */
    else
        e->range = r * (cdf[symbol + 1] - cdf[symbol]);
    enc_normalize(e);
}

void mrt_rc_encode_bits(mrt_rc_encoder *e, uint32_t value, int nbits) {
    if (nbits <= 0) return;
    if (nbits > 16) { /* at most 16 at a time keeps range >= 2^8 */
        mrt_rc_encode_bits(e, value >> 16, nbits - 16);
        nbits = 16;
    }
    value &= (1u << nbits) - 1;
    e->range >>= nbits;
    e->low += (uint64_t)e->range * value;
    enc_normalize(e);
}

size_t mrt_rc_encoder_size_bound(const mrt_rc_encoder *e) {
    return e->len + (e->cache_is_virtual ? 0 : 1) + e->pending_ff + 4;
}

mrt_status mrt_rc_encoder_finish(mrt_rc_encoder *e, uint8_t **out, size_t *len) {
    /* Pick the value v in [low, low + range) with the most trailing zero
     * bytes: the decoder reads zeros past the end, so only v's leading
     * k bytes need writing. k = 4 (v = low) always works. */
    int k;
    uint64_t v = e->low;
    for (k = 0; k < 4; k++) {
        uint64_t grain = (uint64_t)1 << (32 - 8 * k);
        uint64_t up = (e->low + grain - 1) & ~(grain - 1);
        if (up < e->low + e->range) {
            v = up;
            break;
        }
    }
    e->low = v;
    for (int i = 0; i < k; i++) shift_low(e);
    /* What is left of low is 0, or exactly the carry (k = 0, v = 2^32). */
    emit_pending(e, (unsigned)(e->low >> 32));

    mrt_status st = MRT_OK;
    if (!e->out_of_memory && !e->buf) {
        e->buf = malloc(1); /* a valid pointer even for an empty stream */
        if (!e->buf) e->out_of_memory = 1;
    }
    if (e->out_of_memory) {
        free(e->buf);
        *out = NULL;
        *len = 0;
        st = MRT_ERR_NOMEM;
    } else {
        *out = e->buf;
        *len = e->len;
    }
    e->buf = NULL;
    e->len = e->cap = 0;
    mrt_rc_encoder_init(e);
    return st;
}

void mrt_rc_encoder_free(mrt_rc_encoder *e) {
    free(e->buf);
    mrt_rc_encoder_init(e);
}

/* ===================================================== range coder: decoder */

/* The next byte, or 0 past the end (counted in pos so overruns show). */
static uint8_t next_byte(mrt_rc_decoder *d) {
    uint8_t b = d->pos < d->len ? d->data[d->pos] : 0;
    if (d->pos != SIZE_MAX) d->pos++;
    return b;
}

void mrt_rc_decoder_init(mrt_rc_decoder *d, const uint8_t *data, size_t len) {
    d->data = data;
    d->len = data ? len : 0;
    d->pos = 0;
    d->invalid = 0;
    d->range = 0xFFFFFFFFu;
    d->code = 0;
    for (int i = 0; i < 4; i++) d->code = (d->code << 8) | next_byte(d);
}

static void dec_normalize(mrt_rc_decoder *d) {
    while (d->range < TOP) {
        d->range <<= 8;
        d->code = (d->code << 8) | next_byte(d);
    }
}

int mrt_rc_decode(mrt_rc_decoder *d, const uint32_t *cdf, int nsym) {
    uint32_t r = d->range >> MRT_RC_PRECISION;
    /* In a valid stream code < range, so q < 2^16 except in the last
     * symbol's remainder; hostile data can give anything, and the clamp
     * maps it to the last symbol. */
    uint32_t q = d->code / r;
    if (q >= MRT_RC_TOTAL) q = MRT_RC_TOTAL - 1;
    /* Largest s with cdf[s] <= q: cdf[0] = 0 <= q < cdf[nsym]. */
    int lo = 0, hi = nsym;
    while (hi - lo > 1) {
        int mid = lo + (hi - lo) / 2;
        if (cdf[mid] <= q)
            lo = mid;
        else
            hi = mid;
    }
    d->code -= r * cdf[lo];
    if (lo == nsym - 1)
        d->range -= r * cdf[lo];
    else
        d->range = r * (cdf[lo + 1] - cdf[lo]);
    dec_normalize(d);
    return lo;
}

uint32_t mrt_rc_decode_bits(mrt_rc_decoder *d, int nbits) {
    if (nbits <= 0) return 0;
    uint32_t high = 0;
    if (nbits > 16) {
        high = mrt_rc_decode_bits(d, nbits - 16) << 16;
        nbits = 16;
    }
    d->range >>= nbits;
    uint32_t q = d->code / d->range;
    uint32_t maxq = (1u << nbits) - 1;
    if (q > maxq) q = maxq; /* only hostile data gets here */
    d->code -= q * d->range;
    dec_normalize(d);
    return high | q;
}

int mrt_rc_decoder_overrun(const mrt_rc_decoder *d) {
    return d->pos > d->len && d->pos - d->len > MRT_RC_MAX_IMPLICIT_ZEROS;
}

int mrt_rc_decoder_consistent(const mrt_rc_decoder *d) {
    return d->pos >= d->len && !mrt_rc_decoder_overrun(d) && !d->invalid;
}

/* ========================================= deterministic normal distribution */

/* Constants as decimal literals; every compiler converts them to the same
 * double (correctly rounded). LN2_HI has its low 21 bits zero so that
 * k * LN2_HI is exact for |k| < 2^21 (Cody-Waite range reduction). */
#define LOG2_E 1.4426950408889634074
#define LN2_HI 6.93147180369123816490e-01
#define LN2_LO 1.90821492927058770002e-10
#define INV_SQRT2 0.70710678118654752440
#define INV_SQRT_PI 0.56418958354775628695
#define TWO_OVER_SQRT_PI 1.12837916709551257390

/* e^x for -700 < x <= 0, else 0 below: x = k ln2 + r, |r| <= ln2/2, e^r by
 * its Taylor series to r^14 (error < 1e-17), times 2^k built from its bits
 * (exact: the result stays a normal double, so flush-to-zero modes or
 * subnormal handling cannot change it). */
static double det_exp(double x) {
    if (!(x > -700.0)) return 0.0;
    double kd = x * LOG2_E;
    int k = (int)(kd < 0 ? kd - 0.5 : kd + 0.5); /* round to nearest */
    double r = (x - (double)k * LN2_HI) - (double)k * LN2_LO;
    double t = 1.0;
    for (int n = 14; n >= 1; n--) t = 1.0 + r * t / (double)n;
    uint64_t bits = (uint64_t)(1023 + k) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return t * scale;
}

/* erfc(z) for z >= 0. Below 2.5: 1 - erf(z) with the all-positive series
 * erf(z) = 2/sqrt(pi) e^{-z^2} sum_n (2z^2)^n z / (1*3*...*(2n+1)), which
 * has no cancellation. From 2.5: the continued fraction
 * erfc(z) = e^{-z^2} / sqrt(pi) / (z + (1/2)/(z + (2/2)/(z + (3/2)/(z + ...))))
 * evaluated bottom-up from a fixed depth of 60. Past 26 the value is below
 * 1e-295 and is returned as 0 (keeps every intermediate a normal double). */
static double det_erfc(double z) {
    if (z >= 26.0) return 0.0;
    double z2 = z * z;
    if (z < 2.5) {
        double term = z, sum = z;
        for (int n = 1; n < 200 && term > sum * 1e-17; n++) {
            term = term * (2.0 * z2) / (double)(2 * n + 1);
            sum = sum + term;
        }
        return 1.0 - TWO_OVER_SQRT_PI * det_exp(-z2) * sum;
    }
    double f = z;
    for (int n = 60; n >= 1; n--) f = z + ((double)n * 0.5) / f;
    return INV_SQRT_PI * det_exp(-z2) / f;
}

/* Upper tail Q(x) = 1 - Phi(x) for x >= 0, computed directly so that small
 * tail masses keep their relative accuracy. */
static double upper_tail(double x) { return 0.5 * det_erfc(x * INV_SQRT2); }

double mrt_gauss_phi(double x) {
    if (x < 0) return upper_tail(-x);
    return 1.0 - upper_tail(x);
}

/* ================================================== Gaussian scale tables */

const double mrt_gauss_scales[MRT_GAUSS_NSCALES] = {
    0.11,    0.121697, 0.134637, 0.148953, 0.164791, 0.182314, 0.2017,   0.223147,
    0.246875, 0.273126, 0.302168, 0.334298, 0.369844, 0.409171, 0.452678, 0.500813,
    0.554065, 0.61298,  0.67816,  0.75027,  0.830047, 0.918308, 1.01595,  1.12398,
    1.2435,   1.37572,  1.522,    1.68384,  1.86289,  2.06097,  2.28012,  2.52257,
    2.7908,   3.08755,  3.41586,  3.77908,  4.18091,  4.62548,  5.11732,  5.66145,
    6.26344,  6.92945,  7.66627,  8.48144,  9.38329,  10.381,   11.4849,  12.7061,
    14.0572,  15.5519,  17.2055,  19.035,   21.0591,  23.2983,  25.7757,  28.5165,
    31.5487,  34.9033,  38.6147,  42.7207,  47.2632,  52.2888,  57.8488,  64.0,
};

/* R_s = max(1, ceil(5 sigma_s)); ceil by integer compare, no libm. */
static int32_t table_radius(double sigma) {
    double x = (double)MRT_GAUSS_TAIL_SIGMAS * sigma;
    int32_t r = (int32_t)x; /* x > 0: truncation is floor */
    if ((double)r < x) r++;
    return r < 1 ? 1 : r;
}

typedef struct remainder_rank {
    double rem;
    int index;
} remainder_rank;

/* Larger remainder first, then lower index: a strict total order, so
 * qsort's result does not depend on its algorithm. */
static int by_remainder_desc(const void *pa, const void *pb) {
    const remainder_rank *a = pa, *b = pb;
    if (a->rem != b->rem) return a->rem > b->rem ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Quantises probabilities p[0..n) (summing to ~1) to integer frequencies
 * summing to exactly MRT_RC_TOTAL, each >= 1: every symbol gets 1, the
 * other TOTAL - n units are shared in proportion to p (floor), and the few
 * units the floors lost go one each to the largest remainders. */
static int quantize_frequencies(const double *p, int n, uint32_t *freq) {
    remainder_rank *rank = malloc((size_t)n * sizeof *rank);
    if (!rank) return -1;
    double spread = (double)(MRT_RC_TOTAL - (uint32_t)n);
    int64_t sum = 0;
    for (int i = 0; i < n; i++) {
        double x = p[i] * spread;
        uint32_t f = (uint32_t)x; /* x >= 0: truncation is floor */
        freq[i] = 1 + f;
        rank[i].rem = x - (double)f;
        rank[i].index = i;
        sum += freq[i];
    }
    int64_t deficit = (int64_t)MRT_RC_TOTAL - sum;
    if (deficit > 0) {
        qsort(rank, (size_t)n, sizeof *rank, by_remainder_desc);
        for (int64_t j = 0; j < deficit; j++) freq[rank[j % n].index]++;
    }
    /* A surplus needs sum(p) > 1 + n / spread: impossible with p from
     * upper_tail (|error| ~1e-15); taken from the largest frequency anyway
     * so the invariant holds whatever happens. */
    while (deficit < 0) {
        int big = 0;
        for (int i = 1; i < n; i++)
            if (freq[i] > freq[big]) big = i;
        freq[big]--;
        deficit++;
    }
    free(rank);
    return 0;
}

mrt_status mrt_gauss_tables_build(mrt_gauss_tables *t) {
    memset(t, 0, sizeof *t);
    size_t total = 0;
    for (int s = 0; s < MRT_GAUSS_NSCALES; s++) {
        t->radius[s] = table_radius(mrt_gauss_scales[s]);
        t->nsym[s] = 2 * t->radius[s] + 2;
        total += (size_t)t->nsym[s] + 1;
    }
    int maxsym = 2 * MRT_GAUSS_MAX_RADIUS + 2;
    t->storage = malloc(total * sizeof *t->storage);
    double *p = malloc((size_t)maxsym * sizeof *p);
    uint32_t *freq = malloc((size_t)maxsym * sizeof *freq);
    if (!t->storage || !p || !freq) goto nomem;

    uint32_t *cdf = t->storage;
    for (int s = 0; s < MRT_GAUSS_NSCALES; s++) {
        double sigma = mrt_gauss_scales[s];
        int32_t R = t->radius[s];
        int n = t->nsym[s];
        /* p(r) = Q((|r| - 1/2)/sigma) - Q((|r| + 1/2)/sigma) for r != 0, the
         * same number for r and -r, so the table is symmetric. */
        p[R] = 1.0 - 2.0 * upper_tail(0.5 / sigma);
        for (int32_t r = 1; r <= R; r++) {
            double pr = upper_tail(((double)r - 0.5) / sigma) - upper_tail(((double)r + 0.5) / sigma);
            p[R + r] = pr;
            p[R - r] = pr;
        }
        p[n - 1] = 2.0 * upper_tail(((double)R + 0.5) / sigma); /* the escape */
        if (quantize_frequencies(p, n, freq) != 0) goto nomem;
        cdf[0] = 0;
        for (int i = 0; i < n; i++) cdf[i + 1] = cdf[i] + freq[i];
        t->cdf[s] = cdf;
        cdf += n + 1;
    }
    free(p);
    free(freq);
    return MRT_OK;
nomem:
    free(p);
    free(freq);
    mrt_gauss_tables_free(t);
    return MRT_ERR_NOMEM;
}

void mrt_gauss_tables_free(mrt_gauss_tables *t) {
    free(t->storage);
    memset(t, 0, sizeof *t);
}

static uint64_t fnv1a_u32(uint64_t h, uint32_t v) {
    for (int i = 0; i < 4; i++) {
        h ^= (v >> (8 * i)) & 0xFFu;
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t mrt_gauss_tables_hash(const mrt_gauss_tables *t) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int s = 0; s < MRT_GAUSS_NSCALES; s++) {
        h = fnv1a_u32(h, (uint32_t)t->radius[s]);
        for (int i = 0; i <= t->nsym[s]; i++) h = fnv1a_u32(h, t->cdf[s][i]);
    }
    return h;
}

int mrt_gauss_scale_index(double sigma) {
    /* First s with sigma_s >= sigma; "!(a < b)" sends NaN to index 0. */
    int lo = 0, hi = MRT_GAUSS_NSCALES - 1;
    if (!(sigma > mrt_gauss_scales[0])) return 0;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (mrt_gauss_scales[mid] >= sigma)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* Escapes: a sign bit (1 = negative), then v = |r| - R - 1 as Exp-Golomb
 * of order 0 in bypass bits: with u = v + 1 of n bits, n - 1 zero bits and
 * then u's n bits (its leading 1 ends the zeros). |r| <= 2^31, so u < 2^32
 * and n <= 32. */
static uint32_t magnitude(int32_t r) { return r < 0 ? 0u - (uint32_t)r : (uint32_t)r; }

static int bit_length(uint32_t u) {
    int n = 0;
    while (u) {
        n++;
        u >>= 1;
    }
    return n;
}

void mrt_gauss_encode(mrt_rc_encoder *e, const mrt_gauss_tables *t, int scale_index,
                      int32_t residual) {
    int32_t R = t->radius[scale_index];
    int nsym = t->nsym[scale_index];
    const uint32_t *cdf = t->cdf[scale_index];
    if (residual >= -R && residual <= R) {
        mrt_rc_encode(e, cdf, nsym, (int)(residual + R));
        return;
    }
    mrt_rc_encode(e, cdf, nsym, nsym - 1);
    mrt_rc_encode_bits(e, residual < 0, 1);
    uint32_t u = magnitude(residual) - (uint32_t)R; /* = v + 1 >= 1 */
    int n = bit_length(u);
    /* One bit per call for the zeros and the leading 1, exactly as the
     * decoder reads them: bypass bits coded in other groupings round
     * differently and would not decode. */
    for (int i = 0; i < n - 1; i++) mrt_rc_encode_bits(e, 0, 1);
    mrt_rc_encode_bits(e, 1, 1);
    mrt_rc_encode_bits(e, u, n - 1); /* the low n - 1 bits (encode_bits masks) */
}

int32_t mrt_gauss_decode(mrt_rc_decoder *d, const mrt_gauss_tables *t, int scale_index) {
    int32_t R = t->radius[scale_index];
    int nsym = t->nsym[scale_index];
    int sym = mrt_rc_decode(d, t->cdf[scale_index], nsym);
    if (sym < nsym - 1) return (int32_t)sym - R;

    int negative = (int)mrt_rc_decode_bits(d, 1);
    int zeros = 0;
    while (mrt_rc_decode_bits(d, 1) == 0) {
        if (++zeros > 31) { /* u would need 33+ bits: no encoder wrote this */
            d->invalid = 1;
            return negative ? -R - 1 : R + 1;
        }
    }
    uint64_t u = ((uint64_t)1 << zeros) | mrt_rc_decode_bits(d, zeros);
    uint64_t mag = u + (uint64_t)R; /* = |r| */
    uint64_t limit = negative ? (uint64_t)1 << 31 : ((uint64_t)1 << 31) - 1;
    if (mag > limit) {
        d->invalid = 1;
        mag = limit;
    }
    if (!negative) return (int32_t)mag;
    return mag == (uint64_t)1 << 31 ? INT32_MIN : -(int32_t)mag;
}

double mrt_gauss_bits(const mrt_gauss_tables *t, int scale_index, int32_t residual) {
    int32_t R = t->radius[scale_index];
    int nsym = t->nsym[scale_index];
    const uint32_t *cdf = t->cdf[scale_index];
    int sym = (residual >= -R && residual <= R) ? (int)(residual + R) : nsym - 1;
    double bits = MRT_RC_PRECISION - log2((double)(cdf[sym + 1] - cdf[sym]));
    if (sym == nsym - 1) {
        int n = bit_length(magnitude(residual) - (uint32_t)R);
        bits += 1 + (n - 1) + n;
    }
    return bits;
}
