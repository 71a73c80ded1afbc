/* Packing rows of T tokens from a corpus in a seeded per-epoch document order (see train.h). */
#include <stdlib.h>

#include "melodist/train.h"

int loader_init(struct train_loader *l, const struct train_corpus *c, uint64_t seed, int T, int shuffle)
{
    *l = (struct train_loader){.c = c, .seed = seed, .T = T, .shuffle = shuffle, .order_epoch = UINT64_MAX};
    l->order = malloc((c->n_docs ? c->n_docs : 1) * sizeof *l->order);
    return l->order ? 0 : -1;
}

void loader_free(struct train_loader *l)
{
    free(l->order);
    l->order = NULL;
}

/* Fisher-Yates from a generator seeded by (seed, epoch): any epoch's order can be rebuilt on resume. */
static void order_for(struct train_loader *l, uint64_t epoch)
{
    if (l->order_epoch == epoch)
        return;
    uint64_t n = l->c->n_docs, state = l->seed ^ (epoch * 0xA0761D6478BD642Full);
    for (uint64_t i = 0; i < n; i++)
        l->order[i] = i;
    for (uint64_t i = n; l->shuffle && i > 1; i--) {
        uint64_t j = train_splitmix64(&state) % i, t = l->order[i - 1];
        l->order[i - 1] = l->order[j];
        l->order[j] = t;
    }
    l->order_epoch = epoch;
}

int loader_next_row(struct train_loader *l, int32_t *tokens, int32_t *targets, int32_t *start, int32_t *pos)
{
    const struct train_corpus *c = l->c;
    struct loader_pos p = l->at;
    int T = l->T, seg = 0, next_token = 0, next_seg = 0, next_scored = 0;
    for (int k = 0; k <= T;) {
        order_for(l, p.epoch);
        uint64_t d = l->order[p.doc], len = c->doc_start[d + 1] - c->doc_start[d];
        if (p.offset >= len) {
            p.offset = 0;
            if (++p.doc == c->n_docs)
                p.doc = 0, p.epoch++;
            seg = k;
            continue;
        }
        uint64_t at = c->doc_start[d] + p.offset++;
        if (k < T) {
            tokens[k] = c->tokens[at];
            start[k] = seg;
            pos[k] = k - seg;
            targets[k] = c->scored[at]; /* provisional: the flag, resolved below */
        } else {
            next_token = c->tokens[at], next_seg = seg, next_scored = c->scored[at];
        }
        if (++k == T)
            l->at = p;
    }
    /* The target of token k is token k+1 when both lie in the same document and k+1 is scored; targets[]
     * holds the scored flags until here, and each is read (at k-1) before it is overwritten (at k). */
    int n = 0;
    for (int k = 0; k < T; k++) {
        int last = k + 1 == T;
        int same = last ? next_seg == start[k] : start[k + 1] == start[k];
        int scored = last ? next_scored : targets[k + 1];
        targets[k] = same && scored ? (last ? next_token : tokens[k + 1]) : -1;
        n += targets[k] >= 0;
    }
    return n;
}
