/* Fuzzes Slack's inbound side and what we say back: a Socket Mode frame
 * (bot/slack_proto.c), the ack for its envelope, the slash text rendered as
 * an answer, and the same bytes as a worker event applied to a request view
 * and rendered as a message (bot/slack_render.c). Every body we produce must
 * stay within Slack's limits. Seeds in corpus/fuzz_slack_frame/ are frames
 * shaped as in chat-protocols.md A2.2, A2.6, A3, A4. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static slack_frame f;   /* ~10 KiB: off the fuzzer's stack */
    char err[256];
    int rc = slack_frame_parse((const char *)data, size, &f, err, sizeof(err));
    if (rc != SLACK_PROTO_OK && !err[0]) __builtin_trap();   /* every refusal says why */
    if (rc == SLACK_PROTO_OK) check_frame(&f);

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
