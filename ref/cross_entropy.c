/*
 * Cross-entropy (SPEC.md §5) — reference, forward and backward. Math: see cross_entropy.h.
 *
 * Shapes: logits (T×C) after flattening the leading axes, targets (T), loss one element.
 * Per token, in double: m = max_c x_c,  lse = m + log Σ_c exp(x_c - m)  (max subtracted: no
 * overflow), loss_t = lse - x_t[y_t]; the mean is over counted tokens, summed in token order.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layer_util.h"
#include "m2rnn/cross_entropy.h"

static m2rnn_status check_one(const m2rnn_tensor *t, const char *name)
{
    m2rnn_status st = lu_required(t, name);
    if (st) return st;
    if (m2rnn_tensor_numel(t) != 1) return m2rnn_set_error(M2RNN_ERR_SHAPE, "%s: must hold exactly one element", name);
    return M2RNN_OK;
}

static bool counted(const m2rnn_cross_entropy_inputs *in, int64_t y)
{
    return !(in->has_ignore && y == in->ignore_index);
}

static m2rnn_status check_inputs(const m2rnn_cross_entropy_inputs *in)
{
    m2rnn_status st;
    if ((st = lu_required(&in->logits, "logits")) || (st = lu_rank_at_least(&in->logits, "logits", 1))) return st;
    const int64_t C = in->logits.shape[in->logits.rank - 1];
    if (C < 1) return m2rnn_set_error(M2RNN_ERR_SHAPE, "logits: the class axis must be >= 1");
    if (!m2rnn_tensor_present(&in->targets)) return m2rnn_set_error(M2RNN_ERR_NULL, "targets: required");
    if (!m2rnn_dtype_is_int(in->targets.dtype))
        return m2rnn_set_error(M2RNN_ERR_DTYPE, "targets: dtype %s, must be I32 or I64", m2rnn_dtype_name(in->targets.dtype));
    if ((st = lu_shape(&in->targets, "targets", in->logits.rank - 1, in->logits.shape))) return st;
    const int64_t T = m2rnn_tensor_numel(&in->targets);
    for (int64_t t = 0; t < T; t++) {
        double y = m2rnn_tensor_get(&in->targets, t);
        if (counted(in, (int64_t)y) && (y < 0 || y >= (double)C))
            return m2rnn_set_error(M2RNN_ERR_ARG, "targets[%lld] = %.0f: outside [0, %lld) and not the ignore index", (long long)t, y,
                                   (long long)C);
    }
    return M2RNN_OK;
}

m2rnn_status m2rnn_cross_entropy_check_forward(const m2rnn_cross_entropy_forward_args *a)
{
    if (!a) return m2rnn_set_error(M2RNN_ERR_NULL, "cross_entropy_forward: NULL argument struct");
    m2rnn_status st = check_inputs(&a->in);
    return st ? st : check_one(&a->loss, "loss");
}

m2rnn_status m2rnn_cross_entropy_check_backward(const m2rnn_cross_entropy_backward_args *a)
{
    if (!a) return m2rnn_set_error(M2RNN_ERR_NULL, "cross_entropy_backward: NULL argument struct");
    m2rnn_status st = check_inputs(&a->in);
    if (st) return st;
    if (m2rnn_tensor_present(&a->dloss) && (st = check_one(&a->dloss, "dloss"))) return st;
    if ((st = lu_required(&a->dlogits, "dlogits"))) return st;
    return lu_same_shape(&a->dlogits, "dlogits", &a->in.logits);
}

/* logsumexp of one row, max subtracted. */
static double logsumexp(const double *x, int64_t C)
{
    double m = -INFINITY, s = 0;
    for (int64_t c = 0; c < C; c++) m = fmax(m, x[c]);
    for (int64_t c = 0; c < C; c++) s += exp(x[c] - m);
    return m + log(s);
}

m2rnn_status m2rnn_cross_entropy_forward_ref(const m2rnn_cross_entropy_forward_args *a)
{
    m2rnn_status st = m2rnn_cross_entropy_check_forward(a);
    if (st) return st;
    const m2rnn_cross_entropy_inputs *in = &a->in;
    const int64_t C = in->logits.shape[in->logits.rank - 1], T = m2rnn_tensor_numel(&in->targets);
    double *x = lu_widen(&in->logits);
    if (!x) return m2rnn_set_error(M2RNN_ERR_NOMEM, "cross_entropy: cannot allocate logits");
    double sum = 0;
    int64_t n = 0;
    for (int64_t t = 0; t < T; t++) {
        int64_t y = (int64_t)m2rnn_tensor_get(&in->targets, t);
        if (!counted(in, y)) continue;
        sum += logsumexp(x + t * C, C) - x[t * C + y];
        n++;
    }
    free(x);
    m2rnn_tensor loss = a->loss;
    m2rnn_tensor_set(&loss, 0, n ? sum / (double)n : 0.0);
    return M2RNN_OK;
}

m2rnn_status m2rnn_cross_entropy_backward_ref(const m2rnn_cross_entropy_backward_args *a)
{
    m2rnn_status st = m2rnn_cross_entropy_check_backward(a);
    if (st) return st;
    const m2rnn_cross_entropy_inputs *in = &a->in;
    const int64_t C = in->logits.shape[in->logits.rank - 1], T = m2rnn_tensor_numel(&in->targets);
    double *x = lu_widen(&in->logits), *dx = lu_zeros(T * C);
    if (!x || !dx) {
        free(x);
        free(dx);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "cross_entropy_backward: cannot allocate buffers");
    }
    int64_t n = 0;
    for (int64_t t = 0; t < T; t++) n += counted(in, (int64_t)m2rnn_tensor_get(&in->targets, t));
    const double g = (m2rnn_tensor_present(&a->dloss) ? m2rnn_tensor_get(&a->dloss, 0) : 1.0) / (double)(n ? n : 1);
    for (int64_t t = 0; t < T && n; t++) {
        int64_t y = (int64_t)m2rnn_tensor_get(&in->targets, t);
        if (!counted(in, y)) continue;
        const double lse = logsumexp(x + t * C, C);
        for (int64_t c = 0; c < C; c++) dx[t * C + c] = g * exp(x[t * C + c] - lse);
        dx[t * C + y] -= g;
    }
    m2rnn_tensor out = a->dlogits;
    m2rnn_tensor_from_f64(&out, dx);
    free(x);
    free(dx);
    return M2RNN_OK;
}
