/*
 * Helpers for the layers' Check suites (issue 5): F64 tensors that own their memory, seeded fills,
 * and one finite-difference gradient checker that every layer's suite drives through a loss
 * callback. Built on tests/testutil (test_rng, run_suite).
 */
#ifndef M2RNN_LAYER_TESTUTIL_H
#define M2RNN_LAYER_TESTUTIL_H

#include "testutil.h"

/* A zeroed F64 tensor with the given shape (caller frees .data). */
m2rnn_tensor lt_tensor(int rank, ...);
/* A zeroed tensor of this dtype and shape (rank, shape[]). */
m2rnn_tensor lt_tensor_dtype(m2rnn_dtype dtype, int rank, const int64_t *shape);
/* Fill every element with U[lo, hi) (rounded to the tensor's dtype). */
void lt_fill(m2rnn_tensor *t, test_rng *r, double lo, double hi);
/* Σ a·b over the elements of two tensors of the same numel (absent b: 0). */
double lt_dot(const m2rnn_tensor *a, const m2rnn_tensor *b);
/* Free .data of each tensor of a list and mark it absent. */
void lt_free(m2rnn_tensor **ts, int count);

/* Compare grad (any dtype) with the central difference (L(x+ε) - L(x-ε)) / 2ε of loss(ctx)
 * with respect to x (an F64 tensor the loss reads), element by element:
 * |fd - grad| <= tol·(1 + |grad|). Tensors of up to 64 elements are checked everywhere, larger
 * ones at 48 sampled elements. `what` names the case and the tensor in a failure. */
typedef double (*lt_loss_fn)(void *ctx);
void lt_check_grad(lt_loss_fn loss, void *ctx, m2rnn_tensor *x, const m2rnn_tensor *grad, double eps, double tol,
                   const char *what);

/* Fill every output tensor with `poison` before a call that must fail, then assert it stayed.
 * Both walk the tensor's current shape: a test may shrink an output's shape, never grow it. */
void lt_poison(m2rnn_tensor **ts, int count, double poison);
void lt_assert_poisoned(m2rnn_tensor **ts, int count, double poison, const char *what);

/* Largest |a - b| over the elements. */
double lt_max_abs_diff(const m2rnn_tensor *a, const m2rnn_tensor *b);

#endif
