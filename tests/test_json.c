/*
 * test_json.c -- the JSON writer (mrt_json.h) and mrt_json_quote.
 *
 *   - mrt_json_quote: what is escaped and what passes through.
 *   - the writer in memory: the exact text of nested inline and one-per-line
 *     containers, every kind of value, NaN and infinities as null.
 *   - to a file: the same text as in memory.
 *   - misuse is an error, not bad JSON: a member without a key in an
 *     object, a key in an array, two top-level values, an end too many,
 *     a container left open, nesting past MRT_JSON_MAX_DEPTH; and the error
 *     is sticky.
 */
#include <math.h>

#include "mrt.h"
#include "mrt_json.h"
#include "testutil.h"

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

static void test_text(void) {
    mrt_json w;
    mrt_json_to_text(&w);
    mrt_json_object(&w, NULL, MRT_JSON_LINES);
    mrt_json_string(&w, "name", "a \"b\"");
    mrt_json_int(&w, "n", -42);
    mrt_json_real(&w, "x", "%.3f", 0.5);
    mrt_json_real(&w, "nan", "%.3f", NAN);
    mrt_json_real(&w, "inf", "%g", -INFINITY);
    mrt_json_bool(&w, "yes", true);
    mrt_json_null(&w, "none");
    mrt_json_string(&w, "null string", NULL);
    mrt_json_raw(&w, "raw", "[1, 2]");
    mrt_json_array(&w, "rows", MRT_JSON_LINES);
    mrt_json_object(&w, NULL, MRT_JSON_INLINE);
    mrt_json_int(&w, "i", 1);
    mrt_json_array(&w, "v", MRT_JSON_INLINE);
    mrt_json_int(&w, NULL, 2);
    mrt_json_int(&w, NULL, 3);
    mrt_json_end(&w);
    mrt_json_end(&w);
    mrt_json_array(&w, NULL, MRT_JSON_INLINE);
    mrt_json_end(&w);
    mrt_json_end(&w);
    mrt_json_object(&w, "empty", MRT_JSON_LINES);
    mrt_json_end(&w);
    mrt_json_end(&w);
    char *got = mrt_json_text(&w);
    const char *want = "{\n"
                       "  \"name\": \"a \\\"b\\\"\",\n"
                       "  \"n\": -42,\n"
                       "  \"x\": 0.500,\n"
                       "  \"nan\": null,\n"
                       "  \"inf\": null,\n"
                       "  \"yes\": true,\n"
                       "  \"none\": null,\n"
                       "  \"null string\": null,\n"
                       "  \"raw\": [1, 2],\n"
                       "  \"rows\": [\n"
                       "    {\"i\": 1, \"v\": [2, 3]},\n"
                       "    []\n"
                       "  ],\n"
                       "  \"empty\": {}\n"
                       "}";
    CHECK(got && strcmp(got, want) == 0, "got\n%s\nwant\n%s", got ? got : "(null)", want);
    mrt_free(got);

    /* a bare value at the top level */
    mrt_json_to_text(&w);
    mrt_json_string(&w, NULL, "tab\t");
    got = mrt_json_text(&w);
    CHECK(got && strcmp(got, "\"tab\\u0009\"") == 0, "top-level string: %s", got ? got : "(null)");
    mrt_free(got);

    /* nothing written is not JSON */
    mrt_json_to_text(&w);
    CHECK(mrt_json_text(&w) == NULL, "an empty writer gave text");
}

static void test_file(void) {
    FILE *f = tmpfile();
    CHECK(f != NULL, "tmpfile");
    if (!f) return;
    mrt_json w;
    mrt_json_to_file(&w, f);
    mrt_json_object(&w, NULL, MRT_JSON_INLINE);
    mrt_json_int(&w, "a", 1);
    mrt_json_array(&w, "b", MRT_JSON_LINES);
    mrt_json_real(&w, NULL, "%.1f", 2.25);
    mrt_json_end(&w);
    mrt_json_end(&w);
    CHECK(mrt_json_finish(&w) == 0, "finish");
    char buf[64] = {0};
    rewind(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    /* the indent counts levels, inline ones included */
    const char *want = "{\"a\": 1, \"b\": [\n    2.2\n  ]}";
    CHECK(n == strlen(want) && strcmp(buf, want) == 0, "got %s", buf);
    fclose(f);

    /* a container left open fails at finish */
    f = tmpfile();
    mrt_json_to_file(&w, f);
    mrt_json_array(&w, NULL, MRT_JSON_INLINE);
    CHECK(mrt_json_finish(&w) != 0, "an open array finished");
    fclose(f);
}

/* Runs one misuse after a valid start; the writer must refuse to give text. */
static void expect_misuse(const char *what, void (*misuse)(mrt_json *)) {
    mrt_json w;
    mrt_json_to_text(&w);
    misuse(&w);
    char *got = mrt_json_text(&w);
    CHECK(got == NULL, "%s gave %s", what, got);
    mrt_free(got);
}
static void no_key_in_object(mrt_json *w) {
    mrt_json_object(w, NULL, MRT_JSON_INLINE);
    mrt_json_int(w, NULL, 1);
    mrt_json_end(w);
}
static void key_in_array(mrt_json *w) {
    mrt_json_array(w, NULL, MRT_JSON_INLINE);
    mrt_json_int(w, "k", 1);
    mrt_json_end(w);
}
static void two_top_values(mrt_json *w) {
    mrt_json_int(w, NULL, 1);
    mrt_json_int(w, NULL, 2);
}
static void end_too_many(mrt_json *w) {
    mrt_json_array(w, NULL, MRT_JSON_INLINE);
    mrt_json_end(w);
    mrt_json_end(w);
}
static void left_open(mrt_json *w) { mrt_json_object(w, NULL, MRT_JSON_INLINE); }
static void too_deep(mrt_json *w) {
    for (int i = 0; i < MRT_JSON_MAX_DEPTH + 1; i++) mrt_json_array(w, NULL, MRT_JSON_INLINE);
    for (int i = 0; i < MRT_JSON_MAX_DEPTH + 1; i++) mrt_json_end(w);
}
/* sticky: a bad member, then valid calls that would close everything */
static void sticky(mrt_json *w) {
    mrt_json_object(w, NULL, MRT_JSON_INLINE);
    mrt_json_int(w, NULL, 1);
    mrt_json_int(w, "fine", 2);
    mrt_json_end(w);
}

static void test_misuse(void) {
    expect_misuse("a member without a key in an object", no_key_in_object);
    expect_misuse("a key in an array", key_in_array);
    expect_misuse("two top-level values", two_top_values);
    expect_misuse("an end too many", end_too_many);
    expect_misuse("an open object", left_open);
    expect_misuse("nesting past the limit", too_deep);
    expect_misuse("calls after an error", sticky);
}

int main(void) {
    test_json_quote();
    test_text();
    test_file();
    test_misuse();
    return tu_finish("test_json");
}
