/* Analysis of ABC tunes: bar counts, meter and keys (declared and detected), range, duration, chord
 * progression per bar, note histogram, section form, and melody search.
 *
 * Key detection (keydetect.c):
 *   - Krumhansl-Schmuckler: the duration-weighted pitch-class profile is correlated (Pearson) with the
 *     Krumhansl-Kessler major and minor probe-tone profiles rotated to all 12 tonics; the best of 24 wins.
 *   - Key (Krumhansl-Schmuckler with the final): the same, with 0.2 added to the correlation of the keys whose
 *     tonic is the final note. On the shared corpus this raises the agreement of tonic and major/minor with
 *     the declared keys from 79.5% to 82.9% (Nottingham), 60.3% to 69.5% (Essen Europe), 49.3% to 55.2%
 *     (Balkan; modal tunes, where the church mode below fits better).
 *   - Church mode: the diatonic collection (one of 12 transpositions of the major scale) that holds the most
 *     duration-weight wins; collections within 1% of the best tie. The tonic is the final note when it belongs
 *     to a winning collection (the modal rule: a mode is its final over its scale), else the Krumhansl-Schmuckler
 *     tonic. Ties between collections holding the final go to the commoner mode: major, minor, mixolydian,
 *     dorian, lydian, phrygian, locrian.
 *   - Pentatonic: when >= 97% of the weight lies on an anhemitonic pentatonic set (C D E G A and
 *     transpositions), the tune is also reported as pentatonic with its mode named after the final's degree
 *     (gong, shang, jue, zhi, yu), and its church mode is that of the final in the major scale on the gong
 *     (the diatonic collections holding a pentatonic scale tie on fit, so the fit alone cannot choose).
 *
 * Form (form.c): the played bars are cut into sections where playback jumps (a repeat), where a repeat starts
 * or ends, at a double bar and at a P: part label; a section shorter than one bar (a pickup) joins the next.
 * A tune with no such boundary that is 16, 24, ... bars long is cut into 8-bar phrases instead (written-out
 * repeats). Each section is compared bar by bar (notes with their onsets in the bar; alignments shifted by
 * one bar tried too) with the first section of every label so far; it takes the label it matches in at
 * least 60% of its bars, else the next new letter.
 *
 * Rhythm type (rhythm.c): the dance rhythm the meter and the note pattern fit, by the conventions of the
 * British and Irish dance repertoire: 6/8 jig, 9/8 slip jig, 12/8 slide, 3/4 waltz, 2/4 polka; in 4/4 and 2/2,
 * of the quarter beats of full bars that the first voice splits into two notes, a strathspey when at least 15%
 * are short-long (Scotch snaps) and half are uneven, a hornpipe when half are long-short (dotted), else a reel.
 * Other meters name none. It cannot tell a song from a dance, a polka from a march or a waltz from a mazurka,
 * nor a hornpipe written in even notes (the Nottingham habit) from a reel. On the Nottingham collection's files
 * it names 810 of the 811 jigs, slip jigs, waltzes and 4/4 or 2/2 reels as their file does, and calls 64 of the
 * 65 hornpipes reels (tests/abc_analysis/oracle_rhythm.py). Balkan dances in 2/4, 9/8 or 4/4 are none of these.
 *
 * Melody search (search.c): the melody of a voice is its written notes in order (ties merged, grace notes and
 * rests skipped, the top note of a chord); a phrase matches where the sequence of pitch intervals is the same
 * (transposition-invariant), and with rhythm also the ratios of the durations (tempo-invariant). */
#ifndef MELODIST_ABC_ANALYSIS_H
#define MELODIST_ABC_ANALYSIS_H

#include <stdbool.h>
#include <stddef.h>

#include "melodist/abc.h"

/* ---------------------------------------------------------------- key detection on a pitch-class profile */

typedef struct abc_key_estimate {
    int tonic_pc;            /* 0..11, C = 0 */
    abc_mode mode;
    double score;            /* correlation (Krumhansl-Schmuckler) or in-scale weight fraction (modes) */
    bool pentatonic;         /* abc_detect_mode only */
    const char *penta_mode;  /* "gong" "shang" "jue" "zhi" "yu" when pentatonic, else NULL */
} abc_key_estimate;

/* Best major/minor key for a profile (weights per pitch class, C = 0). false when the profile is empty. */
bool abc_detect_key_ks(const double profile[12], abc_key_estimate *out);
/* The same, favouring keys whose tonic is final_pc (the last note's pitch class; -1: unknown). */
bool abc_detect_key(const double profile[12], int final_pc, abc_key_estimate *out);
/* Best church mode for a profile and the pitch class of the final note (-1 when unknown). */
bool abc_detect_mode(const double profile[12], int final_pc, abc_key_estimate *out);
/* Key name with the spelling of fewest accidentals: "G", "F#m", "Bbdor", "Ephr". */
void abc_key_name(int tonic_pc, abc_mode mode, char *buf, size_t size);
/* Short mode suffix as in K: ("" major, "m" minor, "mix", "dor", "phr", "lyd", "loc"). */
const char *abc_mode_suffix(abc_mode mode);

/* ---------------------------------------------------------------- chord symbols */

/* Normalised spelling of a chord symbol: root upper case with # or b, the Nottingham quirks read
 * ("Cd" -> "Cdim", "Ca7" -> "Caug7", bass "/f+" -> "/F#", "/bb" -> "/Bb"), optional-chord parentheses
 * dropped ("(E7)" -> "E7"). Text that is not a chord is copied. */
void abc_chord_normalize(const char *text, char *buf, size_t size);

/* ---------------------------------------------------------------- whole-tune analysis */

typedef struct abc_section {
    char label;              /* 'A', 'B', ... */
    int first_bar;           /* written bar number where it starts */
    int bars;                /* length in bars (duration / bar length, rounded; bar count in free meter) */
} abc_section;

typedef struct abc_bar_chords {
    int number;              /* written bar number (pickup = 0) */
    char **chords;           /* normalised chord symbols of the bar, in order */
    char **raw;              /* as written */
    size_t n;
} abc_bar_chords;

typedef struct abc_analysis {
    size_t bars_written;     /* written bars that hold music */
    size_t bars_played;      /* bars in playback order (repeats, endings and parts expanded) */
    size_t n_voices;
    abc_meter meter;         /* meter in force at the first note (M: after K: counts: the Nottingham habit) */
    const char *rhythm_type; /* the dance rhythm of meter and notes (static: "jig", "reel", ...), NULL if none */
    abc_key declared;        /* the first K: of the header */
    bool key_declared;       /* that K: is readable and has a tonic */
    bool keys_detected;      /* the tune has notes: key, ks and modal below are meaningful */
    abc_key_estimate key;    /* detected major/minor key: Krumhansl-Schmuckler with the final */
    abc_key_estimate ks;     /* plain Krumhansl-Schmuckler major/minor */
    abc_key_estimate modal;  /* church mode (and pentatonic) */
    int final_pitch;         /* MIDI pitch of the last note of the first voice, -1 when none */
    int lowest, highest;     /* MIDI pitch range over all voices, -1 when no notes */
    size_t n_notes;          /* sounding notes (ties merged, grace notes counted) */
    abc_frac duration;       /* played duration, whole notes */
    abc_frac beat;           /* the beat: Q:'s beat, else the meter's (3/8 in compound meters, else 1/den) */
    double beats;            /* duration in beats */
    double seconds;          /* duration at Q: (1/4 = 120 when no Q:) */
    bool tempo_given;
    int pitch_count[128];    /* notes per MIDI pitch */
    double pc_weight[12];    /* duration per pitch class in quarter notes (the profile used for the keys) */
    abc_bar_chords *chords;  /* per written bar that holds music (also those without chord symbols) */
    size_t n_chord_bars;
    char *form;              /* "AABB" ("" when there is no music) */
    abc_section *sections;
    size_t n_sections;
} abc_analysis;

/* Analyse one tune (t is the syntax, m its model). Returns 0, or -1 when out of memory. Free with
 * abc_analysis_free(). */
int abc_analyze(const abc_tune *t, const abc_model *m, abc_analysis *out);
void abc_analysis_free(abc_analysis *a);

/* ---------------------------------------------------------------- melody search */

typedef struct abc_melody {
    int *pitch;              /* MIDI pitches */
    abc_frac *dur;           /* sounding durations (ties merged) */
    int *bar;                /* written bar number of each note */
    int *line, *col;
    size_t n;
} abc_melody;

/* The melody of voice v of m (see the top of this file). Returns 0, or -1 when out of memory. */
int abc_melody_of_voice(const abc_model *m, size_t v, abc_melody *out);
void abc_melody_free(abc_melody *mel);

/* Start indices in `text` where `phrase` occurs (intervals equal; with rhythm also duration ratios).
 * Writes at most max starts; returns how many occurrences there are. A phrase of one note matches
 * every note; an empty phrase matches nothing. */
size_t abc_melody_find(const abc_melody *text, const abc_melody *phrase, bool rhythm, size_t *starts, size_t max);

/* The melody of an ABC fragment ("GABc dedB"), read with L:1/8 and key `key` (NULL: C). Returns 0, or -1
 * with a message when the fragment has no notes or does not parse. */
int abc_melody_parse(const char *phrase, const char *key, abc_melody *out, char *err, size_t errsz);

/* Written bar numbers (each once, in order) where the ABC fragment `phrase`, read in key `key`, starts in voice v
 * of m; with rhythm the durations must match too. Writes at most max bars; 0 when the phrase does not parse,
 * is not found, or memory runs out. */
size_t abc_melody_bars(const abc_model *m, size_t v, const char *phrase, const char *key, bool rhythm, int *bars,
                       size_t max);

#endif
