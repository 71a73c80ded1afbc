/* Activation recomputation: a recomputing model's loss and gradients must equal, bit for bit, those of a model
 * that keeps every activation (the same code computes the same values), on the shapes of train_model_gradients
 * (whose gradients train_ref.py checks against PyTorch), and its per-layer activation memory must shrink. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "melodist/train.h"

struct shape {
    const char *tag;
    int dim, layers, heads, kv_heads, hidden, vocab, tie, B, T;
};

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Two accumulated micro-batches (as model_dump), returning the seconds they took. */
static double steps(struct train_model *tm, const int32_t *tok, const int32_t *tgt, const int32_t *start,
                    const int32_t *pos, double *loss)
{
    double t0 = seconds();
    *loss = train_forward_backward(tm, tok, tgt, start, pos, 0.01f);
    *loss += train_forward_backward(tm, tok, tgt, start, pos, 0.01f);
    return seconds() - t0;
}

static int check(const struct shape *s, double min_ratio)
{
    struct model_config c = {.dim = s->dim, .n_layers = s->layers, .n_heads = s->heads, .n_kv_heads = s->kv_heads,
                             .head_dim = s->dim / s->heads, .hidden_dim = s->hidden, .vocab_size = s->vocab,
                             .max_position_embeddings = 512, .rope_theta = 10000.0f, .rms_norm_eps = 1e-5f,
                             .tie_word_embeddings = s->tie, .bos_token_id = 1, .eos_token_id = 2};
    char err[256];
    struct train_model *tm[2];
    for (int r = 0; r < 2; r++) {
        tm[r] = train_model_new_recompute(&c, s->B, s->T, r, err, sizeof err);
        if (!tm[r] || train_model_init_random(tm[r], 42, 0.2f, err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", s->tag, err);
            return 1;
        }
    }
    int N = s->B * s->T;
    int32_t *tok = malloc(sizeof(int32_t) * N), *tgt = malloc(sizeof(int32_t) * N);
    int32_t *start = malloc(sizeof(int32_t) * N), *pos = malloc(sizeof(int32_t) * N);
    srand(7);
    for (int i = 0; i < N; i++) {
        int t = i % s->T, doc = t < s->T / 2 ? 0 : s->T / 2; /* two documents per row */
        start[i] = doc, pos[i] = t - doc;
        tok[i] = rand() % s->vocab;
        tgt[i] = t + 1 == s->T || t + 1 == s->T / 2 ? -1 : rand() % s->vocab;
    }
    double loss[2], secs[2];
    for (int r = 0; r < 2; r++)
        secs[r] = steps(tm[r], tok, tgt, start, pos, &loss[r]);
    int fail = 0;
    if (loss[0] != loss[1] || memcmp(tm[0]->grads, tm[1]->grads, sizeof(float) * tm[0]->n_params)) {
        size_t i = 0;
        while (i < tm[0]->n_params && tm[0]->grads[i] == tm[1]->grads[i])
            i++;
        fprintf(stderr, "%s: recompute changed the result: loss %.9g vs %.9g, first differing gradient %zu\n",
                s->tag, loss[0], loss[1], i);
        fail = 1;
    }
    double ratio = (double)tm[0]->layer_act_floats / tm[1]->layer_act_floats;
    printf("%s: %d layers, N=%d: loss %.6g, gradients %s; layer activations %.2f MB -> %.2f MB (%.2fx), whole arena "
           "%.2f MB -> %.2f MB; time %.3f s -> %.3f s (%.2fx)\n",
           s->tag, s->layers, N, loss[0], fail ? "DIFFER" : "identical", tm[0]->layer_act_floats * 4e-6, tm[1]->layer_act_floats * 4e-6, ratio,
           tm[0]->arena_floats * 4e-6, tm[1]->arena_floats * 4e-6, secs[0], secs[1], secs[1] / secs[0]);
    if (ratio < min_ratio) {
        fprintf(stderr, "%s: layer activation memory only %.2fx lower (want >= %.1fx)\n", s->tag, ratio, min_ratio);
        fail = 1;
    }
    free(tok), free(tgt), free(start), free(pos);
    train_model_free(tm[0]), train_model_free(tm[1]);
    return fail;
}

int main(void)
{
    /* The train_model_gradients shapes, then a 6-layer model whose activations must be >= 3x smaller. */
    static const struct shape shapes[] = {
        {"mha", 32, 2, 4, 4, 48, 37, 0, 2, 12},
        {"gqa_tied", 48, 2, 6, 2, 64, 29, 1, 2, 16}, {"gqa_untied", 48, 2, 6, 2, 64, 29, 0, 2, 16},
        {"mqa", 32, 3, 2, 1, 40, 41, 0, 1, 20},
        {"six_layers", 128, 6, 4, 2, 344, 300, 0, 2, 128},
    };
    int fail = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        fail |= check(&shapes[i], shapes[i].layers >= 6 ? 3.0 : 1.0);
    return fail;
}
