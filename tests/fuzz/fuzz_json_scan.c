/* Fuzzes common/json_scan.h on its own, held to an independent strict
 * RFC 8259 checker (json_strict_valid, tests/fuzz/slack_frame_oracle.c):
 *
 *  - skipping the top-level value and finishing succeeds exactly when the
 *    input is strict JSON, unless it nests deeper than the scanner's 64
 *    levels, which must then be the reason given;
 *  - a pull walk over every object and array (keys and strings read into a
 *    buffer of 8 bytes and again into one that fits, numbers read) agrees
 *    with the skip, and each string reads the same cut or whole: the same
 *    full length, the short read a prefix of the long one, which is valid
 *    UTF-8 (escaped surrogates are paired or become U+FFFD);
 *  - an error leaves the scanner's offset and err_at within the input.
 * Seeds: corpus/fuzz_json_scan/ and, in CI, nothing else needed. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"
#include "slack_frame_oracle.h"
#include "str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SHORT 8

/* Deepest container nesting of a text already known to be valid JSON. */
static int max_nesting(const char *p, size_t n) {
    int depth = 0, deepest = 0;
    bool in_string = false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_string) {
            if (c == '\\') i++;
            else if (c == '"') in_string = false;
            continue;
        }
        if (c == '"') in_string = true;
        else if (c == '{' || c == '[') {
            if (++depth > deepest) deepest = depth;
        } else if (c == '}' || c == ']')
            depth--;
    }
    return deepest;
}

static void check_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        size_t k = nm_utf8_seq((const unsigned char *)s + i, n - i);
        if (!k) __builtin_trap();
        i += k;
    }
}

/* Reads the string at the cursor twice (from the same place) and compares. */
static int read_twice(json_scan *s, bool key) {
    json_scan copy = *s;
    char small[SHORT];
    size_t slen = 0, llen = 0;
    bool snul = false, lnul = false;
    int r1 = key ? json_scan_next_key(s, small, sizeof(small), &slen)
                 : json_scan_string(s, small, sizeof(small), &slen, &snul);
    if (r1 < 0 || (key && r1 == 0)) return r1;
    /* The same again with room for all of it. */
    char *big = malloc(slen + 1);
    if (!big) return -1;
    int r2 = key ? json_scan_next_key(&copy, big, slen + 1, &llen) : json_scan_string(&copy, big, slen + 1, &llen, &lnul);
    if (r2 != r1 || llen != slen || snul != lnul || copy.p != s->p) __builtin_trap();
    size_t shown = slen < SHORT - 1 ? slen : SHORT - 1;
    if (memcmp(small, big, shown) != 0 || small[shown] != '\0' || big[llen] != '\0') __builtin_trap();
    check_utf8(big, llen);
    free(big);
    return r1;
}

/* Walks the value at the cursor, reading everything; 0 or -1. */
static int walk(json_scan *s, int budget) {
    if (budget <= 0) return json_scan_skip(s);
    switch (json_scan_peek(s)) {
    case JSON_SCAN_OBJECT: {
        if (json_scan_enter(s) < 0) return -1;
        int r;
        while ((r = read_twice(s, true)) == 1)
            if (walk(s, budget - 1) < 0) return -1;
        return r;
    }
    case JSON_SCAN_ARRAY: {
        if (json_scan_enter(s) < 0) return -1;
        int r;
        while ((r = json_scan_next_item(s)) == 1)
            if (walk(s, budget - 1) < 0) return -1;
        return r;
    }
    case JSON_SCAN_STRING: return read_twice(s, false);
    case JSON_SCAN_NUMBER: {
        int64_t v = 1;
        bool integer = true;
        int r = json_scan_number(s, &v, &integer);
        if (r == 0 && !integer && v != 0) __builtin_trap();
        return r;
    }
    default: return json_scan_skip(s);   /* literals, and what starts no value */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *in = (const char *)data;
    json_scan s;
    json_scan_init(&s, in, size, JSON_SCAN_MAX_DEPTH);
    bool skipped = json_scan_skip(&s) == 0 && json_scan_finish(&s) == 0;
    if (s.failed && (s.err_at > size || !s.err_what)) __builtin_trap();
    if (json_scan_offset(&s) > size) __builtin_trap();

    bool strict = json_strict_valid(in, size);
    if (skipped && !strict) __builtin_trap();
    if (strict && !skipped) {
        if (strcmp(s.err_what, "nesting too deep") != 0 || max_nesting(in, size) < JSON_SCAN_MAX_DEPTH)
            __builtin_trap();
    }
    if (strict && max_nesting(in, size) > JSON_SCAN_MAX_DEPTH && skipped) __builtin_trap();

    json_scan w;
    json_scan_init(&w, in, size, JSON_SCAN_MAX_DEPTH);
    bool walked = walk(&w, JSON_SCAN_MAX_DEPTH + 8) == 0 && json_scan_finish(&w) == 0;
    if (walked != skipped) __builtin_trap();
    return 0;
}
