/* The config loader on arbitrary bytes, with a resolver that answers every
 * ${NAME} and ${file:...} deterministically: never crash, never leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fz_getenv(void *ud, const char *name, char **out) {
    (void)ud;
    if (name[0] == 'U') return -1;   /* names starting with U are "unset" */
    *out = strdup("value");
    return *out ? 0 : -1;
}

static int fz_readfile(void *ud, const char *path, char **out) {
    (void)ud;
    if (path[0] != '/') return -1;
    *out = strdup("secret-from-file-0123456789abcdef0123456789\n");
    return *out ? 0 : -1;
}

static const config_resolver res = {.getenv = fz_getenv, .readfile = fz_readfile};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    config *cfg = NULL;
    char err[512];
    int rc = config_parse((const char *)data, size, "fuzz.yaml", &res, &cfg, err, sizeof(err));
    if (rc == CONFIG_OK) {
        if (!cfg) abort();
        for (size_t i = 0; i < cfg->n_envs; i++)
            if (config_find_env(cfg, cfg->envs[i].name) == NULL) abort();
        config_free(cfg);
    } else if (cfg != NULL || strncmp(err, "fuzz.yaml:", 10) != 0) {
        abort();
    }
    return 0;
}
