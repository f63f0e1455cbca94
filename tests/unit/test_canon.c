/* audit/canon: the canonical event encoding v1 and the chain hash (pure).
 * The fixed vectors were computed with an independent Python implementation
 * of docs/AUDIT.md, so they pin the document as much as the code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/sha.h>

#include "canon.h"

static audit_event fixed_event(void) {
    audit_event e = {
        .id = 7,
        .request_id = 3,
        .at_us = 1795561443933303,
        .enc_version = AUDIT_ENC_VERSION,
        .action = "deploy.registered",
        .actor = "nomatron:worker",
        .person = NULL,
        .outcome = "running",
        .from_state = "running",
        .to_state = "running",
        .phase = "rolling",
        .reason = "",
        .env = "staging",
        .job = "api",
        .from_image = "registry.example/api:v1",
        .to_image = "registry.example/api:v2",
        .nomad_job_version = 4,
        .eval_id = "5f0c3a1e-0000-4000-8000-000000000001",
        .deployment_id = "",
        .detail = "line one\nsaid \"hi\" \xf0\x9f\x9a\x80",
        .platform = "shell",
        .team = NULL,
        .channel = "shell:console",
        .message_ref = NULL,
        .thread = NULL,
        .permalink = NULL,
        .prev_hash = AUDIT_GENESIS_HASH,
    };
    return e;
}

static void hash_of(const audit_event *e, char out[65]) { assert_int_equal(audit_canon_event_hash(e, out), AUDIT_CANON_OK); }

/* ---- framing bytes ---- */

static void test_primitives_bytes(void **state) {
    (void)state;
    nm_buf b;
    nm_buf_init(&b, 0);
    assert_int_equal(audit_canon_put_null(&b), 0);
    assert_int_equal(audit_canon_put_int(&b, -2), 0);
    assert_int_equal(audit_canon_put_text(&b, "a\0b", 3), 0);
    assert_int_equal(audit_canon_put_text(&b, "", 0), 0);
    const unsigned char want[] = {0x00, 'I', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 'S', 0, 0, 0, 3,
                                  'a',  0,   'b',  'S',  0,    0,    0,    0};
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));
    nm_buf_free(&b);
}

static void test_encoding_layout(void **state) {
    (void)state;
    audit_event e = fixed_event();
    nm_buf b;
    nm_buf_init(&b, AUDIT_ENC_MAX);
    assert_int_equal(audit_canon_encode(&e, &b), AUDIT_CANON_OK);
    /* magic, version 1, then id = 7 as the first field */
    const unsigned char head[] = {'N', 'M', 'A', 'E', 0, 1, 'I', 0, 0, 0, 0, 0, 0, 0, 7, 'I', 0, 0, 0, 0, 0, 0, 0, 3};
    assert_true(b.len > sizeof(head));
    assert_memory_equal(b.data, head, sizeof(head));
    assert_int_equal(b.len, 320);
    nm_buf_free(&b);
}

/* ---- fixed vectors ---- */

static void test_fixed_vector(void **state) {
    (void)state;
    audit_event e = fixed_event();
    char h[65];
    hash_of(&e, h);
    assert_string_equal(h, "7401ba752a47c024f3fcaefbadc5784f9456ffca28bfad71153356a07230d055");
}

static void test_chained_vector(void **state) {
    (void)state;
    audit_event e = fixed_event();
    char h1[65], h2[65];
    hash_of(&e, h1);
    e.id = 8;
    e.prev_hash = h1;
    e.action = "deploy.succeeded";
    e.to_state = "succeeded";
    e.phase = "";
    e.at_us += 1;
    hash_of(&e, h2);
    assert_string_equal(h2, "3ad438a30ee0cace6af0cc13ac2a7e7b65e88bb0193361114443eaf748157ba1");
}

/* SHA-256 of 32 zero bytes followed by nothing: checks the prefix is raw bytes, not hex text. */
static void test_chain_hash_raw_prefix(void **state) {
    (void)state;
    char h[65];
    assert_int_equal(audit_canon_chain_hash(AUDIT_GENESIS_HASH, "", 0, h), 0);
    assert_string_equal(h, "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925");
    assert_int_equal(audit_canon_chain_hash(AUDIT_GENESIS_HASH, "abc", 3, h), 0);
    assert_string_equal(h, "365aa7d8f7f9402c4b9434502b4cc89ddb09fe50d7cd95b493b834c62d5a5370");
}

/* Short encodings are hashed in one shot, long ones streamed (canon.c,
 * SMALL_ENC = 4096): both sides of the boundary give SHA-256(prev || enc). */
static void test_chain_hash_sizes(void **state) {
    (void)state;
    static const size_t sizes[] = {1, 4063, 4064, 4065, 4095, 4096, 4097, 70000};
    char *enc = malloc(70000);
    assert_non_null(enc);
    for (size_t i = 0; i < 70000; i++) enc[i] = (char)(i * 7 + 3);
    unsigned char in[32 + 70000], md[32];
    memset(in, 0xab, 32);
    memcpy(in + 32, enc, 70000);
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        char h[65], want[65];
        assert_int_equal(audit_canon_chain_hash("abababababababababababababababababababababababababababababababab", enc,
                                                sizes[k], h),
                         0);
        SHA256(in, 32 + sizes[k], md);
        for (int i = 0; i < 32; i++) snprintf(want + 2 * i, 3, "%02x", md[i]);
        assert_string_equal(h, want);
    }
    free(enc);
}

/* ---- every field counts ---- */

static const size_t text_fields[] = {
    offsetof(audit_event, action),      offsetof(audit_event, actor),         offsetof(audit_event, person),
    offsetof(audit_event, outcome),     offsetof(audit_event, from_state),    offsetof(audit_event, to_state),
    offsetof(audit_event, phase),       offsetof(audit_event, reason),        offsetof(audit_event, env),
    offsetof(audit_event, job),         offsetof(audit_event, from_image),    offsetof(audit_event, to_image),
    offsetof(audit_event, eval_id),     offsetof(audit_event, deployment_id), offsetof(audit_event, detail),
    offsetof(audit_event, platform),    offsetof(audit_event, team),          offsetof(audit_event, channel),
    offsetof(audit_event, message_ref), offsetof(audit_event, thread),        offsetof(audit_event, permalink),
};
#define N_TEXT (sizeof(text_fields) / sizeof(text_fields[0]))

static const char **text_at(audit_event *e, size_t off) { return (const char **)(void *)((char *)e + off); }

static void test_every_field_changes_hash(void **state) {
    (void)state;
    audit_event base = fixed_event();
    char h0[65], h[65];
    hash_of(&base, h0);

    for (size_t i = 0; i < N_TEXT; i++) {
        audit_event e = base;
        const char **f = text_at(&e, text_fields[i]);
        const char *orig = *f;
        /* a different value, NULL vs "", and "" vs NULL all change the hash */
        *f = orig ? (orig[0] ? "x" : "y") : "";
        hash_of(&e, h);
        assert_string_not_equal(h, h0);
        *f = orig ? NULL : "z";
        hash_of(&e, h);
        assert_string_not_equal(h, h0);
    }
    audit_event e = base;
    e.id++;
    hash_of(&e, h);
    assert_string_not_equal(h, h0);
    e = base;
    e.request_id = 0; /* NULL */
    hash_of(&e, h);
    assert_string_not_equal(h, h0);
    e = base;
    e.at_us++;
    hash_of(&e, h);
    assert_string_not_equal(h, h0);
    e = base;
    e.nomad_job_version = -1; /* NULL */
    hash_of(&e, h);
    assert_string_not_equal(h, h0);
    e.nomad_job_version = 0; /* 0 is a real Nomad version, distinct from NULL */
    char h2[65];
    hash_of(&e, h2);
    assert_string_not_equal(h2, h);
    e = base;
    e.prev_hash = "0000000000000000000000000000000000000000000000000000000000000001";
    hash_of(&e, h);
    assert_string_not_equal(h, h0);
}

/* Length prefixes: moving bytes across a field boundary changes the encoding. */
static void test_field_boundaries(void **state) {
    (void)state;
    audit_event a = fixed_event(), b = fixed_event();
    a.env = "ab";
    a.job = "c";
    b.env = "a";
    b.job = "bc";
    char ha[65], hb[65];
    hash_of(&a, ha);
    hash_of(&b, hb);
    assert_string_not_equal(ha, hb);
    /* a field whose bytes look like framing cannot fake a boundary */
    a = fixed_event();
    b = fixed_event();
    a.env = "x\x53\x00";
    b.env = "x";
    hash_of(&a, ha);
    hash_of(&b, hb);
    assert_string_not_equal(ha, hb);
}

static void test_awkward_text(void **state) {
    (void)state;
    const char *texts[] = {"it's \"quoted\" \\ back", "'; DROP TABLE audit_events; --", "two\nlines\r\n",
                           "\xf0\x9f\x9a\x80 emoji \xe2\x9c\x85", "tab\there", ""};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        nm_buf b;
        nm_buf_init(&b, 0);
        assert_int_equal(audit_canon_put_text(&b, texts[i], strlen(texts[i])), 0);
        size_t n = strlen(texts[i]);
        assert_int_equal(b.len, 5 + n);
        const unsigned char *u = (const unsigned char *)b.data;
        assert_int_equal(u[0], 'S');
        assert_int_equal(((size_t)u[1] << 24) | ((size_t)u[2] << 16) | ((size_t)u[3] << 8) | u[4], n);
        assert_memory_equal(b.data + 5, texts[i], n);
        nm_buf_free(&b);
    }
    /* embedded NUL: length-prefixed, so "a\0b" is not "a" */
    nm_buf x, y;
    nm_buf_init(&x, 0);
    nm_buf_init(&y, 0);
    assert_int_equal(audit_canon_put_text(&x, "a\0b", 3), 0);
    assert_int_equal(audit_canon_put_text(&y, "a", 1), 0);
    assert_true(x.len != y.len || memcmp(x.data, y.data, x.len) != 0);
    nm_buf_free(&x);
    nm_buf_free(&y);
}

/* ---- refusals ---- */

static void test_unknown_version(void **state) {
    (void)state;
    audit_event e = fixed_event();
    char h[65];
    e.enc_version = 2;
    assert_int_equal(audit_canon_event_hash(&e, h), AUDIT_CANON_VERSION);
    e.enc_version = 0;
    assert_int_equal(audit_canon_event_hash(&e, h), AUDIT_CANON_VERSION);
}

static void test_too_long(void **state) {
    (void)state;
    char *big = malloc(AUDIT_FIELD_MAX + 2);
    assert_non_null(big);
    memset(big, 'a', AUDIT_FIELD_MAX + 1);
    big[AUDIT_FIELD_MAX + 1] = '\0';
    audit_event e = fixed_event();
    char h[65];
    e.detail = big;
    assert_int_equal(audit_canon_event_hash(&e, h), AUDIT_CANON_TOO_LARGE);
    big[AUDIT_FIELD_MAX] = '\0'; /* exactly at the ceiling is fine */
    assert_int_equal(audit_canon_event_hash(&e, h), AUDIT_CANON_OK);
    free(big);
}

static void test_bad_prev_hash(void **state) {
    (void)state;
    audit_event e = fixed_event();
    char h[65];
    const char *bad[] = {NULL, "", "00", "000000000000000000000000000000000000000000000000000000000000000",
                         "00000000000000000000000000000000000000000000000000000000000000000",
                         "000000000000000000000000000000000000000000000000000000000000000A",
                         "000000000000000000000000000000000000000000000000000000000000000g"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        e.prev_hash = bad[i];
        assert_int_equal(audit_canon_event_hash(&e, h), AUDIT_CANON_BAD_HASH);
        assert_false(audit_canon_hash_valid(bad[i]));
    }
    assert_true(audit_canon_hash_valid(AUDIT_GENESIS_HASH));
    assert_true(audit_canon_hash_valid("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
    assert_string_not_equal(audit_canon_strerror(AUDIT_CANON_BAD_HASH), "");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_primitives_bytes), cmocka_unit_test(test_encoding_layout),
        cmocka_unit_test(test_fixed_vector),     cmocka_unit_test(test_chained_vector),
        cmocka_unit_test(test_chain_hash_raw_prefix), cmocka_unit_test(test_every_field_changes_hash),
        cmocka_unit_test(test_field_boundaries), cmocka_unit_test(test_awkward_text),
        cmocka_unit_test(test_unknown_version),  cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_bad_prev_hash),    cmocka_unit_test(test_chain_hash_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
