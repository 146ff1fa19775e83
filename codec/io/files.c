/*
 * files.c -- reading whole files and replacing files atomically: the one
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
/* realpath(3) */
#define _XOPEN_SOURCE 700
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
    /* O_NONBLOCK: open() of a FIFO waits for a writer, for ever if none
     * comes; without it, the FIFO opens at once and reads to its end (none
     * at all when nothing is writing to it). Reading then blocks as usual. */
    char ebuf[128];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return mrt_fail(err, MRT_ERR_IO, "%s: cannot open: %s", path,
                        mrt_strerror(errno, ebuf, sizeof ebuf));
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        int saved = errno;
        close(fd);
        return mrt_fail(err, MRT_ERR_IO, "%s: cannot open: %s", path,
                        mrt_strerror(saved, ebuf, sizeof ebuf));
    }
    struct stat sb;
    int fifo = fstat(fd, &sb) == 0 && S_ISFIFO(sb.st_mode);
    mrt_status st = mrt_read_fd(fd, path, max_bytes, out, len, err);
    close(fd);
    if (st == MRT_OK && fifo && *len == 0) {
        free(*out);
        *out = NULL;
        return mrt_fail(err, MRT_ERR_IO, "%s: is a FIFO that nothing was writing to", path);
    }
    return st;
}

/* ------------------------------------------------------------- writing */

/* The longest file name the temporary names keep of the final one: the
 * suffix (".tmp-<pid>-<8 hex>", at most 34 bytes) must still fit the
 * 255-byte limit on a name, or a photo with a long name could be added to
 * an archive but never extracted. */
#define TEMP_NAME_KEEP 200

/* Creates "<path>.tmp-<pid>-<n>" exclusively (O_EXCL: never clobbers, and
 * never follows a planted link), with mode 0666 so the umask applies as for
 * any new file; of a final name longer than TEMP_NAME_KEEP bytes it keeps
 * the first TEMP_NAME_KEEP. The suffix mixes the clock and a stack
 * address, which differ between threads; a clash just tries again. Returns
 * the fd and the malloc'd name in *tmp, or -1 with errno set. */
static int create_temp_at(int dirfd, const char *path, char **tmp) {
    size_t tmp_len = strlen(path) + 48;
    *tmp = malloc(tmp_len);
    if (!*tmp) {
        errno = ENOMEM;
        return -1;
    }
    const char *slash = strrchr(path, '/');
    size_t base = slash ? (size_t)(slash + 1 - path) : 0; /* where the file name starts */
    int keep = strlen(path) - base > TEMP_NAME_KEEP ? (int)(base + TEMP_NAME_KEEP)
                                                     : (int)strlen(path);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long seed = (unsigned long long)ts.tv_nsec ^
                              ((unsigned long long)ts.tv_sec << 30) ^
                              (unsigned long long)(uintptr_t)&ts;
    for (int attempt = 0; attempt < 100; attempt++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        snprintf(*tmp, tmp_len, "%.*s.tmp-%ld-%08llx", keep, path, (long)getpid(), seed >> 32);
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

/*
 * What an output path is. A regular file, or nothing yet, is replaced
 * atomically (a temporary file renamed over it). A character device or a
 * FIFO (/dev/null, a named pipe, /dev/stdout) is written into directly:
 * renaming over one would replace the device node with a file -- as root,
 * `mrt decode x.mrt /dev/null` would have replaced the machine's
 * /dev/null. A symbolic link is followed when `follow` is set (the
 * target is then what is replaced or written), else refused; one that
 * points at nothing, a directory, a block device or a socket is refused.
 */
typedef struct output {
    int stream;   /* write in place: a character device or FIFO */
    char *target; /* the file to replace: path, or a link's resolved target */
} output;

static mrt_status classify_output(int dirfd, const char *path, int follow, output *o,
                                  mrt_error *err) {
    char ebuf[128];
    memset(o, 0, sizeof *o);
    struct stat sb;
    if (fstatat(dirfd, path, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT)
            return mrt_fail(err, MRT_ERR_IO, "%s: cannot stat: %s", path,
                            mrt_strerror(errno, ebuf, sizeof ebuf));
        if (!(o->target = strdup(path))) return mrt_fail(err, MRT_ERR_NOMEM, "out of memory");
        return mrt_ok(err);
    }
    int link = S_ISLNK(sb.st_mode);
    if (link && !follow)
        return mrt_fail(err, MRT_ERR_IO, "%s: is a symbolic link (not followed, not replaced)",
                        path);
    if (link && fstatat(dirfd, path, &sb, 0) != 0)
        return mrt_fail(err, MRT_ERR_IO, "%s: is a symbolic link to nothing usable (%s); not "
                        "replaced", path, mrt_strerror(errno, ebuf, sizeof ebuf));
    if (S_ISCHR(sb.st_mode) || S_ISFIFO(sb.st_mode)) {
        o->stream = 1;
        return mrt_ok(err);
    }
    if (!S_ISREG(sb.st_mode))
        return mrt_fail(err, MRT_ERR_IO, "%s: is %s (not written)", path,
                        S_ISDIR(sb.st_mode)   ? "a directory"
                        : S_ISBLK(sb.st_mode) ? "a block device"
                                              : "a socket");
    /* follow is only ever set with AT_FDCWD (mrt_write_file_atomic) */
    o->target = link ? realpath(path, NULL) : strdup(path);
    if (!o->target)
        return mrt_fail(err, link ? MRT_ERR_IO : MRT_ERR_NOMEM, "%s: cannot resolve the "
                        "symbolic link: %s", path, mrt_strerror(errno, ebuf, sizeof ebuf));
    return mrt_ok(err);
}

/* Opens a character device or FIFO for writing. O_NONBLOCK first: opening
 * a FIFO nobody reads would wait for ever; it fails at once instead. */
static int open_stream(int dirfd, const char *path, int follow, const char **why) {
    int fd = openat(dirfd, path,
                    O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
    if (fd < 0) {
        *why = errno == ENXIO ? "it is a FIFO that no process is reading" : NULL;
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        *why = NULL;
        return -1;
    }
    return fd;
}

static mrt_status write_stream(int dirfd, const char *path, int follow, const void *data,
                               size_t len, mrt_error *err) {
    char ebuf[128];
    const char *why;
    int fd = open_stream(dirfd, path, follow, &why);
    if (fd < 0)
        return mrt_fail(err, MRT_ERR_IO, "%s: cannot open for writing: %s", path,
                        why ? why : mrt_strerror(errno, ebuf, sizeof ebuf));
    int failed = write_all(fd, data, len) != 0;
    int saved = errno;
    if (close(fd) != 0 && !failed) failed = 1, saved = errno;
    if (failed)
        return mrt_fail(err, MRT_ERR_IO, "%s: write failed: %s", path,
                        mrt_strerror(saved, ebuf, sizeof ebuf));
    return mrt_ok(err);
}

static mrt_status write_file_atomic(int dirfd, const char *path, int follow, const void *data,
                                    size_t len, mrt_error *err) {
    if (!path) return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_write_file_atomic: path is NULL");
    if (!data && len)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_write_file_atomic: data is NULL");
    output out;
    mrt_status st = classify_output(dirfd, path, follow, &out, err);
    if (st != MRT_OK) return st;
    if (out.stream) return write_stream(dirfd, path, follow, data, len, err);
    const char *target = out.target;
    char ebuf[128];
    char *tmp;
    int fd = create_temp_at(dirfd, target, &tmp);
    if (fd < 0) {
        st = mrt_fail(err, MRT_ERR_IO, "%s: cannot create a temporary file beside it: %s",
                      target, mrt_strerror(errno, ebuf, sizeof ebuf));
        free(out.target);
        return st;
    }
    const char *step = NULL;
    if (write_all(fd, data, len) != 0) step = "write";
    else if (fsync(fd) != 0) step = "fsync";
    int saved_errno = errno;
    if (close(fd) != 0 && !step) {
        step = "close";
        saved_errno = errno;
    }
    if (step) {
        st = mrt_fail(err, MRT_ERR_IO, "%s: %s of the temporary file %s failed: %s", target,
                      step, tmp, mrt_strerror(saved_errno, ebuf, sizeof ebuf));
        unlinkat(dirfd, tmp, 0);
    } else {
        st = move_into_place(dirfd, tmp, target, 1, err);
    }
    free(tmp);
    free(out.target);
    return st;
}

mrt_status mrt_write_file_atomic_at(int dirfd, const char *path, const void *data, size_t len,
                                    mrt_error *err) {
    return write_file_atomic(dirfd, path, 0, data, len, err);
}

mrt_status mrt_write_file_atomic(const char *path, const void *data, size_t len, mrt_error *err) {
    return write_file_atomic(AT_FDCWD, path, 1, data, len, err);
}

mrt_status mrt_write_fd(int fd, const char *name, const void *data, size_t len, mrt_error *err) {
    char ebuf[128];
    if (!data && len) return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_write_fd: data is NULL");
    if (write_all(fd, data, len) != 0)
        return mrt_fail(err, MRT_ERR_IO, "%s: write failed: %s", name ? name : "output",
                        mrt_strerror(errno, ebuf, sizeof ebuf));
    return mrt_ok(err);
}

/* The directory for a stream output's temporary file: the writer needs a
 * name, and a device's own directory (/dev) is no place for one. */
static const char *stream_temp_dir(void) {
    const char *d = getenv("TMPDIR");
    return d && *d ? d : "/tmp";
}

mrt_status mrt_temp_file_create(const char *path, char **tmp_path, mrt_error *err) {
    if (!tmp_path) return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_temp_file_create: tmp_path is NULL");
    *tmp_path = NULL;
    if (!path) return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_temp_file_create: path is NULL");
    char ebuf[128];
    output out;
    mrt_status st = classify_output(AT_FDCWD, path, 1, &out, err);
    if (st != MRT_OK) return st;
    char stream_base[4200];
    const char *beside = out.target;
    if (out.stream) {
        snprintf(stream_base, sizeof stream_base, "%s/mrt-output", stream_temp_dir());
        beside = stream_base;
    }
    int fd = create_temp_at(AT_FDCWD, beside, tmp_path);
    if (fd < 0)
        st = mrt_fail(err, MRT_ERR_IO, "%s: cannot create a temporary file %s: %s", path,
                      out.stream ? "for it" : "beside it", mrt_strerror(errno, ebuf, sizeof ebuf));
    else
        close(fd);
    free(out.target);
    return st == MRT_OK ? mrt_ok(err) : st;
}

/* Copies the finished temporary file into a device or FIFO. */
static mrt_status copy_into_stream(const char *tmp_path, const char *path, mrt_error *err) {
    char ebuf[128];
    const char *why;
    int in = open(tmp_path, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return mrt_fail(err, MRT_ERR_IO, "%s: cannot reopen the temporary file %s: %s", path,
                        tmp_path, mrt_strerror(errno, ebuf, sizeof ebuf));
    int out = open_stream(AT_FDCWD, path, 1, &why);
    if (out < 0) {
        int saved = errno;
        close(in);
        return mrt_fail(err, MRT_ERR_IO, "%s: cannot open for writing: %s", path,
                        why ? why : mrt_strerror(saved, ebuf, sizeof ebuf));
    }
    uint8_t buf[1 << 16];
    mrt_status st = MRT_OK;
    for (;;) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            st = mrt_fail(err, MRT_ERR_IO, "%s: reading the temporary file %s failed: %s",
                          path, tmp_path, mrt_strerror(errno, ebuf, sizeof ebuf));
            break;
        }
        if (r == 0) break;
        if (write_all(out, buf, (size_t)r) != 0) {
            st = mrt_fail(err, MRT_ERR_IO, "%s: write failed: %s", path,
                          mrt_strerror(errno, ebuf, sizeof ebuf));
            break;
        }
    }
    close(in);
    if (close(out) != 0 && st == MRT_OK)
        st = mrt_fail(err, MRT_ERR_IO, "%s: write failed: %s", path,
                      mrt_strerror(errno, ebuf, sizeof ebuf));
    return st;
}

mrt_status mrt_temp_file_commit(const char *tmp_path, const char *path, int replace,
                                mrt_error *err) {
    if (!tmp_path || !path)
        return mrt_fail(err, MRT_ERR_ARGUMENT, "mrt_temp_file_commit: NULL argument");
    char ebuf[128];
    output out;
    mrt_status st = classify_output(AT_FDCWD, path, 1, &out, err);
    if (st != MRT_OK) {
        unlink(tmp_path);
        return st;
    }
    if (out.stream) {
        st = copy_into_stream(tmp_path, path, err);
        unlink(tmp_path);
        return st == MRT_OK ? mrt_ok(err) : st;
    }
    /* The writer (SQLite, libarchive) has closed its own descriptor; fsync
     * through a new one flushes the same file. */
    int fd = open(tmp_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        int saved_errno = errno;
        if (fd >= 0) close(fd);
        unlink(tmp_path);
        free(out.target);
        return mrt_fail(err, MRT_ERR_IO, "%s: fsync of the temporary file %s failed: %s", path,
                        tmp_path, mrt_strerror(saved_errno, ebuf, sizeof ebuf));
    }
    close(fd);
    st = move_into_place(AT_FDCWD, tmp_path, out.target, replace, err);
    free(out.target);
    return st;
}
