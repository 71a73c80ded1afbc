/* Arena, growable vectors and string buffers. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "abc_internal.h"

struct block {
    struct block *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
};

struct abc_arena {
    struct block *head;
    size_t next_block; /* blocks grow from 4 KiB to 64 KiB: small tunes stay small */
    void **adopted; /* malloc'd buffers freed with the arena */
    size_t n_adopted, cap_adopted;
};

abc_arena *abc_arena_new(void)
{
    abc_arena *a = malloc(sizeof *a); /* not calloc: glibc's calloc bypasses the per-thread cache */
    if (a)
        *a = (abc_arena){0};
    return a;
}

void abc_arena_free(abc_arena *a)
{
    if (!a)
        return;
    for (struct block *b = a->head, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    for (size_t i = 0; i < a->n_adopted; i++)
        free(a->adopted[i]);
    free(a->adopted);
    free(a);
}

void abc_arena_reset(abc_arena *a)
{
    for (size_t i = 0; i < a->n_adopted; i++)
        free(a->adopted[i]);
    a->n_adopted = 0;
    if (!a->head)
        return;
    /* the newest block is the biggest: keep it, empty */
    for (struct block *b = a->head->next, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    a->head->next = NULL;
    a->head->used = 0;
}

/* size bytes, not zeroed */
static void *arena_take(abc_arena *a, size_t size)
{
    size = (size + 7) & ~(size_t)7;
    struct block *b = a->head;
    if (!b || b->size - b->used < size) {
        size_t grow = a->next_block ? a->next_block : 4096;
        a->next_block = grow < 65536 ? grow * 2 : grow;
        size_t bsize = size > grow ? size : grow;
        b = malloc(sizeof *b + bsize);
        if (!b)
            return NULL;
        b->size = bsize;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += size;
    return p;
}

void *abc_arena_alloc(abc_arena *a, size_t size)
{
    void *p = arena_take(a, size);
    if (p)
        memset(p, 0, size);
    return p;
}

char *abc_arena_strndup(abc_arena *a, const char *s, size_t n)
{
    char *p = arena_take(a, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

/* Big first reservations get 2 MiB-aligned memory the kernel may back with huge pages: a 4 MB file has
 * ~60 MB of elements, and faulting that in 4 KiB pages costs as much as parsing. */
static void *alloc_big(size_t bytes)
{
    const size_t huge = (size_t)2 << 20;
    void *p = NULL;
    bytes = (bytes + huge - 1) & ~(huge - 1);
    if (posix_memalign(&p, huge, bytes))
        return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return p;
}

bool abc_vec_reserve(abc_vec *v, size_t n)
{
    if (n <= v->cap)
        return true;
    if (!v->data && n * v->item >= ((size_t)8 << 20)) {
        void *d = alloc_big(n * v->item);
        if (d) {
            v->data = d;
            v->cap = n;
            return true;
        }
    }
    void *d = realloc(v->data, n * v->item);
    if (!d)
        return false;
    v->data = d;
    v->cap = n;
    return true;
}

bool abc_vec_grow(abc_vec *v)
{
    return abc_vec_reserve(v, v->cap ? v->cap * 2 : 64);
}

void *abc_vec_push(abc_vec *v)
{
    void *slot = abc_vec_next(v);
    if (slot)
        memset(slot, 0, v->item);
    return slot;
}

void abc_vec_free(abc_vec *v)
{
    free(v->data);
    v->data = NULL;
    v->n = v->cap = 0;
}

void *abc_vec_move(abc_vec *v, abc_arena *a)
{
    void *p = NULL;
    if (v->n && a->n_adopted == a->cap_adopted) {
        size_t cap = a->cap_adopted ? a->cap_adopted * 2 : 16;
        void **ad = realloc(a->adopted, cap * sizeof *ad);
        if (ad) {
            a->adopted = ad;
            a->cap_adopted = cap;
        }
    }
    if (v->n && a->n_adopted < a->cap_adopted) {
        p = v->data; /* the arena takes the buffer over: no copy */
        a->adopted[a->n_adopted++] = p;
    } else {
        free(v->data);
    }
    v->data = NULL;
    v->cap = 0;
    return p;
}

static void buf_reserve(abc_buf *b, size_t extra)
{
    if (b->oom || b->n + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra + 1)
        cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        b->oom = true;
        return;
    }
    b->s = s;
    b->cap = cap;
}

void abc_buf_putn(abc_buf *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    if (b->oom || !n)
        return;
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

void abc_buf_puts(abc_buf *b, const char *s)
{
    abc_buf_putn(b, s, strlen(s));
}

void abc_buf_putc(abc_buf *b, char c)
{
    abc_buf_putn(b, &c, 1);
}

/* Does fmt use only %d %lld %c %s and %%, the conversions format_simple() knows? */
static bool simple_format(const char *fmt)
{
    for (const char *f = strchr(fmt, '%'); f; f = strchr(f + 1, '%')) {
        f++;
        if (f[0] == 'l' && f[1] == 'l' && f[2] == 'd')
            f += 2;
        else if (!*f || !strchr("dcs%", *f))
            return false;
    }
    return true;
}

typedef struct out {
    char *buf;
    size_t size, n; /* n counts every byte, stored or not */
} out;

static void out_put(out *o, const char *s, size_t len)
{
    if (o->n + 1 < o->size) {
        size_t room = o->size - 1 - o->n;
        memcpy(o->buf + o->n, s, len < room ? len : room);
    }
    o->n += len;
}

static void out_putc(out *o, char c)
{
    if (o->n + 1 < o->size)
        o->buf[o->n] = c;
    o->n++;
}

/* v in decimal, at the end of digits[24]; returns where it starts */
static size_t decimal(char digits[24], long long v)
{
    size_t k = 24;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        digits[--k] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        digits[--k] = '-';
    return k;
}

static void out_int(out *o, long long v)
{
    char digits[24];
    size_t k = decimal(digits, v);
    out_put(o, digits + k, sizeof digits - k);
}

/* vsnprintf() of a simple_format() format without glibc's format interpreter (the normaliser prints every
 * note length, the validator a message per wrong bar). */
static int format_simple(char *buf, size_t size, const char *fmt, va_list ap)
{
    out o = {buf, size, 0};
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            out_putc(&o, *f);
            continue;
        }
        switch (*++f) {
        case 'd':
            out_int(&o, va_arg(ap, int));
            break;
        case 'l':
            f += 2;
            out_int(&o, va_arg(ap, long long));
            break;
        case 'c':
            out_putc(&o, (char)va_arg(ap, int));
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            s = s ? s : "(null)";
            out_put(&o, s, strlen(s));
            break;
        }
        default: /* %% */
            out_putc(&o, '%');
        }
    }
    if (size)
        buf[o.n < size ? o.n : size - 1] = 0;
    return (int)o.n;
}

int abc_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    return simple_format(fmt) ? format_simple(buf, size, fmt, ap) : vsnprintf(buf, size, fmt, ap);
}

int abc_snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = abc_vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

void abc_buf_putint(abc_buf *b, long long v)
{
    char digits[24];
    size_t k = decimal(digits, v);
    abc_buf_putn(b, digits + k, sizeof digits - k);
}

void abc_buf_printf(abc_buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = abc_vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        abc_buf_putn(b, tmp, (size_t)n);
        return;
    }
    buf_reserve(b, (size_t)n);
    if (b->oom)
        return;
    va_start(ap, fmt);
    abc_vsnprintf(b->s + b->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
}
