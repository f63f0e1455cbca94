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
    size_t placed_canaries;
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

#endif
