/* Freeze decisions (SPEC §3 `freeze:`): is an instant inside a freeze
 * window, and until when. Pure: the caller supplies the instant and the
 * zone (loaded once with tzif_load and shared read-only).
 *
 * Weekly and daily windows are evaluated on the zone's own clock, so
 * "Fri 16:00 - Mon 08:00 Europe/Berlin" follows Berlin's summer time. A
 * boundary that falls in a DST gap moves to the end of the gap; one that
 * falls in the overlap (clocks going back) starts at the earlier and ends
 * at the later instant, so a window is never shorter than written. */
#ifndef NM_FREEZE_EVAL_H
#define NM_FREEZE_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "freeze.h"
#include "tzif.h"

/* "Until further notice": a window covering the whole week or day. */
#define FREEZE_FOREVER INT64_MAX

/* True if utc_seconds lies inside window f (start inclusive, end
 * exclusive) in zone z (the zone named by f->zone; NULL means UTC). When
 * true and until_utc is not NULL, *until_utc is the first instant after
 * the freeze, including any occurrence that starts exactly when this one
 * ends, or FREEZE_FOREVER. */
bool freeze_active(const config_freeze *f, const tzif_zone *z, int64_t utc_seconds,
                   int64_t *until_utc);

/* Text for "frozen until ...": "Mon 08:00 Europe/Berlin (07:00 UTC)",
 * "Mon 08:00 UTC", "2027-01-05 00:00 Europe/Berlin (2027-01-04 23:00 UTC)"
 * for absolute windows, "further notice" for FREEZE_FOREVER. */
void freeze_format_until(const config_freeze *f, const tzif_zone *z, int64_t until_utc, char *out,
                         size_t outlen);

#endif
