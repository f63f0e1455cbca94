/* The process's current configuration snapshot, swapped on SIGHUP. See
 * config.h. A mutex (not a bare atomic pointer) because get() must take its
 * reference before a concurrent set() can drop the last one. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"

struct config_holder {
    pthread_mutex_t mu;
    config *current;
    unsigned long generation;
};

config_holder *config_holder_new(config *initial) {
    config_holder *h = calloc(1, sizeof(*h));
    if (!h) return NULL;
    pthread_mutex_init(&h->mu, NULL);
    h->current = initial;
    h->generation = 1;
    return h;
}

config *config_holder_get(config_holder *h) {
    pthread_mutex_lock(&h->mu);
    config *cfg = config_ref(h->current);
    pthread_mutex_unlock(&h->mu);
    return cfg;
}

void config_holder_set(config_holder *h, config *next) {
    pthread_mutex_lock(&h->mu);
    config *old = h->current;
    h->current = next;
    h->generation++;
    pthread_mutex_unlock(&h->mu);
    config_free(old);
}

unsigned long config_holder_generation(config_holder *h) {
    pthread_mutex_lock(&h->mu);
    unsigned long g = h->generation;
    pthread_mutex_unlock(&h->mu);
    return g;
}

int config_holder_reload(config_holder *h, char *err, size_t errlen) {
    config *cur = config_holder_get(h);
    config *next = NULL;
    int rc = config_load(cur->path, &next, err, errlen);
    config_free(cur);
    if (rc == CONFIG_OK) config_holder_set(h, next);
    return rc;
}

void config_holder_free(config_holder *h) {
    if (!h) return;
    config_free(h->current);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
