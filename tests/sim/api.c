/* nomad-sim: routes, query parameters, blocking queries and status codes
 * (shared/reference/nomad-api.md §1, §3). */
#include "api.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEXT "text/plain; charset=utf-8"
#define JSON "application/json"
#define NOT_IMPLEMENTED "nomad-sim: this Nomad endpoint is not simulated"

void sim_response_init(sim_response *r) {
    memset(r, 0, sizeof(*r));
    nm_buf_init(&r->body, 0);
}

void sim_response_free(sim_response *r) { nm_buf_free(&r->body); }

/* ---------- Go's time.ParseDuration ---------- */

int sim_parse_duration_ms(const char *s, int64_t *ms) {
    static const struct {
        const char *unit;
        double ns;
    } units[] = {
        {"ns", 1}, {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"\xce\xbcs", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9},
    };
    bool neg = false;
    if (*s == '-' || *s == '+') neg = *s++ == '-';
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    if (!*s) return -1;
    double total = 0;
    while (*s) {
        if (!isdigit((unsigned char)*s) && *s != '.') return -1;
        const char *num = s;
        bool digits = false;
        while (isdigit((unsigned char)*s)) s++, digits = true;
        if (*s == '.') {
            s++;
            while (isdigit((unsigned char)*s)) s++, digits = true;
        }
        if (!digits) return -1;
        char nb[64];
        size_t nl = (size_t)(s - num);
        if (nl >= sizeof(nb)) return -1;
        memcpy(nb, num, nl);
        nb[nl] = '\0';
        double v = strtod(nb, NULL);
        size_t best = 0, blen = 0;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t ul = strlen(units[i].unit);
            if (strncmp(s, units[i].unit, ul) == 0 && ul > blen) best = i, blen = ul;
        }
        if (!blen) return -1;   /* missing or unknown unit */
        s += blen;
        total += v * units[best].ns;
        if (total > 9.2e18) return -1;   /* Go: invalid duration (overflow) */
    }
    int64_t r = (int64_t)(total / 1e6);
    *ms = neg ? -r : r;
    return 0;
}

/* ---------- request context ---------- */

typedef struct ctx {
    sim_state *st;
    const sim_http_req *req;
    int64_t now, parked_at;
    bool force;
    sim_response *out;
    int64_t *deadline;
    char ns[256];
    bool pretty;
    uint64_t min_index;
    int64_t wait_ms;
} ctx;

static bool is(const ctx *c, const char *m) { return strcmp(c->req->method, m) == 0; }
static bool is_write(const ctx *c) { return is(c, "PUT") || is(c, "POST"); }

static int reply_text(ctx *c, int status, const char *text) {
    c->out->status = status;
    c->out->content_type = text && *text ? TEXT : NULL;
    nm_buf_reset(&c->out->body);
    if (text && nm_buf_appends(&c->out->body, text) != NM_BUF_OK) c->out->status = 500;
    return SIM_API_DONE;
}

/* Takes ownership of v (NULL renders as `null`). */
static int reply_json(ctx *c, int status, json_object *v, bool has_index, uint64_t index) {
    int flags = JSON_C_TO_STRING_NOSLASHESCAPE | (c->pretty ? JSON_C_TO_STRING_PRETTY : JSON_C_TO_STRING_PLAIN);
    const char *s = v ? json_object_to_json_string_ext(v, flags) : "null";
    c->out->status = status;
    c->out->content_type = JSON;
    c->out->has_index = has_index;
    c->out->index = index;
    nm_buf_reset(&c->out->body);
    if (nm_buf_appends(&c->out->body, s) != NM_BUF_OK) c->out->status = 500;
    json_object_put(v);
    return SIM_API_DONE;
}

static int method_not_allowed(ctx *c) { return reply_text(c, 405, "Invalid method"); }

/* Blocking-query gate (§1.5): park while the index has not passed ?index=. */
static bool must_park(ctx *c, uint64_t index) {
    if (c->min_index == 0 || index > c->min_index || c->force) return false;
    int64_t wait = c->wait_ms <= 0 ? SIM_DEFAULT_WAIT_MS : c->wait_ms;
    if (wait > SIM_MAX_WAIT_MS) wait = SIM_MAX_WAIT_MS;
    *c->deadline = c->parked_at + wait;
    return c->now < *c->deadline;
}

/* A blocking read: v (owned) answered as JSON, or 404 `notfound` when NULL
 * and notfound is set (NULL with notfound unset answers `null`). */
static int read_reply(ctx *c, json_object *v, uint64_t index, const char *notfound) {
    if (must_park(c, index)) {
        json_object_put(v);
        return SIM_API_PARK;
    }
    if (!v && notfound) {
        reply_text(c, 404, notfound);
        c->out->has_index = true;   /* Nomad sets the query meta before the 404 */
        c->out->index = index;
        return SIM_API_DONE;
    }
    return reply_json(c, 200, v, true, index);
}

/* read_reply() taking the index by pointer: the getter that fills it is
 * another argument of the same call, and C leaves the order in which
 * arguments are evaluated unspecified — the pointer is read in the body. */
static int read_obj(ctx *c, json_object *v, const uint64_t *index, const char *notfound) {
    return read_reply(c, v, *index, notfound);
}

/* Decodes src[0..len) (a path segment) into a new string; NULL if invalid. */
static char *path_decode(const char *src, size_t len) {
    char *d = malloc(len + 1);
    if (!d) return NULL;
    if (sim_http_unescape(src, len, d, len + 1, false) < 0) {
        free(d);
        return NULL;
    }
    return d;
}

static bool ends_with(const char *s, const char *suffix, size_t *stem) {
    size_t n = strlen(s), m = strlen(suffix);
    if (n < m || strcmp(s + n - m, suffix) != 0) return false;
    *stem = n - m;
    return true;
}

/* ---------- handlers ---------- */

static int do_register(ctx *c, const char *path_id) {
    char region[256];
    int has_region = sim_http_query_get(c->req->query, "region", region, sizeof(region));
    sim_register_args a = {.path_id = path_id, .q_namespace = NULL, .q_region = has_region == 1 ? region : NULL};
    char nsq[256];
    if (sim_http_query_get(c->req->query, "namespace", nsq, sizeof(nsq)) == 1 && *nsq) a.q_namespace = nsq;
    json_object *resp;
    uint64_t index;
    char err[4096];
    int rc = sim_register(c->st, c->req->body, c->req->body_len, &a, c->now, &resp, &index, err, sizeof(err));
    if (rc != SIM_OK) return reply_text(c, rc, err);
    return reply_json(c, 200, resp, true, index);
}

/* /v1/job/<rest>, routed by suffix as Nomad's jobSpecificRequest does. */
static int route_job(ctx *c, const char *rest) {
    static const char *const unsimulated[] = {"/evaluate", "/periodic/force", "/plan", "/summary", "/dispatch",
                                              "/revert",   "/stable",         "/scale", "/services", "/submission"};
    size_t stem;
    char *id = NULL;
    int rc;
    uint64_t index;
    if (ends_with(rest, "/deployments", &stem)) {
        id = strndup(rest, stem);
        if (!id) return reply_text(c, 500, "out of memory");
        rc = is(c, "GET") ? read_obj(c, sim_job_deployments(c->st, c->ns, id, &index), &index, NULL)
                          : method_not_allowed(c);
    } else if (ends_with(rest, "/deployment", &stem)) {
        id = strndup(rest, stem);
        if (!id) return reply_text(c, 500, "out of memory");
        rc = is(c, "GET") ? read_obj(c, sim_job_latest_deployment(c->st, c->ns, id, &index), &index, NULL)
                          : method_not_allowed(c);
    } else if (ends_with(rest, "/versions", &stem)) {
        id = strndup(rest, stem);   /* any verb (§13) */
        if (!id) return reply_text(c, 500, "out of memory");
        rc = read_obj(c, sim_job_versions(c->st, c->ns, id, &index), &index, "job versions not found");
    } else if (ends_with(rest, "/evaluations", &stem)) {
        id = strndup(rest, stem);
        if (!id) return reply_text(c, 500, "out of memory");
        rc = is(c, "GET") ? read_obj(c, sim_job_evaluations(c->st, c->ns, id, &index), &index, NULL)
                          : method_not_allowed(c);
    } else if (ends_with(rest, "/allocations", &stem)) {
        /* Allocations are not modelled: an empty list, as for a job with none. */
        rc = is(c, "GET") ? reply_json(c, 200, json_object_new_array(), true, sim_state_index(c->st))
                          : method_not_allowed(c);
    } else {
        for (size_t i = 0; i < sizeof(unsimulated) / sizeof(unsimulated[0]); i++)
            if (ends_with(rest, unsimulated[i], &stem)) return reply_text(c, 501, NOT_IMPLEMENTED);
        if (is(c, "GET")) {
            rc = read_obj(c, sim_job_get(c->st, c->ns, rest, &index), &index, "job not found");
        } else if (is_write(c)) {
            rc = do_register(c, rest);
        } else if (is(c, "DELETE")) {
            rc = reply_text(c, 501, NOT_IMPLEMENTED);
        } else {
            rc = method_not_allowed(c);
        }
    }
    free(id);
    return rc;
}

static int deployment_write(ctx *c, const char *id, bool promote) {
    json_object *resp = NULL;
    uint64_t index = 0;
    char err[2048];
    int rc;
    if (!is_write(c)) return method_not_allowed(c);
    if (promote) {
        if (c->req->body_len == 0) return reply_text(c, 400, "Request body is empty");
        json_object *b = json_tokener_parse(c->req->body);
        if (!b || !json_object_is_type(b, json_type_object)) {
            json_object_put(b);
            return reply_text(c, 400, "invalid character looking for beginning of value");
        }
        json_object *v;
        const char *bid = json_object_object_get_ex(b, "DeploymentID", &v) ? json_object_get_string(v) : "";
        if (!bid || strcmp(bid, id) != 0) {
            json_object_put(b);
            return reply_text(c, 400, "Deployment ID does not match");
        }
        bool all = json_object_object_get_ex(b, "All", &v) && json_object_get_boolean(v);
        json_object *groups = json_object_object_get_ex(b, "Groups", &v) && json_object_is_type(v, json_type_array) ? v : NULL;
        size_t n = groups ? json_object_array_length(groups) : 0;
        const char **names = n ? calloc(n, sizeof(*names)) : NULL;
        for (size_t i = 0; names && i < n; i++) names[i] = json_object_get_string(json_object_array_get_idx(groups, i));
        rc = sim_deployment_promote(c->st, id, all || !n ? NULL : names, n, c->now, &resp, &index, err, sizeof(err));
        free(names);
        json_object_put(b);
    } else {
        rc = sim_deployment_fail(c->st, id, c->now, &resp, &index, err, sizeof(err));
    }
    if (rc != SIM_OK) return reply_text(c, rc, err);
    return reply_json(c, 200, resp, true, index);
}

static int route_deployment(ctx *c, const char *rest) {
    uint64_t index;
    if (strncmp(rest, "allocations/", 12) == 0)
        return is(c, "GET") ? reply_json(c, 200, json_object_new_array(), true, sim_state_index(c->st))
                            : method_not_allowed(c);
    if (strncmp(rest, "promote/", 8) == 0) return deployment_write(c, rest + 8, true);
    if (strncmp(rest, "fail/", 5) == 0) return deployment_write(c, rest + 5, false);
    if (strncmp(rest, "pause/", 6) == 0 || strncmp(rest, "allocation-health/", 18) == 0 ||
        strncmp(rest, "unblock/", 8) == 0)
        return reply_text(c, 501, NOT_IMPLEMENTED);
    if (!is(c, "GET")) return method_not_allowed(c);
    return read_obj(c, sim_deployment_get(c->st, rest, &index), &index, "deployment not found");
}

static int route_eval(ctx *c, const char *rest) {
    uint64_t index;
    size_t stem;
    if (!is(c, "GET")) return method_not_allowed(c);
    if (ends_with(rest, "/allocations", &stem))
        return reply_json(c, 200, json_object_new_array(), true, sim_state_index(c->st));
    return read_obj(c, sim_eval_get(c->st, rest, &index), &index, "eval not found");
}

/* Parses the common query parameters (§1.3). Returns false after filling
 * an error reply. Reads validate index/wait/stale; writes do not. */
static bool parse_query(ctx *c, bool read) {
    const char *q = c->req->query;
    char v[256];
    if (sim_http_query_get(q, "namespace", c->ns, sizeof(c->ns)) != 1 || !c->ns[0])
        snprintf(c->ns, sizeof(c->ns), "default");
    c->pretty = sim_http_query_get(q, "pretty", v, sizeof(v)) == 1;
    if (sim_http_query_get(q, "region", v, sizeof(v)) == 1 && *v && strcmp(v, SIM_REGION) != 0) {
        reply_text(c, 500, "No path to region");
        return false;
    }
    if (!read) return true;
    if (sim_http_query_get(q, "stale", v, sizeof(v)) == 1 && *v) {
        static const char *const ok[] = {"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"};
        bool good = false;
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) good |= strcmp(v, ok[i]) == 0;
        if (!good) {
            reply_text(c, 400, "Expect `true` or `false` for `stale` query string parameter");
            return false;
        }
    }
    int has = sim_http_query_get(q, "wait", v, sizeof(v));
    if (has == -1 || (has == 1 && *v && sim_parse_duration_ms(v, &c->wait_ms) != 0)) {
        reply_text(c, 400, "Invalid wait time");
        return false;
    }
    has = sim_http_query_get(q, "index", v, sizeof(v));
    if (has == 1 && *v) {
        char *end;
        if (!isdigit((unsigned char)v[0]) || strlen(v) > 20) {
            reply_text(c, 400, "Invalid index");
            return false;
        }
        errno = 0;
        unsigned long long n = strtoull(v, &end, 10);
        if (*end || errno) {
            reply_text(c, 400, "Invalid index");
            return false;
        }
        c->min_index = n;
    } else if (has == -1) {
        reply_text(c, 400, "Invalid index");
        return false;
    }
    return true;
}

int sim_api_handle(sim_state *st, const sim_http_req *req, int64_t now_ms, int64_t parked_at_ms, bool force,
                   sim_response *out, int64_t *deadline_ms) {
    ctx c = {.st = st, .req = req, .now = now_ms, .parked_at = parked_at_ms, .force = force, .out = out,
             .deadline = deadline_ms};
    *deadline_ms = 0;
    sim_state_advance(st, now_ms);
    out->has_index = false;
    out->content_type = NULL;
    nm_buf_reset(&out->body);

    char *path = path_decode(req->path, strlen(req->path));
    if (!path) return reply_text(&c, 400, "400 Bad Request: invalid URL escape");
    int rc;
    bool read = strcmp(req->method, "GET") == 0;
    if (strncmp(path, "/v1/", 4) != 0) {
        rc = reply_text(&c, 404, NULL);
    } else if (!parse_query(&c, read)) {
        rc = SIM_API_DONE;
    } else if (strcmp(path, "/v1/jobs") == 0) {
        uint64_t index;
        if (read) rc = read_obj(&c, sim_job_list(st, c.ns, &index), &index, NULL);
        else if (is_write(&c)) rc = do_register(&c, NULL);
        else rc = method_not_allowed(&c);
    } else if (strncmp(path, "/v1/job/", 8) == 0) {
        rc = route_job(&c, path + 8);
    } else if (strncmp(path, "/v1/deployment/", 15) == 0) {
        rc = route_deployment(&c, path + 15);
    } else if (strcmp(path, "/v1/deployments") == 0) {
        uint64_t index;
        rc = read ? read_obj(&c, sim_deployment_list(st, c.ns, &index), &index, NULL) : method_not_allowed(&c);
    } else if (strncmp(path, "/v1/evaluation/", 15) == 0) {
        rc = route_eval(&c, path + 15);
    } else if (strcmp(path, "/v1/status/leader") == 0) {
        /* No X-Nomad-Index here (§13). */
        rc = read ? reply_json(&c, 200, json_object_new_string(SIM_LEADER), false, 0) : method_not_allowed(&c);
    } else if (strcmp(path, "/v1/status/peers") == 0) {
        json_object *a = json_object_new_array();
        json_object_array_add(a, json_object_new_string(SIM_LEADER));
        rc = read ? reply_json(&c, 200, a, false, 0) : (json_object_put(a), method_not_allowed(&c));
    } else if (strcmp(path, "/v1/regions") == 0) {
        json_object *a = json_object_new_array();
        json_object_array_add(a, json_object_new_string(SIM_REGION));
        rc = read ? reply_json(&c, 200, a, false, 0) : (json_object_put(a), method_not_allowed(&c));
    } else if (strcmp(path, "/v1/agent/health") == 0) {
        json_object *h = json_tokener_parse("{\"client\":{\"ok\":true,\"message\":\"ok\"},"
                                            "\"server\":{\"ok\":true,\"message\":\"ok\"}}");
        rc = read ? reply_json(&c, 200, h, false, 0) : (json_object_put(h), method_not_allowed(&c));
    } else {
        rc = reply_text(&c, 404, NULL);   /* root fall-through: empty body */
    }
    free(path);
    return rc;
}
