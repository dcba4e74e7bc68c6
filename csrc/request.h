/* The Request object: an immutable, self-contained copy of one request head.
 *
 * Memory layout (one allocation, PyObject_VAR_HEAD with itemsize 1):
 *   [ RequestObject fields | fr_hdr hdrs[nheaders] | head bytes ]
 * The head bytes are the request line through the final CRLF CRLF, copied
 * once from the caller's buffer by parse_request(); every offset in the
 * object (method, target, hdrs[]) is relative to the start of that copy.
 * Python str/bytes objects are only created when an attribute is read
 * (method/target/host are then cached; headers is rebuilt on every access,
 * so the object never references a mutable container and needs no GC). */
#ifndef FASTRR_REQUEST_H
#define FASTRR_REQUEST_H

#include "fastrr.h"
#include "http_parser.h"

typedef struct {
    PyObject_VAR_HEAD
    PyObject *method_str; /* cached, or NULL */
    PyObject *target_str; /* cached, or NULL */
    PyObject *host_str;   /* cached, or NULL */
    Py_ssize_t head_len;  /* bytes consumed from the caller's buffer */
    Py_ssize_t head_size; /* bytes of the stored copy (head_len minus skipped empty lines) */
    int64_t content_length;
    uint32_t method_off, method_len;
    uint32_t target_off, target_len;
    int http_minor, target_form, nheaders, host_index;
    int chunked, keep_alive, expect_continue, body_kind;
    fr_hdr hdrs[]; /* nheaders entries, then head_size bytes */
} RequestObject;

extern PyTypeObject fr_RequestType;

/* Building a RequestObject-shaped block without Python (the engine keeps
 * one per connection in plain memory; its PyObject header is never used):
 * the bytes it needs for head h, and filling it from the parsed buffer. */
size_t fr_request_size(const fr_head *h);
void fr_request_fill(RequestObject *r, const fr_head *h, const unsigned char *buf);

static inline const unsigned char *fr_req_head(const RequestObject *r)
{
    return (const unsigned char *)(r->hdrs + r->nheaders);
}

#endif
