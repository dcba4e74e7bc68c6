/* HTTP/1.x request-head parser (RFC 9112), strict, zero-copy, pure C.
 *
 * Rules of this file:
 *  - One left-to-right pass over at most max_head bytes. Every byte is
 *    checked against the table of the rule it belongs to (chars.c).
 *  - Reaching the end of the data is never an error by itself: it means
 *    "incomplete" (return 0), or 431 when the data was cut at max_head.
 *    Anything invalid before that point is a 400 at once, so garbage is
 *    refused without waiting for a full head.
 *  - Line ends are CRLF only. A bare LF or a CR not followed by LF anywhere
 *    in the head is a 400 (RFC 9112 §2.2 lets a recipient accept a bare LF;
 *    we do not, so that no proxy in front of us can disagree with us about
 *    where a line ends).
 *  - The framing headers are interpreted here (Content-Length,
 *    Transfer-Encoding, Host, Connection, Expect, Content-Type) while the
 *    header array is filled, so the Python side never re-scans them.
 */
#include <string.h>

#include "chars.h"
#include "http_parser.h"

typedef const unsigned char uc;

static int fail(fr_head *h, int status, const char *reason)
{
    h->err_status = status;
    h->err_reason = reason;
    return -1;
}

/* ------------------------------------------------------------ scanning */

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Does the 8-byte word hold a byte < n (n <= 0x80)? Bytes >= 0x80 never
 * match (the ~x term masks them). Exact as a yes/no answer. */
static inline int word_has_less(uint64_t x, unsigned n)
{
    return ((x - ONES * n) & ~x & HIGHS) != 0;
}

/* Does the word hold the byte value b (b < 0x80)? */
static inline int word_has_byte(uint64_t x, unsigned b)
{
    uint64_t y = x ^ (ONES * b);
    return ((y - ONES) & ~y & HIGHS) != 0;
}

/* Advance over bytes allowed by `table`, which must allow every byte in
 * [lo, 0x7E] and [0x80, 0xFF] and refuse 0x7F (true of fr_field_vchar_ws
 * with lo = 0x20 and fr_target_char with lo = 0x21). Eight bytes at a time
 * while no byte is < lo or DEL; byte by byte around anything else (HTAB). */
static const unsigned char *scan_allowed(uc *p, uc *end, const unsigned char *table, unsigned lo)
{
    for (;;) {
        while (end - p >= 8) {
            uint64_t x;
            memcpy(&x, p, 8);
            if (word_has_less(x, lo) || word_has_byte(x, 0x7F))
                break;
            p += 8;
        }
        uc *stop = (end - p >= 8) ? p + 8 : end;
        while (p < stop) {
            if (!table[*p])
                return p;
            p++;
        }
        if (p == end)
            return p;
    }
}

/* Compare [p, end) with a literal: 1 full match, 0 matching prefix (need
 * more bytes), -1 mismatch. */
static int match_lit(uc *p, uc *end, const char *lit, size_t n)
{
    size_t avail = (size_t)(end - p);
    size_t k = avail < n ? avail : n;
    if (memcmp(p, lit, k) != 0)
        return -1;
    return avail >= n ? 1 : 0;
}

static int is_alpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* Case-insensitive substring search; needle is lowercase. */
static int ci_contains(uc *hay, size_t n, const char *needle, size_t m)
{
    if (m > n)
        return 0;
    for (size_t i = 0; i + m <= n; i++)
        if (fr_ieq(hay + i, needle, m))
            return 1;
    return 0;
}

/* ------------------------------------------------------- request-target */

/* RFC 9112 §3.2
 *   request-target = origin-form / absolute-form / authority-form / asterisk-form
 *   origin-form    = absolute-path [ "?" query ]        ; starts with "/"
 *   absolute-form  = absolute-URI                       ; we require scheme "://"
 *   authority-form = uri-host ":" port                  ; CONNECT only
 *   asterisk-form  = "*"                                ; OPTIONS only
 *   scheme         = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )   (RFC 3986)
 * Returns the form or -1. */
static int classify_target(uc *m, size_t mlen, uc *t, size_t tlen)
{
    if (mlen == 7 && memcmp(m, "CONNECT", 7) == 0) {
        size_t colon = tlen;
        for (size_t i = tlen; i-- > 0;) {
            if (t[i] == ':') {
                colon = i;
                break;
            }
        }
        if (colon == tlen || colon == 0 || colon + 1 == tlen)
            return -1;
        for (size_t i = colon + 1; i < tlen; i++)
            if (!is_digit(t[i]))
                return -1;
        for (size_t i = 0; i < colon; i++)
            if (!fr_host_char[t[i]])
                return -1;
        return FR_TARGET_AUTHORITY;
    }
    if (t[0] == '/')
        return FR_TARGET_ORIGIN;
    if (tlen == 1 && t[0] == '*')
        return (mlen == 7 && memcmp(m, "OPTIONS", 7) == 0) ? FR_TARGET_ASTERISK : -1;
    if (!is_alpha(t[0]))
        return -1;
    size_t i = 1;
    while (i < tlen && (is_alpha(t[i]) || is_digit(t[i]) || t[i] == '+' || t[i] == '-' || t[i] == '.'))
        i++;
    if (tlen - i < 3 || memcmp(t + i, "://", 3) != 0)
        return -1;
    return FR_TARGET_ABSOLUTE;
}

/* --------------------------------------------------- header semantics */

/* RFC 9110 §8.6
 *   Content-Length = 1*DIGIT
 * A list of identical values ("42, 42", or repeated fields) is accepted as
 * §8.6 allows; differing values are a 400. Values above 2^62 are a 400.
 * Returns 0, -1 (invalid) or -2 (conflicting). */
static int parse_content_length(uc *v, size_t n, int64_t *cl)
{
    size_t i = 0;
    for (;;) {
        while (i < n && fr_is_ows(v[i]))
            i++;
        size_t s = i;
        uint64_t x = 0;
        while (i < n && is_digit(v[i])) {
            unsigned d = (unsigned)(v[i] - '0');
            if (x > ((1ULL << 62) - d) / 10)
                return -1;
            x = x * 10 + d;
            i++;
        }
        if (i == s)
            return -1;
        while (i < n && fr_is_ows(v[i]))
            i++;
        if (*cl >= 0 && (uint64_t)*cl != x)
            return -2;
        *cl = (int64_t)x;
        if (i == n)
            return 0;
        if (v[i] != ',')
            return -1;
        i++;
    }
}

/* RFC 9110 §7.6.1
 *   Connection        = #connection-option
 *   connection-option = token
 * Only "close" and "keep-alive" matter here (case-insensitive). */
static void connection_options(uc *v, size_t n, int *close, int *keep)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (fr_is_ows(v[i]) || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && fr_is_ows(v[e - 1]))
            e--;
        if (e - s == 5 && fr_ieq(v + s, "close", 5))
            *close = 1;
        else if (e - s == 10 && fr_ieq(v + s, "keep-alive", 10))
            *keep = 1;
    }
}

/* ---------------------------------------------------------------- parse */

int fr_parse_head(const unsigned char *buf, size_t len, size_t max_head, fr_head *h)
{
    uc *p = buf;
    uc *end = buf + (len < max_head ? len : max_head);
    const int capped = len > max_head;
    int host_count = 0, te_count = 0, cl_seen = 0, conn_close = 0, conn_keep = 0;
    int expect = 0, ctype_seen = 0;

    h->nheaders = 0;
    h->host_index = -1;
    h->content_length = -1;
    h->chunked = h->keep_alive = h->expect_continue = 0;
    h->body_kind = FR_BODY_OTHER;
    h->err_status = 0;
    h->err_reason = NULL;

/* Out of data: incomplete, or too large if we stopped at max_head. */
#define NEED_MORE() return capped ? fail(h, 431, "request header fields too large") : 0

    /* RFC 9112 §2.2: "a server that is expecting to receive and parse a
     * request-line SHOULD ignore at least one empty line (CRLF) received
     * prior to the request-line". */
    for (int i = 0;; i++) {
        if (p == end)
            NEED_MORE();
        if (*p == '\r') {
            if (p + 1 == end)
                NEED_MORE();
            if (p[1] != '\n')
                return fail(h, 400, "bare CR");
            if (i == FR_MAX_LEADING_EMPTY_LINES)
                return fail(h, 400, "too many empty lines before request line");
            p += 2;
            continue;
        }
        if (*p == '\n')
            return fail(h, 400, "bare LF");
        break;
    }
    h->start = (uint32_t)(p - buf);

    /* RFC 9112 §3
     *   request-line = method SP request-target SP HTTP-version
     *   method       = token
     * Exactly one SP between the parts (the "MAY parse on whitespace"
     * leniency of §3 is not taken). */
    uc *m = p;
    while (p < end && fr_tchar[*p])
        p++;
    if (p == end)
        NEED_MORE();
    if (*p != ' ')
        return fail(h, 400, (p == m || (*p != '\r' && *p != '\n')) ? "invalid method"
                                                                   : "invalid request line");
    if (p == m)
        return fail(h, 400, "invalid method");
    h->method_off = (uint32_t)(m - buf);
    h->method_len = (uint32_t)(p - m);

    uc *t = ++p;
    p = scan_allowed(p, end, fr_target_char, 0x21);
    if (p == end)
        NEED_MORE();
    if (*p != ' ')
        return fail(h, 400, (*p == '\r' || *p == '\n') ? "invalid request line"
                                                       : "invalid request target");
    if (p == t)
        return fail(h, 400, "invalid request target");
    h->target_off = (uint32_t)(t - buf);
    h->target_len = (uint32_t)(p - t);
    int form = classify_target(m, h->method_len, t, h->target_len);
    if (form < 0)
        return fail(h, 400, "invalid request target");
    h->target_form = form;

    /* RFC 9112 §2.3
     *   HTTP-version = HTTP-name "/" DIGIT "." DIGIT
     *   HTTP-name    = %s"HTTP"                     ; case-sensitive
     * Only 1.0 and 1.1 are accepted; "HTTP/2.0" here is not h2 (its
     * preface is handled before this parser, if at all). */
    p++;
    int r = match_lit(p, end, "HTTP/", 5);
    if (r < 0)
        return fail(h, 400, "invalid HTTP version");
    if (r == 0)
        NEED_MORE();
    p += 5;
    r = match_lit(p, end, "1.", 2);
    if (r < 0)
        return fail(h, 400, is_digit(*p) ? "unsupported HTTP version" : "invalid HTTP version");
    if (r == 0)
        NEED_MORE();
    p += 2;
    if (p == end)
        NEED_MORE();
    if (*p == '0' || *p == '1')
        h->http_minor = *p - '0';
    else
        return fail(h, 400, is_digit(*p) ? "unsupported HTTP version" : "invalid HTTP version");
    p++;
    if (p == end)
        NEED_MORE();
    if (*p == '\r') {
        if (p + 1 == end)
            NEED_MORE();
        if (p[1] != '\n')
            return fail(h, 400, "bare CR");
        p += 2;
    }
    else if (*p == '\n')
        return fail(h, 400, "bare LF");
    else
        return fail(h, 400, is_digit(*p) ? "unsupported HTTP version" : "invalid HTTP version");

    /* RFC 9112 §5
     *   field-line = field-name ":" OWS field-value OWS
     *   field-name = token
     * "No whitespace is allowed between the field name and colon ... a
     * server MUST reject ... with 400" (§5.1).
     * obs-fold = OWS CRLF RWS (§5.2): a line starting with SP/HTAB is
     * refused with 400 (allowed by §5.2 for servers), as is whitespace
     * between the start-line and the first field (§2.2). */
    for (;;) {
        if (p == end)
            NEED_MORE();
        if (*p == '\r') {
            if (p + 1 == end)
                NEED_MORE();
            if (p[1] != '\n')
                return fail(h, 400, "bare CR");
            p += 2;
            break;
        }
        if (*p == '\n')
            return fail(h, 400, "bare LF");
        if (*p == ' ' || *p == '\t')
            return fail(h, 400, h->nheaders ? "obs-fold in header section"
                                            : "whitespace before first header");
        uc *n = p;
        while (p < end && fr_tchar[*p])
            p++;
        if (p == end)
            NEED_MORE();
        if (*p != ':')
            return fail(h, 400, fr_is_ows(*p) ? "whitespace before colon" : "invalid header name");
        if (p == n)
            return fail(h, 400, "invalid header name");
        size_t name_len = (size_t)(p - n);
        p++;
        while (p < end && fr_is_ows(*p))
            p++;
        uc *vs = p;
        p = scan_allowed(p, end, fr_field_vchar_ws, 0x20);
        if (p == end)
            NEED_MORE();
        if (*p == '\r') {
            if (p + 1 == end)
                NEED_MORE();
            if (p[1] != '\n')
                return fail(h, 400, "bare CR");
        }
        else if (*p == '\n')
            return fail(h, 400, "bare LF");
        else
            return fail(h, 400, "invalid header value");
        uc *ve = p;
        while (ve > vs && fr_is_ows(ve[-1]))
            ve--;
        p += 2;

        if (h->nheaders == FR_MAX_HEADERS)
            return fail(h, 431, "too many headers");
        int idx = h->nheaders++;
        fr_hdr *hd = &h->headers[idx];
        size_t vlen = (size_t)(ve - vs);
        hd->name_off = (uint32_t)(n - buf);
        hd->name_len = (uint32_t)name_len;
        hd->value_off = (uint32_t)(vs - buf);
        hd->value_len = (uint32_t)vlen;

        switch (name_len) {
        case 4:
            if (fr_ieq(n, "host", 4) && host_count++ == 0)
                h->host_index = idx;
            break;
        case 6:
            if (fr_ieq(n, "expect", 6) && vlen == 12 && fr_ieq(vs, "100-continue", 12))
                expect = 1;
            break;
        case 10:
            if (fr_ieq(n, "connection", 10))
                connection_options(vs, vlen, &conn_close, &conn_keep);
            break;
        case 12:
            /* RoadRunner looks at the first Content-Type only, by substring. */
            if (!ctype_seen && fr_ieq(n, "content-type", 12)) {
                ctype_seen = 1;
                if (ci_contains(vs, vlen, "application/x-www-form-urlencoded", 33))
                    h->body_kind = FR_BODY_URLENCODED;
                else if (ci_contains(vs, vlen, "multipart/form-data", 19))
                    h->body_kind = FR_BODY_MULTIPART;
            }
            break;
        case 14:
            if (fr_ieq(n, "content-length", 14)) {
                cl_seen = 1;
                r = parse_content_length(vs, vlen, &h->content_length);
                if (r == -1)
                    return fail(h, 400, "invalid content-length");
                if (r == -2)
                    return fail(h, 400, "conflicting content-length");
            }
            break;
        case 17:
            /* RFC 9112 §6.1: chunked must be the final coding of a request;
             * any other coding is refused (501 would also be allowed), and
             * so is a list ("gzip, chunked") or a repeated field: we only
             * implement the one coding. */
            if (fr_ieq(n, "transfer-encoding", 17)) {
                if (++te_count > 1)
                    return fail(h, 400, "multiple transfer-encoding headers");
                if (!(vlen == 7 && fr_ieq(vs, "chunked", 7)))
                    return fail(h, 400, "unsupported transfer-encoding");
            }
            break;
        default:
            break;
        }
    }
    h->head_len = (size_t)(p - buf);

    /* RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status
     * code to any HTTP/1.1 request message that lacks a Host header field
     * and to any request message that contains more than one Host header
     * field line or a Host header field with an invalid field value." */
    if (host_count > 1)
        return fail(h, 400, "multiple host headers");
    if (host_count == 0 && h->http_minor == 1)
        return fail(h, 400, "missing host header");
    if (host_count) {
        fr_hdr *hd = &h->headers[h->host_index];
        for (uint32_t i = 0; i < hd->value_len; i++)
            if (!fr_host_char[buf[hd->value_off + i]])
                return fail(h, 400, "invalid host header");
    }
    /* RFC 9112 §6.3: Transfer-Encoding and Content-Length together "ought
     * to be handled as an error" (request smuggling); and §6.1: a server
     * MAY reject Transfer-Encoding in an HTTP/1.0 request - we do. */
    if (te_count) {
        if (cl_seen)
            return fail(h, 400, "content-length and transfer-encoding both present");
        if (h->http_minor == 0)
            return fail(h, 400, "transfer-encoding in HTTP/1.0 request");
        h->chunked = 1;
    }
    if (h->http_minor == 1) {
        h->keep_alive = !conn_close;
        h->expect_continue = expect;
    }
    else {
        h->keep_alive = conn_keep && !conn_close;
    }
    return 1;
#undef NEED_MORE
}
