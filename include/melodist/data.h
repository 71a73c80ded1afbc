/* The data pipeline: ABC collections, IrishMAN/MusicPile JSONL and knowledge texts in; a pre-training corpus and
 * supervised fine-tuning (SFT) task datasets out, deterministically (same inputs + seed -> same bytes).
 *
 * Output directory layout (docs/data.md):
 *   DIR/pretrain.txt, DIR/sft.xtuner.jsonl, DIR/sft.openai.jsonl      the train split
 *   DIR/valid/{pretrain.txt,sft.xtuner.jsonl,sft.openai.jsonl}        the validation split
 *   DIR/test/{pretrain.txt,sft.xtuner.jsonl,sft.openai.jsonl}         the test split (never trained on)
 *   DIR/stats.json                                                    counts: inputs, drops by reason, repairs,
 *                                                                     duplicates, per split, per collection, per task
 * pretrain.txt holds one document per normalised tune or knowledge text; every document is followed by the line
 * DATA_DOC_SEPARATOR. The whole directory appears at once (built in DIR.tmp, then renamed); on error nothing is left. */
#ifndef MELODIST_DATA_H
#define MELODIST_DATA_H

#include <stddef.h>
#include <stdint.h>

#define DATA_DOC_SEPARATOR "<|endofdoc|>"

enum data_split { DATA_SPLIT_TRAIN, DATA_SPLIT_VALID, DATA_SPLIT_TEST, DATA_SPLIT_COUNT };

/* SFT task families; data_task_name() gives the "task" field written in every record. */
enum data_task {
    DATA_TASK_CONTINUATION,
    DATA_TASK_COMPOSE_MOOD,
    DATA_TASK_COMPOSE_MOTIF,
    DATA_TASK_COMPOSE_CHORDS,
    DATA_TASK_COMPOSE_FORM,
    DATA_TASK_COMPOSE_REFERENCE,
    DATA_TASK_COMPOSE_STYLE,
    DATA_TASK_LYRICS,
    DATA_TASK_FIND_MELODY,
    DATA_TASK_FIND_CHORD,
    DATA_TASK_COUNT_BARS,
    DATA_TASK_PROGRESSION,
    DATA_TASK_HARMONISE,
    DATA_TASK_MELODISE,
    DATA_TASK_GENRE,
    DATA_TASK_KEY_MODE,
    DATA_TASK_SELF_COGNITION,
    DATA_TASK_MUSICPILE,
    DATA_TASK_COUNT
};

const char *data_task_name(enum data_task t);
const char *data_split_name(enum data_split s);

/* A named counter (drop reasons, repairs, collections). */
struct data_counter {
    char name[64];
    long count;
};

struct data_counters {
    struct data_counter *items;
    size_t n, cap;
};

void data_counters_add(struct data_counters *c, const char *name, long delta);
long data_counters_get(const struct data_counters *c, const char *name);

struct data_stats {
    long tunes_read;                          /* tune items seen in the inputs */
    long tunes_kept;                          /* written to some split */
    long exact_duplicates;                    /* dropped: same normalised tune as an earlier one */
    long near_duplicates;                     /* kept, in the split of their melody's first occurrence */
    long split_tunes[DATA_SPLIT_COUNT];
    long knowledge_docs;
    long musicpile_records;
    long lyrics_tunes;                        /* kept tunes with w: lyrics */
    long lyrics_tunes_chinese;                /* ... of which the lyrics contain CJK characters */
    long records[DATA_SPLIT_COUNT][DATA_TASK_COUNT];
    long pretrain_bytes[DATA_SPLIT_COUNT];
    struct data_counters drops;               /* by reason ("parse error: bar-length", ...) */
    struct data_counters repairs;             /* by kind ("missing X:", ...) */
    struct data_counters collections_read;    /* tunes read per collection */
    struct data_counters collections_kept;
};

void data_stats_free(struct data_stats *s);

struct data_progress {
    const char *path;     /* the input being read */
    size_t input_index, n_inputs;
    long tunes_read, tunes_kept; /* pass 2 */
    long tunes_scanned;          /* pass 1 */
    int pass;                    /* 1: scanning (fingerprints, splits), 2: writing */
    int input_done;              /* the input has been read to its end */
};

struct data_build_options {
    const char *out_dir;
    const char *const *inputs;       /* .abc, .jsonl/.json, .txt/.md */
    size_t n_inputs;
    const char *const *knowledge;    /* forced knowledge texts (any extension) */
    size_t n_knowledge;
    uint64_t seed;
    /* Called now and then while building (may be NULL). */
    void (*progress)(void *ctx, const struct data_progress *p);
    /* With sample_per_task > 0, called for the first records of each task (train split). */
    int sample_per_task;
    void (*sample)(void *ctx, const char *task, const char *system, const char *input, const char *output);
    void *ctx;
};

/* Builds everything into opts->out_dir (replacing a previous build there; refuses a non-empty directory that is not
 * one). Returns 0 on success; -1 with a message (file:line and how to fix) in err, leaving no partial output. */
int data_build(const struct data_build_options *opts, struct data_stats *stats, char *err, size_t errlen);

/* stats as the JSON object written to DIR/stats.json (malloc'd, NUL-terminated). */
char *data_stats_json(const struct data_stats *s);

/* Tokenises pretrain.txt files (documents ended by DATA_DOC_SEPARATOR lines) into one token shard
 * (melodist/shard.h): every document becomes <s> + its text without the final newline + </s>.
 * dtype_bytes 0 picks uint16 when the vocabulary fits, else uint32. Returns 0, or -1 with a message (no shard is
 * left behind). */
struct mt_tokenizer;
struct data_shard_result {
    long docs, tokens;
};
int data_shard_text(const struct mt_tokenizer *tok, const char *const *inputs, size_t n_inputs, const char *out,
                    int dtype_bytes, struct data_shard_result *res, char *err, size_t errlen);

#endif
