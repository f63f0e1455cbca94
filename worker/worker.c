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
#include "queue.h"
#include "sched.h"

#define WORKER_ACTOR "nomatron:worker"
#define WORKER_BLOCK_MS 1000            /* XREADGROUP block: bounds how long a stop waits */
#define WATCH_WAIT_MAX_MS 3000          /* blocking-query wait; bounds shutdown latency (and lease/3) */
#define RECONCILE_BATCH 200             /* requests re-examined per reconciler pass */
#define WATCH_DEADLINE_MS (60LL * 60 * 1000)
#define NOMAD_RETRIES 4                 /* transient Nomad errors tolerated in a row while watching */

/* What the worker does with a work entry once handled: acknowledge it, leave
 * it pending for a later delivery, or drop it because another worker now
 * owns the request (our lease was taken over). */
enum outcome { ACK, RETRY, LOST };

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

/* Blocking queries return at least every lease/3, so the claim is renewed in time. */
static int watch_wait_ms(const worker *w) {
    int64_t third = w->cfg->queue_lease_ms / 3;
    return third < WATCH_WAIT_MAX_MS ? (int)third : WATCH_WAIT_MAX_MS;
}

static nomad_client *client_for(worker *w, const config_env *env) {
    size_t i = (size_t)(env - w->cfg->envs);
    if (!w->nomad[i]) w->nomad[i] = nomad_client_new(&env->nomad);
    return w->nomad[i];
}

/* ---- events ---- */

static void publish(worker *w, const char *route, json_object *ev) {
    const char *text = json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    int rc = queue_event_publish(&w->q, route, text);
    if (rc != QUEUE_OK)
        nm_log(NM_LOG_WARN, "event not published", "route", route, "error", w->q.errstr, NULL);
    json_object_put(ev);
}

static void add_str(json_object *o, const char *k, const char *v) {
    if (v && *v) json_object_object_add(o, k, json_object_new_string(v));
}

/* An event about a request; `detail` and counts are optional. */
static json_object *request_event(const audit_request *r, const char *state, const char *phase, const char *reason,
                                  const char *detail) {
    json_object *ev = json_object_new_object();
    add_str(ev, "type", "request");
    json_object_object_add(ev, "req", json_object_new_int64(r->id));
    add_str(ev, "state", state);
    add_str(ev, "phase", phase);
    add_str(ev, "reason", reason);
    add_str(ev, "kind", r->kind);
    add_str(ev, "job", r->job);
    add_str(ev, "env", r->env);
    add_str(ev, "version", r->version);
    add_str(ev, "detail", detail);
    return ev;
}

/* ---- request execution ---- */

typedef struct run {
    worker *w;
    audit_request r;
    char lease_key[200];                /* nomatron:lease:job:<env>:<job> */
    char lease_value[160];              /* "<request id> <worker token>" */
    int64_t renewed_at;                 /* monotonic ms of the last claim + lease renewal */
    char state[AUDIT_STATE_LEN];        /* state as we last committed it */
    char phase[AUDIT_STATE_LEN];
    char req_ref[32];                   /* "D-12" */
    char from_image[AUDIT_IMAGE_LEN];
    char eval_id[NOMAD_ID_LEN];
    char deployment_id[NOMAD_ID_LEN];
    int64_t job_version;
} run;

/* Commits a transition and reports it. Returns an audit code. */
static int step(run *x, const char *to_state, const char *phase, const char *reason, const char *action,
                const char *detail) {
    audit_transition t = {
        .from_state = x->state, .to_state = to_state, .phase = phase, .reason = reason, .action = action,
        .actor = WORKER_ACTOR, .outcome = to_state, .detail = detail,
        .from_image = x->from_image[0] ? x->from_image : NULL,
        .eval_id = x->eval_id[0] ? x->eval_id : NULL,
        .deployment_id = x->deployment_id[0] ? x->deployment_id : NULL,
        .nomad_job_version = x->job_version,
    };
    int rc = audit_request_transition(&x->w->db, x->r.id, &t);
    if (rc != AUDIT_OK) {
        nm_log(NM_LOG_ERROR, "cannot record transition", "req", x->req_ref, "to", to_state, "error",
               x->w->db.errstr, NULL);
        if (rc == AUDIT_ERR_CONNECT) x->w->db_up = false;
        return rc;
    }
    snprintf(x->state, sizeof(x->state), "%s", to_state);
    snprintf(x->phase, sizeof(x->phase), "%s", phase ? phase : "");
    nm_log(NM_LOG_INFO, action, "req", x->req_ref, "job", x->r.job, "env", x->r.env, "actor", x->r.actor, "state",
           to_state, "phase", phase && *phase ? phase : NULL, "reason", reason && *reason ? reason : NULL, NULL);
    json_object *ev = request_event(&x->r, to_state, phase, reason, detail);
    if (x->job_version >= 0) json_object_object_add(ev, "job_version", json_object_new_int64(x->job_version));
    publish(x->w, x->r.route, ev);
    return AUDIT_OK;
}

/* Ends the request. If even that cannot be recorded (PostgreSQL gone), the
 * entry is not acknowledged and another attempt will see its state. */
static enum outcome finish(run *x, const char *to_state, const char *reason, const char *detail) {
    char action[48];
    snprintf(action, sizeof(action), "%s.%s", x->r.kind, to_state);
    return step(x, to_state, "", reason, action, detail) == AUDIT_OK ? ACK : RETRY;
}

static enum outcome fail_nomad(run *x, const char *what, nomad_client *c) {
    char detail[AUDIT_DETAIL_LEN];
    snprintf(detail, sizeof(detail), "%s: %s", what, nomad_client_errstr(c));
    return finish(x, "failed", "nomad_error", detail);
}

static void describe_groups(const nomad_deployment *d, char *out, size_t outlen) {
    int64_t healthy = 0, desired = 0, placed = 0, unhealthy = 0;
    for (size_t i = 0; i < d->n_groups; i++) {
        healthy += d->groups[i].healthy_allocs;
        desired += d->groups[i].desired_total;
        placed += d->groups[i].placed_allocs;
        unhealthy += d->groups[i].unhealthy_allocs;
    }
    snprintf(out, outlen, "%" PRId64 "/%" PRId64 " healthy, %" PRId64 " placed, %" PRId64 " unhealthy", healthy,
             desired, placed, unhealthy);
}

static bool awaiting_promotion(const nomad_deployment *d) {
    for (size_t i = 0; i < d->n_groups; i++)
        if (d->groups[i].desired_canaries > 0 && !d->groups[i].promoted) return true;
    return false;
}

/* Renews the work claim and the job lease every lease/3. False when either
 * now belongs to another worker: then this one must stop touching the
 * request. A Redis outage is not a loss: PostgreSQL's state guards every
 * commit, and the lease is renewed again when Redis answers. */
static bool keepalive(run *x, bool force) {
    worker *w = x->w;
    int64_t now = nm_mono_ms();
    if (!force && now - x->renewed_at < w->cfg->queue_lease_ms / 3) return true;
    int rc = queue_work_touch(&w->q, w->consumer, w->item->entry_id);
    if (rc == QUEUE_OK) rc = queue_lease_renew(&w->q, x->lease_key, x->lease_value, (int)w->cfg->queue_lease_ms);
    if (rc == QUEUE_ERR_EMPTY) {
        nm_log(NM_LOG_WARN, "lease lost; another worker has the request", "req", x->req_ref, NULL);
        return false;
    }
    if (rc == QUEUE_OK) x->renewed_at = now;
    return true;
}

/* Follows the evaluation to its end; fills x->deployment_id. */
static enum outcome follow_eval(run *x, nomad_client *c, bool *done) {
    uint64_t index = 0;
    int errors = 0;
    int64_t deadline = nm_mono_ms() + WATCH_DEADLINE_MS;
    nomad_eval ev;
    *done = false;
    for (;;) {
        if (stopping(x->w)) return RETRY;
        if (!keepalive(x, false)) return LOST;
        if (nm_mono_ms() > deadline) return finish(x, "failed", "timeout", "evaluation did not finish in time");
        uint64_t next = 0;
        int rc = nomad_eval_get(c, x->eval_id, index, watch_wait_ms(x->w), &ev, &next);
        if (rc != NOMAD_OK) {
            if (++errors > NOMAD_RETRIES || rc == NOMAD_ERR_NOT_FOUND || rc == NOMAD_ERR_FORBIDDEN)
                return fail_nomad(x, "reading the evaluation", c);
            nap(x->w, 1000 << (errors - 1));
            continue;
        }
        errors = 0;
        index = next < index ? 0 : next;
        if (nomad_eval_terminal(&ev)) break;
    }
    if (strcmp(ev.status, "complete") != 0) {
        char detail[AUDIT_DETAIL_LEN];
        snprintf(detail, sizeof(detail), "evaluation %s: %s", ev.status, ev.status_description);
        return finish(x, "failed", "nomad_error", detail);
    }
    if (ev.failed_tg_allocs) {
        json_object *e = request_event(&x->r, x->state, x->phase, NULL,
                                       "some allocations could not be placed; Nomad keeps trying");
        publish(x->w, x->r.route, e);
    }
    if (!ev.deployment_id[0]) {
        *done = true;
        return finish(x, "succeeded", "", "registered; Nomad started no deployment (nothing to roll out)");
    }
    snprintf(x->deployment_id, sizeof(x->deployment_id), "%s", ev.deployment_id);
    return ACK;
}

static enum outcome follow_deployment(run *x, nomad_client *c) {
    uint64_t index = 0;
    int errors = 0;
    int64_t deadline = nm_mono_ms() + WATCH_DEADLINE_MS;
    char last_counts[128] = "";
    nomad_deployment d;
    for (;;) {
        if (stopping(x->w)) return RETRY;
        if (!keepalive(x, false)) return LOST;
        if (nm_mono_ms() > deadline) return finish(x, "failed", "timeout", "deployment did not finish in time");
        uint64_t next = 0;
        int rc = nomad_deployment_get(c, x->deployment_id, index, watch_wait_ms(x->w), &d, &next);
        if (rc != NOMAD_OK) {
            if (++errors > NOMAD_RETRIES || rc == NOMAD_ERR_NOT_FOUND || rc == NOMAD_ERR_FORBIDDEN)
                return fail_nomad(x, "reading the deployment", c);
            nap(x->w, 1000 << (errors - 1));
            continue;
        }
        errors = 0;
        index = next < index ? 0 : next;

        char counts[128];
        describe_groups(&d, counts, sizeof(counts));
        if (strcmp(d.status, "successful") == 0) return finish(x, "succeeded", "", counts);
        if (strcmp(d.status, "failed") == 0) {
            const char *reason = strstr(d.status_description, "progress deadline") ? "deadline" : "unhealthy";
            char detail[AUDIT_DETAIL_LEN];
            snprintf(detail, sizeof(detail), "%s (%s)", d.status_description, counts);
            return finish(x, "failed", reason, detail);
        }
        if (strcmp(d.status, "cancelled") == 0) return finish(x, "failed", "superseded", d.status_description);

        const char *phase = strcmp(d.status, "paused") == 0 ? "paused"
                            : awaiting_promotion(&d)        ? "awaiting_promotion"
                                                            : "rolling";
        if (strcmp(phase, x->phase) != 0) {
            char action[48];
            snprintf(action, sizeof(action), "%s.%s", x->r.kind, phase);
            if (step(x, "running", phase, NULL, action, d.status_description) != AUDIT_OK) return RETRY;
        } else if (strcmp(counts, last_counts) != 0) {
            /* Progress within a phase goes to chat only; the audit trail records state changes. */
            json_object *e = request_event(&x->r, "running", phase, NULL, counts);
            json_object_object_add(e, "job_version", json_object_new_int64(x->job_version));
            publish(x->w, x->r.route, e);
        }
        snprintf(last_counts, sizeof(last_counts), "%s", counts);
    }
}

/* Finds the deployment of the job version we registered, when the
 * evaluation that created it is unknown (its ID was lost with an answer, or
 * a worker died before recording it). The scheduler may not have created it
 * yet: ask a few times. */
static enum outcome find_deployment(run *x, nomad_client *c, const char *nomad_job) {
    for (int attempt = 0; attempt < 10; attempt++) {
        if (stopping(x->w)) return RETRY;
        if (!keepalive(x, false)) return LOST;
        nomad_deployment d;
        bool found = false;
        int rc = nomad_job_latest_deployment(c, nomad_job, &d, &found);
        if (rc != NOMAD_OK && rc != NOMAD_ERR_CONNECT && rc != NOMAD_ERR_TIMEOUT)
            return fail_nomad(x, "reading the job's deployment", c);
        if (rc == NOMAD_OK && found && (int64_t)d.job_version == x->job_version) {
            snprintf(x->deployment_id, sizeof(x->deployment_id), "%s", d.id);
            return ACK;
        }
        nap(x->w, 1000);
    }
    return finish(x, "succeeded", "", "registered; Nomad started no deployment for this version");
}

/* From "the job is registered with our stamp" to the end of its deployment. */
static enum outcome follow(run *x, nomad_client *c, const char *nomad_job) {
    if (x->eval_id[0] && !x->deployment_id[0]) {
        bool done;
        enum outcome o = follow_eval(x, c, &done);
        if (done || o != ACK || strcmp(x->state, "running") != 0) return o;
    }
    if (!x->deployment_id[0]) {
        enum outcome o = find_deployment(x, c, nomad_job);
        if (o != ACK || strcmp(x->state, "running") != 0) return o;
    }
    return follow_deployment(x, c);
}

/* Reads the job; true with *info set if it carries this request's stamp. */
static int read_stamp(run *x, nomad_client *c, const char *nomad_job, json_object **job_out, nomad_job_info *info,
                      bool *ours) {
    json_object *job = NULL;
    *ours = false;
    int rc = nomad_job_get(c, nomad_job, &job, info);
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
static enum outcome register_or_recognise(run *x, nomad_client *c, const config_env *env, const config_job *job) {
    json_object *jobj = NULL;
    nomad_job_info info;
    bool ours;
    int rc = read_stamp(x, c, job->nomad_job, &jobj, &info, &ours);
    if (rc == NOMAD_ERR_NOT_FOUND) {
        char detail[AUDIT_DETAIL_LEN];
        snprintf(detail, sizeof(detail), "job %s does not exist in Nomad (namespace %s)", job->nomad_job,
                 env->nomad.namespace);
        return finish(x, "failed", "nomad_error", detail);
    }
    if (rc != NOMAD_OK) return fail_nomad(x, "reading the job", c);

    nomad_register_result reg = {0};
    if (ours) {
        nm_log(NM_LOG_INFO, "register found done; not repeating it", "req", x->req_ref, NULL);
        x->job_version = (int64_t)info.version;
    } else {
        const char *cur = nomad_job_task_image(jobj, job->tasks.v[0]);
        snprintf(x->from_image, sizeof(x->from_image), "%s", cur ? cur : "");
        char err[256];
        if (nomad_job_set_image(jobj, &job->tasks, x->r.to_image, err, sizeof(err)) != NOMAD_OK ||
            nomad_job_set_meta(jobj, "nomatron.request_id", x->req_ref) != NOMAD_OK ||
            nomad_job_set_meta(jobj, "nomatron.requested_by", x->r.actor) != NOMAD_OK) {
            json_object_put(jobj);
            return finish(x, "failed", "nomad_error", err);
        }
        /* The fence: only the lease holder registers. */
        if (!keepalive(x, true)) {
            json_object_put(jobj);
            return LOST;
        }
        rc = nomad_job_register(c, jobj, true, info.job_modify_index, &reg);
        if (rc == NOMAD_ERR_CONFLICT) {
            json_object_put(jobj);
            return finish(x, "failed", "conflict", "the job changed in Nomad after it was read; request again");
        }
        if (rc == NOMAD_ERR_CONNECT || rc == NOMAD_ERR_TIMEOUT || rc == NOMAD_ERR_HTTP) {
            /* The answer is lost, not necessarily the register: the stamp tells. */
            bool done = false;
            nomad_job_info again;
            if (read_stamp(x, c, job->nomad_job, NULL, &again, &done) != NOMAD_OK || !done) {
                json_object_put(jobj);
                return fail_nomad(x, "registering the job", c);
            }
            reg.eval_id[0] = '\0';
        } else if (rc != NOMAD_OK) {
            json_object_put(jobj);
            return fail_nomad(x, "registering the job", c);
        }
        nomad_job_info after;
        if (nomad_job_get(c, job->nomad_job, NULL, &after) != NOMAD_OK) {
            json_object_put(jobj);
            return fail_nomad(x, "reading the job", c);
        }
        x->job_version = (int64_t)after.version;
    }
    json_object_put(jobj);
    snprintf(x->eval_id, sizeof(x->eval_id), "%s", reg.eval_id);
    if (step(x, "running", "rolling", NULL, "deploy.registered", reg.warnings[0] ? reg.warnings : NULL) != AUDIT_OK)
        return RETRY;
    return ACK;
}

static enum outcome run_deploy(run *x) {
    worker *w = x->w;
    const config *cfg = w->cfg;
    const config_env *env = config_find_env(cfg, x->r.env);
    const config_job *job = config_find_job(cfg, x->r.job);
    if (!env || !job) return finish(x, "failed", "nomad_error", "environment or job is no longer configured");
    nomad_client *c = client_for(w, env);
    if (!c) return RETRY;

    if (strcmp(x->state, "queued") == 0) {
        if (step(x, "running", "registering", NULL, "deploy.started", NULL) != AUDIT_OK)
            return w->db_up ? ACK : RETRY;   /* state conflict: someone else has it */
    } else {
        nm_log(NM_LOG_INFO, "resuming a request whose worker stopped", "req", x->req_ref, "phase", x->phase, NULL);
    }
    if (strcmp(x->phase, "registering") == 0) {
        enum outcome o = register_or_recognise(x, c, env, job);
        if (o != ACK || strcmp(x->state, "running") != 0) return o;
    }
    return follow(x, c, job->nomad_job);
}

/* After a request of (env, job) ends, the next queued one of the same job
 * is put on the stream (it was acknowledged while it waited). */
static void wake_next(worker *w, const audit_request *r) {
    int64_t next = 0;
    if (audit_sched_head(&w->db, r->env, r->job, &next) != AUDIT_OK || next <= 0) return;
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)next);
    if (queue_work_add(&w->q, "request", id) != QUEUE_OK)
        nm_log(NM_LOG_WARN, "next request not queued; the reconciler will", "req", id, "error", w->q.errstr, NULL);
}

static enum outcome handle_request(worker *w, const char *id) {
    char *end;
    long long rid = strtoll(id, &end, 10);
    if (*end || rid <= 0) {
        nm_log(NM_LOG_WARN, "work entry with a malformed request id skipped", "id", id, NULL);
        return ACK;
    }
    run x = {.w = w, .job_version = -1};
    snprintf(x.req_ref, sizeof(x.req_ref), "D-%lld", rid);
    int rc = audit_request_get(&w->db, rid, &x.r);
    if (rc == AUDIT_ERR_NOT_FOUND) {
        nm_log(NM_LOG_WARN, "work entry for an unknown request skipped", "req", x.req_ref, NULL);
        return ACK;
    }
    if (rc != AUDIT_OK) {
        w->db_up = false;
        return RETRY;
    }
    /* Duplicate deliveries are harmless: only a queued request starts, and a
     * running one is resumed only by whoever gets its job's lease. */
    if (strcmp(x.r.state, "queued") != 0 && strcmp(x.r.state, "running") != 0) {
        nm_log(NM_LOG_INFO, "request already ended; nothing to do", "req", x.req_ref, "state", x.r.state, NULL);
        return ACK;
    }
    /* One request per (environment, job) at a time, oldest first. A younger
     * one is acknowledged and stays queued in PostgreSQL; wake_next() or the
     * reconciler puts it back when its turn comes. */
    int64_t head = 0;
    if (audit_sched_head(&w->db, x.r.env, x.r.job, &head) != AUDIT_OK) {
        w->db_up = false;
        return RETRY;
    }
    if (head != rid) {
        char h[24];
        snprintf(h, sizeof(h), "D-%lld", (long long)head);
        nm_log(NM_LOG_INFO, "request waits for the job's earlier request", "req", x.req_ref, "after", h, NULL);
        return ACK;
    }
    snprintf(x.lease_key, sizeof(x.lease_key), "nomatron:lease:job:%s:%s", x.r.env, x.r.job);
    snprintf(x.lease_value, sizeof(x.lease_value), "%lld %s", rid, w->token);
    char holder[160] = "";
    rc = queue_lease_acquire(&w->q, x.lease_key, x.lease_value, (int)w->cfg->queue_lease_ms, holder, sizeof(holder));
    if (rc == QUEUE_ERR_EMPTY) {
        nm_log(NM_LOG_INFO, "job is held by another worker", "req", x.req_ref, "holder", holder, NULL);
        return ACK;   /* a live worker has it; if it dies, its lease expires and the reconciler re-adds it */
    }
    if (rc != QUEUE_OK) return RETRY;
    x.renewed_at = nm_mono_ms();

    snprintf(x.state, sizeof(x.state), "%s", x.r.state);
    snprintf(x.phase, sizeof(x.phase), "%s", x.r.phase);
    snprintf(x.from_image, sizeof(x.from_image), "%s", x.r.from_image);
    snprintf(x.eval_id, sizeof(x.eval_id), "%s", x.r.eval_id);
    snprintf(x.deployment_id, sizeof(x.deployment_id), "%s", x.r.deployment_id);
    x.job_version = x.r.nomad_job_version;

    enum outcome o = strcmp(x.r.kind, "deploy") == 0 ? run_deploy(&x)
                                                      : finish(&x, "failed", "nomad_error", "unsupported request kind");
    if (o == LOST) return LOST;
    /* Ended, or handed back (stopping, PostgreSQL gone): either way the job is free for the next holder. */
    queue_lease_release(&w->q, x.lease_key, x.lease_value);
    if (o == ACK && strcmp(x.state, "running") != 0) wake_next(w, &x.r);
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
        char counts[128];
        describe_groups(&d, counts, sizeof(counts));
        add_str(dep, "counts", counts);
        json_object_object_add(out, "deployment", dep);
    }
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
    const char *kind = "", *job_name = "", *env_name = "", *route = "";
    if (task && json_object_is_type(task, json_type_object)) {
        if (json_object_object_get_ex(task, "kind", &v)) kind = json_object_get_string(v);
        if (json_object_object_get_ex(task, "job", &v)) job_name = json_object_get_string(v);
        if (json_object_object_get_ex(task, "env", &v)) env_name = json_object_get_string(v);
        if (json_object_object_get_ex(task, "route", &v)) route = json_object_get_string(v);
    }
    json_object *ans = json_object_new_object();
    add_str(ans, "type", "status");
    add_str(ans, "task", task_id);
    add_str(ans, "job", job_name);
    const config *cfg = w->cfg;
    const config_job *job = config_find_job(cfg, job_name);
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

static void *reconciler_main(void *arg) {
    worker_pool *pool = arg;
    queue_conn q = {0};
    audit_db db = {0};
    bool up = false;
    int64_t next = 0;
    while (!atomic_load(&pool->stop)) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (nm_mono_ms() < next) continue;
        config *cfg = config_holder_get(pool->config);
        next = nm_mono_ms() + cfg->queue_reconcile_ms;
        if (!up) {
            queue_close(&q);
            audit_close(&db);
            up = queue_connect(&q, cfg->redis, 5000) == QUEUE_OK && audit_connect(&db, cfg->postgres) == AUDIT_OK;
        }
        reconcile_pass p = {.q = &q};
        if (up) {
            static const char *const states[] = {"queued", "running"};
            for (size_t i = 0; i < 2 && up; i++)
                up = audit_sched_idle(&db, states[i], cfg->queue_lease_ms, RECONCILE_BATCH, reconcile_one, &p) ==
                         AUDIT_OK &&
                     q.rc != NULL;
        }
        if (p.requeued > 0) {
            char n[16];
            snprintf(n, sizeof(n), "%d", p.requeued);
            nm_log(NM_LOG_INFO, "reconciler put lost work back on the queue", "requests", n, NULL);
        }
        config_free(cfg);
    }
    queue_close(&q);
    audit_close(&db);
    return NULL;
}

worker_pool *worker_pool_start(config_holder *holder, int n, char *err, size_t errlen) {
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
    free(pool->w);
    free(pool);
}
