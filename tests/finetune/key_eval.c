/* Key-analysis answers before and after fine-tuning: for the first N key_mode records of a validation JSONL
 * (xtuner format), the model answers the question greedily (system prompt dropped, as in
 * configs/tiny-qlora.json); an answer counts as right when it names the tune's declared key signature
 * ("K:Bb" followed by a non-key character) as the reference answer does.
 *   key_eval MODEL_DIR TOKENIZER VALID_JSONL N [ADAPTER_DIR]       prints "right/N" */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/generate.h"
#include "melodist/json.h"
#include "melodist/lora.h"
#include "melodist/tokenizer.h"

struct answer {
    int ids[64];
    int n;
};

static int collect(void *ctx, int token)
{
    struct answer *a = ctx;
    if (a->n < 64)
        a->ids[a->n++] = token;
    return 0;
}

/* The key after "K:" in text (up to a space or bracket), or "" */
static void declared_key(const char *text, char *key, size_t cap)
{
    const char *k = strstr(text, "K:");
    size_t n = 0;
    for (k = k ? k + 2 : ""; *k && !strchr(" (（)。,.\n", *k) && (unsigned char)*k < 0x80 && n + 1 < cap; k++)
        key[n++] = *k;
    key[n] = 0;
}

static int names_key(const char *answer, const char *key)
{
    char want[64];
    snprintf(want, sizeof want, "K:%s", key);
    for (const char *p = strstr(answer, want); p; p = strstr(p + 1, want)) {
        char next = p[strlen(want)];
        if (!(next >= 'A' && next <= 'Z') && !(next >= 'a' && next <= 'z') && !(next >= '0' && next <= '9') &&
            next != '#')
            return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: key_eval MODEL_DIR TOKENIZER VALID_JSONL N [ADAPTER_DIR]\n");
        return 2;
    }
    char err[1024];
    struct model *m = NULL;
    void *merged = NULL;
    mt_tokenizer *tok = tok_load(argv[2], err, sizeof err);
    struct lora *L = NULL;
    if (!tok || model_load(argv[1], &m, err, sizeof err) ||
        (argc == 6 && (!(L = lora_load(argv[5], m, err, sizeof err)) || lora_merge(L, m, &merged, err, sizeof err)))) {
        fprintf(stderr, "key_eval: %s\n", err);
        return 1;
    }
    FILE *f = fopen(argv[3], "r");
    if (!f) {
        perror(argv[3]);
        return 1;
    }
    int limit = atoi(argv[4]), asked = 0, right = 0, stop = tok_special_id(tok, "<|im_end|>");
    struct gen_params p;
    gen_params_default(&p);
    p.temperature = 0, p.max_tokens = 48, p.stop_tokens = &stop, p.n_stop_tokens = 1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while (asked < limit && (len = getline(&line, &cap, f)) > 0) {
        struct json *r = json_parse(line, (size_t)len, err, sizeof err);
        const struct json *task = r ? json_get(r, "task") : NULL, *conv = r ? json_get(r, "conversation") : NULL;
        if (!task || task->type != JSON_STRING || strcmp(task->string, "key_mode") || !conv || !conv->count) {
            json_free(r);
            continue;
        }
        const struct json *in = json_get(&conv->items[0], "input"), *out = json_get(&conv->items[0], "output");
        char key[32], *prompt = malloc(strlen(in->string) + 64);
        declared_key(out->string, key, sizeof key);
        sprintf(prompt, "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n", in->string);
        tok_ids ids = {0};
        struct answer a = {.n = 0};
        struct model_state *st = NULL;
        if (!tok_encode(tok, prompt, strlen(prompt), TOK_ADD_BOS | TOK_PARSE_SPECIAL, &ids) &&
            ids.n + 64 < (size_t)m->config.max_position_embeddings && (st = model_state_new(m, (int)ids.n + 64, 64)) &&
            gen_run(m, st, ids.v, (int)ids.n, &p, collect, &a, err, sizeof err) >= 0) {
            char *text = tok_decode(tok, a.ids, (size_t)a.n, TOK_SKIP_SPECIAL, NULL, err, sizeof err);
            int ok = text && key[0] && names_key(text, key);
            right += ok, asked++;
            if (asked <= 3)
                printf("  K:%s -> %.60s%s\n", key, text ? text : "", ok ? "  [right]" : "");
            free(text);
        }
        model_state_free(st);
        tok_ids_free(&ids);
        free(prompt);
        json_free(r);
    }
    printf("%d/%d\n", right, asked);
    free(line);
    fclose(f);
    lora_free(L);
    model_free(m);
    free(merged);
    tok_free(tok);
    return 0;
}
