/* The generation loop: prompt, then sample / emit / feed back one token at a time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/generate.h"

static int is_stop(const struct gen_params *p, int token)
{
    for (int i = 0; i < p->n_stop_tokens; i++)
        if (p->stop_tokens[i] == token)
            return 1;
    return 0;
}

int gen_run(const struct model *m, struct model_state *state, const int *prompt, int n_prompt,
            const struct gen_params *p, gen_emit_fn emit, void *ctx, char *err, size_t errlen)
{
    if (p->max_tokens <= 0)
        return 0;
    struct gen_sampler *sampler = gen_sampler_new(p, m->config.vocab_size);
    int *history = malloc(((size_t)n_prompt + p->max_tokens) * sizeof *history);
    if (!sampler || !history) {
        snprintf(err, errlen, "out of memory");
        gen_sampler_free(sampler);
        free(history);
        return -1;
    }
    memcpy(history, prompt, (size_t)n_prompt * sizeof *history);
    int n_history = n_prompt, emitted = 0;
    const float *logits = model_forward(m, state, prompt, n_prompt, NULL, err, errlen);
    while (logits && emitted < p->max_tokens) {
        int token = gen_sample(sampler, logits, history, n_history);
        if (is_stop(p, token))
            break;
        history[n_history++] = token;
        emitted++;
        if (emit(ctx, token) || emitted == p->max_tokens)
            break;
        logits = model_forward(m, state, &token, 1, NULL, err, errlen);
    }
    gen_sampler_free(sampler);
    free(history);
    return logits ? emitted : -1;
}
