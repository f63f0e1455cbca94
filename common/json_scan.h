/* A pull-style JSON scanner: strict RFC 8259, one pass over the bytes, no
 * allocation, no globals, no locale. The caller walks the document with a
 * cursor: enter an object or array, ask for the next key or item, read a
 * string into a bounded buffer (unescaped to UTF-8), read a number, or skip a
 * value while validating it. Nothing is built; what the caller does not read
 * it skips, and skipping still checks every byte.
 *
 * Strict means: UTF-8 checked (no overlong forms, no encoded surrogates,
 * nothing above U+10FFFF), no raw control byte inside a string, no NaN,
 * Infinity, leading zeros, "1." or ".5", only ' ', \t, \r, \n as blanks.
 * Escaped surrogate pairs become one 4-byte character; a lone surrogate
 * becomes U+FFFD (as json-c does); \u0000 becomes a NUL byte, which the
 * string reader reports rather than hides.
 *
 * Errors are sticky: after the first one every call returns -1 and
 * s->err_at / s->err_what say where and what. */
#ifndef NM_JSON_SCAN_H
#define NM_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Nesting, counted as json-c counts it: the top-level value is at level 1, a
 * value inside it at level 2, and so on; no value, scalar or container, may
 * sit deeper than max_depth. So at most max_depth containers are open at once,
 * and the innermost of max_depth open ones can only be empty. */
#define JSON_SCAN_MAX_DEPTH 64

enum json_scan_type {
    JSON_SCAN_NONE = 0,        /* end of input, or a byte no value starts with */
    JSON_SCAN_OBJECT,
    JSON_SCAN_ARRAY,
    JSON_SCAN_STRING,
    JSON_SCAN_NUMBER,
    JSON_SCAN_TRUE,
    JSON_SCAN_FALSE,
    JSON_SCAN_NULL,
};

typedef struct json_scan {
    const char *base, *p, *end;
    int depth;                /* containers open */
    int max_depth;            /* 1..JSON_SCAN_MAX_DEPTH: deepest level a value may be at */
    uint64_t objects;         /* bit d-1 set: the container at depth d is an object */
    bool first;               /* the innermost container has had no member yet */
    bool failed;
    size_t err_at;            /* byte offset of the error */
    const char *err_what;     /* static phrase: "invalid escape", "nesting too deep", ... */
} json_scan;

/* Starts a cursor over len bytes (need not be NUL-terminated) with values
 * nested at most max_depth levels (clamped to 1..JSON_SCAN_MAX_DEPTH). */
void json_scan_init(json_scan *s, const char *json, size_t len, int max_depth);

/* Skips blanks; the type of the value that starts there, judged by its first
 * byte only (the value is not checked yet). Never fails. */
enum json_scan_type json_scan_peek(json_scan *s);

/* Consumes the '{' or '[' at the cursor. 0, or -1 (not a container, too deep). */
int json_scan_enter(json_scan *s);

/* In an object: reads the next key and its ':'. 1: a key was read, the
 * cursor is on its value, which must then be read or skipped; 0: the object
 * closed ('}' consumed); -1: error. The key is unescaped into key (cap bytes
 * with the NUL; key NULL or cap 0 to drop it); *len, if not NULL, gets its
 * full length, which may exceed cap - 1 (key then holds the first cap - 1 bytes). */
int json_scan_next_key(json_scan *s, char *key, size_t cap, size_t *len);

/* In an array: 1: a value follows (read or skip it); 0: the array closed
 * (']' consumed); -1: error. */
int json_scan_next_item(json_scan *s);

/* Reads the string at the cursor, unescaped, into dst as json_scan_next_key
 * does with its key: at most cap - 1 bytes and a NUL (dst NULL / cap 0:
 * validate only; a cut may fall inside a UTF-8 character). *len gets the full
 * unescaped length, *has_nul whether it holds a NUL byte (\u0000); either may
 * be NULL. 0 or -1. */
int json_scan_string(json_scan *s, char *dst, size_t cap, size_t *len, bool *has_nul);

/* Reads the number at the cursor. *integer: no fraction and no exponent;
 * then *value is its value saturated to [INT64_MIN, INT64_MAX], else 0.
 * Either pointer may be NULL. 0 or -1. */
int json_scan_number(json_scan *s, int64_t *value, bool *integer);

/* Skips the value at the cursor, however nested, checking it all. 0 or -1. */
int json_scan_skip(json_scan *s);

/* After the top-level value: 0 when only blanks are left, else -1. */
int json_scan_finish(json_scan *s);

/* Byte offset of the cursor. */
static inline size_t json_scan_offset(const json_scan *s) {
    return (size_t)(s->p - s->base);
}

#endif
