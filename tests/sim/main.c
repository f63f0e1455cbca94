/* nomad-sim: a fake Nomad HTTP API server for nomatron's tests and demo.
 *
 * One libuv loop, one thread. Each connection runs the pure parser
 * (http.c); each complete request goes to the pure API (api.c) with the
 * loop's clock. A blocking query that is not yet satisfied is parked: the
 * connection keeps its request and a timer for ?wait=, and is re-checked
 * whenever the state's index moves. The state's own clock-driven changes
 * (evaluations completing, deployments progressing) run from one timer set
 * to the state's next event — nothing polls or sleeps. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "api.h"
#include "buf.h"
#include "clock.h"
#include "http.h"
#include "log.h"
#include "state.h"

#define SIM_MAX_CONNS 1024
#define SIM_MAX_JOBS_FILE (16 * 1024 * 1024)
/* Unparsed input kept while a request is parked (pipelined requests). */
#define SIM_MAX_INPUT (SIM_HTTP_MAX_HEAD + SIM_HTTP_MAX_BODY + 65536)

typedef struct conn conn;

typedef struct server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t tick;
    uv_signal_t sigterm, sigint;
    sim_state *st;
    sim_ctl ctl;
    double speed;              /* state clock = start + (loop clock - start) * speed */
    int64_t real0, sim0;
    FILE *log;
    conn *conns;
    size_t n_conns;
    bool stopping;
    bool waking, wake_again;   /* wake_parked() re-entrancy guard */
    char rbuf[65536];
} server;

struct conn {
    uv_tcp_t tcp;
    uv_timer_t wait;
    server *srv;
    conn *next, *prev;
    sim_http_parser parser;
    nm_buf in;
    bool parked;
    int64_t parked_at;
    bool holding;              /* an answer waits out the injected latency */
    nm_buf held;
    bool held_keep_alive;
    bool closing;
    bool close_after_write;
    int pending_writes;
    int open_handles;
};

typedef struct write_req {
    uv_write_t req;
    conn *c;
    char *data;
} write_req;

static int64_t real_ms(const server *s) { return (int64_t)uv_now(s->loop); }

/* The state's clock: the loop clock scaled by --speed. */
static int64_t now_ms(const server *s) { return s->sim0 + (int64_t)((double)(real_ms(s) - s->real0) * s->speed); }

/* Loop milliseconds until state time `at` (rounded up). */
static uint64_t real_delay(const server *s, int64_t at) {
    int64_t d = at - now_ms(s);
    if (d <= 0) return 0;
    double r = (double)d / s->speed;
    return (uint64_t)r + ((double)(uint64_t)r < r ? 1 : 0);
}

static void conn_process(conn *c);
static void wake_parked(server *s);
static void schedule_tick(server *s);

/* ---------- connection teardown ---------- */

static void on_handle_closed(uv_handle_t *h) {
    conn *c = h->data;
    if (--c->open_handles > 0) return;
    if (c->prev) c->prev->next = c->next;
    else c->srv->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->srv->n_conns--;
    sim_http_parser_free(&c->parser);
    nm_buf_free(&c->in);
    nm_buf_free(&c->held);
    free(c);
}

static void conn_close(conn *c) {
    if (c->closing) return;
    c->closing = true;
    c->parked = false;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_close((uv_handle_t *)&c->wait, on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

/* Fault: the peer sees ECONNRESET instead of an answer. */
static void conn_reset(conn *c) {
    if (c->closing) return;
    c->closing = true;
    c->parked = false;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_close((uv_handle_t *)&c->wait, on_handle_closed);
    if (uv_tcp_close_reset(&c->tcp, on_handle_closed) != 0) uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

/* ---------- writing ---------- */

static void on_written(uv_write_t *req, int status) {
    write_req *w = (write_req *)req;
    conn *c = w->c;
    free(w->data);
    free(w);
    c->pending_writes--;
    if (status < 0 || (c->close_after_write && c->pending_writes == 0)) conn_close(c);
}

/* Queues buf (taken) for writing. */
static void conn_write(conn *c, char *data, size_t len) {
    write_req *w = malloc(sizeof(*w));
    if (!w) {
        free(data);
        conn_close(c);
        return;
    }
    w->c = c;
    w->data = data;
    uv_buf_t b = uv_buf_init(data, (unsigned int)len);
    c->pending_writes++;
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written);
    if (rc < 0) {
        c->pending_writes--;
        free(data);
        free(w);
        conn_close(c);
    }
}

static void log_request(server *s, const char *method, const char *target, int status, const char *fault) {
    sim_ctl_log(&s->ctl, now_ms(s), method, target, status, fault);
    if (!s->log) return;
    fprintf(s->log, "%s %s %d\n", method ? method : "-", target ? target : "-", status);
    fflush(s->log);
}

static void on_held_timeout(uv_timer_t *t) {
    conn *c = t->data;
    if (c->closing || !c->holding) return;
    c->holding = false;
    size_t len = c->held.len;
    conn_write(c, nm_buf_steal(&c->held), len);
    nm_buf_init(&c->held, 0);
    conn_process(c);
}

static void send_response(conn *c, const sim_response *r, bool keep_alive) {
    nm_buf out;
    nm_buf_init(&out, 0);
    int rc = nm_buf_printf(&out, "HTTP/1.1 %d %s\r\n", r->status, sim_http_reason(r->status));
    if (r->content_type) rc |= nm_buf_printf(&out, "Content-Type: %s\r\n", r->content_type);
    if (r->has_index)
        rc |= nm_buf_printf(&out,
                            "X-Nomad-Index: %" PRIu64 "\r\nX-Nomad-Knownleader: true\r\nX-Nomad-Lastcontact: 0\r\n",
                            r->index);
    rc |= nm_buf_printf(&out, "Content-Length: %zu\r\n", r->body.len);
    if (!keep_alive) rc |= nm_buf_appends(&out, "Connection: close\r\n");
    rc |= nm_buf_appends(&out, "\r\n");
    if (r->body.len) rc |= nm_buf_append(&out, r->body.data, r->body.len);
    if (rc != NM_BUF_OK) {
        nm_buf_free(&out);
        conn_close(c);
        return;
    }
    if (r->fault == SIM_FAULT_TRUNCATE) {
        /* Head and half the body, then close: Content-Length promised more. */
        out.len -= r->body.len - r->body.len / 2;
        keep_alive = false;
    }
    if (!keep_alive) c->close_after_write = true;
    if (r->delay_ms > 0) {
        /* Injected latency: hold the bytes; the wait timer sends them. */
        nm_buf_free(&c->held);
        c->held = out;
        c->holding = true;
        c->held_keep_alive = keep_alive;
        uv_timer_start(&c->wait, on_held_timeout, (uint64_t)r->delay_ms, 0);
        return;
    }
    size_t len = out.len;
    conn_write(c, nm_buf_steal(&out), len);
}

/* Answers the parsed request in c->parser (status logged) and readies the
 * parser for the next one. */
static void finish_request(conn *c, sim_response *r) {
    const sim_http_req *q = &c->parser.req;
    log_request(c->srv, q->method, q->target, r->status,
                r->fault == SIM_FAULT_RESET ? "reset" : r->fault == SIM_FAULT_TRUNCATE ? "truncate" : NULL);
    if (r->fault == SIM_FAULT_RESET) {
        conn_reset(c);
        return;
    }
    send_response(c, r, q->keep_alive && !c->srv->stopping);
    sim_http_parser_reset(&c->parser);
}

/* ---------- requests ---------- */

static void on_wait_timeout(uv_timer_t *t);

/* Runs the parsed request. Returns true when answered, false when parked. */
static bool run_request(conn *c, bool force) {
    server *s = c->srv;
    uint64_t before = sim_state_index(s->st);
    sim_response r;
    sim_response_init(&r);
    int64_t deadline = 0;
    int64_t now = now_ms(s);
    int rc = sim_api_handle_ctl(s->st, &s->ctl, &c->parser.req, now, c->parked ? c->parked_at : now, force, &r,
                                &deadline);
    if (rc == SIM_API_PARK) {
        if (!c->parked) {
            c->parked = true;
            c->parked_at = now;
            /* INT64_MAX: the hang_blocking fault, no timer at all. */
            if (deadline != INT64_MAX) uv_timer_start(&c->wait, on_wait_timeout, real_delay(s, deadline), 0);
        }
        sim_response_free(&r);
        return false;
    }
    if (c->parked) {
        c->parked = false;
        uv_timer_stop(&c->wait);
    }
    finish_request(c, &r);
    sim_response_free(&r);
    if (sim_state_index(s->st) != before) wake_parked(s);
    schedule_tick(s);
    return true;
}

static void on_wait_timeout(uv_timer_t *t) {
    conn *c = t->data;
    if (c->closing || !c->parked) return;
    run_request(c, true);
    conn_process(c);
}

/* Parses and answers buffered requests until one parks or input runs out. */
static void conn_process(conn *c) {
    while (!c->closing && !c->parked && !c->holding && !c->close_after_write) {
        size_t used = 0;
        int rc = sim_http_parse(&c->parser, c->in.data ? c->in.data : "", c->in.len, &used);
        if (used) {
            memmove(c->in.data, c->in.data + used, c->in.len - used);
            c->in.len -= used;
            c->in.data[c->in.len] = '\0';
        }
        if (rc == SIM_HTTP_AGAIN) {
            if (c->parser.continue_due) {
                /* curl waits for this before sending a larger body. */
                c->parser.continue_due = false;
                char *m = strdup("HTTP/1.1 100 Continue\r\n\r\n");
                if (m) conn_write(c, m, strlen(m));
            }
            return;
        }
        if (rc < 0) {
            sim_response r;
            sim_response_init(&r);
            r.status = sim_http_error_status(rc);
            r.content_type = "text/plain; charset=utf-8";
            nm_buf_printf(&r.body, "%d %s: %s", r.status, sim_http_reason(r.status),
                          c->parser.errstr ? c->parser.errstr : "malformed request");
            log_request(c->srv, c->parser.req.method, c->parser.req.method ? c->parser.req.target : NULL, r.status, NULL);
            send_response(c, &r, false);
            sim_response_free(&r);
            return;
        }
        run_request(c, false);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    conn *c = h->data;
    /* One read at a time on one thread: the server's buffer is free again
     * once on_read has copied what it got. */
    *buf = uv_buf_init(c->srv->rbuf, sizeof(c->srv->rbuf));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    conn *c = stream->data;
    if (nread < 0) {
        conn_close(c);   /* EOF or error; a parked query's client went away */
        return;
    }
    if (nread == 0 || c->closing) return;
    if (nm_buf_append(&c->in, buf->base, (size_t)nread) != NM_BUF_OK) {
        nm_log(NM_LOG_WARN, "connection input over the ceiling; closing", NULL);
        conn_close(c);
        return;
    }
    conn_process(c);
}

static void on_connection(uv_stream_t *listener, int status) {
    server *s = listener->data;
    if (status < 0) {
        nm_log(NM_LOG_WARN, "accept failed", "error", uv_strerror(status), NULL);
        return;
    }
    conn *c = calloc(1, sizeof(*c));
    if (!c) return;
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->wait);
    c->tcp.data = c->wait.data = c;
    c->open_handles = 2;
    sim_http_parser_init(&c->parser, SIM_HTTP_MAX_HEAD, SIM_HTTP_MAX_BODY);
    nm_buf_init(&c->in, SIM_MAX_INPUT);
    nm_buf_init(&c->held, 0);
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 || s->n_conns > SIM_MAX_CONNS || s->stopping) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---------- state clock ---------- */

static void wake_parked(server *s) {
    /* Answering one parked query can change the state again (its read
     * advances the clock): loop instead of recursing. Closing only marks
     * connections; they are freed in close callbacks on a later loop turn,
     * so walking the list here is safe. */
    if (s->waking) {
        s->wake_again = true;
        return;
    }
    s->waking = true;
    do {
        s->wake_again = false;
        for (conn *c = s->conns; c; c = c->next) {
            if (!c->parked || c->closing) continue;
            if (run_request(c, false)) conn_process(c);
        }
    } while (s->wake_again);
    s->waking = false;
}

static void on_tick(uv_timer_t *t) {
    server *s = t->data;
    if (sim_state_advance(s->st, now_ms(s))) wake_parked(s);
    schedule_tick(s);
}

static void schedule_tick(server *s) {
    if (s->stopping) return;
    int64_t next = sim_state_next_event(s->st);
    if (next < 0) {
        uv_timer_stop(&s->tick);
        return;
    }
    uv_timer_start(&s->tick, on_tick, real_delay(s, next), 0);
}

/* ---------- shutdown ---------- */

static void on_signal(uv_signal_t *sig, int signum) {
    server *s = sig->data;
    (void)signum;
    if (s->stopping) return;
    s->stopping = true;
    uv_close((uv_handle_t *)&s->listener, NULL);
    uv_close((uv_handle_t *)&s->tick, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    for (conn *c = s->conns; c; c = c->next) conn_close(c);
}

/* ---------- startup ---------- */

static void usage(FILE *to) {
    fprintf(to,
            "usage: nomad-sim --listen HOST:PORT --jobs FILE [options]\n"
            "\n"
            "A fake HashiCorp Nomad HTTP API for nomatron's tests and local demo (docs/NOMAD-SIM.md).\n"
            "\n"
            "  --listen HOST:PORT     IPv4 address to bind; PORT 0 picks a free port\n"
            "  --jobs FILE            JSON array of Nomad jobs (as GET /v1/job/:id returns them)\n"
            "  --health-delay MS      register -> deployment successful when every allocation is healthy;\n"
            "                         each allocation takes an equal share per batch (default 1000)\n"
            "  --eval-delay MS        register -> evaluation complete (default 50, at most half the health delay)\n"
            "  --speed N              the simulated clock runs N times the wall clock (default 1), so a\n"
            "                         10-minute ProgressDeadline passes in 600/N seconds; ?wait= is scaled too\n"
            "  --log FILE             one line per request: METHOD /path?query STATUS\n"
            "  --acl FILE             turn ACLs on; FILE is a JSON array of tokens\n"
            "                         [{\"SecretID\",\"AccessorID\",\"Name\",\"Type\":\"client|management\",\n"
            "                           \"Namespaces\":{\"staging\":[\"read-job\",\"submit-job\"]},\"Policies\":[..]}]\n"
            "                         every /v1/ request then needs X-Nomad-Token (or Authorization: Bearer);\n"
            "                         missing or unknown token or capability -> 403 Permission denied\n"
            "  --behaviour FILE       JSON array of behaviours (see POST /_sim/behaviour)\n"
            "  --healthy SPEC         allocations of SPEC become healthy (after the default delay)\n"
            "  --unhealthy SPEC       allocations of SPEC fail (image pull error) -> deployment failed\n"
            "  --never-placed SPEC    allocations of SPEC are never placed -> progress deadline\n"
            "  --flapping SPEC        allocations of SPEC restart (OOM) until HealthyDeadline marks them unhealthy\n"
            "                         SPEC is NAMESPACE/JOB[@VERSION][:AFTER_MS]; without @VERSION every version\n"
            "  --error-ratio R        share (0..1) of /v1/ requests answered 500 `No cluster leader`\n"
            "  --latency-ms MS        added to every /v1/ answer\n"
            "  --reset-ratio R        share of /v1/ requests whose connection is reset instead of answered\n"
            "  --truncate-ratio R     share of /v1/ answers cut off halfway through the body\n"
            "  --hang-blocking        blocking queries (?index=N) never answer\n"
            "  --seed N               seed for IDs and fault dice (default: time and pid)\n"
            "\n"
            "Control endpoints (JSON in and out; no token needed, never faulted):\n"
            "  GET|POST|DELETE /_sim/behaviour   {\"namespace\",\"job\",\"version\"|null,\n"
            "                                     \"mode\":\"healthy|unhealthy|never_placed|flapping\",\"after_ms\":N}\n"
            "                                     (an object or an array; applies to allocations placed later)\n"
            "  GET|POST /_sim/faults              {\"error_ratio\",\"latency_ms\",\"reset_ratio\",\"truncate_ratio\",\n"
            "                                     \"hang_blocking\"}; absent keys are kept\n"
            "  GET|DELETE /_sim/requests          the log of requests received (last 4096)\n"
            "  POST /_sim/reset                   clear behaviours, faults and the request log\n"
            "  GET /_sim/status                   clock, index, speed, ACL on/off\n"
            "\n"
            "Prints `nomad-sim listening on HOST:PORT` once bound. SIGTERM/SIGINT stop it (exit 0).\n");
}

static int parse_ratio(const char *opt, const char *v, double *out) {
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (!*v || *end || errno || !(d >= 0 && d <= 1)) {
        fprintf(stderr, "nomad-sim: %s wants a ratio 0..1, got \"%s\"\n", opt, v);
        return -1;
    }
    *out = d;
    return 0;
}

/* NAMESPACE/JOB[@VERSION][:AFTER_MS] */
static int parse_spec(sim_state *st, const char *opt, const char *v, int mode) {
    char buf[600];
    snprintf(buf, sizeof(buf), "%s", v);
    int64_t version = -1, after = -1;
    char *colon = strrchr(buf, ':');
    char *end;
    if (colon) {
        *colon = '\0';
        errno = 0;
        long long n = strtoll(colon + 1, &end, 10);
        if (!colon[1] || *end || errno || n < 0 || n > 24LL * 3600 * 1000) goto bad;
        after = n;
    }
    char *at = strrchr(buf, '@');
    if (at) {
        *at = '\0';
        errno = 0;
        long long n = strtoll(at + 1, &end, 10);
        if (!at[1] || *end || errno || n < 0) goto bad;
        version = n;
    }
    char *slash = strchr(buf, '/');
    if (!slash || slash == buf || !slash[1]) goto bad;
    *slash = '\0';
    if (sim_behaviour_set(st, buf, slash + 1, version, mode, after) != 0) goto bad;
    return 0;
bad:
    fprintf(stderr, "nomad-sim: %s wants NAMESPACE/JOB[@VERSION][:AFTER_MS], got \"%s\"\n", opt, v);
    return -1;
}

static int parse_ms(const char *opt, const char *v, int64_t *out) {
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || errno || n < 0 || n > 24LL * 3600 * 1000) {
        fprintf(stderr, "nomad-sim: %s wants milliseconds (0..86400000), got \"%s\"\n", opt, v);
        return -1;
    }
    *out = n;
    return 0;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "nomad-sim: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    nm_buf b;
    nm_buf_init(&b, SIM_MAX_JOBS_FILE);
    char chunk[65536];
    size_t n;
    int rc = NM_BUF_OK;
    while (rc == NM_BUF_OK && (n = fread(chunk, 1, sizeof(chunk), f)) > 0) rc = nm_buf_append(&b, chunk, n);
    bool err = ferror(f);
    fclose(f);
    if (rc != NM_BUF_OK || err) {
        fprintf(stderr, "nomad-sim: cannot read %s: %s\n", path,
                rc == NM_BUF_TOO_LARGE ? "larger than 16 MiB" : "read error");
        nm_buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return nm_buf_steal(&b);
}

/* Options applied once the state exists (behaviour flags need it). */
typedef struct pending_opt {
    const char *opt, *val;
} pending_opt;

int main(int argc, char **argv) {
    const char *listen = NULL, *jobs = NULL, *logpath = NULL, *aclpath = NULL;
    int64_t health = 1000, evald = 50;
    double speed = 1;
    sim_faults faults = {0};
    uint64_t seed = 0;
    static pending_opt later[256];
    size_t n_later = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--hang-blocking") == 0) {
            faults.hang_blocking = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "nomad-sim: %s needs a value\n", a);
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--listen") == 0) listen = v;
        else if (strcmp(a, "--jobs") == 0) jobs = v;
        else if (strcmp(a, "--log") == 0) logpath = v;
        else if (strcmp(a, "--acl") == 0) aclpath = v;
        else if (strcmp(a, "--health-delay") == 0) {
            if (parse_ms(a, v, &health) != 0) return 2;
        } else if (strcmp(a, "--eval-delay") == 0) {
            if (parse_ms(a, v, &evald) != 0) return 2;
        } else if (strcmp(a, "--latency-ms") == 0) {
            if (parse_ms(a, v, &faults.latency_ms) != 0) return 2;
        } else if (strcmp(a, "--error-ratio") == 0) {
            if (parse_ratio(a, v, &faults.error_ratio) != 0) return 2;
        } else if (strcmp(a, "--reset-ratio") == 0) {
            if (parse_ratio(a, v, &faults.reset_ratio) != 0) return 2;
        } else if (strcmp(a, "--truncate-ratio") == 0) {
            if (parse_ratio(a, v, &faults.truncate_ratio) != 0) return 2;
        } else if (strcmp(a, "--speed") == 0) {
            char *end;
            errno = 0;
            speed = strtod(v, &end);
            if (!*v || *end || errno || !(speed >= 0.001 && speed <= 100000)) {
                fprintf(stderr, "nomad-sim: --speed wants a factor 0.001..100000, got \"%s\"\n", v);
                return 2;
            }
        } else if (strcmp(a, "--seed") == 0) {
            char *end;
            errno = 0;
            seed = strtoull(v, &end, 10);
            if (!*v || *end || errno) {
                fprintf(stderr, "nomad-sim: --seed wants an unsigned integer, got \"%s\"\n", v);
                return 2;
            }
        } else if (strcmp(a, "--behaviour") == 0 || strcmp(a, "--behavior") == 0 || strcmp(a, "--healthy") == 0 ||
                   strcmp(a, "--unhealthy") == 0 || strcmp(a, "--never-placed") == 0 || strcmp(a, "--flapping") == 0) {
            if (n_later == sizeof(later) / sizeof(later[0])) {
                fprintf(stderr, "nomad-sim: too many behaviour options\n");
                return 2;
            }
            later[n_later++] = (pending_opt){a, v};
        } else {
            fprintf(stderr, "nomad-sim: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!listen || !jobs) {
        fprintf(stderr, "nomad-sim: --listen and --jobs are required\n");
        usage(stderr);
        return 2;
    }
    char host[64];
    const char *colon = strrchr(listen, ':');
    int port = -1;
    if (colon && (size_t)(colon - listen) < sizeof(host)) {
        memcpy(host, listen, (size_t)(colon - listen));
        host[colon - listen] = '\0';
        char *end;
        long p = strtol(colon + 1, &end, 10);
        if (colon[1] && !*end && p >= 0 && p <= 65535) port = (int)p;
    }
    struct sockaddr_in addr;
    if (port < 0 || uv_ip4_addr(host, port, &addr) != 0) {
        fprintf(stderr, "nomad-sim: --listen wants IPV4:PORT, got \"%s\"\n", listen);
        return 2;
    }

    static server s;
    s.loop = uv_default_loop();
    uv_update_time(s.loop);
    s.speed = speed;
    s.real0 = s.sim0 = real_ms(&s);
    if (!seed) seed = (uint64_t)nm_wall_ms() ^ (uint64_t)getpid() << 32;
    s.st = sim_state_new(health, evald, nm_wall_ms() - now_ms(&s), seed);
    if (!s.st || sim_ctl_init(&s.ctl, seed * 31 + 7) != 0) {
        fprintf(stderr, "nomad-sim: out of memory\n");
        return 1;
    }
    s.ctl.faults = faults;
    s.ctl.speed = speed;
    if (aclpath) {
        size_t alen = 0;
        char *atext = read_file(aclpath, &alen);
        char aerr[512];
        if (!atext || sim_ctl_load_acl(&s.ctl, atext, alen, aerr, sizeof(aerr)) != 0) {
            if (atext) fprintf(stderr, "nomad-sim: %s: %s\n", aclpath, aerr);
            free(atext);
            return 1;
        }
        free(atext);
    }
    for (size_t i = 0; i < n_later; i++) {
        const char *o = later[i].opt, *v = later[i].val;
        if (strcmp(o, "--behaviour") == 0 || strcmp(o, "--behavior") == 0) {
            size_t blen = 0;
            char *btext = read_file(v, &blen);
            if (!btext) return 1;
            json_object *arr = json_tokener_parse(btext);
            free(btext);
            char berr[512] = "";
            bool ok = arr && json_object_is_type(arr, json_type_array);
            if (!ok) snprintf(berr, sizeof(berr), "not a JSON array of behaviours");
            for (size_t k = 0; ok && k < json_object_array_length(arr); k++)
                ok = sim_behaviour_set_json(s.st, json_object_array_get_idx(arr, k), berr, sizeof(berr)) == 0;
            json_object_put(arr);
            if (!ok) {
                fprintf(stderr, "nomad-sim: %s: %s\n", v, berr);
                return 1;
            }
            continue;
        }
        int mode = strcmp(o, "--healthy") == 0     ? SIM_MODE_HEALTHY
                   : strcmp(o, "--unhealthy") == 0 ? SIM_MODE_UNHEALTHY
                   : strcmp(o, "--flapping") == 0  ? SIM_MODE_FLAPPING
                                                   : SIM_MODE_NEVER_PLACED;
        if (parse_spec(s.st, o, v, mode) != 0) return 2;
    }
    size_t jlen = 0;
    char *jtext = read_file(jobs, &jlen);
    if (!jtext) {
        sim_state_free(s.st);
        return 1;
    }
    char err[4096];
    int rc = sim_state_load(s.st, jtext, jlen, now_ms(&s), err, sizeof(err));
    free(jtext);
    if (rc != SIM_OK) {
        fprintf(stderr, "nomad-sim: %s: %s\n", jobs, err);
        sim_state_free(s.st);
        return 1;
    }
    if (logpath) {
        s.log = fopen(logpath, "a");
        if (!s.log) {
            fprintf(stderr, "nomad-sim: cannot open log %s: %s\n", logpath, strerror(errno));
            sim_state_free(s.st);
            return 1;
        }
    }
    signal(SIGPIPE, SIG_IGN);

    uv_tcp_init(s.loop, &s.listener);
    s.listener.data = &s;
    rc = uv_tcp_bind(&s.listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&s.listener, 128, on_connection);
    if (rc != 0) {
        fprintf(stderr, "nomad-sim: cannot listen on %s: %s\n", listen, uv_strerror(rc));
        return 1;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    uv_tcp_getsockname(&s.listener, (struct sockaddr *)&bound, &blen);
    uv_timer_init(s.loop, &s.tick);
    s.tick.data = &s;
    uv_signal_init(s.loop, &s.sigterm);
    uv_signal_init(s.loop, &s.sigint);
    s.sigterm.data = s.sigint.data = &s;
    uv_signal_start(&s.sigterm, on_signal, SIGTERM);
    uv_signal_start(&s.sigint, on_signal, SIGINT);
    schedule_tick(&s);

    printf("nomad-sim listening on %s:%d\n", host, ntohs(((struct sockaddr_in *)&bound)->sin_port));
    fflush(stdout);

    uv_run(s.loop, UV_RUN_DEFAULT);
    uv_loop_close(s.loop);
    sim_state_free(s.st);
    sim_ctl_free(&s.ctl);
    if (s.log) fclose(s.log);
    return 0;
}
