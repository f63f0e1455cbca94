/* nomad-sim through its HTTP API (tests/sim/api.c) on a fake clock: the
 * §11 field lists, the §1.8 error table, the §7 lifecycle with allocations,
 * blocking queries, ACL (§9), fault injection and the /_sim/ control API.
 * Reference: shared/reference/nomad-api.md. */
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
#define MIN 60000LL

/* staging/web: 2 allocs, MaxParallel 1, AutoRevert; staging/canary: Canary 1
 * of 3; staging/auto: Canary 1 AutoPromote; staging/nodeploy: MaxParallel 0;
 * default/web: no update block (defaults). */
static const char JOBS[] =
    "[{\"ID\":\"web\",\"Namespace\":\"staging\",\"Type\":\"service\",\"Version\":0,\"Stable\":true,\"Status\":\"running\","
    "\"TaskGroups\":[{\"Name\":\"web\",\"Count\":2,\"Update\":{\"MaxParallel\":1,\"AutoRevert\":true},"
    "\"Tasks\":[{\"Name\":\"web\",\"Driver\":\"docker\",\"Config\":{\"image\":\"web:v1\"}}]}]},"
    " {\"ID\":\"web\",\"Namespace\":\"default\",\"Version\":0,\"Stable\":true,\"Status\":\"running\","
    "\"TaskGroups\":[{\"Name\":\"web\",\"Count\":1,"
    "\"Tasks\":[{\"Name\":\"web\",\"Driver\":\"docker\",\"Config\":{\"image\":\"web:v1\"}}]}]},"
    " {\"ID\":\"canary\",\"Namespace\":\"staging\",\"Version\":0,\"Stable\":true,\"Status\":\"running\","
    "\"TaskGroups\":[{\"Name\":\"c\",\"Count\":3,\"Update\":{\"MaxParallel\":1,\"Canary\":1},"
    "\"Tasks\":[{\"Name\":\"c\",\"Driver\":\"docker\",\"Config\":{\"image\":\"c:v1\"}}]}]},"
    " {\"ID\":\"auto\",\"Namespace\":\"staging\",\"Version\":0,\"Stable\":true,\"Status\":\"running\","
    "\"TaskGroups\":[{\"Name\":\"a\",\"Count\":2,\"Update\":{\"MaxParallel\":2,\"Canary\":1,\"AutoPromote\":true},"
    "\"Tasks\":[{\"Name\":\"a\",\"Driver\":\"docker\",\"Config\":{\"image\":\"a:v1\"}}]}]},"
    " {\"ID\":\"nodeploy\",\"Namespace\":\"staging\",\"Version\":0,\"Stable\":true,\"Status\":\"running\","
    "\"TaskGroups\":[{\"Name\":\"n\",\"Count\":2,\"Update\":{\"MaxParallel\":0},"
    "\"Tasks\":[{\"Name\":\"n\",\"Driver\":\"docker\",\"Config\":{\"image\":\"n:v1\"}}]}]}]";

static const char TOKENS[] =
    "[{\"SecretID\":\"mgmt-secret\",\"AccessorID\":\"acc-mgmt\",\"Name\":\"root\",\"Type\":\"management\"},"
    " {\"SecretID\":\"bot-secret\",\"AccessorID\":\"acc-bot\",\"Name\":\"deploy-bot\",\"Type\":\"client\","
    "  \"Policies\":[\"deploy\"],\"Namespaces\":{\"staging\":[\"list-jobs\",\"read-job\",\"submit-job\"]}},"
    " {\"SecretID\":\"ro-secret\",\"AccessorID\":\"acc-ro\",\"Name\":\"viewer\",\"Type\":\"client\","
    "  \"Namespaces\":{\"*\":[\"read\"]}},"
    " {\"SecretID\":\"fine-secret\",\"AccessorID\":\"acc-fine\",\"Name\":\"fine\",\"Type\":\"client\","
    "  \"Namespaces\":{\"staging\":[\"read-job\",\"register-job\"],\"default\":[\"deny\"]}}]";

typedef struct fx {
    sim_state *st;
    sim_ctl ctl;
    int64_t now;
} fx;

static int setup(void **state) {
    fx *f = calloc(1, sizeof(*f));
    f->st = sim_state_new(HEALTH, SCHED, 0, 42);
    assert_non_null(f->st);
    char err[512] = "";
    if (sim_state_load(f->st, JOBS, strlen(JOBS), T0, err, sizeof(err)) != SIM_OK) fail_msg("load: %s", err);
    assert_int_equal(sim_ctl_init(&f->ctl, 7), 0);
    f->now = T0;
    *state = f;
    return 0;
}

static int setup_acl(void **state) {
    setup(state);
    fx *f = *state;
    char err[256];
    if (sim_ctl_load_acl(&f->ctl, TOKENS, strlen(TOKENS), err, sizeof(err)) != 0) fail_msg("acl: %s", err);
    return 0;
}

static int teardown(void **state) {
    fx *f = *state;
    sim_state_free(f->st);
    sim_ctl_free(&f->ctl);
    free(f);
    return 0;
}

typedef struct resp {
    int rc, status, fault;
    int64_t delay, deadline;
    bool has_index;
    uint64_t index;
    char body[1 << 20];
    json_object *json;   /* parsed body, or NULL */
} resp;

/* One request through the parser and the API at f->now. */
static resp *call_full(fx *f, const char *method, const char *target, const char *token, const char *body,
                       int64_t parked_at, bool force) {
    static resp r;
    json_object_put(r.json);
    memset(&r, 0, sizeof(r));
    if (!f) return &r;   /* just release the last parsed body */
    char raw[70000];
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(raw, sizeof(raw), "%s %s HTTP/1.1\r\nHost: x\r\n%s%s%sContent-Length: %zu\r\n\r\n%s", method,
                     target, token ? "X-Nomad-Token: " : "", token ? token : "", token ? "\r\n" : "", blen,
                     body ? body : "");
    assert_true(n > 0 && (size_t)n < sizeof(raw));
    sim_http_parser p;
    sim_http_parser_init(&p, SIM_HTTP_MAX_HEAD, SIM_HTTP_MAX_BODY);
    size_t used;
    assert_int_equal(sim_http_parse(&p, raw, (size_t)n, &used), SIM_HTTP_DONE);
    sim_response out;
    sim_response_init(&out);
    r.rc = sim_api_handle_ctl(f->st, &f->ctl, &p.req, f->now, parked_at < 0 ? f->now : parked_at, force, &out,
                              &r.deadline);
    r.status = out.status;
    r.fault = out.fault;
    r.delay = out.delay_ms;
    r.has_index = out.has_index;
    r.index = out.index;
    if (out.body.len) {
        assert_true(out.body.len < sizeof(r.body));
        memcpy(r.body, out.body.data, out.body.len);
    }
    r.json = out.content_type && strcmp(out.content_type, "application/json") == 0 ? json_tokener_parse(r.body) : NULL;
    sim_response_free(&out);
    sim_http_parser_free(&p);
    return &r;
}

static resp *call(fx *f, const char *method, const char *target, const char *token, const char *body) {
    return call_full(f, method, target, token, body, -1, false);
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

static bool bget(json_object *o, const char *path) {
    json_object *v = NULL;
    if (json_pointer_get(o, path, &v) != 0) fail_msg("no %s", path);
    return json_object_get_boolean(v);
}

static bool has(json_object *o, const char *path) {
    json_object *v = NULL;
    return json_pointer_get(o, path, &v) == 0;
}

static void advance(fx *f, int64_t to) {
    f->now = to;
    sim_state_advance(f->st, to);
}

/* Register staging/<job> (or ns/<job>) with a new image (keeps the rest of
 * the spec as read back). Returns the eval ID in evid. */
static void deploy(fx *f, const char *ns, const char *job, const char *image, char evid[64]) {
    char path[256];
    snprintf(path, sizeof(path), "/v1/job/%s?namespace=%s", job, ns);
    resp *r = call(f, "GET", path, NULL, NULL);
    assert_int_equal(r->status, 200);
    json_object *j = json_object_get(r->json), *cfg;
    assert_int_equal(json_pointer_get(j, "/TaskGroups/0/Tasks/0/Config", &cfg), 0);
    json_object_object_add(cfg, "image", json_object_new_string(image));
    json_object *b = json_object_new_object();
    json_object_object_add(b, "Job", j);
    char *body = strdup(json_object_to_json_string(b));
    json_object_put(b);
    snprintf(path, sizeof(path), "/v1/jobs?namespace=%s", ns);
    r = call(f, "PUT", path, NULL, body);
    free(body);
    if (r->status != 200) fail_msg("register: %d %s", r->status, r->body);
    snprintf(evid, 64, "%s", sget(r->json, "/EvalID"));
}

/* The deployment an eval created (after the scheduler delay). */
static void eval_deployment(fx *f, const char *ns, const char *evid, char dep[64]) {
    char path[256];
    snprintf(path, sizeof(path), "/v1/evaluation/%s?namespace=%s", evid, ns);
    resp *r = call(f, "GET", path, NULL, NULL);
    assert_int_equal(r->status, 200);
    assert_string_equal(sget(r->json, "/Status"), "complete");
    const char *d = sget(r->json, "/DeploymentID");
    snprintf(dep, 64, "%s", d ? d : "");
}

static json_object *get_json(fx *f, const char *fmt, const char *a, const char *b) {
    char path[512];
    snprintf(path, sizeof(path), fmt, a, b);
    resp *r = call(f, "GET", path, NULL, NULL);
    if (r->status != 200) fail_msg("GET %s: %d %s", path, r->status, r->body);
    return json_object_get(r->json);
}

/* ---------- §11 field lists ---------- */

static void assert_fields(json_object *o, const char *what, const char *fields) {
    char buf[2048];
    snprintf(buf, sizeof(buf), "%s", fields);
    for (char *save = NULL, *k = strtok_r(buf, " ", &save); k; k = strtok_r(NULL, " ", &save))
        if (!has(o, k)) fail_msg("%s lacks %s: %s", what, k, json_object_to_json_string(o));
}

static void test_field_lists(void **state) {
    fx *f = *state;
    char evid[64], dep[64];
    deploy(f, "staging", "web", "web:v2", evid);
    resp *r;
    advance(f, T0 + SCHED);
    eval_deployment(f, "staging", evid, dep);

    static const struct {
        const char *what, *method, *fmt, *body, *fields;
    } rows[] = {
        {"register response", "PUT", "/v1/job/api?namespace=staging%s%s",
         "{\"Job\":{\"ID\":\"api\",\"TaskGroups\":[{\"Name\":\"g\",\"Tasks\":[{\"Name\":\"t\",\"Driver\":\"docker\"}]}]}}",
         "/EvalID /EvalCreateIndex /JobModifyIndex /Warnings /Index /LastContact /KnownLeader /NextToken"},
        {"deployment", "GET", "/v1/deployment/%s?namespace=staging%s", NULL,
         "/ID /JobID /JobVersion /JobModifyIndex /JobSpecModifyIndex /JobCreateIndex /Status /StatusDescription "
         "/CreateIndex /ModifyIndex /EvalPriority /IsMultiregion /Namespace /CreateTime /ModifyTime "
         "/TaskGroups/web/Promoted /TaskGroups/web/DesiredCanaries /TaskGroups/web/DesiredTotal "
         "/TaskGroups/web/PlacedAllocs /TaskGroups/web/HealthyAllocs /TaskGroups/web/UnhealthyAllocs "
         "/TaskGroups/web/AutoPromote /TaskGroups/web/AutoRevert /TaskGroups/web/PlacedCanaries "
         "/TaskGroups/web/ProgressDeadline /TaskGroups/web/RequireProgressBy"},
        {"evaluation", "GET", "/v1/evaluation/%s?namespace=staging%s", NULL,
         "/ID /Priority /Type /TriggeredBy /JobID /JobModifyIndex /Status /DeploymentID /Namespace /QueuedAllocations "
         "/SnapshotIndex /CreateIndex /ModifyIndex /CreateTime /ModifyTime"},
        {"versions", "GET", "/v1/job/web/versions?namespace=staging%s%s", NULL,
         "/Diffs /Index /KnownLeader /LastContact /Versions/0/Version /Versions/1/Version "
         "/Versions/0/TaskGroups/0/Update/MaxParallel /Versions/0/TaskGroups/0/Update/HealthCheck "
         "/Versions/0/TaskGroups/0/Update/MinHealthyTime /Versions/0/TaskGroups/0/Update/HealthyDeadline "
         "/Versions/0/TaskGroups/0/Update/ProgressDeadline /Versions/0/TaskGroups/0/Update/AutoRevert "
         "/Versions/0/TaskGroups/0/Update/AutoPromote /Versions/0/TaskGroups/0/Update/Canary "
         "/Versions/0/TaskGroups/0/Update/Stagger /Versions/0/Update/Stagger /Versions/0/Update/MaxParallel"},
        {"alloc stub", "GET", "/v1/job/web/allocations?namespace=staging%s%s", NULL,
         "/0/ID /0/EvalID /0/Name /0/Namespace /0/NodeID /0/NodeName /0/JobID /0/JobType /0/JobVersion /0/TaskGroup "
         "/0/DesiredStatus /0/ClientStatus /0/ClientDescription /0/TaskStates /0/CreateIndex /0/ModifyIndex "
         "/0/CreateTime /0/ModifyTime"},
        {"deployment allocs", "GET", "/v1/deployment/allocations/%s?namespace=staging%s", NULL,
         "/0/ID /0/JobVersion /0/TaskStates/web/State /0/TaskStates/web/Events /0/TaskStates/web/Restarts"},
        {"plan", "PUT", "/v1/job/web/plan?namespace=staging%s%s",
         "{\"Diff\":true,\"Job\":{\"ID\":\"web\",\"TaskGroups\":[{\"Name\":\"web\",\"Count\":3,"
         "\"Tasks\":[{\"Name\":\"web\",\"Driver\":\"docker\",\"Config\":{\"image\":\"web:v9\"}}]}]}}",
         "/Annotations/DesiredTGUpdates/web/Place /Annotations/DesiredTGUpdates/web/DestructiveUpdate "
         "/Annotations/DesiredTGUpdates/web/Canary /Annotations/DesiredTGUpdates/web/Ignore "
         "/Annotations/DesiredTGUpdates/web/InPlaceUpdate /Annotations/DesiredTGUpdates/web/Stop "
         "/FailedTGAllocs /JobModifyIndex /CreatedEvals /Diff/Type /Diff/ID /Diff/TaskGroups/0/Updates "
         "/Diff/TaskGroups/0/Tasks/0/Annotations /Index /Warnings /NextPeriodicLaunch"},
        {"token self", "GET", "/v1/acl/token/self%s%s", NULL,
         "/AccessorID /SecretID /Name /Type /Policies /Roles /Global /CreateTime /ExpirationTime /ExpirationTTL "
         "/CreateIndex /ModifyIndex"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char path[512];
        snprintf(path, sizeof(path), rows[i].fmt, strstr(rows[i].fmt, "deployment") ? dep : strstr(rows[i].fmt, "evaluation") ? evid : "", "");
        r = call(f, rows[i].method, path, NULL, rows[i].body);
        if (r->status != 200) fail_msg("%s: %d %s", rows[i].what, r->status, r->body);
        assert_fields(r->json, rows[i].what, rows[i].fields);
    }
    /* Full allocation: embedded Job, DeploymentID, and no JobVersion (§3.11). */
    json_object *allocs = get_json(f, "/v1/deployment/allocations/%s?namespace=staging%s", dep, "");
    const char *aid = sget(allocs, "/0/ID");
    json_object *a = get_json(f, "/v1/allocation/%s?namespace=staging%s", aid, "");
    assert_fields(a, "allocation", "/ID /Job/ID /DeploymentID /TaskStates /Metrics /ClientStatus");
    assert_false(has(a, "/JobVersion"));
    assert_string_equal(sget(a, "/DeploymentID"), dep);
    json_object_put(a);
    json_object_put(allocs);
    /* Promote / pause responses (a canary deployment). */
    deploy(f, "staging", "canary", "c:v2", evid);
    advance(f, T0 + 2 * HEALTH);
    eval_deployment(f, "staging", evid, dep);
    char path[256], body[256];
    snprintf(path, sizeof(path), "/v1/deployment/pause/%s?namespace=staging", dep);
    snprintf(body, sizeof(body), "{\"DeploymentID\":\"%s\",\"Pause\":true}", dep);
    r = call(f, "PUT", path, NULL, body);
    assert_int_equal(r->status, 200);
    assert_fields(r->json, "pause", "/EvalID /EvalCreateIndex /DeploymentModifyIndex /Index");
    assert_string_equal(sget(r->json, "/EvalID"), "");   /* pausing creates no eval */
    snprintf(body, sizeof(body), "{\"DeploymentID\":\"%s\",\"Pause\":false}", dep);
    r = call(f, "PUT", path, NULL, body);
    assert_int_equal(r->status, 200);
    assert_true(strlen(sget(r->json, "/EvalID")) > 0);   /* resuming does */
    snprintf(path, sizeof(path), "/v1/deployment/promote/%s?namespace=staging", dep);
    snprintf(body, sizeof(body), "{\"DeploymentID\":\"%s\",\"All\":true}", dep);
    r = call(f, "PUT", path, NULL, body);
    if (r->status != 200) fail_msg("promote: %s", r->body);
    assert_fields(r->json, "promote", "/EvalID /EvalCreateIndex /DeploymentModifyIndex /RevertedJobVersion /Index");
}

/* ---------- §1.8 error table and the "not found" table ---------- */

static void test_error_table(void **state) {
    fx *f = *state;
    /* A finished deployment to provoke the "terminal" errors. */
    json_object *d = get_json(f, "/v1/job/web/deployment?namespace=staging%s%s", "", "");
    char done[64];
    snprintf(done, sizeof(done), "%s", sget(d, "/ID"));
    assert_string_equal(sget(d, "/Status"), "successful");
    json_object_put(d);
    static const char *const JOBX = "{\"Job\":{\"ID\":\"x\",\"TaskGroups\":[{\"Name\":\"g\",\"Tasks\":[{\"Name\":\"t\",\"Driver\":\"docker\"}]}]}}";
    char body_terminal[256], body_mismatch[256];
    snprintf(body_terminal, sizeof(body_terminal), "{\"DeploymentID\":\"%s\",\"All\":true,\"Pause\":true}", done);
    snprintf(body_mismatch, sizeof(body_mismatch), "{\"DeploymentID\":\"other\",\"All\":true}");
    const struct {
        const char *method, *path, *body;
        int status;
        const char *text;   /* NULL: any */
    } rows[] = {
        /* 400 */
        {"PUT", "/v1/jobs", "", 400, "Request body is empty"},
        {"PUT", "/v1/jobs", "{\"Job\":", 400, "unexpected EOF"},
        {"PUT", "/v1/jobs", "{}", 400, "Job must be specified"},
        {"PUT", "/v1/jobs", "{\"Job\":{}}", 400, "Job ID hasn't been provided"},
        {"PUT", "/v1/job/y", JOBX, 400, "Job ID does not match name"},
        {"PUT", "/v1/job/y/plan", JOBX, 400, "Job ID does not match"},
        {"PUT", "/v1/job/x/plan", "{\"Job\":{\"Name\":\"x\"}}", 400, "Job must have a valid ID"},
        {"PUT", "/v1/job/web/revert?namespace=staging", "{\"JobVersion\":0}", 400, "JobID must be specified"},
        {"PUT", "/v1/job/web/revert?namespace=staging", "{\"JobID\":\"api\",\"JobVersion\":0}", 400, "Job ID does not match"},
        {"PUT", "/v1/deployment/promote/abc", "{\"All\":true}", 400, "DeploymentID must be specified"},
        {"PUT", "/v1/deployment/promote/abc", body_mismatch, 400, "Deployment ID does not match"},
        {"PUT", "/v1/deployment/pause/abc", "", 400, "Request body is empty"},
        {"PUT", "/v1/jobs", "{\"Job\":{\"ID\":\"x\"},\"EvalPriority\":101}", 400,
         "Eval priority must be between 1 and 100 inclusively"},
        {"GET", "/v1/job/web?index=x", NULL, 400, "Invalid index"},
        {"GET", "/v1/job/web?index=1&wait=10", NULL, 400, "Invalid wait time"},
        /* 404 */
        {"GET", "/v1/job/nope?namespace=staging", NULL, 404, "job not found"},
        {"GET", "/v1/job/nope/versions?namespace=staging", NULL, 404, "job versions not found"},
        {"GET", "/v1/deployment/nope", NULL, 404, "deployment not found"},
        {"GET", "/v1/evaluation/nope", NULL, 404, "eval not found"},
        {"GET", "/v1/allocation/nope", NULL, 404, "alloc not found"},
        {"GET", "/v1/no/such/route", NULL, 404, ""},
        {"GET", "/v2/anything", NULL, 404, ""},
        /* not-found that is not a 404 */
        {"GET", "/v1/job/nope/deployment?namespace=staging", NULL, 200, "null"},
        {"GET", "/v1/job/nope/deployments?namespace=staging", NULL, 200, "[]"},
        {"GET", "/v1/job/nope/allocations?namespace=staging", NULL, 200, "[]"},
        {"GET", "/v1/job/nope/evaluations?namespace=staging", NULL, 200, "[]"},
        {"DELETE", "/v1/job/nope?namespace=staging", NULL, 200, NULL},
        {"PUT", "/v1/job/nope/revert?namespace=staging", "{\"JobID\":\"nope\",\"JobVersion\":0}", 500,
         "job \"nope\" not found"},
        {"PUT", "/v1/deployment/fail/nope", NULL, 500, "deployment not found"},
        {"PUT", "/v1/deployment/promote/nope", "{\"DeploymentID\":\"nope\",\"All\":true}", 500, "deployment not found"},
        {"PUT", "/v1/deployment/pause/nope", "{\"DeploymentID\":\"nope\",\"Pause\":true}", 500, "deployment not found"},
        /* 405 */
        {"POST", "/v1/job/web/deployment", NULL, 405, "Invalid method"},
        {"DELETE", "/v1/deployment/abc", NULL, 405, "Invalid method"},
        {"GET", "/v1/deployment/fail/abc", NULL, 405, "Invalid method"},
        {"PATCH", "/v1/jobs", NULL, 405, "Invalid method"},
        {"PUT", "/v1/status/leader", NULL, 405, "Invalid method"},
        /* 500 */
        {"PUT", "/v1/jobs", "{\"Job\":{\"ID\":\"x\",\"Priority\":500,\"TaskGroups\":[{\"Name\":\"g\",\"Tasks\":[{\"Name\":\"t\",\"Driver\":\"docker\"}]}]}}",
         500, "1 error occurred:\n\t* Job priority must be between [1, 100]\n\n"},
        {"PUT", "/v1/jobs?namespace=staging",
         "{\"Job\":{\"ID\":\"web\",\"TaskGroups\":[{\"Name\":\"g\",\"Tasks\":[{\"Name\":\"t\",\"Driver\":\"docker\"}]}]},"
         "\"EnforceIndex\":true,\"JobModifyIndex\":0}",
         500, "Enforcing job modify index 0: job already exists"},
        {"PUT", "/v1/jobs?namespace=staging",
         "{\"Job\":{\"ID\":\"zz\",\"TaskGroups\":[{\"Name\":\"g\",\"Tasks\":[{\"Name\":\"t\",\"Driver\":\"docker\"}]}]},"
         "\"EnforceIndex\":true,\"JobModifyIndex\":12}",
         500, "Enforcing job modify index 12: job does not exist"},
        {"PUT", "/v1/job/web/revert?namespace=staging", "{\"JobID\":\"web\",\"JobVersion\":0}", 500,
         "can't revert to current version"},
        {"PUT", "/v1/job/web/revert?namespace=staging", "{\"JobID\":\"web\",\"JobVersion\":7}", 500,
         "job \"web\" in namespace \"staging\" at version 7 not found"},
        {"PUT", "/v1/job/web/revert?namespace=staging", "{\"JobID\":\"web\",\"JobVersion\":7,\"EnforcePriorVersion\":3}",
         500, "Current job has version 0; enforcing version 3"},
        {"PUT", "/v1/jobs?namespace=prod", JOBX, 500, "job \"x\" is in nonexistent namespace \"prod\""},
        {"GET", "/v1/job/web?region=eu", NULL, 500, "No path to region"},
    };
    char path[256];
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        resp *r = call(f, rows[i].method, rows[i].path, NULL, rows[i].body);
        if (r->status != rows[i].status || (rows[i].text && strcmp(r->body, rows[i].text) != 0))
            fail_msg("row %zu %s %s -> %d [%s], want %d [%s]", i, rows[i].method, rows[i].path, r->status, r->body,
                     rows[i].status, rows[i].text ? rows[i].text : "*");
    }
    /* Terminal deployment writes. */
    static const struct {
        const char *verb, *text;
    } term[] = {{"promote", "can't promote terminal deployment"},
                {"fail", "can't fail terminal deployment"},
                {"pause", "can't pause terminal deployment"}};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "/v1/deployment/%s/%s?namespace=staging", term[i].verb, done);
        resp *r = call(f, "PUT", path, NULL, body_terminal);
        assert_int_equal(r->status, 500);
        assert_string_equal(r->body, term[i].text);
    }
    snprintf(body_terminal, sizeof(body_terminal), "{\"DeploymentID\":\"%s\",\"Pause\":false}", done);
    snprintf(path, sizeof(path), "/v1/deployment/pause/%s", done);
    assert_string_equal(call(f, "PUT", path, NULL, body_terminal)->body, "can't resume terminal deployment");
    /* Errors are plain text; DELETE of an unknown job answers zero values. */
    resp *r = call(f, "DELETE", "/v1/job/nope?namespace=staging", NULL, NULL);
    assert_string_equal(sget(r->json, "/EvalID"), "");
    assert_int_equal(iget(r->json, "/JobModifyIndex"), 0);
}

/* ---------- §7 lifecycle ---------- */

static void test_lifecycle_success(void **state) {
    fx *f = *state;
    char evid[64], dep[64];
    json_object *before = get_json(f, "/v1/job/web/allocations?namespace=%s%s", "staging", "");
    assert_int_equal(json_object_array_length(before), 2);
    assert_string_equal(sget(before, "/0/ClientStatus"), "running");
    assert_true(bget(before, "/0/DeploymentStatus/Healthy"));
    json_object_put(before);

    deploy(f, "staging", "web", "web:v2", evid);
    json_object *ev = get_json(f, "/v1/evaluation/%s?namespace=%s", evid, "staging");
    assert_string_equal(sget(ev, "/Status"), "pending");
    assert_false(has(ev, "/DeploymentID"));
    json_object_put(ev);
    advance(f, T0 + SCHED);
    eval_deployment(f, "staging", evid, dep);
    json_object *d = get_json(f, "/v1/deployment/%s?namespace=%s", dep, "staging");
    assert_string_equal(sget(d, "/Status"), "running");
    assert_string_equal(sget(d, "/StatusDescription"), "Deployment is running");
    assert_int_equal(iget(d, "/TaskGroups/web/PlacedAllocs"), 1);   /* MaxParallel 1 */
    assert_string_not_equal(sget(d, "/TaskGroups/web/RequireProgressBy"), "0001-01-01T00:00:00Z");
    json_object_put(d);
    /* The new allocation: pending, health undetermined (no DeploymentStatus yet). */
    json_object *al = get_json(f, "/v1/deployment/allocations/%s?namespace=%s", dep, "staging");
    assert_int_equal(json_object_array_length(al), 1);
    assert_string_equal(sget(al, "/0/ClientStatus"), "pending");
    assert_int_equal(iget(al, "/0/JobVersion"), 1);
    assert_string_equal(sget(al, "/0/EvalID"), evid);
    assert_false(has(al, "/0/DeploymentStatus"));
    json_object_put(al);

    advance(f, T0 + HEALTH + 10);
    d = get_json(f, "/v1/deployment/%s?namespace=%s", dep, "staging");
    assert_string_equal(sget(d, "/Status"), "successful");
    assert_string_equal(sget(d, "/StatusDescription"), "Deployment completed successfully");
    assert_int_equal(iget(d, "/TaskGroups/web/HealthyAllocs"), 2);
    json_object_put(d);
    json_object *job = get_json(f, "/v1/job/web?namespace=%s%s", "staging", "");
    assert_true(bget(job, "/Stable"));
    assert_int_equal(iget(job, "/Version"), 1);
    json_object_put(job);
    /* Two new healthy allocations running; the two old ones stopped. */
    json_object *all = get_json(f, "/v1/job/web/allocations?namespace=%s%s", "staging", "");
    int run_new = 0, stopped_old = 0;
    for (size_t i = 0; i < json_object_array_length(all); i++) {
        json_object *a = json_object_array_get_idx(all, i);
        if (iget(a, "/JobVersion") == 1 && strcmp(sget(a, "/ClientStatus"), "running") == 0 && bget(a, "/DeploymentStatus/Healthy"))
            run_new++;
        if (iget(a, "/JobVersion") == 0 && strcmp(sget(a, "/DesiredStatus"), "stop") == 0) stopped_old++;
    }
    assert_int_equal(run_new, 2);
    assert_int_equal(stopped_old, 2);
    json_object_put(all);
}

static void test_lifecycle_canary(void **state) {
    fx *f = *state;
    char evid[64], dep[64], path[256], body[256];
    deploy(f, "staging", "canary", "c:v2", evid);
    advance(f, T0 + SCHED);
    eval_deployment(f, "staging", evid, dep);
    snprintf(path, sizeof(path), "/v1/deployment/promote/%s?namespace=staging", dep);
    snprintf(body, sizeof(body), "{\"DeploymentID\":\"%s\",\"Groups\":[\"c\"]}", dep);
    resp *r = call(f, "PUT", path, NULL, body);
    assert_int_equal(r->status, 500);
    assert_string_equal(r->body, "1 error occurred:\n\t* Task group \"c\" has 0/1 healthy allocations\n\n");
    /* Canary healthy: waits for promotion, forever (no deadline while it waits). */
    advance(f, T0 + 30 * MIN);
    json_object *d = get_json(f, "/v1/deployment/%s?namespace=%s", dep, "staging");
    assert_string_equal(sget(d, "/Status"), "running");
    assert_string_equal(sget(d, "/StatusDescription"), "Deployment is running but requires manual promotion");
    assert_int_equal(iget(d, "/TaskGroups/c/HealthyAllocs"), 1);
    assert_int_equal(json_object_array_length(json_object_object_get(json_object_object_get(json_object_object_get(d, "TaskGroups"), "c"), "PlacedCanaries")), 1);
    json_object_put(d);
    json_object *al = get_json(f, "/v1/deployment/allocations/%s?namespace=%s", dep, "staging");
    assert_true(bget(al, "/0/DeploymentStatus/Canary"));
    json_object_put(al);
    /* Old allocations untouched until promotion. */
    json_object *all = get_json(f, "/v1/job/canary/allocations?namespace=%s%s", "staging", "");
    int old_running = 0;
    for (size_t i = 0; i < json_object_array_length(all); i++)
        if (iget(json_object_array_get_idx(all, i), "/JobVersion") == 0 &&
            strcmp(sget(json_object_array_get_idx(all, i), "/DesiredStatus"), "run") == 0)
            old_running++;
    assert_int_equal(old_running, 3);
    json_object_put(all);
    r = call(f, "PUT", path, NULL, body);
    assert_int_equal(r->status, 200);
    d = get_json(f, "/v1/deployment/%s?namespace=%s", dep, "staging");
    assert_true(bget(d, "/TaskGroups/c/Promoted"));
    assert_string_equal(sget(d, "/StatusDescription"), "Deployment is running");
    json_object_put(d);
    advance(f, f->now + 2 * HEALTH);
    d = get_json(f, "/v1/deployment/%s?namespace=%s", dep, "staging");
    assert_string_equal(sget(d, "/Status"), "successful");
    assert_int_equal(iget(d, "/TaskGroups/c/HealthyAllocs"), 3);
    json_object_put(d);

    /* AutoPromote: promoted by the server once the canary is healthy. */
    deploy(f, "staging", "auto", "a:v2", evid);
    advance(f, f->now + SCHED);
    eval_deployment(f, "staging", evid, dep);
    d = get_json(f, "/v1/deployment/%s?namespace=%s", dep, "staging");
    assert_string_equal(sget(d, "/StatusDescription"), "Deployment is running pending automatic promotion");
    json_object_put(d);
    advance(f, f->now + 3 * HEALTH);
    d = get_json(f, "/v1/deployment/%s?namespace=%s", dep, "staging");
    assert_string_equal(sget(d, "/Status"), "successful");
    assert_true(bget(d, "/TaskGroups/a/Promoted"));
    json_object_put(d);
}

static void test_lifecycle_unhealthy_auto_revert(void **state) {
    fx *f = *state;
    char evid[64], dep[64];
    assert_int_equal(sim_behaviour_set(f->st, "staging", "web", 1, SIM_MODE_UNHEALTHY, 200), 0);
    deploy(f, "staging", "web", "web:broken", evid);
    advance(f, T0 + SCHED);
    eval_deployment(f, "staging", evid, dep);
    advance(f, T0 + SCHED + 200);
    json_object *d = get_json(f, "/v1/deployment/%s?namespace=%s", dep, "staging");
    assert_string_equal(sget(d, "/Status"), "failed");
    assert_string_equal(sget(d, "/StatusDescription"),
                        "Failed due to unhealthy allocations - rolling back to job version 0");
    assert_int_equal(iget(d, "/TaskGroups/web/UnhealthyAllocs"), 1);
    json_object_put(d);
    /* The failed allocation tells why (§5 TaskStates / events). */
    json_object *al = get_json(f, "/v1/deployment/allocations/%s?namespace=%s", dep, "staging");
    assert_string_equal(sget(al, "/0/ClientStatus"), "failed");
    assert_false(bget(al, "/0/DeploymentStatus/Healthy"));
    assert_string_equal(sget(al, "/0/TaskStates/web/State"), "dead");
    assert_true(bget(al, "/0/TaskStates/web/Failed"));
    assert_string_equal(sget(al, "/0/TaskStates/web/Events/2/Type"), "Driver Failure");
    assert_non_null(strstr(sget(al, "/0/TaskStates/web/Events/2/DriverError"), "Failed to pull `web:broken`"));
    json_object_put(al);
    /* Auto-revert: version 2 (a copy of stable version 0) and a new deployment. */
    json_object *job = get_json(f, "/v1/job/web?namespace=%s%s", "staging", "");
    assert_int_equal(iget(job, "/Version"), 2);
    assert_string_equal(sget(job, "/TaskGroups/0/Tasks/0/Config/image"), "web:v1");
    json_object_put(job);
    advance(f, f->now + SCHED);
    json_object *latest = get_json(f, "/v1/job/web/deployment?namespace=%s%s", "staging", "");
    assert_string_not_equal(sget(latest, "/ID"), dep);
    assert_int_equal(iget(latest, "/JobVersion"), 2);
    json_object_put(latest);
    advance(f, f->now + 2 * HEALTH);
    latest = get_json(f, "/v1/job/web/deployment?namespace=%s%s", "staging", "");
    assert_string_equal(sget(latest, "/Status"), "successful");
    json_object_put(latest);
    json_object *deps = get_json(f, "/v1/job/web/deployments?namespace=%s%s", "staging", "");
    assert_int_equal(json_object_array_length(deps), 3);   /* loaded, failed, revert */
    json_object_put(deps);
}

static void test_lifecycle_progress_deadline(void **state) {
    fx *f = *state;
    char evid[64], dep[64];
    /* never placed: nothing happens until RequireProgressBy (10 min default). */
    assert_int_equal(sim_behaviour_set(f->st, "staging", "web", -1, SIM_MODE_NEVER_PLACED, -1), 0);
    deploy(f, "staging", "web", "web:v2", evid);
    advance(f, T0 + SCHED);
    eval_deployment(f, "staging", evid, dep);
    /* The eval says why: the group could not be placed (§6). */
    json_object *ev = get_json(f, "/v1/evaluation/%s?namespace=%s", evid, "staging");
    assert_int_equal(iget(ev, "/FailedTGAllocs/web/NodesExhausted"), 1);
    assert_int_equal(iget(ev, "/FailedTGAllocs/web/CoalescedFailures"), 1);
    json_object_put(ev);
    advance(f, T0 + SCHED + 10 * MIN - 1);
    json_object *d = get_json(f, "/v1/deployment/%s?namespace=%s", dep, "staging");
    assert_string_equal(sget(d, "/Status"), "running");
    assert_int_equal(iget(d, "/TaskGroups/web/PlacedAllocs"), 0);
    json_object_put(d);
    assert_int_equal(sim_state_next_event(f->st), T0 + SCHED + 10 * MIN);
    advance(f, T0 + SCHED + 10 * MIN);
    d = get_json(f, "/v1/deployment/%s?namespace=%s", dep, "staging");
    assert_string_equal(sget(d, "/Status"), "failed");
    /* AutoRevert, but version 0 is stable with a different spec. */
    assert_string_equal(sget(d, "/StatusDescription"), "Failed due to progress deadline - rolling back to job version 0");
    json_object_put(d);

    /* flapping: restarts (OOM) until HealthyDeadline (5 min) marks it unhealthy. */
    sim_behaviour_clear(f->st);
    assert_int_equal(sim_behaviour_set(f->st, "default", "web", -1, SIM_MODE_FLAPPING, 30000), 0);
    deploy(f, "default", "web", "web:v3", evid);
    int64_t t = f->now;
    advance(f, t + SCHED);
    eval_deployment(f, "default", evid, dep);
    advance(f, t + SCHED + 2 * MIN);
    json_object *al = get_json(f, "/v1/deployment/allocations/%s?namespace=%s", dep, "default");
    assert_string_equal(sget(al, "/0/ClientStatus"), "running");
    assert_int_equal(iget(al, "/0/TaskStates/web/Restarts"), 4);
    json_object_put(al);
    advance(f, t + SCHED + 5 * MIN);
    d = get_json(f, "/v1/deployment/%s?namespace=%s", dep, "default");
    assert_string_equal(sget(d, "/Status"), "failed");
    /* No AutoRevert in default/web: the plain description. */
    assert_string_equal(sget(d, "/StatusDescription"), "Failed due to unhealthy allocations");
    json_object_put(d);
}

static void test_lifecycle_superseded_stop_nodeploy(void **state) {
    fx *f = *state;
    char ev1[64], ev2[64], d1[64], d2[64];
    deploy(f, "staging", "web", "web:v2", ev1);
    advance(f, T0 + SCHED);
    eval_deployment(f, "staging", ev1, d1);
    deploy(f, "staging", "web", "web:v3", ev2);
    advance(f, T0 + 2 * SCHED);
    json_object *d = get_json(f, "/v1/deployment/%s?namespace=%s", d1, "staging");
    assert_string_equal(sget(d, "/Status"), "cancelled");
    assert_string_equal(sget(d, "/StatusDescription"), "Cancelled due to newer version of job");
    json_object_put(d);
    eval_deployment(f, "staging", ev2, d2);
    assert_string_not_equal(d1, d2);

    /* Stop: a new version with Stop, deployment cancelled, allocs stopped, job dead. */
    resp *r = call(f, "DELETE", "/v1/job/web?namespace=staging", NULL, NULL);
    assert_int_equal(r->status, 200);
    assert_true(strlen(sget(r->json, "/EvalID")) > 0);
    advance(f, f->now + SCHED);
    d = get_json(f, "/v1/deployment/%s?namespace=%s", d2, "staging");
    assert_string_equal(sget(d, "/StatusDescription"), "Cancelled because job is stopped");
    json_object_put(d);
    json_object *job = get_json(f, "/v1/job/web?namespace=%s%s", "staging", "");
    assert_true(bget(job, "/Stop"));
    assert_string_equal(sget(job, "/Status"), "dead");
    assert_int_equal(iget(job, "/Version"), 3);
    json_object_put(job);
    json_object *all = get_json(f, "/v1/job/web/allocations?namespace=%s%s", "staging", "");
    for (size_t i = 0; i < json_object_array_length(all); i++)
        assert_string_equal(sget(json_object_array_get_idx(all, i), "/DesiredStatus"), "stop");
    json_object_put(all);
    r = call(f, "DELETE", "/v1/job/web?namespace=staging&purge=true", NULL, NULL);
    assert_int_equal(r->status, 200);
    assert_int_equal(call(f, "GET", "/v1/job/web?namespace=staging", NULL, NULL)->status, 404);

    /* MaxParallel 0: no deployment; allocations replaced at once. */
    char ev3[64], d3[64];
    deploy(f, "staging", "nodeploy", "n:v2", ev3);
    advance(f, f->now + SCHED);
    eval_deployment(f, "staging", ev3, d3);
    assert_string_equal(d3, "");
    assert_string_equal(call(f, "GET", "/v1/job/nodeploy/deployment?namespace=staging", NULL, NULL)->body, "null");
    all = get_json(f, "/v1/evaluation/%s/allocations?namespace=%s", ev3, "staging");
    assert_int_equal(json_object_array_length(all), 2);
    assert_false(has(all, "/0/DeploymentStatus"));
    json_object_put(all);

    /* Revert to version 0 creates version N+1 with v0's spec; reverting to
     * a version with the current spec is a no-op. */
    r = call(f, "PUT", "/v1/job/nodeploy/revert?namespace=staging", NULL, "{\"JobID\":\"nodeploy\",\"JobVersion\":0,\"EnforcePriorVersion\":1}");
    assert_int_equal(r->status, 200);
    job = get_json(f, "/v1/job/nodeploy?namespace=%s%s", "staging", "");
    assert_int_equal(iget(job, "/Version"), 2);
    assert_string_equal(sget(job, "/TaskGroups/0/Tasks/0/Config/image"), "n:v1");
    assert_false(bget(job, "/Stable"));
    json_object_put(job);
    r = call(f, "PUT", "/v1/job/nodeploy/revert?namespace=staging", NULL, "{\"JobID\":\"nodeploy\",\"JobVersion\":0}");
    assert_int_equal(r->status, 200);
    job = get_json(f, "/v1/job/nodeploy?namespace=%s%s", "staging", "");
    assert_int_equal(iget(job, "/Version"), 2);
    json_object_put(job);
}

static void test_plan_and_preserve(void **state) {
    fx *f = *state;
    /* Unchanged: Diff None, everything ignored. */
    json_object *job = get_json(f, "/v1/job/web?namespace=%s%s", "staging", "");
    json_object *b = json_object_new_object();
    json_object_object_add(b, "Job", json_object_get(job));
    json_object_object_add(b, "Diff", json_object_new_boolean(true));
    resp *r = call(f, "PUT", "/v1/job/web/plan?namespace=staging", NULL, json_object_to_json_string(b));
    assert_int_equal(r->status, 200);
    assert_string_equal(sget(r->json, "/Diff/Type"), "None");
    assert_int_equal(iget(r->json, "/Annotations/DesiredTGUpdates/web/Ignore"), 2);
    assert_int_equal(iget(r->json, "/JobModifyIndex"), iget(job, "/JobModifyIndex"));
    /* Image change: Edited, destructive, annotated. */
    json_object *cfg;
    json_pointer_get(job, "/TaskGroups/0/Tasks/0/Config", &cfg);
    json_object_object_add(cfg, "image", json_object_new_string("web:v2"));
    r = call(f, "PUT", "/v1/job/web/plan?namespace=staging", NULL, json_object_to_json_string(b));
    assert_string_equal(sget(r->json, "/Diff/Type"), "Edited");
    assert_string_equal(sget(r->json, "/Diff/TaskGroups/0/Tasks/0/Annotations/0"), "forces create/destroy update");
    assert_string_equal(sget(r->json, "/Diff/TaskGroups/0/Tasks/0/Objects/0/Name"), "Config");
    assert_string_equal(sget(r->json, "/Diff/TaskGroups/0/Tasks/0/Objects/0/Fields/0/Old"), "web:v1");
    assert_string_equal(sget(r->json, "/Diff/TaskGroups/0/Tasks/0/Objects/0/Fields/0/New"), "web:v2");
    assert_int_equal(iget(r->json, "/Annotations/DesiredTGUpdates/web/DestructiveUpdate"), 2);
    assert_int_equal(iget(r->json, "/Diff/TaskGroups/0/Updates/create~1destroy update"), 2);
    /* Without Diff:true no Diff key; plan changes nothing. */
    json_object_object_del(b, "Diff");
    r = call(f, "PUT", "/v1/job/web/plan?namespace=staging", NULL, json_object_to_json_string(b));
    assert_false(has(r->json, "/Diff"));
    json_object *again = get_json(f, "/v1/job/web?namespace=%s%s", "staging", "");
    assert_int_equal(iget(again, "/Version"), 0);
    json_object_put(again);
    /* PreserveCounts: the live Count (2) wins over the submitted 5, and the
     * count-only change still makes a new, identical version (§13). */
    json_object *tg0;
    json_pointer_get(job, "/TaskGroups/0", &tg0);
    json_object_object_add(tg0, "Count", json_object_new_int(5));
    json_object_object_add(cfg, "image", json_object_new_string("web:v1"));
    json_object_object_add(b, "PreserveCounts", json_object_new_boolean(true));
    r = call(f, "PUT", "/v1/jobs?namespace=staging", NULL, json_object_to_json_string(b));
    assert_int_equal(r->status, 200);
    again = get_json(f, "/v1/job/web?namespace=%s%s", "staging", "");
    assert_int_equal(iget(again, "/Version"), 1);
    assert_int_equal(iget(again, "/TaskGroups/0/Count"), 2);
    json_object_put(again);
    /* Without PreserveCounts the submitted count is taken. */
    json_object_object_del(b, "PreserveCounts");
    r = call(f, "PUT", "/v1/jobs?namespace=staging", NULL, json_object_to_json_string(b));
    again = get_json(f, "/v1/job/web?namespace=%s%s", "staging", "");
    assert_int_equal(iget(again, "/Version"), 2);
    assert_int_equal(iget(again, "/TaskGroups/0/Count"), 5);
    json_object_put(again);
    /* A brand-new job plans as Added / Place. */
    r = call(f, "PUT", "/v1/job/fresh/plan?namespace=staging", NULL,
             "{\"Diff\":true,\"Job\":{\"ID\":\"fresh\",\"TaskGroups\":[{\"Name\":\"g\",\"Count\":2,\"Tasks\":[{\"Name\":\"t\",\"Driver\":\"docker\"}]}]}}");
    assert_string_equal(sget(r->json, "/Diff/Type"), "Added");
    assert_int_equal(iget(r->json, "/Annotations/DesiredTGUpdates/g/Place"), 2);
    assert_int_equal(iget(r->json, "/JobModifyIndex"), 0);
    json_object_put(b);
    json_object_put(job);
}

/* ---------- blocking queries ---------- */

static void test_blocking(void **state) {
    fx *f = *state;
    char evid[64], dep[64], path[256];
    deploy(f, "staging", "web", "web:v2", evid);
    advance(f, T0 + SCHED);
    eval_deployment(f, "staging", evid, dep);
    snprintf(path, sizeof(path), "/v1/deployment/%s?namespace=staging", dep);
    resp *r = call(f, "GET", path, NULL, NULL);
    uint64_t idx = r->index;
    assert_true(r->has_index);
    snprintf(path, sizeof(path), "/v1/deployment/%s?namespace=staging&index=%llu&wait=10s", dep, (unsigned long long)idx);
    int64_t parked_at = f->now;
    r = call_full(f, "GET", path, NULL, NULL, parked_at, false);
    assert_int_equal(r->rc, SIM_API_PARK);
    assert_int_equal(r->deadline, parked_at + 10000);
    /* Time passes, the deployment changes: the parked query answers with a newer index. */
    advance(f, T0 + HEALTH + 10);
    r = call_full(f, "GET", path, NULL, NULL, parked_at, false);
    assert_int_equal(r->rc, SIM_API_DONE);
    assert_true(r->index > idx);
    assert_string_equal(sget(r->json, "/Status"), "successful");
    /* The hang fault: a blocking query never answers (no deadline), plain reads still do. */
    json_object *hang = json_tokener_parse("{\"hang_blocking\":true}");
    assert_int_equal(sim_ctl_set_faults(&f->ctl, hang, NULL, 0), 0);
    json_object_put(hang);
    r = call_full(f, "GET", path, NULL, NULL, parked_at, false);
    assert_int_equal(r->rc, SIM_API_PARK);
    assert_int_equal(r->deadline, INT64_MAX);
    assert_int_equal(call(f, "GET", "/v1/job/web?namespace=staging", NULL, NULL)->rc, SIM_API_DONE);
}

/* ---------- ACL ---------- */

static void test_acl(void **state) {
    fx *f = *state;
    static const char *const JOB_STAGING = "{\"Job\":{\"ID\":\"n2\",\"Namespace\":\"staging\",\"TaskGroups\":[{\"Name\":\"g\",\"Tasks\":[{\"Name\":\"t\",\"Driver\":\"docker\"}]}]}}";
    static const char *const JOB_DEFAULT = "{\"Job\":{\"ID\":\"n3\",\"TaskGroups\":[{\"Name\":\"g\",\"Tasks\":[{\"Name\":\"t\",\"Driver\":\"docker\"}]}]}}";
    static const struct {
        const char *token, *method, *path, *body;
        int status;
    } rows[] = {
        {NULL, "GET", "/v1/job/web?namespace=staging", NULL, 403},
        {"wrong", "GET", "/v1/job/web?namespace=staging", NULL, 403},
        {"mgmt-secret", "GET", "/v1/job/web?namespace=staging", NULL, 200},
        {"bot-secret", "GET", "/v1/job/web?namespace=staging", NULL, 200},
        {"bot-secret", "GET", "/v1/job/web?namespace=default", NULL, 403},
        {"bot-secret", "GET", "/v1/job/web", NULL, 403},   /* no ?namespace= → default (§1.3) */
        {"bot-secret", "PUT", "/v1/jobs?namespace=staging", JOB_STAGING, 200},
        {"bot-secret", "PUT", "/v1/jobs", JOB_DEFAULT, 403},
        {"bot-secret", "PUT", "/v1/jobs", JOB_STAGING, 200},   /* Job.Namespace decides */
        {"ro-secret", "GET", "/v1/job/web?namespace=default", NULL, 200},
        {"ro-secret", "GET", "/v1/jobs?namespace=staging", NULL, 200},
        {"ro-secret", "PUT", "/v1/jobs?namespace=staging", JOB_STAGING, 403},
        {"ro-secret", "DELETE", "/v1/job/web?namespace=staging", NULL, 403},
        {"fine-secret", "PUT", "/v1/jobs?namespace=staging", JOB_STAGING, 200},   /* register-job (2.0) */
        {"fine-secret", "PUT", "/v1/job/n2/plan?namespace=staging", JOB_STAGING, 403},   /* no plan-job */
        {"fine-secret", "GET", "/v1/job/web?namespace=default", NULL, 403},   /* deny */
        {NULL, "GET", "/v1/status/leader", NULL, 200},   /* no ACL */
        {NULL, "GET", "/v1/acl/token/self", NULL, 200},   /* anonymous token (§13) */
        {"wrong", "GET", "/v1/acl/token/self", NULL, 403},
        {NULL, "GET", "/_sim/status", NULL, 200},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        resp *r = call(f, rows[i].method, rows[i].path, rows[i].token, rows[i].body);
        if (r->status != rows[i].status)
            fail_msg("row %zu %s %s %s -> %d [%s], want %d", i, rows[i].token ? rows[i].token : "(none)",
                     rows[i].method, rows[i].path, r->status, r->body, rows[i].status);
        if (r->status == 403) assert_string_equal(r->body, "Permission denied");
    }
    resp *r = call(f, "GET", "/v1/acl/token/self", "bot-secret", NULL);
    assert_string_equal(sget(r->json, "/AccessorID"), "acc-bot");
    assert_string_equal(sget(r->json, "/Type"), "client");
    assert_string_equal(sget(r->json, "/Policies/0"), "deploy");
    r = call(f, "GET", "/v1/acl/token/self", NULL, NULL);
    assert_string_equal(sget(r->json, "/AccessorID"), "anonymous");
    /* Authorization: Bearer works too. */
    char raw[] = "GET /v1/job/web?namespace=staging HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer bot-secret\r\n\r\n";
    sim_http_parser p;
    sim_http_parser_init(&p, 0, 0);
    size_t used;
    assert_int_equal(sim_http_parse(&p, raw, strlen(raw), &used), SIM_HTTP_DONE);
    sim_response out;
    sim_response_init(&out);
    int64_t dl;
    sim_api_handle_ctl(f->st, &f->ctl, &p.req, f->now, f->now, false, &out, &dl);
    assert_int_equal(out.status, 200);
    sim_response_free(&out);
    sim_http_parser_free(&p);
    /* ?token= is not a way to authenticate. */
    assert_int_equal(call(f, "GET", "/v1/job/web?namespace=staging&token=bot-secret", NULL, NULL)->status, 403);
    /* Lists show only readable namespaces; ID reads hide other namespaces' objects. */
    r = call(f, "GET", "/v1/jobs?namespace=*", "bot-secret", NULL);
    for (size_t i = 0; i < json_object_array_length(r->json); i++)
        assert_string_equal(sget(json_object_array_get_idx(r->json, i), "/Namespace"), "staging");
    json_object *d = sim_job_latest_deployment(f->st, "default", "web", &(uint64_t){0});
    char path[256];
    snprintf(path, sizeof(path), "/v1/deployment/%s?namespace=staging", sget(d, "/ID"));
    r = call(f, "GET", path, "bot-secret", NULL);
    assert_int_equal(r->status, 404);
    assert_string_equal(r->body, "deployment not found");
    snprintf(path, sizeof(path), "/v1/deployment/fail/%s?namespace=staging", sget(d, "/ID"));
    assert_int_equal(call(f, "PUT", path, "bot-secret", NULL)->status, 403);   /* the deployment's own namespace */
    json_object_put(d);
    /* Allocations: another namespace is "unknown" (§13), the same one needs read-job. */
    json_object *al = sim_job_allocations(f->st, "default", "web", &(uint64_t){0});
    snprintf(path, sizeof(path), "/v1/allocation/%s?namespace=staging", sget(al, "/0/ID"));
    r = call(f, "GET", path, "bot-secret", NULL);
    assert_int_equal(r->status, 500);
    assert_non_null(strstr(r->body, "Unknown allocation \""));
    snprintf(path, sizeof(path), "/v1/allocation/%s?namespace=default", sget(al, "/0/ID"));
    assert_int_equal(call(f, "GET", path, "bot-secret", NULL)->status, 403);
    assert_int_equal(call(f, "GET", path, "ro-secret", NULL)->status, 200);
    json_object_put(al);
    /* ACLs off: the placeholder identity. */
    f->ctl.acl = false;
    r = call(f, "GET", "/v1/acl/token/self", NULL, NULL);
    assert_int_equal(r->status, 200);
    assert_string_equal(sget(r->json, "/AccessorID"), "acls-disabled");
}

/* ---------- faults and control ---------- */

static void test_faults(void **state) {
    fx *f = *state;
    char err[256];
    json_object *o = json_tokener_parse("{\"error_ratio\":1}");
    assert_int_equal(sim_ctl_set_faults(&f->ctl, o, err, sizeof(err)), 0);
    json_object_put(o);
    for (int i = 0; i < 20; i++) {
        resp *r = call(f, "GET", "/v1/job/web?namespace=staging", NULL, NULL);
        assert_int_equal(r->status, 500);
        assert_string_equal(r->body, "No cluster leader");
    }
    /* The control API is never faulted. */
    assert_int_equal(call(f, "GET", "/_sim/faults", NULL, NULL)->status, 200);
    resp *r = call(f, "POST", "/_sim/faults", NULL, "{\"error_ratio\":0,\"reset_ratio\":1}");
    assert_int_equal(r->status, 200);
    for (int i = 0; i < 5; i++) assert_int_equal(call(f, "GET", "/v1/status/leader", NULL, NULL)->fault, SIM_FAULT_RESET);
    call(f, "POST", "/_sim/faults", NULL, "{\"reset_ratio\":0,\"truncate_ratio\":1,\"latency_ms\":250}");
    r = call(f, "GET", "/v1/status/leader", NULL, NULL);
    assert_int_equal(r->fault, SIM_FAULT_TRUNCATE);
    assert_int_equal(r->delay, 250);
    assert_int_equal(r->status, 200);
    /* A ratio of 0.5 fires sometimes, not always (seeded dice). */
    call(f, "POST", "/_sim/faults", NULL, "{\"truncate_ratio\":0,\"latency_ms\":0,\"error_ratio\":0.5}");
    int errors = 0;
    for (int i = 0; i < 200; i++) errors += call(f, "GET", "/v1/status/leader", NULL, NULL)->status == 500;
    assert_true(errors > 50 && errors < 150);
    /* Bad fault values are refused and change nothing. */
    r = call(f, "POST", "/_sim/faults", NULL, "{\"error_ratio\":2}");
    assert_int_equal(r->status, 400);
    r = call(f, "GET", "/_sim/faults", NULL, NULL);
    assert_true(json_object_get_double(json_object_object_get(r->json, "error_ratio")) == 0.5);
    r = call(f, "POST", "/_sim/reset", NULL, NULL);
    assert_int_equal(r->status, 200);
    r = call(f, "GET", "/_sim/faults", NULL, NULL);
    assert_true(json_object_get_double(json_object_object_get(r->json, "error_ratio")) == 0);
}

static void test_control(void **state) {
    fx *f = *state;
    static const struct {
        const char *method, *path, *body;
        int status;
    } rows[] = {
        {"POST", "/_sim/behaviour", "{\"namespace\":\"staging\",\"job\":\"web\",\"version\":1,\"mode\":\"unhealthy\",\"after_ms\":100}", 200},
        {"POST", "/_sim/behaviour", "[{\"job\":\"api\",\"version\":null,\"mode\":\"flapping\"}]", 200},
        {"POST", "/_sim/behaviour", "{\"job\":\"web\",\"mode\":\"sideways\"}", 400},
        {"POST", "/_sim/behaviour", "{\"mode\":\"healthy\"}", 400},
        {"POST", "/_sim/behaviour", "{\"job\":\"web\",\"mode\":\"healthy\",\"version\":-1}", 400},
        {"POST", "/_sim/behaviour", "not json", 400},
        {"POST", "/_sim/behaviour", "", 400},
        {"PATCH", "/_sim/behaviour", NULL, 405},
        {"GET", "/_sim/nothing", NULL, 404},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        resp *r = call(f, rows[i].method, rows[i].path, NULL, rows[i].body);
        if (r->status != rows[i].status) fail_msg("row %zu -> %d [%s], want %d", i, r->status, r->body, rows[i].status);
    }
    resp *r = call(f, "GET", "/_sim/behaviour", NULL, NULL);
    assert_int_equal(json_object_array_length(r->json), 2);
    assert_string_equal(sget(r->json, "/0/mode"), "unhealthy");
    assert_int_equal(iget(r->json, "/0/version"), 1);
    assert_string_equal(sget(r->json, "/1/namespace"), "default");
    assert_null(json_object_object_get(json_object_array_get_idx(r->json, 1), "version"));
    /* The request log: what the server recorded, in order, bounded. */
    for (int i = 0; i < SIM_LOG_CAP + 3; i++) sim_ctl_log(&f->ctl, i, "GET", "/v1/job/web?namespace=staging", 200, NULL);
    sim_ctl_log(&f->ctl, 9, "PUT", "/v1/jobs?namespace=staging", 0, "reset");
    r = call(f, "GET", "/_sim/requests", NULL, NULL);
    assert_int_equal(json_object_array_length(r->json), SIM_LOG_CAP);
    json_object *last = json_object_array_get_idx(r->json, SIM_LOG_CAP - 1);
    assert_string_equal(sget(last, "/method"), "PUT");
    assert_string_equal(sget(last, "/fault"), "reset");
    assert_int_equal(iget(last, "/seq"), SIM_LOG_CAP + 4);
    call(f, "DELETE", "/_sim/requests", NULL, NULL);
    assert_int_equal(json_object_array_length(call(f, "GET", "/_sim/requests", NULL, NULL)->json), 0);
    r = call(f, "GET", "/_sim/status", NULL, NULL);
    assert_int_equal(iget(r->json, "/now_ms"), T0);
    /* Bad tokens files are refused with a reason. */
    char err[256];
    assert_int_not_equal(sim_ctl_load_acl(&f->ctl, "{}", 2, err, sizeof(err)), 0);
    assert_int_not_equal(sim_ctl_load_acl(&f->ctl, "[{\"SecretID\":\"a\",\"Type\":\"root\"}]", 34, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "Type"));
    assert_false(f->ctl.acl);
    /* Without a ctl the /_sim/ routes do not exist. */
    char raw[] = "GET /_sim/status HTTP/1.1\r\nHost: x\r\n\r\n";
    sim_http_parser p;
    sim_http_parser_init(&p, 0, 0);
    size_t used;
    sim_http_parse(&p, raw, strlen(raw), &used);
    sim_response out;
    sim_response_init(&out);
    int64_t dl;
    sim_api_handle(f->st, &p.req, f->now, f->now, false, &out, &dl);
    assert_int_equal(out.status, 404);
    sim_response_free(&out);
    sim_http_parser_free(&p);
}

static int cleanup(void **state) {
    (void)state;
    resp *r = call_full(NULL, NULL, NULL, NULL, NULL, 0, false);
    (void)r;
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_field_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lifecycle_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lifecycle_canary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lifecycle_unhealthy_auto_revert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lifecycle_progress_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lifecycle_superseded_stop_nodeploy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_and_preserve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acl, setup_acl, teardown),
        cmocka_unit_test_setup_teardown(test_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_control, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, cleanup);
}
