/* Reading the trail back: events by filter, one request's trail, chat
 * references to requests, checkpoints, and the grants of the service role.
 * Rows stream from the server one at a time (audit__stream), so nothing
 * here holds more than one event in memory. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_int.h"

static const char *nz(const char *s) { return s && s[0] ? s : NULL; }

/* ---- events ---- */

typedef struct each_ctx {
    audit_row_cb cb;
    void *arg;
    int64_t n;
} each_ctx;

static int each_row(PGresult *r, void *arg) {
    each_ctx *x = arg;
    audit_row row;
    audit__row_read(r, 0, &row);
    x->n++;
    return x->cb(&row, x->arg);
}

int audit_events_each(audit_db *db, const audit_filter *f, audit_row_cb cb, void *arg) {
    audit_filter none = {0};
    if (!f) f = &none;
    if (!cb) return audit__fail(db, AUDIT_ERR_INVALID, "no callback");
    if (f->request_id < 0 || f->from_id < 0 || f->limit < 0)
        return audit__fail(db, AUDIT_ERR_INVALID, "request, from and limit must not be negative");
    char req_s[24], from_s[24], lim_s[24], since_b[64], until_b[64];
    snprintf(req_s, sizeof(req_s), "%" PRId64, f->request_id);
    snprintf(from_s, sizeof(from_s), "%" PRId64, f->from_id);
    snprintf(lim_s, sizeof(lim_s), "%" PRId64, f->limit);
    const char *p[] = {f->request_id > 0 ? req_s : NULL, nz(f->job), nz(f->env), nz(f->actor),
                       audit__time_param(nz(f->since), since_b), audit__time_param(nz(f->until), until_b),
                       from_s, f->limit > 0 ? lim_s : NULL};
    each_ctx x = {cb, arg, 0};
    /* Unnamed statements are planned with the actual values, so the NULL
     * tests fold away and each filter can use its index. */
    int rc = audit__stream(db, "reading audit events",
                           "SELECT " AUDIT__EVENT_COLS " FROM audit_events\n"
                           "WHERE ($1::bigint IS NULL OR request_id = $1::bigint)\n"
                           "  AND ($2::text IS NULL OR job = $2) AND ($3::text IS NULL OR env = $3)\n"
                           "  AND ($4::text IS NULL OR actor = $4)\n"
                           "  AND ($5::timestamptz IS NULL OR at >= $5::timestamptz)\n"
                           "  AND ($6::timestamptz IS NULL OR at < $6::timestamptz)\n"
                           "  AND id >= $7::bigint\n"
                           "ORDER BY id LIMIT $8::bigint",
                           8, p, each_row, &x);
    /* 22007/22008: PostgreSQL could not read a time. */
    if (rc == AUDIT_ERR_SQL && (strcmp(db->sqlstate, "22007") == 0 || strcmp(db->sqlstate, "22008") == 0))
        return audit__fail(db, AUDIT_ERR_INVALID, "since/until is not a date or an RFC 3339 time");
    if (rc == AUDIT_OK) snprintf(db->errstr, sizeof(db->errstr), "%" PRId64 " events", x.n);
    return rc;
}

int audit_trail(audit_db *db, int64_t request_id, audit_row_cb cb, void *arg) {
    if (request_id <= 0) return audit__fail(db, AUDIT_ERR_NOT_FOUND, "D-%" PRId64 " does not exist", request_id);
    audit_filter f = {.request_id = request_id};
    int rc = audit_events_each(db, &f, cb, arg);
    if (rc == AUDIT_OK && strcmp(db->errstr, "0 events") == 0)
        return audit__fail(db, AUDIT_ERR_NOT_FOUND, "D-%" PRId64 " does not exist", request_id);
    return rc;
}

/* ---- references ---- */

/* "D-12", "d-12" or "12" -> 12; -1 if ref is not one. */
static int64_t parse_request_id(const char *ref) {
    const char *p = ref;
    if ((p[0] == 'D' || p[0] == 'd') && p[1] == '-') p += 2;
    if (!*p || strlen(p) > 18) return -1;
    for (const char *q = p; *q; q++)
        if (!isdigit((unsigned char)*q)) return -1;
    int64_t v = strtoll(p, NULL, 10);
    return v > 0 ? v : -1;
}

/* Slack permalinks end in /archives/<channel>/p<10 digits><6 digits>, the
 * message ts without its dot; Mattermost's in /pl/<26-character post id>.
 * Writes the message reference to out ("" if neither). */
static void ref_from_permalink(const char *url, char *out, size_t n) {
    out[0] = '\0';
    const char *q = strstr(url, "/archives/");
    if (q) {
        const char *p = strstr(q + 10, "/p");
        if (p) {
            p += 2;
            size_t d = 0;
            while (isdigit((unsigned char)p[d])) d++;
            if (d == 16 && (p[16] == '\0' || p[16] == '?' || p[16] == '#'))
                snprintf(out, n, "%.10s.%.6s", p, p + 10);
        }
        return;
    }
    q = strstr(url, "/pl/");
    if (q) {
        q += 4;
        size_t d = 0;
        while (isalnum((unsigned char)q[d])) d++;
        if (d == 26 && (q[26] == '\0' || q[26] == '?' || q[26] == '#')) snprintf(out, n, "%.26s", q);
    }
}

int audit_lookup(audit_db *db, const char *ref, int64_t *request_id) {
    int rc;
    if (request_id) *request_id = 0;
    size_t len = ref ? strlen(ref) : 0;
    if (len == 0 || len > AUDIT_REF_MAX)
        return audit__fail(db, AUDIT_ERR_INVALID, "a reference is 1 to %d characters", AUDIT_REF_MAX);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)ref[i] < 0x20 || ref[i] == 0x7f)
            return audit__fail(db, AUDIT_ERR_INVALID, "a reference has no control characters");
    if (!audit__conn(db, &rc)) return rc;
    PGresult *r = NULL;
    int64_t id = parse_request_id(ref);
    if (id > 0) {
        char id_s[24];
        snprintf(id_s, sizeof(id_s), "%" PRId64, id);
        const char *p[] = {id_s};
        rc = audit__exec(db, "looking up the request", "SELECT id FROM requests WHERE id = $1::bigint", 1, p, &r);
    } else {
        char msg_ref[64];
        const char *permalink = NULL, *mref = ref;
        if (strstr(ref, "://")) {
            permalink = ref;
            ref_from_permalink(ref, msg_ref, sizeof(msg_ref));
            mref = msg_ref[0] ? msg_ref : NULL;
        }
        const char *p[] = {permalink, mref};
        /* Recorded messages first (posts and clicks), then the messages
         * requests came from; the oldest request wins a tie (Slack ts are
         * unique per channel only). */
        rc = audit__exec(db, "looking up the message",
                         "SELECT request_id FROM (\n"
                         "  (SELECT request_id, 1 AS pri FROM audit_messages\n"
                         "   WHERE permalink = $1 OR message_ref = $2 ORDER BY request_id LIMIT 1)\n"
                         "  UNION ALL\n"
                         "  (SELECT id, 2 FROM requests WHERE permalink = $1 OR message_ref = $2 ORDER BY id LIMIT 1)\n"
                         ") x ORDER BY pri LIMIT 1",
                         2, p, &r);
    }
    if (rc) return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return audit__fail(db, AUDIT_ERR_NOT_FOUND, "no record of '%.80s'", ref);
    }
    if (request_id) *request_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    db->errstr[0] = '\0';
    return AUDIT_OK;
}

/* ---- checkpoints ---- */

#define CHECKPOINT_COLS \
    "id, head_id, head_hash, events, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

static void checkpoint_read(PGresult *r, audit_checkpoint_info *out) {
    out->id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    out->head_id = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    snprintf(out->head_hash, sizeof(out->head_hash), "%s", PQgetvalue(r, 0, 2));
    out->events = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
    snprintf(out->at, sizeof(out->at), "%s", PQgetvalue(r, 0, 4));
}

int audit_checkpoint(audit_db *db, audit_checkpoint_info *out) {
    int rc;
    memset(out, 0, sizeof(*out));
    if (!audit__conn(db, &rc)) return rc;
    PGresult *r = NULL;
    /* One statement, one snapshot: head and count agree with each other. */
    if ((rc = audit__exec(db, "reading the audit chain head",
                          "SELECT coalesce(h.id, 0), coalesce(h.hash, repeat('0', 64)),\n"
                          "  (SELECT count(*) FROM audit_events WHERE id <= coalesce(h.id, 0))\n"
                          "FROM (SELECT 1) x\n"
                          "LEFT JOIN LATERAL (SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1) h ON true",
                          0, NULL, &r)))
        return rc;
    int64_t head = strtoll(PQgetvalue(r, 0, 0), NULL, 10), count = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    char hash[AUDIT_HASH_LEN + 1], head_s[24], count_s[24];
    snprintf(hash, sizeof(hash), "%s", PQgetvalue(r, 0, 1));
    PQclear(r);
    /* Ids are gapless: fewer rows than the head id means rows were deleted. */
    if (count != head)
        return audit__fail(db, AUDIT_ERR_BROKEN,
                           "the chain's head is event %" PRId64 " but it holds %" PRId64
                           " events: events are missing (run nomatron audit verify)",
                           head, count);
    /* Nor for a chain that lost what an earlier checkpoint vouched for. */
    int64_t broken = 0;
    if ((rc = audit__check_checkpoints(db, &broken))) return rc;
    snprintf(head_s, sizeof(head_s), "%" PRId64, head);
    snprintf(count_s, sizeof(count_s), "%" PRId64, count);
    const char *p[] = {head_s, hash, count_s};
    if ((rc = audit__exec(db, "recording the checkpoint",
                          "INSERT INTO audit_checkpoints (head_id, head_hash, events)\n"
                          "VALUES ($1::bigint, $2, $3::bigint) RETURNING " CHECKPOINT_COLS,
                          3, p, &r)))
        return rc;
    checkpoint_read(r, out);
    PQclear(r);
    db->errstr[0] = '\0';
    return AUDIT_OK;
}

int audit_checkpoint_latest(audit_db *db, audit_checkpoint_info *out) {
    int rc;
    memset(out, 0, sizeof(*out));
    if (!audit__conn(db, &rc)) return rc;
    PGresult *r = NULL;
    if ((rc = audit__exec(db, "reading the latest checkpoint",
                          "SELECT " CHECKPOINT_COLS " FROM audit_checkpoints ORDER BY id DESC LIMIT 1", 0, NULL, &r)))
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return audit__fail(db, AUDIT_ERR_NOT_FOUND, "no checkpoint recorded yet");
    }
    checkpoint_read(r, out);
    PQclear(r);
    db->errstr[0] = '\0';
    return AUDIT_OK;
}

/* ---- roles ---- */

static bool role_name_valid(const char *s) {
    if (!s || !(islower((unsigned char)s[0]) || s[0] == '_')) return false;
    size_t n = 0;
    for (; s[n]; n++)
        if (!(islower((unsigned char)s[n]) || isdigit((unsigned char)s[n]) || s[n] == '_')) return false;
    return n <= 63;
}

int audit_grant_app_role(audit_db *db, const char *role, bool create) {
    int rc;
    if (!role_name_valid(role))
        return audit__fail(db, AUDIT_ERR_INVALID, "role names are lowercase letters, digits and _, at most 63");
    if (!audit__conn(db, &rc)) return rc;
    PGresult *r = NULL;
    const char *p[] = {role};
    if ((rc = audit__exec(db, "looking up the role", "SELECT 1 FROM pg_roles WHERE rolname = $1", 1, p, &r)))
        return rc;
    bool exists = PQntuples(r) == 1;
    PQclear(r);
    if (!exists && !create) return audit__fail(db, AUDIT_ERR_NOT_FOUND, "role %s does not exist", role);
    if ((rc = audit__exec(db, "reading the schema", "SELECT current_schema()", 0, NULL, &r))) return rc;
    if (PQgetisnull(r, 0, 0)) {
        PQclear(r);
        return audit__fail(db, AUDIT_ERR_SCHEMA, "no current schema: check search_path");
    }
    /* GRANT takes no parameters: the names are checked or come from the
     * server, and are quoted as identifiers here. */
    char *qs = PQescapeIdentifier(db->conn, PQgetvalue(r, 0, 0), strlen(PQgetvalue(r, 0, 0)));
    PQclear(r);
    char *q = PQescapeIdentifier(db->conn, role, strlen(role));
    nm_buf sql;
    nm_buf_init(&sql, 4096);
    int brc = !qs || !q;
    if (!brc && !exists) brc = nm_buf_printf(&sql, "CREATE ROLE %s LOGIN;\n", q);
    if (!brc)
        brc = nm_buf_printf(&sql,
                            "GRANT USAGE ON SCHEMA %s TO %s;\n"
                            "GRANT SELECT ON schema_migrations TO %s;\n"
                            "GRANT SELECT, INSERT ON audit_events, audit_messages, audit_checkpoints,\n"
                            "  request_approvals, env_locks TO %s;\n"
                            "GRANT SELECT, INSERT, UPDATE ON requests TO %s;\n"
                            "GRANT USAGE, SELECT ON SEQUENCE requests_id_seq, audit_messages_id_seq,\n"
                            "  audit_checkpoints_id_seq, request_approvals_id_seq, env_locks_id_seq TO %s;\n",
                            qs, q, q, q, q, q);
    PQfreemem(qs);
    PQfreemem(q);
    if (brc) {
        nm_buf_free(&sql);
        return audit__fail(db, AUDIT_ERR_NOMEM, "out of memory building the grants");
    }
    /* Several statements of fixed shape: one simple query, one transaction. */
    PGresult *g = PQexec(db->conn, sql.data);
    nm_buf_free(&sql);
    if (PQresultStatus(g) != PGRES_COMMAND_OK) {
        const char *st = g ? PQresultErrorField(g, PG_DIAG_SQLSTATE) : NULL;
        const char *msg = g ? PQresultErrorField(g, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", st ? st : "");
        snprintf(db->errstr, sizeof(db->errstr), "granting %s its privileges: %s", role, msg ? msg : "no result");
        PQclear(g);
        return PQstatus(db->conn) == CONNECTION_OK ? AUDIT_ERR_SQL : AUDIT_ERR_CONNECT;
    }
    PQclear(g);
    db->errstr[0] = '\0';
    return AUDIT_OK;
}

int audit_dsn_user(const char *dsn, char *out, size_t n) {
    if (n) out[0] = '\0';
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn ? dsn : "", &err);
    if (!opts) {
        PQfreemem(err); /* may quote the password: never shown */
        return AUDIT_ERR_INVALID;
    }
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "user") == 0 && o->val) snprintf(out, n, "%s", o->val);
    PQconninfoFree(opts);
    return AUDIT_OK;
}
