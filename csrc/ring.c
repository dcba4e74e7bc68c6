/* The shared-memory relay (see ring.h for the picture and the API).
 *
 * Mapping layout (one memfd, created and sized by the server):
 *
 *   [ fr_ring_shared, padded to a page | S2W data, cap bytes | W2S data, cap bytes ]
 *
 * Each direction is a byte stream: `head` counts every byte ever written,
 * `tail` every byte ever read (both 64-bit, never wrap in practice); the
 * bytes in flight are head - tail <= cap, at offsets (pos & (cap - 1)).
 * Only the producer stores head, only the consumer stores tail.
 *
 * Wake-up words (futex on the worker side):
 *   dir.data_seq / data_waiters   the consumer sleeps until head moves
 *   dir.space_seq / space_waiters the producer sleeps until tail moves
 * and for the server (eventfd): server_armed (kick me on W2S data) and
 * server_want_space (kick me on S2W space).
 *
 * Pure C: no Python here (this file is also libfastrr_ring.so on its own).
 */
#define _GNU_SOURCE
#include "ring.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define RING_MAGIC 0x47525246u /* "FRRG" */
#define RING_VERSION 1u
#define HDR_SIZE 4096u

enum { S2W = 0, W2S = 1 };

struct ring_dir {
    _Alignas(64) _Atomic uint64_t head;
    _Alignas(64) _Atomic uint64_t tail;
    _Alignas(64) _Atomic uint32_t data_seq;
    _Atomic uint32_t data_waiters;
    _Alignas(64) _Atomic uint32_t space_seq;
    _Atomic uint32_t space_waiters;
};

typedef struct {
    uint32_t magic, version;
    uint64_t capacity;
    _Atomic uint32_t server_closed, worker_closed;
    _Atomic int32_t worker_pid;
    _Alignas(64) _Atomic uint32_t server_armed;
    _Atomic uint32_t server_want_space;
    struct ring_dir dir[2];
} ring_shared;

_Static_assert(sizeof(ring_shared) <= HDR_SIZE, "ring header fits its page");

struct fr_ring {
    ring_shared *sh;
    unsigned char *data[2];
    uint64_t cap, mask;
    size_t map_len;
    int memfd, evfd;
    int server;
    /* worker side */
    pid_t ppid;
    unsigned spin;
    unsigned char *buf;
    size_t buf_cap;
    char err[200];
};

/* ------------------------------------------------------------ utilities */

static uint32_t crc_table[256];

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32_6(const unsigned char *p)
{
    if (crc_table[1] == 0)
        crc_init();
    uint32_t c = 0xFFFFFFFFu;
    for (int i = 0; i < 6; i++)
        c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return ~c;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int futex_wait(_Atomic uint32_t *addr, uint32_t val, int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    /* Not FUTEX_PRIVATE: the word is shared between processes. */
    return (int)syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT, val, &ts, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static void kick(int fd)
{
    uint64_t one = 1;
    ssize_t rc;
    do
        rc = write(fd, &one, sizeof(one));
    while (rc < 0 && errno == EINTR);
    /* EAGAIN: the counter is saturated, the server is being kicked anyway. */
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* ------------------------------------------------------- the byte rings */

static size_t avail(const fr_ring *r, int d)
{
    const struct ring_dir *x = &r->sh->dir[d];
    return (size_t)(atomic_load(&x->head) - atomic_load(&x->tail));
}

static size_t space(const fr_ring *r, int d)
{
    return (size_t)r->cap - avail(r, d);
}

/* Producer: copy up to n bytes in, publish head. */
static size_t put(fr_ring *r, int d, const unsigned char *p, size_t n)
{
    struct ring_dir *x = &r->sh->dir[d];
    uint64_t head = atomic_load_explicit(&x->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&x->tail, memory_order_acquire);
    size_t k = (size_t)(r->cap - (head - tail));
    if (k > n)
        k = n;
    if (k == 0)
        return 0;
    size_t off = (size_t)(head & r->mask);
    size_t first = (size_t)r->cap - off;
    if (first > k)
        first = k;
    memcpy(r->data[d] + off, p, first);
    if (k > first)
        memcpy(r->data[d], p + first, k - first);
    /* seq_cst: ordered before the waiter-flag loads that follow */
    atomic_store(&x->head, head + k);
    return k;
}

/* Consumer: copy up to n bytes out, publish tail. */
static size_t get(fr_ring *r, int d, unsigned char *p, size_t n)
{
    struct ring_dir *x = &r->sh->dir[d];
    uint64_t tail = atomic_load_explicit(&x->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&x->head, memory_order_acquire);
    size_t k = (size_t)(head - tail);
    if (k > n)
        k = n;
    if (k == 0)
        return 0;
    size_t off = (size_t)(tail & r->mask);
    size_t first = (size_t)r->cap - off;
    if (first > k)
        first = k;
    memcpy(p, r->data[d] + off, first);
    if (k > first)
        memcpy(p + first, r->data[d], k - first);
    atomic_store(&x->tail, tail + k);
    return k;
}

static int map_ring(fr_ring *r, size_t cap)
{
    r->map_len = HDR_SIZE + 2 * cap;
    void *m = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, r->memfd, 0);
    if (m == MAP_FAILED)
        return -1;
    r->sh = m;
    r->cap = cap;
    r->mask = cap - 1;
    r->data[S2W] = (unsigned char *)m + HDR_SIZE;
    r->data[W2S] = (unsigned char *)m + HDR_SIZE + cap;
    return 0;
}

/* ---------------------------------------------------------- server side */

fr_ring *fr_ring_create(size_t capacity)
{
    if (capacity < FR_RING_MIN_CAPACITY || capacity > FR_RING_MAX_CAPACITY ||
        (capacity & (capacity - 1)) != 0) {
        errno = EINVAL;
        return NULL;
    }
    fr_ring *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->server = 1;
    r->memfd = r->evfd = -1;
    r->memfd = memfd_create("fastrr-ring", MFD_CLOEXEC);
    if (r->memfd < 0 || ftruncate(r->memfd, (off_t)(HDR_SIZE + 2 * capacity)) < 0)
        goto fail;
    r->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->evfd < 0 || map_ring(r, capacity) < 0)
        goto fail;
    /* A fresh memfd is zero-filled: all counters and flags start at 0. */
    r->sh->magic = RING_MAGIC;
    r->sh->version = RING_VERSION;
    r->sh->capacity = capacity;
    atomic_thread_fence(memory_order_seq_cst);
    return r;
fail: {
    int e = errno;
    if (r->memfd >= 0)
        close(r->memfd);
    if (r->evfd >= 0)
        close(r->evfd);
    free(r);
    errno = e;
    return NULL;
}
}

int fr_ring_memfd(const fr_ring *r) { return r->memfd; }
int fr_ring_eventfd(const fr_ring *r) { return r->evfd; }
size_t fr_ring_capacity(const fr_ring *r) { return (size_t)r->cap; }

size_t fr_ring_server_write(fr_ring *r, const void *p, size_t n)
{
    size_t k = put(r, S2W, p, n);
    if (k) {
        struct ring_dir *x = &r->sh->dir[S2W];
        atomic_fetch_add(&x->data_seq, 1);
        if (atomic_load(&x->data_waiters))
            futex_wake(&x->data_seq);
    }
    return k;
}

size_t fr_ring_server_read(fr_ring *r, void *p, size_t n)
{
    size_t k = get(r, W2S, p, n);
    if (k) {
        struct ring_dir *x = &r->sh->dir[W2S];
        atomic_fetch_add(&x->space_seq, 1);
        if (atomic_load(&x->space_waiters))
            futex_wake(&x->space_seq);
    }
    return k;
}

size_t fr_ring_server_readable(const fr_ring *r) { return avail(r, W2S); }
size_t fr_ring_server_space(const fr_ring *r) { return space(r, S2W); }

int fr_ring_server_arm(fr_ring *r, int want_space)
{
    ring_shared *sh = r->sh;
    atomic_store(&sh->server_armed, 1);
    if (want_space)
        atomic_store(&sh->server_want_space, 1);
    if (avail(r, W2S) > 0 || (want_space && space(r, S2W) > 0) || atomic_load(&sh->worker_closed)) {
        /* No sleep: take the flags back so the worker does not kick for
         * nothing (a kick that is already on its way is harmless). */
        atomic_store(&sh->server_armed, 0);
        atomic_store(&sh->server_want_space, 0);
        return 1;
    }
    return 0;
}

void fr_ring_server_ack(fr_ring *r)
{
    uint64_t v;
    ssize_t rc;
    do
        rc = read(r->evfd, &v, sizeof(v));
    while (rc < 0 && errno == EINTR);
}

int fr_ring_worker_closed(const fr_ring *r) { return (int)atomic_load(&r->sh->worker_closed); }
pid_t fr_ring_worker_pid(const fr_ring *r) { return (pid_t)atomic_load(&r->sh->worker_pid); }

static void unmap_close(fr_ring *r)
{
    if (r->sh != NULL)
        munmap(r->sh, r->map_len);
    if (r->memfd >= 0)
        close(r->memfd);
    if (r->evfd >= 0)
        close(r->evfd);
    free(r->buf);
    free(r);
}

void fr_ring_destroy(fr_ring *r)
{
    if (r == NULL)
        return;
    ring_shared *sh = r->sh;
    atomic_store(&sh->server_closed, 1);
    for (int d = 0; d < 2; d++) {
        atomic_fetch_add(&sh->dir[d].data_seq, 1);
        atomic_fetch_add(&sh->dir[d].space_seq, 1);
        futex_wake(&sh->dir[d].data_seq);
        futex_wake(&sh->dir[d].space_seq);
    }
    unmap_close(r);
}

/* ---------------------------------------------------------- worker side */

static _Thread_local char open_error[200];

const char *fastrr_ring_open_error(void) { return open_error; }

static fr_ring *open_fail(fr_ring *r, const char *what)
{
    snprintf(open_error, sizeof(open_error), "%s%s%s", what, errno ? ": " : "",
             errno ? strerror(errno) : "");
    if (r != NULL) {
        if (r->sh != NULL)
            munmap(r->sh, r->map_len);
        free(r);
    }
    return NULL;
}

fr_ring *fastrr_ring_open(const char *spec)
{
    errno = 0;
    if (spec == NULL || *spec == '\0')
        spec = getenv("FASTRR_RING");
    if (spec == NULL || *spec == '\0')
        return open_fail(NULL, "FASTRR_RING is not set");
    int memfd, evfd, used = 0;
    if (sscanf(spec, "fd:%d,%d%n", &memfd, &evfd, &used) != 2 || spec[used] != '\0' || memfd < 0 ||
        evfd < 0)
        return open_fail(NULL, "FASTRR_RING must look like fd:<memfd>,<eventfd>");
    struct stat st;
    if (fstat(memfd, &st) < 0)
        return open_fail(NULL, "the ring fd is not open in this process");
    fr_ring *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return open_fail(NULL, "out of memory");
    r->memfd = memfd;
    r->evfd = evfd;
    /* Map the header alone first to learn the capacity. */
    void *h = mmap(NULL, HDR_SIZE, PROT_READ, MAP_SHARED, memfd, 0);
    if (h == MAP_FAILED)
        return open_fail(r, "cannot map the ring header");
    ring_shared hdr;
    memcpy(&hdr, h, sizeof(hdr));
    munmap(h, HDR_SIZE);
    errno = 0;
    if (hdr.magic != RING_MAGIC || hdr.version != RING_VERSION)
        return open_fail(r, "not a fastrr ring (bad magic or version)");
    uint64_t cap = hdr.capacity;
    if (cap < FR_RING_MIN_CAPACITY || cap > FR_RING_MAX_CAPACITY || (cap & (cap - 1)) ||
        (uint64_t)st.st_size != HDR_SIZE + 2 * cap)
        return open_fail(r, "ring size does not match its header");
    if (map_ring(r, (size_t)cap) < 0)
        return open_fail(r, "cannot map the ring");
    r->ppid = getppid();
    const char *spin = getenv("FASTRR_RING_SPIN");
    r->spin = spin ? (unsigned)strtoul(spin, NULL, 10) : 0;
    atomic_store(&r->sh->worker_pid, (int32_t)getpid());
    open_error[0] = '\0';
    return r;
}

const char *fastrr_ring_error(fr_ring *r) { return r->err; }

static int gone(fr_ring *r)
{
    if (atomic_load(&r->sh->server_closed)) {
        snprintf(r->err, sizeof(r->err), "relay closed by the server (shm ring)");
        return 1;
    }
    if (getppid() != r->ppid) {
        snprintf(r->err, sizeof(r->err), "the server went away (shm ring)");
        return 1;
    }
    return 0;
}

/* Sleep until `cond` (avail/space of direction d) is non-zero. */
static int wait_for(fr_ring *r, int d, int want_data)
{
    struct ring_dir *x = &r->sh->dir[d];
    _Atomic uint32_t *seq = want_data ? &x->data_seq : &x->space_seq;
    _Atomic uint32_t *waiters = want_data ? &x->data_waiters : &x->space_waiters;
    for (unsigned i = 0; i < r->spin; i++) {
        if (want_data ? avail(r, d) : space(r, d))
            return 0;
        cpu_relax();
    }
    for (;;) {
        uint32_t s = atomic_load(seq);
        atomic_store(waiters, 1);
        if ((want_data ? avail(r, d) : space(r, d)) > 0) {
            atomic_store(waiters, 0);
            return 0;
        }
        if (gone(r)) {
            atomic_store(waiters, 0);
            return -1;
        }
        int rc = futex_wait(seq, s, FR_RING_LIVENESS_MS);
        atomic_store(waiters, 0);
        if (rc < 0 && errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT) {
            snprintf(r->err, sizeof(r->err), "futex wait failed: %s", strerror(errno));
            return -1;
        }
    }
}

/* The consumer of S2W took bytes: kick the server if it waits for space. */
static void took(fr_ring *r)
{
    ring_shared *sh = r->sh;
    if (atomic_load(&sh->server_want_space) && atomic_exchange(&sh->server_want_space, 0))
        kick(r->evfd);
}

static int read_exact(fr_ring *r, unsigned char *p, size_t n)
{
    while (n) {
        size_t k = get(r, S2W, p, n);
        if (k) {
            p += k;
            n -= k;
            took(r);
            continue;
        }
        if (wait_for(r, S2W, 1) < 0)
            return -1;
    }
    return 0;
}

static int reserve(fr_ring *r, size_t n)
{
    if (n <= r->buf_cap) {
        /* give a huge buffer back once frames are small again */
        if (r->buf_cap > ((size_t)4 << 20) && n < ((size_t)1 << 20)) {
            free(r->buf);
            r->buf = NULL;
            r->buf_cap = 0;
        }
        else
            return 0;
    }
    size_t cap = n < 65536 ? 65536 : n;
    unsigned char *b = realloc(r->buf, cap);
    if (b == NULL) {
        snprintf(r->err, sizeof(r->err), "out of memory for a %zu-byte frame", n);
        return -1;
    }
    r->buf = b;
    r->buf_cap = cap;
    return 0;
}

long long fastrr_ring_recv_frame(fr_ring *r)
{
    if (reserve(r, 64) < 0 || read_exact(r, r->buf, 12) < 0)
        return -1;
    const unsigned char *h = r->buf;
    unsigned hl = h[0] & 0x0F;
    if ((h[0] >> 4) != 1 || hl < 3 || le32(h + 6) != crc32_6(h)) {
        snprintf(r->err, sizeof(r->err),
                 "invalid frame header on the shm ring: %02x %02x %02x %02x %02x %02x %02x %02x", h[0],
                 h[1], h[2], h[3], h[4], h[5], h[6], h[7]);
        return -1;
    }
    size_t rest = 4 * (size_t)(hl - 3) + le32(h + 2);
    if (rest > FR_RING_MAX_FRAME - 12) {
        snprintf(r->err, sizeof(r->err), "frame of %zu bytes is too large", rest + 12);
        return -1;
    }
    if (reserve(r, 12 + rest) < 0)
        return -1;
    if (read_exact(r, r->buf + 12, rest) < 0)
        return -1;
    return (long long)(12 + rest);
}

const char *fastrr_ring_frame(fr_ring *r) { return (const char *)r->buf; }

int fastrr_ring_send(fr_ring *r, const char *p, size_t n)
{
    const unsigned char *q = (const unsigned char *)p;
    ring_shared *sh = r->sh;
    if (atomic_load(&sh->server_closed)) { /* getppid() is only checked while waiting */
        gone(r);                           /* sets the message */
        return -1;
    }
    while (n) {
        size_t k = put(r, W2S, q, n);
        if (k) {
            q += k;
            n -= k;
            if (atomic_load(&sh->server_armed) && atomic_exchange(&sh->server_armed, 0))
                kick(r->evfd);
            continue;
        }
        if (wait_for(r, W2S, 0) < 0)
            return -1;
    }
    return 0;
}

size_t fastrr_ring_readable(fr_ring *r) { return avail(r, S2W); }

void fastrr_ring_close(fr_ring *r)
{
    if (r == NULL)
        return;
    atomic_store(&r->sh->worker_closed, 1);
    if (atomic_exchange(&r->sh->server_armed, 0))
        kick(r->evfd);
    /* The fds were inherited for this handle alone. */
    unmap_close(r);
}
