/*
 * entropy.h -- the deterministic entropy coder: a carry-propagating range
 * coder over 16-bit integer CDFs, equiprobable "bypass" bits, and the
 * Gaussian conditional tables the latent symbols are coded with.
 *
 * Everything that decides a code word is integer arithmetic, or (for the
 * Gaussian tables) strictly ordered double arithmetic without libm, so the
 * bytes an encoder writes are decoded identically on every machine,
 * compiler and optimisation level (DESIGN.md §5). The exact algorithms are
 * specified in codec/BITSTREAM.md; changing any of them, or any number that
 * feeds the tables, changes the bitstream format and needs a version bump.
 *
 * Typical use:
 *     mrt_rc_encoder enc;
 *     mrt_rc_encoder_init(&enc);
 *     mrt_rc_encode(&enc, cdf, nsym, symbol);           // any number of times
 *     mrt_gauss_encode(&enc, &tables, scale_index, residual);
 *     mrt_rc_encode_bits(&enc, value, nbits);
 *     uint8_t *bytes; size_t n;
 *     if (mrt_rc_encoder_finish(&enc, &bytes, &n) != MRT_OK) ...;   // free(bytes)
 *
 *     mrt_rc_decoder dec;
 *     mrt_rc_decoder_init(&dec, bytes, n);
 *     symbol = mrt_rc_decode(&dec, cdf, nsym);          // same calls, same order
 *     ...
 *     if (!mrt_rc_decoder_consistent(&dec)) -> corrupt stream
 *
 * A decoder given hostile bytes never reads outside them, never loops
 * without bound and always returns in-range values; it records what it
 * noticed (see mrt_rc_decoder_overrun / _consistent) for the caller to report.
 */
#ifndef MRT_ENTROPY_H
#define MRT_ENTROPY_H

#include <stddef.h>
#include <stdint.h>

#include "mrt.h"

/* ------------------------------------------------------------ range coder */

/* CDFs are uint32_t arrays of nsym + 1 non-decreasing entries with
 * cdf[0] = 0 and cdf[nsym] = MRT_RC_TOTAL; symbol s has the frequency
 * cdf[s+1] - cdf[s], which must be >= 1 for every symbol (a zero-frequency
 * symbol cannot be coded and would make the decoder ambiguous).
 * So 1 <= nsym <= MRT_RC_TOTAL. */
#define MRT_RC_PRECISION 16
#define MRT_RC_TOTAL (1u << MRT_RC_PRECISION)

/* The decoder reads 4 bytes ahead; the encoder's flush leaves out trailing
 * bytes the decoder may take as zeros, at most this many. Reading more
 * zeros than this past the end means the stream was not ours or was cut. */
#define MRT_RC_MAX_IMPLICIT_ZEROS 4

/* Transparent so it can live on the stack; treat the fields as private. */
typedef struct mrt_rc_encoder {
    uint64_t low;         /* bottom of the interval; bit 32 is a carry not yet propagated */
    uint32_t range;       /* width of the interval, >= 2^24 between calls */
    uint8_t cache;        /* last settled-but-unwritten byte (a carry may still bump it) */
    int cache_is_virtual; /* no byte yet: the cache is a placeholder that is never written */
    size_t pending_ff;    /* 0xFF bytes after the cache, all turned to 0x00 by a carry */
    uint8_t *buf;
    size_t len, cap;
    int out_of_memory; /* set by a failed grow; reported by finish */
} mrt_rc_encoder;

typedef struct mrt_rc_decoder {
    const uint8_t *data;
    size_t len;
    size_t pos;        /* bytes consumed, counting the zeros supplied past the end */
    uint32_t code;     /* offset of the coded value inside the current interval */
    uint32_t range;
    int invalid;       /* a value no encoder can produce was decoded (bad escape) */
} mrt_rc_decoder;

/* Starts an empty encoder. Returns MRT_OK (it allocates lazily). */
mrt_status mrt_rc_encoder_init(mrt_rc_encoder *e);

/* Codes `symbol` (0 <= symbol < nsym) with the given CDF (see above). */
void mrt_rc_encode(mrt_rc_encoder *e, const uint32_t *cdf, int nsym, int symbol);

/* Codes the low `nbits` bits of `value` (0 <= nbits <= 32) as equiprobable
 * bits, most significant first. Costs exactly nbits bits of interval (plus
 * the coder's usual rounding). */
void mrt_rc_encode_bits(mrt_rc_encoder *e, uint32_t value, int nbits);

/* Flushes with the fewest bytes that still decode (0 to 4 after the last
 * settled byte) and hands the bytes to the caller, who frees them with
 * free(). *out is never NULL on success, even for 0 bytes. The encoder is
 * left empty (init it again to reuse it). MRT_ERR_NOMEM if a grow failed. */
mrt_status mrt_rc_encoder_finish(mrt_rc_encoder *e, uint8_t **out, size_t *len);

/* Releases an encoder that will not be finished (error paths). */
void mrt_rc_encoder_free(mrt_rc_encoder *e);

/* Bytes the stream would have if finished now, rounded up: the written
 * bytes, the pending ones and the 4-byte window. An upper bound for rate
 * control; mrt_rc_encoder_finish may write up to 4 fewer. */
size_t mrt_rc_encoder_size_bound(const mrt_rc_encoder *e);

/* Starts decoding data[0..len). `data` must outlive the decoder. */
void mrt_rc_decoder_init(mrt_rc_decoder *d, const uint8_t *data, size_t len);

/* Decodes one symbol with the CDF it was encoded with; always in [0, nsym). */
int mrt_rc_decode(mrt_rc_decoder *d, const uint32_t *cdf, int nsym);

/* Decodes `nbits` bypass bits (0..32); the result is < 2^nbits. */
uint32_t mrt_rc_decode_bits(mrt_rc_decoder *d, int nbits);

/* True when the decoder needed more than MRT_RC_MAX_IMPLICIT_ZEROS bytes
 * past the end of the data: the caller asked for more than was coded, or
 * the stream was cut or is not ours. */
int mrt_rc_decoder_overrun(const mrt_rc_decoder *d);

/* To call after the last symbol: true when the stream was used exactly as
 * an encoder makes it -- every byte read (no stray trailing data), no more
 * than MRT_RC_MAX_IMPLICIT_ZEROS read past the end, no impossible escape.
 * False means the stream is corrupt or was decoded with other calls than
 * it was encoded with. */
int mrt_rc_decoder_consistent(const mrt_rc_decoder *d);

/* ---------------------------------------------- Gaussian conditional coding */

/*
 * The latent symbol is the integer residual r = round(y - mu) of a value
 * modelled as N(mu, sigma^2); its probability is
 *     Phi((r + 1/2) / sigma) - Phi((r - 1/2) / sigma).
 * sigma is one of MRT_GAUSS_NSCALES fixed values (an index, so encoder and
 * decoder pick the same table through integer compares). Table s covers
 * r in [-R_s, R_s], R_s = max(1, ceil(MRT_GAUSS_TAIL_SIGMAS * sigma_s)),
 * plus an escape symbol for everything outside, which is followed by the
 * residual in bypass bits (a sign bit and an Exp-Golomb code of
 * |r| - R_s - 1), so every int32_t residual can be coded.
 */
#define MRT_GAUSS_NSCALES 64
#define MRT_GAUSS_TAIL_SIGMAS 5
#define MRT_GAUSS_MAX_RADIUS 320 /* R_63 = ceil(5 * 64) */

/* sigma_0 = 0.11 ... sigma_63 = 64, log-spaced, rounded to 6 significant
 * digits; the decimal literals are the definition (BITSTREAM.md lists them). */
extern const double mrt_gauss_scales[MRT_GAUSS_NSCALES];

/* Built once, read-only afterwards: any number of threads may code with it. */
typedef struct mrt_gauss_tables {
    int32_t radius[MRT_GAUSS_NSCALES];    /* R_s */
    int nsym[MRT_GAUSS_NSCALES];          /* 2 R_s + 2: the residuals, then the escape */
    const uint32_t *cdf[MRT_GAUSS_NSCALES]; /* nsym + 1 entries each, into `storage` */
    uint32_t *storage;
} mrt_gauss_tables;

/* Computes the tables (a few milliseconds). MRT_ERR_NOMEM on failure. */
mrt_status mrt_gauss_tables_build(mrt_gauss_tables *t);
void mrt_gauss_tables_free(mrt_gauss_tables *t);

/* FNV-1a 64 over every R_s and CDF entry (as 4 little-endian bytes each),
 * scale by scale. The tests pin it: a different value is a format change. */
uint64_t mrt_gauss_tables_hash(const mrt_gauss_tables *t);

/* The table for a predicted sigma: the smallest s with sigma_s >= sigma
 * (so sigma is never under-estimated), clamped to [0, 63]; NaN gives 0.
 * Plain compares: exact and the same everywhere. */
int mrt_gauss_scale_index(double sigma);

/* Codes residual r with table s (0 <= s < MRT_GAUSS_NSCALES); any int32_t. */
void mrt_gauss_encode(mrt_rc_encoder *e, const mrt_gauss_tables *t, int scale_index,
                      int32_t residual);
/* Decodes what mrt_gauss_encode wrote. On a corrupt escape it returns a
 * clamped value and marks the decoder (mrt_rc_decoder_consistent fails). */
int32_t mrt_gauss_decode(mrt_rc_decoder *d, const mrt_gauss_tables *t, int scale_index);

/* The exact code length in bits of r under table s, from the integer
 * frequencies (escapes included), ignoring the coder's sub-bit rounding.
 * For tests and statistics only: it uses libm's log2, so it must never feed
 * a coding decision. */
double mrt_gauss_bits(const mrt_gauss_tables *t, int scale_index, int32_t residual);

/* Phi, the standard normal CDF, as the table builder computes it
 * (deterministic, no libm; absolute error about 1e-15). Exposed for tests. */
double mrt_gauss_phi(double x);

#endif /* MRT_ENTROPY_H */
