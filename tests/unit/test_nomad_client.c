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
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
