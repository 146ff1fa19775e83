/*
 * progress.c -- the progress line of add, export and extract.
 *
 * On a terminal (stderr is a tty) and without --quiet, a long command shows
 * one line, rewritten in place at most four times a second:
 *
 *   add: 1,204/5,310 files, 3.1 files/s, 2.4 MB/s in, 812.3 KB stored, ETA 22m 05s
 *
 * and the per-file lines ("stored x", "unchanged y") are not printed, since
 * they would scroll the line away; warnings and errors still are (the line
 * is wiped first, and redrawn by the next update). Anywhere else, in a pipe
 * or a log file, there is no progress line and the per-file lines stay, as
 * a record a script can read.
 *
 * The estimate divides what is left by the rate so far: by bytes when the
 * total size is known (add: photos differ in size by 100x, and encode time
 * follows pixels, which follow bytes), else by items.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "mrtarchive.h"

static struct {
    bool shown;
    const char *verb, *items, *out_word;
    long total_items;
    long long total_bytes;
    double start, last_draw;
    long items_done;
    long long bytes_in, bytes_out;
    int drawn; /* characters on the line now */
} pg;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* 1234567 -> "1,234,567" */
static void with_commas(long long v, char *out, size_t size) {
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%lld", v < 0 ? -v : v);
    size_t o = 0;
    if (v < 0 && o + 1 < size) out[o++] = '-';
    for (int i = 0; i < n && o + 1 < size; i++) {
        out[o++] = digits[i];
        if ((n - 1 - i) % 3 == 0 && i != n - 1 && o + 1 < size) out[o++] = ',';
    }
    out[o] = '\0';
}

static void human_duration(double s, char *out, size_t size) {
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(out, size, "%ldh %02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60) snprintf(out, size, "%ldm %02lds", t / 60, t % 60);
    else snprintf(out, size, "%lds", t);
}

static int terminal_width(void) {
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
    return 80;
}

static void draw(void) {
    double t = now_s(), elapsed = t - pg.start;
    char line[512], done[32], total[32], part[96];
    size_t n = 0;
    with_commas(pg.items_done, done, sizeof done);
    if (pg.total_items >= 0) {
        with_commas(pg.total_items, total, sizeof total);
        n += (size_t)snprintf(line + n, sizeof line - n, "%s: %s/%s %s", pg.verb, done, total,
                              pg.items);
    } else {
        n += (size_t)snprintf(line + n, sizeof line - n, "%s: %s %s", pg.verb, done, pg.items);
    }
    if (elapsed >= 1.0) {
        n += (size_t)snprintf(line + n, sizeof line - n, ", %.1f %s/s", pg.items_done / elapsed,
                              pg.items);
        if (pg.bytes_in > 0) {
            human_bytes(pg.bytes_in / elapsed, part, sizeof part);
            n += (size_t)snprintf(line + n, sizeof line - n, ", %s/s in", part);
        }
    }
    if (pg.out_word) {
        human_bytes((double)pg.bytes_out, part, sizeof part);
        n += (size_t)snprintf(line + n, sizeof line - n, ", %s %s", part, pg.out_word);
    }
    /* ETA: by bytes when the total size is known, else by items */
    double left = -1;
    if (pg.total_bytes > 0 && pg.bytes_in > 0 && pg.bytes_in <= pg.total_bytes)
        left = (double)(pg.total_bytes - pg.bytes_in) * elapsed / (double)pg.bytes_in;
    else if (pg.total_items >= 0 && pg.items_done > 0 && pg.items_done <= pg.total_items)
        left = (double)(pg.total_items - pg.items_done) * elapsed / (double)pg.items_done;
    if (left >= 0 && elapsed >= 2.0) {
        human_duration(left, part, sizeof part);
        n += (size_t)snprintf(line + n, sizeof line - n, ", ETA %s", part);
    }
    if (n >= sizeof line) n = sizeof line - 1;
    /* one line: cut at the terminal's width, so that it never wraps */
    int width = terminal_width() - 1;
    if ((int)n > width) n = (size_t)width;
    line[n] = '\0';
    fprintf(stderr, "\r%s\033[K", line);
    fflush(stderr);
    pg.drawn = (int)n;
    pg.last_draw = t;
}

bool progress_wanted(void) { return !opt.quiet && isatty(STDERR_FILENO); }

void progress_begin(const char *verb, const char *items, const char *out_word, long total_items,
                    long long total_bytes) {
    memset(&pg, 0, sizeof pg);
    if (!progress_wanted()) return;
    pg.shown = true;
    pg.verb = verb, pg.items = items, pg.out_word = out_word;
    pg.total_items = total_items, pg.total_bytes = total_bytes;
    pg.start = now_s();
    draw();
}

bool progress_shown(void) { return pg.shown; }

void progress_update(long items_done, long long bytes_in, long long bytes_out) {
    if (!pg.shown) return;
    pg.items_done = items_done, pg.bytes_in = bytes_in, pg.bytes_out = bytes_out;
    /* the last item is always drawn: the line ends on the true count */
    if (now_s() - pg.last_draw >= 0.25 || items_done == pg.total_items) draw();
}

void progress_clear(void) {
    if (!pg.shown || !pg.drawn) return;
    fputs("\r\033[K", stderr);
    pg.drawn = 0;
}

void progress_end(void) {
    progress_clear();
    fflush(stderr);
    pg.shown = false;
}
