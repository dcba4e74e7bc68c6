/* Goridge v3 frames (docs/roadrunner-protocol.md §1).
 *
 *   offset size field
 *   0      1    bits 7..4 VERSION (=1), bits 3..0 HL (header words, >= 3)
 *   1      1    FLAGS
 *   2      4    PAYLOAD_LEN u32 LE (payload only, options excluded)
 *   6      4    CRC-32/IEEE of bytes 0..5 ONLY, u32 LE
 *   10     1    BYTE10 (STREAM/STOP/PING/PONG)
 *   11     1    reserved, 0
 *   12     4*N  options, N = HL-3, u32 LE each
 *   12+4N  PAYLOAD_LEN bytes of payload
 *
 * FrameReader buffer ownership:
 *   - `hdr` holds at most one frame header (<= 60 bytes) that arrived split
 *     across feeds. Nothing else is ever buffered as raw bytes.
 *   - Once a header is complete, a payload that is not all there yet is
 *     copied straight into a fresh bytes object (`part_payload`) that becomes
 *     the frame's payload: every payload byte is copied exactly once, from
 *     the caller's buffer into the bytes object handed out.
 *   - Complete frames inside one feed() are cut out of the caller's buffer
 *     directly (one copy each), with no intermediate buffering.
 */
#include "fastrr.h"
#include "hotpath.h"

#define FRAME_MIN_HDR 12
#define FRAME_MAX_OPTS 12 /* HL is 4 bits: 15 - 3 */
#define ENCODE_MAX_OPTS 10
#define MAX_HDR (FRAME_MIN_HDR + 4 * FRAME_MAX_OPTS)

static const char COULD_NOT_OP[] = "Could not op";
static const char STDOUT_MSG[] = "validation failed on the message sent to STDOUT: ";

/* ---------------------------------------------------------------- CRC-32 */

/* CRC-32/IEEE 802.3, reflected polynomial 0xEDB88320, init and xorout
 * 0xFFFFFFFF: the same function as zlib.crc32 and PHP's crc32(). */
static uint32_t crc_table[256];
static int crc_ready = 0;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
    crc_ready = 1;
}

uint32_t fr_crc32(uint32_t crc, const unsigned char *p, size_t n)
{
    if (!crc_ready)
        crc_init();
    crc = ~crc;
    while (n--)
        crc = crc_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

PyObject *fr_py_crc32(PyObject *m, PyObject *arg)
{
    (void)m;
    fr_view v;
    if (fr_view_get(arg, &v, "data") < 0)
        return NULL;
    uint32_t c = fr_crc32(0, v.buf, (size_t)v.len);
    fr_view_release(&v);
    return PyLong_FromUnsignedLong(c);
}

/* --------------------------------------------------------------- encode */

void fr_write_frame_header(unsigned char *out, unsigned flags, uint32_t payload_len,
                           const uint32_t *opts, int nopts, unsigned byte10)
{
    out[0] = (unsigned char)(0x10 | (3 + nopts));
    out[1] = (unsigned char)flags;
    fr_put_le32(out + 2, payload_len);
    fr_put_le32(out + 6, fr_crc32(0, out, 6));
    out[10] = (unsigned char)byte10;
    out[11] = 0;
    for (int i = 0; i < nopts; i++)
        fr_put_le32(out + 12 + 4 * i, opts[i]);
}

static int byte_arg(PyObject *obj, const char *what, unsigned *out)
{
    Py_ssize_t v;
    if (fr_arg_ssize(obj, what, &v) < 0)
        return -1;
    if (v < 0 || v > 255) {
        PyErr_Format(PyExc_ValueError, "%s must be in 0..255, got %zd", what, v);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

PyObject *fr_py_encode_frame(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
    (void)m;
    static const char *const names[] = {"flags", "payload", "options", "byte10"};
    PyObject *a[4];
    unsigned flags, byte10 = 0;
    uint32_t opts[ENCODE_MAX_OPTS];
    int nopts = 0;
    fr_view v = {.buf = (const unsigned char *)"", .len = 0, .has_view = 0};

    if (fr_unpack_args("encode_frame", args, nargs, kw, names, 1, 4, a) < 0)
        return NULL;
    if (byte_arg(a[0], "flags", &flags) < 0)
        return NULL;
    if (a[3] != NULL && byte_arg(a[3], "byte10", &byte10) < 0)
        return NULL;
    if (a[2] != NULL) {
        PyObject *seq = PySequence_Fast(a[2], "options must be a sequence of ints");
        if (seq == NULL)
            return NULL;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        if (n > ENCODE_MAX_OPTS) {
            Py_DECREF(seq);
            PyErr_Format(PyExc_ValueError, "at most %d options, got %zd", ENCODE_MAX_OPTS, n);
            return NULL;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *o = PySequence_Fast_GET_ITEM(seq, i);
            if (!PyLong_Check(o)) {
                Py_DECREF(seq);
                PyErr_SetString(PyExc_TypeError, "options must be ints");
                return NULL;
            }
            unsigned long long x = PyLong_AsUnsignedLongLong(o);
            if (PyErr_Occurred() || x > 0xFFFFFFFFull) {
                Py_DECREF(seq);
                PyErr_Clear();
                PyErr_SetString(PyExc_ValueError, "options must be in 0..2**32-1");
                return NULL;
            }
            opts[i] = (uint32_t)x;
        }
        nopts = (int)n;
        Py_DECREF(seq);
    }
    if (a[1] != NULL && fr_view_get(a[1], &v, "payload") < 0)
        return NULL;
    if ((unsigned long long)v.len > 0xFFFFFFFFull) {
        fr_view_release(&v);
        PyErr_SetString(PyExc_ValueError, "payload longer than 2**32-1 bytes");
        return NULL;
    }
    Py_ssize_t hsize = FRAME_MIN_HDR + 4 * nopts;
    PyObject *out = PyBytes_FromStringAndSize(NULL, hsize + v.len);
    if (out != NULL) {
        unsigned char *o = (unsigned char *)PyBytes_AS_STRING(out);
        fr_write_frame_header(o, flags, (uint32_t)v.len, opts, nopts, byte10);
        if (v.len)
            memcpy(o + hsize, v.buf, (size_t)v.len);
    }
    fr_view_release(&v);
    return out;
}

/* ---------------------------------------------------------- FrameReader */

typedef struct {
    PyObject_HEAD
    Py_ssize_t max_payload;
    /* A frame header split across feeds (only ever a header). */
    unsigned char hdr[MAX_HDR];
    size_t hdr_len;
    /* The frame whose header is complete but whose payload is not. */
    PyObject *part_payload; /* bytes being filled, NULL when none */
    PyObject *part_options; /* tuple of ints */
    size_t part_filled;
    size_t part_hsize;
    unsigned part_flags, part_byte10;
    /* Sticky error: once set, every feed() raises FrameError(error). */
    PyObject *error;
} FrameReader;

static int FrameReader_init(FrameReader *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"max_payload", NULL};
    Py_ssize_t max_payload;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "n:FrameReader", kwlist, &max_payload))
        return -1;
    if (max_payload < 0) {
        PyErr_SetString(PyExc_ValueError, "max_payload must be >= 0");
        return -1;
    }
    self->max_payload = max_payload;
    self->hdr_len = 0;
    Py_CLEAR(self->part_payload);
    Py_CLEAR(self->part_options);
    Py_CLEAR(self->error);
    self->part_filled = 0;
    return 0;
}

static void FrameReader_dealloc(FrameReader *self)
{
    Py_CLEAR(self->part_payload);
    Py_CLEAR(self->part_options);
    Py_CLEAR(self->error);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Make the reader fail for good with message `msg` (stolen). Returns -1. */
static int reader_fail(FrameReader *self, PyObject *msg)
{
    if (msg == NULL)
        return -1;
    Py_XSETREF(self->error, msg);
    /* A failed reader holds nothing usable: pending drops to 0. */
    self->hdr_len = 0;
    Py_CLEAR(self->part_payload);
    Py_CLEAR(self->part_options);
    PyErr_SetObject(fr_FrameError, msg);
    return -1;
}

/* The bytes of the offending frame: the stashed header bytes followed by the
 * rest of this feed, at most `limit` of them (limit < 0: all). */
static PyObject *offending_bytes(FrameReader *self, const unsigned char *p, size_t n,
                                 Py_ssize_t limit)
{
    size_t total = self->hdr_len + n;
    if (limit >= 0 && total > (size_t)limit)
        total = (size_t)limit;
    PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (b == NULL)
        return NULL;
    char *o = PyBytes_AS_STRING(b);
    size_t k = self->hdr_len < total ? self->hdr_len : total;
    memcpy(o, self->hdr, k);
    if (total > k)
        memcpy(o + k, p, total - k);
    return b;
}

static int fail_stdout(FrameReader *self, const unsigned char *p, size_t n)
{
    PyObject *b = offending_bytes(self, p, n, 200);
    if (b == NULL)
        return -1;
    PyObject *msg = PyUnicode_FromFormat("%s%R", STDOUT_MSG, b);
    Py_DECREF(b);
    return reader_fail(self, msg);
}

static int fail_could_not_open(FrameReader *self, const unsigned char *p, size_t n)
{
    static const char phrase[] = "Could not open input file";
    PyObject *b = offending_bytes(self, p, n, -1);
    if (b == NULL)
        return -1;
    /* PHP prints "Could not open input file: <path>\n". Report that text,
     * stripped; if only its first bytes have arrived so far, say so. */
    PyObject *text = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b), "replace");
    int whole = PyBytes_GET_SIZE(b) >= (Py_ssize_t)(sizeof(phrase) - 1) &&
                memcmp(PyBytes_AS_STRING(b), phrase, sizeof(phrase) - 1) == 0;
    Py_DECREF(b);
    if (text == NULL)
        return -1;
    PyObject *stripped = PyObject_CallMethod(text, "strip", NULL);
    Py_DECREF(text);
    if (stripped == NULL)
        return -1;
    PyObject *msg = stripped;
    if (!whole) {
        msg = PyUnicode_FromFormat("%s (worker output so far: %R)", phrase, stripped);
        Py_DECREF(stripped);
    }
    return reader_fail(self, msg);
}

int fr_frame_check(const unsigned char *h, unsigned long long max_payload, size_t *hsize,
                   uint32_t *plen)
{
    if (memcmp(h, COULD_NOT_OP, FRAME_MIN_HDR) == 0)
        return FR_FH_COULD_NOT_OPEN;
    if (fr_get_le32(h + 6) != fr_crc32(0, h, 6) || (h[0] >> 4) != 1)
        return FR_FH_STDOUT;
    *hsize = 4u * (h[0] & 0x0F);
    *plen = fr_get_le32(h + 2);
    if (*hsize < FRAME_MIN_HDR)
        return FR_FH_BAD_HL;
    if ((unsigned long long)*plen > max_payload)
        return FR_FH_TOO_LARGE;
    return FR_FH_OK;
}

/* Validate a frame header whose first 12 bytes are at h. Sets *hsize and
 * *plen. 0 ok, -1 error (reader failed). p/n: rest of the feed, for the
 * message. */
static int check_header(FrameReader *self, const unsigned char *h, const unsigned char *p,
                        size_t n, size_t *hsize, uint32_t *plen)
{
    switch (fr_frame_check(h, (unsigned long long)self->max_payload, hsize, plen)) {
    case FR_FH_OK:
        return 0;
    case FR_FH_COULD_NOT_OPEN:
        return fail_could_not_open(self, p, n);
    case FR_FH_STDOUT:
        return fail_stdout(self, p, n);
    case FR_FH_BAD_HL:
        return reader_fail(self, PyUnicode_FromFormat(
                                     "invalid frame header: header length %u words (< 3)",
                                     (unsigned)(*hsize / 4)));
    default:
        return reader_fail(self, PyUnicode_FromFormat(
                                     "frame payload too large: %lu bytes (max %zd)",
                                     (unsigned long)*plen, self->max_payload));
    }
}

/* A byte prefix that can still turn out to be a valid header or "Could not
 * op": we must wait for 12 bytes. Anything else is garbage on stdout and is
 * reported at once (a short stray `echo` would otherwise stall the reader). */
int fr_frame_early_garbage(const unsigned char *h, size_t k)
{
    if (k == 0 || (h[0] >> 4) == 1)
        return 0;
    return memcmp(h, COULD_NOT_OP, k) != 0;
}

static PyObject *options_tuple(const unsigned char *h, size_t hsize)
{
    size_t nopts = (hsize - FRAME_MIN_HDR) / 4;
    PyObject *t = PyTuple_New((Py_ssize_t)nopts);
    if (t == NULL)
        return NULL;
    for (size_t i = 0; i < nopts; i++) {
        PyObject *o = PyLong_FromUnsignedLong(fr_get_le32(h + FRAME_MIN_HDR + 4 * i));
        if (o == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, (Py_ssize_t)i, o);
    }
    return t;
}

/* Append (flags, byte10, options, payload) to *list (created on demand).
 * Steals options and payload. */
static int emit(PyObject **list, unsigned flags, unsigned byte10, PyObject *options,
                PyObject *payload)
{
    PyObject *t = NULL;
    if (options == NULL || payload == NULL)
        goto fail;
    if (*list == NULL && (*list = PyList_New(0)) == NULL)
        goto fail;
    t = PyTuple_New(4);
    if (t == NULL)
        goto fail;
    PyObject *f = PyLong_FromUnsignedLong(flags);
    PyObject *b = PyLong_FromUnsignedLong(byte10);
    if (f == NULL || b == NULL) {
        Py_XDECREF(f);
        Py_XDECREF(b);
        goto fail;
    }
    PyTuple_SET_ITEM(t, 0, f);
    PyTuple_SET_ITEM(t, 1, b);
    PyTuple_SET_ITEM(t, 2, options);
    PyTuple_SET_ITEM(t, 3, payload);
    int rc = PyList_Append(*list, t);
    Py_DECREF(t);
    return rc;
fail:
    Py_XDECREF(options);
    Py_XDECREF(payload);
    return -1;
}

static int reader_feed(FrameReader *self, const unsigned char *p, size_t n, PyObject **list)
{
    for (;;) {
        /* 1. Finish a payload in progress. */
        if (self->part_payload != NULL) {
            size_t plen = (size_t)PyBytes_GET_SIZE(self->part_payload);
            size_t k = plen - self->part_filled;
            if (k > n)
                k = n;
            memcpy(PyBytes_AS_STRING(self->part_payload) + self->part_filled, p, k);
            self->part_filled += k;
            p += k;
            n -= k;
            if (self->part_filled < plen)
                return 0; /* n == 0 */
            PyObject *payload = self->part_payload, *opts = self->part_options;
            self->part_payload = NULL;
            self->part_options = NULL;
            if (emit(list, self->part_flags, self->part_byte10, opts, payload) < 0)
                return -1;
        }
        if (n == 0)
            return 0;

        /* 2. Get a complete header, either straight from p or via hdr. */
        const unsigned char *h;
        size_t hsize;
        uint32_t plen;
        if (self->hdr_len == 0 && n >= FRAME_MIN_HDR) {
            if (check_header(self, p, p, n, &hsize, &plen) < 0)
                return -1;
            if (n < hsize) {
                memcpy(self->hdr, p, n);
                self->hdr_len = n;
                return 0;
            }
            h = p;
        }
        else {
            /* Top the stash up to 12 bytes first, then to the full header. */
            if (self->hdr_len < FRAME_MIN_HDR) {
                size_t k = FRAME_MIN_HDR - self->hdr_len;
                if (k > n)
                    k = n;
                memcpy(self->hdr + self->hdr_len, p, k);
                self->hdr_len += k;
                p += k;
                n -= k;
                if (self->hdr_len < FRAME_MIN_HDR) {
                    if (fr_frame_early_garbage(self->hdr, self->hdr_len))
                        return fail_stdout(self, p, n);
                    return 0;
                }
            }
            if (check_header(self, self->hdr, p, n, &hsize, &plen) < 0)
                return -1;
            if (self->hdr_len < hsize) {
                size_t k = hsize - self->hdr_len;
                if (k > n)
                    k = n;
                memcpy(self->hdr + self->hdr_len, p, k);
                self->hdr_len += k;
                p += k;
                n -= k;
                if (self->hdr_len < hsize)
                    return 0;
            }
            h = self->hdr;
        }

        /* 3. Header complete at h (hsize bytes). Payload follows at p. */
        unsigned flags = h[1], byte10 = h[10];
        PyObject *opts = options_tuple(h, hsize);
        if (opts == NULL)
            return -1;
        if (h == p) {
            p += hsize;
            n -= hsize;
        }
        self->hdr_len = 0;
        if (n >= plen) {
            PyObject *payload = PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)plen);
            p += plen;
            n -= plen;
            if (emit(list, flags, byte10, opts, payload) < 0)
                return -1;
            continue;
        }
        /* Payload incomplete: copy what we have into its final bytes object. */
        PyObject *payload = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)plen);
        if (payload == NULL) {
            Py_DECREF(opts);
            return -1;
        }
        memcpy(PyBytes_AS_STRING(payload), p, n);
        self->part_payload = payload;
        self->part_options = opts;
        self->part_filled = n;
        self->part_hsize = hsize;
        self->part_flags = flags;
        self->part_byte10 = byte10;
        return 0;
    }
}

static PyObject *FrameReader_feed(FrameReader *self, PyObject *data)
{
    if (self->error != NULL) {
        PyErr_SetObject(fr_FrameError, self->error);
        return NULL;
    }
    fr_view v;
    if (fr_view_get(data, &v, "data") < 0)
        return NULL;
    PyObject *list = NULL;
    const unsigned char *p = v.buf;
    size_t n = (size_t)v.len;
    int rc = reader_feed(self, p, n, &list);
    fr_view_release(&v);
    if (rc < 0) {
        if (list != NULL && self->error != NULL && PyErr_ExceptionMatches(fr_FrameError)) {
            /* Frames completed before the bad bytes are delivered; the
             * error is sticky and the next feed() (even feed(b"")) raises
             * it. This is what RoadRunner does too: it reads frame by frame
             * and only meets the garbage on its next read. */
            PyErr_Clear();
            return list;
        }
        Py_XDECREF(list);
        return NULL;
    }
    if (list == NULL)
        Py_RETURN_NONE;
    return list;
}

static PyObject *FrameReader_get_pending(FrameReader *self, void *closure)
{
    (void)closure;
    size_t n = self->hdr_len;
    if (self->part_payload != NULL)
        n += self->part_hsize + self->part_filled;
    return PyLong_FromSize_t(n);
}

static PyObject *FrameReader_get_max_payload(FrameReader *self, void *closure)
{
    (void)closure;
    return PyLong_FromSsize_t(self->max_payload);
}

static PyMethodDef FrameReader_methods[] = {
    {"feed", (PyCFunction)FrameReader_feed, METH_O,
     "feed(data) -> list[(flags, byte10, options, payload)] | None\n\n"
     "Append data and return every frame completed by it (None if none)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef FrameReader_getset[] = {
    {"pending", (getter)FrameReader_get_pending, NULL,
     "Bytes received that do not yet form a complete frame.", NULL},
    {"max_payload", (getter)FrameReader_get_max_payload, NULL, "Largest accepted payload.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject FrameReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "fastrr._core.FrameReader",
    .tp_basicsize = sizeof(FrameReader),
    .tp_dealloc = (destructor)FrameReader_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "FrameReader(max_payload)\n\nIncremental goridge v3 frame decoder.",
    .tp_methods = FrameReader_methods,
    .tp_getset = FrameReader_getset,
    .tp_init = (initproc)FrameReader_init,
    .tp_new = PyType_GenericNew,
};

int fr_frame_init(PyObject *module)
{
    crc_init();
    if (PyType_Ready(&FrameReaderType) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "FrameReader", (PyObject *)&FrameReaderType) < 0)
        return -1;
    return 0;
}
