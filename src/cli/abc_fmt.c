/* melodist abc fmt: print ABC in the canonical layout (docs/abc-format.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abc_commands.h"
#include "abc_input.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: melodist abc fmt [--tune X] [-o OUT] [FILE]   (FILE '-' or none: stdin)\n"
            "\n"
            "Prints the file (or one tune) normalised: canonical header order, spacing, note lengths and\n"
            "bars per line. The music is unchanged: same notes, times and voices.\n"
            "\n"
            "  --tune X   only the tune with X:X\n"
            "  -o OUT     write to OUT (atomically) instead of stdout\n"
            "\n"
            "exit status: 0 ok, 1 syntax errors in the input (reported on stderr; output still written) or\n"
            "unreadable input, 2 usage error\n");
}

int abc_cmd_fmt(int argc, char **argv)
{
    const char *path = NULL, *out = NULL;
    int tune_x = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--tune")) {
            if (!abc_input_tune_arg("fmt", i + 1 < argc ? argv[++i] : NULL, &tune_x))
                return 2;
        } else if (!strcmp(argv[i], "-o")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "melodist abc fmt: -o needs a file name\n");
                return 2;
            }
            out = argv[++i];
        } else if ((argv[i][0] == '-' && argv[i][1]) || path) {
            fprintf(stderr, "melodist abc fmt: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else {
            path = argv[i];
        }
    }
    abc_file *f = abc_input_parse("fmt", path);
    if (!f)
        return 1;
    const char *name = abc_input_name(path);
    int rc = 0;
    char *text = NULL;
    size_t len = 0;
    if (tune_x >= 0) {
        int t = abc_file_find_tune(f, tune_x);
        if (t < 0) {
            fprintf(stderr, "melodist abc fmt: %s has no tune X:%d\n", name, tune_x);
            abc_file_free(f);
            return 1;
        }
        text = abc_fmt_tune(f, (size_t)t, &len);
    } else {
        text = abc_fmt_file(f, &len);
    }
    char line[1024];
    for (size_t i = 0; i < f->diags.n; i++) {
        const abc_diag *d = &f->diags.items[i];
        if (tune_x >= 0 && (d->tune < 0 || f->tunes[d->tune].x != tune_x))
            continue;
        abc_diag_format(d, name, line, sizeof line);
        fprintf(stderr, "%s\n", line);
        if (d->severity == ABC_ERROR)
            rc = 1;
    }
    if (!text) {
        fprintf(stderr, "melodist abc fmt: out of memory\n");
        rc = 1;
    } else if (out) {
        if (!abc_write_atomic("fmt", out, text, len))
            rc = 1;
    } else if (fwrite(text, 1, len, stdout) != len || fflush(stdout)) {
        fprintf(stderr, "melodist abc fmt: cannot write to stdout\n");
        rc = 1;
    }
    free(text);
    abc_file_free(f);
    return rc;
}
