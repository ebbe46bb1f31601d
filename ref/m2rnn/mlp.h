/*
 * SiLU and the SwiGLU MLP (SPEC.md §5).
 *
 *   SiLU(u) = u σ(u)
 *   MLP(x)  = (SiLU(x W_gateᵀ) ⊙ (x W_upᵀ)) W_downᵀ          (bias-free, linear.h's convention)
 *
 * Shapes: SiLU: x, y, dy, dx any common shape. MLP: x (..., d) of rank >= 1, W_gate (h, d),
 * W_up (h, d), W_down (d, h), y (..., d). Any float dtype; double inside; outputs rounded once.
 */
#ifndef M2RNN_MLP_H
#define M2RNN_MLP_H

#include "m2rnn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- SiLU -------------------------------------------------------------------------------- */

typedef struct {
    m2rnn_tensor x;  /* required */
    m2rnn_tensor y;  /* required output, shape of x */
} m2rnn_silu_forward_args;

typedef struct {
    m2rnn_tensor x;  /* required */
    m2rnn_tensor dy; /* required, shape of x */
    m2rnn_tensor dx; /* required output, shape of x */
} m2rnn_silu_backward_args;

m2rnn_status m2rnn_silu_check_forward(const m2rnn_silu_forward_args *args);
m2rnn_status m2rnn_silu_check_backward(const m2rnn_silu_backward_args *args);
m2rnn_status m2rnn_silu_forward_ref(const m2rnn_silu_forward_args *args);
m2rnn_status m2rnn_silu_backward_ref(const m2rnn_silu_backward_args *args);

/* ---- SwiGLU MLP -------------------------------------------------------------------------- */

typedef struct {
    m2rnn_tensor x;       /* required, (..., d) */
    m2rnn_tensor W_gate;  /* required, (h, d) */
    m2rnn_tensor W_up;    /* required, (h, d) */
    m2rnn_tensor W_down;  /* required, (d, h) */
} m2rnn_mlp_inputs;

typedef struct {
    m2rnn_mlp_inputs in;
    m2rnn_tensor y;       /* required output, shape of x */
} m2rnn_mlp_forward_args;

typedef struct {
    m2rnn_mlp_inputs in;
    m2rnn_tensor dy;                     /* required, shape of x */
    m2rnn_tensor dx;                     /* required output, shape of x */
    m2rnn_tensor dW_gate, dW_up, dW_down; /* required outputs, shapes of the weights */
} m2rnn_mlp_backward_args;

m2rnn_status m2rnn_mlp_check_forward(const m2rnn_mlp_forward_args *args);
m2rnn_status m2rnn_mlp_check_backward(const m2rnn_mlp_backward_args *args);
m2rnn_status m2rnn_mlp_forward_ref(const m2rnn_mlp_forward_args *args);
m2rnn_status m2rnn_mlp_backward_ref(const m2rnn_mlp_backward_args *args);

#ifdef __cplusplus
}
#endif
#endif
