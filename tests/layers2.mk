# tests/layers2.mk: the rest of issue 5's layers (GDN block, attention, embedding, loss, model)
# and their Check suites. Included after tests/layers.mk, whose liblayertest it reuses.

libm2rnn_la_SOURCES += \
	ref/gdn_block.c
m2rnninclude_HEADERS += \
	ref/m2rnn/gdn_block.h

if HAVE_CHECK
LAYER2_TESTS = \
	tests/check_gdn_block
check_PROGRAMS += $(LAYER2_TESTS)
TESTS += $(LAYER2_TESTS)

tests_check_gdn_block_SOURCES = tests/check_gdn_block.c
tests_check_gdn_block_CFLAGS = $(TEST_CFLAGS)
tests_check_gdn_block_LDADD = $(LAYER_TEST_LDADD)
endif
