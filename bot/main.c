/* nomatron: the command line of SPEC §2. */
#include <curl/curl.h>
#include <ctype.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "audit.h"
#include "buf.h"
#include "cmd.h"
#include "config.h"
#include "log.h"
#include "reload.h"
#include "serve.h"
#include "shell.h"
#include "worker.h"
#include "cli.h"

static const char usage_top[] =
    "usage: nomatron <command> [options]\n"
    "\n"
    "commands:\n"
    "  serve    [--config FILE] [--role all|bot|worker] [--listen ADDR:PORT|off]\n"
    "  worker   [--config FILE]                  same as serve --role worker\n"
    "  shell    [--config FILE] [--as USER] [--workers N] [--timeout SECONDS]\n"
    "  migrate  [--config FILE]\n"
    "  audit    verify [--from ID] [--file EXPORT.jsonl] | export --format jsonl|csv [--since T] [--until T]\n"
    "           | show [--request ID] [--job J] [--env E] [--actor A] [--since T] [--until T] | checkpoint\n"
    "  config   check [--config FILE]\n"
    "  version\n"
    "\n"
    "Config: --config, else $NOMATRON_CONFIG, else ./nomatron.yaml.\n"
    "Exit codes: 0 ok, 1 runtime failure, 2 usage or config error, 3 audit chain broken, 124 shell timed out.\n"
    "Every command takes --help.\n";

/* ---- shell ---- */

static const char usage_shell[] =
    "usage: nomatron shell [--config FILE] [--as USER] [--workers N] [--timeout SECONDS]\n"
    "  Reads one command per line (the /nomatron prefix is optional) and prints replies and\n"
    "  progress as they arrive. With piped input it waits at end of input until every request\n"
    "  it created is finished or waiting for approval (--timeout, default 120 s).\n"
    "  --workers N   worker threads in this process (default: config's workers; 0 = none)\n"
    "  --as USER     act as shell:USER (needs shell.allow_as: true)\n";

static int cmd_shell(int argc, char **argv) {
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"as", required_argument, NULL, 'a'},
                                         {"workers", required_argument, NULL, 'w'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *cfg_path = NULL;
    shell_opts so = {.as = NULL, .workers = -1, .timeout_s = 120};
    int c;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'c': cfg_path = optarg; break;
        case 'a': so.as = optarg; break;
        case 'w':
            if ((so.workers = (int)cli_parse_count(optarg, 64)) < 0)
                return cli_usage_error("shell", usage_shell, "--workers wants a number from 0 to 64, not '%s'", optarg);
            break;
        case 't':
            if ((so.timeout_s = (int)cli_parse_count(optarg, 86400)) < 0)
                return cli_usage_error("shell", usage_shell, "--timeout wants seconds (0 to 86400), not '%s'", optarg);
            break;
        case 'h': fputs(usage_shell, stdout); return EXIT_OK;
        default: return cli_usage_error("shell", usage_shell, "%s", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("shell", usage_shell, "unexpected argument '%s'", argv[optind]);
    config *cfg = cli_load_config(cfg_path, "shell");
    if (!cfg) return EXIT_USAGE;
    config_holder *holder = config_holder_new(cfg);
    if (!holder) {
        config_free(cfg);
        return EXIT_RUNTIME;
    }
    int rc = shell_run(holder, &so);
    config_holder_free(holder);
    return rc;
}

/* ---- serve / worker ---- */

static const char usage_serve[] =
    "usage: nomatron serve [--config FILE] [--role all|bot|worker] [--listen ADDR:PORT|off]\n"
    "  Runs the bot (chat adapters) and/or the workers until SIGTERM or SIGINT.\n";
static const char usage_worker[] =
    "usage: nomatron worker [--config FILE]\n"
    "  Runs the workers alone (the same as serve --role worker).\n";

static void on_stop_signal(uv_signal_t *s, int signum) {
    (void)signum;
    uv_stop(s->loop);
}

static void on_hup_signal(uv_signal_t *s, int signum) {
    (void)signum;
    if (reload_start(s->loop, s->data, NULL, NULL) != 0)
        nm_log(NM_LOG_ERROR, "configuration reload could not start", NULL);
}

/* Runs the workers until SIGTERM/SIGINT; SIGHUP reloads the configuration.
 * Takes the reference to cfg. */
static int run_workers_until_signal(config *cfg) {
    char err[256];
    int n = cfg->workers > 0 ? cfg->workers : 1;
    config_holder *holder = config_holder_new(cfg);
    if (!holder) {
        config_free(cfg);
        fprintf(stderr, "nomatron: out of memory\n");
        return EXIT_RUNTIME;
    }
    /* Signal handlers first: a signal that arrives while threads start must not be lost. */
    uv_loop_t *loop = uv_default_loop();
    uv_signal_t sint, sterm, shup;
    uv_signal_init(loop, &sint);
    uv_signal_init(loop, &sterm);
    uv_signal_init(loop, &shup);
    shup.data = holder;
    uv_signal_start(&sint, on_stop_signal, SIGINT);
    uv_signal_start(&sterm, on_stop_signal, SIGTERM);
    uv_signal_start(&shup, on_hup_signal, SIGHUP);
    /* One appender for the process: threads appending at the same moment
     * share a transaction (NULL, out of memory: each write alone). */
    audit_appender *appender = audit_appender_new(0, 0);
    worker_pool *pool = worker_pool_start(holder, n, appender, err, sizeof(err));
    if (!pool) {
        fprintf(stderr, "nomatron: %s\n", err);
        audit_appender_free(appender);
        uv_close((uv_handle_t *)&sint, NULL);
        uv_close((uv_handle_t *)&sterm, NULL);
        uv_close((uv_handle_t *)&shup, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
        config_holder_free(holder);
        return EXIT_RUNTIME;
    }
    char count[16];
    snprintf(count, sizeof(count), "%d", n);
    nm_log(NM_LOG_INFO, "workers started", "count", count, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    nm_log(NM_LOG_INFO, "stopping workers", NULL);
    worker_pool_stop(pool);
    audit_appender_free(appender);   /* every thread that used it is joined */
    uv_close((uv_handle_t *)&sint, NULL);
    uv_close((uv_handle_t *)&sterm, NULL);
    uv_close((uv_handle_t *)&shup, NULL);
    uv_run(loop, UV_RUN_DEFAULT);   /* close callbacks and a reload still on the thread pool */
    config_holder_free(holder);
    return EXIT_OK;
}

static int cmd_serve(int argc, char **argv, bool worker_only) {
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"role", required_argument, NULL, 'r'},
                                         {"listen", required_argument, NULL, 'l'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *usage = worker_only ? usage_worker : usage_serve;
    const char *name = worker_only ? "worker" : "serve";
    const char *cfg_path = NULL, *role = worker_only ? "worker" : "all", *listen = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'c': cfg_path = optarg; break;
        case 'r':
            if (worker_only) return cli_usage_error(name, usage, "%s", "unknown option --role");
            role = optarg;
            break;
        case 'l':
            if (worker_only) return cli_usage_error(name, usage, "%s", "unknown option --listen");
            listen = optarg;
            break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: return cli_usage_error(name, usage, "%s", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error(name, usage, "unexpected argument '%s'", argv[optind]);
    if (strcmp(role, "all") != 0 && strcmp(role, "bot") != 0 && strcmp(role, "worker") != 0)
        return cli_usage_error(name, usage, "--role is all, bot or worker, not '%s'", role);
    config *cfg = cli_load_config(cfg_path, name);
    if (!cfg) return EXIT_USAGE;
    if (strcmp(role, "worker") == 0) return run_workers_until_signal(cfg);
    config_holder *holder = config_holder_new(cfg);
    if (!holder) {
        config_free(cfg);
        fprintf(stderr, "nomatron: out of memory\n");
        return EXIT_RUNTIME;
    }
    serve_opts so = {.workers = strcmp(role, "all") == 0, .listen = listen};
    int rc = serve_run(holder, &so);
    config_holder_free(holder);
    return rc;
}

/* ---- migrate ---- */

static const char usage_migrate[] =
    "usage: nomatron migrate [--config FILE]\n"
    "  Applies pending database migrations (postgres_migrate if set, else postgres).\n"
    "  Idempotent; safe when several run at once.\n";

static int cmd_migrate(int argc, char **argv) {
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *cfg_path = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'c': cfg_path = optarg; break;
        case 'h': fputs(usage_migrate, stdout); return EXIT_OK;
        default: return cli_usage_error("migrate", usage_migrate, "%s", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("migrate", usage_migrate, "unexpected argument '%s'", argv[optind]);
    config *cfg = cli_load_config(cfg_path, "migrate");
    if (!cfg) return EXIT_USAGE;
    const char *dsn = cfg->postgres_migrate && cfg->postgres_migrate[0] ? cfg->postgres_migrate : cfg->postgres;
    audit_db db;
    int rc = audit_connect(&db, dsn), applied = 0;
    if (rc == AUDIT_OK) rc = audit_migrate(&db, &applied);
    /* With a separate owner, the app role gets INSERT and SELECT only (docs/AUDIT.md, "Roles"). */
    char app[64], owner[64];
    if (rc == AUDIT_OK && cfg->postgres_migrate[0] && audit_dsn_user(cfg->postgres, app, sizeof(app)) == AUDIT_OK &&
        app[0] && audit_dsn_user(cfg->postgres_migrate, owner, sizeof(owner)) == AUDIT_OK && strcmp(app, owner) != 0)
        rc = audit_grant_app_role(&db, app, true);
    if (rc == AUDIT_OK) printf("migrations applied: %d\n", applied);
    else fprintf(stderr, "nomatron migrate: %s: %s\n", audit_strerror(rc), db.errstr);
    audit_close(&db);
    config_free(cfg);
    return rc == AUDIT_OK ? EXIT_OK : EXIT_RUNTIME;
}

/* ---- config ---- */

static const char usage_config[] =
    "usage: nomatron config check [--config FILE]\n"
    "  Validates the configuration and prints the resolved policy per environment (who may deploy,\n"
    "  who approves, freezes, promotion path) with every secret redacted. Exits 0 when valid, 2 with\n"
    "  file:line: key: reason otherwise.\n";

static int cmd_config(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_config, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    if (strcmp(argv[1], "check") != 0) return cli_usage_error("config", usage_config, "unknown subcommand '%s'", argv[1]);
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *cfg_path = NULL;
    int c;
    optind = 1;
    argc--;
    argv++;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'c': cfg_path = optarg; break;
        case 'h': fputs(usage_config, stdout); return EXIT_OK;
        default: return cli_usage_error("config", usage_config, "%s", "unknown option");
        }
    }
    config *cfg = cli_load_config(cfg_path, "config check");
    if (!cfg) return EXIT_USAGE;
    nm_buf out;
    nm_buf_init(&out, 0);
    int rc = config_describe(cfg, &out);
    if (rc == 0) fputs(out.data, stdout);
    nm_buf_free(&out);
    config_free(cfg);
    return rc == 0 ? EXIT_OK : EXIT_RUNTIME;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    /* Until the loop's handler is installed, a SIGHUP must not kill the process
     * (its default); the configuration was just read anyway. */
    signal(SIGHUP, SIG_IGN);
    const char *lvl = getenv("NOMATRON_LOG_LEVEL");
    if (lvl && nm_log_level_parse(lvl) >= 0) nm_log_set_level((enum nm_log_level)nm_log_level_parse(lvl));

    if (argc < 2) {
        fputs(usage_top, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_top, stdout);
        return EXIT_OK;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        if (argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
            fputs("usage: nomatron version\n  Prints the version.\n", stdout);
            return EXIT_OK;
        }
        if (argc > 2) {
            fprintf(stderr, "nomatron version: unexpected argument '%s'\nusage: nomatron version\n", argv[2]);
            return EXIT_USAGE;
        }
        printf("nomatron %s\n", NOMATRON_VERSION);
        return EXIT_OK;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "nomatron: libcurl initialisation failed\n");
        return EXIT_RUNTIME;
    }
    int rc;
    argc--;
    argv++;
    optind = 1;
    if (strcmp(cmd, "shell") == 0) rc = cmd_shell(argc, argv);
    else if (strcmp(cmd, "serve") == 0) rc = cmd_serve(argc, argv, false);
    else if (strcmp(cmd, "worker") == 0) rc = cmd_serve(argc, argv, true);
    else if (strcmp(cmd, "migrate") == 0) rc = cmd_migrate(argc, argv);
    else if (strcmp(cmd, "audit") == 0) rc = cli_audit(argc, argv);
    else if (strcmp(cmd, "config") == 0) rc = cmd_config(argc, argv);
    else {
        fprintf(stderr, "nomatron: unknown command '%s'\n%s", cmd, usage_top);
        rc = EXIT_USAGE;
    }
    curl_global_cleanup();
    return rc;
}
