/* GGUF tests.
 *   gguf_tool roundtrip DIR                       writer -> reader: every value type, arrays, tensors of each type
 *   gguf_tool check MODEL_DIR TOKENIZER FILE      an exported model against its checkpoint and tokenizer
 *   gguf_tool corrupt FILE DIR                    truncated and bit-flipped copies: clear errors, no crash
 * Exit 0 when everything holds; failures are listed on stderr. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/gguf.h"
#include "melodist/tokenizer.h"
#include "testutil.h"

/* ---- roundtrip ---- */

static float value_at(int tensor, uint64_t row, uint64_t col)
{
    return sinf((float)(tensor * 1000 + row * 37 + col) * 0.1f) * (1.0f + (float)(col % 7));
}

static int fill_rows(void *ctx, int tensor, uint64_t row, void *dst, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    const uint64_t *cols = ctx;
    enum gguf_ttype types[] = {GGUF_F32, GGUF_F16, GGUF_BF16, GGUF_Q8_0, GGUF_Q4_0};
    enum gguf_ttype t = types[tensor];
    float x[64];
    for (uint64_t c = 0; c < cols[tensor]; c++)
        x[c] = value_at(tensor, row, c);
    unsigned char *out = dst;
    int n = (int)cols[tensor];
    for (int i = 0; i < n; i++) {
        uint16_t h = t == GGUF_F16 ? nn_f32_to_f16(x[i]) : nn_f32_to_bf16(x[i]);
        if (t == GGUF_F32)
            memcpy(out + 4 * i, &x[i], 4);
        else if (t == GGUF_F16 || t == GGUF_BF16)
            memcpy(out + 2 * i, &h, 2);
    }
    if (t == GGUF_Q8_0 || t == GGUF_Q4_0) {
        int8_t q[64];
        uint16_t s[2];
        size_t qb = t == GGUF_Q8_0 ? 32 : 16;
        if (t == GGUF_Q8_0)
            nn_quantize_row_q8(x, n, q, s);
        else
            nn_quantize_row_q4(x, n, (uint8_t *)q, s);
        for (int b = 0; b < n / 32; b++) {
            memcpy(out + b * (2 + qb), &s[b], 2);
            memcpy(out + b * (2 + qb) + 2, (unsigned char *)q + b * qb, qb);
        }
    }
    return 0;
}

static int roundtrip(const char *dir)
{
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/roundtrip.gguf", dir);
    struct gguf_writer *w = gguf_writer_new();
    const char *strs[] = {"a", "", "中文 🎻", "x\0y"};
    size_t lens[] = {1, 0, strlen(strs[2]), 3};
    float fl[] = {1.5f, -2.25f, 1e-30f};
    int32_t in[] = {-1, 0, 7};
    uint64_t cols[] = {48, 40, 8, 64, 32};
    int ok = !gguf_set_u32(w, "t.u32", 4000000000u) && !gguf_set_f32(w, "t.f32", 0.125f) &&
             !gguf_set_bool(w, "t.bool", 1) && !gguf_set_string(w, "t.str", "héllo", strlen("héllo")) &&
             !gguf_set_array(w, "t.floats", GGUF_FLOAT32, fl, 3) && !gguf_set_array(w, "t.ints", GGUF_INT32, in, 3) &&
             !gguf_set_string_array(w, "t.strs", strs, lens, 4) && !gguf_set_array(w, "t.empty", GGUF_UINT8, "", 0);
    enum gguf_ttype types[] = {GGUF_F32, GGUF_F16, GGUF_BF16, GGUF_Q8_0, GGUF_Q4_0};
    for (int i = 0; i < 5 && ok; i++) {
        uint64_t ne[3] = {cols[i], 3, (uint64_t)(i + 1)};
        char name[32];
        snprintf(name, sizeof name, "tensor.%s", gguf_ttype_name(types[i]));
        ok = !gguf_add_tensor(w, name, types[i], i == 0 ? 1 : i == 4 ? 3 : 2, ne);
    }
    uint64_t bad_ne[1] = {33};
    CHECK(gguf_add_tensor(w, "bad", GGUF_Q8_0, 1, bad_ne) < 0, "q8_0 row of 33 values accepted");
    CHECK(ok && !gguf_write(w, path, fill_rows, cols, err, sizeof err), "write: %s", err);
    gguf_writer_free(w);
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    if (!f) {
        fprintf(stderr, "FAIL: reading back: %s\n", err);
        return 1;
    }
    int64_t iv;
    double dv;
    int bv;
    size_t len;
    const char *s;
    CHECK(gguf_file_version(f) == 3 && gguf_kv_count(f) == 8 && gguf_tensor_count(f) == 5, "counts");
    CHECK(!gguf_get_int(f, gguf_find_kv(f, "t.u32"), &iv) && iv == 4000000000LL, "u32");
    CHECK(!gguf_get_float(f, gguf_find_kv(f, "t.f32"), &dv) && dv == 0.125, "f32");
    CHECK(gguf_get_int(f, gguf_find_kv(f, "t.f32"), &iv) < 0, "a float read as an integer");
    CHECK(!gguf_get_bool(f, gguf_find_kv(f, "t.bool"), &bv) && bv == 1, "bool");
    CHECK((s = gguf_get_string(f, gguf_find_kv(f, "t.str"), &len)) && len == strlen("héllo") && !memcmp(s, "héllo", len),
           "string");
    enum gguf_vtype et;
    uint64_t n;
    int k = gguf_find_kv(f, "t.floats");
    CHECK(!gguf_get_array(f, k, &et, &n) && et == GGUF_FLOAT32 && n == 3, "float array");
    for (uint64_t j = 0; j < 3; j++)
        CHECK(!gguf_array_number(f, k, j, &dv) && dv == fl[j], "float array [%d]", (int)j);
    k = gguf_find_kv(f, "t.ints");
    for (uint64_t j = 0; j < 3; j++)
        CHECK(!gguf_array_number(f, k, j, &dv) && dv == in[j], "int array [%d]", (int)j);
    CHECK(gguf_array_number(f, k, 3, &dv) < 0, "array index past the end");
    k = gguf_find_kv(f, "t.strs");
    for (uint64_t j = 0; j < 4; j++)
        CHECK((s = gguf_array_string(f, k, j, &len)) && len == lens[j] && !memcmp(s, strs[j], len), "strs[%d]", (int)j);
    k = gguf_find_kv(f, "t.empty");
    CHECK(!gguf_get_array(f, k, &et, &n) && n == 0, "empty array");
    CHECK(gguf_find_kv(f, "absent") == -1 && gguf_find_tensor(f, "absent") == -1, "absent names");
    for (int i = 0; i < 5; i++) {
        const struct gguf_tensor *t = gguf_get_tensor(f, i);
        CHECK(t->type == types[i] && t->ne[0] == cols[i] && ((uintptr_t)t->data % 32) == 0, "tensor %d info", i);
        uint64_t rows = t->bytes / gguf_row_bytes(t->type, t->ne[0]);
        CHECK(rows == (i == 0 ? 1 : i == 4 ? 3 * 5 : 3), "tensor %d rows %d", i, (int)rows);
        float row[64];
        /* f32 exact; f16/bf16 within half an ulp; q8_0/q4_0 within half a quantisation step (+ scale rounding). */
        double tol[] = {0, 1.0 / 2048, 1.0 / 256, 0.5 / 127 + 1e-3, 0.5 / 7 + 1e-3};
        for (uint64_t r = 0; r < rows; r++) {
            gguf_dequant_row(t, r, row);
            float amax = 0;
            for (uint64_t c = 0; c < cols[i]; c++)
                amax = fmaxf(amax, fabsf(value_at(i, r, c)));
            for (uint64_t c = 0; c < cols[i]; c++) {
                float want = value_at(i, r, c);
                double bound = i < 3 ? tol[i] * fabsf(want) : tol[i] * 8 * amax;
                CHECK(fabs(row[c] - want) <= bound, "tensor %d [%d][%d]: %g vs %g", i, (int)r, (int)c, row[c],
                       want);
            }
        }
    }
    gguf_close(f);
    if (!tu_failures)
        printf("ok: GGUF writer/reader round trip (8 keys, 5 tensor types)\n");
    return tu_failures != 0;
}

/* ---- check an exported InternLM2 model ---- */

static int get_u(const struct gguf_file *f, const char *key, int64_t *v)
{
    int i = gguf_find_kv(f, key);
    if (i < 0 || gguf_get_int(f, i, v)) {
        tu_fail(__FILE__, __LINE__, "%s missing or not an integer", key);
        return -1;
    }
    return 0;
}

static void expect_int(const struct gguf_file *f, const char *key, int64_t want)
{
    int64_t v;
    if (!get_u(f, key, &v))
        CHECK(v == want, "%s = %lld, want %lld", key, (long long)v, (long long)want);
}

/* The HF row of GGUF q/k row r: llama.cpp's converter wrote w.reshape(n_head, 2, D/2, cols).swapaxes(1, 2),
 * so GGUF row (h, i, j) with i < D/2, j < 2 holds HF row (h, j, i). */
static int hf_row(int r, int D)
{
    int h = r / D, i = (r % D) / 2, j = r % 2;
    return h * D + j * (D / 2) + i;
}

static void compare_matrix(const struct gguf_file *f, const char *name, const struct nn_matrix *m, int n_rows,
                           const int *rows, double tol)
{
    int k = gguf_find_tensor(f, name);
    if (k < 0) {
        tu_fail(__FILE__, __LINE__, "tensor %s missing", name);
        return;
    }
    const struct gguf_tensor *t = gguf_get_tensor(f, k);
    if (t->n_dims != 2 || t->ne[0] != (uint64_t)m->cols || t->ne[1] != (uint64_t)n_rows) {
        tu_fail(__FILE__, __LINE__, "%s has shape [%llu, %llu], want [%d, %d]", name, (unsigned long long)t->ne[0],
                (unsigned long long)t->ne[1], m->cols, n_rows);
        return;
    }
    float *a = malloc((size_t)m->cols * sizeof *a), *b = malloc((size_t)m->cols * sizeof *b);
    double worst = 0;
    for (int r = 0; r < n_rows; r++) {
        gguf_dequant_row(t, (uint64_t)r, a);
        nn_dequant_row(m, rows ? rows[r] : r, b);
        float amax = 0;
        for (int c = 0; c < m->cols; c++)
            amax = fmaxf(amax, fabsf(b[c]));
        for (int c = 0; c < m->cols; c++)
            worst = fmax(worst, fabs(a[c] - b[c]) / (amax > 0 ? amax : 1));
    }
    CHECK(worst <= tol, "%s: largest difference %.3g of the row's largest value (tolerance %.3g)", name, worst, tol);
    free(a);
    free(b);
}

static int check(const char *model_dir, const char *tok_path, const char *path)
{
    char err[1024];
    struct model *m = NULL;
    mt_tokenizer *tok = tok_load(tok_path, err, sizeof err);
    if (!tok || model_load(model_dir, &m, err, sizeof err)) {
        fprintf(stderr, "check: %s\n", err);
        tok_free(tok);
        return 1;
    }
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    if (!f) {
        fprintf(stderr, "FAIL: %s\n", err);
        model_free(m);
        tok_free(tok);
        return 1;
    }
    const struct model_config *c = &m->config;
    size_t len;
    const char *s = gguf_get_string(f, gguf_find_kv(f, "general.architecture"), &len);
    CHECK(s && len == 9 && !memcmp(s, "internlm2", 9), "general.architecture");
    expect_int(f, "internlm2.context_length", c->max_position_embeddings);
    expect_int(f, "internlm2.embedding_length", c->dim);
    expect_int(f, "internlm2.block_count", c->n_layers);
    expect_int(f, "internlm2.feed_forward_length", c->hidden_dim);
    expect_int(f, "internlm2.attention.head_count", c->n_heads);
    expect_int(f, "internlm2.attention.head_count_kv", c->n_kv_heads);
    double eps, theta;
    CHECK(!gguf_get_float(f, gguf_find_kv(f, "internlm2.attention.layer_norm_rms_epsilon"), &eps) &&
               (float)eps == c->rms_norm_eps, "rms eps");
    CHECK(!gguf_get_float(f, gguf_find_kv(f, "internlm2.rope.freq_base"), &theta) && (float)theta == c->rope_theta,
           "rope.freq_base");
    s = gguf_get_string(f, gguf_find_kv(f, "tokenizer.ggml.model"), &len);
    CHECK(s && len == 5 && !memcmp(s, "llama", 5), "tokenizer.ggml.model");
    expect_int(f, "tokenizer.ggml.bos_token_id", tok_bos_id(tok));
    int im_end = tok_special_id(tok, "<|im_end|>");
    expect_int(f, "tokenizer.ggml.eos_token_id", im_end >= 0 ? im_end : tok_eos_id(tok));
    int ti = gguf_find_kv(f, "tokenizer.ggml.tokens"), si = gguf_find_kv(f, "tokenizer.ggml.scores"),
        yi = gguf_find_kv(f, "tokenizer.ggml.token_type");
    enum gguf_vtype et;
    uint64_t n = 0;
    CHECK(ti >= 0 && si >= 0 && yi >= 0 && !gguf_get_array(f, ti, &et, &n) && n == (uint64_t)c->vocab_size,
           "tokenizer arrays");
    int bad_tokens = 0;
    for (int i = 0; i < tok_vocab_size(tok) && n; i++) {
        size_t pl, gl;
        const char *piece = tok_piece(tok, i, &pl), *name = tok_special_name(tok, i);
        const char *g = gguf_array_string(f, ti, (uint64_t)i, &gl);
        double score, type;
        gguf_array_number(f, si, (uint64_t)i, &score);
        gguf_array_number(f, yi, (uint64_t)i, &type);
        int want_type = name ? TOK_CONTROL : !strncmp(piece, "[UNUSED", 7) ? TOK_UNUSED : (int)tok_piece_kind(tok, i);
        if (name)
            piece = name, pl = strlen(name);
        else if (pl == 1 && !piece[0])
            piece = "\xF0\x9F\x90\x89", pl = 4;
        if (gl != pl || memcmp(g, piece, pl) || (int)type != want_type ||
            (float)score != (name ? -1000.0f : tok_piece_score(tok, i)))
            bad_tokens++;
    }
    CHECK(!bad_tokens, "%d tokens differ from the tokenizer", bad_tokens);

    int D = c->head_dim, G = c->n_heads / c->n_kv_heads, q_rows = c->n_heads * D, kv_rows = c->n_kv_heads * D;
    int *qmap = malloc((size_t)q_rows * sizeof *qmap), *kmap = malloc((size_t)kv_rows * sizeof *kmap),
        *vmap = malloc((size_t)kv_rows * sizeof *vmap);
    for (int r = 0; r < q_rows; r++) { /* HF query head h sits in kv group h / G at slot h % G */
        int hr = hf_row(r, D), h = hr / D;
        qmap[r] = (h / G) * (G + 2) * D + (h % G) * D + hr % D;
    }
    for (int r = 0; r < kv_rows; r++) {
        int hr = hf_row(r, D), h = hr / D;
        kmap[r] = h * (G + 2) * D + G * D + hr % D;
        vmap[r] = (r / D) * (G + 2) * D + (G + 1) * D + r % D;
    }
    const struct gguf_tensor *emb = gguf_get_tensor(f, gguf_find_tensor(f, "token_embd.weight"));
    double tol = emb->type == GGUF_F32 ? 0 : emb->type == GGUF_F16 ? 1e-3 : emb->type == GGUF_BF16 ? 8e-3
               : emb->type == GGUF_Q8_0 ? 1.0 / 127 : 1.0 / 7;
    compare_matrix(f, "token_embd.weight", &m->tok_embeddings, c->vocab_size, NULL, tol);
    compare_matrix(f, "output.weight", &m->output, c->vocab_size, NULL, tol);
    for (int l = 0; l < c->n_layers; l++) {
        const struct model_layer *L = &m->layers[l];
        char name[64];
#define NAME(s) (snprintf(name, sizeof name, "blk.%d.%s.weight", l, s), name)
        compare_matrix(f, NAME("attn_q"), &L->wqkv, q_rows, qmap, tol);
        compare_matrix(f, NAME("attn_k"), &L->wqkv, kv_rows, kmap, tol);
        compare_matrix(f, NAME("attn_v"), &L->wqkv, kv_rows, vmap, tol);
        compare_matrix(f, NAME("attn_output"), &L->wo, c->dim, NULL, tol);
        compare_matrix(f, NAME("ffn_gate"), &L->w1, c->hidden_dim, NULL, tol);
        compare_matrix(f, NAME("ffn_up"), &L->w3, c->hidden_dim, NULL, tol);
        compare_matrix(f, NAME("ffn_down"), &L->w2, c->dim, NULL, tol);
        const float *norms[2] = {L->attention_norm, L->ffn_norm};
        const char *norm_names[2] = {"attn_norm", "ffn_norm"};
        for (int k = 0; k < 2; k++) {
            int ni = gguf_find_tensor(f, NAME(norm_names[k]));
            const struct gguf_tensor *t = ni >= 0 ? gguf_get_tensor(f, ni) : NULL;
            CHECK(t && t->type == GGUF_F32 && t->ne[0] == (uint64_t)c->dim &&
                       !memcmp(t->data, norms[k], (size_t)c->dim * 4), "layer %d %s", l, norm_names[k]);
        }
#undef NAME
    }
    int oi = gguf_find_tensor(f, "output_norm.weight");
    CHECK(oi >= 0 && !memcmp(gguf_get_tensor(f, oi)->data, m->norm, (size_t)c->dim * 4), "output_norm");
    CHECK(gguf_tensor_count(f) == 9 * c->n_layers + 3, "%d tensors", gguf_tensor_count(f));
    if (!tu_failures)
        printf("ok: %s (%s) matches the checkpoint and the tokenizer: %d keys, %d tensors, %llu tokens\n", path,
               gguf_ttype_name(emb->type), gguf_kv_count(f), gguf_tensor_count(f), (unsigned long long)n);
    free(qmap);
    free(kmap);
    free(vmap);
    gguf_close(f);
    model_free(m);
    tok_free(tok);
    return tu_failures != 0;
}

/* ---- corrupted files ---- */

static int corrupt(const char *path, const char *dir)
{
    size_t len;
    unsigned char *data = (unsigned char *)tu_read_file(path, &len);
    if (!data)
        return 1;
    long size = (long)len;
    char out[4096], err[512];
    snprintf(out, sizeof out, "%s/corrupt.gguf", dir);
    int rejected = 0, tries = 0;
    uint64_t rng = 88172645463325252ull;
    for (int k = 0; k < 600; k++, tries++) {
        unsigned char *copy = malloc((size_t)size);
        memcpy(copy, data, (size_t)size);
        long n = size;
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        if (k < 200) {
            n = (long)(rng % (uint64_t)size); /* truncated */
        } else {
            /* A few bytes of the header region (counts, lengths, types, dims, offsets) overwritten. */
            long header = size < 65536 ? size : 65536;
            for (int j = 0; j < 1 + k % 4; j++) {
                rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
                copy[rng % (uint64_t)header] = (unsigned char)(rng >> 40);
            }
        }
        FILE *fp = fopen(out, "wb");
        fwrite(copy, 1, (size_t)n, fp);
        fclose(fp);
        free(copy);
        err[0] = 0;
        struct gguf_file *f = gguf_open(out, err, sizeof err);
        if (!f) {
            rejected++;
            CHECK(err[0], "rejected without a message");
            continue;
        }
        /* Whatever was accepted must be safe to walk completely. */
        for (int i = 0; i < gguf_kv_count(f); i++) {
            enum gguf_vtype et;
            uint64_t cnt;
            size_t len;
            double v;
            if (!gguf_get_array(f, i, &et, &cnt))
                for (uint64_t j = 0; j < cnt; j++)
                    if (!gguf_array_string(f, i, j, &len))
                        gguf_array_number(f, i, j, &v);
        }
        float *row = NULL;
        for (int i = 0; i < gguf_tensor_count(f); i++) {
            const struct gguf_tensor *t = gguf_get_tensor(f, i);
            row = realloc(row, t->ne[0] * sizeof *row);
            gguf_dequant_row(t, t->bytes / gguf_row_bytes(t->type, t->ne[0]) - 1, row);
        }
        free(row);
        gguf_close(f);
    }
    free(data);
    remove(out);
    printf("ok: %d damaged copies: %d rejected with a message, the rest read safely\n", tries, rejected);
    return tu_failures != 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "roundtrip"))
        return roundtrip(argv[2]);
    if (argc == 5 && !strcmp(argv[1], "check"))
        return check(argv[2], argv[3], argv[4]);
    if (argc == 4 && !strcmp(argv[1], "corrupt"))
        return corrupt(argv[2], argv[3]);
    fprintf(stderr, "usage: see the comment at the top of gguf_tool.c\n");
    return 2;
}
