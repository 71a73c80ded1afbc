/* InternLM2: loading weights, run state, and the forward pass. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "melodist/fileio.h"
#include "melodist/model.h"
#include "melodist/splitmix.h"

/* ---- loading ---- */

static int shape_is(const struct st_tensor *t, int64_t d0, int64_t d1)
{
    return d1 ? t->ndim == 2 && t->shape[0] == d0 && t->shape[1] == d1 : t->ndim == 1 && t->shape[0] == d0;
}

static const struct st_tensor *need(const struct st_set *set, const char *name, char *err, size_t errlen)
{
    const struct st_tensor *t = st_set_find(set, name);
    if (!t)
        snprintf(err, errlen, "checkpoint has no tensor '%s'", name);
    return t;
}

/* A matrix [rows][cols] stored as F32/F16/BF16, or as Melodist q8 (I8 [rows][cols]) / q4 (U8 [rows][cols/2])
 * with F16 "<name>_scales" [rows][cols/32]. */
static int load_matrix(const struct st_set *set, const char *name, int rows, int cols, struct nn_matrix *m,
                       char *err, size_t errlen)
{
    const struct st_tensor *t = need(set, name, err, errlen);
    if (!t)
        return -1;
    m->rows = rows, m->cols = cols, m->data = t->data, m->scales = NULL;
    int64_t stored_cols = cols;
    switch (t->dtype) {
    case ST_F32: m->dtype = NN_F32; break;
    case ST_F16: m->dtype = NN_F16; break;
    case ST_BF16: m->dtype = NN_BF16; break;
    case ST_I8: m->dtype = NN_Q8; break;
    case ST_U8: m->dtype = NN_Q4, stored_cols = cols / 2; break;
    default:
        snprintf(err, errlen, "tensor '%s': dtype %s not supported (F32, F16, BF16, or Melodist I8/U8 quantised)",
                 name, st_dtype_name(t->dtype));
        return -1;
    }
    if (!shape_is(t, rows, stored_cols) || (m->dtype == NN_Q4 && cols % 2)) {
        snprintf(err, errlen, "tensor '%s': shape does not match config.json (expected [%d, %lld] for %s)", name,
                 rows, (long long)stored_cols, st_dtype_name(t->dtype));
        return -1;
    }
    if (m->dtype == NN_Q8 || m->dtype == NN_Q4) {
        char sname[512];
        snprintf(sname, sizeof sname, "%s_scales", name);
        const struct st_tensor *s = need(set, sname, err, errlen);
        if (!s)
            return -1;
        if (cols % NN_QBLOCK || s->dtype != ST_F16 || !shape_is(s, rows, cols / NN_QBLOCK)) {
            snprintf(err, errlen, "tensor '%s': expected F16 [%d, %d] (and %d columns divisible by %d)", sname, rows,
                     cols / NN_QBLOCK, cols, NN_QBLOCK);
            return -1;
        }
        m->scales = s->data;
    }
    return 0;
}

static int load_vector(const struct st_set *set, const char *name, int dim, float *out, char *err, size_t errlen)
{
    const struct st_tensor *t = need(set, name, err, errlen);
    if (!t)
        return -1;
    if (!shape_is(t, dim, 0) || (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16)) {
        snprintf(err, errlen, "tensor '%s': expected F32/F16/BF16 [%d], found %s with %d dims", name, dim,
                 st_dtype_name(t->dtype), t->ndim);
        return -1;
    }
    struct nn_matrix m = {t->dtype == ST_F32 ? NN_F32 : t->dtype == ST_F16 ? NN_F16 : NN_BF16, 1, dim, t->data, NULL};
    nn_dequant_row(&m, 0, out);
    return 0;
}

static int alloc_structure(struct model *m)
{
    const struct model_config *c = &m->config;
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    m->norm_store = malloc(((size_t)2 * c->n_layers + 1) * (size_t)c->dim * sizeof(float));
    if (!m->layers || !m->norm_store)
        return -1;
    for (int l = 0; l < c->n_layers; l++) {
        m->layers[l].attention_norm = m->norm_store + (size_t)(2 * l) * c->dim;
        m->layers[l].ffn_norm = m->norm_store + (size_t)(2 * l + 1) * c->dim;
    }
    m->norm = m->norm_store + (size_t)2 * c->n_layers * c->dim;
    return 0;
}

static int load_weights(struct model *m, char *err, size_t errlen)
{
    const struct model_config *c = &m->config;
    const struct st_set *s = &m->files;
    int qkv_rows = (c->n_heads + 2 * c->n_kv_heads) * c->head_dim, att_dim = c->n_heads * c->head_dim;
    char name[256];
    if (load_matrix(s, "model.tok_embeddings.weight", c->vocab_size, c->dim, &m->tok_embeddings, err, errlen) ||
        load_vector(s, "model.norm.weight", c->dim, m->norm, err, errlen))
        return -1;
    for (int l = 0; l < c->n_layers; l++) {
        struct model_layer *L = &m->layers[l];
#define LAYER(suffix) (snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix), name)
        if (load_matrix(s, LAYER("attention.wqkv.weight"), qkv_rows, c->dim, &L->wqkv, err, errlen) ||
            load_matrix(s, LAYER("attention.wo.weight"), c->dim, att_dim, &L->wo, err, errlen) ||
            load_matrix(s, LAYER("feed_forward.w1.weight"), c->hidden_dim, c->dim, &L->w1, err, errlen) ||
            load_matrix(s, LAYER("feed_forward.w3.weight"), c->hidden_dim, c->dim, &L->w3, err, errlen) ||
            load_matrix(s, LAYER("feed_forward.w2.weight"), c->dim, c->hidden_dim, &L->w2, err, errlen) ||
            load_vector(s, LAYER("attention_norm.weight"), c->dim, L->attention_norm, err, errlen) ||
            load_vector(s, LAYER("ffn_norm.weight"), c->dim, L->ffn_norm, err, errlen))
            return -1;
#undef LAYER
    }
    if (c->tie_word_embeddings && !st_set_find(s, "output.weight")) {
        m->output = m->tok_embeddings;
        return 0;
    }
    return load_matrix(s, "output.weight", c->vocab_size, c->dim, &m->output, err, errlen);
}

int model_load(const char *dir, struct model **out, char *err, size_t errlen)
{
    *out = NULL;
    char path[PATH_MAX];
    struct stat st;
    if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: not a model directory (expected config.json and model.safetensors)", dir);
        return -1;
    }
    struct model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t len;
    snprintf(path, sizeof path, "%s/config.json", dir);
    m->config_json = file_read(path, 1 << 24, &len, err, errlen);
    if (!m->config_json || model_config_parse(m->config_json, len, &m->config, err, errlen) ||
        st_set_open(dir, &m->files, err, errlen))
        goto fail;
    if (alloc_structure(m)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (load_weights(m, err, errlen))
        goto fail;
    *out = m;
    return 0;
fail:
    model_free(m);
    return -1;
}

void model_free(struct model *m)
{
    if (!m)
        return;
    st_set_close(&m->files);
    free(m->owned);
    free(m->layers);
    free(m->norm_store);
    free(m->config_json);
    free(m);
}

/* ---- random initialisation ---- */

struct random_job {
    struct nn_matrix *m;
    uint64_t seed;
    float a;
};

static void fill_rows(void *ctx, int begin, int end, int thread)
{
    struct random_job *j = ctx;
    struct nn_matrix *m = j->m;
    float *row = malloc((size_t)m->cols * sizeof *row);
    (void)thread;
    if (!row)
        return;
    for (int r = begin; r < end; r++) {
        uint64_t state = j->seed ^ ((uint64_t)r * 0xD1B54A32D192ED03ull);
        for (int i = 0; i < m->cols; i++)
            row[i] = j->a * ((float)(splitmix64(&state) >> 40) * (2.0f / 16777216.0f) - 1.0f);
        size_t at = (size_t)r * m->cols;
        switch (m->dtype) {
        case NN_F32: memcpy((float *)m->data + at, row, (size_t)m->cols * sizeof *row); break;
        case NN_F16:
            for (int i = 0; i < m->cols; i++)
                ((uint16_t *)m->data)[at + i] = nn_f32_to_f16(row[i]);
            break;
        case NN_BF16:
            for (int i = 0; i < m->cols; i++)
                ((uint16_t *)m->data)[at + i] = nn_f32_to_bf16(row[i]);
            break;
        case NN_Q8:
            nn_quantize_row_q8(row, m->cols, (int8_t *)m->data + at, (uint16_t *)m->scales + at / NN_QBLOCK);
            break;
        case NN_Q4:
            nn_quantize_row_q4(row, m->cols, (uint8_t *)m->data + at / 2, (uint16_t *)m->scales + at / NN_QBLOCK);
            break;
        }
    }
    free(row);
}

/* Places matrix m (rows x cols of dtype) at *cursor in the arena (or just counts when arena is NULL). */
static void place(struct nn_matrix *m, enum nn_dtype dtype, int rows, int cols, char *arena, size_t *cursor)
{
    m->dtype = dtype, m->rows = rows, m->cols = cols;
    size_t n = (size_t)rows * cols, data = dtype == NN_F32 ? n * 4 : dtype == NN_Q8 ? n : dtype == NN_Q4 ? n / 2 : n * 2;
    m->data = arena ? arena + *cursor : NULL;
    *cursor += (data + 63) & ~(size_t)63;
    if (dtype == NN_Q8 || dtype == NN_Q4) {
        m->scales = arena ? (const uint16_t *)(arena + *cursor) : NULL;
        *cursor += (n / NN_QBLOCK * 2 + 63) & ~(size_t)63;
    }
}

static void layout(struct model *m, enum nn_dtype dtype, char *arena, size_t *size)
{
    const struct model_config *c = &m->config;
    *size = 0;
    place(&m->tok_embeddings, dtype, c->vocab_size, c->dim, arena, size);
    for (int l = 0; l < c->n_layers; l++) {
        struct model_layer *L = &m->layers[l];
        place(&L->wqkv, dtype, (c->n_heads + 2 * c->n_kv_heads) * c->head_dim, c->dim, arena, size);
        place(&L->wo, dtype, c->dim, c->n_heads * c->head_dim, arena, size);
        place(&L->w1, dtype, c->hidden_dim, c->dim, arena, size);
        place(&L->w3, dtype, c->hidden_dim, c->dim, arena, size);
        place(&L->w2, dtype, c->dim, c->hidden_dim, arena, size);
    }
    if (c->tie_word_embeddings)
        m->output = m->tok_embeddings;
    else
        place(&m->output, dtype, c->vocab_size, c->dim, arena, size);
}

static void fill_random(struct nn_matrix *mat, uint64_t *seed, float a)
{
    struct random_job job = {mat, splitmix64(seed), a};
    nn_parallel_for(mat->rows, fill_rows, &job);
}

/* Weights on 2 MiB pages where the kernel allows (transparent huge pages in "madvise" mode): decode streams
 * every weight once per token, and 4 KiB pages cost a page-table walk per 4 KiB (1 thread, bf16 matvec from
 * memory on a loaded machine: 30 GB/s on 4 KiB pages, 40 GB/s on 2 MiB ones). */
static void *alloc_weights(size_t size)
{
    size_t page = (size_t)2 << 20, rounded = (size + page - 1) / page * page;
    void *p = aligned_alloc(page, rounded);
    if (p)
        madvise(p, rounded, MADV_HUGEPAGE); /* only advice: without it the weights stay on 4 KiB pages */
    return p;
}

struct model *model_new_random(const struct model_config *c, enum nn_dtype dtype, uint64_t seed, float std)
{
    struct model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->config = *c;
    size_t size;
    int quantised = dtype == NN_Q8 || dtype == NN_Q4;
    if ((quantised && (c->dim % NN_QBLOCK || c->hidden_dim % NN_QBLOCK)) || alloc_structure(m) ||
        !(m->config_json = model_config_json(c)))
        goto fail;
    layout(m, dtype, NULL, &size);
    if (!(m->owned = alloc_weights(size)))
        goto fail;
    layout(m, dtype, m->owned, &size);
    float a = std * sqrtf(3.0f);
    fill_random(&m->tok_embeddings, &seed, a);
    for (int l = 0; l < c->n_layers; l++) {
        struct model_layer *L = &m->layers[l];
        fill_random(&L->wqkv, &seed, a);
        fill_random(&L->wo, &seed, a);
        fill_random(&L->w1, &seed, a);
        fill_random(&L->w3, &seed, a);
        fill_random(&L->w2, &seed, a);
    }
    if (!c->tie_word_embeddings)
        fill_random(&m->output, &seed, a);
    for (size_t i = 0; i < ((size_t)2 * c->n_layers + 1) * c->dim; i++)
        m->norm_store[i] = 1.0f;
    return m;
fail:
    model_free(m);
    return NULL;
}

/* ---- facts ---- */

size_t model_param_count(const struct model *m)
{
    const struct model_config *c = &m->config;
    size_t per_layer = (size_t)(c->n_heads + 2 * c->n_kv_heads) * c->head_dim * c->dim +
                       (size_t)c->dim * c->n_heads * c->head_dim + (size_t)3 * c->hidden_dim * c->dim + 2 * c->dim;
    size_t embed = (size_t)c->vocab_size * c->dim;
    return embed * (c->tie_word_embeddings ? 1 : 2) + per_layer * c->n_layers + c->dim;
}

size_t model_weight_bytes(const struct model *m)
{
    const struct model_config *c = &m->config;
    size_t n = nn_matrix_bytes(&m->tok_embeddings) + ((size_t)2 * c->n_layers + 1) * c->dim * sizeof(float);
    if (!c->tie_word_embeddings)
        n += nn_matrix_bytes(&m->output);
    for (int l = 0; l < c->n_layers; l++) {
        const struct model_layer *L = &m->layers[l];
        n += nn_matrix_bytes(&L->wqkv) + nn_matrix_bytes(&L->wo) + nn_matrix_bytes(&L->w1) +
             nn_matrix_bytes(&L->w3) + nn_matrix_bytes(&L->w2);
    }
    return n;
}

enum nn_dtype model_dtype(const struct model *m)
{
    return m->config.n_layers ? m->layers[0].wqkv.dtype : m->tok_embeddings.dtype;
}

/* ---- run state ---- */

struct model_state *model_state_new(const struct model *m, int max_seq, int max_batch)
{
    const struct model_config *c = &m->config;
    struct model_state *s = calloc(1, sizeof *s);
    if (!s || max_seq < 1 || max_batch < 1) {
        free(s);
        return NULL;
    }
    if (max_batch > max_seq)
        max_batch = max_seq;
    s->max_seq = max_seq, s->max_batch = max_batch;
    size_t B = (size_t)max_batch, kv = (size_t)c->n_kv_heads * c->head_dim, att = (size_t)c->n_heads * c->head_dim;
    size_t cache = (size_t)c->n_layers * max_seq * kv;
    s->x = malloc(B * c->dim * sizeof(float));
    s->xb = malloc(B * c->dim * sizeof(float));
    s->xb2 = malloc(B * c->dim * sizeof(float));
    s->qkv = malloc(B * (att + 2 * kv) * sizeof(float));
    s->q = malloc(B * att * sizeof(float));
    s->att = malloc(B * att * sizeof(float));
    s->hb = malloc(B * c->hidden_dim * sizeof(float));
    s->hb2 = malloc(B * c->hidden_dim * sizeof(float));
    s->logits = malloc((size_t)c->vocab_size * sizeof(float));
    s->key_cache = malloc(cache * sizeof(float));
    s->value_cache = malloc(cache * sizeof(float));
    s->scratch = malloc((size_t)nn_threads() * max_seq * sizeof(float));
    s->inv_freq = malloc((size_t)c->head_dim / 2 * sizeof(float));
    if (!s->x || !s->xb || !s->xb2 || !s->qkv || !s->q || !s->att || !s->hb || !s->hb2 || !s->logits ||
        !s->key_cache || !s->value_cache || !s->scratch || !s->inv_freq) {
        model_state_free(s);
        return NULL;
    }
    return s;
}

void model_state_free(struct model_state *s)
{
    if (!s)
        return;
    free(s->x), free(s->xb), free(s->xb2), free(s->qkv), free(s->q), free(s->att), free(s->hb), free(s->hb2);
    free(s->logits), free(s->key_cache), free(s->value_cache), free(s->scratch), free(s->inv_freq);
    free(s);
}

/* ---- forward ---- */

/* inv_freq[i] = 1 / base^(2i/D); dynamic NTK raises the base once the sequence outgrows the trained length,
 * linear scaling divides positions (here: the frequencies) by the factor. */
static void rope_frequencies(const struct model_config *c, int seq_len, float *inv_freq)
{
    double base = c->rope_theta, D = c->head_dim;
    if (c->rope_scaling == ROPE_SCALING_DYNAMIC && seq_len > c->max_position_embeddings)
        base *= pow((double)c->rope_factor * seq_len / c->max_position_embeddings - (c->rope_factor - 1.0),
                    D / (D - 2.0));
    for (int i = 0; i < c->head_dim / 2; i++) {
        inv_freq[i] = (float)(1.0 / pow(base, 2.0 * i / D));
        if (c->rope_scaling == ROPE_SCALING_LINEAR)
            inv_freq[i] /= c->rope_factor;
    }
}

/* One chunk of n <= max_batch tokens at positions s->pos.. */
static void forward_chunk(const struct model *m, struct model_state *s, const int *tokens, int n, float *logits_out)
{
    const struct model_config *c = &m->config;
    int dim = c->dim, D = c->head_dim, H = c->n_heads, KV = c->n_kv_heads, G = H / KV;
    int qkv_dim = (H + 2 * KV) * D, att_dim = H * D, kv_dim = KV * D;
    struct attention_shape shape = {H, KV, D};

    for (int t = 0; t < n; t++)
        nn_dequant_row(&m->tok_embeddings, tokens[t], s->x + (size_t)t * dim);

    for (int l = 0; l < c->n_layers; l++) {
        const struct model_layer *L = &m->layers[l];
        float *k_cache = s->key_cache + (size_t)l * s->max_seq * kv_dim;
        float *v_cache = s->value_cache + (size_t)l * s->max_seq * kv_dim;

        for (int t = 0; t < n; t++)
            rmsnorm_forward(s->xb + (size_t)t * dim, s->x + (size_t)t * dim, L->attention_norm, dim, c->rms_norm_eps);
        nn_matmul(s->qkv, &L->wqkv, s->xb, n);

        /* Unpack wqkv rows: kv group g holds its G query heads, then its key head, then its value head. */
        for (int t = 0; t < n; t++) {
            const float *qkv = s->qkv + (size_t)t * qkv_dim;
            float *q = s->q + (size_t)t * att_dim;
            float *k = k_cache + (size_t)(s->pos + t) * kv_dim, *v = v_cache + (size_t)(s->pos + t) * kv_dim;
            for (int g = 0; g < KV; g++) {
                const float *block = qkv + (size_t)g * (G + 2) * D;
                memcpy(q + (size_t)g * G * D, block, (size_t)G * D * sizeof(float));
                memcpy(k + (size_t)g * D, block + (size_t)G * D, (size_t)D * sizeof(float));
                memcpy(v + (size_t)g * D, block + (size_t)(G + 1) * D, (size_t)D * sizeof(float));
            }
            rope_forward(q, H, D, s->pos + t, s->inv_freq);
            rope_forward(k, KV, D, s->pos + t, s->inv_freq);
        }
        attention_forward(s->att, s->q, k_cache, v_cache, &shape, s->pos, n, s->scratch);
        nn_matmul(s->xb2, &L->wo, s->att, n);
        for (size_t i = 0; i < (size_t)n * dim; i++)
            s->x[i] += s->xb2[i];

        for (int t = 0; t < n; t++)
            rmsnorm_forward(s->xb + (size_t)t * dim, s->x + (size_t)t * dim, L->ffn_norm, dim, c->rms_norm_eps);
        nn_matmul(s->hb, &L->w1, s->xb, n);
        nn_matmul(s->hb2, &L->w3, s->xb, n);
        swiglu_forward(s->hb, s->hb, s->hb2, n * c->hidden_dim);
        nn_matmul(s->xb2, &L->w2, s->hb, n);
        for (size_t i = 0; i < (size_t)n * dim; i++)
            s->x[i] += s->xb2[i];
    }

    for (int t = 0; t < n; t++)
        rmsnorm_forward(s->xb + (size_t)t * dim, s->x + (size_t)t * dim, m->norm, dim, c->rms_norm_eps);
    if (logits_out) {
        nn_matmul(logits_out, &m->output, s->xb, n);
        memcpy(s->logits, logits_out + (size_t)(n - 1) * c->vocab_size, (size_t)c->vocab_size * sizeof(float));
    } else {
        nn_matvec(s->logits, &m->output, s->xb + (size_t)(n - 1) * dim);
    }
    s->pos += n;
}

const float *model_forward(const struct model *m, struct model_state *s, const int *tokens, int n,
                           float *all_logits, char *err, size_t errlen)
{
    const struct model_config *c = &m->config;
    if (n < 1) {
        snprintf(err, errlen, "no tokens to run");
        return NULL;
    }
    if (n > s->max_seq - s->pos) {
        snprintf(err, errlen, "context full: %d tokens in the cache + %d new exceed the %d-token context", s->pos, n,
                 s->max_seq);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size) {
            snprintf(err, errlen, "token id %d at index %d is outside the vocabulary (0..%d)", tokens[i], i,
                     c->vocab_size - 1);
            return NULL;
        }
    rope_frequencies(c, s->pos + n, s->inv_freq);
    for (int done = 0; done < n; done += s->max_batch) {
        int chunk = n - done < s->max_batch ? n - done : s->max_batch;
        forward_chunk(m, s, tokens + done, chunk, all_logits ? all_logits + (size_t)done * c->vocab_size : NULL);
    }
    return s->logits;
}
