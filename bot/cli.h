/* The nomatron binary's subcommands share these (SPEC §2 exit codes). */
#ifndef NM_CLI_H
#define NM_CLI_H

#include "config.h"

#define EXIT_OK 0
#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define EXIT_BROKEN 3

/* Prints "nomatron CMD: <fmt with arg>" and the usage to stderr; returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *usage, const char *fmt, const char *arg);
/* Loads the config named by --config / $NOMATRON_CONFIG / ./nomatron.yaml; prints the error and returns NULL. */
config *cli_load_config(const char *flag, const char *cmd);
/* A non-negative integer up to max; -1 if malformed. */
long cli_parse_count(const char *s, long max);

/* nomatron audit ... (argv[0] is "audit"). */
int cli_audit(int argc, char **argv);

#endif
