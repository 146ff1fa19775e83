/*
 * threads.c -- how many threads a call uses.
 *
 * The runtime never changes process-wide thread settings (OpenMP's or
 * BLIS's): each call carries its own count in an mrt_rt, and every parallel
 * region is opened with num_threads(rt->threads).
 */
#include <stdlib.h>
#include <omp.h>

#include "runtime.h"

int mrt_default_threads(void) {
    const char *env = getenv("MRT_THREADS");
    if (env && *env) {
        char *end = NULL;
        long v = strtol(env, &end, 10);
        if (end && *end == '\0' && v >= 1 && v <= 1024) return (int)v;
    }
    int n = omp_get_num_procs();
    return n >= 1 ? n : 1;
}

mrt_rt mrt_rt_make(int threads) {
    mrt_rt rt;
    rt.threads = threads >= 1 ? threads : mrt_default_threads();
    return rt;
}
