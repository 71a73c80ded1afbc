/* AdamW (torch.optim.AdamW semantics: decoupled weight decay, bias correction), global-norm gradient
 * clipping and the learning-rate schedule. f32 master weights; optimizer moments are f32, or 8-bit as in
 * bitsandbytes' AdamW8bit. */
#ifndef MELODIST_OPTIM_H
#define MELODIST_OPTIM_H

#include <stddef.h>
#include <stdint.h>

/* Hyper-parameters are doubles, as Python floats are in PyTorch, so that the scalars derived from them
 * (1-beta1, lr*wd, bias corrections) round exactly as torch.optim.AdamW's do. */
struct adamw_config {
    double beta1, beta2, eps;
};

#define ADAMW8_BLOCK 2048

/* Moments for n parameters, all zero at step 0. */
struct adamw {
    size_t n;
    float *m, *v;         /* f32 moments, or NULL when 8-bit */
    uint8_t *qm, *qv;     /* 8-bit moments: codes of the signed (m) and unsigned (v) dynamic maps (nf4.h) */
    float *am, *av;       /* their absmax per block of ADAMW8_BLOCK parameters */
    int64_t step; /* steps taken so far */
};

int adamw_init(struct adamw *o, size_t n);
/* 8-bit moments as bitsandbytes' AdamW8bit (blockwise): 2 bytes per parameter plus 8 per block. */
int adamw_init_8bit(struct adamw *o, size_t n);
void adamw_free(struct adamw *o);

/* Advances the step counter; call once per optimizer step before the adamw_update calls of that step. */
void adamw_begin_step(struct adamw *o);

/* Updates params[0..n) whose moments start at `offset` in o, with the order of floating-point operations
 * of torch.optim.AdamW (single-tensor path):
 *   p *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *   p += -(lr / (1-b1^t)) * m / (sqrt(v) / sqrt(1-b2^t) + eps).
 * 8-bit moments follow bitsandbytes' blockwise kernel (f32 arithmetic, offset a multiple of ADAMW8_BLOCK):
 * per block m = map[qm] * am, v = umap[qv] * av; the updates above; am, av = the block's new max |m|, |v|;
 *   p += -(lr sqrt(1-b2^t) / (1-b1^t)) * m / (sqrt(v) + sqrt(1-b2^t) eps);  p *= 1 - lr*wd;
 * qm, qv = the nearest codes of m / am, v / av. */
void adamw_update(struct adamw *o, size_t offset, float *params, const float *grads, size_t n, double lr, double wd,
                  const struct adamw_config *c);

/* torch.nn.utils.clip_grad_norm_: returns the L2 norm of g[0..n) (accumulated in double) and multiplies g by
 * min(1, max_norm / (norm + 1e-6)); max_norm <= 0 leaves g as it is. */
double grad_clip(float *g, size_t n, float max_norm);
/* The factor grad_clip multiplies by for a gradient of this norm. */
float grad_clip_factor(double norm, float max_norm);

enum lr_decay { LR_COSINE, LR_LINEAR, LR_CONSTANT };

struct lr_schedule {
    float max_lr, min_lr;
    int64_t warmup_steps, total_steps;
    enum lr_decay decay;
};

/* Learning rate for optimizer step `step` (0-based): linear warmup (step+1)/warmup * max_lr, then decay
 * from max_lr to min_lr at total_steps (cosine or linear), constant min_lr beyond. */
float lr_at(const struct lr_schedule *s, int64_t step);

#endif
