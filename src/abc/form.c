/* Section/form detection from the played bar sequence (the method is described in melodist/abc_analysis.h). */
#include <stdlib.h>
#include <string.h>

#include "analysis_internal.h"

#define SAME_SECTION 0.5 /* fraction of bars that must match for a section to repeat a label */

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

/* Written bars after which a section ends on the page: a double or thick bar line, or a P: label next. */
static void page_breaks(const abc_tune *t, const abc_model *m, bool *end_after, bool *starts_part)
{
    const abc_voice *v = &m->voices[0];
    size_t *last_el = calloc(m->n_bars, sizeof *last_el);
    if (!last_el)
        return;
    for (size_t i = 0; i < v->n_events; i++) {
        const abc_event *e = &v->events[i];
        if (e->bar >= 0 && (size_t)e->bar < m->n_bars && e->element >= 0 && (size_t)e->element > last_el[e->bar])
            last_el[e->bar] = (size_t)e->element;
    }
    for (size_t b = 0; b < m->n_bars; b++) {
        for (size_t k = last_el[b] + 1; last_el[b] && k < t->n_body; k++) {
            const abc_element *el = &t->body[k];
            if (el->kind == ABC_EL_NOTE || el->kind == ABC_EL_REST)
                break;
            if (el->kind == ABC_EL_BAR) {
                abc_bar_style s = el->u.bar.style;
                end_after[b] = s == ABC_BAR_DOUBLE || s == ABC_BAR_THIN_THICK || s == ABC_BAR_THICK_THIN ||
                               s == ABC_BAR_THICK;
                break;
            }
        }
    }
    /* a P: field: the bar of the next note of the first voice starts a part */
    for (size_t i = 0, k = 0; i < t->n_body; i++) {
        const abc_element *el = &t->body[i];
        if (el->kind != ABC_EL_FIELD || el->u.field.key != 'P')
            continue;
        while (k < v->n_events && v->events[k].element <= (int)i)
            k++;
        if (k < v->n_events && v->events[k].bar >= 0 && (size_t)v->events[k].bar < m->n_bars)
            starts_part[v->events[k].bar] = true;
    }
    free(last_el);
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

int abc_form_detect(const abc_tune *t, const abc_model *m, abc_meter meter, abc_analysis *out)
{
    out->form = NULL;
    out->sections = NULL;
    out->n_sections = 0;
    size_t n = m->n_play, nb = m->n_bars;
    uint64_t *hash = calloc(nb + 1, sizeof *hash);
    bool *end_after = calloc(nb + 1, sizeof *end_after), *starts_part = calloc(nb + 1, sizeof *starts_part);
    size_t *seg_start = calloc(n + 1, sizeof *seg_start);
    int *rep = calloc(n + 1, sizeof *rep);
    out->sections = calloc(n + 1, sizeof *out->sections);
    out->form = calloc(n + 1, 1);
    if (!hash || !end_after || !starts_part || !seg_start || !rep || !out->sections || !out->form) {
        free(hash), free(end_after), free(starts_part), free(seg_start), free(rep);
        return -1;
    }
    if (n == 0 || m->n_voices == 0)
        goto done;
    bar_hashes(m, hash);
    page_breaks(t, m, end_after, starts_part);
    const int *po = m->play_order;
    abc_frac bar_len = abc_meter_bar_length(meter);

    /* cut the played sequence */
    size_t ns = 0;
    seg_start[ns++] = 0;
    for (size_t i = 1; i < n; i++) {
        const abc_bar *cur = &m->bars[po[i]], *prev = &m->bars[po[i - 1]];
        if (!cur->ending && (po[i] != po[i - 1] + 1 || cur->repeat_start || prev->repeat_end ||
                             end_after[po[i - 1]] || starts_part[po[i]]))
            seg_start[ns++] = i;
    }
    seg_start[ns] = n;
    /* a section shorter than a bar (a pickup) joins the next one, or the previous one at the end */
    size_t kept = 0, pending = n;
    for (size_t s = 0; s < ns; s++) {
        size_t begin = pending < n ? pending : seg_start[s];
        abc_frac len = {0, 1};
        for (size_t i = seg_start[s]; i < seg_start[s + 1]; i++)
            len = abc_frac_add(len, m->bars[po[i]].len);
        if (bar_len.num > 0 && abc_frac_cmp(len, bar_len) < 0 && (s + 1 < ns || kept > 0)) {
            pending = begin;
            continue;
        }
        seg_start[kept++] = begin;
        pending = n;
    }
    seg_start[kept] = n;

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
        abc_frac len = {0, 1};
        for (size_t i = 0; i < len_s; i++)
            len = abc_frac_add(len, m->bars[bars[i]].len);
        abc_section *sec = &out->sections[out->n_sections++];
        sec->label = (char)('A' + label);
        sec->first_bar = m->bars[bars[0]].number;
        sec->bars = bar_len.num > 0 ? (int)(abc_frac_to_double(abc_frac_div(len, bar_len)) + 0.5) : (int)len_s;
        out->form[s] = sec->label;
    }
done:
    free(hash), free(end_after), free(starts_part), free(seg_start), free(rep);
    return 0;
}
