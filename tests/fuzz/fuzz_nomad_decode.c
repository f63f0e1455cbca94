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

    bool is_null = false;
    json_object *o = nomad_json_parse(body, size, &is_null, err, sizeof(err));
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
