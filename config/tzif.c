/* TZif reader (RFC 8536) and POSIX TZ rule evaluation. See tzif.h. */
#include "tzif.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DAY_SECONDS 86400
#define HOUR_SECONDS 3600

/* RFC 8536 says offsets SHOULD lie in [-89999, 93599]; anything beyond is
 * corrupt, and the bound keeps local_to_utc's search window small. */
#define TZIF_MIN_OFFSET (-89999)
#define TZIF_MAX_OFFSET 93599

/* How far a local time may be from the UTC instant it names, with margin. */
#define SEARCH_WINDOW (2 * DAY_SECONDS)

/* One rule date of a POSIX TZ string: Jn, n or Mm.w.d, plus a time of day. */
enum rule_kind { RULE_JULIAN1 = 1, RULE_JULIAN0, RULE_MONTH };

struct rule_date {
    enum rule_kind kind;
    int n;          /* day for J (1..365) and n (0..365) */
    int m, w, d;    /* month 1..12, week 1..5, weekday 0 (Sun) .. 6 */
    int32_t time;   /* seconds after local midnight, -167h .. 167h */
};

struct posix_tz {
    int32_t std_off;     /* seconds east of UTC */
    int32_t dst_off;
    bool has_dst;
    struct rule_date start, end;
};

struct tzif_type {
    int32_t off;
    bool dst;
};

struct tzif_zone {
    size_t timecnt;
    int64_t *times;      /* strictly ascending */
    uint8_t *idx;        /* type of each transition */
    size_t typecnt;
    struct tzif_type types[TZIF_MAX_TYPES];
    bool has_rule;       /* footer present and non-empty */
    struct posix_tz rule;
};

/* ---- calendar ---- */

static bool is_leap(int64_t y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int tzif_days_in_month(int64_t year, int month) {
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month < 1 || month > 12) return 0;
    return month == 2 && is_leap(year) ? 29 : dim[month - 1];
}

/* Howard Hinnant's days_from_civil, with floor division for negative eras. */
int64_t tzif_days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void tzif_civil_from_days(int64_t z, int64_t *year, int *month, int *day) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int d = (int)(doy - (153 * mp + 2) / 5 + 1);
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = y + (m <= 2);
    *month = m;
    *day = d;
}

int tzif_weekday(int64_t days) {
    /* 1970-01-01 was a Thursday (3 when Monday is 0). */
    int64_t r = (days + 3) % 7;
    return (int)(r < 0 ? r + 7 : r);
}

static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* ---- error helper ---- */

static int fail(char *err, size_t errlen, const char *msg) {
    if (err && errlen) snprintf(err, errlen, "%s", msg);
    return -1;
}

/* ---- POSIX TZ string (footer) ---- */

/* Zone abbreviation: 3+ letters, or <...> of [A-Za-z0-9+-]. */
static const char *tz_name(const char *p) {
    if (*p == '<') {
        const char *q = ++p;
        while ((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') ||
               *q == '+' || *q == '-')
            q++;
        if (*q != '>' || q - p < 3) return NULL;
        return q + 1;
    }
    const char *q = p;
    while ((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z')) q++;
    return q - p >= 3 ? q : NULL;
}

static const char *tz_num(const char *p, int min, int max, int *out) {
    if (*p < '0' || *p > '9') return NULL;
    int v = 0;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p - '0');
        if (v > max) return NULL;
        p++;
    }
    if (v < min) return NULL;
    *out = v;
    return p;
}

/* [+-]hh[:mm[:ss]] with hh up to max_hours. */
static const char *tz_hms(const char *p, int max_hours, int32_t *out) {
    int sign = 1, h, m = 0, s = 0;
    if (*p == '+' || *p == '-') sign = *p++ == '-' ? -1 : 1;
    if (!(p = tz_num(p, 0, max_hours, &h))) return NULL;
    if (*p == ':') {
        if (!(p = tz_num(p + 1, 0, 59, &m))) return NULL;
        if (*p == ':' && !(p = tz_num(p + 1, 0, 59, &s))) return NULL;
    }
    *out = sign * (h * HOUR_SECONDS + m * 60 + s);
    return p;
}

static const char *tz_rule_date(const char *p, struct rule_date *r) {
    if (*p == 'J') {
        r->kind = RULE_JULIAN1;
        p = tz_num(p + 1, 1, 365, &r->n);
    } else if (*p == 'M') {
        r->kind = RULE_MONTH;
        if (!(p = tz_num(p + 1, 1, 12, &r->m)) || *p != '.') return NULL;
        if (!(p = tz_num(p + 1, 1, 5, &r->w)) || *p != '.') return NULL;
        p = tz_num(p + 1, 0, 6, &r->d);
    } else {
        r->kind = RULE_JULIAN0;
        p = tz_num(p, 0, 365, &r->n);
    }
    if (!p) return NULL;
    r->time = 2 * HOUR_SECONDS;
    /* RFC 8536 (version 3) allows -167..167 hours here. */
    if (*p == '/') p = tz_hms(p + 1, 167, &r->time);
    return p;
}

static int parse_posix_tz(const char *s, struct posix_tz *tz) {
    int32_t off;
    const char *p = tz_name(s);
    if (!p || !(p = tz_hms(p, 24, &off))) return -1;
    memset(tz, 0, sizeof *tz);
    tz->std_off = -off;   /* POSIX counts west of UTC */
    if (*p == '\0') return 0;
    if (!(p = tz_name(p))) return -1;
    tz->has_dst = true;
    tz->dst_off = tz->std_off + HOUR_SECONDS;
    if (*p && *p != ',') {
        if (!(p = tz_hms(p, 24, &off))) return -1;
        tz->dst_off = -off;
    }
    if (*p == '\0') {
        /* No rule: POSIX leaves it to the implementation; use the US rule as tzcode does. */
        tz->start = (struct rule_date){RULE_MONTH, 0, 3, 2, 0, 2 * HOUR_SECONDS};
        tz->end = (struct rule_date){RULE_MONTH, 0, 11, 1, 0, 2 * HOUR_SECONDS};
        return 0;
    }
    if (*p != ',' || !(p = tz_rule_date(p + 1, &tz->start))) return -1;
    if (*p != ',' || !(p = tz_rule_date(p + 1, &tz->end))) return -1;
    return *p == '\0' ? 0 : -1;
}

/* Local (wall) seconds at which a rule date happens in `year`. */
static int64_t rule_local(const struct rule_date *r, int64_t year) {
    int64_t days;
    switch (r->kind) {
    case RULE_JULIAN1: /* 1..365, Feb 29 never counted */
        days = tzif_days_from_civil(year, 1, 1) + r->n - 1 + (is_leap(year) && r->n >= 60);
        break;
    case RULE_JULIAN0:
        days = tzif_days_from_civil(year, 1, 1) + r->n;
        break;
    default: {
        int64_t first = tzif_days_from_civil(year, r->m, 1);
        int wd_first = (tzif_weekday(first) + 1) % 7;   /* 0 = Sunday, as POSIX */
        int day = 1 + (r->d - wd_first + 7) % 7 + (r->w - 1) * 7;
        if (day > tzif_days_in_month(year, r->m)) day -= 7;
        days = first + day - 1;
        break;
    }
    }
    return days * DAY_SECONDS + r->time;
}

/* UTC instants at which summer time starts and ends in `year`. The start
 * time is given on the standard clock, the end time on the summer clock. */
static void rule_year(const struct posix_tz *tz, int64_t year, int64_t *start, int64_t *end) {
    *start = rule_local(&tz->start, year) - tz->std_off;
    *end = rule_local(&tz->end, year) - tz->dst_off;
}

static int64_t year_of(int64_t t) {
    int64_t y;
    int m, d;
    tzif_civil_from_days(floor_div(t, DAY_SECONDS), &y, &m, &d);
    return y;
}

static bool rule_is_dst(const struct posix_tz *tz, int64_t t) {
    if (!tz->has_dst) return false;
    int64_t y0 = year_of(t);
    /* Summer time is [start(y), end(y)) or, south of the equator,
     * [start(y), end(y+1)); checking neighbouring years handles rules that
     * sit near the new year (e.g. all-year DST "EST5EDT,0/0,J365/25"). */
    for (int64_t y = y0 - 2; y <= y0 + 1; y++) {
        int64_t s, e, s2, e2;
        rule_year(tz, y, &s, &e);
        if (e <= s) rule_year(tz, y + 1, &s2, &e2), e = e2;
        if (s <= t && t < e) return true;
    }
    return false;
}

/* First rule transition strictly after t, or false if the rule has none. */
static bool rule_next(const struct posix_tz *tz, int64_t t, int64_t *next) {
    if (!tz->has_dst) return false;
    int64_t y0 = year_of(t), best = INT64_MAX;
    for (int64_t y = y0 - 1; y <= y0 + 2; y++) {
        int64_t s, e;
        rule_year(tz, y, &s, &e);
        if (s > t && s < best) best = s;
        if (e > t && e < best) best = e;
    }
    if (best == INT64_MAX) return false;
    *next = best;
    return true;
}

/* ---- TZif parsing ---- */

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p) {
    uint64_t v = (uint64_t)be32(p) << 32 | be32(p + 4);
    return (int64_t)v;
}

struct header {
    char version;
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

#define HEADER_LEN 44

static int read_header(const unsigned char *p, size_t avail, struct header *h, char *err,
                       size_t errlen) {
    if (avail < HEADER_LEN) return fail(err, errlen, "truncated TZif header");
    if (memcmp(p, "TZif", 4) != 0) return fail(err, errlen, "not a TZif file (bad magic)");
    h->version = (char)p[4];
    if (h->version != 0 && h->version != '2' && h->version != '3' && h->version != '4')
        return fail(err, errlen, "unsupported TZif version");
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    if (h->timecnt > TZIF_MAX_TIMES) return fail(err, errlen, "too many transitions in TZif file");
    if (h->typecnt == 0 || h->typecnt > TZIF_MAX_TYPES)
        return fail(err, errlen, "bad local time type count in TZif file");
    if (h->charcnt == 0 || h->charcnt > TZIF_MAX_CHARS)
        return fail(err, errlen, "bad designation count in TZif file");
    if (h->isutcnt != 0 && h->isutcnt != h->typecnt)
        return fail(err, errlen, "bad UT/local indicator count in TZif file");
    if (h->isstdcnt != 0 && h->isstdcnt != h->typecnt)
        return fail(err, errlen, "bad standard/wall indicator count in TZif file");
    if (h->leapcnt > TZIF_MAX_TIMES) return fail(err, errlen, "too many leap seconds in TZif file");
    return 0;
}

/* Size of a data block; counts are already bounded so this cannot overflow. */
static size_t block_len(const struct header *h, size_t timesize) {
    return (size_t)h->timecnt * timesize + h->timecnt + (size_t)h->typecnt * 6 + h->charcnt +
           (size_t)h->leapcnt * (timesize + 4) + h->isstdcnt + h->isutcnt;
}

static int read_block(const unsigned char *p, const struct header *h, size_t timesize,
                      tzif_zone *z, char *err, size_t errlen) {
    if (h->leapcnt != 0)
        return fail(err, errlen, "leap-second TZif files are not supported");
    z->timecnt = h->timecnt;
    z->typecnt = h->typecnt;
    if (h->timecnt) {
        z->times = malloc(h->timecnt * sizeof *z->times);
        z->idx = malloc(h->timecnt);
        if (!z->times || !z->idx) return fail(err, errlen, "out of memory");
    }
    for (size_t i = 0; i < h->timecnt; i++) {
        z->times[i] = timesize == 8 ? be64(p + i * 8) : (int32_t)be32(p + i * 4);
        if (z->times[i] < -TZIF_TIME_LIMIT || z->times[i] > TZIF_TIME_LIMIT)
            return fail(err, errlen, "transition time out of range in TZif file");
        if (i > 0 && z->times[i] <= z->times[i - 1])
            return fail(err, errlen, "transition times not ascending in TZif file");
    }
    p += h->timecnt * timesize;
    for (size_t i = 0; i < h->timecnt; i++) {
        if (p[i] >= h->typecnt) return fail(err, errlen, "bad transition type index in TZif file");
        z->idx[i] = p[i];
    }
    p += h->timecnt;
    for (size_t i = 0; i < h->typecnt; i++, p += 6) {
        int32_t off = (int32_t)be32(p);
        if (off < TZIF_MIN_OFFSET || off > TZIF_MAX_OFFSET)
            return fail(err, errlen, "UTC offset out of range in TZif file");
        if (p[4] > 1) return fail(err, errlen, "bad DST flag in TZif file");
        if (p[5] >= h->charcnt) return fail(err, errlen, "bad designation index in TZif file");
        z->types[i].off = off;
        z->types[i].dst = p[4] == 1;
    }
    /* The designations must be NUL-terminated inside their block. */
    if (p[h->charcnt - 1] != '\0') return fail(err, errlen, "unterminated designation in TZif file");
    p += h->charcnt;   /* no leap-second records: they were refused above */
    for (size_t i = 0; i < (size_t)h->isstdcnt + h->isutcnt; i++)
        if (p[i] > 1) return fail(err, errlen, "bad indicator in TZif file");
    return 0;
}

void tzif_free(tzif_zone *z) {
    if (!z) return;
    free(z->times);
    free(z->idx);
    free(z);
}

int tzif_parse(const unsigned char *data, size_t len, tzif_zone **out, char *err, size_t errlen) {
    struct header h;
    *out = NULL;
    if (!data) return fail(err, errlen, "empty TZif data");
    if (read_header(data, len, &h, err, errlen)) return -1;
    size_t pos = HEADER_LEN, n = block_len(&h, 4);
    if (n > len - pos) return fail(err, errlen, "truncated TZif data block");

    tzif_zone *z = calloc(1, sizeof *z);
    if (!z) return fail(err, errlen, "out of memory");

    if (h.version == 0) {
        if (read_block(data + pos, &h, 4, z, err, errlen)) goto bad;
        if (pos + n != len) {
            fail(err, errlen, "trailing bytes after TZif data");
            goto bad;
        }
        *out = z;
        return 0;
    }

    /* Version 2+: skip the 32-bit block, use the 64-bit one and the footer. */
    pos += n;
    if (read_header(data + pos, len - pos, &h, err, errlen)) goto bad;
    if (h.version == 0) {
        fail(err, errlen, "bad version in second TZif header");
        goto bad;
    }
    pos += HEADER_LEN;
    n = block_len(&h, 8);
    if (n > len - pos) {
        fail(err, errlen, "truncated TZif data block");
        goto bad;
    }
    if (read_block(data + pos, &h, 8, z, err, errlen)) goto bad;
    pos += n;

    if (len - pos < 2 || data[pos] != '\n') {
        fail(err, errlen, "missing TZif footer");
        goto bad;
    }
    pos++;
    const unsigned char *nl = memchr(data + pos, '\n', len - pos);
    if (!nl) {
        fail(err, errlen, "unterminated TZif footer");
        goto bad;
    }
    size_t flen = (size_t)(nl - (data + pos));
    if (flen > TZIF_MAX_FOOTER) {
        fail(err, errlen, "TZif footer too long");
        goto bad;
    }
    if ((size_t)(nl - data) + 1 != len) {
        fail(err, errlen, "trailing bytes after TZif footer");
        goto bad;
    }
    if (flen > 0) {
        char footer[TZIF_MAX_FOOTER + 1];
        memcpy(footer, data + pos, flen);
        footer[flen] = '\0';
        if (memchr(footer, '\0', flen) || parse_posix_tz(footer, &z->rule)) {
            fail(err, errlen, "bad TZ string in TZif footer");
            goto bad;
        }
        z->has_rule = true;
    }
    *out = z;
    return 0;
bad:
    tzif_free(z);
    return -1;
}

/* ---- lookups ---- */

/* Index of the last transition <= t, or -1 if t is before the first. */
static ptrdiff_t find_transition(const tzif_zone *z, int64_t t) {
    size_t lo = 0, hi = z->timecnt;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->times[mid] <= t) lo = mid + 1;
        else hi = mid;
    }
    return (ptrdiff_t)lo - 1;
}

/* Whether the footer rule governs t (after the last transition, or always when there are none). */
static bool uses_rule(const tzif_zone *z, int64_t t) {
    return z->has_rule && (z->timecnt == 0 || t >= z->times[z->timecnt - 1]);
}

static void offset_at(const tzif_zone *z, int64_t t, int32_t *off, bool *dst) {
    if (!z) {
        *off = 0, *dst = false;
        return;
    }
    if (uses_rule(z, t)) {
        *dst = rule_is_dst(&z->rule, t);
        *off = *dst ? z->rule.dst_off : z->rule.std_off;
        return;
    }
    ptrdiff_t i = find_transition(z, t);
    const struct tzif_type *ty = &z->types[i < 0 ? 0 : z->idx[i]];
    *off = ty->off;
    *dst = ty->dst;
}

/* First instant > t at which the offset may change; false if none. */
static bool next_change(const tzif_zone *z, int64_t t, int64_t *next) {
    if (!z) return false;
    if (!uses_rule(z, t)) {
        ptrdiff_t i = find_transition(z, t);
        if ((size_t)(i + 1) < z->timecnt) {
            *next = z->times[i + 1];
            return true;
        }
        return false;   /* after the last transition, no rule */
    }
    return rule_next(&z->rule, t, next);
}

int tzif_utc_offset(const tzif_zone *z, int64_t utc_seconds, int32_t *offset, bool *is_dst) {
    bool dst;
    if (utc_seconds < -TZIF_TIME_LIMIT || utc_seconds > TZIF_TIME_LIMIT) return -1;
    offset_at(z, utc_seconds, offset, &dst);
    if (is_dst) *is_dst = dst;
    return 0;
}

int tzif_local_seconds_to_utc(const tzif_zone *z, int64_t local, int fold_policy, int64_t *utc) {
    if (local < -TZIF_TIME_LIMIT || local > TZIF_TIME_LIMIT) return -1;
    /* Walk the intervals of constant offset around `local`; t = local - off
     * is a solution when it falls inside the interval with that offset. */
    int64_t t = local - SEARCH_WINDOW, limit = local + SEARCH_WINDOW;
    int64_t first = INT64_MAX, last = INT64_MIN, gap_end = INT64_MAX;
    int32_t prev_off = 0;
    bool have_prev = false;
    for (int steps = 0; steps < 64 && t <= limit; steps++) {
        int32_t off;
        bool dst;
        int64_t next;
        offset_at(z, t, &off, &dst);
        bool more = next_change(z, t, &next);
        if (!more || next > limit + 1) next = limit + 1;
        /* A jump forward at t: local times [t+prev_off, t+off) never happen. */
        if (have_prev && off > prev_off && local >= t + prev_off && local < t + off && t < gap_end)
            gap_end = t;
        int64_t cand = local - off;
        if (cand >= t && cand < next) {
            if (cand < first) first = cand;
            if (cand > last) last = cand;
        }
        prev_off = off;
        have_prev = true;
        t = next;
    }
    if (first != INT64_MAX) {
        *utc = fold_policy == TZIF_FOLD_LATER ? last : first;
        return 0;
    }
    if (gap_end != INT64_MAX) {
        *utc = gap_end;
        return 0;
    }
    /* Unreachable for sane zones; fall back to the offset at the naive instant. */
    int32_t off;
    bool dst;
    offset_at(z, local, &off, &dst);
    *utc = local - off;
    return 0;
}

int tzif_local_to_utc(const tzif_zone *z, tzif_civil c, int fold_policy, int64_t *utc) {
    if (c.year < 1 || c.year > 9999 || c.month < 1 || c.month > 12 || c.day < 1 ||
        c.day > tzif_days_in_month(c.year, c.month) || c.hour < 0 || c.hour > 24 ||
        c.minute < 0 || c.minute > 59 || c.second < 0 || c.second > 59 ||
        (c.hour == 24 && (c.minute || c.second)))
        return -1;
    int64_t local = tzif_days_from_civil(c.year, c.month, c.day) * DAY_SECONDS +
                    (int64_t)c.hour * HOUR_SECONDS + c.minute * 60 + c.second;
    return tzif_local_seconds_to_utc(z, local, fold_policy, utc);
}

/* ---- names and loading ---- */

bool tzif_valid_name(const char *name) {
    if (!name) return false;
    size_t len = strlen(name);
    if (len == 0 || len > TZIF_MAX_NAME) return false;
    bool comp_empty = true;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (c == '/') {
            if (comp_empty) return false;
            comp_empty = true;
            continue;
        }
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '+' || c == '-'))
            return false;
        comp_empty = false;
    }
    return !comp_empty;
}

int tzif_load(const char *zoneinfo_dir, const char *name, tzif_zone **out, char *err,
              size_t errlen) {
    char path[512], why[256];
    *out = NULL;
    if (!tzif_valid_name(name) || strstr(name, "..")) {
        if (err && errlen) snprintf(err, errlen, "invalid time zone name '%.64s'", name ? name : "");
        return -1;
    }
    if (!zoneinfo_dir) zoneinfo_dir = "/usr/share/zoneinfo";
    if ((size_t)snprintf(path, sizeof path, "%s/%s", zoneinfo_dir, name) >= sizeof path)
        return fail(err, errlen, "time zone path too long");

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            if (err && errlen) snprintf(err, errlen, "unknown time zone '%s'", name);
        } else if (err && errlen) {
            int e = errno;
            if (strerror_r(e, why, sizeof why) != 0) snprintf(why, sizeof why, "errno %d", e);
            snprintf(err, errlen, "cannot read time zone '%s': %s", name, why);
        }
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        if (err && errlen) snprintf(err, errlen, "unknown time zone '%s'", name);
        return -1;
    }
    if (st.st_size > TZIF_MAX_FILE) {
        close(fd);
        if (err && errlen) snprintf(err, errlen, "time zone file for '%s' is too large", name);
        return -1;
    }
    /* Read up to one byte past the ceiling so a file that grew is still caught. */
    unsigned char *buf = malloc(TZIF_MAX_FILE + 1);
    if (!buf) {
        close(fd);
        return fail(err, errlen, "out of memory");
    }
    size_t got = 0;
    while (got < TZIF_MAX_FILE + 1) {
        ssize_t r = read(fd, buf + got, TZIF_MAX_FILE + 1 - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            free(buf);
            if (strerror_r(e, why, sizeof why) != 0) snprintf(why, sizeof why, "errno %d", e);
            if (err && errlen) snprintf(err, errlen, "cannot read time zone '%s': %s", name, why);
            return -1;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got > TZIF_MAX_FILE) {
        free(buf);
        if (err && errlen) snprintf(err, errlen, "time zone file for '%s' is too large", name);
        return -1;
    }
    char perr[128];
    int rc = tzif_parse(buf, got, out, perr, sizeof perr);
    free(buf);
    if (rc && err && errlen) snprintf(err, errlen, "time zone '%s': %s", name, perr);
    return rc;
}
