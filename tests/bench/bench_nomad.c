/* Benchmark of the Nomad client (docs/BENCHMARKS.md, "Nomad client").
 * Not run by ctest.
 *
 *   bench_nomad --nomad http://127.0.0.1:PORT [--requests N] [--namespace NS] [--job ID]
 *
 * Against a nomad-sim (or a Nomad), one thread, the calls the worker makes:
 *   reuse   N x GET /v1/job/:id on one client (its connection kept alive)
 *   fresh   N x (client new, GET /v1/job/:id, client free): a new TCP connection each time
 *   async   N x GET /v1/job/:id on one nomad_loop, 20 in flight (the watcher's engine)
 * Prints requests/s and the per-request p50/p99 for each. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nomad.h"
#include "nomad_async.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *what, double *lat, int n, double total_ms) {
    qsort(lat, (size_t)n, sizeof(double), cmp);
    printf("%-6s %6d requests  %8.0f req/s  p50 %.3f ms  p99 %.3f ms\n", what, n, n / (total_ms / 1e3),
           lat[n / 2], lat[(int)(n * 0.99)]);
}

typedef struct async_run {
    nomad_loop *loop;
    nomad_client *c;
    const char *path;
    int started, done, total, errors;
    double *start, *lat;
} async_run;

static void on_done(void *ud, const nomad_response *r) {
    async_run *a = ud;
    int i = a->done++;
    if (r->code != NOMAD_OK) a->errors++;
    a->lat[i] = now_ms() - a->start[i];
    if (a->started < a->total) {
        a->start[a->started] = now_ms();
        a->started++;
        nomad_async(a->loop, a->c, "GET", a->path, 0, 0, NULL, on_done, a);
    }
}

int main(int argc, char **argv) {
    const char *addr = NULL, *ns = "staging", *job = "web";
    int n = 2000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--nomad")) addr = argv[i + 1];
        else if (!strcmp(argv[i], "--requests")) n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--namespace")) ns = argv[i + 1];
        else if (!strcmp(argv[i], "--job")) job = argv[i + 1];
    }
    if (!addr || n < 10) {
        fprintf(stderr, "usage: bench_nomad --nomad URL [--requests N] [--namespace NS] [--job ID]\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    config_nomad target = {.address = (char *)addr, .region = "", .namespace = (char *)ns, .token = "",
                           .ca_file = "", .client_cert = "", .client_key = "", .tls_server_name = "",
                           .timeout_ms = 5000};
    double *lat = calloc((size_t)n, sizeof(double)), *start = calloc((size_t)n, sizeof(double));
    nomad_job_info info;

    nomad_client *c = nomad_client_new(&target);
    double t0 = now_ms();
    for (int i = 0; i < n; i++) {
        double s = now_ms();
        if (nomad_job_get(c, job, NULL, &info) != NOMAD_OK) {
            fprintf(stderr, "GET failed: %s\n", nomad_client_errstr(c));
            return 1;
        }
        lat[i] = now_ms() - s;
    }
    report("reuse", lat, n, now_ms() - t0);

    t0 = now_ms();
    for (int i = 0; i < n; i++) {
        double s = now_ms();
        nomad_client *fresh = nomad_client_new(&target);
        int rc = nomad_job_get(fresh, job, NULL, &info);
        nomad_client_free(fresh);
        if (rc != NOMAD_OK) return 1;
        lat[i] = now_ms() - s;
    }
    report("fresh", lat, n, now_ms() - t0);

    char path[256];
    nomad_path(path, sizeof(path), "/v1/job/", job, NULL);
    async_run a = {.loop = nomad_loop_new(), .c = c, .path = path, .total = n, .start = start, .lat = lat};
    t0 = now_ms();
    for (; a.started < 20 && a.started < n; a.started++) {
        start[a.started] = now_ms();
        nomad_async(a.loop, c, "GET", path, 0, 0, NULL, on_done, &a);
    }
    while (a.done < n) nomad_loop_run(a.loop, 100);
    report("async", lat, n, now_ms() - t0);
    printf("async connections opened: %llu (errors %d)\n", (unsigned long long)nomad_loop_connects(a.loop), a.errors);
    nomad_loop_free(a.loop);
    nomad_client_free(c);
    free(lat);
    free(start);
    curl_global_cleanup();
    return 0;
}
