/* Canonical encoding v1 of an audit event and the SHA-256 chain hash.
 * The byte layout is specified in docs/AUDIT.md; keep the two in step. */
#include "canon.h"

#include <string.h>

#include <openssl/evp.h>
#include <pthread.h>

/* Field tags: one byte in front of every field, so NULL, "" and 0 differ. */
#define TAG_NULL 0x00
#define TAG_INT 0x49  /* 'I' */
#define TAG_TEXT 0x53 /* 'S' */

static const unsigned char magic[4] = {'N', 'M', 'A', 'E'};

static int buf_rc(int rc) {
    if (rc == NM_BUF_OK) return AUDIT_CANON_OK;
    return rc == NM_BUF_TOO_LARGE ? AUDIT_CANON_TOO_LARGE : AUDIT_CANON_NOMEM;
}

int audit_canon_put_null(nm_buf *out) {
    unsigned char t = TAG_NULL;
    return buf_rc(nm_buf_append(out, &t, 1));
}

int audit_canon_put_int(nm_buf *out, int64_t v) {
    unsigned char b[9];
    uint64_t u = (uint64_t)v; /* two's complement, big-endian */
    b[0] = TAG_INT;
    for (int i = 0; i < 8; i++) b[1 + i] = (unsigned char)(u >> (56 - 8 * i));
    return buf_rc(nm_buf_append(out, b, sizeof(b)));
}

int audit_canon_put_text(nm_buf *out, const char *s, size_t len) {
    if (!s) return audit_canon_put_null(out);
    if (len > AUDIT_FIELD_MAX) return AUDIT_CANON_TOO_LARGE;
    unsigned char b[5];
    uint32_t n = (uint32_t)len;
    b[0] = TAG_TEXT;
    b[1] = (unsigned char)(n >> 24);
    b[2] = (unsigned char)(n >> 16);
    b[3] = (unsigned char)(n >> 8);
    b[4] = (unsigned char)n;
    int rc = buf_rc(nm_buf_append(out, b, sizeof(b)));
    if (rc) return rc;
    return buf_rc(nm_buf_append(out, s, len));
}

static int put_str(nm_buf *out, const char *s) { return audit_canon_put_text(out, s, s ? strlen(s) : 0); }

int audit_canon_encode(const audit_event *e, nm_buf *out) {
    if (e->enc_version != AUDIT_ENC_VERSION) return AUDIT_CANON_VERSION;
    int rc;
    unsigned char ver[2] = {(unsigned char)(e->enc_version >> 8), (unsigned char)e->enc_version};
    if ((rc = buf_rc(nm_buf_append(out, magic, sizeof(magic)))) || (rc = buf_rc(nm_buf_append(out, ver, 2))))
        return rc;

    /* The order below is the format: never reorder, only add under a new version. */
    const char *texts_a[] = {e->action, e->actor,  e->person, e->outcome,    e->from_state,
                             e->to_state, e->phase, e->reason, e->env,       e->job,
                             e->from_image, e->to_image};
    const char *texts_b[] = {e->eval_id, e->deployment_id, e->detail, e->platform, e->team,
                             e->channel, e->message_ref,   e->thread, e->permalink};

    if ((rc = audit_canon_put_int(out, e->id))) return rc;
    rc = e->request_id > 0 ? audit_canon_put_int(out, e->request_id) : audit_canon_put_null(out);
    if (rc || (rc = audit_canon_put_int(out, e->at_us))) return rc;
    for (size_t i = 0; i < sizeof(texts_a) / sizeof(texts_a[0]); i++)
        if ((rc = put_str(out, texts_a[i]))) return rc;
    rc = e->nomad_job_version >= 0 ? audit_canon_put_int(out, e->nomad_job_version) : audit_canon_put_null(out);
    if (rc) return rc;
    for (size_t i = 0; i < sizeof(texts_b) / sizeof(texts_b[0]); i++)
        if ((rc = put_str(out, texts_b[i]))) return rc;
    return AUDIT_CANON_OK;
}

bool audit_canon_hash_valid(const char *s) {
    if (!s) return false;
    for (int i = 0; i < AUDIT_HASH_HEX_LEN; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return s[AUDIT_HASH_HEX_LEN] == '\0';
}

static int hexval(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

#define SMALL_ENC 4096

/* SHA-256 fetched once per process: OpenSSL 3 otherwise looks the
 * algorithm up (under a lock) on every digest, which costs more than
 * hashing a short event. Never freed: one object for the process's life. */
static EVP_MD *sha256_cached;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static void sha256_fetch(void) { sha256_cached = EVP_MD_fetch(NULL, "SHA256", NULL); }
static const EVP_MD *sha256_md(void) {
    pthread_once(&sha256_once, sha256_fetch);
    return sha256_cached;
}
static int chain_hash_evp(const unsigned char prev[32], const void *enc, size_t enc_len, unsigned char *md,
                          unsigned int *mdlenp);

int audit_canon_chain_hash(const char *prev_hex, const void *enc, size_t enc_len, char hex_out[65]) {
    static const char digits[] = "0123456789abcdef";
    unsigned char prev[32], md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (!audit_canon_hash_valid(prev_hex)) return AUDIT_CANON_BAD_HASH;
    for (int i = 0; i < 32; i++) prev[i] = (unsigned char)(hexval(prev_hex[2 * i]) << 4 | hexval(prev_hex[2 * i + 1]));

    /* The common case (an event of a few hundred bytes) hashes one
     * contiguous buffer in one call with the algorithm fetched once: that is
     * what lets verify run at memory speed. */
    if (enc_len <= SMALL_ENC) {
        unsigned char in[32 + SMALL_ENC];
        memcpy(in, prev, 32);
        if (enc_len) memcpy(in + 32, enc, enc_len);
        const EVP_MD *sha = sha256_md();
        if (!sha || EVP_Digest(in, 32 + enc_len, md, &mdlen, sha, NULL) != 1 || mdlen != 32) return AUDIT_CANON_NOMEM;
    } else {
        int rc = chain_hash_evp(prev, enc, enc_len, md, &mdlen);
        if (rc) return rc;
    }
    for (int i = 0; i < 32; i++) {
        hex_out[2 * i] = digits[md[i] >> 4];
        hex_out[2 * i + 1] = digits[md[i] & 0xf];
    }
    hex_out[64] = '\0';
    return AUDIT_CANON_OK;
}

/* Large encodings: streamed through an EVP context. */
static int chain_hash_evp(const unsigned char prev[32], const void *enc, size_t enc_len, unsigned char *md,
                          unsigned int *mdlenp) {
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    const EVP_MD *sha = sha256_md();
    if (!ctx || !sha) {
        EVP_MD_CTX_free(ctx);
        return AUDIT_CANON_NOMEM;
    }
    int ok = EVP_DigestInit_ex(ctx, sha, NULL) == 1 && EVP_DigestUpdate(ctx, prev, 32) == 1 &&
             EVP_DigestUpdate(ctx, enc, enc_len) == 1 && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32;
    EVP_MD_CTX_free(ctx);
    if (!ok) return AUDIT_CANON_NOMEM; /* EVP fails only when it cannot allocate */
    *mdlenp = mdlen;
    return AUDIT_CANON_OK;
}

int audit_canon_event_hash(const audit_event *e, char hex_out[65]) {
    nm_buf b;
    nm_buf_init(&b, AUDIT_ENC_MAX);
    int rc = audit_canon_encode(e, &b);
    if (rc == AUDIT_CANON_OK) rc = audit_canon_chain_hash(e->prev_hash, b.data ? b.data : "", b.len, hex_out);
    nm_buf_free(&b);
    return rc;
}

const char *audit_canon_strerror(int code) {
    switch (code) {
    case AUDIT_CANON_OK: return "ok";
    case AUDIT_CANON_VERSION: return "unknown encoding version";
    case AUDIT_CANON_TOO_LARGE: return "text field too long";
    case AUDIT_CANON_BAD_HASH: return "previous hash is not 64 lowercase hex characters";
    case AUDIT_CANON_NOMEM: return "out of memory";
    }
    return "unknown canon error";
}
