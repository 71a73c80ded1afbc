/* AdamW, gradient clipping and the learning-rate schedule (see optim.h). */
#include <math.h>
#include <stdlib.h>

#include "melodist/nf4.h"
#include "melodist/optim.h"

int adamw_init(struct adamw *o, size_t n)
{
    *o = (struct adamw){.n = n};
    o->m = calloc(n ? n : 1, sizeof(float));
    o->v = calloc(n ? n : 1, sizeof(float));
    if (!o->m || !o->v) {
        adamw_free(o);
        return -1;
    }
    return 0;
}

int adamw_init_8bit(struct adamw *o, size_t n)
{
    size_t blocks = (n + ADAMW8_BLOCK - 1) / ADAMW8_BLOCK;
    *o = (struct adamw){.n = n};
    o->qm = calloc(n ? n : 1, 1);
    o->qv = calloc(n ? n : 1, 1);
    o->am = calloc(blocks ? blocks : 1, sizeof(float)); /* absmax 0: every moment 0, whatever the codes */
    o->av = calloc(blocks ? blocks : 1, sizeof(float));
    if (!o->qm || !o->qv || !o->am || !o->av) {
        adamw_free(o);
        return -1;
    }
    return 0;
}

void adamw_free(struct adamw *o)
{
    free(o->m), free(o->v), free(o->qm), free(o->qv), free(o->am), free(o->av);
    o->m = o->v = o->am = o->av = NULL;
    o->qm = o->qv = NULL;
}

void adamw_begin_step(struct adamw *o) { o->step++; }

/* PyTorch's vectorised CPU kernels compute add_(g, alpha) and addcmul_ with a fused multiply-add on CPUs
 * that have one; matching the rounding step for step needs the same fusion, so the loop is compiled
 * twice and the fused copy is chosen at run time exactly where PyTorch would choose it. */
static inline __attribute__((always_inline)) float mul_add(float a, float b, float c, int fused)
{
    return fused ? __builtin_fmaf(a, b, c) : a * b + c;
}

struct adamw_scalars {
    float decay, b1, b2, one_minus_b1, one_minus_b2, step_size, bc2_sqrt, eps;
};

static inline __attribute__((always_inline)) void update_loop(float *p, float *m, float *v, const float *g, size_t n,
                                                               const struct adamw_scalars *k, int fused)
{
    for (size_t i = 0; i < n; i++) {
        p[i] *= k->decay;
        m[i] = mul_add(g[i], k->one_minus_b1, m[i] * k->b1, fused);
        v[i] = mul_add(k->one_minus_b2 * g[i], g[i], v[i] * k->b2, fused);
        float denom = sqrtf(v[i]) / k->bc2_sqrt + k->eps;
        p[i] = p[i] + k->step_size * m[i] / denom;
    }
}

__attribute__((target("fma"))) static void update_fused(float *p, float *m, float *v, const float *g, size_t n,
                                                        const struct adamw_scalars *k)
{
    update_loop(p, m, v, g, n, k, 1);
}

static void update_plain(float *p, float *m, float *v, const float *g, size_t n, const struct adamw_scalars *k)
{
    update_loop(p, m, v, g, n, k, 0);
}

/* bitsandbytes' kOptimizerStatic8bit2StateBlockwise for Adam, one block of n <= ADAMW8_BLOCK parameters:
 * de-quantise, update the moments, take the new absmaxes, step the parameters, re-quantise. Its scalars are
 * f32 kernel arguments, formed in f32 on the device. */
static void update_block_8bit(float *p, const float *g, size_t n, uint8_t *qm, uint8_t *qv, float *am, float *av,
                              float lr, float wd, float b1, float b2, float eps, float step)
{
    const float *smap = nf4_dynamic_map(), *umap = nf4_dynamic_map_unsigned();
    float correction1 = 1.0f - powf(b1, step), correction2 = sqrtf(1.0f - powf(b2, step));
    float step_size = -lr * correction2 / correction1;
    float m[ADAMW8_BLOCK], v[ADAMW8_BLOCK], max_m = 0.0f, max_v = 0.0f;
    for (size_t i = 0; i < n; i++) {
        m[i] = smap[qm[i]] * *am;
        m[i] = m[i] * b1 + (1.0f - b1) * g[i];
        v[i] = umap[qv[i]] * *av;
        v[i] = v[i] * b2 + (1.0f - b2) * g[i] * g[i];
        max_m = fmaxf(max_m, fabsf(m[i]));
        max_v = fmaxf(max_v, fabsf(v[i]));
    }
    *am = max_m, *av = max_v;
    for (size_t i = 0; i < n; i++) {
        if (isfinite(g[i])) {
            p[i] = p[i] + step_size * (m[i] / (sqrtf(v[i]) + correction2 * eps));
            if (wd > 0.0f)
                p[i] = p[i] * (1.0f - lr * wd);
        }
        qm[i] = nf4_nearest_code(smap, max_m > 0.0f ? m[i] / max_m : 0.0f);
        qv[i] = nf4_nearest_code(umap, max_v > 0.0f ? v[i] / max_v : 0.0f);
    }
}

static void update_8bit(struct adamw *o, size_t offset, float *params, const float *grads, size_t n, double lr,
                        double wd, const struct adamw_config *c)
{
    for (size_t lo = 0; lo < n; lo += ADAMW8_BLOCK) {
        size_t len = n - lo < ADAMW8_BLOCK ? n - lo : ADAMW8_BLOCK, at = offset + lo, b = at / ADAMW8_BLOCK;
        update_block_8bit(params + lo, grads + lo, len, o->qm + at, o->qv + at, o->am + b, o->av + b, (float)lr,
                          (float)wd, (float)c->beta1, (float)c->beta2, (float)c->eps, (float)o->step);
    }
}

/* Scalars are formed in double and rounded to float once, as PyTorch does with Python-float scalars. */
void adamw_update(struct adamw *o, size_t offset, float *params, const float *grads, size_t n, double lr, double wd,
                  const struct adamw_config *c)
{
    if (o->qm) {
        update_8bit(o, offset, params, grads, n, lr, wd, c);
        return;
    }
    double t = (double)o->step;
    struct adamw_scalars k = {
        .decay = (float)(1.0 - lr * wd),
        .b1 = (float)c->beta1,
        .b2 = (float)c->beta2,
        .one_minus_b1 = (float)(1.0 - c->beta1),
        .one_minus_b2 = (float)(1.0 - c->beta2),
        .step_size = (float)-(lr / (1.0 - pow(c->beta1, t))),
        .bc2_sqrt = (float)sqrt(1.0 - pow(c->beta2, t)),
        .eps = (float)c->eps,
    };
    if (__builtin_cpu_supports("fma"))
        update_fused(params, o->m + offset, o->v + offset, grads, n, &k);
    else
        update_plain(params, o->m + offset, o->v + offset, grads, n, &k);
}

float grad_clip_factor(double norm, float max_norm)
{
    double f = max_norm / (norm + 1e-6);
    return max_norm > 0 && f < 1.0 ? (float)f : 1.0f;
}

double grad_clip(float *g, size_t n, float max_norm)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)g[i] * g[i];
    double norm = sqrt(s);
    float clip = grad_clip_factor(norm, max_norm);
    for (size_t i = 0; clip < 1.0f && i < n; i++)
        g[i] *= clip;
    return norm;
}

float lr_at(const struct lr_schedule *s, int64_t step)
{
    if (step < s->warmup_steps)
        return s->max_lr * (float)(step + 1) / (float)s->warmup_steps;
    int64_t span = s->total_steps - s->warmup_steps;
    if (s->decay == LR_CONSTANT || span <= 0)
        return s->max_lr;
    double frac = (double)(step - s->warmup_steps) / (double)span;
    if (frac >= 1.0)
        return s->min_lr;
    double k = s->decay == LR_COSINE ? 0.5 * (1.0 + cos(M_PI * frac)) : 1.0 - frac;
    return (float)(s->min_lr + k * (s->max_lr - s->min_lr));
}
