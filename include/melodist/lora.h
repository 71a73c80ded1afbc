/* LoRA adapters (PEFT semantics) on the linear layers of an InternLM2 model, optionally over an NF4 base
 * (QLoRA): y = W x + (alpha/r) * B A dropout(x), A [r, in] ~ U(-1/sqrt(in), 1/sqrt(in)), B [out, r] = 0.
 * The base stays frozen; only A and B train. Saved and loaded in the HF PEFT adapter format
 * (adapter_config.json + adapter_model.safetensors, docs/finetune.md). */
#ifndef MELODIST_LORA_H
#define MELODIST_LORA_H

#include <stddef.h>
#include <stdint.h>

#include "melodist/model.h"
#include "melodist/nf4.h"
#include "melodist/train.h"

#define LORA_ALL_TARGETS ((1u << TRAIN_N_LINEAR) - 1)

struct lora_config {
    int r;
    float alpha, dropout;
    unsigned targets;      /* bit (1 << enum train_linear) per adapted kind of layer */
    int nf4, double_quant; /* QLoRA: the decoder's matrices held as NF4 */
    int nf4_output;        /* with nf4, the output head too (bitsandbytes keeps it unquantised by default) */
    int bf16;              /* adapter weights and their gradients held as bf16 (the QLoRA paper's adapters) */
};

/* One adapted layer: A [r, in] at offset `at` of the flat parameters, B [out, r] right after it; gradients at
 * the same offsets. */
struct lora_adapter {
    int in, out;
    int adapted;  /* the layer is a target */
    size_t at;
    float *A, *B; /* into params (f32 adapters); NULL for bf16 adapters or when not a target */
};

struct lora {
    struct lora_config cfg;
    float scaling;              /* alpha / r */
    int n_layers;
    struct lora_adapter *ad;    /* layer l, kind k < TRAIN_OUTPUT at l * TRAIN_OUTPUT + k; the output head last */
    size_t n_params;
    float *params, *grads;      /* f32 adapters, or NULL */
    uint16_t *params16, *grads16; /* bf16 adapters (cfg.bf16), or NULL */
    struct nf4_tensor *nf4;     /* QLoRA: the base matrices, indexed as ad (the head only with nf4_output) */
    int training;               /* dropout on */
    uint64_t dropout_seed;      /* set per micro-batch: the masks are a hash of it, the layer and the element */
    struct train_linear_ops ops; /* for train_model_new_frozen */
    int max_rows, max_in, max_out; /* tokens per forward; widest layer input and output */
    float *scratch;
};

/* The name of a kind as PEFT's target_modules spells it ("wqkv", "wo", "w1", "w2", "w3", "output"). */
const char *lora_target_name(enum train_linear kind);
/* Parses a target name; -1 if unknown. */
int lora_target_parse(const char *name);

/* Adapters for base's shape (A from seed, B zero) and, with cfg->nf4, the NF4 copy of base's decoder
 * matrices (and head); those are not read again, and when base is mapped from a checkpoint their pages are
 * released (the embeddings, norms and an unquantised head stay in use by the frozen model). max_rows: the
 * most tokens per forward. */
struct lora *lora_new(const struct model *base, const struct lora_config *cfg, int max_rows, uint64_t seed,
                      char *err, size_t errlen);
void lora_free(struct lora *L);
size_t lora_base_bytes(const struct lora *L); /* bytes of the NF4 weights */

/* Training: zero the gradients; all-reduce them across processes, clip them to max_norm (global L2 norm, none
 * when <= 0) and take one AdamW step (f32 or 8-bit moments; bf16 adapters are updated in f32 and rounded),
 * returning the norm before clipping; set the parameters from an adapter of the same shape (lora_load's). */
void lora_zero_grads(struct lora *L);
double lora_optimizer_step(struct lora *L, struct adamw *o, double lr, double wd, const struct adamw_config *c,
                           float max_norm);
int lora_copy_params(struct lora *L, const struct lora *from);

/* Adapter directory (PEFT format): f32 tensors, bf16 for bf16 adapters. base_name goes to
 * base_model_name_or_path. */
int lora_save(const struct lora *L, const char *dir, const char *base_name, char *err, size_t errlen);
/* Loads DIR's adapter_config.json and adapter_model.safetensors for a model of base's shape. */
struct lora *lora_load(const char *dir, const struct model *base, char *err, size_t errlen);

/* W += scaling * B A on every adapted matrix of m: each becomes an f32 copy whose memory is returned in
 * *owned (free with free() after the model). The output head of a model with tied embeddings cannot merge;
 * L is an f32 adapter (lora_load's). */
int lora_merge(const struct lora *L, struct model *m, void **owned, char *err, size_t errlen);

#endif
