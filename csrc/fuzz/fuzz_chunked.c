/* Fuzz target: the chunked body decoder (chunked.c).
 *
 * The input is a chunked body (plus whatever follows it). It is decoded
 * twice: in one feed() and in pseudo-random pieces (1 byte to 4 KiB). A
 * byte-driven state machine must give the same answer either way: the
 * same bytes consumed, the same body, the same `done`, the same error
 * (status and reason). A third decoder with a small max_size must fail
 * with 413 exactly when the body it would decode is larger. */
#include "fuzz.h"

static PyObject *decoder_type, *http_error;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_init_python();
    decoder_type = fz_attr("ChunkedDecoder");
    http_error = fz_attr("HttpError");
    return 0;
}

typedef struct {
    size_t consumed;
    PyObject *body; /* bytearray */
    int done;
    long status;    /* 0: no error */
    PyObject *reason;
} outcome;

/* Feed one piece; 1 to go on, 0 when the decoder stopped (done or error). */
static int feed(PyObject *dec, const uint8_t *p, size_t n, outcome *o)
{
    PyObject *mv = PyMemoryView_FromMemory((char *)p, (Py_ssize_t)n, PyBUF_READ);
    PyObject *r = PyObject_CallMethod(dec, "feed", "O", mv);
    Py_DECREF(mv);
    if (r == NULL) {
        fz_expect_exc(http_error, "feed raised something other than HttpError");
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        PyErr_NormalizeException(&t, &v, &tb);
        PyObject *st = PyObject_GetAttrString(v, "status");
        o->status = PyLong_AsLong(st);
        o->reason = PyObject_GetAttrString(v, "reason");
        FZ_CHECK(o->reason != NULL && (o->status == 400 || o->status == 413), "error status");
        Py_XDECREF(st);
        Py_XDECREF(t);
        Py_XDECREF(v);
        Py_XDECREF(tb);
        /* sticky */
        r = PyObject_CallMethod(dec, "feed", "y#", "0\r\n\r\n", (Py_ssize_t)5);
        FZ_CHECK(r == NULL, "error is not sticky");
        PyErr_Clear();
        return 0;
    }
    size_t k = PyLong_AsSize_t(r);
    Py_DECREF(r);
    FZ_CHECK(k <= n, "consumed more than fed");
    o->consumed += k;
    PyObject *chunk = PyObject_CallMethod(dec, "take", NULL);
    if (chunk == NULL)
        fz_fail("take");
    FZ_CHECK(PyBytes_Check(chunk), "take() is not bytes");
    PyObject *x = PySequence_InPlaceConcat(o->body, chunk);
    if (x == NULL)
        fz_fail("concat");
    Py_DECREF(x);
    Py_DECREF(chunk);
    PyObject *d = PyObject_GetAttrString(dec, "done");
    o->done = d == Py_True;
    Py_XDECREF(d);
    if (k < n)
        FZ_CHECK(o->done, "stopped early but not done");
    return !o->done;
}

static void run(const uint8_t *data, size_t size, long long max_size, fz_rng *rng, outcome *o)
{
    memset(o, 0, sizeof(*o));
    o->body = PyByteArray_FromStringAndSize(NULL, 0);
    PyObject *dec = PyObject_CallFunction(decoder_type, "L", max_size);
    if (dec == NULL || o->body == NULL)
        fz_fail("ChunkedDecoder()");
    size_t off = 0;
    if (rng == NULL)
        feed(dec, data, size, o);
    else {
        while (off < size) {
            size_t k = fz_piece(rng, size - off, size);
            if (!feed(dec, data + off, k, o))
                break;
            off += k;
        }
    }
    Py_DECREF(dec);
}

static void clear(outcome *o)
{
    Py_XDECREF(o->body);
    Py_XDECREF(o->reason);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_rng rng;
    fz_rng_seed(&rng, data, size);
    outcome a, b;
    run(data, size, 1 << 20, NULL, &a);
    run(data, size, 1 << 20, &rng, &b);
    FZ_CHECK(a.status == b.status, "split changed the error status");
    if (a.status) {
        FZ_CHECK(PyObject_RichCompareBool(a.reason, b.reason, Py_EQ) == 1, "split changed the reason");
    }
    else {
        FZ_CHECK(a.consumed == b.consumed, "split changed the bytes consumed");
        FZ_CHECK(a.done == b.done, "split changed done");
        FZ_CHECK(PyObject_RichCompareBool(a.body, b.body, Py_EQ) == 1, "split changed the body");
        if (a.done && size > 0) {
            /* 413 exactly when the body does not fit */
            size_t blen = (size_t)PyByteArray_GET_SIZE(a.body);
            long long lim = (long long)(fz_next(&rng) % (blen + 2));
            outcome c;
            run(data, size, lim, NULL, &c);
            if ((long long)blen > lim)
                FZ_CHECK(c.status == 413, "body over max_size without 413");
            else
                FZ_CHECK(c.status == 0 && c.done, "body within max_size failed");
            clear(&c);
        }
    }
    clear(&a);
    clear(&b);
    return 0;
}
