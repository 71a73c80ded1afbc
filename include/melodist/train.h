/* Training engine for InternLM2-architecture models: f32 master weights in one flat buffer (viewed as a
 * `struct model` so that the inference forward kernels and checkpoint writer apply unchanged), a training
 * forward that keeps the activations, the backward through the whole model, the packing data loader and
 * the training loop (`melodist train`, docs/training.md). */
#ifndef MELODIST_TRAIN_H
#define MELODIST_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "melodist/model.h"
#include "melodist/optim.h"
#include "melodist/tokenizer.h"

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

/* Rows of logits that exist at once in training: [N, vocab] f32 would be 190 MB at 512 x 92544. */
#define TRAIN_LOGIT_ROWS 64

/* ---- linear layers routed through a fine-tuning method (LoRA, melodist/lora.h) ---- */
enum train_linear { TRAIN_WQKV, TRAIN_WO, TRAIN_W1, TRAIN_W2, TRAIN_W3, TRAIN_OUTPUT, TRAIN_N_LINEAR };

struct train_linear_ops {
    /* y[N, w->rows] = x[N, w->cols] W^T plus the method's term, for rows row0..row0+N-1 of the micro-batch
     * (the output head runs in row chunks; a method's per-element randomness keys on the row); layer is -1
     * for the output head. */
    void (*forward)(void *ctx, int layer, enum train_linear kind, const struct nn_matrix *w, float *y,
                    const float *x, int row0, int N);
    /* dx[N, w->cols] += dy W plus the method's term, given the forward's input x; the method accumulates the
     * gradients of its own parameters. */
    void (*backward)(void *ctx, int layer, enum train_linear kind, const struct nn_matrix *w, float *dx,
                     const float *dy, const float *x, int row0, int N);
    void *ctx;
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
    float *x_out, *xnf, *logits;                 /* final residual, model.norm output, [TRAIN_LOGIT_ROWS, vocab] */
    float *dx, *dxn, *datt, *dqkv, *da, *db, *dh; /* backward scratch */
    float *mm_scratch;
    void *arena;
    size_t arena_floats;   /* activations and scratch, all in arena */
    size_t layer_act_floats; /* of which the per-layer activations */
    int recompute;         /* acts[l] share one set of buffers but x_in; the backward recomputes each layer */
    const struct train_linear_ops *linear; /* frozen models only */
    float *dnorm;                          /* frozen models: the discarded norm-weight gradient [dim] */
};

/* Plans all activation memory for micro-batches of B x T tokens; parameters start at zero. */
struct train_model *train_model_new(const struct model_config *c, int B, int T, char *err, size_t errlen);
/* recompute: the forward keeps only each layer's input (plus one layer's activations, shared), and the
 * backward runs each layer's forward again just before its backward: the same gradients, bit for bit, for
 * about one more forward of compute, and activation memory of one layer plus n_layers x N x dim. */
struct train_model *train_model_new_recompute(const struct model_config *c, int B, int T, int recompute, char *err,
                                              size_t errlen);
/* A model whose weights are base's, frozen and borrowed (any dtype; base must outlive it): no parameters
 * (n_params 0), the backward only carries gradients through the activations, and every linear layer goes
 * through ops (which may ignore the matrices it is handed and use its own copy of the weights); recompute as
 * in train_model_new_recompute (ops must then compute the same forward twice: LoRA's dropout masks do). */
struct train_model *train_model_new_frozen(const struct model *base, const struct train_linear_ops *ops, int B,
                                           int T, int recompute, char *err, size_t errlen);
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
/* Forward only: the logits [B*T, vocab] into logits (the loss functions compute them a few rows at a time). */
void train_forward_logits(struct train_model *tm, const int32_t *tokens, const int32_t *start, const int32_t *pos,
                          float *logits);
/* Forward only: the summed loss over scored targets. */
double train_forward_loss(struct train_model *tm, const int32_t *tokens, const int32_t *targets,
                          const int32_t *start, const int32_t *pos);

/* ---- data ----
 * A corpus is a list of documents of token ids, each BOS + tokens + EOS, with a per-token flag saying
 * whether the token is a training target (chat data: only the assistant's tokens). It is built once from
 * the sources into a cache file and memory-mapped:
 *   "MLTK", u32 version, u64 n_docs, u64 n_tokens, u64 doc_start[n_docs + 1], i32 tokens[n_tokens],
 *   u8 scored[n_tokens]   (little-endian). */
struct train_corpus {
    uint64_t n_docs, n_tokens;
    const uint64_t *doc_start;
    const int32_t *tokens;
    const uint8_t *scored;
    void *map;
    size_t map_size;
};

/* Tokenises the sources (directories: their .abc, .jsonl and .shard files, recursively; .abc: one document
 * per tune, skipping tunes that an index.tsv beside the file marks "test"; .txt: documents separated by
 * <|endofdoc|> lines; .jsonl: chat records, xtuner "conversation" or OpenAI "messages"; .shard: token
 * shards of the data pipeline, melodist/shard.h) and writes the
 * train and validation caches (documents drawn into validation by a seeded hash, valid_fraction of them). */
int corpus_build(const char *const *sources, size_t n_sources, const mt_tokenizer *tok, double valid_fraction,
                 uint64_t seed, const char *train_path, const char *valid_path, char *err, size_t errlen);
int corpus_open(const char *path, struct train_corpus *c, char *err, size_t errlen);
void corpus_close(struct train_corpus *c);

uint64_t train_splitmix64(uint64_t *state);

/* Position in the document stream: the order of documents is a seeded permutation per epoch. */
struct loader_pos {
    uint64_t epoch, doc, offset; /* doc: index into the epoch's order; offset: token within it */
};

/* Packs documents back to back into rows of T tokens; attention and targets never cross a document
 * boundary (start[] restarts, the last token of a document has no target). Consecutive rows overlap by
 * one token so that every token but the first of a document is a target once per epoch. */
struct train_loader {
    const struct train_corpus *c;
    uint64_t seed;
    int T, shuffle;
    struct loader_pos at;
    uint64_t *order, order_epoch;
};

int loader_init(struct train_loader *l, const struct train_corpus *c, uint64_t seed, int T, int shuffle);
void loader_free(struct train_loader *l);
/* Next row: tokens, targets (-1: not scored), start, pos, each [T]. Returns the number of targets. */
int loader_next_row(struct train_loader *l, int32_t *tokens, int32_t *targets, int32_t *start, int32_t *pos);

/* ---- the training run (melodist train --config FILE) ---- */

#define TRAIN_MAX_SOURCES 16

/* The config file, docs/training.md. Relative paths are resolved against the config file's directory. */
struct train_config {
    struct model_config model;  /* "model": InternLM2 config.json fields; vocab_size defaults to the tokenizer's */
    char init_from[4096];       /* "init_from": an HF checkpoint directory to continue from ("" = random) */
    float init_std;             /* "init_std" (random init) */
    char tokenizer[4096];       /* "tokenizer": a tokenizer.model */
    char sources[TRAIN_MAX_SOURCES][4096]; /* "data": {"sources": [...]} */
    int n_sources;
    double valid_fraction;      /* "data": {"valid_fraction"} */
    int seq_len;                /* "data": {"seq_len"} */
    int batch_size, micro_batch; /* "train": rows per optimizer step (all processes), rows per forward */
    int64_t steps;              /* "train": {"steps"} */
    struct lr_schedule schedule; /* "train": lr, min_lr, warmup_steps, decay ("cosine"|"linear"|"constant") */
    struct adamw_config adamw;  /* "train": beta1, beta2, eps */
    double weight_decay;        /* "train": applies to matrices only */
    float grad_clip;            /* "train": global-norm clip, 0 = off */
    int recompute;              /* "train": recompute each layer's activations in the backward */
    uint64_t seed;              /* "train": {"seed"}: init, data order, validation split */
    int eval_every, eval_batches; /* "eval": {"every", "batches"} (micro-batches of validation rows) */
    char out_dir[4096];         /* "checkpoint": {"dir"} (overridden by --out) */
    int save_every, keep;       /* "checkpoint": {"every", "keep"} */
    int threads;                /* "threads": 0 = all cores */
};

/* Parses the config text (path is used for messages and to resolve relative paths). */
int train_config_parse(const char *text, size_t len, const char *path, struct train_config *c, char *err,
                       size_t errlen);
int train_config_load(const char *path, struct train_config *c, char *err, size_t errlen);

/* What the loop reports after every step (progress printing is the caller's business). */
struct train_progress {
    int64_t step, steps;          /* step just finished (1-based), total */
    double loss, lr, grad_norm;
    double tokens_per_s, eta_s;
    double valid_loss;            /* NaN unless evaluated at this step */
    const char *saved;            /* checkpoint directory written at this step, or NULL */
};

struct train_options {
    const char *config_path;
    const char *out_dir;          /* NULL: the config's */
    int resume;
    volatile int *stop;           /* set asynchronously (Ctrl-C): save a checkpoint and return */
    void (*progress)(void *ctx, const struct train_progress *p); /* rank 0 only; may be NULL */
    void (*message)(void *ctx, const char *text);                 /* rank 0 only; may be NULL */
    void *ctx;
};

enum train_result { TRAIN_DONE = 0, TRAIN_FAILED = 1, TRAIN_STOPPED = 3 };

/* Runs (or resumes) training. Under mpirun each process runs this; rank 0 writes. */
enum train_result train_run(const struct train_options *o, char *err, size_t errlen);

/* ---- data-parallel processes (MPI when built with it; one process otherwise) ---- */
void dist_init(int *argc, char ***argv); /* joins MPI when started by mpirun */
void dist_finalize(void);
int dist_rank(void);
int dist_size(void);
void dist_sum_floats(float *x, size_t n);   /* in place, across processes */
void dist_sum_doubles(double *x, size_t n);
/* Non-zero when ok is non-zero on every process: ranks agree on failures and stay in step. */
int dist_all_ok(int ok);

#endif
