/* See run.h. */
#include "run.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "sched.h"

run *run_new(void) {
    run *x = calloc(1, sizeof(*x));
    if (x) x->job_version = -1;
    return x;
}

void run_free(run *x) {
    if (!x) return;
    config_free(x->cfg);
    free(x);
}

static void add_str(json_object *o, const char *k, const char *v) {
    if (v && *v) json_object_object_add(o, k, json_object_new_string(v));
}

json_object *run_event(const run *x, const char *state, const char *phase, const char *reason, const char *detail) {
    json_object *ev = json_object_new_object();
    add_str(ev, "type", "request");
    json_object_object_add(ev, "req", json_object_new_int64(x->r.id));
    add_str(ev, "state", state);
    add_str(ev, "phase", phase);
    add_str(ev, "reason", reason);
    add_str(ev, "kind", x->r.kind);
    add_str(ev, "job", x->r.job);
    add_str(ev, "env", x->r.env);
    add_str(ev, "version", x->r.version);
    add_str(ev, "detail", detail);
    if (x->job_version >= 0) json_object_object_add(ev, "job_version", json_object_new_int64(x->job_version));
    if (x->has_progress) {
        const struct run_progress *p = &x->progress;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "healthy", json_object_new_int64(p->healthy));
        json_object_object_add(o, "desired", json_object_new_int64(p->desired));
        json_object_object_add(o, "placed", json_object_new_int64(p->placed));
        json_object_object_add(o, "unhealthy", json_object_new_int64(p->unhealthy));
        json_object_object_add(o, "canaries_desired", json_object_new_int64(p->canaries_desired));
        json_object_object_add(o, "canaries_placed", json_object_new_int64(p->canaries_placed));
        json_object_object_add(o, "canaries_healthy", json_object_new_int64(p->canaries_healthy));
        json_object_object_add(o, "promoted", json_object_new_boolean(p->promoted));
        json_object_object_add(ev, "progress", o);
    }
    return ev;
}

void run_publish_to(queue_conn *q, const char *route, json_object *ev) {
    const char *text = json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (queue_event_publish(q, route, text) != QUEUE_OK)
        nm_log(NM_LOG_WARN, "event not published", "route", route, "error", q->errstr, NULL);
    json_object_put(ev);
}

void run_publish(run *x, json_object *ev) { run_publish_to(x->q, x->r.route, ev); }

int run_step(run *x, const char *to_state, const char *phase_in, const char *reason, const char *action,
             const char *detail) {
    /* phase may be x->phase itself (a step that keeps the phase): copy it before x changes. */
    char phase_buf[AUDIT_STATE_LEN];
    const char *phase = phase_in ? (snprintf(phase_buf, sizeof(phase_buf), "%s", phase_in), phase_buf) : NULL;
    audit_transition t = {
        .from_state = x->state, .to_state = to_state, .phase = phase, .reason = reason, .action = action,
        .actor = WORKER_ACTOR, .outcome = to_state, .detail = detail,
        .from_image = x->from_image[0] ? x->from_image : NULL,
        .eval_id = x->eval_id[0] ? x->eval_id : NULL,
        .deployment_id = x->deployment_id[0] ? x->deployment_id : NULL,
        .nomad_job_version = x->job_version,
    };
    int rc = audit_request_transition(x->db, x->r.id, &t);
    if (rc != AUDIT_OK) {
        nm_log(NM_LOG_ERROR, "cannot record transition", "req", x->req_ref, "to", to_state, "error", x->db->errstr,
               NULL);
        if (rc == AUDIT_ERR_CONNECT) *x->db_up = false;
        return rc;
    }
    snprintf(x->state, sizeof(x->state), "%s", to_state);
    snprintf(x->phase, sizeof(x->phase), "%s", phase ? phase : "");
    nm_log(NM_LOG_INFO, action, "req", x->req_ref, "job", x->r.job, "env", x->r.env, "actor", x->r.actor, "state",
           to_state, "phase", phase && *phase ? phase : NULL, "reason", reason && *reason ? reason : NULL, NULL);
    run_publish(x, run_event(x, to_state, phase, reason, detail));
    return AUDIT_OK;
}

enum outcome run_finish(run *x, const char *to_state, const char *reason, const char *detail) {
    char action[48];
    snprintf(action, sizeof(action), "%s.%s", x->r.kind, to_state);
    return run_step(x, to_state, "", reason, action, detail) == AUDIT_OK ? ACK : RETRY;
}

bool run_keepalive(run *x, bool force) {
    int64_t now = nm_mono_ms();
    if (!force && now - x->renewed_at < x->lease_ms / 3) return true;
    int rc = queue_work_touch(x->q, x->consumer, x->entry_id);
    if (rc == QUEUE_OK) rc = queue_lease_renew(x->q, x->lease_key, x->lease_value, (int)x->lease_ms);
    if (rc == QUEUE_ERR_EMPTY) {
        nm_log(NM_LOG_WARN, "lease lost; another worker has the request", "req", x->req_ref, NULL);
        return false;
    }
    if (rc == QUEUE_OK) x->renewed_at = now;
    return true;
}

void run_release(run *x) { queue_lease_release(x->q, x->lease_key, x->lease_value); }

void run_ack(run *x) {
    if (queue_work_ack(x->q, x->entry_id) != QUEUE_OK)
        nm_log(NM_LOG_WARN, "work entry not acknowledged; it will be seen again, harmlessly", "req", x->req_ref,
               "error", x->q->errstr, NULL);
}

void run_wake_next(run *x) {
    int64_t next = 0;
    if (audit_sched_head(x->db, x->r.env, x->r.job, &next) != AUDIT_OK || next <= 0) return;
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)next);
    if (queue_work_add(x->q, "request", id) != QUEUE_OK)
        nm_log(NM_LOG_WARN, "next request not queued; the reconciler will", "req", id, "error", x->q->errstr, NULL);
}

/* One group's progress: "1/2 healthy, 2 placed, 0 unhealthy[, canaries 1/1 placed, 1 healthy, promoted]".
 * Before promotion the deployment's healthy allocations are its canaries (the old ones belong to an older
 * deployment), so healthy canaries are min(healthy, placed canaries) without reading allocations. */
static size_t describe_group(const nomad_deployment_group *g, char *out, size_t outlen) {
    int n = snprintf(out, outlen, "%" PRId64 "/%" PRId64 " healthy, %" PRId64 " placed, %" PRId64 " unhealthy",
                     g->healthy_allocs, g->desired_total, g->placed_allocs, g->unhealthy_allocs);
    if (n < 0 || (size_t)n >= outlen) return outlen ? outlen - 1 : 0;
    if (g->desired_canaries > 0) {
        int64_t placed = (int64_t)g->placed_canaries;
        int64_t healthy = g->canaries_counted ? (int64_t)g->healthy_canaries
                          : g->promoted        ? placed
                                               : (g->healthy_allocs < placed ? g->healthy_allocs : placed);
        int m = snprintf(out + n, outlen - (size_t)n, ", canaries %" PRId64 "/%" PRId64 " placed, %" PRId64
                         " healthy, %s", placed, g->desired_canaries, healthy,
                         g->promoted ? "promoted" : "awaiting promotion");
        if (m > 0) n = (size_t)(n + m) < outlen ? n + m : (int)outlen - 1;
    }
    return (size_t)n;
}

void run_describe_groups(const nomad_deployment *d, char *out, size_t outlen) {
    if (outlen) out[0] = '\0';
    if (d->n_groups == 1) {
        describe_group(&d->groups[0], out, outlen);
        return;
    }
    /* Several groups: each with its name, so people see which one lags. */
    size_t n = 0;
    for (size_t i = 0; i < d->n_groups && n + 1 < outlen; i++) {
        int w = snprintf(out + n, outlen - n, "%s%s: ", i ? "; " : "", d->groups[i].name);
        if (w < 0 || (size_t)w >= outlen - n) break;
        n += (size_t)w;
        n += describe_group(&d->groups[i], out + n, outlen - n);
    }
}

void run_set_progress(run *x, const nomad_deployment *d) {
    struct run_progress p = {.promoted = true};
    bool canaries = false;
    for (size_t i = 0; i < d->n_groups; i++) {
        const nomad_deployment_group *g = &d->groups[i];
        p.healthy += g->healthy_allocs;
        p.desired += g->desired_total;
        p.placed += g->placed_allocs;
        p.unhealthy += g->unhealthy_allocs;
        if (g->desired_canaries > 0) {
            int64_t placed = (int64_t)g->placed_canaries;
            canaries = true;
            p.canaries_desired += g->desired_canaries;
            p.canaries_placed += placed;
            /* as describe_group: before promotion the healthy allocations are the canaries */
            p.canaries_healthy += g->canaries_counted ? (int64_t)g->healthy_canaries
                                  : g->promoted       ? placed
                                                      : (g->healthy_allocs < placed ? g->healthy_allocs : placed);
            if (!g->promoted) p.promoted = false;
        }
    }
    if (!canaries) p.promoted = false;
    x->progress = p;
    x->has_progress = true;
}

bool run_awaiting_promotion(const nomad_deployment *d) {
    for (size_t i = 0; i < d->n_groups; i++)
        if (d->groups[i].desired_canaries > 0 && !d->groups[i].promoted) return true;
    return false;
}

int run_alloc_failures(const char *body, size_t len, char *out, size_t outlen) {
    enum { MAX_ALLOCS = 16 };
    if (outlen) out[0] = '\0';
    nomad_alloc *allocs = calloc(MAX_ALLOCS, sizeof(*allocs));   /* about 4 KiB each */
    size_t n = 0, total = 0;
    char err[128];
    if (!allocs || nomad_decode_allocations(body, len, allocs, MAX_ALLOCS, &n, &total, err, sizeof(err)) != NOMAD_OK) {
        free(allocs);
        return -1;
    }
    size_t used = 0, shown = 0;
    for (size_t i = 0; i < n && shown < 3 && used + 1 < outlen; i++) {
        const nomad_alloc *a = &allocs[i];
        bool bad = (a->healthy_set && !a->healthy) || !strcmp(a->client_status, "failed") ||
                   !strcmp(a->client_status, "lost");
        if (!bad) continue;
        for (size_t t = 0; t < a->n_tasks; t++) {
            const nomad_task_summary *ts = &a->tasks[t];
            if (!ts->reason_type[0]) continue;
            int w = snprintf(out + used, outlen - used, "%salloc %.8s %s: %s: %s%s", shown ? "; " : "", a->id,
                             ts->name, ts->reason_type, ts->reason, ts->oom_killed ? " (out of memory)" : "");
            if (w > 0) used = used + (size_t)w < outlen ? used + (size_t)w : outlen - 1;
            shown++;
            break;
        }
    }
    free(allocs);
    return 0;
}
