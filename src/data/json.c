/* Byte buffers, JSON string output and a small JSON object reader (see data_json.h). */
#include "melodist/data_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void buf_reserve(struct data_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        abort(); /* out of memory: nothing sensible to return to */
    b->data = p;
    b->cap = cap;
}

void data_buf_reset(struct data_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void data_buf_free(struct data_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void data_buf_append(struct data_buf *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void data_buf_puts(struct data_buf *b, const char *s) { data_buf_append(b, s, strlen(s)); }

void data_buf_putc(struct data_buf *b, char c) { data_buf_append(b, &c, 1); }

void data_buf_printf(struct data_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

size_t utf8_sequence_length(const unsigned char *s, size_t n)
{
    if (n == 0)
        return 0;
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    unsigned cp = c & (0x3F >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

int utf8_valid(const char *s, size_t n, size_t *bad_offset)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_sequence_length(u + i, n - i);
        if (!k) {
            if (bad_offset)
                *bad_offset = i;
            return 0;
        }
        i += k;
    }
    return 1;
}

void data_json_string(struct data_buf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    data_buf_putc(b, '"');
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        if (c >= 0x80) {
            size_t k = utf8_sequence_length(u + i, n - i);
            if (k) {
                data_buf_append(b, s + i, k);
                i += k;
            } else {
                data_buf_puts(b, "\xEF\xBF\xBD");
                i++;
            }
            continue;
        }
        switch (c) {
        case '"': data_buf_puts(b, "\\\""); break;
        case '\\': data_buf_puts(b, "\\\\"); break;
        case '\n': data_buf_puts(b, "\\n"); break;
        case '\t': data_buf_puts(b, "\\t"); break;
        case '\r': data_buf_puts(b, "\\r"); break;
        default:
            if (c < 0x20 || c == 0x7F)
                data_buf_printf(b, "\\u%04x", c);
            else
                data_buf_putc(b, (char)c);
        }
        i++;
    }
    data_buf_putc(b, '"');
}

void data_json_cstring(struct data_buf *b, const char *s) { data_json_string(b, s, strlen(s)); }

/* ---- reader ---- */

struct reader {
    const char *s;
    size_t n, i;
    char *err;
    size_t errlen;
};

static int fail(struct reader *r, const char *what)
{
    snprintf(r->err, r->errlen, "column %zu: %s", r->i + 1, what);
    return -1;
}

static void skip_ws(struct reader *r)
{
    while (r->i < r->n && (r->s[r->i] == ' ' || r->s[r->i] == '\t' || r->s[r->i] == '\n' || r->s[r->i] == '\r'))
        r->i++;
}

static int hex4(struct reader *r, unsigned *out)
{
    if (r->n - r->i < 4)
        return fail(r, "truncated \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = r->s[r->i++];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return fail(r, "bad hex digit in \\u escape");
    }
    *out = v;
    return 0;
}

static void put_codepoint(struct data_buf *b, unsigned cp)
{
    char u[4];
    size_t k;
    if (cp < 0x80) {
        u[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        k = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        k = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        k = 4;
    }
    data_buf_append(b, u, k);
}

/* Reads a string literal at r->i (which is on the opening quote) into out (decoded). */
static int read_string(struct reader *r, struct data_buf *out)
{
    r->i++;
    while (r->i < r->n) {
        unsigned char c = (unsigned char)r->s[r->i];
        if (c == '"') {
            r->i++;
            if (!out->data)
                data_buf_append(out, "", 0);
            return 0;
        }
        if (c < 0x20)
            return fail(r, "control character inside a string (must be escaped)");
        if (c >= 0x80) {
            size_t k = utf8_sequence_length((const unsigned char *)r->s + r->i, r->n - r->i);
            if (!k)
                return fail(r, "invalid UTF-8 inside a string");
            data_buf_append(out, r->s + r->i, k);
            r->i += k;
            continue;
        }
        if (c != '\\') {
            data_buf_putc(out, (char)c);
            r->i++;
            continue;
        }
        r->i++;
        if (r->i >= r->n)
            break;
        char e = r->s[r->i++];
        switch (e) {
        case '"': data_buf_putc(out, '"'); break;
        case '\\': data_buf_putc(out, '\\'); break;
        case '/': data_buf_putc(out, '/'); break;
        case 'b': data_buf_putc(out, '\b'); break;
        case 'f': data_buf_putc(out, '\f'); break;
        case 'n': data_buf_putc(out, '\n'); break;
        case 'r': data_buf_putc(out, '\r'); break;
        case 't': data_buf_putc(out, '\t'); break;
        case 'u': {
            unsigned cp;
            if (hex4(r, &cp))
                return -1;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (r->n - r->i < 6 || r->s[r->i] != '\\' || r->s[r->i + 1] != 'u')
                    return fail(r, "unpaired UTF-16 surrogate in \\u escape");
                r->i += 2;
                if (hex4(r, &lo))
                    return -1;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return fail(r, "unpaired UTF-16 surrogate in \\u escape");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return fail(r, "unpaired UTF-16 surrogate in \\u escape");
            }
            put_codepoint(out, cp);
            break;
        }
        default:
            r->i--;
            return fail(r, "unknown escape in string");
        }
    }
    return fail(r, "unterminated string");
}

static int skip_value(struct reader *r, int depth);

static int skip_literal(struct reader *r, const char *word)
{
    size_t k = strlen(word);
    if (r->n - r->i < k || memcmp(r->s + r->i, word, k))
        return fail(r, "expected a JSON value");
    r->i += k;
    return 0;
}

static int skip_number(struct reader *r)
{
    size_t start = r->i;
    if (r->i < r->n && r->s[r->i] == '-')
        r->i++;
    while (r->i < r->n && strchr("0123456789.eE+-", r->s[r->i]))
        r->i++;
    if (r->i == start || (r->i == start + 1 && r->s[start] == '-'))
        return fail(r, "expected a JSON value");
    return 0;
}

/* Skips an array or object body after its opening bracket. */
static int skip_container(struct reader *r, char close, int depth)
{
    r->i++;
    skip_ws(r);
    if (r->i < r->n && r->s[r->i] == close) {
        r->i++;
        return 0;
    }
    for (;;) {
        skip_ws(r);
        if (close == '}') {
            struct data_buf key = {0};
            if (r->i >= r->n || r->s[r->i] != '"')
                return fail(r, "expected a string key");
            int rc = read_string(r, &key);
            data_buf_free(&key);
            if (rc)
                return -1;
            skip_ws(r);
            if (r->i >= r->n || r->s[r->i] != ':')
                return fail(r, "expected ':' after key");
            r->i++;
        }
        if (skip_value(r, depth + 1))
            return -1;
        skip_ws(r);
        if (r->i < r->n && r->s[r->i] == ',') {
            r->i++;
            continue;
        }
        if (r->i < r->n && r->s[r->i] == close) {
            r->i++;
            return 0;
        }
        return fail(r, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int skip_value(struct reader *r, int depth)
{
    if (depth > 64)
        return fail(r, "nesting too deep");
    skip_ws(r);
    if (r->i >= r->n)
        return fail(r, "unexpected end of line, expected a JSON value");
    char c = r->s[r->i];
    if (c == '"') {
        struct data_buf tmp = {0};
        int rc = read_string(r, &tmp);
        data_buf_free(&tmp);
        return rc;
    }
    if (c == '{')
        return skip_container(r, '}', depth);
    if (c == '[')
        return skip_container(r, ']', depth);
    if (c == 't')
        return skip_literal(r, "true");
    if (c == 'f')
        return skip_literal(r, "false");
    if (c == 'n')
        return skip_literal(r, "null");
    return skip_number(r);
}

static void add_member(struct data_json_object *obj, struct data_buf *key, struct data_buf *value, int is_string)
{
    if (obj->count == obj->cap) {
        obj->cap = obj->cap ? obj->cap * 2 : 8;
        obj->members = realloc(obj->members, obj->cap * sizeof *obj->members);
        if (!obj->members)
            abort();
    }
    struct data_json_member *m = &obj->members[obj->count++];
    m->key = key->data;
    m->value = is_string ? value->data : NULL;
    m->value_len = is_string ? value->len : 0;
    if (!is_string)
        data_buf_free(value);
}

int data_json_parse_object(const char *text, size_t n, struct data_json_object *obj, char *err, size_t errlen)
{
    struct reader r = {text, n, 0, err, errlen};
    memset(obj, 0, sizeof *obj);
    skip_ws(&r);
    if (r.i >= r.n || r.s[r.i] != '{')
        return fail(&r, "expected a JSON object '{'");
    r.i++;
    skip_ws(&r);
    if (r.i < r.n && r.s[r.i] == '}') {
        r.i++;
        goto done;
    }
    for (;;) {
        struct data_buf key = {0}, value = {0};
        skip_ws(&r);
        if (r.i >= r.n || r.s[r.i] != '"') {
            fail(&r, "expected a string key");
            goto error;
        }
        if (read_string(&r, &key)) {
            data_buf_free(&key);
            goto error;
        }
        skip_ws(&r);
        if (r.i >= r.n || r.s[r.i] != ':') {
            data_buf_free(&key);
            fail(&r, "expected ':' after key");
            goto error;
        }
        r.i++;
        skip_ws(&r);
        int is_string = r.i < r.n && r.s[r.i] == '"';
        int rc = is_string ? read_string(&r, &value) : skip_value(&r, 1);
        if (rc) {
            data_buf_free(&key);
            data_buf_free(&value);
            goto error;
        }
        add_member(obj, &key, &value, is_string);
        skip_ws(&r);
        if (r.i < r.n && r.s[r.i] == ',') {
            r.i++;
            continue;
        }
        if (r.i < r.n && r.s[r.i] == '}') {
            r.i++;
            break;
        }
        fail(&r, "expected ',' or '}'");
        goto error;
    }
done:
    skip_ws(&r);
    if (r.i != r.n) {
        fail(&r, "unexpected text after the JSON object");
        goto error;
    }
    return 0;
error:
    data_json_object_free(obj);
    return -1;
}

void data_json_object_free(struct data_json_object *obj)
{
    for (size_t i = 0; i < obj->count; i++) {
        free(obj->members[i].key);
        free(obj->members[i].value);
    }
    free(obj->members);
    memset(obj, 0, sizeof *obj);
}

const struct data_json_member *data_json_get(const struct data_json_object *obj, const char *key)
{
    for (size_t i = 0; i < obj->count; i++)
        if (!strcmp(obj->members[i].key, key))
            return obj->members[i].value ? &obj->members[i] : NULL;
    return NULL;
}
