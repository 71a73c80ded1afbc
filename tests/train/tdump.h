/* Tiny tensor dump for the PyTorch oracles (tests/reference/train_ref.py reads it):
 * "MLDT" then records of u32 name length, name, u32 dtype (0 f32, 1 i32), u32 ndim, i64 dims, data. */
#ifndef MELODIST_TESTS_TDUMP_H
#define MELODIST_TESTS_TDUMP_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void tdump_raw(FILE *f, const char *name, uint32_t dtype, const void *data, int ndim, const int64_t *dims)
{
    uint32_t n = (uint32_t)strlen(name), nd = (uint32_t)ndim;
    size_t count = 1;
    for (int i = 0; i < ndim; i++)
        count *= (size_t)dims[i];
    fwrite(&n, 4, 1, f);
    fwrite(name, 1, n, f);
    fwrite(&dtype, 4, 1, f);
    fwrite(&nd, 4, 1, f);
    fwrite(dims, 8, (size_t)ndim, f);
    fwrite(data, 4, count, f);
}

#define TDUMP_F32(f, name, data, ...)                                                                      \
    do {                                                                                                   \
        int64_t d_[] = {__VA_ARGS__};                                                                      \
        tdump_raw(f, name, 0, data, (int)(sizeof d_ / sizeof d_[0]), d_);                                  \
    } while (0)
#define TDUMP_I32(f, name, data, ...)                                                                      \
    do {                                                                                                   \
        int64_t d_[] = {__VA_ARGS__};                                                                      \
        tdump_raw(f, name, 1, data, (int)(sizeof d_ / sizeof d_[0]), d_);                                  \
    } while (0)

static inline FILE *tdump_open(const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fwrite("MLDT", 1, 4, f);
    return f;
}

/* xorshift64* so that the C side needs no oracle of its own random numbers: the data travels in the dump. */
static uint64_t trng_state = 0x9E3779B97F4A7C15ull;
static inline float trng_uniform(void)
{
    trng_state ^= trng_state >> 12;
    trng_state ^= trng_state << 25;
    trng_state ^= trng_state >> 27;
    return (float)((trng_state * 0x2545F4914F6CDD1Dull) >> 40) / (float)(1 << 24);
}
static inline float *trng_fill(float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (2.0f * trng_uniform() - 1.0f) * scale;
    return x;
}
static inline float *tcalloc(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p)
        exit(1);
    return p;
}

#endif
