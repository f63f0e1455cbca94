#include "serve.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "clock.h"
#include "core.h"
#include "dbpool.h"
#include "http_server.h"
#include "log.h"
#include "queue.h"
#include "queue_async.h"
#include "reload.h"
#include "slack.h"
#include "worker.h"

#define READY_CHECK_MS 2000   /* PostgreSQL is probed this often for /readyz */
#define DRAIN_MS 3500         /* on SIGTERM: time given to commands in flight, within SPEC's 5 s */
#define DRAIN_POLL_MS 25

typedef struct server {
    uv_loop_t *loop;
    config_holder *holder;
    config *cfg;
    char session[24];
    char route[48];
    char consumer[96];

    dbpool *db;
    audit_appender *appender;   /* the process's group commit, shared by db and workers */
    queue_async *qa;
    bot_core *core;
    slack_adapter *slack;
    http_server *http;
    worker_pool *workers;

    /* readiness (SPEC §8) */
    bool pg_up;
    char pg_error[160];
    bool pg_checking;
    int64_t pg_checked_at;
    uv_work_t pg_work;
    uv_timer_t ready_timer;
    /* Nomad health per environment, as the workers last saw it (Redis) */
    json_object *nomad;  /* {"staging":{"up":true,"age_s":3},...}, owned; NULL until the first read */

    uv_signal_t sigint, sigterm, sighup;
    uv_timer_t drain_timer;
    int64_t drain_deadline;
    bool stopping;
    int exit_code;
} server;

/* ---- readiness ---- */

static void pg_probe(uv_work_t *w) {
    server *sv = w->data;
    char err[256];
    audit_db *db = dbpool_get(sv->db, err, sizeof(err));
    if (!db) {
        sv->pg_up = false;
        snprintf(sv->pg_error, sizeof(sv->pg_error), "%s", err);
        return;
    }
    int64_t now;
    int rc = audit_now(db, &now);
    sv->pg_up = rc == AUDIT_OK;
    snprintf(sv->pg_error, sizeof(sv->pg_error), "%s", rc == AUDIT_OK ? "" : db->errstr);
    dbpool_put(sv->db, db, rc == AUDIT_ERR_CONNECT);
}

static void pg_probed(uv_work_t *w, int status) {
    server *sv = w->data;
    (void)status;
    sv->pg_checking = false;
    sv->pg_checked_at = nm_mono_ms();
}

static void health_got(void *ud, int code, const char *const *fields, const char *const *values, size_t n) {
    server *sv = ud;
    json_object *all = json_object_new_object();
    if (code != QUEUE_OK) n = 0;
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; all && i < n; i++) {
        /* "ok <unix>" or "error <unix> <why>" (queue.h) */
        bool up = strncmp(values[i], "ok ", 3) == 0;
        const char *p = strchr(values[i], ' ');
        long long at = p ? strtoll(p + 1, NULL, 10) : 0;
        const char *why = p ? strchr(p + 1, ' ') : NULL;
        json_object *e = json_object_new_object();
        json_object_object_add(e, "up", json_object_new_boolean(up));
        json_object_object_add(e, "age_s", json_object_new_int64(at > 0 ? now - at : -1));
        if (!up && why) json_object_object_add(e, "error", json_object_new_string(why + 1));
        json_object_object_add(all, fields[i], e);
    }
    json_object_put(sv->nomad);
    sv->nomad = all;
}

static void ready_fire(uv_timer_t *t) {
    server *sv = t->data;
    if (sv->stopping) return;
    if (sv->qa) queue_async_health_get(sv->qa, health_got, sv);
    if (sv->pg_checking) return;
    sv->pg_work.data = sv;
    if (uv_queue_work(sv->loop, &sv->pg_work, pg_probe, pg_probed) == 0) sv->pg_checking = true;
}

/* GET /healthz: the process answers. */
static void on_healthz(void *ud, http_exchange *x, const http_request_in *req) {
    (void)ud;
    (void)req;
    static const char body[] = "{\"status\":\"ok\"}\n";
    http_respond(x, 200, "application/json", body, sizeof(body) - 1);
}

/* GET /readyz: ready = PostgreSQL reachable and at least one chat connection
 * up (SPEC §8); Redis reported beside them. Answered from the last probes:
 * the loop never waits for a server here. */
static void on_readyz(void *ud, http_exchange *x, const http_request_in *req) {
    server *sv = ud;
    (void)req;
    int slack = sv->slack ? slack_adapter_ready(sv->slack) : 0;
    bool ready = sv->pg_up && slack > 0 && !sv->stopping;
    json_object *o = json_object_new_object(), *pg = json_object_new_object(), *redis = json_object_new_object(),
                *chat = json_object_new_object();
    json_object_object_add(o, "ready", json_object_new_boolean(ready));
    json_object_object_add(pg, "up", json_object_new_boolean(sv->pg_up));
    if (!sv->pg_up && sv->pg_error[0]) json_object_object_add(pg, "error", json_object_new_string(sv->pg_error));
    json_object_object_add(o, "postgres", pg);
    json_object_object_add(redis, "up", json_object_new_boolean(sv->qa && queue_async_up(sv->qa)));
    json_object_object_add(o, "redis", redis);
    json_object_object_add(o, "nomad", sv->nomad ? json_object_get(sv->nomad) : json_object_new_object());
    if (sv->slack) {
        json_object *sl = json_object_new_object();
        json_object_object_add(sl, "connections", json_object_new_int(slack));
        json_object_object_add(chat, "slack", sl);
    }
    json_object_object_add(o, "chat", chat);
    json_object_object_add(o, "stopping", json_object_new_boolean(sv->stopping));
    size_t len = 0;
    const char *text = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
    http_respond(x, ready ? 200 : 503, "application/json", text ? text : "{}", text ? len : 2);
    json_object_put(o);
}

/* ---- events ---- */

/* This process's own stream: answers to tasks its commands started. */
static void on_answer(void *ud, const char *json, size_t len) {
    server *sv = ud;
    json_object *ev = bot_event_parse(json, len);
    if (!ev) return;
    bot_core_event(sv->core, ev);
    json_object_put(ev);
}

/* The bots' shared stream: request progress, applied to chat by one replica. */
static void on_shared(void *ud, const char *json, size_t len) {
    server *sv = ud;
    json_object *ev = bot_event_parse(json, len);
    if (!ev) return;
    if (sv->slack) slack_adapter_event(sv->slack, ev);
    json_object_put(ev);
}

/* ---- lifecycle ---- */

static void closed_noop(void *ud) { (void)ud; }

static void finish(server *sv) {
    uv_timer_stop(&sv->drain_timer);
    uv_close((uv_handle_t *)&sv->drain_timer, NULL);
    uv_close((uv_handle_t *)&sv->ready_timer, NULL);
    uv_close((uv_handle_t *)&sv->sigint, NULL);
    uv_close((uv_handle_t *)&sv->sigterm, NULL);
    uv_close((uv_handle_t *)&sv->sighup, NULL);
    if (sv->core) bot_core_cancel_tasks(sv->core);
    if (sv->slack) slack_adapter_close(sv->slack, closed_noop, NULL);
    sv->slack = NULL;
    if (sv->http) http_server_close(sv->http);
    sv->http = NULL;
    if (sv->core) bot_core_detach_queue(sv->core);
    if (sv->qa) queue_async_close(sv->qa);
    sv->qa = NULL;
}

/* Draining: commands in flight finish (their answers still reach chat)
 * until none is left or the deadline passes. */
static void drain_fire(uv_timer_t *t) {
    server *sv = t->data;
    int pending = (sv->core ? bot_core_pending(sv->core) : 0) + (sv->slack ? slack_adapter_pending(sv->slack) : 0);
    if (pending > 0 && nm_mono_ms() < sv->drain_deadline) return;
    if (pending > 0) {
        char n[16];
        snprintf(n, sizeof(n), "%d", pending);
        nm_log(NM_LOG_WARN, "stopping with commands unfinished; chat shows them as failed", "pending", n, NULL);
    }
    finish(sv);
}

static void stop(server *sv, int code) {
    if (sv->stopping) return;
    sv->stopping = true;
    sv->exit_code = code;
    /* Chat input first: nothing new arrives while the rest drains. */
    if (sv->slack) slack_adapter_stop_input(sv->slack);
    sv->drain_deadline = nm_mono_ms() + DRAIN_MS;
    uv_timer_start(&sv->drain_timer, drain_fire, 0, DRAIN_POLL_MS);
}

static void on_signal(uv_signal_t *s, int signum) {
    server *sv = s->data;
    nm_log(NM_LOG_INFO, "signal received; draining", "signal", signum == SIGINT ? "INT" : "TERM", NULL);
    stop(sv, 0);
}

static void on_reloaded(void *ud, bool ok) {
    server *sv = ud;
    if (!ok) return;
    config_free(sv->cfg);
    sv->cfg = config_holder_get(sv->holder);
    bot_core_set_config(sv->core, sv->cfg);
    if (sv->slack) slack_adapter_set_config(sv->slack, sv->cfg);
}

static void on_sighup(uv_signal_t *s, int signum) {
    (void)signum;
    server *sv = s->data;
    if (reload_start(sv->loop, sv->holder, on_reloaded, sv) != 0)
        nm_log(NM_LOG_ERROR, "configuration reload could not start", NULL);
}

static int start_http(server *sv, const char *listen) {
    char err[256];
    sv->http = http_server_new(sv->loop, listen, NULL, err, sizeof(err));
    if (!sv->http) {
        fprintf(stderr, "nomatron serve: cannot listen on %s: %s\n", listen, err);
        return -1;
    }
    http_server_route(sv->http, "GET", "/healthz", on_healthz, sv);
    http_server_route(sv->http, "GET", "/readyz", on_readyz, sv);
    char port[16];
    snprintf(port, sizeof(port), "%d", http_server_port(sv->http));
    nm_log(NM_LOG_INFO, "listening", "listen", listen, "port", port, NULL);
    return 0;
}

int serve_run(config_holder *holder, const serve_opts *opts) {
    server *sv = calloc(1, sizeof(*sv));
    if (!sv) return 1;
    sv->loop = uv_default_loop();
    sv->holder = holder;
    http_server_log_to_nm();   /* before any lws context: its notices would go to stderr */
    sv->cfg = config_holder_get(holder);
    bot_session_id(sv->session, sizeof(sv->session));
    snprintf(sv->route, sizeof(sv->route), "bot:%s", sv->session);
    /* A stable consumer name: entries this host read but never acknowledged are read again after a restart. */
    char host[64] = "bot";
    gethostname(host, sizeof(host) - 1);
    snprintf(sv->consumer, sizeof(sv->consumer), "bot-%s", host);

    /* Signals first: one that arrives while things start must not be lost. */
    uv_signal_init(sv->loop, &sv->sigint);
    uv_signal_init(sv->loop, &sv->sigterm);
    uv_signal_init(sv->loop, &sv->sighup);
    sv->sigint.data = sv->sigterm.data = sv->sighup.data = sv;
    uv_signal_start(&sv->sigint, on_signal, SIGINT);
    uv_signal_start(&sv->sigterm, on_signal, SIGTERM);
    uv_signal_start(&sv->sighup, on_sighup, SIGHUP);
    uv_timer_init(sv->loop, &sv->drain_timer);
    uv_timer_init(sv->loop, &sv->ready_timer);
    sv->drain_timer.data = sv->ready_timer.data = sv;

    char err[256];
    int code = 0;
    /* One appender for the process: its bot and worker threads' chained
     * writes share transactions (NULL, out of memory: each write alone). */
    sv->appender = audit_appender_new(0, 0);
    sv->db = dbpool_new(sv->cfg->postgres, 4, sv->appender);
    sv->qa = queue_async_new(sv->loop, sv->cfg->redis, NULL, NULL, err, sizeof(err));
    sv->core = sv->qa && sv->db ? bot_core_new(sv->loop, sv->cfg, sv->qa, sv->db, sv->route) : NULL;
    if (!sv->core) {
        fprintf(stderr, "nomatron serve: %s\n", sv->qa ? "out of memory" : err);
        code = 2;
        goto out;
    }
    queue_async_follow(sv->qa, sv->route, on_answer, sv);

    const char *listen = opts->listen ? opts->listen : sv->cfg->listen;
    if (listen && strcmp(listen, "off") != 0 && start_http(sv, listen) != 0) {
        code = 1;
        goto out;
    }
    if (sv->cfg->slack) {
        sv->slack = slack_adapter_new(sv->loop, sv->cfg, sv->core, sv->db, err, sizeof(err));
        if (!sv->slack) {
            fprintf(stderr, "nomatron serve: slack: %s\n", err);
            code = 2;
            goto out;
        }
        queue_async_consume(sv->qa, sv->consumer, on_shared, sv);
        slack_adapter_start(sv->slack);
    } else if (!opts->workers) {
        fprintf(stderr, "nomatron serve: --role bot needs a chat: configure chat.slack\n");
        code = 2;
        goto out;
    }
    if (opts->workers) {
        sv->workers =
            worker_pool_start(holder, sv->cfg->workers > 0 ? sv->cfg->workers : 1, sv->appender, err, sizeof(err));
        if (!sv->workers) {
            fprintf(stderr, "nomatron serve: %s\n", err);
            code = 1;
            goto out;
        }
    }
    uv_timer_start(&sv->ready_timer, ready_fire, 0, READY_CHECK_MS);
    nm_log(NM_LOG_INFO, "serving", "role", opts->workers ? "all" : "bot", "slack", sv->slack ? "on" : "off", NULL);
    uv_run(sv->loop, UV_RUN_DEFAULT);
    code = sv->exit_code;
    worker_pool_stop(sv->workers);
    sv->workers = NULL;
    goto done;

out:
    stop(sv, code);
    uv_run(sv->loop, UV_RUN_DEFAULT);
done:
    worker_pool_stop(sv->workers);
    bot_core_free(sv->core);
    dbpool_free(sv->db);
    audit_appender_free(sv->appender);   /* every thread that used it is joined */
    config_free(sv->cfg);
    json_object_put(sv->nomad);
    uv_loop_close(sv->loop);
    free(sv);
    return code;
}
