/* The optional QLoRA memory savers (docs/finetune.md): bf16 adapters, 8-bit AdamW, the NF4 output head.
 *  1. bf16 adapters compute what f32 adapters holding the same (bf16) values compute: the same loss, bit for bit,
 *     and gradients equal to bf16 precision; saved as BF16 tensors that lora_load reads back exactly.
 *  2. Training with every saver on (plus activation recomputation) lowers the loss of a fixed batch as the
 *     default (f32 adapters, f32 AdamW, unquantised head) does. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "melodist/lora.h"
#include "testutil.h"

enum { B = 2, T = 40, N = B * T }; /* N > TRAIN_LOGIT_ROWS: the head runs in two chunks */

static const struct model_config shape = {.dim = 48, .n_layers = 2, .n_heads = 6, .n_kv_heads = 2, .head_dim = 8,
                                          .hidden_dim = 96, .vocab_size = 53, .max_position_embeddings = 64,
                                          .rope_theta = 10000.0f, .rms_norm_eps = 1e-5f, .bos_token_id = 1,
                                          .eos_token_id = 2};

static int32_t tok[N], tgt[N], start[N], pos[N];

static void batch(void)
{
    uint64_t s = 17;
    for (int i = 0; i < N; i++)
        tok[i] = (int32_t)(train_splitmix64(&s) % (uint64_t)shape.vocab_size), start[i] = 0, pos[i] = i % T;
    for (int i = 0; i < N; i++)
        tgt[i] = i % T + 1 < T ? tok[i + 1] : -1;
}

static struct lora *adapters(const struct model *m, int bf16, int nf4, struct train_model **tm, int recompute)
{
    char err[512];
    struct lora_config lc = {.r = 8, .alpha = 16, .dropout = 0.1f, .targets = LORA_ALL_TARGETS, .nf4 = nf4,
                             .double_quant = nf4, .nf4_output = nf4, .bf16 = bf16};
    struct lora *L = lora_new(m, &lc, N, 5, err, sizeof err);
    *tm = L ? train_model_new_frozen(m, &L->ops, B, T, recompute, err, sizeof err) : NULL;
    if (!*tm) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    L->dropout_seed = 99;
    return L;
}

static void same_arithmetic(const struct model *m, const char *dir)
{
    struct train_model *t16, *t32;
    struct lora *L16 = adapters(m, 1, 0, &t16, 0), *L32 = adapters(m, 0, 0, &t32, 0);
    uint64_t s = 3;
    for (size_t e = 0; e < L16->n_params; e++) { /* B away from zero as well, both holding bf16 values */
        float u = (float)((double)(train_splitmix64(&s) >> 11) * 0x1p-53 - 0.5);
        float v = L32->params[e] != 0.0f ? L32->params[e] : u;
        L16->params16[e] = nn_f32_to_bf16(v);
        L32->params[e] = nn_bf16_to_f32(L16->params16[e]);
    }
    lora_zero_grads(L16), lora_zero_grads(L32);
    double l16 = train_forward_backward(t16, tok, tgt, start, pos, 1.0f / N);
    double l32 = train_forward_backward(t32, tok, tgt, start, pos, 1.0f / N);
    float *g16 = malloc(sizeof(float) * L16->n_params), *loaded16 = malloc(sizeof(float) * L16->n_params);
    for (size_t e = 0; e < L16->n_params; e++)
        g16[e] = nn_bf16_to_f32(L16->grads16[e]), loaded16[e] = nn_bf16_to_f32(L16->params16[e]);
    double gerr = tu_rel_error(g16, L32->grads, L32->n_params);
    printf("bf16 vs f32 adapters of the same values: loss %.9g vs %.9g, gradients max |diff| / max |g| %.2e\n", l16,
           l32, gerr);
    CHECK(l16 == l32, "bf16 adapters changed the loss: %.9g vs %.9g", l16, l32);
    CHECK(gerr <= 1.0 / 128 && gerr > 0, "bf16 gradients off by %.3e (bf16 rounding is below 2^-8)", gerr);

    char err[512];
    mkdir(dir, 0755);
    struct lora *back = NULL;
    if (lora_save(L16, dir, "random", err, sizeof err) || !(back = lora_load(dir, m, err, sizeof err)))
        fprintf(stderr, "%s\n", err);
    CHECK(back && back->n_params == L16->n_params && !memcmp(back->params, loaded16, sizeof(float) * back->n_params),
          "bf16 adapter does not survive lora_save / lora_load");
    free(g16), free(loaded16);
    lora_free(back);
    train_model_free(t16), train_model_free(t32);
    lora_free(L16), lora_free(L32);
}

/* Loss of the fixed batch before and after `steps` optimizer steps. */
static void train(const struct model *m, int savers, int steps, double *first, double *last)
{
    struct train_model *tm;
    struct lora *L = adapters(m, savers, savers, &tm, savers);
    struct adamw opt;
    if ((savers ? adamw_init_8bit : adamw_init)(&opt, L->n_params))
        exit(1);
    struct adamw_config ac = {0.9, 0.999, 1e-8};
    for (int i = 0; i <= steps; i++) {
        lora_zero_grads(L);
        double loss = train_forward_backward(tm, tok, tgt, start, pos, 1.0f / N) / N;
        if (i == 0)
            *first = loss;
        *last = loss;
        if (i < steps)
            lora_optimizer_step(L, &opt, 1e-2, 0.01, &ac, 1.0f);
    }
    adamw_free(&opt);
    train_model_free(tm);
    lora_free(L);
}

int main(int argc, char **argv)
{
    batch();
    struct model *m = model_new_random(&shape, NN_F32, 3, 0.2f);
    same_arithmetic(m, argc > 1 ? argv[1] : "savers_adapter");
    double f0, f1, s0, s1;
    train(m, 0, 40, &f0, &f1);
    train(m, 1, 40, &s0, &s1);
    printf("40 steps on one batch: default %.4f -> %.4f; bf16 adapters + AdamW8bit + NF4 head + recompute %.4f -> "
           "%.4f\n", f0, f1, s0, s1);
    CHECK(f1 < 0.5 * f0, "the default run did not learn the batch: %.4f -> %.4f", f0, f1);
    CHECK(s1 < 0.5 * s0, "the run with the savers did not learn the batch: %.4f -> %.4f", s0, s1);
    CHECK(fabs(s1 - f1) < 0.25 * f1 + 0.1, "the savers end far from the default: %.4f vs %.4f", s1, f1);
    model_free(m);
    printf("%d checks, %d failures\n", tu_checks, tu_failures);
    return tu_failures != 0;
}
