/* An ABC tune model as a Standard MIDI File (the layout is described in include/melodist/midi.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/midi.h"

#define DRUM_CHANNEL 9
#define BASS_PROGRAM 32
#define CHORD_PROGRAM 24
#define BASS_VELOCITY 70
#define CHORD_VELOCITY 55

struct render {
    midi_file *mf;
    int tpq;
    char *err;
    size_t errlen;
};

static int fail(struct render *r, int rc, const char *what)
{
    if (r->err && r->errlen)
        snprintf(r->err, r->errlen, "%s: %s", what,
                 rc == MIDI_ENOMEM ? "out of memory" : "a value does not fit in a MIDI file");
    return rc;
}

static uint32_t ticks(const struct render *r, abc_frac t)
{
    int64_t v = abc_frac_to_ticks(t, r->tpq);
    return v < 0 ? 0 : v > MIDI_MAX_TICK ? MIDI_MAX_TICK : (uint32_t)v;
}

/* Channel of the k-th melodic part (voices, then bass, then chords), skipping the drum channel. */
static int channel_of(size_t k)
{
    int c = (int)(k % 15);
    return c >= DRUM_CHANNEL ? c + 1 : c;
}

/* ------------------------------------------------------------ programs from %%MIDI program */

/* "MIDI program [CHANNEL] N" -> N, or -1 when the directive is something else. */
static int program_directive(const char *text)
{
    int a, b, n = sscanf(text, "MIDI program %d %d", &a, &b);
    int program = n == 2 ? b : n == 1 ? a : -1;
    return program >= 0 && program <= 127 ? program : -1;
}

static size_t voice_index(const abc_model *m, const char *field_value)
{
    size_t len = strcspn(field_value, " \t");
    for (size_t v = 0; v < m->n_voices; v++)
        if (strlen(m->voices[v].id) == len && !strncmp(m->voices[v].id, field_value, len))
            return v;
    return 0;
}

/* programs[v] for every voice: the tune header's directive for all, then each voice's own first one. */
static void voice_programs(const abc_tune *t, const abc_model *m, int fallback, int *programs)
{
    for (size_t i = 0; i < t->n_header; i++)
        if (t->header[i].key == '%' && program_directive(t->header[i].value) >= 0)
            fallback = program_directive(t->header[i].value);
    for (size_t v = 0; v < m->n_voices; v++)
        programs[v] = -1;
    size_t voice = 0;
    for (size_t i = 0; i < t->n_body; i++) {
        const abc_element *e = &t->body[i];
        if (e->kind == ABC_EL_FIELD && e->u.field.key == 'V')
            voice = voice_index(m, e->u.field.value);
        else if (e->kind == ABC_EL_DIRECTIVE && programs[voice] < 0)
            programs[voice] = program_directive(e->u.text.text);
    }
    for (size_t v = 0; v < m->n_voices; v++)
        if (programs[v] < 0)
            programs[v] = fallback;
}

/* ------------------------------------------------------------ conductor track */

struct settings {
    abc_tempo tempo;
    abc_meter meter;
    abc_key key;
};

/* Reads a Q:, M: or K: field into s; returns its key, or 0 when it is another field or does not parse. */
static char read_setting(struct settings *s, const abc_model *m, const abc_field_ref *f)
{
    char err[128];
    abc_tempo tempo;
    abc_meter meter;
    abc_key key;
    if (f->key == 'Q' && abc_parse_tempo(f->value, m->unit, &tempo, err, sizeof err))
        s->tempo = tempo;
    else if (f->key == 'M' && abc_parse_meter(f->value, &meter, err, sizeof err))
        s->meter = meter;
    else if (f->key == 'K' && abc_parse_key(f->value, &key, err, sizeof err))
        s->key = key;
    else
        return 0;
    return f->key;
}

/* Writes the tempo ('Q'), time signature ('M') or key signature ('K') of s at `tick`. */
static int write_setting(struct render *r, uint32_t tick, const struct settings *s, char which)
{
    if (which == 'Q') {
        /* Quarter notes per minute = bpm * beat / (1/4); default 120 like abc2midi, which also truncates. */
        uint32_t usec = 500000;
        if (s->tempo.given && s->tempo.bpm > 0 && s->tempo.beat.num > 0) {
            double u = 60e6 * (double)s->tempo.beat.den / (4.0 * s->tempo.bpm * (double)s->tempo.beat.num);
            usec = u < 1 ? 1 : u > 0xFFFFFF ? 0xFFFFFF : (uint32_t)u;
        }
        return midi_tempo(r->mf, 0, tick, usec);
    }
    if (which == 'M') {
        int num = s->meter.num, den = s->meter.den;
        if (s->meter.kind == ABC_METER_NONE || num < 1 || num > 255 || den < 1 || den > 64 || (den & (den - 1)))
            return MIDI_OK; /* no MIDI time signature for free meter or a denominator not a power of two */
        int compound = den == 8 && num % 3 == 0 && num > 3;
        return midi_time_signature(r->mf, 0, tick, num, den, compound ? 36 : 96 / den);
    }
    return s->key.none ? MIDI_OK : midi_key_signature(r->mf, 0, tick, s->key.sharps, s->key.mode == ABC_MODE_MINOR);
}

static bool is_sounding(const abc_element *e) { return e->kind == ABC_EL_NOTE || e->kind == ABC_EL_REST; }

/* The tempo, meter and key in force when the music starts: the header's, overridden by Q: M: K: fields
 * written in the body before the first note (as abc2midi reads them, e.g. a Q: line after K:). */
static struct settings start_settings(const abc_tune *t, const abc_model *m)
{
    struct settings s = {m->tempo, m->meter, m->key};
    for (size_t i = 0; i < t->n_body && !is_sounding(&t->body[i]); i++)
        if (t->body[i].kind == ABC_EL_FIELD)
            read_setting(&s, m, &t->body[i].u.field);
    return s;
}

/* Fields changing the settings after the music has started, each tied to the note that follows it in the
 * same voice, and written at that note's played times (so again at every repeat). Q: counts in any voice
 * (the tempo is the whole tune's), M: and K: in the first voice only (the conductor track has one meter
 * and one key). */
struct changes {
    size_t *field; /* body indices of the fields, in order */
    size_t *note;  /* body index of the note each field is tied to */
    size_t n, tied;
    size_t *first; /* per body index of a note: its first field, or SIZE_MAX */
};

static void tie_changes(struct changes *c, size_t note)
{
    if (c->tied < c->n)
        c->first[note] = c->tied;
    for (; c->tied < c->n; c->tied++)
        c->note[c->tied] = note;
}

static int emit_changes(struct render *r, const abc_tune *t, const abc_model *m, const struct changes *c,
                        const abc_event *e, struct settings *s)
{
    size_t note = (size_t)e->element;
    int rc = MIDI_OK;
    for (size_t k = note < t->n_body ? c->first[note] : SIZE_MAX; k < c->tied && c->note[k] == note && !rc; k++) {
        char which = read_setting(s, m, &t->body[c->field[k]].u.field);
        if (which)
            rc = write_setting(r, ticks(r, e->start), s, which);
    }
    return rc;
}

static int timed_changes(struct render *r, const abc_tune *t, const abc_model *m, struct settings s)
{
    size_t n = t->n_body ? t->n_body : 1;
    struct changes tempo = {malloc(n * sizeof(size_t)), malloc(n * sizeof(size_t)), 0, 0, malloc(n * sizeof(size_t))};
    struct changes other = {malloc(n * sizeof(size_t)), malloc(n * sizeof(size_t)), 0, 0, malloc(n * sizeof(size_t))};
    int rc = tempo.field && tempo.note && tempo.first && other.field && other.note && other.first ? MIDI_OK : MIDI_ENOMEM;
    size_t voice = 0;
    bool started = false;
    for (size_t i = 0; i < t->n_body && !rc; i++) {
        const abc_element *e = &t->body[i];
        tempo.first[i] = other.first[i] = SIZE_MAX;
        if (e->kind == ABC_EL_FIELD && e->u.field.key == 'V') {
            voice = voice_index(m, e->u.field.value);
        } else if (is_sounding(e)) {
            tie_changes(&tempo, i);
            if (voice == 0)
                tie_changes(&other, i);
            started = true;
        } else if (started && e->kind == ABC_EL_FIELD) {
            if (e->u.field.key == 'Q')
                tempo.field[tempo.n++] = i;
            else if (voice == 0 && (e->u.field.key == 'M' || e->u.field.key == 'K'))
                other.field[other.n++] = i;
        }
    }
    for (size_t v = 0; v < m->n_voices && !rc; v++)
        for (size_t i = 0; i < m->voices[v].n_played && !rc; i++) {
            const abc_event *e = &m->voices[v].played[i];
            rc = emit_changes(r, t, m, &tempo, e, &s);
            if (!rc && v == 0)
                rc = emit_changes(r, t, m, &other, e, &s);
        }
    free(tempo.field);
    free(tempo.note);
    free(tempo.first);
    free(other.field);
    free(other.note);
    free(other.first);
    return rc;
}

static int conductor(struct render *r, const abc_tune *t, const abc_model *m)
{
    int rc = midi_add_track(r->mf, m->n_titles ? m->titles[0] : NULL);
    if (rc < 0)
        return rc;
    struct settings s = start_settings(t, m);
    rc = write_setting(r, 0, &s, 'Q');
    if (!rc)
        rc = write_setting(r, 0, &s, 'M');
    if (!rc)
        rc = write_setting(r, 0, &s, 'K');
    return rc ? rc : timed_changes(r, t, m, s);
}

/* ------------------------------------------------------------ voices */

struct note {
    abc_frac start, end;
    int pitch;
};

struct note_list {
    struct note *items;
    size_t n, cap;
    size_t open_tie[128]; /* per pitch, the note whose tie waits for its continuation, or NO_TIE */
};

#define NO_TIE SIZE_MAX

static int push_note(struct note_list *l, abc_frac start, abc_frac end, int pitch, bool tie)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        struct note *p = realloc(l->items, cap * sizeof *p);
        if (!p)
            return MIDI_ENOMEM;
        l->items = p;
        l->cap = cap;
    }
    l->open_tie[pitch] = tie ? l->n : NO_TIE;
    l->items[l->n++] = (struct note){start, end, pitch};
    return MIDI_OK;
}

/* Joins a tied continuation to the open note of its pitch when that note ends where it starts. */
static bool continue_tie(struct note_list *l, const abc_event *e)
{
    size_t i = l->open_tie[e->pitch];
    if (i == NO_TIE || !abc_frac_eq(l->items[i].end, e->start))
        return false;
    l->items[i].end = abc_frac_add(e->start, e->dur);
    if (!(e->flags & ABC_EV_TIE))
        l->open_tie[e->pitch] = NO_TIE;
    return true;
}

/* Grace notes of one group share a time slot when they belong to the same chord. */
static bool new_slot(const abc_event *ev, size_t k, size_t first)
{
    return k == first || ev[k].chord < 0 || ev[k].chord != ev[k - 1].chord;
}

/* The sounding notes of a voice's played events: ties joined, graces given time, rests dropped. */
static int voice_notes(const abc_voice *v, abc_frac unit, struct note_list *out)
{
    const abc_event *ev = v->played;
    abc_frac delay_at = abc_frac_make(-1, 1), delay = abc_frac_make(0, 1);
    out->n = 0;
    for (int p = 0; p < 128; p++)
        out->open_tie[p] = NO_TIE;
    for (size_t i = 0; i < v->n_played;) {
        const abc_event *e = &ev[i];
        if (e->flags & ABC_EV_GRACE) {
            /* Like abc2midi: each grace lasts a quarter of the unit length L, taken from the start of the
             * note that follows (at most half of it). */
            size_t j = i, slots = 0;
            for (; j < v->n_played && (ev[j].flags & ABC_EV_GRACE) && abc_frac_eq(ev[j].start, e->start); j++)
                slots += new_slot(ev, j, i);
            if (j == v->n_played || !abc_frac_eq(ev[j].start, e->start) || ev[j].dur.num <= 0) {
                i = j;
                continue;
            }
            abc_frac each = abc_frac_mul(unit, abc_frac_make(1, 4));
            delay = abc_frac_mul(each, abc_frac_make((int64_t)slots, 1));
            abc_frac half = abc_frac_mul(ev[j].dur, abc_frac_make(1, 2));
            if (abc_frac_cmp(delay, half) > 0) {
                delay = half;
                each = abc_frac_div(delay, abc_frac_make((int64_t)slots, 1));
            }
            delay_at = e->start;
            abc_frac t = e->start;
            for (size_t k = i; k < j; k++) {
                if (k > i && new_slot(ev, k, i))
                    t = abc_frac_add(t, each);
                if (ev[k].pitch >= 0 && ev[k].pitch <= 127 && push_note(out, t, abc_frac_add(t, each), ev[k].pitch, false))
                    return MIDI_ENOMEM;
            }
            i = j;
            continue;
        }
        i++;
        if ((e->flags & ABC_EV_REST) || e->pitch < 0 || e->pitch > 127)
            continue;
        if ((e->flags & ABC_EV_TIED) && continue_tie(out, e))
            continue;
        abc_frac start = e->start, end = abc_frac_add(e->start, e->dur);
        if (abc_frac_eq(start, delay_at))
            start = abc_frac_add(start, delay);
        if (push_note(out, start, end, e->pitch, (e->flags & ABC_EV_TIE) != 0))
            return MIDI_ENOMEM;
    }
    return MIDI_OK;
}

static int emit_note(struct render *r, int track, int channel, abc_frac start, abc_frac end, int pitch, int velocity)
{
    uint32_t on = ticks(r, start), off = ticks(r, end);
    return midi_note(r->mf, track, on, off > on ? off - on : 1, channel, pitch, velocity);
}

static int voice_tracks(struct render *r, const abc_tune *t, const abc_model *m, const struct midi_options *o)
{
    int *programs = malloc((m->n_voices ? m->n_voices : 1) * sizeof *programs);
    struct note_list notes = {0};
    if (!programs)
        return MIDI_ENOMEM;
    voice_programs(t, m, o->program, programs);
    int rc = MIDI_OK;
    for (size_t v = 0; v < m->n_voices && !rc; v++) {
        const abc_voice *voice = &m->voices[v];
        const char *name = voice->name ? voice->name
                         : m->n_voices == 1 && m->n_titles ? m->titles[0]
                                                            : voice->id;
        int track = midi_add_track(r->mf, name);
        int channel = channel_of(v);
        rc = track < 0 ? track : midi_program(r->mf, track, 0, channel, programs[v]);
        if (!rc)
            rc = voice_notes(voice, m->unit, &notes);
        for (size_t i = 0; i < notes.n && !rc; i++)
            rc = emit_note(r, track, channel, notes.items[i].start, notes.items[i].end, notes.items[i].pitch,
                           o->velocity);
    }
    free(notes.items);
    free(programs);
    return rc;
}

/* ------------------------------------------------------------ chord accompaniment */

/* The accompaniment's beat: the dotted quarter in compound meters, else 1/den (a quarter for free meter
 * and for denominators beyond 16, which would mean a hit per few ticks). */
static abc_frac beat_of(abc_meter m)
{
    if (m.kind == ABC_METER_NONE || m.den <= 0 || m.den > 16)
        return abc_frac_make(1, 4);
    if (m.den == 8 && m.num % 3 == 0 && m.num > 3)
        return abc_frac_make(3, 8);
    return abc_frac_make(1, m.den);
}

struct accomp {
    struct render *r;
    int track, bass_channel, chord_channel;
};

/* One hit from `start` to `end` of the chord `c` (NULL: silence); with the bass note when `bass`. */
static int hit(struct accomp *a, const struct midi_chord *c, abc_frac start, abc_frac end, bool bass)
{
    if (!c || abc_frac_cmp(end, start) <= 0)
        return MIDI_OK;
    int rc = MIDI_OK;
    if (bass)
        rc = emit_note(a->r, a->track, a->bass_channel, start, end, 36 + c->bass, BASS_VELOCITY);
    for (int i = 0; i < c->n && !rc; i++)
        rc = emit_note(a->r, a->track, a->chord_channel, start, end, 48 + (c->root + c->intervals[i]) % 12,
                       CHORD_VELOCITY);
    return rc;
}

/* The chord sounding at time t: index of the last played chord symbol starting at or before t, or -1. */
static long chord_at(const abc_model *m, abc_frac t, long from)
{
    long k = from;
    while (k + 1 < (long)m->n_chords_played && abc_frac_cmp(m->chords_played[k + 1].start, t) <= 0)
        k++;
    return k;
}

/* The end of the music: the last played event's end over all voices. */
static abc_frac played_end(const abc_model *m)
{
    abc_frac end = abc_frac_make(0, 1);
    for (size_t v = 0; v < m->n_voices; v++)
        for (size_t i = 0; i < m->voices[v].n_played; i++) {
            abc_frac e = abc_frac_add(m->voices[v].played[i].start, m->voices[v].played[i].dur);
            if (abc_frac_cmp(e, end) > 0)
                end = e;
        }
    return end;
}

static int accompaniment(struct render *r, const abc_model *m, abc_meter meter)
{
    if (!m->n_chords_played)
        return MIDI_OK;
    struct accomp a = {r, midi_add_track(r->mf, "Chords"), channel_of(m->n_voices), channel_of(m->n_voices + 1)};
    if (a.track < 0)
        return a.track;
    int rc = midi_program(r->mf, a.track, 0, a.bass_channel, BASS_PROGRAM);
    if (!rc)
        rc = midi_program(r->mf, a.track, 0, a.chord_channel, CHORD_PROGRAM);
    struct midi_chord *chords = malloc(m->n_chords_played * sizeof *chords);
    bool *valid = malloc(m->n_chords_played * sizeof *valid);
    if (!chords || !valid)
        rc = MIDI_ENOMEM;
    for (size_t i = 0; !rc && i < m->n_chords_played; i++)
        valid[i] = midi_chord_parse(m->chords_played[i].text, &chords[i]);

    /* Walk the played bars; in each, the hits are the beats and the chord changes. */
    abc_frac beat = beat_of(meter), bar_start = abc_frac_make(0, 1), music_end = played_end(m);
    long current = -1, next_change = 0;
    for (size_t b = 0; !rc && b < m->n_play; b++) {
        abc_frac bar_end = abc_frac_add(bar_start, m->bars[m->play_order[b]].len);
        if (abc_frac_cmp(bar_end, music_end) > 0)
            bar_end = music_end;
        abc_frac t = bar_start, next_beat = abc_frac_add(bar_start, beat);
        bool first = true;
        while (!rc && abc_frac_cmp(t, bar_end) < 0) {
            long sounding = chord_at(m, t, current);
            bool change = sounding != current;
            current = sounding;
            while (next_change < (long)m->n_chords_played && abc_frac_cmp(m->chords_played[next_change].start, t) <= 0)
                next_change++;
            abc_frac end = next_beat;
            if (next_change < (long)m->n_chords_played && abc_frac_cmp(m->chords_played[next_change].start, end) < 0)
                end = m->chords_played[next_change].start;
            if (abc_frac_cmp(end, bar_end) > 0)
                end = bar_end;
            const struct midi_chord *c = current >= 0 && valid[current] ? &chords[current] : NULL;
            rc = hit(&a, c, t, end, first || change);
            if (abc_frac_eq(end, next_beat))
                next_beat = abc_frac_add(next_beat, beat);
            t = end;
            first = false;
        }
        bar_start = bar_end;
    }
    free(chords);
    free(valid);
    return rc;
}

int midi_from_model(const abc_file *f, size_t index, const abc_model *m, const struct midi_options *opts,
                    midi_file **out, char *err, size_t errlen)
{
    struct midi_options o = opts ? *opts : (struct midi_options){0};
    if (!o.ticks_per_quarter)
        o.ticks_per_quarter = MIDI_DEFAULT_TICKS_PER_QUARTER;
    if (!o.velocity)
        o.velocity = 80;
    struct render r = {midi_file_new(o.ticks_per_quarter), o.ticks_per_quarter, err, errlen};
    if (index >= f->n_tunes || o.program < 0 || o.program > 127 || o.velocity < 1 || o.velocity > 127 || !r.mf) {
        midi_file_free(r.mf);
        if (err && errlen)
            snprintf(err, errlen, "invalid MIDI options (ticks per quarter 1..32767, program 0..127, velocity 1..127)");
        return MIDI_EINVAL;
    }
    int rc = conductor(&r, &f->tunes[index], m);
    if (!rc)
        rc = voice_tracks(&r, &f->tunes[index], m, &o);
    if (!rc && o.chords)
        rc = accompaniment(&r, m, start_settings(&f->tunes[index], m).meter);
    if (rc) {
        midi_file_free(r.mf);
        return fail(&r, rc, "cannot build the MIDI file");
    }
    *out = r.mf;
    return MIDI_OK;
}
