/*
 * test_fileio.c -- the library's file helpers (mrt.h, "files") and the
 * header JSON that `mrt info` and the SQL function mrt_info() share.
 *
 *   - mrt_read_file / mrt_read_fd: contents, an empty file, the cap (from
 *     the size of a regular file, while reading for a pipe), a directory, a
 *     missing file; *out is NULL after every failure.
 *   - mrt_write_file_atomic(_at): contents, overwrite, no temporary file
 *     left, the mode of a new file, failures that leave nothing behind.
 *   - mrt_temp_file_create / _commit: replace and never-overwrite.
 *   - mrt_info_json: the exact text, and snprintf's rules when cut.
 *   - mrt_json_quote: what is escaped and what passes through.
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
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

static void test_json_quote(void) {
    static const struct { const char *in, *want; } cases[] = {
        {"", "\"\""},
        {"kodim01.png", "\"kodim01.png\""},
        {"a \"b\" c\\d", "\"a \\\"b\\\" c\\\\d\""},
        {"tab\tnl\n\x01\x1f", "\"tab\\u0009nl\\u000a\\u0001\\u001f\""},
        {"caf\xc3\xa9 \x7f/", "\"caf\xc3\xa9 \x7f/\""}, /* UTF-8 and DEL pass through */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = mrt_json_quote(cases[i].in);
        CHECK(got && strcmp(got, cases[i].want) == 0, "case %zu: got %s, want %s", i,
              got ? got : "(null)", cases[i].want);
        mrt_free(got);
    }
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
    test_info_json();
    test_json_quote();
    rmdir(tmp_dir);
    return tu_finish("test_fileio");
}
