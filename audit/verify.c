/* audit_verify: walks audit_events in id order, a page at a time (memory
 * stays constant however long the chain), and checks for every event that
 *   - its id is the next one (ids are gapless: a missing id is a deleted row),
 *   - its encoding version is one this build knows,
 *   - its prev_hash is the previous event's hash (genesis: 64 zeros),
 *   - its hash is SHA-256(prev_hash || canonical encoding of its columns).
 * The first failure is reported; nothing after it is trusted. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_int.h"
#include "canon.h"

#define PAGE_N 2000
#define PAGE_ROWS "2000"

static const char *col_str(PGresult *r, int row, int col) {
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static bool binary_shape_ok(PGresult *r);

/* Binary results: integers and the timestamp arrive as 8 raw bytes (no
 * numeric formatting on the server, no parsing here), texts as their bytes. */
static int page_send(audit_db *db, int64_t from) {
    char id_s[24];
    snprintf(id_s, sizeof(id_s), "%" PRId64, from);
    const char *p[] = {id_s};
    if (!PQsendQueryParams(db->conn,
                           "SELECT id, request_id, at, action, actor, person,\n"
                           "  outcome, from_state, to_state, phase, reason, env, job, from_image, to_image,\n"
                           "  nomad_job_version, eval_id, deployment_id, detail, platform, team, channel, message_ref,\n"
                           "  thread, permalink, enc_version, prev_hash, hash\n"
                           "FROM audit_events WHERE id >= $1::bigint ORDER BY id LIMIT " PAGE_ROWS,
                           1, NULL, p, NULL, NULL, 1))
        return audit__result_error(db, "reading audit events", NULL);
    return AUDIT_OK;
}

/* The page asked for by page_send(); *out is the caller's to PQclear(). */
static int page_recv(audit_db *db, PGresult **out) {
    PGresult *r;
    int rc = AUDIT_OK;
    *out = NULL;
    while ((r = PQgetResult(db->conn)) != NULL) {
        if (PQresultStatus(r) == PGRES_TUPLES_OK && !*out && rc == AUDIT_OK) {
            *out = r;
            continue;
        }
        if (rc == AUDIT_OK) rc = audit__result_error(db, "reading audit events", r);
        PQclear(r);
    }
    if (!*out && rc == AUDIT_OK) rc = audit__result_error(db, "reading audit events", NULL);
    if (rc) {
        PQclear(*out);
        *out = NULL;
        return rc;
    }
    if (!binary_shape_ok(*out)) {
        PQclear(*out);
        *out = NULL;
        return audit__fail(db, AUDIT_ERR_SCHEMA, "audit_events columns are not of the expected types");
    }
    return AUDIT_OK;
}

/* Reads and drops a page still in flight (on the way out, or before the
 * connection is needed for another query). Keeps errstr. */
static void page_drain(audit_db *db, bool *inflight) {
    if (!*inflight) return;
    PGresult *r;
    while ((r = PQgetResult(db->conn)) != NULL) PQclear(r);
    *inflight = false;
}

/* PostgreSQL's binary timestamptz counts microseconds from 2000-01-01 UTC. */
#define PG_EPOCH_US INT64_C(946684800000000)

static int64_t be64(PGresult *r, int row, int col) {
    const unsigned char *b = (const unsigned char *)PQgetvalue(r, row, col);
    uint64_t u = 0;
    for (int i = 0; i < 8; i++) u = u << 8 | b[i];
    return (int64_t)u;
}

static int be16(PGresult *r, int row, int col) {
    const unsigned char *b = (const unsigned char *)PQgetvalue(r, row, col);
    return (int16_t)(uint16_t)(b[0] << 8 | b[1]);
}

/* The binary layout this file reads: int8 / timestamptz (8 bytes) and int2
 * where expected, checked once per page. */
static bool binary_shape_ok(PGresult *r) {
    static const struct { int col; int len; } fixed[] = {{0, 8}, {1, 8}, {2, 8}, {15, 8}, {25, 2}};
    if (PQnfields(r) != 28) return false;
    for (int i = 0; i < PQntuples(r); i++)
        for (size_t k = 0; k < sizeof(fixed) / sizeof(fixed[0]); k++)
            if (!PQgetisnull(r, i, fixed[k].col) && PQgetlength(r, i, fixed[k].col) != fixed[k].len) return false;
    return true;
}

static int broken(audit_db *db, int64_t *first_broken, int64_t id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records the first broken event and says how, as "event N: <why>". */
static int broken(audit_db *db, int64_t *first_broken, int64_t id, const char *fmt, ...) {
    if (first_broken) *first_broken = id;
    char why[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    return audit__fail(db, AUDIT_ERR_BROKEN, "event %" PRId64 ": %s", id, why);
}

/* Column order of the page query; the encoding's order lives in canon.c. */
enum {
    C_ID, C_REQUEST_ID, C_AT_US, C_ACTION, C_ACTOR, C_PERSON, C_OUTCOME, C_FROM_STATE, C_TO_STATE, C_PHASE,
    C_REASON, C_ENV, C_JOB, C_FROM_IMAGE, C_TO_IMAGE, C_NOMAD_JOB_VERSION, C_EVAL_ID, C_DEPLOYMENT_ID, C_DETAIL,
    C_PLATFORM, C_TEAM, C_CHANNEL, C_MESSAGE_REF, C_THREAD, C_PERMALINK, C_ENC_VERSION, C_PREV_HASH, C_HASH
};

/* The id of the event whose hash is `hash`, 0 if none (or on error: this
 * only refines a report that is already "broken"). */
static int64_t hash_owner(audit_db *db, const char *hash) {
    PGresult *r = NULL;
    const char *p[] = {hash};
    char save[sizeof(db->errstr)];
    memcpy(save, db->errstr, sizeof(save));
    int64_t id = 0;
    if (audit__exec(db, "looking up a hash", "SELECT id FROM audit_events WHERE hash = $1", 1, p, &r) == AUDIT_OK &&
        PQntuples(r) == 1)
        id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    memcpy(db->errstr, save, sizeof(save));
    return id;
}

/* Every checkpoint must name an event that exists with the hash it
 * recorded: a missing head means the tail was cut off, a different hash that
 * the chain was rewritten (and re-hashed) up to there. */
int audit__check_checkpoints(audit_db *db, int64_t *first_broken) {
    PGresult *r = NULL;
    int rc = audit__exec(db, "comparing with the checkpoints",
                         "SELECT c.id, c.head_id, e.id IS NULL,\n"
                         "  to_char(c.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),\n"
                         "  (SELECT coalesce(max(id), 0) FROM audit_events)\n"
                         "FROM audit_checkpoints c LEFT JOIN audit_events e ON e.id = c.head_id\n"
                         "WHERE c.head_id > 0 AND (e.id IS NULL OR e.hash <> c.head_hash)\n"
                         "ORDER BY c.head_id LIMIT 1",
                         0, NULL, &r);
    if (rc) return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return AUDIT_OK;
    }
    int64_t cp = strtoll(PQgetvalue(r, 0, 0), NULL, 10), head = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    int64_t last = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
    bool gone = PQgetvalue(r, 0, 2)[0] == 't';
    char at[32];
    snprintf(at, sizeof(at), "%s", PQgetvalue(r, 0, 3));
    PQclear(r);
    if (gone) {
        if (first_broken) *first_broken = last + 1;
        return audit__fail(db, AUDIT_ERR_BROKEN,
                           "event %" PRId64 ": missing: the chain ends at event %" PRId64 " but checkpoint %" PRId64
                           " (%s) recorded head event %" PRId64 " (tail truncated)",
                           last + 1, last, cp, at, head);
    }
    if (first_broken) *first_broken = head;
    return audit__fail(db, AUDIT_ERR_BROKEN,
                       "event %" PRId64 ": hash differs from checkpoint %" PRId64 " (%s): the chain was rewritten (altered)",
                       head, cp, at);
}

int audit_verify(audit_db *db, int64_t from_id, int64_t *first_broken) {
    int rc;
    if (first_broken) *first_broken = 0;
    if (!audit__conn(db, &rc)) return rc;

    int64_t expect_id = from_id > 1 ? from_id : 1;
    char expect_prev[AUDIT_HASH_HEX_LEN + 1] = AUDIT_GENESIS_HASH;
    char id_s[24];

    if (expect_id > 1) {
        /* Starting mid-chain: link the first event to its predecessor's
         * stored hash (which an earlier full verify vouched for). */
        snprintf(id_s, sizeof(id_s), "%" PRId64, expect_id - 1);
        const char *p[] = {id_s};
        PGresult *r = NULL;
        if ((rc = audit__exec(db, "reading the event before --from",
                              "SELECT hash, EXISTS (SELECT 1 FROM audit_events WHERE id > $1::bigint)\n"
                              "FROM (SELECT 1) x LEFT JOIN audit_events e ON e.id = $1::bigint",
                              1, p, &r)))
            return rc;
        bool have_prev = !PQgetisnull(r, 0, 0);
        bool have_more = PQgetvalue(r, 0, 1)[0] == 't';
        if (have_prev) snprintf(expect_prev, sizeof(expect_prev), "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        if (!have_prev) {
            if (!have_more) {
                rc = audit__check_checkpoints(db, first_broken);
                if (rc == AUDIT_OK) snprintf(db->errstr, sizeof(db->errstr), "0 events verified");
                return rc; /* nothing at or after from_id: nothing to verify but the checkpoints */
            }
            if (first_broken) *first_broken = expect_id - 1;
            return audit__fail(db, AUDIT_ERR_BROKEN, "gap: event %" PRId64 " missing", expect_id - 1);
        }
    }

    nm_buf enc;
    nm_buf_init(&enc, AUDIT_ENC_MAX);
    int64_t checked = 0;
    bool inflight = false;
    for (;;) {
        /* The next page was requested before this one was checked (see
         * below), except for the first. */
        if (!inflight) {
            rc = page_send(db, expect_id);
            if (rc) break;
            inflight = true;
        }
        PGresult *r = NULL;
        rc = page_recv(db, &r);
        inflight = false;
        if (rc) break;
        int n = PQntuples(r);
        /* A full page: ask for the next one now, so the server reads it
         * while this one is hashed (two cores instead of one, turn by turn). */
        if (n == PAGE_N) {
            rc = page_send(db, be64(r, n - 1, C_ID) + 1);
            if (rc) {
                PQclear(r);
                break;
            }
            inflight = true;
        }
        for (int i = 0; i < n && rc == AUDIT_OK; i++) {
            int64_t id = be64(r, i, C_ID);
            if (id != expect_id) {
                if (first_broken) *first_broken = expect_id;
                rc = audit__fail(db, AUDIT_ERR_BROKEN, "gap: event %" PRId64 " missing", expect_id);
                break;
            }
            int ver = be16(r, i, C_ENC_VERSION);
            if (ver != AUDIT_ENC_VERSION) {
                rc = broken(db, first_broken, id, "unknown encoding version %d", ver);
                break;
            }
            const char *prev = PQgetvalue(r, i, C_PREV_HASH), *hash = PQgetvalue(r, i, C_HASH);
            if (strcmp(prev, expect_prev) != 0) {
                page_drain(db, &inflight); /* hash_owner needs the connection */
                int64_t other = hash_owner(db, prev);
                if (other > 0 && other != id - 1)
                    rc = broken(db, first_broken, id, "reordered: it follows event %" PRId64 ", not event %" PRId64,
                                other, id - 1);
                else
                    rc = id == 1 ? broken(db, first_broken, id, "prev_hash is not the genesis value (altered)")
                                 : broken(db, first_broken, id, "prev_hash does not match event %" PRId64 " (altered)",
                                          id - 1);
                break;
            }
            /* 0 and -1 stand for NULL in audit_event: a stored value the
             * sentinel could hide is itself a sign of tampering. */
            int64_t req = PQgetisnull(r, i, C_REQUEST_ID) ? 0 : be64(r, i, C_REQUEST_ID);
            int64_t njv = PQgetisnull(r, i, C_NOMAD_JOB_VERSION)
                              ? -1
                              : be64(r, i, C_NOMAD_JOB_VERSION);
            if ((!PQgetisnull(r, i, C_REQUEST_ID) && req <= 0) ||
                (!PQgetisnull(r, i, C_NOMAD_JOB_VERSION) && njv < 0)) {
                rc = broken(db, first_broken, id, "hash does not match its content (altered)");
                break;
            }
            audit_event e = {
                .id = id,
                .request_id = req,
                .at_us = be64(r, i, C_AT_US) + PG_EPOCH_US,
                .enc_version = ver,
                .action = col_str(r, i, C_ACTION),
                .actor = col_str(r, i, C_ACTOR),
                .person = col_str(r, i, C_PERSON),
                .outcome = col_str(r, i, C_OUTCOME),
                .from_state = col_str(r, i, C_FROM_STATE),
                .to_state = col_str(r, i, C_TO_STATE),
                .phase = col_str(r, i, C_PHASE),
                .reason = col_str(r, i, C_REASON),
                .env = col_str(r, i, C_ENV),
                .job = col_str(r, i, C_JOB),
                .from_image = col_str(r, i, C_FROM_IMAGE),
                .to_image = col_str(r, i, C_TO_IMAGE),
                .nomad_job_version = njv,
                .eval_id = col_str(r, i, C_EVAL_ID),
                .deployment_id = col_str(r, i, C_DEPLOYMENT_ID),
                .detail = col_str(r, i, C_DETAIL),
                .platform = col_str(r, i, C_PLATFORM),
                .team = col_str(r, i, C_TEAM),
                .channel = col_str(r, i, C_CHANNEL),
                .message_ref = col_str(r, i, C_MESSAGE_REF),
                .thread = col_str(r, i, C_THREAD),
                .permalink = col_str(r, i, C_PERMALINK),
                .prev_hash = prev,
            };
            nm_buf_reset(&enc);
            char want[AUDIT_HASH_HEX_LEN + 1];
            int crc = audit_canon_encode(&e, &enc);
            if (crc == AUDIT_CANON_OK) crc = audit_canon_chain_hash(prev, enc.data ? enc.data : "", enc.len, want);
            if (crc == AUDIT_CANON_NOMEM) {
                rc = audit__fail(db, AUDIT_ERR_NOMEM, "out of memory verifying event %" PRId64, id);
                break;
            }
            /* A field too long to encode, or a malformed prev_hash, was not written by us. */
            if (crc != AUDIT_CANON_OK || strcmp(want, hash) != 0) {
                rc = broken(db, first_broken, id, "hash does not match its content (altered)");
                break;
            }
            snprintf(expect_prev, sizeof(expect_prev), "%s", hash);
            expect_id++;
            checked++;
        }
        PQclear(r);
        if (rc || n == 0) break;
    }
    page_drain(db, &inflight);
    nm_buf_free(&enc);
    if (rc == AUDIT_OK) rc = audit__check_checkpoints(db, first_broken);
    if (rc == AUDIT_OK) snprintf(db->errstr, sizeof(db->errstr), "%" PRId64 " events verified", checked);
    return rc;
}
