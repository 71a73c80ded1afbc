/* Internals of the server: HTTP/1.1 on one connection (http.c), the endpoints (openai.c, static.c) and the
 * server object they share (server.c). */
#ifndef MELODIST_SERVER_INTERNAL_H
#define MELODIST_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "melodist/chat.h"
#include "melodist/data_json.h"
#include "melodist/server.h"

#define HTTP_MAX_HEADER 16384 /* request line + headers */

struct server {
    struct server_options o;
    char *model_id, *web_dir, *system;
    const struct model *m;
    const mt_tokenizer *tok;
    int listen_fd, wake[2]; /* wake: server_stop writes a byte, the accept loop polls it */
    atomic_int stopping;
    atomic_ullong n_requests; /* for response ids */

    pthread_mutex_t gen_lock; /* one generation at a time: the chat session, its KV cache, the thread pool */
    struct chat_session *chat;

    pthread_mutex_t conn_lock; /* the open connections, so that shutdown can end them */
    pthread_cond_t conn_done;
    int conn_fds[SERVER_MAX_CONNECTIONS];
    int n_conns;
};

/* One client connection. */
struct conn {
    struct server *srv;
    int fd;
    char *buf; /* bytes read and not yet consumed (a pipelined next request may follow a body) */
    size_t len, cap;
    int failed; /* a write failed: the client is gone */
    int streaming;  /* an SSE stream has begun: errors go into it */
    int keep_alive; /* of the current response */
    int status;     /* of the current response, for the log */
};

struct http_request {
    char method[16];
    char path[2048]; /* without the query string */
    char *body;      /* NUL-terminated, owned by the request */
    size_t body_len;
    int keep_alive;
};

/* Reads one request. Returns 1 with *r filled, 0 when the client closed the connection (or stayed idle past
 * the timeout) before a request began, -1 for a bad request: *status is the HTTP status to answer (400, 411,
 * 413, 431, 501) and msg says why. */
int http_read_request(struct conn *c, size_t max_body, struct http_request *r, int *status, char *msg,
                      size_t msglen);
void http_request_free(struct http_request *r);

int conn_write(struct conn *c, const char *data, size_t len); /* -1 (and c->failed) when the client is gone */
int conn_peer_gone(struct conn *c);                           /* 1 once the client hung up or the server stops */

const char *http_reason(int status);
/* A whole response with Content-Length (Connection: keep-alive or close after c->keep_alive). */
int http_respond(struct conn *c, int status, const char *content_type, const char *body, size_t len);
/* An OpenAI error object: {"error":{"message","type","param","code"}}; type from the status. */
int http_error(struct conn *c, int status, const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Server-sent events: the header (the connection closes after the stream), "data: JSON\n\n", "data: [DONE]". */
int http_sse_start(struct conn *c);
int http_sse_send(struct conn *c, const char *json, size_t len);
int http_sse_done(struct conn *c);

/* Endpoints: each answers the request on c. */
void api_models(struct conn *c, const struct http_request *r);
void api_chat_completions(struct conn *c, const struct http_request *r);
void api_completions(struct conn *c, const struct http_request *r);
void api_abc_check(struct conn *c, const struct http_request *r);
/* GET of a file of the web page; returns 0 when path is not one of them. */
int static_serve(struct conn *c, const struct http_request *r);

#endif
