#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void nm_buf_init(nm_buf *b, size_t max) {
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

static int reserve(nm_buf *b, size_t extra) {
    if (b->max && (extra > b->max || b->len > b->max - extra)) return NM_BUF_TOO_LARGE;
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return NM_BUF_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) return NM_BUF_NOMEM;
    b->data = p;
    b->cap = cap;
    return NM_BUF_OK;
}

int nm_buf_append(nm_buf *b, const void *data, size_t len) {
    int rc = reserve(b, len);
    if (rc) return rc;
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return NM_BUF_OK;
}

int nm_buf_appends(nm_buf *b, const char *s) { return nm_buf_append(b, s, strlen(s)); }

int nm_buf_printf(nm_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NM_BUF_NOMEM;
    int rc = reserve(b, (size_t)n);
    if (rc) return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return NM_BUF_OK;
}

static int append_json_escape(nm_buf *b, unsigned char ch) {
    static const char hex[] = "0123456789abcdef";
    char esc[6] = {'\\', (char)ch, '0', '0', 0, 0};
    switch (ch) {
    case '"': case '\\': return nm_buf_append(b, esc, 2);
    case '\b': esc[1] = 'b'; return nm_buf_append(b, esc, 2);
    case '\f': esc[1] = 'f'; return nm_buf_append(b, esc, 2);
    case '\n': esc[1] = 'n'; return nm_buf_append(b, esc, 2);
    case '\r': esc[1] = 'r'; return nm_buf_append(b, esc, 2);
    case '\t': esc[1] = 't'; return nm_buf_append(b, esc, 2);
    default:
        esc[1] = 'u';
        esc[4] = hex[ch >> 4];
        esc[5] = hex[ch & 15];
        return nm_buf_append(b, esc, 6);
    }
}

int nm_buf_append_json_str(nm_buf *b, const char *s, size_t len) {
    size_t start = b->len, run = 0;
    int rc = nm_buf_append(b, "\"", 1);
    for (size_t i = 0; i < len && rc == NM_BUF_OK; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\') continue;
        rc = nm_buf_append(b, s + run, i - run);   /* the plain bytes before it, in one copy */
        if (rc == NM_BUF_OK) rc = append_json_escape(b, ch);
        run = i + 1;
    }
    if (rc == NM_BUF_OK && len > run) rc = nm_buf_append(b, s + run, len - run);
    if (rc == NM_BUF_OK) rc = nm_buf_append(b, "\"", 1);
    if (rc != NM_BUF_OK) nm_buf_truncate(b, start);
    return rc;
}

void nm_buf_reset(nm_buf *b) { nm_buf_truncate(b, 0); }

void nm_buf_truncate(nm_buf *b, size_t len) {
    if (len > b->len) return;
    b->len = len;
    if (b->data) b->data[len] = '\0';
}

void nm_buf_free(nm_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *nm_buf_steal(nm_buf *b) {
    char *p = b->data;
    if (!p) p = calloc(1, 1);
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
