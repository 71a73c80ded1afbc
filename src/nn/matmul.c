/* Matrix-vector (decode) and matrix-matrix (prefill) products over any weight format.
 *
 * f32/f16/bf16 weights: decode streams each row once through a fused convert-and-dot kernel; prefill
 * converts a tile of rows to f32 scratch once and reuses it for every token. bf16 weights meet activations
 * rounded to bf16 (as ggml's do); with AVX-512 BF16 both stay bf16 and vdpbf16ps multiplies them in place.
 * q8/q4 weights: the activations are quantised to q8 blocks first (as ggml does), so each block's dot
 * product is an integer one, scaled by weight scale * activation scale.
 * Kernel sets: portable C, AVX2 (+FMA, F16C), AVX-512 (F, BW, VL, VNNI) and AVX-512 with BF16, the best the
 * processor has unless MELODIST_SIMD caps it. Rows are split across the thread pool. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/nn.h"

/* Activations quantised to q8 blocks: q [n][cols], scales [n][cols / NN_QBLOCK] (the f16 scales of
 * nn_quantize_row_q8, widened once to f32), offsets = scale * 8 * (sum of the block's q): q4 kernels may
 * multiply by the unsigned nibbles and subtract the 8 afterwards. */
struct qact {
    int8_t *q;
    float *scales, *offsets;
    size_t cols;
    /* AVX-512 VNNI only (NULL otherwise), per 4-value group g of each row: bias[g] = -K * (sum of the group's
     * q), K = 128 for q8 weights and 8 for q4, and gscale[g] = the scale of the group's block. */
    int32_t *bias;
    float *gscale;
    int32_t *block_bias; /* -K * (sum of the block's q) */
    /* q4 weights: each 128 values (4 blocks) permuted to the nibble order, the 4 blocks' 16 values of the low
     * nibbles and then those of the high ones; per 32-bit lane l of a chunk (block l / 4) the bias -8 * sum of
     * its 8 values and the block's scale. Rows a->cols apart, resp. a->cols / 8. */
    int8_t *q4x;
    int32_t *q4bias;
    float *q4scale;
};

#define QDOT_MAX 4 /* tokens per qdot call */

struct kernels {
    const char *name;
    float (*dot)(const float *a, const float *b, int n);
    void (*dot4)(const float *const rows[4], const float *x, int n, float out[4]);
    /* out[t][r] = rows[r] . xs[t] for 4 rows and `tokens` tokens (as many as the registers hold accumulators
     * for): each loaded value serves several products */
    void (*dot4xn)(const float *const rows[4], const float *const xs[], int n, float out[][4]);
    int tokens;
    float (*row_dot)(const struct nn_matrix *w, int row, const float *x);   /* f32/f16/bf16 */
    void (*dequant)(const struct nn_matrix *w, int row, float *out);         /* f32/f16/bf16 */
    /* q8/q4 row `row` against activation rows t0..t0+nt-1 (nt <= QDOT_MAX) */
    void (*qdot)(const struct nn_matrix *w, int row, const struct qact *a, int t0, int nt, float *out);
    int group_act; /* qdot reads qact.bias, qact.gscale and qact.block_bias */
    /* out[t][r]: rows r0..r0+3 against tokens t0..t0+3, or NULL (qdot row by row). Not for decode: four rows
     * read side by side from memory stream at a third of the speed of one row at a time. */
    void (*qdot4x4)(const struct nn_matrix *w, int r0, const struct qact *a, int t0, float out[4][4]);
    /* prefill: rows r0..r0+15 repacked into scratch (repack_bytes); qdot32 meets two such tiles (32 rows) with 4
     * tokens at a time; or NULL */
    void (*repack16)(const struct nn_matrix *w, int r0, void *scratch);
    void (*qdot32)(const void *scratch, size_t blocks, const struct qact *a, int t0, float *y, size_t ystride);
    /* bf16 weights against activations packed as bf16 (to_bf16), or NULL: the f32 kernels above then meet the
     * activations rounded to bf16 as floats. bf16_dot4xn: 4 rows x nt <= tokens tokens, out[t][r]. */
    void (*to_bf16)(const float *x, int n, uint16_t *out);
    float (*bf16_dot)(const uint16_t *w, const uint16_t *x, int n);
    void (*bf16_dot4xn)(const uint16_t *const rows[4], const uint16_t *const xs[], int nt, int n, float out[][4]);
    /* nn_quantize_row_q8 for the activations of q8/q4 products, bit for bit */
    void (*quantize_q8)(const float *x, int cols, int8_t *q, uint16_t *scales);
};

/* Prefill of q8/q4 rows 32 at a time: each 16 rows are first repacked (per thread, once per product) so that
 * 32-bit lane j of a register holds 4 consecutive unsigned weights u = w + K of row j. One vpdpbusd with the
 * token's matching 4 activations broadcast then advances all 16 rows, and a whole block's integer dot builds
 * up in each lane before it meets the float scales: 8 vpdpbusd + 3 float operations per block, row group and
 * token, where qdot4 needs 4 float operations per 2 blocks, row and token. */
#define REPACK_ROWS 16

/* Scratch layout for `blocks` blocks: u[blocks][8 groups][16 rows][4], then the weight scales [blocks][16]. */
static size_t repack_bytes(size_t blocks)
{
    return blocks * (NN_QBLOCK * REPACK_ROWS + REPACK_ROWS * sizeof(float));
}

/* ---- portable kernels ---- */

static float dot_generic(const float *a, const float *b, int n)
{
    float s = 0;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static void dot4_generic(const float *const r[4], const float *x, int n, float out[4])
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int i = 0; i < n; i++) {
        s0 += r[0][i] * x[i];
        s1 += r[1][i] * x[i];
        s2 += r[2][i] * x[i];
        s3 += r[3][i] * x[i];
    }
    out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;
}

static void dot4x3_generic(const float *const rows[4], const float *const xs[3], int n, float out[3][4])
{
    for (int t = 0; t < 3; t++)
        dot4_generic(rows, xs[t], n, out[t]);
}

static float row_dot_generic(const struct nn_matrix *w, int row, const float *x)
{
    size_t n = (size_t)w->cols, base = (size_t)row * n;
    const uint16_t *p = (const uint16_t *)w->data + base;
    float s = 0;
    if (w->dtype == NN_F32)
        return dot_generic((const float *)w->data + base, x, (int)n);
    if (w->dtype == NN_F16)
        for (size_t i = 0; i < n; i++)
            s += nn_f16_to_f32(p[i]) * x[i];
    else
        for (size_t i = 0; i < n; i++)
            s += nn_bf16_to_f32(p[i]) * x[i];
    return s;
}

static void qdot_generic(const struct nn_matrix *w, int row, const struct qact *a, int t0, int nt, float *out)
{
    size_t n = (size_t)w->cols, base = (size_t)row * n;
    const uint16_t *sw = w->scales + base / NN_QBLOCK;
    for (int t = 0; t < nt; t++) {
        const int8_t *qx = a->q + (size_t)(t0 + t) * a->cols;
        const float *sx = a->scales + (size_t)(t0 + t) * (a->cols / NN_QBLOCK);
        float s = 0;
        for (size_t b = 0; b < n / NN_QBLOCK; b++, qx += NN_QBLOCK) {
            int sum = 0;
            if (w->dtype == NN_Q8) {
                const int8_t *q = (const int8_t *)w->data + base + b * NN_QBLOCK;
                for (int i = 0; i < NN_QBLOCK; i++)
                    sum += q[i] * qx[i];
            } else {
                const uint8_t *q = (const uint8_t *)w->data + (base + b * NN_QBLOCK) / 2;
                for (int j = 0; j < NN_QBLOCK / 2; j++)
                    sum += ((q[j] & 0xF) - 8) * qx[j] + ((q[j] >> 4) - 8) * qx[j + NN_QBLOCK / 2];
            }
            s += nn_f16_to_f32(sw[b]) * sx[b] * (float)sum;
        }
        out[t] = s;
    }
}

static const struct kernels generic = {"generic",      dot_generic,    dot4_generic, dot4x3_generic, 3,
                                       row_dot_generic, nn_dequant_row, qdot_generic, 0, NULL, NULL, NULL,
                                       NULL,            NULL,           NULL,         nn_quantize_row_q8};

/* ---- AVX2 + FMA + F16C kernels ---- */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SIMD __attribute__((target("avx2,fma,f16c")))
#define HAVE_SIMD 1

SIMD static float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

SIMD static float dot_avx2(const float *a, const float *b, int n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    float s = hsum(_mm256_add_ps(s0, s1));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

SIMD static void dot4_avx2(const float *const r[4], const float *x, int n, float out[4])
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 xv = _mm256_loadu_ps(x + i);
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(r[0] + i), xv, s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(r[1] + i), xv, s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(r[2] + i), xv, s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(r[3] + i), xv, s3);
    }
    out[0] = hsum(s0), out[1] = hsum(s1), out[2] = hsum(s2), out[3] = hsum(s3);
    for (; i < n; i++)
        for (int k = 0; k < 4; k++)
            out[k] += r[k][i] * x[i];
}

/* Twelve accumulators written out: the compiler keeps them in registers only when no loop indexes them. */
SIMD static void dot4x3_avx2(const float *const r[4], const float *const xs[3], int n, float out[3][4])
{
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00,
           a20 = a00, a21 = a00, a22 = a00, a23 = a00;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x0 = _mm256_loadu_ps(xs[0] + i), x1 = _mm256_loadu_ps(xs[1] + i), x2 = _mm256_loadu_ps(xs[2] + i);
        __m256 w = _mm256_loadu_ps(r[0] + i);
        a00 = _mm256_fmadd_ps(w, x0, a00), a10 = _mm256_fmadd_ps(w, x1, a10), a20 = _mm256_fmadd_ps(w, x2, a20);
        w = _mm256_loadu_ps(r[1] + i);
        a01 = _mm256_fmadd_ps(w, x0, a01), a11 = _mm256_fmadd_ps(w, x1, a11), a21 = _mm256_fmadd_ps(w, x2, a21);
        w = _mm256_loadu_ps(r[2] + i);
        a02 = _mm256_fmadd_ps(w, x0, a02), a12 = _mm256_fmadd_ps(w, x1, a12), a22 = _mm256_fmadd_ps(w, x2, a22);
        w = _mm256_loadu_ps(r[3] + i);
        a03 = _mm256_fmadd_ps(w, x0, a03), a13 = _mm256_fmadd_ps(w, x1, a13), a23 = _mm256_fmadd_ps(w, x2, a23);
    }
    out[0][0] = hsum(a00), out[0][1] = hsum(a01), out[0][2] = hsum(a02), out[0][3] = hsum(a03);
    out[1][0] = hsum(a10), out[1][1] = hsum(a11), out[1][2] = hsum(a12), out[1][3] = hsum(a13);
    out[2][0] = hsum(a20), out[2][1] = hsum(a21), out[2][2] = hsum(a22), out[2][3] = hsum(a23);
    for (; i < n; i++)
        for (int t = 0; t < 3; t++)
            for (int k = 0; k < 4; k++)
                out[t][k] += r[k][i] * xs[t][i];
}

SIMD static __m256 load_half(const uint16_t *p, int bf16)
{
    __m128i h = _mm_loadu_si128((const __m128i *)p);
    if (!bf16)
        return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

SIMD static float row_dot_avx2(const struct nn_matrix *w, int row, const float *x)
{
    size_t n = (size_t)w->cols, base = (size_t)row * n, i = 0;
    if (w->dtype == NN_F32)
        return dot_avx2((const float *)w->data + base, x, (int)n);
    const uint16_t *p = (const uint16_t *)w->data + base;
    int bf16 = w->dtype == NN_BF16;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(load_half(p + i, bf16), _mm256_loadu_ps(x + i), s0);
        s1 = _mm256_fmadd_ps(load_half(p + i + 8, bf16), _mm256_loadu_ps(x + i + 8), s1);
        s2 = _mm256_fmadd_ps(load_half(p + i + 16, bf16), _mm256_loadu_ps(x + i + 16), s2);
        s3 = _mm256_fmadd_ps(load_half(p + i + 24, bf16), _mm256_loadu_ps(x + i + 24), s3);
    }
    float s = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++)
        s += (bf16 ? nn_bf16_to_f32(p[i]) : nn_f16_to_f32(p[i])) * x[i];
    return s;
}

SIMD static void dequant_avx2(const struct nn_matrix *w, int row, float *out)
{
    size_t n = (size_t)w->cols, i = 0;
    if (w->dtype == NN_F32) {
        nn_dequant_row(w, row, out);
        return;
    }
    const uint16_t *p = (const uint16_t *)w->data + (size_t)row * n;
    int bf16 = w->dtype == NN_BF16;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, load_half(p + i, bf16));
    for (; i < n; i++)
        out[i] = bf16 ? nn_bf16_to_f32(p[i]) : nn_f16_to_f32(p[i]);
}

/* Block products are integer: maddubs needs an unsigned operand, so the weights' signs move onto the
 * activations (|w| * sign(w)x); |w| <= 127 keeps the 16-bit pair sums exact. */
/* Weight block b of a q8/q4 row as 32 signed bytes. */
/* Integer block products with maddubs, which takes one unsigned and one signed operand:
 *   q8: |w| times the activations carrying w's signs (|w| <= 127 keeps the 16-bit pair sums exact);
 *   q4: the nibbles 0..15 as they are (pair sums <= 2*15*128), the "- 8" applied later through the offsets. */
struct wblock {
    __m256i u, sign;
};

static inline __attribute__((always_inline)) SIMD struct wblock weight_block(const struct nn_matrix *w, size_t base,
                                                                           size_t b, int q4)
{
    struct wblock wb;
    if (!q4) {
        wb.sign = _mm256_loadu_si256((const __m256i *)((const int8_t *)w->data + base + b * NN_QBLOCK));
        wb.u = _mm256_sign_epi8(wb.sign, wb.sign);
        return wb;
    }
    __m128i bytes = _mm_loadu_si128((const __m128i *)((const uint8_t *)w->data + (base + b * NN_QBLOCK) / 2));
    const __m128i mask = _mm_set1_epi8(0xF);
    wb.u = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(bytes, 4), mask), _mm_and_si128(bytes, mask));
    wb.sign = wb.u;
    return wb;
}

static inline __attribute__((always_inline)) SIMD __m256 block_dot(struct wblock wb, const int8_t *x, int q4)
{
    __m256i xv = _mm256_loadu_si256((const __m256i *)x);
    __m256i p16 = _mm256_maddubs_epi16(wb.u, q4 ? xv : _mm256_sign_epi8(xv, wb.sign));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

/* Each weight block is loaded/unpacked once and meets 1 or QDOT_MAX (= 4) token blocks. Instantiated once
 * for q8 and once for q4 (q4 is a constant after inlining). */
static inline __attribute__((always_inline)) SIMD void qdot_avx2_format(const struct nn_matrix *w, int row,
                                                                      const struct qact *a, int t0, int nt,
                                                                      float *out, int q4)
{
    size_t n = (size_t)w->cols, base = (size_t)row * n, blocks = n / NN_QBLOCK, ss = a->cols / NN_QBLOCK;
    const uint16_t *sw = w->scales + base / NN_QBLOCK;
    const int8_t *x = a->q + (size_t)t0 * a->cols;
    const float *sx = a->scales + (size_t)t0 * ss, *ox = a->offsets + (size_t)t0 * ss;
    if (nt != QDOT_MAX) {
        for (int t = 0; t < nt; t++) {
            __m256 acc = _mm256_setzero_ps();
            float offset = 0;
            for (size_t b = 0; b < blocks; b++) {
                float dw = _cvtsh_ss(sw[b]);
                __m256 s = block_dot(weight_block(w, base, b, q4), x + t * a->cols + b * NN_QBLOCK, q4);
                acc = _mm256_fmadd_ps(_mm256_set1_ps(dw * sx[t * ss + b]), s, acc);
                if (q4)
                    offset += dw * ox[t * ss + b];
            }
            out[t] = hsum(acc) - offset;
        }
        return;
    }
    const size_t c = a->cols;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    float o0 = 0, o1 = 0, o2 = 0, o3 = 0;
    for (size_t b = 0; b < blocks; b++) {
        struct wblock wb = weight_block(w, base, b, q4);
        const int8_t *xb = x + b * NN_QBLOCK;
        float dw = _cvtsh_ss(sw[b]);
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(dw * sx[b]), block_dot(wb, xb, q4), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(dw * sx[ss + b]), block_dot(wb, xb + c, q4), acc1);
        acc2 = _mm256_fmadd_ps(_mm256_set1_ps(dw * sx[2 * ss + b]), block_dot(wb, xb + 2 * c, q4), acc2);
        acc3 = _mm256_fmadd_ps(_mm256_set1_ps(dw * sx[3 * ss + b]), block_dot(wb, xb + 3 * c, q4), acc3);
        if (q4) {
            o0 += dw * ox[b], o1 += dw * ox[ss + b], o2 += dw * ox[2 * ss + b], o3 += dw * ox[3 * ss + b];
        }
    }
    out[0] = hsum(acc0) - o0, out[1] = hsum(acc1) - o1, out[2] = hsum(acc2) - o2, out[3] = hsum(acc3) - o3;
}

SIMD static void qdot_avx2(const struct nn_matrix *w, int row, const struct qact *a, int t0, int nt, float *out)
{
    if (w->dtype == NN_Q4)
        qdot_avx2_format(w, row, a, t0, nt, out, 1);
    else
        qdot_avx2_format(w, row, a, t0, nt, out, 0);
}

static const struct kernels avx2 = {"avx2", dot_avx2, dot4_avx2, dot4x3_avx2, 3, row_dot_avx2, dequant_avx2, qdot_avx2, 0, NULL, NULL, NULL,
                                    NULL, NULL, NULL, nn_quantize_row_q8};
/* ---- AVX-512 kernels (F, BW, VL, VNNI): 16 floats or 64 int8 per register ---- */
#define SIMD512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

/* Bytes of weights asked for ahead of the decode loop: one core's hardware prefetching keeps too few lines in
 * flight (32768x2048 q8 matvec from memory, 1 thread: 21-24 GMAC/s without, 30-37 with 8 KiB; 2-4 KiB gain
 * less, q4 is bound by its unpacking either way; bf16 15-18 -> 18-21). */
#define PREFETCH_AHEAD 8192

/* Lanes i..i+15 still inside n: the last, partial step of every loop is a masked one. */
SIMD512 static __mmask16 mask16(int n, int i)
{
    return n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
}

SIMD512 static float dot_avx512(const float *a, const float *b, int n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i < n; i += 16) {
        __mmask16 m = mask16(n, i);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

SIMD512 static void dot4_avx512(const float *const r[4], const float *x, int n, float out[4])
{
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = mask16(n, i);
        __m512 xv = _mm512_maskz_loadu_ps(m, x + i);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, r[0] + i), xv, s0);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, r[1] + i), xv, s1);
        s2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, r[2] + i), xv, s2);
        s3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, r[3] + i), xv, s3);
    }
    out[0] = _mm512_reduce_add_ps(s0), out[1] = _mm512_reduce_add_ps(s1);
    out[2] = _mm512_reduce_add_ps(s2), out[3] = _mm512_reduce_add_ps(s3);
}

/* 24 accumulators, 6 activation vectors and a weight vector: 31 of the 32 registers (the loops unrolled so
 * that the arrays stay in registers). */
SIMD512 static void dot4x6_avx512(const float *const r[4], const float *const xs[6], int n, float out[6][4])
{
    __m512 acc[6][4];
#pragma GCC unroll 6
    for (int t = 0; t < 6; t++)
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++)
            acc[t][q] = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = mask16(n, i);
        __m512 x[6];
#pragma GCC unroll 6
        for (int t = 0; t < 6; t++)
            x[t] = _mm512_maskz_loadu_ps(m, xs[t] + i);
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            __m512 w = _mm512_maskz_loadu_ps(m, r[q] + i);
#pragma GCC unroll 6
            for (int t = 0; t < 6; t++)
                acc[t][q] = _mm512_fmadd_ps(w, x[t], acc[t][q]);
        }
    }
#pragma GCC unroll 6
    for (int t = 0; t < 6; t++)
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++)
            out[t][q] = _mm512_reduce_add_ps(acc[t][q]);
}

SIMD512 static __m512 load_half16(const uint16_t *p, __mmask16 m, int bf16)
{
    __m256i h = _mm256_maskz_loadu_epi16(m, p);
    if (!bf16)
        return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

SIMD512 static float row_dot_avx512(const struct nn_matrix *w, int row, const float *x)
{
    int n = w->cols, i = 0;
    size_t base = (size_t)row * (size_t)n;
    if (w->dtype == NN_F32)
        return dot_avx512((const float *)w->data + base, x, n);
    const uint16_t *p = (const uint16_t *)w->data + base;
    int bf16 = w->dtype == NN_BF16;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (; i + 64 <= n; i += 64) {
        _mm_prefetch((const char *)(p + i) + PREFETCH_AHEAD, _MM_HINT_T0);
        _mm_prefetch((const char *)(p + i) + PREFETCH_AHEAD + 64, _MM_HINT_T0);
        s0 = _mm512_fmadd_ps(load_half16(p + i, 0xFFFF, bf16), _mm512_loadu_ps(x + i), s0);
        s1 = _mm512_fmadd_ps(load_half16(p + i + 16, 0xFFFF, bf16), _mm512_loadu_ps(x + i + 16), s1);
        s2 = _mm512_fmadd_ps(load_half16(p + i + 32, 0xFFFF, bf16), _mm512_loadu_ps(x + i + 32), s2);
        s3 = _mm512_fmadd_ps(load_half16(p + i + 48, 0xFFFF, bf16), _mm512_loadu_ps(x + i + 48), s3);
    }
    for (; i < n; i += 16) {
        __mmask16 m = mask16(n, i);
        s0 = _mm512_fmadd_ps(load_half16(p + i, m, bf16), _mm512_maskz_loadu_ps(m, x + i), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

SIMD512 static void dequant_avx512(const struct nn_matrix *w, int row, float *out)
{
    int n = w->cols;
    if (w->dtype == NN_F32) {
        nn_dequant_row(w, row, out);
        return;
    }
    const uint16_t *p = (const uint16_t *)w->data + (size_t)row * (size_t)n;
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = mask16(n, i);
        _mm512_mask_storeu_ps(out + i, m, load_half16(p + i, m, w->dtype == NN_BF16));
    }
}

/* Two weight blocks (64 values) as unsigned bytes u with w = u - K: q8 flips the sign bit (K = 128), q4 keeps
 * the nibbles (K = 8). vpdpbusd then sums u * x over groups of 4 onto the group's bias -K * sum(x), which gives
 * the exact integer w . x per group; nblocks = 1 for the last block of an odd count. */
static inline __attribute__((always_inline)) SIMD512 __m512i weight_chunk(const struct nn_matrix *w, size_t base,
                                                                          size_t b, int nblocks, int q4)
{
    if (!q4) {
        __mmask64 m = nblocks == 2 ? ~(__mmask64)0 : (__mmask64)0xFFFFFFFFu;
        __m512i q = _mm512_maskz_loadu_epi8(m, (const int8_t *)w->data + base + b * NN_QBLOCK);
        return _mm512_xor_si512(q, _mm512_set1_epi8((char)0x80));
    }
    /* 32 bytes = block b's 16 then block b+1's 16; each block's low nibbles are its values 0..15 and its high
     * nibbles 16..31, so 128-bit lanes [b, b, b+1, b+1] with the odd lanes shifted by 4 give the value order. */
    __m256i bytes = _mm256_maskz_loadu_epi8(nblocks == 2 ? 0xFFFFFFFFu : 0xFFFFu,
                                            (const uint8_t *)w->data + (base + b * NN_QBLOCK) / 2);
    __m512i z = _mm512_castsi256_si512(bytes);
    z = _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(1, 1, 0, 0));
    z = _mm512_mask_srli_epi16(z, 0xFF00FF00u, z, 4);
    return _mm512_and_si512(z, _mm512_set1_epi8(0xF));
}

/* The weight scales of blocks b and b+1 (0 past the row's end), 8 lanes each. */
static inline __attribute__((always_inline)) SIMD512 __m512 scale_chunk(const uint16_t *sw, size_t b, int nblocks)
{
    __m128i lo = _mm_set1_epi16((short)sw[b]), hi = nblocks == 2 ? _mm_set1_epi16((short)sw[b + 1]) : _mm_setzero_si128();
    return _mm512_cvtph_ps(_mm256_set_m128i(hi, lo));
}

/* Each 64-value weight chunk from block b0 on is unpacked once and meets nt (a constant after inlining) token
 * rows. */
static inline __attribute__((always_inline)) SIMD512 void qdot_avx512_tokens(const struct nn_matrix *w, int row,
                                                                             const struct qact *a, int t0,
                                                                             int nt, size_t b0, float *out, int q4)
{
    size_t n = (size_t)w->cols, base = (size_t)row * n, blocks = n / NN_QBLOCK, c = a->cols;
    const uint16_t *sw = w->scales + base / NN_QBLOCK;
    const int8_t *x = a->q + (size_t)t0 * c;
    const int32_t *bias = a->bias + (size_t)t0 * (c / 4);
    const float *gs = a->gscale + (size_t)t0 * (c / 4);
    __m512 acc[QDOT_MAX];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm512_setzero_ps();
    for (size_t b = b0; b < blocks; b += 2) {
        int nb = blocks - b >= 2 ? 2 : 1;
        __mmask64 mx = nb == 2 ? ~(__mmask64)0 : (__mmask64)0xFFFFFFFFu;
        __mmask16 mg = nb == 2 ? (__mmask16)0xFFFF : (__mmask16)0xFF;
        _mm_prefetch((const char *)w->data + (base + b * NN_QBLOCK) / (q4 ? 2 : 1) + PREFETCH_AHEAD, _MM_HINT_T0);
        __m512i u = weight_chunk(w, base, b, nb, q4);
        __m512 ws = scale_chunk(sw, b, nb);
        size_t g = b * NN_QBLOCK / 4;
        for (int t = 0; t < nt; t++) {
            __m512i xv = _mm512_maskz_loadu_epi8(mx, x + t * c + b * NN_QBLOCK);
            __m512i dot = _mm512_dpbusd_epi32(_mm512_maskz_loadu_epi32(mg, bias + t * (c / 4) + g), u, xv);
            __m512 scale = _mm512_mul_ps(ws, _mm512_maskz_loadu_ps(mg, gs + t * (c / 4) + g));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc[t]);
        }
    }
    for (int t = 0; t < nt; t++)
        out[t] = _mm512_reduce_add_ps(acc[t]);
}

/* Rows r0..r0+3 against tokens t0..t0+3: every unpacked weight chunk meets four tokens and every loaded token
 * chunk four rows, which halves the loads per product of qdot_avx512_tokens (loads are what bound it). */
static inline __attribute__((always_inline)) SIMD512 void qdot4x4_avx512_format(const struct nn_matrix *w, int r0,
                                                                                const struct qact *a, int t0,
                                                                                float out[4][4], int q4)
{
    size_t n = (size_t)w->cols, blocks = n / NN_QBLOCK, c = a->cols, gc = c / 4;
    const int8_t *x = a->q + (size_t)t0 * c;
    const int32_t *bias = a->bias + (size_t)t0 * gc;
    const float *gs = a->gscale + (size_t)t0 * gc;
    __m512 acc[4][4];
    /* the loops unrolled so that acc stays in registers */
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++)
            acc[r][t] = _mm512_setzero_ps();
    for (size_t b = 0; b < blocks; b += 2) {
        int nb = blocks - b >= 2 ? 2 : 1;
        __mmask64 mx = nb == 2 ? ~(__mmask64)0 : (__mmask64)0xFFFFFFFFu;
        __mmask16 mg = nb == 2 ? (__mmask16)0xFFFF : (__mmask16)0xFF;
        size_t g = b * NN_QBLOCK / 4;
        __m512i u[4];
        __m512 ws[4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            u[r] = weight_chunk(w, (size_t)(r0 + r) * n, b, nb, q4);
            ws[r] = scale_chunk(w->scales + (size_t)(r0 + r) * blocks, b, nb);
        }
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++) {
            __m512i xv = _mm512_maskz_loadu_epi8(mx, x + t * c + b * NN_QBLOCK);
            __m512i bv = _mm512_maskz_loadu_epi32(mg, bias + t * gc + g);
            __m512 sv = _mm512_maskz_loadu_ps(mg, gs + t * gc + g);
#pragma GCC unroll 4
            for (int r = 0; r < 4; r++) {
                __m512 d = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(bv, u[r], xv));
                acc[r][t] = _mm512_fmadd_ps(d, _mm512_mul_ps(ws[r], sv), acc[r][t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++)
            out[t][r] = _mm512_reduce_add_ps(acc[r][t]);
}

SIMD512 static void qdot4x4_avx512(const struct nn_matrix *w, int r0, const struct qact *a, int t0, float out[4][4])
{
    if (w->dtype == NN_Q4)
        qdot4x4_avx512_format(w, r0, a, t0, out, 1);
    else
        qdot4x4_avx512_format(w, r0, a, t0, out, 0);
}

/* q4 decode over 128-value chunks (4 blocks) of activations permuted to the nibble order (qact.q4x): one load
 * of 64 weight bytes gives the 4 blocks' low nibbles (values 0..15 of each) and, shifted, their high ones
 * (16..31); lanes 4k..4k+3 of both belong to block k, so one scale vector and one integer sum serve both. */
SIMD512 static float qdot_q4_chunks(const struct nn_matrix *w, int row, const struct qact *a, int t, size_t chunks)
{
    size_t n = (size_t)w->cols, base = (size_t)row * n, c8 = a->cols / 8;
    const uint8_t *q = (const uint8_t *)w->data + base / 2;
    const uint16_t *sw = w->scales + base / NN_QBLOCK;
    const int8_t *x = a->q4x + (size_t)t * a->cols;
    const int32_t *bias = a->q4bias + (size_t)t * c8;
    const float *gs = a->q4scale + (size_t)t * c8;
    const __m512i mask = _mm512_set1_epi8(0xF);
    const __m256i spread = _mm256_setr_epi16(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    __m512 acc = _mm512_setzero_ps();
    for (size_t ch = 0; ch < chunks; ch++) {
        _mm_prefetch((const char *)q + ch * 64 + PREFETCH_AHEAD, _MM_HINT_T0);
        __m512i z = _mm512_loadu_si512(q + ch * 64);
        __m512i lo = _mm512_and_si512(z, mask), hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), mask);
        __m512i d = _mm512_loadu_si512(bias + ch * 16);
        d = _mm512_dpbusd_epi32(d, lo, _mm512_loadu_si512(x + ch * 128));
        d = _mm512_dpbusd_epi32(d, hi, _mm512_loadu_si512(x + ch * 128 + 64));
        __m128i s4 = _mm_loadl_epi64((const __m128i *)(sw + ch * 4));
        __m512 ws = _mm512_cvtph_ps(_mm256_permutexvar_epi16(spread, _mm256_castsi128_si256(s4)));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(ws, _mm512_loadu_ps(gs + ch * 16)), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

SIMD512 static void qdot_avx512(const struct nn_matrix *w, int row, const struct qact *a, int t0, int nt, float *out)
{
    int q4 = w->dtype == NN_Q4;
    if (nt == QDOT_MAX && q4)
        qdot_avx512_tokens(w, row, a, t0, QDOT_MAX, 0, out, 1);
    else if (nt == QDOT_MAX)
        qdot_avx512_tokens(w, row, a, t0, QDOT_MAX, 0, out, 0);
    else if (q4)
        for (int t = 0; t < nt; t++) {
            size_t chunks = (size_t)w->cols / (4 * NN_QBLOCK);
            float rest;
            qdot_avx512_tokens(w, row, a, t0 + t, 1, 4 * chunks, &rest, 1);
            out[t] = qdot_q4_chunks(w, row, a, t0 + t, chunks) + rest;
        }
    else
        for (int t = 0; t < nt; t++)
            qdot_avx512_tokens(w, row, a, t0 + t, 1, 0, out + t, 0);
}

SIMD512 static void repack16_avx512(const struct nn_matrix *w, int r0, void *scratch)
{
    size_t n = (size_t)w->cols, blocks = n / NN_QBLOCK;
    uint8_t *u = scratch;
    float *ws = (float *)(u + blocks * NN_QBLOCK * REPACK_ROWS);
    for (int j = 0; j < REPACK_ROWS; j++) {
        size_t base = (size_t)(r0 + j) * n;
        const uint16_t *sw = w->scales + base / NN_QBLOCK;
        for (size_t b = 0; b < blocks; b++) {
            uint8_t v[NN_QBLOCK];
            if (w->dtype == NN_Q8) {
                __m256i q = _mm256_loadu_si256((const __m256i *)((const int8_t *)w->data + base + b * NN_QBLOCK));
                _mm256_storeu_si256((__m256i *)v, _mm256_xor_si256(q, _mm256_set1_epi8((char)0x80)));
            } else {
                __m128i q = _mm_loadu_si128((const __m128i *)((const uint8_t *)w->data + (base + b * NN_QBLOCK) / 2));
                const __m128i mask = _mm_set1_epi8(0xF);
                _mm_storeu_si128((__m128i *)v, _mm_and_si128(q, mask));
                _mm_storeu_si128((__m128i *)(v + 16), _mm_and_si128(_mm_srli_epi16(q, 4), mask));
            }
            for (int g = 0; g < NN_QBLOCK / 4; g++)
                memcpy(u + ((b * (NN_QBLOCK / 4) + g) * REPACK_ROWS + j) * 4, v + 4 * g, 4);
            ws[b * REPACK_ROWS + j] = _cvtsh_ss(sw[b]);
        }
    }
}

/* y[t][0..31] for tokens t0..t0+3 against two repacked tiles, one after the other in scratch (y rows ystride
 * apart): each broadcast group of 4 activations meets both tiles, which halves the broadcasts per vpdpbusd
 * (they, not the multiplications, bound one tile at a time; 1 thread, 2048x2048, 64 tokens: q8 145 -> 165, q4
 * 152 -> 185 GMAC/s). */
SIMD512 static void qdot32_avx512(const void *scratch, size_t blocks, const struct qact *a, int t0, float *y,
                                  size_t ystride)
{
    const uint8_t *u[2] = {scratch, (const uint8_t *)scratch + repack_bytes(blocks)};
    const float *ws[2] = {(const float *)(u[0] + blocks * NN_QBLOCK * REPACK_ROWS),
                          (const float *)(u[1] + blocks * NN_QBLOCK * REPACK_ROWS)};
    size_t c = a->cols, nb = c / NN_QBLOCK;
    const int8_t *x = a->q + (size_t)t0 * c;
    const int32_t *bias = a->block_bias + (size_t)t0 * nb;
    const float *sx = a->scales + (size_t)t0 * nb;
    __m512 acc[4][2];
#pragma GCC unroll 4
    for (int t = 0; t < 4; t++)
        acc[t][0] = acc[t][1] = _mm512_setzero_ps();
    for (size_t b = 0; b < blocks; b++) {
        __m512i wv[2][NN_QBLOCK / 4];
        __m512 wsv[2];
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
#pragma GCC unroll 8
            for (int g = 0; g < NN_QBLOCK / 4; g++)
                wv[h][g] = _mm512_loadu_si512(u[h] + (b * (NN_QBLOCK / 4) + g) * 64);
            wsv[h] = _mm512_loadu_ps(ws[h] + b * REPACK_ROWS);
        }
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++) {
            const int8_t *xb = x + t * c + b * NN_QBLOCK;
            int32_t xg[NN_QBLOCK / 4];
            memcpy(xg, xb, sizeof xg);
            __m512i d0 = _mm512_set1_epi32(bias[t * nb + b]), d1 = d0;
#pragma GCC unroll 8
            for (int g = 0; g < NN_QBLOCK / 4; g++) {
                __m512i xv = _mm512_set1_epi32(xg[g]);
                d0 = _mm512_dpbusd_epi32(d0, wv[0][g], xv);
                d1 = _mm512_dpbusd_epi32(d1, wv[1][g], xv);
            }
            __m512 st = _mm512_set1_ps(sx[t * nb + b]);
            acc[t][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d0), _mm512_mul_ps(wsv[0], st), acc[t][0]);
            acc[t][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d1), _mm512_mul_ps(wsv[1], st), acc[t][1]);
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < 4; t++) {
        _mm512_storeu_ps(y + t * ystride, acc[t][0]);
        _mm512_storeu_ps(y + t * ystride + REPACK_ROWS, acc[t][1]);
    }
}

/* nn_quantize_row_q8 a block (two registers) at a time: the same absmax, f16 scale (F16C rounds as
 * nn_f32_to_f16 does) and round-to-nearest-even quotients, clamped to +-127. */
SIMD512 static void quantize_q8_avx512(const float *x, int cols, int8_t *q, uint16_t *scales)
{
    for (int b = 0; b < cols / NN_QBLOCK; b++) {
        __m512 lo = _mm512_loadu_ps(x + b * NN_QBLOCK), hi = _mm512_loadu_ps(x + b * NN_QBLOCK + 16);
        float absmax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi)));
        scales[b] = (uint16_t)_cvtss_sh(absmax / 127.0f, _MM_FROUND_TO_NEAREST_INT);
        float d = _cvtsh_ss(scales[b]);
        __m512 inv = _mm512_set1_ps(d > 0 ? 1.0f / d : 0.0f);
        const __m512i top = _mm512_set1_epi32(127), bottom = _mm512_set1_epi32(-127);
        __m512i qlo = _mm512_cvtps_epi32(_mm512_mul_ps(lo, inv)), qhi = _mm512_cvtps_epi32(_mm512_mul_ps(hi, inv));
        qlo = _mm512_max_epi32(_mm512_min_epi32(qlo, top), bottom);
        qhi = _mm512_max_epi32(_mm512_min_epi32(qhi, top), bottom);
        _mm_storeu_si128((__m128i *)(q + b * NN_QBLOCK), _mm512_cvtepi32_epi8(qlo));
        _mm_storeu_si128((__m128i *)(q + b * NN_QBLOCK + 16), _mm512_cvtepi32_epi8(qhi));
    }
}

static const struct kernels avx512 = {"avx512",       dot_avx512,     dot4_avx512, dot4x6_avx512, 6,
                                      row_dot_avx512, dequant_avx512, qdot_avx512, 1, qdot4x4_avx512, repack16_avx512, qdot32_avx512,
                                      NULL,           NULL,           NULL,        quantize_q8_avx512};

/* ---- AVX-512 BF16: vdpbf16ps multiplies 32 bf16 pairs and adds each pair's two products into one of 16 f32
 * lanes, twice the multiply-adds of an f32 FMA per instruction. bf16 weights meet activations packed as bf16
 * (the rounding every kernel level applies to them, see nn_matmul). Both instructions treat subnormal inputs
 * as zero and vcvtneps2bf16 flushes subnormal results; activations and weights that small add nothing
 * visible to a sum. */
#define SIMD512BF __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16,avx2,fma,f16c")))

SIMD512BF static void to_bf16_avx512bf(const float *x, int n, uint16_t *out)
{
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = mask16(n, i);
        __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, x + i));
        _mm256_mask_storeu_epi16(out + i, m, (__m256i)h);
    }
}

/* bf16 lanes i..i+31 still inside n */
SIMD512BF static __mmask32 mask32(int n, int i)
{
    return n - i >= 32 ? ~(__mmask32)0 : (__mmask32)((1u << (n - i)) - 1);
}

SIMD512BF static __m512bh load_bf16(const uint16_t *p, __mmask32 m)
{
    return (__m512bh)_mm512_maskz_loadu_epi16(m, p);
}

/* Decode: one weight row streamed from memory (see PREFETCH_AHEAD) against the packed activations. */
SIMD512BF static float bf16_dot_avx512bf(const uint16_t *w, const uint16_t *x, int n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int i = 0;
    for (; i + 128 <= n; i += 128) {
        for (int line = 0; line < 256; line += 64)
            _mm_prefetch((const char *)(w + i) + PREFETCH_AHEAD + line, _MM_HINT_T0);
        s0 = _mm512_dpbf16_ps(s0, load_bf16(w + i, ~0u), load_bf16(x + i, ~0u));
        s1 = _mm512_dpbf16_ps(s1, load_bf16(w + i + 32, ~0u), load_bf16(x + i + 32, ~0u));
        s2 = _mm512_dpbf16_ps(s2, load_bf16(w + i + 64, ~0u), load_bf16(x + i + 64, ~0u));
        s3 = _mm512_dpbf16_ps(s3, load_bf16(w + i + 96, ~0u), load_bf16(x + i + 96, ~0u));
    }
    for (; i < n; i += 32) {
        __mmask32 m = mask32(n, i);
        s0 = _mm512_dpbf16_ps(s0, load_bf16(w + i, m), load_bf16(x + i, m));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/* The sums of a, b, c and d in one tree (a quarter of the shuffles of four separate reductions). */
SIMD512BF static __m128 hsum4(__m512 a, __m512 b, __m512 c, __m512 d)
{
    /* 128-bit quarters: ab = [a0+a2, a1+a3, b0+b2, b1+b3], then abcd = one quarter per input */
    __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                              _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, _MM_SHUFFLE(1, 0, 1, 0)),
                              _mm512_shuffle_f32x4(c, d, _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 abcd = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, _MM_SHUFFLE(2, 0, 2, 0)),
                                _mm512_shuffle_f32x4(ab, cd, _MM_SHUFFLE(3, 1, 3, 1)));
    abcd = _mm512_add_ps(abcd, _mm512_permute_ps(abcd, _MM_SHUFFLE(1, 0, 3, 2)));
    abcd = _mm512_add_ps(abcd, _mm512_permute_ps(abcd, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                                          0, 0), abcd));
}

/* Prefill: 4 rows x nt tokens (a constant after inlining, <= 6): 24 accumulators, 6 activation vectors and a
 * weight vector fill 31 of the 32 registers. */
static inline __attribute__((always_inline)) SIMD512BF void bf16_dot4xn_tokens(const uint16_t *const r[4],
                                                                               const uint16_t *const xs[], int nt,
                                                                               int n, float out[][4])
{
    __m512 acc[6][4];
#pragma GCC unroll 6
    for (int t = 0; t < nt; t++)
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++)
            acc[t][q] = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 32) {
        __mmask32 m = mask32(n, i);
        __m512bh x[6];
#pragma GCC unroll 6
        for (int t = 0; t < nt; t++)
            x[t] = load_bf16(xs[t] + i, m);
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            __m512bh w = load_bf16(r[q] + i, m);
#pragma GCC unroll 6
            for (int t = 0; t < nt; t++)
                acc[t][q] = _mm512_dpbf16_ps(acc[t][q], w, x[t]);
        }
    }
#pragma GCC unroll 6
    for (int t = 0; t < nt; t++)
        _mm_storeu_ps(out[t], hsum4(acc[t][0], acc[t][1], acc[t][2], acc[t][3]));
}

SIMD512BF static void bf16_dot4xn_avx512bf(const uint16_t *const r[4], const uint16_t *const xs[], int nt, int n,
                                           float out[][4])
{
    switch (nt) {
    case 1: bf16_dot4xn_tokens(r, xs, 1, n, out); break;
    case 2: bf16_dot4xn_tokens(r, xs, 2, n, out); break;
    case 3: bf16_dot4xn_tokens(r, xs, 3, n, out); break;
    case 4: bf16_dot4xn_tokens(r, xs, 4, n, out); break;
    case 5: bf16_dot4xn_tokens(r, xs, 5, n, out); break;
    default: bf16_dot4xn_tokens(r, xs, 6, n, out); break;
    }
}

static const struct kernels avx512bf16 = {"avx512bf16", dot_avx512, dot4_avx512, dot4x6_avx512, 6, row_dot_avx512,
                                          dequant_avx512, qdot_avx512, 1, qdot4x4_avx512, repack16_avx512,
                                          qdot32_avx512, to_bf16_avx512bf, bf16_dot_avx512bf, bf16_dot4xn_avx512bf,
                                          quantize_q8_avx512};
#else
#define HAVE_SIMD 0
#endif

/* ---- dispatch ---- */

static const struct kernels *k;
static pthread_once_t kernels_once = PTHREAD_ONCE_INIT;

/* The best level the processor has, capped by MELODIST_SIMD=avx512bf16|avx512|avx2|none (the tests run every
 * level); MELODIST_NO_SIMD=1 is MELODIST_SIMD=none. */
static void choose_kernels(void)
{
    k = &generic;
#if HAVE_SIMD
    const char *off = getenv("MELODIST_NO_SIMD"), *level = getenv("MELODIST_SIMD");
    if ((off && *off && strcmp(off, "0")) || (level && !strcmp(level, "none")))
        return;
    __builtin_cpu_init();
    /* Every AVX2 processor (Haswell, Zen and later) also has F16C, which clang cannot query here. */
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        k = &avx2;
    if (k == &avx2 && !(level && !strcmp(level, "avx2")) && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512vnni"))
        k = &avx512;
    if (k == &avx512 && !(level && !strcmp(level, "avx512")) && __builtin_cpu_supports("avx512bf16"))
        k = &avx512bf16;
#endif
}

/* Worker threads may be the first to ask (attention calls nn_dot). */
static void select_kernels(void)
{
    pthread_once(&kernels_once, choose_kernels);
}

const char *nn_simd_name(void)
{
    select_kernels();
    return k->name;
}

float nn_dot(const float *a, const float *b, int n)
{
    select_kernels();
    return k->dot(a, b, n);
}

static int quantised(const struct nn_matrix *w)
{
    return w->dtype == NN_Q8 || w->dtype == NN_Q4;
}

/* Row i of a (x holds a->cols values), with the per-group values when the kernels read them; k_bias is the
 * K of struct qact. */
static void quantise_row(struct qact *a, int i, const float *x, int k_bias)
{
    size_t cols = a->cols, nb = cols / NN_QBLOCK;
    int8_t *q = a->q + i * cols;
    float *scales = a->scales + i * nb, *offsets = a->offsets + i * nb;
    uint16_t half[NN_MAX_COLS / NN_QBLOCK];
    k->quantize_q8(x, (int)cols, q, half);
    for (size_t b = 0; b < nb; b++) {
        int sum = 0;
        for (int j = 0; j < NN_QBLOCK; j++)
            sum += q[b * NN_QBLOCK + j];
        scales[b] = nn_f16_to_f32(half[b]);
        offsets[b] = scales[b] * (float)(8 * sum);
        if (a->block_bias)
            a->block_bias[i * nb + b] = -k_bias * sum;
    }
    if (!a->bias)
        return;
    for (size_t g = 0; g < cols / 4; g++) {
        const int8_t *qg = q + 4 * g;
        a->bias[i * cols / 4 + g] = -k_bias * (qg[0] + qg[1] + qg[2] + qg[3]);
        a->gscale[i * cols / 4 + g] = scales[4 * g / NN_QBLOCK];
    }
    if (!a->q4x)
        return;
    for (size_t ch = 0; ch < nb / 4; ch++) {
        int8_t *px = a->q4x + i * cols + ch * 128;
        for (int l = 0; l < 16; l++) {
            const int8_t *lo = q + (4 * ch + l / 4) * NN_QBLOCK + 4 * (l % 4), *hi = lo + NN_QBLOCK / 2;
            memcpy(px + 4 * l, lo, 4);
            memcpy(px + 64 + 4 * l, hi, 4);
            a->q4bias[i * cols / 8 + ch * 16 + l] = -k_bias * (lo[0] + lo[1] + lo[2] + lo[3] + hi[0] + hi[1] + hi[2] + hi[3]);
            a->q4scale[i * cols / 8 + ch * 16 + l] = scales[4 * ch + l / 4];
        }
    }
}

/* Bytes of the activations of n rows of cols values: scales and offsets, the per-group values when the
 * kernels read them, then the q8 values. */
static size_t qact_bytes(size_t n, size_t cols)
{
    size_t floats = 2 * n * (cols / NN_QBLOCK), bytes = n * cols;
    if (k->group_act)
        floats += 2 * n * (cols / 4) + n * (cols / NN_QBLOCK) + 2 * n * (cols / 8), bytes += n * cols;
    return floats * sizeof(float) + bytes;
}

/* Quantises n activation rows of w->cols values into mem (qact_bytes(n, w->cols)). */
static void quantise_activations(const struct nn_matrix *w, const float *x, int n, void *mem, struct qact *a)
{
    size_t cols = (size_t)w->cols, blocks = (size_t)n * cols / NN_QBLOCK, groups = (size_t)n * cols / 4;
    float *f = mem;
    a->cols = cols;
    a->scales = f, a->offsets = f + blocks, f += 2 * blocks;
    a->bias = NULL, a->gscale = NULL, a->block_bias = NULL, a->q4x = NULL, a->q4bias = NULL, a->q4scale = NULL;
    if (k->group_act) {
        a->gscale = f, a->bias = (int32_t *)(f + groups), a->block_bias = (int32_t *)(f + 2 * groups);
        f += 2 * groups + blocks;
        a->q4scale = f, a->q4bias = (int32_t *)(f + groups / 2);
        f += groups;
        if (w->dtype == NN_Q4)
            a->q4x = (int8_t *)f + (size_t)n * cols;
    }
    a->q = (int8_t *)f;
    for (int i = 0; i < n; i++)
        quantise_row(a, i, x + i * cols, w->dtype == NN_Q8 ? 128 : 8);
}

#define TILE_ROWS 8   /* float weights */
#define QTILE_ROWS (2 * REPACK_ROWS) /* quantised weights */
#define MAX_TOKENS 6 /* of kernels.dot4xn */

struct matmul_job {
    float *y;
    const struct nn_matrix *w;
    const float *x;
    const uint16_t *xb; /* bf16 weights with the bf16 kernels: the activations packed as bf16 */
    struct qact a;
    int n;
    void *scratch; /* n > 1: per thread, float weights TILE_ROWS * cols, or two repacked tiles (NULL: none) */
};

static void float_tiles(void *ctx, int begin, int end, int thread)
{
    struct matmul_job *j = ctx;
    const struct nn_matrix *w = j->w;
    int cols = w->cols;
    float *tile = (float *)j->scratch + (size_t)thread * TILE_ROWS * cols;
    for (int t = begin; t < end; t++) {
        int r0 = t * TILE_ROWS, nr = w->rows - r0 < TILE_ROWS ? w->rows - r0 : TILE_ROWS;
        if (j->n == 1) {
            for (int r = r0; r < r0 + nr; r++)
                j->y[r] = k->row_dot(w, r, j->x);
            continue;
        }
        const float *rows[TILE_ROWS];
        for (int r = 0; r < nr; r++) {
            if (w->dtype == NN_F32) {
                rows[r] = (const float *)w->data + (size_t)(r0 + r) * cols;
            } else {
                k->dequant(w, r0 + r, tile + (size_t)r * cols);
                rows[r] = tile + (size_t)r * cols;
            }
        }
        int i = 0;
        for (; i + k->tokens <= j->n && nr == TILE_ROWS; i += k->tokens) {
            const float *xs[MAX_TOKENS];
            for (int t = 0; t < k->tokens; t++)
                xs[t] = j->x + (size_t)(i + t) * cols;
            for (int r = 0; r < nr; r += 4) {
                float out[MAX_TOKENS][4];
                k->dot4xn(rows + r, xs, cols, out);
                for (int t = 0; t < k->tokens; t++)
                    memcpy(j->y + (size_t)(i + t) * w->rows + r0 + r, out[t], sizeof out[t]);
            }
        }
        for (; i < j->n; i++) {
            const float *x = j->x + (size_t)i * cols;
            float *y = j->y + (size_t)i * w->rows + r0;
            int r = 0;
            for (; r + 4 <= nr; r += 4)
                k->dot4(rows + r, x, cols, y + r);
            for (; r < nr; r++)
                y[r] = k->dot(rows[r], x, cols);
        }
    }
}

/* bf16 weights with the bf16 kernels: rows are read in place. Each group of tokens meets the tile's 8 rows 4 at
 * a time, so its activations come from L2 the second time. */
static void bf16_tiles(void *ctx, int begin, int end, int thread)
{
    struct matmul_job *j = ctx;
    const struct nn_matrix *w = j->w;
    const uint16_t *data = w->data;
    size_t cols = (size_t)w->cols;
    (void)thread;
    for (int t = begin; t < end; t++) {
        int r0 = t * TILE_ROWS, r1 = r0 + TILE_ROWS < w->rows ? r0 + TILE_ROWS : w->rows, r4 = r0 + (r1 - r0) / 4 * 4;
        if (j->n == 1) {
            for (int r = r0; r < r1; r++)
                j->y[r] = k->bf16_dot(data + r * cols, j->xb, (int)cols);
            continue;
        }
        for (int i = 0; i < j->n; i += k->tokens) {
            int nt = j->n - i < k->tokens ? j->n - i : k->tokens;
            const uint16_t *xs[MAX_TOKENS];
            for (int u = 0; u < nt; u++)
                xs[u] = j->xb + (size_t)(i + u) * cols;
            for (int r = r0; r < r4; r += 4) {
                const uint16_t *rows[4] = {data + r * cols, data + (r + 1) * cols, data + (r + 2) * cols,
                                           data + (r + 3) * cols};
                float out[MAX_TOKENS][4];
                k->bf16_dot4xn(rows, xs, nt, (int)cols, out);
                for (int u = 0; u < nt; u++)
                    memcpy(j->y + (size_t)(i + u) * w->rows + r, out[u], sizeof out[u]);
            }
            for (int r = r4; r < r1; r++)
                for (int u = 0; u < nt; u++)
                    j->y[(size_t)(i + u) * w->rows + r] = k->bf16_dot(data + r * cols, xs[u], (int)cols);
        }
    }
}

/* The tile's rows (a few KiB) stay in L1 while each group of QDOT_MAX tokens meets every one of them; with
 * repack16, a full tile meets 4 tokens at a time in its repacked form first. */
static void quantised_tiles(void *ctx, int begin, int end, int thread)
{
    struct matmul_job *j = ctx;
    const struct nn_matrix *w = j->w;
    size_t blocks = (size_t)w->cols / NN_QBLOCK;
    float out[QDOT_MAX];
    for (int tile = begin; tile < end; tile++) {
        int r0 = tile * QTILE_ROWS, r1 = r0 + QTILE_ROWS < w->rows ? r0 + QTILE_ROWS : w->rows, i = 0;
        if (j->scratch && r1 - r0 == QTILE_ROWS) {
            char *packed = (char *)j->scratch + (size_t)thread * 2 * repack_bytes(blocks);
            k->repack16(w, r0, packed);
            k->repack16(w, r0 + REPACK_ROWS, packed + repack_bytes(blocks));
            for (; i + 4 <= j->n; i += 4)
                k->qdot32(packed, blocks, &j->a, i, j->y + (size_t)i * w->rows + r0, (size_t)w->rows);
        }
        for (; i < j->n; i += QDOT_MAX) {
            int nt = j->n - i < QDOT_MAX ? j->n - i : QDOT_MAX, r = r0;
            for (; k->qdot4x4 && nt == 4 && r + 4 <= r1; r += 4) {
                float o[4][4];
                k->qdot4x4(w, r, &j->a, i, o);
                for (int t = 0; t < 4; t++)
                    memcpy(j->y + (size_t)(i + t) * w->rows + r, o[t], sizeof o[t]);
            }
            for (; r < r1; r++) {
                k->qdot(w, r, &j->a, i, nt, out);
                for (int t = 0; t < nt; t++)
                    j->y[(size_t)(i + t) * w->rows + r] = out[t];
            }
        }
    }
}

/* bf16 weights meet the activations rounded to bf16, as llama.cpp's do, at every kernel level: each product
 * of two bf16 values is exact in f32, which lets vdpbf16ps do twice the work of an f32 FMA. Into mem: packed
 * as bf16 for the bf16 kernels, else as the rounded floats. */
static void round_to_bf16(const float *x, size_t count, void *mem)
{
    if (k->to_bf16) {
        for (size_t i = 0; i < count; i += NN_MAX_COLS)
            k->to_bf16(x + i, count - i < NN_MAX_COLS ? (int)(count - i) : NN_MAX_COLS, (uint16_t *)mem + i);
        return;
    }
    float *out = mem;
    for (size_t i = 0; i < count; i++)
        out[i] = nn_bf16_to_f32(nn_f32_to_bf16(x[i]));
}

/* One token needs no heap memory (decode never fails); more tokens fall back to one at a time when the
 * scratch cannot be allocated. */
void nn_matmul(float *y, const struct nn_matrix *w, const float *x, int n)
{
    select_kernels();
    struct matmul_job job = {y, w, x, NULL, {0}, n, NULL};
    _Alignas(64) unsigned char one[(3 * NN_MAX_COLS / NN_QBLOCK + 2 * NN_MAX_COLS / 4 + 2 * NN_MAX_COLS / 8) * sizeof(float) +
                                   2 * NN_MAX_COLS];
    _Static_assert(sizeof one >= NN_MAX_COLS * sizeof(float), "one token's bf16-rounded activations fit");
    void *mem = NULL;
    int ok = 1;
    if (w->dtype == NN_BF16) {
        size_t count = (size_t)n * (size_t)w->cols;
        mem = n == 1 ? one : malloc(count * (k->to_bf16 ? sizeof(uint16_t) : sizeof(float)));
        if (n > 1 && !k->bf16_dot)
            job.scratch = malloc((size_t)nn_threads() * TILE_ROWS * (size_t)w->cols * sizeof(float));
        if ((ok = mem && (n == 1 || k->bf16_dot || job.scratch))) {
            round_to_bf16(x, count, mem);
            if (k->bf16_dot)
                job.xb = mem;
            else
                job.x = mem;
        }
    } else if (quantised(w)) {
        mem = n == 1 ? one : malloc(qact_bytes((size_t)n, (size_t)w->cols));
        if (k->repack16 && n >= 4)
            job.scratch = malloc((size_t)nn_threads() * 2 * repack_bytes((size_t)w->cols / NN_QBLOCK));
        if ((ok = mem != NULL))
            quantise_activations(w, x, n, mem, &job.a);
    } else if (n > 1) {
        job.scratch = malloc((size_t)nn_threads() * TILE_ROWS * (size_t)w->cols * sizeof(float));
        ok = job.scratch != NULL;
    }
    if (!ok) {
        if (mem != one)
            free(mem);
        free(job.scratch);
        for (int i = 0; i < n; i++)
            nn_matmul(y + (size_t)i * w->rows, w, x + (size_t)i * w->cols, 1);
        return;
    }
    if (quantised(w))
        nn_parallel_for((w->rows + QTILE_ROWS - 1) / QTILE_ROWS, quantised_tiles, &job);
    else if (job.xb)
        nn_parallel_for((w->rows + TILE_ROWS - 1) / TILE_ROWS, bf16_tiles, &job);
    else
        nn_parallel_for((w->rows + TILE_ROWS - 1) / TILE_ROWS, float_tiles, &job);
    if (mem != one)
        free(mem);
    free(job.scratch);
}

void nn_matvec(float *y, const struct nn_matrix *w, const float *x)
{
    nn_matmul(y, w, x, 1);
}
