/* Safe textual repairs (see repair.h). Works on lines; the header is everything up to the first K: line. */
#include "repair.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/abc.h"

struct lines {
    char **v;
    size_t n, cap;
};

static void lines_push(struct lines *l, const char *s, size_t n)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        if (!l->v)
            abort();
    }
    l->v[l->n++] = strndup(s, n);
}

static void lines_insert(struct lines *l, size_t at, const char *s)
{
    lines_push(l, s, strlen(s));
    char *last = l->v[l->n - 1];
    memmove(l->v + at + 1, l->v + at, (l->n - 1 - at) * sizeof *l->v);
    l->v[at] = last;
}

static void lines_remove(struct lines *l, size_t at)
{
    free(l->v[at]);
    memmove(l->v + at, l->v + at + 1, (l->n - at - 1) * sizeof *l->v);
    l->n--;
}

static int is_field(const char *s, char key) { return s[0] == key && s[1] == ':'; }

static int is_any_field(const char *s)
{
    return ((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')) && s[1] == ':';
}

static const char *field_value(const char *s)
{
    s += 2;
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

static int repair_meter(struct lines *l, size_t k)
{
    size_t last_m = 0;
    int found = 0;
    for (size_t i = k + 1; i < l->n && (is_any_field(l->v[i]) || l->v[i][0] == '%'); i++)
        if (is_field(l->v[i], 'M')) {
            last_m = i;
            found = 1;
        }
    if (!found)
        return 0;
    int has_l = 0;
    abc_meter header_meter = {ABC_METER_NONE, 0, 0};
    for (size_t i = 0; i < k; i++) {
        if (is_field(l->v[i], 'L'))
            has_l = 1;
        if (is_field(l->v[i], 'M')) {
            char err[128];
            abc_meter m;
            if (abc_parse_meter(field_value(l->v[i]), &m, err, sizeof err))
                header_meter = m;
        }
    }
    char *meter = strdup(l->v[last_m]);
    for (size_t i = l->n; i-- > 0;)
        if (is_field(l->v[i], 'M') && (i < k || (i > k && i <= last_m))) {
            lines_remove(l, i);
            if (i < k)
                k--;
        }
    lines_insert(l, k, meter);
    free(meter);
    if (!has_l) {
        abc_frac unit = abc_default_unit(header_meter);
        char buf[64];
        snprintf(buf, sizeof buf, "L:%lld/%lld", (long long)unit.num, (long long)unit.den);
        lines_insert(l, k, buf);
    }
    return 1;
}

static int repair_stray_bracket(char *line)
{
    if (!is_any_field(line) || !strchr("TCOARSNBDFGHZ", line[0]))
        return 0;
    int open = 0, close = 0;
    for (const char *p = line; *p; p++) {
        open += *p == '[';
        close += *p == ']';
    }
    size_t n = strlen(line);
    int changed = 0;
    while (close > open && n > 2 && (line[n - 1] == ']' || line[n - 1] == ' ')) {
        close -= line[n - 1] == ']';
        line[--n] = '\0';
        changed = 1;
    }
    return changed;
}

static int repair_key_name(struct lines *l, size_t k)
{
    static const char *const names[][2] = {{"H", "B"}, {"Es", "Eb"}, {"As", "Ab"}};
    const char *v = field_value(l->v[k]);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(v, names[i][0])) {
            char buf[16];
            snprintf(buf, sizeof buf, "K:%s", names[i][1]);
            free(l->v[k]);
            l->v[k] = strdup(buf);
            return 1;
        }
    return 0;
}

void repair_tune(struct data_buf *text, int missing_x, int x, struct data_counters *repairs)
{
    struct lines l = {0};
    for (const char *p = text->data; p && *p;) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        lines_push(&l, p, n);
        p += n + (eol != NULL);
    }
    if (missing_x) {
        char buf[32];
        snprintf(buf, sizeof buf, "X:%d", x);
        lines_insert(&l, 0, buf);
        data_counters_add(repairs, "missing X:", 1);
    }
    size_t k = 0;
    while (k < l.n && !is_field(l.v[k], 'K'))
        k++;
    int stray = 0;
    for (size_t i = 0; i < k; i++)
        stray |= repair_stray_bracket(l.v[i]);
    if (stray)
        data_counters_add(repairs, "stray ] in field", 1);
    if (k < l.n) {
        if (repair_key_name(&l, k))
            data_counters_add(repairs, "German key name", 1);
        if (repair_meter(&l, k))
            data_counters_add(repairs, "placeholder meter", 1);
    }
    data_buf_reset(text);
    for (size_t i = 0; i < l.n; i++) {
        data_buf_puts(text, l.v[i]);
        data_buf_putc(text, '\n');
        free(l.v[i]);
    }
    free(l.v);
}
