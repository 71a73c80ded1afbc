/* Supervised fine-tuning with LoRA / QLoRA (`melodist finetune`, docs/finetune.md): chat data in xtuner's
 * internlm2_chat template, packed as xtuner packs it, and the training run over a frozen base. */
#ifndef MELODIST_FINETUNE_H
#define MELODIST_FINETUNE_H

#include <stddef.h>
#include <stdint.h>

#include "melodist/lora.h"
#include "melodist/tokenizer.h"
#include "melodist/train.h"

/* ---- SFT data ----
 * Each record (xtuner {"conversation": [{"system", "input", "output"}, ...]} or OpenAI {"messages": [...]})
 * becomes, as xtuner's template_map_fn + encode_fn make it: BOS; per turn
 *   [<|im_start|>system\n{system}<|im_end|>\n]<|im_start|>user\n{input}<|im_end|>\n<|im_start|>assistant\n
 * (not scored), {output}<|im_end|> (scored), \n (not scored); each piece encoded on its own; truncated to
 * max_length. */
struct sft_set {
    int32_t *ids;
    uint8_t *scored;   /* the label is the id itself (1) or -100 (0) */
    size_t n;          /* tokens of all samples */
    size_t *start;     /* [n_samples + 1] offsets */
    size_t n_samples;
};

/* Reads a JSONL file; with task non-empty only records whose "task" equals it; a non-NULL system replaces
 * every record's system prompt ("" drops it: small models with short contexts). */
int sft_load(const char *path, const mt_tokenizer *tok, const char *task, const char *system, int max_length,
             struct sft_set *s, char *err, size_t errlen);
void sft_free(struct sft_set *s);

/* Rows of max_length tokens for training: packed (samples shuffled by seed, concatenated, cut into rows of
 * exactly max_length, the remainder dropped; causal attention over the whole row, positions 0..) or one
 * sample per row, padded. */
struct sft_rows {
    int T;
    size_t n_rows;
    int32_t *ids;    /* [n_rows * T], pad 0 */
    uint8_t *scored; /* [n_rows * T] */
};

int sft_rows_build(const struct sft_set *s, int max_length, int pack, uint64_t seed, struct sft_rows *rows);
void sft_rows_free(struct sft_rows *rows);
/* Row r as the training engine takes it: targets[t] = ids[t+1] when scored, else -1; start 0, pos t.
 * Returns the number of targets. */
int sft_row(const struct sft_rows *rows, size_t r, int32_t *tokens, int32_t *targets, int32_t *start,
            int32_t *pos);

/* ---- the run (melodist finetune --config FILE) ---- */

struct finetune_config {
    char base[4096];        /* "pretrained_model_name_or_path": HF checkpoint directory */
    char tokenizer[4096];   /* "tokenizer" (default: the base's tokenizer.model) */
    char train_data[4096], valid_data[4096]; /* "data": {"train", "valid"} JSONL */
    char task[64];          /* "data": {"task"}: only this task family ("" = all) */
    char system[4096];      /* "data": {"system"}: replaces the records' system prompts when has_system */
    int has_system;
    int max_length, pack;   /* "max_length", "pack_to_max_length" */
    int recompute;          /* "use_activation_checkpointing" (xtuner's SupervisedFinetune; default on) */
    struct lora_config lora; /* "lora": r, lora_alpha, lora_dropout, target_modules; "quantization" */
    double lr, warmup_ratio, weight_decay; /* "optim" / "schedule" */
    struct adamw_config adamw; /* "optim": betas, eps */
    int adamw_8bit;         /* "optim": {"type": "AdamW8bit"} (bitsandbytes' 8-bit blockwise moments) */
    float max_norm;
    int max_epochs;
    int64_t max_steps;      /* "schedule": {"max_steps"}: a cap (0: epochs decide) */
    int batch_size, accumulative_counts; /* rows per forward; forwards per optimizer step (all processes) */
    uint64_t seed;
    int eval_every, eval_batches, save_every, keep, threads;
    char out_dir[4096];     /* "work_dir" (overridden by --out) */
};

int finetune_config_load(const char *path, struct finetune_config *c, char *err, size_t errlen);

/* Uses o's config_path, out_dir, resume, stop, progress, message and ctx as train_run does; the adapter is
 * written to DIR/adapter/ (PEFT format) at the end and when stopped. */
enum train_result finetune_run(const struct train_options *o, char *err, size_t errlen);

#endif
