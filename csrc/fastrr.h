/* Shared declarations of the fastrr._core extension (CPython C API side).
 *
 * Rules of this extension:
 *  - Every function that returns PyObject* returns a new reference or NULL
 *    with an exception set; every int-returning helper returns 0 / -1.
 *  - Buffers passed in by the caller are only read while the call runs (the
 *    GIL is held the whole time, nothing we call can run Python code that
 *    could resize a bytearray under us; we hold a Py_buffer view anyway).
 *  - Results never point into caller buffers: whatever outlives the call is
 *    copied (see csrc/README.md, "buffer ownership").
 */
#ifndef FASTRR_H
#define FASTRR_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "buf.h"
#include "chars.h"

/* Exceptions (set up in errors.c). */
extern PyTypeObject fr_HttpErrorType;
extern PyObject *fr_FrameError;

int fr_errors_init(PyObject *module);
/* Raise HttpError(status, reason). Always returns NULL. */
PyObject *fr_raise_http(int status, const char *reason);
/* Raise FrameError(printf-style message). Always returns NULL. */
PyObject *fr_raise_frame(const char *fmt, ...);

/* Keyword-aware unpacking of METH_FASTCALL|METH_KEYWORDS arguments.
 * names: parameter names in order; the first nreq are required. Missing
 * optional parameters are set to NULL (borrowed references otherwise). */
int fr_unpack_args(const char *fname, PyObject *const *args, Py_ssize_t nargs,
                   PyObject *kwnames, const char *const *names, Py_ssize_t nreq,
                   Py_ssize_t nparams, PyObject **out);

/* A read-only view of any buffer-protocol object. bytes and bytearray are
 * read directly; anything else goes through PyObject_GetBuffer. */
typedef struct {
    const unsigned char *buf;
    Py_ssize_t len;
    Py_buffer view;
    int has_view;
} fr_view;

int fr_view_get(PyObject *obj, fr_view *v, const char *what);
void fr_view_release(fr_view *v);

/* Integer argument helpers: 0 / -1 with an exception. */
int fr_arg_ssize(PyObject *obj, const char *what, Py_ssize_t *out);

/* Per-part initialisation (each adds its types/functions to the module). */
int fr_frame_init(PyObject *module);
int fr_request_init(PyObject *module);
int fr_chunked_init(PyObject *module);
int fr_response_init(PyObject *module);

/* Module-level functions implemented in the parts. */
PyObject *fr_py_crc32(PyObject *m, PyObject *arg);
PyObject *fr_py_encode_frame(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kw);
PyObject *fr_py_parse_request(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kw);
PyObject *fr_py_encode_http_request(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kw);
PyObject *fr_py_encode_http_context(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kw);
PyObject *fr_py_build_response(PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kw);
PyObject *fr_py_encode_chunk(PyObject *m, PyObject *arg);
PyObject *fr_py_http_date(PyObject *m, PyObject *unused);

/* Frame layout helpers shared by frame.c and context.c. */
uint32_t fr_crc32(uint32_t crc, const unsigned char *p, size_t n);
/* Writes a 12-byte goridge v3 header (+ nopts option words) to out. */
void fr_write_frame_header(unsigned char *out, unsigned flags, uint32_t payload_len,
                           const uint32_t *opts, int nopts, unsigned byte10);

static inline void fr_put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static inline uint32_t fr_get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

#endif
