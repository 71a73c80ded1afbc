/* Must-show 4: transposing by k moves every event pitch by exactly k, and +k then -k gives back the original
 * events, for every k in -12..12 and every tune of the given files.
 *
 *   transpose_roundtrip [--print] FILE...
 *
 * Each tune is parsed alone; its events (per voice, as written and played: pitch, start, duration, flags) are
 * compared with those of the transposed tune. With --print the transposed tune goes through the printer
 * (abc_fmt_tune) and is parsed again before its events are taken, both ways. Prints a summary; exit 1 when
 * any tune differs, 77 when no file can be read (shared data absent). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/abc.h"
#include "melodist/abc_transpose.h"
#include "testutil.h"

/* Compare the events of model b with those of a shifted by k; describe the first difference in why. */
static bool same_events(const abc_model *a, const abc_model *b, int k, char *why, size_t whysz)
{
    if (a->n_voices != b->n_voices) {
        snprintf(why, whysz, "voices %zu -> %zu", a->n_voices, b->n_voices);
        return false;
    }
    for (size_t v = 0; v < a->n_voices; v++)
        for (int played = 0; played < 2; played++) {
            const abc_voice *va = &a->voices[v], *vb = &b->voices[v];
            size_t na = played ? va->n_played : va->n_events, nb = played ? vb->n_played : vb->n_events;
            const abc_event *ea = played ? va->played : va->events, *eb = played ? vb->played : vb->events;
            if (na != nb) {
                snprintf(why, whysz, "voice %zu: %zu -> %zu %s events", v, na, nb, played ? "played" : "written");
                return false;
            }
            for (size_t i = 0; i < na; i++) {
                int want = ea[i].pitch < 0 ? ea[i].pitch : ea[i].pitch + k;
                if (eb[i].pitch != want || !abc_frac_eq(ea[i].start, eb[i].start) ||
                    !abc_frac_eq(ea[i].dur, eb[i].dur) || ea[i].flags != eb[i].flags) {
                    snprintf(why, whysz, "voice %zu %s event %zu (line %d:%d): pitch %d -> %d (want %d)", v,
                             played ? "played" : "written", i, ea[i].line, ea[i].col, ea[i].pitch, eb[i].pitch,
                             want);
                    return false;
                }
            }
        }
    return true;
}

/* Transpose tune 0 of f by k; with print, re-print and re-parse. Returns the new file (f is consumed). */
static abc_file *transpose(abc_file *f, int k, bool print, char *why, size_t whysz)
{
    if (abc_transpose_tune(f, 0, k, why, whysz)) {
        abc_file_free(f);
        return NULL;
    }
    if (!print)
        return f;
    size_t len;
    char *text = abc_fmt_tune(f, 0, &len);
    abc_file_free(f);
    if (!text) {
        snprintf(why, whysz, "printer failed");
        return NULL;
    }
    abc_file *g = abc_parse(text, len);
    free(text);
    return g;
}

int main(int argc, char **argv)
{
    bool print = false;
    int first = 1;
    if (argc > 1 && !strcmp(argv[1], "--print")) {
        print = true;
        first = 2;
    }
    size_t tunes = 0, failed = 0, checks = 0, files = 0;
    for (int a = first; a < argc; a++) {
        size_t flen;
        char *buf = tu_read_file(argv[a], &flen);
        if (!buf)
            continue;
        files++;
        abc_file *all = abc_parse(buf, flen);
        for (size_t t = 0; all && t < all->n_tunes; t++) {
            const abc_tune *tune = &all->tunes[t];
            abc_file *orig = abc_parse(tune->text, tune->text_len);
            abc_model *m0 = orig && orig->n_tunes == 1 ? abc_model_new(orig, 0, NULL) : NULL;
            if (!m0) {
                abc_file_free(orig);
                continue;
            }
            tunes++;
            char why[512] = "";
            bool ok = true;
            for (int k = -12; k <= 12 && ok; k++) {
                abc_file *up = transpose(abc_parse(tune->text, tune->text_len), k, print, why, sizeof why);
                abc_model *m1 = up ? abc_model_new(up, 0, NULL) : NULL;
                ok = m1 && same_events(m0, m1, k, why, sizeof why);
                abc_model_free(m1);
                if (!ok) {
                    abc_file_free(up);
                    fprintf(stderr, "%s X:%d: +%d: %s\n", argv[a], tune->x, k, why);
                    break;
                }
                abc_file *back = transpose(up, -k, print, why, sizeof why);
                abc_model *m2 = back ? abc_model_new(back, 0, NULL) : NULL;
                ok = m2 && same_events(m0, m2, 0, why, sizeof why);
                if (!ok)
                    fprintf(stderr, "%s X:%d: +%d then %d: %s\n", argv[a], tune->x, k, -k, why);
                abc_model_free(m2);
                abc_file_free(back);
                checks += 2;
            }
            failed += !ok;
            abc_model_free(m0);
            abc_file_free(orig);
        }
        abc_file_free(all);
        free(buf);
    }
    if (!files) {
        printf("SKIP: no input file could be read\n");
        return 77;
    }
    printf("transpose %s: %zu tunes, %zu transpositions checked, %zu tunes differ (%.3f%% identical)\n",
           print ? "(printed and re-parsed)" : "(in memory)", tunes, checks, failed,
           tunes ? 100.0 * (double)(tunes - failed) / (double)tunes : 0.0);
    return failed ? 1 : 0;
}
