/* Backward twins of the forward ops (see nn_backward.h for the conventions: gradients accumulate). */
#include <math.h>
#include <stdlib.h>
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

/* Both backward products are C += A B with B row-major ([K, N], the contiguous side of C):
 *   dx [T, IC]  += dy [T, OC]  W [OC, IC]      a(i, k) = dy[i*OC + k]
 *   dW [OC, IC] += dy^T [OC, T] x [T, IC]      a(i, k) = dy[k*OC + i]
 * so one register-blocked kernel serves both without transposing anything: MR rows x NR columns of C stay in
 * registers while k runs over a KC-long panel of B (kept in cache across the row blocks of a thread). Each C
 * element sums over k in ascending order whatever the threads, so results do not depend on the thread count. */
struct gemm {
    float *C;
    const float *A, *B;
    int M, N, K;
    size_t a_row, a_col, ldb, ldc; /* a(i, k) = A[i*a_row + k*a_col] */
};

#define MR 6
#define NR 16
#define KC 256
#define NC 512

/* C[i0.., j0..] (mr x nr) += A[i0.., k0..k1) B[k0..k1, j0..], the plain way (any CPU, and the edges). */
static void gemm_tile_generic(const struct gemm *g, int i0, int mr, int j0, int nr, int k0, int k1)
{
    for (int r = 0; r < mr; r++)
        for (int j = j0; j < j0 + nr; j++) {
            float sum = g->C[(size_t)(i0 + r) * g->ldc + j];
            for (int k = k0; k < k1; k++)
                sum += g->A[(size_t)(i0 + r) * g->a_row + (size_t)k * g->a_col] * g->B[(size_t)k * g->ldb + j];
            g->C[(size_t)(i0 + r) * g->ldc + j] = sum;
        }
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_AVX2_GEMM 1

/* The same for an MR x NR tile: 12 accumulators held in registers (written out: -O2 would not unroll a
 * row loop and would keep them in memory), two B vectors and one broadcast per row per k. */
__attribute__((target("avx2,fma"))) static void gemm_tile_avx2(const struct gemm *g, int i0, int j0, int k0, int k1)
{
    float *c = g->C + (size_t)i0 * g->ldc + j0;
    size_t ldc = g->ldc, ar = g->a_row;
#define LOAD(r) __m256 c##r##0 = _mm256_loadu_ps(c + r * ldc), c##r##1 = _mm256_loadu_ps(c + r * ldc + 8)
    LOAD(0); LOAD(1); LOAD(2); LOAD(3); LOAD(4); LOAD(5);
#undef LOAD
    for (int k = k0; k < k1; k++) {
        const float *b = g->B + (size_t)k * g->ldb + j0, *a = g->A + (size_t)i0 * ar + (size_t)k * g->a_col;
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), x;
#define ROW(r)                                                                                              \
    x = _mm256_broadcast_ss(a + r * ar), c##r##0 = _mm256_fmadd_ps(x, b0, c##r##0),                        \
    c##r##1 = _mm256_fmadd_ps(x, b1, c##r##1)
        ROW(0); ROW(1); ROW(2); ROW(3); ROW(4); ROW(5);
#undef ROW
    }
#define STORE(r) _mm256_storeu_ps(c + r * ldc, c##r##0), _mm256_storeu_ps(c + r * ldc + 8, c##r##1)
    STORE(0); STORE(1); STORE(2); STORE(3); STORE(4); STORE(5);
#undef STORE
}
#else
#define HAVE_AVX2_GEMM 0
#endif

struct gemm_job {
    const struct gemm *g;
    int simd;
};

/* Row blocks [begin, end) of C, panel by panel. */
static void gemm_blocks(void *ctx, int begin, int end, int thread)
{
    const struct gemm_job *job = ctx;
    const struct gemm *g = job->g;
    (void)thread;
    for (int k0 = 0; k0 < g->K; k0 += KC) {
        int k1 = k0 + KC < g->K ? k0 + KC : g->K;
        for (int n0 = 0; n0 < g->N; n0 += NC) {
            int n1 = n0 + NC < g->N ? n0 + NC : g->N;
            for (int blk = begin; blk < end; blk++) {
                int i0 = blk * MR, mr = g->M - i0 < MR ? g->M - i0 : MR;
                for (int j0 = n0; j0 < n1; j0 += NR) {
                    int nr = n1 - j0 < NR ? n1 - j0 : NR;
#if HAVE_AVX2_GEMM
                    if (job->simd && mr == MR && nr == NR) {
                        gemm_tile_avx2(g, i0, j0, k0, k1);
                        continue;
                    }
#endif
                    gemm_tile_generic(g, i0, mr, j0, nr, k0, k1);
                }
            }
        }
    }
}

static void gemm_run(const struct gemm *g)
{
    const char *off = getenv("MELODIST_NO_SIMD");
    struct gemm_job job = {g, HAVE_AVX2_GEMM && !(off && *off && strcmp(off, "0"))};
#if HAVE_AVX2_GEMM
    job.simd = job.simd && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    nn_parallel_for((g->M + MR - 1) / MR, gemm_blocks, &job);
}

size_t matmul_backward_scratch(int T, int IC, int OC)
{
    (void)T, (void)IC, (void)OC;
    return 0;
}

void matmul_backward(float *dx, float *dW, const float *dy, const float *x, const float *W, int T, int IC, int OC,
                     float *scratch)
{
    (void)scratch;
    if (dx) {
        struct gemm g = {dx, dy, W, T, IC, OC, (size_t)OC, 1, (size_t)IC, (size_t)IC};
        gemm_run(&g);
    }
    struct gemm g = {dW, dy, x, OC, IC, T, 1, (size_t)OC, (size_t)IC, (size_t)IC};
    gemm_run(&g);
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

/* y += a x: the inner loop of the attention kernels, vectorised where the CPU allows. */
typedef void axpy_fn(float *y, float a, const float *x, int n);

static void axpy_generic(float *y, float a, const float *x, int n)
{
    for (int i = 0; i < n; i++)
        y[i] += a * x[i];
}

#if HAVE_AVX2_GEMM
__attribute__((target("avx2,fma"))) static void axpy_avx2(float *y, float a, const float *x, int n)
{
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * x[i];
}
#endif

static axpy_fn *pick_axpy(void)
{
    const char *off = getenv("MELODIST_NO_SIMD");
    if (off && *off && strcmp(off, "0"))
        return axpy_generic;
#if HAVE_AVX2_GEMM
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return axpy_avx2;
#endif
    return axpy_generic;
}

struct attention_job {
    axpy_fn *axpy;
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
                j->axpy(o, p, v, D);
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
    struct attention_job job = {.axpy = pick_axpy(), .out = out, .lse = lse, .qkv = qkv, .start = start,
                                .T = T, .H = H, .KV = KV, .D = D};
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
                    j->axpy(dq, ds, k, D);
                    j->axpy(dk, ds, q, D);
                    j->axpy(dv, p, dout, D);
                }
            }
        }
    }
}

void attention_backward(float *dqkv, const float *dout, const float *qkv, const float *out, const float *lse,
                        const int32_t *start, int B, int T, int H, int KV, int D)
{
    struct attention_job job = {.axpy = pick_axpy(), .dqkv = dqkv, .qkv = qkv, .dout = dout, .out_c = out,
                                .lse_c = lse, .start = start, .T = T, .H = H, .KV = KV, .D = D};
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
