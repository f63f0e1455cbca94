#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

int nm_log_min_level = NM_LOG_INFO;
static FILE *log_stream;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void nm_log_set_level(enum nm_log_level level) { nm_log_min_level = (int)level; }

int nm_log_level_parse(const char *name) {
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcmp(name, level_names[i]) == 0) return (int)i;
    return -1;
}

void nm_log_set_stream(FILE *fp) { log_stream = fp; }

static int needs_quotes(const char *v) {
    if (*v == '\0') return 1;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f) return 1;
    return 0;
}

size_t nm_log_format_value(char *dst, size_t dstlen, const char *value) {
    size_t n = 0;
    if (dstlen == 0) return 0;
#define PUT(c) do { if (n + 1 < dstlen) dst[n++] = (c); } while (0)
    if (!needs_quotes(value)) {
        n = strlen(value);
        if (n > dstlen - 1) n = dstlen - 1;
        memcpy(dst, value, n);
    } else {
        static const char hex[] = "0123456789abcdef";
        PUT('"');
        for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
            switch (*p) {
            case '"': PUT('\\'); PUT('"'); break;
            case '\\': PUT('\\'); PUT('\\'); break;
            case '\n': PUT('\\'); PUT('n'); break;
            case '\t': PUT('\\'); PUT('t'); break;
            default:
                if (*p < 0x20 || *p == 0x7f) {
                    PUT('\\'); PUT('x'); PUT(hex[*p >> 4]); PUT(hex[*p & 15]);
                } else {
                    PUT((char)*p);
                }
            }
        }
        PUT('"');
    }
#undef PUT
    dst[n] = '\0';
    return n;
}

/* "ts=2026-11-25T06:30:00." for the second t, kept per thread: a busy
 * process logs many lines a second and strftime is most of a line's cost. */
static size_t ts_prefix(char *dst, time_t t) {
    static _Thread_local time_t cached_sec = (time_t)-1;
    static _Thread_local char cached[40];
    static _Thread_local size_t cached_len;
    if (t != cached_sec) {
        struct tm tm;
        gmtime_r(&t, &tm);
        cached_len = strftime(cached, sizeof(cached), "ts=%Y-%m-%dT%H:%M:%S.", &tm);
        cached_sec = t;
    }
    memcpy(dst, cached, cached_len);
    return cached_len;
}

void nm_log_write(enum nm_log_level level, const char *msg, ...) {
    char line[2048];
    size_t n = 0;
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    n = ts_prefix(line, ts.tv_sec);
    long ms = ts.tv_nsec / 1000000L;
    line[n++] = (char)('0' + ms / 100);
    line[n++] = (char)('0' + ms / 10 % 10);
    line[n++] = (char)('0' + ms % 10);
    const char *lv = level_names[level];
    size_t lvlen = strlen(lv);
    memcpy(line + n, "Z level=", 8);
    n += 8;
    memcpy(line + n, lv, lvlen);
    n += lvlen;
    memcpy(line + n, " msg=", 5);
    n += 5;
    n += nm_log_format_value(line + n, sizeof(line) - n, msg ? msg : "");

    va_list ap;
    va_start(ap, msg);
    for (;;) {
        const char *key = va_arg(ap, const char *);
        if (!key) break;
        const char *val = va_arg(ap, const char *);
        if (!val) continue;
        size_t klen = strlen(key);
        if (n + klen + 3 >= sizeof(line)) break;
        line[n++] = ' ';
        memcpy(line + n, key, klen);
        n += klen;
        line[n++] = '=';
        n += nm_log_format_value(line + n, sizeof(line) - n, val);
    }
    va_end(ap);
    if (n >= sizeof(line) - 1) n = sizeof(line) - 2;
    line[n++] = '\n';
    /* One fwrite per line: stdio's stream lock keeps lines from threads whole. */
    fwrite(line, 1, n, log_stream ? log_stream : stderr);
    fflush(log_stream ? log_stream : stderr);
}
