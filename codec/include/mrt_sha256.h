/*
 * mrt_sha256.h -- SHA-256 (FIPS 180-4).
 *
 * A model is identified by the SHA-256 of its weights file (DESIGN.md §6),
 * and the bitstream carries that fingerprint, so this must be exactly the
 * standard function: the tests check the FIPS 180-2 appendix vectors.
 *
 * Streaming use:
 *     mrt_sha256 h;
 *     mrt_sha256_init(&h);
 *     mrt_sha256_update(&h, part1, n1);
 *     mrt_sha256_update(&h, part2, n2);
 *     mrt_sha256_final(&h, digest);     // digest: uint8_t[32]
 * The result does not depend on how the input is split into updates.
 */
#ifndef MRT_SHA256_H
#define MRT_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define MRT_SHA256_DIGEST_BYTES 32
#define MRT_SHA256_HEX_CHARS 64 /* without the terminating NUL */

typedef struct mrt_sha256 {
    uint32_t state[8];
    uint64_t total_bytes;  /* message length so far; the padding encodes it in bits */
    uint8_t block[64];     /* a partial block waiting for more input */
    size_t block_len;      /* bytes used in `block`, always < 64 between calls */
} mrt_sha256;

void mrt_sha256_init(mrt_sha256 *ctx);
void mrt_sha256_update(mrt_sha256 *ctx, const void *data, size_t len);
/* Writes the 32-byte digest. The context must be re-initialised before reuse. */
void mrt_sha256_final(mrt_sha256 *ctx, uint8_t digest[MRT_SHA256_DIGEST_BYTES]);

/* One-shot: digest of data[0..len). */
void mrt_sha256_buffer(const void *data, size_t len, uint8_t digest[MRT_SHA256_DIGEST_BYTES]);

/* Lower-case hex of a digest, NUL-terminated: hex must hold 65 chars. */
void mrt_sha256_hex(const uint8_t digest[MRT_SHA256_DIGEST_BYTES],
                    char hex[MRT_SHA256_HEX_CHARS + 1]);

#endif /* MRT_SHA256_H */
