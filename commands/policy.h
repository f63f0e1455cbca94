/* Who is who, and who may do what where (SPEC §4, §5). Pure decisions over
 * a config snapshot: identity in, answer out. The governance rules
 * (approvals, freezes, promotion evidence) grow here; nothing in this file
 * does I/O.
 *
 * A list of "who" (deployers, approvers, group members) holds group names,
 * person names or raw identities ("slack:U01BBBB"). A person is matched
 * through any of their identities. */
#ifndef NM_POLICY_H
#define NM_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* The person an identity belongs to, or NULL. Borrowed from cfg. */
const config_person *policy_person(const config *cfg, const char *identity);

/* True if `identity` is named by `who` directly, through its person, or
 * through a group (groups hold people or raw identities). */
bool policy_in(const config *cfg, const config_strv *who, const char *identity);

/* True if `identity` is a member of group `group`. */
bool policy_in_group(const config *cfg, const config_group *group, const char *identity);

/* Deployers: an environment without a `deployers` list takes requests from
 * anyone who can reach nomatron (a development setup); with one, only from
 * those it names. */
bool policy_may_deploy(const config *cfg, const config_env *env, const char *identity);
/* Approvers: nobody approves where `approvers` is empty. */
bool policy_may_approve(const config *cfg, const config_env *env, const char *identity);
/* Channels: an environment without `channels` accepts commands from any channel. */
bool policy_channel_allowed(const config_env *env, const char *channel);

#endif
