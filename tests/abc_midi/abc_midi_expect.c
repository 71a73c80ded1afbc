/* Writes the MIDI file of one tune with midi_from_model() and prints, from the tune model alone, what that
 * file must hold, for mftext_compare.py (which reads the file back with mftext):
 *   - conductor: title, tempo (Q:, default 120 quarters/min), time and key signature
 *   - one track per voice: name, program (from --programs, what the tune's %%MIDI program lines ask for),
 *     every played note: repeats expanded, ties joined, rests silent; notes around grace notes only
 *     loosely (a grace-note group and the note it delays must sound within that note's written time)
 *   - with --chords: the accompaniment's spans, one per played chord symbol (its notes must be tones of
 *     that chord, its bass note at the span's start)
 * usage: abc_midi_expect FILE.abc X OUT.mid [--chords] [--programs P1,P2,...] > expected.txt */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/midi.h"
#include "testutil.h"

#define TPQ 480

static long tick(abc_frac t) { return (long)abc_frac_to_ticks(t, TPQ); }

/* Channels are handed out in order, skipping the General MIDI drum channel 9. */
static int channel(size_t k) { return k < 9 ? (int)k : (int)k + 1; }

struct open_note {
    int pitch;
    long on, off;
    bool tie, loose;
};

/* Prints a voice's notes: a tied note waits in `held` until its last continuation has arrived. */
static void voice_expect(const abc_voice *v, int track, int chan)
{
    struct open_note *held = calloc(v->n_played + 1, sizeof *held);
    size_t n_held = 0;
    for (size_t i = 0; i < v->n_played; i++) {
        const abc_event *e = &v->played[i];
        long on = tick(e->start), off = tick(abc_frac_add(e->start, e->dur));
        if (e->flags & ABC_EV_GRACE) {
            /* Sounds somewhere within the following note's time. */
            const abc_event *next = &v->played[i];
            while (next < v->played + v->n_played && (next->flags & ABC_EV_GRACE))
                next++;
            if (next < v->played + v->n_played && e->pitch >= 0 && abc_frac_eq(next->start, e->start) &&
                next->dur.num > 0)
                printf("loose %d %d %d %ld %ld\n", track, chan, e->pitch, on,
                       tick(abc_frac_add(next->start, next->dur)));
            continue;
        }
        if ((e->flags & ABC_EV_REST) || e->pitch < 0 || e->pitch > 127)
            continue;
        bool after_grace = i > 0 && (v->played[i - 1].flags & ABC_EV_GRACE);
        for (size_t k = i; k-- > 0 && !after_grace && abc_frac_eq(v->played[k].start, e->start);)
            after_grace = (v->played[k].flags & ABC_EV_GRACE) != 0;
        struct open_note *joined = NULL;
        if (e->flags & ABC_EV_TIED)
            for (size_t k = 0; k < n_held && !joined; k++)
                if (held[k].tie && held[k].pitch == e->pitch && held[k].off == on)
                    joined = &held[k];
        if (joined) {
            joined->off = off;
            joined->tie = (e->flags & ABC_EV_TIE) != 0;
        } else {
            held[n_held++] = (struct open_note){e->pitch, on, off, (e->flags & ABC_EV_TIE) != 0, after_grace};
        }
    }
    for (size_t k = 0; k < n_held; k++)
        printf("%s %d %d %d %ld %ld\n", held[k].loose ? "loose" : "note", track, chan, held[k].pitch, held[k].on,
               held[k].off);
    free(held);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: abc_midi_expect FILE.abc X OUT.mid [--chords] [--programs P1,P2,...]\n");
        return 2;
    }
    struct midi_options opts = {.ticks_per_quarter = TPQ};
    const char *programs = "";
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--chords"))
            opts.chords = true;
        else if (!strcmp(argv[i], "--programs") && i + 1 < argc)
            programs = argv[++i];
    }
    size_t len;
    char *text = tu_read_file(argv[1], &len);
    abc_file *f = text ? abc_parse(text, len) : NULL;
    int index = f ? abc_file_find_tune(f, atoi(argv[2])) : -1;
    if (index < 0) {
        fprintf(stderr, "abc_midi_expect: no tune X:%s in %s\n", argv[2], argv[1]);
        return 1;
    }
    abc_model *m = abc_model_new(f, (size_t)index, NULL);
    midi_file *mf;
    char err[256];
    if (!m || midi_from_model(f, (size_t)index, m, &opts, &mf, err, sizeof err) ||
        midi_file_write(mf, argv[3], err, sizeof err)) {
        fprintf(stderr, "abc_midi_expect: %s\n", err);
        return 1;
    }
    midi_file_free(mf);

    bool chords = opts.chords && m->n_chords_played;
    printf("header %zu %d\n", 1 + m->n_voices + chords, TPQ);
    if (m->n_titles)
        printf("name 0 %s\n", m->titles[0]);
    long usec = 500000;
    if (m->tempo.given && m->tempo.bpm)
        usec = (long)(60e6 / (4.0 * m->tempo.bpm * abc_frac_to_double(m->tempo.beat)));
    printf("tempo 0 0 %ld\n", usec);
    if (m->meter.kind != ABC_METER_NONE)
        printf("timesig 0 0 %d %d\n", m->meter.num, m->meter.den);
    if (!m->key.none)
        printf("keysig 0 0 %d %d\n", m->key.sharps, m->key.mode == ABC_MODE_MINOR);
    const char *p = programs;
    for (size_t v = 0; v < m->n_voices; v++) {
        int track = (int)v + 1;
        const abc_voice *voice = &m->voices[v];
        const char *name = voice->name ? voice->name : m->n_voices == 1 && m->n_titles ? m->titles[0] : voice->id;
        if (*name)
            printf("name %d %s\n", track, name);
        printf("program %d 0 %d %d\n", track, channel(v), atoi(p));
        p += strcspn(p, ",");
        p += *p == ',';
        voice_expect(voice, track, channel(v));
    }
    if (chords) {
        abc_frac music_end = abc_frac_make(0, 1);
        for (size_t v = 0; v < m->n_voices; v++)
            for (size_t i = 0; i < m->voices[v].n_played; i++) {
                const abc_event *e = &m->voices[v].played[i];
                if (abc_frac_cmp(abc_frac_add(e->start, e->dur), music_end) > 0)
                    music_end = abc_frac_add(e->start, e->dur);
            }
        int track = (int)m->n_voices + 1;
        printf("name %d Chords\nprogram %d 0 %d 32\nprogram %d 0 %d 24\n", track, track, channel(m->n_voices),
               track, channel(m->n_voices + 1));
        for (size_t c = 0; c < m->n_chords_played; c++) {
            struct midi_chord ch;
            abc_frac end = c + 1 < m->n_chords_played ? m->chords_played[c + 1].start : music_end;
            if (!midi_chord_parse(m->chords_played[c].text, &ch) || abc_frac_cmp(end, m->chords_played[c].start) <= 0)
                continue;
            int mask = 1 << ch.bass;
            for (int i = 0; i < ch.n; i++)
                mask |= 1 << (ch.root + ch.intervals[i]) % 12;
            printf("chordspan %d %ld %ld %d %d\n", track, tick(m->chords_played[c].start), tick(end), mask, ch.bass);
        }
    }
    abc_model_free(m);
    abc_file_free(f);
    free(text);
    return 0;
}
