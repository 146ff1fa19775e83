/*
** fuzz_expect.h -- EXPECT(cond, fmt, ...): a promise of the API that the
** harness checks on every input. A broken one prints the condition and
** the details and aborts, so libFuzzer saves the input as a crash.
*/
#ifndef MRT_FUZZ_EXPECT_H
#define MRT_FUZZ_EXPECT_H

#include <stdio.h>
#include <stdlib.h>

#define EXPECT(cond, ...)                                      \
    do {                                                       \
        if (!(cond)) {                                         \
            fprintf(stderr, "%s: %s: ", __FILE__, #cond);      \
            fprintf(stderr, __VA_ARGS__);                      \
            fputc('\n', stderr);                               \
            abort();                                           \
        }                                                      \
    } while (0)

#endif
