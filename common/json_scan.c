/* See json_scan.h. */
#include "json_scan.h"

#include <string.h>

#include "str.h"

static int read_string(json_scan *s, char *dst, size_t cap, size_t *len, bool *has_nul);

static int fail(json_scan *s, const char *at, const char *what) {
    if (!s->failed) {
        s->failed = true;
        s->err_at = (size_t)(at - s->base);
        s->err_what = what;
    }
    return -1;
}

void json_scan_init(json_scan *s, const char *json, size_t len, int max_depth) {
    memset(s, 0, sizeof(*s));
    s->base = s->p = json ? json : "";
    s->end = s->p + (json ? len : 0);
    if (max_depth < 1) max_depth = 1;
    if (max_depth > JSON_SCAN_MAX_DEPTH) max_depth = JSON_SCAN_MAX_DEPTH;
    s->max_depth = max_depth;
}

static void skip_ws(json_scan *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t')) s->p++;
}

enum json_scan_type json_scan_peek(json_scan *s) {
    skip_ws(s);
    if (s->failed || s->p == s->end) return JSON_SCAN_NONE;
    switch (*s->p) {
    case '{': return JSON_SCAN_OBJECT;
    case '[': return JSON_SCAN_ARRAY;
    case '"': return JSON_SCAN_STRING;
    case 't': return JSON_SCAN_TRUE;
    case 'f': return JSON_SCAN_FALSE;
    case 'n': return JSON_SCAN_NULL;
    case '-':
    case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': case '8': case '9':
        return JSON_SCAN_NUMBER;
    default: return JSON_SCAN_NONE;
    }
}

int json_scan_enter(json_scan *s) {
    enum json_scan_type t = json_scan_peek(s);
    if (s->failed) return -1;
    if (t != JSON_SCAN_OBJECT && t != JSON_SCAN_ARRAY)
        return fail(s, s->p, s->p == s->end ? "unexpected end of data" : "expected an object or an array");
    if (s->depth >= s->max_depth) return fail(s, s->p, "nesting too deep");
    uint64_t bit = (uint64_t)1 << s->depth;
    s->objects = t == JSON_SCAN_OBJECT ? s->objects | bit : s->objects & ~bit;
    s->depth++;
    s->first = true;
    s->p++;
    return 0;
}

/* Shared by next_key and next_item: 1 when a member follows (',' eaten), 0
 * when `close` ended the container. */
static int next_member(json_scan *s, char close) {
    if (s->failed) return -1;
    skip_ws(s);
    if (s->p == s->end) return fail(s, s->p, "unexpected end of data");
    if (*s->p == close) {
        s->p++;
        s->depth--;
        s->first = false;   /* the parent now has at least this member */
        return 0;
    }
    if (!s->first) {
        if (*s->p != ',') return fail(s, s->p, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
        s->p++;
        skip_ws(s);
    }
    s->first = false;
    return 1;
}

int json_scan_next_key(json_scan *s, char *key, size_t cap, size_t *len) {
    if (!s->failed && (s->depth == 0 || !(s->objects >> (s->depth - 1) & 1)))
        return fail(s, s->p, "not inside an object");
    int r = next_member(s, '}');
    if (r <= 0) return r;
    if (s->p == s->end || *s->p != '"') return fail(s, s->p, "expected a quoted key");
    if (read_string(s, key, cap, len, NULL) < 0) return -1;   /* a key is no value: no level of its own */
    skip_ws(s);
    if (s->p == s->end || *s->p != ':') return fail(s, s->p, "expected ':'");
    s->p++;
    skip_ws(s);
    return 1;
}

int json_scan_next_item(json_scan *s) {
    if (!s->failed && (s->depth == 0 || (s->objects >> (s->depth - 1) & 1)))
        return fail(s, s->p, "not inside an array");
    return next_member(s, ']');
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The 4 hex digits at p (p + 4 <= end checked by the caller), or -1. */
static long hex4(const char *p) {
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0) return -1;
        v = v << 4 | h;
    }
    return v;
}

/* Appends k bytes to the bounded output; *n counts them all. */
static inline void put(char *dst, size_t cap, size_t *n, const char *src, size_t k) {
    if (*n + 1 < cap) {
        size_t room = cap - 1 - *n;
        memcpy(dst + *n, src, k < room ? k : room);
    }
    *n += k;
}

static size_t utf8_encode(unsigned long cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Bytes a string run copies as they are: printable ASCII but '"' and '\\'. */
static const unsigned char plain[256] = {
    [0x20] = 1, 1, 0 /* '"' */, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20-0x2F */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,                     /* 0x30-0x3F */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,                     /* 0x40-0x4F */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0 /* '\\' */, 1, 1, 1,          /* 0x50-0x5F */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,                     /* 0x60-0x6F */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,                     /* 0x70-0x7F */
};

/* A scalar sits one level below the containers open around it. */
static int scalar_depth_ok(json_scan *s) {
    return s->depth < s->max_depth ? 0 : fail(s, s->p, "nesting too deep");
}

int json_scan_string(json_scan *s, char *dst, size_t cap, size_t *len, bool *has_nul) {
    if (json_scan_peek(s) != JSON_SCAN_STRING) return fail(s, s->p, s->p == s->end ? "unexpected end of data" : "expected a string");
    if (scalar_depth_ok(s) < 0) return -1;
    return read_string(s, dst, cap, len, has_nul);
}

static int read_string(json_scan *s, char *dst, size_t cap, size_t *len, bool *has_nul) {
    if (!dst) cap = 0;
    const char *p = s->p + 1, *end = s->end;
    size_t n = 0;
    bool nul = false;
    for (;;) {
        /* The plain run: copied in one piece. */
        const char *run = p;
        /* Eight bytes at a time while none is '"', '\\', a control byte or non-ASCII. */
        while (end - p >= 8) {
            uint64_t v, q, b;
            memcpy(&v, p, 8);
            q = v ^ 0x2222222222222222u;
            b = v ^ 0x5C5C5C5C5C5C5C5Cu;
            if ((v | ((v - 0x2020202020202020u) & ~v) | ((q - 0x0101010101010101u) & ~q) |
                 ((b - 0x0101010101010101u) & ~b)) & 0x8080808080808080u)
                break;
            p += 8;
        }
        while (p < end && plain[(unsigned char)*p]) p++;
        if (p > run) put(dst, cap, &n, run, (size_t)(p - run));
        if (p == end) return fail(s, p, "unterminated string");
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            p++;
            break;
        }
        if (c >= 0x80) {
            size_t k = nm_utf8_seq((const unsigned char *)p, (size_t)(end - p));
            if (!k) return fail(s, p, "invalid UTF-8");
            put(dst, cap, &n, p, k);
            p += k;
            continue;
        }
        if (c < 0x20) return fail(s, p, "control character in a string");
        /* An escape. */
        if (end - p < 2) return fail(s, end, "unterminated string");
        char e = p[1], ch;
        switch (e) {
        case '"': ch = '"'; break;
        case '\\': ch = '\\'; break;
        case '/': ch = '/'; break;
        case 'b': ch = '\b'; break;
        case 'f': ch = '\f'; break;
        case 'n': ch = '\n'; break;
        case 'r': ch = '\r'; break;
        case 't': ch = '\t'; break;
        case 'u': {
            long cp;
            if (end - p < 6 || (cp = hex4(p + 2)) < 0) return fail(s, p, "invalid \\u escape");
            p += 6;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                long lo;
                if (end - p >= 6 && p[0] == '\\' && p[1] == 'u' && (lo = hex4(p + 2)) >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                } else
                    cp = 0xFFFD;   /* a lone high surrogate; what follows is read on its own */
            } else if (cp >= 0xDC00 && cp <= 0xDFFF)
                cp = 0xFFFD;       /* a lone low surrogate */
            if (cp == 0) nul = true;
            char u[4];
            put(dst, cap, &n, u, utf8_encode((unsigned long)cp, u));
            continue;
        }
        default: return fail(s, p, "invalid escape");
        }
        put(dst, cap, &n, &ch, 1);
        p += 2;
    }
    if (cap) dst[n < cap - 1 ? n : cap - 1] = '\0';
    if (len) *len = n;
    if (has_nul) *has_nul = nul;
    s->p = p;
    return 0;
}

int json_scan_number(json_scan *s, int64_t *value, bool *integer) {
    if (json_scan_peek(s) != JSON_SCAN_NUMBER) return fail(s, s->p, s->p == s->end ? "unexpected end of data" : "expected a number");
    if (scalar_depth_ok(s) < 0) return -1;
    const char *p = s->p, *end = s->end;
    bool neg = false, whole = true;
    uint64_t mag = 0;
    bool over = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    if (p == end || *p < '0' || *p > '9') return fail(s, p, "invalid number");
    if (*p == '0') {
        p++;
        if (p < end && *p >= '0' && *p <= '9') return fail(s, p, "leading zero in a number");
    } else {
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            unsigned d = (unsigned)(*p - '0');
            if (mag > (UINT64_MAX - d) / 10) over = true;
            else mag = mag * 10 + d;
        }
    }
    if (p < end && *p == '.') {
        whole = false;
        p++;
        if (p == end || *p < '0' || *p > '9') return fail(s, p, "digit expected after '.'");
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        whole = false;
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p == end || *p < '0' || *p > '9') return fail(s, p, "digit expected in the exponent");
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    int64_t v = 0;
    if (whole) {
        if (neg) v = over || mag > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)mag;   /* as strtoll saturates */
        else v = over || mag > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)mag;
    }
    if (value) *value = v;
    if (integer) *integer = whole;
    s->p = p;
    return 0;
}

static int literal(json_scan *s, const char *word, size_t n) {
    if (scalar_depth_ok(s) < 0) return -1;
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) return fail(s, s->p, "invalid literal");
    s->p += n;
    return 0;
}

int json_scan_skip(json_scan *s) {
    int base = s->depth;
    for (;;) {
        int r;
        switch (json_scan_peek(s)) {
        case JSON_SCAN_OBJECT:
        case JSON_SCAN_ARRAY:
            if (json_scan_enter(s) < 0) return -1;
            goto member;
        case JSON_SCAN_STRING: r = json_scan_string(s, NULL, 0, NULL, NULL); break;
        case JSON_SCAN_NUMBER: r = json_scan_number(s, NULL, NULL); break;
        case JSON_SCAN_TRUE: r = literal(s, "true", 4); break;
        case JSON_SCAN_FALSE: r = literal(s, "false", 5); break;
        case JSON_SCAN_NULL: r = literal(s, "null", 4); break;
        default:
            return s->failed ? -1 : fail(s, s->p, s->p == s->end ? "unexpected end of data" : "unexpected character");
        }
        if (r < 0) return -1;
    member:
        /* The value is read: go on with the containers it sits in, down to where we started. */
        for (;;) {
            if (s->depth == base) return 0;
            r = s->objects >> (s->depth - 1) & 1 ? json_scan_next_key(s, NULL, 0, NULL) : json_scan_next_item(s);
            if (r < 0) return -1;
            if (r == 1) break;   /* a value to read */
        }
    }
}

int json_scan_finish(json_scan *s) {
    if (s->failed) return -1;
    skip_ws(s);
    if (s->p != s->end) return fail(s, s->p, "unexpected bytes after the JSON value");
    return 0;
}
