/* Fuzz target: build_response (response.c) and the strict JSON reader
 * behind it (json.c).
 *
 * Input layout: byte 0 = options (bit 0 keep-alive, bit 1 HEAD request,
 * bit 2 HTTP/1.1, bit 3 stream), bytes 1..2 = ctx_len (u16 LE, taken
 * modulo len(payload)+2 so that it is mostly in range, sometimes one past
 * the end), the rest = the worker's payload (context JSON || body).
 *
 * Properties: only FrameError is ever raised; on success the bytes are a
 * well-formed HTTP/1.x response head - a status line with the returned
 * status, header lines `token ": " value` whose values hold no CR, LF or
 * NUL and carry no surrounding whitespace, exactly one blank line - followed by exactly the body the
 * framing headers announce. */
#include "fuzz.h"

#include "chars.h"

static PyObject *frame_error;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_init_python();
    frame_error = fz_attr("FrameError");
    return 0;
}

static const uint8_t *find_crlfcrlf(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 4 <= n; i++)
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n')
            return p + i;
    return NULL;
}

static int ieq(const uint8_t *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t x = a[i], y = (uint8_t)b[i];
        if (x >= 'A' && x <= 'Z')
            x = (uint8_t)(x + 32);
        if (y >= 'A' && y <= 'Z')
            y = (uint8_t)(y + 32);
        if (x != y)
            return 0;
    }
    return 1;
}

static void check_output(int status, const uint8_t *o, size_t n, size_t body_len, int opts)
{
    int keep = opts & 1, head = opts & 2, minor = (opts & 4) ? 1 : 0, stream = opts & 8;
    if (status < 200 && minor == 0) {
        FZ_CHECK(n == 0, "1xx for HTTP/1.0 must be empty");
        return;
    }
    const uint8_t *end = find_crlfcrlf(o, n);
    FZ_CHECK(end != NULL, "no end of head");
    size_t head_len = (size_t)(end - o) + 4;
    char sl[16];
    snprintf(sl, sizeof(sl), "HTTP/1.%d %03d ", minor, status);
    FZ_CHECK(n >= 13 && memcmp(o, sl, 13) == 0, "status line");
    const uint8_t *p = o, *stop = end + 2;
    long long clen = -1;
    int chunked = 0, close = 0;
    int first = 1;
    while (p < stop) {
        const uint8_t *eol = p;
        while (eol < stop && !(eol[0] == '\r' && eol[1] == '\n'))
            eol++;
        FZ_CHECK(eol < stop, "unterminated line");
        /* CR, LF and NUL never reach the wire (header injection); other
         * control bytes a worker puts in a value are passed on, as Go's
         * Header.Write does (csrc/README.md, "Responses"). */
        for (const uint8_t *q = p; q < eol; q++)
            FZ_CHECK(*q != '\r' && *q != '\n' && *q != 0, "CR, LF or NUL in the head");
        if (!first) {
            const uint8_t *colon = memchr(p, ':', (size_t)(eol - p));
            FZ_CHECK(colon != NULL && colon > p, "header line without a name");
            for (const uint8_t *q = p; q < colon; q++)
                FZ_CHECK(fr_tchar[*q], "header name is not a token");
            FZ_CHECK(colon + 1 < eol ? colon[1] == ' ' : 1, "no SP after the colon");
            const uint8_t *v = colon + 2 <= eol ? colon + 2 : eol, *ve = eol;
            if (ve > v)
                FZ_CHECK(!fr_is_ows(v[0]) && !fr_is_ows(ve[-1]), "value not trimmed");
            size_t nl = (size_t)(colon - p);
            if (nl == 14 && ieq(p, "content-length", 14)) {
                FZ_CHECK(clen == -1, "two Content-Length");
                clen = 0;
                for (const uint8_t *q = v; q < ve; q++) {
                    FZ_CHECK(*q >= '0' && *q <= '9', "Content-Length digits");
                    clen = clen * 10 + (*q - '0');
                }
            }
            else if (nl == 17 && ieq(p, "transfer-encoding", 17)) {
                FZ_CHECK(!chunked && ve - v == 7 && memcmp(v, "chunked", 7) == 0, "Transfer-Encoding");
                chunked = 1;
            }
            else if (nl == 10 && ieq(p, "connection", 10)) {
                FZ_CHECK(!close, "two Connection");
                close = ve - v == 5 && memcmp(v, "close", 5) == 0;
                FZ_CHECK(close || (ve - v == 10 && memcmp(v, "keep-alive", 10) == 0), "Connection value");
                if (!close)
                    close = -1;
            }
        }
        first = 0;
        p = eol + 2;
    }
    FZ_CHECK(!(chunked && clen >= 0), "chunked and Content-Length");
    size_t rest = n - head_len;
    if (status < 200) {
        FZ_CHECK(rest == 0 && clen == -1 && !chunked, "1xx with a body");
        return;
    }
    if (!keep)
        FZ_CHECK(close == 1, "no Connection: close");
    int no_body = status == 204 || status == 304;
    if (no_body)
        FZ_CHECK(rest == 0 && clen == -1 && !chunked, "204/304 with framing");
    else if (stream && minor)
        FZ_CHECK(chunked, "stream without chunked");
    else if (stream)
        FZ_CHECK(close == 1 && clen == -1, "HTTP/1.0 stream must be close-delimited");
    else
        FZ_CHECK(clen == (long long)body_len, "Content-Length is not the body length");
    size_t want = (no_body || head) ? 0 : body_len;
    if (chunked && want) {
        char hex[24];
        int k = snprintf(hex, sizeof(hex), "%zx\r\n", want);
        FZ_CHECK(rest == (size_t)k + want + 2 && memcmp(o + head_len, hex, (size_t)k) == 0,
                 "first chunk");
    }
    else
        FZ_CHECK(rest == want, "body length");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    int opts = data[0];
    size_t plen = size - 3;
    size_t ctx_len = ((size_t)data[1] | (size_t)data[2] << 8) % (plen + 2);
    PyObject *payload = PyBytes_FromStringAndSize((const char *)data + 3, (Py_ssize_t)plen);
    PyObject *r = PyObject_CallMethod(fz_mod, "build_response", "Onnnnn", payload, (Py_ssize_t)ctx_len,
                                      (Py_ssize_t)(opts & 1), (Py_ssize_t)((opts >> 1) & 1),
                                      (Py_ssize_t)((opts >> 2) & 1), (Py_ssize_t)((opts >> 3) & 1));
    if (r == NULL) {
        fz_expect_exc(frame_error, "build_response raised something other than FrameError");
        PyErr_Clear();
    }
    else {
        FZ_CHECK(PyTuple_Check(r) && PyTuple_GET_SIZE(r) == 2, "result shape");
        long status = PyLong_AsLong(PyTuple_GET_ITEM(r, 0));
        PyObject *out = PyTuple_GET_ITEM(r, 1);
        FZ_CHECK(status >= 100 && status <= 599 && status != 101, "status range");
        FZ_CHECK(ctx_len <= plen, "accepted ctx_len past the payload");
        FZ_CHECK(PyBytes_Check(out), "data is not bytes");
        check_output((int)status, (const uint8_t *)PyBytes_AS_STRING(out), (size_t)PyBytes_GET_SIZE(out),
                     plen - ctx_len, opts);
        Py_DECREF(r);
    }
    Py_DECREF(payload);
    return 0;
}
