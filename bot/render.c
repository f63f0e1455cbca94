#include "render.h"

#include <inttypes.h>
#include <string.h>

void render_cmd_error(const cmd_error *err, nm_buf *out) {
    nm_buf_printf(out, "error: %s [%s]\n", err->message, cmd_err_tag(err->code));
    if (err->usage && *err->usage) nm_buf_printf(out, "usage: %s\n", err->usage);
}

void render_request_line(int64_t id, const char *state, const char *kind, const char *job, const char *version,
                         const char *env, nm_buf *out) {
    nm_buf_printf(out, "D-%" PRId64 " %s: %s %s %s to %s\n", id, state, kind, job, version, env);
}

static const char *str(const json_object *o, const char *key) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string)) return "";
    return json_object_get_string(v);
}

static int64_t num(const json_object *o, const char *key, int64_t dflt) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int)) return dflt;
    return json_object_get_int64(v);
}

static void render_request(const json_object *ev, nm_buf *out) {
    const char *state = str(ev, "state"), *phase = str(ev, "phase"), *reason = str(ev, "reason");
    const char *detail = str(ev, "detail");
    int64_t id = num(ev, "req", 0), version = num(ev, "job_version", -1);

    nm_buf_printf(out, "D-%" PRId64 " %s", id, state);
    if (*phase) nm_buf_printf(out, " (%s)", phase);
    if (*reason) nm_buf_printf(out, " [%s]", reason);
    nm_buf_appends(out, ":");
    if (strcmp(state, "succeeded") == 0)
        nm_buf_printf(out, " %s %s is live in %s", str(ev, "job"), str(ev, "version"), str(ev, "env"));
    else if (strcmp(phase, "registering") == 0)
        nm_buf_printf(out, " registering %s %s in %s", str(ev, "job"), str(ev, "version"), str(ev, "env"));
    if (version >= 0) nm_buf_printf(out, " (job version %" PRId64 ")", version);
    if (*detail) nm_buf_printf(out, " %s", detail);
    nm_buf_appends(out, "\n");
}

static void render_status(const json_object *ev, nm_buf *out) {
    const char *err = str(ev, "error");
    if (*err) {
        nm_buf_printf(out, "status %s: %s\n", str(ev, "job"), err);
        return;
    }
    nm_buf_printf(out, "%s:\n", str(ev, "job"));
    json_object *envs;
    if (!json_object_object_get_ex(ev, "envs", &envs) || !json_object_is_type(envs, json_type_array)) return;
    for (size_t i = 0; i < json_object_array_length(envs); i++) {
        const json_object *e = json_object_array_get_idx(envs, i);
        const char *eerr = str(e, "error");
        nm_buf_printf(out, "  %-12s ", str(e, "env"));
        if (*eerr) {
            nm_buf_printf(out, "%s\n", eerr);
            continue;
        }
        const char *version = str(e, "version");
        json_object *stable;
        bool is_stable = json_object_object_get_ex(e, "stable", &stable) && json_object_get_boolean(stable);
        nm_buf_printf(out, "%-10s job version %" PRId64 "%s", *version ? version : str(e, "image"),
                      num(e, "job_version", -1), is_stable ? ", stable" : "");
        json_object *dep;
        if (json_object_object_get_ex(e, "deployment", &dep) && json_object_is_type(dep, json_type_object))
            nm_buf_printf(out, "; deployment %s (%s)", str(dep, "status"), str(dep, "counts"));
        nm_buf_appends(out, "\n");
    }
}

int render_event_console(const json_object *ev, nm_buf *out) {
    if (!ev || !json_object_is_type(ev, json_type_object)) return -1;
    const char *type = str(ev, "type");
    if (strcmp(type, "request") == 0) render_request(ev, out);
    else if (strcmp(type, "status") == 0) render_status(ev, out);
    else return -1;
    return 0;
}
