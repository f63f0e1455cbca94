/* nomad-sim: the state model (tests/sim/state.c) driven by a fake clock,
 * and the API layer (tests/sim/api.c) on top of it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "api.h"
#include "http.h"
#include "state.h"

#define HEALTH 1000
#define SCHED 50
#define T0 10000

static const char JOBS[] =
    "[{\"ID\":\"web\",\"Name\":\"web\",\"Namespace\":\"staging\",\"Type\":\"service\",\"Priority\":50,"
    "\"Datacenters\":[\"dc1\"],\"Version\":0,\"Stable\":true,\"Status\":\"running\",\"Meta\":null,"
    "\"TaskGroups\":[{\"Name\":\"web\",\"Count\":2,\"Update\":{\"MaxParallel\":1},"
    "\"Tasks\":[{\"Name\":\"web\",\"Driver\":\"docker\",\"Config\":{\"image\":\"registry.example.com/web:v1\"}}]}]},"
    " {\"ID\":\"web\",\"Namespace\":\"default\",\"Type\":\"service\",\"Version\":3,\"Stable\":true,\"Status\":\"running\","
    "\"TaskGroups\":[{\"Name\":\"web\",\"Count\":1,"
    "\"Tasks\":[{\"Name\":\"web\",\"Driver\":\"docker\",\"Config\":{\"image\":\"registry.example.com/web:v1\"}}]}]},"
    " {\"ID\":\"canary\",\"Namespace\":\"staging\",\"Version\":0,\"Stable\":true,\"Status\":\"running\","
    "\"TaskGroups\":[{\"Name\":\"c\",\"Count\":3,\"Update\":{\"MaxParallel\":1,\"Canary\":1,\"AutoRevert\":true},"
    "\"Tasks\":[{\"Name\":\"c\",\"Driver\":\"docker\",\"Config\":{\"image\":\"c:v1\"}}]}]},"
    " {\"ID\":\"nodeploy\",\"Namespace\":\"staging\",\"Version\":0,\"Stable\":true,\"Status\":\"running\","
    "\"TaskGroups\":[{\"Name\":\"n\",\"Count\":1,\"Update\":{\"MaxParallel\":0},"
    "\"Tasks\":[{\"Name\":\"n\",\"Driver\":\"docker\",\"Config\":{\"image\":\"n:v1\"}}]}]}]";

static int setup(void **state) {
    sim_state *st = sim_state_new(HEALTH, SCHED, 0, 42);
    assert_non_null(st);
    char err[512] = "";
    if (sim_state_load(st, JOBS, strlen(JOBS), T0, err, sizeof(err)) != SIM_OK) fail_msg("load: %s", err);
    *state = st;
    return 0;
}

static int teardown(void **state) {
    sim_state_free(*state);
    return 0;
}

static const char *sget(json_object *o, const char *path) {
    json_object *v = NULL;
    if (json_pointer_get(o, path, &v) != 0 || !v) return NULL;
    return json_object_get_string(v);
}

static int64_t iget(json_object *o, const char *path) {
    json_object *v = NULL;
    if (json_pointer_get(o, path, &v) != 0) fail_msg("no %s", path);
    return json_object_get_int64(v);
}

static bool has(json_object *o, const char *path) {
    json_object *v = NULL;
    return json_pointer_get(o, path, &v) == 0;
}

/* The job as GET /v1/job/:id shows it, with its image changed, wrapped in a
 * register body with EnforceIndex. */
static char *register_body(sim_state *st, const char *ns, const char *id, const char *image, bool enforce,
                           int64_t jmi_override) {
    uint64_t idx;
    json_object *job = sim_job_get(st, ns, id, &idx);
    assert_non_null(job);
    json_object *cfg;
    assert_int_equal(json_pointer_get(job, "/TaskGroups/0/Tasks/0/Config", &cfg), 0);
    json_object_object_add(cfg, "image", json_object_new_string(image));
    json_object *body = json_object_new_object();
    int64_t jmi = jmi_override >= 0 ? jmi_override : iget(job, "/JobModifyIndex");
    json_object_object_add(body, "Job", job);
    json_object_object_add(body, "EnforceIndex", json_object_new_boolean(enforce));
    json_object_object_add(body, "JobModifyIndex", json_object_new_int64(jmi));
    char *s = strdup(json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN));
    json_object_put(body);
    return s;
}

static json_object *do_register(sim_state *st, const char *body, const char *qns, int64_t now, int want_rc,
                                char *err, size_t errlen) {
    sim_register_args a = {.path_id = NULL, .q_namespace = qns, .q_region = NULL};
    json_object *resp = NULL;
    uint64_t idx = 0;
    int rc = sim_register(st, body, strlen(body), &a, now, &resp, &idx, err, errlen);
    if (rc != want_rc) fail_msg("register rc %d, want %d: %s", rc, want_rc, rc ? err : "");
    if (rc == SIM_OK) assert_int_equal(idx, (uint64_t)iget(resp, "/Index"));
    return resp;
}

static void test_load(void **state) {
    sim_state *st = *state;
    uint64_t idx;
    json_object *job = sim_job_get(st, "staging", "web", &idx);
    assert_non_null(job);
    assert_int_equal(iget(job, "/Version"), 0);
    assert_true(json_object_get_boolean(json_object_object_get(job, "Stable")));
    assert_string_equal(sget(job, "/Region"), "global");
    assert_int_equal(idx, (uint64_t)iget(job, "/ModifyIndex"));
    /* Canonicalised like Nomad: defaults filled into the group's update block. */
    assert_int_equal(iget(job, "/TaskGroups/0/Update/ProgressDeadline"), 600000000000LL);
    json_object_put(job);
    json_object *other = sim_job_get(st, "default", "web", &idx);
    assert_int_equal(iget(other, "/Version"), 3);
    json_object_put(other);
    assert_null(sim_job_get(st, "prod", "web", &idx));
    /* Previously deployed: a finished deployment exists. */
    json_object *d = sim_job_latest_deployment(st, "staging", "web", &idx);
    assert_non_null(d);
    assert_string_equal(sget(d, "/Status"), "successful");
    assert_int_equal(iget(d, "/TaskGroups/web/HealthyAllocs"), 2);
    json_object_put(d);
    assert_null(sim_job_latest_deployment(st, "staging", "nodeploy", &idx));
    assert_int_equal(sim_state_next_event(st), -1);
    assert_true(sim_namespace_exists(st, "staging") && sim_namespace_exists(st, "default"));
    assert_false(sim_namespace_exists(st, "prod"));
}

static void test_register_rollout(void **state) {
    sim_state *st = *state;
    char err[512];
    uint64_t before = sim_state_index(st), idx;
    char *body = register_body(st, "staging", "web", "registry.example.com/web:v2", true, -1);
    json_object *resp = do_register(st, body, "staging", T0 + 100, SIM_OK, err, sizeof(err));
    free(body);
    assert_true(sim_state_index(st) > before);
    const char *evid = sget(resp, "/EvalID");
    assert_non_null(evid);
    assert_int_equal(iget(resp, "/EvalCreateIndex"), iget(resp, "/JobModifyIndex"));
    assert_string_equal(sget(resp, "/Warnings"), "");
    assert_true(has(resp, "/LastContact") && has(resp, "/KnownLeader"));

    json_object *job = sim_job_get(st, "staging", "web", &idx);
    assert_int_equal(iget(job, "/Version"), 1);
    assert_false(json_object_get_boolean(json_object_object_get(job, "Stable")));
    assert_string_equal(sget(job, "/TaskGroups/0/Tasks/0/Config/image"), "registry.example.com/web:v2");
    assert_int_equal(iget(job, "/JobModifyIndex"), iget(resp, "/JobModifyIndex"));
    json_object_put(job);

    /* Pending until the scheduler delay passes; no DeploymentID key yet (§13). */
    json_object *ev = sim_eval_get(st, evid, &idx);
    assert_string_equal(sget(ev, "/Status"), "pending");
    assert_string_equal(sget(ev, "/TriggeredBy"), "job-register");
    assert_false(has(ev, "/DeploymentID"));
    json_object_put(ev);
    assert_int_equal(sim_state_next_event(st), T0 + 100 + SCHED);

    assert_true(sim_state_advance(st, T0 + 100 + SCHED));
    ev = sim_eval_get(st, evid, &idx);
    assert_string_equal(sget(ev, "/Status"), "complete");
    assert_int_equal(idx, (uint64_t)iget(ev, "/ModifyIndex"));
    char dep_id[64];
    snprintf(dep_id, sizeof(dep_id), "%s", sget(ev, "/DeploymentID"));
    json_object_put(ev);

    json_object *d = sim_deployment_get(st, dep_id, &idx);
    assert_non_null(d);
    assert_string_equal(sget(d, "/Status"), "running");
    assert_string_equal(sget(d, "/StatusDescription"), "Deployment is running");
    assert_int_equal(iget(d, "/JobVersion"), 1);
    assert_int_equal(iget(d, "/TaskGroups/web/DesiredTotal"), 2);
    assert_int_equal(iget(d, "/TaskGroups/web/PlacedAllocs"), 1);   /* MaxParallel 1 */
    assert_int_equal(iget(d, "/TaskGroups/web/HealthyAllocs"), 0);
    uint64_t d_index = idx;
    json_object_put(d);
    /* The job's latest deployment is now this one. */
    d = sim_job_latest_deployment(st, "staging", "web", &idx);
    assert_string_equal(sget(d, "/ID"), dep_id);
    json_object_put(d);

    /* Step through the timeline by next_event only: counts only grow, then
     * success exactly at register + health delay. */
    int64_t last_placed = 1, last_healthy = 0, t;
    int steps = 0;
    while ((t = sim_state_next_event(st)) >= 0) {
        assert_true(t <= T0 + 100 + HEALTH);
        assert_true(sim_state_advance(st, t));
        d = sim_deployment_get(st, dep_id, &idx);
        assert_true(idx >= d_index);
        d_index = idx;
        int64_t p = iget(d, "/TaskGroups/web/PlacedAllocs"), h = iget(d, "/TaskGroups/web/HealthyAllocs");
        assert_true(p >= last_placed && h >= last_healthy && h <= p && p <= 2);
        last_placed = p;
        last_healthy = h;
        if (t < T0 + 100 + HEALTH) assert_string_equal(sget(d, "/Status"), "running");
        json_object_put(d);
        assert_true(++steps < 40);
    }
    d = sim_deployment_get(st, dep_id, &idx);
    assert_string_equal(sget(d, "/Status"), "successful");
    assert_string_equal(sget(d, "/StatusDescription"), "Deployment completed successfully");
    assert_int_equal(iget(d, "/TaskGroups/web/HealthyAllocs"), 2);
    json_object_put(d);
    job = sim_job_get(st, "staging", "web", &idx);
    assert_true(json_object_get_boolean(json_object_object_get(job, "Stable")));
    assert_int_equal(iget(job, "/Version"), 1);
    assert_true(iget(job, "/ModifyIndex") > iget(job, "/JobModifyIndex"));
    json_object_put(job);
    json_object_put(resp);

    /* The other namespace was not touched. */
    job = sim_job_get(st, "default", "web", &idx);
    assert_int_equal(iget(job, "/Version"), 3);
    json_object_put(job);
}

static void test_enforce_index(void **state) {
    sim_state *st = *state;
    char err[512];
    uint64_t idx;
    json_object *job = sim_job_get(st, "staging", "web", &idx);
    int64_t jmi = iget(job, "/JobModifyIndex");
    json_object_put(job);

    char *body = register_body(st, "staging", "web", "x:v2", true, jmi + 7);
    do_register(st, body, "staging", T0, SIM_ERR_SERVER, err, sizeof(err));
    char want[256];
    snprintf(want, sizeof(want),
             "Enforcing job modify index %lld: job exists with conflicting job modify index: %lld",
             (long long)jmi + 7, (long long)jmi);
    assert_string_equal(err, want);
    free(body);

    body = register_body(st, "staging", "web", "x:v2", true, 0);
    do_register(st, body, "staging", T0, SIM_ERR_SERVER, err, sizeof(err));
    assert_string_equal(err, "Enforcing job modify index 0: job already exists");
    free(body);

    /* A new job with a non-zero index. */
    const char *nj = "{\"Job\":{\"ID\":\"fresh\",\"TaskGroups\":[{\"Name\":\"g\",\"Tasks\":[{\"Name\":\"t\","
                     "\"Driver\":\"docker\"}]}]},\"EnforceIndex\":true,\"JobModifyIndex\":12}";
    do_register(st, nj, "staging", T0, SIM_ERR_SERVER, err, sizeof(err));
    assert_string_equal(err, "Enforcing job modify index 12: job does not exist");
    /* Nothing was written by the refusals. */
    job = sim_job_get(st, "staging", "web", &idx);
    assert_int_equal(iget(job, "/Version"), 0);
    json_object_put(job);
    assert_null(sim_job_get(st, "staging", "fresh", &idx));
}

static void test_unchanged_register(void **state) {
    sim_state *st = *state;
    char err[512];
    uint64_t idx;
    json_object *job = sim_job_get(st, "staging", "web", &idx);
    int64_t mi = iget(job, "/ModifyIndex");
    json_object_put(job);
    char *body = register_body(st, "staging", "web", "registry.example.com/web:v1", false, 0);
    json_object *resp = do_register(st, body, "staging", T0, SIM_OK, err, sizeof(err));
    free(body);
    /* §3.2: no new version; JobModifyIndex echoes the job's ModifyIndex; an eval still. */
    assert_int_equal(iget(resp, "/JobModifyIndex"), mi);
    job = sim_job_get(st, "staging", "web", &idx);
    assert_int_equal(iget(job, "/Version"), 0);
    json_object_put(job);
    sim_state_advance(st, T0 + SCHED);
    json_object *ev = sim_eval_get(st, sget(resp, "/EvalID"), &idx);
    assert_string_equal(sget(ev, "/Status"), "complete");
    assert_false(has(ev, "/DeploymentID"));
    json_object_put(ev);
    json_object_put(resp);
    /* A short-form job equal after canonicalisation is unchanged too. */
    const char *short_form = "{\"Job\":{\"ID\":\"nodeploy\",\"Namespace\":\"staging\",\"TaskGroups\":[{\"Name\":\"n\","
                             "\"Update\":{\"MaxParallel\":0},\"Tasks\":[{\"Name\":\"n\",\"Driver\":\"docker\","
                             "\"Config\":{\"image\":\"n:v1\"}}]}]}}";
    resp = do_register(st, short_form, NULL, T0 + 100, SIM_OK, err, sizeof(err));
    job = sim_job_get(st, "staging", "nodeploy", &idx);
    assert_int_equal(iget(job, "/Version"), 0);
    json_object_put(job);
    json_object_put(resp);
}

static void test_superseded(void **state) {
    sim_state *st = *state;
    char err[512];
    uint64_t idx;
    char *body = register_body(st, "staging", "web", "w:v2", false, 0);
    json_object *r1 = do_register(st, body, "staging", T0, SIM_OK, err, sizeof(err));
    free(body);
    sim_state_advance(st, T0 + 200);
    json_object *e1 = sim_eval_get(st, sget(r1, "/EvalID"), &idx);
    char d1[64];
    snprintf(d1, sizeof(d1), "%s", sget(e1, "/DeploymentID"));
    json_object_put(e1);

    body = register_body(st, "staging", "web", "w:v3", false, 0);
    json_object *r2 = do_register(st, body, "staging", T0 + 300, SIM_OK, err, sizeof(err));
    free(body);
    sim_state_advance(st, T0 + 300 + SCHED);
    json_object *d = sim_deployment_get(st, d1, &idx);
    assert_string_equal(sget(d, "/Status"), "cancelled");
    assert_string_equal(sget(d, "/StatusDescription"), "Cancelled due to newer version of job");
    json_object_put(d);
    json_object *e2 = sim_eval_get(st, sget(r2, "/EvalID"), &idx);
    assert_string_not_equal(sget(e2, "/DeploymentID"), d1);
    json_object *d2 = sim_deployment_get(st, sget(e2, "/DeploymentID"), &idx);
    assert_int_equal(iget(d2, "/JobVersion"), 2);
    assert_string_equal(sget(d2, "/Status"), "running");
    json_object_put(d2);
    json_object_put(e2);
    json_object *list = sim_job_deployments(st, "staging", "web", &idx);
    assert_int_equal(json_object_array_length(list), 3);   /* initial, cancelled, running */
    json_object_put(list);
    sim_state_advance(st, T0 + 300 + HEALTH);
    json_object *job = sim_job_get(st, "staging", "web", &idx);
    assert_true(json_object_get_boolean(json_object_object_get(job, "Stable")));
    json_object_put(job);
    json_object_put(r1);
    json_object_put(r2);
}

static void test_register_errors(void **state) {
    sim_state *st = *state;
    char err[1024];
    static const struct {
        const char *body, *qns, *path_id, *region;
        int rc;
        const char *text;
    } cases[] = {
        {"", NULL, NULL, NULL, 400, "Request body is empty"},
        {"{\"Job\":", NULL, NULL, NULL, 400, "unexpected EOF"},
        {"xyz", NULL, NULL, NULL, 400, "invalid character 'x' looking for beginning of value"},
        {"{}", NULL, NULL, NULL, 400, "Job must be specified"},
        {"{\"Job\":{}}", NULL, NULL, NULL, 400, "Job ID hasn't been provided"},
        {"{\"Job\":{\"ID\":\"web\"}}", NULL, "api", NULL, 400, "Job ID does not match name"},
        {"{\"Job\":{\"ID\":\"web\",\"Region\":\"eu\"}}", NULL, NULL, NULL, 500, "No path to region"},
        {"{\"Job\":{\"ID\":\"web\"}}", NULL, NULL, "eu", 500, "No path to region"},
        {"{\"Job\":{\"ID\":\"web\"},\"EvalPriority\":101}", NULL, NULL, NULL, 400,
         "Eval priority must be between 1 and 100 inclusively"},
        {"{\"Job\":{\"ID\":\"web\"}}", NULL, NULL, NULL, 500, "1 error occurred:\n\t* Missing job task groups\n\n"},
        {"{\"Job\":{\"ID\":\"a b\",\"TaskGroups\":[{\"Name\":\"g\",\"Tasks\":[]}]}}", NULL, NULL, NULL, 500,
         "2 errors occurred:\n\t* Job ID contains a space\n\t* Task group g validation failed: "
         "1 error occurred:\n\t* Missing tasks for task group\n\n\n\n"},
        {"{\"Job\":{\"ID\":\"x\",\"TaskGroups\":[{\"Name\":\"g\",\"Tasks\":[{\"Name\":\"t\",\"Driver\":\"docker\"}]}]}}", "prod", NULL, NULL,
         500, "job \"x\" is in nonexistent namespace \"prod\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sim_register_args a = {.path_id = cases[i].path_id, .q_namespace = cases[i].qns, .q_region = cases[i].region};
        json_object *resp = NULL;
        uint64_t idx;
        err[0] = '\0';
        int rc = sim_register(st, cases[i].body, strlen(cases[i].body), &a, T0, &resp, &idx, err, sizeof(err));
        if (rc != cases[i].rc || strcmp(err, cases[i].text) != 0)
            fail_msg("case %zu: rc %d text [%s], want %d [%s]", i, rc, err, cases[i].rc, cases[i].text);
        assert_null(resp);
    }
}

static void test_namespace_precedence(void **state) {
    sim_state *st = *state;
    char err[512];
    uint64_t idx;
    /* ?namespace= beats Job.Namespace (§1.3): lands in default, not staging. */
    char *body = register_body(st, "staging", "web", "w:v9", false, 0);
    json_object *r = do_register(st, body, "default", T0, SIM_OK, err, sizeof(err));
    free(body);
    json_object_put(r);
    json_object *job = sim_job_get(st, "default", "web", &idx);
    assert_string_equal(sget(job, "/TaskGroups/0/Tasks/0/Config/image"), "w:v9");
    assert_string_equal(sget(job, "/Namespace"), "default");
    assert_int_equal(iget(job, "/Version"), 4);
    json_object_put(job);
    job = sim_job_get(st, "staging", "web", &idx);
    assert_int_equal(iget(job, "/Version"), 0);
    json_object_put(job);
    /* Body-level Namespace beats Job.Namespace when there is no query. */
    const char *b2 = "{\"Namespace\":\"staging\",\"Job\":{\"ID\":\"n2\",\"Namespace\":\"default\",\"TaskGroups\":"
                     "[{\"Name\":\"g\",\"Tasks\":[{\"Name\":\"t\",\"Driver\":\"docker\"}]}]}}";
    r = do_register(st, b2, NULL, T0, SIM_OK, err, sizeof(err));
    json_object_put(r);
    assert_null(sim_job_get(st, "default", "n2", &idx));
    job = sim_job_get(st, "staging", "n2", &idx);
    assert_non_null(job);
    assert_string_equal(sget(job, "/Status"), "pending");   /* new job: pending until scheduled */
    json_object_put(job);
    sim_state_advance(st, T0 + SCHED);
    job = sim_job_get(st, "staging", "n2", &idx);
    assert_string_equal(sget(job, "/Status"), "running");
    json_object_put(job);
}

static void test_canary_promote(void **state) {
    sim_state *st = *state;
    char err[512];
    uint64_t idx;
    char *body = register_body(st, "staging", "canary", "c:v2", true, -1);
    json_object *r = do_register(st, body, "staging", T0, SIM_OK, err, sizeof(err));
    free(body);
    sim_state_advance(st, T0 + SCHED);
    json_object *ev = sim_eval_get(st, sget(r, "/EvalID"), &idx);
    char dep[64];
    snprintf(dep, sizeof(dep), "%s", sget(ev, "/DeploymentID"));
    json_object_put(ev);
    json_object_put(r);
    json_object *d = sim_deployment_get(st, dep, &idx);
    assert_string_equal(sget(d, "/StatusDescription"), "Deployment is running but requires manual promotion");
    assert_int_equal(iget(d, "/TaskGroups/c/DesiredCanaries"), 1);
    assert_int_equal(json_object_array_length(json_object_object_get(
                         json_object_object_get(json_object_object_get(d, "TaskGroups"), "c"), "PlacedCanaries")),
                     1);
    json_object_put(d);
    /* Too early: the canary is not healthy yet. */
    json_object *resp;
    assert_int_equal(sim_deployment_promote(st, dep, NULL, 0, T0 + SCHED + 10, &resp, &idx, err, sizeof(err)), 500);
    assert_string_equal(err, "1 error occurred:\n\t* Task group \"c\" has 0/1 healthy allocations\n\n");
    /* It waits for promotion indefinitely. */
    sim_state_advance(st, T0 + 10 * HEALTH);
    d = sim_deployment_get(st, dep, &idx);
    assert_string_equal(sget(d, "/Status"), "running");
    assert_int_equal(iget(d, "/TaskGroups/c/HealthyAllocs"), 1);
    json_object_put(d);
    assert_int_equal(sim_state_next_event(st), -1);
    assert_int_equal(sim_deployment_promote(st, dep, NULL, 0, T0 + 10 * HEALTH, &resp, &idx, err, sizeof(err)), SIM_OK);
    assert_non_null(sget(resp, "/EvalID"));
    json_object_put(resp);
    d = sim_deployment_get(st, dep, &idx);
    assert_string_equal(sget(d, "/StatusDescription"), "Deployment is running");
    assert_true(json_object_get_boolean(json_object_object_get(
        json_object_object_get(json_object_object_get(d, "TaskGroups"), "c"), "Promoted")));
    json_object_put(d);
    sim_state_advance(st, T0 + 20 * HEALTH);
    d = sim_deployment_get(st, dep, &idx);
    assert_string_equal(sget(d, "/Status"), "successful");
    assert_int_equal(iget(d, "/TaskGroups/c/HealthyAllocs"), 3);
    json_object_put(d);
    assert_int_equal(sim_deployment_promote(st, dep, NULL, 0, T0 + 20 * HEALTH, &resp, &idx, err, sizeof(err)), 500);
    assert_string_equal(err, "can't promote terminal deployment");
    assert_int_equal(sim_deployment_promote(st, "nope", NULL, 0, T0, &resp, &idx, err, sizeof(err)), 500);
    assert_string_equal(err, "deployment not found");
}

static void test_fail_auto_revert(void **state) {
    sim_state *st = *state;
    char err[512];
    uint64_t idx;
    char *body = register_body(st, "staging", "canary", "c:bad", true, -1);
    json_object *r = do_register(st, body, "staging", T0, SIM_OK, err, sizeof(err));
    free(body);
    sim_state_advance(st, T0 + SCHED);
    json_object *ev = sim_eval_get(st, sget(r, "/EvalID"), &idx);
    char dep[64];
    snprintf(dep, sizeof(dep), "%s", sget(ev, "/DeploymentID"));
    json_object_put(ev);
    json_object_put(r);
    json_object *resp;
    assert_int_equal(sim_deployment_fail(st, dep, T0 + 100, &resp, &idx, err, sizeof(err)), SIM_OK);
    assert_int_equal(iget(resp, "/RevertedJobVersion"), 0);
    json_object_put(resp);
    json_object *d = sim_deployment_get(st, dep, &idx);
    assert_string_equal(sget(d, "/Status"), "failed");
    assert_string_equal(sget(d, "/StatusDescription"), "Deployment marked as failed - rolling back to job version 0");
    json_object_put(d);
    /* The stable version comes back as a new version, copied as stored (§13). */
    json_object *job = sim_job_get(st, "staging", "canary", &idx);
    assert_int_equal(iget(job, "/Version"), 2);
    assert_string_equal(sget(job, "/TaskGroups/0/Tasks/0/Config/image"), "c:v1");
    json_object_put(job);
    assert_int_equal(sim_deployment_fail(st, dep, T0 + 200, &resp, &idx, err, sizeof(err)), 500);
    assert_string_equal(err, "can't fail terminal deployment");
}

/* ---------- API layer ---------- */

typedef struct api_call {
    sim_http_parser p;
    sim_response r;
    int64_t deadline;
    int rc;
} api_call;

static void call(api_call *c, sim_state *st, const char *raw, int64_t now, int64_t parked_at, bool force) {
    size_t used;
    sim_http_parser_init(&c->p, 0, 0);
    assert_int_equal(sim_http_parse(&c->p, raw, strlen(raw), &used), SIM_HTTP_DONE);
    sim_response_init(&c->r);
    c->rc = sim_api_handle(st, &c->p.req, now, parked_at, force, &c->r, &c->deadline);
}

static void call_free(api_call *c) {
    sim_response_free(&c->r);
    sim_http_parser_free(&c->p);
}

static void expect(sim_state *st, const char *raw, int status, const char *body) {
    api_call c;
    call(&c, st, raw, T0, T0, false);
    assert_int_equal(c.rc, SIM_API_DONE);
    if (c.r.status != status || (body && strcmp(c.r.body.data ? c.r.body.data : "", body) != 0))
        fail_msg("%s-> %d [%s], want %d [%s]", raw, c.r.status, c.r.body.data ? c.r.body.data : "", status,
                 body ? body : "*");
    call_free(&c);
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: x\r\n\r\n"

static void test_api_statuses(void **state) {
    sim_state *st = *state;
    expect(st, GET("/v1/job/nope?namespace=staging"), 404, "job not found");
    expect(st, GET("/v1/job/web?namespace=prod"), 404, "job not found");
    expect(st, GET("/v1/job/nope/deployment?namespace=staging"), 200, "null");
    expect(st, GET("/v1/job/nodeploy/deployment?namespace=staging"), 200, "null");
    expect(st, GET("/v1/job/nope/deployments?namespace=staging"), 200, "[]");
    expect(st, GET("/v1/job/nope/versions?namespace=staging"), 404, "job versions not found");
    expect(st, GET("/v1/deployment/0000?namespace=staging"), 404, "deployment not found");
    expect(st, GET("/v1/evaluation/0000?namespace=staging"), 404, "eval not found");
    expect(st, GET("/v1/status/leader"), 200, "\"127.0.0.1:4647\"");
    expect(st, GET("/v1/nothing/here"), 404, "");
    expect(st, GET("/"), 404, "");
    expect(st, "POST /v1/deployment/abc HTTP/1.1\r\nHost: x\r\n\r\n", 405, "Invalid method");
    expect(st, "DELETE /v1/status/leader HTTP/1.1\r\nHost: x\r\n\r\n", 405, "Invalid method");
    expect(st, "PATCH /v1/job/web HTTP/1.1\r\nHost: x\r\n\r\n", 405, "Invalid method");
    expect(st, GET("/v1/job/web?namespace=staging&index=abc"), 400, "Invalid index");
    expect(st, GET("/v1/job/web?namespace=staging&index=-1"), 400, "Invalid index");
    expect(st, GET("/v1/job/web?namespace=staging&index=18446744073709551616"), 400, "Invalid index");
    expect(st, GET("/v1/job/web?namespace=staging&index=1&wait=5"), 400, "Invalid wait time");
    expect(st, GET("/v1/job/web?namespace=staging&wait=xs"), 400, "Invalid wait time");
    expect(st, GET("/v1/job/web?namespace=staging&stale=maybe"), 400,
           "Expect `true` or `false` for `stale` query string parameter");
    expect(st, GET("/v1/job/web?namespace=staging&region=eu"), 500, "No path to region");
    expect(st, GET("/v1/job/web?namespace=staging&region=global&stale"), 200, NULL);
    expect(st, GET("/v1/job/web%2Fdeployment?namespace=staging"), 200, NULL);   /* decoded, then routed */
    expect(st, GET("/v1/job/w%zz"), 400, NULL);
    expect(st, "PUT /v1/jobs HTTP/1.1\r\nHost: x\r\n\r\n", 400, "Request body is empty");
    expect(st, "PUT /v1/job/api?namespace=staging HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n{\"Job\":{\"ID\":\"web\"}}",
           400, "Job ID does not match name");

    /* Headers: JSON with the index; leader without it (§13). */
    api_call c;
    call(&c, st, GET("/v1/job/web?namespace=staging"), T0, T0, false);
    assert_int_equal(c.r.status, 200);
    assert_string_equal(c.r.content_type, "application/json");
    assert_true(c.r.has_index);
    json_object *job = json_tokener_parse(c.r.body.data);
    assert_int_equal(c.r.index, (uint64_t)iget(job, "/ModifyIndex"));
    json_object_put(job);
    call_free(&c);
    call(&c, st, GET("/v1/status/leader"), T0, T0, false);
    assert_false(c.r.has_index);
    call_free(&c);
    call(&c, st, GET("/v1/job/nope?namespace=staging"), T0, T0, false);
    assert_string_equal(c.r.content_type, "text/plain; charset=utf-8");
    call_free(&c);
}

static void test_api_blocking(void **state) {
    sim_state *st = *state;
    uint64_t idx;
    json_object *job = sim_job_get(st, "staging", "web", &idx);
    json_object_put(job);
    char raw[256];
    snprintf(raw, sizeof(raw), GET("/v1/job/web?namespace=staging&index=%llu&wait=2s"), (unsigned long long)idx);
    api_call c;
    /* Index not passed: park until parked_at + wait. */
    call(&c, st, raw, T0, T0, false);
    assert_int_equal(c.rc, SIM_API_PARK);
    assert_int_equal(c.deadline, T0 + 2000);
    call_free(&c);
    /* The wait ran out: answer with what there is, same index. */
    call(&c, st, raw, T0 + 2000, T0, true);
    assert_int_equal(c.rc, SIM_API_DONE);
    assert_int_equal(c.r.status, 200);
    assert_int_equal(c.r.index, idx);
    call_free(&c);
    /* An older index answers at once. */
    snprintf(raw, sizeof(raw), GET("/v1/job/web?namespace=staging&index=%llu&wait=2s"), (unsigned long long)idx - 1);
    call(&c, st, raw, T0, T0, false);
    assert_int_equal(c.rc, SIM_API_DONE);
    call_free(&c);
    /* Wait is capped at 300 s; absent/zero wait means 5 min. */
    call(&c, st, GET("/v1/job/web?namespace=staging&index=999999&wait=1h"), T0, T0, false);
    assert_int_equal(c.rc, SIM_API_PARK);
    assert_int_equal(c.deadline, T0 + 300000);
    call_free(&c);
    call(&c, st, GET("/v1/deployment/none?index=999999"), T0, T0, false);
    assert_int_equal(c.rc, SIM_API_PARK);
    assert_int_equal(c.deadline, T0 + 300000);
    call_free(&c);
    /* A register moves the index: the parked query is satisfied. */
    snprintf(raw, sizeof(raw), GET("/v1/job/web?namespace=staging&index=%llu&wait=2s"), (unsigned long long)idx);
    char *body = register_body(st, "staging", "web", "w:v2", false, 0);
    char err[256];
    json_object_put(do_register(st, body, "staging", T0 + 10, SIM_OK, err, sizeof(err)));
    free(body);
    call(&c, st, raw, T0 + 10, T0, false);
    assert_int_equal(c.rc, SIM_API_DONE);
    assert_true(c.r.index > idx);
    call_free(&c);
}

static void test_duration(void **state) {
    (void)state;
    static const struct {
        const char *in;
        int rc;
        int64_t ms;
    } cases[] = {
        {"5s", 0, 5000},      {"300000ms", 0, 300000}, {"1m30s", 0, 90000}, {"1.5s", 0, 1500},
        {"0", 0, 0},          {"2h", 0, 7200000},      {"10us", 0, 0},      {"-1s", 0, -1000},
        {"", -1, 0},          {"5", -1, 0},            {"s", -1, 0},        {"5x", -1, 0},
        {"1.s", 0, 1000},     {".5s", 0, 500},         {".s", -1, 0},       {"9999999999h", -1, 0},
        {"1\xc2\xb5s", 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = 0;
        int rc = sim_parse_duration_ms(cases[i].in, &ms);
        if (rc != cases[i].rc || (rc == 0 && ms != cases[i].ms))
            fail_msg("%s: rc %d ms %lld", cases[i].in, rc, (long long)ms);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_rollout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enforce_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unchanged_register, setup, teardown),
        cmocka_unit_test_setup_teardown(test_superseded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_namespace_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_canary_promote, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_auto_revert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_statuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_blocking, setup, teardown),
        cmocka_unit_test(test_duration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
