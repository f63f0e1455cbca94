/* Governance decisions (commands/governance.c), table-driven: who may
 * request, approvals (one person with two identities, self-approval,
 * distinct people, expiry), promotion evidence, freezes to the second across
 * DST weekends in Europe/Berlin and America/New_York, break-glass, manual
 * locks, actions on running deployments, reloads, worker checks, explain.
 * UTC instants of local times were computed independently with Python's
 * zoneinfo. Needs tzdata. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "governance.h"
#include "tzif.h"

static const char yaml_base[] =
    "redis: redis://127.0.0.1\npostgres: x\n"
    "people:\n"
    "  bob: [slack:U1, shell:bob]\n"
    "  carol: [slack:U2]\n"
    "  dave: [slack:U3, mattermost:m3]\n"
    "  alice: [shell:alice, slack:UA]\n"
    "  erin: [slack:U5]\n"
    "groups:\n"
    "  sre: [bob, carol, slack:U7]\n"
    "  developers: [alice, dave, slack:U9]\n"
    "  leads: [erin]\n"
    "environments:\n"
    "  staging:\n"
    "    nomad: {address: http://n}\n"
    "    deployers: [developers, sre]\n"
    "    approvers: [sre]\n"
    "  production:\n"
    "    nomad: {address: http://n}\n"
    "    deployers: [sre, developers]\n"
    "    promote_from: staging\n"
    "    promote_after: 30m\n"
    "    approvals: 2\n"
    "    approvers: [sre]\n"
    "    self_approval: false\n"
    "    approval_ttl: 4h\n"
    "    freeze: [\"Fri 16:00 - Mon 08:00 Europe/Berlin\", \"2026-12-22 - 2027-01-04 UTC\"]\n"
    "    channels: [slack:C0PROD, shell:console]\n"
    "  qa:\n"
    "    nomad: {address: http://n}\n"
    "    deployers: [developers, sre]\n"
    "    approvals: 1\n"
    "    approvers: [sre, leads]\n"
    "    self_approval: true\n"
    "    approval_ttl: 1h\n"
    "    freeze: [\"daily 22:00 - 06:00 America/New_York\", \"2026-07-04 - 2026-07-04 America/New_York\"]\n"
    "  dr:\n"
    "    nomad: {address: http://n}\n"
    "    deployers: [sre]\n"
    "    approvals: 3\n"
    "    approvers: [leads, slack:U2]\n"
    "  sandbox:\n"
    "    nomad: {address: http://n}\n"
    "  ops:\n"
    "    nomad: {address: http://n}\n"
    "    deployers: [sre]\n"
    "    approvals: 1\n"
    "    approvers: [sre]\n"
    "jobs:\n"
    "  web: {tasks: [web], image: r/web}\n"
    "  api: {tasks: [api], image: r/api}\n";

static config *cfg;
static tzif_zone *berlin, *newyork;

static const tzif_zone *zone_fn(void *ud, const char *name) {
    (void)ud;
    if (strcmp(name, "Europe/Berlin") == 0) return berlin;
    if (strcmp(name, "America/New_York") == 0) return newyork;
    return NULL;
}

static config *parse(const char *text) {
    config *c = NULL;
    char err[256];
    if (config_parse(text, strlen(text), "t.yaml", &config_resolver_system, &c, err, sizeof err) != 0)
        fail_msg("config: %s", err);
    return c;
}

/* "YYYY-MM-DD HH:MM:SS" (UTC) -> seconds. */
static int64_t T(const char *s) {
    int y, mo, d, h, mi, se;
    if (sscanf(s, "%d-%d-%d %d:%d:%d", &y, &mo, &d, &h, &mi, &se) != 6) fail_msg("bad time %s", s);
    return tzif_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
}

#define WED "2026-03-25 10:00:00"

static gov_ctx ctx_at(const char *now) {
    gov_ctx c = {cfg, zone_fn, NULL, gov_limits_default, T(now)};
    return c;
}

static int setup(void **state) {
    (void)state;
    char err[160];
    if (tzif_load(NULL, "Europe/Berlin", &berlin, err, sizeof err) != 0) fail_msg("%s", err);
    if (tzif_load(NULL, "America/New_York", &newyork, err, sizeof err) != 0) fail_msg("%s", err);
    cfg = parse(yaml_base);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    config_free(cfg);
    tzif_free(berlin);
    tzif_free(newyork);
    return 0;
}

/* ---- evidence ---- */

enum ev { EV_NULL = 0, EV_GOOD, EV_YOUNG, EV_RUNNING, EV_FAILED, EV_SICK, EV_EMPTY, EV_UNKNOWN, EV_SINCE0, EV_EXACT,
          EV_ALMOST, EV_FUTURE };

static void make_evidence(enum ev e, int64_t now, gov_evidence *out) {
    memset(out, 0, sizeof *out);
    out->known = e != EV_UNKNOWN;
    snprintf(out->image, sizeof out->image, "%s", e == EV_EMPTY ? "" : "r/web:v2");
    out->status = e == EV_RUNNING ? GOV_DEPLOY_RUNNING : e == EV_FAILED ? GOV_DEPLOY_FAILED : GOV_DEPLOY_SUCCESSFUL;
    out->healthy = e != EV_SICK;
    out->healthy_since = e == EV_YOUNG    ? now - 600
                         : e == EV_SINCE0 ? 0
                         : e == EV_EXACT  ? now - 1800
                         : e == EV_ALMOST ? now - 1799
                         : e == EV_FUTURE ? now + 5
                                          : now - 3600;
}

/* ---- requests ---- */

struct req_case {
    enum gov_kind kind;
    const char *env, *from, *job, *actor, *channel, *emergency, *now;
    int lock;
    enum ev ev;
    int open, recent;
    int64_t same_job;
    enum gov_tag want;
    const char *rule;          /* NULL = don't check */
    enum req_state next;       /* checked on OK */
    int required;              /* -1 = don't check */
    unsigned flags;            /* flags that must be set */
    const char *until;         /* NULL = don't check */
    const char *substr;        /* in the message; NULL = don't check */
};

#define D GOV_KIND_DEPLOY
#define PR GOV_KIND_PROMOTE
#define RB GOV_KIND_ROLLBACK
#define PEND REQ_PENDING_APPROVAL
#define QUE REQ_QUEUED
#define CON "shell:console"
#define PROD "slack:C0PROD"
#define BG GOV_F_BREAK_GLASS
#define EM GOV_F_EMERGENCY

static const struct req_case req_cases[] = {
    /* staging: deployers, no approvals */
    {D, "staging", NULL, "web", "shell:alice", CON, NULL, WED, 0, 0, 0, 0, 0, GOV_OK, "", QUE, 0, 0, NULL, "is queued"},
    {D, "staging", NULL, "web", "slack:UA", "slack:C1", NULL, WED, 0, 0, 0, 0, 0, GOV_OK, "", QUE, 0, 0, NULL, NULL},
    {D, "staging", NULL, "web", "slack:U9", "slack:C1", NULL, WED, 0, 0, 0, 0, 0, GOV_OK, "", QUE, 0, 0, NULL, NULL},
    {D, "staging", NULL, "web", "mattermost:m3", "mattermost:x", NULL, WED, 0, 0, 0, 0, 0, GOV_OK, "", QUE, 0, 0, NULL, NULL},
    {D, "staging", NULL, "web", "slack:U7", "slack:C1", NULL, WED, 0, 0, 0, 0, 0, GOV_OK, "", QUE, 0, 0, NULL, NULL},
    {D, "staging", NULL, "web", "slack:U8", "slack:C1", NULL, WED, 0, 0, 0, 0, 0, GOV_NOT_DEPLOYER, "deployers", 0, -1, 0, NULL,
     "only developers, sre may request changes to staging (deployers)"},
    {D, "staging", NULL, "web", "shell:eve", CON, NULL, WED, 0, 0, 0, 0, 0, GOV_NOT_DEPLOYER, "deployers", 0, -1, 0, NULL, NULL},
    {D, "staging", NULL, "web", "shell:alice", CON, "db down", WED, 0, 0, 0, 0, 0, GOV_OK, "", PEND, 1, EM, NULL, NULL},
    {D, "staging", NULL, "web", "shell:alice", CON, "", WED, 0, 0, 0, 0, 0, GOV_OK, "", QUE, 0, 0, NULL, NULL},
    {D, "staging", NULL, "web", "shell:alice", CON, NULL, WED, 0, 0, 0, 0, 9, GOV_OK, "", QUE, 0, 0, NULL, NULL},
    {D, "staging", NULL, "web", "shell:alice", CON, "x", WED, 0, 0, 0, 0, 9, GOV_OPEN_EXISTS, "one_open_request", 0, 1, 0, NULL,
     "D-9 is already open for web in staging"},
    {D, "prod", NULL, "web", "shell:alice", CON, NULL, WED, 0, 0, 0, 0, 0, GOV_UNKNOWN_ENV, "environments", 0, -1, 0, NULL,
     "there is no environment prod"},
    {D, "staging", NULL, "db", "shell:alice", CON, NULL, WED, 0, 0, 0, 0, 0, GOV_UNKNOWN_JOB, "jobs", 0, -1, 0, NULL, NULL},
    {D, "staging", NULL, "web", "", CON, NULL, WED, 0, 0, 0, 0, 0, GOV_BAD_INPUT, "identity", 0, -1, 0, NULL, NULL},
    {D, "staging", NULL, "web", NULL, CON, NULL, WED, 0, 0, 0, 0, 0, GOV_BAD_INPUT, "identity", 0, -1, 0, NULL, NULL},
    {D, "staging", NULL, "web", "alice", CON, NULL, WED, 0, 0, 0, 0, 0, GOV_BAD_INPUT, "identity", 0, -1, 0, NULL, NULL},
    {D, "", NULL, "web", "shell:alice", CON, NULL, WED, 0, 0, 0, 0, 0, GOV_BAD_INPUT, "command", 0, -1, 0, NULL, NULL},
    {D, "staging", NULL, NULL, "shell:alice", CON, NULL, WED, 0, 0, 0, 0, 0, GOV_BAD_INPUT, "command", 0, -1, 0, NULL, NULL},
    {(enum gov_kind)0, "staging", NULL, "web", "shell:alice", CON, NULL, WED, 0, 0, 0, 0, 0, GOV_BAD_INPUT, "command", 0, -1, 0,
     NULL, NULL},
    /* limits */
    {D, "staging", NULL, "web", "shell:alice", CON, NULL, WED, 0, 0, 0, 30, 0, GOV_RATE_LIMITED, "rate_limit", 0, -1, 0,
     "2026-03-25 10:01:00", "at most 30 commands per 1m"},
    {D, "staging", NULL, "web", "shell:alice", CON, NULL, WED, 0, 0, 0, 29, 0, GOV_OK, "", QUE, 0, 0, NULL, NULL},
    {D, "staging", NULL, "web", "shell:alice", CON, NULL, WED, 0, 0, 5, 0, 0, GOV_TOO_MANY_OPEN, "open_requests", 0, -1, 0,
     NULL, "you already have 5 open requests (the limit is 5)"},
    {D, "staging", NULL, "web", "shell:alice", CON, NULL, WED, 0, 0, 4, 0, 0, GOV_OK, "", QUE, 0, 0, NULL, NULL},
    /* rate before channel and deployers */
    {D, "production", NULL, "web", "slack:U8", "slack:C9", NULL, WED, 0, 0, 0, 99, 0, GOV_RATE_LIMITED, "rate_limit", 0, -1, 0,
     NULL, NULL},
    /* production: promote only, channels, evidence */
    {D, "production", NULL, "web", "slack:U1", PROD, NULL, WED, 0, 0, 0, 0, 0, GOV_PROMOTE_REQUIRED, "promote_from", 0, -1, 0,
     NULL, "`promote web from staging to production`"},
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, WED, 0, EV_GOOD, 0, 0, 0, GOV_OK, "", PEND, 2, 0, NULL,
     "waits for 2 approvals"},
    {PR, "production", "staging", "web", "shell:bob", CON, NULL, WED, 0, EV_GOOD, 0, 0, 0, GOV_OK, "", PEND, 2, 0, NULL, NULL},
    {PR, "production", "staging", "web", "shell:alice", CON, NULL, WED, 0, EV_GOOD, 0, 0, 0, GOV_OK, "", PEND, 2, 0, NULL, NULL},
    {PR, "production", "staging", "web", "slack:U1", "slack:C0OTHER", NULL, WED, 0, EV_GOOD, 0, 0, 0, GOV_WRONG_CHANNEL,
     "channels", 0, -1, 0, NULL, "commands for production are taken only in slack:C0PROD, shell:console (channels), not slack:C0OTHER"},
    {PR, "production", "staging", "web", "slack:U1", NULL, NULL, WED, 0, EV_GOOD, 0, 0, 0, GOV_WRONG_CHANNEL, "channels", 0, -1,
     0, NULL, "not here"},
    {PR, "production", "staging", "web", "slack:U8", PROD, NULL, WED, 0, EV_GOOD, 0, 0, 0, GOV_NOT_DEPLOYER, "deployers", 0, -1,
     0, NULL, NULL},
    {PR, "production", "qa", "web", "slack:U1", PROD, NULL, WED, 0, EV_GOOD, 0, 0, 0, GOV_PROMOTE_WRONG_SOURCE, "promote_from", 0,
     -1, 0, NULL, "production takes promotions only from staging, not qa"},
    {PR, "production", "production", "web", "slack:U1", PROD, NULL, WED, 0, EV_GOOD, 0, 0, 0, GOV_PROMOTE_SAME_ENV,
     "promote_from", 0, -1, 0, NULL, NULL},
    {PR, "production", "nowhere", "web", "slack:U1", PROD, NULL, WED, 0, EV_GOOD, 0, 0, 0, GOV_UNKNOWN_ENV, "environments", 0, -1,
     0, NULL, NULL},
    {PR, "production", NULL, "web", "slack:U1", PROD, NULL, WED, 0, EV_GOOD, 0, 0, 0, GOV_BAD_INPUT, "command", 0, -1, 0, NULL,
     NULL},
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, WED, 0, EV_NULL, 0, 0, 0, GOV_EVIDENCE_MISSING, "promote_from",
     0, -1, 0, NULL, NULL},
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, WED, 0, EV_UNKNOWN, 0, 0, 0, GOV_EVIDENCE_MISSING,
     "promote_from", 0, -1, 0, NULL, NULL},
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, WED, 0, EV_EMPTY, 0, 0, 0, GOV_EVIDENCE_MISSING, "promote_from",
     0, -1, 0, NULL, "nothing of this job runs in staging"},
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, WED, 0, EV_RUNNING, 0, 0, 0, GOV_EVIDENCE_NOT_SUCCESSFUL,
     "promote_from", 0, -1, 0, NULL, "still running, not successful"},
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, WED, 0, EV_FAILED, 0, 0, 0, GOV_EVIDENCE_NOT_SUCCESSFUL,
     "promote_from", 0, -1, 0, NULL, "failed"},
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, WED, 0, EV_SICK, 0, 0, 0, GOV_EVIDENCE_UNHEALTHY,
     "promote_from", 0, -1, 0, NULL, NULL},
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, WED, 0, EV_YOUNG, 0, 0, 0, GOV_EVIDENCE_TOO_SOON,
     "promote_after", 0, -1, 0, "2026-03-25 10:20:00", "for 30m (promote_after): 20m to go"},
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, WED, 0, EV_EXACT, 0, 0, 0, GOV_OK, "", PEND, 2, 0, NULL, NULL},
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, WED, 0, EV_ALMOST, 0, 0, 0, GOV_EVIDENCE_TOO_SOON,
     "promote_after", 0, -1, 0, "2026-03-25 10:00:01", "1s to go"},
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, WED, 0, EV_SINCE0, 0, 0, 0, GOV_EVIDENCE_TOO_SOON,
     "promote_after", 0, -1, 0, NULL, "since when is unknown"},
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, WED, 0, EV_FUTURE, 0, 0, 0, GOV_EVIDENCE_TOO_SOON,
     "promote_after", 0, -1, 0, NULL, NULL},
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, WED, 0, EV_GOOD, 0, 0, 12, GOV_OPEN_EXISTS,
     "one_open_request", 0, -1, 0, NULL, "D-12 is already open for web in production; approve, reject or cancel it first"},
    /* qa takes promote from anywhere (no promote_from); promote_after 0 */
    {PR, "qa", "staging", "web", "shell:alice", CON, NULL, WED, 0, EV_YOUNG, 0, 0, 0, GOV_OK, "", PEND, 1, 0, NULL, NULL},
    {PR, "qa", "staging", "web", "shell:alice", CON, NULL, WED, 0, EV_SICK, 0, 0, 0, GOV_EVIDENCE_UNHEALTHY, "promote_from", 0,
     -1, 0, NULL, NULL},
    /* production freeze: Fri 16:00 - Mon 08:00 Europe/Berlin across the spring DST change (29 March 2026) */
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, "2026-03-27 14:59:59", 0, EV_GOOD, 0, 0, 0, GOV_OK, "", PEND, 2,
     0, NULL, NULL},
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, "2026-03-27 15:00:00", 0, EV_GOOD, 0, 0, 0, GOV_FROZEN,
     "freeze", 0, -1, 0, "2026-03-30 06:00:00",
     "production is frozen until Mon 08:00 Europe/Berlin (06:00 UTC) (freeze: Fri 16:00 - Mon 08:00 Europe/Berlin); --emergency"},
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, "2026-03-29 01:30:00", 0, EV_GOOD, 0, 0, 0, GOV_FROZEN,
     "freeze", 0, -1, 0, "2026-03-30 06:00:00", NULL},
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, "2026-03-30 05:59:59", 0, EV_GOOD, 0, 0, 0, GOV_FROZEN,
     "freeze", 0, -1, 0, "2026-03-30 06:00:00", NULL},
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, "2026-03-30 06:00:00", 0, EV_GOOD, 0, 0, 0, GOV_OK, "", PEND, 2,
     0, NULL, NULL},
    /* ... and the autumn one (25 October 2026) */
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, "2026-10-23 13:59:59", 0, EV_GOOD, 0, 0, 0, GOV_OK, "", PEND, 2,
     0, NULL, NULL},
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, "2026-10-23 14:00:00", 0, EV_GOOD, 0, 0, 0, GOV_FROZEN,
     "freeze", 0, -1, 0, "2026-10-26 07:00:00", NULL},
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, "2026-10-25 00:30:00", 0, EV_GOOD, 0, 0, 0, GOV_FROZEN,
     "freeze", 0, -1, 0, "2026-10-26 07:00:00", NULL},
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, "2026-10-26 06:59:59", 0, EV_GOOD, 0, 0, 0, GOV_FROZEN,
     "freeze", 0, -1, 0, "2026-10-26 07:00:00", NULL},
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, "2026-10-26 07:00:00", 0, EV_GOOD, 0, 0, 0, GOV_OK, "", PEND, 2,
     0, NULL, NULL},
    /* absolute range 2026-12-22 - 2027-01-04 UTC (to 24:00 of the last day), chained with the weekly window */
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, "2026-12-21 23:59:59", 0, EV_GOOD, 0, 0, 0, GOV_OK, "", PEND, 2,
     0, NULL, NULL},
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, "2026-12-22 00:00:00", 0, EV_GOOD, 0, 0, 0, GOV_FROZEN,
     "freeze", 0, -1, 0, "2027-01-05 00:00:00", "(freeze: 2026-12-22 - 2027-01-04 UTC)"},
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, "2027-01-01 16:00:00", 0, EV_GOOD, 0, 0, 0, GOV_FROZEN,
     "freeze", 0, -1, 0, "2027-01-05 00:00:00", NULL},
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, "2027-01-04 23:59:59", 0, EV_GOOD, 0, 0, 0, GOV_FROZEN,
     "freeze", 0, -1, 0, "2027-01-05 00:00:00", NULL},
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, "2027-01-05 00:00:00", 0, EV_GOOD, 0, 0, 0, GOV_OK, "", PEND, 2,
     0, NULL, NULL},
    {PR, "production", "staging", "web", "slack:U1", PROD, NULL, "2026-12-18 15:00:00", 0, EV_GOOD, 0, 0, 0, GOV_FROZEN,
     "freeze", 0, -1, 0, "2026-12-21 07:00:00", NULL},
    /* break-glass: one extra approval; the requester cannot be one of them */
    {PR, "production", "staging", "web", "shell:alice", CON, "outage", "2026-03-27 15:00:00", 0, EV_GOOD, 0, 0, 0, GOV_OK,
     "emergency", PEND, 3, BG | EM, "2026-03-30 06:00:00", "break-glass (--emergency, 3 approvals): production is frozen"},
    {PR, "production", "staging", "web", "shell:alice", CON, "outage", WED, 0, EV_GOOD, 0, 0, 0, GOV_OK, "", PEND, 3, EM, NULL,
     "waits for 3 approvals"},
    {PR, "production", "staging", "web", "slack:U1", PROD, "outage", "2026-03-27 15:00:00", 0, EV_GOOD, 0, 0, 0,
     GOV_APPROVALS_IMPOSSIBLE, "self_approval", 0, 3, EM, NULL,
     "production needs 3 approvals from distinct people other than you (self_approval: false), and only 2 can give them: carol, "
     "slack:U7"},
    {PR, "production", "staging", "web", "shell:bob", CON, "outage", WED, 0, EV_GOOD, 0, 0, 0, GOV_APPROVALS_IMPOSSIBLE,
     "self_approval", 0, 3, EM, NULL, NULL},
    {PR, "production", "staging", "web", "shell:alice", CON, "x", "2026-03-27 15:00:00", 0, EV_YOUNG, 0, 0, 0,
     GOV_EVIDENCE_TOO_SOON, "promote_after", 0, 3, EM, NULL, NULL},
    {PR, "production", "staging", "web", "shell:alice", CON, NULL, WED, 1, EV_GOOD, 0, 0, 0, GOV_LOCKED, "lock", 0, -1, 0, NULL,
     "production is locked by slack:U2 since 2026-03-24 09:00:00 UTC: db migration; `unlock production` lifts it"},
    {PR, "production", "staging", "web", "shell:alice", CON, "hotfix", WED, 1, EV_GOOD, 0, 0, 0, GOV_OK, "emergency", PEND, 3,
     BG | EM, NULL, "break-glass"},
    /* rollback: not bound by promote_from, bound by freezes and approvals */
    {RB, "production", NULL, "web", "slack:U1", PROD, NULL, WED, 0, 0, 0, 0, 0, GOV_OK, "", PEND, 2, 0, NULL, NULL},
    {RB, "production", NULL, "web", "slack:U1", PROD, NULL, "2026-03-28 12:00:00", 0, 0, 0, 0, 0, GOV_FROZEN, "freeze", 0, -1, 0,
     "2026-03-30 06:00:00", NULL},
    {RB, "ops", NULL, "api", "slack:U1", "slack:C1", NULL, WED, 0, 0, 0, 0, 0, GOV_OK, "", PEND, 1, 0, NULL, NULL},
    {RB, "ops", NULL, "api", "shell:alice", CON, NULL, WED, 0, 0, 0, 0, 0, GOV_NOT_DEPLOYER, "deployers", 0, -1, 0, NULL, NULL},
    /* dr: fewer eligible people than approvals */
    {D, "dr", NULL, "web", "slack:U1", "slack:C1", NULL, WED, 0, 0, 0, 0, 0, GOV_APPROVALS_IMPOSSIBLE, "approvers", 0, 3, 0, NULL,
     "dr needs 3 approvals from distinct people other than you (self_approval: false), and only 2 can give them: erin, carol"},
    {D, "dr", NULL, "web", "slack:U2", "slack:C1", NULL, WED, 0, 0, 0, 0, 0, GOV_APPROVALS_IMPOSSIBLE, "approvers", 0, 3, 0, NULL,
     "only 1 can give them: erin"},
    /* sandbox: anyone, no approvers, so no break-glass */
    {D, "sandbox", NULL, "web", "slack:U8", "slack:anything", NULL, WED, 0, 0, 0, 0, 0, GOV_OK, "", QUE, 0, 0, NULL, NULL},
    {D, "sandbox", NULL, "web", "slack:U8", NULL, NULL, WED, 0, 0, 0, 0, 0, GOV_OK, "", QUE, 0, 0, NULL, NULL},
    {D, "sandbox", NULL, "web", "slack:U8", NULL, "why", WED, 0, 0, 0, 0, 0, GOV_APPROVALS_IMPOSSIBLE, "emergency", 0, 1, EM, NULL,
     "--emergency needs an approval from sandbox's approvers, and it has none"},
    /* qa: self_approval true; daily 22:00 - 06:00 America/New_York */
    {D, "qa", NULL, "web", "shell:alice", NULL, NULL, WED, 0, 0, 0, 0, 0, GOV_OK, "", PEND, 1, 0, NULL, NULL},
    {D, "qa", NULL, "web", "slack:U1", NULL, "x", WED, 0, 0, 0, 0, 0, GOV_OK, "", PEND, 2, EM, NULL, NULL},
    {D, "qa", NULL, "web", "shell:alice", NULL, NULL, "2026-01-16 02:59:59", 0, 0, 0, 0, 0, GOV_OK, "", PEND, 1, 0, NULL, NULL},
    {D, "qa", NULL, "web", "shell:alice", NULL, NULL, "2026-01-16 03:00:00", 0, 0, 0, 0, 0, GOV_FROZEN, "freeze", 0, -1, 0,
     "2026-01-16 11:00:00", "qa is frozen until Fri 06:00 America/New_York (11:00 UTC)"},
    {D, "qa", NULL, "web", "shell:alice", NULL, NULL, "2026-01-16 10:59:59", 0, 0, 0, 0, 0, GOV_FROZEN, "freeze", 0, -1, 0,
     "2026-01-16 11:00:00", NULL},
    {D, "qa", NULL, "web", "shell:alice", NULL, NULL, "2026-01-16 11:00:00", 0, 0, 0, 0, 0, GOV_OK, "", PEND, 1, 0, NULL, NULL},
    /* New York springs forward on 8 March 2026: a 7-hour night */
    {D, "qa", NULL, "web", "shell:alice", NULL, NULL, "2026-03-08 02:59:59", 0, 0, 0, 0, 0, GOV_OK, "", PEND, 1, 0, NULL, NULL},
    {D, "qa", NULL, "web", "shell:alice", NULL, NULL, "2026-03-08 03:00:00", 0, 0, 0, 0, 0, GOV_FROZEN, "freeze", 0, -1, 0,
     "2026-03-08 10:00:00", NULL},
    {D, "qa", NULL, "web", "shell:alice", NULL, NULL, "2026-03-08 09:59:59", 0, 0, 0, 0, 0, GOV_FROZEN, "freeze", 0, -1, 0,
     "2026-03-08 10:00:00", NULL},
    {D, "qa", NULL, "web", "shell:alice", NULL, NULL, "2026-03-08 10:00:00", 0, 0, 0, 0, 0, GOV_OK, "", PEND, 1, 0, NULL, NULL},
    /* ... and falls back on 1 November 2026: a 9-hour night */
    {D, "qa", NULL, "web", "shell:alice", NULL, NULL, "2026-11-01 01:59:59", 0, 0, 0, 0, 0, GOV_OK, "", PEND, 1, 0, NULL, NULL},
    {D, "qa", NULL, "web", "shell:alice", NULL, NULL, "2026-11-01 02:00:00", 0, 0, 0, 0, 0, GOV_FROZEN, "freeze", 0, -1, 0,
     "2026-11-01 11:00:00", NULL},
    {D, "qa", NULL, "web", "shell:alice", NULL, NULL, "2026-11-01 10:59:59", 0, 0, 0, 0, 0, GOV_FROZEN, "freeze", 0, -1, 0,
     "2026-11-01 11:00:00", NULL},
    {D, "qa", NULL, "web", "shell:alice", NULL, NULL, "2026-11-01 11:00:00", 0, 0, 0, 0, 0, GOV_OK, "", PEND, 1, 0, NULL, NULL},
    /* summer: EDT */
    {D, "qa", NULL, "web", "shell:alice", NULL, NULL, "2026-07-16 01:59:59", 0, 0, 0, 0, 0, GOV_OK, "", PEND, 1, 0, NULL, NULL},
    {D, "qa", NULL, "web", "shell:alice", NULL, NULL, "2026-07-16 02:00:00", 0, 0, 0, 0, 0, GOV_FROZEN, "freeze", 0, -1, 0,
     "2026-07-16 10:00:00", NULL},
    /* 4 July (local) chains with the nights on either side */
    {D, "qa", NULL, "web", "shell:alice", NULL, NULL, "2026-07-04 03:00:00", 0, 0, 0, 0, 0, GOV_FROZEN, "freeze", 0, -1, 0,
     "2026-07-05 10:00:00", NULL},
    {D, "qa", NULL, "web", "shell:alice", NULL, NULL, "2026-07-04 15:00:00", 0, 0, 0, 0, 0, GOV_FROZEN, "freeze", 0, -1, 0,
     "2026-07-05 10:00:00", "(freeze: 2026-07-04 - 2026-07-04 America/New_York)"},
    {D, "qa", NULL, "web", "shell:alice", NULL, NULL, "2026-07-05 09:59:59", 0, 0, 0, 0, 0, GOV_FROZEN, "freeze", 0, -1, 0,
     "2026-07-05 10:00:00", NULL},
    {D, "qa", NULL, "web", "shell:alice", NULL, NULL, "2026-07-05 10:00:00", 0, 0, 0, 0, 0, GOV_OK, "", PEND, 1, 0, NULL, NULL},
    {D, "qa", NULL, "web", "shell:alice", NULL, "night fix", "2026-01-16 04:00:00", 0, 0, 0, 0, 0, GOV_OK, "emergency", PEND, 2,
     BG | EM, "2026-01-16 11:00:00", NULL},
};

static void check_verdict(const char *what, size_t i, const gov_verdict *v, enum gov_tag tag, enum gov_tag want,
                          const char *rule, const char *until, const char *substr) {
    if (tag != want)
        fail_msg("%s %zu: got %s (%s: %s), want %s", what, i, gov_tag_name(tag), v->rule, v->message,
                 gov_tag_name(want));
    assert_int_equal(tag, v->tag);
    if (rule && strcmp(rule, v->rule) != 0) fail_msg("%s %zu: rule '%s', want '%s' (%s)", what, i, v->rule, rule, v->message);
    if (until && v->until != T(until))
        fail_msg("%s %zu: until %" PRId64 ", want %s (%" PRId64 ")", what, i, v->until, until, T(until));
    if (substr && !strstr(v->message, substr)) fail_msg("%s %zu: message '%s' lacks '%s'", what, i, v->message, substr);
    if (tag != GOV_OK && !v->message[0]) fail_msg("%s %zu: refusal without a message", what, i);
    if (strlen(v->message) >= sizeof v->message) fail_msg("%s %zu: unterminated", what, i);
}

static gov_lock the_lock(void) {
    gov_lock l;
    memset(&l, 0, sizeof l);
    l.locked = true;
    snprintf(l.by, sizeof l.by, "slack:U2");
    snprintf(l.reason, sizeof l.reason, "db migration");
    l.since = T("2026-03-24 09:00:00");
    return l;
}

static void test_requests(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof req_cases / sizeof req_cases[0]; i++) {
        const struct req_case *c = &req_cases[i];
        gov_ctx ctx = ctx_at(c->now);
        gov_evidence ev;
        make_evidence(c->ev, ctx.now, &ev);
        gov_lock lock = the_lock();
        gov_request_in in = {c->kind, c->env, c->from, c->job, c->actor, c->channel, c->emergency, c->lock ? &lock : NULL,
                             c->ev ? &ev : NULL, c->open, c->recent, c->same_job};
        gov_verdict v;
        enum gov_tag t = gov_may_request(&ctx, &in, &v);
        check_verdict("request", i, &v, t, c->want, c->rule, c->until, c->substr);
        if (c->required >= 0 && v.required != c->required)
            fail_msg("request %zu: required %d, want %d", i, v.required, c->required);
        if ((v.flags & c->flags) != c->flags) fail_msg("request %zu: flags %x lack %x", i, v.flags, c->flags);
        if (!(c->flags & BG) && (v.flags & BG)) fail_msg("request %zu: unexpected break-glass", i);
        if (t == GOV_OK) {
            if (v.next != c->next) fail_msg("request %zu: next %s, want %s", i, req_state_name(v.next), req_state_name(c->next));
            assert_true(request_initial_allowed(v.next));
        } else {
            assert_int_equal(v.next, REQ_STATE_NONE);
        }
    }
}

/* ---- approvals: scenarios of clicks ---- */

struct click {
    const char *actor;
    int64_t after;      /* seconds after the request was created */
    const char *channel;
    int lock;
    enum gov_tag want;
    int complete;       /* 1 = this click completes it */
};

struct approve_case {
    const char *env, *requester, *emergency, *created;
    struct click clicks[6];
};

static const struct approve_case approve_cases[] = {
    /* one person, two identities: bob counts once */
    {"production", "shell:alice", NULL, WED,
     {{"slack:U1", 10, NULL, 0, GOV_OK, 0}, {"shell:bob", 20, NULL, 0, GOV_ALREADY_COUNTED, 0},
      {"slack:U1", 25, NULL, 0, GOV_ALREADY_COUNTED, 0}, {"slack:U2", 30, NULL, 0, GOV_OK, 1}}},
    /* the requester never counts, whichever identity clicks */
    {"production", "slack:U1", NULL, WED,
     {{"shell:bob", 10, NULL, 0, GOV_SELF_APPROVAL, 0}, {"slack:U1", 11, NULL, 0, GOV_SELF_APPROVAL, 0},
      {"slack:U2", 12, NULL, 0, GOV_OK, 0}, {"slack:U7", 13, NULL, 0, GOV_OK, 1}}},
    {"production", "shell:bob", NULL, WED,
     {{"slack:U1", 10, NULL, 0, GOV_SELF_APPROVAL, 0}, {"slack:U7", 12, NULL, 0, GOV_OK, 0},
      {"slack:U7", 13, NULL, 0, GOV_ALREADY_COUNTED, 0}, {"slack:U2", 14, NULL, 0, GOV_OK, 1}}},
    /* non-approvers */
    {"production", "shell:alice", NULL, WED,
     {{"slack:U3", 10, NULL, 0, GOV_NOT_APPROVER, 0}, {"mattermost:m3", 11, NULL, 0, GOV_NOT_APPROVER, 0},
      {"slack:UA", 12, NULL, 0, GOV_NOT_APPROVER, 0}, {"slack:U7", 13, NULL, 0, GOV_OK, 0},
      {"slack:U2", 14, NULL, 0, GOV_OK, 1}}},
    /* approval_ttl 4h, to the second */
    {"production", "shell:alice", NULL, WED,
     {{"slack:U1", 4 * 3600 - 1, NULL, 0, GOV_OK, 0}, {"slack:U2", 4 * 3600, NULL, 0, GOV_EXPIRED, 0}}},
    /* self_approval: true counts the requester, once */
    {"qa", "shell:bob", NULL, WED, {{"slack:U1", 5, NULL, 0, GOV_OK, 1}}},
    {"qa", "shell:alice", NULL, WED,
     {{"slack:UA", 5, NULL, 0, GOV_NOT_APPROVER, 0}, {"slack:U5", 6, NULL, 0, GOV_OK, 1}}},
    {"qa", "shell:alice", NULL, WED, {{"slack:U5", 3600, NULL, 0, GOV_EXPIRED, 0}}},
    /* break-glass inside the freeze: three people, not the requester */
    {"production", "shell:alice", "outage", "2026-03-27 15:00:00",
     {{"slack:U1", 60, NULL, 0, GOV_OK, 0}, {"slack:U2", 120, NULL, 0, GOV_OK, 0},
      {"shell:bob", 150, NULL, 0, GOV_ALREADY_COUNTED, 0}, {"slack:U7", 180, NULL, 0, GOV_OK, 1}}},
    /* a freeze that starts while waiting holds approvals, to the second */
    {"production", "shell:alice", NULL, "2026-03-27 14:00:00",
     {{"slack:U1", 3599, NULL, 0, GOV_OK, 0}, {"slack:U2", 3600, NULL, 0, GOV_FROZEN, 0},
      {"slack:U7", 3601, NULL, 0, GOV_FROZEN, 0}}},
    /* a manual lock holds approvals; break-glass passes it */
    {"production", "shell:alice", NULL, WED, {{"slack:U1", 10, NULL, 1, GOV_LOCKED, 0}, {"slack:U1", 20, NULL, 0, GOV_OK, 0}}},
    {"production", "shell:alice", "hotfix", WED,
     {{"slack:U1", 10, NULL, 1, GOV_OK, 0}, {"slack:U2", 20, NULL, 1, GOV_OK, 0}, {"slack:U7", 30, NULL, 1, GOV_OK, 1}}},
    /* channels: a typed approve from elsewhere is refused, a button (NULL) is fine */
    {"production", "shell:alice", NULL, WED,
     {{"slack:U1", 10, "slack:C0OTHER", 0, GOV_WRONG_CHANNEL, 0}, {"slack:U1", 11, PROD, 0, GOV_OK, 0},
      {"slack:U2", 12, CON, 0, GOV_OK, 1}}},
    /* raw identity in a group, requester by it */
    {"ops", "slack:U7", NULL, WED, {{"slack:U7", 10, NULL, 0, GOV_SELF_APPROVAL, 0}, {"shell:bob", 11, NULL, 0, GOV_OK, 1}}},
    {"ops", "slack:U1", NULL, WED, {{"shell:bob", 10, NULL, 0, GOV_SELF_APPROVAL, 0}, {"slack:U8", 11, NULL, 0, GOV_NOT_APPROVER, 0},
                                    {"bogus", 12, NULL, 0, GOV_BAD_INPUT, 0}, {"slack:U2", 13, NULL, 0, GOV_OK, 1}}},
    /* qa in the night: held */
    {"qa", "shell:alice", NULL, "2026-01-16 02:30:00",
     {{"slack:U5", 1799, NULL, 0, GOV_OK, 1}}},
    {"qa", "shell:alice", NULL, "2026-01-16 02:30:00", {{"slack:U5", 1800, NULL, 0, GOV_FROZEN, 0}}},
    /* staging emergency: one approval from sre */
    {"staging", "shell:alice", "why", WED, {{"slack:U5", 10, NULL, 0, GOV_NOT_APPROVER, 0}, {"slack:U2", 20, NULL, 0, GOV_OK, 1}}},
};

static void make_request(gov_request *req, const char *env, const char *requester, const char *emergency,
                         int64_t created, enum gov_kind kind) {
    gov_ctx ctx = {cfg, zone_fn, NULL, gov_limits_default, created};
    gov_request_in in = {kind, env, NULL, "web", requester, NULL, emergency, NULL, NULL, 0, 0, 0};
    const config_env *e = config_find_env(cfg, env);
    assert_non_null(e);
    gov_verdict v;
    memset(&v, 0, sizeof v);
    v.required = gov_required_approvals(e, emergency && *emergency);
    v.next = v.required ? REQ_PENDING_APPROVAL : REQ_QUEUED;
    gov_request_init(req, &ctx, &in, &v, 42);
}

static void test_approvals(void **state) {
    (void)state;
    int clicks = 0;
    for (size_t i = 0; i < sizeof approve_cases / sizeof approve_cases[0]; i++) {
        const struct approve_case *c = &approve_cases[i];
        gov_request req;
        make_request(&req, c->env, c->requester, c->emergency, T(c->created), GOV_KIND_DEPLOY);
        assert_int_equal(req.state, REQ_PENDING_APPROVAL);
        for (size_t k = 0; k < 6 && c->clicks[k].actor; k++, clicks++) {
            const struct click *cl = &c->clicks[k];
            gov_ctx ctx = {cfg, zone_fn, NULL, gov_limits_default, req.created_at + cl->after};
            gov_lock lock = the_lock();
            gov_verdict v;
            enum gov_tag t = gov_approve(&ctx, &req, cl->actor, cl->channel, cl->lock ? &lock : NULL, &v);
            char what[32];
            snprintf(what, sizeof what, "approve %zu.", i);
            check_verdict(what, k, &v, t, cl->want, NULL, NULL, NULL);
            if (t == GOV_OK) {
                assert_true(v.flags & GOV_F_COUNTED);
                assert_int_equal(gov_request_add_approval(&req, cfg, cl->actor, ctx.now), 0);
                assert_int_equal(gov_count_approvals(cfg, &req), v.counted);
                if (cl->complete) {
                    assert_true(v.flags & GOV_F_COMPLETE);
                    assert_int_equal(v.next, REQ_APPROVED);
                    assert_int_equal(gov_request_set_state(&req, REQ_APPROVED, 0, 0), 0);
                } else {
                    assert_false(v.flags & GOV_F_COMPLETE);
                    assert_int_equal(v.next, REQ_STATE_NONE);
                }
            } else {
                assert_false(v.flags & GOV_F_COUNTED);
                if (t == GOV_EXPIRED) assert_int_equal(v.next, REQ_EXPIRED);
            }
        }
        /* After completion nothing more is approved. */
        if (req.state == REQ_APPROVED) {
            gov_ctx ctx = ctx_at(c->created);
            gov_verdict v;
            assert_int_equal(gov_approve(&ctx, &req, "slack:U5", NULL, NULL, &v), GOV_WRONG_STATE);
        }
    }
    assert_true(clicks >= 40);
}

static void test_approval_messages(void **state) {
    (void)state;
    gov_request req;
    make_request(&req, "production", "slack:U1", NULL, T(WED), GOV_KIND_PROMOTE);
    gov_ctx ctx = ctx_at(WED);
    gov_verdict v;
    assert_int_equal(gov_approve(&ctx, &req, "shell:bob", NULL, NULL, &v), GOV_SELF_APPROVAL);
    assert_string_equal(v.rule, "self_approval");
    assert_string_equal(v.message,
                        "you requested D-42 (as bob); production does not count the requester's approval (self_approval: false)");
    assert_int_equal(gov_approve(&ctx, &req, "slack:U3", NULL, NULL, &v), GOV_NOT_APPROVER);
    assert_string_equal(v.message, "only sre may approve requests for production (approvers)");
    assert_int_equal(gov_approve(&ctx, &req, "slack:U2", NULL, NULL, &v), GOV_OK);
    assert_string_equal(v.message, "D-42 approved by carol: 1 of 2");
    gov_request_add_approval(&req, cfg, "slack:U2", ctx.now);
    assert_int_equal(gov_approve(&ctx, &req, "slack:U2", NULL, NULL, &v), GOV_ALREADY_COUNTED);
    assert_string_equal(v.message, "carol's approval of D-42 is already counted (as slack:U2)");
    assert_int_equal(gov_approve(&ctx, &req, "slack:U7", NULL, NULL, &v), GOV_OK);
    assert_string_equal(v.message, "D-42 approved by slack:U7: 2 of 2, ready to run");
    /* A recorded approval from an identity of someone who is no longer eligible does not count. */
    gov_request r2;
    make_request(&r2, "production", "shell:alice", NULL, T(WED), GOV_KIND_PROMOTE);
    gov_request_add_approval(&r2, cfg, "slack:U3", ctx.now);    /* not an approver */
    gov_request_add_approval(&r2, cfg, "slack:U1", ctx.now);
    gov_request_add_approval(&r2, cfg, "shell:bob", ctx.now);   /* same person */
    assert_int_equal(gov_count_approvals(cfg, &r2), 1);
    /* A changed policy hash: reload first. */
    r2.policy_hash ^= 1;
    assert_int_equal(gov_approve(&ctx, &r2, "slack:U2", NULL, NULL, &v), GOV_POLICY_CHANGED);
}

/* ---- reject and cancel ---- */

struct rc_case {
    const char *env, *requester;
    enum req_state state;
    int cancel;          /* 0 reject, 1 cancel */
    const char *actor, *channel;
    enum gov_tag want;
    const char *substr;
};

static const struct rc_case rc_cases[] = {
    {"production", "shell:alice", PEND, 0, "slack:U2", NULL, GOV_OK, "D-42 rejected"},
    {"production", "shell:alice", PEND, 0, "shell:bob", PROD, GOV_OK, NULL},
    {"production", "shell:alice", PEND, 0, "shell:alice", NULL, GOV_NOT_APPROVER, "`cancel` withdraws your own"},
    {"production", "shell:alice", PEND, 0, "slack:U3", NULL, GOV_NOT_APPROVER, NULL},
    {"production", "shell:alice", PEND, 0, "slack:U2", "slack:C9", GOV_WRONG_CHANNEL, NULL},
    {"qa", "shell:bob", PEND, 0, "slack:U1", NULL, GOV_OK, NULL},
    {"production", "shell:alice", QUE, 0, "slack:U2", NULL, GOV_WRONG_STATE, "D-42 is queued: nothing to reject; `cancel` withdraws it"},
    {"production", "shell:alice", REQ_APPROVED, 0, "slack:U2", NULL, GOV_WRONG_STATE, NULL},
    {"production", "shell:alice", REQ_REJECTED, 0, "slack:U2", NULL, GOV_WRONG_STATE, "D-42 is rejected: nothing to reject"},
    {"production", "shell:alice", PEND, 0, "", NULL, GOV_BAD_INPUT, NULL},
    {"production", "shell:alice", PEND, 1, "shell:alice", NULL, GOV_OK, "D-42 cancelled"},
    {"production", "shell:alice", PEND, 1, "slack:UA", NULL, GOV_OK, NULL},
    {"production", "shell:alice", PEND, 1, "slack:U2", NULL, GOV_OK, NULL},
    {"production", "shell:alice", PEND, 1, "slack:U3", NULL, GOV_NOT_ALLOWED,
     "only the requester or an approver of production may cancel D-42"},
    {"production", "shell:alice", PEND, 1, "slack:UA", "slack:C9", GOV_WRONG_CHANNEL, NULL},
    {"production", "shell:alice", REQ_APPROVED, 1, "shell:alice", NULL, GOV_OK, NULL},
    {"production", "shell:alice", QUE, 1, "slack:U7", NULL, GOV_OK, NULL},
    {"staging", "shell:alice", QUE, 1, "slack:UA", NULL, GOV_OK, NULL},
    {"staging", "shell:alice", QUE, 1, "mattermost:m3", NULL, GOV_NOT_ALLOWED, NULL},
    {"production", "shell:alice", REQ_RUNNING, 1, "shell:alice", NULL, GOV_WRONG_STATE,
     "D-42 is running: nothing to cancel; to stop it use `canary fail` or `rollback`"},
    {"production", "shell:alice", REQ_SUCCEEDED, 1, "shell:alice", NULL, GOV_WRONG_STATE, NULL},
    {"production", "shell:alice", REQ_EXPIRED, 1, "slack:U2", NULL, GOV_WRONG_STATE, NULL},
    {"production", "shell:alice", REQ_CANCELLED, 1, "slack:U2", NULL, GOV_WRONG_STATE, NULL},
};

static void test_reject_cancel(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof rc_cases / sizeof rc_cases[0]; i++) {
        const struct rc_case *c = &rc_cases[i];
        gov_request req;
        make_request(&req, c->env, c->requester, NULL, T(WED), GOV_KIND_DEPLOY);
        req.state = c->state;
        if (c->state == REQ_RUNNING) req.phase = REQ_PHASE_ROLLING;
        gov_ctx ctx = ctx_at(WED);
        gov_verdict v;
        enum gov_tag t = c->cancel ? gov_cancel(&ctx, &req, c->actor, c->channel, &v)
                                   : gov_reject(&ctx, &req, c->actor, c->channel, &v);
        check_verdict(c->cancel ? "cancel" : "reject", i, &v, t, c->want, NULL, NULL, c->substr);
        if (t == GOV_OK) {
            assert_int_equal(v.next, c->cancel ? REQ_CANCELLED : REQ_REJECTED);
            assert_true(request_transition_allowed(req.state, v.next));
        }
    }
}

/* ---- acting on a running deployment ---- */

struct act_case {
    const char *env, *requester, *emergency;
    int approvals;     /* approvals recorded: first n of U1, U2, U7 */
    enum req_state state;
    enum req_phase phase;
    enum cmd_kind action;
    const char *sub, *actor, *channel, *now;
    int lock;
    enum gov_tag want;
    unsigned flags;
};

#define AW REQ_PHASE_AWAITING_PROMOTION
#define RO REQ_PHASE_ROLLING
#define PA REQ_PHASE_PAUSED
#define RUN REQ_RUNNING

static const struct act_case act_cases[] = {
    {"production", "shell:alice", NULL, 2, RUN, AW, CMD_CANARY, "promote", "slack:U2", PROD, WED, 0, GOV_OK, 0},
    {"production", "shell:alice", NULL, 2, RUN, AW, CMD_CANARY, "promote", "shell:bob", CON, WED, 0, GOV_OK, 0},
    {"production", "shell:alice", NULL, 2, RUN, AW, CMD_CANARY, "promote", "shell:alice", CON, WED, 0, GOV_NOT_ALLOWED, 0},
    {"production", "shell:alice", NULL, 2, RUN, AW, CMD_CANARY, "promote", "slack:U2", "slack:C9", WED, 0, GOV_WRONG_CHANNEL, 0},
    {"production", "shell:alice", NULL, 2, RUN, RO, CMD_CANARY, "promote", "slack:U2", PROD, WED, 0, GOV_WRONG_PHASE, 0},
    {"production", "shell:alice", NULL, 2, RUN, RO, CMD_CANARY, "fail", "slack:U2", PROD, WED, 0, GOV_OK, 0},
    {"production", "shell:alice", NULL, 2, RUN, PA, CMD_CANARY, "fail", "slack:U2", PROD, WED, 0, GOV_WRONG_PHASE, 0},
    {"production", "shell:alice", NULL, 2, RUN, AW, CMD_CANARY, "maybe", "slack:U2", PROD, WED, 0, GOV_BAD_INPUT, 0},
    {"production", "shell:alice", NULL, 2, RUN, RO, CMD_PAUSE, NULL, "slack:U2", PROD, WED, 0, GOV_OK, 0},
    {"production", "shell:alice", NULL, 2, RUN, AW, CMD_PAUSE, NULL, "slack:U2", PROD, WED, 0, GOV_OK, 0},
    {"production", "shell:alice", NULL, 2, RUN, PA, CMD_PAUSE, NULL, "slack:U2", PROD, WED, 0, GOV_WRONG_PHASE, 0},
    {"production", "shell:alice", NULL, 2, RUN, REQ_PHASE_REGISTERING, CMD_PAUSE, NULL, "slack:U2", PROD, WED, 0,
     GOV_WRONG_PHASE, 0},
    {"production", "shell:alice", NULL, 2, RUN, PA, CMD_RESUME, NULL, "slack:U2", PROD, WED, 0, GOV_OK, 0},
    {"production", "shell:alice", NULL, 2, RUN, RO, CMD_RESUME, NULL, "slack:U2", PROD, WED, 0, GOV_WRONG_PHASE, 0},
    {"production", "shell:alice", NULL, 2, QUE, 0, CMD_PAUSE, NULL, "slack:U2", PROD, WED, 0, GOV_WRONG_STATE, 0},
    {"production", "shell:alice", NULL, 2, REQ_SUCCEEDED, 0, CMD_CANARY, "fail", "slack:U2", PROD, WED, 0, GOV_WRONG_STATE, 0},
    {"production", "shell:alice", NULL, 2, RUN, AW, CMD_DEPLOY, NULL, "slack:U2", PROD, WED, 0, GOV_BAD_INPUT, 0},
    /* freezes hold canary promote and resume, not fail and pause */
    {"production", "shell:alice", NULL, 2, RUN, AW, CMD_CANARY, "promote", "slack:U2", PROD, "2026-03-27 15:00:00", 0,
     GOV_FROZEN, 0},
    {"production", "shell:alice", NULL, 2, RUN, AW, CMD_CANARY, "promote", "slack:U2", PROD, "2026-03-27 14:59:59", 0, GOV_OK, 0},
    {"production", "shell:alice", NULL, 2, RUN, AW, CMD_CANARY, "fail", "slack:U2", PROD, "2026-03-27 15:00:00", 0, GOV_OK, 0},
    {"production", "shell:alice", NULL, 2, RUN, RO, CMD_PAUSE, NULL, "slack:U2", PROD, "2026-03-27 15:00:00", 0, GOV_OK, 0},
    {"production", "shell:alice", NULL, 2, RUN, PA, CMD_RESUME, NULL, "slack:U2", PROD, WED, 1, GOV_LOCKED, 0},
    {"production", "shell:alice", "outage", 3, RUN, AW, CMD_CANARY, "promote", "slack:U2", PROD, "2026-03-27 15:00:00", 0, GOV_OK,
     BG},
    {"production", "shell:alice", "outage", 2, RUN, AW, CMD_CANARY, "promote", "slack:U2", PROD, "2026-03-27 15:00:00", 0,
     GOV_FROZEN, 0},
    /* approvals: 0 lets the requester act, any identity of theirs */
    {"staging", "shell:alice", NULL, 0, RUN, AW, CMD_CANARY, "promote", "slack:UA", "slack:C1", WED, 0, GOV_OK, 0},
    {"staging", "shell:alice", NULL, 0, RUN, AW, CMD_CANARY, "promote", "slack:U3", "slack:C1", WED, 0, GOV_NOT_ALLOWED, 0},
    {"staging", "shell:alice", NULL, 0, RUN, AW, CMD_CANARY, "promote", "slack:U7", "slack:C1", WED, 0, GOV_OK, 0},
    {"staging", "shell:alice", NULL, 0, RUN, RO, CMD_PAUSE, NULL, "shell:alice", CON, WED, 0, GOV_OK, 0},
    {"qa", "shell:alice", NULL, 1, RUN, RO, CMD_PAUSE, NULL, "shell:alice", CON, WED, 0, GOV_NOT_ALLOWED, 0},
    {"qa", "shell:alice", NULL, 1, RUN, RO, CMD_PAUSE, NULL, "slack:U5", CON, WED, 0, GOV_OK, 0},
};

static void add_n_approvals(gov_request *req, int n, int64_t at) {
    const char *ids[] = {"slack:U1", "slack:U2", "slack:U7"};
    for (int k = 0; k < n && k < 3; k++) gov_request_add_approval(req, cfg, ids[k], at);
}

static void test_act(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof act_cases / sizeof act_cases[0]; i++) {
        const struct act_case *c = &act_cases[i];
        gov_request req;
        make_request(&req, c->env, c->requester, c->emergency, T(WED) - 600, GOV_KIND_DEPLOY);
        add_n_approvals(&req, c->approvals, T(WED) - 300);
        req.state = c->state;
        req.phase = c->phase;
        gov_ctx ctx = ctx_at(c->now);
        gov_lock lock = the_lock();
        gov_verdict v;
        enum gov_tag t = gov_may_act(&ctx, &req, c->action, c->sub, c->actor, c->channel, c->lock ? &lock : NULL, &v);
        check_verdict("act", i, &v, t, c->want, NULL, NULL, NULL);
        if ((v.flags & c->flags) != c->flags) fail_msg("act %zu: flags %x lack %x", i, v.flags, c->flags);
        assert_int_equal(v.next, REQ_STATE_NONE);
        assert_false(v.flags & GOV_F_DEFER);
    }
}

/* ---- manual locks ---- */

struct lock_case {
    int unlock;
    const char *env, *actor, *channel;
    int locked;
    enum gov_tag want;
    const char *rule;
};

static const struct lock_case lock_cases[] = {
    {0, "production", "slack:U2", PROD, 0, GOV_OK, ""},
    {0, "production", "shell:bob", CON, 0, GOV_OK, ""},
    {0, "production", "shell:alice", CON, 0, GOV_NOT_ALLOWED, "approvers"},
    {0, "production", "slack:U2", "slack:C9", 0, GOV_WRONG_CHANNEL, "channels"},
    {0, "production", "slack:U2", PROD, 1, GOV_ALREADY_LOCKED, "lock"},
    {1, "production", "slack:U7", PROD, 1, GOV_OK, ""},
    {1, "production", "slack:U7", PROD, 0, GOV_NOT_LOCKED, "lock"},
    {1, "production", "slack:U3", PROD, 1, GOV_NOT_ALLOWED, "approvers"},
    {0, "staging", "shell:alice", CON, 0, GOV_NOT_ALLOWED, "approvers"},
    {0, "sandbox", "slack:U8", NULL, 0, GOV_OK, ""},
    {0, "nowhere", "slack:U2", NULL, 0, GOV_UNKNOWN_ENV, "environments"},
    {0, "production", "U2", PROD, 0, GOV_BAD_INPUT, "identity"},
    {1, "qa", "slack:U5", NULL, 1, GOV_OK, ""},
};

static void test_locks(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof lock_cases / sizeof lock_cases[0]; i++) {
        const struct lock_case *c = &lock_cases[i];
        gov_ctx ctx = ctx_at(WED);
        gov_lock lock = the_lock();
        gov_verdict v;
        enum gov_tag t = c->unlock ? gov_may_unlock(&ctx, c->env, c->actor, c->channel, c->locked ? &lock : NULL, &v)
                                   : gov_may_lock(&ctx, c->env, c->actor, c->channel, c->locked ? &lock : NULL, &v);
        check_verdict("lock", i, &v, t, c->want, c->rule, NULL, NULL);
    }
}

/* ---- workers: take and register ---- */

struct run_case {
    const char *env, *emergency;
    int approvals;
    enum req_state state;
    enum req_phase phase;
    enum gov_point point;
    const char *now;
    int lock;
    enum gov_tag want;
    enum req_state next;
    unsigned flags;
    const char *until;
};

static const struct run_case run_cases[] = {
    {"production", NULL, 2, QUE, 0, GOV_AT_TAKE, WED, 0, GOV_OK, RUN, 0, NULL},
    {"production", NULL, 2, QUE, 0, GOV_AT_TAKE, "2026-03-27 15:00:00", 0, GOV_FROZEN, REQ_STATE_NONE, GOV_F_DEFER,
     "2026-03-30 06:00:00"},
    {"production", NULL, 2, RUN, REQ_PHASE_REGISTERING, GOV_AT_REGISTER, "2026-03-27 15:00:00", 0, GOV_FROZEN, QUE, GOV_F_DEFER,
     "2026-03-30 06:00:00"},
    {"production", NULL, 2, RUN, REQ_PHASE_REGISTERING, GOV_AT_REGISTER, "2026-03-27 14:59:59", 0, GOV_OK, REQ_STATE_NONE, 0,
     NULL},
    {"production", NULL, 2, RUN, REQ_PHASE_ROLLING, GOV_AT_REGISTER, WED, 0, GOV_WRONG_STATE, REQ_STATE_NONE, 0, NULL},
    {"production", NULL, 2, REQ_APPROVED, 0, GOV_AT_TAKE, WED, 0, GOV_WRONG_STATE, REQ_STATE_NONE, 0, NULL},
    {"production", NULL, 2, QUE, 0, GOV_AT_TAKE, WED, 1, GOV_LOCKED, REQ_STATE_NONE, GOV_F_DEFER, NULL},
    {"production", "outage", 3, QUE, 0, GOV_AT_TAKE, "2026-03-27 15:00:00", 0, GOV_OK, RUN, BG, NULL},
    {"production", "outage", 3, RUN, REQ_PHASE_REGISTERING, GOV_AT_REGISTER, "2026-03-27 15:00:00", 1, GOV_OK, REQ_STATE_NONE,
     BG, NULL},
    {"production", "outage", 2, QUE, 0, GOV_AT_TAKE, "2026-03-27 15:00:00", 0, GOV_NOT_ENOUGH_APPROVALS, REQ_EXPIRED, 0, NULL},
    {"production", NULL, 1, QUE, 0, GOV_AT_TAKE, WED, 0, GOV_NOT_ENOUGH_APPROVALS, REQ_EXPIRED, 0, NULL},
    {"production", NULL, 1, RUN, REQ_PHASE_REGISTERING, GOV_AT_REGISTER, WED, 0, GOV_NOT_ENOUGH_APPROVALS, QUE, 0, NULL},
    {"production", NULL, 2, QUE, 0, GOV_AT_TAKE, "2026-03-25 13:50:00", 0, GOV_EXPIRED, REQ_EXPIRED, 0, NULL},
    {"staging", NULL, 0, QUE, 0, GOV_AT_TAKE, "2026-04-25 10:00:00", 0, GOV_OK, RUN, 0, NULL},
    {"qa", NULL, 1, QUE, 0, GOV_AT_TAKE, "2026-01-16 04:00:00", 0, GOV_FROZEN, REQ_STATE_NONE, GOV_F_DEFER,
     "2026-01-16 11:00:00"},
};

static void test_run_checks(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof run_cases / sizeof run_cases[0]; i++) {
        const struct run_case *c = &run_cases[i];
        gov_ctx ctx = ctx_at(c->now);
        /* created 10 minutes before "now" unless the case tests expiry (created at WED - 10 min) */
        int64_t created = strcmp(c->now, "2026-03-25 13:50:00") == 0 ? T(WED) - 600 : ctx.now - 600;
        gov_request req;
        make_request(&req, c->env, "shell:alice", c->emergency, created, GOV_KIND_DEPLOY);
        add_n_approvals(&req, c->approvals, created + 60);
        req.state = c->state;
        req.phase = c->phase;
        gov_lock lock = the_lock();
        gov_verdict v;
        enum gov_tag t = gov_run_check(&ctx, &req, c->lock ? &lock : NULL, c->point, &v);
        check_verdict("run", i, &v, t, c->want, NULL, c->until, NULL);
        if (v.next != c->next) fail_msg("run %zu: next %s, want %s", i, req_state_name(v.next), req_state_name(c->next));
        if ((v.flags & c->flags) != c->flags) fail_msg("run %zu: flags %x lack %x", i, v.flags, c->flags);
        if (v.next != REQ_STATE_NONE) {
            enum req_phase ph = v.next == REQ_RUNNING ? REQ_PHASE_REGISTERING : REQ_PHASE_NONE;
            assert_int_equal(gov_request_set_state(&req, v.next, ph, 0), 0);
        }
    }
}

/* ---- expiry ---- */

static void test_expiry(void **state) {
    (void)state;
    gov_request req;
    make_request(&req, "production", "shell:alice", NULL, T(WED), GOV_KIND_PROMOTE);
    gov_ctx ctx = ctx_at("2026-03-25 13:59:59");
    gov_verdict v;
    assert_int_equal(gov_expire(&ctx, &req, &v), GOV_OK);
    assert_int_equal(v.until, T("2026-03-25 14:00:00"));
    ctx.now++;
    assert_int_equal(gov_expire(&ctx, &req, &v), GOV_EXPIRED);
    assert_int_equal(v.next, REQ_EXPIRED);
    assert_string_equal(v.rule, "approval_ttl");
    assert_string_equal(v.message, "D-42 expired at 2026-03-25 14:00:00 UTC: not run within approval_ttl 4h of the request");
    /* queued with approvals also lapses; a request needing none never does */
    req.state = REQ_QUEUED;
    assert_int_equal(gov_expire(&ctx, &req, &v), GOV_EXPIRED);
    req.state = REQ_RUNNING;
    assert_int_equal(gov_expire(&ctx, &req, &v), GOV_OK);
    gov_request s;
    make_request(&s, "staging", "shell:alice", NULL, T(WED), GOV_KIND_DEPLOY);
    ctx.now = T(WED) + 365 * 86400;
    assert_int_equal(gov_expire(&ctx, &s, &v), GOV_OK);
    assert_int_equal(gov_expires_at(&ctx, &s), INT64_MAX);
    /* default approval_ttl (24h) for ops */
    gov_request o;
    make_request(&o, "ops", "slack:U1", NULL, T(WED), GOV_KIND_DEPLOY);
    assert_int_equal(gov_expires_at(&ctx, &o), T(WED) + 86400);
    /* terminal requests do not expire again */
    o.state = REQ_REJECTED;
    assert_int_equal(gov_expire(&ctx, &o, &v), GOV_OK);
}

/* ---- reloads ---- */

static config *variant(const char *from, const char *to) {
    const char *at = strstr(yaml_base, from);
    assert_non_null(at);
    size_t n = strlen(yaml_base) + strlen(to) + 1;
    char *text = malloc(n);
    assert_non_null(text);
    snprintf(text, n, "%.*s%s%s", (int)(at - yaml_base), yaml_base, to, at + strlen(from));
    config *c = parse(text);
    free(text);
    return c;
}

static void test_reload(void **state) {
    (void)state;
    gov_request req;
    make_request(&req, "production", "shell:alice", NULL, T(WED), GOV_KIND_PROMOTE);
    gov_request_add_approval(&req, cfg, "slack:U1", T(WED) + 5);
    gov_verdict v;
    /* same config text: nothing changes */
    config *same = parse(yaml_base);
    gov_ctx ctx = {same, zone_fn, NULL, gov_limits_default, T(WED) + 10};
    assert_int_equal(gov_reload(&ctx, &req, &v), GOV_OK);
    assert_int_equal(v.flags, 0);
    assert_int_equal(v.next, REQ_STATE_NONE);
    config_free(same);

    /* a change elsewhere (qa's ttl, a job) leaves production's approvals alone */
    config *other = variant("    approval_ttl: 1h\n", "    approval_ttl: 2h\n");
    ctx.cfg = other;
    assert_int_equal(gov_reload(&ctx, &req, &v), GOV_OK);
    assert_int_equal(v.flags, 0);
    config_free(other);

    /* production needs 3 now: approvals void, still pending */
    config *three = variant("    approvals: 2\n", "    approvals: 3\n");
    ctx.cfg = three;
    assert_int_equal(gov_reload(&ctx, &req, &v), GOV_OK);
    assert_true(v.flags & GOV_F_VOIDED);
    assert_int_equal(v.required, 3);
    gov_request r2 = req;
    assert_int_equal(gov_request_apply_reload(&r2, &ctx, &v), 0);
    assert_int_equal(r2.n_approvals, 0);
    assert_int_equal(r2.required, 3);
    assert_int_equal(r2.state, REQ_PENDING_APPROVAL);
    assert_int_equal(gov_approve(&ctx, &r2, "slack:U1", NULL, NULL, &v), GOV_OK);   /* bob again, under the new hash */
    /* a queued request with 2 approvals does not satisfy 3: it lapses */
    gov_request q = req;
    gov_request_add_approval(&q, cfg, "slack:U2", T(WED) + 6);
    q.state = REQ_QUEUED;
    assert_int_equal(gov_reload(&ctx, &q, &v), GOV_NOT_ENOUGH_APPROVALS);
    assert_int_equal(v.next, REQ_EXPIRED);
    assert_int_equal(gov_request_apply_reload(&q, &ctx, &v), 0);
    assert_int_equal(q.state, REQ_EXPIRED);
    /* running and terminal requests are not touched */
    q.state = REQ_RUNNING;
    q.phase = REQ_PHASE_ROLLING;
    assert_int_equal(gov_reload(&ctx, &q, &v), GOV_OK);
    assert_int_equal(v.next, REQ_STATE_NONE);
    config_free(three);

    /* a change to a person the approvers reach changes the hash too */
    config *people = variant("  carol: [slack:U2]\n", "  carol: [slack:U2, shell:carol]\n");
    ctx.cfg = people;
    assert_int_equal(gov_reload(&ctx, &req, &v), GOV_OK);
    assert_true(v.flags & GOV_F_VOIDED);
    /* a queued request whose approvals still satisfy the new policy keeps them */
    gov_request k = req;
    gov_request_add_approval(&k, cfg, "slack:U2", T(WED) + 6);
    k.state = REQ_QUEUED;
    assert_int_equal(gov_reload(&ctx, &k, &v), GOV_OK);
    assert_true(v.flags & GOV_F_REBOUND);
    assert_false(v.flags & GOV_F_VOIDED);
    assert_int_equal(gov_request_apply_reload(&k, &ctx, &v), 0);
    assert_int_equal(k.n_approvals, 2);
    assert_int_equal(k.policy_hash, gov_policy_hash(people, config_find_env(people, "production")));
    config_free(people);

    /* approvals: 0 now: a pending request is approved */
    config *none = variant("    approvals: 2\n", "    approvals: 0\n");
    ctx.cfg = none;
    assert_int_equal(gov_reload(&ctx, &req, &v), GOV_OK);
    assert_int_equal(v.next, REQ_APPROVED);
    assert_true(v.flags & GOV_F_COMPLETE);
    config_free(none);

    /* the requester is no longer a deployer: cancelled */
    config *nodev = variant("    deployers: [sre, developers]\n", "    deployers: [sre]\n");
    ctx.cfg = nodev;
    assert_int_equal(gov_reload(&ctx, &req, &v), GOV_NOT_DEPLOYER);
    assert_int_equal(v.next, REQ_CANCELLED);
    config_free(nodev);

    /* a deploy into ops, which now takes only promotions */
    gov_request d;
    make_request(&d, "ops", "slack:U1", NULL, T(WED), GOV_KIND_DEPLOY);
    config *promo = variant("    deployers: [sre]\n    approvals: 1\n",
                            "    deployers: [sre]\n    promote_from: staging\n    approvals: 1\n");
    ctx.cfg = promo;
    assert_int_equal(gov_reload(&ctx, &d, &v), GOV_PROMOTE_REQUIRED);
    assert_int_equal(v.next, REQ_CANCELLED);
    config_free(promo);

    /* the environment is gone */
    config *gone = variant("  sandbox:\n    nomad: {address: http://n}\n", "");
    gov_request sb;
    make_request(&sb, "sandbox", "slack:U8", NULL, T(WED), GOV_KIND_DEPLOY);
    ctx.cfg = gone;
    assert_int_equal(gov_reload(&ctx, &sb, &v), GOV_UNKNOWN_ENV);
    assert_int_equal(v.next, REQ_CANCELLED);
    config_free(gone);
}

/* ---- evidence with a bound image ---- */

static void test_promote_bound_image(void **state) {
    (void)state;
    gov_ctx ctx = ctx_at(WED);
    const config_env *prod = config_find_env(cfg, "production");
    gov_evidence ev;
    make_evidence(EV_GOOD, ctx.now, &ev);
    gov_verdict v;
    assert_int_equal(gov_promote_evidence(&ctx, prod, "staging", &ev, "r/web:v2", &v), GOV_OK);
    assert_int_equal(gov_promote_evidence(&ctx, prod, "staging", &ev, "r/web:v1", &v), GOV_EVIDENCE_IMAGE_CHANGED);
    assert_string_equal(v.message, "staging now runs r/web:v2, not r/web:v1 which this promote was approved for; request again");
    gov_request_in in = {GOV_KIND_PROMOTE, "production", "staging", "web", "shell:alice", CON, NULL, NULL, &ev, 0, 0, 0};
    assert_int_equal(gov_may_request(&ctx, &in, &v), GOV_OK);
    gov_request req;
    gov_request_init(&req, &ctx, &in, &v, 7);
    assert_string_equal(req.image, "r/web:v2");
    assert_string_equal(req.requester_person, "alice");
    assert_int_equal(req.state, REQ_PENDING_APPROVAL);
    assert_int_equal(req.required, 2);
}

/* ---- freezes: unusable windows fail closed ---- */

static void test_freeze_fail_closed(void **state) {
    (void)state;
    gov_ctx ctx = {cfg, NULL, NULL, gov_limits_default, T(WED)};   /* no zones loaded */
    const config_env *prod = config_find_env(cfg, "production");
    gov_verdict v;
    assert_int_equal(gov_frozen(&ctx, prod, NULL, &v), GOV_FREEZE_UNUSABLE);
    assert_string_equal(v.rule, "freeze");
    assert_int_equal(v.until, INT64_MAX);
    assert_non_null(strstr(v.message, "time zone Europe/Berlin"));
    gov_request_in in = {GOV_KIND_PROMOTE, "production", "staging", "web", "shell:alice", CON, NULL, NULL, NULL, 0, 0, 0};
    gov_evidence ev;
    make_evidence(EV_GOOD, ctx.now, &ev);
    in.evidence = &ev;
    assert_int_equal(gov_may_request(&ctx, &in, &v), GOV_FREEZE_UNUSABLE);
    /* environments without windows need no zones */
    const config_env *st = config_find_env(cfg, "staging");
    assert_int_equal(gov_frozen(&ctx, st, NULL, &v), GOV_OK);
    /* the lock wins over windows and says until unlocked */
    gov_lock lock = the_lock();
    assert_int_equal(gov_frozen(&ctx, st, &lock, &v), GOV_LOCKED);
    assert_int_equal(v.until, INT64_MAX);
    /* gov_freeze_check with a request at take: emergency with all approvals passes */
    ctx.zone = zone_fn;
    ctx.now = T("2026-03-28 12:00:00");
    gov_request req;
    make_request(&req, "production", "shell:alice", "outage", ctx.now - 60, GOV_KIND_PROMOTE);
    assert_int_equal(gov_freeze_check(&ctx, prod, NULL, &req, GOV_AT_APPROVAL, &v), GOV_OK);
    assert_true(v.flags & GOV_F_BREAK_GLASS);
    assert_int_equal(gov_freeze_check(&ctx, prod, NULL, &req, GOV_AT_TAKE, &v), GOV_FROZEN);
    assert_true(v.flags & GOV_F_DEFER);
    assert_non_null(strstr(v.message, "break-glass needs 3 approvals, 0 counted"));
    add_n_approvals(&req, 3, ctx.now - 30);
    assert_int_equal(gov_freeze_check(&ctx, prod, NULL, &req, GOV_AT_REGISTER, &v), GOV_OK);
    assert_true(v.flags & GOV_F_BREAK_GLASS);
    assert_int_equal(gov_freeze_check(&ctx, prod, NULL, NULL, GOV_AT_REGISTER, &v), GOV_FROZEN);
}

/* ---- explain ---- */

static void test_explain(void **state) {
    (void)state;
    gov_ctx ctx = ctx_at("2026-03-27 15:00:00");
    gov_evidence ev;
    make_evidence(EV_YOUNG, ctx.now, &ev);
    gov_request_in in = {GOV_KIND_DEPLOY, "production", NULL, "web", "slack:U1", PROD, NULL, NULL, &ev, 0, 0, 0};
    char out[2048];
    gov_verdict v;
    assert_int_equal(gov_explain(&ctx, &in, out, sizeof out, &v), GOV_PROMOTE_REQUIRED);
    assert_non_null(strstr(out, "what deploy web to production would take now (2026-03-27 15:00:00 UTC), for slack:U1:\n"));
    assert_non_null(strstr(out, "- channels: ok - this channel is allowed\n"));
    assert_non_null(strstr(out, "- deployers: ok - slack:U1 is in deployers (sre, developers)\n"));
    assert_non_null(strstr(out, "- promote_from: no - only `promote web from staging to production`\n"));
    assert_non_null(strstr(out, "- approvals: ok - 2 from distinct people in sre, not you; eligible: carol, slack:U7\n"));
    assert_non_null(strstr(out, "- freeze: no - production is frozen until Mon 08:00 Europe/Berlin (06:00 UTC)"));
    assert_non_null(strstr(out, "verdict: refused by promote_from (promote_required)"));

    in.kind = GOV_KIND_PROMOTE;
    in.from_env = "staging";
    assert_int_equal(gov_explain(&ctx, &in, out, sizeof out, &v), GOV_EVIDENCE_TOO_SOON);
    assert_non_null(strstr(out, "- promote_from: ok - staging\n"));
    assert_non_null(strstr(out, "- promote_after: no - production needs r/web:v2 healthy in staging for 30m"));

    ctx.now = T(WED);
    make_evidence(EV_GOOD, ctx.now, &ev);
    assert_int_equal(gov_explain(&ctx, &in, out, sizeof out, &v), GOV_OK);
    assert_non_null(strstr(out, "- promote_after: ok - r/web:v2 is successful and healthy in staging for at least 30m\n"));
    assert_non_null(strstr(out, "- freeze: ok - no freeze window is active\n"));
    assert_non_null(strstr(out, "- open_requests: ok - 0 of 5 open requests\n"));
    assert_non_null(strstr(out, "verdict: would be accepted: promote web to production waits for 2 approvals\n"));

    /* an unknown environment: one line and the verdict; truncation stays terminated */
    in.env = "nowhere";
    assert_int_equal(gov_explain(&ctx, &in, out, sizeof out, &v), GOV_UNKNOWN_ENV);
    assert_non_null(strstr(out, "verdict: refused (unknown_env)"));
    in.env = "production";
    char small[40];
    gov_explain(&ctx, &in, small, sizeof small, &v);
    assert_int_equal(strlen(small), sizeof small - 1);
    /* creates nothing: explain twice gives the same text */
    char again[2048], first[2048];
    gov_explain(&ctx, &in, first, sizeof first, &v);
    gov_explain(&ctx, &in, again, sizeof again, &v);
    assert_string_equal(first, again);
}

/* ---- helpers ---- */

static void test_helpers(void **state) {
    (void)state;
    for (int t = 0; t < GOV_TAG_COUNT; t++) {
        const char *n = gov_tag_name((enum gov_tag)t);
        assert_string_not_equal(n, "?");
        for (int u = 0; u < t; u++) assert_string_not_equal(n, gov_tag_name((enum gov_tag)u));
    }
    assert_string_equal(gov_tag_name(GOV_TAG_COUNT), "?");
    assert_string_equal(gov_kind_name(GOV_KIND_PROMOTE), "promote");
    char key[64];
    gov_person_key(cfg, "shell:bob", key, sizeof key);
    assert_string_equal(key, "bob");
    gov_person_key(cfg, "slack:U7", key, sizeof key);
    assert_string_equal(key, "slack:U7");
    char names[128];
    const config_env *prod = config_find_env(cfg, "production");
    assert_int_equal(gov_eligible_approvers(cfg, prod, "shell:bob", names, sizeof names), 2);
    assert_string_equal(names, "carol, slack:U7");
    assert_int_equal(gov_eligible_approvers(cfg, prod, "slack:U9", names, sizeof names), 3);
    assert_int_equal(gov_eligible_approvers(cfg, prod, NULL, NULL, 0), 3);
    const config_env *qa = config_find_env(cfg, "qa");
    assert_int_equal(gov_eligible_approvers(cfg, qa, "slack:U1", names, sizeof names), 4);
    assert_int_equal(gov_required_approvals(prod, true), 3);
    assert_int_equal(gov_required_approvals(qa, false), 1);
    /* the hash differs per environment and is stable */
    assert_true(gov_policy_hash(cfg, prod) != gov_policy_hash(cfg, qa));
    assert_true(gov_policy_hash(cfg, prod) == gov_policy_hash(cfg, prod));
    /* rate limit on its own */
    gov_ctx ctx = ctx_at(WED);
    gov_verdict v;
    assert_int_equal(gov_rate_check(&ctx, "slack:U1", 29, &v), GOV_OK);
    assert_int_equal(gov_rate_check(&ctx, "slack:U1", 30, &v), GOV_RATE_LIMITED);
    ctx.limits.max_commands = 0;
    assert_int_equal(gov_rate_check(&ctx, "slack:U1", 1000, &v), GOV_OK);
    /* the model refuses illegal moves and leaves the request as it was */
    gov_request req;
    make_request(&req, "staging", "shell:alice", NULL, T(WED), GOV_KIND_DEPLOY);
    assert_int_equal(gov_request_set_state(&req, REQ_SUCCEEDED, 0, 0), -1);
    assert_int_equal(req.state, REQ_QUEUED);
    assert_int_equal(gov_request_set_state(&req, REQ_CANCELLED, 0, 0), 0);
    assert_int_equal(gov_request_set_state(&req, REQ_QUEUED, 0, 0), -1);
    assert_int_equal(req.state, REQ_CANCELLED);
    assert_int_equal(gov_request_add_approval(&req, cfg, "nocolon", 0), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests),        cmocka_unit_test(test_approvals),
        cmocka_unit_test(test_approval_messages), cmocka_unit_test(test_reject_cancel),
        cmocka_unit_test(test_act),             cmocka_unit_test(test_locks),
        cmocka_unit_test(test_run_checks),      cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_reload),          cmocka_unit_test(test_promote_bound_image),
        cmocka_unit_test(test_freeze_fail_closed), cmocka_unit_test(test_explain),
        cmocka_unit_test(test_helpers),
    };
    size_t n = sizeof req_cases / sizeof req_cases[0] + sizeof rc_cases / sizeof rc_cases[0] +
               sizeof act_cases / sizeof act_cases[0] + sizeof lock_cases / sizeof lock_cases[0] +
               sizeof run_cases / sizeof run_cases[0];
    size_t clicks = 0;
    for (size_t i = 0; i < sizeof approve_cases / sizeof approve_cases[0]; i++)
        for (size_t k = 0; k < 6 && approve_cases[i].clicks[k].actor; k++) clicks++;
    printf("governance decision table: %zu cases (+ %zu approval clicks)\n", n, clicks);
    return cmocka_run_group_tests(tests, setup, teardown);
}
