/*
 * tools.c -- bench_rd's side of the classical codecs (rd.h): a private
 * temporary directory removed at exit and on signals, PPM files, running
 * each codec's own encoder and decoder (posix_spawnp, no shell, under a
 * timeout), and their quality settings.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rd.h"

extern char **environ;

double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory (%zu bytes)", n);
    return p;
}

void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) die("out of memory");
    return p;
}

/* ------------------------------------------------------ temporary files */

static char tmpdir[4096];
static volatile pid_t child_pid = 0;

/* Every name bench_rd ever creates in its directory: the cleanup removes
 * exactly these (never a recursive delete). */
static const char *const tmp_names[] = {
    "in.ppm", "in.png", "try.jpg", "try.webp", "try.avif", "try.jxl", "best.jpg", "best.webp",
    "best.avif", "best.jxl", "dec.ppm", "dec.png", "tool.log",
};
#define NTMP (sizeof tmp_names / sizeof tmp_names[0])
/* Paths built once so the signal handler needs no formatting. */
static char tmp_paths[NTMP][4200];

/* Async-signal-safe: unlink and rmdir only. */
static void cleanup_tmp(void) {
    if (!tmpdir[0]) return;
    for (size_t i = 0; i < NTMP; i++) unlink(tmp_paths[i]);
    rmdir(tmpdir);
    tmpdir[0] = 0;
}

static void on_signal(int sig) {
    if (child_pid > 0) kill(-child_pid, SIGKILL); /* the tool's process group */
    cleanup_tmp();
    _exit(128 + sig);
}

void make_tmpdir(void) {
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/bench_rd.XXXXXX", base);
    if (!mkdtemp(tmpdir)) {
        tmpdir[0] = 0;
        die("cannot create a temporary directory under %s: %s", base, strerror(errno));
    }
    for (size_t i = 0; i < NTMP; i++)
        snprintf(tmp_paths[i], sizeof tmp_paths[i], "%s/%s", tmpdir, tmp_names[i]);
    atexit(cleanup_tmp);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

const char *tmp_path(const char *name) {
    for (size_t i = 0; i < NTMP; i++)
        if (!strcmp(tmp_names[i], name)) return tmp_paths[i];
    die("internal: unknown temporary name %s", name);
    return NULL;
}

void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_rd: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

/* ------------------------------------------------------------ PPM files */

void write_ppm(const mrt_image *img, const char *path) {
    FILE *f = fopen(path, "wb");
    if (!f) die("%s: %s", path, strerror(errno));
    fprintf(f, "P6\n%d %d\n255\n", img->width, img->height);
    size_t n = (size_t)img->width * img->height * 3;
    if (fwrite(img->rgb, 1, n, f) != n || fclose(f) != 0) die("%s: write failed", path);
}

/* One header number, skipping whitespace and '#' comments. */
static int ppm_number(FILE *f, long *v) {
    int c = fgetc(f);
    for (;;) {
        while (c == ' ' || c == '\t' || c == '\n' || c == '\r') c = fgetc(f);
        if (c != '#') break;
        while (c != '\n' && c != EOF) c = fgetc(f);
    }
    if (c < '0' || c > '9') return 0;
    *v = 0;
    while (c >= '0' && c <= '9') {
        if (*v > 100000000) return 0;
        *v = *v * 10 + (c - '0');
        c = fgetc(f);
    }
    /* exactly one whitespace byte ends the header's last number */
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Binary PPM (P6), maxval 255 or up to 65535 (big-endian samples, scaled
 * to 8 bits with rounding): what djpeg, dwebp and djxl write. */
int read_ppm(const char *path, mrt_image *out, char *why, size_t whylen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, whylen, "%s: %s", path, strerror(errno));
        return 0;
    }
    long w, h, maxval;
    if (fgetc(f) != 'P' || fgetc(f) != '6' || !ppm_number(f, &w) || !ppm_number(f, &h) ||
        !ppm_number(f, &maxval) || w < 1 || h < 1 || w > MRT_MAX_SIDE || h > MRT_MAX_SIDE ||
        maxval < 1 || maxval > 65535) {
        snprintf(why, whylen, "%s: not a binary PPM this program reads", path);
        fclose(f);
        return 0;
    }
    size_t n = (size_t)w * h * 3, bps = maxval > 255 ? 2 : 1;
    uint8_t *raw = xmalloc(n * bps);
    size_t got = fread(raw, 1, n * bps, f);
    fclose(f);
    if (got != n * bps) {
        free(raw);
        snprintf(why, whylen, "%s: truncated PPM", path);
        return 0;
    }
    out->width = (int)w;
    out->height = (int)h;
    out->rgb = xmalloc(n);
    for (size_t i = 0; i < n; i++) {
        long v = bps == 2 ? raw[2 * i] << 8 | raw[2 * i + 1] : raw[i];
        out->rgb[i] = (uint8_t)((v * 255 + maxval / 2) / maxval);
    }
    free(raw);
    return 1;
}

long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* --------------------------------------------------------- running tools */

double tool_timeout = 120; /* --timeout: seconds one tool call may take */

/* Runs argv (PATH lookup, no shell) with stdin from /dev/null and stdout +
 * stderr into tool.log; waits at most tool_timeout seconds, then kills it.
 * Returns 1 on exit status 0; otherwise 0 with the reason (and the log's
 * first line) in `why`. *seconds gets the wall time. */
static int run_tool(char *const argv[], double *seconds, char *why, size_t whylen) {
    const char *log = tmp_path("tool.log");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    /* its own process group, so a timeout or a signal kills whatever the
     * tool started too (a wrapper script's children) */
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    pid_t pid;
    double t0 = now();
    int rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        snprintf(why, whylen, "cannot run %s: %s", argv[0], strerror(rc));
        return 0;
    }
    child_pid = pid;
    int status = 0, timed_out = 0;
    /* Poll instead of blocking so the timeout needs no signals or threads;
     * 1 ms steps keep the timing error well under a tool's run time. */
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) {
            child_pid = 0;
            snprintf(why, whylen, "waitpid %s: %s", argv[0], strerror(errno));
            return 0;
        }
        if (now() - t0 > tool_timeout) {
            kill(-pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
            timed_out = 1;
            break;
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    child_pid = 0;
    *seconds = now() - t0;
    if (!timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0) return 1;
    char first[200] = "";
    FILE *f = fopen(log, "r");
    if (f) {
        if (!fgets(first, sizeof first, f)) first[0] = 0;
        fclose(f);
        first[strcspn(first, "\r\n")] = 0;
    }
    if (timed_out)
        snprintf(why, whylen, "%s timed out after %.0f s", argv[0], tool_timeout);
    else if (WIFEXITED(status))
        snprintf(why, whylen, "%s exited with status %d: %s", argv[0], WEXITSTATUS(status), first);
    else
        snprintf(why, whylen, "%s killed by signal %d", argv[0],
                 WIFSIGNALED(status) ? WTERMSIG(status) : -1);
    return 0;
}

/* Is `name` an executable file in a PATH directory? */
int in_path(const char *name) {
    const char *path = getenv("PATH");
    if (!path) path = "/usr/bin:/bin";
    char buf[4096];
    while (*path) {
        size_t len = strcspn(path, ":");
        if (len > 0 && len < sizeof buf - strlen(name) - 2) {
            memcpy(buf, path, len);
            buf[len] = '/';
            strcpy(buf + len + 1, name);
            struct stat st;
            if (stat(buf, &st) == 0 && S_ISREG(st.st_mode) && access(buf, X_OK) == 0) return 1;
        }
        path += len;
        if (*path == ':') path++;
    }
    return 0;
}

/* --------------------------------------------------------- the codecs */


const codec codecs[NCODECS] = {
    {"jpeg", "JPEG (libjpeg-turbo)", "cjpeg", "djpeg", "jpg", 0, 0, 100, "cjpeg -quality",
     "-version", "cjpeg -quality Q -optimize (baseline, 4:2:0)"},
    {"webp", "WebP (libwebp)", "cwebp", "dwebp", "webp", 0, 0, 101, "cwebp -q", "-version",
     "cwebp -m 6 -q Q"},
    {"avif", "AVIF (libavif, aom)", "avifenc", "avifdec", "avif", 1, 1, 64,
     "avifenc quantizer (--min = --max, 0 best .. 63 worst)", "--version",
     "avifenc -s 6 -y 420 --min Q --max Q"},
    {"jxl", "JPEG XL (libjxl)", "cjxl", "djxl", "jxl", 0, 0, 256, "cjxl -d (distance)",
     "--version", "cjxl -e 7 -d D"},
};

/* JPEG XL's distance runs from 25 (the largest cjxl accepts) down to 0.1,
 * log-spaced over the 256 steps (about 2.2 % apart). */
double native_param(int c, int q) {
    switch (c) {
    case C_JPEG: return q + 1;           /* 1 .. 100 */
    case C_WEBP: return q;               /* 0 .. 100 */
    case C_AVIF: return 63 - q;          /* quantizer 63 .. 0 */
    default: return 25.0 * pow(0.1 / 25.0, q / 255.0);
    }
}

int encode_with(int c, int q, const char *in, const char *out, double *sec, char *why,
                       size_t whylen) {
    char p[32];
    double v = native_param(c, q);
    if (c == C_JXL)
        snprintf(p, sizeof p, "%.4f", v);
    else
        snprintf(p, sizeof p, "%d", (int)v);
    switch (c) {
    case C_JPEG: {
        char *argv[] = {"cjpeg", "-quality", p, "-optimize", "-outfile", (char *)out, (char *)in,
                        NULL};
        return run_tool(argv, sec, why, whylen);
    }
    case C_WEBP: {
        /* -m 6: the slowest, smallest method; single-threaded by default */
        char *argv[] = {"cwebp", "-quiet", "-m", "6", "-q", p, (char *)in, "-o", (char *)out,
                        NULL};
        return run_tool(argv, sec, why, whylen);
    }
    case C_AVIF: {
        /* 4:2:0: at these rates chroma resolution is the first thing worth
         * giving up (avifenc's default for PNG input is 4:4:4) */
        char *argv[] = {"avifenc", "-j", "1", "-s", "6", "-y", "420", "--min", p, "--max", p,
                        (char *)in, (char *)out, NULL};
        return run_tool(argv, sec, why, whylen);
    }
    default: {
        char *argv[] = {"cjxl", (char *)in, (char *)out, "-e", "7", "-d", p, "--num_threads=0",
                        "--quiet", NULL};
        return run_tool(argv, sec, why, whylen);
    }
    }
}

int decode_with(int c, const char *in, const char *out, double *sec, char *why,
                       size_t whylen) {
    switch (c) {
    case C_JPEG: {
        char *argv[] = {"djpeg", "-ppm", "-outfile", (char *)out, (char *)in, NULL};
        return run_tool(argv, sec, why, whylen);
    }
    case C_WEBP: {
        char *argv[] = {"dwebp", "-quiet", (char *)in, "-ppm", "-o", (char *)out, NULL};
        return run_tool(argv, sec, why, whylen);
    }
    case C_AVIF: {
        char *argv[] = {"avifdec", "-j", "1", "-d", "8", (char *)in, (char *)out, NULL};
        return run_tool(argv, sec, why, whylen);
    }
    default: {
        /* djxl's --num_threads=0 means "machine default": ask for 1 */
        char *argv[] = {"djxl", (char *)in, (char *)out, "--num_threads=1",
                        "--bits_per_sample=8", NULL};
        return run_tool(argv, sec, why, whylen);
    }
    }
}

/* The tool's version line, for the JSON description ("" if unknown). */
void tool_version(int c, char *buf, size_t len) {
    char *argv[] = {(char *)codecs[c].enc, (char *)codecs[c].version_flag, NULL};
    double sec;
    char why[256];
    buf[0] = 0;
    run_tool(argv, &sec, why, sizeof why); /* some print their version with status 1 */
    FILE *f = fopen(tmp_path("tool.log"), "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (line[0]) {
            /* cut to fit on purpose: a version line, not data */
            size_t n = strlen(line);
            if (n >= len) n = len - 1;
            memcpy(buf, line, n);
            buf[n] = 0;
            break;
        }
    }
    fclose(f);
}

