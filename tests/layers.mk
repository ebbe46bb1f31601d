# tests/layers.mk: the layers of issue 5 (their sources and Check suites).

# The reference layers (libm2rnn) and their public headers.
libm2rnn_la_SOURCES += \
	ref/layer_util.h \
	ref/layer_util.c \
	ref/init.c \
	ref/decay_gate.c \
	ref/conv1d.c
m2rnninclude_HEADERS += \
	ref/m2rnn/init.h \
	ref/m2rnn/decay_gate.h \
	ref/m2rnn/conv1d.h

if HAVE_CHECK
noinst_LTLIBRARIES += tests/liblayertest.la
tests_liblayertest_la_SOURCES = tests/layer_testutil.c tests/layer_testutil.h
tests_liblayertest_la_CFLAGS = $(TEST_CFLAGS)
LAYER_TEST_LDADD = tests/liblayertest.la $(TEST_LDADD)

LAYER_TESTS = \
	tests/check_decay_gate \
	tests/check_conv1d
check_PROGRAMS += $(LAYER_TESTS)
TESTS += $(LAYER_TESTS)

tests_check_decay_gate_SOURCES = tests/check_decay_gate.c
tests_check_decay_gate_CFLAGS = $(TEST_CFLAGS)
tests_check_decay_gate_LDADD = $(LAYER_TEST_LDADD)

tests_check_conv1d_SOURCES = tests/check_conv1d.c
tests_check_conv1d_CFLAGS = $(TEST_CFLAGS)
tests_check_conv1d_LDADD = $(LAYER_TEST_LDADD)
endif
