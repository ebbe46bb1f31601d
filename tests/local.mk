# tests/: Check suites, run by `make check` through automake's TAP driver.
if HAVE_CHECK
noinst_LTLIBRARIES += tests/libtestutil.la
tests_libtestutil_la_SOURCES = tests/testutil.c tests/testutil.h
tests_libtestutil_la_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)

TEST_LDADD = tests/libtestutil.la libm2rnn.la $(CHECK_LIBS) -lm
TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)

REFERENCE_TESTS = \
	tests/check_tensor \
	tests/check_recurrence_grad \
	tests/check_recurrence_invariants \
	tests/check_recurrence_clip \
	tests/check_recurrence_errors
check_PROGRAMS += $(REFERENCE_TESTS)
TESTS += $(REFERENCE_TESTS)

tests_check_recurrence_grad_SOURCES = tests/check_recurrence_grad.c
tests_check_recurrence_grad_CFLAGS = $(TEST_CFLAGS)
tests_check_recurrence_grad_LDADD = tests/liblayertest.la $(TEST_LDADD)

tests_check_tensor_SOURCES = tests/check_tensor.c
tests_check_tensor_CFLAGS = $(TEST_CFLAGS) -fno-trapping-math
tests_check_tensor_LDADD = $(TEST_LDADD)
tests_check_recurrence_invariants_SOURCES = tests/check_recurrence_invariants.c
tests_check_recurrence_invariants_CFLAGS = $(TEST_CFLAGS)
tests_check_recurrence_invariants_LDADD = $(TEST_LDADD)
tests_check_recurrence_clip_SOURCES = tests/check_recurrence_clip.c
tests_check_recurrence_clip_CFLAGS = $(TEST_CFLAGS)
tests_check_recurrence_clip_LDADD = $(TEST_LDADD)
tests_check_recurrence_errors_SOURCES = tests/check_recurrence_errors.c
tests_check_recurrence_errors_CFLAGS = $(TEST_CFLAGS)
tests_check_recurrence_errors_LDADD = $(TEST_LDADD)

# Plug-ins the loader must refuse (built for make check only; -rpath makes libtool build a .so).
check_LTLIBRARIES += tests/plugin_bad_abi.la tests/plugin_unavailable.la
tests_plugin_bad_abi_la_SOURCES = tests/plugin_bad_abi.c
tests_plugin_bad_abi_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
tests_plugin_unavailable_la_SOURCES = tests/plugin_unavailable.c
tests_plugin_unavailable_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
AM_TESTS_ENVIRONMENT += M2RNN_TEST_PLUGINS='$(abs_top_builddir)/tests/.libs'; export M2RNN_TEST_PLUGINS;
endif
