/* Standard MIDI File (SMF) writing: a type-1 file builder, and the rendering of an ABC tune into it.
 *
 * A tune becomes (midi_from_model):
 *   track 0        conductor: title, tempo from Q: (default 120 quarter notes per minute, as abc2midi),
 *                  time signature from M:, key signature from K:, as they stand when the music starts
 *                  (the header, then Q: M: K: lines before the first note); later Q: fields (any voice)
 *                  and M: K: fields (first voice) at the played time of the note after them, again at
 *                  every repeat
 *   track 1..n     one per voice (name= or the voice id; the title for a single voice), channel 0, 1, ...
 *                  skipping the drum channel 9; program from `%%MIDI program [CHANNEL] N` in the tune header
 *                  or in that voice's music, else options.program. The expanded (played) events: repeats,
 *                  endings and parts unfolded, tied notes joined into one, rests silent. Each grace note
 *                  lasts a quarter of the unit length L, on the beat, taken from the following note (at
 *                  most half of it), as abc2midi plays them.
 *   track n+1      with options.chords, the accompaniment from the chord symbols ("Am7", "D/f#", "G7b9", and
 *                  Nottingham's "Cd" diminished / "Ca" augmented). A hit on every beat of every bar and at
 *                  every chord change (beat: the dotted quarter in 6/8 9/8 12/8, a quarter for M:none, else
 *                  1/den of M:); each hit sounds the chord's tones (up to four, within C3..B3) until the next
 *                  hit, plus a bass note (the root, or the slash bass, within C2..B2) on the first beat of a
 *                  bar and at chord changes. Bass on one channel (program 32, acoustic bass), chord tones on
 *                  the next (program 24, nylon guitar). Symbols naming no chord ("N.C.") are silent.
 *
 * The builder collects timed events per track in any order; midi_file_bytes() sorts each track by time
 * (at one tick: meta events, then program changes, then note-offs, then note-ons, so a note repeated
 * without a gap is re-struck) and encodes the file. Every track ends at the same tick, the end of the
 * latest event, so a player plays all of them to the end.
 *
 * Errors are returned as MIDI_E* codes with a message in the caller's buffer; nothing is printed. */
#ifndef MELODIST_MIDI_H
#define MELODIST_MIDI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "melodist/abc.h"

enum {
    MIDI_OK = 0,
    MIDI_ENOMEM = -1,   /* out of memory */
    MIDI_EINVAL = -2,   /* argument out of range (track, channel, pitch, tick, tempo...) */
    MIDI_EIO = -3,      /* the output file could not be written */
    MIDI_ETUNE = -4,    /* the tune cannot be rendered (no such tune, parse failure) */
};

#define MIDI_DEFAULT_TICKS_PER_QUARTER 480
#define MIDI_MAX_TICK 0x0FFFFFFFu /* the largest delta a 4-byte variable-length quantity holds */

typedef struct midi_file midi_file;

/* A new empty file with the given resolution (1..32767 ticks per quarter note); NULL if out of memory
 * or the resolution is out of range. */
midi_file *midi_file_new(int ticks_per_quarter);
void midi_file_free(midi_file *mf);
int midi_file_ticks_per_quarter(const midi_file *mf);

/* Appends a track named `name` (NULL: unnamed). Returns its index (0 = the first), or MIDI_ENOMEM. */
int midi_add_track(midi_file *mf, const char *name);
int midi_track_count(const midi_file *mf);

/* Meta events (by convention on track 0, the conductor track). */
int midi_tempo(midi_file *mf, int track, uint32_t tick, uint32_t usec_per_quarter);
/* Time signature num/den (den a power of two, 1..64); clocks per metronome click as MIDI defines them. */
int midi_time_signature(midi_file *mf, int track, uint32_t tick, int num, int den, int clocks_per_click);
/* Key signature: sharps -7..7 (negative: flats), minor 0 or 1. */
int midi_key_signature(midi_file *mf, int track, uint32_t tick, int sharps, int minor);
/* A text meta event of the given type (1 text, 3 track name, 5 lyric, 6 marker...). */
int midi_text(midi_file *mf, int track, uint32_t tick, int type, const char *text);

/* Channel events; channel 0..15, program/pitch/velocity 0..127. */
int midi_program(midi_file *mf, int track, uint32_t tick, int channel, int program);
/* A note: note-on at `start`, note-off at start + duration (duration >= 1). */
int midi_note(midi_file *mf, int track, uint32_t start, uint32_t duration, int channel, int pitch, int velocity);

/* The encoded file in a new malloc'd buffer (caller frees). */
int midi_file_bytes(const midi_file *mf, unsigned char **out, size_t *len);
/* Writes the encoded file to `path` atomically (temporary file in the same directory + rename). */
int midi_file_write(const midi_file *mf, const char *path, char *err, size_t errlen);

/* ---------------------------------------------------------------- ABC tune to MIDI (midi.c, midi_chords.c) */

struct midi_options {
    int ticks_per_quarter; /* 0: MIDI_DEFAULT_TICKS_PER_QUARTER */
    bool chords;           /* add the chord-symbol accompaniment track */
    int program;           /* General MIDI program (0..127) for voices without %%MIDI program; 0: piano */
    int velocity;          /* melody note velocity 1..127; 0: 80 */
};

/* Renders tune `index` of `f` (model `m`, built from it) into a new MIDI file. */
int midi_from_model(const abc_file *f, size_t index, const abc_model *m, const struct midi_options *opts,
                    midi_file **out, char *err, size_t errlen);

/* A chord symbol read as pitch classes: root and bass 0..11 (C = 0), intervals above the root in semitones.
 * Returns false when the text names no chord (no root letter A-G, e.g. "N.C."). */
struct midi_chord {
    int root, bass;
    int n;            /* number of intervals (3 or 4) */
    int intervals[4]; /* the first is 0 */
};
bool midi_chord_parse(const char *symbol, struct midi_chord *out);

#endif
