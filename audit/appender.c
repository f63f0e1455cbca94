/* Group commit of chained writes (flat combining). Threads of one process
 * that append at the same time queue their writes here; the first of them
 * that finds nobody leading becomes the leader: it waits briefly until as
 * many writes are queued as the last batch had (gather), takes its own write
 * and up to max_batch - 1 queued ones, runs them as one transaction on its
 * own connection (audit__batch_run, requests.c), hands each caller its
 * result and wakes each of them, and the next leader. Writes queued
 * meanwhile form the next batch, so the busier the chain, the larger the
 * batches: one chain lock acquisition and one COMMIT per batch instead of
 * per write (docs/AUDIT.md, "Group commit").
 *
 * A caller whose connection is already known to be broken never leads (its
 * connection would fail the batch): it waits to be taken into another
 * thread's batch and, if nobody who could lead is left waiting, runs its
 * write by itself, where it fails as it always did. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit_int.h"

struct audit_appender {
    pthread_mutex_t mu;
    int max_batch;
    int max_leaders;
    int leaders;                /* batches running now, and a leader gathering its batch */
    int last_batch;             /* writes the last batch to end served */
    audit__op *gathering;       /* the would-be leader waiting for them to come back, or NULL */
    pthread_condattr_t cvattr;  /* the ops' condition variables: CLOCK_MONOTONIC */
    audit__op *head, *tail;     /* queued, not yet taken; FIFO */
    int pending, pending_live;  /* queued; of them, with a usable connection */
    audit_appender_stats st;
};

audit_appender *audit_appender_new(int max_batch, int max_leaders) {
    if (max_batch == 0) max_batch = AUDIT_APPENDER_BATCH_DEFAULT;
    if (max_leaders == 0) max_leaders = AUDIT_APPENDER_LEADERS_DEFAULT;
    if (max_batch < 1 || max_batch > AUDIT_APPENDER_BATCH_MAX || max_leaders < 1 ||
        max_leaders > AUDIT_APPENDER_LEADERS_MAX)
        return NULL;
    audit_appender *a = calloc(1, sizeof(*a));
    if (!a) return NULL;
    if (pthread_mutex_init(&a->mu, NULL) != 0) {
        free(a);
        return NULL;
    }
    if (pthread_condattr_init(&a->cvattr) != 0 || pthread_condattr_setclock(&a->cvattr, CLOCK_MONOTONIC) != 0) {
        pthread_mutex_destroy(&a->mu);
        free(a);
        return NULL;
    }
    a->max_batch = max_batch;
    a->max_leaders = max_leaders;
    return a;
}

void audit_appender_free(audit_appender *a) {
    if (!a) return;
    pthread_condattr_destroy(&a->cvattr);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

void audit_db_set_appender(audit_db *db, audit_appender *a) {
    if (db) db->appender = a;
}

void audit_appender_stats_get(audit_appender *a, audit_appender_stats *out) {
    pthread_mutex_lock(&a->mu);
    *out = a->st;
    out->pending = a->pending;
    out->leaders = a->leaders;
    pthread_mutex_unlock(&a->mu);
}

/* Queue helpers; the mutex is held. */
static void enqueue(audit_appender *a, audit__op *op) {
    op->next = NULL;
    op->queued = true;
    if (a->tail) a->tail->next = op;
    else a->head = op;
    a->tail = op;
    a->pending++;
    if (op->can_lead) a->pending_live++;
}

static void unlink_op(audit_appender *a, audit__op *op) {
    audit__op *prev = NULL;
    for (audit__op *p = a->head; p; prev = p, p = p->next) {
        if (p != op) continue;
        if (prev) prev->next = p->next;
        else a->head = p->next;
        if (a->tail == p) a->tail = prev;
        p->next = NULL;
        p->queued = false;
        a->pending--;
        if (p->can_lead) a->pending_live--;
        return;
    }
}

/* A batch has ended (the mutex is held): wake the one queued write that
 * should lead next, the oldest that can; if none can and nobody leads, wake
 * them all to run by themselves. Writes taken into a batch are woken by its
 * leader; nobody else is, so a batch's end costs one wake-up per write it
 * served plus one, not one per waiting thread. */
static void wake_next(audit_appender *a) {
    if (!a->head || a->leaders >= a->max_leaders) return;
    for (audit__op *o = a->head; o; o = o->next)
        if (o->can_lead) {
            pthread_cond_signal(&o->cv);
            return;
        }
    if (a->leaders == 0)
        for (audit__op *o = a->head; o; o = o->next) pthread_cond_signal(&o->cv);
}

/* How long a would-be leader waits for the writers of the batch that just
 * ended to come back with their next writes (see below). */
#define GATHER_US 300

/* Waits (mutex held) until as many writes are queued as the last batch
 * served, or GATHER_US passed. The threads a batch served usually append
 * again at once; the first of the others to lead would otherwise take only
 * what was queued meanwhile, and with N writers the batches would settle at
 * about N/2. A batch costs PostgreSQL a fixed ~0.18 ms whatever its size
 * (docs/BENCHMARKS.md), so fewer, fuller batches are faster. When the load
 * drops, the wait ends at GATHER_US and last_batch follows the load down. */
static void gather(audit_appender *a, audit__op *op) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += GATHER_US * 1000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    a->gathering = op;
    a->leaders++;   /* nobody else starts a batch meanwhile */
    a->st.gathers++;
    while (op->queued && a->pending < a->last_batch)
        if (pthread_cond_timedwait(&op->cv, &a->mu, &until) == ETIMEDOUT) {
            if (op->queued && a->pending < a->last_batch) a->st.gather_timeouts++;
            break;
        }
    a->leaders--;
    a->gathering = NULL;
}

void audit__appender_run(audit_appender *a, audit_db *db, audit__op *op) {
    audit__op *batch[AUDIT_APPENDER_BATCH_MAX];
    bool gathered = false;
    op->done = op->alone = false;
    pthread_cond_init(&op->cv, &a->cvattr);
    pthread_mutex_lock(&a->mu);
    enqueue(a, op);
    a->st.writes++;
    if (a->gathering && a->pending >= a->last_batch) pthread_cond_signal(&a->gathering->cv);
    while (!op->done) {
        /* Only a write still queued may lead: one already taken into a
         * running batch waits for that batch. */
        if (op->queued && a->leaders < a->max_leaders && op->can_lead) {
            if (!gathered && a->pending < a->last_batch && !a->gathering) {
                gather(a, op);
                gathered = true;   /* once: then lead with what there is */
                continue;          /* look again: it may have been taken into another batch */
            }
            /* Lead: our own write first (so a leader always finishes its
             * own), then the oldest queued ones. */
            unlink_op(a, op);
            int m = 0;
            batch[m++] = op;
            while (m < a->max_batch && a->head) {
                audit__op *o = a->head;
                unlink_op(a, o);
                batch[m++] = o;
            }
            a->leaders++;
            a->st.batches++;
            if (m > a->st.largest) a->st.largest = m;
            pthread_mutex_unlock(&a->mu);

            int how = audit__batch_run(db, batch, m);

            pthread_mutex_lock(&a->mu);
            if (how == AUDIT__BATCH_MULTI) a->st.multi++;
            else if (how == AUDIT__BATCH_FELL_BACK) a->st.multi_fallback++;
            for (int i = 0; i < m; i++) {
                if (batch[i]->alone) a->st.alone++;
                batch[i]->done = true;
                if (i > 0) pthread_cond_signal(&batch[i]->cv);
            }
            a->leaders--;
            a->last_batch = m;
            wake_next(a);
            continue;
        }
        if (op->queued && a->leaders == 0 && a->pending_live == 0) {
            /* Nobody left who could run it: the caller runs it itself. */
            unlink_op(a, op);
            op->alone = true;
            a->st.alone++;
            break;
        }
        pthread_cond_wait(&op->cv, &a->mu);
    }
    pthread_mutex_unlock(&a->mu);
    pthread_cond_destroy(&op->cv);
}
