/* SFT data in xtuner's internlm2_chat template and xtuner's packing (see finetune.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/finetune.h"
#include "melodist/json.h"

struct builder {
    const mt_tokenizer *tok;
    const char *system; /* replaces the records' system prompts when not NULL */
    struct sft_set *s;
    size_t cap, sample_cap;
    int max_length;
};

static int push(struct builder *b, int id, int scored)
{
    struct sft_set *s = b->s;
    if (s->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 4096;
        int32_t *ids = realloc(s->ids, sizeof *ids * cap);
        if (ids)
            s->ids = ids;
        uint8_t *sc = ids ? realloc(s->scored, cap) : NULL;
        if (!sc)
            return -1;
        s->scored = sc, b->cap = cap;
    }
    s->ids[s->n] = id, s->scored[s->n] = (uint8_t)scored;
    s->n++;
    return 0;
}

/* tokenizer.encode(text, add_special_tokens=False), appended with one label rule. */
static int piece(struct builder *b, const char *text, int scored)
{
    tok_ids ids = {0};
    int rc = tok_encode(b->tok, text, strlen(text), TOK_PARSE_SPECIAL, &ids);
    for (size_t i = 0; !rc && i < ids.n; i++)
        rc = push(b, ids.v[i], scored);
    tok_ids_free(&ids);
    return rc;
}

/* One turn: INSTRUCTION (with SYSTEM before it when there is one), output + SUFFIX, SEP. AGENT holds the
 * InternLM2 agent messages met since the last turn (a plugin schema, an attached file, a plugin's result),
 * already in the template; a turn that answers a plugin's result has no user message (input NULL). */
static int turn(struct builder *b, const char *system, const char *agent, const char *input, const char *output)
{
    system = b->system ? b->system : system;
    size_t n = strlen(system) + strlen(agent) + (input ? strlen(input) : 0) + 128;
    char *prompt = malloc(n);
    if (!prompt)
        return -1;
    int k = *system ? snprintf(prompt, n, "<|im_start|>system\n%s<|im_end|>\n", system) : 0;
    k += snprintf(prompt + k, n - (size_t)k, "%s", agent);
    if (input)
        k += snprintf(prompt + k, n - (size_t)k, "<|im_start|>user\n%s<|im_end|>\n", input);
    snprintf(prompt + k, n - (size_t)k, "<|im_start|>assistant\n");
    size_t m = strlen(output) + 16;
    char *answer = malloc(m);
    int rc = !answer || piece(b, prompt, 0);
    if (!rc) {
        snprintf(answer, m, "%s<|im_end|>", output);
        rc = piece(b, answer, 1) || piece(b, "\n", 0);
    }
    free(prompt), free(answer);
    return rc;
}

/* Appends "<|im_start|>ROLE\nCONTENT<|im_end|>\n" to *agent (grown with realloc). */
static int agent_message(char **agent, size_t *len, const char *role, const char *content)
{
    size_t add = strlen(role) + strlen(content) + 32;
    char *grown = realloc(*agent, *len + add);
    if (!grown)
        return -1;
    *agent = grown;
    *len += (size_t)snprintf(grown + *len, add, "<|im_start|>%s\n%s<|im_end|>\n", role, content);
    return 0;
}

/* OpenAI messages as xtuner's openai_map_fn turns them into conversation turns: a system message goes with
 * the next user turn, each assistant message closes a turn. The InternLM2 agent roles ("system
 * name=<|plugin|>", "user name=file", "environment name=<|plugin|>": a name after the role) are kept in
 * place, unscored, as InternLM2's template writes them; the turn after a plugin's result has no user part. */
static int messages(struct builder *b, const struct json *msgs)
{
    const char *system = "", *input = "";
    char *agent = calloc(1, 1);
    size_t agent_len = 0;
    int rc = !agent, after_result = 0;
    for (size_t i = 0; !rc && i < msgs->count; i++) {
        const char *role = json_string_or(&msgs->items[i], "role", "");
        const char *content = json_string_or(&msgs->items[i], "content", "");
        if (!strcmp(role, "system"))
            system = content;
        else if (!strcmp(role, "user"))
            input = content, after_result = 0;
        else if (!strcmp(role, "assistant")) {
            rc = turn(b, system, agent, after_result ? NULL : input, content);
            system = input = "", agent[0] = 0, agent_len = 0, after_result = 0;
        } else {
            rc = agent_message(&agent, &agent_len, role, content);
            after_result |= !strncmp(role, "environment", 11);
        }
    }
    free(agent);
    return rc;
}

static int end_sample(struct builder *b, size_t first)
{
    struct sft_set *s = b->s;
    if (s->n - first > (size_t)b->max_length)
        s->n = first + (size_t)b->max_length;
    if (s->n_samples + 2 > b->sample_cap) {
        size_t cap = b->sample_cap ? 2 * b->sample_cap : 1024;
        size_t *st = realloc(s->start, sizeof *st * cap);
        if (!st)
            return -1;
        s->start = st, b->sample_cap = cap;
    }
    s->start[s->n_samples] = first;
    s->start[++s->n_samples] = s->n;
    return 0;
}

int sft_load(const char *path, const mt_tokenizer *tok, const char *task, const char *system, int max_length,
             struct sft_set *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    struct builder b = {.tok = tok, .system = system, .s = s, .max_length = max_length};
    int bos = tok_bos_id(tok);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open the SFT data (make it with melodist data build)", path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long line_no = 0;
    int rc = 0;
    while (!rc && (len = getline(&line, &cap, f)) >= 0) {
        line_no++;
        if (len == 0 || line[0] == '\n' || line[0] == '\r')
            continue;
        char jerr[160];
        struct json *rec = json_parse(line, (size_t)len, jerr, sizeof jerr);
        const struct json *conv = rec ? json_get(rec, "conversation") : NULL, *msgs = rec ? json_get(rec, "messages") : NULL;
        int is_conv = conv && conv->type == JSON_ARRAY, is_msgs = msgs && msgs->type == JSON_ARRAY;
        if (!rec || (!is_conv && !is_msgs)) {
            snprintf(err, errlen, "%s:%ld: %s", path, line_no,
                     rec ? "expected an xtuner \"conversation\" or OpenAI \"messages\" array" : jerr);
            rc = -1;
        } else if (!*task || !strcmp(json_string_or(rec, "task", ""), task)) {
            size_t first = s->n;
            rc = bos >= 0 && push(&b, bos, 0);
            for (size_t i = 0; is_conv && !rc && i < conv->count; i++) {
                const struct json *t = &conv->items[i];
                rc = turn(&b, json_string_or(t, "system", ""), "", json_string_or(t, "input", ""),
                          json_string_or(t, "output", ""));
            }
            rc = rc || (!is_conv && messages(&b, msgs)) || end_sample(&b, first);
            if (rc)
                snprintf(err, errlen, "%s:%ld: out of memory", path, line_no);
        }
        json_free(rec);
    }
    free(line);
    fclose(f);
    if (!rc && !s->n_samples) {
        snprintf(err, errlen, "%s: no records%s%s", path, *task ? " of task " : "", task);
        rc = -1;
    }
    if (rc)
        sft_free(s);
    return rc;
}

void sft_free(struct sft_set *s)
{
    free(s->ids), free(s->scored), free(s->start);
    memset(s, 0, sizeof *s);
}

int sft_rows_build(const struct sft_set *s, int max_length, int pack, uint64_t seed, struct sft_rows *rows)
{
    size_t T = (size_t)max_length, *order = malloc(sizeof *order * (s->n_samples ? s->n_samples : 1));
    memset(rows, 0, sizeof *rows);
    rows->T = max_length;
    rows->n_rows = pack ? s->n / T : s->n_samples;
    rows->ids = calloc(rows->n_rows * T + 1, sizeof *rows->ids);
    rows->scored = calloc(rows->n_rows * T + 1, 1);
    if (!order || !rows->ids || !rows->scored) {
        free(order);
        sft_rows_free(rows);
        return -1;
    }
    for (size_t i = 0; i < s->n_samples; i++)
        order[i] = i;
    for (size_t i = s->n_samples; pack && i > 1; i--) { /* Fisher-Yates, as the Packer's dataset.shuffle */
        size_t j = train_splitmix64(&seed) % i, t = order[i - 1];
        order[i - 1] = order[j], order[j] = t;
    }
    size_t at = 0, limit = rows->n_rows * T;
    for (size_t i = 0; i < s->n_samples; i++) {
        size_t a = s->start[order[i]], n = s->start[order[i] + 1] - a;
        size_t dst = pack ? at : i * T;
        n = dst + n > limit ? limit - dst : n;
        memcpy(rows->ids + dst, s->ids + a, sizeof *rows->ids * n);
        memcpy(rows->scored + dst, s->scored + a, n);
        at += n;
    }
    free(order);
    return 0;
}

void sft_rows_free(struct sft_rows *rows)
{
    free(rows->ids), free(rows->scored);
    memset(rows, 0, sizeof *rows);
}

int sft_row(const struct sft_rows *rows, size_t r, int32_t *tokens, int32_t *targets, int32_t *start,
            int32_t *pos)
{
    const int32_t *ids = rows->ids + r * rows->T;
    const uint8_t *sc = rows->scored + r * rows->T;
    int n = 0;
    for (int t = 0; t < rows->T; t++) {
        tokens[t] = ids[t];
        targets[t] = t + 1 < rows->T && sc[t + 1] ? ids[t + 1] : -1;
        start[t] = 0, pos[t] = t;
        n += targets[t] >= 0;
    }
    return n;
}
