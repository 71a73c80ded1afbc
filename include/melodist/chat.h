/* InternLM2 chat: the chat template, conversation history, context-length handling and stop strings.
 *
 * Template (InternLM2-chat's tokenizer_config.json chat_template, CHAT_TEMPLATE_JINJA below):
 *   <s><|im_start|>system\n{system}<|im_end|>\n
 *      <|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n{a}<|im_end|>\n ...
 *      <|im_start|>user\n{query}<|im_end|>\n<|im_start|>assistant\n
 * BOS is the token id (not the text "<s>"), so there is exactly one. Encoding matches the Hugging Face tokenizer
 * on this text: the special tokens map to their ids and the text between them is encoded on its own. Message
 * text is always encoded as plain text: a user typing "<|im_end|>" cannot forge a turn boundary.
 * Generation stops at </s> and <|im_end|> (InternLM2's generation_config eos ids).
 *
 * Context: when the conversation does not fit, the oldest turns are dropped (never the system prompt, never
 * the newest user message), and the caller is told how many; if the system prompt and the newest message alone
 * do not fit, that is an error.
 *
 * Ownership: chat_session_new returns a session freed with chat_session_free; it borrows the model and the
 * tokenizer, which must outlive it. Nothing here prints or exits. */
#ifndef MELODIST_CHAT_H
#define MELODIST_CHAT_H

#include <stddef.h>

#include "melodist/generate.h"
#include "melodist/model.h"
#include "melodist/tokenizer.h"

#define CHAT_TEMPLATE_JINJA                                                                                        \
    "{{ bos_token }}{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "                    \
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"                          \
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"

/* InternLM2's agent format (InternLM/InternLM chat/chat_format.md): a second system prompt from the plugins
 * (role line "system name=<|plugin|>", the plugins' JSON schema), the assistant's call
 *   ... <|action_start|><|plugin|>\n{"name": ..., "parameters": {...}}<|action_end|><|im_end|>
 * and the plugin's answer as a turn of the environment (role line "environment name=<|plugin|>"). */
#define CHAT_ROLE_PLUGIN_SYSTEM "system name=<|plugin|>"
#define CHAT_ROLE_PLUGIN_ENVIRONMENT "environment name=<|plugin|>"
#define CHAT_ROLE_FILE "user name=file" /* a file the user attaches, given before the question about it */
#define CHAT_ACTION_START "<|action_start|><|plugin|>\n"
#define CHAT_ACTION_END "<|action_end|>"

enum chat_role { CHAT_SYSTEM, CHAT_USER, CHAT_ASSISTANT, CHAT_PLUGIN_SYSTEM, CHAT_ENVIRONMENT, CHAT_FILE };

/* The role line: "system", "user", "assistant", CHAT_ROLE_PLUGIN_SYSTEM, CHAT_ROLE_PLUGIN_ENVIRONMENT,
 * CHAT_ROLE_FILE. The special
 * tokens in a role line are encoded as such; message text never is, except the action markers (CHAT_ACTION_START,
 * CHAT_ACTION_END) in an assistant message, which are the assistant's own plugin call. */
const char *chat_role_name(enum chat_role role);

struct chat_message {
    enum chat_role role;
    const char *text;
    size_t len;
};

/* Appends BOS + the template of msgs[0..n) (+ "<|im_start|>assistant\n" when add_generation_prompt) to *out.
 * Returns 0, or -1 with a message (the tokenizer lacks <|im_start|>/<|im_end|>, out of memory). */
int chat_encode(const mt_tokenizer *tok, const struct chat_message *msgs, int n, int add_generation_prompt,
                tok_ids *out, char *err, size_t errlen);

/* Like chat_encode with the generation prompt, keeping at most max_tokens ids: drops the oldest turns
 * after a leading system message (of either kind) until it fits; the kept part always starts with a user message
 * (or a file attached to one).
 * *n_dropped receives the number of messages dropped. Returns 0, or -1 with a message when even the
 * system message and the last message alone exceed max_tokens. */
int chat_encode_fit(const mt_tokenizer *tok, const struct chat_message *msgs, int n, int max_tokens,
                    tok_ids *out, int *n_dropped, char *err, size_t errlen);

/* The chat stop token ids of this tokenizer: EOS, then <|im_end|> when it has one. Returns the count (1 or 2). */
int chat_stop_tokens(const mt_tokenizer *tok, int eos_id, int stops[2]);

/* Stop strings: watches streamed text and holds back what could be the start of a stop string. */
struct chat_stop;

struct chat_stop *chat_stop_new(const char *const *stops, int n); /* NULL when out of memory */
void chat_stop_free(struct chat_stop *s);
/* Feeds text; *out and *out_len receive the text that is safe to show (valid until the next call). Returns 1 when
 * a stop string was completed (the text before it has been given, everything after is dropped), 0 to go on,
 * -1 when out of memory. */
int chat_stop_push(struct chat_stop *s, const char *text, size_t len, const char **out, size_t *out_len);
/* End of generation without a stop string: gives the text held back and resets. */
void chat_stop_finish(struct chat_stop *s, const char **out, size_t *out_len);

/* A conversation with a model: history + KV cache (the common prefix with the previous turn is reused). */
struct chat_session;

/* system: the system prompt (NULL or "" for none). context: the context length in tokens (<= 0: the model's
 * max_position_embeddings). NULL with a message when out of memory or the model/tokenizer lack the chat tokens. */
struct chat_session *chat_session_new(const struct model *m, const mt_tokenizer *tok, const char *system,
                                      int context, char *err, size_t errlen);
void chat_session_free(struct chat_session *s);
int chat_session_set_system(struct chat_session *s, const char *system); /* -1 when out of memory */
void chat_session_reset(struct chat_session *s);                         /* forget the turns, keep the system */
/* Appends a turn to the history (e.g. a few-shot example). -1 when out of memory. */
int chat_session_add(struct chat_session *s, enum chat_role role, const char *text, size_t len);
int chat_session_messages(const struct chat_session *s, const struct chat_message **msgs); /* count */
int chat_session_context(const struct chat_session *s);

/* Attaches a file (e.g. a tune) to the next user message: a CHAT_FILE turn before it. -1 when out of memory. */
int chat_session_attach(struct chat_session *s, const char *text, size_t len);

/* Runs a plugin call (the JSON between the action markers) for the latest user message: `user` is the file attached
 * to it when there is one, else the message itself. Returns the result as
 * malloc'd text, or NULL with a message in err (a bad call, an unknown plugin); the session gives that message
 * back to the model as the environment's answer ({"error": ...}). */
typedef char *(*chat_plugin_fn)(void *ctx, const char *user, const char *call, size_t call_len, char *err,
                                size_t errlen);

/* Finds the first plugin call in an assistant's text: *begin and *end receive the offsets of the JSON between
 * CHAT_ACTION_START and CHAT_ACTION_END (or the end of the text when the end marker is missing). Returns 1 when
 * there is a call, 0 when there is none. */
int chat_find_call(const char *text, size_t *begin, size_t *end);

/* Gives the session plugins: their schema becomes the system prompt (CHAT_PLUGIN_SYSTEM, standing in for the
 * session's system prompt), and a reply that calls a plugin is followed by the environment's answer and a new
 * assistant turn, at most max_calls calls per user message. schema NULL: no plugins again. -1 when out of memory. */
int chat_session_set_plugins(struct chat_session *s, const char *schema, chat_plugin_fn run, void *ctx, int max_calls);

/* Called with each piece of reply text as it is generated (complete UTF-8 only); non-zero stops generation. */
typedef int (*chat_text_fn)(void *ctx, const char *text, size_t len);

struct chat_reply {
    char *text;          /* the whole reply (malloc'd, owned by the caller), also appended to the history */
    size_t len;
    int n_prompt;        /* prompt tokens, after truncation */
    int n_generated;     /* tokens sampled */
    int n_dropped;       /* old messages dropped to fit the context */
    int stopped;         /* 1: a stop token or stop string ended the reply; 0: max_tokens or the callback */
    int n_calls;         /* plugin calls run for this reply (their turns are in the history before the reply) */
    int n_call_errors;   /* of which the plugin refused (bad call) */
};

/* The copy prior's source (gen_params.copy_source) that a session with plugins gives its next assistant turn
 * (when p->copy_bias is not 0): the values the turn should restate, each a group of variants (generate.h):
 * - after a plugin result: the result's values, never its keys: a string's contents (a word in small letters,
 *   "minor", on its own: a Chinese answer translates it), a number, the inside of an array of numbers (also
 *   written with "、" between the numbers, as a Chinese list is);
 * - before any result: what the newest user message quotes (「」 『』 “” "" ``), which a call passes on (nothing
 *   when it quotes nothing: a call without a parameter copies no text).
 * Each value is written after a space and as it is. Appends to *out; -1 when out of memory. */
int chat_copy_source(const struct chat_session *s, tok_ids *out);

/* Adds the user message, generates the assistant's reply with p (its stop tokens are ignored: the chat stop
 * tokens are used) and stop_strings, streams it to on_text (may be NULL) and appends it to the history.
 * With plugins, each call the reply makes is run and answered (chat_session_set_plugins) and the model replies
 * again; on_text sees every assistant turn (calls with their action markers), reply->text is the last one.
 * The prompt is fitted (oldest turns dropped) to leave p->max_tokens free in the context. Returns 0, or -1
 * with a message (p->max_tokens >= the context, the newest turn does not fit, ...); the history is then as
 * before the call. */
int chat_session_reply(struct chat_session *s, const char *user, size_t len, const struct gen_params *p,
                       const char *const *stop_strings, int n_stop_strings, chat_text_fn on_text, void *ctx,
                       struct chat_reply *reply, char *err, size_t errlen);

#endif
