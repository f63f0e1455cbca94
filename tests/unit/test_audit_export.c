/* audit/export: the strict offline reader of JSONL exports and the CSV cell
 * writer. Pure: no PostgreSQL. Exports are built here from events hashed
 * with audit/canon, then damaged in each way verify must name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "canon.h"
#include "export.h"

#define N_EV 6
#define LINE_MAX_T 2048

/* A valid export of N_EV events (ids first..first+N_EV-1) as lines[0..N_EV+1]. */
typedef struct doc {
    char lines[N_EV + 2][LINE_MAX_T];
    char hashes[N_EV][65];
    int n;
} doc;

static void event_line(char *dst, const audit_event *e, const char *hash) {
    char at[40];
    audit_format_us(e->at_us, at);
    snprintf(dst, LINE_MAX_T,
             "{\"type\":\"event\",\"id\":%lld,\"request_id\":%lld,\"at\":\"%s\",\"at_us\":%lld,\"enc_version\":%d,"
             "\"action\":\"%s\",\"actor\":\"%s\",\"person\":null,\"outcome\":\"queued\",\"from_state\":null,"
             "\"to_state\":\"queued\",\"phase\":\"\",\"reason\":\"\",\"env\":\"staging\",\"job\":\"api\","
             "\"from_image\":\"\",\"to_image\":\"r/api:v2\",\"nomad_job_version\":null,\"eval_id\":\"\","
             "\"deployment_id\":\"\",\"detail\":\"%s\",\"platform\":\"shell\",\"team\":null,"
             "\"channel\":\"shell:console\",\"message_ref\":null,\"thread\":null,\"permalink\":null,"
             "\"prev_hash\":\"%s\",\"hash\":\"%s\"}",
             (long long)e->id, (long long)e->request_id, at, (long long)e->at_us, e->enc_version, e->action, e->actor,
             e->detail, e->prev_hash, hash);
}

static void build(doc *d, int64_t first, const char *cp) {
    char prev[65];
    snprintf(prev, sizeof(prev), "%s", first == 1 ? AUDIT_GENESIS_HASH
                                                  : "abababababababababababababababababababababababababababababababab");
    snprintf(d->lines[0], LINE_MAX_T,
             "{\"type\":\"begin\",\"format\":\"nomatron-audit-export\",\"version\":1,\"since\":null,\"until\":null,"
             "\"through_head\":true,\"checkpoint\":%s}",
             cp ? cp : "null");
    for (int i = 0; i < N_EV; i++) {
        audit_event e = {.id = first + i, .request_id = first + i, .at_us = 1795000000123456LL + i,
                         .enc_version = 1, .action = "request.created", .actor = "shell:alice",
                         .outcome = "queued", .to_state = "queued", .phase = "", .reason = "", .env = "staging",
                         .job = "api", .from_image = "", .to_image = "r/api:v2", .nomad_job_version = -1,
                         .eval_id = "", .deployment_id = "", .detail = "ship \\\"it\\\" \\u00e9",
                         .platform = "shell", .channel = "shell:console", .prev_hash = prev};
        /* the JSON text carries escapes; the hash is over the decoded text */
        audit_event h = e;
        h.detail = "ship \"it\" \xc3\xa9";
        assert_int_equal(audit_canon_event_hash(&h, d->hashes[i]), AUDIT_CANON_OK);
        event_line(d->lines[1 + i], &e, d->hashes[i]);
        memcpy(prev, d->hashes[i], 65);
    }
    snprintf(d->lines[N_EV + 1], LINE_MAX_T,
             "{\"type\":\"end\",\"events\":%d,\"last_id\":%lld,\"last_hash\":\"%s\"}", N_EV,
             (long long)(first + N_EV - 1), d->hashes[N_EV - 1]);
    d->n = N_EV + 2;
}

/* Runs the lines (indexes in order, -1 ends) through a verifier. */
static int run(const doc *d, const int *order, audit_fverify *v) {
    audit_fverify_init(v);
    for (int i = 0; order[i] >= 0; i++) {
        if (audit_fverify_line(v, d->lines[order[i]], strlen(d->lines[order[i]])) != AUDIT_OK) break;
    }
    return audit_fverify_finish(v);
}

static const int all[] = {0, 1, 2, 3, 4, 5, 6, 7, -1};

static void expect(const doc *d, const int *order, int rc, int64_t at, const char *why) {
    audit_fverify v;
    int got = run(d, order, &v);
    if (got != rc || v.first_broken != at || (why && !strstr(v.why, why)))
        fail_msg("rc %d (want %d), event %lld (want %lld): %s (want '%s')", got, rc, (long long)v.first_broken,
                 (long long)at, v.why, why ? why : "");
    audit_fverify_free(&v);
}

static void test_intact(void **state) {
    (void)state;
    doc d;
    build(&d, 1, NULL);
    expect(&d, all, AUDIT_OK, 0, "6 events verified (1..6), last hash");
    /* mid-chain: anchored at the first line's prev_hash */
    build(&d, 41, NULL);
    expect(&d, all, AUDIT_OK, 0, "anchored at event 40's hash abababab");
}

static void test_damage(void **state) {
    (void)state;
    doc d;
    build(&d, 1, NULL);
    const int missing[] = {0, 1, 2, 4, 5, 6, 7, -1};
    expect(&d, missing, AUDIT_ERR_BROKEN, 3, "event 3: missing (event 4 follows event 2)");
    const int swapped[] = {0, 1, 2, 4, 3, 5, 6, 7, -1};
    expect(&d, swapped, AUDIT_ERR_BROKEN, 3, "event 3: reordered");
    const int dup[] = {0, 1, 2, 2, 3, 4, 5, 6, 7, -1};
    expect(&d, dup, AUDIT_ERR_BROKEN, 2, "event 2: reordered");
    const int cut[] = {0, 1, 2, 3, -1};
    expect(&d, cut, AUDIT_ERR_BROKEN, 4, "no end line: events after event 3 missing (truncated)");
    const int tail_gone[] = {0, 1, 2, 3, 4, 5, 6, -1};
    expect(&d, tail_gone, AUDIT_ERR_BROKEN, 7, "truncated");
    const int no_begin[] = {1, 2, 3, 4, 5, 6, 7, -1};
    expect(&d, no_begin, AUDIT_ERR_BROKEN, 0, "starts with its begin line");
    const int after_end[] = {0, 1, 2, 3, 4, 5, 6, 7, 1, -1};
    expect(&d, after_end, AUDIT_ERR_BROKEN, 0, "after the end line");
    const int end_early[] = {0, 1, 2, 3, 7, -1};
    expect(&d, end_early, AUDIT_ERR_BROKEN, 4, "the end line says 6 events");

    /* altered content, time, link, version */
    struct { const char *from, *to; int64_t at; const char *why; } edits[] = {
        {"\"actor\":\"shell:alice\"", "\"actor\":\"shell:mallory\"", 1, "event 1: hash does not match its content (altered)"},
        {"\"person\":null", "\"person\":\"\"", 1, "altered"},
        {"\"at_us\":1795000000123456", "\"at_us\":1795000000123457", 1, "at ("},
        {"\"enc_version\":1", "\"enc_version\":2", 1, "event 1: unknown encoding version 2"},
        {"\"prev_hash\":\"0000", "\"prev_hash\":\"1000", 1, "event 1: prev_hash is not the genesis value"},
        {"\"request_id\":1,", "\"request_id\":0,", 0, "malformed event"},
        {"\"request_id\":1,", "\"request_id\":\"1\",", 0, "malformed event"},
        {"\"request_id\":1,", "\"request_id\":1.0,", 0, "malformed event"},
        {"\"person\":null,", "", 0, "malformed event"},
        {"\"person\":null,", "\"person\":null,\"extra\":1,", 0, "malformed event"},
        {"\"type\":\"event\"", "\"type\":\"evnt\"", 0, "unknown line type"},
        {"\"detail\":\"ship", "\"detail\":\"\\u0000ship", 0, "malformed event"},
        {"\"hash\":\"", "\"hash\":\"Z", 0, "malformed event"},
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        doc e;
        build(&e, 1, NULL);
        char *p = strstr(e.lines[1], edits[i].from);
        assert_non_null(p);
        char tmp[LINE_MAX_T];
        snprintf(tmp, sizeof(tmp), "%.*s%s%s", (int)(p - e.lines[1]), e.lines[1], edits[i].to,
                 p + strlen(edits[i].from));
        snprintf(e.lines[1], LINE_MAX_T, "%s", tmp);
        /* a malformed first event cannot be placed: event 0 */
        expect(&e, all, AUDIT_ERR_BROKEN, edits[i].at, edits[i].why);
    }
    /* event 2's link rewritten */
    doc e;
    build(&e, 1, NULL);
    char *p = strstr(e.lines[2], "\"prev_hash\":\"");
    p[13] = p[13] == 'a' ? 'b' : 'a';
    expect(&e, all, AUDIT_ERR_BROKEN, 2, "event 2: prev_hash does not match event 1");
}

static void test_checkpoint(void **state) {
    (void)state;
    doc d;
    char cp[512];
    build(&d, 1, NULL);
    /* the checkpoint names event 4 with its real hash: intact */
    snprintf(cp, sizeof(cp), "{\"id\":3,\"head_id\":4,\"head_hash\":\"%s\",\"events\":4,\"at\":\"x\"}", d.hashes[3]);
    build(&d, 1, cp);
    expect(&d, all, AUDIT_OK, 0, "6 events verified");
    /* a checkpoint beyond the export's end: the tail was cut off */
    snprintf(cp, sizeof(cp), "{\"id\":3,\"head_id\":9,\"head_hash\":\"%s\",\"events\":9,\"at\":\"x\"}", d.hashes[3]);
    build(&d, 1, cp);
    expect(&d, all, AUDIT_ERR_BROKEN, 7, "events after event 6 missing: checkpoint 3 recorded head event 9");
    /* a checkpoint whose hash differs: rewritten */
    snprintf(cp, sizeof(cp), "{\"id\":3,\"head_id\":2,\"head_hash\":\"%s\",\"events\":2,\"at\":\"x\"}", d.hashes[3]);
    build(&d, 1, cp);
    expect(&d, all, AUDIT_ERR_BROKEN, 2, "event 2: hash differs from checkpoint 3");
    build(&d, 1, "{\"id\":3}");
    expect(&d, all, AUDIT_ERR_BROKEN, 0, "malformed checkpoint");
}

static void test_not_json(void **state) {
    (void)state;
    const char *bad[] = {"", "{", "[]", "null", "{\"type\":1}", "{\"type\":\"begin\"} x", "{\"type\":\"begin\"}{}",
                         "\xff\xfe", "{\"type\":\"b\xc3\x28gin\"}", "{'type':'begin'}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        audit_fverify v;
        audit_fverify_init(&v);
        assert_int_equal(audit_fverify_line(&v, bad[i], strlen(bad[i])), AUDIT_ERR_BROKEN);
        assert_int_equal(audit_fverify_finish(&v), AUDIT_ERR_BROKEN);
        audit_fverify_free(&v);
    }
    audit_fverify v;
    audit_fverify_init(&v);
    assert_int_equal(audit_fverify_finish(&v), AUDIT_ERR_BROKEN);
    assert_non_null(strstr(v.why, "empty file"));
    audit_fverify_free(&v);
}

static void test_file(void **state) {
    (void)state;
    doc d;
    build(&d, 1, NULL);
    char path[] = "/tmp/test_audit_export_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    for (int i = 0; i < d.n; i++) fprintf(f, "%s\n", d.lines[i]);
    fclose(f);
    audit_fverify v;
    assert_int_equal(audit_verify_file(path, &v), AUDIT_OK);
    audit_fverify_free(&v);
    /* no newline after the last line: cut off */
    f = fopen(path, "w");
    for (int i = 0; i < d.n; i++) fprintf(f, i + 1 < d.n ? "%s\n" : "%s", d.lines[i]);
    fclose(f);
    assert_int_equal(audit_verify_file(path, &v), AUDIT_ERR_BROKEN);
    assert_non_null(strstr(v.why, "no newline at the end"));
    audit_fverify_free(&v);
    /* a line over the ceiling is refused without holding it */
    f = fopen(path, "w");
    fprintf(f, "%s\n{\"type\":\"event\",\"detail\":\"", d.lines[0]);
    char chunk[65536];
    memset(chunk, 'x', sizeof(chunk));
    for (size_t n = 0; n <= AUDIT_EXPORT_LINE_MAX; n += sizeof(chunk)) fwrite(chunk, 1, sizeof(chunk), f);
    fprintf(f, "\"}\n");
    fclose(f);
    assert_int_equal(audit_verify_file(path, &v), AUDIT_ERR_BROKEN);
    assert_non_null(strstr(v.why, "line 2: longer than"));
    audit_fverify_free(&v);
    unlink(path);
    assert_int_equal(audit_verify_file(path, &v), AUDIT_ERR_IO);
    assert_non_null(strstr(v.why, "cannot open"));
    audit_fverify_free(&v);
}

static void test_csv_cell(void **state) {
    (void)state;
    struct { const char *in, *out; } cases[] = {
        {"plain", "plain"},
        {"", ""},
        {"=1+2", "'=1+2"},
        {"+SUM(A1)", "'+SUM(A1)"},
        {"-2", "'-2"},
        {"@cmd", "'@cmd"},
        {"\tx", "'\tx"},
        {"a,b", "\"a,b\""},
        {"say \"hi\"", "\"say \"\"hi\"\"\""},
        {"=HYPERLINK(\"x\",\"y\")", "\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\""},
        {"two\nlines", "\"two\nlines\""},
        {"\r\n", "\"'\r\n\""},
        {"a=b", "a=b"},
        {"\xf0\x9f\x9a\x80", "\xf0\x9f\x9a\x80"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        nm_buf b;
        nm_buf_init(&b, 1024);
        assert_int_equal(audit_csv_cell(&b, cases[i].in), NM_BUF_OK);
        assert_string_equal(b.data ? b.data : "", cases[i].out);
        nm_buf_free(&b);
    }
    nm_buf b;
    nm_buf_init(&b, 1024);
    assert_int_equal(audit_csv_cell(&b, NULL), NM_BUF_OK);
    assert_int_equal(b.len, 0);
    nm_buf_free(&b);
    nm_buf_init(&b, 4); /* the ceiling is honoured */
    assert_true(audit_csv_cell(&b, "\"quoted, long\"") != NM_BUF_OK);
    nm_buf_free(&b);
}

static void test_format_us(void **state) {
    (void)state;
    char at[40];
    audit_format_us(0, at);
    assert_string_equal(at, "1970-01-01T00:00:00.000000Z");
    audit_format_us(1795000000123456LL, at);
    assert_string_equal(at, "2026-11-18T11:06:40.123456Z");
    audit_format_us(-1, at);
    assert_string_equal(at, "1969-12-31T23:59:59.999999Z");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intact),     cmocka_unit_test(test_damage),   cmocka_unit_test(test_checkpoint),
        cmocka_unit_test(test_not_json),   cmocka_unit_test(test_file),     cmocka_unit_test(test_csv_cell),
        cmocka_unit_test(test_format_us),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
