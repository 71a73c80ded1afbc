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
    unsigned char *copied; /* copy_source positions the generated text has restated */
    int follow;             /* the copy prior's source position at the last step, -1 when none */
};

void gen_params_default(struct gen_params *p)
{
    memset(p, 0, sizeof *p);
    p->temperature = 0.8f;
    p->top_p = 0.8f;
    p->repetition_penalty = 1.0f;
    p->max_tokens = 256;
    p->copy_bias = GEN_COPY_BIAS;
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
    s->copied = calloc((size_t)(p->n_copy_source > 0 ? p->n_copy_source : 1), 1);
    s->follow = -1;
    if (!s->logits || !s->seen || !s->cand || !s->copied) {
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
    free(s->copied);
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

/* ---- the copy prior (gen_params.copy_source) ----
 * The source holds groups, each after a -1: one value the reply may restate, in one or more variants (ways of
 * writing it: after a space or not, a list with "," or "、"), each variant after a -2 but the first. */

static int is_variant_start(const struct gen_params *p, int e)
{
    return e > 0 && p->copy_source[e - 1] < 0 && p->copy_source[e] >= 0;
}

/* [*begin, *end) of the group holding position e. */
static void group_bounds(const struct gen_params *p, int e, int *begin, int *end)
{
    int b = e, x = e;
    while (b > 0 && p->copy_source[b - 1] != -1)
        b--;
    while (x < p->n_copy_source && p->copy_source[x] != -1)
        x++;
    *begin = b;
    *end = x;
}

/* Marks position e restated, and the same place in the group's other variants: they differ in their first tokens
 * only, so the place is the same distance from the variant's end. */
static void mark_copied(const struct gen_params *p, unsigned char *copied, int e)
{
    int gb, ge, ve = e;
    copied[e] = 1;
    group_bounds(p, e, &gb, &ge);
    while (ve < ge && p->copy_source[ve] >= 0)
        ve++;
    int from_end = ve - e;
    for (int x = gb; x <= ge; x++)
        if (x == ge || p->copy_source[x] == -2) {
            int at = x - from_end;
            if (at >= gb && p->copy_source[at] == p->copy_source[e])
                copied[at] = 1;
        }
}

static int group_begun(const unsigned char *copied, int begin, int end)
{
    for (int x = begin; x < end; x++)
        if (copied[x])
            return 1;
    return 0;
}

/* The place to copy from: the source position that follows the longest run the history ends with; -1 when no
 * run matches, when the runs that tie disagree on what follows, or when the run ends its variant (the value is
 * complete). Of runs as long, one going on from the place the copy was at comes first, then one whose follower has
 * not been restated yet. *run receives the run's length, *ended the end of the variant when the run ends it (else
 * -1). */
static int copy_next(const struct gen_params *p, const unsigned char *copied, const int *history, int n_history,
                     int *run, int *ended)
{
    int best_len = 0, best_rank = 0, next = -1, agree = 1;
    for (int e = 1; e <= p->n_copy_source; e++) {
        int follower = e < p->n_copy_source ? p->copy_source[e] : -1;
        int len = 0;
        while (len < e && len < n_history && p->copy_source[e - 1 - len] >= 0 &&
               p->copy_source[e - 1 - len] == history[n_history - 1 - len])
            len++;
        if (!len)
            continue;
        int rank = 2 * copied[e - 1] + (follower >= 0 && !copied[e]);
        if (len > best_len || (len == best_len && rank > best_rank)) {
            best_len = len, best_rank = rank, next = e, agree = 1;
        } else if (len == best_len && rank == best_rank) {
            int other = next < p->n_copy_source ? p->copy_source[next] : -1;
            if ((other < 0) != (follower < 0) || (follower >= 0 && other != follower))
                agree = 0; /* as good a run elsewhere goes on differently: no place to keep */
        }
    }
    *run = best_len;
    int value_ends = next >= 0 && (next == p->n_copy_source || p->copy_source[next] < 0);
    *ended = agree && value_ends ? next : -1;
    return agree && !value_ends ? next : -1;
}

/* Calls fn on the variant starts of the first `groups` groups not begun yet, in source order. */
static void next_groups(const struct gen_params *p, const unsigned char *copied, int groups,
                        void (*fn)(void *ctx, int e), void *ctx)
{
    for (int e = 0; e < p->n_copy_source && groups > 0; e++) {
        if (!is_variant_start(p, e) || p->copy_source[e - 1] != -1)
            continue;
        int gb, ge;
        group_bounds(p, e, &gb, &ge);
        if (group_begun(copied, gb, ge))
            continue;
        for (int x = gb; x < ge; x++)
            if (is_variant_start(p, x))
                fn(ctx, x);
        groups--;
    }
}

/* next_groups callbacks: pull the starts toward being written, or find the one the last token began. */
struct start_pull {
    const struct gen_params *p;
    float *logits;
    int vocab;
};

static void pull_start(void *ctx, int e)
{
    struct start_pull *s = ctx;
    int t = s->p->copy_source[e];
    if (t < s->vocab)
        s->logits[t] += 0.5f * s->p->copy_bias;
}

struct start_match {
    const struct gen_params *p;
    int token; /* the token just emitted, or -1 */
    int begun; /* the first start it matches, or -1 */
};

static void match_start(void *ctx, int e)
{
    struct start_match *s = ctx;
    if (s->begun < 0 && s->p->copy_source[e] == s->token)
        s->begun = e;
}

/* The values still to come: a reply restates them in order, a skipped one (written in other words) aside. */
#define COPY_NEXT_GROUPS 2

#define COPY_SURE_RUN 4 /* tokens */

/* Adds the copy prior to the logits l: follow the run being copied, or begin one of the next values. */
static void copy_prior(struct gen_sampler *s, float *l, const int *history, int n_history)
{
    const struct gen_params *p = &s->params;
    int last = n_history ? history[n_history - 1] : -1;
    if (s->follow >= 0 && last == p->copy_source[s->follow]) {
        mark_copied(p, s->copied, s->follow);
    } else {
        struct start_match begin = {p, last, -1};
        next_groups(p, s->copied, COPY_NEXT_GROUPS, match_start, &begin);
        if (begin.begun >= 0)
            mark_copied(p, s->copied, begin.begun);
    }
    int run, ended;
    s->follow = copy_next(p, s->copied, history, n_history, &run, &ended);
    if (ended >= 0 && run >= COPY_SURE_RUN) {
        /* A long value restated to its end: what comes next is not more of it (a list or a progression runs on
         * past its end otherwise). Its tokens get the strongest push away. */
        int b = ended;
        while (b > 0 && p->copy_source[b - 1] >= 0)
            b--;
        for (int x = b; x < ended; x++) {
            int t = p->copy_source[x], earlier = 0;
            for (int y = b; y < x && !earlier; y++)
                earlier = p->copy_source[y] == t;
            if (!earlier && t < s->vocab)
                l[t] -= 2 * p->copy_bias;
        }
    } else if (!run) {
        struct start_pull pull = {p, l, s->vocab};
        next_groups(p, s->copied, COPY_NEXT_GROUPS, pull_start, &pull);
    } else if (s->follow >= 0) {
        /* The longer the run, the surer the copy: the pull grows with it, from half copy_bias to twice. A place
         * already restated means the text is going round again (a list run past its end): the prior then pushes
         * away from it. */
        int t = p->copy_source[s->follow];
        float pull = 0.5f * p->copy_bias * (float)(run < COPY_SURE_RUN ? run : COPY_SURE_RUN);
        if (t < s->vocab)
            l[t] += s->copied[s->follow] ? -pull : pull;
    }
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
    if (p->copy_bias != 0 && p->n_copy_source > 1)
        copy_prior(s, l, history, n_history);
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
