/* Small helpers for the ABC engine's test programs. */
#ifndef MELODIST_TEST_ABC_UTIL_H
#define MELODIST_TEST_ABC_UTIL_H

#include <stdio.h>
#include <stdlib.h>

/* Whole file into a malloc'd NUL-terminated buffer; NULL (with a message) on failure. */
static inline char *test_read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        perror(path);
        return NULL;
    }
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        fclose(fp);
        free(buf);
        return NULL;
    }
    fclose(fp);
    buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

#endif
