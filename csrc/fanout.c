/* send_all(fds, data): one buffer written to many sockets in one call.
 *
 * The broadcast fan-out (fastrr/websockets/fanout.py) sends the same frame
 * bytes to every subscriber of a topic. Through asyncio each subscriber costs
 * a transport.write() - a Python call, the transport's bookkeeping and the
 * send() - about as much again as the kernel's own loopback send. Here the
 * loop over the fds is C with the GIL released: what is left per subscriber
 * is the send() itself.
 *
 * Only sockets whose transport has nothing buffered may be passed (the bytes
 * must not overtake earlier ones); the caller hands whatever a socket did not
 * take - a short write, EAGAIN, an error - back to that transport, which then
 * buffers it or finds the error itself. The result lists only those:
 * (index into fds, bytes sent, errno or 0), so a fan-out that went out whole
 * allocates nothing per subscriber.
 */
#include "fastrr.h"

#include <errno.h>
#include <sys/socket.h>

#define SEND_FLAGS (MSG_NOSIGNAL | MSG_DONTWAIT)

typedef struct {
    Py_ssize_t index;
    Py_ssize_t sent;
    int err;
} fo_short;

PyObject *fr_py_send_all(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "send_all(fds, data) takes exactly 2 arguments");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(args[0], "send_all: fds must be a sequence of ints");
    if (seq == NULL)
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) < 0) {
        Py_DECREF(seq);
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    int *fds = PyMem_RawMalloc(n > 0 ? (size_t)n * sizeof(int) : 1);
    fo_short *shorts = PyMem_RawMalloc(n > 0 ? (size_t)n * sizeof(fo_short) : 1);
    if (fds == NULL || shorts == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        long fd = PyLong_AsLong(items[i]);
        if (fd == -1 && PyErr_Occurred())
            goto done;
        if (fd < 0 || fd > INT_MAX) {
            PyErr_Format(PyExc_ValueError, "send_all: bad fd %ld", fd);
            goto done;
        }
        fds[i] = (int)fd;
    }

    Py_ssize_t nshort = 0;
    const char *data = view.buf;
    size_t len = (size_t)view.len;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        size_t off = 0;
        int err = 0;
        while (off < len) {
            ssize_t r = send(fds[i], data + off, len - off, SEND_FLAGS);
            if (r > 0) {
                off += (size_t)r;
                continue;
            }
            if (r < 0 && errno == EINTR)
                continue;
            err = r < 0 ? errno : 0;
            break;
        }
        if (off < len) {
            shorts[nshort].index = i;
            shorts[nshort].sent = (Py_ssize_t)off;
            shorts[nshort].err = err;
            nshort++;
        }
    }
    Py_END_ALLOW_THREADS

    result = PyList_New(nshort);
    if (result == NULL)
        goto done;
    for (Py_ssize_t k = 0; k < nshort; k++) {
        PyObject *t = Py_BuildValue("(nni)", shorts[k].index, shorts[k].sent, shorts[k].err);
        if (t == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, k, t);
    }
done:
    PyMem_RawFree(fds);
    PyMem_RawFree(shorts);
    PyBuffer_Release(&view);
    Py_DECREF(seq);
    return result;
}
