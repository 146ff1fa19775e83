/*
 * test_bitstream.c -- CRC-32, LEB128 varints and the container header.
 *
 * The header is also built here independently, field by field from the
 * layout in codec/BITSTREAM.md (craft()), so the writer is checked against
 * the spec and hostile headers with valid CRCs can be made. Then: round
 * trips, every single-bit flip and every truncation of a valid stream,
 * trailing bytes, hostile sizes, versions and flags, and random garbage.
 */
#include <inttypes.h>
#include <stdint.h>

#include "bitstream.h"
#include "testutil.h"

/* ----------------------------------------------------------------- CRC */

static uint32_t crc32_bitwise(const uint8_t *p, size_t n) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void test_crc32(void) {
    CHECK(mrt_crc32(0, "123456789", 9) == 0xCBF43926u, "check value %08" PRIx32,
          mrt_crc32(0, "123456789", 9));
    CHECK(mrt_crc32(0, "", 0) == 0, "empty");
    CHECK(mrt_crc32(0, "a", 1) == 0xE8B7BE43u, "\"a\"");
    mrt_rng rng;
    mrt_rng_seed(&rng, 3);
    uint8_t buf[1000];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)mrt_rng_next(&rng);
    int bad = 0;
    for (size_t n = 0; n <= sizeof buf; n += 37) {
        uint32_t whole = mrt_crc32(0, buf, n);
        if (whole != crc32_bitwise(buf, n)) bad++;
        size_t cut = n / 3;
        if (mrt_crc32(mrt_crc32(0, buf, cut), buf + cut, n - cut) != whole) bad++;
    }
    CHECK(bad == 0, "%d CRC mismatches against the bitwise definition / chaining", bad);
}

/* -------------------------------------------------------------- varints */

static void test_varints(void) {
    static const struct {
        uint64_t v;
        size_t bytes;
    } cases[] = {{0, 1},          {1, 1},           {127, 1},        {128, 2},
                 {16383, 2},      {16384, 3},       {65535, 3},      {0xFFFFFFFFu, 5},
                 {1ULL << 35, 6}, {1ULL << 63, 10}, {UINT64_MAX, 10}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[MRT_VARINT_MAX_BYTES];
        size_t n = mrt_varint_put(cases[i].v, buf);
        CHECK(n == cases[i].bytes && mrt_varint_put(cases[i].v, NULL) == n, "%" PRIu64 ": %zu bytes",
              cases[i].v, n);
        /* Exact-size heap copy: ASan catches any read past it. */
        uint8_t *exact = malloc(n);
        memcpy(exact, buf, n);
        uint64_t v = 0;
        size_t used = 0;
        CHECK(mrt_varint_get(exact, n, UINT64_MAX, &v, &used) == MRT_VARINT_OK && v == cases[i].v &&
                  used == n,
              "%" PRIu64 " round trip", cases[i].v);
        if (cases[i].v > 0)
            CHECK(mrt_varint_get(exact, n, cases[i].v - 1, &v, &used) == MRT_VARINT_TOO_BIG,
                  "%" PRIu64 " over max", cases[i].v);
        for (size_t cut = 0; cut < n; cut++)
            CHECK(mrt_varint_get(exact, cut, UINT64_MAX, &v, &used) == MRT_VARINT_TRUNCATED,
                  "%" PRIu64 " cut to %zu", cases[i].v, cut);
        free(exact);
    }
    CHECK(mrt_varint_put(0, NULL) == 1, "0 is one byte");
    uint64_t v;
    size_t used;
    static const uint8_t overlong0[] = {0x80, 0x00}, overlong1[] = {0xFF, 0x00},
                         overlong2[] = {0x81, 0x80, 0x00};
    CHECK(mrt_varint_get(overlong0, 2, UINT64_MAX, &v, &used) == MRT_VARINT_OVERLONG, "80 00");
    CHECK(mrt_varint_get(overlong1, 2, UINT64_MAX, &v, &used) == MRT_VARINT_OVERLONG, "ff 00");
    CHECK(mrt_varint_get(overlong2, 3, UINT64_MAX, &v, &used) == MRT_VARINT_OVERLONG, "81 80 00");
    static const uint8_t eleven[11] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    CHECK(mrt_varint_get(eleven, 11, UINT64_MAX, &v, &used) == MRT_VARINT_OVERLONG, "11 bytes");
    static const uint8_t over64[10] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02};
    CHECK(mrt_varint_get(over64, 10, UINT64_MAX, &v, &used) == MRT_VARINT_TOO_BIG, "2^64");
    static const uint8_t w65536[] = {0x80, 0x80, 0x04};
    CHECK(mrt_varint_get(w65536, 3, 65535, &v, &used) == MRT_VARINT_TOO_BIG, "65536 > 65535");
    CHECK(mrt_varint_get(w65536, 3, 65536, &v, &used) == MRT_VARINT_OK && v == 65536, "65536");
    CHECK(mrt_varint_get(NULL, 0, 1, &v, &used) == MRT_VARINT_TRUNCATED, "no bytes");
    /* A hostile continuation run stops at the maximum, long before 10 bytes. */
    static const uint8_t run[10] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    CHECK(mrt_varint_get(run, 10, 65535, &v, &used) == MRT_VARINT_TOO_BIG, "0xff run");
}

/* --------------------------------------------------- the header, by hand */

typedef struct spec {
    int version;
    unsigned flags;
    uint64_t width, height;
    uint64_t coded_width, coded_height; /* written when version >= 2 */
    uint8_t fingerprint[MRT_FINGERPRINT_BYTES];
    uint8_t rate_id;
    int nstreams;
    size_t lens[MRT_BITSTREAM_MAX_STREAMS];
    const uint8_t *payload[MRT_BITSTREAM_MAX_STREAMS];
} spec;

/* The layout of BITSTREAM.md written out independently of bitstream.c,
 * with any field values (valid or not) and correct CRCs. */
static size_t craft(const spec *s, uint8_t *out) {
    size_t pos = 0;
    out[pos++] = 'M';
    out[pos++] = 'R';
    out[pos++] = 'T';
    out[pos++] = (uint8_t)s->version;
    out[pos++] = (uint8_t)s->flags;
    pos += mrt_varint_put(s->width, out + pos);
    pos += mrt_varint_put(s->height, out + pos);
    if (s->version >= 2) {
        pos += mrt_varint_put(s->coded_width, out + pos);
        pos += mrt_varint_put(s->coded_height, out + pos);
    }
    memcpy(out + pos, s->fingerprint, MRT_FINGERPRINT_BYTES);
    pos += MRT_FINGERPRINT_BYTES;
    out[pos++] = s->rate_id;
    out[pos++] = (uint8_t)s->nstreams;
    for (int i = 0; i < s->nstreams && i < MRT_BITSTREAM_MAX_STREAMS; i++) {
        pos += mrt_varint_put(s->lens[i], out + pos);
        uint32_t crc = crc32_bitwise(out, pos);
        /* Continue the CRC over the payload: un-finalise, extend, finalise. */
        crc = ~crc;
        for (size_t k = 0; k < s->lens[i]; k++) {
            crc ^= s->payload[i][k];
            for (int b = 0; b < 8; b++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        }
        crc = ~crc;
        for (int b = 0; b < 4; b++) out[pos++] = (uint8_t)(crc >> (8 * b));
    }
    for (int i = 0; i < s->nstreams && i < MRT_BITSTREAM_MAX_STREAMS; i++) {
        if (s->lens[i]) memcpy(out + pos, s->payload[i], s->lens[i]);
        pos += s->lens[i];
    }
    return pos;
}

static uint8_t payload_bytes[4][400];

static spec valid_spec(int nstreams) {
    spec s;
    memset(&s, 0, sizeof s);
    s.version = 1;
    s.width = 768;
    s.height = 512;
    for (int i = 0; i < MRT_FINGERPRINT_BYTES; i++) s.fingerprint[i] = (uint8_t)(0xA0 + i);
    s.rate_id = 3;
    s.nstreams = nstreams;
    static const size_t lens[4] = {12, 300, 0, 5};
    for (int i = 0; i < nstreams; i++) {
        s.lens[i] = lens[i];
        s.payload[i] = payload_bytes[i];
    }
    return s;
}

static mrt_status parse_status(const uint8_t *data, size_t len, mrt_error *err) {
    mrt_bitstream_header h;
    const uint8_t *streams[MRT_BITSTREAM_MAX_STREAMS];
    return mrt_bitstream_parse(data, len, &h, streams, err);
}

/* Parses a heap copy of exactly len bytes, so ASan sees any over-read. */
static mrt_status parse_exact(const uint8_t *data, size_t len, mrt_error *err) {
    uint8_t *copy = malloc(len ? len : 1);
    if (len) memcpy(copy, data, len);
    mrt_status st = parse_status(copy, len, err);
    free(copy);
    return st;
}

static void test_round_trips(void) {
    mrt_rng rng;
    mrt_rng_seed(&rng, 11);
    for (int i = 0; i < 4; i++)
        for (size_t k = 0; k < sizeof payload_bytes[i]; k++) payload_bytes[i][k] = (uint8_t)mrt_rng_next(&rng);

    static const uint32_t sizes[][2] = {{1, 1}, {127, 128}, {128, 127}, {768, 512},
                                        {65535, 1024}, {8192, 8192}, {1, 65535}, {300, 7}};
    int combos = 0;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        for (int nstreams = 1; nstreams <= MRT_BITSTREAM_MAX_STREAMS; nstreams++) {
            mrt_bitstream_header h;
            memset(&h, 0, sizeof h);
            h.version = (si & 1) ? 1 : 0;
            h.width = sizes[si][0];
            h.height = sizes[si][1];
            for (int i = 0; i < MRT_FINGERPRINT_BYTES; i++) h.fingerprint[i] = (uint8_t)mrt_rng_next(&rng);
            h.rate_id = (uint8_t)(si * 37 + (size_t)nstreams);
            h.nstreams = nstreams;
            const uint8_t *streams[4];
            size_t lens[4];
            for (int i = 0; i < nstreams; i++) {
                lens[i] = mrt_rng_below(&rng, 5) == 0 ? 0 : mrt_rng_below(&rng, 400);
                streams[i] = lens[i] ? payload_bytes[i] : NULL;
            }
            uint8_t *out = NULL;
            size_t out_len = 0;
            mrt_error err;
            mrt_status st = mrt_bitstream_write(&h, streams, lens, &out, &out_len, &err);
            CHECK(st == MRT_OK, "write %ux%u x%d: %s", h.width, h.height, nstreams, err.message);
            if (st != MRT_OK) continue;
            CHECK(out_len == mrt_bitstream_size(&h, lens), "size prediction");

            /* Byte-identical to the independent layout. */
            spec s;
            memset(&s, 0, sizeof s);
            s.version = 1;
            s.width = h.width;
            s.height = h.height;
            memcpy(s.fingerprint, h.fingerprint, MRT_FINGERPRINT_BYTES);
            s.rate_id = h.rate_id;
            s.nstreams = nstreams;
            for (int i = 0; i < nstreams; i++) {
                s.lens[i] = lens[i];
                s.payload[i] = payload_bytes[i];
            }
            uint8_t crafted[2048];
            size_t crafted_len = craft(&s, crafted);
            CHECK(crafted_len == out_len && memcmp(crafted, out, out_len) == 0,
                  "writer differs from the spec layout (%zu vs %zu bytes)", out_len, crafted_len);

            mrt_bitstream_header p;
            const uint8_t *got[4];
            st = mrt_bitstream_parse(out, out_len, &p, got, &err);
            CHECK(st == MRT_OK, "parse: %s", err.message);
            if (st == MRT_OK) {
                CHECK(p.version == 1 && p.flags == 0 && p.width == h.width && p.height == h.height &&
                          memcmp(p.fingerprint, h.fingerprint, MRT_FINGERPRINT_BYTES) == 0 &&
                          p.rate_id == h.rate_id && p.nstreams == nstreams,
                      "fields differ after a round trip");
                size_t sum = p.header_len;
                for (int i = 0; i < nstreams; i++) {
                    CHECK(p.stream_len[i] == lens[i] && got[i] == out + sum &&
                              (lens[i] == 0 || memcmp(got[i], payload_bytes[i], lens[i]) == 0),
                          "stream %d", i);
                    sum += lens[i];
                }
                for (int i = nstreams; i < 4; i++) CHECK(got[i] == NULL, "unused stream %d", i);
                CHECK(sum == out_len, "lengths add up");
                CHECK(err.status == MRT_OK && err.message[0] == 0, "error cleared");
            }
            free(out);
            combos++;
        }
    }
    CHECK(combos == 32, "%d combinations", combos);

    /* The size the lead cares about: 768x512, side + symbol streams. */
    spec s = valid_spec(2);
    uint8_t buf[1024];
    size_t n = craft(&s, buf);
    mrt_bitstream_header h;
    const uint8_t *streams[4];
    mrt_error err;
    CHECK(mrt_bitstream_parse(buf, n, &h, streams, &err) == MRT_OK, "%s", err.message);
    printf("header for 768x512 with 2 streams (12 + 300 bytes): %zu bytes\n", h.header_len);
    CHECK(h.header_len == 30, "header %zu bytes", h.header_len);
}

/* Every single-bit flip of a small valid stream is rejected: each header
 * byte is covered by at least one stream CRC, and each payload by its own. */
static void test_bit_flips(void) {
    spec s = valid_spec(2);
    s.lens[0] = 3;
    s.lens[1] = 20;
    uint8_t buf[256];
    size_t n = craft(&s, buf);
    mrt_error err;
    CHECK(parse_exact(buf, n, &err) == MRT_OK, "valid: %s", err.message);
    int accepted = 0, by_status[16] = {0};
    for (size_t byte = 0; byte < n; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[byte] ^= (uint8_t)(1u << bit);
            mrt_status st = parse_exact(buf, n, &err);
            buf[byte] ^= (uint8_t)(1u << bit);
            if (st == MRT_OK) {
                accepted++;
                fprintf(stderr, "flip of byte %zu bit %d accepted\n", byte, bit);
            } else {
                by_status[st & 15]++;
                if (st != MRT_ERR_CORRUPT && st != MRT_ERR_VERSION && st != MRT_ERR_TOO_BIG)
                    CHECK(0, "flip %zu.%d: unexpected status %s", byte, bit, mrt_status_name(st));
            }
        }
    }
    CHECK(accepted == 0, "%d of %zu single-bit flips accepted", accepted, 8 * n);
    printf("bit flips of a %zu-byte stream: %d rejected as corrupt, %d as a newer version, "
           "%d as too big, %d accepted\n",
           n, by_status[MRT_ERR_CORRUPT], by_status[MRT_ERR_VERSION], by_status[MRT_ERR_TOO_BIG],
           accepted);
}

/* Version 2: the writer picks it only for a working size, writes the
 * layout of BITSTREAM.md §7, and every single-bit flip is rejected. */
static void test_version2(void) {
    mrt_bitstream_header h;
    memset(&h, 0, sizeof h);
    h.width = 4000, h.height = 3000, h.coded_width = 1000, h.coded_height = 750;
    for (int i = 0; i < MRT_FINGERPRINT_BYTES; i++) h.fingerprint[i] = (uint8_t)(0x30 + i);
    h.rate_id = 1;
    h.nstreams = 2;
    const uint8_t *streams[2] = {payload_bytes[0], payload_bytes[1]};
    size_t lens[2] = {3, 20};
    uint8_t *out = NULL;
    size_t out_len = 0;
    mrt_error err;
    CHECK(mrt_bitstream_write(&h, streams, lens, &out, &out_len, &err) == MRT_OK, "%s", err.message);
    if (!out) return;
    CHECK(out_len == mrt_bitstream_size(&h, lens), "v2 size prediction");
    spec s = valid_spec(2);
    s.version = 2, s.width = 4000, s.height = 3000, s.coded_width = 1000, s.coded_height = 750;
    memcpy(s.fingerprint, h.fingerprint, MRT_FINGERPRINT_BYTES);
    s.rate_id = 1, s.lens[0] = 3, s.lens[1] = 20;
    uint8_t buf[1024]; /* valid_spec(2) has a 300-byte stream */
    size_t n = craft(&s, buf);
    CHECK(n == out_len && memcmp(buf, out, n) == 0, "v2 writer differs from the spec layout");
    mrt_bitstream_header p;
    const uint8_t *got[4];
    CHECK(mrt_bitstream_parse(out, out_len, &p, got, &err) == MRT_OK && p.version == 2 &&
              p.width == 4000 && p.height == 3000 && p.coded_width == 1000 && p.coded_height == 750,
          "v2 round trip: %s", err.message);
    free(out);
    /* a version-1 parse reports the image size as the working size */
    s = valid_spec(2);
    n = craft(&s, buf);
    CHECK(mrt_bitstream_parse(buf, n, &p, got, &err) == MRT_OK && p.version == 1 &&
              p.coded_width == 768 && p.coded_height == 512, "v1 working size");
    /* every flip of a v2 stream */
    s.version = 2, s.coded_width = 384, s.coded_height = 256, s.lens[0] = 3, s.lens[1] = 20;
    n = craft(&s, buf);
    CHECK(parse_exact(buf, n, &err) == MRT_OK, "valid v2: %s", err.message);
    int accepted = 0;
    for (size_t byte = 0; byte < n; byte++)
        for (int bit = 0; bit < 8; bit++) {
            buf[byte] ^= (uint8_t)(1u << bit);
            accepted += parse_exact(buf, n, &err) == MRT_OK;
            buf[byte] ^= (uint8_t)(1u << bit);
        }
    CHECK(accepted == 0, "%d single-bit flips of a v2 stream accepted", accepted);
}

static void test_truncation_and_trailing(void) {
    spec s = valid_spec(3);
    uint8_t buf[1024];
    size_t n = craft(&s, buf);
    mrt_error err;
    int accepted = 0;
    for (size_t cut = 0; cut < n; cut++) {
        mrt_status st = parse_exact(buf, cut, &err);
        if (st != MRT_ERR_CORRUPT) {
            accepted++;
            fprintf(stderr, "cut to %zu: %s %s\n", cut, mrt_status_name(st), err.message);
        }
    }
    CHECK(accepted == 0, "%d truncations not rejected as corrupt", accepted);
    CHECK(parse_exact(buf, n - 50, &err) == MRT_ERR_CORRUPT &&
              strstr(err.message, "bitstream truncated: stream 1 needs 300 bytes, 250 left"),
          "message: %s", err.message);
    CHECK(parse_exact(buf, 20, &err) == MRT_ERR_CORRUPT && strstr(err.message, "truncated"),
          "message: %s", err.message);

    for (size_t extra = 1; extra <= 100; extra += 33) {
        uint8_t longer[1200];
        memcpy(longer, buf, n);
        memset(longer + n, 0, extra);
        CHECK(parse_exact(longer, n + extra, &err) == MRT_ERR_CORRUPT && strstr(err.message, "trailing"),
              "%zu trailing bytes: %s", extra, err.message);
    }
}

static void expect(const spec *s, mrt_status want, const char *needle, const char *what) {
    uint8_t buf[1024];
    size_t n = craft(s, buf);
    mrt_error err;
    memset(&err, 0, sizeof err);
    mrt_status st = parse_exact(buf, n, &err);
    CHECK(st == want && (!needle || strstr(err.message, needle)), "%s: got %s \"%s\", want %s \"%s\"",
          what, mrt_status_name(st), err.message, mrt_status_name(want), needle ? needle : "");
}

static void test_hostile_fields(void) {
    spec s = valid_spec(2);
    expect(&s, MRT_OK, NULL, "valid");
    s.width = 65536;
    expect(&s, MRT_ERR_CORRUPT, "width", "width 65536");
    s = valid_spec(2);
    s.width = UINT64_MAX;
    expect(&s, MRT_ERR_CORRUPT, "width", "width 2^64-1");
    s = valid_spec(2);
    s.height = 0;
    expect(&s, MRT_ERR_CORRUPT, "out of range", "height 0");
    s = valid_spec(2);
    s.width = 0;
    expect(&s, MRT_ERR_CORRUPT, "out of range", "width 0");
    s = valid_spec(2);
    s.width = 65535;
    s.height = 65535;
    expect(&s, MRT_ERR_TOO_BIG, "over the limit", "65535x65535");
    s.width = 8192;
    s.height = 8193;
    expect(&s, MRT_ERR_TOO_BIG, "over the limit", "8192x8193");
    s.height = 8192;
    expect(&s, MRT_OK, NULL, "8192x8192");
    s.width = 65535;
    s.height = 1024;
    expect(&s, MRT_OK, NULL, "65535x1024");

    s = valid_spec(2);
    s.version = 3;
    expect(&s, MRT_ERR_VERSION, "version 3 is newer than this library (reads versions 1 to 2)",
           "v3");
    s.version = 7;
    expect(&s, MRT_ERR_VERSION, "version 7 is newer", "v7");
    s.version = 255;
    expect(&s, MRT_ERR_VERSION, "version 255", "v255");
    s.version = 0;
    expect(&s, MRT_ERR_CORRUPT, "version 0", "v0");
    /* version 2's working size: within the image, and not the image size */
    s = valid_spec(2);
    s.version = 2;
    s.coded_width = 384, s.coded_height = 256;
    expect(&s, MRT_OK, NULL, "v2 384x256 of 768x512");
    s.coded_width = 1, s.coded_height = 512;
    expect(&s, MRT_OK, NULL, "v2 1x512 of 768x512");
    s.coded_width = 769, s.coded_height = 256;
    expect(&s, MRT_ERR_CORRUPT, "working size 769x256 is not within", "v2 wider than the image");
    s.coded_width = 384, s.coded_height = 0;
    expect(&s, MRT_ERR_CORRUPT, "working size 384x0", "v2 height 0");
    s.coded_width = 768, s.coded_height = 512;
    expect(&s, MRT_ERR_CORRUPT, "that is a version 1 bitstream", "v2 at the image size");
    s.coded_width = 65536;
    expect(&s, MRT_ERR_CORRUPT, "working width", "v2 working width 65536");
    s = valid_spec(2);
    s.flags = 0x80;
    expect(&s, MRT_ERR_CORRUPT, "unknown flags 0x80", "flags");
    s.flags = 0x01;
    expect(&s, MRT_ERR_CORRUPT, "unknown flags 0x01", "flags");
    s = valid_spec(2);
    s.nstreams = 0;
    expect(&s, MRT_ERR_CORRUPT, "stream count 0", "0 streams");
    s.nstreams = 5;
    expect(&s, MRT_ERR_CORRUPT, "stream count 5", "5 streams");

    /* A stream length beyond everything that follows, and beyond 32 bits. */
    s = valid_spec(2);
    uint8_t buf[1024];
    size_t n = craft(&s, buf);
    mrt_error err;
    size_t len_at = 3 + 1 + 1 + 2 + 2 + MRT_FINGERPRINT_BYTES + 1 + 1 + 1 + 4; /* stream 1's length */
    CHECK(buf[len_at] == 0xAC && buf[len_at + 1] == 0x02, "layout: 300 = ac 02");
    buf[len_at + 1] = 0x7F; /* 300 -> 16300 */
    CHECK(parse_exact(buf, n, &err) == MRT_ERR_CORRUPT &&
              strstr(err.message, "stream 1 needs 16300 bytes, 300 left"),
          "%s", err.message);
    uint8_t big[64];
    memcpy(big, buf, len_at);
    static const uint8_t five[] = {0x80, 0x80, 0x80, 0x80, 0x10}; /* 2^32 */
    memcpy(big + len_at, five, sizeof five);
    CHECK(parse_exact(big, len_at + sizeof five, &err) == MRT_ERR_CORRUPT &&
              strstr(err.message, "over its maximum"),
          "%s", err.message);
    static const uint8_t overlong[] = {0x85, 0x00};
    memcpy(big + len_at, overlong, sizeof overlong);
    CHECK(parse_exact(big, len_at + 2, &err) == MRT_ERR_CORRUPT && strstr(err.message, "overlong"),
          "%s", err.message);

    /* Messages. */
    static const uint8_t png[] = {0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A};
    CHECK(parse_exact(png, sizeof png, &err) == MRT_ERR_CORRUPT &&
              strcmp(err.message, "bad magic 89 50 4e (not an mrt bitstream)") == 0,
          "%s", err.message);
    CHECK(parse_exact(png, 1, &err) == MRT_ERR_CORRUPT && strstr(err.message, "bad magic 89 (not"),
          "%s", err.message);
    CHECK(parse_exact((const uint8_t *)"MR", 2, &err) == MRT_ERR_CORRUPT && strstr(err.message, "truncated"),
          "%s", err.message);
    CHECK(parse_exact(NULL, 0, &err) == MRT_ERR_CORRUPT && strstr(err.message, "empty"), "%s",
          err.message);
    s = valid_spec(2);
    n = craft(&s, buf);
    buf[n - 1] ^= 0x40;
    CHECK(parse_exact(buf, n, &err) == MRT_ERR_CORRUPT && strstr(err.message, "CRC mismatch in stream 1 (stored "),
          "%s", err.message);
    mrt_bitstream_header h;
    const uint8_t *streams[4];
    CHECK(mrt_bitstream_parse(buf, n, NULL, streams, &err) == MRT_ERR_ARGUMENT, "NULL header");
    CHECK(mrt_bitstream_parse(NULL, 5, &h, streams, &err) == MRT_ERR_ARGUMENT, "NULL data");
    CHECK(parse_status(buf, n, NULL) == MRT_ERR_CORRUPT, "NULL err is fine");
}

static void test_writer_rejects(void) {
    mrt_bitstream_header h;
    memset(&h, 0, sizeof h);
    h.width = 10;
    h.height = 10;
    h.nstreams = 1;
    const uint8_t *streams[1] = {payload_bytes[0]};
    size_t lens[1] = {4};
    uint8_t *out = (uint8_t *)1;
    size_t out_len = 99;
    mrt_error err;
    CHECK(mrt_bitstream_write(&h, streams, lens, &out, &out_len, &err) == MRT_OK, "%s", err.message);
    free(out);
    struct {
        int field;
        long long value;
        mrt_status want;
    } bad[] = {{0, 0, MRT_ERR_ARGUMENT},     {0, 65536, MRT_ERR_ARGUMENT}, {1, 0, MRT_ERR_ARGUMENT},
               {2, 0, MRT_ERR_ARGUMENT},     {2, 5, MRT_ERR_ARGUMENT},     {3, 2, MRT_ERR_ARGUMENT},
               {4, 1, MRT_ERR_ARGUMENT},     {5, 65535, MRT_ERR_TOO_BIG},  {3, 3, MRT_ERR_ARGUMENT},
               {3, -1, MRT_ERR_ARGUMENT},    {6, 11, MRT_ERR_ARGUMENT},    {7, 0, MRT_ERR_ARGUMENT}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mrt_bitstream_header b = h;
        switch (bad[i].field) {
        case 0: b.width = (uint32_t)bad[i].value; break;
        case 1: b.height = (uint32_t)bad[i].value; break;
        case 2: b.nstreams = (int)bad[i].value; break;
        case 3: b.version = (int)bad[i].value; break;
        case 4: b.flags = (unsigned)bad[i].value; break;
        case 5: b.width = b.height = (uint32_t)bad[i].value; break;
        case 6: b.coded_width = (uint32_t)bad[i].value, b.coded_height = 5; break; /* wider */
        case 7: b.version = 1, b.coded_width = 5, b.coded_height = 5; break; /* v1 can't say it */
        }
        out = (uint8_t *)1;
        mrt_status st = mrt_bitstream_write(&b, streams, lens, &out, &out_len, &err);
        CHECK(st == bad[i].want && out == NULL && out_len == 0, "bad writer case %zu: %s (%s)", i,
              mrt_status_name(st), err.message);
    }
    const uint8_t *null_stream[1] = {NULL};
    CHECK(mrt_bitstream_write(&h, null_stream, lens, &out, &out_len, &err) == MRT_ERR_ARGUMENT,
          "NULL payload with a length");
    size_t zero[1] = {0};
    CHECK(mrt_bitstream_write(&h, null_stream, zero, &out, &out_len, &err) == MRT_OK &&
              out_len == MRT_BITSTREAM_MIN_BYTES,
          "empty stream: %zu bytes", out_len);
    free(out);
}

/* Random and mutated input: never a crash (ASan), never OK for garbage. */
static void test_garbage(void) {
    mrt_rng rng;
    mrt_rng_seed(&rng, 77);
    spec s = valid_spec(4);
    uint8_t valid[1024];
    size_t n = craft(&s, valid);
    int ok_garbage = 0;
    mrt_error err;
    for (int trial = 0; trial < 20000; trial++) {
        uint8_t buf[1024];
        size_t len;
        if (trial % 2 == 0) {
            len = mrt_rng_below(&rng, 64);
            for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)mrt_rng_next(&rng);
            if (len >= 3 && trial % 4 == 0) memcpy(buf, "MRT\x01", len >= 4 ? 4 : 3);
        } else {
            memcpy(buf, valid, n);
            len = n;
            int edits = 1 + (int)mrt_rng_below(&rng, 4);
            for (int e = 0; e < edits; e++) buf[mrt_rng_below(&rng, (uint32_t)len)] = (uint8_t)mrt_rng_next(&rng);
            if (mrt_rng_below(&rng, 3) == 0) len = mrt_rng_below(&rng, (uint32_t)len + 1);
            if (len == n && memcmp(buf, valid, n) == 0) continue; /* an edit that changed nothing */
        }
        if (parse_exact(buf, len, &err) == MRT_OK) ok_garbage++;
    }
    CHECK(ok_garbage == 0, "%d garbage buffers accepted", ok_garbage);
}

int main(void) {
    test_crc32();
    test_varints();
    test_round_trips();
    test_bit_flips();
    test_version2();
    test_truncation_and_trailing();
    test_hostile_fields();
    test_writer_rejects();
    test_garbage();
    return tu_finish("test_bitstream");
}
