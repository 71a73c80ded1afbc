/* Parse -> validate -> normalise -> model, and the hashes used for de-duplication (see tune.h). */
#include "tune.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hashset.h"

enum { MIN_FINGERPRINT_NOTES = 8 };

size_t tune_melody(const abc_model *m, int **pitches, int **bars)
{
    *pitches = NULL;
    if (bars)
        *bars = NULL;
    if (!m->n_voices)
        return 0;
    const abc_voice *v = &m->voices[0];
    int *p = malloc((v->n_events + 1) * sizeof *p);
    int *b = malloc((v->n_events + 1) * sizeof *b);
    if (!p || !b)
        abort();
    size_t n = 0;
    int last_chord = -1;
    for (size_t i = 0; i < v->n_events; i++) {
        const abc_event *e = &v->events[i];
        if (e->flags & (ABC_EV_REST | ABC_EV_GRACE | ABC_EV_TIED | ABC_EV_MULTIBAR) || e->pitch < 0)
            continue;
        if (e->chord >= 0 && e->chord == last_chord) {
            if (e->pitch > p[n - 1])
                p[n - 1] = e->pitch;
            continue;
        }
        last_chord = e->chord;
        p[n] = e->pitch;
        b[n] = e->bar;
        n++;
    }
    *pitches = p;
    if (bars)
        *bars = b;
    else
        free(b);
    return n;
}

/* Interval sequence of the melody: the same under transposition, different as soon as one note moves. */
static uint64_t melody_fingerprint(const abc_model *m, uint64_t fallback)
{
    int *p;
    size_t n = tune_melody(m, &p, NULL);
    uint64_t h = fallback;
    if (n >= MIN_FINGERPRINT_NOTES) {
        signed char *iv = malloc(n);
        if (!iv)
            abort();
        for (size_t i = 1; i < n; i++) {
            int d = p[i] - p[i - 1];
            iv[i - 1] = (signed char)(d < -127 ? -127 : d > 127 ? 127 : d);
        }
        h = hash64(iv, n - 1, 0x6d656c6f6479ull);
        free(iv);
    }
    free(p);
    return h;
}

static uint64_t hash_without_x(const char *text, size_t len)
{
    const char *p = text;
    if (len > 2 && p[0] == 'X' && p[1] == ':') {
        const char *eol = memchr(p, '\n', len);
        if (eol)
            p = eol + 1;
    }
    return hash64(p, len - (size_t)(p - text), 0x6578616374ull);
}

int tune_prepare(struct tune *t, const char *raw, size_t len, char *reason, size_t rlen)
{
    memset(t, 0, sizeof *t);
    abc_file *f = abc_parse(raw, len);
    if (!f)
        abort();
    int rc = -1;
    abc_diags d;
    abc_diags_init(&d);
    if (f->n_tunes != 1) {
        snprintf(reason, rlen, "not one tune");
        goto out;
    }
    if (abc_validate_file(f, &d)) {
        const char *category = "error";
        for (size_t i = 0; i < d.n; i++)
            if (d.items[i].severity == ABC_ERROR) {
                category = d.items[i].category;
                break;
            }
        snprintf(reason, rlen, "invalid: %s", category);
        goto out;
    }
    t->text = abc_fmt_tune(f, 0, &t->len);
    if (!t->text)
        abort();
    while (t->len > 1 && t->text[t->len - 1] == '\n' && t->text[t->len - 2] == '\n')
        t->text[--t->len] = '\0'; /* one newline at the end: documents are separated by their own line */
    t->file = abc_parse(t->text, t->len);
    if (!t->file)
        abort();
    if (t->file->n_tunes != 1) {
        snprintf(reason, rlen, "normalised text unreadable");
        goto out;
    }
    t->model = abc_model_new(t->file, 0, NULL);
    if (!t->model)
        abort();
    int *p;
    size_t notes = tune_melody(t->model, &p, NULL);
    free(p);
    if (!notes) {
        snprintf(reason, rlen, "no notes");
        goto out;
    }
    t->exact = hash_without_x(t->text, t->len);
    t->melody = melody_fingerprint(t->model, t->exact);
    rc = 0;
out:
    abc_diags_free(&d);
    abc_file_free(f);
    if (rc)
        tune_free(t);
    return rc;
}

void tune_free(struct tune *t)
{
    if (t->model)
        abc_model_free(t->model);
    if (t->file)
        abc_file_free(t->file);
    free(t->text);
    memset(t, 0, sizeof *t);
}
