/* bot/form.h: an application/x-www-form-urlencoded decoder (Slack HTTP
 * mode slash commands and interactivity, Mattermost actions).
 *
 * Pure: no I/O, no allocation. The body is split on '&' (empty pairs are
 * skipped), each pair on its first '=' (a pair without one has the value
 * ""), then '+' becomes a space and %XX its byte. A '%' not followed by two
 * hex digits is an error, and so is a NUL byte, raw or as %00: decoded
 * strings are NUL-terminated and must not hide a shorter string inside. Duplicate keys are kept in
 * order; form_get() returns the first. */
#ifndef NM_FORM_H
#define NM_FORM_H

#include <stddef.h>

#define FORM_MAX_KEY 256               /* decoded bytes per key */
#define FORM_MAX_VALUE (1024 * 1024)   /* decoded bytes per value: the HTTP listener's default body limit */

/* Bytes of `out` that always suffice for a body of len bytes split into at
 * most max_fields fields (decoding never grows text; each field adds two NULs). */
#define FORM_OUT_SIZE(len, max_fields) ((len) + (max_fields) + 1)

enum form_code {
    FORM_OK = 0,
    FORM_ERR_TOO_MANY,     /* more than max_fields fields */
    FORM_ERR_KEY_LONG,     /* a key over FORM_MAX_KEY */
    FORM_ERR_VALUE_LONG,   /* a value over FORM_MAX_VALUE */
    FORM_ERR_ESCAPE,       /* '%' without two hex digits, %00, or a raw NUL byte */
    FORM_ERR_NOSPACE,      /* `out` smaller than FORM_OUT_SIZE needs */
    FORM_ERR_INVAL,        /* NULL arguments */
};
const char *form_strerror(int code);

typedef struct form_field {
    const char *key;     /* NUL-terminated, points into the caller's `out` */
    const char *value;   /* likewise; "" when the pair had no '=' */
    size_t key_len, value_len;
} form_field;

/* Decodes body[0..len) into `out` (outlen bytes, see FORM_OUT_SIZE) and
 * fills fields[0..*n). The fields borrow `out`: keep it while using them.
 * On error *n is 0, err (may be NULL) says where, and the code is returned. */
int form_parse(const char *body, size_t len, char *out, size_t outlen, form_field *fields, size_t max_fields,
               size_t *n, char *err, size_t errlen);

/* The first field named key (exact, case-sensitive), or NULL. */
const form_field *form_find(const form_field *fields, size_t n, const char *key);
/* Its value, or NULL when absent. */
const char *form_get(const form_field *fields, size_t n, const char *key);

#endif
