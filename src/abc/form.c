/* Section/form detection from the played bar sequence (the method is described in melodist/abc_analysis.h). */
#include <stdlib.h>
#include <string.h>

#include "analysis_internal.h"

#define SAME_SECTION 0.6 /* fraction of bars that must match for a section to repeat a label */
#define PHRASE_BARS 8     /* written-out sections of 16, 24, ... bars are cut into phrases of this length */

/* FNV-1a over the notes of each written bar of the first voice: onset in the bar, pitch, duration. */
static void bar_hashes(const abc_model *m, uint64_t *hash)
{
    for (size_t b = 0; b < m->n_bars; b++)
        hash[b] = 1469598103934665603ULL;
    const abc_voice *v = &m->voices[0];
    for (size_t i = 0; i < v->n_events; i++) {
        const abc_event *e = &v->events[i];
        if (e->bar < 0 || (size_t)e->bar >= m->n_bars || (e->flags & ABC_EV_GRACE))
            continue;
        abc_frac on = abc_frac_sub(e->start, m->bars[e->bar].start);
        int64_t words[5] = {on.num, on.den, e->pitch, e->dur.num, e->dur.den};
        uint64_t h = hash[e->bar];
        for (int w = 0; w < 5; w++) {
            h ^= (uint64_t)words[w];
            h *= 1099511628211ULL;
        }
        hash[e->bar] = h;
    }
}

static bool double_bar(abc_bar_style s)
{
    return s == ABC_BAR_DOUBLE || s == ABC_BAR_THIN_THICK || s == ABC_BAR_THICK_THIN || s == ABC_BAR_THICK;
}

/* Matching bars of sections a and b (written bar lists), best of the alignments shifted by -1, 0, +1
 * (a pickup bar shifts the first statement of a section against its repeat). */
static double similarity(const uint64_t *hash, const int *a, size_t na, const int *b, size_t nb)
{
    size_t best = 0;
    for (int shift = -1; shift <= 1; shift++) {
        size_t same = 0;
        for (size_t i = 0; i < na; i++) {
            long j = (long)i + shift;
            if (j >= 0 && (size_t)j < nb && hash[a[i]] == hash[b[j]])
                same++;
        }
        if (same > best)
            best = same;
    }
    return (double)best / (double)(na > nb ? na : nb);
}

static abc_frac played_len(const abc_model *m, size_t from, size_t to)
{
    abc_frac len = {0, 1};
    for (size_t i = from; i < to; i++)
        len = abc_frac_add(len, m->bars[m->play_order[i]].len);
    return len;
}

/* A tune written out without repeats or double bars (a multiple of PHRASE_BARS bars, at least two phrases)
 * is cut into phrases, counted from the first full bar. Rewrites the section starts (start[0..n]) via tmp; returns
 * the new count. */
static size_t split_phrases(const abc_model *m, abc_frac bar_len, size_t *start, size_t n, size_t *tmp)
{
    if (bar_len.num <= 0)
        return n;
    size_t out = 0, end = start[n];
    for (size_t s = 0; s < n; s++) {
        tmp[out++] = start[s];
        double bars = abc_frac_to_double(abc_frac_div(played_len(m, start[s], start[s + 1]), bar_len));
        long whole = (long)(bars + 0.5);
        if (whole < 2 * PHRASE_BARS || whole % PHRASE_BARS)
            continue;
        abc_frac first = m->bars[m->play_order[start[s]]].len;
        abc_frac phrase = abc_frac_mul(bar_len, abc_frac_make(PHRASE_BARS, 1));
        abc_frac target = abc_frac_add(abc_frac_cmp(first, bar_len) < 0 ? first : abc_frac_make(0, 1), phrase);
        abc_frac acc = {0, 1};
        for (size_t i = start[s] + 1; i < start[s + 1]; i++) {
            acc = abc_frac_add(acc, m->bars[m->play_order[i - 1]].len);
            if (abc_frac_cmp(acc, target) >= 0) {
                tmp[out++] = i;
                target = abc_frac_add(target, phrase);
            }
        }
    }
    memcpy(start, tmp, out * sizeof *start);
    start[out] = end;
    return out;
}

int abc_form_detect(const abc_model *m, abc_meter meter, abc_analysis *out)
{
    out->form = NULL;
    out->sections = NULL;
    out->n_sections = 0;
    size_t n = m->n_play, nb = m->n_bars;
    uint64_t *hash = calloc(nb + 1, sizeof *hash);
    size_t *seg_start = calloc(n + 1, sizeof *seg_start);
    int *rep = calloc(n + 1, sizeof *rep);
    size_t *split = calloc(n + 1, sizeof *split);
    out->sections = calloc(n + 1, sizeof *out->sections);
    out->form = calloc(n + 1, 1);
    if (!hash || !seg_start || !rep || !split || !out->sections || !out->form) {
        free(hash), free(seg_start), free(rep), free(split);
        return -1;
    }
    if (n == 0 || m->n_voices == 0 || played_len(m, 0, n).num == 0)
        goto done;
    bar_hashes(m, hash);
    const int *po = m->play_order;
    abc_frac bar_len = abc_meter_bar_length(meter);

    /* cut the played sequence */
    size_t ns = 0;
    seg_start[ns++] = 0;
    for (size_t i = 1; i < n; i++) {
        const abc_bar *cur = &m->bars[po[i]], *prev = &m->bars[po[i - 1]];
        if (!cur->ending && (po[i] != po[i - 1] + 1 || cur->repeat_start || prev->repeat_end ||
                             double_bar(prev->end_style) || cur->part))
            seg_start[ns++] = i;
    }
    seg_start[ns] = n;
    /* a section shorter than a bar (a pickup) joins the next one, or the previous one at the end */
    size_t kept = 0, pending = n;
    for (size_t s = 0; s < ns; s++) {
        size_t begin = pending < n ? pending : seg_start[s];
        abc_frac len = played_len(m, seg_start[s], seg_start[s + 1]);
        if (bar_len.num > 0 && abc_frac_cmp(len, bar_len) < 0 && (s + 1 < ns || kept > 0)) {
            pending = begin;
            continue;
        }
        seg_start[kept++] = begin;
        pending = n;
    }
    seg_start[kept] = n;
    if (kept == 1) /* no structure on the page: look for written-out repeats phrase by phrase */
        kept = split_phrases(m, bar_len, seg_start, kept, split);

    /* label each section by the earlier section it repeats */
    size_t n_labels = 0;
    for (size_t s = 0; s < kept; s++) {
        const int *bars = po + seg_start[s];
        size_t len_s = seg_start[s + 1] - seg_start[s];
        size_t label = n_labels;
        double best = SAME_SECTION;
        for (size_t l = 0; l < n_labels; l++) {
            size_t r = (size_t)rep[l];
            double sim = similarity(hash, bars, len_s, po + seg_start[r], seg_start[r + 1] - seg_start[r]);
            if (sim >= best) {
                best = sim;
                label = l;
            }
        }
        if (label == n_labels) {
            if (n_labels == 26)
                label = 25;
            else
                rep[n_labels++] = (int)s;
        }
        abc_frac len = played_len(m, seg_start[s], seg_start[s + 1]);
        abc_section *sec = &out->sections[out->n_sections++];
        sec->label = (char)('A' + label);
        sec->first_bar = m->bars[bars[0]].number;
        sec->bars = bar_len.num > 0 ? (int)(abc_frac_to_double(abc_frac_div(len, bar_len)) + 0.5) : (int)len_s;
        out->form[s] = sec->label;
    }
done:
    free(hash), free(seg_start), free(rep), free(split);
    return 0;
}
