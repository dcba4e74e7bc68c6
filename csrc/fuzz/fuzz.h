/* Shared part of the libFuzzer harnesses in csrc/fuzz/.
 *
 * The harnesses link the csrc/ sources directly (compiled with clang,
 * -fsanitize=fuzzer,address,undefined) into one binary per target, and
 * embed CPython for the parts of csrc/ that work on Python objects
 * (ChunkedDecoder, FrameReader, build_response, the Request type and the
 * context encoder). The extension module is created by calling its init
 * function directly: no import, no other copy of fastrr._core involved.
 *
 * Python runs with the plain malloc allocator (PYMEM_ALLOCATOR_MALLOC) so
 * that every object is its own allocation and ASan sees overflows past the
 * end of a bytes object instead of landing inside a pymalloc arena.
 *
 * Besides memory errors, each target checks properties that must hold for
 * every input (split invariance, output syntax); a violation calls
 * fz_fail(), which aborts, so libFuzzer records it as a crash. */
#ifndef FASTRR_FUZZ_H
#define FASTRR_FUZZ_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FZ_PYTHON_HOME
#error "build with -DFZ_PYTHON_HOME=\"<sys.base_prefix>\" (see the Makefile target fuzz)"
#endif

PyMODINIT_FUNC PyInit__core(void);

static PyObject *fz_mod;

static inline void fz_fail(const char *what)
{
    fprintf(stderr, "\n*** fuzz property violated: %s\n", what);
    if (PyErr_Occurred())
        PyErr_Print();
    fflush(stderr);
    abort();
}

#define FZ_CHECK(cond, what)  \
    do {                      \
        if (!(cond))          \
            fz_fail(what);    \
    } while (0)

static inline void fz_init_python(void)
{
    PyPreConfig pre;
    PyPreConfig_InitIsolatedConfig(&pre);
    pre.allocator = PYMEM_ALLOCATOR_MALLOC;
    PyStatus st = Py_PreInitialize(&pre);
    if (PyStatus_Exception(st))
        Py_ExitStatusException(st);

    PyConfig cfg;
    PyConfig_InitIsolatedConfig(&cfg);
    cfg.site_import = 0;
    cfg.install_signal_handlers = 0; /* libFuzzer owns the signals */
    cfg.write_bytecode = 0;
    st = PyConfig_SetBytesString(&cfg, &cfg.home, FZ_PYTHON_HOME);
    if (!PyStatus_Exception(st))
        st = Py_InitializeFromConfig(&cfg);
    PyConfig_Clear(&cfg);
    if (PyStatus_Exception(st))
        Py_ExitStatusException(st);
    fz_mod = PyInit__core();
    if (fz_mod == NULL)
        fz_fail("PyInit__core failed");
}

static inline PyObject *fz_attr(const char *name)
{
    PyObject *o = PyObject_GetAttrString(fz_mod, name);
    if (o == NULL)
        fz_fail(name);
    return o;
}

/* A deterministic stream of pseudo-random numbers from the input, for
 * choosing split points (the same input always splits the same way). */
typedef struct {
    uint64_t s;
} fz_rng;

static inline void fz_rng_seed(fz_rng *r, const uint8_t *data, size_t size)
{
    uint64_t h = 1469598103934665603ull ^ size; /* FNV-1a */
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 1099511628211ull;
    r->s = h | 1;
}

static inline uint32_t fz_next(fz_rng *r)
{
    r->s ^= r->s << 13; /* xorshift64 */
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return (uint32_t)(r->s >> 32);
}

/* Size of the next piece when feeding an input of `total` bytes in pieces:
 * mostly small, sometimes one byte, sometimes large; at most ~64 pieces per
 * input, so long inputs do not cost thousands of calls each. */
static inline size_t fz_piece(fz_rng *r, size_t left, size_t total)
{
    static const size_t sizes[] = {1, 1, 2, 3, 5, 7, 11, 12, 13, 16, 17, 31, 64, 100, 512, 4096};
    size_t k = sizes[fz_next(r) % (sizeof(sizes) / sizeof(sizes[0]))];
    if (k < total / 64)
        k = total / 64 + fz_next(r) % 16;
    return k < left ? k : left;
}

/* True when the pending exception is `type`; clears it then. Any other
 * exception (SystemError, MemoryError, TypeError...) is a bug: abort. */
static inline int fz_expect_exc(PyObject *type, const char *where)
{
    if (!PyErr_Occurred())
        fz_fail(where);
    if (!PyErr_ExceptionMatches(type))
        fz_fail(where);
    return 1;
}

#endif
