/* Sampling options shared by the commands that generate text. */
#ifndef MELODIST_CLI_GEN_OPTIONS_H
#define MELODIST_CLI_GEN_OPTIONS_H

#include <stdio.h>

#include "melodist/generate.h"

#define GEN_OPTIONS_HELP                                                                                         \
    "  --max-tokens N          tokens to generate at most per reply\n"                                        \
    "  --temperature T         0 = greedy\n"                                                                    \
    "  --top-k K, --top-p P, --min-p P, --repeat-penalty R, --seed S   sampling\n"                               \
    "  --threads N             worker threads (all cores)\n"

/* If name is a sampling option, stores value into p (or *threads) and returns 1; returns 0 for other options
 * and -1 for a bad value. */
int gen_option(const char *name, const char *value, struct gen_params *p, int *threads);

#endif
