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
    "  checkpoint  publishes the head hash and event count\n"
    "  T is a date (2026-11-24) or an RFC 3339 time (2026-11-24T10:00:00Z). ID is D-12 or 12.\n";

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

static int audit_verify_run(const char *cfg_path, long from) {
    config *cfg = cli_load_config(cfg_path, "audit verify");
    if (!cfg) return EXIT_USAGE;
    audit_db db;
    int64_t broken = 0;
    int rc = audit_connect(&db, cfg->postgres);
    if (rc == AUDIT_OK) rc = audit_verify(&db, from, &broken);
    int exit_code = EXIT_OK;
    if (rc == AUDIT_OK) {
        printf("audit chain intact (%s)\n", db.errstr);
    } else if (rc == AUDIT_ERR_BROKEN) {
        printf("audit chain broken at event %lld: %s\n", (long long)broken, db.errstr);
        exit_code = EXIT_BROKEN;
    } else {
        fprintf(stderr, "nomatron audit verify: %s: %s\n", audit_strerror(rc), db.errstr);
        exit_code = EXIT_RUNTIME;
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
            break;
        case 'r':
            if (cmd_parse_id(optarg) < 0)
                return cli_usage_error(name, usage_audit, "--request wants D-12 or 12, not '%s'", optarg);
            break;
        case 'j':
        case 'e':
            if (!config_valid_name(optarg))
                return cli_usage_error(name, usage_audit, "'%s' is not a valid name", optarg);
            break;
        case 'a': break;
        case 'h': fputs(usage_audit, stdout); return EXIT_OK;
        }
    }
    if (optind < argc) return cli_usage_error(name, usage_audit, "unexpected argument '%s'", argv[optind]);
    if (strcmp(sub, "export") == 0 && !format) return cli_usage_error(name, usage_audit, "%s", "--format is required");
    if (strcmp(sub, "verify") == 0 && !file) return audit_verify_run(cfg_path, from);
    /* Parsed and checked above; the behaviour arrives with the audit issue. */
    fprintf(stderr, "nomatron %s%s: not available in this build yet\n", name, file ? " --file" : "");
    return EXIT_USAGE;
}

