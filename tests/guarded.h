/*
 * guarded.h -- arrays that end exactly where an unreadable page begins, so a
 * kernel that reads even one element past the end crashes the test at once
 * (ASan cannot see such reads inside BLIS, which is not instrumented).
 * A SIGSEGV handler names the case that was running.
 */
#ifndef MRT_GUARDED_H
#define MRT_GUARDED_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* n floats that end exactly where an inaccessible page begins. */
typedef struct {
    void *map;
    size_t len;
    float *p;
} guarded;

static guarded guarded_copy(const float *src, size_t n) {
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), bytes = n * sizeof(float);
    size_t len = (bytes + pg - 1) / pg * pg + pg;
    guarded g = {NULL, len, NULL};
    g.map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g.map == MAP_FAILED) {
        fprintf(stderr, "mmap failed\n");
        exit(2);
    }
    mprotect((char *)g.map + len - pg, pg, PROT_NONE);
    g.p = (float *)((char *)g.map + len - pg - bytes);
    memcpy(g.p, src, bytes);
    return g;
}

/* What is running, for the crash message; set it before each case. */
static char guard_case[160];

static void guard_segv(int sig) {
    (void)sig;
    static const char msg[] = "FAIL guarded buffers: segfault (a read past the end of an array) in ";
    ssize_t w = write(2, msg, sizeof msg - 1);
    w = write(2, guard_case, strlen(guard_case));
    w = write(2, "\n", 1);
    (void)w;
    _exit(1);
}

static void guarded_free(guarded g) { munmap(g.map, g.len); }

#endif /* MRT_GUARDED_H */
