#include "slack_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"

#define CALL_TIMEOUT_MS 10000
#define MAX_BLOCKED 16   /* methods waiting out a 429 at once */

typedef struct call {
    struct call *next;
    struct slack_api *api;
    struct lane *lane;       /* NULL: not paced */
    char method[48];
    bool get, app_token;
    char *body;              /* JSON body, or the query for a GET */
    size_t len;
    char update_key[96];
    int attempts;
    slack_api_cb cb;
    void *ud;
} call;

typedef struct lane {
    struct lane *next;
    char key[64];
    call *head, **tail;
    bool busy;               /* a call of this lane is in flight */
    int64_t next_at;         /* monotonic ms before which the next call waits */
} lane;

struct slack_api {
    uv_loop_t *loop;
    http_client *http;
    char url[512];
    char bot_auth[320], app_auth[320];
    lane *lanes;
    call *free_head, **free_tail;   /* calls that are not paced, waiting only for a 429 to pass */
    int queued, in_flight;
    struct {
        char method[48];
        int64_t until;
    } blocked[MAX_BLOCKED];
    uv_timer_t pump_timer;
    call *failed, **failed_tail;    /* refused by http_client, completed on fail_timer */
    uv_timer_t fail_timer;
    int timers_open;
    bool closing;
};

const char *slack_api_strerror(int code) {
    switch (code) {
    case SLACK_API_OK: return "ok";
    case SLACK_API_ERR_SLACK: return "Slack refused the call";
    case SLACK_API_ERR_HTTP: return "Slack could not be reached";
    case SLACK_API_ERR_DECODE: return "Slack's answer could not be read";
    case SLACK_API_ERR_RATELIMITED: return "rate limited by Slack";
    case SLACK_API_ERR_SUPERSEDED: return "replaced by a newer update";
    case SLACK_API_ERR_FULL: return "too many Slack calls waiting";
    case SLACK_API_ERR_CLOSED: return "shutting down";
    case SLACK_API_ERR_NOMEM: return "out of memory";
    default: return "unknown error";
    }
}

static void pump(slack_api *a);
static void maybe_free(slack_api *a);
static void fail_fire(uv_timer_t *t);

static void call_free(call *c) {
    free(c->body);
    free(c);
}

static void complete(slack_api *a, call *c, int code, const slack_api_result *res) {
    (void)a;
    if (c->cb) c->cb(c->ud, code, res);
    call_free(c);
}

static int64_t blocked_until(slack_api *a, const char *method) {
    for (int i = 0; i < MAX_BLOCKED; i++)
        if (a->blocked[i].method[0] && strcmp(a->blocked[i].method, method) == 0) return a->blocked[i].until;
    return 0;
}

static void block_method(slack_api *a, const char *method, int64_t until) {
    int slot = -1;
    for (int i = 0; i < MAX_BLOCKED; i++) {
        if (strcmp(a->blocked[i].method, method) == 0) {
            slot = i;
            break;
        }
        if (slot < 0 && (!a->blocked[i].method[0] || a->blocked[i].until < nm_mono_ms())) slot = i;
    }
    if (slot < 0) slot = 0;
    snprintf(a->blocked[slot].method, sizeof(a->blocked[slot].method), "%s", method);
    a->blocked[slot].until = until;
}

static void requeue_front(slack_api *a, call *c) {
    if (c->lane) {
        c->next = c->lane->head;
        c->lane->head = c;
        if (!c->next) c->lane->tail = &c->next;
    } else {
        c->next = a->free_head;
        a->free_head = c;
        if (!c->next) a->free_tail = &c->next;
    }
    a->queued++;
}

static void http_done(void *ud, const http_response *res) {
    call *c = ud;
    slack_api *a = c->api;
    a->in_flight--;
    if (c->lane) {
        c->lane->busy = false;
        c->lane->next_at = nm_mono_ms() + SLACK_PACE_MS;
    }
    if (a->closing || res->code == HTTP_ERR_CLOSED) {
        complete(a, c, SLACK_API_ERR_CLOSED, NULL);
        maybe_free(a);
        return;
    }
    if (res->code == HTTP_OK && res->status == 429) {
        int wait_s = res->retry_after_s > 0 ? res->retry_after_s : 1;
        block_method(a, c->method, nm_mono_ms() + (int64_t)wait_s * 1000);
        char ra[16];
        snprintf(ra, sizeof(ra), "%d", wait_s);
        nm_log(NM_LOG_WARN, "slack: rate limited; waiting as asked", "method", c->method, "retry_after_s", ra, NULL);
        if (++c->attempts > SLACK_API_RETRIES) {
            complete(a, c, SLACK_API_ERR_RATELIMITED, NULL);
        } else {
            requeue_front(a, c);
        }
        pump(a);
        return;
    }
    if (res->code != HTTP_OK || res->status != 200) {
        char st[16];
        snprintf(st, sizeof(st), "%ld", res->status);
        nm_log(NM_LOG_WARN, "slack: call failed", "method", c->method, "status", res->code == HTTP_OK ? st : NULL,
               "error", res->code == HTTP_OK ? "unexpected HTTP status" : res->error, NULL);
        complete(a, c, SLACK_API_ERR_HTTP, NULL);
        pump(a);
        return;
    }
    slack_api_result r;
    char err[160];
    if (slack_api_parse(c->method, res->body, res->len, &r, err, sizeof(err)) != 0) {
        nm_log(NM_LOG_WARN, "slack: answer not understood", "method", c->method, "error", err, NULL);
        complete(a, c, SLACK_API_ERR_DECODE, NULL);
    } else if (!r.ok) {
        nm_log(NM_LOG_WARN, "slack: call refused", "method", c->method, "error", r.error, "hint",
               slack_error_hint(r.error), NULL);
        complete(a, c, SLACK_API_ERR_SLACK, &r);
    } else {
        if (r.warning[0]) nm_log(NM_LOG_INFO, "slack: warning", "method", c->method, "warning", r.warning, NULL);
        complete(a, c, SLACK_API_OK, &r);
    }
    pump(a);
}

/* A call http_client refused: completed from the loop, never inside
 * slack_api_post (callers link their state after the post returns). */
static void fail_later(slack_api *a, call *c) {
    c->next = NULL;
    *a->failed_tail = c;
    a->failed_tail = &c->next;
    uv_timer_start(&a->fail_timer, fail_fire, 0, 0);
}

static void send_call(slack_api *a, call *c) {
    size_t ulen = strlen(a->url) + strlen(c->method) + (c->get ? c->len + 1 : 0) + 1;
    char *url = malloc(ulen);
    if (!url) {
        fail_later(a, c);
        return;
    }
    if (c->get) snprintf(url, ulen, "%s%s%s%s", a->url, c->method, c->len ? "?" : "", c->len ? c->body : "");
    else snprintf(url, ulen, "%s%s", a->url, c->method);
    const char *headers[3] = {c->app_token ? a->app_auth : a->bot_auth,
                              c->get ? NULL : "Content-Type: application/json; charset=utf-8", NULL};
    http_request req = {
        .method = c->get ? "GET" : "POST",
        .url = url,
        .headers = headers,
        .body = c->get ? NULL : c->body,
        .body_len = c->get ? 0 : c->len,
        .timeout_ms = CALL_TIMEOUT_MS,
    };
    if (c->lane) c->lane->busy = true;
    a->in_flight++;
    int rc = http_client_send(a->http, &req, http_done, c);   /* copies the URL */
    free(url);
    if (rc != 0) {
        a->in_flight--;
        if (c->lane) c->lane->busy = false;
        nm_log(NM_LOG_WARN, "slack: call could not be sent", "method", c->method, "error", http_strerror(rc), NULL);
        fail_later(a, c);
    }
}

static void pump_fire(uv_timer_t *t) { pump(t->data); }

static void fail_fire(uv_timer_t *t) {
    slack_api *a = t->data;
    while (a->failed) {
        call *c = a->failed;
        a->failed = c->next;
        if (!a->failed) a->failed_tail = &a->failed;
        complete(a, c, a->closing ? SLACK_API_ERR_CLOSED : SLACK_API_ERR_HTTP, NULL);
    }
    pump(a);
}

/* Sends whatever may go now and sets the timer for the next that may. */
static void pump(slack_api *a) {
    if (a->closing) return;
    int64_t now = nm_mono_ms(), wake = INT64_MAX;
    for (call **pp = &a->free_head; *pp;) {
        call *c = *pp;
        int64_t until = blocked_until(a, c->method);
        if (until > now) {
            if (until < wake) wake = until;
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        if (!*pp) a->free_tail = pp;
        a->queued--;
        send_call(a, c);
    }
    for (lane **lp = &a->lanes; *lp;) {
        lane *l = *lp;
        /* An idle lane past its pace is forgotten: one per channel or DM ever used would pile up. */
        if (!l->busy && !l->head && l->next_at <= now) {
            *lp = l->next;
            free(l);
            continue;
        }
        lp = &l->next;
        if (l->busy || !l->head) continue;
        int64_t at = l->next_at, until = blocked_until(a, l->head->method);
        if (until > at) at = until;
        if (at > now) {
            if (at < wake) wake = at;
            continue;
        }
        call *c = l->head;
        l->head = c->next;
        if (!l->head) l->tail = &l->head;
        a->queued--;
        send_call(a, c);
    }
    if (wake != INT64_MAX) uv_timer_start(&a->pump_timer, pump_fire, (uint64_t)(wake - now), 0);
}

static lane *lane_for(slack_api *a, const char *key) {
    for (lane *l = a->lanes; l; l = l->next)
        if (strcmp(l->key, key) == 0) return l;
    lane *l = calloc(1, sizeof(*l));
    if (!l) return NULL;
    snprintf(l->key, sizeof(l->key), "%s", key);
    l->tail = &l->head;
    l->next = a->lanes;
    a->lanes = l;
    return l;
}

static call *call_new(slack_api *a, const char *method, const char *body, size_t len) {
    call *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->api = a;
    snprintf(c->method, sizeof(c->method), "%s", method);
    c->body = malloc(len + 1);
    if (!c->body) {
        free(c);
        return NULL;
    }
    memcpy(c->body, body, len);
    c->body[len] = '\0';
    c->len = len;
    return c;
}

static int enqueue(slack_api *a, call *c, const char *channel) {
    if (channel && *channel) {
        c->lane = lane_for(a, channel);
        if (!c->lane) {
            call_free(c);
            return SLACK_API_ERR_NOMEM;
        }
        *c->lane->tail = c;
        c->lane->tail = &c->next;
    } else {
        *a->free_tail = c;
        a->free_tail = &c->next;
    }
    a->queued++;
    pump(a);
    return SLACK_API_OK;
}

int slack_api_post(slack_api *a, const char *method, const char *body, size_t len, const char *channel,
                   const char *update_key, slack_api_cb cb, void *ud) {
    if (a->closing) return SLACK_API_ERR_CLOSED;
    if (update_key && *update_key && channel && *channel) {
        lane *l = lane_for(a, channel);
        for (call *w = l ? l->head : NULL; w; w = w->next) {
            if (strcmp(w->update_key, update_key) != 0) continue;
            /* Still waiting: only the newest text matters. */
            char *nb = malloc(len + 1);
            if (!nb) return SLACK_API_ERR_NOMEM;
            memcpy(nb, body, len);
            nb[len] = '\0';
            slack_api_cb old_cb = w->cb;
            void *old_ud = w->ud;
            free(w->body);
            w->body = nb;
            w->len = len;
            w->cb = cb;
            w->ud = ud;
            /* Last, and nothing of a or w touched after: the callback may close the api. */
            if (old_cb) old_cb(old_ud, SLACK_API_ERR_SUPERSEDED, NULL);
            return SLACK_API_OK;
        }
    }
    if (a->queued >= SLACK_API_QUEUE_MAX) {
        nm_log(NM_LOG_WARN, "slack: too many calls waiting; this one is dropped", "method", method, NULL);
        return SLACK_API_ERR_FULL;
    }
    call *c = call_new(a, method, body, len);
    if (!c) return SLACK_API_ERR_NOMEM;
    c->cb = cb;
    c->ud = ud;
    if (update_key) snprintf(c->update_key, sizeof(c->update_key), "%s", update_key);
    return enqueue(a, c, channel);
}

int slack_api_get(slack_api *a, const char *method, const char *query, slack_api_cb cb, void *ud) {
    if (a->closing) return SLACK_API_ERR_CLOSED;
    if (a->queued >= SLACK_API_QUEUE_MAX) return SLACK_API_ERR_FULL;
    call *c = call_new(a, method, query ? query : "", query ? strlen(query) : 0);
    if (!c) return SLACK_API_ERR_NOMEM;
    c->get = true;
    c->cb = cb;
    c->ud = ud;
    return enqueue(a, c, NULL);
}

int slack_api_open_connection(slack_api *a, slack_api_cb cb, void *ud) {
    if (a->closing) return SLACK_API_ERR_CLOSED;
    if (a->queued >= SLACK_API_QUEUE_MAX) return SLACK_API_ERR_FULL;
    call *c = call_new(a, "apps.connections.open", "", 0);
    if (!c) return SLACK_API_ERR_NOMEM;
    c->app_token = true;
    c->cb = cb;
    c->ud = ud;
    return enqueue(a, c, NULL);
}

int slack_api_pending(const slack_api *a) { return a->queued + a->in_flight; }

slack_api *slack_api_new(uv_loop_t *loop, http_client *http, const char *api_url, const char *bot_token,
                         const char *app_token, char *err, size_t errlen) {
    size_t ul = api_url ? strlen(api_url) : 0;
    if (ul == 0 || ul + 2 > sizeof(((slack_api *)0)->url) ||
        (strncmp(api_url, "https://", 8) != 0 && strncmp(api_url, "http://", 7) != 0)) {
        snprintf(err, errlen, "chat.slack.api_url must be an http(s) URL");
        return NULL;
    }
    slack_api *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->loop = loop;
    a->http = http;
    snprintf(a->url, sizeof(a->url), "%s%s", api_url, api_url[ul - 1] == '/' ? "" : "/");
    snprintf(a->bot_auth, sizeof(a->bot_auth), "Authorization: Bearer %s", bot_token ? bot_token : "");
    snprintf(a->app_auth, sizeof(a->app_auth), "Authorization: Bearer %s", app_token ? app_token : "");
    a->free_tail = &a->free_head;
    a->failed_tail = &a->failed;
    uv_timer_init(loop, &a->pump_timer);
    uv_timer_init(loop, &a->fail_timer);
    a->pump_timer.data = a->fail_timer.data = a;
    a->timers_open = 2;
    return a;
}

/* Freed when the timer is closed and the calls in flight have come back. */
static void maybe_free(slack_api *a) {
    if (!a->closing || a->timers_open > 0 || a->in_flight > 0) return;
    while (a->lanes) {
        lane *l = a->lanes;
        a->lanes = l->next;
        free(l);
    }
    explicit_bzero(a->bot_auth, sizeof(a->bot_auth));
    explicit_bzero(a->app_auth, sizeof(a->app_auth));
    free(a);
}

static void timer_closed(uv_handle_t *h) {
    slack_api *a = h->data;
    a->timers_open--;
    maybe_free(a);
}

void slack_api_close(slack_api *a) {
    if (!a || a->closing) return;
    a->closing = true;
    uv_timer_stop(&a->pump_timer);
    while (a->free_head) {
        call *c = a->free_head;
        a->free_head = c->next;
        complete(a, c, SLACK_API_ERR_CLOSED, NULL);
    }
    for (lane *l = a->lanes; l; l = l->next)
        while (l->head) {
            call *c = l->head;
            l->head = c->next;
            complete(a, c, SLACK_API_ERR_CLOSED, NULL);
        }
    while (a->failed) {
        call *c = a->failed;
        a->failed = c->next;
        complete(a, c, SLACK_API_ERR_CLOSED, NULL);
    }
    a->failed_tail = &a->failed;
    a->queued = 0;
    /* Calls in flight come back through http_done (closing the http_client ends them). */
    uv_timer_stop(&a->fail_timer);
    uv_close((uv_handle_t *)&a->pump_timer, timer_closed);
    uv_close((uv_handle_t *)&a->fail_timer, timer_closed);
}
