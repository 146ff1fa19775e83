/*
 * dataset.h -- training images and the random crops made from them.
 *
 * Every PNG/JPEG under the given folders (recursively, in sorted order) is
 * decoded once into memory. A batch is a pure function of (seed, batch
 * number): each crop's image, position and flip come from an RNG seeded
 * with both, so a resumed run sees exactly the batches an uninterrupted
 * run would have. A background thread prepares the next batch while the
 * current one trains.
 */
#ifndef MRT_DATASET_H
#define MRT_DATASET_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "mrt_train.h" /* mrt_dataset */

/* Fills out (B, 3, S, S) with crops in [-1, 1] for batch `index`. */
void mrt_dataset_batch(const mrt_dataset *ds, uint64_t seed, uint64_t index, int B, int S,
                       float *out);

/* Double-buffered prefetch of consecutive batches on a background thread. */
typedef struct mrt_prefetch {
    const mrt_dataset *ds;
    uint64_t seed, next; /* next batch index to produce */
    int B, S;
    float *buf[2];
    uint64_t ready[2];  /* batch index + 1 held in each buffer, 0 = empty */
    bool stop;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
} mrt_prefetch;

int mrt_prefetch_start(mrt_prefetch *p, const mrt_dataset *ds, uint64_t seed, uint64_t first,
                       int B, int S);
/* Blocks until batch `index` (consecutive from `first`) is ready; the
 * pointer stays valid until the next call. */
const float *mrt_prefetch_get(mrt_prefetch *p, uint64_t index);
void mrt_prefetch_stop(mrt_prefetch *p);

#endif /* MRT_DATASET_H */
