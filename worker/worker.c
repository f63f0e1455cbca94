#include "worker.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include <unistd.h>

#include "audit.h"
#include "clock.h"
#include "log.h"
#include "nomad.h"
#include "govern.h"
#include "policy.h"
#include "queue.h"
#include "run.h"
#include "sched.h"
#include "watch.h"

#define WORKER_BLOCK_MS 1000            /* XREADGROUP block: bounds how long a stop waits */
#define RECONCILE_BATCH 200             /* requests re-examined per reconciler pass */

typedef struct worker {
    struct worker_pool *pool;
    int n;
    pthread_t tid;
    bool started;
    char consumer[160];
    queue_conn q;
    audit_db db;
    bool db_up;
    config *cfg;                        /* the snapshot of the item in hand (a reference) */
    const queue_work *item;             /* the work entry in hand */
    char token[96];                     /* this thread's identity in leases */
    config *clients_cfg;                /* the snapshot `nomad` was made for (a reference) */
    nomad_client **nomad;               /* one per clients_cfg->envs[i], created on first use */
} worker;

struct worker_pool {
    config_holder *config;
    atomic_bool stop;
    int n;
    worker *w;
    pthread_t reconciler;
    bool reconciler_started;
    watcher *watcher;                   /* follows registered deployments for all threads */
    audit_appender *appender;           /* borrowed: the process's group commit; NULL = each write alone */
};

static bool stopping(const worker *w) { return atomic_load(&w->pool->stop); }

/* Sleeps up to ms, waking early when the pool stops. */
static void nap(const worker *w, int ms) {
    for (int slept = 0; slept < ms && !stopping(w); slept += 100) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void drop_clients(worker *w) {
    for (size_t i = 0; w->clients_cfg && i < w->clients_cfg->n_envs; i++) nomad_client_free(w->nomad[i]);
    free(w->nomad);
    w->nomad = NULL;
    config_free(w->clients_cfg);
    w->clients_cfg = NULL;
}

/* Takes the current snapshot for the next item. Nomad clients belong to one
 * snapshot (its addresses and tokens); a reload replaces them. */
static bool take_snapshot(worker *w) {
    w->cfg = config_holder_get(w->pool->config);
    if (w->cfg == w->clients_cfg) return true;
    drop_clients(w);
    w->nomad = calloc(w->cfg->n_envs ? w->cfg->n_envs : 1, sizeof(nomad_client *));
    if (!w->nomad) {
        config_free(w->cfg);
        w->cfg = NULL;
        return false;
    }
    w->clients_cfg = config_ref(w->cfg);
    return true;
}

static void release_snapshot(worker *w) {
    config_free(w->cfg);
    w->cfg = NULL;
}

static nomad_client *client_for(worker *w, const config_env *env) {
    size_t i = (size_t)(env - w->cfg->envs);
    if (!w->nomad[i]) w->nomad[i] = nomad_client_new(&env->nomad);
    return w->nomad[i];
}

static void add_str(json_object *o, const char *k, const char *v) {
    if (v && *v) json_object_object_add(o, k, json_object_new_string(v));
}

static void publish(worker *w, const char *route, json_object *ev) { run_publish_to(&w->q, route, ev); }

/* ---- request execution: claim, register, hand to the watcher ---- */

static void gather_evidence(worker *w, const config_env *src, const config_job *job, gov_evidence *ev,
                            char *dep_id, size_t dep_len);

static enum outcome fail_nomad(run *x, const char *what, nomad_client *c) {
    char detail[AUDIT_DETAIL_LEN];
    snprintf(detail, sizeof(detail), "%s: %s", what, nomad_client_errstr(c));
    return run_finish(x, "failed", "nomad_error", detail);
}

/* Reads the job; *ours tells whether it carries this request's stamp. */
static int read_stamp(run *x, nomad_client *c, json_object **job_out, nomad_job_info *info, bool *ours) {
    json_object *job = NULL;
    *ours = false;
    int rc = nomad_job_get(c, x->job->nomad_job, &job, info);
    if (rc != NOMAD_OK) return rc;
    json_object *meta = NULL, *stamp = NULL;
    *ours = json_object_object_get_ex(job, "Meta", &meta) && json_object_is_type(meta, json_type_object) &&
            json_object_object_get_ex(meta, "nomatron.request_id", &stamp) &&
            json_object_is_type(stamp, json_type_string) && strcmp(json_object_get_string(stamp), x->req_ref) == 0;
    if (job_out) *job_out = job;
    else json_object_put(job);
    return NOMAD_OK;
}

/* Registers the new image (state running/registering), or, when the job
 * already carries our stamp, recognises the register as done: a worker that
 * died after registering must not register again. */
static enum outcome register_or_recognise(run *x, nomad_client *c) {
    json_object *jobj = NULL;
    nomad_job_info info;
    bool ours;
    int rc = read_stamp(x, c, &jobj, &info, &ours);
    if (rc == NOMAD_ERR_NOT_FOUND) {
        char detail[AUDIT_DETAIL_LEN];
        snprintf(detail, sizeof(detail), "job %s does not exist in Nomad (namespace %s); nomatron changes the "
                 "image of a job that is already there", x->job->nomad_job, x->env->nomad.namespace);
        return run_finish(x, "failed", "nomad_error", detail);
    }
    if (rc != NOMAD_OK) return fail_nomad(x, "reading the job", c);

    nomad_register_result reg = {0};
    if (ours) {
        nm_log(NM_LOG_INFO, "register found done; not repeating it", "req", x->req_ref, NULL);
        x->job_version = (int64_t)info.version;
    } else {
        const char *cur = nomad_job_task_image(jobj, x->job->tasks.v[0]);
        snprintf(x->from_image, sizeof(x->from_image), "%s", cur ? cur : "");
        char err[256] = "";
        if (nomad_job_set_image(jobj, &x->job->tasks, x->r.to_image, err, sizeof(err)) != NOMAD_OK ||
            nomad_job_set_meta(jobj, "nomatron.request_id", x->req_ref) != NOMAD_OK ||
            nomad_job_set_meta(jobj, "nomatron.requested_by", x->r.actor) != NOMAD_OK ||
            (x->r.canary >= 0 && nomad_job_set_canary(jobj, x->r.canary, err, sizeof(err)) != NOMAD_OK)) {
            json_object_put(jobj);
            return run_finish(x, "failed", "nomad_error", err[0] ? err : "cannot edit the job");
        }
        /* Last governance look before Nomad changes: a freeze that began meanwhile hands it back to the queue. */
        gov_verdict gv;
        if (govern_run_check(x->db, x->cfg, x->r.id, GOV_AT_REGISTER, &gv) != AUDIT_OK) {
            json_object_put(jobj);
            return RETRY;
        }
        if (gv.tag != GOV_OK) {
            json_object_put(jobj);
            const char *to = (gv.flags & GOV_F_DEFER) ? "queued" : req_state_name(gv.next ? gv.next : REQ_FAILED);
            if (strcmp(to, "queued") == 0) {
                audit_transition t = {.from_state = "running", .to_state = "queued", .phase = "",
                                      .action = "request.deferred", .actor = WORKER_ACTOR,
                                      .outcome = gov_tag_name(gv.tag), .detail = gv.message, .nomad_job_version = -1};
                if (audit_request_transition(x->db, x->r.id, &t) != AUDIT_OK) return RETRY;
                snprintf(x->state, sizeof(x->state), "queued");
                run_publish(x, run_event(x, "queued", NULL, NULL, gv.message));
                return ACK;
            }
            return run_finish(x, "failed", "nomad_error", gv.message);
        }
        /* The fence: only the lease holder registers. */
        if (!run_keepalive(x, true)) {
            json_object_put(jobj);
            return LOST;
        }
        /* Approvals bind to the plan people saw (SPEC §6): register at the JobModifyIndex it was made at. */
        uint64_t enforce = info.job_modify_index;
        audit_facts facts;
        bool planned = audit_request_facts(x->db, x->r.id, &facts) == AUDIT_OK && facts.plan_modify_index >= 0;
        if (planned) enforce = (uint64_t)facts.plan_modify_index;
        rc = nomad_job_register(c, jobj, true, enforce, &reg);
        if (rc == NOMAD_ERR_CONFLICT && planned) {
            json_object_put(jobj);
            return run_finish(x, "failed", "conflict",
                              "the job changed in Nomad since the plan that was approved; request again");
        }
        if (rc == NOMAD_ERR_CONFLICT) {
            json_object_put(jobj);
            return run_finish(x, "failed", "conflict", "the job changed in Nomad after it was read; request again");
        }
        if (rc == NOMAD_ERR_CONNECT || rc == NOMAD_ERR_TIMEOUT || rc == NOMAD_ERR_HTTP) {
            /* The answer is lost, not necessarily the register: the stamp tells. */
            bool done = false;
            nomad_job_info again;
            if (read_stamp(x, c, NULL, &again, &done) != NOMAD_OK || !done) {
                json_object_put(jobj);
                return fail_nomad(x, "registering the job", c);
            }
            reg.eval_id[0] = '\0';
        } else if (rc != NOMAD_OK) {
            json_object_put(jobj);
            return fail_nomad(x, "registering the job", c);
        }
        nomad_job_info after;
        if (nomad_job_get(c, x->job->nomad_job, NULL, &after) != NOMAD_OK) {
            json_object_put(jobj);
            return fail_nomad(x, "reading the job", c);
        }
        x->job_version = (int64_t)after.version;
    }
    json_object_put(jobj);
    snprintf(x->eval_id, sizeof(x->eval_id), "%s", reg.eval_id);
    if (run_step(x, "running", "rolling", NULL, "deploy.registered", reg.warnings[0] ? reg.warnings : NULL) !=
        AUDIT_OK)
        return RETRY;
    return ACK;
}

/* A deploy: start it (queued) or resume it (running, its worker gone), then
 * hand the watch over. */
static enum outcome run_deploy(worker *w, run *x) {
    if (!x->env || !x->job) return run_finish(x, "failed", "nomad_error", "environment or job is no longer configured");
    nomad_client *c = client_for(w, x->env);
    if (!c) return RETRY;
    if (strcmp(x->state, "queued") == 0) {
        if (run_step(x, "running", "registering", NULL, "deploy.started", NULL) != AUDIT_OK)
            return w->db_up ? ACK : RETRY;   /* state conflict: someone else has it */
    } else {
        nm_log(NM_LOG_INFO, "resuming a request whose worker stopped", "req", x->req_ref, "phase", x->phase, NULL);
    }
    if (strcmp(x->phase, "registering") == 0) {
        enum outcome o = register_or_recognise(x, c);
        if (o != ACK || strcmp(x->state, "running") != 0) return o;
    }
    return HANDED;
}

/* rollback JOB in ENV [to VERSION | to #N] (SPEC §5): Nomad's revert to the
 * newest stable job version running that tag, or to version N, or by
 * default to the previous stable version. EnforcePriorVersion is the fence:
 * a revert repeated after the first one landed is refused by Nomad. */
static enum outcome revert_or_recognise(run *x, nomad_client *c) {
    const char *task = x->job->tasks.v[0];
    nomad_version_list *vl = calloc(1, sizeof(*vl));
    if (!vl) return RETRY;
    int rc = nomad_job_versions(c, x->job->nomad_job, task, vl);
    if (rc != NOMAD_OK || vl->n == 0) {
        free(vl);
        if (rc == NOMAD_ERR_NOT_FOUND || rc == NOMAD_OK) {
            char detail[AUDIT_DETAIL_LEN];
            snprintf(detail, sizeof(detail), "job %s does not exist in Nomad (namespace %s): nothing to roll back",
                     x->job->nomad_job, x->env->nomad.namespace);
            return run_finish(x, "failed", "nomad_error", detail);
        }
        return fail_nomad(x, "reading the job's versions", c);
    }
    const nomad_job_version *cur = &vl->v[0], *target = NULL;
    if (x->job_version >= 0 && (int64_t)cur->version != x->job_version) {
        /* Resumed after the revert landed (the version moved on since we recorded it). */
        x->job_version = (int64_t)cur->version;
        free(vl);
        return run_step(x, "running", "rolling", NULL, "rollback.registered", "revert found done") == AUDIT_OK
                   ? ACK
                   : RETRY;
    }
    const char *want = x->r.version;   /* "#N", a tag, or "" */
    char detail[AUDIT_DETAIL_LEN];
    for (size_t i = 1; i < vl->n && !target; i++) {
        const nomad_job_version *v = &vl->v[i];
        if (want[0] == '#') {
            if ((int64_t)v->version == strtoll(want + 1, NULL, 10)) target = v;
        } else if (want[0]) {
            size_t il = strlen(v->image), tl = strlen(want);
            if (v->stable && il > tl && v->image[il - tl - 1] == ':' && strcmp(v->image + il - tl, want) == 0)
                target = v;
        } else if (v->stable) {
            target = v;
        }
    }
    if (!target) {
        if (want[0] == '#' && strtoll(want + 1, NULL, 10) == (long long)cur->version)
            snprintf(detail, sizeof(detail), "job version %s is the one running now", want + 1);
        else if (want[0] == '#')
            snprintf(detail, sizeof(detail), "job version %s is not among the %zu versions Nomad keeps", want + 1,
                     vl->n_total);
        else if (want[0])
            snprintf(detail, sizeof(detail), "no earlier stable job version runs tag %s", want);
        else
            snprintf(detail, sizeof(detail), "there is no earlier stable job version to roll back to");
        free(vl);
        return run_finish(x, "failed", "nomad_error", detail);
    }
    snprintf(x->from_image, sizeof(x->from_image), "%s", cur->image);
    snprintf(detail, sizeof(detail), "reverting from job version %llu (%s) to %llu (%s)",
             (unsigned long long)cur->version, cur->image, (unsigned long long)target->version, target->image);
    uint64_t prior = cur->version, to = target->version;
    free(vl);
    if (!run_keepalive(x, true)) return LOST;
    nomad_register_result reg = {0};
    rc = nomad_job_revert(c, x->job->nomad_job, to, true, prior, &reg);
    if (rc != NOMAD_OK) return fail_nomad(x, "reverting the job", c);
    nomad_job_info after;
    if (nomad_job_get(c, x->job->nomad_job, NULL, &after) != NOMAD_OK) return fail_nomad(x, "reading the job", c);
    x->job_version = (int64_t)after.version;
    snprintf(x->eval_id, sizeof(x->eval_id), "%s", reg.eval_id);
    return run_step(x, "running", "rolling", NULL, "rollback.registered", detail) == AUDIT_OK ? ACK : RETRY;
}

static enum outcome run_rollback(worker *w, run *x) {
    if (!x->env || !x->job) return run_finish(x, "failed", "nomad_error", "environment or job is no longer configured");
    nomad_client *c = client_for(w, x->env);
    if (!c) return RETRY;
    if (strcmp(x->state, "queued") == 0) {
        /* The version running now is recorded first: after a crash it tells whether the revert landed. */
        nomad_job_info info;
        int rc = nomad_job_get(c, x->job->nomad_job, NULL, &info);
        if (rc == NOMAD_OK) x->job_version = (int64_t)info.version;
        if (run_step(x, "running", "registering", NULL, "rollback.started", NULL) != AUDIT_OK)
            return w->db_up ? ACK : RETRY;
    }
    if (strcmp(x->phase, "registering") == 0) {
        enum outcome o = revert_or_recognise(x, c);
        if (o != ACK || strcmp(x->state, "running") != 0) return o;
    }
    return HANDED;
}

static enum outcome handle_request(worker *w, const char *id) {
    char *end;
    long long rid = strtoll(id, &end, 10);
    if (*end || rid <= 0) {
        nm_log(NM_LOG_WARN, "work entry with a malformed request id skipped", "id", id, NULL);
        return ACK;
    }
    run *x = run_new();
    if (!x) return RETRY;
    x->db = &w->db;
    x->q = &w->q;
    x->db_up = &w->db_up;
    snprintf(x->req_ref, sizeof(x->req_ref), "D-%lld", rid);
    int rc = audit_request_get(&w->db, rid, &x->r);
    if (rc != AUDIT_OK) {
        if (rc == AUDIT_ERR_NOT_FOUND) nm_log(NM_LOG_WARN, "work entry for an unknown request skipped", "req", x->req_ref, NULL);
        else w->db_up = false;
        run_free(x);
        return rc == AUDIT_ERR_NOT_FOUND ? ACK : RETRY;
    }
    /* Duplicate deliveries are harmless: only a queued request starts, and a
     * running one is resumed only by whoever gets its job's lease. */
    if (strcmp(x->r.state, "queued") != 0 && strcmp(x->r.state, "running") != 0) {
        nm_log(NM_LOG_INFO, "request already ended; nothing to do", "req", x->req_ref, "state", x->r.state, NULL);
        run_free(x);
        return ACK;
    }
    /* One request per (environment, job) at a time, oldest first. A younger
     * one is acknowledged and stays queued in PostgreSQL; run_wake_next() or
     * the reconciler puts it back when its turn comes. */
    int64_t head = 0;
    if (audit_sched_head(&w->db, x->r.env, x->r.job, &head) != AUDIT_OK) {
        w->db_up = false;
        run_free(x);
        return RETRY;
    }
    if (head != rid) {
        char h[24];
        snprintf(h, sizeof(h), "D-%lld", (long long)head);
        nm_log(NM_LOG_INFO, "request waits for the job's earlier request", "req", x->req_ref, "after", h, NULL);
        run_free(x);
        return ACK;
    }
    x->cfg = config_ref(w->cfg);
    x->env = config_find_env(x->cfg, x->r.env);
    x->job = config_find_job(x->cfg, x->r.job);
    x->lease_ms = w->cfg->queue_lease_ms;
    snprintf(x->entry_id, sizeof(x->entry_id), "%s", w->item->entry_id);
    snprintf(x->consumer, sizeof(x->consumer), "%s", w->consumer);
    snprintf(x->lease_key, sizeof(x->lease_key), "nomatron:lease:job:%s:%s", x->r.env, x->r.job);
    snprintf(x->lease_value, sizeof(x->lease_value), "%lld %s", rid, w->token);
    char holder[160] = "";
    rc = queue_lease_acquire(&w->q, x->lease_key, x->lease_value, (int)x->lease_ms, holder, sizeof(holder));
    if (rc != QUEUE_OK) {
        if (rc == QUEUE_ERR_EMPTY) nm_log(NM_LOG_INFO, "job is held by another worker", "req", x->req_ref, "holder", holder, NULL);
        run_free(x);
        /* A live worker has it (if it dies, its lease expires and the reconciler re-adds the request). */
        return rc == QUEUE_ERR_EMPTY ? ACK : RETRY;
    }
    x->renewed_at = nm_mono_ms();
    if (strcmp(x->r.state, "queued") == 0) {
        /* Governance again at take: freezes, expiry, approvals under today's policy (decided on PostgreSQL's clock). */
        gov_verdict v;
        if (govern_run_check(&w->db, w->cfg, rid, GOV_AT_TAKE, &v) != AUDIT_OK) {
            run_release(x);
            run_free(x);
            w->db_up = audit_ping(&w->db);
            return RETRY;
        }
        /* promote: the source must still run the bound image, healthy long enough. */
        audit_facts pf;
        if (v.tag == GOV_OK && strcmp(x->r.kind, "promote") == 0 && audit_request_facts(&w->db, rid, &pf) == AUDIT_OK) {
            const config_env *src = config_find_env(w->cfg, pf.from_env);
            gov_evidence ev;
            char dep[NOMAD_ID_LEN];
            if (src && x->job) gather_evidence(w, src, x->job, &ev, dep, sizeof(dep));
            else memset(&ev, 0, sizeof(ev));
            if (govern_promote_check(&w->db, w->cfg, x->r.env, pf.from_env, &ev, pf.bound_image, &v) != AUDIT_OK) {
                run_release(x);
                run_free(x);
                return RETRY;
            }
            if (v.tag != GOV_OK) v.next = REQ_FAILED;
        }
        if (v.tag != GOV_OK) {
            enum outcome o = ACK;
            if (v.flags & GOV_F_DEFER) {
                /* Stays queued; the reconciler puts it back after a lease, and it is checked again then. */
                nm_log(NM_LOG_INFO, "request deferred", "req", x->req_ref, "rule", v.rule, "why", v.message, NULL);
                snprintf(x->state, sizeof(x->state), "queued");
                run_publish(x, run_event(x, "queued", NULL, NULL, v.message));
            } else {
                snprintf(x->state, sizeof(x->state), "queued");
                audit_transition t = {.from_state = "queued", .to_state = req_state_name(v.next ? v.next : REQ_EXPIRED),
                                      .action = "request.refused_at_take", .actor = WORKER_ACTOR,
                                      .outcome = gov_tag_name(v.tag), .detail = v.message, .nomad_job_version = -1};
                if (audit_request_transition(&w->db, rid, &t) == AUDIT_OK)
                    run_publish(x, run_event(x, t.to_state, NULL, gov_tag_name(v.tag), v.message));
                else o = RETRY;
            }
            run_release(x);
            run_free(x);
            return o;
        }
    }
    snprintf(x->state, sizeof(x->state), "%s", x->r.state);
    snprintf(x->phase, sizeof(x->phase), "%s", x->r.phase);
    snprintf(x->from_image, sizeof(x->from_image), "%s", x->r.from_image);
    snprintf(x->eval_id, sizeof(x->eval_id), "%s", x->r.eval_id);
    snprintf(x->deployment_id, sizeof(x->deployment_id), "%s", x->r.deployment_id);
    x->job_version = x->r.nomad_job_version;

    enum outcome o = strcmp(x->r.kind, "deploy") == 0 || strcmp(x->r.kind, "promote") == 0 ? run_deploy(w, x)
                     : strcmp(x->r.kind, "rollback") == 0 ? run_rollback(w, x)
                                                          : run_finish(x, "failed", "nomad_error", "unsupported request kind");
    if (o == HANDED) {
        watcher_hand(w->pool->watcher, x);   /* it acknowledges the entry when the request ends */
        return HANDED;
    }
    if (o != LOST) {
        /* Ended, or handed back (stopping, PostgreSQL gone): either way the job is free. */
        run_release(x);
        if (o == ACK && strcmp(x->state, "running") != 0) run_wake_next(x);
    }
    run_free(x);
    return o;
}

/* ---- tasks (answers that need Nomad: status) ---- */

static void status_for_env(worker *w, const config_env *env, const config_job *job, json_object *out) {
    nomad_client *c = client_for(w, env);
    add_str(out, "env", env->name);
    json_object *jobj = NULL;
    nomad_job_info info;
    int rc = c ? nomad_job_get(c, job->nomad_job, &jobj, &info) : NOMAD_ERR_NOMEM;
    if (rc == NOMAD_ERR_NOT_FOUND) {
        add_str(out, "error", "not deployed");
        return;
    }
    if (rc != NOMAD_OK) {
        add_str(out, "error", c ? nomad_client_errstr(c) : "out of memory");
        return;
    }
    const char *image = nomad_job_task_image(jobj, job->tasks.v[0]);
    if (image) {
        add_str(out, "image", image);
        size_t n = strlen(job->image);
        if (strncmp(image, job->image, n) == 0 && image[n] == ':') add_str(out, "version", image + n + 1);
    }
    json_object_put(jobj);
    json_object_object_add(out, "job_version", json_object_new_int64((int64_t)info.version));
    json_object_object_add(out, "stable", json_object_new_boolean(info.stable));
    add_str(out, "job_status", info.status);

    nomad_deployment d;
    bool found = false;
    if (nomad_job_latest_deployment(c, job->nomad_job, &d, &found) == NOMAD_OK && found) {
        json_object *dep = json_object_new_object();
        add_str(dep, "id", d.id);
        add_str(dep, "status", d.status);
        add_str(dep, "description", d.status_description);
        json_object_object_add(dep, "job_version", json_object_new_int64((int64_t)d.job_version));
        char counts[512];
        run_describe_groups(&d, counts, sizeof(counts));
        add_str(dep, "counts", counts);
        json_object_object_add(out, "deployment", dep);
    }
}

/* canary promote|fail, pause, resume: act on the deployment of the job's
 * running request, after checking it is still that request's and still
 * active (never "the latest deployment" blindly). Audited as an event of
 * the request, with the person who asked as its actor. Returns ok; message
 * says what happened or why not. */
static bool act_on_deployment(worker *w, const char *action, const config_env *env, const config_job *job,
                              const char *actor, const char *person, const char *channel, char *msg, size_t msglen) {
    /* Who may: the environment's approvers, or the requester where no approval is needed. */
    int64_t id = 0;
    audit_request r;
    if (audit_sched_head(&w->db, env->name, job->name, &id) != AUDIT_OK) {
        w->db_up = false;
        snprintf(msg, msglen, "PostgreSQL is unavailable; nothing was done");
        return false;
    }
    if (id <= 0 || audit_request_get(&w->db, id, &r) != AUDIT_OK || strcmp(r.state, "running") != 0) {
        snprintf(msg, msglen, "no request of %s is running in %s", job->name, env->name);
        return false;
    }
    /* Who may, and whether the phase and any freeze allow it: governance decides (and audits a refusal). */
    enum cmd_kind kind = strncmp(action, "canary_", 7) == 0 ? CMD_CANARY : strcmp(action, "pause") == 0 ? CMD_PAUSE
                                                                                                        : CMD_RESUME;
    gov_verdict gv;
    if (govern_may_act(&w->db, w->cfg, id, kind, kind == CMD_CANARY ? action + 7 : NULL, actor, channel, &gv) !=
        AUDIT_OK) {
        snprintf(msg, msglen, "PostgreSQL is unavailable; nothing was done");
        return false;
    }
    if (gv.tag != GOV_OK) {
        snprintf(msg, msglen, "%s [%s] (rule: %s)", gv.message, gov_tag_name(gv.tag), gv.rule);
        return false;
    }
    (void)person;
    nomad_client *c = client_for(w, env);
    if (!c) {
        snprintf(msg, msglen, "out of memory");
        return false;
    }
    if (!r.deployment_id[0]) {
        /* Not recorded yet (the watcher is a step behind): the job's latest deployment, if it is of the version
         * this request registered — never just any deployment. */
        nomad_deployment latest;
        bool found = false;
        if (r.nomad_job_version >= 0 && nomad_job_latest_deployment(c, job->nomad_job, &latest, &found) == NOMAD_OK &&
            found && (int64_t)latest.job_version == r.nomad_job_version)
            snprintf(r.deployment_id, sizeof(r.deployment_id), "%s", latest.id);
        if (!r.deployment_id[0]) {
            snprintf(msg, msglen, "D-%lld has no deployment yet; try again in a moment", (long long)id);
            return false;
        }
    }
    nomad_deployment d;
    if (nomad_deployment_get(c, r.deployment_id, 0, 0, &d, NULL) != NOMAD_OK) {
        snprintf(msg, msglen, "reading deployment %.8s: %s", r.deployment_id, nomad_client_errstr(c));
        return false;
    }
    bool resume = strcmp(action, "resume") == 0;
    const char *need = resume ? "paused" : "running";
    if (strcmp(d.status, need) != 0) {
        snprintf(msg, msglen, "deployment %.8s of D-%lld is %s, not %s; nothing was done", d.id, (long long)id,
                 d.status, need);
        return false;
    }
    if (strcmp(action, "canary_promote") == 0 && !run_awaiting_promotion(&d)) {
        snprintf(msg, msglen, "deployment %.8s of D-%lld has no canaries waiting for promotion", d.id, (long long)id);
        return false;
    }
    nomad_deployment_update up;
    int rc = strcmp(action, "canary_promote") == 0 ? nomad_deployment_promote(c, d.id, NULL, 0, &up)
             : strcmp(action, "canary_fail") == 0  ? nomad_deployment_fail(c, d.id, &up)
                                                   : nomad_deployment_pause(c, d.id, !resume, &up);
    if (rc != NOMAD_OK) {
        snprintf(msg, msglen, "Nomad refused: %s", nomad_client_errstr(c));
        return false;
    }
    static const struct { const char *action, *audit, *said; } words[] = {
        {"canary_promote", "deploy.canary_promoted", "canaries promoted"},
        {"canary_fail", "deploy.canary_failed", "deployment failed on request"},
        {"pause", "deploy.pause_requested", "deployment paused"},
        {"resume", "deploy.resume_requested", "deployment resumed"},
    };
    size_t k = 0;
    while (k < 3 && strcmp(words[k].action, action) != 0) k++;
    char detail[160];
    snprintf(detail, sizeof(detail), "%s (deployment %s)", words[k].said, d.id);
    audit_transition t = {.from_state = "running", .to_state = "running", .action = words[k].audit, .actor = actor,
                          .person = person, .outcome = words[k].said, .detail = detail, .nomad_job_version = -1};
    char ref[24];
    snprintf(ref, sizeof(ref), "D-%lld", (long long)id);
    if (audit_request_transition(&w->db, id, &t) != AUDIT_OK)
        nm_log(NM_LOG_ERROR, "action done in Nomad but not audited", "req", ref, "error", w->db.errstr, NULL);
    nm_log(NM_LOG_INFO, words[k].audit, "req", ref, "job", job->name, "env", env->name, "actor", actor, NULL);
    snprintf(msg, msglen, "%s for D-%lld (deployment %.8s)", words[k].said, (long long)id, d.id);
    return true;
}

/* What the source environment runs now, for promote: its image, the
 * latest deployment's status, whether it is healthy and since when. */
static void gather_evidence(worker *w, const config_env *src, const config_job *job, gov_evidence *ev,
                            char *dep_id, size_t dep_len) {
    memset(ev, 0, sizeof(*ev));
    if (dep_len) dep_id[0] = '\0';
    nomad_client *c = client_for(w, src);
    json_object *jobj = NULL;
    nomad_job_info info;
    if (!c || nomad_job_get(c, job->nomad_job, &jobj, &info) != NOMAD_OK) return;
    const char *image = nomad_job_task_image(jobj, job->tasks.v[0]);
    snprintf(ev->image, sizeof(ev->image), "%s", image ? image : "");
    json_object_put(jobj);
    ev->known = true;
    nomad_deployment d;
    bool found = false;
    if (nomad_job_latest_deployment(c, job->nomad_job, &d, &found) != NOMAD_OK || !found) return;
    snprintf(dep_id, dep_len, "%s", d.id);
    ev->status = !strcmp(d.status, "successful") ? GOV_DEPLOY_SUCCESSFUL
                 : !strcmp(d.status, "running")  ? GOV_DEPLOY_RUNNING
                 : !strcmp(d.status, "failed")   ? GOV_DEPLOY_FAILED
                 : !strcmp(d.status, "cancelled") ? GOV_DEPLOY_CANCELLED
                                                  : GOV_DEPLOY_UNKNOWN;
    bool healthy = (int64_t)d.job_version == (int64_t)info.version;
    for (size_t i = 0; i < d.n_groups; i++)
        if (d.groups[i].healthy_allocs < d.groups[i].desired_total || d.groups[i].unhealthy_allocs > 0) healthy = false;
    ev->healthy = healthy && ev->status == GOV_DEPLOY_SUCCESSFUL;
    /* A successful deployment's last change is when it became successful: healthy since then. */
    if (ev->healthy && d.modify_time > 0) ev->healthy_since = d.modify_time / 1000000000;
}

/* The plan people approve (SPEC §6): what registering this request would
 * change, and the JobModifyIndex it was made at, recorded on the request. */
static bool plan_request(worker *w, int64_t id, char *msg, size_t msglen, run *x) {
    audit_request r;
    if (audit_request_get(&w->db, id, &r) != AUDIT_OK) {
        snprintf(msg, msglen, "no request D-%lld", (long long)id);
        return false;
    }
    x->r = r;
    snprintf(x->req_ref, sizeof(x->req_ref), "D-%lld", (long long)id);
    const config_env *env = config_find_env(w->cfg, r.env);
    const config_job *job = config_find_job(w->cfg, r.job);
    nomad_client *c = env ? client_for(w, env) : NULL;
    if (!env || !job || !c || (strcmp(r.kind, "deploy") != 0 && strcmp(r.kind, "promote") != 0)) {
        snprintf(msg, msglen, "no plan for this request");
        return false;
    }
    json_object *jobj = NULL;
    nomad_job_info info;
    char err[256] = "";
    if (nomad_job_get(c, job->nomad_job, &jobj, &info) != NOMAD_OK) {
        snprintf(msg, msglen, "plan: reading the job: %s", nomad_client_errstr(c));
        return false;
    }
    nomad_plan plan;
    json_object *raw = NULL;
    int rc = nomad_job_set_image(jobj, &job->tasks, r.to_image, err, sizeof(err));
    if (rc == NOMAD_OK && r.canary >= 0) rc = nomad_job_set_canary(jobj, r.canary, err, sizeof(err));
    if (rc == NOMAD_OK) rc = nomad_job_plan(c, jobj, &plan, &raw);
    json_object_put(jobj);
    if (rc != NOMAD_OK) {
        snprintf(msg, msglen, "plan: %s", err[0] ? err : nomad_client_errstr(c));
        json_object_put(raw);
        return false;
    }
    /* What changes, per task group, in words people check before approving. */
    size_t n = (size_t)snprintf(msg, msglen, "plan at JobModifyIndex %llu (%s):", (unsigned long long)plan.job_modify_index,
                                plan.diff_type[0] ? plan.diff_type : "no diff");
    for (size_t i = 0; i < plan.n_groups && n < msglen; i++) {
        const nomad_plan_group *g = &plan.groups[i];
        int wr = snprintf(msg + n, msglen - n, "%s %s: %llu destructive, %llu in place, %llu new, %llu stopped%s",
                          i ? ";" : "", g->name, (unsigned long long)g->destructive, (unsigned long long)g->in_place,
                          (unsigned long long)g->place, (unsigned long long)g->stop,
                          g->canary ? ", canaries" : "");
        if (wr > 0) n += (size_t)wr;
    }
    /* The plan's fingerprint: FNV-1a over Nomad's diff. */
    const char *text = raw ? json_object_to_json_string_ext(raw, JSON_C_TO_STRING_PLAIN) : "";
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = text; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    json_object_put(raw);
    char hash[24];
    snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)h);
    if (audit_plan_record(&w->db, id, (int64_t)plan.job_modify_index, hash, msg) != AUDIT_OK) {
        snprintf(msg, msglen, "plan made but not recorded: %s", w->db.errstr);
        return false;
    }
    return true;
}

static enum outcome handle_task(worker *w, const char *task_id) {
    char *text = NULL;
    int rc = queue_task_get(&w->q, task_id, &text);
    if (rc == QUEUE_ERR_EMPTY) {
        nm_log(NM_LOG_WARN, "task expired before it was run", "task", task_id, NULL);
        return ACK;
    }
    if (rc != QUEUE_OK) return RETRY;
    json_object *task = json_tokener_parse(text);
    free(text);
    json_object *v;
    const char *kind = "", *job_name = "", *env_name = "", *route = "", *action = "", *actor = "", *person = "",
               *channel = NULL;
    if (task && json_object_is_type(task, json_type_object)) {
        if (json_object_object_get_ex(task, "kind", &v)) kind = json_object_get_string(v);
        if (json_object_object_get_ex(task, "job", &v)) job_name = json_object_get_string(v);
        if (json_object_object_get_ex(task, "env", &v)) env_name = json_object_get_string(v);
        if (json_object_object_get_ex(task, "route", &v)) route = json_object_get_string(v);
        if (json_object_object_get_ex(task, "action", &v)) action = json_object_get_string(v);
        if (json_object_object_get_ex(task, "actor", &v)) actor = json_object_get_string(v);
        if (json_object_object_get_ex(task, "person", &v)) person = json_object_get_string(v);
        if (json_object_object_get_ex(task, "channel", &v)) channel = json_object_get_string(v);
    }
    const config *cfg = w->cfg;
    const config_job *job = config_find_job(cfg, job_name);
    const config_env *env = config_find_env(cfg, env_name);
    json_object *ans = json_object_new_object();
    add_str(ans, "task", task_id);
    add_str(ans, "job", job_name);
    if (strcmp(kind, "evidence") == 0) {
        const config_env *src = config_find_env(cfg, env_name);
        gov_evidence ev;
        char dep[NOMAD_ID_LEN] = "";
        if (src && job) gather_evidence(w, src, job, &ev, dep, sizeof(dep));
        else memset(&ev, 0, sizeof(ev));
        add_str(ans, "type", "evidence");
        add_str(ans, "env", env_name);
        json_object_object_add(ans, "known", json_object_new_boolean(ev.known));
        add_str(ans, "image", ev.image);
        json_object_object_add(ans, "status", json_object_new_int(ev.status));
        json_object_object_add(ans, "healthy", json_object_new_boolean(ev.healthy));
        json_object_object_add(ans, "healthy_since", json_object_new_int64(ev.healthy_since));
        add_str(ans, "deployment", dep);
        publish(w, route, ans);
        json_object_put(task);
        return ACK;
    }
    if (strcmp(kind, "plan") == 0) {
        json_object *idv;
        int64_t id = json_object_object_get_ex(task, "req", &idv) ? json_object_get_int64(idv) : 0;
        char msg[AUDIT_DETAIL_LEN];
        run x = {.db = &w->db, .q = &w->q, .db_up = &w->db_up, .job_version = -1};
        bool ok = plan_request(w, id, msg, sizeof(msg), &x);
        json_object_put(ans);
        /* The plan is shown where the request is discussed (its route): approvers read it there. */
        if (x.r.id > 0) run_publish(&x, run_event(&x, x.r.state, NULL, NULL, msg));
        if (!ok) nm_log(NM_LOG_WARN, "plan not made", "req", x.req_ref, "why", msg, NULL);
        json_object_put(task);
        return ACK;
    }
    if (strcmp(kind, "action") == 0) {
        char msg[320];
        bool ok = false;
        if (!job || !env) snprintf(msg, sizeof(msg), "unknown %s", !job ? "job" : "environment");
        else if (strcmp(action, "canary_promote") && strcmp(action, "canary_fail") && strcmp(action, "pause") &&
                 strcmp(action, "resume"))
            snprintf(msg, sizeof(msg), "unknown action");
        else ok = act_on_deployment(w, action, env, job, actor, person, channel, msg, sizeof(msg));
        add_str(ans, "type", "action");
        add_str(ans, "action", action);
        add_str(ans, "env", env_name);
        json_object_object_add(ans, "ok", json_object_new_boolean(ok));
        add_str(ans, "message", msg);
    } else {
        add_str(ans, "type", "status");
        if (strcmp(kind, "status") != 0 || !job) {
            add_str(ans, "error", strcmp(kind, "status") != 0 ? "unknown task kind" : "unknown job");
        } else {
            json_object *envs = json_object_new_array();
            for (size_t i = 0; i < cfg->n_envs; i++) {
                if (env_name[0] && strcmp(env_name, cfg->envs[i].name) != 0) continue;
                json_object *e = json_object_new_object();
                status_for_env(w, &cfg->envs[i], job, e);
                json_object_array_add(envs, e);
            }
            json_object_object_add(ans, "envs", envs);
        }
    }
    publish(w, route, ans);
    json_object_put(task);
    return ACK;
}

/* ---- thread ---- */

/* Leases and dedup keys must survive memory pressure. */
static void check_eviction_policy(worker *w) {
    char policy[64];
    if (queue_eviction_policy(&w->q, policy, sizeof(policy)) != QUEUE_OK)
        nm_log(NM_LOG_WARN, "cannot read Redis maxmemory-policy; it must be noeviction", "error", w->q.errstr, NULL);
    else if (strcmp(policy, "noeviction") != 0)
        nm_log(NM_LOG_ERROR, "Redis maxmemory-policy is not noeviction: leases can vanish under memory pressure and "
                             "a job could be deployed twice at once; set maxmemory-policy noeviction",
               "policy", policy, NULL);
}

static void *worker_main(void *arg) {
    worker *w = arg;
    bool q_up = false, checked = false;
    int64_t last_claim = 0, lease_ms = 30000;
    while (!stopping(w)) {
        if (!q_up || !w->db_up) {
            config *cfg = config_holder_get(w->pool->config);
            bool up = true;
            if (!q_up) {
                queue_close(&w->q);
                q_up = queue_connect(&w->q, cfg->redis, 5000) == QUEUE_OK && queue_setup(&w->q) == QUEUE_OK;
                if (q_up && w->n == 0 && !checked) {
                    check_eviction_policy(w);
                    checked = true;
                }
                if (!q_up)
                    nm_log(NM_LOG_WARN, "worker cannot reach Redis; retrying", "worker", w->consumer, "error",
                           w->q.errstr, NULL);
                up = q_up;
            }
            if (up && !w->db_up) {
                /* PostgreSQL down: take no work, so nothing runs unaudited. */
                audit_close(&w->db);
                w->db_up = audit_connect(&w->db, cfg->postgres) == AUDIT_OK;
                if (w->db_up) audit_db_set_appender(&w->db, w->pool->appender);
                if (!w->db_up)
                    nm_log(NM_LOG_WARN, "worker cannot reach PostgreSQL; retrying", "worker", w->consumer, "error",
                           w->db.errstr, NULL);
                up = w->db_up;
            }
            lease_ms = cfg->queue_lease_ms;
            config_free(cfg);
            if (!up) {
                nap(w, 1000);
                continue;
            }
        }
        queue_work item;
        int rc = QUEUE_ERR_EMPTY;
        /* First what other workers left behind (died, stalled), then new work. */
        if (nm_mono_ms() - last_claim >= lease_ms / 2) {
            last_claim = nm_mono_ms();
            rc = queue_work_claim_stale(&w->q, w->consumer, (int)lease_ms, &item);
            if (rc == QUEUE_OK) nm_log(NM_LOG_INFO, "took over stale work", "worker", w->consumer, "entry", item.entry_id, NULL);
        }
        if (rc == QUEUE_ERR_EMPTY) rc = queue_work_next(&w->q, w->consumer, WORKER_BLOCK_MS, &item);
        if (rc == QUEUE_ERR_EMPTY) continue;
        if (rc != QUEUE_OK) {
            nm_log(NM_LOG_WARN, "work read failed", "worker", w->consumer, "error", w->q.errstr, NULL);
            q_up = w->q.rc != NULL;
            nap(w, 500);
            continue;
        }
        /* The snapshot is taken when the item arrives, and the item runs to
         * its end with it even if a reload swaps in another meanwhile. If it
         * cannot be taken, the entry stays pending and is delivered again. */
        if (!take_snapshot(w)) {
            nap(w, 1000);
            continue;
        }
        lease_ms = w->cfg->queue_lease_ms;
        w->item = &item;
        enum outcome o = strcmp(item.kind, "request") == 0 ? handle_request(w, item.id)
                         : strcmp(item.kind, "task") == 0  ? handle_task(w, item.id)
                                                           : ACK;
        if (o == ACK && queue_work_ack(&w->q, item.entry_id) != QUEUE_OK) q_up = w->q.rc != NULL;
        w->item = NULL;
        release_snapshot(w);
    }
    queue_close(&w->q);
    audit_close(&w->db);
    drop_clients(w);
    return NULL;
}

/* ---- reconciler: PostgreSQL is the truth, Redis may forget ---- */

typedef struct reconcile_pass {
    queue_conn *q;
    int requeued;
} reconcile_pass;

/* A queued or running request untouched for a lease period whose job is not
 * leased by anyone: its work entry was lost (Redis restarted without its
 * data, an XADD failed) or its worker died. Putting it back is safe: only the
 * job's lease holder acts on it. */
static void reconcile_one(void *ud, int64_t id, const char *env, const char *job) {
    reconcile_pass *p = ud;
    char key[200], holder[160], ids[24];
    snprintf(key, sizeof(key), "nomatron:lease:job:%s:%s", env, job);
    if (queue_lease_holder(p->q, key, holder, sizeof(holder)) != QUEUE_ERR_EMPTY) return;
    snprintf(ids, sizeof(ids), "%lld", (long long)id);
    if (queue_work_add(p->q, "request", ids) == QUEUE_OK) p->requeued++;
}

/* audit.checkpoint: the chain's head, published where it outlives the
 * database (the log now; the chat notifier when chat is configured). */
static void checkpoint(audit_db *db) {
    audit_checkpoint_info cp;
    int rc = audit_checkpoint(db, &cp);
    if (rc != AUDIT_OK) {
        nm_log(NM_LOG_ERROR, "audit checkpoint refused", "error", db->errstr, NULL);
        return;
    }
    char head[24], events[24];
    snprintf(head, sizeof(head), "%lld", (long long)cp.head_id);
    snprintf(events, sizeof(events), "%lld", (long long)cp.events);
    nm_log(NM_LOG_INFO, "audit checkpoint", "head", head, "events", events, "hash", cp.head_hash, "at", cp.at, NULL);
}

/* Requests the governance sweep moved (expired, voided): told on their route after the sweep. */
typedef struct sweep_ctx {
    queue_conn *q;
    audit_db *db;
    size_t n;
    int64_t ids[64];
    char states[64][AUDIT_STATE_LEN];
    char messages[64][160];
} sweep_ctx;

static void swept(void *ud, int64_t id, const char *state, const char *message) {
    sweep_ctx *sc = ud;
    if (sc->n >= 64) return;
    sc->ids[sc->n] = id;
    snprintf(sc->states[sc->n], sizeof(sc->states[0]), "%s", state);
    snprintf(sc->messages[sc->n], sizeof(sc->messages[0]), "%s", message);
    sc->n++;
}

static void tell_moved(sweep_ctx *sc, int64_t id, const char *state, const char *message) {
    run x = {.db = sc->db, .q = sc->q, .job_version = -1};
    if (audit_request_get(sc->db, id, &x.r) != AUDIT_OK) return;
    snprintf(x.req_ref, sizeof(x.req_ref), "D-%lld", (long long)id);
    nm_log(NM_LOG_INFO, "request moved by governance", "req", x.req_ref, "state", state, "why", message, NULL);
    run_publish(&x, run_event(&x, state, NULL, NULL, message));
}

/* Each environment's Nomad, asked for its leader with one short attempt;
 * the answers go to Redis, where bots read them for /readyz (they hold no
 * Nomad token). */
static void probe_nomads(queue_conn *q, const config *cfg) {
    time_t now = time(NULL);
    for (size_t i = 0; i < cfg->n_envs; i++) {
        config_nomad target = cfg->envs[i].nomad;
        if (target.timeout_ms <= 0 || target.timeout_ms > 2000) target.timeout_ms = 2000;
        nomad_client *c = nomad_client_new(&target);
        if (!c) continue;
        nomad_client_set_retry(c, 0, 0, 0);
        char leader[128], value[320];
        if (nomad_status_leader(c, leader, sizeof(leader)) == NOMAD_OK)
            snprintf(value, sizeof(value), "ok %lld", (long long)now);
        else
            snprintf(value, sizeof(value), "error %lld %.200s", (long long)now, nomad_client_errstr(c));
        nomad_client_free(c);
        if (queue_health_put(q, cfg->envs[i].name, value) != QUEUE_OK) return;
    }
}

/* The pool's timer thread: the reconciler (every queue.reconcile) and audit
 * checkpoints (every audit.checkpoint, the first one an interval after start). */
static void *reconciler_main(void *arg) {
    worker_pool *pool = arg;
    queue_conn q = {0};
    audit_db db = {0};
    bool up = false;
    int64_t next_reconcile = 0, next_checkpoint = 0;
    while (!atomic_load(&pool->stop)) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        int64_t now = nm_mono_ms();
        if (now < next_reconcile && (next_checkpoint == 0 || now < next_checkpoint)) continue;
        config *cfg = config_holder_get(pool->config);
        if (!up) {
            queue_close(&q);
            audit_close(&db);
            up = queue_connect(&q, cfg->redis, 5000) == QUEUE_OK && audit_connect(&db, cfg->postgres) == AUDIT_OK;
            if (up) audit_db_set_appender(&db, pool->appender);
        }
        if (up && now >= next_reconcile) {
            next_reconcile = now + cfg->queue_reconcile_ms;
            reconcile_pass p = {.q = &q};
            static const char *const states[] = {"queued", "running"};
            for (size_t i = 0; i < 2 && up; i++)
                up = audit_sched_idle(&db, states[i], cfg->queue_lease_ms, RECONCILE_BATCH, reconcile_one, &p) ==
                         AUDIT_OK &&
                     q.rc != NULL;
            if (up) probe_nomads(&q, cfg);
            if (p.requeued > 0) {
                char n[16];
                snprintf(n, sizeof(n), "%d", p.requeued);
                nm_log(NM_LOG_INFO, "reconciler put lost work back on the queue", "requests", n, NULL);
            }
            /* Expiry and policy changes (a reload) of waiting requests; people are told on their route. */
            sweep_ctx *sc = up ? calloc(1, sizeof(*sc)) : NULL;
            if (sc) {
                sc->q = &q;
                sc->db = &db;
                if (govern_sweep(&db, cfg, swept, sc) != AUDIT_OK) up = false;
                for (size_t i = 0; i < sc->n; i++) tell_moved(sc, sc->ids[i], sc->states[i], sc->messages[i]);
                free(sc);
            }
        }
        if (up && cfg->audit_checkpoint_ms > 0 && (next_checkpoint == 0 || now >= next_checkpoint)) {
            if (next_checkpoint != 0) checkpoint(&db);
            next_checkpoint = now + cfg->audit_checkpoint_ms;
        }
        if (!up) next_reconcile = now + 1000;   /* retry the connections in a second */
        config_free(cfg);
    }
    queue_close(&q);
    audit_close(&db);
    return NULL;
}

worker_pool *worker_pool_start(config_holder *holder, int n, audit_appender *appender, char *err, size_t errlen) {
    worker_pool *p = calloc(1, sizeof(*p));
    if (!p || n < 1) {
        free(p);
        snprintf(err, errlen, n < 1 ? "at least one worker is needed" : "out of memory");
        return NULL;
    }
    p->config = holder;
    p->n = n;
    atomic_init(&p->stop, false);
    p->w = calloc((size_t)n, sizeof(worker));
    if (!p->w) {
        free(p);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->appender = appender;
    /* The watcher first: workers hand it their deployments from the start. */
    if (!(p->watcher = watcher_start(holder, &p->stop))) {
        snprintf(err, errlen, "cannot start the watcher thread");
        free(p->w);
        free(p);
        return NULL;
    }
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    for (int i = 0; i < n; i++) {
        worker *w = &p->w[i];
        w->pool = p;
        w->n = i;
        snprintf(w->consumer, sizeof(w->consumer), "%s-%ld-%d", host, (long)getpid(), i);
        unsigned char raw[6] = {0};
        if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
            uint64_t x = (uint64_t)nm_mono_ms() ^ (uint64_t)(uintptr_t)w;
            memcpy(raw, &x, sizeof(raw));
        }
        snprintf(w->token, sizeof(w->token), "%s-%02x%02x%02x%02x%02x%02x", w->consumer, raw[0], raw[1], raw[2], raw[3],
                 raw[4], raw[5]);
        if (pthread_create(&w->tid, NULL, worker_main, w) != 0) {
            snprintf(err, errlen, "cannot start worker thread %d", i);
            worker_pool_stop(p);
            return NULL;
        }
        w->started = true;
    }
    if (pthread_create(&p->reconciler, NULL, reconciler_main, p) == 0) p->reconciler_started = true;
    else nm_log(NM_LOG_ERROR, "reconciler thread not started; lost work is not re-queued", NULL);
    return p;
}

void worker_pool_stop(worker_pool *pool) {
    if (!pool) return;
    atomic_store(&pool->stop, true);
    for (int i = 0; i < pool->n; i++) {
        if (pool->w[i].started) pthread_join(pool->w[i].tid, NULL);
    }
    if (pool->reconciler_started) pthread_join(pool->reconciler, NULL);
    watcher_stop(pool->watcher);
    free(pool->w);
    free(pool);
}
