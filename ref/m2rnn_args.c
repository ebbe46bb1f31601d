/*
 * Validation of the recurrence's arguments (SPEC.md §1), shared by every backend: the dispatch
 * functions call it before any backend runs, so a backend sees only consistent shapes.
 *
 * Each check names the argument it rejects. Nothing here reads tensor data except cu_seqlens,
 * which the API keeps in host memory for exactly this reason.
 */
#include <stdio.h>

#include "m2rnn/recurrence.h"

/* Fetch dims[i] of t with the expected rank, or fail naming the argument. */
static m2rnn_status expect_rank(const m2rnn_tensor *t, const char *name, int rank)
{
    if (t->rank != rank) {
        char buf[128];
        return m2rnn_set_error(M2RNN_ERR_SHAPE, "%s: expected rank %d, got shape %s", name, rank,
                               m2rnn_shape_string(t, buf, sizeof buf));
    }
    for (int i = 0; i < rank; i++)
        if (t->shape[i] < 0)
            return m2rnn_set_error(M2RNN_ERR_SHAPE, "%s: negative dimension %d", name, i);
    if (m2rnn_tensor_numel(t) < 0 || (t->rank > 0 && m2rnn_tensor_nbytes(t) == 0 && m2rnn_tensor_numel(t) > 0))
        return m2rnn_set_error(M2RNN_ERR_OVERFLOW, "%s: element count overflows", name);
    return M2RNN_OK;
}

static m2rnn_status expect_float(const m2rnn_tensor *t, const char *name)
{
    if (!m2rnn_dtype_is_float(t->dtype))
        return m2rnn_set_error(M2RNN_ERR_DTYPE, "%s: dtype %s is not a float dtype (F64, F32, BF16, F16)",
                               name, m2rnn_dtype_name(t->dtype));
    return M2RNN_OK;
}

static m2rnn_status expect_required(const m2rnn_tensor *t, const char *name)
{
    if (!m2rnn_tensor_present(t)) return m2rnn_set_error(M2RNN_ERR_NULL, "%s: required tensor is missing", name);
    return expect_float(t, name);
}

/* t must have exactly the given shape. */
static m2rnn_status expect_shape(const m2rnn_tensor *t, const char *name, int rank, const int64_t *shape)
{
    m2rnn_status st = expect_rank(t, name, rank);
    if (st) return st;
    for (int i = 0; i < rank; i++) {
        if (t->shape[i] != shape[i]) {
            char got[128], want[128];
            m2rnn_tensor w = m2rnn_tensor_make(NULL, t->dtype, rank, shape);
            return m2rnn_set_error(M2RNN_ERR_SHAPE, "%s: expected shape %s, got %s", name,
                                   m2rnn_shape_string(&w, want, sizeof want),
                                   m2rnn_shape_string(t, got, sizeof got));
        }
    }
    return M2RNN_OK;
}

/* Shape of a per-token tensor with `heads` heads of size `dim` (dim < 0: no trailing dim). */
static int token_shape(const m2rnn_recurrence_dims *d, int64_t heads, int64_t dim, int64_t *shape)
{
    int r = 0;
    if (d->varlen) shape[r++] = d->tokens;
    else { shape[r++] = d->batch; shape[r++] = d->seqlen; }
    shape[r++] = heads;
    if (dim >= 0) shape[r++] = dim;
    return r;
}

static m2rnn_status check_token_tensor(const m2rnn_tensor *t, const char *name, const m2rnn_recurrence_dims *d,
                                       int64_t heads, int64_t dim)
{
    int64_t shape[5];
    int r = token_shape(d, heads, dim, shape);
    return expect_shape(t, name, r, shape);
}

static m2rnn_status check_state_tensor(const m2rnn_tensor *t, const char *name, const m2rnn_recurrence_dims *d)
{
    int64_t shape[4] = {d->batch, d->heads, d->key_dim, d->value_dim};
    m2rnn_status st = expect_float(t, name);
    return st ? st : expect_shape(t, name, 4, shape);
}

static m2rnn_status check_cu_seqlens(const m2rnn_tensor *cu, m2rnn_recurrence_dims *d)
{
    if (cu->dtype != M2RNN_I32 && cu->dtype != M2RNN_I64)
        return m2rnn_set_error(M2RNN_ERR_DTYPE, "cu_seqlens: dtype %s, expected I32 or I64", m2rnn_dtype_name(cu->dtype));
    if (cu->rank != 1 || cu->shape[0] < 1)
        return m2rnn_set_error(M2RNN_ERR_SHAPE, "cu_seqlens: expected shape (B+1,) with B >= 0");
    int64_t n = cu->shape[0];
    int64_t prev = (int64_t)m2rnn_tensor_get(cu, 0);
    if (prev != 0) return m2rnn_set_error(M2RNN_ERR_SEQLENS, "cu_seqlens[0] = %lld, must be 0", (long long)prev);
    for (int64_t i = 1; i < n; i++) {
        int64_t x = cu->dtype == M2RNN_I32 ? ((const int32_t *)cu->data)[i] : ((const int64_t *)cu->data)[i];
        if (x < prev)
            return m2rnn_set_error(M2RNN_ERR_SEQLENS, "cu_seqlens[%lld] = %lld < cu_seqlens[%lld] = %lld: must be non-decreasing",
                                   (long long)i, (long long)x, (long long)(i - 1), (long long)prev);
        prev = x;
    }
    d->batch = n - 1;
    d->seqlen = 0;
    d->tokens = prev;
    d->varlen = true;
    return M2RNN_OK;
}

/* Head count of a per-token tensor and its trailing dim, read off q/k/v/f. */
static m2rnn_status read_heads(const m2rnn_tensor *t, const char *name, bool varlen, bool has_dim,
                               int64_t *heads, int64_t *dim)
{
    int rank = (varlen ? 1 : 2) + 1 + (has_dim ? 1 : 0);
    m2rnn_status st = expect_rank(t, name, rank);
    if (st) return st;
    *heads = t->shape[varlen ? 1 : 2];
    if (has_dim) *dim = t->shape[rank - 1];
    if (*heads < 1) return m2rnn_set_error(M2RNN_ERR_SHAPE, "%s: head count must be >= 1", name);
    if (has_dim && *dim < 1) return m2rnn_set_error(M2RNN_ERR_SHAPE, "%s: head dim must be >= 1", name);
    return M2RNN_OK;
}

static m2rnn_status check_inputs(const m2rnn_recurrence_inputs *in, m2rnn_recurrence_dims *d)
{
    m2rnn_status st;
    static const char *names[] = {"q", "k", "v", "W", "f"};
    const m2rnn_tensor *req[] = {&in->q, &in->k, &in->v, &in->W, &in->f};
    for (int i = 0; i < 5; i++)
        if ((st = expect_required(req[i], names[i]))) return st;

    *d = (m2rnn_recurrence_dims){0};
    if (m2rnn_tensor_present(&in->cu_seqlens)) {
        if ((st = check_cu_seqlens(&in->cu_seqlens, d))) return st;
    } else {
        if ((st = expect_rank(&in->q, "q", 4))) return st;
        d->batch = in->q.shape[0];
        d->seqlen = in->q.shape[1];
        if (d->seqlen != 0 && d->batch > INT64_MAX / d->seqlen)
            return m2rnn_set_error(M2RNN_ERR_OVERFLOW, "q: B*S overflows");
        d->tokens = d->batch * d->seqlen;
    }
    int64_t kq, kk, vv;
    if ((st = read_heads(&in->q, "q", d->varlen, true, &d->q_heads, &kq))) return st;
    if ((st = read_heads(&in->k, "k", d->varlen, true, &d->k_heads, &kk))) return st;
    if ((st = read_heads(&in->v, "v", d->varlen, true, &d->v_heads, &vv))) return st;
    if ((st = read_heads(&in->f, "f", d->varlen, false, &d->f_heads, NULL))) return st;
    if ((st = expect_rank(&in->W, "W", 3))) return st;
    d->w_heads = in->W.shape[0];
    if (d->w_heads < 1) return m2rnn_set_error(M2RNN_ERR_SHAPE, "W: head count must be >= 1");
    if (kk != kq) return m2rnn_set_error(M2RNN_ERR_SHAPE, "k: head dim %lld differs from q's %lld", (long long)kk, (long long)kq);
    d->key_dim = kq;
    d->value_dim = vv;

    int64_t counts[5] = {d->q_heads, d->k_heads, d->v_heads, d->f_heads, d->w_heads};
    d->heads = 1;
    for (int i = 0; i < 5; i++) if (counts[i] > d->heads) d->heads = counts[i];
    static const char *count_names[] = {"q", "k", "v", "f", "W"};
    for (int i = 0; i < 5; i++)
        if (d->heads % counts[i] != 0)
            return m2rnn_set_error(M2RNN_ERR_HEADS, "%s: %lld heads do not divide N = %lld", count_names[i],
                                   (long long)counts[i], (long long)d->heads);

    if ((st = check_token_tensor(&in->q, "q", d, d->q_heads, d->key_dim))) return st;
    if ((st = check_token_tensor(&in->k, "k", d, d->k_heads, d->key_dim))) return st;
    if ((st = check_token_tensor(&in->v, "v", d, d->v_heads, d->value_dim))) return st;
    if ((st = check_token_tensor(&in->f, "f", d, d->f_heads, -1))) return st;
    int64_t wshape[3] = {d->w_heads, d->value_dim, d->value_dim};
    if ((st = expect_shape(&in->W, "W", 3, wshape))) return st;
    if (m2rnn_tensor_present(&in->h0) && (st = check_state_tensor(&in->h0, "h0", d))) return st;

    /* The state arrays the backends allocate must be addressable. */
    int64_t state = d->batch;
    int64_t factors[3] = {d->heads, d->key_dim, d->value_dim};
    for (int i = 0; i < 3; i++) {
        if (factors[i] != 0 && state > INT64_MAX / 8 / factors[i])
            return m2rnn_set_error(M2RNN_ERR_OVERFLOW, "B*N*K*V overflows");
        state *= factors[i];
    }
    int64_t tok = d->tokens;
    if (d->heads != 0 && tok > INT64_MAX / 8 / d->heads / (d->key_dim > d->value_dim ? d->key_dim : d->value_dim))
        return m2rnn_set_error(M2RNN_ERR_OVERFLOW, "T*N*max(K,V) overflows");
    return M2RNN_OK;
}

m2rnn_status m2rnn_recurrence_check_forward(const m2rnn_recurrence_forward_args *a, m2rnn_recurrence_dims *d)
{
    if (!a || !d) return m2rnn_set_error(M2RNN_ERR_NULL, "recurrence_forward: NULL argument struct");
    m2rnn_status st = check_inputs(&a->in, d);
    if (st) return st;
    if (!m2rnn_tensor_present(&a->y)) return m2rnn_set_error(M2RNN_ERR_NULL, "y: required output is missing");
    if ((st = expect_float(&a->y, "y"))) return st;
    if ((st = check_token_tensor(&a->y, "y", d, d->heads, d->value_dim))) return st;
    if (m2rnn_tensor_present(&a->ht) && (st = check_state_tensor(&a->ht, "ht", d))) return st;
    return M2RNN_OK;
}

m2rnn_status m2rnn_recurrence_check_backward(const m2rnn_recurrence_backward_args *a, m2rnn_recurrence_dims *d)
{
    if (!a || !d) return m2rnn_set_error(M2RNN_ERR_NULL, "recurrence_backward: NULL argument struct");
    m2rnn_status st = check_inputs(&a->in, d);
    if (st) return st;
    if ((st = expect_required(&a->dy, "dy"))) return st;
    if ((st = check_token_tensor(&a->dy, "dy", d, d->heads, d->value_dim))) return st;
    if (m2rnn_tensor_present(&a->dht) && (st = check_state_tensor(&a->dht, "dht", d))) return st;
    if (a->clip_mode != M2RNN_CLIP_NONE && a->clip_mode != M2RNN_CLIP_CARRY && a->clip_mode != M2RNN_CLIP_TOTAL)
        return m2rnn_set_error(M2RNN_ERR_ARG, "clip_mode: %d is not NONE, CARRY or TOTAL", (int)a->clip_mode);
    if (a->clip_mode != M2RNN_CLIP_NONE && a->clip != a->clip)
        return m2rnn_set_error(M2RNN_ERR_ARG, "clip: the bound is NaN");

    const struct { const m2rnn_tensor *grad, *input; const char *name; } pairs[] = {
        {&a->dq, &a->in.q, "dq"}, {&a->dk, &a->in.k, "dk"}, {&a->dv, &a->in.v, "dv"},
        {&a->dW, &a->in.W, "dW"}, {&a->df, &a->in.f, "df"},
    };
    for (int i = 0; i < 5; i++) {
        if ((st = expect_required(pairs[i].grad, pairs[i].name))) return st;
        if ((st = expect_shape(pairs[i].grad, pairs[i].name, pairs[i].input->rank, pairs[i].input->shape))) return st;
    }
    if (m2rnn_tensor_present(&a->dh0) && (st = check_state_tensor(&a->dh0, "dh0", d))) return st;
    return M2RNN_OK;
}

void m2rnn_recurrence_sequence(const m2rnn_recurrence_inputs *in, const m2rnn_recurrence_dims *d, int64_t b,
                               int64_t *start, int64_t *end)
{
    if (d->varlen) {
        *start = (int64_t)m2rnn_tensor_get(&in->cu_seqlens, b);
        *end = (int64_t)m2rnn_tensor_get(&in->cu_seqlens, b + 1);
    } else {
        *start = b * d->seqlen;
        *end = *start + d->seqlen;
    }
}
