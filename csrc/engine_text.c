/* Texts the engine writes exactly as the Python front does (its messages
 * come from Python's str/bytes machinery): bytes.decode("utf-8",
 * "replace"), repr() of bytes and str, html.escape(). GIL-free. */
#include "engine.h"

#include <stdarg.h>
#include <stdio.h>

static const char hexdig[] = "0123456789abcdef";

int fe_buf_printf(fr_buf *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if (fr_buf_reserve(out, (size_t)n + 1) < 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(out->data + out->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    out->len += (size_t)n;
    return 0;
}

/* CPython's UTF-8 decoder with errors="replace": one U+FFFD per *maximal
 * subpart* of an ill-formed sequence (a lead byte plus the continuation
 * bytes that were still acceptable), not one per byte as Go does. So
 * "\xe2\x82" + "A" gives one U+FFFD then "A"; "\xed\xa0\x80" (a surrogate)
 * gives three. Returns how many input bytes the sequence at s covers and
 * whether it is valid. */
static size_t seq_at(const unsigned char *s, size_t n, int *valid)
{
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    *valid = 0;
    if (c < 0x80) {
        *valid = 1;
        return 1;
    }
    if (c < 0xC2 || c > 0xF4)
        return 1;
    if (c < 0xE0)
        need = 2;
    else if (c < 0xF0) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    }
    else {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    }
    size_t k = 1;
    if (k < n && s[k] >= lo && s[k] <= hi) {
        k++;
        while (k < need && k < n && s[k] >= 0x80 && s[k] <= 0xBF)
            k++;
    }
    *valid = k == need;
    return k;
}

int fe_utf8_replace(fr_buf *out, const unsigned char *s, size_t n)
{
    if (fr_buf_reserve(out, n + n / 2 + 4) < 0)
        return -1;
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            size_t j = i;
            while (j < n && s[j] < 0x80)
                j++;
            if (fr_buf_append(out, s + i, j - i) < 0)
                return -1;
            i = j;
            continue;
        }
        int valid;
        size_t k = seq_at(s + i, n - i, &valid);
        if (valid) {
            if (fr_buf_append(out, s + i, k) < 0)
                return -1;
        }
        else if (fr_buf_append(out, "\xEF\xBF\xBD", 3) < 0)
            return -1;
        i += k;
    }
    return 0;
}

int fe_repr_bytes(fr_buf *out, const unsigned char *s, size_t n)
{
    int has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char quote = (has_sq && !has_dq) ? '"' : '\'';
    if (fr_buf_reserve(out, 3 + 4 * n) < 0)
        return -1;
    fr_buf_putc(out, 'b');
    fr_buf_putc(out, quote);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == (unsigned char)quote || c == '\\') {
            fr_buf_putc(out, '\\');
            fr_buf_putc(out, (char)c);
        }
        else if (c == '\t' || c == '\n' || c == '\r') {
            fr_buf_putc(out, '\\');
            fr_buf_putc(out, c == '\t' ? 't' : c == '\n' ? 'n' : 'r');
        }
        else if (c < 0x20 || c >= 0x7F) {
            fr_buf_putc(out, '\\');
            fr_buf_putc(out, 'x');
            fr_buf_putc(out, hexdig[c >> 4]);
            fr_buf_putc(out, hexdig[c & 15]);
        }
        else
            fr_buf_putc(out, (char)c);
    }
    fr_buf_putc(out, quote);
    return 0;
}

/* str.isprintable() for a non-ASCII code point, from the Unicode general
 * categories Python treats as non-printable (Cc, Cf, Cs, Co, Zl, Zp, Zs;
 * and Cn for the noncharacters). Unassigned code points count as
 * printable here (Python would escape them): only error texts differ. */
static int printable(uint32_t cp)
{
    static const uint32_t ranges[][2] = {
        {0x80, 0xA0},       {0xAD, 0xAD},       {0x600, 0x605},     {0x61C, 0x61C},
        {0x6DD, 0x6DD},     {0x70F, 0x70F},     {0x8E2, 0x8E2},     {0x1680, 0x1680},
        {0x180E, 0x180E},   {0x2000, 0x200F},   {0x2028, 0x202F},   {0x205F, 0x2064},
        {0x2066, 0x206F},   {0x3000, 0x3000},   {0xD800, 0xF8FF},   {0xFEFF, 0xFEFF},
        {0xFDD0, 0xFDEF},   {0xFFF9, 0xFFFB},   {0xFFFE, 0xFFFF},   {0x110BD, 0x110BD}, {0x1BCA0, 0x1BCA3},
        {0x1D173, 0x1D17A}, {0xE0001, 0xE0001}, {0xE0020, 0xE007F}, {0xF0000, 0x10FFFF},
    };
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
        if (cp >= ranges[i][0] && cp <= ranges[i][1])
            return 0;
    return (cp & 0xFFFE) != 0xFFFE; /* the per-plane noncharacters */
}

int fe_repr_str(fr_buf *out, const unsigned char *s, size_t n)
{
    int has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char quote = (has_sq && !has_dq) ? '"' : '\'';
    if (fr_buf_reserve(out, 2 + 10 * n) < 0)
        return -1;
    fr_buf_putc(out, quote);
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            if (c == (unsigned char)quote || c == '\\') {
                fr_buf_putc(out, '\\');
                fr_buf_putc(out, (char)c);
            }
            else if (c == '\t' || c == '\n' || c == '\r') {
                fr_buf_putc(out, '\\');
                fr_buf_putc(out, c == '\t' ? 't' : c == '\n' ? 'n' : 'r');
            }
            else if (c < 0x20 || c == 0x7F) {
                fr_buf_putc(out, '\\');
                fr_buf_putc(out, 'x');
                fr_buf_putc(out, hexdig[c >> 4]);
                fr_buf_putc(out, hexdig[c & 15]);
            }
            else
                fr_buf_putc(out, (char)c);
            i++;
            continue;
        }
        int valid;
        size_t k = seq_at(s + i, n - i, &valid);
        uint32_t cp = 0xFFFD;
        if (valid) {
            cp = k == 2 ? (uint32_t)(c & 0x1F) : k == 3 ? (uint32_t)(c & 0x0F) : (uint32_t)(c & 0x07);
            for (size_t j = 1; j < k; j++)
                cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if (valid && printable(cp)) {
            fr_buf_put(out, s + i, k);
        }
        else if (!valid) {
            fr_buf_put(out, "\xEF\xBF\xBD", 3);
        }
        else {
            int digits = cp <= 0xFF ? 2 : cp <= 0xFFFF ? 4 : 8;
            fr_buf_putc(out, '\\');
            fr_buf_putc(out, digits == 2 ? 'x' : digits == 4 ? 'u' : 'U');
            for (int d = digits - 1; d >= 0; d--)
                fr_buf_putc(out, hexdig[(cp >> (4 * d)) & 15]);
        }
        i += k;
    }
    fr_buf_putc(out, quote);
    return 0;
}

int fe_html_escape(fr_buf *out, const unsigned char *s, size_t n)
{
    if (fr_buf_reserve(out, 6 * n) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '&': fr_buf_put(out, "&amp;", 5); break;
        case '<': fr_buf_put(out, "&lt;", 4); break;
        case '>': fr_buf_put(out, "&gt;", 4); break;
        case '"': fr_buf_put(out, "&quot;", 6); break;
        case '\'': fr_buf_put(out, "&#x27;", 6); break;
        default: fr_buf_putc(out, (char)s[i]); break;
        }
    }
    return 0;
}
