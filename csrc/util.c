/* Small helpers: argument unpacking, buffer views, growable buffers. */
#include "fastrr.h"

int fr_unpack_args(const char *fname, PyObject *const *args, Py_ssize_t nargs,
                   PyObject *kwnames, const char *const *names, Py_ssize_t nreq,
                   Py_ssize_t nparams, PyObject **out)
{
    if (nargs > nparams) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %zd arguments (%zd given)",
                     fname, nparams, nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nparams; i++)
        out[i] = i < nargs ? args[i] : NULL;
    if (kwnames != NULL) {
        Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
        for (Py_ssize_t k = 0; k < nkw; k++) {
            const char *kw = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kwnames, k));
            if (kw == NULL)
                return -1;
            Py_ssize_t j = 0;
            while (j < nparams && strcmp(kw, names[j]) != 0)
                j++;
            if (j == nparams) {
                PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%s'",
                             fname, kw);
                return -1;
            }
            if (out[j] != NULL) {
                PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'",
                             fname, kw);
                return -1;
            }
            out[j] = args[nargs + k];
        }
    }
    for (Py_ssize_t i = 0; i < nreq; i++) {
        if (out[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s' (pos %zd)",
                         fname, names[i], i + 1);
            return -1;
        }
    }
    return 0;
}

int fr_view_get(PyObject *obj, fr_view *v, const char *what)
{
    v->has_view = 0;
    if (PyBytes_CheckExact(obj)) {
        v->buf = (const unsigned char *)PyBytes_AS_STRING(obj);
        v->len = PyBytes_GET_SIZE(obj);
        return 0;
    }
    if (PyByteArray_CheckExact(obj)) {
        /* Safe without a view: we hold the GIL and call no Python code while
         * the pointer is in use. */
        v->buf = (const unsigned char *)PyByteArray_AS_STRING(obj);
        v->len = PyByteArray_GET_SIZE(obj);
        return 0;
    }
    if (PyObject_GetBuffer(obj, &v->view, PyBUF_SIMPLE) < 0) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Format(PyExc_TypeError, "%s must be a bytes-like object, not %.100s",
                         what, Py_TYPE(obj)->tp_name);
        }
        return -1;
    }
    v->has_view = 1;
    /* An exporter may give buf == NULL for an empty buffer; memcpy and
     * pointer arithmetic on NULL are undefined even for 0 bytes. */
    v->buf = v->view.buf ? (const unsigned char *)v->view.buf : (const unsigned char *)"";
    v->len = v->view.len;
    return 0;
}

void fr_view_release(fr_view *v)
{
    if (v->has_view) {
        PyBuffer_Release(&v->view);
        v->has_view = 0;
    }
}

int fr_arg_ssize(PyObject *obj, const char *what, Py_ssize_t *out)
{
    if (!PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", what,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    Py_ssize_t v = PyLong_AsSsize_t(obj);
    if (v == -1 && PyErr_Occurred())
        return -1;
    *out = v;
    return 0;
}

int fr_no_memory(void)
{
    /* The engine thread calls the same code without the GIL: only a caller
     * that holds it gets a MemoryError (the engine reports failures itself). */
    if (PyGILState_Check())
        PyErr_NoMemory();
    return -1;
}

int fr_buf_grow(fr_buf *b, size_t extra)
{
    size_t need = b->len + extra;
    if (need < b->len)
        return fr_no_memory();
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > ((size_t)PY_SSIZE_T_MAX) / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    if (cap > (size_t)PY_SSIZE_T_MAX)
        return fr_no_memory();
    /* The raw allocator is thread-safe without the GIL (see buf.h). */
    char *p = PyMem_RawRealloc(b->data, cap);
    if (p == NULL)
        return fr_no_memory();
    b->data = p;
    b->cap = cap;
    return 0;
}

void fr_buf_trim(fr_buf *b, size_t keep)
{
    b->len = 0;
    if (b->cap > keep) {
        PyMem_RawFree(b->data);
        b->data = NULL;
        b->cap = 0;
    }
}
