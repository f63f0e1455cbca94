/* See watch.h. */
#include "watch.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "clock.h"
#include "log.h"
#include "nomad_async.h"

#define WATCH_TICK_MS 200           /* loop granularity for timers and keepalives */
#define WATCH_WAIT_MAX_MS 30000     /* blocking-query wait (shorter when the lease is short) */
#define WATCH_RETRIES 6             /* transport errors in a row before a request is failed */
#define WATCH_FIND_TRIES 10         /* looks for a deployment that may not exist yet, a second apart */
#define WATCH_DEADLINE_MS (6LL * 3600 * 1000)   /* a stuck-loop guard; Nomad's own deadlines decide first */

enum stage {
    ST_EVAL,            /* following the register's evaluation */
    ST_FIND,            /* the evaluation is unknown: find the version's deployment */
    ST_DEPLOY,          /* following the deployment */
    ST_INSPECT,         /* the deployment failed: read its allocations for the why */
    ST_REVERT_FIND,     /* Nomad auto-reverted: find the revert's deployment */
    ST_REVERT_DEPLOY,   /* following the revert's deployment */
};

typedef struct watch {
    run *x;
    nomad_client *c;
    enum stage stage;
    uint64_t index;              /* blocking-query index of the object followed */
    uint64_t call;               /* request in flight, 0 = none */
    int errors;                  /* transport errors in a row */
    int tries;                   /* ST_FIND / ST_REVERT_FIND attempts */
    int64_t next_at;             /* monotonic ms before which no call starts (backoff, pacing) */
    int64_t held_since;          /* when awaiting_promotion / paused began; 0 = not held */
    int64_t deadline;
    char counts[512];            /* last published progress */
    char failure[AUDIT_DETAIL_LEN]; /* why the deployment failed, before the revert is followed */
    char failed_id[NOMAD_ID_LEN];
    long revert_to;              /* job version Nomad reverts to, -1 = none */
    bool done;
    struct watch *next;
} watch;

struct watcher {
    config_holder *holder;
    atomic_bool *stop;
    pthread_t tid;
    nomad_loop *loop;
    audit_db db;
    queue_conn q;
    bool db_up, q_up;

    pthread_mutex_t mu;          /* guards inbox and count */
    run *inbox[256];             /* handed over, not yet adopted */
    size_t n_inbox;
    size_t count;

    watch *watches;
};

/* ---- plumbing ---- */

static int wait_ms(const run *x) {
    int64_t third = x->lease_ms / 3;
    return third < WATCH_WAIT_MAX_MS ? (int)third : WATCH_WAIT_MAX_MS;
}

/* The wait before retry number `attempt`: 500 ms doubling to 15 s, with jitter. */
static int64_t backoff_ms(int attempt) {
    uint32_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r)) r = (uint32_t)nm_mono_ms();
    return nomad_backoff_ms(attempt, 500, 15000, r);
}

static void on_answer(void *ud, const nomad_response *r);
static void conclude(watch *wa, const char *state, const char *reason, const char *detail);

static void start_call(watcher *wt, watch *wa) {
    char path[400];
    uint64_t index = 0;
    int rc = NOMAD_OK;
    switch (wa->stage) {
    case ST_EVAL:
        rc = nomad_path(path, sizeof(path), "/v1/evaluation/", wa->x->eval_id, NULL);
        index = wa->index ? wa->index : 1;
        break;
    case ST_FIND:
    case ST_REVERT_FIND:
        rc = nomad_path(path, sizeof(path), "/v1/job/", wa->x->job->nomad_job, "/deployment");
        break;
    case ST_DEPLOY:
    case ST_REVERT_DEPLOY:
        rc = nomad_path(path, sizeof(path), "/v1/deployment/", wa->x->deployment_id, NULL);
        index = wa->index ? wa->index : 1;
        break;
    case ST_INSPECT:
        rc = nomad_path(path, sizeof(path), "/v1/deployment/allocations/", wa->failed_id, NULL);
        break;
    }
    if (rc != NOMAD_OK) {
        conclude(wa, "failed", "nomad_error", "an ID that does not fit a Nomad path");
        return;
    }
    wa->call = nomad_async(wt->loop, wa->c, "GET", path, index, wait_ms(wa->x), NULL, on_answer, wa);
    if (!wa->call) {
        wa->errors++;
        wa->next_at = nm_mono_ms() + backoff_ms(wa->errors);
    }
}

/* Ends the watch with a terminal state. */
static void conclude(watch *wa, const char *state, const char *reason, const char *detail) {
    run *x = wa->x;
    enum outcome o = run_finish(x, state, reason, detail);
    if (o == ACK) {
        run_ack(x);
        run_release(x);
        run_wake_next(x);
    } else {
        run_release(x);   /* PostgreSQL is gone: the entry stays pending and is resumed later */
    }
    wa->done = true;
}

/* Lets go without a verdict (PostgreSQL lost, or stopping): another worker resumes. */
static void let_go(watch *wa) {
    run_release(wa->x);
    wa->done = true;
}

static void transport_error(watch *wa, const nomad_response *r, const char *what) {
    if (r->code == NOMAD_ERR_NOT_FOUND || r->code == NOMAD_ERR_FORBIDDEN || ++wa->errors > WATCH_RETRIES) {
        char detail[AUDIT_DETAIL_LEN];
        snprintf(detail, sizeof(detail), "%s: %s", what, r->errstr ? r->errstr : nomad_strerror(r->code));
        conclude(wa, "failed", "nomad_error", detail);
        return;
    }
    wa->next_at = nm_mono_ms() + backoff_ms(wa->errors);
}

/* ---- stages ---- */

/* The deployment's ID is recorded as soon as it is known: people act on it
 * (canary promote, pause) and a resumed watch starts from it. */
static bool record_deployment(watch *wa) {
    run *x = wa->x;
    char action[48], detail[96];
    snprintf(action, sizeof(action), "%s.deployment", x->r.kind);
    snprintf(detail, sizeof(detail), "Nomad deployment %s", x->deployment_id);
    if (run_step(x, "running", x->phase, NULL, action, detail) != AUDIT_OK) {
        let_go(wa);
        return false;
    }
    return true;
}

static void eval_answer(watch *wa, const nomad_response *r) {
    nomad_eval ev;
    char err[160];
    if (nomad_decode_eval(r->body, r->body_len, &ev, err, sizeof(err)) != NOMAD_OK) {
        nomad_response bad = *r;
        bad.code = NOMAD_ERR_DECODE;
        bad.errstr = err;
        transport_error(wa, &bad, "reading the evaluation");
        return;
    }
    wa->index = r->index > wa->index ? r->index : wa->index;
    if (!nomad_eval_terminal(&ev)) return;   /* ask again from the new index */
    if (strcmp(ev.status, "complete") != 0) {
        char detail[AUDIT_DETAIL_LEN];
        snprintf(detail, sizeof(detail), "evaluation %s: %s", ev.status, ev.status_description);
        conclude(wa, "failed", "nomad_error", detail);
        return;
    }
    if (ev.failed_tg_allocs) {
        char detail[320];
        snprintf(detail, sizeof(detail), "some allocations could not be placed%s%s; Nomad keeps trying",
                 ev.blocked_eval[0] ? " (blocked evaluation " : "", ev.blocked_eval[0] ? ev.blocked_eval : "");
        if (ev.blocked_eval[0]) strncat(detail, ")", sizeof(detail) - strlen(detail) - 1);
        run_publish(wa->x, run_event(wa->x, wa->x->state, wa->x->phase, NULL, detail));
    }
    wa->index = 0;
    if (ev.deployment_id[0]) {
        snprintf(wa->x->deployment_id, sizeof(wa->x->deployment_id), "%s", ev.deployment_id);
        if (!record_deployment(wa)) return;
        wa->stage = ST_DEPLOY;
    } else {
        wa->stage = ST_FIND;
    }
}

/* ST_FIND and ST_REVERT_FIND: GET /v1/job/:id/deployment. */
static void find_answer(watch *wa, const nomad_response *r) {
    run *x = wa->x;
    bool is_null = false;
    char err[160];
    nomad_deployment d;
    json_object *o = nomad_json_parse(r->body, r->body_len, &is_null, err, sizeof(err));
    bool found = o && nomad_decode_deployment_obj(o, &d, err, sizeof(err)) == NOMAD_OK;
    json_object_put(o);
    if (!found && !is_null) {
        nomad_response bad = *r;
        bad.code = NOMAD_ERR_DECODE;
        bad.errstr = err;
        transport_error(wa, &bad, "reading the job's deployment");
        return;
    }
    bool want = found && (wa->stage == ST_FIND ? (int64_t)d.job_version == x->job_version
                                               : strcmp(d.id, wa->failed_id) != 0);
    if (want) {
        snprintf(x->deployment_id, sizeof(x->deployment_id), "%s", d.id);
        wa->index = 0;
        if (wa->stage == ST_FIND) {
            if (!record_deployment(wa)) return;
            wa->stage = ST_DEPLOY;
        } else {
            x->job_version = (int64_t)d.job_version;
            wa->stage = ST_REVERT_DEPLOY;
            char detail[AUDIT_DETAIL_LEN];
            snprintf(detail, sizeof(detail), "%s; Nomad is reverting to job version %ld", wa->failure, wa->revert_to);
            run_publish(x, run_event(x, "running", x->phase, NULL, detail));
        }
        return;
    }
    if (++wa->tries >= WATCH_FIND_TRIES) {
        if (wa->stage == ST_FIND) {
            conclude(wa, "succeeded", "", "registered; Nomad started no deployment for this version");
        } else {
            char detail[AUDIT_DETAIL_LEN];
            snprintf(detail, sizeof(detail), "%s; reverting to job version %ld, whose deployment was not seen",
                     wa->failure, wa->revert_to);
            conclude(wa, "failed", "auto_reverted", detail);
        }
        return;
    }
    wa->next_at = nm_mono_ms() + 1000;
}

static void deploy_answer(watch *wa, const nomad_response *r) {
    run *x = wa->x;
    nomad_deployment d;
    char err[160];
    if (nomad_decode_deployment(r->body, r->body_len, &d, err, sizeof(err)) != NOMAD_OK) {
        nomad_response bad = *r;
        bad.code = NOMAD_ERR_DECODE;
        bad.errstr = err;
        transport_error(wa, &bad, "reading the deployment");
        return;
    }
    wa->index = r->index > wa->index ? r->index : wa->index;
    char counts[512];
    run_describe_groups(&d, counts, sizeof(counts));
    run_set_progress(x, &d);
    bool revert = wa->stage == ST_REVERT_DEPLOY;

    if (strcmp(d.status, "successful") == 0) {
        if (!revert) {
            conclude(wa, "succeeded", "", counts);
        } else {
            char detail[AUDIT_DETAIL_LEN];
            snprintf(detail, sizeof(detail), "%s; reverted to job version %ld, which is healthy (%s)", wa->failure,
                     wa->revert_to, counts);
            conclude(wa, "failed", "auto_reverted", detail);
        }
        return;
    }
    if (strcmp(d.status, "cancelled") == 0) {
        char detail[AUDIT_DETAIL_LEN];
        snprintf(detail, sizeof(detail), "%s%s%s", revert ? wa->failure : "", revert ? "; the revert: " : "",
                 d.status_description);
        conclude(wa, "failed", revert ? "auto_reverted" : "superseded", detail);
        return;
    }
    if (strcmp(d.status, "failed") == 0) {
        if (revert) {
            char detail[AUDIT_DETAIL_LEN];
            snprintf(detail, sizeof(detail), "%s; the revert to job version %ld failed too: %s (%s)", wa->failure,
                     wa->revert_to, d.status_description, counts);
            conclude(wa, "failed", "auto_reverted", detail);
            return;
        }
        /* Why: the failing allocations' last task events, then the revert if Nomad made one. */
        snprintf(wa->failed_id, sizeof(wa->failed_id), "%s", d.id);
        snprintf(wa->failure, sizeof(wa->failure), "%s (%s)", d.status_description, counts);
        const char *rb = strstr(d.status_description, "rolling back to job version ");
        wa->revert_to = rb ? strtol(rb + strlen("rolling back to job version "), NULL, 10) : -1;
        wa->stage = ST_INSPECT;
        return;
    }

    /* Still going: a phase change is committed, progress is only published. */
    const char *phase = strcmp(d.status, "paused") == 0 ? "paused"
                        : run_awaiting_promotion(&d)   ? "awaiting_promotion"
                                                       : "rolling";
    int64_t now = nm_mono_ms();
    if (strcmp(phase, x->phase) != 0) {
        char action[48];
        snprintf(action, sizeof(action), "%s.%s", x->r.kind, phase);
        if (run_step(x, "running", phase, NULL, action, counts) != AUDIT_OK) {
            let_go(wa);
            return;
        }
        wa->held_since = strcmp(phase, "rolling") == 0 ? 0 : now;
    } else if (strcmp(counts, wa->counts) != 0) {
        run_publish(x, run_event(x, "running", phase, NULL, counts));
    }
    snprintf(wa->counts, sizeof(wa->counts), "%s", counts);
}

/* Deployment failed: its allocations say why (image pull, OOM, health check). */
static void inspect_answer(watch *wa, const nomad_response *r) {
    char why[600] = "";
    if (r->code == NOMAD_OK) run_alloc_failures(r->body, r->body_len, why, sizeof(why));
    if (why[0]) {
        size_t n = strlen(wa->failure);
        snprintf(wa->failure + n, sizeof(wa->failure) - n, "; why: %s", why);
    }
    if (wa->revert_to >= 0) {
        wa->stage = ST_REVERT_FIND;
        wa->tries = 0;
        wa->next_at = nm_mono_ms() + 500;   /* the revert is registered in the same step; give it a moment */
        return;
    }
    const char *reason = strstr(wa->failure, "progress deadline") ? "deadline" : "unhealthy";
    conclude(wa, "failed", reason, wa->failure);
}

static void on_answer(void *ud, const nomad_response *r) {
    watch *wa = ud;
    wa->call = 0;
    if (wa->done) return;
    if (wa->stage == ST_INSPECT) {
        inspect_answer(wa, r);   /* best effort: a failed read still ends the request */
        return;
    }
    if (r->code != NOMAD_OK) {
        static const char *const what[] = {"reading the evaluation", "reading the job's deployment",
                                           "reading the deployment", "", "reading the job's deployment",
                                           "reading the revert's deployment"};
        transport_error(wa, r, what[wa->stage]);
        return;
    }
    wa->errors = 0;
    switch (wa->stage) {
    case ST_EVAL: eval_answer(wa, r); break;
    case ST_FIND:
    case ST_REVERT_FIND: find_answer(wa, r); break;
    case ST_DEPLOY:
    case ST_REVERT_DEPLOY: deploy_answer(wa, r); break;
    case ST_INSPECT: break;
    }
}

/* ---- the thread ---- */

static void adopt(watcher *wt, run *x) {
    watch *wa = calloc(1, sizeof(*wa));
    if (wa) wa->c = nomad_client_new(&x->env->nomad);
    if (!wa || !wa->c) {
        nm_log(NM_LOG_ERROR, "out of memory: request handed back", "req", x->req_ref, NULL);
        run_release(x);
        if (wa) free(wa);
        run_free(x);
        return;
    }
    x->db = &wt->db;
    x->q = &wt->q;
    x->db_up = &wt->db_up;
    wa->x = x;
    wa->revert_to = -1;
    wa->deadline = nm_mono_ms() + WATCH_DEADLINE_MS;
    wa->held_since = strcmp(x->phase, "rolling") == 0 || !x->phase[0] ? 0 : nm_mono_ms();
    wa->stage = x->deployment_id[0] ? ST_DEPLOY : x->eval_id[0] ? ST_EVAL : ST_FIND;
    wa->next = wt->watches;
    wt->watches = wa;
}

static void drop(watcher *wt, watch *wa) {
    if (wa->call) nomad_async_cancel(wt->loop, wa->call);
    nomad_client_free(wa->c);
    run_free(wa->x);
    free(wa);
}

static bool connect_all(watcher *wt) {
    if (wt->q_up && wt->db_up) return true;
    config *cfg = config_holder_get(wt->holder);
    if (!wt->q_up) {
        queue_close(&wt->q);
        wt->q_up = queue_connect(&wt->q, cfg->redis, 5000) == QUEUE_OK;
    }
    if (!wt->db_up) {
        audit_close(&wt->db);
        wt->db_up = audit_connect(&wt->db, cfg->postgres) == AUDIT_OK;
    }
    config_free(cfg);
    return wt->q_up && wt->db_up;
}

static void *watcher_main(void *arg) {
    watcher *wt = arg;
    int64_t next_connect = 0;
    while (!atomic_load(wt->stop)) {
        pthread_mutex_lock(&wt->mu);
        size_t n = wt->n_inbox;
        run *in[256];
        memcpy(in, wt->inbox, n * sizeof(run *));
        wt->n_inbox = 0;
        pthread_mutex_unlock(&wt->mu);
        for (size_t i = 0; i < n; i++) adopt(wt, in[i]);

        int64_t now = nm_mono_ms();
        if ((!wt->q_up || !wt->db_up) && now >= next_connect && !connect_all(wt)) next_connect = now + 1000;
        /* Without PostgreSQL nothing may be recorded, so nothing is followed: hand it all back. */
        if (!wt->db_up)
            for (watch *wa = wt->watches; wa; wa = wa->next)
                if (!wa->done) let_go(wa);
        for (watch *wa = wt->watches; wa; wa = wa->next) {
            if (wa->done) continue;
            if (!run_keepalive(wa->x, false)) {
                wa->done = true;   /* another worker owns it now */
                continue;
            }
            if (!wt->q_up || !wt->db_up) continue;
            if (now > wa->deadline) {
                conclude(wa, "failed", "timeout", "the watch ran past its limit");
                continue;
            }
            if (wa->held_since && now - wa->held_since > wa->x->cfg->queue_hold_ms) {
                char detail[160], d[32];
                config_format_duration(wa->x->cfg->queue_hold_ms, d, sizeof(d));
                snprintf(detail, sizeof(detail), "%s for longer than %s (queue.hold_limit)",
                         strcmp(wa->x->phase, "paused") == 0 ? "paused" : "waited for canary promotion", d);
                conclude(wa, "failed", "timeout", detail);
                continue;
            }
            if (!wa->call && !wa->done && now >= wa->next_at) start_call(wt, wa);
        }
        /* Sweep the finished ones. */
        for (watch **p = &wt->watches; *p;) {
            if ((*p)->done) {
                watch *dead = *p;
                *p = dead->next;
                drop(wt, dead);
                pthread_mutex_lock(&wt->mu);
                wt->count--;
                pthread_mutex_unlock(&wt->mu);
            } else {
                p = &(*p)->next;
            }
        }
        if (nomad_loop_run(wt->loop, WATCH_TICK_MS) < 0) nm_log(NM_LOG_ERROR, "watch loop error", NULL);
        if (!wt->q_up || wt->q.rc == NULL) wt->q_up = false;
    }
    for (watch *wa = wt->watches; wa;) {
        watch *next = wa->next;
        if (!wa->done) run_release(wa->x);   /* entries stay pending: another worker resumes */
        drop(wt, wa);
        wa = next;
    }
    wt->watches = NULL;
    queue_close(&wt->q);
    audit_close(&wt->db);
    return NULL;
}

watcher *watcher_start(config_holder *holder, atomic_bool *stop) {
    watcher *wt = calloc(1, sizeof(*wt));
    if (!wt) return NULL;
    wt->holder = holder;
    wt->stop = stop;
    wt->loop = nomad_loop_new();
    pthread_mutex_init(&wt->mu, NULL);
    if (!wt->loop || pthread_create(&wt->tid, NULL, watcher_main, wt) != 0) {
        nomad_loop_free(wt->loop);
        pthread_mutex_destroy(&wt->mu);
        free(wt);
        return NULL;
    }
    return wt;
}

void watcher_hand(watcher *wt, run *x) {
    for (;;) {
        pthread_mutex_lock(&wt->mu);
        if (wt->n_inbox < sizeof(wt->inbox) / sizeof(wt->inbox[0])) {
            wt->inbox[wt->n_inbox++] = x;
            wt->count++;
            pthread_mutex_unlock(&wt->mu);
            nomad_loop_wakeup(wt->loop);
            return;
        }
        pthread_mutex_unlock(&wt->mu);
        nomad_loop_wakeup(wt->loop);   /* full: the watcher drains it within a tick */
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

size_t watcher_count(watcher *wt) {
    pthread_mutex_lock(&wt->mu);
    size_t n = wt->count;
    pthread_mutex_unlock(&wt->mu);
    return n;
}

void watcher_stop(watcher *wt) {
    if (!wt) return;
    nomad_loop_wakeup(wt->loop);
    pthread_join(wt->tid, NULL);
    /* Runs handed over after the thread's last look at the inbox: their leases
     * expire by themselves and their entries stay pending. */
    for (size_t i = 0; i < wt->n_inbox; i++) run_free(wt->inbox[i]);
    nomad_loop_free(wt->loop);
    pthread_mutex_destroy(&wt->mu);
    free(wt);
}
