#include "loopback.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "state.h"

#define TRIP_BYTES 64 /* about an ack's size */

struct sf_loopback {
    pthread_t pinger, echo;
    bool pinger_started, echo_started;
    int client_fd, server_fd;
    int trips;
    int64_t spacing_us;
    atomic_int hurry; /* the run is over: finish the trips without spacing */
    int done;
    int64_t *rtt;
};

static int64_t mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool io_full(int fd, char *buf, size_t n, bool writing) {
    size_t off = 0;
    while (off < n) {
        ssize_t r = writing ? write(fd, buf + off, n - off) : read(fd, buf + off, n - off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        off += (size_t)r;
    }
    return true;
}

static void *echo_main(void *arg) {
    sf_loopback *lb = arg;
    char buf[TRIP_BYTES];
    while (io_full(lb->server_fd, buf, sizeof(buf), false) && io_full(lb->server_fd, buf, sizeof(buf), true)) {
    }
    return NULL;
}

static void *pinger_main(void *arg) {
    sf_loopback *lb = arg;
    char buf[TRIP_BYTES];
    memset(buf, 'x', sizeof(buf));
    for (int i = 0; i < lb->trips; i++) {
        int64_t t0 = mono_us();
        if (!io_full(lb->client_fd, buf, sizeof(buf), true) || !io_full(lb->client_fd, buf, sizeof(buf), false)) break;
        lb->rtt[lb->done++] = mono_us() - t0;
        if (lb->spacing_us > 0 && !atomic_load(&lb->hurry)) {
            struct timespec ts = {(time_t)(lb->spacing_us / 1000000), (long)(lb->spacing_us % 1000000) * 1000};
            nanosleep(&ts, NULL);
        }
    }
    /* EOF ends the echo thread. */
    shutdown(lb->client_fd, SHUT_WR);
    return NULL;
}

sf_loopback *sf_loopback_start(int trips, int64_t spacing_us) {
    sf_loopback *lb = calloc(1, sizeof(*lb));
    if (!lb) return NULL;
    lb->client_fd = lb->server_fd = -1;
    lb->trips = trips < 1 ? 1 : trips > SF_LOOPBACK_MAX_TRIPS ? SF_LOOPBACK_MAX_TRIPS : trips;
    lb->spacing_us = spacing_us;
    lb->rtt = calloc((size_t)lb->trips, sizeof(*lb->rtt));
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int one = 1;
    struct timeval tv = {2, 0}; /* a stuck peer cannot hold the loop's join for long */
    if (!lb->rtt || lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 1) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) != 0)
        goto fail;
    lb->client_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lb->client_fd < 0 || connect(lb->client_fd, (struct sockaddr *)&a, sizeof(a)) != 0) goto fail;
    lb->server_fd = accept(lfd, NULL, NULL);
    if (lb->server_fd < 0) goto fail;
    close(lfd);
    lfd = -1;
    setsockopt(lb->client_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(lb->server_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(lb->client_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(lb->server_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (pthread_create(&lb->echo, NULL, echo_main, lb) != 0) goto fail;
    lb->echo_started = true;
    if (pthread_create(&lb->pinger, NULL, pinger_main, lb) != 0) goto fail;
    lb->pinger_started = true;
    return lb;
fail:
    if (lfd >= 0) close(lfd);
    if (lb->client_fd >= 0) shutdown(lb->client_fd, SHUT_RDWR);
    if (lb->echo_started) pthread_join(lb->echo, NULL);
    if (lb->client_fd >= 0) close(lb->client_fd);
    if (lb->server_fd >= 0) close(lb->server_fd);
    free(lb->rtt);
    free(lb);
    return NULL;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

void sf_loopback_finish(sf_loopback *lb, int64_t *p50_us, int64_t *p99_us, int *done) {
    *p50_us = *p99_us = 0;
    *done = 0;
    if (!lb) return;
    atomic_store(&lb->hurry, 1);
    if (lb->pinger_started) pthread_join(lb->pinger, NULL);
    if (lb->echo_started) pthread_join(lb->echo, NULL);
    close(lb->client_fd);
    close(lb->server_fd);
    qsort(lb->rtt, (size_t)lb->done, sizeof(*lb->rtt), cmp_i64);
    *p50_us = sf_percentile(lb->rtt, (size_t)lb->done, 0.50);
    *p99_us = sf_percentile(lb->rtt, (size_t)lb->done, 0.99);
    *done = lb->done;
    free(lb->rtt);
    free(lb);
}
