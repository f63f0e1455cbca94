/* bot/form.c: application/x-www-form-urlencoded decoding (form.h). */
#include "form.h"

#include <stdio.h>
#include <string.h>

const char *form_strerror(int code) {
    switch (code) {
    case FORM_OK: return "ok";
    case FORM_ERR_TOO_MANY: return "too many fields";
    case FORM_ERR_KEY_LONG: return "field name too long";
    case FORM_ERR_VALUE_LONG: return "field value too long";
    case FORM_ERR_ESCAPE: return "bad percent escape or NUL byte";
    case FORM_ERR_NOSPACE: return "output buffer too small";
    case FORM_ERR_INVAL: return "invalid argument";
    default: return "unknown form error";
    }
}

static int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes s[0..len) to out at *pos, then a NUL. Returns the decoded length,
 * or -code. `at` is the offset of s in the body, for the error text. */
static long decode(const char *s, size_t len, char *out, size_t outlen, size_t *pos, size_t max, int too_long,
                   size_t at, char *err, size_t errlen) {
    size_t start = *pos, o = *pos;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '\0') {
            if (err) snprintf(err, errlen, "NUL byte at byte %zu", at + i);
            return -FORM_ERR_ESCAPE;
        } else if (c == '%') {
            if (len - i < 3 || hexval((unsigned char)s[i + 1]) < 0 || hexval((unsigned char)s[i + 2]) < 0) {
                if (err) snprintf(err, errlen, "bad percent escape at byte %zu", at + i);
                return -FORM_ERR_ESCAPE;
            }
            c = (unsigned char)(hexval((unsigned char)s[i + 1]) * 16 + hexval((unsigned char)s[i + 2]));
            if (c == 0) {
                if (err) snprintf(err, errlen, "%%00 at byte %zu", at + i);
                return -FORM_ERR_ESCAPE;
            }
            i += 2;
        }
        if (o - start >= max) {
            if (err) snprintf(err, errlen, "%s at byte %zu longer than %zu bytes",
                              too_long == FORM_ERR_KEY_LONG ? "name" : "value", at, max);
            return -too_long;
        }
        if (o + 1 >= outlen) {   /* room for this byte and the NUL */
            if (err) snprintf(err, errlen, "output buffer of %zu bytes too small", outlen);
            return -FORM_ERR_NOSPACE;
        }
        out[o++] = (char)c;
    }
    if (o >= outlen) {
        if (err) snprintf(err, errlen, "output buffer of %zu bytes too small", outlen);
        return -FORM_ERR_NOSPACE;
    }
    out[o++] = '\0';
    *pos = o;
    return (long)(o - start - 1);
}

int form_parse(const char *body, size_t len, char *out, size_t outlen, form_field *fields, size_t max_fields,
               size_t *n, char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    if (!n) return FORM_ERR_INVAL;
    *n = 0;
    if ((!body && len) || !out || (!fields && max_fields)) {
        if (err) snprintf(err, errlen, "%s", form_strerror(FORM_ERR_INVAL));
        return FORM_ERR_INVAL;
    }
    size_t pos = 0, count = 0, i = 0;
    while (i < len) {
        const char *pair = body + i;
        const char *amp = memchr(pair, '&', len - i);
        size_t plen = amp ? (size_t)(amp - pair) : len - i;
        size_t at = i;
        i += plen + (amp ? 1 : 0);
        if (plen == 0) continue;   /* "a=1&&b=2", a trailing '&' */
        if (count == max_fields) {
            if (err) snprintf(err, errlen, "more than %zu fields", max_fields);
            return FORM_ERR_TOO_MANY;
        }
        const char *eq = memchr(pair, '=', plen);
        size_t klen = eq ? (size_t)(eq - pair) : plen;
        form_field *f = &fields[count];
        size_t kpos = pos;
        long kl = decode(pair, klen, out, outlen, &pos, FORM_MAX_KEY, FORM_ERR_KEY_LONG, at, err, errlen);
        if (kl < 0) return (int)-kl;
        size_t vpos = pos;
        long vl = eq ? decode(eq + 1, plen - klen - 1, out, outlen, &pos, FORM_MAX_VALUE, FORM_ERR_VALUE_LONG,
                              at + klen + 1, err, errlen)
                     : decode("", 0, out, outlen, &pos, FORM_MAX_VALUE, FORM_ERR_VALUE_LONG, at, err, errlen);
        if (vl < 0) return (int)-vl;
        f->key = out + kpos;
        f->key_len = (size_t)kl;
        f->value = out + vpos;
        f->value_len = (size_t)vl;
        count++;
    }
    *n = count;
    return FORM_OK;
}

const form_field *form_find(const form_field *fields, size_t n, const char *key) {
    if (!fields || !key) return NULL;
    size_t klen = strlen(key);
    for (size_t i = 0; i < n; i++)
        if (fields[i].key_len == klen && memcmp(fields[i].key, key, klen) == 0) return &fields[i];
    return NULL;
}

const char *form_get(const form_field *fields, size_t n, const char *key) {
    const form_field *f = form_find(fields, n, key);
    return f ? f->value : NULL;
}
