/* NF4 quantisation of test vectors, dumped for tests/reference/lora_ref.py nf4, which re-derives every code,
 * scale and de-quantised value with its own numpy/torch implementation of the bitsandbytes algorithm. The
 * same values as a [101, 381] matrix quantised a few rows at a time (nf4_quantize_matrix, blocks spanning
 * rows) must give the very same bytes. */
#include <stdlib.h>

#include "../train/tdump.h"
#include "melodist/nf4.h"
#include "melodist/nn.h"

static void dump_bytes(FILE *f, const char *name, const uint8_t *b, size_t n)
{
    int32_t *v = malloc(sizeof(int32_t) * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        v[i] = b[i];
    TDUMP_I32(f, name, v, (int64_t)n);
    free(v);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: nf4_dump OUT\n");
        return 2;
    }
    /* 301 blocks and a partial one (odd length): two full scale blocks and a partial third. Values: a
     * Gaussian-ish sum of uniforms with block-varying magnitude; block 3 holds 1.0 and the exact midpoints of
     * the code book (ties go to the lower code); block 5 the code values themselves. */
    size_t n = 64 * 601 + 17;
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) {
        float g = trng_uniform() + trng_uniform() + trng_uniform() - 1.5f;
        x[i] = g * (0.01f + (float)(i / 64 % 7));
    }
    x[3 * 64] = 1.0f;
    for (int k = 0; k < 15; k++)
        x[3 * 64 + 1 + k] = (nf4_code[k] + nf4_code[k + 1]) / 2.0f;
    for (int k = 0; k < 16; k++)
        x[5 * 64 + k] = nf4_code[k] * 3.0f;
    FILE *f = tdump_open(argv[1]);
    TDUMP_F32(f, "x", x, (int64_t)n);
    TDUMP_F32(f, "code", nf4_code, 16);
    TDUMP_F32(f, "dynamic_map", nf4_dynamic_map(), 256);
    for (int dq = 0; dq < 2; dq++) {
        struct nf4_tensor t;
        if (nf4_quantize(&t, x, n, dq)) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        char name[64];
        snprintf(name, sizeof name, "dq%d.packed", dq);
        dump_bytes(f, name, t.q, (n + 1) / 2);
        nf4_dequantize(&t, 0, n, y);
        snprintf(name, sizeof name, "dq%d.dequant", dq);
        TDUMP_F32(f, name, y, (int64_t)n);
        nf4_dequantize(&t, 64 * 100 + 5, 1000, y); /* a range starting inside a block */
        snprintf(name, sizeof name, "dq%d.dequant_range", dq);
        TDUMP_F32(f, name, y, 1000);
        if (dq) {
            size_t n2 = (t.n_blocks + NF4_SCALE_BLOCK - 1) / NF4_SCALE_BLOCK;
            dump_bytes(f, "dq1.qabsmax", t.qabsmax, t.n_blocks);
            TDUMP_F32(f, "dq1.absmax2", t.absmax2, (int64_t)n2);
            TDUMP_F32(f, "dq1.offset", &t.offset, 1);
        } else {
            TDUMP_F32(f, "dq0.absmax", t.absmax, (int64_t)t.n_blocks);
        }
        struct nf4_tensor by_rows;
        struct nn_matrix w = {NN_F32, 101, 381, x, NULL};
        if (101 * 381 != n || nf4_quantize_matrix(&by_rows, &w, dq))
            return 1;
        size_t scales2 = sizeof(float) * ((t.n_blocks + NF4_SCALE_BLOCK - 1) / NF4_SCALE_BLOCK);
        int same = !memcmp(by_rows.q, t.q, (n + 1) / 2) && by_rows.offset == t.offset &&
                   (dq ? !memcmp(by_rows.qabsmax, t.qabsmax, t.n_blocks) && !memcmp(by_rows.absmax2, t.absmax2, scales2)
                       : !memcmp(by_rows.absmax, t.absmax, sizeof(float) * t.n_blocks));
        printf("nf4_quantize_matrix (64 rows at a time) %s nf4_quantize, double quantisation %s\n",
               same ? "equals" : "DIFFERS FROM", dq ? "on" : "off");
        if (!same)
            return 1;
        nf4_free(&by_rows);
        nf4_free(&t);
    }
    fclose(f);
    free(x), free(y);
    return 0;
}
