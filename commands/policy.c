/* Identity and permission decisions. See policy.h. */
#include "policy.h"

#include <string.h>

const config_person *policy_person(const config *cfg, const char *identity) {
    for (size_t i = 0; identity && i < cfg->n_people; i++)
        for (size_t k = 0; k < cfg->people[i].identities.n; k++)
            if (strcmp(cfg->people[i].identities.v[k], identity) == 0) return &cfg->people[i];
    return NULL;
}

/* Does one entry (person name or raw identity) name this identity? */
static bool names(const config_person *person, const char *entry, const char *identity) {
    if (strcmp(entry, identity) == 0) return true;
    return person && strcmp(person->name, entry) == 0;
}

bool policy_in_group(const config *cfg, const config_group *group, const char *identity) {
    const config_person *person = policy_person(cfg, identity);
    for (size_t m = 0; m < group->members.n; m++)
        if (names(person, group->members.v[m], identity)) return true;
    return false;
}

bool policy_in(const config *cfg, const config_strv *who, const char *identity) {
    if (!identity || !*identity) return false;
    const config_person *person = policy_person(cfg, identity);
    for (size_t i = 0; i < who->n; i++) {
        const char *entry = who->v[i];
        if (names(person, entry, identity)) return true;
        for (size_t g = 0; g < cfg->n_groups; g++)
            if (strcmp(cfg->groups[g].name, entry) == 0 && policy_in_group(cfg, &cfg->groups[g], identity))
                return true;
    }
    return false;
}

bool policy_may_deploy(const config *cfg, const config_env *env, const char *identity) {
    if (!identity || !*identity) return false;
    return env->deployers.n == 0 || policy_in(cfg, &env->deployers, identity);
}

bool policy_may_approve(const config *cfg, const config_env *env, const char *identity) {
    return policy_in(cfg, &env->approvers, identity);
}

bool policy_channel_allowed(const config_env *env, const char *channel) {
    if (env->channels.n == 0) return true;
    for (size_t i = 0; channel && i < env->channels.n; i++)
        if (strcmp(env->channels.v[i], channel) == 0) return true;
    return false;
}
