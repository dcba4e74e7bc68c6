/* A growable byte buffer for building output (JSON, response heads).
 *
 * Ownership: the buffer owns `data`, allocated with PyMem_Raw* (thread-safe,
 * no GIL needed), so the same code serves the Python glue and the engine
 * thread (engine.c), which never holds the GIL. A failed allocation returns
 * -1 and sets MemoryError only when the caller holds the GIL (fr_no_memory).
 * Module-level scratch buffers are reused across calls to avoid a
 * malloc per request; fr_buf_trim() drops them back to a small size after an
 * unusually large request so one huge request does not pin memory forever.
 * A buffer itself is never shared between threads. */
#ifndef FASTRR_BUF_H
#define FASTRR_BUF_H

#include <stddef.h>
#include <string.h>

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} fr_buf;

/* Grow so that at least `extra` more bytes fit. 0 on success, -1 with
 * MemoryError set (if the GIL is held). */
int fr_buf_grow(fr_buf *b, size_t extra);
/* Free the storage if it grew beyond `keep` bytes; always resets len. */
void fr_buf_trim(fr_buf *b, size_t keep);
/* -1, with MemoryError set if the calling thread holds the GIL. */
int fr_no_memory(void);

static inline int fr_buf_reserve(fr_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    return fr_buf_grow(b, extra);
}

/* Caller has reserved the space. n may be 0 with p or data NULL (an empty,
 * never-grown buffer), which memcpy itself does not allow. */
static inline void fr_buf_put(fr_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static inline void fr_buf_putc(fr_buf *b, char c) { b->data[b->len++] = c; }

static inline int fr_buf_append(fr_buf *b, const void *p, size_t n)
{
    if (fr_buf_reserve(b, n) < 0)
        return -1;
    fr_buf_put(b, p, n);
    return 0;
}

#define FR_BUF_LIT(b, lit) fr_buf_append((b), (lit), sizeof(lit) - 1)

/* Writes the decimal form of v (v >= 0). Caller reserved 20 bytes. */
static inline void fr_buf_put_u64(fr_buf *b, unsigned long long v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        b->data[b->len++] = tmp[--n];
}

#endif
