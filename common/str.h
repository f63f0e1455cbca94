/* Small string helpers for hot paths. */
#ifndef NM_STR_H
#define NM_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* snprintf(dst, n, "%s", src) without the format machinery: copies src
 * (NULL counts as "") into dst of n > 0 bytes, cut to n - 1 bytes (not at a
 * UTF-8 boundary, as snprintf) and always terminated. True when it cut. */
static inline bool nm_str_copy(char *dst, size_t n, const char *src) {
    size_t len = src ? strlen(src) : 0;
    bool cut = len >= n;
    if (cut) len = n - 1;
    if (len) memcpy(dst, src, len);
    dst[len] = '\0';
    return cut;
}

#endif
