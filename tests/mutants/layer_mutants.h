/* Mutants of the layer ops (forward and backward): see layer_mutants.c. One at a time (a static table). */
#ifndef M2RNN_TESTS_LAYER_MUTANTS_H
#define M2RNN_TESTS_LAYER_MUTANTS_H
#include <stdbool.h>

#include "m2rnn/backend.h"
typedef enum {
    LMUT_CONV_FLIPPED, LMUT_RMSNORM_EPS_OUTSIDE, LMUT_ATTN_HONEST, LMUT_ATTN_NO_MAX, LMUT_ATTN_MASK_OFF_BY_ONE,
    LMUT_ATTN_GQA_MOD, LMUT_GATE_SIGMOID, LMUT_GATE_NO_EXP, LMUT_SILU_SIGMOID, LMUT_CE_MEAN_ALL, LMUT_LINEAR_W,
    /* Gated DeltaNet forward: an honest naive copy, β on v only, decay after the update, decay g not e^g */
    LMUT_GDN_HONEST, LMUT_GDN_BETA_V_ONLY, LMUT_GDN_DECAY_AFTER, LMUT_GDN_DECAY_G,
    /* backward slips */
    LMUT_CONV_DW_FLIPPED, LMUT_RMSNORM_BWD_NO_MEAN, LMUT_ATTN_BWD_HONEST, LMUT_ATTN_BWD_NO_ROWSUM,
    LMUT_ATTN_BWD_GQA_NO_REDUCE, LMUT_GATE_BWD_NO_A, LMUT_SILU_BWD_SIGMOID, LMUT_CE_BWD_ALL_TOKENS, LMUT_COUNT
} layer_mutant;
const m2rnn_backend *layer_mutant_backend(layer_mutant m);
const char *layer_mutant_name(layer_mutant m);
const char *layer_mutant_op(layer_mutant m);
bool layer_mutant_backward(layer_mutant m); /* the mutant breaks the op's backward */
#endif
