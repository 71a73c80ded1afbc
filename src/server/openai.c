/* The OpenAI-compatible endpoints (models, chat completions, completions) and the ABC check endpoint.
 * Request fields follow OpenAI's API; the JSON shapes of the answers are OpenAI's, so its client libraries
 * work unchanged. Generation runs under the server's gen_lock. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "melodist/abc.h"
#include "melodist/abc_tools.h"
#include "melodist/json.h"
#include "server_internal.h"

#define MAX_STOPS 16

/* A member that is present and not null. */
static const struct json *field(const struct json *o, const char *key)
{
    const struct json *v = json_get(o, key);
    return v && v->type != JSON_NULL ? v : NULL;
}

static struct json *parse_body(struct conn *c, const struct http_request *r)
{
    char err[256];
    struct json *req = json_parse(r->body, r->body_len, err, sizeof err);
    if (!req) {
        http_error(c, 400, NULL, "invalid_json", "the request body is not valid JSON: %s", err);
        return NULL;
    }
    if (req->type != JSON_OBJECT) {
        http_error(c, 400, NULL, "invalid_json", "the request body must be a JSON object");
        json_free(req);
        return NULL;
    }
    return req;
}

/* The sampling fields both completion endpoints share. */
struct sampling {
    struct gen_params p;
    const char *stops[MAX_STOPS];
    int n_stops;
    int stream, include_usage, max_given;
};

/* Reads number `key` into *out when present. 0, or answers 400 and returns -1 (not a number, out of range,
 * not an integer when integral is set). */
static int number_field(struct conn *c, const struct json *req, const char *key, double lo, double hi,
                        int integral, double *out, int *given)
{
    const struct json *v = field(req, key);
    *given = v != NULL;
    if (!v)
        return 0;
    if (v->type != JSON_NUMBER || v->number < lo || v->number > hi || (integral && v->number != floor(v->number))) {
        http_error(c, 400, key, "invalid_value", "'%s' must be %s between %g and %g", key,
                   integral ? "an integer" : "a number", lo, hi);
        return -1;
    }
    *out = v->number;
    return 0;
}

static uint64_t fresh_seed(struct server *s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_sec * 1000000007u) ^ (uint64_t)ts.tv_nsec ^ (atomic_load(&s->n_requests) << 32);
}

static int read_sampling(struct conn *c, const struct json *req, struct sampling *g)
{
    struct server *s = c->srv;
    memset(g, 0, sizeof *g);
    gen_params_default(&g->p);
    g->p.max_tokens = s->o.default_max_tokens;
    g->p.seed = fresh_seed(s);
    double x;
    int given;
    if (number_field(c, req, "temperature", 0, 100, 0, &x, &given))
        return -1;
    if (given)
        g->p.temperature = (float)x;
    if (number_field(c, req, "top_p", 0, 1, 0, &x, &given))
        return -1;
    if (given)
        g->p.top_p = x > 0 ? (float)x : 1e-6f; /* 0: only the most likely token, as OpenAI's servers read it */
    if (number_field(c, req, "top_k", 0, 1e9, 1, &x, &given))
        return -1;
    if (given)
        g->p.top_k = (int)x;
    if (number_field(c, req, "min_p", 0, 1, 0, &x, &given))
        return -1;
    if (given)
        g->p.min_p = (float)x;
    if (number_field(c, req, "repetition_penalty", 0.01, 100, 0, &x, &given))
        return -1;
    if (given)
        g->p.repetition_penalty = (float)x;
    if (number_field(c, req, "copy_bias", 0, 100, 0, &x, &given))
        return -1;
    if (given)
        g->p.copy_bias = (float)x;
    const char *max_key = field(req, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    if (number_field(c, req, max_key, 1, 1e7, 1, &x, &g->max_given))
        return -1;
    if (g->max_given)
        g->p.max_tokens = (int)x;
    if (number_field(c, req, "seed", -9.2e18, 1.8e19, 1, &x, &given))
        return -1;
    if (given)
        g->p.seed = x < 0 ? (uint64_t)(int64_t)x : (uint64_t)x;
    if (number_field(c, req, "n", 1, 1, 1, &x, &given))
        return -1;
    const struct json *v = field(req, "stream");
    if (v && v->type != JSON_BOOL) {
        http_error(c, 400, "stream", "invalid_type", "'stream' must be true or false");
        return -1;
    }
    g->stream = v && v->boolean;
    const struct json *so = field(req, "stream_options"), *iu = so ? field(so, "include_usage") : NULL;
    g->include_usage = iu && iu->type == JSON_BOOL && iu->boolean;
    if ((v = field(req, "stop"))) {
        size_t n = v->type == JSON_ARRAY ? v->count : 1;
        const struct json *items = v->type == JSON_ARRAY ? v->items : v;
        if ((v->type != JSON_STRING && v->type != JSON_ARRAY) || n > MAX_STOPS) {
            http_error(c, 400, "stop", "invalid_value", "'stop' must be a string or an array of at most %d strings",
                       MAX_STOPS);
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            if (items[i].type != JSON_STRING || strlen(items[i].string) != items[i].len) {
                http_error(c, 400, "stop", "invalid_value", "'stop' must hold strings (without NUL characters)");
                return -1;
            }
            g->stops[g->n_stops++] = items[i].string;
        }
    }
    return 0;
}

/* {"id":..,"object":..,"created":..,"model":.., (the caller goes on) */
static void put_head(struct data_buf *b, const char *id, const char *object, long created, const char *model)
{
    data_buf_puts(b, "{\"id\":");
    data_json_cstring(b, id);
    data_buf_puts(b, ",\"object\":");
    data_json_cstring(b, object);
    data_buf_printf(b, ",\"created\":%ld,\"model\":", created);
    data_json_cstring(b, model);
}

static void put_usage(struct data_buf *b, int n_prompt, int n_generated)
{
    data_buf_printf(b, "\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d}", n_prompt,
                    n_generated, n_prompt + n_generated);
}

/* GET /v1/models lists the one model; GET /v1/models/ID is that model, when ID is its name. */
void api_models(struct conn *c, const struct http_request *r)
{
    struct server *s = c->srv;
    const char *id = r->path + strlen("/v1/models");
    int one = *id == '/';
    if (one && strcmp(id + 1, s->model_id)) {
        http_error(c, 404, "model", "model_not_found", "no model '%s' here: this server has '%s'", id + 1,
                   s->model_id);
        return;
    }
    struct data_buf b = {0};
    data_buf_puts(&b, one ? "{\"id\":" : "{\"object\":\"list\",\"data\":[{\"id\":");
    data_json_cstring(&b, s->model_id);
    data_buf_printf(&b, ",\"object\":\"model\",\"created\":0,\"owned_by\":\"melodist\",\"context_length\":%d,"
                        "\"parameters\":%zu}%s\n", s->o.context, model_param_count(s->m), one ? "" : "]}");
    http_respond(c, 200, "application/json", b.data, b.len);
    data_buf_free(&b);
}

/* ---- one generation, streamed or collected ---- */

enum api_kind { API_CHAT, API_COMPLETION };

struct run {
    struct conn *c;
    enum api_kind kind;
    const struct sampling *g;
    char id[64];
    long created;
    int started; /* SSE stream begun */
    struct data_buf chunk;
};

static void run_init(struct run *u, struct conn *c, enum api_kind kind, const struct sampling *g)
{
    memset(u, 0, sizeof *u);
    u->c = c;
    u->kind = kind;
    u->g = g;
    u->created = (long)time(NULL);
    snprintf(u->id, sizeof u->id, "%s-%lx%llx", kind == API_CHAT ? "chatcmpl" : "cmpl", u->created,
             (unsigned long long)atomic_fetch_add(&c->srv->n_requests, 1));
}

/* One streamed chunk: text (NULL: none) and finish_reason (NULL: null); for chat the first one carries the role. */
static int send_chunk(struct run *u, const char *text, size_t len, const char *finish)
{
    struct data_buf *b = &u->chunk;
    data_buf_reset(b);
    put_head(b, u->id, u->kind == API_CHAT ? "chat.completion.chunk" : "text_completion", u->created,
             u->c->srv->model_id);
    data_buf_puts(b, ",\"choices\":[{\"index\":0,");
    if (u->kind == API_CHAT) {
        data_buf_puts(b, "\"delta\":{");
        if (!u->started)
            data_buf_puts(b, "\"role\":\"assistant\"");
        if (text) {
            data_buf_puts(b, u->started ? "\"content\":" : ",\"content\":");
            data_json_string(b, text, len);
        }
        data_buf_puts(b, "}");
    } else {
        data_buf_puts(b, "\"text\":");
        data_json_string(b, text ? text : "", text ? len : 0);
    }
    data_buf_puts(b, ",\"logprobs\":null,\"finish_reason\":");
    if (finish)
        data_json_cstring(b, finish);
    else
        data_buf_puts(b, "null");
    data_buf_puts(b, "}]}");
    if (!u->started && http_sse_start(u->c))
        return -1;
    u->started = 1;
    return http_sse_send(u->c, b->data, b->len);
}

/* Called with each piece of text; non-zero stops the generation (client gone, server stopping). */
static int run_text(void *ctx, const char *text, size_t len)
{
    struct run *u = ctx;
    if (u->g->stream && send_chunk(u, text, len, NULL))
        return 1;
    return conn_peer_gone(u->c);
}

/* The end of a generation: the final chunks, or the whole response. */
static void run_finish(struct run *u, const char *text, size_t len, int n_prompt, int n_generated, int stopped)
{
    const char *finish = stopped ? "stop" : "length";
    if (u->g->stream) {
        if (!u->started && send_chunk(u, u->kind == API_CHAT ? "" : NULL, 0, NULL))
            return;
        if (send_chunk(u, NULL, 0, finish))
            return;
        if (u->g->include_usage) {
            struct data_buf *b = &u->chunk;
            data_buf_reset(b);
            put_head(b, u->id, u->kind == API_CHAT ? "chat.completion.chunk" : "text_completion", u->created,
                     u->c->srv->model_id);
            data_buf_puts(b, ",\"choices\":[],");
            put_usage(b, n_prompt, n_generated);
            data_buf_puts(b, "}");
            if (http_sse_send(u->c, b->data, b->len))
                return;
        }
        http_sse_done(u->c);
        return;
    }
    struct data_buf b = {0};
    put_head(&b, u->id, u->kind == API_CHAT ? "chat.completion" : "text_completion", u->created, u->c->srv->model_id);
    data_buf_puts(&b, ",\"choices\":[{\"index\":0,");
    if (u->kind == API_CHAT) {
        data_buf_puts(&b, "\"message\":{\"role\":\"assistant\",\"content\":");
        data_json_string(&b, text, len);
        data_buf_puts(&b, "}");
    } else {
        data_buf_puts(&b, "\"text\":");
        data_json_string(&b, text, len);
    }
    data_buf_puts(&b, ",\"logprobs\":null,\"finish_reason\":");
    data_json_cstring(&b, finish);
    data_buf_puts(&b, "}],");
    put_usage(&b, n_prompt, n_generated);
    data_buf_puts(&b, "}\n");
    http_respond(u->c, 200, "application/json", b.data, b.len);
    data_buf_free(&b);
}

/* A failed generation: an error object, in the stream when it has begun. */
static void run_fail(struct run *u, int status, const char *param, const char *code, const char *msg)
{
    u->c->streaming = u->started;
    http_error(u->c, status, param, code, "%s", msg);
    if (u->started)
        http_sse_done(u->c);
}

/* ---- chat completions ---- */

/* The text of a message's content: a string, or an array of {"type":"text","text":...} parts (joined). */
static char *content_text(const struct json *content, size_t *len)
{
    struct data_buf b = {0};
    if (!content) {
        data_buf_puts(&b, "");
    } else if (content->type == JSON_STRING) {
        data_buf_append(&b, content->string, content->len);
    } else if (content->type == JSON_ARRAY) {
        data_buf_puts(&b, "");
        for (size_t i = 0; i < content->count; i++) {
            const struct json *type = field(&content->items[i], "type"), *text = field(&content->items[i], "text");
            if (!type || type->type != JSON_STRING || strcmp(type->string, "text") || !text || text->type != JSON_STRING) {
                data_buf_free(&b);
                return NULL;
            }
            data_buf_append(&b, text->string, text->len);
        }
    } else {
        return NULL;
    }
    *len = b.len;
    return b.data;
}

struct chat_request {
    char *system; /* NULL: the server's default */
    struct chat_message *turns;
    int n_turns;
};

static void chat_request_free(struct chat_request *q)
{
    free(q->system);
    for (int i = 0; i < q->n_turns; i++)
        free((char *)q->turns[i].text);
    free(q->turns);
}

/* Checks and copies the messages: an optional system (or developer) message first, then user and assistant
 * messages ending with a user message. 0, or answers 400 and returns -1. */
static int read_messages(struct conn *c, const struct json *req, struct chat_request *q)
{
    memset(q, 0, sizeof *q);
    const struct json *msgs = field(req, "messages");
    if (!msgs || msgs->type != JSON_ARRAY || !msgs->count) {
        http_error(c, 400, "messages", "invalid_value", "'messages' must be a non-empty array of "
                   "{\"role\": \"system\"|\"user\"|\"assistant\", \"content\": TEXT}");
        return -1;
    }
    if (!(q->turns = calloc(msgs->count, sizeof *q->turns))) {
        http_error(c, 500, NULL, NULL, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < msgs->count; i++) {
        const struct json *m = &msgs->items[i], *role = m->type == JSON_OBJECT ? field(m, "role") : NULL;
        const char *name = role && role->type == JSON_STRING ? role->string : "";
        int is_system = !strcmp(name, "system") || !strcmp(name, "developer");
        enum chat_role r = !strcmp(name, "user") ? CHAT_USER : CHAT_ASSISTANT;
        char param[64];
        snprintf(param, sizeof param, "messages[%zu]", i);
        if (!is_system && strcmp(name, "user") && strcmp(name, "assistant")) {
            http_error(c, 400, param, "invalid_value", "%s: role '%s' is not supported (system, user, assistant)",
                       param, name);
            return -1;
        }
        if (is_system && i > 0) {
            http_error(c, 400, param, "invalid_value", "%s: a system message may only come first", param);
            return -1;
        }
        size_t len;
        char *text = content_text(field(m, "content"), &len);
        if (!text || strlen(text) != len) {
            free(text);
            http_error(c, 400, param, "invalid_value", "%s: 'content' must be a string (no NUL characters) or an "
                       "array of text parts", param);
            return -1;
        }
        if (is_system)
            q->system = text;
        else
            q->turns[q->n_turns++] = (struct chat_message){r, text, len};
    }
    if (!q->n_turns || q->turns[q->n_turns - 1].role != CHAT_USER) {
        http_error(c, 400, "messages", "invalid_value", "the last message must come from the user");
        return -1;
    }
    return 0;
}

void api_chat_completions(struct conn *c, const struct http_request *r)
{
    struct server *s = c->srv;
    struct json *req = parse_body(c, r);
    if (!req)
        return;
    struct sampling g;
    struct chat_request q = {0};
    int ok = !read_sampling(c, req, &g) && !read_messages(c, req, &q);
    if (ok && g.p.max_tokens >= s->o.context) {
        http_error(c, 400, "max_tokens", "context_length_exceeded", "max_tokens (%d) must be below the context "
                   "length (%d tokens)", g.p.max_tokens, s->o.context);
        ok = 0;
    }
    if (!ok) {
        if (q.turns)
            chat_request_free(&q);
        json_free(req);
        return;
    }
    struct run u;
    run_init(&u, c, API_CHAT, &g);
    struct chat_reply reply;
    char err[1024];
    const struct chat_message *last = &q.turns[q.n_turns - 1];
    pthread_mutex_lock(&s->gen_lock);
    int rc = -2;
    if (!conn_peer_gone(c)) { /* it may have left while waiting for its turn */
        chat_session_reset(s->chat);
        rc = -1;
        snprintf(err, sizeof err, "out of memory");
        /* "abc_plugins": true gives the model the ABC engine as plugins (docs/chat.md); their calls are run here. */
        const struct json *plugins = field(req, "abc_plugins");
        int with_plugins = plugins && plugins->type == JSON_BOOL && plugins->boolean;
        if (!chat_session_set_system(s->chat, q.system ? q.system : s->system) &&
            !chat_session_set_plugins(s->chat, with_plugins ? abc_tools_schema() : NULL, abc_tools_plugin, NULL,
                                      ABC_TOOLS_MAX_CALLS)) {
            int i = 0;
            while (i < q.n_turns - 1 && !chat_session_add(s->chat, q.turns[i].role, q.turns[i].text, q.turns[i].len))
                i++;
            /* With plugins a tune in the last message is attached before the question, as the model learnt. */
            size_t len = last->len;
            const char *tune = with_plugins ? abc_tools_split(last->text, &len) : NULL;
            if (i == q.n_turns - 1 && (!tune || !chat_session_attach(s->chat, tune, strlen(tune))))
                rc = chat_session_reply(s->chat, last->text, tune ? len : last->len, &g.p, g.stops, g.n_stops,
                                        run_text, &u, &reply, err, sizeof err);
        }
    }
    pthread_mutex_unlock(&s->gen_lock);
    if (rc == 0) {
        run_finish(&u, reply.text, reply.len, reply.n_prompt, reply.n_generated, reply.stopped);
        free(reply.text);
    } else if (rc == -1) {
        int too_long = strstr(err, "does not fit") != NULL; /* the client's to fix; anything else is ours */
        run_fail(&u, too_long ? 400 : 500, too_long ? "messages" : NULL, too_long ? "context_length_exceeded" : NULL,
                 err);
    }
    data_buf_free(&u.chunk);
    chat_request_free(&q);
    json_free(req);
}

/* ---- completions ---- */

struct completion {
    struct run *u;
    tok_stream *decoder;
    struct chat_stop *stop;
    struct data_buf text;
    int stop_string, halted, failed;
};

static int completion_text(struct completion *x, const char *text, size_t len)
{
    if (!len)
        return 0;
    data_buf_append(&x->text, text, len);
    if (run_text(x->u, text, len))
        x->halted = 1;
    return x->halted;
}

static int completion_token(void *ctx, int token)
{
    struct completion *x = ctx;
    const char *text, *shown;
    size_t len, shown_len;
    if (tok_stream_push(x->decoder, token, &text, &len)) {
        x->failed = 1;
        return 1;
    }
    int hit = chat_stop_push(x->stop, text, len, &shown, &shown_len);
    if (hit < 0) {
        x->failed = 1;
        return 1;
    }
    x->stop_string = hit;
    return completion_text(x, shown, shown_len) || hit;
}

/* What the decoder and the stop-string filter still hold at the end. */
static void completion_flush(struct completion *x)
{
    const char *tail, *shown;
    size_t tail_len, shown_len;
    if (x->stop_string || x->halted)
        return;
    if (!tok_stream_finish(x->decoder, &tail, &tail_len)) {
        int hit = chat_stop_push(x->stop, tail, tail_len, &shown, &shown_len);
        x->stop_string = hit > 0;
        completion_text(x, shown, shown_len);
    }
    if (!x->stop_string) {
        chat_stop_finish(x->stop, &shown, &shown_len);
        completion_text(x, shown, shown_len);
    }
}

void api_completions(struct conn *c, const struct http_request *r)
{
    struct server *s = c->srv;
    struct json *req = parse_body(c, r);
    if (!req)
        return;
    struct sampling g;
    const struct json *prompt = field(req, "prompt");
    if (prompt && prompt->type == JSON_ARRAY && prompt->count == 1)
        prompt = &prompt->items[0];
    if (read_sampling(c, req, &g)) {
        json_free(req);
        return;
    }
    if (!prompt || prompt->type != JSON_STRING) {
        http_error(c, 400, "prompt", "invalid_value", "'prompt' must be a string");
        json_free(req);
        return;
    }
    tok_ids ids = {0};
    if (tok_encode(s->tok, prompt->string, prompt->len, TOK_ADD_BOS, &ids)) {
        http_error(c, 500, NULL, NULL, "out of memory");
        json_free(req);
        return;
    }
    int room = s->o.context - (int)ids.n;
    if (!g.max_given && g.p.max_tokens > room)
        g.p.max_tokens = room;
    if (g.p.max_tokens < 1 || g.p.max_tokens > room) {
        http_error(c, 400, "prompt", "context_length_exceeded", "the prompt (%zu tokens) and max_tokens (%d) exceed "
                   "the context length (%d tokens); shorten the prompt or lower max_tokens", ids.n,
                   g.max_given ? g.p.max_tokens : 1, s->o.context);
        tok_ids_free(&ids);
        json_free(req);
        return;
    }
    int stops[2];
    g.p.n_stop_tokens = chat_stop_tokens(s->tok, s->m->config.eos_token_id, stops);
    g.p.stop_tokens = stops;
    struct run u;
    run_init(&u, c, API_COMPLETION, &g);
    struct completion x = {.u = &u};
    x.decoder = tok_stream_new(s->tok, TOK_SKIP_SPECIAL);
    x.stop = chat_stop_new(g.stops, g.n_stops);
    char err[512] = "out of memory";
    int n = -1;
    pthread_mutex_lock(&s->gen_lock);
    struct model_state *state = NULL;
    if (x.decoder && x.stop && !conn_peer_gone(c) && (state = model_state_new(s->m, (int)ids.n + g.p.max_tokens + 1, 256)))
        n = gen_run(s->m, state, ids.v, (int)ids.n, &g.p, completion_token, &x, err, sizeof err);
    model_state_free(state);
    pthread_mutex_unlock(&s->gen_lock);
    if (n >= 0 && !x.failed) {
        completion_flush(&x);
        run_finish(&u, x.text.data ? x.text.data : "", x.text.len, (int)ids.n, n,
                   x.stop_string || (n < g.p.max_tokens && !x.halted));
    } else if (!conn_peer_gone(c)) {
        run_fail(&u, 500, NULL, NULL, x.failed ? "the model produced a token outside the tokenizer's vocabulary" : err);
    }
    data_buf_free(&x.text);
    data_buf_free(&u.chunk);
    chat_stop_free(x.stop);
    tok_stream_free(x.decoder);
    tok_ids_free(&ids);
    json_free(req);
}

/* ---- ABC check ---- */

void api_abc_check(struct conn *c, const struct http_request *r)
{
    struct json *req = parse_body(c, r);
    if (!req)
        return;
    const struct json *abc = field(req, "abc");
    if (!abc || abc->type != JSON_STRING) {
        http_error(c, 400, "abc", "invalid_value", "'abc' must be a string holding ABC notation");
        json_free(req);
        return;
    }
    abc_diags d;
    abc_diags_init(&d);
    size_t n_tunes = 0;
    abc_check_buffer(abc->string, abc->len, &d, &n_tunes);
    struct data_buf b = {0};
    data_buf_printf(&b, "{\"tunes\":%zu,\"errors\":%zu,\"warnings\":%zu,\"valid\":%s,\"diagnostics\":[", n_tunes,
                    d.n_errors, d.n_warnings, n_tunes && !d.n_errors ? "true" : "false");
    for (size_t i = 0; i < d.n; i++) {
        const abc_diag *g = &d.items[i];
        data_buf_printf(&b, "%s{\"severity\":\"%s\",\"line\":%d,\"col\":%d,\"tune\":%d,\"category\":", i ? "," : "",
                        g->severity == ABC_ERROR ? "error" : "warning", g->line, g->col, g->tune);
        data_json_cstring(&b, g->category);
        data_buf_puts(&b, ",\"message\":");
        data_json_cstring(&b, g->message);
        data_buf_puts(&b, ",\"hint\":");
        if (g->hint)
            data_json_cstring(&b, g->hint);
        else
            data_buf_puts(&b, "null");
        data_buf_puts(&b, "}");
    }
    data_buf_puts(&b, "]}\n");
    http_respond(c, 200, "application/json", b.data, b.len);
    data_buf_free(&b);
    abc_diags_free(&d);
    json_free(req);
}
