/* The freeze-window language of SPEC §3 (`freeze:` under an environment).
 *
 *   weekly:   DAY HH:MM - DAY HH:MM ZONE     Fri 16:00 - Mon 08:00 Europe/Berlin  (may wrap the week)
 *             DAY - DAY ZONE                 Sat - Sun UTC  (00:00 of the first to 24:00 of the last)
 *   daily:    daily HH:MM - HH:MM ZONE       daily 22:00 - 06:00 UTC  (may wrap past midnight)
 *   absolute: YYYY-MM-DD[ HH:MM] - YYYY-MM-DD[ HH:MM] ZONE
 *             2026-12-22 - 2027-01-04 UTC    (a date alone starts at 00:00 / ends at 24:00)
 *
 * Day names Mon..Sun and "daily" are case-insensitive; times are 24-hour
 * HH:MM (24:00 only as an end); ZONE is UTC or an IANA name. Blanks around
 * '-' are required. Parsing is pure: whether the zone exists is decided when
 * it is loaded (tzif_load), the decision itself lives in commands/freeze_eval.h. */
#ifndef NM_FREEZE_H
#define NM_FREEZE_H

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_FREEZE_MAX_TEXT 256
#define CONFIG_FREEZE_MAX_ZONE 64
#define CONFIG_FREEZE_WEEK_MINUTES (7 * 1440)

enum config_freeze_kind {
    CONFIG_FREEZE_WEEKLY = 1,
    CONFIG_FREEZE_DAILY,
    CONFIG_FREEZE_ABSOLUTE,
};

/* A local civil date-time; minute of day 0..1440 (1440 = 24:00 = the end of that day). */
typedef struct config_freeze_when {
    int year, month, day;
    int minute;
} config_freeze_when;

typedef struct config_freeze {
    enum config_freeze_kind kind;
    /* WEEKLY: day 0 = Mon .. 6 = Sun, minute of day 0..1440. DAILY: minutes
     * only (days are 0). A weekly `DAY - DAY` window ends at minute 1440. */
    int start_dow, start_min;
    int end_dow, end_min;
    bool whole_days;                    /* WEEKLY written as `DAY - DAY` */
    /* ABSOLUTE: start and end in the zone's local time. */
    config_freeze_when start, end;
    bool start_has_time, end_has_time;  /* ABSOLUTE: HH:MM was written */
    char zone[CONFIG_FREEZE_MAX_ZONE + 1];   /* "UTC" or an IANA name */
    char text[CONFIG_FREEZE_MAX_TEXT + 1];   /* the original text */
} config_freeze;

/* Parses one freeze window. Returns 0 and fills *out, or -1 with a one-line
 * reason in err, e.g. "expected a weekday (Mon..Sun) at 'Fr'". */
int config_freeze_parse(const char *text, config_freeze *out, char *err, size_t errlen);

/* Canonical text for messages: "Fri 16:00 - Mon 08:00 Europe/Berlin",
 * "Sat - Sun UTC", "daily 22:00 - 06:00 UTC", "2026-12-22 - 2027-01-04 UTC". */
void config_freeze_format(const config_freeze *f, char *out, size_t outlen);

/* "Mon".."Sun" for 0..6; "?" otherwise. */
const char *config_freeze_day_name(int dow);

/* Length of a WEEKLY window in minutes (1 .. CONFIG_FREEZE_WEEK_MINUTES)
 * or of a DAILY one (1 .. 1440); 0 for ABSOLUTE. */
int config_freeze_span_minutes(const config_freeze *f);

#endif
