/* GGUF v3 (ggml's model file format, read by llama.cpp and ollama): a writer, a validating reader, and the
 * export of an InternLM2 model with its tokenizer in llama.cpp's `internlm2` layout.
 *
 * File layout: "GGUF", u32 version, u64 tensor count, u64 key/value count, the key/values, the tensor infos
 * (name, dims with ne[0] the fastest-varying, type, offset), zero padding to the alignment (general.alignment,
 * default 32), the tensor data (each tensor padded to the alignment). Little-endian.
 *
 * Ownership: gguf_writer_new / gguf_open return objects freed with gguf_writer_free / gguf_close. A reader's
 * strings and tensor data point into the mapped file and live until gguf_close. Nothing here prints or exits. */
#ifndef MELODIST_GGUF_H
#define MELODIST_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "melodist/model.h"

#define GGUF_VERSION 3
#define GGUF_DEFAULT_ALIGNMENT 32

enum gguf_vtype {
    GGUF_UINT8, GGUF_INT8, GGUF_UINT16, GGUF_INT16, GGUF_UINT32, GGUF_INT32, GGUF_FLOAT32, GGUF_BOOL,
    GGUF_STRING, GGUF_ARRAY, GGUF_UINT64, GGUF_INT64, GGUF_FLOAT64,
};

/* Tensor types (ggml_type ids) this code writes and reads. */
enum gguf_ttype { GGUF_F32 = 0, GGUF_F16 = 1, GGUF_Q4_0 = 2, GGUF_Q8_0 = 8, GGUF_BF16 = 30 };

const char *gguf_ttype_name(enum gguf_ttype t); /* "f32", ...; NULL for a type not listed above */
/* Bytes of one row of n values; 0 when n does not fill whole blocks or the type is not listed above. */
size_t gguf_row_bytes(enum gguf_ttype t, uint64_t n);

/* ---- writer ---- */
struct gguf_writer;

struct gguf_writer *gguf_writer_new(void); /* NULL when out of memory */
void gguf_writer_free(struct gguf_writer *w);
/* Key/values, written in the order added. Each returns 0, or -1 when out of memory. */
int gguf_set_u32(struct gguf_writer *w, const char *key, uint32_t v);
int gguf_set_f32(struct gguf_writer *w, const char *key, float v);
int gguf_set_bool(struct gguf_writer *w, const char *key, int v);
int gguf_set_string(struct gguf_writer *w, const char *key, const char *s, size_t len);
/* An array of n numbers of type elem (GGUF_FLOAT32, GGUF_INT32, GGUF_UINT32, ...), elements as stored. */
int gguf_set_array(struct gguf_writer *w, const char *key, enum gguf_vtype elem, const void *data, size_t n);
int gguf_set_string_array(struct gguf_writer *w, const char *key, const char *const *s, const size_t *lens,
                          size_t n);
/* Declares a tensor of n_dims (1..4) dims, ne[0] the fastest-varying. Returns 0, or -1 (out of memory, name
 * over 64 bytes, a row that is not whole blocks). */
int gguf_add_tensor(struct gguf_writer *w, const char *name, enum gguf_ttype type, int n_dims, const uint64_t *ne);

/* Produces row `row` (ne[0] values, gguf_row_bytes bytes) of tensor `tensor` into dst; non-zero to fail. */
typedef int (*gguf_row_fn)(void *ctx, int tensor, uint64_t row, void *dst, char *err, size_t errlen);
/* Writes the file to path atomically (temp file + rename), asking fill for the tensor data row by row. */
int gguf_write(struct gguf_writer *w, const char *path, gguf_row_fn fill, void *ctx, char *err, size_t errlen);

/* ---- reader ---- */
struct gguf_file;

struct gguf_tensor {
    const char *name;
    enum gguf_ttype type;
    int n_dims;
    uint64_t ne[4];
    const void *data;
    size_t bytes;
};

/* Maps and validates path (every length, count, type, offset and size checked against the file). */
struct gguf_file *gguf_open(const char *path, char *err, size_t errlen);
void gguf_close(struct gguf_file *f);
uint32_t gguf_file_version(const struct gguf_file *f);

int gguf_kv_count(const struct gguf_file *f);
const char *gguf_kv_key(const struct gguf_file *f, int i);
enum gguf_vtype gguf_kv_type(const struct gguf_file *f, int i);
int gguf_find_kv(const struct gguf_file *f, const char *key); /* -1 if absent */
/* Scalars: 0 on success, -1 when the value has another type (integers convert between integer types when in
 * range, floats between float types). */
int gguf_get_int(const struct gguf_file *f, int i, int64_t *v);
int gguf_get_float(const struct gguf_file *f, int i, double *v);
int gguf_get_bool(const struct gguf_file *f, int i, int *v);
const char *gguf_get_string(const struct gguf_file *f, int i, size_t *len); /* NULL if not a string */
/* Arrays: the element type and count (-1 if not an array); element j as a number or a string. */
int gguf_get_array(const struct gguf_file *f, int i, enum gguf_vtype *elem, uint64_t *n);
int gguf_array_number(const struct gguf_file *f, int i, uint64_t j, double *v);
const char *gguf_array_string(const struct gguf_file *f, int i, uint64_t j, size_t *len);

int gguf_tensor_count(const struct gguf_file *f);
const struct gguf_tensor *gguf_get_tensor(const struct gguf_file *f, int i);
int gguf_find_tensor(const struct gguf_file *f, const char *name); /* -1 if absent */
/* Row `row` of a tensor as f32 (ne[0] values). */
void gguf_dequant_row(const struct gguf_tensor *t, uint64_t row, float *out);

/* ---- InternLM2 export ---- */

/* The tokenizer as GGUF stores it (tokenizer.ggml.*), with llama.cpp's InternLM2 rules already applied. */
struct gguf_vocab {
    int n;
    const char *const *tokens;
    const size_t *lens;
    const float *scores;
    const int32_t *types; /* 1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte */
    int bos_id, eos_id, unk_id, pad_id;
    int add_space_prefix;
    const char *chat_template; /* tokenizer.chat_template (Jinja), or NULL */
};

/* Writes m as llama.cpp's `internlm2` architecture: wqkv split into attn_q/attn_k/attn_v with the q and k rows
 * of each head reordered from rotate-half to llama.cpp's pairwise RoPE order; matrices as type (F32, F16, BF16,
 * Q8_0, Q4_0; quantised types need hidden_size and intermediate_size multiples of 32), norms as F32. */
int gguf_export_internlm2(const struct model *m, const struct gguf_vocab *vocab, enum gguf_ttype type,
                          const char *path, char *err, size_t errlen);

#endif
