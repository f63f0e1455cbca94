#include "shell.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "audit.h"
#include "buf.h"
#include "cmd.h"
#include "core.h"
#include "dbpool.h"
#include "log.h"
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

    queue_async *qa;
    dbpool *db;
    audit_appender *appender;   /* the process's group commit, shared by db and workers */
    bot_core *core;
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
    bool in_line;                        /* handling a line: its synchronous answers need no prompt */
    nm_buf line;
    bool line_too_long;
    unsigned lineno;
    bool eof;

    /* what we wait for */
    tracked *reqs;
    int inflight;                        /* commands the core has not finished, and our own reads */
    bool any_failed;
    bool quitting;
    int exit_code;
    int timeout_s;

    uv_timer_t timeout_timer;
    uv_timer_t refresh_timer;
    uv_signal_t sigint, sigterm, sighup;
} shell;

static void shell_quit(shell *sh, int code);
static void check_done(shell *sh);

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

/* ---- the core's replies: printed; requests followed until final ---- */

static void on_reply(void *ud, const bot_reply *r) {
    shell *sh = ud;
    if (r->failed) sh->any_failed = true;
    if (r->kind == BOT_REPLY_REQUEST && r->req && !find_tracked(sh, r->req->id)) {
        tracked *t = calloc(1, sizeof(*t));
        if (t) {
            t->id = r->req->id;
            snprintf(t->state, sizeof(t->state), "%s", r->req->state);
            t->next = sh->reqs;
            sh->reqs = t;
        }
    }
    if (!sh->in_line && sh->interactive) sayf(sh, "\n");
    sayf(sh, r->text);
    if (!sh->in_line) prompt(sh);
}

static void on_done(void *ud) {
    shell *sh = ud;
    sh->inflight--;
    check_done(sh);
}

static const bot_replier shell_replier = {on_reply, on_done};

/* ---- events from workers on this session's stream ---- */

static void on_event(void *ud, const char *json, size_t len) {
    shell *sh = ud;
    json_object *ev = bot_event_parse(json, len);
    if (!ev) return;
    /* Answers to tasks go to the command that asked; the rest is request progress. */
    if (!bot_core_event(sh->core, ev)) {
        nm_buf out;
        nm_buf_init(&out, 0);
        if (render_event_console(ev, &out) == 0) {
            if (sh->interactive) sayf(sh, "\n");
            say(sh, &out);
            prompt(sh);
        }
        nm_buf_free(&out);
        json_object *v, *st;
        const char *type = json_object_object_get_ex(ev, "type", &v) ? json_object_get_string(v) : "";
        if (strcmp(type, "request") == 0 && json_object_object_get_ex(ev, "req", &v)) {
            tracked *t = find_tracked(sh, json_object_get_int64(v));
            if (t && json_object_object_get_ex(ev, "state", &st)) set_state(sh, t, json_object_get_string(st));
        }
    }
    json_object_put(ev);
    check_done(sh);
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

static int set_actor(shell *sh, const char *name) {
    if (!valid_user_name(name)) return -1;
    snprintf(sh->actor, sizeof(sh->actor), "shell:%s", name);
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

    char idem[64];
    snprintf(idem, sizeof(idem), "shell:%s:%u", sh->session, sh->lineno);
    bot_inbound in = {.platform = "shell", .channel = SHELL_CHANNEL, .actor = sh->actor, .idem_key = idem,
                      .route = sh->route};
    sh->inflight++;
    bot_core_handle(sh->core, &in, text, len, &shell_replier, sh);
}

static void too_long(shell *sh) {
    sh->inflight++;
    bot_core_too_long(sh->core, &shell_replier, sh);
}

/* Splits input into lines; a line over the ceiling is refused whole. */
static void feed(shell *sh, const char *data, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (data[i] == '\n') {
            sh->lineno++;
            sh->in_line = true;
            if (sh->line_too_long) too_long(sh);
            else if (sh->line.len) handle_line(sh, sh->line.data, sh->line.len);
            sh->in_line = false;
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
    if (!sh->eof || sh->quitting || sh->inflight > 0) return;
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
    if (sh->inflight) nm_buf_printf(&out, " %d answer(s)", sh->inflight);
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
    bot_core_set_config(sh->core, sh->cfg);
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
    bot_core_detach_queue(sh->core);
    if (sh->qa) queue_async_close(sh->qa);
    sh->qa = NULL;
}

int shell_run(config_holder *holder, const shell_opts *opts) {
    shell *sh = calloc(1, sizeof(*sh));
    if (!sh) return 1;
    sh->loop = uv_default_loop();
    sh->holder = holder;
    sh->cfg = config_holder_get(holder);
    const config *cfg = sh->cfg;
    sh->timeout_s = opts->timeout_s;
    bot_session_id(sh->session, sizeof(sh->session));
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
    sh->appender = audit_appender_new(0, 0);   /* NULL (out of memory): each write alone */
    sh->db = dbpool_new(cfg->postgres, 2, sh->appender);
    sh->qa = queue_async_new(sh->loop, cfg->redis, NULL, NULL, err, sizeof(err));
    if (!sh->db || !sh->qa) {
        fprintf(stderr, "nomatron shell: %s\n", sh->qa ? "out of memory" : err);
        dbpool_free(sh->db);
        audit_appender_free(sh->appender);
        config_free(sh->cfg);
        free(sh);
        return 2;
    }
    sh->core = bot_core_new(sh->loop, sh->cfg, sh->qa, sh->db, sh->route);
    if (!sh->core) {
        fprintf(stderr, "nomatron shell: out of memory\n");
        queue_async_close(sh->qa);
        uv_run(sh->loop, UV_RUN_DEFAULT);
        dbpool_free(sh->db);
        audit_appender_free(sh->appender);
        config_free(sh->cfg);
        free(sh);
        return 1;
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
        sh->workers = worker_pool_start(holder, nworkers, sh->appender, err, sizeof(err));
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
    audit_appender_free(sh->appender);   /* every thread that used it is joined */
    nm_buf_free(&sh->line);
    bot_core_cancel_tasks(sh->core);
    bot_core_free(sh->core);
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
