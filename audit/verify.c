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

#define PAGE_ROWS "500"

static const char *col_str(PGresult *r, int row, int col) {
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
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
                db->errstr[0] = '\0';
                return AUDIT_OK; /* nothing at or after from_id: nothing to verify */
            }
            if (first_broken) *first_broken = expect_id - 1;
            return audit__fail(db, AUDIT_ERR_BROKEN, "gap: event %" PRId64 " missing", expect_id - 1);
        }
    }

    nm_buf enc;
    nm_buf_init(&enc, AUDIT_ENC_MAX);
    int64_t checked = 0;
    for (;;) {
        snprintf(id_s, sizeof(id_s), "%" PRId64, expect_id);
        const char *p[] = {id_s};
        PGresult *r = NULL;
        rc = audit__exec(db, "reading audit events",
                         "SELECT id, request_id, (extract(epoch FROM at) * 1000000)::bigint, action, actor, person,\n"
                         "  outcome, from_state, to_state, phase, reason, env, job, from_image, to_image,\n"
                         "  nomad_job_version, eval_id, deployment_id, detail, platform, team, channel, message_ref,\n"
                         "  thread, permalink, enc_version, prev_hash, hash\n"
                         "FROM audit_events WHERE id >= $1::bigint ORDER BY id LIMIT " PAGE_ROWS,
                         1, p, &r);
        if (rc) break;
        int n = PQntuples(r);
        for (int i = 0; i < n && rc == AUDIT_OK; i++) {
            int64_t id = strtoll(PQgetvalue(r, i, C_ID), NULL, 10);
            if (id != expect_id) {
                if (first_broken) *first_broken = expect_id;
                rc = audit__fail(db, AUDIT_ERR_BROKEN, "gap: event %" PRId64 " missing", expect_id);
                break;
            }
            int ver = atoi(PQgetvalue(r, i, C_ENC_VERSION));
            if (ver != AUDIT_ENC_VERSION) {
                rc = broken(db, first_broken, id, "unknown encoding version %d", ver);
                break;
            }
            const char *prev = PQgetvalue(r, i, C_PREV_HASH), *hash = PQgetvalue(r, i, C_HASH);
            if (strcmp(prev, expect_prev) != 0) {
                rc = id == 1 ? broken(db, first_broken, id, "prev_hash is not the genesis value")
                             : broken(db, first_broken, id, "prev_hash does not match event %" PRId64, id - 1);
                break;
            }
            /* 0 and -1 stand for NULL in audit_event: a stored value the
             * sentinel could hide is itself a sign of tampering. */
            int64_t req = PQgetisnull(r, i, C_REQUEST_ID) ? 0 : strtoll(PQgetvalue(r, i, C_REQUEST_ID), NULL, 10);
            int64_t njv = PQgetisnull(r, i, C_NOMAD_JOB_VERSION)
                              ? -1
                              : strtoll(PQgetvalue(r, i, C_NOMAD_JOB_VERSION), NULL, 10);
            if ((!PQgetisnull(r, i, C_REQUEST_ID) && req <= 0) ||
                (!PQgetisnull(r, i, C_NOMAD_JOB_VERSION) && njv < 0)) {
                rc = broken(db, first_broken, id, "hash does not match its content (altered)");
                break;
            }
            audit_event e = {
                .id = id,
                .request_id = req,
                .at_us = strtoll(PQgetvalue(r, i, C_AT_US), NULL, 10),
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
    nm_buf_free(&enc);
    if (rc == AUDIT_OK) snprintf(db->errstr, sizeof(db->errstr), "%" PRId64 " events verified", checked);
    return rc;
}
