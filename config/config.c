/* Configuration loader: YAML (via yamltree) -> struct config, SPEC §3.
 *
 * The walker validates as it copies: every value is checked where it is
 * read, so an error can name the file, the line and the dotted key. Cross
 * references (people, groups, environments) are checked after the whole
 * file is read. Nothing here logs: a value may be a secret. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "freeze.h"
#include "tzif.h"
#include "yamltree.h"

#define MAX_EXPANDED (64 * 1024)   /* one value after ${...} expansion */
#define KEY_LEN 192

const char *config_strerror(int code) {
    switch (code) {
    case CONFIG_OK: return "ok";
    case CONFIG_ERR_IO: return "cannot read the configuration file";
    case CONFIG_ERR_SYNTAX: return "invalid YAML";
    case CONFIG_ERR_SCHEMA: return "invalid configuration";
    case CONFIG_ERR_REF: return "unknown reference in the configuration";
    case CONFIG_ERR_ENV: return "unresolved ${...} in the configuration";
    case CONFIG_ERR_NOMEM: return "out of memory";
    default: return "unknown configuration error";
    }
}

/* ---------------------------------------------------------------- pure helpers */

int64_t config_parse_duration(const char *text) {
    static const struct { char unit; int64_t ms; } units[] = {
        {'d', 86400000}, {'h', 3600000}, {'m', 60000}, {'s', 1000},
    };
    if (!text || !*text) return -1;
    const char *p = text;
    int64_t total = 0;
    size_t next_unit = 0;   /* units must come in order d, h, m, s, each at most once */
    while (*p) {
        if (!isdigit((unsigned char)*p)) return -1;
        int64_t n = 0;
        while (isdigit((unsigned char)*p)) {
            if (n > (INT64_MAX - 9) / 10) return -1;
            n = n * 10 + (*p++ - '0');
        }
        size_t u = next_unit;
        while (u < 4 && units[u].unit != *p) u++;
        if (u == 4) return -1;
        p++;
        next_unit = u + 1;
        if (n > (INT64_MAX - total) / units[u].ms) return -1;
        total += n * units[u].ms;
    }
    return total;
}

bool config_valid_tag(const char *v) {
    if (!v || !*v) return false;
    size_t n = 0;
    for (const char *p = v; *p; p++, n++) {
        unsigned char ch = (unsigned char)*p;
        bool ok = isalnum(ch) || ch == '_' || (n > 0 && (ch == '.' || ch == '-'));
        if (!ok || !isascii(ch)) return false;
    }
    return n <= 128;
}

bool config_valid_name(const char *s) {
    if (!s || !*s) return false;
    size_t n = 0;
    for (const char *p = s; *p; p++, n++) {
        unsigned char ch = (unsigned char)*p;
        if (!isascii(ch)) return false;
        if (!(isalnum(ch) || (n > 0 && (ch == '_' || ch == '-' || ch == '.')))) return false;
    }
    return n <= CONFIG_MAX_NAME;
}

/* platform:id with a known platform and a printable, blank-free id. */
static bool valid_identity(const char *s) {
    static const char *platforms[] = {"slack:", "mattermost:", "shell:"};
    for (size_t i = 0; i < sizeof(platforms) / sizeof(platforms[0]); i++) {
        size_t pl = strlen(platforms[i]);
        if (strncmp(s, platforms[i], pl) != 0) continue;
        const char *id = s + pl;
        if (!*id || strlen(id) > 128) return false;
        for (const char *p = id; *p; p++)
            if ((unsigned char)*p <= ' ' || *p == 0x7f) return false;
        return true;
    }
    return false;
}

int config_redis_url(const char *url, char *host, size_t hostlen, int *port, int *db, char *password,
                     size_t passlen, char *err, size_t errlen) {
    *port = 6379;
    *db = 0;
    if (password && passlen) password[0] = '\0';
    if (strncmp(url, "rediss://", 9) == 0) {
        snprintf(err, errlen,
                 "rediss:// is not supported (this hiredis has no TLS): run a TLS tunnel such as stunnel "
                 "and point redis:// at its local end");
        return CONFIG_ERR_SCHEMA;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, errlen, "expected redis://[:password@]host[:port][/db]");
        return CONFIG_ERR_SCHEMA;
    }
    const char *p = url + 8;
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        /* redis://user:password@ or redis://:password@; the user is ignored (Redis 5 AUTH). */
        const char *pw = colon ? colon + 1 : p;
        size_t pwlen = (size_t)(at - pw);
        if (!password || pwlen >= passlen) {
            snprintf(err, errlen, "password too long");
            return CONFIG_ERR_SCHEMA;
        }
        memcpy(password, pw, pwlen);
        password[pwlen] = '\0';
        p = at + 1;
    }
    size_t hl = strcspn(p, ":/");
    if (hl == 0 || hl >= hostlen) {
        snprintf(err, errlen, "missing or over-long host");
        return CONFIG_ERR_SCHEMA;
    }
    memcpy(host, p, hl);
    host[hl] = '\0';
    p += hl;
    if (*p == ':') {
        char *end;
        errno = 0;
        long v = strtol(p + 1, &end, 10);
        if (end == p + 1 || errno || v < 1 || v > 65535 || (*end && *end != '/')) {
            snprintf(err, errlen, "port must be 1-65535");
            return CONFIG_ERR_SCHEMA;
        }
        *port = (int)v;
        p = end;
    }
    if (*p == '/' && p[1]) {
        char *end;
        errno = 0;
        long v = strtol(p + 1, &end, 10);
        if (end == p + 1 || *end || errno || v < 0 || v > 1000000) {
            snprintf(err, errlen, "database must be a number");
            return CONFIG_ERR_SCHEMA;
        }
        *db = (int)v;
    } else if (*p && strcmp(p, "/") != 0) {
        snprintf(err, errlen, "unexpected text after the host");
        return CONFIG_ERR_SCHEMA;
    }
    return CONFIG_OK;
}

const char *config_default_path(const char *flag_value) {
    if (flag_value && *flag_value) return flag_value;
    const char *env = getenv("NOMATRON_CONFIG");
    if (env && *env) return env;
    return "nomatron.yaml";
}

/* ---------------------------------------------------------------- the walker */

typedef struct ctx {
    const char *file;
    const config_resolver *res;
    char *err;
    size_t errlen;
    int code;         /* first error; later ones are not reported */
    config *cfg;
} ctx;

__attribute__((format(printf, 5, 6)))
static int fail(ctx *c, int code, int line, const char *key, const char *fmt, ...) {
    if (c->code != CONFIG_OK) return c->code;
    int n = snprintf(c->err, c->errlen, "%s:%d: %s%s", c->file, line, key ? key : "", key ? ": " : "");
    if (n >= 0 && (size_t)n < c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    c->code = code;
    return code;
}

static int nomem(ctx *c, int line, const char *key) {
    return fail(c, CONFIG_ERR_NOMEM, line, key, "out of memory");
}

static void keyjoin(char *out, const char *parent, const char *child) {
    snprintf(out, KEY_LEN, "%s%s%s", parent, *parent ? "." : "", child);
}

static bool is_null(const yt_node *n) {
    return n->type == YT_SCALAR && n->plain &&
           (n->len == 0 || strcmp(n->text, "~") == 0 || strcmp(n->text, "null") == 0);
}

/* Refuses keys of `map` not in `allowed` (NULL-terminated). */
static int check_keys(ctx *c, const yt_node *map, const char *key, const char *const *allowed) {
    for (size_t i = 0; i + 1 < map->n; i += 2) {
        const char *k = map->items[i]->text;
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, k) == 0) ok = true;
        if (!ok) {
            char full[KEY_LEN];
            keyjoin(full, key, k);
            return fail(c, CONFIG_ERR_SCHEMA, map->items[i]->line, full, "unknown key");
        }
    }
    return CONFIG_OK;
}

static int expect(ctx *c, const yt_node *n, enum yt_type type, const char *key) {
    static const char *names[] = {"a single value", "a list", "a mapping"};
    if (n->type != type) return fail(c, CONFIG_ERR_SCHEMA, n->line, key, "expected %s", names[type]);
    return CONFIG_OK;
}

/* Expands ${NAME}, ${NAME:-default} and ${file:PATH} in a scalar. Returns a
 * malloc'd string (owned by the caller) or NULL with the error recorded. */
static char *expand(ctx *c, const yt_node *n, const char *key) {
    if (expect(c, n, YT_SCALAR, key) != CONFIG_OK) return NULL;
    if (memchr(n->text, '\0', n->len)) {
        fail(c, CONFIG_ERR_SCHEMA, n->line, key, "value contains a NUL byte");
        return NULL;
    }
    size_t cap = n->len + 1, len = 0;
    char *out = malloc(cap);
    if (!out) {
        nomem(c, n->line, key);
        return NULL;
    }
    const char *p = n->text;
    while (*p) {
        const char *piece = p;
        size_t plen = 1;
        char *owned = NULL;
        if (p[0] == '$' && p[1] == '{') {
            const char *close = strchr(p + 2, '}');
            if (!close) {
                fail(c, CONFIG_ERR_SCHEMA, n->line, key, "unterminated ${");
                goto bad;
            }
            size_t inner = (size_t)(close - (p + 2));
            char ref[512];
            if (inner == 0 || inner >= sizeof(ref)) {
                fail(c, CONFIG_ERR_SCHEMA, n->line, key, "empty or over-long ${...}");
                goto bad;
            }
            memcpy(ref, p + 2, inner);
            ref[inner] = '\0';
            if (strncmp(ref, "file:", 5) == 0) {
                const char *path = ref + 5;
                if (!*path) {
                    fail(c, CONFIG_ERR_SCHEMA, n->line, key, "${file:} needs a path");
                    goto bad;
                }
                if (!c->res || !c->res->readfile || c->res->readfile(c->res->ud, path, &owned) != 0 || !owned) {
                    fail(c, CONFIG_ERR_ENV, n->line, key, "cannot read ${file:%s}", path);
                    goto bad;
                }
                size_t ol = strlen(owned);
                if (ol && owned[ol - 1] == '\n') owned[--ol] = '\0';   /* one trailing newline */
                if (ol && owned[ol - 1] == '\r') owned[--ol] = '\0';
            } else {
                char *dflt = strstr(ref, ":-");
                if (dflt) {
                    *dflt = '\0';
                    dflt += 2;
                }
                const char *name = ref;
                bool ok = isalpha((unsigned char)name[0]) || name[0] == '_';
                for (const char *q = name; *q && ok; q++) ok = isalnum((unsigned char)*q) || *q == '_';
                if (!ok) {
                    fail(c, CONFIG_ERR_SCHEMA, n->line, key, "bad variable name in ${%.64s}", name);
                    goto bad;
                }
                if (!c->res || !c->res->getenv || c->res->getenv(c->res->ud, name, &owned) != 0 || !owned) {
                    free(owned);
                    owned = NULL;
                    if (!dflt) {
                        fail(c, CONFIG_ERR_ENV, n->line, key, "environment variable %s is not set", name);
                        goto bad;
                    }
                    owned = strdup(dflt);
                    if (!owned) {
                        nomem(c, n->line, key);
                        goto bad;
                    }
                }
            }
            piece = owned;
            plen = strlen(owned);
            p = close + 1;
        } else {
            p++;
        }
        if (len + plen >= MAX_EXPANDED) {
            free(owned);
            fail(c, CONFIG_ERR_SCHEMA, n->line, key, "value longer than %d bytes after expansion", MAX_EXPANDED);
            goto bad;
        }
        if (len + plen + 1 > cap) {
            size_t ncap = (len + plen + 1) * 2;
            char *grown = realloc(out, ncap);
            if (!grown) {
                free(owned);
                nomem(c, n->line, key);
                goto bad;
            }
            out = grown;
            cap = ncap;
        }
        memcpy(out + len, piece, plen);
        len += plen;
        free(owned);
    }
    out[len] = '\0';
    return out;
bad:
    free(out);
    return NULL;
}

/* A string value; *dst replaced (the old value freed). */
static int get_str(ctx *c, const yt_node *n, const char *key, char **dst) {
    char *v = is_null(n) ? strdup("") : expand(c, n, key);
    if (!v) return c->code ? c->code : nomem(c, n->line, key);
    free(*dst);
    *dst = v;
    return CONFIG_OK;
}

static int get_int(ctx *c, const yt_node *n, const char *key, long min, long max, int *dst) {
    char *v = expand(c, n, key);
    if (!v) return c->code;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    bool ok = end != v && !*end && !errno && isdigit((unsigned char)v[0]);
    free(v);
    if (!ok) return fail(c, CONFIG_ERR_SCHEMA, n->line, key, "expected a whole number");
    if (x < min || x > max) return fail(c, CONFIG_ERR_SCHEMA, n->line, key, "must be between %ld and %ld", min, max);
    *dst = (int)x;
    return CONFIG_OK;
}

static int get_bool(ctx *c, const yt_node *n, const char *key, bool *dst) {
    char *v = expand(c, n, key);
    if (!v) return c->code;
    int r = strcmp(v, "true") == 0 ? 1 : strcmp(v, "false") == 0 ? 0 : -1;
    free(v);
    if (r < 0) return fail(c, CONFIG_ERR_SCHEMA, n->line, key, "expected true or false");
    *dst = r == 1;
    return CONFIG_OK;
}

static int get_duration(ctx *c, const yt_node *n, const char *key, int64_t *dst) {
    char *v = expand(c, n, key);
    if (!v) return c->code;
    int64_t ms = config_parse_duration(v);
    free(v);
    if (ms < 0) return fail(c, CONFIG_ERR_SCHEMA, n->line, key, "expected a duration like 90s, 15m, 4h, 1h30m, 7d");
    *dst = ms;
    return CONFIG_OK;
}

static void strv_free(config_strv *s) {
    for (size_t i = 0; i < s->n; i++) free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

/* A list of strings; each checked by `valid` when given (what names the rule). */
static int get_strv(ctx *c, const yt_node *n, const char *key, config_strv *dst, bool (*valid)(const char *),
                    const char *what) {
    if (is_null(n)) return CONFIG_OK;
    if (expect(c, n, YT_SEQ, key) != CONFIG_OK) return c->code;
    strv_free(dst);
    dst->v = calloc(n->n ? n->n : 1, sizeof(char *));
    if (!dst->v) return nomem(c, n->line, key);
    for (size_t i = 0; i < n->n; i++) {
        char *v = expand(c, n->items[i], key);
        if (!v) return c->code;
        dst->v[dst->n++] = v;
        if (valid && !valid(v))
            return fail(c, CONFIG_ERR_SCHEMA, n->items[i]->line, key, "'%.64s' is not %s", v, what);
    }
    return CONFIG_OK;
}

/* ---------------------------------------------------------------- sections */

static int parse_nomad(ctx *c, const yt_node *n, const char *key, config_nomad *nd) {
    static const char *const keys[] = {"address", "region", "namespace", "token", "ca_file", "timeout",
                                       "client_cert", "client_key", "tls_server_name", NULL};
    if (expect(c, n, YT_MAP, key) || check_keys(c, n, key, keys)) return c->code;
    char k[KEY_LEN];
    const yt_node *v;
    for (size_t i = 0; keys[i]; i++) {
        if (!(v = yt_get(n, keys[i]))) continue;
        keyjoin(k, key, keys[i]);
        if (strcmp(keys[i], "timeout") == 0) {
            if (get_duration(c, v, k, &nd->timeout_ms)) return c->code;
            if (nd->timeout_ms < 1000) return fail(c, CONFIG_ERR_SCHEMA, v->line, k, "must be at least 1s");
            continue;
        }
        char **dst = i == 0 ? &nd->address : i == 1 ? &nd->region : i == 2 ? &nd->namespace
                   : i == 3 ? &nd->token : i == 4 ? &nd->ca_file : i == 6 ? &nd->client_cert
                   : i == 7 ? &nd->client_key : &nd->tls_server_name;
        if (get_str(c, v, k, dst)) return c->code;
    }
    keyjoin(k, key, "address");
    if (!nd->address || !*nd->address) return fail(c, CONFIG_ERR_SCHEMA, n->line, k, "required");
    if (strncmp(nd->address, "http://", 7) != 0 && strncmp(nd->address, "https://", 8) != 0)
        return fail(c, CONFIG_ERR_SCHEMA, yt_get(n, "address")->line, k, "must start with http:// or https://");
    size_t al = strlen(nd->address);
    while (al > 8 && nd->address[al - 1] == '/') nd->address[--al] = '\0';
    if (!*nd->namespace) {
        keyjoin(k, key, "namespace");
        return fail(c, CONFIG_ERR_SCHEMA, n->line, k, "must not be empty");
    }
    if (!*nd->client_cert != !*nd->client_key) {
        keyjoin(k, key, *nd->client_cert ? "client_key" : "client_cert");
        return fail(c, CONFIG_ERR_SCHEMA, n->line, k, "client_cert and client_key go together");
    }
    return CONFIG_OK;
}

static bool env_defaults(config_env *e) {
    e->nomad.region = strdup("");
    e->nomad.namespace = strdup("default");
    e->nomad.token = strdup("");
    e->nomad.ca_file = strdup("");
    e->nomad.client_cert = strdup("");
    e->nomad.client_key = strdup("");
    e->nomad.tls_server_name = strdup("");
    e->nomad.timeout_ms = 30000;
    e->approval_ttl_ms = 24LL * 3600 * 1000;
    return e->nomad.region && e->nomad.namespace && e->nomad.token && e->nomad.ca_file && e->nomad.client_cert &&
           e->nomad.client_key && e->nomad.tls_server_name;
}

static bool valid_channel(const char *s) { return valid_identity(s); }

static int parse_env(ctx *c, const char *name, const yt_node *n, int line, config_env *e) {
    static const char *const keys[] = {"nomad", "deployers", "approvals", "approvers", "promote_from",
                                       "promote_after", "self_approval", "approval_ttl", "freeze", "channels",
                                       "notify", NULL};
    char key[KEY_LEN], k[KEY_LEN];
    snprintf(key, sizeof(key), "environments.%s", name);
    e->line = line;
    if (!(e->name = strdup(name)) || !env_defaults(e)) return nomem(c, line, key);
    if (!config_valid_name(name))
        return fail(c, CONFIG_ERR_SCHEMA, line, key, "environment names are letters, digits, '_', '-', '.' (max %d)",
                    CONFIG_MAX_NAME);
    if (expect(c, n, YT_MAP, key) || check_keys(c, n, key, keys)) return c->code;
    const yt_node *v;
    keyjoin(k, key, "nomad");
    if (!(v = yt_get(n, "nomad"))) return fail(c, CONFIG_ERR_SCHEMA, n->line, k, "required");
    if (parse_nomad(c, v, k, &e->nomad)) return c->code;
    if ((v = yt_get(n, "deployers")) && (keyjoin(k, key, "deployers"), get_strv(c, v, k, &e->deployers, NULL, NULL)))
        return c->code;
    if ((v = yt_get(n, "approvers")) && (keyjoin(k, key, "approvers"), get_strv(c, v, k, &e->approvers, NULL, NULL)))
        return c->code;
    if ((v = yt_get(n, "approvals")) && (keyjoin(k, key, "approvals"), get_int(c, v, k, 0, 10, &e->approvals)))
        return c->code;
    if ((v = yt_get(n, "promote_from")) && (keyjoin(k, key, "promote_from"), get_str(c, v, k, &e->promote_from)))
        return c->code;
    if (e->promote_from && !*e->promote_from) {
        free(e->promote_from);
        e->promote_from = NULL;
    }
    if ((v = yt_get(n, "promote_after")) &&
        (keyjoin(k, key, "promote_after"), get_duration(c, v, k, &e->promote_after_ms)))
        return c->code;
    if ((v = yt_get(n, "self_approval")) &&
        (keyjoin(k, key, "self_approval"), get_bool(c, v, k, &e->self_approval)))
        return c->code;
    if ((v = yt_get(n, "approval_ttl")) &&
        (keyjoin(k, key, "approval_ttl"), get_duration(c, v, k, &e->approval_ttl_ms)))
        return c->code;
    /* Freeze windows stay text in the snapshot (commands/ evaluates them); here
     * each must parse and name a time zone that exists. */
    if ((v = yt_get(n, "freeze")) && (keyjoin(k, key, "freeze"), get_strv(c, v, k, &e->freeze, NULL, NULL)))
        return c->code;
    for (size_t i = 0; i < e->freeze.n; i++) {
        config_freeze f;
        char why[160];
        int at = v->type == YT_SEQ && i < v->n ? v->items[i]->line : v->line;
        if (config_freeze_parse(e->freeze.v[i], &f, why, sizeof(why)) != 0)
            return fail(c, CONFIG_ERR_SCHEMA, at, k, "%s", why);
        if (strcmp(f.zone, "UTC") != 0 && c->res && c->res->zone && c->res->zone(c->res->ud, f.zone, why, sizeof(why)))
            return fail(c, CONFIG_ERR_SCHEMA, at, k, "%s", why);
    }
    if ((v = yt_get(n, "channels")) &&
        (keyjoin(k, key, "channels"), get_strv(c, v, k, &e->channels, valid_channel, "platform:channel")))
        return c->code;
    if ((v = yt_get(n, "notify")) &&
        (keyjoin(k, key, "notify"), get_strv(c, v, k, &e->notify, valid_channel, "platform:channel")))
        return c->code;
    if (e->approvals > 0 && e->approvers.n == 0) {
        keyjoin(k, key, "approvers");
        return fail(c, CONFIG_ERR_SCHEMA, n->line, k, "required when approvals > 0");
    }
    return CONFIG_OK;
}

static bool valid_task(const char *s) { return *s && strlen(s) <= 128 && !strpbrk(s, " \t\r\n"); }

static bool valid_image(const char *s) {
    /* registry/repo without a tag: the version supplies it. */
    if (!*s || strlen(s) > 255) return false;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || strchr("._-/:", *p)) || !isascii((unsigned char)*p)) return false;
    const char *slash = strrchr(s, '/');
    return !strchr(slash ? slash : s, ':') && s[strlen(s) - 1] != '/';
}

static int parse_job(ctx *c, const char *name, const yt_node *n, int line, config_job *j) {
    static const char *const keys[] = {"nomad_job", "tasks", "image", NULL};
    char key[KEY_LEN], k[KEY_LEN];
    snprintf(key, sizeof(key), "jobs.%s", name);
    if (!(j->name = strdup(name))) return nomem(c, line, key);
    if (!config_valid_name(name))
        return fail(c, CONFIG_ERR_SCHEMA, line, key, "job names are letters, digits, '_', '-', '.' (max %d)",
                    CONFIG_MAX_NAME);
    if (expect(c, n, YT_MAP, key) || check_keys(c, n, key, keys)) return c->code;
    const yt_node *v;
    if ((v = yt_get(n, "nomad_job")) && (keyjoin(k, key, "nomad_job"), get_str(c, v, k, &j->nomad_job)))
        return c->code;
    if (!j->nomad_job || !*j->nomad_job) {
        free(j->nomad_job);
        if (!(j->nomad_job = strdup(name))) return nomem(c, line, key);
    }
    keyjoin(k, key, "tasks");
    if (!(v = yt_get(n, "tasks"))) return fail(c, CONFIG_ERR_SCHEMA, n->line, k, "required");
    if (get_strv(c, v, k, &j->tasks, valid_task, "a task name")) return c->code;
    if (j->tasks.n == 0) return fail(c, CONFIG_ERR_SCHEMA, v->line, k, "name at least one task");
    keyjoin(k, key, "image");
    if (!(v = yt_get(n, "image"))) return fail(c, CONFIG_ERR_SCHEMA, n->line, k, "required");
    if (get_str(c, v, k, &j->image)) return c->code;
    if (!valid_image(j->image))
        return fail(c, CONFIG_ERR_SCHEMA, v->line, k, "expected registry/repository without a tag");
    return CONFIG_OK;
}

/* One entry of people: or groups:, `name: [a, b]`. */
static int parse_named_list(ctx *c, const yt_node *key, const yt_node *val, const char *section, char **name,
                            config_strv *list, bool (*valid)(const char *), const char *what) {
    char k[KEY_LEN];
    snprintf(k, sizeof(k), "%s.%s", section, key->text);
    if (!(*name = strdup(key->text))) return nomem(c, key->line, k);
    if (!config_valid_name(*name)) return fail(c, CONFIG_ERR_SCHEMA, key->line, k, "bad name");
    return get_strv(c, val, k, list, valid, what);
}

static int parse_people(ctx *c, const yt_node *n) {
    if (is_null(n)) return CONFIG_OK;
    if (expect(c, n, YT_MAP, "people")) return c->code;
    if (!(c->cfg->people = calloc(n->n / 2 + 1, sizeof(config_person)))) return nomem(c, n->line, "people");
    for (size_t i = 0; i + 1 < n->n; i += 2) {
        config_person *p = &c->cfg->people[c->cfg->n_people++];
        if (parse_named_list(c, n->items[i], n->items[i + 1], "people", &p->name, &p->identities, valid_identity,
                             "an identity (slack:ID, mattermost:ID or shell:USER)"))
            return c->code;
    }
    return CONFIG_OK;
}

static int parse_groups(ctx *c, const yt_node *n) {
    if (is_null(n)) return CONFIG_OK;
    if (expect(c, n, YT_MAP, "groups")) return c->code;
    if (!(c->cfg->groups = calloc(n->n / 2 + 1, sizeof(config_group)))) return nomem(c, n->line, "groups");
    for (size_t i = 0; i + 1 < n->n; i += 2) {
        config_group *g = &c->cfg->groups[c->cfg->n_groups++];
        if (parse_named_list(c, n->items[i], n->items[i + 1], "groups", &g->name, &g->members, NULL, NULL))
            return c->code;
    }
    return CONFIG_OK;
}

static int parse_secrets(ctx *c, const yt_node *n) {
    static const char *const keys[] = {"hmac_keys", NULL};
    static const char *const kkeys[] = {"id", "secret", NULL};
    if (expect(c, n, YT_MAP, "secrets") || check_keys(c, n, "secrets", keys)) return c->code;
    const yt_node *l = yt_get(n, "hmac_keys");
    if (!l || is_null(l)) return CONFIG_OK;
    if (expect(c, l, YT_SEQ, "secrets.hmac_keys")) return c->code;
    c->cfg->hmac_keys = calloc(l->n + 1, sizeof(config_hmac_key));
    if (!c->cfg->hmac_keys) return nomem(c, l->line, "secrets.hmac_keys");
    for (size_t i = 0; i < l->n; i++) {
        const yt_node *e = l->items[i];
        config_hmac_key *hk = &c->cfg->hmac_keys[c->cfg->n_hmac_keys++];
        if (expect(c, e, YT_MAP, "secrets.hmac_keys") || check_keys(c, e, "secrets.hmac_keys", kkeys))
            return c->code;
        const yt_node *id = yt_get(e, "id"), *sec = yt_get(e, "secret");
        if (!id || !sec) return fail(c, CONFIG_ERR_SCHEMA, e->line, "secrets.hmac_keys", "each key needs id and secret");
        if (get_str(c, id, "secrets.hmac_keys.id", &hk->id) || get_str(c, sec, "secrets.hmac_keys.secret", &hk->secret))
            return c->code;
        if (!config_valid_name(hk->id)) return fail(c, CONFIG_ERR_SCHEMA, id->line, "secrets.hmac_keys.id", "bad key id");
        if (strlen(hk->secret) < 32)
            return fail(c, CONFIG_ERR_SCHEMA, sec->line, "secrets.hmac_keys.secret", "must be at least 32 bytes");
        for (size_t j = 0; j + 1 < c->cfg->n_hmac_keys; j++)
            if (strcmp(c->cfg->hmac_keys[j].id, hk->id) == 0)
                return fail(c, CONFIG_ERR_SCHEMA, id->line, "secrets.hmac_keys.id", "duplicate key id '%s'", hk->id);
    }
    return CONFIG_OK;
}

static int parse_chat(ctx *c, const yt_node *n) {
    static const char *const keys[] = {"slack", "mattermost", NULL};
    static const char *const skeys[] = {"app_token", "bot_token", "signing_secret", "team_id", "api_url",
                                        "ca_file", "num_connections", NULL};
    static const char *const mkeys[] = {"url", "token", "slash_token", NULL};
    if (expect(c, n, YT_MAP, "chat") || check_keys(c, n, "chat", keys)) return c->code;
    const yt_node *s = yt_get(n, "slack"), *m = yt_get(n, "mattermost"), *v;
    char k[KEY_LEN];
    if (s && !is_null(s)) {
        if (expect(c, s, YT_MAP, "chat.slack") || check_keys(c, s, "chat.slack", skeys)) return c->code;
        config_slack *sl = c->cfg->slack = calloc(1, sizeof(*sl));
        if (!sl) return nomem(c, s->line, "chat.slack");
        sl->num_connections = 2;
        char **dst[] = {&sl->app_token, &sl->bot_token, &sl->signing_secret, &sl->team_id, &sl->api_url,
                        &sl->ca_file};
        for (size_t i = 0; i < 6; i++) {
            keyjoin(k, "chat.slack", skeys[i]);
            if ((v = yt_get(s, skeys[i])) && get_str(c, v, k, dst[i])) return c->code;
            if (!*dst[i] && !(*dst[i] = strdup(""))) return nomem(c, s->line, k);
            if (!**dst[i] && i != 2 && i != 4 && i != 5) return fail(c, CONFIG_ERR_SCHEMA, s->line, k, "required");
        }
        if ((!sl->api_url || !*sl->api_url)) {
            free(sl->api_url);
            if (!(sl->api_url = strdup("https://slack.com/api/"))) return nomem(c, s->line, "chat.slack");
        }
        if ((v = yt_get(s, "num_connections")) &&
            get_int(c, v, "chat.slack.num_connections", 1, 10, &sl->num_connections))
            return c->code;
    }
    if (m && !is_null(m)) {
        if (expect(c, m, YT_MAP, "chat.mattermost") || check_keys(c, m, "chat.mattermost", mkeys)) return c->code;
        config_mattermost *mm = c->cfg->mattermost = calloc(1, sizeof(*mm));
        if (!mm) return nomem(c, m->line, "chat.mattermost");
        char **dst[] = {&mm->url, &mm->token, &mm->slash_token};
        for (size_t i = 0; i < 3; i++) {
            keyjoin(k, "chat.mattermost", mkeys[i]);
            if ((v = yt_get(m, mkeys[i])) && get_str(c, v, k, dst[i])) return c->code;
            if (!*dst[i] && !(*dst[i] = strdup(""))) return nomem(c, m->line, k);
            if (!**dst[i] && i != 2) return fail(c, CONFIG_ERR_SCHEMA, m->line, k, "required");
        }
    }
    return CONFIG_OK;
}

/* ---------------------------------------------------------------- references */

static const config_person *find_person(const config *cfg, const char *name) {
    for (size_t i = 0; i < cfg->n_people; i++)
        if (strcmp(cfg->people[i].name, name) == 0) return &cfg->people[i];
    return NULL;
}

static const config_group *find_group(const config *cfg, const char *name) {
    for (size_t i = 0; i < cfg->n_groups; i++)
        if (strcmp(cfg->groups[i].name, name) == 0) return &cfg->groups[i];
    return NULL;
}

/* The line of a key inside a section, for messages about references. */
static int line_of(const yt_node *root, const char *section, const char *name, int fallback) {
    const yt_node *s = yt_get(root, section);
    const yt_node *v = s ? yt_get(s, name) : NULL;
    return v ? v->line : fallback;
}

static int check_refs(ctx *c, const yt_node *root) {
    config *cfg = c->cfg;
    char k[KEY_LEN];
    /* An identity belongs to one person; otherwise approvals could count twice. */
    for (size_t i = 0; i < cfg->n_people; i++)
        for (size_t a = 0; a < cfg->people[i].identities.n; a++)
            for (size_t j = i; j < cfg->n_people; j++)
                for (size_t b = (j == i ? a + 1 : 0); b < cfg->people[j].identities.n; b++)
                    if (strcmp(cfg->people[i].identities.v[a], cfg->people[j].identities.v[b]) == 0) {
                        snprintf(k, sizeof(k), "people.%s", cfg->people[j].name);
                        return fail(c, CONFIG_ERR_REF, line_of(root, "people", cfg->people[j].name, 1), k,
                                    "identity %s is listed more than once", cfg->people[i].identities.v[a]);
                    }
    for (size_t i = 0; i < cfg->n_groups; i++) {
        const config_group *g = &cfg->groups[i];
        if (find_person(cfg, g->name)) {
            snprintf(k, sizeof(k), "groups.%s", g->name);
            return fail(c, CONFIG_ERR_REF, line_of(root, "groups", g->name, 1), k, "a person has the same name");
        }
        for (size_t m = 0; m < g->members.n; m++) {
            const char *who = g->members.v[m];
            if (find_person(cfg, who) || valid_identity(who)) continue;
            snprintf(k, sizeof(k), "groups.%s", g->name);
            return fail(c, CONFIG_ERR_REF, line_of(root, "groups", g->name, 1), k,
                        "unknown person '%.64s' (people: or a raw identity like slack:U123)", who);
        }
    }
    for (size_t i = 0; i < cfg->n_envs; i++) {
        const config_env *e = &cfg->envs[i];
        const config_strv *lists[] = {&e->deployers, &e->approvers};
        const char *names[] = {"deployers", "approvers"};
        for (size_t l = 0; l < 2; l++)
            for (size_t m = 0; m < lists[l]->n; m++) {
                const char *who = lists[l]->v[m];
                if (find_group(cfg, who) || find_person(cfg, who) || valid_identity(who)) continue;
                snprintf(k, sizeof(k), "environments.%s.%s", e->name, names[l]);
                return fail(c, CONFIG_ERR_REF, e->line, k, "unknown group or person '%.64s'", who);
            }
        if (e->promote_from) {
            snprintf(k, sizeof(k), "environments.%s.promote_from", e->name);
            if (!config_find_env(cfg, e->promote_from))
                return fail(c, CONFIG_ERR_REF, e->line, k, "unknown environment '%.64s'", e->promote_from);
            /* Follow the chain: more steps than environments means a cycle. */
            const config_env *x = e;
            for (size_t steps = 0; x && x->promote_from; steps++) {
                if (steps >= cfg->n_envs)
                    return fail(c, CONFIG_ERR_REF, e->line, k, "promotion path loops back to %s", e->name);
                x = config_find_env(cfg, x->promote_from);
            }
        }
    }
    return CONFIG_OK;
}

/* ---------------------------------------------------------------- top level */

static int parse_root(ctx *c, const yt_node *root) {
    static const char *const keys[] = {"listen", "public_url", "redis", "postgres", "postgres_migrate", "workers",
                                       "queue", "audit", "limits", "secrets", "shell", "chat", "people", "groups", "environments",
                                       "jobs", NULL};
    config *cfg = c->cfg;
    const yt_node *v;
    if (expect(c, root, YT_MAP, "(top level)") || check_keys(c, root, "", keys)) return c->code;

    if ((v = yt_get(root, "listen")) && get_str(c, v, "listen", &cfg->listen)) return c->code;
    if (strcmp(cfg->listen, "off") != 0) {
        const char *colon = strrchr(cfg->listen, ':');
        char *end;
        long port = colon ? strtol(colon + 1, &end, 10) : -1;
        if (!colon || colon == cfg->listen || port < 0 || port > 65535 || *end)
            return fail(c, CONFIG_ERR_SCHEMA, v ? v->line : 1, "listen", "expected ADDRESS:PORT or off");
    }
    if ((v = yt_get(root, "public_url")) && get_str(c, v, "public_url", &cfg->public_url)) return c->code;
    if (!(v = yt_get(root, "redis"))) return fail(c, CONFIG_ERR_SCHEMA, 1, "redis", "required");
    if (get_str(c, v, "redis", &cfg->redis)) return c->code;
    {
        char host[256], pw[256], e[200];
        int port, db;
        if (config_redis_url(cfg->redis, host, sizeof(host), &port, &db, pw, sizeof(pw), e, sizeof(e)) != CONFIG_OK)
            return fail(c, CONFIG_ERR_SCHEMA, v->line, "redis", "%s", e);
    }
    if (!(v = yt_get(root, "postgres"))) return fail(c, CONFIG_ERR_SCHEMA, 1, "postgres", "required");
    if (get_str(c, v, "postgres", &cfg->postgres)) return c->code;
    if (!*cfg->postgres) return fail(c, CONFIG_ERR_SCHEMA, v->line, "postgres", "must not be empty");
    if ((v = yt_get(root, "postgres_migrate")) && get_str(c, v, "postgres_migrate", &cfg->postgres_migrate))
        return c->code;
    if ((v = yt_get(root, "workers")) && get_int(c, v, "workers", 0, 256, &cfg->workers)) return c->code;
    if ((v = yt_get(root, "queue")) && !is_null(v)) {
        static const char *const qkeys[] = {"lease", "reconcile", "hold_limit", NULL};
        if (expect(c, v, YT_MAP, "queue") || check_keys(c, v, "queue", qkeys)) return c->code;
        const yt_node *l = yt_get(v, "lease"), *r = yt_get(v, "reconcile");
        if (l && get_duration(c, l, "queue.lease", &cfg->queue_lease_ms)) return c->code;
        if (l && (cfg->queue_lease_ms < 1000 || cfg->queue_lease_ms > 3600000))
            return fail(c, CONFIG_ERR_SCHEMA, l->line, "queue.lease", "must be between 1s and 1h");
        if (r && get_duration(c, r, "queue.reconcile", &cfg->queue_reconcile_ms)) return c->code;
        if (r && (cfg->queue_reconcile_ms < 1000 || cfg->queue_reconcile_ms > 3600000))
            return fail(c, CONFIG_ERR_SCHEMA, r->line, "queue.reconcile", "must be between 1s and 1h");
        const yt_node *h = yt_get(v, "hold_limit");
        if (h && get_duration(c, h, "queue.hold_limit", &cfg->queue_hold_ms)) return c->code;
        if (h && (cfg->queue_hold_ms < 1000 || cfg->queue_hold_ms > 7LL * 86400000))
            return fail(c, CONFIG_ERR_SCHEMA, h->line, "queue.hold_limit", "must be between 1s and 7d");
    }
    if ((v = yt_get(root, "limits")) && !is_null(v)) {
        static const char *const lkeys[] = {"open_requests", "commands_per_minute", NULL};
        if (expect(c, v, YT_MAP, "limits") || check_keys(c, v, "limits", lkeys)) return c->code;
        const yt_node *o = yt_get(v, "open_requests"), *m = yt_get(v, "commands_per_minute");
        if (o && get_int(c, o, "limits.open_requests", 0, 10000, &cfg->limit_open_requests)) return c->code;
        if (m && get_int(c, m, "limits.commands_per_minute", 0, 100000, &cfg->limit_commands)) return c->code;
    }
    if ((v = yt_get(root, "audit")) && !is_null(v)) {
        static const char *const akeys[] = {"checkpoint", NULL};
        if (expect(c, v, YT_MAP, "audit") || check_keys(c, v, "audit", akeys)) return c->code;
        const yt_node *cp = yt_get(v, "checkpoint");
        if (cp && cp->type == YT_SCALAR && strcmp(cp->text, "off") == 0) {
            cfg->audit_checkpoint_ms = 0;
        } else if (cp) {
            if (get_duration(c, cp, "audit.checkpoint", &cfg->audit_checkpoint_ms)) return c->code;
            if (cfg->audit_checkpoint_ms < 1000)
                return fail(c, CONFIG_ERR_SCHEMA, cp->line, "audit.checkpoint", "must be at least 1s, or off");
        }
    }
    if ((v = yt_get(root, "secrets")) && !is_null(v) && parse_secrets(c, v)) return c->code;
    if ((v = yt_get(root, "shell")) && !is_null(v)) {
        static const char *const skeys[] = {"allow_as", NULL};
        if (expect(c, v, YT_MAP, "shell") || check_keys(c, v, "shell", skeys)) return c->code;
        const yt_node *a = yt_get(v, "allow_as");
        if (a && get_bool(c, a, "shell.allow_as", &cfg->shell_allow_as)) return c->code;
    }
    if ((v = yt_get(root, "chat")) && !is_null(v) && parse_chat(c, v)) return c->code;
    if ((v = yt_get(root, "people")) && parse_people(c, v)) return c->code;
    if ((v = yt_get(root, "groups")) && parse_groups(c, v)) return c->code;

    if ((v = yt_get(root, "environments")) && !is_null(v)) {
        if (expect(c, v, YT_MAP, "environments")) return c->code;
        cfg->envs = calloc(v->n / 2 + 1, sizeof(config_env));
        if (!cfg->envs) return nomem(c, v->line, "environments");
        for (size_t i = 0; i + 1 < v->n; i += 2)
            if (parse_env(c, v->items[i]->text, v->items[i + 1], v->items[i]->line, &cfg->envs[cfg->n_envs++]))
                return c->code;
    }
    if ((v = yt_get(root, "jobs")) && !is_null(v)) {
        if (expect(c, v, YT_MAP, "jobs")) return c->code;
        cfg->jobs = calloc(v->n / 2 + 1, sizeof(config_job));
        if (!cfg->jobs) return nomem(c, v->line, "jobs");
        for (size_t i = 0; i + 1 < v->n; i += 2)
            if (parse_job(c, v->items[i]->text, v->items[i + 1], v->items[i]->line, &cfg->jobs[cfg->n_jobs++]))
                return c->code;
    }
    return check_refs(c, root);
}

/* Does line `line` (1-based) of text hold `needle`? (Also the line before:
 * libyaml often reports a flow error on the line after the culprit.) */
static bool line_contains(const char *text, size_t len, int line, const char *needle) {
    int cur = 1;
    size_t start = 0, nl = strlen(needle);
    for (size_t i = 0; i <= len; i++) {
        if (i == len || text[i] == '\n') {
            if ((cur == line || cur == line - 1) && i - start >= nl) {
                for (size_t j = start; j + nl <= i; j++)
                    if (memcmp(text + j, needle, nl) == 0) return true;
            }
            if (++cur > line) break;
            start = i + 1;
        }
    }
    return false;
}

int config_parse(const char *text, size_t len, const char *filename, const config_resolver *res, config **out,
                 char *err, size_t errlen) {
    ctx c = {.file = filename ? filename : "config", .res = res, .err = err, .errlen = errlen};
    yt_node *root = NULL;
    char yerr[256];
    *out = NULL;
    if (errlen) err[0] = '\0';
    if (len > CONFIG_MAX_FILE) return fail(&c, CONFIG_ERR_IO, 1, NULL, "file larger than %d bytes", CONFIG_MAX_FILE);
    if (yt_parse(text, len, &root, yerr, sizeof(yerr)) != 0) {
        /* yerr reads "line N: reason"; reshape into file:N: reason. */
        int line = 1;
        const char *reason = yerr;
        if (sscanf(yerr, "line %d:", &line) == 1 && strchr(yerr, ':')) reason = strchr(yerr, ':') + 2;
        /* `{token: ${X}}` is the classic trap: braces end a flow mapping. */
        const char *hint = "";
        if (strstr(reason, "flow") && line_contains(text, len, line, "${"))
            hint = " (inside { } or [ ], quote values that use ${...}: \"${NAME}\")";
        return fail(&c, CONFIG_ERR_SYNTAX, line, NULL, "%s%s", reason, hint);
    }
    config *cfg = c.cfg = calloc(1, sizeof(*cfg));
    if (!cfg || !(cfg->path = strdup(c.file)) || !(cfg->listen = strdup("127.0.0.1:8080")) ||
        !(cfg->public_url = strdup("")) || !(cfg->postgres_migrate = strdup(""))) {
        yt_free(root);
        config_free(cfg);
        return nomem(&c, 1, NULL);
    }
    cfg->workers = 4;
    cfg->queue_lease_ms = 30000;
    cfg->queue_reconcile_ms = 10000;
    cfg->queue_hold_ms = 3600000;
    cfg->audit_checkpoint_ms = 3600000;
    cfg->limit_open_requests = 10;
    cfg->limit_commands = 60;
    atomic_init(&cfg->refs, 1);
    parse_root(&c, root);
    yt_free(root);
    if (c.code != CONFIG_OK) {
        config_free(cfg);
        return c.code;
    }
    *out = cfg;
    return CONFIG_OK;
}

/* ---------------------------------------------------------------- system resolver, load, free */

static int sys_getenv(void *ud, const char *name, char **out) {
    (void)ud;
    const char *v = getenv(name);
    if (!v) return -1;
    *out = strdup(v);
    return *out ? 0 : -1;
}

/* Reads at most CONFIG_MAX_FILE bytes; a larger file is an error. */
static int read_all(const char *path, char **out, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char *buf = malloc(CONFIG_MAX_FILE + 1);
    size_t n = buf ? fread(buf, 1, CONFIG_MAX_FILE + 1, f) : 0;
    int bad = !buf || ferror(f) || n > CONFIG_MAX_FILE;
    fclose(f);
    if (bad) {
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    if (len) *len = n;
    return 0;
}

static int sys_readfile(void *ud, const char *path, char **out) {
    (void)ud;
    return read_all(path, out, NULL);
}

static int sys_zone(void *ud, const char *name, char *err, size_t errlen) {
    (void)ud;
    tzif_zone *z = NULL;
    int rc = tzif_load(NULL, name, &z, err, errlen);
    tzif_free(z);
    return rc == 0 ? 0 : -1;
}

const config_resolver config_resolver_system = {
    .getenv = sys_getenv, .readfile = sys_readfile, .ud = NULL, .zone = sys_zone};

int config_load(const char *path, config **out, char *err, size_t errlen) {
    char *text;
    size_t len;
    *out = NULL;
    if (read_all(path, &text, &len) != 0) {
        snprintf(err, errlen, "%s: cannot read: %s", path, errno ? strerror(errno) : "larger than 1 MiB");
        return CONFIG_ERR_IO;
    }
    int rc = config_parse(text, len, path, &config_resolver_system, out, err, errlen);
    /* The text may hold ${file:} secrets expanded nowhere, but wipe it anyway. */
    memset(text, 0, len);
    free(text);
    return rc;
}

static void free_secret(char *s) {
    if (!s) return;
    volatile char *p = s;
    while (*p) *p++ = '\0';
    free(s);
}

config *config_ref(config *cfg) {
    if (cfg) atomic_fetch_add(&cfg->refs, 1);
    return cfg;
}

void config_free(config *cfg) {
    if (!cfg || atomic_fetch_sub(&cfg->refs, 1) > 1) return;
    free(cfg->path);
    free(cfg->listen);
    free(cfg->public_url);
    free(cfg->redis);
    free_secret(cfg->postgres);
    free_secret(cfg->postgres_migrate);
    for (size_t i = 0; i < cfg->n_hmac_keys; i++) {
        free(cfg->hmac_keys[i].id);
        free_secret(cfg->hmac_keys[i].secret);
    }
    free(cfg->hmac_keys);
    if (cfg->slack) {
        free_secret(cfg->slack->app_token);
        free_secret(cfg->slack->bot_token);
        free_secret(cfg->slack->signing_secret);
        free(cfg->slack->team_id);
        free(cfg->slack->api_url);
        free(cfg->slack->ca_file);
        free(cfg->slack);
    }
    if (cfg->mattermost) {
        free(cfg->mattermost->url);
        free_secret(cfg->mattermost->token);
        free_secret(cfg->mattermost->slash_token);
        free(cfg->mattermost);
    }
    for (size_t i = 0; i < cfg->n_people; i++) {
        free(cfg->people[i].name);
        strv_free(&cfg->people[i].identities);
    }
    free(cfg->people);
    for (size_t i = 0; i < cfg->n_groups; i++) {
        free(cfg->groups[i].name);
        strv_free(&cfg->groups[i].members);
    }
    free(cfg->groups);
    for (size_t i = 0; i < cfg->n_envs; i++) {
        config_env *e = &cfg->envs[i];
        free(e->name);
        free(e->nomad.address);
        free(e->nomad.region);
        free(e->nomad.namespace);
        free_secret(e->nomad.token);
        free(e->nomad.ca_file);
        free(e->nomad.client_cert);
        free(e->nomad.client_key);
        free(e->nomad.tls_server_name);
        strv_free(&e->deployers);
        strv_free(&e->approvers);
        free(e->promote_from);
        strv_free(&e->freeze);
        strv_free(&e->channels);
        strv_free(&e->notify);
    }
    free(cfg->envs);
    for (size_t i = 0; i < cfg->n_jobs; i++) {
        free(cfg->jobs[i].name);
        free(cfg->jobs[i].nomad_job);
        strv_free(&cfg->jobs[i].tasks);
        free(cfg->jobs[i].image);
    }
    free(cfg->jobs);
    free(cfg);
}

const config_env *config_find_env(const config *cfg, const char *name) {
    for (size_t i = 0; cfg && name && i < cfg->n_envs; i++)
        if (strcmp(cfg->envs[i].name, name) == 0) return &cfg->envs[i];
    return NULL;
}

const config_job *config_find_job(const config *cfg, const char *name) {
    for (size_t i = 0; cfg && name && i < cfg->n_jobs; i++)
        if (strcmp(cfg->jobs[i].name, name) == 0) return &cfg->jobs[i];
    return NULL;
}
