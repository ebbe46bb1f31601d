/* m2rnn: one program, several subcommands. `m2rnn --help` lists them. */
#include <stdio.h>
#include <string.h>

#include "m2rnn/m2rnn.h"
#include "commands.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"info", cmd_info, "what was built: version, BLAS, OpenMP threads, backends found"},
    {"bench", cmd_bench, "time the recurrence forward and forward+backward on a backend"},
    {"check", cmd_check, "validate a backend (the reference, a plug-in, your kernel) against the golden vectors"},
    {"gen", cmd_gen, "regenerate the golden vectors and their calibrated tolerances"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out, "usage: m2rnn <command> [options]   (m2rnn <command> --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nm2rnn %s — reference implementation of the M²RNN recurrence (arXiv:2603.14360)\n", m2rnn_version());
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("m2rnn %s\n", m2rnn_version());
        return 0;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "m2rnn: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
