/* The shared-memory relay: two single-producer/single-consumer byte rings
 * per worker in one shared mapping, carrying ordinary goridge frames.
 *
 * Pure C (no Python): compiled into fastrr._core (the server side, glue in
 * ring_py.c) and, alone, into fastrr/libfastrr_ring.so, which the PHP
 * library loads with FFI (php/src/Relay/RingRelay.php).
 *
 *   server (uvloop)                          PHP worker (blocking)
 *   fr_ring_server_write ──▶ ring S2W ──▶ fastrr_ring_recv_frame
 *   fr_ring_server_read  ◀── ring W2S ◀── fastrr_ring_send
 *
 * Wake-ups. The worker sleeps in futex(FUTEX_WAIT) on a word of the shared
 * mapping (no fd to share, no busy spinning unless FASTRR_RING_SPIN asks for
 * a bounded spin first). The server cannot sleep in a futex - it is an event
 * loop - so it sleeps in epoll on an eventfd that the worker writes, and only
 * when the server has "armed" it (set a flag in the mapping) before going
 * idle: one eventfd write per idle->busy transition, none while the server
 * is busy anyway. Every sleep follows the same pattern - publish "I am
 * waiting", re-check the condition, then sleep - and every wake-up the
 * opposite - publish the data, then check the flag - all seq_cst, so a
 * wake-up is never lost. See csrc/README.md, "The shm ring".
 *
 * The mapping is a memfd created by the server; the worker gets the fd (and
 * the eventfd) inherited through exec and their numbers in FASTRR_RING
 * ("fd:<memfd>,<eventfd>"). Nothing is ever left in the file system.
 */
#ifndef FASTRR_RING_H
#define FASTRR_RING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FR_RING_DEFAULT_CAPACITY (1u << 20)
#define FR_RING_MIN_CAPACITY 4096u
#define FR_RING_MAX_CAPACITY (1u << 30)
/* Largest frame fastrr_ring_recv_frame accepts (header + options + payload). */
#define FR_RING_MAX_FRAME ((size_t)1 << 31)

typedef struct fr_ring fr_ring;

/* ---- server side (used by ring_py.c) ---------------------------------- */

/* Create the mapping (memfd, capacity bytes per direction, a power of two)
 * and the eventfd (non-blocking). NULL with errno set on failure. Both fds
 * are close-on-exec: pass them to the child explicitly. */
fr_ring *fr_ring_create(size_t capacity);
int fr_ring_memfd(const fr_ring *r);
int fr_ring_eventfd(const fr_ring *r);
size_t fr_ring_capacity(const fr_ring *r);
/* Non-blocking: copy up to n bytes into the S2W ring, wake the worker if it
 * sleeps; returns the bytes taken (0 when full). */
size_t fr_ring_server_write(fr_ring *r, const void *p, size_t n);
/* Non-blocking: take up to n bytes from the W2S ring, wake the worker if it
 * waits for space; returns the bytes read (0 when empty). */
size_t fr_ring_server_read(fr_ring *r, void *p, size_t n);
size_t fr_ring_server_readable(const fr_ring *r);
size_t fr_ring_server_space(const fr_ring *r);
/* Before going idle: ask for an eventfd kick on W2S data (and, if
 * want_space, on S2W space). Returns 1 when the condition already holds
 * (do not sleep: process again), 0 when it is safe to wait for the kick. */
int fr_ring_server_arm(fr_ring *r, int want_space);
/* Reset the eventfd counter after a kick (non-blocking read). */
void fr_ring_server_ack(fr_ring *r);
int fr_ring_worker_closed(const fr_ring *r);
pid_t fr_ring_worker_pid(const fr_ring *r);
/* Tell the worker we are gone (it wakes and fails), unmap, close the fds. */
void fr_ring_destroy(fr_ring *r);

/* ---- worker side: the FFI API of libfastrr_ring.so ----------------------
 * Plain C types only. Blocking calls return -1 when the server closed the
 * ring or went away (checked every FR_RING_LIVENESS_MS while waiting);
 * fastrr_ring_error() says why. */
#define FR_RING_LIVENESS_MS 500

/* spec: "fd:<memfd>,<eventfd>"; NULL or "" reads FASTRR_RING. NULL on
 * failure, with the reason in fastrr_ring_open_error(). */
fr_ring *fastrr_ring_open(const char *spec);
const char *fastrr_ring_open_error(void);
/* Blocks until one whole frame is in the handle's buffer; returns its size
 * (header + options + payload), -1 on error. The frame's bytes are at
 * fastrr_ring_frame() until the next call. Checks the header CRC. */
long long fastrr_ring_recv_frame(fr_ring *r);
const char *fastrr_ring_frame(fr_ring *r);
/* Blocks until all n bytes are in the W2S ring (streams through it when n is
 * larger than the ring). 0, or -1 on error. */
int fastrr_ring_send(fr_ring *r, const char *p, size_t n);
/* Bytes that can be read right now without blocking. */
size_t fastrr_ring_readable(fr_ring *r);
const char *fastrr_ring_error(fr_ring *r);
void fastrr_ring_close(fr_ring *r);

#endif
