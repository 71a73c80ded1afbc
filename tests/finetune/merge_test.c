/* Merge equivalence: the logits of base + adapter (the frozen training forward through the LoRA layers) equal
 * those of the merged checkpoint, in the inference engine and in the training engine, f32. The adapter goes
 * through lora_save / lora_load first, and B is random so that the merge changes every adapted matrix. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "melodist/lora.h"
#include "testutil.h"

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "merge_adapter";
    struct model_config c = {.dim = 48, .n_layers = 2, .n_heads = 6, .n_kv_heads = 2, .head_dim = 8,
                             .hidden_dim = 96, .vocab_size = 53, .max_position_embeddings = 64, .rope_theta = 10000.0f,
                             .rms_norm_eps = 1e-5f, .bos_token_id = 1, .eos_token_id = 2};
    enum { T = 16 };
    char err[512];
    struct model *m = model_new_random(&c, NN_F32, 3, 0.2f);
    struct lora_config lc = {.r = 8, .alpha = 16, .dropout = 0.1f, .targets = LORA_ALL_TARGETS};
    struct lora *L = lora_new(m, &lc, T, 5, err, sizeof err);
    if (!L) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    uint64_t s = 11;
    for (int i = 0; i < L->n_layers * TRAIN_OUTPUT + 1; i++)
        for (size_t e = 0; L->ad[i].B && e < (size_t)L->ad[i].out * lc.r; e++)
            L->ad[i].B[e] = (float)((double)(train_splitmix64(&s) >> 11) * 0x1p-53 - 0.5) * 0.5f;
    mkdir(dir, 0755);
    if (lora_save(L, dir, "random", err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int32_t tok[T], start[T], pos[T];
    for (int t = 0; t < T; t++)
        tok[t] = (t * 7 + 3) % c.vocab_size, start[t] = 0, pos[t] = t;

    L->training = 0; /* inference: no dropout */
    struct train_model *tm = train_model_new_frozen(m, &L->ops, 1, T, 0, err, sizeof err);
    size_t n = (size_t)T * c.vocab_size;
    float *with_adapter = malloc(sizeof(float) * n), *merged = malloc(sizeof(float) * n);
    train_forward_logits(tm, tok, start, pos, with_adapter);
    train_model_free(tm);

    struct lora *loaded = lora_load(dir, m, err, sizeof err);
    void *owned = NULL;
    if (!loaded || lora_merge(loaded, m, &owned, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct model_state *st = model_state_new(m, T, T);
    if (!model_forward(m, st, tok, T, merged, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    double inference = tu_rel_error(with_adapter, merged, n);
    struct train_model *plain = train_model_new(&c, 1, T, err, sizeof err);
    train_model_copy_from(plain, m, err, sizeof err);
    train_forward_logits(plain, tok, start, pos, merged);
    double training = tu_rel_error(with_adapter, merged, n);
    /* and the adapter did change the model */
    struct model *base = model_new_random(&c, NN_F32, 3, 0.2f);
    struct model_state *st2 = model_state_new(base, T, T);
    model_forward(base, st2, tok, T, merged, err, sizeof err);
    double effect = tu_rel_error(with_adapter, merged, n);
    printf("merged vs base+adapter logits, max |diff| / max |logit|: inference engine %.3e, training engine %.3e; "
           "base alone differs by %.3e\n", inference, training, effect);
    int ok = inference <= 1e-5 && training <= 1e-5 && effect > 1e-2;
    model_state_free(st), model_state_free(st2);
    train_model_free(plain);
    model_free(base), model_free(m);
    lora_free(L), lora_free(loaded);
    free(owned), free(with_adapter), free(merged);
    puts(ok ? "ok" : "FAIL");
    return !ok;
}
