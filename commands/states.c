/* The request state machine's tables. See states.h. */
#include "states.h"

#include <stdio.h>
#include <string.h>

static const char *const state_names[REQ_STATE_COUNT] = {
    "", "pending_approval", "approved", "queued", "running", "succeeded", "failed", "rejected", "expired", "cancelled",
};
static const char *const phase_names[REQ_PHASE_COUNT] = {
    "", "registering", "rolling", "awaiting_promotion", "paused",
};
static const char *const reason_names[REQ_REASON_COUNT] = {
    "", "unhealthy", "auto_reverted", "deadline", "conflict", "superseded", "timeout", "nomad_error",
};

/* The one table: allowed[from][to]. Everything not listed is illegal. */
#define P REQ_PENDING_APPROVAL
#define A REQ_APPROVED
#define Q REQ_QUEUED
#define R REQ_RUNNING
static const struct {
    enum req_state from, to;
} transitions[] = {
    {P, A},                 /* enough distinct eligible people approved */
    {P, REQ_REJECTED},      /* an approver said no */
    {P, REQ_EXPIRED},       /* approval_ttl passed */
    {P, REQ_CANCELLED},     /* requester or approver withdrew it */
    {A, Q},                 /* handed to the queue */
    {A, REQ_EXPIRED},
    {A, REQ_CANCELLED},
    {Q, R},                 /* a worker took it (freeze checked) */
    {Q, REQ_EXPIRED},       /* waited past approval_ttl (e.g. behind a freeze) */
    {Q, REQ_CANCELLED},
    {R, Q},                 /* handed back before the register (freeze began, drain) */
    {R, REQ_SUCCEEDED},
    {R, REQ_FAILED},
};
#undef P
#undef A
#undef Q
#undef R

static bool state_in_range(enum req_state s) { return (int)s > 0 && (int)s < REQ_STATE_COUNT; }

const char *req_state_name(enum req_state s) {
    return (int)s >= 0 && (int)s < REQ_STATE_COUNT ? state_names[s] : "?";
}
const char *req_phase_name(enum req_phase p) {
    return (int)p >= 0 && (int)p < REQ_PHASE_COUNT ? phase_names[p] : "?";
}
const char *req_reason_name(enum req_reason r) {
    return (int)r >= 0 && (int)r < REQ_REASON_COUNT ? reason_names[r] : "?";
}

static int lookup(const char *const *names, int n, int first, const char *name) {
    if (!name) return -1;
    for (int i = first; i < n; i++)
        if (strcmp(names[i], name) == 0) return i;
    return -1;
}

bool req_state_parse(const char *name, enum req_state *out) {
    int i = lookup(state_names, REQ_STATE_COUNT, 1, name);
    if (i < 0) return false;
    *out = (enum req_state)i;
    return true;
}
bool req_phase_parse(const char *name, enum req_phase *out) {
    int i = lookup(phase_names, REQ_PHASE_COUNT, 0, name);
    if (i < 0) return false;
    *out = (enum req_phase)i;
    return true;
}
bool req_reason_parse(const char *name, enum req_reason *out) {
    int i = lookup(reason_names, REQ_REASON_COUNT, 0, name);
    if (i < 0) return false;
    *out = (enum req_reason)i;
    return true;
}

bool req_state_valid(enum req_state s) { return state_in_range(s); }

bool req_state_terminal(enum req_state s) {
    return s == REQ_SUCCEEDED || s == REQ_FAILED || s == REQ_REJECTED || s == REQ_EXPIRED || s == REQ_CANCELLED;
}
bool req_state_open(enum req_state s) {
    return s == REQ_PENDING_APPROVAL || s == REQ_APPROVED || s == REQ_QUEUED || s == REQ_RUNNING;
}
bool req_state_waiting(enum req_state s) {
    return s == REQ_PENDING_APPROVAL || s == REQ_APPROVED || s == REQ_QUEUED;
}

bool request_transition_allowed(enum req_state from, enum req_state to) {
    if (!state_in_range(from) || !state_in_range(to) || from == to) return false;
    for (size_t i = 0; i < sizeof transitions / sizeof transitions[0]; i++)
        if (transitions[i].from == from && transitions[i].to == to) return true;
    return false;
}

bool request_initial_allowed(enum req_state s) { return s == REQ_PENDING_APPROVAL || s == REQ_QUEUED; }

bool request_phase_transition_allowed(enum req_phase from, enum req_phase to) {
    switch (from) {
    case REQ_PHASE_NONE: return to == REQ_PHASE_REGISTERING;
    case REQ_PHASE_REGISTERING: return to == REQ_PHASE_ROLLING;
    case REQ_PHASE_ROLLING: return to == REQ_PHASE_PAUSED || to == REQ_PHASE_AWAITING_PROMOTION;
    case REQ_PHASE_AWAITING_PROMOTION: return to == REQ_PHASE_ROLLING || to == REQ_PHASE_PAUSED;
    case REQ_PHASE_PAUSED: return to == REQ_PHASE_ROLLING || to == REQ_PHASE_AWAITING_PROMOTION;
    }
    return false;
}

bool request_fields_valid(enum req_state s, enum req_phase p, enum req_reason r) {
    if (!state_in_range(s) || (int)p < 0 || (int)p >= REQ_PHASE_COUNT || (int)r < 0 || (int)r >= REQ_REASON_COUNT)
        return false;
    if (s == REQ_RUNNING) return p != REQ_PHASE_NONE && r == REQ_REASON_NONE;
    if (s == REQ_FAILED) return p == REQ_PHASE_NONE && r != REQ_REASON_NONE;
    return p == REQ_PHASE_NONE && r == REQ_REASON_NONE;
}

#define FAIL(...)                                          \
    do {                                                   \
        if (err && errlen) snprintf(err, errlen, __VA_ARGS__); \
        return -1;                                         \
    } while (0)

int request_step_check(enum req_state from, enum req_phase from_phase, enum req_state to,
                       enum req_phase to_phase, enum req_reason to_reason, char *err, size_t errlen) {
    if (!state_in_range(from) || !state_in_range(to)) FAIL("unknown request state");
    if (!request_fields_valid(to, to_phase, to_reason))
        FAIL("state %s cannot carry phase '%s' and reason '%s'", req_state_name(to), req_phase_name(to_phase),
             req_reason_name(to_reason));
    if (from == to) {
        if (from != REQ_RUNNING) FAIL("illegal transition %s -> %s", req_state_name(from), req_state_name(to));
        if (!request_phase_transition_allowed(from_phase, to_phase))
            FAIL("illegal phase change %s -> %s", req_phase_name(from_phase), req_phase_name(to_phase));
        return 0;
    }
    if (!request_transition_allowed(from, to)) {
        if (req_state_terminal(from))
            FAIL("illegal transition %s -> %s: %s is terminal", req_state_name(from), req_state_name(to),
                 req_state_name(from));
        FAIL("illegal transition %s -> %s", req_state_name(from), req_state_name(to));
    }
    if (from == REQ_RUNNING && to == REQ_QUEUED && from_phase != REQ_PHASE_REGISTERING)
        FAIL("illegal transition running -> queued: only before the register (phase %s)", req_phase_name(from_phase));
    if (to == REQ_RUNNING && to_phase != REQ_PHASE_REGISTERING)
        FAIL("a request starts running in phase registering, not %s", req_phase_name(to_phase));
    return 0;
}
