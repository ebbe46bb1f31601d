/*
 * Causal softmax attention (SPEC.md §5), MHA and GQA, with an optional rotary position encoding
 * and a KV cache for step-wise decoding; and the attention block (fused qkv projection, output
 * projection) of the hybrid models.
 *
 * Per batch b, query head h (kv head hk = h / (Hq/Hkv): consecutive query heads share a kv head,
 * like repeat_interleave / HF's repeat_kv), query token i at position p_i = cache_len + i:
 *
 *   q̃_i = R(p_i) q_i,  k̃_j = R(p_j) k_j          (RoPE on; else q̃ = q, k̃ = k)
 *   s_ij = scale · q̃_i · k̃_j   for j <= p_i       (causal: a token sees itself and the past)
 *   P_i  = softmax_j(s_i)      computed as exp(s_ij - max_j s_ij) / Σ_j exp(s_ij - max_j s_ij)
 *   o_i  = Σ_j P_ij v_j
 *
 * scale 0 means 1/√D. NoPE (rope = false) is the default: the paper's hybrids use no positions.
 * RoPE pairing convention: HALF-SPLIT (GPT-NeoX, HF Llama's rotate_half): dimension d < D/2 is
 * paired with d + D/2, rotated by the angle p·θ^(-2d/D):
 *   y[d] = x[d] cos - x[d+D/2] sin,   y[d+D/2] = x[d+D/2] cos + x[d] sin.
 * (Not the interleaved (2d, 2d+1) pairing of the original RoFormer / GPT-J.) θ = 10000 by default.
 *
 * KV cache (forward only): k_cache, v_cache (B, Smax, Hkv, D/Dv) hold the keys (already rotated)
 * and values of the cache_len tokens seen so far. The forward writes this call's rotated keys and
 * values into rows cache_len .. cache_len+S-1 (rounded to the cache's dtype) and attends over
 * rows 0 .. cache_len+S-1 read back from the cache; the caller advances cache_len by S. Run token
 * by token this way, the outputs equal one run over the whole sequence (exactly, with F64 caches).
 *
 * Shapes (dense only; no packed batches): q (B,S,Hq,D), k (B,S,Hkv,D), v (B,S,Hkv,Dv),
 * o (B,S,Hq,Dv). Any float dtype; double inside; outputs rounded once.
 */
#ifndef M2RNN_ATTENTION_H
#define M2RNN_ATTENTION_H

#include "m2rnn/init.h"
#include "m2rnn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define M2RNN_ROPE_THETA 10000.0

/* ---- the attention op --------------------------------------------------------------------- */

typedef struct {
    m2rnn_tensor q;        /* required, (B,S,Hq,D) */
    m2rnn_tensor k;        /* required, (B,S,Hkv,D); Hkv divides Hq */
    m2rnn_tensor v;        /* required, (B,S,Hkv,Dv) */
    m2rnn_tensor k_cache;  /* optional (forward only), (B,Smax,Hkv,D); with v_cache */
    m2rnn_tensor v_cache;  /* optional (forward only), (B,Smax,Hkv,Dv) */
    int64_t cache_len;     /* tokens already in the cache; 0 without one; cache_len + S <= Smax */
    bool rope;             /* rotary positions (half-split, above) on q and k */
    double rope_theta;     /* 0 means 10000 */
    double scale;          /* 0 means 1/sqrt(D) */
} m2rnn_attention_inputs;

typedef struct {
    m2rnn_attention_inputs in;
    m2rnn_tensor o;        /* required output, (B,S,Hq,Dv); k_cache, v_cache written too */
} m2rnn_attention_forward_args;

typedef struct {
    m2rnn_attention_inputs in;  /* without a cache */
    m2rnn_tensor dout;          /* required, (B,S,Hq,Dv) */
    m2rnn_tensor dq, dk, dv;    /* required outputs, shapes of q, k, v (dk, dv summed over the group) */
} m2rnn_attention_backward_args;

m2rnn_status m2rnn_attention_check_forward(const m2rnn_attention_forward_args *args);
m2rnn_status m2rnn_attention_check_backward(const m2rnn_attention_backward_args *args);
m2rnn_status m2rnn_attention_forward_ref(const m2rnn_attention_forward_args *args);
m2rnn_status m2rnn_attention_backward_ref(const m2rnn_attention_backward_args *args);

/* ---- the attention block ------------------------------------------------------------------ */
/*
 *   [q | k | v] = x W_qkvᵀ      W_qkv ((Hq + 2·Hkv)·D, d), bias-free, head-major inside each part
 *   a = attention(q, k, v)       (above; value dim = D)
 *   out = flatten(a) W_oᵀ        W_o (d, Hq·D)
 * x, out (B,S,d); k_cache, v_cache (B,Smax,Hkv,D) as above.
 */

typedef struct {
    int64_t q_heads, kv_heads;  /* Hq, Hkv >= 1, Hkv divides Hq */
    int64_t head_dim;           /* D >= 1 (even with RoPE) */
    bool rope;
    double rope_theta;          /* 0 means 10000 */
} m2rnn_attention_block_config;

typedef struct {
    m2rnn_attention_block_config cfg;
    m2rnn_tensor x;        /* required, (B,S,d) */
    m2rnn_tensor W_qkv;    /* required, ((Hq+2Hkv)·D, d) */
    m2rnn_tensor W_o;      /* required, (d, Hq·D) */
    m2rnn_tensor k_cache, v_cache; /* optional (forward only), (B,Smax,Hkv,D) */
    int64_t cache_len;
} m2rnn_attention_block_inputs;

typedef struct {
    m2rnn_attention_block_inputs in;
    m2rnn_tensor o;        /* required output, (B,S,d) */
} m2rnn_attention_block_forward_args;

typedef struct {
    m2rnn_attention_block_inputs in;  /* without a cache */
    m2rnn_tensor dout;     /* required, (B,S,d) */
    m2rnn_tensor dx, dW_qkv, dW_o; /* required outputs */
} m2rnn_attention_block_backward_args;

m2rnn_status m2rnn_attention_block_check_forward(const m2rnn_attention_block_forward_args *args);
m2rnn_status m2rnn_attention_block_check_backward(const m2rnn_attention_block_backward_args *args);
m2rnn_status m2rnn_attention_block_forward_ref(const m2rnn_attention_block_forward_args *args);
m2rnn_status m2rnn_attention_block_backward_ref(const m2rnn_attention_block_backward_args *args);

/* W_qkv ~ N(0, 0.02²), W_o ~ N(0, (0.02/√(2·num_layers))²), drawn in that order; d read off
 * W_qkv's second axis. */
m2rnn_status m2rnn_attention_block_init(m2rnn_attention_block_inputs *params, int64_t num_layers, m2rnn_rng *rng);

#ifdef __cplusplus
}
#endif
#endif
