/*
 * gguf.c -- reader and writer for mrt's GGUF v3 subset (the rules are in gguf.h).
 *
 * The reader works on a byte image (an mmap of the file, or an owned copy)
 * through a cursor whose every read is preceded by a length check against
 * the bytes that remain, so a hostile length or count is rejected before
 * anything is allocated for it. Validation happens once, in open; after
 * that every accessor can trust the parsed tables.
 *
 * Header fields are decoded byte by byte (little-endian, unaligned-safe);
 * tensor data is handed out in place, which is why the host must be
 * little-endian.
 */
#define _POSIX_C_SOURCE 200809L

#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mrt.h"
#include "mrt_sha256.h"

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
    __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf.c hands out tensor data in place and so needs a little-endian host"
#endif

#define ALIGNMENT_KEY "general.alignment"

/* Smallest possible encodings, used to bound counts by the bytes left:
 * a KV is an 8-byte key length, a 1-byte key, a 4-byte type and a 1-byte
 * value; a tensor info is an 8-byte name length, a 1-byte name, n_dims,
 * one dim, type and offset. */
#define MIN_KV_BYTES (8 + 1 + 4 + 1)
#define MIN_TENSOR_INFO_BYTES (8 + 1 + 4 + 8 + 4 + 8)
#define HEADER_BYTES (4 + 4 + 8 + 8)

/* ------------------------------------------------------------ small helpers */

static void set_error(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

const char *mrt_gguf_type_name(mrt_gguf_type type) {
    switch (type) {
    case MRT_GGUF_F32: return "F32";
    case MRT_GGUF_I8: return "I8";
    case MRT_GGUF_I16: return "I16";
    case MRT_GGUF_I32: return "I32";
    }
    return "?";
}

size_t mrt_gguf_type_size(mrt_gguf_type type) {
    switch (type) {
    case MRT_GGUF_F32: return 4;
    case MRT_GGUF_I8: return 1;
    case MRT_GGUF_I16: return 2;
    case MRT_GGUF_I32: return 4;
    }
    return 0;
}

const char *mrt_gguf_vtype_name(mrt_gguf_vtype type) {
    switch (type) {
    case MRT_GGUF_V_U8: return "u8";
    case MRT_GGUF_V_I8: return "i8";
    case MRT_GGUF_V_U16: return "u16";
    case MRT_GGUF_V_I16: return "i16";
    case MRT_GGUF_V_U32: return "u32";
    case MRT_GGUF_V_I32: return "i32";
    case MRT_GGUF_V_F32: return "f32";
    case MRT_GGUF_V_BOOL: return "bool";
    case MRT_GGUF_V_STRING: return "string";
    case MRT_GGUF_V_ARRAY: return "array";
    case MRT_GGUF_V_U64: return "u64";
    case MRT_GGUF_V_I64: return "i64";
    case MRT_GGUF_V_F64: return "f64";
    }
    return "?";
}

/* Bytes of a scalar value in the file; 0 for string, array and unknown types. */
static size_t scalar_wire_size(uint32_t type) {
    switch (type) {
    case MRT_GGUF_V_U8: case MRT_GGUF_V_I8: case MRT_GGUF_V_BOOL: return 1;
    case MRT_GGUF_V_U16: case MRT_GGUF_V_I16: return 2;
    case MRT_GGUF_V_U32: case MRT_GGUF_V_I32: case MRT_GGUF_V_F32: return 4;
    case MRT_GGUF_V_U64: case MRT_GGUF_V_I64: case MRT_GGUF_V_F64: return 8;
    default: return 0;
    }
}

/* Bytes of the C type a scalar is decoded into (only bool may differ). */
static size_t scalar_native_size(uint32_t type) {
    return type == MRT_GGUF_V_BOOL ? sizeof(bool) : scalar_wire_size(type);
}

static bool is_supported_tensor_type(uint32_t type) {
    return type == MRT_GGUF_F32 || type == MRT_GGUF_I8 || type == MRT_GGUF_I16 ||
           type == MRT_GGUF_I32;
}

/* Keys and tensor names are printable ASCII without spaces, so messages can
 * quote them safely. Returns the index of the first bad byte, or len. */
static size_t first_bad_name_byte(const uint8_t *s, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x21 || s[i] > 0x7e) return i;
    return len;
}

static bool mul_overflows_u64(uint64_t a, uint64_t b, uint64_t *product) {
    if (a != 0 && b > UINT64_MAX / a) return true;
    *product = a * b;
    return false;
}

static uint64_t align_up_u64(uint64_t x) {
    return (x + (MRT_GGUF_ALIGNMENT - 1)) / MRT_GGUF_ALIGNMENT * MRT_GGUF_ALIGNMENT;
}

/* "[64, 32]" */
static void format_dims(char *buf, size_t buflen, int n_dims, const int64_t *dims) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n_dims && used < buflen; i++) {
        int n = snprintf(buf + used, buflen - used, "%s%" PRId64, i ? ", " : "[", dims[i]);
        if (n < 0) return;
        used += (size_t)n;
    }
    if (used < buflen) snprintf(buf + used, buflen - used, "]");
}

static void format_dims_u64(char *buf, size_t buflen, int n_dims, const uint64_t *dims) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n_dims && used < buflen; i++) {
        int n = snprintf(buf + used, buflen - used, "%s%" PRIu64, i ? ", " : "[", dims[i]);
        if (n < 0) return;
        used += (size_t)n;
    }
    if (used < buflen) snprintf(buf + used, buflen - used, "]");
}

/* ------------------------------------------------------------------ reader */

struct mrt_gguf {
    char *label;
    const uint8_t *bytes; /* the whole file */
    size_t len;
    void *mapping;        /* from mmap (open), or NULL */
    void *owned_copy;     /* from posix_memalign (open_memory), or NULL */
    uint8_t sha256[MRT_SHA256_DIGEST_BYTES];

    mrt_gguf_kv *kvs;     /* file order; zero-initialised so a partial parse frees cleanly */
    int n_kvs;            /* entries filled so far */
    const mrt_gguf_kv **kvs_by_key;

    mrt_gguf_tensor *tensors;
    int n_tensors;
    const mrt_gguf_tensor **tensors_by_name;
};

/* A bounds-checked read position in the file image. `where` names the
 * item being parsed, so every message says which field was wrong. */
typedef struct cursor {
    const uint8_t *bytes;
    size_t len;
    size_t pos;
    const char *label;
    char *err;
    size_t errlen;
    char where[320];
} cursor;

static void set_where(cursor *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->where, sizeof c->where, fmt, ap);
    va_end(ap);
}

/* Always returns -1, so callers can write `return fail(c, ...)`. */
static int fail(cursor *c, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->where[0])
        set_error(c->err, c->errlen, "%s: %s: %s", c->label, c->where, msg);
    else
        set_error(c->err, c->errlen, "%s: %s", c->label, msg);
    return -1;
}

static size_t remaining(const cursor *c) { return c->len - c->pos; }

static int need(cursor *c, uint64_t n, const char *field) {
    if (n > remaining(c))
        return fail(c, "file truncated: %s needs %" PRIu64 " bytes at offset %zu but only %zu remain",
                    field, n, c->pos, remaining(c));
    return 0;
}

static uint64_t decode_le(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static int read_u32(cursor *c, const char *field, uint32_t *out) {
    if (need(c, 4, field)) return -1;
    *out = (uint32_t)decode_le(c->bytes + c->pos, 4);
    c->pos += 4;
    return 0;
}

static int read_u64(cursor *c, const char *field, uint64_t *out) {
    if (need(c, 8, field)) return -1;
    *out = decode_le(c->bytes + c->pos, 8);
    c->pos += 8;
    return 0;
}

/* Reads a key or tensor name ("key", "name") into a fresh NUL-terminated copy. */
static int read_name(cursor *c, const char *what, char **out) {
    size_t start = c->pos;
    uint64_t n;
    char field[64];
    snprintf(field, sizeof field, "%s length", what);
    if (read_u64(c, field, &n)) return -1;
    if (n == 0) return fail(c, "%s at offset %zu is empty", what, start);
    if (n > MRT_GGUF_MAX_NAME_BYTES)
        return fail(c, "%s at offset %zu has length %" PRIu64 ", over the %d-byte limit", what,
                    start, n, MRT_GGUF_MAX_NAME_BYTES);
    snprintf(field, sizeof field, "%s bytes", what);
    if (need(c, n, field)) return -1;
    const uint8_t *s = c->bytes + c->pos;
    size_t bad = first_bad_name_byte(s, (size_t)n);
    if (bad < n)
        return fail(c, "%s at offset %zu: byte %zu is 0x%02x; %ss must be printable ASCII without "
                    "spaces (0x21..0x7e)", what, start, bad, s[bad], what);
    char *copy = malloc((size_t)n + 1);
    if (!copy) return fail(c, "out of memory");
    memcpy(copy, s, (size_t)n);
    copy[n] = '\0';
    c->pos += (size_t)n;
    *out = copy;
    return 0;
}

/* Checks a string value at the cursor and returns its length, leaving the
 * cursor on the bytes. */
static int check_string(cursor *c, const char *what, size_t *len_out) {
    size_t start = c->pos;
    uint64_t n;
    char field[80];
    snprintf(field, sizeof field, "%s length", what);
    if (read_u64(c, field, &n)) return -1;
    if (n > MRT_GGUF_MAX_STRING_BYTES)
        return fail(c, "%s at offset %zu has length %" PRIu64 ", over the %d-byte limit", what,
                    start, n, MRT_GGUF_MAX_STRING_BYTES);
    snprintf(field, sizeof field, "%s bytes", what);
    if (need(c, n, field)) return -1;
    const void *nul = memchr(c->bytes + c->pos, 0, (size_t)n);
    if (nul)
        return fail(c, "%s at offset %zu contains a NUL byte at offset %zu", what, start,
                    (size_t)((const uint8_t *)nul - c->bytes));
    *len_out = (size_t)n;
    return 0;
}

/* Reads one scalar of a known scalar type into its native C representation. */
static int read_scalar(cursor *c, uint32_t type, void *out, const char *what) {
    size_t n = scalar_wire_size(type);
    if (need(c, n, what)) return -1;
    const uint8_t *p = c->bytes + c->pos;
    uint64_t raw = decode_le(p, n);
    switch (type) {
    case MRT_GGUF_V_BOOL:
        if (raw > 1) return fail(c, "%s at offset %zu is %u; a bool must be 0 or 1", what, c->pos, p[0]);
        *(bool *)out = raw != 0;
        break;
    case MRT_GGUF_V_U8: case MRT_GGUF_V_I8: {
        uint8_t v = (uint8_t)raw;
        memcpy(out, &v, 1);
        break;
    }
    case MRT_GGUF_V_U16: case MRT_GGUF_V_I16: {
        uint16_t v = (uint16_t)raw;
        memcpy(out, &v, 2);
        break;
    }
    case MRT_GGUF_V_U32: case MRT_GGUF_V_I32: case MRT_GGUF_V_F32: {
        uint32_t v = (uint32_t)raw;
        memcpy(out, &v, 4); /* same bits: two's complement ints, IEEE-754 floats */
        break;
    }
    default:
        memcpy(out, &raw, 8);
        break;
    }
    c->pos += n;
    return 0;
}

static int parse_array(cursor *c, mrt_gguf_kv *kv) {
    uint32_t elem_type;
    uint64_t count;
    if (read_u32(c, "array element type", &elem_type)) return -1;
    size_t count_pos = c->pos;
    if (read_u64(c, "array count", &count)) return -1;
    bool is_string = elem_type == MRT_GGUF_V_STRING;
    size_t wire = is_string ? 8 : scalar_wire_size(elem_type);
    if (elem_type == MRT_GGUF_V_ARRAY)
        return fail(c, "arrays of arrays are not supported (element type 9 at offset %zu)",
                    count_pos - 4);
    if (wire == 0)
        return fail(c, "unknown array element type %" PRIu32 " at offset %zu", elem_type,
                    count_pos - 4);
    if (count > MRT_GGUF_MAX_ARRAY_COUNT)
        return fail(c, "array count %" PRIu64 " at offset %zu is over the limit of %u", count,
                    count_pos, MRT_GGUF_MAX_ARRAY_COUNT);
    /* Each element takes at least `wire` bytes, so this bounds the
     * allocation below by the file size. */
    if (count * wire > remaining(c))
        return fail(c, "array count %" PRIu64 " at offset %zu needs at least %" PRIu64
                    " bytes but only %zu remain", count, count_pos, count * wire, remaining(c));
    kv->type = MRT_GGUF_V_ARRAY;
    kv->elem_type = (mrt_gguf_vtype)elem_type;
    kv->count = count;
    kv->v.array = NULL;
    if (count == 0) return 0;
    char what[48];
    if (is_string) {
        /* Two passes: validate and total the lengths, then copy everything
         * into one block (the string table followed by the characters). */
        size_t first = c->pos, total_chars = 0;
        for (uint64_t i = 0; i < count; i++) {
            size_t len;
            snprintf(what, sizeof what, "array element %" PRIu64, i);
            if (check_string(c, what, &len)) return -1;
            c->pos += len;
            total_chars += len + 1;
        }
        size_t table = (size_t)count * sizeof(mrt_gguf_string);
        uint8_t *block = malloc(table + total_chars);
        if (!block) return fail(c, "out of memory for a %" PRIu64 "-string array", count);
        mrt_gguf_string *strings = (mrt_gguf_string *)(void *)block;
        char *chars = (char *)block + table;
        c->pos = first;
        for (uint64_t i = 0; i < count; i++) {
            size_t len = (size_t)decode_le(c->bytes + c->pos, 8);
            memcpy(chars, c->bytes + c->pos + 8, len);
            chars[len] = '\0';
            strings[i].str = chars;
            strings[i].len = len;
            chars += len + 1;
            c->pos += 8 + len;
        }
        kv->v.array = block;
        return 0;
    }
    size_t native = scalar_native_size(elem_type);
    uint8_t *values = malloc((size_t)count * native);
    if (!values) return fail(c, "out of memory for a %" PRIu64 "-element array", count);
    kv->v.array = values; /* owned by kv from here on, freed by close even on failure */
    for (uint64_t i = 0; i < count; i++) {
        snprintf(what, sizeof what, "array element %" PRIu64, i);
        if (read_scalar(c, elem_type, values + i * native, what)) return -1;
    }
    return 0;
}

static int parse_kv(cursor *c, int index, mrt_gguf_kv *kv) {
    char *key = NULL;
    set_where(c, "KV #%d", index);
    if (read_name(c, "key", &key)) return -1;
    kv->key = key;
    set_where(c, "KV #%d '%s'", index, key);
    uint32_t type;
    size_t type_pos = c->pos;
    if (read_u32(c, "value type", &type)) return -1;
    if (type == MRT_GGUF_V_ARRAY) return parse_array(c, kv);
    if (type == MRT_GGUF_V_STRING) {
        size_t len;
        if (check_string(c, "string value", &len)) return -1;
        char *copy = malloc(len + 1);
        if (!copy) return fail(c, "out of memory");
        memcpy(copy, c->bytes + c->pos, len);
        copy[len] = '\0';
        c->pos += len;
        kv->type = MRT_GGUF_V_STRING;
        kv->v.str.str = copy;
        kv->v.str.len = len;
        return 0;
    }
    if (scalar_wire_size(type) == 0)
        return fail(c, "unknown value type %" PRIu32 " at offset %zu", type, type_pos);
    kv->type = (mrt_gguf_vtype)type;
    return read_scalar(c, type, &kv->v, "value");
}

static int parse_tensor_info(cursor *c, int index, mrt_gguf_tensor *t, uint64_t *offset_out) {
    char *name = NULL;
    set_where(c, "tensor info #%d", index);
    if (read_name(c, "name", &name)) return -1;
    t->name = name;
    set_where(c, "tensor '%s' (info #%d)", name, index);

    uint32_t n_dims;
    size_t n_dims_pos = c->pos;
    if (read_u32(c, "n_dims", &n_dims)) return -1;
    if (n_dims < 1 || n_dims > MRT_GGUF_MAX_DIMS)
        return fail(c, "n_dims is %" PRIu32 " at offset %zu; must be 1..%d", n_dims, n_dims_pos,
                    MRT_GGUF_MAX_DIMS);
    uint64_t dims[MRT_GGUF_MAX_DIMS];
    for (uint32_t d = 0; d < n_dims; d++) {
        size_t dim_pos = c->pos;
        if (read_u64(c, "dims", &dims[d])) return -1;
        if (dims[d] == 0)
            return fail(c, "dims[%" PRIu32 "] is 0 at offset %zu; every dim must be >= 1", d, dim_pos);
    }
    char shape[128];
    format_dims_u64(shape, sizeof shape, (int)n_dims, dims);
    /* The element count can overflow long before any bound is hit (four
     * dims of 2^16), so every product is checked. */
    uint64_t nelems = 1;
    for (uint32_t d = 0; d < n_dims; d++)
        if (mul_overflows_u64(nelems, dims[d], &nelems))
            return fail(c, "the element count of dims %s overflows 64 bits", shape);

    uint32_t type;
    size_t type_pos = c->pos;
    if (read_u32(c, "type", &type)) return -1;
    if (!is_supported_tensor_type(type))
        return fail(c, "ggml type %" PRIu32 " at offset %zu is not supported (only F32=0, I8=24, "
                    "I16=25, I32=26)", type, type_pos);
    uint64_t nbytes;
    if (mul_overflows_u64(nelems, mrt_gguf_type_size((mrt_gguf_type)type), &nbytes) ||
        nbytes > c->len)
        return fail(c, "dims %s of %s need %" PRIu64 " x %zu bytes, more than the whole file "
                    "(%zu bytes)", shape, mrt_gguf_type_name((mrt_gguf_type)type), nelems,
                    mrt_gguf_type_size((mrt_gguf_type)type), c->len);

    uint64_t offset;
    size_t offset_pos = c->pos;
    if (read_u64(c, "data offset", &offset)) return -1;
    if (offset % MRT_GGUF_ALIGNMENT != 0)
        return fail(c, "data offset %" PRIu64 " (at offset %zu) is not a multiple of %d", offset,
                    offset_pos, MRT_GGUF_ALIGNMENT);

    t->n_dims = (int)n_dims;
    for (int d = 0; d < MRT_GGUF_MAX_DIMS; d++)
        t->dims[d] = d < (int)n_dims ? (int64_t)dims[d] : 1; /* dims[d] <= file size: fits */
    t->type = (mrt_gguf_type)type;
    t->nelems = (int64_t)nelems;
    t->nbytes = (size_t)nbytes;
    *offset_out = offset;
    return 0;
}

static int compare_kv_keys(const void *a, const void *b) {
    const mrt_gguf_kv *x = *(const mrt_gguf_kv *const *)a, *y = *(const mrt_gguf_kv *const *)b;
    return strcmp(x->key, y->key);
}

static int compare_tensor_names(const void *a, const void *b) {
    const mrt_gguf_tensor *x = *(const mrt_gguf_tensor *const *)a;
    const mrt_gguf_tensor *y = *(const mrt_gguf_tensor *const *)b;
    return strcmp(x->name, y->name);
}

static int compare_tensor_offsets(const void *a, const void *b) {
    const mrt_gguf_tensor *x = *(const mrt_gguf_tensor *const *)a;
    const mrt_gguf_tensor *y = *(const mrt_gguf_tensor *const *)b;
    if (x->file_offset != y->file_offset) return x->file_offset < y->file_offset ? -1 : 1;
    return x < y ? -1 : (x > y); /* keep equal offsets in file order */
}

static int check_zero_padding(cursor *c, size_t from, size_t to, const char *what) {
    for (size_t i = from; i < to; i++)
        if (c->bytes[i] != 0)
            return fail(c, "byte at offset %zu is 0x%02x; %s (offsets %zu..%zu) must be zero",
                        i, c->bytes[i], what, from, to);
    return 0;
}

/* Validates everything about g->bytes and fills the tables. */
static int parse(mrt_gguf *g, cursor *c) {
    set_where(c, "header");
    if (need(c, 4, "magic")) return -1;
    if (memcmp(c->bytes, "GGUF", 4) != 0)
        return fail(c, "not a GGUF file: magic at offset 0 is %02x %02x %02x %02x, expected "
                    "\"GGUF\" (47 47 55 46)", c->bytes[0], c->bytes[1], c->bytes[2], c->bytes[3]);
    c->pos = 4;
    uint32_t version;
    uint64_t tensor_count, kv_count;
    if (read_u32(c, "version", &version)) return -1;
    if (version != MRT_GGUF_VERSION)
        return fail(c, "GGUF version %" PRIu32 " at offset 4 is not supported (only %d)", version,
                    MRT_GGUF_VERSION);
    if (read_u64(c, "tensor_count", &tensor_count) || read_u64(c, "kv_count", &kv_count))
        return -1;
    if (tensor_count > MRT_GGUF_MAX_TENSORS)
        return fail(c, "tensor_count %" PRIu64 " at offset 8 is over the limit of %d",
                    tensor_count, MRT_GGUF_MAX_TENSORS);
    if (kv_count > MRT_GGUF_MAX_KVS)
        return fail(c, "kv_count %" PRIu64 " at offset 16 is over the limit of %d", kv_count,
                    MRT_GGUF_MAX_KVS);
    uint64_t min_bytes = kv_count * MIN_KV_BYTES + tensor_count * MIN_TENSOR_INFO_BYTES;
    if (min_bytes > remaining(c))
        return fail(c, "kv_count %" PRIu64 " and tensor_count %" PRIu64 " need at least %" PRIu64
                    " bytes after the header but the file has only %zu", kv_count, tensor_count,
                    min_bytes, remaining(c));

    g->kvs = calloc(kv_count ? (size_t)kv_count : 1, sizeof *g->kvs);
    g->tensors = calloc(tensor_count ? (size_t)tensor_count : 1, sizeof *g->tensors);
    g->kvs_by_key = malloc((kv_count ? (size_t)kv_count : 1) * sizeof *g->kvs_by_key);
    g->tensors_by_name = malloc((tensor_count ? (size_t)tensor_count : 1) * sizeof *g->tensors_by_name);
    uint64_t *offsets = malloc((tensor_count ? (size_t)tensor_count : 1) * sizeof *offsets);
    const mrt_gguf_tensor **by_offset =
        malloc((tensor_count ? (size_t)tensor_count : 1) * sizeof *by_offset);
    int rc = -1;
    if (!g->kvs || !g->tensors || !g->kvs_by_key || !g->tensors_by_name || !offsets || !by_offset) {
        fail(c, "out of memory");
        goto done;
    }

    for (uint64_t i = 0; i < kv_count; i++) {
        g->n_kvs = (int)i + 1; /* so close frees the partly parsed entry too */
        if (parse_kv(c, (int)i, &g->kvs[i])) goto done;
    }
    for (uint64_t i = 0; i < tensor_count; i++) {
        g->n_tensors = (int)i + 1;
        if (parse_tensor_info(c, (int)i, &g->tensors[i], &offsets[i])) goto done;
    }
    set_where(c, "metadata");
    for (int i = 0; i < g->n_kvs; i++) g->kvs_by_key[i] = &g->kvs[i];
    qsort(g->kvs_by_key, (size_t)g->n_kvs, sizeof *g->kvs_by_key, compare_kv_keys);
    for (int i = 1; i < g->n_kvs; i++) {
        if (strcmp(g->kvs_by_key[i - 1]->key, g->kvs_by_key[i]->key) == 0) {
            long a = (long)(g->kvs_by_key[i - 1] - g->kvs), b = (long)(g->kvs_by_key[i] - g->kvs);
            fail(c, "duplicate key '%s' (KV #%ld and KV #%ld)", g->kvs_by_key[i]->key,
                 a < b ? a : b, a < b ? b : a);
            goto done;
        }
    }
    const mrt_gguf_kv *alignment = mrt_gguf_find_kv(g, ALIGNMENT_KEY);
    if (!alignment) {
        fail(c, "required key '" ALIGNMENT_KEY "' is missing (must be u32 %d)", MRT_GGUF_ALIGNMENT);
        goto done;
    }
    if (alignment->type != MRT_GGUF_V_U32) {
        fail(c, "'" ALIGNMENT_KEY "' has type %s; must be u32", mrt_gguf_vtype_name(alignment->type));
        goto done;
    }
    if (alignment->v.u32 != MRT_GGUF_ALIGNMENT) {
        fail(c, "'" ALIGNMENT_KEY "' is %" PRIu32 "; only %d is supported", alignment->v.u32,
             MRT_GGUF_ALIGNMENT);
        goto done;
    }

    set_where(c, "tensors");
    for (int i = 0; i < g->n_tensors; i++) g->tensors_by_name[i] = &g->tensors[i];
    qsort(g->tensors_by_name, (size_t)g->n_tensors, sizeof *g->tensors_by_name, compare_tensor_names);
    for (int i = 1; i < g->n_tensors; i++) {
        if (strcmp(g->tensors_by_name[i - 1]->name, g->tensors_by_name[i]->name) == 0) {
            long a = (long)(g->tensors_by_name[i - 1] - g->tensors);
            long b = (long)(g->tensors_by_name[i] - g->tensors);
            fail(c, "duplicate tensor name '%s' (infos #%ld and #%ld)", g->tensors_by_name[i]->name,
                 a < b ? a : b, a < b ? b : a);
            goto done;
        }
    }

    /* The data section starts at the first multiple of 64 after the infos;
     * the bytes in between are padding. */
    size_t header_end = c->pos;
    uint64_t data_start = align_up_u64(header_end);
    size_t padding_end = data_start < c->len ? (size_t)data_start : c->len;
    if (check_zero_padding(c, header_end, padding_end, "padding before the data section")) goto done;
    uint64_t data_len = c->len > data_start ? c->len - data_start : 0;
    uint64_t data_end = 0; /* end of the last tensor's bytes, relative to data_start */
    for (int i = 0; i < g->n_tensors; i++) {
        mrt_gguf_tensor *t = &g->tensors[i];
        if (offsets[i] > data_len || t->nbytes > data_len - offsets[i]) {
            set_where(c, "tensor '%s' (info #%d)", t->name, i);
            fail(c, "data offset %" PRIu64 " + %zu bytes runs past the end of the data section "
                 "(%" PRIu64 " bytes from file offset %" PRIu64 "; file is %zu bytes)",
                 offsets[i], t->nbytes, data_len, data_start, c->len);
            goto done;
        }
        t->file_offset = data_start + offsets[i];
        t->data = c->bytes + t->file_offset;
        if (offsets[i] + t->nbytes > data_end) data_end = offsets[i] + t->nbytes;
        by_offset[i] = t;
    }
    qsort(by_offset, (size_t)g->n_tensors, sizeof *by_offset, compare_tensor_offsets);
    for (int i = 1; i < g->n_tensors; i++) {
        const mrt_gguf_tensor *prev = by_offset[i - 1], *cur = by_offset[i];
        if (prev->file_offset + prev->nbytes > cur->file_offset) {
            fail(c, "tensor '%s' (data offset %" PRIu64 ", %zu bytes) overlaps tensor '%s' (data "
                 "offset %" PRIu64 ", %zu bytes)", cur->name, cur->file_offset - data_start,
                 cur->nbytes, prev->name, prev->file_offset - data_start, prev->nbytes);
            goto done;
        }
    }
    /* Only zero padding up to the next multiple of 64 may follow the last
     * tensor; with no tensors, nothing may follow the header padding. */
    uint64_t content_end = g->n_tensors ? data_start + data_end : header_end;
    uint64_t allowed_end = g->n_tensors ? data_start + align_up_u64(data_end) : data_start;
    if (c->len > allowed_end) {
        fail(c, "%" PRIu64 " unexpected bytes at the end of the file (file is %zu bytes; content "
             "ends at offset %" PRIu64 ", padding may reach at most offset %" PRIu64 ")",
             c->len - allowed_end, c->len, content_end, allowed_end);
        goto done;
    }
    if (c->len > content_end &&
        check_zero_padding(c, (size_t)content_end, c->len, "padding after the last tensor"))
        goto done;
    rc = 0;
done:
    free(offsets);
    free(by_offset);
    return rc;
}

void mrt_gguf_close(mrt_gguf *g) {
    if (!g) return;
    for (int i = 0; i < g->n_kvs; i++) {
        mrt_gguf_kv *kv = &g->kvs[i];
        free((void *)kv->key);
        if (kv->type == MRT_GGUF_V_STRING) free((void *)kv->v.str.str);
        if (kv->type == MRT_GGUF_V_ARRAY) free((void *)kv->v.array);
    }
    for (int i = 0; i < g->n_tensors; i++) free((void *)g->tensors[i].name);
    free(g->kvs);
    free(g->kvs_by_key);
    free(g->tensors);
    free(g->tensors_by_name);
    if (g->mapping) munmap(g->mapping, g->len);
    free(g->owned_copy);
    free(g->label);
    free(g);
}

/* Takes a g whose bytes/len/label are set; validates and hashes. */
static int finish_open(mrt_gguf **out, mrt_gguf *g, char *err, size_t errlen) {
    cursor c = {.bytes = g->bytes, .len = g->len, .pos = 0, .label = g->label, .err = err,
                .errlen = errlen, .where = ""};
    if (parse(g, &c) != 0) {
        mrt_gguf_close(g);
        return -1;
    }
    mrt_sha256_buffer(g->bytes, g->len, g->sha256);
    *out = g;
    return 0;
}

static char *copy_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy) memcpy(copy, s, n);
    return copy;
}

int mrt_gguf_open_memory(mrt_gguf **out, const void *buf, size_t len, const char *label,
                         char *err, size_t errlen) {
    *out = NULL;
    if (!label) label = "<memory>";
    mrt_gguf *g = calloc(1, sizeof *g);
    /* Exactly len bytes (not rounded up), so a sanitizer would catch any
     * read past the image; the 64-byte start makes tensor data aligned. */
    void *copy = NULL;
    if (posix_memalign(&copy, MRT_GGUF_ALIGNMENT, len ? len : 1) != 0) copy = NULL;
    char *label_copy = copy_string(label);
    if (!g || !copy || !label_copy) {
        free(g);
        free(copy);
        free(label_copy);
        set_error(err, errlen, "%s: out of memory copying a %zu-byte image", label, len);
        return -1;
    }
    if (len) memcpy(copy, buf, len);
    g->owned_copy = copy;
    g->bytes = copy;
    g->len = len;
    g->label = label_copy;
    return finish_open(out, g, err, errlen);
}

int mrt_gguf_open(mrt_gguf **out, const char *path, char *err, size_t errlen) {
    *out = NULL;
    /* O_NONBLOCK: opening a FIFO would otherwise wait for a writer, for
     * ever; the check below then refuses it (a regular file ignores the
     * flag) */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        set_error(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        set_error(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        set_error(err, errlen, "%s: not a regular file (%s); a model is a GGUF file", path,
                  S_ISDIR(st.st_mode)    ? "a directory"
                  : S_ISFIFO(st.st_mode) ? "a FIFO"
                  : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                                                              : "a socket");
        close(fd);
        return -1;
    }
    if (st.st_size == 0) { /* mmap cannot map 0 bytes */
        set_error(err, errlen, "%s: file is empty (0 bytes); a GGUF header is %d bytes", path,
                  HEADER_BYTES);
        close(fd);
        return -1;
    }
    if ((uintmax_t)st.st_size > SIZE_MAX) {
        set_error(err, errlen, "%s: file of %jd bytes does not fit in memory", path,
                  (intmax_t)st.st_size);
        close(fd);
        return -1;
    }
    size_t len = (size_t)st.st_size;
    /* A private read-only mapping: the kernel pages the weights in on use
     * and several processes share them. (If another process truncates the
     * file while it is mapped, accesses fault; model files are replaced by
     * rename, never rewritten in place, which avoids that.) */
    void *mapping = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd);
    if (mapping == MAP_FAILED) {
        set_error(err, errlen, "%s: cannot mmap %zu bytes: %s", path, len, strerror(map_errno));
        return -1;
    }
    mrt_gguf *g = calloc(1, sizeof *g);
    char *label = copy_string(path);
    if (!g || !label) {
        free(g);
        free(label);
        munmap(mapping, len);
        set_error(err, errlen, "%s: out of memory", path);
        return -1;
    }
    g->mapping = mapping;
    g->bytes = mapping;
    g->len = len;
    g->label = label;
    return finish_open(out, g, err, errlen);
}

const uint8_t *mrt_gguf_sha256(const mrt_gguf *g) { return g->sha256; }
const char *mrt_gguf_label(const mrt_gguf *g) { return g->label; }
int mrt_gguf_tensor_count(const mrt_gguf *g) { return g->n_tensors; }
int mrt_gguf_kv_count(const mrt_gguf *g) { return g->n_kvs; }

const mrt_gguf_tensor *mrt_gguf_tensor_at(const mrt_gguf *g, int i) {
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const mrt_gguf_kv *mrt_gguf_kv_at(const mrt_gguf *g, int i) {
    return i >= 0 && i < g->n_kvs ? &g->kvs[i] : NULL;
}

const mrt_gguf_tensor *mrt_gguf_find(const mrt_gguf *g, const char *name) {
    int lo = 0, hi = g->n_tensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int cmp = strcmp(name, g->tensors_by_name[mid]->name);
        if (cmp == 0) return g->tensors_by_name[mid];
        if (cmp < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

const mrt_gguf_kv *mrt_gguf_find_kv(const mrt_gguf *g, const char *key) {
    int lo = 0, hi = g->n_kvs - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int cmp = strcmp(key, g->kvs_by_key[mid]->key);
        if (cmp == 0) return g->kvs_by_key[mid];
        if (cmp < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

const mrt_gguf_tensor *mrt_gguf_get_tensor(const mrt_gguf *g, const char *name,
                                           mrt_gguf_type type, int n_dims, const int64_t *dims,
                                           char *err, size_t errlen) {
    const mrt_gguf_tensor *t = mrt_gguf_find(g, name);
    if (!t) {
        set_error(err, errlen, "%s: no tensor named '%s'", g->label, name);
        return NULL;
    }
    if (t->type != type) {
        set_error(err, errlen, "%s: tensor '%s': type %s but the model needs %s", g->label, name,
                  mrt_gguf_type_name(t->type), mrt_gguf_type_name(type));
        return NULL;
    }
    bool same = n_dims == t->n_dims;
    for (int d = 0; same && d < n_dims; d++) same = dims[d] == t->dims[d];
    if (!same) {
        char have[128], want[128];
        format_dims(have, sizeof have, t->n_dims, t->dims);
        if (n_dims >= 0 && n_dims <= MRT_GGUF_MAX_DIMS)
            format_dims(want, sizeof want, n_dims, dims);
        else
            snprintf(want, sizeof want, "%d dims", n_dims);
        set_error(err, errlen, "%s: tensor '%s': shape %s but the model needs %s", g->label, name,
                  have, want);
        return NULL;
    }
    return t;
}

const float *mrt_gguf_get_f32(const mrt_gguf *g, const char *name, int n_dims,
                              const int64_t *dims, char *err, size_t errlen) {
    const mrt_gguf_tensor *t = mrt_gguf_get_tensor(g, name, MRT_GGUF_F32, n_dims, dims, err, errlen);
    return t ? (const float *)t->data : NULL;
}

/* The KV for a typed getter, or NULL with a message. */
static const mrt_gguf_kv *find_typed(const mrt_gguf *g, const char *key, mrt_gguf_vtype type,
                                     char *err, size_t errlen) {
    const mrt_gguf_kv *kv = mrt_gguf_find_kv(g, key);
    if (!kv) {
        set_error(err, errlen, "%s: missing metadata key '%s' (%s)", g->label, key,
                  mrt_gguf_vtype_name(type));
        return NULL;
    }
    if (kv->type != type) {
        set_error(err, errlen, "%s: metadata key '%s' has type %s but %s is needed", g->label, key,
                  mrt_gguf_vtype_name(kv->type), mrt_gguf_vtype_name(type));
        return NULL;
    }
    return kv;
}

int mrt_gguf_meta_u32(const mrt_gguf *g, const char *key, uint32_t *out, char *err, size_t errlen) {
    const mrt_gguf_kv *kv = find_typed(g, key, MRT_GGUF_V_U32, err, errlen);
    if (!kv) return -1;
    *out = kv->v.u32;
    return 0;
}

int mrt_gguf_meta_i32(const mrt_gguf *g, const char *key, int32_t *out, char *err, size_t errlen) {
    const mrt_gguf_kv *kv = find_typed(g, key, MRT_GGUF_V_I32, err, errlen);
    if (!kv) return -1;
    *out = kv->v.i32;
    return 0;
}

int mrt_gguf_meta_u64(const mrt_gguf *g, const char *key, uint64_t *out, char *err, size_t errlen) {
    const mrt_gguf_kv *kv = find_typed(g, key, MRT_GGUF_V_U64, err, errlen);
    if (!kv) return -1;
    *out = kv->v.u64;
    return 0;
}

int mrt_gguf_meta_f32(const mrt_gguf *g, const char *key, float *out, char *err, size_t errlen) {
    const mrt_gguf_kv *kv = find_typed(g, key, MRT_GGUF_V_F32, err, errlen);
    if (!kv) return -1;
    *out = kv->v.f32;
    return 0;
}

int mrt_gguf_meta_bool(const mrt_gguf *g, const char *key, bool *out, char *err, size_t errlen) {
    const mrt_gguf_kv *kv = find_typed(g, key, MRT_GGUF_V_BOOL, err, errlen);
    if (!kv) return -1;
    *out = kv->v.b;
    return 0;
}

int mrt_gguf_meta_str(const mrt_gguf *g, const char *key, const char **out, size_t *len,
                      char *err, size_t errlen) {
    const mrt_gguf_kv *kv = find_typed(g, key, MRT_GGUF_V_STRING, err, errlen);
    if (!kv) return -1;
    *out = kv->v.str.str;
    if (len) *len = kv->v.str.len;
    return 0;
}

/* ------------------------------------------------------------------ writer */

/* A growable byte buffer; `failed` latches an allocation failure so a
 * sequence of appends can be checked once at the end. */
typedef struct bytebuf {
    uint8_t *bytes;
    size_t len, cap;
    bool failed;
} bytebuf;

static void buf_append(bytebuf *b, const void *data, size_t n) {
    if (b->failed || n == 0) return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) {
                b->failed = true;
                return;
            }
            cap *= 2;
        }
        uint8_t *grown = realloc(b->bytes, cap);
        if (!grown) {
            b->failed = true;
            return;
        }
        b->bytes = grown;
        b->cap = cap;
    }
    memcpy(b->bytes + b->len, data, n);
    b->len += n;
}

static void buf_le(bytebuf *b, uint64_t v, size_t n) {
    uint8_t tmp[8];
    for (size_t i = 0; i < n; i++) tmp[i] = (uint8_t)(v >> (8 * i));
    buf_append(b, tmp, n);
}

static void buf_string(bytebuf *b, const char *s, size_t n) {
    buf_le(b, n, 8);
    buf_append(b, s, n);
}

typedef struct writer_kv {
    char *key;
    bytebuf encoded; /* key, value type and value, exactly as in the file */
} writer_kv;

typedef struct writer_tensor {
    char *name;
    mrt_gguf_type type;
    int n_dims;
    int64_t dims[MRT_GGUF_MAX_DIMS];
    void *data;
    size_t nbytes;
} writer_tensor;

struct mrt_gguf_writer {
    writer_kv *kvs;
    size_t n_kvs, cap_kvs;
    writer_tensor *tensors;
    size_t n_tensors, cap_tensors;
    bool failed;
    char first_error[512];
};

/* Records the first failure (later ones are usually its consequences). */
static int writer_fail(mrt_gguf_writer *w, const char *fmt, ...) {
    if (!w->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->first_error, sizeof w->first_error, fmt, ap);
        va_end(ap);
        w->failed = true;
    }
    return -1;
}

mrt_gguf_writer *mrt_gguf_writer_new(void) { return calloc(1, sizeof(mrt_gguf_writer)); }

void mrt_gguf_writer_free(mrt_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kvs; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].encoded.bytes);
    }
    for (size_t i = 0; i < w->n_tensors; i++) {
        free(w->tensors[i].name);
        free(w->tensors[i].data);
    }
    free(w->kvs);
    free(w->tensors);
    free(w);
}

const char *mrt_gguf_writer_error(const mrt_gguf_writer *w) {
    return w->failed ? w->first_error : NULL;
}

/* Applies the reader's rules for keys and names; `what` is "key" or "tensor name". */
static int writer_check_name(mrt_gguf_writer *w, const char *what, const char *name) {
    if (!name) return writer_fail(w, "%s is NULL", what);
    size_t n = strlen(name);
    if (n == 0) return writer_fail(w, "%s is empty", what);
    if (n > MRT_GGUF_MAX_NAME_BYTES)
        return writer_fail(w, "%s '%.40s...' is %zu bytes, over the %d-byte limit", what, name, n,
                           MRT_GGUF_MAX_NAME_BYTES);
    size_t bad = first_bad_name_byte((const uint8_t *)name, n);
    if (bad < n)
        return writer_fail(w, "%s: byte %zu is 0x%02x; must be printable ASCII without spaces",
                           what, bad, (unsigned char)name[bad]);
    return 0;
}

/* Validates a key and starts its encoding; returns the new entry or NULL. */
static writer_kv *writer_begin_kv(mrt_gguf_writer *w, const char *key, uint32_t type) {
    if (writer_check_name(w, "key", key)) return NULL;
    if (strcmp(key, ALIGNMENT_KEY) == 0) {
        writer_fail(w, "key '" ALIGNMENT_KEY "' is written by the writer itself (always %d)",
                    MRT_GGUF_ALIGNMENT);
        return NULL;
    }
    for (size_t i = 0; i < w->n_kvs; i++) {
        if (strcmp(w->kvs[i].key, key) == 0) {
            writer_fail(w, "duplicate key '%s'", key);
            return NULL;
        }
    }
    if (w->n_kvs + 1 >= MRT_GGUF_MAX_KVS) { /* +1: general.alignment */
        writer_fail(w, "too many KVs (limit %d)", MRT_GGUF_MAX_KVS);
        return NULL;
    }
    if (w->n_kvs == w->cap_kvs) {
        size_t cap = w->cap_kvs ? 2 * w->cap_kvs : 16;
        writer_kv *grown = realloc(w->kvs, cap * sizeof *grown);
        if (!grown) {
            writer_fail(w, "out of memory adding key '%s'", key);
            return NULL;
        }
        w->kvs = grown;
        w->cap_kvs = cap;
    }
    writer_kv *kv = &w->kvs[w->n_kvs];
    memset(kv, 0, sizeof *kv);
    kv->key = copy_string(key);
    if (!kv->key) {
        writer_fail(w, "out of memory adding key '%s'", key);
        return NULL;
    }
    buf_string(&kv->encoded, key, strlen(key));
    buf_le(&kv->encoded, type, 4);
    return kv;
}

/* Keeps a begun KV if its encoding succeeded, otherwise drops it. */
static int writer_end_kv(mrt_gguf_writer *w, writer_kv *kv) {
    if (kv->encoded.failed) {
        writer_fail(w, "out of memory adding key '%s'", kv->key);
        free(kv->key);
        free(kv->encoded.bytes);
        return -1;
    }
    w->n_kvs++;
    return 0;
}

static void encode_scalar(bytebuf *b, mrt_gguf_vtype type, const void *value) {
    size_t n = scalar_wire_size(type);
    uint64_t raw = 0;
    if (type == MRT_GGUF_V_BOOL) {
        raw = *(const bool *)value ? 1 : 0;
    } else {
        /* Native integers and IEEE floats share the file's bit layout;
         * buf_le writes the value's low n bytes little-endian. */
        switch (n) {
        case 1: { uint8_t v; memcpy(&v, value, 1); raw = v; break; }
        case 2: { uint16_t v; memcpy(&v, value, 2); raw = v; break; }
        case 4: { uint32_t v; memcpy(&v, value, 4); raw = v; break; }
        default: memcpy(&raw, value, 8); break;
        }
    }
    buf_le(b, raw, n);
}

static int check_string_value(mrt_gguf_writer *w, const char *key, const char *s, size_t *len) {
    if (!s) return writer_fail(w, "key '%s': string value is NULL", key);
    *len = strlen(s);
    if (*len > MRT_GGUF_MAX_STRING_BYTES)
        return writer_fail(w, "key '%s': string of %zu bytes is over the %d-byte limit", key, *len,
                           MRT_GGUF_MAX_STRING_BYTES);
    return 0;
}

int mrt_gguf_writer_add_scalar(mrt_gguf_writer *w, const char *key, mrt_gguf_vtype type,
                               const void *value) {
    if (scalar_wire_size(type) == 0)
        return writer_fail(w, "key '%s': value type %d is not a scalar type", key ? key : "(null)",
                           (int)type);
    if (!value) return writer_fail(w, "key '%s': value is NULL", key ? key : "(null)");
    writer_kv *kv = writer_begin_kv(w, key, type);
    if (!kv) return -1;
    encode_scalar(&kv->encoded, type, value);
    return writer_end_kv(w, kv);
}

int mrt_gguf_writer_add_u32(mrt_gguf_writer *w, const char *key, uint32_t value) {
    return mrt_gguf_writer_add_scalar(w, key, MRT_GGUF_V_U32, &value);
}
int mrt_gguf_writer_add_i32(mrt_gguf_writer *w, const char *key, int32_t value) {
    return mrt_gguf_writer_add_scalar(w, key, MRT_GGUF_V_I32, &value);
}
int mrt_gguf_writer_add_u64(mrt_gguf_writer *w, const char *key, uint64_t value) {
    return mrt_gguf_writer_add_scalar(w, key, MRT_GGUF_V_U64, &value);
}
int mrt_gguf_writer_add_f32(mrt_gguf_writer *w, const char *key, float value) {
    return mrt_gguf_writer_add_scalar(w, key, MRT_GGUF_V_F32, &value);
}
int mrt_gguf_writer_add_bool(mrt_gguf_writer *w, const char *key, bool value) {
    return mrt_gguf_writer_add_scalar(w, key, MRT_GGUF_V_BOOL, &value);
}

int mrt_gguf_writer_add_str(mrt_gguf_writer *w, const char *key, const char *value) {
    size_t len = 0;
    if (check_string_value(w, key ? key : "(null)", value, &len)) return -1;
    writer_kv *kv = writer_begin_kv(w, key, MRT_GGUF_V_STRING);
    if (!kv) return -1;
    buf_string(&kv->encoded, value, len);
    return writer_end_kv(w, kv);
}

int mrt_gguf_writer_add_array(mrt_gguf_writer *w, const char *key, mrt_gguf_vtype elem_type,
                              size_t count, const void *elems) {
    const char *shown = key ? key : "(null)";
    bool is_string = elem_type == MRT_GGUF_V_STRING;
    if (!is_string && scalar_wire_size(elem_type) == 0)
        return writer_fail(w, "key '%s': array element type %d is not a scalar or string type",
                           shown, (int)elem_type);
    if (count > MRT_GGUF_MAX_ARRAY_COUNT)
        return writer_fail(w, "key '%s': array of %zu elements is over the limit of %u", shown,
                           count, MRT_GGUF_MAX_ARRAY_COUNT);
    if (count > 0 && !elems) return writer_fail(w, "key '%s': array elements are NULL", shown);
    if (is_string) {
        const char *const *strings = elems;
        for (size_t i = 0; i < count; i++) {
            size_t len = 0;
            if (check_string_value(w, shown, strings[i], &len)) return -1;
        }
    }
    writer_kv *kv = writer_begin_kv(w, key, MRT_GGUF_V_ARRAY);
    if (!kv) return -1;
    buf_le(&kv->encoded, (uint32_t)elem_type, 4);
    buf_le(&kv->encoded, count, 8);
    size_t native = is_string ? sizeof(const char *) : scalar_native_size(elem_type);
    for (size_t i = 0; i < count; i++) {
        const void *elem = (const uint8_t *)elems + i * native;
        if (is_string) {
            const char *s = ((const char *const *)elems)[i];
            buf_string(&kv->encoded, s, strlen(s));
        } else {
            encode_scalar(&kv->encoded, elem_type, elem);
        }
    }
    return writer_end_kv(w, kv);
}

int mrt_gguf_writer_add_tensor(mrt_gguf_writer *w, const char *name, mrt_gguf_type type,
                               int n_dims, const int64_t *dims, const void *data) {
    if (writer_check_name(w, "tensor name", name)) return -1;
    if (!is_supported_tensor_type(type))
        return writer_fail(w, "tensor '%s': type %d is not supported (F32, I8, I16, I32)", name,
                           (int)type);
    if (n_dims < 1 || n_dims > MRT_GGUF_MAX_DIMS)
        return writer_fail(w, "tensor '%s': n_dims is %d; must be 1..%d", name, n_dims,
                           MRT_GGUF_MAX_DIMS);
    uint64_t nbytes = mrt_gguf_type_size(type);
    for (int d = 0; d < n_dims; d++) {
        if (dims[d] < 1)
            return writer_fail(w, "tensor '%s': dims[%d] is %" PRId64 "; must be >= 1", name, d,
                               dims[d]);
        if (mul_overflows_u64(nbytes, (uint64_t)dims[d], &nbytes) || nbytes > (uint64_t)INT64_MAX ||
            nbytes > SIZE_MAX / 2)
            return writer_fail(w, "tensor '%s': dims are too large", name);
    }
    if (!data) return writer_fail(w, "tensor '%s': data is NULL", name);
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return writer_fail(w, "duplicate tensor name '%s'", name);
    if (w->n_tensors >= MRT_GGUF_MAX_TENSORS)
        return writer_fail(w, "too many tensors (limit %d)", MRT_GGUF_MAX_TENSORS);
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? 2 * w->cap_tensors : 16;
        writer_tensor *grown = realloc(w->tensors, cap * sizeof *grown);
        if (!grown) return writer_fail(w, "out of memory adding tensor '%s'", name);
        w->tensors = grown;
        w->cap_tensors = cap;
    }
    writer_tensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = copy_string(name);
    t->data = malloc((size_t)nbytes);
    if (!t->name || !t->data) {
        free(t->name);
        free(t->data);
        return writer_fail(w, "out of memory adding tensor '%s' (%" PRIu64 " bytes)", name, nbytes);
    }
    memcpy(t->data, data, (size_t)nbytes);
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < MRT_GGUF_MAX_DIMS; d++) t->dims[d] = d < n_dims ? dims[d] : 1;
    t->nbytes = (size_t)nbytes;
    w->n_tensors++;
    return 0;
}

int mrt_gguf_writer_save_memory(mrt_gguf_writer *w, uint8_t **out, size_t *len, char *err,
                                size_t errlen) {
    *out = NULL;
    *len = 0;
    if (w->failed) {
        set_error(err, errlen, "%s", w->first_error);
        return -1;
    }
    static const uint8_t zeros[MRT_GGUF_ALIGNMENT] = {0};
    bytebuf b = {0};
    buf_append(&b, "GGUF", 4);
    buf_le(&b, MRT_GGUF_VERSION, 4);
    buf_le(&b, w->n_tensors, 8);
    buf_le(&b, w->n_kvs + 1, 8);
    buf_string(&b, ALIGNMENT_KEY, strlen(ALIGNMENT_KEY));
    buf_le(&b, MRT_GGUF_V_U32, 4);
    buf_le(&b, MRT_GGUF_ALIGNMENT, 4);
    for (size_t i = 0; i < w->n_kvs; i++) buf_append(&b, w->kvs[i].encoded.bytes, w->kvs[i].encoded.len);
    /* Tensors are laid out in the order added, each at the next multiple of 64. */
    uint64_t offset = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const writer_tensor *t = &w->tensors[i];
        buf_string(&b, t->name, strlen(t->name));
        buf_le(&b, (uint32_t)t->n_dims, 4);
        for (int d = 0; d < t->n_dims; d++) buf_le(&b, (uint64_t)t->dims[d], 8);
        buf_le(&b, (uint32_t)t->type, 4);
        buf_le(&b, offset, 8);
        offset = align_up_u64(offset + t->nbytes);
    }
    for (size_t i = 0; i < w->n_tensors; i++) {
        buf_append(&b, zeros, (size_t)(align_up_u64(b.len) - b.len));
        buf_append(&b, w->tensors[i].data, w->tensors[i].nbytes);
    }
    buf_append(&b, zeros, (size_t)(align_up_u64(b.len) - b.len));
    if (b.failed) {
        free(b.bytes);
        set_error(err, errlen, "out of memory building the GGUF image");
        return -1;
    }
    *out = b.bytes;
    *len = b.len;
    return 0;
}

int mrt_gguf_writer_save(mrt_gguf_writer *w, const char *path, char *err, size_t errlen) {
    uint8_t *image;
    size_t len;
    char inner[600];
    if (mrt_gguf_writer_save_memory(w, &image, &len, inner, sizeof inner)) {
        set_error(err, errlen, "%s: %s", path, inner);
        return -1;
    }
    mrt_error e;
    mrt_status st = mrt_write_file_atomic(path, image, len, &e);
    free(image);
    if (st != MRT_OK) {
        set_error(err, errlen, "%s", e.message);
        return -1;
    }
    return 0;
}
