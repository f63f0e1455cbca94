/* Slack Socket Mode: a small set of WebSocket connections to Slack on the
 * bot's libuv loop (libwebsockets, its own lws context on that loop).
 *
 * What it does (reference chat-protocols.md A2):
 *   - keeps `num_connections` connections ready (a ready connection has said
 *     hello); each (re)connect asks the owner for a fresh URL (need_url:
 *     apps.connections.open is a Web API call, which the owner makes);
 *   - acknowledges every envelope the moment it arrives, from the receive
 *     callback: the owner sees the envelope during that callback, just
 *     before the ack is written, so an answer it has at once rides in the
 *     ack (slack_ack_respond; A2.3, A3.3);
 *   - disconnect frames (refresh_requested, warning) open a replacement
 *     first and close the old connection when the new one is ready, so a
 *     refresh leaves no gap; link_disabled waits the longest backoff;
 *   - liveness: a connection that receives nothing for ping_ms is pinged,
 *     and one silent for dead_ms is dropped (a half-open socket) and replaced;
 *   - reconnects follow a declared backoff policy with jitter;
 *   - resolves host names with uv_getaddrinfo (lws 4.1 would block the
 *     loop), connects to the address and keeps the name for TLS and Host.
 *
 * All calls and callbacks on the loop thread. */
#ifndef NM_SLACK_SOCKET_H
#define NM_SLACK_SOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "slack_proto.h"

#define SLACK_SOCKET_MAX_CONNECTIONS 10   /* Slack allows 10 per app (A2.4) */

typedef struct slack_socket slack_socket;
/* The ack of the envelope being handed over; see hooks.envelope. */
typedef struct slack_ack slack_ack;

typedef struct slack_socket_hooks {
    /* A connection needs a URL: answer (now or later) with
     * slack_socket_give_url() or slack_socket_url_failed(). At most one
     * request is outstanding at a time. */
    void (*need_url)(void *ud);
    /* An envelope. Usually ack is set: the ack is written when this call
     * returns, and may carry an answer (slack_ack_respond), so the call must
     * not wait for anything — Slack's user waits for the ack. ack is NULL
     * when acks were queued on a full socket: this one was written before
     * the call. f and ack are borrowed for the call. */
    void (*envelope)(void *ud, const slack_frame *f, slack_ack *ack);
    /* The number of ready connections changed. */
    void (*state)(void *ud, int ready);
} slack_socket_hooks;

typedef struct slack_socket_opts {
    int num_connections;   /* 1..SLACK_SOCKET_MAX_CONNECTIONS */
    int ping_ms;           /* silence before we ping (default 10 s) */
    int dead_ms;           /* silence before the connection is dropped (default 25 s) */
    int hello_ms;          /* upgrade to hello (default 10 s) */
    const char *ca_file;   /* NULL = system CAs */
} slack_socket_opts;

/* Parses ws:// and wss:// URLs: host (no brackets), port (default 80/443),
 * path with query ("/" when empty). 0, or -1 when malformed or over the
 * buffers. Pure. */
int slack_ws_url_parse(const char *url, bool *tls, char *host, size_t hostlen, int *port, char *path,
                       size_t pathlen);

/* During the envelope call only: makes payload (len bytes, one JSON object
 * nomatron built: slack_answer_payload) the ack's payload. 0, or -1 when
 * this ack cannot carry it (ack NULL, the envelope accepts no response
 * payload, an answer is there already, over 64 KiB): answer another way. */
int slack_ack_respond(slack_ack *ack, const char *payload, size_t len);

slack_socket *slack_socket_new(uv_loop_t *loop, const slack_socket_opts *opts, const slack_socket_hooks *hooks,
                               void *ud, char *err, size_t errlen);
void slack_socket_start(slack_socket *s);
/* The answer to need_url: a wss:// (or, for tests, ws://) URL; copied. */
void slack_socket_give_url(slack_socket *s, const char *url);
/* apps.connections.open failed; fatal (e.g. invalid_auth) waits the longest backoff. */
void slack_socket_url_failed(slack_socket *s, bool fatal);
int slack_socket_ready(const slack_socket *s);

typedef struct slack_socket_stats {
    unsigned long envelopes, acks, reconnects, pings, dropped_dead, refreshes;
} slack_socket_stats;
void slack_socket_get_stats(const slack_socket *s, slack_socket_stats *out);

/* Closes every connection (a close frame when possible) and stops
 * reconnecting; closed(ud) runs once the lws context has let go of the
 * loop, after which s is freed. Envelopes not yet handed over are dropped
 * unacknowledged (Slack redelivers events; commands were never acked). */
void slack_socket_close(slack_socket *s, void (*closed)(void *ud), void *ud);

#endif
