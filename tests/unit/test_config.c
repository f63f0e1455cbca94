/* config/: the YAML loader, its errors, ${...} expansion and the pure helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "config.h"

/* A resolver over fixed tables, so tests never touch the real environment. */
static int fake_getenv(void *ud, const char *name, char **out) {
    (void)ud;
    static const char *vars[][2] = {{"NOMAD_TOKEN", "s3cr3t-token"}, {"EMPTY", ""}, {"PORT", "6380"}};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        if (strcmp(vars[i][0], name) == 0) return (*out = strdup(vars[i][1])) ? 0 : -1;
    return -1;
}

static int fake_readfile(void *ud, const char *path, char **out) {
    (void)ud;
    if (strcmp(path, "/run/secrets/hmac") == 0) return (*out = strdup("0123456789abcdef0123456789abcdef\n")) ? 0 : -1;
    if (strcmp(path, "/run/secrets/two-newlines") == 0) return (*out = strdup("abc\n\n")) ? 0 : -1;
    return -1;
}

static const config_resolver fake = {.getenv = fake_getenv, .readfile = fake_readfile};

static int parse(const char *yaml, config **cfg, char *err, size_t errlen) {
    return config_parse(yaml, strlen(yaml), "t.yaml", &fake, cfg, err, errlen);
}

#define BASE "redis: redis://127.0.0.1:6379/0\npostgres: dbname=nomatron\n"

static const char full[] =
    "listen: 127.0.0.1:9090\n"
    "public_url: https://nomatron.example.com\n"
    "redis: redis://:pw@127.0.0.1:${PORT}/2\n"
    "postgres: postgresql://nomatron@127.0.0.1/nomatron\n"
    "postgres_migrate: ${MIGRATE_DSN:-}\n"
    "workers: 8\n"
    "queue: {lease: 5s, reconcile: 2s}\n"
    "secrets:\n"
    "  hmac_keys: [{id: k1, secret: \"${file:/run/secrets/hmac}\"}]\n"
    "shell: {allow_as: true}\n"
    "chat:\n"
    "  slack:\n"
    "    app_token: xapp-1\n"
    "    bot_token: xoxb-1\n"
    "    team_id: T0123\n"
    "    api_url: ${SLACK_API_URL:-https://slack.com/api/}\n"
    "  mattermost: {url: https://chat.example.com, token: t}\n"
    "people:\n"
    "  bob:   [slack:U01BBBB, mattermost:8x3kq1]\n"
    "  carol: [slack:U01CCCC]\n"
    "groups:\n"
    "  sre: [bob, carol]\n"
    "  developers: [bob, slack:U05EEEE]\n"
    "environments:\n"
    "  staging:\n"
    "    nomad: {address: http://127.0.0.1:4646/, region: global, namespace: staging, token: \"${NOMAD_TOKEN}\",\n"
    "            ca_file: \"\", timeout: 10s}\n"
    "    deployers: [developers, sre]\n"
    "  production:\n"
    "    nomad: {address: https://nomad.prod:4646, region: eu}\n"
    "    deployers: [sre]\n"
    "    promote_from: staging\n"
    "    promote_after: 30m\n"
    "    approvals: 2\n"
    "    approvers: [sre]\n"
    "    self_approval: false\n"
    "    approval_ttl: 4h\n"
    "    freeze: [\"Fri 16:00 - Mon 08:00 Europe/Berlin\"]\n"
    "    channels: [slack:C0PROD, shell:console]\n"
    "    notify: [slack:C0RELEASES]\n"
    "jobs:\n"
    "  web:\n"
    "    nomad_job: web-svc\n"
    "    tasks: [web, sidecar]\n"
    "    image: registry.example.com/web\n"
    "  api: {tasks: [api], image: localhost:5000/team/api}\n";

/* chat.slack.ca_file: optional; kept as given and shown by config check. */
static void test_slack_ca_file(void **state) {
    (void)state;
    config *cfg;
    char err[256];
    const char *yaml = BASE "chat:\n  slack:\n    app_token: xapp-1-a\n    bot_token: xoxb-1-b\n    team_id: T1\n"
                            "    ca_file: /etc/ssl/corp-ca.pem\n";
    assert_int_equal(parse(yaml, &cfg, err, sizeof(err)), CONFIG_OK);
    assert_string_equal(cfg->slack->ca_file, "/etc/ssl/corp-ca.pem");
    nm_buf b;
    nm_buf_init(&b, 0);
    assert_int_equal(config_describe(cfg, &b), 0);
    assert_non_null(strstr(b.data, "api https://slack.com/api/, CA /etc/ssl/corp-ca.pem, app token"));
    nm_buf_free(&b);
    config_free(cfg);
    /* a list where a path belongs is a clear error naming the key */
    const char *bad = BASE "chat:\n  slack:\n    app_token: xapp-1-a\n    bot_token: xoxb-1-b\n    team_id: T1\n"
                           "    ca_file: [a, b]\n";
    assert_int_not_equal(parse(bad, &cfg, err, sizeof(err)), CONFIG_OK);
    assert_non_null(strstr(err, "chat.slack.ca_file"));
}

static void test_full_file(void **state) {
    (void)state;
    config *cfg;
    char err[256];
    assert_int_equal(parse(full, &cfg, err, sizeof(err)), CONFIG_OK);
    assert_string_equal(cfg->listen, "127.0.0.1:9090");
    assert_string_equal(cfg->redis, "redis://:pw@127.0.0.1:6380/2");
    assert_string_equal(cfg->postgres_migrate, "");
    assert_int_equal(cfg->workers, 8);
    assert_int_equal(cfg->queue_lease_ms, 5000);
    assert_int_equal(cfg->queue_reconcile_ms, 2000);
    assert_true(cfg->shell_allow_as);
    assert_int_equal(cfg->n_hmac_keys, 1);
    assert_string_equal(cfg->hmac_keys[0].secret, "0123456789abcdef0123456789abcdef");   /* newline removed */
    assert_non_null(cfg->slack);
    assert_string_equal(cfg->slack->api_url, "https://slack.com/api/");
    assert_string_equal(cfg->slack->signing_secret, "");
    assert_int_equal(cfg->slack->num_connections, 2);
    assert_string_equal(cfg->slack->ca_file, "");   /* not given: the system's CAs */
    assert_non_null(cfg->mattermost);
    assert_int_equal(cfg->n_people, 2);
    assert_int_equal(cfg->n_groups, 2);
    assert_int_equal(cfg->n_envs, 2);

    const config_env *st = config_find_env(cfg, "staging");
    assert_non_null(st);
    assert_string_equal(st->nomad.address, "http://127.0.0.1:4646");   /* trailing slash dropped */
    assert_string_equal(st->nomad.namespace, "staging");
    assert_string_equal(st->nomad.token, "s3cr3t-token");
    assert_int_equal(st->nomad.timeout_ms, 10000);
    assert_int_equal(st->approvals, 0);
    assert_int_equal(st->approval_ttl_ms, 24LL * 3600 * 1000);
    assert_int_equal(st->line, 25);

    const config_env *pr = config_find_env(cfg, "production");
    assert_string_equal(pr->nomad.namespace, "default");
    assert_string_equal(pr->nomad.region, "eu");
    assert_int_equal(pr->nomad.timeout_ms, 30000);
    assert_string_equal(pr->promote_from, "staging");
    assert_int_equal(pr->promote_after_ms, 30 * 60000);
    assert_int_equal(pr->approvals, 2);
    assert_int_equal(pr->approval_ttl_ms, 4 * 3600000);
    assert_int_equal(pr->freeze.n, 1);
    assert_int_equal(pr->channels.n, 2);

    const config_job *web = config_find_job(cfg, "web");
    assert_string_equal(web->nomad_job, "web-svc");
    assert_int_equal(web->tasks.n, 2);
    const config_job *api = config_find_job(cfg, "api");
    assert_string_equal(api->nomad_job, "api");
    assert_string_equal(api->image, "localhost:5000/team/api");
    assert_null(config_find_job(cfg, "nope"));
    assert_null(config_find_env(cfg, "nope"));
    config_free(cfg);
}

static void test_defaults(void **state) {
    (void)state;
    config *cfg;
    char err[256];
    assert_int_equal(parse(BASE, &cfg, err, sizeof(err)), CONFIG_OK);
    assert_string_equal(cfg->listen, "127.0.0.1:8080");
    assert_int_equal(cfg->workers, 4);
    assert_int_equal(cfg->queue_lease_ms, 30000);
    assert_int_equal(cfg->queue_reconcile_ms, 10000);
    assert_int_equal(cfg->audit_checkpoint_ms, 3600000);
    assert_false(cfg->shell_allow_as);
    assert_null(cfg->slack);
    assert_null(cfg->mattermost);
    assert_int_equal(cfg->n_envs, 0);
    config_free(cfg);
}

/* Each bad file gives the code and exactly this message. */
static void test_errors(void **state) {
    (void)state;
    static const struct {
        const char *yaml;
        int code;
        const char *msg;
    } cases[] = {
        {"redis: [1\n", CONFIG_ERR_SYNTAX, "t.yaml:2: did not find expected ',' or ']' while parsing a flow sequence"},
        {BASE "environments:\n  s:\n    nomad: {address: http://n, token: ${NOMAD_TOKEN}}\n", CONFIG_ERR_SYNTAX,
         "t.yaml:5: did not find expected ',' or '}' while parsing a flow mapping (inside { } or [ ], quote values "
         "that use ${...}: \"${NAME}\")"},
        {BASE "a: &x 1\nb: *x\n", CONFIG_ERR_SYNTAX, "t.yaml:3: YAML anchors are not allowed"},
        {BASE "workers: !!str 4\n", CONFIG_ERR_SYNTAX, "t.yaml:3: YAML tags are not allowed"},
        {BASE "workers: 1\nworkers: 2\n", CONFIG_ERR_SYNTAX, "t.yaml:4: duplicate key 'workers'"},
        {BASE "---\n", CONFIG_ERR_SYNTAX, "t.yaml:3: only one YAML document is allowed"},
        {"- a\n- b\n", CONFIG_ERR_SCHEMA, "t.yaml:1: (top level): expected a mapping"},
        {BASE "wrokers: 4\n", CONFIG_ERR_SCHEMA, "t.yaml:3: wrokers: unknown key"},
        {BASE "workers: four\n", CONFIG_ERR_SCHEMA, "t.yaml:3: workers: expected a whole number"},
        {BASE "workers: -1\n", CONFIG_ERR_SCHEMA, "t.yaml:3: workers: expected a whole number"},
        {BASE "workers: 1000\n", CONFIG_ERR_SCHEMA, "t.yaml:3: workers: must be between 0 and 256"},
        {BASE "queue: {lease: 500}\n", CONFIG_ERR_SCHEMA,
         "t.yaml:3: queue.lease: expected a duration like 90s, 15m, 4h, 1h30m, 7d"},
        {BASE "queue: {lease: 0s}\n", CONFIG_ERR_SCHEMA, "t.yaml:3: queue.lease: must be between 1s and 1h"},
        {BASE "queue: {reconcile: 2h}\n", CONFIG_ERR_SCHEMA, "t.yaml:3: queue.reconcile: must be between 1s and 1h"},
        {BASE "queue: {leese: 1s}\n", CONFIG_ERR_SCHEMA, "t.yaml:3: queue.leese: unknown key"},
        {BASE "audit: {checkpoint: never}\n", CONFIG_ERR_SCHEMA,
         "t.yaml:3: audit.checkpoint: expected a duration like 90s, 15m, 4h, 1h30m, 7d"},
        {BASE "shell: {allow_as: yes}\n", CONFIG_ERR_SCHEMA, "t.yaml:3: shell.allow_as: expected true or false"},
        {BASE "shell: {allow: true}\n", CONFIG_ERR_SCHEMA, "t.yaml:3: shell.allow: unknown key"},
        {"postgres: x\n", CONFIG_ERR_SCHEMA, "t.yaml:1: redis: required"},
        {"redis: rediss://h:6379\npostgres: x\n", CONFIG_ERR_SCHEMA,
         "t.yaml:1: redis: rediss:// is not supported (this hiredis has no TLS): run a TLS tunnel such as stunnel "
         "and point redis:// at its local end"},
        {"redis: http://h\npostgres: x\n", CONFIG_ERR_SCHEMA, "t.yaml:1: redis: expected redis://[:password@]host[:port][/db]"},
        {"redis: redis://h:99999\npostgres: x\n", CONFIG_ERR_SCHEMA, "t.yaml:1: redis: port must be 1-65535"},
        {BASE "listen: nowhere\n", CONFIG_ERR_SCHEMA, "t.yaml:3: listen: expected ADDRESS:PORT or off"},
        {BASE "environments:\n  staging: {}\n", CONFIG_ERR_SCHEMA, "t.yaml:4: environments.staging.nomad: required"},
        {BASE "environments:\n  staging:\n    nomad: {address: 127.0.0.1:4646}\n", CONFIG_ERR_SCHEMA,
         "t.yaml:5: environments.staging.nomad.address: must start with http:// or https://"},
        {BASE "environments:\n  staging:\n    nomad: {address: http://n, timeout: 30}\n", CONFIG_ERR_SCHEMA,
         "t.yaml:5: environments.staging.nomad.timeout: expected a duration like 90s, 15m, 4h, 1h30m, 7d"},
        {BASE "environments:\n  staging:\n    nomad: {address: http://n, tokne: x}\n", CONFIG_ERR_SCHEMA,
         "t.yaml:5: environments.staging.nomad.tokne: unknown key"},
        {BASE "environments:\n  staging:\n    nomad: {address: https://n, client_cert: /c.pem}\n", CONFIG_ERR_SCHEMA,
         "t.yaml:5: environments.staging.nomad.client_key: client_cert and client_key go together"},
        {BASE "environments:\n  staging:\n    nomad: {address: http://n}\n    approvals: 1\n", CONFIG_ERR_SCHEMA,
         "t.yaml:5: environments.staging.approvers: required when approvals > 0"},
        {BASE "environments:\n  staging:\n    nomad: {address: http://n}\n    deployers: devs\n", CONFIG_ERR_SCHEMA,
         "t.yaml:6: environments.staging.deployers: expected a list"},
        {BASE "environments:\n  staging:\n    nomad: {address: http://n}\n    deployers: [devs]\n", CONFIG_ERR_REF,
         "t.yaml:4: environments.staging.deployers: unknown group or person 'devs'"},
        {BASE "environments:\n  staging:\n    nomad: {address: http://n}\n    channels: [C0PROD]\n", CONFIG_ERR_SCHEMA,
         "t.yaml:6: environments.staging.channels: 'C0PROD' is not platform:channel"},
        {BASE "environments:\n  a:\n    nomad: {address: http://n}\n    promote_from: b\n"
              "  b:\n    nomad: {address: http://n}\n    promote_from: a\n",
         CONFIG_ERR_REF, "t.yaml:4: environments.a.promote_from: promotion path loops back to a"},
        {BASE "environments:\n  a:\n    nomad: {address: http://n}\n    promote_from: zz\n", CONFIG_ERR_REF,
         "t.yaml:4: environments.a.promote_from: unknown environment 'zz'"},
        {BASE "environments:\n  a:\n    nomad: {address: http://n}\n    promote_from: a\n", CONFIG_ERR_REF,
         "t.yaml:4: environments.a.promote_from: promotion path loops back to a"},
        {BASE "environments:\n  s:\n    nomad: {address: http://n}\n    freeze: [\"Fr 16:00 - Mon 08:00 UTC\"]\n",
         CONFIG_ERR_SCHEMA, "t.yaml:6: environments.s.freeze: expected a weekday (Mon..Sun) at 'Fr'"},
        {BASE "environments:\n  s:\n    nomad: {address: http://n}\n    freeze:\n      - Sat - Sun UTC\n"
              "      - 2026-12-22 - 2026-12-21 UTC\n",
         CONFIG_ERR_SCHEMA, "t.yaml:8: environments.s.freeze: end must be after start"},
        {BASE "environments:\n  st/ag: {nomad: {address: http://n}}\n", CONFIG_ERR_SCHEMA,
         "t.yaml:4: environments.st/ag: environment names are letters, digits, '_', '-', '.' (max 64)"},
        {BASE "jobs:\n  web: {tasks: [web]}\n", CONFIG_ERR_SCHEMA, "t.yaml:4: jobs.web.image: required"},
        {BASE "jobs:\n  web: {tasks: [], image: r/web}\n", CONFIG_ERR_SCHEMA, "t.yaml:4: jobs.web.tasks: name at least one task"},
        {BASE "jobs:\n  web: {tasks: [web], image: r/web:v1}\n", CONFIG_ERR_SCHEMA,
         "t.yaml:4: jobs.web.image: expected registry/repository without a tag"},
        {BASE "people:\n  bob: [U01]\n", CONFIG_ERR_SCHEMA,
         "t.yaml:4: people.bob: 'U01' is not an identity (slack:ID, mattermost:ID or shell:USER)"},
        {BASE "people:\n  bob: [slack:U1]\n  eve: [slack:U1]\n", CONFIG_ERR_REF,
         "t.yaml:5: people.eve: identity slack:U1 is listed more than once"},
        {BASE "groups:\n  sre: [nobody]\n", CONFIG_ERR_REF,
         "t.yaml:4: groups.sre: unknown person 'nobody' (people: or a raw identity like slack:U123)"},
        {BASE "workers: ${UNSET_VAR}\n", CONFIG_ERR_ENV, "t.yaml:3: workers: environment variable UNSET_VAR is not set"},
        {BASE "workers: ${UNSET_VAR\n", CONFIG_ERR_SCHEMA, "t.yaml:3: workers: unterminated ${"},
        {BASE "workers: ${1X}\n", CONFIG_ERR_SCHEMA, "t.yaml:3: workers: bad variable name in ${1X}"},
        {BASE "public_url: ${file:/nope}\n", CONFIG_ERR_ENV, "t.yaml:3: public_url: cannot read ${file:/nope}"},
        {BASE "secrets: {hmac_keys: [{id: k1, secret: short}]}\n", CONFIG_ERR_SCHEMA,
         "t.yaml:3: secrets.hmac_keys.secret: must be at least 32 bytes"},
        {BASE "chat: {slack: {app_token: a}}\n", CONFIG_ERR_SCHEMA, "t.yaml:3: chat.slack.bot_token: required"},
        {BASE "chat: {slack: {app_token: a, bot_token: b, team_id: T, num_connections: 0}}\n", CONFIG_ERR_SCHEMA,
         "t.yaml:3: chat.slack.num_connections: must be between 1 and 10"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        config *cfg = (config *)1;
        char err[512];
        int rc = parse(cases[i].yaml, &cfg, err, sizeof(err));
        if (rc != cases[i].code || strcmp(err, cases[i].msg) != 0) {
            print_error("case %zu:\n%s\n-> %s (%d)\n   want %s (%d)\n", i, cases[i].yaml, err, rc, cases[i].msg,
                        cases[i].code);
            fail();
        }
        assert_null(cfg);
    }
}

/* A secret must not show up in an error message about its own value. */
static void test_errors_do_not_echo_secrets(void **state) {
    (void)state;
    config *cfg;
    char err[512];
    assert_int_equal(parse(BASE "workers: ${NOMAD_TOKEN}\n", &cfg, err, sizeof(err)), CONFIG_ERR_SCHEMA);
    assert_null(strstr(err, "s3cr3t"));
}

/* With the system's zone database, an unknown zone is named. */
static void test_freeze_zones(void **state) {
    (void)state;
    config_resolver with_zones = fake;
    with_zones.zone = config_resolver_system.zone;
    config *cfg;
    char err[512];
    const char *ok = BASE "environments:\n  s:\n    nomad: {address: http://n}\n"
                          "    freeze: [\"Fri 16:00 - Mon 08:00 Europe/Berlin\", \"daily 22:00 - 06:00 UTC\"]\n";
    assert_int_equal(config_parse(ok, strlen(ok), "t.yaml", &with_zones, &cfg, err, sizeof(err)), CONFIG_OK);
    assert_int_equal(cfg->envs[0].freeze.n, 2);
    config_free(cfg);
    const char *bad = BASE "environments:\n  s:\n    nomad: {address: http://n}\n"
                           "    freeze: [\"Fri 16:00 - Mon 08:00 Europe/Berln\"]\n";
    assert_int_equal(config_parse(bad, strlen(bad), "t.yaml", &with_zones, &cfg, err, sizeof(err)), CONFIG_ERR_SCHEMA);
    assert_non_null(strstr(err, "t.yaml:6: environments.s.freeze: "));
    assert_non_null(strstr(err, "Europe/Berln"));
}

static void test_expansion(void **state) {
    (void)state;
    config *cfg;
    char err[256];
    assert_int_equal(parse(BASE "public_url: a${EMPTY}b${UNSET:-x:y}c$d${PORT}${UNSET:-}\n"
                                "listen: \"${file:/run/secrets/two-newlines}:1\"\n",
                           &cfg, err, sizeof(err)),
                     CONFIG_OK);
    assert_string_equal(cfg->public_url, "abx:yc$d6380");
    assert_string_equal(cfg->listen, "abc\n:1");   /* only one trailing newline is removed */
    config_free(cfg);
}

static void test_duration(void **state) {
    (void)state;
    assert_int_equal(config_parse_duration("90s"), 90000);
    assert_int_equal(config_parse_duration("15m"), 900000);
    assert_int_equal(config_parse_duration("4h"), 14400000);
    assert_int_equal(config_parse_duration("1h30m"), 5400000);
    assert_int_equal(config_parse_duration("7d"), 604800000);
    assert_int_equal(config_parse_duration("0s"), 0);
    assert_int_equal(config_parse_duration("1d2h3m4s"), 93784000);
    static const char *bad[] = {"", "s", "90", "1.5h", "-1s", "1m1h", "1h1h", "1 h", "1w", "99999999999999999999s",
                                "9223372036854775807d"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) assert_int_equal(config_parse_duration(bad[i]), -1);
}

static void test_tag_and_name(void **state) {
    (void)state;
    assert_true(config_valid_tag("v1.4.2"));
    assert_true(config_valid_tag("_x"));
    assert_true(config_valid_tag("2024-01-01"));
    assert_false(config_valid_tag(""));
    assert_false(config_valid_tag("-v1"));
    assert_false(config_valid_tag(".v1"));
    assert_false(config_valid_tag("v1:2"));
    assert_false(config_valid_tag("v1/2"));
    assert_false(config_valid_tag("caf\xc3\xa9"));
    char tag[131];
    memset(tag, 'a', 128);
    tag[128] = '\0';
    assert_true(config_valid_tag(tag));
    tag[128] = 'a';
    tag[129] = '\0';
    assert_false(config_valid_tag(tag));
    assert_true(config_valid_name("web-2.svc_x"));
    assert_false(config_valid_name("-web"));
    assert_false(config_valid_name("we b"));
}

static void test_redis_url(void **state) {
    (void)state;
    char host[64], pw[64], err[200];
    int port, db;
    assert_int_equal(config_redis_url("redis://127.0.0.1", host, sizeof(host), &port, &db, pw, sizeof(pw), err, sizeof(err)),
                     CONFIG_OK);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 6379);
    assert_int_equal(db, 0);
    assert_string_equal(pw, "");
    assert_int_equal(config_redis_url("redis://user:p@ss@redis.internal:6390/3", host, sizeof(host), &port, &db, pw,
                                      sizeof(pw), err, sizeof(err)),
                     CONFIG_OK);
    assert_string_equal(host, "redis.internal");
    assert_string_equal(pw, "p@ss");   /* the last @ ends the password */
    assert_int_equal(port, 6390);
    assert_int_equal(db, 3);
    assert_int_equal(config_redis_url("redis://:pw@h/", host, sizeof(host), &port, &db, pw, sizeof(pw), err, sizeof(err)),
                     CONFIG_OK);
    assert_string_equal(pw, "pw");
    static const char *bad[] = {"rediss://h", "redis://", "redis://:6379", "redis://h:0", "redis://h:x",
                                "redis://h/x", "redis://h:6379x", "unix:///tmp/r.sock"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(config_redis_url(bad[i], host, sizeof(host), &port, &db, pw, sizeof(pw), err, sizeof(err)),
                         CONFIG_ERR_SCHEMA);
}

static void test_load_files(void **state) {
    (void)state;
    const char *src = getenv("NOMATRON_SOURCE_DIR");
    assert_non_null(src);
    char path[1024], err[256];
    config *cfg;
    static const char *files[] = {"deploy/nomatron.dev.yaml", "deploy/nomatron.example.yaml"};
    setenv("SLACK_APP_TOKEN", "xapp-test", 1);
    setenv("SLACK_BOT_TOKEN", "xoxb-test", 1);
    setenv("MATTERMOST_TOKEN", "mm", 1);
    setenv("NOMAD_TOKEN_PROD", "tok", 1);
    setenv("NOMATRON_HMAC_KEY", "0123456789abcdef0123456789abcdef", 1);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", src, files[i]);
        int rc = config_load(path, &cfg, err, sizeof(err));
        if (rc != CONFIG_OK) print_error("%s: %s\n", files[i], err);
        assert_int_equal(rc, CONFIG_OK);
        assert_true(cfg->n_envs >= 2);
        config_free(cfg);
    }
    assert_int_equal(config_load("/nonexistent/nomatron.yaml", &cfg, err, sizeof(err)), CONFIG_ERR_IO);
    assert_non_null(strstr(err, "/nonexistent/nomatron.yaml: cannot read"));
}

static void test_size_ceiling(void **state) {
    (void)state;
    size_t n = CONFIG_MAX_FILE + 1;
    char *big = malloc(n);
    memset(big, '#', n);
    config *cfg;
    char err[256];
    assert_int_equal(config_parse(big, n, "big.yaml", &fake, &cfg, err, sizeof(err)), CONFIG_ERR_IO);
    free(big);
}

static void test_default_path(void **state) {
    (void)state;
    unsetenv("NOMATRON_CONFIG");
    assert_string_equal(config_default_path(NULL), "nomatron.yaml");
    setenv("NOMATRON_CONFIG", "/etc/n.yaml", 1);
    assert_string_equal(config_default_path(NULL), "/etc/n.yaml");
    assert_string_equal(config_default_path("x.yaml"), "x.yaml");
    unsetenv("NOMATRON_CONFIG");
}

static void test_describe_redacts(void **state) {
    (void)state;
    config *cfg;
    char err[256];
    /* The full file with a password in the Postgres DSN as well. */
    const char *from = strstr(full, "postgres: ");
    const char *rest = strchr(from, '\n') + 1;
    char *yaml = malloc(strlen(full) + 64);
    snprintf(yaml, strlen(full) + 64, "%.*spostgres: postgresql://nomatron:pgsecret@127.0.0.1/nomatron\n%s",
             (int)(from - full), full, rest);
    assert_int_equal(parse(yaml, &cfg, err, sizeof(err)), CONFIG_OK);
    free(yaml);
    nm_buf b;
    nm_buf_init(&b, 0);
    assert_int_equal(config_describe(cfg, &b), 0);
    static const char *secrets[] = {"s3cr3t-token", "0123456789abcdef", "pgsecret", ":pw@", "xapp-1", "xoxb-1"};
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        if (strstr(b.data, secrets[i])) print_error("secret %s in:\n%s\n", secrets[i], b.data);
        assert_null(strstr(b.data, secrets[i]));
    }
    assert_non_null(strstr(b.data, "environment production\n"));
    assert_non_null(strstr(b.data, "  may deploy        sre (bob, carol)\n"));
    assert_non_null(strstr(b.data, "  approvals         2 distinct people from sre (bob, carol); requester never counts; "
                                   "expire after 4h\n"));
    assert_non_null(strstr(b.data, "  promotion         only `promote` from staging, healthy there for at least 30m\n"));
    assert_non_null(strstr(b.data, "namespace staging, token [redacted], timeout 10s"));
    assert_non_null(strstr(b.data, "redis             redis://:[redacted]@127.0.0.1:6380/2\n"));
    nm_buf_free(&b);
    config_free(cfg);
}

static void test_redact_and_format(void **state) {
    (void)state;
    char out[256];
    config_redact_url("postgresql://u:p@h:5432/db?sslmode=require", out, sizeof(out));
    assert_string_equal(out, "postgresql://u:[redacted]@h:5432/db?sslmode=require");
    config_redact_url("host=h password='a b c' user=u", out, sizeof(out));
    assert_string_equal(out, "host=h password=[redacted] user=u");
    config_redact_url("postgresql://h/db?password=x&user=u", out, sizeof(out));
    assert_string_equal(out, "postgresql://h/db?password=[redacted]&user=u");
    config_redact_url("redis://127.0.0.1:6379/0", out, sizeof(out));
    assert_string_equal(out, "redis://127.0.0.1:6379/0");
    config_redact_url("postgresql://u@h/db", out, sizeof(out));
    assert_string_equal(out, "postgresql://u@h/db");
    config_format_duration(5400000, out, sizeof(out));
    assert_string_equal(out, "1h30m");
    config_format_duration(0, out, sizeof(out));
    assert_string_equal(out, "0s");
    config_format_duration(86400000 + 1500, out, sizeof(out));
    assert_string_equal(out, "1d1s500ms");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_slack_ca_file),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_errors_do_not_echo_secrets),
        cmocka_unit_test(test_expansion),
        cmocka_unit_test(test_freeze_zones),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_tag_and_name),
        cmocka_unit_test(test_redis_url),
        cmocka_unit_test(test_load_files),
        cmocka_unit_test(test_size_ceiling),
        cmocka_unit_test(test_default_path),
        cmocka_unit_test(test_describe_redacts),
        cmocka_unit_test(test_redact_and_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
