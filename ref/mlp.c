/*
 * SiLU and the SwiGLU MLP (SPEC.md §5) — reference, forward and backward.
 *
 * SiLU, elementwise:  y = u σ(u),  dx = dy · σ(u) (1 + u (1 - σ(u))).
 *
 * MLP, x (..., d) as X (R×d); W_gate, W_up (h×d); W_down (d×h):
 *   Hg = X W_gateᵀ,  Hu = X W_upᵀ          (R×h)
 *   A  = SiLU(Hg) ⊙ Hu                     (R×h)
 *   Y  = A W_downᵀ                         (R×d)
 * Backward:
 *   dA = dY W_down,        dW_down = dYᵀ A
 *   dHg = dA ⊙ Hu ⊙ SiLU'(Hg),   dHu = dA ⊙ SiLU(Hg)
 *   dX = dHg W_gate + dHu W_up,  dW_gate = dHgᵀ X,  dW_up = dHuᵀ X
 * The products are dgemm calls (see linear.c on why their results do not depend on threads).
 */
#include "config.h"

#include <limits.h>
#include <stdlib.h>

#include "layer_util.h"
#include "m2rnn/mlp.h"

/* ---- SiLU -------------------------------------------------------------------------------- */

m2rnn_status m2rnn_silu_check_forward(const m2rnn_silu_forward_args *a)
{
    if (!a) return m2rnn_set_error(M2RNN_ERR_NULL, "silu_forward: NULL argument struct");
    m2rnn_status st;
    if ((st = lu_required(&a->x, "x")) || (st = lu_rank_at_least(&a->x, "x", 0))) return st;
    if ((st = lu_required(&a->y, "y")) || (st = lu_same_shape(&a->y, "y", &a->x))) return st;
    return M2RNN_OK;
}

m2rnn_status m2rnn_silu_check_backward(const m2rnn_silu_backward_args *a)
{
    if (!a) return m2rnn_set_error(M2RNN_ERR_NULL, "silu_backward: NULL argument struct");
    m2rnn_status st;
    if ((st = lu_required(&a->x, "x")) || (st = lu_rank_at_least(&a->x, "x", 0))) return st;
    if ((st = lu_required(&a->dy, "dy")) || (st = lu_same_shape(&a->dy, "dy", &a->x))) return st;
    if ((st = lu_required(&a->dx, "dx")) || (st = lu_same_shape(&a->dx, "dx", &a->x))) return st;
    return M2RNN_OK;
}

m2rnn_status m2rnn_silu_forward_ref(const m2rnn_silu_forward_args *args)
{
    m2rnn_status st = m2rnn_silu_check_forward(args);
    if (st) return st;
    int64_t n = m2rnn_tensor_numel(&args->x);
    double *x = lu_widen(&args->x);
    if (!x) return m2rnn_set_error(M2RNN_ERR_NOMEM, "silu_forward: cannot allocate buffers");
    for (int64_t e = 0; e < n; e++) x[e] = lu_silu(x[e]);
    m2rnn_tensor y = args->y;
    m2rnn_tensor_from_f64(&y, x);
    free(x);
    return M2RNN_OK;
}

m2rnn_status m2rnn_silu_backward_ref(const m2rnn_silu_backward_args *args)
{
    m2rnn_status st = m2rnn_silu_check_backward(args);
    if (st) return st;
    int64_t n = m2rnn_tensor_numel(&args->x);
    double *x = lu_widen(&args->x), *dy = lu_widen(&args->dy);
    if (!x || !dy) {
        free(x);
        free(dy);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "silu_backward: cannot allocate buffers");
    }
    for (int64_t e = 0; e < n; e++) x[e] = dy[e] * lu_silu_grad(x[e]);
    m2rnn_tensor dx = args->dx;
    m2rnn_tensor_from_f64(&dx, x);
    free(x);
    free(dy);
    return M2RNN_OK;
}

/* ---- MLP: checks ------------------------------------------------------------------------- */

static m2rnn_status check_mlp_inputs(const m2rnn_mlp_inputs *in, int64_t *R, int64_t *d, int64_t *h)
{
    m2rnn_status st;
    static const char *names[4] = {"x", "W_gate", "W_up", "W_down"};
    const m2rnn_tensor *req[4] = {&in->x, &in->W_gate, &in->W_up, &in->W_down};
    for (int i = 0; i < 4; i++)
        if ((st = lu_required(req[i], names[i]))) return st;
    if ((st = lu_rank_at_least(&in->x, "x", 1)) || (st = lu_rank_at_least(&in->W_gate, "W_gate", 2))) return st;
    *d = in->x.shape[in->x.rank - 1];
    if (in->W_gate.rank != 2 || in->W_gate.shape[1] != *d) {
        char buf[128];
        return m2rnn_set_error(M2RNN_ERR_SHAPE, "W_gate: expected shape (h, %lld), got %s", (long long)*d,
                               m2rnn_shape_string(&in->W_gate, buf, sizeof buf));
    }
    *h = in->W_gate.shape[0];
    int64_t up[2] = {*h, *d}, down[2] = {*d, *h};
    if ((st = lu_shape(&in->W_up, "W_up", 2, up)) || (st = lu_shape(&in->W_down, "W_down", 2, down))) return st;
    *R = 1;
    for (int i = 0; i < in->x.rank - 1; i++) *R *= in->x.shape[i]; /* fits: numel(x) was checked, or d = 0 */
    if (*R > INT_MAX || *d > INT_MAX || *h > INT_MAX)
        return m2rnn_set_error(M2RNN_ERR_OVERFLOW, "x, W_gate: dimensions beyond OpenBLAS's int");
    return M2RNN_OK;
}

m2rnn_status m2rnn_mlp_check_forward(const m2rnn_mlp_forward_args *a)
{
    if (!a) return m2rnn_set_error(M2RNN_ERR_NULL, "mlp_forward: NULL argument struct");
    int64_t R, d, h;
    m2rnn_status st = check_mlp_inputs(&a->in, &R, &d, &h);
    if (st || (st = lu_required(&a->y, "y"))) return st;
    return lu_same_shape(&a->y, "y", &a->in.x);
}

m2rnn_status m2rnn_mlp_check_backward(const m2rnn_mlp_backward_args *a)
{
    if (!a) return m2rnn_set_error(M2RNN_ERR_NULL, "mlp_backward: NULL argument struct");
    int64_t R, d, h;
    m2rnn_status st = check_mlp_inputs(&a->in, &R, &d, &h);
    if (st) return st;
    const struct { const m2rnn_tensor *t, *like; const char *name; } req[] = {
        {&a->dy, &a->in.x, "dy"}, {&a->dx, &a->in.x, "dx"}, {&a->dW_gate, &a->in.W_gate, "dW_gate"},
        {&a->dW_up, &a->in.W_up, "dW_up"}, {&a->dW_down, &a->in.W_down, "dW_down"},
    };
    for (int i = 0; i < 5; i++)
        if ((st = lu_required(req[i].t, req[i].name)) || (st = lu_same_shape(req[i].t, req[i].name, req[i].like)))
            return st;
    return M2RNN_OK;
}

/* ---- MLP: forward and backward ----------------------------------------------------------- */

/* The widened inputs and the hidden activations Hg, Hu (R×h). */
typedef struct {
    int64_t R, d, h;
    double *x, *Wg, *Wu, *Wd, *Hg, *Hu;
} mlp_state;

static void mlp_free(mlp_state *s)
{
    double *all[] = {s->x, s->Wg, s->Wu, s->Wd, s->Hg, s->Hu};
    lu_free_all(all, 6);
}

static m2rnn_status mlp_hidden(mlp_state *s, const m2rnn_mlp_inputs *in)
{
    check_mlp_inputs(in, &s->R, &s->d, &s->h);
    s->x = lu_widen(&in->x);
    s->Wg = lu_widen(&in->W_gate);
    s->Wu = lu_widen(&in->W_up);
    s->Wd = lu_widen(&in->W_down);
    s->Hg = lu_alloc(s->R * s->h);
    s->Hu = lu_alloc(s->R * s->h);
    if (!s->x || !s->Wg || !s->Wu || !s->Wd || !s->Hg || !s->Hu) {
        mlp_free(s);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "mlp: cannot allocate buffers");
    }
    lu_gemm(false, true, s->R, s->h, s->d, s->x, s->Wg, 0.0, s->Hg); /* Hg = X W_gateᵀ */
    lu_gemm(false, true, s->R, s->h, s->d, s->x, s->Wu, 0.0, s->Hu); /* Hu = X W_upᵀ */
    return M2RNN_OK;
}

m2rnn_status m2rnn_mlp_forward_ref(const m2rnn_mlp_forward_args *args)
{
    m2rnn_status st = m2rnn_mlp_check_forward(args);
    if (st) return st;
    mlp_state s = {0};
    if ((st = mlp_hidden(&s, &args->in))) return st;
    double *A = lu_alloc(s.R * s.h), *y = lu_alloc(s.R * s.d);
    if (!A || !y) {
        free(A); free(y); mlp_free(&s);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "mlp_forward: cannot allocate buffers");
    }
    for (int64_t e = 0; e < s.R * s.h; e++) A[e] = lu_silu(s.Hg[e]) * s.Hu[e];
    lu_gemm(false, true, s.R, s.d, s.h, A, s.Wd, 0.0, y); /* Y = A W_downᵀ */
    m2rnn_tensor yt = args->y;
    m2rnn_tensor_from_f64(&yt, y);
    free(A); free(y); mlp_free(&s);
    return M2RNN_OK;
}

m2rnn_status m2rnn_mlp_backward_ref(const m2rnn_mlp_backward_args *args)
{
    m2rnn_status st = m2rnn_mlp_check_backward(args);
    if (st) return st;
    mlp_state s = {0};
    if ((st = mlp_hidden(&s, &args->in))) return st;
    const int64_t R = s.R, d = s.d, h = s.h;
    double *dy = lu_widen(&args->dy), *A = lu_alloc(R * h), *dA = lu_alloc(R * h);
    double *dx = lu_alloc(R * d), *dWg = lu_alloc(h * d), *dWu = lu_alloc(h * d), *dWd = lu_alloc(d * h);
    double *all[] = {dy, A, dA, dx, dWg, dWu, dWd};
    if (!dy || !A || !dA || !dx || !dWg || !dWu || !dWd) {
        lu_free_all(all, 7); mlp_free(&s);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "mlp_backward: cannot allocate buffers");
    }
    for (int64_t e = 0; e < R * h; e++) A[e] = lu_silu(s.Hg[e]) * s.Hu[e];
    lu_gemm(false, false, R, h, d, dy, s.Wd, 0.0, dA); /* dA = dY W_down */
    lu_gemm(true, false, d, h, R, dy, A, 0.0, dWd);    /* dW_down = dYᵀ A */
    /* Hg <- dHg, Hu <- dHu (in place: each element reads only its own Hg, Hu) */
    for (int64_t e = 0; e < R * h; e++) {
        double g = s.Hg[e], u = s.Hu[e];
        s.Hg[e] = dA[e] * u * lu_silu_grad(g);
        s.Hu[e] = dA[e] * lu_silu(g);
    }
    lu_gemm(false, false, R, d, h, s.Hg, s.Wg, 0.0, dx); /* dX = dHg W_gate */
    lu_gemm(false, false, R, d, h, s.Hu, s.Wu, 1.0, dx); /*    + dHu W_up   */
    lu_gemm(true, false, h, d, R, s.Hg, s.x, 0.0, dWg);  /* dW_gate = dHgᵀ X */
    lu_gemm(true, false, h, d, R, s.Hu, s.x, 0.0, dWu);  /* dW_up = dHuᵀ X */
    m2rnn_tensor dxt = args->dx, dWgt = args->dW_gate, dWut = args->dW_up, dWdt = args->dW_down;
    m2rnn_tensor_from_f64(&dxt, dx);
    m2rnn_tensor_from_f64(&dWgt, dWg);
    m2rnn_tensor_from_f64(&dWut, dWu);
    m2rnn_tensor_from_f64(&dWdt, dWd);
    lu_free_all(all, 7); mlp_free(&s);
    return M2RNN_OK;
}
