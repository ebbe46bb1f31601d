/*
 * Linear layer (SPEC.md §5).
 *
 * Convention: y = x Wᵀ + bias, with W stored (out, in) — PyTorch's nn.Linear layout, the one the
 * authors' checkpoints (lm-engine) use, so their weights load without a transpose. SPEC.md's
 * "P = x W_in, W_in: d → P" is this layer with W_in stored (P, d).
 *
 * Shapes: x (..., in) of rank >= 1, W (out, in), bias (out), y (..., out). dims must fit in int
 * (OpenBLAS's interface). Any float dtype; double inside; outputs rounded once.
 */
#ifndef M2RNN_LINEAR_H
#define M2RNN_LINEAR_H

#include "m2rnn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    m2rnn_tensor x;     /* required, (..., in) */
    m2rnn_tensor W;     /* required, (out, in) */
    m2rnn_tensor bias;  /* optional, (out) */
} m2rnn_linear_inputs;

typedef struct {
    m2rnn_linear_inputs in;
    m2rnn_tensor y;     /* required output, (..., out) */
} m2rnn_linear_forward_args;

typedef struct {
    m2rnn_linear_inputs in;
    m2rnn_tensor dy;    /* required, (..., out) */
    m2rnn_tensor dx;    /* required output, shape of x:  dx = dy W */
    m2rnn_tensor dW;    /* required output, (out, in):   dW = Σ_rows dyᵀ x */
    m2rnn_tensor dbias; /* optional output, (out):       Σ_rows dy (allowed without bias) */
} m2rnn_linear_backward_args;

m2rnn_status m2rnn_linear_check_forward(const m2rnn_linear_forward_args *args);
m2rnn_status m2rnn_linear_check_backward(const m2rnn_linear_backward_args *args);

m2rnn_status m2rnn_linear_forward_ref(const m2rnn_linear_forward_args *args);
m2rnn_status m2rnn_linear_backward_ref(const m2rnn_linear_backward_args *args);

#ifdef __cplusplus
}
#endif
#endif
