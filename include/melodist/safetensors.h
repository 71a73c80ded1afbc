/* safetensors reader (memory-mapped, single file or HF sharded index) and atomic writer.
 * Format: u64 little-endian header length N, N bytes of JSON, then the tensor bytes
 * (see docs/model.md). Tensor data pointers point into the mapping and stay valid until close. */
#ifndef MELODIST_SAFETENSORS_H
#define MELODIST_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER 100000000u /* the reference implementation's limit */

enum st_dtype { ST_BOOL, ST_U8, ST_I8, ST_I16, ST_U16, ST_F16, ST_BF16, ST_I32, ST_U32, ST_F32, ST_F64, ST_I64, ST_U64 };

struct st_tensor {
    char *name;
    enum st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data;
    size_t nbytes;
};

struct st_file {
    char *path;
    const uint8_t *map; /* whole file */
    size_t size;
    int mapped;         /* map came from mmap (else borrowed from the caller) */
    struct st_tensor *tensors;
    size_t count;
    struct json *metadata; /* "__metadata__" object or NULL */
};

/* A checkpoint: one file, or the shards listed in model.safetensors.index.json. */
struct st_set {
    struct st_file *files;
    size_t count;
};

const char *st_dtype_name(enum st_dtype dtype);
size_t st_dtype_size(enum st_dtype dtype);

/* Validates and indexes a whole safetensors image held in memory (the tensors point into buf, which must
 * outlive f). Checks the header length, JSON, dtypes, shapes, offsets (in bounds, no overlap, no holes,
 * sizes matching shapes) and element alignment. Returns 0, or -1 with a message in err. */
int st_parse(const void *buf, size_t size, struct st_file *f, char *err, size_t errlen);
int st_open(const char *path, struct st_file *f, char *err, size_t errlen);
void st_close(struct st_file *f);
const struct st_tensor *st_find(const struct st_file *f, const char *name);
/* Value of a "__metadata__" entry, or NULL. */
const char *st_metadata(const struct st_file *f, const char *key);

/* Opens DIR/model.safetensors.index.json with its shards if present, else DIR/model.safetensors. */
int st_set_open(const char *dir, struct st_set *set, char *err, size_t errlen);
void st_set_close(struct st_set *set);
const struct st_tensor *st_set_find(const struct st_set *set, const char *name);

/* Writes tensors (in the given order, each 8-byte aligned via header padding) with optional metadata
 * key/value string pairs, to a temporary file renamed over path on success. */
struct st_out {
    const char *name;
    enum st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data;
};
int st_write(const char *path, const struct st_out *tensors, size_t count, const char *const *metadata,
             size_t metadata_pairs, char *err, size_t errlen);

#endif
