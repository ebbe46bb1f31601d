# tests/layers2.mk: the rest of issue 5's layers (GDN block, attention, embedding, loss, model)
# and their Check suites. Included after tests/layers.mk, whose liblayertest it reuses.

libm2rnn_la_SOURCES += \
	ref/gdn_block.c \
	ref/attention.c \
	ref/attention_block.c \
	ref/embedding.c \
	ref/cross_entropy.c \
	ref/model.c
m2rnninclude_HEADERS += \
	ref/m2rnn/gdn_block.h \
	ref/m2rnn/attention.h \
	ref/m2rnn/embedding.h \
	ref/m2rnn/cross_entropy.h \
	ref/m2rnn/model.h

if HAVE_CHECK
LAYER2_TESTS = \
	tests/check_gdn_block \
	tests/check_attention \
	tests/check_embedding_loss \
	tests/check_model
check_PROGRAMS += $(LAYER2_TESTS)
TESTS += $(LAYER2_TESTS)

tests_check_gdn_block_SOURCES = tests/check_gdn_block.c
tests_check_gdn_block_CFLAGS = $(TEST_CFLAGS)
tests_check_gdn_block_LDADD = $(LAYER_TEST_LDADD)

tests_check_attention_SOURCES = tests/check_attention.c
tests_check_attention_CFLAGS = $(TEST_CFLAGS)
tests_check_attention_LDADD = $(LAYER_TEST_LDADD)

tests_check_embedding_loss_SOURCES = tests/check_embedding_loss.c
tests_check_embedding_loss_CFLAGS = $(TEST_CFLAGS)
tests_check_embedding_loss_LDADD = $(LAYER_TEST_LDADD)

tests_check_model_SOURCES = tests/check_model.c
tests_check_model_CFLAGS = $(TEST_CFLAGS)
tests_check_model_LDADD = $(LAYER_TEST_LDADD)
endif
