/* The machine's floor for an HTTP front: one thread, one epoll loop, that
 * reads keep-alive GET requests and answers each with the same fixed hello
 * response. No parsing beyond finding "\r\n\r\n", no dispatch, no worker.
 * `fastrr bench --profile` measures it like the real servers, so fastrr's
 * front CPU per request can be read against what one loopback recv + send
 * costs on the same machine in the same run.
 *
 *   floor PORT          listens on 127.0.0.1:PORT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BODY "{\"message\":\"Hello, World!\"}"
static const char RESPONSE[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n" BODY;
#define RESPONSE_LEN (sizeof RESPONSE - 1)
#define MAX_EVENTS 256
#define INBUF 16384
#define OUTCAP (64 * RESPONSE_LEN)

typedef struct {
    int fd;
    size_t in_len;
    char in[INBUF];
} conn;

static void close_conn(int ep, conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

/* Answers every complete request in the buffer; 0 to keep the connection. */
static int serve(conn *c)
{
    char out[OUTCAP];
    for (;;) {
        ssize_t n = recv(c->fd, c->in + c->in_len, INBUF - c->in_len, 0);
        if (n == 0)
            return -1;
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        c->in_len += (size_t)n;
        size_t out_len = 0, start = 0;
        char *end;
        while ((end = memmem(c->in + start, c->in_len - start, "\r\n\r\n", 4)) != NULL) {
            start = (size_t)(end - c->in) + 4;
            if (out_len + RESPONSE_LEN > OUTCAP)
                return -1; /* more pipelined requests than a benchmark sends */
            memcpy(out + out_len, RESPONSE, RESPONSE_LEN);
            out_len += RESPONSE_LEN;
        }
        memmove(c->in, c->in + start, c->in_len - start);
        c->in_len -= start;
        if (c->in_len == INBUF)
            return -1; /* a head larger than the buffer: not a benchmark request */
        /* Small answers into an empty send buffer: a short write does not
         * happen at benchmark sizes, and the floor keeps no output queue. */
        if (out_len && send(c->fd, out, out_len, MSG_NOSIGNAL) != (ssize_t)out_len)
            return -1;
        if ((size_t)n < INBUF - c->in_len)
            return 0; /* the socket is drained: back to epoll */
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1])),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 1024) < 0) {
        perror("floor: listen");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(ep, events, MAX_EVENTS, -1);
        if (n < 0 && errno != EINTR) {
            perror("floor: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            conn *c = events[i].data.ptr;
            if (c == NULL) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conn *nc = malloc(sizeof *nc);
                    if (nc == NULL) {
                        close(fd);
                        continue;
                    }
                    nc->fd = fd;
                    nc->in_len = 0;
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                }
            } else if (serve(c) < 0) {
                close_conn(ep, c);
            }
        }
    }
}
