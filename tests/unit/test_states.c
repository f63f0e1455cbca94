/* The request state machine's table (commands/states.c): every (from, to)
 * pair against SPEC §6 written out independently here, names round-trip,
 * phases and reasons, and full steps with their error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "states.h"

/* The allowed transitions as SPEC §6 and docs/GOVERNANCE.md state them. */
static const char *const allowed_pairs[] = {
    "pending_approval>approved", "pending_approval>rejected", "pending_approval>expired",
    "pending_approval>cancelled", "approved>queued", "approved>expired", "approved>cancelled",
    "queued>running", "queued>expired", "queued>cancelled", "running>queued", "running>succeeded",
    "running>failed",
};

static bool expected_allowed(enum req_state from, enum req_state to) {
    char pair[64];
    snprintf(pair, sizeof pair, "%s>%s", req_state_name(from), req_state_name(to));
    for (size_t i = 0; i < sizeof allowed_pairs / sizeof allowed_pairs[0]; i++)
        if (strcmp(allowed_pairs[i], pair) == 0) return true;
    return false;
}

static void test_every_pair(void **state) {
    (void)state;
    int allowed = 0;
    for (int f = -1; f <= REQ_STATE_COUNT; f++)
        for (int t = -1; t <= REQ_STATE_COUNT; t++) {
            bool got = request_transition_allowed((enum req_state)f, (enum req_state)t);
            bool want = f > 0 && t > 0 && f < REQ_STATE_COUNT && t < REQ_STATE_COUNT &&
                        expected_allowed((enum req_state)f, (enum req_state)t);
            if (got != want) fail_msg("%d -> %d: got %d want %d", f, t, got, want);
            allowed += got;
        }
    assert_int_equal(allowed, 13);
}

static void test_terminal_never_leaves(void **state) {
    (void)state;
    const enum req_state term[] = {REQ_SUCCEEDED, REQ_FAILED, REQ_REJECTED, REQ_EXPIRED, REQ_CANCELLED};
    for (size_t i = 0; i < 5; i++) {
        assert_true(req_state_terminal(term[i]));
        assert_false(req_state_open(term[i]));
        assert_false(req_state_waiting(term[i]));
        for (int t = 0; t < REQ_STATE_COUNT; t++) assert_false(request_transition_allowed(term[i], (enum req_state)t));
    }
    assert_false(req_state_terminal(REQ_RUNNING));
    assert_true(req_state_open(REQ_RUNNING));
    assert_false(req_state_waiting(REQ_RUNNING));
    assert_true(req_state_waiting(REQ_QUEUED));
    assert_false(req_state_valid(REQ_STATE_NONE));
    assert_true(request_initial_allowed(REQ_PENDING_APPROVAL));
    assert_true(request_initial_allowed(REQ_QUEUED));
    assert_false(request_initial_allowed(REQ_APPROVED));
    assert_false(request_initial_allowed(REQ_RUNNING));
}

static void test_names(void **state) {
    (void)state;
    const char *states[] = {"pending_approval", "approved", "queued",   "running",  "succeeded",
                            "failed",           "rejected", "expired", "cancelled"};
    for (int i = 0; i < 9; i++) {
        enum req_state s;
        assert_true(req_state_parse(states[i], &s));
        assert_int_equal(s, i + 1);
        assert_string_equal(req_state_name(s), states[i]);
    }
    enum req_state s;
    assert_false(req_state_parse("", &s));
    assert_false(req_state_parse(NULL, &s));
    assert_false(req_state_parse("Queued", &s));
    assert_false(req_state_parse("queued ", &s));
    assert_string_equal(req_state_name((enum req_state)99), "?");
    const char *phases[] = {"", "registering", "rolling", "awaiting_promotion", "paused"};
    for (int i = 0; i < 5; i++) {
        enum req_phase p;
        assert_true(req_phase_parse(phases[i], &p));
        assert_int_equal(p, i);
        assert_string_equal(req_phase_name(p), phases[i]);
    }
    enum req_phase p;
    assert_false(req_phase_parse("waiting", &p));
    const char *reasons[] = {"", "unhealthy", "auto_reverted", "deadline", "conflict", "superseded", "timeout",
                             "nomad_error"};
    for (int i = 0; i < 8; i++) {
        enum req_reason r;
        assert_true(req_reason_parse(reasons[i], &r));
        assert_int_equal(r, i);
        assert_string_equal(req_reason_name(r), reasons[i]);
    }
    enum req_reason r;
    assert_false(req_reason_parse("frozen", &r));
    assert_string_equal(req_reason_name((enum req_reason)-1), "?");
}

static void test_phases(void **state) {
    (void)state;
    assert_true(request_phase_transition_allowed(REQ_PHASE_NONE, REQ_PHASE_REGISTERING));
    assert_false(request_phase_transition_allowed(REQ_PHASE_NONE, REQ_PHASE_ROLLING));
    assert_true(request_phase_transition_allowed(REQ_PHASE_REGISTERING, REQ_PHASE_ROLLING));
    assert_false(request_phase_transition_allowed(REQ_PHASE_REGISTERING, REQ_PHASE_PAUSED));
    assert_true(request_phase_transition_allowed(REQ_PHASE_ROLLING, REQ_PHASE_PAUSED));
    assert_true(request_phase_transition_allowed(REQ_PHASE_ROLLING, REQ_PHASE_AWAITING_PROMOTION));
    assert_false(request_phase_transition_allowed(REQ_PHASE_ROLLING, REQ_PHASE_REGISTERING));
    assert_true(request_phase_transition_allowed(REQ_PHASE_AWAITING_PROMOTION, REQ_PHASE_ROLLING));
    assert_true(request_phase_transition_allowed(REQ_PHASE_AWAITING_PROMOTION, REQ_PHASE_PAUSED));
    assert_true(request_phase_transition_allowed(REQ_PHASE_PAUSED, REQ_PHASE_ROLLING));
    assert_true(request_phase_transition_allowed(REQ_PHASE_PAUSED, REQ_PHASE_AWAITING_PROMOTION));
    assert_false(request_phase_transition_allowed(REQ_PHASE_PAUSED, REQ_PHASE_PAUSED));
    assert_false(request_phase_transition_allowed((enum req_phase)9, REQ_PHASE_ROLLING));

    assert_true(request_fields_valid(REQ_RUNNING, REQ_PHASE_ROLLING, REQ_REASON_NONE));
    assert_false(request_fields_valid(REQ_RUNNING, REQ_PHASE_NONE, REQ_REASON_NONE));
    assert_true(request_fields_valid(REQ_FAILED, REQ_PHASE_NONE, REQ_REASON_CONFLICT));
    assert_false(request_fields_valid(REQ_FAILED, REQ_PHASE_NONE, REQ_REASON_NONE));
    assert_false(request_fields_valid(REQ_FAILED, REQ_PHASE_ROLLING, REQ_REASON_TIMEOUT));
    assert_false(request_fields_valid(REQ_QUEUED, REQ_PHASE_ROLLING, REQ_REASON_NONE));
    assert_false(request_fields_valid(REQ_SUCCEEDED, REQ_PHASE_NONE, REQ_REASON_UNHEALTHY));
    assert_true(request_fields_valid(REQ_SUCCEEDED, REQ_PHASE_NONE, REQ_REASON_NONE));
    assert_false(request_fields_valid(REQ_STATE_NONE, REQ_PHASE_NONE, REQ_REASON_NONE));
}

struct step_case {
    enum req_state from;
    enum req_phase from_phase;
    enum req_state to;
    enum req_phase to_phase;
    enum req_reason reason;
    const char *err;   /* NULL = allowed */
};

static const struct step_case steps[] = {
    {REQ_PENDING_APPROVAL, 0, REQ_APPROVED, 0, 0, NULL},
    {REQ_QUEUED, 0, REQ_RUNNING, REQ_PHASE_REGISTERING, 0, NULL},
    {REQ_QUEUED, 0, REQ_RUNNING, REQ_PHASE_ROLLING, 0, "a request starts running in phase registering, not rolling"},
    {REQ_QUEUED, 0, REQ_RUNNING, 0, 0, "state running cannot carry phase '' and reason ''"},
    {REQ_RUNNING, REQ_PHASE_REGISTERING, REQ_RUNNING, REQ_PHASE_ROLLING, 0, NULL},
    {REQ_RUNNING, REQ_PHASE_ROLLING, REQ_RUNNING, REQ_PHASE_REGISTERING, 0, "illegal phase change rolling -> registering"},
    {REQ_RUNNING, REQ_PHASE_REGISTERING, REQ_QUEUED, 0, 0, NULL},
    {REQ_RUNNING, REQ_PHASE_ROLLING, REQ_QUEUED, 0, 0,
     "illegal transition running -> queued: only before the register (phase rolling)"},
    {REQ_RUNNING, REQ_PHASE_ROLLING, REQ_FAILED, 0, REQ_REASON_AUTO_REVERTED, NULL},
    {REQ_RUNNING, REQ_PHASE_ROLLING, REQ_FAILED, 0, 0, "state failed cannot carry phase '' and reason ''"},
    {REQ_RUNNING, REQ_PHASE_PAUSED, REQ_SUCCEEDED, 0, 0, NULL},
    {REQ_SUCCEEDED, 0, REQ_RUNNING, REQ_PHASE_REGISTERING, 0, "illegal transition succeeded -> running: succeeded is terminal"},
    {REQ_CANCELLED, 0, REQ_QUEUED, 0, 0, "illegal transition cancelled -> queued: cancelled is terminal"},
    {REQ_QUEUED, 0, REQ_QUEUED, 0, 0, "illegal transition queued -> queued"},
    {REQ_PENDING_APPROVAL, 0, REQ_QUEUED, 0, 0, "illegal transition pending_approval -> queued"},
    {REQ_APPROVED, 0, REQ_REJECTED, 0, 0, "illegal transition approved -> rejected"},
    {REQ_STATE_NONE, 0, REQ_QUEUED, 0, 0, "unknown request state"},
};

static void test_steps(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        const struct step_case *c = &steps[i];
        char err[160] = "";
        int rc = request_step_check(c->from, c->from_phase, c->to, c->to_phase, c->reason, err, sizeof err);
        if (!c->err) {
            if (rc != 0) fail_msg("case %zu: refused: %s", i, err);
        } else {
            if (rc == 0) fail_msg("case %zu: allowed, expected '%s'", i, c->err);
            assert_string_equal(err, c->err);
        }
    }
    /* err may be NULL. */
    assert_int_equal(request_step_check(REQ_FAILED, 0, REQ_QUEUED, 0, 0, NULL, 0), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_pair), cmocka_unit_test(test_terminal_never_leaves), cmocka_unit_test(test_names),
        cmocka_unit_test(test_phases),     cmocka_unit_test(test_steps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
