/* Fuzz target: the HTTP/1.x request-head parser (http_parser.c), the
 * Request object (request.c) and the RoadRunner context encoder
 * (context.c, json.c).
 *
 * Properties checked for every input:
 *  - fr_parse_head never reads past `len` or `max_head` (ASan), returns
 *    -1/0/1, and on success every offset lies inside the head;
 *  - error detection is left to right: every strict prefix of a complete
 *    head is "incomplete" (0), never an error or a shorter head;
 *  - a tighter max_head can only turn the answer into 431, never into a
 *    different success;
 *  - parse_request raises only HttpError, and for a parsed request the
 *    context encoder produces valid UTF-8 JSON and a goridge frame whose
 *    header a FrameReader accepts. */
#include "fuzz.h"
#include "http_parser.h"

static PyObject *frame_reader_type, *http_error, *json_loads, *frame_error;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_init_python();
    frame_reader_type = fz_attr("FrameReader");
    http_error = fz_attr("HttpError");
    frame_error = fz_attr("FrameError");
    PyObject *json = PyImport_ImportModule("json");
    if (json == NULL)
        fz_fail("import json");
    json_loads = PyObject_GetAttrString(json, "loads");
    Py_DECREF(json);
    if (json_loads == NULL)
        fz_fail("json.loads");
    return 0;
}

static void check_head(const fr_head *h, size_t len, size_t max_head)
{
    FZ_CHECK(h->head_len <= len && h->head_len <= max_head, "head_len out of range");
    FZ_CHECK(h->start < h->head_len, "start out of range");
    FZ_CHECK(h->method_len > 0 && h->method_off + h->method_len <= h->head_len, "method range");
    FZ_CHECK(h->target_len > 0 && h->target_off + h->target_len <= h->head_len, "target range");
    FZ_CHECK(h->http_minor == 0 || h->http_minor == 1, "http_minor");
    FZ_CHECK(h->nheaders >= 0 && h->nheaders <= FR_MAX_HEADERS, "nheaders");
    FZ_CHECK(h->host_index >= -1 && h->host_index < h->nheaders, "host_index");
    FZ_CHECK(!(h->chunked && h->content_length >= 0), "chunked and content-length");
    for (int i = 0; i < h->nheaders; i++) {
        const fr_hdr *x = &h->headers[i];
        FZ_CHECK(x->name_len > 0, "empty header name");
        FZ_CHECK((size_t)x->name_off + x->name_len <= h->head_len, "header name range");
        FZ_CHECK((size_t)x->value_off + x->value_len <= h->head_len, "header value range");
    }
}

static void encode_checks(PyObject *req, PyObject *body, int parsed)
{
    PyObject *a;
    /* every attribute getter */
    static const char *const attrs[] = {"method", "target", "host", "headers", "head_len",
                                        "content_length", "keep_alive", "chunked", "http_minor",
                                        "expect_continue", "body_kind"};
    for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
        a = PyObject_GetAttrString(req, attrs[i]);
        if (a == NULL)
            fz_fail(attrs[i]);
        Py_DECREF(a);
    }
    a = PyObject_CallMethod(req, "get_header", "y", "cookie");
    if (a == NULL)
        fz_fail("get_header");
    Py_DECREF(a);
    PyObject *ctx = PyObject_CallMethod(fz_mod, "encode_http_context", "Ossi", req, "10.1.2.3",
                                        parsed ? "https" : "http", parsed);
    if (ctx == NULL)
        fz_fail("encode_http_context raised");
    FZ_CHECK(PyBytes_Check(ctx), "context is not bytes");
    PyObject *text = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(ctx), PyBytes_GET_SIZE(ctx), "strict");
    if (text == NULL)
        fz_fail("context is not valid UTF-8");
    PyObject *obj = PyObject_CallOneArg(json_loads, text);
    if (obj == NULL)
        fz_fail("context is not valid JSON");
    FZ_CHECK(PyDict_Check(obj), "context is not an object");
    Py_DECREF(obj);
    Py_DECREF(text);

    PyObject *frame = PyObject_CallMethod(fz_mod, "encode_http_request", "OssOi", req, "10.1.2.3",
                                          parsed ? "https" : "http", body, parsed);
    if (frame == NULL)
        fz_fail("encode_http_request raised");
    PyObject *reader = PyObject_CallFunction(frame_reader_type, "n", (Py_ssize_t)1 << 30);
    if (reader == NULL)
        fz_fail("FrameReader()");
    PyObject *frames = PyObject_CallMethod(reader, "feed", "O", frame);
    if (frames == NULL)
        fz_fail("request frame rejected by FrameReader");
    FZ_CHECK(PyList_Check(frames) && PyList_GET_SIZE(frames) == 1, "request frame count");
    PyObject *f = PyList_GET_ITEM(frames, 0);
    PyObject *opts = PyTuple_GET_ITEM(f, 2), *payload = PyTuple_GET_ITEM(f, 3);
    FZ_CHECK(PyTuple_GET_SIZE(opts) == 1, "request frame options");
    size_t ctx_len = PyLong_AsSize_t(PyTuple_GET_ITEM(opts, 0));
    FZ_CHECK(ctx_len == (size_t)PyBytes_GET_SIZE(ctx), "ctx_len option");
    FZ_CHECK((size_t)PyBytes_GET_SIZE(payload) == ctx_len + (size_t)PyBytes_GET_SIZE(body),
             "payload size");
    FZ_CHECK(memcmp(PyBytes_AS_STRING(payload), PyBytes_AS_STRING(ctx), ctx_len) == 0,
             "context in the frame");
    Py_DECREF(frames);
    Py_DECREF(reader);
    Py_DECREF(frame);
    Py_DECREF(ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fr_head h, h2;
    const size_t max_head = 65536;
    fz_rng rng;
    fz_rng_seed(&rng, data, size);

    int rc = fr_parse_head(data, size, max_head, &h);
    FZ_CHECK(rc >= -1 && rc <= 1, "return value");
    if (rc == -1)
        FZ_CHECK((h.err_status == 400 || h.err_status == 431) && h.err_reason != NULL, "error status");
    if (rc == 1) {
        check_head(&h, size, max_head);
        size_t cuts[3] = {h.head_len - 1, fz_next(&rng) % h.head_len, fz_next(&rng) % h.head_len};
        for (int i = 0; i < 3; i++)
            FZ_CHECK(fr_parse_head(data, cuts[i], max_head, &h2) == 0, "prefix of a head is not incomplete");
        /* the same head with max_head just enough, then one byte short */
        FZ_CHECK(fr_parse_head(data, size, h.head_len, &h2) == 1 && h2.head_len == h.head_len,
                 "max_head == head_len");
        int r3 = fr_parse_head(data, size, h.head_len - 1, &h2);
        FZ_CHECK(r3 == -1 && h2.err_status == 431, "max_head < head_len must be 431");
    }
    else if (size > 0) {
        size_t mh = fz_next(&rng) % (size + 1);
        int r2 = fr_parse_head(data, size, mh, &h2);
        FZ_CHECK(r2 != 1, "tighter max_head gave a head");
    }

    /* Through the Python API. */
    PyObject *buf = PyBytes_FromStringAndSize((const char *)data, (Py_ssize_t)size);
    PyObject *req = PyObject_CallMethod(fz_mod, "parse_request", "On", buf, (Py_ssize_t)max_head);
    if (req == NULL) {
        fz_expect_exc(http_error, "parse_request raised something other than HttpError");
        FZ_CHECK(rc == -1, "parse_request raised but fr_parse_head did not fail");
        PyErr_Clear();
    }
    else if (req == Py_None) {
        FZ_CHECK(rc == 0, "parse_request gave None but fr_parse_head did not");
        Py_DECREF(req);
    }
    else {
        FZ_CHECK(rc == 1, "parse_request gave a Request but fr_parse_head did not");
        PyObject *body = PyBytes_FromStringAndSize((const char *)data + h.head_len,
                                                   (Py_ssize_t)(size - h.head_len));
        encode_checks(req, body, (int)(fz_next(&rng) & 1));
        Py_DECREF(body);
        Py_DECREF(req);
    }
    Py_DECREF(buf);
    return 0;
}
