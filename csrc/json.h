/* Minimal JSON for the RoadRunner contexts: an escaper for writing (with
 * Go-compatible UTF-8 repair) and a strict pull reader for the worker's
 * response context. Pure C apart from fr_buf's PyMem_Raw allocator: safe
 * without the GIL. */
#ifndef FASTRR_JSON_H
#define FASTRR_JSON_H

#include "fastrr.h"

/* Append s as the inside of a JSON string (no quotes): '"' and '\' are
 * backslash-escaped, bytes < 0x20 become \u00XX, valid UTF-8 passes
 * through, and every byte that does not start a valid UTF-8 sequence
 * becomes U+FFFD - exactly what Go's encoding/json does (one U+FFFD per
 * bad byte). 0 / -1 (MemoryError). */
int fr_json_escape(fr_buf *b, const unsigned char *s, size_t n);

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if s[0] does not
 * start one (Go's utf8.DecodeRune rules: no overlongs, no surrogates, max
 * U+10FFFF, no truncated sequences). s[0] must be >= 0x80. */
size_t fr_utf8_seq_len(const unsigned char *s, size_t n);

typedef struct {
    const unsigned char *p, *end, *base;
    const char *err; /* static message when a call returned -1 */
} fr_jr;

void fr_jr_ws(fr_jr *j);
/* At '"': decode the string, appending its UTF-8 bytes to out. Lone
 * surrogate escapes become U+FFFD. Raw control bytes are an error. */
int fr_jr_string(fr_jr *j, fr_buf *out);
/* Skip any value (depth-limited). */
int fr_jr_skip(fr_jr *j, int depth);
/* At a number: validate it; *is_int says whether it had no fraction and
 * no exponent. [*s, *s + *n) is its text. */
int fr_jr_number(fr_jr *j, const unsigned char **s, size_t *n, int *is_int);
/* Consume the literal (true/false/null). */
int fr_jr_literal(fr_jr *j, const char *lit, size_t n);

#endif
