/* Fuzzes slack_ws_url_parse (bot/slack_socket.c): the input, made a
 * NUL-terminated string, is parsed into heap buffers of exact sizes (so
 * ASan sees any byte written past them), small and large. On success the
 * outputs must be NUL-terminated within their buffers, the port in
 * 1..65535, the host non-empty without '@' or blanks, the path starting
 * with '/' without a fragment or control bytes; and whatever fits the small
 * buffers must parse the same with the large ones. Seeds in
 * corpus/fuzz_ws_url/ are URLs shaped as in chat-protocols.md A2.1. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "slack_socket.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SMALL_HOST 8
#define SMALL_PATH 8
#define LARGE_HOST 256    /* slack_socket.c's connection slot */
#define LARGE_PATH 1024

typedef struct out {
    bool tls;
    int port;
    char *host, *path;
    size_t hostlen, pathlen;
} out;

static int parse(const char *url, out *o) {
    o->tls = false;
    o->port = -1;
    return slack_ws_url_parse(url, &o->tls, o->host, o->hostlen, &o->port, o->path, o->pathlen);
}

static void check(const char *url, const out *o) {
    size_t hl = strnlen(o->host, o->hostlen), pl = strnlen(o->path, o->pathlen);
    if (hl >= o->hostlen || pl >= o->pathlen) __builtin_trap();   /* NUL-terminated within the buffer */
    if (o->port < 1 || o->port > 65535) __builtin_trap();
    if (o->tls != (strncmp(url, "wss://", 6) == 0)) __builtin_trap();
    if (hl == 0 || o->path[0] != '/') __builtin_trap();
    for (size_t i = 0; i < hl; i++)
        if (o->host[i] == '@' || (unsigned char)o->host[i] < 0x21) __builtin_trap();
    for (size_t i = 0; i < pl; i++)
        if (o->path[i] == '#' || (unsigned char)o->path[i] < 0x21 || o->path[i] == 0x7f) __builtin_trap();
    /* What comes back was in the URL: the host, and the path less the "/" the parser may add. */
    if (!strstr(url, o->host)) __builtin_trap();
    if (!strstr(url, o->path) && !strstr(url, o->path + 1)) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return 0;
    char *url = malloc(size + 1);
    if (!url) return 0;
    memcpy(url, data, size);
    url[size] = '\0';
    out small = {.hostlen = SMALL_HOST, .pathlen = SMALL_PATH}, large = {.hostlen = LARGE_HOST, .pathlen = LARGE_PATH};
    small.host = malloc(SMALL_HOST);
    small.path = malloc(SMALL_PATH);
    large.host = malloc(LARGE_HOST);
    large.path = malloc(LARGE_PATH);
    if (small.host && small.path && large.host && large.path) {
        int rs = parse(url, &small), rl = parse(url, &large);
        if ((rs != 0 && rs != -1) || (rl != 0 && rl != -1)) __builtin_trap();
        if (rs == 0) check(url, &small);
        if (rl == 0) check(url, &large);
        if (rs == 0 && (rl != 0 || small.tls != large.tls || small.port != large.port ||
                        strcmp(small.host, large.host) != 0 || strcmp(small.path, large.path) != 0))
            __builtin_trap();
        /* A buffer of one byte fits no host and no path: refused, nothing past it written. */
        char one_h[1], one_p[1];
        bool tls;
        int port;
        if (slack_ws_url_parse(url, &tls, one_h, 1, &port, large.path, LARGE_PATH) != -1) __builtin_trap();
        if (slack_ws_url_parse(url, &tls, large.host, LARGE_HOST, &port, one_p, 1) != -1) __builtin_trap();
    }
    free(small.host);
    free(small.path);
    free(large.host);
    free(large.path);
    free(url);
    return 0;
}
