/* Backward twins of the forward ops (see nn_backward.h for the conventions: gradients accumulate). */
#include <math.h>
#include <string.h>

#include "melodist/nn.h"
#include "melodist/nn_backward.h"

void embedding_backward(float *dwte, const float *dout, const int32_t *tokens, int T, int C)
{
    for (int t = 0; t < T; t++) {
        float *row = dwte + (size_t)tokens[t] * C;
        const float *d = dout + (size_t)t * C;
        for (int i = 0; i < C; i++)
            row[i] += d[i];
    }
}

/* With r = 1/sqrt(mean(x^2)+eps) and g = w*dy:  dx_i = r*g_i - r^3/C * x_i * sum_j g_j x_j. */
void rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, int T, int C,
                      float eps)
{
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * C, *dy = dout + (size_t)t * C;
        float *dxr = dx + (size_t)t * C;
        double ss = 0, gx = 0;
        for (int i = 0; i < C; i++) {
            ss += (double)xr[i] * xr[i];
            gx += (double)w[i] * dy[i] * xr[i];
        }
        float r = 1.0f / sqrtf((float)(ss / C) + eps);
        float k = (float)(gx / C) * r * r * r;
        for (int i = 0; i < C; i++) {
            dxr[i] += r * w[i] * dy[i] - k * xr[i];
            dw[i] += dy[i] * xr[i] * r;
        }
    }
}

size_t matmul_backward_scratch(int T, int IC, int OC)
{
    size_t prod = (size_t)(T > OC ? T : OC) * IC; /* dy W [T, IC] or dy^T x [OC, IC] */
    return (size_t)T * IC + (size_t)T * OC + prod + (size_t)IC * OC;
}

struct transpose_job {
    float *dst;
    const float *src;
    int rows, cols;
};

#define TRANSPOSE_TILE 32

/* Work item = a band of TRANSPOSE_TILE source columns, copied tile by tile so both sides stay in cache. */
static void transpose_bands(void *ctx, int begin, int end, int thread)
{
    struct transpose_job *j = ctx;
    (void)thread;
    for (int band = begin; band < end; band++) {
        int c0 = band * TRANSPOSE_TILE, c1 = c0 + TRANSPOSE_TILE < j->cols ? c0 + TRANSPOSE_TILE : j->cols;
        for (int r0 = 0; r0 < j->rows; r0 += TRANSPOSE_TILE) {
            int r1 = r0 + TRANSPOSE_TILE < j->rows ? r0 + TRANSPOSE_TILE : j->rows;
            for (int c = c0; c < c1; c++)
                for (int r = r0; r < r1; r++)
                    j->dst[(size_t)c * j->rows + r] = j->src[(size_t)r * j->cols + c];
        }
    }
}

/* dst [cols, rows] = src [rows, cols] transposed. */
static void transpose(float *dst, const float *src, int rows, int cols)
{
    struct transpose_job job = {dst, src, rows, cols};
    nn_parallel_for((cols + TRANSPOSE_TILE - 1) / TRANSPOSE_TILE, transpose_bands, &job);
}

static void add_into(float *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] += src[i];
}

/* dx = dy W is nn_matmul with the weight W^T [IC, OC]; dW = dy^T x is nn_matmul of the rows of dy^T
 * against the weight x^T [IC, T]. */
void matmul_backward(float *dx, float *dW, const float *dy, const float *x, const float *W, int T, int IC, int OC,
                     float *scratch)
{
    float *xt = scratch, *dyt = xt + (size_t)T * IC, *prod = dyt + (size_t)T * OC;
    float *wt = prod + (size_t)(T > OC ? T : OC) * IC;
    if (dx) {
        transpose(wt, W, OC, IC);
        struct nn_matrix m = {NN_F32, IC, OC, wt, NULL};
        nn_matmul(prod, &m, dy, T);
        add_into(dx, prod, (size_t)T * IC);
    }
    transpose(xt, x, T, IC);
    transpose(dyt, dy, T, OC);
    struct nn_matrix m = {NN_F32, IC, T, xt, NULL};
    nn_matmul(prod, &m, dyt, OC);
    add_into(dW, prod, (size_t)OC * IC);
}

void swiglu_backward(float *da, float *db, const float *dh, const float *a, const float *b, size_t N)
{
    for (size_t i = 0; i < N; i++) {
        float sig = 1.0f / (1.0f + expf(-a[i]));
        float silu = a[i] * sig;
        da[i] += dh[i] * b[i] * sig * (1.0f + a[i] * (1.0f - sig));
        db[i] += dh[i] * silu;
    }
}

void rope_backward(float *dx, int nheads, int head_dim, int pos, const float *inv_freq)
{
    rope_forward(dx, nheads, head_dim, -pos, inv_freq);
}

/* Offsets of query head h, key and value of group g inside a packed qkv row. */
static inline size_t q_off(int h, int G, int D) { return ((size_t)(h / G) * (G + 2) + h % G) * D; }
static inline size_t k_off(int g, int G, int D) { return ((size_t)g * (G + 2) + G) * D; }
static inline size_t v_off(int g, int G, int D) { return ((size_t)g * (G + 2) + G + 1) * D; }

struct attention_job {
    float *out, *lse, *dqkv;
    const float *qkv, *dout, *out_c, *lse_c;
    const int32_t *start;
    int T, H, KV, D;
};

/* Item = (sequence, query head). One pass with a running maximum (online softmax). */
static void attention_forward_items(void *ctx, int begin, int end, int thread)
{
    struct attention_job *j = ctx;
    int T = j->T, H = j->H, D = j->D, G = H / j->KV;
    size_t row = (size_t)(H + 2 * j->KV) * D;
    float scale = 1.0f / sqrtf((float)D);
    (void)thread;
    for (int item = begin; item < end; item++) {
        int b = item / H, h = item % H, g = h / G;
        const float *base = j->qkv + (size_t)b * T * row;
        for (int t = 0; t < T; t++) {
            size_t bt = (size_t)b * T + t;
            const float *q = base + t * row + q_off(h, G, D);
            float *o = j->out + bt * H * D + (size_t)h * D;
            float mx = -INFINITY, sum = 0;
            memset(o, 0, sizeof(float) * D);
            for (int s = j->start[bt]; s <= t; s++) {
                float sc = nn_dot(q, base + s * row + k_off(g, G, D), D) * scale;
                if (sc > mx) {
                    float r = expf(mx - sc);
                    sum *= r;
                    for (int i = 0; i < D; i++)
                        o[i] *= r;
                    mx = sc;
                }
                float p = expf(sc - mx);
                const float *v = base + s * row + v_off(g, G, D);
                sum += p;
                for (int i = 0; i < D; i++)
                    o[i] += p * v[i];
            }
            for (int i = 0; i < D; i++)
                o[i] /= sum;
            j->lse[bt * H + h] = mx + logf(sum);
        }
    }
}

void attention_forward_train(float *out, float *lse, const float *qkv, const int32_t *start, int B, int T, int H,
                             int KV, int D)
{
    struct attention_job job = {.out = out, .lse = lse, .qkv = qkv, .start = start, .T = T, .H = H, .KV = KV, .D = D};
    nn_parallel_for(B * H, attention_forward_items, &job);
}

/* Item = (sequence, kv group): the group's query heads are the only writers of its key/value gradients.
 * Per query: p_s = exp(score_s - lse), dp_s = dout.v_s, dscore_s = p_s (dp_s - dout.out),
 * dq += scale * sum_s dscore_s k_s, dk_s += scale * dscore_s q, dv_s += p_s dout. */
static void attention_backward_items(void *ctx, int begin, int end, int thread)
{
    struct attention_job *j = ctx;
    int T = j->T, H = j->H, D = j->D, G = H / j->KV;
    size_t row = (size_t)(H + 2 * j->KV) * D;
    float scale = 1.0f / sqrtf((float)D);
    (void)thread;
    for (int item = begin; item < end; item++) {
        int b = item / j->KV, g = item % j->KV;
        const float *base = j->qkv + (size_t)b * T * row;
        float *dbase = j->dqkv + (size_t)b * T * row;
        for (int t = 0; t < T; t++) {
            size_t bt = (size_t)b * T + t;
            for (int h = g * G; h < (g + 1) * G; h++) {
                const float *q = base + t * row + q_off(h, G, D);
                float *dq = dbase + t * row + q_off(h, G, D);
                const float *dout = j->dout + bt * H * D + (size_t)h * D;
                float delta = nn_dot(dout, j->out_c + bt * H * D + (size_t)h * D, D);
                float l = j->lse_c[bt * H + h];
                for (int s = j->start[bt]; s <= t; s++) {
                    const float *k = base + s * row + k_off(g, G, D);
                    const float *v = base + s * row + v_off(g, G, D);
                    float *dk = dbase + s * row + k_off(g, G, D);
                    float *dv = dbase + s * row + v_off(g, G, D);
                    float p = expf(nn_dot(q, k, D) * scale - l);
                    float ds = p * (nn_dot(dout, v, D) - delta) * scale;
                    for (int i = 0; i < D; i++) {
                        dq[i] += ds * k[i];
                        dk[i] += ds * q[i];
                        dv[i] += p * dout[i];
                    }
                }
            }
        }
    }
}

void attention_backward(float *dqkv, const float *dout, const float *qkv, const float *out, const float *lse,
                        const int32_t *start, int B, int T, int H, int KV, int D)
{
    struct attention_job job = {.dqkv = dqkv, .qkv = qkv, .dout = dout, .out_c = out, .lse_c = lse, .start = start,
                                .T = T, .H = H, .KV = KV, .D = D};
    nn_parallel_for(B * KV, attention_backward_items, &job);
}

struct xent_job {
    float *logits;
    const int32_t *targets;
    int V;
    float scale;
    double loss[256]; /* per pool thread */
};

static void xent_rows(void *ctx, int begin, int end, int thread)
{
    struct xent_job *j = ctx;
    int V = j->V;
    for (int t = begin; t < end; t++) {
        float *z = j->logits + (size_t)t * V;
        int target = j->targets[t];
        if (target < 0) {
            memset(z, 0, sizeof(float) * V);
            continue;
        }
        float mx = z[0];
        for (int i = 1; i < V; i++)
            if (z[i] > mx)
                mx = z[i];
        double sum = 0;
        for (int i = 0; i < V; i++)
            sum += exp((double)(z[i] - mx));
        double logsum = log(sum) + mx;
        j->loss[thread] += logsum - z[target];
        for (int i = 0; i < V; i++)
            z[i] = j->scale * (float)exp(z[i] - logsum);
        z[target] -= j->scale;
    }
}

double softmax_xent_backward(float *logits, const int32_t *targets, int T, int V, float scale)
{
    struct xent_job job = {.logits = logits, .targets = targets, .V = V, .scale = scale};
    nn_parallel_for(T, xent_rows, &job);
    double loss = 0;
    for (int t = 0; t < nn_threads(); t++)
        loss += job.loss[t];
    return loss;
}
