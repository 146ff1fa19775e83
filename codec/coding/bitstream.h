/*
 * bitstream.h -- the mrt bitstream container: a small header (magic,
 * version, flags, image size, model fingerprint, rate id, stream table)
 * followed by 1..4 payload streams, plus the CRC-32 and LEB128 varints it
 * is built from. The layout and every validation rule are specified in
 * codec/BITSTREAM.md.
 *
 * Parsing is strict: every field is bounds-checked against the bytes that
 * remain, sizes are validated before the caller allocates anything, each
 * stream's CRC (which also covers the header bytes before it) is checked,
 * and nothing may follow the last payload. Every rejection comes with a
 * message naming the field and the values involved.
 */
#ifndef MRT_BITSTREAM_H
#define MRT_BITSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "mrt.h" /* mrt_status, mrt_error, MRT_FINGERPRINT_BYTES, MRT_MAX_PIXELS */

/* The newest version this library reads and writes. Version 2 adds the
 * working size (codec/BITSTREAM.md §7); the writer uses it only for a
 * scaled picture, so unscaled streams stay readable by version-1 readers. */
#define MRT_BITSTREAM_VERSION 2
#define MRT_BITSTREAM_MAGIC "MRT"
#define MRT_BITSTREAM_MAGIC_BYTES 3
#define MRT_BITSTREAM_MAX_STREAMS 4
/* Flag bits a version-1 reader understands; any other bit set is rejected.
 * Version 1 defines none (the byte is there so later versions can add
 * options without moving fields). */
#define MRT_BITSTREAM_KNOWN_FLAGS 0x00u
/* A stream length is a varint of at most this value (5 bytes). */
#define MRT_BITSTREAM_MAX_STREAM_BYTES 0xFFFFFFFFu
/* The smallest possible bitstream: a 1x1 image with one empty stream. */
#define MRT_BITSTREAM_MIN_BYTES (3 + 1 + 1 + 1 + 1 + MRT_FINGERPRINT_BYTES + 1 + 1 + 1 + 4)

typedef struct mrt_bitstream_header {
    int version;            /* parse: as read; write: 0 (the lowest that can say it), 1 or 2 */
    unsigned flags;         /* subset of MRT_BITSTREAM_KNOWN_FLAGS */
    uint32_t width, height; /* the original image size, 1..MRT_MAX_SIDE, w*h <= MRT_MAX_PIXELS */
    /* The working size the latent codes, 1..width x 1..height (version 2),
     * upscaled to width x height by the decoder. Parse of version 1: equal
     * to width, height. Write: 0 x 0 also means "equal". */
    uint32_t coded_width, coded_height;
    uint8_t fingerprint[MRT_FINGERPRINT_BYTES]; /* first bytes of the weights' SHA-256 */
    uint8_t rate_id;
    int nstreams;           /* 1..MRT_BITSTREAM_MAX_STREAMS */
    /* Filled by parse (write takes the lengths from its arguments and
     * computes the CRCs itself). */
    size_t stream_len[MRT_BITSTREAM_MAX_STREAMS];
    uint32_t stream_crc[MRT_BITSTREAM_MAX_STREAMS];
    size_t header_len;      /* bytes before the first payload */
} mrt_bitstream_header;

/* Parses and validates data[0..len): header, stream table, exact total
 * length, every stream's CRC, then the image size limits. On success *h is
 * filled and streams[i] points into `data` at payload i (i < nstreams; the
 * rest are NULL). Errors: MRT_ERR_CORRUPT (not ours, damaged, truncated,
 * trailing bytes), MRT_ERR_VERSION (a version this library cannot read),
 * MRT_ERR_TOO_BIG (an intact stream declaring more than MRT_MAX_PIXELS),
 * MRT_ERR_ARGUMENT (NULL pointers). Allocates nothing. */
mrt_status mrt_bitstream_parse(const uint8_t *data, size_t len, mrt_bitstream_header *h,
                               const uint8_t *streams[MRT_BITSTREAM_MAX_STREAMS], mrt_error *err);

/* Serialises the header (version MRT_BITSTREAM_VERSION, h's fields) and
 * payloads streams[0..h->nstreams) of lens[i] bytes (a stream may be empty;
 * its pointer may then be NULL) into one malloc'd buffer, freed with free()
 * or mrt_free(). Fields are validated as parse would (MRT_ERR_ARGUMENT,
 * MRT_ERR_TOO_BIG); MRT_ERR_NOMEM if the buffer cannot be allocated. */
mrt_status mrt_bitstream_write(const mrt_bitstream_header *h, const uint8_t *const streams[],
                               const size_t lens[], uint8_t **out, size_t *out_len,
                               mrt_error *err);

/* Bytes mrt_bitstream_write would produce for this header and these
 * payload lengths (0 if a length is over MRT_BITSTREAM_MAX_STREAM_BYTES). */
size_t mrt_bitstream_size(const mrt_bitstream_header *h, const size_t lens[]);

/* ------------------------------------------------------------------ CRC-32 */

/* CRC-32 of IEEE 802.3 / zlib / PNG (reflected, polynomial 0xEDB88320,
 * initial and final XOR 0xFFFFFFFF). Start with crc = 0; chaining
 * mrt_crc32(mrt_crc32(0, a, n), b, m) gives the CRC of a followed by b.
 * mrt_crc32(0, "123456789", 9) == 0xCBF43926. */
uint32_t mrt_crc32(uint32_t crc, const void *data, size_t len);

/* ------------------------------------------------------ LEB128 varints */

/* Unsigned LEB128: 7 bits per byte, least significant group first, the
 * high bit set on every byte but the last. Only the shortest encoding of a
 * value is accepted. */
#define MRT_VARINT_MAX_BYTES 10

typedef enum mrt_varint_result {
    MRT_VARINT_OK = 0,
    MRT_VARINT_TRUNCATED, /* the data ends inside the varint */
    MRT_VARINT_OVERLONG,  /* a longer encoding than the value needs (a final 0x00 byte, or 11+ bytes) */
    MRT_VARINT_TOO_BIG,   /* the value is over the caller's maximum (or over 64 bits) */
} mrt_varint_result;

/* Writes `value` to out (if not NULL) and returns its length, 1..10. */
size_t mrt_varint_put(uint64_t value, uint8_t *out);

/* Reads a varint from data[0..avail): on MRT_VARINT_OK, *value <= max and
 * *used is its length. Reads no byte past data[avail - 1]. */
mrt_varint_result mrt_varint_get(const uint8_t *data, size_t avail, uint64_t max,
                                 uint64_t *value, size_t *used);

#endif /* MRT_BITSTREAM_H */
