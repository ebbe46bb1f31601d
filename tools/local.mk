# tools/: the m2rnn command-line program.
bin_PROGRAMS += m2rnn
m2rnn_SOURCES = tools/m2rnn.c
m2rnn_LDADD = libm2rnn.la
