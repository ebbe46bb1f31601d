/*
 * The Gated DeltaNet recurrence (SPEC.md §5; FLA's chunk_gated_delta_rule convention), the
 * paper's main baseline. Per sequence b and head h, state S (K×V), S_0 = h0[b,h] or 0:
 *
 *   k̂ = k / sqrt(‖k‖² + 1e-6),  q̂ = scale · q / sqrt(‖q‖² + 1e-6)   (with l2norm_qk; else k̂ = k,
 *                                                                      q̂ = scale · q)
 *   S   = exp(g_t) S_{t-1}                  g: the log-decay, used as given
 *   u_t = β_t (v_t - Sᵀ k̂_t)                β: used as given (the layer applies the sigmoid)
 *   S_t = S + k̂_t u_tᵀ
 *   o_t = S_tᵀ q̂_t                          (reads the state after the update)
 *   ht  = S_{last}
 *
 * Shapes: q, k (B,S,H,K), v (B,S,H,V), g, beta (B,S,H), h0, ht (B,H,K,V), o (B,S,H,V); packed
 * with cu_seqlens (B+1,) I32/I64 in host memory: the (B,S) axes become T. scale 0 means 1/√K.
 * Any float dtype; double inside; outputs rounded once.
 */
#ifndef M2RNN_GATED_DELTANET_H
#define M2RNN_GATED_DELTANET_H

#include "m2rnn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    m2rnn_tensor q, k;        /* required, (B,S,H,K) or (T,H,K) */
    m2rnn_tensor v;           /* required, (B,S,H,V) or (T,H,V) */
    m2rnn_tensor g;           /* required, (B,S,H) or (T,H): log-decay */
    m2rnn_tensor beta;        /* required, (B,S,H) or (T,H) */
    m2rnn_tensor h0;          /* optional, (B,H,K,V) */
    m2rnn_tensor cu_seqlens;  /* optional, (B+1,) */
    bool l2norm_qk;           /* L2-normalise q and k inside the op (FLA's use_qk_l2norm_in_kernel) */
    double scale;             /* q scale; 0 means 1/sqrt(K) */
} m2rnn_gdn_inputs;

typedef struct {
    m2rnn_gdn_inputs in;
    m2rnn_tensor o;           /* required output, shape of v */
    m2rnn_tensor ht;          /* optional output, (B,H,K,V) */
} m2rnn_gdn_forward_args;

typedef struct {
    m2rnn_gdn_inputs in;
    m2rnn_tensor dout;        /* required, shape of v */
    m2rnn_tensor dht;         /* optional, (B,H,K,V) */
    m2rnn_tensor dq, dk, dv, dg, dbeta; /* required outputs, shapes of their inputs */
    m2rnn_tensor dh0;         /* optional output, (B,H,K,V) */
} m2rnn_gdn_backward_args;

m2rnn_status m2rnn_gdn_check_forward(const m2rnn_gdn_forward_args *args);
m2rnn_status m2rnn_gdn_check_backward(const m2rnn_gdn_backward_args *args);

m2rnn_status m2rnn_gdn_forward_ref(const m2rnn_gdn_forward_args *args);
m2rnn_status m2rnn_gdn_backward_ref(const m2rnn_gdn_backward_args *args);

#ifdef __cplusplus
}
#endif
#endif
