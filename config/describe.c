/* `nomatron config check`: the resolved configuration as people read it,
 * with every secret redacted. Pure: snapshot in, text out. */
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "config.h"

#define REDACTED "[redacted]"

void config_format_duration(int64_t ms, char *out, size_t outlen) {
    static const struct { const char *unit; int64_t ms; } units[] = {
        {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
    size_t n = 0;
    if (outlen) out[0] = '\0';
    if (ms <= 0) {
        snprintf(out, outlen, "0s");
        return;
    }
    for (size_t i = 0; i < 4 && n < outlen; i++) {
        int64_t q = ms / units[i].ms;
        if (q == 0) continue;
        ms -= q * units[i].ms;
        int w = snprintf(out + n, outlen - n, "%lld%s", (long long)q, units[i].unit);
        if (w > 0) n += (size_t)w;
    }
    if (ms > 0 && n < outlen) snprintf(out + n, outlen - n, "%lldms", (long long)ms);
}

void config_redact_url(const char *in, char *out, size_t outlen) {
    snprintf(out, outlen, "%s", in);
    /* scheme://user:password@host -> scheme://user:[redacted]@host */
    char *scheme = strstr(out, "://");
    if (scheme) {
        char *auth = scheme + 3;
        char *at = strchr(auth, '@');
        char *slash = strchr(auth, '/');
        if (at && (!slash || at < slash)) {
            char *colon = memchr(auth, ':', (size_t)(at - auth));
            if (colon) {
                char tail[1024];
                snprintf(tail, sizeof(tail), "%s", at);
                snprintf(colon + 1, outlen - (size_t)(colon + 1 - out), "%s%s", REDACTED, tail);
            }
        }
    }
    /* password=... in a libpq keyword string or a URI query. */
    for (char *p = out; (p = strstr(p, "password=")) != NULL;) {
        char *v = p + 9;
        size_t vl = *v == '\'' ? strcspn(v + 1, "'") + 2 : strcspn(v, " &");
        if (*v == '\'' && vl > strlen(v)) vl = strlen(v);
        char tail[1024];
        snprintf(tail, sizeof(tail), "%s", v + vl);
        snprintf(v, outlen - (size_t)(v - out), "%s%s", REDACTED, tail);
        p = v + strlen(REDACTED);
    }
}

static void list(nm_buf *b, const config_strv *v, const char *none) {
    if (v->n == 0) nm_buf_appends(b, none);
    for (size_t i = 0; i < v->n; i++) nm_buf_printf(b, "%s%s", i ? ", " : "", v->v[i]);
}

/* "sre (bob, carol)" for a group, the name alone for a person or identity. */
static void who(nm_buf *b, const config *cfg, const config_strv *v, const char *none) {
    if (v->n == 0) nm_buf_appends(b, none);
    for (size_t i = 0; i < v->n; i++) {
        nm_buf_printf(b, "%s%s", i ? ", " : "", v->v[i]);
        for (size_t g = 0; g < cfg->n_groups; g++) {
            if (strcmp(cfg->groups[g].name, v->v[i]) != 0) continue;
            nm_buf_appends(b, " (");
            list(b, &cfg->groups[g].members, "nobody");
            nm_buf_appends(b, ")");
        }
    }
}

static const char *secret(const char *s) { return s && *s ? REDACTED : "none"; }

int config_describe(const config *cfg, nm_buf *b) {
    char tmp[1024], d1[32], d2[32];
    nm_buf_printf(b, "configuration %s is valid\n", cfg->path);
    nm_buf_printf(b, "  listen            %s\n", cfg->listen);
    nm_buf_printf(b, "  public_url        %s\n", *cfg->public_url ? cfg->public_url : "(none)");
    config_redact_url(cfg->redis, tmp, sizeof(tmp));
    nm_buf_printf(b, "  redis             %s\n", tmp);
    config_redact_url(cfg->postgres, tmp, sizeof(tmp));
    nm_buf_printf(b, "  postgres          %s\n", tmp);
    config_redact_url(cfg->postgres_migrate, tmp, sizeof(tmp));
    nm_buf_printf(b, "  postgres_migrate  %s\n", *cfg->postgres_migrate ? tmp : "(same as postgres)");
    nm_buf_printf(b, "  workers           %d\n", cfg->workers);
    config_format_duration(cfg->queue_lease_ms, d1, sizeof(d1));
    config_format_duration(cfg->queue_reconcile_ms, d2, sizeof(d2));
    nm_buf_printf(b, "  queue             lease %s, reconcile every %s", d1, d2);
    config_format_duration(cfg->queue_hold_ms, d1, sizeof(d1));
    nm_buf_printf(b, ", hold limit %s\n", d1);
    config_format_duration(cfg->audit_checkpoint_ms, d1, sizeof(d1));
    nm_buf_printf(b, "  audit checkpoint  %s\n", cfg->audit_checkpoint_ms ? d1 : "off");
    nm_buf_printf(b, "  limits            %d open requests per person, %d commands per minute (0 = none)\n",
                  cfg->limit_open_requests, cfg->limit_commands);
    nm_buf_printf(b, "  shell.allow_as    %s\n", cfg->shell_allow_as ? "true (developer machines only)" : "false");
    nm_buf_appends(b, "  hmac keys         ");
    if (cfg->n_hmac_keys == 0) nm_buf_appends(b, "none (buttons and signed links are off)");
    for (size_t i = 0; i < cfg->n_hmac_keys; i++)
        nm_buf_printf(b, "%s%s %s%s", i ? ", " : "", cfg->hmac_keys[i].id, REDACTED, i == 0 ? " (signs)" : "");
    nm_buf_appends(b, "\n");
    if (cfg->slack)
        nm_buf_printf(b, "  chat.slack        team %s, %d socket(s), api %s%s%s, app token %s, bot token %s, HTTP mode %s\n",
                      cfg->slack->team_id, cfg->slack->num_connections, cfg->slack->api_url,
                      *cfg->slack->ca_file ? ", CA " : "", cfg->slack->ca_file, secret(cfg->slack->app_token),
                      secret(cfg->slack->bot_token),
                      *cfg->slack->signing_secret ? "on (signing secret " REDACTED ")" : "off");
    if (cfg->mattermost)
        nm_buf_printf(b, "  chat.mattermost   %s, token %s, slash token %s\n", cfg->mattermost->url,
                      secret(cfg->mattermost->token), secret(cfg->mattermost->slash_token));
    if (!cfg->slack && !cfg->mattermost) nm_buf_appends(b, "  chat              none (shell only)\n");
    for (size_t i = 0; i < cfg->n_people; i++) {
        nm_buf_printf(b, "  person %-10s ", cfg->people[i].name);
        list(b, &cfg->people[i].identities, "no identities");
        nm_buf_appends(b, "\n");
    }
    for (size_t i = 0; i < cfg->n_groups; i++) {
        nm_buf_printf(b, "  group  %-10s ", cfg->groups[i].name);
        list(b, &cfg->groups[i].members, "nobody");
        nm_buf_appends(b, "\n");
    }

    for (size_t i = 0; i < cfg->n_envs; i++) {
        const config_env *e = &cfg->envs[i];
        config_format_duration(e->nomad.timeout_ms, d1, sizeof(d1));
        nm_buf_printf(b, "environment %s\n", e->name);
        nm_buf_printf(b, "  nomad             %s, region %s, namespace %s, token %s, timeout %s%s%s\n",
                      e->nomad.address, *e->nomad.region ? e->nomad.region : "(the agent's)", e->nomad.namespace,
                      secret(e->nomad.token), d1, *e->nomad.ca_file ? ", CA " : "", e->nomad.ca_file);
        if (*e->nomad.client_cert)
            nm_buf_printf(b, "  nomad mTLS        client certificate %s, key %s%s%s\n", e->nomad.client_cert,
                          e->nomad.client_key, *e->nomad.tls_server_name ? ", server name " : "",
                          e->nomad.tls_server_name);
        nm_buf_appends(b, "  may deploy        ");
        who(b, cfg, &e->deployers, "anyone (no deployers list)");
        nm_buf_appends(b, "\n  approvals         ");
        if (e->approvals == 0) {
            nm_buf_appends(b, "none needed");
        } else {
            config_format_duration(e->approval_ttl_ms, d1, sizeof(d1));
            nm_buf_printf(b, "%d distinct %s from ", e->approvals, e->approvals == 1 ? "person" : "people");
            who(b, cfg, &e->approvers, "nobody");
            nm_buf_printf(b, "; requester %s; expire after %s",
                          e->self_approval ? "may approve their own" : "never counts", d1);
        }
        nm_buf_appends(b, "\n  promotion         ");
        if (e->promote_from) {
            config_format_duration(e->promote_after_ms, d2, sizeof(d2));
            nm_buf_printf(b, "only `promote` from %s", e->promote_from);
            if (e->promote_after_ms > 0) nm_buf_printf(b, ", healthy there for at least %s", d2);
        } else {
            nm_buf_appends(b, "takes deploys of any version");
        }
        nm_buf_appends(b, "\n  freezes           ");
        list(b, &e->freeze, "none");
        nm_buf_appends(b, "\n  channels          ");
        list(b, &e->channels, "any");
        nm_buf_appends(b, "\n  notify            ");
        list(b, &e->notify, "none");
        nm_buf_appends(b, "\n");
    }
    for (size_t i = 0; i < cfg->n_jobs; i++) {
        const config_job *j = &cfg->jobs[i];
        nm_buf_printf(b, "job %s\n  nomad job %s, image %s:<version>, tasks ", j->name, j->nomad_job, j->image);
        list(b, &j->tasks, "none");
        nm_buf_appends(b, "\n");
    }
    return b->data ? 0 : -1;
}
