/* Transposition of ABC tunes by semitones, at the syntax level.
 *
 * The transposer rewrites a parsed tune in place (notes, grace notes, chords, header and inline K: fields,
 * chord symbols) and the caller re-prints it with abc_fmt_tune(). Method:
 *   - each key (header K:, inline [K:], body K: lines) gets a new tonic spelled with the fewest sharps/flats
 *     (a tie, F# against Gb, goes the way of the transposition); the mode, explicit key accidentals
 *     (moved with the tonic) and every other K: property (clef=, transpose=, ...) are kept;
 *   - notes move by the interval between the old and new tonic letters, so a note that was diatonic stays
 *     without an accidental, and an explicit accidental stays explicit with the new spelling;
 *   - the bar-scoped accidental carry of the new text is simulated note by note: wherever it would not give
 *     the transposed pitch, an explicit accidental is written (and a note whose new accidental would need
 *     more than a double sharp/flat is respelled on the neighbouring letter);
 *   - K:none (or no K:) transposes pitches only: notes are spelled as in the major key of C+k and get
 *     explicit accidentals wherever needed;
 *   - chord symbols: root and bass "/X" move like notes; double accidentals are respelled away.
 * Sounding pitch of every note changes by exactly k semitones; durations and everything else stay. */
#ifndef MELODIST_ABC_TRANSPOSE_H
#define MELODIST_ABC_TRANSPOSE_H

#include <stddef.h>

#include "melodist/abc.h"

/* Transpose tune `index` of f by `semitones` (any value; octaves move the notes). Returns 0 on success,
 * -1 with a message in err when out of memory or a pitch leaves the written range. */
int abc_transpose_tune(abc_file *f, size_t index, int semitones, char *err, size_t errsz);

/* The semitone shift (-6..+5, the nearest) that takes the tune's declared key to the tonic of `key`
 * (a K: value such as "Bb", "F#m", "Ddor"; only the tonic counts). Returns 0, or -1 with a message
 * (unreadable key, or the tune has no tonic: K:none). */
int abc_transpose_interval_to(const abc_tune *t, const char *key, int *semitones, char *err, size_t errsz);

/* Transpose the text of one chord symbol ("Am7", "D/f+", "Bb/D") by `semitones`, spelling the root with
 * `dsteps` letter steps (the interval's diatonic size; pass the value abc_interval_steps() gives).
 * Writes to out (NUL-terminated, truncated to outsz). Text that does not start with a chord root is copied. */
void abc_transpose_chord_symbol(const char *text, int semitones, int dsteps, char *out, size_t outsz);

/* Diatonic letter steps for a plain transposition by `semitones` from C (C+k spelled with the fewest
 * accidentals: +1 -> Db = 1 step, +6 -> F# = 3 steps, -6 -> Gb = -3 steps). */
int abc_interval_steps(int semitones);

#endif
