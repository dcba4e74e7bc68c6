/* The engine thread: one epoll loop over the listening socket, the client
 * connections, the worker relays and the command eventfd. No Python object
 * is touched here and the GIL is never taken.
 *
 * It does what fastrr/http/connection.py + server.py + the scheduling half
 * of fastrr/pool/pool.py do, with the same answers and texts (those files
 * are the spec; the comments name the Python function each part mirrors).
 *
 * Memory rules:
 *  - a connection or worker that dies during a loop turn is put on a dead
 *    list and freed at the end of the turn, so a later epoll event of the
 *    same batch never sees freed memory (it checks `fd_closed` / `dead`);
 *  - a connection lives until its socket is closed AND no worker job refers
 *    to it (a request keeps running on its worker after the client left);
 *  - worker fds are our own dups: Python closing its copies can never
 *    make us write into an fd number that was reused;
 *  - an idle connection owns no buffer: its reads borrow e->rscratch for
 *    one readable event (conn_readable), its request buffers come from
 *    bounded pools for one request (engine_mem.c), the rest goes with the
 *    connection scan (fe_conn_release_buffers); see csrc/README.md,
 *    "Connection memory".
 */
#include "engine.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define TAG_CONN 0u
#define TAG_WREAD 1u
#define TAG_WWRITE 2u
#define TAG_LISTEN 3u
#define TAG_CMD 4u
#define TAG_MASK 7u

#define TICK 0.1
#define CONN_CHECK 0.5
#define MAX_FRAME (1ull << 31) /* pool/worker.py MAX_FRAME */
#define HIGH_WATER (64 * 1024) /* asyncio's default write buffer limits */
#define LOW_WATER (16 * 1024)
#define READ_CHUNK (16 * 1024)
#define WORKER_READ (256 * 1024)
#define BUF_KEEP (256 * 1024)
#define MAX_EVENTS 256
#define UPLOAD_WINDOW (1u << 20) /* multipart bytes in Python's hands at most */
#define HOLD_MAX 1.0             /* an upload's answer waits this long for its cleanup */
#define SENDFILE_CHUNK (4 << 20) /* files.py SENDFILE_CHUNK */
#define SENDFILE_ROUNDS 16       /* sendfile calls per writable event, then the others' turn */

static const char CONTINUE[] = "HTTP/1.1 100 Continue\r\n\r\n";
static const char LAST_CHUNK[] = "0\r\n\r\n";
static const char STOP_PAYLOAD[] = "{\"stop\":true}";

static unsigned char control_stop[12 + 13]; /* CONTROL|JSON {"stop":true} */
static unsigned char pong_frame[12];
static unsigned char stream_stop_frame[12];
static pthread_once_t frames_once = PTHREAD_ONCE_INIT;

static void init_frames(void)
{
    fr_write_frame_header(control_stop, 0x01 | 0x08, 13, NULL, 0, 0);
    memcpy(control_stop + 12, STOP_PAYLOAD, 13);
    fr_write_frame_header(pong_frame, 0, 0, NULL, 0, 0x08);
    fr_write_frame_header(stream_stop_frame, 0, 0, NULL, 0, 0x02);
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double fe_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *date_now(fe_engine *e)
{
    time_t t = time(NULL);
    if (t != e->date_time) {
        fr_format_http_date(t, e->date);
        e->date_time = t;
    }
    return e->date;
}

static uint64_t tag(const void *p, unsigned t) { return (uint64_t)(uintptr_t)p | t; }

/* ================================================================ events */

fe_event *fe_event_new(int type)
{
    fe_event *ev = calloc(1, sizeof(*ev));
    if (ev != NULL)
        ev->type = type;
    return ev;
}

void fe_event_free(fe_event *ev)
{
    if (ev->fd_owned) /* a detach event Python never took: nobody else will close it */
        close((int)ev->id);
    for (int i = 0; i < ev->nfields; i++)
        free(ev->fields[i].s);
    free(ev->msg);
    free(ev);
}

static fe_field *ev_field(fe_event *ev, const char *key, int kind)
{
    if (ev == NULL || ev->nfields >= FE_MAX_FIELDS)
        return NULL;
    fe_field *f = &ev->fields[ev->nfields++];
    memset(f, 0, sizeof(*f));
    f->key = key;
    f->kind = kind;
    return f;
}

void fe_ev_int(fe_event *ev, const char *key, long long v)
{
    fe_field *f = ev_field(ev, key, FE_F_INT);
    if (f)
        f->i = v;
}

void fe_ev_float(fe_event *ev, const char *key, double v)
{
    fe_field *f = ev_field(ev, key, FE_F_FLOAT);
    if (f)
        f->d = v;
}

void fe_ev_none(fe_event *ev, const char *key) { ev_field(ev, key, FE_F_NONE); }

void fe_ev_str(fe_event *ev, const char *key, const void *s, size_t n, int kind)
{
    fe_field *f = ev_field(ev, key, kind);
    if (f == NULL)
        return;
    f->s = malloc(n ? n : 1);
    if (f->s == NULL) {
        f->kind = FE_F_NONE;
        return;
    }
    if (n)
        memcpy(f->s, s, n);
    f->n = n;
}

void fe_push_event(fe_engine *e, fe_event *ev)
{
    if (ev == NULL)
        return;
    pthread_mutex_lock(&e->mu);
    int was_empty = e->ev_head == NULL;
    if (e->ev_tail)
        e->ev_tail->next = ev;
    else
        e->ev_head = ev;
    e->ev_tail = ev;
    pthread_mutex_unlock(&e->mu);
    if (was_empty) {
        uint64_t one = 1;
        ssize_t r = write(e->event_fd, &one, sizeof(one));
        (void)r; /* the counter cannot overflow: Python reads it */
    }
}

static fe_event *worker_event(int type, long long id, const char *msg, size_t n)
{
    fe_event *ev = fe_event_new(type);
    if (ev == NULL)
        return NULL;
    ev->id = id;
    ev->io = type == FE_EV_FAILED && msg != NULL && (strncmp(msg, "relay closed", 12) == 0 ||
                                                    strncmp(msg, "read failed", 11) == 0 ||
                                                    strncmp(msg, "write failed", 12) == 0);
    if (msg != NULL) {
        ev->msg = malloc(n ? n : 1);
        if (ev->msg != NULL) {
            memcpy(ev->msg, msg, n);
            ev->msg_len = n;
        }
    }
    return ev;
}

static void push_worker_event(fe_engine *e, int type, long long id, const char *msg, size_t n)
{
    fe_event *ev = worker_event(type, id, msg, n);
    if (ev != NULL)
        fe_push_event(e, ev);
}

/* A log line for the http logger, or NULL when its level is off. */
static fe_event *log_event(fe_engine *e, int level, const char *msg)
{
    if (level < e->cfg.log_level)
        return NULL;
    fe_event *ev = fe_event_new(FE_EV_LOG);
    if (ev != NULL) {
        ev->level = level;
        ev->text = msg;
    }
    return ev;
}

/* ============================================================ forward decls */

static void conn_process(fe_engine *e, fe_conn *c);
static void conn_close(fe_engine *e, fe_conn *c);
static void conn_abort(fe_engine *e, fe_conn *c);
static void conn_worker_lost(fe_engine *e, fe_conn *c, long long pid, int status, const char *reason,
                             size_t reason_len);
static void pool_submit(fe_engine *e, fe_conn *c);
static void worker_lost(fe_engine *e, fe_worker *w, const char *reason, size_t n);
static void worker_flush(fe_engine *e, fe_worker *w);
static void check_drained(fe_engine *e);
static void static_gone(fe_engine *e, fe_conn *c);
static void static_pump(fe_engine *e, fe_conn *c);

/* ================================================================ buffers */

/* Room for `want` more bytes at rbuf + rlen (compacting first). */
static int rbuf_reserve(unsigned char **buf, size_t *pos, size_t *len, size_t *cap, size_t want)
{
    if (*pos == *len)
        *pos = *len = 0;
    if (*cap - *len >= want)
        return 0;
    if (*pos > 0) {
        memmove(*buf, *buf + *pos, *len - *pos);
        *len -= *pos;
        *pos = 0;
        if (*cap - *len >= want)
            return 0;
    }
    size_t ncap = *cap ? *cap * 2 : 4096;
    while (ncap - *len < want)
        ncap *= 2;
    unsigned char *p = realloc(*buf, ncap);
    if (p == NULL)
        return -1;
    *buf = p;
    *cap = ncap;
    return 0;
}

/* A connection's input buffer. An idle connection has none (rbuf NULL):
 * conn_readable lends it the engine's read scratch (rbuf_shared) for its
 * reads, and takes it back at the end of the event, copying what is left
 * unconsumed (a partial head, a body still arriving, pipelined requests)
 * into a buffer of the connection's own. A keep-alive request that arrives
 * whole is parsed and encoded straight from the scratch: no per-connection
 * read buffer, no allocation. */

/* The scratch goes back: the unconsumed bytes move to an own buffer with
 * room for `extra` more. -1: out of memory (the bytes are lost). */
static int conn_unshare(fe_conn *c, size_t extra)
{
    if (!c->rbuf_shared)
        return 0;
    size_t have = c->rlen - c->rpos;
    unsigned char *src = c->rbuf + c->rpos;
    c->rbuf_shared = 0;
    c->rbuf = NULL;
    c->rpos = c->rlen = c->rcap = 0;
    if (have == 0 && extra == 0)
        return 0;
    unsigned char *p = malloc(have + extra);
    if (p == NULL)
        return -1;
    memcpy(p, src, have);
    c->rbuf = p;
    c->rlen = have;
    c->rcap = have + extra;
    return 0;
}

/* rbuf_reserve for a connection's input: the scratch serves while it has the room. */
static int conn_rbuf_reserve(fe_conn *c, size_t want)
{
    if (c->rbuf_shared) {
        if (c->rcap - c->rlen >= want)
            return 0;
        if (conn_unshare(c, want) < 0)
            return -1;
    }
    return rbuf_reserve(&c->rbuf, &c->rpos, &c->rlen, &c->rcap, want);
}

/* The unconsumed input (never NULL + 0, which UBSan rejects). */
static const unsigned char *conn_in(const fe_conn *c)
{
    static const unsigned char none[1];
    return c->rbuf != NULL ? c->rbuf + c->rpos : none;
}

/* Drop a big, now empty buffer back to nothing. */
static void rbuf_shrink(unsigned char **buf, size_t *pos, size_t *len, size_t *cap)
{
    if (*pos == *len && *cap > BUF_KEEP) {
        free(*buf);
        *buf = NULL;
        *pos = *len = *cap = 0;
    }
}

/* ============================================================ connections */

static void conn_set_mask(fe_engine *e, fe_conn *c)
{
    if (c->fd_closed)
        return;
    uint32_t m = 0;
    if (!c->paused_reading && !c->upload_paused && !c->close_after_flush)
        m |= EPOLLIN;
    if ((c->wlen > c->wpos || c->st_state == FE_ST_SEND) && !c->hold_output)
        m |= EPOLLOUT;
    if (m == c->mask)
        return;
    struct epoll_event ev = {.events = m, .data.u64 = tag(c, TAG_CONN)};
    if (epoll_ctl(e->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->mask = m;
}

static void conn_maybe_free(fe_engine *e, fe_conn *c)
{
    if (c->fd_closed && c->job == FE_JOB_NONE && !c->dead) {
        c->dead = 1;
        c->dnext = e->dead_conns;
        e->dead_conns = c;
    }
}

static void conn_free(fe_engine *e, fe_conn *c)
{
    e->conn_allocs--;
    if (!c->rbuf_shared) /* (never shared outside conn_readable; kept safe anyway) */
        free(c->rbuf);
    free(c->wbuf);
    free(c->doomed_reason);
    fr_buf_trim(&c->reqmem, 0);
    fr_buf_trim(&c->cbody, 0);
    fr_buf_trim(&c->frame, 0);
    fr_buf_trim(&c->up_fields, 0);
    fr_buf_trim(&c->up_files, 0);
    free(c);
}

/* The answer to an upload request is about to be written: keep it until
 * Python has removed the temp files (upload_release), so a client that got
 * the answer never sees them; at most HOLD_MAX. */
static void conn_hold(fe_engine *e, fe_conn *c)
{
    if (c->upload == 0 || c->hold_output)
        return;
    c->hold_output = 1;
    c->hold_token = c->upload;
    c->hold_until = e->now + HOLD_MAX;
}

static void conn_writable(fe_engine *e, fe_conn *c);
static void conn_close_fd(fe_engine *e, fe_conn *c);
static void conn_try_detach(fe_engine *e, fe_conn *c);

static void conn_release(fe_engine *e, fe_conn *c)
{
    if (!c->hold_output)
        return;
    c->hold_output = 0;
    c->hold_token = 0;
    if (c->fd_closed)
        return;
    if (c->wlen > c->wpos)
        conn_writable(e, c);
    else if (c->close_after_flush)
        conn_close_fd(e, c);
    else if (c->detaching)
        conn_try_detach(e, c);
    else
        conn_set_mask(e, c);
}

/* connection.py _drop_uploads: Python removes the temp files. */
static void conn_drop_upload(fe_engine *e, fe_conn *c)
{
    if (c->upload == 0)
        return;
    fe_event *ev = fe_event_new(FE_EV_UPLOAD_DROP);
    if (ev != NULL) {
        ev->id = (long long)c->upload;
        fe_push_event(e, ev);
    }
    c->upload = 0;
    c->upload_state = FE_UP_NONE;
    c->upload_unacked = 0;
    c->upload_paused = 0;
    c->continue_pending = 0;
}

static void conn_close_fd(fe_engine *e, fe_conn *c)
{
    if (c->fd_closed)
        return;
    /* Explicitly: a forked child may still hold a copy of the socket until
     * it execs, and epoll forgets an fd only when its description goes. */
    epoll_ctl(e->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd_closed = 1;
    c->wpos = c->wlen = 0;
    if (c->prev)
        c->prev->next = c->next;
    else
        e->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
    e->nconns--;
    if (c->st_state != FE_ST_NONE)
        static_gone(e, c);
    conn_maybe_free(e, c);
    check_drained(e);
}

static void queue_remove(fe_engine *e, fe_conn *c)
{
    if (c->qprev)
        c->qprev->qnext = c->qnext;
    else
        e->queue_head = c->qnext;
    if (c->qnext)
        c->qnext->qprev = c->qprev;
    else
        e->queue_tail = c->qprev;
    c->qnext = c->qprev = NULL;
    e->nqueued--;
}

static fe_conn *queue_pop(fe_engine *e)
{
    fe_conn *c = e->queue_head;
    if (c != NULL)
        queue_remove(e, c);
    return c;
}

/* The request left the pool's hands (answered, dropped, or finished on its
 * worker): Python's `server.in_flight -= 1`. */
static void job_end(fe_engine *e, fe_conn *c)
{
    if (c->job == FE_JOB_NONE)
        return;
    if (c->job == FE_JOB_QUEUED && (c->qprev || c->qnext || e->queue_head == c))
        queue_remove(e, c);
    c->job = FE_JOB_NONE;
    c->worker = NULL;
    e->in_flight--;
    conn_maybe_free(e, c);
    check_drained(e);
}

/* connection_lost: a queued job is dropped (the pool would skip it). */
static void conn_cancel(fe_engine *e, fe_conn *c)
{
    c->closed = 1;
    if (c->job == FE_JOB_QUEUED)
        job_end(e, c);
}

/* transport.close(): flush what is buffered, then close; stop reading. */
static void conn_close(fe_engine *e, fe_conn *c)
{
    conn_cancel(e, c);
    if (c->fd_closed)
        return;
    if (c->wlen == c->wpos)
        conn_close_fd(e, c);
    else {
        c->close_after_flush = 1;
        conn_set_mask(e, c);
    }
}

/* transport.abort(): close now, drop unsent bytes. */
static void conn_abort(fe_engine *e, fe_conn *c)
{
    conn_cancel(e, c);
    conn_close_fd(e, c);
}

static void conn_send(fe_engine *e, fe_conn *c, struct iovec *iov, int n)
{
    if (c->fd_closed || c->close_after_flush)
        return;
    size_t total = 0, sent = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    if (total == 0)
        return;
    if (c->wlen == c->wpos && !c->hold_output) {
        struct msghdr mh;
        memset(&mh, 0, sizeof(mh));
        mh.msg_iov = iov;
        mh.msg_iovlen = (size_t)n;
        ssize_t r;
        do
            r = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        while (r < 0 && errno == EINTR);
        if (r < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                conn_abort(e, c); /* the client is gone: connection_lost */
                return;
            }
            r = 0;
        }
        sent = (size_t)r;
        if (sent == total)
            return;
    }
    size_t rest = total - sent;
    if (rbuf_reserve(&c->wbuf, &c->wpos, &c->wlen, &c->wcap, rest) < 0) {
        conn_abort(e, c);
        return;
    }
    for (int i = 0; i < n; i++) {
        size_t len = iov[i].iov_len;
        const unsigned char *p = iov[i].iov_base;
        if (sent >= len) {
            sent -= len;
            continue;
        }
        memcpy(c->wbuf + c->wlen, p + sent, len - sent);
        c->wlen += len - sent;
        sent = 0;
    }
    conn_set_mask(e, c);
    if (c->wlen - c->wpos > HIGH_WATER)
        c->write_paused = 1; /* pause_writing() */
}

static void conn_send1(fe_engine *e, fe_conn *c, const void *p, size_t n)
{
    struct iovec iov = {(void *)p, n};
    conn_send(e, c, &iov, 1);
}

static void conn_writable(fe_engine *e, fe_conn *c)
{
    if (c->hold_output)
        return;
    while (c->wpos < c->wlen) {
        ssize_t r = send(c->fd, c->wbuf + c->wpos, c->wlen - c->wpos, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_abort(e, c);
            return;
        }
        c->wpos += (size_t)r;
    }
    if (c->wpos == c->wlen) {
        c->wpos = c->wlen = 0;
        rbuf_shrink(&c->wbuf, &c->wpos, &c->wlen, &c->wcap);
        if (c->close_after_flush) {
            conn_close_fd(e, c);
            return;
        }
        if (c->shut_after_flush) {
            c->shut_after_flush = 0;
            shutdown(c->fd, SHUT_WR);
        }
        if (c->detaching) { /* the earlier answers are out: the socket is Python's now */
            conn_try_detach(e, c);
            return;
        }
    }
    conn_set_mask(e, c);
    if (c->write_paused && c->wlen - c->wpos <= LOW_WATER) {
        c->write_paused = 0; /* resume_writing() */
        if (!c->busy && !c->closed)
            conn_process(e, c);
    }
    if (c->st_state == FE_ST_SEND && !c->fd_closed && c->wpos == c->wlen)
        static_pump(e, c); /* the head is out: the file's turn */
    if (e->stopping)
        check_drained(e);
}

/* server.py error_response / errors.py: the answers fastrr writes itself. */
static const char *error_reason(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Error";
    }
}

static void conn_send_error(fe_engine *e, fe_conn *c, int status, const char *detail,
                            size_t detail_len, int keep_alive, const char *extra, int head)
{
    const char *reason = error_reason(status);
    fr_buf *o = &e->out;
    o->len = 0;
    /* body: "{status} {reason}: {detail}\n" or "{status} {reason}\n" */
    size_t body_len = 3 + 1 + strlen(reason) + (detail_len ? 2 + detail_len : 0) + 1;
    if (fe_buf_printf(o,
                      "HTTP/1.1 %d %s\r\nDate: %.*s\r\nServer: fastrr\r\n"
                      "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n%s%s\r\n",
                      status, reason, FR_DATE_LEN, date_now(e), body_len, extra,
                      keep_alive ? "" : "Connection: close\r\n") < 0)
        goto oom;
    if (!head) {
        if (fe_buf_printf(o, "%d %s", status, reason) < 0)
            goto oom;
        if (detail_len && (FR_BUF_LIT(o, ": ") < 0 || fr_buf_append(o, detail, detail_len) < 0))
            goto oom;
        if (FR_BUF_LIT(o, "\n") < 0)
            goto oom;
    }
    conn_send1(e, c, o->data, o->len);
    return;
oom:
    conn_abort(e, c);
}

static int req_is(const RequestObject *r, const char *m, size_t n)
{
    return r->method_len == n && memcmp(fr_req_head(r) + r->method_off, m, n) == 0;
}

static const unsigned char *req_header(const RequestObject *r, const char *lower, size_t n,
                                       size_t *len)
{
    const unsigned char *head = fr_req_head(r);
    for (int i = 0; i < r->nheaders; i++) {
        const fr_hdr *h = &r->hdrs[i];
        if (h->name_len == n && fr_ieq(head + h->name_off, lower, n)) {
            *len = h->value_len;
            return head + h->value_off;
        }
    }
    return NULL;
}

/* server.log_access: the fields Python needs to write the access line. */
static void emit_access(fe_engine *e, fe_conn *c)
{
    const RequestObject *r = c->req;
    if (r == NULL)
        return;
    if (e->cfg.nlog_fds > 0) { /* the line itself, without Python */
        fe_write_access_line(e, c);
        return;
    }
    fe_event *ev = fe_event_new(FE_EV_ACCESS);
    if (ev == NULL)
        return;
    const unsigned char *head = fr_req_head(r);
    fe_ev_int(ev, "status", c->status);
    fe_ev_str(ev, "method", head + r->method_off, r->method_len, FE_F_LATIN1);
    fe_ev_str(ev, "target", head + r->target_off, r->target_len, FE_F_LATIN1);
    if (r->host_index >= 0) {
        const fr_hdr *h = &r->hdrs[r->host_index];
        fe_ev_str(ev, "host", head + h->value_off, h->value_len, FE_F_LATIN1);
    }
    else
        fe_ev_none(ev, "host");
    fe_ev_str(ev, "peer", c->peer, c->peer_len, FE_F_UTF8);
    fe_ev_float(ev, "started_wall", c->started_wall);
    fe_ev_int(ev, "elapsed", (long long)((e->now - c->started_at) * 1000));
    if (e->cfg.access_log == 2) {
        size_t n;
        const unsigned char *v;
        fe_ev_int(ev, "content_length", r->content_length);
        v = req_header(r, "user-agent", 10, &n);
        fe_ev_str(ev, "user_agent", v ? v : (const unsigned char *)"", v ? n : 0, FE_F_LATIN1);
        v = req_header(r, "referer", 7, &n);
        fe_ev_str(ev, "referer", v ? v : (const unsigned char *)"", v ? n : 0, FE_F_LATIN1);
    }
    fe_push_event(e, ev);
}

const double fe_metric_bounds[FE_METRIC_BOUNDS] = {.005, .01, .025, .05, .1, .25, .5,
                                                   1,    2.5, 5,    10,  20, 30,  60};

/* http_metrics: one finished request, counted in engine memory (no event, no Python). */
static void metrics_observe(fe_metrics *m, int status, double seconds)
{
    int i = status - FE_METRIC_STATUS_MIN;
    if (i < 0 || i >= FE_METRIC_STATUSES)
        return; /* cannot happen: the engine only sends 1xx..5xx */
    fe_status_metric *s = &m->by_status[i];
    if (seconds < 0)
        seconds = 0;
    int b = 0;
    while (b < FE_METRIC_BOUNDS && seconds > fe_metric_bounds[b])
        b++;
    s->count++;
    s->buckets[b]++;
    s->sum += seconds;
}

/* connection.py _finish (in_flight is job_end's business). */
static void conn_finish(fe_engine *e, fe_conn *c, int keep_alive)
{
    if (e->metrics != NULL && c->req != NULL) /* a request was read: not a bare connection's error */
        metrics_observe(e->metrics, c->status, e->now - c->started_at);
    if (e->cfg.access_log)
        emit_access(e, c);
    conn_drop_upload(e, c);
    c->req = NULL;
    c->busy = 0;
    if (c->job != FE_JOB_NONE)
        keep_alive = 0; /* a worker still streams for this request: no next one here */
    else { /* nothing refers to the head block and the frame any more */
        fe_pool_give(&e->heads, &c->reqmem);
        fe_pool_give(&e->frames, &c->frame);
    }
    if (!keep_alive || e->stopping) {
        conn_close(e, c);
        return;
    }
    c->deadline = e->now + e->cfg.idle_timeout;
    if (c->rlen > c->rpos)
        conn_process(e, c);
}

/* connection.py _respond_error */
static void conn_respond_error(fe_engine *e, fe_conn *c, int status, const char *detail,
                               size_t detail_len, int keep_alive, const char *extra)
{
    const RequestObject *r = c->req;
    int keep = keep_alive && r != NULL && r->keep_alive && !e->stopping;
    c->status = status;
    conn_hold(e, c);
    conn_send_error(e, c, status, detail, detail_len, keep, extra, r != NULL && req_is(r, "HEAD", 4));
    conn_finish(e, c, keep);
}

/* connection.py _reject: answer, then a lingering close. */
static void conn_reject(fe_engine *e, fe_conn *c, int status, const char *reason, size_t n)
{
    fe_event *ev = log_event(e, 10, "request rejected");
    if (ev != NULL) {
        fe_ev_str(ev, "remote", c->remote, c->remote_len, FE_F_UTF8);
        fe_ev_int(ev, "status", status);
        fe_ev_str(ev, "reason", reason, n, FE_F_UTF8);
        fe_push_event(e, ev);
    }
    c->rpos = c->rlen = 0;
    c->req = NULL;
    c->chunked_on = 0;
    c->body_left = -1;
    conn_drop_upload(e, c);
    if (c->fd_closed || c->closed || c->lingering)
        return;
    conn_send_error(e, c, status, reason, n, 0, "", 0);
    if (c->fd_closed)
        return;
    c->lingering = 1;
    c->busy = 1; /* nothing more is parsed on this connection */
    c->deadline = e->now + e->cfg.linger;
    c->paused_reading = 0;
    if (c->wlen == c->wpos)
        shutdown(c->fd, SHUT_WR);
    else
        c->shut_after_flush = 1;
    conn_set_mask(e, c);
}

/* pool.py on_no_worker via connection.py */
static void conn_no_worker(fe_engine *e, fe_conn *c, const char *reason, size_t n)
{
    job_end(e, c);
    if (c->closed)
        return;
    fe_event *ev = log_event(e, 30, "no free worker");
    if (ev != NULL) {
        fe_ev_str(ev, "reason", reason, n, FE_F_UTF8);
        fe_push_event(e, ev);
    }
    if (e->metrics != NULL)
        e->metrics->no_free_workers++;
    conn_respond_error(e, c, 503, reason, n, 1, "Retry-After: 1\r\nNo-Workers: true\r\n");
}

/* connection.py on_worker_lost */
static void conn_worker_lost(fe_engine *e, fe_conn *c, long long pid, int status, const char *reason,
                             size_t reason_len)
{
    job_end(e, c);
    if (c->closed)
        return;
    fe_event *ev = log_event(e, 40, "request failed");
    if (ev != NULL) {
        fe_ev_int(ev, "pid", pid);
        fe_ev_int(ev, "status", status);
        fe_ev_str(ev, "reason", reason, reason_len, FE_F_UTF8);
        fe_push_event(e, ev);
    }
    if (c->stream_started) {
        conn_abort(e, c);
        return;
    }
    conn_respond_error(e, c, status, reason, e->cfg.debug ? reason_len : 0, 1, "");
}

/* ------------------------------------------------------ reading requests */

static int set_request(fe_engine *e, fe_conn *c, const fr_head *h, const unsigned char *buf)
{
    size_t size = fr_request_size(h);
    fe_pool_take(&e->heads, &c->reqmem);
    if (fr_buf_reserve(&c->reqmem, size) < 0)
        return -1;
    RequestObject *r = (RequestObject *)c->reqmem.data;
    memset(r, 0, offsetof(RequestObject, hdrs));
    fr_request_fill(r, h, buf);
    c->req = r;
    return 0;
}

static int sink_buf(void *ctx, const unsigned char *p, size_t n)
{
    return fr_buf_append((fr_buf *)ctx, p, n);
}

/* server.py parses_form: is a form body parsed for the worker? RoadRunner's
 * rule (any method but HEAD/OPTIONS, unless raw_body), or, for workers that
 * asked for raw forms, PHP's SAPI rule: urlencoded as sent, multipart for POST. */
static int parses_form(const fe_engine *e, const RequestObject *r, int multipart)
{
    if (e->cfg.raw_body || req_is(r, "HEAD", 4) || req_is(r, "OPTIONS", 7))
        return 0;
    if (__atomic_load_n(&e->cfg.raw_forms, __ATOMIC_RELAXED))
        return multipart && req_is(r, "POST", 4);
    return 1;
}

/* connection.py _encode: the worker frame into c->frame. NULL when done;
 * else the reason of a 400 (NUL-terminated, in e->form_err), or "" when out
 * of memory. */
static const char *conn_encode(fe_engine *e, fe_conn *c, const unsigned char *body, size_t blen)
{
    const RequestObject *r = c->req;
    int parsed = 0;
    const unsigned char *uploads = NULL;
    size_t uploads_len = 0;
    if (c->upload) { /* multipart: the fields and files trees from Python */
        body = (const unsigned char *)c->up_fields.data;
        blen = c->up_fields.len;
        parsed = 1;
        if (c->up_has_files) {
            uploads = (const unsigned char *)c->up_files.data;
            uploads_len = c->up_files.len;
        }
    }
    else if (r->body_kind == FR_BODY_URLENCODED && parses_form(e, r, 0)) {
        e->form_json.len = e->form_err.len = 0;
        int rc = fe_form_json(&e->form, body, blen, &e->form_json, &e->form_err);
        if (rc != 0) {
            if (rc < 0 || FR_BUF_LIT(&e->form_err, "\0") < 0)
                return "";
            return e->form_err.data;
        }
        body = (const unsigned char *)e->form_json.data;
        blen = e->form_json.len;
        parsed = 1;
    }
    ctx_args a;
    memset(&a, 0, sizeof(a));
    a.remote = c->remote;
    a.remote_len = (Py_ssize_t)c->remote_len;
    a.scheme = "http";
    a.scheme_len = 4;
    a.parsed = parsed;
    a.uploads = uploads;
    a.uploads_len = (Py_ssize_t)uploads_len;
    fr_buf *f = &c->frame;
    fe_pool_take(&e->frames, f);
    if (fr_buf_reserve(f, 16 + 512 + blen) < 0)
        return "";
    f->len = 16;
    if (e->cfg.proto ? fr_proto_encode_request(f, &e->pb_scratch, r, &a) < 0
                     : fr_write_context_json(f, r, &a) < 0)
        return "";
    uint32_t ctx_len = (uint32_t)(f->len - 16);
    if (fr_buf_append(f, body, blen) < 0)
        return "";
    if (f->len - 16 > 0xFFFFFFFFull)
        return "request too large for one frame";
    fr_write_frame_header((unsigned char *)f->data, e->cfg.proto ? 0x80 : 0x08 /* PROTO / JSON */,
                          (uint32_t)(f->len - 16), &ctx_len, 1, 0);
    return NULL;
}

/* connection.py _submit */
static void conn_submit(fe_engine *e, fe_conn *c)
{
    const RequestObject *r = c->req;
    c->busy = 1;
    c->retries = 0;
    c->stream_started = 0;
    c->stop_sent = 0;
    c->status = 0;
    (void)r;
    e->in_flight++;
    e->requests++;
    c->job = FE_JOB_QUEUED; /* handed to the pool; pool_submit decides */
    pool_submit(e, c);
}

static void upload_forward(fe_engine *e, fe_conn *c, const unsigned char *p, size_t n)
{
    fe_event *ev = fe_event_new(FE_EV_UPLOAD_DATA);
    if (ev != NULL && (ev->msg = malloc(n ? n : 1)) != NULL) {
        ev->id = (long long)c->upload;
        memcpy(ev->msg, p, n);
        ev->msg_len = n;
        fe_push_event(e, ev);
    }
    else
        free(ev);
    c->upload_unacked += n;
}

/* connection.py's multipart branch: the body goes to Python's
 * MultipartReceiver while it arrives (at most UPLOAD_WINDOW unconsumed).
 * 1 when the fields/files trees are back and the frame can be built. */
static int conn_upload_step(fe_engine *e, fe_conn *c)
{
    if (c->upload_state == FE_UP_READY)
        return 1;
    if (c->upload_state != FE_UP_STREAM)
        return 0; /* waiting for Python */
    if (c->continue_pending) {
        c->continue_pending = 0;
        conn_send1(e, c, CONTINUE, sizeof(CONTINUE) - 1);
    }
    while (c->upload_unacked < UPLOAD_WINDOW) {
        size_t avail = c->rlen - c->rpos;
        if (c->chunked_on) {
            ptrdiff_t n = fr_chunked_run(&c->chunked, conn_in(c), avail, sink_buf, &c->cbody);
            if (n == -1) {
                conn_reject(e, c, c->chunked.err_status, c->chunked.err_reason,
                            strlen(c->chunked.err_reason));
                return 0;
            }
            if (n < 0) {
                conn_abort(e, c);
                return 0;
            }
            c->rpos += (size_t)n;
            if (c->cbody.len)
                upload_forward(e, c, (const unsigned char *)c->cbody.data, c->cbody.len);
            c->cbody.len = 0;
            if (!fr_chunked_done(&c->chunked))
                return 0;
            c->chunked_on = 0;
        }
        else {
            size_t size = avail < (size_t)c->body_left ? avail : (size_t)c->body_left;
            if (size > UPLOAD_WINDOW - c->upload_unacked)
                size = UPLOAD_WINDOW - c->upload_unacked;
            if (size == 0)
                return 0;
            upload_forward(e, c, c->rbuf + c->rpos, size);
            c->rpos += size;
            c->body_left -= (long long)size;
            if (c->body_left > 0)
                continue;
            c->body_left = -1;
        }
        fe_event *ev = fe_event_new(FE_EV_UPLOAD_END);
        if (ev != NULL) {
            ev->id = (long long)c->upload;
            fe_push_event(e, ev);
        }
        c->upload_state = FE_UP_WAIT_DONE;
        return 0;
    }
    return 0;
}

/* The end of connection.py _encode + _submit: the body is complete (at
 * rbuf + rpos for `consume` bytes, or decoded in cbody). 0 submitted; -1
 * the request was rejected or the connection aborted. */
static int conn_dispatch(fe_engine *e, fe_conn *c, const unsigned char *body, size_t blen,
                         size_t consume)
{
    const char *err = conn_encode(e, c, body, blen);
    c->rpos += consume;
    if (c->cbody.len > BUF_KEEP)
        fr_buf_trim(&c->cbody, BUF_KEEP);
    c->cbody.len = 0;
    if (err != NULL) {
        if (*err == '\0') {
            conn_abort(e, c);
            return -1;
        }
        conn_reject(e, c, 400, err, strlen(err));
        return -1;
    }
    conn_submit(e, c);
    return 0;
}

/* ---------------------------------------------------------- static files
 *
 * http.middleware: [static]. fe_static_candidate (engine_static.c) said a
 * file may answer: Python's StaticMiddleware decides (a "static" event with
 * a copy of the request head, engine_pool.py) and answers with
 * static_serve (the response head, and the file as fd/offset/count),
 * static_miss (the request goes to PHP as if nothing happened) or
 * static_abort. Meanwhile the connection is busy and the request counts as
 * in flight (drain waits for it); its body, if any, stays unconsumed. The
 * file goes out with sendfile() once the head is written, EPOLLOUT
 * between rounds: files.py FileSender. */

static void static_unwait(fe_engine *e, fe_conn *c)
{
    if (c->sprev)
        c->sprev->snext = c->snext;
    else if (e->static_wait == c)
        e->static_wait = c->snext;
    if (c->snext)
        c->snext->sprev = c->sprev;
    c->snext = c->sprev = NULL;
    c->st_token = 0;
}

/* 0: asked (the connection waits); -1: out of memory, dispatch as usual. */
static int static_ask(fe_engine *e, fe_conn *c, size_t consume)
{
    const RequestObject *r = c->req;
    size_t size = offsetof(RequestObject, hdrs) + (size_t)r->nheaders * sizeof(fr_hdr) +
                  (size_t)r->head_size;
    fe_event *ev = fe_event_new(FE_EV_STATIC);
    if (ev == NULL)
        return -1;
    if ((ev->msg = malloc(size)) == NULL) {
        free(ev);
        return -1;
    }
    memcpy(ev->msg, r, size);
    ev->msg_len = size;
    c->busy = 1;
    c->st_state = FE_ST_WAIT;
    c->st_token = ++e->static_seq;
    c->st_consume = consume;
    c->status = 0;
    e->in_flight++;
    c->sprev = NULL;
    c->snext = e->static_wait;
    if (e->static_wait)
        e->static_wait->sprev = c;
    e->static_wait = c;
    ev->id = (long long)c->st_token;
    fe_push_event(e, ev);
    return 0;
}

/* FileSender done: the file is closed, the request finished (connection.py
 * _file_sent). */
static void static_done(fe_engine *e, fe_conn *c, int ok)
{
    close(c->st_fd);
    c->st_fd = -1;
    c->st_state = FE_ST_NONE;
    c->st_left = 0;
    e->in_flight--;
    if (!ok) {
        fe_event *ev = log_event(e, 10, "file body not sent completely");
        if (ev != NULL) {
            fe_ev_str(ev, "remote", c->remote, c->remote_len, FE_F_UTF8);
            fe_push_event(e, ev);
        }
    }
    conn_finish(e, c, c->st_keep && ok);
    check_drained(e);
}

/* The socket is gone (closed or aborted) while Python decides or the file
 * is being sent. */
static void static_gone(fe_engine *e, fe_conn *c)
{
    if (c->st_state == FE_ST_WAIT) {
        static_unwait(e, c);
        c->st_state = FE_ST_NONE;
        e->in_flight--;
        return;
    }
    if (c->st_state == FE_ST_SEND)
        static_done(e, c, 0);
}

/* FileSender._step_native: sendfile until done or the socket is full. */
static void static_pump(fe_engine *e, fe_conn *c)
{
    for (int round = 0; round < SENDFILE_ROUNDS && c->st_left > 0; round++) {
        size_t want = c->st_left > SENDFILE_CHUNK ? SENDFILE_CHUNK : (size_t)c->st_left;
        off_t off = (off_t)c->st_off;
        ssize_t r = sendfile(c->fd, c->st_fd, &off, want);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                conn_set_mask(e, c); /* EPOLLOUT */
                return;
            }
            static_done(e, c, 0);
            return;
        }
        if (r == 0) { /* the file shrank under us: the promised length cannot be met */
            static_done(e, c, 0);
            return;
        }
        c->st_off += r;
        c->st_left -= r;
    }
    if (c->st_left > 0) {
        conn_set_mask(e, c); /* more next turn (level-triggered: at once if it can) */
        return;
    }
    static_done(e, c, 1);
}

static fe_conn *static_find(fe_engine *e, unsigned long long token)
{
    if (token == 0)
        return NULL;
    for (fe_conn *c = e->static_wait; c; c = c->snext)
        if (c->st_token == token)
            return c;
    return NULL;
}

/* Python's answer to a "static" event (posted without waiting: the fd, if
 * any, is a dup made for us, ours to close). 1 taken; 0 the request is gone. */
static long long cmd_static(fe_engine *e, fe_cmd *cmd)
{
    int fd = cmd->rfd;
    fe_conn *c = static_find(e, (unsigned long long)cmd->id);
    if (c == NULL || cmd->status <= 0 || cmd->count <= 0) {
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    if (c == NULL)
        return 0;
    static_unwait(e, c);
    c->st_state = FE_ST_NONE;
    c->busy = 0;
    e->in_flight--;
    size_t consume = c->st_consume;
    c->st_consume = 0;
    if (c->closed) { /* the client left; its close waits for earlier output */
        if (fd >= 0)
            close(fd);
        check_drained(e);
        return 0;
    }
    if (cmd->status < 0) { /* protocol.data_received() raised: the transport is aborted */
        conn_abort(e, c);
        return 1;
    }
    if (cmd->status == 0) { /* a miss after all: PHP answers */
        const unsigned char *body = (const unsigned char *)"";
        size_t blen = 0;
        if (consume) {
            body = c->rbuf + c->rpos;
            blen = consume;
        }
        else if (c->cbody.len) {
            body = (const unsigned char *)c->cbody.data;
            blen = c->cbody.len;
        }
        conn_dispatch(e, c, body, blen, consume);
        return 1;
    }
    /* a hit: the body (if any) is read and dropped */
    c->rpos += consume;
    if (c->cbody.len > BUF_KEEP)
        fr_buf_trim(&c->cbody, BUF_KEEP);
    c->cbody.len = 0;
    const RequestObject *r = c->req;
    int keep = r->keep_alive && !e->stopping;
    /* Response.encode_http1's framing: Connection as build_response writes it */
    fr_buf *o = &e->out;
    o->len = 0;
    if (fr_buf_append(o, cmd->text, cmd->text_len) < 0 ||
        (!keep ? FR_BUF_LIT(o, "Connection: close\r\n")
               : r->http_minor == 0 ? FR_BUF_LIT(o, "Connection: keep-alive\r\n") : 0) < 0 ||
        FR_BUF_LIT(o, "\r\n") < 0) {
        if (fd >= 0)
            close(fd);
        conn_abort(e, c);
        return 1;
    }
    c->status = cmd->status;
    struct iovec iov[2] = {{o->data, o->len}, {(void *)cmd->text2, cmd->text2_len}};
    conn_send(e, c, iov, cmd->text2 != NULL && cmd->text2_len ? 2 : 1);
    if (fd < 0 || c->fd_closed) {
        if (fd >= 0)
            close(fd);
        if (!c->fd_closed)
            conn_finish(e, c, keep);
        check_drained(e);
        return 1;
    }
    c->busy = 1;
    c->st_state = FE_ST_SEND;
    c->st_fd = fd;
    c->st_off = cmd->offset;
    c->st_left = cmd->count;
    c->st_keep = keep;
    e->in_flight++;
    if (c->wlen == c->wpos && !c->hold_output)
        static_pump(e, c);
    else
        conn_set_mask(e, c);
    return 1;
}

/* ------------------------------------------------------------ detaching
 *
 * detach_paths (engine_pool.py on_detach): a GET without a body for one of
 * these paths goes to Python (WebSockets, Server-Sent Events), not to PHP.
 * The connection is busy from that head on, so nothing after it is parsed;
 * once the answers to the requests before it are written (and an upload's
 * answer released), the socket leaves epoll, a dup of it goes to Python
 * with a copy of the head and the bytes read after it, and the engine
 * forgets the connection: no access line, no timers, not counted by drain,
 * stop_accepting, abort_connections or stats. */

/* Does r go to Python? Called only when detach_paths is set: a method
 * compare, a memchr over the target and a length test before any memcmp. */
static int detach_match(const fe_engine *e, const RequestObject *r)
{
    if (!req_is(r, "GET", 3))
        return 0;
    const unsigned char *t = fr_req_head(r) + r->target_off;
    const unsigned char *q = memchr(t, '?', r->target_len);
    size_t n = q ? (size_t)(q - t) : r->target_len;
    if (n < e->cfg.detach_min || n > e->cfg.detach_max)
        return 0;
    for (size_t i = 0; i < e->cfg.ndetach; i++)
        if (e->cfg.detach[i].n == n && memcmp(e->cfg.detach[i].p, t, n) == 0)
            return 1;
    return 0;
}

/* Hand the connection over once nothing is left to write on it. */
static void conn_try_detach(fe_engine *e, fe_conn *c)
{
    if (!c->detaching || c->fd_closed || c->closed || c->hold_output || c->wlen > c->wpos)
        return;
    const RequestObject *r = c->req;
    size_t size = offsetof(RequestObject, hdrs) + (size_t)r->nheaders * sizeof(fr_hdr) +
                  (size_t)r->head_size;
    size_t left = c->rlen - c->rpos;
    fe_event *ev = fe_event_new(FE_EV_DETACH);
    int fd = -1, err = ENOMEM;
    if (ev != NULL && (ev->msg = malloc(size)) != NULL) {
        memcpy(ev->msg, r, size);
        ev->msg_len = size;
        fe_ev_str(ev, "leftover", left ? c->rbuf + c->rpos : NULL, left, FE_F_BYTES);
        if (ev->nfields == 1 && ev->fields[0].kind == FE_F_BYTES &&
            (fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 3)) < 0)
            err = errno;
    }
    if (fd < 0) {
        if (ev != NULL)
            fe_event_free(ev);
        fe_event *log = log_event(e, 40, "connection not detached");
        if (log != NULL) {
            const char *s = strerror(err);
            fe_ev_str(log, "remote", c->remote, c->remote_len, FE_F_UTF8);
            fe_ev_str(log, "error", s, strlen(s), FE_F_UTF8);
            fe_push_event(e, log);
        }
        conn_abort(e, c);
        return;
    }
    ev->id = fd;
    ev->fd_owned = 1;
    c->rpos = c->rlen;
    c->req = NULL;
    c->detaching = 0;
    e->detached++;
    conn_close_fd(e, c); /* out of epoll and of every count; the dup keeps the socket open */
    fe_push_event(e, ev);
}

/* connection.py _process / _process_buffered */
static void conn_process(fe_engine *e, fe_conn *c)
{
    if (c->processing)
        return;
    c->processing = 1;
    while (!c->busy && !c->closed && !c->write_paused && !c->fd_closed) {
        size_t avail = c->rlen - c->rpos;
        if (c->req == NULL) {
            if (avail == 0)
                break;
            fr_head *h = &e->head;
            int rc = fr_parse_head(c->rbuf + c->rpos, avail, e->cfg.max_header_size, h);
            if (rc < 0) {
                conn_reject(e, c, h->err_status, h->err_reason, strlen(h->err_reason));
                break;
            }
            if (rc == 0)
                break;
            if (set_request(e, c, h, c->rbuf + c->rpos) < 0) {
                conn_abort(e, c);
                break;
            }
            c->rpos += h->head_len;
            avail = c->rlen - c->rpos;
            /* The access log's start and elapsed count from the head, body included (as RoadRunner's). */
            c->started_at = e->now;
            if (e->cfg.access_log)
                c->started_wall = fe_wall();
            const RequestObject *r = c->req;
            c->body_left = -1;
            c->chunked_on = 0;
            if (r->chunked) {
                fr_chunked_start(&c->chunked, e->cfg.max_body);
                c->cbody.len = 0;
                c->chunked_on = 1;
            }
            else if (r->content_length > 0) {
                if ((unsigned long long)r->content_length > e->cfg.max_body) {
                    e->text.len = 0;
                    if (fe_buf_printf(&e->text,
                                      "request body of %lld bytes is over max_request_size (%lld MB)",
                                      (long long)r->content_length, e->cfg.max_request_size) < 0) {
                        conn_abort(e, c);
                        break;
                    }
                    conn_reject(e, c, 413, e->text.data, e->text.len);
                    break;
                }
                c->body_left = r->content_length;
            }
            int has_body = c->chunked_on || c->body_left > 0;
            if (e->cfg.ndetach && !has_body && detach_match(e, r)) {
                c->busy = 1;
                c->detaching = 1;
                conn_try_detach(e, c); /* now, or when the earlier answers are out */
                break;
            }
            int multipart = r->body_kind == FR_BODY_MULTIPART && has_body && parses_form(e, r, 1);
            /* room for the whole body, so it is read in place (not for
             * multipart: that streams through a window) */
            if (!multipart && c->body_left > 0 &&
                conn_rbuf_reserve(c, (size_t)c->body_left > avail ? (size_t)c->body_left - avail : 0) < 0) {
                conn_abort(e, c);
                break;
            }
            long long need = c->body_left > 1 ? c->body_left : 1;
            int want_continue = r->expect_continue && has_body && (long long)avail < need;
            if (multipart) {
                c->upload = ++e->upload_seq;
                c->upload_state = FE_UP_WAIT_GO;
                c->upload_unacked = 0;
                c->up_has_files = 0;
                c->continue_pending = want_continue; /* once Python has the boundary */
                fe_event *ev = fe_event_new(FE_EV_UPLOAD_START);
                if (ev != NULL) {
                    size_t n;
                    const unsigned char *ct = req_header(r, "content-type", 12, &n);
                    ev->id = (long long)c->upload;
                    fe_ev_str(ev, "content_type", ct ? ct : (const unsigned char *)"", ct ? n : 0,
                              FE_F_LATIN1);
                    fe_push_event(e, ev);
                }
            }
            else if (want_continue)
                conn_send1(e, c, CONTINUE, sizeof(CONTINUE) - 1);
        }
        if (c->upload && !conn_upload_step(e, c))
            break;
        const unsigned char *body = (const unsigned char *)"";
        size_t blen = 0, consume = 0;
        if (c->upload) {
            /* conn_encode takes the trees from c->up_fields / up_files */
        }
        else if (c->chunked_on) {
            ptrdiff_t n = fr_chunked_run(&c->chunked, conn_in(c), avail, sink_buf, &c->cbody);
            if (n == -1) {
                conn_reject(e, c, c->chunked.err_status, c->chunked.err_reason,
                            strlen(c->chunked.err_reason));
                break;
            }
            if (n < 0) {
                conn_abort(e, c);
                break;
            }
            c->rpos += (size_t)n;
            if (!fr_chunked_done(&c->chunked))
                break;
            c->chunked_on = 0;
            body = (const unsigned char *)c->cbody.data;
            blen = c->cbody.len;
        }
        else if (c->body_left > 0) {
            if (avail < (size_t)c->body_left)
                break;
            body = c->rbuf + c->rpos;
            blen = consume = (size_t)c->body_left;
            c->body_left = -1;
        }
        if (e->cfg.static_root != NULL && fe_static_candidate(e, c->req) &&
            static_ask(e, c, consume) == 0)
            break; /* Python answers (the body stays where it is until then) */
        if (conn_dispatch(e, c, body, blen, consume) < 0)
            break;
    }
    c->processing = 0;
    if (c->paused_reading && !c->busy && c->rlen - c->rpos < e->cfg.pipeline_limit) {
        c->paused_reading = 0;
        conn_set_mask(e, c);
    }
    /* multipart flow control: Python consumes at its pace */
    int hold = c->upload && (c->upload_state == FE_UP_WAIT_GO || c->upload_state == FE_UP_STREAM) &&
               (c->upload_unacked >= UPLOAD_WINDOW || c->rlen - c->rpos >= UPLOAD_WINDOW);
    if (hold != (int)c->upload_paused) {
        c->upload_paused = hold ? 1 : 0;
        conn_set_mask(e, c);
    }
}

/* connection.py data_received, for one recv() worth of bytes */
static void conn_data(fe_engine *e, fe_conn *c, size_t n)
{
    if (c->rlen == c->rpos && c->req == NULL)
        c->deadline = e->now + e->cfg.read_timeout;
    c->rlen += n;
    if (!c->busy) {
        if (c->req != NULL)
            c->deadline = e->now + e->cfg.read_timeout;
        conn_process(e, c);
    }
    else if (c->rlen - c->rpos > e->cfg.pipeline_limit && !c->paused_reading) {
        c->paused_reading = 1;
        conn_set_mask(e, c);
    }
}

static void conn_read_rounds(fe_engine *e, fe_conn *c)
{
    for (int round = 0; round < 64; round++) {
        if (c->fd_closed || c->close_after_flush || c->paused_reading || c->upload_paused)
            return;
        if (c->lingering) { /* discard what a rejected client still sends */
            unsigned char junk[16384];
            ssize_t r = recv(c->fd, junk, sizeof(junk), 0);
            if (r > 0)
                continue;
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return;
            conn_close(e, c);
            return;
        }
        size_t want = READ_CHUNK;
        if (c->body_left > 0 && (size_t)c->body_left > want)
            want = (size_t)c->body_left > (1u << 20) ? (1u << 20) : (size_t)c->body_left;
        if (!c->rbuf_shared && c->rbuf != NULL && c->rpos == c->rlen && c->req == NULL &&
            c->rcap > BUF_KEEP) {
            free(c->rbuf); /* a big body's room, drained: not kept for the next request */
            c->rbuf = NULL;
            c->rpos = c->rlen = c->rcap = 0;
        }
        if (c->rbuf == NULL) { /* nothing kept: read into the engine's scratch */
            c->rbuf = e->rscratch;
            c->rcap = FE_READ_SCRATCH;
            c->rpos = c->rlen = 0;
            c->rbuf_shared = 1;
        }
        else if (c->rbuf_shared && c->rpos == c->rlen)
            c->rpos = c->rlen = 0; /* all consumed: the scratch from its start again */
        if (conn_rbuf_reserve(c, want) < 0) {
            conn_abort(e, c);
            return;
        }
        size_t space = c->rcap - c->rlen;
        ssize_t r = recv(c->fd, c->rbuf + c->rlen, space, 0);
        if (r > 0) {
            conn_data(e, c, (size_t)r);
            if ((size_t)r < space)
                return;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        /* EOF: asyncio closes the transport (flushing); a reset: gone */
        if (r == 0)
            conn_close(e, c);
        else
            conn_abort(e, c);
        return;
    }
}

/* One readable event. The scratch lent for the reads goes back before the
 * next connection's turn: whatever is unconsumed moves to a buffer of the
 * connection's own. */
static void conn_readable(fe_engine *e, fe_conn *c)
{
    conn_read_rounds(e, c);
    if (!c->rbuf_shared)
        return;
    if (c->fd_closed) { /* gone: its input does not matter any more */
        c->rbuf_shared = 0;
        c->rbuf = NULL;
        c->rpos = c->rlen = c->rcap = 0;
    }
    else if (conn_unshare(c, 0) < 0)
        conn_abort(e, c);
}

/* connection.py check_deadline */
static void conn_check_deadline(fe_engine *e, fe_conn *c)
{
    if (c->closed || e->now < c->deadline)
        return;
    if (c->lingering) {
        conn_close(e, c);
        return;
    }
    if (c->busy)
        return;
    if (c->req != NULL || c->rlen > c->rpos) {
        static const char msg[] = "request not received within read_timeout";
        conn_reject(e, c, 408, msg, sizeof(msg) - 1);
    }
    else
        conn_close(e, c);
}

static void do_accept(fe_engine *e)
{
    for (int i = 0; i < 64 && e->listen_fd >= 0; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(e->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            /* out of fds or memory: stop accepting for a tick */
            fe_event *ev = log_event(e, 40, "accept failed");
            if (ev != NULL) {
                const char *s = strerror(errno);
                fe_ev_str(ev, "error", s, strlen(s), FE_F_UTF8);
                fe_push_event(e, ev);
            }
            epoll_ctl(e->epfd, EPOLL_CTL_DEL, e->listen_fd, NULL);
            e->accept_paused = 1;
            e->accept_resume = e->now + TICK;
            return;
        }
        fe_conn *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->fd = fd;
        c->body_left = -1;
        char host[INET6_ADDRSTRLEN] = "";
        int port = 0;
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
            port = ntohs(a->sin_port);
        }
        else if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
            port = ntohs(a->sin6_port);
        }
        c->remote_len = strlen(host);
        memcpy(c->remote, host, c->remote_len);
        int pn = snprintf(c->peer, sizeof(c->peer), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
        c->peer_len = pn > 0 ? (size_t)pn : 0;
        c->deadline = e->now + e->cfg.idle_timeout;
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag(c, TAG_CONN)};
        if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            free(c);
            continue;
        }
        c->mask = EPOLLIN;
        c->next = e->conns;
        if (e->conns)
            e->conns->prev = c;
        e->conns = c;
        e->nconns++;
        e->accepted++;
        e->conn_allocs++;
        if (e->nconns > e->conn_peak)
            e->conn_peak = e->nconns;
    }
}

/* ================================================================ workers */

static void worker_set_wmask(fe_engine *e, fe_worker *w, int want_out)
{
    if (w->dead)
        return;
    if (w->wfd == w->rfd) {
        uint32_t m = EPOLLIN | (want_out ? EPOLLOUT : 0);
        if (m != w->rmask) {
            struct epoll_event ev = {.events = m, .data.u64 = tag(w, TAG_WREAD)};
            if (epoll_ctl(e->epfd, EPOLL_CTL_MOD, w->rfd, &ev) == 0)
                w->rmask = m;
        }
        return;
    }
    uint32_t m = want_out ? EPOLLOUT : 0;
    if (m == w->wmask)
        return;
    struct epoll_event ev = {.events = m, .data.u64 = tag(w, TAG_WWRITE)};
    /* wmask == UINT32_MAX: not registered (dropped after the reader went away) */
    int op = w->wmask == UINT32_MAX ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    if (epoll_ctl(e->epfd, op, w->wfd, &ev) == 0)
        w->wmask = m;
}

static void free_stack_remove(fe_engine *e, fe_worker *w)
{
    for (size_t i = 0; i < e->nfree; i++) {
        if (e->free_stack[i] == w) {
            memmove(e->free_stack + i, e->free_stack + i + 1, (e->nfree - i - 1) * sizeof(w));
            e->nfree--;
            return;
        }
    }
}

static int free_stack_push(fe_engine *e, fe_worker *w)
{
    if (e->nfree == e->free_cap) {
        size_t ncap = e->free_cap ? e->free_cap * 2 : 16;
        fe_worker **p = realloc(e->free_stack, ncap * sizeof(*p));
        if (p == NULL)
            return -1;
        e->free_stack = p;
        e->free_cap = ncap;
    }
    e->free_stack[e->nfree++] = w;
    return 0;
}

/* Stop using a worker for good: out of epoll, our dups closed, freed at
 * the end of the turn. Its job (if any) is the caller's business. */
static void worker_forget(fe_engine *e, fe_worker *w)
{
    if (w->dead)
        return;
    w->dead = 1;
    if (w->state == FE_W_IDLE)
        free_stack_remove(e, w);
    /* Python still holds the same descriptions: deregister before closing,
     * or epoll would keep reporting them for a freed worker. */
    epoll_ctl(e->epfd, EPOLL_CTL_DEL, w->rfd, NULL);
    close(w->rfd);
    if (w->wfd != w->rfd) {
        if (w->wmask != UINT32_MAX)
            epoll_ctl(e->epfd, EPOLL_CTL_DEL, w->wfd, NULL);
        close(w->wfd);
    }
    if (w->prev)
        w->prev->next = w->next;
    else
        e->workers = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        e->workers_tail = w->prev;
    w->next = w->prev = NULL;
    w->dnext = e->dead_workers;
    e->dead_workers = w;
    if (w->conn != NULL) {
        w->conn->worker = NULL;
        w->conn = NULL;
    }
    w->req_p = NULL;
    w->req_left = 0;
}

static void worker_free(fe_worker *w)
{
    free(w->trend.ring);
    free(w->rbuf);
    fr_buf_trim(&w->ctl, 0);
    free(w);
}

static fe_worker *worker_find(fe_engine *e, long long id)
{
    for (fe_worker *w = e->workers; w; w = w->next)
        if (w->id == id)
            return w;
    return NULL;
}

static void worker_flush(fe_engine *e, fe_worker *w)
{
    while (!w->dead && w->req_left) {
        ssize_t r = write(w->wfd, w->req_p, w->req_left);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            char msg[128];
            int n = snprintf(msg, sizeof(msg), "write failed: %s", strerror(errno));
            worker_lost(e, w, msg, (size_t)n);
            return;
        }
        w->req_p += r;
        w->req_left -= (size_t)r;
    }
    while (!w->dead && !w->req_left && w->ctl_pos < w->ctl.len) {
        ssize_t r = write(w->wfd, w->ctl.data + w->ctl_pos, w->ctl.len - w->ctl_pos);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            char msg[128];
            int n = snprintf(msg, sizeof(msg), "write failed: %s", strerror(errno));
            worker_lost(e, w, msg, (size_t)n);
            return;
        }
        w->ctl_pos += (size_t)r;
    }
    if (w->dead)
        return;
    int pending = w->req_left || w->ctl_pos < w->ctl.len;
    if (!pending)
        w->ctl.len = w->ctl_pos = 0;
    worker_set_wmask(e, w, pending);
}

static void worker_send_ctl(fe_engine *e, fe_worker *w, const unsigned char *p, size_t n)
{
    if (w->dead)
        return;
    if (fr_buf_append(&w->ctl, p, n) < 0) {
        static const char msg[] = "out of memory";
        worker_lost(e, w, msg, sizeof(msg) - 1);
        return;
    }
    if (!w->req_left && w->ctl_pos + n == w->ctl.len)
        worker_flush(e, w);
}

static void worker_send_stop(fe_engine *e, fe_worker *w)
{
    w->state = FE_W_STOPPING;
    w->stop_pending = 0;
    worker_send_ctl(e, w, control_stop, sizeof(control_stop));
}

/* worker.py exec */
static void worker_exec(fe_engine *e, fe_worker *w, fe_conn *c)
{
    w->conn = c;
    w->state = FE_W_BUSY;
    w->exec_started = e->now;
    c->worker = w;
    c->job = FE_JOB_RUNNING;
    w->req_p = (const unsigned char *)c->frame.data;
    w->req_left = c->frame.len;
    worker_flush(e, w);
}

/* http.pool.active_limit: may one more worker start a request? Counted on
 * demand (a walk over the workers) only while a limit is set. */
static int under_active_limit(fe_engine *e)
{
    if (e->active_limit <= 0)
        return 1;
    long long busy = 0;
    for (fe_worker *w = e->workers; w != NULL; w = w->next)
        busy += w->conn != NULL;
    return busy < e->active_limit;
}

/* pool.py submit */
static void pool_submit(fe_engine *e, fe_conn *c)
{
    if (e->nfree > 0 && under_active_limit(e)) {
        worker_exec(e, e->free_stack[--e->nfree], c);
        return;
    }
    if (e->cfg.max_queue_size && e->nqueued >= e->cfg.max_queue_size) {
        e->text.len = 0;
        if (fe_buf_printf(&e->text, "request queue is full (max_queue_size %lld)",
                          e->cfg.max_queue_size) < 0)
            e->text.len = 0;
        conn_no_worker(e, c, e->text.data, e->text.len);
        return;
    }
    c->job = FE_JOB_QUEUED;
    c->queued_at = e->now;
    c->qnext = NULL;
    c->qprev = e->queue_tail;
    if (e->queue_tail)
        e->queue_tail->qnext = c;
    else
        e->queue_head = c;
    e->queue_tail = c;
    e->nqueued++;
}

/* The worker takes the oldest queued request or goes on the free stack. */
static void worker_idle(fe_engine *e, fe_worker *w)
{
    w->state = FE_W_IDLE;
    w->last_used = e->now;
    fe_conn *c = under_active_limit(e) ? queue_pop(e) : NULL;
    if (c != NULL) {
        worker_exec(e, w, c);
        return;
    }
    if (free_stack_push(e, w) < 0) {
        static const char msg[] = "out of memory";
        worker_lost(e, w, msg, sizeof(msg) - 1);
    }
}

static unsigned long long page_size(void)
{
    static unsigned long long size;
    if (size == 0)
        size = (unsigned long long)sysconf(_SC_PAGESIZE);
    return size;
}

/* RSS in pages (0: unknown). */
static unsigned long long rss_pages(long long pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%lld/statm", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char buf[128];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    unsigned long long size = 0, resident = 0;
    if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
        return 0;
    return resident;
}

static void trend_reset(fe_trend *t)
{
    t->n = t->head = t->sy = t->syy = t->sxy = 0;
    t->base = -1;
}

/* fastrr/pool/leak.py `leaking`: add the sample; over a full window, a fitted
 * climb of at least leak_min_climb, r^2 >= LEAK_MIN_FIT and the limit within
 * leak_horizon requests make a leak_trend event, and the window starts over.
 * O(1): the window's x are 0..n-1, so dropping the oldest sample takes Sy off Sxy. */
#define LEAK_MIN_FIT 0.9
static void trend_sample(fe_engine *e, fe_worker *w, unsigned long long pages)
{
    fe_trend *t = &w->trend;
    long long n = e->cfg.leak_window;
    if (t->base < 0)
        t->base = (long long)pages;
    long long y = (long long)pages - t->base;
    if (t->n < n) {
        t->ring[t->n] = y;
        t->sxy += t->n * y;
        t->n++;
        t->sy += y;
        t->syy += y * y;
        if (t->n < n)
            return;
    } else {
        long long old = t->ring[t->head];
        t->sy -= old;
        t->syy -= old * old;
        t->sxy -= t->sy;
        t->ring[t->head] = y;
        t->head = (t->head + 1) % n;
        t->sxy += (n - 1) * y;
        t->sy += y;
        t->syy += y * y;
    }
    /* doubles from here: n * Syy may not fit 64 bits; the sums themselves are exact */
    double dn = (double)n, sx = dn * (dn - 1) / 2, sxx = (dn - 1) * dn * (2 * dn - 1) / 6;
    double num = dn * (double)t->sxy - sx * (double)t->sy, den = dn * sxx - sx * sx;
    double var = dn * (double)t->syy - (double)t->sy * (double)t->sy;
    if (num <= 0 || den <= 0 || var <= 0)
        return;
    double rate = num / den * (double)page_size();
    if (rate * (dn - 1) < (double)e->cfg.leak_min_climb || num * num / (den * var) < LEAK_MIN_FIT)
        return;
    double rss = (double)pages * (double)page_size(), limit = (double)e->cfg.max_worker_memory;
    double left = rss < limit ? (limit - rss) / rate : 0;
    if (left > (double)e->cfg.leak_horizon)
        return;
    trend_reset(t);
    fe_event *ev = fe_event_new(FE_EV_LEAK_TREND);
    if (ev == NULL)
        return;
    ev->id = w->id;
    fe_ev_float(ev, "rate", rate);
    fe_ev_int(ev, "rss", (long long)rss);
    fe_ev_int(ev, "left", (long long)left);
    fe_push_event(e, ev);
}

/* pool.py release, after a request ended on w */
static void worker_release(fe_engine *e, fe_worker *w)
{
    w->last_used = e->now;
    if (w->stop_pending) {
        worker_send_stop(e, w);
        push_worker_event(e, FE_EV_STOP_SENT, w->id, NULL, 0);
        return;
    }
    if (w->max_jobs && w->execs >= w->max_jobs) {
        w->state = FE_W_RETIRED;
        push_worker_event(e, FE_EV_MAX_JOBS, w->id, NULL, 0);
        return;
    }
    if (e->cfg.max_worker_memory) {
        unsigned long long pages = rss_pages(w->id);
        if (pages * page_size() > e->cfg.max_worker_memory) {
            w->state = FE_W_RETIRED;
            push_worker_event(e, FE_EV_MAX_MEMORY, w->id, NULL, 0);
            return;
        }
        if (w->trend.ring != NULL && pages > 0)
            trend_sample(e, w, pages); /* the same sample: no second read */
    }
    worker_idle(e, w);
}

/* A lost worker's request that it never read: every byte written for it is
 * still in the pipe (FIONREAD counts a pipe's bytes from either end, and the
 * pipe outlives the process while our dup is open). Such a request never
 * ran, so it may go to another worker. The case: a worker answers and exits
 * (a PHP-side request limit, a memory guard, exit() after respond()); the
 * engine saw it free and gave it the next request before its exit was known.
 * Nothing else is written to a busy worker (control frames wait for the end
 * of its request), so the bytes in the pipe are the request's own. */
static int request_unread(const fe_worker *w, const fe_conn *c)
{
    if (!w->pipe || c->stream_started || w->req_p == NULL)
        return 0;
    size_t written = c->frame.len - w->req_left;
    int queued = 0;
    if (ioctl(w->wfd, FIONREAD, &queued) < 0 || queued < 0)
        return 0;
    return (size_t)queued >= written;
}

/* The request of a lost worker: sent to another worker when it was never read
 * (at most max_stop_retries times, as a $worker->stop() re-run), else 502. */
static void conn_lost_or_resend(fe_engine *e, fe_conn *c, long long pid, int unread, const char *reason,
                                size_t n)
{
    if (unread && !c->closed && !e->stopping && c->retries < e->cfg.max_stop_retries) {
        c->retries++;
        fe_event *ev = log_event(e, 10, "request sent to another worker: its worker exited before reading it");
        if (ev != NULL) {
            fe_ev_int(ev, "pid", pid);
            fe_ev_str(ev, "reason", reason, n, FE_F_UTF8);
            fe_push_event(e, ev);
        }
        pool_submit(e, c);
        return;
    }
    conn_worker_lost(e, c, pid, 502, reason, n);
}

/* worker.py _lost: the relay broke or the worker broke the protocol. */
static void worker_lost(fe_engine *e, fe_worker *w, const char *reason, size_t n)
{
    if (w->dead)
        return;
    fe_conn *c = w->conn;
    long long pid = w->id;
    fe_event *ev = worker_event(FE_EV_FAILED, pid, reason, n);
    if (ev != NULL) {
        ev->busy = c != NULL;  /* (the pool tells a worker that left idle from one lost mid-request) */
        ev->execs = w->execs;
        fe_push_event(e, ev);
    }
    int unread = c != NULL && request_unread(w, c);
    worker_forget(e, w);
    if (c != NULL)
        conn_lost_or_resend(e, c, pid, unread, reason, n);
}

/* Take the request off its worker (it is answered, retried or dropped). */
static fe_conn *worker_take_job(fe_worker *w)
{
    fe_conn *c = w->conn;
    w->conn = NULL;
    w->req_p = NULL;
    w->req_left = 0;
    if (c != NULL)
        c->worker = NULL;
    return c;
}

/* connection.py _worker_error */
static int conn_worker_error(fe_engine *e, fe_conn *c, fe_worker *w, const unsigned char *payload,
                             size_t plen, int stream)
{
    e->text.len = 0;
    if (fe_utf8_replace(&e->text, payload, plen) < 0)
        e->text.len = 0;
    fe_event *ev = log_event(e, 40, "worker error");
    if (ev != NULL) {
        fe_ev_str(ev, "error", e->text.data, e->text.len, FE_F_UTF8);
        fe_push_event(e, ev);
    }
    if (!stream) {
        worker_take_job(w);
        job_end(e, c);
    }
    if (c->stream_started) {
        conn_abort(e, c);
        return !stream;
    }
    fr_buf *detail = &e->form_err; /* free here: not in a form */
    detail->len = 0;
    if (e->cfg.debug && fe_html_escape(detail, (const unsigned char *)e->text.data, e->text.len) < 0)
        detail->len = 0;
    /* an error frame that says more frames follow: the worker still holds
     * the request, so this connection is closed after the answer and the
     * answer says so (Connection: close) */
    conn_respond_error(e, c, e->cfg.internal_error_code, detail->data, detail->len, !stream, "");
    return !stream;
}

/* connection.py on_worker_frame. Returns 1 when the request is over (the
 * job is already off the worker), 0 when more frames follow, -1 when the
 * worker was lost. */
static int conn_on_frame(fe_engine *e, fe_conn *c, fe_worker *w, unsigned flags, unsigned byte10,
                         const unsigned char *opts, size_t nopts, const unsigned char *payload,
                         size_t plen)
{
    if (byte10 & 0x04) /* PING */
        worker_send_ctl(e, w, pong_frame, sizeof(pong_frame));
    if (w->dead)
        return -1;
    int stream = byte10 & 0x01;
    if (c->closed) {
        if (stream && !c->stop_sent) {
            c->stop_sent = 1;
            worker_send_ctl(e, w, stream_stop_frame, sizeof(stream_stop_frame));
            if (w->dead)
                return -1;
        }
        if (!stream) {
            worker_take_job(w);
            job_end(e, c);
        }
        return !stream;
    }
    if (flags & 0x40) /* FLAG_ERROR */
        return conn_worker_error(e, c, w, payload, plen, stream);
    uint32_t ctx_len = nopts == 1 ? fr_get_le32(opts) : 0;
    if (nopts != 1 || ctx_len > plen) {
        fr_buf *m = &e->text;
        m->len = 0;
        if (FR_BUF_LIT(m, "options length should be equal 1 (body offset), got (") < 0)
            m->len = 0;
        for (size_t i = 0; i < nopts; i++)
            fe_buf_printf(m, i ? ", %lu" : "%lu", (unsigned long)fr_get_le32(opts + 4 * i));
        fe_buf_printf(m, nopts == 1 ? ",)" : ")");
        worker_lost(e, w, m->data, m->len);
        return -1;
    }
    int minor = c->req->http_minor;
    int is_head = req_is(c->req, "HEAD", 4);
    const unsigned char *body = payload + ctx_len;
    size_t blen = plen - ctx_len;
    if (c->stream_started) {
        if (!stream)
            conn_hold(e, c);
        if (!is_head) {
            struct iovec iov[4];
            int n = 0;
            char line[18];
            if (minor) {
                if (blen) {
                    iov[n].iov_base = line;
                    iov[n++].iov_len = fr_chunk_size_line(blen, line);
                    iov[n].iov_base = (void *)body;
                    iov[n++].iov_len = blen;
                    iov[n].iov_base = (void *)"\r\n";
                    iov[n++].iov_len = 2;
                }
                if (!stream) {
                    iov[n].iov_base = (void *)LAST_CHUNK;
                    iov[n++].iov_len = sizeof(LAST_CHUNK) - 1;
                }
            }
            else if (blen) {
                iov[n].iov_base = (void *)body;
                iov[n++].iov_len = blen;
            }
            if (n)
                conn_send(e, c, iov, n);
        }
        if (stream)
            return 0;
        int keep = c->req->keep_alive && minor == 1;
        worker_take_job(w);
        job_end(e, c);
        conn_finish(e, c, keep);
        return 1;
    }
    fr_resp_info info;
    char err[FR_RESP_ERRLEN];
    e->out.len = 0;
    int rc = fr_build_response_head(&e->resp, &e->out, payload, plen, ctx_len,
                                    c->req->keep_alive && !e->stopping, is_head, minor, stream,
                                    flags, date_now(e), &info, err);
    if (rc < 0) {
        if (rc == -2)
            snprintf(err, sizeof(err), "out of memory");
        size_t elen = strlen(err);
        fe_event *ev = log_event(e, 40, "invalid response from worker");
        if (ev != NULL) {
            fe_ev_int(ev, "pid", w->id);
            fe_ev_str(ev, "error", err, elen, FE_F_UTF8);
            fe_push_event(e, ev);
        }
        if (stream)
            c->stream_started = 1; /* keep reading the rest; the client gets the error now */
        else {
            worker_take_job(w);
            job_end(e, c);
        }
        conn_respond_error(e, c, e->cfg.internal_error_code, err, elen, 0, "");
        return !stream;
    }
    if (info.status < 200) {
        if (minor && e->out.len)
            conn_send1(e, c, e->out.data, e->out.len);
        return 0;
    }
    c->status = info.status;
    if (!stream)
        conn_hold(e, c);
    struct iovec iov[3] = {{e->out.data, e->out.len}, {(void *)body, info.body_len}, {(void *)"\r\n", 2}};
    conn_send(e, c, iov, info.chunk_body ? 3 : 2);
    if (stream) {
        c->stream_started = 1;
        return 0;
    }
    int keep = c->req->keep_alive;
    worker_take_job(w);
    job_end(e, c);
    conn_finish(e, c, keep);
    return 1;
}

/* worker.py _on_data / _on_job_frame for one complete frame. */
static void worker_frame(fe_engine *e, fe_worker *w, const unsigned char *h, size_t hsize,
                         const unsigned char *payload, size_t plen)
{
    unsigned flags = h[1], byte10 = h[10];
    fe_conn *c = w->conn;
    fr_buf *m = &e->text;
    if (c == NULL) {
        if (w->state == FE_W_STOPPING || w->state == FE_W_RETIRED)
            return; /* leftovers of a stopping worker are ignored */
        m->len = 0;
        fe_buf_printf(m, "unexpected frame from an idle worker (flags 0x%02x)", flags);
        worker_lost(e, w, m->data, m->len);
        return;
    }
    if (flags & 0x01) { /* FLAG_CONTROL */
        m->len = 0;
        if (FR_BUF_LIT(m, "unexpected control frame during a request: ") < 0 ||
            fe_repr_bytes(m, payload, plen < 200 ? plen : 200) < 0)
            m->len = 0;
        worker_lost(e, w, m->data, m->len);
        return;
    }
    size_t nopts = (hsize - 12) / 4;
    if (!(flags & 0x40) && nopts == 1 && fr_get_le32(h + 12) == 13 && plen == 13 &&
        memcmp(payload, STOP_PAYLOAD, 13) == 0) {
        /* $worker->stop(): replace this worker and run the request elsewhere */
        worker_take_job(w);
        w->state = FE_W_RETIRED;
        push_worker_event(e, FE_EV_STOP_REQUESTED, w->id, NULL, 0);
        c->retries++;
        if (c->closed)
            job_end(e, c);
        else if (c->retries > e->cfg.max_stop_retries) {
            static const char msg[] = "workers kept asking to stop; giving up on this request";
            conn_worker_lost(e, c, w->id, 502, msg, sizeof(msg) - 1);
        }
        else
            pool_submit(e, c);
        return;
    }
    int done = conn_on_frame(e, c, w, flags, byte10, h + 12, nopts, payload, plen);
    if (done < 0 || w->dead)
        return;
    if (done) {
        w->execs++;
        worker_release(e, w);
    }
    else
        w->exec_started = e->now; /* streams: exec_ttl applies to each chunk */
}

static void worker_bad_stream(fe_engine *e, fe_worker *w, int code, const unsigned char *p, size_t n,
                              size_t hsize, uint32_t plen)
{
    fr_buf *m = &e->text;
    m->len = 0;
    switch (code) {
    case FR_FH_COULD_NOT_OPEN:
        if (fe_utf8_replace(m, p, n < 200 ? n : 200) < 0)
            m->len = 0;
        while (m->len && (m->data[m->len - 1] == '\n' || m->data[m->len - 1] == '\r' ||
                          m->data[m->len - 1] == ' '))
            m->len--;
        break;
    case FR_FH_BAD_HL:
        fe_buf_printf(m, "invalid frame header: header length %u words (< 3)", (unsigned)(hsize / 4));
        break;
    case FR_FH_TOO_LARGE:
        fe_buf_printf(m, "frame payload too large: %lu bytes (max %llu)", (unsigned long)plen, MAX_FRAME);
        break;
    default:
        if (FR_BUF_LIT(m, "validation failed on the message sent to STDOUT: ") < 0 ||
            fe_repr_bytes(m, p, n < 200 ? n : 200) < 0)
            m->len = 0;
    }
    worker_lost(e, w, m->data, m->len);
}

static void worker_parse(fe_engine *e, fe_worker *w)
{
    while (!w->dead) {
        size_t avail = w->rlen - w->rpos;
        const unsigned char *p = w->rbuf + w->rpos;
        if (avail < 12) {
            if (avail && fr_frame_early_garbage(p, avail))
                worker_bad_stream(e, w, FR_FH_STDOUT, p, avail, 0, 0);
            return;
        }
        size_t hsize;
        uint32_t plen;
        int code = fr_frame_check(p, MAX_FRAME, &hsize, &plen);
        if (code != FR_FH_OK) {
            worker_bad_stream(e, w, code, p, avail, hsize, plen);
            return;
        }
        if (avail < hsize + plen) {
            /* make room for the whole frame, so the next reads fill it */
            if (rbuf_reserve(&w->rbuf, &w->rpos, &w->rlen, &w->rcap, hsize + plen - avail) < 0) {
                static const char msg[] = "out of memory for a frame";
                worker_lost(e, w, msg, sizeof(msg) - 1);
            }
            return;
        }
        w->rpos += hsize + plen;
        worker_frame(e, w, p, hsize, p + hsize, plen);
    }
}

static void worker_readable(fe_engine *e, fe_worker *w)
{
    for (int round = 0; round < 64 && !w->dead; round++) {
        if (rbuf_reserve(&w->rbuf, &w->rpos, &w->rlen, &w->rcap, 4096) < 0) {
            static const char msg[] = "out of memory";
            worker_lost(e, w, msg, sizeof(msg) - 1);
            return;
        }
        size_t space = w->rcap - w->rlen;
        if (space > WORKER_READ && w->rlen - w->rpos < 12)
            space = WORKER_READ;
        ssize_t r = read(w->rfd, w->rbuf + w->rlen, space);
        if (r > 0) {
            w->rlen += (size_t)r;
            worker_parse(e, w);
            if (!w->dead)
                rbuf_shrink(&w->rbuf, &w->rpos, &w->rlen, &w->rcap);
            if ((size_t)r < space)
                return;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        char msg[128];
        int n = r == 0 ? snprintf(msg, sizeof(msg), "relay closed by the worker (EOF)")
                       : snprintf(msg, sizeof(msg), "read failed: %s", strerror(errno));
        worker_lost(e, w, msg, (size_t)n);
        return;
    }
}

/* pool.py _tick, exec_ttl part + worker.py fail_job: the answer waits until
 * the process is gone (remove_worker) or doomed_wait passed. */
static void worker_exec_ttl(fe_engine *e, fe_worker *w)
{
    fe_conn *c = worker_take_job(w);
    long long pid = w->id;
    e->text.len = 0;
    fe_buf_printf(&e->text, "exec_ttl (%g", e->cfg.exec_ttl);
    FR_BUF_LIT(&e->text, "s) exceeded");
    worker_forget(e, w);
    push_worker_event(e, FE_EV_EXEC_TTL, pid, e->text.data, e->text.len);
    if (c == NULL)
        return;
    free(c->doomed_reason);
    c->doomed_reason = malloc(e->text.len + 1);
    if (c->doomed_reason != NULL) {
        memcpy(c->doomed_reason, e->text.data, e->text.len);
        c->doomed_reason[e->text.len] = '\0';
    }
    c->job = FE_JOB_DOOMED;
    c->doomed_status = 504;
    c->doomed_pid = pid;
    c->doomed_until = e->now + e->cfg.doomed_wait;
    /* the wait queue links are free while doomed: keep them in their own list */
    c->qprev = NULL;
    c->qnext = NULL;
    c->dnext = NULL;
    e->ndoomed++;
}

static void answer_doomed(fe_engine *e, fe_conn *c)
{
    const char *reason = c->doomed_reason ? c->doomed_reason : "exec_ttl exceeded";
    e->ndoomed--;
    c->job = FE_JOB_RUNNING; /* so job_end in conn_worker_lost counts it once */
    conn_worker_lost(e, c, c->doomed_pid, c->doomed_status, reason, strlen(reason));
}

/* Answer the doomed requests of `pid` (pid < 0: those whose wait is over). */
static void answer_doomed_for(fe_engine *e, long long pid)
{
    if (e->ndoomed == 0)
        return;
    /* Doomed connections are found through the workers' old ids: scan the
     * connections (live ones) and the closed ones still referenced by a
     * doomed job, kept on e->doomed. */
    fe_conn **pp = &e->doomed;
    while (*pp) {
        fe_conn *c = *pp;
        if (c->job == FE_JOB_DOOMED && (pid < 0 ? e->now >= c->doomed_until : c->doomed_pid == pid)) {
            *pp = c->qnext;
            c->qnext = NULL;
            answer_doomed(e, c);
            continue;
        }
        pp = &c->qnext;
    }
}

static void doom(fe_engine *e, fe_worker *w)
{
    fe_conn *c = w->conn;
    worker_exec_ttl(e, w);
    if (c != NULL && c->job == FE_JOB_DOOMED) {
        c->qnext = e->doomed;
        e->doomed = c;
    }
}

/* =============================================================== drained */

static void check_drained(fe_engine *e)
{
    if (!e->stopping || e->drained_sent || e->in_flight > 0)
        return;
    for (fe_conn *c = e->conns; c; c = c->next)
        if (c->wlen > c->wpos)
            return;
    e->drained_sent = 1;
    fe_event *ev = fe_event_new(FE_EV_DRAINED);
    fe_push_event(e, ev);
}

/* ================================================================= timers */

static int timers_needed(fe_engine *e)
{
    if (e->nconns || e->nqueued || e->ndoomed || e->accept_paused)
        return 1;
    for (fe_worker *w = e->workers; w; w = w->next)
        if (w->state == FE_W_BUSY)
            return 1;
    return 0;
}

static void tick(fe_engine *e)
{
    e->next_tick = e->now + TICK;
    /* pool.py _tick: allocate_timeout (queue order = age order) */
    double deadline = e->now - e->cfg.allocate_timeout;
    while (e->queue_head && e->queue_head->queued_at <= deadline) {
        fe_conn *c = queue_pop(e);
        fr_buf *m = &e->text;
        m->len = 0;
        fe_buf_printf(m, "no free worker within allocate_timeout (%g", e->cfg.allocate_timeout);
        FR_BUF_LIT(m, "s); busy workers: [");
        int first = 1;
        for (fe_worker *w = e->workers; w; w = w->next) {
            if (w->conn == NULL)
                continue;
            fe_buf_printf(m, first ? "%lld" : ", %lld", w->id);
            first = 0;
        }
        FR_BUF_LIT(m, "]");
        conn_no_worker(e, c, m->data, m->len);
    }
    if (e->cfg.exec_ttl > 0) {
        fe_worker *next;
        for (fe_worker *w = e->workers; w; w = next) {
            next = w->next;
            if (w->conn != NULL && e->now - w->exec_started > e->cfg.exec_ttl)
                doom(e, w);
        }
    }
    answer_doomed_for(e, -1);
    if (e->accept_paused && e->now >= e->accept_resume && e->listen_fd >= 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_LISTEN};
        if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->listen_fd, &ev) == 0)
            e->accept_paused = 0;
    }
    /* server.py _tick: connection deadlines, every CONN_CHECK */
    if (e->now >= e->next_conn_check) {
        e->next_conn_check = e->now + CONN_CHECK;
        fe_conn *next;
        for (fe_conn *c = e->conns; c; c = next) {
            next = c->next;
            if (c->hold_output && e->now >= c->hold_until)
                conn_release(e, c);
            if (!c->fd_closed)
                conn_check_deadline(e, c);
            if (!c->fd_closed)
                fe_conn_release_buffers(c);
        }
    }
}

/* =============================================================== commands */

static long long cmd_add_worker(fe_engine *e, fe_cmd *cmd)
{
    fe_worker *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return -ENOMEM;
    w->rfd = fcntl(cmd->rfd, F_DUPFD_CLOEXEC, 3);
    if (w->rfd < 0) {
        long long err = -errno;
        free(w);
        return err;
    }
    if (cmd->wfd == cmd->rfd)
        w->wfd = w->rfd;
    else if ((w->wfd = fcntl(cmd->wfd, F_DUPFD_CLOEXEC, 3)) < 0) {
        long long err = -errno;
        close(w->rfd);
        free(w);
        return err;
    }
    fcntl(w->rfd, F_SETFL, fcntl(w->rfd, F_GETFL) | O_NONBLOCK);
    fcntl(w->wfd, F_SETFL, fcntl(w->wfd, F_GETFL) | O_NONBLOCK);
    struct stat st;
    w->pipe = w->wfd != w->rfd && fstat(w->wfd, &st) == 0 && S_ISFIFO(st.st_mode);
    w->id = cmd->id;
    w->max_jobs = cmd->max_jobs;
    trend_reset(&w->trend);
    if (e->cfg.leak_window > 0 && e->cfg.max_worker_memory &&
        (w->trend.ring = calloc((size_t)e->cfg.leak_window, sizeof(long long))) == NULL) {
        close(w->rfd);
        if (w->wfd != w->rfd)
            close(w->wfd);
        free(w);
        return -ENOMEM;
    }
    w->rmask = EPOLLIN;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag(w, TAG_WREAD)};
    int rc = epoll_ctl(e->epfd, EPOLL_CTL_ADD, w->rfd, &ev);
    if (rc == 0 && w->wfd != w->rfd) {
        struct epoll_event wev = {.events = 0, .data.u64 = tag(w, TAG_WWRITE)};
        rc = epoll_ctl(e->epfd, EPOLL_CTL_ADD, w->wfd, &wev);
    }
    if (rc < 0) {
        long long err = -errno;
        close(w->rfd);
        if (w->wfd != w->rfd)
            close(w->wfd);
        free(w->trend.ring);
        free(w);
        return err;
    }
    w->prev = e->workers_tail;
    if (e->workers_tail)
        e->workers_tail->next = w;
    else
        e->workers = w;
    e->workers_tail = w;
    worker_idle(e, w);
    return 0;
}

/* Worker.stop(): 0 the stop frame went out, 1 it goes after the request
 * running now, -1 unknown worker. */
static long long cmd_stop_worker(fe_engine *e, long long id)
{
    fe_worker *w = worker_find(e, id);
    if (w == NULL)
        return -1;
    switch (w->state) {
    case FE_W_IDLE:
        free_stack_remove(e, w);
        worker_send_stop(e, w);
        return 0;
    case FE_W_BUSY:
        w->stop_pending = 1;
        return 1;
    case FE_W_RETIRED:
        worker_send_stop(e, w);
        return 0;
    default:
        return 0;
    }
}

static fe_conn *find_upload(fe_engine *e, unsigned long long token)
{
    if (token == 0)
        return NULL;
    for (fe_conn *c = e->conns; c; c = c->next)
        if (c->upload == token)
            return c;
    return NULL;
}

static long long cmd_upload(fe_engine *e, fe_cmd *cmd)
{
    if (cmd->op == FE_CMD_UPLOAD_RELEASE) {
        for (fe_conn *h = e->conns; h; h = h->next) {
            if (h->hold_output && h->hold_token == (unsigned long long)cmd->id) {
                conn_release(e, h);
                return 1;
            }
        }
        return 0;
    }
    fe_conn *c = find_upload(e, (unsigned long long)cmd->id);
    if (c == NULL)
        return 0;
    switch (cmd->op) {
    case FE_CMD_UPLOAD_GO:
        if (c->upload_state == FE_UP_WAIT_GO)
            c->upload_state = FE_UP_STREAM;
        break;
    case FE_CMD_UPLOAD_ACK: {
        size_t n = (size_t)cmd->max_jobs;
        c->upload_unacked = n > c->upload_unacked ? 0 : c->upload_unacked - n;
        break;
    }
    case FE_CMD_UPLOAD_DONE:
        if (c->upload_state != FE_UP_WAIT_DONE)
            return 0;
        c->up_fields.len = c->up_files.len = 0;
        if (fr_buf_append(&c->up_fields, cmd->text, cmd->text_len) < 0 ||
            (cmd->text2 != NULL && fr_buf_append(&c->up_files, cmd->text2, cmd->text2_len) < 0)) {
            conn_abort(e, c);
            return 0;
        }
        c->up_has_files = cmd->text2 != NULL && cmd->text2_len > 0;
        c->upload_state = FE_UP_READY;
        break;
    case FE_CMD_UPLOAD_FAIL:
        conn_reject(e, c, cmd->status, cmd->text, cmd->text_len);
        return 1;
    case FE_CMD_UPLOAD_RELEASE:
        return 0; /* found by hold_token, below */
    default:
        return 0;
    }
    conn_process(e, c);
    return 1;
}

/* A worker held after a request (max_memory) goes back to work. */
/* Free workers take queued requests while the active limit allows. Without
 * a limit the queue only fills when no worker is free, so there is nothing to
 * do; with one, a slot also frees when a busy worker is lost, killed or held
 * (max_jobs), none of which passes through worker_idle: the loop calls this
 * once per turn. */
static void dispatch_queue(fe_engine *e)
{
    while (e->nfree > 0 && e->queue_head != NULL && under_active_limit(e)) {
        fe_conn *c = queue_pop(e);
        worker_exec(e, e->free_stack[--e->nfree], c);
    }
}

/* A new limit; a higher one (or none) lets free workers take queued requests now. */
static void cmd_set_active_limit(fe_engine *e, long long limit)
{
    e->active_limit = limit > 0 ? limit : 0;
    dispatch_queue(e);
}

static long long cmd_resume_worker(fe_engine *e, long long id)
{
    fe_worker *w = worker_find(e, id);
    if (w == NULL || w->state != FE_W_RETIRED)
        return 0;
    worker_idle(e, w);
    return 1;
}

static long long cmd_remove_worker(fe_engine *e, long long id, const char *reason, size_t n)
{
    fe_worker *w = worker_find(e, id);
    long long known = w != NULL;
    /* Its process is gone, but the frames it wrote before it went may still be
     * in the pipe (an answer, then exit()): read them first, so a complete
     * answer reaches its client; only an unfinished request gets the 502. */
    if (w != NULL && w->conn != NULL)
        worker_readable(e, w);
    if (w != NULL && !w->dead) {
        int unread = w->conn != NULL && request_unread(w, w->conn);
        fe_conn *c = worker_take_job(w);
        worker_forget(e, w);
        if (c != NULL)
            conn_lost_or_resend(e, c, id, unread, reason, n);
    }
    answer_doomed_for(e, id);
    return known;
}

static void cmd_stop_accepting(fe_engine *e)
{
    if (e->listen_fd >= 0) {
        if (!e->accept_paused)
            epoll_ctl(e->epfd, EPOLL_CTL_DEL, e->listen_fd, NULL);
        e->listen_fd = -1;
        e->accept_paused = 0;
    }
    e->stopping = 1;
    fe_conn *next;
    for (fe_conn *c = e->conns; c; c = next) {
        next = c->next;
        if (!c->busy)
            conn_close(e, c);
    }
    check_drained(e);
}

static void cmd_abort_connections(fe_engine *e)
{
    fe_conn *next;
    for (fe_conn *c = e->conns; c; c = next) {
        next = c->next;
        conn_abort(e, c);
    }
}

static void cmd_stats(fe_engine *e, fe_stats *st)
{
    st->connections = e->nconns;
    st->in_flight = e->in_flight;
    st->queued = e->nqueued;
    st->accepted = e->accepted;
    st->requests = e->requests;
    st->detached = e->detached;
    st->conn_allocs = e->conn_allocs;
    st->conn_buffer_bytes = 0;
    for (fe_conn *c = e->conns; c; c = c->next)
        st->conn_buffer_bytes += (long long)fe_conn_buffer_bytes(c);
    st->pool_bytes = (long long)(fe_pool_bytes(&e->heads) + fe_pool_bytes(&e->frames));
    st->trims = e->trims;
    size_t n = 0;
    for (fe_worker *w = e->workers; w; w = w->next)
        n++;
    st->workers = n ? calloc(n, sizeof(*st->workers)) : NULL;
    st->nworkers = st->workers ? n : 0;
    size_t i = 0;
    for (fe_worker *w = e->workers; w && i < st->nworkers; w = w->next, i++) {
        st->workers[i].id = w->id;
        st->workers[i].state = w->state;
        st->workers[i].execs = w->execs;
        /* a busy worker is not idle: idle_ttl must not see it as such */
        st->workers[i].last_used = w->state == FE_W_BUSY ? e->now : w->last_used;
        st->workers[i].exec_started = w->exec_started;
    }
}

static void run_commands(fe_engine *e)
{
    uint64_t v;
    ssize_t r = read(e->cmd_fd, &v, sizeof(v));
    (void)r;
    pthread_mutex_lock(&e->mu);
    fe_cmd *cmds = e->cmd_head;
    e->cmd_head = e->cmd_tail = NULL;
    pthread_mutex_unlock(&e->mu);
    for (fe_cmd *c = cmds; c; c = c->next) {
        switch (c->op) {
        case FE_CMD_LISTEN: {
            e->listen_fd = c->rfd;
            struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_LISTEN};
            c->result = epoll_ctl(e->epfd, EPOLL_CTL_ADD, c->rfd, &ev) == 0 ? 0 : -errno;
            if (c->result < 0)
                e->listen_fd = -1;
            break;
        }
        case FE_CMD_ADD_WORKER: c->result = cmd_add_worker(e, c); break;
        case FE_CMD_STOP_WORKER: c->result = cmd_stop_worker(e, c->id); break;
        case FE_CMD_RESUME_WORKER: c->result = cmd_resume_worker(e, c->id); break;
        case FE_CMD_REMOVE_WORKER: c->result = cmd_remove_worker(e, c->id, c->text, c->text_len); break;
        case FE_CMD_STOP_ACCEPTING: cmd_stop_accepting(e); break;
        case FE_CMD_ABORT_CONNECTIONS: cmd_abort_connections(e); break;
        case FE_CMD_STATS: cmd_stats(e, c->stats); break;
        case FE_CMD_METRICS:
            if (e->metrics != NULL)
                memcpy(c->metrics, e->metrics, sizeof(*e->metrics));
            c->result = e->metrics != NULL;
            break;
        case FE_CMD_QUIT: e->quit = 1; break;
        case FE_CMD_UPLOAD_GO:
        case FE_CMD_UPLOAD_ACK:
        case FE_CMD_UPLOAD_DONE:
        case FE_CMD_UPLOAD_FAIL:
        case FE_CMD_UPLOAD_RELEASE: c->result = cmd_upload(e, c); break;
        case FE_CMD_STATIC: c->result = cmd_static(e, c); break;
        case FE_CMD_SET_ACTIVE_LIMIT: cmd_set_active_limit(e, c->id); break;
        default: break;
        }
    }
    fe_cmd *owned = NULL, *next;
    pthread_mutex_lock(&e->mu);
    for (fe_cmd *c = cmds; c; c = next) {
        next = c->next;
        if (c->owned) { /* nobody waits for it */
            c->next = owned;
            owned = c;
        }
        else
            c->done = 1; /* its caller may return (and drop it) once we unlock */
    }
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    while (owned) {
        next = owned->next;
        free(owned);
        owned = next;
    }
}

/* ============================================================== the loop */

static void free_dead(fe_engine *e)
{
    while (e->dead_conns) {
        fe_conn *c = e->dead_conns;
        e->dead_conns = c->dnext;
        conn_drop_upload(e, c); /* the client left mid-upload, or its job ended */
        conn_free(e, c);
    }
    while (e->dead_workers) {
        fe_worker *w = e->dead_workers;
        e->dead_workers = w->dnext;
        worker_free(w);
    }
}

static void shutdown_all(fe_engine *e)
{
    cmd_abort_connections(e);
    while (e->workers) {
        fe_worker *w = e->workers;
        fe_conn *c = worker_take_job(w);
        worker_forget(e, w);
        if (c != NULL)
            job_end(e, c);
    }
    while (e->doomed) {
        fe_conn *c = e->doomed;
        e->doomed = c->qnext;
        c->qnext = NULL;
        e->ndoomed--;
        c->job = FE_JOB_RUNNING;
        job_end(e, c);
    }
    free_dead(e);
}

void *fe_thread_main(void *arg)
{
    fe_engine *e = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are the main thread's */
    pthread_once(&frames_once, init_frames);
    struct epoll_event evs[MAX_EVENTS];
    e->now = mono();
    e->next_tick = e->now + TICK;
    e->next_conn_check = e->now + CONN_CHECK;
    while (!e->quit) {
        int timeout = -1;
        if (timers_needed(e)) {
            double left = e->next_tick - e->now;
            timeout = left <= 0 ? 0 : (int)(left * 1000) + 1;
        }
        int n = epoll_wait(e->epfd, evs, MAX_EVENTS, timeout);
        e->now = mono();
        for (int i = 0; i < n; i++) {
            uint64_t d = evs[i].data.u64;
            uint32_t what = evs[i].events;
            void *p = (void *)(uintptr_t)(d & ~(uint64_t)TAG_MASK);
            switch ((unsigned)(d & TAG_MASK)) {
            case TAG_LISTEN:
                do_accept(e);
                break;
            case TAG_CMD:
                run_commands(e);
                break;
            case TAG_CONN: {
                fe_conn *c = p;
                if (c->fd_closed)
                    break;
                if (what & (EPOLLIN | EPOLLHUP | EPOLLERR))
                    conn_readable(e, c);
                if (!c->fd_closed && (what & (EPOLLOUT | EPOLLERR)) &&
                    (c->wlen > c->wpos || c->st_state == FE_ST_SEND))
                    conn_writable(e, c);
                break;
            }
            case TAG_WREAD: {
                fe_worker *w = p;
                if (w->dead)
                    break;
                if (what & (EPOLLIN | EPOLLHUP | EPOLLERR))
                    worker_readable(e, w);
                if (!w->dead && (what & EPOLLOUT))
                    worker_flush(e, w);
                break;
            }
            case TAG_WWRITE: {
                fe_worker *w = p;
                if (w->dead)
                    break;
                if (w->req_left || w->ctl_pos < w->ctl.len)
                    worker_flush(e, w);
                else if (what & (EPOLLERR | EPOLLHUP)) {
                    /* The reader went away but nothing is due: leave the
                     * verdict to the read side (a last response frame may
                     * still be in the pipe). */
                    epoll_ctl(e->epfd, EPOLL_CTL_DEL, w->wfd, NULL);
                    w->wmask = UINT32_MAX;
                }
                break;
            }
            default:
                break;
            }
        }
        if (e->now >= e->next_tick)
            tick(e);
        if (e->active_limit > 0 && e->queue_head != NULL && e->nfree > 0)
            dispatch_queue(e);
        if (e->loglines.len)
            fe_flush_access_lines(e);
        free_dead(e);
        if (e->conn_peak - e->nconns >= FE_TRIM_AFTER) /* (after free_dead: the memory is free now) */
            fe_trim_after_burst(e);
    }
    shutdown_all(e);
    fe_flush_access_lines(e);
    return NULL;
}
