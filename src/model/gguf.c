/* GGUF v3: writer (key/values serialised as they are added, tensor data pulled row by row) and a reader that
 * checks every length and offset against the mapped file before using it. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "melodist/gguf.h"

#define GGUF_MAX_NAME 64

const char *gguf_ttype_name(enum gguf_ttype t)
{
    switch (t) {
    case GGUF_F32: return "f32";
    case GGUF_F16: return "f16";
    case GGUF_BF16: return "bf16";
    case GGUF_Q8_0: return "q8_0";
    case GGUF_Q4_0: return "q4_0";
    }
    return NULL;
}

size_t gguf_row_bytes(enum gguf_ttype t, uint64_t n)
{
    switch (t) {
    case GGUF_F32: return n * 4;
    case GGUF_F16:
    case GGUF_BF16: return n * 2;
    case GGUF_Q8_0: return n % 32 ? 0 : n / 32 * 34;
    case GGUF_Q4_0: return n % 32 ? 0 : n / 32 * 18;
    }
    return 0;
}

static size_t vtype_size(enum gguf_vtype t)
{
    static const size_t size[] = {[GGUF_UINT8] = 1,  [GGUF_INT8] = 1,   [GGUF_UINT16] = 2, [GGUF_INT16] = 2,
                                  [GGUF_UINT32] = 4, [GGUF_INT32] = 4,  [GGUF_FLOAT32] = 4, [GGUF_BOOL] = 1,
                                  [GGUF_UINT64] = 8, [GGUF_INT64] = 8,  [GGUF_FLOAT64] = 8};
    return (unsigned)t < sizeof size / sizeof size[0] ? size[t] : 0;
}

/* ---- writer ---- */

struct buf {
    unsigned char *p;
    size_t n, cap;
    int oom;
};

static void put(struct buf *b, const void *data, size_t n)
{
    if (b->oom || !n)
        return;
    if (b->n + n > b->cap) {
        size_t cap = 2 * (b->n + n) + 4096;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

/* The host is little-endian (x86-64, arm64), as GGUF's default. */
static void put_u32(struct buf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(struct buf *b, uint64_t v) { put(b, &v, 8); }

static void put_str(struct buf *b, const char *s, size_t len)
{
    put_u64(b, len);
    put(b, s, len);
}

struct wtensor {
    char name[GGUF_MAX_NAME + 1];
    enum gguf_ttype type;
    int n_dims;
    uint64_t ne[4], rows;
    size_t row_bytes;
};

struct gguf_writer {
    struct buf kv;
    uint64_t n_kv;
    struct wtensor *tensors;
    int n_tensors, cap_tensors;
};

struct gguf_writer *gguf_writer_new(void) { return calloc(1, sizeof(struct gguf_writer)); }

void gguf_writer_free(struct gguf_writer *w)
{
    if (!w)
        return;
    free(w->kv.p);
    free(w->tensors);
    free(w);
}

static int kv_head(struct gguf_writer *w, const char *key, enum gguf_vtype t)
{
    put_str(&w->kv, key, strlen(key));
    put_u32(&w->kv, t);
    w->n_kv++;
    return 0;
}

static int kv_done(struct gguf_writer *w) { return w->kv.oom ? -1 : 0; }

int gguf_set_u32(struct gguf_writer *w, const char *key, uint32_t v)
{
    kv_head(w, key, GGUF_UINT32);
    put_u32(&w->kv, v);
    return kv_done(w);
}

int gguf_set_f32(struct gguf_writer *w, const char *key, float v)
{
    kv_head(w, key, GGUF_FLOAT32);
    put(&w->kv, &v, 4);
    return kv_done(w);
}

int gguf_set_bool(struct gguf_writer *w, const char *key, int v)
{
    unsigned char b = v != 0;
    kv_head(w, key, GGUF_BOOL);
    put(&w->kv, &b, 1);
    return kv_done(w);
}

int gguf_set_string(struct gguf_writer *w, const char *key, const char *s, size_t len)
{
    kv_head(w, key, GGUF_STRING);
    put_str(&w->kv, s, len);
    return kv_done(w);
}

int gguf_set_array(struct gguf_writer *w, const char *key, enum gguf_vtype elem, const void *data, size_t n)
{
    kv_head(w, key, GGUF_ARRAY);
    put_u32(&w->kv, elem);
    put_u64(&w->kv, n);
    put(&w->kv, data, n * vtype_size(elem));
    return kv_done(w);
}

int gguf_set_string_array(struct gguf_writer *w, const char *key, const char *const *s, const size_t *lens,
                          size_t n)
{
    kv_head(w, key, GGUF_ARRAY);
    put_u32(&w->kv, GGUF_STRING);
    put_u64(&w->kv, n);
    for (size_t i = 0; i < n; i++)
        put_str(&w->kv, s[i], lens[i]);
    return kv_done(w);
}

int gguf_add_tensor(struct gguf_writer *w, const char *name, enum gguf_ttype type, int n_dims, const uint64_t *ne)
{
    if (strlen(name) > GGUF_MAX_NAME || n_dims < 1 || n_dims > 4 || !gguf_row_bytes(type, ne[0]))
        return -1;
    if (w->n_tensors == w->cap_tensors) {
        int cap = w->cap_tensors ? 2 * w->cap_tensors : 64;
        struct wtensor *t = realloc(w->tensors, (size_t)cap * sizeof *t);
        if (!t)
            return -1;
        w->tensors = t;
        w->cap_tensors = cap;
    }
    struct wtensor *t = &w->tensors[w->n_tensors++];
    memset(t, 0, sizeof *t);
    strcpy(t->name, name);
    t->type = type;
    t->n_dims = n_dims;
    t->rows = 1;
    for (int d = 0; d < n_dims; d++) {
        t->ne[d] = ne[d];
        if (d)
            t->rows *= ne[d];
    }
    t->row_bytes = gguf_row_bytes(type, ne[0]);
    return 0;
}

static uint64_t pad_to(uint64_t n, uint64_t align) { return (n + align - 1) / align * align; }

static int write_all(FILE *fp, const void *p, size_t n) { return fwrite(p, 1, n, fp) == n ? 0 : -1; }

static int write_zeros(FILE *fp, size_t n)
{
    static const char zeros[GGUF_DEFAULT_ALIGNMENT];
    return write_all(fp, zeros, n);
}

int gguf_write(struct gguf_writer *w, const char *path, gguf_row_fn fill, void *ctx, char *err, size_t errlen)
{
    struct buf head = {0};
    uint32_t magic = 0x46554747;
    put(&head, &magic, 4);
    put_u32(&head, GGUF_VERSION);
    put_u64(&head, (uint64_t)w->n_tensors);
    put_u64(&head, w->n_kv);
    put(&head, w->kv.p, w->kv.n);
    uint64_t offset = 0;
    size_t max_row = 0;
    for (int i = 0; i < w->n_tensors; i++) {
        const struct wtensor *t = &w->tensors[i];
        put_str(&head, t->name, strlen(t->name));
        put_u32(&head, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++)
            put_u64(&head, t->ne[d]);
        put_u32(&head, t->type);
        put_u64(&head, offset);
        offset = pad_to(offset + t->rows * t->row_bytes, GGUF_DEFAULT_ALIGNMENT);
        if (t->row_bytes > max_row)
            max_row = t->row_bytes;
    }
    size_t tmp_len = strlen(path) + 16;
    char *tmp = malloc(tmp_len);
    void *row = malloc(max_row ? max_row : 1);
    int rc = -1;
    FILE *fp = NULL;
    if (head.oom || w->kv.oom || !tmp || !row) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    snprintf(tmp, tmp_len, "%s.tmp%d", path, (int)getpid());
    if (!(fp = fopen(tmp, "wb"))) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        goto done;
    }
    int bad = write_all(fp, head.p, head.n) ||
              write_zeros(fp, pad_to(head.n, GGUF_DEFAULT_ALIGNMENT) - head.n);
    for (int i = 0; i < w->n_tensors && !bad; i++) {
        const struct wtensor *t = &w->tensors[i];
        for (uint64_t r = 0; r < t->rows && !bad; r++) {
            if (fill(ctx, i, r, row, err, errlen))
                goto fail;
            bad = write_all(fp, row, t->row_bytes);
        }
        size_t size = t->rows * t->row_bytes;
        if (!bad)
            bad = write_zeros(fp, pad_to(size, GGUF_DEFAULT_ALIGNMENT) - size);
    }
    if (bad || fflush(fp) || fsync(fileno(fp))) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if (fclose(fp)) {
        fp = NULL;
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto fail;
    }
    fp = NULL;
    if (rename(tmp, path)) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto fail;
    }
    rc = 0;
    goto done;
fail:
    if (fp)
        fclose(fp);
    remove(tmp);
done:
    free(head.p);
    free(tmp);
    free(row);
    return rc;
}

/* ---- reader ---- */

struct rkv {
    const char *key; /* NUL-terminated copy */
    enum gguf_vtype type, elem;
    const unsigned char *value; /* scalar value, string (after its length), or first array element */
    uint64_t n;                 /* string length or array count */
    uint64_t *str_offsets;      /* arrays of strings: offset of each element's length field from value */
};

struct gguf_file {
    unsigned char *map;
    size_t size;
    uint32_t version;
    struct rkv *kv;
    int n_kv;
    struct gguf_tensor *tensors;
    int n_tensors;
};

struct cursor {
    const unsigned char *p, *end;
    char *err;
    size_t errlen;
    int bad;
};

static int need(struct cursor *c, uint64_t n, const char *what)
{
    if (c->bad)
        return -1;
    if (n > (uint64_t)(c->end - c->p)) {
        snprintf(c->err, c->errlen, "truncated or corrupt GGUF file: %s runs past the end of the file", what);
        c->bad = 1;
        return -1;
    }
    return 0;
}

static uint64_t get_u64(struct cursor *c, const char *what)
{
    uint64_t v = 0;
    if (!need(c, 8, what)) {
        memcpy(&v, c->p, 8);
        c->p += 8;
    }
    return v;
}

static uint32_t get_u32(struct cursor *c, const char *what)
{
    uint32_t v = 0;
    if (!need(c, 4, what)) {
        memcpy(&v, c->p, 4);
        c->p += 4;
    }
    return v;
}

static const unsigned char *get_str(struct cursor *c, uint64_t *len, const char *what)
{
    *len = get_u64(c, what);
    if (need(c, *len, what))
        return NULL;
    const unsigned char *s = c->p;
    c->p += *len;
    return s;
}

__attribute__((format(printf, 2, 3))) static void fail(struct cursor *c, const char *fmt, ...)
{
    if (!c->bad) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    c->bad = 1;
}

void gguf_close(struct gguf_file *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->n_kv; i++) {
        free((char *)f->kv[i].key);
        free(f->kv[i].str_offsets);
    }
    for (int i = 0; i < f->n_tensors; i++)
        free((char *)f->tensors[i].name);
    free(f->kv);
    free(f->tensors);
    if (f->map)
        munmap(f->map, f->size);
    free(f);
}

static char *dup_str(const unsigned char *s, uint64_t len)
{
    char *d = malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = 0;
    }
    return d;
}

static void read_kv(struct cursor *c, struct rkv *kv)
{
    uint64_t len;
    const unsigned char *key = get_str(c, &len, "a key");
    if (c->bad)
        return;
    if (len > 65535 || memchr(key, 0, len)) {
        fail(c, "corrupt GGUF file: a key of %llu bytes", (unsigned long long)len);
        return;
    }
    if (!(kv->key = dup_str(key, len))) {
        fail(c, "out of memory");
        return;
    }
    kv->type = get_u32(c, "a value type");
    kv->value = c->p;
    if (kv->type == GGUF_STRING) {
        get_str(c, &kv->n, "a string value");
        kv->value += 8;
    } else if (kv->type == GGUF_ARRAY) {
        kv->elem = get_u32(c, "an array type");
        kv->n = get_u64(c, "an array length");
        kv->value = c->p;
        if (c->bad)
            return;
        if (kv->elem == GGUF_STRING) {
            if (kv->n > (uint64_t)(c->end - c->p) / 8) {
                fail(c, "GGUF key %s: array of %lld strings longer than the file", kv->key, (long long)kv->n);
                return;
            }
            if (!(kv->str_offsets = malloc((kv->n ? kv->n : 1) * sizeof *kv->str_offsets))) {
                fail(c, "out of memory");
                return;
            }
            for (uint64_t j = 0; j < kv->n && !c->bad; j++) {
                kv->str_offsets[j] = (uint64_t)(c->p - kv->value);
                get_str(c, &len, "a string in an array");
            }
        } else if (!vtype_size(kv->elem)) {
            fail(c, "GGUF key %s: unsupported array element type %u", kv->key, (unsigned)kv->elem);
        } else if (kv->n > (uint64_t)(c->end - c->p) / vtype_size(kv->elem)) {
            fail(c, "GGUF key %s: array of %lld values runs past the end of the file", kv->key, (long long)kv->n);
        } else {
            c->p += kv->n * vtype_size(kv->elem);
        }
    } else if (!vtype_size(kv->type)) {
        fail(c, "GGUF key %s: unknown value type %u", kv->key, (unsigned)kv->type);
    } else if (!need(c, vtype_size(kv->type), kv->key)) {
        c->p += vtype_size(kv->type);
    }
}

static void read_tensor(struct cursor *c, struct gguf_tensor *t, uint64_t *offset)
{
    uint64_t len;
    const unsigned char *name = get_str(c, &len, "a tensor name");
    if (c->bad)
        return;
    if (len > GGUF_MAX_NAME || memchr(name, 0, len)) {
        fail(c, "corrupt GGUF file: a tensor name of %llu bytes", (unsigned long long)len);
        return;
    }
    if (!(t->name = dup_str(name, len))) {
        fail(c, "out of memory");
        return;
    }
    uint32_t n_dims = get_u32(c, "tensor dims");
    if (!c->bad && (n_dims < 1 || n_dims > 4)) {
        fail(c, "GGUF tensor %s: %u dimensions (1 to 4 allowed)", t->name, n_dims);
        return;
    }
    t->n_dims = (int)n_dims;
    uint64_t rows = 1;
    for (uint32_t d = 0; d < n_dims && !c->bad; d++) {
        t->ne[d] = get_u64(c, "tensor dims");
        if (t->ne[d] == 0 || t->ne[d] > (1ull << 40) || (d && rows > (1ull << 40) / t->ne[d]))
            fail(c, "GGUF tensor %s: dimension %lld out of range", t->name, (long long)t->ne[d]);
        else if (d)
            rows *= t->ne[d];
    }
    t->type = get_u32(c, "a tensor type");
    *offset = get_u64(c, "a tensor offset");
    if (c->bad)
        return;
    size_t row = gguf_row_bytes(t->type, t->ne[0]);
    if (!gguf_ttype_name(t->type) || !row)
        fail(c, "GGUF tensor %s: unsupported type %u, or rows that are not whole blocks", t->name, (unsigned)t->type);
    else if (rows > (1ull << 50) / row)
        fail(c, "GGUF tensor %s: too large (%lld rows)", t->name, (long long)rows);
    t->bytes = rows * row;
}

struct gguf_file *gguf_open(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    struct gguf_file *f = calloc(1, sizeof *f);
    if (!f || fstat(fd, &st)) {
        snprintf(err, errlen, f ? "cannot stat %s" : "out of memory", path);
        free(f);
        close(fd);
        return NULL;
    }
    f->size = (size_t)st.st_size;
    if (f->size < 24) {
        snprintf(err, errlen, "%s is not a GGUF file (%zu bytes)", path, f->size);
        close(fd);
        free(f);
        return NULL;
    }
    f->map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        snprintf(err, errlen, "cannot map %s: %s", path, strerror(errno));
        gguf_close(f);
        return NULL;
    }
    struct cursor c = {f->map, f->map + f->size, err, errlen, 0};
    uint32_t magic = get_u32(&c, "magic");
    f->version = get_u32(&c, "version");
    if (magic != 0x46554747) {
        snprintf(err, errlen, "%s is not a GGUF file (no GGUF magic)", path);
        gguf_close(f);
        return NULL;
    }
    if (f->version < 2 || f->version > 3) {
        snprintf(err, errlen, "%s: GGUF version %u is not supported (2 and 3 are)", path, f->version);
        gguf_close(f);
        return NULL;
    }
    uint64_t n_tensors = get_u64(&c, "tensor count"), n_kv = get_u64(&c, "key count");
    /* Every key/value and tensor info takes at least 12 bytes: counts beyond that are corrupt. */
    if (n_tensors > f->size / 12 || n_kv > f->size / 12) {
        snprintf(err, errlen, "%s: corrupt GGUF header (%llu tensors, %llu keys in %zu bytes)", path,
                 (unsigned long long)n_tensors, (unsigned long long)n_kv, f->size);
        gguf_close(f);
        return NULL;
    }
    f->kv = calloc(n_kv ? n_kv : 1, sizeof *f->kv);
    f->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *f->tensors);
    uint64_t *offsets = calloc(n_tensors ? n_tensors : 1, sizeof *offsets);
    if (!f->kv || !f->tensors || !offsets)
        fail(&c, "out of memory");
    for (uint64_t i = 0; i < n_kv && !c.bad; i++, f->n_kv++)
        read_kv(&c, &f->kv[i]);
    for (uint64_t i = 0; i < n_tensors && !c.bad; i++, f->n_tensors++)
        read_tensor(&c, &f->tensors[i], &offsets[i]);
    uint64_t align = GGUF_DEFAULT_ALIGNMENT;
    int ai = c.bad ? -1 : gguf_find_kv(f, "general.alignment");
    int64_t a;
    if (ai >= 0 && (gguf_get_int(f, ai, &a) || a < 8 || a > 1 << 20 || a % 8))
        fail(&c, "%s: bad general.alignment (not a multiple of 8 between 8 and 2^20)", path);
    else if (ai >= 0)
        align = (uint64_t)a;
    uint64_t data = pad_to((uint64_t)(c.p - f->map), align);
    for (int i = 0; i < f->n_tensors && !c.bad; i++) {
        struct gguf_tensor *t = &f->tensors[i];
        if (offsets[i] % align || offsets[i] > f->size || data > f->size - offsets[i] ||
            t->bytes > f->size - data - offsets[i])
            fail(&c, "truncated or corrupt GGUF file: tensor %s lies outside the file (offset %lld)", t->name,
                 (long long)offsets[i]);
        else
            t->data = f->map + data + offsets[i];
    }
    free(offsets);
    if (c.bad) {
        gguf_close(f);
        return NULL;
    }
    return f;
}

uint32_t gguf_file_version(const struct gguf_file *f) { return f->version; }
int gguf_kv_count(const struct gguf_file *f) { return f->n_kv; }
const char *gguf_kv_key(const struct gguf_file *f, int i) { return f->kv[i].key; }
enum gguf_vtype gguf_kv_type(const struct gguf_file *f, int i) { return f->kv[i].type; }

int gguf_find_kv(const struct gguf_file *f, const char *key)
{
    for (int i = 0; i < f->n_kv; i++)
        if (!strcmp(f->kv[i].key, key))
            return i;
    return -1;
}

static int number_at(enum gguf_vtype t, const unsigned char *p, int64_t *iv, double *fv)
{
    union {
        uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; uint64_t u64; int64_t i64;
        float f32; double f64;
    } v;
    memcpy(&v, p, vtype_size(t));
    switch (t) {
    case GGUF_UINT8: *iv = v.u8; break;
    case GGUF_INT8: *iv = v.i8; break;
    case GGUF_UINT16: *iv = v.u16; break;
    case GGUF_INT16: *iv = v.i16; break;
    case GGUF_UINT32: *iv = v.u32; break;
    case GGUF_INT32: *iv = v.i32; break;
    case GGUF_INT64: *iv = v.i64; break;
    case GGUF_UINT64:
        if (v.u64 > INT64_MAX)
            return -1;
        *iv = (int64_t)v.u64;
        break;
    case GGUF_FLOAT32: *fv = v.f32; return 1;
    case GGUF_FLOAT64: *fv = v.f64; return 1;
    default: return -1;
    }
    *fv = (double)*iv;
    return 0;
}

int gguf_get_int(const struct gguf_file *f, int i, int64_t *v)
{
    double d;
    return number_at(f->kv[i].type, f->kv[i].value, v, &d) == 0 ? 0 : -1;
}

int gguf_get_float(const struct gguf_file *f, int i, double *v)
{
    int64_t n;
    return number_at(f->kv[i].type, f->kv[i].value, &n, v) == 1 ? 0 : -1;
}

int gguf_get_bool(const struct gguf_file *f, int i, int *v)
{
    if (f->kv[i].type != GGUF_BOOL)
        return -1;
    *v = f->kv[i].value[0] != 0;
    return 0;
}

const char *gguf_get_string(const struct gguf_file *f, int i, size_t *len)
{
    if (f->kv[i].type != GGUF_STRING)
        return NULL;
    *len = f->kv[i].n;
    return (const char *)f->kv[i].value;
}

int gguf_get_array(const struct gguf_file *f, int i, enum gguf_vtype *elem, uint64_t *n)
{
    if (f->kv[i].type != GGUF_ARRAY)
        return -1;
    *elem = f->kv[i].elem;
    *n = f->kv[i].n;
    return 0;
}

int gguf_array_number(const struct gguf_file *f, int i, uint64_t j, double *v)
{
    const struct rkv *kv = &f->kv[i];
    int64_t n;
    if (kv->type != GGUF_ARRAY || j >= kv->n || kv->elem == GGUF_STRING || kv->elem == GGUF_BOOL)
        return -1;
    return number_at(kv->elem, kv->value + j * vtype_size(kv->elem), &n, v) < 0 ? -1 : 0;
}

const char *gguf_array_string(const struct gguf_file *f, int i, uint64_t j, size_t *len)
{
    const struct rkv *kv = &f->kv[i];
    if (kv->type != GGUF_ARRAY || kv->elem != GGUF_STRING || j >= kv->n)
        return NULL;
    const unsigned char *p = kv->value + kv->str_offsets[j];
    uint64_t n;
    memcpy(&n, p, 8);
    *len = n;
    return (const char *)p + 8;
}

int gguf_tensor_count(const struct gguf_file *f) { return f->n_tensors; }
const struct gguf_tensor *gguf_get_tensor(const struct gguf_file *f, int i) { return &f->tensors[i]; }

int gguf_find_tensor(const struct gguf_file *f, const char *name)
{
    for (int i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name))
            return i;
    return -1;
}

void gguf_dequant_row(const struct gguf_tensor *t, uint64_t row, float *out)
{
    size_t n = t->ne[0];
    const unsigned char *p = (const unsigned char *)t->data + row * gguf_row_bytes(t->type, n);
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        switch (t->type) {
        case GGUF_F32: memcpy(&out[i], p + 4 * i, 4); break;
        case GGUF_F16: memcpy(&h, p + 2 * i, 2); out[i] = nn_f16_to_f32(h); break;
        case GGUF_BF16: memcpy(&h, p + 2 * i, 2); out[i] = nn_bf16_to_f32(h); break;
        case GGUF_Q8_0: {
            const unsigned char *b = p + i / 32 * 34;
            memcpy(&h, b, 2);
            out[i] = nn_f16_to_f32(h) * (int8_t)b[2 + i % 32];
            break;
        }
        case GGUF_Q4_0: {
            const unsigned char *b = p + i / 32 * 18;
            int j = (int)(i % 32), q = j < 16 ? b[2 + j] & 15 : b[2 + j - 16] >> 4;
            memcpy(&h, b, 2);
            out[i] = nn_f16_to_f32(h) * (q - 8);
            break;
        }
        }
    }
}
