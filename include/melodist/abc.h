/* The ABC 2.1 engine: parser, tune model, playback expansion, validator, normaliser.
 *
 * Three levels, each built from the one before:
 *   abc_file        the text as written: file header + tunes, each tune a header (fields) and a body
 *                   (a flat sequence of syntax elements with positions). Enough to re-print the music;
 *                   a transposer rewrites elements in place and re-prints with abc_fmt_tune().
 *   abc_model       the meaning of one tune: header info, voices with timed events (exact rational times,
 *                   MIDI pitches after key signature and accidentals), bars, chord symbols; both as written
 *                   and expanded for playback (repeats, endings, parts).
 *   abc_diags       errors and warnings with line/col in the file, a category and a fix hint.
 *
 * Ownership: every x_new/x_parse has a matching x_free. Strings inside an abc_file live in the file's arena
 * and stay valid until abc_file_free(). Nothing here prints or exits. */
#ifndef MELODIST_ABC_H
#define MELODIST_ABC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- exact rationals (frac.c) */

/* Durations and times in whole notes. Always normalised: den > 0, gcd(|num|, den) == 1. */
typedef struct abc_frac {
    int64_t num, den;
} abc_frac;

abc_frac abc_frac_make(int64_t num, int64_t den); /* den == 0 gives 0/1 */
abc_frac abc_frac_add(abc_frac a, abc_frac b);
abc_frac abc_frac_sub(abc_frac a, abc_frac b);
abc_frac abc_frac_mul(abc_frac a, abc_frac b);
abc_frac abc_frac_div(abc_frac a, abc_frac b); /* b == 0 gives 0/1 */
int abc_frac_cmp(abc_frac a, abc_frac b);       /* -1, 0, 1 */
bool abc_frac_eq(abc_frac a, abc_frac b);
double abc_frac_to_double(abc_frac a);
/* a in ticks where a quarter note has `tpq` ticks, rounded to nearest. */
int64_t abc_frac_to_ticks(abc_frac a, int tpq);

/* ---------------------------------------------------------------- diagnostics (diag.c) */

typedef enum { ABC_ERROR = 0, ABC_WARNING = 1 } abc_severity;

typedef struct abc_diag {
    abc_severity severity;
    int line, col;        /* 1-based, in the file (0 when unknown) */
    int tune;             /* index into abc_file.tunes, -1 for the file header */
    const char *category; /* static string, e.g. "syntax", "bar-length", "header", "repeat" */
    char *message;        /* owned (malloc'd) */
    char *hint;           /* may be NULL; owned with the message (in the same block) */
} abc_diag;

typedef struct abc_diags {
    abc_diag *items;
    size_t n, cap;
    size_t n_errors, n_warnings;
} abc_diags;

void abc_diags_init(abc_diags *d);
void abc_diags_free(abc_diags *d);
void abc_diags_clear(abc_diags *d);
void abc_diags_add(abc_diags *d, abc_severity sev, int line, int col, int tune, const char *category,
                   const char *hint, const char *fmt, ...) __attribute__((format(printf, 8, 9)));
/* "file:line:col: error[category]: message (hint: ...)" into buf; returns the length it needed. */
int abc_diag_format(const abc_diag *dg, const char *filename, char *buf, size_t size);
/* Sort by line, col (stable). */
void abc_diags_sort(abc_diags *d);

/* ---------------------------------------------------------------- syntax (parse.c) */

typedef enum {
    ABC_ACC_NONE = 0,
    ABC_ACC_NATURAL,  /* = */
    ABC_ACC_SHARP,    /* ^ */
    ABC_ACC_FLAT,     /* _ */
    ABC_ACC_DSHARP,   /* ^^ */
    ABC_ACC_DFLAT,    /* __ */
} abc_accidental;

/* Semitone offset of an accidental (natural and none give 0). */
int abc_accidental_semitones(abc_accidental a);

/* A written length multiplier relative to L: (A3/2 -> 3/2, A/ -> 1/2, A// -> 1/4, A -> 1/1).
 * den == 0 marks the invalid A/0 (reported as an error; treated as 1/1 by the model). */
typedef struct abc_len {
    int32_t num, den;
} abc_len;

typedef enum {
    ABC_EL_NOTE,          /* pitch + length (+ tie) */
    ABC_EL_REST,          /* z x (one length), Z X (multi-bar: length = number of bars) */
    ABC_EL_CHORD_BEGIN,   /* [   notes of the chord follow */
    ABC_EL_CHORD_END,     /* ]   chord length multiplier + tie */
    ABC_EL_GRACE_BEGIN,   /* {  or {/ (acciaccatura) */
    ABC_EL_GRACE_END,     /* } */
    ABC_EL_CHORD_SYMBOL,  /* "Am7" */
    ABC_EL_ANNOTATION,    /* "^text" "_text" "<text" ">text" "@text" */
    ABC_EL_DECORATION,    /* !trill! +trill+ or one of .~HLMOPSTuv */
    ABC_EL_TUPLET,        /* (p  (p:q  (p:q:r */
    ABC_EL_BROKEN,        /* > >> >>> < << <<< between two notes */
    ABC_EL_SLUR_BEGIN,    /* (  or .( dotted */
    ABC_EL_SLUR_END,      /* ) */
    ABC_EL_TIE,           /* a '-' not directly after a note or chord (rare: after spaces) */
    ABC_EL_BAR,           /* bar lines and repeat marks */
    ABC_EL_ENDING,        /* [1  [2  [1,3  [2-3  or the digits of |1 :|2 (attached) */
    ABC_EL_FIELD,         /* inline [K:..] or a field line in the body (K: M: L: V: w: W: P: Q: ...) */
    ABC_EL_SPACE,         /* whitespace between notes: a beam break */
    ABC_EL_EOL,           /* end of a music line (continued: line ended with '\') */
    ABC_EL_SCORE_BREAK,   /* $ or ! used as a score line break */
    ABC_EL_OVERLAY,       /* & */
    ABC_EL_COMMENT,       /* % text (text without the '%') */
    ABC_EL_DIRECTIVE,     /* %%text (text without the '%%') */
    ABC_EL_UNKNOWN,       /* text the parser could not read (reported as an error) */
} abc_element_kind;

typedef enum {
    ABC_BAR_SINGLE,       /* |   */
    ABC_BAR_DOUBLE,       /* ||  */
    ABC_BAR_THIN_THICK,   /* |]  */
    ABC_BAR_THICK_THIN,   /* [|  */
    ABC_BAR_THICK,        /* ]   alone, or [] */
    ABC_BAR_DOTTED,       /* .|  */
    ABC_BAR_INVISIBLE,    /* [|] */
} abc_bar_style;

typedef struct abc_note {
    char letter;             /* 'A'..'G' (upper case) */
    int8_t octave;           /* 0: C..B from middle C; lower-case letters +1, each ' +1, each , -1 */
    abc_accidental acc;
    abc_len len;
    bool tie;                /* followed by '-' */
    bool dotted_tie;         /* '.-' */
} abc_note;

typedef struct abc_rest {
    char symbol;             /* 'z' 'x' 'Z' 'X' */
    abc_len len;             /* for Z/X: num = number of bars */
} abc_rest;

typedef struct abc_bar_line {
    abc_bar_style style;
    uint8_t repeat_end;      /* number of ':' before the bar (:| = 1, ::| = 2, :: = 1) */
    uint8_t repeat_start;    /* number of ':' after the bar (|: = 1, :: = 1) */
    bool compact;            /* written '::' (no bar between the colons) */
} abc_bar_line;

typedef struct abc_ending {
    const char *text;        /* "1", "2", "1,3", "1-3"  (validated list of numbers/ranges) */
    bool attached;           /* written directly after a bar (|1 :|2) rather than [1 */
} abc_ending;

typedef struct abc_tuplet {
    int p, q, r;             /* (p:q:r with defaults filled in (q from meter per the standard) */
    bool q_given, r_given;   /* as written */
} abc_tuplet;

typedef struct abc_broken {
    char dir;                /* '>' or '<' */
    int count;               /* 1..3 */
} abc_broken;

typedef struct abc_text {
    const char *text;        /* NUL-terminated, arena */
    char placement;          /* annotations: ^ _ < > @ ; decorations: '!' '+' or the short char; 0 otherwise */
} abc_text;

typedef struct abc_field_ref {
    char key;                /* 'K', 'M', 'w', ... */
    const char *value;       /* trimmed, comment removed */
    bool inline_;            /* written as [K:...] inside a music line */
} abc_field_ref;

typedef struct abc_element {
    abc_element_kind kind;
    int line, col;           /* 1-based position in the file */
    uint32_t src_off, src_len; /* byte range in abc_file.text */
    union {
        abc_note note;              /* NOTE */
        abc_rest rest;              /* REST */
        struct {                    /* CHORD_END */
            abc_len len;
            bool tie;
        } chord;
        bool acciaccatura;          /* GRACE_BEGIN */
        abc_text text;              /* CHORD_SYMBOL ANNOTATION DECORATION COMMENT DIRECTIVE UNKNOWN */
        abc_tuplet tuplet;          /* TUPLET */
        abc_broken broken;          /* BROKEN */
        bool dotted;                /* SLUR_BEGIN, TIE */
        abc_bar_line bar;           /* BAR */
        abc_ending ending;          /* ENDING */
        abc_field_ref field;        /* FIELD */
        bool continued;             /* EOL: line ended with '\' */
    } u;
} abc_element;

/* A header field: file header, tune header, or (via abc_element FIELD) body. */
typedef struct abc_field {
    char key;                /* field letter; '%' for a %% directive (value = text after %%), '#' for a comment */
    const char *value;       /* trimmed, trailing comment removed, NUL-terminated */
    int line, col;           /* position of the key letter */
} abc_field;

typedef struct abc_tune {
    const char *text;        /* this tune's source slice (points into abc_file.text) */
    size_t text_len;
    int first_line;          /* line number of the slice's first line */
    int x;                   /* X: reference number (-1 when missing or unreadable) */
    abc_field *header;       /* header fields in written order (X first, K last when well-formed) */
    size_t n_header;
    abc_element *body;       /* music, in written order */
    size_t n_body;
} abc_tune;

typedef struct abc_file {
    char *text;              /* copy of the input, NUL-terminated */
    size_t text_len;
    abc_field *header;       /* file header fields and directives (before the first X:) */
    size_t n_header;
    abc_tune *tunes;
    size_t n_tunes;
    abc_diags diags;         /* syntax diagnostics from parsing */
    struct abc_arena *arena; /* private */
} abc_file;

/* Parse a whole file buffer (any number of tunes). Never fails on bad input (errors go to file->diags);
 * returns NULL only when out of memory. */
abc_file *abc_parse(const char *buf, size_t len);
void abc_file_free(abc_file *f);
/* Copy a string into the file's arena (lives until abc_file_free); for rewriting elements and fields. */
const char *abc_file_strdup(abc_file *f, const char *s);
/* Index of the tune with reference number x, or -1. */
int abc_file_find_tune(const abc_file *f, int x);
/* Value of the first header field with this key in the tune, or NULL. */
const char *abc_tune_field(const abc_tune *t, char key);

/* ---------------------------------------------------------------- header values (fields.c) */

typedef enum {
    ABC_MODE_MAJOR = 0, /* also ionian */
    ABC_MODE_MINOR,     /* also aeolian */
    ABC_MODE_MIXOLYDIAN,
    ABC_MODE_DORIAN,
    ABC_MODE_PHRYGIAN,
    ABC_MODE_LYDIAN,
    ABC_MODE_LOCRIAN,
} abc_mode;

typedef struct abc_key {
    bool none;               /* K:none (or no tonic: K: with only explicit accidentals, or HP/Hp) */
    char tonic_letter;       /* 'A'..'G' (0 when none) */
    int8_t tonic_acc;        /* -1 flat, 0, +1 sharp */
    int tonic_pc;            /* pitch class 0..11 of the tonic (C = 0) */
    abc_mode mode;
    int sharps;              /* key signature before explicit accidentals: -7..7 (flats negative) */
    int8_t sig[7];           /* semitone offset per letter C D E F G A B after explicit accidentals */
    bool has_explicit;       /* explicit accidentals were given (K:D ^g _b) */
    int octave;              /* octave= shift (sounding pitch), 0 default */
    int transpose;           /* transpose= in semitones (playback only), 0 default */
} abc_key;

typedef enum {
    ABC_METER_NONE,          /* M:none (free meter) */
    ABC_METER_FRACTION,      /* M:6/8, M:2+3/8, M:(2+3+2)/8 */
    ABC_METER_COMMON,        /* M:C  = 4/4 */
    ABC_METER_CUT,           /* M:C| = 2/2 */
} abc_meter_kind;

typedef struct abc_meter {
    abc_meter_kind kind;
    int num, den;            /* numerator summed over 2+3; C: 4/4, C|: 2/2, none: 0/0 */
} abc_meter;

typedef struct abc_tempo {
    bool given;
    abc_frac beat;           /* sum of the beat lengths (1/4 for Q:1/4=120; 3/8 for Q:1/8 1/4=..) */
    int bpm;                 /* beats per minute, 0 when only text */
    const char *text;        /* the whole Q: value when it holds quoted text ("Allegro"), else NULL */
} abc_tempo;

/* Field value parsers; return false (and fill err with a readable message) on invalid text. */
bool abc_parse_key(const char *value, abc_key *out, char *err, size_t errsz);
bool abc_parse_meter(const char *value, abc_meter *out, char *err, size_t errsz);
bool abc_parse_unit(const char *value, abc_frac *out, char *err, size_t errsz);
bool abc_parse_tempo(const char *value, abc_frac default_beat, abc_tempo *out, char *err, size_t errsz);
/* Default unit note length for a meter (the standard's rule: < 3/4 -> 1/16, else 1/8; none -> 1/8). */
abc_frac abc_default_unit(abc_meter m);
/* Bar length of a meter in whole notes (0 for none). */
abc_frac abc_meter_bar_length(abc_meter m);
/* The meter as a fraction, "6/8" (C as "4/4", C| as "2/2"), or "none" for free meter. */
void abc_meter_fraction(abc_meter m, char *buf, size_t size);
/* MIDI pitch of a written note letter/octave/semitone offset (C octave 0 = 60). */
int abc_midi_pitch(char letter, int octave, int semitones);

/* ---------------------------------------------------------------- tune model (model.c, expand.c) */

enum {
    ABC_EV_TIE = 1 << 0,        /* tied to the next note of the same pitch */
    ABC_EV_TIED = 1 << 1,       /* continues a tie from the previous note */
    ABC_EV_GRACE = 1 << 2,      /* grace note: takes no time (start = start of the next note, dur = 0) */
    ABC_EV_CHORD = 1 << 3,      /* member of a [chord] */
    ABC_EV_REST = 1 << 4,       /* rest (pitch -1); invisible rests x too */
    ABC_EV_MULTIBAR = 1 << 5,   /* Z/X multi-bar rest */
};

typedef struct abc_event {
    uint32_t flags;          /* ABC_EV_* */
    int pitch;               /* MIDI pitch (-1 for rests), key signature + bar accidentals + octave applied */
    abc_frac start, dur;     /* whole notes from the start of the tune (played: from the start of playback) */
    int bar;                 /* written bar index (into abc_model.bars) */
    int chord;               /* chord group id (events with the same id sound together), -1 when none */
    int element;             /* index into abc_tune.body of the note/rest */
    int line, col;
    const char *lyric;       /* syllable aligned by w: (NULL when none); "" for a melisma/skip */
} abc_event;

typedef struct abc_chord_symbol {
    const char *text;        /* "Am7" */
    abc_frac start;
    int bar;                 /* written bar index */
    int voice;
    int element;
    int line, col;
} abc_chord_symbol;

typedef struct abc_bar {
    abc_frac start;          /* as written, start time of the bar */
    abc_frac len;            /* sum of note lengths in the bar (first voice that has it) */
    int number;              /* written bar number: the pickup bar is 0, then 1, 2, ... */
    uint8_t repeat_start;    /* bar opens with |: */
    uint8_t repeat_end;      /* bar closes with :| */
    const char *ending;      /* ending text ("1", "2", "1,3") when the bar starts an ending, else NULL */
    const char *part;        /* P: label when a part starts with this bar, else NULL */
    abc_bar_style end_style; /* style of the bar line that closes the bar */
    bool closed;             /* a bar line closes it (false for the unfinished last bar) */
    abc_meter meter;         /* meter in force when the bar starts */
    int line, col;           /* position of the bar's first element */
    size_t first_event, n_events; /* the bar's events in its voice's events[] */
} abc_bar;

typedef struct abc_voice {
    const char *id;          /* V: id ("1", "T1"), "" for the implicit single voice */
    const char *name;        /* name= value or NULL */
    const char *properties;  /* the rest of the V: line as written, or NULL */
    abc_event *events;       /* as written */
    size_t n_events;
    abc_event *played;       /* expanded for playback: repeats, endings, parts; ties still separate
                                (cut at 20000 played bars or 500000 events) */
    size_t n_played;
    abc_bar *bars;           /* this voice's written bars */
    size_t n_bars;
    int *play_order;         /* this voice's written bar indices in playback order */
    size_t n_play;
} abc_voice;

typedef struct abc_model {
    int x;
    const char **titles;     /* all T: of the header */
    size_t n_titles;
    const char *composer, *origin, *rhythm, *source, *parts; /* C: O: R: S: P: (header), NULL when absent */
    abc_meter meter;         /* first M: (header) */
    abc_frac unit;           /* L: (or the meter default) */
    abc_tempo tempo;
    abc_key key;             /* header K: */
    abc_voice *voices;
    size_t n_voices;
    abc_bar *bars;           /* written bars of the first voice (same as voices[0].bars) */
    size_t n_bars;
    int *play_order;         /* first voice's written bar indices in playback order */
    size_t n_play;
    abc_chord_symbol *chords;        /* as written */
    size_t n_chords;
    abc_chord_symbol *chords_played; /* expanded (bar = written bar index, start = playback time) */
    size_t n_chords_played;
    abc_frac duration;       /* written length (longest voice) */
    abc_frac duration_played;
    struct abc_arena *arena; /* private */
} abc_model;

/* Build the model of tune `index` of f. Semantic problems go to diags (may be NULL) with tune = index.
 * Returns NULL only when out of memory. */
abc_model *abc_model_new(const abc_file *f, size_t index, abc_diags *diags);
void abc_model_free(abc_model *m);

/* ---------------------------------------------------------------- validator (validate.c) */

/* Check tune `index` (header rules, bar lengths vs meter, repeats/endings, slurs/ties/tuplets balance,
 * unknown fields, ...). Adds to out; returns the number of errors it added. */
size_t abc_validate_tune(const abc_file *f, size_t index, abc_diags *out);
/* The parse diagnostics plus abc_validate_tune() of every tune, sorted by position. Returns error count. */
size_t abc_validate_file(const abc_file *f, abc_diags *out);
/* abc_parse() + abc_validate_file() of a whole buffer, one tune at a time, so that memory stays small and
 * in cache (what 'melodist abc check' uses). Same diagnostics; tune indexes count tunes in the buffer.
 * *n_tunes (may be NULL) gets the number of tunes. Big inputs are split over up to 4 threads.
 * Returns the error count. */
size_t abc_check_buffer(const char *buf, size_t len, abc_diags *out, size_t *n_tunes);

/* ---------------------------------------------------------------- normaliser (fmt.c) */

/* The canonical text of one tune (see docs/abc-format.md), malloc'd, NUL-terminated; *len may be NULL.
 * NULL only when out of memory. */
char *abc_fmt_tune(const abc_file *f, size_t index, size_t *len);
/* All tunes (and the file header), separated by one blank line. */
char *abc_fmt_file(const abc_file *f, size_t *len);

#endif
