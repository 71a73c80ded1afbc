/* Sampling options and model loading shared by the commands that run a model. */
#ifndef MELODIST_CLI_GEN_OPTIONS_H
#define MELODIST_CLI_GEN_OPTIONS_H

#include <stdio.h>

#include "melodist/generate.h"
#include "melodist/tokenizer.h"

#define GEN_OPTIONS_HELP                                                                                         \
    "  --max-tokens N          tokens to generate at most per reply\n"                                        \
    "  --temperature T         0 = greedy\n"                                                                    \
    "  --top-k K, --top-p P, --min-p P, --repeat-penalty R, --seed S   sampling\n"                               \
    "  --threads N             worker threads (all cores)\n"                                                      \
    "  --copy-bias B           with plugins: the pull toward restating the plugin's result (4; 0 = off)\n"

/* If name is a sampling option, stores value into p (or *threads) and returns 1; returns 0 for other options
 * and -1 for a bad value. min_tokens is the smallest --max-tokens accepted (generate takes 0: prompt only). */
int gen_option(const char *name, const char *value, int min_tokens, struct gen_params *p, int *threads);

/* Loads the tokenizer (tok_path, or dir/tokenizer.model) and the model in dir, merging the LoRA adapter when one
 * is given (merged may then be NULL only if adapter is; *merged is freed after the model). On failure prints why
 * as "melodist CMD: ..." and returns 1 with nothing left to free. */
int cli_load_model(const char *cmd, const char *dir, const char *tok_path, const char *adapter, mt_tokenizer **tok,
                   struct model **m, void **merged);

#endif
