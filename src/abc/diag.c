/* Diagnostics: a growable list of positioned errors and warnings. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/abc.h"

void abc_diags_init(abc_diags *d)
{
    memset(d, 0, sizeof *d);
}

void abc_diags_clear(abc_diags *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->items[i].message);
        free(d->items[i].hint);
    }
    d->n = d->n_errors = d->n_warnings = 0;
}

void abc_diags_free(abc_diags *d)
{
    abc_diags_clear(d);
    free(d->items);
    abc_diags_init(d);
}

void abc_diags_add(abc_diags *d, abc_severity sev, int line, int col, int tune, const char *category,
                   const char *hint, const char *fmt, ...)
{
    if (!d)
        return;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        abc_diag *items = realloc(d->items, cap * sizeof *items);
        if (!items)
            return;
        d->items = items;
        d->cap = cap;
    }
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    abc_diag *dg = &d->items[d->n];
    dg->severity = sev;
    dg->line = line;
    dg->col = col;
    dg->tune = tune;
    dg->category = category;
    dg->message = strdup(buf);
    dg->hint = hint ? strdup(hint) : NULL;
    if (!dg->message)
        return;
    d->n++;
    if (sev == ABC_ERROR)
        d->n_errors++;
    else
        d->n_warnings++;
}

int abc_diag_format(const abc_diag *dg, const char *filename, char *buf, size_t size)
{
    const char *sev = dg->severity == ABC_ERROR ? "error" : "warning";
    if (dg->hint)
        return snprintf(buf, size, "%s:%d:%d: %s[%s]: %s (hint: %s)", filename, dg->line, dg->col, sev,
                        dg->category, dg->message, dg->hint);
    return snprintf(buf, size, "%s:%d:%d: %s[%s]: %s", filename, dg->line, dg->col, sev, dg->category,
                    dg->message);
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

/* Stable merge sort (diagnostics of several passes arrive as sorted runs). */
void abc_diags_sort(abc_diags *d)
{
    if (d->n < 2)
        return;
    abc_diag *tmp = malloc(d->n * sizeof *tmp);
    if (!tmp)
        return;
    for (size_t width = 1; width < d->n; width *= 2) {
        for (size_t lo = 0; lo < d->n; lo += 2 * width) {
            size_t mid = lo + width < d->n ? lo + width : d->n, hi = lo + 2 * width < d->n ? lo + 2 * width : d->n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = cmp_pos(&d->items[j], &d->items[i]) < 0 ? d->items[j++] : d->items[i++];
            while (i < mid)
                tmp[k++] = d->items[i++];
            while (j < hi)
                tmp[k++] = d->items[j++];
        }
        memcpy(d->items, tmp, d->n * sizeof *tmp);
    }
    free(tmp);
}
