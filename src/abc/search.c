/* Melody extraction and transposition-invariant phrase search (see melodist/abc_analysis.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/abc_analysis.h"

void abc_melody_free(abc_melody *mel)
{
    free(mel->pitch);
    free(mel->dur);
    free(mel->bar);
    free(mel->line);
    free(mel->col);
    memset(mel, 0, sizeof *mel);
}

int abc_melody_of_voice(const abc_model *m, size_t v, abc_melody *out)
{
    memset(out, 0, sizeof *out);
    const abc_voice *voice = &m->voices[v];
    size_t cap = voice->n_events ? voice->n_events : 1;
    out->pitch = malloc(cap * sizeof *out->pitch);
    out->dur = malloc(cap * sizeof *out->dur);
    out->bar = malloc(cap * sizeof *out->bar);
    out->line = malloc(cap * sizeof *out->line);
    out->col = malloc(cap * sizeof *out->col);
    if (!out->pitch || !out->dur || !out->bar || !out->line || !out->col) {
        abc_melody_free(out);
        return -1;
    }
    int last_chord = -1;
    for (size_t i = 0; i < voice->n_events; i++) {
        const abc_event *e = &voice->events[i];
        if (e->flags & (ABC_EV_REST | ABC_EV_GRACE))
            continue;
        size_t n = out->n;
        if (e->chord >= 0 && e->chord == last_chord && n > 0) { /* another note of the same chord: keep the top */
            if (e->pitch > out->pitch[n - 1])
                out->pitch[n - 1] = e->pitch;
            continue;
        }
        last_chord = e->chord;
        if ((e->flags & ABC_EV_TIED) && n > 0 && out->pitch[n - 1] == e->pitch) {
            out->dur[n - 1] = abc_frac_add(out->dur[n - 1], e->dur);
            continue;
        }
        out->pitch[n] = e->pitch;
        out->dur[n] = e->dur;
        out->bar[n] = e->bar >= 0 && (size_t)e->bar < voice->n_bars ? voice->bars[e->bar].number : e->bar;
        out->line[n] = e->line;
        out->col[n] = e->col;
        out->n++;
    }
    return 0;
}

static bool match_at(const abc_melody *t, size_t s, const abc_melody *p, bool rhythm)
{
    for (size_t j = 1; j < p->n; j++) {
        if (t->pitch[s + j] - t->pitch[s] != p->pitch[j] - p->pitch[0])
            return false;
        if (rhythm && !abc_frac_eq(abc_frac_mul(t->dur[s + j], p->dur[0]), abc_frac_mul(p->dur[j], t->dur[s])))
            return false;
    }
    return true;
}

size_t abc_melody_find(const abc_melody *text, const abc_melody *phrase, bool rhythm, size_t *starts, size_t max)
{
    size_t found = 0;
    if (phrase->n == 0 || phrase->n > text->n)
        return 0;
    for (size_t s = 0; s + phrase->n <= text->n; s++)
        if (match_at(text, s, phrase, rhythm)) {
            if (found < max)
                starts[found] = s;
            found++;
        }
    return found;
}

int abc_melody_parse(const char *phrase, const char *key, abc_melody *out, char *err, size_t errsz)
{
    memset(out, 0, sizeof *out);
    size_t cap = strlen(phrase) + (key ? strlen(key) : 1) + 32;
    char *text = malloc(cap);
    if (!text) {
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    int len = snprintf(text, cap, "X:1\nL:1/8\nK:%s\n%s\n", key ? key : "C", phrase);
    abc_file *f = abc_parse(text, (size_t)len);
    free(text);
    if (!f) {
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    int rc = 0;
    abc_model *m = NULL;
    if (f->diags.n_errors) {
        const abc_diag *d = &f->diags.items[0];
        for (size_t i = 0; i < f->diags.n; i++)
            if (f->diags.items[i].severity == ABC_ERROR) {
                d = &f->diags.items[i];
                break;
            }
        if (d->line == 4) /* the phrase's own line (after X:, L:, K:) */
            snprintf(err, errsz, "cannot read the phrase at column %d: %s", d->col, d->message);
        else
            snprintf(err, errsz, "cannot read the phrase's key '%s': %s", key ? key : "C", d->message);
        rc = -1;
    } else if (f->n_tunes != 1 || !(m = abc_model_new(f, 0, NULL)) || m->n_voices == 0) {
        snprintf(err, errsz, "cannot read the phrase '%s' (key '%s')", phrase, key ? key : "C");
        rc = -1;
    } else if ((rc = abc_melody_of_voice(m, 0, out)) != 0) {
        snprintf(err, errsz, "out of memory");
    } else if (out->n == 0) {
        snprintf(err, errsz, "the phrase '%s' has no notes", phrase);
        abc_melody_free(out);
        rc = -1;
    }
    abc_model_free(m);
    abc_file_free(f);
    return rc;
}

size_t abc_melody_bars(const abc_model *m, size_t v, const char *phrase, const char *key, bool rhythm, int *bars,
                       size_t max)
{
    abc_melody text, ph;
    char err[128];
    if (abc_melody_of_voice(m, v, &text))
        return 0;
    size_t n = 0;
    if (!abc_melody_parse(phrase, key, &ph, err, sizeof err)) {
        size_t starts[64];
        size_t found = abc_melody_find(&text, &ph, rhythm, starts, 64);
        for (size_t i = 0; i < found && i < 64 && n < max; i++)
            if (!n || bars[n - 1] != text.bar[starts[i]])
                bars[n++] = text.bar[starts[i]];
        abc_melody_free(&ph);
    }
    abc_melody_free(&text);
    return n;
}
