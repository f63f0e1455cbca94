/* Fuzzes the Web API answer parser (bot/slack_proto.c): the first byte picks
 * the method, the rest is the body. Also the Retry-After parser and the
 * error hints on whatever the body holds. Seeds in corpus/fuzz_slack_api/
 * start with the method's index (see methods[] below) followed by an answer
 * shaped as in chat-protocols.md A2.1 and A6. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "slack_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BOUNDED(field) (strnlen((field), sizeof(field)) < sizeof(field))

static const char *methods[] = {"apps.connections.open", "chat.postMessage", "chat.update", "chat.postEphemeral",
                                "chat.getPermalink",     "users.info",       "auth.test",   "chat.unknown"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t mi = data[0] % (sizeof(methods) / sizeof(methods[0]));
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    slack_api_result r;
    char err[256];
    int rc = slack_api_parse(methods[mi], body, len, &r, err, sizeof(err));
    if (mi == 7 && rc != SLACK_PROTO_ERR_INVALID) __builtin_trap();
    if (rc != SLACK_PROTO_OK && (r.ok || !err[0])) __builtin_trap();
    if (!BOUNDED(r.error) || !BOUNDED(r.needed) || !BOUNDED(r.warning) || !BOUNDED(r.ts) || !BOUNDED(r.channel) ||
        !BOUNDED(r.message_ts) || !BOUNDED(r.permalink) || !BOUNDED(r.url) || !BOUNDED(r.team_id) ||
        !BOUNDED(r.team) || !BOUNDED(r.user_id) || !BOUNDED(r.bot_id) || !BOUNDED(r.user_name) ||
        !BOUNDED(r.real_name) || !BOUNDED(r.display_name))
        __builtin_trap();
    if (rc == SLACK_PROTO_OK) {
        if (!r.ok && !r.error[0]) __builtin_trap();
        if (r.ok) {
            /* what each method promises is there */
            if ((mi == 0 && !r.url[0]) || (mi == 1 && (!r.ts[0] || !r.channel[0])) || (mi == 2 && !r.ts[0]) ||
                (mi == 3 && !r.message_ts[0]) || (mi == 4 && !r.permalink[0]) || (mi == 5 && !r.user_id[0]) ||
                (mi == 6 && (!r.user_id[0] || !r.team_id[0])))
                __builtin_trap();
        }
        if (!slack_error_hint(r.error)) __builtin_trap();
    }

    char header[64];
    size_t n = len < sizeof(header) - 1 ? len : sizeof(header) - 1;
    memcpy(header, body, n);
    header[n] = '\0';
    int seconds = -1;
    if (slack_retry_after_parse(header, &seconds) == SLACK_PROTO_OK && (seconds < 0 || seconds > 3600))
        __builtin_trap();
    return 0;
}
