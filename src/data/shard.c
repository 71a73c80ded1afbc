/* Token shard writer and memory-mapped reader (format in melodist/shard.h). Assumes a little-endian host, as the
 * trainer does; the format itself is fixed little-endian. */
#include "melodist/shard.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct shard_writer {
    FILE *fp;
    char *path, *tmp;
    int dtype_bytes;
    uint32_t vocab_size;
    uint64_t n_tokens;
    uint64_t *offsets; /* document starts (8 bytes per document: the only memory that grows) */
    size_t n_docs, cap;
};

static char *tmp_path(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t dir = slash ? (size_t)(slash - path) + 1 : 0;
    size_t n = strlen(path) + 8;
    char *t = malloc(n);
    if (!t)
        abort();
    snprintf(t, n, "%.*s.%s.tmp", (int)dir, path, path + dir);
    return t;
}

struct shard_writer *shard_writer_open(const char *path, int dtype_bytes, uint32_t vocab_size, char *err,
                                       size_t errlen)
{
    if (dtype_bytes != 2 && dtype_bytes != 4) {
        snprintf(err, errlen, "shard dtype must be 2 (uint16) or 4 (uint32) bytes, not %d", dtype_bytes);
        return NULL;
    }
    if (dtype_bytes == 2 && vocab_size > 65536) {
        snprintf(err, errlen, "a vocabulary of %u ids does not fit uint16 shards; use uint32", vocab_size);
        return NULL;
    }
    struct shard_writer *w = calloc(1, sizeof *w);
    if (!w)
        abort();
    w->path = strdup(path);
    w->tmp = tmp_path(path);
    w->dtype_bytes = dtype_bytes;
    w->vocab_size = vocab_size;
    w->fp = fopen(w->tmp, "wb");
    static const unsigned char zero[SHARD_HEADER_BYTES];
    if (!w->fp || fwrite(zero, 1, sizeof zero, w->fp) != sizeof zero) {
        snprintf(err, errlen, "cannot write %s: %s", w->tmp, strerror(errno));
        shard_writer_abort(w);
        return NULL;
    }
    return w;
}

int shard_writer_add(struct shard_writer *w, const uint32_t *ids, size_t n, char *err, size_t errlen)
{
    if (w->n_docs == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 1024;
        w->offsets = realloc(w->offsets, w->cap * sizeof *w->offsets);
        if (!w->offsets)
            abort();
    }
    w->offsets[w->n_docs++] = w->n_tokens;
    uint64_t limit = w->vocab_size ? w->vocab_size : (w->dtype_bytes == 2 ? 65536u : 0x100000000ull);
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= limit) {
            snprintf(err, errlen, "token id %u of document %zu is outside the vocabulary/dtype (limit %llu)", ids[i],
                     w->n_docs - 1, (unsigned long long)limit);
            return -1;
        }
        size_t ok;
        if (w->dtype_bytes == 2) {
            uint16_t v = (uint16_t)ids[i];
            ok = fwrite(&v, 2, 1, w->fp);
        } else {
            ok = fwrite(&ids[i], 4, 1, w->fp);
        }
        if (ok != 1) {
            snprintf(err, errlen, "cannot write %s: %s", w->tmp, strerror(errno));
            return -1;
        }
    }
    w->n_tokens += n;
    return 0;
}

static void put_u32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_u64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }

int shard_writer_close(struct shard_writer *w, char *err, size_t errlen)
{
    static const unsigned char pad[8];
    size_t data_end = SHARD_HEADER_BYTES + (size_t)w->n_tokens * (size_t)w->dtype_bytes;
    size_t padding = (8 - data_end % 8) % 8;
    int ok = fwrite(pad, 1, padding, w->fp) == padding;
    if (ok && w->n_docs)
        ok = fwrite(w->offsets, 8, w->n_docs, w->fp) == w->n_docs;
    ok = ok && fwrite(&w->n_tokens, 8, 1, w->fp) == 1;
    unsigned char h[SHARD_HEADER_BYTES] = {0};
    memcpy(h, SHARD_MAGIC, 8);
    put_u32(h + 8, SHARD_VERSION);
    put_u32(h + 12, (uint32_t)w->dtype_bytes);
    put_u64(h + 16, w->n_tokens);
    put_u64(h + 24, w->n_docs);
    put_u32(h + 32, w->vocab_size);
    ok = ok && fseek(w->fp, 0, SEEK_SET) == 0 && fwrite(h, 1, sizeof h, w->fp) == sizeof h;
    ok = ok && fflush(w->fp) == 0 && fsync(fileno(w->fp)) == 0;
    ok = fclose(w->fp) == 0 && ok;
    w->fp = NULL;
    ok = ok && rename(w->tmp, w->path) == 0;
    if (!ok)
        snprintf(err, errlen, "cannot write %s: %s", w->path, strerror(errno));
    shard_writer_abort(w);
    return ok ? 0 : -1;
}

void shard_writer_abort(struct shard_writer *w)
{
    if (!w)
        return;
    if (w->fp)
        fclose(w->fp);
    unlink(w->tmp); /* after a successful rename this names nothing */
    free(w->path);
    free(w->tmp);
    free(w->offsets);
    free(w);
}

int shard_open(const char *path, struct shard *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) || sb.st_size < SHARD_HEADER_BYTES) {
        close(fd);
        snprintf(err, errlen, "%s: too short for a shard header", path);
        return -1;
    }
    s->map_len = (size_t)sb.st_size;
    s->map = mmap(NULL, s->map_len, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (s->map == MAP_FAILED) {
        s->map = NULL;
        snprintf(err, errlen, "%s: mmap failed: %s", path, strerror(errno));
        return -1;
    }
    const unsigned char *h = s->map;
    uint32_t version, dtype;
    memcpy(&version, h + 8, 4);
    memcpy(&dtype, h + 12, 4);
    memcpy(&s->n_tokens, h + 16, 8);
    memcpy(&s->n_docs, h + 24, 8);
    memcpy(&s->vocab_size, h + 32, 4);
    const char *why = NULL;
    if (memcmp(h, SHARD_MAGIC, 8))
        why = "not a shard (bad magic)";
    else if (version != SHARD_VERSION)
        why = "unsupported shard version";
    else if (dtype != 2 && dtype != 4)
        why = "bad dtype";
    uint64_t data_end = 0, index_off = 0;
    if (!why) {
        s->dtype_bytes = (int)dtype;
        data_end = SHARD_HEADER_BYTES + s->n_tokens * dtype;
        index_off = (data_end + 7) / 8 * 8;
        if (s->n_tokens > s->map_len || index_off + (s->n_docs + 1) * 8 != s->map_len)
            why = "file size does not match the header (truncated?)";
    }
    if (!why) {
        s->tokens = h + SHARD_HEADER_BYTES;
        s->doc_offsets = (const uint64_t *)(h + index_off);
        if (s->doc_offsets[s->n_docs] != s->n_tokens || (s->n_docs && s->doc_offsets[0] != 0))
            why = "document index does not cover the tokens";
        for (uint64_t i = 0; !why && i < s->n_docs; i++)
            if (s->doc_offsets[i] > s->doc_offsets[i + 1])
                why = "document index is not monotone";
    }
    if (why) {
        snprintf(err, errlen, "%s: %s", path, why);
        shard_close(s);
        return -1;
    }
    return 0;
}

void shard_close(struct shard *s)
{
    if (s->map)
        munmap(s->map, s->map_len);
    memset(s, 0, sizeof *s);
}
