/* SIGHUP: re-read the configuration into a new snapshot without blocking
 * the loop (the file and its ${file:} secrets are read on the thread pool),
 * and swap it in only when valid. */
#ifndef NM_RELOAD_H
#define NM_RELOAD_H

#include <stdbool.h>
#include <uv.h>

#include "config.h"

/* Called on the loop thread after a reload attempt; ok is false when the
 * file was invalid (the old snapshot stays). */
typedef void (*reload_done_fn)(void *ud, bool ok);

/* Starts one reload of h's current file. While one is running another is
 * skipped (send SIGHUP again once it is logged). Logs the outcome. Returns 0, or -1 if it could not be started. */
int reload_start(uv_loop_t *loop, config_holder *h, reload_done_fn done, void *ud);

#endif
