/* HttpError / FrameError.
 *
 * HttpError is a real C exception type (like OSError) so that .status and
 * .reason are plain attributes and it pickles through its args:
 * HttpError(status, reason).args == (status, reason). str(e) is the reason. */
#include "fastrr.h"

typedef struct {
    PyBaseExceptionObject base;
    PyObject *status;
    PyObject *reason;
} HttpErrorObject;

PyObject *fr_FrameError = NULL;

static int HttpError_init(HttpErrorObject *self, PyObject *args, PyObject *kwds)
{
    PyObject *status = NULL, *reason = NULL;
    static char *kwlist[] = {"status", "reason", NULL};

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO:HttpError", kwlist, &status, &reason))
        return -1;
    if (!PyLong_Check(status)) {
        PyErr_SetString(PyExc_TypeError, "HttpError status must be an int");
        return -1;
    }
    if (!PyUnicode_Check(reason)) {
        PyErr_SetString(PyExc_TypeError, "HttpError reason must be a str");
        return -1;
    }
    /* Keep BaseException.args == (status, reason) whatever way we were called,
     * so pickling round-trips through __init__. */
    PyObject *newargs = PyTuple_Pack(2, status, reason);
    if (newargs == NULL)
        return -1;
    Py_XSETREF(self->base.args, newargs);
    Py_INCREF(status);
    Py_XSETREF(self->status, status);
    Py_INCREF(reason);
    Py_XSETREF(self->reason, reason);
    return 0;
}

static int HttpError_traverse(HttpErrorObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->status);
    Py_VISIT(self->reason);
    return ((PyTypeObject *)PyExc_Exception)->tp_traverse((PyObject *)self, visit, arg);
}

static int HttpError_clear(HttpErrorObject *self)
{
    Py_CLEAR(self->status);
    Py_CLEAR(self->reason);
    return ((PyTypeObject *)PyExc_Exception)->tp_clear((PyObject *)self);
}

static void HttpError_dealloc(HttpErrorObject *self)
{
    PyObject_GC_UnTrack(self);
    HttpError_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *HttpError_str(HttpErrorObject *self)
{
    if (self->reason != NULL)
        return Py_NewRef(self->reason);
    return ((PyTypeObject *)PyExc_Exception)->tp_str((PyObject *)self);
}

static PyObject *HttpError_get_status(HttpErrorObject *self, void *closure)
{
    (void)closure;
    return Py_NewRef(self->status ? self->status : Py_None);
}

static PyObject *HttpError_get_reason(HttpErrorObject *self, void *closure)
{
    (void)closure;
    return Py_NewRef(self->reason ? self->reason : Py_None);
}

static PyGetSetDef HttpError_getset[] = {
    {"status", (getter)HttpError_get_status, NULL, "HTTP status to answer with (400, 413 or 431).", NULL},
    {"reason", (getter)HttpError_get_reason, NULL, "Short description of what was wrong.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject fr_HttpErrorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "fastrr._core.HttpError",
    .tp_basicsize = sizeof(HttpErrorObject),
    .tp_dealloc = (destructor)HttpError_dealloc,
    .tp_str = (reprfunc)HttpError_str,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "HttpError(status, reason)\n\nThe request is malformed (400), too large "
              "(413) or its head is too large (431).",
    .tp_traverse = (traverseproc)HttpError_traverse,
    .tp_clear = (inquiry)HttpError_clear,
    .tp_getset = HttpError_getset,
    .tp_init = (initproc)HttpError_init,
};

PyObject *fr_raise_http(int status, const char *reason)
{
    PyObject *exc = PyObject_CallFunction((PyObject *)&fr_HttpErrorType, "is", status, reason);
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)&fr_HttpErrorType, exc);
        Py_DECREF(exc);
    }
    return NULL;
}

PyObject *fr_raise_frame(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PyObject *msg = PyUnicode_FromFormatV(fmt, ap);
    va_end(ap);
    if (msg != NULL) {
        PyErr_SetObject(fr_FrameError, msg);
        Py_DECREF(msg);
    }
    return NULL;
}

int fr_errors_init(PyObject *module)
{
    fr_HttpErrorType.tp_base = (PyTypeObject *)PyExc_Exception;
    if (PyType_Ready(&fr_HttpErrorType) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "HttpError", (PyObject *)&fr_HttpErrorType) < 0)
        return -1;
    fr_FrameError = PyErr_NewExceptionWithDoc(
        "fastrr._core.FrameError",
        "A worker sent bytes that are not a valid goridge frame (or a response "
        "context that cannot be used).",
        NULL, NULL);
    if (fr_FrameError == NULL)
        return -1;
    if (PyModule_AddObjectRef(module, "FrameError", fr_FrameError) < 0)
        return -1;
    return 0;
}
