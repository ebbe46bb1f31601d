/*
 * Depthwise causal conv1d (SPEC.md §4), with a streaming state and packed variable-length batches.
 *
 *   y[b,t,c] = act(bias[c] + Σ_{j=0}^{Kc-1} w[c,j] · x[b, t-(Kc-1)+j, c])
 *
 * Cross-correlation: w[c,Kc-1] multiplies the current token. Before the first token of a sequence
 * the window reads the conv state (the Kc-1 raw inputs that preceded it, newest last) or zeros.
 *
 * Dense layout: x, y (B,S,C). Packed layout (cu_seqlens present, (B+1,) I32/I64, host memory):
 * x, y (T,C); sequence b is rows cu[b]..cu[b+1]-1 and its window never reads another sequence.
 * w (C,Kc) with Kc >= 1, bias (C), conv states (B,C,Kc-1) in both layouts.
 * state_out[b] holds the last Kc-1 raw inputs of sequence b (reaching into state0[b], or zeros,
 * when the sequence is shorter than Kc-1), so a run split in two with the state passed on equals
 * the whole run.
 */
#ifndef M2RNN_CONV1D_H
#define M2RNN_CONV1D_H

#include "m2rnn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    M2RNN_ACT_NONE = 0,
    M2RNN_ACT_SILU = 1  /* u·σ(u) */
} m2rnn_activation;

typedef struct {
    m2rnn_tensor x;           /* required, (B,S,C) or (T,C) */
    m2rnn_tensor w;           /* required, (C,Kc) */
    m2rnn_tensor bias;        /* optional, (C) */
    m2rnn_tensor state0;      /* optional, (B,C,Kc-1): the inputs before each sequence; zeros when absent */
    m2rnn_tensor cu_seqlens;  /* optional, (B+1,) I32/I64 in host memory: packed batch */
    m2rnn_activation activation;
} m2rnn_conv1d_inputs;

typedef struct {
    m2rnn_conv1d_inputs in;
    m2rnn_tensor y;           /* required output, shape of x */
    m2rnn_tensor state_out;   /* optional output, (B,C,Kc-1) */
} m2rnn_conv1d_forward_args;

typedef struct {
    m2rnn_conv1d_inputs in;
    m2rnn_tensor dy;          /* required, shape of x */
    m2rnn_tensor dstate_out;  /* optional, (B,C,Kc-1): gradient arriving at state_out; zeros when absent */
    m2rnn_tensor dx;          /* required output, shape of x */
    m2rnn_tensor dw;          /* required output, (C,Kc) */
    m2rnn_tensor dbias;       /* optional output, (C): also allowed without bias (gradient at bias = 0) */
    m2rnn_tensor dstate0;     /* optional output, (B,C,Kc-1): also allowed without state0 (at zeros) */
} m2rnn_conv1d_backward_args;

/* The sizes a valid argument set implies. */
typedef struct {
    int64_t batch, seqlen, tokens; /* B; S (0 when packed); B*S or cu[B] */
    int64_t channels;              /* C */
    int64_t kernel;                /* Kc */
    bool varlen;
} m2rnn_conv1d_dims;

/* Validate (names the offending argument) and fill dims (may be NULL). */
m2rnn_status m2rnn_conv1d_check_forward(const m2rnn_conv1d_forward_args *args, m2rnn_conv1d_dims *dims);
m2rnn_status m2rnn_conv1d_check_backward(const m2rnn_conv1d_backward_args *args, m2rnn_conv1d_dims *dims);

/* The reference (double precision internally). Validates its arguments itself. */
m2rnn_status m2rnn_conv1d_forward_ref(const m2rnn_conv1d_forward_args *args);
m2rnn_status m2rnn_conv1d_backward_ref(const m2rnn_conv1d_backward_args *args);

#ifdef __cplusplus
}
#endif
#endif
