/*
 * The M²RNN recurrence (SPEC.md §1): argument structs, shape resolution, and the reference.
 *
 * Dense layout (cu_seqlens absent), B sequences of S tokens:
 *   q (B,S,Nq,K)  k (B,S,Nk,K)  v (B,S,Nv,V)  f (B,S,Nf)  W (Nw,V,V)  h0 (B,N,K,V)
 *   y (B,S,N,V)   ht (B,N,K,V)
 * Packed variable-length layout (cu_seqlens present, shape (B+1,), I32 or I64, host memory):
 *   the (B,S) axes become one token axis T = cu_seqlens[B]: q (T,Nq,K) ... y (T,N,V);
 *   h0, ht keep (B,N,K,V).
 * N = max(Nq,Nk,Nv,Nf,Nw); every count divides N; state head n reads source head n / (N/Nx).
 *
 * Any float dtype (F64, F32, BF16, F16) is accepted for any float tensor; outputs are rounded once
 * to the dtype of the output tensor. Backends may support less and say so in supports().
 */
#ifndef M2RNN_RECURRENCE_H
#define M2RNN_RECURRENCE_H

#include "m2rnn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The inputs both directions share. */
typedef struct {
    m2rnn_tensor q, k, v;     /* required */
    m2rnn_tensor W;           /* required, (Nw,V,V) */
    m2rnn_tensor f;           /* required, the forget weight, used as given */
    m2rnn_tensor h0;          /* optional, (B,N,K,V); zeros when absent */
    m2rnn_tensor cu_seqlens;  /* optional, (B+1,) I32/I64 in host memory: packed varlen batch */
} m2rnn_recurrence_inputs;

typedef struct {
    m2rnn_recurrence_inputs in;
    m2rnn_tensor y;   /* required output */
    m2rnn_tensor ht;  /* optional output: the final state */
} m2rnn_recurrence_forward_args;

/* State-gradient clipping (SPEC.md §1.2). */
typedef enum {
    M2RNN_CLIP_NONE = 0,
    M2RNN_CLIP_CARRY = 1,  /* clamp the carried G at the top of each reverse step (default when on) */
    M2RNN_CLIP_TOTAL = 2   /* clamp the total D_t = q_t dy_tᵀ + G */
} m2rnn_clip_mode;

typedef struct {
    m2rnn_recurrence_inputs in;
    m2rnn_tensor dy;                  /* required, shape of y */
    m2rnn_tensor dht;                 /* optional, shape of ht; zeros when absent */
    m2rnn_clip_mode clip_mode;
    double clip;                      /* the bound c (|c| is used); ignored when clip_mode is NONE */
    m2rnn_tensor dq, dk, dv, dW, df;  /* required outputs, shapes of their inputs */
    m2rnn_tensor dh0;                 /* optional output, (B,N,K,V) */
} m2rnn_recurrence_backward_args;

/* The sizes a valid argument set implies. */
typedef struct {
    int64_t batch;    /* B: number of sequences */
    int64_t seqlen;   /* S (dense layout); 0 for varlen */
    int64_t tokens;   /* total tokens: B*S dense, cu_seqlens[B] varlen */
    int64_t heads;    /* N */
    int64_t q_heads, k_heads, v_heads, f_heads, w_heads;
    int64_t key_dim;    /* K */
    int64_t value_dim;  /* V */
    bool varlen;
} m2rnn_recurrence_dims;

/* Validate the arguments (shapes, dtypes, head counts, cu_seqlens, overflow) and fill dims.
 * Every backend may rely on this having passed: the dispatch functions in backend.h call it. */
m2rnn_status m2rnn_recurrence_check_forward(const m2rnn_recurrence_forward_args *args,
                                            m2rnn_recurrence_dims *dims);
m2rnn_status m2rnn_recurrence_check_backward(const m2rnn_recurrence_backward_args *args,
                                             m2rnn_recurrence_dims *dims);

/* Token rows [*start, *end) of sequence b (valid arguments only). */
void m2rnn_recurrence_sequence(const m2rnn_recurrence_inputs *in, const m2rnn_recurrence_dims *dims,
                               int64_t b, int64_t *start, int64_t *end);

/* The reference (double precision internally). Validates its arguments itself. */
m2rnn_status m2rnn_recurrence_forward_ref(const m2rnn_recurrence_forward_args *args);
m2rnn_status m2rnn_recurrence_backward_ref(const m2rnn_recurrence_backward_args *args);

#ifdef __cplusplus
}
#endif
#endif
