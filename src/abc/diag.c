/* Diagnostics: a growable list of positioned errors and warnings. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abc_internal.h"

void abc_diags_init(abc_diags *d)
{
    memset(d, 0, sizeof *d);
}

void abc_diags_clear(abc_diags *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->items[i].message); /* the hint is in the same block */
    d->n = d->n_errors = d->n_warnings = 0;
}

void abc_diags_free(abc_diags *d)
{
    abc_diags_clear(d);
    free(d->items);
    abc_diags_init(d);
}

#define MESSAGE_MAX 512 /* longer messages are cut (printf form and text form alike) */

static bool reserve(abc_diags *d, size_t extra)
{
    if (d->n + extra <= d->cap)
        return true;
    size_t cap = d->cap ? d->cap * 2 : 16;
    while (cap < d->n + extra)
        cap *= 2;
    abc_diag *items = realloc(d->items, cap * sizeof *items);
    if (!items)
        return false;
    d->items = items;
    d->cap = cap;
    return true;
}

static void count(abc_diags *d, abc_severity sev)
{
    if (sev == ABC_ERROR)
        d->n_errors++;
    else
        d->n_warnings++;
}

void abc_diags_add_text(abc_diags *d, abc_severity sev, int line, int col, int tune, const char *category,
                        const char *hint, const char *message)
{
    if (!d || !reserve(d, 1))
        return;
    size_t mlen = strnlen(message, MESSAGE_MAX - 1), hlen = hint ? strlen(hint) + 1 : 0;
    char *text = malloc(mlen + 1 + hlen); /* message and hint in one block */
    if (!text)
        return;
    memcpy(text, message, mlen);
    text[mlen] = 0;
    if (hint)
        memcpy(text + mlen + 1, hint, hlen);
    d->items[d->n++] = (abc_diag){.severity = sev, .line = line, .col = col, .tune = tune, .category = category,
                                  .message = text, .hint = hint ? text + mlen + 1 : NULL};
    count(d, sev);
}

void abc_diags_add(abc_diags *d, abc_severity sev, int line, int col, int tune, const char *category,
                   const char *hint, const char *fmt, ...)
{
    char buf[MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    abc_vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    abc_diags_add_text(d, sev, line, col, tune, category, hint, buf);
}

void abc_diags_move(abc_diags *to, abc_diags *from)
{
    if (!to->n && to->cap < from->n) { /* into an empty list: take the array over instead of copying it */
        abc_diags t = *to;
        *to = *from;
        *from = t;
        return;
    }
    if (!reserve(to, from->n)) { /* out of memory: the diagnostics are lost, as when adding them fails */
        abc_diags_clear(from);
        return;
    }
    for (size_t i = 0; i < from->n; i++) {
        to->items[to->n++] = from->items[i];
        count(to, from->items[i].severity);
    }
    from->n = from->n_errors = from->n_warnings = 0;
}

int abc_diag_format(const abc_diag *dg, const char *filename, char *buf, size_t size)
{
    return abc_snprintf(buf, size, "%s:%d:%d: %s[%s]: %s%s%s%s", filename, dg->line, dg->col,
                        dg->severity == ABC_ERROR ? "error" : "warning", dg->category, dg->message,
                        dg->hint ? " (hint: " : "", dg->hint ? dg->hint : "", dg->hint ? ")" : "");
}

static int cmp_pos(const void *a, const void *b)
{
    const abc_diag *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return 0;
}

/* Stable natural merge sort: the diagnostics of several passes arrive as a few sorted runs; each pass merges
 * them pairwise, in place, from the back, with the right-hand run set aside (often a short one). */
void abc_diags_sort(abc_diags *d)
{
    abc_diag *a = d->items, *tmp = NULL;
    size_t n = d->n, tmp_cap = 0;
    for (;;) {
        size_t runs = 0;
        for (size_t lo = 0; lo < n; runs++) {
            size_t mid = lo + 1;
            while (mid < n && cmp_pos(&a[mid - 1], &a[mid]) <= 0)
                mid++;
            size_t hi = mid < n ? mid + 1 : mid;
            while (hi < n && cmp_pos(&a[hi - 1], &a[hi]) <= 0)
                hi++;
            if (hi > mid) {
                if (hi - mid > tmp_cap) {
                    abc_diag *t = realloc(tmp, (hi - mid) * sizeof *t);
                    if (!t) { /* out of memory: left as it is */
                        free(tmp);
                        return;
                    }
                    tmp = t;
                    tmp_cap = hi - mid;
                }
                memcpy(tmp, a + mid, (hi - mid) * sizeof *tmp);
                size_t i = mid, j = hi - mid, k = hi;
                while (i > lo && j > 0) /* on a tie the right-hand one goes last: stable */
                    a[--k] = cmp_pos(&a[i - 1], &tmp[j - 1]) > 0 ? a[--i] : tmp[--j];
                while (j > 0)
                    a[--k] = tmp[--j];
            }
            lo = hi;
        }
        if (runs <= 1)
            break;
    }
    free(tmp);
}
