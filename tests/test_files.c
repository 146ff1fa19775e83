/*
 * test_files.c -- the library's file helpers (mrt.h, "files") and the
 * header JSON that `mrt info` and the SQL function mrt_info() share.
 *
 *   - mrt_read_file / mrt_read_fd: contents, an empty file, the cap (from
 *     the size of a regular file, while reading for a pipe), a directory, a
 *     missing file; *out is NULL after every failure.
 *   - mrt_write_file_atomic(_at): contents, overwrite, no temporary file
 *     left, the mode of a new file, failures that leave nothing behind.
 *   - mrt_temp_file_create / _commit: replace and never-overwrite.
 *   - mrt_info_json: the exact text, and snprintf's rules when cut.
 */
/* mknod(2), setenv(3) */
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mrt.h"
#include "testutil.h"

static char tmp_dir[256];

static int dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void put_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "cannot write the fixture %s\n", path);
        exit(2);
    }
}

/* Whether `path` holds exactly these bytes. */
static int file_is(const char *path, const char *want, size_t want_len) {
    uint8_t *out;
    size_t len;
    mrt_error err;
    if (mrt_read_file(path, 1000, &out, &len, &err) != MRT_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 0;
    }
    int same = len == want_len && memcmp(out, want, len) == 0;
    mrt_free(out);
    return same;
}

/* A pipe whose other end a child process fills with `len` bytes of a
 * known pattern, more than one pipe buffer, so the reader must grow. */
static int pipe_of(size_t len, pid_t *child) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    *child = fork();
    if (*child == 0) {
        close(fds[0]);
        unsigned char chunk[4096];
        for (size_t i = 0; i < len; i += sizeof chunk) {
            size_t n = len - i < sizeof chunk ? len - i : sizeof chunk;
            for (size_t k = 0; k < n; k++) chunk[k] = (unsigned char)((i + k) % 251);
            if (write(fds[1], chunk, n) != (ssize_t)n) _exit(0); /* reader gave up */
        }
        _exit(0);
    }
    close(fds[1]);
    return fds[0];
}

static void test_read(void) {
    mrt_error err;
    char path[300];
    snprintf(path, sizeof path, "%s/data.bin", tmp_dir);
    unsigned char data[1000];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)(i * 7);
    put_file(path, data, sizeof data);

    uint8_t *out;
    size_t len;
    CHECK(mrt_read_file(path, 1000, &out, &len, &err) == MRT_OK, "%s", err.message);
    CHECK(out && len == sizeof data && memcmp(out, data, len) == 0, "contents differ (%zu bytes)",
          len);
    mrt_free(out);

    /* The cap, from the file's size: nothing read, both sizes named. */
    CHECK(mrt_read_file(path, 999, &out, &len, &err) == MRT_ERR_TOO_BIG, "%s", err.message);
    CHECK(strstr(err.message, "data.bin: file of 1000 bytes is over the 999-byte limit"), "%s",
          err.message);
    CHECK(out == NULL && len == 0, "out not cleared on failure");

    /* An empty file: zero bytes, but a pointer all the same. */
    put_file(path, "", 0);
    CHECK(mrt_read_file(path, 10, &out, &len, &err) == MRT_OK, "%s", err.message);
    CHECK(out != NULL && len == 0, "empty file: %p, %zu bytes", (void *)out, len);
    mrt_free(out);
    unlink(path);

    /* Missing file, directory. */
    CHECK(mrt_read_file(path, 10, &out, &len, &err) == MRT_ERR_IO, "%s", err.message);
    CHECK(strstr(err.message, "data.bin: cannot open: No such file"), "%s", err.message);
    CHECK(mrt_read_file(tmp_dir, 10, &out, &len, &err) == MRT_ERR_IO, "%s", err.message);
    CHECK(strstr(err.message, "is a directory"), "%s", err.message);
    CHECK(out == NULL && len == 0, "out not cleared on failure");

    /* A pipe has no size: read in growing chunks, under the cap ... */
    pid_t child;
    size_t big = 300000;
    int fd = pipe_of(big, &child);
    CHECK(mrt_read_fd(fd, "pipe", big, &out, &len, &err) == MRT_OK, "%s", err.message);
    int same = out && len == big;
    for (size_t i = 0; same && i < big; i++) same = out[i] == (unsigned char)(i % 251);
    CHECK(same, "pipe contents differ (%zu bytes)", len);
    mrt_free(out);
    close(fd);
    waitpid(child, NULL, 0);
    /* ... and refused as soon as it passes it. */
    fd = pipe_of(big, &child);
    CHECK(mrt_read_fd(fd, "pipe", big - 1, &out, &len, &err) == MRT_ERR_TOO_BIG, "%s",
          err.message);
    CHECK(strstr(err.message, "pipe: over the 299999-byte limit"), "%s", err.message);
    CHECK(out == NULL && len == 0, "out not cleared on failure");
    close(fd);
    waitpid(child, NULL, 0);
    /* No name: no prefix. */
    fd = pipe_of(10, &child);
    CHECK(mrt_read_fd(fd, NULL, 5, &out, &len, &err) == MRT_ERR_TOO_BIG, "%s", err.message);
    CHECK(strcmp(err.message, "over the 5-byte limit") == 0, "%s", err.message);
    close(fd);
    waitpid(child, NULL, 0);
}

static void test_write(void) {
    mrt_error err;
    char path[300];
    snprintf(path, sizeof path, "%s/out.bin", tmp_dir);
    CHECK(mrt_write_file_atomic(path, "first", 5, &err) == MRT_OK, "%s", err.message);
    CHECK(mrt_write_file_atomic(path, "second!", 7, &err) == MRT_OK, "overwrite: %s", err.message);
    CHECK(dir_entries(tmp_dir) == 1, "%d entries in %s (a temp file left?)", dir_entries(tmp_dir),
          tmp_dir);
    CHECK(file_is(path, "second!", 7), "contents after overwrite");
    struct stat sb;
    mode_t mask = umask(0);
    umask(mask);
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == (0666 & ~mask),
          "mode %o, want %o: a new file's mode (0666 less the umask)",
          (unsigned)(sb.st_mode & 0777), (unsigned)(0666 & ~mask));
    /* Zero bytes is a file too. */
    CHECK(mrt_write_file_atomic(path, NULL, 0, &err) == MRT_OK, "%s", err.message);
    CHECK(stat(path, &sb) == 0 && sb.st_size == 0, "not emptied");
    unlink(path);

    /* Relative to a directory descriptor. */
    int dfd = open(tmp_dir, O_RDONLY | O_DIRECTORY);
    CHECK(mrt_write_file_atomic_at(dfd, "rel.bin", "abc", 3, &err) == MRT_OK, "%s", err.message);
    close(dfd);
    snprintf(path, sizeof path, "%s/rel.bin", tmp_dir);
    CHECK(stat(path, &sb) == 0 && sb.st_size == 3, "_at wrote elsewhere");
    unlink(path);

    /* A directory that does not exist: IO naming the path, nothing made. */
    char bad[300];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.bin", tmp_dir);
    CHECK(mrt_write_file_atomic(bad, "x", 1, &err) == MRT_ERR_IO, "%s", err.message);
    CHECK(strstr(err.message, bad) && strstr(err.message, "temporary") &&
              strstr(err.message, "No such file"),
          "%s", err.message);
    /* Over a directory: IO, and the temporary file is removed. */
    char sub[300];
    snprintf(sub, sizeof sub, "%s/sub", tmp_dir);
    mkdir(sub, 0700);
    CHECK(mrt_write_file_atomic(sub, "x", 1, &err) == MRT_ERR_IO, "%s", err.message);
    CHECK(dir_entries(tmp_dir) == 1, "%d entries: temp file not removed", dir_entries(tmp_dir));
    rmdir(sub);
}

static void test_temp_file(void) {
    mrt_error err;
    char path[300];
    snprintf(path, sizeof path, "%s/export.tar", tmp_dir);
    char *tmp;
    CHECK(mrt_temp_file_create(path, &tmp, &err) == MRT_OK, "%s", err.message);
    put_file(tmp, "one", 3);
    CHECK(mrt_temp_file_commit(tmp, path, 0, &err) == MRT_OK, "%s", err.message);
    mrt_free(tmp);
    CHECK(file_is(path, "one", 3), "not linked into place");
    CHECK(dir_entries(tmp_dir) == 1, "%d entries after a link (temp name left?)",
          dir_entries(tmp_dir));
    /* Never overwrite: refused, the old file kept, the temporary gone. */
    CHECK(mrt_temp_file_create(path, &tmp, &err) == MRT_OK, "%s", err.message);
    put_file(tmp, "two", 3);
    CHECK(mrt_temp_file_commit(tmp, path, 0, &err) == MRT_ERR_IO, "%s", err.message);
    CHECK(strstr(err.message, "exists already (not overwritten)"), "%s", err.message);
    mrt_free(tmp);
    CHECK(file_is(path, "one", 3), "the existing file changed");
    CHECK(dir_entries(tmp_dir) == 1, "%d entries after a refusal", dir_entries(tmp_dir));
    /* Replace. */
    CHECK(mrt_temp_file_create(path, &tmp, &err) == MRT_OK, "%s", err.message);
    put_file(tmp, "three", 5);
    CHECK(mrt_temp_file_commit(tmp, path, 1, &err) == MRT_OK, "%s", err.message);
    mrt_free(tmp);
    CHECK(file_is(path, "three", 5), "not replaced");
    CHECK(dir_entries(tmp_dir) == 1, "%d entries after a replace", dir_entries(tmp_dir));
    unlink(path);
}

/* A child that copies the FIFO at `fifo` into the file `to`. */
static pid_t fifo_reader(const char *fifo, const char *to) {
    pid_t child = fork();
    if (child == 0) {
        int in = open(fifo, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        char buf[256];
        ssize_t n;
        while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof buf)) > 0)
            if (write(out, buf, (size_t)n) != n) _exit(1);
        _exit(0);
    }
    return child;
}

/* Outputs that are not regular files (issue 19): a device or FIFO is
 * written into, never replaced; a symbolic link is followed by
 * mrt_write_file_atomic and refused by _at; a link to nothing is
 * refused; a long name still gets a temporary file. Inputs: a FIFO with
 * no writer fails at once. */
static void test_hostile_outputs(void) {
    mrt_error err;
    char path[300], other[300], got[300];
    struct stat sb;
    /* a character device (/dev/null's numbers), made here as root */
    snprintf(path, sizeof path, "%s/null", tmp_dir);
    if (mknod(path, S_IFCHR | 0666, makedev(1, 3)) == 0) {
        CHECK(mrt_write_file_atomic(path, "data", 4, &err) == MRT_OK, "%s", err.message);
        CHECK(lstat(path, &sb) == 0 && S_ISCHR(sb.st_mode), "the device node was replaced");
        unlink(path);
    } else {
        /* not root, or a container without CAP_MKNOD */
        printf("test_files: skipped the device-node output: mknod: %s\n", strerror(errno));
    }
    /* a FIFO: nobody reading is an error at once; a reader gets the bytes */
    snprintf(path, sizeof path, "%s/fifo", tmp_dir);
    snprintf(got, sizeof got, "%s/got", tmp_dir);
    CHECK(mkfifo(path, 0600) == 0, "mkfifo: %s", strerror(errno));
    CHECK(mrt_write_file_atomic(path, "data", 4, &err) == MRT_ERR_IO &&
              strstr(err.message, "FIFO that no process is reading"),
          "%s", err.message);
    uint8_t *in = NULL;
    size_t len = 9;
    CHECK(mrt_read_file(path, 100, &in, &len, &err) == MRT_ERR_IO && !in && len == 0 &&
              strstr(err.message, "FIFO that nothing was writing to"),
          "reading a FIFO with no writer: %s", err.message);
    pid_t child = fifo_reader(path, got);
    /* until the child has the FIFO open, there is no reader */
    mrt_status st;
    for (int i = 0; (st = mrt_write_file_atomic(path, "through", 7, &err)) != MRT_OK && i < 200; i++)
        usleep(20000);
    CHECK(st == MRT_OK, "%s", err.message);
    if (st != MRT_OK) kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    CHECK(file_is(got, "through", 7), "the FIFO's reader did not get the bytes");
    /* the temporary-file pair into a FIFO: the temporary file goes to
     * $TMPDIR and its bytes into the FIFO */
    char tmpdir[300];
    snprintf(tmpdir, sizeof tmpdir, "%s/tmpdir", tmp_dir);
    mkdir(tmpdir, 0700);
    setenv("TMPDIR", tmpdir, 1);
    char *tmp = NULL;
    CHECK(mrt_temp_file_create(path, &tmp, &err) == MRT_OK && tmp &&
              strncmp(tmp, tmpdir, strlen(tmpdir)) == 0,
          "%s (temporary %s)", err.message, tmp ? tmp : "none");
    if (tmp) {
        put_file(tmp, "exported", 8);
        child = fifo_reader(path, got);
        /* the same wait for the reader, with a copy of the temporary file
         * each time (commit removes it, whichever way it goes) */
        char keep[320];
        snprintf(keep, sizeof keep, "%s.keep", tmp);
        CHECK(link(tmp, keep) == 0, "link: %s", strerror(errno));
        for (int i = 0; (st = mrt_temp_file_commit(tmp, path, 0, &err)) != MRT_OK && i < 200; i++) {
            usleep(20000);
            if (link(keep, tmp) != 0) break;
        }
        unlink(keep);
        CHECK(st == MRT_OK, "%s", err.message);
        if (st != MRT_OK) kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        CHECK(file_is(got, "exported", 8), "commit into a FIFO");
        CHECK(dir_entries(tmpdir) == 0, "the temporary file was left in %s", tmpdir);
        mrt_free(tmp);
    }
    unsetenv("TMPDIR");
    rmdir(tmpdir);
    CHECK(lstat(path, &sb) == 0 && S_ISFIFO(sb.st_mode), "the FIFO was replaced");
    unlink(path);
    unlink(got);
    /* a symbolic link: followed (the link stays), or refused by _at */
    snprintf(path, sizeof path, "%s/link", tmp_dir);
    snprintf(other, sizeof other, "%s/target", tmp_dir);
    put_file(other, "old", 3);
    CHECK(symlink("target", path) == 0, "symlink: %s", strerror(errno));
    CHECK(mrt_write_file_atomic(path, "new!", 4, &err) == MRT_OK, "%s", err.message);
    CHECK(lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode) && file_is(other, "new!", 4),
          "a link was replaced, or its target not written");
    int dfd = open(tmp_dir, O_RDONLY | O_DIRECTORY);
    CHECK(mrt_write_file_atomic_at(dfd, "link", "at", 2, &err) == MRT_ERR_IO &&
              strstr(err.message, "symbolic link (not followed, not replaced)"),
          "_at over a link: %s", err.message);
    CHECK(lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode) && file_is(other, "new!", 4),
          "_at replaced a link or wrote through it");
    unlink(other);
    CHECK(mrt_write_file_atomic(path, "x", 1, &err) == MRT_ERR_IO &&
              strstr(err.message, "symbolic link to nothing"),
          "a link to nothing: %s", err.message);
    CHECK(lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode), "a link to nothing was replaced");
    unlink(path);
    /* a 240-byte name: its temporary name must still fit in 255 bytes */
    char name[241], long_path[600];
    memset(name, 'n', 240);
    name[240] = '\0';
    CHECK(mrt_write_file_atomic_at(dfd, name, "long", 4, &err) == MRT_OK, "%s", err.message);
    snprintf(long_path, sizeof long_path, "%s/%s", tmp_dir, name);
    CHECK(file_is(long_path, "long", 4) && dir_entries(tmp_dir) == 1, "a 240-byte name");
    unlink(long_path);
    close(dfd);
}

static void test_info_json(void) {
    mrt_info info = {.version = 1, .width = 512, .height = 341, .rate_id = 2,
                     .fingerprint = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef},
                     .bytes = 276, .bpp = 276 * 8.0 / (512 * 341), .nstreams = 2,
                     .stream_bytes = {180, 83}};
    const char *want = "{\"version\": 1, \"width\": 512, \"height\": 341, \"bytes\": 276, "
                       "\"bpp\": 0.012647, \"rate_id\": 2, \"model\": \"0123456789abcdef\", "
                       "\"streams\": [180, 83]}";
    char buf[MRT_INFO_JSON_MAX];
    size_t n = mrt_info_json(&info, buf, sizeof buf);
    CHECK(strcmp(buf, want) == 0 && n == strlen(want), "got %s (%zu)", buf, n);
    /* Cut: NUL-terminated, and the length the whole text needs. */
    char small[20];
    CHECK(mrt_info_json(&info, small, sizeof small) == strlen(want) &&
              strlen(small) == sizeof small - 1 && strncmp(small, want, sizeof small - 1) == 0,
          "cut: %s", small);
    CHECK(mrt_info_json(&info, NULL, 0) == strlen(want), "length with no buffer");
}

int main(void) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/mrt-test-fileio-XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 2;
    }
    test_read();
    test_write();
    test_temp_file();
    test_hostile_outputs();
    test_info_json();
    rmdir(tmp_dir);
    return tu_finish("test_files");
}
