/* RoadRunner's protobuf HTTP contexts (protocol doc §3.2, §3.5), without a
 * protobuf library:
 *
 *   message HeaderValue { repeated bytes value = 1; }
 *   message Request  { string remote_addr = 1; string protocol = 2;
 *                      string method = 3; string uri = 4;
 *                      map<string, HeaderValue> header = 5;
 *                      map<string, HeaderValue> cookies = 6;
 *                      string raw_query = 7; bool parsed = 8; bytes uploads = 9;
 *                      map<string, HeaderValue> attributes = 10; }
 *   message Response { int64 status = 1; map<string, HeaderValue> headers = 2; }
 *
 * The fr_proto_* / fr_pb_* functions touch no Python object and need no
 * GIL (the rules of hotpath.h): scratch buffers come from the caller,
 * allocation is fr_buf's (PyMem_Raw*), and out of memory is -1 / -2 with
 * MemoryError set only if the caller holds the GIL. */
#ifndef FASTRR_PROTO_H
#define FASTRR_PROTO_H

#include "context.h"

/* Append the serialized http.v1.Request for r to out: the same data as the
 * JSON context (context.c), proto3-encoded (default values omitted, fields
 * in number order, minimal varints). String fields are valid UTF-8 (bad
 * bytes become U+FFFD, as in the JSON context); header and cookie values
 * are `bytes` and go out exactly as received / %XX-decoded.
 * 0 / -1 (MemoryError). */
int fr_proto_encode_request(fr_buf *out, fr_buf *scratch, const RequestObject *r,
                            const ctx_args *a);

/* Shrink the Python API's scratch buffers (module-level, in proto.c) after
 * an unusually large request or response. */
void fr_proto_scratch_trim(void);

/* A decoded http.v1.Response. Entries point into the caller's context
 * bytes, which must outlive the result; the array lives in the scratch
 * buffer given to fr_proto_parse_response. */
typedef struct {
    const unsigned char *key; /* map key: the header name as sent */
    size_t key_len;
    const unsigned char *ent; /* the whole map entry, to walk its values */
    size_t ent_len;
} fr_pb_header;

typedef struct {
    int64_t status;            /* 0 when absent (proto3) */
    const fr_pb_header *hdrs;  /* in the scratch buffer */
    size_t nhdrs;
} fr_pb_response;

/* Parse and validate an http.v1.Response; `ents` is the caller's scratch
 * buffer for the header table. Returns 0; -1 for malformed input (*err: a
 * static message): truncated or overlong varints (over 10 bytes or 64
 * bits), a tag over 32 bits, field number 0, wire types 6/7, lengths past
 * the end, a known field with the wrong wire type, unbalanced or too deeply
 * nested groups; -2 when out of memory. Unknown fields are skipped
 * (groups included). Map semantics: a repeated key keeps its last entry,
 * at the position of that entry; map keys are not checked for UTF-8. */
int fr_proto_parse_response(fr_buf *ents, const unsigned char *p, size_t n, fr_pb_response *out,
                            const char **err);

/* Walks the values of one header (every `value` of every HeaderValue in
 * the entry, in order; the entry was validated by the parse). */
typedef struct {
    const unsigned char *p, *end;   /* the map entry */
    const unsigned char *vp, *vend; /* the HeaderValue being walked (empty: none) */
} fr_pb_values;

void fr_pb_values_init(fr_pb_values *it, const fr_pb_header *h);
/* 1 and the next value in *v / *n, or 0 at the end. */
int fr_pb_values_next(fr_pb_values *it, const unsigned char **v, size_t *n);

/* Append the JSON response context {"status":N,"headers":{"Name":["v",..]}}
 * for a parsed response. Names and values are escaped for JSON ('"', '\\',
 * bytes < 0x20) and otherwise copied as they are: the output is valid JSON
 * when they are valid UTF-8, and build_response's reader takes any bytes
 * >= 0x80 either way, so nothing is lost. 0 / -1 (MemoryError). */
int fr_proto_response_json(fr_buf *out, const fr_pb_response *resp);

/* Python wrappers (registered in module.c). */
PyObject *fr_py_encode_http_context_proto(PyObject *m, PyObject *const *args, Py_ssize_t nargs,
                                          PyObject *kw);
PyObject *fr_py_encode_http_request_proto(PyObject *m, PyObject *const *args, Py_ssize_t nargs,
                                          PyObject *kw);
PyObject *fr_py_proto_response_to_json(PyObject *m, PyObject *arg);

#endif
