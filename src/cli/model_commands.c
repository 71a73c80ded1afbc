/* melodist info / melodist quantize: inspect an InternLM2 checkpoint, rewrite it as f32/f16/bf16/q8/q4. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "melodist/fileio.h"
#include "melodist/model.h"

static void info_usage(FILE *out)
{
    fprintf(out, "usage: melodist info -m MODEL_DIR\n"
                 "  Prints the configuration, parameter count, weight format and memory needs of a checkpoint\n"
                 "  (config.json + model.safetensors or model.safetensors.index.json).\n");
}

static void quantize_usage(FILE *out)
{
    fprintf(out, "usage: melodist quantize -m MODEL_DIR -o OUT_DIR --type q8|q4|bf16|f16|f32\n"
                 "  Writes OUT_DIR/config.json and OUT_DIR/model.safetensors with every weight matrix in the\n"
                 "  given format (q8: int8, q4: 4-bit; blocks of 32 with f16 scales, see docs/model.md).\n"
                 "  OUT_DIR also receives a copy of MODEL_DIR/tokenizer.model when there is one.\n");
}

static struct model *load(const char *cmd, const char *dir)
{
    char err[1024];
    struct model *m = NULL;
    if (!dir) {
        fprintf(stderr, "melodist %s: missing -m MODEL_DIR\n", cmd);
        return NULL;
    }
    if (model_load(dir, &m, err, sizeof err))
        fprintf(stderr, "melodist %s: cannot load the model: %s\n", cmd, err);
    return m;
}

static void print_bytes(const char *label, double bytes)
{
    printf("%-22s %.2f MiB\n", label, bytes / (1024.0 * 1024.0));
}

int cmd_info(int argc, char **argv)
{
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc) {
            dir = argv[++i];
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            info_usage(stdout);
            return 0;
        } else {
            info_usage(stderr);
            return 2;
        }
    }
    struct model *m = load("info", dir);
    if (!m)
        return 1;
    const struct model_config *c = &m->config;
    static const char *scaling[] = {"none", "linear", "dynamic NTK"};
    printf("%-22s InternLM2ForCausalLM\n", "architecture");
    printf("%-22s %d\n%-22s %d\n%-22s %d\n%-22s %d\n%-22s %d\n%-22s %d\n%-22s %d\n", "hidden_size", c->dim,
           "num_hidden_layers", c->n_layers, "num_attention_heads", c->n_heads, "num_key_value_heads",
           c->n_kv_heads, "head_dim", c->head_dim, "intermediate_size", c->hidden_dim, "vocab_size", c->vocab_size);
    printf("%-22s %d\n%-22s %g\n%-22s %s", "max_position_embeddings", c->max_position_embeddings, "rope_theta",
           c->rope_theta, "rope_scaling", scaling[c->rope_scaling]);
    if (c->rope_scaling != ROPE_SCALING_NONE)
        printf(" (factor %g)", c->rope_factor);
    printf("\n%-22s %g\n%-22s %s\n%-22s %d / %d\n", "rms_norm_eps", c->rms_norm_eps, "tie_word_embeddings",
           c->tie_word_embeddings ? "true" : "false", "bos / eos token", c->bos_token_id, c->eos_token_id);
    size_t params = model_param_count(m);
    printf("%-22s %zu (%.3f B)\n%-22s %s\n", "parameters", params, params / 1e9, "weight format",
           nn_dtype_name(model_dtype(m)));
    print_bytes("weights", (double)model_weight_bytes(m));
    double kv_token = 2.0 * c->n_layers * c->n_kv_heads * c->head_dim * sizeof(float);
    printf("%-22s %.1f KiB per token (f32)\n", "KV cache", kv_token / 1024);
    print_bytes("KV cache at max pos.", kv_token * c->max_position_embeddings);
    for (size_t i = 0; i < m->files.count; i++)
        printf("%-22s %s (%zu tensors)\n", i ? "" : "files", m->files.files[i].path, m->files.files[i].count);
    printf("%-22s %s, %d threads\n", "kernels", nn_simd_name(), nn_threads());
    model_free(m);
    return 0;
}

static int copy_file(const char *from, const char *to, char *err, size_t errlen)
{
    FILE *in = fopen(from, "rb");
    if (!in) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "%s", strerror(errno));
        return -1;
    }
    char tmp[PATH_MAX + 32];
    FILE *out = file_create_tmp(to, tmp, sizeof tmp, err, errlen);
    if (!out) {
        fclose(in);
        return -1;
    }
    char buf[65536];
    size_t n;
    int ok = 1;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    ok = ok && !ferror(in);
    fclose(in);
    return file_commit(out, ok, tmp, to, err, errlen);
}

int cmd_quantize(int argc, char **argv)
{
    const char *dir = NULL, *out = NULL, *type = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc) {
            dir = argv[++i];
        } else if (!strcmp(argv[i], "-o") && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(argv[i], "--type") && i + 1 < argc) {
            type = argv[++i];
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            quantize_usage(stdout);
            return 0;
        } else {
            quantize_usage(stderr);
            return 2;
        }
    }
    static const enum nn_dtype types[] = {NN_F32, NN_F16, NN_BF16, NN_Q8, NN_Q4};
    int t = -1;
    for (int i = 0; type && i < 5; i++)
        if (!strcmp(type, nn_dtype_name(types[i])))
            t = i;
    if (!out || t < 0) {
        fprintf(stderr, "melodist quantize: need -o OUT_DIR and --type q8|q4|bf16|f16|f32\n");
        return 2;
    }
    struct model *m = load("quantize", dir);
    if (!m)
        return 1;
    char err[1024], from[PATH_MAX], to[PATH_MAX];
    int rc = model_save(m, out, types[t], err, sizeof err);
    if (rc) {
        fprintf(stderr, "melodist quantize: %s\n", err);
    } else {
        snprintf(from, sizeof from, "%s/tokenizer.model", dir);
        snprintf(to, sizeof to, "%s/tokenizer.model", out);
        if (copy_file(from, to, err, sizeof err)) {
            fprintf(stderr, "melodist quantize: cannot copy %s to %s: %s\n", from, to, err);
            rc = 1;
        } else {
            fprintf(stderr, "melodist quantize: wrote %s (%s)\n", out, type);
        }
    }
    model_free(m);
    return rc ? 1 : 0;
}
