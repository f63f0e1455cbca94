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

/* Length of the well-formed UTF-8 sequence at s, n >= 1 bytes readable: 1
 * for ASCII, 2-4 for a character, 0 when the bytes are not UTF-8 (RFC 3629:
 * no overlong forms, no UTF-16 surrogates, nothing past U+10FFFF). */
static inline size_t nm_utf8_seq(const unsigned char *s, size_t n) {
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;   /* lo..hi: where the second byte may be */
    size_t len;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;        /* overlong */
        else if (c == 0xED) hi = 0x9F;  /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;        /* overlong */
        else if (c == 0xF4) hi = 0x8F;   /* past U+10FFFF */
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return len;
}

#endif
