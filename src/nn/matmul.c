/* Matrix-vector (decode) and matrix-matrix (prefill) products over any weight format.
 * Decode streams each weight row once through a fused dequantise-and-dot kernel; prefill dequantises a
 * tile of rows into f32 scratch and reuses it for every token. Rows are split across the thread pool. */
#include <stdlib.h>
#include <string.h>

#include "melodist/nn.h"

typedef float (*row_dot_fn)(const struct nn_matrix *w, int row, const float *x);
typedef void (*dot4_fn)(const float *const rows[4], const float *x, int n, float out[4]);

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

static float row_dot_generic(const struct nn_matrix *w, int row, const float *x)
{
    size_t n = (size_t)w->cols, base = (size_t)row * n;
    float s = 0;
    switch (w->dtype) {
    case NN_F32:
        return dot_generic((const float *)w->data + base, x, (int)n);
    case NN_F16:
        for (size_t i = 0; i < n; i++)
            s += nn_f16_to_f32(((const uint16_t *)w->data)[base + i]) * x[i];
        return s;
    case NN_BF16:
        for (size_t i = 0; i < n; i++)
            s += nn_bf16_to_f32(((const uint16_t *)w->data)[base + i]) * x[i];
        return s;
    case NN_Q8: {
        const int8_t *q = (const int8_t *)w->data + base;
        const uint16_t *sc = w->scales + base / NN_QBLOCK;
        for (size_t b = 0; b < n / NN_QBLOCK; b++) {
            float bs = 0;
            for (int i = 0; i < NN_QBLOCK; i++)
                bs += (float)q[b * NN_QBLOCK + i] * x[b * NN_QBLOCK + i];
            s += nn_f16_to_f32(sc[b]) * bs;
        }
        return s;
    }
    case NN_Q4: {
        const uint8_t *q = (const uint8_t *)w->data + base / 2;
        const uint16_t *sc = w->scales + base / NN_QBLOCK;
        for (size_t b = 0; b < n / NN_QBLOCK; b++) {
            const float *xb = x + b * NN_QBLOCK;
            float bs = 0;
            for (int j = 0; j < NN_QBLOCK / 2; j++) {
                uint8_t byte = q[b * (NN_QBLOCK / 2) + j];
                bs += (float)((byte & 0xF) - 8) * xb[j] + (float)((byte >> 4) - 8) * xb[j + NN_QBLOCK / 2];
            }
            s += nn_f16_to_f32(sc[b]) * bs;
        }
        return s;
    }
    }
    return 0;
}

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

SIMD static __m256 load_bf16(const uint16_t *p)
{
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

SIMD static __m256 load_i8(const int8_t *p)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

SIMD static float row_dot_avx2(const struct nn_matrix *w, int row, const float *x)
{
    size_t n = (size_t)w->cols, base = (size_t)row * n, i = 0;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    float tail = 0;
    switch (w->dtype) {
    case NN_F32:
        return dot_avx2((const float *)w->data + base, x, (int)n);
    case NN_F16: {
        const uint16_t *p = (const uint16_t *)w->data + base;
        for (; i + 16 <= n; i += 16) {
            s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + i))), _mm256_loadu_ps(x + i), s0);
            s1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + i + 8))),
                                 _mm256_loadu_ps(x + i + 8), s1);
        }
        for (; i < n; i++)
            tail += nn_f16_to_f32(p[i]) * x[i];
        break;
    }
    case NN_BF16: {
        const uint16_t *p = (const uint16_t *)w->data + base;
        for (; i + 16 <= n; i += 16) {
            s0 = _mm256_fmadd_ps(load_bf16(p + i), _mm256_loadu_ps(x + i), s0);
            s1 = _mm256_fmadd_ps(load_bf16(p + i + 8), _mm256_loadu_ps(x + i + 8), s1);
        }
        for (; i < n; i++)
            tail += nn_bf16_to_f32(p[i]) * x[i];
        break;
    }
    case NN_Q8: {
        const int8_t *q = (const int8_t *)w->data + base;
        const uint16_t *sc = w->scales + base / NN_QBLOCK;
        for (size_t b = 0; b < n / NN_QBLOCK; b++, q += NN_QBLOCK, x += NN_QBLOCK) {
            __m256 bs = _mm256_mul_ps(load_i8(q), _mm256_loadu_ps(x));
            bs = _mm256_fmadd_ps(load_i8(q + 8), _mm256_loadu_ps(x + 8), bs);
            bs = _mm256_fmadd_ps(load_i8(q + 16), _mm256_loadu_ps(x + 16), bs);
            bs = _mm256_fmadd_ps(load_i8(q + 24), _mm256_loadu_ps(x + 24), bs);
            s0 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(sc[b])), bs, s0);
        }
        break;
    }
    case NN_Q4: {
        const uint8_t *q = (const uint8_t *)w->data + base / 2;
        const uint16_t *sc = w->scales + base / NN_QBLOCK;
        const __m128i mask = _mm_set1_epi8(0xF), eight = _mm_set1_epi8(8);
        for (size_t b = 0; b < n / NN_QBLOCK; b++, q += NN_QBLOCK / 2, x += NN_QBLOCK) {
            __m128i bytes = _mm_loadu_si128((const __m128i *)q);
            __m128i lo = _mm_sub_epi8(_mm_and_si128(bytes, mask), eight);
            __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(bytes, 4), mask), eight);
            __m256 bs = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), _mm256_loadu_ps(x));
            bs = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))),
                                 _mm256_loadu_ps(x + 8), bs);
            bs = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), _mm256_loadu_ps(x + 16), bs);
            bs = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))),
                                 _mm256_loadu_ps(x + 24), bs);
            s0 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(sc[b])), bs, s0);
        }
        break;
    }
    }
    return hsum(_mm256_add_ps(s0, s1)) + tail;
}
#else
#define HAVE_SIMD 0
#endif

/* ---- dispatch ---- */

static struct {
    int ready;
    const char *name;
    float (*dot)(const float *, const float *, int);
    dot4_fn dot4;
    row_dot_fn row_dot;
} k;

static void select_kernels(void)
{
    if (k.ready)
        return;
    const char *off = getenv("MELODIST_NO_SIMD");
    k.name = "generic", k.dot = dot_generic, k.dot4 = dot4_generic, k.row_dot = row_dot_generic;
#if HAVE_SIMD
    if (!(off && *off && strcmp(off, "0"))) {
        __builtin_cpu_init();
        /* Every AVX2 processor (Haswell, Zen and later) also has F16C, which clang cannot query here. */
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            k.name = "avx2", k.dot = dot_avx2, k.dot4 = dot4_avx2, k.row_dot = row_dot_avx2;
    }
#else
    (void)off;
#endif
    k.ready = 1;
}

const char *nn_simd_name(void)
{
    select_kernels();
    return k.name;
}

float nn_dot(const float *a, const float *b, int n)
{
    select_kernels();
    return k.dot(a, b, n);
}

struct matvec_job {
    float *y;
    const struct nn_matrix *w;
    const float *x;
};

static void matvec_rows(void *ctx, int begin, int end, int thread)
{
    struct matvec_job *j = ctx;
    (void)thread;
    for (int r = begin; r < end; r++)
        j->y[r] = k.row_dot(j->w, r, j->x);
}

void nn_matvec(float *y, const struct nn_matrix *w, const float *x)
{
    select_kernels();
    struct matvec_job job = {y, w, x};
    nn_parallel_for(w->rows, matvec_rows, &job);
}

#define TILE_ROWS 8

struct matmul_job {
    float *y;
    const struct nn_matrix *w;
    const float *x;
    int n;
    float *scratch; /* per thread: TILE_ROWS * cols */
};

static void matmul_tiles(void *ctx, int begin, int end, int thread)
{
    struct matmul_job *j = ctx;
    const struct nn_matrix *w = j->w;
    int cols = w->cols;
    float *tile = j->scratch + (size_t)thread * TILE_ROWS * cols;
    for (int t = begin; t < end; t++) {
        int r0 = t * TILE_ROWS, nr = w->rows - r0 < TILE_ROWS ? w->rows - r0 : TILE_ROWS;
        const float *rows[TILE_ROWS];
        for (int r = 0; r < nr; r++) {
            if (w->dtype == NN_F32) {
                rows[r] = (const float *)w->data + (size_t)(r0 + r) * cols;
            } else {
                nn_dequant_row(w, r0 + r, tile + (size_t)r * cols);
                rows[r] = tile + (size_t)r * cols;
            }
        }
        for (int i = 0; i < j->n; i++) {
            const float *x = j->x + (size_t)i * cols;
            float *y = j->y + (size_t)i * w->rows + r0;
            int r = 0;
            for (; r + 4 <= nr; r += 4)
                k.dot4(rows + r, x, cols, y + r);
            for (; r < nr; r++)
                y[r] = k.dot(rows[r], x, cols);
        }
    }
}

void nn_matmul(float *y, const struct nn_matrix *w, const float *x, int n)
{
    if (n == 1) {
        nn_matvec(y, w, x);
        return;
    }
    select_kernels();
    float *scratch = malloc((size_t)nn_threads() * TILE_ROWS * (size_t)w->cols * sizeof *scratch);
    if (!scratch) { /* fall back to one row at a time rather than fail */
        for (int i = 0; i < n; i++)
            nn_matvec(y + (size_t)i * w->rows, w, x + (size_t)i * w->cols);
        return;
    }
    struct matmul_job job = {y, w, x, n, scratch};
    nn_parallel_for((w->rows + TILE_ROWS - 1) / TILE_ROWS, matmul_tiles, &job);
    free(scratch);
}
