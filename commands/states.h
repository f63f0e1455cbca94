/* Request states, phases and failure reasons (SPEC §6), and the one table of
 * allowed transitions. Pure: no I/O, no allocation.
 *
 *   pending_approval -> approved -> queued -> running -> succeeded | failed
 *   pending_approval -> rejected | expired | cancelled
 *   approved, queued -> expired | cancelled
 *   running -> queued   (hand back before anything reached Nomad: phase registering only)
 *
 * A request is created in pending_approval (approvals needed) or queued
 * (none needed). succeeded, failed, rejected, expired and cancelled are
 * terminal: nothing leaves them. An illegal transition is an error for the
 * caller to report, never an overwrite.
 *
 * Names are the exact strings stored in PostgreSQL (audit/migrate.c CHECKs). */
#ifndef NM_STATES_H
#define NM_STATES_H

#include <stdbool.h>
#include <stddef.h>

enum req_state {
    REQ_STATE_NONE = 0,          /* not a state: "no request yet" / "unchanged" */
    REQ_PENDING_APPROVAL,
    REQ_APPROVED,
    REQ_QUEUED,
    REQ_RUNNING,
    REQ_SUCCEEDED,
    REQ_FAILED,
    REQ_REJECTED,
    REQ_EXPIRED,
    REQ_CANCELLED,
};
#define REQ_STATE_COUNT 10       /* including REQ_STATE_NONE */

/* `running` carries a phase; every other state has REQ_PHASE_NONE. */
enum req_phase {
    REQ_PHASE_NONE = 0,          /* "" */
    REQ_PHASE_REGISTERING,
    REQ_PHASE_ROLLING,
    REQ_PHASE_AWAITING_PROMOTION,
    REQ_PHASE_PAUSED,
};
#define REQ_PHASE_COUNT 5

/* `failed` carries a reason; every other state has REQ_REASON_NONE. */
enum req_reason {
    REQ_REASON_NONE = 0,         /* "" */
    REQ_REASON_UNHEALTHY,
    REQ_REASON_AUTO_REVERTED,    /* detail holds the version reverted to */
    REQ_REASON_DEADLINE,
    REQ_REASON_CONFLICT,
    REQ_REASON_SUPERSEDED,
    REQ_REASON_TIMEOUT,
    REQ_REASON_NOMAD_ERROR,
};
#define REQ_REASON_COUNT 8

/* Stored names ("pending_approval", "rolling", "auto_reverted"; "" for the
 * NONE values). Out-of-range values give "?". Static strings. */
const char *req_state_name(enum req_state s);
const char *req_phase_name(enum req_phase p);
const char *req_reason_name(enum req_reason r);

/* Parse stored names (exact, case-sensitive). Return true and set *out, or
 * false for anything else (NULL included). "" parses to the NONE value for
 * phases and reasons, never for states. */
bool req_state_parse(const char *name, enum req_state *out);
bool req_phase_parse(const char *name, enum req_phase *out);
bool req_reason_parse(const char *name, enum req_reason *out);

bool req_state_valid(enum req_state s);          /* a real state (not NONE) */
bool req_state_terminal(enum req_state s);       /* succeeded failed rejected expired cancelled */
bool req_state_open(enum req_state s);           /* pending_approval approved queued running */
/* Before it runs: pending_approval, approved, queued (cancel and expiry apply). */
bool req_state_waiting(enum req_state s);

/* The table. False for NONE, unknown values and from == to. */
bool request_transition_allowed(enum req_state from, enum req_state to);
/* States a request may be created in: pending_approval or queued. */
bool request_initial_allowed(enum req_state s);

/* Phase changes inside `running` (from REQ_PHASE_NONE = entering running):
 *   none -> registering -> rolling <-> paused
 *   rolling -> awaiting_promotion -> rolling (canary promote)
 *   awaiting_promotion <-> paused, paused -> rolling */
bool request_phase_transition_allowed(enum req_phase from, enum req_phase to);

/* Is (state, phase, reason) a consistent triple? running needs a phase,
 * failed needs a reason, everything else has neither. */
bool request_fields_valid(enum req_state s, enum req_phase p, enum req_reason r);

/* A full step, as a caller about to write PostgreSQL would check it: the
 * state change (or, with from == to == running, the phase change), the new
 * triple's consistency, and running -> queued only from registering.
 * Returns 0, or -1 with a one-line reason in err ("illegal transition
 * succeeded -> running: succeeded is terminal"). err may be NULL. */
int request_step_check(enum req_state from, enum req_phase from_phase, enum req_state to,
                       enum req_phase to_phase, enum req_reason to_reason, char *err, size_t errlen);

#endif
