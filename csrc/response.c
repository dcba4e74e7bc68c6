/* HTTP/1.x responses from a worker reply (protocol doc §3.5, §3.6).
 *
 * build_response() reads the worker's JSON context
 *   {"status":200,"headers":{"Name":["v1","v2"],...}}
 * with the strict pull reader in json.c (any key order, unknown keys
 * skipped, headers as {} / [] / null, values as a string or an array of
 * strings) and writes the whole response - status line, headers, framing
 * and body - into ONE bytes object, so the caller does one write().
 *
 * What the server, not the worker, decides: Content-Length,
 * Transfer-Encoding and Connection from the worker are dropped; Date and
 * Server are added unless the worker gave them.
 * Header hygiene (as Go's net/http Header.Write, plus NUL): names that are
 * not tokens are dropped; CR, LF and NUL in values become SP; values are
 * trimmed of SP/HTAB.
 */
#include "json.h" /* Python.h first: it sets the feature macros */

#include "hotpath.h"
#include "proto.h"

#include <stdio.h>
#include <time.h>

#define SCRATCH_KEEP (64 * 1024)
#define JSON_MAX_DEPTH 64

/* Scratch of the Python API (the GIL protects it); the engine has its own. */
static fr_resp_scratch py_scratch;
static fr_buf head_buf; /* the response head being assembled */

/* ------------------------------------------------------- reason phrases */

/* RFC 9110 §15 reason phrases (plus 102, 103, 207, 208, 226, 418, 423,
 * 424, 425, 428, 429, 431, 451, 506-511 from their RFCs). */
static const char *reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 102: return "Processing";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 207: return "Multi-Status";
    case 208: return "Already Reported";
    case 226: return "IM Used";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 418: return "I'm a teapot";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 423: return "Locked";
    case 424: return "Failed Dependency";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 506: return "Variant Also Negotiates";
    case 507: return "Insufficient Storage";
    case 508: return "Loop Detected";
    case 510: return "Not Extended";
    case 511: return "Network Authentication Required";
    default: return "Unknown";
    }
}

/* ------------------------------------------------------------ the date */

/* RFC 9110 §5.6.7
 *   IMF-fixdate = day-name "," SP date1 SP time-of-day SP GMT
 *   e.g. "Sun, 06 Nov 1994 08:49:37 GMT" (29 bytes)
 * strftime is avoided because %a/%b follow the locale. The Python API
 * caches the string per time(NULL) second; the engine keeps its own. */
static time_t date_time = (time_t)-1;
static char date_str[FR_DATE_LEN + 1];
static PyObject *date_obj;

static void put2(char *o, int v)
{
    o[0] = (char)('0' + (v / 10) % 10);
    o[1] = (char)('0' + v % 10);
}

void fr_format_http_date(time_t t, char *o)
{
    static const char days[] = "SunMonTueWedThuFriSat";
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL)
        memset(&tm, 0, sizeof(tm)); /* year 1900: cannot happen for time(NULL) */
    memcpy(o, days + 3 * (tm.tm_wday % 7), 3);
    o[3] = ',';
    o[4] = ' ';
    put2(o + 5, tm.tm_mday);
    o[7] = ' ';
    memcpy(o + 8, months + 3 * (tm.tm_mon % 12), 3);
    o[11] = ' ';
    int year = tm.tm_year + 1900;
    put2(o + 12, (year / 100) % 100);
    put2(o + 14, year % 100);
    o[16] = ' ';
    put2(o + 17, tm.tm_hour);
    o[19] = ':';
    put2(o + 20, tm.tm_min);
    o[22] = ':';
    put2(o + 23, tm.tm_sec);
    memcpy(o + 25, " GMT", 4);
}

static void update_date(void)
{
    time_t now = time(NULL);
    if (now == date_time)
        return;
    fr_format_http_date(now, date_str);
    date_str[FR_DATE_LEN] = '\0';
    date_time = now;
    Py_CLEAR(date_obj);
}

PyObject *fr_py_http_date(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    update_date();
    if (date_obj == NULL) {
        date_obj = PyBytes_FromStringAndSize(date_str, FR_DATE_LEN);
        if (date_obj == NULL)
            return NULL;
    }
    return Py_NewRef(date_obj);
}

/* ------------------------------------------------- worker context JSON */

typedef struct {
    long long status;
    int has_date, has_server;
} resp_info;

/* Name handling for one header key (in s->name): 0 drop, 1 keep. */
static int header_name(fr_resp_scratch *sc, int *is_date, int *is_server)
{
    const unsigned char *s = (const unsigned char *)sc->name.data;
    size_t n = sc->name.len;
    *is_date = *is_server = 0;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!fr_tchar[s[i]])
            return 0;
    if ((n == 14 && fr_ieq(s, "content-length", 14)) ||
        (n == 17 && fr_ieq(s, "transfer-encoding", 17)) || (n == 10 && fr_ieq(s, "connection", 10)))
        return 0;
    /* canonicalise in place (Go's CanonicalMIMEHeaderKey) */
    int upper = 1;
    for (size_t i = 0; i < n; i++) {
        char c = sc->name.data[i];
        if (upper && c >= 'a' && c <= 'z')
            c = (char)(c - 32);
        else if (!upper && c >= 'A' && c <= 'Z')
            c = (char)(c + 32);
        sc->name.data[i] = c;
        upper = c == '-';
    }
    *is_date = n == 4 && memcmp(s, "Date", 4) == 0;
    *is_server = n == 6 && memcmp(s, "Server", 6) == 0;
    return 1;
}

/* Append "Name: value\r\n" with the value sanitised. */
static int emit_header_line(fr_resp_scratch *sc)
{
    unsigned char *v = (unsigned char *)sc->val.data;
    size_t n = sc->val.len;
    for (size_t i = 0; i < n; i++)
        if (v[i] == '\r' || v[i] == '\n' || v[i] == '\0')
            v[i] = ' ';
    size_t s = 0;
    while (s < n && fr_is_ows(v[s]))
        s++;
    while (n > s && fr_is_ows(v[n - 1]))
        n--;
    if (fr_buf_reserve(&sc->hdr, sc->name.len + (n - s) + 4) < 0)
        return -1;
    fr_buf_put(&sc->hdr, sc->name.data, sc->name.len);
    fr_buf_put(&sc->hdr, ": ", 2);
    fr_buf_put(&sc->hdr, v + s, n - s);
    fr_buf_put(&sc->hdr, "\r\n", 2);
    return 0;
}

static int read_value_string(fr_resp_scratch *sc, fr_jr *j, int keep)
{
    sc->val.len = 0;
    if (fr_jr_string(j, &sc->val) < 0)
        return -1;
    return keep ? emit_header_line(sc) : 0;
}

static int parse_headers(fr_resp_scratch *sc, fr_jr *j, resp_info *ri)
{
    fr_jr_ws(j);
    if (j->p == j->end) {
        j->err = "unexpected end of data";
        return -1;
    }
    if (*j->p == 'n')
        return fr_jr_literal(j, "null", 4);
    if (*j->p == '[') { /* PHP's json_encode([]) */
        j->p++;
        fr_jr_ws(j);
        if (j->p < j->end && *j->p == ']') {
            j->p++;
            return 0;
        }
        j->err = "headers must be an object";
        return -1;
    }
    if (*j->p != '{') {
        j->err = "headers must be an object";
        return -1;
    }
    j->p++;
    fr_jr_ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        return 0;
    }
    for (;;) {
        fr_jr_ws(j);
        if (j->p == j->end || *j->p != '"') {
            j->err = "expected header name";
            return -1;
        }
        sc->name.len = 0;
        if (fr_jr_string(j, &sc->name) < 0)
            return -1;
        int is_date, is_server;
        int keep = header_name(sc, &is_date, &is_server);
        fr_jr_ws(j);
        if (j->p == j->end || *j->p != ':') {
            j->err = "expected ':'";
            return -1;
        }
        j->p++;
        fr_jr_ws(j);
        if (j->p == j->end) {
            j->err = "unexpected end of data";
            return -1;
        }
        size_t before = sc->hdr.len;
        if (*j->p == '"') {
            if (read_value_string(sc, j, keep) < 0)
                return -1;
        }
        else if (*j->p == '[') {
            j->p++;
            fr_jr_ws(j);
            if (j->p < j->end && *j->p == ']')
                j->p++;
            else {
                for (;;) {
                    fr_jr_ws(j);
                    if (j->p == j->end || *j->p != '"') {
                        j->err = "header values must be strings";
                        return -1;
                    }
                    if (read_value_string(sc, j, keep) < 0)
                        return -1;
                    fr_jr_ws(j);
                    if (j->p < j->end && *j->p == ',') {
                        j->p++;
                        continue;
                    }
                    if (j->p < j->end && *j->p == ']') {
                        j->p++;
                        break;
                    }
                    j->err = "expected ',' or ']'";
                    return -1;
                }
            }
        }
        else {
            j->err = "header values must be a string or an array of strings";
            return -1;
        }
        if (sc->hdr.len > before) {
            ri->has_date |= is_date;
            ri->has_server |= is_server;
        }
        fr_jr_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == '}') {
            j->p++;
            return 0;
        }
        j->err = "expected ',' or '}'";
        return -1;
    }
}

static int parse_status(fr_jr *j, resp_info *ri)
{
    const unsigned char *s;
    size_t n;
    int is_int;
    fr_jr_ws(j);
    if (j->p == j->end || !(*j->p == '-' || (*j->p >= '0' && *j->p <= '9'))) {
        j->err = "status must be an integer";
        return -1;
    }
    if (fr_jr_number(j, &s, &n, &is_int) < 0)
        return -1;
    if (!is_int) {
        j->err = "status must be an integer";
        return -1;
    }
    int neg = s[0] == '-';
    long long v = 0;
    for (size_t i = (size_t)neg; i < n; i++) {
        if (v < 100000000LL) /* saturate: anything this big is out of range */
            v = v * 10 + (s[i] - '0');
    }
    ri->status = neg ? -v : v;
    return 0;
}

/* 0, or -1 with the FrameError text in err. */
static int parse_context(fr_resp_scratch *sc, const unsigned char *p, size_t n, resp_info *ri,
                         char *err)
{
    fr_jr j = {p, p + n, p, NULL};
    fr_jr *jp = &j;
    fr_jr_ws(jp);
    if (j.p == j.end || *j.p != '{') {
        j.err = "context must be a JSON object";
        goto bad;
    }
    j.p++;
    fr_jr_ws(jp);
    if (j.p < j.end && *j.p == '}')
        j.p++;
    else {
        for (;;) {
            fr_jr_ws(jp);
            if (j.p == j.end || *j.p != '"') {
                j.err = "expected object key";
                goto bad;
            }
            sc->name.len = 0;
            if (fr_jr_string(jp, &sc->name) < 0)
                goto bad;
            fr_jr_ws(jp);
            if (j.p == j.end || *j.p != ':') {
                j.err = "expected ':'";
                goto bad;
            }
            j.p++;
            if (sc->name.len == 6 && memcmp(sc->name.data, "status", 6) == 0) {
                if (parse_status(jp, ri) < 0)
                    goto bad;
            }
            else if (sc->name.len == 7 && memcmp(sc->name.data, "headers", 7) == 0) {
                if (parse_headers(sc, jp, ri) < 0)
                    goto bad;
            }
            else if (fr_jr_skip(jp, JSON_MAX_DEPTH) < 0)
                goto bad;
            fr_jr_ws(jp);
            if (j.p < j.end && *j.p == ',') {
                j.p++;
                continue;
            }
            if (j.p < j.end && *j.p == '}') {
                j.p++;
                break;
            }
            j.err = "expected ',' or '}'";
            goto bad;
        }
    }
    fr_jr_ws(jp);
    if (j.p != j.end) {
        j.err = "data after the context object";
        goto bad;
    }
    return 0;
bad:
    snprintf(err, FR_RESP_ERRLEN, "invalid response context from worker: %s at offset %zd",
             j.err ? j.err : "syntax error", (Py_ssize_t)(j.p - j.base));
    return -1;
}

/* The http.v1.Response context (codec FLAG_PROTO), decoded by proto.c and
 * put through the same header rules as the JSON one. There is no JSON in
 * between: converting first cost more than parsing the JSON (see
 * csrc/README.md). 0, or -1 with the FrameError text in err, or -2. */
static int proto_context(fr_resp_scratch *sc, const unsigned char *p, size_t n, resp_info *ri,
                         char *err)
{
    fr_pb_response pr;
    const char *why;
    int rc = fr_proto_parse_response(&sc->ents, p, n, &pr, &why);
    if (rc < 0) {
        if (rc == -1)
            snprintf(err, FR_RESP_ERRLEN, "invalid protobuf response context from worker: %s", why);
        return rc;
    }
    ri->status = pr.status;
    for (size_t i = 0; i < pr.nhdrs; i++) {
        int is_date, is_server;
        sc->name.len = 0;
        if (fr_buf_append(&sc->name, pr.hdrs[i].key, pr.hdrs[i].key_len) < 0)
            return -2;
        if (!header_name(sc, &is_date, &is_server))
            continue;
        size_t before = sc->hdr.len;
        fr_pb_values it;
        const unsigned char *val;
        size_t vlen;
        fr_pb_values_init(&it, &pr.hdrs[i]);
        while (fr_pb_values_next(&it, &val, &vlen)) {
            sc->val.len = 0;
            if (fr_buf_append(&sc->val, val, vlen) < 0 || emit_header_line(sc) < 0)
                return -2;
        }
        if (sc->hdr.len > before) {
            ri->has_date |= is_date;
            ri->has_server |= is_server;
        }
    }
    return 0;
}

/* ------------------------------------------------------- the head */

size_t fr_chunk_size_line(size_t v, char *out)
{
    char tmp[16];
    size_t n = 0, k = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    while (n)
        out[k++] = tmp[--n];
    out[k++] = '\r';
    out[k++] = '\n';
    return k;
}

void fr_resp_scratch_trim(fr_resp_scratch *s, size_t keep)
{
    fr_buf_trim(&s->hdr, keep);
    fr_buf_trim(&s->name, keep);
    fr_buf_trim(&s->val, keep);
    fr_buf_trim(&s->ents, keep);
}

#define HEAD_LIT(lit)                   \
    do {                                \
        if (FR_BUF_LIT(head, lit) < 0)  \
            return -2;                  \
    } while (0)

int fr_build_response_head(fr_resp_scratch *sc, fr_buf *head, const unsigned char *payload,
                           size_t len, size_t ctx_len, int keep_alive, int head_request,
                           int minor, int stream, unsigned codec, const char *date,
                           fr_resp_info *out, char *err)
{
    resp_info ri = {200, 0, 0};
    out->status = 0;
    out->body_len = 0;
    out->chunk_body = 0;
    if (ctx_len > len) {
        snprintf(err, FR_RESP_ERRLEN, "context length %zd outside the payload (%zd bytes)",
                 (Py_ssize_t)ctx_len, (Py_ssize_t)len);
        return -1;
    }
    sc->hdr.len = 0;
    if (ctx_len > 0) {
        int rc = (codec & 0x80) ? proto_context(sc, payload, ctx_len, &ri, err)
                                : parse_context(sc, payload, ctx_len, &ri, err);
        if (rc < 0)
            return rc;
    }
    if (ri.status < 100 || ri.status > 599) {
        snprintf(err, FR_RESP_ERRLEN, "unknown status code from worker: %lld", ri.status);
        return -1;
    }
    int status = (int)ri.status;
    if (status == 101) {
        snprintf(err, FR_RESP_ERRLEN, "status 101 (Switching Protocols) from worker is not supported");
        return -1;
    }
    out->status = status;
    size_t body_len = len - ctx_len;

    /* 1xx informational (RFC 9110 §15.2) is never sent to an HTTP/1.0
     * client: nothing at all. */
    if (status < 200 && minor == 0)
        return 0;

    /* status-line = HTTP-version SP status-code SP [ reason-phrase ] */
    const char *reason = reason_phrase(status);
    size_t rlen = strlen(reason);
    if (fr_buf_reserve(head, 14 + rlen + sc->hdr.len) < 0)
        return -2;
    fr_buf_put(head, minor ? "HTTP/1.1 " : "HTTP/1.0 ", 9);
    fr_buf_putc(head, (char)('0' + status / 100));
    fr_buf_putc(head, (char)('0' + (status / 10) % 10));
    fr_buf_putc(head, (char)('0' + status % 10));
    fr_buf_putc(head, ' ');
    fr_buf_put(head, reason, rlen);
    fr_buf_put(head, "\r\n", 2);
    fr_buf_put(head, sc->hdr.data, sc->hdr.len);

    if (status < 200) {
        /* headers only; the caller keeps reading frames */
        HEAD_LIT("\r\n");
        return 0;
    }
    if (!ri.has_date) {
        if (fr_buf_reserve(head, 8 + FR_DATE_LEN) < 0)
            return -2;
        fr_buf_put(head, "Date: ", 6);
        fr_buf_put(head, date, FR_DATE_LEN);
        fr_buf_put(head, "\r\n", 2);
    }
    if (!ri.has_server)
        HEAD_LIT("Server: fastrr\r\n");
    int no_body = status == 204 || status == 304;
    int close = !keep_alive;
    int chunk_frame = 0; /* wrap the body as one chunk */
    if (!no_body) {
        if (stream) {
            if (minor == 1) {
                HEAD_LIT("Transfer-Encoding: chunked\r\n");
                chunk_frame = 1;
            }
            else
                close = 1; /* HTTP/1.0: the body ends when we close */
        }
        else {
            HEAD_LIT("Content-Length: ");
            if (fr_buf_reserve(head, 22) < 0)
                return -2;
            fr_buf_put_u64(head, body_len);
            fr_buf_put(head, "\r\n", 2);
        }
    }
    if (close)
        HEAD_LIT("Connection: close\r\n");
    else if (minor == 0)
        HEAD_LIT("Connection: keep-alive\r\n");
    HEAD_LIT("\r\n");
    size_t extra = (!no_body && !head_request) ? body_len : 0;
    if (chunk_frame && extra) {
        if (fr_buf_reserve(head, 18) < 0)
            return -2;
        head->len += fr_chunk_size_line(extra, head->data + head->len);
        out->chunk_body = 1;
    }
    out->body_len = extra;
    return 0;
}

/* ------------------------------------------------------- build_response */

PyObject *fr_py_build_response(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
    (void)m;
    static const char *const names[] = {"payload",    "ctx_len",    "keep_alive",
                                        "head_request", "http_minor", "stream", "codec"};
    PyObject *a[7];
    Py_ssize_t ctx_len, minor, codec = 0x08;
    int keep_alive, head_request, stream = 0;
    fr_view v;
    PyObject *result = NULL;
    fr_resp_info info;
    char err[FR_RESP_ERRLEN];

    if (fr_unpack_args("build_response", args, nargs, kw, names, 5, 7, a) < 0)
        return NULL;
    if (a[6] != NULL && fr_arg_ssize(a[6], "codec", &codec) < 0)
        return NULL;
    if (fr_arg_ssize(a[1], "ctx_len", &ctx_len) < 0 || fr_arg_ssize(a[4], "http_minor", &minor) < 0)
        return NULL;
    if (minor != 0 && minor != 1) {
        PyErr_SetString(PyExc_ValueError, "http_minor must be 0 or 1");
        return NULL;
    }
    if ((keep_alive = PyObject_IsTrue(a[2])) < 0 || (head_request = PyObject_IsTrue(a[3])) < 0)
        return NULL;
    if (a[5] != NULL && (stream = PyObject_IsTrue(a[5])) < 0)
        return NULL;
    if (fr_view_get(a[0], &v, "payload") < 0)
        return NULL;
    if (ctx_len < 0) {
        fr_raise_frame("context length %zd outside the payload (%zd bytes)", ctx_len, v.len);
        goto done;
    }
    update_date();
    head_buf.len = 0;
    int rc = fr_build_response_head(&py_scratch, &head_buf, v.buf, (size_t)v.len, (size_t)ctx_len,
                                    keep_alive, head_request, (int)minor, stream,
                                    (unsigned)codec, date_str, &info, err);
    if (rc < 0) {
        if (!PyErr_Occurred()) {
            if (rc == -1)
                fr_raise_frame("%s", err);
            else
                PyErr_NoMemory();
        }
        goto done;
    }
    size_t total = head_buf.len + info.body_len + (info.chunk_body ? 2 : 0);
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (out == NULL)
        goto done;
    char *o = PyBytes_AS_STRING(out);
    if (head_buf.len)
        memcpy(o, head_buf.data, head_buf.len);
    if (info.body_len) {
        memcpy(o + head_buf.len, v.buf + ctx_len, info.body_len);
        if (info.chunk_body)
            memcpy(o + head_buf.len + info.body_len, "\r\n", 2);
    }
    result = Py_BuildValue("(iN)", info.status, out);
done:
    fr_view_release(&v);
    fr_buf_trim(&head_buf, SCRATCH_KEEP);
    fr_resp_scratch_trim(&py_scratch, SCRATCH_KEEP);
    return result;
}

PyObject *fr_py_encode_chunk(PyObject *m, PyObject *arg)
{
    (void)m;
    fr_view v;
    if (fr_view_get(arg, &v, "data") < 0)
        return NULL;
    if (v.len == 0) {
        fr_view_release(&v);
        return PyBytes_FromStringAndSize(NULL, 0);
    }
    char line[18];
    size_t n = fr_chunk_size_line((size_t)v.len, line);
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n + v.len + 2);
    if (out != NULL) {
        char *o = PyBytes_AS_STRING(out);
        memcpy(o, line, n);
        memcpy(o + n, v.buf, (size_t)v.len);
        memcpy(o + n + v.len, "\r\n", 2);
    }
    fr_view_release(&v);
    return out;
}

int fr_response_init(PyObject *module)
{
    PyObject *last = PyBytes_FromString("0\r\n\r\n");
    if (last == NULL)
        return -1;
    int rc = PyModule_AddObjectRef(module, "LAST_CHUNK", last);
    Py_DECREF(last);
    if (rc < 0)
        return -1;
    update_date();
    return 0;
}
