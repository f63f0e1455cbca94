/* nomad-sim: fuzzes the incremental HTTP parser and, for every request it
 * accepts, the API layer (with the /_sim/ control API) on a small simulated
 * cluster. The first byte picks how the input is cut into reads (low 6
 * bits), so split points get explored too, and whether ACLs are on (bit 6). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "api.h"
#include "http.h"
#include "state.h"

static const char JOBS[] =
    "[{\"ID\":\"web\",\"Namespace\":\"staging\",\"Version\":0,\"Stable\":true,\"Status\":\"running\","
    "\"TaskGroups\":[{\"Name\":\"web\",\"Count\":2,\"Update\":{\"MaxParallel\":1,\"Canary\":1},"
    "\"Tasks\":[{\"Name\":\"web\",\"Driver\":\"docker\",\"Config\":{\"image\":\"w:v1\"}}]}]}]";

static const char TOKENS[] =
    "[{\"SecretID\":\"s1\",\"Type\":\"client\",\"Namespaces\":{\"staging\":[\"read\",\"submit-job\"],\"*\":[\"deny\"]}},"
    " {\"SecretID\":\"s2\",\"Type\":\"management\"}]";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t step = (size_t)(data[0] % 64) + 1;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;

    sim_state *st = sim_state_new(100, 10, 0, 1);
    if (!st) return 0;
    char err[256];
    if (sim_state_load(st, JOBS, sizeof(JOBS) - 1, 0, err, sizeof(err)) != SIM_OK) __builtin_trap();

    sim_ctl ctl;
    if (sim_ctl_init(&ctl, 3) != 0) __builtin_trap();
    if ((data[0] & 64) && sim_ctl_load_acl(&ctl, TOKENS, sizeof(TOKENS) - 1, err, sizeof(err)) != 0) __builtin_trap();
    sim_http_parser p;
    sim_http_parser_init(&p, 4096, 16384);
    int64_t now = 0;
    size_t off = 0;
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        size_t used = 0;
        int rc = sim_http_parse(&p, in + off, n, &used);
        if (used > n) __builtin_trap();
        off += used;
        if (rc < 0) break;
        if (rc == SIM_HTTP_AGAIN) {
            if (used != n) __builtin_trap();
            continue;
        }
        if (!p.req.method || !p.req.path || !p.req.query || !p.req.target) __builtin_trap();
        sim_response r;
        sim_response_init(&r);
        int64_t deadline;
        now += 37;
        int a = sim_api_handle_ctl(st, &ctl, &p.req, now, now, false, &r, &deadline);
        if (a == SIM_API_PARK) {
            if (deadline < now) __builtin_trap();
            /* hang_blocking parks with no deadline: give up after a while. */
            int64_t at = deadline - now > 3600000 ? now + 3600000 : deadline;
            sim_response_free(&r);
            sim_response_init(&r);
            if (sim_api_handle_ctl(st, &ctl, &p.req, at, now, true, &r, &deadline) != SIM_API_DONE) __builtin_trap();
            now = at;
        }
        if (r.status < 200 || r.status > 599) __builtin_trap();
        sim_response_free(&r);
        sim_http_parser_reset(&p);
    }
    sim_state_advance(st, now + 1000);
    sim_http_parser_free(&p);
    sim_ctl_free(&ctl);
    sim_state_free(st);
    return 0;
}
