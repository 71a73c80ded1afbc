/* Reading ABC input for the 'melodist abc' commands of the analysis side (transpose, search). */
#ifndef MELODIST_CLI_ABC_READFILE_H
#define MELODIST_CLI_ABC_READFILE_H

#include <stddef.h>

#include "melodist/abc.h"

/* Read and parse `path` ("-" or NULL: stdin). On failure prints why (with the command name) and returns NULL. */
abc_file *abc_read_parse(const char *command, const char *path);

/* Print the parse errors of f as "path:line:col: error[category]: message (hint)". Returns how many. */
size_t abc_print_parse_errors(const abc_file *f, const char *path);

/* Parse a whole decimal int; false when s is not one. */
int abc_parse_int_arg(const char *s, int *out);

#endif
