/* Mutants of the layer ops (forward): see layer_mutants.c. One at a time (a static table). */
#ifndef M2RNN_TESTS_LAYER_MUTANTS_H
#define M2RNN_TESTS_LAYER_MUTANTS_H
#include "m2rnn/backend.h"
typedef enum {
    LMUT_CONV_FLIPPED, LMUT_RMSNORM_EPS_OUTSIDE, LMUT_ATTN_HONEST, LMUT_ATTN_NO_MAX, LMUT_ATTN_MASK_OFF_BY_ONE,
    LMUT_ATTN_GQA_MOD, LMUT_GATE_SIGMOID, LMUT_GATE_NO_EXP, LMUT_SILU_SIGMOID, LMUT_CE_MEAN_ALL, LMUT_LINEAR_W, LMUT_COUNT
} layer_mutant;
const m2rnn_backend *layer_mutant_backend(layer_mutant m);
const char *layer_mutant_name(layer_mutant m);
const char *layer_mutant_op(layer_mutant m);
#endif
