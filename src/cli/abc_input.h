/* Input and output helpers shared by the core 'melodist abc' commands (check, fmt, info). */
#ifndef MELODIST_CLI_ABC_INPUT_H
#define MELODIST_CLI_ABC_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "melodist/abc.h"

/* Read `path` ("-" or NULL: stdin) into a malloc'd buffer; prints why and returns NULL on failure. */
char *abc_input_read(const char *command, const char *path, size_t *len);
/* abc_input_read() without the copy where it can: a regular file is mapped read-only (it must not shrink
 * meanwhile). Give it back with abc_input_unmap(). */
const char *abc_input_map(const char *command, const char *path, size_t *len, bool *mapped);
void abc_input_unmap(const char *buf, size_t len, bool mapped);
/* Read and parse `path` ("-" or NULL: stdin). Prints "<command>: cannot read ..." and returns NULL on failure. */
abc_file *abc_input_parse(const char *command, const char *path);
/* The display name of an input path. */
const char *abc_input_name(const char *path);
/* Parse --tune's value; false (with a message) when it is not a number. */
bool abc_input_tune_arg(const char *command, const char *s, int *x);
/* Write data to path atomically (temp file + rename); false with a message on failure. */
bool abc_write_atomic(const char *command, const char *path, const char *data, size_t len);

#endif
