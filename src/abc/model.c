/* Tune model: walk a tune's header and body elements and lay the music out in time, per voice.
 *
 * Times are exact rationals in whole notes. Pitches follow the key signature, the accidentals written
 * earlier in the same bar (for that letter in every octave: the standard's default "pitch" rule), and
 * ties (a tied note keeps its pitch across the bar line). Playback expansion is in expand.c. */
#include <stdlib.h>
#include <string.h>

#include "abc_internal.h"
#include "frac_inline.h"
#include "model_internal.h"

#define NO_ACC 127

typedef struct tie_pending {
    char letter;
    int octave, pitch;
} tie_pending;

typedef struct voice_state {
    const char *id, *name, *properties;
    abc_vec events, bars, chords; /* abc_event, abc_bar, abc_chord_symbol */
    abc_frac t;
    abc_key key;
    abc_frac unit;
    abc_meter meter;
    int8_t bar_acc[7];            /* accidental written earlier in this bar per letter, NO_ACC when none */
    int tup_left;
    abc_frac tup_factor;
    abc_frac broken_next;         /* factor for the next group (1 when none) */
    size_t group_first;           /* events of the last note/rest/chord: [group_first, n) */
    abc_frac group_start;
    bool have_group;
    tie_pending ties[16], next_ties[16];
    int n_ties, n_next_ties;
    bool in_grace, in_chord;
    size_t chord_first;
    bool overlay;
    abc_frac overlay_main_t;
    bool rewound;                 /* time went back (overlay, broken rhythm): events may be out of order */
    size_t lyric_mark;            /* events before this index already have lyrics (or are a previous line's) */
    const char *pending_part;
    abc_len memo_len;             /* note_length()'s last answer */
    abc_frac memo_unit, memo_dur;
} voice_state;

typedef struct builder {
    const abc_file *f;
    const abc_tune *tune;
    int index;
    abc_diags *d;
    abc_model *m;
    abc_vec voices; /* voice_state */
    int cur;        /* current voice, -1 before the first */
    int chord_id;
    abc_key key;    /* header values, inherited by new voices */
    abc_frac unit;
    abc_meter meter;
    const char *pending_part; /* last body P: label: the part a voice that starts now is in */
} builder;

static void warn(builder *b, int line, int col, abc_severity sev, const char *cat, const char *hint, const char *msg)
{
    abc_diags_add_text(b->d, sev, line, col, b->index, cat, hint, msg);
}

static void reset_bar_acc(voice_state *v)
{
    memset(v->bar_acc, NO_ACC, sizeof v->bar_acc);
}

static abc_bar *cur_bar(voice_state *v)
{
    return (abc_bar *)v->bars.data + v->bars.n - 1;
}

/* The voices vector keeps its states, with the room of their vectors, from one tune to the next (a model
 * workspace): slots beyond n hold empty vectors, never garbage. */
static voice_state *next_voice_slot(abc_vec *voices)
{
    size_t cap = voices->cap;
    if (voices->n == cap) {
        if (!abc_vec_grow(voices))
            return NULL;
        memset((voice_state *)voices->data + cap, 0, (voices->cap - cap) * sizeof(voice_state));
    }
    return (voice_state *)voices->data + voices->n++;
}

static void reuse_vec(abc_vec *v, size_t item)
{
    *v = (abc_vec){.data = v->data, .cap = v->cap, .item = item};
}

static voice_state *new_voice(builder *b, const char *id)
{
    voice_state *v = next_voice_slot(&b->voices);
    if (!v)
        return NULL;
    abc_vec events = v->events, bars = v->bars, chords = v->chords;
    *v = (voice_state){.id = id, .events = events, .bars = bars, .chords = chords, .t = {0, 1}, .key = b->key,
                       .unit = b->unit, .meter = b->meter, .broken_next = {1, 1}};
    reuse_vec(&v->events, sizeof(abc_event));
    reuse_vec(&v->bars, sizeof(abc_bar));
    reuse_vec(&v->chords, sizeof(abc_chord_symbol));
    reset_bar_acc(v);
    abc_bar *bar = abc_vec_push(&v->bars);
    if (!bar)
        return NULL;
    bar->start = (abc_frac){0, 1};
    bar->meter = v->meter;
    bar->part = b->pending_part;
    return v;
}

/* "1 name=x clef=bass" -> id "1", name "x", properties "name=x clef=bass". */
static voice_state *find_or_add_voice(builder *b, const char *value, int line, int col)
{
    const char *s = value;
    while (*s == ' ')
        s++;
    const char *e = s;
    while (*e && *e != ' ' && *e != '\t')
        e++;
    if (e == s) {
        warn(b, line, col, ABC_ERROR, "voice", "write an identifier, e.g. V:1", "V: without a voice id");
        s = "1";
        e = s + 1;
    }
    size_t idlen = (size_t)(e - s);
    for (size_t i = 0; i < b->voices.n; i++) {
        voice_state *v = (voice_state *)b->voices.data + i;
        if (strlen(v->id) == idlen && !strncmp(v->id, s, idlen)) {
            b->cur = (int)i;
            return v;
        }
    }
    const char *id = abc_arena_strndup(b->m->arena, s, idlen);
    voice_state *v = new_voice(b, id ? id : "");
    if (!v)
        return NULL;
    b->cur = (int)b->voices.n - 1;
    while (*e == ' ' || *e == '\t')
        e++;
    if (*e) {
        v->properties = abc_arena_strndup(b->m->arena, e, strlen(e));
        const char *nm = strstr(e, "name=");
        if (!nm)
            nm = strstr(e, "nm=");
        if (nm) {
            nm = strchr(nm, '=') + 1;
            const char *ne;
            if (*nm == '"') {
                nm++;
                ne = strchr(nm, '"');
                if (!ne)
                    ne = nm + strlen(nm);
            } else {
                ne = nm;
                while (*ne && *ne != ' ' && *ne != '\t')
                    ne++;
            }
            v->name = abc_arena_strndup(b->m->arena, nm, (size_t)(ne - nm));
        }
    }
    return v;
}

static voice_state *voice(builder *b)
{
    if (b->cur < 0) {
        if (!new_voice(b, ""))
            return NULL;
        b->cur = (int)b->voices.n - 1;
    }
    return (voice_state *)b->voices.data + b->cur;
}

/* ---------------------------------------------------------------- notes, groups, bars */

/* The length, tuplet and broken-rhythm factors of a group that has any (the rare case). */
static void scale_group(voice_state *v, size_t first, abc_frac mult)
{
    abc_event *ev = (abc_event *)v->events.data;
    abc_frac f = frac_mul(mult, v->broken_next);
    v->broken_next = (abc_frac){1, 1};
    if (v->tup_left > 0) {
        f = frac_mul(f, v->tup_factor);
        v->tup_left--;
    }
    if (f.num != 1 || f.den != 1)
        for (size_t i = first; i < v->events.n; i++)
            ev[i].dur = frac_mul(ev[i].dur, f);
}

/* Finish a note/rest/chord group: multiply by length, tuplet and broken-rhythm factors; advance time.
 * Inline: it runs for every note. */
static inline void end_group(voice_state *v, size_t first, abc_frac mult)
{
    abc_event *ev = (abc_event *)v->events.data;
    if (first >= v->events.n)
        return;
    if (mult.num != 1 || mult.den != 1 || v->broken_next.num != 1 || v->broken_next.den != 1 || v->tup_left > 0)
        scale_group(v, first, mult);
    v->group_first = first;
    v->group_start = v->t;
    v->have_group = true;
    v->t = frac_add(v->t, ev[first].dur);
    for (int i = 0; i < v->n_next_ties; i++)
        v->ties[i] = v->next_ties[i];
    v->n_ties = v->n_next_ties;
    v->n_next_ties = 0;
}

static void apply_broken(builder *b, voice_state *v, const abc_element *e)
{
    if (!v->have_group) {
        warn(b, e->line, e->col, ABC_ERROR, "rhythm", "put > or < between two notes", "broken rhythm without a note before it");
        return;
    }
    abc_frac small = abc_frac_make(1, (int64_t)1 << e->u.broken.count);
    abc_frac big = frac_sub((abc_frac){2, 1}, small);
    abc_frac before = e->u.broken.dir == '>' ? big : small;
    v->broken_next = e->u.broken.dir == '>' ? small : big;
    abc_event *ev = (abc_event *)v->events.data;
    for (size_t i = v->group_first; i < v->events.n; i++)
        ev[i].dur = frac_mul(ev[i].dur, before);
    v->t = frac_add(v->group_start, ev[v->group_first].dur);
    v->rewound = true;
}

static int note_pitch(voice_state *v, const abc_note *n, bool *tied)
{
    static const int8_t letter_index[7] = {5, 6, 0, 1, 2, 3, 4}; /* A..G -> C D E F G A B order */
    int li = letter_index[n->letter - 'A'];
    *tied = false;
    for (int i = 0; i < v->n_ties; i++)
        if (v->ties[i].letter == n->letter && v->ties[i].octave == n->octave) {
            *tied = true;
            if (n->acc == ABC_ACC_NONE)
                return v->ties[i].pitch;
        }
    int semis;
    if (n->acc != ABC_ACC_NONE) {
        semis = abc_accidental_semitones(n->acc);
        v->bar_acc[li] = (int8_t)semis;
    } else if (v->bar_acc[li] != NO_ACC) {
        semis = v->bar_acc[li];
    } else {
        semis = v->key.sig[li];
    }
    int p = midi_pitch(n->letter, n->octave + v->key.octave, semis);
    return p < 0 ? 0 : p > 127 ? 127 : p;
}

static abc_frac len_frac(abc_len l)
{
    if (l.den == 0 || (l.num == 1 && l.den == 1))
        return (abc_frac){1, 1};
    return l.den > 0 ? reduce64(l.num, l.den) : abc_frac_make(l.num, l.den);
}

/* unit * written length, remembering the last one (runs of equal lengths are the rule) */
static inline abc_frac note_length(voice_state *v, abc_len len)
{
    if (len.num != v->memo_len.num || len.den != v->memo_len.den || v->unit.num != v->memo_unit.num ||
        v->unit.den != v->memo_unit.den) {
        v->memo_len = len;
        v->memo_unit = v->unit;
        v->memo_dur = frac_mul(v->unit, len_frac(len));
    }
    return v->memo_dur;
}

static inline abc_event *push_event(builder *b, voice_state *v, const abc_element *e, int element)
{
    abc_event *ev = abc_vec_next(&v->events);
    if (!ev)
        return NULL;
    *ev = (abc_event){.start = v->t, .bar = (int)v->bars.n - 1, .chord = -1, .element = element, .line = e->line,
                      .col = e->col};
    (void)b;
    return ev;
}

static void add_note(builder *b, voice_state *v, const abc_element *e, int element)
{
    const abc_note *n = &e->u.note;
    size_t first = v->events.n;
    abc_event *ev = push_event(b, v, e, element);
    if (!ev)
        return;
    bool tied;
    ev->pitch = note_pitch(v, n, &tied);
    ev->dur = note_length(v, n->len);
    if (tied)
        ev->flags |= ABC_EV_TIED;
    if (v->in_grace) {
        ev->flags |= ABC_EV_GRACE;
        ev->dur = (abc_frac){0, 1};
        return;
    }
    if (n->tie) {
        ev->flags |= ABC_EV_TIE;
        if (v->n_next_ties < 16)
            v->next_ties[v->n_next_ties++] = (tie_pending){n->letter, n->octave, ev->pitch};
    }
    if (v->in_chord) {
        ev->flags |= ABC_EV_CHORD;
        ev->chord = b->chord_id;
        return;
    }
    end_group(v, first, (abc_frac){1, 1});
}

static void add_rest(builder *b, voice_state *v, const abc_element *e, int element)
{
    size_t first = v->events.n;
    abc_event *ev = push_event(b, v, e, element);
    if (!ev)
        return;
    ev->pitch = -1;
    ev->flags = ABC_EV_REST;
    if (e->u.rest.symbol == 'Z' || e->u.rest.symbol == 'X') {
        ev->flags |= ABC_EV_MULTIBAR;
        abc_frac bar = abc_meter_bar_length(v->meter);
        if (bar.num == 0)
            bar = (abc_frac){1, 1};
        ev->dur = frac_mul(bar, abc_frac_make(e->u.rest.len.num, 1));
    } else {
        ev->dur = note_length(v, e->u.rest.len);
    }
    if (v->in_grace) {
        ev->dur = (abc_frac){0, 1};
        ev->flags |= ABC_EV_GRACE;
        return;
    }
    if (v->in_chord) {
        ev->flags |= ABC_EV_CHORD;
        ev->chord = b->chord_id;
        return;
    }
    end_group(v, first, (abc_frac){1, 1});
}

static void end_chord(builder *b, voice_state *v, const abc_element *e)
{
    if (!v->in_chord)
        return;
    v->in_chord = false;
    if (v->chord_first == v->events.n) {
        warn(b, e->line, e->col, ABC_ERROR, "chord", "put notes between [ and ]", "empty chord");
        return;
    }
    if (e->u.chord.tie) {
        abc_event *ev = (abc_event *)v->events.data;
        for (size_t i = v->chord_first; i < v->events.n; i++) {
            if (ev[i].flags & ABC_EV_REST)
                continue;
            ev[i].flags |= ABC_EV_TIE;
            const abc_note *n = &b->tune->body[ev[i].element].u.note;
            if (v->n_next_ties < 16)
                v->next_ties[v->n_next_ties++] = (tie_pending){n->letter, n->octave, ev[i].pitch};
        }
    }
    end_group(v, v->chord_first, len_frac(e->u.chord.len));
}

static void close_bar(builder *b, voice_state *v, const abc_element *e)
{
    if (v->overlay) {
        v->t = v->overlay_main_t;
        v->overlay = false;
        v->rewound = true;
    }
    abc_bar *bar = cur_bar(v);
    bool empty = v->events.n == bar->first_event && abc_frac_eq(v->t, bar->start);
    reset_bar_acc(v);
    if (empty) {
        /* consecutive bar lines (|: after ||, a leading |:) */
        if (e->u.bar.repeat_end && v->bars.n > 1) {
            abc_bar *prev = bar - 1;
            prev->repeat_end = e->u.bar.repeat_end;
            prev->end_style = e->u.bar.style;
        } else if (v->bars.n > 1 && e->u.bar.style != ABC_BAR_SINGLE) {
            (bar - 1)->end_style = e->u.bar.style;
        }
        if (e->u.bar.repeat_start)
            bar->repeat_start = e->u.bar.repeat_start;
        if (!bar->line) {
            bar->line = e->line;
            bar->col = e->col;
        }
        return;
    }
    bar->len = frac_sub(v->t, bar->start);
    bar->repeat_end = e->u.bar.repeat_end;
    bar->end_style = e->u.bar.style;
    bar->closed = true;
    bar->n_events = v->events.n - bar->first_event;
    abc_bar *nb = abc_vec_next(&v->bars);
    if (!nb)
        return;
    *nb = (abc_bar){.start = v->t, .meter = v->meter, .first_event = v->events.n,
                    .repeat_start = e->u.bar.repeat_start, .line = e->line, .col = e->col, .part = v->pending_part};
    v->pending_part = NULL;
    (void)b;
}

/* ---------------------------------------------------------------- lyrics */

static void align_lyrics(builder *b, voice_state *v, const char *text)
{
    abc_event *ev = (abc_event *)v->events.data;
    size_t n = v->events.n, i = v->lyric_mark;
    if (i >= n)
        return; /* a further verse for the same notes: only the first is kept */
    v->lyric_mark = n;
    const char *s = text;
    char syl[256];
    while (*s) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            break;
        /* advance to the next note that takes a syllable */
        while (i < n && (ev[i].flags & (ABC_EV_REST | ABC_EV_GRACE | ABC_EV_TIED) ||
                         (i > 0 && ev[i].chord >= 0 && ev[i - 1].chord == ev[i].chord)))
            i++;
        if (*s == '|') { /* to the next bar */
            s++;
            if (i < n) {
                int bar = ev[i].bar;
                while (i < n && ev[i].bar == bar && i > 0 && ev[i - 1].bar == bar)
                    i++;
            }
            continue;
        }
        if (*s == '_' || *s == '*' || *s == '-') {
            if (*s != '-' && i < n)
                ev[i++].lyric = "";
            s++;
            continue;
        }
        size_t k = 0;
        while (*s && *s != ' ' && *s != '\t' && *s != '-' && *s != '_' && *s != '*' && *s != '|') {
            char c = *s++;
            if (c == '\\' && *s) {
                c = *s++;
            } else if (c == '~') {
                c = ' ';
            }
            if (k + 1 < sizeof syl)
                syl[k++] = c;
        }
        if (*s == '-')
            s++; /* the hyphen joins this syllable to the next */
        if (i < n)
            ev[i++].lyric = abc_arena_strndup(b->m->arena, syl, k);
    }
}

/* ---------------------------------------------------------------- fields */

static void mark_part(voice_state *v, const char *part)
{
    abc_bar *bar = cur_bar(v);
    if (v->events.n == bar->first_event && abc_frac_eq(v->t, bar->start))
        bar->part = part;
    else
        v->pending_part = part;
}

static void apply_field(builder *b, voice_state *v, char key, const char *value, int line, int col, bool header)
{
    char err[160];
    switch (key) {
    case 'K': {
        abc_key k;
        if (!abc_parse_key(value, &k, err, sizeof err)) {
            warn(b, line, col, ABC_ERROR, "key", "write e.g. K:G, K:Ador, K:Bb min, K:none", err);
            return;
        }
        if (header)
            b->key = k;
        else
            v->key = k;
        break;
    }
    case 'M': {
        abc_meter m;
        if (!abc_parse_meter(value, &m, err, sizeof err)) {
            warn(b, line, col, ABC_ERROR, "meter", "write e.g. M:6/8, M:C, M:C| or M:none", err);
            return;
        }
        if (header) {
            b->meter = m;
        } else {
            v->meter = m;
            abc_bar *bar = cur_bar(v);
            if (v->events.n == bar->first_event)
                bar->meter = m;
        }
        break;
    }
    case 'L': {
        abc_frac u;
        if (!abc_parse_unit(value, &u, err, sizeof err)) {
            warn(b, line, col, ABC_ERROR, "unit", "write e.g. L:1/8", err);
            return;
        }
        if (header)
            b->unit = u;
        else
            v->unit = u;
        break;
    }
    case 'P': /* a part label in the body marks every voice: parts are sections of the whole tune */
        if (!header) {
            b->pending_part = value;
            for (size_t i = 0; i < b->voices.n; i++)
                mark_part((voice_state *)b->voices.data + i, value);
        }
        break;
    default:
        break;
    }
}

static bool add_title(builder *b, const char *t)
{
    const char **titles = abc_arena_alloc(b->m->arena, (b->m->n_titles + 1) * sizeof *titles);
    if (!titles)
        return false;
    if (b->m->n_titles)
        memcpy(titles, b->m->titles, b->m->n_titles * sizeof *titles);
    titles[b->m->n_titles++] = t;
    b->m->titles = titles;
    return true;
}

static void read_header(builder *b)
{
    abc_model *m = b->m;
    const abc_tune *t = b->tune;
    bool have_m = false, have_l = false;
    const abc_field *q = NULL;
    b->meter = (abc_meter){ABC_METER_NONE, 0, 0};
    for (size_t i = 0; i < b->f->n_header; i++) { /* file header defaults */
        const abc_field *fl = &b->f->header[i];
        if (fl->key == 'M' || fl->key == 'L' || fl->key == 'K') {
            apply_field(b, NULL, fl->key, fl->value, fl->line, fl->col, true);
            have_m |= fl->key == 'M';
            have_l |= fl->key == 'L';
        }
    }
    for (size_t i = 0; i < t->n_header; i++) {
        const abc_field *fl = &t->header[i];
        switch (fl->key) {
        case 'T': add_title(b, fl->value); break;
        case 'C': if (!m->composer) m->composer = fl->value; break;
        case 'O': if (!m->origin) m->origin = fl->value; break;
        case 'R': if (!m->rhythm) m->rhythm = fl->value; break;
        case 'S': if (!m->source) m->source = fl->value; break;
        case 'P': if (!m->parts) m->parts = fl->value; break;
        case 'Q': q = fl; break;
        case 'M': have_m = true; break;
        case 'L': have_l = true; break;
        default: break;
        }
        if (fl->key == 'M' || fl->key == 'L' || fl->key == 'K')
            apply_field(b, NULL, fl->key, fl->value, fl->line, fl->col, true);
    }
    (void)have_m;
    if (!have_l)
        b->unit = abc_default_unit(b->meter);
    m->meter = b->meter;
    m->unit = b->unit;
    m->key = b->key;
    if (q) {
        char err[160];
        if (!abc_parse_tempo(q->value, b->unit, &m->tempo, err, sizeof err))
            warn(b, q->line, q->col, ABC_ERROR, "tempo", "write e.g. Q:1/4=120", err);
    }
    /* header V: lines declare voices in order */
    for (size_t i = 0; i < t->n_header; i++)
        if (t->header[i].key == 'V')
            find_or_add_voice(b, t->header[i].value, t->header[i].line, t->header[i].col);
    b->cur = b->voices.n ? 0 : -1;
}

static void walk_body(builder *b)
{
    const abc_tune *t = b->tune;
    bool first_note_seen = false;
    for (size_t i = 0; i < t->n_body; i++) {
        const abc_element *e = &t->body[i];
        voice_state *v;
        switch (e->kind) {
        case ABC_EL_NOTE:
        case ABC_EL_REST:
            v = voice(b);
            if (!v)
                return;
            if (!first_note_seen && b->cur == 0) {
                /* Nottingham-style: the meter/key in force at the first note is the tune's */
                b->m->meter = v->meter;
                b->m->key = v->key;
                first_note_seen = true;
            }
            if (e->kind == ABC_EL_NOTE)
                add_note(b, v, e, (int)i);
            else
                add_rest(b, v, e, (int)i);
            break;
        case ABC_EL_CHORD_BEGIN:
            v = voice(b);
            if (!v)
                return;
            v->in_chord = true;
            v->chord_first = v->events.n;
            b->chord_id++;
            break;
        case ABC_EL_CHORD_END:
            if ((v = voice(b)))
                end_chord(b, v, e);
            break;
        case ABC_EL_GRACE_BEGIN:
            if ((v = voice(b)))
                v->in_grace = true;
            break;
        case ABC_EL_GRACE_END:
            if ((v = voice(b)))
                v->in_grace = false;
            break;
        case ABC_EL_TUPLET:
            if ((v = voice(b))) {
                v->tup_left = e->u.tuplet.r;
                v->tup_factor = abc_frac_make(e->u.tuplet.q, e->u.tuplet.p);
            }
            break;
        case ABC_EL_BROKEN:
            if ((v = voice(b)))
                apply_broken(b, v, e);
            break;
        case ABC_EL_TIE:
            if ((v = voice(b)) && v->have_group) {
                abc_event *ev = (abc_event *)v->events.data;
                for (size_t k = v->group_first; k < v->events.n; k++) {
                    if (ev[k].flags & ABC_EV_REST)
                        continue;
                    ev[k].flags |= ABC_EV_TIE;
                    const abc_note *n = &t->body[ev[k].element].u.note;
                    if (v->n_ties < 16)
                        v->ties[v->n_ties++] = (tie_pending){n->letter, n->octave, ev[k].pitch};
                }
            }
            break;
        case ABC_EL_BAR:
            if ((v = voice(b)))
                close_bar(b, v, e);
            break;
        case ABC_EL_ENDING:
            if ((v = voice(b)))
                cur_bar(v)->ending = e->u.ending.text;
            break;
        case ABC_EL_OVERLAY:
            if ((v = voice(b))) {
                if (!v->overlay) {
                    v->overlay_main_t = v->t;
                    v->overlay = true;
                }
                v->t = cur_bar(v)->start;
                v->rewound = true;
            }
            break;
        case ABC_EL_CHORD_SYMBOL:
            if ((v = voice(b))) {
                abc_chord_symbol *c = abc_vec_push(&v->chords);
                if (c) {
                    c->text = e->u.text.text;
                    c->start = v->t;
                    c->bar = (int)v->bars.n - 1;
                    c->voice = b->cur;
                    c->element = (int)i;
                    c->line = e->line;
                    c->col = e->col;
                }
            }
            break;
        case ABC_EL_FIELD:
            if (e->u.field.key == 'V') {
                find_or_add_voice(b, e->u.field.value, e->line, e->col);
            } else if (e->u.field.key == 'w') {
                if ((v = voice(b)))
                    align_lyrics(b, v, e->u.field.value);
            } else {
                /* before the first voice, fields set the defaults every voice starts from */
                v = b->cur >= 0 ? voice(b) : NULL;
                apply_field(b, v, e->u.field.key, e->u.field.value, e->line, e->col + (e->u.field.inline_ ? 1 : 0),
                            !v && e->u.field.key != 'P');
            }
            break;
        default:
            break;
        }
    }
}

/* ---------------------------------------------------------------- assembly */

static int cmp_start(const void *a, const void *b)
{
    const abc_event *x = a, *y = b;
    int c = frac_cmp(x->start, y->start);
    if (c)
        return c;
    return x->element - y->element;
}

/* The voice's arrays go to out: moved into the model's arena, or lent (keep: they stay the workspace's). */
static bool finish_voice(builder *b, voice_state *v, abc_voice *out, bool keep)
{
    abc_model *m = b->m;
    abc_bar *bar = cur_bar(v);
    bar->len = frac_sub(v->t, bar->start);
    bar->n_events = v->events.n - bar->first_event;
    if (v->bars.n > 1 && bar->n_events == 0 && bar->len.num == 0 && !bar->ending && !bar->part)
        v->bars.n--; /* the empty bar after the final bar line */
    out->id = v->id;
    out->name = v->name;
    out->properties = v->properties;
    out->n_events = v->events.n;
    out->n_bars = v->bars.n;
    abc_event *ev = v->events.data;
    bool sorted = true;
    for (size_t i = 1; v->rewound && i < v->events.n && sorted; i++)
        sorted = frac_cmp(ev[i - 1].start, ev[i].start) <= 0;
    if (!sorted) /* overlays: keep each bar's events together, ordered by time */
        for (size_t k = 0; k < v->bars.n; k++) {
            abc_bar *bk = (abc_bar *)v->bars.data + k;
            qsort(ev + bk->first_event, bk->n_events, sizeof *ev, cmp_start);
        }
    out->events = keep ? v->events.data : abc_vec_move(&v->events, m->arena);
    out->bars = keep ? v->bars.data : abc_vec_move(&v->bars, m->arena);
    if ((out->n_events && !out->events) || (out->n_bars && !out->bars))
        return false;
    abc_frac end = v->t;
    if (frac_cmp(end, m->duration) > 0)
        m->duration = end;
    return true;
}

/* Build the model of tune index into m (zeroed, arena ready) with the voice states in voices (empty). keep:
 * the events and bars stay in the voice states (a workspace); otherwise they move into m's arena and the
 * voice states' vectors are freed. False when out of memory. */
static bool build(abc_model *m, abc_vec *voices, const abc_file *f, size_t index, abc_diags *diags, bool keep)
{
    builder b = {.f = f, .tune = &f->tunes[index], .index = (int)index, .d = diags, .m = m, .cur = -1,
                 .voices = *voices};
    b.key.tonic_letter = 'C';
    b.unit = (abc_frac){1, 8};
    m->x = f->tunes[index].x;
    m->duration = (abc_frac){0, 1};
    m->duration_played = (abc_frac){0, 1};
    read_header(&b);
    walk_body(&b);
    if (!b.voices.n)
        voice(&b);
    bool ok = b.voices.n > 0;
    m->n_voices = b.voices.n;
    m->voices = abc_arena_alloc(m->arena, (b.voices.n ? b.voices.n : 1) * sizeof(abc_voice));
    ok = ok && m->voices;
    size_t n_chords = 0;
    for (size_t i = 0; ok && i < b.voices.n; i++)
        n_chords += ((voice_state *)b.voices.data)[i].chords.n;
    m->chords = abc_arena_alloc(m->arena, (n_chords ? n_chords : 1) * sizeof(abc_chord_symbol));
    ok = ok && m->chords;
    for (size_t i = 0; i < b.voices.n; i++) {
        voice_state *v = (voice_state *)b.voices.data + i;
        if (ok) {
            if (v->chords.n)
                memcpy(m->chords + m->n_chords, v->chords.data, v->chords.n * sizeof(abc_chord_symbol));
            m->n_chords += v->chords.n;
            ok = finish_voice(&b, v, &m->voices[i], keep);
        }
        if (!keep) {
            abc_vec_free(&v->events);
            abc_vec_free(&v->bars);
            abc_vec_free(&v->chords);
        }
    }
    *voices = b.voices;
    if (ok) {
        m->bars = m->voices[0].bars;
        m->n_bars = m->voices[0].n_bars;
    }
    return ok;
}

abc_model *abc_model_new(const abc_file *f, size_t index, abc_diags *diags)
{
    if (index >= f->n_tunes)
        return NULL;
    abc_model *m = malloc(sizeof *m); /* not calloc: glibc's calloc skips its fast cache */
    if (!m)
        return NULL;
    *m = (abc_model){0};
    m->arena = abc_arena_new();
    if (!m->arena) {
        free(m);
        return NULL;
    }
    abc_vec voices = {.item = sizeof(voice_state)};
    bool ok = build(m, &voices, f, index, diags, false) && abc_model_expand(m);
    abc_vec_free(&voices);
    if (!ok) {
        abc_model_free(m);
        return NULL;
    }
    return m;
}

struct abc_modeler {
    abc_model model;
    abc_vec voices; /* voice_state */
};

abc_modeler *abc_modeler_new(void)
{
    abc_modeler *w = malloc(sizeof *w);
    if (!w)
        return NULL;
    *w = (abc_modeler){.voices.item = sizeof(voice_state)};
    w->model.arena = abc_arena_new();
    if (!w->model.arena) {
        free(w);
        return NULL;
    }
    return w;
}

void abc_modeler_free(abc_modeler *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->voices.cap; i++) {
        voice_state *v = (voice_state *)w->voices.data + i;
        abc_vec_free(&v->events);
        abc_vec_free(&v->bars);
        abc_vec_free(&v->chords);
    }
    abc_vec_free(&w->voices);
    abc_arena_free(w->model.arena);
    free(w);
}

const abc_model *abc_modeler_run(abc_modeler *w, const abc_file *f, size_t index, abc_diags *diags)
{
    if (index >= f->n_tunes)
        return NULL;
    struct abc_arena *arena = w->model.arena;
    abc_arena_reset(arena);
    w->model = (abc_model){.arena = arena};
    w->voices.n = 0;
    return build(&w->model, &w->voices, f, index, diags, true) ? &w->model : NULL;
}

void abc_model_free(abc_model *m)
{
    if (!m)
        return;
    abc_arena_free(m->arena);
    free(m);
}
