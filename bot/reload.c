/* See reload.h. */
#include "reload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

typedef struct reload_job {
    uv_work_t work;
    config_holder *holder;
    config *next;          /* the new snapshot, until swapped in */
    char path[1024];
    char err[512];
    int rc;
    reload_done_fn done;
    void *ud;
} reload_job;

static bool running;       /* loop thread only */

static void reload_work(uv_work_t *w) {
    reload_job *j = w->data;
    j->rc = config_load(j->path, &j->next, j->err, sizeof(j->err));
}

static void reload_after(uv_work_t *w, int status) {
    reload_job *j = w->data;
    running = false;
    bool ok = status == 0 && j->rc == CONFIG_OK;
    if (ok) {
        config *old = config_holder_get(j->holder);
        /* Connections to Redis and PostgreSQL are made once; say so rather than pretend. */
        if (strcmp(old->redis, j->next->redis) != 0 || strcmp(old->postgres, j->next->postgres) != 0)
            nm_log(NM_LOG_WARN, "redis or postgres changed: restart to use the new address", NULL);
        config_free(old);
        config_holder_set(j->holder, j->next);
        char gen[24];
        snprintf(gen, sizeof(gen), "%lu", config_holder_generation(j->holder));
        nm_log(NM_LOG_INFO, "configuration reloaded", "file", j->path, "generation", gen, NULL);
    } else {
        nm_log(NM_LOG_ERROR, "configuration not reloaded; keeping the running one", "error",
               status == 0 ? j->err : uv_strerror(status), NULL);
        config_free(j->next);
    }
    if (j->done) j->done(j->ud, ok);
    free(j);
}

int reload_start(uv_loop_t *loop, config_holder *h, reload_done_fn done, void *ud) {
    if (running) return 0;
    reload_job *j = calloc(1, sizeof(*j));
    if (!j) return -1;
    config *cur = config_holder_get(h);
    snprintf(j->path, sizeof(j->path), "%s", cur->path);
    config_free(cur);
    j->holder = h;
    j->done = done;
    j->ud = ud;
    j->work.data = j;
    if (uv_queue_work(loop, &j->work, reload_work, reload_after) != 0) {
        free(j);
        return -1;
    }
    running = true;
    nm_log(NM_LOG_INFO, "reloading configuration", "file", j->path, NULL);
    return 0;
}
