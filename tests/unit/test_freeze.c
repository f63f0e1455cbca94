/* Freeze windows: the grammar (valid texts and their canonical form, invalid
 * texts and their exact message) and the decision (boundaries to the second,
 * week and midnight wraps, absolute ranges, DST weekends). UTC instants were
 * computed independently with Python's zoneinfo. Needs tzdata. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "freeze.h"
#include "freeze_eval.h"
#include "tzif.h"

/* ---- grammar: valid ---- */

struct valid_case {
    const char *text;
    const char *canonical;
};

static const struct valid_case valid_cases[] = {
    {"Fri 16:00 - Mon 08:00 Europe/Berlin", "Fri 16:00 - Mon 08:00 Europe/Berlin"},
    {"fri 16:00 - MON 08:00 Europe/Berlin", "Fri 16:00 - Mon 08:00 Europe/Berlin"},
    {"  Fri   16:00  -\t Mon 08:00   Europe/Berlin  ", "Fri 16:00 - Mon 08:00 Europe/Berlin"},
    {"Sat - Sun UTC", "Sat - Sun UTC"},
    {"sat - sun utc", "Sat - Sun UTC"},
    {"Mon - Sun UTC", "Mon - Sun UTC"},
    {"Mon 00:00 - Sun 24:00 UTC", "Mon 00:00 - Sun 24:00 UTC"},
    {"Sun 22:00 - Mon 02:00 America/Argentina/Buenos_Aires", "Sun 22:00 - Mon 02:00 America/Argentina/Buenos_Aires"},
    {"Wed 09:00 - Wed 08:00 Etc/GMT+5", "Wed 09:00 - Wed 08:00 Etc/GMT+5"},
    {"Fri 16:00 - Mon 08:00 Etc/GMT-1", "Fri 16:00 - Mon 08:00 Etc/GMT-1"},
    {"daily 22:00 - 06:00 UTC", "daily 22:00 - 06:00 UTC"},
    {"DAILY 00:00 - 24:00 Asia/Kolkata", "daily 00:00 - 24:00 Asia/Kolkata"},
    {"2026-12-22 - 2027-01-04 UTC", "2026-12-22 - 2027-01-04 UTC"},
    {"2026-12-22 18:00 - 2027-01-04 08:00 Europe/Berlin", "2026-12-22 18:00 - 2027-01-04 08:00 Europe/Berlin"},
    {"2028-02-29 - 2028-02-29 UTC", "2028-02-29 - 2028-02-29 UTC"},
    {"2000-02-29 - 2000-03-01 UTC", "2000-02-29 - 2000-03-01 UTC"},
    {"2026-12-22 - 2026-12-22 12:00 UTC", "2026-12-22 - 2026-12-22 12:00 UTC"},
    {"2026-12-22 23:00 - 2026-12-22 24:00 UTC", "2026-12-22 23:00 - 2026-12-22 24:00 UTC"},
};

static void test_valid(void **state) {
    const struct valid_case *c = *state;
    config_freeze f;
    char err[160] = "", out[CONFIG_FREEZE_MAX_TEXT + 80];
    if (config_freeze_parse(c->text, &f, err, sizeof err) != 0) fail_msg("'%s': %s", c->text, err);
    config_freeze_format(&f, out, sizeof out);
    assert_string_equal(out, c->canonical);
    assert_string_equal(f.text, c->text);
    /* The canonical form parses to the same window. */
    config_freeze g;
    assert_int_equal(config_freeze_parse(out, &g, err, sizeof err), 0);
    memcpy(g.text, f.text, sizeof g.text);
    assert_memory_equal(&f, &g, sizeof f);
}

static void test_fields(void **state) {
    (void)state;
    config_freeze f;
    char err[160];
    assert_int_equal(config_freeze_parse("Fri 16:00 - Mon 08:00 Europe/Berlin", &f, err, sizeof err), 0);
    assert_int_equal(f.kind, CONFIG_FREEZE_WEEKLY);
    assert_int_equal(f.start_dow, 4);
    assert_int_equal(f.start_min, 960);
    assert_int_equal(f.end_dow, 0);
    assert_int_equal(f.end_min, 480);
    assert_string_equal(f.zone, "Europe/Berlin");
    assert_int_equal(config_freeze_span_minutes(&f), 2 * 1440 + 16 * 60);

    assert_int_equal(config_freeze_parse("Sat - Sun utc", &f, err, sizeof err), 0);
    assert_true(f.whole_days);
    assert_int_equal(f.end_min, 1440);
    assert_string_equal(f.zone, "UTC");
    assert_int_equal(config_freeze_span_minutes(&f), 2 * 1440);
    assert_int_equal(config_freeze_parse("Mon - Sun UTC", &f, err, sizeof err), 0);
    assert_int_equal(config_freeze_span_minutes(&f), CONFIG_FREEZE_WEEK_MINUTES);

    assert_int_equal(config_freeze_parse("daily 22:00 - 06:00 UTC", &f, err, sizeof err), 0);
    assert_int_equal(f.kind, CONFIG_FREEZE_DAILY);
    assert_int_equal(config_freeze_span_minutes(&f), 8 * 60);

    assert_int_equal(config_freeze_parse("2026-12-22 - 2027-01-04 UTC", &f, err, sizeof err), 0);
    assert_int_equal(f.kind, CONFIG_FREEZE_ABSOLUTE);
    assert_int_equal(f.start.year, 2026);
    assert_int_equal(f.start.minute, 0);
    assert_int_equal(f.end.day, 4);
    assert_int_equal(f.end.minute, 1440);   /* the end date is included */
    assert_false(f.start_has_time);
}

/* ---- grammar: invalid, exact messages ---- */

struct invalid_case {
    const char *text;
    const char *message;
};

#define ZONE_EXPECTED "expected a time zone (UTC or an IANA name such as Europe/Berlin)"
static const struct invalid_case invalid_cases[] = {
    {"", "empty freeze window"},
    {" \t ", "empty freeze window"},
    {"Fr 16:00 - Mon 08:00 Europe/Berlin", "expected a weekday (Mon..Sun) at 'Fr'"},
    {"Fri 16:00 - Mo 08:00 UTC", "expected a weekday (Mon..Sun) at 'Mo'"},
    {"weekly Fri 16:00 - Mon 08:00 UTC", "expected a weekday (Mon..Sun) at 'weekly'"},
    {"Friday 16:00 - Mon 08:00 UTC", "expected a weekday (Mon..Sun) at 'Friday'"},
    {"@Fri 16:00 - Mon 08:00 UTC", "expected a weekday (Mon..Sun), 'daily' or a date (YYYY-MM-DD) at '@Fri'"},
    {"Fri 16:00-Mon 08:00 UTC", "expected a time HH:MM at '16:00-Mon' (put blanks around '-')"},
    {"Fri 16:00 -Mon 08:00 UTC", "expected '-' at '-Mon' (put blanks around '-')"},
    {"Fri 16:00 – Mon 08:00 UTC", "expected '-' at '–'"},
    {"Fri 16:00 - Mon 08:00", "expected a time zone (UTC or an IANA name such as Europe/Berlin) at end of text"},
    {"Fri 16:00 - Mon", "expected a time HH:MM at end of text"},
    {"Fri 16:00", "expected '-' at end of text"},
    {"Fri", "expected a time HH:MM or '-' at end of text"},
    {"Fri x - Mon UTC", "expected a time HH:MM or '-' at 'x'"},
    {"Fri 25:00 - Mon 08:00 UTC", "hour out of range (00..23) at '25:00'"},
    {"Fri 16:60 - Mon 08:00 UTC", "minute out of range (00..59) at '16:60'"},
    {"Fri 24:00 - Mon 08:00 UTC", "24:00 is only valid as an end time"},
    {"Fri 16:00 - Mon 24:30 UTC", "hour out of range (00..23) at '24:30'"},
    {"Fri 4:00 - Mon 08:00 UTC", "expected a time HH:MM at '4:00'"},
    {"Fri 16:00 - Mon 8h UTC", "expected a time HH:MM at '8h'"},
    {"Fri 16:00 - Fri 16:00 UTC", "empty window: start equals end"},
    {"daily 08:00 - 08:00 UTC", "empty window: start equals end"},
    {"daily 22:00 06:00 UTC", "expected '-' at '06:00'"},
    {"daily Mon 08:00 - 09:00 UTC", "expected a time HH:MM at 'Mon'"},
    {"Sat - Sun", ZONE_EXPECTED " at end of text"},
    {"Sat - Sun UTC UTC", "unexpected 'UTC' after the time zone"},
    {"Fri 16:00 - Mon 08:00 Europe/Berlin extra", "unexpected 'extra' after the time zone"},
    {"Fri 16:00 - Mon 08:00 ../etc/passwd", "invalid time zone name '../etc/passwd'"},
    {"Fri 16:00 - Mon 08:00 Europe//Berlin", "invalid time zone name 'Europe//Berlin'"},
    {"Fri 16:00 - Mon 08:00 /etc/passwd", "invalid time zone name '/etc/passwd'"},
    {"Fri 16:00 - Mon 08:00 Europe/Berlin.", "invalid time zone name 'Europe/Berlin.'"},
    {"Fri 16:00 - Mon 08:00 Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "time zone name too long (max 64 characters)"},
    {"2026-02-29 - 2026-03-01 UTC", "no such date '2026-02-29'"},
    {"2100-02-29 - 2100-03-01 UTC", "no such date '2100-02-29'"},
    {"2026-13-01 - 2027-01-01 UTC", "no such date '2026-13-01'"},
    {"2026-04-31 - 2026-05-01 UTC", "no such date '2026-04-31'"},
    {"2026-00-10 - 2026-05-01 UTC", "no such date '2026-00-10'"},
    {"1969-12-31 - 1970-01-02 UTC", "year out of range (1970..9999) at '1969-12-31'"},
    {"2026-12-22 - 2027-1-4 UTC", "expected a date YYYY-MM-DD at '2027-1-4'"},
    {"2026-12-22 - Mon UTC", "expected a date YYYY-MM-DD at 'Mon'"},
    {"2026-12-22 - 2026-12-21 UTC", "end must be after start"},
    {"2026-12-22 10:00 - 2026-12-22 10:00 UTC", "end must be after start"},
    {"2026-12-22 10:00 - 2026-12-22 09:59 UTC", "end must be after start"},
    {"2026-12-22 x - 2027-01-04 UTC", "expected a time HH:MM or '-' at 'x'"},
    {"2026-12-22 - 2027-01-04", ZONE_EXPECTED " at end of text"},
    {"2026-12-22", "expected a time HH:MM or '-' at end of text"},
    {"Fri 16:00 - Mon 08:00 UTC\n", "control character in freeze window"},
    {"a b c d e f g h i j k l m", "too many words in freeze window"},
};

static void test_invalid(void **state) {
    const struct invalid_case *c = *state;
    config_freeze f;
    char err[160] = "";
    f.kind = CONFIG_FREEZE_WEEKLY;
    assert_int_equal(config_freeze_parse(c->text, &f, err, sizeof err), -1);
    assert_string_equal(err, c->message);
    assert_int_equal(f.kind, 0);   /* nothing half-filled */
}

static void test_invalid_limits(void **state) {
    (void)state;
    config_freeze f;
    char err[160], text[400];
    memset(text, ' ', sizeof text);
    memcpy(text, "Sat - Sun UTC", 13);
    text[CONFIG_FREEZE_MAX_TEXT] = '\0';   /* exactly the maximum: fine */
    assert_int_equal(config_freeze_parse(text, &f, err, sizeof err), 0);
    text[CONFIG_FREEZE_MAX_TEXT] = ' ';
    text[CONFIG_FREEZE_MAX_TEXT + 1] = '\0';
    assert_int_equal(config_freeze_parse(text, &f, err, sizeof err), -1);
    assert_string_equal(err, "freeze window too long (max 256 characters)");
    assert_int_equal(config_freeze_parse(NULL, &f, err, sizeof err), -1);
    assert_string_equal(err, "empty freeze window");
    /* A tiny error buffer truncates, never overflows. */
    char small[8];
    assert_int_equal(config_freeze_parse("Fr 16:00", &f, small, sizeof small), -1);
    assert_string_equal(small, "expecte");
}

/* ---- the decision ---- */

struct eval_case {
    const char *window;
    int64_t t;
    bool active;
    int64_t until;   /* checked when active */
    const char *what;
};

#define FOREVER FREEZE_FOREVER
static const struct eval_case eval_cases[] = {
    /* Fri 2026-01-09 16:00 CET = 15:00Z, Mon 2026-01-12 08:00 CET = 07:00Z. */
    {"Fri 16:00 - Mon 08:00 Europe/Berlin", INT64_C(1767970799), false, 0, "one second before start"},
    {"Fri 16:00 - Mon 08:00 Europe/Berlin", INT64_C(1767970800), true, INT64_C(1768201200), "start inclusive"},
    {"Fri 16:00 - Mon 08:00 Europe/Berlin", INT64_C(1768132800), true, INT64_C(1768201200), "Sunday noon"},
    {"Fri 16:00 - Mon 08:00 Europe/Berlin", INT64_C(1768201199), true, INT64_C(1768201200), "last second, across the week end"},
    {"Fri 16:00 - Mon 08:00 Europe/Berlin", INT64_C(1768201200), false, 0, "end exclusive"},
    {"Fri 16:00 - Mon 08:00 Europe/Berlin", INT64_C(1768392000), false, 0, "Wednesday"},
    /* The same window in summer: Fri 2026-06-05 14:00Z - Mon 2026-06-08 06:00Z. */
    {"Fri 16:00 - Mon 08:00 Europe/Berlin", INT64_C(1780667999), false, 0, "summer, before start"},
    {"Fri 16:00 - Mon 08:00 Europe/Berlin", INT64_C(1780668000), true, INT64_C(1780898400), "summer start (CEST)"},
    {"Fri 16:00 - Mon 08:00 Europe/Berlin", INT64_C(1780898400), false, 0, "summer end (CEST)"},
    /* Sun 22:00 - Mon 02:00 UTC wraps the week: 2026-01-11T22:00Z .. 2026-01-12T02:00Z. */
    {"Sun 22:00 - Mon 02:00 UTC", INT64_C(1768168800), true, INT64_C(1768183200), "Sunday 22:00"},
    {"Sun 22:00 - Mon 02:00 UTC", INT64_C(1768179600), true, INT64_C(1768183200), "Monday 01:00, previous week's start"},
    {"Sun 22:00 - Mon 02:00 UTC", INT64_C(1768183200), false, 0, "Monday 02:00"},
    {"Sun 22:00 - Mon 02:00 UTC", INT64_C(1768168799), false, 0, "Sunday 21:59:59"},
    /* Whole days: Sat 2026-01-10 00:00Z - Mon 2026-01-12 00:00Z. */
    {"Sat - Sun UTC", INT64_C(1768003199), false, 0, "Friday 23:59:59"},
    {"Sat - Sun UTC", INT64_C(1768003200), true, INT64_C(1768176000), "Saturday 00:00"},
    {"Sat - Sun UTC", INT64_C(1768175999), true, INT64_C(1768176000), "Sunday 23:59:59 (end day included)"},
    {"Sat - Sun UTC", INT64_C(1768176000), false, 0, "Monday 00:00"},
    {"Mon - Sun UTC", INT64_C(1768176000), true, FOREVER, "the whole week"},
    {"Mon 00:00 - Sun 24:00 Europe/Berlin", INT64_C(1711846800), true, FOREVER, "the whole week in a zone"},
    /* Daily, wrapping midnight. */
    {"daily 22:00 - 06:00 UTC", INT64_C(1768082399), false, 0, "21:59:59"},
    {"daily 22:00 - 06:00 UTC", INT64_C(1768082400), true, INT64_C(1768111200), "22:00"},
    {"daily 22:00 - 06:00 UTC", INT64_C(1768086000), true, INT64_C(1768111200), "23:00"},
    {"daily 22:00 - 06:00 UTC", INT64_C(1768111199), true, INT64_C(1768111200), "05:59:59 next day"},
    {"daily 22:00 - 06:00 UTC", INT64_C(1768111200), false, 0, "06:00 next day"},
    {"daily 00:00 - 24:00 Asia/Kolkata", INT64_C(1768111200), true, FOREVER, "all day, every day"},
    /* Daily across New York's spring gap: 01:00 EST (06:00Z) to 03:00 EDT (07:00Z), one real hour. */
    {"daily 01:00 - 03:00 America/New_York", INT64_C(1710050399), false, 0, "before, gap day"},
    {"daily 01:00 - 03:00 America/New_York", INT64_C(1710050400), true, INT64_C(1710054000), "start, gap day"},
    {"daily 01:00 - 03:00 America/New_York", INT64_C(1710054000), false, 0, "end, gap day"},
    /* Absolute ranges; a date alone includes the whole end date. */
    {"2026-12-22 - 2027-01-04 UTC", INT64_C(1797897599), false, 0, "2026-12-21T23:59:59Z"},
    {"2026-12-22 - 2027-01-04 UTC", INT64_C(1797897600), true, INT64_C(1799107200), "2026-12-22T00:00Z"},
    {"2026-12-22 - 2027-01-04 UTC", INT64_C(1799107199), true, INT64_C(1799107200), "2027-01-04T23:59:59Z"},
    {"2026-12-22 - 2027-01-04 UTC", INT64_C(1799107200), false, 0, "2027-01-05T00:00Z"},
    {"2026-12-22 18:00 - 2027-01-04 08:00 Europe/Berlin", INT64_C(1797958799), false, 0, "before 18:00 CET"},
    {"2026-12-22 18:00 - 2027-01-04 08:00 Europe/Berlin", INT64_C(1797958800), true, INT64_C(1799046000), "18:00 CET"},
    {"2026-12-22 18:00 - 2027-01-04 08:00 Europe/Berlin", INT64_C(1799046000), false, 0, "08:00 CET"},
    {"2011-12-30 - 2011-12-30 Pacific/Apia", INT64_C(1325239200), false, 0, "a day that never happened"},
    /* Sat 01:00 - Sun 04:00 Berlin over the March change: 2024-03-30T00:00Z .. 2024-03-31T02:00Z (26 h). */
    {"Sat 01:00 - Sun 04:00 Europe/Berlin", INT64_C(1711756799), false, 0, "March, before start (CET)"},
    {"Sat 01:00 - Sun 04:00 Europe/Berlin", INT64_C(1711756800), true, INT64_C(1711850400), "March, start (CET)"},
    {"Sat 01:00 - Sun 04:00 Europe/Berlin", INT64_C(1711846800), true, INT64_C(1711850400), "March, at the jump"},
    {"Sat 01:00 - Sun 04:00 Europe/Berlin", INT64_C(1711850399), true, INT64_C(1711850400), "March, last second (CEST)"},
    {"Sat 01:00 - Sun 04:00 Europe/Berlin", INT64_C(1711850400), false, 0, "March, end (CEST)"},
    /* ... and over the October change: 2024-10-25T23:00Z .. 2024-10-27T03:00Z (28 h). */
    {"Sat 01:00 - Sun 04:00 Europe/Berlin", INT64_C(1729897199), false, 0, "October, before start (CEST)"},
    {"Sat 01:00 - Sun 04:00 Europe/Berlin", INT64_C(1729897200), true, INT64_C(1729998000), "October, start (CEST)"},
    {"Sat 01:00 - Sun 04:00 Europe/Berlin", INT64_C(1729990800), true, INT64_C(1729998000), "October, second 02:00"},
    {"Sat 01:00 - Sun 04:00 Europe/Berlin", INT64_C(1729997999), true, INT64_C(1729998000), "October, last second (CET)"},
    {"Sat 01:00 - Sun 04:00 Europe/Berlin", INT64_C(1729998000), false, 0, "October, end (CET)"},
    /* Boundaries inside the gap move to its end (2024-03-31T01:00Z). */
    {"Sat 22:00 - Sun 02:30 Europe/Berlin", INT64_C(1711846799), true, INT64_C(1711846800), "end in gap"},
    {"Sat 22:00 - Sun 02:30 Europe/Berlin", INT64_C(1711846800), false, 0, "end in gap, at gap end"},
    {"Sun 02:30 - Sun 05:00 Europe/Berlin", INT64_C(1711846799), false, 0, "start in gap, before"},
    {"Sun 02:30 - Sun 05:00 Europe/Berlin", INT64_C(1711846800), true, INT64_C(1711854000), "start in gap, gap end"},
    /* Boundaries inside the overlap: start at the first 02:30 (00:30Z), end at the second (01:30Z). */
    {"Sun 02:30 - Sun 06:00 Europe/Berlin", INT64_C(1729988999), false, 0, "start in overlap, before"},
    {"Sun 02:30 - Sun 06:00 Europe/Berlin", INT64_C(1729989000), true, INT64_C(1730005200), "start in overlap, first 02:30"},
    {"Sun 02:30 - Sun 06:00 Europe/Berlin", INT64_C(1729990800), true, INT64_C(1730005200), "second 02:00 still inside"},
    {"Sat 20:00 - Sun 02:30 Europe/Berlin", INT64_C(1729989000), true, INT64_C(1729992600), "end in overlap, first 02:30"},
    {"Sat 20:00 - Sun 02:30 Europe/Berlin", INT64_C(1729992599), true, INT64_C(1729992600), "end in overlap, second 02:29:59"},
    {"Sat 20:00 - Sun 02:30 Europe/Berlin", INT64_C(1729992600), false, 0, "end in overlap, second 02:30"},
};

static tzif_zone *zones[8];
static const char *zone_names[8];

static const tzif_zone *zone_for(const config_freeze *f) {
    char err[200];
    if (strcmp(f->zone, "UTC") == 0) return NULL;
    size_t i;
    for (i = 0; i < 8 && zone_names[i]; i++)
        if (strcmp(zone_names[i], f->zone) == 0) return zones[i];
    assert_true(i < 8);
    if (tzif_load(NULL, f->zone, &zones[i], err, sizeof err) != 0) fail_msg("%s", err);
    zone_names[i] = f->zone;
    return zones[i];
}

static config_freeze parsed[sizeof eval_cases / sizeof eval_cases[0]];

static void test_eval(void **state) {
    const struct eval_case *c = *state;
    config_freeze *f = &parsed[c - eval_cases];
    char err[160];
    if (config_freeze_parse(c->window, f, err, sizeof err) != 0) fail_msg("%s: %s", c->window, err);
    int64_t until = -1;
    bool active = freeze_active(f, zone_for(f), c->t, &until);
    if (active != c->active) fail_msg("%s at %lld: active=%d", c->window, (long long)c->t, active);
    if (c->active) assert_int_equal(until, c->until);
    else assert_int_equal(until, -1);   /* untouched when not frozen */
}

static void test_format_until(void **state) {
    (void)state;
    config_freeze f;
    char err[160], out[160];
    int64_t until;
    assert_int_equal(config_freeze_parse("Fri 16:00 - Mon 08:00 Europe/Berlin", &f, err, sizeof err), 0);
    const tzif_zone *z = zone_for(&f);
    assert_true(freeze_active(&f, z, INT64_C(1768132800), &until));
    freeze_format_until(&f, z, until, out, sizeof out);
    assert_string_equal(out, "Mon 08:00 Europe/Berlin (07:00 UTC)");
    assert_true(freeze_active(&f, z, INT64_C(1780668000), NULL));   /* until may be NULL */

    assert_int_equal(config_freeze_parse("daily 22:00 - 06:00 UTC", &f, err, sizeof err), 0);
    assert_true(freeze_active(&f, NULL, INT64_C(1768086000), &until));
    freeze_format_until(&f, NULL, until, out, sizeof out);
    assert_string_equal(out, "Sun 06:00 UTC");

    assert_int_equal(config_freeze_parse("2026-12-22 - 2027-01-04 Europe/Berlin", &f, err, sizeof err), 0);
    z = zone_for(&f);
    assert_true(freeze_active(&f, z, INT64_C(1797958800), &until));
    freeze_format_until(&f, z, until, out, sizeof out);
    assert_string_equal(out, "2027-01-05 00:00 Europe/Berlin (2027-01-04 23:00 UTC)");

    assert_int_equal(config_freeze_parse("Mon - Sun UTC", &f, err, sizeof err), 0);
    assert_true(freeze_active(&f, NULL, 0, &until));
    freeze_format_until(&f, NULL, until, out, sizeof out);
    assert_string_equal(out, "further notice");

    /* Instants out of range are never frozen. */
    assert_false(freeze_active(&f, NULL, INT64_MIN, &until));
    assert_false(freeze_active(&f, NULL, INT64_MAX, &until));
}

/* Sweep a year in 7-minute steps: whenever frozen, `until` is in the future
 * and the instant just before it is frozen while `until` itself is not. */
static void test_sweep(void **state) {
    (void)state;
    static const char *const windows[] = {
        "Fri 16:00 - Mon 08:00 Europe/Berlin", "Sat 01:00 - Sun 04:00 Europe/Berlin",
        "daily 01:30 - 02:15 America/New_York", "daily 23:45 - 00:15 Australia/Lord_Howe",
        "Sun 02:00 - Sun 03:00 Europe/Berlin",
    };
    for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++) {
        config_freeze f;
        char err[160];
        assert_int_equal(config_freeze_parse(windows[w], &f, err, sizeof err), 0);
        const tzif_zone *z = zone_for(&f);
        for (int64_t t = INT64_C(1704067200); t < INT64_C(1735689600); t += 420) {
            int64_t until, u2;
            if (!freeze_active(&f, z, t, &until)) continue;
            assert_true(until > t);
            assert_true(freeze_active(&f, z, until - 1, &u2));
            assert_int_equal(u2, until);
            assert_false(freeze_active(&f, z, until, &u2));
        }
    }
}

static int teardown(void **state) {
    (void)state;
    for (size_t i = 0; i < 8; i++) tzif_free(zones[i]);
    return 0;
}

#define N_VALID (sizeof valid_cases / sizeof valid_cases[0])
#define N_INVALID (sizeof invalid_cases / sizeof invalid_cases[0])
#define N_EVAL (sizeof eval_cases / sizeof eval_cases[0])

int main(void) {
    static struct CMUnitTest tests[N_VALID + N_INVALID + N_EVAL + 16];
    static char names[N_VALID + N_INVALID + N_EVAL][200];
    size_t n = 0;
    for (size_t i = 0; i < N_VALID; i++, n++) {
        snprintf(names[n], sizeof names[n], "valid '%s'", valid_cases[i].text);
        tests[n] = (struct CMUnitTest){names[n], test_valid, NULL, NULL, (void *)&valid_cases[i]};
    }
    for (size_t i = 0; i < N_INVALID; i++, n++) {
        snprintf(names[n], sizeof names[n], "invalid '%s'", invalid_cases[i].text);
        for (char *p = names[n]; *p; p++)
            if ((unsigned char)*p < 0x20) *p = '?';   /* keep one test per output line */
        tests[n] = (struct CMUnitTest){names[n], test_invalid, NULL, NULL, (void *)&invalid_cases[i]};
    }
    for (size_t i = 0; i < N_EVAL; i++, n++) {
        snprintf(names[n], sizeof names[n], "eval '%s': %s", eval_cases[i].window, eval_cases[i].what);
        tests[n] = (struct CMUnitTest){names[n], test_eval, NULL, NULL, (void *)&eval_cases[i]};
    }
    const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_fields),       cmocka_unit_test(test_invalid_limits),
        cmocka_unit_test(test_format_until), cmocka_unit_test(test_sweep),
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) tests[n++] = fixed[i];
    return _cmocka_run_group_tests("freeze", tests, n, NULL, teardown);
}
