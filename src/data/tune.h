/* One tune through the engine: parse, validate, normalise, model, hashes. The unit of everything downstream. */
#ifndef MELODIST_DATA_TUNE_H
#define MELODIST_DATA_TUNE_H

#include <stddef.h>
#include <stdint.h>

#include "melodist/abc.h"

struct tune {
    char *text;        /* normalised text (abc_fmt_tune), NUL-terminated */
    size_t len;
    abc_file *file;    /* the normalised text parsed: positions refer to `text` */
    abc_model *model;
    uint64_t exact;    /* hash of the normalised text without its X: line */
    uint64_t melody;   /* transposition-invariant melody fingerprint; equals `exact` for very short melodies */
};

/* Fills t from raw tune text. Returns 0, or -1 with the drop reason (a short stable phrase, used as a stats key)
 * in reason. */
int tune_prepare(struct tune *t, const char *raw, size_t len, char *reason, size_t rlen);
void tune_free(struct tune *t);

/* The melody of voice 0 as written: one MIDI pitch per sounding note (chords: the top note; tied continuations,
 * grace notes and rests left out). Returns the count; *pitches malloc'd (also *bars: written bar index per note). */
size_t tune_melody(const abc_model *m, int **pitches, int **bars);

#endif
