/* libFuzzer target for the ABC engine: arbitrary bytes through parse, validate, fmt, the tune model, the
 * analysis and the MIDI writer. Any crash, sanitizer report or leak is a bug. One property is checked as well: on input that
 * parses and validates without error, the normaliser is idempotent (fmt(fmt(x)) == fmt(x)). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/abc.h"
#include "melodist/abc_analysis.h"
#include "melodist/midi.h"

#define MAX_INPUT (1 << 16)
#define MAX_TUNES 16

static void render_midi(const abc_file *f, size_t index, const abc_model *m)
{
    struct midi_options opts = {.chords = true};
    midi_file *mf;
    char err[256];
    if (midi_from_model(f, index, m, &opts, &mf, err, sizeof err))
        return;
    unsigned char *bytes;
    size_t len;
    if (!midi_file_bytes(mf, &bytes, &len))
        free(bytes);
    midi_file_free(mf);
}

static void check_fmt_idempotent(const abc_file *f)
{
    size_t len1, len2;
    char *once = abc_fmt_file(f, &len1);
    if (!once)
        return;
    abc_file *again = abc_parse(once, len1);
    char *twice = again ? abc_fmt_file(again, &len2) : NULL;
    if (twice && (len1 != len2 || memcmp(once, twice, len1))) {
        fprintf(stderr, "fmt is not idempotent.\n--- fmt(x):\n%s\n--- fmt(fmt(x)):\n%s\n", once, twice);
        abort();
    }
    free(twice);
    abc_file_free(again);
    free(once);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT)
        return 0;
    abc_file *f = abc_parse((const char *)data, size);
    if (!f)
        return 0;
    abc_diags diags;
    abc_diags_init(&diags);
    size_t errors = abc_validate_file(f, &diags);
    for (size_t i = 0; i < f->n_tunes && i < MAX_TUNES; i++) {
        abc_model *m = abc_model_new(f, i, &diags);
        abc_analysis a;
        if (m && !abc_analyze(&f->tunes[i], m, &a)) {
            if (a.bars_written > m->n_bars || (a.rhythm_type && !a.meter.num)) {
                fprintf(stderr, "analysis: %zu bars written of %zu, rhythm type %s in meter %d/%d\n", a.bars_written,
                        m->n_bars, a.rhythm_type ? a.rhythm_type : "none", a.meter.num, a.meter.den);
                abort();
            }
            abc_analysis_free(&a);
        }
        if (m)
            render_midi(f, i, m);
        abc_model_free(m);
    }
    if (errors == 0)
        check_fmt_idempotent(f);
    else
        free(abc_fmt_file(f, NULL));
    abc_diags_free(&diags);
    abc_file_free(f);
    return 0;
}
