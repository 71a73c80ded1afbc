/* Normaliser: one canonical text for a tune (the rules are in docs/abc-format.md).
 *
 * Header: X, titles, the other fields in written order, then M, L (always written), Q, V, and K last.
 * Body: music re-flowed to BARS_PER_LINE bars per line between hard breaks (field lines, comments,
 * directives, lyrics); no spaces around bar lines, one space for a beam break; lengths reduced; endings
 * written [n; decorations written !name!; tuplets without the defaults. */
#include <stdlib.h>
#include <string.h>

#include "abc_internal.h"

#define BARS_PER_LINE 4

static int64_t gcd(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a < 0 ? -a : a;
}

static void put_len(abc_buf *b, abc_len l)
{
    if (l.den == 0) { /* the invalid A/0 stays visible */
        abc_buf_putint(b, l.num);
        abc_buf_puts(b, "/0");
        return;
    }
    int64_t g = l.den == 1 ? 1 : gcd(l.num, l.den), n = l.num / g, d = l.den / g;
    if (n != 1)
        abc_buf_putint(b, n);
    if (d != 1)
        abc_buf_putc(b, '/');
    if (d > 2)
        abc_buf_putint(b, d);
}

static void put_note(abc_buf *b, const abc_note *n)
{
    static const char *acc[] = {"", "=", "^", "_", "^^", "__"};
    abc_buf_puts(b, acc[n->acc]);
    int oct = n->octave;
    if (oct >= 1) {
        abc_buf_putc(b, (char)(n->letter - 'A' + 'a'));
        for (int k = 1; k < oct; k++)
            abc_buf_putc(b, '\'');
    } else {
        abc_buf_putc(b, n->letter);
        for (int k = 0; k > oct; k--)
            abc_buf_putc(b, ',');
    }
    put_len(b, n->len);
    if (n->tie)
        abc_buf_putc(b, '-');
}

/* Repeat signs in the spellings every reader knows (:| |: :|] and, for a double repeat, :: as written or
 * :||: for :|: and :||: -- abc2midi misreads :|: before endings, and reads :: and :||: differently after
 * an ending); other bar styles as written. */
static void put_bar(abc_buf *b, const abc_bar_line *bar)
{
    static const char *body[] = {"|", "||", "|]", "[|", "]", ".|", "[|]"};
    for (int k = 0; k < bar->repeat_end; k++)
        abc_buf_putc(b, ':');
    if (bar->repeat_end && bar->repeat_start) {
        if (!bar->compact)
            abc_buf_puts(b, "||");
    } else if (bar->repeat_end) {
        abc_buf_puts(b, bar->style == ABC_BAR_THIN_THICK ? "|]" : "|");
    } else if (bar->repeat_start) {
        abc_buf_putc(b, '|');
    } else {
        abc_buf_puts(b, body[bar->style]);
    }
    for (int k = 0; k < bar->repeat_start; k++)
        abc_buf_putc(b, ':');
}

static void put_tuplet(abc_buf *b, const abc_tuplet *t, bool compound)
{
    abc_buf_putc(b, '(');
    abc_buf_putint(b, t->p);
    bool q = t->q != abc_tuplet_default_q(t->p, compound), r = t->r != t->p;
    if (q || r)
        abc_buf_putc(b, ':');
    if (q)
        abc_buf_putint(b, t->q);
    if (r) {
        abc_buf_putc(b, ':');
        abc_buf_putint(b, t->r);
    }
}

/* Elements that end the flow of music onto their own line. */
static bool hard_break(const abc_element *e);

/* Nothing but spacing, line ends and bar lines before the flow ends: no line break is due after element i. */
static bool last_music(const abc_tune *t, size_t i)
{
    for (size_t k = i + 1; k < t->n_body; k++) {
        const abc_element *e = &t->body[k];
        if (hard_break(e) || e->kind == ABC_EL_COMMENT)
            return true;
        if (e->kind != ABC_EL_SPACE && e->kind != ABC_EL_EOL)
            return false;
    }
    return true;
}

/* The next music after element i is an ending ([2): it stays on the line of its bar (abc2midi needs that). */
static bool ending_next(const abc_tune *t, size_t i)
{
    for (size_t k = i + 1; k < t->n_body; k++) {
        const abc_element *e = &t->body[k];
        if (e->kind != ABC_EL_SPACE && e->kind != ABC_EL_EOL)
            return e->kind == ABC_EL_ENDING;
    }
    return false;
}

static bool hard_break(const abc_element *e)
{
    return (e->kind == ABC_EL_FIELD && !e->u.field.inline_) || e->kind == ABC_EL_DIRECTIVE ||
           (e->kind == ABC_EL_COMMENT && e->src_len && e->col == 1);
}

typedef struct printer {
    abc_buf *b;
    size_t line_start;  /* offset in b of the current output line */
    int bars_on_line;
    bool note_in_bar;   /* a note or rest since the last bar line (the bar counts) */
    bool want_space;    /* a beam break is pending */
    bool after_bar;     /* the last thing printed on the line is a bar line */
    bool after_dot;     /* the last thing printed is a '.' decoration: a bar line right after reads as ".|" */
    bool compound;
} printer;

static void newline(printer *p)
{
    if (p->b->n > p->line_start) {
        abc_buf_putc(p->b, '\n');
        p->line_start = p->b->n;
    }
    p->bars_on_line = 0;
    p->want_space = false;
    p->after_bar = false;
    p->after_dot = false;
}

static void put_music(printer *p, const abc_element *e)
{
    abc_buf *b = p->b;
    if (e->kind == ABC_EL_BAR && p->after_bar && b->n > p->line_start) {
        /* consecutive bar lines: a plain one adds nothing; others stay apart so they read back the same */
        if (e->u.bar.style == ABC_BAR_SINGLE && !e->u.bar.repeat_end && !e->u.bar.repeat_start)
            return;
        abc_buf_putc(b, ' ');
    } else if (e->kind == ABC_EL_BAR && p->after_dot) {
        abc_buf_putc(b, ' '); /* a staccato dot left before a bar line must not become a dotted bar line */
    } else if (p->want_space && (!p->after_bar || e->kind == ABC_EL_UNKNOWN) && e->kind != ABC_EL_BAR &&
               b->n > p->line_start) {
        abc_buf_putc(b, ' ');
    }
    p->want_space = false;
    p->after_bar = e->kind == ABC_EL_BAR;
    p->after_dot = e->kind == ABC_EL_DECORATION && e->u.text.placement != '!' && e->u.text.placement != '+' &&
                   !strcmp(e->u.text.text, ".");
    if (e->kind == ABC_EL_UNKNOWN) {
        /* unreadable text stays apart, so that it cannot join its neighbours into something readable */
        if (b->n > p->line_start && b->s[b->n - 1] != ' ')
            abc_buf_putc(b, ' ');
        abc_buf_puts(b, e->u.text.text);
        p->want_space = true;
        return;
    }
    switch (e->kind) {
    case ABC_EL_NOTE:
        put_note(b, &e->u.note);
        p->note_in_bar = true;
        break;
    case ABC_EL_REST:
        abc_buf_putc(b, e->u.rest.symbol);
        put_len(b, e->u.rest.len);
        p->note_in_bar = true;
        break;
    case ABC_EL_CHORD_BEGIN: abc_buf_putc(b, '['); break;
    case ABC_EL_CHORD_END:
        abc_buf_putc(b, ']');
        put_len(b, e->u.chord.len);
        if (e->u.chord.tie)
            abc_buf_putc(b, '-');
        break;
    case ABC_EL_GRACE_BEGIN: abc_buf_puts(b, e->u.acciaccatura ? "{/" : "{"); break;
    case ABC_EL_GRACE_END: abc_buf_putc(b, '}'); break;
    case ABC_EL_CHORD_SYMBOL: abc_buf_printf(b, "\"%s\"", e->u.text.text); break;
    case ABC_EL_ANNOTATION: abc_buf_printf(b, "\"%c%s\"", e->u.text.placement, e->u.text.text); break;
    case ABC_EL_DECORATION:
        if (e->u.text.placement == '!' || e->u.text.placement == '+')
            abc_buf_printf(b, "!%s!", e->u.text.text);
        else
            abc_buf_puts(b, e->u.text.text);
        break;
    case ABC_EL_TUPLET: put_tuplet(b, &e->u.tuplet, p->compound); break;
    case ABC_EL_BROKEN:
        for (int k = 0; k < e->u.broken.count; k++)
            abc_buf_putc(b, e->u.broken.dir);
        break;
    case ABC_EL_SLUR_BEGIN: abc_buf_puts(b, e->u.dotted ? ".(" : "("); break;
    case ABC_EL_SLUR_END: abc_buf_putc(b, ')'); break;
    case ABC_EL_TIE: abc_buf_puts(b, e->u.dotted ? ".-" : "-"); break;
    case ABC_EL_BAR:
        put_bar(b, &e->u.bar);
        if (p->note_in_bar)
            p->bars_on_line++;
        p->note_in_bar = false;
        break;
    case ABC_EL_ENDING: abc_buf_printf(b, "[%s", e->u.ending.text); break;
    case ABC_EL_FIELD: abc_buf_printf(b, "[%c:%s]", e->u.field.key, e->u.field.value); break;
    case ABC_EL_SCORE_BREAK: abc_buf_putn(b, "$", 1); break;
    case ABC_EL_OVERLAY: abc_buf_putc(b, '&'); break;
    default: break;
    }
}

static bool is_compound(const char *meter_value)
{
    abc_meter m;
    char err[8];
    return abc_parse_meter(meter_value, &m, err, sizeof err) && abc_meter_is_compound(m);
}

/* lyrics_next[i]: the music at element i is followed (after the flow it belongs to) by a w: line. The lyrics
 * of a w: line go with the music line above it, so that flow is split with '\' continuations. */
static bool *lyrics_next(const abc_tune *t)
{
    bool *next = malloc(t->n_body ? t->n_body : 1);
    if (!next)
        return NULL;
    bool w = false;
    for (size_t i = t->n_body; i-- > 0;) {
        const abc_element *e = &t->body[i];
        if (hard_break(e))
            w = e->kind == ABC_EL_FIELD && e->u.field.key == 'w';
        next[i] = w;
    }
    return next;
}

static void put_body(printer *p, const abc_tune *t)
{
    bool *lyrics = lyrics_next(t);
    if (!lyrics && t->n_body) {
        p->b->oom = true;
        return;
    }
    for (size_t i = 0; i < t->n_body; i++) {
        const abc_element *e = &t->body[i];
        if (hard_break(e)) {
            newline(p);
            if (e->kind == ABC_EL_FIELD) {
                abc_buf_printf(p->b, "%c:%s", e->u.field.key, e->u.field.value);
                if (e->u.field.key == 'M')
                    p->compound = is_compound(e->u.field.value);
            } else {
                abc_buf_printf(p->b, "%s%s", e->kind == ABC_EL_DIRECTIVE ? "%%" : "%", e->u.text.text);
            }
            newline(p);
            continue;
        }
        switch (e->kind) {
        case ABC_EL_SPACE:
        case ABC_EL_EOL:
            p->want_space = true; /* a line end between notes is a beam break */
            break;
        case ABC_EL_COMMENT: /* after music: stays at the end of its line */
            if (p->b->n > p->line_start)
                abc_buf_putc(p->b, ' ');
            if (lyrics[i] && !last_music(t, i))
                abc_buf_puts(p->b, "\\ ");
            abc_buf_printf(p->b, "%%%s", e->u.text.text);
            newline(p);
            break;
        default:
            if (e->kind == ABC_EL_FIELD && e->u.field.key == 'M')
                p->compound = is_compound(e->u.field.value);
            put_music(p, e);
            if (e->kind == ABC_EL_BAR && p->bars_on_line >= BARS_PER_LINE && !last_music(t, i) &&
                !ending_next(t, i)) {
                if (lyrics[i])
                    abc_buf_putc(p->b, '\\');
                newline(p);
            }
        }
    }
    newline(p);
    free(lyrics);
}

static int header_rank(char key)
{
    switch (key) {
    case 'X': return 0;
    case 'T': return 1;
    case 'M': return 3;
    case 'L': return 4;
    case 'Q': return 5;
    case 'V': return 6;
    case 'K': return 7;
    default: return 2;
    }
}

static void put_field(abc_buf *b, const abc_field *fl)
{
    if (fl->key == '%')
        abc_buf_printf(b, "%%%%%s\n", fl->value);
    else if (fl->key == '#')
        abc_buf_printf(b, "%%%s\n", fl->value);
    else
        abc_buf_printf(b, "%c:%s\n", fl->key, fl->value);
}

/* The unit length and meter in force in the header: the file header's, then the tune's. */
static void header_units(const abc_field *h, size_t n, bool *have_l, abc_meter *meter)
{
    char err[8];
    for (size_t i = 0; i < n; i++) {
        *have_l |= h[i].key == 'L';
        if (h[i].key == 'M' && !abc_parse_meter(h[i].value, meter, err, sizeof err))
            *meter = (abc_meter){ABC_METER_NONE, 0, 0};
    }
}

static void put_tune(abc_buf *b, const abc_file *f, const abc_tune *t)
{
    bool have_l = false;
    abc_meter meter = {ABC_METER_NONE, 0, 0};
    header_units(f->header, f->n_header, &have_l, &meter);
    header_units(t->header, t->n_header, &have_l, &meter);
    bool compound = abc_meter_is_compound(meter);
    for (int rank = 0; rank <= 7; rank++) {
        for (size_t i = 0; i < t->n_header; i++)
            if (header_rank(t->header[i].key) == rank)
                put_field(b, &t->header[i]);
        if (rank == 4 && !have_l) { /* the unit the meter implies, written out */
            abc_frac u = abc_default_unit(meter);
            abc_buf_printf(b, "L:%lld/%lld\n", (long long)u.num, (long long)u.den);
        }
    }
    printer p = {.b = b, .line_start = b->n, .compound = compound};
    put_body(&p, t);
}

char *abc_fmt_tune(const abc_file *f, size_t index, size_t *len)
{
    if (index >= f->n_tunes)
        return NULL;
    abc_buf b = {0};
    put_tune(&b, f, &f->tunes[index]);
    if (b.oom || !b.s) {
        free(b.s);
        return NULL;
    }
    if (len)
        *len = b.n;
    return b.s;
}

char *abc_fmt_file(const abc_file *f, size_t *len)
{
    abc_buf b = {0};
    for (size_t i = 0; i < f->n_header; i++)
        put_field(&b, &f->header[i]);
    for (size_t i = 0; i < f->n_tunes; i++) {
        if (b.n)
            abc_buf_putc(&b, '\n');
        put_tune(&b, f, &f->tunes[i]);
    }
    if (!b.s)
        abc_buf_puts(&b, "");
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    if (len)
        *len = b.n;
    return b.s;
}
