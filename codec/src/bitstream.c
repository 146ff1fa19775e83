/*
 * bitstream.c -- CRC-32, LEB128 varints and the container (rules in
 * bitstream.h, layout in codec/BITSTREAM.md).
 *
 * The parser walks the bytes with a cursor whose every read is preceded by
 * a check against what remains, in three passes: structure (fields, stream
 * table, exact total length), integrity (each CRC), meaning (size limits).
 * That order gives the most useful message: damage is reported as damage
 * ("CRC mismatch") rather than as whatever nonsense a flipped bit spells,
 * and an out-of-limit size is only reported for a stream that is intact.
 * Multi-byte fields are assembled byte by byte, so the host's endianness
 * does not matter.
 */
#include "bitstream.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

/* ------------------------------------------------------------------ CRC-32 */

/* crc_table[b] = the CRC register after shifting byte b through the
 * reflected polynomial 0xEDB88320 eight times (generated once, checked
 * against the bit-by-bit definition in tests/test_bitstream.c). */
static const uint32_t crc_table[256] = {
    0x00000000, 0x77073096, 0xee0e612c, 0x990951ba, 0x076dc419, 0x706af48f,
    0xe963a535, 0x9e6495a3, 0x0edb8832, 0x79dcb8a4, 0xe0d5e91e, 0x97d2d988,
    0x09b64c2b, 0x7eb17cbd, 0xe7b82d07, 0x90bf1d91, 0x1db71064, 0x6ab020f2,
    0xf3b97148, 0x84be41de, 0x1adad47d, 0x6ddde4eb, 0xf4d4b551, 0x83d385c7,
    0x136c9856, 0x646ba8c0, 0xfd62f97a, 0x8a65c9ec, 0x14015c4f, 0x63066cd9,
    0xfa0f3d63, 0x8d080df5, 0x3b6e20c8, 0x4c69105e, 0xd56041e4, 0xa2677172,
    0x3c03e4d1, 0x4b04d447, 0xd20d85fd, 0xa50ab56b, 0x35b5a8fa, 0x42b2986c,
    0xdbbbc9d6, 0xacbcf940, 0x32d86ce3, 0x45df5c75, 0xdcd60dcf, 0xabd13d59,
    0x26d930ac, 0x51de003a, 0xc8d75180, 0xbfd06116, 0x21b4f4b5, 0x56b3c423,
    0xcfba9599, 0xb8bda50f, 0x2802b89e, 0x5f058808, 0xc60cd9b2, 0xb10be924,
    0x2f6f7c87, 0x58684c11, 0xc1611dab, 0xb6662d3d, 0x76dc4190, 0x01db7106,
    0x98d220bc, 0xefd5102a, 0x71b18589, 0x06b6b51f, 0x9fbfe4a5, 0xe8b8d433,
    0x7807c9a2, 0x0f00f934, 0x9609a88e, 0xe10e9818, 0x7f6a0dbb, 0x086d3d2d,
    0x91646c97, 0xe6635c01, 0x6b6b51f4, 0x1c6c6162, 0x856530d8, 0xf262004e,
    0x6c0695ed, 0x1b01a57b, 0x8208f4c1, 0xf50fc457, 0x65b0d9c6, 0x12b7e950,
    0x8bbeb8ea, 0xfcb9887c, 0x62dd1ddf, 0x15da2d49, 0x8cd37cf3, 0xfbd44c65,
    0x4db26158, 0x3ab551ce, 0xa3bc0074, 0xd4bb30e2, 0x4adfa541, 0x3dd895d7,
    0xa4d1c46d, 0xd3d6f4fb, 0x4369e96a, 0x346ed9fc, 0xad678846, 0xda60b8d0,
    0x44042d73, 0x33031de5, 0xaa0a4c5f, 0xdd0d7cc9, 0x5005713c, 0x270241aa,
    0xbe0b1010, 0xc90c2086, 0x5768b525, 0x206f85b3, 0xb966d409, 0xce61e49f,
    0x5edef90e, 0x29d9c998, 0xb0d09822, 0xc7d7a8b4, 0x59b33d17, 0x2eb40d81,
    0xb7bd5c3b, 0xc0ba6cad, 0xedb88320, 0x9abfb3b6, 0x03b6e20c, 0x74b1d29a,
    0xead54739, 0x9dd277af, 0x04db2615, 0x73dc1683, 0xe3630b12, 0x94643b84,
    0x0d6d6a3e, 0x7a6a5aa8, 0xe40ecf0b, 0x9309ff9d, 0x0a00ae27, 0x7d079eb1,
    0xf00f9344, 0x8708a3d2, 0x1e01f268, 0x6906c2fe, 0xf762575d, 0x806567cb,
    0x196c3671, 0x6e6b06e7, 0xfed41b76, 0x89d32be0, 0x10da7a5a, 0x67dd4acc,
    0xf9b9df6f, 0x8ebeeff9, 0x17b7be43, 0x60b08ed5, 0xd6d6a3e8, 0xa1d1937e,
    0x38d8c2c4, 0x4fdff252, 0xd1bb67f1, 0xa6bc5767, 0x3fb506dd, 0x48b2364b,
    0xd80d2bda, 0xaf0a1b4c, 0x36034af6, 0x41047a60, 0xdf60efc3, 0xa867df55,
    0x316e8eef, 0x4669be79, 0xcb61b38c, 0xbc66831a, 0x256fd2a0, 0x5268e236,
    0xcc0c7795, 0xbb0b4703, 0x220216b9, 0x5505262f, 0xc5ba3bbe, 0xb2bd0b28,
    0x2bb45a92, 0x5cb36a04, 0xc2d7ffa7, 0xb5d0cf31, 0x2cd99e8b, 0x5bdeae1d,
    0x9b64c2b0, 0xec63f226, 0x756aa39c, 0x026d930a, 0x9c0906a9, 0xeb0e363f,
    0x72076785, 0x05005713, 0x95bf4a82, 0xe2b87a14, 0x7bb12bae, 0x0cb61b38,
    0x92d28e9b, 0xe5d5be0d, 0x7cdcefb7, 0x0bdbdf21, 0x86d3d2d4, 0xf1d4e242,
    0x68ddb3f8, 0x1fda836e, 0x81be16cd, 0xf6b9265b, 0x6fb077e1, 0x18b74777,
    0x88085ae6, 0xff0f6a70, 0x66063bca, 0x11010b5c, 0x8f659eff, 0xf862ae69,
    0x616bffd3, 0x166ccf45, 0xa00ae278, 0xd70dd2ee, 0x4e048354, 0x3903b3c2,
    0xa7672661, 0xd06016f7, 0x4969474d, 0x3e6e77db, 0xaed16a4a, 0xd9d65adc,
    0x40df0b66, 0x37d83bf0, 0xa9bcae53, 0xdebb9ec5, 0x47b2cf7f, 0x30b5ffe9,
    0xbdbdf21c, 0xcabac28a, 0x53b39330, 0x24b4a3a6, 0xbad03605, 0xcdd70693,
    0x54de5729, 0x23d967bf, 0xb3667a2e, 0xc4614ab8, 0x5d681b02, 0x2a6f2b94,
    0xb40bbe37, 0xc30c8ea1, 0x5a05df1b, 0x2d02ef8d,
};

uint32_t mrt_crc32(uint32_t crc, const void *data, size_t len) {
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < len; i++) crc = crc_table[(crc ^ p[i]) & 0xFFu] ^ (crc >> 8);
    return ~crc;
}

/* ------------------------------------------------------ LEB128 varints */

size_t mrt_varint_put(uint64_t value, uint8_t *out) {
    size_t n = 0;
    do {
        uint8_t b = (uint8_t)(value & 0x7Fu);
        value >>= 7;
        if (value) b |= 0x80u;
        if (out) out[n] = b;
        n++;
    } while (value);
    return n;
}

mrt_varint_result mrt_varint_get(const uint8_t *data, size_t avail, uint64_t max,
                                 uint64_t *value, size_t *used) {
    uint64_t v = 0;
    for (size_t i = 0;; i++) {
        if (i == MRT_VARINT_MAX_BYTES) return MRT_VARINT_OVERLONG;
        if (i >= avail) return MRT_VARINT_TRUNCATED;
        uint8_t b = data[i];
        uint64_t payload = b & 0x7Fu;
        /* The 10th byte holds bit 63 only. */
        if (i == MRT_VARINT_MAX_BYTES - 1 && payload > 1) return MRT_VARINT_TOO_BIG;
        v |= payload << (7 * i);
        /* Later bytes only add bits: over the maximum now is over for good,
         * which also stops a hostile run of continuation bytes early. */
        if (v > max) return MRT_VARINT_TOO_BIG;
        if (!(b & 0x80u)) {
            if (i > 0 && b == 0) return MRT_VARINT_OVERLONG;
            *value = v;
            *used = i + 1;
            return MRT_VARINT_OK;
        }
    }
}

/* ------------------------------------------------------------ the header */

typedef struct cursor {
    const uint8_t *data;
    size_t len, pos;
} cursor;

static size_t left(const cursor *c) { return c->len - c->pos; }

static mrt_status truncated_in(mrt_error *err, const cursor *c, const char *field, size_t need) {
    return mrt_fail(err, MRT_ERR_CORRUPT,
                    "bitstream truncated in the header: %s needs %zu byte%s at offset %zu, %zu left "
                    "(bitstream is %zu bytes)",
                    field, need, need == 1 ? "" : "s", c->pos, left(c), c->len);
}

static mrt_status read_bytes(cursor *c, void *dst, size_t n, const char *field, mrt_error *err) {
    if (left(c) < n) return truncated_in(err, c, field, n);
    memcpy(dst, c->data + c->pos, n);
    c->pos += n;
    return MRT_OK;
}

static mrt_status read_varint(cursor *c, uint64_t max, uint64_t *v, const char *field,
                              mrt_error *err) {
    size_t used = 0;
    switch (mrt_varint_get(c->data + c->pos, left(c), max, v, &used)) {
    case MRT_VARINT_OK:
        c->pos += used;
        return MRT_OK;
    case MRT_VARINT_TRUNCATED:
        return mrt_fail(err, MRT_ERR_CORRUPT,
                        "bitstream truncated in the header: the data ends inside the varint of %s "
                        "at offset %zu (bitstream is %zu bytes)",
                        field, c->pos, c->len);
    case MRT_VARINT_OVERLONG:
        return mrt_fail(err, MRT_ERR_CORRUPT,
                        "%s at offset %zu is an overlong varint (not the shortest encoding)", field,
                        c->pos);
    case MRT_VARINT_TOO_BIG:
        return mrt_fail(err, MRT_ERR_CORRUPT, "%s at offset %zu is over its maximum %" PRIu64,
                        field, c->pos, max);
    }
    return mrt_fail(err, MRT_ERR_CORRUPT, "%s: unreadable varint", field);
}

/* The checks parse and write share: the image size. */
static mrt_status check_size(uint32_t width, uint32_t height, mrt_status bad_status,
                             mrt_error *err) {
    if (width < 1 || width > MRT_MAX_SIDE || height < 1 || height > MRT_MAX_SIDE)
        return mrt_fail(err, bad_status, "image size %" PRIu32 "x%" PRIu32
                        " out of range (each side 1..%d)", width, height, MRT_MAX_SIDE);
    if ((uint64_t)width * height > (uint64_t)MRT_MAX_PIXELS)
        return mrt_fail(err, MRT_ERR_TOO_BIG, "image size %" PRIu32 "x%" PRIu32 " is %" PRIu64
                        " pixels, over the limit of %lld", width, height,
                        (uint64_t)width * height, (long long)MRT_MAX_PIXELS);
    return MRT_OK;
}

/* Version 2's working size: 1..width by 1..height, and not the image size
 * itself (that stream is a version-1 stream: one encoding per picture). */
static mrt_status check_working_size(const mrt_bitstream_header *h, mrt_status bad_status,
                                     mrt_error *err) {
    if (h->version < 2) return MRT_OK;
    if (h->coded_width < 1 || h->coded_width > h->width || h->coded_height < 1 ||
        h->coded_height > h->height)
        return mrt_fail(err, bad_status, "working size %" PRIu32 "x%" PRIu32 " is not within "
                        "the image size %" PRIu32 "x%" PRIu32, h->coded_width, h->coded_height,
                        h->width, h->height);
    if (h->coded_width == h->width && h->coded_height == h->height)
        return mrt_fail(err, bad_status, "version 2 bitstream whose working size is the image "
                        "size %" PRIu32 "x%" PRIu32 " (that is a version 1 bitstream)",
                        h->width, h->height);
    return MRT_OK;
}

mrt_status mrt_bitstream_parse(const uint8_t *data, size_t len, mrt_bitstream_header *h,
                               const uint8_t *streams[MRT_BITSTREAM_MAX_STREAMS], mrt_error *err) {
    if (!h || !streams || (!data && len))
        return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_bitstream_parse: NULL argument");
    memset(h, 0, sizeof *h);
    for (int i = 0; i < MRT_BITSTREAM_MAX_STREAMS; i++) streams[i] = NULL;
    cursor c = {data, len, 0};
    mrt_status st;

    /* Magic first, on whatever bytes there are, so that "not ours" is
     * told apart from "ours but cut short". */
    if (len == 0) return mrt_fail(err, MRT_ERR_CORRUPT, "empty bitstream (0 bytes)");
    size_t nmagic = len < MRT_BITSTREAM_MAGIC_BYTES ? len : MRT_BITSTREAM_MAGIC_BYTES;
    if (memcmp(data, MRT_BITSTREAM_MAGIC, nmagic) != 0) {
        char shown[3 * MRT_BITSTREAM_MAGIC_BYTES + 1] = "";
        for (size_t i = 0, at = 0; i < nmagic; i++)
            at += (size_t)snprintf(shown + at, sizeof shown - at, i ? " %02x" : "%02x", data[i]);
        return mrt_fail(err, MRT_ERR_CORRUPT, "bad magic %s (not an mrt bitstream)", shown);
    }
    uint8_t magic[MRT_BITSTREAM_MAGIC_BYTES], version, flags;
    if ((st = read_bytes(&c, magic, sizeof magic, "the magic", err))) return st;
    if ((st = read_bytes(&c, &version, 1, "the version", err))) return st;
    /* The version decides the layout of everything after it, so it is
     * judged before anything else is read. */
    if (version == 0)
        return mrt_fail(err, MRT_ERR_CORRUPT, "version 0 is not a valid bitstream version");
    if (version > MRT_BITSTREAM_VERSION)
        return mrt_fail(err, MRT_ERR_VERSION, "version %d is newer than this library (reads "
                        "versions 1 to %d)", version, MRT_BITSTREAM_VERSION);
    h->version = version;
    if ((st = read_bytes(&c, &flags, 1, "the flags", err))) return st;
    if (flags & ~MRT_BITSTREAM_KNOWN_FLAGS)
        return mrt_fail(err, MRT_ERR_CORRUPT, "unknown flags 0x%02x in a version %d bitstream "
                        "(known: 0x%02x)", flags & ~MRT_BITSTREAM_KNOWN_FLAGS, version,
                        MRT_BITSTREAM_KNOWN_FLAGS);
    h->flags = flags;
    uint64_t v;
    if ((st = read_varint(&c, MRT_MAX_SIDE, &v, "the width", err))) return st;
    h->width = (uint32_t)v;
    if ((st = read_varint(&c, MRT_MAX_SIDE, &v, "the height", err))) return st;
    h->height = (uint32_t)v;
    h->coded_width = h->width, h->coded_height = h->height;
    if (version >= 2) {
        if ((st = read_varint(&c, MRT_MAX_SIDE, &v, "the working width", err))) return st;
        h->coded_width = (uint32_t)v;
        if ((st = read_varint(&c, MRT_MAX_SIDE, &v, "the working height", err))) return st;
        h->coded_height = (uint32_t)v;
    }
    if ((st = read_bytes(&c, h->fingerprint, MRT_FINGERPRINT_BYTES, "the model fingerprint", err)))
        return st;
    if ((st = read_bytes(&c, &h->rate_id, 1, "the rate id", err))) return st;
    uint8_t nstreams;
    if ((st = read_bytes(&c, &nstreams, 1, "the stream count", err))) return st;
    if (nstreams < 1 || nstreams > MRT_BITSTREAM_MAX_STREAMS)
        return mrt_fail(err, MRT_ERR_CORRUPT, "stream count %d out of range 1..%d", nstreams,
                        MRT_BITSTREAM_MAX_STREAMS);
    h->nstreams = nstreams;

    size_t crc_offset[MRT_BITSTREAM_MAX_STREAMS];
    const uint8_t *payload[MRT_BITSTREAM_MAX_STREAMS]; /* handed out only when all is valid */
    uint64_t stream_len[MRT_BITSTREAM_MAX_STREAMS];
    for (int i = 0; i < nstreams; i++) {
        char field[32];
        snprintf(field, sizeof field, "stream %d's length", i);
        if ((st = read_varint(&c, MRT_BITSTREAM_MAX_STREAM_BYTES, &stream_len[i], field, err)))
            return st;
        crc_offset[i] = c.pos;
        uint8_t crc[4];
        snprintf(field, sizeof field, "stream %d's CRC", i);
        if ((st = read_bytes(&c, crc, 4, field, err))) return st;
        h->stream_crc[i] = (uint32_t)crc[0] | (uint32_t)crc[1] << 8 | (uint32_t)crc[2] << 16 |
                           (uint32_t)crc[3] << 24;
    }
    h->header_len = c.pos;

    /* The payloads fill the rest exactly. Lengths are compared as
     * uint64_t before they become size_t, so nothing overflows even where
     * size_t has 32 bits. */
    for (int i = 0; i < nstreams; i++) {
        if (stream_len[i] > (uint64_t)left(&c))
            return mrt_fail(err, MRT_ERR_CORRUPT, "bitstream truncated: stream %d needs %" PRIu64
                            " bytes, %zu left", i, stream_len[i], left(&c));
        h->stream_len[i] = (size_t)stream_len[i];
        payload[i] = data + c.pos;
        c.pos += h->stream_len[i];
    }
    if (left(&c) > 0)
        return mrt_fail(err, MRT_ERR_CORRUPT, "%zu trailing bytes after the last stream (the header "
                        "and streams account for %zu of %zu bytes)", left(&c), c.pos, len);

    /* Each CRC covers the header up to its own field, then its payload:
     * together they protect every header byte. */
    for (int i = 0; i < nstreams; i++) {
        uint32_t crc = mrt_crc32(0, data, crc_offset[i]);
        crc = mrt_crc32(crc, payload[i], h->stream_len[i]);
        if (crc != h->stream_crc[i])
            return mrt_fail(err, MRT_ERR_CORRUPT, "CRC mismatch in stream %d (stored %08" PRIx32
                            ", computed %08" PRIx32 "): the bitstream is damaged",
                            i, h->stream_crc[i], crc);
    }

    if ((st = check_size(h->width, h->height, MRT_ERR_CORRUPT, err))) return st;
    if ((st = check_working_size(h, MRT_ERR_CORRUPT, err))) return st;
    for (int i = 0; i < nstreams; i++) streams[i] = payload[i];
    return mrt_ok(err);
}

/* The version a header is written as: the one asked for, or (0) the
 * lowest that can carry it: 2 when the working size differs from the
 * image size. The working size with 0 x 0 meaning "the image size". */
static int written_version(const mrt_bitstream_header *h, uint32_t *cw, uint32_t *ch) {
    *cw = h->coded_width ? h->coded_width : h->width;
    *ch = h->coded_height ? h->coded_height : h->height;
    if (h->version) return h->version;
    return *cw == h->width && *ch == h->height ? 1 : 2;
}

/* Header bytes up to (not including) the stream table. */
static size_t fixed_header_bytes(const mrt_bitstream_header *h) {
    uint32_t cw, ch;
    size_t working = written_version(h, &cw, &ch) >= 2
                         ? mrt_varint_put(cw, NULL) + mrt_varint_put(ch, NULL)
                         : 0;
    return MRT_BITSTREAM_MAGIC_BYTES + 1 + 1 + mrt_varint_put(h->width, NULL) +
           mrt_varint_put(h->height, NULL) + working + MRT_FINGERPRINT_BYTES + 1 + 1;
}

size_t mrt_bitstream_size(const mrt_bitstream_header *h, const size_t lens[]) {
    size_t n = fixed_header_bytes(h);
    for (int i = 0; i < h->nstreams && i < MRT_BITSTREAM_MAX_STREAMS; i++) {
        if (lens[i] > MRT_BITSTREAM_MAX_STREAM_BYTES) return 0;
        n += mrt_varint_put(lens[i], NULL) + 4 + lens[i];
    }
    return n;
}

static void put_u32le(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

mrt_status mrt_bitstream_write(const mrt_bitstream_header *h, const uint8_t *const streams[],
                               const size_t lens[], uint8_t **out, size_t *out_len,
                               mrt_error *err) {
    if (!h || !lens || !out || !out_len || (!streams && h->nstreams > 0))
        return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_bitstream_write: NULL argument");
    *out = NULL;
    *out_len = 0;
    if (h->version < 0 || h->version > MRT_BITSTREAM_VERSION)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "cannot write bitstream version %d (writes 1 to %d)",
                        h->version, MRT_BITSTREAM_VERSION);
    if (h->flags & ~MRT_BITSTREAM_KNOWN_FLAGS)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "unknown bitstream flags 0x%02x", h->flags);
    if (h->nstreams < 1 || h->nstreams > MRT_BITSTREAM_MAX_STREAMS)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "stream count %d out of range 1..%d", h->nstreams,
                        MRT_BITSTREAM_MAX_STREAMS);
    mrt_status st = check_size(h->width, h->height, MRT_ERR_ARGUMENT, err);
    if (st) return st;
    mrt_bitstream_header as_written = *h;
    int version = written_version(h, &as_written.coded_width, &as_written.coded_height);
    as_written.version = version;
    if (version == 1 && (as_written.coded_width != h->width || as_written.coded_height != h->height))
        return mrt_fail(err, MRT_ERR_ARGUMENT, "a version 1 bitstream cannot carry a working size "
                        "(%" PRIu32 "x%" PRIu32 " for a %" PRIu32 "x%" PRIu32 " image)",
                        as_written.coded_width, as_written.coded_height, h->width, h->height);
    if ((st = check_working_size(&as_written, MRT_ERR_ARGUMENT, err))) return st;
    for (int i = 0; i < h->nstreams; i++) {
        if (lens[i] > MRT_BITSTREAM_MAX_STREAM_BYTES)
            return mrt_fail(err, MRT_ERR_ARGUMENT, "stream %d is %zu bytes, over the maximum %u", i,
                            lens[i], MRT_BITSTREAM_MAX_STREAM_BYTES);
        if (lens[i] > 0 && !streams[i])
            return mrt_fail(err, MRT_ERR_ARGUMENT, "stream %d: NULL data for %zu bytes", i, lens[i]);
    }

    size_t total = mrt_bitstream_size(h, lens);
    uint8_t *buf = malloc(total);
    if (!buf) return mrt_fail(err, MRT_ERR_NOMEM, "out of memory for a %zu-byte bitstream", total);
    size_t pos = 0;
    memcpy(buf, MRT_BITSTREAM_MAGIC, MRT_BITSTREAM_MAGIC_BYTES);
    pos += MRT_BITSTREAM_MAGIC_BYTES;
    buf[pos++] = (uint8_t)version;
    buf[pos++] = (uint8_t)h->flags;
    pos += mrt_varint_put(h->width, buf + pos);
    pos += mrt_varint_put(h->height, buf + pos);
    if (version >= 2) {
        pos += mrt_varint_put(as_written.coded_width, buf + pos);
        pos += mrt_varint_put(as_written.coded_height, buf + pos);
    }
    memcpy(buf + pos, h->fingerprint, MRT_FINGERPRINT_BYTES);
    pos += MRT_FINGERPRINT_BYTES;
    buf[pos++] = h->rate_id;
    buf[pos++] = (uint8_t)h->nstreams;
    /* CRC i covers buf[0 .. its own field) and payload i; the table entries
     * before it are already written when it is computed. */
    for (int i = 0; i < h->nstreams; i++) {
        pos += mrt_varint_put(lens[i], buf + pos);
        uint32_t crc = mrt_crc32(0, buf, pos);
        if (lens[i]) crc = mrt_crc32(crc, streams[i], lens[i]);
        put_u32le(buf + pos, crc);
        pos += 4;
    }
    for (int i = 0; i < h->nstreams; i++) {
        if (lens[i]) memcpy(buf + pos, streams[i], lens[i]);
        pos += lens[i];
    }
    *out = buf;
    *out_len = pos;
    return mrt_ok(err);
}
