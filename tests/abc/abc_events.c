/* Prints the sounding notes of every tune as the oracle compares them:
 *   X <x>
 *   V <voice index> then one line per note: <pitch> <start tick> <duration tick>
 * Played order (repeats, endings, parts expanded), tied notes merged, grace notes and rests left out,
 * 480 ticks per quarter note (abc2midi's default). Usage: abc_events FILE.abc [STRIPPED.abc]
 * With STRIPPED.abc, also writes a copy of the file with every decoration blanked out (same line/col), so
 * that abc2midi, which plays ornaments, staccato and fermatas, can be compared with decorations off. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/abc.h"
#include "testutil.h"

#define TPQ 480

static void print_voice(const abc_voice *v, int index)
{
    printf("V %d\n", index);
    int open[128]; /* index of a tied note still sounding, per pitch */
    for (int p = 0; p < 128; p++)
        open[p] = -1;
    size_t n = 0;
    abc_event *notes = calloc(v->n_played ? v->n_played : 1, sizeof *notes);
    for (size_t i = 0; i < v->n_played; i++) {
        const abc_event *e = &v->played[i];
        if (e->flags & (ABC_EV_REST | ABC_EV_GRACE))
            continue;
        int p = e->pitch;
        if (open[p] >= 0 && (e->flags & ABC_EV_TIED)) {
            abc_event *o = &notes[open[p]];
            o->dur = abc_frac_sub(abc_frac_add(e->start, e->dur), o->start);
        } else {
            notes[n] = *e;
            open[p] = (int)n++;
        }
        if (!(e->flags & ABC_EV_TIE))
            open[p] = -1;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t s = abc_frac_to_ticks(notes[i].start, TPQ);
        int64_t d = abc_frac_to_ticks(abc_frac_add(notes[i].start, notes[i].dur), TPQ) - s;
        printf("%d %lld %lld\n", notes[i].pitch, (long long)s, (long long)d);
    }
    free(notes);
}

static int write_stripped(const abc_file *f, const char *path)
{
    char *copy = malloc(f->text_len + 1);
    if (!copy)
        return 2;
    memcpy(copy, f->text, f->text_len);
    for (size_t t = 0; t < f->n_tunes; t++)
        for (size_t i = 0; i < f->tunes[t].n_body; i++) {
            const abc_element *e = &f->tunes[t].body[i];
            if (e->kind == ABC_EL_DECORATION)
                memset(copy + e->src_off, ' ', e->src_len);
        }
    FILE *fp = fopen(path, "wb");
    int rc = fp && fwrite(copy, 1, f->text_len, fp) == f->text_len ? 0 : 2;
    if (fp && fclose(fp))
        rc = 2;
    free(copy);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: abc_events FILE.abc [STRIPPED.abc]\n");
        return 2;
    }
    size_t len;
    char *buf = tu_read_file(argv[1], &len);
    if (!buf)
        return 2;
    abc_file *f = abc_parse(buf, len);
    free(buf);
    if (!f)
        return 2;
    if (argc == 3 && write_stripped(f, argv[2])) {
        fprintf(stderr, "abc_events: cannot write %s\n", argv[2]);
        return 2;
    }
    for (size_t t = 0; t < f->n_tunes; t++) {
        abc_model *m = abc_model_new(f, t, NULL);
        if (!m)
            continue;
        printf("X %d\n", m->x);
        for (size_t v = 0; v < m->n_voices; v++)
            print_voice(&m->voices[v], (int)v);
        abc_model_free(m);
    }
    abc_file_free(f);
    return 0;
}
