/*
 * Cross-entropy of logits against integer targets (SPEC.md §5), mean over the counted tokens:
 *
 *   log p_t = x_t[y_t] - logsumexp(x_t),  logsumexp(x) = m + log Σ_c exp(x_c - m),  m = max_c x_c
 *   loss    = -(1/n) Σ_{t counted} log p_t,      n = number of counted tokens
 *   dlogits_t = dloss/n · (softmax(x_t) - onehot(y_t))  for counted t, 0 for the others
 *
 * A token is counted unless has_ignore is set and its target equals ignore_index (PyTorch's
 * ignore_index, -100 by convention). With no counted token the loss and every gradient are 0
 * (PyTorch would give NaN; a batch of padding should not poison a sum of losses).
 * The log-softmax is evaluated in double (fp64) whatever the storage dtype.
 *
 * Shapes: logits (..., C) of rank >= 1; targets (...) I32/I64 in host memory, each counted target
 * in [0, C); loss: one element (any shape of numel 1, e.g. rank 0); dloss: one element, or absent
 * (= 1); dlogits: shape of logits.
 */
#ifndef M2RNN_CROSS_ENTROPY_H
#define M2RNN_CROSS_ENTROPY_H

#include "m2rnn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    m2rnn_tensor logits;   /* required, (..., C) */
    m2rnn_tensor targets;  /* required, (...) I32/I64, host memory */
    bool has_ignore;
    int64_t ignore_index;
} m2rnn_cross_entropy_inputs;

typedef struct {
    m2rnn_cross_entropy_inputs in;
    m2rnn_tensor loss;     /* required output, one element */
} m2rnn_cross_entropy_forward_args;

typedef struct {
    m2rnn_cross_entropy_inputs in;
    m2rnn_tensor dloss;    /* optional, one element (absent: 1) */
    m2rnn_tensor dlogits;  /* required output, shape of logits */
} m2rnn_cross_entropy_backward_args;

m2rnn_status m2rnn_cross_entropy_check_forward(const m2rnn_cross_entropy_forward_args *args);
m2rnn_status m2rnn_cross_entropy_check_backward(const m2rnn_cross_entropy_backward_args *args);
m2rnn_status m2rnn_cross_entropy_forward_ref(const m2rnn_cross_entropy_forward_args *args);
m2rnn_status m2rnn_cross_entropy_backward_ref(const m2rnn_cross_entropy_backward_args *args);

#ifdef __cplusplus
}
#endif
#endif
