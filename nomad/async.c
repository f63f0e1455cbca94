/* nomad/async.c: the asynchronous engine (nomad_async.h).
 *
 * One CURLM per loop; each request is a `transfer` holding an easy handle
 * from the loop's pool, its own response state (nomad_xfer: body with the
 * NOMAD_MAX_BODY ceiling, X-Nomad-Index) and the caller's callback. The
 * easy handle points back at its transfer through CURLOPT_PRIVATE. Request
 * setup and the outcome mapping are the sync client's (nomad_int.h), so a
 * 404 / 403 / conflict / timeout reads the same either way. */
#include <curl/curl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "nomad_async.h"
#include "nomad_int.h"

typedef struct transfer {
    struct transfer *prev, *next;
    uint64_t id;
    CURL *easy;
    nomad_client *c;          /* borrowed; outlives the transfer (header) */
    nomad_done_fn cb;
    void *ud;
    nomad_xfer x;
    char what[NOMAD_WHAT_LEN];
} transfer;

struct nomad_loop {
    CURLM *multi;
    transfer *head;
    size_t n;
    uint64_t next_id;
    uint64_t connects;
    CURL *pool[NOMAD_LOOP_POOL];
    size_t n_pool;
    atomic_bool woken;
};

nomad_loop *nomad_loop_new(void) {
    nomad_loop *l = calloc(1, sizeof(*l));
    if (!l) return NULL;
    l->next_id = 1;
    atomic_init(&l->woken, false);
    l->multi = curl_multi_init();
    if (!l->multi) {
        free(l);
        return NULL;
    }
    /* Keep an idle connection per watched deployment (see the header). */
    curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, (long)NOMAD_LOOP_MAXCONNECTS);
    return l;
}

static void unlink_transfer(nomad_loop *l, transfer *t) {
    if (t->prev) t->prev->next = t->next;
    else l->head = t->next;
    if (t->next) t->next->prev = t->prev;
    t->prev = t->next = NULL;
    l->n--;
}

/* Frees t and gives its easy handle back to the pool (already removed from the multi). */
static void release(nomad_loop *l, transfer *t) {
    if (t->easy) {
        if (l->n_pool < NOMAD_LOOP_POOL) {
            curl_easy_reset(t->easy);   /* nothing of this request leaks into the next */
            l->pool[l->n_pool++] = t->easy;
        } else {
            curl_easy_cleanup(t->easy);
        }
    }
    nomad_xfer_free(&t->x);
    free(t);
}

void nomad_loop_free(nomad_loop *l) {
    if (!l) return;
    while (l->head) {
        transfer *t = l->head;
        unlink_transfer(l, t);
        curl_multi_remove_handle(l->multi, t->easy);
        curl_easy_cleanup(t->easy);
        t->easy = NULL;
        release(l, t);
    }
    for (size_t i = 0; i < l->n_pool; i++) curl_easy_cleanup(l->pool[i]);
    curl_multi_cleanup(l->multi);
    free(l);
}

void nomad_loop_wakeup(nomad_loop *l) {
    if (!l) return;
    atomic_store(&l->woken, true);
    curl_multi_wakeup(l->multi);
}

size_t nomad_loop_pending(const nomad_loop *l) { return l ? l->n : 0; }
uint64_t nomad_loop_connects(const nomad_loop *l) { return l ? l->connects : 0; }

/* The path goes into the URL as given: printable ASCII without spaces or a
 * fragment, under /v1/ (IDs are escaped by nomad_path()). */
static bool path_ok(const char *p) {
    if (strncmp(p, "/v1/", 4) != 0) return false;
    for (; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '#') return false;
    return true;
}

static bool method_ok(const char *m) {
    return strcmp(m, "GET") == 0 || strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "DELETE") == 0;
}

uint64_t nomad_async(nomad_loop *l, nomad_client *c, const char *method, const char *path, uint64_t index,
                     int wait_ms, const char *body, nomad_done_fn cb, void *ud) {
    if (!l || !c || !method || !path || !cb) return 0;
    if (!method_ok(method) || !path_ok(path) || strlen(path) >= NOMAD_URL_MAX) {
        nm_log(NM_LOG_WARN, "nomad async: request refused", "reason", "bad method or path", NULL);
        return 0;
    }
    transfer *t = calloc(1, sizeof(*t));
    if (!t) return 0;
    nomad_xfer_init(&t->x);
    t->easy = l->n_pool ? l->pool[--l->n_pool] : curl_easy_init();
    if (!t->easy) {
        release(l, t);
        return 0;
    }
    snprintf(t->what, sizeof(t->what), "%s %s", method, path);
    char err[NOMAD_ERRSTR_LEN];
    int rc = nomad_int_prepare(c, t->easy, &t->x, method, path, index, wait_ms, body, body ? strlen(body) : 0, true,
                               err, sizeof(err));
    if (rc == NOMAD_OK && curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t) != CURLE_OK) rc = NOMAD_ERR_NOMEM;
    if (rc == NOMAD_OK && curl_multi_add_handle(l->multi, t->easy) != CURLM_OK) rc = NOMAD_ERR_NOMEM;
    if (rc != NOMAD_OK) {
        nm_log(NM_LOG_WARN, "nomad async: request not started", "request", t->what, "error",
               err[0] ? err : nomad_strerror(rc), NULL);
        release(l, t);
        return 0;
    }
    t->c = c;
    t->cb = cb;
    t->ud = ud;
    t->id = l->next_id++;
    t->next = l->head;
    if (l->head) l->head->prev = t;
    l->head = t;
    l->n++;
    return t->id;
}

void nomad_async_cancel(nomad_loop *l, uint64_t id) {
    if (!l || id == 0) return;
    for (transfer *t = l->head; t; t = t->next) {
        if (t->id != id) continue;
        unlink_transfer(l, t);
        /* Also drops a finished-but-unread message of this handle. */
        curl_multi_remove_handle(l->multi, t->easy);
        release(l, t);
        return;
    }
}

/* Runs the callbacks of finished transfers; returns how many. */
static int dispatch(nomad_loop *l) {
    int ran = 0;
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(l->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE) continue;
        CURL *easy = m->easy_handle;
        CURLcode result = m->data.result;   /* m is gone after remove_handle */
        transfer *t = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
        if (!t) {   /* not ours; cannot happen, but never leave a handle behind */
            curl_multi_remove_handle(l->multi, easy);
            continue;
        }
        unlink_transfer(l, t);
        curl_multi_remove_handle(l->multi, easy);
        long nconn = 0;
        if (curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &nconn) == CURLE_OK && nconn > 0)
            l->connects += (uint64_t)nconn;
        char err[NOMAD_ERRSTR_LEN];
        nomad_response r = {0};
        r.code = nomad_int_finish(t->c, easy, &t->x, result, t->what, &r.http_status, err, sizeof(err));
        r.index = t->x.have_index ? t->x.index : 0;
        r.body = t->x.body.data ? t->x.body.data : "";
        r.body_len = t->x.body.data ? t->x.body.len : 0;
        r.errstr = err;
        t->cb(t->ud, &r);
        ran++;
        release(l, t);
    }
    return ran;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int nomad_loop_run(nomad_loop *l, int timeout_ms) {
    if (!l) return -1;
    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        int running = 0;
        if (curl_multi_perform(l->multi, &running) != CURLM_OK) return -1;
        int ran = dispatch(l);
        if (ran > 0) return ran;
        if (atomic_exchange(&l->woken, false)) return 0;
        int64_t left = deadline - now_ms();
        if (left <= 0) return 0;
        /* curl shortens the wait to its own next timer; wakeup cuts it too. */
        if (curl_multi_poll(l->multi, NULL, 0, (int)(left < 1000 ? left : 1000), NULL) != CURLM_OK) return -1;
    }
}
