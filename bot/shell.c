#include "shell.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "audit.h"
#include "buf.h"
#include "cmd.h"
#include "dbpool.h"
#include "govern.h"
#include "log.h"
#include "policy.h"
#include "queue.h"
#include "queue_async.h"
#include "reload.h"
#include "render.h"
#include "worker.h"

#define SHELL_CHANNEL "shell:console"   /* SPEC §4: the shell's channel */
#define SHELL_LINE_MAX CMD_MAX_TEXT      /* longer lines are refused whole */
#define SHELL_REFRESH_MS 2000            /* while waiting at end of input: re-read states from PostgreSQL */

/* A request this session created, followed until it is final. */
typedef struct tracked {
    int64_t id;
    char state[AUDIT_STATE_LEN];
    struct tracked *next;
} tracked;

typedef struct shell {
    uv_loop_t *loop;
    config_holder *holder;
    config *cfg;                         /* the current snapshot (a reference), swapped on SIGHUP */
    char session[24];
    char route[48];
    char actor[128];
    const char *person;                  /* borrowed from cfg, may be NULL */

    queue_async *qa;
    dbpool *db;
    worker_pool *workers;

    /* input */
    union {
        uv_tty_t tty;
        uv_pipe_t pipe;
    } in;
    bool in_stream;                      /* in is a uv_stream (tty or pipe) */
    uv_fs_t file_req;                    /* otherwise stdin is a file, read with uv_fs_read */
    char file_buf[4096];
    bool interactive;
    nm_buf line;
    bool line_too_long;
    unsigned lineno;
    bool eof;

    /* what we wait for */
    tracked *reqs;
    int inflight;                        /* database writes and Redis adds not yet answered */
    int tasks;                           /* status answers not yet received */
    unsigned task_seq;
    bool any_failed;
    bool quitting;
    int exit_code;
    int timeout_s;

    uv_timer_t timeout_timer;
    uv_timer_t refresh_timer;
    uv_signal_t sigint, sigterm, sighup;
    struct create_job *promotes;         /* promotes waiting for the source's evidence from a worker */
} shell;

static void shell_quit(shell *sh, int code);
static void check_done(shell *sh);
static void start_plan(shell *sh, int64_t id);
static void promote_evidence(shell *sh, const json_object *ev);

static void say(shell *sh, nm_buf *b) {
    (void)sh;
    if (b->len) fwrite(b->data, 1, b->len, stdout);
    fflush(stdout);
}

static void sayf(shell *sh, const char *text) {
    (void)sh;
    fputs(text, stdout);
    fflush(stdout);
}

static void prompt(shell *sh) {
    if (sh->interactive && !sh->quitting) sayf(sh, "nomatron> ");
}

static bool is_final(const char *state) {
    static const char *const finals[] = {"succeeded", "failed", "rejected", "expired", "cancelled",
                                         "pending_approval"};
    for (size_t i = 0; i < sizeof(finals) / sizeof(finals[0]); i++)
        if (strcmp(state, finals[i]) == 0) return true;
    return false;
}

static tracked *find_tracked(shell *sh, int64_t id) {
    for (tracked *t = sh->reqs; t; t = t->next)
        if (t->id == id) return t;
    return NULL;
}

static void set_state(shell *sh, tracked *t, const char *state) {
    if (is_final(t->state)) return;   /* a late event never reopens a finished request */
    snprintf(t->state, sizeof(t->state), "%s", state);
    if (strcmp(state, "failed") == 0) sh->any_failed = true;
}

/* ---- events from workers ---- */

static void on_event(void *ud, const char *json, size_t len) {
    shell *sh = ud;
    json_tokener *tok = json_tokener_new();
    json_object *ev = tok ? json_tokener_parse_ex(tok, json, (int)len) : NULL;
    json_tokener_free(tok);
    if (!ev) {
        nm_log(NM_LOG_WARN, "malformed event ignored", NULL);
        return;
    }
    nm_buf out;
    nm_buf_init(&out, 0);
    if (render_event_console(ev, &out) == 0) {
        if (sh->interactive) sayf(sh, "\n");
        say(sh, &out);
        prompt(sh);
    }
    nm_buf_free(&out);

    json_object *v;
    const char *type = json_object_object_get_ex(ev, "type", &v) ? json_object_get_string(v) : "";
    if (strcmp(type, "request") == 0 && json_object_object_get_ex(ev, "req", &v)) {
        tracked *t = find_tracked(sh, json_object_get_int64(v));
        json_object *st;
        if (t && json_object_object_get_ex(ev, "state", &st)) set_state(sh, t, json_object_get_string(st));
    } else if (strcmp(type, "evidence") == 0) {
        if (sh->tasks > 0) sh->tasks--;
        promote_evidence(sh, ev);
    } else if ((strcmp(type, "status") == 0 || strcmp(type, "action") == 0) && sh->tasks > 0) {
        sh->tasks--;
        json_object *okv;
        if (strcmp(type, "action") == 0 && json_object_object_get_ex(ev, "ok", &okv) && !json_object_get_boolean(okv))
            sh->any_failed = true;
    }
    json_object_put(ev);
    check_done(sh);
}

/* ---- deploy: record in PostgreSQL (thread pool), then queue ---- */

typedef struct create_job {
    struct create_job *next;             /* in sh->promotes while waiting for evidence */
    char task[48];                       /* promote: the evidence task's ID */
    uv_work_t work;
    shell *sh;
    cmd_action a;
    const char *kind;                    /* "deploy" or "rollback" */
    enum cmd_kind cmd;                   /* CMD_DEPLOY, CMD_ROLLBACK, or CMD_APPROVE / REJECT / CANCEL / LOCK /
                                            UNLOCK / EXPLAIN for the other governance commands */
    gov_verdict v;                       /* what governance decided */
    char actor[128];                     /* who typed it (copied: `:as` may change the shell's meanwhile) */
    config *cfg;                         /* the snapshot it is decided under (a reference: a reload may swap the shell's) */
    char person[CONFIG_MAX_NAME + 1];
    bool queued;                         /* approve: the request is complete and queued */
    char text[2048];                     /* explain's answer */
    gov_evidence ev;                     /* promote: what the source runs now (a worker's answer) */
    char ev_deployment[64];              /* ... and its latest deployment */
    char version[CMD_MAX_VERSION + 2];   /* deploy: the tag; rollback: tag, "#N" or "" (previous stable) */
    char to_image[AUDIT_IMAGE_LEN];
    char idem[96];
    const char *state;
    int rc;
    int64_t id;
    bool existed;
    char err[256];
} create_job;

static void create_work(uv_work_t *w) {
    create_job *j = w->data;
    shell *sh = j->sh;
    audit_db *db = dbpool_get(sh->db, j->err, sizeof(j->err));
    if (!db) {
        j->rc = AUDIT_ERR_CONNECT;
        return;
    }
    const char *actor = j->actor, *person = j->person[0] ? j->person : NULL;
    govern_in in = {
        .kind = strcmp(j->kind, "rollback") == 0 ? GOV_KIND_ROLLBACK
                : strcmp(j->kind, "promote") == 0 ? GOV_KIND_PROMOTE
                                                  : GOV_KIND_DEPLOY,
        .from_env = j->a.from_env, .evidence = &j->ev,
        .env = j->a.env, .job = j->a.job, .version = j->version, .to_image = j->to_image, .canary = j->a.canary,
        .user_reason = j->a.reason[0] ? j->a.reason : NULL, .emergency = j->a.emergency[0] ? j->a.emergency : NULL,
        .actor = actor, .person = person, .idem_key = j->idem,
        .origin = {.platform = "shell", .channel = SHELL_CHANNEL, .route = sh->route},
    };
    const char *reason = j->a.reason[0] ? j->a.reason : j->a.emergency;
    switch (j->cmd) {
    case CMD_DEPLOY:
    case CMD_PROMOTE:
    case CMD_ROLLBACK: j->rc = govern_request(db, j->cfg, &in, &j->v, &j->id, &j->existed); break;
    case CMD_EXPLAIN: j->rc = govern_explain(db, j->cfg, &in, j->text, sizeof(j->text), &j->v); break;
    case CMD_APPROVE:
        j->rc = govern_decide(db, j->cfg, GOVERN_APPROVE, j->a.id, actor, person, SHELL_CHANNEL, NULL, &j->v,
                              &j->queued);
        break;
    case CMD_REJECT:
    case CMD_CANCEL:
        j->rc = govern_decide(db, j->cfg, j->cmd == CMD_REJECT ? GOVERN_REJECT : GOVERN_CANCEL, j->a.id, actor,
                              person, SHELL_CHANNEL, reason, &j->v, &j->queued);
        break;
    case CMD_LOCK:
    case CMD_UNLOCK:
        j->rc = govern_lock(db, j->cfg, j->a.env, j->cmd == CMD_LOCK, actor, person, SHELL_CHANNEL, j->a.reason,
                            &j->v);
        break;
    default: j->rc = AUDIT_ERR_INVALID; break;
    }
    if (j->rc == AUDIT_ERR_NOT_FOUND) snprintf(j->err, sizeof(j->err), "no request D-%lld", (long long)j->a.id);
    else if (j->rc != AUDIT_OK) snprintf(j->err, sizeof(j->err), "%s", db->errstr);
    dbpool_put(sh->db, db, j->rc == AUDIT_ERR_CONNECT);
}

typedef struct add_ctx {
    shell *sh;
    int64_t id;
} add_ctx;

static void work_added(void *ud, int code, const char *entry) {
    add_ctx *c = ud;
    shell *sh = c->sh;
    (void)entry;
    sh->inflight--;
    if (code != QUEUE_OK) {
        char line[160];
        snprintf(line, sizeof(line), "D-%lld is recorded but not yet queued (Redis: %s); it runs when Redis returns\n",
                 (long long)c->id, queue_strerror(code));
        sayf(sh, line);
    }
    free(c);
    check_done(sh);
}

/* Puts a queued request on the work stream; says so if Redis cannot take it now. */
static void enqueue_request(shell *sh, int64_t rid, nm_buf *out) {
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)rid);
    add_ctx *c = malloc(sizeof(*c));
    int rc = !c ? QUEUE_ERR_NOMEM : sh->qa ? queue_async_work_add(sh->qa, "request", id, work_added, c) : QUEUE_ERR_CONNECT;
    if (rc == QUEUE_OK) {
        c->sh = sh;
        c->id = rid;
        sh->inflight++;
    } else {
        free(c);
        nm_buf_printf(out, "D-%lld is recorded but not yet queued (Redis: %s); it runs when Redis returns\n",
                      (long long)rid, queue_strerror(rc));
    }
}

static void create_done(uv_work_t *w, int status) {
    create_job *j = w->data;
    shell *sh = j->sh;
    sh->inflight--;
    nm_buf out;
    nm_buf_init(&out, 0);
    bool request = j->cmd == CMD_DEPLOY || j->cmd == CMD_ROLLBACK || j->cmd == CMD_PROMOTE;
    if (j->rc == AUDIT_ERR_NOT_FOUND) {
        nm_buf_printf(&out, "error: %s\n", j->err);
    } else if (status != 0 || j->rc != AUDIT_OK) {
        nm_buf_printf(&out, "error: %s (%s); nothing was %s\n", request ? "the request was not recorded" : "not done",
                      j->rc == AUDIT_ERR_CONNECT ? "PostgreSQL is unavailable" : audit_strerror(j->rc),
                      request ? "started" : "changed");
        nm_log(NM_LOG_ERROR, "command not recorded", "job", j->a.job, "env", j->a.env, "actor", j->actor, "error",
               j->err, NULL);
        sh->any_failed = true;
    } else if (j->cmd == CMD_EXPLAIN) {
        nm_buf_appends(&out, j->text);
        if (out.len && out.data[out.len - 1] != '\n') nm_buf_appends(&out, "\n");
    } else if (j->v.tag != GOV_OK) {
        /* A refusal is an answer (audited), not a failure of the shell. */
        nm_buf_printf(&out, "refused: %s [%s]%s%s%s\n", j->v.message, gov_tag_name(j->v.tag), j->v.rule[0] ? " (rule: " : "",
                      j->v.rule, j->v.rule[0] ? ")" : "");
    } else if (!request) {
        render_governance(j->cmd, j->a.id, j->a.env, &j->v, j->queued, &out);
        if (j->queued) enqueue_request(sh, j->a.id, &out);
    } else if (j->existed) {
        nm_buf_printf(&out, "D-%lld already exists for this input; nothing new was created\n", (long long)j->id);
    } else {
        tracked *t = calloc(1, sizeof(*t));
        if (t) {
            t->id = j->id;
            snprintf(t->state, sizeof(t->state), "%s", j->state);
            t->next = sh->reqs;
            sh->reqs = t;
        }
        j->state = req_state_name(j->v.next);
        if (t) snprintf(t->state, sizeof(t->state), "%s", j->state);
        render_request_line(j->id, j->state, j->kind, j->a.job, j->version, j->a.env, &out);
        if (j->v.flags & GOV_F_BREAK_GLASS)
            nm_buf_printf(&out, "BREAK-GLASS D-%lld: %s passes a freeze (--emergency \"%s\"); it needs %d approvals\n",
                          (long long)j->id, j->actor, j->a.emergency, j->v.required);
        if (j->cmd == CMD_PROMOTE) {
            char since[32] = "unknown";
            time_t hs = (time_t)j->ev.healthy_since;
            struct tm tm;
            if (hs > 0 && gmtime_r(&hs, &tm)) strftime(since, sizeof(since), "%Y-%m-%d %H:%M:%S UTC", &tm);
            nm_buf_printf(&out, "D-%lld evidence: %s runs %s, latest deployment %s%.8s %s, %s since %s\n",
                          (long long)j->id, j->a.from_env, j->ev.image, j->ev_deployment[0] ? "" : "(none)",
                          j->ev_deployment, j->ev.status == GOV_DEPLOY_SUCCESSFUL ? "successful" : "not successful",
                          j->ev.healthy ? "all allocations healthy" : "not all healthy", since);
        }
        if (j->v.next == REQ_PENDING_APPROVAL) {
            nm_buf_printf(&out, "D-%lld needs %d approval%s: %s\n", (long long)j->id, j->v.required,
                          j->v.required == 1 ? "" : "s", j->v.message);
            if (j->cmd == CMD_DEPLOY || j->cmd == CMD_PROMOTE) start_plan(sh, j->id);
        }
        char ref[24];
        snprintf(ref, sizeof(ref), "D-%lld", (long long)j->id);
        nm_log(NM_LOG_INFO, "request.created", "req", ref, "job", j->a.job, "env", j->a.env, "actor", j->actor,
               "state", j->state, NULL);
        if (sh->qa) {
            char rid[24];
            snprintf(rid, sizeof(rid), "%lld", (long long)j->id);
            queue_async_idem_put(sh->qa, j->idem, rid);
        }
        if (strcmp(j->state, "queued") == 0) enqueue_request(sh, j->id, &out);
    }
    say(sh, &out);
    nm_buf_free(&out);
    config_free(j->cfg);
    free(j);
    prompt(sh);
    check_done(sh);
}

/* A command that PostgreSQL decides on the thread pool, with the identity and
 * snapshot it was typed under (copied: `:as` and reloads may change the
 * shell's meanwhile). NULL when out of memory (said to the user). */
static create_job *new_job(shell *sh, const cmd_action *a, const char *kind, enum cmd_kind cmd) {
    create_job *j = calloc(1, sizeof(*j));
    if (!j) {
        sayf(sh, "error: out of memory\n");
        return NULL;
    }
    j->sh = sh;
    j->a = *a;
    snprintf(j->actor, sizeof(j->actor), "%s", sh->actor);
    snprintf(j->person, sizeof(j->person), "%s", sh->person ? sh->person : "");
    j->cfg = config_ref(sh->cfg);
    j->kind = kind;
    j->cmd = cmd;
    j->state = "queued";   /* governance decides the real initial state */
    snprintf(j->idem, sizeof(j->idem), "shell:%s:%u", sh->session, sh->lineno);
    j->work.data = j;
    return j;
}

static void idem_checked(void *ud, int code, const char *existing) {
    create_job *j = ud;
    shell *sh = j->sh;
    if (code == QUEUE_OK && existing && *existing) {
        sh->inflight--;
        char line[128];
        snprintf(line, sizeof(line), "D-%s already exists for this input; nothing new was created\n", existing);
        sayf(sh, line);
        config_free(j->cfg);
        free(j);
        check_done(sh);
        return;
    }
    if (uv_queue_work(sh->loop, &j->work, create_work, create_done) != 0) {
        sh->inflight--;
        config_free(j->cfg);
        free(j);
        sayf(sh, "error: cannot schedule the request\n");
        check_done(sh);
    }
}

/* deploy and rollback: recorded in PostgreSQL, then queued for a worker. */
static void start_request(shell *sh, const char *kind, const cmd_action *a) {
    const config_job *job = config_find_job(sh->cfg, a->job);
    enum cmd_kind cmd = a->kind == CMD_EXPLAIN ? CMD_EXPLAIN : strcmp(kind, "deploy") == 0 ? CMD_DEPLOY : CMD_ROLLBACK;
    create_job *j = new_job(sh, a, kind, cmd);
    if (!j) return;
    if (strcmp(kind, "deploy") == 0) {
        snprintf(j->version, sizeof(j->version), "%s", a->version);
        snprintf(j->to_image, sizeof(j->to_image), "%s:%s", job->image, a->version);
    } else if (a->job_version >= 0) {
        snprintf(j->version, sizeof(j->version), "#%lld", (long long)a->job_version);   /* the worker finds the image */
    } else {
        snprintf(j->version, sizeof(j->version), "%s", a->version);
    }
    sh->inflight++;
    /* The fast idempotency check first (a repeat is answered without PostgreSQL); without Redis, straight on. */
    if (j->cmd == CMD_EXPLAIN || !sh->qa || queue_async_idem_get(sh->qa, j->idem, idem_checked, j) != QUEUE_OK)
        idem_checked(j, QUEUE_OK, "");
}

/* ---- status: a task for a worker (bots hold no Nomad token) ---- */

static void task_added(void *ud, int code, const char *id) {
    shell *sh = ud;
    (void)id;
    sh->inflight--;
    if (code != QUEUE_OK) {
        sh->tasks--;
        sayf(sh, "error: this needs a worker, and Redis is unavailable\n");
        sh->any_failed = true;
    }
    check_done(sh);
}

static void plan_added(void *ud, int code, const char *id) {
    shell *sh = ud;
    (void)id;
    sh->inflight--;
    if (code != QUEUE_OK) sayf(sh, "note: the plan waits for Redis; approvals still work\n");
    check_done(sh);
}

/* A request waiting for approvals gets its Nomad plan from a worker; the plan
 * arrives as an event on this session's stream. Nothing waits for it. */
static void start_plan(shell *sh, int64_t id) {
    char task_id[48];
    snprintf(task_id, sizeof(task_id), "%s-%u", sh->session, ++sh->task_seq);
    json_object *t = json_object_new_object();
    json_object_object_add(t, "kind", json_object_new_string("plan"));
    json_object_object_add(t, "req", json_object_new_int64(id));
    json_object_object_add(t, "route", json_object_new_string(sh->route));
    if (sh->qa && queue_async_task_add(sh->qa, task_id, json_object_to_json_string_ext(t, JSON_C_TO_STRING_PLAIN),
                                       plan_added, sh) == QUEUE_OK)
        sh->inflight++;
    json_object_put(t);
}

/* promote JOB from SRC to ENV: first the source's evidence from a worker (bots
 * hold no Nomad token), then the request, bound to the image the source runs. */
static void start_promote(shell *sh, const cmd_action *a) {
    /* explain promote takes the same evidence and then only explains. */
    create_job *j = new_job(sh, a, "promote", a->kind == CMD_EXPLAIN ? CMD_EXPLAIN : CMD_PROMOTE);
    if (!j) return;
    snprintf(j->task, sizeof(j->task), "%s-%u", sh->session, ++sh->task_seq);
    json_object *t = json_object_new_object();
    json_object_object_add(t, "kind", json_object_new_string("evidence"));
    json_object_object_add(t, "job", json_object_new_string(a->job));
    json_object_object_add(t, "env", json_object_new_string(a->from_env));
    json_object_object_add(t, "route", json_object_new_string(sh->route));
    int rc = sh->qa ? queue_async_task_add(sh->qa, j->task, json_object_to_json_string_ext(t, JSON_C_TO_STRING_PLAIN),
                                           task_added, sh)
                    : QUEUE_ERR_CONNECT;
    json_object_put(t);
    if (rc != QUEUE_OK) {
        sayf(sh, "error: promote needs a worker to read the source, and Redis is unavailable\n");
        config_free(j->cfg);
        free(j);
        sh->any_failed = true;
        return;
    }
    sh->inflight++;
    sh->tasks++;
    j->next = sh->promotes;
    sh->promotes = j;
}

/* The evidence arrived: decide and record the promote. */
static void promote_evidence(shell *sh, const json_object *ev) {
    json_object *v;
    const char *task = json_object_object_get_ex(ev, "task", &v) ? json_object_get_string(v) : "";
    create_job **pp = &sh->promotes;
    while (*pp && strcmp((*pp)->task, task) != 0) pp = &(*pp)->next;
    if (!*pp) return;
    create_job *j = *pp;
    *pp = j->next;
    j->ev.known = json_object_object_get_ex(ev, "known", &v) && json_object_get_boolean(v);
    snprintf(j->ev.image, sizeof(j->ev.image), "%s",
             json_object_object_get_ex(ev, "image", &v) ? json_object_get_string(v) : "");
    j->ev.status = json_object_object_get_ex(ev, "status", &v) ? (enum gov_deploy_status)json_object_get_int(v)
                                                                : GOV_DEPLOY_UNKNOWN;
    j->ev.healthy = json_object_object_get_ex(ev, "healthy", &v) && json_object_get_boolean(v);
    j->ev.healthy_since = json_object_object_get_ex(ev, "healthy_since", &v) ? json_object_get_int64(v) : 0;
    snprintf(j->ev_deployment, sizeof(j->ev_deployment), "%s",
             json_object_object_get_ex(ev, "deployment", &v) ? json_object_get_string(v) : "");
    /* The request records the image it promotes and, as its version, that image's tag. */
    snprintf(j->to_image, sizeof(j->to_image), "%s", j->ev.image);
    const char *colon = strrchr(j->ev.image, ':'), *slash = strrchr(j->ev.image, '/');
    snprintf(j->version, sizeof(j->version), "%s", colon && (!slash || colon > slash) ? colon + 1 : "");
    sh->inflight++;
    if (j->cmd == CMD_EXPLAIN || !sh->qa || queue_async_idem_get(sh->qa, j->idem, idem_checked, j) != QUEUE_OK)
        idem_checked(j, QUEUE_OK, "");
}

/* approve / reject / cancel ID, lock / unlock ENV: decided and recorded on the thread pool. */
static void start_govern(shell *sh, const cmd_action *a) {
    create_job *j = new_job(sh, a, "", a->kind);
    if (!j) return;
    j->state = "";
    if (uv_queue_work(sh->loop, &j->work, create_work, create_done) != 0) {
        config_free(j->cfg);
        free(j);
        sayf(sh, "error: cannot schedule it\n");
        return;
    }
    sh->inflight++;
}

/* status and the actions on a running deployment (canary promote|fail,
 * pause, resume): a task for a worker; the answer comes back as an event. */
static void start_task(shell *sh, const char *kind, const char *action, const cmd_action *a) {
    char task_id[48];
    snprintf(task_id, sizeof(task_id), "%s-%u", sh->session, ++sh->task_seq);
    json_object *t = json_object_new_object();
    json_object_object_add(t, "kind", json_object_new_string(kind));
    if (action) json_object_object_add(t, "action", json_object_new_string(action));
    json_object_object_add(t, "job", json_object_new_string(a->job));
    json_object_object_add(t, "env", json_object_new_string(a->env));
    json_object_object_add(t, "route", json_object_new_string(sh->route));
    json_object_object_add(t, "actor", json_object_new_string(sh->actor));
    json_object_object_add(t, "channel", json_object_new_string(SHELL_CHANNEL));
    if (sh->person) json_object_object_add(t, "person", json_object_new_string(sh->person));
    int rc = queue_async_task_add(sh->qa, task_id,
                                  json_object_to_json_string_ext(t, JSON_C_TO_STRING_PLAIN), task_added, sh);
    json_object_put(t);
    if (rc != QUEUE_OK) {
        sayf(sh, "error: this needs a worker, and Redis is unavailable\n");
        sh->any_failed = true;
        return;
    }
    sh->inflight++;
    sh->tasks++;
}

/* ---- history and audit: read from PostgreSQL on the thread pool ---- */

#define TRAIL_PAGE 100   /* events shown in chat; the rest is one command away */

typedef struct read_job {
    uv_work_t work;
    shell *sh;
    cmd_action a;
    nm_buf out;          /* the answer, built on the pool thread */
} read_job;

static int history_row(const audit_request *r, void *arg) {
    render_history_line(r, arg);
    return 0;
}

typedef struct trail_ctx {
    nm_buf *out;
    int64_t shown, more;
} trail_ctx;

static int trail_row(const audit_row *row, void *arg) {
    trail_ctx *t = arg;
    if (t->shown < TRAIL_PAGE) {
        render_trail_event(row, t->out);
        t->shown++;
    } else {
        t->more++;
    }
    return 0;
}

static void read_work(uv_work_t *w) {
    read_job *j = w->data;
    char err[256];
    audit_db *db = dbpool_get(j->sh->db, err, sizeof(err));
    if (!db) {
        nm_buf_printf(&j->out, "error: PostgreSQL is unavailable; try again\n");
        return;
    }
    int rc;
    if (j->a.kind == CMD_HISTORY) {
        int limit = j->a.limit > 0 ? (j->a.limit < AUDIT_HISTORY_MAX ? j->a.limit : AUDIT_HISTORY_MAX) : 10;
        nm_buf_printf(&j->out, "history of %s%s%s (newest first):\n", j->a.job, j->a.env[0] ? " in " : "", j->a.env);
        size_t before = j->out.len;
        rc = audit_history(db, j->a.job, j->a.env[0] ? j->a.env : NULL, limit, history_row, &j->out);
        if (rc == AUDIT_OK && j->out.len == before) nm_buf_appends(&j->out, "  no requests yet\n");
    } else {
        int64_t id = 0;
        rc = audit_lookup(db, j->a.ref, &id);
        audit_request r;
        if (rc == AUDIT_ERR_NOT_FOUND) {
            nm_buf_printf(&j->out, "no record of %s\n", j->a.ref);
            rc = AUDIT_OK;
        } else if (rc == AUDIT_OK && (rc = audit_request_get(db, id, &r)) == AUDIT_OK) {
            nm_buf_appends(&j->out, "audit trail of ");
            render_history_line(&r, &j->out);
            trail_ctx t = {.out = &j->out};
            rc = audit_trail(db, id, trail_row, &t);
            if (t.more > 0)
                nm_buf_printf(&j->out, "  ... %" PRId64 " more events: nomatron audit show --request D-%" PRId64 "\n",
                              t.more, id);
        }
    }
    if (rc != AUDIT_OK) {
        nm_buf_reset(&j->out);
        nm_buf_printf(&j->out, "error: %s: %s\n", audit_strerror(rc), db->errstr);
    }
    dbpool_put(j->sh->db, db, rc == AUDIT_ERR_CONNECT);
}

static void read_done(uv_work_t *w, int status) {
    read_job *j = w->data;
    shell *sh = j->sh;
    sh->inflight--;
    if (status == 0) say(sh, &j->out);
    nm_buf_free(&j->out);
    free(j);
    check_done(sh);
}

static void start_read(shell *sh, const cmd_action *a) {
    read_job *j = calloc(1, sizeof(*j));
    if (!j) {
        sayf(sh, "error: out of memory\n");
        return;
    }
    j->sh = sh;
    j->a = *a;
    nm_buf_init(&j->out, 1024 * 1024);   /* a page of events fits many times over */
    j->work.data = j;
    if (uv_queue_work(sh->loop, &j->work, read_work, read_done) != 0) {
        nm_buf_free(&j->out);
        free(j);
        sayf(sh, "error: cannot schedule the lookup\n");
        return;
    }
    sh->inflight++;
}

/* ---- one line of input ---- */

static bool valid_user_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 64) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-' || *s == '.'))
            return false;
    return true;
}

/* The actor's person, borrowed from the snapshot (NULL if not under people:). */
static const char *person_of(const config *cfg, const char *identity) {
    const config_person *p = policy_person(cfg, identity);
    return p ? p->name : NULL;
}

static int set_actor(shell *sh, const char *name) {
    if (!valid_user_name(name)) return -1;
    snprintf(sh->actor, sizeof(sh->actor), "shell:%s", name);
    sh->person = person_of(sh->cfg, sh->actor);
    return 0;
}

static void handle_line(shell *sh, char *text, size_t len) {
    while (len && (text[len - 1] == '\r' || text[len - 1] == ' ' || text[len - 1] == '\t')) text[--len] = '\0';
    size_t skip = 0;
    while (skip < len && (text[skip] == ' ' || text[skip] == '\t')) skip++;
    text += skip;
    len -= skip;
    if (len == 0 || text[0] == '#') return;

    if (strncmp(text, ":as", 3) == 0 && (text[3] == ' ' || text[3] == '\0')) {
        const char *name = text + 3;
        while (*name == ' ') name++;
        if (!sh->cfg->shell_allow_as)
            sayf(sh, "error: :as is refused; set shell.allow_as: true (developer machines only)\n");
        else if (set_actor(sh, name) != 0)
            sayf(sh, "error: :as needs a user name of letters, digits, '_', '-' or '.'\nusage: :as NAME\n");
        else {
            nm_buf b;
            nm_buf_init(&b, 0);
            nm_buf_printf(&b, "you are now %s\n", sh->actor);
            say(sh, &b);
            nm_buf_free(&b);
        }
        return;
    }
    if (strcmp(text, ":quit") == 0 || strcmp(text, "exit") == 0 || strcmp(text, "quit") == 0) {
        sh->eof = true;
        return;
    }

    cmd_action a;
    cmd_error err;
    nm_buf out;
    nm_buf_init(&out, 0);
    if (cmd_parse(text, len, &a, &err) != CMD_OK || cmd_check(&a, sh->cfg, &err) != CMD_OK) {
        render_cmd_error(&err, &out);
        say(sh, &out);
        nm_buf_free(&out);
        return;
    }
    switch (a.kind) {
    case CMD_HELP: {
        char help[8192];
        cmd_help_text(a.topic, help, sizeof(help));
        nm_buf_printf(&out, "%s%s", help, help[0] && help[strlen(help) - 1] == '\n' ? "" : "\n");
        say(sh, &out);
        break;
    }
    case CMD_ENVS:
        render_envs(sh->cfg, &out);
        say(sh, &out);
        break;
    case CMD_JOBS:
        render_jobs(sh->cfg, &out);
        say(sh, &out);
        break;
    case CMD_WHOAMI:
        render_whoami(sh->cfg, sh->actor, SHELL_CHANNEL, &out);
        say(sh, &out);
        break;
    case CMD_DEPLOY:
        nm_log(NM_LOG_INFO, "deploy requested", "job", a.job, "env", a.env, "actor", sh->actor, NULL);
        start_request(sh, "deploy", &a);
        break;
    case CMD_PROMOTE:
        nm_log(NM_LOG_INFO, "promote requested", "job", a.job, "env", a.env, "from", a.from_env, "actor", sh->actor,
               NULL);
        start_promote(sh, &a);
        break;
    case CMD_ROLLBACK:
        nm_log(NM_LOG_INFO, "rollback requested", "job", a.job, "env", a.env, "actor", sh->actor, NULL);
        start_request(sh, "rollback", &a);
        break;
    case CMD_STATUS:
        start_task(sh, "status", NULL, &a);
        break;
    case CMD_HISTORY:
    case CMD_AUDIT:
        start_read(sh, &a);
        break;
    case CMD_APPROVE:
    case CMD_REJECT:
    case CMD_CANCEL:
    case CMD_LOCK:
    case CMD_UNLOCK:
        start_govern(sh, &a);
        break;
    case CMD_EXPLAIN:
        if (a.explained == CMD_DEPLOY) start_request(sh, "deploy", &a);
        else start_promote(sh, &a);
        break;
    case CMD_CANARY:
        start_task(sh, "action", strcmp(a.sub, "promote") == 0 ? "canary_promote" : "canary_fail", &a);
        break;
    case CMD_PAUSE:
        start_task(sh, "action", "pause", &a);
        break;
    case CMD_RESUME:
        start_task(sh, "action", "resume", &a);
        break;
    default:
        sayf(sh, "error: that command is not available in this build yet\n");
        break;
    }
    nm_buf_free(&out);
}

static void too_long(shell *sh) {
    cmd_error err = {.code = CMD_ERR_TOO_LONG, .usage = cmd_general_usage()};
    snprintf(err.message, sizeof(err.message), "command text is over %d bytes; nothing was done", CMD_MAX_TEXT);
    nm_buf out;
    nm_buf_init(&out, 0);
    render_cmd_error(&err, &out);
    say(sh, &out);
    nm_buf_free(&out);
}

/* Splits input into lines; a line over the ceiling is refused whole. */
static void feed(shell *sh, const char *data, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (data[i] == '\n') {
            sh->lineno++;
            if (sh->line_too_long) too_long(sh);
            else if (sh->line.len) handle_line(sh, sh->line.data, sh->line.len);
            nm_buf_reset(&sh->line);
            sh->line_too_long = false;
            if (sh->eof) return;   /* :quit; the rest of the input is not read */
            prompt(sh);
            continue;
        }
        if (sh->line_too_long) continue;
        if (nm_buf_append(&sh->line, &data[i], 1) != NM_BUF_OK) {
            sh->line_too_long = true;
            nm_buf_reset(&sh->line);
        }
    }
}

static void on_timeout(uv_timer_t *t);
static void on_refresh(uv_timer_t *t);

static void input_ended(shell *sh) {
    if (sh->line.len || sh->line_too_long) feed(sh, "\n", 1);   /* a last line without a newline */
    sh->eof = true;
    if (sh->interactive) sayf(sh, "\n");
    if (sh->timeout_s > 0) uv_timer_start(&sh->timeout_timer, on_timeout, (uint64_t)sh->timeout_s * 1000, 0);
    uv_timer_start(&sh->refresh_timer, on_refresh, SHELL_REFRESH_MS, SHELL_REFRESH_MS);
    check_done(sh);
}

static void stop_input(shell *sh);

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)h;
    (void)suggested;
    static char storage[65536];   /* one read at a time on the loop thread */
    *buf = uv_buf_init(storage, sizeof(storage));
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    shell *sh = s->data;
    if (n > 0) {
        feed(sh, buf->base, (size_t)n);
        if (sh->eof) {   /* :quit */
            stop_input(sh);
            input_ended(sh);
        }
    } else if (n < 0) {
        stop_input(sh);
        input_ended(sh);
    }
}

static void file_read_cb(uv_fs_t *req) {
    shell *sh = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    if (n > 0 && !sh->quitting) {
        feed(sh, sh->file_buf, (size_t)n);
        if (!sh->eof) {
            uv_buf_t b = uv_buf_init(sh->file_buf, sizeof(sh->file_buf));
            if (uv_fs_read(sh->loop, &sh->file_req, 0, &b, 1, -1, file_read_cb) == 0) return;
        }
    }
    if (!sh->quitting) input_ended(sh);
}

static void stop_input(shell *sh) {
    if (sh->in_stream && !uv_is_closing((uv_handle_t *)&sh->in)) {
        uv_read_stop((uv_stream_t *)&sh->in);
        uv_close((uv_handle_t *)&sh->in, NULL);
    }
}

static int start_input(shell *sh) {
    uv_handle_type type = uv_guess_handle(0);
    int rc = 0;
    sh->interactive = type == UV_TTY;
    if (type == UV_TTY) {
        rc = uv_tty_init(sh->loop, &sh->in.tty, 0, 1);
        sh->in_stream = rc == 0;
    } else if (type == UV_NAMED_PIPE || type == UV_TCP) {
        rc = uv_pipe_init(sh->loop, &sh->in.pipe, 0);
        if (rc == 0) rc = uv_pipe_open(&sh->in.pipe, 0);
        sh->in_stream = rc == 0;
    }
    if (sh->in_stream) {
        ((uv_handle_t *)&sh->in)->data = sh;
        return uv_read_start((uv_stream_t *)&sh->in, alloc_cb, read_cb);
    }
    /* A regular file (or /dev/null): libuv reads files on its thread pool. */
    sh->file_req.data = sh;
    uv_buf_t b = uv_buf_init(sh->file_buf, sizeof(sh->file_buf));
    return uv_fs_read(sh->loop, &sh->file_req, 0, &b, 1, -1, file_read_cb);
}

/* ---- waiting at end of input ---- */

static void check_done(shell *sh) {
    if (!sh->eof || sh->quitting || sh->inflight > 0 || sh->tasks > 0) return;
    for (tracked *t = sh->reqs; t; t = t->next)
        if (!is_final(t->state)) return;
    shell_quit(sh, sh->any_failed ? 1 : 0);
}

static void on_timeout(uv_timer_t *t) {
    shell *sh = t->data;
    nm_buf out;
    nm_buf_init(&out, 0);
    nm_buf_printf(&out, "timed out after %d s waiting for:", sh->timeout_s);
    for (tracked *r = sh->reqs; r; r = r->next)
        if (!is_final(r->state)) nm_buf_printf(&out, " D-%lld (%s)", (long long)r->id, r->state);
    if (sh->tasks) nm_buf_printf(&out, " %d status answer(s)", sh->tasks);
    nm_buf_appends(&out, "\n");
    say(sh, &out);
    nm_buf_free(&out);
    shell_quit(sh, 124);
}

/* Events can be lost (Redis restarted while we waited): PostgreSQL is the
 * source of truth, so re-read the states of what we still wait for. */
typedef struct refresh_job {
    uv_work_t work;
    shell *sh;
    size_t n;
    int64_t ids[64];
    char states[64][AUDIT_STATE_LEN];
} refresh_job;

static void refresh_work(uv_work_t *w) {
    refresh_job *j = w->data;
    char err[256];
    audit_db *db = dbpool_get(j->sh->db, err, sizeof(err));
    if (!db) return;
    bool broken = false;
    for (size_t i = 0; i < j->n; i++) {
        audit_request r;
        int rc = audit_request_get(db, j->ids[i], &r);
        if (rc == AUDIT_OK) snprintf(j->states[i], sizeof(j->states[i]), "%s", r.state);
        if (rc == AUDIT_ERR_CONNECT) broken = true;
    }
    dbpool_put(j->sh->db, db, broken);
}

static void refresh_done(uv_work_t *w, int status) {
    refresh_job *j = w->data;
    shell *sh = j->sh;
    sh->inflight--;
    for (size_t i = 0; status == 0 && i < j->n; i++) {
        tracked *t = find_tracked(sh, j->ids[i]);
        if (t && j->states[i][0] && is_final(j->states[i]) && !is_final(t->state)) {
            nm_buf out;
            nm_buf_init(&out, 0);
            nm_buf_printf(&out, "D-%lld %s\n", (long long)t->id, j->states[i]);
            say(sh, &out);
            nm_buf_free(&out);
            set_state(sh, t, j->states[i]);
        }
    }
    free(j);
    check_done(sh);
}

static void on_refresh(uv_timer_t *t) {
    shell *sh = t->data;
    if (sh->quitting) return;
    refresh_job *j = calloc(1, sizeof(*j));
    if (!j) return;
    j->sh = sh;
    for (tracked *r = sh->reqs; r && j->n < 64; r = r->next)
        if (!is_final(r->state)) j->ids[j->n++] = r->id;
    if (j->n == 0) {
        free(j);
        return;
    }
    j->work.data = j;
    if (uv_queue_work(sh->loop, &j->work, refresh_work, refresh_done) == 0) sh->inflight++;
    else free(j);
}

/* ---- lifecycle ---- */

static void on_signal(uv_signal_t *s, int signum) {
    shell *sh = s->data;
    nm_log(NM_LOG_INFO, "signal received; stopping", "signal", signum == SIGINT ? "INT" : "TERM", NULL);
    shell_quit(sh, sh->exit_code ? sh->exit_code : (signum == SIGINT ? 130 : 143));
}

/* A new snapshot: later lines use it; requests already recorded keep theirs. */
static void on_reloaded(void *ud, bool ok) {
    shell *sh = ud;
    if (!ok) return;
    config_free(sh->cfg);
    sh->cfg = config_holder_get(sh->holder);
    sh->person = person_of(sh->cfg, sh->actor);
}

static void on_sighup(uv_signal_t *s, int signum) {
    (void)signum;
    shell *sh = s->data;
    if (reload_start(sh->loop, sh->holder, on_reloaded, sh) != 0)
        nm_log(NM_LOG_ERROR, "configuration reload could not start", NULL);
}

static void shell_quit(shell *sh, int code) {
    if (sh->quitting) return;
    sh->quitting = true;
    sh->exit_code = code;
    stop_input(sh);
    uv_timer_stop(&sh->timeout_timer);
    uv_timer_stop(&sh->refresh_timer);
    uv_close((uv_handle_t *)&sh->timeout_timer, NULL);
    uv_close((uv_handle_t *)&sh->refresh_timer, NULL);
    uv_close((uv_handle_t *)&sh->sigint, NULL);
    uv_close((uv_handle_t *)&sh->sigterm, NULL);
    uv_close((uv_handle_t *)&sh->sighup, NULL);
    if (sh->qa) queue_async_close(sh->qa);
    sh->qa = NULL;
}

static void make_session(char *out, size_t outlen) {
    unsigned char raw[8];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        uint64_t x = (uint64_t)getpid() ^ (uint64_t)uv_hrtime();
        memcpy(raw, &x, sizeof(raw));
    }
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (size_t i = 0; i < sizeof(raw) && n + 2 < outlen; i++) {
        out[n++] = hex[raw[i] >> 4];
        out[n++] = hex[raw[i] & 15];
    }
    out[n] = '\0';
}

int shell_run(config_holder *holder, const shell_opts *opts) {
    shell *sh = calloc(1, sizeof(*sh));
    if (!sh) return 1;
    sh->loop = uv_default_loop();
    sh->holder = holder;
    sh->cfg = config_holder_get(holder);
    const config *cfg = sh->cfg;
    sh->timeout_s = opts->timeout_s;
    make_session(sh->session, sizeof(sh->session));
    snprintf(sh->route, sizeof(sh->route), "shell:%s", sh->session);
    nm_buf_init(&sh->line, SHELL_LINE_MAX);

    const char *user = opts->as;
    if (user && !cfg->shell_allow_as) {
        fprintf(stderr, "nomatron shell: --as is refused: set shell.allow_as: true (developer machines only)\n");
        config_free(sh->cfg);
        free(sh);
        return 2;
    }
    if (!user) {
        struct passwd *pw = getpwuid(geteuid());
        user = pw ? pw->pw_name : "unknown";
    }
    if (set_actor(sh, user) != 0) {
        fprintf(stderr, "nomatron shell: '%s' is not a valid user name\n", user);
        config_free(sh->cfg);
        free(sh);
        return 2;
    }

    char err[256];
    sh->db = dbpool_new(cfg->postgres, 2);
    sh->qa = queue_async_new(sh->loop, cfg->redis, NULL, NULL, err, sizeof(err));
    if (!sh->db || !sh->qa) {
        fprintf(stderr, "nomatron shell: %s\n", sh->qa ? "out of memory" : err);
        dbpool_free(sh->db);
        config_free(sh->cfg);
        free(sh);
        return 2;
    }
    queue_async_follow(sh->qa, sh->route, on_event, sh);

    uv_timer_init(sh->loop, &sh->timeout_timer);
    uv_timer_init(sh->loop, &sh->refresh_timer);
    sh->timeout_timer.data = sh->refresh_timer.data = sh;
    uv_signal_init(sh->loop, &sh->sigint);
    uv_signal_init(sh->loop, &sh->sigterm);
    uv_signal_init(sh->loop, &sh->sighup);
    sh->sigint.data = sh->sigterm.data = sh->sighup.data = sh;
    uv_signal_start(&sh->sigint, on_signal, SIGINT);
    uv_signal_start(&sh->sigterm, on_signal, SIGTERM);
    uv_signal_start(&sh->sighup, on_sighup, SIGHUP);

    int nworkers = opts->workers >= 0 ? opts->workers : cfg->workers;
    if (nworkers > 0) {
        sh->workers = worker_pool_start(holder, nworkers, err, sizeof(err));
        if (!sh->workers) fprintf(stderr, "nomatron shell: %s\n", err);
    }


    if (start_input(sh) != 0) {
        fprintf(stderr, "nomatron shell: cannot read standard input\n");
        shell_quit(sh, 2);
    } else if (sh->interactive) {
        nm_buf b;
        nm_buf_init(&b, 0);
        nm_buf_printf(&b, "nomatron shell — you are %s. Type help, or deploy JOB VERSION to ENV.\n", sh->actor);
        say(sh, &b);
        nm_buf_free(&b);
        prompt(sh);
    }

    uv_run(sh->loop, UV_RUN_DEFAULT);

    worker_pool_stop(sh->workers);
    dbpool_free(sh->db);
    nm_buf_free(&sh->line);
    while (sh->promotes) {
        create_job *j = sh->promotes;
        sh->promotes = j->next;
        config_free(j->cfg);
        free(j);
    }
    while (sh->reqs) {
        tracked *t = sh->reqs;
        sh->reqs = t->next;
        free(t);
    }
    int code = sh->exit_code;
    uv_loop_close(sh->loop);
    config_free(sh->cfg);
    free(sh);
    return code;
}
