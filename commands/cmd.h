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
    CMD_ERR_BAD_ID,          /* "bad_id": a request ID that is not D-<n> or <n> */
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
    bool quoted[CMD_MAX_ARGS];           /* word opened with a quote: never a flag or keyword */
    char storage[CMD_MAX_TEXT + CMD_MAX_ARGS];
} cmd_tokens;

/* Splits `text` (len bytes) on blanks; "double" and 'single' quotes group
 * words, backslash escapes inside double quotes. Rejects invalid UTF-8, NUL
 * and control bytes, over-long text, too many words. */
enum cmd_err cmd_tokenize(const char *text, size_t len, cmd_tokens *out, cmd_error *err);

/* One kind per command of SPEC §5, in the order of the command table. */
enum cmd_kind {
    CMD_NONE = 0,
    CMD_DEPLOY,
    CMD_PROMOTE,
    CMD_APPROVE,
    CMD_REJECT,
    CMD_CANCEL,
    CMD_ROLLBACK,
    CMD_CANARY,       /* sub: "promote" | "fail" */
    CMD_PAUSE,
    CMD_RESUME,
    CMD_STATUS,
    CMD_HISTORY,
    CMD_AUDIT,
    CMD_EXPLAIN,      /* sub: "deploy" | "promote"; the rest parsed into the same action */
    CMD_LOCK,
    CMD_UNLOCK,
    CMD_ENVS,
    CMD_JOBS,
    CMD_WHOAMI,
    CMD_HELP,
    CMD_DASHBOARD,
    CMD_STATS,
};

typedef struct cmd_action {
    enum cmd_kind kind;
    enum cmd_kind explained;               /* CMD_EXPLAIN: the command it explains */
    char job[CMD_MAX_NAME + 1];
    char env[CMD_MAX_NAME + 1];            /* target environment; "" = all (status, history, stats) */
    char from_env[CMD_MAX_NAME + 1];       /* promote: the source environment */
    char version[CMD_MAX_VERSION + 1];     /* deploy; rollback "to VERSION" */
    int64_t job_version;                   /* rollback "to #N"; -1 = not given */
    int64_t id;                            /* approve / reject / cancel; 0 = none */
    char sub[16];                          /* canary promote|fail */
    char ref[CMD_MAX_REASON + 1];          /* audit ID | PERMALINK | MESSAGE-TS | POST-ID */
    int canary;                            /* --canary N; -1 = not given */
    int limit;                             /* --limit N (history); -1 = not given */
    int days;                              /* --days N (stats); -1 = not given */
    char reason[CMD_MAX_REASON + 1];       /* --reason, reject REASON, lock REASON */
    char emergency[CMD_MAX_REASON + 1];    /* --emergency */
    char topic[CMD_MAX_NAME + 1];          /* help COMMAND */
} cmd_action;

/* Parses one command line. A leading "/nomatron" or "@nomatron" is
 * optional. Returns CMD_OK and fills *out, or an error with message and usage. */
enum cmd_err cmd_parse(const char *text, size_t len, cmd_action *out, cmd_error *err);

/* Checks names against the snapshot: jobs and environments named must exist. */
enum cmd_err cmd_check(const cmd_action *a, const config *cfg, cmd_error *err);

/* The command table, for help and docs. */
enum cmd_flag {
    CMD_F_MUTATES = 1 << 0,        /* changes something in Nomad */
    CMD_F_NEEDS_NOMAD = 1 << 1,    /* answered by a worker */
    CMD_F_NOT_AVAILABLE = 1 << 2,  /* parsed but not in this build */
};

typedef struct cmd_spec {
    const char *name;
    enum cmd_kind kind;
    const char *pattern;   /* words after the name: UPPER = slot, lower = literal, a|b = choice, [..] optional, X... = rest */
    const char *flags_allowed; /* space-separated flags with values, e.g. "--canary --reason" */
    const char *usage;
    const char *summary;
    unsigned flags;
} cmd_spec;

const cmd_spec *cmd_table_get(size_t *count);
const cmd_spec *cmd_lookup(const char *name);
/* The general usage line ("usage: /nomatron <command> ... ; try help"). */
const char *cmd_general_usage(void);

/* Help text: every command with its summary (topic NULL or ""), or one
 * command's usage and summary. Always NUL-terminated; returns the length it
 * needed (like snprintf). */
size_t cmd_help_text(const char *topic, char *out, size_t outlen);

/* docs/commands.md, generated from the table (same contract as cmd_help_text). */
size_t cmd_docs_markdown(char *out, size_t outlen);

/* Parses "D-12", "d-12" or "12" into 12; -1 if malformed. */
int64_t cmd_parse_id(const char *text);

#endif
