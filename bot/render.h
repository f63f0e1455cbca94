/* Rendering for people: internal errors and worker events become text in
 * exactly one place per platform. The console is the first platform; Slack
 * and Mattermost renderers join it here. */
#ifndef NM_RENDER_H
#define NM_RENDER_H

#include <json-c/json.h>
#include <stdint.h>

#include "audit.h"
#include "buf.h"
#include "cmd.h"
#include "config.h"
#include "governance.h"

/* "error: <message> [<tag>]\nusage: <usage>\n" */
void render_cmd_error(const cmd_error *err, nm_buf *out);

/* One worker event (see docs/DESIGN.md "Events") as console lines. Unknown
 * or malformed events render as nothing and return -1. */
int render_event_console(const json_object *ev, nm_buf *out);

/* "D-12 queued: deploy web v2 to staging" */
void render_request_line(int64_t id, const char *state, const char *kind, const char *job, const char *version,
                         const char *env, nm_buf *out);

/* Discovery answers (SPEC §5), from the snapshot alone. */
void render_envs(const config *cfg, nm_buf *out);
void render_jobs(const config *cfg, nm_buf *out);
/* Identity, person, groups, and what the identity may do in each environment from `channel`. */
void render_whoami(const config *cfg, const char *identity, const char *channel, nm_buf *out);

/* history: one request per line. */
void render_history_line(const audit_request *r, nm_buf *out);
/* audit: one event of a request's trail per line (details folded onto it). */
void render_trail_event(const audit_row *row, nm_buf *out);

/* The answer to approve / reject / cancel ID and lock / unlock ENV when governance said yes. */
void render_governance(enum cmd_kind kind, int64_t id, const char *env, const gov_verdict *v, bool queued,
                       nm_buf *out);

#endif
