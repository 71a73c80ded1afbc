/* InternLM2 -> GGUF in llama.cpp's `internlm2` layout (the mapping of llama.cpp's InternLM2 converter, see
 * shared/reference/internlm2-notes.md 1.6 and 5.2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/gguf.h"

/* Which rows of the source matrix a GGUF tensor takes. */
enum rows_of { ROWS_ALL, ROWS_Q, ROWS_K, ROWS_V };

struct out_tensor {
    const struct nn_matrix *m; /* a matrix, or */
    const float *vec;          /* a norm vector of vec_len values */
    int vec_len;
    enum rows_of rows;
    enum gguf_ttype type;
};

struct exporter {
    const struct model *m;
    struct out_tensor *t;
    int n;
    float *row;
};

/* Source row of wqkv for output row r of q, k or v. wqkv holds per kv group g: its G query heads, its key
 * head, its value head (head_dim rows each). llama.cpp rotates consecutive pairs (x[2i], x[2i+1]) where HF
 * rotates (x[i], x[i + D/2]), so output row 2i + j of a q/k head is source row j*D/2 + i of that head. */
static int wqkv_row(const struct model_config *c, enum rows_of which, int r)
{
    int D = c->head_dim, G = c->n_heads / c->n_kv_heads, head = r / D, p = r % D;
    int in_head = which == ROWS_V ? p : (p % 2) * (D / 2) + p / 2;
    if (which == ROWS_Q)
        return (head / G) * (G + 2) * D + (head % G) * D + in_head;
    return head * (G + 2) * D + (which == ROWS_K ? G : G + 1) * D + in_head;
}

/* One row in the target type. A quantised source written as the same block format is copied unchanged. */
static void convert_row(const struct nn_matrix *m, int src_row, enum gguf_ttype type, float *tmp, void *dst)
{
    int cols = m->cols, blocks = cols / NN_QBLOCK;
    unsigned char *out = dst;
    if ((type == GGUF_Q8_0 && m->dtype == NN_Q8) || (type == GGUF_Q4_0 && m->dtype == NN_Q4)) {
        size_t qbytes = type == GGUF_Q8_0 ? 32 : 16;
        const unsigned char *q = (const unsigned char *)m->data + (size_t)src_row * blocks * qbytes;
        const uint16_t *scales = m->scales + (size_t)src_row * blocks;
        for (int b = 0; b < blocks; b++) {
            memcpy(out + b * (2 + qbytes), &scales[b], 2);
            memcpy(out + b * (2 + qbytes) + 2, q + b * qbytes, qbytes);
        }
        return;
    }
    nn_dequant_row(m, src_row, tmp);
    if (type == GGUF_F32) {
        memcpy(out, tmp, (size_t)cols * 4);
    } else if (type == GGUF_F16 || type == GGUF_BF16) {
        for (int i = 0; i < cols; i++) {
            uint16_t h = type == GGUF_F16 ? nn_f32_to_f16(tmp[i]) : nn_f32_to_bf16(tmp[i]);
            memcpy(out + 2 * i, &h, 2);
        }
    } else {
        /* Quantise into scratch space after the row, then interleave scale and values per block. */
        size_t qbytes = type == GGUF_Q8_0 ? 32 : 16;
        uint16_t *scales = (uint16_t *)(tmp + cols);
        unsigned char *q = (unsigned char *)(scales + blocks);
        if (type == GGUF_Q8_0)
            nn_quantize_row_q8(tmp, cols, (int8_t *)q, scales);
        else
            nn_quantize_row_q4(tmp, cols, q, scales);
        for (int b = 0; b < blocks; b++) {
            memcpy(out + b * (2 + qbytes), &scales[b], 2);
            memcpy(out + b * (2 + qbytes) + 2, q + b * qbytes, qbytes);
        }
    }
}

static int fill_row(void *ctx, int tensor, uint64_t row, void *dst, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct exporter *e = ctx;
    const struct out_tensor *t = &e->t[tensor];
    if (t->vec)
        memcpy(dst, t->vec, (size_t)t->vec_len * 4);
    else
        convert_row(t->m, t->rows == ROWS_ALL ? (int)row : wqkv_row(&e->m->config, t->rows, (int)row), t->type,
                    e->row, dst);
    return 0;
}

static int add_matrix(struct gguf_writer *w, struct exporter *e, const char *name, const struct nn_matrix *m,
                      enum rows_of rows, int n_rows, enum gguf_ttype type)
{
    uint64_t ne[2] = {(uint64_t)m->cols, (uint64_t)n_rows};
    e->t[e->n++] = (struct out_tensor){.m = m, .rows = rows, .type = type};
    return gguf_add_tensor(w, name, type, 2, ne);
}

static int add_vector(struct gguf_writer *w, struct exporter *e, const char *name, const float *v, int n)
{
    uint64_t ne[1] = {(uint64_t)n};
    e->t[e->n++] = (struct out_tensor){.vec = v, .vec_len = n, .type = GGUF_F32};
    return gguf_add_tensor(w, name, GGUF_F32, 1, ne);
}

static int add_metadata(struct gguf_writer *w, const struct model_config *c, const struct gguf_vocab *v,
                        enum gguf_ttype type)
{
    /* general.file_type: llama_ftype ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q4_0 2, MOSTLY_Q8_0 7, MOSTLY_BF16 32. */
    uint32_t ftype = type == GGUF_F32 ? 0 : type == GGUF_F16 ? 1 : type == GGUF_Q4_0 ? 2 : type == GGUF_Q8_0 ? 7 : 32;
    int rc = gguf_set_string(w, "general.architecture", "internlm2", 9) ||
             gguf_set_string(w, "general.name", "Melodist", 8) ||
             gguf_set_u32(w, "general.alignment", GGUF_DEFAULT_ALIGNMENT) ||
             gguf_set_u32(w, "general.file_type", ftype) ||
             gguf_set_u32(w, "internlm2.context_length", (uint32_t)c->max_position_embeddings) ||
             gguf_set_u32(w, "internlm2.embedding_length", (uint32_t)c->dim) ||
             gguf_set_u32(w, "internlm2.block_count", (uint32_t)c->n_layers) ||
             gguf_set_u32(w, "internlm2.feed_forward_length", (uint32_t)c->hidden_dim) ||
             gguf_set_u32(w, "internlm2.attention.head_count", (uint32_t)c->n_heads) ||
             gguf_set_u32(w, "internlm2.attention.head_count_kv", (uint32_t)c->n_kv_heads) ||
             gguf_set_f32(w, "internlm2.attention.layer_norm_rms_epsilon", c->rms_norm_eps) ||
             gguf_set_f32(w, "internlm2.rope.freq_base", c->rope_theta) ||
             gguf_set_u32(w, "internlm2.rope.dimension_count", (uint32_t)c->head_dim) ||
             gguf_set_u32(w, "internlm2.vocab_size", (uint32_t)c->vocab_size);
    /* As llama.cpp's converter: linear scaling is carried over; dynamic NTK has no GGUF equivalent (it only
     * changes positions beyond the trained length). */
    if (!rc && c->rope_scaling == ROPE_SCALING_LINEAR)
        rc = gguf_set_string(w, "internlm2.rope.scaling.type", "linear", 6) ||
             gguf_set_f32(w, "internlm2.rope.scaling.factor", c->rope_factor);
    if (!rc && (type == GGUF_Q8_0 || type == GGUF_Q4_0))
        rc = gguf_set_u32(w, "general.quantization_version", 2);
    return rc || gguf_set_string(w, "tokenizer.ggml.model", "llama", 5) ||
           gguf_set_string(w, "tokenizer.ggml.pre", "default", 7) ||
           gguf_set_string_array(w, "tokenizer.ggml.tokens", v->tokens, v->lens, (size_t)v->n) ||
           gguf_set_array(w, "tokenizer.ggml.scores", GGUF_FLOAT32, v->scores, (size_t)v->n) ||
           gguf_set_array(w, "tokenizer.ggml.token_type", GGUF_INT32, v->types, (size_t)v->n) ||
           gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)v->bos_id) ||
           gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)v->eos_id) ||
           gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)v->unk_id) ||
           gguf_set_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)v->pad_id) ||
           gguf_set_bool(w, "tokenizer.ggml.add_bos_token", 1) ||
           gguf_set_bool(w, "tokenizer.ggml.add_eos_token", 0) ||
           gguf_set_bool(w, "tokenizer.ggml.add_space_prefix", v->add_space_prefix) ||
           (v->chat_template && gguf_set_string(w, "tokenizer.chat_template", v->chat_template, strlen(v->chat_template)))
               ? -1 : 0;
}

int gguf_export_internlm2(const struct model *m, const struct gguf_vocab *vocab, enum gguf_ttype type,
                          const char *path, char *err, size_t errlen)
{
    const struct model_config *c = &m->config;
    if (!gguf_ttype_name(type)) {
        snprintf(err, errlen, "unsupported GGUF tensor type %d", (int)type);
        return -1;
    }
    if ((type == GGUF_Q8_0 || type == GGUF_Q4_0) && (c->dim % 32 || c->hidden_dim % 32)) {
        snprintf(err, errlen, "%s needs hidden_size and intermediate_size to be multiples of 32 (this model: %d "
                              "and %d); use f16 or f32", gguf_ttype_name(type), c->dim, c->hidden_dim);
        return -1;
    }
    if (vocab->n != c->vocab_size) {
        snprintf(err, errlen, "the vocabulary has %d tokens but the model %d embeddings", vocab->n, c->vocab_size);
        return -1;
    }
    int widest = c->dim > c->hidden_dim ? c->dim : c->hidden_dim;
    if (c->n_heads * c->head_dim > widest)
        widest = c->n_heads * c->head_dim;
    struct exporter e = {.m = m};
    struct gguf_writer *w = gguf_writer_new();
    e.t = calloc((size_t)c->n_layers * 9 + 3, sizeof *e.t);
    e.row = malloc((size_t)widest * 2 * sizeof *e.row); /* the row, then quantisation scratch */
    int bad = !w || !e.t || !e.row || add_metadata(w, c, vocab, type);
    int q_rows = c->n_heads * c->head_dim, kv_rows = c->n_kv_heads * c->head_dim;
    bad = bad || add_matrix(w, &e, "token_embd.weight", &m->tok_embeddings, ROWS_ALL, c->vocab_size, type);
    for (int l = 0; l < c->n_layers && !bad; l++) {
        const struct model_layer *L = &m->layers[l];
        char name[64];
#define NAME(s) (snprintf(name, sizeof name, "blk.%d.%s.weight", l, s), name)
        bad = add_vector(w, &e, NAME("attn_norm"), L->attention_norm, c->dim) ||
              add_matrix(w, &e, NAME("attn_q"), &L->wqkv, ROWS_Q, q_rows, type) ||
              add_matrix(w, &e, NAME("attn_k"), &L->wqkv, ROWS_K, kv_rows, type) ||
              add_matrix(w, &e, NAME("attn_v"), &L->wqkv, ROWS_V, kv_rows, type) ||
              add_matrix(w, &e, NAME("attn_output"), &L->wo, ROWS_ALL, c->dim, type) ||
              add_vector(w, &e, NAME("ffn_norm"), L->ffn_norm, c->dim) ||
              add_matrix(w, &e, NAME("ffn_gate"), &L->w1, ROWS_ALL, c->hidden_dim, type) ||
              add_matrix(w, &e, NAME("ffn_up"), &L->w3, ROWS_ALL, c->hidden_dim, type) ||
              add_matrix(w, &e, NAME("ffn_down"), &L->w2, ROWS_ALL, c->dim, type);
#undef NAME
    }
    /* The output matrix is written even when tied: llama.cpp's internlm2 graph requires output.weight. */
    bad = bad || add_vector(w, &e, "output_norm.weight", m->norm, c->dim) ||
          add_matrix(w, &e, "output.weight", &m->output, ROWS_ALL, c->vocab_size, type);
    int rc = -1;
    if (bad)
        snprintf(err, errlen, "out of memory");
    else
        rc = gguf_write(w, path, fill_row, &e, err, errlen);
    gguf_writer_free(w);
    free(e.t);
    free(e.row);
    return rc;
}
