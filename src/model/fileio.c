/* Whole-file reading and atomic file writing: a reader never sees a half-written file. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "melodist/fileio.h"

char *file_read(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t cap = 0, n = 0, got = 1;
    while (got && n <= max) {
        if (n == cap) {
            char *p = realloc(buf, (cap ? 2 * cap : 65536) + 1);
            if (!p) {
                snprintf(err, errlen, "out of memory");
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = p;
            cap = cap ? 2 * cap : 65536;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad || n > max) {
        if (bad)
            snprintf(err, errlen, "%s: read error", path);
        else
            snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

FILE *file_create_tmp(const char *path, char *tmp, size_t tmp_size, char *err, size_t errlen)
{
    snprintf(tmp, tmp_size, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f)
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
    return f;
}

int file_commit(FILE *f, int ok, const char *tmp, const char *path, char *err, size_t errlen)
{
    ok = fflush(f) == 0 && ok && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path)) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}
