/* Token generation over an InternLM2 model: a sampler (greedy, temperature, top-k, top-p, min-p,
 * repetition penalty, seeded RNG) and a generation loop with max tokens and stop token ids.
 * Works on token ids only; text goes through melodist/tokenizer.h. */
#ifndef MELODIST_GENERATE_H
#define MELODIST_GENERATE_H

#include <stdint.h>

#include "melodist/model.h"

struct gen_params {
    float temperature;        /* <= 0: greedy (argmax) */
    int top_k;                /* keep the k most likely tokens; 0 = off */
    float top_p;              /* keep the smallest set with probability mass >= top_p; 1 = off */
    float min_p;              /* keep tokens with probability >= min_p * the top one's; 0 = off */
    float repetition_penalty; /* HF rule on tokens seen so far: logit > 0 ? logit / r : logit * r; 1 = off */
    uint64_t seed;            /* the same seed and inputs give the same tokens */
    int max_tokens;
    const int *stop_tokens;   /* generation ends (without emitting it) at any of these */
    int n_stop_tokens;
    /* Copy prior: a pull toward restating copy_source, the values a reply must restate (a plugin's result, a
     * phrase the user quoted). A small model that restates a list or a phrase drifts over long runs, or runs past
     * its end; the prior keeps it on its place. The source holds groups, each after a -1: one value, in one or
     * more variants (ways of writing it), each variant after a -2 but the first. At each step:
     *  - when the tokens so far end with a run found in the source, the token that follows the longest run there
     *    gets a pull of copy_bias/2 per token of the run, up to 4 tokens: 2 x copy_bias (none when runs as long
     *    disagree on what follows, or the run ends its value). Where that place was restated already (the text is
     *    going round again), the pull is negative.
     *  - when no run matches, the first tokens of the next two values not begun yet (in source order) get
     *    copy_bias/2.
     * NULL source: off. */
    const int *copy_source;
    int n_copy_source;
    float copy_bias;
};

#define GEN_COPY_BIAS 4.0f /* the copy prior's default pull, chosen on held-out plugin answers (docs/eval.md) */

/* Defaults of InternLM2's chat(): temperature 0.8, top-p 0.8, no top-k/min-p/penalty, 256 tokens, seed 0; the copy
 * prior's pull GEN_COPY_BIAS, without a source. */
void gen_params_default(struct gen_params *p);

struct gen_sampler;
struct gen_sampler *gen_sampler_new(const struct gen_params *p, int vocab_size); /* NULL when out of memory */
void gen_sampler_free(struct gen_sampler *s);
/* Picks the next token from logits (not modified) given the tokens so far (for the repetition penalty). */
int gen_sample(struct gen_sampler *s, const float *logits, const int *history, int n_history);

/* Called for each generated token; a non-zero return stops generation. */
typedef int (*gen_emit_fn)(void *ctx, int token);

/* Runs the prompt (at state->pos) then samples up to p->max_tokens tokens, emitting each.
 * Returns the number of tokens emitted, or -1 with a message (bad token id, context full). */
int gen_run(const struct model *m, struct model_state *state, const int *prompt, int n_prompt,
            const struct gen_params *p, gen_emit_fn emit, void *ctx, char *err, size_t errlen);

#endif
