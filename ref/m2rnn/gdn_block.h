/*
 * The Gated DeltaNet mixer block (SPEC.md §5), the paper's main baseline, as lm-engine builds it
 * (lm_engine/hf_models/modeling_utils/sequence_mixer_blocks/gated_deltanet.py): two bias-free
 * input projections, a short causal conv + SiLU on q, k, v, β = σ(b), the log-decay
 * g = -exp(A_log)·softplus(a + dt_bias), the recurrence (gated_deltanet.h, with the in-op L2 norm of
 * q and k and scale 1/√K), the output gate o ⊙ SiLU(gate), a per-head RMSNorm over V (one weight
 * (V) shared by the heads), and the output projection. Linear layers follow linear.h (y = x Wᵀ,
 * W stored (out, in)). Note the order: gate first, then the norm (lm-engine; FLA's own layer
 * uses the fused norm-then-gate FusedRMSNormGated).
 *
 * Sizes (config): H heads (q, k and v alike: no head sharing), K key dim, V value dim; d model
 * width (from x); Kc conv kernel (from conv_w; 4 as trained).
 *   C = 2·H·K + H·V (the conv channels [q | k | v]),  P = 2·H + H·V (the channels [a | b | gate]).
 *
 * Shapes: x, o (B,S,d) dense or (T,d) packed with cu_seqlens (B+1,) I32/I64 in host memory;
 *   W_qkv (C, d)  W_abg (P, d)  conv_w (C, Kc)  A_log, dt_bias (H)  norm_w (V)  W_o (d, H·V)
 *   h0, ht (B,H,K,V)  conv_state0, conv_state_out (B, C, Kc-1).
 * With ht and conv_state_out passed back in as h0 and conv_state0 the block runs token by token.
 * Any float dtype; double inside; every output rounded once.
 */
#ifndef M2RNN_GDN_BLOCK_H
#define M2RNN_GDN_BLOCK_H

#include "m2rnn/init.h"
#include "m2rnn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t heads;               /* H >= 1 */
    int64_t key_dim, value_dim;  /* K, V >= 1 */
    double eps;                  /* the per-head RMSNorm's eps (1e-5 as trained), finite, >= 0 */
} m2rnn_gdn_block_config;

typedef struct {
    m2rnn_gdn_block_config cfg;
    m2rnn_tensor x;            /* required, (B,S,d) or (T,d) */
    m2rnn_tensor W_qkv;        /* required, (C, d): x -> [q | k | v] */
    m2rnn_tensor W_abg;        /* required, (P, d): x -> [a | b | gate] */
    m2rnn_tensor conv_w;       /* required, (C, Kc) */
    m2rnn_tensor A_log;        /* required, (H) */
    m2rnn_tensor dt_bias;      /* required, (H) */
    m2rnn_tensor norm_w;       /* required, (V) */
    m2rnn_tensor W_o;          /* required, (d, H·V) */
    m2rnn_tensor h0;           /* optional, (B,H,K,V) */
    m2rnn_tensor conv_state0;  /* optional, (B,C,Kc-1) */
    m2rnn_tensor cu_seqlens;   /* optional: packed batch */
} m2rnn_gdn_block_inputs;

typedef struct {
    m2rnn_gdn_block_inputs in;
    m2rnn_tensor o;               /* required output, shape of x */
    m2rnn_tensor ht;              /* optional output, (B,H,K,V) */
    m2rnn_tensor conv_state_out;  /* optional output, (B,C,Kc-1) */
} m2rnn_gdn_block_forward_args;

typedef struct {
    m2rnn_gdn_block_inputs in;
    m2rnn_tensor dout;            /* required, shape of x */
    m2rnn_tensor dht;             /* optional, (B,H,K,V) */
    m2rnn_tensor dconv_state_out; /* optional, (B,C,Kc-1) */
    m2rnn_tensor dx, dW_qkv, dW_abg, dconv_w, dA_log, ddt_bias, dnorm_w, dW_o; /* required outputs */
    m2rnn_tensor dh0;             /* optional output, (B,H,K,V) */
    m2rnn_tensor dconv_state0;    /* optional output, (B,C,Kc-1) */
} m2rnn_gdn_block_backward_args;

typedef struct {
    int64_t batch, seqlen, tokens, model_dim; /* B, S (0 packed), T, d */
    int64_t heads, key_dim, value_dim, kernel; /* H, K, V, Kc */
    int64_t conv_channels, gate_dim;           /* C, P */
    bool varlen;
} m2rnn_gdn_block_dims;

m2rnn_status m2rnn_gdn_block_check_forward(const m2rnn_gdn_block_forward_args *args, m2rnn_gdn_block_dims *dims);
m2rnn_status m2rnn_gdn_block_check_backward(const m2rnn_gdn_block_backward_args *args, m2rnn_gdn_block_dims *dims);

m2rnn_status m2rnn_gdn_block_forward_ref(const m2rnn_gdn_block_forward_args *args);
m2rnn_status m2rnn_gdn_block_backward_ref(const m2rnn_gdn_block_backward_args *args);

/* Initialisation of the parameter tensors of `params` (d read off W_qkv's second axis):
 *   W_qkv, W_abg, conv_w ~ N(0, 0.02²);  A_log, dt_bias: the decay gate's init (decay_gate.h;
 *   the same A ~ U(0,16), dt log-uniform in [1e-3, 0.1] floored at 1e-4 as lm-engine's GDN);
 *   norm_w = 1;  W_o ~ N(0, (0.02/√(2·num_layers))²).  Draws in the order W_qkv, W_abg, conv_w,
 *   A_log, dt_bias, W_o. (lm-engine leaves the conv and ab projections at other defaults; this
 *   reference uses N(0, 0.02²) for every input-side matrix, like the M²RNN block.) */
m2rnn_status m2rnn_gdn_block_init(m2rnn_gdn_block_inputs *params, int64_t num_layers, m2rnn_rng *rng);

#ifdef __cplusplus
}
#endif
#endif
