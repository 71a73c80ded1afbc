/* NF4 quantisation with bitsandbytes' arithmetic (see nf4.h): scaled = clamp(x / absmax, -1, 1), code =
 * the number of code-book midpoints below it (torch.bucketize); de-quantisation code[q] * absmax. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/nf4.h"
#include "melodist/nn.h"

const float nf4_code[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
    -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
    0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
    0.7229568362236023f, 1.0f,
};

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* torch.linspace(0.1, 1, steps) in float32: from the start for the first half, from the end for the rest. */
static float linspace_at(int steps, int i)
{
    float start = 0.1f, end = 1.0f, step = (end - start) / (float)(steps - 1);
    float along = i < steps / 2 ? step * (float)i : step * (float)(steps - 1 - i);
    return i < steps / 2 ? start + along : end - along;
}

/* For exponent i = 0..6 the midpoints of linspace(0.1, 1, 2^i + 1) times 10^(i-6), both signs (signed), or
 * of linspace(0.1, 1, 2^(i+1) + 1), positive only (unsigned: the sign bit becomes a fraction bit); plus 0 and
 * 1, sorted. */
static void build_dynamic_map(float *map, int is_signed)
{
    int n = 0;
    for (int i = 0; i < 7; i++) {
        int steps = (1 << (is_signed ? i : i + 1)) + 1;
        float scale = (float)pow(10.0, i - 6);
        for (int k = 0; k + 1 < steps; k++) {
            float sum = linspace_at(steps, k) + linspace_at(steps, k + 1);
            float mean = sum / 2.0f;
            float v = scale * mean;
            map[n++] = v;
            if (is_signed)
                map[n++] = -v;
        }
    }
    map[n++] = 0.0f;
    map[n++] = 1.0f;
    qsort(map, 256, sizeof(float), cmp_float);
}

static float dynamic_map[2][256];
static int dynamic_ready[2];

static const float *dynamic(int is_signed)
{
    if (!dynamic_ready[is_signed])
        build_dynamic_map(dynamic_map[is_signed], is_signed);
    dynamic_ready[is_signed] = 1;
    return dynamic_map[is_signed];
}

const float *nf4_dynamic_map(void) { return dynamic(1); }

const float *nf4_dynamic_map_unsigned(void) { return dynamic(0); }

/* Index of the value nearest to x (|x| <= 1) in an ascending code book of n values: the count of midpoints
 * strictly below x, midpoints computed in f32 as bitsandbytes does. */
static int bucket(const float *code, int n, float x)
{
    int lo = 0, hi = n - 1; /* answer in [lo, hi] */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        float boundary = (code[mid] + code[mid + 1]) / 2.0f;
        if (boundary < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

uint8_t nf4_nearest_code(const float *map, float x) { return (uint8_t)bucket(map, 256, x); }

static float scaled(float x, float absmax)
{
    if (absmax == 0.0f) /* an all-zero block: every value is 0 */
        return 0.0f;
    float s = x / absmax;
    return s < -1.0f ? -1.0f : s > 1.0f ? 1.0f : s;
}

/* Blockwise absmax quantisation of x[0..n) against a code book (bitsandbytes quantize_blockwise). */
static void quantize_blocks(const float *x, size_t n, size_t block, const float *code, int n_code, float *absmax,
                            uint8_t *codes, int nibbles)
{
    for (size_t b = 0; b * block < n; b++) {
        size_t lo = b * block, hi = lo + block < n ? lo + block : n;
        float m = 0.0f;
        for (size_t i = lo; i < hi; i++)
            m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
        absmax[b] = m;
        for (size_t i = lo; i < hi; i++) {
            uint8_t q = (uint8_t)bucket(code, n_code, scaled(x[i], m));
            if (!nibbles)
                codes[i] = q;
            else if (i % 2 == 0)
                codes[i / 2] = (uint8_t)(q << 4);
            else
                codes[i / 2] |= q;
        }
    }
}

static int nf4_alloc(struct nf4_tensor *t, size_t n)
{
    memset(t, 0, sizeof *t);
    t->n = n;
    t->n_blocks = (n + NF4_BLOCK - 1) / NF4_BLOCK;
    t->q = calloc((n + 1) / 2, 1);
    t->absmax = malloc(sizeof(float) * t->n_blocks);
    return t->q && t->absmax ? 0 : -1;
}

/* Double quantisation of the block scales t->absmax. */
static int quantize_scales(struct nf4_tensor *t)
{
    size_t nb = t->n_blocks, n2 = (nb + NF4_SCALE_BLOCK - 1) / NF4_SCALE_BLOCK;
    double sum = 0; /* torch's mean of a float32 tensor: accumulated wider, rounded once */
    for (size_t b = 0; b < nb; b++)
        sum += t->absmax[b];
    t->offset = (float)(sum / (double)nb);
    for (size_t b = 0; b < nb; b++)
        t->absmax[b] -= t->offset;
    t->qabsmax = malloc(nb);
    t->absmax2 = malloc(sizeof(float) * n2);
    if (!t->qabsmax || !t->absmax2)
        return -1;
    quantize_blocks(t->absmax, nb, NF4_SCALE_BLOCK, nf4_dynamic_map(), 256, t->absmax2, t->qabsmax, 0);
    free(t->absmax);
    t->absmax = NULL;
    return 0;
}

int nf4_quantize(struct nf4_tensor *t, const float *x, size_t n, int double_quant)
{
    if (nf4_alloc(t, n))
        goto oom;
    quantize_blocks(x, n, NF4_BLOCK, nf4_code, 16, t->absmax, t->q, 1);
    if (double_quant && quantize_scales(t))
        goto oom;
    return 0;
oom:
    nf4_free(t);
    return -1;
}

int nf4_quantize_matrix(struct nf4_tensor *t, const struct nn_matrix *w, int double_quant)
{
    size_t cols = (size_t)w->cols, n = (size_t)w->rows * cols;
    float *x = malloc(sizeof(float) * NF4_BLOCK * cols);
    if (!x || nf4_alloc(t, n))
        goto oom;
    /* NF4_BLOCK rows at a time: a whole number of blocks, starting on a byte of the packed codes */
    for (int r0 = 0; r0 < w->rows; r0 += NF4_BLOCK) {
        int rows = w->rows - r0 < NF4_BLOCK ? w->rows - r0 : NF4_BLOCK;
        for (int r = 0; r < rows; r++)
            nn_dequant_row(w, r0 + r, x + (size_t)r * cols);
        size_t first = (size_t)r0 * cols;
        quantize_blocks(x, (size_t)rows * cols, NF4_BLOCK, nf4_code, 16, t->absmax + first / NF4_BLOCK,
                        t->q + first / 2, 1);
    }
    free(x);
    if (double_quant && quantize_scales(t))
        goto oom;
    return 0;
oom:
    free(x);
    nf4_free(t);
    return -1;
}

void nf4_free(struct nf4_tensor *t)
{
    free(t->q);
    free(t->absmax);
    free(t->qabsmax);
    free(t->absmax2);
    memset(t, 0, sizeof *t);
}

size_t nf4_bytes(const struct nf4_tensor *t)
{
    size_t scales = t->qabsmax ? t->n_blocks + sizeof(float) * ((t->n_blocks + NF4_SCALE_BLOCK - 1) / NF4_SCALE_BLOCK)
                               : sizeof(float) * t->n_blocks;
    return (t->n + 1) / 2 + scales;
}

float nf4_block_scale(const struct nf4_tensor *t, size_t b)
{
    if (!t->qabsmax)
        return t->absmax[b];
    float v = nf4_dynamic_map()[t->qabsmax[b]] * t->absmax2[b / NF4_SCALE_BLOCK];
    return v + t->offset;
}

void nf4_dequantize(const struct nf4_tensor *t, size_t first, size_t count, float *out)
{
    size_t i = first, end = first + count;
    while (i < end) {
        size_t b = i / NF4_BLOCK, stop = (b + 1) * NF4_BLOCK < end ? (b + 1) * NF4_BLOCK : end;
        float s = nf4_block_scale(t, b);
        for (; i < stop; i++) {
            uint8_t byte = t->q[i / 2];
            *out++ = nf4_code[i % 2 ? byte & 15 : byte >> 4] * s;
        }
    }
}
