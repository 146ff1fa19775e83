/*
 * json.c -- the JSON writer of mrt_json.h, and mrt_json_quote.
 */
#include "mrt_json.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "mrt.h"
#include "status.h"

char *mrt_json_quote(const char *text) {
    size_t need = 3; /* the quotes and the NUL */
    for (const unsigned char *c = (const unsigned char *)text; *c; c++)
        need += *c == '"' || *c == '\\' ? 2 : *c < 0x20 ? 6 : 1;
    char *out = malloc(need), *o = out;
    if (!out) return NULL;
    *o++ = '"';
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        if (*c == '"' || *c == '\\') {
            *o++ = '\\';
            *o++ = (char)*c;
        } else if (*c < 0x20) {
            o += snprintf(o, 7, "\\u%04x", *c);
        } else {
            *o++ = (char)*c;
        }
    }
    *o++ = '"';
    *o = 0;
    return out;
}

void mrt_json_to_file(mrt_json *w, FILE *file) {
    memset(w, 0, sizeof *w);
    w->file = file;
    if (!file) w->failed = true;
}

void mrt_json_to_text(mrt_json *w) { memset(w, 0, sizeof *w); }

static void put(mrt_json *w, const char *s, size_t n) {
    if (w->failed) return;
    if (w->file) {
        if (fwrite(s, 1, n, w->file) != n) w->failed = true;
        return;
    }
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n + 1) cap *= 2;
        char *grown = realloc(w->text, cap);
        if (!grown) {
            w->failed = true;
            return;
        }
        w->text = grown, w->cap = cap;
    }
    memcpy(w->text + w->len, s, n);
    w->len += n;
    w->text[w->len] = '\0';
}

static void puts_json(mrt_json *w, const char *s) { put(w, s, strlen(s)); }

static void newline_indent(mrt_json *w, int level) {
    static const char spaces[] = "                                ";
    put(w, "\n", 1);
    for (int i = 0; i < level; i++) put(w, spaces, 2);
}

/* text as a JSON string */
static void put_quoted(mrt_json *w, const char *text) {
    if (w->failed) return;
    char *quoted = mrt_json_quote(text);
    if (!quoted) {
        w->failed = true;
        return;
    }
    puts_json(w, quoted);
    free(quoted);
}

/* The separator before a new member, and its key. */
static void begin_member(mrt_json *w, const char *key) {
    if (w->failed) return;
    if (w->depth == 0) {
        /* one value at the top level */
        if (w->members[0]++ || key) w->failed = true;
        return;
    }
    int d = w->depth;
    if (w->is_object[d] != (key != NULL)) {
        w->failed = true; /* a key is needed in an object and wrong elsewhere */
        return;
    }
    if (w->members[d]++) puts_json(w, w->lines[d] ? "," : ", ");
    if (w->lines[d]) newline_indent(w, d);
    if (key) {
        put_quoted(w, key);
        puts_json(w, ": ");
    }
}

static void open_container(mrt_json *w, const char *key, mrt_json_layout layout, bool object) {
    begin_member(w, key);
    if (w->failed) return;
    if (w->depth + 1 >= MRT_JSON_MAX_DEPTH) {
        w->failed = true;
        return;
    }
    puts_json(w, object ? "{" : "[");
    int d = ++w->depth;
    w->members[d] = 0;
    w->lines[d] = layout == MRT_JSON_LINES;
    w->is_object[d] = object;
}

void mrt_json_object(mrt_json *w, const char *key, mrt_json_layout layout) {
    open_container(w, key, layout, true);
}

void mrt_json_array(mrt_json *w, const char *key, mrt_json_layout layout) {
    open_container(w, key, layout, false);
}

void mrt_json_end(mrt_json *w) {
    if (w->failed) return;
    int d = w->depth;
    if (d == 0) {
        w->failed = true;
        return;
    }
    if (w->lines[d] && w->members[d]) newline_indent(w, d - 1);
    puts_json(w, w->is_object[d] ? "}" : "]");
    w->depth--;
}

void mrt_json_string(mrt_json *w, const char *key, const char *value) {
    if (!value) {
        mrt_json_null(w, key);
        return;
    }
    begin_member(w, key);
    put_quoted(w, value);
}

void mrt_json_int(mrt_json *w, const char *key, long long value) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", value);
    mrt_json_raw(w, key, buf);
}

void mrt_json_real(mrt_json *w, const char *key, const char *format, double value) {
    if (!isfinite(value)) {
        mrt_json_null(w, key);
        return;
    }
    char buf[512]; /* enough for any %f of a finite double */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    int n = snprintf(buf, sizeof buf, format, value);
#pragma GCC diagnostic pop
    if (n < 0 || (size_t)n >= sizeof buf) {
        w->failed = true;
        return;
    }
    mrt_json_raw(w, key, buf);
}

void mrt_json_bool(mrt_json *w, const char *key, bool value) {
    mrt_json_raw(w, key, value ? "true" : "false");
}

void mrt_json_null(mrt_json *w, const char *key) { mrt_json_raw(w, key, "null"); }

void mrt_json_raw(mrt_json *w, const char *key, const char *json) {
    begin_member(w, key);
    puts_json(w, json ? json : "null");
}

char *mrt_json_text(mrt_json *w) {
    char *text = w->text;
    bool ok = !w->failed && !w->file && w->depth == 0 && text;
    memset(w, 0, sizeof *w);
    if (!ok) {
        free(text);
        return NULL;
    }
    return text;
}

int mrt_json_finish(mrt_json *w) {
    bool ok = !w->failed && w->file && w->depth == 0 && fflush(w->file) == 0 &&
              !ferror(w->file);
    free(w->text);
    memset(w, 0, sizeof *w);
    return ok ? 0 : -1;
}
