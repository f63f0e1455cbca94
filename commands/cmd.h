/* commands/: the chat command language. Pure functions only: text in,
 * typed actions or a typed error out. No I/O, no allocation.
 *
 *   cmd_tokenize()  bounded, quote-aware splitter (knows no command)
 *   cmd_parse()     table-driven grammar over the tokens -> struct cmd_action
 *   cmd_check()     checks an action against a config snapshot (known job / env)
 *
 * One table (cmd_table in grammar.c) holds every command's name, usage,
 * summary and flags; help text and docs/commands.md come from it. */
#ifndef NM_CMD_H
#define NM_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define CMD_MAX_TEXT 4096      /* command text over 4 KiB is refused (SPEC §5) */
#define CMD_MAX_ARGS 64
#define CMD_MAX_NAME 64        /* job / environment names */
#define CMD_MAX_VERSION 128    /* container tag grammar */
#define CMD_MAX_REASON 512

/* Error tags are stable strings (metrics count them, tests match them). */
enum cmd_err {
    CMD_OK = 0,
    CMD_ERR_EMPTY,           /* "empty" */
    CMD_ERR_TOO_LONG,        /* "too_long": over CMD_MAX_TEXT bytes */
    CMD_ERR_TOO_MANY_ARGS,   /* "too_many_args" */
    CMD_ERR_BAD_UTF8,        /* "bad_utf8": invalid UTF-8 or a NUL / control byte */
    CMD_ERR_UNBALANCED_QUOTE,/* "unbalanced_quote" */
    CMD_ERR_UNKNOWN_COMMAND, /* "unknown_command" */
    CMD_ERR_MISSING_ARG,     /* "missing_arg" */
    CMD_ERR_EXTRA_ARG,       /* "extra_arg" */
    CMD_ERR_EXPECTED_WORD,   /* "expected_word": e.g. "to" missing in deploy */
    CMD_ERR_BAD_NAME,        /* "bad_name": job / env name syntax */
    CMD_ERR_BAD_VERSION,     /* "bad_version": outside the tag grammar */
    CMD_ERR_BAD_FLAG,        /* "bad_flag": unknown flag or bad flag value */
    CMD_ERR_UNKNOWN_JOB,     /* "unknown_job" (cmd_check) */
    CMD_ERR_UNKNOWN_ENV,     /* "unknown_env" (cmd_check) */
    CMD_ERR_NOT_AVAILABLE,   /* "not_available": parsed, but not in this build */
};
const char *cmd_err_tag(enum cmd_err code);

typedef struct cmd_error {
    enum cmd_err code;
    char message[256];   /* one line, says what was wrong; never echoes more than a short excerpt */
    const char *usage;   /* usage line of the command concerned (static), or the general usage */
} cmd_error;

typedef struct cmd_tokens {
    size_t argc;
    const char *argv[CMD_MAX_ARGS];      /* point into storage */
    char storage[CMD_MAX_TEXT + CMD_MAX_ARGS];
} cmd_tokens;

/* Splits `text` (len bytes) on blanks; "double" and 'single' quotes group
 * words, backslash escapes inside double quotes. Rejects invalid UTF-8, NUL
 * and control bytes, over-long text, too many words. */
enum cmd_err cmd_tokenize(const char *text, size_t len, cmd_tokens *out, cmd_error *err);

enum cmd_kind {
    CMD_NONE = 0,
    CMD_DEPLOY,
    CMD_STATUS,
    CMD_HELP,
    /* the rest of SPEC §5 arrives with the contract issue */
};

typedef struct cmd_action {
    enum cmd_kind kind;
    char job[CMD_MAX_NAME + 1];
    char env[CMD_MAX_NAME + 1];            /* "" = all (status) */
    char version[CMD_MAX_VERSION + 1];
    int canary;                            /* --canary N; -1 = not given */
    char reason[CMD_MAX_REASON + 1];       /* --reason */
    char emergency[CMD_MAX_REASON + 1];    /* --emergency */
    char topic[CMD_MAX_NAME + 1];          /* help COMMAND */
} cmd_action;

/* Parses one command line. A leading "/nomatron" or "@nomatron" is
 * optional. Returns CMD_OK and fills *out, or an error with message and usage. */
enum cmd_err cmd_parse(const char *text, size_t len, cmd_action *out, cmd_error *err);

/* Checks names against the snapshot: the job and environment must exist. */
enum cmd_err cmd_check(const cmd_action *a, const config *cfg, cmd_error *err);

/* The command table, for help and docs. */
enum cmd_flag {
    CMD_F_MUTATES = 1 << 0,        /* changes something in Nomad */
    CMD_F_NEEDS_NOMAD = 1 << 1,    /* answered by a worker */
    CMD_F_NOT_AVAILABLE = 1 << 2,  /* parsed but not in this build */
};

typedef struct cmd_spec {
    const char *name;
    const char *usage;
    const char *summary;
    unsigned flags;
} cmd_spec;

const cmd_spec *cmd_table_get(size_t *count);
const cmd_spec *cmd_lookup(const char *name);
/* The general usage line ("usage: /nomatron <command> ... ; try help"). */
const char *cmd_general_usage(void);

#endif
