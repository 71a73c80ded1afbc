/* Playback expansion: repeats, first/second endings and P: part order, per voice.
 *
 * A repeat section starts at the tune start, at a |: or after a completed :|. At a :| the player goes back
 * to the section start while a later pass has an ending to play (once when there are no endings).
 * An ending region runs from its [n up to the bar that closes with :|, ||, |] or [| or up to the next
 * ending or |:, whichever comes first. */
#include <stdlib.h>
#include <string.h>

#include "abc_internal.h"
#include "model_internal.h"

#define MAX_PASSES 16
#define MAX_PLAYED_BARS 20000     /* playback is cut there (real tunes play a few hundred bars) */
#define MAX_PLAYED_EVENTS 500000

bool abc_ending_has(const char *list, int n)
{
    const char *s = list;
    while (*s) {
        int a = (int)strtol(s, (char **)&s, 10), b = a;
        if (*s == '-') {
            s++;
            b = (int)strtol(s, (char **)&s, 10);
        }
        if (n >= a && n <= b)
            return true;
        if (*s == ',')
            s++;
        else if (*s)
            break;
    }
    return false;
}

int abc_ending_max(const char *list)
{
    int mx = 0;
    const char *s = list;
    while (*s) {
        int v = (int)strtol(s, (char **)&s, 10);
        if (v > mx)
            mx = v;
        if (*s == ',' || *s == '-')
            s++;
        else if (*s)
            break;
    }
    return mx > MAX_PASSES ? MAX_PASSES : mx;
}

static bool closes_section(const abc_bar *b)
{
    return b->repeat_end || b->end_style == ABC_BAR_DOUBLE || b->end_style == ABC_BAR_THIN_THICK ||
           b->end_style == ABC_BAR_THICK_THIN;
}

/* First bar after the ending region that starts at bar i. */
static size_t ending_end(const abc_bar *bars, size_t i, size_t hi)
{
    for (size_t k = i; k < hi; k++) {
        if (closes_section(&bars[k]))
            return k + 1;
        if (k + 1 < hi && (bars[k + 1].ending || bars[k + 1].repeat_start))
            return k + 1;
    }
    return hi;
}

/* Largest ending number of the chain of endings that follows bar i (inclusive of the current one). */
static int chain_max(const abc_bar *bars, size_t i, size_t hi, const char *current)
{
    int mx = current ? abc_ending_max(current) : 0;
    size_t k = i + 1;
    while (k < hi && bars[k].ending) {
        int e = abc_ending_max(bars[k].ending);
        if (e > mx)
            mx = e;
        k = ending_end(bars, k, hi);
    }
    return mx;
}

typedef struct order {
    int *v;
    size_t n, cap;
    size_t steps; /* bars looked at, over all ranges: bounds the work on absurd repeat/part structures */
    bool oom;
} order;

static void emit(order *o, int bar)
{
    if (o->n >= MAX_PLAYED_BARS)
        return;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 64;
        int *v = realloc(o->v, cap * sizeof *v);
        if (!v) {
            o->oom = true;
            return;
        }
        o->v = v;
        o->cap = cap;
    }
    o->v[o->n++] = bar;
}

static void expand_range(const abc_bar *bars, size_t lo, size_t hi, order *o)
{
    size_t start = lo, i = lo;
    int pass = 1;
    const char *ending = NULL; /* list of the ending region being played */
    size_t ending_stop = 0;
    while (i < hi && o->n < MAX_PLAYED_BARS && o->steps++ < 4 * (size_t)MAX_PLAYED_BARS) {
        const abc_bar *b = &bars[i];
        if (b->repeat_start && i != start) {
            start = i;
            pass = 1;
        }
        if (ending && i >= ending_stop) { /* past the last ending played: a new repeat section begins */
            ending = NULL;
            start = i;
            pass = 1;
        }
        if (b->ending) {
            if (!abc_ending_has(b->ending, pass)) {
                i = ending_end(bars, i, hi);
                continue;
            }
            ending = b->ending;
            ending_stop = ending_end(bars, i, hi);
        }
        emit(o, (int)i);
        if (b->repeat_end) {
            int passes = ending ? chain_max(bars, i, hi, ending) : 2;
            if (passes < 2)
                passes = 2;
            if (pass < passes && pass < MAX_PASSES) {
                pass++;
                i = start;
                ending = NULL;
                ending_stop = 0;
                continue;
            }
            start = i + 1;
            pass = 1;
        }
        i++;
    }
}

/* P:A2(BC)3 -> "AABCBCBC" into out (at most cap-1 letters). */
static size_t expand_parts(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    while (*s && n + 1 < cap) {
        if (*s == '(') {
            int depth = 1;
            const char *e = s + 1;
            while (*e && depth) {
                depth += *e == '(' ? 1 : *e == ')' ? -1 : 0;
                e++;
            }
            char inner[256];
            size_t len = (size_t)(e - s) - (depth ? 1 : 2);
            if (len >= sizeof inner)
                len = sizeof inner - 1;
            memcpy(inner, s + 1, len);
            inner[len] = 0;
            char sub[256];
            size_t sn = expand_parts(inner, sub, sizeof sub);
            s = e;
            int rep = 1;
            if (*s >= '0' && *s <= '9')
                rep = (int)strtol(s, (char **)&s, 10);
            for (int r = 0; r < rep && r < 64; r++)
                for (size_t k = 0; k < sn && n + 1 < cap; k++)
                    out[n++] = sub[k];
        } else if (*s >= 'A' && *s <= 'Z') {
            char c = *s++;
            int rep = 1;
            if (*s >= '0' && *s <= '9')
                rep = (int)strtol(s, (char **)&s, 10);
            for (int r = 0; r < rep && r < 64 && n + 1 < cap; r++)
                out[n++] = c;
        } else {
            s++;
        }
    }
    out[n] = 0;
    return n;
}

static void voice_order(const abc_model *m, const abc_voice *v, order *o)
{
    bool labelled = false;
    for (size_t i = 0; i < v->n_bars && !labelled; i++)
        labelled = v->bars[i].part != NULL;
    if (!m->parts || !labelled) {
        expand_range(v->bars, 0, v->n_bars, o);
        return;
    }
    char seq[1024];
    size_t n = expand_parts(m->parts, seq, sizeof seq);
    for (size_t k = 0; k < n; k++)
        for (size_t i = 0; i < v->n_bars; i++) {
            if (!v->bars[i].part || v->bars[i].part[0] != seq[k])
                continue;
            size_t j = i + 1;
            while (j < v->n_bars && !v->bars[j].part)
                j++;
            expand_range(v->bars, i, j, o);
            break;
        }
}

void abc_number_bars(const abc_model *m, abc_voice *v)
{
    abc_frac full = abc_meter_bar_length(m->meter);
    int number = 1;
    for (size_t i = 0; i < v->n_bars; i++) {
        bool pickup = i == 0 && v->n_bars > 1 && full.num && abc_frac_cmp(v->bars[0].len, full) < 0;
        v->bars[i].number = pickup ? 0 : number++;
    }
}

bool abc_model_expand(abc_model *m)
{
    size_t n_chords_played = 0;
    abc_vec chords = {.item = sizeof(abc_chord_symbol)};
    for (size_t vi = 0; vi < m->n_voices; vi++) {
        abc_voice *v = &m->voices[vi];
        abc_number_bars(m, v);
        order o = {0};
        voice_order(m, v, &o);
        if (o.oom) {
            free(o.v);
            abc_vec_free(&chords);
            return false;
        }
        size_t n_played = 0;
        for (size_t k = 0; k < o.n; k++) {
            if (n_played + v->bars[o.v[k]].n_events > MAX_PLAYED_EVENTS) {
                o.n = k;
                break;
            }
            n_played += v->bars[o.v[k]].n_events;
        }
        v->played = abc_arena_alloc(m->arena, (n_played ? n_played : 1) * sizeof(abc_event));
        v->play_order = abc_arena_alloc(m->arena, (o.n ? o.n : 1) * sizeof(int));
        if (!v->played || !v->play_order) {
            free(o.v);
            abc_vec_free(&chords);
            return false;
        }
        if (o.n)
            memcpy(v->play_order, o.v, o.n * sizeof(int));
        v->n_play = o.n;
        /* chord symbols of this voice, by bar */
        size_t c0 = 0;
        while (c0 < m->n_chords && m->chords[c0].voice != (int)vi)
            c0++;
        size_t c1 = c0;
        while (c1 < m->n_chords && m->chords[c1].voice == (int)vi)
            c1++;
        abc_frac t = {0, 1};
        for (size_t k = 0; k < o.n; k++) {
            const abc_bar *b = &v->bars[o.v[k]];
            for (size_t e = 0; e < b->n_events; e++) {
                abc_event ev = v->events[b->first_event + e];
                ev.start = abc_frac_add(t, abc_frac_sub(ev.start, b->start));
                v->played[v->n_played++] = ev;
            }
            for (size_t c = c0; c < c1; c++) {
                if (m->chords[c].bar != o.v[k])
                    continue;
                abc_chord_symbol *cs = abc_vec_push(&chords);
                if (!cs) {
                    free(o.v);
                    abc_vec_free(&chords);
                    return false;
                }
                *cs = m->chords[c];
                cs->start = abc_frac_add(t, abc_frac_sub(cs->start, b->start));
            }
            t = abc_frac_add(t, b->len);
        }
        if (abc_frac_cmp(t, m->duration_played) > 0)
            m->duration_played = t;
        free(o.v);
    }
    n_chords_played = chords.n;
    m->chords_played = abc_vec_move(&chords, m->arena);
    m->n_chords_played = n_chords_played;
    if (n_chords_played && !m->chords_played)
        return false;
    m->play_order = m->voices[0].play_order;
    m->n_play = m->voices[0].n_play;
    return true;
}
