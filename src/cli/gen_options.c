/* Sampling options and model loading shared by the commands that run a model. */
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "gen_options.h"

static int number(const char *arg, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(arg, &end);
    if (*end || end == arg || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int gen_option(const char *name, const char *value, int min_tokens, struct gen_params *p, int *threads)
{
    static const struct {
        const char *name;
        double lo, hi;
    } opts[] = {{"--max-tokens", 0, 1e7},   {"--temperature", 0, 100}, {"--top-k", 0, 1e9},
                {"--top-p", 0, 1},          {"--min-p", 0, 1},         {"--repeat-penalty", 0.01, 100},
                {"--seed", 0, 1.8e19},      {"--threads", 1, 1024},    {"--copy-bias", 0, 100}};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        if (strcmp(name, opts[i].name))
            continue;
        double x;
        if (number(value, i == 0 ? min_tokens : opts[i].lo, opts[i].hi, &x))
            return -1;
        switch (i) {
        case 0: p->max_tokens = (int)x; break;
        case 1: p->temperature = (float)x; break;
        case 2: p->top_k = (int)x; break;
        case 3: p->top_p = (float)x; break;
        case 4: p->min_p = (float)x; break;
        case 5: p->repetition_penalty = (float)x; break;
        case 6: p->seed = (uint64_t)x; break;
        case 7: *threads = (int)x; break;
        case 8: p->copy_bias = (float)x; break;
        }
        return 1;
    }
    return 0;
}

int cli_load_model(const char *cmd, const char *dir, const char *tok_path, const char *adapter, mt_tokenizer **tok,
                   struct model **m, void **merged)
{
    char err[1024], path[4096];
    if (!tok_path) {
        snprintf(path, sizeof path, "%s/tokenizer.model", dir);
        tok_path = path;
    }
    *tok = tok_load(tok_path, err, sizeof err);
    if (!*tok) {
        fprintf(stderr, "melodist %s: cannot load the tokenizer: %s (give --tokenizer PATH)\n", cmd, err);
        return 1;
    }
    *m = NULL;
    if (model_load(dir, m, err, sizeof err) || (adapter && cli_merge_adapter(*m, adapter, merged, err, sizeof err))) {
        fprintf(stderr, "melodist %s: cannot load the model: %s\n", cmd, err);
        model_free(*m);
        tok_free(*tok);
        return 1;
    }
    return 0;
}
