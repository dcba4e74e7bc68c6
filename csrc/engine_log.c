/* The per-request log line ("http log", or "http access log" with
 * http.access_logs), formatted by the engine thread and written straight to
 * the log outputs, byte for byte what fastrr/log.py LogSink.emit writes for
 * the fields fastrr/http/server.py log_access builds. RoadRunner logs every
 * request at info (the default level), so this line is on the hot path: as
 * an event it would cost a Python call per request.
 *
 * Python writes its own lines to the same fds whole (line-buffered streams,
 * flushed per line), one write() each; so does this, so lines never mix.
 *
 *   console: <UTC time>.<ms>Z \t INFO \t http \t <msg> \t <json.dumps(fields)>
 *   json:    json.dumps({"level","ts","logger","msg", **fields})
 *   raw:     <msg>
 * json.dumps(ensure_ascii=False): ", " and ": " separators, strings escaped
 * as Python does (\" \\ \n \r \t \b \f, other controls \u00XX); the request
 * strings are latin-1 decoded in Python, so bytes >= 0x80 become U+0080..FF. */
#include "engine.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <unistd.h>

static int put_json_str(fr_buf *o, const unsigned char *s, size_t n, int latin1)
{
    if (fr_buf_reserve(o, 6 * n + 2) < 0)
        return -1;
    fr_buf_putc(o, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c >= 0x80 && latin1) { /* U+0080..U+00FF in UTF-8 */
            fr_buf_putc(o, (char)(0xC0 | (c >> 6)));
            fr_buf_putc(o, (char)(0x80 | (c & 0x3F)));
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\') {
            fr_buf_putc(o, (char)c);
            continue;
        }
        fr_buf_putc(o, '\\');
        switch (c) {
        case '"': fr_buf_putc(o, '"'); break;
        case '\\': fr_buf_putc(o, '\\'); break;
        case '\b': fr_buf_putc(o, 'b'); break;
        case '\f': fr_buf_putc(o, 'f'); break;
        case '\n': fr_buf_putc(o, 'n'); break;
        case '\r': fr_buf_putc(o, 'r'); break;
        case '\t': fr_buf_putc(o, 't'); break;
        default:
            fr_buf_put(o, "u00", 3);
            fr_buf_putc(o, "0123456789abcdef"[c >> 4]);
            fr_buf_putc(o, "0123456789abcdef"[c & 15]);
        }
    }
    fr_buf_putc(o, '"');
    return 0;
}

static int key(fr_buf *o, int *first, const char *k)
{
    size_t n = strlen(k);
    if (fr_buf_reserve(o, n + 6) < 0)
        return -1;
    if (!*first)
        fr_buf_put(o, ", ", 2);
    *first = 0;
    fr_buf_putc(o, '"');
    fr_buf_put(o, k, n);
    fr_buf_put(o, "\": ", 3);
    return 0;
}

static int str_field(fr_buf *o, int *first, const char *k, const void *s, size_t n, int latin1)
{
    if (key(o, first, k) < 0)
        return -1;
    return put_json_str(o, s, n, latin1);
}

static int int_field(fr_buf *o, int *first, const char *k, long long v)
{
    if (key(o, first, k) < 0 || fr_buf_reserve(o, 21) < 0)
        return -1;
    if (v < 0) {
        fr_buf_putc(o, '-');
        fr_buf_put_u64(o, 0ull - (unsigned long long)v);
    }
    else
        fr_buf_put_u64(o, (unsigned long long)v);
    return 0;
}

/* datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds") */
static int iso_utc(char *out, size_t n, double t)
{
    double whole;
    double frac = modf(t, &whole);
    long long us = (long long)nearbyint(frac * 1e6); /* round half even, as Python */
    long long secs = (long long)whole;
    if (us >= 1000000) {
        secs += 1;
        us -= 1000000;
    }
    time_t ts = (time_t)secs;
    struct tm tm;
    gmtime_r(&ts, &tm);
    return snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%06lld+00:00", tm.tm_year + 1900,
                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, us);
}

/* The fields of server.py log_access, as a JSON object body (no braces). */
static int access_fields(fe_engine *e, fe_conn *c, fr_buf *o, int *first)
{
    const RequestObject *r = c->req;
    const unsigned char *head = fr_req_head(r);
    const unsigned char *target = head + r->target_off, *host = (const unsigned char *)"";
    size_t tlen = r->target_len, hlen = 0;
    if (r->host_index >= 0) {
        host = head + r->hdrs[r->host_index].value_off;
        hlen = r->hdrs[r->host_index].value_len;
    }
    int absolute = 0;
    for (size_t i = 0; i + 3 <= tlen; i++)
        if (memcmp(target + i, "://", 3) == 0) {
            absolute = 1;
            break;
        }
    char iso[64];
    iso_utc(iso, sizeof(iso), c->started_wall);
    if (int_field(o, first, "status", c->status) < 0 ||
        str_field(o, first, "method", head + r->method_off, r->method_len, 1) < 0 ||
        str_field(o, first, "URI", target, tlen, 1) < 0 || key(o, first, "URL") < 0)
        return -1;
    if (absolute) {
        if (put_json_str(o, target, tlen, 1) < 0)
            return -1;
    }
    else {
        /* f"http://{host}{target}" as one JSON string */
        e->text.len = 0;
        if (FR_BUF_LIT(&e->text, "http://") < 0 || fr_buf_append(&e->text, host, hlen) < 0 ||
            fr_buf_append(&e->text, target, tlen) < 0 ||
            put_json_str(o, (const unsigned char *)e->text.data, e->text.len, 1) < 0)
            return -1;
    }
    if (str_field(o, first, "remote_address", c->peer, c->peer_len, 0) < 0 ||
        str_field(o, first, "start", iso, strlen(iso), 0) < 0 ||
        int_field(o, first, "elapsed", (long long)((e->now - c->started_at) * 1000)) < 0)
        return -1;
    if (e->cfg.access_log != 2)
        return 0;
    const unsigned char *q = memchr(target, '?', tlen);
    size_t qlen = q ? tlen - (size_t)(q - target) - 1 : 0;
    size_t ualen = 0, rflen = 0;
    const unsigned char *ua = NULL, *rf = NULL;
    const unsigned char *hd = fr_req_head(r);
    for (int i = 0; i < r->nheaders; i++) { /* the first value of each, as get_header */
        const fr_hdr *h = &r->hdrs[i];
        if (ua == NULL && h->name_len == 10 && fr_ieq(hd + h->name_off, "user-agent", 10)) {
            ua = hd + h->value_off;
            ualen = h->value_len;
        }
        else if (rf == NULL && h->name_len == 7 && fr_ieq(hd + h->name_off, "referer", 7)) {
            rf = hd + h->value_off;
            rflen = h->value_len;
        }
    }
    time_t started = (time_t)floor(c->started_wall);
    struct tm tm;
    localtime_r(&started, &tm);
    char local[64];
    size_t llen = strftime(local, sizeof(local), "%d/%b/%y:%H:%M:%S %z", &tm);
    if (str_field(o, first, "query", q ? q + 1 : target, qlen, 1) < 0 ||
        int_field(o, first, "content_len", r->content_length) < 0 ||
        str_field(o, first, "host", host, hlen, 1) < 0 ||
        str_field(o, first, "user_agent", ua ? ua : target, ua ? ualen : 0, 1) < 0 ||
        str_field(o, first, "referer", rf ? rf : target, rf ? rflen : 0, 1) < 0 ||
        str_field(o, first, "time_local", local, llen, 0) < 0)
        return -1;
    return 0;
}

static int format_line(fe_engine *e, fe_conn *c, fr_buf *o)
{
    const char *msg = e->cfg.access_log == 2 ? "http access log" : "http log";
    int first = 1;
    o->len = 0;
    if (e->cfg.log_encoding == FE_LOG_RAW)
        return fe_buf_printf(o, "%s\n", msg);
    if (e->cfg.log_encoding == FE_LOG_JSON) {
        /* "ts": repr(round(time.time(), 6)): the 6-decimal value, trailing zeros cut */
        char ts[48];
        int n = snprintf(ts, sizeof(ts), "%.6f", fe_wall());
        while (n > 2 && ts[n - 1] == '0' && ts[n - 2] != '.')
            ts[--n] = '\0';
        if (fe_buf_printf(o, "{\"level\": \"info\", \"ts\": %s, \"logger\": \"http\", \"msg\": \"%s\"", ts,
                          msg) < 0)
            return -1;
        first = 0;
        if (access_fields(e, c, o, &first) < 0)
            return -1;
        return FR_BUF_LIT(o, "}\n");
    }
    /* console: time.strftime("%Y-%m-%dT%H:%M:%S", gmtime(now)) + ".%03dZ" % (now % 1 * 1000) */
    double now = fe_wall();
    time_t secs = (time_t)floor(now);
    struct tm tm;
    gmtime_r(&secs, &tm);
    if (fe_buf_printf(o, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\tINFO\thttp\t%s\t{", tm.tm_year + 1900,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                      (int)((now - floor(now)) * 1000), msg) < 0)
        return -1;
    if (access_fields(e, c, o, &first) < 0)
        return -1;
    return FR_BUF_LIT(o, "}\n");
}

void fe_flush_access_lines(fe_engine *e)
{
    fr_buf *o = &e->loglines;
    for (int i = 0; i < e->cfg.nlog_fds && o->len; i++) {
        size_t off = 0;
        while (off < o->len) {
            ssize_t w = write(e->cfg.log_fds[i], o->data + off, o->len - off);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                break; /* as LogSink: a broken output is skipped */
            }
            off += (size_t)w;
        }
    }
    o->len = 0;
    if (o->cap > 256 * 1024)
        fr_buf_trim(o, 0);
}

/* The line goes into e->loglines, written (whole lines, one write per
 * output) at the end of the loop turn, or now when 64 KiB piled up. */
int fe_write_access_line(fe_engine *e, fe_conn *c)
{
    fr_buf *o = &e->logline;
    if (format_line(e, c, o) < 0 || fr_buf_append(&e->loglines, o->data, o->len) < 0)
        return -1;
    if (e->loglines.len >= 64 * 1024)
        fe_flush_access_lines(e);
    return 0;
}
