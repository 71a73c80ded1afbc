/* Peak memory and tokens/s of one fine-tuning method on a random-weight InternLM2 model of
 * InternLM2-chat-1.8B's shape (hidden 2048, 16/8 heads, FFN 8192, vocab 92544; LAYERS layers), one sequence
 * of SEQ tokens per step. Run by bench/qlora_memory, one process per method so that each peak is its own.
 *   qlora_memory write DIR LAYERS                    random bf16 checkpoint (written once)
 *   qlora_memory full|lora|qlora DIR SEQ R STEPS [OPTION...]
 *       full f32 training / LoRA on the bf16 base / QLoRA (NF4 + double quantisation), LoRA rank R on every
 *       linear layer; OPTION: recompute (activation checkpointing), nf4-head (QLoRA: the output head in NF4
 *       too), adamw8bit (bitsandbytes' 8-bit AdamW moments), bf16-adapters (LoRA weights and gradients in bf16).
 * The peak splits into "fixed" (measured: the resident memory after the steps once the activations and the
 * scratch are freed: weights, adapters, gradients, optimizer state) and "activations" (peak - fixed). */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "melodist/lora.h"

/* VmRSS or VmHWM of this process, in MB (10^6 bytes). */
static double status_mb(const char *field)
{
    char line[256];
    double kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, strlen(field)))
            kb = atof(line + strlen(field) + 1);
    if (f)
        fclose(f);
    return kb * 1024.0 / 1e6;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
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
    if (argc < 6) {
        fprintf(stderr, "usage: qlora_memory write DIR LAYERS | qlora_memory full|lora|qlora DIR SEQ R STEPS "
                "[recompute] [nf4-head] [adamw8bit] [bf16-adapters]\n");
        return 2;
    }
    const char *mode = argv[1];
    int T = atoi(argv[3]), r = atoi(argv[4]), steps = atoi(argv[5]), recompute = 0, nf4_head = 0, adamw8 = 0, bf16 = 0;
    char options[256] = "";
    for (int i = 6; i < argc; i++) {
        if (!strcmp(argv[i], "recompute"))
            recompute = 1;
        else if (!strcmp(argv[i], "nf4-head"))
            nf4_head = 1;
        else if (!strcmp(argv[i], "adamw8bit"))
            adamw8 = 1;
        else if (!strcmp(argv[i], "bf16-adapters"))
            bf16 = 1;
        else
            die("option", argv[i]);
        snprintf(options + strlen(options), sizeof options - strlen(options), "%s%s", *options ? "," : "", argv[i]);
    }
    struct model *m;
    if (model_load(argv[2], &m, err, sizeof err))
        die("load", err);
    struct lora *L = NULL;
    struct train_model *tm;
    struct adamw opt;
    size_t trained;
    if (!strcmp(mode, "full")) {
        tm = train_model_new_recompute(&m->config, 1, T, recompute, err, sizeof err);
        if (!tm || train_model_copy_from(tm, m, err, sizeof err))
            die("model", err);
        model_free(m), m = NULL;
        trained = tm->n_params;
    } else {
        struct lora_config lc = {.r = r, .alpha = 16, .dropout = 0.1f, .targets = LORA_ALL_TARGETS,
                                 .nf4 = !strcmp(mode, "qlora"), .double_quant = 1, .nf4_output = nf4_head,
                                 .bf16 = bf16};
        L = lora_new(m, &lc, T, 1, err, sizeof err);
        tm = L ? train_model_new_frozen(m, &L->ops, 1, T, recompute, err, sizeof err) : NULL;
        if (!tm)
            die("adapters", err);
        trained = L->n_params;
    }
    if ((adamw8 ? adamw_init_8bit : adamw_init)(&opt, trained))
        die("optimizer", "out of memory");
    int32_t *tok = malloc(sizeof(int32_t) * T), *tgt = malloc(sizeof(int32_t) * T);
    int32_t *start = calloc((size_t)T, sizeof(int32_t)), *pos = malloc(sizeof(int32_t) * T);
    uint64_t s = 7;
    for (int t = 0; t < T; t++)
        tok[t] = (int32_t)(train_splitmix64(&s) % 92544), pos[t] = t;
    for (int t = 0; t < T; t++)
        tgt[t] = t + 1 < T ? tok[t + 1] : -1;
    double before = status_mb("VmRSS:"), t0 = now(), c0 = cpu_now(), loss = 0;
    struct adamw_config ac = {0.9, 0.999, 1e-8};
    for (int i = 0; i < steps; i++) {
        if (L)
            lora_zero_grads(L);
        else
            memset(tm->grads, 0, sizeof(float) * trained);
        loss = train_forward_backward(tm, tok, tgt, start, pos, 1.0f / (float)(T - 1)) / (T - 1);
        if (L) {
            lora_optimizer_step(L, &opt, 2e-4, 0.0, &ac, 1.0f);
        } else {
            adamw_begin_step(&opt);
            adamw_update(&opt, 0, tm->params, tm->grads, trained, 2e-4, 0.0, &ac);
        }
    }
    double dt = now() - t0, cpu = cpu_now() - c0, peak = status_mb("VmHWM:");
    size_t acts = tm->arena_floats * sizeof(float);
    int layers = tm->config.n_layers;
    /* what stays once the activations and the scratch are gone: weights, adapters, gradients, moments */
    tm->arena = (free(tm->arena), NULL);
    if (L)
        L->scratch = (free(L->scratch), NULL);
    malloc_trim(0);
    double fixed = status_mb("VmRSS:");
    double loadavg = 0;
    FILE *la = fopen("/proc/loadavg", "r");
    if (la && fscanf(la, "%lf", &loadavg) != 1)
        loadavg = 0;
    if (la)
        fclose(la);
    printf("%-5s %-10s layers %2d seq %d  trained %10zu  peak %6.0f MB = fixed %6.0f + activations %5.0f  "
           "(before step %6.0f, planned activation arena %5.0f)  %6.1f tok/s wall, %6.1f tok/cpu-s  load %.1f  "
           "loss %.3f\n",
           mode, *options ? options : "-", layers, T, trained, peak, fixed, peak - fixed, before, (double)acts / 1e6,
           (double)T * steps / dt, (double)T * steps / cpu, loadavg, loss);
    /* the fixed part by component, from the sizes of the buffers; "other" is the rest of the measured figure
     * (embedding rows read, norms, the program) */
    const char *which = !L ? "none frozen" : !L->nf4 ? "decoder and head, bf16" : nf4_head ? "decoder and head, NF4"
                                                                                           : "decoder, NF4";
    double weights = !L ? 0.0 : L->nf4 ? (double)lora_base_bytes(L)
                                       : (double)(model_weight_bytes(m) - nn_matrix_bytes(&m->tok_embeddings));
    double head = L && L->nf4 && !nf4_head ? (double)nn_matrix_bytes(&m->output) : 0.0;
    double state = (double)trained * 2 * (bf16 ? sizeof(uint16_t) : sizeof(float));
    double blocks = (double)((trained + ADAMW8_BLOCK - 1) / ADAMW8_BLOCK);
    double moments = adamw8 ? (double)trained * 2 + blocks * 2 * sizeof(float) : (double)trained * 2 * sizeof(float);
    printf("      fixed %6.0f MB = base matrices %6.0f (%s) + bf16 output head %5.0f + trained parameters and "
           "gradients %6.0f + AdamW moments %6.0f + other %4.0f\n",
           fixed, weights / 1e6, which, head / 1e6, state / 1e6, moments / 1e6,
           fixed - (weights + head + state + moments) / 1e6);
    free(tok), free(tgt), free(start), free(pos);
    adamw_free(&opt);
    train_model_free(tm);
    lora_free(L);
    model_free(m);
    return 0;
}
