/* Sampling options shared by the commands that generate text. */
#include <stdlib.h>
#include <string.h>

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

int gen_option(const char *name, const char *value, struct gen_params *p, int *threads)
{
    static const struct {
        const char *name;
        double lo, hi;
    } opts[] = {{"--max-tokens", 1, 1e7},   {"--temperature", 0, 100}, {"--top-k", 0, 1e9},
                {"--top-p", 0, 1},          {"--min-p", 0, 1},         {"--repeat-penalty", 0.01, 100},
                {"--seed", 0, 1.8e19},      {"--threads", 1, 1024}};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        if (strcmp(name, opts[i].name))
            continue;
        double x;
        if (number(value, opts[i].lo, opts[i].hi, &x))
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
        }
        return 1;
    }
    return 0;
}
