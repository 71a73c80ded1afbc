/* The InternLM2 decoder (HF InternLM2ForCausalLM): config, weights and run state, llama2.c style.
 * Weights come from HF safetensors checkpoints (memory-mapped; f32/f16/bf16) or from Melodist's
 * quantised checkpoints (q8/q4, see docs/model.md), or are initialised at random. */
#ifndef MELODIST_MODEL_H
#define MELODIST_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "melodist/nn.h"
#include "melodist/safetensors.h"

enum rope_scaling { ROPE_SCALING_NONE, ROPE_SCALING_LINEAR, ROPE_SCALING_DYNAMIC };

struct model_config {
    int dim;                     /* hidden_size */
    int n_layers;                /* num_hidden_layers */
    int n_heads;                 /* num_attention_heads */
    int n_kv_heads;              /* num_key_value_heads */
    int head_dim;                /* dim / n_heads */
    int hidden_dim;              /* intermediate_size */
    int vocab_size;
    int max_position_embeddings;
    float rope_theta;
    enum rope_scaling rope_scaling;
    float rope_factor;
    float rms_norm_eps;
    int tie_word_embeddings;
    int bos_token_id, eos_token_id, pad_token_id;
};

/* Parses an InternLM2 config.json. Rejects other architectures and unsupported settings with a message. */
int model_config_parse(const char *text, size_t len, struct model_config *c, char *err, size_t errlen);
/* The config as InternLM2 config.json text (malloc'd). */
char *model_config_json(const struct model_config *c);

struct model_layer {
    struct nn_matrix wqkv;   /* [(n_heads + 2*n_kv_heads)*head_dim][dim], packed per kv group: q.., k, v */
    struct nn_matrix wo;     /* [dim][n_heads*head_dim] */
    struct nn_matrix w1;     /* gate [hidden_dim][dim] */
    struct nn_matrix w3;     /* up   [hidden_dim][dim] */
    struct nn_matrix w2;     /* down [dim][hidden_dim] */
    float *attention_norm;   /* [dim] */
    float *ffn_norm;         /* [dim] */
};

struct model {
    struct model_config config;
    char *config_json;               /* the config.json text the model came with */
    struct nn_matrix tok_embeddings; /* [vocab][dim] */
    struct model_layer *layers;
    float *norm;                     /* [dim] */
    struct nn_matrix output;         /* [vocab][dim]; the embedding matrix when tied */
    struct st_set files;             /* mapped checkpoint files (loaded models) */
    void *owned;                     /* weight memory (random models) */
    float *norm_store;               /* the f32 norm vectors */
};

/* Loads DIR/config.json and DIR/model.safetensors (or its sharded index). */
int model_load(const char *dir, struct model **out, char *err, size_t errlen);
/* A model with weights uniform in [-a, a], a = std*sqrt(3), norms 1, stored as dtype. */
struct model *model_new_random(const struct model_config *c, enum nn_dtype dtype, uint64_t seed, float std);
void model_free(struct model *m);

size_t model_param_count(const struct model *m);
size_t model_weight_bytes(const struct model *m);
/* Format of the big matrices (the layer-0 wqkv's). */
enum nn_dtype model_dtype(const struct model *m);
/* Writes config.json + model.safetensors to dir with every matrix stored as dtype (f32/f16/bf16/q8/q4). */
int model_save(const struct model *m, const char *dir, enum nn_dtype dtype, char *err, size_t errlen);

/* Activations and KV cache for one sequence. */
struct model_state {
    int max_seq, max_batch;
    int pos;              /* tokens already in the cache */
    float *x, *xb, *xb2;  /* [max_batch][dim] */
    float *qkv;           /* [max_batch][(n_heads + 2*n_kv_heads)*head_dim] */
    float *q, *att;       /* [max_batch][n_heads*head_dim] */
    float *hb, *hb2;      /* [max_batch][hidden_dim] */
    float *logits;        /* [vocab] */
    float *key_cache, *value_cache; /* [n_layers][max_seq][n_kv_heads*head_dim], post-RoPE keys */
    float *scratch;       /* attention scores: threads * max_seq */
    float *inv_freq;      /* [head_dim/2] for the current call */
};

struct model_state *model_state_new(const struct model *m, int max_seq, int max_batch);
void model_state_free(struct model_state *s);

/* Runs tokens[0..n) at positions s->pos.. (in chunks of max_batch) and advances s->pos. Returns the
 * logits of the last token (valid until the next call); if all_logits is not NULL it receives
 * n * vocab_size logits. Dynamic NTK RoPE uses the sequence length at the end of this call, as HF does.
 * Returns NULL with a message for out-of-range tokens or a full context. */
const float *model_forward(const struct model *m, struct model_state *s, const int *tokens, int n,
                           float *all_logits, char *err, size_t errlen);

#endif
