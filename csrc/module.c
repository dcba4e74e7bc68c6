/* fastrr._core: module definition, constants and the function table.
 * The parts: frame.c (goridge frames), http_parser.c + request.c (HTTP/1.1
 * request heads), chunked.c (chunked bodies), context.c (RoadRunner JSON
 * request context), json.c (JSON writer/reader), response.c (HTTP responses
 * from worker replies). See csrc/README.md for the invariants. */
#include "fastrr.h"
/* --- protobuf contexts (proto.c) --- */
#include "proto.h"
/* --- end protobuf contexts --- */

#define FASTCALL_KW(f) ((PyCFunction)(void (*)(void))(f))

/* --- shm ring (ring.c, ring_py.c) --- */
int fr_ring_init(PyObject *module);
/* --- end shm ring --- */

/* --- C HTTP engine (engine*.c) --- */
int fr_engine_init(PyObject *module);
PyObject *fr_py_form_json(PyObject *m, PyObject *arg);
/* --- end C HTTP engine --- */

/* --- broadcast fan-out (fanout.c) --- */
PyObject *fr_py_send_all(PyObject *m, PyObject *const *args, Py_ssize_t nargs);
/* --- end broadcast fan-out --- */

static PyMethodDef core_methods[] = {
    {"crc32", (PyCFunction)fr_py_crc32, METH_O,
     "crc32(data) -> int\n\nCRC-32/IEEE of data (same as zlib.crc32)."},
    {"encode_frame", FASTCALL_KW(fr_py_encode_frame), METH_FASTCALL | METH_KEYWORDS,
     "encode_frame(flags, payload=b'', options=(), byte10=0) -> bytes\n\n"
     "One goridge v3 frame."},
    {"parse_request", FASTCALL_KW(fr_py_parse_request), METH_FASTCALL | METH_KEYWORDS,
     "parse_request(buf, max_head) -> Request | None\n\n"
     "Parse an HTTP/1.x request head from the start of buf."},
    {"encode_http_request", FASTCALL_KW(fr_py_encode_http_request), METH_FASTCALL | METH_KEYWORDS,
     "encode_http_request(req, remote_addr, scheme, body, parsed, uploads=None) -> bytes\n\n"
     "One goridge frame (FLAG_JSON, options [ctx_len]) carrying the RoadRunner "
     "JSON context followed by the body."},
    {"encode_http_context", FASTCALL_KW(fr_py_encode_http_context), METH_FASTCALL | METH_KEYWORDS,
     "encode_http_context(req, remote_addr, scheme, parsed=False, uploads=None) -> bytes\n\n"
     "The RoadRunner JSON request context alone."},
    {"build_response", FASTCALL_KW(fr_py_build_response), METH_FASTCALL | METH_KEYWORDS,
     "build_response(payload, ctx_len, keep_alive, head_request, http_minor, stream=False)"
     " -> (status, bytes)\n\nHTTP/1.x response bytes from a worker reply."},
    {"encode_chunk", (PyCFunction)fr_py_encode_chunk, METH_O,
     "encode_chunk(data) -> bytes\n\nOne chunk of a chunked body (b'' for empty data)."},
    {"http_date", (PyCFunction)fr_py_http_date, METH_NOARGS,
     "http_date() -> bytes\n\nThe current time as an IMF-fixdate (cached per second)."},
    /* --- protobuf contexts (proto.c) --- */
    {"encode_http_request_proto", FASTCALL_KW(fr_py_encode_http_request_proto),
     METH_FASTCALL | METH_KEYWORDS,
     "encode_http_request_proto(req, remote_addr, scheme, body, parsed, uploads=None) -> bytes\n\n"
     "One goridge frame (FLAG_PROTO, options [ctx_len]) carrying the http.v1.Request "
     "context followed by the body."},
    {"encode_http_context_proto", FASTCALL_KW(fr_py_encode_http_context_proto),
     METH_FASTCALL | METH_KEYWORDS,
     "encode_http_context_proto(req, remote_addr, scheme, parsed=False, uploads=None) -> bytes\n\n"
     "The serialized http.v1.Request context alone."},
    {"proto_response_to_json", (PyCFunction)fr_py_proto_response_to_json, METH_O,
     "proto_response_to_json(ctx) -> bytes\n\n"
     "An http.v1.Response context as the JSON response context build_response reads."},
    /* --- end protobuf contexts --- */
    /* --- C HTTP engine (engine*.c) --- */
    {"_form_json", (PyCFunction)fr_py_form_json, METH_O,
     "_form_json(body) -> bytes\n\nThe engine's urlencoded-form encoder (tests only): the JSON "
     "data tree, or ValueError(reason) for a form the engine answers with 400."},
    /* --- end C HTTP engine --- */
    {"send_all", (PyCFunction)(void (*)(void))fr_py_send_all, METH_FASTCALL,
     "send_all(fds, data) -> list[tuple[int, int, int]]\n\nsend() data to every socket in fds "
     "(non-blocking, GIL released); returns (index, bytes sent, errno) for each that did not take "
     "all of it."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "fastrr._core",
    .m_doc = "fastrr's hot path in C: HTTP/1.1 parsing, goridge frames, RoadRunner "
             "contexts and HTTP responses.",
    .m_size = -1,
    .m_methods = core_methods,
};

PyMODINIT_FUNC PyInit__core(void)
{
    PyObject *m = PyModule_Create(&core_module);
    if (m == NULL)
        return NULL;
    static const struct {
        const char *name;
        long value;
    } consts[] = {
        {"FLAG_CONTROL", 0x01}, {"FLAG_RAW", 0x04},   {"FLAG_JSON", 0x08},
        {"FLAG_MSGPACK", 0x10}, {"FLAG_GOB", 0x20},   {"FLAG_ERROR", 0x40},
        {"FLAG_PROTO", 0x80},   {"STREAM", 0x01},     {"STOP", 0x02},
        {"PING", 0x04},         {"PONG", 0x08},       {"BODY_OTHER", 0},
        {"BODY_URLENCODED", 1}, {"BODY_MULTIPART", 2},
    };
    for (size_t i = 0; i < sizeof(consts) / sizeof(consts[0]); i++) {
        if (PyModule_AddIntConstant(m, consts[i].name, consts[i].value) < 0)
            goto fail;
    }
    if (fr_errors_init(m) < 0 || fr_frame_init(m) < 0)
        goto fail;
    if (fr_request_init(m) < 0 || fr_chunked_init(m) < 0 || fr_response_init(m) < 0)
        goto fail;
    /* --- shm ring (ring.c, ring_py.c) --- */
    if (fr_ring_init(m) < 0)
        goto fail;
    /* --- end shm ring --- */
    /* --- C HTTP engine (engine*.c) --- */
    if (fr_engine_init(m) < 0)
        goto fail;
    /* --- end C HTTP engine --- */
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
