/* Writing a model as config.json + model.safetensors, converting every matrix to one format.
 * Quantised matrices are stored as I8 (q8) or U8 (q4, two values per byte) plus F16 "<name>_scales". */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "melodist/fileio.h"
#include "melodist/model.h"

struct writer {
    struct st_out *tensors;
    size_t count, cap;
    void **buffers; /* converted data, freed after writing */
    size_t nbuffers;
    int oom;
};

static void *keep(struct writer *w, size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    void **b = realloc(w->buffers, (w->nbuffers + 1) * sizeof *b);
    if (!p || !b) {
        free(p);
        if (b)
            w->buffers = b;
        w->oom = 1;
        return NULL;
    }
    w->buffers = b;
    w->buffers[w->nbuffers++] = p;
    return p;
}

static void add(struct writer *w, const char *name, enum st_dtype dtype, int64_t d0, int64_t d1, const void *data)
{
    if (w->oom)
        return;
    if (w->count == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        struct st_out *t = realloc(w->tensors, cap * sizeof *t);
        if (!t) {
            w->oom = 1;
            return;
        }
        w->tensors = t, w->cap = cap;
    }
    char *copy = keep(w, strlen(name) + 1);
    if (!copy)
        return;
    strcpy(copy, name);
    struct st_out *t = &w->tensors[w->count++];
    memset(t, 0, sizeof *t);
    t->name = copy, t->dtype = dtype, t->data = data;
    t->ndim = d1 ? 2 : 1;
    t->shape[0] = d0, t->shape[1] = d1;
}

static void add_matrix(struct writer *w, const char *name, const struct nn_matrix *m, enum nn_dtype dtype)
{
    size_t rows = (size_t)m->rows, cols = (size_t)m->cols;
    float *row = malloc(cols * sizeof *row);
    size_t elems = rows * cols;
    size_t bytes = dtype == NN_F32 ? elems * 4 : dtype == NN_Q8 ? elems : dtype == NN_Q4 ? elems / 2 : elems * 2;
    char *data = row ? keep(w, bytes) : NULL;
    uint16_t *scales = dtype == NN_Q8 || dtype == NN_Q4 ? keep(w, elems / NN_QBLOCK * 2) : NULL;
    if (!data || ((dtype == NN_Q8 || dtype == NN_Q4) && !scales)) {
        w->oom = 1;
        free(row);
        return;
    }
    for (size_t r = 0; r < rows; r++) {
        nn_dequant_row(m, (int)r, row);
        size_t at = r * cols;
        switch (dtype) {
        case NN_F32: memcpy(data + at * 4, row, cols * 4); break;
        case NN_F16:
            for (size_t i = 0; i < cols; i++)
                ((uint16_t *)data)[at + i] = nn_f32_to_f16(row[i]);
            break;
        case NN_BF16:
            for (size_t i = 0; i < cols; i++)
                ((uint16_t *)data)[at + i] = nn_f32_to_bf16(row[i]);
            break;
        case NN_Q8: nn_quantize_row_q8(row, (int)cols, (int8_t *)data + at, scales + at / NN_QBLOCK); break;
        case NN_Q4: nn_quantize_row_q4(row, (int)cols, (uint8_t *)data + at / 2, scales + at / NN_QBLOCK); break;
        }
    }
    free(row);
    static const enum st_dtype stored[] = {ST_F32, ST_F16, ST_BF16, ST_I8, ST_U8};
    add(w, name, stored[dtype], m->rows, dtype == NN_Q4 ? m->cols / 2 : m->cols, data);
    if (scales) {
        char sname[512];
        snprintf(sname, sizeof sname, "%s_scales", name);
        add(w, sname, ST_F16, m->rows, m->cols / NN_QBLOCK, scales);
    }
}

static int write_text(const char *path, const char *text, char *err, size_t errlen)
{
    char tmp[PATH_MAX + 32];
    FILE *f = file_create_tmp(path, tmp, sizeof tmp, err, errlen);
    return f ? file_commit(f, fputs(text, f) >= 0, tmp, path, err, errlen) : -1;
}

int model_save(const struct model *m, const char *dir, enum nn_dtype dtype, char *err, size_t errlen)
{
    const struct model_config *c = &m->config;
    if ((dtype == NN_Q8 || dtype == NN_Q4) &&
        (c->dim % NN_QBLOCK || c->hidden_dim % NN_QBLOCK || (c->n_heads * c->head_dim) % NN_QBLOCK)) {
        snprintf(err, errlen, "%s needs hidden_size and intermediate_size divisible by %d", nn_dtype_name(dtype),
                 NN_QBLOCK);
        return -1;
    }
    if (mkdir(dir, 0777) && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    struct writer w = {0};
    char name[256];
    add_matrix(&w, "model.tok_embeddings.weight", &m->tok_embeddings, dtype);
    add(&w, "model.norm.weight", ST_F32, c->dim, 0, m->norm);
    for (int l = 0; l < c->n_layers; l++) {
        const struct model_layer *L = &m->layers[l];
#define LAYER(suffix) (snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix), name)
        add_matrix(&w, LAYER("attention.wqkv.weight"), &L->wqkv, dtype);
        add_matrix(&w, LAYER("attention.wo.weight"), &L->wo, dtype);
        add_matrix(&w, LAYER("feed_forward.w1.weight"), &L->w1, dtype);
        add_matrix(&w, LAYER("feed_forward.w3.weight"), &L->w3, dtype);
        add_matrix(&w, LAYER("feed_forward.w2.weight"), &L->w2, dtype);
        add(&w, LAYER("attention_norm.weight"), ST_F32, c->dim, 0, L->attention_norm);
        add(&w, LAYER("ffn_norm.weight"), ST_F32, c->dim, 0, L->ffn_norm);
#undef LAYER
    }
    if (!c->tie_word_embeddings)
        add_matrix(&w, "output.weight", &m->output, dtype);
    int rc = -1;
    char path[PATH_MAX];
    const char *meta[] = {"format", "pt", "melodist.weights", nn_dtype_name(dtype)};
    if (w.oom) {
        snprintf(err, errlen, "out of memory converting the weights");
    } else {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        if (!st_write(path, w.tensors, w.count, meta, 2, err, errlen)) {
            snprintf(path, sizeof path, "%s/config.json", dir);
            rc = write_text(path, m->config_json, err, errlen);
        }
    }
    for (size_t i = 0; i < w.nbuffers; i++)
        free(w.buffers[i]);
    free(w.buffers);
    free(w.tensors);
    return rc;
}
