/* Per-operation forward passes. Each is the plain formula; backward twins go beside them. */
#include <math.h>

#include "melodist/nn.h"

void rmsnorm_forward(float *out, const float *x, const float *weight, int dim, float eps)
{
    float ss = 0;
    for (int i = 0; i < dim; i++)
        ss += x[i] * x[i];
    float scale = 1.0f / sqrtf(ss / (float)dim + eps);
    for (int i = 0; i < dim; i++)
        out[i] = weight[i] * (x[i] * scale);
}

void rope_forward(float *x, int nheads, int head_dim, int pos, const float *inv_freq)
{
    int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        float angle = (float)pos * inv_freq[i];
        float c = cosf(angle), s = sinf(angle);
        for (int h = 0; h < nheads; h++) {
            float *v = x + (size_t)h * head_dim;
            float a = v[i], b = v[i + half];
            v[i] = a * c - b * s;
            v[i + half] = b * c + a * s;
        }
    }
}

void swiglu_forward(float *out, const float *gate, const float *up, int n)
{
    for (int i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

void softmax_forward(float *x, int n)
{
    float max = x[0];
    for (int i = 1; i < n; i++)
        max = x[i] > max ? x[i] : max;
    float sum = 0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    for (int i = 0; i < n; i++)
        x[i] /= sum;
}

struct attention_job {
    float *out;
    const float *q, *k_cache, *v_cache;
    const struct attention_shape *shape;
    int pos, n;
    float *scratch;
};

/* Work item = (token, query head): scores over positions 0..pos+t, softmax, weighted sum of values. */
static void attention_items(void *ctx, int begin, int end, int thread)
{
    struct attention_job *j = ctx;
    int H = j->shape->n_heads, KV = j->shape->n_kv_heads, D = j->shape->head_dim, group = H / KV;
    size_t kv_stride = (size_t)KV * D;
    float scale = 1.0f / sqrtf((float)D);
    float *att = j->scratch + (size_t)thread * (size_t)(j->pos + j->n);
    for (int item = begin; item < end; item++) {
        int t = item / H, h = item % H, len = j->pos + t + 1;
        const float *q = j->q + ((size_t)t * H + h) * D;
        const float *k = j->k_cache + (size_t)(h / group) * D, *v = j->v_cache + (size_t)(h / group) * D;
        for (int p = 0; p < len; p++)
            att[p] = nn_dot(q, k + p * kv_stride, D) * scale;
        softmax_forward(att, len);
        float *o = j->out + ((size_t)t * H + h) * D;
        for (int d = 0; d < D; d++)
            o[d] = 0;
        for (int p = 0; p < len; p++) {
            const float *vp = v + p * kv_stride;
            float a = att[p];
            for (int d = 0; d < D; d++)
                o[d] += a * vp[d];
        }
    }
}

void attention_forward(float *out, const float *q, const float *k_cache, const float *v_cache,
                       const struct attention_shape *shape, int pos, int n, float *scratch)
{
    struct attention_job job = {out, q, k_cache, v_cache, shape, pos, n, scratch};
    nn_parallel_for(n * shape->n_heads, attention_items, &job);
}
