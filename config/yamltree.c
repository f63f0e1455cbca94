/* libyaml event stream -> yt_node tree. See yamltree.h. */
#include "yamltree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

void yt_free(yt_node *n) {
    if (!n) return;
    for (size_t i = 0; i < n->n; i++) yt_free(n->items[i]);
    free(n->items);
    free(n->text);
    free(n);
}

const yt_node *yt_get(const yt_node *map, const char *key) {
    if (!map || map->type != YT_MAP) return NULL;
    for (size_t i = 0; i + 1 < map->n; i += 2)
        if (strcmp(map->items[i]->text, key) == 0) return map->items[i + 1];
    return NULL;
}

static int push_item(yt_node *parent, yt_node *child) {
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 4;
        yt_node **items = realloc(parent->items, cap * sizeof(*items));
        if (!items) return -1;
        parent->items = items;
        parent->cap = cap;
    }
    parent->items[parent->n++] = child;
    return 0;
}

static yt_node *new_node(enum yt_type type, int line) {
    yt_node *n = calloc(1, sizeof(*n));
    if (n) {
        n->type = type;
        n->line = line;
    }
    return n;
}

int yt_parse(const char *text, size_t len, yt_node **out, char *err, size_t errlen) {
    yaml_parser_t parser;
    yaml_event_t ev;
    yt_node *stack[YT_MAX_DEPTH + 1];
    size_t depth = 0, nodes = 0;
    yt_node *root = NULL;
    int rc = -1, done = 0, docs = 0;

    *out = NULL;
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "line 1: out of memory");
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);

    while (!done) {
        if (!yaml_parser_parse(&parser, &ev)) {
            snprintf(err, errlen, "line %zu: %s%s%s", parser.problem_mark.line + 1,
                     parser.problem ? parser.problem : "invalid YAML", parser.context ? " " : "",
                     parser.context ? parser.context : "");
            goto out;
        }
        int line = (int)ev.start_mark.line + 1;
        yt_node *node = NULL;
        bool opens = false;

        switch (ev.type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            break;
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1) {
                snprintf(err, errlen, "line %d: only one YAML document is allowed", line);
                yaml_event_delete(&ev);
                goto out;
            }
            break;
        case YAML_ALIAS_EVENT:
            snprintf(err, errlen, "line %d: YAML aliases are not allowed", line);
            yaml_event_delete(&ev);
            goto out;
        case YAML_SCALAR_EVENT:
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            const yaml_char_t *anchor = ev.type == YAML_SCALAR_EVENT ? ev.data.scalar.anchor
                                      : ev.type == YAML_SEQUENCE_START_EVENT ? ev.data.sequence_start.anchor
                                                                             : ev.data.mapping_start.anchor;
            const yaml_char_t *tag = ev.type == YAML_SCALAR_EVENT ? ev.data.scalar.tag
                                   : ev.type == YAML_SEQUENCE_START_EVENT ? ev.data.sequence_start.tag
                                                                          : ev.data.mapping_start.tag;
            if (anchor) {
                snprintf(err, errlen, "line %d: YAML anchors are not allowed", line);
                yaml_event_delete(&ev);
                goto out;
            }
            if (tag) {
                snprintf(err, errlen, "line %d: YAML tags are not allowed", line);
                yaml_event_delete(&ev);
                goto out;
            }
            if (++nodes > YT_MAX_NODES) {
                snprintf(err, errlen, "line %d: too many YAML nodes (limit %d)", line, YT_MAX_NODES);
                yaml_event_delete(&ev);
                goto out;
            }
            if (ev.type == YAML_SCALAR_EVENT) {
                node = new_node(YT_SCALAR, line);
                if (node) {
                    node->len = ev.data.scalar.length;
                    node->text = malloc(node->len + 1);
                    if (node->text) {
                        memcpy(node->text, ev.data.scalar.value, node->len);
                        node->text[node->len] = '\0';
                    }
                    node->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
                }
                if (node && !node->text) {
                    yt_free(node);
                    node = NULL;
                }
            } else {
                node = new_node(ev.type == YAML_SEQUENCE_START_EVENT ? YT_SEQ : YT_MAP, line);
                opens = true;
            }
            if (!node) {
                snprintf(err, errlen, "line %d: out of memory", line);
                yaml_event_delete(&ev);
                goto out;
            }
            if (depth == 0) {
                if (root) { /* cannot happen with one document; defensive */
                    yt_free(node);
                    snprintf(err, errlen, "line %d: more than one top-level value", line);
                    yaml_event_delete(&ev);
                    goto out;
                }
                root = node;
            } else {
                yt_node *parent = stack[depth - 1];
                /* Mapping keys must be scalars: a complex key cannot name a setting. */
                if (parent->type == YT_MAP && parent->n % 2 == 0 && node->type != YT_SCALAR) {
                    yt_free(node);
                    snprintf(err, errlen, "line %d: mapping keys must be plain words", line);
                    yaml_event_delete(&ev);
                    goto out;
                }
                if (push_item(parent, node) != 0) {
                    yt_free(node);
                    snprintf(err, errlen, "line %d: out of memory", line);
                    yaml_event_delete(&ev);
                    goto out;
                }
                if (parent->type == YT_MAP && parent->n % 2 == 1) {
                    /* A key just arrived: refuse duplicates (YAML says they are an error). */
                    for (size_t i = 0; i + 2 < parent->n; i += 2) {
                        if (strcmp(parent->items[i]->text, node->text) == 0) {
                            snprintf(err, errlen, "line %d: duplicate key '%.64s'", line, node->text);
                            yaml_event_delete(&ev);
                            goto out;
                        }
                    }
                }
            }
            if (opens) {
                if (depth >= YT_MAX_DEPTH) {
                    snprintf(err, errlen, "line %d: nesting deeper than %d levels", line, YT_MAX_DEPTH);
                    yaml_event_delete(&ev);
                    goto out;
                }
                stack[depth++] = node;
            }
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (depth > 0) depth--;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    if (!root) {
        root = new_node(YT_MAP, 1);
        if (!root) {
            snprintf(err, errlen, "line 1: out of memory");
            goto out;
        }
    }
    *out = root;
    root = NULL;
    rc = 0;
out:
    yt_free(root);
    yaml_parser_delete(&parser);
    return rc;
}
