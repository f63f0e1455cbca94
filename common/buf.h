/* A growable byte buffer with a ceiling: every buffer fed from outside
 * (HTTP bodies, Redis payloads, console lines) has one, and going past it is
 * an error the caller reports, never a silent truncation. */
#ifndef NM_BUF_H
#define NM_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct nm_buf {
    char *data;   /* always NUL-terminated when non-NULL; owned */
    size_t len;
    size_t cap;
    size_t max;   /* ceiling on len; 0 = unlimited */
} nm_buf;

enum { NM_BUF_OK = 0, NM_BUF_TOO_LARGE = -1, NM_BUF_NOMEM = -2 };

void nm_buf_init(nm_buf *b, size_t max);
int nm_buf_append(nm_buf *b, const void *data, size_t len);
int nm_buf_appends(nm_buf *b, const char *s);
int nm_buf_printf(nm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void nm_buf_reset(nm_buf *b);          /* len = 0, keeps memory */
/* Back to len bytes (len <= b->len): undoes appends made since, e.g. on an error. */
void nm_buf_truncate(nm_buf *b, size_t len);
void nm_buf_free(nm_buf *b);           /* releases memory; b may be reused after nm_buf_init */
/* Appends s[0..len) as a quoted JSON string: `"` `\` and control bytes
 * escaped, every other byte (UTF-8 included) as it is. b is unchanged on
 * error. For hot paths that would otherwise build a json-c tree to print
 * one string. */
int nm_buf_append_json_str(nm_buf *b, const char *s, size_t len);
/* Hands the data to the caller (free() it) and leaves b empty. */
char *nm_buf_steal(nm_buf *b);

#endif
