/* Fuzz target: the goridge v3 frame reader (frame.c).
 *
 * A CRC-32 over header bytes 0..5 stands between random bytes and every
 * state after the header check, and a fuzzer cannot guess it. So the
 * harness first walks the input the way the reader will and writes the
 * right CRC into each frame header it finds, unless the header's reserved
 * byte 11 has its top bit set (then the CRC is left as it came, to keep
 * the mismatch path covered). PHP's "Could not op" text is left alone.
 *
 * Properties: the stream is decoded in one feed() and in pseudo-random
 * pieces; both must give the same frames, the same `pending`, and fail
 * (or not) for the same kind of reason. Every frame with at most 10
 * options re-encodes with encode_frame into bytes that decode to itself.
 * feed() raises only FrameError, and the error is sticky. */
#include "fuzz.h"

#define MAX_PAYLOAD (1u << 16)

static PyObject *reader_type, *frame_error;

uint32_t fr_crc32(uint32_t crc, const unsigned char *p, size_t n);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_init_python();
    reader_type = fz_attr("FrameReader");
    frame_error = fz_attr("FrameError");
    return 0;
}

static void fix_crcs(uint8_t *b, size_t n)
{
    size_t off = 0;
    while (off + 12 <= n) {
        uint8_t *h = b + off;
        if (memcmp(h, "Could not op", 12) == 0 || (h[0] >> 4) != 1)
            return;
        if (!(h[11] & 0x80)) {
            uint32_t c = fr_crc32(0, h, 6);
            h[6] = (uint8_t)c;
            h[7] = (uint8_t)(c >> 8);
            h[8] = (uint8_t)(c >> 16);
            h[9] = (uint8_t)(c >> 24);
        }
        size_t hl = h[0] & 0x0F;
        size_t plen = (size_t)h[2] | (size_t)h[3] << 8 | (size_t)h[4] << 16 | (size_t)h[5] << 24;
        if (hl < 3)
            return;
        off += 4 * hl + plen;
    }
}

typedef struct {
    PyObject *frames; /* list */
    char kind[17];    /* first 16 chars of the error message, "" for none */
    long pending;
} outcome;

static int feed(PyObject *rd, const uint8_t *p, size_t n, outcome *o)
{
    PyObject *mv = PyMemoryView_FromMemory((char *)p, (Py_ssize_t)n, PyBUF_READ);
    PyObject *r = PyObject_CallMethod(rd, "feed", "O", mv);
    Py_DECREF(mv);
    if (r == NULL) {
        fz_expect_exc(frame_error, "feed raised something other than FrameError");
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        PyObject *s = PyObject_Str(v);
        const char *msg = s ? PyUnicode_AsUTF8(s) : NULL;
        FZ_CHECK(msg != NULL, "error message");
        snprintf(o->kind, sizeof(o->kind), "%s", msg);
        Py_XDECREF(s);
        Py_XDECREF(t);
        Py_XDECREF(v);
        Py_XDECREF(tb);
        r = PyObject_CallMethod(rd, "feed", "y#", "", (Py_ssize_t)0);
        FZ_CHECK(r == NULL, "error is not sticky");
        PyErr_Clear();
        return 0;
    }
    if (r != Py_None) {
        FZ_CHECK(PyList_Check(r) && PyList_GET_SIZE(r) > 0, "feed() result");
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(r); i++)
            if (PyList_Append(o->frames, PyList_GET_ITEM(r, i)) < 0)
                fz_fail("append");
    }
    Py_DECREF(r);
    return 1;
}

static void finish(PyObject *rd, outcome *o)
{
    if (o->kind[0] == 0) {
        /* frames before bad bytes come first; the error shows on the next feed */
        if (feed(rd, (const uint8_t *)"", 0, o) && o->kind[0] == 0) {
            PyObject *p = PyObject_GetAttrString(rd, "pending");
            o->pending = p ? PyLong_AsLong(p) : -1;
            Py_XDECREF(p);
        }
    }
}

static void run(const uint8_t *data, size_t size, fz_rng *rng, outcome *o)
{
    memset(o, 0, sizeof(*o));
    o->frames = PyList_New(0);
    PyObject *rd = PyObject_CallFunction(reader_type, "n", (Py_ssize_t)MAX_PAYLOAD);
    if (rd == NULL || o->frames == NULL)
        fz_fail("FrameReader()");
    if (rng == NULL)
        feed(rd, data, size, o);
    else {
        size_t off = 0;
        while (off < size) {
            size_t k = fz_piece(rng, size - off, size);
            if (!feed(rd, data + off, k, o))
                break;
            off += k;
        }
    }
    finish(rd, o);
    Py_DECREF(rd);
}

static void reencode(PyObject *frame)
{
    PyObject *flags = PyTuple_GET_ITEM(frame, 0), *b10 = PyTuple_GET_ITEM(frame, 1);
    PyObject *opts = PyTuple_GET_ITEM(frame, 2), *payload = PyTuple_GET_ITEM(frame, 3);
    if (PyTuple_GET_SIZE(opts) > 10)
        return;
    PyObject *enc = PyObject_CallMethod(fz_mod, "encode_frame", "OOOO", flags, payload, opts, b10);
    if (enc == NULL)
        fz_fail("encode_frame of a decoded frame");
    PyObject *rd = PyObject_CallFunction(reader_type, "n", (Py_ssize_t)MAX_PAYLOAD);
    PyObject *r = PyObject_CallMethod(rd, "feed", "O", enc);
    if (r == NULL)
        fz_fail("re-encoded frame rejected");
    FZ_CHECK(PyList_Check(r) && PyList_GET_SIZE(r) == 1, "re-encoded frame count");
    FZ_CHECK(PyObject_RichCompareBool(PyList_GET_ITEM(r, 0), frame, Py_EQ) == 1, "re-encoded frame differs");
    Py_DECREF(r);
    Py_DECREF(rd);
    Py_DECREF(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    fix_crcs(buf, size);
    fz_rng rng;
    fz_rng_seed(&rng, buf, size);
    outcome a, b;
    run(buf, size, NULL, &a);
    run(buf, size, &rng, &b);
    FZ_CHECK(PyObject_RichCompareBool(a.frames, b.frames, Py_EQ) == 1, "split changed the frames");
    FZ_CHECK(strcmp(a.kind, b.kind) == 0, "split changed the error");
    FZ_CHECK(a.pending == b.pending, "split changed pending");
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(a.frames) && i < 8; i++)
        reencode(PyList_GET_ITEM(a.frames, i));
    Py_DECREF(a.frames);
    Py_DECREF(b.frames);
    free(buf);
    return 0;
}
