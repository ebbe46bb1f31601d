/*
 * The decay gate (SPEC.md §2) — reference, forward and backward.
 *
 * Shapes: x (..., Nf) with R = numel(x)/Nf rows, A_log (Nf), dt_bias (Nf), f (..., Nf).
 *
 * Forward, per row r and head h:
 *   u = x[r,h] + dt_bias[h]
 *   a = exp(A_log[h])
 *   s = softplus(u) = log(1 + e^u)            (stable: max(u,0) + log1p(e^{-|u|}))
 *   f[r,h] = exp(-a s)                        in (0, 1]
 *
 * Backward, with df = dL/df:
 *   ∂f/∂u      = -a σ(u) f                    (softplus' = σ)
 *   ∂f/∂A_log  = -a s f                       (∂a/∂A_log = a)
 *   dx[r,h]    = df[r,h] · ∂f/∂u
 *   ddt_bias[h] = Σ_r dx[r,h]                 (u = x + dt_bias: the same derivative)
 *   dA_log[h]  = Σ_r df[r,h] · (-a s f)
 *
 * Rows are independent; the sums over rows run per head in row order (one thread per head), so
 * the result does not depend on the number of threads.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>

#include "layer_util.h"
#include "m2rnn/decay_gate.h"

/* ---- checks ------------------------------------------------------------------------------ */

static m2rnn_status check_inputs(const m2rnn_decay_gate_inputs *in, int64_t *rows, int64_t *heads)
{
    m2rnn_status st;
    if ((st = lu_required(&in->x, "x")) || (st = lu_required(&in->A_log, "A_log")) ||
        (st = lu_required(&in->dt_bias, "dt_bias")))
        return st;
    if ((st = lu_rank_at_least(&in->x, "x", 1))) return st;
    *heads = in->x.shape[in->x.rank - 1];
    if (*heads < 1) return m2rnn_set_error(M2RNN_ERR_SHAPE, "x: the last axis (heads) must be >= 1");
    *rows = m2rnn_tensor_numel(&in->x) / *heads;
    if ((st = lu_shape(&in->A_log, "A_log", 1, heads))) return st;
    return lu_shape(&in->dt_bias, "dt_bias", 1, heads);
}

m2rnn_status m2rnn_decay_gate_check_forward(const m2rnn_decay_gate_forward_args *a)
{
    if (!a) return m2rnn_set_error(M2RNN_ERR_NULL, "decay_gate_forward: NULL argument struct");
    int64_t rows, heads;
    m2rnn_status st = check_inputs(&a->in, &rows, &heads);
    if (st) return st;
    if ((st = lu_required(&a->f, "f"))) return st;
    return lu_same_shape(&a->f, "f", &a->in.x);
}

m2rnn_status m2rnn_decay_gate_check_backward(const m2rnn_decay_gate_backward_args *a)
{
    if (!a) return m2rnn_set_error(M2RNN_ERR_NULL, "decay_gate_backward: NULL argument struct");
    int64_t rows, heads;
    m2rnn_status st = check_inputs(&a->in, &rows, &heads);
    if (st) return st;
    const struct { const m2rnn_tensor *t, *like; const char *name; } req[] = {
        {&a->df, &a->in.x, "df"}, {&a->dx, &a->in.x, "dx"},
        {&a->dA_log, &a->in.A_log, "dA_log"}, {&a->ddt_bias, &a->in.A_log, "ddt_bias"},
    };
    for (int i = 0; i < 4; i++)
        if ((st = lu_required(req[i].t, req[i].name)) || (st = lu_same_shape(req[i].t, req[i].name, req[i].like)))
            return st;
    return M2RNN_OK;
}

/* ---- forward ----------------------------------------------------------------------------- */

m2rnn_status m2rnn_decay_gate_forward_ref(const m2rnn_decay_gate_forward_args *args)
{
    m2rnn_status st = m2rnn_decay_gate_check_forward(args);
    if (st) return st;
    const m2rnn_decay_gate_inputs *in = &args->in;
    const int64_t H = in->x.shape[in->x.rank - 1], R = m2rnn_tensor_numel(&in->x) / H;
    double *x = lu_widen(&in->x), *A_log = lu_widen(&in->A_log), *dt_bias = lu_widen(&in->dt_bias);
    if (!x || !A_log || !dt_bias) {
        double *all[] = {x, A_log, dt_bias};
        lu_free_all(all, 3);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "decay_gate_forward: cannot allocate the widened inputs");
    }
    m2rnn_tensor f = args->f;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r++)
        for (int64_t h = 0; h < H; h++) {
            double s = lu_softplus(x[r * H + h] + dt_bias[h]);
            m2rnn_tensor_set(&f, r * H + h, exp(-exp(A_log[h]) * s));
        }
    double *all[] = {x, A_log, dt_bias};
    lu_free_all(all, 3);
    return M2RNN_OK;
}

/* ---- backward ---------------------------------------------------------------------------- */

m2rnn_status m2rnn_decay_gate_backward_ref(const m2rnn_decay_gate_backward_args *args)
{
    m2rnn_status st = m2rnn_decay_gate_check_backward(args);
    if (st) return st;
    const m2rnn_decay_gate_inputs *in = &args->in;
    const int64_t H = in->x.shape[in->x.rank - 1], R = m2rnn_tensor_numel(&in->x) / H;
    double *x = lu_widen(&in->x), *A_log = lu_widen(&in->A_log), *dt_bias = lu_widen(&in->dt_bias);
    double *df = lu_widen(&args->df), *dA_log = lu_alloc(H), *ddt_bias = lu_alloc(H);
    double *all[] = {x, A_log, dt_bias, df, dA_log, ddt_bias};
    if (!x || !A_log || !dt_bias || !df || !dA_log || !ddt_bias) {
        lu_free_all(all, 6);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "decay_gate_backward: cannot allocate buffers");
    }
    m2rnn_tensor dx = args->dx, dA = args->dA_log, ddt = args->ddt_bias;
    /* One thread per head: the sums over rows stay in row order. */
#pragma omp parallel for schedule(static)
    for (int64_t h = 0; h < H; h++) {
        double a = exp(A_log[h]), sum_du = 0.0, sum_dA = 0.0;
        for (int64_t r = 0; r < R; r++) {
            double u = x[r * H + h] + dt_bias[h];
            double s = lu_softplus(u), f = exp(-a * s), g = df[r * H + h];
            double du = g * (-a * lu_sigmoid(u) * f);
            m2rnn_tensor_set(&dx, r * H + h, du);
            sum_du += du;
            sum_dA += g * (-a * s * f);
        }
        dA_log[h] = sum_dA;
        ddt_bias[h] = sum_du;
    }
    m2rnn_tensor_from_f64(&dA, dA_log);
    m2rnn_tensor_from_f64(&ddt, ddt_bias);
    lu_free_all(all, 6);
    return M2RNN_OK;
}

/* ---- initialisation ---------------------------------------------------------------------- */

m2rnn_status m2rnn_decay_gate_init(m2rnn_tensor *A_log, m2rnn_tensor *dt_bias, m2rnn_rng *rng)
{
    m2rnn_status st;
    if (!A_log || !dt_bias || !rng) return m2rnn_set_error(M2RNN_ERR_NULL, "decay_gate_init: NULL argument");
    if ((st = lu_required(A_log, "A_log")) || (st = lu_rank_at_least(A_log, "A_log", 1)) ||
        (st = lu_required(dt_bias, "dt_bias")) || (st = lu_same_shape(dt_bias, "dt_bias", A_log)))
        return st;
    int64_t n = m2rnn_tensor_numel(A_log);
    for (int64_t h = 0; h < n; h++) {
        double A = 16.0 * (1.0 - m2rnn_rng_uniform(rng)); /* (0, 16]: log A is finite */
        m2rnn_tensor_set(A_log, h, log(A));
    }
    const double lo = log(1e-3), hi = log(0.1);
    for (int64_t h = 0; h < n; h++) {
        double dt = exp(lo + (hi - lo) * m2rnn_rng_uniform(rng));
        dt = fmax(dt, 1e-4);
        m2rnn_tensor_set(dt_bias, h, dt + log(-expm1(-dt)));
    }
    return M2RNN_OK;
}
