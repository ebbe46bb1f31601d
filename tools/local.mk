# tools/: the m2rnn command-line program.
bin_PROGRAMS += m2rnn
m2rnn_SOURCES = tools/m2rnn.c tools/commands.h tools/cmd_info.c tools/cmd_bench.c tools/plugins.c tools/plugins.h
m2rnn_CFLAGS = $(AM_CFLAGS) $(BLAS_CFLAGS)
m2rnn_LDADD = libm2rnn.la $(BLAS_LIBS)

# m2rnn bench from the command line (TAP).
TESTS += tests/bench_cli.sh
dist_noinst_SCRIPTS += tests/bench_cli.sh

# m2rnn info from the command line (TAP); loads the example plug-in built in vectors/local.mk.
TESTS += tests/info_cli.sh
dist_noinst_SCRIPTS += tests/info_cli.sh
