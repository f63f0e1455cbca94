/* Fuzz the freeze-window grammar, the formatter and the decision (UTC and a
 * built-in zone with a POSIX DST rule, so gap/overlap paths are reached). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "freeze.h"
#include "freeze_eval.h"
#include "tzif.h"

/* A v2 TZif zone with no transitions and the Europe/Berlin rule in its footer. */
static tzif_zone *rule_zone(void) {
    static const unsigned char hdr[] = {'T', 'Z', 'i', 'f', '2'};
    unsigned char buf[200];
    size_t n = 0;
    for (int block = 0; block < 2; block++) {
        memset(buf + n, 0, 44);
        memcpy(buf + n, hdr, sizeof hdr);
        buf[n + 39] = 1;   /* typecnt */
        buf[n + 43] = 4;   /* charcnt */
        n += 44;
        static const unsigned char type[] = {0, 0, 0x0e, 0x10, 0, 0, 'C', 'E', 'T', 0};
        memcpy(buf + n, type, sizeof type);
        n += sizeof type;
    }
    static const char footer[] = "\nCET-1CEST,M3.5.0,M10.5.0/3\n";
    memcpy(buf + n, footer, sizeof footer - 1);
    n += sizeof footer - 1;
    tzif_zone *z = NULL;
    char err[128];
    if (tzif_parse(buf, n, &z, err, sizeof err) != 0) abort();
    return z;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static tzif_zone *berlin;
    if (!berlin) berlin = rule_zone();
    if (size > 1024) return 0;

    /* The first 8 bytes pick an instant; the rest is the window text. */
    int64_t t = 1767225600;   /* 2026-01-01 */
    if (size >= 8) {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++) v = v << 8 | data[i];
        t = (int64_t)(v % (UINT64_C(400) * 366 * 86400)) - INT64_C(200) * 366 * 86400 + 1767225600;
        data += 8, size -= 8;
    }
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    config_freeze f, g;
    char err[200], out[CONFIG_FREEZE_MAX_TEXT + 80];
    if (config_freeze_parse(text, &f, err, sizeof err) == 0) {
        config_freeze_format(&f, out, sizeof out);
        /* The canonical form must parse back to the same window. */
        if (config_freeze_parse(out, &g, err, sizeof err) != 0) abort();
        memcpy(g.text, f.text, sizeof g.text);
        if (memcmp(&f, &g, sizeof f) != 0) abort();
        for (int zi = 0; zi < 2; zi++) {
            const tzif_zone *z = zi ? berlin : NULL;
            int64_t until, u2;
            if (freeze_active(&f, z, t, &until)) {
                if (until <= t) abort();
                freeze_format_until(&f, z, until, out, sizeof out);
                if (until != FREEZE_FOREVER && !freeze_active(&f, z, until - 1, &u2)) abort();
            }
        }
    } else if (strlen(err) == 0 || strchr(err, '\n')) {
        abort();   /* a failure always says why, on one line */
    }
    free(text);
    return 0;
}
