/*
 * status.c -- status names, mrt_free, and the error helpers of status.h.
 */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *mrt_status_name(mrt_status status) {
    /* No default: the compiler's -Wswitch then flags a status added to
     * mrt.h but not here. */
    switch (status) {
    case MRT_OK: return "MRT_OK";
    case MRT_ERR_ARGUMENT: return "MRT_ERR_ARGUMENT";
    case MRT_ERR_NOMEM: return "MRT_ERR_NOMEM";
    case MRT_ERR_IO: return "MRT_ERR_IO";
    case MRT_ERR_IMAGE: return "MRT_ERR_IMAGE";
    case MRT_ERR_TOO_BIG: return "MRT_ERR_TOO_BIG";
    case MRT_ERR_CORRUPT: return "MRT_ERR_CORRUPT";
    case MRT_ERR_VERSION: return "MRT_ERR_VERSION";
    case MRT_ERR_MODEL: return "MRT_ERR_MODEL";
    case MRT_ERR_MODEL_MISMATCH: return "MRT_ERR_MODEL_MISMATCH";
    }
    return "MRT_ERR_UNKNOWN";
}

void mrt_free(void *p) { free(p); }

mrt_status mrt_fail(mrt_error *err, mrt_status status, const char *fmt, ...) {
    if (!err) return status;
    char buf[sizeof err->message];
    buf[0] = '\0'; /* vsnprintf may leave it untouched on an encoding error */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    memcpy(err->message, buf, sizeof buf);
    err->status = status;
    return status;
}

mrt_status mrt_ok(mrt_error *err) {
    if (err) {
        err->status = MRT_OK;
        err->message[0] = '\0';
    }
    return MRT_OK;
}

const char *mrt_strerror(int errnum, char *buf, size_t len) {
    if (!buf || len == 0) return "";
    /* _POSIX_C_SOURCE without _GNU_SOURCE gives the XSI strerror_r that
     * returns an int and fills buf. */
    if (strerror_r(errnum, buf, len) != 0) snprintf(buf, len, "error %d", errnum);
    return buf;
}

void mrt_fingerprint_hex(const uint8_t *fingerprint, char out[MRT_FINGERPRINT_HEX]) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < MRT_FINGERPRINT_BYTES; i++) {
        out[2 * i] = digits[fingerprint[i] >> 4];
        out[2 * i + 1] = digits[fingerprint[i] & 15];
    }
    out[2 * MRT_FINGERPRINT_BYTES] = '\0';
}
