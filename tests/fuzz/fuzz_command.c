/* Tokenizer + grammar + checks on arbitrary bytes: never crash, always
 * NUL-terminated messages, a usage line with every error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static config *fuzz_config(void) {
    static const char yaml[] = "redis: redis://127.0.0.1\npostgres: x\n"
                               "environments: {staging: {nomad: {address: http://n}}}\n"
                               "jobs: {web: {tasks: [web], image: r/web}}\n";
    config *cfg = NULL;
    char err[256];
    if (config_parse(yaml, sizeof(yaml) - 1, "f", &config_resolver_system, &cfg, err, sizeof(err)) != CONFIG_OK) abort();
    return cfg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static config *cfg;
    if (!cfg) cfg = fuzz_config();
    cmd_action a;
    cmd_error e;
    enum cmd_err rc = cmd_parse((const char *)data, size, &a, &e);
    if (rc != CMD_OK) {
        if (memchr(e.message, '\0', sizeof(e.message)) == NULL || !e.usage) abort();
        if (strchr(e.message, '\n')) abort();   /* one-line reasons */
        return 0;
    }
    rc = cmd_check(&a, cfg, &e);
    if (rc != CMD_OK && !e.usage) abort();
    if (a.kind == CMD_HELP) {
        char out[256];
        size_t n = cmd_help_text(a.topic, out, sizeof(out));
        if (n < sizeof(out) && strlen(out) != n) abort();
    }
    return 0;
}
