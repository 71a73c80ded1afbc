/* The dance rhythm a tune's meter and note pattern fit (the rule is described in melodist/abc_analysis.h). */
#include "analysis_internal.h"

#define MIN_PAIRS 8          /* quarter beats split in two notes needed before the dotted share means anything */
#define HORNPIPE_DOTTED 0.5  /* share of those beats played long-short that makes a hornpipe */
#define STRATHSPEY_SNAP 0.15 /* share played short-long (Scotch snaps) that makes a strathspey */

/* Quarter beats of the full bars of the first voice made of exactly two notes or rests: how many, how many
 * long-short (dotted, or a swung 2:1) and how many short-long. */
static void quarter_pairs(const abc_model *m, abc_meter meter, int *pairs, int *dotted, int *snaps)
{
    *pairs = *dotted = *snaps = 0;
    const abc_frac quarter = abc_frac_make(1, 4), bar_len = abc_meter_bar_length(meter);
    const abc_voice *v = &m->voices[0];
    const abc_event *first = NULL; /* the note that opened the quarter beat being read */
    int in_beat = 0;               /* notes of that beat so far */
    for (size_t i = 0; i < v->n_events; i++) {
        const abc_event *e = &v->events[i];
        if ((e->flags & ABC_EV_GRACE) || e->bar < 0 || (size_t)e->bar >= m->n_bars)
            continue;
        if ((e->flags & ABC_EV_CHORD) && i > 0 && v->events[i - 1].chord == e->chord)
            continue; /* the chord's other notes sound with its first */
        const abc_bar *bar = &m->bars[e->bar];
        abc_frac on = abc_frac_div(abc_frac_sub(e->start, bar->start), quarter);
        if (!abc_frac_eq(bar->len, bar_len)) { /* a pickup or a short bar: its beats cannot be placed */
            first = NULL;
            continue;
        }
        if (on.den == 1) { /* on a quarter beat */
            first = e;
            in_beat = 1;
            continue;
        }
        if (!first || ++in_beat != 2)
            continue;
        abc_frac end = abc_frac_add(e->start, e->dur);
        if (abc_frac_eq(abc_frac_sub(end, first->start), quarter)) {
            int order = abc_frac_cmp(first->dur, e->dur);
            (*pairs)++;
            *dotted += order > 0;
            *snaps += order < 0;
        }
    }
}

const char *abc_rhythm_type_of(const abc_model *m, abc_meter meter)
{
    if (meter.kind == ABC_METER_NONE || m->n_voices == 0)
        return NULL;
    if (meter.den == 8 && meter.num == 6)
        return "jig";
    if (meter.den == 8 && meter.num == 9)
        return "slip jig";
    if (meter.den == 8 && meter.num == 12)
        return "slide";
    if (meter.den == 4 && meter.num == 3)
        return "waltz";
    if (meter.den == 4 && meter.num == 2)
        return "polka";
    if (!((meter.den == 4 && meter.num == 4) || (meter.den == 2 && meter.num == 2)))
        return NULL;
    int pairs, dotted, snaps;
    quarter_pairs(m, meter, &pairs, &dotted, &snaps);
    if (pairs >= MIN_PAIRS && snaps >= STRATHSPEY_SNAP * pairs && dotted + snaps >= HORNPIPE_DOTTED * pairs)
        return "strathspey";
    if (pairs >= MIN_PAIRS && dotted >= HORNPIPE_DOTTED * pairs)
        return "hornpipe";
    return "reel";
}
