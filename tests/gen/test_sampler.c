/* Sampler and generation loop: each rule checked against its definition on hand-made distributions. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/generate.h"
#include "testutil.h"

static struct gen_params params(float temperature, int top_k, float top_p, float min_p, float penalty, uint64_t seed)
{
    struct gen_params p;
    gen_params_default(&p);
    p.temperature = temperature, p.top_k = top_k, p.top_p = top_p, p.min_p = min_p;
    p.repetition_penalty = penalty, p.seed = seed;
    return p;
}

/* Frequencies of each of n tokens over draws samples. */
static void frequencies(struct gen_params p, const float *logits, int n, int draws, double *freq)
{
    struct gen_sampler *s = gen_sampler_new(&p, n);
    for (int i = 0; i < n; i++)
        freq[i] = 0;
    for (int d = 0; d < draws; d++)
        freq[gen_sample(s, logits, NULL, 0)] += 1.0 / draws;
    gen_sampler_free(s);
}

static int emit_count(void *ctx, int token)
{
    int *out = ctx;
    out[1 + out[0]++] = token;
    return 0;
}

/* The greedy pick over 10 tokens whose logits are 0 but for `favourite`, at `lead`, after `history`. */
static int pick(struct gen_sampler *s, int favourite, float lead, const int *history, int n)
{
    float logits[10] = {0};
    logits[favourite] = lead;
    return gen_sample(s, logits, history, n);
}

static struct gen_sampler *copying(struct gen_params *p, const int *source, int n, float bias)
{
    *p = params(0, 0, 1, 0, 1, 0);
    p->copy_source = source, p->n_copy_source = n, p->copy_bias = bias;
    return gen_sampler_new(p, 10);
}

/* The copy prior (generate.h) rule by rule, with copy_bias 4: a run of r tokens pulls min(r, 4) * 2, a start 2. */
static void copy_prior_checks(void)
{
    struct gen_params p;
    int groups[] = {-1, 3, 4, 5, 6, -1, 7, 8, -1, 2};
    struct gen_sampler *s = copying(&p, groups, 10, 4);
    int h[] = {0, 3, 4, 5, 6};
    CHECK(pick(s, 9, 3.9f, h, 3) == 5 && pick(s, 9, 4.1f, h, 3) == 9, "a run of 2 pulls its follower by 4");
    CHECK(pick(s, 9, 5.9f, h, 4) == 6 && pick(s, 9, 6.1f, h, 4) == 9, "a run of 3 pulls by 6");
    CHECK(pick(s, 1, 0.1f, h, 5) == 1, "a run that ends its value pulls nothing");
    CHECK(pick(s, 4, 7.9f, h, 5) != 4 && pick(s, 4, 8.1f, h, 5) == 4,
          "a value of 4 tokens restated to its end: its tokens are pushed away by 8");
    gen_sampler_free(s);
    s = copying(&p, groups, 10, 4);
    int fresh[] = {0};
    CHECK(pick(s, 9, 1.9f, fresh, 1) == 3, "no run: the next value's first token is pulled by 2");
    gen_sampler_free(s);
    s = copying(&p, groups, 10, 4);
    CHECK(pick(s, 9, 2.1f, fresh, 1) == 9, "the start pull is no more than 2");
    gen_sampler_free(s);
    s = copying(&p, groups, 10, 4);
    float only[10] = {0};
    only[3] = -10, only[2] = 1.9f; /* the first value cannot begin; the third is not among the next two */
    CHECK(gen_sample(s, only, fresh, 1) == 7, "the next two values are pulled, not the third");
    gen_sampler_free(s);
    s = copying(&p, groups, 10, 0);
    CHECK(pick(s, 9, 0.1f, h, 3) == 9, "copy_bias 0: off");
    gen_sampler_free(s);

    int forks[] = {-1, 4, 1, 2, -1, 4, 1, 3};
    s = copying(&p, forks, 8, 4);
    int one[] = {0, 1};
    CHECK(pick(s, 9, 0.1f, one, 2) == 9, "runs as long that go on differently pull nothing");
    gen_sampler_free(s);

    /* Restating a value, then going round again: the second time its places push away. The value's first
     * variant begins with token 5 (as after a space), the second with 6; their places are shared. */
    int value[] = {-1, 5, 2, 3, -2, 6, 2, 3};
    s = copying(&p, value, 8, 4);
    int said[] = {0, 5, 2, 3, 2};
    for (int i = 1; i <= 3; i++)
        CHECK(pick(s, 9, 1.0f, said, i) == said[i], "step %d restates the value", i);
    CHECK(pick(s, 9, 1.0f, said, 4) == 9, "after the value: no pull (the run ends it)");
    CHECK(pick(s, 3, 1.0f, said, 5) != 3, "going round again: the restated place pushes away");
    gen_sampler_free(s);
    s = copying(&p, value, 8, 4);
    int other[] = {0, 5, 2, 3, 6, 2};
    for (int i = 1; i <= 5; i++)
        pick(s, 9, 1.0f, other, i);
    CHECK(pick(s, 3, 1.0f, other, 6) != 3, "begun again in the other variant: its places were restated too");
    gen_sampler_free(s);
}

int main(void)
{
    copy_prior_checks();
    float probs[4] = {0.5f, 0.3f, 0.15f, 0.05f}, logits[4];
    for (int i = 0; i < 4; i++)
        logits[i] = logf(probs[i]) + 3.0f; /* softmax ignores the shift */
    double f[4];

    struct gen_params greedy = params(0, 0, 1, 0, 1, 0);
    struct gen_sampler *s = gen_sampler_new(&greedy, 4);
    CHECK(gen_sample(s, logits, NULL, 0) == 0, "greedy picks the argmax");
    float close[2] = {2.0f, 1.9f}, negative[2] = {-1.0f, -1.1f};
    int seen0[1] = {0};
    gen_sampler_free(s);
    struct gen_params pen = params(0, 0, 1, 0, 1.2f, 0);
    s = gen_sampler_new(&pen, 2);
    CHECK(gen_sample(s, close, seen0, 1) == 1, "penalty divides a positive logit: 2.0/1.2 < 1.9");
    CHECK(gen_sample(s, negative, seen0, 1) == 1, "penalty multiplies a negative logit: -1.2 < -1.1");
    CHECK(gen_sample(s, close, NULL, 0) == 0, "no history, no penalty");
    gen_sampler_free(s);

    frequencies(params(1, 0, 1, 0, 1, 7), logits, 4, 40000, f);
    for (int i = 0; i < 4; i++)
        CHECK(fabs(f[i] - probs[i]) < 0.01, "temperature 1: token %d frequency %.3f vs %.3f", i, f[i], probs[i]);

    frequencies(params(0.5f, 0, 1, 0, 1, 7), logits, 4, 40000, f);
    double sq = 0;
    for (int i = 0; i < 4; i++)
        sq += (double)probs[i] * probs[i];
    for (int i = 0; i < 4; i++) /* temperature 0.5 squares the probabilities */
        CHECK(fabs(f[i] - probs[i] * probs[i] / sq) < 0.01, "temperature 0.5: token %d %.3f", i, f[i]);

    frequencies(params(1, 2, 1, 0, 1, 3), logits, 4, 40000, f);
    CHECK(fabs(f[0] - 0.625) < 0.01 && fabs(f[1] - 0.375) < 0.01 && f[2] == 0 && f[3] == 0,
          "top-k 2 renormalises over {0,1}: %.3f %.3f %.3f", f[0], f[1], f[2]);

    frequencies(params(1, 0, 0.85f, 0, 1, 3), logits, 4, 40000, f);
    CHECK(f[3] == 0 && fabs(f[2] - 0.15 / 0.95) < 0.01, "top-p 0.85 keeps {0,1,2}: %.3f %.3f", f[2], f[3]);
    frequencies(params(1, 0, 0.45f, 0, 1, 3), logits, 4, 1000, f);
    CHECK(f[1] == 0 && f[2] == 0 && f[3] == 0, "top-p 0.45 keeps only the top token");

    frequencies(params(1, 0, 1, 0.4f, 1, 3), logits, 4, 40000, f);
    CHECK(f[2] == 0 && f[3] == 0 && fabs(f[0] - 0.625) < 0.01, "min-p 0.4 keeps p >= 0.2: %.3f %.3f", f[0], f[2]);

    /* Reproducible: the same seed gives the same draws, another seed different ones. */
    struct gen_params a = params(1, 0, 1, 0, 1, 42), b = a, c = params(1, 0, 1, 0, 1, 43);
    struct gen_sampler *sa = gen_sampler_new(&a, 4), *sb = gen_sampler_new(&b, 4), *sc = gen_sampler_new(&c, 4);
    int same = 1, differ = 0;
    for (int i = 0; i < 200; i++) {
        int x = gen_sample(sa, logits, NULL, 0), y = gen_sample(sb, logits, NULL, 0), z = gen_sample(sc, logits, NULL, 0);
        same &= x == y;
        differ |= x != z;
    }
    CHECK(same && differ, "seeded sampling: same seed same draws (%d), other seed differs (%d)", same, differ);
    gen_sampler_free(sa), gen_sampler_free(sb), gen_sampler_free(sc);

    /* Generation loop on a random model: greedy equals argmax feeding; stop tokens end it unemitted. */
    struct model_config cfg = {.dim = 32, .n_layers = 1, .n_heads = 2, .n_kv_heads = 1, .head_dim = 16,
                               .hidden_dim = 64, .vocab_size = 40, .max_position_embeddings = 64,
                               .rope_theta = 10000, .rms_norm_eps = 1e-5f};
    struct model *m = model_new_random(&cfg, NN_F32, 5, 0.5f);
    struct model_state *st = model_state_new(m, 64, 8);
    char err[256];
    int prompt[3] = {1, 7, 9}, out[1 + 20] = {0};
    struct gen_params g = params(0, 0, 1, 0, 1, 0);
    g.max_tokens = 20;
    int n = gen_run(m, st, prompt, 3, &g, emit_count, out, err, sizeof err);
    CHECK(n == 20 && out[0] == 20, "gen_run emits max_tokens (%d)", n);
    int seq[23];
    memcpy(seq, prompt, sizeof prompt);
    for (int i = 0; i < 20; i++) {
        struct model_state *fresh = model_state_new(m, 64, 8);
        const float *l = model_forward(m, fresh, seq, 3 + i, NULL, err, sizeof err);
        int best = 0;
        for (int v = 1; v < cfg.vocab_size; v++)
            if (l[v] > l[best])
                best = v;
        seq[3 + i] = best;
        model_state_free(fresh);
    }
    CHECK(!memcmp(seq + 3, out + 1, 20 * sizeof(int)), "greedy gen_run equals recomputed argmax");
    int stop[1] = {out[1 + 5]}, out2[1 + 20] = {0};
    g.stop_tokens = stop, g.n_stop_tokens = 1;
    st->pos = 0;
    n = gen_run(m, st, prompt, 3, &g, emit_count, out2, err, sizeof err);
    int first = 0;
    while (out[1 + first] != stop[0])
        first++;
    CHECK(n == first, "stop token ends generation before it is emitted (%d tokens, expected %d)", n, first);
    int bad[1] = {99};
    st->pos = 0;
    CHECK(gen_run(m, st, bad, 1, &g, emit_count, out2, err, sizeof err) == -1 && strstr(err, "outside the vocabulary"),
          "bad token id: %s", err);
    model_state_free(st);
    model_free(m);
    if (tu_failures)
        fprintf(stderr, "%d failures\n", tu_failures);
    else
        printf("sampler and generation loop: all checks passed\n");
    return tu_failures ? 1 : 0;
}
