/* fastrr._core.Ring: the server end of one worker's shared-memory relay
 * (ring.c does the work; this is the CPython glue).
 *
 * The event loop waits on `eventfd`; the worker gets `memfd` and `eventfd`
 * through exec (pass_fds) and their numbers in FASTRR_RING (= `spec`).
 * Everything here is non-blocking. read() copies the available bytes once,
 * straight into the bytes object it returns; write() copies from the
 * caller's buffer into the ring (what does not fit is the caller's to keep).
 */
#include "fastrr.h"
#include "ring.h"

#define READ_DEFAULT (1 << 20)

typedef struct {
    PyObject_HEAD
    fr_ring *ring; /* NULL once closed */
} RingObject;

static int ring_alive(RingObject *self)
{
    if (self->ring == NULL) {
        PyErr_SetString(PyExc_ValueError, "the ring is closed");
        return 0;
    }
    return 1;
}

static PyObject *Ring_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"capacity", NULL};
    Py_ssize_t cap = FR_RING_DEFAULT_CAPACITY;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|n:Ring", kwlist, &cap))
        return NULL;
    if (cap < (Py_ssize_t)FR_RING_MIN_CAPACITY || cap > (Py_ssize_t)FR_RING_MAX_CAPACITY ||
        (cap & (cap - 1)) != 0) {
        PyErr_Format(PyExc_ValueError, "capacity must be a power of two in %u..%u, got %zd",
                     FR_RING_MIN_CAPACITY, FR_RING_MAX_CAPACITY, cap);
        return NULL;
    }
    RingObject *self = (RingObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->ring = fr_ring_create((size_t)cap);
    if (self->ring == NULL) {
        PyErr_SetFromErrno(PyExc_OSError);
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void Ring_dealloc(RingObject *self)
{
    fr_ring_destroy(self->ring);
    self->ring = NULL;
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Ring_write(RingObject *self, PyObject *data)
{
    if (!ring_alive(self))
        return NULL;
    fr_view v;
    if (fr_view_get(data, &v, "data") < 0)
        return NULL;
    size_t k = fr_ring_server_write(self->ring, v.buf, (size_t)v.len);
    fr_view_release(&v);
    return PyLong_FromSize_t(k);
}

static PyObject *Ring_read(RingObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!ring_alive(self))
        return NULL;
    Py_ssize_t max = READ_DEFAULT;
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "read() takes at most 1 argument");
        return NULL;
    }
    if (nargs == 1 && fr_arg_ssize(args[0], "max", &max) < 0)
        return NULL;
    size_t n = fr_ring_server_readable(self->ring);
    if (max >= 0 && n > (size_t)max)
        n = (size_t)max;
    if (n == 0)
        return PyBytes_FromStringAndSize(NULL, 0);
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    if (out == NULL)
        return NULL;
    size_t k = fr_ring_server_read(self->ring, PyBytes_AS_STRING(out), n);
    if (k != n && _PyBytes_Resize(&out, (Py_ssize_t)k) < 0) /* cannot happen: one consumer */
        return NULL;
    return out;
}

static PyObject *Ring_arm(RingObject *self, PyObject *want_space)
{
    if (!ring_alive(self))
        return NULL;
    int w = PyObject_IsTrue(want_space);
    if (w < 0)
        return NULL;
    return PyBool_FromLong(fr_ring_server_arm(self->ring, w));
}

static PyObject *Ring_ack(RingObject *self, PyObject *unused)
{
    (void)unused;
    if (!ring_alive(self))
        return NULL;
    fr_ring_server_ack(self->ring);
    Py_RETURN_NONE;
}

static PyObject *Ring_close(RingObject *self, PyObject *unused)
{
    (void)unused;
    fr_ring_destroy(self->ring);
    self->ring = NULL;
    Py_RETURN_NONE;
}

#define RING_INT_GETTER(name, expr)                                  \
    static PyObject *Ring_get_##name(RingObject *self, void *closure) \
    {                                                                \
        (void)closure;                                               \
        if (!ring_alive(self))                                       \
            return NULL;                                             \
        return PyLong_FromSsize_t((Py_ssize_t)(expr));               \
    }

RING_INT_GETTER(memfd, fr_ring_memfd(self->ring))
RING_INT_GETTER(eventfd, fr_ring_eventfd(self->ring))
RING_INT_GETTER(capacity, fr_ring_capacity(self->ring))
RING_INT_GETTER(readable, fr_ring_server_readable(self->ring))
RING_INT_GETTER(space, fr_ring_server_space(self->ring))
RING_INT_GETTER(worker_pid, fr_ring_worker_pid(self->ring))

static PyObject *Ring_get_spec(RingObject *self, void *closure)
{
    (void)closure;
    if (!ring_alive(self))
        return NULL;
    return PyUnicode_FromFormat("fd:%d,%d", fr_ring_memfd(self->ring), fr_ring_eventfd(self->ring));
}

static PyObject *Ring_get_worker_closed(RingObject *self, void *closure)
{
    (void)closure;
    if (!ring_alive(self))
        return NULL;
    return PyBool_FromLong(fr_ring_worker_closed(self->ring));
}

static PyObject *Ring_get_closed(RingObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->ring == NULL);
}

static PyMethodDef Ring_methods[] = {
    {"write", (PyCFunction)Ring_write, METH_O,
     "write(data) -> int\n\nCopy as much of data into the server->worker ring as fits; "
     "return the bytes taken (wakes the worker if it sleeps)."},
    {"read", (PyCFunction)(void (*)(void))Ring_read, METH_FASTCALL,
     "read(max=1 MiB) -> bytes\n\nTake what the worker wrote (b'' if nothing); "
     "wakes the worker if it waits for space."},
    {"arm", (PyCFunction)Ring_arm, METH_O,
     "arm(want_space) -> bool\n\nBefore waiting on eventfd: ask the worker for a kick on "
     "new data (and on free space if want_space). True means there already is something: "
     "do not wait, process again."},
    {"ack", (PyCFunction)Ring_ack, METH_NOARGS, "ack()\n\nReset the eventfd after a kick."},
    {"close", (PyCFunction)Ring_close, METH_NOARGS,
     "close()\n\nTell the worker the server is gone, unmap, close both fds (idempotent)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Ring_getset[] = {
    {"memfd", (getter)Ring_get_memfd, NULL, "The shared mapping's fd (inherit it).", NULL},
    {"eventfd", (getter)Ring_get_eventfd, NULL, "The fd the worker kicks (wait on it; inherit it).", NULL},
    {"spec", (getter)Ring_get_spec, NULL, "FASTRR_RING for the worker: 'fd:<memfd>,<eventfd>'.", NULL},
    {"capacity", (getter)Ring_get_capacity, NULL, "Bytes per direction.", NULL},
    {"readable", (getter)Ring_get_readable, NULL, "Bytes the worker wrote that are not read yet.", NULL},
    {"space", (getter)Ring_get_space, NULL, "Free bytes in the server->worker ring.", NULL},
    {"worker_pid", (getter)Ring_get_worker_pid, NULL, "PID of the worker that opened the ring, or 0.", NULL},
    {"worker_closed", (getter)Ring_get_worker_closed, NULL, "The worker closed its end.", NULL},
    {"closed", (getter)Ring_get_closed, NULL, "close() was called.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject RingType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "fastrr._core.Ring",
    .tp_basicsize = sizeof(RingObject),
    .tp_dealloc = (destructor)Ring_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Ring(capacity=1 MiB)\n\nThe server end of a worker's shared-memory relay: two "
              "byte rings (one per direction) in a memfd, wake-ups by futex (worker) and "
              "eventfd (server).",
    .tp_methods = Ring_methods,
    .tp_getset = Ring_getset,
    .tp_new = Ring_new,
};

int fr_ring_init(PyObject *module)
{
    if (PyType_Ready(&RingType) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "Ring", (PyObject *)&RingType) < 0)
        return -1;
    return PyModule_AddIntConstant(module, "RING_DEFAULT_CAPACITY", FR_RING_DEFAULT_CAPACITY);
}
