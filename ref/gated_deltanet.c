/*
 * The Gated DeltaNet recurrence (SPEC.md §5, FLA's convention) — reference, forward and backward.
 *
 * Shapes: q, k (T,H,K), v, o (T,H,V), g, beta (T,H), h0, ht (B,H,K,V); T = B·S dense or packed.
 *
 * Forward per lane (sequence b, head h), S (K×V) = h0[b,h] or 0, t over the sequence:
 *   k̂ = k r_k,  q̂ = scale · q r_q,   r_x = 1/sqrt(‖x‖² + 1e-6)     (l2norm_qk; else r_x = 1)
 *   S' = e^{g_t} S_{t-1}
 *   p  = S'ᵀ k̂                     (V)
 *   u  = β_t (v_t - p)             (V)
 *   S_t = S' + k̂ uᵀ
 *   o_t = S_tᵀ q̂
 *
 * Backward, carrying G = dL/dS_t (= dht, or 0, at the end), t from last to first:
 *   G    += q̂ o'ᵀ                  (o' = dout_t: o_t reads S_t)
 *   dq̂   = S_t o'
 *   du   = Gᵀ k̂,   dk̂ = G u         (S_t = S' + k̂ uᵀ; G is also dL/dS' through this term)
 *   dβ_t = du · (v - p),   dv_t = β du,   dp = -β du
 *   dS'  = G + k̂ dpᵀ,      dk̂ += S' dp                   (p = S'ᵀ k̂)
 *   dg_t = Σ dS' ⊙ S'                                     (S' = e^g S_{t-1})
 *   G    = e^{g_t} dS'
 *   through the normalisation:  dk = r_k (dk̂ - k̃ (k̃·dk̂)),  k̃ = k r_k;
 *                               dq = r_q (dq̃ - q̃ (q̃·dq̃)),  dq̃ = scale·dq̂, q̃ = q r_q
 *   dh0 = G after the first token.
 *
 * Lanes are independent (OpenMP over them), each sequential in double: no cross-thread sums.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layer_util.h"
#include "m2rnn/gated_deltanet.h"

#define GDN_L2_EPS 1e-6

typedef struct {
    lu_tokens L;
    int64_t H, K, V;
} gdn_dims;

/* ---- checks ------------------------------------------------------------------------------ */

static m2rnn_status check_inputs(const m2rnn_gdn_inputs *in, gdn_dims *d)
{
    m2rnn_status st;
    static const char *names[5] = {"q", "k", "v", "g", "beta"};
    const m2rnn_tensor *req[5] = {&in->q, &in->k, &in->v, &in->g, &in->beta};
    for (int i = 0; i < 5; i++)
        if ((st = lu_required(req[i], names[i]))) return st;
    /* g is (B,S,H) or (T,H): exactly the token layout of a per-token tensor with H channels */
    if ((st = lu_token_layout(&in->g, "g", &in->cu_seqlens, &d->L))) return st;
    d->H = d->L.channels;
    if (d->H < 1) return m2rnn_set_error(M2RNN_ERR_SHAPE, "g: head count must be >= 1");
    int rank = d->L.varlen ? 3 : 4;
    if ((st = lu_rank_at_least(&in->q, "q", rank)) || (st = lu_rank_at_least(&in->v, "v", rank))) return st;
    d->K = in->q.shape[in->q.rank - 1];
    d->V = in->v.shape[in->v.rank - 1];
    if (d->K < 1 || d->V < 1) return m2rnn_set_error(M2RNN_ERR_SHAPE, "q, v: head dims must be >= 1");
    int64_t sq[4], sv[4]; /* the token axes, then (H, K) or (H, V) */
    int r = 0;
    if (d->L.varlen) sq[r++] = d->L.tokens;
    else { sq[r++] = d->L.batch; sq[r++] = d->L.seqlen; }
    memcpy(sv, sq, sizeof sq);
    sq[r] = sv[r] = d->H;
    sq[r + 1] = d->K;
    sv[r + 1] = d->V;
    if ((st = lu_shape(&in->q, "q", r + 2, sq)) || (st = lu_shape(&in->k, "k", r + 2, sq)) ||
        (st = lu_shape(&in->v, "v", r + 2, sv)) || (st = lu_same_shape(&in->beta, "beta", &in->g)))
        return st;
    int64_t sh[4] = {d->L.batch, d->H, d->K, d->V};
    if ((st = lu_optional(&in->h0, "h0", 4, sh))) return st;
    if (!isfinite(in->scale)) return m2rnn_set_error(M2RNN_ERR_ARG, "scale: must be finite (0 means 1/sqrt(K))");
    return M2RNN_OK;
}

m2rnn_status m2rnn_gdn_check_forward(const m2rnn_gdn_forward_args *a)
{
    if (!a) return m2rnn_set_error(M2RNN_ERR_NULL, "gdn_forward: NULL argument struct");
    gdn_dims d;
    m2rnn_status st = check_inputs(&a->in, &d);
    if (st) return st;
    int64_t sh[4] = {d.L.batch, d.H, d.K, d.V};
    if ((st = lu_required(&a->o, "o")) || (st = lu_same_shape(&a->o, "o", &a->in.v))) return st;
    return lu_optional(&a->ht, "ht", 4, sh);
}

m2rnn_status m2rnn_gdn_check_backward(const m2rnn_gdn_backward_args *a)
{
    if (!a) return m2rnn_set_error(M2RNN_ERR_NULL, "gdn_backward: NULL argument struct");
    gdn_dims d;
    m2rnn_status st = check_inputs(&a->in, &d);
    if (st) return st;
    int64_t sh[4] = {d.L.batch, d.H, d.K, d.V};
    if ((st = lu_required(&a->dout, "dout")) || (st = lu_same_shape(&a->dout, "dout", &a->in.v))) return st;
    if ((st = lu_optional(&a->dht, "dht", 4, sh))) return st;
    const lu_grad grads[] = {
        {&a->dq, &a->in.q, "dq"}, {&a->dk, &a->in.k, "dk"}, {&a->dv, &a->in.v, "dv"},
        {&a->dg, &a->in.g, "dg"}, {&a->dbeta, &a->in.beta, "dbeta"},
    };
    if ((st = lu_grads(grads, sizeof grads / sizeof grads[0]))) return st;
    return lu_optional(&a->dh0, "dh0", 4, sh);
}

/* ---- shared pieces ----------------------------------------------------------------------- */

typedef struct {
    gdn_dims d;
    double *q, *k, *v, *g, *beta, *h0;
    double scale;
    bool l2;
} problem;

static void problem_free(problem *p)
{
    double *all[] = {p->q, p->k, p->v, p->g, p->beta, p->h0};
    lu_free_all(all, 6);
}

static m2rnn_status problem_init(problem *p, const m2rnn_gdn_inputs *in)
{
    memset(p, 0, sizeof *p);
    check_inputs(in, &p->d);
    p->q = lu_widen(&in->q);
    p->k = lu_widen(&in->k);
    p->v = lu_widen(&in->v);
    p->g = lu_widen(&in->g);
    p->beta = lu_widen(&in->beta);
    bool has_h0 = m2rnn_tensor_present(&in->h0);
    if (has_h0) p->h0 = lu_widen(&in->h0);
    p->scale = in->scale != 0.0 ? in->scale : 1.0 / sqrt((double)p->d.K);
    p->l2 = in->l2norm_qk;
    if (!p->q || !p->k || !p->v || !p->g || !p->beta || (has_h0 && !p->h0)) {
        problem_free(p);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "gdn: cannot allocate the widened inputs");
    }
    return M2RNN_OK;
}

/* x̃ = x r with r = 1/sqrt(‖x‖² + eps) (or r = 1 without normalisation); returns r. */
static double normalise(const double *x, int64_t n, bool l2, double *out)
{
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += x[i] * x[i];
    double r = l2 ? 1.0 / sqrt(ss + GDN_L2_EPS) : 1.0;
    for (int64_t i = 0; i < n; i++) out[i] = x[i] * r;
    return r;
}

/* dx = r (dx̃ - x̃ (x̃·dx̃)) with normalisation, dx = dx̃ without. */
static void normalise_backward(const double *xt, double r, const double *dxt, int64_t n, bool l2, double *dx)
{
    double dot = 0.0;
    for (int64_t i = 0; i < n; i++) dot += xt[i] * dxt[i];
    for (int64_t i = 0; i < n; i++) dx[i] = l2 ? r * (dxt[i] - xt[i] * dot) : dxt[i];
}

/* One step forward: S <- e^g S; p = Sᵀ k̂; u = β (v - p); S <- S + k̂ uᵀ. */
static void step(int64_t K, int64_t V, double *S, const double *kh, const double *v, double g, double beta, double *p,
                 double *u)
{
    double decay = exp(g);
    for (int64_t e = 0; e < K * V; e++) S[e] *= decay;
    for (int64_t j = 0; j < V; j++) p[j] = 0.0;
    for (int64_t i = 0; i < K; i++)
        for (int64_t j = 0; j < V; j++) p[j] += S[i * V + j] * kh[i];
    for (int64_t j = 0; j < V; j++) u[j] = beta * (v[j] - p[j]);
    for (int64_t i = 0; i < K; i++)
        for (int64_t j = 0; j < V; j++) S[i * V + j] += kh[i] * u[j];
}

/* ---- forward ----------------------------------------------------------------------------- */

m2rnn_status m2rnn_gdn_forward_ref(const m2rnn_gdn_forward_args *args)
{
    m2rnn_status st = m2rnn_gdn_check_forward(args);
    if (st) return st;
    problem p;
    if ((st = problem_init(&p, &args->in))) return st;
    const int64_t H = p.d.H, K = p.d.K, V = p.d.V, B = p.d.L.batch, T = p.d.L.tokens;
    double *o = lu_alloc(T * H * V), *ht = lu_alloc(B * H * K * V);
    if (!o || !ht) {
        free(o); free(ht); problem_free(&p);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "gdn_forward: cannot allocate buffers");
    }
    int failed = 0;
#pragma omp parallel reduction(|| : failed)
    {
        double *kh = lu_alloc(K), *qh = lu_alloc(K), *pv = lu_alloc(V), *u = lu_alloc(V);
        failed = !kh || !qh || !pv || !u;
#pragma omp for schedule(dynamic)
        for (int64_t lane = 0; lane < B * H; lane++) {
            if (failed) continue;
            int64_t b = lane / H, h = lane % H, start, end;
            double *S = ht + lane * K * V;
            if (p.h0) memcpy(S, p.h0 + lane * K * V, (size_t)(K * V) * sizeof(double));
            else memset(S, 0, (size_t)(K * V) * sizeof(double));
            lu_sequence(&p.d.L, b, &start, &end);
            for (int64_t t = start; t < end; t++) {
                normalise(p.k + (t * H + h) * K, K, p.l2, kh);
                normalise(p.q + (t * H + h) * K, K, p.l2, qh);
                step(K, V, S, kh, p.v + (t * H + h) * V, p.g[t * H + h], p.beta[t * H + h], pv, u);
                for (int64_t j = 0; j < V; j++) { /* o = S_tᵀ q̂ */
                    double acc = 0.0;
                    for (int64_t i = 0; i < K; i++) acc += S[i * V + j] * qh[i];
                    o[(t * H + h) * V + j] = p.scale * acc;
                }
            }
        }
        free(kh); free(qh); free(pv); free(u);
    }
    if (!failed) {
        m2rnn_tensor ot = args->o, htt = args->ht;
        m2rnn_tensor_from_f64(&ot, o);
        if (m2rnn_tensor_present(&htt)) m2rnn_tensor_from_f64(&htt, ht);
    }
    free(o); free(ht); problem_free(&p);
    return failed ? m2rnn_set_error(M2RNN_ERR_NOMEM, "gdn_forward: cannot allocate a lane's buffers") : M2RNN_OK;
}

/* ---- backward ---------------------------------------------------------------------------- */

typedef struct {
    double *Ss;          /* S_0 .. S_L (L+1)·K·V */
    double *G, *dS;      /* K·V */
    double *kh, *qh, *pv, *u, *dq, *dk, *du, *dp, *dkh; /* K or V */
} scratch;

m2rnn_status m2rnn_gdn_backward_ref(const m2rnn_gdn_backward_args *args)
{
    m2rnn_status st = m2rnn_gdn_check_backward(args);
    if (st) return st;
    problem p;
    if ((st = problem_init(&p, &args->in))) return st;
    const int64_t H = p.d.H, K = p.d.K, V = p.d.V, B = p.d.L.batch, T = p.d.L.tokens, KV = K * V;
    double *dout = lu_widen(&args->dout);
    double *dht = m2rnn_tensor_present(&args->dht) ? lu_widen(&args->dht) : NULL;
    double *dq = lu_alloc(T * H * K), *dk = lu_alloc(T * H * K), *dv = lu_alloc(T * H * V);
    double *dg = lu_alloc(T * H), *dbeta = lu_alloc(T * H), *dh0 = lu_alloc(B * H * KV);
    double *all[] = {dout, dht, dq, dk, dv, dg, dbeta, dh0};
    if (!dout || (m2rnn_tensor_present(&args->dht) && !dht) || !dq || !dk || !dv || !dg || !dbeta || !dh0) {
        lu_free_all(all, 8); problem_free(&p);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "gdn_backward: cannot allocate buffers");
    }
    int64_t longest = 0;
    for (int64_t b = 0; b < B; b++) {
        int64_t s, e;
        lu_sequence(&p.d.L, b, &s, &e);
        if (e - s > longest) longest = e - s;
    }
    int failed = 0;
#pragma omp parallel reduction(|| : failed)
    {
        scratch s = {.Ss = lu_alloc((longest + 1) * KV), .G = lu_alloc(KV), .dS = lu_alloc(KV), .kh = lu_alloc(K),
                     .qh = lu_alloc(K), .pv = lu_alloc(V), .u = lu_alloc(V), .dq = lu_alloc(K), .dk = lu_alloc(K),
                     .du = lu_alloc(V), .dp = lu_alloc(V), .dkh = lu_alloc(K)};
        double *mine[] = {s.Ss, s.G, s.dS, s.kh, s.qh, s.pv, s.u, s.dq, s.dk, s.du, s.dp, s.dkh};
        for (int i = 0; i < 12; i++) failed = failed || !mine[i];
#pragma omp for schedule(dynamic)
        for (int64_t lane = 0; lane < B * H; lane++) {
            if (failed) continue;
            int64_t b = lane / H, h = lane % H, start, end;
            lu_sequence(&p.d.L, b, &start, &end);
            const int64_t L = end - start;
            /* replay the forward, keeping S_0 .. S_L */
            if (p.h0) memcpy(s.Ss, p.h0 + lane * KV, (size_t)KV * sizeof(double));
            else memset(s.Ss, 0, (size_t)KV * sizeof(double));
            for (int64_t t = 0; t < L; t++) {
                int64_t tok = start + t;
                memcpy(s.Ss + (t + 1) * KV, s.Ss + t * KV, (size_t)KV * sizeof(double));
                normalise(p.k + (tok * H + h) * K, K, p.l2, s.kh);
                step(K, V, s.Ss + (t + 1) * KV, s.kh, p.v + (tok * H + h) * V, p.g[tok * H + h], p.beta[tok * H + h], s.pv, s.u);
            }
            if (dht) memcpy(s.G, dht + lane * KV, (size_t)KV * sizeof(double));
            else memset(s.G, 0, (size_t)KV * sizeof(double));
            for (int64_t t = L - 1; t >= 0; t--) {
                const int64_t tok = start + t, th = tok * H + h;
                const double *Sprev = s.Ss + t * KV, *Scur = s.Ss + (t + 1) * KV, *v = p.v + th * V, *o1 = dout + th * V;
                const double decay = exp(p.g[th]), beta = p.beta[th];
                double rk = normalise(p.k + th * K, K, p.l2, s.kh);
                double rq = normalise(p.q + th * K, K, p.l2, s.qh); /* q̃ (unscaled) */
                /* recompute p = S'ᵀ k̂ and u, with S' = e^g S_{t-1} */
                for (int64_t j = 0; j < V; j++) {
                    double acc = 0.0;
                    for (int64_t i = 0; i < K; i++) acc += decay * Sprev[i * V + j] * s.kh[i];
                    s.pv[j] = acc;
                    s.u[j] = beta * (v[j] - acc);
                }
                /* G += q̂ o'ᵀ;  dq̂ = S_t o' */
                for (int64_t i = 0; i < K; i++) {
                    double acc = 0.0;
                    for (int64_t j = 0; j < V; j++) {
                        s.G[i * V + j] += p.scale * s.qh[i] * o1[j];
                        acc += Scur[i * V + j] * o1[j];
                    }
                    s.dq[i] = p.scale * acc; /* dq̃ = scale · dq̂ */
                }
                /* du = Gᵀ k̂;  dk̂ = G u */
                for (int64_t j = 0; j < V; j++) s.du[j] = 0.0;
                for (int64_t i = 0; i < K; i++) {
                    double acc = 0.0;
                    for (int64_t j = 0; j < V; j++) {
                        s.du[j] += s.G[i * V + j] * s.kh[i];
                        acc += s.G[i * V + j] * s.u[j];
                    }
                    s.dkh[i] = acc;
                }
                double db = 0.0;
                for (int64_t j = 0; j < V; j++) {
                    db += s.du[j] * (v[j] - s.pv[j]);
                    dv[th * V + j] = beta * s.du[j];
                    s.dp[j] = -beta * s.du[j];
                }
                dbeta[th] = db;
                /* dS' = G + k̂ dpᵀ;  dk̂ += S' dp;  dg = Σ dS' ⊙ S';  G = e^g dS' */
                double dgt = 0.0;
                for (int64_t i = 0; i < K; i++) {
                    double acc = 0.0;
                    for (int64_t j = 0; j < V; j++) {
                        double Sp = decay * Sprev[i * V + j];
                        double dSp = s.G[i * V + j] + s.kh[i] * s.dp[j];
                        acc += Sp * s.dp[j];
                        dgt += dSp * Sp;
                        s.G[i * V + j] = decay * dSp;
                    }
                    s.dkh[i] += acc;
                }
                dg[th] = dgt;
                normalise_backward(s.kh, rk, s.dkh, K, p.l2, dk + th * K);
                normalise_backward(s.qh, rq, s.dq, K, p.l2, dq + th * K);
            }
            memcpy(dh0 + lane * KV, s.G, (size_t)KV * sizeof(double));
        }
        for (int i = 0; i < 12; i++) free(mine[i]);
    }
    if (!failed) {
        m2rnn_tensor t_dq = args->dq, t_dk = args->dk, t_dv = args->dv, t_dg = args->dg, t_db = args->dbeta, t_dh0 = args->dh0;
        m2rnn_tensor_from_f64(&t_dq, dq);
        m2rnn_tensor_from_f64(&t_dk, dk);
        m2rnn_tensor_from_f64(&t_dv, dv);
        m2rnn_tensor_from_f64(&t_dg, dg);
        m2rnn_tensor_from_f64(&t_db, dbeta);
        if (m2rnn_tensor_present(&t_dh0)) m2rnn_tensor_from_f64(&t_dh0, dh0);
    }
    lu_free_all(all, 8); problem_free(&p);
    return failed ? m2rnn_set_error(M2RNN_ERR_NOMEM, "gdn_backward: cannot allocate a lane's state history") : M2RNN_OK;
}
