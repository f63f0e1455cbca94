/* slack-fake: the floor under ack latency. While a load runs, a helper
 * thread times small round trips over a TCP connection on 127.0.0.1 to an
 * echo thread: the kernel's loopback plus two thread wake-ups, which is
 * what every envelope -> ack round trip pays before the bot does any work.
 * Runs beside the lws loop and shares nothing with it. */
#ifndef SF_LOOPBACK_H
#define SF_LOOPBACK_H

#include <stddef.h>
#include <stdint.h>

#define SF_LOOPBACK_MAX_TRIPS 10000

typedef struct sf_loopback sf_loopback;

/* Starts `trips` round trips (capped at SF_LOOPBACK_MAX_TRIPS), one every
 * spacing_us. Returns NULL if a socket or thread cannot be made. */
sf_loopback *sf_loopback_start(int trips, int64_t spacing_us);

/* Lets the remaining trips run back to back, joins the threads and frees
 * lb. Fills the p50/p99 of the trips done (µs) and their count. */
void sf_loopback_finish(sf_loopback *lb, int64_t *p50_us, int64_t *p99_us, int *done);

#endif
