/* Schema migrations: an ordered list of SQL scripts, applied once each, in
 * order, inside one transaction that holds an advisory lock so concurrent
 * `nomatron migrate` runs queue up instead of racing. Table names are
 * unqualified: the connection's search_path picks the schema.
 *
 * Never edit a shipped migration; append a new one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_int.h"

typedef struct migration {
    const char *name;
    const char *sql; /* static text, no values: run as a simple query (several statements) */
} migration;

static const migration migrations[] = {
    {"requests and the append-only, hash-chained audit_events",
     /* requests: the source of truth for each request's state (SPEC §6). */
     "CREATE TABLE requests (\n"
     "  id                bigserial PRIMARY KEY,\n"
     "  idem_key          text UNIQUE,\n"
     "  kind              text NOT NULL CHECK (kind <> ''),\n"
     "  state             text NOT NULL CHECK (state IN ('pending_approval', 'approved', 'queued', 'running',\n"
     "                       'succeeded', 'failed', 'rejected', 'expired', 'cancelled')),\n"
     "  phase             text NOT NULL DEFAULT '' CHECK (phase IN ('', 'registering', 'rolling',\n"
     "                       'awaiting_promotion', 'paused')),\n"
     "  reason            text NOT NULL DEFAULT '' CHECK (reason IN ('', 'unhealthy', 'auto_reverted', 'deadline',\n"
     "                       'conflict', 'superseded', 'timeout', 'nomad_error')),\n"
     "  env               text NOT NULL CHECK (env <> ''),\n"
     "  job               text NOT NULL CHECK (job <> ''),\n"
     "  version           text NOT NULL DEFAULT '',\n"
     "  to_image          text NOT NULL DEFAULT '',\n"
     "  from_image        text NOT NULL DEFAULT '',\n"
     "  canary            integer NOT NULL DEFAULT -1 CHECK (canary >= -1),\n"
     "  user_reason       text,\n"
     "  actor             text NOT NULL CHECK (actor <> ''),\n"
     "  person            text,\n"
     "  platform          text,\n"
     "  team              text,\n"
     "  channel           text,\n"
     "  message_ref       text,\n"
     "  thread            text,\n"
     "  permalink         text,\n"
     "  route             text,\n"
     "  nomad_job_version bigint CHECK (nomad_job_version >= 0),\n"
     "  eval_id           text NOT NULL DEFAULT '',\n"
     "  deployment_id     text NOT NULL DEFAULT '',\n"
     "  detail            text NOT NULL DEFAULT '',\n"
     "  created_at        timestamptz NOT NULL DEFAULT now(),\n"
     "  updated_at        timestamptz NOT NULL DEFAULT now()\n"
     ");\n"
     "CREATE INDEX requests_env_job_idx ON requests (env, job, id);\n"
     "CREATE INDEX requests_state_idx ON requests (state) WHERE state IN ('pending_approval', 'approved', 'queued',\n"
     "  'running');\n"
     "CREATE INDEX requests_message_ref_idx ON requests (message_ref) WHERE message_ref IS NOT NULL;\n"
     "CREATE INDEX requests_permalink_idx ON requests (permalink) WHERE permalink IS NOT NULL;\n"
     "CREATE INDEX requests_created_at_idx ON requests (created_at);\n"
     /* audit_events: ids are given by the appender under the chain lock
      * (head + 1), so they are gapless: a missing id is a deleted event. */
     "CREATE TABLE audit_events (\n"
     "  id                bigint PRIMARY KEY CHECK (id > 0),\n"
     "  request_id        bigint REFERENCES requests (id) CHECK (request_id > 0),\n"
     "  at                timestamptz NOT NULL,\n"
     "  action            text NOT NULL CHECK (action <> ''),\n"
     "  actor             text NOT NULL CHECK (actor <> ''),\n"
     "  person            text,\n"
     "  outcome           text,\n"
     "  from_state        text,\n"
     "  to_state          text,\n"
     "  phase             text,\n"
     "  reason            text,\n"
     "  env               text,\n"
     "  job               text,\n"
     "  from_image        text,\n"
     "  to_image          text,\n"
     "  nomad_job_version bigint CHECK (nomad_job_version >= 0),\n"
     "  eval_id           text,\n"
     "  deployment_id     text,\n"
     "  detail            text,\n"
     "  platform          text,\n"
     "  team              text,\n"
     "  channel           text,\n"
     "  message_ref       text,\n"
     "  thread            text,\n"
     "  permalink         text,\n"
     "  enc_version       smallint NOT NULL,\n"
     "  prev_hash         text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),\n"
     "  hash              text NOT NULL UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$')\n"
     ");\n"
     "CREATE INDEX audit_events_request_idx ON audit_events (request_id, id);\n"
     "CREATE INDEX audit_events_at_idx ON audit_events (at);\n"
     "CREATE INDEX audit_events_actor_idx ON audit_events (actor, id);\n"
     "CREATE INDEX audit_events_env_job_idx ON audit_events (env, job, id);\n"
     "CREATE INDEX audit_events_message_ref_idx ON audit_events (message_ref) WHERE message_ref IS NOT NULL;\n"
     /* The database itself refuses to rewrite history. */
     "CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$\n"
     "BEGIN\n"
     "  RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP\n"
     "    USING ERRCODE = 'insufficient_privilege';\n"
     "END;\n"
     "$$;\n"
     "CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events\n"
     "  FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();\n"
     "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events\n"
     "  FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();\n"},
    {"audit_messages, audit_checkpoints and the permalink lookup",
     /* Every chat message tied to a request: inbound commands and clicks
      * ('in') and what nomatron posted ('out'). The lookup table for
      * `audit PERMALINK|TS|POST-ID`; the same facts are also in the chain. */
     "CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$\n"
     "BEGIN\n"
     "  RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP\n"
     "    USING ERRCODE = 'insufficient_privilege';\n"
     "END;\n"
     "$$;\n"
     "CREATE TABLE audit_messages (\n"
     "  id          bigserial PRIMARY KEY,\n"
     "  request_id  bigint NOT NULL REFERENCES requests (id),\n"
     "  direction   text NOT NULL CHECK (direction IN ('in', 'out')),\n"
     "  platform    text NOT NULL CHECK (platform <> ''),\n"
     "  team        text,\n"
     "  channel     text,\n"
     "  message_ref text NOT NULL CHECK (message_ref <> ''),\n"
     "  thread      text,\n"
     "  permalink   text,\n"
     "  at          timestamptz NOT NULL DEFAULT now()\n"
     ");\n"
     "CREATE INDEX audit_messages_ref_idx ON audit_messages (message_ref);\n"
     "CREATE INDEX audit_messages_permalink_idx ON audit_messages (permalink) WHERE permalink IS NOT NULL;\n"
     "CREATE INDEX audit_messages_request_idx ON audit_messages (request_id, id);\n"
     "CREATE TRIGGER audit_messages_no_update_delete BEFORE UPDATE OR DELETE ON audit_messages\n"
     "  FOR EACH ROW EXECUTE FUNCTION audit_append_only();\n"
     "CREATE TRIGGER audit_messages_no_truncate BEFORE TRUNCATE ON audit_messages\n"
     "  FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();\n"
     /* Head hashes published outside the database; verify compares the
      * chain with each, which is how a truncated tail is caught. */
     "CREATE TABLE audit_checkpoints (\n"
     "  id        bigserial PRIMARY KEY,\n"
     "  head_id   bigint NOT NULL CHECK (head_id >= 0),\n"
     "  head_hash text NOT NULL CHECK (head_hash ~ '^[0-9a-f]{64}$'),\n"
     "  events    bigint NOT NULL CHECK (events >= 0),\n"
     "  at        timestamptz NOT NULL DEFAULT now()\n"
     ");\n"
     "CREATE TRIGGER audit_checkpoints_no_update_delete BEFORE UPDATE OR DELETE ON audit_checkpoints\n"
     "  FOR EACH ROW EXECUTE FUNCTION audit_append_only();\n"
     "CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints\n"
     "  FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();\n"
     "CREATE INDEX audit_events_permalink_idx ON audit_events (permalink) WHERE permalink IS NOT NULL;\n"},
    {"governance: approvals, environment locks, emergency and policy columns, one open request per (env, job)",
     /* requests: what governance decides on (commands/governance.h). */
     "ALTER TABLE requests\n"
     "  ADD COLUMN emergency          text,\n"
     "  ADD COLUMN required_approvals integer NOT NULL DEFAULT 0 CHECK (required_approvals >= 0),\n"
     "  ADD COLUMN policy_hash        text CHECK (policy_hash ~ '^[0-9a-f]{16}$'),\n"
     "  ADD COLUMN plan_modify_index  bigint CHECK (plan_modify_index >= 0),\n"
     "  ADD COLUMN plan_hash          text,\n"
     "  ADD COLUMN bound_image        text,\n"
     "  ADD COLUMN from_env           text,\n"
     "  ADD COLUMN approval_round     integer NOT NULL DEFAULT 0 CHECK (approval_round >= 0);\n"
     /* SPEC §6: one open request per (env, job) where approvals are required. */
     "CREATE UNIQUE INDEX requests_one_open_idx ON requests (env, job)\n"
     "  WHERE required_approvals > 0 AND state IN ('pending_approval', 'approved', 'queued', 'running');\n"
     /* Open requests of a person (their name, else the identity). */
     "CREATE INDEX requests_open_person_idx ON requests ((coalesce(nullif(person, ''), actor)))\n"
     "  WHERE state IN ('pending_approval', 'approved', 'queued', 'running');\n"
     /* Commands of a person in a time window (the rate limit). */
     "CREATE INDEX audit_events_commands_idx ON audit_events ((coalesce(nullif(person, ''), actor)), at)\n"
     "  WHERE action IN ('request.created', 'request.refused');\n"
     /* One row per counted approval. A person counts once per round: the
      * unique constraint is the final guard, also when two platforms race.
      * A reload that voids approvals starts a new round (requests.approval_round). */
     "CREATE TABLE request_approvals (\n"
     "  id         bigserial PRIMARY KEY,\n"
     "  request_id bigint NOT NULL REFERENCES requests (id),\n"
     "  round      integer NOT NULL DEFAULT 0 CHECK (round >= 0),\n"
     "  identity   text NOT NULL CHECK (identity <> ''),\n"
     "  person     text CHECK (person <> ''),\n"
     "  person_key text GENERATED ALWAYS AS (coalesce(person, identity)) STORED,\n"
     "  at         timestamptz NOT NULL DEFAULT now(),\n"
     "  CONSTRAINT request_approvals_once UNIQUE (request_id, round, person_key)\n"
     ");\n"
     "CREATE TRIGGER request_approvals_no_update_delete BEFORE UPDATE OR DELETE ON request_approvals\n"
     "  FOR EACH ROW EXECUTE FUNCTION audit_append_only();\n"
     "CREATE TRIGGER request_approvals_no_truncate BEFORE TRUNCATE ON request_approvals\n"
     "  FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();\n"
     /* The manual freeze: history, newest row per env is the state. seq
      * numbers each env's rows; racing writers collide on (env, seq). */
     "CREATE TABLE env_locks (\n"
     "  id          bigserial PRIMARY KEY,\n"
     "  env         text NOT NULL CHECK (env <> ''),\n"
     "  seq         bigint NOT NULL CHECK (seq > 0),\n"
     "  locked      boolean NOT NULL,\n"
     "  by_identity text NOT NULL CHECK (by_identity <> ''),\n"
     "  person      text,\n"
     "  reason      text,\n"
     "  at          timestamptz NOT NULL DEFAULT now(),\n"
     "  CONSTRAINT env_locks_seq UNIQUE (env, seq)\n"
     ");\n"
     "CREATE TRIGGER env_locks_no_update_delete BEFORE UPDATE OR DELETE ON env_locks\n"
     "  FOR EACH ROW EXECUTE FUNCTION audit_append_only();\n"
     "CREATE TRIGGER env_locks_no_truncate BEFORE TRUNCATE ON env_locks\n"
     "  FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();\n"},
    {"cheaper appends: hash checks without a bounded regex, no UNIQUE index on hash, no index on created_at",
     /* Every append evaluates these per row and updates every index; what
      * each cost is in docs/BENCHMARKS.md ("Appends per second").
      * The same rule as '^[0-9a-f]{64}$' (64 bytes, none outside 0-9 a-f)
      * at a tenth of the CPU: a bounded repetition makes a large automaton. */
     "ALTER TABLE audit_events\n"
     "  DROP CONSTRAINT audit_events_hash_check,\n"
     "  DROP CONSTRAINT audit_events_prev_hash_check,\n"
     "  ADD CONSTRAINT audit_events_hash_check CHECK (octet_length(hash) = 64 AND hash !~ '[^0-9a-f]'),\n"
     "  ADD CONSTRAINT audit_events_prev_hash_check\n"
     "    CHECK (octet_length(prev_hash) = 64 AND prev_hash !~ '[^0-9a-f]'),\n"
     /* A hash covers its event's id, which the primary key keeps unique:
      * two equal hashes would be a SHA-256 collision, and verify recomputes
      * every hash anyway. The index cost a random insert into a btree of
      * 64-byte keys per append; looking an event up by its hash only refines
      * the report on a chain already broken (verify.c), where a scan will do. */
     "  DROP CONSTRAINT audit_events_hash_key;\n"
     /* No query filters or sorts requests by created_at. */
     "DROP INDEX requests_created_at_idx;\n"},
};

#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

int audit__schema_version(void) { return N_MIGRATIONS; }

/* Highest applied version, or -1 with rc set. */
static int applied_version(audit_db *db, int *rc) {
    PGresult *r = NULL;
    *rc = audit__exec(db, "reading schema_migrations", "SELECT COALESCE(max(version), 0) FROM schema_migrations", 0,
                      NULL, &r);
    if (*rc != AUDIT_OK) return -1;
    int v = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

int audit_migrate(audit_db *db, int *applied) { return audit__migrate_to(db, N_MIGRATIONS, applied); }

int audit__migrate_to(audit_db *db, int target, int *applied) {
    int rc, done = 0;
    if (applied) *applied = 0;
    if (target < 0 || target > N_MIGRATIONS)
        return audit__fail(db, AUDIT_ERR_INVALID, "schema version %d: this build knows 0 to %d", target, N_MIGRATIONS);
    if (!audit__conn(db, &rc)) return rc;
    if ((rc = audit__begin(db))) return rc;

    /* Held until COMMIT/ROLLBACK: a second migrate waits here, then sees
     * the versions the first one committed. */
    const char *key[] = {AUDIT_LOCK_MIGRATE};
    if ((rc = audit__exec(db, "taking the migration lock", "SELECT pg_advisory_xact_lock($1::bigint)", 1, key,
                          NULL)))
        goto fail;
    if ((rc = audit__exec(db, "setting client_min_messages", "SET LOCAL client_min_messages = warning", 0, NULL,
                          NULL)))
        goto fail;
    if ((rc = audit__exec(db, "creating schema_migrations",
                          "CREATE TABLE IF NOT EXISTS schema_migrations (\n"
                          "  version    integer PRIMARY KEY,\n"
                          "  name       text NOT NULL,\n"
                          "  applied_at timestamptz NOT NULL DEFAULT now())",
                          0, NULL, NULL)))
        goto fail;
    int have = applied_version(db, &rc);
    if (have < 0) goto fail;
    if (have > N_MIGRATIONS) {
        rc = audit__fail(db, AUDIT_ERR_SCHEMA,
                         "the database is at schema version %d, newer than this build's %d: upgrade nomatron", have,
                         N_MIGRATIONS);
        goto fail;
    }
    for (int v = have + 1; v <= target; v++) {
        const migration *m = &migrations[v - 1];
        char what[64];
        snprintf(what, sizeof(what), "migration %d", v);
        /* A migration is several statements of fixed text: PQexec runs them
         * as one simple query, inside our transaction. */
        PGresult *r = PQexec(db->conn, m->sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
            const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
            snprintf(db->errstr, sizeof(db->errstr), "migration %d (%s) failed: %s", v, m->name,
                     msg ? msg : "no result");
            snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", st ? st : "");
            PQclear(r);
            rc = PQstatus(db->conn) == CONNECTION_OK ? AUDIT_ERR_SQL : AUDIT_ERR_CONNECT;
            goto fail;
        }
        PQclear(r);
        char vbuf[16];
        snprintf(vbuf, sizeof(vbuf), "%d", v);
        const char *p[] = {vbuf, m->name};
        if ((rc = audit__exec(db, what, "INSERT INTO schema_migrations (version, name) VALUES ($1::integer, $2)", 2,
                              p, NULL)))
            goto fail;
        done++;
    }
    if ((rc = audit__commit(db))) return rc;
    if (applied) *applied = done;
    db->errstr[0] = '\0';
    return AUDIT_OK;

fail:
    audit__rollback(db);
    return rc;
}

int audit_schema_check(audit_db *db) {
    int rc;
    if (!audit__conn(db, &rc)) return rc;
    PGresult *r = NULL;
    /* to_regclass: a missing table is "not migrated", not an SQL error. It
     * takes its own statement: a query naming the table fails to plan. */
    rc = audit__exec(db, "checking the schema", "SELECT to_regclass('schema_migrations') IS NOT NULL", 0, NULL, &r);
    if (rc) return rc;
    bool exists = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    int have = -1;
    if (exists && (have = applied_version(db, &rc)) < 0) return rc;
    if (have < 0) return audit__fail(db, AUDIT_ERR_SCHEMA, "the database has no nomatron schema: run nomatron migrate");
    if (have < N_MIGRATIONS)
        return audit__fail(db, AUDIT_ERR_SCHEMA, "the database is at schema version %d, this build needs %d: run nomatron migrate",
                           have, N_MIGRATIONS);
    if (have > N_MIGRATIONS)
        return audit__fail(db, AUDIT_ERR_SCHEMA, "the database is at schema version %d, newer than this build's %d: upgrade nomatron",
                           have, N_MIGRATIONS);
    db->errstr[0] = '\0';
    return AUDIT_OK;
}
