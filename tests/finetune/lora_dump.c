/* LoRA training steps on small random models, dumped for tests/reference/lora_ref.py lora, which recomputes
 * the loss and every adapter gradient with autograd (W_eff = W + (alpha/r) B A, float64). Cases cover MHA and
 * GQA, all targets and a subset, an NF4 base with double quantisation (the de-quantised base is what the
 * oracle gets, so the check is of the LoRA arithmetic over that base), and dropout on the adapter inputs (the
 * oracle recomputes the masks from the seed with its own implementation of the hash), with activation
 * recomputation, with more rows than one chunk of logits, and with the output head in NF4 as well. */
#include <stdlib.h>
#include <sys/stat.h>

#include "../train/tdump.h"
#include "melodist/lora.h"

struct shape {
    const char *tag;
    int dim, layers, heads, kv_heads, hidden, vocab, B, T;
    unsigned targets;
    int nf4;
    float dropout;
    int recompute, nf4_output;
};

/* The base as the oracle must see it: NF4 matrices replaced by their de-quantised values. */
static int save_base(const struct model *m, const struct lora *L, const char *dir, char *err, size_t errlen)
{
    struct model copy = *m;
    struct model_layer *layers = malloc(sizeof *layers * (size_t)m->config.n_layers);
    int decoder = m->config.n_layers * TRAIN_OUTPUT, n = L->nf4 ? decoder + L->cfg.nf4_output : 0;
    float **bufs = calloc((size_t)decoder + 1, sizeof *bufs);
    memcpy(layers, m->layers, sizeof *layers * (size_t)m->config.n_layers);
    copy.layers = layers;
    for (int i = 0; i < n; i++) {
        struct model_layer *l = &layers[i / TRAIN_OUTPUT];
        struct nn_matrix *by_kind[TRAIN_OUTPUT] = {&l->wqkv, &l->wo, &l->w1, &l->w2, &l->w3};
        struct nn_matrix *w = i == decoder ? &copy.output : by_kind[i % TRAIN_OUTPUT];
        bufs[i] = malloc(sizeof(float) * L->nf4[i].n);
        nf4_dequantize(&L->nf4[i], 0, L->nf4[i].n, bufs[i]);
        *w = (struct nn_matrix){NN_F32, w->rows, w->cols, bufs[i], NULL};
    }
    int rc = model_save(&copy, dir, NN_F32, err, errlen);
    for (int i = 0; i < n; i++)
        free(bufs[i]);
    free(bufs), free(layers);
    return rc;
}

static int dump_case(const char *dir, const struct shape *s)
{
    struct model_config c = {.dim = s->dim, .n_layers = s->layers, .n_heads = s->heads, .n_kv_heads = s->kv_heads,
                             .head_dim = s->dim / s->heads, .hidden_dim = s->hidden, .vocab_size = s->vocab,
                             .max_position_embeddings = 64, .rope_theta = 10000.0f, .rms_norm_eps = 1e-5f,
                             .bos_token_id = 1, .eos_token_id = 2};
    char err[256], path[512];
    struct model *m = model_new_random(&c, NN_F32, 7, 0.2f);
    struct lora_config lc = {.r = 4, .alpha = 8, .dropout = s->dropout, .targets = s->targets, .nf4 = s->nf4,
                             .double_quant = s->nf4, .nf4_output = s->nf4_output};
    int N = s->B * s->T;
    struct lora *L = m ? lora_new(m, &lc, N, 99, err, sizeof err) : NULL;
    struct train_model *tm = L ? train_model_new_frozen(m, &L->ops, s->B, s->T, s->recompute, err, sizeof err) : NULL;
    if (!tm) {
        fprintf(stderr, "%s: %s\n", s->tag, m ? err : "out of memory");
        return 1;
    }
    for (size_t i = 0; i < L->n_params; i++) /* B away from zero so that every path carries gradient */
        if (L->params[i] == 0.0f)
            L->params[i] = 0.3f * (trng_uniform() - 0.5f);
    int32_t *tok = malloc(sizeof(int32_t) * N), *tgt = malloc(sizeof(int32_t) * N);
    int32_t *start = malloc(sizeof(int32_t) * N), *pos = malloc(sizeof(int32_t) * N);
    int valid = 0;
    for (int i = 0; i < N; i++) {
        int t = i % s->T;
        start[i] = 0, pos[i] = t;
        tok[i] = (int32_t)(trng_uniform() * s->vocab) % s->vocab;
    }
    for (int i = 0; i < N; i++) {
        tgt[i] = i % s->T + 1 == s->T || trng_uniform() < 0.2f ? -1 : tok[i + 1];
        valid += tgt[i] >= 0;
    }
    L->dropout_seed = 0x0123456789ABCDEFull;
    double loss = train_forward_backward(tm, tok, tgt, start, pos, 1.0f / (float)valid);
    float mean = (float)(loss / valid);
    snprintf(path, sizeof path, "%s/%s", dir, s->tag);
    mkdir(path, 0755);
    if (save_base(m, L, path, err, sizeof err) || lora_save(L, path, "random", err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", s->tag, err);
        return 1;
    }
    snprintf(path, sizeof path, "%s/%s/grads.bin", dir, s->tag);
    FILE *f = tdump_open(path);
    TDUMP_I32(f, "tokens", tok, s->B, s->T);
    TDUMP_I32(f, "targets", tgt, s->B, s->T);
    TDUMP_I32(f, "start", start, s->B, s->T);
    TDUMP_F32(f, "loss", &mean, 1);
    TDUMP_F32(f, "lora_grads", L->grads, (int64_t)L->n_params);
    int32_t seed[2] = {(int32_t)(L->dropout_seed & 0xFFFFFFFFu), (int32_t)(L->dropout_seed >> 32)};
    TDUMP_I32(f, "dropout_seed", seed, 2);
    fclose(f);
    free(tok), free(tgt), free(start), free(pos);
    train_model_free(tm);
    lora_free(L);
    model_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: lora_dump DIR\n");
        return 2;
    }
    unsigned some = 1u << TRAIN_WQKV | 1u << TRAIN_W2 | 1u << TRAIN_OUTPUT;
    static struct shape shapes[] = {
        {"mha_all", 32, 2, 4, 4, 48, 37, 2, 12, LORA_ALL_TARGETS, 0, 0.0f, 0, 0},
        {"gqa_some", 48, 2, 6, 2, 64, 29, 2, 16, 0, 0, 0.0f, 0, 0},
        {"gqa_qlora", 64, 2, 4, 2, 128, 41, 1, 20, LORA_ALL_TARGETS, 1, 0.0f, 0, 0},
        {"mha_dropout", 32, 2, 4, 4, 48, 37, 2, 12, LORA_ALL_TARGETS, 0, 0.25f, 0, 0},
        {"gqa_qlora_dropout", 64, 2, 4, 2, 128, 41, 1, 20, LORA_ALL_TARGETS, 1, 0.1f, 0, 0},
        /* more rows than TRAIN_LOGIT_ROWS (the head's chunks), layers recomputed in the backward */
        {"gqa_qlora_dropout_recompute", 64, 3, 4, 2, 128, 41, 2, 48, LORA_ALL_TARGETS, 1, 0.1f, 1, 0},
        {"gqa_qlora_nf4_head", 64, 2, 4, 2, 128, 41, 2, 40, LORA_ALL_TARGETS, 1, 0.1f, 1, 1},
    };
    shapes[1].targets = some;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (dump_case(argv[1], &shapes[i]))
            return 1;
    return 0;
}
