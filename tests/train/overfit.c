/* A small model must drive the loss on one fixed batch of random tokens to near zero (memorisation):
 * the whole forward/backward/AdamW chain works together. */
#include <math.h>

#include "melodist/optim.h"
#include "melodist/train.h"
#include "tdump.h"

int main(void)
{
    struct model_config c = {.dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .head_dim = 16,
                             .hidden_dim = 128, .vocab_size = 96, .max_position_embeddings = 64,
                             .rope_theta = 10000.0f, .rms_norm_eps = 1e-5f};
    enum { B = 2, T = 32, STEPS = 150 };
    char err[256];
    struct train_model *tm = train_model_new(&c, B, T, err, sizeof err);
    struct adamw opt;
    if (!tm || train_model_init_random(tm, 3, 0.02f, err, sizeof err) || adamw_init(&opt, tm->n_params)) {
        fprintf(stderr, "setup: %s\n", err);
        return 1;
    }
    int32_t tok[B * T], tgt[B * T], start[B * T], pos[B * T];
    for (int i = 0; i < B * T; i++)
        tok[i] = (int32_t)(trng_uniform() * c.vocab_size) % c.vocab_size;
    for (int i = 0; i < B * T; i++) {
        start[i] = 0, pos[i] = i % T;
        tgt[i] = i % T == T - 1 ? -1 : tok[i + 1];
    }
    int n = B * (T - 1);
    struct adamw_config ac = {0.9, 0.95, 1e-8};
    double first = 0, loss = 0;
    for (int s = 0; s < STEPS; s++) {
        for (size_t i = 0; i < tm->n_params; i++)
            tm->grads[i] = 0;
        loss = train_forward_backward(tm, tok, tgt, start, pos, 1.0f / n) / n;
        if (s == 0)
            first = loss;
        adamw_begin_step(&opt);
        adamw_update(&opt, 0, tm->params, tm->grads, tm->n_params, 1e-2, 0.0, &ac);
    }
    printf("loss on one fixed batch: step 1 %.4f (ln %d = %.4f), step %d %.4f\n", first, c.vocab_size,
           log(c.vocab_size), STEPS, loss);
    adamw_free(&opt);
    train_model_free(tm);
    return loss < 0.05 && fabs(first - log(c.vocab_size)) < 0.1 ? 0 : 1;
}
