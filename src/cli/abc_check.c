/* melodist abc check: validate ABC files; diagnostics on stderr (or JSON on stdout). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abc_commands.h"
#include "abc_input.h"
#include "melodist/json.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: melodist abc check [--json] [--tune X] [--errors-only] FILE...   (FILE '-' or none: stdin)\n"
            "\n"
            "Checks syntax, header fields, bar lengths against the meter, repeats and endings, and the balance of\n"
            "slurs, ties, tuplets and grace groups. Prints 'file:line:col: error[category]: message (hint: ...)'\n"
            "on stderr; with --json one JSON object per run on stdout instead.\n"
            "\n"
            "  --json         machine-readable report on stdout\n"
            "  --tune X       check only the tune with X:X\n"
            "  --errors-only  leave warnings out\n"
            "\n"
            "exit status: 0 all valid, 1 some error found (or a file unreadable), 2 usage error\n");
}

/* Diagnostics of one tune of a file. */
static void collect(const abc_file *f, size_t tune, abc_diags *out)
{
    for (size_t i = 0; i < f->diags.n; i++) {
        const abc_diag *d = &f->diags.items[i];
        if (d->tune == (int)tune)
            abc_diags_add(out, d->severity, d->line, d->col, d->tune, d->category, d->hint, "%s", d->message);
    }
    abc_validate_tune(f, tune, out);
    abc_diags_sort(out);
}

static void print_json_file(const char *name, size_t n_tunes, const abc_diags *d, bool errors_only, bool first)
{
    printf("%s{\"file\":", first ? "" : ",");
    json_fput_string(stdout, name);
    printf(",\"tunes\":%zu,\"errors\":%zu,\"warnings\":%zu,\"diagnostics\":[", n_tunes, d ? d->n_errors : 1,
           d ? d->n_warnings : 0);
    bool sep = false;
    for (size_t i = 0; d && i < d->n; i++) {
        const abc_diag *g = &d->items[i];
        if (errors_only && g->severity != ABC_ERROR)
            continue;
        printf("%s{\"severity\":\"%s\",\"line\":%d,\"col\":%d,\"category\":", sep ? "," : "",
               g->severity == ABC_ERROR ? "error" : "warning", g->line, g->col);
        json_fput_string(stdout, g->category);
        printf(",\"message\":");
        json_fput_string(stdout, g->message);
        printf(",\"hint\":");
        if (g->hint)
            json_fput_string(stdout, g->hint);
        else
            printf("null");
        printf("}");
        sep = true;
    }
    printf("]}");
}

/* One line per diagnostic on stderr, cut at DIAG_LINE_MAX - 1 bytes. stderr is unbuffered and a write per
 * line costs more than checking the tune: the lines go out in blocks. */
#define DIAG_LINE_MAX 1024
static void print_text(const char *name, const abc_diags *d, bool errors_only)
{
    char block[64 * DIAG_LINE_MAX];
    size_t used = 0;
    for (size_t i = 0; i < d->n; i++) {
        if (errors_only && d->items[i].severity != ABC_ERROR)
            continue;
        if (sizeof block - used < DIAG_LINE_MAX + 1) {
            fwrite(block, 1, used, stderr);
            used = 0;
        }
        int n = abc_diag_format(&d->items[i], name, block + used, DIAG_LINE_MAX);
        used += n < 0 ? 0 : n < DIAG_LINE_MAX ? (size_t)n : DIAG_LINE_MAX - 1;
        block[used++] = '\n';
    }
    fwrite(block, 1, used, stderr);
}

int abc_cmd_check(int argc, char **argv)
{
    bool json = false, errors_only = false;
    int tune_x = -1;
    const char *files[argc > 1 ? argc : 1];
    int n_files = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--errors-only")) {
            errors_only = true;
        } else if (!strcmp(argv[i], "--tune")) {
            if (!abc_input_tune_arg("check", i + 1 < argc ? argv[++i] : NULL, &tune_x))
                return 2;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "melodist abc check: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else {
            files[n_files++] = argv[i];
        }
    }
    if (!n_files)
        files[n_files++] = "-";
    bool invalid = false;
    if (json)
        printf("{\"files\":[");
    for (int k = 0; k < n_files; k++) {
        const char *name = abc_input_name(files[k]);
        abc_diags d;
        abc_diags_init(&d);
        size_t n_tunes = 0;
        bool ok = true;
        if (tune_x < 0) { /* the whole file, one tune at a time */
            size_t len;
            bool mapped;
            const char *buf = abc_input_map("check", files[k], &len, &mapped);
            if (!buf) {
                ok = false;
            } else {
                abc_check_buffer(buf, len, &d, &n_tunes);
                abc_input_unmap(buf, len, mapped);
            }
        } else {
            abc_file *f = abc_input_parse("check", files[k]);
            int tune = f ? abc_file_find_tune(f, tune_x) : -1;
            if (f && tune < 0)
                fprintf(stderr, "melodist abc check: %s has no tune X:%d\n", name, tune_x);
            if (tune < 0) {
                ok = false;
            } else {
                collect(f, (size_t)tune, &d);
                n_tunes = 1;
            }
            abc_file_free(f);
        }
        if (!ok) {
            invalid = true;
            if (json)
                print_json_file(name, 0, NULL, errors_only, k == 0);
            abc_diags_free(&d);
            continue;
        }
        if (n_tunes == 0)
            abc_diags_add(&d, ABC_ERROR, 1, 1, -1, "header", "start each tune with an X: line", "no tune in the file");
        if (d.n_errors)
            invalid = true;
        if (json) {
            print_json_file(name, n_tunes, &d, errors_only, k == 0);
        } else {
            print_text(name, &d, errors_only);
        }
        abc_diags_free(&d);
    }
    if (json)
        printf("],\"valid\":%s}\n", invalid ? "false" : "true");
    return invalid ? 1 : 0;
}
