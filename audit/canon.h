/* audit/canon: the canonical encoding of an audit event (version 1) and the
 * chain hash. Pure functions: no I/O, no PostgreSQL, so tests and auditors'
 * tools can recompute hashes from exported rows. docs/AUDIT.md describes the
 * bytes; change neither without bumping AUDIT_ENC_VERSION.
 *
 *     hash = SHA-256(prev_hash as 32 raw bytes || audit_canon_encode(event))
 *
 * Hashes travel as 64 lowercase hex characters (that is how PostgreSQL stores
 * them). The first event of the chain has prev_hash AUDIT_GENESIS_HASH. */
#ifndef NM_AUDIT_CANON_H
#define NM_AUDIT_CANON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define AUDIT_ENC_VERSION 1
#define AUDIT_HASH_HEX_LEN 64
#define AUDIT_GENESIS_HASH "0000000000000000000000000000000000000000000000000000000000000000"
/* Ceiling on one text field; longer input is refused before it reaches the
 * database (PostgreSQL would take it, but nothing we record needs more). */
#define AUDIT_FIELD_MAX (64 * 1024)
/* Ceiling on one whole encoding: every text field at its maximum, plus framing. */
#define AUDIT_ENC_MAX (32 * (AUDIT_FIELD_MAX + 8))

enum audit_canon_code {
    AUDIT_CANON_OK = 0,
    AUDIT_CANON_VERSION = -1,   /* enc_version this build cannot encode */
    AUDIT_CANON_TOO_LARGE = -2, /* a text field over AUDIT_FIELD_MAX */
    AUDIT_CANON_BAD_HASH = -3,  /* prev_hash is not 64 lowercase hex characters */
    AUDIT_CANON_NOMEM = -4,
};

/* One row of audit_events. Text fields are borrowed C strings; NULL means SQL
 * NULL and encodes differently from "". Integers use the sentinels below for
 * NULL. */
typedef struct audit_event {
    int64_t id;                 /* position in the chain, 1, 2, 3 ... */
    int64_t request_id;         /* 0 = none (NULL) */
    int64_t at_us;              /* microseconds since 1970-01-01T00:00:00Z (PostgreSQL's clock) */
    int enc_version;            /* AUDIT_ENC_VERSION */
    const char *action;         /* "request.created", "deploy.started" ... */
    const char *actor;          /* identity, "shell:alice" */
    const char *person;
    const char *outcome;
    const char *from_state;
    const char *to_state;
    const char *phase;
    const char *reason;
    const char *env;
    const char *job;
    const char *from_image;
    const char *to_image;
    int64_t nomad_job_version;  /* -1 = none (NULL) */
    const char *eval_id;
    const char *deployment_id;
    const char *detail;
    const char *platform;
    const char *team;
    const char *channel;
    const char *message_ref;
    const char *thread;
    const char *permalink;
    const char *prev_hash;      /* 64 hex characters; not part of the encoding, it prefixes it */
} audit_event;

/* Appends the canonical encoding of e to out (the caller owns out and frees
 * it with nm_buf_free). Returns AUDIT_CANON_OK or a negative code; on error
 * out may hold a partial encoding. */
int audit_canon_encode(const audit_event *e, nm_buf *out);

/* Framing primitives of encoding v1, exposed so tests can pin the bytes. */
int audit_canon_put_text(nm_buf *out, const char *s, size_t len); /* s NULL = SQL NULL */
int audit_canon_put_int(nm_buf *out, int64_t v);
int audit_canon_put_null(nm_buf *out);

/* hex_out (65 bytes) receives SHA-256(prev || enc) as lowercase hex.
 * prev_hex must be 64 hex characters. */
int audit_canon_chain_hash(const char *prev_hex, const void *enc, size_t enc_len, char hex_out[65]);

/* Encodes e and hashes it with e->prev_hash: the value its hash column must hold. */
int audit_canon_event_hash(const audit_event *e, char hex_out[65]);

/* True if s is exactly 64 lowercase hex characters. */
bool audit_canon_hash_valid(const char *s);

const char *audit_canon_strerror(int code);

#endif
