/* parse_request() and the Request type. See request.h for the layout. */
#include "request.h"

/* Interned method names, so the common methods cost no allocation. */
static const char *const known_methods[] = {"GET",     "HEAD",  "POST",  "PUT",  "DELETE",
                                            "OPTIONS", "PATCH", "TRACE", "CONNECT"};
#define N_KNOWN_METHODS (sizeof(known_methods) / sizeof(known_methods[0]))
static PyObject *method_objs[N_KNOWN_METHODS];

/* ----------------------------------------------------------- accessors */

static PyObject *Request_get_method(RequestObject *self, void *closure)
{
    (void)closure;
    if (self->method_str == NULL) {
        const char *m = (const char *)fr_req_head(self) + self->method_off;
        for (size_t i = 0; i < N_KNOWN_METHODS; i++) {
            if (strlen(known_methods[i]) == self->method_len &&
                memcmp(known_methods[i], m, self->method_len) == 0) {
                self->method_str = Py_NewRef(method_objs[i]);
                break;
            }
        }
        if (self->method_str == NULL) {
            /* token chars only: ASCII */
            self->method_str = PyUnicode_DecodeASCII(m, self->method_len, NULL);
            if (self->method_str == NULL)
                return NULL;
        }
    }
    return Py_NewRef(self->method_str);
}

static PyObject *Request_get_target(RequestObject *self, void *closure)
{
    (void)closure;
    if (self->target_str == NULL) {
        const char *t = (const char *)fr_req_head(self) + self->target_off;
        self->target_str = PyUnicode_DecodeLatin1(t, self->target_len, NULL);
        if (self->target_str == NULL)
            return NULL;
    }
    return Py_NewRef(self->target_str);
}

static PyObject *Request_get_host(RequestObject *self, void *closure)
{
    (void)closure;
    if (self->host_index < 0)
        Py_RETURN_NONE;
    if (self->host_str == NULL) {
        const fr_hdr *hd = &self->hdrs[self->host_index];
        self->host_str = PyUnicode_DecodeLatin1((const char *)fr_req_head(self) + hd->value_off,
                                                hd->value_len, NULL);
        if (self->host_str == NULL)
            return NULL;
    }
    return Py_NewRef(self->host_str);
}

static PyObject *Request_get_headers(RequestObject *self, void *closure)
{
    (void)closure;
    const char *head = (const char *)fr_req_head(self);
    PyObject *list = PyList_New(self->nheaders);
    if (list == NULL)
        return NULL;
    for (int i = 0; i < self->nheaders; i++) {
        const fr_hdr *hd = &self->hdrs[i];
        PyObject *t = Py_BuildValue("(y#y#)", head + hd->name_off, (Py_ssize_t)hd->name_len,
                                    head + hd->value_off, (Py_ssize_t)hd->value_len);
        if (t == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, t);
    }
    return list;
}

#define INT_GETTER(field, conv)                                                     \
    static PyObject *Request_get_##field(RequestObject *self, void *closure)        \
    {                                                                               \
        (void)closure;                                                              \
        return conv(self->field);                                                   \
    }
INT_GETTER(http_minor, PyLong_FromLong)
INT_GETTER(head_len, PyLong_FromSsize_t)
INT_GETTER(content_length, PyLong_FromLongLong)
INT_GETTER(body_kind, PyLong_FromLong)
INT_GETTER(chunked, PyBool_FromLong)
INT_GETTER(keep_alive, PyBool_FromLong)
INT_GETTER(expect_continue, PyBool_FromLong)

static PyObject *Request_get_header(RequestObject *self, PyObject *name)
{
    fr_view v;
    if (fr_view_get(name, &v, "name") < 0)
        return NULL;
    const unsigned char *head = fr_req_head(self);
    PyObject *res = NULL;
    for (int i = 0; i < self->nheaders; i++) {
        const fr_hdr *hd = &self->hdrs[i];
        if ((Py_ssize_t)hd->name_len == v.len && fr_ieq2(head + hd->name_off, v.buf, hd->name_len)) {
            res = PyBytes_FromStringAndSize((const char *)head + hd->value_off, hd->value_len);
            break;
        }
    }
    fr_view_release(&v);
    if (res == NULL && !PyErr_Occurred())
        Py_RETURN_NONE;
    return res;
}

static PyObject *Request_repr(RequestObject *self)
{
    PyObject *m = Request_get_method(self, NULL);
    if (m == NULL)
        return NULL;
    PyObject *t = Request_get_target(self, NULL);
    if (t == NULL) {
        Py_DECREF(m);
        return NULL;
    }
    PyObject *r = PyUnicode_FromFormat("<Request %U %R HTTP/1.%d>", m, t, self->http_minor);
    Py_DECREF(m);
    Py_DECREF(t);
    return r;
}

static void Request_dealloc(RequestObject *self)
{
    Py_XDECREF(self->method_str);
    Py_XDECREF(self->target_str);
    Py_XDECREF(self->host_str);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyGetSetDef Request_getset[] = {
    {"method", (getter)Request_get_method, NULL, "Request method (str, case kept).", NULL},
    {"target", (getter)Request_get_target, NULL, "Raw request-target, latin-1 decoded.", NULL},
    {"http_minor", (getter)Request_get_http_minor, NULL, "0 for HTTP/1.0, 1 for HTTP/1.1.", NULL},
    {"head_len", (getter)Request_get_head_len, NULL,
     "Bytes of the buffer the head used (incl. skipped leading empty lines).", NULL},
    {"content_length", (getter)Request_get_content_length, NULL,
     "Content-Length, or -1 when absent.", NULL},
    {"chunked", (getter)Request_get_chunked, NULL, "Transfer-Encoding: chunked.", NULL},
    {"keep_alive", (getter)Request_get_keep_alive, NULL,
     "Whether the connection may stay open after this request.", NULL},
    {"expect_continue", (getter)Request_get_expect_continue, NULL,
     "Expect: 100-continue (HTTP/1.1 only).", NULL},
    {"body_kind", (getter)Request_get_body_kind, NULL,
     "BODY_URLENCODED, BODY_MULTIPART or BODY_OTHER (from Content-Type).", NULL},
    {"host", (getter)Request_get_host, NULL, "Host header value, or None.", NULL},
    {"headers", (getter)Request_get_headers, NULL,
     "list of (name, value) bytes pairs in arrival order, names as sent (built per access).",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef Request_methods[] = {
    {"get_header", (PyCFunction)Request_get_header, METH_O,
     "get_header(name: bytes) -> bytes | None\n\nFirst value of a header, name case-insensitive."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject fr_RequestType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "fastrr._core.Request",
    .tp_basicsize = offsetof(RequestObject, hdrs),
    .tp_itemsize = 1,
    .tp_dealloc = (destructor)Request_dealloc,
    .tp_repr = (reprfunc)Request_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A parsed HTTP/1.x request head (immutable; made by parse_request()).",
    .tp_methods = Request_methods,
    .tp_getset = Request_getset,
    .tp_free = PyObject_Del,
};

/* ------------------------------------------------------- parse_request */

size_t fr_request_size(const fr_head *h)
{
    return offsetof(RequestObject, hdrs) + (size_t)h->nheaders * sizeof(fr_hdr) +
           (h->head_len - h->start);
}

void fr_request_fill(RequestObject *r, const fr_head *h, const unsigned char *buf)
{
    size_t start = h->start;
    r->method_str = r->target_str = r->host_str = NULL;
    r->head_len = (Py_ssize_t)h->head_len;
    r->head_size = (Py_ssize_t)(h->head_len - start);
    r->content_length = h->content_length;
    r->method_off = h->method_off - (uint32_t)start;
    r->method_len = h->method_len;
    r->target_off = h->target_off - (uint32_t)start;
    r->target_len = h->target_len;
    r->http_minor = h->http_minor;
    r->target_form = h->target_form;
    r->nheaders = h->nheaders;
    r->host_index = h->host_index;
    r->chunked = h->chunked;
    r->keep_alive = h->keep_alive;
    r->expect_continue = h->expect_continue;
    r->body_kind = h->body_kind;
    for (int i = 0; i < h->nheaders; i++) {
        r->hdrs[i].name_off = h->headers[i].name_off - (uint32_t)start;
        r->hdrs[i].name_len = h->headers[i].name_len;
        r->hdrs[i].value_off = h->headers[i].value_off - (uint32_t)start;
        r->hdrs[i].value_len = h->headers[i].value_len;
    }
    memcpy((unsigned char *)fr_req_head(r), buf + start, (size_t)r->head_size);
}

PyObject *fr_py_parse_request(PyObject *mod, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
    (void)mod;
    static const char *const names[] = {"buf", "max_head"};
    PyObject *a[2];
    Py_ssize_t max_head;
    fr_view v;
    fr_head h;

    if (fr_unpack_args("parse_request", args, nargs, kw, names, 2, 2, a) < 0)
        return NULL;
    if (fr_arg_ssize(a[1], "max_head", &max_head) < 0)
        return NULL;
    if (max_head < 0) {
        PyErr_SetString(PyExc_ValueError, "max_head must be >= 0");
        return NULL;
    }
    if ((unsigned long long)max_head > 0xFFFFFFFFull) /* offsets are 32-bit */
        max_head = (Py_ssize_t)0xFFFFFFFFll;
    if (fr_view_get(a[0], &v, "buf") < 0)
        return NULL;

    int rc = fr_parse_head(v.buf, (size_t)v.len, (size_t)max_head, &h);
    if (rc <= 0) {
        fr_view_release(&v);
        if (rc == 0)
            Py_RETURN_NONE;
        return fr_raise_http(h.err_status, h.err_reason);
    }

    /* One allocation: header table + the head bytes from the request line
     * on (the skipped leading empty lines are not stored). */
    size_t var = fr_request_size(&h) - offsetof(RequestObject, hdrs);
    RequestObject *r = PyObject_NewVar(RequestObject, &fr_RequestType, (Py_ssize_t)var);
    if (r == NULL) {
        fr_view_release(&v);
        return NULL;
    }
    fr_request_fill(r, &h, v.buf);
    fr_view_release(&v);
    return (PyObject *)r;
}

int fr_request_init(PyObject *module)
{
    for (size_t i = 0; i < N_KNOWN_METHODS; i++) {
        if (method_objs[i] == NULL) {
            method_objs[i] = PyUnicode_InternFromString(known_methods[i]);
            if (method_objs[i] == NULL)
                return -1;
        }
    }
    if (PyType_Ready(&fr_RequestType) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "Request", (PyObject *)&fr_RequestType) < 0)
        return -1;
    return 0;
}
