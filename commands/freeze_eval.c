/* Freeze decisions over parsed windows and zones. See freeze_eval.h. */
#include "freeze_eval.h"

#include <stdio.h>
#include <string.h>

#define DAY_SECONDS 86400

static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* One occurrence of a repeating window, as UTC instants. start_min is the
 * local start in minutes since the local epoch. */
static int occurrence(const tzif_zone *z, int64_t start_min, int span_min, int64_t *s, int64_t *e) {
    if (tzif_local_seconds_to_utc(z, start_min * 60, TZIF_FOLD_EARLIER, s)) return -1;
    if (tzif_local_seconds_to_utc(z, (start_min + span_min) * 60, TZIF_FOLD_LATER, e)) return -1;
    return 0;
}

static bool repeating_active(const config_freeze *f, const tzif_zone *z, int64_t t, int64_t *until) {
    int span = config_freeze_span_minutes(f);
    int period_days = f->kind == CONFIG_FREEZE_WEEKLY ? 7 : 1;
    int32_t off;

    if (tzif_utc_offset(z, t, &off, NULL)) return false;
    if (span >= period_days * 1440) {
        /* The window covers the whole period: frozen with no end. */
        if (until) *until = FREEZE_FOREVER;
        return true;
    }
    /* The period (week starting Monday, or day) that holds t on the local clock. */
    int64_t lday = floor_div(t + off, DAY_SECONDS);
    int64_t base = f->kind == CONFIG_FREEZE_WEEKLY ? lday - tzif_weekday(lday) : lday;
    int64_t first_min = (int64_t)f->start_dow * 1440 + f->start_min;

    /* The occurrence that holds t started in this period or one shortly
     * before (a window may wrap, and DST moves boundaries by hours). */
    for (int k = -2; k <= 1; k++) {
        int64_t s, e;
        int64_t start_min = (base + (int64_t)k * period_days) * 1440 + first_min;
        if (occurrence(z, start_min, span, &s, &e)) return false;
        if (s <= t && t < e) {
            if (until) {
                /* Occurrences can touch when both boundaries fall into the same
                 * DST gap; report the end of the joined freeze. */
                for (int j = 1; j <= 3; j++) {
                    int64_t s2, e2;
                    if (occurrence(z, start_min + (int64_t)j * period_days * 1440, span, &s2, &e2) ||
                        s2 > e)
                        break;
                    e = e2;
                }
                *until = e;
            }
            return true;
        }
    }
    return false;
}

static int when_to_utc(const tzif_zone *z, const config_freeze_when *w, int policy, int64_t *utc) {
    tzif_civil c = {w->year, w->month, w->day, w->minute / 60, w->minute % 60, 0};
    return tzif_local_to_utc(z, c, policy, utc);
}

bool freeze_active(const config_freeze *f, const tzif_zone *z, int64_t t, int64_t *until_utc) {
    if (!f || t < -TZIF_TIME_LIMIT || t > TZIF_TIME_LIMIT) return false;
    switch (f->kind) {
    case CONFIG_FREEZE_WEEKLY:
    case CONFIG_FREEZE_DAILY:
        return repeating_active(f, z, t, until_utc);
    case CONFIG_FREEZE_ABSOLUTE: {
        int64_t s, e;
        if (when_to_utc(z, &f->start, TZIF_FOLD_EARLIER, &s) ||
            when_to_utc(z, &f->end, TZIF_FOLD_LATER, &e))
            return false;
        if (s <= t && t < e) {
            if (until_utc) *until_utc = e;
            return true;
        }
        return false;
    }
    default:
        return false;
    }
}

/* Splits an instant on some clock into date, weekday and minute of day. */
static void split(int64_t secs, int64_t *y, int *mo, int *d, int *dow, int *min) {
    int64_t days = floor_div(secs, DAY_SECONDS);
    tzif_civil_from_days(days, y, mo, d);
    *dow = tzif_weekday(days);
    *min = (int)((secs - days * DAY_SECONDS) / 60);
}

void freeze_format_until(const config_freeze *f, const tzif_zone *z, int64_t until, char *out,
                         size_t outlen) {
    if (!out || !outlen) return;
    int32_t off = 0;
    if (until == FREEZE_FOREVER || tzif_utc_offset(z, until, &off, NULL)) {
        snprintf(out, outlen, "further notice");
        return;
    }
    int64_t ly, uy;
    int lmo, ld, ldow, lmin, umo, ud, udow, umin;
    split(until + off, &ly, &lmo, &ld, &ldow, &lmin);
    split(until, &uy, &umo, &ud, &udow, &umin);
    bool utc = strcmp(f->zone, "UTC") == 0;
    if (f->kind == CONFIG_FREEZE_ABSOLUTE) {
        if (utc)
            snprintf(out, outlen, "%04lld-%02d-%02d %02d:%02d UTC", (long long)ly, lmo, ld, lmin / 60,
                     lmin % 60);
        else
            snprintf(out, outlen, "%04lld-%02d-%02d %02d:%02d %s (%04lld-%02d-%02d %02d:%02d UTC)",
                     (long long)ly, lmo, ld, lmin / 60, lmin % 60, f->zone, (long long)uy, umo, ud,
                     umin / 60, umin % 60);
    } else if (utc) {
        snprintf(out, outlen, "%s %02d:%02d UTC", config_freeze_day_name(ldow), lmin / 60, lmin % 60);
    } else {
        snprintf(out, outlen, "%s %02d:%02d %s (%02d:%02d UTC)", config_freeze_day_name(ldow),
                 lmin / 60, lmin % 60, f->zone, umin / 60, umin % 60);
    }
}
