/* Must-show 1: every tune of the collections parses and validates without a crash, and every diagnostic
 * points into the file (1 <= line <= lines in the file, col >= 1) with a category and a message.
 * abc_check_buffer (tune at a time) must give exactly the diagnostics of abc_parse + abc_validate_file.
 * Usage: abc_corpus FILE.abc...   exit 77 when no file exists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "melodist/abc.h"
#include "testutil.h"

int main(int argc, char **argv)
{
    size_t files = 0, tunes = 0, invalid = 0, errors = 0, warnings = 0, bad = 0;
    for (int a = 1; a < argc; a++) {
        if (access(argv[a], R_OK))
            continue;
        size_t len;
        char *buf = tu_read_file(argv[a], &len);
        if (!buf)
            return 1;
        files++;
        int lines = 1;
        for (size_t i = 0; i < len; i++)
            lines += buf[i] == '\n';
        abc_file *f = abc_parse(buf, len);
        free(buf);
        if (!f) {
            fprintf(stderr, "%s: parse returned NULL\n", argv[a]);
            return 1;
        }
        abc_diags d;
        abc_diags_init(&d);
        abc_validate_file(f, &d);
        tunes += f->n_tunes;
        /* the tune-at-a-time check gives the same diagnostics */
        abc_diags d2;
        abc_diags_init(&d2);
        size_t n2 = 0;
        char *again = tu_read_file(argv[a], &len);
        abc_check_buffer(again, len, &d2, &n2);
        free(again);
        bool same = n2 == f->n_tunes && d2.n == d.n;
        for (size_t i = 0; same && i < d.n; i++) {
            const abc_diag *x = &d.items[i], *y = &d2.items[i];
            same = x->severity == y->severity && x->line == y->line && x->col == y->col && x->tune == y->tune &&
                   !strcmp(x->category, y->category) && !strcmp(x->message, y->message);
        }
        if (!same) {
            fprintf(stderr, "%s: abc_check_buffer differs from abc_parse + abc_validate_file (%zu vs %zu)\n",
                    argv[a], d2.n, d.n);
            bad++;
        }
        abc_diags_free(&d2);
        errors += d.n_errors;
        warnings += d.n_warnings;
        char *tune_bad = calloc(f->n_tunes + 1, 1);
        for (size_t i = 0; i < d.n; i++) {
            const abc_diag *g = &d.items[i];
            if (g->line < 1 || g->line > lines || g->col < 1 || !g->category || !*g->message) {
                if (bad++ < 10)
                    fprintf(stderr, "%s: diagnostic without a valid position: %d:%d %s\n", argv[a], g->line, g->col,
                            g->message);
            }
            if (g->severity == ABC_ERROR && g->tune >= 0 && !tune_bad[g->tune]) {
                tune_bad[g->tune] = 1;
                invalid++;
            }
        }
        if (a == 1 || invalid) {
            char line[1024];
            for (size_t i = 0; i < d.n && i < 3; i++) {
                abc_diag_format(&d.items[i], argv[a], line, sizeof line);
                printf("example: %s\n", line);
            }
        }
        free(tune_bad);
        abc_diags_free(&d);
        abc_file_free(f);
    }
    if (!files) {
        printf("SKIP: no ABC collection found\n");
        return 77;
    }
    printf("files %zu, tunes %zu, tunes with errors %zu, errors %zu, warnings %zu, badly placed %zu\n", files, tunes,
           invalid, errors, warnings, bad);
    return bad || tunes < 10000 ? 1 : 0;
}
