/* nomatron audit verify | export | show | checkpoint (SPEC §2, §7). */
#include <ctype.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "cli.h"
#include "cmd.h"
#include "config.h"
#include "export.h"
#include "log.h"

static const char usage_audit[] =
    "usage: nomatron audit verify     [--config FILE] [--from ID] [--file EXPORT.jsonl]\n"
    "       nomatron audit export     [--config FILE] --format jsonl|csv [--since T] [--until T]\n"
    "       nomatron audit show       [--config FILE] [--request ID] [--job J] [--env E] [--actor A]\n"
    "                                 [--since T] [--until T]\n"
    "       nomatron audit checkpoint [--config FILE]\n"
    "  verify      recomputes the hash chain; exit 0 intact, 3 broken (naming the first broken event),\n"
    "              1 when it cannot run\n"
    "  export      streams events with their hashes, so an export verifies offline\n"
    "  show        events matching the filters\n"
    "  checkpoint  records and prints the head hash and event count (keep a copy outside the database)\n"
    "  T is a date (2026-11-24, midnight UTC) or an RFC 3339 time (2026-11-24T10:00:00Z). ID is D-12 or 12.\n"
    "  verify --file checks a JSONL export offline (no configuration or database needed; - reads stdin).\n";

/* YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM). Shape only; PostgreSQL judges the rest. */
static bool valid_time(const char *t) {
    static const char date[] = "dddd-dd-dd", clock[] = "Tdd:dd:dd";
    size_t i = 0;
    for (; date[i]; i++)
        if (!t[i] || (date[i] == 'd' ? !isdigit((unsigned char)t[i]) : t[i] != date[i])) return false;
    if (!t[i]) return true;
    for (size_t k = 0; clock[k]; k++, i++)
        if (!t[i] || (clock[k] == 'd' ? !isdigit((unsigned char)t[i]) : t[i] != clock[k] && !(k == 0 && t[i] == ' ')))
            return false;
    if (t[i] == '.')
        for (i++; isdigit((unsigned char)t[i]); i++) {}
    if (strcmp(t + i, "Z") == 0) return true;
    return (t[i] == '+' || t[i] == '-') && isdigit((unsigned char)t[i + 1]) && isdigit((unsigned char)t[i + 2]) &&
           t[i + 3] == ':' && isdigit((unsigned char)t[i + 4]) && isdigit((unsigned char)t[i + 5]) && !t[i + 6];
}

/* Connects and checks the schema; prints why not and returns false. */
static bool open_db(audit_db *db, const config *cfg, const char *name) {
    int rc = audit_connect(db, cfg->postgres);
    if (rc == AUDIT_OK) rc = audit_schema_check(db);
    if (rc == AUDIT_OK) return true;
    fprintf(stderr, "nomatron %s: %s: %s\n", name, audit_strerror(rc), db->errstr);
    return false;
}

static int audit_verify_run(const char *cfg_path, long from) {
    config *cfg = cli_load_config(cfg_path, "audit verify");
    if (!cfg) return EXIT_USAGE;
    audit_db db;
    int64_t broken = 0;
    int exit_code = EXIT_RUNTIME;
    if (open_db(&db, cfg, "audit verify")) {
        int rc = audit_verify(&db, from, &broken);
        if (rc == AUDIT_OK) {
            printf("audit chain intact (%s)\n", db.errstr);
            exit_code = EXIT_OK;
        } else if (rc == AUDIT_ERR_BROKEN) {
            printf("audit chain broken at event %lld: %s\n", (long long)broken, db.errstr);
            exit_code = EXIT_BROKEN;
        } else {
            fprintf(stderr, "nomatron audit verify: %s: %s\n", audit_strerror(rc), db.errstr);
        }
    }
    audit_close(&db);
    config_free(cfg);
    return exit_code;
}

/* Offline: the file alone, no configuration, no database. */
static int audit_verify_file_run(const char *file) {
    audit_fverify v;
    int rc = audit_verify_file(file, &v);
    int exit_code;
    if (rc == AUDIT_OK) {
        printf("export intact (%s)\n", v.why);
        exit_code = EXIT_OK;
    } else if (rc == AUDIT_ERR_BROKEN) {
        printf("export broken at event %lld: %s\n", (long long)v.first_broken, v.why);
        exit_code = EXIT_BROKEN;
    } else {
        fprintf(stderr, "nomatron audit verify: %s\n", v.why);
        exit_code = EXIT_RUNTIME;
    }
    audit_fverify_free(&v);
    return exit_code;
}

static int audit_export_run(const char *cfg_path, const char *format, const audit_filter *f) {
    config *cfg = cli_load_config(cfg_path, "audit export");
    if (!cfg) return EXIT_USAGE;
    audit_db db;
    int exit_code = EXIT_RUNTIME;
    if (open_db(&db, cfg, "audit export")) {
        int64_t n = 0;
        int rc = audit_export(&db, f, strcmp(format, "csv") == 0 ? AUDIT_EXPORT_CSV : AUDIT_EXPORT_JSONL, stdout, &n);
        if (rc == AUDIT_OK) {
            fprintf(stderr, "nomatron audit export: %lld events\n", (long long)n);
            exit_code = EXIT_OK;
        } else {
            fprintf(stderr, "nomatron audit export: %s: %s\n", audit_strerror(rc), db.errstr);
        }
    }
    audit_close(&db);
    config_free(cfg);
    return exit_code;
}

/* Prints a value for a terminal: control characters (including escape
 * sequences someone typed into chat) are shown as \xNN, never sent raw. */
static void put_safe(const char *s, size_t max) {
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++, n++) {
        if (n == max) {
            fputs("…", stdout);
            return;
        }
        if (*p < 0x20 || *p == 0x7f) printf("\\x%02x", *p);
        else putchar(*p);
    }
}

static int show_row(const audit_row *row, void *arg) {
    long long *n = arg;
    const audit_event *e = &row->ev;
    (*n)++;
    printf("#%lld %s ", (long long)e->id, row->at);
    if (e->request_id > 0) printf("D-%lld ", (long long)e->request_id);
    put_safe(e->action, 64);
    fputs(" by ", stdout);
    put_safe(e->actor, 128);
    if (e->env || e->job) {
        fputs(" ", stdout);
        put_safe(e->job, 64);
        fputs("@", stdout);
        put_safe(e->env, 64);
    }
    if (e->from_state || e->to_state) {
        fputs(" ", stdout);
        put_safe(e->from_state ? e->from_state : "-", 24);
        fputs("->", stdout);
        put_safe(e->to_state, 24);
    }
    const struct { const char *k, *v; } kv[] = {
        {"outcome", e->outcome},     {"to_image", e->to_image},       {"eval", e->eval_id},
        {"deployment", e->deployment_id}, {"channel", e->channel},    {"message", e->message_ref},
        {"permalink", e->permalink}, {"detail", e->detail},
    };
    if (e->nomad_job_version >= 0) printf(" job_version=%lld", (long long)e->nomad_job_version);
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        if (kv[i].v && kv[i].v[0]) {
            printf(" %s=", kv[i].k);
            put_safe(kv[i].v, 200);
        }
    putchar('\n');
    return ferror(stdout) ? 1 : 0;
}

static int audit_show_run(const char *cfg_path, const audit_filter *f) {
    config *cfg = cli_load_config(cfg_path, "audit show");
    if (!cfg) return EXIT_USAGE;
    audit_db db;
    int exit_code = EXIT_RUNTIME;
    if (open_db(&db, cfg, "audit show")) {
        long long n = 0;
        int rc = audit_events_each(&db, f, show_row, &n);
        if (rc == AUDIT_OK) {
            if (n == 0) printf("no events match\n");
            exit_code = EXIT_OK;
        } else {
            fprintf(stderr, "nomatron audit show: %s: %s\n", audit_strerror(rc), db.errstr);
        }
    }
    audit_close(&db);
    config_free(cfg);
    return exit_code;
}

static int audit_checkpoint_run(const char *cfg_path) {
    config *cfg = cli_load_config(cfg_path, "audit checkpoint");
    if (!cfg) return EXIT_USAGE;
    audit_db db;
    int exit_code = EXIT_RUNTIME;
    if (open_db(&db, cfg, "audit checkpoint")) {
        audit_checkpoint_info cp;
        int rc = audit_checkpoint(&db, &cp);
        if (rc == AUDIT_OK) {
            char head[24], events[24], id[24];
            snprintf(head, sizeof(head), "%lld", (long long)cp.head_id);
            snprintf(events, sizeof(events), "%lld", (long long)cp.events);
            snprintf(id, sizeof(id), "%lld", (long long)cp.id);
            printf("checkpoint %s: head event %s hash %s, %s events, at %s\n", id, head, cp.head_hash, events, cp.at);
            /* The log is the copy outside the database when no chat is configured. */
            nm_log(NM_LOG_INFO, "audit checkpoint", "checkpoint", id, "head_id", head, "head_hash", cp.head_hash,
                   "events", events, "at", cp.at, NULL);
            exit_code = EXIT_OK;
        } else {
            fprintf(stderr, "nomatron audit checkpoint: %s: %s\n", audit_strerror(rc), db.errstr);
            if (rc == AUDIT_ERR_BROKEN) exit_code = EXIT_BROKEN;
        }
    }
    audit_close(&db);
    config_free(cfg);
    return exit_code;
}

int cli_audit(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_audit, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "verify") != 0 && strcmp(sub, "export") != 0 && strcmp(sub, "show") != 0 &&
        strcmp(sub, "checkpoint") != 0)
        return cli_usage_error("audit", usage_audit, "unknown subcommand '%s'", sub);
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"from", required_argument, NULL, 'f'},
                                         {"file", required_argument, NULL, 'F'},
                                         {"format", required_argument, NULL, 'o'},
                                         {"since", required_argument, NULL, 's'},
                                         {"until", required_argument, NULL, 'u'},
                                         {"request", required_argument, NULL, 'r'},
                                         {"job", required_argument, NULL, 'j'},
                                         {"env", required_argument, NULL, 'e'},
                                         {"actor", required_argument, NULL, 'a'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    /* Which flags each subcommand takes. */
    const char *allowed = strcmp(sub, "verify") == 0 ? "cfFh"
                        : strcmp(sub, "export") == 0 ? "cosuh"
                        : strcmp(sub, "show") == 0   ? "crjeasuh"
                                                     : "ch";
    const char *cfg_path = NULL, *file = NULL, *format = NULL;
    long from = 0;
    audit_filter filter = {0};
    int c, li;
    char name[40];
    snprintf(name, sizeof(name), "audit %s", sub);
    optind = 1;
    argc--;
    argv++;
    while ((c = getopt_long(argc, argv, "+", opts, &li)) != -1) {
        if (c == '?') return cli_usage_error(name, usage_audit, "%s", "unknown option");
        if (!strchr(allowed, c))
            return cli_usage_error(name, usage_audit, "--%s does not apply here", opts[li].name);
        switch (c) {
        case 'c': cfg_path = optarg; break;
        case 'f':
            if ((from = cli_parse_count(optarg, 1L << 62)) < 0)
                return cli_usage_error(name, usage_audit, "--from wants an event id, not '%s'", optarg);
            break;
        case 'F': file = optarg; break;
        case 'o':
            if (strcmp(optarg, "jsonl") != 0 && strcmp(optarg, "csv") != 0)
                return cli_usage_error(name, usage_audit, "--format is jsonl or csv, not '%s'", optarg);
            format = optarg;
            break;
        case 's':
        case 'u':
            if (!valid_time(optarg))
                return cli_usage_error(name, usage_audit, "expected a date or an RFC 3339 time, not '%s'", optarg);
            if (c == 's') filter.since = optarg;
            else filter.until = optarg;
            break;
        case 'r':
            if ((filter.request_id = cmd_parse_id(optarg)) <= 0)
                return cli_usage_error(name, usage_audit, "--request wants D-12 or 12, not '%s'", optarg);
            break;
        case 'j':
        case 'e':
            if (!config_valid_name(optarg))
                return cli_usage_error(name, usage_audit, "'%s' is not a valid name", optarg);
            if (c == 'j') filter.job = optarg;
            else filter.env = optarg;
            break;
        case 'a':
            if (!optarg[0] || strlen(optarg) > 512)
                return cli_usage_error(name, usage_audit, "--actor wants an identity such as slack:U01BBBB, not '%s'",
                                       optarg);
            filter.actor = optarg;
            break;
        case 'h': fputs(usage_audit, stdout); return EXIT_OK;
        }
    }
    if (optind < argc) return cli_usage_error(name, usage_audit, "unexpected argument '%s'", argv[optind]);
    if (strcmp(sub, "export") == 0 && !format) return cli_usage_error(name, usage_audit, "%s", "--format is required");
    if (strcmp(sub, "verify") == 0 && file && from)
        return cli_usage_error(name, usage_audit, "%s", "--from walks the database; --file checks a whole export");
    if (strcmp(sub, "verify") == 0) return file ? audit_verify_file_run(file) : audit_verify_run(cfg_path, from);
    if (strcmp(sub, "export") == 0) return audit_export_run(cfg_path, format, &filter);
    if (strcmp(sub, "show") == 0) return audit_show_run(cfg_path, &filter);
    return audit_checkpoint_run(cfg_path);
}
