/* nomad/patch.c: edits a job as read back from GET /v1/job/:id before it is
 * registered again. Pure; the job object is the caller's. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nomad.h"

static int invalid(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int invalid(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return NOMAD_ERR_INVALID;
}

static json_object *member(const json_object *o, const char *key, json_type type) {
    json_object *v = NULL;
    if (!o || !json_object_is_type(o, json_type_object)) return NULL;
    if (!json_object_object_get_ex((json_object *)o, key, &v) || !json_object_is_type(v, type)) return NULL;
    return v;
}

/* Calls fn on each task object named `name`, in every group. Returns how
 * many matched, or -1 when fn fails. */
typedef int (*task_fn)(json_object *task, void *ud);

static int for_each_task(const json_object *job, const char *name, task_fn fn, void *ud) {
    json_object *groups = member(job, "TaskGroups", json_type_array);
    if (!groups) return 0;
    int found = 0;
    size_t ng = json_object_array_length(groups);
    for (size_t g = 0; g < ng; g++) {
        json_object *tasks = member(json_object_array_get_idx(groups, g), "Tasks", json_type_array);
        if (!tasks) continue;
        size_t nt = json_object_array_length(tasks);
        for (size_t t = 0; t < nt; t++) {
            json_object *task = json_object_array_get_idx(tasks, t);
            json_object *tn = member(task, "Name", json_type_string);
            if (!tn || strcmp(json_object_get_string(tn), name) != 0) continue;
            found++;
            if (fn && fn(task, ud) != 0) return -1;
        }
    }
    return found;
}

static int has_config(json_object *task, void *ud) {
    (void)ud;
    return member(task, "Config", json_type_object) ? 0 : -1;
}

static int put_image(json_object *task, void *ud) {
    json_object *cfg = member(task, "Config", json_type_object);
    json_object *img = json_object_new_string((const char *)ud);
    if (!cfg || !img) {
        json_object_put(img);
        return -1;
    }
    return json_object_object_add(cfg, "image", img) == 0 ? 0 : -1;
}

int nomad_job_set_image(json_object *job, const config_strv *tasks, const char *image_ref, char *err,
                        size_t errlen) {
    if (err && errlen) err[0] = '\0';
    if (!job || !json_object_is_type(job, json_type_object)) return invalid(err, errlen, "the job is not an object");
    if (!image_ref || !image_ref[0]) return invalid(err, errlen, "no image to set");
    if (!tasks || tasks->n == 0) return invalid(err, errlen, "no task named to set the image of");
    if (!member(job, "TaskGroups", json_type_array)) return invalid(err, errlen, "the job has no TaskGroups");
    /* Check every named task first so a failure leaves the job untouched. */
    for (size_t i = 0; i < tasks->n; i++) {
        int n = for_each_task(job, tasks->v[i], has_config, NULL);
        if (n == 0) return invalid(err, errlen, "task %s is not in the job", tasks->v[i]);
        if (n < 0) return invalid(err, errlen, "task %s has no Config object", tasks->v[i]);
    }
    for (size_t i = 0; i < tasks->n; i++)
        if (for_each_task(job, tasks->v[i], put_image, (void *)image_ref) < 0) {
            if (err && errlen) snprintf(err, errlen, "out of memory");
            return NOMAD_ERR_NOMEM;
        }
    return NOMAD_OK;
}

static int first_image(json_object *task, void *ud) {
    const char **out = ud;
    json_object *img = member(member(task, "Config", json_type_object), "image", json_type_string);
    *out = img ? json_object_get_string(img) : NULL;
    return -1;   /* stop at the first task of that name */
}

const char *nomad_job_task_image(const json_object *job, const char *task) {
    const char *image = NULL;
    if (!job || !task) return NULL;
    for_each_task(job, task, first_image, &image);
    return image;
}

int nomad_job_set_meta(json_object *job, const char *key, const char *value) {
    if (!job || !key || !value || !json_object_is_type(job, json_type_object)) return NOMAD_ERR_INVALID;
    json_object *meta = NULL;
    if (json_object_object_get_ex(job, "Meta", &meta) && meta) {
        if (!json_object_is_type(meta, json_type_object)) return NOMAD_ERR_INVALID;
    } else {
        /* Meta is null on jobs registered without one (nil map). */
        meta = json_object_new_object();
        if (!meta) return NOMAD_ERR_NOMEM;
        if (json_object_object_add(job, "Meta", meta) != 0) {
            json_object_put(meta);
            return NOMAD_ERR_NOMEM;
        }
    }
    json_object *v = json_object_new_string(value);
    if (!v) return NOMAD_ERR_NOMEM;
    if (json_object_object_add(meta, key, v) != 0) {
        json_object_put(v);
        return NOMAD_ERR_NOMEM;
    }
    return NOMAD_OK;
}

/* --canary N: every task group's Update.Canary (an Update block is created
 * when the group has none). N = 0 turns canaries off for this deploy. */
int nomad_job_set_canary(json_object *job, int n, char *err, size_t errlen) {
    json_object *groups;
    if (!json_object_object_get_ex(job, "TaskGroups", &groups) || !json_object_is_type(groups, json_type_array)) {
        snprintf(err, errlen, "the job has no task groups");
        return NOMAD_ERR_INVALID;
    }
    for (size_t i = 0; i < json_object_array_length(groups); i++) {
        json_object *g = json_object_array_get_idx(groups, i), *u = NULL;
        if (!json_object_is_type(g, json_type_object)) continue;
        if (!json_object_object_get_ex(g, "Update", &u) || !json_object_is_type(u, json_type_object)) {
            u = json_object_new_object();
            json_object_object_add(g, "Update", u);
        }
        json_object_object_add(u, "Canary", json_object_new_int(n));
    }
    return NOMAD_OK;
}
