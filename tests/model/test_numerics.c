/* Compares the C InternLM2 engine with the PyTorch reference (tests/reference/internlm2_ref.py):
 *   logits of every position: rel = max|ours - ref| / max|ref| over the whole [seq][vocab] array <= 1e-4
 *   (f32 and bf16 checkpoints; the bf16 reference uses the same rounded weights with f32 maths);
 *   greedy continuation of 64 tokens identical, via prefill-then-decode and via token-by-token feeding;
 *   q8 / q4 re-quantised copies within the tolerances documented in docs/model.md.
 * usage: test_numerics FIXTURE_DIR WORK_DIR */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "melodist/json.h"
#include "melodist/model.h"
#include "testutil.h"

#define F32_TOL 1e-4
#define Q8_TOL 3e-2
#define Q4_TOL 3e-1
#define Q8_TOP1 0.95
#define Q4_TOP1 0.65

static int *int_array(const struct json *a, int *n)
{
    *n = (int)a->count;
    int *out = malloc(a->count * sizeof *out);
    for (size_t i = 0; i < a->count; i++)
        out[i] = (int)a->items[i].number;
    return out;
}

static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

static double top1_agreement(const float *a, const float *ref, int seq, int vocab)
{
    int same = 0;
    for (int t = 0; t < seq; t++)
        same += argmax(a + (size_t)t * vocab, vocab) == argmax(ref + (size_t)t * vocab, vocab);
    return (double)same / seq;
}

/* All-position logits of tokens, run in chunks of max_batch. */
static float *run_logits(const struct model *m, const int *tokens, int n, int max_batch)
{
    char err[256];
    float *logits = malloc((size_t)n * m->config.vocab_size * sizeof *logits);
    struct model_state *s = model_state_new(m, 128, max_batch);
    if (!model_forward(m, s, tokens, n, logits, err, sizeof err)) {
        fprintf(stderr, "forward: %s\n", err);
        free(logits);
        logits = NULL;
    }
    model_state_free(s);
    return logits;
}

/* Greedy continuation; the prompt goes in whole (prefill) or one token per call. Returns 0 if it matches. */
static int greedy_matches(const struct model *m, const int *prompt, int np, const int *want, int steps,
                          int token_by_token, float *prompt_logits)
{
    char err[256];
    int vocab = m->config.vocab_size;
    struct model_state *s = model_state_new(m, 128, 16);
    const float *logits = NULL;
    if (token_by_token) {
        for (int i = 0; i < np; i++) {
            logits = model_forward(m, s, &prompt[i], 1, NULL, err, sizeof err);
            if (prompt_logits && logits)
                memcpy(prompt_logits + (size_t)i * vocab, logits, (size_t)vocab * sizeof *logits);
        }
    } else {
        logits = model_forward(m, s, prompt, np, NULL, err, sizeof err);
    }
    int mismatch = -1;
    for (int i = 0; i < steps && logits; i++) {
        int tok = argmax(logits, vocab);
        if (tok != want[i]) {
            mismatch = i;
            break;
        }
        logits = model_forward(m, s, &tok, 1, NULL, err, sizeof err);
    }
    if (!logits)
        fprintf(stderr, "forward: %s\n", err);
    model_state_free(s);
    if (mismatch >= 0)
        fprintf(stderr, "  greedy differs at step %d\n", mismatch);
    return logits && mismatch < 0 ? 0 : -1;
}

static void check_quantised(const struct model *m, const char *work, const char *name, const int *tokens, int n,
                            const float *ref)
{
    static const struct {
        enum nn_dtype dtype;
        double tol, top1;
    } formats[] = {{NN_Q8, Q8_TOL, Q8_TOP1}, {NN_Q4, Q4_TOL, Q4_TOP1}, {NN_F32, 0, 1}};
    for (size_t f = 0; f < sizeof formats / sizeof formats[0]; f++) {
        char dir[1024], err[256];
        snprintf(dir, sizeof dir, "%s/%s_%s", work, name, nn_dtype_name(formats[f].dtype));
        struct model *q = NULL;
        int rc = model_save(m, dir, formats[f].dtype, err, sizeof err);
        CHECK(rc == 0, "%s: save %s: %s", name, nn_dtype_name(formats[f].dtype), err);
        if (rc || model_load(dir, &q, err, sizeof err)) {
            CHECK(0, "%s: reload %s: %s", name, nn_dtype_name(formats[f].dtype), err);
            continue;
        }
        CHECK(model_dtype(q) == formats[f].dtype, "%s: reloaded as %s", dir, nn_dtype_name(model_dtype(q)));
        float *ours = run_logits(q, tokens, n, 16);
        double rel = ours ? tu_rel_error(ours, ref, (size_t)n * m->config.vocab_size) : 1e9;
        double top1 = ours ? top1_agreement(ours, ref, n, m->config.vocab_size) : 0;
        printf("%-22s %-4s rel %.3e  top-1 agreement %.3f  (%zu weight bytes)\n", name,
               nn_dtype_name(formats[f].dtype), rel, top1, model_weight_bytes(q));
        if (formats[f].dtype == NN_F32)
            CHECK(rel <= F32_TOL, "%s: f32 round trip rel %.3e", name, rel);
        else
            CHECK(rel <= formats[f].tol && top1 >= formats[f].top1, "%s %s: rel %.3e (tol %.0e), top-1 %.3f (min %.2f)",
                  name, nn_dtype_name(formats[f].dtype), rel, formats[f].tol, top1, formats[f].top1);
        free(ours);
        model_free(q);
    }
}

static void run_case(const char *fixtures, const char *work, const struct json *c)
{
    const char *name = json_get(c, "name")->string, *variant = json_get(c, "variant")->string;
    char path[1024], err[256];
    int n, np, steps;
    int *tokens = int_array(json_get(c, "tokens"), &n), *prompt = int_array(json_get(c, "prompt"), &np);
    int *want = int_array(json_get(c, "greedy"), &steps);
    int vocab = (int)json_get(c, "vocab_size")->number, ntk = json_get(c, "ntk_active")->boolean;
    size_t nlog = (size_t)n * vocab, got = 0;
    float *ref = malloc(nlog * sizeof *ref);
    snprintf(path, sizeof path, "%s/%s", fixtures, json_get(c, "logits")->string);
    FILE *f = fopen(path, "rb");
    if (f) {
        got = fread(ref, sizeof *ref, nlog, f);
        fclose(f);
    }
    CHECK(got == nlog, "%s: cannot read %zu logits", path, nlog);
    struct model *m = NULL;
    snprintf(path, sizeof path, "%s/%s", fixtures, json_get(c, "dir")->string);
    if (got != nlog || model_load(path, &m, err, sizeof err)) {
        CHECK(0, "%s: load: %s", name, err);
        goto out;
    }
    for (int batch = 1; batch <= 64; batch *= 8) { /* batch 1 = decode kernels, 8 = chunked prefill, 64 = whole */
        float *ours = run_logits(m, tokens, n, batch);
        double rel = ours ? tu_rel_error(ours, ref, nlog) : 1e9;
        printf("%-22s logits rel %.3e (prefill chunks of %d)\n", name, rel, batch);
        CHECK(rel <= F32_TOL, "%s: logits rel error %.3e > %.0e (chunk %d)", name, rel, F32_TOL, batch);
        free(ours);
    }
    float *tbt = malloc((size_t)np * vocab * sizeof *tbt);
    CHECK(!greedy_matches(m, prompt, np, want, steps, 0, NULL), "%s: greedy (prefill + decode) differs", name);
    CHECK(!greedy_matches(m, prompt, np, want, steps, 1, tbt), "%s: greedy (token by token) differs", name);
    if (!ntk) { /* without NTK, feeding one token at a time must give the full-sequence logits */
        double rel = tu_rel_error(tbt, ref, (size_t)np * vocab);
        CHECK(rel <= F32_TOL, "%s: token-by-token logits rel %.3e", name, rel);
    }
    free(tbt);
    printf("%-22s greedy %d tokens identical (prefill+decode, token-by-token)\n", name, steps);
    if (!strcmp(variant, "f32"))
        check_quantised(m, work, name, tokens, n, ref);
out:
    model_free(m);
    free(ref), free(tokens), free(prompt), free(want);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: test_numerics FIXTURE_DIR WORK_DIR\n");
        return 2;
    }
    char path[1024], err[256];
    size_t len;
    snprintf(path, sizeof path, "%s/cases.json", argv[1]);
    char *text = tu_read_file(path, &len);
    struct json *cases = text ? json_parse(text, len, err, sizeof err) : NULL;
    if (!text) {
        fprintf(stderr, "SKIP: %s missing (the PyTorch reference did not run)\n", path);
        return 77;
    }
    if (!cases) {
        fprintf(stderr, "%s: %s\n", path, err);
        return 1;
    }
    mkdir(argv[2], 0777);
    printf("kernels: %s, %d threads\n", nn_simd_name(), nn_threads());
    for (size_t i = 0; i < cases->count; i++)
        run_case(argv[1], argv[2], &cases->items[i]);
    json_free(cases);
    free(text);
    if (tu_failures)
        fprintf(stderr, "%d failures\n", tu_failures);
    return tu_failures ? 1 : 0;
}
