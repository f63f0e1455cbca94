/* nomad/nomad_int.h: what client.c shares with async.c. Not part of the
 * API; only nomad/ includes it. */
#ifndef NM_NOMAD_INT_H
#define NM_NOMAD_INT_H

#include <curl/curl.h>

#include "buf.h"
#include "nomad.h"

#define NOMAD_ERRSTR_LEN 256
#define NOMAD_URL_MAX 4096
#define NOMAD_WHAT_LEN 160

/* The response state of one transfer (the sync client has one, every async
 * transfer has its own). */
typedef struct nomad_xfer {
    nm_buf body;                  /* ceiling NOMAD_MAX_BODY */
    bool body_too_large;
    bool body_nomem;
    bool have_index;
    uint64_t index;               /* X-Nomad-Index */
    char curl_err[CURL_ERROR_SIZE];
} nomad_xfer;

struct nomad_client {
    CURLM *multi;
    CURL *easy;
    struct curl_slist *headers;   /* owns the only copy of the token; wiped on free */
    struct curl_slist *connect_to;/* tls_server_name: "name:port:host:port", or NULL */
    char *address;                /* base URL without trailing slash (host = tls_server_name when set) */
    char *ns_q;                   /* "namespace=<escaped>[&region=<escaped>]", the common query */
    char *token;                  /* kept only to scrub it from error text; wiped on free */
    char *ca_file, *client_cert, *client_key;   /* NULL = none */
    bool https;
    long timeout_ms;
    bool bad_token;               /* control bytes in the token: refuse to send it */

    int retries, backoff_base_ms, backoff_cap_ms;
    uint32_t rnd;                 /* xorshift state for the jitter */
    int attempts;                 /* of the last sync call */

    /* Last sync call. */
    long http_status;
    CURLcode last_curl;
    char errstr[NOMAD_ERRSTR_LEN];
    nomad_xfer x;
    char what[NOMAD_WHAT_LEN];    /* "GET /v1/job/web", for error text */
};

void nomad_xfer_init(nomad_xfer *x);
void nomad_xfer_reset(nomad_xfer *x);   /* before a transfer; drops a large buffer */
void nomad_xfer_free(nomad_xfer *x);

/* Sets every option of easy for one request through c's settings. path is
 * the escaped path ("/v1/job/web", may carry its own "?a=b"); the common
 * query and, with wait_index > 0, index/wait are appended. copy_body makes
 * curl copy body (async), else it must outlive the transfer. errbuf gets the
 * reason on failure. Returns a nomad_code. */
int nomad_int_prepare(nomad_client *c, CURL *easy, nomad_xfer *x, const char *method, const char *path,
                      uint64_t wait_index, int wait_ms, const char *body, size_t body_len, bool copy_body,
                      char *errbuf, size_t errlen);

/* Maps a finished transfer to a nomad_code, errbuf (token scrubbed) and the HTTP status. */
int nomad_int_finish(const nomad_client *c, CURL *easy, nomad_xfer *x, CURLcode e, const char *what, long *status,
                     char *errbuf, size_t errlen);

#endif
