/* nomad-sim: the HTTP API on top of the state model. Pure: a parsed request
 * and the time in, a response (or "park this blocking query") out. The
 * server in main.c does the I/O. */
#ifndef NM_SIM_API_H
#define NM_SIM_API_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "http.h"
#include "state.h"

#define SIM_MAX_WAIT_MS (300 * 1000)      /* MaxBlockingRPCQueryTime (§1.5) */
#define SIM_DEFAULT_WAIT_MS (300 * 1000)  /* 5 min default */

enum sim_fault {
    SIM_FAULT_NONE = 0,
    SIM_FAULT_RESET,      /* close the connection with a TCP reset, no answer */
    SIM_FAULT_TRUNCATE,   /* send the head and half the body, then close */
};

typedef struct sim_response {
    int status;
    int fault;                  /* enum sim_fault: how the server must misbehave */
    int64_t delay_ms;           /* added latency before the answer is sent */
    const char *content_type;   /* static; NULL for an empty body */
    bool has_index;             /* send X-Nomad-Index / KnownLeader / LastContact */
    uint64_t index;
    nm_buf body;                /* owned; sim_response_free() */
} sim_response;

void sim_response_init(sim_response *r);
void sim_response_free(sim_response *r);

enum sim_api_result {
    SIM_API_DONE = 0,   /* out is filled: send it */
    SIM_API_PARK = 1,   /* blocking query not satisfied yet: park until the
                           state changes or *deadline_ms, then call again */
};

/* Handles one request at now_ms. With force set (the wait ran out) a
 * blocking query answers with what it has. For SIM_API_PARK, *deadline_ms
 * is when to give up waiting (computed on the first call from ?wait=; pass
 * the same request again later — the deadline is recomputed identically
 * from `parked_at_ms`, the time it was first handled). */
int sim_api_handle(sim_state *st, const sim_http_req *req, int64_t now_ms, int64_t parked_at_ms, bool force,
                   sim_response *out, int64_t *deadline_ms);

/* ---- test control: ACL tokens, faults, request log (the /_sim/ API) ---- */

#define SIM_MAX_TOKENS 256
#define SIM_LOG_CAP 4096            /* request log ring (oldest dropped) */
#define SIM_LOG_TARGET_MAX 512

typedef struct sim_acl_token {
    char *secret, *accessor, *name, *type;   /* owned */
    json_object *namespaces;                 /* owned: {"ns": ["cap", ...]} */
    json_object *policies;                   /* owned or NULL */
} sim_acl_token;

typedef struct sim_faults {
    double error_ratio;     /* share of /v1/ requests answered 500 `No cluster leader` */
    double reset_ratio;     /* share of connections reset instead of answered */
    double truncate_ratio;  /* share of answers cut off halfway through the body */
    int64_t latency_ms;     /* added to every /v1/ answer */
    bool hang_blocking;     /* blocking queries never answer */
} sim_faults;

typedef struct sim_log_entry {
    uint64_t seq;
    int64_t at_ms;
    char method[16];
    char target[SIM_LOG_TARGET_MAX];
    int status;             /* 0 when the connection was reset */
    char fault[12];
} sim_log_entry;

typedef struct sim_ctl {
    bool acl;               /* tokens loaded: every /v1/ request needs one */
    sim_acl_token *tokens;
    size_t n_tokens;
    sim_faults faults;
    uint64_t rng;
    sim_log_entry *log;     /* ring of SIM_LOG_CAP */
    size_t log_len, log_head;
    uint64_t log_seq;
    double speed;           /* reported by GET /_sim/status */
} sim_ctl;

/* Returns 0 or -1 when out of memory. Free with sim_ctl_free(). */
int sim_ctl_init(sim_ctl *ctl, uint64_t seed);
void sim_ctl_free(sim_ctl *ctl);
/* Tokens file: [{"SecretID","AccessorID","Name","Type":"client|management",
 * "Namespaces":{"ns":["read-job",...]},"Policies":[...]}]. Turns ACLs on. */
int sim_ctl_load_acl(sim_ctl *ctl, const char *json, size_t len, char *errbuf, size_t errlen);
/* {"error_ratio","latency_ms","reset_ratio","truncate_ratio","hang_blocking"};
 * absent keys keep their value. */
int sim_ctl_set_faults(sim_ctl *ctl, json_object *o, char *errbuf, size_t errlen);
/* Records one request (the server calls it once the answer is decided). */
void sim_ctl_log(sim_ctl *ctl, int64_t at_ms, const char *method, const char *target, int status, const char *fault);

/* sim_api_handle with test control: ACL checks, fault injection and the
 * /_sim/ endpoints. ctl may be NULL (no ACL, no faults, no /_sim/). */
int sim_api_handle_ctl(sim_state *st, sim_ctl *ctl, const sim_http_req *req, int64_t now_ms, int64_t parked_at_ms,
                       bool force, sim_response *out, int64_t *deadline_ms);

/* Go's time.ParseDuration, in milliseconds (rounded down; negative rejected).
 * Returns 0 or -1 when the text is not a duration. Exposed for tests. */
int sim_parse_duration_ms(const char *s, int64_t *ms);

#endif
