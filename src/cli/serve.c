/* melodist serve: the OpenAI-compatible HTTP server and the web page for one model. */
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "gen_options.h"
#include "melodist/persona.h"
#include "melodist/server.h"

static struct server *volatile running; /* for the signal handler */

static void on_signal(int sig)
{
    (void)sig;
    if (running)
        server_stop(running);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: melodist serve -m MODEL_DIR [options]\n"
            "  -m MODEL_DIR            config.json + safetensors (+ tokenizer.model, or give --tokenizer)\n"
            "  --tokenizer PATH        tokenizer.model to use instead of MODEL_DIR/tokenizer.model\n"
            "  --host ADDR             address to listen on (127.0.0.1; 0.0.0.0 for every interface)\n"
            "  --port N                port (8080; 0: any free port, printed at start)\n"
            "  --threads N             worker threads for the model (all cores)\n"
            "  --ctx N                 context length per request (the model's, at most 4096)\n"
            "  --max-tokens N          reply length when a request gives none (1024, at most half the context)\n"
            "  --system TEXT           system prompt for chats without one (default: the composer persona)\n"
            "  --lang zh|en            language of the default persona (zh)\n"
            "  --web DIR               the web page's directory (the repository's web/)\n"
            "  --max-body BYTES        request body limit (1048576)\n"
            "  --quiet                 no line per request on stderr\n"
            "Endpoints: GET /v1/models, POST /v1/chat/completions, POST /v1/completions, POST /v1/abc/check,\n"
            "GET / (the web page). See docs/server.md. Ctrl-C (SIGINT) or SIGTERM stops the server.\n");
}

static int count(const char *v, long lo, long hi, long *out)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > hi)
        return -1;
    *out = x;
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    struct server_options o;
    server_options_default(&o);
    o.log = stderr;
    const char *dir = NULL, *tok_path = NULL, *lang = "zh";
    long threads = 0, x;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--quiet")) {
            o.log = NULL;
            continue;
        }
        if (!v) {
            fprintf(stderr, "melodist serve: option %s needs a value\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        if (!strcmp(a, "-m"))
            dir = v;
        else if (!strcmp(a, "--tokenizer"))
            tok_path = v;
        else if (!strcmp(a, "--host"))
            o.host = v;
        else if (!strcmp(a, "--port") && !count(v, 0, 65535, &x))
            o.port = (int)x;
        else if (!strcmp(a, "--threads") && !count(v, 1, 1024, &threads))
            ;
        else if (!strcmp(a, "--ctx") && !count(v, 1, 1 << 24, &x))
            o.context = (int)x;
        else if (!strcmp(a, "--max-tokens") && !count(v, 1, 1 << 24, &x))
            o.default_max_tokens = (int)x;
        else if (!strcmp(a, "--system"))
            o.system = v;
        else if (!strcmp(a, "--lang") && (!strcmp(v, "zh") || !strcmp(v, "en")))
            lang = v;
        else if (!strcmp(a, "--web"))
            o.web_dir = v;
        else if (!strcmp(a, "--max-body") && !count(v, 1, 1L << 30, &x))
            o.max_body = (size_t)x;
        else {
            fprintf(stderr, "melodist serve: bad option or value: %s %s\n", a, v);
            usage(stderr);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "melodist serve: need -m MODEL_DIR\n");
        usage(stderr);
        return 2;
    }
    if (!o.system)
        o.system = !strcmp(lang, "en") ? MELODIST_PERSONA_EN : MELODIST_PERSONA_ZH;
    if (threads)
        nn_set_threads((int)threads);
    mt_tokenizer *tok;
    struct model *m;
    if (cli_load_model("serve", dir, tok_path, NULL, &tok, &m, NULL))
        return 1;
    char err[1024], name[4096];
    snprintf(name, sizeof name, "%s", dir);
    size_t n = strlen(name);
    while (n > 1 && name[n - 1] == '/')
        name[--n] = 0;
    o.model_id = basename(name);
    struct server *s = server_new(&o, m, tok, err, sizeof err);
    int rc = 1;
    if (!s) {
        fprintf(stderr, "melodist serve: %s\n", err);
    } else {
        running = s;
        struct sigaction sa = {.sa_handler = on_signal};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        fprintf(stderr, "melodist serve: %s (%zu parameters) on http://%s:%d/ — Ctrl-C stops\n", o.model_id,
                model_param_count(m), o.host, server_port(s));
        fflush(stderr);
        rc = server_run(s, err, sizeof err) ? 1 : 0;
        if (rc)
            fprintf(stderr, "melodist serve: %s\n", err);
        else
            fprintf(stderr, "melodist serve: stopped\n");
        running = NULL;
        server_free(s);
    }
    model_free(m);
    tok_free(tok);
    return rc;
}
