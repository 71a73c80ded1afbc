/* Kernel checks: f16 conversions against the processor's F16C instructions (every half, and many floats),
 * bf16 rounding against its definition, quantisation error bounds, and matvec/matmul of every weight format
 * against a double-precision sum over the dequantised weights (and the activations as the format rounds them).
 * Run at every SIMD level (MELODIST_SIMD). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/nn.h"
#include "testutil.h"

static uint64_t rng = 88172645463325252ull;
static uint32_t next_u32(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float uniform(void)
{
    return (float)next_u32() / 4294967296.0f * 2.0f - 1.0f;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("f16c"))) static float hw_h2f(uint16_t h)
{
    return _cvtsh_ss(h);
}
__attribute__((target("f16c"))) static uint16_t hw_f2h(float f)
{
    return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}

static void check_f16(void)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2")) {
        printf("f16: no F16C to compare with, skipped\n");
        return;
    }
    for (uint32_t h = 0; h < 65536; h++) {
        float a = nn_f16_to_f32((uint16_t)h), b = hw_h2f((uint16_t)h);
        CHECK((isnan(a) && isnan(b)) || !memcmp(&a, &b, 4), "f16 %04x -> %g, F16C %g", h, a, b);
    }
    for (int i = 0; i < 2000000; i++) {
        uint32_t u = next_u32();
        if (i & 1) /* concentrate on the f16 range */
            u = (u & 0x80000000u) | (0x33000000u + u % 0x15000000u);
        float f = bits_f32(u);
        if (isnan(f))
            continue;
        uint16_t a = nn_f32_to_f16(f), b = hw_f2h(f);
        CHECK(a == b, "f32 %08x -> f16 %04x, F16C %04x", u, a, b);
    }
    printf("f16: all 65536 halves and 2M floats agree with F16C\n");
}
#else
static void check_f16(void)
{
    printf("f16: not x86, skipped\n");
}
#endif

static void check_bf16(void)
{
    for (int i = 0; i < 1000000; i++) {
        float f = bits_f32(next_u32());
        if (isnan(f) || isinf(f))
            continue;
        uint16_t b = nn_f32_to_bf16(f);
        float r = nn_bf16_to_f32(b);
        /* the nearest bf16: no neighbour is closer, and ties go to the even one */
        uint16_t sign = b & 0x8000, mag = b & 0x7FFF;
        double e = fabs((double)r - f);
        double e_up = fabs((double)nn_bf16_to_f32((uint16_t)(sign | (mag + 1))) - f);
        double e_down = mag ? fabs((double)nn_bf16_to_f32((uint16_t)(sign | (mag - 1))) - f) : INFINITY;
        CHECK(isinf(r) || (e <= e_up && e <= e_down), "bf16 of %g is %g", f, r);
        if (e == e_up || e == e_down)
            CHECK((b & 1) == 0, "bf16 tie of %g not even", f);
    }
    printf("bf16: rounding to nearest even on 1M floats\n");
}

static void check_quantisation(void)
{
    enum { COLS = 256 };
    float x[COLS], back[COLS];
    int8_t q8[COLS];
    uint8_t q4[COLS / 2];
    uint16_t s[COLS / NN_QBLOCK];
    for (int i = 0; i < COLS; i++)
        x[i] = uniform() * (i % 64 == 0 ? 10.0f : 1.0f);
    nn_quantize_row_q8(x, COLS, q8, s);
    struct nn_matrix m8 = {NN_Q8, 1, COLS, q8, s};
    nn_dequant_row(&m8, 0, back);
    for (int i = 0; i < COLS; i++)
        CHECK(fabsf(back[i] - x[i]) <= 0.5f * fabsf(nn_f16_to_f32(s[i / NN_QBLOCK])) * 1.01f + 1e-7f,
              "q8 element %d: %g -> %g", i, x[i], back[i]);
    nn_quantize_row_q4(x, COLS, q4, s);
    struct nn_matrix m4 = {NN_Q4, 1, COLS, q4, s};
    nn_dequant_row(&m4, 0, back);
    /* The extreme maps to level -8; values of the other sign can only reach +7, so they may clip by a step. */
    for (int i = 0; i < COLS; i++)
        CHECK(fabsf(back[i] - x[i]) <= fabsf(nn_f16_to_f32(s[i / NN_QBLOCK])) * 1.01f + 1e-7f,
              "q4 element %d: %g -> %g", i, x[i], back[i]);
    printf("q8/q4: every value within half a quantisation step (q4: one step)\n");
}

/* COLS values per row: the kernels' vector loops end in a partial step when COLS is not a multiple of their
 * width (16 floats, 2 quantised blocks), so the shapes include such ends. */
static void check_products(enum nn_dtype dtype, int COLS)
{
    enum { ROWS = 37, N = 7, MAX_COLS = 352 };
    static float wf[ROWS * MAX_COLS], x[N * MAX_COLS], y[N * ROWS], y5[N * ROWS], y1[ROWS], xq[N * MAX_COLS];
    static uint16_t h[ROWS * MAX_COLS], scales[ROWS * MAX_COLS / NN_QBLOCK], xs[MAX_COLS / NN_QBLOCK];
    static int8_t q8[ROWS * MAX_COLS], xq8[MAX_COLS];
    static uint8_t q4[ROWS * MAX_COLS / 2];
    for (int i = 0; i < ROWS * COLS; i++)
        wf[i] = uniform();
    for (int i = 0; i < N * COLS; i++)
        x[i] = uniform();
    struct nn_matrix w = {dtype, ROWS, COLS, wf, NULL};
    for (int r = 0; r < ROWS; r++) {
        const float *row = wf + r * COLS;
        if (dtype == NN_F16 || dtype == NN_BF16)
            for (int i = 0; i < COLS; i++)
                h[r * COLS + i] = dtype == NN_F16 ? nn_f32_to_f16(row[i]) : nn_f32_to_bf16(row[i]);
        if (dtype == NN_Q8)
            nn_quantize_row_q8(row, COLS, q8 + r * COLS, scales + r * COLS / NN_QBLOCK);
        if (dtype == NN_Q4)
            nn_quantize_row_q4(row, COLS, q4 + r * COLS / 2, scales + r * COLS / NN_QBLOCK);
    }
    w.data = dtype == NN_F32 ? (const void *)wf : dtype == NN_Q8 ? (const void *)q8 : dtype == NN_Q4 ? (const void *)q4 : h;
    w.scales = dtype == NN_Q8 || dtype == NN_Q4 ? scales : NULL;
    /* Quantised weights meet q8-quantised activations, bf16 weights activations rounded to bf16 (the documented
     * schemes); others meet x as is. */
    memcpy(xq, x, (size_t)N * COLS * sizeof *x);
    if (dtype == NN_BF16)
        for (int i = 0; i < N * COLS; i++)
            xq[i] = nn_bf16_to_f32(nn_f32_to_bf16(x[i]));
    if (dtype == NN_Q8 || dtype == NN_Q4)
        for (int t = 0; t < N; t++) {
            struct nn_matrix a = {NN_Q8, 1, COLS, xq8, xs};
            nn_quantize_row_q8(x + t * COLS, COLS, xq8, xs);
            nn_dequant_row(&a, 0, xq + t * COLS);
        }
    nn_matmul(y, &w, x, N);
    nn_matmul(y5, &w, x, 5); /* another split of the tokens into the kernels' register blocks */
    double worst = 0;
    float row[MAX_COLS];
    for (int r = 0; r < ROWS; r++) {
        nn_dequant_row(&w, r, row);
        for (int t = 0; t < N; t++) {
            double want = 0, mag = 0;
            for (int i = 0; i < COLS; i++)
                want += (double)row[i] * xq[t * COLS + i], mag += fabs((double)row[i] * xq[t * COLS + i]);
            worst = fmax(worst, fabs(y[t * ROWS + r] - want) / mag);
            if (t < 5)
                worst = fmax(worst, fabs(y5[t * ROWS + r] - want) / mag);
            if (t == 2) {
                nn_matvec(y1, &w, x + t * COLS);
                CHECK(fabs(y1[r] - want) <= 1e-5 * mag, "%s matvec row %d: %g vs %g", nn_dtype_name(dtype), r,
                      y1[r], want);
            }
        }
    }
    CHECK(worst <= 1e-5, "%s matmul error %.2e (relative to sum |w x|)", nn_dtype_name(dtype), worst);
    printf("%-4s matvec/matmul, %d columns: worst error %.2e of sum |w x|\n", nn_dtype_name(dtype), COLS, worst);
}

int main(void)
{
    tu_max_printed = 20;
    printf("kernels: %s, %d threads\n", nn_simd_name(), nn_threads());
    check_f16();
    check_bf16();
    check_quantisation();
    for (int d = NN_F32; d <= NN_Q4; d++) {
        check_products((enum nn_dtype)d, 320);
        check_products((enum nn_dtype)d, 352); /* 11 blocks */
        if (d < NN_Q8)
            check_products((enum nn_dtype)d, 300);
    }
    if (tu_failures)
        fprintf(stderr, "%d failures\n", tu_failures);
    return tu_failures ? 1 : 0;
}
