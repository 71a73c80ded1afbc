/* Reading an ABC file and rendering one of its tunes to MIDI, for 'melodist abc midi' and 'melodist abc wav'. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abc_render.h"

#define MAX_REPORTED 10

static void usage(FILE *out, bool wav)
{
    if (wav)
        fprintf(out, "usage: melodist abc wav FILE -o OUT.wav [--tune X] [--chords] [--soundfont SF2]\n"
                     "  renders the tune (the first one, or X:) through FluidSynth to 16-bit stereo 44.1 kHz WAV;\n"
                     "  --soundfont: a General MIDI .sf2 (default %s)\n",
                "/usr/share/sounds/sf2/FluidR3_GM.sf2");
    else
        fprintf(out, "usage: melodist abc midi FILE -o OUT.mid [--tune X] [--chords] [--tpq N] [--program N]\n"
                     "  writes the tune (the first one, or X:) as a Standard MIDI File, repeats played;\n"
                     "  --tpq: ticks per quarter note (default 480); --program: General MIDI program 0..127\n");
    fprintf(out, "  --chords: add an accompaniment (bass + chord) from the chord symbols\n"
                 "  FILE '-' reads stdin\n");
}

static bool int_arg(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

int render_parse_args(int argc, char **argv, bool wav, struct render_request *req, bool *help)
{
    const char *cmd = wav ? "wav" : "midi";
    memset(req, 0, sizeof *req);
    req->command = cmd;
    *help = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        int x;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout, wav);
            *help = true;
            return 2;
        } else if (!strcmp(a, "--chords")) {
            req->midi.chords = true;
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && has_value) {
            req->output = argv[++i];
        } else if (!strcmp(a, "--tune") && has_value) {
            req->tune = argv[++i];
            if (!int_arg(req->tune, 0, 1 << 30, &x)) {
                fprintf(stderr, "melodist abc %s: --tune wants a reference number (the X: field), not '%s'\n", cmd,
                        req->tune);
                return 2;
            }
        } else if (wav && !strcmp(a, "--soundfont") && has_value) {
            req->soundfont = argv[++i];
        } else if (!wav && !strcmp(a, "--tpq") && has_value) {
            if (!int_arg(argv[++i], 1, 32767, &req->midi.ticks_per_quarter)) {
                fprintf(stderr, "melodist abc %s: --tpq wants 1..32767 ticks per quarter note\n", cmd);
                return 2;
            }
        } else if (!wav && !strcmp(a, "--program") && has_value) {
            if (!int_arg(argv[++i], 0, 127, &req->midi.program)) {
                fprintf(stderr, "melodist abc %s: --program wants a General MIDI program 0..127\n", cmd);
                return 2;
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "melodist abc %s: unknown option or missing value: %s\n", cmd, a);
            usage(stderr, wav);
            return 2;
        } else if (req->input) {
            fprintf(stderr, "melodist abc %s: one input file at a time (got '%s' and '%s')\n", cmd, req->input, a);
            return 2;
        } else {
            req->input = a;
        }
    }
    if (!req->input)
        req->input = "-";
    if (!req->output) {
        fprintf(stderr, "melodist abc %s: no output file: give -o OUT.%s\n", cmd, wav ? "wav" : "mid");
        usage(stderr, wav);
        return 2;
    }
    return 0;
}

static char *read_input(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        char *grown = n == cap ? realloc(buf, cap *= 2) : buf;
        if (!grown)
            free(buf);
        buf = grown;
    }
    int failed = !buf || ferror(f);
    if (f != stdin)
        fclose(f);
    if (failed) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static void report_errors(const abc_diags *d, int tune, const char *name, size_t *shown)
{
    char line[1024];
    for (size_t i = 0; i < d->n; i++) {
        if (d->items[i].severity != ABC_ERROR || (tune >= 0 && d->items[i].tune != tune))
            continue;
        if (++*shown <= MAX_REPORTED) {
            abc_diag_format(&d->items[i], name, line, sizeof line);
            fprintf(stderr, "%s\n", line);
        }
    }
}

int render_tune_midi(const struct render_request *req, midi_file **out)
{
    const char *name = strcmp(req->input, "-") ? req->input : "<stdin>";
    size_t len;
    char *text = read_input(req->input, &len);
    if (!text) {
        fprintf(stderr, "melodist abc %s: cannot read %s: %s\n", req->command, name, strerror(errno));
        return 1;
    }
    abc_file *f = abc_parse(text, len);
    free(text);
    if (!f) {
        fprintf(stderr, "melodist abc %s: out of memory\n", req->command);
        return 1;
    }
    int index = 0;
    if (!f->n_tunes) {
        fprintf(stderr, "melodist abc %s: %s holds no tune (a tune starts with an X: line)\n", req->command, name);
        abc_file_free(f);
        return 1;
    }
    if (req->tune && (index = abc_file_find_tune(f, atoi(req->tune))) < 0) {
        fprintf(stderr, "melodist abc %s: %s has no tune X:%s (its first is X:%d, its last X:%d)\n", req->command,
                name, req->tune, f->tunes[0].x, f->tunes[f->n_tunes - 1].x);
        abc_file_free(f);
        return 1;
    }
    abc_diags diags;
    abc_diags_init(&diags);
    abc_model *m = abc_model_new(f, (size_t)index, &diags);
    int rc = 1;
    if (!m) {
        fprintf(stderr, "melodist abc %s: out of memory\n", req->command);
    } else {
        size_t shown = 0;
        report_errors(&f->diags, index, name, &shown);
        report_errors(&diags, -1, name, &shown);
        if (shown)
            fprintf(stderr, "melodist abc %s: tune X:%d has %zu error%s%s; rendered as read\n", req->command,
                    f->tunes[index].x, shown, shown == 1 ? "" : "s", shown > MAX_REPORTED ? " (first ones shown)" : "");
        char err[256];
        if (midi_from_model(f, (size_t)index, m, &req->midi, out, err, sizeof err))
            fprintf(stderr, "melodist abc %s: %s\n", req->command, err);
        else
            rc = 0;
    }
    abc_model_free(m);
    abc_diags_free(&diags);
    abc_file_free(f);
    return rc;
}
