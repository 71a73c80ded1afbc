/* The melodist command-line tool: one entry point per top-level command.
 * Each takes the arguments after the command name (argv[0] is the command name)
 * and returns the process exit status: 0 success, 1 invalid input, 2 usage error. */
#ifndef MELODIST_CLI_COMMANDS_H
#define MELODIST_CLI_COMMANDS_H

#include <stddef.h>

int cmd_abc(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_compose(int argc, char **argv);
int cmd_continue(int argc, char **argv);
int cmd_harmonize(int argc, char **argv);
int cmd_analyze(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_finetune(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_serve(int argc, char **argv);
/* Merges the PEFT adapter in dir into m (src/cli/finetune.c); *owned is freed after the model. */
struct model;
int cli_merge_adapter(struct model *m, const char *dir, void **owned, char *err, size_t errlen);

#endif
