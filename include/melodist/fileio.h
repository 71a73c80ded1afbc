/* Whole-file reading and atomic file writing (temp file, fsync, rename), shared by the model, train and server
 * layers. */
#ifndef MELODIST_FILEIO_H
#define MELODIST_FILEIO_H

#include <stddef.h>
#include <stdio.h>

/* Reads the file at path, NUL-terminated, into a malloc'ed buffer (length in *len). A file longer than max
 * bytes is an error. NULL with the reason in err. */
char *file_read(const char *path, size_t max, size_t *len, char *err, size_t errlen);

/* Opens a temp file beside path ("PATH.tmpPID", its name into tmp) for writing; NULL with the reason in err. */
FILE *file_create_tmp(const char *path, char *tmp, size_t tmp_size, char *err, size_t errlen);

/* Flushes, fsyncs and closes f, then renames tmp over path. ok = 0 (a write already failed) or any failure here
 * removes tmp and returns -1 with the reason in err; path is then left as it was. */
int file_commit(FILE *f, int ok, const char *tmp, const char *path, char *err, size_t errlen);

#endif
