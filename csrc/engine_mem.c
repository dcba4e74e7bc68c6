/* What a connection keeps between requests, and giving memory back
 * (csrc/README.md, "Connection memory"). Engine thread only.
 *
 * An idle keep-alive connection owns its fe_conn and nothing else:
 *  - its reads borrow the engine's scratch for one readable event
 *    (engine_loop.c conn_readable); only unconsumed bytes get a buffer of
 *    the connection's own;
 *  - the request head block and the worker frame are lent from the bounded
 *    stacks below for one request;
 *  - whatever else a request left (a write remainder, a decoded chunked
 *    body, multipart trees, an own input buffer) goes with the connection
 *    scan once the connection is idle;
 *  - after a burst of closes the freed memory is handed back to the system.
 */
#include "engine.h"

#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* The head block and the frame are needed from a request's head to its
 * answer only: taken here when a request begins, given back in
 * conn_finish. A busy keep-alive connection gets the buffer it just gave
 * back (LIFO: warm in cache, no malloc per request), an idle one holds
 * none, and the buffers of a burst are not left as freed holes between
 * the structs of the connections that stay (which made each later burst
 * touch new pages). Buffers over FE_POOL_MAX_CAP are freed, not kept. */
void fe_pool_take(fe_bufpool *p, fr_buf *b)
{
    if (b->cap == 0 && p->n > 0)
        *b = p->b[--p->n];
    b->len = 0;
}

void fe_pool_give(fe_bufpool *p, fr_buf *b)
{
    if (b->cap == 0)
        return;
    if (b->cap > FE_POOL_MAX_CAP || p->n == FE_POOL_SIZE) {
        fr_buf_trim(b, 0);
        return;
    }
    p->b[p->n++] = *b;
    b->data = NULL;
    b->len = b->cap = 0;
}

size_t fe_pool_bytes(const fe_bufpool *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++)
        n += p->b[i].cap;
    return n;
}

void fe_pool_free(fe_bufpool *p)
{
    while (p->n > 0)
        fr_buf_trim(&p->b[--p->n], 0);
}

/* What a connection holds beyond its fe_conn (stats: conn_buffer_bytes);
 * the borrowed scratch is not its own. */
size_t fe_conn_buffer_bytes(const fe_conn *c)
{
    return (c->rbuf_shared ? 0 : c->rcap) + c->wcap + c->reqmem.cap + c->cbody.cap + c->frame.cap +
           c->up_fields.cap + c->up_files.cap;
}

/* The connection scan, for a connection between requests with nothing
 * pending: free what its last request left. Not at the end of every
 * request, so a connection that is busy again at once pays nothing. */
size_t fe_conn_release_buffers(fe_conn *c)
{
    if (c->busy || c->req != NULL || c->job != FE_JOB_NONE || c->rlen > c->rpos ||
        c->wlen > c->wpos || c->upload || c->st_state != FE_ST_NONE || c->hold_output ||
        c->rbuf_shared || c->chunked_on)
        return 0;
    size_t n = fe_conn_buffer_bytes(c);
    if (n == 0)
        return 0;
    free(c->rbuf);
    c->rbuf = NULL;
    c->rpos = c->rlen = c->rcap = 0;
    free(c->wbuf);
    c->wbuf = NULL;
    c->wpos = c->wlen = c->wcap = 0;
    fr_buf_trim(&c->reqmem, 0);
    fr_buf_trim(&c->cbody, 0);
    fr_buf_trim(&c->frame, 0);
    fr_buf_trim(&c->up_fields, 0);
    fr_buf_trim(&c->up_files, 0);
    return n;
}

/* Called at the end of a loop turn once FE_TRIM_AFTER connections closed
 * since the peak: when fewer than half of the peak are left, the burst is
 * over and its memory goes back to the system. glibc returns a thread
 * arena's free pages only from the top of its heaps, so without this the
 * RSS stays at the burst's peak (measured: +7.4 MB after 10,000 closed).
 * Steady churn (the count holding) never gets here: its memory is reused. */
void fe_trim_after_burst(fe_engine *e)
{
    if (e->nconns > e->conn_peak / 2)
        return;
    e->conn_peak = e->nconns;
    e->trims++;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}
