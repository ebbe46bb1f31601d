/* The m2rnn program's subcommands: each is `int cmd_<name>(int argc, char **argv)` with argv[0]
 * the subcommand's name, returning the process exit status. */
#ifndef M2RNN_TOOLS_COMMANDS_H
#define M2RNN_TOOLS_COMMANDS_H

int cmd_info(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_gen(int argc, char **argv);
int cmd_check(int argc, char **argv);

#include <stdio.h>

/* The argument of the option at argv[*i] (advancing *i past it), or NULL after `cmd` (say "m2rnn
 * check") has said that it is missing. Inline: cmd_gen.c is also linked alone into a test. */
static inline const char *option_arg(const char *cmd, int argc, char **argv, int *i)
{
    if (*i + 1 < argc) return argv[++*i];
    fprintf(stderr, "%s: %s needs an argument (try --help)\n", cmd, argv[*i]);
    return NULL;
}

#endif
