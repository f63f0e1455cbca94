#include "core.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "govern.h"
#include "log.h"
#include "policy.h"
#include "queue.h"
#include "render.h"
#include "str.h"

#define TRAIL_PAGE 100   /* events shown in chat; the rest is one command away */

/* ---- the asker: who a command answers, shared by its async steps ---- */

/* Each async step of a command holds a reference; the last release calls
 * done(). Everything inbound is copied: the adapter's buffers are gone by
 * the time PostgreSQL answers. */
typedef struct asker {
    int refs;
    bot_core *core;
    const bot_replier *to;
    void *ud;
    char platform[16];
    char team[64];
    char channel[BOT_ID_LEN];
    char actor[BOT_ID_LEN];
    char person[CONFIG_MAX_NAME + 1];   /* "" when the actor is not under people: */
    char idem[QUEUE_IDEM_KEY_MAX];
    char route[96];
    char message_ref[64];
    char permalink[512];
} asker;

/* A task a worker answers on the core's answer route. */
typedef struct task_wait {
    struct task_wait *next;
    char id[48];
    asker *a;
    struct create_job *promote;   /* evidence for a promote (or explain promote), else NULL */
    bool adding;                  /* the XADD's callback has not run yet: it frees a task answered meanwhile */
    bool answered;                /* answered (or failed) and off the list */
} task_wait;

struct bot_core {
    uv_loop_t *loop;
    config *cfg;
    queue_async *qa;
    dbpool *db;
    char route[96];
    unsigned task_seq;
    task_wait *tasks;
    int askers;   /* askers alive: commands not yet done */
};


static asker *asker_new(bot_core *c, const bot_inbound *in, const bot_replier *to, void *ud) {
    asker *a = calloc(1, sizeof(*a));
    if (!a) return NULL;
    a->refs = 1;
    a->core = c;
    a->to = to;
    a->ud = ud;
    nm_str_copy(a->platform, sizeof(a->platform), in->platform);
    nm_str_copy(a->team, sizeof(a->team), in->team);
    nm_str_copy(a->channel, sizeof(a->channel), in->channel);
    nm_str_copy(a->actor, sizeof(a->actor), in->actor);
    nm_str_copy(a->idem, sizeof(a->idem), in->idem_key);
    nm_str_copy(a->route, sizeof(a->route), in->route);
    nm_str_copy(a->message_ref, sizeof(a->message_ref), in->message_ref);
    nm_str_copy(a->permalink, sizeof(a->permalink), in->permalink);
    const config_person *p = policy_person(c->cfg, a->actor);
    if (p) nm_str_copy(a->person, sizeof(a->person), p->name);
    c->askers++;
    return a;
}

static asker *hold(asker *a) {
    a->refs++;
    return a;
}

static void release(asker *a) {
    if (--a->refs > 0) return;
    a->core->askers--;
    a->to->done(a->ud);
    free(a);
}

static void say_reply(asker *a, enum bot_reply_kind kind, const char *text, bool failed, bool pre,
                      const bot_request_facts *req) {
    bot_reply r = {.kind = kind, .text = text ? text : "", .failed = failed, .preformatted = pre, .req = req};
    a->to->reply(a->ud, &r);
}

static void answer(asker *a, const char *text, bool failed) { say_reply(a, BOT_REPLY_ANSWER, text, failed, false, NULL); }

static void answer_buf(asker *a, const nm_buf *b, bool failed, bool pre) {
    if (b->len) say_reply(a, BOT_REPLY_ANSWER, b->data, failed, pre, NULL);
}

/* ---- PostgreSQL-decided commands: requests, approvals, locks, explain ---- */

typedef struct create_job {
    uv_work_t work;
    bot_core *core;
    asker *a;
    config *cfg;                         /* the snapshot it is decided under (a reference) */
    cmd_action act;
    const char *kind;                    /* "deploy", "rollback", "promote", or "" */
    enum cmd_kind cmd;                   /* CMD_DEPLOY, CMD_ROLLBACK, CMD_PROMOTE, or CMD_APPROVE / REJECT /
                                            CANCEL / LOCK / UNLOCK / EXPLAIN */
    gov_verdict v;
    bool queued;                         /* approve: the request is complete and queued */
    char text[2048];                     /* explain's answer */
    gov_evidence ev;                     /* promote: what the source runs now (a worker's answer) */
    char ev_deployment[64];
    char version[CMD_MAX_VERSION + 2];   /* deploy: the tag; rollback: tag, "#N" or "" (previous stable) */
    char to_image[AUDIT_IMAGE_LEN];
    int rc;
    int64_t id;
    bool existed;
    char err[256];
} create_job;

static void job_free(create_job *j) {
    config_free(j->cfg);
    release(j->a);
    free(j);
}

static void create_work(uv_work_t *w) {
    create_job *j = w->data;
    asker *a = j->a;
    audit_db *db = dbpool_get(j->core->db, j->err, sizeof(j->err));
    if (!db) {
        j->rc = AUDIT_ERR_CONNECT;
        return;
    }
    const char *person = a->person[0] ? a->person : NULL;
    govern_in in = {
        .kind = j->cmd == CMD_ROLLBACK || strcmp(j->kind, "rollback") == 0 ? GOV_KIND_ROLLBACK
                : strcmp(j->kind, "promote") == 0                         ? GOV_KIND_PROMOTE
                                                                          : GOV_KIND_DEPLOY,
        .from_env = j->act.from_env, .evidence = &j->ev,
        .env = j->act.env, .job = j->act.job, .version = j->version, .to_image = j->to_image, .canary = j->act.canary,
        .user_reason = j->act.reason[0] ? j->act.reason : NULL,
        .emergency = j->act.emergency[0] ? j->act.emergency : NULL,
        .actor = a->actor, .person = person, .idem_key = a->idem[0] ? a->idem : NULL,
        .origin = {.platform = a->platform, .team = a->team[0] ? a->team : NULL, .channel = a->channel,
                   .message_ref = a->message_ref[0] ? a->message_ref : NULL,
                   .permalink = a->permalink[0] ? a->permalink : NULL, .route = a->route},
    };
    const char *why = j->act.reason[0] ? j->act.reason : j->act.emergency;
    switch (j->cmd) {
    case CMD_DEPLOY:
    case CMD_PROMOTE:
    case CMD_ROLLBACK: j->rc = govern_request(db, j->cfg, &in, &j->v, &j->id, &j->existed); break;
    case CMD_EXPLAIN: j->rc = govern_explain(db, j->cfg, &in, j->text, sizeof(j->text), &j->v); break;
    case CMD_APPROVE:
        j->rc = govern_decide(db, j->cfg, GOVERN_APPROVE, j->act.id, a->actor, person, a->channel, NULL, &j->v,
                              &j->queued);
        break;
    case CMD_REJECT:
    case CMD_CANCEL:
        j->rc = govern_decide(db, j->cfg, j->cmd == CMD_REJECT ? GOVERN_REJECT : GOVERN_CANCEL, j->act.id, a->actor,
                              person, a->channel, why, &j->v, &j->queued);
        break;
    case CMD_LOCK:
    case CMD_UNLOCK:
        j->rc = govern_lock(db, j->cfg, j->act.env, j->cmd == CMD_LOCK, a->actor, person, a->channel, j->act.reason,
                            &j->v);
        break;
    default: j->rc = AUDIT_ERR_INVALID; break;
    }
    if (j->rc == AUDIT_ERR_NOT_FOUND) snprintf(j->err, sizeof(j->err), "no request D-%lld", (long long)j->act.id);
    else if (j->rc != AUDIT_OK) snprintf(j->err, sizeof(j->err), "%s", db->errstr);
    dbpool_put(j->core->db, db, j->rc == AUDIT_ERR_CONNECT);
}

typedef struct add_ctx {
    asker *a;
    int64_t id;
} add_ctx;

static void work_added(void *ud, int code, const char *entry) {
    add_ctx *x = ud;
    (void)entry;
    if (code != QUEUE_OK) {
        char line[160];
        snprintf(line, sizeof(line), "D-%lld is recorded but not yet queued (Redis: %s); it runs when Redis returns\n",
                 (long long)x->id, queue_strerror(code));
        answer(x->a, line, false);
    }
    release(x->a);
    free(x);
}

/* Puts a queued request on the work stream; says so if Redis cannot take it now. */
static void enqueue_request(asker *a, int64_t rid, nm_buf *out) {
    bot_core *c = a->core;
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)rid);
    add_ctx *x = malloc(sizeof(*x));
    if (x) {
        x->a = hold(a);
        x->id = rid;
    }
    int rc = !x ? QUEUE_ERR_NOMEM : c->qa ? queue_async_work_add(c->qa, "request", id, work_added, x) : QUEUE_ERR_CONNECT;
    if (rc != QUEUE_OK) {
        if (x) {
            release(x->a);
            free(x);
        }
        nm_buf_printf(out, "D-%lld is recorded but not yet queued (Redis: %s); it runs when Redis returns\n",
                      (long long)rid, queue_strerror(rc));
    }
}

static void plan_added(void *ud, int code, const char *id) {
    asker *a = ud;
    (void)id;
    if (code != QUEUE_OK) answer(a, "note: the plan waits for Redis; approvals still work\n", false);
    release(a);
}

/* A request waiting for approvals gets its Nomad plan from a worker; the plan
 * arrives as an event on the request's route. Nothing waits for it. */
static void start_plan(asker *a, int64_t id) {
    bot_core *c = a->core;
    if (!c->qa) return;
    char task_id[48];
    snprintf(task_id, sizeof(task_id), "%s-%u", c->route, ++c->task_seq);
    json_object *t = json_object_new_object();
    json_object_object_add(t, "kind", json_object_new_string("plan"));
    json_object_object_add(t, "req", json_object_new_int64(id));
    json_object_object_add(t, "route", json_object_new_string(a->route));
    hold(a);
    if (queue_async_task_add(c->qa, task_id, json_object_to_json_string_ext(t, JSON_C_TO_STRING_PLAIN), plan_added,
                             a) != QUEUE_OK)
        release(a);
    json_object_put(t);
}

static void created_request(create_job *j, nm_buf *out) {
    asker *a = j->a;
    const char *state = req_state_name(j->v.next);
    render_request_line(j->id, state, j->kind, j->act.job, j->version, j->act.env, out);
    if (j->v.flags & GOV_F_BREAK_GLASS)
        nm_buf_printf(out, "BREAK-GLASS D-%lld: %s passes a freeze (--emergency \"%s\"); it needs %d approvals\n",
                      (long long)j->id, a->actor, j->act.emergency, j->v.required);
    if (j->cmd == CMD_PROMOTE) {
        char since[32] = "unknown";
        time_t hs = (time_t)j->ev.healthy_since;
        struct tm tm;
        if (hs > 0 && gmtime_r(&hs, &tm)) strftime(since, sizeof(since), "%Y-%m-%d %H:%M:%S UTC", &tm);
        nm_buf_printf(out, "D-%lld evidence: %s runs %s, latest deployment %s%.8s %s, %s since %s\n", (long long)j->id,
                      j->act.from_env, j->ev.image, j->ev_deployment[0] ? "" : "(none)", j->ev_deployment,
                      j->ev.status == GOV_DEPLOY_SUCCESSFUL ? "successful" : "not successful",
                      j->ev.healthy ? "all allocations healthy" : "not all healthy", since);
    }
    if (j->v.next == REQ_PENDING_APPROVAL)
        nm_buf_printf(out, "D-%lld needs %d approval%s: %s\n", (long long)j->id, j->v.required,
                      j->v.required == 1 ? "" : "s", j->v.message);
    char ref[24];
    snprintf(ref, sizeof(ref), "D-%lld", (long long)j->id);
    nm_log(NM_LOG_INFO, "request.created", "req", ref, "job", j->act.job, "env", j->act.env, "actor", a->actor,
           "state", state, NULL);
    if (j->core->qa && a->idem[0]) {
        char rid[24];
        snprintf(rid, sizeof(rid), "%lld", (long long)j->id);
        queue_async_idem_put(j->core->qa, a->idem, rid);
    }
    if (j->v.next == REQ_QUEUED) enqueue_request(a, j->id, out);
    bot_request_facts f = {
        .id = j->id, .kind = j->kind, .job = j->act.job, .version = j->version, .env = j->act.env,
        .from_env = j->act.from_env, .actor = a->actor, .state = state, .required = j->v.required,
        .counted = j->v.counted, .break_glass = (j->v.flags & GOV_F_BREAK_GLASS) != 0,
        .reason = j->act.reason, .emergency = j->act.emergency,
    };
    say_reply(a, BOT_REPLY_REQUEST, out->data ? out->data : "", false, false, &f);
    nm_buf_reset(out);
    /* After the reply: the plan's event must find the request's message already posted. */
    if (j->v.next == REQ_PENDING_APPROVAL && (j->cmd == CMD_DEPLOY || j->cmd == CMD_PROMOTE)) start_plan(a, j->id);
}

static void create_done(uv_work_t *w, int status) {
    create_job *j = w->data;
    asker *a = j->a;
    nm_buf out;
    nm_buf_init(&out, 0);
    bool request = j->cmd == CMD_DEPLOY || j->cmd == CMD_ROLLBACK || j->cmd == CMD_PROMOTE;
    if (j->rc == AUDIT_ERR_NOT_FOUND) {
        nm_buf_printf(&out, "error: %s\n", j->err);
        answer_buf(a, &out, false, false);
    } else if (status != 0 || j->rc != AUDIT_OK) {
        nm_buf_printf(&out, "error: %s (%s); nothing was %s\n", request ? "the request was not recorded" : "not done",
                      j->rc == AUDIT_ERR_CONNECT ? "PostgreSQL is unavailable" : audit_strerror(j->rc),
                      request ? "started" : "changed");
        nm_log(NM_LOG_ERROR, "command not recorded", "job", j->act.job, "env", j->act.env, "actor", a->actor, "error",
               j->err, NULL);
        answer_buf(a, &out, true, false);
    } else if (j->cmd == CMD_EXPLAIN) {
        nm_buf_appends(&out, j->text);
        if (out.len && out.data[out.len - 1] != '\n') nm_buf_appends(&out, "\n");
        answer_buf(a, &out, false, true);
    } else if (j->v.tag != GOV_OK) {
        /* A refusal is an answer (audited), not a failure. */
        nm_buf_printf(&out, "refused: %s [%s]%s%s%s\n", j->v.message, gov_tag_name(j->v.tag),
                      j->v.rule[0] ? " (rule: " : "", j->v.rule, j->v.rule[0] ? ")" : "");
        answer_buf(a, &out, false, false);
    } else if (!request) {
        render_governance(j->cmd, j->act.id, j->act.env, &j->v, j->queued, &out);
        if (j->queued) enqueue_request(a, j->act.id, &out);
        bot_request_facts f = {
            .id = j->cmd == CMD_LOCK || j->cmd == CMD_UNLOCK ? 0 : j->act.id, .env = j->act.env, .actor = a->actor,
            .state = j->queued ? "queued" : j->cmd == CMD_REJECT ? "rejected" : j->cmd == CMD_CANCEL ? "cancelled" : "",
            .required = j->v.required, .counted = j->v.counted, .decision = j->cmd,
            .counted_now = (j->v.flags & GOV_F_COUNTED) != 0, .reason = j->act.reason,
        };
        say_reply(a, BOT_REPLY_DECISION, out.data ? out.data : "", false, false, &f);
    } else if (j->existed) {
        nm_buf_printf(&out, "D-%lld already exists for this input; nothing new was created\n", (long long)j->id);
        answer_buf(a, &out, false, false);
    } else {
        created_request(j, &out);
    }
    nm_buf_free(&out);
    job_free(j);
}

/* A command that PostgreSQL decides on the thread pool, under the snapshot it
 * arrived with. NULL when out of memory (said to the asker). */
static create_job *new_job(asker *a, const cmd_action *act, const char *kind, enum cmd_kind cmd) {
    create_job *j = calloc(1, sizeof(*j));
    if (!j) {
        answer(a, "error: out of memory\n", true);
        return NULL;
    }
    j->core = a->core;
    j->a = hold(a);
    j->act = *act;
    j->cfg = config_ref(a->core->cfg);
    j->kind = kind;
    j->cmd = cmd;
    j->work.data = j;
    return j;
}

static void run_job(create_job *j) {
    if (uv_queue_work(j->core->loop, &j->work, create_work, create_done) != 0) {
        answer(j->a, "error: cannot schedule the command\n", true);
        job_free(j);
    }
}

static void idem_checked(void *ud, int code, const char *existing) {
    create_job *j = ud;
    if (code == QUEUE_OK && existing && *existing) {
        char line[128];
        snprintf(line, sizeof(line), "D-%s already exists for this input; nothing new was created\n", existing);
        answer(j->a, line, false);
        job_free(j);
        return;
    }
    run_job(j);
}

/* The fast idempotency check first (a repeat is answered without
 * PostgreSQL); without Redis, straight on: PostgreSQL's unique key decides. */
static void check_idem_then_run(create_job *j) {
    bot_core *c = j->core;
    if (j->cmd == CMD_EXPLAIN || !c->qa || !j->a->idem[0] ||
        queue_async_idem_get(c->qa, j->a->idem, idem_checked, j) != QUEUE_OK)
        run_job(j);
}

/* deploy and rollback (and explain deploy): recorded in PostgreSQL, then queued. */
static void start_request(asker *a, const char *kind, const cmd_action *act) {
    const config_job *job = config_find_job(a->core->cfg, act->job);
    enum cmd_kind cmd = act->kind == CMD_EXPLAIN ? CMD_EXPLAIN : strcmp(kind, "deploy") == 0 ? CMD_DEPLOY : CMD_ROLLBACK;
    create_job *j = new_job(a, act, kind, cmd);
    if (!j) return;
    if (strcmp(kind, "deploy") == 0) {
        snprintf(j->version, sizeof(j->version), "%s", act->version);
        snprintf(j->to_image, sizeof(j->to_image), "%s:%s", job->image, act->version);
    } else if (act->job_version >= 0) {
        snprintf(j->version, sizeof(j->version), "#%lld", (long long)act->job_version);   /* the worker finds the image */
    } else {
        snprintf(j->version, sizeof(j->version), "%s", act->version);
    }
    check_idem_then_run(j);
}

/* ---- tasks for workers (bots hold no Nomad token) ---- */

static void task_unlink(bot_core *c, task_wait *t) {
    for (task_wait **pp = &c->tasks; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            return;
        }
}

/* The answer can arrive on the event connection before the XADD's reply on
 * the command connection: whichever comes last frees the wait. */
static void task_added(void *ud, int code, const char *id) {
    task_wait *t = ud;
    (void)id;
    t->adding = false;
    if (t->answered) {
        free(t);
        return;
    }
    if (code == QUEUE_OK) return;   /* the answer arrives as an event */
    task_unlink(t->a->core, t);
    answer(t->a, t->promote ? "error: promote needs a worker to read the source, and Redis is unavailable\n"
                            : "error: this needs a worker, and Redis is unavailable\n",
           true);
    if (t->promote) job_free(t->promote);
    release(t->a);
    free(t);
}

/* Puts the task on the work stream and waits for its answer on the answer route. */
static void start_task_json(asker *a, json_object *t, create_job *promote) {
    bot_core *c = a->core;
    task_wait *w = calloc(1, sizeof(*w));
    if (!w) {
        answer(a, "error: out of memory\n", true);
        if (promote) job_free(promote);
        return;
    }
    snprintf(w->id, sizeof(w->id), "%s-%u", c->route, ++c->task_seq);
    w->a = hold(a);
    w->promote = promote;
    w->adding = true;
    json_object_object_add(t, "route", json_object_new_string(c->route));
    int rc = c->qa ? queue_async_task_add(c->qa, w->id, json_object_to_json_string_ext(t, JSON_C_TO_STRING_PLAIN),
                                          task_added, w)
                   : QUEUE_ERR_CONNECT;
    if (rc != QUEUE_OK) {
        answer(a, promote ? "error: promote needs a worker to read the source, and Redis is unavailable\n"
                          : "error: this needs a worker, and Redis is unavailable\n",
               true);
        if (promote) job_free(promote);
        release(w->a);
        free(w);
        return;
    }
    w->next = c->tasks;
    c->tasks = w;
}

/* status and the actions on a running deployment (canary promote|fail, pause, resume). */
static void start_task(asker *a, const char *kind, const char *action, const cmd_action *act) {
    json_object *t = json_object_new_object();
    json_object_object_add(t, "kind", json_object_new_string(kind));
    if (action) json_object_object_add(t, "action", json_object_new_string(action));
    json_object_object_add(t, "job", json_object_new_string(act->job));
    json_object_object_add(t, "env", json_object_new_string(act->env));
    json_object_object_add(t, "actor", json_object_new_string(a->actor));
    json_object_object_add(t, "channel", json_object_new_string(a->channel));
    if (a->person[0]) json_object_object_add(t, "person", json_object_new_string(a->person));
    start_task_json(a, t, NULL);
    json_object_put(t);
}

/* promote JOB from SRC to ENV: first the source's evidence from a worker,
 * then the request, bound to the image the source runs. */
static void start_promote(asker *a, const cmd_action *act) {
    /* explain promote takes the same evidence and then only explains. */
    create_job *j = new_job(a, act, "promote", act->kind == CMD_EXPLAIN ? CMD_EXPLAIN : CMD_PROMOTE);
    if (!j) return;
    json_object *t = json_object_new_object();
    json_object_object_add(t, "kind", json_object_new_string("evidence"));
    json_object_object_add(t, "job", json_object_new_string(act->job));
    json_object_object_add(t, "env", json_object_new_string(act->from_env));
    start_task_json(a, t, j);
    json_object_put(t);
}

/* The evidence arrived: decide and record the promote. */
static void promote_evidence(create_job *j, const json_object *ev) {
    json_object *v;
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
    check_idem_then_run(j);
}

json_object *bot_event_parse(const char *json, size_t len) {
    json_tokener *tok = json_tokener_new();
    json_object *ev = tok ? json_tokener_parse_ex(tok, json, (int)len) : NULL;
    json_tokener_free(tok);
    if (ev && !json_object_is_type(ev, json_type_object)) {
        json_object_put(ev);
        ev = NULL;
    }
    if (!ev) nm_log(NM_LOG_WARN, "malformed event ignored", NULL);
    return ev;
}

bool bot_core_event(bot_core *c, const json_object *ev) {
    json_object *v;
    const char *task = json_object_object_get_ex(ev, "task", &v) ? json_object_get_string(v) : NULL;
    if (!task) return false;
    task_wait **pp = &c->tasks;
    while (*pp && strcmp((*pp)->id, task) != 0) pp = &(*pp)->next;
    if (!*pp) return false;   /* not ours (an earlier process's, or already answered) */
    task_wait *t = *pp;
    *pp = t->next;
    t->answered = true;
    const char *type = json_object_object_get_ex(ev, "type", &v) ? json_object_get_string(v) : "";
    if (t->promote && strcmp(type, "evidence") == 0) {
        promote_evidence(t->promote, ev);
    } else {
        nm_buf out;
        nm_buf_init(&out, 0);
        bool failed = strcmp(type, "action") == 0 && json_object_object_get_ex(ev, "ok", &v) &&
                      !json_object_get_boolean(v);
        if (render_event_console(ev, &out) == 0) answer_buf(t->a, &out, failed, strcmp(type, "status") == 0);
        nm_buf_free(&out);
        if (t->promote) job_free(t->promote);
    }
    release(t->a);
    if (!t->adding) free(t);
    return true;
}

/* ---- history and audit: read from PostgreSQL on the thread pool ---- */

typedef struct read_job {
    uv_work_t work;
    bot_core *core;
    asker *a;
    cmd_action act;
    nm_buf out;   /* the answer, built on the pool thread */
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
    audit_db *db = dbpool_get(j->core->db, err, sizeof(err));
    if (!db) {
        nm_buf_printf(&j->out, "error: PostgreSQL is unavailable; try again\n");
        return;
    }
    int rc;
    if (j->act.kind == CMD_HISTORY) {
        int limit = j->act.limit > 0 ? (j->act.limit < AUDIT_HISTORY_MAX ? j->act.limit : AUDIT_HISTORY_MAX) : 10;
        nm_buf_printf(&j->out, "history of %s%s%s (newest first):\n", j->act.job, j->act.env[0] ? " in " : "",
                      j->act.env);
        size_t before = j->out.len;
        rc = audit_history(db, j->act.job, j->act.env[0] ? j->act.env : NULL, limit, history_row, &j->out);
        if (rc == AUDIT_OK && j->out.len == before) nm_buf_appends(&j->out, "  no requests yet\n");
    } else {
        int64_t id = 0;
        rc = audit_lookup(db, j->act.ref, &id);
        audit_request r;
        if (rc == AUDIT_ERR_NOT_FOUND) {
            nm_buf_printf(&j->out, "no record of %s\n", j->act.ref);
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
    dbpool_put(j->core->db, db, rc == AUDIT_ERR_CONNECT);
}

static void read_done(uv_work_t *w, int status) {
    read_job *j = w->data;
    if (status == 0) answer_buf(j->a, &j->out, strncmp(j->out.data ? j->out.data : "", "error:", 6) == 0, true);
    nm_buf_free(&j->out);
    release(j->a);
    free(j);
}

static void start_read(asker *a, const cmd_action *act) {
    read_job *j = calloc(1, sizeof(*j));
    if (!j) {
        answer(a, "error: out of memory\n", true);
        return;
    }
    j->core = a->core;
    j->a = hold(a);
    j->act = *act;
    nm_buf_init(&j->out, 1024 * 1024);   /* a page of events fits many times over */
    j->work.data = j;
    if (uv_queue_work(a->core->loop, &j->work, read_work, read_done) != 0) {
        answer(a, "error: cannot schedule the lookup\n", true);
        nm_buf_free(&j->out);
        release(j->a);
        free(j);
    }
}

/* ---- dispatch ---- */

static void dispatch(asker *a, const cmd_action *act) {
    bot_core *c = a->core;
    nm_buf out;
    nm_buf_init(&out, 0);
    switch (act->kind) {
    case CMD_HELP: {
        char help[8192];
        cmd_help_text(act->topic, help, sizeof(help));
        nm_buf_printf(&out, "%s%s", help, help[0] && help[strlen(help) - 1] == '\n' ? "" : "\n");
        answer_buf(a, &out, false, true);
        break;
    }
    case CMD_ENVS:
        render_envs(c->cfg, &out);
        answer_buf(a, &out, false, true);
        break;
    case CMD_JOBS:
        render_jobs(c->cfg, &out);
        answer_buf(a, &out, false, true);
        break;
    case CMD_WHOAMI:
        render_whoami(c->cfg, a->actor, a->channel, &out);
        answer_buf(a, &out, false, true);
        break;
    case CMD_DEPLOY:
        nm_log(NM_LOG_INFO, "deploy requested", "job", act->job, "env", act->env, "actor", a->actor, NULL);
        start_request(a, "deploy", act);
        break;
    case CMD_PROMOTE:
        nm_log(NM_LOG_INFO, "promote requested", "job", act->job, "env", act->env, "from", act->from_env, "actor",
               a->actor, NULL);
        start_promote(a, act);
        break;
    case CMD_ROLLBACK:
        nm_log(NM_LOG_INFO, "rollback requested", "job", act->job, "env", act->env, "actor", a->actor, NULL);
        start_request(a, "rollback", act);
        break;
    case CMD_STATUS: start_task(a, "status", NULL, act); break;
    case CMD_HISTORY:
    case CMD_AUDIT: start_read(a, act); break;
    case CMD_APPROVE:
    case CMD_REJECT:
    case CMD_CANCEL:
    case CMD_LOCK:
    case CMD_UNLOCK: {
        create_job *j = new_job(a, act, "", act->kind);
        if (j) run_job(j);
        break;
    }
    case CMD_EXPLAIN:
        if (act->explained == CMD_DEPLOY) start_request(a, "deploy", act);
        else start_promote(a, act);
        break;
    case CMD_CANARY:
        start_task(a, "action", strcmp(act->sub, "promote") == 0 ? "canary_promote" : "canary_fail", act);
        break;
    case CMD_PAUSE: start_task(a, "action", "pause", act); break;
    case CMD_RESUME: start_task(a, "action", "resume", act); break;
    default: answer(a, "error: that command is not available in this build yet\n", false); break;
    }
    nm_buf_free(&out);
}

void bot_core_handle(bot_core *c, const bot_inbound *in, const char *text, size_t len, const bot_replier *to,
                     void *ud) {
    asker *a = asker_new(c, in, to, ud);
    if (!a) {
        bot_reply r = {.kind = BOT_REPLY_ANSWER, .text = "error: out of memory\n", .failed = true};
        to->reply(ud, &r);
        to->done(ud);
        return;
    }
    cmd_action act;
    cmd_error err;
    if (cmd_parse(text, len, &act, &err) != CMD_OK || cmd_check(&act, c->cfg, &err) != CMD_OK) {
        nm_buf out;
        nm_buf_init(&out, 0);
        render_cmd_error(&err, &out);
        answer_buf(a, &out, false, false);
        nm_buf_free(&out);
    } else {
        dispatch(a, &act);
    }
    release(a);
}

void bot_core_too_long(bot_core *c, const bot_replier *to, void *ud) {
    (void)c;
    cmd_error err = {.code = CMD_ERR_TOO_LONG, .usage = cmd_general_usage()};
    snprintf(err.message, sizeof(err.message), "command text is over %d bytes; nothing was done", CMD_MAX_TEXT);
    nm_buf out;
    nm_buf_init(&out, 0);
    render_cmd_error(&err, &out);
    bot_reply r = {.kind = BOT_REPLY_ANSWER, .text = out.data ? out.data : ""};
    to->reply(ud, &r);
    nm_buf_free(&out);
    to->done(ud);
}

/* ---- lifecycle ---- */

void bot_session_id(char *out, size_t outlen) {
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
    if (outlen) out[n] = '\0';
}

bot_core *bot_core_new(uv_loop_t *loop, config *cfg, queue_async *qa, dbpool *db, const char *answer_route) {
    bot_core *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->loop = loop;
    c->cfg = config_ref(cfg);
    c->qa = qa;
    c->db = db;
    nm_str_copy(c->route, sizeof(c->route), answer_route);
    return c;
}

void bot_core_set_config(bot_core *c, config *cfg) {
    config *old = c->cfg;
    c->cfg = config_ref(cfg);
    config_free(old);
}

const config *bot_core_config(const bot_core *c) { return c->cfg; }

void bot_core_detach_queue(bot_core *c) { c->qa = NULL; }

int bot_core_pending(const bot_core *c) { return c->askers; }

void bot_core_cancel_tasks(bot_core *c) {
    while (c->tasks) {
        task_wait *t = c->tasks;
        c->tasks = t->next;
        if (t->promote) job_free(t->promote);
        t->answered = true;
        release(t->a);
        if (!t->adding) free(t);
    }
}

void bot_core_free(bot_core *c) {
    if (!c) return;
    bot_core_cancel_tasks(c);
    config_free(c->cfg);
    free(c);
}
