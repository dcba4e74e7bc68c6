/* fastrr._core.Engine: the Python face of the C HTTP engine (the loop is in
 * engine_loop.c). Everything here runs in the caller's thread with the GIL;
 * waiting for the engine thread always releases it, and the engine thread
 * never waits for Python, so no lock order can deadlock.
 *
 *   Engine(listen_fd=-1, **limits)   starts the thread
 *   .event_fd                        readable when poll_events() has work
 *   .listen(fd)                      accept on a listening socket (Python's)
 *   .add_worker(id, rfd, wfd, max_jobs=0)
 *   .stop_worker(id) -> 0 | 1 | -1   stop frame sent now | after its request | unknown
 *   .remove_worker(id, reason) -> bool   the process is gone (synchronous)
 *   .stop_accepting(), .abort_connections(), .stats() -> dict
 *   .upload_go/ack/done/fail/release(token, ...)   answers to a multipart body
 *   .static_serve/miss/abort(token, ...)   answers to a static event (not waited for)
 *   detach_paths=[b"/ws", ...]      such GETs become "detach" events: the socket goes to Python
 *   .poll_events() -> list[tuple]    see fastrr/http/engine_pool.py
 *   .close() -> list[tuple]          stops the thread; returns the last events
 */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct {
    PyObject_HEAD
    fe_engine *e;
} EngineObject;

static void engine_free(fe_engine *e)
{
    while (e->cmd_head) { /* posted after the thread stopped: only owned ones can be left */
        fe_cmd *c = e->cmd_head;
        e->cmd_head = c->next;
        if (c->owned) {
            if (c->rfd >= 0)
                close(c->rfd);
            free(c);
        }
    }
    while (e->ev_head) {
        fe_event *ev = e->ev_head;
        e->ev_head = ev->next;
        fe_event_free(ev);
    }
    if (e->epfd >= 0)
        close(e->epfd);
    if (e->cmd_fd >= 0)
        close(e->cmd_fd);
    if (e->event_fd >= 0)
        close(e->event_fd);
    fr_resp_scratch_trim(&e->resp, 0);
    fr_buf_trim(&e->out, 0);
    fr_buf_trim(&e->text, 0);
    fr_buf_trim(&e->form_json, 0);
    fr_buf_trim(&e->form_err, 0);
    fr_buf_trim(&e->pb_scratch, 0);
    fr_buf_trim(&e->logline, 0);
    fr_buf_trim(&e->loglines, 0);
    fe_form_scratch_free(&e->form);
    fr_buf_trim(&e->st_path, 0);
    fr_buf_trim(&e->st_dec, 0);
    free(e->cfg.static_root);
    free(e->cfg.static_forbid);
    free(e->cfg.static_allow);
    free(e->cfg.detach);
    free(e->rscratch);
    fe_pool_free(&e->heads);
    fe_pool_free(&e->frames);
    free(e->free_stack);
    free(e->metrics);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}

/* Append a command to the engine's queue. Only the first one into an empty
 * queue wakes the engine: run_commands reads the eventfd before it takes the
 * queue, so a non-empty queue is one the engine has yet to take, this command
 * included. */
static void post_cmd(fe_engine *e, fe_cmd *cmd)
{
    cmd->next = NULL;
    pthread_mutex_lock(&e->mu);
    int was_empty = e->cmd_head == NULL;
    if (e->cmd_tail)
        e->cmd_tail->next = cmd;
    else
        e->cmd_head = cmd;
    e->cmd_tail = cmd;
    pthread_mutex_unlock(&e->mu);
    if (was_empty) {
        uint64_t one = 1;
        ssize_t r = write(e->cmd_fd, &one, sizeof(one));
        (void)r;
    }
}

/* Post a command and wait for the engine thread to have run it. */
static int run_cmd(EngineObject *self, fe_cmd *cmd)
{
    fe_engine *e = self->e;
    if (e == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the engine is closed");
        return -1;
    }
    cmd->done = 0;
    Py_BEGIN_ALLOW_THREADS
    post_cmd(e, cmd);
    pthread_mutex_lock(&e->mu);
    while (!cmd->done)
        pthread_cond_wait(&e->cv, &e->mu);
    pthread_mutex_unlock(&e->mu);
    Py_END_ALLOW_THREADS
    return 0;
}

static PyObject *field_value(const fe_field *f)
{
    switch (f->kind) {
    case FE_F_INT: return PyLong_FromLongLong(f->i);
    case FE_F_FLOAT: return PyFloat_FromDouble(f->d);
    case FE_F_UTF8: return PyUnicode_DecodeUTF8(f->s, (Py_ssize_t)f->n, "replace");
    case FE_F_LATIN1: return PyUnicode_DecodeLatin1(f->s, (Py_ssize_t)f->n, NULL);
    case FE_F_BYTES: return PyBytes_FromStringAndSize(f->s, (Py_ssize_t)f->n);
    default: Py_RETURN_NONE;
    }
}

static PyObject *fields_dict(const fe_event *ev)
{
    PyObject *d = PyDict_New();
    if (d == NULL)
        return NULL;
    for (int i = 0; i < ev->nfields; i++) {
        PyObject *v = field_value(&ev->fields[i]);
        if (v == NULL || PyDict_SetItemString(d, ev->fields[i].key, v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(v);
    }
    return d;
}

/* A "static" or "detach" event's request: a real fastrr._core.Request made
 * from the engine's RequestObject-shaped copy (same layout, no Python objects
 * in it). */
static PyObject *event_request(const fe_event *ev)
{
    size_t fixed = offsetof(RequestObject, hdrs), from = offsetof(RequestObject, head_len);
    if (ev->msg == NULL || ev->msg_len < fixed)
        Py_RETURN_NONE;
    RequestObject *r = PyObject_NewVar(RequestObject, &fr_RequestType, (Py_ssize_t)(ev->msg_len - fixed));
    if (r == NULL)
        return NULL;
    memcpy((char *)r + from, ev->msg + from, ev->msg_len - from);
    r->method_str = r->target_str = r->host_str = NULL;
    return (PyObject *)r;
}

static PyObject *event_tuple(const fe_event *ev)
{
    PyObject *d;
    switch (ev->type) {
    case FE_EV_FAILED:
        return Py_BuildValue("(sLs#OOL)", "failed", ev->id, ev->msg ? ev->msg : "", (Py_ssize_t)ev->msg_len,
                             ev->io ? Py_True : Py_False, ev->busy ? Py_True : Py_False, ev->execs);
    case FE_EV_EXEC_TTL:
        return Py_BuildValue("(sLs#)", "exec_ttl", ev->id, ev->msg ? ev->msg : "", (Py_ssize_t)ev->msg_len);
    case FE_EV_STOP_REQUESTED: return Py_BuildValue("(sL)", "stop_requested", ev->id);
    case FE_EV_MAX_JOBS: return Py_BuildValue("(sL)", "max_jobs", ev->id);
    case FE_EV_MAX_MEMORY: return Py_BuildValue("(sL)", "max_memory", ev->id);
    case FE_EV_STOP_SENT: return Py_BuildValue("(sL)", "stop_sent", ev->id);
    case FE_EV_DRAINED: return Py_BuildValue("(s)", "drained");
    case FE_EV_UPLOAD_START:
        return Py_BuildValue("(sLN)", "upload_start", ev->id,
                             ev->nfields ? PyUnicode_DecodeLatin1(ev->fields[0].s, (Py_ssize_t)ev->fields[0].n, NULL)
                                         : PyUnicode_FromString(""));
    case FE_EV_UPLOAD_DATA:
        return Py_BuildValue("(sLy#)", "upload_data", ev->id, ev->msg ? ev->msg : "", (Py_ssize_t)ev->msg_len);
    case FE_EV_UPLOAD_END: return Py_BuildValue("(sL)", "upload_end", ev->id);
    case FE_EV_UPLOAD_DROP: return Py_BuildValue("(sL)", "upload_drop", ev->id);
    case FE_EV_STATIC: return Py_BuildValue("(sLN)", "static", ev->id, event_request(ev));
    case FE_EV_DETACH:
        if (ev->nfields != 1 || ev->fields[0].kind != FE_F_BYTES)
            return Py_BuildValue("(si)", "unknown", ev->type); /* cannot happen (engine_loop.c) */
        return Py_BuildValue("(sLNy#)", "detach", ev->id, event_request(ev), ev->fields[0].s,
                             (Py_ssize_t)ev->fields[0].n);
    case FE_EV_LEAK_TREND:
        if ((d = fields_dict(ev)) == NULL)
            return NULL;
        return Py_BuildValue("(sLN)", "leak_trend", ev->id, d);
    case FE_EV_LOG:
        if ((d = fields_dict(ev)) == NULL)
            return NULL;
        return Py_BuildValue("(sisN)", "log", ev->level, ev->text ? ev->text : "", d);
    case FE_EV_ACCESS:
        if ((d = fields_dict(ev)) == NULL)
            return NULL;
        return Py_BuildValue("(sN)", "access", d);
    default: return Py_BuildValue("(si)", "unknown", ev->type);
    }
}

/* Take every queued event (clearing the eventfd first: an event pushed
 * after the take writes it again). */
static PyObject *take_events(fe_engine *e)
{
    uint64_t v;
    ssize_t r = read(e->event_fd, &v, sizeof(v));
    (void)r;
    pthread_mutex_lock(&e->mu);
    fe_event *evs = e->ev_head;
    e->ev_head = e->ev_tail = NULL;
    pthread_mutex_unlock(&e->mu);
    PyObject *list = PyList_New(0);
    while (evs) {
        fe_event *ev = evs;
        evs = ev->next;
        if (list != NULL) {
            PyObject *t = event_tuple(ev);
            if (t == NULL || PyList_Append(list, t) < 0)
                Py_CLEAR(list);
            else
                ev->fd_owned = 0; /* a detach event's fd is the caller's from here on */
            Py_XDECREF(t);
        }
        fe_event_free(ev); /* closes the fd of a detach event that did not reach the list */
    }
    return list;
}

static void engine_shutdown(EngineObject *self)
{
    fe_engine *e = self->e;
    if (e == NULL)
        return;
    if (e->thread_started) {
        fe_cmd cmd;
        memset(&cmd, 0, sizeof(cmd));
        cmd.op = FE_CMD_QUIT;
        run_cmd(self, &cmd);
        Py_BEGIN_ALLOW_THREADS
        pthread_join(e->thread, NULL);
        Py_END_ALLOW_THREADS
        e->thread_started = 0;
    }
}

static PyObject *Engine_close(EngineObject *self, PyObject *unused)
{
    (void)unused;
    if (self->e == NULL)
        return PyList_New(0);
    engine_shutdown(self);
    PyObject *events = take_events(self->e);
    engine_free(self->e);
    self->e = NULL;
    return events;
}

static void Engine_dealloc(EngineObject *self)
{
    if (self->e != NULL) {
        engine_shutdown(self);
        engine_free(self->e);
        self->e = NULL;
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* static_dir (str/bytes/PathLike, already realpath'd) -> a malloc'd C string. */
static int static_config(PyObject *dir, char **out, size_t *len)
{
    PyObject *b = NULL;
    if (!PyUnicode_FSConverter(dir, &b))
        return -1;
    Py_ssize_t n = PyBytes_GET_SIZE(b);
    if ((*out = malloc((size_t)n + 1)) == NULL) {
        Py_DECREF(b);
        PyErr_NoMemory();
        return -1;
    }
    memcpy(*out, PyBytes_AS_STRING(b), (size_t)n + 1);
    *len = (size_t)n;
    Py_DECREF(b);
    return 0;
}

/* A sequence of str extensions (".css") -> NUL-terminated UTF-8, one after the other. */
static int ext_list(PyObject *seq_obj, char **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    if (seq_obj == NULL || seq_obj == Py_None)
        return 0;
    PyObject *seq = PySequence_Fast(seq_obj, "extension lists must be sequences of str");
    if (seq == NULL)
        return -1;
    fr_buf b = {0};
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t len;
        const char *s = PyUnicode_AsUTF8AndSize(PySequence_Fast_GET_ITEM(seq, i), &len);
        if (s == NULL || fr_buf_append(&b, s, (size_t)len + 1) < 0) {
            Py_DECREF(seq);
            fr_buf_trim(&b, 0);
            return -1;
        }
    }
    Py_DECREF(seq);
    if ((*out = malloc(b.len ? b.len : 1)) == NULL) {
        fr_buf_trim(&b, 0);
        PyErr_NoMemory();
        return -1;
    }
    if (b.len)
        memcpy(*out, b.data, b.len);
    *count = (size_t)n;
    fr_buf_trim(&b, 0);
    return 0;
}

/* detach_paths: a sequence of non-empty bytes -> cfg.detach (one allocation:
 * the spans, then the bytes). At most FE_MAX_DETACH paths, each at most
 * 8 KiB (a request target longer than that is no WebSocket endpoint). */
#define FE_MAX_DETACH 256
static int detach_config(PyObject *obj, fe_config *c)
{
    if (obj == NULL || obj == Py_None)
        return 0;
    if (PyBytes_Check(obj) || PyByteArray_Check(obj) || PyUnicode_Check(obj)) {
        PyErr_SetString(PyExc_TypeError, "detach_paths must be a sequence of bytes, not one string");
        return -1;
    }
    PyObject *seq = PySequence_Fast(obj, "detach_paths must be a sequence of bytes");
    if (seq == NULL)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    size_t total = 0;
    if (n > FE_MAX_DETACH) {
        PyErr_Format(PyExc_ValueError, "detach_paths: at most %d paths", FE_MAX_DETACH);
        goto fail;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *p = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyBytes_Check(p)) {
            PyErr_Format(PyExc_TypeError, "detach_paths[%zd] must be bytes, not %.100s", i,
                         Py_TYPE(p)->tp_name);
            goto fail;
        }
        Py_ssize_t len = PyBytes_GET_SIZE(p);
        if (len == 0 || len > 8192) {
            PyErr_Format(PyExc_ValueError, "detach_paths[%zd] must be 1..8192 bytes long", i);
            goto fail;
        }
        total += (size_t)len;
    }
    if (n == 0) {
        Py_DECREF(seq);
        return 0;
    }
    c->detach = malloc((size_t)n * sizeof(*c->detach) + total);
    if (c->detach == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    unsigned char *bytes = (unsigned char *)(c->detach + n);
    c->detach_min = SIZE_MAX;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *p = PySequence_Fast_GET_ITEM(seq, i);
        size_t len = (size_t)PyBytes_GET_SIZE(p);
        memcpy(bytes, PyBytes_AS_STRING(p), len);
        c->detach[i].p = bytes;
        c->detach[i].n = len;
        bytes += len;
        if (len < c->detach_min)
            c->detach_min = len;
        if (len > c->detach_max)
            c->detach_max = len;
    }
    c->ndetach = (size_t)n;
    Py_DECREF(seq);
    return 0;
fail:
    Py_DECREF(seq);
    return -1;
}

static int Engine_init(EngineObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"listen_fd",       "max_header_size",  "max_body",
                             "max_request_size", "read_timeout",    "idle_timeout",
                             "allocate_timeout", "exec_ttl",        "linger",
                             "doomed_wait",      "max_queue_size",  "internal_error_code",
                             "debug",            "raw_body",        "log_level",
                             "access_log",       "max_stop_retries", "pipeline_limit",
                             "max_worker_memory", "proto", "log_fds", "log_encoding",
                             "static_dir", "static_forbid", "static_allow", "metrics",
                             "leak_window", "leak_min_climb", "leak_horizon", "detach_paths", NULL};
    int listen_fd = -1;
    Py_ssize_t max_header = 64 * 1024;
    unsigned long long max_body = 1000ull << 20, max_mem = 0;
    long long max_mb = 1000, max_queue = 0;
    double read_t = 60, idle_t = 75, alloc_t = 60, exec_ttl = 60, linger = 2, doomed = 1;
    int code = 500, debug = 0, raw_body = 0, log_level = 20, access_log = 0, retries = 8, proto = 0;
    int metrics = 0;
    long long leak_window = 0, leak_horizon = 0;
    unsigned long long leak_min_climb = 0;
    PyObject *log_fds = NULL, *static_dir = NULL, *static_forbid = NULL, *static_allow = NULL;
    PyObject *detach_paths = NULL;
    const char *log_encoding = "console";
    Py_ssize_t pipeline = 1 << 20;
    if (self->e != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Engine.__init__ called twice");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|i$nKLddddddLippiiinKpOsOOOpLKLO:Engine", kwlist,
                                     &listen_fd, &max_header, &max_body, &max_mb, &read_t, &idle_t,
                                     &alloc_t, &exec_ttl, &linger, &doomed, &max_queue, &code,
                                     &debug, &raw_body, &log_level, &access_log, &retries,
                                     &pipeline, &max_mem, &proto, &log_fds, &log_encoding,
                                     &static_dir, &static_forbid, &static_allow, &metrics,
                                     &leak_window, &leak_min_climb, &leak_horizon, &detach_paths))
        return -1;
    if (leak_window < 0 || leak_window > 1000000 || leak_horizon < 0) {
        PyErr_SetString(PyExc_ValueError, "leak_window must be in 0..1000000, leak_horizon >= 0");
        return -1;
    }
    int enc = strcmp(log_encoding, "json") == 0  ? FE_LOG_JSON
              : strcmp(log_encoding, "raw") == 0 ? FE_LOG_RAW
                                                 : FE_LOG_CONSOLE;
    int fds[FE_MAX_LOG_FDS], nfds = 0;
    if (log_fds != NULL && log_fds != Py_None) {
        PyObject *seq = PySequence_Fast(log_fds, "log_fds must be a sequence of fds");
        if (seq == NULL)
            return -1;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        for (Py_ssize_t i = 0; i < n; i++) {
            int fd = PyObject_AsFileDescriptor(PySequence_Fast_GET_ITEM(seq, i));
            if (fd < 0 || nfds == FE_MAX_LOG_FDS) {
                Py_DECREF(seq);
                if (fd >= 0)
                    PyErr_Format(PyExc_ValueError, "at most %d log_fds", FE_MAX_LOG_FDS);
                return -1;
            }
            fds[nfds++] = fd;
        }
        Py_DECREF(seq);
    }
    if (max_header < 0 || pipeline < 0) {
        PyErr_SetString(PyExc_ValueError, "limits must be >= 0");
        return -1;
    }
    if ((unsigned long long)max_header > 0xFFFFFFFFull)
        max_header = (Py_ssize_t)0xFFFFFFFFll;
    fe_engine *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    e->epfd = e->cmd_fd = e->event_fd = e->listen_fd = -1;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    if ((e->rscratch = malloc(FE_READ_SCRATCH)) == NULL) {
        engine_free(e);
        PyErr_NoMemory();
        return -1;
    }
    fe_config *c = &e->cfg;
    c->max_header_size = (size_t)max_header;
    c->max_body = max_body;
    c->max_request_size = max_mb;
    c->read_timeout = read_t;
    c->idle_timeout = idle_t;
    c->allocate_timeout = alloc_t;
    c->exec_ttl = exec_ttl;
    c->linger = linger;
    c->doomed_wait = doomed;
    c->max_queue_size = max_queue;
    c->internal_error_code = code;
    c->debug = debug;
    c->raw_body = raw_body;
    c->log_level = log_level;
    c->access_log = access_log;
    c->max_stop_retries = retries;
    c->pipeline_limit = (size_t)pipeline;
    c->max_worker_memory = max_mem;
    c->leak_window = leak_window;
    c->leak_min_climb = leak_min_climb;
    c->leak_horizon = leak_horizon;
    c->proto = proto;
    c->metrics = metrics;
    if (metrics && (e->metrics = calloc(1, sizeof(*e->metrics))) == NULL) {
        engine_free(e);
        PyErr_NoMemory();
        return -1;
    }
    c->log_encoding = enc;
    c->nlog_fds = nfds;
    memcpy(c->log_fds, fds, sizeof(int) * (size_t)nfds);
    if (static_dir != NULL && static_dir != Py_None &&
        (static_config(static_dir, &c->static_root, &c->static_root_len) < 0 ||
         ext_list(static_forbid, &c->static_forbid, &c->static_nforbid) < 0 ||
         ext_list(static_allow, &c->static_allow, &c->static_nallow) < 0)) {
        engine_free(e);
        return -1;
    }
    if (detach_config(detach_paths, c) < 0) {
        engine_free(e);
        return -1;
    }
    e->date_time = (time_t)-1;
    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    e->cmd_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    e->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (e->epfd < 0 || e->cmd_fd < 0 || e->event_fd < 0)
        goto os_error;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 4 /* TAG_CMD */};
    if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->cmd_fd, &ev) < 0)
        goto os_error;
    int rc = pthread_create(&e->thread, NULL, fe_thread_main, e);
    if (rc != 0) {
        errno = rc;
        goto os_error;
    }
    e->thread_started = 1;
    self->e = e;
    if (listen_fd >= 0) {
        fe_cmd cmd;
        memset(&cmd, 0, sizeof(cmd));
        cmd.op = FE_CMD_LISTEN;
        cmd.rfd = listen_fd;
        if (run_cmd(self, &cmd) < 0)
            return -1;
        if (cmd.result < 0) {
            errno = (int)-cmd.result;
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
    }
    return 0;
os_error:
    PyErr_SetFromErrno(PyExc_OSError);
    engine_free(e);
    return -1;
}

static PyObject *Engine_listen(EngineObject *self, PyObject *arg)
{
    int fd = PyObject_AsFileDescriptor(arg);
    if (fd < 0)
        return NULL;
    fe_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.op = FE_CMD_LISTEN;
    cmd.rfd = fd;
    if (run_cmd(self, &cmd) < 0)
        return NULL;
    if (cmd.result < 0) {
        errno = (int)-cmd.result;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
}

static PyObject *Engine_add_worker(EngineObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"id", "rfd", "wfd", "max_jobs", NULL};
    long long id, max_jobs = 0;
    int rfd, wfd;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Lii|L:add_worker", kwlist, &id, &rfd, &wfd, &max_jobs))
        return NULL;
    fe_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.op = FE_CMD_ADD_WORKER;
    cmd.id = id;
    cmd.rfd = rfd;
    cmd.wfd = wfd;
    cmd.max_jobs = max_jobs < 0 ? 0 : max_jobs;
    if (run_cmd(self, &cmd) < 0)
        return NULL;
    if (cmd.result < 0) {
        errno = (int)-cmd.result;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
}

/* The methods whose one argument is an integer for cmd.id: runs the command
 * and leaves its result in *result. -1 with an exception set on failure. */
static int run_id_cmd(EngineObject *self, PyObject *arg, int op, long long min, const char *range_error,
                      long long *result)
{
    long long id = PyLong_AsLongLong(arg);
    if (id == -1 && PyErr_Occurred())
        return -1;
    if (id < min) {
        PyErr_SetString(PyExc_ValueError, range_error);
        return -1;
    }
    fe_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.op = op;
    cmd.id = id;
    if (run_cmd(self, &cmd) < 0)
        return -1;
    *result = cmd.result;
    return 0;
}

static PyObject *Engine_stop_worker(EngineObject *self, PyObject *arg)
{
    long long result;
    if (run_id_cmd(self, arg, FE_CMD_STOP_WORKER, LLONG_MIN, "", &result) < 0)
        return NULL;
    return PyLong_FromLongLong(result);
}

static PyObject *Engine_set_active_limit(EngineObject *self, PyObject *arg)
{
    long long result;
    if (run_id_cmd(self, arg, FE_CMD_SET_ACTIVE_LIMIT, 0, "active limit must be >= 0 (0: no limit)", &result) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* A flag the engine thread reads per form request (parses_form): a plain
 * atomic store, no command round trip. */
static PyObject *Engine_set_raw_forms(EngineObject *self, PyObject *arg)
{
    int on = PyObject_IsTrue(arg);
    if (on < 0)
        return NULL;
    if (self->e != NULL)
        __atomic_store_n(&self->e->cfg.raw_forms, on, __ATOMIC_RELAXED);
    Py_RETURN_NONE;
}

static PyObject *Engine_resume_worker(EngineObject *self, PyObject *arg)
{
    long long result;
    if (run_id_cmd(self, arg, FE_CMD_RESUME_WORKER, LLONG_MIN, "", &result) < 0)
        return NULL;
    return PyBool_FromLong(result > 0);
}

static PyObject *Engine_remove_worker(EngineObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"id", "reason", NULL};
    long long id;
    const char *reason = "";
    Py_ssize_t reason_len = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "L|s#:remove_worker", kwlist, &id, &reason, &reason_len))
        return NULL;
    fe_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.op = FE_CMD_REMOVE_WORKER;
    cmd.id = id;
    cmd.text = reason;
    cmd.text_len = (size_t)reason_len;
    if (run_cmd(self, &cmd) < 0)
        return NULL;
    return PyBool_FromLong(cmd.result > 0);
}

/* upload_go(token) / upload_ack(token, n) / upload_done(token, fields, uploads)
 * / upload_fail(token, status, reason): Python's answers for a multipart body. */
static PyObject *upload_cmd(EngineObject *self, int op, long long token, long long n, int status,
                            const char *text, Py_ssize_t text_len, const char *text2, Py_ssize_t text2_len)
{
    fe_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.op = op;
    cmd.id = token;
    cmd.max_jobs = n;
    cmd.status = status;
    cmd.text = text;
    cmd.text_len = (size_t)text_len;
    cmd.text2 = text2;
    cmd.text2_len = (size_t)text2_len;
    if (run_cmd(self, &cmd) < 0)
        return NULL;
    return PyBool_FromLong(cmd.result > 0);
}

static PyObject *Engine_upload_go(EngineObject *self, PyObject *arg)
{
    long long token = PyLong_AsLongLong(arg);
    if (token == -1 && PyErr_Occurred())
        return NULL;
    return upload_cmd(self, FE_CMD_UPLOAD_GO, token, 0, 0, NULL, 0, NULL, 0);
}

static PyObject *Engine_upload_ack(EngineObject *self, PyObject *args)
{
    long long token, n;
    if (!PyArg_ParseTuple(args, "LL:upload_ack", &token, &n))
        return NULL;
    return upload_cmd(self, FE_CMD_UPLOAD_ACK, token, n < 0 ? 0 : n, 0, NULL, 0, NULL, 0);
}

static PyObject *Engine_upload_done(EngineObject *self, PyObject *args)
{
    long long token;
    const char *fields, *files = NULL;
    Py_ssize_t flen, ulen = 0;
    if (!PyArg_ParseTuple(args, "Ly#z#:upload_done", &token, &fields, &flen, &files, &ulen))
        return NULL;
    return upload_cmd(self, FE_CMD_UPLOAD_DONE, token, 0, 0, fields, flen, files, ulen);
}

static PyObject *Engine_upload_release(EngineObject *self, PyObject *arg)
{
    long long token = PyLong_AsLongLong(arg);
    if (token == -1 && PyErr_Occurred())
        return NULL;
    return upload_cmd(self, FE_CMD_UPLOAD_RELEASE, token, 0, 0, NULL, 0, NULL, 0);
}

static PyObject *Engine_upload_fail(EngineObject *self, PyObject *args)
{
    long long token;
    int status;
    const char *reason;
    Py_ssize_t rlen;
    if (!PyArg_ParseTuple(args, "Lis#:upload_fail", &token, &status, &reason, &rlen))
        return NULL;
    return upload_cmd(self, FE_CMD_UPLOAD_FAIL, token, 0, status, reason, rlen, NULL, 0);
}

/* static_serve / static_miss / static_abort: Python's answer to a "static"
 * event. Posted without waiting for the engine thread (a hit would otherwise
 * cost two thread switches while Python holds up its loop): the command
 * carries copies of the texts and a dup of the fd, which the engine frees
 * and closes. Commands stay in order with the waited-for ones. */
static PyObject *static_cmd(EngineObject *self, long long token, int status, const char *head,
                            Py_ssize_t head_len, const char *body, Py_ssize_t body_len, int fd,
                            long long offset, long long count)
{
    fe_engine *e = self->e;
    if (e == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the engine is closed");
        return NULL;
    }
    fe_cmd *cmd = malloc(sizeof(*cmd) + (size_t)head_len + (size_t)body_len);
    if (cmd == NULL)
        return PyErr_NoMemory();
    memset(cmd, 0, sizeof(*cmd));
    cmd->rfd = -1;
    if (fd >= 0 && count > 0 && (cmd->rfd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0) {
        free(cmd);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    char *p = (char *)(cmd + 1);
    if (head_len)
        memcpy(p, head, (size_t)head_len);
    if (body_len)
        memcpy(p + head_len, body, (size_t)body_len);
    cmd->op = FE_CMD_STATIC;
    cmd->owned = 1;
    cmd->id = token;
    cmd->status = status;
    cmd->text = p;
    cmd->text_len = (size_t)head_len;
    cmd->text2 = body_len ? p + head_len : NULL;
    cmd->text2_len = (size_t)body_len;
    cmd->offset = offset;
    cmd->count = count;
    post_cmd(e, cmd);
    Py_RETURN_NONE;
}

static PyObject *Engine_static_serve(EngineObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"token", "status", "head", "body", "fd", "offset", "count", NULL};
    long long token, offset = 0, count = 0;
    int status, fd = -1;
    const char *head, *body = NULL;
    Py_ssize_t hlen, blen = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Liy#|y#iLL:static_serve", kwlist, &token, &status,
                                     &head, &hlen, &body, &blen, &fd, &offset, &count))
        return NULL;
    if (status < 100 || status > 599 || offset < 0 || count < 0) {
        PyErr_SetString(PyExc_ValueError, "static_serve: bad status, offset or count");
        return NULL;
    }
    return static_cmd(self, token, status, head, hlen, body, blen, fd, offset, count);
}

static PyObject *Engine_static_miss(EngineObject *self, PyObject *arg)
{
    long long token = PyLong_AsLongLong(arg);
    if (token == -1 && PyErr_Occurred())
        return NULL;
    return static_cmd(self, token, 0, NULL, 0, NULL, 0, -1, 0, 0);
}

static PyObject *Engine_static_abort(EngineObject *self, PyObject *arg)
{
    long long token = PyLong_AsLongLong(arg);
    if (token == -1 && PyErr_Occurred())
        return NULL;
    return static_cmd(self, token, -1, NULL, 0, NULL, 0, -1, 0, 0);
}

static PyObject *simple_cmd(EngineObject *self, int op)
{
    fe_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.op = op;
    if (run_cmd(self, &cmd) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Engine_stop_accepting(EngineObject *self, PyObject *unused)
{
    (void)unused;
    return simple_cmd(self, FE_CMD_STOP_ACCEPTING);
}

static PyObject *Engine_abort_connections(EngineObject *self, PyObject *unused)
{
    (void)unused;
    return simple_cmd(self, FE_CMD_ABORT_CONNECTIONS);
}

static const char *const state_names[] = {"ready", "working", "retired", "stopping"};

static PyObject *Engine_stats(EngineObject *self, PyObject *unused)
{
    (void)unused;
    fe_stats st;
    memset(&st, 0, sizeof(st));
    fe_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.op = FE_CMD_STATS;
    cmd.stats = &st;
    if (run_cmd(self, &cmd) < 0)
        return NULL;
    PyObject *workers = PyDict_New();
    for (size_t i = 0; workers != NULL && i < st.nworkers; i++) {
        const fe_worker_stat *w = &st.workers[i];
        int s = w->state >= 0 && w->state <= FE_W_STOPPING ? w->state : 0;
        PyObject *key = PyLong_FromLongLong(w->id);
        PyObject *val = Py_BuildValue("{sssLsdsd}", "state", state_names[s], "execs", w->execs,
                                      "last_used", w->last_used, "exec_started", w->exec_started);
        if (key == NULL || val == NULL || PyDict_SetItem(workers, key, val) < 0)
            Py_CLEAR(workers);
        Py_XDECREF(key);
        Py_XDECREF(val);
    }
    free(st.workers);
    if (workers == NULL)
        return NULL;
    return Py_BuildValue("{sLsLsLsLsLsLsLsLsLsLsNsn}", "connections", st.connections, "in_flight",
                         st.in_flight, "queued", st.queued, "accepted", st.accepted, "requests",
                         st.requests, "detached", st.detached, "conn_allocs", st.conn_allocs,
                         "conn_buffer_bytes", st.conn_buffer_bytes, "pool_bytes", st.pool_bytes,
                         "trims", st.trims, "workers", workers,
                         "conn_struct_bytes", (Py_ssize_t)sizeof(fe_conn));
}

/* metrics() -> None (not counting) or {"requests": {status: (count, sum, [buckets])},
 * "bounds": [...], "no_free_workers": n}: the http_metrics counters, copied by the
 * engine thread at this moment (a scrape), nothing computed per request here. */
static PyObject *Engine_metrics(EngineObject *self, PyObject *unused)
{
    (void)unused;
    fe_metrics *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return PyErr_NoMemory();
    fe_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.op = FE_CMD_METRICS;
    cmd.metrics = m;
    if (run_cmd(self, &cmd) < 0) {
        free(m);
        return NULL;
    }
    if (!cmd.result) {
        free(m);
        Py_RETURN_NONE;
    }
    PyObject *requests = PyDict_New(), *bounds = PyList_New(FE_METRIC_BOUNDS);
    for (int b = 0; bounds != NULL && b < FE_METRIC_BOUNDS; b++) {
        PyObject *v = PyFloat_FromDouble(fe_metric_bounds[b]);
        if (v == NULL)
            Py_CLEAR(bounds);
        else
            PyList_SET_ITEM(bounds, b, v);
    }
    for (int i = 0; requests != NULL && bounds != NULL && i < FE_METRIC_STATUSES; i++) {
        const fe_status_metric *st = &m->by_status[i];
        if (st->count == 0)
            continue;
        PyObject *buckets = PyList_New(FE_METRIC_BOUNDS + 1);
        for (int b = 0; buckets != NULL && b <= FE_METRIC_BOUNDS; b++) {
            PyObject *v = PyLong_FromUnsignedLongLong(st->buckets[b]);
            if (v == NULL)
                Py_CLEAR(buckets);
            else
                PyList_SET_ITEM(buckets, b, v);
        }
        PyObject *key = PyLong_FromLong(i + FE_METRIC_STATUS_MIN);
        PyObject *val = buckets ? Py_BuildValue("{sKsdsN}", "count", st->count, "sum", st->sum, "buckets", buckets)
                                : NULL;
        if (key == NULL || val == NULL || PyDict_SetItem(requests, key, val) < 0)
            Py_CLEAR(requests);
        Py_XDECREF(key);
        Py_XDECREF(val);
    }
    unsigned long long no_free = m->no_free_workers;
    free(m);
    if (requests == NULL || bounds == NULL) {
        Py_XDECREF(requests);
        Py_XDECREF(bounds);
        return NULL;
    }
    return Py_BuildValue("{sNsNsK}", "requests", requests, "bounds", bounds, "no_free_workers", no_free);
}

static PyObject *Engine_poll_events(EngineObject *self, PyObject *unused)
{
    (void)unused;
    if (self->e == NULL)
        return PyList_New(0);
    return take_events(self->e);
}

static PyObject *Engine_get_event_fd(EngineObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromLong(self->e ? self->e->event_fd : -1);
}

static PyObject *Engine_get_closed(EngineObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->e == NULL);
}

static PyMethodDef Engine_methods[] = {
    {"listen", (PyCFunction)Engine_listen, METH_O,
     "listen(fd)\n\nAccept connections on a listening socket (it stays Python's)."},
    {"add_worker", (PyCFunction)(void (*)(void))Engine_add_worker, METH_VARARGS | METH_KEYWORDS,
     "add_worker(id, rfd, wfd, max_jobs=0)\n\nServe requests with a worker that passed the PID "
     "handshake. The engine works on dups of the fds; the originals stay the caller's."},
    {"stop_worker", (PyCFunction)Engine_stop_worker, METH_O,
     "stop_worker(id) -> int\n\nSend the CONTROL stop frame: 0 sent now, 1 after the request it "
     "runs (a stop_sent event follows), -1 unknown worker."},
    {"set_raw_forms", (PyCFunction)Engine_set_raw_forms, METH_O,
     "set_raw_forms(on) -> None\n\nForm bodies as PHP's SAPIs get them: urlencoded ones as sent, "
     "multipart ones parsed only for POST (the workers asked for it in their handshake)."},
    {"set_active_limit", (PyCFunction)Engine_set_active_limit, METH_O,
     "set_active_limit(n) -> None\n\nAt most n workers run a request at once (0: no limit); "
     "a higher limit dispatches queued requests to free workers at once."},
    {"resume_worker", (PyCFunction)Engine_resume_worker, METH_O,
     "resume_worker(id) -> bool\n\nPut a worker held after a max_memory event back to work."},
    {"remove_worker", (PyCFunction)(void (*)(void))Engine_remove_worker, METH_VARARGS | METH_KEYWORDS,
     "remove_worker(id, reason='') -> bool\n\nThe process is gone: its request (if any) is "
     "answered 502 with reason; the engine forgets it. Synchronous."},
    {"stop_accepting", (PyCFunction)Engine_stop_accepting, METH_NOARGS,
     "stop_accepting()\n\nStop accepting, close idle connections, answer the rest with "
     "Connection: close; a drained event follows when nothing is in flight."},
    {"abort_connections", (PyCFunction)Engine_abort_connections, METH_NOARGS,
     "abort_connections()\n\nClose every client connection now."},
    {"stats", (PyCFunction)Engine_stats, METH_NOARGS, "stats() -> dict"},
    {"metrics", (PyCFunction)Engine_metrics, METH_NOARGS, "metrics() -> dict | None (http_metrics counters)"},
    {"upload_go", (PyCFunction)Engine_upload_go, METH_O,
     "upload_go(token)\n\nThe multipart body of an upload_start event can flow (boundary ok)."},
    {"upload_ack", (PyCFunction)Engine_upload_ack, METH_VARARGS,
     "upload_ack(token, n)\n\nn bytes of upload_data were consumed: more may come."},
    {"upload_done", (PyCFunction)Engine_upload_done, METH_VARARGS,
     "upload_done(token, fields_json, uploads_json_or_None)\n\nThe parsed body: the engine "
     "sends the request (parsed=true) with these trees."},
    {"upload_release", (PyCFunction)Engine_upload_release, METH_O,
     "upload_release(token)\n\nThe temp files of an upload_drop are gone: its answer may go out."},
    {"upload_fail", (PyCFunction)Engine_upload_fail, METH_VARARGS,
     "upload_fail(token, status, reason)\n\nThe body is unusable: answer status and close."},
    {"static_serve", (PyCFunction)(void (*)(void))Engine_static_serve, METH_VARARGS | METH_KEYWORDS,
     "static_serve(token, status, head, body=b'', fd=-1, offset=0, count=0)\n\nAnswer a "
     "static event: head is the status line and header lines without Connection and the final "
     "CRLF (the engine adds both), body an in-memory body, then count bytes of file descriptor "
     "fd from offset (the engine sends a dup; the caller keeps and closes fd). Queued "
     "without waiting; a request gone meanwhile makes it a no-op."},
    {"static_miss", (PyCFunction)Engine_static_miss, METH_O,
     "static_miss(token)\n\nNo file for this static event after all: PHP answers (queued)."},
    {"static_abort", (PyCFunction)Engine_static_abort, METH_O,
     "static_abort(token)\n\nThe static event's request cannot be answered: close the "
     "connection (queued)."},
    {"poll_events", (PyCFunction)Engine_poll_events, METH_NOARGS,
     "poll_events() -> list[tuple]\n\nEvents for the control plane (see engine_pool.py)."},
    {"close", (PyCFunction)Engine_close, METH_NOARGS,
     "close() -> list[tuple]\n\nStop the engine thread and free everything; returns the last "
     "events."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Engine_getset[] = {
    {"event_fd", (getter)Engine_get_event_fd, NULL, "eventfd readable when events are waiting",
     NULL},
    {"closed", (getter)Engine_get_closed, NULL, "True after close()", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject EngineType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "fastrr._core.Engine",
    .tp_basicsize = sizeof(EngineObject),
    .tp_dealloc = (destructor)Engine_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Engine(listen_fd=-1, **limits)\n\nThe HTTP/1.1 data path in a native thread.",
    .tp_methods = Engine_methods,
    .tp_getset = Engine_getset,
    .tp_init = (initproc)Engine_init,
    .tp_new = PyType_GenericNew,
};

/* ------------------------------------------------ forms, for the tests */

static fe_form_scratch py_form;

PyObject *fr_py_form_json(PyObject *m, PyObject *arg)
{
    (void)m;
    fr_view v;
    if (fr_view_get(arg, &v, "body") < 0)
        return NULL;
    fr_buf out = {0}, err = {0};
    int rc = fe_form_json(&py_form, v.buf, (size_t)v.len, &out, &err);
    fr_view_release(&v);
    PyObject *res = NULL;
    if (rc == 0)
        res = PyBytes_FromStringAndSize(out.data, (Py_ssize_t)out.len);
    else if (rc == 1) {
        PyObject *msg = PyUnicode_DecodeUTF8(err.data, (Py_ssize_t)err.len, "replace");
        if (msg != NULL) {
            PyErr_SetObject(PyExc_ValueError, msg);
            Py_DECREF(msg);
        }
    }
    else if (!PyErr_Occurred())
        PyErr_NoMemory();
    fr_buf_trim(&out, 0);
    fr_buf_trim(&err, 0);
    fe_form_scratch_free(&py_form);
    return res;
}

int fr_engine_init(PyObject *module)
{
    if (PyType_Ready(&EngineType) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "Engine", (PyObject *)&EngineType) < 0)
        return -1;
    return 0;
}
