/*
 * Depthwise causal conv1d (SPEC.md §4) — reference, forward and backward.
 *
 * Shapes: x, y (B,S,C) or packed (T,C) with cu_seqlens (B+1,); w (C,Kc); bias (C);
 *         state0, state_out (B,C,Kc-1).
 *
 * Per sequence b (rows start..start+L-1) and channel c, the padded input of length Kc-1+L is
 *   xp = [state0[b,c,0..Kc-2] (or zeros) | x[start..start+L-1, c]]
 * and, for t = 0..L-1,
 *   p_t = bias[c] + Σ_{j<Kc} w[c,j] · xp[t+j]          (w[c,Kc-1] meets the current token)
 *   y_t = act(p_t)                                      act = identity or SiLU
 *   state_out[b,c,j] = xp[L+j],  j < Kc-1              (the newest Kc-1 raw inputs)
 *
 * Backward, with dy and dstate_out (zeros when absent):
 *   dp_t = dy_t · act'(p_t)                             (SiLU' = σ(p)(1 + p(1 - σ(p))))
 *   dxp[t+j] += dp_t · w[c,j],  dxp[L+j] += dstate_out[b,c,j]
 *   dw[c,j]  += Σ_t dp_t · xp[t+j],  dbias[c] += Σ_t dp_t      (summed over b and t)
 *   dx[start+t, c] = dxp[Kc-1+t],  dstate0[b,c,j] = dxp[j]
 *
 * Channels are independent: one thread per channel, sequences and tokens in order inside it, so
 * the sums in dw and dbias have a fixed order whatever the thread count.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "layer_util.h"
#include "m2rnn/conv1d.h"

/* ---- checks ------------------------------------------------------------------------------ */

static m2rnn_status check_inputs(const m2rnn_conv1d_inputs *in, m2rnn_conv1d_dims *d, lu_tokens *L)
{
    m2rnn_status st;
    if ((st = lu_required(&in->x, "x")) || (st = lu_required(&in->w, "w"))) return st;
    if ((st = lu_token_layout(&in->x, "x", &in->cu_seqlens, L))) return st;
    if ((st = lu_rank_at_least(&in->w, "w", 2))) return st;
    if (in->w.rank != 2 || in->w.shape[0] != L->channels || in->w.shape[1] < 1) {
        char buf[128];
        return m2rnn_set_error(M2RNN_ERR_SHAPE, "w: expected shape (C,Kc) with C = %lld and Kc >= 1, got %s",
                               (long long)L->channels, m2rnn_shape_string(&in->w, buf, sizeof buf));
    }
    if (in->activation != M2RNN_ACT_NONE && in->activation != M2RNN_ACT_SILU)
        return m2rnn_set_error(M2RNN_ERR_ARG, "activation: %d is not NONE or SILU", (int)in->activation);
    *d = (m2rnn_conv1d_dims){.batch = L->batch, .seqlen = L->seqlen, .tokens = L->tokens, .channels = L->channels,
                             .kernel = in->w.shape[1], .varlen = L->varlen};
    int64_t cshape[1] = {d->channels}, sshape[3] = {d->batch, d->channels, d->kernel - 1};
    if ((st = lu_optional(&in->bias, "bias", 1, cshape))) return st;
    if ((st = lu_optional(&in->state0, "state0", 3, sshape))) return st;
    return M2RNN_OK;
}

m2rnn_status m2rnn_conv1d_check_forward(const m2rnn_conv1d_forward_args *a, m2rnn_conv1d_dims *dims)
{
    if (!a) return m2rnn_set_error(M2RNN_ERR_NULL, "conv1d_forward: NULL argument struct");
    m2rnn_conv1d_dims d;
    lu_tokens L;
    m2rnn_status st = check_inputs(&a->in, &d, &L);
    if (st) return st;
    if ((st = lu_required(&a->y, "y")) || (st = lu_same_shape(&a->y, "y", &a->in.x))) return st;
    int64_t sshape[3] = {d.batch, d.channels, d.kernel - 1};
    if ((st = lu_optional(&a->state_out, "state_out", 3, sshape))) return st;
    if (dims) *dims = d;
    return M2RNN_OK;
}

m2rnn_status m2rnn_conv1d_check_backward(const m2rnn_conv1d_backward_args *a, m2rnn_conv1d_dims *dims)
{
    if (!a) return m2rnn_set_error(M2RNN_ERR_NULL, "conv1d_backward: NULL argument struct");
    m2rnn_conv1d_dims d;
    lu_tokens L;
    m2rnn_status st = check_inputs(&a->in, &d, &L);
    if (st) return st;
    int64_t cshape[1] = {d.channels}, sshape[3] = {d.batch, d.channels, d.kernel - 1};
    if ((st = lu_required(&a->dy, "dy")) || (st = lu_same_shape(&a->dy, "dy", &a->in.x))) return st;
    if ((st = lu_optional(&a->dstate_out, "dstate_out", 3, sshape))) return st;
    if ((st = lu_required(&a->dx, "dx")) || (st = lu_same_shape(&a->dx, "dx", &a->in.x))) return st;
    if ((st = lu_required(&a->dw, "dw")) || (st = lu_same_shape(&a->dw, "dw", &a->in.w))) return st;
    if ((st = lu_optional(&a->dbias, "dbias", 1, cshape))) return st;
    if ((st = lu_optional(&a->dstate0, "dstate0", 3, sshape))) return st;
    if (dims) *dims = d;
    return M2RNN_OK;
}

/* ---- shared pieces ----------------------------------------------------------------------- */

/* The inputs widened to double. */
typedef struct {
    m2rnn_conv1d_dims d;
    lu_tokens L;
    double *x, *w, *bias, *state0; /* bias, state0 NULL when absent */
    int64_t longest;               /* the longest sequence */
} problem;

static void problem_free(problem *p)
{
    double *all[] = {p->x, p->w, p->bias, p->state0};
    lu_free_all(all, 4);
}

static m2rnn_status problem_init(problem *p, const m2rnn_conv1d_inputs *in)
{
    memset(p, 0, sizeof *p);
    lu_token_layout(&in->x, "x", &in->cu_seqlens, &p->L); /* already validated */
    p->d = (m2rnn_conv1d_dims){.batch = p->L.batch, .seqlen = p->L.seqlen, .tokens = p->L.tokens,
                               .channels = p->L.channels, .kernel = in->w.shape[1], .varlen = p->L.varlen};
    p->x = lu_widen(&in->x);
    p->w = lu_widen(&in->w);
    bool has_bias = m2rnn_tensor_present(&in->bias), has_state = m2rnn_tensor_present(&in->state0);
    if (has_bias) p->bias = lu_widen(&in->bias);
    if (has_state) p->state0 = lu_widen(&in->state0);
    if (!p->x || !p->w || (has_bias && !p->bias) || (has_state && !p->state0)) {
        problem_free(p);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "conv1d: cannot allocate the widened inputs");
    }
    for (int64_t b = 0; b < p->d.batch; b++) {
        int64_t start, end;
        lu_sequence(&p->L, b, &start, &end);
        if (end - start > p->longest) p->longest = end - start;
    }
    return M2RNN_OK;
}

/* xp = [state0[b,c,:] or zeros | x[start..end), c]], length Kc-1+L. */
static void padded_input(const problem *p, int64_t b, int64_t c, int64_t start, int64_t end, double *xp)
{
    const int64_t K1 = p->d.kernel - 1, C = p->d.channels;
    for (int64_t j = 0; j < K1; j++) xp[j] = p->state0 ? p->state0[(b * C + c) * K1 + j] : 0.0;
    for (int64_t t = 0; t < end - start; t++) xp[K1 + t] = p->x[(start + t) * C + c];
}

/* p_t = bias + Σ_j w[j] xp[t+j] */
static double preactivation(const problem *p, int64_t c, const double *xp, int64_t t)
{
    const int64_t Kc = p->d.kernel;
    const double *w = p->w + c * Kc;
    double acc = p->bias ? p->bias[c] : 0.0;
    for (int64_t j = 0; j < Kc; j++) acc += w[j] * xp[t + j];
    return acc;
}

/* ---- forward ----------------------------------------------------------------------------- */

m2rnn_status m2rnn_conv1d_forward_ref(const m2rnn_conv1d_forward_args *args)
{
    m2rnn_status st = m2rnn_conv1d_check_forward(args, NULL);
    if (st) return st;
    problem p;
    if ((st = problem_init(&p, &args->in))) return st;
    const int64_t C = p.d.channels, K1 = p.d.kernel - 1, B = p.d.batch;
    const bool silu = args->in.activation == M2RNN_ACT_SILU;
    double *y = lu_alloc(p.d.tokens * C), *state = lu_alloc(B * C * K1);
    int failed = 0;
    if (!y || !state) {
        free(y);
        free(state);
        problem_free(&p);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "conv1d_forward: cannot allocate buffers");
    }

#pragma omp parallel reduction(|| : failed)
    {
        double *xp = lu_alloc(K1 + p.longest);
        failed = !xp;
#pragma omp for schedule(static)
        for (int64_t c = 0; c < C; c++) {
            if (failed) continue;
            for (int64_t b = 0; b < B; b++) {
                int64_t start, end;
                lu_sequence(&p.L, b, &start, &end);
                padded_input(&p, b, c, start, end, xp);
                for (int64_t t = 0; t < end - start; t++) {
                    double pre = preactivation(&p, c, xp, t);
                    y[(start + t) * C + c] = silu ? lu_silu(pre) : pre;
                }
                for (int64_t j = 0; j < K1; j++) state[(b * C + c) * K1 + j] = xp[end - start + j];
            }
        }
        free(xp);
    }
    if (!failed) {
        m2rnn_tensor yt = args->y, so = args->state_out;
        m2rnn_tensor_from_f64(&yt, y);
        if (m2rnn_tensor_present(&so)) m2rnn_tensor_from_f64(&so, state);
    }
    free(y);
    free(state);
    problem_free(&p);
    return failed ? m2rnn_set_error(M2RNN_ERR_NOMEM, "conv1d_forward: cannot allocate buffers") : M2RNN_OK;
}

/* ---- backward ---------------------------------------------------------------------------- */

m2rnn_status m2rnn_conv1d_backward_ref(const m2rnn_conv1d_backward_args *args)
{
    m2rnn_status st = m2rnn_conv1d_check_backward(args, NULL);
    if (st) return st;
    problem p;
    if ((st = problem_init(&p, &args->in))) return st;
    const int64_t C = p.d.channels, Kc = p.d.kernel, K1 = Kc - 1, B = p.d.batch, T = p.d.tokens;
    const bool silu = args->in.activation == M2RNN_ACT_SILU;
    double *dy = lu_widen(&args->dy);
    double *dso = m2rnn_tensor_present(&args->dstate_out) ? lu_widen(&args->dstate_out) : NULL;
    double *dx = lu_alloc(T * C), *dw = lu_alloc(C * Kc), *dbias = lu_alloc(C), *ds0 = lu_alloc(B * C * K1);
    double *all[] = {dy, dso, dx, dw, dbias, ds0};
    int failed = 0;
    if (!dy || !dx || !dw || !dbias || !ds0 || (m2rnn_tensor_present(&args->dstate_out) && !dso)) {
        lu_free_all(all, 6);
        problem_free(&p);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "conv1d_backward: cannot allocate buffers");
    }

#pragma omp parallel reduction(|| : failed)
    {
        double *xp = lu_alloc(K1 + p.longest), *dxp = lu_alloc(K1 + p.longest);
        failed = !xp || !dxp;
#pragma omp for schedule(static)
        for (int64_t c = 0; c < C; c++) {
            if (failed) continue;
            const double *w = p.w + c * Kc;
            double *dwc = dw + c * Kc, db = 0.0;
            for (int64_t j = 0; j < Kc; j++) dwc[j] = 0.0;
            for (int64_t b = 0; b < B; b++) {
                int64_t start, end;
                lu_sequence(&p.L, b, &start, &end);
                const int64_t L = end - start;
                padded_input(&p, b, c, start, end, xp);
                for (int64_t i = 0; i < K1 + L; i++) dxp[i] = 0.0;
                for (int64_t j = 0; j < K1; j++) dxp[L + j] = dso ? dso[(b * C + c) * K1 + j] : 0.0;
                for (int64_t t = 0; t < L; t++) {
                    double g = dy[(start + t) * C + c];
                    double dp = silu ? g * lu_silu_grad(preactivation(&p, c, xp, t)) : g;
                    db += dp;
                    for (int64_t j = 0; j < Kc; j++) {
                        dwc[j] += dp * xp[t + j];
                        dxp[t + j] += dp * w[j];
                    }
                }
                for (int64_t t = 0; t < L; t++) dx[(start + t) * C + c] = dxp[K1 + t];
                for (int64_t j = 0; j < K1; j++) ds0[(b * C + c) * K1 + j] = dxp[j];
            }
            dbias[c] = db;
        }
        free(xp);
        free(dxp);
    }
    if (!failed) {
        m2rnn_tensor dxt = args->dx, dwt = args->dw, dbt = args->dbias, dst = args->dstate0;
        m2rnn_tensor_from_f64(&dxt, dx);
        m2rnn_tensor_from_f64(&dwt, dw);
        if (m2rnn_tensor_present(&dbt)) m2rnn_tensor_from_f64(&dbt, dbias);
        if (m2rnn_tensor_present(&dst)) m2rnn_tensor_from_f64(&dst, ds0);
    }
    lu_free_all(all, 6);
    problem_free(&p);
    return failed ? m2rnn_set_error(M2RNN_ERR_NOMEM, "conv1d_backward: cannot allocate buffers") : M2RNN_OK;
}
