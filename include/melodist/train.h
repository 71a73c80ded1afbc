/* Training engine for InternLM2-architecture models: f32 master weights in one flat buffer (viewed as a
 * `struct model` so that the inference forward kernels and checkpoint writer apply unchanged), a training
 * forward that keeps the activations, the backward through the whole model, the packing data loader and
 * the training loop (`melodist train`, docs/training.md). */
#ifndef MELODIST_TRAIN_H
#define MELODIST_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "melodist/model.h"

/* ---- the model under training ---- */

/* One parameter tensor inside the flat buffer. */
struct train_tensor {
    char name[64];  /* HF name, e.g. "model.layers.0.attention.wqkv.weight" */
    size_t offset;  /* floats into params/grads */
    size_t size;
    int rows, cols; /* cols 0 for vectors */
    int decay;      /* weight decay applies (matrices; not norms) */
};

/* Activations of one layer for B sequences of T tokens (N = B*T rows). */
struct train_layer_acts {
    float *x_in, *xn1;  /* [N, dim]: layer input, attention_norm(x_in) */
    float *qkv;         /* [N, (H+2KV)*D] packed, q and k after RoPE */
    float *att, *lse;   /* [N, H*D] attention output before wo; [N, H] log-sum-exp */
    float *x_mid, *xn2; /* [N, dim]: after the attention residual; ffn_norm(x_mid) */
    float *a, *b, *h;   /* [N, hidden]: gate w1, up w3, silu(a)*b */
};

struct train_model {
    struct model_config config;
    struct model view;     /* nn_matrix views into params (f32); never model_free'd */
    size_t n_params;
    float *params, *grads; /* [n_params] */
    struct train_tensor *tensors;
    int n_tensors;
    int B, T;              /* micro-batch shape the activations were planned for */
    float *inv_freq;       /* [head_dim/2] */
    struct train_layer_acts *acts;
    float *x_out, *xnf, *logits;                 /* final residual, model.norm output, [N, vocab] */
    float *dx, *dxn, *datt, *dqkv, *da, *db, *dh; /* backward scratch */
    float *mm_scratch;
    void *arena;
};

/* Plans all activation memory for micro-batches of B x T tokens; parameters start at zero. */
struct train_model *train_model_new(const struct model_config *c, int B, int T, char *err, size_t errlen);
void train_model_free(struct train_model *tm);
/* Parameters from model_new_random(seed, std) (uniform, norms 1). */
int train_model_init_random(struct train_model *tm, uint64_t seed, float std, char *err, size_t errlen);
/* Parameters from a loaded model of the same shape (any stored dtype, converted to f32). */
int train_model_copy_from(struct train_model *tm, const struct model *m, char *err, size_t errlen);
/* The parameters as an HF model.safetensors (f32, HF tensor names) at path (temp file + rename). */
int train_model_save(const struct train_model *tm, const char *path, char *err, size_t errlen);

/* One micro-batch: B*T tokens; targets -1 are not scored; start[i] is the first position (within its
 * sequence) that token i may attend to, pos[i] its RoPE position. Accumulates loss_scale * d(sum of
 * losses)/d(params) into grads and returns the summed loss (not scaled). */
double train_forward_backward(struct train_model *tm, const int32_t *tokens, const int32_t *targets,
                              const int32_t *start, const int32_t *pos, float loss_scale);
/* Forward only: the summed loss over scored targets. */
double train_forward_loss(struct train_model *tm, const int32_t *tokens, const int32_t *targets,
                          const int32_t *start, const int32_t *pos);

#endif
