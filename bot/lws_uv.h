/* libwebsockets 4.1 contexts on a foreign libuv loop (the bot's), made and
 * destroyed safely. Both of the bot's lws users (the HTTP listener and the
 * Slack client) go through here.
 *
 * What lws 4.1 leaves to the caller:
 *  - Destroying a context on a foreign loop is two-phase: the first
 *    lws_context_destroy() starts closing its handles; a second call frees
 *    the context, which is only safe once the loop has run those closes.
 *    There is no callback for that moment, so an idle handle watches the
 *    loop until no handle of the context is left (lws marks its own static
 *    handles with the context as handle->data) and then makes the call.
 *  - The first lws_context_destroy() closes lws's event fd at once, and that
 *    handle's close callback closes the same fd number again on a later loop
 *    iteration, by which time another socket of the process may have been
 *    given the number. We note the number when the context is made and,
 *    right after the first destroy, park /dev/null on it, so lws's second
 *    close() closes only that.
 * Both depend on lws 4.1.6 internals (how it tags its handles, Linux /proc);
 * recheck them when lws is upgraded. */
#ifndef NM_LWS_UV_H
#define NM_LWS_UV_H

#include <libwebsockets.h>
#include <uv.h>

typedef struct lws_uv lws_uv;

/* lws_create_context(info) with LWS_SERVER_OPTION_LIBUV and the loop as its
 * foreign loop (set here). NULL when lws refuses (out of memory, bad TLS
 * files); *out is set only on success and owns the context. */
struct lws_context *lws_uv_create(uv_loop_t *loop, struct lws_context_creation_info *info, lws_uv **out);

/* Destroys the context in the two phases above, from an idle handle (so it
 * is safe to call from inside an lws callback), then frees u and calls
 * done(ud). The loop must keep running until then. */
void lws_uv_destroy(lws_uv *u, void (*done)(void *ud), void *ud);

#endif
