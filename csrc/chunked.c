/* Chunked transfer coding decoder (RFC 9112 §7.1), one byte-driven state
 * machine, so any split of the input (down to one byte per feed()) gives
 * the same result.
 *
 *   chunked-body   = *chunk last-chunk trailer-section CRLF
 *   chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-size     = 1*HEXDIG
 *   last-chunk     = 1*("0") [ chunk-ext ] CRLF
 *   chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
 *   chunk-ext-name = token
 *   chunk-ext-val  = token / quoted-string
 *   trailer-section = *( field-line CRLF )
 *
 * Decisions: extensions are validated and ignored; BWS after the size is
 * only accepted when a ';' follows; bare LF / bare CR are errors; a size
 * line longer than MAX_LINE or a trailer section longer than MAX_TRAILER
 * is a 400; trailers are validated (field-line grammar, no obs-fold) and
 * dropped. A chunk size that would take the body past max_size is a 413 as
 * soon as its digits say so, before any of its data is read.
 *
 * The machine itself (fr_chunked_run) is GIL-free and hands decoded bytes
 * to a sink (hotpath.h): the engine thread uses it with its own buffers.
 *
 * Buffer ownership (Python API): decoded bytes go straight into a bytes
 * object that the decoder owns (`out`, grown with _PyBytes_Resize); take()
 * shrinks it to its length and hands it over, so each body byte is copied
 * once.
 */
#include "fastrr.h"
#include "hotpath.h"

#define MAX_LINE 4096     /* chunk-size line incl. extensions */
#define MAX_TRAILER 16384 /* whole trailer section */

enum {
    S_SIZE_START,
    S_SIZE,
    S_SIZE_BWS,       /* after the size: only BWS ";" may follow */
    S_EXT_PRE_NAME,   /* after ";" */
    S_EXT_NAME,
    S_EXT_POST_NAME,  /* BWS after a name */
    S_EXT_PRE_VALUE,  /* after "=" */
    S_EXT_TOKEN,
    S_EXT_QUOTED,
    S_EXT_QUOTED_ESC,
    S_EXT_POST_VALUE, /* BWS after a value */
    S_SIZE_LF,
    S_DATA,
    S_DATA_CR,
    S_DATA_LF,
    S_TRAILER_START,
    S_TRAILER_NAME,
    S_TRAILER_VALUE,
    S_TRAILER_LF,
    S_FINAL_LF,
    S_DONE,
};

typedef struct {
    PyObject_HEAD
    fr_chunked c;
    PyObject *out;              /* bytes being filled, capacity = its size */
    size_t out_len;
} ChunkedDecoder;

void fr_chunked_start(fr_chunked *c, unsigned long long max_size)
{
    c->state = S_SIZE_START;
    c->size = c->total = 0;
    c->max_size = max_size;
    c->line = c->trailer = 0;
    c->err_status = 0;
    c->err_reason = NULL;
}

int fr_chunked_done(const fr_chunked *c)
{
    return c->state == S_DONE && c->err_reason == NULL;
}

static int Chunked_init(ChunkedDecoder *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"max_size", NULL};
    long long max_size;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "L:ChunkedDecoder", kwlist, &max_size))
        return -1;
    if (max_size < 0) {
        PyErr_SetString(PyExc_ValueError, "max_size must be >= 0");
        return -1;
    }
    fr_chunked_start(&self->c, (unsigned long long)max_size);
    Py_CLEAR(self->out);
    self->out_len = 0;
    return 0;
}

static void Chunked_dealloc(ChunkedDecoder *self)
{
    Py_CLEAR(self->out);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int out_append(void *ctx, const unsigned char *p, size_t n)
{
    ChunkedDecoder *self = ctx;
    if (n == 0)
        return 0;
    size_t cap = self->out ? (size_t)PyBytes_GET_SIZE(self->out) : 0;
    if (cap - self->out_len < n) {
        size_t want = self->out_len + n;
        size_t ncap = cap ? cap * 2 : 4096;
        if (ncap < want)
            ncap = want;
        if (self->out == NULL) {
            self->out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)ncap);
            if (self->out == NULL)
                return -1;
        }
        else if (_PyBytes_Resize(&self->out, (Py_ssize_t)ncap) < 0) {
            self->out_len = 0; /* out was freed and set to NULL */
            return -1;
        }
    }
    memcpy(PyBytes_AS_STRING(self->out) + self->out_len, p, n);
    self->out_len += n;
    return 0;
}

ptrdiff_t fr_chunked_run(fr_chunked *self, const unsigned char *p, size_t n, fr_sink sink, void *ctx)
{
    const unsigned char *start = p, *end = p + n;
    int st = self->state;
    const char *reason = NULL;
    int status = 400;

#define BAD(r)         \
    do {               \
        reason = (r);  \
        goto error;    \
    } while (0)

    while (p < end && st != S_DONE) {
        unsigned char c = *p;
        if (st == S_DATA) {
            size_t k = (size_t)(end - p);
            if ((unsigned long long)k > self->size)
                k = (size_t)self->size;
            if (sink(ctx, p, k) < 0) {
                self->state = st;
                return -2;
            }
            p += k;
            self->size -= k;
            self->total += k;
            if (self->size == 0)
                st = S_DATA_CR;
            continue;
        }
        if (st <= S_SIZE_LF && ++self->line > MAX_LINE)
            BAD("chunk size line too long");
        if (st >= S_TRAILER_START && st <= S_FINAL_LF && ++self->trailer > MAX_TRAILER)
            BAD("trailer section too large");
        switch (st) {
        case S_SIZE_START:
        case S_SIZE: {
            int d = fr_hexval[c];
            if (d >= 0) {
                if (self->size > (ULLONG_MAX >> 4))
                    BAD("chunk size overflow");
                self->size = (self->size << 4) | (unsigned)d;
                if (self->size > self->max_size - self->total) {
                    status = 413;
                    BAD("request body too large");
                }
                st = S_SIZE;
                break;
            }
            if (st == S_SIZE_START)
                BAD(c == '\n' ? "bare LF" : "invalid chunk size");
            if (c == ';')
                st = S_EXT_PRE_NAME;
            else if (fr_is_ows(c))
                st = S_SIZE_BWS;
            else if (c == '\r')
                st = S_SIZE_LF;
            else
                BAD(c == '\n' ? "bare LF" : "invalid chunk size");
            break;
        }
        case S_SIZE_BWS:
            if (c == ';')
                st = S_EXT_PRE_NAME;
            else if (!fr_is_ows(c))
                BAD("invalid chunk size");
            break;
        case S_EXT_PRE_NAME:
            if (fr_tchar[c])
                st = S_EXT_NAME;
            else if (!fr_is_ows(c))
                BAD("invalid chunk extension");
            break;
        case S_EXT_NAME:
        case S_EXT_POST_NAME:
            if (st == S_EXT_NAME && fr_tchar[c])
                break;
            if (fr_is_ows(c))
                st = S_EXT_POST_NAME;
            else if (c == '=')
                st = S_EXT_PRE_VALUE;
            else if (c == ';')
                st = S_EXT_PRE_NAME;
            else if (c == '\r')
                st = S_SIZE_LF;
            else
                BAD(c == '\n' ? "bare LF" : "invalid chunk extension");
            break;
        case S_EXT_PRE_VALUE:
            if (c == '"')
                st = S_EXT_QUOTED;
            else if (fr_tchar[c])
                st = S_EXT_TOKEN;
            else if (!fr_is_ows(c))
                BAD("invalid chunk extension");
            break;
        case S_EXT_TOKEN:
        case S_EXT_POST_VALUE:
            if (st == S_EXT_TOKEN && fr_tchar[c])
                break;
            if (fr_is_ows(c))
                st = S_EXT_POST_VALUE;
            else if (c == ';')
                st = S_EXT_PRE_NAME;
            else if (c == '\r')
                st = S_SIZE_LF;
            else
                BAD(c == '\n' ? "bare LF" : "invalid chunk extension");
            break;
        case S_EXT_QUOTED:
            if (c == '"')
                st = S_EXT_POST_VALUE;
            else if (c == '\\')
                st = S_EXT_QUOTED_ESC;
            else if (!fr_qdtext[c])
                BAD("invalid chunk extension");
            break;
        case S_EXT_QUOTED_ESC:
            if (!fr_quoted_pair_char[c])
                BAD("invalid chunk extension");
            st = S_EXT_QUOTED;
            break;
        case S_SIZE_LF:
            if (c != '\n')
                BAD("bare CR");
            self->line = 0;
            st = self->size ? S_DATA : S_TRAILER_START;
            break;
        case S_DATA_CR:
            if (c != '\r')
                BAD("missing CRLF after chunk data");
            st = S_DATA_LF;
            break;
        case S_DATA_LF:
            if (c != '\n')
                BAD("missing CRLF after chunk data");
            st = S_SIZE_START;
            break;
        case S_TRAILER_START:
            if (c == '\r')
                st = S_FINAL_LF;
            else if (fr_tchar[c])
                st = S_TRAILER_NAME;
            else if (c == '\n')
                BAD("bare LF");
            else if (fr_is_ows(c))
                BAD("obs-fold in trailer section");
            else
                BAD("invalid trailer field name");
            break;
        case S_TRAILER_NAME:
            if (c == ':')
                st = S_TRAILER_VALUE;
            else if (!fr_tchar[c])
                BAD(fr_is_ows(c) ? "whitespace before colon" : "invalid trailer field name");
            break;
        case S_TRAILER_VALUE:
            if (c == '\r')
                st = S_TRAILER_LF;
            else if (c == '\n')
                BAD("bare LF");
            else if (!fr_field_vchar_ws[c])
                BAD("invalid trailer field value");
            break;
        case S_TRAILER_LF:
            if (c != '\n')
                BAD("bare CR");
            st = S_TRAILER_START;
            break;
        case S_FINAL_LF:
            if (c != '\n')
                BAD("bare CR");
            st = S_DONE;
            break;
        default:
            break;
        }
        p++;
    }
    self->state = st;
    return p - start;

error:
    self->state = S_DONE;
    self->err_status = status;
    self->err_reason = reason;
    return -1;
#undef BAD
}

static PyObject *Chunked_feed(ChunkedDecoder *self, PyObject *data)
{
    if (self->c.err_reason != NULL)
        return fr_raise_http(self->c.err_status, self->c.err_reason);
    fr_view v;
    if (fr_view_get(data, &v, "data") < 0)
        return NULL;
    ptrdiff_t n = fr_chunked_run(&self->c, v.buf, (size_t)v.len, out_append, self);
    fr_view_release(&v);
    if (n == -1)
        return fr_raise_http(self->c.err_status, self->c.err_reason);
    if (n < 0)
        return NULL; /* the sink set MemoryError */
    return PyLong_FromSsize_t(n);
}

static PyObject *Chunked_take(ChunkedDecoder *self, PyObject *unused)
{
    (void)unused;
    if (self->out == NULL || self->out_len == 0)
        return PyBytes_FromStringAndSize(NULL, 0);
    PyObject *out = self->out;
    self->out = NULL;
    if ((size_t)PyBytes_GET_SIZE(out) != self->out_len &&
        _PyBytes_Resize(&out, (Py_ssize_t)self->out_len) < 0) {
        self->out_len = 0;
        return NULL;
    }
    self->out_len = 0;
    return out;
}

static PyObject *Chunked_get_done(ChunkedDecoder *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(fr_chunked_done(&self->c));
}

static PyMethodDef Chunked_methods[] = {
    {"feed", (PyCFunction)Chunked_feed, METH_O,
     "feed(data) -> int\n\nDecode as much of data as possible; return the bytes consumed."},
    {"take", (PyCFunction)Chunked_take, METH_NOARGS,
     "take() -> bytes\n\nReturn the body bytes decoded so far and forget them."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Chunked_getset[] = {
    {"done", (getter)Chunked_get_done, NULL,
     "True once the last chunk and the trailer section have been read.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ChunkedDecoderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "fastrr._core.ChunkedDecoder",
    .tp_basicsize = sizeof(ChunkedDecoder),
    .tp_dealloc = (destructor)Chunked_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "ChunkedDecoder(max_size)\n\nIncremental decoder of a chunked request body.",
    .tp_methods = Chunked_methods,
    .tp_getset = Chunked_getset,
    .tp_init = (initproc)Chunked_init,
    .tp_new = PyType_GenericNew,
};

int fr_chunked_init(PyObject *module)
{
    if (PyType_Ready(&ChunkedDecoderType) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "ChunkedDecoder", (PyObject *)&ChunkedDecoderType) < 0)
        return -1;
    return 0;
}
