/*
 * gguf.h -- mrt's weights file: a strict subset of GGUF v3.
 *
 * GGUF is llama.cpp's model format. Every file this module writes is a
 * valid GGUF v3 file that other GGUF tools can read; the reader accepts
 * only the subset below and rejects everything else with a message that
 * names the file, the field, the offset and the values involved. It never
 * crashes, hangs or reads out of bounds, whatever the input: every count
 * and length is checked against what the remaining bytes could hold before
 * anything is allocated or read.
 *
 * ------------------------------------------------------------- the subset
 *
 * All integers and floats are little-endian. A "string" is a u64 byte
 * length followed by that many bytes, without a terminating NUL.
 *
 *   header        "GGUF" (4 bytes), u32 version = 3,
 *                 u64 tensor_count <= 65536, u64 kv_count <= 65536
 *   kv_count KVs  string key, u32 value type, value
 *   tensor infos  string name, u32 n_dims, u64 dims[n_dims], u32 type,
 *                 u64 offset (relative to the start of the data section)
 *   padding       zero bytes up to the next multiple of 64 (file offset)
 *   data section  the tensors' data, at their offsets
 *   padding       optional, after the end of the last tensor's data: zero
 *                 bytes, at most up to the next multiple of 64 (relative to
 *                 the data section). Anything longer or non-zero is
 *                 rejected, so nothing can hide behind the tensors. With no
 *                 tensors, the file ends at or inside the header padding.
 *
 * Keys and tensor names: 1..256 bytes of printable ASCII without spaces
 * (0x21..0x7E), so they are always safe to print in a message. Keys are
 * unique; tensor names are unique.
 *
 * Value types (GGUF numbering): 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32,
 * 6 f32, 7 bool (one byte, 0 or 1 only), 8 string, 9 array, 10 u64,
 * 11 i64, 12 f64.
 *   - string values: at most 64 KiB, no NUL byte inside (the bytes are
 *     meant to be UTF-8, as GGUF says, but are not checked).
 *   - arrays: u32 element type, u64 count <= 1<<20, then the elements.
 *     Elements are any scalar type above or strings; arrays of arrays are
 *     rejected.
 *
 * Required metadata: `general.alignment`, type u32, value 64. (GGUF makes
 * it optional with a default of 32; we require it present so that a file
 * written with another alignment can never be misread.)
 *
 * Tensors:
 *   - type (ggml numbering): 0 F32, 24 I8, 25 I16, 26 I32. Nothing else
 *     (no quantised or half types).
 *   - 1 <= n_dims <= 4; every dim >= 1. dims[0] varies fastest: a PyTorch
 *     tensor of shape (C_out, C_in), row-major, is stored with
 *     dims = [C_in, C_out]. The element count and byte size are computed
 *     with overflow checks and must fit inside the file.
 *   - offset is a multiple of 64; [offset, offset + nbytes) lies inside the
 *     data section; no two tensors' byte ranges overlap. Gaps between
 *     tensors are allowed (GGUF allows them) and are not inspected. (The
 *     writer leaves none: tensors follow each other in order, each padded
 *     to 64 bytes, which is also what ggml's own loader insists on.)
 *
 * Tensor data is used in place (mmap), so this module only builds on
 * little-endian hosts, and every tensor's data pointer is 64-byte aligned
 * in memory.
 *
 * The fingerprint of a model is the SHA-256 of the whole file; open
 * computes it, so opening reads every byte once.
 *
 * ---------------------------------------------------------------- example
 *
 *     char err[512];
 *     mrt_gguf *g;
 *     if (mrt_gguf_open(&g, "weights.gguf", err, sizeof err) != 0) {
 *         fprintf(stderr, "%s\n", err);
 *         return -1;
 *     }
 *     uint32_t width;
 *     const int64_t wdims[2] = {48, 64};          // PyTorch shape (64, 48)
 *     const float *w = mrt_gguf_get_f32(g, "enc.0.att.w", 2, wdims, err, sizeof err);
 *     if (!w || mrt_gguf_meta_u32(g, "mrt.width", &width, err, sizeof err) != 0) ...
 *     mrt_gguf_close(g);                          // w is invalid from here on
 *
 * Error messages have the form "<label>: <where>: <what>", for example
 *   "weights.gguf: tensor 'enc.0.att.w' (info #3): data offset 4096 + 256
 *    bytes runs past the end of the data section (4104 bytes from file
 *    offset 192; file is 4296 bytes)".
 * `err` may be NULL (or errlen 0) when the caller does not want a message.
 */
#ifndef MRT_GGUF_H
#define MRT_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MRT_GGUF_VERSION 3
#define MRT_GGUF_ALIGNMENT 64
#define MRT_GGUF_MAX_TENSORS 65536
#define MRT_GGUF_MAX_KVS 65536
#define MRT_GGUF_MAX_NAME_BYTES 256       /* keys and tensor names */
#define MRT_GGUF_MAX_STRING_BYTES 65536   /* string values */
#define MRT_GGUF_MAX_ARRAY_COUNT (1u << 20)
#define MRT_GGUF_MAX_DIMS 4

/* Tensor element types (ggml numbering). */
typedef enum mrt_gguf_type {
    MRT_GGUF_F32 = 0,
    MRT_GGUF_I8 = 24,
    MRT_GGUF_I16 = 25,
    MRT_GGUF_I32 = 26,
} mrt_gguf_type;

/* Metadata value types (GGUF numbering). */
typedef enum mrt_gguf_vtype {
    MRT_GGUF_V_U8 = 0,
    MRT_GGUF_V_I8 = 1,
    MRT_GGUF_V_U16 = 2,
    MRT_GGUF_V_I16 = 3,
    MRT_GGUF_V_U32 = 4,
    MRT_GGUF_V_I32 = 5,
    MRT_GGUF_V_F32 = 6,
    MRT_GGUF_V_BOOL = 7,
    MRT_GGUF_V_STRING = 8,
    MRT_GGUF_V_ARRAY = 9,
    MRT_GGUF_V_U64 = 10,
    MRT_GGUF_V_I64 = 11,
    MRT_GGUF_V_F64 = 12,
} mrt_gguf_vtype;

/* "F32", "I8", ...; "?" for other values. */
const char *mrt_gguf_type_name(mrt_gguf_type type);
/* "u8", ..., "string", "array"; "?" for other values. */
const char *mrt_gguf_vtype_name(mrt_gguf_vtype type);
/* Bytes per element of a tensor type (4, 1, 2, 4); 0 for other values. */
size_t mrt_gguf_type_size(mrt_gguf_type type);

/* ----------------------------------------------------------------- reader */

typedef struct mrt_gguf mrt_gguf; /* an open, fully validated file */

typedef struct mrt_gguf_tensor {
    const char *name;       /* NUL-terminated */
    int n_dims;             /* 1..4 */
    int64_t dims[MRT_GGUF_MAX_DIMS]; /* dims[0] fastest; unused entries are 1 */
    mrt_gguf_type type;
    const void *data;       /* 64-byte aligned, read-only, valid until close */
    size_t nbytes;          /* nelems * mrt_gguf_type_size(type) */
    int64_t nelems;
    uint64_t file_offset;   /* where the data starts in the file */
} mrt_gguf_tensor;

/* A string value: a NUL-terminated copy; len excludes the NUL. */
typedef struct mrt_gguf_string {
    const char *str;
    size_t len;
} mrt_gguf_string;

typedef struct mrt_gguf_kv {
    const char *key;        /* NUL-terminated */
    mrt_gguf_vtype type;
    /* Arrays only: element type and count. */
    mrt_gguf_vtype elem_type;
    uint64_t count;
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        float f32;
        bool b;
        uint64_t u64;
        int64_t i64;
        double f64;
        mrt_gguf_string str;
        /* Arrays: `count` elements of elem_type as native C values
         * (uint8_t, ..., bool, double) in a suitably aligned buffer, or
         * `count` mrt_gguf_string for string arrays. NULL when count is 0. */
        const void *array;
    } v;
} mrt_gguf_kv;

/* Opens and validates a file (read-only mmap) and computes its SHA-256.
 * 0: ok, *out set. -1: *out = NULL, message in err (label = path). */
int mrt_gguf_open(mrt_gguf **out, const char *path, char *err, size_t errlen);
/* Same for a file image in memory. The bytes are copied into an owned
 * 64-byte-aligned buffer, so buf may be freed after the call. label names
 * the image in messages (NULL: "<memory>"). */
int mrt_gguf_open_memory(mrt_gguf **out, const void *buf, size_t len, const char *label,
                         char *err, size_t errlen);
/* Releases everything; all pointers obtained from g become invalid. NULL is fine. */
void mrt_gguf_close(mrt_gguf *g);

/* SHA-256 of the whole file: the model fingerprint (32 bytes). */
const uint8_t *mrt_gguf_sha256(const mrt_gguf *g);
/* The label used in messages (the path, or open_memory's label). */
const char *mrt_gguf_label(const mrt_gguf *g);

/* Tensors in file order. */
int mrt_gguf_tensor_count(const mrt_gguf *g);
const mrt_gguf_tensor *mrt_gguf_tensor_at(const mrt_gguf *g, int i); /* NULL if out of range */
/* Lookup by name (binary search); NULL if absent, no message. */
const mrt_gguf_tensor *mrt_gguf_find(const mrt_gguf *g, const char *name);

/* Lookup with type and shape check: the tensor, or NULL with a message if
 * it is missing, has another type, or has other dims, e.g.
 *   "m.gguf: tensor 'x': shape [64, 32] but the model needs [64, 48]".
 * dims are in GGUF order (dims[0] fastest). */
const mrt_gguf_tensor *mrt_gguf_get_tensor(const mrt_gguf *g, const char *name,
                                           mrt_gguf_type type, int n_dims, const int64_t *dims,
                                           char *err, size_t errlen);
/* mrt_gguf_get_tensor(..., MRT_GGUF_F32, ...)->data. */
const float *mrt_gguf_get_f32(const mrt_gguf *g, const char *name, int n_dims,
                              const int64_t *dims, char *err, size_t errlen);

/* Metadata in file order, and lookup by key (binary search; NULL if absent). */
int mrt_gguf_kv_count(const mrt_gguf *g);
const mrt_gguf_kv *mrt_gguf_kv_at(const mrt_gguf *g, int i);
const mrt_gguf_kv *mrt_gguf_find_kv(const mrt_gguf *g, const char *key);

/* Typed metadata getters: 0 ok; -1 if the key is missing or has another
 * type (no conversions, not even u32 -> u64), with a message in err.
 * meta_str gives the NUL-terminated string (valid until close); len may be NULL. */
int mrt_gguf_meta_u32(const mrt_gguf *g, const char *key, uint32_t *out, char *err, size_t errlen);
int mrt_gguf_meta_i32(const mrt_gguf *g, const char *key, int32_t *out, char *err, size_t errlen);
int mrt_gguf_meta_u64(const mrt_gguf *g, const char *key, uint64_t *out, char *err, size_t errlen);
int mrt_gguf_meta_f32(const mrt_gguf *g, const char *key, float *out, char *err, size_t errlen);
int mrt_gguf_meta_bool(const mrt_gguf *g, const char *key, bool *out, char *err, size_t errlen);
int mrt_gguf_meta_str(const mrt_gguf *g, const char *key, const char **out, size_t *len,
                      char *err, size_t errlen);

/* ----------------------------------------------------------------- writer */

/* Collects metadata and tensors in memory, then writes a file that the
 * reader accepts: `general.alignment` = 64 first, then the KVs and tensors
 * in the order they were added, each tensor at the next multiple of 64.
 *
 * Every add_* validates its input against the subset's rules (names, sizes,
 * types, duplicates) and returns 0, or -1 if it was rejected or memory ran
 * out. The first failure is also remembered and makes save/save_memory
 * fail with its message, so a caller may check only the final save. */
typedef struct mrt_gguf_writer mrt_gguf_writer;

mrt_gguf_writer *mrt_gguf_writer_new(void); /* NULL if out of memory */
void mrt_gguf_writer_free(mrt_gguf_writer *w); /* NULL is fine */
/* The first add_* failure's message, or NULL if every add succeeded. */
const char *mrt_gguf_writer_error(const mrt_gguf_writer *w);

int mrt_gguf_writer_add_u32(mrt_gguf_writer *w, const char *key, uint32_t value);
int mrt_gguf_writer_add_i32(mrt_gguf_writer *w, const char *key, int32_t value);
int mrt_gguf_writer_add_u64(mrt_gguf_writer *w, const char *key, uint64_t value);
int mrt_gguf_writer_add_f32(mrt_gguf_writer *w, const char *key, float value);
int mrt_gguf_writer_add_bool(mrt_gguf_writer *w, const char *key, bool value);
int mrt_gguf_writer_add_str(mrt_gguf_writer *w, const char *key, const char *value);
/* Any scalar type (not string or array); value points to the native C value
 * (uint8_t for U8, ..., bool for BOOL, double for F64). */
int mrt_gguf_writer_add_scalar(mrt_gguf_writer *w, const char *key, mrt_gguf_vtype type,
                               const void *value);
/* An array of `count` elements of a scalar type (native C values, as for
 * add_scalar) or of strings (elems is then `const char *const *`). */
int mrt_gguf_writer_add_array(mrt_gguf_writer *w, const char *key, mrt_gguf_vtype elem_type,
                              size_t count, const void *elems);
/* Copies the data: nelems * mrt_gguf_type_size(type) bytes, dims in GGUF order. */
int mrt_gguf_writer_add_tensor(mrt_gguf_writer *w, const char *name, mrt_gguf_type type,
                               int n_dims, const int64_t *dims, const void *data);

/* Writes the file atomically with mrt_write_file_atomic (mrt.h): a
 * temporary file in the same directory, fsync, rename over `path`, fsync of
 * the directory, so a crash leaves either the old file or the complete new
 * one. The file gets mode 0666 less the umask, as any new file.
 * 0 ok, -1 with a message. The writer can still be used or saved again. */
int mrt_gguf_writer_save(mrt_gguf_writer *w, const char *path, char *err, size_t errlen);
/* The file image in a malloc'd buffer (*out, *len; caller frees). */
int mrt_gguf_writer_save_memory(mrt_gguf_writer *w, uint8_t **out, size_t *len, char *err,
                                size_t errlen);

#endif /* MRT_GGUF_H */
