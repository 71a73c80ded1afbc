/* Prefill and decode speed of the InternLM2 engine on random-weight models, and the decode roofline:
 * the weight bytes read per decoded token divided by the measured memory copy bandwidth gives the fastest
 * possible token time; achieved fraction = that bound / measured time per token.
 * usage: bench_decode SHAPE FORMAT [PROMPT_TOKENS] [DECODE_TOKENS] [SAVE_DIR]
 *   SHAPE: 1.8b (InternLM2-chat-1.8B: 2048 hidden, 24 layers, 16/8 heads, 8192 ffn, 92544 vocab)
 *          small (~9M params: 256 hidden, 6 layers, 8/4 heads, 768 ffn, 8192 vocab)
 *   FORMAT: f32 f16 bf16 q8 q4
 *   SAVE_DIR: also write the model there (config.json + model.safetensors), e.g. for bench/to_gguf.py */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "melodist/model.h"

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double now(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

/* Processor time of the process. With one thread, tokens per cpu second estimates the speed on a machine
 * shared with other jobs (time spent waiting for the core is not counted; memory contention still is). With
 * more threads it would not: a thread waiting for a descheduled partner uses no processor time. */
static double cpu(void)
{
    return clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

struct copy_job {
    char *dst;
    const char *src;
    size_t bytes;
};

static void copy_part(void *ctx, int begin, int end, int thread)
{
    struct copy_job *j = ctx;
    (void)thread;
    size_t chunk = j->bytes / 64;
    memcpy(j->dst + begin * chunk, j->src + begin * chunk, (size_t)(end - begin) * chunk);
}

/* STREAM-style copy bandwidth (bytes read + bytes written per second), all pool threads, best of 5. */
static double copy_bandwidth(void)
{
    size_t bytes = (size_t)512 << 20;
    char *a = malloc(bytes), *b = malloc(bytes);
    if (!a || !b)
        return 0;
    memset(a, 1, bytes), memset(b, 2, bytes);
    struct copy_job job = {b, a, bytes};
    double best = 1e9;
    for (int rep = 0; rep < 5; rep++) {
        double t = now();
        nn_parallel_for(64, copy_part, &job);
        t = now() - t;
        best = t < best ? t : best;
    }
    free(a), free(b);
    return 2.0 * bytes / best;
}

static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_decode 1.8b|small f32|f16|bf16|q8|q4 [PROMPT_TOKENS] [DECODE_TOKENS] [SAVE_DIR]\n");
        return 2;
    }
    struct model_config big = {.dim = 2048, .n_layers = 24, .n_heads = 16, .n_kv_heads = 8, .head_dim = 128,
                               .hidden_dim = 8192, .vocab_size = 92544, .max_position_embeddings = 32768,
                               .rope_theta = 1e6f, .rope_scaling = ROPE_SCALING_DYNAMIC, .rope_factor = 2,
                               .rms_norm_eps = 1e-5f, .bos_token_id = 1, .eos_token_id = 2};
    struct model_config small = {.dim = 256, .n_layers = 6, .n_heads = 8, .n_kv_heads = 4, .head_dim = 32,
                                 .hidden_dim = 768, .vocab_size = 8192, .max_position_embeddings = 2048,
                                 .rope_theta = 1e6f, .rms_norm_eps = 1e-5f, .bos_token_id = 1, .eos_token_id = 2};
    struct model_config *c = !strcmp(argv[1], "small") ? &small : &big;
    static const enum nn_dtype types[] = {NN_F32, NN_F16, NN_BF16, NN_Q8, NN_Q4};
    int t = -1;
    for (int i = 0; i < 5; i++)
        if (!strcmp(argv[2], nn_dtype_name(types[i])))
            t = i;
    int n_prompt = argc > 3 ? atoi(argv[3]) : 128, n_decode = argc > 4 ? atoi(argv[4]) : 32;
    if (t < 0 || n_prompt < 1 || n_decode < 1) {
        fprintf(stderr, "bench_decode: bad format or token counts\n");
        return 2;
    }
    double bw = copy_bandwidth();
    double t0 = now();
    struct model *m = model_new_random(c, types[t], 1234, 0.02f);
    if (!m) {
        fprintf(stderr, "bench_decode: out of memory for the model\n");
        return 1;
    }
    double t_init = now() - t0;
    char err[256];
    if (argc > 5 && model_save(m, argv[5], types[t], err, sizeof err)) {
        fprintf(stderr, "bench_decode: %s\n", err);
        return 1;
    }
    struct model_state *s = model_state_new(m, n_prompt + n_decode + 1, 512);
    int *prompt = malloc((size_t)n_prompt * sizeof *prompt);
    for (int i = 0; i < n_prompt; i++)
        prompt[i] = (int)((i * 2654435761u) % (unsigned)c->vocab_size); /* the ids bench/llama_cpp.mjs uses */
    t0 = now();
    double c0 = cpu();
    const float *logits = model_forward(m, s, prompt, n_prompt, NULL, err, sizeof err);
    double t_prefill = now() - t0, c_prefill = cpu() - c0;
    t0 = now(), c0 = cpu();
    for (int i = 0; i < n_decode && logits; i++) {
        int tok = argmax(logits, c->vocab_size);
        logits = model_forward(m, s, &tok, 1, NULL, err, sizeof err);
    }
    double t_decode = now() - t0, c_decode = cpu() - c0;
    int threads = nn_threads();
    if (!logits) {
        fprintf(stderr, "bench_decode: %s\n", err);
        return 1;
    }
    /* Per decoded token every matrix is read once, except the embedding table (one row). */
    double per_token = (double)model_weight_bytes(m) -
                       (c->tie_word_embeddings ? 0 : (double)nn_matrix_bytes(&m->tok_embeddings));
    double tok_s = n_decode / t_decode, bound = per_token / bw;
    printf("%-5s %-4s params %.3fB weights %.0f MiB | prefill %d tok %.1f tok/s | decode %d tok %.2f tok/s | copy bw "
           "%.1f GB/s, %.0f MB/token -> roofline %.2f tok/s, achieved %.0f%% | %s %d threads, init %.1fs",
           argv[1], argv[2], model_param_count(m) / 1e9, model_weight_bytes(m) / 1048576.0, n_prompt,
           n_prompt / t_prefill, n_decode, tok_s, bw / 1e9, per_token / 1e6, 1 / bound, 100 * bound * tok_s,
           nn_simd_name(), threads, t_init);
    if (threads == 1)
        printf(" | per cpu-second: prefill %.1f tok/s, decode %.2f tok/s", n_prompt / c_prefill, n_decode / c_decode);
    printf("\n");
    free(prompt);
    model_state_free(s);
    model_free(m);
    return 0;
}
