/* The governance state machine under random operations: seeded and
 * deterministic, 10 seeds x 30,000 steps (300,000 in all). The driver and its
 * invariants are in governance_driver.h; a broken invariant aborts with the
 * step, the policy variant, the clock and the request. Needs tzdata. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "governance_driver.h"

#define SEEDS 10
#define STEPS_PER_SEED 30000

static void test_random(void **state) {
    (void)state;
    unsigned long steps = 0, created = 0, approvals = 0, queued = 0, ran = 0, glass = 0, refusals = 0, expired = 0,
                  voided = 0, deferred = 0;
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        static gd_world w;
        assert_int_equal(gd_init(&w, NULL, 0, seed * 0x2545f4914f6cdd1dull), 0);
        for (int i = 0; i < STEPS_PER_SEED; i++) assert_true(gd_step(&w));
        steps += w.steps;
        created += w.created;
        approvals += w.approvals;
        queued += w.queued;
        ran += w.ran;
        glass += w.break_glass;
        refusals += w.refusals;
        expired += w.expired;
        voided += w.voided;
        deferred += w.deferred;
        gd_free(&w);
    }
    printf("random governance: %lu steps, %lu requests, %lu approvals counted, %lu queued, %lu registered, "
           "%lu break-glass runs, %lu expired, %lu approval sets voided, %lu deferred by freezes, %lu refusals\n",
           steps, created, approvals, queued, ran, glass, expired, voided, deferred, refusals);
    assert_true(steps >= 100000);
    /* The walk must reach the interesting places, or it proves little. */
    assert_true(queued > 1000);   /* approved -> queued; staging requests start queued */
    assert_true(ran > 500);
    assert_true(glass > 0);
    assert_true(expired > 0);
    assert_true(voided > 0);
    assert_true(deferred > 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_random)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
