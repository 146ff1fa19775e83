/*
 * test_entropy.c -- the range coder, bypass bits and the Gaussian tables.
 *
 * Round trips with random CDFs and mixed bypass bits, Gaussian coding for
 * every scale with residuals inside and far outside the tables, the code
 * length against the ideal, hostile and truncated input, the table
 * invariants, and two pinned hashes (the tables, and the bytes of a fixed
 * stream): if either changes, the bitstream format changed and
 * MRT_BITSTREAM_VERSION must be bumped (BITSTREAM.md, "Versioning").
 */
#include <inttypes.h>
#include <stdint.h>

#include "entropy.h"
#include "testutil.h"

/* Pinned: FNV-1a 64 of every table (mrt_gauss_tables_hash). */
#define EXPECTED_TABLES_HASH 0xfa625bd2685f9ad7ULL
/* Pinned: FNV-1a 64 of the bits of Phi at 40001 points (test_phi). */
#define EXPECTED_PHI_HASH 0x763be7fe9bcb17ceULL
/* Pinned: FNV-1a 64 of the bytes of the fixed stream in test_pinned_stream. */
#define EXPECTED_STREAM_HASH 0x2f7c1c9a065dac9cULL

static uint64_t fnv1a_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* A random CDF over nsym symbols, every frequency >= 1; `skew` makes a few
 * symbols dominate (as real models do). */
static void random_cdf(mrt_rng *rng, uint32_t *cdf, int nsym, int skew) {
    double *w = malloc((size_t)nsym * sizeof *w);
    double total = 0;
    for (int i = 0; i < nsym; i++) {
        double u = mrt_rng_uniform(rng);
        for (int k = 0; k < skew; k++) u *= mrt_rng_uniform(rng);
        w[i] = u + 1e-9;
        total += w[i];
    }
    uint32_t spare = MRT_RC_TOTAL - (uint32_t)nsym, used = 0;
    cdf[0] = 0;
    for (int i = 0; i < nsym; i++) {
        uint32_t f = 1 + (uint32_t)(w[i] / total * spare);
        used += f - 1;
        cdf[i + 1] = cdf[i] + f;
    }
    /* The floors left some units: give them to a random symbol. */
    int lucky = (int)mrt_rng_below(rng, (uint32_t)nsym);
    for (int i = lucky + 1; i <= nsym; i++) cdf[i] += spare - used;
    free(w);
}

static int sample_cdf(mrt_rng *rng, const uint32_t *cdf, int nsym) {
    uint32_t u = mrt_rng_below(rng, MRT_RC_TOTAL);
    int s = 0;
    while (s + 1 < nsym && cdf[s + 1] <= u) s++;
    return s;
}

/* ------------------------------------------------- coder round trips */

enum { OP_SYMBOL, OP_BITS };
typedef struct op {
    int kind;
    int nsym;       /* OP_SYMBOL */
    int cdf_index;  /* OP_SYMBOL: which of the prepared CDFs */
    int value;      /* symbol, or bit value */
    int nbits;      /* OP_BITS */
} op;

#define NCDFS 8

static void test_random_round_trips(void) {
    mrt_rng rng;
    mrt_rng_seed(&rng, 1234);
    double worst_overhead_bytes = -1e9, sum_overhead_bytes = 0;
    int trials = 200;
    for (int trial = 0; trial < trials; trial++) {
        /* A handful of CDFs per trial, of very different sizes. */
        static const int sizes[NCDFS] = {1, 2, 3, 17, 256, 1000, 4096, 65536};
        uint32_t *cdfs[NCDFS];
        for (int c = 0; c < NCDFS; c++) {
            cdfs[c] = malloc((size_t)(sizes[c] + 1) * sizeof(uint32_t));
            random_cdf(&rng, cdfs[c], sizes[c], (int)mrt_rng_below(&rng, 4));
        }
        int nops = (int)mrt_rng_below(&rng, 2000);
        op *ops = malloc((size_t)(nops + 1) * sizeof *ops);
        double ideal_bits = 0;
        mrt_rc_encoder enc;
        CHECK(mrt_rc_encoder_init(&enc) == MRT_OK, "init");
        for (int i = 0; i < nops; i++) {
            op *o = &ops[i];
            if (mrt_rng_below(&rng, 5) == 0) {
                o->kind = OP_BITS;
                o->nbits = (int)mrt_rng_below(&rng, 33);
                uint32_t v = (uint32_t)mrt_rng_next(&rng);
                o->value = (int)(o->nbits == 32 ? v : v & ((1u << o->nbits) - 1));
                mrt_rc_encode_bits(&enc, (uint32_t)o->value, o->nbits);
                ideal_bits += o->nbits;
            } else {
                o->kind = OP_SYMBOL;
                o->cdf_index = (int)mrt_rng_below(&rng, NCDFS);
                o->nsym = sizes[o->cdf_index];
                const uint32_t *cdf = cdfs[o->cdf_index];
                o->value = sample_cdf(&rng, cdf, o->nsym);
                mrt_rc_encode(&enc, cdf, o->nsym, o->value);
                ideal_bits += MRT_RC_PRECISION - log2((double)(cdf[o->value + 1] - cdf[o->value]));
            }
        }
        size_t bound = mrt_rc_encoder_size_bound(&enc);
        uint8_t *bytes = NULL;
        size_t len = 0;
        CHECK(mrt_rc_encoder_finish(&enc, &bytes, &len) == MRT_OK && bytes, "finish");
        CHECK(len <= bound && len + 4 >= bound, "size bound %zu for %zu bytes", bound, len);
        double overhead = (double)len - ideal_bits / 8.0;
        if (overhead > worst_overhead_bytes) worst_overhead_bytes = overhead;
        sum_overhead_bytes += overhead;

        mrt_rc_decoder dec;
        mrt_rc_decoder_init(&dec, bytes, len);
        int mismatches = 0;
        for (int i = 0; i < nops; i++) {
            const op *o = &ops[i];
            if (o->kind == OP_BITS) {
                uint32_t v = mrt_rc_decode_bits(&dec, o->nbits);
                if (v != (uint32_t)o->value) mismatches++;
            } else {
                int s = mrt_rc_decode(&dec, cdfs[o->cdf_index], o->nsym);
                if (s != o->value) mismatches++;
            }
        }
        CHECK(mismatches == 0, "trial %d: %d of %d values differ", trial, mismatches, nops);
        CHECK(mrt_rc_decoder_consistent(&dec), "trial %d: stream not consumed exactly (pos %zu len %zu)",
              trial, dec.pos, len);
        CHECK(!mrt_rc_decoder_overrun(&dec), "trial %d: overrun", trial);
        free(bytes);
        free(ops);
        for (int c = 0; c < NCDFS; c++) free(cdfs[c]);
    }
    printf("random streams: overhead vs ideal: mean %.2f bytes, worst %.2f bytes\n",
           sum_overhead_bytes / trials, worst_overhead_bytes);
    CHECK(worst_overhead_bytes < 2.0, "worst overhead %.2f bytes", worst_overhead_bytes);
}

static void test_empty_and_tiny(void) {
    mrt_rc_encoder enc;
    uint8_t *bytes;
    size_t len;
    mrt_rc_encoder_init(&enc);
    CHECK(mrt_rc_encoder_finish(&enc, &bytes, &len) == MRT_OK && bytes && len == 0,
          "empty stream: %zu bytes", len);
    mrt_rc_decoder dec;
    mrt_rc_decoder_init(&dec, bytes, len);
    CHECK(mrt_rc_decoder_consistent(&dec), "empty stream consistent");
    free(bytes);

    /* A run of the first symbol of a skewed CDF costs almost nothing: the
     * flush must not add bytes the decoder can infer. */
    static const uint32_t cdf[3] = {0, 65000, 65536};
    mrt_rc_encoder_init(&enc);
    for (int i = 0; i < 100; i++) mrt_rc_encode(&enc, cdf, 2, 0);
    CHECK(mrt_rc_encoder_finish(&enc, &bytes, &len) == MRT_OK, "finish");
    CHECK(len <= 1, "100 likely symbols (1.2 bits) took %zu bytes", len);
    mrt_rc_decoder_init(&dec, bytes, len);
    int bad = 0;
    for (int i = 0; i < 100; i++) bad += mrt_rc_decode(&dec, cdf, 2) != 0;
    CHECK(bad == 0 && mrt_rc_decoder_consistent(&dec), "likely run round trip");
    /* Asking for far more than was coded is an overrun. */
    for (int i = 0; i < 64; i++) mrt_rc_decode_bits(&dec, 8);
    CHECK(mrt_rc_decoder_overrun(&dec) && !mrt_rc_decoder_consistent(&dec), "overrun noticed");
    free(bytes);

    /* Stray bytes after a valid stream: up to 4 fall inside the decoder's
     * look-ahead window (they may change the decoded values, as any other
     * damage would: the container's CRC is what catches that); more are
     * bytes the decoder never reaches, and it says so. */
    mrt_rc_encoder_init(&enc);
    mrt_rc_encode_bits(&enc, 0xABCD, 16);
    CHECK(mrt_rc_encoder_finish(&enc, &bytes, &len) == MRT_OK, "finish");
    uint8_t longer[16] = {0};
    memcpy(longer, bytes, len);
    longer[len] = 0x55;
    for (size_t extra = 1; extra <= 8; extra++) {
        mrt_rc_decoder_init(&dec, longer, len + extra);
        uint32_t v = mrt_rc_decode_bits(&dec, 16);
        CHECK(v <= 0xFFFF, "in range");
        if (extra > MRT_RC_MAX_IMPLICIT_ZEROS)
            CHECK(!mrt_rc_decoder_consistent(&dec), "%zu stray bytes not noticed", extra);
    }
    free(bytes);
}

/* Decoding never fails on hostile bytes: values stay in range, the decoder
 * never reads outside the buffer (ASan) and always finishes. */
static void test_garbage(void) {
    mrt_rng rng;
    mrt_rng_seed(&rng, 99);
    mrt_gauss_tables t;
    CHECK(mrt_gauss_tables_build(&t) == MRT_OK, "build");
    uint32_t cdf[301];
    int out_of_range = 0;
    for (int trial = 0; trial < 3000; trial++) {
        size_t len = mrt_rng_below(&rng, 48);
        uint8_t *buf = malloc(len ? len : 1); /* exact size: ASan sees any over-read */
        int mode = (int)mrt_rng_below(&rng, 3);
        for (size_t i = 0; i < len; i++)
            buf[i] = mode == 0 ? (uint8_t)mrt_rng_next(&rng) : mode == 1 ? 0xFF : (uint8_t)(i * 37);
        int nsym = 1 + (int)mrt_rng_below(&rng, 300);
        random_cdf(&rng, cdf, nsym, 2);
        mrt_rc_decoder dec;
        mrt_rc_decoder_init(&dec, buf, len);
        for (int i = 0; i < 200; i++) {
            int s = mrt_rc_decode(&dec, cdf, nsym);
            if (s < 0 || s >= nsym) out_of_range++;
            int nb = (int)mrt_rng_below(&rng, 33);
            uint32_t v = mrt_rc_decode_bits(&dec, nb);
            if (nb < 32 && v >> nb) out_of_range++;
            int sc = (int)mrt_rng_below(&rng, MRT_GAUSS_NSCALES);
            (void)mrt_gauss_decode(&dec, &t, sc);
        }
        CHECK(mrt_rc_decoder_overrun(&dec), "600 values from %zu bytes, no overrun", len);
        free(buf);
    }
    CHECK(out_of_range == 0, "%d decoded values out of range", out_of_range);

    /* All-0xFF data decoded with the escape-heavy smallest table: long
     * zero/one runs in the Exp-Golomb prefix must stay bounded. */
    uint8_t ff[64];
    memset(ff, 0xFF, sizeof ff);
    mrt_rc_decoder dec;
    mrt_rc_decoder_init(&dec, ff, sizeof ff);
    for (int i = 0; i < 100; i++) (void)mrt_gauss_decode(&dec, &t, 0);
    CHECK(!mrt_rc_decoder_consistent(&dec), "0xFF garbage not flagged");
    mrt_gauss_tables_free(&t);
}

/* ------------------------------------------------- Gaussian tables */

static void test_table_invariants(const mrt_gauss_tables *t) {
    int bad = 0;
    for (int s = 0; s < MRT_GAUSS_NSCALES; s++) {
        int32_t R = t->radius[s];
        int n = t->nsym[s];
        const uint32_t *cdf = t->cdf[s];
        double want_r = MRT_GAUSS_TAIL_SIGMAS * mrt_gauss_scales[s];
        if (!(R >= 1 && R >= want_r && R - 1 < want_r && R <= MRT_GAUSS_MAX_RADIUS)) bad++;
        if (n != 2 * R + 2) bad++;
        if (cdf[0] != 0 || cdf[n] != MRT_RC_TOTAL) {
            bad++;
            fprintf(stderr, "scale %d: cdf ends %u..%u\n", s, cdf[0], cdf[n]);
        }
        for (int i = 0; i < n; i++)
            if (cdf[i + 1] <= cdf[i]) {
                bad++;
                fprintf(stderr, "scale %d symbol %d has frequency 0\n", s, i);
            }
        /* Unimodal around r = 0, and r and -r get nearly the same frequency
         * (the remainder pass may give one of them a unit more). */
        for (int32_t r = 1; r <= R; r++) {
            uint32_t fp = cdf[R + r + 1] - cdf[R + r], fm = cdf[R - r + 1] - cdf[R - r];
            uint32_t fin = cdf[R + r] - cdf[R + r - 1];
            if (fp > fin || (fp > fm ? fp - fm : fm - fp) > 1) bad++;
        }
        if (s > 0 && mrt_gauss_scales[s] <= mrt_gauss_scales[s - 1]) bad++;
    }
    CHECK(bad == 0, "%d table invariant violations", bad);
    CHECK(mrt_gauss_scales[0] == 0.11 && mrt_gauss_scales[MRT_GAUSS_NSCALES - 1] == 64.0, "scale ends");
    CHECK(t->radius[MRT_GAUSS_NSCALES - 1] == MRT_GAUSS_MAX_RADIUS, "max radius %d",
          t->radius[MRT_GAUSS_NSCALES - 1]);

    uint64_t h = mrt_gauss_tables_hash(t);
    printf("gaussian tables hash: %016" PRIx64 "\n", h);
    CHECK(h == EXPECTED_TABLES_HASH,
          "table hash %016" PRIx64 " != pinned %016" PRIx64
          ": the tables changed, which is a bitstream format change",
          h, (uint64_t)EXPECTED_TABLES_HASH);

    /* A second build is identical (no hidden state). */
    mrt_gauss_tables t2;
    CHECK(mrt_gauss_tables_build(&t2) == MRT_OK && mrt_gauss_tables_hash(&t2) == h, "rebuild");
    mrt_gauss_tables_free(&t2);
}

static void test_phi(void) {
    double worst = 0;
    for (int i = -4000; i <= 4000; i++) {
        double x = i * 0.01;
        double ref = 0.5 * erfc(-x / sqrt(2.0)); /* libm only as a reference here */
        double err = fabs(mrt_gauss_phi(x) - ref);
        if (err > worst) worst = err;
    }
    CHECK(worst < 1e-14, "Phi off by %g", worst);
    CHECK(mrt_gauss_phi(0.0) == 0.5, "Phi(0) = %.17g", mrt_gauss_phi(0.0));
    CHECK(mrt_gauss_phi(-50.0) == 0.0 && mrt_gauss_phi(50.0) == 1.0, "Phi tails");

    /* The exact doubles, not just the tables: a canary for a compiler or
     * flag that stops evaluating the builder's arithmetic as written
     * (FMA contraction, x87, -ffast-math all change this hash). */
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int i = -20000; i <= 20000; i++) {
        double p = mrt_gauss_phi(i * 0.00137);
        uint8_t b[8];
        memcpy(b, &p, 8);
        for (int k = 0; k < 8; k++) h = (h ^ b[k]) * 0x100000001b3ULL;
    }
    CHECK(h == EXPECTED_PHI_HASH, "Phi bits hash %016" PRIx64 " != pinned %016" PRIx64
          ": this build does not evaluate doubles as written (FMA contraction? -ffast-math?)",
          h, (uint64_t)EXPECTED_PHI_HASH);
}

static void test_scale_index(void) {
    CHECK(mrt_gauss_scale_index(0.0) == 0 && mrt_gauss_scale_index(-1.0) == 0, "below");
    CHECK(mrt_gauss_scale_index(0.11) == 0, "first");
    CHECK(mrt_gauss_scale_index(1e9) == MRT_GAUSS_NSCALES - 1, "above");
    CHECK(mrt_gauss_scale_index(NAN) == 0, "NaN");
    int bad = 0;
    for (int s = 0; s < MRT_GAUSS_NSCALES; s++) {
        double sc = mrt_gauss_scales[s];
        if (mrt_gauss_scale_index(sc) != s) bad++;
        if (s + 1 < MRT_GAUSS_NSCALES && mrt_gauss_scale_index(sc * (1 + 1e-12)) != s + 1) bad++;
        if (mrt_gauss_scale_index((float)sc) < (s ? s - 1 : 0)) bad++;
    }
    CHECK(bad == 0, "%d scale index mistakes", bad);
}

/* Every scale, residuals across and far beyond the table, int32 extremes. */
static void test_gauss_round_trip(const mrt_gauss_tables *t) {
    static const int32_t extremes[] = {INT32_MIN, INT32_MIN + 1, INT32_MAX, INT32_MAX - 1,
                                       1000000, -1000000, 65536, -65537, 1 << 30, -(1 << 30)};
    int n_ext = (int)(sizeof extremes / sizeof extremes[0]);
    mrt_rng rng;
    mrt_rng_seed(&rng, 7);
    int32_t *vals = malloc(4096 * sizeof *vals);
    int *scales = malloc(4096 * sizeof *scales);
    int mismatches = 0, streams = 0;
    for (int s = 0; s < MRT_GAUSS_NSCALES; s++) {
        int32_t R = t->radius[s];
        int n = 0;
        for (int32_t r = -R - 40; r <= R + 40; r++) {
            vals[n] = r;
            scales[n++] = s;
        }
        for (int i = 0; i < n_ext; i++) {
            vals[n] = extremes[i];
            scales[n++] = s;
        }
        /* Interleave with other scales so the context switches as in a codec. */
        for (int i = 0; i < 200; i++) {
            scales[n] = (int)mrt_rng_below(&rng, MRT_GAUSS_NSCALES);
            vals[n++] = (int32_t)mrt_rng_below(&rng, 2001) - 1000;
        }
        mrt_rc_encoder enc;
        mrt_rc_encoder_init(&enc);
        for (int i = 0; i < n; i++) mrt_gauss_encode(&enc, t, scales[i], vals[i]);
        uint8_t *bytes;
        size_t len;
        CHECK(mrt_rc_encoder_finish(&enc, &bytes, &len) == MRT_OK, "finish");
        mrt_rc_decoder dec;
        mrt_rc_decoder_init(&dec, bytes, len);
        for (int i = 0; i < n; i++) {
            int32_t got = mrt_gauss_decode(&dec, t, scales[i]);
            if (got != vals[i]) {
                if (mismatches++ < 5)
                    fprintf(stderr, "scale %d value %d decoded as %d\n", scales[i], vals[i], got);
            }
        }
        CHECK(mrt_rc_decoder_consistent(&dec), "scale %d: stream not consumed exactly", s);
        free(bytes);
        streams++;
    }
    CHECK(mismatches == 0, "%d gaussian values differ", mismatches);
    free(vals);
    free(scales);

    /* Escapes no encoder writes are flagged, not trusted. */
    for (int variant = 0; variant < 2; variant++) {
        mrt_rc_encoder enc;
        mrt_rc_encoder_init(&enc);
        int s = 10;
        mrt_rc_encode(&enc, t->cdf[s], t->nsym[s], t->nsym[s] - 1); /* escape */
        mrt_rc_encode_bits(&enc, 0, 1);                             /* positive */
        if (variant == 0) {
            for (int i = 0; i < 40; i++) mrt_rc_encode_bits(&enc, 0, 1); /* endless prefix */
        } else {
            /* u = 2^31 - 1 with R >= 2: |r| > INT32_MAX. */
            for (int i = 0; i < 30; i++) mrt_rc_encode_bits(&enc, 0, 1);
            mrt_rc_encode_bits(&enc, 1, 1);
            mrt_rc_encode_bits(&enc, 0x3FFFFFFF, 30);
        }
        uint8_t *bytes;
        size_t len;
        mrt_rc_encoder_finish(&enc, &bytes, &len);
        mrt_rc_decoder dec;
        mrt_rc_decoder_init(&dec, bytes, len);
        int32_t v = mrt_gauss_decode(&dec, t, s);
        CHECK(dec.invalid && v > 0, "impossible escape %d flagged (got %d)", variant, v);
        free(bytes);
    }
}

/* Code length against the ideal for residuals drawn from each table's own
 * Gaussian: the coder's rounding and flush add only a byte or two. */
static void test_gauss_overhead(const mrt_gauss_tables *t) {
    mrt_rng rng;
    mrt_rng_seed(&rng, 2024);
    enum { N = 3072 }; /* one 768x512 image's latents (DESIGN.md §3.5) */
    int32_t *vals = malloc(N * sizeof *vals);
    int *sc = malloc(N * sizeof *sc);
    double worst = -1e9, total_ideal = 0, total_bytes = 0, model_bits = 0;
    for (int trial = 0; trial < 12; trial++) {
        double table_bits = 0;
        mrt_rc_encoder enc;
        mrt_rc_encoder_init(&enc);
        for (int i = 0; i < N; i++) {
            /* Scales spread like a trained model's: mostly small sigmas. */
            sc[i] = (int)mrt_rng_below(&rng, (uint32_t)(8 + trial * 4));
            double y = mrt_gauss_scales[sc[i]] * mrt_rng_normal(&rng);
            vals[i] = (int32_t)lround(y);
            table_bits += mrt_gauss_bits(t, sc[i], vals[i]);
            /* The unquantised model probability, for the table-rounding loss. */
            double a = (double)(vals[i] < 0 ? vals[i] : -vals[i]), sg = mrt_gauss_scales[sc[i]];
            model_bits -= log2(mrt_gauss_phi((a + 0.5) / sg) - mrt_gauss_phi((a - 0.5) / sg));
            mrt_gauss_encode(&enc, t, sc[i], vals[i]);
        }
        uint8_t *bytes;
        size_t len;
        CHECK(mrt_rc_encoder_finish(&enc, &bytes, &len) == MRT_OK, "finish");
        mrt_rc_decoder dec;
        mrt_rc_decoder_init(&dec, bytes, len);
        int bad = 0;
        for (int i = 0; i < N; i++) bad += mrt_gauss_decode(&dec, t, sc[i]) != vals[i];
        CHECK(bad == 0 && mrt_rc_decoder_consistent(&dec), "trial %d round trip", trial);
        double over = (double)len - table_bits / 8;
        if (over > worst) worst = over;
        total_ideal += table_bits / 8;
        total_bytes += (double)len;
        free(bytes);
    }
    printf("gaussian streams of %d symbols: %.1f bytes on average, %.2f%% over the ideal "
           "(worst %.2f bytes)\n",
           N, total_bytes / 12, 100 * (total_bytes / total_ideal - 1), worst);
    printf("integer tables vs the exact Gaussian model: %.3f%% more bits\n",
           100 * (total_ideal * 8 / model_bits - 1));
    CHECK(worst < 3.0, "gaussian overhead %.2f bytes", worst);
    free(vals);
    free(sc);
}

/* Truncated valid streams: decoding still terminates with in-range values. */
static void test_truncated(const mrt_gauss_tables *t) {
    mrt_rng rng;
    mrt_rng_seed(&rng, 5);
    mrt_rc_encoder enc;
    mrt_rc_encoder_init(&enc);
    enum { N = 600 };
    int sc[N];
    for (int i = 0; i < N; i++) {
        sc[i] = (int)mrt_rng_below(&rng, MRT_GAUSS_NSCALES);
        mrt_gauss_encode(&enc, t, sc[i], (int32_t)(mrt_gauss_scales[sc[i]] * mrt_rng_normal(&rng)));
    }
    uint8_t *bytes;
    size_t len;
    mrt_rc_encoder_finish(&enc, &bytes, &len);
    int flagged = 0;
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *part = malloc(cut ? cut : 1);
        memcpy(part, bytes, cut);
        mrt_rc_decoder dec;
        mrt_rc_decoder_init(&dec, part, cut);
        for (int i = 0; i < N; i++) (void)mrt_gauss_decode(&dec, t, sc[i]);
        flagged += !mrt_rc_decoder_consistent(&dec);
        free(part);
    }
    /* The coder alone cannot see every cut (a dropped trailing 0 byte is
     * what it would have read anyway); the container's lengths and CRCs do. */
    CHECK(flagged >= (int)len - 6, "only %d of %zu truncations flagged", flagged, len);
    free(bytes);
}

/* The exact bytes of a fixed stream: any change to the coder is a format change. */
static void test_pinned_stream(const mrt_gauss_tables *t) {
    mrt_rng rng;
    mrt_rng_seed(&rng, 31337);
    mrt_rc_encoder enc;
    mrt_rc_encoder_init(&enc);
    static const uint32_t cdf[5] = {0, 1000, 30000, 65000, 65536};
    for (int i = 0; i < 500; i++) {
        int s = (int)mrt_rng_below(&rng, MRT_GAUSS_NSCALES);
        int32_t r = (int32_t)(mrt_gauss_scales[s] * 1.5 * mrt_rng_normal(&rng));
        mrt_gauss_encode(&enc, t, s, r);
        if (i % 50 == 0) mrt_rc_encode_bits(&enc, (uint32_t)mrt_rng_next(&rng), 1 + i % 32);
        if (i % 7 == 0) mrt_rc_encode(&enc, cdf, 4, (int)mrt_rng_below(&rng, 4));
    }
    mrt_gauss_encode(&enc, t, 3, 123456);
    uint8_t *bytes;
    size_t len;
    mrt_rc_encoder_finish(&enc, &bytes, &len);
    uint64_t h = fnv1a_bytes(bytes, len);
    printf("pinned stream: %zu bytes, hash %016" PRIx64 "\n", len, h);
    CHECK(h == EXPECTED_STREAM_HASH,
          "stream hash %016" PRIx64 " != pinned %016" PRIx64 ": the coder's output changed",
          h, (uint64_t)EXPECTED_STREAM_HASH);
    free(bytes);
}

int main(void) {
    test_phi();
    test_scale_index();
    test_empty_and_tiny();
    test_random_round_trips();
    mrt_gauss_tables t;
    CHECK(mrt_gauss_tables_build(&t) == MRT_OK, "build tables");
    test_table_invariants(&t);
    test_gauss_round_trip(&t);
    test_gauss_overhead(&t);
    test_truncated(&t);
    test_pinned_stream(&t);
    mrt_gauss_tables_free(&t);
    test_garbage();
    return tu_finish("test_entropy");
}
