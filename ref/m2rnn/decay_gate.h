/*
 * The decay gate of the trained M²RNN (SPEC.md §2): the forget weight f in (0, 1] from the raw
 * projection, per head h (the last axis of x):
 *
 *   f = exp(-exp(A_log[h]) · softplus(x + dt_bias[h]))
 *
 * Shapes: x (..., Nf) of any rank >= 1 (e.g. (B,S,Nf) or a packed (T,Nf)), A_log (Nf),
 * dt_bias (Nf); f and dx have the shape of x, dA_log and ddt_bias that of A_log.
 * Any float dtype for any tensor; double inside; each output rounded once.
 */
#ifndef M2RNN_DECAY_GATE_H
#define M2RNN_DECAY_GATE_H

#include "m2rnn/init.h"
#include "m2rnn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    m2rnn_tensor x;        /* required, (..., Nf) */
    m2rnn_tensor A_log;    /* required, (Nf) */
    m2rnn_tensor dt_bias;  /* required, (Nf) */
} m2rnn_decay_gate_inputs;

typedef struct {
    m2rnn_decay_gate_inputs in;
    m2rnn_tensor f;        /* required output, shape of x */
} m2rnn_decay_gate_forward_args;

typedef struct {
    m2rnn_decay_gate_inputs in;
    m2rnn_tensor df;       /* required, shape of x: dL/df */
    m2rnn_tensor dx;       /* required output, shape of x */
    m2rnn_tensor dA_log;   /* required output, (Nf): summed over every token */
    m2rnn_tensor ddt_bias; /* required output, (Nf) */
} m2rnn_decay_gate_backward_args;

/* Validate (names the offending argument). */
m2rnn_status m2rnn_decay_gate_check_forward(const m2rnn_decay_gate_forward_args *args);
m2rnn_status m2rnn_decay_gate_check_backward(const m2rnn_decay_gate_backward_args *args);

/* The reference (validates its arguments itself). */
m2rnn_status m2rnn_decay_gate_forward_ref(const m2rnn_decay_gate_forward_args *args);
m2rnn_status m2rnn_decay_gate_backward_ref(const m2rnn_decay_gate_backward_args *args);

/* The model's initialisation (SPEC.md §2), drawing from rng in this order: every A first, then
 * every dt.  A ~ U(0, 16], A_log = log A;  dt = exp(U[log 1e-3, log 0.1)), floored at 1e-4;
 * dt_bias = dt + log(-expm1(-dt)), the inverse of softplus, so softplus(dt_bias) = dt.
 * A_log and dt_bias: float tensors of the same shape (Nf). */
m2rnn_status m2rnn_decay_gate_init(m2rnn_tensor *A_log, m2rnn_tensor *dt_bias, m2rnn_rng *rng);

#ifdef __cplusplus
}
#endif
#endif
