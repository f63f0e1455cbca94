#include "lws_uv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct lws_uv {
    uv_loop_t *loop;
    struct lws_context *ctx;
    int event_fd;      /* lws's event fd, -1 if it could not be told apart */
    int phase;         /* 0: not destroying yet, 1: first destroy done */
    uv_idle_t idle;
    void (*done)(void *);
    void *done_ud;
};

static bool is_eventfd(int fd) {
    char path[64], target[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    if (n <= 0) return false;
    target[n] = '\0';
    return strcmp(target, "anon_inode:[eventfd]") == 0;
}

typedef struct fd_list {
    int fd[8];
    int n;
} fd_list;

static void collect_eventfd_polls(uv_handle_t *h, void *arg) {
    fd_list *l = arg;
    uv_os_fd_t fd;
    if (h->type != UV_POLL || uv_is_closing(h) || uv_fileno(h, &fd) != 0) return;
    if (l->n < (int)(sizeof(l->fd) / sizeof(l->fd[0])) && is_eventfd(fd)) l->fd[l->n++] = fd;
}

/* The eventfd poll handle that `after` has and `before` has not, or -1. */
static int new_event_fd(const fd_list *before, const fd_list *after) {
    int found = -1;
    for (int i = 0; i < after->n; i++) {
        bool old = false;
        for (int j = 0; j < before->n; j++) old = old || before->fd[j] == after->fd[i];
        if (old) continue;
        if (found >= 0) return -1;   /* ambiguous: protect nothing rather than the wrong fd */
        found = after->fd[i];
    }
    return found;
}

struct lws_context *lws_uv_create(uv_loop_t *loop, struct lws_context_creation_info *info, lws_uv **out) {
    lws_uv *u = calloc(1, sizeof(*u));
    if (!u) return NULL;
    void *loops[1] = {loop};
    info->options |= LWS_SERVER_OPTION_LIBUV;
    info->foreign_loops = loops;
    fd_list before = {.n = 0}, after = {.n = 0};
    uv_walk(loop, collect_eventfd_polls, &before);
    struct lws_context *ctx = lws_create_context(info);
    uv_walk(loop, collect_eventfd_polls, &after);
    info->foreign_loops = NULL;   /* loops[] is gone when we return */
    if (!ctx) {
        free(u);
        return NULL;
    }
    u->loop = loop;
    u->ctx = ctx;
    u->event_fd = new_event_fd(&before, &after);
    uv_idle_init(loop, &u->idle);
    u->idle.data = u;
    *out = u;
    return ctx;
}

static void park_event_fd(lws_uv *u) {
    if (u->event_fd < 0 || fcntl(u->event_fd, F_GETFD) != -1 || errno != EBADF) return;
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0) return;
    if (devnull != u->event_fd) {
        if (dup2(devnull, u->event_fd) == u->event_fd) fcntl(u->event_fd, F_SETFD, FD_CLOEXEC);
        close(devnull);
    }
}

static void lws_handle_seen(uv_handle_t *h, void *arg) {
    void **a = arg;
    if (h->data == a[0]) a[1] = h;
}

static void idle_closed(uv_handle_t *h) {
    lws_uv *u = h->data;
    void (*done)(void *) = u->done;
    void *ud = u->done_ud;
    free(u);
    if (done) done(ud);
}

static void destroy_step(uv_idle_t *i) {
    lws_uv *u = i->data;
    if (u->phase == 0) {
        u->phase = 1;
        lws_context_destroy(u->ctx);   /* closes every wsi; handles close on later iterations */
        park_event_fd(u);
        return;
    }
    void *a[2] = {u->ctx, NULL};
    uv_walk(u->loop, lws_handle_seen, a);
    if (a[1]) return;                  /* lws still has handles on the loop */
    lws_context_destroy(u->ctx);       /* second call: frees the context */
    u->ctx = NULL;
    uv_idle_stop(&u->idle);
    uv_close((uv_handle_t *)&u->idle, idle_closed);
}

void lws_uv_destroy(lws_uv *u, void (*done)(void *ud), void *ud) {
    u->done = done;
    u->done_ud = ud;
    uv_idle_start(&u->idle, destroy_step);
}
