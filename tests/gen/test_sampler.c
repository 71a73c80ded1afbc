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

int main(void)
{
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
