/*
 * model_set.c -- a model and the rate points beside it (mrt.h, "model
 * sets"): where the default model is, the process-wide cache that loads
 * each weights file once, the rate points of a folder by name, rate id or
 * 'low'/'medium'/'high', and the one a bitstream's fingerprint names.
 * The `mrt` command, the SQL extension and mrtarchive all go through here,
 * so a name or a stream means the same model in each of them.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "status.h"

/* From coding's CMakeLists (fallbacks for a bare build). */
#ifndef MRT_SOURCE_MODEL_DIR
#define MRT_SOURCE_MODEL_DIR "models"
#endif
#ifndef MRT_INSTALL_MODEL_DIR
#define MRT_INSTALL_MODEL_DIR "/usr/local/share/mrt/models"
#endif

/* ------------------------------------------------- the default model */

static int is_regular_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

char *mrt_default_model_path(const char *dir, const char *dir_label, const char **source) {
    const char *unused;
    if (!source) source = &unused;
    *source = NULL;
    const char *env = getenv("MRT_MODEL");
    if (env && *env) { /* as given, even if missing: loading then names it */
        *source = "MRT_MODEL";
        return strdup(env);
    }
    const struct {
        const char *dir, *label;
    } places[] = {
        {dir, dir_label ? dir_label : "given folder"},
        {MRT_INSTALL_MODEL_DIR, "install path"},
        {MRT_SOURCE_MODEL_DIR, "source tree"},
    };
    for (size_t i = 0; i < sizeof places / sizeof places[0]; i++) {
        if (!places[i].dir) continue;
        size_t n = strlen(places[i].dir) + sizeof "/default.gguf";
        char *path = malloc(n);
        if (!path) return NULL;
        snprintf(path, n, "%s/default.gguf", places[i].dir);
        if (is_regular_file(path)) {
            *source = places[i].label;
            return path;
        }
        free(path);
    }
    return NULL;
}

/* ------------------------------------------- the rate points' files */

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
        /* NAME.thumbs.gguf: a model's thumbnail heads (thumbnail.h), not a rate point */
        if (len > 12 && strcmp(de->d_name + len - 12, ".thumbs.gguf") == 0) continue;
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

/* ------------------------------------------------- process-wide cache */

/* A loaded weights file, shared by every set in the process that uses it.
 * Identified by the file (device, inode, size, mtime), not by the path, so
 * that two names of one file share one copy and a file replaced under the
 * same name is loaded afresh. */
typedef struct shared_model {
    struct shared_model *next;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    mrt_model *model;
    int refs; /* holders; guarded by g_lock */
} shared_model;

/* A plain mutex: models come and go (refcounts), and loading under the lock
 * is what makes "loaded once" true when two threads ask for one file at the
 * same moment. Loading takes milliseconds (a mapping and a SHA-256). */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static shared_model *g_models;
static int g_nmodels;

static int same_file(const shared_model *m, const struct stat *st) {
    return m->dev == st->st_dev && m->ino == st->st_ino && m->size == st->st_size &&
           m->mtime.tv_sec == st->st_mtim.tv_sec && m->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* The shared copy of the model at `path`, loaded if nobody holds it yet;
 * the caller owns one reference. */
static mrt_status acquire(const char *path, shared_model **out, mrt_error *err) {
    struct stat st;
    *out = NULL;
    if (stat(path, &st) != 0) return mrt_fail(err, MRT_ERR_IO, "%s: %s", path, strerror(errno));
    pthread_mutex_lock(&g_lock);
    for (shared_model *m = g_models; m; m = m->next) {
        if (same_file(m, &st)) {
            m->refs++;
            pthread_mutex_unlock(&g_lock);
            *out = m;
            return mrt_ok(err);
        }
    }
    shared_model *m = calloc(1, sizeof *m);
    mrt_status status;
    if (!m) {
        status = mrt_fail(err, MRT_ERR_NOMEM, "out of memory");
    } else if ((status = mrt_model_load(path, &m->model, err)) != MRT_OK) {
        free(m);
        m = NULL;
    } else {
        m->dev = st.st_dev;
        m->ino = st.st_ino;
        m->size = st.st_size;
        m->mtime = st.st_mtim;
        m->refs = 1;
        m->next = g_models;
        g_models = m;
        g_nmodels++;
    }
    pthread_mutex_unlock(&g_lock);
    *out = m;
    return status;
}

static void hold(shared_model *m) {
    pthread_mutex_lock(&g_lock);
    m->refs++;
    pthread_mutex_unlock(&g_lock);
}

static void release(shared_model *m) {
    if (!m) return;
    pthread_mutex_lock(&g_lock);
    if (--m->refs == 0) {
        for (shared_model **p = &g_models; *p; p = &(*p)->next) {
            if (*p == m) {
                *p = m->next;
                break;
            }
        }
        g_nmodels--;
        mrt_model_free(m->model);
        free(m);
    }
    pthread_mutex_unlock(&g_lock);
}

int mrt_models_loaded(void) {
    pthread_mutex_lock(&g_lock);
    int n = g_nmodels;
    pthread_mutex_unlock(&g_lock);
    return n;
}

/* ------------------------------------------------------------ the set */

typedef struct rate_point {
    char *name; /* "0.01" for mrt-0.01.gguf; other files: the name without .gguf */
    shared_model *model;
} rate_point;

struct mrt_model_set {
    char *path;           /* the set's own model */
    char *name;           /* its rate-point name */
    shared_model *model;
    pthread_mutex_t lock; /* the lazy scan; lookups after it only read */
    int scanned;
    rate_point *rates;    /* [0] is the set's own model, then the folder's */
    int nrates;
    const mrt_model **distinct; /* one per fingerprint, in rate-point order */
    int ndistinct;
    /* retired/mrt-*.gguf beside the model: weights that were rate points
     * once, kept so that streams made with them still decode; never chosen
     * to encode. Read on the first stream no rate point has made. */
    int retired_scanned;
    shared_model **retired;
    int nretired;
};

/* The rate-point name of a weights file: "mrt-NAME.gguf" -> NAME, other
 * files their name without ".gguf" (so the default model is 'default'). */
static char *rate_name(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && !strcmp(base + n - 5, ".gguf")) n -= 5;
    if (n > 4 && !strncmp(base, "mrt-", 4)) {
        base += 4;
        n -= 4;
    }
    char *name = malloc(n + 1);
    if (name) {
        memcpy(name, base, n);
        name[n] = 0;
    }
    return name;
}

mrt_status mrt_model_set_open(const char *path, mrt_model_set **out, mrt_error *err) {
    if (!path || !out) return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_model_set_open: NULL argument");
    *out = NULL;
    mrt_model_set *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path)) || !(s->name = rate_name(path))) {
        if (s) free(s->path);
        free(s);
        return mrt_fail(err, MRT_ERR_NOMEM, "out of memory");
    }
    mrt_status st = acquire(path, &s->model, err);
    if (st != MRT_OK) {
        free(s->name);
        free(s->path);
        free(s);
        return st;
    }
    pthread_mutex_init(&s->lock, NULL);
    *out = s;
    return mrt_ok(err);
}

static void forget_retired(mrt_model_set *s) {
    for (int i = 0; i < s->nretired; i++) release(s->retired[i]);
    free(s->retired);
    s->retired = NULL;
    s->nretired = 0;
    s->retired_scanned = 0;
}

static void forget_rates(mrt_model_set *s) {
    forget_retired(s);
    for (int i = 0; i < s->nrates; i++) {
        release(s->rates[i].model);
        free(s->rates[i].name);
    }
    free(s->rates);
    free(s->distinct);
    s->rates = NULL;
    s->distinct = NULL;
    s->nrates = s->ndistinct = 0;
    s->scanned = 0;
}

void mrt_model_set_free(mrt_model_set *s) {
    if (!s) return;
    forget_rates(s);
    release(s->model);
    pthread_mutex_destroy(&s->lock);
    free(s->name);
    free(s->path);
    free(s);
}

const mrt_model *mrt_model_set_model(const mrt_model_set *s) { return s->model->model; }
const char *mrt_model_set_path(const mrt_model_set *s) { return s->path; }

/* The folder of the set's model ("." for a bare file name), with `sub`
 * appended ("" or "/retired"); malloc'd, NULL if out of memory. */
static char *model_folder(const mrt_model_set *s, const char *sub) {
    const char *slash = strrchr(s->path, '/');
    const char *dir = slash ? s->path : ".";
    /* "/m.gguf" is in "/" (kept whole when nothing is appended) */
    size_t n = slash ? (size_t)(slash - s->path) + (slash == s->path && !*sub) : 1;
    char *out = malloc(n + strlen(sub) + 1);
    if (out) {
        memcpy(out, dir, n);
        strcpy(out + n, sub);
    }
    return out;
}

/* Rate points: the set's own model, then every mrt-*.gguf in its folder in
 * name order, each loaded (shared) to learn its rate id and fingerprint.
 * A file that does not load is an error naming it rather than skipped, so
 * that 'high' never quietly means a lower rate. Called with s->lock held. */
static mrt_status scan_locked(mrt_model_set *s, mrt_error *err) {
    if (s->scanned) return mrt_ok(err);
    char *dir = model_folder(s, "");
    char **files = NULL;
    int nfiles = 0;
    mrt_status st;
    if (!dir) return mrt_fail(err, MRT_ERR_NOMEM, "out of memory");
    if ((st = mrt_rate_point_files(dir, &files, &nfiles, err)) != MRT_OK) {
        free(dir);
        return st;
    }
    s->rates = calloc((size_t)nfiles + 1, sizeof *s->rates);
    s->distinct = calloc((size_t)nfiles + 1, sizeof *s->distinct);
    if (!s->rates || !s->distinct || !(s->rates[0].name = strdup(s->name))) {
        st = mrt_fail(err, MRT_ERR_NOMEM, "out of memory");
        goto fail;
    }
    hold(s->model);
    s->rates[0].model = s->model;
    s->nrates = 1;
    for (int i = 0; i < nfiles; i++) {
        rate_point *r = &s->rates[s->nrates];
        if (!(r->name = rate_name(files[i]))) {
            st = mrt_fail(err, MRT_ERR_NOMEM, "out of memory");
            goto fail;
        }
        if (!strcmp(r->name, s->rates[0].name)) { /* the set's own file */
            free(r->name);
            r->name = NULL;
            continue;
        }
        if ((st = acquire(files[i], &r->model, err)) != MRT_OK) {
            st = mrt_fail(err, st, "rate point '%s': %s", r->name, err ? err->message : "");
            free(r->name);
            r->name = NULL;
            goto fail;
        }
        s->nrates++;
    }
    for (int i = 0; i < s->nrates; i++) {
        const mrt_model *m = s->rates[i].model->model;
        int seen = 0;
        for (int j = 0; j < s->ndistinct; j++)
            seen |= !memcmp(mrt_model_fingerprint(s->distinct[j]), mrt_model_fingerprint(m),
                            MRT_FINGERPRINT_BYTES);
        if (!seen) s->distinct[s->ndistinct++] = m;
    }
    s->scanned = 1;
    mrt_rate_point_files_free(files, nfiles);
    free(dir);
    return mrt_ok(err);
fail:
    forget_rates(s);
    mrt_rate_point_files_free(files, nfiles);
    free(dir);
    return st;
}

mrt_status mrt_model_set_rate_points(mrt_model_set *s, const mrt_model *const **models,
                                     int *count, mrt_error *err) {
    if (!s || !models || !count)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_model_set_rate_points: NULL argument");
    pthread_mutex_lock(&s->lock);
    mrt_status st = scan_locked(s, err);
    *models = st == MRT_OK ? s->distinct : NULL;
    *count = st == MRT_OK ? s->ndistinct : 0;
    pthread_mutex_unlock(&s->lock);
    return st;
}

const char *mrt_model_set_rate_name(mrt_model_set *s, const mrt_model *m) {
    if (m == s->model->model) return s->name;
    const char *name = NULL;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->nrates && !name; i++)
        if (s->rates[i].model->model == m) name = s->rates[i].name;
    pthread_mutex_unlock(&s->lock);
    return name;
}

/* Fails with the reason, then the rate points there are:
 * "<why>; rate points beside PATH: 'default' (rate id 0), '0.01' (rate id 2)". */
static mrt_status fail_rate(const mrt_model_set *s, mrt_error *err, const char *fmt, ...)
    MRT_PRINTF(3, 4);
static mrt_status fail_rate(const mrt_model_set *s, mrt_error *err, const char *fmt, ...) {
    char why[256], list[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    size_t used = 0;
    list[0] = 0;
    for (int i = 0; i < s->nrates && used < sizeof list; i++) {
        int n = snprintf(list + used, sizeof list - used, "%s'%s' (rate id %d)", i ? ", " : "",
                         s->rates[i].name, mrt_model_rate_id(s->rates[i].model->model));
        if (n < 0) break;
        used += (size_t)n;
    }
    return mrt_fail(err, MRT_ERR_ARGUMENT, "%s; rate points beside %s: %s", why, s->path, list);
}

/* The one rate point with rate id `id`; an error if none, or if two files
 * with different weights claim it. `asked` is how the caller named it. */
static mrt_status by_id_locked(mrt_model_set *s, int id, const char *asked, const mrt_model **out,
                               mrt_error *err) {
    const rate_point *found = NULL;
    for (int i = 0; i < s->nrates; i++) {
        const rate_point *r = &s->rates[i];
        if (mrt_model_rate_id(r->model->model) != id) continue;
        if (found && found->model != r->model)
            return fail_rate(s, err, "rate %s is ambiguous: '%s' and '%s' both have rate id %d",
                             asked, found->name, r->name, id);
        if (!found) found = r;
    }
    if (!found) return fail_rate(s, err, "no model for rate %s", asked);
    *out = found->model->model;
    return mrt_ok(err);
}

static int cmp_ints(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

mrt_status mrt_model_set_by_id(mrt_model_set *s, long long id, const mrt_model **out,
                               mrt_error *err) {
    if (!s || !out) return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_model_set_by_id: NULL argument");
    *out = NULL;
    /* The set's own model needs no folder scan. */
    if (id == mrt_model_rate_id(s->model->model)) {
        *out = s->model->model;
        return mrt_ok(err);
    }
    pthread_mutex_lock(&s->lock);
    mrt_status st = scan_locked(s, err);
    if (st == MRT_OK) {
        char asked[32];
        snprintf(asked, sizeof asked, "%lld", id);
        st = id < 0 || id > 255 ? fail_rate(s, err, "rate ids are 0..255")
                                : by_id_locked(s, (int)id, asked, out, err);
    }
    pthread_mutex_unlock(&s->lock);
    return st;
}

mrt_status mrt_model_set_by_name(mrt_model_set *s, const char *name, const mrt_model **out,
                                 mrt_error *err) {
    if (!s || !name || !out)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_model_set_by_name: NULL argument");
    *out = NULL;
    pthread_mutex_lock(&s->lock);
    mrt_status st = scan_locked(s, err);
    if (st != MRT_OK) goto done;
    for (int i = 0; i < s->nrates; i++) {
        if (!strcmp(s->rates[i].name, name)) {
            *out = s->rates[i].model->model;
            st = mrt_ok(err);
            goto done;
        }
    }
    int which = !strcmp(name, "low") ? 0 : !strcmp(name, "medium") ? 1 : !strcmp(name, "high") ? 2 : -1;
    if (which < 0) {
        st = fail_rate(s, err, "no rate point named '%s'", name);
        goto done;
    }
    int ids[256], n = 0; /* distinct rate ids, ascending */
    for (int i = 0; i < s->nrates; i++) {
        int id = mrt_model_rate_id(s->rates[i].model->model), seen = 0;
        for (int j = 0; j < n; j++) seen |= ids[j] == id;
        if (!seen) ids[n++] = id;
    }
    if (n < 3) {
        st = fail_rate(s, err, "rate '%s' needs rate points with 3 different rate ids, found %d",
                       name, n);
        goto done;
    }
    qsort(ids, (size_t)n, sizeof ids[0], cmp_ints);
    int id = which == 0 ? ids[0] : which == 2 ? ids[n - 1] : ids[(n - 1) / 2];
    char asked[64];
    snprintf(asked, sizeof asked, "'%s' (rate id %d)", name, id);
    st = by_id_locked(s, id, asked, out, err);
done:
    pthread_mutex_unlock(&s->lock);
    return st;
}

mrt_status mrt_model_set_by_number(mrt_model_set *s, double x, const mrt_model **out,
                                   mrt_error *err) {
    if (!s || !out) return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_model_set_by_number: NULL argument");
    *out = NULL;
    pthread_mutex_lock(&s->lock);
    mrt_status st = scan_locked(s, err);
    if (st == MRT_OK) {
        st = fail_rate(s, err, "no rate point named %g", x);
        for (int i = 0; i < s->nrates; i++) {
            char *end;
            double y = strtod(s->rates[i].name, &end);
            if (end != s->rates[i].name && !*end && fabs(x - y) <= 1e-9 * fabs(y)) {
                *out = s->rates[i].model->model;
                st = mrt_ok(err);
                break;
            }
        }
    }
    pthread_mutex_unlock(&s->lock);
    return st;
}

mrt_status mrt_model_set_rate(mrt_model_set *s, const char *rate, const mrt_model **out,
                              mrt_error *err) {
    if (!s || !rate || !out) return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_model_set_rate: NULL argument");
    char *end;
    errno = 0;
    long long id = strtoll(rate, &end, 10);
    if (*rate && !*end && errno == 0) return mrt_model_set_by_id(s, id, out, err);
    return mrt_model_set_by_name(s, rate, out, err);
}

/* The retired weights (see the struct), each loaded (shared). A folder that
 * is missing is none; a file in it that does not load is an error naming
 * it. Called with s->lock held. */
static mrt_status scan_retired_locked(mrt_model_set *s, mrt_error *err) {
    if (s->retired_scanned) return mrt_ok(err);
    char *dir = model_folder(s, "/retired");
    if (!dir) return mrt_fail(err, MRT_ERR_NOMEM, "out of memory");
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        free(dir);
        s->retired_scanned = 1;
        return mrt_ok(err);
    }
    char **files = NULL;
    int nfiles = 0;
    mrt_status status = mrt_rate_point_files(dir, &files, &nfiles, err);
    free(dir);
    if (status != MRT_OK) return status;
    s->retired = calloc((size_t)nfiles + 1, sizeof *s->retired);
    if (!s->retired) status = mrt_fail(err, MRT_ERR_NOMEM, "out of memory");
    for (int i = 0; status == MRT_OK && i < nfiles; i++) {
        if ((status = acquire(files[i], &s->retired[s->nretired], err)) == MRT_OK) s->nretired++;
        else status = mrt_fail(err, status, "retired weights: %s", err ? err->message : files[i]);
    }
    mrt_rate_point_files_free(files, nfiles);
    if (status != MRT_OK) {
        forget_retired(s);
        return status;
    }
    s->retired_scanned = 1;
    return mrt_ok(err);
}

mrt_status mrt_model_set_for_stream(mrt_model_set *s, const uint8_t *fingerprint,
                                    const mrt_model **out, mrt_error *err) {
    if (!s || !fingerprint || !out)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_model_set_for_stream: NULL argument");
    *out = s->model->model;
    if (!memcmp(mrt_model_fingerprint(*out), fingerprint, MRT_FINGERPRINT_BYTES)) return mrt_ok(err);
    pthread_mutex_lock(&s->lock);
    mrt_status st = scan_locked(s, err);
    int found = 0;
    for (int i = 0; st == MRT_OK && i < s->nrates && !found; i++) {
        if (!memcmp(mrt_model_fingerprint(s->rates[i].model->model), fingerprint,
                    MRT_FINGERPRINT_BYTES)) {
            *out = s->rates[i].model->model;
            found = 1;
        }
    }
    /* no rate point made it: weights retired since, if they are kept */
    if (st == MRT_OK && !found) st = scan_retired_locked(s, err);
    for (int i = 0; st == MRT_OK && !found && i < s->nretired; i++) {
        if (!memcmp(mrt_model_fingerprint(s->retired[i]->model), fingerprint,
                    MRT_FINGERPRINT_BYTES)) {
            *out = s->retired[i]->model;
            found = 1;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return st;
}
