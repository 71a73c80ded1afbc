/* melodist abc transpose FILE (-k N | --to KEY) [--tune X] [-o OUT]: the tunes moved by N semitones (or to
 * KEY), printed in the normalised layout. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abc_commands.h"
#include "abc_input.h"
#include "melodist/abc_transpose.h"

static bool parse_semitones(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < -96 || v > 96)
        return false;
    *out = (int)v;
    return true;
}

/* Parse errors of the input, as "file:line:col: error[category]: message (hint: ...)". */
static size_t print_parse_errors(const abc_file *f, const char *path)
{
    size_t n = 0;
    for (size_t i = 0; i < f->diags.n; i++) {
        if (f->diags.items[i].severity != ABC_ERROR)
            continue;
        char line[1024];
        abc_diag_format(&f->diags.items[i], abc_input_name(path), line, sizeof line);
        fprintf(stderr, "%s\n", line);
        n++;
    }
    return n;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: melodist abc transpose [FILE] (-k N | --to KEY) [--tune X] [-o OUT]\n"
                 "  -k N        move every tune by N semitones (-96..96, negative: down)\n"
                 "  --to KEY    move each tune to the tonic KEY (G, Bb, F#m ...), by the nearest interval\n"
                 "  --tune X    only the tune with reference number X\n"
                 "  -o OUT      write to OUT (atomically) instead of stdout\n"
                 "  FILE '-' or none reads stdin. Parse errors are reported (exit 1) and the tunes are\n"
                 "  transposed as read.\n");
}

int abc_cmd_transpose(int argc, char **argv)
{
    const char *path = NULL, *to = NULL, *out_path = NULL;
    int k = 0, tune_x = -1;
    bool have_k = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if ((!strcmp(a, "-k") || !strcmp(a, "--semitones")) && i + 1 < argc) {
            if (!parse_semitones(argv[++i], &k)) {
                fprintf(stderr, "melodist abc transpose: -k wants a whole number of semitones (-96..96), not '%s'\n",
                        argv[i]);
                return 2;
            }
            have_k = true;
        } else if (!strcmp(a, "--to") && i + 1 < argc) {
            to = argv[++i];
        } else if (!strcmp(a, "--tune")) {
            if (!abc_input_tune_arg("transpose", i + 1 < argc ? argv[++i] : NULL, &tune_x))
                return 2;
        } else if (!strcmp(a, "-o") && i + 1 < argc) {
            out_path = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "melodist abc transpose: unknown option or missing value: '%s'\n\n", a);
            usage(stderr);
            return 2;
        } else if (!path) {
            path = a;
        } else {
            fprintf(stderr, "melodist abc transpose: one input file at a time ('%s' and '%s')\n", path, a);
            return 2;
        }
    }
    if (have_k == (to != NULL)) {
        fprintf(stderr, "melodist abc transpose: give either -k N or --to KEY\n\n");
        usage(stderr);
        return 2;
    }
    abc_file *f = abc_input_parse("transpose", path);
    if (!f)
        return 1;
    int rc = print_parse_errors(f, path) ? 1 : 0;
    int only = -1;
    if (tune_x >= 0 && (only = abc_file_find_tune(f, tune_x)) < 0) {
        fprintf(stderr, "melodist abc transpose: %s has no tune X:%d\n", abc_input_name(path), tune_x);
        abc_file_free(f);
        return 1;
    }
    for (size_t t = 0; t < f->n_tunes; t++) {
        if (only >= 0 && t != (size_t)only)
            continue;
        char err[256];
        int semis = k;
        if ((to && abc_transpose_interval_to(&f->tunes[t], to, &semis, err, sizeof err)) ||
            abc_transpose_tune(f, t, semis, err, sizeof err)) {
            fprintf(stderr, "melodist abc transpose: X:%d: %s\n", f->tunes[t].x, err);
            abc_file_free(f);
            return 1;
        }
    }
    size_t len;
    char *text = only >= 0 ? abc_fmt_tune(f, (size_t)only, &len) : abc_fmt_file(f, &len);
    if (!text) {
        fprintf(stderr, "melodist abc transpose: out of memory\n");
        rc = 1;
    } else if (out_path) {
        if (!abc_write_atomic("transpose", out_path, text, len))
            rc = 1;
    } else if (fwrite(text, 1, len, stdout) != len || fflush(stdout)) {
        fprintf(stderr, "melodist abc transpose: cannot write the output\n");
        rc = 1;
    }
    free(text);
    abc_file_free(f);
    return rc;
}
