/* The composer: turns a request (key, meter, rhythm type, bars, mood, chords, motif, form, reference tune,
 * lyrics, free text) into one valid ABC tune written by an InternLM2 Melodist model.
 *
 * What is the model's and what is ours:
 *   - The prompt is the chat template with the composer persona and an instruction worded as the SFT data words
 *     it (src/data/sft.c), so the model sees the kind of request it was trained on.
 *   - Controls are kept by constrained decoding, not hoped for: the reply is forced to start with the header the
 *     request implies (X:, T:, R: for the type, M:, L:, K:); header lines the request leaves open are sampled and
 *     must parse. Chord symbols from --chords are written at the start of each bar, a motif opens the first bar.
 *   - The body is sampled bar by bar. When a bar line closes a bar, the tune so far is checked by the ABC
 *     validator; a bar that breaks a rule (length against the meter, syntax) or would be the third bar in a row
 *     with the same music (a loop a small model falls into) is taken back (the KV cache is rewound) and sampled
 *     again, at most `bar_retries` times; then the composer writes the bar itself (in the
 *     first bar the motif, completed by the tonic held when it is short of a bar, so the control is kept; the
 *     previous bar again; or the tonic held for a bar) and goes on sampling, or, when none fits, the tune ends
 *     at the last good bar.
 *     With a bar count, the end of the reply is refused until that many bars are written, and the tune is closed
 *     with a final bar line as soon as they are. A line break is never sampled inside a bar: lines end at bar
 *     lines, as in the canonical layout the model was trained on.
 *   - The finished tune is validated once more; failing that, the whole tune is sampled again with the next seed
 *     (at most `tune_retries` times). What was retried is counted in compose_result.
 *
 * Ownership: composer_new borrows the model and tokenizer (they must outlive it). Nothing here prints or exits. */
#ifndef MELODIST_COMPOSE_H
#define MELODIST_COMPOSE_H

#include <stddef.h>
#include <stdint.h>

#include "melodist/model.h"
#include "melodist/tokenizer.h"

enum compose_task {
    COMPOSE_NEW,       /* a new tune from the controls */
    COMPOSE_CONTINUE,  /* `prefix` (a tune's header and first bars) continued by `bars` more bars */
    COMPOSE_HARMONIZE, /* `prefix` (a whole tune) kept note for note; the model writes a chord symbol per bar */
};

struct compose_request {
    enum compose_task task;
    const char *key;      /* K: value ("D", "Am", "Edor"); NULL: sampled */
    const char *meter;    /* M: value ("6/8"); NULL: from the type, else sampled */
    const char *type;     /* rhythm type (jig, reel, hornpipe, waltz, polka, ...), written as R: */
    const char *title;    /* T:; NULL: sampled */
    int bars;             /* written bars of music (new tunes) or bars to add (continue); 0: the model decides */
    const char *mood;     /* words such as "欢快、明亮" or "cheerful" */
    const char *chords;   /* "G D | Em C | ..." or "G D Em C": one cell per bar, first chord of each bar written */
    const char *motif;    /* an ABC fragment in L:1/8 unless `L:` says otherwise, opens the first bar */
    const char *form;     /* "AABB": the section letters; bars are shared out evenly (8 per section by default) */
    const char *like;     /* a reference tune (ABC text): its meter, key and type are the defaults */
    const char *lyrics;   /* words to set (passed in the instruction; alignment is not enforced) */
    const char *text;     /* free text from the user; controls named in it (key, meter, type, bars) are read */
    const char *prefix;   /* COMPOSE_CONTINUE / COMPOSE_HARMONIZE: the tune (ABC) */
    float temperature;    /* <= 0: greedy */
    float top_p;          /* 1: off */
    uint64_t seed;
    int bar_retries;      /* per bar; 0: 16 */
    int tune_retries;     /* whole tunes; 0: 3 */
    int max_tokens;       /* reply tokens at most; 0: 1536 */
};

void compose_request_default(struct compose_request *r);

struct compose_result {
    char *abc;            /* the tune, malloc'd, ends with a newline */
    size_t len;
    int bars;             /* written bars of music */
    int valid;            /* 1: the ABC validator found no error */
    int bars_resampled;   /* bars taken back and sampled again */
    int bars_repaired;    /* bars written by the composer after bar_retries failed samples (see compose()) */
    int tunes_resampled;  /* whole tunes sampled again */
    int truncated;        /* 1: ended early (bar retries exhausted, token limit, context full) */
    int n_tokens;         /* reply tokens sampled, the rejected ones included */
    char *prompt;         /* the user instruction that was sent (malloc'd) */
};

void compose_result_free(struct compose_result *r);

/* Called with text as it becomes part of the tune (forced or sampled); a bar that is taken back is reported
 * with `rewind` = how many bytes of the text given so far to take back. Non-zero return cancels. */
typedef int (*compose_text_fn)(void *ctx, const char *text, size_t len, size_t rewind);

struct composer;

struct composer *composer_new(const struct model *m, const mt_tokenizer *tok, char *err, size_t errlen);
void composer_free(struct composer *c);

/* Composes one tune. Returns 0 (see result->valid), or -1 with a message: a request that cannot be honoured
 * (unreadable key/meter/chords/motif/reference, the prompt does not fit the context), out of memory, cancelled. */
int compose(struct composer *c, const struct compose_request *req, compose_text_fn on_text, void *ctx,
            struct compose_result *result, char *err, size_t errlen);

/* The instruction (user message) the request turns into, malloc'd; NULL with a message for a bad request. */
char *compose_instruction(const struct compose_request *req, char *err, size_t errlen);

/* Default meter of a rhythm type ("jig" -> "6/8"); NULL when the type is not known. */
const char *compose_type_meter(const char *type);

#endif
