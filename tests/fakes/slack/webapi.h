/* slack-fake: the Web API (reference A5, A6, A7, A10, and A2.1 for
 * apps.connections.open). Pure: a decoded request and the time in, an HTTP
 * status and a JSON body out; every call is recorded in the state's call
 * log. One method table drives dispatch, token checks and argument styles. */
#ifndef SF_WEBAPI_H
#define SF_WEBAPI_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "state.h"

#define SF_MAX_BODY (1024 * 1024) /* any request body over this is answered 413 */

typedef struct sf_request {
    const char *verb;          /* "GET" or "POST" (others: 405) */
    const char *method;        /* Web API method name, the part after /api/ */
    const char *authorization; /* Authorization header value or NULL; borrowed, never recorded */
    const char *content_type;  /* Content-Type header or NULL */
    json_object *query;        /* decoded query arguments (string values); borrowed, may be NULL */
    const char *body;          /* raw body (may be NULL when body_len is 0) */
    size_t body_len;
} sf_request;

typedef struct sf_response {
    int status;                /* 200, 405, 413, 429 */
    int retry_after;           /* seconds; > 0 only with 429 */
    char *body;                /* owned JSON text; free() */
    size_t body_len;
} sf_response;

/* Answers one Web API call at wall_us (wall clock, µs) and records it. */
void sf_webapi_handle(sf_state *st, const sf_request *rq, int64_t wall_us, sf_response *out);

/* Records a call that never reached a method (e.g. a body over the ceiling)
 * and fills out with {"ok":false,"error":error} and that status. */
void sf_webapi_reject(sf_state *st, const char *verb, const char *method, int status, const char *error,
                      int64_t wall_us, sf_response *out);

/* A POST to a response_url the fake handed out (A3.4), path
 * "/commands/..." or "/actions/...". Recorded as method "response_url" with
 * args {"url": path, "body": the JSON (or text) sent}. The first
 * SF_RESPONSE_URL_USES posts to a URL get 200 {"ok":true}; later ones 404
 * {"ok":false,"error":"used_url"} (what Slack answers is unverified, A3.4). */
void sf_webapi_response_url(sf_state *st, const char *path, const char *content_type, const char *body,
                            size_t body_len, int64_t wall_us, sf_response *out);

/* Decodes an application/x-www-form-urlencoded string into obj (string
 * values; '+' is a space; a repeated key keeps the last value). Returns 0,
 * or -1 on a malformed %-escape or an embedded NUL. */
int sf_form_parse(const char *s, size_t len, json_object *obj);

/* Is token equal to want (constant time in the length of want)? */
int sf_token_equal(const char *token, const char *want);

#endif
