/*
** mrt_sqlite.c -- the mrt SQLite extension: learned extreme-compression photos in SQL.
**
** A thin adapter over libmrt (codec/include/mrt.h): it moves bytes between
** SQLite values and that API and holds no codec logic of its own.
**
** Build: the CMake target `mrt_sqlite` gives build/ext/mrt.so; load it with
**
**     sqlite3 photos.db '.load build/ext/mrt'
**     sqlite3_load_extension(db, "build/ext/mrt", 0, &err);   (entry: sqlite3_mrt_init)
**
** The same file compiled with -DSQLITE_CORE (target `mrt_sqlite_static`)
** links into a program; call mrt_sqlite_register(db) (ext/mrt_sqlite.h).
**
** Functions (every one: NULL in -> NULL out; full text in ext/README.md;
** outputs below are from the seeded random model `mrt init-model --seed 1`,
** because no trained model ships yet):
**
**   mrt_encode(image BLOB [, rate [, refine]]) -> BLOB
**       PNG or JPEG bytes in, an mrt bitstream out. `rate` picks a rate
**       point: a rate id (integer), a rate-point name (text, or a number
**       for names like '0.01'), or 'low' / 'medium' / 'high'; or it is a
**       byte budget, text such as '1500B', '2KB' (2,000 bytes) or '1.5KiB'
**       (1,536 bytes): the encoder then chooses the rate point among those
**       beside the connection's model, and a working size (a smaller copy
**       the decoder scales back up), whichever decodes closest to the
**       image within the budget (libmrt's mrt_encode_budget). `refine`
**       (integer steps, 0..10000) spends encoding time on a better picture
**       at the same size (latent refinement, as `mrt encode --refine`).
**         SELECT length(mrt_encode(readfile('samples/coffee.jpg')));  -> 814
**
**   mrt_decode(bits BLOB) -> BLOB
**       A bitstream in, a PNG out (with the connection's model, or the
**       rate point beside it whose fingerprint the bitstream names).
**         SELECT writefile('coffee.png', mrt_decode(data)) FROM images
**          WHERE name = 'samples/coffee.jpg';                         -> 279394
**
**   mrt_info(bits BLOB) -> TEXT
**       The bitstream header as JSON, no model needed (as `mrt info`).
**         SELECT mrt_info(mrt_encode(readfile('samples/coffee.jpg')));
**         -> {"version": 1, "width": 600, "height": 400, "bytes": 814,
**             "bpp": 0.027133, "rate_id": 2, "model": "823ce1176bab8d11", "streams": [20, 764]}
**
**   mrt_psnr(a BLOB, b BLOB) -> REAL
**       PSNR in dB over the RGB8 pixels of two PNG/JPEG images of one size
**       (100 when identical).
**         SELECT round(mrt_psnr(readfile('samples/coffee.jpg'),
**                               mrt_decode(mrt_encode(readfile('samples/coffee.jpg')))), 2);  -> 6.01
**
**   mrt_msssim(a BLOB, b BLOB) -> REAL
**       MS-SSIM (the training loss's, on RGB) of two PNG/JPEG images of one size.
**         SELECT mrt_msssim(readfile('samples/coffee.jpg'), readfile('samples/coffee.jpg'));  -> 1.0
**
**   mrt_version() -> TEXT
**         SELECT mrt_version();                                       -> 0.1.0
**
**   mrt_debug() -> TEXT
**       JSON: version, build, SQLite, BLIS version/variant/kernels,
**       threads, the connection's model (path, source, fingerprint).
**         SELECT json_extract(mrt_debug(), '$.blis.kernels');          -> zen3
**
**   mrt_model(path TEXT) -> TEXT
**       Loads a weights file as this connection's model and returns it
**       as JSON (path, source, name, rate_id, working_scale, fingerprint);
**       '' goes back to the default model.
**         SELECT json_extract(mrt_model('/tmp/other.gguf'), '$.source');  -> mrt_model()
**
** The default model (no configuration needed): $MRT_MODEL, else
** default.gguf beside mrt.so, else <datadir>/mrt/models/default.gguf of the
** install, else models/default.gguf of the source tree it was built from.
** Each model file is loaded once per process, shared by every connection
** and thread, and freed when the last connection using it closes.
**
** Errors: a wrong argument type is SQLITE_MISMATCH naming the function and
** the argument; an image or result over the limits is SQLITE_TOOBIG; bad
** images and damaged or foreign bitstreams are SQLITE_ERROR with libmrt's
** reason. Every message starts with the function's name.
*/
#define _GNU_SOURCE /* dladdr, dl_iterate_phdr: before any system header */

#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <math.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mrt.h"
#include "mrt_json.h"
#include "mrt_sha256.h"
#include "mrt_sqlite.h"

/* Compile-time facts, from ext/CMakeLists.txt (fallbacks for a bare build). */
#ifndef MRT_BUILD_TYPE
#define MRT_BUILD_TYPE "unknown"
#endif
#ifndef MRT_COMPILER
#define MRT_COMPILER "unknown"
#endif
#ifndef MRT_SANITIZED
#define MRT_SANITIZED 0
#endif
#ifdef SQLITE_CORE
#define MRT_LINKAGE "static"
#else
#define MRT_LINKAGE "loadable"
#endif

#define NO_MODEL_HINT "set MRT_MODEL or SELECT mrt_model('/path/model.gguf')"

/* ------------------------------------------------- per-connection state */

/* What one connection remembers: its model set (libmrt's mrt_model_set:
 * the model, the rate points beside it, each weights file loaded once per
 * process and shared). SQLite runs a connection's function calls one at a
 * time (under its mutex, or by the rules of multi-thread mode), so nothing
 * here needs a lock. */
typedef struct mrt_conn {
    int registrations;  /* functions whose user data this is; freed at 0 */
    mrt_model_set *set; /* NULL until first needed */
    const char *source; /* how it was found: "MRT_MODEL", "beside the extension", ... */
} mrt_conn;

static void conn_forget_model(mrt_conn *c) {
    mrt_model_set_free(c->set);
    c->set = NULL;
    c->source = NULL;
}

/* xDestroy of every registered function: the state goes with the last. */
static void conn_unref(void *p) {
    mrt_conn *c = p;
    if (--c->registrations > 0) return;
    conn_forget_model(c);
    free(c);
}

int mrt_sqlite_models_loaded(void) { return mrt_models_loaded(); }

/* ------------------------------------------------------------- errors */

/* Sets the result to an error: the message (printf-style, starting with the
 * function's name by convention) and, unless it is plain SQLITE_ERROR, the
 * code. sqlite3_result_error_code keeps a message already set. */
static void fail(sqlite3_context *ctx, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *msg = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    if (!msg) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    sqlite3_result_error(ctx, msg, -1);
    if (code != SQLITE_ERROR) sqlite3_result_error_code(ctx, code);
    sqlite3_free(msg);
}

/* A libmrt failure: too big stays too big (SQLITE_TOOBIG), out of memory
 * stays out of memory; everything else -- bad image, damaged or foreign
 * bitstream, bad weights file -- is SQLITE_ERROR with libmrt's reason.
 * (SQLITE_CORRUPT and SQLITE_IOERR would be wrong: they speak of the
 * database file, and an IOERR makes SQLite roll back the transaction.) */
static void fail_mrt(sqlite3_context *ctx, const char *fn, const char *what, const mrt_error *e) {
    int code = e->status == MRT_ERR_TOO_BIG ? SQLITE_TOOBIG
             : e->status == MRT_ERR_NOMEM   ? SQLITE_NOMEM
                                            : SQLITE_ERROR;
    if (what)
        fail(ctx, code, "%s: %s: %s", fn, what, e->message);
    else
        fail(ctx, code, "%s: %s", fn, e->message);
}

static const char *type_name(int type) {
    switch (type) {
    case SQLITE_INTEGER: return "INTEGER";
    case SQLITE_FLOAT: return "REAL";
    case SQLITE_TEXT: return "TEXT";
    case SQLITE_BLOB: return "BLOB";
    default: return "NULL";
    }
}

/* "NULL in -> NULL out": true when any argument is NULL (the result is then
 * left unset, which SQLite returns as NULL). */
static int any_null(int argc, sqlite3_value **argv) {
    for (int i = 0; i < argc; i++)
        if (sqlite3_value_type(argv[i]) == SQLITE_NULL) return 1;
    return 0;
}

/* Checks that argument i (0-based) is a BLOB; SQLITE_MISMATCH otherwise.
 * No conversion from TEXT: a string is never meant as image bytes. */
static int want_blob(sqlite3_context *ctx, const char *fn, sqlite3_value **argv, int i,
                     const char *arg, const char *what) {
    int t = sqlite3_value_type(argv[i]);
    if (t == SQLITE_BLOB) return 1;
    fail(ctx, SQLITE_MISMATCH, "%s: argument %d (%s) must be a BLOB of %s, not %s", fn, i + 1,
         arg, what, type_name(t));
    return 0;
}

/* A BLOB argument's bytes. SQLite gives NULL for a zero-length BLOB; libmrt
 * takes NULL as a missing argument, so an empty BLOB becomes a pointer to
 * nothing and gets libmrt's own "empty input" / "bad magic" reason. */
static const uint8_t *blob_bytes(sqlite3_value *v, size_t *len) {
    static const uint8_t nothing[1];
    const uint8_t *p = sqlite3_value_blob(v);
    *len = (size_t)sqlite3_value_bytes(v);
    return p ? p : nothing;
}

/* Hands a libmrt buffer to SQLite without a copy, or refuses it when it is
 * over the connection's SQLITE_LIMIT_LENGTH. */
static void result_bytes(sqlite3_context *ctx, const char *fn, uint8_t *p, size_t n) {
    int limit = sqlite3_limit(sqlite3_context_db_handle(ctx), SQLITE_LIMIT_LENGTH, -1);
    if (n > (size_t)limit) {
        mrt_free(p);
        fail(ctx, SQLITE_TOOBIG, "%s: the result is %lld bytes, over SQLITE_LIMIT_LENGTH (%d)", fn,
             (long long)n, limit);
        return;
    }
    sqlite3_result_blob64(ctx, p, (sqlite3_uint64)n, mrt_free);
}

/* ------------------------------------------------------- model finding */

#ifndef SQLITE_CORE
/* Any object of this file: dladdr() on it names the loaded mrt.so. */
static const char mrt_anchor = 0;
#endif

/* The default model's path and where it came from (libmrt's search, with
 * the folder of the loaded mrt.so first after $MRT_MODEL); NULL when there
 * is none. */
static char *default_model_path(const char **source) {
    char *beside = NULL;
#ifndef SQLITE_CORE
    Dl_info info;
    if (dladdr(&mrt_anchor, &info) && info.dli_fname) {
        const char *slash = strrchr(info.dli_fname, '/');
        beside = slash ? strndup(info.dli_fname, (size_t)(slash - info.dli_fname) + (slash == info.dli_fname))
                       : strdup(".");
    }
#endif
    char *path = mrt_default_model_path(beside, "beside the extension", source);
    free(beside);
    return path;
}

/* The connection's model set, found and loaded on first use. On failure
 * NULL, with *code and *msg (sqlite3_mprintf'd) saying why; nothing is
 * cached, so the next call looks again (e.g. after MRT_MODEL is fixed). */
static mrt_model_set *conn_set_try(mrt_conn *c, const char *fn, int *code, char **msg) {
    if (c->set) return c->set;
    const char *source = NULL;
    char *path = default_model_path(&source);
    *code = SQLITE_ERROR;
    if (!path) {
        *msg = sqlite3_mprintf("%s: no model: " NO_MODEL_HINT, fn);
        return NULL;
    }
    mrt_error e = {0};
    mrt_status st = mrt_model_set_open(path, &c->set, &e);
    free(path);
    if (st != MRT_OK) {
        if (e.status == MRT_ERR_NOMEM) *code = SQLITE_NOMEM;
        *msg = sqlite3_mprintf("%s: model from %s: %s", fn, source, e.message);
        return NULL;
    }
    c->source = source;
    return c->set;
}

/* The same, setting the function's result to the error. */
static mrt_model_set *conn_set(sqlite3_context *ctx, mrt_conn *c, const char *fn) {
    int code;
    char *msg = NULL;
    mrt_model_set *set = conn_set_try(c, fn, &code, &msg);
    if (set) return set;
    if (msg) fail(ctx, code, "%s", msg);
    else sqlite3_result_error_nomem(ctx);
    sqlite3_free(msg);
    return NULL;
}

/* Resolves mrt_encode's `rate` argument (ext/README.md, "Rate points"):
 *   INTEGER n             the rate point whose model has rate id n;
 *   TEXT name             the rate point of that name (mrt-NAME.gguf), or
 *                         low|medium|high;
 *   REAL x                the rate point whose name is the number x. */
static const mrt_model *rate_model(sqlite3_context *ctx, mrt_conn *c, const char *fn,
                                   sqlite3_value *v) {
    int type = sqlite3_value_type(v);
    if (type == SQLITE_BLOB) {
        fail(ctx, SQLITE_MISMATCH,
             "%s: argument 2 (rate) must be a rate id, a rate-point name or 'low'/'medium'/'high', "
             "not BLOB", fn);
        return NULL;
    }
    mrt_model_set *set = conn_set(ctx, c, fn);
    if (!set) return NULL;
    const mrt_model *m = NULL;
    mrt_error e = {0};
    mrt_status st;
    if (type == SQLITE_INTEGER) {
        st = mrt_model_set_by_id(set, sqlite3_value_int64(v), &m, &e);
    } else if (type == SQLITE_FLOAT) {
        st = mrt_model_set_by_number(set, sqlite3_value_double(v), &m, &e);
    } else {
        const char *name = (const char *)sqlite3_value_text(v);
        if (!name) {
            sqlite3_result_error_nomem(ctx);
            return NULL;
        }
        st = mrt_model_set_by_name(set, name, &m, &e);
    }
    if (st != MRT_OK) {
        fail_mrt(ctx, fn, NULL, &e);
        return NULL;
    }
    return m;
}

/* ------------------------------------------------------------ JSON bits */

/* {"path": ..., "source": ..., "name": ..., "rate_id": ..., "working_scale": ...,
 * "fingerprint": ...} as member `key` (NULL: the whole value) */
static void json_model(mrt_json *w, const char *key, mrt_conn *c) {
    const mrt_model *m = mrt_model_set_model(c->set);
    char fp[MRT_SHA256_HEX_CHARS + 1]; /* the whole SHA-256 of the file */
    mrt_sha256_hex(mrt_model_fingerprint(m), fp);
    const char *name = mrt_model_set_rate_name(c->set, m);
    mrt_json_object(w, key, MRT_JSON_INLINE);
    const char *path = mrt_model_set_path(c->set);
    mrt_json_string(w, "path", path ? path : "");
    mrt_json_string(w, "source", c->source ? c->source : "");
    mrt_json_string(w, "name", name ? name : "");
    mrt_json_int(w, "rate_id", mrt_model_rate_id(m));
    /* below 1: a rate point that codes a shrunk copy (models/README.md) */
    mrt_json_real(w, "working_scale", "%g", mrt_model_working_scale(m));
    mrt_json_string(w, "fingerprint", fp);
    mrt_json_end(w);
}

/* The writer's text as the TEXT result (the writer fails only for memory). */
static void result_json(sqlite3_context *ctx, mrt_json *w) {
    char *text = mrt_json_text(w);
    if (!text) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    sqlite3_result_text(ctx, text, -1, mrt_free);
}

/* ------------------------------------------------------------- functions */

/* mrt_encode(image BLOB [, rate [, refine]]) -> bitstream BLOB */
static void encode_func(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    static const char fn[] = "mrt_encode";
    mrt_conn *c = sqlite3_user_data(ctx);
    if (any_null(argc, argv)) return;
    if (!want_blob(ctx, fn, argv, 0, "image", "PNG or JPEG bytes")) return;
    mrt_encode_options options = {.threads = 0};
    if (argc > 2) {
        int t = sqlite3_value_type(argv[2]);
        if (t != SQLITE_INTEGER) {
            fail(ctx, SQLITE_MISMATCH, "%s: argument 3 (refine) must be an INTEGER number of "
                 "refinement steps, not %s", fn, type_name(t));
            return;
        }
        sqlite3_int64 steps = sqlite3_value_int64(argv[2]);
        if (steps < 0 || steps > MRT_REFINE_MAX_STEPS) {
            fail(ctx, SQLITE_ERROR, "%s: argument 3 (refine) is %lld steps, outside 0..%d", fn,
                 (long long)steps, MRT_REFINE_MAX_STEPS);
            return;
        }
        options.refine_steps = (int)steps;
    }
    /* a byte budget ('1500B', '2KB', ...): every rate point beside the
     * connection's model (each once, by fingerprint), mrt_encode_budget
     * choosing rate point and working size */
    size_t budget = 0;
    const mrt_model *m = NULL;
    const mrt_model *const *points = NULL;
    int npoints = 0;
    if (argc > 1 && sqlite3_value_type(argv[1]) == SQLITE_TEXT &&
        mrt_parse_byte_budget((const char *)sqlite3_value_text(argv[1]), &budget) == 0) {
        mrt_model_set *set = conn_set(ctx, c, fn);
        mrt_error e = {0};
        if (!set) return;
        if (mrt_model_set_rate_points(set, &points, &npoints, &e) != MRT_OK) {
            fail_mrt(ctx, fn, NULL, &e);
            return;
        }
    } else if (argc > 1) {
        if (!(m = rate_model(ctx, c, fn, argv[1]))) return;
    } else {
        mrt_model_set *set = conn_set(ctx, c, fn);
        if (!set) return;
        m = mrt_model_set_model(set);
    }
    size_t len;
    const uint8_t *data = blob_bytes(argv[0], &len);
    mrt_error e = {0};
    mrt_image img = {0};
    if (mrt_image_read_memory(data, len, &img, &e) != MRT_OK) {
        fail_mrt(ctx, fn, "argument 1 (image)", &e);
        return;
    }
    uint8_t *bits = NULL;
    size_t nbits = 0;
    mrt_status st = budget ? mrt_encode_budget(points, npoints, &img, budget, &options, &bits,
                                               &nbits, NULL, &e)
                           : mrt_encode_with(m, &img, &options, &bits, &nbits, &e);
    mrt_image_free(&img);
    if (st != MRT_OK) {
        fail_mrt(ctx, fn, NULL, &e);
        return;
    }
    result_bytes(ctx, fn, bits, nbits);
}

/* Argument 1 of mrt_decode and mrt_info, a bitstream: its bytes, with its
 * header read into *info; NULL (the result set to the error) when it is
 * not a BLOB or its header is damaged. */
static const uint8_t *bits_header(sqlite3_context *ctx, const char *fn, sqlite3_value **argv,
                                  size_t *len, mrt_info *info) {
    if (!want_blob(ctx, fn, argv, 0, "bits", "an mrt bitstream")) return NULL;
    const uint8_t *data = blob_bytes(argv[0], len);
    mrt_error e = {0};
    if (mrt_info_read(data, *len, info, &e) != MRT_OK) {
        fail_mrt(ctx, fn, NULL, &e);
        return NULL;
    }
    return data;
}

/* mrt_decode(bits BLOB) -> PNG BLOB */
/* mrt_decode's second argument: 1, 2, 4 or 8, or the TEXT '1/2', '1/4',
 * '1/8' (as `mrt decode --scale`); 0 after setting the error. */
static int decode_scale_arg(sqlite3_context *ctx, const char *fn, sqlite3_value *v) {
    int t = sqlite3_value_type(v);
    if (t == SQLITE_INTEGER) {
        sqlite3_int64 n = sqlite3_value_int64(v);
        if (n == 1 || n == 2 || n == 4 || n == 8) return (int)n;
    } else if (t == SQLITE_TEXT) {
        const char *z = (const char *)sqlite3_value_text(v);
        static const char *const names[] = {"1", "1/2", "1/4", "1/8"};
        for (int i = 0; z && i < 4; i++)
            if (strcmp(z, names[i]) == 0) return 1 << i;
    }
    fail(ctx, SQLITE_MISMATCH,
         "%s: argument 2 (scale) must be 1, 2, 4 or 8, or '1/2', '1/4' or '1/8', not %s", fn,
         t == SQLITE_TEXT ? "that TEXT" : type_name(t));
    return 0;
}

/* mrt_decode(bits BLOB [, scale]) -> PNG BLOB, at 1/scale of the size */
static void decode_func(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    static const char fn[] = "mrt_decode";
    mrt_conn *c = sqlite3_user_data(ctx);
    if (any_null(argc, argv)) return;
    int scale = argc > 1 ? decode_scale_arg(ctx, fn, argv[1]) : 1;
    if (!scale) return;
    size_t len;
    const uint8_t *data;
    mrt_info info;
    /* The header first: damage is reported as such before any model is
     * looked for, and its fingerprint says which model to use. */
    if (!(data = bits_header(ctx, fn, argv, &len, &info))) return;
    mrt_error e = {0};
    /* Made at another rate point: the one beside ours with the bitstream's
     * fingerprint. If none has it, mrt_decode reports the mismatch naming
     * both fingerprints. */
    mrt_model_set *set = conn_set(ctx, c, fn);
    const mrt_model *m = NULL;
    if (!set) return;
    if (mrt_model_set_for_stream(set, info.fingerprint, &m, &e) != MRT_OK) {
        fail_mrt(ctx, fn, NULL, &e);
        return;
    }
    mrt_image img = {0};
    if (mrt_decode_scaled(m, data, len, scale, 0, &img, &e) != MRT_OK) {
        fail_mrt(ctx, fn, NULL, &e);
        return;
    }
    uint8_t *png = NULL;
    size_t npng = 0;
    mrt_status st = mrt_image_write_png_memory(&img, &png, &npng, &e);
    mrt_image_free(&img);
    if (st != MRT_OK) {
        fail_mrt(ctx, fn, "writing the PNG", &e);
        return;
    }
    result_bytes(ctx, fn, png, npng);
}

/* mrt_info(bits BLOB) -> JSON TEXT, the same object as `mrt info` prints. */
static void info_func(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    static const char fn[] = "mrt_info";
    if (any_null(argc, argv)) return;
    size_t len;
    mrt_info info;
    if (!bits_header(ctx, fn, argv, &len, &info)) return;
    char json[MRT_INFO_JSON_MAX];
    mrt_info_json(&info, json, sizeof json);
    sqlite3_result_text(ctx, json, -1, SQLITE_TRANSIENT);
}

/* mrt_psnr and mrt_msssim: both images read, then libmrt's
 * mrt_image_compare, the one PSNR/MS-SSIM of the project (the CLI's eval
 * and the benchmarks use it too). It refuses images of different sizes,
 * naming both. */
static void compare(sqlite3_context *ctx, const char *fn, sqlite3_value **argv, int want_psnr) {
    static const char *names[2] = {"argument 1 (a)", "argument 2 (b)"};
    if (!want_blob(ctx, fn, argv, 0, "a", "PNG or JPEG bytes")) return;
    if (!want_blob(ctx, fn, argv, 1, "b", "PNG or JPEG bytes")) return;
    mrt_image img[2] = {{0}, {0}};
    mrt_error e = {0};
    int ok = 1;
    for (int i = 0; ok && i < 2; i++) {
        size_t len;
        const uint8_t *data = blob_bytes(argv[i], &len);
        if (mrt_image_read_memory(data, len, &img[i], &e) != MRT_OK) {
            fail_mrt(ctx, fn, names[i], &e);
            ok = 0;
        }
    }
    double value = 0;
    /* Thread count: the default; MS-SSIM's planes are computed
     * independently, so the value does not depend on it. */
    if (ok && mrt_image_compare(&img[0], &img[1], 0, want_psnr ? &value : NULL,
                                want_psnr ? NULL : &value, &e) != MRT_OK) {
        fail_mrt(ctx, fn, NULL, &e);
        ok = 0;
    }
    mrt_image_free(&img[0]);
    mrt_image_free(&img[1]);
    if (ok) sqlite3_result_double(ctx, value);
}

/* mrt_psnr(a BLOB, b BLOB) -> REAL: dB over every R, G and B sample; 100
 * for identical pixels (libmrt's stand-in for infinity). */
static void psnr_func(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    if (any_null(argc, argv)) return;
    compare(ctx, "mrt_psnr", argv, 1);
}

/* mrt_msssim(a BLOB, b BLOB) -> REAL: the training loss's MS-SSIM on RGB
 * in [0, 1] (codec/runtime/runtime.h). */
static void msssim_func(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    if (any_null(argc, argv)) return;
    compare(ctx, "mrt_msssim", argv, 0);
}

/* mrt_version() -> TEXT */
static void version_func(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    (void)argv;
    sqlite3_result_text(ctx, MRT_VERSION_STRING, -1, SQLITE_STATIC);
}

/* The BLIS library this process loaded, from the dynamic linker's list. */
static int find_blis(struct dl_phdr_info *info, size_t size, void *out) {
    (void)size;
    if (info->dlpi_name && strstr(info->dlpi_name, "libblis")) {
        *(const char **)out = info->dlpi_name;
        return 1;
    }
    return 0;
}

/* mrt_debug() -> JSON TEXT: what to paste into a bug report. */
static void debug_func(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    (void)argv;
    mrt_conn *c = sqlite3_user_data(ctx);
    mrt_json w;
    mrt_json_to_text(&w);
    mrt_json_object(&w, NULL, MRT_JSON_INLINE);
    mrt_json_string(&w, "version", MRT_VERSION_STRING);
    mrt_json_object(&w, "build", MRT_JSON_INLINE);
    mrt_json_string(&w, "type", MRT_BUILD_TYPE);
    mrt_json_string(&w, "compiler", MRT_COMPILER);
    mrt_json_string(&w, "linkage", MRT_LINKAGE);
    mrt_json_bool(&w, "sanitizers", MRT_SANITIZED);
    mrt_json_end(&w);
    mrt_json_string(&w, "sqlite", sqlite3_libversion());

    /* The BLIS variant is the Debian package's directory (blis-openmp,
     * blis-pthread, blis-serial) of the library actually loaded. */
    const char *blis_name = NULL;
    char blis_path[PATH_MAX];
    const char *variant = "unknown";
    dl_iterate_phdr(find_blis, &blis_name);
    if (blis_name && realpath(blis_name, blis_path)) blis_name = blis_path;
    if (blis_name) {
        static const char *variants[] = {"openmp", "pthread", "serial"};
        for (size_t i = 0; i < 3; i++) {
            char dir[32];
            snprintf(dir, sizeof dir, "blis-%s", variants[i]);
            if (strstr(blis_name, dir)) variant = variants[i];
        }
    }
    mrt_json_object(&w, "blis", MRT_JSON_INLINE);
    mrt_json_string(&w, "version", mrt_blis_version());
    mrt_json_string(&w, "variant", variant);
    mrt_json_string(&w, "kernels", mrt_blis_arch());
    mrt_json_string(&w, "library", blis_name); /* null if not found */
    mrt_json_end(&w);
    mrt_json_int(&w, "threads", mrt_default_threads());

    /* The model, loaded if this connection has not yet: the fingerprint is
     * the point. A failure is reported in the JSON, not as an error, so
     * that mrt_debug() works exactly when something is wrong. */
    int code;
    char *msg = NULL;
    if (conn_set_try(c, "mrt_debug", &code, &msg)) {
        json_model(&w, "model", c);
    } else {
        mrt_json_null(&w, "model");
        mrt_json_string(&w, "model_error", msg ? msg : "out of memory");
    }
    sqlite3_free(msg);
    mrt_json_int(&w, "models_loaded", mrt_sqlite_models_loaded());
    mrt_json_end(&w);
    result_json(ctx, &w);
}

/* mrt_model(path TEXT) -> JSON TEXT; '' returns to the default model. */
static void model_func(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    static const char fn[] = "mrt_model";
    mrt_conn *c = sqlite3_user_data(ctx);
    if (any_null(argc, argv)) return;
    int t = sqlite3_value_type(argv[0]);
    if (t != SQLITE_TEXT) {
        fail(ctx, SQLITE_MISMATCH, "%s: argument 1 (path) must be TEXT, not %s", fn, type_name(t));
        return;
    }
    const char *path = (const char *)sqlite3_value_text(argv[0]);
    if (!path) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    if (!*path) {
        conn_forget_model(c);
        if (!conn_set(ctx, c, fn)) return;
    } else {
        mrt_error e = {0};
        mrt_model_set *set;
        if (mrt_model_set_open(path, &set, &e) != MRT_OK) {
            fail_mrt(ctx, fn, NULL, &e);
            return;
        }
        /* Only now drop the old model: a failed call changes nothing. */
        conn_forget_model(c);
        c->set = set;
        c->source = "mrt_model()";
    }
    mrt_json w;
    mrt_json_to_text(&w);
    json_model(&w, NULL, c);
    result_json(ctx, &w);
}

/* ---------------------------------------------------------- registration */

/* Flags, with the reasons (the same table is in ext/README.md, and
 * tests/ext check the two against PRAGMA function_list):
 *   - mrt_info, mrt_psnr, mrt_msssim, mrt_version: DETERMINISTIC and
 *     INNOCUOUS -- pure functions of their arguments, no side effects.
 *   - mrt_encode, mrt_decode: neither -- their result depends on the
 *     connection's model (MRT_MODEL, mrt_model()), which is not an
 *     argument, and decoded pixels may differ by a level or two between
 *     CPUs; so no indexes or generated columns on them.
 *   - mrt_debug: neither -- reports paths and the environment.
 *   - mrt_model: DIRECTONLY -- it reads a file named in SQL, so it must not
 *     run from a trigger, view or schema someone else wrote. */
#define PURE (SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS)
static const struct {
    const char *name;
    int nargs;
    int flags;
    void (*fn)(sqlite3_context *, int, sqlite3_value **);
} mrt_functions[] = {
    {"mrt_encode", 1, SQLITE_UTF8, encode_func},
    {"mrt_encode", 2, SQLITE_UTF8, encode_func},
    {"mrt_encode", 3, SQLITE_UTF8, encode_func},
    {"mrt_decode", 1, SQLITE_UTF8, decode_func},
    {"mrt_decode", 2, SQLITE_UTF8, decode_func},
    {"mrt_info", 1, PURE, info_func},
    {"mrt_psnr", 2, PURE, psnr_func},
    {"mrt_msssim", 2, PURE, msssim_func},
    {"mrt_version", 0, PURE, version_func},
    {"mrt_debug", 0, SQLITE_UTF8, debug_func},
    {"mrt_model", 1, SQLITE_UTF8 | SQLITE_DIRECTONLY, model_func},
};

int mrt_sqlite_register(sqlite3 *db) {
    mrt_conn *c = calloc(1, sizeof *c);
    if (!c) return SQLITE_NOMEM;
    /* One reference for this loop, one per registered function; SQLite
     * calls conn_unref for each function when it is replaced or the
     * connection closes (and at once if a registration fails). */
    c->registrations = 1;
    int rc = SQLITE_OK;
    for (size_t i = 0; rc == SQLITE_OK && i < sizeof mrt_functions / sizeof mrt_functions[0]; i++) {
        c->registrations++;
        rc = sqlite3_create_function_v2(db, mrt_functions[i].name, mrt_functions[i].nargs,
                                        mrt_functions[i].flags, c, mrt_functions[i].fn, NULL, NULL,
                                        conn_unref);
    }
    conn_unref(c);
    return rc;
}

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_mrt_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi) {
    SQLITE_EXTENSION_INIT2(pApi);
#ifdef SQLITE_CORE
    (void)pApi;
#endif
    int rc = mrt_sqlite_register(db);
    if (rc != SQLITE_OK && pzErrMsg)
        *pzErrMsg = sqlite3_mprintf("mrt: registering the SQL functions failed: %s",
                                    sqlite3_errstr(rc));
    return rc;
}
