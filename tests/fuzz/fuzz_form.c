/* form_parse() on arbitrary bytes: never reads or writes out of bounds
 * (ASan), and on success every field is a clean NUL-terminated string
 * within the limits that survives a re-encode / re-parse round trip. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "form.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FIELDS 32

static size_t encode(const char *s, size_t n, char *out) {
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
            c == '.' || c == '~') {
            out[o++] = (char)c;
        } else if (c == ' ') {
            out[o++] = '+';
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 20)) return 0;
    size_t outlen = FORM_OUT_SIZE(size, MAX_FIELDS);
    char *out = malloc(outlen);
    form_field f[MAX_FIELDS];
    size_t n = 0;
    char err[128];
    if (!out) return 0;
    int rc = form_parse((const char *)data, size, out, outlen, f, MAX_FIELDS, &n, err, sizeof(err));
    if (rc != FORM_OK) {
        if (n != 0 || !memchr(err, '\0', sizeof(err)) || !err[0]) abort();
        if (rc == FORM_ERR_NOSPACE || rc == FORM_ERR_INVAL) abort();   /* FORM_OUT_SIZE always suffices */
        free(out);
        return 0;
    }
    /* Worst-case re-encoding: 3 bytes per byte plus separators. */
    char *again = malloc(3 * size + 2 * MAX_FIELDS + 1);
    size_t alen = 0;
    if (!again) abort();
    for (size_t i = 0; i < n; i++) {
        if (f[i].key < out || f[i].value < out || f[i].value + f[i].value_len >= out + outlen) abort();
        if (strlen(f[i].key) != f[i].key_len || strlen(f[i].value) != f[i].value_len) abort();
        if (f[i].key_len > FORM_MAX_KEY || f[i].value_len > FORM_MAX_VALUE) abort();
        if (form_find(f, n, f[i].key) > &f[i]) abort();   /* the first of its name */
        if (i) again[alen++] = '&';
        alen += encode(f[i].key, f[i].key_len, again + alen);
        again[alen++] = '=';
        alen += encode(f[i].value, f[i].value_len, again + alen);
    }
    /* Every field comes back as "key=value", so the round trip matches field for field. */
    char *out2 = malloc(FORM_OUT_SIZE(alen, MAX_FIELDS));
    form_field g[MAX_FIELDS];
    size_t m = 0;
    if (!out2) abort();
    if (form_parse(again, alen, out2, FORM_OUT_SIZE(alen, MAX_FIELDS), g, MAX_FIELDS, &m, NULL, 0) != FORM_OK) abort();
    if (m != n) abort();
    for (size_t i = 0; i < n; i++)
        if (g[i].key_len != f[i].key_len || g[i].value_len != f[i].value_len ||
            memcmp(g[i].key, f[i].key, f[i].key_len) || memcmp(g[i].value, f[i].value, f[i].value_len))
            abort();
    free(out2);
    free(again);
    free(out);
    return 0;
}
