#ifndef NM_CLOCK_H
#define NM_CLOCK_H

#include <stdint.h>

/* Monotonic milliseconds, for timeouts and durations. */
int64_t nm_mono_ms(void);
/* Wall-clock milliseconds since the epoch, for display only (PostgreSQL's
 * clock is the one that stamps requests and audit events). */
int64_t nm_wall_ms(void);

#endif
