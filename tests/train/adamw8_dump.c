/* Runs 8-bit AdamW (bitsandbytes AdamW8bit, blockwise) for a few steps and dumps the state before and after
 * each one for adamw8_ref.py, which replays every step from our state with its own implementation of the
 * published algorithm. Blocks with different gradient scales, a block whose gradients are all zero, and a
 * short last block. */
#include "melodist/nf4.h"
#include "melodist/optim.h"
#include "tdump.h"

enum { STEPS = 4, N = 4 * ADAMW8_BLOCK + 700 };

static void dump_state(FILE *f, const char *tag, int s, const float *p, const struct adamw *o)
{
    static int32_t codes[N];
    char name[64];
    snprintf(name, sizeof name, "%s%d.p", tag, s);
    TDUMP_F32(f, name, p, N);
    for (int w = 0; w < 2; w++) {
        for (int i = 0; i < N; i++)
            codes[i] = (w ? o->qv : o->qm)[i];
        snprintf(name, sizeof name, "%s%d.q%c", tag, s, w ? 'v' : 'm');
        TDUMP_I32(f, name, codes, N);
        snprintf(name, sizeof name, "%s%d.a%c", tag, s, w ? 'v' : 'm');
        TDUMP_F32(f, name, w ? o->av : o->am, (N + ADAMW8_BLOCK - 1) / ADAMW8_BLOCK);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: train_adamw8_dump OUT\n");
        return 2;
    }
    FILE *f = tdump_open(argv[1]);
    static float p[N], g[N];
    float lr[STEPS] = {1e-3f, 2e-3f, 2e-3f, 5e-4f}, scale[] = {1e-4f, 1.0f, 0.0f, 30.0f, 0.5f};
    trng_fill(p, N, 0.05f);
    struct adamw opt;
    struct adamw_config cfg = {0.9, 0.999, 1e-8};
    if (adamw_init_8bit(&opt, N))
        return 1;
    for (int s = 0; s < STEPS; s++) {
        for (int i = 0; i < N; i++)
            g[i] = (2.0f * trng_uniform() - 1.0f) * scale[i / ADAMW8_BLOCK] * (s == 2 ? 0.01f : 1.0f);
        char name[32];
        dump_state(f, "before", s, p, &opt);
        snprintf(name, sizeof name, "grad%d", s);
        TDUMP_F32(f, name, g, N);
        adamw_begin_step(&opt);
        adamw_update(&opt, 0, p, g, N, lr[s], s % 2 ? 0.01 : 0.0, &cfg);
        dump_state(f, "after", s, p, &opt);
    }
    TDUMP_F32(f, "lr", lr, STEPS);
    TDUMP_F32(f, "map_signed", nf4_dynamic_map(), 256);
    TDUMP_F32(f, "map_unsigned", nf4_dynamic_map_unsigned(), 256);
    adamw_free(&opt);
    fclose(f);
    return 0;
}
