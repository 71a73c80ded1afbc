/* Evaluation measures: tune checks, copied bar runs, histograms, the n-gram baseline, model bits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/abc.h"
#include "melodist/abc_analysis.h"
#include "melodist/eval.h"

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

/* ---------------------------------------------------------------- one tune */

static void copy_field(const abc_tune *t, char key, char *out, size_t size)
{
    const char *v = abc_tune_field(t, key);
    snprintf(out, size, "%s", v ? v : "");
}

int eval_tune_check(const char *abc, size_t len, struct eval_tune *out)
{
    memset(out, 0, sizeof *out);
    abc_file *f = abc_parse(abc, len);
    if (!f)
        return -1;
    abc_diags d;
    abc_diags_init(&d);
    abc_model *m = NULL;
    if (f->n_tunes >= 1) {
        const abc_tune *t = &f->tunes[0];
        copy_field(t, 'K', out->key, sizeof out->key);
        copy_field(t, 'M', out->meter, sizeof out->meter);
        copy_field(t, 'R', out->rhythm, sizeof out->rhythm);
        m = abc_model_new(f, 0, NULL);
        for (size_t i = 0; m && i < m->n_bars; i++)
            out->bars += m->bars[i].n_events > 0;
        out->parsed = f->n_tunes == 1 && out->key[0] && out->bars > 0;
        abc_validate_file(f, &d);
        for (size_t i = 0; i < d.n; i++)
            if (d.items[i].severity == ABC_ERROR && !strcmp(d.items[i].category, "bar-length"))
                out->bars_bad++;
        out->valid = out->parsed && d.n_errors == 0;
    }
    abc_model_free(m);
    abc_diags_free(&d);
    abc_file_free(f);
    return 0;
}

/* ---------------------------------------------------------------- novelty */

struct eval_novelty {
    int max_run;
    uint64_t *keys;
    size_t n, cap;
};

struct eval_novelty *eval_novelty_new(int max_run)
{
    struct eval_novelty *nv = calloc(1, sizeof *nv);
    if (nv)
        nv->max_run = max_run > 0 ? max_run : 16;
    return nv;
}

void eval_novelty_free(struct eval_novelty *nv)
{
    if (nv)
        free(nv->keys);
    free(nv);
}

/* Hashes of the bars with music of the first voice of tune `ti`: each event's pitch, length and kind. */
static size_t bar_hashes(const abc_file *f, size_t ti, uint64_t **out)
{
    *out = NULL;
    abc_model *m = abc_model_new(f, ti, NULL);
    if (!m || !m->n_voices) {
        abc_model_free(m);
        return 0;
    }
    const abc_voice *v = &m->voices[0];
    uint64_t *h = malloc((v->n_bars + 1) * sizeof *h);
    size_t n = 0;
    for (size_t b = 0; h && b < v->n_bars; b++) {
        if (!v->bars[b].n_events)
            continue;
        uint64_t x = 0x6261720000000000ull;
        for (size_t k = 0; k < v->bars[b].n_events; k++) {
            const abc_event *e = &v->events[v->bars[b].first_event + k];
            x = mix64(x ^ (uint64_t)(e->pitch + 1));
            x = mix64(x ^ (uint64_t)e->dur.num ^ ((uint64_t)e->dur.den << 32));
            x = mix64(x ^ (e->flags & (ABC_EV_REST | ABC_EV_GRACE | ABC_EV_CHORD)));
        }
        h[n++] = x;
    }
    abc_model_free(m);
    *out = h;
    return n;
}

static uint64_t run_hash(const uint64_t *bars, int len)
{
    uint64_t x = mix64((uint64_t)len);
    for (int i = 0; i < len; i++)
        x = mix64(x ^ bars[i]);
    return x;
}

int eval_novelty_add(struct eval_novelty *nv, const char *abc, size_t len)
{
    abc_file *f = abc_parse(abc, len);
    if (!f)
        return -1;
    int rc = 0;
    for (size_t t = 0; t < f->n_tunes && !rc; t++) {
        uint64_t *bars;
        size_t n = bar_hashes(f, t, &bars);
        for (size_t i = 0; i < n && !rc; i++)
            for (int l = 1; l <= nv->max_run && i + (size_t)l <= n; l++) {
                if (nv->n == nv->cap) {
                    size_t cap = nv->cap ? 2 * nv->cap : 1 << 16;
                    uint64_t *k = realloc(nv->keys, cap * sizeof *k);
                    if (!k) {
                        rc = -1;
                        break;
                    }
                    nv->keys = k;
                    nv->cap = cap;
                }
                nv->keys[nv->n++] = run_hash(bars + i, l);
            }
        free(bars);
    }
    abc_file_free(f);
    return rc;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void eval_novelty_seal(struct eval_novelty *nv) { qsort(nv->keys, nv->n, sizeof *nv->keys, cmp_u64); }

static int has_key(const struct eval_novelty *nv, uint64_t key)
{
    return nv->n && bsearch(&key, nv->keys, nv->n, sizeof key, cmp_u64) != NULL;
}

int eval_novelty_longest(const struct eval_novelty *nv, const char *abc, size_t len, int *bars_out)
{
    abc_file *f = abc_parse(abc, len);
    if (!f || !f->n_tunes) {
        abc_file_free(f);
        return -1;
    }
    uint64_t *bars;
    size_t n = bar_hashes(f, 0, &bars);
    abc_file_free(f);
    *bars_out = (int)n;
    int longest = 0;
    /* a run of length l+1 contains runs of length l: stop at the first length with no copy */
    for (int l = 1; l <= nv->max_run && (size_t)l <= n; l++) {
        int found = 0;
        for (size_t i = 0; i + (size_t)l <= n && !found; i++)
            found = has_key(nv, run_hash(bars + i, l));
        if (!found)
            break;
        longest = l;
    }
    free(bars);
    return longest;
}

/* ---------------------------------------------------------------- histograms */

int eval_histograms(const char *abc, size_t len, double pc[12], double iv[EVAL_INTERVALS])
{
    abc_file *f = abc_parse(abc, len);
    if (!f)
        return -1;
    int added = 0;
    abc_model *m = f->n_tunes ? abc_model_new(f, 0, NULL) : NULL;
    abc_melody mel = {0};
    if (m && m->n_voices && !abc_melody_of_voice(m, 0, &mel)) {
        int tonic = m->key.none ? 0 : m->key.tonic_pc;
        for (size_t i = 0; i < mel.n; i++) {
            pc[((mel.pitch[i] - tonic) % 12 + 12) % 12] += 1;
            if (i) {
                int d = mel.pitch[i] - mel.pitch[i - 1];
                d = d < -12 ? -12 : d > 12 ? 12 : d;
                iv[d + 12] += 1;
            }
        }
        added = (int)mel.n;
    }
    abc_melody_free(&mel);
    abc_model_free(m);
    abc_file_free(f);
    return added;
}

double eval_tv_distance(const double *a, const double *b, int n)
{
    double sa = 0, sb = 0, d = 0;
    for (int i = 0; i < n; i++) {
        sa += a[i];
        sb += b[i];
    }
    if (sa <= 0 || sb <= 0)
        return 1.0;
    for (int i = 0; i < n; i++)
        d += fabs(a[i] / sa - b[i] / sb);
    return d / 2;
}

/* ---------------------------------------------------------------- n-gram */

struct slot {
    uint64_t key;   /* 0: empty */
    uint32_t count; /* c(h,w) in the n-gram table; c(h) in the context table */
    uint32_t types; /* context table: distinct followers t(h) */
};

struct table {
    struct slot *s;
    size_t cap, n; /* cap: power of two */
};

struct eval_ngram {
    int order, vocab;
    struct table grams, ctxs;
    uint64_t total, unigram_types;
    uint32_t *unigram;
};

static struct slot *table_find(const struct table *t, uint64_t key)
{
    for (size_t i = key & (t->cap - 1);; i = (i + 1) & (t->cap - 1))
        if (t->s[i].key == key || !t->s[i].key)
            return &t->s[i];
}

static int table_grow(struct table *t)
{
    if (2 * (t->n + 1) <= t->cap)
        return 0;
    size_t cap = t->cap ? 2 * t->cap : 1 << 16;
    struct slot *s = calloc(cap, sizeof *s);
    if (!s)
        return -1;
    struct table nt = {s, cap, t->n};
    for (size_t i = 0; i < t->cap; i++)
        if (t->s[i].key)
            *table_find(&nt, t->s[i].key) = t->s[i];
    free(t->s);
    *t = nt;
    return 0;
}

/* Key of the context hist[n-len..n) (len >= 1), optionally followed by token w (w < 0: none). */
static uint64_t gram_key(const int *hist, size_t n, int len, int w)
{
    uint64_t x = mix64(0x6e6772616dull + (uint64_t)len);
    for (int i = 0; i < len; i++)
        x = mix64(x ^ (uint64_t)(uint32_t)hist[n - (size_t)len + (size_t)i]);
    if (w >= 0)
        x = mix64(x ^ ((uint64_t)(uint32_t)w << 20) ^ 0x77);
    return x | 1;
}

struct eval_ngram *eval_ngram_new(int order, int vocab)
{
    struct eval_ngram *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->order = order < 1 ? 1 : order;
    g->vocab = vocab;
    g->unigram = calloc((size_t)vocab, sizeof *g->unigram);
    if (!g->unigram) {
        free(g);
        return NULL;
    }
    return g;
}

void eval_ngram_free(struct eval_ngram *g)
{
    if (!g)
        return;
    free(g->grams.s);
    free(g->ctxs.s);
    free(g->unigram);
    free(g);
}

int eval_ngram_add(struct eval_ngram *g, const int *ids, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        int w = ids[i];
        if (w < 0 || w >= g->vocab)
            continue;
        g->unigram_types += g->unigram[w]++ == 0;
        g->total++;
        for (int len = 1; len < g->order && (size_t)len <= i; len++) {
            if (table_grow(&g->grams) || table_grow(&g->ctxs))
                return -1;
            struct slot *s = table_find(&g->grams, gram_key(ids, i, len, w));
            if (!s->key) {
                s->key = gram_key(ids, i, len, w);
                g->grams.n++;
            }
            struct slot *c = table_find(&g->ctxs, gram_key(ids, i, len, -1));
            if (!c->key) {
                c->key = gram_key(ids, i, len, -1);
                g->ctxs.n++;
            }
            c->types += s->count++ == 0;
            c->count++;
        }
    }
    return 0;
}

double eval_ngram_prob(const struct eval_ngram *g, const int *hist, size_t n, int token)
{
    double t0 = (double)g->unigram_types;
    double p = ((double)g->unigram[token] + t0 / g->vocab) / ((double)g->total + t0);
    if (g->total == 0)
        p = 1.0 / g->vocab;
    for (int len = 1; len < g->order && (size_t)len <= n; len++) {
        const struct slot *c = g->ctxs.cap ? table_find(&g->ctxs, gram_key(hist, n, len, -1)) : NULL;
        if (!c || !c->key)
            break; /* a longer context containing an unseen one is unseen too */
        const struct slot *s = table_find(&g->grams, gram_key(hist, n, len, token));
        double cw = s->key ? s->count : 0;
        p = (cw + c->types * p) / ((double)c->count + c->types);
    }
    return p;
}

int eval_ngram_sample(const struct eval_ngram *g, const int *hist, size_t n, uint64_t *rng)
{
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    double u = (double)(*rng >> 11) * (1.0 / 9007199254740992.0), acc = 0;
    for (int w = 0; w < g->vocab; w++) {
        acc += eval_ngram_prob(g, hist, n, w);
        if (u < acc)
            return w;
    }
    return g->vocab - 1;
}

/* ---------------------------------------------------------------- model */

int eval_model_bits(const struct model *m, struct model_state *s, const int *ids, size_t n, double *bits, char *err,
                    size_t errlen)
{
    *bits = 0;
    if (n < 2)
        return 0;
    int vocab = m->config.vocab_size;
    float *logits = malloc((n - 1) * (size_t)vocab * sizeof *logits);
    if (!logits) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->pos = 0;
    int rc = model_forward(m, s, ids, (int)(n - 1), logits, err, errlen) ? 0 : -1;
    for (size_t i = 0; !rc && i + 1 < n; i++) {
        const float *row = logits + i * (size_t)vocab;
        float mx = row[0];
        for (int v = 1; v < vocab; v++)
            mx = row[v] > mx ? row[v] : mx;
        double sum = 0;
        for (int v = 0; v < vocab; v++)
            sum += exp((double)row[v] - mx);
        *bits += (log(sum) + mx - row[ids[i + 1]]) / log(2.0);
    }
    free(logits);
    return rc;
}
