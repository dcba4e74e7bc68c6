/* The HTTP/1.1 engine: the per-connection data path in C, in a thread of
 * its own that never holds the GIL (see csrc/README.md, "The engine").
 *
 * Threads and ownership:
 *  - The engine thread owns every client socket, the dups of the worker
 *    fds it was given, and all fe_conn / fe_worker memory. Nothing in
 *    them is touched by another thread.
 *  - The Python side talks to it only through two queues under `mu`:
 *    commands (Python -> engine, woken by cmd_fd, each command waited for
 *    by its caller with the GIL released) and events (engine -> Python,
 *    woken by event_fd, drained by poll_events()).
 *  - The listening socket belongs to Python; the engine only accepts on it
 *    between listen() and stop_accepting() (both synchronous).
 */
#ifndef FASTRR_ENGINE_H
#define FASTRR_ENGINE_H

#include "context.h"
#include "hotpath.h"
#include "proto.h"
#include "http_parser.h"
#include "request.h"

#include <pthread.h>

/* ------------------------------------------------------------------ config */

enum { FE_LOG_CONSOLE = 0, FE_LOG_JSON, FE_LOG_RAW };
#define FE_MAX_LOG_FDS 8

typedef struct {
    size_t max_header_size;
    unsigned long long max_body; /* bytes */
    long long max_request_size;  /* MB, for the 413 text */
    double read_timeout, idle_timeout, allocate_timeout, exec_ttl, linger;
    double doomed_wait;          /* exec_ttl answer waits for the exit at most this */
    long long max_queue_size;
    int internal_error_code;
    int debug;                   /* pool.debug: error details reach the client */
    int raw_body;
    int raw_forms;               /* the workers asked for PHP's SAPI rules (set_raw_forms; atomic) */
    int log_level;               /* events for log lines below it are not made */
    int access_log;              /* 0 none, 1 "http log", 2 "http access log" */
    int max_stop_retries;
    int proto;                   /* http.codec proto: http.v1.Request contexts */
    int metrics;                 /* http.middleware lists http_metrics: count requests (fe_metrics) */
    /* access lines written by the engine itself (engine_log.c); none: events */
    int log_encoding;            /* FE_LOG_* */
    int nlog_fds;
    int log_fds[FE_MAX_LOG_FDS];
    size_t pipeline_limit;
    unsigned long long max_worker_memory; /* bytes, 0: no check */
    /* Leak-trend recycling (fastrr/pool/leak.py): the RSS samples taken for
     * max_worker_memory are fitted over the last leak_window requests; 0: off. */
    long long leak_window;
    unsigned long long leak_min_climb; /* bytes over the window */
    long long leak_horizon;            /* requests until the limit */
    /* http.middleware: [static] (engine_static.c): NULL: off. The root is
     * StaticMiddleware.root (realpath'd by Python); forbid / allow are the
     * lowercased extensions, each NUL-terminated, one after the other. */
    char *static_root;
    size_t static_root_len;
    char *static_forbid, *static_allow;
    size_t static_nforbid, static_nallow;
    /* detach_paths (engine_pool.py): a GET without a body whose path (the
     * target before '?', exact bytes) is one of these is handed to Python
     * as a "detach" event instead of going to PHP. ndetach 0: off, and the
     * check is skipped; the lengths bound it before any memcmp. One
     * allocation: the spans, then the bytes they point to. */
    struct fe_span { const unsigned char *p; size_t n; } *detach;
    size_t ndetach, detach_min, detach_max;
} fe_config;

/* ------------------------------------------------------------------ events */

enum {
    FE_EV_FAILED = 1,     /* id, text, io: worker lost (EOF / I/O error, or protocol error) */
    FE_EV_STOP_REQUESTED, /* id: worker sent {"stop":true}; its request went elsewhere */
    FE_EV_EXEC_TTL,       /* id, text: exec_ttl passed; kill it */
    FE_EV_MAX_JOBS,       /* id: served max_jobs; retire it */
    FE_EV_MAX_MEMORY,     /* id: RSS over max_worker_memory after a request */
    FE_EV_STOP_SENT,      /* id: a deferred stop frame went out now */
    FE_EV_DRAINED,        /* stopping and nothing in flight any more */
    FE_EV_LOG,            /* level, text = message, fields */
    FE_EV_ACCESS,         /* one request done (fields for the access log) */
    FE_EV_UPLOAD_START,   /* id = upload token, field content_type: a multipart body begins */
    FE_EV_UPLOAD_DATA,    /* id, msg = the next body bytes (ack them with upload_ack) */
    FE_EV_UPLOAD_END,     /* id: the body is complete; answer upload_done / upload_fail */
    FE_EV_UPLOAD_DROP,    /* id: the request is over (or gone): remove its temp files */
    FE_EV_STATIC,         /* id = static token, msg = a RequestObject block: a file may be
                             there; answer static_serve / static_miss / static_abort */
    FE_EV_LEAK_TREND,     /* id, fields rate (bytes/request), rss, left (requests to the
                             limit): its RSS climbs steadily; the worker keeps serving */
    FE_EV_DETACH,         /* id = a dup of the client socket (fd_owned), msg = a RequestObject
                             block, field 0 = the bytes read after the head (FE_F_BYTES) */
};

enum { FE_F_INT, FE_F_FLOAT, FE_F_UTF8, FE_F_LATIN1, FE_F_NONE, FE_F_BYTES };

#define FE_MAX_FIELDS 12

typedef struct {
    const char *key; /* static */
    int kind;
    long long i;
    double d;
    char *s; /* owned (malloc) */
    size_t n;
} fe_field;

typedef struct fe_event {
    struct fe_event *next;
    int type, level;
    long long id;
    const char *text; /* static */
    char *msg;        /* owned text for FAILED / EXEC_TTL */
    size_t msg_len;
    int io;           /* FAILED: the relay broke (not a protocol error) */
    int busy;         /* FAILED: a request was on the worker */
    long long execs;  /* FAILED: requests the worker had completed */
    int fd_owned;     /* DETACH: id is an fd this event owns until Python took it
                         (fe_event_free closes it otherwise) */
    int nfields;
    fe_field fields[FE_MAX_FIELDS];
} fe_event;

/* ---------------------------------------------------------------- commands */

enum {
    FE_CMD_LISTEN = 1,
    FE_CMD_ADD_WORKER,
    FE_CMD_STOP_WORKER,
    FE_CMD_RESUME_WORKER,
    FE_CMD_REMOVE_WORKER,
    FE_CMD_STOP_ACCEPTING,
    FE_CMD_ABORT_CONNECTIONS,
    FE_CMD_STATS,
    FE_CMD_QUIT,
    FE_CMD_UPLOAD_GO,
    FE_CMD_UPLOAD_ACK,
    FE_CMD_UPLOAD_DONE,
    FE_CMD_UPLOAD_FAIL,
    FE_CMD_UPLOAD_RELEASE,
    FE_CMD_STATIC, /* status > 0 serve (text head, text2 body, rfd file), 0 miss, -1 abort */
    FE_CMD_SET_ACTIVE_LIMIT, /* id: at most this many workers run a request at once, 0: no limit */
    FE_CMD_METRICS,          /* copy the request metrics into cmd.metrics */
};

typedef struct {
    long long id;
    int state; /* FE_W_* */
    long long execs;
    double last_used, exec_started; /* exec_started 0: never ran a request */
} fe_worker_stat;

/* Request metrics (RoadRunner's http_metrics): per status 100..599, a count,
 * the sum of durations and a fixed-bucket histogram (rr_http_request_duration_seconds's
 * bounds), counted by the engine thread at the end of each request and copied out
 * only when Python scrapes them. */
#define FE_METRIC_BOUNDS 14
#define FE_METRIC_STATUS_MIN 100
#define FE_METRIC_STATUSES 500
typedef struct {
    unsigned long long count;
    unsigned long long buckets[FE_METRIC_BOUNDS + 1]; /* not cumulative; the last is +Inf */
    double sum;                                       /* seconds */
} fe_status_metric;

typedef struct {
    fe_status_metric by_status[FE_METRIC_STATUSES];
    unsigned long long no_free_workers; /* 503 + No-Workers: true answers */
} fe_metrics;

extern const double fe_metric_bounds[FE_METRIC_BOUNDS];

typedef struct {
    long long connections, in_flight, queued, accepted, requests, detached;
    long long conn_allocs;        /* fe_conn structs alive (open or waiting for their job) */
    long long conn_buffer_bytes;  /* capacity of the open connections' own buffers */
    long long pool_bytes;         /* request buffers kept for the next requests (bounded) */
    long long trims;              /* memory given back after a burst of closes */
    size_t nworkers;
    fe_worker_stat *workers; /* malloc, freed by the caller */
} fe_stats;

typedef struct fe_cmd {
    struct fe_cmd *next;
    int op;
    long long id;
    int rfd, wfd;
    long long max_jobs;
    const char *text; /* borrowed: the caller waits */
    size_t text_len;
    const char *text2; /* borrowed; NULL: none */
    size_t text2_len;
    int status;
    long long offset, count; /* FE_CMD_STATIC: the file's part to send */
    long long result;
    fe_stats *stats;
    fe_metrics *metrics; /* FE_CMD_METRICS: filled by the engine thread */
    int done;
    int owned; /* posted without waiting: malloc'd with its texts, freed by the engine */
} fe_cmd;

/* ------------------------------------------------------------- connections */

typedef struct fe_worker fe_worker;

enum { FE_JOB_NONE = 0, FE_JOB_QUEUED, FE_JOB_RUNNING, FE_JOB_DOOMED };

typedef struct fe_conn {
    int fd;
    uint32_t mask; /* epoll interest now */
    struct fe_conn *next, *prev;   /* all connections */
    struct fe_conn *qnext, *qprev; /* wait queue */
    struct fe_conn *dnext;         /* freed at the end of the loop turn */
    fe_worker *worker;             /* the worker running its request */
    int job;                       /* FE_JOB_* */
    char remote[64];
    size_t remote_len;
    char peer[80];
    size_t peer_len;
    /* input: unconsumed bytes are rbuf[rpos, rlen) */
    unsigned char *rbuf;
    size_t rpos, rlen, rcap;
    /* the request being read or served: a RequestObject-shaped block */
    RequestObject *req;
    fr_buf reqmem;
    long long body_left; /* Content-Length bytes still to come; -1: none */
    int chunked_on;
    fr_chunked chunked;
    fr_buf cbody; /* decoded chunked body */
    fr_buf frame; /* the worker frame of the current request */
    int retries;
    double queued_at, deadline, started_at, started_wall;
    int status;
    /* multipart bodies go to Python (engine_pool.py) and come back as JSON */
    unsigned long long upload; /* token, 0: none */
    int upload_state;          /* FE_UP_* */
    size_t upload_unacked;     /* bytes sent to Python, not yet consumed */
    fr_buf up_fields, up_files;
    int up_has_files;
    /* the answer to an upload waits until Python removed its temp files */
    unsigned long long hold_token;
    double hold_until;
    /* exec_ttl: the answer held until the worker is gone */
    int doomed_status;
    long long doomed_pid;
    double doomed_until;
    char *doomed_reason;
    /* a static file (engine_static.c): Python answers, the engine sends */
    struct fe_conn *snext, *sprev; /* waiting for Python's answer */
    unsigned long long st_token;   /* 0: none */
    int st_state;                  /* FE_ST_* */
    int st_fd;                     /* FE_ST_SEND: our dup of the file */
    int st_keep;
    size_t st_consume;             /* request body bytes still at rbuf + rpos */
    long long st_off, st_left;
    /* output: unsent bytes are wbuf[wpos, wlen) */
    unsigned char *wbuf;
    size_t wpos, wlen, wcap;
    unsigned busy : 1, closed : 1, lingering : 1, processing : 1, paused_reading : 1,
        write_paused : 1, stream_started : 1, stop_sent : 1, close_after_flush : 1,
        shut_after_flush : 1, fd_closed : 1, dead : 1, upload_paused : 1, continue_pending : 1,
        hold_output : 1, detaching : 1, rbuf_shared : 1;
} fe_conn;

enum { FE_UP_NONE = 0, FE_UP_WAIT_GO, FE_UP_STREAM, FE_UP_WAIT_DONE, FE_UP_READY };
enum { FE_ST_NONE = 0, FE_ST_WAIT, FE_ST_SEND };

/* ----------------------------------------------------------------- workers */

enum {
    FE_W_IDLE = 0, /* in the free stack */
    FE_W_BUSY,     /* running a request */
    FE_W_RETIRED,  /* no more requests; waiting for Python's stop */
    FE_W_STOPPING, /* stop frame sent (or due when busy) */
};

/* A worker's RSS fit (fastrr/pool/leak.py LeakTrend, the same sums). */
typedef struct {
    long long *ring; /* cfg.leak_window samples, RSS pages - base; NULL: off */
    long long n, head, base, sy, syy, sxy;
} fe_trend;

struct fe_worker {
    long long id;
    int rfd, wfd; /* our dups; wfd == rfd for socket relays */
    uint32_t rmask, wmask;
    int state;
    int stop_pending; /* send the stop frame when its request ends */
    long long max_jobs, execs;
    double exec_started, last_used;
    fe_conn *conn;
    /* input: rbuf[rpos, rlen) */
    unsigned char *rbuf;
    size_t rpos, rlen, rcap;
    /* output: the rest of the request frame (in conn->frame), then ctl */
    const unsigned char *req_p;
    size_t req_left;
    fr_buf ctl;
    size_t ctl_pos;
    struct fe_worker *next, *prev; /* all workers, in the order they came */
    struct fe_worker *dnext;
    fe_trend trend;
    unsigned dead : 1;
    unsigned pipe : 1; /* wfd is a pipe: FIONREAD tells what the worker has not read */
};

/* ------------------------------------------------------------------ engine */

typedef struct {
    fr_buf decoded; /* the body as text */
    fr_buf arena;   /* decoded names and values */
    fr_buf pairs;   /* (name, value) offsets */
    fr_buf groups;  /* one per distinct name */
    fr_buf ghash;   /* name -> group */
    fr_buf nodes;   /* the tree */
    fr_buf nhash;   /* (parent, key) -> node */
    fr_buf segs;    /* one key split into its path */
    fr_buf run;     /* one percent-decoded ASCII run */
} fe_form_scratch;

/* Bounded stacks of request buffers (engine_loop.c pool_take / pool_give). */
#define FE_POOL_SIZE 256
#define FE_POOL_MAX_CAP (16 * 1024)
typedef struct {
    fr_buf b[FE_POOL_SIZE];
    size_t n;
} fe_bufpool;

/* The read scratch every connection reads into when it keeps no input of
 * its own (engine_loop.c conn_readable): its size is what one recv takes. */
#define FE_READ_SCRATCH (64 * 1024)

typedef struct fe_engine {
    fe_config cfg;
    int epfd, cmd_fd, event_fd, listen_fd;
    pthread_t thread;
    int thread_started, thread_done;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    fe_cmd *cmd_head, *cmd_tail;       /* under mu */
    fe_event *ev_head, *ev_tail;       /* under mu */
    /* ---- engine thread only from here on ---- */
    double now;
    time_t date_time;
    char date[FR_DATE_LEN];
    fe_conn *conns;           /* list of all connections */
    fe_conn *queue_head, *queue_tail;
    long long nconns, nqueued, in_flight, accepted, requests, ndoomed;
    long long detached;    /* connections handed to Python (detach_paths) */
    long long conn_allocs; /* fe_conn structs alive: calloc'd at accept, freed in free_dead */
    long long conn_peak;   /* most connections open since the last trim_after_burst */
    long long trims;       /* trim_after_burst calls */
    fe_worker *workers, *workers_tail;
    fe_worker **free_stack;
    size_t nfree, free_cap;
    long long active_limit; /* fastrr/pool/active_limit.py; 0: every free worker takes requests */
    fe_metrics *metrics;    /* cfg.metrics: allocated at init; NULL: not counted */
    fe_conn *dead_conns;
    fe_worker *dead_workers;
    fe_conn *doomed; /* exec_ttl answers waiting (linked by qnext) */
    int stopping, drained_sent, quit, accept_paused;
    unsigned long long upload_seq;
    fe_conn *static_wait;     /* connections waiting for a static answer (snext) */
    unsigned long long static_seq;
    fr_buf st_path, st_dec;   /* the file path being checked */
    double next_tick, next_conn_check, accept_resume;
    /* scratch */
    unsigned char *rscratch; /* FE_READ_SCRATCH bytes, lent to one connection at a time */
    fe_bufpool heads, frames; /* request head blocks, worker frames not in use */
    fr_head head;
    fr_resp_scratch resp;
    fr_buf out;  /* a response head / error response being built */
    fr_buf text; /* messages */
    fr_buf form_json;
    fr_buf form_err;
    fr_buf pb_scratch; /* cookies, for the protobuf context */
    fr_buf logline;    /* an access line being formatted */
    fr_buf loglines;   /* access lines of this loop turn, not written yet */
    fe_form_scratch form;
} fe_engine;

/* engine_loop.c */
void *fe_thread_main(void *arg);

/* engine_mem.c: what connections keep, and giving memory back. */
#define FE_TRIM_AFTER 1024 /* closes since the peak before fe_trim_after_burst looks */
void fe_pool_take(fe_bufpool *p, fr_buf *b);
void fe_pool_give(fe_bufpool *p, fr_buf *b);
size_t fe_pool_bytes(const fe_bufpool *p);
void fe_pool_free(fe_bufpool *p);
size_t fe_conn_buffer_bytes(const fe_conn *c);
size_t fe_conn_release_buffers(fe_conn *c);
void fe_trim_after_burst(fe_engine *e);
double fe_wall(void); /* time.time() */
/* engine_log.c: format and write the access line of c's request. 0 / -1. */
int fe_write_access_line(fe_engine *e, fe_conn *c);
void fe_flush_access_lines(fe_engine *e);
void fe_push_event(fe_engine *e, fe_event *ev);

/* events (engine_loop.c) */
fe_event *fe_event_new(int type);
void fe_event_free(fe_event *ev);
void fe_ev_int(fe_event *ev, const char *key, long long v);
void fe_ev_float(fe_event *ev, const char *key, double v);
void fe_ev_str(fe_event *ev, const char *key, const void *s, size_t n, int kind);
void fe_ev_none(fe_event *ev, const char *key);

/* engine_static.c: 1 when a regular file under http.static.dir may answer
 * this GET/HEAD (Python decides), 0 when it goes to PHP. */
int fe_static_candidate(fe_engine *e, const RequestObject *r);

/* engine_forms.c: an urlencoded body -> RoadRunner's JSON data tree, as
 * fastrr/http/forms.py does it. 0 ok (JSON appended to out); 1 the form is
 * invalid (reason in err); -1 no memory. */
int fe_form_json(fe_form_scratch *s, const unsigned char *body, size_t n, fr_buf *out,
                 fr_buf *err);
void fe_form_scratch_free(fe_form_scratch *s);

/* engine_text.c: texts exactly as the Python front writes them. */
/* bytes.decode("utf-8", "replace"), appended as UTF-8. */
int fe_utf8_replace(fr_buf *out, const unsigned char *s, size_t n);
/* repr(bytes) */
int fe_repr_bytes(fr_buf *out, const unsigned char *s, size_t n);
/* repr(str) of valid UTF-8 */
int fe_repr_str(fr_buf *out, const unsigned char *s, size_t n);
/* html.escape(s) */
int fe_html_escape(fr_buf *out, const unsigned char *s, size_t n);
int fe_buf_printf(fr_buf *out, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
