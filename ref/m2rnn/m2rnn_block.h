/*
 * The M²RNN mixer block exactly as trained (SPEC.md §3), built from the decay gate, the causal
 * conv, the recurrence, RMSNorm and two linear layers (linear.h's convention: y = x Wᵀ, W stored
 * (out, in)).
 *
 * Sizes (config): N state heads (= Nv = Ng), Nq, Nk, Nf, Nw head counts (each divides N; 0 means
 * N), K key dim, V value dim; d model width (from x), Kc conv kernel (from conv_w; 4 as trained).
 *   Cq = Nq·K, Ck = Nk·K, Cv = N·V, C = Cq + Ck + Cv (the conv channels), P = C + Nf + N·V.
 *
 * Shapes: x, o (B,S,d) dense or (T,d) packed with cu_seqlens (B+1,) I32/I64 in host memory;
 *   W_in (P, d)  conv_w (C, Kc)  A_log, dt_bias (Nf)  W (Nw, V, V)  D (N, V)  norm_w (N·V)
 *   W_o (d, N·V)  h0, ht (B,N,K,V)  conv_state0, conv_state_out (B, C, Kc-1).
 * With ht and conv_state_out passed back in as h0 and conv_state0, the block runs token by token
 * (or chunk by chunk) and gives the whole sequence's outputs.
 * Any float dtype for any tensor; double inside; every output rounded once.
 */
#ifndef M2RNN_BLOCK_H
#define M2RNN_BLOCK_H

#include "m2rnn/init.h"
#include "m2rnn/recurrence.h"
#include "m2rnn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t heads;                              /* N = Nv = Ng, >= 1 */
    int64_t q_heads, k_heads, f_heads, w_heads; /* each divides N; 0 means N */
    int64_t key_dim, value_dim;                 /* K, V >= 1 */
    double eps;                                 /* RMSNorm eps (1e-5 as trained), finite, >= 0 */
} m2rnn_block_config;

/* Parameters and inputs (the parameters are also what m2rnn_block_init fills). */
typedef struct {
    m2rnn_block_config cfg;
    m2rnn_tensor x;            /* required, (B,S,d) or (T,d) */
    m2rnn_tensor W_in;         /* required, (P, d): x -> [q | k | v | f_raw | g] */
    m2rnn_tensor conv_w;       /* required, (C, Kc): depthwise conv over [q | k | v], no bias */
    m2rnn_tensor A_log;        /* required, (Nf) */
    m2rnn_tensor dt_bias;      /* required, (Nf) */
    m2rnn_tensor W;            /* required, (Nw, V, V): the recurrence's transition */
    m2rnn_tensor D;            /* required, (N, V): the v skip */
    m2rnn_tensor norm_w;       /* required, (N·V): RMSNorm weight */
    m2rnn_tensor W_o;          /* required, (d, N·V) */
    m2rnn_tensor h0;           /* optional, (B,N,K,V); zeros when absent */
    m2rnn_tensor conv_state0;  /* optional, (B,C,Kc-1); zeros when absent */
    m2rnn_tensor cu_seqlens;   /* optional: packed batch */
} m2rnn_block_inputs;

typedef struct {
    m2rnn_block_inputs in;
    m2rnn_tensor o;               /* required output, shape of x */
    m2rnn_tensor ht;              /* optional output, (B,N,K,V) */
    m2rnn_tensor conv_state_out;  /* optional output, (B,C,Kc-1) */
} m2rnn_block_forward_args;

typedef struct {
    m2rnn_block_inputs in;
    m2rnn_tensor dout;            /* required, shape of x: dL/do */
    m2rnn_tensor dht;             /* optional, (B,N,K,V) */
    m2rnn_tensor dconv_state_out; /* optional, (B,C,Kc-1) */
    m2rnn_clip_mode clip_mode;    /* the recurrence's state-gradient clipping (recurrence.h) */
    double clip;
    m2rnn_tensor dx, dW_in, dconv_w, dA_log, ddt_bias, dW, dD, dnorm_w, dW_o; /* required outputs */
    m2rnn_tensor dh0;             /* optional output, (B,N,K,V) */
    m2rnn_tensor dconv_state0;    /* optional output, (B,C,Kc-1) */
} m2rnn_block_backward_args;

/* The sizes a valid argument set implies. */
typedef struct {
    int64_t batch, seqlen, tokens, model_dim;          /* B, S (0 packed), T, d */
    int64_t heads, q_heads, k_heads, f_heads, w_heads; /* resolved (no zeros) */
    int64_t key_dim, value_dim, kernel;                /* K, V, Kc */
    int64_t conv_channels, proj_dim;                   /* C, P */
    bool varlen;
} m2rnn_block_dims;

m2rnn_status m2rnn_block_check_forward(const m2rnn_block_forward_args *args, m2rnn_block_dims *dims);
m2rnn_status m2rnn_block_check_backward(const m2rnn_block_backward_args *args, m2rnn_block_dims *dims);

m2rnn_status m2rnn_block_forward_ref(const m2rnn_block_forward_args *args);
m2rnn_status m2rnn_block_backward_ref(const m2rnn_block_backward_args *args);

/* The model's initialisation (SPEC.md §3) of the parameter tensors of `params` (x and the
 * optional tensors are ignored; the parameters' shapes are checked against cfg, with d read off
 * W_in's second axis):
 *   W_in, conv_w ~ N(0, 0.02²);  A_log, dt_bias: the decay gate's init (decay_gate.h);
 *   W = I per head;  D = 1;  norm_w = 1;  W_o ~ N(0, (0.02/√(2·num_layers))²).
 * Draws from rng in the order W_in, conv_w, A_log, dt_bias, W_o. */
m2rnn_status m2rnn_block_init(m2rnn_block_inputs *params, int64_t num_layers, m2rnn_rng *rng);

#ifdef __cplusplus
}
#endif
#endif
