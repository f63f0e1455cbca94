/* nomatron configuration: the YAML file of SPEC §3, loaded into one
 * immutable snapshot (struct config). A reload builds a new snapshot and
 * swaps it in only when valid; nothing mutates a loaded snapshot.
 *
 * Every string in the snapshot is owned by it and freed by config_free().
 * Errors name the file, line and key: "nomatron.yaml:12: environments.staging.approvals: expected an integer". */
#ifndef NM_CONFIG_H
#define NM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_FILE (1024 * 1024)   /* a config larger than 1 MiB is refused */

enum config_code {
    CONFIG_OK = 0,
    CONFIG_ERR_IO,      /* file unreadable */
    CONFIG_ERR_SYNTAX,  /* not YAML, or YAML we refuse (aliases, tags) */
    CONFIG_ERR_SCHEMA,  /* unknown key, wrong type, bad value */
    CONFIG_ERR_REF,     /* unknown person / group / environment, cycles */
    CONFIG_ERR_ENV,     /* ${NAME} unset, ${file:PATH} unreadable */
    CONFIG_ERR_NOMEM,
};
const char *config_strerror(int code);

/* A list of owned strings. */
typedef struct config_strv {
    char **v;
    size_t n;
} config_strv;

typedef struct config_nomad {
    char *address;      /* base URL, e.g. http://127.0.0.1:4646 (no trailing slash) */
    char *region;       /* "" = the agent's region */
    char *namespace;    /* default "default" */
    char *token;        /* secret; "" = none */
    char *ca_file;      /* "" = system CAs */
    char *client_cert;  /* PEM client certificate for mutual TLS; "" = none */
    char *client_key;   /* its private key (a path; the key itself never enters the snapshot) */
    char *tls_server_name; /* name to verify the server certificate against; "" = the address's host */
    int64_t timeout_ms; /* per-call timeout, default 30 s */
} config_nomad;

typedef struct config_env {
    char *name;
    int line;                  /* where it was defined, for messages */
    config_nomad nomad;
    config_strv deployers;     /* group / person names or raw identities */
    int approvals;             /* default 0 */
    config_strv approvers;
    char *promote_from;        /* NULL = none */
    int64_t promote_after_ms;  /* 0 = none */
    bool self_approval;        /* default false */
    int64_t approval_ttl_ms;   /* default 24 h */
    config_strv freeze;        /* freeze windows, validated text */
    config_strv channels;      /* allowed channels (platform:id); empty = any */
    config_strv notify;
} config_env;

typedef struct config_job {
    char *name;          /* key under jobs: */
    char *nomad_job;     /* Nomad job ID, default = name */
    config_strv tasks;   /* tasks whose image a version sets */
    char *image;         /* registry/repo; version v1 -> image:v1 */
} config_job;

typedef struct config_person {
    char *name;
    config_strv identities;   /* "slack:U01BBBB", "shell:alice", ... */
} config_person;

typedef struct config_group {
    char *name;
    config_strv members;      /* people names or raw identities */
} config_group;

typedef struct config_hmac_key {
    char *id;
    char *secret;             /* secret */
} config_hmac_key;

typedef struct config_slack {
    char *app_token, *bot_token, *signing_secret;   /* secrets */
    char *team_id;
    char *api_url;
    char *ca_file;            /* "" = the system's CAs; else trusted for the Web API and Socket Mode */
    int num_connections;
} config_slack;

typedef struct config_mattermost {
    char *url;
    char *token, *slash_token;                       /* secrets */
} config_mattermost;

typedef struct config {
    _Atomic int refs;            /* see config_ref(); 1 when returned by config_parse() */
    char *path;                  /* file it came from */
    char *listen;                /* default 127.0.0.1:8080 */
    char *public_url;            /* "" if unset */
    char *redis;                 /* redis://host:port/db */
    char *postgres;              /* libpq conninfo or URI */
    char *postgres_migrate;      /* "" = use postgres */
    int workers;                 /* default 4 */
    int64_t queue_lease_ms;      /* queue.lease: a claim or job lease not renewed for this long is taken over (30s) */
    int64_t queue_reconcile_ms;  /* queue.reconcile: how often lost work is looked for (10s) */
    int64_t queue_hold_ms;       /* queue.hold_limit: longest wait for canary promotion or in pause (1h) */
    int64_t audit_checkpoint_ms; /* audit.checkpoint: how often the chain's head is published (1h); 0 = off */
    int limit_open_requests;     /* limits.open_requests: open requests one person may have (10); 0 = no cap */
    int limit_commands;          /* limits.commands_per_minute: per person (60); 0 = no limit */
    bool shell_allow_as;         /* default false */

    config_hmac_key *hmac_keys;
    size_t n_hmac_keys;
    config_slack *slack;         /* NULL when chat.slack is absent */
    config_mattermost *mattermost;

    config_person *people;
    size_t n_people;
    config_group *groups;
    size_t n_groups;
    config_env *envs;            /* in file order */
    size_t n_envs;
    config_job *jobs;            /* in file order */
    size_t n_jobs;
} config;

/* How ${NAME} and ${file:PATH} are resolved. The loader itself does no I/O
 * beyond reading the main file through config_load(); tests and the fuzzer
 * pass their own resolver. `out` receives a malloc'd string the caller
 * frees. Return 0 if found, -1 if not (unset variable / unreadable file). */
typedef struct config_resolver {
    int (*getenv)(void *ud, const char *name, char **out);
    int (*readfile)(void *ud, const char *path, char **out);
    void *ud;
    /* Optional: 0 if the IANA time zone `name` can be loaded, -1 with err set
     * otherwise. NULL skips the check (freeze zones are then checked for
     * their grammar only). */
    int (*zone)(void *ud, const char *name, char *err, size_t errlen);
} config_resolver;

/* The process environment and the file system. */
extern const config_resolver config_resolver_system;

/* Parses `text` (len bytes; need not be NUL-terminated). `filename` is used
 * in messages. On success *out owns a new snapshot; on failure *out is NULL
 * and err holds "file:line: key: reason". Pure apart from the resolver. */
int config_parse(const char *text, size_t len, const char *filename,
                 const config_resolver *res, config **out, char *err, size_t errlen);

/* Reads `path` (at most CONFIG_MAX_FILE bytes) and parses it with the system resolver. */
int config_load(const char *path, config **out, char *err, size_t errlen);

/* Snapshots are shared between threads by reference counting: config_ref()
 * adds a holder, config_free() drops one and frees the snapshot with the
 * last. A snapshot is never modified after config_parse() returns. */
config *config_ref(config *cfg);
void config_free(config *cfg);

/* The current snapshot of a running process. get() hands out a reference
 * (release it with config_free()); set() swaps in a new one (taking the
 * caller's reference). Work in flight keeps the snapshot it started with. */
typedef struct config_holder config_holder;
config_holder *config_holder_new(config *initial);   /* takes the reference */
config *config_holder_get(config_holder *h);
void config_holder_set(config_holder *h, config *next);
/* Re-reads the current snapshot's file (and its ${file:} secrets); swaps only
 * when valid. On error the old snapshot stays and err says why. Returns a
 * config_code. */
int config_holder_reload(config_holder *h, char *err, size_t errlen);
unsigned long config_holder_generation(config_holder *h);   /* 1, then +1 per swap */
void config_holder_free(config_holder *h);

/* Lookups; NULL when absent. Results are borrowed from cfg. */
const config_env *config_find_env(const config *cfg, const char *name);
const config_job *config_find_job(const config *cfg, const char *name);

/* Parses "90s", "15m", "4h", "1h30m", "7d" into milliseconds; -1 if malformed. Pure. */
int64_t config_parse_duration(const char *text);

#define CONFIG_MAX_NAME 64

/* True if `name` is a valid environment / job / person / group name:
 * [A-Za-z0-9][A-Za-z0-9_.-]{0,63}. */
bool config_valid_name(const char *name);

/* True if `version` matches the container tag grammar [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. */
bool config_valid_tag(const char *version);

/* Splits redis://[:password@]host[:port][/db] (pure). password may be
 * NULL-terminated empty. rediss:// is refused (hiredis here has no TLS; use a
 * TLS tunnel such as stunnel and point redis:// at it). Returns CONFIG_OK or
 * CONFIG_ERR_SCHEMA with err set. */
int config_redis_url(const char *url, char *host, size_t hostlen, int *port, int *db,
                     char *password, size_t passlen, char *err, size_t errlen);

/* --- config check --- */
struct nm_buf;
/* Appends the resolved policy (per environment: who may deploy, who approves,
 * freezes, promotion path; jobs; chat) to out, every secret redacted. */
int config_describe(const config *cfg, struct nm_buf *out);
/* Copies a URL or libpq conninfo with any password replaced by [redacted]. */
void config_redact_url(const char *in, char *out, size_t outlen);
/* 5400000 -> "1h30m". */
void config_format_duration(int64_t ms, char *out, size_t outlen);

/* The config path per SPEC §2: --config, else $NOMATRON_CONFIG, else ./nomatron.yaml. */
const char *config_default_path(const char *flag_value);

#endif
