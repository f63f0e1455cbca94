/* `nomatron serve`: the long-running process. Role "bot" runs the chat
 * adapters and the HTTP listener on one libuv loop; role "all" adds the
 * workers (threads) in the same process; role "worker" lives in main.c. */
#ifndef NM_SERVE_H
#define NM_SERVE_H

#include <stdbool.h>

#include "config.h"

typedef struct serve_opts {
    bool workers;          /* role all: run the workers here too */
    const char *listen;    /* --listen ADDR:PORT, "off", or NULL for the config's */
} serve_opts;

/* Runs until SIGTERM/SIGINT (drained within 5 s). Takes the reference to
 * holder's snapshot user. Returns an exit code of SPEC §2. */
int serve_run(config_holder *holder, const serve_opts *opts);

#endif
