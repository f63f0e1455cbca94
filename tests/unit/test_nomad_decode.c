/* nomad/: the pure parts — strict JSON, decoders for job / register /
 * evaluation / deployment answers, terminal states and job patching. The
 * sample bodies follow shared/reference/nomad-api.md (§2, §3.2, §4, §6). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "nomad.h"

/* §2, the job as read back. */
static const char JOB_JSON[] =
    "{\"ID\":\"web\",\"Name\":\"web\",\"Type\":\"service\",\"Namespace\":\"prod\",\"Region\":\"global\","
    "\"Datacenters\":[\"dc1\"],\"Priority\":50,\"Meta\":{\"nomatron.request\":\"r-42\"},"
    "\"Update\":{\"MaxParallel\":1,\"Stagger\":30000000000},"
    "\"TaskGroups\":[{\"Name\":\"web\",\"Count\":3,"
    "\"Update\":{\"MaxParallel\":1,\"HealthCheck\":\"checks\",\"MinHealthyTime\":10000000000,"
    "\"HealthyDeadline\":300000000000,\"ProgressDeadline\":600000000000,"
    "\"AutoRevert\":true,\"AutoPromote\":false,\"Canary\":1,\"Stagger\":30000000000},"
    "\"Tasks\":[{\"Name\":\"app\",\"Driver\":\"docker\","
    "\"Config\":{\"image\":\"registry.example/web:1.4.2\",\"ports\":[\"http\"]},"
    "\"Resources\":{\"CPU\":100,\"MemoryMB\":128}}]}],"
    "\"Stop\":false,\"Status\":\"running\",\"StatusDescription\":\"\",\"Stable\":true,"
    "\"Version\":4,\"SubmitTime\":1767225600000000000,"
    "\"CreateIndex\":10,\"ModifyIndex\":88,\"JobModifyIndex\":85}";

/* §3.2 register response. */
static const char REGISTER_JSON[] =
    "{\"EvalID\":\"5f6c1d2e-8f4b-4c3a-9e2d-7a6b5c4d3e2f\",\"EvalCreateIndex\":90,\"JobModifyIndex\":90,"
    "\"Warnings\":\"\",\"Index\":90,\"LastContact\":0,\"KnownLeader\":false,\"NextToken\":\"\"}";

/* §4 deployment. */
static const char DEPLOYMENT_JSON[] =
    "{\"ID\":\"1f18b48c-b33b-8e96-5640-71e3f3000242\",\"Namespace\":\"prod\",\"JobID\":\"web\","
    "\"JobVersion\":5,\"JobModifyIndex\":120,\"JobSpecModifyIndex\":118,\"JobCreateIndex\":10,"
    "\"IsMultiregion\":false,\"EvalPriority\":50,\"Status\":\"running\","
    "\"StatusDescription\":\"Deployment is running but requires manual promotion\","
    "\"TaskGroups\":{\"web\":{\"AutoRevert\":true,\"AutoPromote\":false,\"ProgressDeadline\":600000000000,"
    "\"RequireProgressBy\":\"2026-08-01T10:20:30.123Z\",\"Promoted\":false,"
    "\"PlacedCanaries\":[\"0b6d5e4f-1a2b-3c4d-5e6f-7a8b9c0d1e2f\"],\"DesiredCanaries\":1,\"DesiredTotal\":3,"
    "\"PlacedAllocs\":1,\"HealthyAllocs\":1,\"UnhealthyAllocs\":0}},"
    "\"CreateIndex\":121,\"ModifyIndex\":130,\"CreateTime\":1767225600000000000,"
    "\"ModifyTime\":1767225660000000000}";

/* §6 evaluation, finished, with a deployment and a placement failure. */
static const char EVAL_JSON[] =
    "{\"ID\":\"5f6c1d2e-8f4b-4c3a-9e2d-7a6b5c4d3e2f\",\"Namespace\":\"prod\",\"Priority\":50,"
    "\"Type\":\"service\",\"TriggeredBy\":\"job-register\",\"JobID\":\"web\",\"JobModifyIndex\":90,"
    "\"NodeID\":\"\",\"NodeModifyIndex\":0,\"DeploymentID\":\"1f18b48c-b33b-8e96-5640-71e3f3000242\","
    "\"Status\":\"complete\",\"StatusDescription\":\"\",\"Wait\":0,\"NextEval\":\"\",\"PreviousEval\":\"\","
    "\"BlockedEval\":\"a1b2c3d4-0000-1111-2222-333344445555\","
    "\"FailedTGAllocs\":{\"web\":{\"NodesEvaluated\":2,\"NodesFiltered\":0,\"NodesAvailable\":{\"dc1\":2},"
    "\"DimensionExhausted\":{\"cpu\":1},\"CoalescedFailures\":1}},"
    "\"ClassEligibility\":null,\"EscapedComputedClass\":false,\"AnnotatePlan\":false,"
    "\"QueuedAllocations\":{\"web\":1},\"SnapshotIndex\":91,\"CreateIndex\":91,\"ModifyIndex\":95,"
    "\"CreateTime\":1767225600000000000,\"ModifyTime\":1767225601000000000}";

/* §13: a pending evaluation omits DeploymentID entirely. */
static const char EVAL_PENDING_JSON[] =
    "{\"ID\":\"5f6c1d2e-8f4b-4c3a-9e2d-7a6b5c4d3e2f\",\"Namespace\":\"prod\",\"Priority\":50,"
    "\"Type\":\"service\",\"TriggeredBy\":\"job-register\",\"JobID\":\"web\",\"Status\":\"pending\","
    "\"FailedTGAllocs\":null,\"CreateIndex\":91,\"ModifyIndex\":91}";

static char *replace(const char *text, const char *from, const char *to) {
    const char *p = strstr(text, from);
    assert_non_null(p);
    size_t n = strlen(text) - strlen(from) + strlen(to) + 1;
    char *out = malloc(n);
    assert_non_null(out);
    snprintf(out, n, "%.*s%s%s", (int)(p - text), text, to, p + strlen(from));
    return out;
}

static json_object *parse_ok(const char *text) {
    char err[256] = "";
    bool is_null = true;
    json_object *o = nomad_json_parse(text, strlen(text), &is_null, err, sizeof(err));
    if (!o) fail_msg("parse of %s failed: %s", text, err);
    assert_false(is_null);
    return o;
}

/* ---- strict JSON ---- */

static void test_json_parse_accepts(void **state) {
    (void)state;
    json_object *o = parse_ok(JOB_JSON);
    assert_true(json_object_is_type(o, json_type_object));
    json_object_put(o);

    o = parse_ok("  {\"a\": [1, 2]}\r\n\t ");   /* trailing whitespace is fine */
    json_object_put(o);
    o = parse_ok("42");                          /* bare scalars are whole values too */
    assert_int_equal(json_object_get_int64(o), 42);
    json_object_put(o);
    o = parse_ok("\"10.0.0.5:4647\"");
    assert_string_equal(json_object_get_string(o), "10.0.0.5:4647");
    json_object_put(o);
    o = parse_ok("[18446744073709551615, -9223372036854775808]");
    assert_true(json_object_get_uint64(json_object_array_get_idx(o, 0)) == UINT64_MAX);
    assert_true(json_object_get_int64(json_object_array_get_idx(o, 1)) == INT64_MIN);
    json_object_put(o);
}

static void test_json_parse_null(void **state) {
    (void)state;
    char err[128];
    bool is_null = false;
    assert_null(nomad_json_parse("null", 4, &is_null, err, sizeof(err)));
    assert_true(is_null);
    is_null = false;
    assert_null(nomad_json_parse(" null\n", 6, &is_null, err, sizeof(err)));
    assert_true(is_null);
    /* is_null may be NULL */
    assert_null(nomad_json_parse("null", 4, NULL, err, sizeof(err)));
}

static void test_json_parse_rejects(void **state) {
    (void)state;
    static const struct {
        const char *in;
        const char *want;   /* substring of the error */
    } cases[] = {
        {"{\"ID\":\"web\"} x", "byte 13"},
        {"{\"ID\":\"web\"}{}", ""},
        {"[1] [2]", ""},
        {"1 2", ""},
        {"", "empty"},
        {"   ", "invalid JSON"},
        {"{\"ID\":", "invalid JSON"},
        {"{\"a\":1,}", "invalid JSON"},
        {"nul", "unexpected word"},
        {"[NaN]", "unexpected word"},
        {"[Infinity]", "unexpected word"},
        {"[-Infinity]", "malformed number"},
        {"{\"Index\":18446744073709551616}", "out of 64-bit range"},
        {"{\"Index\":99999999999999999999999}", "out of 64-bit range"},
        {"{\"Index\":-9223372036854775809}", "out of 64-bit range"},
        {"{'a':1}", ""},
        {"[01]", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256] = "";
        bool is_null = false;
        json_object *o = nomad_json_parse(cases[i].in, strlen(cases[i].in), &is_null, err, sizeof(err));
        if (o) fail_msg("accepted %s", cases[i].in);
        assert_false(is_null);
        assert_true(err[0] != '\0');
        if (!strstr(err, cases[i].want)) fail_msg("%s: error \"%s\" lacks \"%s\"", cases[i].in, err, cases[i].want);
    }
    /* An embedded NUL byte, and bytes past the given length are not read. */
    char err[128];
    assert_null(nomad_json_parse("{\"a\":1}\0{}", 10, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "NUL"));
    json_object *o = nomad_json_parse("{\"a\":1}garbage", 7, NULL, err, sizeof(err));
    assert_non_null(o);
    json_object_put(o);
}

/* ---- job info ---- */

static void test_decode_job_info(void **state) {
    (void)state;
    json_object *job = parse_ok(JOB_JSON);
    nomad_job_info info;
    char err[256];
    assert_int_equal(nomad_decode_job_info(job, &info, err, sizeof(err)), NOMAD_OK);
    assert_string_equal(info.id, "web");
    assert_string_equal(info.ns, "prod");
    assert_string_equal(info.status, "running");
    assert_true(info.version == 4);
    assert_true(info.job_modify_index == 85);
    assert_true(info.modify_index == 88);
    assert_true(info.create_index == 10);
    assert_true(info.stable);
    assert_false(info.stop);
    json_object_put(job);
}

static void expect_job_error(const char *from, const char *to, const char *want) {
    char *text = replace(JOB_JSON, from, to);
    char err[256] = "";
    nomad_job_info info;
    json_object *job = nomad_json_parse(text, strlen(text), NULL, err, sizeof(err));
    int rc = job ? nomad_decode_job_info(job, &info, err, sizeof(err)) : NOMAD_ERR_DECODE;
    if (rc != NOMAD_ERR_DECODE) fail_msg("accepted a job with %s", to);
    if (!strstr(err, want)) fail_msg("with %s: error \"%s\" lacks \"%s\"", to, err, want);
    if (job) {
        /* Nothing half-decoded is left behind. */
        assert_string_equal(info.id, "");
        assert_true(info.job_modify_index == 0);
    }
    json_object_put(job);
    free(text);
}

static void test_decode_job_info_strict(void **state) {
    (void)state;
    expect_job_error("\"ID\":\"web\",", "", "missing field ID");
    expect_job_error("\"JobModifyIndex\":85", "\"X\":85", "missing field JobModifyIndex");
    expect_job_error("\"JobModifyIndex\":85", "\"JobModifyIndex\":-1", "JobModifyIndex: negative");
    expect_job_error("\"JobModifyIndex\":85", "\"JobModifyIndex\":\"85\"", "JobModifyIndex: expected an unsigned integer");
    expect_job_error("\"JobModifyIndex\":85", "\"JobModifyIndex\":85.0", "JobModifyIndex: expected an unsigned integer");
    expect_job_error("\"JobModifyIndex\":85", "\"JobModifyIndex\":null", "missing field JobModifyIndex");
    expect_job_error("\"Version\":4", "\"Version\":18446744073709551616", "out of 64-bit range");
    expect_job_error("\"Version\":4", "\"Version\":true", "Version: expected an unsigned integer");
    expect_job_error("\"Stable\":true", "\"Stable\":\"true\"", "Stable: expected a boolean");
    expect_job_error("\"ID\":\"web\"", "\"ID\":42", "ID: expected a string");
    expect_job_error("\"ID\":\"web\"", "\"ID\":\"\"", "ID: empty");
    expect_job_error("\"ID\":\"web\"", "\"ID\":\"a\\u0000b\"", "NUL");
    expect_job_error("\"ID\":\"web\"",
                     "\"ID\":\"x123456789x123456789x123456789x123456789x123456789x123456789abcd\"",
                     "ID: 64 bytes, longer than 63");
    expect_job_error("\"Status\":\"running\"", "\"Status\":\"running-but-much-too-long\"", "Status:");
    expect_job_error("\"CreateIndex\":10", "\"CreateIndex\":10}garbage", "unexpected word");

    /* Not an object at all. */
    char err[128];
    nomad_job_info info;
    json_object *arr = parse_ok("[]");
    assert_int_equal(nomad_decode_job_info(arr, &info, err, sizeof(err)), NOMAD_ERR_DECODE);
    assert_non_null(strstr(err, "expected a job object, got array"));
    json_object_put(arr);
    assert_int_equal(nomad_decode_job_info(NULL, &info, err, sizeof(err)), NOMAD_ERR_DECODE);
}

static void test_decode_job_info_limits(void **state) {
    (void)state;
    /* The largest index there is, and one past INT64_MAX, come through exactly. */
    char *a = replace(JOB_JSON, "\"JobModifyIndex\":85", "\"JobModifyIndex\":18446744073709551615");
    char *b = replace(a, "\"ModifyIndex\":88", "\"ModifyIndex\":9223372036854775808");
    char *c = replace(b, "\"ID\":\"web\"", "\"ID\":\"x123456789x123456789x123456789x123456789x123456789x123456789abc\"");
    json_object *job = parse_ok(c);
    nomad_job_info info;
    char err[256];
    assert_int_equal(nomad_decode_job_info(job, &info, err, sizeof(err)), NOMAD_OK);
    assert_true(info.job_modify_index == UINT64_MAX);
    assert_true(info.modify_index == 9223372036854775808ULL);
    assert_int_equal(strlen(info.id), 63);
    json_object_put(job);
    free(a);
    free(b);
    free(c);

    /* Optional fields may be missing or null. */
    job = parse_ok("{\"ID\":\"w\",\"Version\":0,\"JobModifyIndex\":1,\"ModifyIndex\":2,\"CreateIndex\":1,"
                   "\"Stable\":null,\"Namespace\":null}");
    assert_int_equal(nomad_decode_job_info(job, &info, err, sizeof(err)), NOMAD_OK);
    assert_false(info.stable);
    assert_false(info.stop);
    assert_string_equal(info.ns, "");
    assert_string_equal(info.status, "");
    json_object_put(job);
}

/* ---- register ---- */

static void test_decode_register(void **state) {
    (void)state;
    nomad_register_result r;
    char err[256];
    assert_int_equal(nomad_decode_register(REGISTER_JSON, strlen(REGISTER_JSON), &r, err, sizeof(err)), NOMAD_OK);
    assert_string_equal(r.eval_id, "5f6c1d2e-8f4b-4c3a-9e2d-7a6b5c4d3e2f");
    assert_true(r.job_modify_index == 90);
    assert_true(r.index == 90);
    assert_string_equal(r.warnings, "");

    /* Periodic job: no eval. Warnings kept, multi-line. */
    const char *periodic = "{\"EvalID\":\"\",\"EvalCreateIndex\":0,\"JobModifyIndex\":91,"
                           "\"Warnings\":\"1 warning:\\n\\n* Group \\\"web\\\" has warnings\",\"Index\":91}";
    assert_int_equal(nomad_decode_register(periodic, strlen(periodic), &r, err, sizeof(err)), NOMAD_OK);
    assert_string_equal(r.eval_id, "");
    assert_string_equal(r.warnings, "1 warning:\n\n* Group \"web\" has warnings");

    /* Overlong warnings are shortened visibly, not refused. */
    char big[2048];
    int n = snprintf(big, sizeof(big), "{\"EvalID\":\"e\",\"JobModifyIndex\":1,\"Warnings\":\"");
    memset(big + n, 'w', 1000);
    snprintf(big + n + 1000, sizeof(big) - (size_t)n - 1000, "\"}");
    assert_int_equal(nomad_decode_register(big, strlen(big), &r, err, sizeof(err)), NOMAD_OK);
    assert_int_equal(strlen(r.warnings), sizeof(r.warnings) - 1);
    assert_string_equal(r.warnings + sizeof(r.warnings) - 4, "...");

    const char *no_jmi = "{\"EvalID\":\"e\",\"Index\":3}";
    assert_int_equal(nomad_decode_register(no_jmi, strlen(no_jmi), &r, err, sizeof(err)), NOMAD_ERR_DECODE);
    assert_non_null(strstr(err, "missing field JobModifyIndex"));
    assert_string_equal(r.eval_id, "");

    const char *neg = "{\"EvalID\":\"e\",\"JobModifyIndex\":1,\"Index\":-3}";
    assert_int_equal(nomad_decode_register(neg, strlen(neg), &r, err, sizeof(err)), NOMAD_ERR_DECODE);
    assert_non_null(strstr(err, "Index: negative"));

    const char *nul = "null";
    assert_int_equal(nomad_decode_register(nul, strlen(nul), &r, err, sizeof(err)), NOMAD_ERR_DECODE);
}

/* ---- evaluation ---- */

static void test_decode_eval(void **state) {
    (void)state;
    nomad_eval e;
    char err[256];
    assert_int_equal(nomad_decode_eval(EVAL_JSON, strlen(EVAL_JSON), &e, err, sizeof(err)), NOMAD_OK);
    assert_string_equal(e.id, "5f6c1d2e-8f4b-4c3a-9e2d-7a6b5c4d3e2f");
    assert_string_equal(e.status, "complete");
    assert_string_equal(e.deployment_id, "1f18b48c-b33b-8e96-5640-71e3f3000242");
    assert_string_equal(e.blocked_eval, "a1b2c3d4-0000-1111-2222-333344445555");
    assert_true(e.failed_tg_allocs);
    assert_true(e.modify_index == 95);
    assert_true(nomad_eval_terminal(&e));

    assert_int_equal(nomad_decode_eval(EVAL_PENDING_JSON, strlen(EVAL_PENDING_JSON), &e, err, sizeof(err)),
                     NOMAD_OK);
    assert_string_equal(e.status, "pending");
    assert_string_equal(e.deployment_id, "");
    assert_string_equal(e.blocked_eval, "");
    assert_false(e.failed_tg_allocs);
    assert_false(nomad_eval_terminal(&e));

    const char *empty_failed = "{\"ID\":\"e1\",\"Status\":\"complete\",\"FailedTGAllocs\":{},\"ModifyIndex\":3}";
    assert_int_equal(nomad_decode_eval(empty_failed, strlen(empty_failed), &e, err, sizeof(err)), NOMAD_OK);
    assert_false(e.failed_tg_allocs);

    static const struct {
        const char *from, *to, *want;
    } bad[] = {
        {"\"FailedTGAllocs\":null", "\"FailedTGAllocs\":[]", "FailedTGAllocs: expected an object"},
        {"\"Status\":\"pending\"", "\"Status\":1", "Status: expected a string"},
        {"\"Status\":\"pending\",", "", "missing field Status"},
        {"\"ModifyIndex\":91", "\"ModifyIndex\":-91", "ModifyIndex: negative"},
        {"\"ModifyIndex\":91", "\"ModifyIndex\":\"91\"", "ModifyIndex: expected an unsigned integer"},
        {"\"CreateIndex\":91,\"ModifyIndex\":91", "\"CreateIndex\":91", "missing field ModifyIndex"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *text = replace(EVAL_PENDING_JSON, bad[i].from, bad[i].to);
        assert_int_equal(nomad_decode_eval(text, strlen(text), &e, err, sizeof(err)), NOMAD_ERR_DECODE);
        if (!strstr(err, bad[i].want)) fail_msg("error \"%s\" lacks \"%s\"", err, bad[i].want);
        free(text);
    }

    static const struct {
        const char *status;
        bool terminal;
    } st[] = {{"pending", false}, {"blocked", false}, {"complete", true}, {"failed", true},
              {"canceled", true}, {"cancelled", false}, {"", false}};
    for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
        memset(&e, 0, sizeof(e));
        snprintf(e.status, sizeof(e.status), "%s", st[i].status);
        assert_int_equal(nomad_eval_terminal(&e), st[i].terminal);
    }
}

/* ---- deployment ---- */

static void test_decode_deployment(void **state) {
    (void)state;
    nomad_deployment d;
    char err[256];
    assert_int_equal(nomad_decode_deployment(DEPLOYMENT_JSON, strlen(DEPLOYMENT_JSON), &d, err, sizeof(err)),
                     NOMAD_OK);
    assert_string_equal(d.id, "1f18b48c-b33b-8e96-5640-71e3f3000242");
    assert_string_equal(d.job_id, "web");
    assert_true(d.job_version == 5);
    assert_true(d.job_create_index == 10);
    assert_string_equal(d.status, "running");
    assert_string_equal(d.status_description, "Deployment is running but requires manual promotion");
    assert_true(d.create_index == 121);
    assert_true(d.modify_index == 130);
    assert_int_equal(d.n_groups, 1);
    const nomad_deployment_group *g = &d.groups[0];
    assert_string_equal(g->name, "web");
    assert_false(g->promoted);
    assert_true(g->auto_revert);
    assert_false(g->auto_promote);
    assert_int_equal(g->desired_canaries, 1);
    assert_int_equal(g->desired_total, 3);
    assert_int_equal(g->placed_allocs, 1);
    assert_int_equal(g->healthy_allocs, 1);
    assert_int_equal(g->unhealthy_allocs, 0);
    assert_int_equal(g->placed_canaries, 1);
    assert_false(nomad_deployment_terminal(&d));

    /* The object form gives the same result. */
    json_object *o = parse_ok(DEPLOYMENT_JSON);
    nomad_deployment d2;
    assert_int_equal(nomad_decode_deployment_obj(o, &d2, err, sizeof(err)), NOMAD_OK);
    assert_memory_equal(&d, &d2, sizeof(d));
    json_object_put(o);

    /* Two groups, PlacedCanaries null, terminal status. */
    const char *two = "{\"ID\":\"d2\",\"JobID\":\"web\",\"JobVersion\":6,\"Status\":\"successful\","
                      "\"StatusDescription\":\"Deployment completed successfully\",\"TaskGroups\":{"
                      "\"web\":{\"Promoted\":true,\"PlacedCanaries\":null,\"DesiredTotal\":3,\"HealthyAllocs\":3},"
                      "\"api\":{\"DesiredTotal\":2,\"HealthyAllocs\":2,\"PlacedAllocs\":2}},"
                      "\"CreateIndex\":140,\"ModifyIndex\":150}";
    assert_int_equal(nomad_decode_deployment(two, strlen(two), &d, err, sizeof(err)), NOMAD_OK);
    assert_int_equal(d.n_groups, 2);
    assert_true(d.job_create_index == 0);
    int64_t healthy = 0;
    for (size_t i = 0; i < d.n_groups; i++) healthy += d.groups[i].healthy_allocs;
    assert_int_equal(healthy, 5);
    assert_true(nomad_deployment_terminal(&d));

    const char *nogroups = "{\"ID\":\"d3\",\"JobID\":\"web\",\"JobVersion\":0,\"Status\":\"cancelled\","
                           "\"TaskGroups\":null,\"CreateIndex\":1,\"ModifyIndex\":2}";
    assert_int_equal(nomad_decode_deployment(nogroups, strlen(nogroups), &d, err, sizeof(err)), NOMAD_OK);
    assert_int_equal(d.n_groups, 0);
    assert_true(nomad_deployment_terminal(&d));

    static const struct {
        const char *status;
        bool terminal;
    } st[] = {{"running", false},   {"paused", false},   {"failed", true},      {"successful", true},
              {"cancelled", true},  {"canceled", false}, {"initializing", false}, {"pending", false},
              {"blocked", false},   {"unblocking", false}};
    for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
        memset(&d, 0, sizeof(d));
        snprintf(d.status, sizeof(d.status), "%s", st[i].status);
        assert_int_equal(nomad_deployment_terminal(&d), st[i].terminal);
    }
}

static void test_decode_deployment_strict(void **state) {
    (void)state;
    static const struct {
        const char *from, *to, *want;
    } bad[] = {
        {"\"HealthyAllocs\":1", "\"HealthyAllocs\":\"1\"", "TaskGroups.web.HealthyAllocs: expected an unsigned"},
        {"\"HealthyAllocs\":1", "\"HealthyAllocs\":-1", "TaskGroups.web.HealthyAllocs: negative"},
        {"\"DesiredTotal\":3", "\"DesiredTotal\":9223372036854775808", "TaskGroups.web.DesiredTotal: value out of range"},
        {"\"Promoted\":false", "\"Promoted\":0", "TaskGroups.web.Promoted: expected a boolean"},
        {"\"PlacedCanaries\":[\"0b6d5e4f-1a2b-3c4d-5e6f-7a8b9c0d1e2f\"]", "\"PlacedCanaries\":{}",
         "PlacedCanaries: expected an array"},
        {"\"PlacedCanaries\":[\"0b6d5e4f-1a2b-3c4d-5e6f-7a8b9c0d1e2f\"]", "\"PlacedCanaries\":[1]",
         "PlacedCanaries[0]: expected a string"},
        {"\"TaskGroups\":{\"web\":{", "\"TaskGroups\":{\"web\":7,\"x\":{", "TaskGroups.web: expected an object"},
        {"\"TaskGroups\":{\"web\":{", "\"TaskGroups\":[{", "invalid JSON"},
        {"\"ID\":\"1f18b48c-b33b-8e96-5640-71e3f3000242\",", "", "missing field ID"},
        {"\"JobVersion\":5", "\"JobVersion\":5.5", "JobVersion: expected an unsigned integer"},
        {"\"JobVersion\":5", "\"JobVersion\":18446744073709551616", "out of 64-bit range"},
        {"\"Status\":\"running\"", "\"Status\":\"running-for-a-long-time\"", "Status: 23 bytes, longer than 15"},
        {"\"ModifyIndex\":130,", "", "missing field ModifyIndex"},
        {"\"ModifyTime\":1767225660000000000}", "\"ModifyTime\":1767225660000000000}]", "unexpected character"},
    };
    nomad_deployment d;
    char err[256];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *text = replace(DEPLOYMENT_JSON, bad[i].from, bad[i].to);
        int rc = nomad_decode_deployment(text, strlen(text), &d, err, sizeof(err));
        if (rc != NOMAD_ERR_DECODE) fail_msg("accepted %s", bad[i].to);
        if (!strstr(err, bad[i].want)) fail_msg("error \"%s\" lacks \"%s\"", err, bad[i].want);
        assert_int_equal(d.n_groups, 0);
        assert_string_equal(d.id, "");
        free(text);
    }

    assert_int_equal(nomad_decode_deployment("null", 4, &d, err, sizeof(err)), NOMAD_ERR_DECODE);

    /* More groups than fit. */
    char big[8192];
    size_t n = (size_t)snprintf(big, sizeof(big), "{\"ID\":\"d\",\"JobID\":\"j\",\"JobVersion\":1,\"Status\":"
                                                  "\"running\",\"CreateIndex\":1,\"ModifyIndex\":1,\"TaskGroups\":{");
    for (int i = 0; i <= NOMAD_MAX_GROUPS; i++)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "%s\"g%d\":{}", i ? "," : "", i);
    snprintf(big + n, sizeof(big) - n, "}}");
    assert_int_equal(nomad_decode_deployment(big, strlen(big), &d, err, sizeof(err)), NOMAD_ERR_DECODE);
    assert_non_null(strstr(err, "more than 32"));

    /* An overlong group name. */
    const char *longname = "{\"ID\":\"d\",\"JobID\":\"j\",\"JobVersion\":1,\"Status\":\"running\",\"CreateIndex\":1,"
                           "\"ModifyIndex\":1,\"TaskGroups\":{\"g123456789g123456789g123456789g123456789g123456789"
                           "g123456789abcd\":{}}}";
    assert_int_equal(nomad_decode_deployment(longname, strlen(longname), &d, err, sizeof(err)), NOMAD_ERR_DECODE);
    assert_non_null(strstr(err, "group name of 64 bytes"));
}

/* ---- patching ---- */

static const char TWO_GROUPS[] =
    "{\"ID\":\"web\",\"Meta\":null,\"TaskGroups\":["
    "{\"Name\":\"web\",\"Tasks\":[{\"Name\":\"app\",\"Config\":{\"image\":\"r/web:1\",\"ports\":[\"http\"]}},"
    "{\"Name\":\"sidecar\",\"Config\":{\"image\":\"envoy:1.30\"}}]},"
    "{\"Name\":\"worker\",\"Tasks\":[{\"Name\":\"app\",\"Config\":{\"image\":\"r/web:1\"}},"
    "{\"Name\":\"cron\",\"Config\":{\"image\":\"r/cron:1\"}},{\"Name\":\"raw\",\"Driver\":\"raw_exec\"}]}]}";

static const char *image_at(json_object *job, size_t g, size_t t) {
    json_object *groups, *tasks, *cfg, *img;
    assert_true(json_object_object_get_ex(job, "TaskGroups", &groups));
    assert_true(json_object_object_get_ex(json_object_array_get_idx(groups, g), "Tasks", &tasks));
    assert_true(json_object_object_get_ex(json_object_array_get_idx(tasks, t), "Config", &cfg));
    assert_true(json_object_object_get_ex(cfg, "image", &img));
    return json_object_get_string(img);
}

static void test_patch_set_image(void **state) {
    (void)state;
    json_object *job = parse_ok(TWO_GROUPS);
    char *names[] = {"app", "cron"};
    config_strv tasks = {.v = names, .n = 2};
    char err[256] = "x";
    assert_string_equal(nomad_job_task_image(job, "app"), "r/web:1");
    assert_int_equal(nomad_job_set_image(job, &tasks, "r/web:2", err, sizeof(err)), NOMAD_OK);
    assert_string_equal(err, "");
    assert_string_equal(image_at(job, 0, 0), "r/web:2");     /* app in group web */
    assert_string_equal(image_at(job, 1, 0), "r/web:2");     /* app in group worker */
    assert_string_equal(image_at(job, 1, 1), "r/web:2");     /* cron */
    assert_string_equal(image_at(job, 0, 1), "envoy:1.30");  /* not named: untouched */
    assert_string_equal(nomad_job_task_image(job, "app"), "r/web:2");
    assert_string_equal(nomad_job_task_image(job, "sidecar"), "envoy:1.30");
    assert_null(nomad_job_task_image(job, "raw"));            /* no Config */
    assert_null(nomad_job_task_image(job, "nope"));
    /* Other Config keys survive. */
    json_object *groups, *tasks0, *cfg, *ports;
    json_object_object_get_ex(job, "TaskGroups", &groups);
    json_object_object_get_ex(json_object_array_get_idx(groups, 0), "Tasks", &tasks0);
    json_object_object_get_ex(json_object_array_get_idx(tasks0, 0), "Config", &cfg);
    assert_true(json_object_object_get_ex(cfg, "ports", &ports));
    json_object_put(job);
}

static void test_patch_set_image_errors(void **state) {
    (void)state;
    json_object *job = parse_ok(TWO_GROUPS);
    const char *before = json_object_to_json_string_ext(job, JSON_C_TO_STRING_PLAIN);
    char *saved = strdup(before);
    char err[256];

    /* A missing task is named, and nothing was changed (app comes first in the list). */
    char *names[] = {"app", "missing-task"};
    config_strv tasks = {.v = names, .n = 2};
    assert_int_equal(nomad_job_set_image(job, &tasks, "r/web:2", err, sizeof(err)), NOMAD_ERR_INVALID);
    assert_string_equal(err, "task missing-task is not in the job");
    assert_string_equal(json_object_to_json_string_ext(job, JSON_C_TO_STRING_PLAIN), saved);

    char *raw[] = {"raw"};
    config_strv rawv = {.v = raw, .n = 1};
    assert_int_equal(nomad_job_set_image(job, &rawv, "r/web:2", err, sizeof(err)), NOMAD_ERR_INVALID);
    assert_string_equal(err, "task raw has no Config object");

    config_strv none = {.v = NULL, .n = 0};
    assert_int_equal(nomad_job_set_image(job, &none, "r/web:2", err, sizeof(err)), NOMAD_ERR_INVALID);
    char *app[] = {"app"};
    config_strv appv = {.v = app, .n = 1};
    assert_int_equal(nomad_job_set_image(job, &appv, "", err, sizeof(err)), NOMAD_ERR_INVALID);
    assert_string_equal(json_object_to_json_string_ext(job, JSON_C_TO_STRING_PLAIN), saved);
    free(saved);
    json_object_put(job);

    json_object *notgroups = parse_ok("{\"ID\":\"x\",\"TaskGroups\":null}");
    assert_int_equal(nomad_job_set_image(notgroups, &appv, "i:1", err, sizeof(err)), NOMAD_ERR_INVALID);
    assert_string_equal(err, "the job has no TaskGroups");
    json_object_put(notgroups);
}

static void test_patch_set_meta(void **state) {
    (void)state;
    json_object *job = parse_ok(TWO_GROUPS);   /* Meta: null */
    assert_int_equal(nomad_job_set_meta(job, "nomatron.request_id", "D-7"), NOMAD_OK);
    assert_int_equal(nomad_job_set_meta(job, "nomatron.requested_by", "slack:U01"), NOMAD_OK);
    assert_int_equal(nomad_job_set_meta(job, "nomatron.request_id", "D-8"), NOMAD_OK);   /* replaces */
    json_object *meta, *v;
    assert_true(json_object_object_get_ex(job, "Meta", &meta));
    assert_int_equal(json_object_object_length(meta), 2);
    assert_true(json_object_object_get_ex(meta, "nomatron.request_id", &v));
    assert_string_equal(json_object_get_string(v), "D-8");
    json_object_put(job);

    job = parse_ok(JOB_JSON);   /* existing Meta is kept */
    assert_int_equal(nomad_job_set_meta(job, "nomatron.request_id", "D-9"), NOMAD_OK);
    json_object_object_get_ex(job, "Meta", &meta);
    assert_int_equal(json_object_object_length(meta), 2);
    json_object_put(job);

    job = parse_ok("{\"ID\":\"x\"}");   /* Meta absent */
    assert_int_equal(nomad_job_set_meta(job, "k", "v"), NOMAD_OK);
    assert_string_equal(json_object_to_json_string_ext(job, JSON_C_TO_STRING_PLAIN), "{\"ID\":\"x\",\"Meta\":{\"k\":\"v\"}}");
    json_object_put(job);

    job = parse_ok("{\"ID\":\"x\",\"Meta\":\"oops\"}");
    assert_int_equal(nomad_job_set_meta(job, "k", "v"), NOMAD_ERR_INVALID);
    json_object_put(job);
}

static void test_strerror(void **state) {
    (void)state;
    for (int code = NOMAD_OK; code <= NOMAD_ERR_NOMEM; code++) {
        assert_non_null(nomad_strerror(code));
        assert_true(strlen(nomad_strerror(code)) > 0);
    }
    assert_string_equal(nomad_strerror(NOMAD_OK), "ok");
    assert_string_equal(nomad_strerror(999), "unknown nomad error");
}

/* ---- versions, plan, deployment writes, allocations, deployment lists ---- */

static void test_decode_versions_strict(void **state) {
    (void)state;
    char err[256];
    nomad_version_list vl;
    static const char ok[] = "{\"Versions\":[{\"Version\":2,\"Stable\":true,\"SubmitTime\":5,"
                             "\"TaskGroups\":[{\"Name\":\"g\",\"Tasks\":[{\"Name\":\"app\",\"Config\":{\"image\":\"i:2\"}}]}]},"
                             "{\"Version\":1}]}";
    assert_int_equal(nomad_decode_job_versions(ok, strlen(ok), "app", &vl, err, sizeof(err)), NOMAD_OK);
    assert_int_equal(vl.n, 2);
    assert_string_equal(vl.v[0].image, "i:2");
    assert_string_equal(vl.v[1].image, "");
    assert_int_equal(nomad_decode_job_versions(ok, strlen(ok), NULL, &vl, err, sizeof(err)), NOMAD_OK);
    assert_string_equal(vl.v[0].image, "");
    static const char *const bad[] = {
        "[]", "{}", "{\"Versions\":{}}", "{\"Versions\":[{\"Stable\":true}]}", "{\"Versions\":[{\"Version\":-1}]}",
        "{\"Versions\":[{\"Version\":1,\"Stable\":1}]}", "{\"Versions\":[{\"Version\":1,\"SubmitTime\":18446744073709551615}]}",
        "{\"Versions\":[1]}", "{\"Versions\":[]} x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (nomad_decode_job_versions(bad[i], strlen(bad[i]), "app", &vl, err, sizeof(err)) != NOMAD_ERR_DECODE)
            fail_msg("accepted %s", bad[i]);
        assert_int_equal(vl.n, 0);
    }
    /* More than NOMAD_MAX_VERSIONS: the newest kept, all counted. */
    char big[8192] = "{\"Versions\":[";
    for (int i = 40; i > 0; i--) {
        char one[64];
        snprintf(one, sizeof(one), "%s{\"Version\":%d}", i == 40 ? "" : ",", i);
        strcat(big, one);
    }
    strcat(big, "]}");
    assert_int_equal(nomad_decode_job_versions(big, strlen(big), "app", &vl, err, sizeof(err)), NOMAD_OK);
    assert_int_equal(vl.n, NOMAD_MAX_VERSIONS);
    assert_int_equal(vl.n_total, 40);
    assert_true(vl.v[0].version == 40 && vl.v[NOMAD_MAX_VERSIONS - 1].version == 40 - NOMAD_MAX_VERSIONS + 1);
}

static void test_decode_plan_strict(void **state) {
    (void)state;
    char err[256];
    nomad_plan p;
    static const char ok[] =
        "{\"JobModifyIndex\":9,\"Annotations\":{\"DesiredTGUpdates\":{\"web\":{\"InPlaceUpdate\":2,"
        "\"DestructiveUpdate\":1,\"Place\":3,\"Stop\":4,\"Canary\":1}}},\"FailedTGAllocs\":{\"web\":{}},"
        "\"Diff\":{\"Type\":\"Edited\",\"TaskGroups\":[{\"Name\":\"web\",\"Type\":\"Edited\"},"
        "{\"Name\":\"old\",\"Type\":\"Deleted\"}]},\"Warnings\":\"careful\"}";
    assert_int_equal(nomad_decode_plan(ok, strlen(ok), &p, err, sizeof(err)), NOMAD_OK);
    assert_true(p.job_modify_index == 9 && p.failed_tg_allocs);
    assert_int_equal(p.n_groups, 2);
    assert_true(p.groups[0].in_place == 2 && p.groups[0].destructive == 1 && p.groups[0].place == 3 &&
                p.groups[0].stop == 4 && p.groups[0].canary == 1);
    assert_string_equal(p.groups[1].name, "old");
    assert_string_equal(p.groups[1].diff_type, "Deleted");
    assert_string_equal(p.warnings, "careful");
    static const char nodiff[] = "{\"JobModifyIndex\":0,\"Annotations\":null,\"Diff\":null}";
    assert_int_equal(nomad_decode_plan(nodiff, strlen(nodiff), &p, err, sizeof(err)), NOMAD_OK);
    assert_string_equal(p.diff_type, "");
    static const char *const bad[] = {
        "{}", "{\"JobModifyIndex\":\"9\"}", "{\"JobModifyIndex\":1,\"Annotations\":[]}",
        "{\"JobModifyIndex\":1,\"Annotations\":{\"DesiredTGUpdates\":{\"w\":{\"Place\":-1}}}}",
        "{\"JobModifyIndex\":1,\"Diff\":{}}", "{\"JobModifyIndex\":1,\"Diff\":{\"Type\":\"None\",\"TaskGroups\":[{}]}}",
        "{\"JobModifyIndex\":1,\"Annotations\":{\"DesiredTGUpdates\":{\"\":{}}}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (nomad_decode_plan(bad[i], strlen(bad[i]), &p, err, sizeof(err)) != NOMAD_ERR_DECODE)
            fail_msg("accepted %s", bad[i]);
}

static void test_decode_update_strict(void **state) {
    (void)state;
    char err[256];
    nomad_deployment_update u;
    static const char ok[] = "{\"EvalID\":\"e\",\"EvalCreateIndex\":1,\"DeploymentModifyIndex\":2,"
                             "\"RevertedJobVersion\":3,\"Index\":2}";
    assert_int_equal(nomad_decode_deployment_update(ok, strlen(ok), &u, err, sizeof(err)), NOMAD_OK);
    assert_true(u.reverted && u.reverted_job_version == 3);
    static const char *const bad[] = {"null", "{\"RevertedJobVersion\":\"3\"}", "{\"EvalID\":5}", "{\"Index\":-2}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(nomad_decode_deployment_update(bad[i], strlen(bad[i]), &u, err, sizeof(err)),
                         NOMAD_ERR_DECODE);
}

static void test_decode_allocations_reasons(void **state) {
    (void)state;
    char err[256];
    static const char body[] =
        "[{\"ID\":\"oom\",\"TaskGroup\":\"web\",\"ClientStatus\":\"running\",\"JobVersion\":5,\"CreateIndex\":3,"
        "\"DeploymentStatus\":{\"Healthy\":true,\"Canary\":true},"
        "\"TaskStates\":{\"app\":{\"State\":\"running\",\"Restarts\":2,\"Events\":["
        "{\"Type\":\"Started\",\"DisplayMessage\":\"Task started by client\"},"
        "{\"Type\":\"Terminated\",\"DisplayMessage\":\"Exit Code: 137, Exit Message: \\\"OOM Killed\\\"\","
        "\"ExitCode\":137,\"Details\":{\"oom_killed\":\"true\",\"exit_code\":\"137\"}},"
        "{\"Type\":\"Restarting\",\"DisplayMessage\":\"Task restarting in 15s\"}]},"
        "\"log\":{\"State\":\"running\",\"Events\":[{\"Type\":\"Terminated\",\"ExitCode\":0}]}}},"
        "{\"ID\":\"hc\",\"TaskGroup\":\"web\",\"ClientStatus\":\"running\",\"JobVersion\":5,\"CreateIndex\":2,"
        "\"DeploymentStatus\":{\"Healthy\":false,\"Canary\":true},"
        "\"TaskStates\":{\"app\":{\"State\":\"running\",\"Events\":[{\"Type\":\"Alloc Unhealthy\","
        "\"DisplayMessage\":\"\",\"Details\":{}, \"Message\":\"Unhealthy because of failed check: http\"}]}}},"
        "{\"ID\":\"old\",\"TaskGroup\":\"web\",\"ClientStatus\":\"running\",\"JobVersion\":4,\"CreateIndex\":1,"
        "\"DeploymentStatus\":{\"Healthy\":true,\"Canary\":true}}]";
    nomad_alloc a[3];
    size_t n, total;
    assert_int_equal(nomad_decode_allocations(body, strlen(body), a, 3, &n, &total, err, sizeof(err)), NOMAD_OK);
    assert_int_equal(n, 3);
    assert_string_equal(a[0].id, "oom");
    assert_int_equal(a[0].n_tasks, 2);
    assert_string_equal(a[0].tasks[0].reason_type, "Terminated");
    assert_true(a[0].tasks[0].oom_killed && a[0].tasks[0].exit_code == 137);
    assert_string_equal(a[0].tasks[0].last_type, "Restarting");
    assert_string_equal(a[0].tasks[1].reason_type, "");   /* a clean exit is no reason */
    assert_string_equal(a[1].tasks[0].reason_type, "Alloc Unhealthy");
    assert_string_equal(a[1].tasks[0].reason, "Unhealthy because of failed check: http");
    /* Only the newest kept when the array is small; counting only with max 0. */
    assert_int_equal(nomad_decode_allocations(body, strlen(body), a, 1, &n, &total, err, sizeof(err)), NOMAD_OK);
    assert_true(n == 1 && total == 3);
    assert_string_equal(a[0].id, "oom");
    assert_int_equal(nomad_decode_allocations(body, strlen(body), NULL, 0, &n, &total, err, sizeof(err)), NOMAD_OK);
    assert_true(n == 0 && total == 3);

    nomad_alloc all[3];
    assert_int_equal(nomad_decode_allocations(body, strlen(body), all, 3, &n, &total, err, sizeof(err)), NOMAD_OK);
    nomad_deployment d;
    static const char dep[] = "{\"ID\":\"d\",\"JobID\":\"web\",\"JobVersion\":5,\"Status\":\"running\",\"CreateIndex\":1,"
                              "\"ModifyIndex\":1,\"TaskGroups\":{\"web\":{\"DesiredCanaries\":2,"
                              "\"PlacedCanaries\":[\"oom\",\"hc\"]}}}";
    assert_int_equal(nomad_decode_deployment(dep, strlen(dep), &d, err, sizeof(err)), NOMAD_OK);
    assert_false(d.groups[0].canaries_counted);
    nomad_deployment_count_canaries(&d, all, n);
    assert_true(d.groups[0].canaries_counted);
    assert_int_equal(d.groups[0].placed_canaries, 2);
    assert_int_equal(d.groups[0].healthy_canaries, 1);    /* "old" is another version */
    assert_int_equal(d.groups[0].unhealthy_canaries, 1);

    static const char *const bad[] = {
        "{}", "[{}]", "[{\"ID\":\"a\",\"TaskGroup\":\"g\"}]",
        "[{\"ID\":\"a\",\"TaskGroup\":\"g\",\"ClientStatus\":\"running\",\"DeploymentStatus\":{\"Healthy\":1}}]",
        "[{\"ID\":\"a\",\"TaskGroup\":\"g\",\"ClientStatus\":\"running\",\"TaskStates\":{\"t\":{\"Events\":{}}}}]",
        "[{\"ID\":\"a\",\"TaskGroup\":\"g\",\"ClientStatus\":\"running\",\"TaskStates\":{\"t\":{\"Events\":"
        "[{\"Type\":\"x\",\"Details\":{\"k\":1}}]}}}]",
        "[{\"ID\":\"a\",\"TaskGroup\":\"g\",\"ClientStatus\":\"running\",\"JobVersion\":1.5}]",
        "[] []",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (nomad_decode_allocations(bad[i], strlen(bad[i]), a, 3, &n, &total, err, sizeof(err)) != NOMAD_ERR_DECODE)
            fail_msg("accepted %s", bad[i]);
}

static void test_decode_deployments_sorted(void **state) {
    (void)state;
    char err[256];
    static const char body[] =
        "[{\"ID\":\"b\",\"JobID\":\"w\",\"JobVersion\":2,\"Status\":\"failed\",\"CreateIndex\":20,\"ModifyIndex\":21},"
        "{\"ID\":\"c\",\"JobID\":\"w\",\"JobVersion\":3,\"Status\":\"running\",\"CreateIndex\":30,\"ModifyIndex\":31},"
        "{\"ID\":\"a\",\"JobID\":\"w\",\"JobVersion\":1,\"Status\":\"successful\",\"CreateIndex\":10,\"ModifyIndex\":11}]";
    nomad_deployment d[2];
    size_t n, total;
    assert_int_equal(nomad_decode_deployments(body, strlen(body), d, 2, &n, &total, err, sizeof(err)), NOMAD_OK);
    assert_true(n == 2 && total == 3);
    assert_string_equal(d[0].id, "c");
    assert_string_equal(d[1].id, "b");
    static const char bad[] = "[{\"ID\":\"b\",\"JobID\":\"w\",\"JobVersion\":2,\"Status\":\"failed\",\"CreateIndex\":20,"
                              "\"ModifyIndex\":21},{\"ID\":\"x\"}]";
    assert_int_equal(nomad_decode_deployments(bad, strlen(bad), d, 2, &n, &total, err, sizeof(err)), NOMAD_ERR_DECODE);
    assert_non_null(strstr(err, "[1]: missing field JobID"));
    assert_int_equal(n, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_parse_accepts),
        cmocka_unit_test(test_json_parse_null),
        cmocka_unit_test(test_json_parse_rejects),
        cmocka_unit_test(test_decode_job_info),
        cmocka_unit_test(test_decode_job_info_strict),
        cmocka_unit_test(test_decode_job_info_limits),
        cmocka_unit_test(test_decode_register),
        cmocka_unit_test(test_decode_eval),
        cmocka_unit_test(test_decode_deployment),
        cmocka_unit_test(test_decode_deployment_strict),
        cmocka_unit_test(test_patch_set_image),
        cmocka_unit_test(test_patch_set_image_errors),
        cmocka_unit_test(test_patch_set_meta),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_decode_versions_strict),
        cmocka_unit_test(test_decode_plan_strict),
        cmocka_unit_test(test_decode_update_strict),
        cmocka_unit_test(test_decode_allocations_reasons),
        cmocka_unit_test(test_decode_deployments_sorted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
