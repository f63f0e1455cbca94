/* A small reader for TZif time zone files (RFC 8536, versions 1 to 4) and
 * the POSIX TZ rule in their footer, so freeze windows can be evaluated in
 * a zone's local time without touching the process TZ variable or
 * localtime(), which race between threads.
 *
 * Everything here is pure except tzif_load(), the one function that reads
 * a file. A parsed zone is immutable and may be shared between threads.
 *
 * Times are int64 seconds since the epoch (UTC, no leap seconds). Offsets
 * are seconds east of UTC (Europe/Berlin in winter: +3600). */
#ifndef NM_TZIF_H
#define NM_TZIF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TZIF_MAX_FILE (256 * 1024)   /* tzif_load refuses larger files */
#define TZIF_MAX_TIMES 4096          /* transitions per data block */
#define TZIF_MAX_TYPES 256           /* local time types (an index is one byte) */
#define TZIF_MAX_CHARS 1024          /* designation bytes */
#define TZIF_MAX_FOOTER 128          /* POSIX TZ string in the footer */
#define TZIF_MAX_NAME 64             /* zone name, e.g. America/Argentina/Buenos_Aires */

/* Instants outside this range (about +-317,000 years) are refused, which
 * keeps every calendar computation far from int64 overflow. */
#define TZIF_TIME_LIMIT INT64_C(10000000000000)

/* A wall-clock reading in some zone. hour may be 24 only with minute and
 * second 0 (the end of that day, i.e. 00:00 of the next). */
typedef struct tzif_civil {
    int year;    /* 1 .. 9999 */
    int month;   /* 1 .. 12 */
    int day;     /* 1 .. days in month */
    int hour;    /* 0 .. 24 */
    int minute;  /* 0 .. 59 */
    int second;  /* 0 .. 59 */
} tzif_civil;

/* Which instant a local time that occurs twice (the overlap when clocks go
 * back) maps to. A freeze window starts at the earlier and ends at the
 * later one, so it is never shorter than written. */
enum tzif_fold {
    TZIF_FOLD_EARLIER = 0,
    TZIF_FOLD_LATER = 1,
};

/* Opaque, immutable once parsed. Wherever a zone is taken, NULL means UTC. */
typedef struct tzif_zone tzif_zone;

/* Parses a TZif file held in memory. Every count is checked against len
 * and against the ceilings above; leap-second ("right/") files are refused.
 * On success *out owns a new zone (free with tzif_free) and 0 is returned;
 * on failure *out is NULL, err holds a one-line reason and -1 is returned. */
int tzif_parse(const unsigned char *data, size_t len, tzif_zone **out, char *err, size_t errlen);

void tzif_free(tzif_zone *z);

/* The zone's UTC offset in effect at utc_seconds and whether it is summer
 * time. is_dst may be NULL. Returns 0, or -1 if utc_seconds is outside
 * +-TZIF_TIME_LIMIT. */
int tzif_utc_offset(const tzif_zone *z, int64_t utc_seconds, int32_t *offset, bool *is_dst);

/* The instant at which the zone's clocks show `local`. A local time that
 * does not exist (clocks jumped over it) maps to the instant the jump
 * happened, i.e. the first existing local time after it; one that occurs
 * twice maps per fold_policy (enum tzif_fold). Returns 0, or -1 if `local`
 * is not a valid civil time. */
int tzif_local_to_utc(const tzif_zone *z, tzif_civil local, int fold_policy, int64_t *utc);

/* Same with the local time given as seconds since 1970-01-01 00:00 on the
 * zone's clock ("local epoch seconds"). */
int tzif_local_seconds_to_utc(const tzif_zone *z, int64_t local_seconds, int fold_policy,
                              int64_t *utc);

/* True if `name` is "UTC" or an IANA-style name:
 * [A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*, at most TZIF_MAX_NAME bytes. Such a
 * name cannot contain "..", so it cannot leave the zoneinfo directory. */
bool tzif_valid_name(const char *name);

/* Reads zoneinfo_dir/name (zoneinfo_dir NULL = /usr/share/zoneinfo) with a
 * TZIF_MAX_FILE ceiling and parses it. Errors: "unknown time zone 'X'",
 * "invalid time zone name 'X'", "time zone file for 'X' is too large", or
 * the parse error. *out as for tzif_parse. The only function here with I/O. */
int tzif_load(const char *zoneinfo_dir, const char *name, tzif_zone **out, char *err,
              size_t errlen);

/* Calendar helpers (proleptic Gregorian, pure). */
int64_t tzif_days_from_civil(int64_t year, int month, int day);
void tzif_civil_from_days(int64_t days, int64_t *year, int *month, int *day);
int tzif_days_in_month(int64_t year, int month);
/* 0 = Monday .. 6 = Sunday, for days since 1970-01-01. */
int tzif_weekday(int64_t days);

#endif
