/* Exact rational arithmetic for note times. Intermediate products use 128 bits; a result whose reduced
 * form does not fit 64 bits (only reachable with absurd tuplet nesting) is rounded to a 2^-40 grid so
 * that nothing overflows. */
#include "melodist/abc.h"

/* Binary GCD: shifts instead of divisions. */
static int64_t gcd64(int64_t a, int64_t b)
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

static abc_frac reduce128(__int128 num, __int128 den)
{
    if (den == 0)
        return (abc_frac){0, 1};
    if (den < 0) {
        num = -num;
        den = -den;
    }
    __int128 a = num < 0 ? -num : num, b = den;
    while (b) {
        __int128 t = a % b;
        a = b;
        b = t;
    }
    if (a > 1) {
        num /= a;
        den /= a;
    }
    const __int128 lim = (__int128)INT64_MAX;
    if (num > lim || num < -lim || den > lim) {
        const __int128 grid = (__int128)1 << 40;
        __int128 scaled = num * grid / den;
        if (scaled > lim)
            scaled = lim;
        if (scaled < -lim)
            scaled = -lim;
        return reduce128(scaled, grid);
    }
    return (abc_frac){(int64_t)num, (int64_t)den};
}

/* Fast path: everything fits 64 bits (all real music); otherwise the exact 128-bit route. */
static abc_frac reduce64(int64_t num, int64_t den)
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

abc_frac abc_frac_make(int64_t num, int64_t den)
{
    if (den == 0)
        return (abc_frac){0, 1};
    if (den < 0 && den != INT64_MIN && num != INT64_MIN) {
        num = -num;
        den = -den;
    } else if (den < 0) {
        return reduce128(-(__int128)num, -(__int128)den);
    }
    return reduce64(num, den);
}

abc_frac abc_frac_add(abc_frac a, abc_frac b)
{
    int64_t x, y, n, d;
    if (a.den == b.den && !__builtin_add_overflow(a.num, b.num, &n))
        return reduce64(n, a.den);
    if (!__builtin_mul_overflow(a.num, b.den, &x) && !__builtin_mul_overflow(b.num, a.den, &y) &&
        !__builtin_add_overflow(x, y, &n) && !__builtin_mul_overflow(a.den, b.den, &d))
        return reduce64(n, d);
    return reduce128((__int128)a.num * b.den + (__int128)b.num * a.den, (__int128)a.den * b.den);
}

abc_frac abc_frac_sub(abc_frac a, abc_frac b)
{
    if (b.num == INT64_MIN)
        return reduce128((__int128)a.num * b.den - (__int128)b.num * a.den, (__int128)a.den * b.den);
    return abc_frac_add(a, (abc_frac){-b.num, b.den});
}

abc_frac abc_frac_mul(abc_frac a, abc_frac b)
{
    int64_t n, d;
    if (b.num == 1 && b.den == 1)
        return a;
    if (a.num == 1 && a.den == 1)
        return b;
    if (!__builtin_mul_overflow(a.num, b.num, &n) && !__builtin_mul_overflow(a.den, b.den, &d))
        return reduce64(n, d);
    return reduce128((__int128)a.num * b.num, (__int128)a.den * b.den);
}

abc_frac abc_frac_div(abc_frac a, abc_frac b)
{
    if (b.num == 0)
        return (abc_frac){0, 1};
    return reduce128((__int128)a.num * b.den, (__int128)a.den * b.num);
}

int abc_frac_cmp(abc_frac a, abc_frac b)
{
    if (a.den == b.den)
        return (a.num > b.num) - (a.num < b.num);
    __int128 l = (__int128)a.num * b.den, r = (__int128)b.num * a.den;
    return (l > r) - (l < r);
}

bool abc_frac_eq(abc_frac a, abc_frac b)
{
    return a.num == b.num && a.den == b.den;
}

double abc_frac_to_double(abc_frac a)
{
    return (double)a.num / (double)a.den;
}

int64_t abc_frac_to_ticks(abc_frac a, int tpq)
{
    __int128 n = (__int128)a.num * 4 * tpq, d = a.den;
    __int128 q = (n >= 0 ? n + d / 2 : n - d / 2) / d;
    return (int64_t)q;
}
