/* Evaluation measures for Melodist models (melodist eval, docs/eval.md): tune validity and bar fit, copied bar
 * runs against a training set, pitch-class and interval histograms, a token n-gram baseline, and a model's bits
 * per token on a document. Nothing here prints or exits. */
#ifndef MELODIST_EVAL_H
#define MELODIST_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "melodist/model.h"

/* ---------------------------------------------------------------- one tune */

struct eval_tune {
    int parsed;          /* exactly one tune with a K: line and music */
    int valid;           /* ... and the ABC validator reports no error */
    int bars;            /* bars of music in the first voice */
    int bars_bad;        /* of which the validator finds too long or too short for the meter */
    char key[32], meter[16], rhythm[64]; /* K:, M:, R: as written ("" when absent) */
};

/* Checks the first tune in abc[0..len). Returns 0, or -1 when out of memory. */
int eval_tune_check(const char *abc, size_t len, struct eval_tune *out);

/* ---------------------------------------------------------------- novelty: bar runs copied from a training set */

/* A bar is identified by its notes (pitch and length of each event, rests included), so layout, beaming and
 * chord symbols do not hide a copy. */
struct eval_novelty;

struct eval_novelty *eval_novelty_new(int max_run); /* runs of 1..max_run bars are indexed; NULL when out of memory */
void eval_novelty_free(struct eval_novelty *nv);
/* Indexes every tune of abc[0..len). Returns 0, or -1 when out of memory. */
int eval_novelty_add(struct eval_novelty *nv, const char *abc, size_t len);
/* Call once after the last add. */
void eval_novelty_seal(struct eval_novelty *nv);
/* Longest run of consecutive bars of the first tune of abc that occurs, consecutively, in the training set
 * (capped at max_run); *bars receives the tune's bar count. -1 when the text holds no tune. */
int eval_novelty_longest(const struct eval_novelty *nv, const char *abc, size_t len, int *bars);

/* ---------------------------------------------------------------- histograms */

#define EVAL_INTERVALS 25 /* melodic intervals -12..+12 semitones (wider ones clipped) */

/* Adds the tune's notes: pc[12] counts pitch classes relative to the tonic of K: (C when none), iv[25] the
 * intervals between consecutive melody notes. Returns the number of notes added, -1 when out of memory. */
int eval_histograms(const char *abc, size_t len, double pc[12], double iv[EVAL_INTERVALS]);
/* Total variation distance between two histograms (each normalised to sum 1): 0 same, 1 disjoint. */
double eval_tv_distance(const double *a, const double *b, int n);

/* ---------------------------------------------------------------- token n-gram baseline */

/* Interpolated Witten-Bell n-gram over token ids: P(w|h) = (c(h,w) + t(h) P(w|h')) / (c(h) + t(h)), t(h) the
 * number of distinct tokens seen after h, down to a unigram mixed with the uniform distribution. */
struct eval_ngram;

struct eval_ngram *eval_ngram_new(int order, int vocab); /* NULL when out of memory */
void eval_ngram_free(struct eval_ngram *g);
/* Counts one document (ids[0] is BOS, usually ids[n-1] EOS). Returns 0, or -1 when out of memory. */
int eval_ngram_add(struct eval_ngram *g, const int *ids, size_t n);
/* P(token | the up to order-1 ids before it in hist[0..n)). */
double eval_ngram_prob(const struct eval_ngram *g, const int *hist, size_t n, int token);
/* Samples the next token after hist[0..n) with the xorshift state *rng (nonzero). */
int eval_ngram_sample(const struct eval_ngram *g, const int *hist, size_t n, uint64_t *rng);

/* ---------------------------------------------------------------- model */

/* Bits (-log2 p) the model spends on ids[1..n) given the ids before each (ids[0] is BOS), with a fresh context.
 * n must not exceed the state's max_seq. Returns 0, or -1 with a message. */
int eval_model_bits(const struct model *m, struct model_state *s, const int *ids, size_t n, double *bits, char *err,
                    size_t errlen);

#endif
