/* Prints abc_analyze() of every tune of a file, one tab-separated line per tune, for the Python oracles:
 *
 *   x  bars_written  bars_played  voices  meter  key_declared  ks_key  modal_key  pentatonic  final_pc
 *   lowest  highest  n_notes  form  chords  key  rhythm_type
 *
 * meter "num/den" or "none"; keys "tonic_pc:mode" (abc_mode number, "none" when undeclared); chords: the raw
 * chord symbols of each written bar of the first voice that holds music, bars joined by '|', chords in a bar
 * by ','; key: the detected key (Krumhansl-Schmuckler with the final), as the other keys; rhythm_type: the
 * engine's dance rhythm, "-" when none.
 * Exit 77 when the file cannot be read. */
#include <stdio.h>
#include <stdlib.h>

#include "melodist/abc_analysis.h"
#include "testutil.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: analysis_dump FILE.abc\n");
        return 2;
    }
    size_t len;
    char *buf = tu_read_file(argv[1], &len);
    if (!buf) {
        printf("SKIP: cannot read %s\n", argv[1]);
        return 77;
    }
    abc_file *f = abc_parse(buf, len);
    for (size_t t = 0; f && t < f->n_tunes; t++) {
        abc_model *m = abc_model_new(f, t, NULL);
        abc_analysis a;
        if (!m || abc_analyze(&f->tunes[t], m, &a)) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        printf("%d\t%zu\t%zu\t%zu\t", m->x, a.bars_written, a.bars_played, a.n_voices);
        if (a.meter.kind == ABC_METER_NONE)
            printf("none\t");
        else
            printf("%d/%d\t", a.meter.num, a.meter.den);
        if (a.key_declared)
            printf("%d:%d\t", a.declared.tonic_pc, (int)a.declared.mode);
        else
            printf("none\t");
        printf("%d:%d\t%d:%d\t%s\t%d\t%d\t%d\t%zu\t%s\t", a.ks.tonic_pc, (int)a.ks.mode, a.modal.tonic_pc,
               (int)a.modal.mode, a.modal.pentatonic ? a.modal.penta_mode : "-",
               a.final_pitch >= 0 ? a.final_pitch % 12 : -1, a.lowest, a.highest, a.n_notes, a.form);
        for (size_t b = 0; b < a.n_chord_bars; b++) {
            printf("%s", b ? "|" : "");
            for (size_t c = 0; c < a.chords[b].n; c++)
                printf("%s%s", c ? "," : "", a.chords[b].raw[c]);
        }
        printf("\t%d:%d\t%s\n", a.key.tonic_pc, (int)a.key.mode, a.rhythm_type ? a.rhythm_type : "-");
        abc_analysis_free(&a);
        abc_model_free(m);
    }
    abc_file_free(f);
    free(buf);
    return 0;
}
