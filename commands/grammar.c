/* The command grammar: one table of every command of SPEC §5, and one
 * matcher that reads the table's patterns. Pure: no I/O, no allocation.
 *
 * A pattern lists the words after the command name:
 *     UPPER      a slot (JOB, ENV, VERSION, ID, ...), validated by its name
 *     lower      a literal word that must be typed ("to", "in", "from")
 *     a|b        a choice of literal words, kept as the action's `sub`
 *     [ ... ]    an optional group, taken when its first literal is typed
 *     NAME...    the rest of the words, joined by single spaces
 * Flags (--canary N) may appear anywhere after the command name. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmd.h"

#define NA CMD_F_NOT_AVAILABLE
#define MUT CMD_F_MUTATES
#define NOMAD CMD_F_NEEDS_NOMAD

static const cmd_spec table[] = {
    {"deploy", CMD_DEPLOY, "JOB VERSION to ENV", "--canary --reason --emergency",
     "deploy JOB VERSION to ENV [--canary N] [--reason \"...\"] [--emergency \"why\"]",
     "plan, then approval or straight to the queue", MUT | NOMAD},
    {"promote", CMD_PROMOTE, "JOB from ENV to TARGET", "--reason --emergency",
     "promote JOB from ENV to ENV [--reason \"...\"] [--emergency \"why\"]",
     "deploy to the target the exact image running healthy in the source", MUT | NOMAD},
    {"approve", CMD_APPROVE, "ID", "", "approve ID", "count your approval of a request", 0},
    {"reject", CMD_REJECT, "ID [REASON...]", "", "reject ID [reason]", "end a request waiting for approval", 0},
    {"cancel", CMD_CANCEL, "ID", "", "cancel ID", "withdraw a request that is not running yet", 0},
    {"rollback", CMD_ROLLBACK, "JOB in ENV [to TARGETVERSION]", "--reason --emergency",
     "rollback JOB in ENV [to VERSION | to #N]",
     "revert to the newest stable job version running that tag (default: the previous stable one)",
     MUT | NOMAD},
    {"canary", CMD_CANARY, "promote|fail JOB in ENV", "", "canary promote|fail JOB in ENV",
     "promote or fail the canaries of the job's running request", MUT | NOMAD},
    {"pause", CMD_PAUSE, "JOB in ENV", "", "pause JOB in ENV", "pause the deployment of the job's running request",
     MUT | NOMAD},
    {"resume", CMD_RESUME, "JOB in ENV", "", "resume JOB in ENV",
     "resume the paused deployment of the job's running request", MUT | NOMAD},
    {"status", CMD_STATUS, "JOB [in ENV]", "", "status JOB [in ENV]",
     "running image and Nomad job version per environment, the active deployment and its counts", NOMAD},
    {"history", CMD_HISTORY, "JOB [in ENV]", "--limit", "history JOB [in ENV] [--limit N]",
     "past requests: outcome, actors, times", 0},
    {"audit", CMD_AUDIT, "REF", "", "audit ID|PERMALINK|MESSAGE-TS|POST-ID",
     "the whole trail behind a request or a chat message", 0},
    {"explain", CMD_EXPLAIN, "deploy|promote ARGS...", "", "explain deploy|promote ...",
     "what it would take right now (approvers, freeze, missing evidence); creates nothing", 0},
    {"lock", CMD_LOCK, "ENV REASON...", "", "lock ENV reason...", "freeze an environment by hand", 0},
    {"unlock", CMD_UNLOCK, "ENV", "", "unlock ENV", "lift a manual freeze", 0},
    {"envs", CMD_ENVS, "", "", "envs", "environments and their rules", 0},
    {"jobs", CMD_JOBS, "", "", "jobs", "jobs nomatron may deploy", 0},
    {"whoami", CMD_WHOAMI, "", "", "whoami", "your identity, person, groups and what you may do where", 0},
    {"help", CMD_HELP, "[TOPIC]", "", "help [COMMAND]", "this list, or one command's usage", 0},
    {"dashboard", CMD_DASHBOARD, "", "", "dashboard", "a link to the dashboard", NA},
    {"stats", CMD_STATS, "[ENV]", "--days", "stats [ENV] [--days N]", "delivery figures per environment", NA},
};

#define N_COMMANDS (sizeof(table) / sizeof(table[0]))

const cmd_spec *cmd_table_get(size_t *count) {
    *count = N_COMMANDS;
    return table;
}

const cmd_spec *cmd_lookup(const char *name) {
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcasecmp(table[i].name, name) == 0) return &table[i];
    return NULL;
}

const char *cmd_general_usage(void) {
    return "/nomatron <command> [arguments]; commands: deploy, promote, approve, reject, cancel, rollback, "
           "canary, pause, resume, status, history, audit, explain, lock, unlock, envs, jobs, whoami, help, "
           "dashboard, stats; try help COMMAND";
}

/* Appends to out[outlen] at n, counting what would be needed like snprintf. */
#define PUT(...)                                                                                      \
    do {                                                                                              \
        int w_ = snprintf(out + (n < outlen ? n : outlen), n < outlen ? outlen - n : 0, __VA_ARGS__); \
        if (w_ > 0) n += (size_t)w_;                                                                  \
    } while (0)

size_t cmd_help_text(const char *topic, char *out, size_t outlen) {
    size_t n = 0;
    if (outlen) out[0] = '\0';
    if (topic && *topic) {
        const cmd_spec *s = cmd_lookup(topic);
        if (!s) {
            PUT("unknown command '%.64s'; try help\n", topic);
        } else {
            PUT("usage: /nomatron %s\n%s%s\n", s->usage, s->summary,
                (s->flags & CMD_F_NOT_AVAILABLE) ? " (not available in this build yet)" : "");
        }
        return n;
    }
    PUT("nomatron commands (prefix /nomatron in chat; optional in the shell):\n");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        const char *later = (table[i].flags & CMD_F_NOT_AVAILABLE) ? " (not yet)" : "";
        if (strlen(table[i].usage) <= 40) PUT("  %-40s  %s%s\n", table[i].usage, table[i].summary, later);
        else PUT("  %s\n  %-40s  %s%s\n", table[i].usage, "", table[i].summary, later);
    }
    PUT("Request IDs read D-12 or 12. help COMMAND shows one command.\n");
    return n;
}

size_t cmd_docs_markdown(char *out, size_t outlen) {
    size_t n = 0;
    if (outlen) out[0] = '\0';
    PUT("# nomatron chat commands\n\n"
        "Generated from the command table in `commands/grammar.c` (`NOMATRON_WRITE_DOCS=1 build/bin/test_commands`\n"
        "rewrites it; a unit test fails when it drifts). Commands arrive as `/nomatron <command>` in Slack and\n"
        "Mattermost, as `@nomatron <command>` in Mattermost, or as a line in `nomatron shell` (prefix optional).\n"
        "Request IDs read `D-12` or `12`. Command text over %d bytes is refused.\n\n"
        "| command | what it does | changes Nomad | available |\n|---|---|---|---|\n",
        CMD_MAX_TEXT);
    for (size_t i = 0; i < N_COMMANDS; i++) {
        char usage[256];
        size_t u = 0;
        for (const char *p = table[i].usage; *p && u + 2 < sizeof(usage); p++) {
            if (*p == '|') usage[u++] = '\\';   /* a bar would end the Markdown cell */
            usage[u++] = *p;
        }
        usage[u] = '\0';
        PUT("| `%s` | %s | %s | %s |\n", usage, table[i].summary, (table[i].flags & CMD_F_MUTATES) ? "yes" : "no",
            (table[i].flags & CMD_F_NOT_AVAILABLE) ? "not yet" : "yes");
    }
    PUT("\nEvery refusal names what was wrong with a stable tag and shows the usage:\n\n");
    for (int code = CMD_ERR_EMPTY; code <= CMD_ERR_NOT_AVAILABLE; code++) PUT("%s`%s`", code == CMD_ERR_EMPTY ? "" : ", ",
                                                                            cmd_err_tag((enum cmd_err)code));
    PUT(".\n");
#undef PUT
    return n;
}

int64_t cmd_parse_id(const char *text) {
    const char *p = text;
    if ((p[0] == 'D' || p[0] == 'd') && p[1] == '-') p += 2;
    if (!isdigit((unsigned char)*p) || strlen(p) > 18) return -1;
    int64_t v = 0;
    for (; *p; p++) {
        if (!isdigit((unsigned char)*p)) return -1;
        v = v * 10 + (*p - '0');
    }
    return v > 0 ? v : -1;
}

/* ---------------------------------------------------------------- errors */

__attribute__((format(printf, 4, 5)))
static enum cmd_err fail(cmd_error *err, enum cmd_err code, const cmd_spec *spec, const char *fmt, ...) {
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    err->usage = spec ? spec->usage : cmd_general_usage();
    return code;
}

/* Echoes at most 40 bytes of user text, cut on a UTF-8 boundary. */
static const char *excerpt(const char *s, char *buf, size_t buflen) {
    size_t n = strlen(s), max = buflen - 4 < 40 ? buflen - 4 : 40;
    if (n <= max) return s;
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80) max--;
    memcpy(buf, s, max);
    memcpy(buf + max, "...", 4);
    return buf;
}

/* ---------------------------------------------------------------- slots */

static bool copy_to(char *dst, size_t dstlen, const char *src) {
    size_t n = strlen(src);
    if (n >= dstlen) return false;
    memcpy(dst, src, n + 1);
    return true;
}

/* Stores one slot value into the action, validating it by slot name. */
static enum cmd_err put_slot(const cmd_spec *spec, const char *slot, size_t slotlen, const char *v,
                             cmd_action *a, cmd_error *err) {
    char ex[48];
#define SLOT(name) (slotlen == sizeof(name) - 1 && memcmp(slot, name, slotlen) == 0)
    if (SLOT("JOB") || SLOT("ENV") || SLOT("TARGET")) {
        if (!config_valid_name(v))
            return fail(err, CMD_ERR_BAD_NAME, spec, "'%s' is not a valid %s name", excerpt(v, ex, sizeof(ex)),
                        SLOT("JOB") ? "job" : "environment");
        if (SLOT("JOB")) copy_to(a->job, sizeof(a->job), v);
        else if (SLOT("TARGET")) copy_to(a->env, sizeof(a->env), v);
        else if (spec->kind == CMD_PROMOTE) copy_to(a->from_env, sizeof(a->from_env), v);
        else copy_to(a->env, sizeof(a->env), v);
    } else if (SLOT("VERSION")) {
        if (!config_valid_tag(v))
            return fail(err, CMD_ERR_BAD_VERSION, spec,
                        "'%s' is not a valid version (an image tag: letters, digits, '_', '.', '-'; "
                        "at most 128; not starting with '.' or '-')",
                        excerpt(v, ex, sizeof(ex)));
        copy_to(a->version, sizeof(a->version), v);
    } else if (SLOT("TARGETVERSION")) {
        if (v[0] == '#') {
            char *end;
            errno = 0;
            long long n = strtoll(v + 1, &end, 10);
            if (!isdigit((unsigned char)v[1]) || *end || errno || n < 0)
                return fail(err, CMD_ERR_BAD_VERSION, spec, "'%s' is not a Nomad job version (#N)",
                            excerpt(v, ex, sizeof(ex)));
            a->job_version = n;
        } else {
            if (!config_valid_tag(v))
                return fail(err, CMD_ERR_BAD_VERSION, spec, "'%s' is not a valid version",
                            excerpt(v, ex, sizeof(ex)));
            copy_to(a->version, sizeof(a->version), v);
        }
    } else if (SLOT("ID")) {
        a->id = cmd_parse_id(v);
        if (a->id < 0)
            return fail(err, CMD_ERR_BAD_ID, spec, "'%s' is not a request ID (D-12 or 12)", excerpt(v, ex, sizeof(ex)));
    } else if (SLOT("REF")) {
        if (!copy_to(a->ref, sizeof(a->ref), v))
            return fail(err, CMD_ERR_BAD_NAME, spec, "the reference is too long");
    } else if (SLOT("TOPIC")) {
        if (!copy_to(a->topic, sizeof(a->topic), v))
            return fail(err, CMD_ERR_BAD_NAME, spec, "'%s' is not a command", excerpt(v, ex, sizeof(ex)));
    }
#undef SLOT
    return CMD_OK;
}

/* ---------------------------------------------------------------- flags */

static enum cmd_err put_flag(const cmd_spec *spec, const char *flag, const char *value, cmd_action *a,
                             cmd_error *err) {
    char ex[48];
    if (strcmp(flag, "--canary") == 0 || strcmp(flag, "--limit") == 0 || strcmp(flag, "--days") == 0) {
        char *end;
        errno = 0;
        long n = strtol(value, &end, 10);
        long max = strcmp(flag, "--canary") == 0 ? 100 : 1000;
        long min = strcmp(flag, "--canary") == 0 ? 0 : 1;
        if (!isdigit((unsigned char)value[0]) || *end || errno || n < min || n > max)
            return fail(err, CMD_ERR_BAD_FLAG, spec, "%s takes a whole number from %ld to %ld, not '%s'", flag, min,
                        max, excerpt(value, ex, sizeof(ex)));
        if (flag[2] == 'c') a->canary = (int)n;
        else if (flag[2] == 'l') a->limit = (int)n;
        else a->days = (int)n;
        return CMD_OK;
    }
    char *dst = strcmp(flag, "--reason") == 0 ? a->reason : a->emergency;
    if (!*value) return fail(err, CMD_ERR_BAD_FLAG, spec, "%s needs a text", flag);
    if (!copy_to(dst, CMD_MAX_REASON + 1, value))
        return fail(err, CMD_ERR_BAD_FLAG, spec, "%s is longer than %d bytes", flag, CMD_MAX_REASON);
    return CMD_OK;
}

/* ---------------------------------------------------------------- the matcher */

/* One word of a pattern: [start, start+len), and whether it is inside [ ]. */
typedef struct pword {
    const char *s;
    size_t len;
    bool optional, group_start;
} pword;

static size_t split_pattern(const char *pat, pword *out, size_t max) {
    size_t n = 0;
    bool in_opt = false;
    for (const char *p = pat; *p && n < max;) {
        while (*p == ' ') p++;
        if (!*p) break;
        bool start = false;
        if (*p == '[') {
            in_opt = true;
            start = true;
            p++;
        }
        const char *s = p;
        while (*p && *p != ' ' && *p != ']') p++;
        out[n++] = (pword){s, (size_t)(p - s), in_opt, start};
        if (*p == ']') {
            in_opt = false;
            p++;
        }
    }
    return n;
}

static bool is_slot(const pword *w) { return isupper((unsigned char)w->s[0]); }
static bool is_rest(const pword *w) { return w->len > 3 && memcmp(w->s + w->len - 3, "...", 3) == 0; }

/* Does word `v` match the literal (or a|b choice) w? */
static bool literal_match(const pword *w, const char *v) {
    const char *p = w->s, *end = w->s + w->len;
    while (p < end) {
        const char *bar = memchr(p, '|', (size_t)(end - p));
        const char *alt_end = bar ? bar : end;
        size_t l = (size_t)(alt_end - p);
        if (strlen(v) == l && strncasecmp(v, p, l) == 0) return true;
        p = bar ? bar + 1 : end;
    }
    return false;
}

static const char *slot_label(const pword *w, char *buf, size_t buflen) {
    size_t l = is_rest(w) ? w->len - 3 : w->len;
    if (l == 6 && memcmp(w->s, "TARGET", 6) == 0) return "ENV";
    if (l == 13 && memcmp(w->s, "TARGETVERSION", 13) == 0) return "VERSION";
    snprintf(buf, buflen, "%.*s", (int)l, w->s);
    return buf;
}

static enum cmd_err match(const cmd_spec *spec, const char **pos, size_t npos, cmd_action *a, cmd_error *err);

static enum cmd_err match_words(const cmd_spec *spec, const pword *pw, size_t npw, const char **pos, size_t npos,
                                cmd_action *a, cmd_error *err) {
    size_t i = 0;   /* next positional word */
    char lbl[32], ex[48];
    for (size_t k = 0; k < npw; k++) {
        const pword *w = &pw[k];
        if (w->group_start) {
            /* Take an optional group only if its first word is there (and, for a
             * literal, is that word); otherwise skip the whole group. */
            bool take = i < npos && (is_slot(w) || literal_match(w, pos[i]));
            if (!take) {
                while (k + 1 < npw && pw[k + 1].optional && !pw[k + 1].group_start) k++;
                continue;
            }
        }
        if (is_rest(w)) {
            if (i >= npos) {
                if (w->optional) continue;
                return fail(err, CMD_ERR_MISSING_ARG, spec, "missing %s", slot_label(w, lbl, sizeof(lbl)));
            }
            if (spec->kind == CMD_EXPLAIN) return match(spec, pos + i - 1, npos - i + 1, a, err);
            char *dst = spec->kind == CMD_AUDIT ? a->ref : a->reason;
            size_t len = 0;
            for (; i < npos; i++) {
                size_t l = strlen(pos[i]);
                if (len + l + (len ? 1 : 0) > CMD_MAX_REASON)
                    return fail(err, CMD_ERR_EXTRA_ARG, spec, "the reason is longer than %d bytes", CMD_MAX_REASON);
                if (len) dst[len++] = ' ';
                memcpy(dst + len, pos[i], l);
                len += l;
                dst[len] = '\0';
            }
            continue;
        }
        if (i >= npos)
            return fail(err, CMD_ERR_MISSING_ARG, spec, "missing %s%.*s%s",
                        is_slot(w) ? slot_label(w, lbl, sizeof(lbl)) : "the word '",
                        is_slot(w) ? 0 : (int)w->len, w->s, is_slot(w) ? "" : "'");
        if (is_slot(w)) {
            enum cmd_err rc = put_slot(spec, w->s, w->len, pos[i], a, err);
            if (rc != CMD_OK) return rc;
        } else if (!literal_match(w, pos[i])) {
            return fail(err, CMD_ERR_EXPECTED_WORD, spec, "expected '%.*s' where '%s' is", (int)w->len, w->s,
                        excerpt(pos[i], ex, sizeof(ex)));
        } else if (memchr(w->s, '|', w->len)) {
            snprintf(a->sub, sizeof(a->sub), "%s", pos[i]);
            for (char *c = a->sub; *c; c++) *c = (char)tolower((unsigned char)*c);
        }
        i++;
    }
    if (i < npos) return fail(err, CMD_ERR_EXTRA_ARG, spec, "unexpected '%s'", excerpt(pos[i], ex, sizeof(ex)));
    return CMD_OK;
}

/* Matches positional words: pos[0] is the command name. */
static enum cmd_err match(const cmd_spec *outer, const char **pos, size_t npos, cmd_action *a, cmd_error *err) {
    char ex[48];
    const cmd_spec *spec = cmd_lookup(pos[0]);
    if (!spec)
        return fail(err, CMD_ERR_UNKNOWN_COMMAND, NULL, "unknown command '%s'", excerpt(pos[0], ex, sizeof(ex)));
    if (outer) {   /* explain deploy|promote ...: parse the inner command into the same action */
        a->explained = spec->kind;
    } else {
        a->kind = spec->kind;
    }
    pword pw[16];
    size_t npw = split_pattern(spec->pattern, pw, 16);
    return match_words(spec, pw, npw, pos + 1, npos - 1, a, err);
}

enum cmd_err cmd_parse(const char *text, size_t len, cmd_action *a, cmd_error *err) {
    cmd_tokens t;
    memset(a, 0, sizeof(*a));
    a->canary = a->limit = a->days = -1;
    a->job_version = -1;
    memset(err, 0, sizeof(*err));
    enum cmd_err rc = cmd_tokenize(text, len, &t, err);
    if (rc != CMD_OK) return rc;

    size_t first = 0;
    if (t.argc > 0 && !t.quoted[0] &&
        (strcasecmp(t.argv[0], "/nomatron") == 0 || strcasecmp(t.argv[0], "@nomatron") == 0))
        first = 1;
    if (first >= t.argc) return fail(err, CMD_ERR_EMPTY, NULL, "empty command; try help");

    const char *name = t.argv[first];
    char ex[48];
    const cmd_spec *spec = cmd_lookup(name);
    if (!spec) return fail(err, CMD_ERR_UNKNOWN_COMMAND, NULL, "unknown command '%s'", excerpt(name, ex, sizeof(ex)));

    /* Flags out, positionals kept in order. For explain, the inner command's flags count. */
    const char *pos[CMD_MAX_ARGS];
    size_t npos = 0;
    const cmd_spec *fspec = spec;
    if (spec->kind == CMD_EXPLAIN && first + 1 < t.argc && cmd_lookup(t.argv[first + 1]))
        fspec = cmd_lookup(t.argv[first + 1]);
    for (size_t i = first; i < t.argc; i++) {
        const char *w = t.argv[i];
        if (i == first || t.quoted[i] || strncmp(w, "--", 2) != 0) {
            pos[npos++] = w;
            continue;
        }
        char flag[24];
        const char *eq = strchr(w, '=');
        size_t fl = eq ? (size_t)(eq - w) : strlen(w);
        if (fl < 3 || fl >= sizeof(flag))
            return fail(err, CMD_ERR_BAD_FLAG, spec, "unknown flag '%s'", excerpt(w, ex, sizeof(ex)));
        memcpy(flag, w, fl);
        flag[fl] = '\0';
        /* Match whole words within the space-separated list. */
        const char *hit = strstr(fspec->flags_allowed, flag);
        if (!hit || (hit[fl] != ' ' && hit[fl] != '\0'))
            return fail(err, CMD_ERR_BAD_FLAG, fspec, "%s has no flag %s", fspec->name, flag);
        const char *value;
        if (eq) {
            value = eq + 1;
        } else {
            if (i + 1 >= t.argc) return fail(err, CMD_ERR_BAD_FLAG, fspec, "%s needs a value", flag);
            value = t.argv[++i];
        }
        rc = put_flag(fspec, flag, value, a, err);
        if (rc != CMD_OK) return rc;
    }
    rc = match(NULL, pos, npos, a, err);
    if (rc != CMD_OK) return rc;
    if (spec->flags & CMD_F_NOT_AVAILABLE)
        return fail(err, CMD_ERR_NOT_AVAILABLE, spec, "'%s' is understood but not available in this build yet",
                    spec->name);
    return CMD_OK;
}

enum cmd_err cmd_check(const cmd_action *a, const config *cfg, cmd_error *err) {
    const cmd_spec *spec = NULL;
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (table[i].kind == a->kind) spec = &table[i];
    if (a->job[0] && !config_find_job(cfg, a->job)) {
        char known[160] = "";
        for (size_t i = 0; i < cfg->n_jobs && strlen(known) < 120; i++)
            snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s", i ? ", " : "", cfg->jobs[i].name);
        return fail(err, CMD_ERR_UNKNOWN_JOB, spec, "unknown job '%s' (known: %s)", a->job, *known ? known : "none");
    }
    const char *envs[] = {a->env, a->from_env};
    for (size_t e = 0; e < 2; e++) {
        if (!envs[e][0] || config_find_env(cfg, envs[e])) continue;
        char known[160] = "";
        for (size_t i = 0; i < cfg->n_envs && strlen(known) < 120; i++)
            snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s", i ? ", " : "", cfg->envs[i].name);
        return fail(err, CMD_ERR_UNKNOWN_ENV, spec, "unknown environment '%s' (known: %s)", envs[e],
                    *known ? known : "none");
    }
    return CMD_OK;
}
