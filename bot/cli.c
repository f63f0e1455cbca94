/* Helpers shared by the subcommands of the nomatron binary. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>

int cli_usage_error(const char *cmd, const char *usage, const char *fmt, const char *arg) {
    fprintf(stderr, "nomatron %s: ", cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", usage);
    return EXIT_USAGE;
}

config *cli_load_config(const char *flag, const char *cmd) {
    const char *path = config_default_path(flag);
    char err[512];
    config *cfg = NULL;
    if (config_load(path, &cfg, err, sizeof(err)) != CONFIG_OK) {
        fprintf(stderr, "nomatron %s: %s\n", cmd, err);
        return NULL;
    }
    return cfg;
}

/* Parses a non-negative integer option; -1 if malformed. */
long cli_parse_count(const char *s, long max) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0 || v > max) return -1;
    return v;
}

