/* Slack's Web API on the bot's loop: JSON POSTs (and GETs for reads) over
 * http_client, with the rules of reference A5–A7 kept in one place:
 *   - the bot token on every call, the app token only for
 *     apps.connections.open, always in the Authorization header;
 *   - HTTP 429 honoured: the method waits Retry-After, then the call is
 *     sent again (at most SLACK_API_RETRIES times);
 *   - a per-channel pace for writes (chat.postMessage, chat.update): one
 *     call per channel per SLACK_PACE_MS, so edits never exceed the posting
 *     limit; a waiting chat.update of the same message is replaced by a
 *     newer one (only the latest text matters);
 *   - ok:false becomes a clear log line (slack_error_hint) and an error code.
 * Each accepted call gets exactly one callback; a refused call none. */
#ifndef NM_SLACK_API_H
#define NM_SLACK_API_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "http_client.h"
#include "slack_proto.h"

#define SLACK_PACE_MS 1000       /* per channel, chat.postMessage / chat.update (A7: ~1 message/s) */
#define SLACK_API_RETRIES 5      /* 429s in a row before a call gives up */
#define SLACK_API_QUEUE_MAX 4096 /* calls waiting in all lanes; beyond, new calls are refused */

enum slack_api_code {
    SLACK_API_OK = 0,
    SLACK_API_ERR_SLACK,       /* ok:false; res->error says which */
    SLACK_API_ERR_HTTP,        /* transport failure or an unexpected HTTP status */
    SLACK_API_ERR_DECODE,      /* the body is not what the method returns */
    SLACK_API_ERR_RATELIMITED, /* still 429 after SLACK_API_RETRIES */
    SLACK_API_ERR_SUPERSEDED,  /* a newer chat.update of the same message replaced this one */
    SLACK_API_ERR_FULL,        /* too many calls waiting */
    SLACK_API_ERR_CLOSED,
    SLACK_API_ERR_NOMEM,
};
const char *slack_api_strerror(int code);

typedef struct slack_api slack_api;

/* res is borrowed for the call; non-NULL for OK and ERR_SLACK. */
typedef void (*slack_api_cb)(void *ud, int code, const slack_api_result *res);

/* api_url ends with "/" ("https://slack.com/api/"); strings are copied.
 * http is borrowed and must outlive the api. */
slack_api *slack_api_new(uv_loop_t *loop, http_client *http, const char *api_url, const char *bot_token,
                         const char *app_token, char *err, size_t errlen);

/* POST body (JSON, copied) to method. channel: the pace lane for chat
 * writes (NULL = not paced). update_key: for chat.update, "channel:ts" —
 * a call still waiting with the same key is superseded. cb may be NULL. */
int slack_api_post(slack_api *a, const char *method, const char *body, size_t len, const char *channel,
                   const char *update_key, slack_api_cb cb, void *ud);
/* GET method?query (query already URL-encoded, copied). */
int slack_api_get(slack_api *a, const char *method, const char *query, slack_api_cb cb, void *ud);
/* apps.connections.open with the app token. */
int slack_api_open_connection(slack_api *a, slack_api_cb cb, void *ud);

/* Calls sent or waiting. */
int slack_api_pending(const slack_api *a);

/* Every waiting call completes with SLACK_API_ERR_CLOSED; calls in flight
 * complete as http_client closes them. Frees a. */
void slack_api_close(slack_api *a);

#endif
