/* Exact rational arithmetic for note times. Intermediate products use 128 bits; a result whose reduced
 * form does not fit 64 bits (only reachable with absurd tuplet nesting) is rounded to a 2^-40 grid so
 * that nothing overflows. */
#include "frac_inline.h"

abc_frac abc_frac_reduce128(__int128 num, __int128 den)
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
        return abc_frac_reduce128(scaled, grid);
    }
    return (abc_frac){(int64_t)num, (int64_t)den};
}

abc_frac abc_frac_make(int64_t num, int64_t den)
{
    if (den == 0)
        return (abc_frac){0, 1};
    if (den < 0 && den != INT64_MIN && num != INT64_MIN) {
        num = -num;
        den = -den;
    } else if (den < 0) {
        return abc_frac_reduce128(-(__int128)num, -(__int128)den);
    }
    return reduce64(num, den);
}

abc_frac abc_frac_add(abc_frac a, abc_frac b)
{
    return frac_add(a, b);
}

abc_frac abc_frac_sub(abc_frac a, abc_frac b)
{
    return frac_sub(a, b);
}

abc_frac abc_frac_mul(abc_frac a, abc_frac b)
{
    return frac_mul(a, b);
}

abc_frac abc_frac_div(abc_frac a, abc_frac b)
{
    if (b.num == 0)
        return (abc_frac){0, 1};
    return abc_frac_reduce128((__int128)a.num * b.den, (__int128)a.den * b.num);
}

int abc_frac_cmp(abc_frac a, abc_frac b)
{
    return frac_cmp(a, b);
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
