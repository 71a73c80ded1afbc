/* Input and output helpers of the core 'melodist abc' commands. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abc_input.h"

static char *read_stream(FILE *fp, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (n < cap) {
            if (ferror(fp)) {
                free(buf);
                return NULL;
            }
            break;
        }
        char *bigger = realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            return NULL;
        }
        buf = bigger;
        cap *= 2;
    }
    *len = n;
    return buf;
}

const char *abc_input_name(const char *path)
{
    return !path || !strcmp(path, "-") ? "<stdin>" : path;
}

char *abc_input_read(const char *command, const char *path, size_t *len)
{
    bool is_stdin = !path || !strcmp(path, "-");
    FILE *fp = is_stdin ? stdin : fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "melodist abc %s: cannot open %s: %s\n", command, path, strerror(errno));
        return NULL;
    }
    char *buf = read_stream(fp, len);
    int err = errno;
    if (!is_stdin)
        fclose(fp);
    if (!buf)
        fprintf(stderr, "melodist abc %s: cannot read %s: %s\n", command, abc_input_name(path), strerror(err));
    return buf;
}

const char *abc_input_map(const char *command, const char *path, size_t *len, bool *mapped)
{
    *mapped = false;
    int fd = path && strcmp(path, "-") ? open(path, O_RDONLY) : -1;
    struct stat st;
    if (fd >= 0 && !fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_size > 0) {
        /* populated up front: one pass over the page cache instead of a fault per page */
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        if (p != MAP_FAILED) {
            close(fd);
            *len = (size_t)st.st_size;
            *mapped = true;
            return p;
        }
    }
    if (fd >= 0)
        close(fd);
    return abc_input_read(command, path, len);
}

void abc_input_unmap(const char *buf, size_t len, bool mapped)
{
    if (mapped)
        munmap((void *)buf, len);
    else
        free((void *)buf);
}

abc_file *abc_input_parse(const char *command, const char *path)
{
    size_t len = 0;
    char *buf = abc_input_read(command, path, &len);
    if (!buf)
        return NULL;
    abc_file *f = abc_parse(buf, len);
    free(buf);
    if (!f)
        fprintf(stderr, "melodist abc %s: out of memory reading %s\n", command, abc_input_name(path));
    return f;
}

bool abc_input_tune_arg(const char *command, const char *s, int *x)
{
    char *end;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || v < 0 || v > 1000000000) {
        fprintf(stderr, "melodist abc %s: --tune needs a tune number (the X: value)\n", command);
        return false;
    }
    *x = (int)v;
    return true;
}

bool abc_write_atomic(const char *command, const char *path, const char *data, size_t len)
{
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp)
        return false;
    snprintf(tmp, n, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    FILE *fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
    /* mkstemp creates the file 0600; the output is an ordinary file, readable like the midi and wav ones */
    bool ok = fp && fwrite(data, 1, len, fp) == len && fchmod(fd, 0644) == 0;
    if (fp && fclose(fp))
        ok = false;
    else if (!fp && fd >= 0)
        close(fd);
    if (ok && rename(tmp, path))
        ok = false;
    if (!ok) {
        fprintf(stderr, "melodist abc %s: cannot write %s: %s\n", command, path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return ok;
}
