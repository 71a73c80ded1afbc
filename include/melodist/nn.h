/* Kernels: number formats, weight matrices (f32/f16/bf16/q8/q4), threaded matvec/matmul, and the
 * per-operation forward passes of a transformer. All arithmetic accumulates in f32.
 * SIMD (AVX-512 F/BW/VL/VNNI with BF16, without, else AVX2+FMA+F16C) is chosen at run time;
 * MELODIST_SIMD=avx512|avx2|none caps the level (MELODIST_NO_SIMD=1 is none: the portable C path).
 * Threads: one pool sized to the online cores (MELODIST_THREADS=N overrides). */
#ifndef MELODIST_NN_H
#define MELODIST_NN_H

#include <stddef.h>
#include <stdint.h>

/* ---- number formats ---- */
float nn_f16_to_f32(uint16_t h);
uint16_t nn_f32_to_f16(float f);   /* round to nearest even */
float nn_bf16_to_f32(uint16_t b);
uint16_t nn_f32_to_bf16(float f);  /* round to nearest even, NaN kept */

/* ---- weight matrices ----
 * Row-major [rows][cols]. Quantised formats split each row into blocks of NN_QBLOCK values with one f16
 * scale per block (scales[row * cols/NN_QBLOCK + block]):
 *   NN_Q8: int8 q, value = scale * q, scale = absmax / 127.
 *   NN_Q4: 16 bytes per block; byte j holds value j (low nibble) and value j+16 (high nibble),
 *          value = scale * (nibble - 8), scale = -(value of largest magnitude) / 8 (as ggml's Q4_0). */
#define NN_QBLOCK 32
#define NN_MAX_COLS 65536 /* longest row of a q8/q4/bf16 matrix (one token's activations are converted on the stack) */

enum nn_dtype { NN_F32, NN_F16, NN_BF16, NN_Q8, NN_Q4 };

struct nn_matrix {
    enum nn_dtype dtype;
    int rows, cols;
    const void *data;
    const uint16_t *scales; /* NN_Q8/NN_Q4 only */
};

const char *nn_dtype_name(enum nn_dtype dtype);
size_t nn_matrix_bytes(const struct nn_matrix *m); /* data + scales */
void nn_dequant_row(const struct nn_matrix *m, int row, float *out);
/* cols must be a multiple of NN_QBLOCK; q holds cols bytes (q8) or cols/2 bytes (q4). */
void nn_quantize_row_q8(const float *x, int cols, int8_t *q, uint16_t *scales);
void nn_quantize_row_q4(const float *x, int cols, uint8_t *q, uint16_t *scales);

/* y[rows] = W x (decode). For q8/q4 matrices (cols <= NN_MAX_COLS) x is first quantised to q8 blocks like the
 * weights (absmax/127, f16 scale), so each block product is an integer dot, as llama.cpp does; for bf16 matrices
 * (cols <= NN_MAX_COLS) x is first rounded to bf16 (nearest even), as llama.cpp does, so each product is exact. */
void nn_matvec(float *y, const struct nn_matrix *w, const float *x);
/* y[n][rows] = x[n][cols] W^T (prefill); n == 1 is nn_matvec. */
void nn_matmul(float *y, const struct nn_matrix *w, const float *x, int n);
float nn_dot(const float *a, const float *b, int n);

/* ---- threads ---- */
int nn_threads(void);                 /* starts the pool on first use */
void nn_set_threads(int n);           /* 0 = online cores */
/* Calls fn(ctx, begin, end, thread) on disjoint ranges covering [0, n), one per pool thread; thread < nn_threads(). */
void nn_parallel_for(int n, void (*fn)(void *ctx, int begin, int end, int thread), void *ctx);
const char *nn_simd_name(void);       /* "avx512bf16", "avx512", "avx2" or "generic" */

/* ---- operation forwards (backward twins live beside them) ---- */
void rmsnorm_forward(float *out, const float *x, const float *weight, int dim, float eps);
/* Rotate-half RoPE on nheads heads of head_dim values at position pos: pairs (i, i + head_dim/2),
 * angle pos * inv_freq[i]. */
void rope_forward(float *x, int nheads, int head_dim, int pos, const float *inv_freq);
void swiglu_forward(float *out, const float *gate, const float *up, int n); /* silu(gate) * up */
void softmax_forward(float *x, int n);

/* Causal grouped-query attention for n new tokens at positions pos..pos+n-1.
 * q: [n][n_heads*head_dim]; k_cache, v_cache: [max_seq][n_kv_heads*head_dim] already holding positions
 * 0..pos+n-1; out: [n][n_heads*head_dim]; scratch: nn_threads() * (pos+n) floats. Query head h reads
 * key/value head h / (n_heads/n_kv_heads). */
struct attention_shape {
    int n_heads, n_kv_heads, head_dim;
};
void attention_forward(float *out, const float *q, const float *k_cache, const float *v_cache,
                       const struct attention_shape *shape, int pos, int n, float *scratch);

#endif
