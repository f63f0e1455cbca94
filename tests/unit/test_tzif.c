/* TZif reader: offsets of real zones at known instants, local -> UTC across
 * DST gaps and overlaps, strict rejection of truncated and corrupted files.
 * Expected values were computed independently with Python's zoneinfo and
 * cross-checked with `TZ=... date -d @N`. Needs tzdata in /usr/share/zoneinfo. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <unistd.h>

#include "tzif.h"

#define ZONEINFO "/usr/share/zoneinfo"

/* ---- zone cache: each zone is loaded once ---- */

static struct {
    const char *name;
    tzif_zone *z;
} cache[16];

static const tzif_zone *zone(const char *name) {
    size_t i;
    char err[256];
    for (i = 0; i < 16 && cache[i].name; i++)
        if (strcmp(cache[i].name, name) == 0) return cache[i].z;
    assert_true(i < 16);
    tzif_zone *z = NULL;
    if (tzif_load(ZONEINFO, name, &z, err, sizeof err) != 0) fail_msg("load %s: %s", name, err);
    cache[i].name = name;
    cache[i].z = z;
    return z;
}

static unsigned char *slurp(const char *name, size_t *len) {
    char path[256];
    snprintf(path, sizeof path, ZONEINFO "/%s", name);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    unsigned char *buf = malloc(TZIF_MAX_FILE);
    assert_non_null(buf);
    *len = fread(buf, 1, TZIF_MAX_FILE, fp);
    fclose(fp);
    return buf;
}

/* ---- offsets at known instants ---- */

struct offset_case {
    const char *zone;
    int64_t utc;
    int32_t offset;
    bool dst;
    const char *when;
};

static const struct offset_case offset_cases[] = {
    {"UTC", INT64_C(1717243200), 0, false, "2024-06-01T12:00Z"},
    {"Europe/Berlin", INT64_C(1705320000), 3600, false, "2024-01-15T12:00Z winter"},
    {"Europe/Berlin", INT64_C(1721044800), 7200, true, "2024-07-15T12:00Z summer"},
    {"Europe/Berlin", INT64_C(1711846799), 3600, false, "2024-03-31T00:59:59Z last CET second"},
    {"Europe/Berlin", INT64_C(1711846800), 7200, true, "2024-03-31T01:00Z first CEST second"},
    {"Europe/Berlin", INT64_C(1729990799), 7200, true, "2024-10-27T00:59:59Z last CEST second"},
    {"Europe/Berlin", INT64_C(1729990800), 3600, false, "2024-10-27T01:00Z first CET second"},
    {"Europe/Berlin", INT64_C(2224713600), 7200, true, "2040-07-01 footer rule summer"},
    {"Europe/Berlin", INT64_C(2237932800), 3600, false, "2040-12-01 footer rule winter"},
    {"Europe/Berlin", INT64_C(4109878799), 3600, false, "2100-03-28T00:59:59Z footer rule"},
    {"Europe/Berlin", INT64_C(4109878800), 7200, true, "2100-03-28T01:00Z footer rule"},
    {"Europe/Berlin", INT64_C(4128627599), 7200, true, "2100-10-31T00:59:59Z footer rule"},
    {"Europe/Berlin", INT64_C(4128627600), 3600, false, "2100-10-31T01:00Z footer rule"},
    {"Europe/Berlin", INT64_C(-775872000), 10800, true, "1945-06-01 double summer time"},
    {"Europe/Berlin", INT64_C(-2208988800), 3600, false, "1900-01-01"},
    {"America/New_York", INT64_C(1710053999), -18000, false, "2024-03-10T06:59:59Z EST"},
    {"America/New_York", INT64_C(1710054000), -14400, true, "2024-03-10T07:00Z EDT"},
    {"America/New_York", INT64_C(1730613599), -14400, true, "2024-11-03T05:59:59Z EDT"},
    {"America/New_York", INT64_C(1730613600), -18000, false, "2024-11-03T06:00Z EST"},
    {"America/New_York", INT64_C(2540548800), -14400, true, "2050-07-04 footer rule"},
    {"America/New_York", INT64_C(2524910400), -18000, false, "2050-01-04 footer rule"},
    {"America/New_York", INT64_C(-5364662400), -17762, false, "1800-01-01 LMT before first transition"},
    {"Australia/Lord_Howe", INT64_C(1705276800), 39600, true, "2024-01-15 +11"},
    {"Australia/Lord_Howe", INT64_C(1721001600), 37800, false, "2024-07-15 +1030"},
    {"Australia/Lord_Howe", INT64_C(1712415599), 39600, true, "2024-04-06T14:59:59Z +11"},
    {"Australia/Lord_Howe", INT64_C(1712415600), 37800, false, "2024-04-06T15:00Z +1030"},
    {"Australia/Lord_Howe", INT64_C(1728142199), 37800, false, "2024-10-05T15:29:59Z +1030"},
    {"Australia/Lord_Howe", INT64_C(1728142200), 39600, true, "2024-10-05T15:30Z +11"},
    {"Australia/Lord_Howe", INT64_C(2840140800), 39600, true, "2060-01-01 footer, southern summer"},
    {"Australia/Lord_Howe", INT64_C(2853273600), 37800, false, "2060-06-01 footer, southern winter"},
    {"Asia/Kolkata", INT64_C(1717200000), 19800, false, "2024-06-01 +0530"},
    {"Asia/Kolkata", INT64_C(-870566400), 19800, false, "1942-06-01 +0530"},
    {"Asia/Kolkata", INT64_C(-839030400), 23400, true, "1943-06-01 war time +0630"},
    {"Pacific/Apia", INT64_C(1325239199), -36000, true, "2011-12-30T09:59:59Z -10"},
    {"Pacific/Apia", INT64_C(1325239200), 50400, true, "2011-12-30T10:00Z +14 after date line"},
    {"Pacific/Apia", INT64_C(1420070400), 50400, true, "2015-01-01 +14"},
    {"Pacific/Apia", INT64_C(1435708800), 46800, false, "2015-07-01 +13"},
    {"Pacific/Apia", INT64_C(1704067200), 46800, false, "2024-01-01 +13, DST abolished"},
    {"Pacific/Apia", INT64_C(2208988800), 46800, false, "2040-01-01 footer <+13>-13"},
};

static void test_offset(void **state) {
    const struct offset_case *c = *state;
    int32_t off = 12345;
    bool dst = !c->dst;
    assert_int_equal(tzif_utc_offset(zone(c->zone), c->utc, &off, &dst), 0);
    assert_int_equal(off, c->offset);
    assert_int_equal(dst, c->dst);
}

/* ---- local -> UTC ---- */

struct local_case {
    const char *zone;
    tzif_civil local;
    int policy;
    int64_t utc;
    const char *what;
};

#define E TZIF_FOLD_EARLIER
#define L TZIF_FOLD_LATER
static const struct local_case local_cases[] = {
    {"Europe/Berlin", {2024, 6, 1, 12, 0, 0}, E, INT64_C(1717236000), "plain summer time"},
    {"Europe/Berlin", {2024, 6, 1, 12, 0, 0}, L, INT64_C(1717236000), "policy irrelevant when unique"},
    {"Europe/Berlin", {2024, 3, 31, 2, 30, 0}, E, INT64_C(1711846800), "gap -> end of gap (03:00 CEST)"},
    {"Europe/Berlin", {2024, 3, 31, 2, 0, 0}, L, INT64_C(1711846800), "first missing second"},
    {"Europe/Berlin", {2024, 3, 31, 3, 0, 0}, E, INT64_C(1711846800), "first existing second after gap"},
    {"Europe/Berlin", {2024, 3, 31, 1, 59, 59}, E, INT64_C(1711846799), "last second before gap"},
    {"Europe/Berlin", {2024, 10, 27, 2, 30, 0}, E, INT64_C(1729989000), "overlap, earlier (CEST)"},
    {"Europe/Berlin", {2024, 10, 27, 2, 30, 0}, L, INT64_C(1729992600), "overlap, later (CET)"},
    {"Europe/Berlin", {2100, 10, 31, 2, 30, 0}, E, INT64_C(4128625800), "footer overlap, earlier"},
    {"Europe/Berlin", {2100, 10, 31, 2, 30, 0}, L, INT64_C(4128629400), "footer overlap, later"},
    {"Europe/Berlin", {2100, 3, 28, 2, 30, 0}, L, INT64_C(4109878800), "footer gap"},
    {"America/New_York", {2024, 11, 3, 1, 30, 0}, E, INT64_C(1730611800), "overlap, earlier (EDT)"},
    {"America/New_York", {2024, 11, 3, 1, 30, 0}, L, INT64_C(1730615400), "overlap, later (EST)"},
    {"America/New_York", {2024, 3, 10, 2, 30, 0}, E, INT64_C(1710054000), "gap -> 03:00 EDT"},
    {"Australia/Lord_Howe", {2024, 4, 7, 1, 45, 0}, E, INT64_C(1712414700), "30-minute overlap, earlier"},
    {"Australia/Lord_Howe", {2024, 4, 7, 1, 45, 0}, L, INT64_C(1712416500), "30-minute overlap, later"},
    {"Australia/Lord_Howe", {2024, 10, 6, 2, 15, 0}, E, INT64_C(1728142200), "30-minute gap"},
    {"Pacific/Apia", {2011, 12, 30, 12, 0, 0}, E, INT64_C(1325239200), "the day Samoa skipped"},
    {"Pacific/Apia", {2012, 1, 1, 0, 0, 0}, E, INT64_C(1325325600), "after the date-line change"},
    {"Asia/Kolkata", {2024, 6, 1, 5, 30, 0}, E, INT64_C(1717200000), "half-hour offset"},
    {"UTC", {2024, 2, 29, 24, 0, 0}, E, INT64_C(1709251200), "24:00 is next day's 00:00"},
};
#undef E
#undef L

static void test_local(void **state) {
    const struct local_case *c = *state;
    int64_t utc = 0;
    assert_int_equal(tzif_local_to_utc(zone(c->zone), c->local, c->policy, &utc), 0);
    assert_int_equal(utc, c->utc);
}

static void test_local_invalid(void **state) {
    (void)state;
    int64_t utc;
    static const tzif_civil bad[] = {
        {2023, 2, 29, 0, 0, 0}, {2024, 13, 1, 0, 0, 0}, {2024, 4, 31, 0, 0, 0},
        {2024, 1, 1, 24, 1, 0}, {2024, 1, 1, 23, 60, 0}, {2024, 1, 1, 0, 0, 60},
        {0, 1, 1, 0, 0, 0},     {2024, 0, 1, 0, 0, 0},   {2024, 1, 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(tzif_local_to_utc(NULL, bad[i], TZIF_FOLD_EARLIER, &utc), -1);
    assert_int_equal(tzif_local_to_utc(NULL, (tzif_civil){2000, 2, 29, 0, 0, 0}, 0, &utc), 0);
    assert_int_equal(utc, INT64_C(951782400));
    int32_t off;
    assert_int_equal(tzif_utc_offset(NULL, TZIF_TIME_LIMIT + 1, &off, NULL), -1);
    assert_int_equal(tzif_utc_offset(NULL, INT64_MIN, &off, NULL), -1);
}

/* ---- every hour of a year round-trips (earlier policy on unique times) ---- */

static void test_roundtrip(void **state) {
    (void)state;
    static const char *const zones[] = {"Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
                                        "Pacific/Apia", "Asia/Kolkata"};
    for (size_t zi = 0; zi < sizeof zones / sizeof zones[0]; zi++) {
        const tzif_zone *z = zone(zones[zi]);
        for (int64_t t = INT64_C(1293840000); t < INT64_C(1356998400); t += 1800) { /* 2011-2012 */
            int32_t off;
            int64_t back;
            assert_int_equal(tzif_utc_offset(z, t, &off, NULL), 0);
            assert_int_equal(tzif_local_seconds_to_utc(z, t + off, TZIF_FOLD_EARLIER, &back), 0);
            int64_t later;
            assert_int_equal(tzif_local_seconds_to_utc(z, t + off, TZIF_FOLD_LATER, &later), 0);
            assert_true(back == t || later == t);
        }
    }
}

/* ---- rejection of damaged files ---- */

static uint32_t rd32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8),
    p[3] = (unsigned char)v;
}

/* Offset of the second (64-bit) header of a v2+ file. */
static size_t second_header(const unsigned char *d) {
    return 44 + rd32(d + 32) * 5 + rd32(d + 36) * 6 + rd32(d + 40) + rd32(d + 28) * 8 +
           rd32(d + 24) + rd32(d + 20);
}

static void expect_reject(const unsigned char *d, size_t n, const char *msg) {
    tzif_zone *z = (tzif_zone *)1;
    char err[128] = "";
    assert_int_equal(tzif_parse(d, n, &z, err, sizeof err), -1);
    assert_null(z);
    if (msg) assert_string_equal(err, msg);
    else assert_true(err[0] != '\0');
}

static void test_truncated(void **state) {
    (void)state;
    static const char *const names[] = {"Europe/Berlin", "UTC", "Australia/Lord_Howe"};
    for (size_t k = 0; k < 3; k++) {
        size_t len;
        unsigned char *d = slurp(names[k], &len);
        for (size_t n = 0; n < len; n++) {
            unsigned char *copy = malloc(n ? n : 1);   /* exact size so ASan sees overreads */
            memcpy(copy, d, n);
            expect_reject(copy, n, NULL);
            free(copy);
        }
        tzif_zone *z;
        char err[128];
        assert_int_equal(tzif_parse(d, len, &z, err, sizeof err), 0);
        tzif_free(z);
        free(d);
    }
}

static void test_corrupted(void **state) {
    (void)state;
    size_t len;
    unsigned char *orig = slurp("Europe/Berlin", &len);
    unsigned char *d = malloc(len + 8);
    size_t h2 = second_header(orig);
    uint32_t timecnt = rd32(orig + h2 + 32), typecnt = rd32(orig + h2 + 36);
    size_t data2 = h2 + 44;

#define RESET() memcpy(d, orig, len)
    RESET(), d[0] = 'X';
    expect_reject(d, len, "not a TZif file (bad magic)");
    RESET(), d[4] = '9';
    expect_reject(d, len, "unsupported TZif version");
    RESET(), wr32(d + h2 + 36, 0);
    expect_reject(d, len, "bad local time type count in TZif file");
    RESET(), wr32(d + h2 + 32, 0xFFFFFFFFu);
    expect_reject(d, len, "too many transitions in TZif file");
    RESET(), wr32(d + h2 + 32, timecnt + 1);
    expect_reject(d, len, NULL);   /* the block no longer fits, or the footer is misplaced */
    RESET(), wr32(d + 32, 0x00FFFFFFu);
    expect_reject(d, len, "too many transitions in TZif file");
    RESET(), wr32(d + 32, rd32(orig + 32) + 1000);
    expect_reject(d, len, NULL);
    RESET(), memcpy(d + data2 + 8, d + data2, 8);   /* second transition == first */
    expect_reject(d, len, "transition times not ascending in TZif file");
    RESET(), d[data2 + timecnt * 8 + 3] = (unsigned char)typecnt;
    expect_reject(d, len, "bad transition type index in TZif file");
    RESET(), wr32(d + data2 + timecnt * 9, 0x7FFFFFFFu);   /* first ttinfo's offset */
    expect_reject(d, len, "UTC offset out of range in TZif file");
    RESET(), d[data2 + timecnt * 9 + 4] = 7;
    expect_reject(d, len, "bad DST flag in TZif file");
    RESET(), wr32(d + h2 + 28, 1);
    expect_reject(d, len, NULL);   /* leap records shift everything: never accepted */
    RESET(), d[len - 1] = 'x';
    expect_reject(d, len, "unterminated TZif footer");
    RESET(), d[len] = 'x';
    expect_reject(d, len + 1, "trailing bytes after TZif footer");
    /* A footer TZ string that is not POSIX. */
    {
        static const char bad_footer[] = "\nCET-1CEST,M3.5.0\n";
        size_t fpos = len;
        while (fpos > 0 && !(orig[fpos - 1] == '\n' && fpos != len)) fpos--;
        fpos--;   /* at the newline that opens the footer */
        RESET();
        memcpy(d + fpos, bad_footer, sizeof bad_footer - 1);
        expect_reject(d, fpos + sizeof bad_footer - 1, "bad TZ string in TZif footer");
    }
    expect_reject(NULL, 0, "empty TZif data");
#undef RESET
    free(d);
    free(orig);
}

/* ---- hand-built files ---- */

static size_t put_header(unsigned char *p, char version, uint32_t timecnt, uint32_t typecnt,
                         uint32_t charcnt) {
    memset(p, 0, 44);
    memcpy(p, "TZif", 4);
    p[4] = (unsigned char)version;
    wr32(p + 32, timecnt);
    wr32(p + 36, typecnt);
    wr32(p + 40, charcnt);
    return 44;
}

/* One type (offset, dst, "ABC"), no transitions, optional footer. */
static size_t build(unsigned char *buf, char version, int32_t off, bool dst, const char *footer) {
    size_t n = 0;
    n += put_header(buf + n, version, 0, 1, 4);
    wr32(buf + n, (uint32_t)off), buf[n + 4] = dst, buf[n + 5] = 0, n += 6;
    memcpy(buf + n, "ABC", 4), n += 4;
    if (version == 0) return n;
    n += put_header(buf + n, version, 0, 1, 4);
    wr32(buf + n, (uint32_t)off), buf[n + 4] = dst, buf[n + 5] = 0, n += 6;
    memcpy(buf + n, "ABC", 4), n += 4;
    buf[n++] = '\n';
    memcpy(buf + n, footer, strlen(footer)), n += strlen(footer);
    buf[n++] = '\n';
    return n;
}

static void test_synthetic(void **state) {
    (void)state;
    unsigned char buf[256];
    tzif_zone *z;
    char err[128];
    int32_t off;
    bool dst;

    /* Version 1, no footer: type 0 everywhere. */
    size_t n = build(buf, 0, 19800, false, "");
    assert_int_equal(tzif_parse(buf, n, &z, err, sizeof err), 0);
    assert_int_equal(tzif_utc_offset(z, 0, &off, &dst), 0);
    assert_int_equal(off, 19800);
    tzif_free(z);
    expect_reject(buf, n + 1, "trailing bytes after TZif data");

    /* Version 3 footer with all-year summer time (RFC 8536 §3.3.1 example). */
    n = build(buf, '3', -18000, false, "EST5EDT,0/0,J365/25");
    assert_int_equal(tzif_parse(buf, n, &z, err, sizeof err), 0);
    static const int64_t instants[] = {INT64_C(1735686000) /* 2024-12-31T23:00Z */,
                                       INT64_C(1735700400) /* 2025-01-01T03:00Z */,
                                       INT64_C(1717200000), INT64_C(1704067200)};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(tzif_utc_offset(z, instants[i], &off, &dst), 0);
        assert_int_equal(off, -14400);
        assert_true(dst);
    }
    tzif_free(z);

    /* Empty footer: the last type rules. Version 4 is accepted (leap-second change only). */
    n = build(buf, '4', 3600, false, "");
    assert_int_equal(tzif_parse(buf, n, &z, err, sizeof err), 0);
    assert_int_equal(tzif_utc_offset(z, INT64_C(4000000000), &off, &dst), 0);
    assert_int_equal(off, 3600);
    tzif_free(z);

    /* POSIX strings the footer parser must accept or refuse. */
    static const struct {
        const char *tz;
        int ok;
    } tzs[] = {
        {"UTC0", 1}, {"<+0530>-5:30", 1}, {"<-03>3<-02>,M3.5.0/-2,M10.5.0/-1", 1},
        {"NZST-12NZDT,M9.5.0,M4.1.0/3", 1}, {"EST5EDT", 1}, {"IST-1GMT0,M10.5.0,M3.5.0/1", 1},
        {"XX0", 0}, {"CET", 0}, {"CET-1CEST,M13.1.0,M10.5.0", 0}, {"CET-1CEST,M3.6.0,M10.5.0", 0},
        {"CET-25", 0}, {"<+05", 0}, {"CET-1CEST,J366,J1", 0}, {"CET-1CEST,M3.5.0/168,M10.5.0", 0},
        {"CET-1CEST,M3.5.0,M10.5.0x", 0},
    };
    for (size_t i = 0; i < sizeof tzs / sizeof tzs[0]; i++) {
        n = build(buf, '2', 0, false, tzs[i].tz);
        int rc = tzif_parse(buf, n, &z, err, sizeof err);
        if (rc != (tzs[i].ok ? 0 : -1)) fail_msg("footer '%s': rc %d (%s)", tzs[i].tz, rc, err);
        tzif_free(z);
    }
}

static void test_names_and_load(void **state) {
    (void)state;
    tzif_zone *z = (tzif_zone *)1;
    char err[128];
    assert_true(tzif_valid_name("UTC"));
    assert_true(tzif_valid_name("America/Argentina/Buenos_Aires"));
    assert_true(tzif_valid_name("Etc/GMT+5"));
    assert_false(tzif_valid_name("../etc/passwd"));
    assert_false(tzif_valid_name("/etc/passwd"));
    assert_false(tzif_valid_name("Europe/"));
    assert_false(tzif_valid_name("Europe//Berlin"));
    assert_false(tzif_valid_name(""));
    assert_false(tzif_valid_name("Europe/Berlin "));

    assert_int_equal(tzif_load(ZONEINFO, "Europe/Berln", &z, err, sizeof err), -1);
    assert_null(z);
    assert_string_equal(err, "unknown time zone 'Europe/Berln'");
    assert_int_equal(tzif_load(ZONEINFO, "Europe", &z, err, sizeof err), -1);
    assert_string_equal(err, "unknown time zone 'Europe'");
    assert_int_equal(tzif_load(ZONEINFO, "../../etc/passwd", &z, err, sizeof err), -1);
    assert_string_equal(err, "invalid time zone name '../../etc/passwd'");
    /* A file that exists but is not TZif, and one over the size ceiling. */
    char dir[] = "/tmp/test_tzif.XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/Not_TZif", dir);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    for (int i = 0; i < 100; i++) fputc('#', fp);
    fclose(fp);
    assert_int_equal(tzif_load(dir, "Not_TZif", &z, err, sizeof err), -1);
    assert_string_equal(err, "time zone 'Not_TZif': not a TZif file (bad magic)");
    unlink(path);
    snprintf(path, sizeof path, "%s/Big", dir);
    fp = fopen(path, "wb");
    assert_non_null(fp);
    for (int i = 0; i < TZIF_MAX_FILE + 1; i++) fputc(0, fp);
    fclose(fp);
    assert_int_equal(tzif_load(dir, "Big", &z, err, sizeof err), -1);
    assert_string_equal(err, "time zone file for 'Big' is too large");
    unlink(path);
    rmdir(dir);
    assert_int_equal(tzif_load(NULL, "Asia/Kolkata", &z, err, sizeof err), 0);
    tzif_free(z);
    tzif_free(NULL);
}

static void test_calendar(void **state) {
    (void)state;
    assert_int_equal(tzif_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(tzif_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(tzif_days_from_civil(1969, 12, 31), -1);
    assert_int_equal(tzif_weekday(0), 3);                                    /* Thursday */
    assert_int_equal(tzif_weekday(tzif_days_from_civil(2026, 1, 12)), 0);  /* Monday */
    assert_int_equal(tzif_weekday(-1), 2);
    assert_int_equal(tzif_days_in_month(2024, 2), 29);
    assert_int_equal(tzif_days_in_month(2100, 2), 28);
    assert_int_equal(tzif_days_in_month(2000, 2), 29);
    for (int64_t d = -800000; d < 800000; d += 97) {
        int64_t y;
        int m, dd;
        tzif_civil_from_days(d, &y, &m, &dd);
        assert_int_equal(tzif_days_from_civil(y, m, dd), d);
    }
}

static int teardown(void **state) {
    (void)state;
    for (size_t i = 0; i < 16 && cache[i].name; i++) tzif_free(cache[i].z);
    return 0;
}

#define N_OFF (sizeof offset_cases / sizeof offset_cases[0])
#define N_LOC (sizeof local_cases / sizeof local_cases[0])

int main(void) {
    static struct CMUnitTest tests[N_OFF + N_LOC + 16];
    static char names[N_OFF + N_LOC][128];
    size_t n = 0;
    for (size_t i = 0; i < N_OFF; i++, n++) {
        snprintf(names[n], sizeof names[n], "offset %s %s", offset_cases[i].zone, offset_cases[i].when);
        tests[n] = (struct CMUnitTest){names[n], test_offset, NULL, NULL, (void *)&offset_cases[i]};
    }
    for (size_t i = 0; i < N_LOC; i++, n++) {
        snprintf(names[n], sizeof names[n], "local %s %s", local_cases[i].zone, local_cases[i].what);
        tests[n] = (struct CMUnitTest){names[n], test_local, NULL, NULL, (void *)&local_cases[i]};
    }
    const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_local_invalid), cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_truncated),     cmocka_unit_test(test_corrupted),
        cmocka_unit_test(test_synthetic),     cmocka_unit_test(test_names_and_load),
        cmocka_unit_test(test_calendar),
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) tests[n++] = fixed[i];
    return _cmocka_run_group_tests("tzif", tests, n, NULL, teardown);
}
