#include "render.h"

#include "policy.h"

#include <inttypes.h>
#include <string.h>

void render_cmd_error(const cmd_error *err, nm_buf *out) {
    nm_buf_printf(out, "error: %s [%s]\n", err->message, cmd_err_tag(err->code));
    if (err->usage && *err->usage) nm_buf_printf(out, "usage: %s\n", err->usage);
}

void render_request_line(int64_t id, const char *state, const char *kind, const char *job, const char *version,
                         const char *env, nm_buf *out) {
    if (strcmp(kind, "rollback") == 0)
        nm_buf_printf(out, "D-%" PRId64 " %s: rollback %s in %s to %s\n", id, state, job, env,
                      *version ? version : "the previous stable version");
    else
        nm_buf_printf(out, "D-%" PRId64 " %s: %s %s %s to %s\n", id, state, kind, job, version, env);
}

static const char *str(const json_object *o, const char *key) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string)) return "";
    return json_object_get_string(v);
}

static int64_t num(const json_object *o, const char *key, int64_t dflt) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int)) return dflt;
    return json_object_get_int64(v);
}

static void render_request(const json_object *ev, nm_buf *out) {
    const char *state = str(ev, "state"), *phase = str(ev, "phase"), *reason = str(ev, "reason");
    const char *detail = str(ev, "detail");
    int64_t id = num(ev, "req", 0), version = num(ev, "job_version", -1);

    nm_buf_printf(out, "D-%" PRId64 " %s", id, state);
    if (*phase) nm_buf_printf(out, " (%s)", phase);
    if (*reason) nm_buf_printf(out, " [%s]", reason);
    nm_buf_appends(out, ":");
    if (strcmp(state, "succeeded") == 0 && strcmp(str(ev, "kind"), "rollback") == 0)
        nm_buf_printf(out, " %s rolled back in %s", str(ev, "job"), str(ev, "env"));
    else if (strcmp(state, "succeeded") == 0)
        nm_buf_printf(out, " %s %s is live in %s", str(ev, "job"), str(ev, "version"), str(ev, "env"));
    else if (strcmp(phase, "registering") == 0 && strcmp(str(ev, "kind"), "rollback") == 0)
        nm_buf_printf(out, " reverting %s in %s", str(ev, "job"), str(ev, "env"));
    else if (strcmp(phase, "registering") == 0)
        nm_buf_printf(out, " registering %s %s in %s", str(ev, "job"), str(ev, "version"), str(ev, "env"));
    if (version >= 0) nm_buf_printf(out, " (job version %" PRId64 ")", version);
    if (*detail) nm_buf_printf(out, " %s", detail);
    nm_buf_appends(out, "\n");
}

static void render_status(const json_object *ev, nm_buf *out) {
    const char *err = str(ev, "error");
    if (*err) {
        nm_buf_printf(out, "status %s: %s\n", str(ev, "job"), err);
        return;
    }
    nm_buf_printf(out, "%s:\n", str(ev, "job"));
    json_object *envs;
    if (!json_object_object_get_ex(ev, "envs", &envs) || !json_object_is_type(envs, json_type_array)) return;
    for (size_t i = 0; i < json_object_array_length(envs); i++) {
        const json_object *e = json_object_array_get_idx(envs, i);
        const char *eerr = str(e, "error");
        nm_buf_printf(out, "  %-12s ", str(e, "env"));
        if (*eerr) {
            nm_buf_printf(out, "%s\n", eerr);
            continue;
        }
        const char *version = str(e, "version");
        json_object *stable;
        bool is_stable = json_object_object_get_ex(e, "stable", &stable) && json_object_get_boolean(stable);
        nm_buf_printf(out, "%-10s job version %" PRId64 "%s", *version ? version : str(e, "image"),
                      num(e, "job_version", -1), is_stable ? ", stable" : "");
        json_object *dep;
        if (json_object_object_get_ex(e, "deployment", &dep) && json_object_is_type(dep, json_type_object))
            nm_buf_printf(out, "; deployment %s (%s)", str(dep, "status"), str(dep, "counts"));
        nm_buf_appends(out, "\n");
    }
}

/* {type: action, action, job, env, ok, message}: the answer to canary promote|fail, pause, resume. */
static void render_action(const json_object *ev, nm_buf *out) {
    json_object *ok;
    bool good = json_object_object_get_ex(ev, "ok", &ok) && json_object_get_boolean(ok);
    const char *action = str(ev, "action");
    const char *words = strcmp(action, "canary_promote") == 0 ? "canary promote"
                        : strcmp(action, "canary_fail") == 0  ? "canary fail"
                                                              : action;
    nm_buf_printf(out, "%s%s %s in %s: %s\n", good ? "" : "error: ", words, str(ev, "job"), str(ev, "env"),
                  str(ev, "message"));
}

int render_event_console(const json_object *ev, nm_buf *out) {
    if (!ev || !json_object_is_type(ev, json_type_object)) return -1;
    const char *type = str(ev, "type");
    if (strcmp(type, "request") == 0) render_request(ev, out);
    else if (strcmp(type, "status") == 0) render_status(ev, out);
    else if (strcmp(type, "action") == 0) render_action(ev, out);
    else return -1;
    return 0;
}

/* ---- discovery: answered from the config snapshot, no server involved ---- */

static void render_list(const config_strv *v, const char *none, nm_buf *out) {
    if (v->n == 0) nm_buf_appends(out, none);
    for (size_t i = 0; i < v->n; i++) nm_buf_printf(out, "%s%s", i ? ", " : "", v->v[i]);
}

static void render_approvals(const config_env *e, nm_buf *out) {
    if (e->approvals == 0) {
        nm_buf_appends(out, "no approval needed");
        return;
    }
    nm_buf_printf(out, "%d approval%s from ", e->approvals, e->approvals == 1 ? "" : "s");
    render_list(&e->approvers, "nobody", out);
}

void render_envs(const config *cfg, nm_buf *out) {
    if (cfg->n_envs == 0) nm_buf_appends(out, "no environments are configured\n");
    for (size_t i = 0; i < cfg->n_envs; i++) {
        const config_env *e = &cfg->envs[i];
        nm_buf_printf(out, "%-12s namespace %s", e->name, e->nomad.namespace);
        if (*e->nomad.region) nm_buf_printf(out, ", region %s", e->nomad.region);
        nm_buf_appends(out, "; deployers: ");
        render_list(&e->deployers, "anyone", out);
        nm_buf_appends(out, "; ");
        render_approvals(e, out);
        if (e->promote_from) nm_buf_printf(out, "; only promote from %s", e->promote_from);
        if (e->freeze.n) {
            nm_buf_appends(out, "; freezes: ");
            render_list(&e->freeze, "", out);
        }
        nm_buf_appends(out, "\n");
    }
}

void render_jobs(const config *cfg, nm_buf *out) {
    if (cfg->n_jobs == 0) nm_buf_appends(out, "no jobs are configured\n");
    for (size_t i = 0; i < cfg->n_jobs; i++) {
        const config_job *j = &cfg->jobs[i];
        nm_buf_printf(out, "%-12s image %s:<version>, Nomad job %s, tasks ", j->name, j->image, j->nomad_job);
        render_list(&j->tasks, "none", out);
        nm_buf_appends(out, "\n");
    }
}

void render_whoami(const config *cfg, const char *identity, const char *channel, nm_buf *out) {
    const config_person *p = policy_person(cfg, identity);
    nm_buf_printf(out, "you are %s", identity);
    if (p) nm_buf_printf(out, " (%s)", p->name);
    else nm_buf_appends(out, " (not listed under people:)");
    size_t ng = 0;
    for (size_t g = 0; g < cfg->n_groups; g++) {
        if (!policy_in_group(cfg, &cfg->groups[g], identity)) continue;
        nm_buf_printf(out, "%s%s", ng++ ? ", " : "; groups: ", cfg->groups[g].name);
    }
    nm_buf_appends(out, "\n");
    for (size_t i = 0; i < cfg->n_envs; i++) {
        const config_env *e = &cfg->envs[i];
        bool deploy = policy_may_deploy(cfg, e, identity), approve = policy_may_approve(cfg, e, identity);
        bool here = policy_channel_allowed(e, channel);
        nm_buf_printf(out, "  %-12s %s", e->name, deploy ? "may deploy" : "may not deploy");
        if (deploy && e->promote_from) nm_buf_printf(out, " (by promote from %s)", e->promote_from);
        if (deploy && e->approvals > 0) nm_buf_printf(out, " with %d approval%s", e->approvals, e->approvals == 1 ? "" : "s");
        if (approve) nm_buf_appends(out, "; may approve");
        if (!here) nm_buf_printf(out, "; not from %s", channel);
        nm_buf_appends(out, "\n");
    }
}

/* ---- history and audit answers (read from PostgreSQL by the bot) ---- */

void render_history_line(const audit_request *r, nm_buf *out) {
    char when[17];
    snprintf(when, sizeof(when), "%.16s", r->created_at);   /* YYYY-MM-DDTHH:MM */
    if (when[10] == 'T') when[10] = ' ';
    nm_buf_printf(out, "D-%" PRId64 "  %-10s %s %s", r->id, r->state, r->kind, r->job);
    if (strcmp(r->kind, "rollback") == 0)
        nm_buf_printf(out, " in %s%s%s", r->env, r->version[0] ? " to " : "", r->version);
    else
        nm_buf_printf(out, " %s to %s", r->version, r->env);
    nm_buf_printf(out, "  by %s  %s UTC", r->person[0] ? r->person : r->actor, when);
    if (r->reason[0]) nm_buf_printf(out, "  [%s]", r->reason);
    nm_buf_appends(out, "\n");
}

void render_trail_event(const audit_row *row, nm_buf *out) {
    const audit_event *e = &row->ev;
    char when[20];
    snprintf(when, sizeof(when), "%.19s", row->at ? row->at : "");
    if (when[10] == 'T') when[10] = ' ';
    nm_buf_printf(out, "  #%" PRId64 " %s %-24s %s", e->id, when, e->action ? e->action : "", e->actor ? e->actor : "");
    if (e->person && *e->person) nm_buf_printf(out, " (%s)", e->person);
    if (e->to_state && *e->to_state) nm_buf_printf(out, " -> %s", e->to_state);
    if (e->phase && *e->phase) nm_buf_printf(out, " (%s)", e->phase);
    if (e->reason && *e->reason) nm_buf_printf(out, " [%s]", e->reason);
    if (e->nomad_job_version >= 0) nm_buf_printf(out, " job version %" PRId64, e->nomad_job_version);
    if (e->eval_id && *e->eval_id) nm_buf_printf(out, " eval %.8s", e->eval_id);
    if (e->deployment_id && *e->deployment_id) nm_buf_printf(out, " deployment %.8s", e->deployment_id);
    if (e->detail && *e->detail) {
        /* One line per event: a detail with newlines is folded. */
        nm_buf_appends(out, ": ");
        for (const char *p = e->detail; *p; p++) nm_buf_append(out, *p == '\n' ? " " : p, 1);
    }
    nm_buf_appends(out, "\n");
}

void render_governance(enum cmd_kind kind, int64_t id, const char *env, const gov_verdict *v, bool queued,
                       nm_buf *out) {
    switch (kind) {
    case CMD_APPROVE:
        if (!(v->flags & GOV_F_COUNTED)) nm_buf_printf(out, "D-%" PRId64 ": %s\n", id, v->message);
        else if (queued) nm_buf_printf(out, "D-%" PRId64 " approved (%d of %d) and queued\n", id, v->required, v->required);
        else nm_buf_printf(out, "D-%" PRId64 ": approval counted (%d of %d)\n", id, v->counted, v->required);
        break;
    case CMD_REJECT: nm_buf_printf(out, "D-%" PRId64 " rejected\n", id); break;
    case CMD_CANCEL: nm_buf_printf(out, "D-%" PRId64 " cancelled\n", id); break;
    case CMD_LOCK:
        if (v->tag != GOV_OK) nm_buf_printf(out, "%s\n", v->message);
        else nm_buf_printf(out, "%s is locked: nothing is deployed there until `unlock %s`\n", env, env);
        break;
    case CMD_UNLOCK:
        if (v->tag != GOV_OK) nm_buf_printf(out, "%s\n", v->message);
        else nm_buf_printf(out, "%s is unlocked\n", env);
        break;
    default: break;
    }
}
