# tests/layers.mk: the layers of issue 5 (their sources and Check suites).

# The reference layers (libm2rnn) and their public headers.
libm2rnn_la_SOURCES += \
	ref/layer_util.h \
	ref/layer_util.c \
	ref/init.c \
	ref/decay_gate.c \
	ref/conv1d.c \
	ref/linear.c \
	ref/rmsnorm.c \
	ref/mlp.c \
	ref/m2rnn_block.c \
	ref/gated_deltanet.c
m2rnninclude_HEADERS += \
	ref/m2rnn/init.h \
	ref/m2rnn/decay_gate.h \
	ref/m2rnn/conv1d.h \
	ref/m2rnn/linear.h \
	ref/m2rnn/rmsnorm.h \
	ref/m2rnn/mlp.h \
	ref/m2rnn/m2rnn_block.h \
	ref/m2rnn/gated_deltanet.h

if HAVE_CHECK
noinst_LTLIBRARIES += tests/liblayertest.la
tests_liblayertest_la_SOURCES = tests/layer_testutil.c tests/layer_testutil.h
tests_liblayertest_la_CFLAGS = $(TEST_CFLAGS)
LAYER_TEST_LDADD = tests/liblayertest.la $(TEST_LDADD)

LAYER_TESTS = \
	tests/check_decay_gate \
	tests/check_conv1d \
	tests/check_linear \
	tests/check_rmsnorm \
	tests/check_mlp \
	tests/check_m2rnn_block \
	tests/check_gated_deltanet
check_PROGRAMS += $(LAYER_TESTS)
TESTS += $(LAYER_TESTS)

tests_check_decay_gate_SOURCES = tests/check_decay_gate.c
tests_check_decay_gate_CFLAGS = $(TEST_CFLAGS)
tests_check_decay_gate_LDADD = $(LAYER_TEST_LDADD)

tests_check_conv1d_SOURCES = tests/check_conv1d.c
tests_check_conv1d_CFLAGS = $(TEST_CFLAGS)
tests_check_conv1d_LDADD = $(LAYER_TEST_LDADD)
tests_check_linear_SOURCES = tests/check_linear.c
tests_check_linear_CFLAGS = $(TEST_CFLAGS)
tests_check_linear_LDADD = $(LAYER_TEST_LDADD)

tests_check_rmsnorm_SOURCES = tests/check_rmsnorm.c
tests_check_rmsnorm_CFLAGS = $(TEST_CFLAGS)
tests_check_rmsnorm_LDADD = $(LAYER_TEST_LDADD)

tests_check_mlp_SOURCES = tests/check_mlp.c
tests_check_mlp_CFLAGS = $(TEST_CFLAGS)
tests_check_mlp_LDADD = $(LAYER_TEST_LDADD)
tests_check_m2rnn_block_SOURCES = tests/check_m2rnn_block.c
tests_check_m2rnn_block_CFLAGS = $(TEST_CFLAGS)
tests_check_m2rnn_block_LDADD = $(LAYER_TEST_LDADD)
tests_check_gated_deltanet_SOURCES = tests/check_gated_deltanet.c
tests_check_gated_deltanet_CFLAGS = $(TEST_CFLAGS)
tests_check_gated_deltanet_LDADD = $(LAYER_TEST_LDADD)
endif
