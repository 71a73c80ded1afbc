/* melodist abc transpose FILE (-k N | --to KEY) [--tune X]: the tunes moved by N semitones (or to KEY),
 * printed in the normalised layout on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abc_commands.h"
#include "abc_readfile.h"
#include "melodist/abc_transpose.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: melodist abc transpose [FILE] (-k N | --to KEY) [--tune X]\n"
                 "  -k N        move every tune by N semitones (negative: down)\n"
                 "  --to KEY    move each tune to the tonic KEY (G, Bb, F#m ...), by the nearest interval\n"
                 "  --tune X    only the tune with reference number X\n"
                 "  FILE '-' or none reads stdin; the result goes to stdout\n");
}

int abc_cmd_transpose(int argc, char **argv)
{
    const char *path = NULL, *to = NULL, *tune_arg = NULL;
    int k = 0, tune_x = -1;
    bool have_k = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if ((!strcmp(a, "-k") || !strcmp(a, "--semitones")) && i + 1 < argc) {
            if (!abc_parse_int_arg(argv[++i], &k)) {
                fprintf(stderr, "melodist abc transpose: -k wants a whole number of semitones, not '%s'\n", argv[i]);
                return 2;
            }
            have_k = true;
        } else if (!strcmp(a, "--to") && i + 1 < argc) {
            to = argv[++i];
        } else if (!strcmp(a, "--tune") && i + 1 < argc) {
            tune_arg = argv[++i];
            if (!abc_parse_int_arg(tune_arg, &tune_x)) {
                fprintf(stderr, "melodist abc transpose: --tune wants an X: number, not '%s'\n", tune_arg);
                return 2;
            }
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
    abc_file *f = abc_read_parse("transpose", path);
    if (!f)
        return 1;
    int rc = abc_print_parse_errors(f, path) ? 1 : 0;
    int only = -1;
    if (tune_arg && (only = abc_file_find_tune(f, tune_x)) < 0) {
        fprintf(stderr, "melodist abc transpose: no tune X:%d in %s\n", tune_x, path ? path : "<stdin>");
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
    } else if (fwrite(text, 1, len, stdout) != len || fflush(stdout)) {
        fprintf(stderr, "melodist abc transpose: cannot write the output\n");
        rc = 1;
    }
    free(text);
    abc_file_free(f);
    return rc;
}
