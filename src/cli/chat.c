/* melodist chat: talk with an InternLM2-chat model; one message per line on stdin, replies streamed to stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "compose_cli.h"
#include "gen_options.h"
#include "melodist/abc_tools.h"
#include "melodist/chat.h"
#include "melodist/persona.h"

#define MAX_STOPS 16

static void usage(FILE *out)
{
    fprintf(out,
            "usage: melodist chat -m MODEL_DIR [options]\n"
            "  -m MODEL_DIR            config.json + safetensors (+ tokenizer.model, or give --tokenizer)\n"
            "  --tokenizer PATH        tokenizer.model to use instead of MODEL_DIR/tokenizer.model\n"
            "  --adapter DIR           a PEFT LoRA adapter (melodist finetune's DIR/adapter), merged at load time\n"
            "  --system TEXT           system prompt (default: the Melodist composer persona)\n"
            "  --abc-plugins           give the model the ABC engine as plugins (key, bar count, find a phrase or a\n"
            "                          chord, chord progression; docs/chat.md): their schema is the system prompt\n"
            "  --lang zh|en            language of the default persona (zh)\n"
            "  --ctx N                 context length in tokens (default: the model's, at most 4096)\n"
            "  --stop TEXT             stop string (repeatable, up to 16); </s> and <|im_end|> always stop\n"
            "  --print-prompt          print each turn's prompt token ids to stderr\n" GEN_OPTIONS_HELP
            "Defaults as InternLM2's chat(): temperature 0.8, top-p 0.8, 1024 tokens per reply (at most half the\n"
            "context).\n"
            "One message per line on stdin. Commands: /reset (forget the conversation), /system TEXT (new system\n"
            "prompt; /system alone removes it), /file PATH TEXT (send TEXT about the file, e.g. a tune: with\n"
            "--abc-plugins the file is attached before TEXT, otherwise it follows TEXT in the message),\n"
            "/exit. Replies go to stdout, notices (plugin results) to stderr. When the\n"
            "conversation outgrows the context the oldest turns are dropped (a notice says so).\n"
            "Exit status: 0, or 1 when the model could not be loaded or some message got no reply.\n");
}

static int show(void *ctx, const char *text, size_t len)
{
    (void)ctx;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

static void print_ids(const tok_ids *ids)
{
    fprintf(stderr, "prompt:");
    for (size_t i = 0; i < ids->n; i++)
        fprintf(stderr, " %d", ids->v[i]);
    fprintf(stderr, "\n");
}

/* The prompt the next reply will see, for --print-prompt. */
static void print_prompt(const struct chat_session *s, const mt_tokenizer *tok, const char *system,
                         int plugins, const char *line, const struct gen_params *p)
{
    const struct chat_message *turns;
    int n = chat_session_messages(s, &turns);
    struct chat_message *msgs = malloc(((size_t)n + 2) * sizeof *msgs);
    if (!msgs)
        return;
    int k = 0;
    if (plugins)
        msgs[k++] = (struct chat_message){CHAT_PLUGIN_SYSTEM, abc_tools_schema(), strlen(abc_tools_schema())};
    else if (system && *system)
        msgs[k++] = (struct chat_message){CHAT_SYSTEM, system, strlen(system)};
    for (int i = 0; i < n; i++)
        msgs[k++] = turns[i];
    msgs[k++] = (struct chat_message){CHAT_USER, line, strlen(line)};
    tok_ids ids = {0};
    int dropped;
    char err[512];
    if (!chat_encode_fit(tok, msgs, k, chat_session_context(s) - p->max_tokens, &ids, &dropped, err, sizeof err))
        print_ids(&ids);
    tok_ids_free(&ids);
    free(msgs);
}

/* The message of "/file PATH TEXT": with plugins the file is attached (a CHAT_FILE turn before the message, as the
 * model with plugins was trained) and the message is TEXT; without, the message is "TEXT\nFILE CONTENTS". NULL
 * after saying why. */
static char *file_message(struct chat_session *s, int plugins, const char *args)
{
    const char *sp = strchr(args, ' '), *words = sp ? sp + 1 : "";
    char *path = sp ? strndup(args, (size_t)(sp - args)) : strdup(args);
    char *text = path ? compose_read_text("chat", path, NULL) : NULL, *msg = NULL;
    if (text && plugins && chat_session_attach(s, text, strlen(text)) == 0)
        msg = strdup(words);
    else if (text && !plugins && asprintf(&msg, "%s\n%s", words, text) < 0)
        msg = NULL;
    if (text && !msg)
        fprintf(stderr, "melodist chat: out of memory\n");
    free(path);
    free(text);
    return msg;
}

/* The plugin calls of the last reply and their results, from the history. */
static void print_calls(const struct chat_session *s, int n_calls)
{
    const struct chat_message *msgs;
    int n = chat_session_messages(s, &msgs);
    for (int i = n - 1; i > 0 && n_calls; i--)
        if (msgs[i].role == CHAT_ENVIRONMENT) {
            fprintf(stderr, "[plugin result: %.*s]\n", (int)msgs[i].len, msgs[i].text);
            n_calls--;
        }
}

static int chat_loop(struct chat_session *s, const mt_tokenizer *tok, char **system, int plugins,
                     const struct gen_params *p, const char *const *stops, int n_stops, int print_prompt_ids)
{
    int interactive = isatty(STDIN_FILENO), failed = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    if (interactive)
        fprintf(stderr, "melodist chat: type a message; /reset, /system TEXT, /exit\n");
    for (;;) {
        if (interactive)
            fprintf(stderr, ">>> ");
        if ((len = getline(&line, &cap, stdin)) < 0)
            break;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (!len)
            continue;
        if (!strcmp(line, "/exit") || !strcmp(line, "/quit"))
            break;
        if (!strcmp(line, "/reset")) {
            chat_session_reset(s);
            fprintf(stderr, "[conversation cleared]\n");
            continue;
        }
        if (!strcmp(line, "/system") || !strncmp(line, "/system ", 8)) {
            const char *text = line[7] ? line + 8 : "";
            char *copy = strdup(text);
            if (!copy || chat_session_set_system(s, text)) {
                free(copy);
                fprintf(stderr, "melodist chat: out of memory\n");
                failed = 1;
                break;
            }
            free(*system);
            *system = copy;
            fprintf(stderr, *text ? "[system prompt set]\n" : "[system prompt removed]\n");
            continue;
        }
        char *attached = NULL;
        if (!strncmp(line, "/file ", 6) && !(attached = file_message(s, plugins, line + 6))) {
            failed = 1;
            continue;
        }
        if (line[0] == '/' && line[1] != '/' && !attached) {
            fprintf(stderr, "melodist chat: unknown command '%s' (commands: /reset, /system TEXT, /file PATH TEXT, "
                            "/exit; start a message with // to send a literal /)\n", line);
            continue;
        }
        const char *msg = attached ? attached : line[0] == '/' ? line + 1 : line;
        if (print_prompt_ids)
            print_prompt(s, tok, *system, plugins, msg, p);
        struct chat_reply r;
        char err[1024];
        int rc = chat_session_reply(s, msg, strlen(msg), p, stops, n_stops, show, NULL, &r, err, sizeof err);
        free(attached);
        if (rc) {
            fprintf(stderr, "melodist chat: %s\n", err);
            failed = 1;
            continue;
        }
        fputc('\n', stdout);
        fflush(stdout);
        print_calls(s, r.n_calls);
        if (r.n_dropped)
            fprintf(stderr, "[%d old message%s dropped to fit the %d-token context]\n", r.n_dropped,
                    r.n_dropped == 1 ? "" : "s", chat_session_context(s));
        if (!r.stopped)
            fprintf(stderr, "[reply cut at %d tokens]\n", r.n_generated);
        free(r.text);
    }
    free(line);
    return failed;
}

int cmd_chat(int argc, char **argv)
{
    const char *dir = NULL, *tok_path = NULL, *system_arg = NULL, *lang = "zh", *adapter = NULL;
    const char *stops[MAX_STOPS];
    int n_stops = 0, threads = 0, context = 0, print_prompt_ids = 0, max_given = 0, plugins = 0;
    struct gen_params p;
    gen_params_default(&p);
    p.max_tokens = 1024;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--print-prompt")) {
            print_prompt_ids = 1;
            continue;
        }
        if (!strcmp(a, "--abc-plugins")) {
            plugins = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "melodist chat: option %s needs a value\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        int r = gen_option(a, v, 1, &p, &threads);
        char *end;
        max_given |= r > 0 && !strcmp(a, "--max-tokens");
        if (r > 0)
            continue;
        if (r < 0) {
            fprintf(stderr, "melodist chat: bad value for %s: '%s'\n", a, v);
            return 2;
        }
        if (!strcmp(a, "-m"))
            dir = v;
        else if (!strcmp(a, "--tokenizer"))
            tok_path = v;
        else if (!strcmp(a, "--adapter"))
            adapter = v;
        else if (!strcmp(a, "--system"))
            system_arg = v;
        else if (!strcmp(a, "--lang") && (!strcmp(v, "zh") || !strcmp(v, "en")))
            lang = v;
        else if (!strcmp(a, "--ctx") && (context = (int)strtol(v, &end, 10)) > 0 && !*end && context <= 1 << 24)
            ;
        else if (!strcmp(a, "--stop") && n_stops < MAX_STOPS && *v)
            stops[n_stops++] = v;
        else {
            fprintf(stderr, "melodist chat: bad option or value: %s %s\n", a, v);
            usage(stderr);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "melodist chat: need -m MODEL_DIR\n");
        usage(stderr);
        return 2;
    }
    if (threads)
        nn_set_threads(threads);
    mt_tokenizer *tok;
    struct model *m;
    void *merged = NULL;
    if (cli_load_model("chat", dir, tok_path, adapter, &tok, &m, &merged))
        return 1;
    char err[1024];
    if (!context)
        context = m->config.max_position_embeddings < 4096 ? m->config.max_position_embeddings : 4096;
    if (!max_given && p.max_tokens > context / 2)
        p.max_tokens = context / 2;
    char *system = strdup(system_arg ? system_arg : !strcmp(lang, "en") ? MELODIST_PERSONA_EN : MELODIST_PERSONA_ZH);
    struct chat_session *s = system ? chat_session_new(m, tok, system, context, err, sizeof err) : NULL;
    int rc = 1;
    if (s && plugins && chat_session_set_plugins(s, abc_tools_schema(), abc_tools_plugin, NULL, ABC_TOOLS_MAX_CALLS)) {
        chat_session_free(s);
        s = NULL;
        snprintf(err, sizeof err, "out of memory");
    }
    if (!s)
        fprintf(stderr, "melodist chat: %s\n", system ? err : "out of memory");
    else if (p.max_tokens >= context)
        fprintf(stderr, "melodist chat: --max-tokens %d leaves no room for the prompt in a %d-token context "
                        "(lower it or raise --ctx)\n", p.max_tokens, context);
    else
        rc = chat_loop(s, tok, &system, plugins, &p, stops, n_stops, print_prompt_ids);
    chat_session_free(s);
    free(system);
    model_free(m);
    free(merged);
    tok_free(tok);
    return rc;
}
