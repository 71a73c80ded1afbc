/* LoRA / QLoRA linear layers (see lora.h): the frozen base product, de-quantised on the fly in row chunks
 * for NF4, plus the low-rank term, forward and backward, as train_linear_ops for a frozen train_model. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/fileio.h"
#include "melodist/json.h"
#include "melodist/lora.h"
#include "melodist/nn_backward.h"
#include "pages.h"

#define CHUNK 256 /* base rows de-quantised at a time */

static const char *const target_names[TRAIN_N_LINEAR] = {"wqkv", "wo", "w1", "w2", "w3", "output"};

const char *lora_target_name(enum train_linear kind) { return target_names[kind]; }

int lora_target_parse(const char *name)
{
    for (int k = 0; k < TRAIN_N_LINEAR; k++)
        if (!strcmp(name, target_names[k]))
            return k;
    return -1;
}

static int n_adapters(const struct lora *L) { return L->n_layers * TRAIN_OUTPUT + 1; }

/* Base matrices held as NF4: the decoder's, and the head's last with nf4_output. */
static int n_nf4(const struct lora *L)
{
    return L->nf4 ? L->n_layers * TRAIN_OUTPUT + (L->cfg.nf4_output ? 1 : 0) : 0;
}

static int index_of(int layer, enum train_linear kind)
{
    return kind == TRAIN_OUTPUT ? -1 : layer * TRAIN_OUTPUT + (int)kind;
}

/* Shape [out, in] of each kind of matrix in a model of config c. */
static void kind_shape(const struct model_config *c, enum train_linear kind, int *out, int *in)
{
    int C = c->dim, F = c->hidden_dim, HD = c->n_heads * c->head_dim;
    int shapes[TRAIN_N_LINEAR][2] = {{(c->n_heads + 2 * c->n_kv_heads) * c->head_dim, C}, {C, HD}, {F, C}, {C, F},
                                     {F, C}, {c->vocab_size, C}};
    *out = shapes[kind][0], *in = shapes[kind][1];
}

static const struct nn_matrix *base_matrix(const struct model *m, int i, int n_layers)
{
    if (i == n_layers * TRAIN_OUTPUT)
        return &m->output;
    const struct model_layer *l = &m->layers[i / TRAIN_OUTPUT];
    const struct nn_matrix *by_kind[TRAIN_OUTPUT] = {&l->wqkv, &l->wo, &l->w1, &l->w2, &l->w3};
    return by_kind[i % TRAIN_OUTPUT];
}

/* Scratch carved from L->scratch (a NULL base only measures it). */
struct scratch {
    float *xd, *xa, *g, *dxd, *bt, *wc, *wt, *chunk, *wide, *w32, *g32, *mm;
};

static size_t carve(const struct lora *L, float *base, struct scratch *s)
{
    size_t used = 0, N = (size_t)L->max_rows, r = (size_t)L->cfg.r, in = (size_t)L->max_in;
#define TAKE(field, n) (s->field = base ? base + used : NULL, used += (n))
    TAKE(xd, N * in);
    TAKE(xa, N * r);
    TAKE(g, N * r);
    TAKE(dxd, N * in);
    TAKE(bt, r * (size_t)L->max_out);
    TAKE(wc, (size_t)CHUNK * in);
    TAKE(wt, (size_t)CHUNK * in);
    TAKE(chunk, N * CHUNK);
    TAKE(wide, N * in);
    size_t widest = L->params16 ? r * (in + (size_t)L->max_out) : 0; /* bf16 adapters: one A and B in f32 */
    TAKE(w32, widest);
    TAKE(g32, widest);
    TAKE(mm, 0); /* matmul_backward's scratch: the rest */
#undef TAKE
    return used;
}

/* ---- the ops ---- */

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Dropout mask of adapter i: element e is kept when its hash is at least p (as a fraction of 2^53). */
static int kept(const struct lora *L, int i, size_t e)
{
    uint64_t h = mix(L->dropout_seed ^ mix((uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull + e));
    return (double)(h >> 11) * 0x1p-53 >= (double)L->cfg.dropout;
}

static int dropping(const struct lora *L) { return L->training && L->cfg.dropout > 0.0f; }

/* xd = dropout(x) for adapter i (x itself when dropout is off); x holds the elements first.. of the
 * adapter's input for the whole micro-batch. */
static const float *dropout_input(const struct lora *L, int i, const float *x, size_t first, size_t n, float *xd)
{
    if (!dropping(L))
        return x;
    float keep_scale = 1.0f / (1.0f - L->cfg.dropout);
    for (size_t e = 0; e < n; e++)
        xd[e] = kept(L, i, first + e) ? x[e] * keep_scale : 0.0f;
    return xd;
}

static struct nn_matrix f32(const float *data, int rows, int cols)
{
    return (struct nn_matrix){NN_F32, rows, cols, data, NULL};
}

/* Rows r0 .. r0+n-1 of base matrix i as f32 into out. */
static void base_rows(const struct lora *L, int i, const struct nn_matrix *w, int r0, int n, float *out)
{
    if (i < n_nf4(L))
        nf4_dequantize(&L->nf4[i], (size_t)r0 * w->cols, (size_t)n * w->cols, out);
    else
        for (int r = 0; r < n; r++)
            nn_dequant_row(w, r0 + r, out + (size_t)r * w->cols);
}

/* y[N, rows] = (or +=) x Wᵀ, CHUNK rows of W at a time (no [N, rows] temporary): W is the f32 matrix B when
 * given, else base matrix i, de-quantised chunk by chunk. */
static void chunked_matmul(const struct lora *L, int i, const struct nn_matrix *w, const float *B, int rows, int cols,
                           float *y, const float *x, int N, int accumulate, struct scratch *s)
{
    for (int r0 = 0; r0 < rows; r0 += CHUNK) {
        int n = rows - r0 < CHUNK ? rows - r0 : CHUNK;
        const float *wc = B ? B + (size_t)r0 * cols : s->wc;
        if (!B)
            base_rows(L, i, w, r0, n, s->wc);
        struct nn_matrix m = f32(wc, n, cols);
        nn_matmul(s->chunk, &m, x, N);
        for (int t = 0; t < N; t++) {
            float *dst = y + (size_t)t * rows + r0;
            const float *src = s->chunk + (size_t)t * n;
            for (int j = 0; j < n; j++)
                dst[j] = accumulate ? dst[j] + src[j] : src[j];
        }
    }
}

/* A and B of adapter a in f32: its own (f32 adapters), or converted from bf16 into scratch. */
static void adapter_weights(const struct lora *L, const struct lora_adapter *a, struct scratch *s, const float **A,
                            const float **B)
{
    if (!L->params16) {
        *A = a->A, *B = a->B;
        return;
    }
    size_t n_A = (size_t)L->cfg.r * a->in, n = n_A + (size_t)L->cfg.r * a->out;
    for (size_t e = 0; e < n; e++)
        s->w32[e] = nn_bf16_to_f32(L->params16[a->at + e]);
    *A = s->w32, *B = s->w32 + n_A;
}

static void ops_forward(void *ctx, int layer, enum train_linear kind, const struct nn_matrix *w, float *y,
                        const float *x, int row0, int N)
{
    struct lora *L = ctx;
    struct scratch s;
    carve(L, L->scratch, &s);
    int i = kind == TRAIN_OUTPUT ? n_adapters(L) - 1 : index_of(layer, kind);
    if (i < n_nf4(L))
        chunked_matmul(L, i, w, NULL, w->rows, w->cols, y, x, N, 0, &s);
    else
        nn_matmul(y, w, x, N);
    const struct lora_adapter *a = &L->ad[i];
    if (!a->adapted)
        return;
    const float *xd = dropout_input(L, i, x, (size_t)row0 * a->in, (size_t)N * a->in, s.xd);
    const float *wA, *wB;
    adapter_weights(L, a, &s, &wA, &wB);
    struct nn_matrix A = f32(wA, L->cfg.r, a->in);
    nn_matmul(s.xa, &A, xd, N);
    for (size_t e = 0; e < (size_t)N * L->cfg.r; e++)
        s.xa[e] *= L->scaling;
    chunked_matmul(L, i, NULL, wB, a->out, L->cfg.r, y, s.xa, N, 1, &s);
}

/* dx[N, cols] += dy[N, rows] W, with W's rows de-quantised a chunk at a time. */
static void base_backward(const struct lora *L, int i, const struct nn_matrix *w, float *dx, const float *dy, int N,
                          struct scratch *s)
{
    int rows = w->rows, cols = w->cols;
    for (int r0 = 0; r0 < rows; r0 += CHUNK) {
        int n = rows - r0 < CHUNK ? rows - r0 : CHUNK;
        base_rows(L, i, w, r0, n, s->wc);
        for (int r = 0; r < n; r++)
            for (int c = 0; c < cols; c++)
                s->wt[(size_t)c * n + r] = s->wc[(size_t)r * cols + c];
        for (int t = 0; t < N; t++)
            memcpy(s->chunk + (size_t)t * n, dy + (size_t)t * rows + r0, sizeof(float) * n);
        struct nn_matrix m = f32(s->wt, cols, n);
        nn_matmul(s->wide, &m, s->chunk, N);
        for (size_t e = 0; e < (size_t)N * cols; e++)
            dx[e] += s->wide[e];
    }
}

static void ops_backward(void *ctx, int layer, enum train_linear kind, const struct nn_matrix *w, float *dx,
                         const float *dy, const float *x, int row0, int N)
{
    struct lora *L = ctx;
    struct scratch s;
    carve(L, L->scratch, &s);
    int i = kind == TRAIN_OUTPUT ? n_adapters(L) - 1 : index_of(layer, kind);
    base_backward(L, i, w, dx, dy, N, &s);
    const struct lora_adapter *a = &L->ad[i];
    if (!a->adapted)
        return;
    int r = L->cfg.r;
    size_t n_ab = (size_t)r * (a->in + a->out);
    const float *wA, *wB;
    adapter_weights(L, a, &s, &wA, &wB);
    float *dA = L->params16 ? s.g32 : L->grads + a->at, *dB = dA + (size_t)r * a->in;
    if (L->params16)
        memset(s.g32, 0, sizeof(float) * n_ab);
    size_t n_in = (size_t)N * a->in, first = (size_t)row0 * a->in;
    const float *xd = dropout_input(L, i, x, first, n_in, s.xd);
    struct nn_matrix A = f32(wA, r, a->in);
    nn_matmul(s.xa, &A, xd, N);
    for (size_t e = 0; e < (size_t)N * r; e++)
        s.xa[e] *= L->scaling;
    for (int o = 0; o < a->out; o++) /* g = scaling * dy B */
        for (int k = 0; k < r; k++)
            s.bt[(size_t)k * a->out + o] = wB[(size_t)o * r + k];
    struct nn_matrix Bt = f32(s.bt, r, a->out);
    nn_matmul(s.g, &Bt, dy, N);
    for (size_t e = 0; e < (size_t)N * r; e++)
        s.g[e] *= L->scaling;
    matmul_backward(NULL, dB, dy, s.xa, wB, N, r, a->out, s.mm); /* dB += dyᵀ (scaling xa) */
    if (!dropping(L)) {
        matmul_backward(dx, dA, s.g, xd, wA, N, a->in, r, s.mm); /* dA += gᵀ xd, dx += g A */
    } else {
        memset(s.dxd, 0, sizeof(float) * n_in);
        matmul_backward(s.dxd, dA, s.g, xd, wA, N, a->in, r, s.mm);
        float keep_scale = 1.0f / (1.0f - L->cfg.dropout);
        for (size_t e = 0; e < n_in; e++)
            if (kept(L, i, first + e))
                dx[e] += s.dxd[e] * keep_scale;
    }
    for (size_t e = 0; L->params16 && e < n_ab; e++) /* bf16 gradients accumulate as torch's .grad does */
        L->grads16[a->at + e] = nn_f32_to_bf16(nn_bf16_to_f32(L->grads16[a->at + e]) + s.g32[e]);
}

/* ---- construction ---- */

static int alloc_params(struct lora *L, const struct model_config *c)
{
    size_t r = (size_t)L->cfg.r, total = 0;
    for (int i = 0; i < n_adapters(L); i++) {
        struct lora_adapter *a = &L->ad[i];
        enum train_linear kind = i == n_adapters(L) - 1 ? TRAIN_OUTPUT : (enum train_linear)(i % TRAIN_OUTPUT);
        kind_shape(c, kind, &a->out, &a->in);
        a->adapted = (L->cfg.targets & (1u << kind)) != 0;
        a->at = total;
        total += a->adapted ? r * (size_t)(a->in + a->out) : 0;
    }
    L->n_params = total;
    size_t size = L->cfg.bf16 ? sizeof(uint16_t) : sizeof(float);
    void *p = calloc(total ? total : 1, size), *g = calloc(total ? total : 1, size);
    if (L->cfg.bf16)
        L->params16 = p, L->grads16 = g;
    else
        L->params = p, L->grads = g;
    if (!p || !g)
        return -1;
    for (int i = 0; i < n_adapters(L) && L->params; i++) {
        struct lora_adapter *a = &L->ad[i];
        if (a->adapted)
            a->A = L->params + a->at, a->B = a->A + r * a->in;
    }
    return 0;
}

/* Empty adapters and scratch for base's shape. */
static struct lora *lora_alloc(const struct model *base, const struct lora_config *cfg, int max_rows, char *err,
                               size_t errlen)
{
    const struct model_config *c = &base->config;
    if (cfg->r < 1 || cfg->dropout < 0 || cfg->dropout >= 1 || !cfg->targets || (cfg->targets & ~LORA_ALL_TARGETS)) {
        snprintf(err, errlen, "LoRA settings: r must be >= 1 (got %d), lora_dropout in [0, 1) (got %g), and at "
                 "least one target module", cfg->r, cfg->dropout);
        return NULL;
    }
    if ((cfg->targets & (1u << TRAIN_OUTPUT)) && c->tie_word_embeddings) {
        snprintf(err, errlen, "the model ties its output head to the embeddings: leave \"output\" out of the "
                 "target modules");
        return NULL;
    }
    struct lora *L = calloc(1, sizeof *L);
    if (!L)
        goto oom;
    L->cfg = *cfg;
    L->scaling = cfg->alpha / (float)cfg->r;
    L->n_layers = c->n_layers;
    L->training = 1;
    L->ops = (struct train_linear_ops){ops_forward, ops_backward, L};
    L->ad = calloc((size_t)n_adapters(L), sizeof *L->ad);
    if (!L->ad || alloc_params(L, c))
        goto oom;
    L->max_rows = max_rows;
    size_t mm = 0;
    for (int k = 0; k < TRAIN_N_LINEAR; k++) {
        int out, in;
        kind_shape(c, (enum train_linear)k, &out, &in);
        L->max_in = in > L->max_in ? in : L->max_in;
        L->max_out = out > L->max_out ? out : L->max_out;
        size_t a = matmul_backward_scratch(max_rows, cfg->r, out), b = matmul_backward_scratch(max_rows, in, cfg->r);
        mm = a > mm ? a : mm;
        mm = b > mm ? b : mm;
    }
    struct scratch probe;
    L->scratch = malloc(sizeof(float) * (carve(L, NULL, &probe) + mm)); /* pages count only once touched */
    if (!L->scratch)
        goto oom;
    return L;
oom:
    snprintf(err, errlen, "out of memory for LoRA adapters of rank %d", cfg->r);
    lora_free(L);
    return NULL;
}

/* PEFT's kaiming_uniform_(a=sqrt(5)) on A [r, in]: U(-1/sqrt(in), 1/sqrt(in)). */
static void init_adapters(struct lora *L, uint64_t seed)
{
    uint64_t state = seed;
    for (int i = 0; i < n_adapters(L); i++) {
        struct lora_adapter *a = &L->ad[i];
        if (!a->adapted)
            continue;
        float bound = 1.0f / sqrtf((float)a->in);
        for (size_t e = 0; e < (size_t)L->cfg.r * a->in; e++) {
            double u = (double)(train_splitmix64(&state) >> 11) * 0x1p-53;
            float v = (float)((2.0 * u - 1.0) * bound);
            if (L->params16)
                L->params16[a->at + e] = nn_f32_to_bf16(v);
            else
                a->A[e] = v;
        }
    }
}

static int quantize_base(struct lora *L, const struct model *base)
{
    int n = L->n_layers * TRAIN_OUTPUT + (L->cfg.nf4_output ? 1 : 0);
    L->nf4 = calloc((size_t)n, sizeof *L->nf4);
    if (!L->nf4)
        return -1;
    for (int i = 0; i < n; i++) {
        const struct nn_matrix *w = base_matrix(base, i, L->n_layers);
        if (nf4_quantize_matrix(&L->nf4[i], w, L->cfg.double_quant))
            return -1;
        if (base->files.count) /* mapped from a checkpoint: the pages can go, the NF4 copy replaces them */
            pages_release(w->data, nn_matrix_bytes(w));
    }
    return 0;
}

struct lora *lora_new(const struct model *base, const struct lora_config *cfg, int max_rows, uint64_t seed,
                      char *err, size_t errlen)
{
    struct lora *L = lora_alloc(base, cfg, max_rows, err, errlen);
    if (!L)
        return NULL;
    init_adapters(L, seed);
    if (cfg->nf4 && quantize_base(L, base)) {
        snprintf(err, errlen, "out of memory quantising the base model to NF4");
        lora_free(L);
        return NULL;
    }
    return L;
}

void lora_free(struct lora *L)
{
    if (!L)
        return;
    for (int i = 0; i < n_nf4(L); i++)
        nf4_free(&L->nf4[i]);
    free(L->nf4);
    free(L->ad);
    free(L->params);
    free(L->grads);
    free(L->params16);
    free(L->grads16);
    free(L->scratch);
    free(L);
}

size_t lora_base_bytes(const struct lora *L)
{
    size_t n = 0;
    for (int i = 0; i < n_nf4(L); i++)
        n += nf4_bytes(&L->nf4[i]);
    return n;
}

/* ---- training ---- */

void lora_zero_grads(struct lora *L)
{
    if (L->grads16)
        memset(L->grads16, 0, sizeof(uint16_t) * L->n_params);
    else
        memset(L->grads, 0, sizeof(float) * L->n_params);
}

int lora_copy_params(struct lora *L, const struct lora *from)
{
    if (!from->params || from->n_params != L->n_params || from->cfg.r != L->cfg.r ||
        from->cfg.targets != L->cfg.targets)
        return -1;
    for (size_t e = 0; e < L->n_params; e++)
        if (L->params16)
            L->params16[e] = nn_f32_to_bf16(from->params[e]);
        else
            L->params[e] = from->params[e];
    return 0;
}

/* bf16 adapters: all-reduce, clip and update ADAMW8_BLOCK parameters at a time in f32 (the blocks of 8-bit
 * AdamW), rounding the results back to bf16 as bitsandbytes' kernels store 16-bit parameters. */
static double step_bf16(struct lora *L, struct adamw *o, double lr, double wd, const struct adamw_config *c,
                        float max_norm)
{
    float p[ADAMW8_BLOCK], g[ADAMW8_BLOCK];
    double sumsq = 0;
    for (size_t lo = 0; lo < L->n_params; lo += ADAMW8_BLOCK) {
        size_t n = L->n_params - lo < ADAMW8_BLOCK ? L->n_params - lo : ADAMW8_BLOCK;
        for (size_t e = 0; e < n; e++)
            g[e] = nn_bf16_to_f32(L->grads16[lo + e]);
        dist_sum_floats(g, n);
        for (size_t e = 0; e < n; e++) {
            L->grads16[lo + e] = nn_f32_to_bf16(g[e]);
            sumsq += (double)nn_bf16_to_f32(L->grads16[lo + e]) * nn_bf16_to_f32(L->grads16[lo + e]);
        }
    }
    double norm = sqrt(sumsq);
    float clip = grad_clip_factor(norm, max_norm);
    for (size_t lo = 0; lo < L->n_params; lo += ADAMW8_BLOCK) {
        size_t n = L->n_params - lo < ADAMW8_BLOCK ? L->n_params - lo : ADAMW8_BLOCK;
        for (size_t e = 0; e < n; e++) {
            p[e] = nn_bf16_to_f32(L->params16[lo + e]);
            g[e] = nn_bf16_to_f32(L->grads16[lo + e]) * clip;
        }
        adamw_update(o, lo, p, g, n, lr, wd, c);
        for (size_t e = 0; e < n; e++)
            L->params16[lo + e] = nn_f32_to_bf16(p[e]);
    }
    return norm;
}

double lora_optimizer_step(struct lora *L, struct adamw *o, double lr, double wd, const struct adamw_config *c,
                           float max_norm)
{
    adamw_begin_step(o);
    if (L->params16)
        return step_bf16(L, o, lr, wd, c, max_norm);
    dist_sum_floats(L->grads, L->n_params);
    double norm = grad_clip(L->grads, L->n_params, max_norm);
    adamw_update(o, 0, L->params, L->grads, L->n_params, lr, wd, c);
    return norm;
}

/* ---- PEFT files ---- */

/* "base_model.model." + the module path + ".lora_A.weight" / ".lora_B.weight". */
static void peft_name(char *out, size_t cap, const struct lora *L, int i, char which)
{
    static const char *const module[TRAIN_OUTPUT] = {"attention.wqkv", "attention.wo", "feed_forward.w1",
                                                     "feed_forward.w2", "feed_forward.w3"};
    if (i == n_adapters(L) - 1)
        snprintf(out, cap, "base_model.model.output.lora_%c.weight", which);
    else
        snprintf(out, cap, "base_model.model.model.layers.%d.%s.lora_%c.weight", i / TRAIN_OUTPUT,
                 module[i % TRAIN_OUTPUT], which);
}

/* adapter_config.json as PEFT 0.10 writes it: sorted keys, indent 2. */
static int write_config(const struct lora *L, const char *path, const char *base_name, char *err, size_t errlen)
{
    char tmp[4300];
    FILE *f = file_create_tmp(path, tmp, sizeof tmp, err, errlen);
    if (!f)
        return -1;
    fprintf(f, "{\n  \"alpha_pattern\": {},\n  \"auto_mapping\": null,\n  \"base_model_name_or_path\": ");
    json_fput_string(f, base_name);
    fprintf(f, ",\n  \"bias\": \"none\",\n  \"fan_in_fan_out\": false,\n  \"inference_mode\": true,\n"
               "  \"init_lora_weights\": true,\n  \"layer_replication\": null,\n  \"layers_pattern\": null,\n"
               "  \"layers_to_transform\": null,\n  \"loftq_config\": {},\n  \"lora_alpha\": %.9g,\n"
               "  \"lora_dropout\": %.9g,\n  \"megatron_config\": null,\n  \"megatron_core\": \"megatron.core\",\n"
               "  \"modules_to_save\": null,\n  \"peft_type\": \"LORA\",\n  \"r\": %d,\n  \"rank_pattern\": {},\n"
               "  \"revision\": null,\n  \"target_modules\": [",
            L->cfg.alpha, L->cfg.dropout, L->cfg.r);
    int first = 1;
    for (int k = 0; k < TRAIN_N_LINEAR; k++)
        if (L->cfg.targets & (1u << k)) {
            fprintf(f, "%s\n    \"%s\"", first ? "" : ",", target_names[k]);
            first = 0;
        }
    fprintf(f, "\n  ],\n  \"task_type\": \"CAUSAL_LM\",\n  \"use_dora\": false,\n  \"use_rslora\": false\n}\n");
    return file_commit(f, !ferror(f), tmp, path, err, errlen);
}

int lora_save(const struct lora *L, const char *dir, const char *base_name, char *err, size_t errlen)
{
    char path[4200];
    int n = 0;
    struct st_out *out = calloc((size_t)n_adapters(L) * 2, sizeof *out);
    char (*names)[160] = calloc((size_t)n_adapters(L) * 2, sizeof *names);
    if (!out || !names) {
        free(out), free(names);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < n_adapters(L); i++) {
        const struct lora_adapter *a = &L->ad[i];
        if (!a->adapted)
            continue;
        for (int w = 0; w < 2; w++, n++) {
            size_t at = a->at + (w ? (size_t)L->cfg.r * a->in : 0);
            peft_name(names[n], sizeof names[n], L, i, w ? 'B' : 'A');
            out[n] = (struct st_out){.name = names[n], .dtype = L->params16 ? ST_BF16 : ST_F32, .ndim = 2,
                                     .data = L->params16 ? (const void *)(L->params16 + at) : L->params + at};
            out[n].shape[0] = w ? a->out : L->cfg.r;
            out[n].shape[1] = w ? L->cfg.r : a->in;
        }
    }
    const char *meta[] = {"format", "pt"};
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    int rc = st_write(path, out, (size_t)n, meta, 1, err, errlen);
    free(out), free(names);
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    return rc ? rc : write_config(L, path, base_name, err, errlen);
}

static int parse_config(const char *path, struct lora_config *c, char *err, size_t errlen)
{
    char why[512];
    struct json *j = json_load(path, SIZE_MAX, why, sizeof why);
    if (!j) {
        snprintf(err, errlen, "%s (is this a PEFT adapter directory?)", why);
        return -1;
    }
    const struct json *type = json_get(j, "peft_type"), *r = json_get(j, "r"), *alpha = json_get(j, "lora_alpha");
    const struct json *drop = json_get(j, "lora_dropout"), *targets = json_get(j, "target_modules");
    const struct json *rs = json_get(j, "use_rslora"), *dora = json_get(j, "use_dora");
    int rc = -1;
    memset(c, 0, sizeof *c);
    if (!type || type->type != JSON_STRING || strcmp(type->string, "LORA") || !r || r->type != JSON_NUMBER ||
        !alpha || alpha->type != JSON_NUMBER || !targets || targets->type != JSON_ARRAY) {
        snprintf(err, errlen, "%s: not a LoRA adapter config (needs peft_type \"LORA\", r, lora_alpha, "
                 "target_modules)", path);
        goto out;
    }
    if ((rs && rs->type == JSON_BOOL && rs->boolean) || (dora && dora->type == JSON_BOOL && dora->boolean)) {
        snprintf(err, errlen, "%s: use_rslora / use_dora adapters are not supported", path);
        goto out;
    }
    c->r = (int)r->number, c->alpha = (float)alpha->number;
    c->dropout = drop && drop->type == JSON_NUMBER ? (float)drop->number : 0.0f;
    for (size_t i = 0; i < targets->count; i++) {
        const struct json *t = &targets->items[i];
        int k = t->type == JSON_STRING ? lora_target_parse(t->string) : -1;
        if (k < 0) {
            snprintf(err, errlen, "%s: target module %s is not one of wqkv, wo, w1, w2, w3, output", path,
                     t->type == JSON_STRING ? t->string : "(not a string)");
            goto out;
        }
        c->targets |= 1u << k;
    }
    rc = 0;
out:
    json_free(j);
    return rc;
}

/* Copies a stored [rows, cols] tensor (f32, f16 or bf16) into dst after checking its name and shape. */
static int read_tensor(const struct st_file *f, const char *name, int rows, int cols, float *dst, char *err,
                       size_t errlen)
{
    const struct st_tensor *t = st_find(f, name);
    if (!t) {
        snprintf(err, errlen, "%s: missing tensor %s", f->path, name);
        return -1;
    }
    if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols ||
        (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16)) {
        snprintf(err, errlen, "%s: %s should be a [%d, %d] float tensor (F32/F16/BF16); it is %s with %d dims",
                 f->path, name, rows, cols, st_dtype_name(t->dtype), t->ndim);
        return -1;
    }
    size_t n = (size_t)rows * cols;
    const uint16_t *h = t->data;
    for (size_t e = 0; e < n; e++)
        dst[e] = t->dtype == ST_F32 ? ((const float *)t->data)[e]
                 : t->dtype == ST_F16 ? nn_f16_to_f32(h[e]) : nn_bf16_to_f32(h[e]);
    return 0;
}

struct lora *lora_load(const char *dir, const struct model *base, char *err, size_t errlen)
{
    char path[4200], name[160];
    struct lora_config c;
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    if (parse_config(path, &c, err, errlen))
        return NULL;
    struct lora *L = lora_alloc(base, &c, 1, err, errlen);
    if (!L)
        return NULL;
    L->training = 0;
    struct st_file f;
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    if (st_open(path, &f, err, errlen)) {
        lora_free(L);
        return NULL;
    }
    int rc = 0;
    for (int i = 0; i < n_adapters(L) && !rc; i++) {
        struct lora_adapter *a = &L->ad[i];
        if (!a->adapted)
            continue;
        peft_name(name, sizeof name, L, i, 'A');
        rc = read_tensor(&f, name, c.r, a->in, a->A, err, errlen);
        peft_name(name, sizeof name, L, i, 'B');
        rc = rc || read_tensor(&f, name, a->out, c.r, a->B, err, errlen);
    }
    st_close(&f);
    if (rc) {
        lora_free(L);
        return NULL;
    }
    return L;
}

int lora_merge(const struct lora *L, struct model *m, void **owned, char *err, size_t errlen)
{
    if (L->params16) {
        snprintf(err, errlen, "merging takes an adapter as lora_load reads it (f32), not bf16 training adapters");
        return -1;
    }
    size_t total = 0;
    for (int i = 0; i < n_adapters(L); i++)
        if (L->ad[i].adapted)
            total += (size_t)L->ad[i].in * L->ad[i].out;
    float *mem = malloc(sizeof(float) * (total ? total : 1)), *p = mem;
    double *delta = malloc(sizeof(double) * (size_t)L->max_in);
    if (!mem || !delta) {
        free(mem), free(delta);
        snprintf(err, errlen, "out of memory merging the adapter");
        return -1;
    }
    int r = L->cfg.r;
    for (int i = 0; i < n_adapters(L); i++) {
        const struct lora_adapter *a = &L->ad[i];
        if (!a->adapted)
            continue;
        struct nn_matrix *w = (struct nn_matrix *)base_matrix(m, i, L->n_layers);
        for (int o = 0; o < a->out; o++) { /* W' = W + scaling * (B A) */
            float *row = p + (size_t)o * a->in;
            nn_dequant_row(w, o, row);
            memset(delta, 0, sizeof(double) * a->in);
            for (int k = 0; k < r; k++) {
                double b = a->B[(size_t)o * r + k];
                const float *Ak = a->A + (size_t)k * a->in;
                for (int c = 0; c < a->in; c++)
                    delta[c] += b * Ak[c];
            }
            for (int c = 0; c < a->in; c++)
                row[c] += (float)delta[c] * L->scaling;
        }
        *w = f32(p, a->out, a->in);
        p += (size_t)a->in * a->out;
    }
    free(delta);
    *owned = mem;
    return 0;
}
