/* safetensors: header validation, mmap loading, sharded index, atomic writer. */
#include "melodist/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "melodist/fileio.h"
#include "melodist/json.h"

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [ST_BOOL] = {"BOOL", 1}, [ST_U8] = {"U8", 1},   [ST_I8] = {"I8", 1},     [ST_I16] = {"I16", 2},
    [ST_U16] = {"U16", 2},   [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2}, [ST_I32] = {"I32", 4},
    [ST_U32] = {"U32", 4},   [ST_F32] = {"F32", 4}, [ST_F64] = {"F64", 8},   [ST_I64] = {"I64", 8},
    [ST_U64] = {"U64", 8},
};
#define N_DTYPES (sizeof dtypes / sizeof dtypes[0])

const char *st_dtype_name(enum st_dtype dtype)
{
    return (size_t)dtype < N_DTYPES ? dtypes[dtype].name : "?";
}

size_t st_dtype_size(enum st_dtype dtype)
{
    return (size_t)dtype < N_DTYPES ? dtypes[dtype].size : 0;
}

static int dtype_from_name(const char *name, enum st_dtype *out)
{
    for (size_t i = 0; i < N_DTYPES; i++)
        if (!strcmp(name, dtypes[i].name)) {
            *out = (enum st_dtype)i;
            return 0;
        }
    return -1;
}

static void release(struct st_file *f)
{
    for (size_t i = 0; i < f->count; i++)
        free(f->tensors[i].name);
    free(f->tensors);
    json_free(f->metadata);
    f->tensors = NULL;
    f->metadata = NULL;
    f->count = 0;
}

/* A JSON number that is a non-negative integer representable exactly. */
static int json_uint(const struct json *v, uint64_t *out)
{
    if (!v || v->type != JSON_NUMBER || v->number < 0 || v->number > 9007199254740992.0 ||
        v->number != (double)(uint64_t)v->number)
        return -1;
    *out = (uint64_t)v->number;
    return 0;
}

static int by_offset(const void *a, const void *b)
{
    const struct st_tensor *x = a, *y = b;
    const uint8_t *xa = x->data, *ya = y->data;
    if (xa != ya)
        return xa < ya ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

static int parse_entry(const char *name, const struct json *e, const uint8_t *data, size_t data_size,
                       struct st_tensor *t, char *err, size_t errlen)
{
    const struct json *dt = json_get(e, "dtype"), *shape = json_get(e, "shape"), *off = json_get(e, "data_offsets");
    if (e->type != JSON_OBJECT || !dt || dt->type != JSON_STRING || !shape || shape->type != JSON_ARRAY || !off ||
        off->type != JSON_ARRAY || off->count != 2) {
        snprintf(err, errlen, "tensor '%s': expected {\"dtype\": str, \"shape\": [..], \"data_offsets\": [b, e]}",
                 name);
        return -1;
    }
    if (dtype_from_name(dt->string, &t->dtype)) {
        snprintf(err, errlen, "tensor '%s': unsupported dtype '%s'", name, dt->string);
        return -1;
    }
    if (shape->count > ST_MAX_DIMS) {
        snprintf(err, errlen, "tensor '%s': %zu dimensions (at most %d supported)", name, shape->count, ST_MAX_DIMS);
        return -1;
    }
    uint64_t numel = 1;
    int overflow = 0;
    t->ndim = (int)shape->count;
    for (size_t i = 0; i < shape->count; i++) {
        uint64_t d;
        if (json_uint(&shape->items[i], &d) || d > INT64_MAX) {
            snprintf(err, errlen, "tensor '%s': shape entries must be non-negative integers", name);
            return -1;
        }
        t->shape[i] = (int64_t)d;
        if (d && numel > UINT64_MAX / d)
            overflow = 1;
        numel *= d;
    }
    uint64_t begin, end, esize = dtypes[t->dtype].size;
    if (json_uint(&off->items[0], &begin) || json_uint(&off->items[1], &end) || begin > end || end > data_size) {
        snprintf(err, errlen, "tensor '%s': data_offsets outside the %zu-byte data section (file truncated?)", name,
                 data_size);
        return -1;
    }
    if (overflow || numel > UINT64_MAX / esize || numel * esize != end - begin) {
        snprintf(err, errlen, "tensor '%s': %s shape needs a different byte size than data_offsets give (%llu)",
                 name, dtypes[t->dtype].name, (unsigned long long)(end - begin));
        return -1;
    }
    t->data = data + begin;
    t->nbytes = (size_t)(end - begin);
    if ((uintptr_t)t->data % esize) {
        snprintf(err, errlen, "tensor '%s': data not aligned to its %llu-byte elements", name,
                 (unsigned long long)esize);
        return -1;
    }
    t->name = strdup(name);
    if (!t->name) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int st_parse(const void *buf, size_t size, struct st_file *f, char *err, size_t errlen)
{
    const uint8_t *b = buf;
    memset(f, 0, sizeof *f);
    f->map = b;
    f->size = size;
    if (size < 8) {
        snprintf(err, errlen, "file too short for a safetensors header (%zu bytes)", size);
        return -1;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | b[i];
    if (n > ST_MAX_HEADER) {
        snprintf(err, errlen, "header length %llu exceeds the %u-byte limit (not a safetensors file?)",
                 (unsigned long long)n, ST_MAX_HEADER);
        return -1;
    }
    if (n > size - 8) {
        snprintf(err, errlen, "header length %llu runs past the end of the %zu-byte file (truncated?)",
                 (unsigned long long)n, size);
        return -1;
    }
    if (n < 2 || b[8] != '{') {
        snprintf(err, errlen, "header does not start with '{' (not a safetensors file?)");
        return -1;
    }
    char jerr[200];
    struct json *h = json_parse((const char *)b + 8, (size_t)n, jerr, sizeof jerr);
    if (!h) {
        snprintf(err, errlen, "header JSON: %s", jerr);
        return -1;
    }
    if (h->type != JSON_OBJECT) {
        json_free(h);
        snprintf(err, errlen, "header is not a JSON object");
        return -1;
    }
    const uint8_t *data = b + 8 + n;
    size_t data_size = size - 8 - (size_t)n;
    f->tensors = calloc(h->count ? h->count : 1, sizeof *f->tensors);
    if (!f->tensors) {
        json_free(h);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < h->count && !rc; i++) {
        if (!strcmp(h->keys[i], "__metadata__")) {
            const struct json *m = &h->items[i];
            int ok = m->type == JSON_OBJECT;
            for (size_t j = 0; ok && j < m->count; j++)
                ok = m->items[j].type == JSON_STRING;
            if (!ok || f->metadata) {
                snprintf(err, errlen, "__metadata__ must be one object of strings");
                rc = -1;
                break;
            }
            f->metadata = calloc(1, sizeof *f->metadata);
            if (!f->metadata) {
                snprintf(err, errlen, "out of memory");
                rc = -1;
                break;
            }
            *f->metadata = *m; /* take ownership of the subtree */
            memset(&h->items[i], 0, sizeof h->items[i]);
            continue;
        }
        for (size_t j = 0; j < f->count; j++)
            if (!strcmp(f->tensors[j].name, h->keys[i])) {
                snprintf(err, errlen, "tensor '%s' appears twice", h->keys[i]);
                rc = -1;
            }
        if (!rc) {
            rc = parse_entry(h->keys[i], &h->items[i], data, data_size, &f->tensors[f->count], err, errlen);
            if (!rc)
                f->count++;
        }
    }
    json_free(h);
    if (!rc) {
        /* The data section must be covered exactly: sorted by offset, each tensor starts where the last ended. */
        struct st_tensor *sorted = malloc((f->count ? f->count : 1) * sizeof *sorted);
        if (!sorted) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        } else {
            memcpy(sorted, f->tensors, f->count * sizeof *sorted);
            qsort(sorted, f->count, sizeof *sorted, by_offset);
            const uint8_t *at = data;
            for (size_t i = 0; i < f->count && !rc; i++) {
                if ((const uint8_t *)sorted[i].data != at) {
                    snprintf(err, errlen, "tensor '%s' %s the previous one (data must be contiguous)", sorted[i].name,
                             (const uint8_t *)sorted[i].data < at ? "overlaps" : "leaves a gap after");
                    rc = -1;
                }
                at += sorted[i].nbytes;
            }
            if (!rc && at != data + data_size) {
                snprintf(err, errlen, "%zu bytes after the last tensor (corrupt file?)",
                         (size_t)(data + data_size - at));
                rc = -1;
            }
            free(sorted);
        }
    }
    if (rc)
        release(f);
    return rc;
}

int st_open(const char *path, struct st_file *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    char why[300];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    void *map = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (size && map == MAP_FAILED) {
        snprintf(err, errlen, "%s: mmap: %s", path, strerror(errno));
        return -1;
    }
    if (st_parse(map, size, f, why, sizeof why)) {
        snprintf(err, errlen, "%s: %s", path, why);
        if (map)
            munmap(map, size);
        f->map = NULL;
        return -1;
    }
    f->mapped = 1;
    f->path = strdup(path);
    if (!f->path) {
        snprintf(err, errlen, "out of memory");
        st_close(f);
        return -1;
    }
    return 0;
}

void st_close(struct st_file *f)
{
    release(f);
    if (f->mapped && f->map)
        munmap((void *)f->map, f->size);
    free(f->path);
    memset(f, 0, sizeof *f);
}

const struct st_tensor *st_find(const struct st_file *f, const char *name)
{
    for (size_t i = 0; i < f->count; i++)
        if (!strcmp(f->tensors[i].name, name))
            return &f->tensors[i];
    return NULL;
}

const char *st_metadata(const struct st_file *f, const char *key)
{
    const struct json *v = json_get(f->metadata, key);
    return v ? v->string : NULL;
}

static int add_shard(struct st_set *set, const char *dir, const char *file, char *err, size_t errlen)
{
    if (strchr(file, '/') || !strcmp(file, "..") || !*file) {
        snprintf(err, errlen, "shard name '%s' in the index is not a plain file name", file);
        return -1;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    for (size_t i = 0; i < set->count; i++)
        if (!strcmp(set->files[i].path, path))
            return 0;
    struct st_file *files = realloc(set->files, (set->count + 1) * sizeof *files);
    if (!files) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    set->files = files;
    if (st_open(path, &set->files[set->count], err, errlen))
        return -1;
    set->count++;
    return 0;
}

int st_set_open(const char *dir, struct st_set *set, char *err, size_t errlen)
{
    memset(set, 0, sizeof *set);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (access(path, F_OK)) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        if (access(path, F_OK)) {
            snprintf(err, errlen, "%s: no model.safetensors or model.safetensors.index.json", dir);
            return -1;
        }
        return add_shard(set, dir, "model.safetensors", err, errlen);
    }
    struct json *idx = json_load(path, ST_MAX_HEADER, err, errlen);
    if (!idx)
        return -1;
    const struct json *map = json_get(idx, "weight_map");
    int rc = 0;
    if (!map || map->type != JSON_OBJECT) {
        snprintf(err, errlen, "%s: no \"weight_map\" object", path);
        rc = -1;
    }
    for (size_t i = 0; !rc && i < map->count; i++) {
        const struct json *file = &map->items[i];
        if (file->type != JSON_STRING) {
            snprintf(err, errlen, "%s: weight_map entry '%s' is not a file name", path, map->keys[i]);
            rc = -1;
        } else {
            rc = add_shard(set, dir, file->string, err, errlen);
        }
    }
    /* Every mapped tensor must be in the shard the index names. */
    for (size_t i = 0; !rc && i < map->count; i++) {
        char want[PATH_MAX];
        snprintf(want, sizeof want, "%s/%s", dir, map->items[i].string);
        for (size_t j = 0; j < set->count; j++)
            if (!strcmp(set->files[j].path, want) && !st_find(&set->files[j], map->keys[i])) {
                snprintf(err, errlen, "%s: tensor '%s' is not in shard %s", path, map->keys[i], want);
                rc = -1;
            }
    }
    json_free(idx);
    if (rc)
        st_set_close(set);
    return rc;
}

void st_set_close(struct st_set *set)
{
    for (size_t i = 0; i < set->count; i++)
        st_close(&set->files[i]);
    free(set->files);
    memset(set, 0, sizeof *set);
}

const struct st_tensor *st_set_find(const struct st_set *set, const char *name)
{
    for (size_t i = 0; i < set->count; i++) {
        const struct st_tensor *t = st_find(&set->files[i], name);
        if (t)
            return t;
    }
    return NULL;
}

/* ---- writer ---- */

struct sbuf {
    char *s;
    size_t n, cap;
    int oom;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sb_put(b, tmp, n < (int)sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void sb_json_string(struct sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sb_put(b, e, 2);
        } else if (c < 0x20) {
            sb_printf(b, "\\u%04x", c);
        } else {
            sb_put(b, (const char *)&c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static size_t out_bytes(const struct st_out *t)
{
    size_t n = st_dtype_size(t->dtype);
    for (int i = 0; i < t->ndim; i++)
        n *= (size_t)t->shape[i];
    return n;
}

int st_write(const char *path, const struct st_out *tensors, size_t count, const char *const *metadata,
             size_t metadata_pairs, char *err, size_t errlen)
{
    /* Lay out wider elements first so that every tensor stays aligned to its element size. */
    size_t *order = malloc((count ? count : 1) * sizeof *order);
    if (!order) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t k = 0;
    for (size_t w = 8; w >= 1; w /= 2)
        for (size_t i = 0; i < count; i++)
            if (st_dtype_size(tensors[i].dtype) == w)
                order[k++] = i;
    struct sbuf h = {0};
    sb_put(&h, "{", 1);
    if (metadata_pairs) {
        sb_put(&h, "\"__metadata__\":{", 16);
        for (size_t i = 0; i < metadata_pairs; i++) {
            if (i)
                sb_put(&h, ",", 1);
            sb_json_string(&h, metadata[2 * i]);
            sb_put(&h, ":", 1);
            sb_json_string(&h, metadata[2 * i + 1]);
        }
        sb_put(&h, "}", 1);
    }
    size_t offset = 0;
    for (size_t j = 0; j < k; j++) {
        const struct st_out *t = &tensors[order[j]];
        if (j || metadata_pairs)
            sb_put(&h, ",", 1);
        sb_json_string(&h, t->name);
        sb_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++)
            sb_printf(&h, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        size_t nb = out_bytes(t);
        sb_printf(&h, "],\"data_offsets\":[%zu,%zu]}", offset, offset + nb);
        offset += nb;
    }
    sb_put(&h, "}", 1);
    while (!h.oom && h.n % 8)
        sb_put(&h, " ", 1);
    int rc = -1;
    char tmp[PATH_MAX + 32];
    FILE *fp = h.oom ? NULL : file_create_tmp(path, tmp, sizeof tmp, err, errlen);
    if (h.oom) {
        snprintf(err, errlen, "out of memory");
    } else if (fp) {
        uint8_t len8[8];
        for (int i = 0; i < 8; i++)
            len8[i] = (uint8_t)((uint64_t)h.n >> (8 * i));
        int ok = fwrite(len8, 1, 8, fp) == 8 && fwrite(h.s, 1, h.n, fp) == h.n;
        for (size_t j = 0; ok && j < k; j++) {
            size_t nb = out_bytes(&tensors[order[j]]);
            ok = fwrite(tensors[order[j]].data, 1, nb, fp) == nb;
        }
        rc = file_commit(fp, ok, tmp, path, err, errlen);
    }
    free(h.s);
    free(order);
    return rc;
}
