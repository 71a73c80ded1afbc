/* An OpenAI-compatible HTTP server for one loaded model, plus the Melodist web page.
 *
 * Plain POSIX sockets and HTTP/1.1, no dependencies. The accept loop runs in the caller's thread; each connection
 * gets a thread of its own (at most SERVER_MAX_CONNECTIONS at once; more are answered 503), so the server stays
 * responsive while a generation runs. Generations take turns (one mutex): the model, its KV cache and the
 * thread pool serve one request at a time, the others wait.
 *
 * Endpoints:
 *   GET  /v1/models             the model, as OpenAI lists models
 *   POST /v1/chat/completions   messages -> reply in the InternLM2 chat template (streaming: SSE chunks)
 *   POST /v1/completions        prompt (encoded with BOS) -> continuation
 *   POST /v1/abc/check          {"abc": TEXT} -> the ABC engine's diagnostics
 *   GET  /health                {"status":"ok"}
 *   GET  /, /app.js, /abcjs.js  the web page (files of options.web_dir; abcjs from its node_modules)
 * Errors are OpenAI error objects: {"error":{"message","type","param","code"}} with 400/404/405/411/413/431/503.
 * See docs/server.md.
 *
 * Ownership: server_new borrows the model and tokenizer (they must outlive the server). Nothing here prints or
 * exits; problems with single requests go to the client, and to options.log when it is set. */
#ifndef MELODIST_SERVER_H
#define MELODIST_SERVER_H

#include <stddef.h>
#include <stdio.h>

#include "melodist/model.h"
#include "melodist/tokenizer.h"

#define SERVER_MAX_CONNECTIONS 64

struct server_options {
    const char *host;        /* address to listen on ("127.0.0.1"; "0.0.0.0" for every interface) */
    int port;                /* 0: any free port (see server_port) */
    const char *model_id;    /* the name /v1/models reports and responses echo */
    const char *web_dir;     /* the web page's files (index.html, app.js, node_modules/abcjs/dist/); NULL: none */
    const char *system;      /* system prompt when a chat request has none (NULL: none) */
    int context;             /* tokens of context per request (<= 0: the model's, at most 4096) */
    int default_max_tokens;  /* reply length when a request does not give one (<= 0: 1024, at most context/2) */
    size_t max_body;         /* request body limit in bytes (0: 1 MiB) */
    FILE *log;               /* one line per request (NULL: quiet) */
};

void server_options_default(struct server_options *o);

struct server;

/* Binds and listens. NULL with a message (address in use, bad host, the tokenizer lacks the chat tokens, out of
 * memory). */
struct server *server_new(const struct server_options *o, const struct model *m, const mt_tokenizer *tok,
                          char *err, size_t errlen);
int server_port(const struct server *s); /* the port it listens on */
/* Serves until server_stop; then stops accepting, ends the open connections (generations stop at their next
 * token) and waits for their threads. Returns 0, or -1 with a message when accept fails for good. */
int server_run(struct server *s, char *err, size_t errlen);
/* Asks server_run to return. Async-signal-safe: may be called from a SIGINT/SIGTERM handler. */
void server_stop(struct server *s);
void server_free(struct server *s);

#endif
