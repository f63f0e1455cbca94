/* Fuzzes nomad/'s pure side: strict JSON parsing, every decoder on the same
 * bytes, and the job patch functions on whatever parsed. Seeds in
 * corpus/fuzz_nomad_decode/ are answers shaped like Nomad's. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nomad.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *body = (const char *)data;
    char err[256];

    nomad_register_result reg;
    if (nomad_decode_register(body, size, &reg, err, sizeof(err)) == NOMAD_OK &&
        (strlen(reg.eval_id) >= sizeof(reg.eval_id) || strlen(reg.warnings) >= sizeof(reg.warnings)))
        __builtin_trap();

    nomad_eval ev;
    if (nomad_decode_eval(body, size, &ev, err, sizeof(err)) == NOMAD_OK) {
        if (!ev.id[0]) __builtin_trap();   /* ID is required */
        (void)nomad_eval_terminal(&ev);
    }

    nomad_deployment d;
    if (nomad_decode_deployment(body, size, &d, err, sizeof(err)) == NOMAD_OK) {
        if (d.n_groups > NOMAD_MAX_GROUPS || !d.id[0]) __builtin_trap();
        for (size_t i = 0; i < d.n_groups; i++)
            if (d.groups[i].healthy_allocs < 0 || d.groups[i].desired_total < 0) __builtin_trap();
        (void)nomad_deployment_terminal(&d);
    }

    nomad_version_list vl;
    if (nomad_decode_job_versions(body, size, "app", &vl, err, sizeof(err)) == NOMAD_OK) {
        if (vl.n > NOMAD_MAX_VERSIONS || vl.n > vl.n_total) __builtin_trap();
        for (size_t i = 0; i < vl.n; i++)
            if (strlen(vl.v[i].image) >= sizeof(vl.v[i].image)) __builtin_trap();
    }

    nomad_plan plan;
    if (nomad_decode_plan(body, size, &plan, err, sizeof(err)) == NOMAD_OK) {
        if (plan.n_groups > NOMAD_MAX_GROUPS) __builtin_trap();
        for (size_t i = 0; i < plan.n_groups; i++)
            if (!plan.groups[i].name[0]) __builtin_trap();
    }

    nomad_deployment_update up;
    if (nomad_decode_deployment_update(body, size, &up, err, sizeof(err)) == NOMAD_OK && !up.reverted &&
        up.reverted_job_version != 0)
        __builtin_trap();

    static nomad_alloc allocs[4];
    size_t n = 0, total = 0;
    if (nomad_decode_allocations(body, size, allocs, 4, &n, &total, err, sizeof(err)) == NOMAD_OK) {
        if (n > 4 || n > total) __builtin_trap();
        for (size_t i = 0; i < n; i++) {
            if (!allocs[i].id[0] || allocs[i].n_tasks > NOMAD_MAX_TASKS) __builtin_trap();
            if (i > 0 && allocs[i - 1].create_index < allocs[i].create_index) __builtin_trap();
        }
        if (nomad_decode_deployment(body, size, &d, err, sizeof(err)) == NOMAD_OK) __builtin_trap();   /* array */
    }

    static nomad_deployment deps[3];
    if (nomad_decode_deployments(body, size, deps, 3, &n, &total, err, sizeof(err)) == NOMAD_OK) {
        if (n > 3 || n > total) __builtin_trap();
        for (size_t i = 1; i < n; i++)
            if (deps[i - 1].create_index < deps[i].create_index) __builtin_trap();
        if (n > 0) nomad_deployment_count_canaries(&deps[0], allocs, 0);
    }

    bool is_null = false;
    json_object *o = nomad_json_parse(body, size, &is_null, err, sizeof(err));
    if (o) (void)nomad_decode_plan_obj(o, &plan, err, sizeof(err));
    if (o && is_null) __builtin_trap();
    if (!o) return 0;

    nomad_job_info info;
    (void)nomad_decode_job_info(o, &info, err, sizeof(err));
    (void)nomad_decode_deployment_obj(o, &d, err, sizeof(err));

    /* Patch whatever parsed; a successful set_image must be readable back. */
    char *names[] = {"app", "web"};
    config_strv tasks = {.v = names, .n = 2};
    if (nomad_job_set_image(o, &tasks, "registry.example/web:2", err, sizeof(err)) == NOMAD_OK) {
        const char *img = nomad_job_task_image(o, "app");
        if (!img || strcmp(img, "registry.example/web:2") != 0) __builtin_trap();
    } else {
        (void)nomad_job_task_image(o, "app");
    }
    (void)nomad_job_set_meta(o, "nomatron.request_id", "D-1");
    (void)json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    json_object_put(o);
    return 0;
}
