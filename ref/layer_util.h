/*
 * Private helpers shared by the layers of ref/ (decay gate, conv1d, linear, RMSNorm, MLP, block):
 * argument checks that name the offending argument, the token layout of a (possibly packed) batch,
 * double buffers, and the scalar functions (softplus, sigmoid, SiLU) in their numerically stable
 * forms. Not installed; the recurrence keeps its own copies in m2rnn_args.c.
 */
#ifndef M2RNN_LAYER_UTIL_H
#define M2RNN_LAYER_UTIL_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "m2rnn/tensor.h"

/* ---- argument checks: each returns M2RNN_OK or records an error naming `name` ------------- */

/* t is present and of a float dtype. */
m2rnn_status lu_required(const m2rnn_tensor *t, const char *name);
/* t (present) is of a float dtype. */
m2rnn_status lu_float(const m2rnn_tensor *t, const char *name);
/* t has this exact rank and shape (and its element count fits). */
m2rnn_status lu_shape(const m2rnn_tensor *t, const char *name, int rank, const int64_t *shape);
/* t has the shape of `like`. */
m2rnn_status lu_same_shape(const m2rnn_tensor *t, const char *name, const m2rnn_tensor *like);
/* rank >= min_rank, no negative dimension, element count fits. */
m2rnn_status lu_rank_at_least(const m2rnn_tensor *t, const char *name, int min_rank);
/* An optional float tensor: absent, or present with exactly this shape. */
m2rnn_status lu_optional(const m2rnn_tensor *t, const char *name, int rank, const int64_t *shape);
/* Required gradients: each present, float, and shaped like its input. */
typedef struct {
    const m2rnn_tensor *grad, *like;
    const char *name;
} lu_grad;
m2rnn_status lu_grads(const lu_grad *grads, size_t n);

/* The token layout of a per-token tensor x: (B,S,C) dense, or (T,C) packed with cu_seqlens
 * (B+1,) I32/I64 in host memory, cu[0] = 0, non-decreasing, cu[B] = T. */
typedef struct {
    int64_t batch;    /* B */
    int64_t seqlen;   /* S (dense); 0 when packed */
    int64_t tokens;   /* B*S or cu[B] */
    int64_t channels; /* C: the last dim of x */
    bool varlen;
    const m2rnn_tensor *cu_seqlens;
} lu_tokens;

m2rnn_status lu_token_layout(const m2rnn_tensor *x, const char *name, const m2rnn_tensor *cu_seqlens,
                             lu_tokens *layout);
/* Shape of a per-token tensor of `channels` channels in this layout; returns the rank. */
int lu_token_shape(const lu_tokens *layout, int64_t channels, int64_t *shape);
/* Rows [*start, *end) of sequence b. */
void lu_sequence(const lu_tokens *layout, int64_t b, int64_t *start, int64_t *end);

/* ---- buffers ------------------------------------------------------------------------------ */

/* malloc of n doubles (at least one), NULL on failure. */
double *lu_alloc(int64_t n);
/* calloc of n doubles. */
double *lu_zeros(int64_t n);
/* The tensor's elements widened exactly to double (NULL on failure). */
double *lu_widen(const m2rnn_tensor *t);
/* free() each of `count` pointers (NULL ones are fine). */
void lu_free_all(double **ptrs, int count);

/* An F64 tensor over data (for calling the reference on intermediate buffers). */
m2rnn_tensor lu_f64(double *data, int rank, const int64_t *shape);

/* C (M×N) = op(A) op(B) + beta·C, row-major, op = transpose when ta/tb; OpenBLAS's dgemm, with
 * empty dimensions handled here (dgemm rejects leading dimensions of 0), or lu_gemm_naive in
 * exact order (below). Dimensions must fit in int (the layers' checks ensure it). */
void lu_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const double *A, const double *B, double beta, double *C);

/* The same product as three plain loops: the definition, summing over K in index order. The
 * recurrence (m2rnn.c) takes it for products below m·n·k = 4096, where it is faster than dgemm. */
void lu_gemm_naive(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const double *A, const double *B, double beta, double *C);

/* Exact order: every dense product of the reference (the layers' lu_gemm and the recurrence's)
 * runs lu_gemm_naive instead of OpenBLAS. OpenBLAS picks its kernels for the CPU at run time, and
 * they sum in different orders (AVX2 and AVX-512 kernels give different last bits), so the
 * reference's outputs, and the tolerances calibrated from them, would depend on the machine; the
 * naive loop sums in one order everywhere. `m2rnn gen` turns it on (README, "Regenerating the
 * vectors"); it is off by default, as dgemm is much faster on large products. Process-wide: set it
 * before the reference runs, not while it runs. */
void lu_set_exact_order(bool on);
bool lu_exact_order(void);

/* ---- stable scalar functions ------------------------------------------------------------- */

/* softplus(u) = log(1 + e^u) = max(u,0) + log1p(e^{-|u|}): no overflow for large u, no loss of
 * the small result for very negative u. */
static inline double lu_softplus(double u) { return fmax(u, 0.0) + log1p(exp(-fabs(u))); }

/* σ(u) = 1 / (1 + e^{-u}), evaluated through e^{-|u|} so that the exponential never overflows. */
static inline double lu_sigmoid(double u)
{
    double e = exp(-fabs(u));
    return u >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

/* SiLU(u) = u σ(u) and its derivative σ(u) (1 + u (1 - σ(u))). */
static inline double lu_silu(double u) { return u * lu_sigmoid(u); }
static inline double lu_silu_grad(double u)
{
    double s = lu_sigmoid(u);
    return s * (1.0 + u * (1.0 - s));
}


/* ---- composing layers (appended for the GDN / attention blocks and the model) ----------- */

/* An F64 tensor over a per-token buffer in L's layout: the token axes (B,S or T), then d0, and
 * d1 too when ntrail == 2. */
m2rnn_tensor lu_tok(const lu_tokens *L, double *data, int ntrail, int64_t d0, int64_t d1);
/* Copy columns [c0, c0+n) of a rows×width matrix into a dense rows×n one, and back. */
void lu_take_columns(const double *src, int64_t rows, int64_t width, int64_t c0, int64_t n, double *dst);
void lu_put_columns(const double *src, int64_t rows, int64_t width, int64_t c0, int64_t n, double *dst);

#endif
