/* nomad/: the Nomad HTTP API client (libcurl multi + json-c) and pure
 * decoders for what Nomad answers. Knows nothing of chat.
 *
 * A nomad_client talks to one environment (address, region, namespace,
 * token) and is used by one thread at a time. Every request carries
 * ?namespace= and ?region= (also ID-addressed reads, see
 * shared/reference/nomad-api.md §1.3) and X-Nomad-Token when a token is set.
 * Functions return a nomad_code; the client keeps the detail (HTTP status and
 * Nomad's own error text) for the caller to read. */
#ifndef NM_NOMAD_H
#define NM_NOMAD_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define NOMAD_MAX_BODY (8 * 1024 * 1024)   /* response size cap */
#define NOMAD_ID_LEN 64
#define NOMAD_MAX_GROUPS 32

enum nomad_code {
    NOMAD_OK = 0,
    NOMAD_ERR_CONNECT,     /* connection refused / reset / DNS */
    NOMAD_ERR_TIMEOUT,     /* per-call timeout passed */
    NOMAD_ERR_TLS,
    NOMAD_ERR_NOT_FOUND,   /* 404 (job not found, deployment not found, ...) */
    NOMAD_ERR_FORBIDDEN,   /* 403 Permission denied */
    NOMAD_ERR_CONFLICT,    /* 500 "Enforcing job modify index ..." */
    NOMAD_ERR_HTTP,        /* any other non-2xx */
    NOMAD_ERR_DECODE,      /* body is not the JSON we expect */
    NOMAD_ERR_TOO_LARGE,   /* body over NOMAD_MAX_BODY */
    NOMAD_ERR_INVALID,     /* bad argument (e.g. task not in job) */
    NOMAD_ERR_NOMEM,
};
const char *nomad_strerror(int code);

typedef struct nomad_client nomad_client;

/* Copies what it needs from target (the token too; wiped on free). Returns
 * NULL only when out of memory. */
nomad_client *nomad_client_new(const config_nomad *target);
void nomad_client_free(nomad_client *c);
/* Last error: "HTTP 500: Enforcing job modify index 12: ..." or curl's text. Never holds the token. */
const char *nomad_client_errstr(const nomad_client *c);
long nomad_client_http_status(const nomad_client *c);

/* What nomatron needs to know about a job, decoded from GET /v1/job/:id. */
typedef struct nomad_job_info {
    char id[NOMAD_ID_LEN];
    char ns[NOMAD_ID_LEN];
    char status[16];
    uint64_t version;
    uint64_t job_modify_index;
    uint64_t modify_index;
    uint64_t create_index;
    bool stable;
    bool stop;
} nomad_job_info;

typedef struct nomad_register_result {
    char eval_id[NOMAD_ID_LEN];       /* "" for periodic / parameterized jobs */
    uint64_t job_modify_index;
    uint64_t index;
    char warnings[512];
} nomad_register_result;

typedef struct nomad_eval {
    char id[NOMAD_ID_LEN];
    char status[16];                  /* pending, blocked, complete, failed, canceled */
    char status_description[256];
    char deployment_id[NOMAD_ID_LEN]; /* "" if none (yet) */
    char blocked_eval[NOMAD_ID_LEN];
    bool failed_tg_allocs;            /* some allocations could not be placed */
    uint64_t modify_index;
} nomad_eval;

typedef struct nomad_deployment_group {
    char name[NOMAD_ID_LEN];
    bool promoted, auto_revert, auto_promote;
    int64_t desired_canaries, desired_total, placed_allocs, healthy_allocs, unhealthy_allocs;
    size_t placed_canaries;           /* len(PlacedCanaries) */
    /* Not in the deployment object: filled by nomad_deployment_count_canaries()
     * from the deployment's allocations; all zero / false until then. */
    bool canaries_counted;
    size_t healthy_canaries;          /* canaries with Healthy=true, not terminal */
    size_t unhealthy_canaries;        /* canaries with Healthy=false */
} nomad_deployment_group;

typedef struct nomad_deployment {
    char id[NOMAD_ID_LEN];
    char job_id[NOMAD_ID_LEN];
    uint64_t job_version;
    uint64_t job_create_index;
    char status[16];                  /* running, paused, failed, successful, cancelled, ... */
    char status_description[256];
    size_t n_groups;
    nomad_deployment_group groups[NOMAD_MAX_GROUPS];
    uint64_t create_index, modify_index;
    int64_t modify_time;              /* ModifyTime, ns since the epoch (0 if absent): for a successful
                                         deployment, when it became successful */
} nomad_deployment;

bool nomad_eval_terminal(const nomad_eval *e);              /* complete, failed, canceled */
bool nomad_deployment_terminal(const nomad_deployment *d);  /* successful, failed, cancelled */

/* --- calls (blocking the calling thread; never call from the bot's loop) --- */

/* GET /v1/job/:id. *job_out (may be NULL) receives the whole job; the caller
 * releases it with json_object_put(). NOMAD_ERR_NOT_FOUND on 404. */
int nomad_job_get(nomad_client *c, const char *job_id, json_object **job_out, nomad_job_info *info);

/* POST /v1/jobs with {"Job": job, "EnforceIndex": enforce, "JobModifyIndex": idx}.
 * job is borrowed. NOMAD_ERR_CONFLICT when Nomad refuses the index. */
int nomad_job_register(nomad_client *c, json_object *job, bool enforce, uint64_t job_modify_index,
                       nomad_register_result *out);

/* GET /v1/evaluation/:id. With wait_index > 0 it is a blocking query that
 * returns when the eval's index passes wait_index or wait_ms passes.
 * *index_out (may be NULL) receives X-Nomad-Index. */
int nomad_eval_get(nomad_client *c, const char *eval_id, uint64_t wait_index, int wait_ms,
                   nomad_eval *out, uint64_t *index_out);

/* GET /v1/deployment/:id, blocking like nomad_eval_get. */
int nomad_deployment_get(nomad_client *c, const char *dep_id, uint64_t wait_index, int wait_ms,
                         nomad_deployment *out, uint64_t *index_out);

/* GET /v1/job/:id/deployment. Nomad answers `null` when there is none: then
 * *found is false and NOMAD_OK is returned. */
int nomad_job_latest_deployment(nomad_client *c, const char *job_id, nomad_deployment *out, bool *found);

/* GET /v1/status/leader into out (e.g. "10.0.0.5:4647"). */
int nomad_status_leader(nomad_client *c, char *out, size_t outlen);

/* ---- retries ----
 * The sync calls repeat a request that failed with a connection error or a
 * 5xx (except a modify-index conflict) when the call is safe to repeat:
 * every GET, and plan (a dry run). Writes (register, revert, promote, fail,
 * pause) are repeated only when the connection could not be made at all
 * (CURLE_COULDNT_CONNECT / COULDNT_RESOLVE_*: nothing was sent), never after a
 * 5xx or a cut connection, because the server may have acted. Timeouts are
 * not retried: the per-call timeout is the caller's budget. Between attempts
 * the calling thread sleeps nomad_backoff_ms(). Defaults: 2 retries, base
 * 200 ms, cap 2 s. */
#define NOMAD_DEFAULT_RETRIES 2
#define NOMAD_DEFAULT_BACKOFF_BASE_MS 200
#define NOMAD_DEFAULT_BACKOFF_CAP_MS 2000
#define NOMAD_MAX_RETRIES 10

/* retries (0..NOMAD_MAX_RETRIES, clamped) after the first attempt; base/cap in ms (clamped to >= 0). */
void nomad_client_set_retry(nomad_client *c, int retries, int base_ms, int cap_ms);
/* Attempts made by the last sync call (1 = no retry). */
int nomad_client_attempts(const nomad_client *c);

/* Exponential backoff with "equal jitter": e = min(cap, base * 2^attempt);
 * the delay is e/2 + rnd % (e/2 + 1). attempt counts from 0 (the wait before
 * the first retry). Pure; rnd is any random 32-bit value. Never above cap,
 * never negative; 0 when base or cap is <= 0. */
int nomad_backoff_ms(int attempt, int base_ms, int cap_ms, uint32_t rnd);

/* ---- more calls ---- */

#define NOMAD_IMAGE_LEN 512
#define NOMAD_MAX_VERSIONS 16

typedef struct nomad_job_version {
    uint64_t version;
    bool stable;
    int64_t submit_time;              /* ns since the epoch */
    uint64_t job_modify_index;
    char image[NOMAD_IMAGE_LEN];      /* Config.image of the named task; "" if none / no task named */
} nomad_job_version;

typedef struct nomad_version_list {
    size_t n;                         /* entries in v: the newest NOMAD_MAX_VERSIONS, newest first */
    size_t n_total;                   /* versions in the answer (may be > n) */
    nomad_job_version v[NOMAD_MAX_VERSIONS];
} nomad_version_list;

/* GET /v1/job/:id/versions. task (may be NULL) names the task whose image
 * goes into each version. 404 (unknown job) is NOMAD_ERR_NOT_FOUND. */
int nomad_job_versions(nomad_client *c, const char *job_id, const char *task, nomad_version_list *out);

typedef struct nomad_plan_group {
    char name[NOMAD_ID_LEN];
    /* Annotations.DesiredTGUpdates */
    uint64_t ignore, place, migrate, stop, in_place, destructive, canary, preemptions;
    char diff_type[16];               /* Diff.TaskGroups[name].Type; "" when absent */
} nomad_plan_group;

typedef struct nomad_plan {
    uint64_t job_modify_index;        /* feed to register's EnforceIndex */
    uint64_t index;
    char diff_type[16];               /* Diff.Type: None, Added, Deleted, Edited; "" without a Diff */
    bool failed_tg_allocs;            /* some placements would fail */
    char warnings[512];
    size_t n_groups;
    nomad_plan_group groups[NOMAD_MAX_GROUPS];
} nomad_plan;

/* POST /v1/job/:id/plan {"Job": job, "Diff": true}; the job's ID is the path.
 * *plan_out (may be NULL) receives the whole plan answer (caller puts). */
int nomad_job_plan(nomad_client *c, json_object *job, nomad_plan *out, json_object **plan_out);

/* POST /v1/job/:id/revert {"JobID", "JobVersion"[, "EnforcePriorVersion"]}.
 * With enforce_prior, Nomad refuses (HTTP 500, NOMAD_ERR_HTTP) unless the
 * current version is prior_version. The answer is register-shaped. */
int nomad_job_revert(nomad_client *c, const char *job_id, uint64_t version, bool enforce_prior,
                     uint64_t prior_version, nomad_register_result *out);

/* Answer of promote / fail / pause. */
typedef struct nomad_deployment_update {
    char eval_id[NOMAD_ID_LEN];       /* "" when no eval was created (pause) */
    uint64_t eval_create_index;
    uint64_t deployment_modify_index;
    uint64_t index;
    bool reverted;                    /* RevertedJobVersion was set */
    uint64_t reverted_job_version;
} nomad_deployment_update;

/* POST /v1/deployment/promote/:id: {"DeploymentID", "All": true} when
 * n_groups is 0, else {"DeploymentID", "Groups": [...]}. */
int nomad_deployment_promote(nomad_client *c, const char *dep_id, const char *const *groups, size_t n_groups,
                             nomad_deployment_update *out);
/* POST /v1/deployment/fail/:id (no body needed; sends {"DeploymentID"}). */
int nomad_deployment_fail(nomad_client *c, const char *dep_id, nomad_deployment_update *out);
/* POST /v1/deployment/pause/:id {"DeploymentID", "Pause": pause}; pause=false resumes. */
int nomad_deployment_pause(nomad_client *c, const char *dep_id, bool pause, nomad_deployment_update *out);

#define NOMAD_MAX_TASKS 8
#define NOMAD_MSG_LEN 256

typedef struct nomad_task_summary {
    char name[NOMAD_ID_LEN];
    char state[16];                   /* pending, running, dead */
    bool failed;
    uint64_t restarts;
    char last_type[48];               /* Type of the newest event ("" with no events) */
    char last_message[NOMAD_MSG_LEN]; /* its DisplayMessage (or Message) */
    /* The newest event that says why a task failed or restarted: Driver
     * Failure (image pull), Terminated (exit / OOM), Setup Failure, Failed
     * Validation, Failed Artifact Download, Task hook failed, Alloc Unhealthy
     * (health checks), Sibling Task Failed, or any event with FailsTask. */
    char reason_type[48];             /* "" when nothing failed */
    char reason[NOMAD_MSG_LEN];       /* DisplayMessage, else the detail text (driver_error, ...) */
    bool oom_killed;                  /* Details.oom_killed == "true" on the reason event */
    int64_t exit_code;                /* of the reason event */
} nomad_task_summary;

typedef struct nomad_alloc {
    char id[NOMAD_ID_LEN];
    char task_group[NOMAD_ID_LEN];
    char client_status[16];           /* pending, running, complete, failed, lost, unknown */
    char desired_status[16];          /* run, stop, evict */
    uint64_t job_version;
    bool has_deployment_status;       /* DeploymentStatus present and not null */
    bool healthy_set;                 /* DeploymentStatus.Healthy is true or false (not null) */
    bool healthy;
    bool canary;
    uint64_t create_index, modify_index;
    size_t n_tasks;                   /* tasks kept (the first NOMAD_MAX_TASKS in the answer) */
    size_t n_tasks_total;
    nomad_task_summary tasks[NOMAD_MAX_TASKS];
} nomad_alloc;

bool nomad_alloc_terminal(const nomad_alloc *a);   /* client complete / failed / lost, or desired stop / evict */

/* GET /v1/deployment/allocations/:id into out[0..max). *n = stubs kept (the
 * newest by CreateIndex when more came), *n_total = stubs in the answer.
 * The array is the caller's (a nomad_alloc is about 4 KiB: use the heap). */
int nomad_deployment_allocations(nomad_client *c, const char *dep_id, nomad_alloc *out, size_t max, size_t *n,
                                 size_t *n_total);

/* GET /v1/job/:id/deployments[?all=true] into out[0..max), newest
 * (highest CreateIndex) first; Nomad's own order is not guaranteed. */
int nomad_job_deployments(nomad_client *c, const char *job_id, bool all, nomad_deployment *out, size_t max,
                          size_t *n, size_t *n_total);

/* Fills groups[].healthy_canaries / unhealthy_canaries / canaries_counted of d
 * from the deployment's allocations (allocs of other job versions and
 * terminal ones are skipped). */
void nomad_deployment_count_canaries(nomad_deployment *d, const nomad_alloc *allocs, size_t n);

/* Builds "<prefix><escaped id><suffix>" (e.g. "/v1/deployment/", id, NULL)
 * for nomad_async(); the ID is percent-encoded. NOMAD_ERR_INVALID when it
 * does not fit or id is empty. */
int nomad_path(char *out, size_t outlen, const char *prefix, const char *id, const char *suffix);

/* --- pure functions: bytes in, structs out (fuzzed) --- */

/* Strict JSON: the whole body must be one JSON value (no trailing bytes).
 * Returns a new object (caller puts) or NULL with err set. Body "null" gives
 * NULL with *is_null set (is_null may be NULL). */
json_object *nomad_json_parse(const char *body, size_t len, bool *is_null, char *err, size_t errlen);

int nomad_decode_job_info(const json_object *job, nomad_job_info *out, char *err, size_t errlen);
int nomad_decode_register(const char *body, size_t len, nomad_register_result *out, char *err, size_t errlen);
int nomad_decode_eval(const char *body, size_t len, nomad_eval *out, char *err, size_t errlen);
int nomad_decode_deployment(const char *body, size_t len, nomad_deployment *out, char *err, size_t errlen);
int nomad_decode_deployment_obj(const json_object *o, nomad_deployment *out, char *err, size_t errlen);
/* task may be NULL (no images). */
int nomad_decode_job_versions(const char *body, size_t len, const char *task, nomad_version_list *out, char *err,
                              size_t errlen);
int nomad_decode_plan(const char *body, size_t len, nomad_plan *out, char *err, size_t errlen);
int nomad_decode_plan_obj(const json_object *o, nomad_plan *out, char *err, size_t errlen);
int nomad_decode_deployment_update(const char *body, size_t len, nomad_deployment_update *out, char *err,
                                   size_t errlen);
/* A JSON array of allocation stubs; keeps the newest max by CreateIndex
 * (newest first). out may be NULL when max is 0 (validate / count only). */
int nomad_decode_allocations(const char *body, size_t len, nomad_alloc *out, size_t max, size_t *n,
                             size_t *n_total, char *err, size_t errlen);
/* A JSON array of deployments; keeps the newest max by CreateIndex, newest first. */
int nomad_decode_deployments(const char *body, size_t len, nomad_deployment *out, size_t max, size_t *n,
                             size_t *n_total, char *err, size_t errlen);

/* --- job patching (pure) --- */

/* Sets Config.image of every task named in `tasks` (in every group) to
 * image_ref. NOMAD_ERR_INVALID with err set if a named task is missing or
 * has no Config object. */
int nomad_job_set_image(json_object *job, const config_strv *tasks, const char *image_ref,
                        char *err, size_t errlen);
/* The image of the first task named `task`, borrowed from job; NULL if none. */
const char *nomad_job_task_image(const json_object *job, const char *task);
/* Sets Meta[key] = value, creating Meta when it is null. */
int nomad_job_set_meta(json_object *job, const char *key, const char *value);
/* --canary N: sets Update.Canary of every task group to n, creating the
 * Update block where a group has none. NOMAD_ERR_INVALID with err set if
 * the job has no task groups. */
int nomad_job_set_canary(json_object *job, int n, char *err, size_t errlen);

#endif
