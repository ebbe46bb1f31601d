/* m2rnn: one program, several subcommands. `m2rnn --help` lists them. */
#include <errno.h>
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

/* Exit status `status`, or 1 if what went to stdout could not all be written (a full disk, say:
 * `m2rnn check --json >results.json` must not exit 0 with a truncated file). */
static int finish(const char *who, int status)
{
    int err = fflush(stdout) != 0 ? errno : 0;
    if (err || ferror(stdout)) {
        fprintf(stderr, "%s: cannot write the output: %s\n", who, err ? strerror(err) : "write error");
        return status ? status : 1;
    }
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return finish("m2rnn", 0);
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("m2rnn %s\n", m2rnn_version());
        return finish("m2rnn", 0);
    }
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(argv[1], commands[i].name) != 0) continue;
        char who[64];
        snprintf(who, sizeof who, "m2rnn %s", commands[i].name);
        return finish(who, commands[i].run(argc - 1, argv + 1));
    }
    fprintf(stderr, "m2rnn: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
