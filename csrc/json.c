/* JSON writing (escaper) and reading (strict pull reader). See json.h. */
#include "json.h"

static const char hexdig[] = "0123456789abcdef";

size_t fr_utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t need;
    /* RFC 3629 §4
     *   UTF8-2 = %xC2-DF UTF8-tail
     *   UTF8-3 = %xE0 %xA0-BF UTF8-tail / %xE1-EC 2( UTF8-tail ) /
     *            %xED %x80-9F UTF8-tail / %xEE-EF 2( UTF8-tail )
     *   UTF8-4 = %xF0 %x90-BF 2( UTF8-tail ) / %xF1-F3 3( UTF8-tail ) /
     *            %xF4 %x80-8F 2( UTF8-tail )
     *   UTF8-tail = %x80-BF */
    if (c < 0xC2)
        return 0;
    if (c < 0xE0)
        need = 2;
    else if (c < 0xF0) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    }
    else if (c < 0xF5) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    }
    else
        return 0;
    if (n < need)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return need;
}

int fr_json_escape(fr_buf *b, const unsigned char *s, size_t n)
{
    /* Worst case: 6 output bytes per input byte (\u00XX). */
    if (n > ((size_t)PY_SSIZE_T_MAX) / 6)
        return fr_no_memory();
    if (fr_buf_reserve(b, n * 6) < 0)
        return -1;
    unsigned char *o = (unsigned char *)b->data + b->len;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (fr_json_plain[c]) {
            *o++ = c;
            i++;
            continue;
        }
        if (c < 0x80) {
            *o++ = '\\';
            if (c == '"' || c == '\\')
                *o++ = c;
            else {
                *o++ = 'u';
                *o++ = '0';
                *o++ = '0';
                *o++ = (unsigned char)hexdig[c >> 4];
                *o++ = (unsigned char)hexdig[c & 15];
            }
            i++;
            continue;
        }
        size_t k = fr_utf8_seq_len(s + i, n - i);
        if (k) {
            memcpy(o, s + i, k);
            o += k;
            i += k;
        }
        else {
            *o++ = 0xEF; /* U+FFFD */
            *o++ = 0xBF;
            *o++ = 0xBD;
            i++;
        }
    }
    b->len = (size_t)((char *)o - b->data);
    return 0;
}

/* ---------------------------------------------------------------- reader */

static int jr_fail(fr_jr *j, const char *msg)
{
    j->err = msg;
    return -1;
}

void fr_jr_ws(fr_jr *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int put_utf8(fr_buf *out, uint32_t cp)
{
    if (fr_buf_reserve(out, 4) < 0)
        return -1;
    if (cp < 0x80)
        fr_buf_putc(out, (char)cp);
    else if (cp < 0x800) {
        fr_buf_putc(out, (char)(0xC0 | (cp >> 6)));
        fr_buf_putc(out, (char)(0x80 | (cp & 0x3F)));
    }
    else if (cp < 0x10000) {
        fr_buf_putc(out, (char)(0xE0 | (cp >> 12)));
        fr_buf_putc(out, (char)(0x80 | ((cp >> 6) & 0x3F)));
        fr_buf_putc(out, (char)(0x80 | (cp & 0x3F)));
    }
    else {
        fr_buf_putc(out, (char)(0xF0 | (cp >> 18)));
        fr_buf_putc(out, (char)(0x80 | ((cp >> 12) & 0x3F)));
        fr_buf_putc(out, (char)(0x80 | ((cp >> 6) & 0x3F)));
        fr_buf_putc(out, (char)(0x80 | (cp & 0x3F)));
    }
    return 0;
}

static int hex4(const unsigned char *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int d = fr_hexval[p[i]];
        if (d < 0)
            return -1;
        v = (v << 4) | (uint32_t)d;
    }
    *out = v;
    return 0;
}

/* RFC 8259 §7
 *   string = quotation-mark *char quotation-mark
 *   char   = unescaped / escape ( %x22 / %x5C / %x2F / %x62 / %x66 /
 *                                 %x6E / %x72 / %x74 / %x75 4HEXDIG )
 *   unescaped = %x20-21 / %x23-5B / %x5D-10FFFF */
int fr_jr_string(fr_jr *j, fr_buf *out)
{
    const unsigned char *p = j->p + 1, *end = j->end;
    for (;;) {
        const unsigned char *run = p;
        while (p < end && *p != '"' && *p != '\\' && *p >= 0x20)
            p++;
        if (p > run && fr_buf_append(out, run, (size_t)(p - run)) < 0)
            return -1;
        if (p == end)
            return jr_fail(j, "unterminated string");
        if (*p == '"') {
            j->p = p + 1;
            return 0;
        }
        if (*p < 0x20)
            return jr_fail(j, "control character in string");
        /* backslash */
        if (end - p < 2)
            return jr_fail(j, "unterminated string");
        unsigned char e = p[1];
        char c;
        switch (e) {
        case '"': c = '"'; break;
        case '\\': c = '\\'; break;
        case '/': c = '/'; break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (end - p < 6 || hex4(p + 2, &cp) < 0)
                return jr_fail(j, "invalid \\u escape");
            p += 6;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (end - p >= 6 && p[0] == '\\' && p[1] == 'u' && hex4(p + 2, &lo) == 0 &&
                    lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
                else
                    cp = 0xFFFD;
            }
            else if (cp >= 0xDC00 && cp <= 0xDFFF)
                cp = 0xFFFD;
            if (put_utf8(out, cp) < 0)
                return -1;
            continue;
        }
        default:
            return jr_fail(j, "invalid escape");
        }
        if (fr_buf_append(out, &c, 1) < 0)
            return -1;
        p += 2;
    }
}

/* RFC 8259 §6
 *   number = [ minus ] int [ frac ] [ exp ]
 *   int    = zero / ( digit1-9 *DIGIT )
 *   frac   = decimal-point 1*DIGIT
 *   exp    = e [ minus / plus ] 1*DIGIT */
int fr_jr_number(fr_jr *j, const unsigned char **s, size_t *n, int *is_int)
{
    const unsigned char *p = j->p, *end = j->end, *start = p;
    int integral = 1;
    if (p < end && *p == '-')
        p++;
    if (p == end)
        return jr_fail(j, "invalid number");
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    else
        return jr_fail(j, "invalid number");
    if (p < end && *p == '.') {
        integral = 0;
        p++;
        const unsigned char *d = p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == d)
            return jr_fail(j, "invalid number");
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        integral = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        const unsigned char *d = p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == d)
            return jr_fail(j, "invalid number");
    }
    *s = start;
    *n = (size_t)(p - start);
    *is_int = integral;
    j->p = p;
    return 0;
}

int fr_jr_literal(fr_jr *j, const char *lit, size_t n)
{
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
        return jr_fail(j, "invalid literal");
    j->p += n;
    return 0;
}

/* Strings are skipped without decoding into a buffer. */
static int skip_string(fr_jr *j)
{
    const unsigned char *p = j->p + 1, *end = j->end;
    while (p < end) {
        unsigned char c = *p;
        if (c == '"') {
            j->p = p + 1;
            return 0;
        }
        if (c < 0x20)
            return jr_fail(j, "control character in string");
        if (c == '\\') {
            if (end - p < 2)
                break;
            unsigned char e = p[1];
            if (e == 'u') {
                uint32_t cp;
                if (end - p < 6 || hex4(p + 2, &cp) < 0)
                    return jr_fail(j, "invalid \\u escape");
                p += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == 0)
                return jr_fail(j, "invalid escape");
            p += 2;
            continue;
        }
        p++;
    }
    return jr_fail(j, "unterminated string");
}

int fr_jr_skip(fr_jr *j, int depth)
{
    if (depth <= 0)
        return jr_fail(j, "nesting too deep");
    fr_jr_ws(j);
    if (j->p == j->end)
        return jr_fail(j, "unexpected end of data");
    const unsigned char *s;
    size_t n;
    int is_int;
    switch (*j->p) {
    case '"':
        return skip_string(j);
    case 't':
        return fr_jr_literal(j, "true", 4);
    case 'f':
        return fr_jr_literal(j, "false", 5);
    case 'n':
        return fr_jr_literal(j, "null", 4);
    case '[':
    case '{': {
        int obj = *j->p == '{';
        unsigned char close = obj ? '}' : ']';
        j->p++;
        fr_jr_ws(j);
        if (j->p < j->end && *j->p == close) {
            j->p++;
            return 0;
        }
        for (;;) {
            if (obj) {
                fr_jr_ws(j);
                if (j->p == j->end || *j->p != '"')
                    return jr_fail(j, "expected object key");
                if (skip_string(j) < 0)
                    return -1;
                fr_jr_ws(j);
                if (j->p == j->end || *j->p != ':')
                    return jr_fail(j, "expected ':'");
                j->p++;
            }
            if (fr_jr_skip(j, depth - 1) < 0)
                return -1;
            fr_jr_ws(j);
            if (j->p == j->end)
                return jr_fail(j, "unexpected end of data");
            if (*j->p == ',') {
                j->p++;
                continue;
            }
            if (*j->p == close) {
                j->p++;
                return 0;
            }
            return jr_fail(j, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
    default:
        return fr_jr_number(j, &s, &n, &is_int);
    }
}
