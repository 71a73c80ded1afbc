/* Peak memory and tokens/s of one fine-tuning method on a random-weight InternLM2 model of
 * InternLM2-chat-1.8B's shape (hidden 2048, 16/8 heads, FFN 8192, vocab 92544; LAYERS layers), one sequence
 * of SEQ tokens per step. Run by bench/qlora_memory, one process per method so that each peak is its own.
 *   qlora_memory write DIR LAYERS                    random bf16 checkpoint (written once)
 *   qlora_memory full|lora|qlora DIR SEQ R STEPS     full f32 training / LoRA on the bf16 base / QLoRA (NF4 +
 *                                                    double quantisation), LoRA rank R on every linear layer */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "melodist/lora.h"

static double peak_mb(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_maxrss / 1024.0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "qlora_memory: %s: %s\n", what, err);
    exit(1);
}

int main(int argc, char **argv)
{
    char err[1024];
    if (argc == 4 && !strcmp(argv[1], "write")) {
        struct model_config c = {.dim = 2048, .n_layers = atoi(argv[3]), .n_heads = 16, .n_kv_heads = 8,
                                 .head_dim = 128, .hidden_dim = 8192, .vocab_size = 92544,
                                 .max_position_embeddings = 32768, .rope_theta = 1000000.0f, .rms_norm_eps = 1e-5f,
                                 .bos_token_id = 1, .eos_token_id = 2};
        struct model *m = model_new_random(&c, NN_BF16, 1, 0.02f);
        if (!m || model_save(m, argv[2], NN_BF16, err, sizeof err))
            die("write", m ? err : "out of memory");
        model_free(m);
        return 0;
    }
    if (argc != 6) {
        fprintf(stderr, "usage: qlora_memory write DIR LAYERS | qlora_memory full|lora|qlora DIR SEQ R STEPS\n");
        return 2;
    }
    const char *mode = argv[1];
    int T = atoi(argv[3]), r = atoi(argv[4]), steps = atoi(argv[5]);
    struct model *m;
    if (model_load(argv[2], &m, err, sizeof err))
        die("load", err);
    struct lora *L = NULL;
    struct train_model *tm;
    struct adamw opt;
    size_t trained;
    if (!strcmp(mode, "full")) {
        tm = train_model_new(&m->config, 1, T, err, sizeof err);
        if (!tm || train_model_copy_from(tm, m, err, sizeof err))
            die("model", err);
        model_free(m), m = NULL;
        trained = tm->n_params;
    } else {
        struct lora_config lc = {.r = r, .alpha = 16, .dropout = 0.1f, .targets = LORA_ALL_TARGETS,
                                 .nf4 = !strcmp(mode, "qlora"), .double_quant = 1};
        L = lora_new(m, &lc, T, 1, err, sizeof err);
        tm = L ? train_model_new_frozen(m, &L->ops, 1, T, err, sizeof err) : NULL;
        if (!tm)
            die("adapters", err);
        trained = L->n_params;
    }
    float *params = L ? L->params : tm->params, *grads = L ? L->grads : tm->grads;
    if (adamw_init(&opt, trained))
        die("optimizer", "out of memory");
    int32_t *tok = malloc(sizeof(int32_t) * T), *tgt = malloc(sizeof(int32_t) * T);
    int32_t *start = calloc((size_t)T, sizeof(int32_t)), *pos = malloc(sizeof(int32_t) * T);
    uint64_t s = 7;
    for (int t = 0; t < T; t++)
        tok[t] = (int32_t)(train_splitmix64(&s) % 92544), pos[t] = t;
    for (int t = 0; t < T; t++)
        tgt[t] = t + 1 < T ? tok[t + 1] : -1;
    double before = peak_mb(), t0 = now(), loss = 0;
    struct adamw_config ac = {0.9, 0.999, 1e-8};
    for (int i = 0; i < steps; i++) {
        memset(grads, 0, sizeof(float) * trained);
        loss = train_forward_backward(tm, tok, tgt, start, pos, 1.0f / (float)(T - 1)) / (T - 1);
        adamw_begin_step(&opt);
        adamw_update(&opt, 0, params, grads, trained, 2e-4, 0.0, &ac);
    }
    double dt = now() - t0;
    printf("%-5s layers %d  seq %d  trained params %zu  base weights %.0f MB  peak RSS before the first step %.0f MB, "
           "after %d step%s %.0f MB  %.1f tokens/s  (loss %.3f)\n",
           mode, tm->config.n_layers, T, trained,
           L && L->nf4 ? (double)lora_base_bytes(L) / 1e6 : (double)(L ? model_weight_bytes(m) : tm->n_params * 4) / 1e6,
           before, steps, steps > 1 ? "s" : "", peak_mb(), (double)T * steps / dt, loss);
    free(tok), free(tgt), free(start), free(pos);
    adamw_free(&opt);
    train_model_free(tm);
    lora_free(L);
    model_free(m);
    return 0;
}
