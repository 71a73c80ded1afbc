/* LD_PRELOAD shim that simulates a full disk: files opened for writing (fopen) under the directory $ENOSPC_DIR,
 * spelled as the program spells its paths, accept $ENOSPC_AFTER_BYTES bytes in all through fwrite; every
 * further fwrite fails with ENOSPC, as a full file system fails the write behind it. The checkpoint and
 * safetensors writers write through fwrite; other files (stderr, files elsewhere) are left alone. */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_WATCHED = 64 };
static FILE *watched[MAX_WATCHED];
static long long budget = -1; /* bytes left; -1 until read from the environment */

static int is_watched(const FILE *f)
{
    for (int i = 0; i < MAX_WATCHED; i++)
        if (watched[i] == f)
            return 1;
    return 0;
}

FILE *fopen(const char *path, const char *mode)
{
    static FILE *(*real)(const char *, const char *);
    if (!real)
        real = (FILE * (*)(const char *, const char *)) dlsym(RTLD_NEXT, "fopen");
    FILE *f = real(path, mode);
    const char *dir = getenv("ENOSPC_DIR");
    size_t n = dir ? strlen(dir) : 0;
    if (f && n && strchr(mode, 'r') == NULL && strncmp(path, dir, n) == 0 && path[n] == '/')
        for (int i = 0; i < MAX_WATCHED; i++)
            if (!watched[i]) {
                watched[i] = f;
                break;
            }
    return f;
}

int fclose(FILE *f)
{
    static int (*real)(FILE *);
    if (!real)
        real = (int (*)(FILE *))dlsym(RTLD_NEXT, "fclose");
    for (int i = 0; i < MAX_WATCHED; i++)
        if (watched[i] == f)
            watched[i] = NULL;
    return real(f);
}

size_t fwrite(const void *buf, size_t size, size_t count, FILE *f)
{
    static size_t (*real)(const void *, size_t, size_t, FILE *);
    if (!real)
        real = (size_t (*)(const void *, size_t, size_t, FILE *))dlsym(RTLD_NEXT, "fwrite");
    if (!size || !is_watched(f))
        return real(buf, size, count, f);
    if (budget < 0) {
        const char *s = getenv("ENOSPC_AFTER_BYTES");
        budget = s ? atoll(s) : 0;
    }
    size_t fits = (size_t)budget / size < count ? (size_t)budget / size : count;
    size_t done = real(buf, size, fits, f);
    budget -= (long long)(done * size);
    if (done < count)
        errno = ENOSPC;
    return done;
}
