/* The model under training: flat f32 parameters, planned activations, forward that keeps them and the
 * backward through the whole InternLM2 decoder (see train.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/nn.h"
#include "melodist/nn_backward.h"
#include "melodist/train.h"
#include "pages.h"

#define MAX_TENSORS_PER_LAYER 7

static int qkv_dim(const struct model_config *c) { return (c->n_heads + 2 * c->n_kv_heads) * c->head_dim; }

/* cols 0: a vector of `rows` values. */
static void add_tensor(struct train_model *tm, const char *name, int rows, int cols, int decay)
{
    struct train_tensor *t = &tm->tensors[tm->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->offset = tm->n_params;
    t->rows = rows, t->cols = cols;
    t->size = (size_t)rows * (cols ? cols : 1);
    t->decay = decay;
    tm->n_params += t->size;
}

/* Parameter order of the flat buffer: embeddings, layers (norm, wqkv, wo, norm, w1, w3, w2), norm, output. */
static void plan_tensors(struct train_model *tm)
{
    const struct model_config *c = &tm->config;
    int C = c->dim, F = c->hidden_dim, HD = c->n_heads * c->head_dim;
    char name[64];
    add_tensor(tm, "model.tok_embeddings.weight", c->vocab_size, C, 1);
    for (int l = 0; l < c->n_layers; l++) {
#define LAYER(suffix, rows, cols, decay)                                                                    \
    (snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix), add_tensor(tm, name, rows, cols, decay))
        LAYER("attention_norm.weight", C, 0, 0);
        LAYER("attention.wqkv.weight", qkv_dim(c), C, 1);
        LAYER("attention.wo.weight", C, HD, 1);
        LAYER("ffn_norm.weight", C, 0, 0);
        LAYER("feed_forward.w1.weight", F, C, 1);
        LAYER("feed_forward.w3.weight", F, C, 1);
        LAYER("feed_forward.w2.weight", C, F, 1);
#undef LAYER
    }
    add_tensor(tm, "model.norm.weight", C, 0, 0);
    if (!c->tie_word_embeddings)
        add_tensor(tm, "output.weight", c->vocab_size, C, 1);
}

static struct nn_matrix f32_matrix(float *data, int rows, int cols)
{
    return (struct nn_matrix){NN_F32, rows, cols, data, NULL};
}

/* The `struct model` whose matrices are the flat parameters, for the forward kernels and model_save. */
static int build_view(struct train_model *tm)
{
    const struct model_config *c = &tm->config;
    struct model *v = &tm->view;
    int C = c->dim, F = c->hidden_dim, HD = c->n_heads * c->head_dim;
    v->config = *c;
    v->layers = calloc((size_t)c->n_layers, sizeof *v->layers);
    if (!v->layers)
        return -1;
    const struct train_tensor *t = tm->tensors;
    float *p = tm->params;
    v->tok_embeddings = f32_matrix(p + (t++)->offset, c->vocab_size, C);
    for (int l = 0; l < c->n_layers; l++) {
        struct model_layer *L = &v->layers[l];
        L->attention_norm = p + (t++)->offset;
        L->wqkv = f32_matrix(p + (t++)->offset, qkv_dim(c), C);
        L->wo = f32_matrix(p + (t++)->offset, C, HD);
        L->ffn_norm = p + (t++)->offset;
        L->w1 = f32_matrix(p + (t++)->offset, F, C);
        L->w3 = f32_matrix(p + (t++)->offset, F, C);
        L->w2 = f32_matrix(p + (t++)->offset, C, F);
    }
    v->norm = p + (t++)->offset;
    v->output = c->tie_word_embeddings ? v->tok_embeddings : f32_matrix(p + t->offset, c->vocab_size, C);
    return 0;
}

/* One allocation for every activation and scratch buffer, carved in order. */
struct carve {
    float *base;
    size_t used;
};

static float *take(struct carve *k, size_t n)
{
    float *p = k->base ? k->base + k->used : NULL;
    k->used += (n + 15) & ~(size_t)15; /* 64-byte aligned pieces */
    return p;
}

/* Recomputing models keep every layer's input but one shared set of the other activations, which the
 * backward refills from that input just before each layer's backward. */
static size_t plan_acts(struct train_model *tm, float *base)
{
    const struct model_config *c = &tm->config;
    size_t N = (size_t)tm->B * tm->T, C = (size_t)c->dim, F = (size_t)c->hidden_dim, V = (size_t)c->vocab_size;
    size_t HD = (size_t)c->n_heads * c->head_dim, QKV = (size_t)qkv_dim(c);
    struct carve k = {base, 0};
    for (int l = 0; l < c->n_layers; l++) {
        struct train_layer_acts *a = &tm->acts[l];
        a->x_in = take(&k, N * C);
        if (tm->recompute && l > 0) {
            struct train_layer_acts shared = tm->acts[0];
            shared.x_in = a->x_in;
            *a = shared;
            continue;
        }
        a->xn1 = take(&k, N * C), a->qkv = take(&k, N * QKV);
        a->att = take(&k, N * HD), a->lse = take(&k, N * c->n_heads);
        a->x_mid = take(&k, N * C), a->xn2 = take(&k, N * C);
        a->a = take(&k, N * F), a->b = take(&k, N * F), a->h = take(&k, N * F);
    }
    tm->layer_act_floats = k.used;
    tm->x_out = take(&k, N * C), tm->xnf = take(&k, N * C);
    tm->logits = take(&k, (N < TRAIN_LOGIT_ROWS ? N : TRAIN_LOGIT_ROWS) * V);
    tm->dx = take(&k, N * C), tm->dxn = take(&k, N * C), tm->datt = take(&k, N * HD);
    tm->dqkv = take(&k, N * QKV), tm->da = take(&k, N * F), tm->db = take(&k, N * F), tm->dh = take(&k, N * F);
    size_t mm = 0, shapes[4][2] = {{C, V}, {C, QKV}, {HD, C}, {C, F}};
    for (int i = 0; i < 4 && !tm->linear; i++) { /* frozen models leave their matmuls to tm->linear */
        size_t a = matmul_backward_scratch((int)N, (int)shapes[i][0], (int)shapes[i][1]);
        size_t b = matmul_backward_scratch((int)N, (int)shapes[i][1], (int)shapes[i][0]);
        mm = a > mm ? a : mm;
        mm = b > mm ? b : mm;
    }
    tm->mm_scratch = take(&k, mm);
    tm->inv_freq = take(&k, (size_t)c->head_dim / 2);
    tm->dnorm = take(&k, C);
    return k.used;
}

/* frozen: base's weights, borrowed, and no parameter buffers. */
static struct train_model *model_new(const struct model_config *c, const struct model *frozen,
                                     const struct train_linear_ops *ops, int B, int T, int recompute, char *err,
                                     size_t errlen)
{
    if (c->n_heads % c->n_kv_heads || c->head_dim % 2 || c->head_dim * c->n_heads != c->dim) {
        snprintf(err, errlen, "model shape: n_heads (%d) must be a multiple of n_kv_heads (%d) and hidden_size (%d) "
                 "= n_heads * an even head_dim", c->n_heads, c->n_kv_heads, c->dim);
        return NULL;
    }
    if (T > c->max_position_embeddings) {
        snprintf(err, errlen, "sequence length %d exceeds max_position_embeddings %d", T,
                 c->max_position_embeddings);
        return NULL;
    }
    struct train_model *tm = calloc(1, sizeof *tm);
    if (!tm)
        goto oom;
    tm->config = *c;
    tm->B = B, tm->T = T;
    tm->linear = ops;
    tm->tensors = calloc((size_t)c->n_layers * MAX_TENSORS_PER_LAYER + 3, sizeof *tm->tensors);
    tm->acts = calloc((size_t)c->n_layers, sizeof *tm->acts);
    if (!tm->tensors || !tm->acts)
        goto oom;
    tm->recompute = recompute;
    tm->arena_floats = plan_acts(tm, NULL);
    tm->arena = calloc(tm->arena_floats, sizeof(float));
    if (!tm->arena)
        goto oom;
    if (frozen) {
        tm->view = *frozen;
        tm->view.layers = malloc(sizeof *tm->view.layers * (size_t)c->n_layers);
        if (!tm->view.layers)
            goto oom;
        memcpy(tm->view.layers, frozen->layers, sizeof *tm->view.layers * (size_t)c->n_layers);
    } else {
        plan_tensors(tm);
        tm->params = calloc(tm->n_params, sizeof(float));
        tm->grads = calloc(tm->n_params, sizeof(float));
        if (!tm->params || !tm->grads || build_view(tm))
            goto oom;
    }
    plan_acts(tm, tm->arena);
    /* As the inference forward: inv_freq = 1 / theta^(2i/D) (training stays within the trained length, so
     * dynamic NTK never applies); linear scaling divides positions, i.e. the frequencies, by the factor. */
    for (int i = 0; i < c->head_dim / 2; i++) {
        tm->inv_freq[i] = (float)(1.0 / pow(c->rope_theta, 2.0 * i / c->head_dim));
        if (c->rope_scaling == ROPE_SCALING_LINEAR)
            tm->inv_freq[i] /= c->rope_factor;
    }
    return tm;
oom:
    snprintf(err, errlen, "out of memory planning a %d-layer model for micro-batches of %d x %d tokens",
             c->n_layers, B, T);
    train_model_free(tm);
    return NULL;
}

struct train_model *train_model_new(const struct model_config *c, int B, int T, char *err, size_t errlen)
{
    return model_new(c, NULL, NULL, B, T, 0, err, errlen);
}

struct train_model *train_model_new_recompute(const struct model_config *c, int B, int T, int recompute, char *err,
                                              size_t errlen)
{
    return model_new(c, NULL, NULL, B, T, recompute, err, errlen);
}

struct train_model *train_model_new_frozen(const struct model *base, const struct train_linear_ops *ops, int B,
                                           int T, int recompute, char *err, size_t errlen)
{
    return model_new(&base->config, base, ops, B, T, recompute, err, errlen);
}

void train_model_free(struct train_model *tm)
{
    if (!tm)
        return;
    free(tm->view.layers);
    free(tm->params);
    free(tm->grads);
    free(tm->tensors);
    free(tm->acts);
    free(tm->arena);
    free(tm);
}

/* Copies every matrix and norm of m into the flat buffer, converting to f32. */
int train_model_copy_from(struct train_model *tm, const struct model *m, char *err, size_t errlen)
{
    const struct model_config *a = &tm->config, *b = &m->config;
    if (a->dim != b->dim || a->n_layers != b->n_layers || a->n_heads != b->n_heads ||
        a->n_kv_heads != b->n_kv_heads || a->hidden_dim != b->hidden_dim || a->vocab_size != b->vocab_size ||
        a->tie_word_embeddings != b->tie_word_embeddings) {
        snprintf(err, errlen, "model shape mismatch: the config asks for dim %d, %d layers, %d/%d heads, hidden %d, "
                 "vocab %d; the checkpoint has dim %d, %d layers, %d/%d heads, hidden %d, vocab %d",
                 a->dim, a->n_layers, a->n_heads, a->n_kv_heads, a->hidden_dim, a->vocab_size, b->dim, b->n_layers,
                 b->n_heads, b->n_kv_heads, b->hidden_dim, b->vocab_size);
        return -1;
    }
    struct model *v = &tm->view;
#define COPY_MATRIX(d, s)                                                                                    \
    for (int r = 0; r < (s).rows; r++)                                                                       \
        nn_dequant_row(&(s), r, (float *)(d).data + (size_t)r * (s).cols)
    COPY_MATRIX(v->tok_embeddings, m->tok_embeddings);
    for (int l = 0; l < a->n_layers; l++) {
        struct model_layer *D = &v->layers[l];
        const struct model_layer *S = &m->layers[l];
        COPY_MATRIX(D->wqkv, S->wqkv);
        COPY_MATRIX(D->wo, S->wo);
        COPY_MATRIX(D->w1, S->w1);
        COPY_MATRIX(D->w3, S->w3);
        COPY_MATRIX(D->w2, S->w2);
        memcpy(D->attention_norm, S->attention_norm, sizeof(float) * a->dim);
        memcpy(D->ffn_norm, S->ffn_norm, sizeof(float) * a->dim);
    }
    memcpy(v->norm, m->norm, sizeof(float) * a->dim);
    if (!a->tie_word_embeddings)
        COPY_MATRIX(v->output, m->output);
#undef COPY_MATRIX
    return 0;
}

int train_model_init_random(struct train_model *tm, uint64_t seed, float std, char *err, size_t errlen)
{
    struct model *m = model_new_random(&tm->config, NN_F32, seed, std);
    if (!m) {
        snprintf(err, errlen, "out of memory initialising the model");
        return -1;
    }
    int rc = train_model_copy_from(tm, m, err, errlen);
    model_free(m);
    return rc;
}

int train_model_save(const struct train_model *tm, const char *path, char *err, size_t errlen)
{
    struct st_out *out = calloc((size_t)tm->n_tensors, sizeof *out);
    if (!out) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < tm->n_tensors; i++) {
        const struct train_tensor *t = &tm->tensors[i];
        out[i] = (struct st_out){.name = t->name, .dtype = ST_F32, .data = tm->params + t->offset};
        out[i].ndim = t->cols ? 2 : 1;
        out[i].shape[0] = t->rows, out[i].shape[1] = t->cols;
    }
    const char *meta[] = {"format", "pt"};
    int rc = st_write(path, out, (size_t)tm->n_tensors, meta, 1, err, errlen);
    free(out);
    return rc;
}

static void rmsnorm_rows(float *out, const float *x, const float *w, size_t N, int C, float eps)
{
    for (size_t i = 0; i < N; i++)
        rmsnorm_forward(out + i * C, x + i * C, w, C, eps);
}

static void add_rows(float *dst, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = a[i] + b[i];
}

/* RoPE on every kv group's [G query heads | key head], which lie side by side in a packed qkv row. */
static void rope_qkv(const struct train_model *tm, float *qkv, const int32_t *pos, int backward)
{
    const struct model_config *c = &tm->config;
    int G = c->n_heads / c->n_kv_heads, D = c->head_dim, row = qkv_dim(c);
    for (size_t t = 0; t < (size_t)tm->B * tm->T; t++)
        for (int g = 0; g < c->n_kv_heads; g++) {
            float *x = qkv + t * row + (size_t)g * (G + 2) * D;
            if (backward)
                rope_backward(x, G + 1, D, pos[t], tm->inv_freq);
            else
                rope_forward(x, G + 1, D, pos[t], tm->inv_freq);
        }
}

/* y = x Wᵀ for rows row0..row0+n-1 of the micro-batch (x and y point at row row0). */
static void linear_rows_forward(struct train_model *tm, int layer, enum train_linear kind, const struct nn_matrix *w,
                                float *y, const float *x, int row0, int n)
{
    if (tm->linear)
        tm->linear->forward(tm->linear->ctx, layer, kind, w, y, x, row0, n);
    else
        nn_matmul(y, w, x, n);
}

static void linear_forward(struct train_model *tm, int layer, enum train_linear kind, const struct nn_matrix *w,
                           float *y, const float *x)
{
    linear_rows_forward(tm, layer, kind, w, y, x, 0, tm->B * tm->T);
}

static float *grad_of(struct train_model *tm, const void *param)
{
    return tm->grads ? tm->grads + ((const float *)param - tm->params) : tm->dnorm;
}

static void linear_rows_backward(struct train_model *tm, int layer, enum train_linear kind, const struct nn_matrix *w,
                                 float *dx, const float *dy, const float *x, int row0, int n)
{
    if (tm->linear)
        tm->linear->backward(tm->linear->ctx, layer, kind, w, dx, dy, x, row0, n);
    else
        matmul_backward(dx, grad_of(tm, w->data), dy, x, w->data, n, w->cols, w->rows, tm->mm_scratch);
}

static void linear_backward(struct train_model *tm, int layer, enum train_linear kind, const struct nn_matrix *w,
                            float *dx, const float *dy, const float *x)
{
    linear_rows_backward(tm, layer, kind, w, dx, dy, x, 0, tm->B * tm->T);
}

/* Layer l from acts[l].x_in, filling acts[l] and writing the layer's output to next. */
static void layer_forward(struct train_model *tm, int l, float *next, const int32_t *start, const int32_t *pos)
{
    const struct model_config *c = &tm->config;
    const struct model_layer *L = &tm->view.layers[l];
    struct train_layer_acts *a = &tm->acts[l];
    int N = tm->B * tm->T, C = c->dim, F = c->hidden_dim;
    float eps = c->rms_norm_eps;
    rmsnorm_rows(a->xn1, a->x_in, L->attention_norm, N, C, eps);
    linear_forward(tm, l, TRAIN_WQKV, &L->wqkv, a->qkv, a->xn1);
    rope_qkv(tm, a->qkv, pos, 0);
    attention_forward_train(a->att, a->lse, a->qkv, start, tm->B, tm->T, c->n_heads, c->n_kv_heads, c->head_dim);
    /* dxn is free between layer backwards: a scratch [N, C] */
    linear_forward(tm, l, TRAIN_WO, &L->wo, tm->dxn, a->att);
    add_rows(a->x_mid, a->x_in, tm->dxn, (size_t)N * C);
    rmsnorm_rows(a->xn2, a->x_mid, L->ffn_norm, N, C, eps);
    linear_forward(tm, l, TRAIN_W1, &L->w1, a->a, a->xn2);
    linear_forward(tm, l, TRAIN_W3, &L->w3, a->b, a->xn2);
    swiglu_forward(a->h, a->a, a->b, N * F);
    linear_forward(tm, l, TRAIN_W2, &L->w2, tm->dxn, a->h);
    add_rows(next, a->x_mid, tm->dxn, (size_t)N * C);
}

static float *layer_output(struct train_model *tm, int l)
{
    return l + 1 < tm->config.n_layers ? tm->acts[l + 1].x_in : tm->x_out;
}

/* Forward to the final norm's output xnf, keeping every activation the backward reads (only the layer inputs,
 * and the last layer's activations, when recomputing). */
static void forward(struct train_model *tm, const int32_t *tokens, const int32_t *start, const int32_t *pos)
{
    const struct model_config *c = &tm->config;
    const struct model *m = &tm->view;
    int N = tm->B * tm->T, C = c->dim;
    float *x = tm->acts[0].x_in;
    for (int i = 0; i < N; i++)
        nn_dequant_row(&m->tok_embeddings, tokens[i], x + (size_t)i * C);
    /* A frozen table mapped from a checkpoint is only borrowed: the pages just read go again (the kernel maps
     * whole large folios of the file, which made a 512-token lookup hold most of a 379 MB table). */
    if (tm->linear && m->files.count)
        pages_release(m->tok_embeddings.data, nn_matrix_bytes(&m->tok_embeddings));
    for (int l = 0; l < c->n_layers; l++)
        layer_forward(tm, l, layer_output(tm, l), start, pos);
    rmsnorm_rows(tm->xnf, tm->x_out, m->norm, N, C, c->rms_norm_eps);
}

/* The output head and the summed loss, TRAIN_LOGIT_ROWS rows at a time so that the logits of the whole micro-batch
 * never exist at once; with backward, each chunk's logit gradient (loss_scale d loss) goes straight back
 * through the head into dxn, which the caller zeroed. */
static double head_loss(struct train_model *tm, const int32_t *targets, float loss_scale, int backward)
{
    const struct model *m = &tm->view;
    int N = tm->B * tm->T, C = tm->config.dim, V = tm->config.vocab_size;
    double loss = 0;
    for (int r0 = 0; r0 < N; r0 += TRAIN_LOGIT_ROWS) {
        int n = N - r0 < TRAIN_LOGIT_ROWS ? N - r0 : TRAIN_LOGIT_ROWS;
        const float *x = tm->xnf + (size_t)r0 * C;
        linear_rows_forward(tm, -1, TRAIN_OUTPUT, &m->output, tm->logits, x, r0, n);
        loss += softmax_xent_backward(tm->logits, targets + r0, n, V, loss_scale); /* logits := dlogits */
        if (backward)
            linear_rows_backward(tm, -1, TRAIN_OUTPUT, &m->output, tm->dxn + (size_t)r0 * C, tm->logits, x, r0, n);
    }
    return loss;
}

void train_forward_logits(struct train_model *tm, const int32_t *tokens, const int32_t *start, const int32_t *pos,
                          float *logits)
{
    forward(tm, tokens, start, pos);
    linear_forward(tm, -1, TRAIN_OUTPUT, &tm->view.output, logits, tm->xnf);
}

double train_forward_loss(struct train_model *tm, const int32_t *tokens, const int32_t *targets,
                          const int32_t *start, const int32_t *pos)
{
    forward(tm, tokens, start, pos);
    return head_loss(tm, targets, 0.0f, 0);
}

double train_forward_backward(struct train_model *tm, const int32_t *tokens, const int32_t *targets,
                              const int32_t *start, const int32_t *pos, float loss_scale)
{
    const struct model_config *c = &tm->config;
    const struct model *m = &tm->view;
    int N = tm->B * tm->T, C = c->dim, F = c->hidden_dim, HD = c->n_heads * c->head_dim;
    int QKV = qkv_dim(c);
    float eps = c->rms_norm_eps;
    forward(tm, tokens, start, pos);
    memset(tm->dxn, 0, sizeof(float) * N * C);
    double loss = head_loss(tm, targets, loss_scale, 1);
    memset(tm->dx, 0, sizeof(float) * N * C);
    rmsnorm_backward(tm->dx, grad_of(tm, m->norm), tm->dxn, tm->x_out, m->norm, N, C, eps);
    for (int l = c->n_layers - 1; l >= 0; l--) {
        struct train_layer_acts *a = &tm->acts[l];
        /* The shared activations hold the last layer's from the forward; the output rewritten is the same. */
        if (tm->recompute && l + 1 < c->n_layers)
            layer_forward(tm, l, layer_output(tm, l), start, pos);
        const struct model_layer *L = &m->layers[l];
        /* feed-forward: x_out = x_mid + w2(silu(w1 xn2) * w3 xn2); dx is d x_out, and flows on to x_mid */
        memset(tm->dh, 0, sizeof(float) * N * F);
        linear_backward(tm, l, TRAIN_W2, &L->w2, tm->dh, tm->dx, a->h);
        memset(tm->da, 0, sizeof(float) * N * F);
        memset(tm->db, 0, sizeof(float) * N * F);
        swiglu_backward(tm->da, tm->db, tm->dh, a->a, a->b, (size_t)N * F);
        memset(tm->dxn, 0, sizeof(float) * N * C);
        linear_backward(tm, l, TRAIN_W1, &L->w1, tm->dxn, tm->da, a->xn2);
        linear_backward(tm, l, TRAIN_W3, &L->w3, tm->dxn, tm->db, a->xn2);
        rmsnorm_backward(tm->dx, grad_of(tm, L->ffn_norm), tm->dxn, a->x_mid, L->ffn_norm, N, C, eps);
        /* attention: x_mid = x_in + wo(attention(rope(wqkv xn1))) */
        memset(tm->datt, 0, sizeof(float) * N * HD);
        linear_backward(tm, l, TRAIN_WO, &L->wo, tm->datt, tm->dx, a->att);
        memset(tm->dqkv, 0, sizeof(float) * N * QKV);
        attention_backward(tm->dqkv, tm->datt, a->qkv, a->att, a->lse, start, tm->B, tm->T, c->n_heads,
                           c->n_kv_heads, c->head_dim);
        rope_qkv(tm, tm->dqkv, pos, 1);
        memset(tm->dxn, 0, sizeof(float) * N * C);
        linear_backward(tm, l, TRAIN_WQKV, &L->wqkv, tm->dxn, tm->dqkv, a->xn1);
        rmsnorm_backward(tm->dx, grad_of(tm, L->attention_norm), tm->dxn, a->x_in, L->attention_norm, N, C, eps);
    }
    if (tm->grads)
        embedding_backward(grad_of(tm, m->tok_embeddings.data), tm->dx, tokens, N, C);
    return loss;
}
