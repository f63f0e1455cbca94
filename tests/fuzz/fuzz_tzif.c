/* Fuzz the TZif reader, then use whatever parsed: offsets at spread-out
 * instants and local -> UTC with both fold policies. */
#include <stdint.h>
#include <stdlib.h>

#include "tzif.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tzif_zone *z = NULL;
    char err[128];
    if (size > TZIF_MAX_FILE) return 0;
    if (tzif_parse(data, size, &z, err, sizeof err) != 0) {
        if (z) abort();
        return 0;
    }
    static const int64_t instants[] = {INT64_C(-5364662400), INT64_C(-2208988800), 0,
                                       INT64_C(1325239200),  INT64_C(1711846800),  INT64_C(1729990800),
                                       INT64_C(2147483647),  INT64_C(4128627600),  INT64_C(253402300799)};
    for (size_t i = 0; i < sizeof instants / sizeof instants[0]; i++) {
        int32_t off;
        bool dst;
        if (tzif_utc_offset(z, instants[i], &off, &dst) != 0) abort();
        if (off < -90000 || off > 93600) abort();
        for (int policy = 0; policy < 2; policy++) {
            int64_t utc;
            if (tzif_local_seconds_to_utc(z, instants[i] + off, policy, &utc) != 0) abort();
            /* The answer is within a few days of the naive one. */
            if (utc < instants[i] - 4 * 86400 || utc > instants[i] + 4 * 86400) abort();
        }
    }
    tzif_free(z);
    return 0;
}
