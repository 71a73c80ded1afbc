/* Key-analysis answers before and after fine-tuning: for the first N key_mode records of a validation JSONL
 * (xtuner format), the model answers the question greedily, without a system prompt (as configs/tiny-qlora.json
 * and configs/melodist-mini-key-qlora.json train it) unless --system is given, which keeps each record's own.
 * An answer is right when the first key it names ("K:Bb" up to a space or bracket) is the tune's declared key,
 * the one the reference answer names. Besides the score it prints, per declared key, how many questions there
 * were, how many were answered right and how often the model named that key: a model that learnt only the
 * answer template names the most frequent key every time and scores the majority-class rate. The first three
 * answers are printed, and the key named in every later wrong one.
 *   key_eval [--system] MODEL_DIR TOKENIZER VALID_JSONL N [ADAPTER_DIR]
 * The last line is "right/asked majority/asked". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/generate.h"
#include "melodist/json.h"
#include "melodist/lora.h"
#include "melodist/tokenizer.h"

#define MAX_ANSWER 48
#define MAX_KEYS 64

struct answer {
    int ids[MAX_ANSWER];
    int n;
};

static int collect(void *ctx, int token)
{
    struct answer *a = ctx;
    if (a->n < MAX_ANSWER)
        a->ids[a->n++] = token;
    return 0;
}

/* The first key named in text: what follows "K:" up to a space, bracket, punctuation or non-ASCII byte; "" when
 * there is none. */
static void first_key(const char *text, char *key, size_t cap)
{
    const char *k = strstr(text, "K:");
    size_t n = 0;
    for (k = k ? k + 2 : ""; *k && !strchr(" ()。,.\n", *k) && (unsigned char)*k < 0x80 && n + 1 < cap; k++)
        key[n++] = *k;
    key[n] = 0;
}

struct key_count {
    char key[16];
    int questions, right, named;
};

/* The row of key in the table, added when new; NULL when the table is full. */
static struct key_count *key_row(struct key_count *t, int *n, const char *key)
{
    for (int i = 0; i < *n; i++)
        if (!strcmp(t[i].key, key))
            return &t[i];
    if (*n == MAX_KEYS)
        return NULL;
    struct key_count *r = &t[(*n)++];
    snprintf(r->key, sizeof r->key, "%s", key);
    r->questions = r->right = r->named = 0;
    return r;
}

static int by_questions(const void *a, const void *b)
{
    const struct key_count *x = a, *y = b;
    return x->questions != y->questions ? y->questions - x->questions : strcmp(x->key, y->key);
}

/* The chat prompt of a record's first turn, up to the assistant's reply; NULL when out of memory. */
static char *chat_prompt(const char *system, const char *input)
{
    size_t size = (system ? strlen(system) : 0) + strlen(input) + 128;
    char *p = malloc(size);
    if (p && system && system[0])
        snprintf(p, size, "<|im_start|>system\n%s<|im_end|>\n<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n",
                 system, input);
    else if (p)
        snprintf(p, size, "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n", input);
    return p;
}

int main(int argc, char **argv)
{
    int with_system = argc > 1 && !strcmp(argv[1], "--system");
    argc -= with_system, argv += with_system;
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: key_eval [--system] MODEL_DIR TOKENIZER VALID_JSONL N [ADAPTER_DIR]\n");
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
    int limit = atoi(argv[4]), asked = 0, right = 0, failed = 0, stop = tok_special_id(tok, "<|im_end|>"), n_keys = 0;
    struct key_count keys[MAX_KEYS];
    struct gen_params p;
    gen_params_default(&p);
    p.temperature = 0, p.max_tokens = MAX_ANSWER, p.stop_tokens = &stop, p.n_stop_tokens = 1;
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
        const struct json *in = json_get(&conv->items[0], "input"), *out = json_get(&conv->items[0], "output"),
                          *sys = json_get(&conv->items[0], "system");
        char key[16], said[16];
        first_key(out->string, key, sizeof key);
        char *prompt = chat_prompt(with_system && sys ? sys->string : NULL, in->string);
        tok_ids ids = {0};
        struct answer a = {.n = 0};
        struct model_state *st = NULL;
        struct key_count *row = key[0] ? key_row(keys, &n_keys, key) : NULL;
        if (row && prompt && !tok_encode(tok, prompt, strlen(prompt), TOK_ADD_BOS | TOK_PARSE_SPECIAL, &ids) &&
            ids.n + MAX_ANSWER < (size_t)m->config.max_position_embeddings &&
            (st = model_state_new(m, (int)ids.n + MAX_ANSWER, MAX_ANSWER)) &&
            gen_run(m, st, ids.v, (int)ids.n, &p, collect, &a, err, sizeof err) >= 0) {
            char *text = tok_decode(tok, a.ids, (size_t)a.n, TOK_SKIP_SPECIAL, NULL, err, sizeof err);
            first_key(text ? text : "", said, sizeof said);
            int ok = !strcmp(said, key);
            struct key_count *named = said[0] ? key_row(keys, &n_keys, said) : NULL;
            row->questions++, row->right += ok, right += ok, asked++;
            if (named)
                named->named++;
            if (asked <= 3)
                printf("  K:%s -> %.60s%s\n", key, text ? text : "", ok ? "  [right]" : "");
            else if (!ok)
                printf("  K:%s -> K:%s  [wrong]\n", key, said);
            free(text);
        } else {
            failed++;
        }
        model_state_free(st);
        tok_ids_free(&ids);
        free(prompt);
        json_free(r);
    }
    qsort(keys, (size_t)n_keys, sizeof keys[0], by_questions);
    printf("key\tquestions\tright\tnamed\n");
    for (int i = 0; i < n_keys; i++)
        printf("%s\t%d\t%d\t%d\n", keys[i].key, keys[i].questions, keys[i].right, keys[i].named);
    if (failed)
        printf("(%d records skipped: no declared key, or longer than the model's context)\n", failed);
    printf("%d/%d %d/%d\n", right, asked, n_keys ? keys[0].questions : 0, asked);
    free(line);
    fclose(f);
    lora_free(L);
    model_free(m);
    free(merged);
    tok_free(tok);
    return 0;
}
