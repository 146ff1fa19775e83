/*
 * serve.c -- `mrtarchive serve`: the archive as a local web gallery, over
 * libmicrohttpd.
 *
 *   GET /                    the gallery: a page of thumbnails; ?q= searches
 *                            names, ?sort=name|date|size, ?after=ID the next page
 *   GET /photo/ID            one photo: decoded, its numbers, the original beside
 *                            it when the archive kept it, a PNG download
 *   GET /image/ID.png        the decoded photo (?download=1: as an attachment)
 *   GET /thumb/ID.png        its thumbnail
 *   GET /original/ID         the original file's bytes, when kept
 *   GET /stats               the archive's numbers
 *
 * Why it is built this way:
 *   - Read-only over HTTP: GET and HEAD only (405 otherwise), nothing a
 *     request says changes the archive. Names and queries reach SQL only as
 *     bound parameters and HTML only escaped; IDs are parsed as integers;
 *     no path in a URL touches the file system.
 *   - Bounded: a pool of WORKERS threads answers requests (each with its own
 *     SQLite connection), at most MAX_CONNECTIONS connections, requests of
 *     at most REQUEST_MEMORY bytes and URLs of MAX_URL bytes (414 past it),
 *     30 s of idleness per connection.
 *   - Paging by keyset, not OFFSET: a page starts after the last photo of
 *     the one before (by name, by date and id, by size and id, each walked
 *     in an index), so page 1,000 of 100,000 photos costs what page 1 does.
 *   - Thumbnails are decoded once (mrt_decode_scaled: 1/2, 1/4 or 1/8, the
 *     smallest that keeps THUMB_SIDE pixels on the longer side) and cached in
 *     the archive's `thumbnails` table, keyed by image and model
 *     fingerprint; a background thread decodes those not cached yet, in
 *     gallery order, while pages are served (a missing one is decoded when
 *     asked for). A read-only archive is served without the cache.
 *   - Another `mrtarchive add` may write while this serves (WAL: readers
 *     never block the writer; the cache's writes wait their turn).
 *   - SIGINT/SIGTERM stop it: the daemon finishes, the thumbnailer stops
 *     between two photos, every connection closes, exit 0.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mrtarchive.h"
#include "schema_sql.h"

#define WORKERS 4
#define MAX_CONNECTIONS 64
#define REQUEST_MEMORY (32 * 1024)
#define MAX_URL 2048
#define PAGE_SIZE 60
#define THUMB_SIDE 192

static struct {
    bool writable;          /* the thumbnail cache can be written */
    bool cache;             /* the archive has the thumbnails table */
    mrt_model_set *models;  /* shared: libmrt's model sets are thread-safe */
    volatile bool stopping;
    pthread_mutex_t lock;   /* conns[] */
    sqlite3 *conns[WORKERS + 8];
    int nconns;
} sv = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* --------------------------------------------------------------- database */

/* Each thread's own connection, opened on first use and closed at the end
 * (serve_close_all). */
static __thread sqlite3 *thread_db;

static sqlite3 *conn(void) {
    if (thread_db) return thread_db;
    sqlite3 *c = NULL;
    int flags = (sv.writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY) | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(opt.archive, &c, flags, NULL) != SQLITE_OK) {
        msg("%s: cannot open: %s", opt.archive, c ? sqlite3_errmsg(c) : "out of memory");
        sqlite3_close(c);
        return NULL;
    }
    sqlite3_busy_timeout(c, 5000);
    pthread_mutex_lock(&sv.lock);
    int room = sv.nconns < (int)(sizeof sv.conns / sizeof sv.conns[0]);
    if (room) sv.conns[sv.nconns++] = c;
    pthread_mutex_unlock(&sv.lock);
    if (!room) { /* more threads than libmicrohttpd was asked for */
        sqlite3_close(c);
        return NULL;
    }
    return thread_db = c;
}

static void close_all(void) {
    pthread_mutex_lock(&sv.lock);
    for (int i = 0; i < sv.nconns; i++) sqlite3_close(sv.conns[i]);
    sv.nconns = 0;
    pthread_mutex_unlock(&sv.lock);
}

static sqlite3_stmt *query(sqlite3 *c, const char *sql) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c, sql, -1, &st, NULL) != SQLITE_OK) {
        msg("serve: %s", sqlite3_errmsg(c));
        return NULL;
    }
    return st;
}

/* ------------------------------------------------------------------ text */

/* HTML-escaped text (names come from the archive: anything but control
 * characters, which ingest refuses). */
static void put_html(sqlite3_str *s, const char *text) {
    for (const char *c = text ? text : ""; *c; c++) {
        switch (*c) {
        case '&': sqlite3_str_appendall(s, "&amp;"); break;
        case '<': sqlite3_str_appendall(s, "&lt;"); break;
        case '>': sqlite3_str_appendall(s, "&gt;"); break;
        case '"': sqlite3_str_appendall(s, "&quot;"); break;
        case '\'': sqlite3_str_appendall(s, "&#39;"); break;
        default: sqlite3_str_appendchar(s, 1, *c);
        }
    }
}

/* text percent-encoded for a URL's query (everything but RFC 3986's
 * unreserved characters) */
static void put_url(sqlite3_str *s, const char *text) {
    for (const unsigned char *c = (const unsigned char *)(text ? text : ""); *c; c++) {
        if (isalnum(*c) || *c == '-' || *c == '_' || *c == '.' || *c == '~')
            sqlite3_str_appendchar(s, 1, (char)*c);
        else
            sqlite3_str_appendf(s, "%%%02X", *c);
    }
}

/* The row of `sql` (one "?1" for the id) for image id: 1 with *st on it,
 * 0 none (no such image), -1 an error (message from the connection). */
static int row_of(sqlite3 *c, const char *sql, sqlite3_int64 id, sqlite3_stmt **st) {
    if (!(*st = query(c, sql))) return -1;
    sqlite3_bind_int64(*st, 1, id);
    int rc = sqlite3_step(*st);
    if (rc == SQLITE_ROW) return 1;
    sqlite3_finalize(*st);
    *st = NULL;
    return rc == SQLITE_DONE ? 0 : -1;
}

static const char style[] =
    "<style>"
    "body{font:15px/1.4 system-ui,sans-serif;margin:0;background:#f4f4f2;color:#222}"
    "header{display:flex;flex-wrap:wrap;gap:1em;align-items:center;padding:.7em 1.2em;"
    "background:#263238;color:#eee}header a{color:#eee}header h1{font-size:1.2em;margin:0}"
    "form{display:flex;gap:.4em;margin-bottom:1em}input,select,button{font:inherit}"
    "main{padding:1em 1.2em}"
    ".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:12px}"
    "figure{margin:0;background:#fff;border-radius:4px;box-shadow:0 1px 2px #0002;"
    "overflow:hidden}figure a{display:flex;height:200px;align-items:center;"
    "justify-content:center;background:#ddd}"
    "figure img{max-width:100%;max-height:200px}"
    "figcaption{padding:.3em .5em;font-size:.85em;overflow-wrap:anywhere}"
    ".photo img{max-width:100%;height:auto;background:#ddd}.pair{display:flex;flex-wrap:wrap;"
    "gap:1em}.pair>div{flex:1 1 400px}table{border-collapse:collapse}td,th{text-align:left;"
    "padding:.2em .8em .2em 0;vertical-align:top}.next{margin:1.5em 0;font-size:1.1em}"
    "</style>";

static void page_start(sqlite3_str *s, const char *title) {
    sqlite3_str_appendall(s, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                             "<meta name=\"viewport\" content=\"width=device-width\"><title>");
    put_html(s, title);
    sqlite3_str_appendall(s, " — mrtarchive</title>");
    sqlite3_str_appendall(s, style);
    sqlite3_str_appendall(s, "</head><body><header><h1><a href=\"/\">");
    const char *base = strrchr(opt.archive, '/');
    put_html(s, base ? base + 1 : opt.archive);
    sqlite3_str_appendall(s, "</a></h1><a href=\"/stats\">stats</a></header><main>");
}

static void page_end(sqlite3_str *s) { sqlite3_str_appendall(s, "</main></body></html>\n"); }

/* --------------------------------------------------------------- replies */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned int status, const char *type,
                             void *body, size_t len, const char *cache, const char *disposition) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
                            "form-action 'self'");
    MHD_add_response_header(r, "Cache-Control", cache ? cache : "no-cache");
    if (disposition) MHD_add_response_header(r, "Content-Disposition", disposition);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* An sqlite3_str's text as the reply (HTML), or 500 if it ran out of memory. */
static enum MHD_Result reply_html(struct MHD_Connection *c, unsigned int status, sqlite3_str *s) {
    int len = sqlite3_str_length(s);
    char *text = sqlite3_str_finish(s);
    if (!text) return MHD_NO;
    /* libmicrohttpd frees with free(): copy out of SQLite's allocator */
    char *body = malloc((size_t)len + 1);
    if (body) memcpy(body, text, (size_t)len + 1);
    sqlite3_free(text);
    if (!body) return MHD_NO;
    return reply(c, status, "text/html; charset=utf-8", body, (size_t)len, NULL, NULL);
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned int status,
                                   const char *title, const char *detail) {
    sqlite3_str *s = sqlite3_str_new(NULL);
    page_start(s, title);
    sqlite3_str_appendall(s, "<h2>");
    put_html(s, title);
    sqlite3_str_appendall(s, "</h2><p>");
    put_html(s, detail);
    sqlite3_str_appendall(s, "</p><p><a href=\"/\">The gallery</a></p>");
    page_end(s);
    return reply_html(c, status, s);
}

static enum MHD_Result not_found(struct MHD_Connection *c) {
    return reply_error(c, MHD_HTTP_NOT_FOUND, "Not found", "There is no such page or photo.");
}

/* "123" -> 123; anything else (signs, spaces, leading zeros, overflow) -1 */
static sqlite3_int64 parse_id(const char *s, size_t len) {
    if (len == 0 || len > 18 || (len > 1 && s[0] == '0')) return -1;
    sqlite3_int64 v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* "/prefix<ID><suffix>" -> ID, or -1 */
static sqlite3_int64 id_in(const char *url, const char *prefix, const char *suffix) {
    size_t lp = strlen(prefix), ls = strlen(suffix), lu = strlen(url);
    if (lu <= lp + ls || strncmp(url, prefix, lp) != 0 || strcmp(url + lu - ls, suffix) != 0)
        return -1;
    return parse_id(url + lp, lu - lp - ls);
}

/* --------------------------------------------------------------- decoding */

/* The scale of an image's thumbnail: the largest of 1/2, 1/4, 1/8 that
 * keeps THUMB_SIDE pixels on its longer side (1: a small image as it is). */
static int thumb_scale(int width, int height) {
    int side = width > height ? width : height, scale = 1;
    while (scale < 8 && side / (scale * 2) >= THUMB_SIDE) scale *= 2;
    return scale;
}

/* A bitstream decoded at 1/scale, as PNG (malloc'd); NULL with *why set. */
static uint8_t *decode_png(const uint8_t *bits, size_t nbits, int scale, int threads,
                           size_t *len, char *why, size_t whylen) {
    mrt_error err = {0};
    mrt_info info;
    const mrt_model *model = NULL;
    mrt_image img = {0};
    uint8_t *png = NULL;
    if (mrt_info_read(bits, nbits, &info, &err) != MRT_OK ||
        mrt_model_set_for_stream(sv.models, info.fingerprint, &model, &err) != MRT_OK ||
        mrt_decode_scaled(model, bits, nbits, scale, threads, &img, &err) != MRT_OK ||
        mrt_image_write_png_memory(&img, &png, len, &err) != MRT_OK) {
        snprintf(why, whylen, "%s", err.message);
        png = NULL;
    }
    mrt_image_free(&img);
    return png;
}

/* Image id's thumbnail: from the cache, or decoded (and cached). NULL with
 * *why set when the image does not exist (why = "") or cannot be decoded. */
static uint8_t *thumbnail(sqlite3 *c, sqlite3_int64 id, int threads, size_t *len, char *why,
                          size_t whylen) {
    why[0] = '\0';
    uint8_t *png = NULL;
    if (sv.cache) {
        sqlite3_stmt *st = query(c, "SELECT t.png FROM thumbnails t JOIN images i USING (id) "
                                    "WHERE t.id = ?1 AND t.model = i.model");
        if (!st) return NULL;
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) == SQLITE_ROW) {
            *len = (size_t)sqlite3_column_bytes(st, 0);
            png = malloc(*len ? *len : 1);
            if (png) memcpy(png, sqlite3_column_blob(st, 0), *len);
        }
        sqlite3_finalize(st);
        if (png) return png;
    }
    sqlite3_stmt *st = query(c, "SELECT data, width, height, model FROM images WHERE id = ?1");
    if (!st) return NULL;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return NULL;
    }
    int scale = thumb_scale(sqlite3_column_int(st, 1), sqlite3_column_int(st, 2));
    char model[32];
    snprintf(model, sizeof model, "%s", (const char *)sqlite3_column_text(st, 3));
    png = decode_png(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), scale, threads,
                     len, why, whylen);
    sqlite3_finalize(st);
    if (png && sv.cache && sv.writable) {
        /* a second decoder of the same photo (a request racing the
         * background thread) just loses the insert */
        sqlite3_stmt *ins = query(c, "INSERT OR IGNORE INTO thumbnails(id, model, scale, png) "
                                     "VALUES (?1, ?2, ?3, ?4)");
        if (ins) {
            sqlite3_bind_int64(ins, 1, id);
            sqlite3_bind_text(ins, 2, model, -1, SQLITE_STATIC);
            sqlite3_bind_int(ins, 3, scale);
            sqlite3_bind_blob(ins, 4, png, (int)*len, SQLITE_STATIC);
            sqlite3_step(ins); /* busy past the timeout: served uncached, tried again later */
            sqlite3_finalize(ins);
        }
    }
    return png;
}

/* The background thumbnailer: photos without a cached thumbnail, in gallery
 * order, one at a time, at low priority; then every few seconds, for what a
 * concurrent add stores. */
static void *thumbnailer(void *unused) {
    (void)unused;
    pthread_setname_np(pthread_self(), "mrt-thumbnails");
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10); /* requests come first */
    sqlite3 *c = conn();
    while (c && !sv.stopping) {
        sqlite3_stmt *st = query(c, "SELECT id FROM images i WHERE NOT EXISTS (SELECT 1 FROM "
                                    "thumbnails t WHERE t.id = i.id AND t.model = i.model) "
                                    "ORDER BY name LIMIT 32");
        if (!st) break;
        sqlite3_int64 ids[32];
        int n = 0;
        while (n < 32 && sqlite3_step(st) == SQLITE_ROW) ids[n++] = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        int made = 0;
        for (int i = 0; i < n && !sv.stopping; i++) {
            size_t len;
            char why[sizeof ((mrt_error *)0)->message];
            uint8_t *png = thumbnail(c, ids[i], 1, &len, why, sizeof why);
            made += png != NULL;
            free(png);
        }
        /* nothing to do, or nothing that decodes: wait for new photos */
        for (int t = 0; (n == 0 || made == 0) && t < 20 && !sv.stopping; t++) usleep(100000);
    }
    return NULL;
}

/* ------------------------------------------------------------------ pages */

static const char *arg(struct MHD_Connection *c, const char *key) {
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
}

/* The gallery: PAGE_SIZE photos after ?after=ID in the chosen order. */
static enum MHD_Result gallery(struct MHD_Connection *mc, sqlite3 *c) {
    const char *q = arg(mc, "q"), *sort = arg(mc, "sort"), *after_s = arg(mc, "after");
    if (q && !*q) q = NULL;
    if (q && strlen(q) > 256) return reply_error(mc, MHD_HTTP_BAD_REQUEST, "Bad request",
                                                 "The search is longer than 256 bytes.");
    /* each order is (key, id) walked in an index (sql/schema.sql) */
    static const struct {
        const char *name, *label, *key, *cmp, *dir;
    } orders[] = {
        {"name", "name", "name", ">", "ASC"},
        {"date", "newest first", "ifnull(mtime, -1)", "<", "DESC"},
        {"size", "largest first", "sz", "<", "DESC"},
    };
    int o = 0;
    for (int i = 0; sort && i < 3; i++)
        if (strcmp(sort, orders[i].name) == 0) o = i;
    sqlite3_int64 after = after_s ? parse_id(after_s, strlen(after_s)) : -1;
    if (after_s && after < 0)
        return reply_error(mc, MHD_HTTP_BAD_REQUEST, "Bad request", "after= takes a photo's id.");

    /* The SQL is built from the fixed table above only; q and after are
     * bound. LIKE's wildcards in q are escaped, so q matches literally. The
     * keyset condition is spelled "key >= k AND (key, id) > (k, id)" (or
     * with <): the first term lets SQLite seek in the index, also for the
     * date's expression index, where a row value alone makes it scan. */
    char sql[1024], keyset[512] = "";
    if (after >= 0)
        snprintf(keyset, sizeof keyset,
                 "AND %s %s= (SELECT %s FROM images WHERE id = ?2) AND (%s, id) %s (SELECT %s, id "
                 "FROM images WHERE id = ?2) ",
                 orders[o].key, orders[o].cmp, orders[o].key, orders[o].key, orders[o].cmp,
                 orders[o].key);
    snprintf(sql, sizeof sql,
             "SELECT id, name, width, height FROM images WHERE %s %sORDER BY %s %s, id %s "
             "LIMIT %d",
             q ? "name LIKE ?1 ESCAPE '\\'" : "?1 IS NULL", keyset, orders[o].key,
             orders[o].dir, orders[o].dir, PAGE_SIZE + 1);
    sqlite3_stmt *st = query(c, sql);
    if (!st) return reply_error(mc, MHD_HTTP_INTERNAL_SERVER_ERROR, "Error", sqlite3_errmsg(c));
    char *pattern = NULL;
    if (q) {
        size_t n = strlen(q);
        pattern = malloc(2 * n + 3);
        if (!pattern) {
            sqlite3_finalize(st);
            return MHD_NO;
        }
        size_t k = 0;
        pattern[k++] = '%';
        for (size_t i = 0; i < n; i++) {
            if (q[i] == '%' || q[i] == '_' || q[i] == '\\') pattern[k++] = '\\';
            pattern[k++] = q[i];
        }
        pattern[k++] = '%';
        pattern[k] = '\0';
        sqlite3_bind_text(st, 1, pattern, -1, free);
    }
    if (after >= 0) sqlite3_bind_int64(st, 2, after);

    sqlite3_str *s = sqlite3_str_new(NULL);
    page_start(s, q ? q : "Photos");
    sqlite3_str_appendall(s, "<form method=\"get\" action=\"/\"><input type=\"search\" name=\"q\" "
                             "placeholder=\"search names\" value=\"");
    put_html(s, q);
    sqlite3_str_appendall(s, "\"><select name=\"sort\">");
    for (int i = 0; i < 3; i++)
        sqlite3_str_appendf(s, "<option value=\"%s\"%s>%s</option>", orders[i].name,
                            i == o ? " selected" : "", orders[i].label);
    sqlite3_str_appendall(s, "</select><button>Show</button></form><div class=\"grid\">");
    int n = 0;
    sqlite3_int64 last = -1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (n == PAGE_SIZE) { /* the first of the next page: there is one */
            n++;
            break;
        }
        sqlite3_int64 id = sqlite3_column_int64(st, 0);
        const char *name = (const char *)sqlite3_column_text(st, 1);
        int w = sqlite3_column_int(st, 2), h = sqlite3_column_int(st, 3);
        int scale = thumb_scale(w, h), tw = (w + scale - 1) / scale, th = (h + scale - 1) / scale;
        sqlite3_str_appendf(s, "<figure><a href=\"/photo/%lld\"><img src=\"/thumb/%lld.png\" "
                               "width=\"%d\" height=\"%d\" loading=\"lazy\" alt=\"",
                            (long long)id, (long long)id, tw, th);
        put_html(s, name);
        sqlite3_str_appendall(s, "\"></a><figcaption>");
        put_html(s, name);
        sqlite3_str_appendall(s, "</figcaption></figure>");
        last = id;
        n++;
    }
    sqlite3_finalize(st);
    sqlite3_str_appendall(s, "</div>");
    if (n == 0)
        sqlite3_str_appendall(s, q ? "<p>No photo's name contains that.</p>"
                                   : "<p>No photos here (<code>mrtarchive add</code> stores "
                                     "some).</p>");
    if (n > PAGE_SIZE) {
        sqlite3_str_appendf(s, "<p class=\"next\"><a rel=\"next\" href=\"/?sort=%s&amp;after=%lld",
                            orders[o].name, (long long)last);
        if (q) {
            sqlite3_str_appendall(s, "&amp;q=");
            put_url(s, q);
        }
        sqlite3_str_appendall(s, "\">Next page →</a></p>");
    }
    page_end(s);
    return reply_html(mc, MHD_HTTP_OK, s);
}

/* A rate point's name for a fingerprint (hex), if a model of the set has it. */
static void rate_point_name(const char *model_hex, char *out, size_t size) {
    const mrt_model *m = model_for_hex(sv.models, model_hex);
    const char *name = m ? mrt_model_set_rate_name(sv.models, m) : NULL;
    snprintf(out, size, "%s", name ? name : "unknown");
}

static enum MHD_Result photo_page(struct MHD_Connection *mc, sqlite3 *c, sqlite3_int64 id) {
    sqlite3_stmt *st;
    int found = row_of(c, "SELECT name, mtime, sz, format, width, height, model, rate_id, "
                          "length(data), EXISTS (SELECT 1 FROM originals o WHERE o.id = i.id) "
                          "FROM images i WHERE id = ?1", id, &st);
    if (found <= 0)
        return found ? reply_error(mc, MHD_HTTP_INTERNAL_SERVER_ERROR, "Error", sqlite3_errmsg(c))
                     : not_found(mc);
    const char *name = (const char *)sqlite3_column_text(st, 0);
    long long sz = sqlite3_column_int64(st, 2), nbits = sqlite3_column_int64(st, 8);
    int w = sqlite3_column_int(st, 4), h = sqlite3_column_int(st, 5);
    int original = sqlite3_column_int(st, 9);
    char stored[32], orig[32], rate[64];
    human_bytes((double)nbits, stored, sizeof stored);
    human_bytes((double)sz, orig, sizeof orig);
    rate_point_name((const char *)sqlite3_column_text(st, 6), rate, sizeof rate);
    sqlite3_str *s = sqlite3_str_new(NULL);
    page_start(s, name);
    sqlite3_str_appendall(s, "<h2>");
    put_html(s, name);
    sqlite3_str_appendall(s, "</h2><div class=\"pair photo\"><div><img src=\"/image/");
    sqlite3_str_appendf(s, "%lld.png\" width=\"%d\" height=\"%d\" alt=\"", (long long)id, w, h);
    put_html(s, name);
    sqlite3_str_appendall(s, "\"><p>Decoded from the archive</p></div>");
    if (original)
        sqlite3_str_appendf(s, "<div><img src=\"/original/%lld\" width=\"%d\" height=\"%d\" "
                               "alt=\"the original\"><p>The original, as kept</p></div>",
                            (long long)id, w, h);
    sqlite3_str_appendall(s, "</div><table>");
    sqlite3_str_appendf(s, "<tr><th>size</th><td>%d × %d</td></tr>", w, h);
    sqlite3_str_appendf(s, "<tr><th>stored</th><td>%s (%lld bytes)</td></tr>", stored, nbits);
    sqlite3_str_appendf(s, "<tr><th>bits per pixel</th><td>%.4f</td></tr>",
                        (double)nbits * 8.0 / ((double)w * h));
    sqlite3_str_appendf(s, "<tr><th>original</th><td>%s %s</td></tr>",
                        sqlite3_column_text(st, 3), orig);
    sqlite3_str_appendf(s, "<tr><th>compression</th><td>%.0f : 1</td></tr>",
                        nbits > 0 ? (double)sz / (double)nbits : 0.0);
    sqlite3_str_appendall(s, "<tr><th>model</th><td><code>");
    put_html(s, (const char *)sqlite3_column_text(st, 6));
    if (strcmp(rate, "default") == 0) {
        sqlite3_str_appendall(s, "</code>, the default model");
    } else {
        sqlite3_str_appendall(s, "</code>, rate point ");
        put_html(s, rate);
    }
    sqlite3_str_appendf(s, " (rate id %d)</td></tr>", sqlite3_column_int(st, 7));
    if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
        time_t t = (time_t)sqlite3_column_int64(st, 1);
        struct tm tm;
        char when[64] = "";
        if (gmtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm);
        sqlite3_str_appendf(s, "<tr><th>modified</th><td>%s</td></tr>", when);
    }
    sqlite3_str_appendf(s, "</table><p><a href=\"/image/%lld.png?download=1\">Download PNG</a>",
                        (long long)id);
    if (original)
        sqlite3_str_appendf(s, " · <a href=\"/original/%lld?download=1\">Download the original</a>",
                            (long long)id);
    sqlite3_str_appendall(s, "</p>");
    sqlite3_finalize(st);
    page_end(s);
    return reply_html(mc, MHD_HTTP_OK, s);
}

/* Content-Disposition for a download of `name` with extension ext: an
 * ASCII fallback and the UTF-8 name (RFC 6266, RFC 8187). */
static char *disposition(const char *name, const char *ext) {
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    /* photo.jpg decoded is photo.png: the stored name's extension goes */
    const char *dot = ext[0] ? strrchr(base, '.') : NULL;
    size_t len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    char *stem = sqlite3_mprintf("%.*s", (int)len, base);
    if (!stem) return NULL;
    sqlite3_str *s = sqlite3_str_new(NULL);
    sqlite3_str_appendall(s, "attachment; filename=\"");
    for (const unsigned char *c = (const unsigned char *)stem; *c; c++)
        sqlite3_str_appendchar(s, 1, *c < 0x20 || *c >= 0x7f || *c == '"' || *c == '\\' ? '_'
                                                                                      : (char)*c);
    sqlite3_str_appendf(s, "%s\"; filename*=UTF-8''", ext);
    put_url(s, stem);
    sqlite3_str_appendall(s, ext);
    sqlite3_free(stem);
    return sqlite3_str_finish(s);
}

static enum MHD_Result image(struct MHD_Connection *mc, sqlite3 *c, sqlite3_int64 id) {
    sqlite3_stmt *st;
    int found = row_of(c, "SELECT data, name FROM images WHERE id = ?1", id, &st);
    if (found <= 0)
        return found ? reply_error(mc, MHD_HTTP_INTERNAL_SERVER_ERROR, "Error", sqlite3_errmsg(c))
                     : not_found(mc);
    size_t len;
    char why[sizeof ((mrt_error *)0)->message];
    uint8_t *png = decode_png(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), 1,
                              opt.threads, &len, why, sizeof why);
    const char *dl = arg(mc, "download");
    char *disp = dl && png ? disposition((const char *)sqlite3_column_text(st, 1), ".png") : NULL;
    sqlite3_finalize(st);
    if (!png) return reply_error(mc, MHD_HTTP_INTERNAL_SERVER_ERROR, "Cannot decode", why);
    enum MHD_Result r = reply(mc, MHD_HTTP_OK, "image/png", png, len, "max-age=300", disp);
    sqlite3_free(disp);
    return r;
}

static enum MHD_Result thumb(struct MHD_Connection *mc, sqlite3 *c, sqlite3_int64 id) {
    size_t len;
    char why[sizeof ((mrt_error *)0)->message];
    uint8_t *png = thumbnail(c, id, opt.threads, &len, why, sizeof why);
    if (!png && !why[0]) return not_found(mc);
    if (!png) return reply_error(mc, MHD_HTTP_INTERNAL_SERVER_ERROR, "Cannot decode", why);
    return reply(mc, MHD_HTTP_OK, "image/png", png, len, "max-age=300", NULL);
}

static enum MHD_Result original(struct MHD_Connection *mc, sqlite3 *c, sqlite3_int64 id) {
    sqlite3_stmt *st;
    int found = row_of(c, "SELECT o.data, i.format, i.name FROM originals o JOIN images i "
                          "USING (id) WHERE id = ?1", id, &st);
    if (found <= 0)
        return found ? reply_error(mc, MHD_HTTP_INTERNAL_SERVER_ERROR, "Error", sqlite3_errmsg(c))
                     : not_found(mc);
    size_t len = (size_t)sqlite3_column_bytes(st, 0);
    uint8_t *body = malloc(len ? len : 1);
    int png = strcmp((const char *)sqlite3_column_text(st, 1), "png") == 0;
    char *disp = arg(mc, "download") ? disposition((const char *)sqlite3_column_text(st, 2), "")
                                     : NULL;
    if (body) memcpy(body, sqlite3_column_blob(st, 0), len);
    sqlite3_finalize(st);
    if (!body) {
        sqlite3_free(disp);
        return MHD_NO;
    }
    enum MHD_Result r =
        reply(mc, MHD_HTTP_OK, png ? "image/png" : "image/jpeg", body, len, "max-age=300", disp);
    sqlite3_free(disp);
    return r;
}

static enum MHD_Result stats(struct MHD_Connection *mc, sqlite3 *c) {
    sqlite3_stmt *st = query(c, "SELECT count(*), total(sz), total(length(data)), "
                                "total(width * height), (SELECT count(*) FROM originals), "
                                "(SELECT count(*) FROM ingest_errors) FROM images");
    if (!st || sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return reply_error(mc, MHD_HTTP_INTERNAL_SERVER_ERROR, "Error", sqlite3_errmsg(c));
    }
    long long n = sqlite3_column_int64(st, 0);
    double orig = sqlite3_column_double(st, 1), stored = sqlite3_column_double(st, 2);
    double pixels = sqlite3_column_double(st, 3);
    char a[32], b[32];
    human_bytes(orig, a, sizeof a);
    human_bytes(stored, b, sizeof b);
    sqlite3_str *s = sqlite3_str_new(NULL);
    page_start(s, "Stats");
    sqlite3_str_appendall(s, "<h2>The archive</h2><table>");
    sqlite3_str_appendf(s, "<tr><th>photos</th><td>%lld</td></tr>", n);
    sqlite3_str_appendf(s, "<tr><th>originals</th><td>%s</td></tr>", a);
    sqlite3_str_appendf(s, "<tr><th>stored</th><td>%s</td></tr>", b);
    if (stored > 0)
        sqlite3_str_appendf(s, "<tr><th>compression</th><td>%.0f : 1</td></tr>", orig / stored);
    if (pixels > 0)
        sqlite3_str_appendf(s, "<tr><th>bits per pixel</th><td>%.4f</td></tr>",
                            stored * 8.0 / pixels);
    sqlite3_str_appendf(s, "<tr><th>originals kept</th><td>%lld</td></tr>",
                        sqlite3_column_int64(st, 4));
    sqlite3_str_appendf(s, "<tr><th>ingest errors</th><td>%lld</td></tr></table>",
                        sqlite3_column_int64(st, 5));
    sqlite3_finalize(st);
    st = query(c, "SELECT model, rate_id, count(*), total(length(data)) FROM images "
                  "GROUP BY model, rate_id ORDER BY rate_id, model");
    sqlite3_str_appendall(s, "<h2>By model</h2><table><tr><th>model</th><th>rate point</th>"
                             "<th>photos</th><th>stored</th></tr>");
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        char rate[64], bytes[32];
        rate_point_name((const char *)sqlite3_column_text(st, 0), rate, sizeof rate);
        human_bytes(sqlite3_column_double(st, 3), bytes, sizeof bytes);
        sqlite3_str_appendall(s, "<tr><td><code>");
        put_html(s, (const char *)sqlite3_column_text(st, 0));
        sqlite3_str_appendall(s, "</code></td><td>");
        put_html(s, rate);
        sqlite3_str_appendf(s, " (id %d)</td><td>%lld</td><td>%s</td></tr>",
                            sqlite3_column_int(st, 1), sqlite3_column_int64(st, 2), bytes);
    }
    sqlite3_finalize(st);
    sqlite3_str_appendall(s, "</table>");
    page_end(s);
    return reply_html(mc, MHD_HTTP_OK, s);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *mc, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **state) {
    (void)cls, (void)version, (void)upload;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        if (!r) return MHD_NO;
        MHD_add_response_header(r, "Allow", "GET, HEAD");
        enum MHD_Result ret = MHD_queue_response(mc, MHD_HTTP_METHOD_NOT_ALLOWED, r);
        MHD_destroy_response(r);
        return ret;
    }
    /* A GET with a body: wait for it to end (libmicrohttpd calls again),
     * ignoring it; its size is bounded by the connection's memory. */
    if (*state == NULL) {
        *state = (void *)1;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (strlen(url) > MAX_URL)
        return reply_error(mc, MHD_HTTP_URI_TOO_LONG, "URL too long", "");
    sqlite3 *c = conn();
    if (!c) return reply_error(mc, MHD_HTTP_SERVICE_UNAVAILABLE, "Unavailable",
                               "The archive cannot be opened.");
    sqlite3_int64 id;
    if (strcmp(url, "/") == 0) return gallery(mc, c);
    if (strcmp(url, "/stats") == 0) return stats(mc, c);
    if ((id = id_in(url, "/photo/", "")) >= 0) return photo_page(mc, c, id);
    if ((id = id_in(url, "/image/", ".png")) >= 0) return image(mc, c, id);
    if ((id = id_in(url, "/thumb/", ".png")) >= 0) return thumb(mc, c, id);
    if ((id = id_in(url, "/original/", "")) >= 0) return original(mc, c, id);
    return not_found(mc);
}

/* --listen ADDR:PORT -> a socket address ([::1]:8080 for IPv6). */
static int parse_listen(const char *spec, struct sockaddr_storage *sa, socklen_t *salen,
                        bool *ipv6) {
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof host) return -1;
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    char *h = host;
    if (h[0] == '[') { /* [::1] */
        size_t l = strlen(h);
        if (l < 3 || h[l - 1] != ']') return -1;
        h[l - 1] = '\0';
        h++;
    }
    const char *port = colon + 1;
    if (parse_id(port, strlen(port)) < 0 && strcmp(port, "0") != 0) return -1;
    if (atoi(port) > 65535) return -1;
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(h, port, &hints, &res) != 0 || !res) return -1;
    memcpy(sa, res->ai_addr, res->ai_addrlen);
    *salen = res->ai_addrlen;
    *ipv6 = res->ai_family == AF_INET6;
    freeaddrinfo(res);
    return 0;
}

static void log_error(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char text[512];
    vsnprintf(text, sizeof text, fmt, ap);
    size_t l = strlen(text);
    while (l && text[l - 1] == '\n') text[--l] = '\0';
    msg("serve: %s", text);
}

int cmd_serve(int argc, char **argv) {
    (void)argv;
    /* opens and checks the archive (a version this build reads) */
    if (begin_command("serve", argc == 0, ARCHIVE_READ) != 0) return EXIT_FATAL;
    const char *listen_spec = opt.listen ? opt.listen : "127.0.0.1:8080";
    struct sockaddr_storage sa;
    socklen_t salen;
    bool ipv6 = false;
    if (parse_listen(listen_spec, &sa, &salen, &ipv6) != 0) {
        msg("--listen: expected ADDRESS:PORT (127.0.0.1:8080, [::1]:8080), got '%s'",
            listen_spec);
        return EXIT_FATAL;
    }
    sv.models = archive_models();
    if (!sv.models) return EXIT_FATAL;

    /* The thumbnail cache and the sort indexes (sql/schema.sql) on an
     * archive of the current version that this process may write: the
     * schema is idempotent and only adds them. */
    int version = -1;
    sqlite3_stmt *st = prep("PRAGMA user_version");
    if (st && sqlite3_step(st) == SQLITE_ROW) version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    db = NULL;
    sv.writable = false;
    if (version == 2 && access(opt.archive, W_OK) == 0 &&
        sqlite3_open_v2(opt.archive, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 30000);
        sv.writable = sqlite3_exec(db, mrtarchive_schema_sql, NULL, NULL, NULL) == SQLITE_OK;
        if (!sv.writable)
            msg("%s: serving without a thumbnail cache: %s", opt.archive, sqlite3_errmsg(db));
    }
    sqlite3_close(db);
    db = NULL;
    sv.cache = sv.writable; /* a read-only archive may still have one */
    if (!sv.writable) {
        sqlite3 *probe = NULL;
        if (sqlite3_open_v2(opt.archive, &probe, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK)
            sv.cache = sqlite3_table_column_metadata(probe, NULL, "thumbnails", "png", NULL, NULL,
                                                     NULL, NULL, NULL) == SQLITE_OK;
        sqlite3_close(probe);
    }

    /* The signals are taken by sigwait below: blocked before any thread
     * starts, so that every thread inherits the mask. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
                         (ipv6 ? MHD_USE_IPv6 : 0);
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, handle, NULL, MHD_OPTION_EXTERNAL_LOGGER, log_error, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)WORKERS, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)MAX_CONNECTIONS, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)REQUEST_MEMORY,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30, MHD_OPTION_END);
    if (!d) {
        msg("serve: cannot listen on %s: %s", listen_spec, strerror(errno));
        return EXIT_FATAL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned port = info ? info->port : 0;
    char host[128] = "127.0.0.1";
    if (getnameinfo((struct sockaddr *)&sa, salen, host, sizeof host, NULL, 0, NI_NUMERICHOST) != 0)
        snprintf(host, sizeof host, "?");
    /* not info_msg: the address is what the user needs even with --quiet */
    fprintf(stderr, "mrtarchive: serving %s at http://%s%s%s:%u/ (Ctrl-C stops)\n", opt.archive,
            ipv6 ? "[" : "", host, ipv6 ? "]" : "", port);
    fflush(stderr);

    pthread_t bg;
    bool have_bg = sv.cache && sv.writable && pthread_create(&bg, NULL, thumbnailer, NULL) == 0;
    int sig = 0;
    sigwait(&stop, &sig);
    sv.stopping = true;
    info_msg("mrtarchive: %s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    MHD_stop_daemon(d);
    if (have_bg) pthread_join(bg, NULL);
    close_all();
    return 0;
}
