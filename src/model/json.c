/* Recursive-descent JSON parser with a depth limit, so hostile headers cannot exhaust the stack. */
#include "melodist/json.h"

#include "melodist/fileio.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 128

struct parser {
    const char *s;
    size_t pos, len;
    char *err;
    size_t errlen;
    int failed;
};

static void fail(struct parser *p, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = 1;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < p->pos && i < p->len; i++) {
        if (p->s[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (p->err && p->errlen)
        snprintf(p->err, p->errlen, "line %zu column %zu: %s", line, col, what);
}

static void skip_space(struct parser *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' ||
                               p->s[p->pos] == '\r'))
        p->pos++;
}

static int peek(struct parser *p)
{
    return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1;
}

static void free_contents(struct json *v)
{
    free(v->string);
    for (size_t i = 0; i < v->count; i++) {
        if (v->items)
            free_contents(&v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
}

void json_free(struct json *value)
{
    if (!value)
        return;
    free_contents(value);
    free(value);
}

static int hex4(struct parser *p, unsigned *out)
{
    if (p->len - p->pos < 4) {
        fail(p, "truncated \\u escape");
        return -1;
    }
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else {
            fail(p, "bad hex digit in \\u escape");
            return -1;
        }
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Parses a string starting at the opening quote; the decoded text is never longer than the source. */
static char *parse_string(struct parser *p, size_t *out_len)
{
    p->pos++; /* opening quote */
    size_t start = p->pos;
    char *out = malloc(p->len - start + 1);
    if (!out) {
        fail(p, "out of memory");
        return NULL;
    }
    size_t n = 0;
    for (;;) {
        if (p->pos >= p->len) {
            fail(p, "unterminated string");
            break;
        }
        unsigned char c = (unsigned char)p->s[p->pos++];
        if (c == '"') {
            out[n] = '\0';
            *out_len = n;
            return out;
        }
        if (c < 0x20) {
            fail(p, "control character in string");
            break;
        }
        if (c != '\\') {
            out[n++] = (char)c;
            continue;
        }
        if (p->pos >= p->len) {
            fail(p, "unterminated escape");
            break;
        }
        char e = p->s[p->pos++];
        switch (e) {
        case '"': out[n++] = '"'; break;
        case '\\': out[n++] = '\\'; break;
        case '/': out[n++] = '/'; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (hex4(p, &cp))
                goto error;
            if (cp >= 0xD800 && cp < 0xDC00) {
                unsigned lo;
                if (p->len - p->pos < 6 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
                    fail(p, "unpaired surrogate in \\u escape");
                    goto error;
                }
                p->pos += 2;
                if (hex4(p, &lo))
                    goto error;
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    fail(p, "unpaired surrogate in \\u escape");
                    goto error;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp < 0xE000) {
                fail(p, "unpaired surrogate in \\u escape");
                goto error;
            }
            n += put_utf8(out + n, cp); /* 6 or 12 source bytes become at most 4 */
            break;
        }
        default:
            fail(p, "unknown escape \\%c", e);
            goto error;
        }
    }
error:
    free(out);
    return NULL;
}

static int parse_value(struct parser *p, struct json *v, int depth);

static int parse_container(struct parser *p, struct json *v, int depth, int is_object)
{
    char close = is_object ? '}' : ']';
    size_t cap = 0;
    p->pos++;
    skip_space(p);
    if (peek(p) == close) {
        p->pos++;
        return 0;
    }
    for (;;) {
        if (v->count == cap) {
            cap = cap ? cap * 2 : 8;
            struct json *items = realloc(v->items, cap * sizeof *items);
            if (!items) {
                fail(p, "out of memory");
                return -1;
            }
            v->items = items;
            if (is_object) {
                char **keys = realloc(v->keys, cap * sizeof *keys);
                if (!keys) {
                    fail(p, "out of memory");
                    return -1;
                }
                v->keys = keys;
            }
        }
        skip_space(p);
        if (is_object) {
            if (peek(p) != '"') {
                fail(p, "expected a member name in quotes");
                return -1;
            }
            size_t klen;
            char *key = parse_string(p, &klen);
            if (!key)
                return -1;
            v->keys[v->count] = key;
            memset(&v->items[v->count], 0, sizeof v->items[0]);
            v->count++;
            skip_space(p);
            if (peek(p) != ':') {
                fail(p, "expected ':' after member name");
                return -1;
            }
            p->pos++;
        } else {
            memset(&v->items[v->count], 0, sizeof v->items[0]);
            v->count++;
        }
        if (parse_value(p, &v->items[v->count - 1], depth + 1))
            return -1;
        skip_space(p);
        int c = peek(p);
        p->pos++;
        if (c == close)
            return 0;
        if (c != ',') {
            p->pos--;
            fail(p, "expected ',' or '%c'", close);
            return -1;
        }
    }
}

static int parse_number(struct parser *p, struct json *v)
{
    size_t start = p->pos;
    if (peek(p) == '-')
        p->pos++;
    if (peek(p) == '0') {
        p->pos++;
    } else if (peek(p) >= '1' && peek(p) <= '9') {
        while (peek(p) >= '0' && peek(p) <= '9')
            p->pos++;
    } else {
        fail(p, "bad number");
        return -1;
    }
    if (peek(p) == '.') {
        p->pos++;
        if (!(peek(p) >= '0' && peek(p) <= '9')) {
            fail(p, "bad number: digit expected after '.'");
            return -1;
        }
        while (peek(p) >= '0' && peek(p) <= '9')
            p->pos++;
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        p->pos++;
        if (peek(p) == '+' || peek(p) == '-')
            p->pos++;
        if (!(peek(p) >= '0' && peek(p) <= '9')) {
            fail(p, "bad number: digit expected in exponent");
            return -1;
        }
        while (peek(p) >= '0' && peek(p) <= '9')
            p->pos++;
    }
    char buf[64];
    size_t n = p->pos - start;
    if (n >= sizeof buf) {
        fail(p, "number too long");
        return -1;
    }
    memcpy(buf, p->s + start, n);
    buf[n] = '\0';
    v->type = JSON_NUMBER;
    v->number = strtod(buf, NULL);
    return 0;
}

static int parse_literal(struct parser *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n)) {
        fail(p, "unexpected character");
        return -1;
    }
    p->pos += n;
    return 0;
}

static int parse_value(struct parser *p, struct json *v, int depth)
{
    if (depth > JSON_MAX_DEPTH) {
        fail(p, "nesting deeper than %d levels", JSON_MAX_DEPTH);
        return -1;
    }
    skip_space(p);
    switch (peek(p)) {
    case '{':
        v->type = JSON_OBJECT;
        return parse_container(p, v, depth, 1);
    case '[':
        v->type = JSON_ARRAY;
        return parse_container(p, v, depth, 0);
    case '"':
        v->type = JSON_STRING;
        v->string = parse_string(p, &v->len);
        return v->string ? 0 : -1;
    case 't':
        v->type = JSON_BOOL;
        v->boolean = 1;
        return parse_literal(p, "true");
    case 'f':
        v->type = JSON_BOOL;
        return parse_literal(p, "false");
    case 'n':
        v->type = JSON_NULL;
        return parse_literal(p, "null");
    case -1:
        fail(p, "unexpected end of input");
        return -1;
    default:
        return parse_number(p, v);
    }
}

struct json *json_parse(const char *text, size_t len, char *err, size_t errlen)
{
    struct parser p = {text, 0, len, err, errlen, 0};
    struct json *v = calloc(1, sizeof *v);
    if (!v) {
        fail(&p, "out of memory");
        return NULL;
    }
    if (parse_value(&p, v, 0) == 0) {
        skip_space(&p);
        if (p.pos < p.len)
            fail(&p, "unexpected text after the JSON value");
    }
    if (p.failed) {
        json_free(v);
        return NULL;
    }
    return v;
}

struct json *json_load(const char *path, size_t max, char *err, size_t errlen)
{
    size_t len;
    char *text = file_read(path, max, &len, err, errlen), jerr[256];
    if (!text)
        return NULL;
    struct json *j = json_parse(text, len, jerr, sizeof jerr);
    free(text);
    if (!j)
        snprintf(err, errlen, "%s: %s", path, jerr);
    return j;
}

const struct json *json_get(const struct json *object, const char *key)
{
    if (!object || object->type != JSON_OBJECT)
        return NULL;
    for (size_t i = object->count; i-- > 0;)
        if (!strcmp(object->keys[i], key))
            return &object->items[i];
    return NULL;
}

void json_fput_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", out);
        else if (*p == '\t')
            fputs("\\t", out);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

const char *json_string_or(const struct json *object, const char *key, const char *fallback)
{
    const struct json *v = json_get(object, key);
    return v && v->type == JSON_STRING ? v->string : fallback;
}
