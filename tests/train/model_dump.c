/* One training step's loss and every parameter gradient of small random models, dumped with the weights
 * (DIR/model.safetensors + config.json) for train_ref.py model, which recomputes them with autograd. */
#include <stdlib.h>
#include <sys/stat.h>

#include "melodist/train.h"
#include "tdump.h"

struct shape {
    const char *tag;
    int dim, layers, heads, kv_heads, hidden, vocab, tie, B, T;
};

static int dump_case(const char *dir, const struct shape *s)
{
    struct model_config c = {.dim = s->dim, .n_layers = s->layers, .n_heads = s->heads, .n_kv_heads = s->kv_heads,
                             .head_dim = s->dim / s->heads, .hidden_dim = s->hidden, .vocab_size = s->vocab,
                             .max_position_embeddings = 64, .rope_theta = 10000.0f, .rms_norm_eps = 1e-5f,
                             .tie_word_embeddings = s->tie, .bos_token_id = 1, .eos_token_id = 2};
    char err[256], path[512];
    struct train_model *tm = train_model_new(&c, s->B, s->T, err, sizeof err);
    if (!tm || train_model_init_random(tm, 42, 0.2f, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", s->tag, err);
        return 1;
    }
    for (int i = 0; i < tm->n_tensors; i++) /* norms away from 1, so that their gradients matter */
        if (!tm->tensors[i].cols)
            trng_fill(tm->params + tm->tensors[i].offset, tm->tensors[i].size, 0.5f);
    for (int i = 0; i < tm->n_tensors; i++)
        if (!tm->tensors[i].cols)
            for (size_t j = 0; j < tm->tensors[i].size; j++)
                tm->params[tm->tensors[i].offset + j] += 1.0f;
    int N = s->B * s->T, valid = 0;
    int32_t *tok = malloc(sizeof(int32_t) * N), *tgt = malloc(sizeof(int32_t) * N);
    int32_t *start = malloc(sizeof(int32_t) * N), *pos = malloc(sizeof(int32_t) * N);
    for (int b = 0; b < s->B; b++) {
        int doc = 0;
        for (int t = 0; t < s->T; t++) {
            int i = b * s->T + t;
            if (t > 0 && trng_uniform() < 0.1f)
                doc = t;
            start[i] = doc, pos[i] = t - doc;
            tok[i] = (int32_t)(trng_uniform() * s->vocab) % s->vocab;
        }
        for (int t = 0; t < s->T; t++) {
            int i = b * s->T + t, crosses = t + 1 == s->T || start[i + 1] != start[i];
            tgt[i] = crosses || trng_uniform() < 0.2f ? -1 : tok[i + 1];
            valid += tgt[i] >= 0;
        }
    }
    /* Twice with half the scale: the gradients must accumulate. */
    double loss = train_forward_backward(tm, tok, tgt, start, pos, 0.5f / (float)valid);
    train_forward_backward(tm, tok, tgt, start, pos, 0.5f / (float)valid);
    float mean = (float)(loss / valid);
    snprintf(path, sizeof path, "%s/%s", dir, s->tag);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/model.safetensors", dir, s->tag);
    if (train_model_save(tm, path, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    char *json = model_config_json(&c);
    snprintf(path, sizeof path, "%s/%s/config.json", dir, s->tag);
    FILE *f = fopen(path, "w");
    fputs(json, f);
    fclose(f);
    free(json);
    snprintf(path, sizeof path, "%s/%s/grads.bin", dir, s->tag);
    f = tdump_open(path);
    TDUMP_I32(f, "tokens", tok, s->B, s->T);
    TDUMP_I32(f, "targets", tgt, s->B, s->T);
    TDUMP_I32(f, "start", start, s->B, s->T);
    TDUMP_F32(f, "loss", &mean, 1);
    for (int i = 0; i < tm->n_tensors; i++)
        TDUMP_F32(f, tm->tensors[i].name, tm->grads + tm->tensors[i].offset, (int64_t)tm->tensors[i].size);
    fclose(f);
    free(tok), free(tgt), free(start), free(pos);
    train_model_free(tm);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: train_model_dump DIR\n");
        return 2;
    }
    static const struct shape shapes[] = {
        {"mha", 32, 2, 4, 4, 48, 37, 0, 2, 12},
        {"gqa_tied", 48, 2, 6, 2, 64, 29, 1, 2, 16}, {"gqa_untied", 48, 2, 6, 2, 64, 29, 0, 2, 16},
        {"mqa", 32, 3, 2, 1, 40, 41, 0, 1, 20},
        {"gqa_rows", 32, 2, 4, 2, 48, 37, 0, 3, 40}, /* more rows than one chunk of logits (TRAIN_LOGIT_ROWS) */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (dump_case(argv[1], &shapes[i]))
            return 1;
    return 0;
}
