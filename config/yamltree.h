/* A small document tree built from libyaml's event stream, so the schema
 * walker in config.c can look keys up and report the line of every value.
 *
 * Only what a configuration file needs: mappings, sequences and scalars.
 * Anchors, aliases and explicit tags are refused (an alias can expand a
 * small file into a huge one, and tags change meaning silently). Depth and
 * node count have ceilings. Pure: bytes in, tree or error out. */
#ifndef NM_YAMLTREE_H
#define NM_YAMLTREE_H

#include <stdbool.h>
#include <stddef.h>

#define YT_MAX_DEPTH 32
#define YT_MAX_NODES 100000

enum yt_type { YT_SCALAR, YT_SEQ, YT_MAP };

typedef struct yt_node yt_node;
struct yt_node {
    enum yt_type type;
    int line;               /* 1-based */
    char *text;             /* YT_SCALAR: owned, NUL-terminated (may hold NULs: see len) */
    size_t len;
    bool plain;             /* scalar written without quotes (so `~`/`null` mean null) */
    yt_node **items;        /* YT_SEQ: values; YT_MAP: key, value, key, value ... (owned) */
    size_t n;               /* number of entries in items */
    size_t cap;
};

/* Parses text into *out (owned by the caller: yt_free). An empty document
 * yields an empty mapping. On error returns -1 with "line N: reason" in err. */
int yt_parse(const char *text, size_t len, yt_node **out, char *err, size_t errlen);
void yt_free(yt_node *n);

/* The value for `key` in a mapping, or NULL. */
const yt_node *yt_get(const yt_node *map, const char *key);

#endif
