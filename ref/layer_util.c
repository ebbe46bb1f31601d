/*
 * Private helpers of the layers (see layer_util.h): argument checks and the token layout.
 * Nothing here reads tensor data except cu_seqlens, which the API keeps in host memory.
 */
#include "config.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer_util.h"
#include "scalar_math.h"

m2rnn_status lu_float(const m2rnn_tensor *t, const char *name)
{
    if (!m2rnn_dtype_is_float(t->dtype))
        return m2rnn_set_error(M2RNN_ERR_DTYPE, "%s: dtype %s is not a float dtype (F64, F32, BF16, F16)", name,
                               m2rnn_dtype_name(t->dtype));
    return M2RNN_OK;
}

m2rnn_status lu_required(const m2rnn_tensor *t, const char *name)
{
    if (!m2rnn_tensor_present(t)) return m2rnn_set_error(M2RNN_ERR_NULL, "%s: required tensor is missing", name);
    return lu_float(t, name);
}

m2rnn_status lu_rank_at_least(const m2rnn_tensor *t, const char *name, int min_rank)
{
    char buf[128];
    if (t->rank < min_rank || t->rank > M2RNN_MAX_RANK)
        return m2rnn_set_error(M2RNN_ERR_SHAPE, "%s: expected rank >= %d, got shape %s", name, min_rank,
                               m2rnn_shape_string(t, buf, sizeof buf));
    for (int i = 0; i < t->rank; i++)
        if (t->shape[i] < 0) return m2rnn_set_error(M2RNN_ERR_SHAPE, "%s: negative dimension %d", name, i);
    /* 8 bytes per element of the widened copy must be addressable too. */
    int64_t n = m2rnn_tensor_numel(t);
    if (n < 0 || n > INT64_MAX / 8) return m2rnn_set_error(M2RNN_ERR_OVERFLOW, "%s: element count overflows", name);
    return M2RNN_OK;
}

m2rnn_status lu_shape(const m2rnn_tensor *t, const char *name, int rank, const int64_t *shape)
{
    char got[128], want[128];
    m2rnn_tensor w = m2rnn_tensor_make(NULL, t->dtype, rank, shape);
    if (t->rank != rank)
        return m2rnn_set_error(M2RNN_ERR_SHAPE, "%s: expected shape %s, got %s", name,
                               m2rnn_shape_string(&w, want, sizeof want), m2rnn_shape_string(t, got, sizeof got));
    m2rnn_status st = lu_rank_at_least(t, name, rank);
    if (st) return st;
    for (int i = 0; i < rank; i++)
        if (t->shape[i] != shape[i])
            return m2rnn_set_error(M2RNN_ERR_SHAPE, "%s: expected shape %s, got %s", name,
                                   m2rnn_shape_string(&w, want, sizeof want), m2rnn_shape_string(t, got, sizeof got));
    return M2RNN_OK;
}

m2rnn_status lu_same_shape(const m2rnn_tensor *t, const char *name, const m2rnn_tensor *like)
{
    return lu_shape(t, name, like->rank, like->shape);
}

m2rnn_status lu_optional(const m2rnn_tensor *t, const char *name, int rank, const int64_t *shape)
{
    if (!m2rnn_tensor_present(t)) return M2RNN_OK;
    m2rnn_status st = lu_float(t, name);
    return st ? st : lu_shape(t, name, rank, shape);
}

m2rnn_status lu_grads(const lu_grad *grads, size_t n)
{
    m2rnn_status st = M2RNN_OK;
    for (size_t i = 0; i < n && !st; i++)
        if (!(st = lu_required(grads[i].grad, grads[i].name))) st = lu_same_shape(grads[i].grad, grads[i].name, grads[i].like);
    return st;
}

static int64_t cu_at(const m2rnn_tensor *cu, int64_t i)
{
    return cu->dtype == M2RNN_I32 ? ((const int32_t *)cu->data)[i] : ((const int64_t *)cu->data)[i];
}

m2rnn_status lu_token_layout(const m2rnn_tensor *x, const char *name, const m2rnn_tensor *cu, lu_tokens *L)
{
    m2rnn_status st;
    *L = (lu_tokens){0};
    if (m2rnn_tensor_present(cu)) {
        if (cu->dtype != M2RNN_I32 && cu->dtype != M2RNN_I64)
            return m2rnn_set_error(M2RNN_ERR_DTYPE, "cu_seqlens: dtype %s, expected I32 or I64", m2rnn_dtype_name(cu->dtype));
        if (cu->rank != 1 || cu->shape[0] < 1)
            return m2rnn_set_error(M2RNN_ERR_SHAPE, "cu_seqlens: expected shape (B+1,) with B >= 0");
        int64_t prev = cu_at(cu, 0);
        if (prev != 0) return m2rnn_set_error(M2RNN_ERR_SEQLENS, "cu_seqlens[0] = %lld, must be 0", (long long)prev);
        for (int64_t i = 1; i < cu->shape[0]; i++) {
            int64_t c = cu_at(cu, i);
            if (c < prev)
                return m2rnn_set_error(M2RNN_ERR_SEQLENS, "cu_seqlens[%lld] = %lld < cu_seqlens[%lld] = %lld: must be non-decreasing",
                                       (long long)i, (long long)c, (long long)(i - 1), (long long)prev);
            prev = c;
        }
        if ((st = lu_rank_at_least(x, name, 2))) return st;
        if (x->rank != 2) {
            char buf[128];
            return m2rnn_set_error(M2RNN_ERR_SHAPE, "%s: expected (T,C) with cu_seqlens, got %s", name,
                                   m2rnn_shape_string(x, buf, sizeof buf));
        }
        if (x->shape[0] != prev)
            return m2rnn_set_error(M2RNN_ERR_SEQLENS, "%s: %lld tokens but cu_seqlens[B] = %lld", name,
                                   (long long)x->shape[0], (long long)prev);
        L->batch = cu->shape[0] - 1;
        L->tokens = prev;
        L->varlen = true;
        L->cu_seqlens = cu;
    } else {
        if ((st = lu_rank_at_least(x, name, 3))) return st;
        if (x->rank != 3) {
            char buf[128];
            return m2rnn_set_error(M2RNN_ERR_SHAPE, "%s: expected (B,S,C), got %s", name, m2rnn_shape_string(x, buf, sizeof buf));
        }
        L->batch = x->shape[0];
        L->seqlen = x->shape[1];
        L->tokens = L->batch * L->seqlen; /* cannot overflow: numel(x) was checked */
        if (x->shape[2] == 0) { /* B*S may then overflow without numel noticing */
            if (L->seqlen != 0 && L->batch > INT64_MAX / 8 / L->seqlen)
                return m2rnn_set_error(M2RNN_ERR_OVERFLOW, "%s: B*S overflows", name);
        }
    }
    L->channels = x->shape[x->rank - 1];
    return M2RNN_OK;
}

int lu_token_shape(const lu_tokens *L, int64_t channels, int64_t *shape)
{
    int r = 0;
    if (L->varlen) shape[r++] = L->tokens;
    else { shape[r++] = L->batch; shape[r++] = L->seqlen; }
    shape[r++] = channels;
    return r;
}

void lu_sequence(const lu_tokens *L, int64_t b, int64_t *start, int64_t *end)
{
    if (L->varlen) {
        *start = cu_at(L->cu_seqlens, b);
        *end = cu_at(L->cu_seqlens, b + 1);
    } else {
        *start = b * L->seqlen;
        *end = *start + L->seqlen;
    }
}

double *lu_alloc(int64_t n) { return malloc((size_t)(n > 0 ? n : 1) * sizeof(double)); }
double *lu_zeros(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(double)); }

double *lu_widen(const m2rnn_tensor *t)
{
    double *x = lu_alloc(m2rnn_tensor_numel(t));
    if (x) m2rnn_tensor_to_f64(t, x);
    return x;
}

void lu_free_all(double **ptrs, int count)
{
    for (int i = 0; i < count; i++) free(ptrs[i]);
}

m2rnn_tensor lu_f64(double *data, int rank, const int64_t *shape)
{
    return m2rnn_tensor_make(data, M2RNN_F64, rank, shape);
}

static bool exact_order = false;
void lu_set_exact_order(bool on) { exact_order = on; }
bool lu_exact_order(void) { return exact_order; }

M2RNN_VECTOR_CLONES
void lu_gemm_naive(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const double *A, const double *B, double beta, double *C)
{
    for (int64_t i = 0; i < M; i++) {
        for (int64_t j = 0; j < N; j++) C[i * N + j] = beta == 0.0 ? 0.0 : beta * C[i * N + j]; /* BLAS: beta 0 never reads C */
        for (int64_t l = 0; l < K; l++) {
            double a = ta ? A[l * M + i] : A[i * K + l];
            for (int64_t j = 0; j < N; j++) C[i * N + j] += a * (tb ? B[j * K + l] : B[l * N + j]);
        }
    }
}

void lu_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const double *A, const double *B, double beta, double *C)
{
    if (M == 0 || N == 0) return;
    if (K == 0) { /* op(A) op(B) = 0 */
        for (int64_t e = 0; e < M * N; e++) C[e] = beta == 0.0 ? 0.0 : beta * C[e];
        return;
    }
    if (exact_order) {
        lu_gemm_naive(ta, tb, M, N, K, A, B, beta, C);
        return;
    }
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K,
                1.0, A, ta ? (int)M : (int)K, B, tb ? (int)K : (int)N, beta, C, (int)N);
}

/* ---- composing layers ------------------------------------------------------------------- */

m2rnn_tensor lu_tok(const lu_tokens *L, double *data, int ntrail, int64_t d0, int64_t d1)
{
    int64_t shape[4];
    int r = 0;
    if (L->varlen) shape[r++] = L->tokens;
    else { shape[r++] = L->batch; shape[r++] = L->seqlen; }
    shape[r++] = d0;
    if (ntrail == 2) shape[r++] = d1;
    return lu_f64(data, r, shape);
}

void lu_take_columns(const double *src, int64_t rows, int64_t width, int64_t c0, int64_t n, double *dst)
{
    for (int64_t t = 0; t < rows; t++) memcpy(dst + t * n, src + t * width + c0, (size_t)n * sizeof(double));
}

void lu_put_columns(const double *src, int64_t rows, int64_t width, int64_t c0, int64_t n, double *dst)
{
    for (int64_t t = 0; t < rows; t++) memcpy(dst + t * width + c0, src + t * n, (size_t)n * sizeof(double));
}
