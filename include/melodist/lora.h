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
};

/* One adapted layer; A and B point into lora->params, their gradients at the same offsets in grads. */
struct lora_adapter {
    int in, out;
    float *A, *B; /* NULL when the layer is not a target */
};

struct lora {
    struct lora_config cfg;
    float scaling;              /* alpha / r */
    int n_layers;
    struct lora_adapter *ad;    /* layer l, kind k < TRAIN_OUTPUT at l * TRAIN_OUTPUT + k; the output head last */
    size_t n_params;
    float *params, *grads;
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

/* Adapter directory (PEFT format). base_name goes to base_model_name_or_path. */
int lora_save(const struct lora *L, const char *dir, const char *base_name, char *err, size_t errlen);
/* Loads DIR's adapter_config.json and adapter_model.safetensors for a model of base's shape. */
struct lora *lora_load(const char *dir, const struct model *base, char *err, size_t errlen);

/* W += scaling * B A on every adapted matrix of m: each becomes an f32 copy whose memory is returned in
 * *owned (free with free() after the model). The output head of a model with tied embeddings cannot merge. */
int lora_merge(const struct lora *L, struct model *m, void **owned, char *err, size_t errlen);

#endif
