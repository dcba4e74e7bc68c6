/* HTTP/1.x request-head parser: pure C, no Python, no allocation.
 *
 * fr_parse_head() parses a request line + header section from the start of
 * a buffer into offsets (picohttpparser style). It is stateless: call it
 * again from offset 0 when more bytes arrived. Work per call is bounded by
 * max_head, so re-parsing a slowly arriving head is O(max_head^2 / read
 * size) at worst, which the 431 limit keeps small. */
#ifndef FASTRR_HTTP_PARSER_H
#define FASTRR_HTTP_PARSER_H

#include <stddef.h>
#include <stdint.h>

#define FR_MAX_HEADERS 100
/* RFC 9112 §2.2 asks servers to ignore "at least one empty line (CRLF)"
 * before the request-line; we ignore up to this many. */
#define FR_MAX_LEADING_EMPTY_LINES 4

enum fr_target_form {
    FR_TARGET_ORIGIN = 0,    /* "/path?query"              */
    FR_TARGET_ABSOLUTE = 1,  /* "http://host/path"         */
    FR_TARGET_ASTERISK = 2,  /* "*" (OPTIONS only)         */
    FR_TARGET_AUTHORITY = 3, /* "host:port" (CONNECT only) */
};

enum fr_body_kind { FR_BODY_OTHER = 0, FR_BODY_URLENCODED = 1, FR_BODY_MULTIPART = 2 };

typedef struct {
    uint32_t name_off, name_len, value_off, value_len;
} fr_hdr;

typedef struct {
    /* Offsets are from the start of the parsed buffer. */
    size_t head_len;    /* bytes consumed, incl. skipped empty lines */
    uint32_t start;     /* offset of the request line                */
    uint32_t method_off, method_len;
    uint32_t target_off, target_len;
    int http_minor;     /* 0 or 1 */
    int target_form;    /* enum fr_target_form */
    int nheaders;
    int host_index;     /* index in headers[] of Host, or -1 */
    int64_t content_length; /* -1 when absent */
    int chunked, keep_alive, expect_continue, body_kind;
    /* Error (return -1). */
    int err_status;
    const char *err_reason;
    fr_hdr headers[FR_MAX_HEADERS];
} fr_head;

/* Returns 1 when the head is complete (h filled in), 0 when more bytes are
 * needed, -1 on error (h->err_status is 400 or 431, h->err_reason a static
 * string). Only the first max_head bytes are ever looked at. */
int fr_parse_head(const unsigned char *buf, size_t len, size_t max_head, fr_head *h);

#endif
