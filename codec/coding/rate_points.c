/*
 * rate_points.c -- the rate points beside a model: every mrt-NAME.gguf in
 * one directory (the shipped models/ folder, an install's datadir), listed
 * in name order, and the one among them whose fingerprint a bitstream
 * names (mrt.h, "rate points").
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

static int cmp_strings(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void mrt_rate_point_files_free(char **paths, int count) {
    for (int i = 0; i < count; i++) free(paths[i]);
    free(paths);
}

mrt_status mrt_rate_point_files(const char *dir, char ***paths, int *count, mrt_error *err) {
    if (!dir || !paths || !count)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_rate_point_files: NULL argument");
    *paths = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) return mrt_fail(err, MRT_ERR_IO, "%s: listing the rate points: %s", dir, strerror(errno));
    char **names = NULL;
    int n = 0, cap = 0;
    mrt_status st = MRT_OK;
    for (struct dirent *de; (de = readdir(d));) {
        size_t len = strlen(de->d_name);
        if (len <= 9 || strncmp(de->d_name, "mrt-", 4) || strcmp(de->d_name + len - 5, ".gguf"))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            char **more = realloc(names, sizeof *names * (size_t)cap);
            if (!more) {
                st = MRT_ERR_NOMEM;
                break;
            }
            names = more;
        }
        size_t plen = strlen(dir) + len + 2;
        if (!(names[n] = malloc(plen))) {
            st = MRT_ERR_NOMEM;
            break;
        }
        snprintf(names[n++], plen, "%s/%s", dir, de->d_name);
    }
    closedir(d);
    if (st != MRT_OK) {
        mrt_rate_point_files_free(names, n);
        return mrt_fail(err, st, "out of memory listing the rate points in %s", dir);
    }
    if (n) qsort(names, (size_t)n, sizeof *names, cmp_strings);
    *paths = names;
    *count = n;
    return mrt_ok(err);
}

mrt_status mrt_rate_point_load(const char *dir, const uint8_t *fingerprint, mrt_model **out,
                               mrt_error *err) {
    if (!dir || !fingerprint || !out)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_rate_point_load: NULL argument");
    *out = NULL;
    char **paths = NULL;
    int n = 0;
    mrt_status st = mrt_rate_point_files(dir, &paths, &n, err);
    if (st != MRT_OK) return st;
    for (int i = 0; i < n && !*out; i++) {
        mrt_model *m = NULL;
        if (mrt_model_load(paths[i], &m, err) != MRT_OK) continue; /* not a model: next */
        if (memcmp(mrt_model_fingerprint(m), fingerprint, MRT_FINGERPRINT_BYTES) == 0) *out = m;
        else mrt_model_free(m);
    }
    mrt_rate_point_files_free(paths, n);
    if (*out) return mrt_ok(err);
    char hex[MRT_FINGERPRINT_HEX];
    mrt_fingerprint_hex(fingerprint, hex);
    return mrt_fail(err, MRT_ERR_MODEL_MISMATCH, "no rate point in %s has fingerprint %s", dir,
                    hex);
}
