/* Runs AdamW for a few steps (two parameter groups, changing lr) and dumps everything for
 * train_ref.py adamw, which replays the steps with torch.optim.AdamW. */
#include "melodist/optim.h"
#include "tdump.h"

enum { STEPS = 5, NA = 64, NB = 32 };

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: train_adamw_dump OUT\n");
        return 2;
    }
    FILE *f = tdump_open(argv[1]);
    float a[NA], b[NB], ga[STEPS][NA], gb[STEPS][NB], lrs[STEPS];
    trng_fill(a, NA, 1.0f);
    trng_fill(b, NB, 1.0f);
    TDUMP_F32(f, "a0", a, NA);
    TDUMP_F32(f, "b0", b, NB);
    struct adamw opt;
    struct adamw_config cfg = {0.9, 0.95, 1e-8};
    struct lr_schedule sched = {3e-2f, 3e-3f, 2, STEPS, LR_COSINE};
    if (adamw_init(&opt, NA + NB))
        return 1;
    for (int s = 0; s < STEPS; s++) {
        trng_fill(ga[s], NA, s == 2 ? 1e-6f : 0.5f); /* one step of tiny gradients exercises eps */
        trng_fill(gb[s], NB, 2.0f);
        lrs[s] = lr_at(&sched, s);
        adamw_begin_step(&opt);
        adamw_update(&opt, 0, a, ga[s], NA, lrs[s], 0.1, &cfg);
        adamw_update(&opt, NA, b, gb[s], NB, lrs[s], 0.0, &cfg);
    }
    TDUMP_F32(f, "ga", ga, STEPS, NA);
    TDUMP_F32(f, "gb", gb, STEPS, NB);
    TDUMP_F32(f, "lr", lrs, STEPS);
    TDUMP_F32(f, "a", a, NA);
    TDUMP_F32(f, "b", b, NB);
    TDUMP_F32(f, "m", opt.m, NA + NB);
    TDUMP_F32(f, "v", opt.v, NA + NB);
    adamw_free(&opt);
    fclose(f);
    return 0;
}
