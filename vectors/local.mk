# vectors/: the golden vectors, their reader/writer, the generator, the checker and its teeth.
# (Issue 3. Every rule for these files lives here; the top Makefile.am includes this file.)

# The safetensors reader/writer is part of libm2rnn (public header <m2rnn/safetensors.h>).
libm2rnn_la_SOURCES += ref/safetensors.c
m2rnninclude_HEADERS += ref/m2rnn/safetensors.h

# The vector machinery shared by `m2rnn gen`, `m2rnn check` and the tests: the case catalogue,
# the checker, sha256, and the emulated precision classes used for calibration.
noinst_LTLIBRARIES += tools/libvectors.la
tools_libvectors_la_SOURCES = \
	tools/vectors.h \
	tools/catalogue.c \
	tools/opdescs.c \
	tools/opcases.c \
	tools/checker.c \
	tools/sha256.c \
	ref/m2rnn_emulated.h \
	ref/m2rnn_emulated.c
tools_libvectors_la_CFLAGS = $(AM_CFLAGS) $(CJSON_CFLAGS)
tools_libvectors_la_LIBADD = libm2rnn.la $(CJSON_LIBS) -lm

m2rnn_SOURCES += tools/cmd_gen.c tools/cmd_check.c
m2rnn_CFLAGS += $(CJSON_CFLAGS)
m2rnn_LDADD += tools/libvectors.la $(CJSON_LIBS)

if HAVE_CHECK
check_PROGRAMS += tests/check_safetensors
TESTS += tests/check_safetensors
tests_check_safetensors_SOURCES = tests/check_safetensors.c
tests_check_safetensors_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) -I$(top_srcdir)/tests
tests_check_safetensors_LDADD = tests/libtestutil.la libm2rnn.la $(CHECK_LIBS) -lm
endif

if HAVE_CHECK
# The shipped vectors against the reference and the checker's teeth; the mutants; regeneration.
VECTOR_TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(CJSON_CFLAGS) -I$(top_srcdir)/tools -I$(top_srcdir)/tests
VECTOR_TEST_LDADD = tools/libvectors.la tests/libtestutil.la libm2rnn.la $(CJSON_LIBS) $(CHECK_LIBS) -lm

check_PROGRAMS += tests/check_vectors tests/check_mutants
TESTS += tests/check_vectors tests/check_mutants
tests_check_vectors_SOURCES = tests/check_vectors.c tests/vectors_testlib.h tests/mutants/mutants.c tests/mutants/mutants.h
tests_check_vectors_CFLAGS = $(VECTOR_TEST_CFLAGS)
tests_check_vectors_LDADD = $(VECTOR_TEST_LDADD)
tests_check_mutants_SOURCES = tests/check_mutants.c tests/vectors_testlib.h tests/mutants/mutants.c tests/mutants/mutants.h
tests_check_mutants_CFLAGS = $(VECTOR_TEST_CFLAGS)
tests_check_mutants_LDADD = $(VECTOR_TEST_LDADD)
# The layer ops' mutants (conv flipped, eps outside the root, softmax without max, mask off by one, ...).
check_PROGRAMS += tests/check_mutants_layers
TESTS += tests/check_mutants_layers
tests_check_mutants_layers_SOURCES = tests/check_mutants_layers.c tests/vectors_testlib.h tests/mutants/layer_mutants.c tests/mutants/layer_mutants.h
tests_check_mutants_layers_CFLAGS = $(VECTOR_TEST_CFLAGS)
tests_check_mutants_layers_LDADD = $(VECTOR_TEST_LDADD)
endif

# The vectors themselves (the whole directory: the .safetensors files, MANIFEST.json).
EXTRA_DIST += vectors
# Installed too, so that an installed `m2rnn check` finds them by default (see cmd_check.c).
# The file list is whatever `m2rnn gen` wrote (GNU make's wildcard; the set changes with the catalogue).
vectorsdir = $(pkgdatadir)/vectors
vectors_DATA = $(wildcard $(srcdir)/vectors/*.safetensors) $(srcdir)/vectors/MANIFEST.json

if HAVE_CHECK
# `m2rnn gen` reproduces the shipped set (links the generator itself).
check_PROGRAMS += tests/check_vectors_gen
TESTS += tests/check_vectors_gen
tests_check_vectors_gen_SOURCES = tests/check_vectors_gen.c tests/vectors_testlib.h tools/cmd_gen.c
tests_check_vectors_gen_CFLAGS = $(VECTOR_TEST_CFLAGS)
tests_check_vectors_gen_LDADD = $(VECTOR_TEST_LDADD)
endif

# The example plug-in of "Validate your kernel" (README.md), and the command-line test
# that loads it by path. -rpath makes libtool build a shared object although it is never installed.
check_LTLIBRARIES += tests/libm2rnn-example.la
tests_libm2rnn_example_la_SOURCES = tests/example_plugin.c
tests_libm2rnn_example_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
tests_libm2rnn_example_la_LIBADD = libm2rnn.la -lm
TESTS += tests/vectors_cli.sh
dist_noinst_SCRIPTS += tests/vectors_cli.sh
AM_TESTS_ENVIRONMENT += M2RNN_BIN='$(abs_top_builddir)/m2rnn'; \
	M2RNN_EXAMPLE_PLUGIN='$(abs_top_builddir)/tests/.libs/libm2rnn-example.so'; \
	M2RNN_SRCDIR='$(abs_top_srcdir)'; export M2RNN_BIN M2RNN_EXAMPLE_PLUGIN M2RNN_SRCDIR;

# m2rnn gen's output under two of OpenBLAS's kernel sets (exact order, README section 6).
TESTS += tests/vectors_gen_blas.sh
dist_noinst_SCRIPTS += tests/vectors_gen_blas.sh

# The Python loader (tools/m2rnn_vectors.py), tested with $(PYTHON_NUMPY); skipped without one.
TESTS += tests/vectors_python.sh
dist_noinst_SCRIPTS += tests/vectors_python.sh tools/m2rnn_vectors.py
EXTRA_DIST += tests/test_vectors.py
