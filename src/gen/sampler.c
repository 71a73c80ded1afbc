/* Sampling: penalty -> temperature -> softmax -> top-k -> min-p -> top-p -> draw. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/generate.h"
#include "melodist/splitmix.h"

struct candidate {
    float p;
    int id;
};

struct gen_sampler {
    struct gen_params params;
    int vocab;
    float *logits;
    unsigned char *seen;
    struct candidate *cand;
    uint64_t rng;
};

void gen_params_default(struct gen_params *p)
{
    memset(p, 0, sizeof *p);
    p->temperature = 0.8f;
    p->top_p = 0.8f;
    p->repetition_penalty = 1.0f;
    p->max_tokens = 256;
}

struct gen_sampler *gen_sampler_new(const struct gen_params *p, int vocab_size)
{
    struct gen_sampler *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->params = *p;
    s->vocab = vocab_size;
    s->rng = p->seed;
    s->logits = malloc((size_t)vocab_size * sizeof *s->logits);
    s->seen = malloc((size_t)vocab_size);
    s->cand = malloc((size_t)vocab_size * sizeof *s->cand);
    if (!s->logits || !s->seen || !s->cand) {
        gen_sampler_free(s);
        return NULL;
    }
    return s;
}

void gen_sampler_free(struct gen_sampler *s)
{
    if (!s)
        return;
    free(s->logits);
    free(s->seen);
    free(s->cand);
    free(s);
}

/* A uniform float in [0, 1). */
static float uniform(uint64_t *state) { return (float)(splitmix64(state) >> 40) / 16777216.0f; }

static int by_probability(const void *a, const void *b)
{
    const struct candidate *x = a, *y = b;
    if (x->p != y->p)
        return x->p > y->p ? -1 : 1;
    return x->id - y->id; /* ties: lower id first, so the order is deterministic */
}

int gen_sample(struct gen_sampler *s, const float *logits, const int *history, int n_history)
{
    const struct gen_params *p = &s->params;
    int n = s->vocab;
    float *l = s->logits;
    memcpy(l, logits, (size_t)n * sizeof *l);
    if (p->repetition_penalty != 1.0f && p->repetition_penalty > 0) {
        memset(s->seen, 0, (size_t)n); /* each distinct token is penalised once */
        for (int i = 0; i < n_history; i++) {
            int t = history[i];
            if (t < 0 || t >= n || s->seen[t])
                continue;
            s->seen[t] = 1;
            l[t] = l[t] > 0 ? l[t] / p->repetition_penalty : l[t] * p->repetition_penalty;
        }
    }
    int best = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > l[best])
            best = i;
    if (p->temperature <= 0)
        return best;

    float max = l[best], sum = 0;
    for (int i = 0; i < n; i++) {
        s->cand[i].id = i;
        s->cand[i].p = expf((l[i] - max) / p->temperature);
        sum += s->cand[i].p;
    }
    for (int i = 0; i < n; i++)
        s->cand[i].p /= sum;
    qsort(s->cand, (size_t)n, sizeof *s->cand, by_probability);

    int keep = n;
    if (p->top_k > 0 && p->top_k < keep)
        keep = p->top_k;
    if (p->min_p > 0) {
        float floor_p = p->min_p * s->cand[0].p;
        int k = 1;
        while (k < keep && s->cand[k].p >= floor_p)
            k++;
        keep = k;
    }
    if (p->top_p > 0 && p->top_p < 1) {
        float kept = 0, cum = 0;
        for (int i = 0; i < keep; i++)
            kept += s->cand[i].p;
        int k = 0;
        while (k < keep) {
            cum += s->cand[k++].p;
            if (cum >= p->top_p * kept)
                break;
        }
        keep = k;
    }
    float mass = 0;
    for (int i = 0; i < keep; i++)
        mass += s->cand[i].p;
    float r = uniform(&s->rng) * mass, cum = 0;
    for (int i = 0; i < keep; i++) {
        cum += s->cand[i].p;
        if (r < cum)
            return s->cand[i].id;
    }
    return s->cand[keep - 1].id; /* rounding left r just above the sum */
}
