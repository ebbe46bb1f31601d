/* The m2rnn program's subcommands: each is `int cmd_<name>(int argc, char **argv)` with argv[0]
 * the subcommand's name, returning the process exit status. */
#ifndef M2RNN_TOOLS_COMMANDS_H
#define M2RNN_TOOLS_COMMANDS_H

int cmd_info(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_gen(int argc, char **argv);
int cmd_check(int argc, char **argv);

#endif
