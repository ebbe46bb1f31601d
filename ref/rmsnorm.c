/*
 * RMSNorm (SPEC.md §5) — reference, forward and backward.
 *
 * Shapes: x (..., D) as R rows of D, w (D), y the shape of x.
 *
 * Forward, per row:
 *   r   = 1 / sqrt(Σ_i x_i² / D + eps)          (eps inside the root)
 *   y_i = x_i · r · w_i
 * Backward, per row, with g_i = w_i dy_i:
 *   ∂r/∂x_j = -r³ x_j / D
 *   dx_i = r g_i - x_i · (r³ / D) · Σ_j g_j x_j
 *   dw_i = Σ_rows dy_i x_i r
 *
 * Rows run in parallel for dx; dw is summed per column in row order afterwards, so nothing
 * depends on the thread count.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>

#include "layer_util.h"
#include "m2rnn/rmsnorm.h"

/* ---- checks ------------------------------------------------------------------------------ */

static m2rnn_status check_inputs(const m2rnn_rmsnorm_inputs *in)
{
    m2rnn_status st;
    if ((st = lu_required(&in->x, "x")) || (st = lu_required(&in->w, "w"))) return st;
    if ((st = lu_rank_at_least(&in->x, "x", 1))) return st;
    int64_t D = in->x.shape[in->x.rank - 1];
    if (D < 1) return m2rnn_set_error(M2RNN_ERR_SHAPE, "x: the normalised axis must be >= 1");
    if ((st = lu_shape(&in->w, "w", 1, &D))) return st;
    if (!(in->eps >= 0.0) || isinf(in->eps))
        return m2rnn_set_error(M2RNN_ERR_ARG, "eps: %g, must be finite and >= 0", in->eps);
    return M2RNN_OK;
}

m2rnn_status m2rnn_rmsnorm_check_forward(const m2rnn_rmsnorm_forward_args *a)
{
    if (!a) return m2rnn_set_error(M2RNN_ERR_NULL, "rmsnorm_forward: NULL argument struct");
    m2rnn_status st = check_inputs(&a->in);
    if (st || (st = lu_required(&a->y, "y"))) return st;
    return lu_same_shape(&a->y, "y", &a->in.x);
}

m2rnn_status m2rnn_rmsnorm_check_backward(const m2rnn_rmsnorm_backward_args *a)
{
    if (!a) return m2rnn_set_error(M2RNN_ERR_NULL, "rmsnorm_backward: NULL argument struct");
    m2rnn_status st = check_inputs(&a->in);
    if (st) return st;
    if ((st = lu_required(&a->dy, "dy")) || (st = lu_same_shape(&a->dy, "dy", &a->in.x))) return st;
    if ((st = lu_required(&a->dx, "dx")) || (st = lu_same_shape(&a->dx, "dx", &a->in.x))) return st;
    if ((st = lu_required(&a->dw, "dw")) || (st = lu_same_shape(&a->dw, "dw", &a->in.w))) return st;
    return M2RNN_OK;
}

/* r = 1 / sqrt(mean(x²) + eps) of one row */
static double inv_rms(const double *x, int64_t D, double eps)
{
    double ss = 0.0;
    for (int64_t i = 0; i < D; i++) ss += x[i] * x[i];
    return 1.0 / sqrt(ss / (double)D + eps);
}

/* ---- forward ----------------------------------------------------------------------------- */

m2rnn_status m2rnn_rmsnorm_forward_ref(const m2rnn_rmsnorm_forward_args *args)
{
    m2rnn_status st = m2rnn_rmsnorm_check_forward(args);
    if (st) return st;
    const int64_t D = args->in.x.shape[args->in.x.rank - 1], R = m2rnn_tensor_numel(&args->in.x) / D;
    double *x = lu_widen(&args->in.x), *w = lu_widen(&args->in.w);
    double *all[] = {x, w};
    if (!x || !w) {
        lu_free_all(all, 2);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "rmsnorm_forward: cannot allocate buffers");
    }
    const double eps = args->in.eps;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r++) {
        double *xr = x + r * D, inv = inv_rms(xr, D, eps);
        for (int64_t i = 0; i < D; i++) xr[i] = xr[i] * inv * w[i]; /* in place: y over x */
    }
    m2rnn_tensor y = args->y;
    m2rnn_tensor_from_f64(&y, x);
    lu_free_all(all, 2);
    return M2RNN_OK;
}

/* ---- backward ---------------------------------------------------------------------------- */

m2rnn_status m2rnn_rmsnorm_backward_ref(const m2rnn_rmsnorm_backward_args *args)
{
    m2rnn_status st = m2rnn_rmsnorm_check_backward(args);
    if (st) return st;
    const int64_t D = args->in.x.shape[args->in.x.rank - 1], R = m2rnn_tensor_numel(&args->in.x) / D;
    double *x = lu_widen(&args->in.x), *w = lu_widen(&args->in.w), *dy = lu_widen(&args->dy);
    double *dx = lu_alloc(R * D), *inv = lu_alloc(R), *dw = lu_alloc(D);
    double *all[] = {x, w, dy, dx, inv, dw};
    if (!x || !w || !dy || !dx || !inv || !dw) {
        lu_free_all(all, 6);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "rmsnorm_backward: cannot allocate buffers");
    }
    const double eps = args->in.eps;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r++) {
        const double *xr = x + r * D, *dyr = dy + r * D;
        double rr = inv_rms(xr, D, eps), gx = 0.0;
        inv[r] = rr;
        for (int64_t j = 0; j < D; j++) gx += w[j] * dyr[j] * xr[j]; /* Σ_j g_j x_j */
        double c = rr * rr * rr / (double)D * gx;
        for (int64_t i = 0; i < D; i++) dx[r * D + i] = rr * w[i] * dyr[i] - xr[i] * c;
    }
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < D; i++) {
        double acc = 0.0;
        for (int64_t r = 0; r < R; r++) acc += dy[r * D + i] * x[r * D + i] * inv[r];
        dw[i] = acc;
    }
    m2rnn_tensor dxt = args->dx, dwt = args->dw;
    m2rnn_tensor_from_f64(&dxt, dx);
    m2rnn_tensor_from_f64(&dwt, dw);
    lu_free_all(all, 6);
    return M2RNN_OK;
}
