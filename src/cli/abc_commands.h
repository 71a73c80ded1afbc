/* The subcommands of 'melodist abc', one function each (argv[0] is the subcommand name).
 * Return 0 ok, 1 invalid input, 2 usage error. */
#ifndef MELODIST_CLI_ABC_COMMANDS_H
#define MELODIST_CLI_ABC_COMMANDS_H

int abc_cmd_check(int argc, char **argv);
int abc_cmd_fmt(int argc, char **argv);
int abc_cmd_info(int argc, char **argv);
int abc_cmd_midi(int argc, char **argv);
int abc_cmd_wav(int argc, char **argv);
int abc_cmd_transpose(int argc, char **argv);
int abc_cmd_search(int argc, char **argv);

#endif
