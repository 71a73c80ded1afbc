/* Runs every backward kernel on random inputs and dumps inputs and results for train_ref.py ops. */
#include <math.h>

#include "melodist/nn.h"
#include "melodist/nn_backward.h"
#include "tdump.h"

/* Documents of random length inside each sequence: start[t] is where t's document begins. */
static void doc_starts(int32_t *start, int32_t *pos, int B, int T)
{
    for (int b = 0; b < B; b++) {
        int s = 0;
        for (int t = 0; t < T; t++) {
            if (t > 0 && trng_uniform() < 0.15f)
                s = t;
            start[b * T + t] = s;
            pos[b * T + t] = t - s;
        }
    }
}

static void case_rows(FILE *f, int T, int C, int V)
{
    float *x = trng_fill(tcalloc((size_t)T * C), (size_t)T * C, 2.0f);
    float *w = trng_fill(tcalloc(C), C, 1.5f);
    float *dy = trng_fill(tcalloc((size_t)T * C), (size_t)T * C, 1.0f);
    float *dx = trng_fill(tcalloc((size_t)T * C), (size_t)T * C, 1.0f); /* accumulates onto a prior value */
    float *dw = tcalloc(C);
    TDUMP_F32(f, "rms.x", x, T, C);
    TDUMP_F32(f, "rms.w", w, C);
    TDUMP_F32(f, "rms.dy", dy, T, C);
    TDUMP_F32(f, "rms.dx0", dx, T, C);
    rmsnorm_backward(dx, dw, dy, x, w, T, C, 1e-5f);
    TDUMP_F32(f, "rms.dx", dx, T, C);
    TDUMP_F32(f, "rms.dw", dw, C);

    int OC = C + 3;
    float *W = trng_fill(tcalloc((size_t)OC * C), (size_t)OC * C, 0.5f);
    float *dyo = trng_fill(tcalloc((size_t)T * OC), (size_t)T * OC, 1.0f);
    float *dW = tcalloc((size_t)OC * C), *dxm = tcalloc((size_t)T * C);
    float *scratch = tcalloc(matmul_backward_scratch(T, C, OC));
    matmul_backward(dxm, dW, dyo, x, W, T, C, OC, scratch);
    free(scratch);
    TDUMP_F32(f, "mm.W", W, OC, C);
    TDUMP_F32(f, "mm.dy", dyo, T, OC);
    TDUMP_F32(f, "mm.dx", dxm, T, C);
    TDUMP_F32(f, "mm.dW", dW, OC, C);

    float *b = trng_fill(tcalloc((size_t)T * C), (size_t)T * C, 2.0f);
    float *da = tcalloc((size_t)T * C), *db = tcalloc((size_t)T * C);
    swiglu_backward(da, db, dy, x, b, (size_t)T * C);
    TDUMP_F32(f, "glu.b", b, T, C);
    TDUMP_F32(f, "glu.da", da, T, C);
    TDUMP_F32(f, "glu.db", db, T, C);

    int32_t *tok = malloc(sizeof(int32_t) * T);
    for (int t = 0; t < T; t++)
        tok[t] = (int32_t)(trng_uniform() * V) % V;
    float *dwte = tcalloc((size_t)V * C);
    embedding_backward(dwte, dy, tok, T, C);
    TDUMP_I32(f, "emb.tok", tok, T);
    TDUMP_F32(f, "emb.dwte", dwte, V, C);

    float *logits = trng_fill(tcalloc((size_t)T * V), (size_t)T * V, 4.0f);
    int32_t *tgt = malloc(sizeof(int32_t) * T);
    int n = 0;
    for (int t = 0; t < T; t++) {
        tgt[t] = trng_uniform() < 0.25f ? -1 : tok[t];
        n += tgt[t] >= 0;
    }
    TDUMP_F32(f, "ce.logits", logits, T, V);
    TDUMP_I32(f, "ce.targets", tgt, T);
    double loss = softmax_xent_backward(logits, tgt, T, V, 1.0f / (float)n);
    float lossf = (float)(loss / n);
    TDUMP_F32(f, "ce.loss", &lossf, 1);
    TDUMP_F32(f, "ce.dlogits", logits, T, V);
    free(x), free(w), free(dy), free(dx), free(dw), free(W), free(dyo), free(dW), free(dxm), free(b), free(da);
    free(db), free(tok), free(dwte), free(logits), free(tgt);
}

/* RoPE on every group's [G query heads | key head], which lie side by side in a packed qkv row. */
static void rope_rows(float *qkv, int BT, int H, int KV, int D, const int32_t *pos, const float *inv_freq, int back)
{
    int G = H / KV, row = (H + 2 * KV) * D;
    for (int t = 0; t < BT; t++)
        for (int g = 0; g < KV; g++) {
            float *x = qkv + (size_t)t * row + (size_t)g * (G + 2) * D;
            if (back)
                rope_backward(x, G + 1, D, pos[t], inv_freq);
            else
                rope_forward(x, G + 1, D, pos[t], inv_freq);
        }
}

static void case_attention(FILE *f, const char *tag, int B, int T, int H, int KV, int D)
{
    int row = (H + 2 * KV) * D, BT = B * T;
    float *qkv = trng_fill(tcalloc((size_t)BT * row), (size_t)BT * row, 1.5f);
    float inv_freq[64];
    int32_t *start = malloc(sizeof(int32_t) * BT), *pos = malloc(sizeof(int32_t) * BT);
    for (int i = 0; i < D / 2; i++)
        inv_freq[i] = 1.0f / powf(10000.0f, (float)(2 * i) / (float)D);
    doc_starts(start, pos, B, T);
    char name[64];
#define N(x) (snprintf(name, sizeof name, "%s.%s", tag, x), name)
    TDUMP_F32(f, N("qkv_raw"), qkv, B, T, row);
    TDUMP_I32(f, N("start"), start, B, T);
    TDUMP_I32(f, N("shape"), ((int32_t[]){B, T, H, KV, D}), 5);
    rope_rows(qkv, BT, H, KV, D, pos, inv_freq, 0);
    float *out = tcalloc((size_t)BT * H * D), *lse = tcalloc((size_t)BT * H);
    attention_forward_train(out, lse, qkv, start, B, T, H, KV, D);
    TDUMP_F32(f, N("out"), out, B, T, H * D);
    float *dout = trng_fill(tcalloc((size_t)BT * H * D), (size_t)BT * H * D, 1.0f);
    float *dqkv = tcalloc((size_t)BT * row);
    attention_backward(dqkv, dout, qkv, out, lse, start, B, T, H, KV, D);
    rope_rows(dqkv, BT, H, KV, D, pos, inv_freq, 1);
    TDUMP_F32(f, N("dout"), dout, B, T, H * D);
    TDUMP_F32(f, N("dqkv_raw"), dqkv, B, T, row);
#undef N
    free(qkv), free(start), free(pos), free(out), free(lse), free(dout), free(dqkv);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: train_ops_dump OUT\n");
        return 2;
    }
    FILE *f = tdump_open(argv[1]);
    case_rows(f, 7, 24, 19);
    case_attention(f, "att_mha", 2, 9, 4, 4, 8);
    case_attention(f, "att_gqa", 2, 11, 6, 2, 8);
    case_attention(f, "att_mqa", 1, 13, 4, 1, 16);
    fclose(f);
    return 0;
}
