/* The server object: listening socket, accept loop, one thread per connection, routing, shutdown. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server_internal.h"

#define IO_TIMEOUT_S 30 /* a client idle this long between requests, or not reading its answer, is dropped */

void server_options_default(struct server_options *o)
{
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 8080;
    o->model_id = "melodist";
    o->web_dir = MELODIST_WEB_DIR;
}

static int listen_on(const char *host, int port, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc) {
        snprintf(err, errlen, "cannot resolve the address '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, saved = 0;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) || listen(fd, 64)) {
            saved = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(err, errlen, "cannot listen on %s:%d: %s%s", host, port, strerror(saved),
                 saved == EADDRINUSE ? " (another server runs there: choose another --port)" : "");
    return fd;
}

struct server *server_new(const struct server_options *o, const struct model *m, const mt_tokenizer *tok,
                          char *err, size_t errlen)
{
    struct server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->o = *o;
    s->m = m;
    s->tok = tok;
    s->listen_fd = s->wake[0] = s->wake[1] = -1;
    pthread_mutex_init(&s->gen_lock, NULL);
    pthread_mutex_init(&s->conn_lock, NULL);
    pthread_cond_init(&s->conn_done, NULL);
    int max_pos = m->config.max_position_embeddings;
    if (s->o.context <= 0)
        s->o.context = max_pos < 4096 ? max_pos : 4096;
    if (s->o.default_max_tokens <= 0)
        s->o.default_max_tokens = 1024;
    if (s->o.default_max_tokens > s->o.context / 2)
        s->o.default_max_tokens = s->o.context / 2 > 0 ? s->o.context / 2 : 1;
    if (!s->o.max_body)
        s->o.max_body = 1 << 20;
    s->model_id = strdup(o->model_id ? o->model_id : "melodist");
    s->web_dir = o->web_dir ? strdup(o->web_dir) : NULL;
    s->system = o->system ? strdup(o->system) : NULL;
    s->o.model_id = s->model_id;
    s->o.web_dir = s->web_dir;
    s->o.system = s->system;
    if (!s->model_id || (o->web_dir && !s->web_dir) || (o->system && !s->system) ||
        pipe2(s->wake, O_CLOEXEC | O_NONBLOCK)) {
        snprintf(err, errlen, "out of memory or file descriptors");
        server_free(s);
        return NULL;
    }
    if (!(s->chat = chat_session_new(m, tok, s->system, s->o.context, err, errlen)) ||
        (s->listen_fd = listen_on(o->host ? o->host : "127.0.0.1", o->port, err, errlen)) < 0) {
        server_free(s);
        return NULL;
    }
    return s;
}

int server_port(const struct server *s)
{
    struct sockaddr_storage a;
    socklen_t len = sizeof a;
    if (getsockname(s->listen_fd, (struct sockaddr *)&a, &len))
        return -1;
    return ntohs(a.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&a)->sin6_port
                                          : ((struct sockaddr_in *)&a)->sin_port);
}

void server_stop(struct server *s)
{
    atomic_store(&s->stopping, 1);
    ssize_t n = write(s->wake[1], "x", 1);
    (void)n; /* a full pipe already wakes the loop */
}

void server_free(struct server *s)
{
    if (!s)
        return;
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    for (int i = 0; i < 2; i++)
        if (s->wake[i] >= 0)
            close(s->wake[i]);
    chat_session_free(s->chat);
    pthread_mutex_destroy(&s->gen_lock);
    pthread_mutex_destroy(&s->conn_lock);
    pthread_cond_destroy(&s->conn_done);
    free(s->model_id);
    free(s->web_dir);
    free(s->system);
    free(s);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static void route(struct conn *c, const struct http_request *r)
{
    static const struct {
        const char *method, *path;
        void (*handle)(struct conn *, const struct http_request *);
    } routes[] = {
        {"GET", "/v1/models", api_models},
        {"POST", "/v1/chat/completions", api_chat_completions},
        {"POST", "/v1/completions", api_completions},
        {"POST", "/v1/abc/check", api_abc_check},
    };
    if (!strcmp(r->method, "OPTIONS")) { /* CORS preflight of browser clients on other origins */
        static const char pre[] = "HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Origin: *\r\n"
                                  "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
                                  "Access-Control-Allow-Headers: Content-Type, Authorization\r\n"
                                  "Content-Length: 0\r\n\r\n";
        conn_write(c, pre, sizeof pre - 1);
        c->status = 204;
        return;
    }
    if (!strcmp(r->method, "HEAD"))
        c->keep_alive = 0; /* the answer below has a body, which HEAD must not: end the connection after it */
    int path_known = 0;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        size_t n = strlen(routes[i].path);
        int model_path = i == 0 && !strncmp(r->path, "/v1/models/", 11); /* /v1/models/ID */
        if (strncmp(r->path, routes[i].path, n) || (r->path[n] && !model_path))
            continue;
        path_known = 1;
        if (!strcmp(r->method, routes[i].method)) {
            routes[i].handle(c, r);
            return;
        }
    }
    if (!strcmp(r->path, "/health") && !strcmp(r->method, "GET")) {
        static const char ok[] = "{\"status\":\"ok\"}\n";
        http_respond(c, 200, "application/json", ok, sizeof ok - 1);
        return;
    }
    if (!strcmp(r->method, "GET") && static_serve(c, r))
        return;
    if (path_known)
        http_error(c, 405, NULL, "method_not_allowed", "%s is not allowed on %s", r->method, r->path);
    else
        http_error(c, 404, NULL, "unknown_url", "unknown URL %s %s (the endpoints: GET /v1/models, POST "
                   "/v1/chat/completions, POST /v1/completions, POST /v1/abc/check, GET /)", r->method, r->path);
}

/* After an error answer with part of the request unread: closing at once would reset the connection and the
 * client, still sending, might never see the answer. So stop writing, drain what comes for a moment, then close. */
static void linger_close(struct conn *c)
{
    struct timeval tv = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    shutdown(c->fd, SHUT_WR);
    char sink[16384];
    for (size_t drained = 0; drained < ((size_t)64 << 20) && !atomic_load(&c->srv->stopping);) {
        ssize_t n = recv(c->fd, sink, sizeof sink, 0);
        if (n <= 0)
            break;
        drained += (size_t)n;
    }
}

/* For the log: control characters of a client's request line become '?' (no terminal escapes from the net). */
static const char *printable(const char *in, char *out, size_t size)
{
    size_t i = 0;
    for (; in[i] && i + 1 < size; i++)
        out[i] = (unsigned char)in[i] < 0x20 || in[i] == 0x7f ? '?' : in[i];
    out[i] = 0;
    return out;
}

/* One connection: requests one after another while the client keeps the connection alive. */
static void serve_connection(struct conn *c)
{
    struct server *s = c->srv;
    for (;;) {
        struct http_request r;
        int status;
        char msg[512];
        int got = http_read_request(c, s->o.max_body, &r, &status, msg, sizeof msg);
        if (got == 0 || atomic_load(&s->stopping))
            break;
        double t0 = now_ms();
        c->streaming = 0;
        c->status = 0;
        if (got < 0) {
            c->keep_alive = 0; /* where the next request would begin is unknown */
            http_error(c, status, NULL, status == 413 ? "request_too_large" : NULL, "%s", msg);
            if (s->o.log)
                fprintf(s->o.log, "melodist serve: %d %s\n", status, msg);
            linger_close(c);
            break;
        }
        c->keep_alive = r.keep_alive;
        route(c, &r);
        char method[sizeof r.method], path[sizeof r.path];
        if (s->o.log)
            fprintf(s->o.log, "melodist serve: %s %s %d%s, %zu bytes in, %.0f ms%s\n",
                    printable(r.method, method, sizeof method), printable(r.path, path, sizeof path), c->status,
                    c->streaming ? " (stream)" : "", r.body_len, now_ms() - t0, c->failed ? ", client gone" : "");
        http_request_free(&r);
        if (!c->keep_alive || c->streaming || c->failed)
            break;
    }
}

static void *connection_thread(void *arg)
{
    struct conn *c = arg;
    struct server *s = c->srv;
    serve_connection(c);
    pthread_mutex_lock(&s->conn_lock);
    for (int i = 0; i < s->n_conns; i++)
        if (s->conn_fds[i] == c->fd) {
            s->conn_fds[i] = s->conn_fds[--s->n_conns];
            break;
        }
    close(c->fd);
    pthread_cond_broadcast(&s->conn_done);
    pthread_mutex_unlock(&s->conn_lock);
    free(c->buf);
    free(c);
    return NULL;
}

static void refuse_busy(int fd)
{
    static const char body[] = "{\"error\":{\"message\":\"too many open connections; retry later\",\"type\":"
                               "\"overloaded_error\",\"param\":null,\"code\":\"server_busy\"}}\n";
    char msg[512];
    int n = snprintf(msg, sizeof msg, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     "Connection: close\r\nContent-Length: %zu\r\n\r\n%s", sizeof body - 1, body);
    ssize_t sent = send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)sent; /* best effort: the connection is refused either way */
    /* Closing with the request unread would reset the connection, and the answer with it; read what has come. */
    shutdown(fd, SHUT_WR);
    char sink[4096];
    while (recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0)
        ;
    close(fd);
}

static void start_connection(struct server *s, int fd)
{
    struct timeval tv = {IO_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* streamed tokens leave at once */
    struct conn *c = calloc(1, sizeof *c);
    pthread_mutex_lock(&s->conn_lock);
    int room = s->n_conns < SERVER_MAX_CONNECTIONS;
    if (room && c)
        s->conn_fds[s->n_conns++] = fd;
    pthread_mutex_unlock(&s->conn_lock);
    if (!room || !c) {
        free(c);
        refuse_busy(fd);
        return;
    }
    c->srv = s;
    c->fd = fd;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, connection_thread, c)) {
        pthread_mutex_lock(&s->conn_lock);
        s->conn_fds[--s->n_conns] = -1; /* the slot just taken is the last one: no thread removed any since */
        pthread_mutex_unlock(&s->conn_lock);
        free(c);
        refuse_busy(fd);
    }
    pthread_attr_destroy(&attr);
}

int server_run(struct server *s, char *err, size_t errlen)
{
    int rc = 0;
    while (!atomic_load(&s->stopping)) {
        struct pollfd p[2] = {{.fd = s->listen_fd, .events = POLLIN}, {.fd = s->wake[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, errlen, "poll: %s", strerror(errno));
            rc = -1;
            break;
        }
        if (!(p[0].revents & POLLIN))
            continue;
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                usleep(10000); /* descriptors run short for a moment: let connections end */
            if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN || errno == EMFILE || errno == ENFILE)
                continue;
            snprintf(err, errlen, "accept: %s", strerror(errno));
            rc = -1;
            break;
        }
        start_connection(s, fd);
    }
    /* End the open connections: blocked reads return, writes fail, generations stop at their next token. */
    atomic_store(&s->stopping, 1);
    pthread_mutex_lock(&s->conn_lock);
    for (int i = 0; i < s->n_conns; i++)
        shutdown(s->conn_fds[i], SHUT_RDWR);
    while (s->n_conns)
        pthread_cond_wait(&s->conn_done, &s->conn_lock);
    pthread_mutex_unlock(&s->conn_lock);
    return rc;
}
