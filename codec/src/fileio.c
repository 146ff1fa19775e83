/*
 * fileio.c -- reading whole files and replacing files atomically: the one
 * implementation that libmrt (images, weights files), the `mrt` command,
 * mrtarchive and the test tools share (mrt.h, "files").
 *
 * Reading is bounded by the caller's cap, which is checked against the
 * file's size before anything is allocated; the file is then read to its
 * end rather than to that size, because the file may change under us and
 * pipes have no size at all.
 *
 * Writing goes to a temporary file in the destination's own directory (a
 * rename is atomic only within one file system), which is fsync'ed before
 * the rename: without that, a crash soon after can leave an empty file
 * under the final name. The directory is fsync'ed after, so that the
 * rename itself survives a crash.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "status.h"

/* ------------------------------------------------------------- reading */

mrt_status mrt_read_fd(int fd, const char *name, size_t max_bytes, uint8_t **out, size_t *len,
                       mrt_error *err) {
    if (!out || !len) return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_read_fd: out or len is NULL");
    *out = NULL;
    *len = 0;
    const char *prefix = name ? name : "", *sep = name ? ": " : "";
    char ebuf[128];
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return mrt_fail(err, MRT_ERR_IO, "%s%scannot stat: %s", prefix, sep,
                        mrt_strerror(errno, ebuf, sizeof ebuf));
    if (S_ISDIR(sb.st_mode)) return mrt_fail(err, MRT_ERR_IO, "%s%sis a directory", prefix, sep);
    /* The buffer holds up to max_bytes + 1: reading that one byte more is
     * how a file that passes the cap while we read is noticed. */
    if (max_bytes > SIZE_MAX - 1) max_bytes = SIZE_MAX - 1;
    if (S_ISREG(sb.st_mode) && (uintmax_t)sb.st_size > max_bytes)
        return mrt_fail(err, MRT_ERR_TOO_BIG, "%s%sfile of %lld bytes is over the %zu-byte limit",
                        prefix, sep, (long long)sb.st_size, max_bytes);
    /* A regular file's size + 1 reads it whole and sees its end without a
     * realloc; anything else starts small and doubles. */
    size_t cap = S_ISREG(sb.st_mode) ? (size_t)sb.st_size + 1 : (size_t)1 << 16;
    if (cap > max_bytes + 1) cap = max_bytes + 1;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return mrt_fail(err, MRT_ERR_NOMEM, "%s%sout of memory for %zu bytes", prefix, sep, cap);
    size_t n = 0;
    mrt_status st = MRT_OK;
    for (;;) {
        if (n == cap) {
            if (cap > max_bytes) {
                st = mrt_fail(err, MRT_ERR_TOO_BIG, "%s%sover the %zu-byte limit", prefix, sep,
                              max_bytes);
                break;
            }
            size_t ncap = cap > (max_bytes + 1) / 2 ? max_bytes + 1 : cap * 2;
            uint8_t *bigger = realloc(buf, ncap);
            if (!bigger) {
                st = mrt_fail(err, MRT_ERR_NOMEM, "%s%sout of memory for %zu bytes", prefix, sep,
                              ncap);
                break;
            }
            buf = bigger;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            st = mrt_fail(err, MRT_ERR_IO, "%s%sread failed: %s", prefix, sep,
                          mrt_strerror(errno, ebuf, sizeof ebuf));
            break;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    if (st != MRT_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    *len = n;
    return mrt_ok(err);
}

mrt_status mrt_read_file(const char *path, size_t max_bytes, uint8_t **out, size_t *len,
                         mrt_error *err) {
    if (out) *out = NULL;
    if (len) *len = 0;
    if (!path) return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_read_file: path is NULL");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        char ebuf[128];
        return mrt_fail(err, MRT_ERR_IO, "%s: cannot open: %s", path,
                        mrt_strerror(errno, ebuf, sizeof ebuf));
    }
    mrt_status st = mrt_read_fd(fd, path, max_bytes, out, len, err);
    close(fd);
    return st;
}

/* ------------------------------------------------------------- writing */

/* Creates "<path>.tmp-<pid>-<n>" exclusively (O_EXCL: never clobbers, and
 * never follows a planted link), with mode 0666 so the umask applies as for
 * any new file. The suffix mixes the clock and a stack address, which
 * differ between threads; a clash just tries again. Returns the fd and the
 * malloc'd name in *tmp, or -1 with errno set. */
static int create_temp_at(int dirfd, const char *path, char **tmp) {
    size_t tmp_len = strlen(path) + 48;
    *tmp = malloc(tmp_len);
    if (!*tmp) {
        errno = ENOMEM;
        return -1;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long seed = (unsigned long long)ts.tv_nsec ^
                              ((unsigned long long)ts.tv_sec << 30) ^
                              (unsigned long long)(uintptr_t)&ts;
    for (int attempt = 0; attempt < 100; attempt++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        snprintf(*tmp, tmp_len, "%s.tmp-%ld-%08llx", path, (long)getpid(), seed >> 32);
        int fd = openat(dirfd, *tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) return fd;
        if (errno != EEXIST) break;
    }
    int saved = errno;
    free(*tmp);
    *tmp = NULL;
    errno = saved;
    return -1;
}

/* Persists a rename: fsyncs the directory that holds `path`. Best effort:
 * some file systems refuse fsync on a directory, and the file itself is
 * complete by now. */
static void sync_parent_dir(int dirfd, const char *path) {
    const char *slash = strrchr(path, '/');
    int dfd;
    if (slash) {
        size_t n = slash == path ? 1 : (size_t)(slash - path); /* "/x" -> "/" */
        char *dir = malloc(n + 1);
        if (!dir) return;
        memcpy(dir, path, n);
        dir[n] = '\0';
        dfd = openat(dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        free(dir);
    } else {
        dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (dfd < 0) return;
    (void)fsync(dfd);
    close(dfd);
}

/* Moves the complete, fsync'ed temporary file to `path` (see
 * mrt_temp_file_commit for `replace`), then syncs the directory. The
 * temporary name is gone afterwards whichever way it went. */
static mrt_status move_into_place(int dirfd, const char *tmp, const char *path, int replace,
                                  mrt_error *err) {
    char ebuf[128];
    mrt_status st = MRT_OK;
    if (replace) {
        if (renameat(dirfd, tmp, dirfd, path) != 0)
            st = mrt_fail(err, MRT_ERR_IO, "%s: cannot rename the temporary file %s over it: %s",
                          path, tmp, mrt_strerror(errno, ebuf, sizeof ebuf));
    } else if (linkat(dirfd, tmp, dirfd, path, 0) != 0) {
        if (errno == EEXIST)
            st = mrt_fail(err, MRT_ERR_IO, "%s: exists already (not overwritten)", path);
        else
            st = mrt_fail(err, MRT_ERR_IO, "%s: cannot link the temporary file %s to it: %s",
                          path, tmp, mrt_strerror(errno, ebuf, sizeof ebuf));
    }
    /* After a link the temporary name is a second name of the new file. */
    if (st != MRT_OK || !replace) unlinkat(dirfd, tmp, 0);
    if (st != MRT_OK) return st;
    sync_parent_dir(dirfd, path);
    return mrt_ok(err);
}

static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

mrt_status mrt_write_file_atomic_at(int dirfd, const char *path, const void *data, size_t len,
                                    mrt_error *err) {
    if (!path) return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_write_file_atomic: path is NULL");
    if (!data && len)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_write_file_atomic: data is NULL");
    char ebuf[128];
    char *tmp;
    int fd = create_temp_at(dirfd, path, &tmp);
    if (fd < 0)
        return mrt_fail(err, MRT_ERR_IO, "%s: cannot create a temporary file beside it: %s", path,
                        mrt_strerror(errno, ebuf, sizeof ebuf));
    const char *step = NULL;
    if (write_all(fd, data, len) != 0) step = "write";
    else if (fsync(fd) != 0) step = "fsync";
    int saved_errno = errno;
    if (close(fd) != 0 && !step) {
        step = "close";
        saved_errno = errno;
    }
    mrt_status st;
    if (step) {
        st = mrt_fail(err, MRT_ERR_IO, "%s: %s of the temporary file %s failed: %s", path, step,
                      tmp, mrt_strerror(saved_errno, ebuf, sizeof ebuf));
        unlinkat(dirfd, tmp, 0);
    } else {
        st = move_into_place(dirfd, tmp, path, 1, err);
    }
    free(tmp);
    return st;
}

mrt_status mrt_write_file_atomic(const char *path, const void *data, size_t len, mrt_error *err) {
    return mrt_write_file_atomic_at(AT_FDCWD, path, data, len, err);
}

mrt_status mrt_temp_file_create(const char *path, char **tmp_path, mrt_error *err) {
    if (!tmp_path) return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_temp_file_create: tmp_path is NULL");
    *tmp_path = NULL;
    if (!path) return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_temp_file_create: path is NULL");
    char ebuf[128];
    int fd = create_temp_at(AT_FDCWD, path, tmp_path);
    if (fd < 0)
        return mrt_fail(err, MRT_ERR_IO, "%s: cannot create a temporary file beside it: %s", path,
                        mrt_strerror(errno, ebuf, sizeof ebuf));
    close(fd);
    return mrt_ok(err);
}

mrt_status mrt_temp_file_commit(const char *tmp_path, const char *path, int replace,
                                mrt_error *err) {
    if (!tmp_path || !path)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_temp_file_commit: NULL argument");
    char ebuf[128];
    /* The writer (SQLite, libarchive) has closed its own descriptor; fsync
     * through a new one flushes the same file. */
    int fd = open(tmp_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        int saved_errno = errno;
        if (fd >= 0) close(fd);
        unlink(tmp_path);
        return mrt_fail(err, MRT_ERR_IO, "%s: fsync of the temporary file %s failed: %s", path,
                        tmp_path, mrt_strerror(saved_errno, ebuf, sizeof ebuf));
    }
    close(fd);
    return move_into_place(AT_FDCWD, tmp_path, path, replace, err);
}

/* ------------------------------------------------------- rate points */

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
