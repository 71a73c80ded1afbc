/* melodist generate: continue a text prompt with an InternLM2 model, streaming the continuation to stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "commands.h"
#include "gen_options.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: melodist generate -m MODEL_DIR -p TEXT [options]\n"
            "  -m MODEL_DIR            config.json + safetensors (+ tokenizer.model, or give --tokenizer)\n"
            "  -p TEXT                 the prompt (encoded with BOS first, as InternLM2's tokenizer does)\n"
            "  --tokenizer PATH        tokenizer.model to use instead of MODEL_DIR/tokenizer.model\n"
            "  --adapter DIR           a PEFT LoRA adapter (melodist finetune's DIR/adapter), merged at load time\n"
            "  --max-tokens N          tokens to generate at most (256)\n"
            "  --temperature T         0 = greedy (0.8)\n"
            "  --top-k K, --top-p P, --min-p P, --repeat-penalty R, --seed S   sampling (0, 0.8, 0, 1, 0)\n"
            "  --threads N             worker threads (all cores)\n"
            "Prints only the continuation to stdout; stops at </s> and <|im_end|>. Timings go to stderr.\n");
}

struct stream {
    tok_stream *decoder;
    int failed;
};

static int print_token(void *ctx, int token)
{
    struct stream *s = ctx;
    const char *text;
    size_t len;
    if (tok_stream_push(s->decoder, token, &text, &len)) {
        s->failed = 1;
        return 1;
    }
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int cmd_generate(int argc, char **argv)
{
    const char *dir = NULL, *prompt = NULL, *tok_path = NULL, *adapter = NULL;
    struct gen_params p;
    gen_params_default(&p);
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            usage(stderr);
            return 2;
        }
        i++;
        if (gen_option(a, v, 0, &p, &threads) > 0)
            continue;
        if (!strcmp(a, "-m"))
            dir = v;
        else if (!strcmp(a, "-p"))
            prompt = v;
        else if (!strcmp(a, "--tokenizer"))
            tok_path = v;
        else if (!strcmp(a, "--adapter"))
            adapter = v;
        else {
            fprintf(stderr, "melodist generate: bad option or value: %s %s\n", a, v);
            usage(stderr);
            return 2;
        }
    }
    if (!dir || !prompt) {
        fprintf(stderr, "melodist generate: need -m MODEL_DIR and -p TEXT\n");
        return 2;
    }
    if (threads)
        nn_set_threads(threads);
    mt_tokenizer *tok;
    struct model *m;
    void *merged = NULL;
    if (cli_load_model("generate", dir, tok_path, adapter, &tok, &m, &merged))
        return 1;
    char err[1024];
    tok_ids ids = {0};
    int rc = 1;
    struct model_state *state = NULL;
    struct stream out = {tok_stream_new(tok, TOK_SKIP_SPECIAL), 0};
    int stops[2] = {m->config.eos_token_id, tok_special_id(tok, "<|im_end|>")};
    p.stop_tokens = stops;
    p.n_stop_tokens = stops[1] >= 0 ? 2 : 1;
    if (!out.decoder || tok_encode(tok, prompt, strlen(prompt), TOK_ADD_BOS, &ids)) {
        fprintf(stderr, "melodist generate: out of memory\n");
        goto done;
    }
    if (tok_vocab_size(tok) > m->config.vocab_size)
        fprintf(stderr, "melodist generate: warning: tokenizer has %d pieces, model vocabulary %d\n",
                tok_vocab_size(tok), m->config.vocab_size);
    state = model_state_new(m, (int)ids.n + p.max_tokens + 1, 256);
    if (!state) {
        fprintf(stderr, "melodist generate: out of memory for a %zu-token context\n", ids.n + p.max_tokens);
        goto done;
    }
    double t0 = now();
    int n = gen_run(m, state, ids.v, (int)ids.n, &p, print_token, &out, err, sizeof err);
    double t1 = now();
    const char *tail;
    size_t len;
    if (!tok_stream_finish(out.decoder, &tail, &len))
        fwrite(tail, 1, len, stdout);
    fflush(stdout);
    if (n < 0 || out.failed) {
        fprintf(stderr, "melodist generate: %s\n", out.failed ? "token outside the tokenizer's vocabulary" : err);
        goto done;
    }
    fprintf(stderr, "melodist generate: %zu prompt + %d generated tokens in %.2f s (%.1f tokens/s overall)\n", ids.n,
            n, t1 - t0, (ids.n + n) / (t1 - t0));
    rc = 0;
done:
    model_state_free(state);
    tok_stream_free(out.decoder);
    tok_ids_free(&ids);
    model_free(m);
    free(merged);
    tok_free(tok);
    return rc;
}
