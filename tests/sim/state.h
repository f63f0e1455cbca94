/* nomad-sim: the simulated cluster state (jobs, evaluations, deployments)
 * and its clock-driven lifecycle (shared/reference/nomad-api.md §7).
 *
 * Pure and single-threaded: every function that can change something takes
 * `now_ms`, a monotonic millisecond clock chosen by the caller, so tests drive
 * time by hand. Nothing here reads a clock, sleeps or does I/O.
 *
 * Lifecycle of a register at time t (H = health delay, S = scheduler delay,
 * S is capped at H/2):
 *   t      new job version (if the spec changed), eval `pending`
 *   t+S    eval `complete`; a deployment `running` when the job is a service
 *          job with a group whose effective MaxParallel > 0 (else the
 *          allocations are replaced at once, without a deployment); older
 *          active deployments of the job `cancelled`
 *   then   allocations are placed MaxParallel at a time; each one follows the
 *          behaviour set for its job and version (sim_behaviour_set):
 *          healthy after A ms (default: A = (H - S) / number of batches, so
 *          an all-healthy rollout ends near t+H), unhealthy (task fails) after
 *          A ms, never placed, or flapping (restarts every A ms until the
 *          group's HealthyDeadline marks it unhealthy)
 *   done   `successful` (job version `Stable: true`) once every group has
 *          Count healthy allocations; `failed` on the first unhealthy
 *          allocation or when a group's RequireProgressBy passes; with
 *          AutoRevert the newest stable version is re-registered as a new
 *          version with a new deployment.
 * Groups with canaries (Update.Canary > 0) place their canaries first and then
 * wait for promotion (AutoPromote promotes once they are healthy). Durations
 * in jobs (ProgressDeadline, HealthyDeadline) are read on this same clock, so
 * a caller that scales its clock (--speed) scales them too. */
#ifndef NM_SIM_STATE_H
#define NM_SIM_STATE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_REGION "global"
#define SIM_LEADER "127.0.0.1:4647"
#define SIM_MAX_JOBS 1024
#define SIM_MAX_VERSIONS 6        /* job_tracked_versions default */

enum sim_code {
    SIM_OK = 0,
    SIM_ERR_BAD_REQUEST = 400,    /* errstr is the 400 body */
    SIM_ERR_NOT_FOUND = 404,
    SIM_ERR_SERVER = 500,         /* Nomad's "logical" failures are 500s */
};

typedef struct sim_state sim_state;

/* health_ms: register → deployment successful. sched_ms: register → eval
 * complete (capped at health_ms/2). wall_offset_ms: added to now_ms to stamp
 * CreateTime/SubmitTime (wall clock = now_ms + offset). seed: ID generator.
 * Returns NULL when out of memory. Free with sim_state_free(). */
sim_state *sim_state_new(int64_t health_ms, int64_t sched_ms, int64_t wall_offset_ms, uint64_t seed);
void sim_state_free(sim_state *st);

/* Loads a JSON array of jobs (as GET /v1/job/:id shows them, each with its
 * Namespace). Every namespace named there exists (plus "default"). Each
 * service job that would get deployments and is Stable gets a finished
 * `successful` deployment, like a cluster where it was deployed before.
 * Returns SIM_OK or an error with errbuf set. */
int sim_state_load(sim_state *st, const char *json, size_t len, int64_t now_ms, char *errbuf, size_t errlen);

/* The global Raft-like index (bumped on every change). */
uint64_t sim_state_index(const sim_state *st);

/* Moves every time-driven object to its state at now_ms. Returns true if
 * anything changed (parked blocking queries should be re-checked). */
bool sim_state_advance(sim_state *st, int64_t now_ms);
/* Earliest now_ms at which sim_state_advance would change something, or -1. */
int64_t sim_state_next_event(const sim_state *st);

/* ---- register (§3.2) ---- */
typedef struct sim_register_args {
    const char *path_id;          /* ID from /v1/job/:id, or NULL for /v1/jobs */
    const char *q_namespace;      /* ?namespace= or NULL */
    const char *q_region;         /* ?region= or NULL */
} sim_register_args;

/* body: the raw request body. On success *resp is the JSON response (caller
 * puts) and *index the write index for X-Nomad-Index. On failure returns the
 * HTTP status and errbuf holds Nomad's exact plain-text body. */
int sim_register(sim_state *st, const char *body, size_t len, const sim_register_args *a, int64_t now_ms,
                 json_object **resp, uint64_t *index, char *errbuf, size_t errlen);

/* ---- reads: each returns a new JSON value (caller puts) or NULL when not
 * found, and sets *index to the index a blocking query waits on (§1.5). ---- */
json_object *sim_job_get(const sim_state *st, const char *ns, const char *id, uint64_t *index);
json_object *sim_job_list(const sim_state *st, const char *ns, uint64_t *index);
/* The /versions wrapper {"Versions":[...],"Diffs":null,...}; NULL if no job. */
json_object *sim_job_versions(const sim_state *st, const char *ns, const char *id, uint64_t *index);
/* Latest deployment of the job (highest CreateIndex); NULL → answer `null`. */
json_object *sim_job_latest_deployment(const sim_state *st, const char *ns, const char *id, uint64_t *index);
/* Array (possibly empty) of the job's deployments. */
json_object *sim_job_deployments(const sim_state *st, const char *ns, const char *id, uint64_t *index);
json_object *sim_job_evaluations(const sim_state *st, const char *ns, const char *id, uint64_t *index);
/* ID-addressed reads look objects up globally (ACLs are off, §13). */
json_object *sim_deployment_get(const sim_state *st, const char *id, uint64_t *index);
json_object *sim_deployment_list(const sim_state *st, const char *ns, uint64_t *index);
json_object *sim_eval_get(const sim_state *st, const char *id, uint64_t *index);

/* ---- deployment writes (§3.10) ---- */
/* promote: all groups when groups==NULL. fail: marks it failed by the user.
 * Returns SIM_OK with *resp ({"EvalID","EvalCreateIndex","DeploymentModifyIndex",
 * "RevertedJobVersion","Index"}) or an HTTP status with errbuf set. */
int sim_deployment_promote(sim_state *st, const char *id, const char *const *groups, size_t n_groups,
                           int64_t now_ms, json_object **resp, uint64_t *index, char *errbuf, size_t errlen);
int sim_deployment_fail(sim_state *st, const char *id, int64_t now_ms, json_object **resp, uint64_t *index,
                        char *errbuf, size_t errlen);

/* Does namespace `ns` exist? */
bool sim_namespace_exists(const sim_state *st, const char *ns);

/* ---- allocations (§5): arrays of AllocListStub (possibly empty) ---- */
json_object *sim_job_allocations(const sim_state *st, const char *ns, const char *id, uint64_t *index);
json_object *sim_deployment_allocations(const sim_state *st, const char *id, uint64_t *index);
json_object *sim_eval_allocations(const sim_state *st, const char *id, uint64_t *index);
/* Full allocation (embedded Job, DeploymentID, no JobVersion); NULL if none. */
json_object *sim_alloc_get(const sim_state *st, const char *id, uint64_t *index);

/* Namespace of an ID-addressed object (for ACL checks), or NULL when there
 * is no such object. The pointer lives as long as the object. */
enum sim_kind { SIM_KIND_DEPLOYMENT, SIM_KIND_EVAL, SIM_KIND_ALLOC };
const char *sim_object_namespace(const sim_state *st, enum sim_kind kind, const char *id);

/* ---- job writes ---- */
/* plan (§3.3): body {"Job","Diff"}; never changes state. */
int sim_job_plan(sim_state *st, const char *body, size_t len, const sim_register_args *a, int64_t now_ms,
                 json_object **resp, uint64_t *index, char *errbuf, size_t errlen);
/* revert (§3.7): body {"JobID","JobVersion","EnforcePriorVersion"}. */
int sim_job_revert(sim_state *st, const char *ns, const char *path_id, const char *body, size_t len, int64_t now_ms,
                   json_object **resp, uint64_t *index, char *errbuf, size_t errlen);
/* stop / purge (§3.8). An unknown job answers SIM_OK with zero values. */
int sim_job_stop(sim_state *st, const char *ns, const char *id, bool purge, int64_t now_ms, json_object **resp,
                 uint64_t *index, char *errbuf, size_t errlen);
/* pause / resume (§3.10). */
int sim_deployment_pause(sim_state *st, const char *id, bool pause, int64_t now_ms, json_object **resp,
                         uint64_t *index, char *errbuf, size_t errlen);

/* ---- behaviours: how allocations of a job (version) fare ---- */
enum sim_mode { SIM_MODE_HEALTHY = 0, SIM_MODE_UNHEALTHY, SIM_MODE_NEVER_PLACED, SIM_MODE_FLAPPING };
#define SIM_MAX_BEHAVIOURS 256
/* "healthy" | "unhealthy" | "never_placed" | "flapping" → mode, or -1. */
int sim_mode_parse(const char *s);
const char *sim_mode_name(int mode);
/* version < 0: every version of the job; after_ms < 0: the default delay.
 * Replaces the entry with the same (ns, job, version). Applies to
 * allocations placed from now on. Returns 0, or -1 when the table is full. */
int sim_behaviour_set(sim_state *st, const char *ns, const char *job, int64_t version, int mode, int64_t after_ms);
/* One {"namespace","job","version"|null,"mode","after_ms"} object, as the
 * control endpoint and --behaviour FILE take it (an array there). */
int sim_behaviour_set_json(sim_state *st, json_object *o, char *errbuf, size_t errlen);
void sim_behaviour_clear(sim_state *st);
json_object *sim_behaviour_list(const sim_state *st);

#endif
