/* What the request-context encoders share: context.c (RoadRunner's JSON
 * context) and proto.c (protobuf http.v1.Request), and any C caller that
 * builds contexts without Python objects (the epoll engine).
 *
 * Both encoders put the same data in the context; the rules (header
 * canonicalisation, Host exclusion, cookie parsing) live in context.c and
 * are used by proto.c through the functions below. Like hotpath.h: the
 * functions that take an fr_buf touch no Python object and need no GIL
 * (fr_buf allocates with PyMem_Raw*). */
#ifndef FASTRR_CONTEXT_H
#define FASTRR_CONTEXT_H

#include "request.h"

/* The per-request values that do not come from the request head. */
typedef struct {
    const char *remote, *scheme; /* UTF-8 */
    Py_ssize_t remote_len, scheme_len;
    int parsed;
    const unsigned char *uploads; /* uploads JSON, or NULL for none */
    Py_ssize_t uploads_len;
} ctx_args;

/* Python argument handling shared by the encoders' wrappers: fills *r
 * (borrowed) and *a; *up_view holds the uploads view, released by the
 * caller. 0 / -1 with an exception. */
int fr_ctx_args_get(PyObject *req, PyObject *remote, PyObject *scheme, PyObject *parsed,
                    PyObject *uploads, const RequestObject **r, ctx_args *a, fr_view *up_view);

/* Append RoadRunner's JSON request context for r to b (the body of
 * encode_http_context). GIL-free: its scratch buffers are thread-local, so
 * the engine thread calls it too. 0 / -1 (no memory). */
int fr_write_context_json(fr_buf *b, const RequestObject *r, const ctx_args *a);

/* Go's textproto.CanonicalMIMEHeaderKey of a token, appended to b; the
 * caller has reserved n bytes. */
void fr_put_canonical(fr_buf *b, const unsigned char *s, size_t n);

/* One cookie: offsets into the request head (fr_req_head). */
typedef struct {
    uint32_t name_off, name_len, val_off, val_len;
} fr_cookie;

/* The cookies RoadRunner hands PHP, from every Cookie field of r (Go's
 * readCookies rules, invalid ones dropped), a repeated name keeping only
 * its last value, in the order of those last occurrences. They are built
 * in the caller's scratch buffer ck (its contents are replaced; *out
 * points into it). Returns the count, or -1 (out of memory). No GIL
 * needed. */
Py_ssize_t fr_ctx_cookies(fr_buf *ck, const RequestObject *r, const fr_cookie **out);

/* Append the value of c with its %XX escapes decoded (fr_ctx_cookies has
 * checked them). 0 / -1 (out of memory). No GIL needed. */
int fr_ctx_cookie_value(fr_buf *b, const RequestObject *r, const fr_cookie *c);

#endif
