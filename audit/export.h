/* audit/export: the offline reader of JSONL exports (`nomatron audit verify
 * --file`). Pure: it is fed lines and does no I/O (audit_verify_file() adds
 * the bounded line reading), so tests and the fuzzer drive it with bytes.
 *
 * An export is a "begin" line, one line per event, and an "end" line
 * (docs/AUDIT.md, "Export"). The reader is strict: every line must be one
 * JSON object with exactly the documented keys and types; anything else is
 * reported, never guessed at. */
#ifndef NM_AUDIT_EXPORT_H
#define NM_AUDIT_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "buf.h"

/* Longest line accepted: 21 text fields at AUDIT_FIELD_MAX, escaped (a
 * control byte becomes 6 characters), plus framing. */
#define AUDIT_EXPORT_LINE_MAX ((size_t)21 * AUDIT_FIELD_MAX * 6 + 4096)
/* How many lines past a missing id the reader looks for it, to tell
 * "reordered" from "missing". */
#define AUDIT_EXPORT_LOOKAHEAD 1024

typedef struct audit_fverify {
    /* results */
    int status;                 /* AUDIT_OK so far, or AUDIT_ERR_BROKEN / AUDIT_ERR_NOMEM */
    int64_t first_broken;       /* event id the failure is about (0 = none / not an event) */
    char why[320];              /* "event 5: ... (altered)", or a summary when intact */
    int64_t events, first_id, last_id;
    char first_prev[AUDIT_HASH_LEN + 1]; /* the anchor when the export starts mid-chain */
    char last_hash[AUDIT_HASH_LEN + 1];
    int64_t line;               /* lines read so far */
    /* state */
    bool begun, ended, through_head;
    int64_t cp_id, cp_head_id;  /* checkpoint named by the begin line; 0 = none */
    char cp_hash[AUDIT_HASH_LEN + 1];
    int64_t expect_id;          /* 0 until the first event */
    char prev[AUDIT_HASH_LEN + 1];
    int64_t missing_id;         /* looking ahead for it (0 = not) */
    int lookahead;
    char pending_why[320];
    nm_buf enc;
} audit_fverify;

void audit_fverify_init(audit_fverify *v);
/* Feeds one line (without its newline; need not be NUL-terminated). Returns
 * v->status: AUDIT_OK to go on; anything else is final. */
int audit_fverify_line(audit_fverify *v, const char *line, size_t len);
/* Call at end of input; returns the final status (AUDIT_OK: intact). */
int audit_fverify_finish(audit_fverify *v);
void audit_fverify_free(audit_fverify *v);

/* Reads path ("-" = stdin) line by line (each at most AUDIT_EXPORT_LINE_MAX)
 * through a fresh v, which the caller frees with audit_fverify_free().
 * AUDIT_ERR_IO (why says so) if the file cannot be read. */
int audit_verify_file(const char *path, audit_fverify *v);

/* Formats microseconds since the epoch as RFC 3339 UTC with six decimals
 * (the form exports and PostgreSQL's to_char use). dst: 40 bytes. */
void audit_format_us(int64_t us, char dst[40]);

/* Writes one CSV cell (RFC 4180): cells starting with = + - @ tab or CR get
 * a leading single quote (so spreadsheets do not run them as formulas);
 * quoted when they hold , " CR or LF. s NULL = empty cell. */
int audit_csv_cell(nm_buf *out, const char *s);

#endif
