/* Reading ABC input for the 'melodist abc' commands of the analysis side (transpose, search). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abc_readfile.h"

static char *slurp(FILE *fp, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, fp);
        if (n < cap)
            break;
        char *nb = realloc(buf, cap *= 2);
        if (!nb)
            free(buf);
        buf = nb;
    }
    if (buf && ferror(fp)) {
        free(buf);
        buf = NULL;
    }
    *len = n;
    return buf;
}

abc_file *abc_read_parse(const char *command, const char *path)
{
    bool use_stdin = !path || !strcmp(path, "-");
    FILE *fp = use_stdin ? stdin : fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "melodist abc %s: cannot open '%s': %s\n", command, path, strerror(errno));
        return NULL;
    }
    size_t len;
    char *buf = slurp(fp, &len);
    int err = errno;
    if (!use_stdin)
        fclose(fp);
    if (!buf) {
        fprintf(stderr, "melodist abc %s: cannot read '%s': %s\n", command, use_stdin ? "<stdin>" : path,
                strerror(err));
        return NULL;
    }
    abc_file *f = abc_parse(buf, len);
    free(buf);
    if (!f)
        fprintf(stderr, "melodist abc %s: out of memory reading '%s'\n", command, use_stdin ? "<stdin>" : path);
    return f;
}

size_t abc_print_parse_errors(const abc_file *f, const char *path)
{
    size_t n = 0;
    for (size_t i = 0; i < f->diags.n; i++) {
        const abc_diag *d = &f->diags.items[i];
        if (d->severity != ABC_ERROR)
            continue;
        char line[1024];
        abc_diag_format(d, path && strcmp(path, "-") ? path : "<stdin>", line, sizeof line);
        fprintf(stderr, "%s\n", line);
        n++;
    }
    return n;
}

int abc_parse_int_arg(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < -1000 || v > 1000)
        return 0;
    *out = (int)v;
    return 1;
}
