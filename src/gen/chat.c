/* InternLM2 chat: template encoding, context fitting, stop strings and a conversation session. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/chat.h"
#include "melodist/json.h"

const char *chat_role_name(enum chat_role role)
{
    switch (role) {
    case CHAT_SYSTEM: return "system";
    case CHAT_USER: return "user";
    case CHAT_ASSISTANT: return "assistant";
    case CHAT_PLUGIN_SYSTEM: return CHAT_ROLE_PLUGIN_SYSTEM;
    case CHAT_ENVIRONMENT: return CHAT_ROLE_PLUGIN_ENVIRONMENT;
    case CHAT_FILE: return CHAT_ROLE_FILE;
    }
    return "?";
}

static int push_id(tok_ids *out, int id)
{
    if (out->n == out->cap) {
        size_t cap = out->cap ? 2 * out->cap : 256;
        int *v = realloc(out->v, cap * sizeof *v);
        if (!v)
            return -1;
        out->v = v;
        out->cap = cap;
    }
    out->v[out->n++] = id;
    return 0;
}

struct chat_ids {
    int im_start, im_end, bos;
};

static int chat_ids_of(const mt_tokenizer *tok, struct chat_ids *c, char *err, size_t errlen)
{
    c->im_start = tok_special_id(tok, "<|im_start|>");
    c->im_end = tok_special_id(tok, "<|im_end|>");
    c->bos = tok_bos_id(tok);
    if (c->im_start < 0 || c->im_end < 0) {
        snprintf(err, errlen, "the tokenizer has no <|im_start|>/<|im_end|> tokens, so it cannot encode the "
                              "InternLM2 chat template (use an InternLM2-chat tokenizer.model)");
        return -1;
    }
    return 0;
}

/* The special tokens of a call; the "\n" after them belongs to the text that follows, as the Hugging Face
 * tokenizer splits on added tokens only. */
static const char *const action_markers[] = {"<|action_start|><|plugin|>", CHAT_ACTION_END};

/* Length of the plain text before the first action marker in text[0..len); *marker receives the marker's length
 * (0 when there is none). */
static size_t before_marker(const char *text, size_t len, size_t *marker)
{
    size_t plain = len;
    *marker = 0;
    for (size_t m = 0; m < 2; m++) {
        const char *at = memmem(text, len, action_markers[m], strlen(action_markers[m]));
        if (at && (size_t)(at - text) < plain)
            plain = (size_t)(at - text), *marker = strlen(action_markers[m]);
    }
    return plain;
}

/* <|im_start|> role "\n" text <|im_end|> "\n": the text between special tokens is encoded on its own, as the
 * Hugging Face tokenizer does when it splits on added tokens. The role line is ours, so the special tokens of a
 * plugin role line are tokens; in the text only an assistant's action markers are. */
static int encode_turn(const mt_tokenizer *tok, const struct chat_ids *c, enum chat_role role, const char *text,
                       size_t len, int closed, tok_ids *out)
{
    const char *name = chat_role_name(role);
    int plugin_role = role == CHAT_PLUGIN_SYSTEM || role == CHAT_ENVIRONMENT;
    size_t rl = plugin_role ? 0 : strlen(name), marker = 0;
    size_t first = role == CHAT_ASSISTANT ? before_marker(text, len, &marker) : len;
    char *head = malloc(rl + 1 + first);
    if (!head)
        return -1;
    memcpy(head, name, rl);
    head[rl] = '\n';
    if (first)
        memcpy(head + rl + 1, text, first);
    int rc = push_id(out, c->im_start) ||
             (plugin_role && tok_encode(tok, name, strlen(name), TOK_PARSE_SPECIAL, out)) ||
             tok_encode(tok, head, rl + 1 + first, 0, out);
    free(head);
    /* The rest of an assistant's text: its action markers as tokens, the text between them plain. */
    for (size_t at = first; !rc && at < len;) {
        size_t plain = before_marker(text + at, len - at, &marker);
        rc = (plain && tok_encode(tok, text + at, plain, 0, out)) ||
             (marker && tok_encode(tok, text + at + plain, marker, TOK_PARSE_SPECIAL, out));
        at += plain + marker;
    }
    if (!rc && closed)
        rc = push_id(out, c->im_end) || tok_encode(tok, "\n", 1, 0, out);
    return rc ? -1 : 0;
}

/* Encodes the messages back to back and records where each one starts (starts[n] = the generation prompt). */
static int encode_all(const mt_tokenizer *tok, const struct chat_ids *c, const struct chat_message *msgs, int n,
                      int add_generation_prompt, tok_ids *out, size_t *starts)
{
    for (int i = 0; i < n; i++) {
        if (starts)
            starts[i] = out->n;
        if (encode_turn(tok, c, msgs[i].role, msgs[i].text, msgs[i].len, 1, out))
            return -1;
    }
    if (starts)
        starts[n] = out->n;
    if (add_generation_prompt && encode_turn(tok, c, CHAT_ASSISTANT, "", 0, 0, out))
        return -1;
    return 0;
}

int chat_encode(const mt_tokenizer *tok, const struct chat_message *msgs, int n, int add_generation_prompt,
                tok_ids *out, char *err, size_t errlen)
{
    struct chat_ids c;
    if (chat_ids_of(tok, &c, err, errlen))
        return -1;
    if ((c.bos >= 0 && push_id(out, c.bos)) || encode_all(tok, &c, msgs, n, add_generation_prompt, out, NULL)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int append_ids(tok_ids *out, const int *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (push_id(out, ids[i]))
            return -1;
    return 0;
}

int chat_encode_fit(const mt_tokenizer *tok, const struct chat_message *msgs, int n, int max_tokens,
                    tok_ids *out, int *n_dropped, char *err, size_t errlen)
{
    struct chat_ids c;
    if (chat_ids_of(tok, &c, err, errlen))
        return -1;
    if (n < 1) {
        snprintf(err, errlen, "no message to reply to");
        return -1;
    }
    tok_ids all = {0};
    size_t *starts = malloc(((size_t)n + 1) * sizeof *starts);
    if (!starts || encode_all(tok, &c, msgs, n, 1, &all, starts)) {
        free(starts);
        tok_ids_free(&all);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t bos = c.bos >= 0, total = bos + all.n;
    int sys = (msgs[0].role == CHAT_SYSTEM || msgs[0].role == CHAT_PLUGIN_SYSTEM) && n > 1, first = sys;
    /* Drop whole turns from the oldest; the kept part starts with a user message. */
    while (first < n - 1 &&
           (total > (size_t)max_tokens || (msgs[first].role != CHAT_USER && msgs[first].role != CHAT_FILE))) {
        total -= starts[first + 1] - starts[first];
        first++;
    }
    int rc = -1;
    if (total > (size_t)max_tokens) {
        size_t sys_len = sys ? starts[1] - starts[0] : 0;
        snprintf(err, errlen,
                 "the conversation does not fit: the system prompt (%zu tokens) and the last message "
                 "(%zu tokens with the template) need %zu tokens, but only %d are available; shorten the "
                 "message or the system prompt, or give a longer context",
                 sys_len, all.n - starts[n - 1], total, max_tokens);
    } else if ((c.bos >= 0 && push_id(out, c.bos)) || (sys && append_ids(out, all.v, starts[1])) ||
               append_ids(out, all.v + starts[first], all.n - starts[first])) {
        snprintf(err, errlen, "out of memory");
    } else {
        *n_dropped = first - sys;
        rc = 0;
    }
    free(starts);
    tok_ids_free(&all);
    return rc;
}

int chat_stop_tokens(const mt_tokenizer *tok, int eos_id, int stops[2])
{
    int n = 0;
    stops[n++] = eos_id;
    int im_end = tok_special_id(tok, "<|im_end|>");
    if (im_end >= 0 && im_end != eos_id)
        stops[n++] = im_end;
    return n;
}

/* ---- stop strings ---- */

struct chat_stop {
    char **stops;
    size_t *lens;
    int n;
    char *held, *out; /* text that may begin a stop string; the text last given out */
    size_t n_held, cap;
};

void chat_stop_free(struct chat_stop *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++)
        free(s->stops[i]);
    free(s->stops);
    free(s->lens);
    free(s->held);
    free(s->out);
    free(s);
}

struct chat_stop *chat_stop_new(const char *const *stops, int n)
{
    struct chat_stop *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->stops = calloc((size_t)n + 1, sizeof *s->stops);
    s->lens = calloc((size_t)n + 1, sizeof *s->lens);
    s->cap = 256;
    s->held = malloc(s->cap);
    s->out = malloc(s->cap);
    if (!s->stops || !s->lens || !s->held || !s->out) {
        chat_stop_free(s);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        if (!*stops[i])
            continue; /* an empty stop string would stop before the first token */
        s->lens[s->n] = strlen(stops[i]);
        if (!(s->stops[s->n++] = strdup(stops[i]))) {
            chat_stop_free(s);
            return NULL;
        }
    }
    return s;
}

/* Whether text[0..len) is a prefix of some stop string. */
static int stop_prefix(const struct chat_stop *s, const char *text, size_t len)
{
    for (int i = 0; i < s->n; i++)
        if (len < s->lens[i] && !memcmp(s->stops[i], text, len))
            return 1;
    return 0;
}

static void give(struct chat_stop *s, size_t n, const char **out, size_t *out_len)
{
    memcpy(s->out, s->held, n);
    memmove(s->held, s->held + n, s->n_held - n);
    s->n_held -= n;
    *out = s->out;
    *out_len = n;
}

int chat_stop_push(struct chat_stop *s, const char *text, size_t len, const char **out, size_t *out_len)
{
    *out = "";
    *out_len = 0;
    if (s->n_held + len > s->cap) {
        size_t cap = 2 * (s->n_held + len) + 64;
        char *held = realloc(s->held, cap);
        if (held)
            s->held = held;
        char *o = held ? realloc(s->out, cap) : NULL;
        if (!o)
            return -1;
        s->out = o;
        s->cap = cap;
    }
    memcpy(s->held + s->n_held, text, len);
    s->n_held += len;
    /* The earliest complete stop string wins. */
    size_t hit = s->n_held + 1;
    for (int i = 0; i < s->n; i++) {
        char *at = memmem(s->held, s->n_held, s->stops[i], s->lens[i]);
        if (at && (size_t)(at - s->held) < hit)
            hit = (size_t)(at - s->held);
    }
    if (hit <= s->n_held) {
        give(s, hit, out, out_len);
        s->n_held = 0;
        return 1;
    }
    size_t keep = 0; /* the longest tail that could still grow into a stop string */
    for (size_t i = 0; i < s->n_held; i++)
        if (stop_prefix(s, s->held + i, s->n_held - i)) {
            keep = s->n_held - i;
            break;
        }
    give(s, s->n_held - keep, out, out_len);
    return 0;
}

void chat_stop_finish(struct chat_stop *s, const char **out, size_t *out_len)
{
    *out = "";
    *out_len = 0;
    if (s->n_held)
        give(s, s->n_held, out, out_len);
}

/* ---- session ---- */

struct chat_session {
    const struct model *m;
    const mt_tokenizer *tok;
    struct model_state *state;
    int context;
    char *system;
    struct chat_message *turns; /* texts owned */
    int n_turns, cap_turns;
    tok_ids cached; /* the ids whose keys/values are in state, positions 0..cached.n */
    int stops[2], n_stops;
    char *plugin_schema; /* NULL: no plugins */
    chat_plugin_fn plugin;
    void *plugin_ctx;
    int max_calls;
};

void chat_session_free(struct chat_session *s)
{
    if (!s)
        return;
    chat_session_reset(s);
    free(s->turns);
    free(s->system);
    free(s->plugin_schema);
    tok_ids_free(&s->cached);
    model_state_free(s->state);
    free(s);
}

struct chat_session *chat_session_new(const struct model *m, const mt_tokenizer *tok, const char *system,
                                      int context, char *err, size_t errlen)
{
    struct chat_ids c;
    if (chat_ids_of(tok, &c, err, errlen))
        return NULL;
    if (tok_vocab_size(tok) > m->config.vocab_size) {
        snprintf(err, errlen, "the tokenizer has %d pieces but the model only %d embeddings: they do not belong "
                              "together", tok_vocab_size(tok), m->config.vocab_size);
        return NULL;
    }
    struct chat_session *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->m = m;
    s->tok = tok;
    s->context = context > 0 ? context : m->config.max_position_embeddings;
    s->n_stops = chat_stop_tokens(tok, m->config.eos_token_id, s->stops);
    s->state = model_state_new(m, s->context, 256);
    if (!s->state || chat_session_set_system(s, system)) {
        snprintf(err, errlen, "out of memory for a %d-token context", s->context);
        chat_session_free(s);
        return NULL;
    }
    return s;
}

int chat_session_set_system(struct chat_session *s, const char *system)
{
    char *copy = NULL;
    if (system && *system && !(copy = strdup(system)))
        return -1;
    free(s->system);
    s->system = copy;
    return 0;
}

int chat_session_set_plugins(struct chat_session *s, const char *schema, chat_plugin_fn run, void *ctx, int max_calls)
{
    char *copy = NULL;
    if (schema && !(copy = strdup(schema)))
        return -1;
    free(s->plugin_schema);
    s->plugin_schema = copy;
    s->plugin = run;
    s->plugin_ctx = ctx;
    s->max_calls = max_calls;
    return 0;
}

void chat_session_reset(struct chat_session *s)
{
    for (int i = 0; i < s->n_turns; i++)
        free((char *)s->turns[i].text);
    s->n_turns = 0;
}

int chat_session_add(struct chat_session *s, enum chat_role role, const char *text, size_t len)
{
    if (s->n_turns == s->cap_turns) {
        int cap = s->cap_turns ? 2 * s->cap_turns : 16;
        struct chat_message *t = realloc(s->turns, (size_t)cap * sizeof *t);
        if (!t)
            return -1;
        s->turns = t;
        s->cap_turns = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, text, len);
    copy[len] = 0;
    s->turns[s->n_turns++] = (struct chat_message){role, copy, len};
    return 0;
}

int chat_session_attach(struct chat_session *s, const char *text, size_t len)
{
    return chat_session_add(s, CHAT_FILE, text, len);
}

int chat_session_messages(const struct chat_session *s, const struct chat_message **msgs)
{
    *msgs = s->turns;
    return s->n_turns;
}

int chat_session_context(const struct chat_session *s)
{
    return s->context;
}

static void drop_turns(struct chat_session *s, int n)
{
    for (int i = 0; i < n; i++)
        free((char *)s->turns[i].text);
    memmove(s->turns, s->turns + n, (size_t)(s->n_turns - n) * sizeof *s->turns);
    s->n_turns -= n;
}

struct reply_ctx {
    struct chat_session *s;
    tok_stream *decoder;
    struct chat_stop *stop;
    chat_text_fn on_text;
    void *ctx;
    tok_ids generated;
    char *text;
    size_t len, cap;
    int action_end; /* with plugins: the id of <|action_end|>, which ends the turn as lagent stops there; else -1 */
    int stop_string, acted, halted, failed;
};

static int reply_text(struct reply_ctx *r, const char *text, size_t len)
{
    if (!len)
        return 0;
    if (r->len + len + 1 > r->cap) {
        size_t cap = 2 * (r->len + len) + 256;
        char *t = realloc(r->text, cap);
        if (!t)
            return -1;
        r->text = t;
        r->cap = cap;
    }
    memcpy(r->text + r->len, text, len);
    r->len += len;
    r->text[r->len] = 0;
    if (r->on_text && r->on_text(r->ctx, text, len))
        r->halted = 1;
    return 0;
}

static int reply_token(void *ctx, int token)
{
    struct reply_ctx *r = ctx;
    const char *text, *shown;
    size_t len, shown_len;
    if (push_id(&r->generated, token) || tok_stream_push(r->decoder, token, &text, &len)) {
        r->failed = 1;
        return 1;
    }
    int hit = chat_stop_push(r->stop, text, len, &shown, &shown_len);
    if (hit < 0 || reply_text(r, shown, shown_len)) {
        r->failed = 1;
        return 1;
    }
    r->stop_string = hit;
    r->acted = token == r->action_end;
    return hit || r->acted || r->halted;
}

static size_t common_prefix(const tok_ids *a, const tok_ids *b)
{
    size_t n = 0;
    while (n < a->n && n < b->n && a->v[n] == b->v[n])
        n++;
    return n;
}

/* Appends a variant of a value to the copy prior's source (gen_params.copy_source): the text as the prompt encodes
 * message text, after a space when `spaced`. */
static int copy_variant(const mt_tokenizer *tok, const char *text, size_t len, int spaced, tok_ids *out)
{
    char *t = malloc(len + 1);
    if (!t)
        return -1;
    t[0] = ' ';
    memcpy(t + spaced, text, len);
    int rc = tok_encode(tok, t, len + (size_t)spaced, 0, out);
    free(t);
    return rc;
}

/* A value as a group of the source: after a space (as it stands in a sentence) and as it is; a list of numbers
 * also with the Chinese enumeration comma ("1、2"). */
static int copy_value(const mt_tokenizer *tok, const char *text, size_t len, int list, tok_ids *out)
{
    if (push_id(out, -1) || copy_variant(tok, text, len, 1, out) || push_id(out, -2) ||
        copy_variant(tok, text, len, 0, out))
        return -1;
    if (!list)
        return 0;
    char *listed = malloc(3 * len + 1);
    if (!listed)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ',') {
            memcpy(listed + n, "\xe3\x80\x81", 3);
            n += 3;
            while (i + 1 < len && text[i + 1] == ' ')
                i++;
        } else {
            listed[n++] = text[i];
        }
    }
    int rc = push_id(out, -2) || copy_variant(tok, listed, n, 1, out) || push_id(out, -2) ||
             copy_variant(tok, listed, n, 0, out);
    free(listed);
    return rc ? -1 : 0;
}

/* The end of the word in small letters at text[at] that a space or the end follows; `at` when there is none. */
static size_t small_word(const char *text, size_t len, size_t at)
{
    size_t e = at;
    while (e < len && islower((unsigned char)text[e]))
        e++;
    return e > at && (e == len || text[e] == ' ') ? e : at;
}

/* A string value as groups: its words in small letters ("minor", "mixolydian") each on their own, since an
 * answer in another language puts them in its own words; the symbols between them ("Bm", "| G | D7 |") as
 * they stand. */
static int copy_words(const mt_tokenizer *tok, const char *text, size_t len, tok_ids *out)
{
    for (size_t at = 0; at < len;) {
        size_t b = at;
        while (b < len && text[b] == ' ')
            b++;
        size_t e = small_word(text, len, b);
        if (e == b) { /* symbols up to the next word */
            for (size_t w;; e = w) {
                while (e < len && text[e] != ' ')
                    e++;
                for (w = e; w < len && text[w] == ' ';)
                    w++;
                if (w == len || small_word(text, len, w) > w)
                    break;
            }
        }
        if (e > b && copy_value(tok, text + b, e - b, 0, out))
            return -1;
        at = e;
    }
    return 0;
}

/* A plugin's JSON result as groups: its values (a string's contents, a number, the inside of an array of numbers),
 * never the keys or the punctuation around them, which an answer in words does not restate; text that is not a
 * JSON object is one group. */
static int copy_result(const mt_tokenizer *tok, const char *text, size_t len, tok_ids *out)
{
    size_t i = 0;
    while (i < len && isspace((unsigned char)text[i]))
        i++;
    if (i == len || text[i] != '{')
        return copy_value(tok, text, len, 0, out);
    while (i < len) {
        char c = text[i];
        size_t b = i + 1, e = b;
        int rc = 0;
        if (c == '"') {
            while (e < len && text[e] != '"')
                e += text[e] == '\\' ? 2 : 1;
            if (e > len)
                e = len;
            i = e + 1;
            size_t k = i;
            while (k < len && isspace((unsigned char)text[k]))
                k++;
            if (k < len && text[k] == ':') /* a key */
                continue;
            rc = copy_words(tok, text + b, e - b, out);
        } else if (c == '-' || isdigit((unsigned char)c)) {
            b = i;
            while (e < len && (isalnum((unsigned char)text[e]) || (text[e] && strchr(".+-", text[e]))))
                e++;
            i = e;
            rc = copy_value(tok, text + b, e - b, 0, out);
        } else if (c == '[') {
            while (e < len && text[e] != ']' && text[e] != '[' && text[e] != '{' && text[e] != '"')
                e++;
            if (e == len || text[e] != ']') { /* not an array of numbers: its items are read one by one */
                i++;
                continue;
            }
            i = e + 1;
            rc = e > b && copy_value(tok, text + b, e - b, 1, out);
        } else {
            i++;
        }
        if (rc)
            return -1;
    }
    return 0;
}

/* A user message as groups: what it quotes (「」 『』 “” "" ``), in order, which is what a call passes on. */
static int copy_quotes(const mt_tokenizer *tok, const char *text, size_t len, tok_ids *out)
{
    static const char *const quotes[][2] = {{"\xe3\x80\x8c", "\xe3\x80\x8d"}, {"\xe3\x80\x8e", "\xe3\x80\x8f"},
                                            {"\xe2\x80\x9c", "\xe2\x80\x9d"}, {"\"", "\""}, {"`", "`"}};
    for (size_t at = 0; at < len;) {
        size_t q = 0, ol = 0;
        while (q < sizeof quotes / sizeof quotes[0] &&
               (ol = strlen(quotes[q][0]), at + ol > len || memcmp(text + at, quotes[q][0], ol)))
            q++;
        if (q == sizeof quotes / sizeof quotes[0]) {
            at++;
            continue;
        }
        const char *b = text + at + ol, *close = memmem(b, len - at - ol, quotes[q][1], strlen(quotes[q][1]));
        if (!close)
            break;
        if (close > b && copy_value(tok, b, (size_t)(close - b), 0, out))
            return -1;
        at = (size_t)(close - text) + strlen(quotes[q][1]);
    }
    return 0;
}

int chat_copy_source(const struct chat_session *s, tok_ids *out)
{
    int user = s->n_turns - 1;
    while (user >= 0 && s->turns[user].role != CHAT_USER)
        user--;
    for (int i = user + 1; i < s->n_turns; i++)
        if (s->turns[i].role == CHAT_ENVIRONMENT && copy_result(s->tok, s->turns[i].text, s->turns[i].len, out))
            return -1;
    if (!out->n && user >= 0 && copy_quotes(s->tok, s->turns[user].text, s->turns[user].len, out))
        return -1;
    return 0;
}

/* One assistant turn for the history as it is: fits the prompt, generates, appends the reply to the history.
 * *dropped receives the number of old turns the prompt left out. */
static int assistant_turn(struct chat_session *s, const struct gen_params *p, const char *const *stop_strings,
                          int n_stop_strings, chat_text_fn on_text, void *ctx, struct chat_reply *reply, char *err,
                          size_t errlen)
{
    const char *system = s->plugin_schema ? s->plugin_schema : s->system;
    int n_msgs = s->n_turns + (system != NULL);
    struct chat_message *msgs = malloc((size_t)n_msgs * sizeof *msgs);
    struct reply_ctx r = {.s = s, .on_text = on_text, .ctx = ctx, .action_end = -1};
    /* With plugins the action markers must come through: they are how a call is recognised. */
    r.decoder = tok_stream_new(s->tok, s->plugin_schema ? TOK_SPECIAL_NAMES : TOK_SKIP_SPECIAL);
    r.stop = chat_stop_new(stop_strings, n_stop_strings);
    /* The call is complete at <|action_end|>: what a model writes after it, before the result, would be
     * an answer made up without the result. */
    if (s->plugin_schema)
        r.action_end = tok_special_id(s->tok, CHAT_ACTION_END);
    tok_ids ids = {0}, copy = {0};
    int rc = -1;
    if (!msgs || !r.decoder || !r.stop || (s->plugin_schema && p->copy_bias != 0 && chat_copy_source(s, &copy))) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    if (system)
        msgs[0] = (struct chat_message){s->plugin_schema ? CHAT_PLUGIN_SYSTEM : CHAT_SYSTEM, system, strlen(system)};
    memcpy(msgs + (system != NULL), s->turns, (size_t)s->n_turns * sizeof *msgs);
    if (chat_encode_fit(s->tok, msgs, n_msgs, s->context - p->max_tokens, &ids, &reply->n_dropped, err, errlen))
        goto done;

    /* Reuse the cached keys/values of the prefix this prompt shares with the last one. The repetition penalty
     * must see the whole prompt, which gen_run only knows when it runs all of it. */
    size_t reuse = p->repetition_penalty == 1.0f ? common_prefix(&s->cached, &ids) : 0;
    if (reuse == ids.n)
        reuse--; /* the last prompt token must run to give the first logits */
    s->state->pos = (int)reuse;
    struct gen_params q = *p;
    q.stop_tokens = s->stops;
    q.n_stop_tokens = s->n_stops;
    q.copy_source = copy.v;
    q.n_copy_source = (int)copy.n;
    int n = gen_run(s->m, s->state, ids.v + reuse, (int)(ids.n - reuse), &q, reply_token, &r, err, errlen);
    s->cached.n = 0;
    if (n < 0 || r.failed) {
        s->state->pos = 0;
        if (r.failed)
            snprintf(err, errlen, "the model produced a token outside the tokenizer's vocabulary, or out of memory");
        goto done;
    }
    const char *tail, *shown;
    size_t tail_len, shown_len;
    if (!r.stop_string && !tok_stream_finish(r.decoder, &tail, &tail_len)) {
        int hit = chat_stop_push(r.stop, tail, tail_len, &shown, &shown_len);
        r.stop_string = hit > 0;
        if (hit < 0 || reply_text(&r, shown, shown_len))
            goto oom;
    }
    if (!r.stop_string) {
        chat_stop_finish(r.stop, &shown, &shown_len);
        if (reply_text(&r, shown, shown_len))
            goto oom;
    }
    /* What the cache now holds: the prompt, then the generated tokens that were fed back. */
    if (append_ids(&s->cached, ids.v, ids.n) || append_ids(&s->cached, r.generated.v, (size_t)s->state->pos - ids.n))
        goto oom;
    if (!r.text && !(r.text = calloc(1, 1)))
        goto oom;
    if (chat_session_add(s, CHAT_ASSISTANT, r.text, r.len))
        goto oom;
    free(reply->text);
    reply->text = r.text;
    reply->len = r.len;
    r.text = NULL;
    reply->n_prompt = (int)ids.n;
    reply->n_generated += n;
    reply->stopped = r.stop_string || r.acted || (n < p->max_tokens && !r.halted);
    rc = 0;
    goto done;
oom:
    snprintf(err, errlen, "out of memory");
    s->cached.n = 0;
    s->state->pos = 0;
done:
    free(msgs);
    free(r.text);
    tok_ids_free(&r.generated);
    tok_ids_free(&ids);
    tok_ids_free(&copy);
    chat_stop_free(r.stop);
    tok_stream_free(r.decoder);
    return rc;
}

int chat_find_call(const char *text, size_t *begin, size_t *end)
{
    const char *a = strstr(text, CHAT_ACTION_START);
    if (!a)
        return 0;
    a += strlen(CHAT_ACTION_START);
    const char *b = strstr(a, CHAT_ACTION_END);
    *begin = (size_t)(a - text);
    *end = b ? (size_t)(b - text) : strlen(text);
    return 1;
}

/* The environment's answer to the call in the assistant's last turn: the plugin's result, or its refusal as
 * {"error": ...}. 1 when there was a call, 0 when none, -1 when out of memory. */
static int answer_call(struct chat_session *s, int user_turn, struct chat_reply *reply)
{
    const char *said = s->turns[s->n_turns - 1].text;
    size_t begin, end;
    if (!chat_find_call(said, &begin, &end))
        return 0;
    char err[512];
    const struct chat_message *about = user_turn > 0 && s->turns[user_turn - 1].role == CHAT_FILE
                                           ? &s->turns[user_turn - 1]
                                           : &s->turns[user_turn];
    char *result = s->plugin(s->plugin_ctx, about->text, said + begin, end - begin, err, sizeof err);
    reply->n_calls++;
    if (!result) {
        reply->n_call_errors++;
        char *text = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&text, &n);
        if (!f)
            return -1;
        fputs("{\"error\": ", f);
        json_fput_string(f, err);
        fputs("}", f);
        if (fclose(f))
            return -1;
        result = text;
    }
    int rc = chat_session_add(s, CHAT_ENVIRONMENT, result, strlen(result)) ? -1 : 1;
    free(result);
    return rc;
}

int chat_session_reply(struct chat_session *s, const char *user, size_t len, const struct gen_params *p,
                       const char *const *stop_strings, int n_stop_strings, chat_text_fn on_text, void *ctx,
                       struct chat_reply *reply, char *err, size_t errlen)
{
    memset(reply, 0, sizeof *reply);
    if (p->max_tokens < 1 || p->max_tokens >= s->context) {
        snprintf(err, errlen, "the reply length (%d tokens) must be at least 1 and below the context length (%d)",
                 p->max_tokens, s->context);
        return -1;
    }
    int before = s->n_turns;
    if (chat_session_add(s, CHAT_USER, user, len)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = assistant_turn(s, p, stop_strings, n_stop_strings, on_text, ctx, reply, err, errlen);
    while (!rc && s->plugin_schema && reply->n_calls < s->max_calls) {
        int called = answer_call(s, before, reply);
        if (called < 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        } else if (!called) {
            break;
        } else {
            rc = assistant_turn(s, p, stop_strings, n_stop_strings, on_text, ctx, reply, err, errlen);
        }
    }
    if (rc) { /* the history as before the call */
        while (s->n_turns > before)
            free((char *)s->turns[--s->n_turns].text);
        free(reply->text);
        memset(reply, 0, sizeof *reply);
        return -1;
    }
    drop_turns(s, reply->n_dropped);
    return 0;
}
