/* The shell: a bot whose chat is the local console. Reads one command per
 * line from stdin on the bot's libuv loop, records requests in PostgreSQL
 * (on libuv's thread pool), queues them on Redis, and prints the workers'
 * events as they arrive. */
#ifndef NM_SHELL_H
#define NM_SHELL_H

#include "config.h"

typedef struct shell_opts {
    const char *as;       /* --as NAME, or NULL */
    int workers;          /* worker threads in this process; -1 = config's `workers` */
    int timeout_s;        /* with piped input: how long to wait at end of input */
} shell_opts;

/* Runs until end of input (and every request it started is finished or
 * waiting for approval) or a signal. Returns the process exit code of SPEC §2:
 * 0 ok, 1 a request failed or a server was unreachable, 2 usage, 124 timed out. */
int shell_run(config_holder *holder, const shell_opts *opts);

#endif
