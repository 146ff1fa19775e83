/*
 * faultio.c -- an LD_PRELOAD shim that makes the N-th write or sync of an
 * archive file fail with EIO, the way SQLite's own tests fail a VFS call,
 * for tests/archive/test_faults.sh. It sits below SQLite, so the whole
 * `mrtarchive` binary runs unchanged.
 *
 *   FAULTIO_MATCH=.mrtdb   only descriptors whose path contains this count
 *                          (the archive, its -wal and -shm, its journal)
 *   FAULTIO_FAIL_AT=N      the N-th counted call fails (0 or unset: none)
 *   FAULTIO_REPORT=FILE    at exit, the number of counted calls is written
 *                          to FILE (to learn how many N there are)
 *
 * Counted calls: write, pwrite, pwrite64, fsync, fdatasync. After the
 * failure the calls go through again: the program must cope with one
 * error, as with a disk that hiccups once.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static long calls, fail_at = -1;
static const char *match;

static void setup(void) {
    if (fail_at >= 0) return;
    const char *f = getenv("FAULTIO_FAIL_AT");
    fail_at = f ? atol(f) : 0;
    match = getenv("FAULTIO_MATCH");
}

/* Whether fd is a file whose path contains FAULTIO_MATCH. */
static int counted(int fd) {
    setup();
    if (!match || !*match) return 0;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = 0;
    return strstr(path, match) != NULL;
}

/* Whether this counted call is the one to fail (errno is then EIO). */
static int fails(int fd) {
    if (!counted(fd)) return 0;
    long n = __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
    if (n != fail_at) return 0;
    errno = EIO;
    return 1;
}

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*pwrite64_fn)(int, const void *, size_t, off64_t);
typedef int (*sync_fn)(int);

/* The C library's own function of that name. */
static void *real(const char *name) { return dlsym(RTLD_NEXT, name); }

ssize_t write(int fd, const void *buf, size_t n) {
    static write_fn f;
    if (!f) f = (write_fn)real("write");
    return fails(fd) ? -1 : f(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    static pwrite_fn f;
    if (!f) f = (pwrite_fn)real("pwrite");
    return fails(fd) ? -1 : f(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off) {
    static pwrite64_fn f;
    if (!f) f = (pwrite64_fn)real("pwrite64");
    return fails(fd) ? -1 : f(fd, buf, n, off);
}

int fsync(int fd) {
    static sync_fn f;
    if (!f) f = (sync_fn)real("fsync");
    return fails(fd) ? -1 : f(fd);
}

int fdatasync(int fd) {
    static sync_fn f;
    if (!f) f = (sync_fn)real("fdatasync");
    return fails(fd) ? -1 : f(fd);
}

__attribute__((destructor)) static void report(void) {
    const char *to = getenv("FAULTIO_REPORT");
    if (!to || !*to) return;
    FILE *f = fopen(to, "w");
    if (!f) return;
    fprintf(f, "%ld\n", calls);
    fclose(f);
}
