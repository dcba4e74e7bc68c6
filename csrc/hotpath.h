/* GIL-free cores of the parts, shared by the Python glue (which holds the
 * GIL) and the engine thread (engine*.c, which never does).
 *
 * Rules for everything declared here:
 *  - no Python object is touched and no Python API is called, apart from
 *    fr_buf's PyMem_Raw* allocator (thread-safe) and fr_no_memory() (which
 *    only sets MemoryError when the caller holds the GIL);
 *  - errors come back as return codes plus a static reason or a message
 *    written into a caller buffer, never as a Python exception;
 *  - scratch buffers are passed in by the caller, so two threads never
 *    share one (the Python glue keeps module-level ones, the engine its own).
 * The request-context encoders have their own header (context.h).
 */
#ifndef FASTRR_HOTPATH_H
#define FASTRR_HOTPATH_H

#include "fastrr.h"
#include <time.h>

/* ------------------------------------------------------ responses (response.c) */

#define FR_DATE_LEN 29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */
/* IMF-fixdate of t (RFC 9110 §5.6.7), no locale; writes exactly 29 bytes. */
void fr_format_http_date(time_t t, char *out);

typedef struct {
    fr_buf hdr;  /* "Name: value\r\n" lines from the worker */
    fr_buf name; /* one decoded header name */
    fr_buf val;  /* one decoded header value */
    fr_buf ents; /* protobuf contexts: the header table (proto.c) */
} fr_resp_scratch;

typedef struct {
    int status;
    /* After the head, send body_len bytes of the payload starting at
     * ctx_len, then "\r\n" if chunk_body (the body went out as one chunk
     * whose size line is already at the end of the head). */
    size_t body_len;
    int chunk_body;
} fr_resp_info;

#define FR_RESP_ERRLEN 200

/* The response head for a worker reply (`payload` = context || body):
 * appended to `head`. `codec` is the reply frame's flags: with FLAG_PROTO
 * (0x80) set the context is an http.v1.Response (proto.c), otherwise the
 * JSON object. `date` is FR_DATE_LEN bytes. Returns 0; -1 for a
 * reply the client cannot get (message in err, FR_RESP_ERRLEN bytes: the
 * text of the FrameError the Python API raises); -2 out of memory.
 * For a 1xx to an HTTP/1.0 client nothing is appended (it must not be sent). */
int fr_build_response_head(fr_resp_scratch *s, fr_buf *head, const unsigned char *payload,
                           size_t len, size_t ctx_len, int keep_alive, int head_request,
                           int minor, int stream, unsigned codec, const char *date,
                           fr_resp_info *out, char *err);
void fr_resp_scratch_trim(fr_resp_scratch *s, size_t keep);

/* "<hex size>\r\n" for a chunk of n > 0 bytes into out (at most 18 bytes). */
size_t fr_chunk_size_line(size_t n, char *out);

/* ---------------------------------------------------- chunked bodies (chunked.c) */

typedef struct {
    int state;
    unsigned long long size;  /* current chunk size / remaining data */
    unsigned long long total; /* decoded bytes so far */
    unsigned long long max_size;
    size_t line;    /* bytes in the current size line */
    size_t trailer; /* bytes in the trailer section */
    int err_status; /* 400 / 413 once failed (sticky), else 0 */
    const char *err_reason;
} fr_chunked;

/* Receives decoded body bytes; 0 / -1 (stops the decoder, not sticky). */
typedef int (*fr_sink)(void *ctx, const unsigned char *p, size_t n);

void fr_chunked_start(fr_chunked *c, unsigned long long max_size);
/* Decode from [p, p+n): returns the bytes consumed (it stops right after
 * the final CRLF), -1 on a framing error (c->err_status/err_reason, sticky),
 * -2 when the sink failed. */
ptrdiff_t fr_chunked_run(fr_chunked *c, const unsigned char *p, size_t n, fr_sink sink, void *ctx);
int fr_chunked_done(const fr_chunked *c);

/* ------------------------------------------------------------- frames (frame.c) */

enum {
    FR_FH_OK = 0,
    FR_FH_COULD_NOT_OPEN, /* the 12 bytes are PHP's "Could not op(en input file)" */
    FR_FH_STDOUT,         /* CRC or version wrong: garbage on the worker's stdout */
    FR_FH_BAD_HL,         /* header length < 3 words */
    FR_FH_TOO_LARGE,      /* payload over max_payload */
};

/* Check the first 12 bytes of a frame header. On FR_FH_OK sets *hsize
 * (header + options) and *plen; for FR_FH_BAD_HL / FR_FH_TOO_LARGE *hsize
 * and *plen still carry the offending values. */
int fr_frame_check(const unsigned char *h, unsigned long long max_payload, size_t *hsize,
                   uint32_t *plen);
/* Fewer than 12 bytes that can no longer start a frame or PHP's "Could
 * not open input file" message: report at once instead of waiting. */
int fr_frame_early_garbage(const unsigned char *h, size_t k);

#endif
