/*
 * Linear layer (SPEC.md §5) — reference, forward and backward.
 *
 * Shapes: x (..., I) flattened to X (R×I), W (O×I), bias (O), y (..., O) as Y (R×O).
 *
 *   Y  = X Wᵀ + 1 biasᵀ
 *   dX = dY W                 (R×I)
 *   dW = dYᵀ X                (O×I)
 *   dbias = Σ_r dY[r,:]       (O)
 *
 * The products are single dgemm calls on the widened inputs. OpenBLAS splits a gemm over rows
 * and columns of the output, never over the summed dimension, so each element's sum has the
 * same order whatever its thread count. dbias is summed per column in row order.
 */
#include "config.h"

#include <limits.h>
#include <stdlib.h>

#include "layer_util.h"
#include "m2rnn/linear.h"

/* ---- checks ------------------------------------------------------------------------------ */

/* Validate the inputs; *rows, *in_dim, *out_dim on success. */
static m2rnn_status check_inputs(const m2rnn_linear_inputs *in, int64_t *rows, int64_t *I, int64_t *O)
{
    m2rnn_status st;
    if ((st = lu_required(&in->x, "x")) || (st = lu_required(&in->W, "W"))) return st;
    if ((st = lu_rank_at_least(&in->x, "x", 1)) || (st = lu_rank_at_least(&in->W, "W", 2))) return st;
    *I = in->x.shape[in->x.rank - 1];
    if (in->W.rank != 2 || in->W.shape[1] != *I) {
        char buf[128];
        return m2rnn_set_error(M2RNN_ERR_SHAPE, "W: expected shape (out, %lld), got %s", (long long)*I,
                               m2rnn_shape_string(&in->W, buf, sizeof buf));
    }
    *O = in->W.shape[0];
    *rows = *I ? m2rnn_tensor_numel(&in->x) / *I : 1;
    for (int i = 0; *I == 0 && i < in->x.rank - 1; i++) *rows *= in->x.shape[i];
    if (*rows > INT_MAX || *I > INT_MAX || *O > INT_MAX)
        return m2rnn_set_error(M2RNN_ERR_OVERFLOW, "x, W: dimensions beyond OpenBLAS's int");
    int64_t bshape[1] = {*O};
    return lu_optional(&in->bias, "bias", 1, bshape);
}

/* The shape of x with the last dim replaced by `last`. */
static m2rnn_tensor shape_with_last(const m2rnn_tensor *x, int64_t last)
{
    m2rnn_tensor t = m2rnn_tensor_make(NULL, M2RNN_F64, x->rank, x->shape);
    t.shape[t.rank - 1] = last;
    return t;
}

m2rnn_status m2rnn_linear_check_forward(const m2rnn_linear_forward_args *a)
{
    if (!a) return m2rnn_set_error(M2RNN_ERR_NULL, "linear_forward: NULL argument struct");
    int64_t R, I, O;
    m2rnn_status st = check_inputs(&a->in, &R, &I, &O);
    if (st) return st;
    m2rnn_tensor want = shape_with_last(&a->in.x, O);
    if ((st = lu_required(&a->y, "y"))) return st;
    return lu_same_shape(&a->y, "y", &want);
}

m2rnn_status m2rnn_linear_check_backward(const m2rnn_linear_backward_args *a)
{
    if (!a) return m2rnn_set_error(M2RNN_ERR_NULL, "linear_backward: NULL argument struct");
    int64_t R, I, O;
    m2rnn_status st = check_inputs(&a->in, &R, &I, &O);
    if (st) return st;
    m2rnn_tensor want = shape_with_last(&a->in.x, O);
    int64_t bshape[1] = {O};
    if ((st = lu_required(&a->dy, "dy")) || (st = lu_same_shape(&a->dy, "dy", &want))) return st;
    if ((st = lu_required(&a->dx, "dx")) || (st = lu_same_shape(&a->dx, "dx", &a->in.x))) return st;
    if ((st = lu_required(&a->dW, "dW")) || (st = lu_same_shape(&a->dW, "dW", &a->in.W))) return st;
    return lu_optional(&a->dbias, "dbias", 1, bshape);
}

/* ---- forward ----------------------------------------------------------------------------- */

m2rnn_status m2rnn_linear_forward_ref(const m2rnn_linear_forward_args *args)
{
    int64_t R, I, O;
    m2rnn_status st = m2rnn_linear_check_forward(args);
    if (st) return st;
    check_inputs(&args->in, &R, &I, &O);
    double *x = lu_widen(&args->in.x), *W = lu_widen(&args->in.W), *y = lu_alloc(R * O);
    double *bias = m2rnn_tensor_present(&args->in.bias) ? lu_widen(&args->in.bias) : NULL;
    double *all[] = {x, W, y, bias};
    if (!x || !W || !y || (m2rnn_tensor_present(&args->in.bias) && !bias)) {
        lu_free_all(all, 4);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "linear_forward: cannot allocate buffers");
    }
    lu_gemm(false, true, R, O, I, x, W, 0.0, y); /* Y = X Wᵀ */
    if (bias)
        for (int64_t r = 0; r < R; r++)
            for (int64_t o = 0; o < O; o++) y[r * O + o] += bias[o];
    m2rnn_tensor yt = args->y;
    m2rnn_tensor_from_f64(&yt, y);
    lu_free_all(all, 4);
    return M2RNN_OK;
}

/* ---- backward ---------------------------------------------------------------------------- */

m2rnn_status m2rnn_linear_backward_ref(const m2rnn_linear_backward_args *args)
{
    int64_t R, I, O;
    m2rnn_status st = m2rnn_linear_check_backward(args);
    if (st) return st;
    check_inputs(&args->in, &R, &I, &O);
    double *x = lu_widen(&args->in.x), *W = lu_widen(&args->in.W), *dy = lu_widen(&args->dy);
    double *dx = lu_alloc(R * I), *dW = lu_alloc(O * I), *db = lu_alloc(O);
    double *all[] = {x, W, dy, dx, dW, db};
    if (!x || !W || !dy || !dx || !dW || !db) {
        lu_free_all(all, 6);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "linear_backward: cannot allocate buffers");
    }
    lu_gemm(false, false, R, I, O, dy, W, 0.0, dx); /* dX = dY W */
    lu_gemm(true, false, O, I, R, dy, x, 0.0, dW);  /* dW = dYᵀ X */
    for (int64_t o = 0; o < O; o++) {
        double acc = 0.0;
        for (int64_t r = 0; r < R; r++) acc += dy[r * O + o];
        db[o] = acc;
    }
    m2rnn_tensor dxt = args->dx, dWt = args->dW, dbt = args->dbias;
    m2rnn_tensor_from_f64(&dxt, dx);
    m2rnn_tensor_from_f64(&dWt, dW);
    if (m2rnn_tensor_present(&dbt)) m2rnn_tensor_from_f64(&dbt, db);
    lu_free_all(all, 6);
    return M2RNN_OK;
}
