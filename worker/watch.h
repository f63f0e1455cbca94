/* The watcher: one thread that follows every registered deployment of its
 * worker pool to the end, driven by Nomad blocking-query answers over one
 * libcurl multi handle (no thread parked per deployment, no sleep loop).
 *
 * Per request a small state machine: evaluation -> deployment -> (on an
 * automatic revert) the revert's deployment -> end. Phase changes
 * (rolling, awaiting_promotion, paused) and the end are committed with their
 * audit events; count changes are only published. A request that waits for
 * canary promotion or stays paused longer than queue.hold_limit is failed
 * (it holds its job). Claims and job leases are renewed while it watches. */
#ifndef NM_WATCH_H
#define NM_WATCH_H

#include <stdatomic.h>
#include <stddef.h>

#include "config.h"
#include "run.h"

typedef struct watcher watcher;

/* Starts the thread. It stops when *stop becomes true (and watcher_stop is
 * called). Returns NULL if the thread could not start. */
watcher *watcher_start(config_holder *holder, atomic_bool *stop);

/* Hands over a registered request (state running). Takes ownership of x (a
 * heap run, released with run_free); the watcher acknowledges its work entry
 * when the request ends. Thread-safe. */
void watcher_hand(watcher *wt, run *x);

/* Requests being watched now. Thread-safe. */
size_t watcher_count(watcher *wt);

/* Joins the thread. Requests still being watched are let go: their job
 * leases are released and their work entries stay pending, so another
 * worker resumes them. */
void watcher_stop(watcher *wt);

#endif
