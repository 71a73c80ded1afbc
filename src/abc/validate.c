/* Validator: header rules, field letters, bar lengths against the meter, balance of slurs, ties, tuplets,
 * grace groups and endings. Syntax errors come from the parser, field values from the model builder. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "abc_internal.h"
#include "frac_inline.h"
#include "model_internal.h"

static const char known_fields[] = "ABCDFGHIKLMmNOPQRrSsTUVWwXZ+";
static const char body_fields[] = "IKLMmNPQRrsTUVWw+";

static void check_header(const abc_file *f, size_t index, abc_diags *out)
{
    const abc_tune *t = &f->tunes[index];
    int ti = (int)index;
    bool have_t = false, have_k = false;
    for (size_t i = 0; i < t->n_header; i++) {
        const abc_field *fl = &t->header[i];
        if (fl->key == '%' || fl->key == '#')
            continue;
        if (fl->key == 'T')
            have_t = true;
        if (fl->key == 'K')
            have_k = true;
        if (fl->key == 'X' && i > 0)
            abc_diags_add(out, ABC_ERROR, fl->line, fl->col, ti, "header", "start each tune with one X: line",
                          "X: must be the first field of a tune");
        if (!strchr(known_fields, fl->key))
            abc_diags_add(out, ABC_WARNING, fl->line, fl->col, ti, "field",
                          "use a standard field letter, or a comment (%) for private data", "unknown field '%c:'",
                          fl->key);
    }
    if (!have_t && t->n_header)
        abc_diags_add(out, ABC_WARNING, t->header[0].line, t->header[0].col, ti, "header",
                      "add a title, e.g. T:My Tune, after X:", "tune without a T: title");
    (void)have_k; /* a missing K: is reported by the parser */
}

static void check_body_field(const abc_element *e, int ti, abc_diags *out)
{
    char k = e->u.field.key;
    if (!strchr(known_fields, k))
        abc_diags_add(out, ABC_WARNING, e->line, e->col, ti, "field",
                      "use a standard field letter, or a comment (%) for private data", "unknown field '%c:'", k);
    else if (!strchr(body_fields, k))
        abc_diags_add(out, ABC_WARNING, e->line, e->col, ti, "header", "move it into the tune header, before K:",
                      "field '%c:' is only allowed in the header", k);
}

/* One pass over the body: field letters; slurs, tuplets, grace groups and endings in written order (per
 * tune; voices share the counters). */
static void check_body(const abc_file *f, size_t index, abc_diags *out)
{
    const abc_tune *t = &f->tunes[index];
    int ti = (int)index;
    int slur_depth = 0, tup_left = 0;
    const abc_element *slur_open[64], *tuplet = NULL, *grace = NULL;
    int grace_notes = 0, last_ending = 0;
    bool in_chord = false;
    for (size_t i = 0; i < t->n_body; i++) {
        const abc_element *e = &t->body[i];
        switch (e->kind) {
        case ABC_EL_SLUR_BEGIN:
            if (slur_depth < 64)
                slur_open[slur_depth] = e;
            slur_depth++;
            break;
        case ABC_EL_SLUR_END:
            if (slur_depth == 0)
                abc_diags_add(out, ABC_ERROR, e->line, e->col, ti, "slur", "remove it or add the opening (",
                              "')' closes no slur");
            else
                slur_depth--;
            break;
        case ABC_EL_TUPLET:
            if (tup_left > 0)
                abc_diags_add(out, ABC_WARNING, tuplet->line, tuplet->col, ti, "tuplet",
                              "give the tuplet all its notes before starting another",
                              "tuplet (%d has %d note(s) missing", tuplet->u.tuplet.p, tup_left);
            tuplet = e;
            tup_left = e->u.tuplet.r;
            break;
        case ABC_EL_NOTE:
        case ABC_EL_REST:
        case ABC_EL_CHORD_END:
            if (grace) {
                grace_notes++;
                break;
            }
            if (e->kind == ABC_EL_CHORD_END)
                in_chord = false;
            else if (in_chord)
                break; /* a note inside a chord counts with the chord */
            if (tup_left > 0)
                tup_left--;
            break;
        case ABC_EL_CHORD_BEGIN:
            in_chord = true;
            break;
        case ABC_EL_GRACE_BEGIN:
            grace = e;
            grace_notes = 0;
            break;
        case ABC_EL_GRACE_END:
            if (grace && grace_notes == 0)
                abc_diags_add(out, ABC_ERROR, grace->line, grace->col, ti, "grace", "put notes inside { }",
                              "empty grace group");
            grace = NULL;
            break;
        case ABC_EL_ENDING: {
            int first = e->u.ending.text[0] ? (int)(e->u.ending.text[0] - '0') : 0;
            if (first > 1 && last_ending == 0)
                abc_diags_add(out, ABC_WARNING, e->line, e->col, ti, "repeat",
                              "the endings of a repeat are numbered [1, [2, ...", "ending %s without a first ending",
                              e->u.ending.text);
            last_ending = first;
            break;
        }
        case ABC_EL_BAR:
            if (e->u.bar.repeat_start)
                last_ending = 0;
            break;
        case ABC_EL_FIELD:
            check_body_field(e, ti, out);
            if (e->u.field.key == 'V') {
                slur_depth = 0;
                tup_left = 0;
            }
            break;
        default:
            break;
        }
    }
    for (int k = 0; k < slur_depth && k < 64; k++)
        abc_diags_add(out, ABC_ERROR, slur_open[k]->line, slur_open[k]->col, ti, "slur", "close it with )",
                      "slur '(' is never closed");
    if (tup_left > 0)
        abc_diags_add(out, ABC_ERROR, tuplet->line, tuplet->col, ti, "tuplet", "add the missing notes or fix the tuplet number",
                      "tuplet (%d has %d note(s) missing at the end of the tune", tuplet->u.tuplet.p, tup_left);
}

static void check_ties(const abc_model *m, int ti, abc_diags *out)
{
    for (size_t vi = 0; vi < m->n_voices; vi++) {
        const abc_voice *v = &m->voices[vi];
        for (size_t i = 0; i < v->n_events; i++) {
            const abc_event *e = &v->events[i];
            if (!(e->flags & ABC_EV_TIE) || (e->flags & ABC_EV_GRACE))
                continue;
            /* the tie needs a note of the same pitch in the next group */
            abc_frac end = frac_add(e->start, e->dur);
            bool found = false;
            for (size_t k = i + 1; k < v->n_events && !found; k++) {
                const abc_event *n = &v->events[k];
                if (n->flags & ABC_EV_GRACE)
                    continue;
                int c = frac_cmp(n->start, end);
                if (c > 0)
                    break;
                found = c == 0 && n->pitch == e->pitch && !(n->flags & ABC_EV_REST);
            }
            if (!found)
                abc_diags_add(out, ABC_ERROR, e->line, e->col, ti, "tie",
                              "a tie '-' joins two notes of the same pitch; remove it or fix the next note",
                              "tie to nothing");
        }
    }
}

/* Is there a section boundary (repeat sign, ending, part, double bar) at the start or the end of bar i?
 * A bar may be short there: it pairs with a short bar on the other side of the repeat. */
static bool at_boundary(const abc_bar *bars, size_t n, size_t i)
{
    const abc_bar *b = &bars[i];
    bool start = b->repeat_start || b->ending || b->part ||
                 (i > 0 && (bars[i - 1].repeat_end || bars[i - 1].end_style != ABC_BAR_SINGLE));
    bool end = b->repeat_end || b->end_style != ABC_BAR_SINGLE ||
               (i + 1 < n && (bars[i + 1].repeat_start || bars[i + 1].ending || bars[i + 1].part));
    return start || end;
}

static void check_bars(const abc_model *m, int ti, abc_diags *out)
{
    for (size_t vi = 0; vi < m->n_voices; vi++) {
        const abc_voice *v = &m->voices[vi];
        abc_meter meter = {ABC_METER_NONE, 0, 0};
        abc_frac full = {0, 1};
        for (size_t i = 0; i < v->n_bars; i++) {
            const abc_bar *b = &v->bars[i];
            if (b->meter.kind != meter.kind || b->meter.num != meter.num || b->meter.den != meter.den) {
                meter = b->meter;
                full = abc_meter_bar_length(meter);
            }
            if (full.num == 0 || b->n_events == 0)
                continue;
            int c = frac_cmp(b->len, full);
            if (c == 0)
                continue;
            bool multibar = false;
            for (size_t k = 0; k < b->n_events && !multibar; k++)
                multibar = v->events[b->first_event + k].flags & ABC_EV_MULTIBAR;
            if (multibar)
                continue;
            if (c < 0) {
                bool first = i == 0, last = i + 1 == v->n_bars;
                bool boundary = at_boundary(v->bars, v->n_bars, i);
                bool meter_change = i + 1 < v->n_bars && frac_cmp(abc_meter_bar_length(v->bars[i + 1].meter), full) != 0;
                if (first || last || boundary || meter_change)
                    continue;
            }
            const abc_event *e = &v->events[b->first_event];
            abc_diags_add(out, ABC_ERROR, e->line, e->col, ti, "bar-length",
                          c > 0 ? "remove notes or shorten them, or fix the meter"
                                : "add notes or lengthen them, or fix the meter",
                          "bar %d is %lld/%lld long, the meter wants %lld/%lld", b->number, (long long)b->len.num,
                          (long long)b->len.den, (long long)full.num, (long long)full.den);
        }
    }
}

static void duplicate_x(const abc_file *f, size_t index, size_t earlier, abc_diags *out)
{
    const abc_tune *t = &f->tunes[index];
    abc_diags_add(out, ABC_WARNING, t->first_line, 1, (int)index, "header", "give every tune its own X: number",
                  "X:%d is already used by the tune at line %d", t->x, f->tunes[earlier].first_line);
}

static size_t validate_one(abc_modeler *w, const abc_file *f, size_t index, abc_diags *out)
{
    size_t before = out->n_errors;
    check_header(f, index, out);
    check_body(f, index, out);
    const abc_model *m = w ? abc_modeler_run(w, f, index, out) : NULL;
    if (m) {
        for (size_t v = 0; v < m->n_voices; v++)
            abc_number_bars(m, &m->voices[v]);
        check_ties(m, (int)index, out);
        check_bars(m, (int)index, out);
    } else {
        abc_diags_add_text(out, ABC_ERROR, f->tunes[index].first_line, 1, (int)index, "memory", NULL,
                           "out of memory");
    }
    return out->n_errors - before;
}

size_t abc_validate_tune(const abc_file *f, size_t index, abc_diags *out)
{
    if (index >= f->n_tunes)
        return 0;
    for (size_t j = 0; j < index; j++)
        if (f->tunes[j].x == f->tunes[index].x && f->tunes[index].x >= 0) {
            duplicate_x(f, index, j, out);
            break;
        }
    abc_modeler *w = abc_modeler_new();
    size_t errors = validate_one(w, f, index, out);
    abc_modeler_free(w);
    return errors;
}

typedef struct x_index {
    int x;
    size_t index;
} x_index;

static int cmp_x(const void *a, const void *b)
{
    const x_index *p = a, *q = b;
    if (p->x != q->x)
        return p->x < q->x ? -1 : 1;
    return p->index < q->index ? -1 : p->index > q->index;
}

size_t abc_validate_file(const abc_file *f, abc_diags *out)
{
    size_t before = out->n_errors;
    for (size_t i = 0; i < f->diags.n; i++) {
        const abc_diag *d = &f->diags.items[i];
        abc_diags_add_text(out, d->severity, d->line, d->col, d->tune, d->category, d->hint, d->message);
    }
    x_index *xs = malloc((f->n_tunes ? f->n_tunes : 1) * sizeof *xs);
    if (xs) { /* repeated X: numbers, in one sort rather than a scan per tune */
        for (size_t i = 0; i < f->n_tunes; i++)
            xs[i] = (x_index){f->tunes[i].x, i};
        qsort(xs, f->n_tunes, sizeof *xs, cmp_x);
        for (size_t i = 1; i < f->n_tunes; i++)
            if (xs[i].x >= 0 && xs[i].x == xs[i - 1].x)
                duplicate_x(f, xs[i].index, xs[i - 1].index, out);
        free(xs);
    }
    abc_modeler *w = abc_modeler_new();
    for (size_t i = 0; i < f->n_tunes; i++)
        validate_one(w, f, i, out);
    abc_modeler_free(w);
    abc_diags_sort(out);
    return out->n_errors - before;
}

/* Offsets of the lines that start a tune ("X:" at the start of a line), with their line numbers. */
typedef struct tune_start {
    size_t off;
    int line;
} tune_start;

/* Move from's diagnostics to the end of out, as tune `tune` (-2: keep theirs; file-level ones stay -1). */
static void move_diags(abc_diags *from, int tune, abc_diags *out)
{
    if (tune != -2)
        for (size_t i = 0; i < from->n; i++)
            if (from->items[i].tune >= 0)
                from->items[i].tune = tune;
    abc_diags_move(out, from);
}

/* One worker's share of abc_check_buffer: tunes [lo, hi), diagnostics in tune order. */
typedef struct check_job {
    const char *buf;
    size_t len;
    const tune_start *ts;
    size_t n, lo, hi;
    const abc_file *head;
    bool compound;
    x_index *xs;
    abc_diags diags;
} check_job;

static void *check_range(void *arg)
{
    check_job *j = arg;
    abc_diags tune_diags;
    abc_diags_init(&tune_diags);
    abc_parser *ps = abc_parser_new();
    abc_modeler *w = abc_modeler_new();
    for (size_t i = j->lo; i < j->hi; i++) {
        size_t end = i + 1 < j->n ? j->ts[i + 1].off : j->len;
        abc_file *f = ps && w ? abc_parser_run(ps, j->buf + j->ts[i].off, end - j->ts[i].off, j->ts[i].line,
                                               j->compound)
                              : NULL;
        if (!f) {
            abc_diags_add(&j->diags, ABC_ERROR, j->ts[i].line, 1, (int)i, "memory", NULL, "out of memory");
            j->xs[i] = (x_index){-1, i};
            continue;
        }
        f->header = j->head->header;
        f->n_header = j->head->n_header;
        j->xs[i] = (x_index){f->n_tunes ? f->tunes[0].x : -1, i};
        move_diags(&f->diags, 0, &tune_diags);
        if (f->n_tunes)
            validate_one(w, f, 0, &tune_diags);
        abc_diags_sort(&tune_diags);
        move_diags(&tune_diags, (int)i, &j->diags);
    }
    abc_modeler_free(w);
    abc_parser_free(ps);
    abc_diags_free(&tune_diags);
    return NULL;
}

/* Workers for big inputs: the tunes are independent, so they split over the cores. */
static int worker_count(size_t len, size_t n)
{
    if (len < ((size_t)1 << 20) || n < 256)
        return 1;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus >= 4 ? 4 : cpus >= 2 ? (int)cpus : 1;
}

size_t abc_check_buffer(const char *buf, size_t len, abc_diags *out, size_t *n_tunes)
{
    size_t before = out->n_errors;
    abc_vec starts = {.item = sizeof(tune_start)};
    size_t pos = len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3) ? 3 : 0;
    int line = 1;
    while (pos < len) {
        if (len - pos >= 2 && buf[pos] == 'X' && buf[pos + 1] == ':') {
            tune_start *ts = abc_vec_push(&starts);
            if (!ts)
                break;
            *ts = (tune_start){pos, line};
        }
        const char *nl = memchr(buf + pos, '\n', len - pos);
        if (!nl)
            break;
        pos = (size_t)(nl - buf) + 1;
        line++;
    }
    tune_start *ts = starts.data;
    size_t n = starts.n;
    /* the file header (text before the first tune) gives every tune its defaults; it is read with the first
     * X: line so that the same file-level diagnostics come out (the tune's own are left out below) */
    size_t head_len = len;
    if (n) {
        const char *nl = memchr(buf + ts[0].off, '\n', len - ts[0].off);
        head_len = nl ? (size_t)(nl - buf) + 1 : len;
    }
    abc_file *head = abc_parse(buf, head_len);
    x_index *xs = malloc((n ? n : 1) * sizeof *xs), *earlier = malloc((n ? n : 1) * sizeof *earlier);
    if (!head || !xs || !earlier) {
        abc_file_free(head);
        free(xs);
        free(earlier);
        abc_vec_free(&starts);
        abc_diags_add(out, ABC_ERROR, 1, 1, -1, "memory", NULL, "out of memory");
        return out->n_errors - before;
    }
    for (size_t i = 0; i < head->diags.n; i++) {
        const abc_diag *d = &head->diags.items[i];
        if (d->tune < 0)
            abc_diags_add_text(out, d->severity, d->line, d->col, -1, d->category, d->hint, d->message);
    }
    bool compound = false;
    for (size_t i = 0; i < head->n_header; i++) {
        abc_meter m;
        char err[8];
        if (head->header[i].key == 'M' && abc_parse_meter(head->header[i].value, &m, err, sizeof err))
            compound = abc_meter_is_compound(m);
    }
    check_job jobs[4];
    pthread_t threads[4];
    bool started[4] = {false, false, false, false};
    int workers = worker_count(len, n);
    for (int w = 0; w < workers; w++) {
        jobs[w] = (check_job){.buf = buf, .len = len, .ts = ts, .n = n, .lo = n * (size_t)w / (size_t)workers,
                              .hi = n * (size_t)(w + 1) / (size_t)workers, .head = head, .compound = compound, .xs = xs};
        abc_diags_init(&jobs[w].diags);
        if (w > 0)
            started[w] = !pthread_create(&threads[w], NULL, check_range, &jobs[w]);
    }
    check_range(&jobs[0]);
    for (int w = 1; w < workers; w++) {
        if (started[w])
            pthread_join(threads[w], NULL);
        else
            check_range(&jobs[w]); /* no thread: do it here */
    }
    for (int w = 0; w < workers; w++) { /* ranges are in tune order: append */
        move_diags(&jobs[w].diags, -2, out);
        abc_diags_free(&jobs[w].diags);
    }
    /* repeated X: numbers, found in one sort by number and reported in tune order: the diagnostics are then
     * two sorted runs, merged in one pass */
    qsort(xs, n, sizeof *xs, cmp_x);
    for (size_t i = 0; i < n; i++)
        earlier[i] = (x_index){-1, 0};
    for (size_t i = 1; i < n; i++)
        if (xs[i].x >= 0 && xs[i].x == xs[i - 1].x)
            earlier[xs[i].index] = (x_index){xs[i].x, xs[i - 1].index};
    for (size_t i = 0; i < n; i++)
        if (earlier[i].x >= 0)
            abc_diags_add(out, ABC_WARNING, ts[i].line, 1, (int)i, "header", "give every tune its own X: number",
                          "X:%d is already used by the tune at line %d", earlier[i].x, ts[earlier[i].index].line);
    abc_diags_sort(out);
    if (n_tunes)
        *n_tunes = n;
    free(xs);
    free(earlier);
    abc_file_free(head);
    abc_vec_free(&starts);
    return out->n_errors - before;
}
