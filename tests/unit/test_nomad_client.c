/* nomad/: the HTTP client against a tiny responder running in a thread of
 * this test. The responder listens on 127.0.0.1:0, records each request
 * (request line, headers, body) and answers from a queue of canned
 * responses; special modes never answer, hang up, or send too much. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "nomad.h"

/* ---- the responder ---- */

enum mode {
    ANSWER = 0,   /* status + body, keep the connection */
    HANG,         /* read the request, never answer */
    HANG_UP,      /* read the request, close without answering */
    BIG_LENGTH,   /* 200 with Content-Length NOMAD_MAX_BODY+1, then stream it */
    BIG_STREAM,   /* 200 without Content-Length, stream NOMAD_MAX_BODY+1 bytes, close */
};

typedef struct canned {
    enum mode mode;
    int status;
    const char *body;          /* NULL = empty */
    const char *headers;       /* extra header lines, each ending "\r\n" */
    int delay_ms;
} canned;

#define MAX_REQS 16
#define REQ_BUF 65536

typedef struct recorded {
    char line[1024];           /* "GET /v1/... HTTP/1.1" */
    char headers[4096];        /* raw header lines, each ending "\r\n" */
    char *body;
    size_t body_len;
} recorded;

typedef struct responder {
    int lfd, port;
    int stop[2];               /* pipe: write a byte to stop the thread */
    pthread_t thread;
    pthread_mutex_t mu;
    canned resp[MAX_REQS];
    size_t n_resp, next_resp;
    recorded reqs[MAX_REQS];
    size_t n_reqs;
    int connections;
    bool plaintext_greeting;   /* answer every connection at once and hang up (for TLS clients) */
} responder;

/* Waits until fd is readable; false when asked to stop or on timeout. */
static bool wait_readable(responder *r, int fd, int timeout_ms) {
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = r->stop[0], .events = POLLIN}};
    int n = poll(p, 2, timeout_ms);
    return n > 0 && !(p[1].revents & POLLIN) && (p[0].revents & (POLLIN | POLLHUP | POLLERR));
}

static void sleep_or_stop(responder *r, int ms) {
    struct pollfd p = {.fd = r->stop[0], .events = POLLIN};
    poll(&p, 1, ms);
}

static bool send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0) return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

static void stream_bytes(int fd, size_t total) {
    static char chunk[65536];
    memset(chunk, 'x', sizeof(chunk));
    while (total) {
        size_t n = total < sizeof(chunk) ? total : sizeof(chunk);
        if (!send_all(fd, chunk, n)) return;   /* the client hung up: expected */
        total -= n;
    }
}

/* Serves requests on one connection until the peer closes it. */
static void serve_connection(responder *r, int fd) {
    char *buf = malloc(REQ_BUF + 1);   /* no cmocka asserts off the test thread */
    if (!buf) {
        close(fd);
        return;
    }
    for (;;) {
        size_t len = 0;
        char *end = NULL;
        while (!end) {
            if (len == REQ_BUF || !wait_readable(r, fd, -1)) goto out;
            ssize_t k = recv(fd, buf + len, REQ_BUF - len, 0);
            if (k <= 0) goto out;
            len += (size_t)k;
            buf[len] = '\0';
            end = strstr(buf, "\r\n\r\n");
        }
        size_t head = (size_t)(end - buf) + 4;
        size_t clen = 0;
        for (char *h = strstr(buf, "\r\n"); h && h < end; h = strstr(h + 2, "\r\n"))
            if (strncasecmp(h + 2, "Content-Length:", 15) == 0) clen = strtoul(h + 17, NULL, 10);
        while (len < head + clen) {
            if (len == REQ_BUF || !wait_readable(r, fd, -1)) goto out;
            ssize_t k = recv(fd, buf + len, REQ_BUF - len, 0);
            if (k <= 0) goto out;
            len += (size_t)k;
        }

        pthread_mutex_lock(&r->mu);
        if (r->n_reqs < MAX_REQS) {
            recorded *q = &r->reqs[r->n_reqs++];
            char *eol = strstr(buf, "\r\n");
            snprintf(q->line, sizeof(q->line), "%.*s", (int)(eol - buf), buf);
            snprintf(q->headers, sizeof(q->headers), "%.*s", (int)(end + 2 - (eol + 2)), eol + 2);
            q->body = malloc(clen + 1);
            if (q->body) {
                memcpy(q->body, buf + head, clen);
                q->body[clen] = '\0';
                q->body_len = clen;
            }
        }
        canned c = {.status = 500, .body = "responder: no canned response left"};
        if (r->next_resp < r->n_resp) c = r->resp[r->next_resp++];
        pthread_mutex_unlock(&r->mu);

        if (c.delay_ms) sleep_or_stop(r, c.delay_ms);
        char hdr[1024];
        switch (c.mode) {
        case HANG:
            while (wait_readable(r, fd, -1) && recv(fd, buf, REQ_BUF, 0) > 0) {}
            goto out;
        case HANG_UP:
            goto out;
        case BIG_LENGTH:
            snprintf(hdr, sizeof(hdr), "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
                     NOMAD_MAX_BODY + 1);
            if (send_all(fd, hdr, strlen(hdr))) stream_bytes(fd, (size_t)NOMAD_MAX_BODY + 1);
            goto out;
        case BIG_STREAM:
            snprintf(hdr, sizeof(hdr), "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n");
            if (send_all(fd, hdr, strlen(hdr))) stream_bytes(fd, (size_t)NOMAD_MAX_BODY + 1);
            goto out;
        case ANSWER: {
            size_t blen = c.body ? strlen(c.body) : 0;
            snprintf(hdr, sizeof(hdr), "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n", c.status,
                     c.status / 100 == 2 ? "application/json" : "text/plain; charset=utf-8", blen,
                     c.headers ? c.headers : "");
            if (!send_all(fd, hdr, strlen(hdr)) || !send_all(fd, c.body ? c.body : "", blen)) goto out;
            break;
        }
        }
    }
out:
    free(buf);
    close(fd);
}

static void *responder_main(void *arg) {
    responder *r = arg;
    while (wait_readable(r, r->lfd, -1)) {
        int fd = accept(r->lfd, NULL, NULL);
        if (fd < 0) continue;
        pthread_mutex_lock(&r->mu);
        r->connections++;
        bool greet = r->plaintext_greeting;
        pthread_mutex_unlock(&r->mu);
        if (greet) {
            static const char hello[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
            send_all(fd, hello, sizeof(hello) - 1);
            close(fd);
            continue;
        }
        serve_connection(r, fd);
    }
    return NULL;
}

static int listen_any(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 8), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static int setup(void **state) {
    responder *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->lfd = listen_any(&r->port);
    assert_int_equal(pipe(r->stop), 0);
    pthread_mutex_init(&r->mu, NULL);
    assert_int_equal(pthread_create(&r->thread, NULL, responder_main, r), 0);
    *state = r;
    return 0;
}

static int teardown(void **state) {
    responder *r = *state;
    assert_int_equal(write(r->stop[1], "x", 1), 1);
    pthread_join(r->thread, NULL);
    close(r->lfd);
    close(r->stop[0]);
    close(r->stop[1]);
    for (size_t i = 0; i < r->n_reqs; i++) free(r->reqs[i].body);
    pthread_mutex_destroy(&r->mu);
    free(r);
    return 0;
}

static void push(responder *r, canned c) {
    pthread_mutex_lock(&r->mu);
    assert_true(r->n_resp < MAX_REQS);
    r->resp[r->n_resp++] = c;
    pthread_mutex_unlock(&r->mu);
}

static void answer(responder *r, int status, const char *body, const char *headers) {
    push(r, (canned){.mode = ANSWER, .status = status, .body = body, .headers = headers});
}

static const recorded *req_at(responder *r, size_t i) {
    pthread_mutex_lock(&r->mu);
    size_t n = r->n_reqs;
    pthread_mutex_unlock(&r->mu);
    if (i >= n) fail_msg("request %zu not received (%zu received)", i, n);
    return &r->reqs[i];
}

static int count(responder *r, const int *field) {
    pthread_mutex_lock(&r->mu);
    int v = *field;
    pthread_mutex_unlock(&r->mu);
    return v;
}

static bool has_header(const recorded *q, const char *name) {
    size_t n = strlen(name);
    for (const char *h = q->headers; *h;) {
        if (strncasecmp(h, name, n) == 0 && h[n] == ':') return true;
        const char *eol = strstr(h, "\r\n");
        if (!eol) break;
        h = eol + 2;
    }
    return false;
}

/* ---- clients ---- */

static char address[64];

static nomad_client *client(responder *r, const char *ns, const char *region, const char *token, int64_t timeout_ms) {
    snprintf(address, sizeof(address), "http://127.0.0.1:%d/", r->port);   /* trailing slash is dropped */
    config_nomad t = {.address = address,
                      .region = (char *)region,
                      .namespace = (char *)ns,
                      .token = (char *)token,
                      .ca_file = "",
                      .timeout_ms = timeout_ms};
    nomad_client *c = nomad_client_new(&t);
    assert_non_null(c);
    return c;
}

static const char JOB_JSON[] =
    "{\"ID\":\"web\",\"Name\":\"web\",\"Type\":\"service\",\"Namespace\":\"prod\",\"Region\":\"eu\","
    "\"Meta\":null,\"TaskGroups\":[{\"Name\":\"web\",\"Count\":3,"
    "\"Tasks\":[{\"Name\":\"app\",\"Driver\":\"docker\",\"Config\":{\"image\":\"registry.example/web:1.4.2\"}}]}],"
    "\"Stop\":false,\"Status\":\"running\",\"Stable\":true,\"Version\":4,\"SubmitTime\":1767225600000000000,"
    "\"CreateIndex\":10,\"ModifyIndex\":88,\"JobModifyIndex\":85}";

static const char EVAL_ID[] = "5f6c1d2e-8f4b-4c3a-9e2d-7a6b5c4d3e2f";
static const char DEP_ID[] = "1f18b48c-b33b-8e96-5640-71e3f3000242";

static const char EVAL_JSON[] =
    "{\"ID\":\"5f6c1d2e-8f4b-4c3a-9e2d-7a6b5c4d3e2f\",\"Namespace\":\"prod\",\"Status\":\"complete\","
    "\"DeploymentID\":\"1f18b48c-b33b-8e96-5640-71e3f3000242\",\"FailedTGAllocs\":null,"
    "\"CreateIndex\":91,\"ModifyIndex\":95}";

static const char DEP_JSON[] =
    "{\"ID\":\"1f18b48c-b33b-8e96-5640-71e3f3000242\",\"Namespace\":\"prod\",\"JobID\":\"web\","
    "\"JobVersion\":5,\"JobCreateIndex\":10,\"Status\":\"running\","
    "\"StatusDescription\":\"Deployment is running\",\"TaskGroups\":{\"web\":{\"Promoted\":false,"
    "\"PlacedCanaries\":null,\"DesiredCanaries\":0,\"DesiredTotal\":3,\"PlacedAllocs\":2,\"HealthyAllocs\":1,"
    "\"UnhealthyAllocs\":0}},\"CreateIndex\":121,\"ModifyIndex\":130}";

/* ---- tests ---- */

static void test_job_get_request(void **state) {
    responder *r = *state;
    answer(r, 200, JOB_JSON, "X-Nomad-Index: 88\r\n");
    answer(r, 200, JOB_JSON, NULL);
    nomad_client *c = client(r, "prod", "eu", "s3cr3t-token", 5000);

    json_object *job = NULL;
    nomad_job_info info;
    assert_int_equal(nomad_job_get(c, "web", &job, &info), NOMAD_OK);
    assert_int_equal(nomad_client_http_status(c), 200);
    assert_non_null(job);
    assert_string_equal(nomad_job_task_image(job, "app"), "registry.example/web:1.4.2");
    json_object_put(job);
    assert_string_equal(info.id, "web");
    assert_string_equal(info.ns, "prod");
    assert_true(info.job_modify_index == 85);
    assert_true(info.version == 4);
    assert_true(info.stable);

    /* job_out may be NULL. */
    assert_int_equal(nomad_job_get(c, "web", NULL, &info), NOMAD_OK);
    assert_true(info.modify_index == 88);

    const recorded *q = req_at(r, 0);
    assert_string_equal(q->line, "GET /v1/job/web?namespace=prod&region=eu HTTP/1.1");
    assert_non_null(strstr(q->headers, "X-Nomad-Token: s3cr3t-token\r\n"));
    assert_false(has_header(q, "Authorization"));
    assert_string_equal(req_at(r, 1)->line, "GET /v1/job/web?namespace=prod&region=eu HTTP/1.1");
    /* One easy handle, kept alive: both calls on one connection. */
    assert_int_equal(count(r, &r->connections), 1);
    nomad_client_free(c);
}

static void test_no_token_no_region_escaping(void **state) {
    responder *r = *state;
    answer(r, 200, JOB_JSON, NULL);
    nomad_client *c = client(r, "team a/b", "", "", 5000);
    nomad_job_info info;
    assert_int_equal(nomad_job_get(c, "my job/x", NULL, &info), NOMAD_OK);
    const recorded *q = req_at(r, 0);
    assert_string_equal(q->line, "GET /v1/job/my%20job%2Fx?namespace=team%20a%2Fb HTTP/1.1");
    assert_false(has_header(q, "X-Nomad-Token"));
    nomad_client_free(c);

    /* No namespace configured: the default one, still sent. */
    answer(r, 200, "\"10.0.0.5:4647\"", NULL);
    c = client(r, NULL, NULL, NULL, 5000);
    char leader[64];
    assert_int_equal(nomad_status_leader(c, leader, sizeof(leader)), NOMAD_OK);
    assert_string_equal(leader, "10.0.0.5:4647");
    assert_string_equal(req_at(r, 1)->line, "GET /v1/status/leader?namespace=default HTTP/1.1");
    assert_false(has_header(req_at(r, 1), "X-Nomad-Token"));
    nomad_client_free(c);
}

static void test_register_request(void **state) {
    responder *r = *state;
    answer(r, 200,
           "{\"EvalID\":\"5f6c1d2e-8f4b-4c3a-9e2d-7a6b5c4d3e2f\",\"EvalCreateIndex\":90,\"JobModifyIndex\":90,"
           "\"Warnings\":\"\",\"Index\":90,\"LastContact\":0,\"KnownLeader\":false,\"NextToken\":\"\"}",
           "X-Nomad-Index: 90\r\n");
    answer(r, 200, "{\"EvalID\":\"\",\"JobModifyIndex\":91,\"Warnings\":\"w1\"}", "X-Nomad-Index: 92\r\n");
    nomad_client *c = client(r, "prod", "eu", "s3cr3t-token", 5000);

    json_object *job = json_tokener_parse(JOB_JSON);
    assert_non_null(job);
    nomad_register_result res;
    assert_int_equal(nomad_job_register(c, job, true, 85, &res), NOMAD_OK);
    assert_string_equal(res.eval_id, EVAL_ID);
    assert_true(res.job_modify_index == 90);
    assert_true(res.index == 90);

    const recorded *q = req_at(r, 0);
    assert_string_equal(q->line, "POST /v1/jobs?namespace=prod&region=eu HTTP/1.1");
    assert_non_null(strstr(q->headers, "X-Nomad-Token: s3cr3t-token\r\n"));
    assert_true(has_header(q, "Content-Type"));
    json_object *body = json_tokener_parse(q->body);
    assert_non_null(body);
    json_object *v;
    assert_true(json_object_object_get_ex(body, "EnforceIndex", &v));
    assert_true(json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v));
    assert_true(json_object_object_get_ex(body, "JobModifyIndex", &v));
    assert_true(json_object_is_type(v, json_type_int) && json_object_get_uint64(v) == 85);
    assert_true(json_object_object_get_ex(body, "Job", &v));
    assert_string_equal(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN),
                        json_object_to_json_string_ext(job, JSON_C_TO_STRING_PLAIN));
    assert_int_equal(json_object_object_length(body), 3);
    json_object_put(body);
    /* Plain serialisation: no "\/" escapes, no spaces. */
    assert_null(strstr(q->body, "\\/"));
    assert_non_null(strstr(q->body, "\"image\":\"registry.example/web:1.4.2\""));

    /* The job is borrowed: still ours, still whole. A big index goes out exactly.
     * Index missing from the body: taken from X-Nomad-Index. */
    assert_int_equal(nomad_job_register(c, job, false, 9223372036854775808ULL, &res), NOMAD_OK);
    assert_string_equal(res.eval_id, "");
    assert_string_equal(res.warnings, "w1");
    assert_true(res.index == 92);
    q = req_at(r, 1);
    assert_non_null(strstr(q->body, "\"EnforceIndex\":false"));
    assert_non_null(strstr(q->body, "\"JobModifyIndex\":9223372036854775808"));

    /* The reused handle goes back to GET without a body. */
    answer(r, 200, JOB_JSON, NULL);
    nomad_job_info info;
    assert_int_equal(nomad_job_get(c, "web", NULL, &info), NOMAD_OK);
    q = req_at(r, 2);
    assert_string_equal(q->line, "GET /v1/job/web?namespace=prod&region=eu HTTP/1.1");
    assert_int_equal(q->body_len, 0);
    assert_false(has_header(q, "Content-Length"));
    json_object_put(job);
    nomad_client_free(c);
}

static void test_eval_blocking(void **state) {
    responder *r = *state;
    answer(r, 200, EVAL_JSON, "X-Nomad-Index: 95\r\n");
    answer(r, 200, EVAL_JSON, "X-Nomad-Index: 96\r\n");
    answer(r, 200, EVAL_JSON, NULL);
    nomad_client *c = client(r, "prod", "eu", "s3cr3t-token", 5000);
    nomad_eval ev;
    uint64_t index = 7;
    assert_int_equal(nomad_eval_get(c, EVAL_ID, 0, 3000, &ev, &index), NOMAD_OK);
    assert_true(index == 95);
    assert_string_equal(ev.deployment_id, DEP_ID);
    assert_true(nomad_eval_terminal(&ev));
    assert_int_equal(nomad_eval_get(c, EVAL_ID, 95, 3000, &ev, &index), NOMAD_OK);
    assert_true(index == 96);
    /* No X-Nomad-Index: 0. index_out may be NULL. */
    assert_int_equal(nomad_eval_get(c, EVAL_ID, 96, 3000, &ev, &index), NOMAD_OK);
    assert_true(index == 0);

    assert_string_equal(req_at(r, 0)->line,
                        "GET /v1/evaluation/5f6c1d2e-8f4b-4c3a-9e2d-7a6b5c4d3e2f?namespace=prod&region=eu HTTP/1.1");
    assert_string_equal(req_at(r, 1)->line, "GET /v1/evaluation/5f6c1d2e-8f4b-4c3a-9e2d-7a6b5c4d3e2f"
                                            "?namespace=prod&region=eu&index=95&wait=3000ms HTTP/1.1");
    assert_string_equal(req_at(r, 2)->line, "GET /v1/evaluation/5f6c1d2e-8f4b-4c3a-9e2d-7a6b5c4d3e2f"
                                            "?namespace=prod&region=eu&index=96&wait=3000ms HTTP/1.1");
    for (size_t i = 0; i < 3; i++) assert_non_null(strstr(req_at(r, i)->headers, "X-Nomad-Token: s3cr3t-token\r\n"));
    nomad_client_free(c);
}

static void test_deployment_reads(void **state) {
    responder *r = *state;
    answer(r, 200, DEP_JSON, "X-Nomad-Index: 130\r\n");
    answer(r, 200, DEP_JSON, "X-Nomad-Index: 131\r\n");
    answer(r, 200, DEP_JSON, "X-Nomad-Index: 140\r\n");
    answer(r, 200, "null", "X-Nomad-Index: 140\r\n");
    nomad_client *c = client(r, "prod", "", "", 5000);
    nomad_deployment d;
    uint64_t index = 0;
    assert_int_equal(nomad_deployment_get(c, DEP_ID, 0, 0, &d, &index), NOMAD_OK);
    assert_true(index == 130);
    assert_string_equal(d.status, "running");
    assert_int_equal(d.n_groups, 1);
    assert_int_equal(d.groups[0].healthy_allocs, 1);
    assert_int_equal(nomad_deployment_get(c, DEP_ID, 130, 250, &d, NULL), NOMAD_OK);

    bool found = false;
    assert_int_equal(nomad_job_latest_deployment(c, "web", &d, &found), NOMAD_OK);
    assert_true(found);
    assert_true(d.job_version == 5);
    assert_string_equal(d.id, DEP_ID);
    /* `null`: no deployment, not an error. */
    found = true;
    assert_int_equal(nomad_job_latest_deployment(c, "web", &d, &found), NOMAD_OK);
    assert_false(found);

    assert_string_equal(req_at(r, 0)->line,
                        "GET /v1/deployment/1f18b48c-b33b-8e96-5640-71e3f3000242?namespace=prod HTTP/1.1");
    assert_string_equal(req_at(r, 1)->line, "GET /v1/deployment/1f18b48c-b33b-8e96-5640-71e3f3000242"
                                            "?namespace=prod&index=130&wait=250ms HTTP/1.1");
    assert_string_equal(req_at(r, 2)->line, "GET /v1/job/web/deployment?namespace=prod HTTP/1.1");
    assert_string_equal(req_at(r, 3)->line, "GET /v1/job/web/deployment?namespace=prod HTTP/1.1");
    for (size_t i = 0; i < 4; i++) assert_false(has_header(req_at(r, i), "X-Nomad-Token"));
    nomad_client_free(c);
}

static void test_status_mapping(void **state) {
    responder *r = *state;
    static const struct {
        int status;
        const char *body;
        int want;
        const char *errstr;
    } cases[] = {
        {404, "job not found", NOMAD_ERR_NOT_FOUND, "HTTP 404: job not found"},
        {404, NULL, NOMAD_ERR_NOT_FOUND, "HTTP 404"},
        {403, "Permission denied", NOMAD_ERR_FORBIDDEN, "HTTP 403: Permission denied"},
        {500, "Enforcing job modify index 12: job exists with conflicting job modify index: 13", NOMAD_ERR_CONFLICT,
         "HTTP 500: Enforcing job modify index 12: job exists with conflicting job modify index: 13"},
        {500, "Enforcing job modify index 0: job already exists\n", NOMAD_ERR_CONFLICT,
         "HTTP 500: Enforcing job modify index 0: job already exists"},
        {500, "1 error occurred:\n\t* Task group web validation failed: bad\n\n", NOMAD_ERR_HTTP,
         "HTTP 500: 1 error occurred: * Task group web validation failed: bad"},
        {500, "No cluster leader", NOMAD_ERR_HTTP, "HTTP 500: No cluster leader"},
        {400, "Invalid index", NOMAD_ERR_HTTP, "HTTP 400: Invalid index"},
        {405, "Invalid method", NOMAD_ERR_HTTP, "HTTP 405: Invalid method"},
    };
    size_t n = sizeof(cases) / sizeof(cases[0]);
    for (size_t i = 0; i < n; i++) answer(r, cases[i].status, cases[i].body, NULL);
    nomad_client *c = client(r, "prod", "eu", "s3cr3t-token", 5000);
    nomad_client_set_retry(c, 0, 0, 0);   /* one canned answer per call */
    for (size_t i = 0; i < n; i++) {
        json_object *job = (json_object *)1;
        nomad_job_info info;
        int rc = nomad_job_get(c, "web", &job, &info);
        if (rc != cases[i].want) fail_msg("HTTP %d: got %s", cases[i].status, nomad_strerror(rc));
        assert_null(job);
        assert_int_equal(nomad_client_http_status(c), cases[i].status);
        assert_string_equal(nomad_client_errstr(c), cases[i].errstr);
    }
    /* A success afterwards: status 200. */
    answer(r, 200, JOB_JSON, NULL);
    nomad_job_info info;
    assert_int_equal(nomad_job_get(c, "web", NULL, &info), NOMAD_OK);
    assert_int_equal(nomad_client_http_status(c), 200);
    nomad_client_free(c);
}

static void test_errstr_bounded_and_scrubbed(void **state) {
    responder *r = *state;
    char big[2000];
    memset(big, 'e', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    answer(r, 500, big, NULL);
    answer(r, 403, "token s3cr3t-token: Permission denied", NULL);
    answer(r, 500, "  \r\n weird\x01\x02 text\x7f  \n", NULL);
    nomad_client *c = client(r, "prod", "eu", "s3cr3t-token", 5000);
    nomad_client_set_retry(c, 0, 0, 0);
    nomad_job_info info;
    assert_int_equal(nomad_job_get(c, "web", NULL, &info), NOMAD_ERR_HTTP);
    const char *e = nomad_client_errstr(c);
    assert_true(strlen(e) < 256);
    assert_true(strncmp(e, "HTTP 500: eeee", 14) == 0);
    assert_string_equal(e + strlen(e) - 3, "...");
    assert_null(strchr(e, '\n'));

    assert_int_equal(nomad_job_get(c, "web", NULL, &info), NOMAD_ERR_FORBIDDEN);
    assert_null(strstr(nomad_client_errstr(c), "s3cr3t-token"));
    assert_string_equal(nomad_client_errstr(c), "HTTP 403: token [token]: Permission denied");

    assert_int_equal(nomad_job_get(c, "web", NULL, &info), NOMAD_ERR_HTTP);
    assert_string_equal(nomad_client_errstr(c), "HTTP 500: weird text");
    nomad_client_free(c);
}

static void test_decode_errors(void **state) {
    responder *r = *state;
    answer(r, 200, "{\"Status\":\"complete\",\"ModifyIndex\":3}", NULL);
    answer(r, 200, "{\"ID\":\"web\"} trailing", NULL);
    answer(r, 200, "null", NULL);
    answer(r, 200, "{\"ID\":\"d\",\"JobID\":\"web\",\"JobVersion\":-1,\"Status\":\"running\","
                   "\"CreateIndex\":1,\"ModifyIndex\":1}",
           NULL);
    nomad_client *c = client(r, "prod", "", "", 5000);
    nomad_eval ev;
    assert_int_equal(nomad_eval_get(c, EVAL_ID, 0, 0, &ev, NULL), NOMAD_ERR_DECODE);
    assert_non_null(strstr(nomad_client_errstr(c), "missing field ID"));
    assert_non_null(strstr(nomad_client_errstr(c), "GET /v1/evaluation/"));
    json_object *job = (json_object *)1;
    nomad_job_info info;
    assert_int_equal(nomad_job_get(c, "web", &job, &info), NOMAD_ERR_DECODE);
    assert_null(job);
    /* The job endpoint never answers null; a null job is an error. */
    assert_int_equal(nomad_job_get(c, "web", &job, &info), NOMAD_ERR_DECODE);
    assert_null(job);
    bool found = true;
    nomad_deployment d;
    assert_int_equal(nomad_job_latest_deployment(c, "web", &d, &found), NOMAD_ERR_DECODE);
    assert_false(found);
    assert_non_null(strstr(nomad_client_errstr(c), "JobVersion: negative"));
    nomad_client_free(c);
}

static void test_connection_refused(void **state) {
    (void)state;
    int port;
    int fd = listen_any(&port);
    close(fd);   /* nothing listens there now */
    char addr[64];
    snprintf(addr, sizeof(addr), "http://127.0.0.1:%d", port);
    config_nomad t = {.address = addr, .region = "", .namespace = "prod", .token = "s3cr3t-token", .ca_file = "",
                      .timeout_ms = 2000};
    nomad_client *c = nomad_client_new(&t);
    assert_non_null(c);
    nomad_job_info info;
    assert_int_equal(nomad_job_get(c, "web", NULL, &info), NOMAD_ERR_CONNECT);
    assert_int_equal(nomad_client_http_status(c), 0);
    const char *e = nomad_client_errstr(c);
    assert_true(e[0] != '\0');
    assert_non_null(strstr(e, "127.0.0.1"));
    assert_null(strstr(e, "s3cr3t-token"));
    nomad_client_free(c);
}

static void test_tls_errors(void **state) {
    responder *r = *state;
    pthread_mutex_lock(&r->mu);
    r->plaintext_greeting = true;
    pthread_mutex_unlock(&r->mu);
    char addr[64];
    snprintf(addr, sizeof(addr), "https://127.0.0.1:%d", r->port);
    config_nomad t = {.address = addr, .region = "", .namespace = "prod", .token = "s3cr3t-token", .ca_file = "",
                      .timeout_ms = 2000};
    /* The server speaks plain HTTP to a TLS client. */
    nomad_client *c = nomad_client_new(&t);
    assert_non_null(c);
    nomad_job_info info;
    assert_int_equal(nomad_job_get(c, "web", NULL, &info), NOMAD_ERR_TLS);
    assert_true(nomad_client_errstr(c)[0] != '\0');
    nomad_client_free(c);
    /* A CA file that is not there. */
    t.ca_file = "/nonexistent/nomad-ca.pem";
    c = nomad_client_new(&t);
    assert_non_null(c);
    assert_int_equal(nomad_job_get(c, "web", NULL, &info), NOMAD_ERR_TLS);
    nomad_client_free(c);
}

static void test_hang_up(void **state) {
    responder *r = *state;
    push(r, (canned){.mode = HANG_UP});
    answer(r, 200, JOB_JSON, NULL);
    nomad_client *c = client(r, "prod", "", "", 2000);
    nomad_client_set_retry(c, 0, 0, 0);
    nomad_job_info info;
    assert_int_equal(nomad_job_get(c, "web", NULL, &info), NOMAD_ERR_CONNECT);
    /* The same client recovers on a new connection. */
    assert_int_equal(nomad_job_get(c, "web", NULL, &info), NOMAD_OK);
    assert_int_equal(count(r, &r->connections), 2);
    nomad_client_free(c);
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_timeout(void **state) {
    responder *r = *state;
    push(r, (canned){.mode = HANG});
    nomad_client *c = client(r, "prod", "", "", 300);
    nomad_job_info info;
    int64_t t0 = now_ms();
    assert_int_equal(nomad_job_get(c, "web", NULL, &info), NOMAD_ERR_TIMEOUT);
    int64_t took = now_ms() - t0;
    assert_true(took >= 250 && took < 3000);
    assert_non_null(strstr(nomad_client_errstr(c), "timed out"));
    nomad_client_free(c);
}

/* A blocking query may take wait + jitter + the per-call timeout; a plain
 * read with the same delay times out. */
static void test_blocking_timeout_budget(void **state) {
    responder *r = *state;
    push(r, (canned){.mode = ANSWER, .status = 200, .body = EVAL_JSON, .headers = "X-Nomad-Index: 99\r\n",
                     .delay_ms = 500});
    push(r, (canned){.mode = ANSWER, .status = 200, .body = EVAL_JSON, .delay_ms = 500});
    nomad_client *c = client(r, "prod", "", "", 300);
    nomad_eval ev;
    uint64_t index = 0;
    assert_int_equal(nomad_eval_get(c, EVAL_ID, 42, 400, &ev, &index), NOMAD_OK);
    assert_true(index == 99);
    assert_string_equal(req_at(r, 0)->line, "GET /v1/evaluation/5f6c1d2e-8f4b-4c3a-9e2d-7a6b5c4d3e2f"
                                            "?namespace=prod&index=42&wait=400ms HTTP/1.1");
    assert_int_equal(nomad_eval_get(c, EVAL_ID, 0, 400, &ev, &index), NOMAD_ERR_TIMEOUT);
    nomad_client_free(c);
}

static void test_body_ceiling(void **state) {
    responder *r = *state;
    push(r, (canned){.mode = BIG_LENGTH});
    push(r, (canned){.mode = BIG_STREAM});
    answer(r, 200, JOB_JSON, NULL);
    nomad_client *c = client(r, "prod", "", "", 10000);
    nomad_job_info info;
    json_object *job = (json_object *)1;
    /* Announced by Content-Length: refused before reading it. */
    assert_int_equal(nomad_job_get(c, "web", &job, &info), NOMAD_ERR_TOO_LARGE);
    assert_null(job);
    assert_non_null(strstr(nomad_client_errstr(c), "larger than 8388608 bytes"));
    /* Streamed without a length: cut at the ceiling. */
    assert_int_equal(nomad_job_get(c, "web", NULL, &info), NOMAD_ERR_TOO_LARGE);
    assert_non_null(strstr(nomad_client_errstr(c), "larger than"));
    /* And the client still works. */
    assert_int_equal(nomad_job_get(c, "web", NULL, &info), NOMAD_OK);
    nomad_client_free(c);
}

static void test_invalid_arguments(void **state) {
    responder *r = *state;
    nomad_client *c = client(r, "prod", "", "", 1000);
    nomad_job_info info;
    assert_int_equal(nomad_job_get(c, "", NULL, &info), NOMAD_ERR_INVALID);
    assert_int_equal(nomad_job_get(c, NULL, NULL, &info), NOMAD_ERR_INVALID);
    nomad_register_result res;
    assert_int_equal(nomad_job_register(c, NULL, true, 1, &res), NOMAD_ERR_INVALID);
    pthread_mutex_lock(&r->mu);
    size_t sent = r->n_reqs;
    pthread_mutex_unlock(&r->mu);
    assert_int_equal(sent, 0);   /* nothing was sent */
    nomad_client_free(c);
    /* A token that would split the header is never sent. */
    snprintf(address, sizeof(address), "http://127.0.0.1:%d", r->port);
    config_nomad t = {.address = address, .namespace = "prod", .token = "abc\r\nX-Evil: 1", .timeout_ms = 1000};
    c = nomad_client_new(&t);
    assert_non_null(c);
    assert_int_equal(nomad_job_get(c, "web", NULL, &info), NOMAD_ERR_INVALID);
    assert_null(strstr(nomad_client_errstr(c), "abc"));
    nomad_client_free(c);
    pthread_mutex_lock(&r->mu);
    sent = r->n_reqs;
    pthread_mutex_unlock(&r->mu);
    assert_int_equal(sent, 0);
    assert_null(nomad_client_new(NULL));
    nomad_client_free(NULL);
}

/* ---- retries ---- */

static void test_backoff_pure(void **state) {
    (void)state;
    /* Equal jitter: [ceil(e/2), e] with e = min(cap, base * 2^attempt). */
    assert_int_equal(nomad_backoff_ms(0, 100, 1000, 0), 50);
    assert_int_equal(nomad_backoff_ms(0, 100, 1000, 50), 100);
    assert_int_equal(nomad_backoff_ms(0, 100, 1000, 51), 50);   /* rnd % 51 */
    assert_int_equal(nomad_backoff_ms(1, 100, 1000, 0), 100);
    assert_int_equal(nomad_backoff_ms(2, 100, 1000, 0), 200);
    assert_int_equal(nomad_backoff_ms(3, 100, 1000, 400), 800);
    assert_int_equal(nomad_backoff_ms(4, 100, 1000, 0), 500);     /* capped at 1000 */
    assert_int_equal(nomad_backoff_ms(60, 100, 1000, 500), 1000); /* no overflow on large attempts */
    assert_int_equal(nomad_backoff_ms(-3, 100, 1000, 0), 50);
    assert_int_equal(nomad_backoff_ms(2, 0, 1000, 7), 0);
    assert_int_equal(nomad_backoff_ms(2, 100, 0, 7), 0);
    assert_int_equal(nomad_backoff_ms(0, 1, 1000, 12345), 1);
    for (uint32_t rnd = 0; rnd < 5000; rnd += 7)
        for (int a = 0; a < 40; a++) {
            int ms = nomad_backoff_ms(a, 250, 30000, rnd * 2654435761u);
            assert_true(ms >= 125 && ms <= 30000);
        }
}

static void test_retry_get_not_post(void **state) {
    responder *r = *state;
    answer(r, 500, "No cluster leader", NULL);
    answer(r, 502, "bad gateway", NULL);
    answer(r, 200, JOB_JSON, NULL);
    answer(r, 500, "rpc error: timeout", NULL);   /* register: not repeated */
    answer(r, 500, "No cluster leader", NULL);    /* GET, retries exhausted */
    answer(r, 500, "No cluster leader", NULL);
    answer(r, 500, "No cluster leader", NULL);
    answer(r, 404, "job not found", NULL);        /* 4xx: never repeated */
    answer(r, 500, "Enforcing job modify index 1: job does not exist", NULL);   /* conflict: never repeated */
    nomad_client *c = client(r, "prod", "", "", 5000);
    nomad_client_set_retry(c, 2, 5, 20);
    nomad_job_info info;
    assert_int_equal(nomad_job_get(c, "web", NULL, &info), NOMAD_OK);
    assert_int_equal(nomad_client_attempts(c), 3);
    assert_string_equal(info.id, "web");

    json_object *job = json_tokener_parse(JOB_JSON);
    nomad_register_result res;
    assert_int_equal(nomad_job_register(c, job, false, 0, &res), NOMAD_ERR_HTTP);
    assert_int_equal(nomad_client_attempts(c), 1);
    assert_string_equal(nomad_client_errstr(c), "HTTP 500: rpc error: timeout");

    assert_int_equal(nomad_job_get(c, "web", NULL, &info), NOMAD_ERR_HTTP);
    assert_int_equal(nomad_client_attempts(c), 3);
    assert_int_equal(nomad_job_get(c, "web", NULL, &info), NOMAD_ERR_NOT_FOUND);
    assert_int_equal(nomad_client_attempts(c), 1);
    assert_int_equal(nomad_job_register(c, job, true, 1, &res), NOMAD_ERR_CONFLICT);
    assert_int_equal(nomad_client_attempts(c), 1);
    json_object_put(job);
    pthread_mutex_lock(&r->mu);
    size_t sent = r->n_reqs;
    pthread_mutex_unlock(&r->mu);
    assert_int_equal(sent, 9);
    assert_string_equal(req_at(r, 3)->line, "POST /v1/jobs?namespace=prod HTTP/1.1");
    nomad_client_free(c);
}

static void test_retry_hang_up_and_refused(void **state) {
    responder *r = *state;
    push(r, (canned){.mode = HANG_UP});
    answer(r, 200, JOB_JSON, NULL);
    nomad_client *c = client(r, "prod", "", "", 2000);
    nomad_client_set_retry(c, 1, 5, 10);
    nomad_job_info info;
    assert_int_equal(nomad_job_get(c, "web", NULL, &info), NOMAD_OK);   /* a cut connection: GET repeated */
    assert_int_equal(nomad_client_attempts(c), 2);
    nomad_client_free(c);

    /* Refused: nothing was sent, so even a write is repeated (and fails again). */
    int port;
    int fd = listen_any(&port);
    close(fd);
    char addr[64];
    snprintf(addr, sizeof(addr), "http://127.0.0.1:%d", port);
    config_nomad t = {.address = addr, .namespace = "prod", .timeout_ms = 2000};
    c = nomad_client_new(&t);
    nomad_client_set_retry(c, 2, 1, 2);
    nomad_deployment_update up;
    assert_int_equal(nomad_deployment_fail(c, DEP_ID, &up), NOMAD_ERR_CONNECT);
    assert_int_equal(nomad_client_attempts(c), 3);
    nomad_client_free(c);
}

/* ---- new calls ---- */

static const char VERSIONS_JSON[] =
    "{\"Diffs\":null,\"Index\":88,\"KnownLeader\":true,\"LastContact\":0,\"NextToken\":\"\",\"Versions\":["
    "{\"ID\":\"web\",\"Version\":5,\"Stable\":false,\"SubmitTime\":1767225700000000000,\"JobModifyIndex\":120,"
    "\"TaskGroups\":[{\"Name\":\"web\",\"Tasks\":[{\"Name\":\"app\",\"Config\":{\"image\":\"r/web:1.5.0\"}}]}]},"
    "{\"ID\":\"web\",\"Version\":4,\"Stable\":true,\"SubmitTime\":1767225600000000000,\"JobModifyIndex\":85,"
    "\"TaskGroups\":[{\"Name\":\"web\",\"Tasks\":[{\"Name\":\"app\",\"Config\":{\"image\":\"r/web:1.4.2\"}}]}]}]}";

static const char PLAN_JSON[] =
    "{\"Annotations\":{\"DesiredTGUpdates\":{\"web\":{\"Ignore\":3,\"Place\":0,\"Migrate\":0,\"Stop\":0,"
    "\"InPlaceUpdate\":0,\"DestructiveUpdate\":0,\"Canary\":1,\"Preemptions\":0}},\"PreemptedAllocs\":null},"
    "\"FailedTGAllocs\":null,\"JobModifyIndex\":85,\"CreatedEvals\":null,"
    "\"Diff\":{\"Type\":\"Edited\",\"ID\":\"web\",\"Fields\":[],\"Objects\":[],\"TaskGroups\":[{\"Type\":\"Edited\","
    "\"Name\":\"web\",\"Fields\":[],\"Objects\":[],\"Tasks\":[],\"Updates\":{\"canary\":1}}]},"
    "\"NextPeriodicLaunch\":\"0001-01-01T00:00:00Z\",\"Warnings\":\"\",\"Index\":85}";

static const char UPDATE_JSON[] =
    "{\"EvalID\":\"5f6c1d2e-8f4b-4c3a-9e2d-7a6b5c4d3e2f\",\"EvalCreateIndex\":140,\"DeploymentModifyIndex\":141,"
    "\"RevertedJobVersion\":null,\"Index\":141}";

static const char ALLOCS_JSON[] =
    "[{\"ID\":\"a1\",\"Name\":\"web.web[0]\",\"JobID\":\"web\",\"JobVersion\":5,\"TaskGroup\":\"web\","
    "\"DesiredStatus\":\"run\",\"ClientStatus\":\"failed\",\"DeploymentStatus\":{\"Healthy\":false,"
    "\"Timestamp\":\"2026-01-01T00:00:00Z\",\"Canary\":true,\"ModifyIndex\":7},"
    "\"TaskStates\":{\"app\":{\"State\":\"dead\",\"Failed\":true,\"Restarts\":0,\"Events\":["
    "{\"Type\":\"Received\",\"DisplayMessage\":\"Task received by client\",\"Details\":{}},"
    "{\"Type\":\"Driver Failure\",\"DisplayMessage\":\"Failed to pull `r/web:9`: manifest unknown\","
    "\"Details\":{\"driver_error\":\"Failed to pull\"},\"FailsTask\":true},"
    "{\"Type\":\"Not Restarting\",\"DisplayMessage\":\"Error was unrecoverable\",\"FailsTask\":true}]}},"
    "\"CreateIndex\":150,\"ModifyIndex\":160},"
    "{\"ID\":\"a2\",\"JobVersion\":5,\"TaskGroup\":\"web\",\"DesiredStatus\":\"run\",\"ClientStatus\":\"running\","
    "\"DeploymentStatus\":{\"Healthy\":null,\"Canary\":true},\"CreateIndex\":151,\"ModifyIndex\":151}]";

static void test_versions_plan_revert(void **state) {
    responder *r = *state;
    answer(r, 200, VERSIONS_JSON, "X-Nomad-Index: 88\r\n");
    answer(r, 404, "job versions not found", NULL);
    answer(r, 200, PLAN_JSON, NULL);
    answer(r, 403, "Permission denied", NULL);
    answer(r, 200, "{\"EvalID\":\"e-1\",\"EvalCreateIndex\":200,\"JobModifyIndex\":200,\"Warnings\":\"\",\"Index\":200}",
           NULL);
    answer(r, 500, "Current job has version 9; enforcing version 8", NULL);
    nomad_client *c = client(r, "prod", "eu", "s3cr3t-token", 5000);

    nomad_version_list vl;
    assert_int_equal(nomad_job_versions(c, "web", "app", &vl), NOMAD_OK);
    assert_int_equal(vl.n, 2);
    assert_int_equal(vl.n_total, 2);
    assert_true(vl.v[0].version == 5 && !vl.v[0].stable);
    assert_string_equal(vl.v[0].image, "r/web:1.5.0");
    assert_true(vl.v[1].version == 4 && vl.v[1].stable && vl.v[1].submit_time == 1767225600000000000LL);
    assert_string_equal(vl.v[1].image, "r/web:1.4.2");
    assert_int_equal(nomad_job_versions(c, "nope", "app", &vl), NOMAD_ERR_NOT_FOUND);
    assert_int_equal(nomad_client_attempts(c), 1);

    json_object *job = json_tokener_parse(JOB_JSON);
    nomad_plan plan;
    json_object *raw = NULL;
    assert_int_equal(nomad_job_plan(c, job, &plan, &raw), NOMAD_OK);
    assert_non_null(raw);
    assert_true(json_object_object_get_ex(raw, "Diff", NULL));
    json_object_put(raw);
    assert_true(plan.job_modify_index == 85);
    assert_string_equal(plan.diff_type, "Edited");
    assert_int_equal(plan.n_groups, 1);
    assert_string_equal(plan.groups[0].name, "web");
    assert_true(plan.groups[0].canary == 1 && plan.groups[0].ignore == 3 && plan.groups[0].destructive == 0);
    assert_string_equal(plan.groups[0].diff_type, "Edited");
    assert_int_equal(nomad_job_plan(c, job, &plan, NULL), NOMAD_ERR_FORBIDDEN);

    nomad_register_result res;
    assert_int_equal(nomad_job_revert(c, "web", 4, true, 5, &res), NOMAD_OK);
    assert_string_equal(res.eval_id, "e-1");
    assert_true(res.index == 200);
    assert_int_equal(nomad_job_revert(c, "web", 8, false, 0, &res), NOMAD_ERR_HTTP);
    assert_int_equal(nomad_client_attempts(c), 1);
    assert_string_equal(nomad_client_errstr(c), "HTTP 500: Current job has version 9; enforcing version 8");

    assert_string_equal(req_at(r, 0)->line, "GET /v1/job/web/versions?namespace=prod&region=eu HTTP/1.1");
    assert_string_equal(req_at(r, 2)->line, "POST /v1/job/web/plan?namespace=prod&region=eu HTTP/1.1");
    json_object *b = json_tokener_parse(req_at(r, 2)->body), *v;
    assert_true(json_object_object_get_ex(b, "Diff", &v) && json_object_get_boolean(v));
    assert_true(json_object_object_get_ex(b, "Job", &v) && json_object_equal(v, job));
    json_object_put(b);
    assert_string_equal(req_at(r, 4)->line, "POST /v1/job/web/revert?namespace=prod&region=eu HTTP/1.1");
    assert_string_equal(req_at(r, 4)->body, "{\"JobID\":\"web\",\"JobVersion\":4,\"EnforcePriorVersion\":5}");
    assert_string_equal(req_at(r, 5)->body, "{\"JobID\":\"web\",\"JobVersion\":8}");
    for (size_t i = 0; i < 6; i++) assert_non_null(strstr(req_at(r, i)->headers, "X-Nomad-Token: s3cr3t-token\r\n"));
    json_object_put(job);
    nomad_client_free(c);
}

static void test_deployment_writes(void **state) {
    responder *r = *state;
    answer(r, 200, UPDATE_JSON, NULL);
    answer(r, 200, UPDATE_JSON, NULL);
    answer(r, 500, "1 error occurred:\n\t* Task group \"web\" has 0/1 healthy allocations\n\n", NULL);
    answer(r, 200, "{\"EvalID\":\"\",\"EvalCreateIndex\":0,\"DeploymentModifyIndex\":150,"
                   "\"RevertedJobVersion\":4,\"Index\":150}", "X-Nomad-Index: 150\r\n");
    answer(r, 200, "{\"EvalID\":\"\",\"DeploymentModifyIndex\":151,\"Index\":151}", NULL);
    answer(r, 200, UPDATE_JSON, NULL);
    answer(r, 500, "deployment not found", NULL);
    nomad_client *c = client(r, "prod", "", "", 5000);
    nomad_deployment_update up;
    assert_int_equal(nomad_deployment_promote(c, DEP_ID, NULL, 0, &up), NOMAD_OK);
    assert_string_equal(up.eval_id, EVAL_ID);
    assert_true(up.deployment_modify_index == 141 && up.index == 141 && !up.reverted);
    const char *groups[] = {"web", "api"};
    assert_int_equal(nomad_deployment_promote(c, DEP_ID, groups, 2, &up), NOMAD_OK);
    assert_int_equal(nomad_deployment_promote(c, DEP_ID, NULL, 0, &up), NOMAD_ERR_HTTP);
    assert_int_equal(nomad_client_attempts(c), 1);   /* a write: not repeated after a 500 */
    assert_non_null(strstr(nomad_client_errstr(c), "has 0/1 healthy allocations"));
    assert_int_equal(nomad_deployment_fail(c, DEP_ID, &up), NOMAD_OK);
    assert_true(up.reverted && up.reverted_job_version == 4 && up.eval_id[0] == '\0');
    assert_int_equal(nomad_deployment_pause(c, DEP_ID, true, &up), NOMAD_OK);
    assert_true(up.index == 151);
    assert_int_equal(nomad_deployment_pause(c, DEP_ID, false, &up), NOMAD_OK);
    assert_int_equal(nomad_deployment_pause(c, DEP_ID, true, &up), NOMAD_ERR_HTTP);
    const char *bad[] = {"web", ""};
    assert_int_equal(nomad_deployment_promote(c, DEP_ID, bad, 2, &up), NOMAD_ERR_INVALID);
    assert_int_equal(nomad_deployment_fail(c, "", &up), NOMAD_ERR_INVALID);

    char line[256];
    snprintf(line, sizeof(line), "POST /v1/deployment/promote/%s?namespace=prod HTTP/1.1", DEP_ID);
    assert_string_equal(req_at(r, 0)->line, line);
    char body[256];
    snprintf(body, sizeof(body), "{\"DeploymentID\":\"%s\",\"All\":true}", DEP_ID);
    assert_string_equal(req_at(r, 0)->body, body);
    snprintf(body, sizeof(body), "{\"DeploymentID\":\"%s\",\"Groups\":[\"web\",\"api\"]}", DEP_ID);
    assert_string_equal(req_at(r, 1)->body, body);
    snprintf(line, sizeof(line), "POST /v1/deployment/fail/%s?namespace=prod HTTP/1.1", DEP_ID);
    assert_string_equal(req_at(r, 3)->line, line);
    snprintf(line, sizeof(line), "POST /v1/deployment/pause/%s?namespace=prod HTTP/1.1", DEP_ID);
    assert_string_equal(req_at(r, 4)->line, line);
    snprintf(body, sizeof(body), "{\"DeploymentID\":\"%s\",\"Pause\":true}", DEP_ID);
    assert_string_equal(req_at(r, 4)->body, body);
    snprintf(body, sizeof(body), "{\"DeploymentID\":\"%s\",\"Pause\":false}", DEP_ID);
    assert_string_equal(req_at(r, 5)->body, body);
    pthread_mutex_lock(&r->mu);
    size_t sent = r->n_reqs;
    pthread_mutex_unlock(&r->mu);
    assert_int_equal(sent, 7);
    nomad_client_free(c);
}

static void test_allocations_and_deployments(void **state) {
    responder *r = *state;
    answer(r, 200, ALLOCS_JSON, "X-Nomad-Index: 160\r\n");
    answer(r, 200, "[]", NULL);
    char deps[2048];
    snprintf(deps, sizeof(deps), "[%s,%s]",
             "{\"ID\":\"d-old\",\"JobID\":\"web\",\"JobVersion\":4,\"Status\":\"successful\",\"CreateIndex\":100,"
             "\"ModifyIndex\":110}",
             "{\"ID\":\"d-new\",\"JobID\":\"web\",\"JobVersion\":5,\"Status\":\"running\",\"CreateIndex\":121,"
             "\"ModifyIndex\":130,\"TaskGroups\":{\"web\":{\"DesiredCanaries\":1,\"PlacedCanaries\":[\"a1\",\"a2\"]}}}");
    answer(r, 200, deps, NULL);
    answer(r, 200, "{\"not\":\"a list\"}", NULL);
    nomad_client *c = client(r, "prod", "", "", 5000);
    nomad_alloc *allocs = calloc(4, sizeof(*allocs));
    size_t n = 0, total = 0;
    assert_int_equal(nomad_deployment_allocations(c, DEP_ID, allocs, 4, &n, &total), NOMAD_OK);
    assert_int_equal(n, 2);
    assert_int_equal(total, 2);
    assert_string_equal(allocs[0].id, "a2");   /* newest first */
    assert_true(allocs[0].canary && !allocs[0].healthy_set);
    assert_string_equal(allocs[1].id, "a1");
    assert_true(allocs[1].healthy_set && !allocs[1].healthy && allocs[1].canary);
    assert_int_equal(allocs[1].n_tasks, 1);
    assert_string_equal(allocs[1].tasks[0].last_type, "Not Restarting");
    assert_string_equal(allocs[1].tasks[0].reason_type, "Driver Failure");
    assert_non_null(strstr(allocs[1].tasks[0].reason, "Failed to pull"));
    assert_int_equal(nomad_deployment_allocations(c, DEP_ID, allocs, 4, &n, &total), NOMAD_OK);
    assert_int_equal(n, 0);

    nomad_deployment ds[2];
    assert_int_equal(nomad_job_deployments(c, "web", true, ds, 2, &n, &total), NOMAD_OK);
    assert_int_equal(n, 2);
    assert_string_equal(ds[0].id, "d-new");
    assert_int_equal(ds[0].groups[0].placed_canaries, 2);
    assert_string_equal(ds[1].id, "d-old");
    assert_int_equal(nomad_job_deployments(c, "web", false, ds, 2, &n, &total), NOMAD_ERR_DECODE);
    assert_non_null(strstr(nomad_client_errstr(c), "expected an array"));

    char line[256];
    snprintf(line, sizeof(line), "GET /v1/deployment/allocations/%s?namespace=prod HTTP/1.1", DEP_ID);
    assert_string_equal(req_at(r, 0)->line, line);
    assert_string_equal(req_at(r, 2)->line, "GET /v1/job/web/deployments?all=true&namespace=prod HTTP/1.1");
    assert_string_equal(req_at(r, 3)->line, "GET /v1/job/web/deployments?namespace=prod HTTP/1.1");
    free(allocs);
    nomad_client_free(c);
}

/* ---- TLS wiring ---- */

static void test_tls_settings(void **state) {
    responder *r = *state;
    answer(r, 200, JOB_JSON, NULL);
    /* tls_server_name: the connection goes to the address, the name is the host. */
    snprintf(address, sizeof(address), "http://127.0.0.1:%d", r->port);
    config_nomad t = {.address = address, .namespace = "prod", .tls_server_name = "nomad.service.consul",
                      .timeout_ms = 2000};
    nomad_client *c = nomad_client_new(&t);
    assert_non_null(c);
    nomad_job_info info;
    assert_int_equal(nomad_job_get(c, "web", NULL, &info), NOMAD_OK);
    char host[128];
    snprintf(host, sizeof(host), "Host: nomad.service.consul:%d\r\n", r->port);
    assert_non_null(strstr(req_at(r, 0)->headers, host));
    nomad_client_free(c);

    /* A client certificate that is not there: a TLS error naming the file, nothing sent. */
    snprintf(address, sizeof(address), "https://127.0.0.1:%d", r->port);
    config_nomad t2 = {.address = address, .namespace = "prod", .client_cert = "/nonexistent/cli.pem",
                       .client_key = "/nonexistent/cli-key.pem", .timeout_ms = 2000};
    c = nomad_client_new(&t2);
    assert_non_null(c);
    assert_int_equal(nomad_job_get(c, "web", NULL, &info), NOMAD_ERR_TLS);
    assert_non_null(strstr(nomad_client_errstr(c), "client certificate /nonexistent/cli.pem"));
    assert_int_equal(nomad_client_attempts(c), 1);
    nomad_client_free(c);
    /* A certificate file that is not a certificate: curl's own refusal, still TLS. */
    char tmpl[] = "/tmp/nomad-cert-XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not a pem\n", 10), 10);
    close(fd);
    pthread_mutex_lock(&r->mu);
    r->plaintext_greeting = true;
    pthread_mutex_unlock(&r->mu);
    config_nomad t3 = {.address = address, .namespace = "prod", .client_cert = tmpl, .client_key = tmpl,
                       .timeout_ms = 2000};
    c = nomad_client_new(&t3);
    assert_int_equal(nomad_job_get(c, "web", NULL, &info), NOMAD_ERR_TLS);
    nomad_client_free(c);
    unlink(tmpl);
    /* The missing-file client never connected (the bad certificate's may or may not have). */
    assert_true(count(r, &r->connections) >= 1 && count(r, &r->connections) <= 2);
}

static void test_path_helper(void **state) {
    (void)state;
    char p[64];
    assert_int_equal(nomad_path(p, sizeof(p), "/v1/deployment/", "a b/c", NULL), NOMAD_OK);
    assert_string_equal(p, "/v1/deployment/a%20b%2Fc");
    assert_int_equal(nomad_path(p, sizeof(p), "/v1/job/", "web", "/deployments"), NOMAD_OK);
    assert_string_equal(p, "/v1/job/web/deployments");
    assert_int_equal(nomad_path(p, 10, "/v1/job/", "web", "/deployments"), NOMAD_ERR_INVALID);
    assert_string_equal(p, "");
    assert_int_equal(nomad_path(p, sizeof(p), "/v1/job/", "", NULL), NOMAD_ERR_INVALID);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_job_get_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_token_no_region_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eval_blocking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deployment_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_mapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errstr_bounded_and_scrubbed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_errors, setup, teardown),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test_setup_teardown(test_tls_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hang_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocking_timeout_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_ceiling, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_arguments, setup, teardown),
        cmocka_unit_test(test_backoff_pure),
        cmocka_unit_test_setup_teardown(test_retry_get_not_post, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_hang_up_and_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_versions_plan_revert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deployment_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allocations_and_deployments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_settings, setup, teardown),
        cmocka_unit_test(test_path_helper),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
