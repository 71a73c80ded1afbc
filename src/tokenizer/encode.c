/* Encoding: normalise, split into characters and user-defined symbols, merge by BPE, emit ids.
 *
 * The merge loop is SentencePiece's bpe::Model::SampleEncode (alpha = 0): symbols form a linked list; a
 * max-heap holds every adjacent pair whose concatenation is a piece, ordered by the piece's score, ties to
 * the leftmost pair; popping a pair that is stale (a side already merged away or grown) skips it, else the
 * right symbol is merged into the left and the two new neighbour pairs are pushed. O(n log n) per line.
 * Emission follows SentencePieceProcessor::PopulateSentencePieceText: unknown symbols become byte pieces
 * under byte fallback, else runs of them collapse into one <unk>. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

typedef struct symbol {
    int start, len; /* into the normalised text; len 0: merged away */
    int prev, next;
    bool freeze; /* user-defined symbols are never merged */
} symbol;

typedef struct pair {
    float score;
    int left, right;
    int size; /* byte length of the merged piece when pushed; a mismatch marks a stale entry */
} pair;

/* SentencePiece's rev_merge for UNUSED pieces: piece id -> length of the left part of the last pair pushed
 * that forms it. Open addressing; keys stored as id + 1. */
typedef struct split_map {
    int *key, *left_len;
    size_t cap, n;
} split_map;

typedef struct encoder {
    const mt_tokenizer *t;
    tok_buf norm;
    symbol *sym;
    size_t sym_cap;
    pair *heap;
    size_t n_heap, heap_cap;
    split_map splits;
    tok_emit_fn emit;
    void *ctx;
    const char *unk_run; /* pending run of unknown characters (no byte fallback) */
    size_t unk_run_len;
} encoder;

/* ---------------------------------------------------------------- heap */

static bool higher(const pair *a, const pair *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static int heap_push(encoder *e, pair p)
{
    if (e->n_heap == e->heap_cap) {
        size_t cap = e->heap_cap ? 2 * e->heap_cap : 256;
        pair *h = realloc(e->heap, cap * sizeof *h);
        if (!h)
            return -1;
        e->heap = h;
        e->heap_cap = cap;
    }
    size_t i = e->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!higher(&p, &e->heap[parent]))
            break;
        e->heap[i] = e->heap[parent];
        i = parent;
    }
    e->heap[i] = p;
    return 0;
}

static pair heap_pop(encoder *e)
{
    pair top = e->heap[0];
    pair last = e->heap[--e->n_heap];
    size_t i = 0, n = e->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && higher(&e->heap[c + 1], &e->heap[c]))
            c++;
        if (!higher(&e->heap[c], &last))
            break;
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (n)
        e->heap[i] = last;
    return top;
}

/* ---------------------------------------------------------------- rev_merge for UNUSED pieces */

static int splits_put(split_map *m, int id, int left_len)
{
    if (2 * (m->n + 1) > m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 64;
        split_map g = {calloc(cap, sizeof(int)), calloc(cap, sizeof(int)), cap, 0};
        if (!g.key || !g.left_len) {
            free(g.key);
            free(g.left_len);
            return -1;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->key[i])
                splits_put(&g, m->key[i] - 1, m->left_len[i]);
        free(m->key);
        free(m->left_len);
        *m = g;
    }
    size_t i = ((uint32_t)id * 2654435761u) & (m->cap - 1);
    while (m->key[i] && m->key[i] != id + 1)
        i = (i + 1) & (m->cap - 1);
    if (!m->key[i])
        m->n++;
    m->key[i] = id + 1;
    m->left_len[i] = left_len;
    return 0;
}

static int splits_get(const split_map *m, int id)
{
    if (!m->cap)
        return -1;
    size_t i = ((uint32_t)id * 2654435761u) & (m->cap - 1);
    while (m->key[i]) {
        if (m->key[i] == id + 1)
            return m->left_len[i];
        i = (i + 1) & (m->cap - 1);
    }
    return -1;
}

/* ---------------------------------------------------------------- BPE */

static int maybe_add_pair(encoder *e, int left, int right)
{
    if (left < 0 || right < 0 || e->sym[left].freeze || e->sym[right].freeze)
        return 0;
    const mt_tokenizer *t = e->t;
    int size = e->sym[left].len + e->sym[right].len;
    const char *piece = e->norm.p + e->sym[left].start;
    int id = tok_table_find(t, &t->normal, piece, (size_t)size);
    if (id < 0)
        return 0;
    if (heap_push(e, (pair){t->score[id], left, right, size}))
        return -1;
    if (t->type[id] == TOK_UNUSED && splits_put(&e->splits, id, e->sym[left].len))
        return -1;
    return 0;
}

static void flush_unknown_run(encoder *e)
{
    if (e->unk_run_len) {
        e->emit(e->ctx, e->t->unk, e->unk_run, e->unk_run_len);
        e->unk_run_len = 0;
    }
}

static void emit_piece(encoder *e, const char *s, size_t len, int id)
{
    const mt_tokenizer *t = e->t;
    if (t->type[id] != TOK_UNKNOWN) {
        flush_unknown_run(e);
        e->emit(e->ctx, id, s, len);
    } else if (t->byte_fallback) {
        for (size_t i = 0; i < len; i++) {
            int b = t->byte_id[(unsigned char)s[i]];
            e->emit(e->ctx, b, t->blob + t->offset[b], t->len[b]);
        }
    } else if (e->unk_run_len) {
        e->unk_run_len += len; /* the run is contiguous in the normalised text */
    } else {
        e->unk_run = s;
        e->unk_run_len = len;
    }
}

/* SentencePiece's resegment: an UNUSED piece is replaced by the two pieces it was last formed from. */
static void resegment(encoder *e, const char *s, size_t len)
{
    int id = tok_spm_piece_to_id(e->t, s, len);
    int left = e->t->type[id] == TOK_UNUSED ? splits_get(&e->splits, id) : -1;
    if (left < 0) {
        emit_piece(e, s, len, id);
        return;
    }
    resegment(e, s, (size_t)left);
    resegment(e, s + left, len - (size_t)left);
}

static int encode_segment(encoder *e, const char *text, size_t len)
{
    const mt_tokenizer *t = e->t;
    if (tok_normalize(t, text, len, &e->norm))
        return -1;
    const char *s = e->norm.p;
    size_t n = e->norm.n;
    if (n == 0)
        return 0;
    if (n > INT_MAX) /* symbol positions are ints */
        return -1;
    if (n > e->sym_cap) {
        symbol *p = realloc(e->sym, n * sizeof *p);
        if (!p)
            return -1;
        e->sym = p;
        e->sym_cap = n;
    }
    int count = 0;
    for (size_t pos = 0; pos < n; count++) {
        size_t l = tok_match_user_defined(t, s + pos, n - pos);
        bool freeze = l > 0;
        if (!l)
            l = tok_utf8_char_len(s + pos, n - pos);
        e->sym[count] = (symbol){(int)pos, (int)l, count - 1, pos + l < n ? count + 1 : -1, freeze};
        pos += l;
    }
    e->n_heap = 0;
    e->splits.n = 0;
    if (e->splits.cap)
        memset(e->splits.key, 0, e->splits.cap * sizeof(int));
    for (int i = 1; i < count; i++)
        if (maybe_add_pair(e, i - 1, i))
            return -1;

    while (e->n_heap) {
        pair top = heap_pop(e);
        symbol *l = &e->sym[top.left], *r = &e->sym[top.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != top.size)
            continue;
        l->len += r->len;
        l->next = r->next;
        if (r->next >= 0)
            e->sym[r->next].prev = top.left;
        r->len = 0;
        if (maybe_add_pair(e, l->prev, top.left) || maybe_add_pair(e, top.left, l->next))
            return -1;
    }

    for (int i = 0; i >= 0; i = e->sym[i].next)
        resegment(e, s + e->sym[i].start, (size_t)e->sym[i].len);
    flush_unknown_run(e);
    return 0;
}

/* ---------------------------------------------------------------- special tokens in text */

/* The leftmost (then longest) special-token name in text, as the HF tokenizer's added-token trie splits. */
static const char *find_special(const mt_tokenizer *t, const char *text, size_t len, size_t *name_len, int *id)
{
    for (size_t i = 0; i < len; i++) {
        if (text[i] != '<')
            continue;
        size_t best = 0;
        for (int k = 0; k < 9; k++) {
            size_t nl = strlen(tok_special_names[k]);
            if (t->special_id[k] >= 0 && nl > best && nl <= len - i && !memcmp(text + i, tok_special_names[k], nl)) {
                best = nl;
                *id = t->special_id[k];
            }
        }
        if (best) {
            *name_len = best;
            return text + i;
        }
    }
    return NULL;
}

static void emit_id(encoder *e, int id)
{
    e->emit(e->ctx, id, e->t->blob + e->t->offset[id], e->t->len[id]);
}

int tok_encode_each(const mt_tokenizer *t, const char *text, size_t len, unsigned flags, tok_emit_fn emit,
                    void *ctx)
{
    encoder e = {.t = t, .emit = emit, .ctx = ctx};
    int rc = 0;
    if ((flags & TOK_ADD_BOS) && t->bos >= 0)
        emit_id(&e, t->bos);
    if (flags & TOK_PARSE_SPECIAL) {
        size_t name_len;
        int id;
        const char *at;
        while (!rc && (at = find_special(t, text, len, &name_len, &id))) {
            rc = encode_segment(&e, text, (size_t)(at - text));
            if (!rc)
                emit_id(&e, id);
            len -= (size_t)(at - text) + name_len;
            text = at + name_len;
        }
    }
    if (!rc)
        rc = encode_segment(&e, text, len);
    if (!rc && (flags & TOK_ADD_EOS) && t->eos >= 0)
        emit_id(&e, t->eos);
    free(e.norm.p);
    free(e.sym);
    free(e.heap);
    free(e.splits.key);
    free(e.splits.left_len);
    return rc;
}

typedef struct collect {
    tok_ids *out;
    size_t n0;
    bool oom;
} collect;

static void collect_id(void *ctx, int id, const char *piece, size_t len)
{
    (void)piece;
    (void)len;
    collect *c = ctx;
    if (c->oom)
        return;
    tok_ids *o = c->out;
    if (o->n == o->cap) {
        size_t cap = o->cap ? 2 * o->cap : 64;
        int *v = realloc(o->v, cap * sizeof *v);
        if (!v) {
            c->oom = true;
            return;
        }
        o->v = v;
        o->cap = cap;
    }
    o->v[o->n++] = id;
}

int tok_encode(const mt_tokenizer *t, const char *text, size_t len, unsigned flags, tok_ids *out)
{
    collect c = {out, out->n, false};
    if (tok_encode_each(t, text, len, flags, collect_id, &c) || c.oom) {
        out->n = c.n0;
        return -1;
    }
    return 0;
}
