/* fmt over whole collections: for every tune, fmt(fmt(x)) == fmt(x) (idempotent) and the played events
 * (voice, pitch, start, duration, flags) of fmt(x) equal those of x (meaning preserved).
 * Usage: abc_fmt_check FILE.abc...   exit 0 when both hold for 100% of tunes, 77 when no file exists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "melodist/abc.h"
#include "testutil.h"

static bool same_events(const abc_model *a, const abc_model *b)
{
    if (a->n_voices != b->n_voices)
        return false;
    for (size_t v = 0; v < a->n_voices; v++) {
        const abc_voice *x = &a->voices[v], *y = &b->voices[v];
        if (x->n_played != y->n_played || x->n_events != y->n_events || strcmp(x->id, y->id))
            return false;
        for (size_t i = 0; i < x->n_played; i++) {
            const abc_event *e = &x->played[i], *f = &y->played[i];
            if (e->pitch != f->pitch || e->flags != f->flags || !abc_frac_eq(e->start, f->start) ||
                !abc_frac_eq(e->dur, f->dur) || (e->lyric == NULL) != (f->lyric == NULL) ||
                (e->lyric && strcmp(e->lyric, f->lyric)))
                return false;
        }
    }
    return true;
}

int main(int argc, char **argv)
{
    size_t tunes = 0, idempotent = 0, preserved = 0, files = 0;
    for (int a = 1; a < argc; a++) {
        if (access(argv[a], R_OK))
            continue;
        size_t len;
        char *buf = tu_read_file(argv[a], &len);
        if (!buf)
            return 1;
        files++;
        abc_file *f = abc_parse(buf, len);
        free(buf);
        for (size_t t = 0; f && t < f->n_tunes; t++) {
            tunes++;
            size_t n1, n2;
            char *once = abc_fmt_tune(f, t, &n1);
            abc_file *g = once ? abc_parse(once, n1) : NULL;
            char *twice = g && g->n_tunes == 1 ? abc_fmt_tune(g, 0, &n2) : NULL;
            if (twice && n1 == n2 && !memcmp(once, twice, n1))
                idempotent++;
            else if (idempotent + 5 > tunes)
                fprintf(stderr, "not idempotent: %s X:%d\n--- once\n%s--- twice\n%s", argv[a], f->tunes[t].x,
                        once ? once : "", twice ? twice : "");
            abc_model *m1 = abc_model_new(f, t, NULL);
            abc_model *m2 = g && g->n_tunes == 1 ? abc_model_new(g, 0, NULL) : NULL;
            if (m1 && m2 && same_events(m1, m2))
                preserved++;
            else if (preserved + 5 > tunes)
                fprintf(stderr, "events changed: %s X:%d\n", argv[a], f->tunes[t].x);
            abc_model_free(m1);
            abc_model_free(m2);
            free(once);
            free(twice);
            abc_file_free(g);
        }
        abc_file_free(f);
    }
    if (!files) {
        printf("SKIP: no ABC collection found\n");
        return 77;
    }
    printf("tunes %zu: fmt idempotent %zu (%.2f%%), events preserved %zu (%.2f%%)\n", tunes, idempotent,
           100.0 * idempotent / (tunes ? tunes : 1), preserved, 100.0 * preserved / (tunes ? tunes : 1));
    return idempotent == tunes && preserved == tunes ? 0 : 1;
}
