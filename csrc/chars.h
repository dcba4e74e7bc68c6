/* Character classes used by every part of fastrr._core (pure C, no Python).
 * Each table is 0/1 per byte; see chars.c for the ABNF rule behind each. */
#ifndef FASTRR_CHARS_H
#define FASTRR_CHARS_H

extern const unsigned char fr_tchar[256];             /* token char           */
extern const unsigned char fr_field_vchar_ws[256];    /* inside a field value */
extern const unsigned char fr_target_char[256];       /* request-target byte  */
extern const unsigned char fr_qdtext[256];            /* quoted-string text   */
extern const unsigned char fr_quoted_pair_char[256];  /* after a backslash    */
extern const unsigned char fr_cookie_value_char[256]; /* Go cookie value byte */
extern const unsigned char fr_host_char[256];         /* Host header byte     */
extern const unsigned char fr_json_plain[256];        /* JSON copy-as-is byte */
extern const signed char fr_hexval[256];              /* HEXDIG value or -1   */

/* ASCII lower-casing that never touches bytes >= 0x80. */
static inline unsigned char fr_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

/* Case-insensitive compare of n bytes; `lower` must already be lowercase. */
static inline int fr_ieq(const unsigned char *a, const char *lower, unsigned long n)
{
    for (unsigned long i = 0; i < n; i++)
        if (fr_lower(a[i]) != (unsigned char)lower[i])
            return 0;
    return 1;
}

/* Case-insensitive compare of two byte strings of the same length n. */
static inline int fr_ieq2(const unsigned char *a, const unsigned char *b, unsigned long n)
{
    for (unsigned long i = 0; i < n; i++)
        if (fr_lower(a[i]) != fr_lower(b[i]))
            return 0;
    return 1;
}

static inline int fr_is_ows(unsigned char c) { return c == ' ' || c == '\t'; }

#endif
