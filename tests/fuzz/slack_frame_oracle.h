/* See slack_frame_oracle.c. */
#ifndef NM_SLACK_FRAME_ORACLE_H
#define NM_SLACK_FRAME_ORACLE_H

#include <stdbool.h>
#include <stddef.h>

#include "slack_proto.h"

/* slack_frame_parse as json-c did it: same contract. */
int slack_frame_parse_oracle(const char *json, size_t len, slack_frame *out, char *err, size_t errlen);

/* True when len bytes are one strict RFC 8259 JSON text (UTF-8 checked, no
 * depth limit): an independent referee for where json-c is lenient. */
bool json_strict_valid(const char *json, size_t len);

#endif
