/*
 * bitstream.c -- CRC-32 (zlib's), LEB128 varints and the container (rules in
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
#include <zlib.h>

#include "status.h"

/* ------------------------------------------------------------------ CRC-32 */

/* zlib's (libpng links it already): the same CRC, table-driven with
 * slicing, and no table of our own to get wrong. */
uint32_t mrt_crc32(uint32_t crc, const void *data, size_t len) {
    return (uint32_t)crc32_z(crc, data, len);
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
