/* slack-fake: the state behind the fake Slack (shared/reference/
 * chat-protocols.md Part A, cited as A<n>). Pure: no sockets and no clock
 * reads; every function that needs the time takes it. webapi.c answers Web
 * API calls on top of this; main.c does the I/O.
 *
 * Every record kind has a ceiling (SF_MAX_*). When one is reached the
 * OLDEST record is dropped and a `dropped` counter says so — except faults
 * and users, where a new entry beyond the ceiling is refused. */
#ifndef SF_STATE_H
#define SF_STATE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SF_MAX_CALLS 10000       /* Web API call log; oldest dropped */
#define SF_MAX_MESSAGES 10000    /* channel messages; oldest dropped (then message_not_found) */
#define SF_MAX_EPHEMERAL 10000   /* ephemeral messages; oldest dropped */
#define SF_MAX_VERSIONS 100      /* text versions kept per message; oldest dropped */
#define SF_MAX_ENVELOPES 100000  /* envelopes tracked for acks; oldest dropped */
#define SF_MAX_TICKETS 1024      /* tickets remembered; the oldest is forgotten (unknown afterwards) */
#define SF_MAX_CONN_RECORDS 1024 /* connection records; oldest dropped */
#define SF_MAX_FAULTS 64         /* pending fault entries; more are refused */
#define SF_MAX_USERS 1024        /* users fixture entries; more are refused */
#define SF_MAX_URLS 10000        /* response_url use counters; all forgotten when full */
#define SF_RESPONSE_URL_USES 5   /* A3.4: a response_url works 5 times */
#define SF_MAX_POST_TEXT 40000   /* chat.postMessage: longer text is truncated (A6) */
#define SF_MAX_EDIT_TEXT 4000    /* chat.update / chat.postEphemeral: longer is msg_too_long (A6) */
#define SF_MAX_BLOCKS 50         /* blocks per message */
#define SF_MAX_ATTACHMENTS 100   /* too_many_attachments beyond */
#define SF_ID_MAX 64             /* ids (channel, user, envelope, method names) incl. NUL */
#define SF_TS_MAX 24             /* "<sec>.<6 digits>" incl. NUL */
#define SF_MAX_CONNECTIONS 10    /* open Socket Mode connections per app (A2.4) */

/* A generic ring of owned pointers: push evicts the oldest when full. */
typedef struct sf_ring {
    void **items;
    size_t cap, head, len; /* head = index of the oldest item */
    uint64_t dropped;      /* items evicted by the ceiling */
} sf_ring;

typedef struct sf_msg {
    char channel[SF_ID_MAX], ts[SF_TS_MAX], thread_ts[SF_TS_MAX], user[SF_ID_MAX];
    bool by_bot;              /* posted through chat.postMessage (only those can be updated) */
    char *text;               /* owned, never NULL */
    json_object *blocks;      /* owned array, NULL = no blocks */
    json_object *attachments; /* owned array, NULL = none */
    json_object *versions;    /* owned array of every text, oldest first */
    int edits;                /* successful chat.update calls */
    bool edited;              /* the "edited" marker: last update changed text without blocks (A6) */
    char edited_ts[SF_TS_MAX];
    bool via_ack;             /* an in_channel answer carried by a slash command's ack */
} sf_msg;

typedef struct sf_ephemeral {
    char channel[SF_ID_MAX], user[SF_ID_MAX], ts[SF_TS_MAX], thread_ts[SF_TS_MAX];
    char *text;               /* owned */
    json_object *blocks;      /* owned or NULL */
    json_object *attachments; /* owned or NULL */
    bool via_ack;             /* shown because a slash command's ack carried it (A2.3, A3.3) */
} sf_ephemeral;

typedef struct sf_call {
    uint64_t seq;
    int64_t time_ms;          /* wall clock */
    char method[SF_ID_MAX];   /* as requested, also unknown ones */
    char verb[8];             /* GET / POST */
    const char *style;        /* static: "json", "form", "query", "none" */
    int status;               /* HTTP status answered */
    const char *auth;         /* static: "bot", "app", "missing", "invalid" */
    bool auth_ok;             /* the right token type for the method */
    bool token_in_args;       /* a token was sent outside the header (never recorded) */
    json_object *args;        /* owned; the parsed arguments without "token", or NULL */
    json_object *response;    /* owned; the body answered */
} sf_call;

typedef struct sf_env {
    char id[SF_ID_MAX];
    char type[32];
    int conn;                 /* connection id it went to */
    int retry_attempt;        /* -1 when the envelope carries none */
    char *frame;              /* owned: the JSON text sent */
    int64_t queued_us;        /* monotonic, when pushed */
    int64_t sent_us;          /* monotonic, when the frame was written; 0 = not yet */
    int64_t sent_wall_ms;
    bool swallowed;           /* routed to a half-open connection: never written */
    bool acked;
    int64_t latency_us;       /* ack read - frame written */
    int extra_acks;           /* acks after the first */
    char *ack_payload;        /* owned JSON text of the ack's "payload", NULL when absent */
    bool answered_in_ack;     /* the ack's payload was a message Slack showed */
    const char *ack_error;    /* static: why the ack's payload was refused (bad_ack_payloads), else NULL */
    int load_idx;             /* index in the running load, -1 otherwise */
    uint32_t load_gen;
    struct sf_env *hnext;     /* hash chain */
} sf_env;

typedef struct sf_conn_rec {
    int id;
    bool open, hello_sent, halfopen;
    bool client_close;        /* the client sent a close frame */
    int64_t opened_ms, closed_ms;
    uint64_t pings_sent, pongs_received, envelopes, acks, bad_frames;
    char note[48];            /* why it closed, when the fake closed it */
} sf_conn_rec;

enum sf_fault_kind { SF_FAULT_RATELIMIT = 1, SF_FAULT_FAIL = 2 };

typedef struct sf_fault {
    int kind;
    char method[SF_ID_MAX];   /* "*" = every method */
    char error[SF_ID_MAX];    /* SF_FAULT_FAIL */
    int count;                /* calls left */
    int retry_after;          /* SF_FAULT_RATELIMIT, seconds */
} sf_fault;

typedef struct sf_ticket {
    char id[40];
    bool used;
} sf_ticket;

#define SF_ENV_BUCKETS (1u << 17)

typedef struct sf_state {
    /* Configuration: read-only after sf_state_new. */
    char team_id[SF_ID_MAX], domain[SF_ID_MAX], app_id[SF_ID_MAX];
    char bot_user_id[SF_ID_MAX], bot_user_name[SF_ID_MAX], bot_id[SF_ID_MAX];
    char *app_token, *bot_token; /* owned; never written anywhere */
    int port;                    /* listening port (for ws:// and response_url) */
    char host[SF_ID_MAX];        /* the host name in those URLs */
    bool tls;                    /* wss:// and https:// instead of ws:// and http:// */
    int64_t ack_deadline_us;
    int connection_time_s;       /* hello debug_info.approximate_connection_time */

    uint64_t rng;
    int64_t last_ts_us;          /* ts are strictly increasing (A10) */

    json_object *users;          /* owned: id -> users.info "user" object */
    sf_ring calls, messages, ephemeral, envs, conns;
    uint64_t call_seq;
    sf_env **env_buckets;        /* SF_ENV_BUCKETS chains */
    sf_fault faults[SF_MAX_FAULTS];
    size_t n_faults;
    sf_ticket tickets[SF_MAX_TICKETS];
    size_t ticket_next;          /* ring position */
    uint64_t connections_open_calls;
    uint64_t unknown_acks, bad_frames;
    uint64_t ack_answers, bad_ack_payloads;   /* ack payloads shown as messages; refused ones */
    json_object *url_uses;       /* owned: response_url path -> uses (SF_MAX_URLS, then forgotten) */
    int next_conn_id;
} sf_state;

typedef struct sf_config {
    const char *team_id, *domain, *app_id, *app_token, *bot_token;
    const char *host;            /* the name in the URLs it hands out (default 127.0.0.1) */
    bool tls;                    /* it serves TLS: wss:// and https:// URLs */
    int64_t ack_deadline_ms;
    int connection_time_s;
    uint64_t seed;
} sf_config;

/* Returns NULL on allocation failure. Free with sf_state_free. */
sf_state *sf_state_new(const sf_config *cfg);
void sf_state_free(sf_state *st);
/* Forgets calls, messages, acks and faults (POST /_fake/reset); keeps
 * connections, tickets and users. */
void sf_state_reset(sf_state *st);

/* ---- users (users.info fixtures) ---- */
/* The built-in users (reference A4/A6 names) are loaded by sf_state_new.
 * Replaces them with a JSON array of users.info "user" objects; each needs
 * a string "id". Returns 0, or -1 with err filled. */
int sf_users_load(sf_state *st, const char *text, size_t len, char *err, size_t errlen);
/* Borrowed, NULL when unknown. */
json_object *sf_user_find(sf_state *st, const char *id);

/* ---- identifiers ---- */
uint64_t sf_rand(sf_state *st);
void sf_new_envelope_id(sf_state *st, char out[SF_ID_MAX]);   /* UUID v4 shape */
void sf_new_trigger_id(sf_state *st, char out[SF_ID_MAX]);    /* "<13 d>.<10 d>.<32 hex>" */
/* Next message ts "<sec>.<6 digits>" from the wall clock, strictly greater
 * than every ts given before (A10). */
void sf_next_ts(sf_state *st, int64_t wall_us, char out[SF_TS_MAX]);
/* https://<domain>.slack.com/archives/<C>/p<ts without dot>[?thread_ts=<p>&cid=<C>] (A10).
 * thread_ts NULL or equal to ts = no thread part. Returns 0, -1 if out is too small. */
int sf_permalink(const char *domain, const char *channel, const char *ts, const char *thread_ts, char *out,
                 size_t outlen);
/* Is s a "<digits>.<6 digits>" ts? */
bool sf_ts_valid(const char *s);
/* Number of UTF-8 code points (bytes that are not continuation bytes). */
size_t sf_utf8_chars(const char *s);
/* Byte length of the first max code points of s. */
size_t sf_utf8_prefix(const char *s, size_t max);

/* ---- tickets (apps.connections.open, A2.1) ---- */
void sf_ticket_new(sf_state *st, char out[40]);
/* true once per ticket: the first use of a known ticket. */
bool sf_ticket_use(sf_state *st, const char *ticket);

/* ---- messages ---- */
/* Takes ownership of the new message (freed on eviction). */
void sf_msg_add(sf_state *st, sf_msg *m);
sf_msg *sf_msg_find(sf_state *st, const char *channel, const char *ts);
void sf_msg_free(sf_msg *m);
void sf_ephemeral_add(sf_state *st, sf_ephemeral *e);
sf_ephemeral *sf_ephemeral_find(sf_state *st, const char *ts);
void sf_ephemeral_free(sf_ephemeral *e);
/* Appends a text version (SF_MAX_VERSIONS kept). */
void sf_msg_add_version(sf_msg *m, const char *text);

/* ---- message fields (chat.postMessage/update/postEphemeral, ack answers) ---- */
/* obj[key] as an array, or a JSON string holding one (form style); absent,
 * null or [] give *out NULL. *out is a new reference. Returns NULL, or
 * format_error when it is neither. */
const char *sf_array_field(json_object *obj, const char *key, const char *format_error, json_object **out);
/* "blocks": as sf_array_field, then at most SF_MAX_BLOCKS, each an object
 * with a string "type" (invalid_blocks_format / invalid_blocks). */
const char *sf_blocks_field(json_object *obj, json_object **out);
/* "attachments": as sf_array_field, at most SF_MAX_ATTACHMENTS
 * (invalid_attachments / too_many_attachments). */
const char *sf_attachments_field(json_object *obj, json_object **out);
/* The message of obj as chat.postEphemeral checks it (A6): "text" a scalar
 * (read as its string form; an object or array is invalid_arguments) of at
 * most SF_MAX_EDIT_TEXT code points (msg_too_long); blocks and attachments
 * as above; then text, blocks or attachments non-empty (no_text). null is
 * absent (A5). Returns NULL with *text borrowed from obj (NULL when absent)
 * and *blocks / *atts new references (NULL when absent or []); or the Slack
 * error code, with nothing to free. */
const char *sf_message_fields(json_object *obj, const char **text, json_object **blocks, json_object **atts);

/* ---- call log ---- */
void sf_call_add(sf_state *st, sf_call *c); /* takes ownership */
void sf_call_free(sf_call *c);

/* ---- faults ---- */
/* Returns 0, or -1 when SF_MAX_FAULTS entries are pending. */
int sf_fault_add(sf_state *st, const sf_fault *f);
/* Consumes one call of the first matching fault of that kind (method or
 * "*"). Returns true and fills *out when one applies. */
bool sf_fault_take(sf_state *st, int kind, const char *method, sf_fault *out);

/* ---- connections ---- */
/* A new open record (oldest dropped at the ceiling). Borrowed pointer,
 * valid until the record is evicted: look it up by id after any other
 * sf_conn_new call. */
sf_conn_rec *sf_conn_new(sf_state *st, int64_t wall_ms);
sf_conn_rec *sf_conn_find(sf_state *st, int id);
int sf_conn_open_count(const sf_state *st);

/* ---- envelopes and acks (A2.2, A2.3) ---- */
/* Builds the envelope frame text (caller frees):
 * {"envelope_id","payload","type","accepts_response_payload"[,"retry_attempt","retry_reason"]}.
 * retry_attempt < 0 leaves both retry fields out. payload is borrowed. */
char *sf_envelope_frame(const char *envelope_id, const char *type, bool accepts_response_payload,
                        json_object *payload, int retry_attempt, const char *retry_reason);
/* Records an envelope queued on connection conn; takes frame. Returns the
 * record (borrowed) or NULL on allocation failure (frame freed). */
sf_env *sf_env_add(sf_state *st, const char *id, const char *type, int conn, int retry_attempt, char *frame,
                   int64_t now_us);
/* The newest envelope with that id, or NULL. */
sf_env *sf_env_find(sf_state *st, const char *id);
/* The frame was written (or swallowed by a half-open connection). */
void sf_env_mark_sent(sf_env *e, int64_t now_us, int64_t wall_ms, bool swallowed);

enum sf_ack_result {
    SF_ACK_OK = 0,     /* first ack of a known envelope */
    SF_ACK_DUPLICATE,  /* known envelope, acked before */
    SF_ACK_UNKNOWN,    /* no such envelope_id */
    SF_ACK_BAD,        /* not a JSON object with a string envelope_id */
};
/* Parses one text frame from connection conn read at now_us (monotonic)
 * and records the ack. *env_out gets the envelope for OK/DUPLICATE. Pure but
 * for the state.
 *
 * The first ack of a slash_commands envelope sent with
 * accepts_response_payload:true may carry the command's answer (A2.3, A3.3):
 * a payload with "text", "blocks" or "attachments", valid as
 * chat.postEphemeral checks them (sf_message_fields), is shown as Slack
 * shows it: response_type absent or "ephemeral" as an ephemeral message to
 * the command's user in its channel, "in_channel" as a channel message (not
 * the bot's: chat.update cannot edit it); either gets a ts from wall_us and
 * via_ack, and the envelope answered_in_ack. {} and a payload without
 * message fields show nothing. Refused, counted in bad_ack_payloads and
 * named in e->ack_error: an invalid message or response_type, a payload
 * that is not an object, and any payload but {} on an envelope sent with
 * accepts_response_payload:false (events_api). */
int sf_ack_frame(sf_state *st, int conn, const char *text, size_t len, int64_t now_us, int64_t wall_us,
                 sf_env **env_out);
/* Is the envelope late at now_us: acked after the deadline, or not acked
 * and the deadline passed. */
bool sf_env_late(const sf_state *st, const sf_env *e, int64_t now_us);
/* The frame for a redelivery of e (A2.3): same payload, a new envelope_id,
 * retry_attempt + 1 and retry_reason "timeout". Caller frees; NULL if the
 * stored frame cannot be parsed. *attempt_out gets the new attempt. */
char *sf_env_redelivery(const sf_env *e, const char *new_id, int *attempt_out);

/* ---- slash command payload (A3.1) ---- */
typedef struct sf_slash {
    const char *user_id, *channel_id, *text;
    const char *team_id;   /* NULL = the fake's team */
    const char *command;   /* NULL = "/nomatron" */
    const char *trigger_id;/* NULL = a new one */
} sf_slash;
/* Returns a new payload object (caller puts); trigger_out gets its trigger_id. */
json_object *sf_slash_payload(sf_state *st, const sf_slash *s, char trigger_out[SF_ID_MAX]);
/* A channel's name as conversations.info and payloads give it. */
void sf_channel_name(const char *id, char *out, size_t outlen);

/* ---- control API views (JSON text, caller frees) ---- */
char *sf_calls_json(sf_state *st, const char *method);
char *sf_messages_json(sf_state *st, const char *channel);
char *sf_acks_json(sf_state *st, int64_t now_us);
char *sf_conns_json(sf_state *st);

/* Nearest-rank percentile of n sorted values (0 for n == 0). */
int64_t sf_percentile(const int64_t *sorted, size_t n, double p);
/* JSON text of o, plain, '/' not escaped. Borrowed: valid until o changes or is put. */
const char *sf_json_text(json_object *o);

#endif
