/*
** fuzz_expect.h -- EXPECT(cond, fmt, ...): a promise of the API that the
** harness checks on every input. A broken one prints the condition and
** the details and aborts, so libFuzzer saves the input as a crash.
*/
#ifndef MRT_FUZZ_EXPECT_H
#define MRT_FUZZ_EXPECT_H

#include <stdio.h>
#include <stdlib.h>

#include "mrt.h"

#define EXPECT(cond, ...)                                      \
    do {                                                       \
        if (!(cond)) {                                         \
            fprintf(stderr, "%s: %s: ", __FILE__, #cond);      \
            fprintf(stderr, __VA_ARGS__);                      \
            fputc('\n', stderr);                               \
            abort();                                           \
        }                                                      \
    } while (0)

/* The contract of every libmrt call that fills an image: a failure leaves
 * the image empty and a message whose status is the one returned. */
static inline void expect_clean_failure(mrt_status st, const mrt_image *img, const mrt_error *err) {
    EXPECT(img->rgb == NULL && img->width == 0 && img->height == 0, "status %s",
           mrt_status_name(st));
    EXPECT(err->status == st && err->message[0] != '\0', "status %s, err.status %s",
           mrt_status_name(st), mrt_status_name(err->status));
}

#endif
