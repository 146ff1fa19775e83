/*
 * add.c -- mrtarchive add (mrtarchive.h): files, folders and tar/zip members
 * in, encoded on worker threads, stored with their names and aliases.
 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "mrtarchive.h"
#include "mrt.h"
#include "mrt_json.h"
#include "mrt_sha256.h"

/* -------------------------------------------------------------- add */

add_state ing;

/* Whether the last SQLite error means the archive cannot take any more
 * writes this run: trying the next file would only fail again. */
static int archive_cannot_write(void) {
    int rc = sqlite3_errcode(db) & 0xff;
    return rc == SQLITE_FULL || rc == SQLITE_IOERR || rc == SQLITE_CORRUPT ||
           rc == SQLITE_CANTOPEN || rc == SQLITE_NOMEM || rc == SQLITE_READONLY;
}

/* Stops the add: what the open transaction stored is rolled back (and no
 * longer counted as stored); every later file is left for a re-run. */
static void add_stop(const char *why) {
    if (!ing.stopped)
        snprintf(ing.stopped_why, sizeof ing.stopped_why, "%s", why ? why : sqlite3_errmsg(db));
    ing.stopped = 1;
    if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    ing.in_tx = 0;
    ing.stored -= ing.batch_stored;
    ing.failed += ing.batch_stored;
    ing.batch_stored = 0;
}

static int tx_begin(void) {
    if (ing.stopped) return -1;
    if (ing.in_tx) return 0;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        add_stop(NULL);
        return -1;
    }
    ing.in_tx = 1;
    ing.batch = 0;
    ing.batch_stored = 0;
    ing.batch_start = time(NULL);
    return 0;
}

/* Commits the batch; a commit that fails (the disk full, an I/O error)
 * stops the add, and the batch's images count as not stored. */
int tx_commit(void) {
    if (!ing.in_tx) return 0;
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        add_stop(NULL);
        return -1;
    }
    ing.in_tx = 0;
    ing.batch_stored = 0;
    return 0;
}

static int tx_tick(void) {
    ing.batch++;
    if (ing.batch >= BATCH_FILES || time(NULL) - ing.batch_start >= BATCH_SECONDS) return tx_commit();
    return 0;
}

static void record_error(const char *name, const char *source, const char *why) {
    ing.failed++;
    if (ing.stopped) return; /* the one message is add_stop's */
    msg("%s: %s", source, why);
    if (tx_begin() != 0) return;
    sqlite3_stmt *del = prep("DELETE FROM ingest_errors WHERE name = ?1"); /* the latest only */
    if (!del) return;
    sqlite3_bind_text(del, 1, name ? name : source, -1, SQLITE_STATIC);
    sqlite3_step(del);
    sqlite3_finalize(del);
    sqlite3_stmt *st =
        prep("INSERT INTO ingest_errors(name, source, time, message) VALUES (?1, ?2, ?3, ?4)");
    if (!st) return;
    sqlite3_bind_text(st, 1, name ? name : source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
    sqlite3_bind_text(st, 4, why, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) db_fail("recording an error");
    sqlite3_finalize(st);
    tx_tick();
}

static void skip(const char *source, const char *why) {
    ing.skipped++;
    info_msg("skipped %s: %s", source, why);
}

static int is_image_ext(const char *name) {
    return ends_with(name, ".png") || ends_with(name, ".jpg") || ends_with(name, ".jpeg") ||
           ends_with(name, ".jpe") || ends_with(name, ".jfif");
}

/* 1: name, size and mtime match a stored image (nothing to do). */
static int unchanged(const char *name, long long size, long long mtime) {
    sqlite3_stmt *st = prep("SELECT 1 FROM names n JOIN images i USING (id) WHERE n.name = ?1 "
                            "AND i.sz = ?2 AND n.mtime IS ?3 "
                            "AND (?4 = 0 OR EXISTS (SELECT 1 FROM originals o WHERE o.id = i.id))");
    if (!st) return 0;
    sqlite3_bind_int(st, 4, opt.keep_original);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, size);
    if (mtime >= 0) sqlite3_bind_int64(st, 3, mtime);
    int r = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return r;
}

/* What add encodes with: the rate point --rate names (else the set's own
 * model), or with --bytes every rate point, the encoder choosing. Resolved
 * once, before the first file (resolve_encoder). */
static const mrt_model *encode_model;
static const mrt_model *const *budget_models;
static int budget_nmodels;

int resolve_encoder(void) {
    mrt_model_set *set = archive_models();
    if (!set) return -1;
    mrt_error err = {0};
    mrt_status st = MRT_OK;
    if (opt.bytes)
        st = mrt_model_set_rate_points(set, &budget_models, &budget_nmodels, &err);
    else if (opt.rate)
        st = mrt_model_set_rate(set, opt.rate, &encode_model, &err);
    else
        encode_model = mrt_model_set_model(set);
    if (st == MRT_OK && opt.bytes) {
        /* a budget too small for the smallest picture fits no photo: fatal
         * once rather than a failure per file */
        uint8_t px[16 * 16 * 3] = {0}, *bits = NULL;
        size_t nbits = 0;
        mrt_image probe = {16, 16, px};
        mrt_encode_options eo = {.threads = 1};
        st = mrt_encode_budget(budget_models, budget_nmodels, &probe, opt.bytes, &eo, &bits,
                               &nbits, NULL, &err);
        mrt_free(bits);
    }
    if (st != MRT_OK) {
        if (opt.bytes) msg("--bytes %zu: %s", opt.bytes, err.message);
        else msg("--rate %s: %s", opt.rate, err.message);
        return -1;
    }
    return 0;
}

void add_reset(void) {
    encode_model = NULL;
    budget_models = NULL;
    budget_nmodels = 0;
}

/* Encodes one file's bytes (PNG or JPEG) on `threads` codec threads. */
static int encode(const uint8_t *data, size_t len, int threads, uint8_t **out, size_t *out_len,
                  char *why, size_t whylen) {
    mrt_error err = {0};
    mrt_image img = {0};
    if (mrt_image_read_memory(data, len, &img, &err) != MRT_OK) {
        snprintf(why, whylen, "%s", err.message);
        return -1;
    }
    mrt_encode_options eo = {.threads = threads, .refine_steps = opt.refine};
    mrt_status st = opt.bytes ? mrt_encode_budget(budget_models, budget_nmodels, &img, opt.bytes,
                                                  &eo, out, out_len, NULL, &err)
                              : mrt_encode_with(encode_model, &img, &eo, out, out_len, &err);
    mrt_image_free(&img);
    if (st != MRT_OK) snprintf(why, whylen, "%s", err.message);
    return st == MRT_OK ? 0 : -1;
}

/* One file on its way in: read and checked by the main thread, encoded by a
 * worker (-j N > 1) or inline, stored by the main thread (the one writer). */
typedef struct job {
    char *name, *source;
    uint8_t *data, *bits;
    size_t len, nbits;
    long long mtime;
    const char *format;
    char hex[MRT_SHA256_HEX_CHARS + 1];
    int failed;
    char why[600];
    struct job *next;
} job;

static void job_free(job *j) {
    if (!j) return;
    free(j->name);
    free(j->source);
    free(j->data);
    free(j->bits);
    free(j);
}

static void store(job *j);

/* The worker pool (only for -j N > 1). */
static struct {
    int n, stopping, inflight;
    pthread_t *tids;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    job *todo, *todo_tail, *fin, *fin_tail;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

/* Appends j to the queue (head, tail); the caller holds pool.mu. */
static void job_append(job **head, job **tail, job *j) {
    j->next = NULL;
    if (*tail)
        (*tail)->next = j;
    else
        *head = j;
    *tail = j;
}

static void *worker(void *arg) {
    (void)arg;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (!pool.todo && !pool.stopping) pthread_cond_wait(&pool.work, &pool.mu);
        if (!pool.todo) break;
        job *j = pool.todo;
        pool.todo = j->next;
        if (!pool.todo) pool.todo_tail = NULL;
        pthread_mutex_unlock(&pool.mu);
        j->failed = encode(j->data, j->len, codec_threads(pool.n), &j->bits, &j->nbits, j->why,
                           sizeof j->why) != 0;
        pthread_mutex_lock(&pool.mu);
        job_append(&pool.fin, &pool.fin_tail, j);
        pthread_cond_signal(&pool.done);
    }
    pthread_mutex_unlock(&pool.mu);
    return NULL;
}

/* Stores finished jobs; waits for one when `wait` (and any is in flight). */
static void pool_drain(int wait) {
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (wait && !pool.fin && pool.inflight > 0) pthread_cond_wait(&pool.done, &pool.mu);
        job *j = pool.fin;
        if (!j) break;
        pool.fin = j->next;
        if (!pool.fin) pool.fin_tail = NULL;
        pool.inflight--;
        pthread_mutex_unlock(&pool.mu);
        store(j);
        pthread_mutex_lock(&pool.mu);
        wait = 0;
    }
    pthread_mutex_unlock(&pool.mu);
}

static int pool_start(int n) {
    pool.tids = calloc((size_t)n, sizeof *pool.tids);
    if (!pool.tids) return -1;
    for (pool.n = 0; pool.n < n; pool.n++)
        if (pthread_create(&pool.tids[pool.n], NULL, worker, NULL) != 0) break;
    return pool.n > 0 ? 0 : -1;
}

static void pool_finish(void) {
    if (!pool.n) return;
    while (pool.inflight > 0) pool_drain(1);
    pthread_mutex_lock(&pool.mu);
    pool.stopping = 1;
    pthread_cond_broadcast(&pool.work);
    pthread_mutex_unlock(&pool.mu);
    for (int i = 0; i < pool.n; i++) pthread_join(pool.tids[i], NULL);
    free(pool.tids);
    pool.n = 0;
}

/* SHA-256s of the jobs handed to workers and not stored yet. */
static int pending_has(const char *hex, const char **name);
static void pending_add(job *j);
static void pending_remove(job *j);

static void submit(job *j) {
    if (!pool.n) {
        j->failed = encode(j->data, j->len, codec_threads(1), &j->bits, &j->nbits, j->why,
                           sizeof j->why) != 0;
        store(j);
        return;
    }
    pending_add(j);
    pthread_mutex_lock(&pool.mu);
    int full = pool.inflight >= 2 * pool.n;
    pthread_mutex_unlock(&pool.mu);
    if (full) pool_drain(1);
    pthread_mutex_lock(&pool.mu);
    job_append(&pool.todo, &pool.todo_tail, j);
    pool.inflight++;
    pthread_cond_signal(&pool.work);
    pthread_mutex_unlock(&pool.mu);
    pool_drain(0);
}

static job **pending;
static size_t npending, cappending;

static int pending_has(const char *hex, const char **name) {
    for (size_t i = 0; i < npending; i++)
        if (strcmp(pending[i]->hex, hex) == 0) {
            *name = pending[i]->name;
            return 1;
        }
    return 0;
}

static void pending_add(job *j) {
    if (npending == cappending) {
        size_t nc = cappending ? cappending * 2 : 16;
        job **np = realloc(pending, nc * sizeof *np);
        if (!np) return; /* only dedupe of in-flight duplicates is lost */
        pending = np;
        cappending = nc;
    }
    pending[npending++] = j;
}

static void pending_remove(job *j) {
    for (size_t i = 0; i < npending; i++)
        if (pending[i] == j) {
            pending[i] = pending[--npending];
            return;
        }
}

/* --keep-original for an image stored earlier without its original. */
static void keep_original_of(sqlite3_int64 id, const char *name, const char *source,
                             const uint8_t *data, size_t len) {
    if (tx_begin() != 0) return;
    sqlite3_stmt *st = prep("INSERT OR IGNORE INTO originals(id, data) VALUES (?1, ?2)");
    if (!st) return;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_bind_blob64(st, 2, data, (sqlite3_uint64)len, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
        char why[600];
        snprintf(why, sizeof why, "cannot keep the original: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        record_error(name, source, why);
        return;
    }
    if (sqlite3_changes(db) > 0) info_msg("kept original of %s", name);
    sqlite3_finalize(st);
    tx_tick();
}

/* Stores one file's bytes under `name`. */
/* Removes one name (in the caller's transaction): an alias goes; an
 * image's own name passes to its first alias, if it has one, so that the
 * photo stays under its other names; else the image goes. 1: removed, 0:
 * no such name, -1: error (with a message). */
int remove_name(const char *name) {
    sqlite3_stmt *st = prep("DELETE FROM aliases WHERE name = ?1");
    if (!st) return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) goto fail;
    if (sqlite3_changes(db) > 0) return 1;
    sqlite3_int64 id = -1;
    if (!(st = prep("SELECT id FROM images WHERE name = ?1"))) return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) return rc == SQLITE_DONE ? 0 : (db_fail(name), -1);
    /* the first alias becomes the image's name, its mtime with it */
    if (!(st = prep("SELECT name, mtime FROM aliases WHERE image_id = ?1 ORDER BY name LIMIT 1")))
        return -1;
    sqlite3_bind_int64(st, 1, id);
    char *heir = NULL;
    sqlite3_int64 heir_mtime = 0;
    int heir_has_mtime = 0;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        heir = strdup((const char *)sqlite3_column_text(st, 0));
        heir_has_mtime = sqlite3_column_type(st, 1) != SQLITE_NULL;
        heir_mtime = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) goto fail;
    if (rc == SQLITE_ROW && !heir) {
        msg("out of memory");
        return -1;
    }
    if (heir) {
        sqlite3_stmt *del = prep("DELETE FROM aliases WHERE name = ?1");
        sqlite3_stmt *up = prep("UPDATE images SET name = ?1, mtime = ?2 WHERE id = ?3");
        int ok = del && up;
        if (ok) {
            sqlite3_bind_text(del, 1, heir, -1, SQLITE_STATIC);
            sqlite3_bind_text(up, 1, heir, -1, SQLITE_STATIC);
            if (heir_has_mtime) sqlite3_bind_int64(up, 2, heir_mtime);
            sqlite3_bind_int64(up, 3, id);
            ok = sqlite3_step(del) == SQLITE_DONE && sqlite3_step(up) == SQLITE_DONE;
        }
        sqlite3_finalize(del);
        sqlite3_finalize(up);
        free(heir);
        if (!ok) goto fail;
        return 1;
    }
    if (!(st = prep("DELETE FROM images WHERE id = ?1"))) return -1;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) goto fail;
    return 1;
fail:
    db_fail(name);
    return -1;
}

/* Keeps `name` as a further name of stored image `id` (same bytes): the
 * name is moved off whatever it showed before. */
static void add_alias(const char *name, const char *source, sqlite3_int64 id, const char *other,
                      long long mtime) {
    if (tx_begin() != 0 || exec("SAVEPOINT alias") != 0) return;
    int ok = remove_name(name) >= 0;
    sqlite3_stmt *ins = ok ? prep("INSERT INTO aliases(name, image_id, mtime) VALUES (?1, ?2, ?3)")
                           : NULL;
    sqlite3_stmt *err = ok ? prep("DELETE FROM ingest_errors WHERE name = ?1") : NULL;
    if (ins && err) {
        sqlite3_bind_text(ins, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 2, id);
        if (mtime >= 0) sqlite3_bind_int64(ins, 3, mtime);
        sqlite3_bind_text(err, 1, name, -1, SQLITE_STATIC);
        ok = sqlite3_step(ins) == SQLITE_DONE && sqlite3_step(err) == SQLITE_DONE;
    } else
        ok = 0;
    char why[300];
    snprintf(why, sizeof why, "cannot store as a further name of %s: %s", other, sqlite3_errmsg(db));
    sqlite3_finalize(ins);
    sqlite3_finalize(err);
    if (!ok) {
        if (archive_cannot_write()) {
            add_stop(why);
            ing.failed++;
            return;
        }
        exec("ROLLBACK TO alias");
        exec("RELEASE alias");
        record_error(name, source, why);
        return;
    }
    exec("RELEASE alias");
    ing.duplicates++;
    info_msg("duplicate %s: same content as %s, stored once under both names", source, other);
    tx_tick();
}

/* Duplicates of a file still being encoded: added as aliases once the
 * pool has stored it (deferred_add_all). */
typedef struct deferred {
    char *name, *source;
    uint8_t *data;
    size_t len;
    long long mtime;
    struct deferred *next;
} deferred;
static deferred *deferred_head, **deferred_tail = &deferred_head;

static void ingest(const char *name, const char *source, const uint8_t *data, size_t len,
                   long long mtime);

static void defer(const char *name, const char *source, const uint8_t *data, size_t len,
                  long long mtime) {
    deferred *d = calloc(1, sizeof *d);
    if (d) {
        d->name = strdup(name), d->source = strdup(source), d->data = malloc(len ? len : 1);
        d->len = len, d->mtime = mtime;
    }
    if (!d || !d->name || !d->source || !d->data) {
        if (d) free(d->name), free(d->source), free(d->data);
        free(d);
        record_error(name, source, "out of memory");
        return;
    }
    memcpy(d->data, data, len);
    *deferred_tail = d;
    deferred_tail = &d->next;
}

/* Ingests the deferred duplicates again, now that what they duplicate is
 * stored (or failed: then they are encoded themselves). */
void deferred_add_all(void) {
    while (deferred_head) {
        deferred *d = deferred_head;
        deferred_head = d->next;
        if (!deferred_head) deferred_tail = &deferred_head;
        ingest(d->name, d->source, d->data, d->len, d->mtime);
        free(d->name), free(d->source), free(d->data), free(d);
    }
}

static void ingest(const char *name, const char *source, const uint8_t *data, size_t len,
                   long long mtime) {
    if (ing.stopped) {
        ing.failed++;
        return;
    }
    const char *format = NULL;
    if (len >= 8 && memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0)
        format = "png";
    else if (len >= 3 && memcmp(data, "\xff\xd8\xff", 3) == 0)
        format = "jpeg";
    if (!format) {
        if (is_image_ext(name))
            record_error(name, source, len == 0 ? "empty file" : "not a PNG or JPEG (bad signature)");
        else
            skip(source, "not a PNG or JPEG");
        return;
    }
    uint8_t digest[MRT_SHA256_DIGEST_BYTES];
    char hex[MRT_SHA256_HEX_CHARS + 1];
    mrt_sha256_buffer(data, len, digest);
    mrt_sha256_hex(digest, hex);

    /* the same bytes stored already: under this name (unchanged), or
     * under another, which this name joins */
    sqlite3_stmt *st = prep("SELECT i.name, i.id, EXISTS (SELECT 1 FROM names n "
                            "WHERE n.name = ?2 AND n.id = i.id) "
                            "FROM image_sha256 h JOIN images i ON i.id = h.id "
                            "WHERE h.sha256 = ?1 LIMIT 1");
    if (!st) return;
    sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        char *other = strdup((const char *)sqlite3_column_text(st, 0));
        sqlite3_int64 id = sqlite3_column_int64(st, 1);
        int same_name = sqlite3_column_int(st, 2);
        sqlite3_finalize(st);
        if (!other) {
            record_error(name, source, "out of memory");
            return;
        }
        if (opt.keep_original) /* the same bytes: they are that image's original */
            keep_original_of(id, other, source, data, len);
        if (same_name) {
            ing.unchanged++;
            info_msg("unchanged %s", name);
        } else {
            add_alias(name, source, id, other, mtime);
        }
        free(other);
        return;
    }
    sqlite3_finalize(st);

    const char *other = NULL;
    if (pending_has(hex, &other)) {
        defer(name, source, data, len, mtime); /* joins `other` once that is stored */
        return;
    }
    job *j = calloc(1, sizeof *j);
    if (j) {
        j->name = strdup(name);
        j->source = strdup(source);
        j->data = malloc(len ? len : 1);
    }
    if (!j || !j->name || !j->source || !j->data) {
        record_error(name, source, "out of memory");
        job_free(j);
        return;
    }
    memcpy(j->data, data, len);
    j->len = len;
    j->mtime = mtime;
    j->format = format;
    memcpy(j->hex, hex, sizeof j->hex);
    submit(j);
}

/* The progress line's numbers (progress.c): every file counts once it has
 * an outcome. */
static void show_progress(void) {
    progress_update(ing.stored + ing.unchanged + ing.duplicates + ing.skipped + ing.failed,
                    ing.bytes_in, ing.bytes_stored);
}

/* Writes an encoded job into the archive (main thread only). */
static void store(job *j) {
    pending_remove(j);
    if (ing.stopped) { /* left for a re-run */
        ing.failed++;
        job_free(j);
        return;
    }
    const char *name = j->name, *source = j->source, *format = j->format, *hex = j->hex;
    long long mtime = j->mtime;
    size_t len = j->len;
    uint8_t *bits = j->bits;
    size_t nbits = j->nbits;
    char *why = j->why;
    if (j->failed) {
        record_error(name, source, why);
        job_free(j);
        return;
    }
    mrt_info hdr;
    mrt_error err;
    if (mrt_info_read(bits, nbits, &hdr, &err) != MRT_OK) {
        record_error(name, source, err.message);
        job_free(j);
        return;
    }
    char model[MRT_FINGERPRINT_HEX];
    mrt_fingerprint_hex(hdr.fingerprint, model);

    if (tx_begin() != 0 || exec("SAVEPOINT image") != 0) {
        job_free(j);
        return;
    }
    /* all of the image's rows, or none (the savepoint); the name leaves
     * what it showed before (its other names keep that) */
    int ok = remove_name(name) >= 0;
    sqlite3_stmt *ins =
        ok ? prep("INSERT INTO images(name, mtime, sz, format, width, height, model, rate_id, data) "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")
           : NULL;
    if (ins) {
        sqlite3_bind_text(ins, 1, name, -1, SQLITE_STATIC);
        if (mtime >= 0) sqlite3_bind_int64(ins, 2, mtime);
        sqlite3_bind_int64(ins, 3, (sqlite3_int64)len);
        sqlite3_bind_text(ins, 4, format, -1, SQLITE_STATIC);
        sqlite3_bind_int(ins, 5, hdr.width);
        sqlite3_bind_int(ins, 6, hdr.height);
        sqlite3_bind_text(ins, 7, model, -1, SQLITE_STATIC);
        sqlite3_bind_int(ins, 8, hdr.rate_id);
        sqlite3_bind_blob(ins, 9, bits, (int)nbits, SQLITE_STATIC);
        ok = sqlite3_step(ins) == SQLITE_DONE;
        if (!ok) snprintf(why, sizeof j->why, "cannot store: %s", sqlite3_errmsg(db));
        sqlite3_finalize(ins);
    } else {
        ok = 0;
        snprintf(why, sizeof j->why, "cannot store: %s", sqlite3_errmsg(db));
    }
    if (ok) {
        sqlite3_int64 id = sqlite3_last_insert_rowid(db);
        sqlite3_stmt *h = prep("INSERT INTO image_sha256(id, sha256) VALUES (?1, ?2)");
        sqlite3_stmt *e = prep("DELETE FROM ingest_errors WHERE name = ?1");
        if (h && e) {
            sqlite3_bind_int64(h, 1, id);
            sqlite3_bind_text(h, 2, hex, -1, SQLITE_STATIC);
            sqlite3_bind_text(e, 1, name, -1, SQLITE_STATIC);
            ok = sqlite3_step(h) == SQLITE_DONE && sqlite3_step(e) == SQLITE_DONE;
        } else
            ok = 0;
        if (ok && opt.keep_original) {
            sqlite3_stmt *o = prep("INSERT INTO originals(id, data) VALUES (?1, ?2)");
            if (o) {
                sqlite3_bind_int64(o, 1, id);
                /* SQLITE_TOOBIG for an original over SQLite's blob limit */
                ok = sqlite3_bind_blob64(o, 2, j->data, (sqlite3_uint64)len, SQLITE_STATIC) ==
                         SQLITE_OK &&
                     sqlite3_step(o) == SQLITE_DONE;
                sqlite3_finalize(o);
            } else
                ok = 0;
        }
        if (!ok) snprintf(why, sizeof j->why, "cannot store: %s", sqlite3_errmsg(db));
        sqlite3_finalize(h);
        sqlite3_finalize(e);
    }
    if (!ok) {
        if (archive_cannot_write()) {
            add_stop(why);
            ing.failed++;
            job_free(j);
            return;
        }
        exec("ROLLBACK TO image");
        exec("RELEASE image");
        record_error(name, source, why);
        job_free(j);
        return;
    }
    exec("RELEASE image");
    ing.stored++;
    ing.batch_stored++;
    ing.bytes_stored += (long long)nbits;
    info_msg("stored %s (%zu bytes, %dx%d, %.4f bpp)", name, nbits, hdr.width, hdr.height, hdr.bpp);
    job_free(j);
    tx_tick();
    show_progress();
}

/* What the progress line counts before the add starts: the files under
 * path and their bytes (an archive's members are unknown until read: it
 * counts by its size and makes the file total unknown). */
static int is_archive_name(const char *p);
static void count_tree(const char *path, long *files, long long *bytes, bool *archives) {
    struct stat sb;
    if (lstat(path, &sb) != 0 || S_ISLNK(sb.st_mode)) return;
    if (S_ISREG(sb.st_mode)) {
        *bytes += sb.st_size;
        if (is_archive_name(path)) *archives = true;
        else ++*files;
        return;
    }
    if (!S_ISDIR(sb.st_mode)) return;
    DIR *d = opendir(path);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        size_t l = strlen(path) + strlen(de->d_name) + 2;
        char *p = malloc(l);
        if (!p) break;
        snprintf(p, l, "%s/%s", path, de->d_name);
        /* only plain files count inside a tree: add reads archives given as
         * arguments, not ones found in folders */
        struct stat cb;
        if (lstat(p, &cb) != 0) {
            /* gone or unreadable: add reports it */
        } else if (S_ISREG(cb.st_mode)) {
            *bytes += cb.st_size;
            ++*files;
        } else if (S_ISDIR(cb.st_mode)) {
            count_tree(p, files, bytes, archives);
        }
        free(p);
    }
    closedir(d);
}

static void add_file(const char *path, const char *name_path, const struct stat *sb) {
    if (ing.stopped) return; /* the archive takes no more this run */
    ing.bytes_in += sb->st_size;
    const char *why = NULL;
    char *name = make_name(name_path, &why);
    if (!name) {
        record_error(NULL, path, why);
        return;
    }
    if (unchanged(name, (long long)sb->st_size, (long long)sb->st_mtime)) {
        ing.unchanged++;
        info_msg("unchanged %s", name);
        free(name);
        return;
    }
    if (!is_image_ext(name) && sb->st_size == 0) {
        skip(path, "not a PNG or JPEG (empty)");
        free(name);
        return;
    }
    /* O_NOFOLLOW: the path was checked not to be a link, and must not
     * become one before it is opened. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    uint8_t *data = NULL;
    size_t len = 0;
    mrt_error e;
    if (fd < 0 || mrt_read_fd(fd, NULL, MRT_MAX_FILE_BYTES, &data, &len, &e) != MRT_OK) {
        char buf[600];
        snprintf(buf, sizeof buf, "cannot read: %s", fd < 0 ? strerror(errno) : e.message);
        record_error(name, path, buf);
    } else
        ingest(name, path, data, len, (long long)sb->st_mtime);
    if (fd >= 0) close(fd);
    free(data);
    free(name);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_tree(const char *path, const char *name_path) {
    if (ing.stopped) return; /* the archive takes no more this run */
    struct stat sb;
    if (lstat(path, &sb) != 0) {
        char buf[300];
        snprintf(buf, sizeof buf, "%s", strerror(errno));
        record_error(NULL, path, buf);
        return;
    }
    if (S_ISLNK(sb.st_mode)) {
        skip(path, "a symbolic link (not followed)");
        return;
    }
    if (S_ISREG(sb.st_mode)) {
        add_file(path, name_path, &sb);
        show_progress();
        return;
    }
    if (!S_ISDIR(sb.st_mode)) {
        skip(path, "not a regular file");
        return;
    }
    DIR *d = opendir(path);
    if (!d) {
        char buf[300];
        snprintf(buf, sizeof buf, "cannot open folder: %s", strerror(errno));
        record_error(NULL, path, buf);
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn) break;
            names = nn;
        }
        names[n] = strdup(de->d_name);
        if (names[n]) n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        size_t l1 = strlen(path), l2 = strlen(name_path), l3 = strlen(names[i]);
        char *p = malloc(l1 + l3 + 2), *q = malloc(l2 + l3 + 2);
        if (p && q) {
            sprintf(p, "%s%s%s", path, (l1 && path[l1 - 1] == '/') ? "" : "/", names[i]);
            sprintf(q, "%s%s%s", name_path, l2 ? "/" : "", names[i]);
            add_tree(p, q);
        }
        free(p);
        free(q);
        free(names[i]);
    }
    free(names);
}

static int is_archive_name(const char *p) {
    static const char *const ext[] = {".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2",
                                      ".tbz2", ".tar.zst", ".tzst", ".zip", ".7z", ".cpio"};
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (ends_with(p, ext[i])) return 1;
    return 0;
}

void add_archive(const char *path) {
    if (ing.stopped) return; /* the archive takes no more this run */
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_all(a);
    if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
        record_error(NULL, path, archive_error_string(a) ? archive_error_string(a) : "cannot open");
        archive_read_free(a);
        return;
    }
    struct archive_entry *e;
    int r;
    /* progress by the archive file's bytes read, which its size counted */
    long long bytes_before = ing.bytes_in;
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
        ing.bytes_in = bytes_before + archive_filter_bytes(a, -1);
        show_progress();
        const char *ep = archive_entry_pathname(e);
        if (!ep) ep = "";
        size_t sl = strlen(path) + strlen(ep) + 2;
        char *source = malloc(sl);
        if (!source) break;
        snprintf(source, sl, "%s:%s", path, ep);
        if (archive_entry_filetype(e) == AE_IFDIR) {
            free(source);
            continue;
        }
        if (archive_entry_filetype(e) != AE_IFREG) {
            skip(source, "not a regular file");
            free(source);
            continue;
        }
        const char *why = NULL;
        char *name = make_name(ep, &why);
        if (!name) {
            record_error(NULL, source, why);
            free(source);
            continue;
        }
        long long mtime = archive_entry_mtime_is_set(e) ? (long long)archive_entry_mtime(e) : -1;
        long long size = archive_entry_size_is_set(e) ? (long long)archive_entry_size(e) : -1;
        if (size >= 0 && unchanged(name, size, mtime)) {
            ing.unchanged++;
            info_msg("unchanged %s", name);
        } else if (size > MAX_INPUT_BYTES) {
            record_error(name, source, "over 1 GiB");
        } else {
            /* The header's size is only a claim: a hostile member can declare
             * a gigabyte in a few bytes of tarball, so at most 1 MiB is
             * allocated up front and the buffer grows as data arrives (+1:
             * the read that finds the end needs no growth). */
            size_t cap = size >= 0 && size < (1 << 20) ? (size_t)size + 1 : (size_t)1 << 20,
                   n = 0;
            uint8_t *buf = malloc(cap);
            int bad = !buf;
            while (!bad) {
                if (n == cap) {
                    uint8_t *nb = cap < (size_t)MAX_INPUT_BYTES ? realloc(buf, cap * 2) : NULL;
                    if (!nb) {
                        bad = 1;
                        break;
                    }
                    buf = nb;
                    cap *= 2;
                }
                la_ssize_t got = archive_read_data(a, buf + n, cap - n);
                if (got < 0) {
                    bad = 2;
                    break;
                }
                if (got == 0) break;
                n += (size_t)got;
            }
            if (bad)
                record_error(name, source,
                             bad == 2 && archive_error_string(a) ? archive_error_string(a)
                                                                 : "cannot read entry");
            else
                ingest(name, source, buf, n, mtime);
            free(buf);
            if (bad == 2) {
                free(name);
                free(source);
                break;
            }
        }
        free(name);
        free(source);
    }
    if (r != ARCHIVE_EOF && r != ARCHIVE_OK && r != ARCHIVE_WARN)
        record_error(NULL, path, archive_error_string(a) ? archive_error_string(a) : "read error");
    struct stat sb;
    ing.bytes_in = bytes_before + (stat(path, &sb) == 0 ? sb.st_size : archive_filter_bytes(a, -1));
    show_progress();
    archive_read_free(a);
}

/* One path to add: an archive file is read member by member (names: the
 * members' paths); a file or folder is named by its path relative to its
 * parent (`add /x/photos` stores photos/...), or by the path itself when
 * `as_given` (--files-from: `photos/2020/a.jpg` stores photos/2020/a.jpg). */
static void add_argument(const char *path, int as_given) {
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && is_archive_name(path)) {
        add_archive(path);
        return;
    }
    char *copy = strdup(path);
    if (!copy) {
        record_error(NULL, path, "out of memory");
        return;
    }
    size_t l = strlen(copy);
    while (l > 1 && copy[l - 1] == '/') copy[--l] = 0;
    const char *base = copy;
    if (!as_given) {
        const char *slash = strrchr(copy, '/');
        if (slash) base = slash + 1;
        if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0 || strcmp(base, "/") == 0 || !*base)
            base = "";
    }
    add_tree(path, base);
    free(copy);
}

/* add --files-from LIST ('-': standard input): the paths LIST names, one
 * per line, or separated by NUL bytes when it holds one (`find -print0`,
 * whose names may hold newlines), each added under its own path as its
 * name, as tar -T does. The list is read as it comes, never whole: it may
 * name millions of files. 0, or -1 when the list cannot be read. */
static int add_files_from(const char *list) {
    int from_stdin = strcmp(list, "-") == 0;
    FILE *f = from_stdin ? stdin : fopen(list, "rb");
    if (!f) {
        msg("--files-from %s: %s", list, strerror(errno));
        return -1;
    }
    enum { PATH_BYTES = 4096 };
    static char head[1 << 16];
    char path[PATH_BYTES + 1];
    size_t nhead = fread(head, 1, sizeof head, f), at = 0, plen = 0;
    int sep = memchr(head, 0, nhead) ? 0 : '\n';
    const char *bad_entry = NULL;
    long entry = 0;
    for (;;) {
        int c = at < nhead ? (unsigned char)head[at++] : getc(f);
        if (c != EOF && c != sep) {
            if (c == 0) bad_entry = "a NUL byte in a list of lines";
            else if (plen == PATH_BYTES) bad_entry = "a path over 4096 bytes";
            else path[plen++] = (char)c;
            continue;
        }
        entry++;
        path[plen] = 0;
        if (bad_entry) {
            char where[64];
            snprintf(where, sizeof where, "--files-from entry %ld", entry);
            record_error(NULL, where, bad_entry);
        } else if (plen) {
            add_argument(path, 1);
        }
        plen = 0, bad_entry = NULL;
        if (c == EOF) break;
    }
    int bad = ferror(f);
    if (bad) msg("--files-from %s: %s", list, errno ? strerror(errno) : "read error");
    if (!from_stdin) fclose(f);
    return bad ? -1 : 0;
}

int cmd_add(int argc, char **argv) {
    if (begin_command("add", argc >= 1 || opt.files_from, ARCHIVE_CREATE) != 0)
        return EXIT_FATAL;
    /* No model, or a --rate or --bytes it cannot give, is fatal once, not a
     * failure per file. */
    if (resolve_encoder() != 0) return EXIT_FATAL;
    if (opt.threads > 1 && pool_start(opt.threads) != 0) {
        msg("cannot start %d threads", opt.threads);
        return EXIT_FATAL;
    }
    if (progress_wanted()) {
        long files = 0;
        long long bytes = 0;
        bool archives = false;
        for (int i = 0; i < argc; i++) count_tree(argv[i], &files, &bytes, &archives);
        /* a --files-from list is read once, as it comes: no total */
        progress_begin("add", "files", "stored", archives || opt.files_from ? -1 : files,
                       opt.files_from ? 0 : bytes);
    }
    for (int i = 0; i < argc; i++) add_argument(argv[i], 0);
    if (opt.files_from && add_files_from(opt.files_from) != 0) {
        pool_finish();
        deferred_add_all();
        tx_commit();
        progress_end();
        return EXIT_FATAL;
    }
    pool_finish();
    deferred_add_all(); /* after the pool: what they duplicate is stored */
    tx_commit();
    progress_end();
    if (ing.stopped)
        msg("%s: the add stopped: %s; %ld files stored this run, the rest not (a re-run after "
            "that is fixed adds them)", opt.archive, ing.stopped_why, ing.stored);
    if (opt.json) {
        mrt_json w;
        json_line_begin(&w);
        mrt_json_int(&w, "stored", ing.stored);
        mrt_json_int(&w, "unchanged", ing.unchanged);
        mrt_json_int(&w, "duplicates", ing.duplicates);
        mrt_json_int(&w, "skipped", ing.skipped);
        mrt_json_int(&w, "failed", ing.failed);
        json_line_end(&w);
    } else
        info_msg("%ld stored, %ld unchanged, %ld duplicates, %ld skipped, %ld failed", ing.stored,
                 ing.unchanged, ing.duplicates, ing.skipped, ing.failed);
    return ing.stopped ? EXIT_FATAL : ing.failed ? EXIT_SOME : 0;
}
