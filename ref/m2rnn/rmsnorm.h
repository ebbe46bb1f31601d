/*
 * RMSNorm (SPEC.md §5): over the last axis, y = x · w / sqrt(mean(x²) + eps).
 *
 * Shapes: x (..., D) of rank >= 1, w (D), y and dx the shape of x, dw (D). eps >= 0 and finite
 * (the models use 1e-5); eps is inside the square root. Any float dtype; double inside.
 */
#ifndef M2RNN_RMSNORM_H
#define M2RNN_RMSNORM_H

#include "m2rnn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define M2RNN_RMSNORM_EPS 1e-5

typedef struct {
    m2rnn_tensor x;  /* required, (..., D) */
    m2rnn_tensor w;  /* required, (D) */
    double eps;
} m2rnn_rmsnorm_inputs;

typedef struct {
    m2rnn_rmsnorm_inputs in;
    m2rnn_tensor y;  /* required output, shape of x */
} m2rnn_rmsnorm_forward_args;

typedef struct {
    m2rnn_rmsnorm_inputs in;
    m2rnn_tensor dy; /* required, shape of x */
    m2rnn_tensor dx; /* required output, shape of x */
    m2rnn_tensor dw; /* required output, (D), summed over rows */
} m2rnn_rmsnorm_backward_args;

m2rnn_status m2rnn_rmsnorm_check_forward(const m2rnn_rmsnorm_forward_args *args);
m2rnn_status m2rnn_rmsnorm_check_backward(const m2rnn_rmsnorm_backward_args *args);

m2rnn_status m2rnn_rmsnorm_forward_ref(const m2rnn_rmsnorm_forward_args *args);
m2rnn_status m2rnn_rmsnorm_backward_ref(const m2rnn_rmsnorm_backward_args *args);

#ifdef __cplusplus
}
#endif
#endif
