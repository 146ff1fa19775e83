/*
 * status.h -- the one way libmrt modules report an error (internal).
 *
 * Public calls return an mrt_status and, when the caller passed an
 * mrt_error, fill it with a one-line reason (mrt.h, "errors"). Every
 * module does that through these helpers, so the rules live in one place:
 *
 *     if (width < 1)
 *         return mrt_fail(err, MRT_ERR_ARGUMENT, "width %d is not positive", width);
 *     ...
 *     return mrt_ok(err);
 *
 * Messages are lower-case, without a trailing period or newline, and name
 * the values involved. A lower layer's message can be prefixed with context
 * (a file name) by passing err->message itself as an argument:
 *
 *     st = read_memory(..., err);
 *     if (st != MRT_OK) return mrt_fail(err, st, "%s: %s", path, err->message);
 */
#ifndef MRT_STATUS_H
#define MRT_STATUS_H

#include <stddef.h>

#include "mrt.h"

#if defined(__GNUC__) || defined(__clang__)
#define MRT_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define MRT_PRINTF(fmt_index, first_arg)
#endif

/* Returns `status`. When `err` is not NULL, sets err->status = status and
 * err->message to the printf-formatted text, cut to fit (always
 * NUL-terminated). The text is formatted into a local buffer first, so the
 * arguments may point into err->message. Thread-safe: no shared state. */
mrt_status mrt_fail(mrt_error *err, mrt_status status, const char *fmt, ...) MRT_PRINTF(3, 4);

/* Returns MRT_OK. When `err` is not NULL, sets err->status = MRT_OK and
 * err->message to "" so that a reused mrt_error never shows a stale
 * reason after a call that succeeded. */
mrt_status mrt_ok(mrt_error *err);

/* strerror(errnum) without strerror's shared static buffer: writes the
 * text into buf[0..len) and returns buf. (POSIX strerror_r; falls back to
 * "error N" for an unknown number.) */
const char *mrt_strerror(int errnum, char *buf, size_t len);

#endif /* MRT_STATUS_H */
