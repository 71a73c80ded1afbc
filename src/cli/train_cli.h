/* The command-line side shared by melodist train and melodist finetune (src/cli/train.c). */
#ifndef MELODIST_CLI_TRAIN_CLI_H
#define MELODIST_CLI_TRAIN_CLI_H

#include "melodist/train.h"

/* Parses --config FILE [--out DIR] [--resume], joins MPI, saves and stops on Ctrl-C, prints progress lines and
 * messages as "melodist NAME: ...", and returns the exit status (0 done, 1 failed, 2 usage, 130 interrupted). */
int cli_run_training(int argc, char **argv, const char *name, const char *usage,
                     enum train_result (*run)(const struct train_options *o, char *err, size_t errlen));

#endif
