/* Freeze-window grammar (see freeze.h). Pure: no I/O, no clock, no zone data. */
#include "freeze.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "tzif.h"

#define MAX_TOKENS 12

static const char *const day_names[7] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};

const char *config_freeze_day_name(int dow) {
    return dow >= 0 && dow < 7 ? day_names[dow] : "?";
}

struct cursor {
    char *tok[MAX_TOKENS];
    int n, i;
    char *err;
    size_t errlen;
};

static int failf(struct cursor *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int failf(struct cursor *c, const char *fmt, ...) {
    if (c->err && c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* "expected WHAT at 'tok'" or "... at end of text"; a hint when the writer
 * glued '-' to a neighbour ("16:00-Mon"), the usual mistake. */
static int expected_hint(struct cursor *c, const char *what, bool hint_dash) {
    if (c->i >= c->n) return failf(c, "expected %s at end of text", what);
    const char *t = c->tok[c->i] ? c->tok[c->i] : "";   /* never NULL below n; said for the optimiser */
    const char *hint = hint_dash && strchr(t, '-') && strcmp(t, "-") != 0 ? " (put blanks around '-')" : "";
    return failf(c, "expected %s at '%.40s'%s", what, t, hint);
}

static int expected(struct cursor *c, const char *what) {
    return expected_hint(c, what, true);
}

static const char *peek(const struct cursor *c) {
    return c->i < c->n ? c->tok[c->i] : NULL;
}

static bool is_digit(char ch) {
    return ch >= '0' && ch <= '9';
}

static int parse_day(struct cursor *c, int *dow) {
    const char *t = peek(c);
    for (int d = 0; t && d < 7; d++) {
        if (strcasecmp(t, day_names[d]) == 0) {
            *dow = d;
            c->i++;
            return 0;
        }
    }
    return expected(c, "a weekday (Mon..Sun)");
}

static bool looks_like_time(const char *t) {
    return t && strchr(t, ':') != NULL;
}

/* HH:MM; 24:00 only when allow_24 (an end). */
static int parse_time(struct cursor *c, bool allow_24, int *minute) {
    const char *t = peek(c);
    if (!t || strlen(t) != 5 || !is_digit(t[0]) || !is_digit(t[1]) || t[2] != ':' ||
        !is_digit(t[3]) || !is_digit(t[4]))
        return expected(c, "a time HH:MM");
    int h = (t[0] - '0') * 10 + (t[1] - '0'), m = (t[3] - '0') * 10 + (t[4] - '0');
    if (h == 24 && m == 0) {
        if (!allow_24) return failf(c, "24:00 is only valid as an end time");
    } else if (h > 23) {
        return failf(c, "hour out of range (00..23) at '%s'", t);
    }
    if (m > 59) return failf(c, "minute out of range (00..59) at '%s'", t);
    *minute = h * 60 + m;
    c->i++;
    return 0;
}

static int parse_date(struct cursor *c, config_freeze_when *w) {
    const char *t = peek(c);
    if (!t || strlen(t) != 10 || t[4] != '-' || t[7] != '-')
        return expected_hint(c, "a date YYYY-MM-DD", false);
    for (int k = 0; k < 10; k++)
        if (k != 4 && k != 7 && !is_digit(t[k])) return expected_hint(c, "a date YYYY-MM-DD", false);
    int y = (t[0] - '0') * 1000 + (t[1] - '0') * 100 + (t[2] - '0') * 10 + (t[3] - '0');
    int mo = (t[5] - '0') * 10 + (t[6] - '0'), d = (t[8] - '0') * 10 + (t[9] - '0');
    if (y < 1970) return failf(c, "year out of range (1970..9999) at '%s'", t);
    if (mo < 1 || mo > 12 || d < 1 || d > tzif_days_in_month(y, mo))
        return failf(c, "no such date '%s'", t);
    w->year = y, w->month = mo, w->day = d, w->minute = 0;
    c->i++;
    return 0;
}

static int parse_dash(struct cursor *c) {
    const char *t = peek(c);
    if (!t || strcmp(t, "-") != 0) return expected(c, "'-'");
    c->i++;
    return 0;
}

static int parse_zone(struct cursor *c, config_freeze *out) {
    const char *t = peek(c);
    if (!t) return expected(c, "a time zone (UTC or an IANA name such as Europe/Berlin)");
    if (strlen(t) > CONFIG_FREEZE_MAX_ZONE)
        return failf(c, "time zone name too long (max %d characters)", CONFIG_FREEZE_MAX_ZONE);
    if (strcasecmp(t, "UTC") == 0) {
        snprintf(out->zone, sizeof out->zone, "UTC");
    } else {
        if (!tzif_valid_name(t) || strstr(t, "..")) return failf(c, "invalid time zone name '%s'", t);
        snprintf(out->zone, sizeof out->zone, "%s", t);
    }
    c->i++;
    if (c->i < c->n) return failf(c, "unexpected '%.40s' after the time zone", c->tok[c->i]);
    return 0;
}

static int parse_weekly(struct cursor *c, config_freeze *out) {
    out->kind = CONFIG_FREEZE_WEEKLY;
    if (parse_day(c, &out->start_dow)) return -1;
    const char *t = peek(c);
    if (t && strcmp(t, "-") == 0) {
        /* DAY - DAY: whole days, 00:00 of the first to 24:00 of the last. */
        c->i++;
        out->whole_days = true;
        out->start_min = 0;
        if (parse_day(c, &out->end_dow)) return -1;
        out->end_min = 1440;
        return parse_zone(c, out);
    }
    if (!looks_like_time(t)) return expected(c, "a time HH:MM or '-'");
    if (parse_time(c, false, &out->start_min) || parse_dash(c) || parse_day(c, &out->end_dow) ||
        parse_time(c, true, &out->end_min))
        return -1;
    if (out->start_dow == out->end_dow && out->start_min == out->end_min)
        return failf(c, "empty window: start equals end");
    return parse_zone(c, out);
}

static int parse_daily(struct cursor *c, config_freeze *out) {
    out->kind = CONFIG_FREEZE_DAILY;
    c->i++;   /* "daily" */
    if (parse_time(c, false, &out->start_min) || parse_dash(c) || parse_time(c, true, &out->end_min))
        return -1;
    if (out->start_min == out->end_min) return failf(c, "empty window: start equals end");
    return parse_zone(c, out);
}

static long long when_key(const config_freeze_when *w) {
    return (long long)tzif_days_from_civil(w->year, w->month, w->day) * 1440 + w->minute;
}

static int parse_absolute(struct cursor *c, config_freeze *out) {
    out->kind = CONFIG_FREEZE_ABSOLUTE;
    if (parse_date(c, &out->start)) return -1;
    const char *t = peek(c);
    if (looks_like_time(t)) {
        if (parse_time(c, false, &out->start.minute)) return -1;
        out->start_has_time = true;
    } else if (!t || strcmp(t, "-") != 0) {
        return expected(c, "a time HH:MM or '-'");
    }
    if (parse_dash(c) || parse_date(c, &out->end)) return -1;
    if (looks_like_time(peek(c))) {
        if (parse_time(c, true, &out->end.minute)) return -1;
        out->end_has_time = true;
    } else {
        out->end.minute = 1440;   /* the end date is included */
    }
    if (when_key(&out->end) <= when_key(&out->start)) return failf(c, "end must be after start");
    return parse_zone(c, out);
}

int config_freeze_parse(const char *text, config_freeze *out, char *err, size_t errlen) {
    char buf[CONFIG_FREEZE_MAX_TEXT + 1];
    struct cursor c = {.err = err, .errlen = errlen};

    memset(out, 0, sizeof *out);
    if (err && errlen) err[0] = '\0';
    if (!text) return failf(&c, "empty freeze window");
    size_t len = strnlen(text, CONFIG_FREEZE_MAX_TEXT + 1);
    if (len > CONFIG_FREEZE_MAX_TEXT)
        return failf(&c, "freeze window too long (max %d characters)", CONFIG_FREEZE_MAX_TEXT);
    for (size_t k = 0; k < len; k++)
        if ((unsigned char)text[k] < 0x20 && text[k] != '\t') return failf(&c, "control character in freeze window");
    memcpy(buf, text, len + 1);

    for (char *p = buf; *p;) {
        while (*p == ' ' || *p == '\t') *p++ = '\0';
        if (!*p) break;
        if (c.n == MAX_TOKENS) return failf(&c, "too many words in freeze window");
        c.tok[c.n++] = p;
        while (*p && *p != ' ' && *p != '\t') p++;
    }
    if (c.n == 0) return failf(&c, "empty freeze window");

    const char *first = c.tok[0];
    int rc;
    if (strcasecmp(first, "daily") == 0) rc = parse_daily(&c, out);
    else if (is_digit(first[0])) rc = parse_absolute(&c, out);
    else if ((first[0] >= 'A' && first[0] <= 'Z') || (first[0] >= 'a' && first[0] <= 'z'))
        rc = parse_weekly(&c, out);
    else rc = failf(&c, "expected a weekday (Mon..Sun), 'daily' or a date (YYYY-MM-DD) at '%.40s'", first);
    if (rc) {
        memset(out, 0, sizeof *out);
        return -1;
    }
    memcpy(out->text, text, len + 1);
    return 0;
}

int config_freeze_span_minutes(const config_freeze *f) {
    int span;
    switch (f->kind) {
    case CONFIG_FREEZE_WEEKLY:
        span = (f->end_dow * 1440 + f->end_min) - (f->start_dow * 1440 + f->start_min);
        span %= CONFIG_FREEZE_WEEK_MINUTES;
        if (span < 0) span += CONFIG_FREEZE_WEEK_MINUTES;
        return span == 0 ? CONFIG_FREEZE_WEEK_MINUTES : span;
    case CONFIG_FREEZE_DAILY:
        span = (f->end_min - f->start_min) % 1440;
        if (span < 0) span += 1440;
        return span == 0 ? 1440 : span;
    default:
        return 0;
    }
}

static void fmt_when(char *out, size_t outlen, const config_freeze_when *w, bool with_time) {
    if (with_time)
        snprintf(out, outlen, "%04d-%02d-%02d %02d:%02d", w->year, w->month, w->day, w->minute / 60,
                 w->minute % 60);
    else snprintf(out, outlen, "%04d-%02d-%02d", w->year, w->month, w->day);
}

void config_freeze_format(const config_freeze *f, char *out, size_t outlen) {
    char a[32], b[32];
    if (!out || !outlen) return;
    switch (f->kind) {
    case CONFIG_FREEZE_WEEKLY:
        if (f->whole_days)
            snprintf(out, outlen, "%s - %s %s", config_freeze_day_name(f->start_dow),
                     config_freeze_day_name(f->end_dow), f->zone);
        else
            snprintf(out, outlen, "%s %02d:%02d - %s %02d:%02d %s",
                     config_freeze_day_name(f->start_dow), f->start_min / 60, f->start_min % 60,
                     config_freeze_day_name(f->end_dow), f->end_min / 60, f->end_min % 60, f->zone);
        break;
    case CONFIG_FREEZE_DAILY:
        snprintf(out, outlen, "daily %02d:%02d - %02d:%02d %s", f->start_min / 60, f->start_min % 60,
                 f->end_min / 60, f->end_min % 60, f->zone);
        break;
    case CONFIG_FREEZE_ABSOLUTE:
        fmt_when(a, sizeof a, &f->start, f->start_has_time);
        fmt_when(b, sizeof b, &f->end, f->end_has_time);
        snprintf(out, outlen, "%s - %s %s", a, b, f->zone);
        break;
    default:
        snprintf(out, outlen, "(invalid freeze window)");
    }
}
