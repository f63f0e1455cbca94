/* The command tokenizer: bounded, quote-aware, UTF-8 strict. Pure.
 *
 * Words are separated by blanks (space, tab). "double" and 'single' quotes
 * group words; inside double quotes a backslash escapes the next character.
 * Chat clients turn straight quotes into typographic ones (“ ” ‘ ’), so those
 * pair up as quotes too. Every byte is checked before anything else: invalid
 * UTF-8 (overlong forms, surrogates, > U+10FFFF) and control bytes are refused
 * whole, because a command that cannot be echoed safely cannot be audited. */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "str.h"

const char *cmd_err_tag(enum cmd_err code) {
    switch (code) {
    case CMD_OK: return "ok";
    case CMD_ERR_EMPTY: return "empty";
    case CMD_ERR_TOO_LONG: return "too_long";
    case CMD_ERR_TOO_MANY_ARGS: return "too_many_args";
    case CMD_ERR_BAD_UTF8: return "bad_utf8";
    case CMD_ERR_UNBALANCED_QUOTE: return "unbalanced_quote";
    case CMD_ERR_UNKNOWN_COMMAND: return "unknown_command";
    case CMD_ERR_MISSING_ARG: return "missing_arg";
    case CMD_ERR_EXTRA_ARG: return "extra_arg";
    case CMD_ERR_EXPECTED_WORD: return "expected_word";
    case CMD_ERR_BAD_NAME: return "bad_name";
    case CMD_ERR_BAD_VERSION: return "bad_version";
    case CMD_ERR_BAD_FLAG: return "bad_flag";
    case CMD_ERR_BAD_ID: return "bad_id";
    case CMD_ERR_UNKNOWN_JOB: return "unknown_job";
    case CMD_ERR_UNKNOWN_ENV: return "unknown_env";
    case CMD_ERR_NOT_AVAILABLE: return "not_available";
    }
    return "unknown";
}

static enum cmd_err fail(cmd_error *err, enum cmd_err code, const char *msg) {
    if (err) {
        err->code = code;
        snprintf(err->message, sizeof(err->message), "%s", msg);
        err->usage = cmd_general_usage();
    }
    return code;
}

/* The quote that opens at s, if any: its closing bytes and their length. */
static size_t quote_open(const char *s, size_t n, const char **close) {
    if (s[0] == '"') { *close = "\""; return 1; }
    if (s[0] == '\'') { *close = "'"; return 1; }
    if (n >= 3 && memcmp(s, "\xe2\x80\x9c", 3) == 0) { *close = "\xe2\x80\x9d"; return 3; }  /* “ … ” */
    if (n >= 3 && memcmp(s, "\xe2\x80\x98", 3) == 0) { *close = "\xe2\x80\x99"; return 3; }  /* ‘ … ’ */
    return 0;
}

enum cmd_err cmd_tokenize(const char *text, size_t len, cmd_tokens *out, cmd_error *err) {
    out->argc = 0;
    if (len > CMD_MAX_TEXT) {
        char m[96];
        snprintf(m, sizeof(m), "command text is over %d bytes; nothing was done", CMD_MAX_TEXT);
        return fail(err, CMD_ERR_TOO_LONG, m);
    }
    /* Pass 1: the whole text must be clean UTF-8 without control bytes. A
     * trailing CR or LF (pasted lines) is tolerated and dropped. */
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r')) len--;
    for (size_t i = 0; i < len;) {
        const unsigned char *u = (const unsigned char *)text + i;
        if ((u[0] < 0x20 && u[0] != '\t') || u[0] == 0x7f)
            return fail(err, CMD_ERR_BAD_UTF8, "the command contains a control character");
        size_t l = nm_utf8_seq(u, len - i);
        if (l == 0) return fail(err, CMD_ERR_BAD_UTF8, "the command is not valid UTF-8");
        i += l;
    }

    /* Pass 2: split. Output never exceeds input plus one NUL per word. */
    char *w = out->storage;
    size_t i = 0;
    for (;;) {
        while (i < len && (text[i] == ' ' || text[i] == '\t')) i++;
        if (i >= len) break;
        if (out->argc == CMD_MAX_ARGS) {
            char m[64];
            snprintf(m, sizeof(m), "more than %d words", CMD_MAX_ARGS);
            return fail(err, CMD_ERR_TOO_MANY_ARGS, m);
        }
        out->argv[out->argc] = w;
        out->quoted[out->argc] = false;
        while (i < len && text[i] != ' ' && text[i] != '\t') {
            const char *close;
            size_t ql = quote_open(text + i, len - i, &close);
            if (ql == 0) {
                *w++ = text[i++];
                continue;
            }
            if (w == out->argv[out->argc]) out->quoted[out->argc] = true;   /* opens with a quote */
            bool dq = close[0] == '"';
            size_t cl = strlen(close);
            i += ql;
            for (;;) {
                if (i >= len) return fail(err, CMD_ERR_UNBALANCED_QUOTE, "a quote is not closed");
                if (len - i >= cl && memcmp(text + i, close, cl) == 0) {
                    i += cl;
                    break;
                }
                if (dq && text[i] == '\\' && i + 1 < len) i++;
                *w++ = text[i++];
            }
        }
        *w++ = '\0';
        out->argc++;
    }
    return CMD_OK;
}
