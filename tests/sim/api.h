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

typedef struct sim_response {
    int status;
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

/* Go's time.ParseDuration, in milliseconds (rounded down; negative rejected).
 * Returns 0 or -1 when the text is not a duration. Exposed for tests. */
int sim_parse_duration_ms(const char *s, int64_t *ms);

#endif
