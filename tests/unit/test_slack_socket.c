/* bot/slack_socket.c: slack_ws_url_parse, the pure parser of the wss://
 * URL that apps.connections.open returns (A2.1). Table-driven; every case
 * runs with buffers inside larger guarded ones, so a write past the length
 * it was given shows. The socket itself is covered end to end by
 * tests/e2e/slack.sh against slack-fake.
 *
 * `test_slack_socket` runs the cases that pass; `test_slack_socket bugs`
 * the ones that show a defect (see the comment above the table). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "slack_socket.h"

#define HOST_LEN 256     /* as slack_socket.c's connection slots */
#define PATH_LEN 1024
#define GUARD 64
#define SENTINEL 0x5a

typedef struct url_case {
    const char *url;
    int rc;
    bool tls;
    const char *host;
    int port;
    const char *path;
} url_case;

static const url_case ok_cases[] = {
    /* A2.1's shape */
    {"wss://wss-primary.slack.com/link/?ticket=1a2b&app_id=A0APP", 0, true, "wss-primary.slack.com", 443,
     "/link/?ticket=1a2b&app_id=A0APP"},
    {"wss://wss-primary.slack.com/link/?ticket=t&app_id=A&debug_reconnects=true", 0, true, "wss-primary.slack.com",
     443, "/link/?ticket=t&app_id=A&debug_reconnects=true"},
    /* schemes and default ports */
    {"ws://127.0.0.1/link", 0, false, "127.0.0.1", 80, "/link"},
    {"wss://example.com/", 0, true, "example.com", 443, "/"},
    {"ws://example.com/", 0, false, "example.com", 80, "/"},
    /* explicit ports */
    {"ws://127.0.0.1:8080/link/?ticket=x", 0, false, "127.0.0.1", 8080, "/link/?ticket=x"},
    {"wss://example.com:8443/a", 0, true, "example.com", 8443, "/a"},
    {"ws://h:1/", 0, false, "h", 1, "/"},
    {"ws://h:65535/", 0, false, "h", 65535, "/"},
    {"ws://h:080/", 0, false, "h", 80, "/"},
    {"wss://h:443", 0, true, "h", 443, "/"},
    /* IPv6 literals: the host without brackets */
    {"ws://[::1]:9000/x", 0, false, "::1", 9000, "/x"},
    {"wss://[2001:db8::1]/link", 0, true, "2001:db8::1", 443, "/link"},
    {"ws://[::1]", 0, false, "::1", 80, "/"},
    {"ws://[fe80::1%25eth0]:81/", 0, false, "fe80::1%25eth0", 81, "/"},
    {"ws://[::ffff:127.0.0.1]?q=1", 0, false, "::ffff:127.0.0.1", 80, "/?q=1"},
    /* empty path: "/"; the query is kept; the fragment is dropped */
    {"ws://h", 0, false, "h", 80, "/"},
    {"ws://h?x=1&y=2", 0, false, "h", 80, "/?x=1&y=2"},
    {"ws://h:81?x=1", 0, false, "h", 81, "/?x=1"},
    {"ws://h/p?q=1#frag", 0, false, "h", 80, "/p?q=1"},
    {"ws://h/p#a#b", 0, false, "h", 80, "/p"},
    {"ws://h#frag", 0, false, "h", 80, "/"},
    {"ws://h:82#frag/x", 0, false, "h", 82, "/"},
    {"ws://h/#", 0, false, "h", 80, "/"},
    {"ws://h?#", 0, false, "h", 80, "/?"},
    {"ws://h//double/slash", 0, false, "h", 80, "//double/slash"},
    {"ws://h/%20encoded", 0, false, "h", 80, "/%20encoded"},
    {"ws://h/p?x=@y:z", 0, false, "h", 80, "/p?x=@y:z"},   /* '@' and ':' after the authority are path */
};

static const url_case refused[] = {
    /* schemes */
    {"", -1, false, NULL, 0, NULL},
    {"http://h/", -1, false, NULL, 0, NULL},
    {"https://h/", -1, false, NULL, 0, NULL},
    {"wss:/h/", -1, false, NULL, 0, NULL},
    {"wss//h/", -1, false, NULL, 0, NULL},
    {" wss://h/", -1, false, NULL, 0, NULL},
    {"wsss://h/", -1, false, NULL, 0, NULL},
    /* no host */
    {"ws://", -1, false, NULL, 0, NULL},
    {"wss://", -1, false, NULL, 0, NULL},
    {"ws:///link", -1, false, NULL, 0, NULL},
    {"ws://:80/", -1, false, NULL, 0, NULL},
    {"ws://?q", -1, false, NULL, 0, NULL},
    {"ws://#f", -1, false, NULL, 0, NULL},
    {"ws://[]/", -1, false, NULL, 0, NULL},
    {"ws://[]:80/", -1, false, NULL, 0, NULL},
    /* userinfo */
    {"ws://user@h/", -1, false, NULL, 0, NULL},
    {"ws://user:pw@h/", -1, false, NULL, 0, NULL},
    {"ws://@h/", -1, false, NULL, 0, NULL},
    {"ws://[u@::1]/", -1, false, NULL, 0, NULL},
    /* spaces and control bytes */
    {"ws://h st/", -1, false, NULL, 0, NULL},
    {"ws://h\t/", -1, false, NULL, 0, NULL},
    {"ws://h\x01/", -1, false, NULL, 0, NULL},
    {"ws://h\r\n/", -1, false, NULL, 0, NULL},
    {"ws://h\x1b/", -1, false, NULL, 0, NULL},
    {"ws://[::1 ]/", -1, false, NULL, 0, NULL},
    {"ws://h/pa th", -1, false, NULL, 0, NULL},
    {"ws://h/p\x01", -1, false, NULL, 0, NULL},
    {"ws://h/p\x7f", -1, false, NULL, 0, NULL},
    {"ws://h/p\r\nHost: evil", -1, false, NULL, 0, NULL},
    {"ws://h?a b", -1, false, NULL, 0, NULL},
    /* ports */
    {"ws://h:0/", -1, false, NULL, 0, NULL},
    {"ws://h:00/", -1, false, NULL, 0, NULL},
    {"ws://h:65536/", -1, false, NULL, 0, NULL},
    {"ws://h:99999/", -1, false, NULL, 0, NULL},
    {"ws://h:99999999999999999999999/", -1, false, NULL, 0, NULL},
    {"ws://h:/", -1, false, NULL, 0, NULL},
    {"ws://h:", -1, false, NULL, 0, NULL},
    {"ws://h:8a/", -1, false, NULL, 0, NULL},
    {"ws://h:a8/", -1, false, NULL, 0, NULL},
    {"ws://h:-1/", -1, false, NULL, 0, NULL},
    {"ws://h:+80/", -1, false, NULL, 0, NULL},
    {"ws://h: 80/", -1, false, NULL, 0, NULL},
    {"ws://h:80:81/", -1, false, NULL, 0, NULL},
    {"ws://h:0x50/", -1, false, NULL, 0, NULL},
    /* IPv6 brackets */
    {"ws://[::1/", -1, false, NULL, 0, NULL},
    {"ws://[::1]x/", -1, false, NULL, 0, NULL},
    {"ws://[::1]:/", -1, false, NULL, 0, NULL},
    {"ws://[::1]:0/", -1, false, NULL, 0, NULL},
    {"ws://[::1]:65536/", -1, false, NULL, 0, NULL},
    {"ws://[::1]]:80/", -1, false, NULL, 0, NULL},
    {"ws://::1/", -1, false, NULL, 0, NULL},   /* unbracketed: "::1" reads as host "" */
};

/* Defects: the host accepts DEL (0x7f), a control byte the path refuses
 * (slack_socket.c:125 checks `< 0x21` only; line 152 also checks 0x7f). */
static const url_case bug_cases[] = {
    {"ws://h\x7f/", -1, false, NULL, 0, NULL},
    {"ws://[::1\x7f]/", -1, false, NULL, 0, NULL},
};

typedef struct guarded {
    char host[HOST_LEN + GUARD];
    char path[PATH_LEN + GUARD];
} guarded;

static void check_guard(const char *buf, size_t from, size_t to, const char *what, const char *url) {
    for (size_t i = from; i < to; i++)
        if ((unsigned char)buf[i] != SENTINEL) fail_msg("%s: byte %zu written past its buffer for %s", what, i, url);
}

/* Parses with hostlen/pathlen inside the guarded buffers; checks nothing past them changed. */
static int parse_guarded(const char *url, bool *tls, guarded *g, size_t hostlen, size_t pathlen, int *port) {
    memset(g, SENTINEL, sizeof(*g));
    *tls = false;
    *port = -7;
    int rc = slack_ws_url_parse(url, tls, g->host, hostlen, port, g->path, pathlen);
    check_guard(g->host, hostlen, sizeof(g->host), "host", url ? url : "(null)");
    check_guard(g->path, pathlen, sizeof(g->path), "path", url ? url : "(null)");
    return rc;
}

static void run_table(const url_case *cases, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const url_case *c = &cases[i];
        guarded g;
        bool tls;
        int port;
        int rc = parse_guarded(c->url, &tls, &g, HOST_LEN, PATH_LEN, &port);
        if (rc != c->rc) fail_msg("case %zu \"%s\": rc %d, want %d", i, c->url, rc, c->rc);
        if (rc != 0) continue;
        if (tls != c->tls) fail_msg("case %zu \"%s\": tls %d", i, c->url, tls);
        if (strcmp(g.host, c->host) != 0) fail_msg("case %zu \"%s\": host \"%s\"", i, c->url, g.host);
        if (port != c->port) fail_msg("case %zu \"%s\": port %d", i, c->url, port);
        if (strcmp(g.path, c->path) != 0) fail_msg("case %zu \"%s\": path \"%s\"", i, c->url, g.path);
    }
}

static void test_accepted(void **state) {
    (void)state;
    run_table(ok_cases, sizeof(ok_cases) / sizeof(ok_cases[0]));
}

static void test_refused(void **state) {
    (void)state;
    run_table(refused, sizeof(refused) / sizeof(refused[0]));
}

static void test_null(void **state) {
    (void)state;
    guarded g;
    bool tls;
    int port;
    assert_int_equal(parse_guarded(NULL, &tls, &g, HOST_LEN, PATH_LEN, &port), -1);
}

/* Host: up to hostlen-1 bytes fit; one more is refused, never cut. */
static void test_host_bounds(void **state) {
    (void)state;
    char url[HOST_LEN + 64];
    guarded g;
    bool tls;
    int port;
    for (size_t hostlen = 1; hostlen <= 12; hostlen++) {
        for (size_t hl = 1; hl <= hostlen + 1; hl++) {
            int k = snprintf(url, sizeof(url), "wss://");
            memset(url + k, 'a', hl);
            snprintf(url + k + (int)hl, sizeof(url) - (size_t)k - hl, ":444/p");
            int rc = parse_guarded(url, &tls, &g, hostlen, PATH_LEN, &port);
            if (hl < hostlen) {
                assert_int_equal(rc, 0);
                assert_int_equal(strlen(g.host), hl);
                assert_int_equal(port, 444);
                assert_string_equal(g.path, "/p");
            } else {
                assert_int_equal(rc, -1);
            }
        }
    }
    /* A full 255-byte name in the socket's own buffer; 256 is refused. */
    int k = snprintf(url, sizeof(url), "wss://");
    memset(url + k, 'h', HOST_LEN - 1);
    snprintf(url + k + HOST_LEN - 1, sizeof(url) - (size_t)k - (HOST_LEN - 1), "/x");
    assert_int_equal(parse_guarded(url, &tls, &g, HOST_LEN, PATH_LEN, &port), 0);
    assert_int_equal(strlen(g.host), HOST_LEN - 1);
    memset(url + k, 'h', HOST_LEN);
    snprintf(url + k + HOST_LEN, sizeof(url) - (size_t)k - HOST_LEN, "/x");
    assert_int_equal(parse_guarded(url, &tls, &g, HOST_LEN, PATH_LEN, &port), -1);
    /* hostlen 0: nothing fits, nothing is written. */
    assert_int_equal(parse_guarded("ws://h/", &tls, &g, 0, PATH_LEN, &port), -1);
}

/* Path: a path that does not fit is refused, never cut; with or without
 * the leading "/" that the parser adds. */
static void test_path_bounds(void **state) {
    (void)state;
    static char url[2 * PATH_LEN];
    guarded g;
    bool tls;
    int port;
    for (size_t pathlen = 0; pathlen <= 12; pathlen++) {
        for (size_t pl = 1; pl <= pathlen + 2; pl++) {
            /* "/aaa" (pl bytes) and "?aaa" (pl bytes, becomes "/?aaa") */
            for (int q = 0; q < 2; q++) {
                int k = snprintf(url, sizeof(url), "ws://h");
                url[k] = q ? '?' : '/';
                memset(url + k + 1, 'a', pl - 1);
                url[(size_t)k + pl] = '\0';
                size_t want = pl + (size_t)q;   /* bytes of the path as written */
                int rc = parse_guarded(url, &tls, &g, HOST_LEN, pathlen, &port);
                if (want + 1 < pathlen) {
                    /* fits with room to spare: accepted, whole */
                    if (rc != 0) fail_msg("pathlen %zu \"%s\": refused", pathlen, url);
                    assert_int_equal(strlen(g.path), want);
                    assert_int_equal(g.path[0], '/');
                } else if (want + 1 > pathlen) {
                    if (rc != -1) fail_msg("pathlen %zu \"%s\": accepted \"%.*s\"", pathlen, url, (int)pathlen, g.path);
                } else if (rc == 0) {
                    /* exactly pathlen-1 bytes: may be accepted (it fits); then whole */
                    assert_int_equal(strlen(g.path), want);
                }
            }
        }
    }
    /* The socket's buffer: a 1000-byte query fits, a 1100-byte one is refused. */
    int k = snprintf(url, sizeof(url), "wss://h/link/?ticket=");
    size_t total = strlen("wss://h") + 1000;   /* the path is everything after "wss://h" */
    memset(url + k, 't', total - (size_t)k);
    url[total] = '\0';
    assert_int_equal(parse_guarded(url, &tls, &g, HOST_LEN, PATH_LEN, &port), 0);
    assert_int_equal(strlen(g.path), 1000);
    memset(url + k, 't', 1100);
    url[k + 1100] = '\0';
    assert_int_equal(parse_guarded(url, &tls, &g, HOST_LEN, PATH_LEN, &port), -1);
}

/* Every port 1..65535 is read back; the bounds around them are refused. */
static void test_all_ports(void **state) {
    (void)state;
    char url[64];
    guarded g;
    bool tls;
    int port;
    for (int p = 0; p <= 70000; p++) {
        snprintf(url, sizeof(url), "wss://h:%d/x", p);
        int rc = parse_guarded(url, &tls, &g, 8, 8, &port);
        if (p >= 1 && p <= 65535) {
            if (rc != 0 || port != p) fail_msg("port %d: rc %d port %d", p, rc, port);
        } else if (rc != -1) {
            fail_msg("port %d accepted", p);
        }
    }
}

static void test_bugs(void **state) {
    (void)state;
    run_table(bug_cases, sizeof(bug_cases) / sizeof(bug_cases[0]));
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),   cmocka_unit_test(test_refused),    cmocka_unit_test(test_null),
        cmocka_unit_test(test_host_bounds), cmocka_unit_test(test_path_bounds), cmocka_unit_test(test_all_ports),
    };
    const struct CMUnitTest bugs[] = {
        cmocka_unit_test(test_bugs),
    };
    if (argc > 1 && strcmp(argv[1], "bugs") == 0) return cmocka_run_group_tests_name("slack_socket_bugs", bugs, NULL, NULL);
    return cmocka_run_group_tests_name("slack_socket", tests, NULL, NULL);
}
