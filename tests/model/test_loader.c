/* Bad checkpoints must give a clear message (checked by keyword) and an error return, never a crash.
 * usage: test_loader WORK_DIR */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "melodist/model.h"
#include "testutil.h"

static const char *work;

static void expect_load_error(const char *label, const char *dir, const char *keyword)
{
    char err[512] = "";
    struct model *m = NULL;
    int rc = model_load(dir, &m, err, sizeof err);
    int ok = rc != 0 && m == NULL && strstr(err, keyword) != NULL;
    printf("%-5s %-26s %s\n", ok ? "ok" : "FAIL", label, err);
    tu_failures += !ok;
    model_free(m);
}

static void expect_parse_error(const char *label, const void *buf, size_t size, const char *keyword)
{
    char err[512] = "";
    struct st_file f;
    int rc = st_parse(buf, size, &f, err, sizeof err);
    int ok = rc != 0 && strstr(err, keyword) != NULL;
    printf("%-5s %-26s %s\n", ok ? "ok" : "FAIL", label, err);
    tu_failures += !ok;
    if (!rc)
        st_close(&f);
}

static void write_file(const char *dir, const char *name, const void *data, size_t n)
{
    char path[1024];
    mkdir(dir, 0777);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

static const char *sub(const char *name)
{
    static char path[8][1024];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, 1024, "%s/%s", work, name);
    return p;
}

/* A safetensors image: 8-byte length + header text padded to 8 + data. */
static size_t image(uint8_t *buf, const char *header, size_t data_bytes)
{
    size_t n = strlen(header), padded = (n + 7) & ~(size_t)7;
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)(padded >> (8 * i));
    memcpy(buf + 8, header, n);
    memset(buf + 8 + n, ' ', padded - n);
    memset(buf + 8 + padded, 0, data_bytes);
    return 8 + padded + data_bytes;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_loader WORK_DIR\n");
        return 2;
    }
    work = argv[1];
    if (mkdir(work, 0777) && errno != EEXIST) {
        perror(work);
        return 1;
    }
    struct model_config c = {.dim = 64, .n_layers = 1, .n_heads = 4, .n_kv_heads = 2, .head_dim = 16,
                             .hidden_dim = 64, .vocab_size = 50, .max_position_embeddings = 64,
                             .rope_theta = 10000, .rms_norm_eps = 1e-5f, .bos_token_id = 1, .eos_token_id = 2};
    char err[512];
    struct model *good = model_new_random(&c, NN_F32, 1, 0.02f);
    if (!good || model_save(good, sub("good"), NN_F32, err, sizeof err)) {
        fprintf(stderr, "cannot create the valid model: %s\n", good ? err : "out of memory");
        return 1;
    }
    model_free(good);
    struct model *m = NULL;
    if (model_load(sub("good"), &m, err, sizeof err)) {
        fprintf(stderr, "FAIL the valid model does not load: %s\n", err);
        return 1;
    }
    model_free(m);

    size_t cfg_len, st_len;
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", sub("good"));
    char *cfg = tu_read_file(path, &cfg_len);
    snprintf(path, sizeof path, "%s/model.safetensors", sub("good"));
    char *st = tu_read_file(path, &st_len);
    if (!cfg || !st)
        return 1;

    expect_load_error("missing directory", sub("nowhere"), "not a model directory");
    write_file(sub("no_weights"), "config.json", cfg, cfg_len);
    expect_load_error("missing weights", sub("no_weights"), "no model.safetensors");
    write_file(sub("bad_json"), "config.json", "{\"hidden_size\": 64,", 19);
    expect_load_error("bad config JSON", sub("bad_json"), "config.json: line 1");
    const char *llama = "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64}";
    write_file(sub("llama"), "config.json", llama, strlen(llama));
    expect_load_error("unknown architecture", sub("llama"), "unknown architecture 'LlamaForCausalLM'");

    write_file(sub("truncated"), "config.json", cfg, cfg_len);
    write_file(sub("truncated"), "model.safetensors", st, st_len - 100);
    expect_load_error("truncated weights", sub("truncated"), "truncated");
    write_file(sub("short"), "config.json", cfg, cfg_len);
    write_file(sub("short"), "model.safetensors", st, 5);
    expect_load_error("5-byte weights file", sub("short"), "too short");

    uint8_t huge[16] = {0, 0, 0, 0, 0, 1, 0, 0, '{', '}'};
    write_file(sub("huge_header"), "config.json", cfg, cfg_len);
    write_file(sub("huge_header"), "model.safetensors", huge, sizeof huge);
    expect_load_error("oversize header", sub("huge_header"), "exceeds");

    char *shape_cfg = malloc(cfg_len + 16);
    char *at = strstr(memcpy(shape_cfg, cfg, cfg_len + 1), "\"intermediate_size\": 64");
    memcpy(at, "\"intermediate_size\": 96", 23);
    write_file(sub("shape"), "config.json", shape_cfg, cfg_len);
    write_file(sub("shape"), "model.safetensors", st, st_len);
    expect_load_error("shape mismatch", sub("shape"), "shape does not match");
    free(shape_cfg);

    int32_t ints[50 * 64] = {0};
    struct st_out wrong = {"model.tok_embeddings.weight", ST_I32, 2, {50, 64}, ints};
    snprintf(path, sizeof path, "%s/model.safetensors", sub("dtype"));
    write_file(sub("dtype"), "config.json", cfg, cfg_len);
    if (st_write(path, &wrong, 1, NULL, 0, err, sizeof err))
        fprintf(stderr, "st_write: %s\n", err), tu_failures++;
    expect_load_error("dtype mismatch", sub("dtype"), "dtype I32 not supported");

    struct st_out only_norm = {"model.norm.weight", ST_F32, 1, {64}, ints};
    snprintf(path, sizeof path, "%s/model.safetensors", sub("missing_tensor"));
    write_file(sub("missing_tensor"), "config.json", cfg, cfg_len);
    if (st_write(path, &only_norm, 1, NULL, 0, err, sizeof err))
        fprintf(stderr, "st_write: %s\n", err), tu_failures++;
    expect_load_error("missing tensor", sub("missing_tensor"), "has no tensor 'model.tok_embeddings.weight'");

    const char *index = "{\"weight_map\": {\"model.norm.weight\": \"../../etc/passwd\"}}";
    write_file(sub("index"), "config.json", cfg, cfg_len);
    write_file(sub("index"), "model.safetensors.index.json", index, strlen(index));
    expect_load_error("shard path escape", sub("index"), "not a plain file name");

    /* safetensors images whose header is wrong: label, header, data bytes after it, keyword of the error */
    static const struct {
        const char *label, *header;
        size_t data_bytes;
        const char *keyword;
    } bad_headers[] = {
        {"overlapping tensors",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         12, "overlaps"},
        {"bytes after the tensors",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
         16, "after the last tensor"},
        {"size/shape mismatch",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}",
         8, "byte size"},
        {"duplicate name",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
         16, "twice"},
        {"unknown dtype",
         "{\"a\":{\"dtype\":\"Q9\",\"shape\":[2],\"data_offsets\":[0,8]}}",
         8, "unsupported dtype 'Q9'"},
        {"negative dimension",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}",
         8, "non-negative"},
        {"shape overflow",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}",
         8, "byte size"},
        {"header not an object",
         "[1,2]",
         0, "does not start with '{'"},
        {"header JSON cut short",
         "{\"a\":",
         0, "header JSON"},
    };
    static uint8_t buf[4096];
    for (size_t i = 0; i < sizeof bad_headers / sizeof *bad_headers; i++) {
        size_t n = image(buf, bad_headers[i].header, bad_headers[i].data_bytes);
        expect_parse_error(bad_headers[i].label, buf, n, bad_headers[i].keyword);
    }

    free(cfg);
    free(st);
    if (tu_failures)
        fprintf(stderr, "%d failures\n", tu_failures);
    return tu_failures ? 1 : 0;
}
