/* RoadRunner's protobuf HTTP contexts: http.v1.Request out, http.v1.Response
 * in (messages in proto.h). A hand-written encoder/decoder for exactly these
 * three messages; no protobuf library.
 *
 * Wire format (protobuf encoding spec): a message is a sequence of
 * (tag, value) with tag = varint(field_number << 3 | wire_type); wire type
 * 0 = varint, 1 = 8 bytes, 2 = varint length + bytes (strings, bytes,
 * nested messages, map entries), 5 = 4 bytes, 3/4 = group start/end
 * (deprecated, only skipped). A map<K, V> field is a repeated nested
 * message { K key = 1; V value = 2; }.
 *
 * Request decisions: the content is the JSON context's (context.c does the
 * header merging, canonical names and cookie rules; we only encode); proto3
 * omits default values, so an empty remote_addr / raw_query, parsed=false,
 * absent uploads and the empty attributes map are not written. `string`
 * fields must be UTF-8 (PHP's google/protobuf refuses anything else):
 * invalid bytes become U+FFFD, one per byte, like the JSON encoder.
 * HeaderValue.value is `bytes`: header and cookie values are sent as they
 * are (RoadRunner does the same), not repaired.
 *
 * Nested lengths are written after their content: one byte is reserved
 * for the length, and the content is moved up in the rare case the length
 * needs more (content of 128 bytes or more), so the output always has
 * minimal varints and equals what protobuf's own serializer produces up to
 * map order. */
#include "proto.h"
#include "json.h"

#define SCRATCH_KEEP (64 * 1024)
#define PB_MAX_DEPTH 64

/* Scratch of the Python API (the GIL protects it); C callers such as the
 * engine pass their own. */
static fr_buf pb_buf;  /* the request context being built */
static fr_buf ck_buf;  /* cookie entries (fr_ctx_cookies) */
static fr_buf ent_buf; /* response: header entries + dedup table */
static fr_buf out_buf; /* response: JSON being built */

/* ------------------------------------------------------------- writing */

/* Tags of the fields we write: field << 3 | wire type. All below 0x80,
 * so each is one byte. */
enum {
    TAG_REMOTE_ADDR = 1 << 3 | 2,
    TAG_PROTOCOL = 2 << 3 | 2,
    TAG_METHOD = 3 << 3 | 2,
    TAG_URI = 4 << 3 | 2,
    TAG_HEADER = 5 << 3 | 2,
    TAG_COOKIES = 6 << 3 | 2,
    TAG_RAW_QUERY = 7 << 3 | 2,
    TAG_PARSED = 8 << 3 | 0,
    TAG_UPLOADS = 9 << 3 | 2,
    TAG_MAP_KEY = 1 << 3 | 2,
    TAG_MAP_VALUE = 2 << 3 | 2,
    TAG_HV_VALUE = 1 << 3 | 2,
};

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Caller reserved 10 bytes. */
static void put_varint(fr_buf *b, uint64_t v)
{
    while (v >= 0x80) {
        b->data[b->len++] = (char)(v | 0x80);
        v >>= 7;
    }
    b->data[b->len++] = (char)v;
}

/* Start a length-delimited field: the tag and one byte for the length.
 * *start is where the content begins; pb_close writes the length. */
static int pb_open(fr_buf *b, int tag, size_t *start)
{
    if (fr_buf_reserve(b, 2) < 0)
        return -1;
    b->data[b->len++] = (char)tag;
    b->len++;
    *start = b->len;
    return 0;
}

static int pb_close(fr_buf *b, size_t start)
{
    size_t n = b->len - start;
    size_t extra = varint_size(n) - 1;
    if (extra) {
        if (fr_buf_reserve(b, extra) < 0)
            return -1;
        memmove(b->data + start + extra, b->data + start, n);
    }
    size_t end = b->len + extra;
    b->len = start - 1;
    put_varint(b, n);
    b->len = end;
    return 0;
}

/* tag, length, bytes - for content whose length is known. */
static int pb_bytes(fr_buf *b, int tag, const void *s, size_t n)
{
    if (fr_buf_reserve(b, n + 11) < 0)
        return -1;
    fr_buf_putc(b, (char)tag);
    put_varint(b, n);
    fr_buf_put(b, s, n);
    return 0;
}

/* Append s with every byte that does not start a valid UTF-8 sequence
 * replaced by U+FFFD (fr_utf8_seq_len: Go's rules, as the JSON escaper). */
static int put_utf8(fr_buf *b, const unsigned char *s, size_t n)
{
    if (n > ((size_t)PY_SSIZE_T_MAX) / 3)
        return fr_no_memory();
    if (fr_buf_reserve(b, n * 3) < 0)
        return -1;
    unsigned char *o = (unsigned char *)b->data + b->len;
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            *o++ = s[i++];
            continue;
        }
        size_t k = fr_utf8_seq_len(s + i, n - i);
        if (k) {
            memcpy(o, s + i, k);
            o += k;
            i += k;
        }
        else {
            *o++ = 0xEF;
            *o++ = 0xBF;
            *o++ = 0xBD;
            i++;
        }
    }
    b->len = (size_t)((char *)o - b->data);
    return 0;
}

/* A proto3 string field: omitted when empty, UTF-8 repaired. */
static int pb_string(fr_buf *b, int tag, const unsigned char *s, size_t n)
{
    size_t start;
    if (n == 0)
        return 0;
    if (pb_open(b, tag, &start) < 0 || put_utf8(b, s, n) < 0)
        return -1;
    return pb_close(b, start);
}

/* header = 5: map<string, HeaderValue>, merged and named as context.c's
 * write_headers does (canonical name, Host left out, repeated names in one
 * entry, values in arrival order, entries in order of first appearance). */
static int write_headers(fr_buf *b, const RequestObject *r)
{
    const unsigned char *head = fr_req_head(r);
    unsigned char done[FR_MAX_HEADERS];
    memset(done, 0, sizeof(done));
    for (int i = 0; i < r->nheaders; i++) {
        if (done[i] || i == r->host_index)
            continue;
        const fr_hdr *hi = &r->hdrs[i];
        const unsigned char *name = head + hi->name_off;
        size_t ent, hv;
        if (pb_open(b, TAG_HEADER, &ent) < 0 || fr_buf_reserve(b, hi->name_len + 11) < 0)
            return -1;
        fr_buf_putc(b, TAG_MAP_KEY);
        put_varint(b, hi->name_len);
        fr_put_canonical(b, name, hi->name_len);
        if (pb_open(b, TAG_MAP_VALUE, &hv) < 0 ||
            pb_bytes(b, TAG_HV_VALUE, head + hi->value_off, hi->value_len) < 0)
            return -1;
        for (int k = i + 1; k < r->nheaders; k++) {
            const fr_hdr *hk = &r->hdrs[k];
            if (done[k] || hk->name_len != hi->name_len ||
                !fr_ieq2(head + hk->name_off, name, hi->name_len))
                continue;
            done[k] = 1;
            if (pb_bytes(b, TAG_HV_VALUE, head + hk->value_off, hk->value_len) < 0)
                return -1;
        }
        if (pb_close(b, hv) < 0 || pb_close(b, ent) < 0)
            return -1;
    }
    return 0;
}

/* cookies = 6: map<string, HeaderValue>, one value per cookie. */
static int write_cookies(fr_buf *b, fr_buf *scratch, const RequestObject *r)
{
    const unsigned char *head = fr_req_head(r);
    const fr_cookie *ck;
    Py_ssize_t n = fr_ctx_cookies(scratch, r, &ck);
    if (n < 0)
        return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        size_t ent, hv, val;
        if (pb_open(b, TAG_COOKIES, &ent) < 0 ||
            pb_bytes(b, TAG_MAP_KEY, head + ck[i].name_off, ck[i].name_len) < 0 ||
            pb_open(b, TAG_MAP_VALUE, &hv) < 0 || pb_open(b, TAG_HV_VALUE, &val) < 0 ||
            fr_ctx_cookie_value(b, r, &ck[i]) < 0)
            return -1;
        if (pb_close(b, val) < 0 || pb_close(b, hv) < 0 || pb_close(b, ent) < 0)
            return -1;
    }
    return 0;
}

int fr_proto_encode_request(fr_buf *b, fr_buf *scratch, const RequestObject *r, const ctx_args *a)
{
    const unsigned char *head = fr_req_head(r);
    const unsigned char *target = head + r->target_off;
    size_t tlen = r->target_len;
    size_t start;

    if (pb_string(b, TAG_REMOTE_ADDR, (const unsigned char *)a->remote, (size_t)a->remote_len) < 0)
        return -1;
    char proto[8] = {'H', 'T', 'T', 'P', '/', '1', '.', (char)('0' + r->http_minor)};
    if (pb_bytes(b, TAG_PROTOCOL, proto, 8) < 0)
        return -1;
    /* method is a token: ASCII */
    if (pb_bytes(b, TAG_METHOD, head + r->method_off, r->method_len) < 0)
        return -1;
    /* uri: as in the JSON context; the parser admits no CR/LF, and Host
     * holds only the ASCII bytes Go's ValidHostHeader allows. */
    if (pb_open(b, TAG_URI, &start) < 0)
        return -1;
    if (r->target_form != FR_TARGET_ABSOLUTE) {
        if (put_utf8(b, (const unsigned char *)a->scheme, (size_t)a->scheme_len) < 0 ||
            FR_BUF_LIT(b, "://") < 0)
            return -1;
        if (r->host_index >= 0 && r->target_form != FR_TARGET_AUTHORITY) {
            const fr_hdr *hh = &r->hdrs[r->host_index];
            if (put_utf8(b, head + hh->value_off, hh->value_len) < 0)
                return -1;
        }
    }
    if (put_utf8(b, target, tlen) < 0 || pb_close(b, start) < 0)
        return -1;
    if (write_headers(b, r) < 0 || write_cookies(b, scratch, r) < 0)
        return -1;
    const unsigned char *q = memchr(target, '?', tlen);
    if (q != NULL) {
        q++;
        const unsigned char *qe = memchr(q, '#', tlen - (size_t)(q - target));
        if (qe == NULL)
            qe = target + tlen;
        if (pb_string(b, TAG_RAW_QUERY, q, (size_t)(qe - q)) < 0)
            return -1;
    }
    if (a->parsed) {
        if (fr_buf_reserve(b, 2) < 0)
            return -1;
        fr_buf_putc(b, TAG_PARSED);
        fr_buf_putc(b, 1);
    }
    if (a->uploads != NULL && a->uploads_len > 0 &&
        pb_bytes(b, TAG_UPLOADS, a->uploads, (size_t)a->uploads_len) < 0)
        return -1;
    /* attributes = 10: always empty, so absent */
    return 0;
}

void fr_proto_scratch_trim(void)
{
    fr_buf_trim(&pb_buf, SCRATCH_KEEP);
    fr_buf_trim(&ck_buf, SCRATCH_KEEP);
    fr_buf_trim(&ent_buf, SCRATCH_KEEP);
    fr_buf_trim(&out_buf, SCRATCH_KEEP);
}

PyObject *fr_py_encode_http_context_proto(PyObject *m, PyObject *const *args, Py_ssize_t nargs,
                                          PyObject *kw)
{
    (void)m;
    static const char *const names[] = {"req", "remote_addr", "scheme", "parsed", "uploads"};
    PyObject *a[5];
    const RequestObject *r;
    ctx_args ca;
    fr_view up;

    if (fr_unpack_args("encode_http_context_proto", args, nargs, kw, names, 3, 5, a) < 0)
        return NULL;
    if (fr_ctx_args_get(a[0], a[1], a[2], a[3], a[4], &r, &ca, &up) < 0)
        return NULL;
    pb_buf.len = 0;
    PyObject *out = NULL;
    if (fr_proto_encode_request(&pb_buf, &ck_buf, r, &ca) == 0)
        out = PyBytes_FromStringAndSize(pb_buf.data, (Py_ssize_t)pb_buf.len);
    fr_view_release(&up);
    fr_proto_scratch_trim();
    return out;
}

PyObject *fr_py_encode_http_request_proto(PyObject *m, PyObject *const *args, Py_ssize_t nargs,
                                          PyObject *kw)
{
    (void)m;
    static const char *const names[] = {"req", "remote_addr", "scheme", "body", "parsed", "uploads"};
    PyObject *a[6];
    const RequestObject *r;
    ctx_args ca;
    fr_view up, body;
    PyObject *out = NULL;

    if (fr_unpack_args("encode_http_request_proto", args, nargs, kw, names, 5, 6, a) < 0)
        return NULL;
    if (fr_ctx_args_get(a[0], a[1], a[2], a[4], a[5], &r, &ca, &up) < 0)
        return NULL;
    if (fr_view_get(a[3], &body, "body") < 0) {
        fr_view_release(&up);
        return NULL;
    }
    pb_buf.len = 0;
    if (fr_proto_encode_request(&pb_buf, &ck_buf, r, &ca) < 0)
        goto done;
    unsigned long long plen = (unsigned long long)pb_buf.len + (unsigned long long)body.len;
    if (plen > 0xFFFFFFFFull) {
        PyErr_SetString(PyExc_ValueError, "request frame payload longer than 2**32-1 bytes");
        goto done;
    }
    out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(16 + plen));
    if (out == NULL)
        goto done;
    unsigned char *o = (unsigned char *)PyBytes_AS_STRING(out);
    uint32_t opt = (uint32_t)pb_buf.len;
    fr_write_frame_header(o, 0x80 /* FLAG_PROTO */, (uint32_t)plen, &opt, 1, 0);
    memcpy(o + 16, pb_buf.data, pb_buf.len);
    if (body.len)
        memcpy(o + 16 + pb_buf.len, body.buf, (size_t)body.len);
done:
    fr_view_release(&body);
    fr_view_release(&up);
    fr_proto_scratch_trim();
    return out;
}

/* ------------------------------------------------------------- reading */

typedef struct {
    const unsigned char *p, *end;
    const char *err;
} pb_rd;

static int rd_fail(pb_rd *r, const char *msg)
{
    r->err = msg;
    return -1;
}

/* A varint of at most 10 bytes whose value fits in 64 bits. */
static int rd_varint_slow(pb_rd *r, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (r->p == r->end)
            return rd_fail(r, "truncated varint");
        unsigned char c = *r->p++;
        if (i == 9 && c > 1)
            return rd_fail(r, "varint longer than 64 bits");
        v |= (uint64_t)(c & 0x7F) << (7 * i);
        if (!(c & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return rd_fail(r, "varint longer than 64 bits"); /* not reached */
}

/* Nearly every varint in a response context (tags, lengths under 128) is
 * one byte: that case inline. */
static inline int rd_varint(pb_rd *r, uint64_t *out)
{
    if (r->p < r->end && *r->p < 0x80) {
        *out = *r->p++;
        return 0;
    }
    return rd_varint_slow(r, out);
}

static inline int rd_tag(pb_rd *r, uint32_t *field, int *wt)
{
    uint64_t t;
    if (r->p < r->end && *r->p < 0x80 && *r->p >= 0x08 && (*r->p & 7) <= 5) {
        /* one-byte tag of fields 1..15 with a valid wire type */
        t = *r->p++;
        *field = (uint32_t)(t >> 3);
        *wt = (int)(t & 7);
        return 0;
    }
    if (rd_varint(r, &t) < 0)
        return -1;
    if (t > UINT32_MAX)
        return rd_fail(r, "tag larger than 32 bits");
    *field = (uint32_t)(t >> 3);
    *wt = (int)(t & 7);
    if (*field == 0)
        return rd_fail(r, "field number 0");
    if (*wt > 5)
        return rd_fail(r, "invalid wire type");
    return 0;
}

/* A length-delimited value: *s / *n, checked against the end. */
static int rd_len(pb_rd *r, const unsigned char **s, size_t *n)
{
    uint64_t len;
    if (rd_varint(r, &len) < 0)
        return -1;
    if (len > (uint64_t)(r->end - r->p))
        return rd_fail(r, "length past the end of the data");
    *s = r->p;
    *n = (size_t)len;
    r->p += len;
    return 0;
}

static int rd_skip(pb_rd *r, uint32_t field, int wt, int depth)
{
    const unsigned char *s;
    size_t n;
    uint64_t v;
    switch (wt) {
    case 0:
        return rd_varint(r, &v);
    case 1:
    case 5: {
        size_t k = wt == 1 ? 8 : 4;
        if ((size_t)(r->end - r->p) < k)
            return rd_fail(r, "truncated fixed-size field");
        r->p += k;
        return 0;
    }
    case 2:
        return rd_len(r, &s, &n);
    case 3:
        if (depth >= PB_MAX_DEPTH)
            return rd_fail(r, "groups nested too deeply");
        for (;;) {
            uint32_t f;
            int w;
            if (r->p == r->end)
                return rd_fail(r, "unterminated group");
            if (rd_tag(r, &f, &w) < 0)
                return -1;
            if (w == 4) {
                if (f != field)
                    return rd_fail(r, "mismatched end of group");
                return 0;
            }
            if (rd_skip(r, f, w, depth + 1) < 0)
                return -1;
        }
    default: /* 4 */
        return rd_fail(r, "end of group without a start");
    }
}

/* HeaderValue { repeated bytes value = 1; } */
static int check_header_value(pb_rd *r)
{
    while (r->p < r->end) {
        uint32_t f;
        int wt;
        const unsigned char *s;
        size_t n;
        if (rd_tag(r, &f, &wt) < 0)
            return -1;
        if (f == 1) {
            if (wt != 2)
                return rd_fail(r, "HeaderValue.value is not length-delimited");
            if (rd_len(r, &s, &n) < 0)
                return -1;
        }
        else if (rd_skip(r, f, wt, 0) < 0)
            return -1;
    }
    return 0;
}

/* One map<string, HeaderValue> entry: validates it, returns its key (the
 * last one if repeated; "" if absent). */
static int check_entry(pb_rd *r, fr_pb_header *h)
{
    h->key = r->p;
    h->key_len = 0;
    while (r->p < r->end) {
        uint32_t f;
        int wt;
        const unsigned char *s;
        size_t n;
        if (rd_tag(r, &f, &wt) < 0)
            return -1;
        if (f == 1 || f == 2) {
            if (wt != 2)
                return rd_fail(r, f == 1 ? "header name is not length-delimited"
                                         : "header value is not length-delimited");
            if (rd_len(r, &s, &n) < 0)
                return -1;
            if (f == 1) {
                h->key = s;
                h->key_len = n;
            }
            else {
                pb_rd sub = {s, s + n, NULL};
                if (check_header_value(&sub) < 0)
                    return rd_fail(r, sub.err);
            }
        }
        else if (rd_skip(r, f, wt, 0) < 0)
            return -1;
    }
    return 0;
}

static int same_key(const fr_pb_header *a, const fr_pb_header *b)
{
    return a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0;
}

static uint32_t fnv1a(const unsigned char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 16777619u;
    return h;
}

/* Map semantics: a repeated key keeps its last entry. Compacts ents in
 * place, keeping the order of the surviving (last) entries. */
#define DEDUP_LINEAR_MAX 16
static int dedup(fr_buf *ents, size_t *count)
{
    size_t n = *count, kept = 0;
    fr_pb_header *e = (fr_pb_header *)ents->data;
    if (n < 2)
        return 0;
    if (n <= DEDUP_LINEAR_MAX) {
        for (size_t i = 0; i < n; i++) {
            size_t j = i + 1;
            while (j < n && !same_key(&e[i], &e[j]))
                j++;
            if (j == n) /* no later entry with this key */
                e[kept++] = e[i];
        }
        *count = kept;
        return 0;
    }
    size_t cap = 8;
    while (cap < 2 * n)
        cap *= 2;
    size_t ents_bytes = n * sizeof(fr_pb_header);
    if (fr_buf_reserve(ents, cap * sizeof(uint32_t)) < 0)
        return -1;
    e = (fr_pb_header *)ents->data;
    uint32_t *table = (uint32_t *)(ents->data + ents_bytes);
    memset(table, 0xFF, cap * sizeof(uint32_t));
    /* Walk backwards: the first entry seen with a key is its last one. */
    for (size_t i = n; i-- > 0;) {
        size_t slot = fnv1a(e[i].key, e[i].key_len) & (cap - 1);
        while (table[slot] != UINT32_MAX && !same_key(&e[table[slot]], &e[i]))
            slot = (slot + 1) & (cap - 1);
        if (table[slot] == UINT32_MAX)
            table[slot] = (uint32_t)i;
        else
            e[i].ent = NULL; /* superseded by a later entry */
    }
    for (size_t i = 0; i < n; i++)
        if (e[i].ent != NULL)
            e[kept++] = e[i];
    *count = kept;
    return 0;
}

int fr_proto_parse_response(fr_buf *ents, const unsigned char *p, size_t n, fr_pb_response *out,
                            const char **err)
{
    pb_rd r = {p, p + n, NULL};
    out->status = 0;
    out->hdrs = NULL;
    out->nhdrs = 0;
    *err = NULL;
    ents->len = 0;
    size_t count = 0;
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        if (rd_tag(&r, &f, &wt) < 0)
            goto bad;
        if (f == 1) {
            uint64_t v;
            if (wt != 0) {
                r.err = "status is not a varint";
                goto bad;
            }
            if (rd_varint(&r, &v) < 0)
                goto bad;
            out->status = (int64_t)v; /* int64: two's complement */
        }
        else if (f == 2) {
            const unsigned char *s;
            size_t len;
            fr_pb_header h;
            if (wt != 2) {
                r.err = "headers entry is not length-delimited";
                goto bad;
            }
            if (rd_len(&r, &s, &len) < 0)
                goto bad;
            pb_rd sub = {s, s + len, NULL};
            if (check_entry(&sub, &h) < 0) {
                r.err = sub.err;
                goto bad;
            }
            h.ent = s;
            h.ent_len = len;
            if (fr_buf_append(ents, &h, sizeof(h)) < 0)
                return -2;
            count++;
        }
        else if (rd_skip(&r, f, wt, 0) < 0)
            goto bad;
    }
    if (dedup(ents, &count) < 0)
        return -2;
    out->hdrs = (const fr_pb_header *)ents->data;
    out->nhdrs = count;
    return 0;
bad:
    *err = r.err;
    return -1;
}

void fr_pb_values_init(fr_pb_values *it, const fr_pb_header *h)
{
    it->p = h->ent;
    it->end = h->ent + h->ent_len;
    it->vp = it->vend = h->ent; /* no HeaderValue being walked */
}

int fr_pb_values_next(fr_pb_values *it, const unsigned char **v, size_t *n)
{
    /* The entry was validated: no read below can fail, and every length
     * stays inside its message. The fast paths are what PHP sends: tag
     * and length one byte each. */
    uint32_t f = 0;
    int wt = 0;
    for (;;) {
        while (it->vp < it->vend) {
            const unsigned char *q = it->vp;
            if (q[0] == TAG_HV_VALUE && q[1] < 0x80) {
                *v = q + 2;
                *n = q[1];
                it->vp = q + 2 + q[1];
                return 1;
            }
            pb_rd r = {q, it->vend, NULL};
            (void)rd_tag(&r, &f, &wt);
            if (f == 1) {
                (void)rd_len(&r, v, n);
                it->vp = r.p;
                return 1;
            }
            (void)rd_skip(&r, f, wt, 0);
            it->vp = r.p;
        }
        if (it->p >= it->end)
            return 0;
        const unsigned char *q = it->p;
        if ((q[0] == TAG_MAP_KEY || q[0] == TAG_MAP_VALUE) && q[1] < 0x80) {
            it->p = q + 2 + q[1];
            if (q[0] == TAG_MAP_VALUE) {
                it->vp = q + 2;
                it->vend = it->p;
            }
            continue;
        }
        pb_rd r = {q, it->end, NULL};
        (void)rd_tag(&r, &f, &wt);
        if (f == 2) {
            const unsigned char *s = NULL;
            size_t len = 0;
            (void)rd_len(&r, &s, &len);
            it->vp = s;
            it->vend = s + len;
        }
        else
            (void)rd_skip(&r, f, wt, 0);
        it->p = r.p;
    }
}

/* JSON string content: '"' and '\' escaped, bytes < 0x20 as \u00XX, all
 * other bytes as they are. */
static int put_json_raw(fr_buf *b, const unsigned char *s, size_t n)
{
    static const char hexdig[] = "0123456789abcdef";
    if (n > ((size_t)PY_SSIZE_T_MAX) / 6)
        return fr_no_memory();
    if (fr_buf_reserve(b, n * 6 + 2) < 0)
        return -1;
    char *o = b->data + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        }
        else if (c < 0x20) {
            memcpy(o, "\\u00", 4);
            o[4] = hexdig[c >> 4];
            o[5] = hexdig[c & 15];
            o += 6;
        }
        else
            *o++ = (char)c;
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    return 0;
}

int fr_proto_response_json(fr_buf *b, const fr_pb_response *resp)
{
    if (FR_BUF_LIT(b, "{\"status\":") < 0 || fr_buf_reserve(b, 21) < 0)
        return -1;
    uint64_t mag = (uint64_t)resp->status;
    if (resp->status < 0) {
        fr_buf_putc(b, '-');
        mag = ~mag + 1; /* also right for INT64_MIN */
    }
    fr_buf_put_u64(b, mag);
    if (FR_BUF_LIT(b, ",\"headers\":{") < 0)
        return -1;
    for (size_t i = 0; i < resp->nhdrs; i++) {
        const fr_pb_header *h = &resp->hdrs[i];
        if ((i && FR_BUF_LIT(b, ",") < 0) || put_json_raw(b, h->key, h->key_len) < 0 ||
            FR_BUF_LIT(b, ":[") < 0)
            return -1;
        fr_pb_values it;
        const unsigned char *v;
        size_t vn;
        int first = 1;
        fr_pb_values_init(&it, h);
        while (fr_pb_values_next(&it, &v, &vn)) {
            if ((!first && FR_BUF_LIT(b, ",") < 0) || put_json_raw(b, v, vn) < 0)
                return -1;
            first = 0;
        }
        if (FR_BUF_LIT(b, "]") < 0)
            return -1;
    }
    return FR_BUF_LIT(b, "}}");
}

PyObject *fr_py_proto_response_to_json(PyObject *m, PyObject *arg)
{
    (void)m;
    fr_view v;
    fr_pb_response resp;
    const char *err;
    PyObject *out = NULL;
    if (fr_view_get(arg, &v, "ctx") < 0)
        return NULL;
    int rc = fr_proto_parse_response(&ent_buf, v.buf, (size_t)v.len, &resp, &err);
    if (rc < 0) {
        if (rc == -1)
            fr_raise_frame("invalid protobuf response context from worker: %s", err);
        else if (!PyErr_Occurred())
            PyErr_NoMemory();
        goto done;
    }
    out_buf.len = 0;
    if (fr_proto_response_json(&out_buf, &resp) == 0)
        out = PyBytes_FromStringAndSize(out_buf.data, (Py_ssize_t)out_buf.len);
    else if (!PyErr_Occurred())
        PyErr_NoMemory();
done:
    fr_view_release(&v);
    fr_buf_trim(&ent_buf, SCRATCH_KEEP);
    fr_buf_trim(&out_buf, SCRATCH_KEEP);
    return out;
}
