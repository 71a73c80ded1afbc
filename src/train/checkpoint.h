/* Checkpoint directories (internal to the training layer; layout in checkpoint.c). */
#ifndef MELODIST_TRAIN_CHECKPOINT_H
#define MELODIST_TRAIN_CHECKPOINT_H

#include "melodist/optim.h"
#include "melodist/train.h"

struct checkpoint_state {
    int64_t step;            /* optimizer steps done */
    struct loader_pos pos;   /* where the next training row starts */
    uint64_t seed;
    int seq_len, batch_size; /* must match on resume for the run to continue exactly */
    int64_t tokens_seen;
};

struct checkpoint {
    const char *dir;             /* the run directory */
    const char *tokenizer_path;
    int keep;                    /* complete checkpoints kept (older ones deleted after a save) */
    const struct train_model *model;
    const struct adamw *opt;
    struct checkpoint_state state;
};

/* Writes dir/checkpoint-<step>; its path goes to saved. On failure the earlier checkpoints are intact. */
int checkpoint_save(const struct checkpoint *ck, char *saved, size_t saved_cap, char *err, size_t errlen);
/* Deletes all but the newest `keep` complete checkpoints in dir. */
void checkpoint_prune(const char *dir, int keep);
/* The newest complete checkpoint in dir (-1 if none). */
int checkpoint_latest(const char *dir, char *path, size_t cap);
int checkpoint_load(const char *path, struct train_model *tm, struct adamw *opt, struct checkpoint_state *s,
                    char *err, size_t errlen);

#endif
