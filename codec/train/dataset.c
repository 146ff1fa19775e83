/*
 * dataset.c -- loading training images, deterministic crops, prefetch.
 */
#define _DEFAULT_SOURCE /* DT_DIR and friends */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "dataset.h"
#include "runtime.h"
#include "status.h"

typedef struct {
    char **paths;
    int count, cap;
} path_list;

static bool is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

static int add_path(path_list *l, const char *path) {
    if (l->count == l->cap) {
        int cap = l->cap ? 2 * l->cap : 256;
        char **p = realloc(l->paths, sizeof(char *) * cap);
        if (!p) return -1;
        l->paths = p;
        l->cap = cap;
    }
    if (!(l->paths[l->count] = strdup(path))) return -1;
    l->count++;
    return 0;
}

/* Recursive walk, depth-limited so a symlink loop cannot hang it. Returns
 * 0, -1 when out of memory, -2 when `dir` cannot be read (a subfolder that
 * cannot be read is skipped). */
static int walk(path_list *l, const char *dir, int depth) {
    if (depth > 32) return 0;
    DIR *d = opendir(dir);
    if (!d) return -2;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *path = malloc(n);
        if (!path) {
            rc = -1;
            break;
        }
        snprintf(path, n, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) == 0) {
            if (S_ISDIR(st.st_mode))
                rc = walk(l, path, depth + 1) == -1 ? -1 : 0;
            else if (S_ISREG(st.st_mode) && is_image_name(e->d_name))
                rc = add_path(l, path);
        }
        free(path);
    }
    closedir(d);
    return rc;
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

mrt_status mrt_dataset_load(mrt_dataset *ds, const char *const *dirs, int ndirs, int min_side,
                            mrt_error *err) {
    memset(ds, 0, sizeof *ds);
    path_list l = {0};
    for (int i = 0; i < ndirs; i++) {
        struct stat st;
        if (stat(dirs[i], &st) != 0)
            return mrt_fail(err, MRT_ERR_IO, "%s: no such file or folder", dirs[i]);
        if (S_ISDIR(st.st_mode) ? walk(&l, dirs[i], 0) != 0 : add_path(&l, dirs[i]) != 0) {
            for (int k = 0; k < l.count; k++) free(l.paths[k]);
            free(l.paths);
            return mrt_fail(err, MRT_ERR_IO, "%s: cannot list it", dirs[i]);
        }
    }
    /* sorted, so the same folders give the same dataset (and batches) */
    if (l.count) qsort(l.paths, l.count, sizeof(char *), compare_strings);
    ds->images = calloc(l.count ? l.count : 1, sizeof(mrt_image));
    ds->names = calloc(l.count ? l.count : 1, sizeof(char *));
    if (!ds->images || !ds->names) {
        for (int k = 0; k < l.count; k++) free(l.paths[k]);
        free(l.paths);
        mrt_dataset_free(ds);
        return mrt_fail(err, MRT_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < l.count; i++) {
        mrt_image img;
        mrt_error e;
        if (mrt_image_read_file(l.paths[i], &img, &e) != MRT_OK) {
            ds->skipped_bad++;
            free(l.paths[i]);
            continue;
        }
        if (img.width < min_side || img.height < min_side) {
            ds->skipped_small++;
            mrt_image_free(&img);
            free(l.paths[i]);
            continue;
        }
        ds->pixels += (long long)img.width * img.height;
        ds->images[ds->count] = img;
        ds->names[ds->count] = l.paths[i];
        ds->count++;
    }
    free(l.paths);
    if (ds->count == 0) {
        mrt_dataset_free(ds);
        return mrt_fail(err, MRT_ERR_IO, "no usable PNG/JPEG image (at least %dx%d) under the "
                        "given folders", min_side, min_side);
    }
    return MRT_OK;
}

void mrt_dataset_free(mrt_dataset *ds) {
    for (int i = 0; i < ds->count; i++) {
        mrt_image_free(&ds->images[i]);
        free(ds->names[i]);
    }
    free(ds->images);
    free(ds->names);
    memset(ds, 0, sizeof *ds);
}

void mrt_dataset_batch(const mrt_dataset *ds, uint64_t seed, uint64_t index, int B, int S,
                       float *out) {
    for (int b = 0; b < B; b++) {
        mrt_rng rng;
        mrt_rng_seed(&rng, seed ^ (0x9e3779b97f4a7c15ULL * (index * (uint64_t)B + b + 1)));
        const mrt_image *img = &ds->images[mrt_rng_below(&rng, (uint32_t)ds->count)];
        int x0 = (int)mrt_rng_below(&rng, (uint32_t)(img->width - S + 1));
        int y0 = (int)mrt_rng_below(&rng, (uint32_t)(img->height - S + 1));
        bool flip = mrt_rng_below(&rng, 2);
        float *o = out + (size_t)b * 3 * S * S;
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                int sx = flip ? x0 + S - 1 - x : x0 + x;
                const uint8_t *px = img->rgb + ((size_t)(y0 + y) * img->width + sx) * 3;
                for (int c = 0; c < 3; c++)
                    o[((size_t)c * S + y) * S + x] = px[c] * (2.0f / 255.0f) - 1.0f;
            }
    }
}

/* ------------------------------------------------------------ prefetch */

static void *producer(void *arg) {
    mrt_prefetch *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        uint64_t i = p->next;
        int slot = (int)(i % 2);
        if (p->ready[slot] != 0) {
            pthread_cond_wait(&p->cond, &p->lock);
            continue;
        }
        pthread_mutex_unlock(&p->lock);
        mrt_dataset_batch(p->ds, p->seed, i, p->B, p->S, p->buf[slot]);
        pthread_mutex_lock(&p->lock);
        p->ready[slot] = i + 1;
        p->next = i + 1;
        pthread_cond_broadcast(&p->cond);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int mrt_prefetch_start(mrt_prefetch *p, const mrt_dataset *ds, uint64_t seed, uint64_t first,
                       int B, int S) {
    memset(p, 0, sizeof *p);
    p->ds = ds, p->seed = seed, p->next = first, p->B = B, p->S = S;
    size_t n = (size_t)B * 3 * S * S;
    p->buf[0] = malloc(sizeof(float) * n);
    p->buf[1] = malloc(sizeof(float) * n);
    if (!p->buf[0] || !p->buf[1]) {
        free(p->buf[0]), free(p->buf[1]);
        return -1;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    if (pthread_create(&p->thread, NULL, producer, p) != 0) {
        free(p->buf[0]), free(p->buf[1]);
        return -1;
    }
    return 0;
}

const float *mrt_prefetch_get(mrt_prefetch *p, uint64_t index) {
    int slot = (int)(index % 2);
    pthread_mutex_lock(&p->lock);
    /* the other slot held the previous batch: the caller is done with it */
    if (p->ready[1 - slot] != 0 && p->ready[1 - slot] != index + 2) {
        p->ready[1 - slot] = 0;
        pthread_cond_broadcast(&p->cond);
    }
    while (p->ready[slot] != index + 1) pthread_cond_wait(&p->cond, &p->lock);
    pthread_mutex_unlock(&p->lock);
    return p->buf[slot];
}

void mrt_prefetch_stop(mrt_prefetch *p) {
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p->buf[0]);
    free(p->buf[1]);
}
