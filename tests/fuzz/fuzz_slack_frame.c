/* Fuzzes Slack's inbound side and what we say back: a Socket Mode frame
 * (bot/slack_proto.c), the ack for its envelope, the slash text rendered as
 * an answer, and the same bytes as a worker event applied to a request view
 * and rendered as a message (bot/slack_render.c). Every body we produce must
 * stay within Slack's limits. Seeds in corpus/fuzz_slack_frame/ are frames
 * shaped as in chat-protocols.md A2.2, A2.6, A3, A4.
 *
 * It also holds the single-pass parser to the json-c one it replaced
 * (slack_frame_oracle.c): on strict RFC 8259 JSON both must give the same
 * code, the same struct bytes and, unless the code is _JSON, the same
 * sentence; on anything else (json-c takes NaN, "1.", raw control bytes,
 * loose UTF-8) the new parser must say _JSON. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "slack_frame_oracle.h"
#include "slack_proto.h"
#include "slack_render.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BOUNDED(field) (strnlen((field), sizeof(field)) < sizeof(field))

static void check_frame(const slack_frame *f) {
    if (!BOUNDED(f->type) || !BOUNDED(f->envelope_id) || !BOUNDED(f->retry_reason) || !BOUNDED(f->hello.app_id) ||
        !BOUNDED(f->disconnect.reason) || !BOUNDED(f->slash.user_id) || !BOUNDED(f->slash.text) ||
        !BOUNDED(f->slash.response_url) || !BOUNDED(f->interactive.action_id) ||
        !BOUNDED(f->interactive.action_value) || !BOUNDED(f->events.event_id))
        __builtin_trap();
    bool envelope = f->kind == SLACK_FRAME_SLASH || f->kind == SLACK_FRAME_INTERACTIVE || f->kind == SLACK_FRAME_EVENTS;
    if (envelope && !f->envelope_id[0]) __builtin_trap();
    if (f->kind == SLACK_FRAME_SLASH && (!f->slash.user_id[0] || !f->slash.channel_id[0] || !f->slash.command[0]))
        __builtin_trap();
    if (f->slash.text_too_long && f->slash.text[0]) __builtin_trap();
    if (f->kind == SLACK_FRAME_INTERACTIVE && strcmp(f->interactive.type, "block_actions") == 0 &&
        (!f->interactive.user_id[0] || !f->interactive.action_id[0]))
        __builtin_trap();
    if (f->retry_attempt < 0) __builtin_trap();
}

/* A body we send: one JSON object within 16 KiB whose text is within 4000
 * bytes; `whole`: no "<!" anywhere (the channel and user are ours), else in
 * the text only (they came from the frame and are not shown). */
static void check_body(const nm_buf *b, bool whole) {
    if (b->len > SLACK_BODY_MAX) __builtin_trap();
    json_tokener *tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, b->data, (int)b->len);
    if (!o || json_tokener_get_parse_end(tok) != b->len) __builtin_trap();
    json_object *t;
    if (!json_object_object_get_ex(o, "text", &t) || json_object_get_string_len(t) > SLACK_TEXT_MAX) __builtin_trap();
    if (strstr(whole ? b->data : json_object_get_string(t), "<!")) __builtin_trap();   /* no mention from echoed text */
    json_object_put(o);
    json_tokener_free(tok);
}

/* json-c decodes an escaped surrogate pair and then takes the result for a
 * surrogate when its low 16 bits fall in D800-DFFF (U+1D800-U+1DFFF,
 * U+2D800-..., 2048 code points a plane): it writes U+FFFD or worse. The
 * scanner decodes the pair; frames holding one are not compared. */
static bool jsonc_pair_bug(const uint8_t *d, size_t n) {
    for (size_t i = 0; i + 12 <= n; i++) {
        if (d[i] != '\\' || d[i + 1] != 'u' || d[i + 6] != '\\' || d[i + 7] != 'u') continue;
        char h[5], l[5];
        memcpy(h, d + i + 2, 4);
        memcpy(l, d + i + 8, 4);
        h[4] = l[4] = '\0';
        char *e1, *e2;
        unsigned long hi = strtoul(h, &e1, 16), lo = strtoul(l, &e2, 16);
        if (*e1 || *e2 || hi < 0xD800 || hi > 0xDBFF || lo < 0xDC00 || lo > 0xDFFF) continue;
        unsigned long cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
        if ((cp & 0xF800) == 0xD800) return true;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static slack_frame f;   /* ~10 KiB: off the fuzzer's stack */
    char err[256];
    int rc = slack_frame_parse((const char *)data, size, &f, err, sizeof(err));
    if (rc != SLACK_PROTO_OK && !err[0]) __builtin_trap();   /* every refusal says why */
    if (rc == SLACK_PROTO_OK) check_frame(&f);

    static slack_frame g;
    char gerr[256];
    int grc = slack_frame_parse_oracle((const char *)data, size, &g, gerr, sizeof(gerr));
    if (size <= SLACK_FRAME_MAX && !json_strict_valid((const char *)data, size)) {
        if (rc != SLACK_PROTO_ERR_JSON) {
            fprintf(stderr, "not strict JSON, yet rc %d (%s); json-c: %d (%s)\n", rc, err, grc, gerr);
            __builtin_trap();
        }
    } else if (jsonc_pair_bug(data, size)) {
        /* json-c is wrong there: nothing to compare with */
    } else if (rc != grc || (rc != SLACK_PROTO_ERR_JSON && strcmp(err, gerr) != 0) || memcmp(&f, &g, sizeof(f)) != 0) {
        fprintf(stderr, "differs: new %d (%s), json-c %d (%s), struct %s\n", rc, err, grc, gerr,
                memcmp(&f, &g, sizeof(f)) ? "differs" : "same");
        __builtin_trap();
    }

    nm_buf b;
    nm_buf_init(&b, 64 * 1024);
    if (f.envelope_id[0]) {
        if (slack_ack_build(f.envelope_id, "{\"text\":\"ok\"}", &b) != SLACK_PROTO_OK) __builtin_trap();
        nm_buf_reset(&b);
    }
    if (rc == SLACK_PROTO_OK && f.kind == SLACK_FRAME_SLASH) {
        for (int pre = 0; pre < 2; pre++) {
            nm_buf_reset(&b);
            if (slack_text_body(f.slash.channel_id, f.slash.user_id, NULL, f.slash.text, pre, &b) != SLACK_PROTO_OK)
                __builtin_trap();
            check_body(&b, false);
        }
    }

    /* The same bytes as a worker event: a view that accepts it must still render within the limits. */
    json_tokener *tok = json_tokener_new();
    json_object *ev = size < 64 * 1024 ? json_tokener_parse_ex(tok, (const char *)data, (int)size) : NULL;
    json_tokener_free(tok);
    if (ev) {
        static slack_req_view v;
        slack_req_view_init(&v, 12);
        snprintf(v.kind, sizeof(v.kind), "deploy");
        snprintf(v.requester, sizeof(v.requester), "slack:U1");
        v.required = 1;
        int ar = slack_req_view_apply(&v, ev);
        if (ar < -1 || ar > 1) __builtin_trap();
        if (ar == 1) {
            nm_buf_reset(&b);
            if (slack_req_message(&v, "C1", NULL, &b) != SLACK_PROTO_OK) __builtin_trap();
            check_body(&b, true);
            if (slack_req_view_apply(&v, ev) != 0) __builtin_trap();   /* applying twice shows nothing new */
        }
        json_object_put(ev);
    }
    nm_buf_free(&b);
    return 0;
}
