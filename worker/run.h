/* A request in execution: what a worker thread or the watcher needs to
 * record its steps (PostgreSQL), report them (Redis events) and keep its
 * claim on the work (Redis leases). Internal to worker/. */
#ifndef NM_WORKER_RUN_H
#define NM_WORKER_RUN_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "audit.h"
#include "config.h"
#include "nomad.h"
#include "queue.h"

#define WORKER_ACTOR "nomatron:worker"

/* What becomes of a work entry: acknowledged; left pending for a later
 * delivery; dropped because another worker owns the request now (our lease
 * was taken over); or handed to the watcher, which acknowledges it later. */
enum outcome { ACK, RETRY, LOST, HANDED };

typedef struct run {
    /* where it records and reports: the executing thread's connections */
    audit_db *db;
    queue_conn *q;
    bool *db_up;                        /* cleared when PostgreSQL is lost */

    config *cfg;                        /* the snapshot it runs with (a reference, released by run_free) */
    const config_env *env;              /* borrowed from cfg */
    const config_job *job;
    audit_request r;                    /* the request as read when the work arrived */
    char req_ref[32];                   /* "D-12" */

    /* claims */
    char entry_id[48];                  /* the work stream entry, acknowledged at the end */
    char consumer[160];                 /* the consumer that holds the entry */
    char lease_key[200];                /* nomatron:lease:job:<env>:<job> */
    char lease_value[160];              /* "<request id> <worker token>" */
    int64_t lease_ms;
    int64_t renewed_at;                 /* monotonic ms of the last claim + lease renewal */

    /* progress, as last committed */
    char state[AUDIT_STATE_LEN];
    char phase[AUDIT_STATE_LEN];
    char from_image[AUDIT_IMAGE_LEN];
    char eval_id[NOMAD_ID_LEN];
    char deployment_id[NOMAD_ID_LEN];
    int64_t job_version;

    /* the deployment's counts as last read, summed over its groups; sent
     * with every event so chats can draw progress without parsing text */
    bool has_progress;
    struct run_progress {
        int64_t healthy, desired, placed, unhealthy;
        int64_t canaries_desired, canaries_placed, canaries_healthy;
        bool promoted;   /* every group with canaries is promoted */
    } progress;
} run;

/* A heap run; run_free releases its snapshot reference. */
run *run_new(void);
void run_free(run *x);

/* Commits a transition with its audit event, logs it and publishes it.
 * Returns an audit code (AUDIT_ERR_STATE: someone else moved the request). */
int run_step(run *x, const char *to_state, const char *phase, const char *reason, const char *action,
             const char *detail);
/* Ends the request (a terminal state). ACK when recorded, RETRY when
 * PostgreSQL could not take it (the entry stays pending). */
enum outcome run_finish(run *x, const char *to_state, const char *reason, const char *detail);
/* Publishes an event that is not a state change (progress counts). Takes ev. */
void run_publish(run *x, json_object *ev);
/* Publishes ev (taken) on the event stream of route. */
void run_publish_to(queue_conn *q, const char *route, json_object *ev);
/* {type: request, req, state, phase, reason, kind, job, env, version, detail, job_version}; caller owns it. */
json_object *run_event(const run *x, const char *state, const char *phase, const char *reason, const char *detail);

/* Renews the work claim and the job lease every lease/3 (always when
 * force). False when another worker has taken either: stop touching the
 * request then. A Redis outage is not a loss. */
bool run_keepalive(run *x, bool force);
/* Lets go of the job lease (compare-and-delete). */
void run_release(run *x);
/* After a request ends, puts its job's next queued request on the stream. */
void run_wake_next(run *x);
/* Acknowledges the work entry. */
void run_ack(run *x);

/* "3/5 healthy, 4 placed, 0 unhealthy" (+ canaries when there are any). */
void run_describe_groups(const nomad_deployment *d, char *out, size_t outlen);
/* x->progress from d (the sums over its groups); has_progress set. */
void run_set_progress(run *x, const nomad_deployment *d);
/* Canaries placed but not promoted in some group. */
bool run_awaiting_promotion(const nomad_deployment *d);

/* From a deployment's allocations (GET /v1/deployment/allocations/:id), why
 * the failing ones failed: their tasks' last telling events, e.g.
 * "alloc 5b2e1c9a web: Driver Failure: image pull failed". Pure; bounded;
 * "" when nothing says why. Returns 0, or -1 if the body is not an array. */
int run_alloc_failures(const char *body, size_t len, char *out, size_t outlen);

#endif
