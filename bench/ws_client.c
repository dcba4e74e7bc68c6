/*
 * ws_client: N WebSocket connections on one epoll loop, for bench/ws_load.py.
 *
 *   ws_client HOST PORT PATH N TOPIC ROUNDS [SETUP_TIMEOUT_S] [ROUND_TIMEOUT_S]
 *
 * Each connection: connect, HTTP upgrade, send {"command":"join","topics":[TOPIC]} (a masked
 * text frame, as a browser sends), wait for the {"topic":"@join",...} reply. At most
 * INFLIGHT connections are being set up at once (the server's PHP worker authorizes every
 * upgrade and every join). When every connection has joined or failed it prints
 *
 *   READY joined failed setup_seconds
 *
 * Then it waits for deliveries {"topic":TOPIC,"payload":"r<k>"}: for each connection it
 * records CLOCK_MONOTONIC when round k arrives (the same clock as Python's time.monotonic,
 * so the publisher's timestamps compare). A round is printed once every joined connection
 * has it, or ROUND_TIMEOUT_S after its first delivery:
 *
 *   ROUND k count first last p50 p99          (absolute monotonic seconds)
 *
 * After ROUNDS rounds (or on EOF of stdin, or a line "QUIT") it prints DONE and exits.
 * Why C: reading 10,000 sockets from Python would cost more than the server's fan-out,
 * and the measurement would be the client's.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define INFLIGHT 256
#define BUF 4096
#define MAX_ROUNDS 1000

enum state { S_IDLE, S_CONNECTING, S_UPGRADING, S_JOINING, S_JOINED, S_DEAD };

struct conn {
    int fd;
    enum state st;
    int len;          /* bytes in buf */
    int last_round;   /* the highest round seen, -1 none */
    char buf[BUF];
};

static struct conn *conns;
static int n_conns, joined, failed, inflight, next_conn;
static int epfd;
static struct sockaddr_in addr;
static char request[1024];
static int request_len;
static unsigned char join_frame[512];
static int join_len;
static const char *topic;
static int rounds;
static double *times;        /* rounds x n_conns receive times, 0 = not yet */
static int round_count[MAX_ROUNDS];
static double round_first[MAX_ROUNDS];
static int round_done[MAX_ROUNDS];
static int rounds_done;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void fail(struct conn *c) {
    if (c->st == S_DEAD)
        return;
    if (c->st == S_JOINED)
        joined--;
    else
        inflight--;
    failed++;
    c->st = S_DEAD;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
}

static void start_one(void) {
    struct conn *c = &conns[next_conn];
    struct epoll_event ev;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0)
        die("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->st = S_CONNECTING;
    c->len = 0;
    c->last_round = -1;
    next_conn++;
    inflight++;
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
        fail(c);
        return;
    }
    ev.events = EPOLLOUT | EPOLLIN;
    ev.data.u32 = (uint32_t)(c - conns);
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        die("epoll_ctl");
}

static int send_all(struct conn *c, const void *data, int len) {
    /* a few hundred bytes into an empty socket buffer: one write takes it all */
    ssize_t n = write(c->fd, data, (size_t)len);
    return n == len ? 0 : -1;
}

static void build_frames(const char *host, int port, const char *path) {
    request_len = snprintf(request, sizeof request,
                           "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                           "Origin: http://%s:%d\r\n\r\n",
                           path, host, port, host, port);
    char text[400];
    int tlen = snprintf(text, sizeof text, "{\"command\":\"join\",\"topics\":[\"%s\"]}", topic);
    if (tlen > 125) {
        fprintf(stderr, "topic too long\n");
        exit(2);
    }
    unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    join_frame[0] = 0x81; /* FIN + text */
    join_frame[1] = 0x80 | (unsigned char)tlen;
    memcpy(join_frame + 2, mask, 4);
    for (int i = 0; i < tlen; i++)
        join_frame[6 + i] = (unsigned char)text[i] ^ mask[i & 3];
    join_len = 6 + tlen;
}

static void pong(struct conn *c, const unsigned char *payload, int len) {
    unsigned char out[6 + 125];
    unsigned char mask[4] = {1, 2, 3, 4};
    if (len > 125)
        len = 125;
    out[0] = 0x8A;
    out[1] = 0x80 | (unsigned char)len;
    memcpy(out + 2, mask, 4);
    for (int i = 0; i < len; i++)
        out[6 + i] = payload[i] ^ mask[i & 3];
    send_all(c, out, 6 + len);
}

static void delivered(struct conn *c, const char *text, int len, double t) {
    /* {"topic":"T","payload":"r<k>"}: the round is the number after "r */
    const char *p = memmem(text, (size_t)len, "\"payload\":\"r", 12);
    if (p == NULL)
        return;
    int k = atoi(p + 12);
    if (k < 0 || k >= rounds || k <= c->last_round)
        return;
    c->last_round = k;
    times[(size_t)k * n_conns + (size_t)(c - conns)] = t;
    if (round_count[k]++ == 0)
        round_first[k] = t;
}

/* One complete frame at buf[0..]: returns its length, 0 when more bytes are needed. */
static int frame(struct conn *c, double t) {
    unsigned char *b = (unsigned char *)c->buf;
    if (c->len < 2)
        return 0;
    int op = b[0] & 0x0F;
    uint64_t plen = b[1] & 0x7F;
    int head = 2;
    if (plen == 126) {
        if (c->len < 4)
            return 0;
        plen = ((uint64_t)b[2] << 8) | b[3];
        head = 4;
    } else if (plen == 127) {
        if (c->len < 10)
            return 0;
        plen = 0;
        for (int i = 0; i < 8; i++)
            plen = (plen << 8) | b[2 + i];
        head = 10;
    }
    if (b[1] & 0x80)
        head += 4; /* servers do not mask; tolerate it */
    if (plen > BUF - 16) {
        fprintf(stderr, "frame of %llu bytes: larger than the client's buffer\n", (unsigned long long)plen);
        fail(c);
        return -1;
    }
    if ((uint64_t)c->len < head + plen)
        return 0;
    const char *payload = c->buf + head;
    if (op == 0x1) {
        if (c->st == S_JOINING) {
            if (memmem(payload, plen, "\"@join\"", 7) != NULL) {
                c->st = S_JOINED;
                inflight--;
                joined++;
            } else if (memmem(payload, plen, "\"#join\"", 7) != NULL) {
                fprintf(stderr, "join denied\n");
                fail(c);
                return -1;
            }
        } else if (c->st == S_JOINED) {
            delivered(c, payload, (int)plen, t);
        }
    } else if (op == 0x9) {
        pong(c, (const unsigned char *)payload, (int)plen);
    } else if (op == 0x8) {
        fail(c);
        return -1;
    }
    return head + (int)plen;
}

static void readable(struct conn *c, double t) {
    for (;;) {
        ssize_t n = read(c->fd, c->buf + c->len, (size_t)(BUF - c->len));
        if (n == 0) {
            fail(c);
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            fail(c);
            return;
        }
        c->len += (int)n;
        if (c->st == S_UPGRADING) {
            char *end = memmem(c->buf, (size_t)c->len, "\r\n\r\n", 4);
            if (end == NULL) {
                if (c->len == BUF)
                    fail(c);
                if (c->st == S_DEAD)
                    return;
                continue;
            }
            if (c->len < 12 || memcmp(c->buf + 9, "101", 3) != 0) {
                fprintf(stderr, "upgrade refused: %.*s\n", (int)(strchr(c->buf, '\r') - c->buf), c->buf);
                fail(c);
                return;
            }
            int used = (int)(end + 4 - c->buf);
            memmove(c->buf, c->buf + used, (size_t)(c->len - used));
            c->len -= used;
            c->st = S_JOINING;
            if (send_all(c, join_frame, join_len) < 0) {
                fail(c);
                return;
            }
        }
        for (;;) {
            int used = frame(c, t);
            if (used < 0)
                return;
            if (used == 0)
                break;
            memmove(c->buf, c->buf + used, (size_t)(c->len - used));
            c->len -= used;
        }
        if (c->len == BUF) {
            fail(c);
            return;
        }
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report_round(int k) {
    double *col = malloc(sizeof(double) * (size_t)n_conns);
    int m = 0;
    for (int i = 0; i < n_conns; i++) {
        double t = times[(size_t)k * n_conns + (size_t)i];
        if (t > 0)
            col[m++] = t;
    }
    qsort(col, (size_t)m, sizeof(double), cmp_double);
    double p50 = m ? col[m / 2] : 0, p99 = m ? col[(m * 99) / 100 < m ? (m * 99) / 100 : m - 1] : 0;
    printf("ROUND %d %d %.6f %.6f %.6f %.6f\n", k, m, m ? col[0] : 0.0, m ? col[m - 1] : 0.0, p50, p99);
    fflush(stdout);
    free(col);
    round_done[k] = 1;
    rounds_done++;
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: %s HOST PORT PATH N TOPIC ROUNDS [SETUP_TIMEOUT_S] [ROUND_TIMEOUT_S]\n", argv[0]);
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]);
    const char *path = argv[3];
    n_conns = atoi(argv[4]);
    topic = argv[5];
    rounds = atoi(argv[6]);
    double setup_timeout = argc > 7 ? atof(argv[7]) : 300.0;
    double round_timeout = argc > 8 ? atof(argv[8]) : 10.0;
    if (n_conns < 1 || rounds < 0 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "bad N or ROUNDS\n");
        return 2;
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)n_conns + 16) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)n_conns + 16 ? rl.rlim_max : (rlim_t)n_conns + 16;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "HOST must be an IPv4 address\n");
        return 2;
    }
    build_frames(host, port, path);
    conns = calloc((size_t)n_conns, sizeof *conns);
    times = calloc((size_t)n_conns * (size_t)(rounds ? rounds : 1), sizeof(double));
    if (conns == NULL || times == NULL)
        die("calloc");
    epfd = epoll_create1(0);
    if (epfd < 0)
        die("epoll_create1");
    struct epoll_event in = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &in); /* stdin: EOF or QUIT ends the run */
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);

    double t_start = now();
    int ready = 0;
    struct epoll_event evs[1024];
    for (;;) {
        while (!ready && inflight < INFLIGHT && next_conn < n_conns)
            start_one();
        if (!ready && next_conn == n_conns && inflight == 0) {
            printf("READY %d %d %.3f\n", joined, failed, now() - t_start);
            fflush(stdout);
            ready = 1;
            if (rounds == 0)
                break;
        }
        if (!ready && now() - t_start > setup_timeout) {
            printf("READY %d %d %.3f timeout\n", joined, failed + inflight + (n_conns - next_conn), now() - t_start);
            fflush(stdout);
            ready = 1;
        }
        int n = epoll_wait(epfd, evs, 1024, 100);
        double t = now();
        for (int i = 0; i < n; i++) {
            uint32_t id = evs[i].data.u32;
            if (id == UINT32_MAX) {
                char line[256];
                ssize_t r = read(0, line, sizeof line - 1);
                if (r == 0 || (r > 0 && memmem(line, (size_t)r, "QUIT", 4) != NULL)) {
                    printf("DONE\n");
                    fflush(stdout);
                    return 0;
                }
                continue;
            }
            struct conn *c = &conns[id];
            if (c->st == S_DEAD)
                continue;
            if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
                fail(c);
                continue;
            }
            if (c->st == S_CONNECTING && (evs[i].events & EPOLLOUT)) {
                int err = 0;
                socklen_t elen = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen);
                if (err != 0 || send_all(c, request, request_len) < 0) {
                    fail(c);
                    continue;
                }
                c->st = S_UPGRADING;
                struct epoll_event ev = {.events = EPOLLIN, .data.u32 = id};
                epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
            }
            if (evs[i].events & EPOLLIN)
                readable(c, t);
        }
        for (int k = 0; k < rounds; k++) {
            if (round_done[k] || round_count[k] == 0)
                continue;
            if (round_count[k] >= joined || t - round_first[k] > round_timeout)
                report_round(k);
        }
        if (ready && rounds_done == rounds) {
            printf("DONE\n");
            fflush(stdout);
            return 0;
        }
    }
    printf("DONE\n");
    return 0;
}
