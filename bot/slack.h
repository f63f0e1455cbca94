/* The Slack adapter: Socket Mode in, the Web API out, the bot core between.
 *
 *   slash command  -> acknowledged at once (slack_socket) -> bot_core
 *   answer         -> chat.postEphemeral to the person who asked
 *   new request    -> chat.postMessage in the channel; its ts is recorded in
 *                     the audit trail (with the permalink when Slack gives it)
 *   decision       -> the request's message is edited; lock/unlock posted
 *   worker events  -> the request's message is edited in place (chat.update,
 *                     paced per channel, only the newest text kept)
 *
 * Envelopes from another team are refused; a redelivered envelope (same
 * trigger or event ID) is dropped, and PostgreSQL's idempotency key keeps a
 * request from being created twice in any case. All on the loop thread. */
#ifndef NM_SLACK_H
#define NM_SLACK_H

#include <json-c/json.h>
#include <stdbool.h>
#include <uv.h>

#include "config.h"
#include "core.h"
#include "dbpool.h"

typedef struct slack_adapter slack_adapter;

typedef struct slack_stats {
    unsigned long commands, refused_team, duplicates, posts, updates, ephemerals, api_errors;
    unsigned long answered_in_ack;   /* answers that rode in the command's ack */
} slack_stats;

/* cfg must have chat.slack; it is referenced. core and db are borrowed. */
slack_adapter *slack_adapter_new(uv_loop_t *loop, config *cfg, bot_core *core, dbpool *db, char *err,
                                 size_t errlen);
/* auth.test, then the sockets. */
void slack_adapter_start(slack_adapter *s);
/* One worker event from the bots' shared stream. */
void slack_adapter_event(slack_adapter *s, const json_object *ev);
void slack_adapter_set_config(slack_adapter *s, config *cfg);

/* Ready connections (0 = not ready). */
int slack_adapter_ready(const slack_adapter *s);
void slack_adapter_get_stats(const slack_adapter *s, slack_stats *out);

/* Shutdown, step 1: close the sockets (nothing new comes in). Commands in
 * flight still get their answers while the loop runs. */
void slack_adapter_stop_input(slack_adapter *s);
/* Web API calls sent or waiting. */
int slack_adapter_pending(const slack_adapter *s);
/* Step 2: everything else; closed(ud) once every handle is gone and s freed. */
void slack_adapter_close(slack_adapter *s, void (*closed)(void *ud), void *ud);

#endif
