/* SFT task families: instructions (Chinese ~3/4, English ~1/4, several phrasings each) whose answers the ABC engine
 * computes from a tune. See docs/data.md for one example of each. */
#ifndef MELODIST_DATA_SFT_H
#define MELODIST_DATA_SFT_H

#include <stdint.h>

#include "melodist/data.h"
#include "melodist/data_json.h"
#include "tune.h"

/* Receives one record: task, language (1 Chinese, 0 English), user input, assistant output. */
typedef void (*sft_emit_fn)(void *ctx, enum data_task task, int zh, const char *input, const char *output);

struct tune_meta {
    const char *collection;  /* input file stem, e.g. "nottingham" */
    const char *group;       /* index.tsv group (source file), "" when unknown */
    int split;
};

/* Receives one tool-use record: the question of an analysis record split into the tune (given as an attached file)
 * and the question about it, the plugin call the assistant makes (abc_tools_call_text), the plugin's result
 * (abc_tools_run) and the record's answer. */
typedef void (*sft_tool_fn)(void *ctx, enum data_task task, const char *file, const char *question,
                            const char *call, const char *result, const char *output);

struct sft_gen;

struct sft_gen *sft_gen_new(uint64_t seed);
void sft_gen_free(struct sft_gen *g);
/* From now on the analysis families answered by a plugin (key and mode, bar count, find melody, find chord,
 * progression) also give each record as a tool-use record to fn, with sft_tune's ctx. */
void sft_gen_on_tool(struct sft_gen *g, sft_tool_fn fn);
/* All records for one tune (a deterministic choice of families, see sft.c). */
void sft_tune(struct sft_gen *g, const struct tune *t, const struct tune_meta *meta, sft_emit_fn emit, void *ctx);
/* The self-cognition conversations: every question phrasing with an answer, both languages. `select` says which
 * of them to emit (so that the caller can split them): called with the record's index, returns non-zero to emit. */
void sft_self_cognition(int (*select)(void *ctx, unsigned index), sft_emit_fn emit, void *ctx);

/* The tune's w: lyrics as plain text (syllables joined into words) appended to out; returns the number of lyric
 * lines (0: the tune has no lyrics). */
int sft_lyrics(const struct tune *t, struct data_buf *out);

#endif
