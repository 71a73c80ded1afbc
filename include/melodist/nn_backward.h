/* Backward twins of the forward ops in nn.h, plus the two training-only forwards whose saved state the
 * backward needs (attention with log-sum-exp, fused softmax cross-entropy).
 *
 * Conventions: f32, row-major, T = rows (tokens). Every gradient output is ACCUMULATED (+=) so that
 * residual branches and gradient accumulation need no extra buffers; callers zero what must start at 0.
 * Weight gradients are per-parameter tensors of the same shape as the weights. */
#ifndef MELODIST_NN_BACKWARD_H
#define MELODIST_NN_BACKWARD_H

#include <stddef.h>
#include <stdint.h>

/* dwte[tokens[t]] += dout[t] for t < T; dwte is [vocab, C]. */
void embedding_backward(float *dwte, const float *dout, const int32_t *tokens, int T, int C);

/* y = w * x / sqrt(mean(x^2) + eps) per row of C. Recomputes the row statistic from x.
 * dx += d/dx, dw += d/dw. */
void rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, int T, int C,
                      float eps);

/* y = x W^T with x [T, IC], W [OC, IC]. dx += dy W (skipped when dx is NULL); dW += dy^T x. Threaded,
 * AVX2 when the CPU has it (MELODIST_NO_SIMD=1 forces the portable loops). The kernel works in place: the
 * scratch (matmul_backward_scratch floats, now 0) remains in the signature for the callers that plan it. */
size_t matmul_backward_scratch(int T, int IC, int OC);
void matmul_backward(float *dx, float *dW, const float *dy, const float *x, const float *W, int T, int IC, int OC,
                     float *scratch);

/* h = silu(a) * b, a and b [N]. da += dh * b * silu'(a); db += dh * silu(a). */
void swiglu_backward(float *da, float *db, const float *dh, const float *a, const float *b, size_t N);

/* Twin of rope_forward: the transpose of a rotation is the rotation by the opposite angle (in place). */
void rope_backward(float *dx, int nheads, int head_dim, int pos, const float *inv_freq);

/* Causal grouped-query attention over packed InternLM2 qkv rows (layout per kv group g:
 * [q head g*G .. g*G+G-1 | k head g | v head g], each D floats; G = H/KV), B sequences of T tokens.
 * Query t of a sequence sees keys start[t] .. t of the same sequence (start[] restarts at document
 * boundaries when documents are packed; start[t] = 0 gives plain causal attention).
 * out is [B*T, H*D]; lse [B*T, H] keeps log(sum exp(score)) per query and head for the backward. */
void attention_forward_train(float *out, float *lse, const float *qkv, const int32_t *start, int B, int T, int H,
                             int KV, int D);

/* dqkv += gradient w.r.t. the packed qkv (q and k parts post-RoPE), given dout [B*T, H*D] and the
 * forward's out and lse. Recomputes the probabilities row by row: no [T, T] buffer. */
void attention_backward(float *dqkv, const float *dout, const float *qkv, const float *out, const float *lse,
                        const int32_t *start, int B, int T, int H, int KV, int D);

/* Fused softmax cross-entropy over logits [T, V], in place: for every row with target >= 0 the row is
 * replaced by scale * (softmax - onehot(target)) and its loss -log p[target] is added to the return
 * value; rows with target < 0 (masked) become zero. Returns the summed loss (double, unscaled). */
double softmax_xent_backward(float *logits, const int32_t *targets, int T, int V, float scale);

#endif
