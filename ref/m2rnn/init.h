/*
 * Seeded parameter initialisation: a small deterministic generator and the fills the models use.
 *
 * The generator is splitmix64 (Steele, Lea, Flood 2014): a 64-bit counter through a mixing
 * function, so a seed fixes every value on every machine. Normal samples use Box–Muller on two
 * uniforms (one sample per pair; the second is discarded so that the i-th sample depends only on
 * the seed and i). Values are computed in double and rounded once to the tensor's dtype.
 */
#ifndef M2RNN_INIT_H
#define M2RNN_INIT_H

#include <stdint.h>

#include "m2rnn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint64_t state;
} m2rnn_rng;

m2rnn_rng m2rnn_rng_seed(uint64_t seed);
/* Uniform in [0, 1), 53 random bits. */
double m2rnn_rng_uniform(m2rnn_rng *rng);
/* Standard normal. */
double m2rnn_rng_normal(m2rnn_rng *rng);

/* Fill every element of a float tensor (host memory): N(0, std²); U[lo, hi); a constant. */
m2rnn_status m2rnn_init_normal(m2rnn_tensor *t, double std, m2rnn_rng *rng);
m2rnn_status m2rnn_init_uniform(m2rnn_tensor *t, double lo, double hi, m2rnn_rng *rng);
m2rnn_status m2rnn_init_constant(m2rnn_tensor *t, double value);
/* (n, m, m): the identity matrix in each of the n slices. */
m2rnn_status m2rnn_init_identity(m2rnn_tensor *t);

#ifdef __cplusplus
}
#endif
#endif
