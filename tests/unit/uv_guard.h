/* Loop helpers for tests that run a libuv loop by hand: a guard timer that
 * bounds every wait, the wait itself, draining the loop at teardown, and a
 * count of open descriptors (teardown must give back every one). */
#ifndef NM_TEST_UV_GUARD_H
#define NM_TEST_UV_GUARD_H

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct uv_guard {
    uv_timer_t timer;
    bool fired;
} uv_guard;

static inline void uv_guard_fire(uv_timer_t *tm) { ((uv_guard *)tm->data)->fired = true; }
static inline void uv_guard_stop_loop(uv_timer_t *tm) { uv_stop(tm->loop); }

static inline void uv_guard_init(uv_loop_t *loop, uv_guard *g) {
    uv_timer_init(loop, &g->timer);
    g->timer.data = g;
    g->fired = false;
}

/* Arms the guard for ms; run the loop while !g->fired, then uv_guard_disarm. */
static inline void uv_guard_arm(uv_guard *g, int ms) {
    g->fired = false;
    uv_timer_start(&g->timer, uv_guard_fire, (uint64_t)ms, 0);
}
static inline void uv_guard_disarm(uv_guard *g) { uv_timer_stop(&g->timer); }

/* Runs the loop until *counter >= target or ms pass; true if reached. */
static inline bool uv_guard_wait(uv_loop_t *loop, uv_guard *g, const int *counter, int target, int ms) {
    uv_guard_arm(g, ms);
    while (*counter < target && !g->fired) uv_run(loop, UV_RUN_ONCE);
    uv_guard_disarm(g);
    return *counter >= target;
}

static inline void uv_guard_run_for(uv_loop_t *loop, uv_guard *g, int ms) {
    int never = 0;
    uv_guard_wait(loop, g, &never, 1, ms);
}

/* Teardown: runs the loop until nothing is left on it (at most 5 s: the
 * guard, unreferenced, stops a loop that would not finish by itself), then
 * closes the guard. */
static inline void uv_guard_drain(uv_loop_t *loop, uv_guard *g) {
    uv_unref((uv_handle_t *)&g->timer);
    uv_timer_start(&g->timer, uv_guard_stop_loop, 5000, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&g->timer, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

/* Open descriptors of the process, or -1. */
static inline int count_open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

#endif
