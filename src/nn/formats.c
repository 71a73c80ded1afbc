/* f16/bf16 conversion and q8/q4 block quantisation (the reference definitions; SIMD kernels must agree). */
#include <math.h>
#include <string.h>

#include "melodist/nn.h"

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

float nn_bf16_to_f32(uint16_t b)
{
    return bits_f32((uint32_t)b << 16);
}

uint16_t nn_f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u)
        return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7FFFu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

float nn_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, man = h & 0x3FF;
    if (exp == 0x1F)
        return bits_f32(sign | 0x7F800000u | (man << 13));
    if (exp == 0) {
        /* subnormal: man * 2^-24 */
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t nn_f32_to_f16(float f)
{
    uint32_t u = f32_bits(f), sign = (u >> 16) & 0x8000, a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u)
        return (uint16_t)(sign | 0x7E00);
    if (a >= 0x477FF000u) /* rounds to >= 65520: infinity */
        return (uint16_t)(sign | 0x7C00);
    if (a < 0x38800000u) { /* below 2^-14: subnormal half, value = m * 2^-24 */
        float v = bits_f32(a) * 16777216.0f;  /* exact scaling */
        return (uint16_t)(sign | (uint16_t)lrintf(v)); /* lrintf rounds to nearest even */
    }
    uint32_t r = a + 0xFFFu + ((a >> 13) & 1);
    return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
}

const char *nn_dtype_name(enum nn_dtype dtype)
{
    static const char *names[] = {"f32", "f16", "bf16", "q8", "q4"};
    return (unsigned)dtype < 5 ? names[dtype] : "?";
}

size_t nn_matrix_bytes(const struct nn_matrix *m)
{
    size_t n = (size_t)m->rows * (size_t)m->cols, blocks = n / NN_QBLOCK;
    switch (m->dtype) {
    case NN_F32: return n * 4;
    case NN_F16:
    case NN_BF16: return n * 2;
    case NN_Q8: return n + blocks * 2;
    case NN_Q4: return n / 2 + blocks * 2;
    }
    return 0;
}

void nn_dequant_row(const struct nn_matrix *m, int row, float *out)
{
    size_t n = (size_t)m->cols, base = (size_t)row * n;
    switch (m->dtype) {
    case NN_F32:
        memcpy(out, (const float *)m->data + base, n * sizeof *out);
        break;
    case NN_F16:
        for (size_t i = 0; i < n; i++)
            out[i] = nn_f16_to_f32(((const uint16_t *)m->data)[base + i]);
        break;
    case NN_BF16:
        for (size_t i = 0; i < n; i++)
            out[i] = nn_bf16_to_f32(((const uint16_t *)m->data)[base + i]);
        break;
    case NN_Q8: {
        const int8_t *q = (const int8_t *)m->data + base;
        const uint16_t *s = m->scales + base / NN_QBLOCK;
        for (size_t i = 0; i < n; i++)
            out[i] = nn_f16_to_f32(s[i / NN_QBLOCK]) * (float)q[i];
        break;
    }
    case NN_Q4: {
        const uint8_t *q = (const uint8_t *)m->data + base / 2;
        const uint16_t *s = m->scales + base / NN_QBLOCK;
        for (size_t b = 0; b < n / NN_QBLOCK; b++) {
            float d = nn_f16_to_f32(s[b]);
            for (int j = 0; j < NN_QBLOCK / 2; j++) {
                uint8_t byte = q[b * (NN_QBLOCK / 2) + j];
                out[b * NN_QBLOCK + j] = d * (float)((byte & 0xF) - 8);
                out[b * NN_QBLOCK + j + NN_QBLOCK / 2] = d * (float)((byte >> 4) - 8);
            }
        }
        break;
    }
    }
}

static float block_absmax(const float *x)
{
    float m = 0;
    for (int i = 0; i < NN_QBLOCK; i++)
        m = fmaxf(m, fabsf(x[i]));
    return m;
}

/* The scale is rounded to f16 first, and the values quantised against the rounded scale. */
void nn_quantize_row_q8(const float *x, int cols, int8_t *q, uint16_t *scales)
{
    for (int b = 0; b < cols / NN_QBLOCK; b++) {
        const float *xb = x + b * NN_QBLOCK;
        scales[b] = nn_f32_to_f16(block_absmax(xb) / 127.0f);
        float d = nn_f16_to_f32(scales[b]), inv = d > 0 ? 1.0f / d : 0.0f;
        for (int i = 0; i < NN_QBLOCK; i++) {
            long v = lrintf(xb[i] * inv);
            q[b * NN_QBLOCK + i] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
        }
    }
}

void nn_quantize_row_q4(const float *x, int cols, uint8_t *q, uint16_t *scales)
{
    for (int b = 0; b < cols / NN_QBLOCK; b++) {
        const float *xb = x + b * NN_QBLOCK;
        /* The value of largest magnitude maps to level -8, so all 16 levels are used (as ggml's Q4_0). */
        float extreme = 0;
        for (int i = 0; i < NN_QBLOCK; i++)
            if (fabsf(xb[i]) > fabsf(extreme))
                extreme = xb[i];
        scales[b] = nn_f32_to_f16(extreme / -8.0f);
        float d = nn_f16_to_f32(scales[b]), inv = d != 0 ? 1.0f / d : 0.0f;
        for (int j = 0; j < NN_QBLOCK / 2; j++) {
            long lo = lrintf(xb[j] * inv), hi = lrintf(xb[j + NN_QBLOCK / 2] * inv);
            lo = lo > 7 ? 7 : lo < -8 ? -8 : lo;
            hi = hi > 7 ? 7 : hi < -8 ? -8 : hi;
            q[b * (NN_QBLOCK / 2) + j] = (uint8_t)((lo + 8) | ((hi + 8) << 4));
        }
    }
}
