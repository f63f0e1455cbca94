/* logfmt logging: one line per event, `ts= level= msg= key=value ...`.
 *
 * Callers pass key/value string pairs ending with NULL:
 *     nm_log(NM_LOG_INFO, "request queued", "req", "D-7", "job", "web", NULL);
 * A NULL value skips its key. The level is checked before anything is
 * formatted, so a disabled debug line costs one comparison. Never pass a
 * secret as a value: nothing here can tell one from a job name. */
#ifndef NM_LOG_H
#define NM_LOG_H

#include <stdio.h>

enum nm_log_level { NM_LOG_DEBUG = 0, NM_LOG_INFO, NM_LOG_WARN, NM_LOG_ERROR, NM_LOG_OFF };

extern int nm_log_min_level;

void nm_log_set_level(enum nm_log_level level);
/* Parses "debug", "info", "warn", "error", "off"; returns -1 if unknown. */
int nm_log_level_parse(const char *name);
/* Where lines go (default stderr). The stream is borrowed. */
void nm_log_set_stream(FILE *fp);

void nm_log_write(enum nm_log_level level, const char *msg, ...);

#define nm_log(level, ...)                                                   \
    do {                                                                     \
        if ((int)(level) >= nm_log_min_level) nm_log_write((level), __VA_ARGS__); \
    } while (0)

/* Appends `value` to dst (size dstlen, always NUL-terminated) as a logfmt
 * value: bare when safe, otherwise double-quoted with \" \\ \n \t escaped and
 * control bytes as \xNN. Returns the length written. Pure; exposed for tests. */
size_t nm_log_format_value(char *dst, size_t dstlen, const char *value);

#endif
