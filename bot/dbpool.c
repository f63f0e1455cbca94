#include "dbpool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct slot {
    audit_db db;
    bool connected;
    bool busy;
} slot;

struct dbpool {
    pthread_mutex_t mu;
    pthread_cond_t freed;
    char *dsn;
    int max;
    slot *slots;
    audit_appender *appender;   /* borrowed: the process's group commit; NULL = each write alone */
};

dbpool *dbpool_new(const char *dsn, int max, audit_appender *appender) {
    dbpool *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->dsn = strdup(dsn);
    p->max = max > 0 ? max : 1;
    p->slots = calloc((size_t)p->max, sizeof(slot));
    if (!p->dsn || !p->slots) {
        free(p->dsn);
        free(p->slots);
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->freed, NULL);
    p->appender = appender;
    return p;
}

audit_db *dbpool_get(dbpool *p, char *err, size_t errlen) {
    slot *s = NULL;
    pthread_mutex_lock(&p->mu);
    while (!s) {
        for (int i = 0; i < p->max && !s; i++)
            if (!p->slots[i].busy) s = &p->slots[i];
        if (!s) pthread_cond_wait(&p->freed, &p->mu);
    }
    s->busy = true;
    pthread_mutex_unlock(&p->mu);

    if (!s->connected) {
        if (audit_connect(&s->db, p->dsn) != AUDIT_OK) {
            snprintf(err, errlen, "%s", s->db.errstr);
            audit_close(&s->db);
            dbpool_put(p, &s->db, true);
            return NULL;
        }
        s->connected = true;
        audit_db_set_appender(&s->db, p->appender);
    }
    return &s->db;
}

void dbpool_put(dbpool *p, audit_db *db, bool broken) {
    slot *s = (slot *)db;   /* db is the first member of its slot */
    if (broken && s->connected) {
        audit_close(&s->db);
        s->connected = false;
    }
    pthread_mutex_lock(&p->mu);
    s->busy = false;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->mu);
}

void dbpool_free(dbpool *p) {
    if (!p) return;
    for (int i = 0; i < p->max; i++)
        if (p->slots[i].connected) audit_close(&p->slots[i].db);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->freed);
    free(p->slots);
    free(p->dsn);
    free(p);
}
