/* The RoadRunner legacy JSON request context (protocol doc §3.3), written
 * straight from a Request's header table into one scratch buffer:
 *
 * {"remoteAddr":"…","protocol":"HTTP/1.1","method":"GET",
 *  "uri":"http://host/path?q","headers":{"Name":["v1","v2"]},
 *  "cookies":{"a":"1"},"rawQuery":"q","parsed":false,"uploads":null,
 *  "attributes":{}}
 *
 * Decisions (RoadRunner runs Go's net/http; we reproduce what PHP sees):
 *  - header names Go-canonicalised (textproto.CanonicalMIMEHeaderKey; our
 *    parser only admits token names, which Go always canonicalises); Host
 *    is not in "headers" (Go moves it to r.Host) but is in "uri";
 *  - repeated names (case-insensitive) merge into one array, values in
 *    arrival order; keys come in order of first appearance (Go would sort
 *    them - PHP does not care);
 *  - cookies as Go's readCookies + RoadRunner's url.PathUnescape: split on
 *    ';', trim, name must be a token, value optionally double-quoted, value
 *    bytes per Go's validCookieValueByte, %XX decoded ('+' stays), cookies
 *    that fail any of this are dropped; a repeated name keeps the LAST
 *    value (RoadRunner fills a map in order) - the key is emitted where
 *    that last occurrence is;
 *  - every string goes through fr_json_escape (invalid UTF-8 -> U+FFFD).
 */
#include "context.h"
#include "json.h"

#define SCRATCH_KEEP (64 * 1024)

/* Thread-local: the engine thread (engine*.c) writes contexts without the
 * GIL while Python threads may use the same functions. */
static _Thread_local fr_buf json_buf; /* the context being built */
static _Thread_local fr_buf tmp_buf;  /* one decoded cookie value at a time */
static _Thread_local fr_buf ck_buf;   /* cookie entries + hash table */

#define PUT_LIT(b, lit)                          \
    do {                                         \
        if (FR_BUF_LIT((b), lit) < 0)            \
            return -1;                           \
    } while (0)
#define PUT_ESC(b, s, n)                                              \
    do {                                                              \
        if (fr_json_escape((b), (const unsigned char *)(s), (n)) < 0) \
            return -1;                                                \
    } while (0)

/* Go's textproto.CanonicalMIMEHeaderKey for a token: upper-case the first
 * letter and every letter after '-', lower-case the rest. */
void fr_put_canonical(fr_buf *b, const unsigned char *s, size_t n)
{
    int upper = 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (upper && c >= 'a' && c <= 'z')
            c = (unsigned char)(c - 32);
        else if (!upper && c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        b->data[b->len++] = (char)c;
        upper = c == '-';
    }
}

static int write_headers(fr_buf *b, const RequestObject *r)
{
    const unsigned char *head = fr_req_head(r);
    unsigned char done[FR_MAX_HEADERS];
    int first = 1;
    memset(done, 0, sizeof(done));
    PUT_LIT(b, "\"headers\":{");
    for (int i = 0; i < r->nheaders; i++) {
        if (done[i] || i == r->host_index)
            continue;
        const fr_hdr *hi = &r->hdrs[i];
        const unsigned char *name = head + hi->name_off;
        if (fr_buf_reserve(b, hi->name_len + 8) < 0)
            return -1;
        if (!first)
            fr_buf_putc(b, ',');
        first = 0;
        fr_buf_putc(b, '"');
        fr_put_canonical(b, name, hi->name_len);
        fr_buf_put(b, "\":[\"", 4);
        PUT_ESC(b, head + hi->value_off, hi->value_len);
        PUT_LIT(b, "\"");
        for (int k = i + 1; k < r->nheaders; k++) {
            const fr_hdr *hk = &r->hdrs[k];
            if (done[k] || hk->name_len != hi->name_len ||
                !fr_ieq2(head + hk->name_off, name, hi->name_len))
                continue;
            done[k] = 1;
            PUT_LIT(b, ",\"");
            PUT_ESC(b, head + hk->value_off, hk->value_len);
            PUT_LIT(b, "\"");
        }
        PUT_LIT(b, "]");
    }
    PUT_LIT(b, "}");
    return 0;
}

/* ------------------------------------------------------------- cookies */

static int is_trim_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Is every '%' followed by two hex digits (url.PathUnescape succeeds)? */
static int pct_valid(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n || fr_hexval[s[i + 1]] < 0 || fr_hexval[s[i + 2]] < 0)
                return 0;
            i += 2;
        }
    }
    return 1;
}

/* Parse one Cookie header value into entries (Go's readCookies). */
static int collect_cookies(fr_buf *ents, const unsigned char *head, uint32_t off, uint32_t len)
{
    const unsigned char *v = head + off;
    size_t i = 0;
    while (i < len) {
        size_t s = i;
        while (i < len && v[i] != ';')
            i++;
        size_t e = i;
        if (i < len)
            i++; /* skip ';' */
        while (s < e && is_trim_ws(v[s]))
            s++;
        while (e > s && is_trim_ws(v[e - 1]))
            e--;
        if (s == e)
            continue;
        size_t eq = s;
        while (eq < e && v[eq] != '=')
            eq++;
        size_t ns = s, ne = eq;
        while (ns < ne && is_trim_ws(v[ns]))
            ns++;
        while (ne > ns && is_trim_ws(v[ne - 1]))
            ne--;
        if (ns == ne)
            continue;
        int ok = 1;
        for (size_t k = ns; k < ne; k++)
            if (!fr_tchar[v[k]]) {
                ok = 0;
                break;
            }
        if (!ok)
            continue;
        size_t vs = eq < e ? eq + 1 : e, ve = e;
        if (ve - vs > 1 && v[vs] == '"' && v[ve - 1] == '"') {
            vs++;
            ve--;
        }
        for (size_t k = vs; k < ve; k++)
            if (!fr_cookie_value_char[v[k]]) {
                ok = 0;
                break;
            }
        if (!ok || !pct_valid(v + vs, ve - vs))
            continue;
        fr_cookie ce = {(uint32_t)(off + ns), (uint32_t)(ne - ns), (uint32_t)(off + vs),
                         (uint32_t)(ve - vs)};
        if (fr_buf_append(ents, &ce, sizeof(ce)) < 0)
            return -1;
    }
    return 0;
}

static uint32_t fnv1a(const unsigned char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 16777619u;
    return h;
}

Py_ssize_t fr_ctx_cookies(fr_buf *ck, const RequestObject *r, const fr_cookie **out)
{
    const unsigned char *head = fr_req_head(r);
    ck->len = 0;
    for (int i = 0; i < r->nheaders; i++) {
        const fr_hdr *hd = &r->hdrs[i];
        if (hd->name_len == 6 && fr_ieq(head + hd->name_off, "cookie", 6)) {
            if (collect_cookies(ck, head, hd->value_off, hd->value_len) < 0)
                return -1;
        }
    }
    size_t n = ck->len / sizeof(fr_cookie);
    *out = (const fr_cookie *)ck->data;
    if (n == 0)
        return 0;
    /* Open-addressing table name -> index of the last cookie with that name,
     * so "last value wins" costs O(n) even for thousands of cookies; then
     * the indexes of the survivors, to compact the entries in place. */
    size_t cap = 8;
    while (cap < 2 * n)
        cap *= 2;
    size_t ents_bytes = n * sizeof(fr_cookie);
    if (fr_buf_reserve(ck, (cap + n) * sizeof(uint32_t)) < 0)
        return -1;
    fr_cookie *ents = (fr_cookie *)ck->data;
    *out = ents; /* the reserve above may have moved the entries */
    uint32_t *table = (uint32_t *)(ck->data + ents_bytes);
    uint32_t *keep = table + cap;
    memset(table, 0xFF, cap * sizeof(uint32_t));
    for (size_t i = 0; i < n; i++) {
        const unsigned char *nm = head + ents[i].name_off;
        size_t slot = fnv1a(nm, ents[i].name_len) & (cap - 1);
        for (;;) {
            uint32_t t = table[slot];
            if (t == UINT32_MAX || (ents[t].name_len == ents[i].name_len &&
                                    memcmp(head + ents[t].name_off, nm, ents[i].name_len) == 0)) {
                table[slot] = (uint32_t)i;
                break;
            }
            slot = (slot + 1) & (cap - 1);
        }
    }
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *nm = head + ents[i].name_off;
        size_t slot = fnv1a(nm, ents[i].name_len) & (cap - 1);
        while (table[slot] != UINT32_MAX) {
            uint32_t t = table[slot];
            if (ents[t].name_len == ents[i].name_len &&
                memcmp(head + ents[t].name_off, nm, ents[i].name_len) == 0)
                break;
            slot = (slot + 1) & (cap - 1);
        }
        if (table[slot] == (uint32_t)i) /* else a later cookie has this name */
            keep[kept++] = (uint32_t)i;
    }
    for (size_t k = 0; k < kept; k++) /* keep[k] >= k: no entry is overwritten before it is read */
        ents[k] = ents[keep[k]];
    return (Py_ssize_t)kept;
}

int fr_ctx_cookie_value(fr_buf *b, const RequestObject *r, const fr_cookie *c)
{
    const unsigned char *v = fr_req_head(r) + c->val_off;
    size_t vl = c->val_len;
    if (fr_buf_reserve(b, vl) < 0)
        return -1;
    for (size_t k = 0; k < vl; k++) {
        if (v[k] == '%') {
            b->data[b->len++] = (char)(fr_hexval[v[k + 1]] * 16 + fr_hexval[v[k + 2]]);
            k += 2;
        }
        else
            b->data[b->len++] = (char)v[k];
    }
    return 0;
}

static void fr_ctx_scratch_trim(void)
{
    fr_buf_trim(&ck_buf, SCRATCH_KEEP);
    fr_buf_trim(&tmp_buf, SCRATCH_KEEP);
}

static int write_cookies(fr_buf *b, const RequestObject *r)
{
    const unsigned char *head = fr_req_head(r);
    const fr_cookie *ents;
    Py_ssize_t n = fr_ctx_cookies(&ck_buf, r, &ents);
    if (n < 0)
        return -1;
    PUT_LIT(b, "\"cookies\":{");
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i > 0)
            PUT_LIT(b, ",");
        /* names are tokens: no escaping needed */
        if (fr_buf_reserve(b, ents[i].name_len + 4) < 0)
            return -1;
        fr_buf_putc(b, '"');
        fr_buf_put(b, head + ents[i].name_off, ents[i].name_len);
        fr_buf_put(b, "\":\"", 3);
        tmp_buf.len = 0;
        if (fr_ctx_cookie_value(&tmp_buf, r, &ents[i]) < 0)
            return -1;
        PUT_ESC(b, tmp_buf.data, tmp_buf.len);
        PUT_LIT(b, "\"");
    }
    PUT_LIT(b, "}");
    return 0;
}

/* -------------------------------------------------------------- context */

int fr_write_context_json(fr_buf *b, const RequestObject *r, const ctx_args *a)
{
    const unsigned char *head = fr_req_head(r);
    const unsigned char *target = head + r->target_off;
    size_t tlen = r->target_len;

    PUT_LIT(b, "{\"remoteAddr\":\"");
    PUT_ESC(b, a->remote, (size_t)a->remote_len);
    PUT_LIT(b, "\",\"protocol\":\"HTTP/1.");
    if (fr_buf_reserve(b, 1) < 0)
        return -1;
    fr_buf_putc(b, (char)('0' + r->http_minor));
    PUT_LIT(b, "\",\"method\":\"");
    PUT_ESC(b, head + r->method_off, r->method_len);
    PUT_LIT(b, "\",\"uri\":\"");
    /* The parser admits no CR/LF in targets or Host, so "CR/LF removed"
     * holds by construction. */
    if (r->target_form != FR_TARGET_ABSOLUTE) {
        PUT_ESC(b, a->scheme, (size_t)a->scheme_len);
        PUT_LIT(b, "://");
        if (r->host_index >= 0 && r->target_form != FR_TARGET_AUTHORITY) {
            const fr_hdr *hh = &r->hdrs[r->host_index];
            PUT_ESC(b, head + hh->value_off, hh->value_len);
        }
    }
    PUT_ESC(b, target, tlen);
    PUT_LIT(b, "\",");
    if (write_headers(b, r) < 0)
        return -1;
    PUT_LIT(b, ",");
    if (write_cookies(b, r) < 0)
        return -1;
    PUT_LIT(b, ",\"rawQuery\":\"");
    const unsigned char *q = memchr(target, '?', tlen);
    if (q != NULL) {
        q++;
        const unsigned char *qe = memchr(q, '#', tlen - (size_t)(q - target));
        if (qe == NULL)
            qe = target + tlen;
        PUT_ESC(b, q, (size_t)(qe - q));
    }
    PUT_LIT(b, "\",\"parsed\":");
    if (a->parsed)
        PUT_LIT(b, "true");
    else
        PUT_LIT(b, "false");
    PUT_LIT(b, ",\"uploads\":");
    if (a->uploads != NULL) {
        if (fr_buf_append(b, a->uploads, (size_t)a->uploads_len) < 0)
            return -1;
    }
    else
        PUT_LIT(b, "null");
    PUT_LIT(b, ",\"attributes\":{}}");
    return 0;
}

/* Shared argument handling (context.h). */
int fr_ctx_args_get(PyObject *req, PyObject *remote, PyObject *scheme, PyObject *parsed,
                    PyObject *uploads, const RequestObject **r, ctx_args *a, fr_view *up_view)
{
    up_view->has_view = 0;
    if (!PyObject_TypeCheck(req, &fr_RequestType)) {
        PyErr_Format(PyExc_TypeError, "req must be a fastrr._core.Request, not %.100s",
                     Py_TYPE(req)->tp_name);
        return -1;
    }
    *r = (const RequestObject *)req;
    if (!PyUnicode_Check(remote) || !PyUnicode_Check(scheme)) {
        PyErr_SetString(PyExc_TypeError, "remote_addr and scheme must be str");
        return -1;
    }
    a->remote = PyUnicode_AsUTF8AndSize(remote, &a->remote_len);
    if (a->remote == NULL)
        return -1;
    a->scheme = PyUnicode_AsUTF8AndSize(scheme, &a->scheme_len);
    if (a->scheme == NULL)
        return -1;
    a->parsed = 0;
    if (parsed != NULL && (a->parsed = PyObject_IsTrue(parsed)) < 0)
        return -1;
    a->uploads = NULL;
    a->uploads_len = 0;
    if (uploads != NULL && uploads != Py_None) {
        if (fr_view_get(uploads, up_view, "uploads") < 0)
            return -1;
        a->uploads = up_view->buf;
        a->uploads_len = up_view->len;
        if (a->uploads_len == 0) {
            fr_view_release(up_view);
            PyErr_SetString(PyExc_ValueError, "uploads must be None or non-empty JSON");
            return -1;
        }
    }
    return 0;
}

PyObject *fr_py_encode_http_context(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
    (void)m;
    static const char *const names[] = {"req", "remote_addr", "scheme", "parsed", "uploads"};
    PyObject *a[5];
    const RequestObject *r;
    ctx_args ca;
    fr_view up;

    if (fr_unpack_args("encode_http_context", args, nargs, kw, names, 3, 5, a) < 0)
        return NULL;
    if (fr_ctx_args_get(a[0], a[1], a[2], a[3], a[4], &r, &ca, &up) < 0)
        return NULL;
    json_buf.len = 0;
    PyObject *out = NULL;
    if (fr_write_context_json(&json_buf, r, &ca) == 0)
        out = PyBytes_FromStringAndSize(json_buf.data, (Py_ssize_t)json_buf.len);
    fr_view_release(&up);
    fr_buf_trim(&json_buf, SCRATCH_KEEP);
    fr_ctx_scratch_trim();
    return out;
}

PyObject *fr_py_encode_http_request(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
    (void)m;
    static const char *const names[] = {"req", "remote_addr", "scheme", "body", "parsed", "uploads"};
    PyObject *a[6];
    const RequestObject *r;
    ctx_args ca;
    fr_view up, body;
    PyObject *out = NULL;

    if (fr_unpack_args("encode_http_request", args, nargs, kw, names, 5, 6, a) < 0)
        return NULL;
    if (fr_ctx_args_get(a[0], a[1], a[2], a[4], a[5], &r, &ca, &up) < 0)
        return NULL;
    if (fr_view_get(a[3], &body, "body") < 0) {
        fr_view_release(&up);
        return NULL;
    }
    json_buf.len = 0;
    if (fr_write_context_json(&json_buf, r, &ca) < 0)
        goto done;
    unsigned long long plen = (unsigned long long)json_buf.len + (unsigned long long)body.len;
    if (plen > 0xFFFFFFFFull) {
        PyErr_SetString(PyExc_ValueError, "request frame payload longer than 2**32-1 bytes");
        goto done;
    }
    out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(16 + plen));
    if (out == NULL)
        goto done;
    unsigned char *o = (unsigned char *)PyBytes_AS_STRING(out);
    uint32_t opt = (uint32_t)json_buf.len;
    fr_write_frame_header(o, 0x08 /* FLAG_JSON */, (uint32_t)plen, &opt, 1, 0);
    memcpy(o + 16, json_buf.data, json_buf.len);
    if (body.len)
        memcpy(o + 16 + json_buf.len, body.buf, (size_t)body.len);
done:
    fr_view_release(&body);
    fr_view_release(&up);
    fr_buf_trim(&json_buf, SCRATCH_KEEP);
    fr_ctx_scratch_trim();
    return out;
}
