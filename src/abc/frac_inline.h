/* The rational operations of the per-note loops, inline (the model builder calls them for every note);
 * frac.c exports them as abc_frac_add/sub/mul/cmp. */
#ifndef MELODIST_ABC_FRAC_INLINE_H
#define MELODIST_ABC_FRAC_INLINE_H

#include "melodist/abc.h"

/* The exact 128-bit route of frac.c (results that do not fit 64 bits before reduction). */
abc_frac abc_frac_reduce128(__int128 num, __int128 den);

/* Binary GCD: shifts instead of divisions. */
static inline int64_t gcd64(int64_t a, int64_t b)
{
    uint64_t u = a < 0 ? -(uint64_t)a : (uint64_t)a, v = b < 0 ? -(uint64_t)b : (uint64_t)b;
    if (u == 0)
        return (int64_t)v;
    if (v == 0)
        return (int64_t)u;
    int shift = __builtin_ctzll(u | v);
    u >>= __builtin_ctzll(u);
    do {
        v >>= __builtin_ctzll(v);
        if (u > v) {
            uint64_t t = u;
            u = v;
            v = t;
        }
        v -= u;
    } while (v);
    return (int64_t)(u << shift);
}

/* Fast path: everything fits 64 bits (all real music); otherwise the exact 128-bit route. */
static inline abc_frac reduce64(int64_t num, int64_t den)
{
    if (!(den & (den - 1))) { /* power-of-two denominators (most note times): the gcd is a shift */
        if (num == 0)
            return (abc_frac){0, 1};
        int k = __builtin_ctzll((uint64_t)num), l = __builtin_ctzll((uint64_t)den);
        k = k < l ? k : l;
        return (abc_frac){num >> k, den >> k};
    }
    int64_t g = gcd64(num, den);
    if (g > 1) {
        num /= g;
        den /= g;
    }
    return (abc_frac){num, den};
}

static inline abc_frac frac_add(abc_frac a, abc_frac b)
{
    int64_t x, y, n, d;
    if (a.den == b.den && !__builtin_add_overflow(a.num, b.num, &n))
        return reduce64(n, a.den);
    if (!__builtin_mul_overflow(a.num, b.den, &x) && !__builtin_mul_overflow(b.num, a.den, &y) &&
        !__builtin_add_overflow(x, y, &n) && !__builtin_mul_overflow(a.den, b.den, &d))
        return reduce64(n, d);
    return abc_frac_reduce128((__int128)a.num * b.den + (__int128)b.num * a.den, (__int128)a.den * b.den);
}

static inline abc_frac frac_sub(abc_frac a, abc_frac b)
{
    if (b.num == INT64_MIN) /* -b does not fit */
        return abc_frac_reduce128((__int128)a.num * b.den - (__int128)b.num * a.den, (__int128)a.den * b.den);
    return frac_add(a, (abc_frac){-b.num, b.den});
}

static inline abc_frac frac_mul(abc_frac a, abc_frac b)
{
    int64_t n, d;
    if (b.num == 1 && b.den == 1)
        return a;
    if (a.num == 1 && a.den == 1)
        return b;
    if (!__builtin_mul_overflow(a.num, b.num, &n) && !__builtin_mul_overflow(a.den, b.den, &d))
        return reduce64(n, d);
    return abc_frac_reduce128((__int128)a.num * b.num, (__int128)a.den * b.den);
}

static inline int frac_cmp(abc_frac a, abc_frac b)
{
    if (a.den == b.den)
        return (a.num > b.num) - (a.num < b.num);
    __int128 l = (__int128)a.num * b.den, r = (__int128)b.num * a.den;
    return (l > r) - (l < r);
}

#endif
