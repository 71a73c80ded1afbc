/* HTTP/1.1 on one connection: reading requests (Content-Length bodies, keep-alive, Expect: 100-continue),
 * writing responses, OpenAI error objects and server-sent events. */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "server_internal.h"

const char *http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    }
    return "Error";
}

int conn_write(struct conn *c, const char *data, size_t len)
{
    while (len && !c->failed) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            c->failed = 1;
            break;
        }
        data += n;
        len -= (size_t)n;
    }
    return c->failed ? -1 : 0;
}

int conn_peer_gone(struct conn *c)
{
    if (c->failed || atomic_load(&c->srv->stopping))
        return 1;
    struct pollfd p = {.fd = c->fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
        c->failed = 1;
    return c->failed;
}

/* Reads more bytes into c->buf. Returns the count, 0 at end of stream, -1 on error or timeout. */
static ssize_t fill(struct conn *c, size_t want)
{
    if (c->len + want + 1 > c->cap) {
        size_t cap = c->len + want + 1;
        char *b = realloc(c->buf, cap);
        if (!b)
            return -1;
        c->buf = b;
        c->cap = cap;
    }
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->len, want, 0);
        if (n < 0 && errno == EINTR && !atomic_load(&c->srv->stopping))
            continue;
        if (n > 0)
            c->len += (size_t)n;
        return n;
    }
}

static void consume(struct conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* The value of header `name` in the header block (lines after the request line), NUL-terminated into out. */
static int header(const char *headers, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    for (const char *line = headers; line && *line; line = strstr(line, "\r\n"), line = line ? line + 2 : NULL) {
        if (!strncasecmp(line, name, nl) && line[nl] == ':') {
            const char *v = line + nl + 1, *end = strstr(v, "\r\n");
            while (*v == ' ' || *v == '\t')
                v++;
            size_t n = end ? (size_t)(end - v) : strlen(v);
            while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
                n--;
            if (n >= outlen)
                n = outlen - 1;
            memcpy(out, v, n);
            out[n] = 0;
            return 1;
        }
    }
    return 0;
}

static int has_token(const char *value, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = value; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!strncasecmp(p, token, n) && (!p[n] || p[n] == ',' || p[n] == ' '))
            return 1;
        while (*p && *p != ',')
            p++;
    }
    return 0;
}

int http_read_request(struct conn *c, size_t max_body, struct http_request *r, int *status, char *msg,
                      size_t msglen)
{
    memset(r, 0, sizeof *r);
    *status = 400;
    char *end;
    while (!c->buf || !(end = memmem(c->buf, c->len, "\r\n\r\n", 4))) {
        if (c->len >= HTTP_MAX_HEADER) {
            *status = 431;
            snprintf(msg, msglen, "the request line and headers exceed %d bytes", HTTP_MAX_HEADER);
            return -1;
        }
        ssize_t n = fill(c, 4096);
        if (n <= 0) {
            if (!c->len)
                return 0;
            *status = 408;
            snprintf(msg, msglen, "the connection ended or timed out in the middle of the request headers");
            return -1;
        }
        c->buf[c->len] = 0;
    }
    size_t head_len = (size_t)(end - c->buf) + 4;
    *end = 0;
    if (strlen(c->buf) != (size_t)(end - c->buf)) {
        snprintf(msg, msglen, "NUL byte in the request headers");
        return -1;
    }
    char version[16];
    const char *headers = strstr(c->buf, "\r\n");
    headers = headers ? headers + 2 : "";
    char target[sizeof r->path];
    if (sscanf(c->buf, "%15s %2047s %15s", r->method, target, version) != 3 || strncmp(version, "HTTP/1.", 7) ||
        target[0] != '/') {
        snprintf(msg, msglen, "malformed request line (expected e.g. 'POST /v1/chat/completions HTTP/1.1')");
        return -1;
    }
    target[strcspn(target, "?#")] = 0;
    snprintf(r->path, sizeof r->path, "%s", target);

    char value[256];
    r->keep_alive = strcmp(version, "HTTP/1.0") != 0;
    if (header(headers, "Connection", value, sizeof value))
        r->keep_alive = has_token(value, "keep-alive") || (r->keep_alive && !has_token(value, "close"));
    if (header(headers, "Transfer-Encoding", value, sizeof value)) {
        *status = 411;
        snprintf(msg, msglen, "chunked request bodies are not supported: send a Content-Length");
        return -1;
    }
    size_t body_len = 0;
    if (header(headers, "Content-Length", value, sizeof value)) {
        char *e;
        unsigned long long v = strtoull(value, &e, 10);
        if (!isdigit((unsigned char)value[0]) || *e) {
            snprintf(msg, msglen, "bad Content-Length '%s'", value);
            return -1;
        }
        if (v > max_body) {
            *status = 413;
            snprintf(msg, msglen, "the request body (%llu bytes) exceeds the limit of %zu bytes", v, max_body);
            r->keep_alive = 0;
            return -1;
        }
        body_len = (size_t)v;
    } else if (!strcmp(r->method, "POST") || !strcmp(r->method, "PUT")) {
        *status = 411;
        snprintf(msg, msglen, "a %s request needs a Content-Length header", r->method);
        return -1;
    }
    if (header(headers, "Expect", value, sizeof value) && !strcasecmp(value, "100-continue") &&
        c->len - head_len < body_len) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        conn_write(c, cont, sizeof cont - 1);
    }
    consume(c, head_len);
    while (c->len < body_len) {
        if (fill(c, body_len - c->len) <= 0) {
            *status = 408;
            snprintf(msg, msglen, "the connection ended or timed out before the %zu-byte body was read", body_len);
            r->keep_alive = 0;
            return -1;
        }
    }
    if (!(r->body = malloc(body_len + 1))) {
        *status = 500;
        snprintf(msg, msglen, "out of memory");
        return -1;
    }
    if (body_len)
        memcpy(r->body, c->buf, body_len);
    r->body[body_len] = 0;
    r->body_len = body_len;
    consume(c, body_len);
    return 1;
}

void http_request_free(struct http_request *r)
{
    free(r->body);
    r->body = NULL;
}

int http_respond(struct conn *c, int status, const char *content_type, const char *body, size_t len)
{
    char head[512];
    c->status = status;
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: %s\r\n"
                     "Access-Control-Allow-Origin: *\r\nCache-Control: no-store\r\n\r\n",
                     status, http_reason(status), content_type, len, c->keep_alive ? "keep-alive" : "close");
    if (conn_write(c, head, (size_t)n))
        return -1;
    return conn_write(c, body, len);
}

static const char *error_type(int status)
{
    switch (status) {
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 500: return "server_error";
    case 503: return "overloaded_error";
    }
    return "invalid_request_error";
}

int http_error(struct conn *c, int status, const char *param, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct data_buf b = {0};
    data_buf_puts(&b, "{\"error\":{\"message\":");
    data_json_cstring(&b, msg);
    data_buf_puts(&b, ",\"type\":");
    data_json_cstring(&b, error_type(status));
    data_buf_puts(&b, ",\"param\":");
    if (param)
        data_json_cstring(&b, param);
    else
        data_buf_puts(&b, "null");
    data_buf_puts(&b, ",\"code\":");
    if (code)
        data_json_cstring(&b, code);
    else
        data_buf_puts(&b, "null");
    data_buf_puts(&b, "}}\n");
    int rc = c->streaming ? http_sse_send(c, b.data, b.len - 1)
                          : http_respond(c, status, "application/json", b.data, b.len);
    data_buf_free(&b);
    return rc;
}

int http_sse_start(struct conn *c)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
                               "Cache-Control: no-cache\r\nConnection: close\r\nAccess-Control-Allow-Origin: *\r\n"
                               "X-Accel-Buffering: no\r\n\r\n";
    c->streaming = 1;
    c->status = 200;
    return conn_write(c, head, sizeof head - 1);
}

int http_sse_send(struct conn *c, const char *json, size_t len)
{
    return conn_write(c, "data: ", 6) || conn_write(c, json, len) || conn_write(c, "\n\n", 2) ? -1 : 0;
}

int http_sse_done(struct conn *c)
{
    static const char done[] = "data: [DONE]\n\n";
    return conn_write(c, done, sizeof done - 1);
}
