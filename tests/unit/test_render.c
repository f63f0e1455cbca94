/* bot/render.c: events and errors as console text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "render.h"

static char *render(const char *json) {
    static char out[1024];
    json_object *ev = json_tokener_parse(json);
    nm_buf b;
    nm_buf_init(&b, 0);
    int rc = render_event_console(ev, &b);
    snprintf(out, sizeof(out), "%s", rc == 0 && b.data ? b.data : "<none>");
    nm_buf_free(&b);
    json_object_put(ev);
    return out;
}

static void test_request_events(void **state) {
    (void)state;
    assert_string_equal(render("{\"type\":\"request\",\"req\":3,\"state\":\"running\",\"phase\":\"rolling\","
                               "\"job_version\":4,\"detail\":\"1/2 healthy\"}"),
                        "D-3 running (rolling): (job version 4) 1/2 healthy\n");
    assert_string_equal(render("{\"type\":\"request\",\"req\":3,\"state\":\"succeeded\",\"job\":\"web\","
                               "\"version\":\"v2\",\"env\":\"staging\",\"job_version\":4}"),
                        "D-3 succeeded: web v2 is live in staging (job version 4)\n");
    assert_string_equal(render("{\"type\":\"request\",\"req\":9,\"state\":\"failed\",\"reason\":\"conflict\","
                               "\"detail\":\"the job changed\"}"),
                        "D-9 failed [conflict]: the job changed\n");
}

static void test_status_event(void **state) {
    (void)state;
    const char *out = render("{\"type\":\"status\",\"job\":\"web\",\"envs\":["
                             "{\"env\":\"staging\",\"version\":\"v2\",\"job_version\":1,\"stable\":true,"
                             "\"deployment\":{\"status\":\"successful\",\"counts\":\"2/2 healthy\"}},"
                             "{\"env\":\"production\",\"error\":\"not deployed\"}]}");
    assert_non_null(strstr(out, "web:\n"));
    assert_non_null(strstr(out, "  staging      v2         job version 1, stable; deployment successful (2/2 healthy)\n"));
    assert_non_null(strstr(out, "  production   not deployed\n"));
}

static void test_bad_events_render_nothing(void **state) {
    (void)state;
    assert_string_equal(render("[1,2]"), "<none>");
    assert_string_equal(render("{\"type\":\"mystery\"}"), "<none>");
    assert_string_equal(render("{}"), "<none>");
    /* Wrong types degrade to empty fields, never a crash. */
    assert_string_equal(render("{\"type\":\"request\",\"req\":\"x\",\"state\":7}"), "D-0 :\n");
    assert_string_equal(render("{\"type\":\"status\",\"job\":\"web\",\"envs\":{\"a\":1}}"), "web:\n");
}

static void test_cmd_error(void **state) {
    (void)state;
    cmd_error e = {.code = CMD_ERR_BAD_VERSION, .usage = "deploy JOB VERSION to ENV"};
    snprintf(e.message, sizeof(e.message), "version '-x' is not a valid tag");
    nm_buf b;
    nm_buf_init(&b, 0);
    render_cmd_error(&e, &b);
    assert_string_equal(b.data, "error: version '-x' is not a valid tag [bad_version]\nusage: deploy JOB VERSION to ENV\n");
    nm_buf_free(&b);
}

static config *discovery_config(void) {
    static const char yaml[] =
        "redis: redis://127.0.0.1\npostgres: x\n"
        "people:\n  bob: [slack:U1, shell:bob]\n  carol: [slack:U2]\n  alice: [shell:alice]\n"
        "groups:\n  sre: [bob, carol]\n  developers: [alice, slack:U9]\n"
        "environments:\n"
        "  staging: {nomad: {address: http://n, namespace: staging}, deployers: [developers, sre]}\n"
        "  production:\n"
        "    nomad: {address: http://n, region: eu}\n"
        "    deployers: [sre]\n    approvals: 2\n    approvers: [sre]\n    promote_from: staging\n"
        "    channels: [slack:C0PROD]\n    freeze: [\"Fri 16:00 - Mon 08:00 UTC\"]\n"
        "jobs:\n  web: {tasks: [web, proxy], image: r.example.com/web}\n";
    config *cfg;
    char err[256];
    assert_int_equal(config_parse(yaml, sizeof(yaml) - 1, "t", &config_resolver_system, &cfg, err, sizeof(err)), 0);
    return cfg;
}

static void test_discovery(void **state) {
    (void)state;
    config *cfg = discovery_config();
    nm_buf b;
    nm_buf_init(&b, 0);
    render_whoami(cfg, "shell:bob", "shell:console", &b);
    assert_string_equal(b.data, "you are shell:bob (bob); groups: sre\n"
                                "  staging      may deploy\n"
                                "  production   may deploy (by promote from staging) with 2 approvals; may approve; "
                                "not from shell:console\n");
    nm_buf_reset(&b);
    render_whoami(cfg, "slack:U9", "slack:C0PROD", &b);
    assert_string_equal(b.data, "you are slack:U9 (not listed under people:); groups: developers\n"
                                "  staging      may deploy\n"
                                "  production   may not deploy\n");
    nm_buf_reset(&b);
    render_envs(cfg, &b);
    assert_string_equal(b.data, "staging      namespace staging; deployers: developers, sre; no approval needed\n"
                                "production   namespace default, region eu; deployers: sre; 2 approvals from sre; "
                                "only promote from staging; freezes: Fri 16:00 - Mon 08:00 UTC\n");
    nm_buf_reset(&b);
    render_jobs(cfg, &b);
    assert_string_equal(b.data, "web          image r.example.com/web:<version>, Nomad job web, tasks web, proxy\n");
    nm_buf_free(&b);
    config_free(cfg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_events),
        cmocka_unit_test(test_status_event),
        cmocka_unit_test(test_bad_events_render_nothing),
        cmocka_unit_test(test_cmd_error),
        cmocka_unit_test(test_discovery),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
