/*
 * The M²RNN mixer block (SPEC.md §3): the forward against an independent, loop-by-loop
 * evaluation of SPEC.md §3 (with §1, §2, §4 inlined), finite differences for the input and every
 * parameter (and h0, conv_state0), token-by-token and chunked runs (forward and backward chained
 * through the states) == the whole sequence, varlen == separate runs, the init routine, dtypes,
 * bad input.
 *
 * Finite differences: L = Σ o·dout + Σ ht·dht + Σ conv_state_out·dconv_state_out, ε = 1e-6 in
 * double. The block chains ~8 smooth maps on O(1) values (contractive W, f in (0,1), RMS of y3
 * kept O(1) by the random weights), so third derivatives stay below ~1e3: truncation
 * ε²/6·1e3 ≈ 2e-10; rounding ≈ 1e-16·|L|/ε ≈ 1e-9 for |L| ≈ 10. |fd - grad| <= 1e-6·(1 + |grad|)
 * leaves >= 2 orders of margin; wiring slips (v before the conv in the skip, f through the conv,
 * split order, per-head norm) change gradients by O(1) and also fail the forward comparison.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer_testutil.h"

typedef struct {
    const char *name;
    int64_t B, S, d, N, nq, nk, nf, nw, K, V, Kc;
    bool h0, cs0, dht, dcs;
    int varlen;
    int64_t seqlens[6];
} blk_case;

typedef struct {
    blk_case c;
    m2rnn_block_dims m;
    int64_t cu[7];
    m2rnn_block_forward_args fwd;
    m2rnn_block_backward_args bwd;
} blk;

static int64_t or_n(int64_t x, int64_t n) { return x ? x : n; }

/* Parameters, inputs and outputs of a case, all F64 and random (or zero for outputs). */
static void blk_init(blk *p, const blk_case *c, uint64_t seed)
{
    memset(p, 0, sizeof *p);
    p->c = *c;
    test_rng r = {seed * 0x9e3779b97f4a7c15ull + 1};
    const int64_t N = c->N, nq = or_n(c->nq, N), nk = or_n(c->nk, N), nf = or_n(c->nf, N), nw = or_n(c->nw, N);
    const int64_t K = c->K, V = c->V, C = (nq + nk) * K + N * V, P = C + nf + N * V;
    m2rnn_block_inputs *in = &p->fwd.in;
    in->cfg = (m2rnn_block_config){.heads = N, .q_heads = c->nq, .k_heads = c->nk, .f_heads = c->nf, .w_heads = c->nw,
                                   .key_dim = K, .value_dim = V, .eps = 1e-5};
    if (c->varlen) {
        for (int64_t b = 0; b < c->B; b++) p->cu[b + 1] = p->cu[b] + c->seqlens[b];
        in->cu_seqlens = m2rnn_tensor_of(p->cu, M2RNN_I64, 1, c->B + 1);
        in->x = lt_tensor(2, p->cu[c->B], c->d);
    } else {
        in->x = lt_tensor(3, c->B, c->S, c->d);
    }
    in->W_in = lt_tensor(2, P, c->d);
    in->conv_w = lt_tensor(2, C, c->Kc);
    in->A_log = lt_tensor(1, nf);
    in->dt_bias = lt_tensor(1, nf);
    in->W = lt_tensor(3, nw, V, V);
    in->D = lt_tensor(2, N, V);
    in->norm_w = lt_tensor(1, N * V);
    in->W_o = lt_tensor(2, c->d, N * V);
    lt_fill(&in->x, &r, -1, 1);
    lt_fill(&in->W_in, &r, -0.6, 0.6);
    lt_fill(&in->conv_w, &r, -0.8, 0.8);
    lt_fill(&in->A_log, &r, -1.5, 0.5);
    lt_fill(&in->dt_bias, &r, -1, 1);
    lt_fill(&in->W, &r, -0.9 / (double)V, 0.9 / (double)V);
    lt_fill(&in->D, &r, 0.5, 1.5);
    lt_fill(&in->norm_w, &r, 0.5, 1.5);
    lt_fill(&in->W_o, &r, -0.6, 0.6);
    if (c->h0) { in->h0 = lt_tensor(4, c->B, N, K, V); lt_fill(&in->h0, &r, -1, 1); }
    if (c->cs0) { in->conv_state0 = lt_tensor(3, c->B, C, c->Kc - 1); lt_fill(&in->conv_state0, &r, -1, 1); }
    p->fwd.o = tensor_like(&in->x, M2RNN_F64);
    p->fwd.ht = lt_tensor(4, c->B, N, K, V);
    p->fwd.conv_state_out = lt_tensor(3, c->B, C, c->Kc - 1);
    m2rnn_block_backward_args *bw = &p->bwd;
    bw->in = *in;
    bw->dout = tensor_like(&in->x, M2RNN_F64);
    lt_fill(&bw->dout, &r, -1, 1);
    if (c->dht) { bw->dht = lt_tensor(4, c->B, N, K, V); lt_fill(&bw->dht, &r, -1, 1); }
    if (c->dcs) { bw->dconv_state_out = lt_tensor(3, c->B, C, c->Kc - 1); lt_fill(&bw->dconv_state_out, &r, -1, 1); }
    bw->dx = tensor_like(&in->x, M2RNN_F64);
    bw->dW_in = tensor_like(&in->W_in, M2RNN_F64);
    bw->dconv_w = tensor_like(&in->conv_w, M2RNN_F64);
    bw->dA_log = tensor_like(&in->A_log, M2RNN_F64);
    bw->ddt_bias = tensor_like(&in->dt_bias, M2RNN_F64);
    bw->dW = tensor_like(&in->W, M2RNN_F64);
    bw->dD = tensor_like(&in->D, M2RNN_F64);
    bw->dnorm_w = tensor_like(&in->norm_w, M2RNN_F64);
    bw->dW_o = tensor_like(&in->W_o, M2RNN_F64);
    bw->dh0 = lt_tensor(4, c->B, N, K, V);
    bw->dconv_state0 = lt_tensor(3, c->B, C, c->Kc - 1);
    ck_assert_msg(m2rnn_block_check_forward(&p->fwd, &p->m) == M2RNN_OK, "%s", m2rnn_last_error());
}

static m2rnn_tensor *blk_params(blk *p, int i) /* the 9 parameters, then x, h0, conv_state0 */
{
    m2rnn_block_inputs *in = &p->fwd.in;
    m2rnn_tensor *t[12] = {&in->W_in, &in->conv_w, &in->A_log, &in->dt_bias, &in->W, &in->D, &in->norm_w, &in->W_o,
                           &in->x, &in->h0, &in->conv_state0, NULL};
    return t[i];
}
static m2rnn_tensor *blk_grads(blk *p, int i)
{
    m2rnn_block_backward_args *b = &p->bwd;
    m2rnn_tensor *t[12] = {&b->dW_in, &b->dconv_w, &b->dA_log, &b->ddt_bias, &b->dW, &b->dD, &b->dnorm_w, &b->dW_o,
                           &b->dx, &b->dh0, &b->dconv_state0, NULL};
    return t[i];
}
static const char *grad_names[11] = {"dW_in", "dconv_w", "dA_log", "ddt_bias", "dW", "dD", "dnorm_w", "dW_o", "dx", "dh0", "dconv_state0"};

static void blk_free(blk *p)
{
    for (int i = 0; i < 11; i++) {
        free(blk_params(p, i)->data);
        free(blk_grads(p, i)->data);
    }
    m2rnn_tensor *rest[5] = {&p->fwd.o, &p->fwd.ht, &p->fwd.conv_state_out, &p->bwd.dout, &p->bwd.dht};
    lt_free(rest, 5);
    free(p->bwd.dconv_state_out.data);
}

static void blk_run(blk *p)
{
    p->bwd.in = p->fwd.in;
    const m2rnn_backend *be = m2rnn_backend_reference();
    ck_assert_msg(m2rnn_block_forward(be, &p->fwd) == M2RNN_OK, "%s: forward: %s", p->c.name, m2rnn_last_error());
    ck_assert_msg(m2rnn_block_backward(be, &p->bwd) == M2RNN_OK, "%s: backward: %s", p->c.name, m2rnn_last_error());
}

static double blk_loss(void *ctx)
{
    blk *p = ctx;
    ck_assert_int_eq(m2rnn_block_forward_ref(&p->fwd), M2RNN_OK);
    return lt_dot(&p->fwd.o, &p->bwd.dout) + lt_dot(&p->fwd.ht, &p->bwd.dht) +
           lt_dot(&p->fwd.conv_state_out, &p->bwd.dconv_state_out);
}

static const blk_case cases[] = {
    {"paper_like_all", 2, 4, 5, 2, 1, 1, 0, 0, 3, 2, 4, true, true, true, true, 0, {0}},
    {"no_states", 1, 5, 4, 2, 1, 1, 0, 0, 2, 3, 4, false, false, false, false, 0, {0}},
    {"shared_f_W", 2, 3, 4, 4, 2, 1, 1, 2, 2, 2, 3, true, true, true, true, 0, {0}},
    {"kernel1", 1, 3, 3, 2, 0, 0, 0, 0, 2, 2, 1, true, true, true, true, 0, {0}},
    {"varlen", 4, 0, 4, 2, 1, 1, 0, 0, 2, 2, 4, true, true, true, true, 1, {3, 0, 5, 1}},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

START_TEST(test_gradients)
{
    blk p;
    blk_init(&p, &cases[_i], 10 + (uint64_t)_i);
    blk_run(&p);
    char what[96];
    for (int i = 0; i < 11; i++) {
        if (!m2rnn_tensor_present(blk_params(&p, i))) continue;
        snprintf(what, sizeof what, "%s: %s", cases[_i].name, grad_names[i]);
        lt_check_grad(blk_loss, &p, blk_params(&p, i), blk_grads(&p, i), 1e-6, 1e-6, what);
    }
    blk_free(&p);
}
END_TEST

/* ---- an independent evaluation of SPEC.md §3, dense layout, loop by loop ------------------ */

static double sigm(double u) { return 1.0 / (1.0 + exp(-u)); }

static void naive_forward(blk *p, double *o, double *ht, double *cs_out)
{
    const blk_case *c = &p->c;
    const m2rnn_block_dims *m = &p->m;
    const int64_t B = c->B, S = c->S, d = c->d, N = m->heads, K = m->key_dim, V = m->value_dim, Kc = m->kernel;
    const int64_t nq = m->q_heads, nk = m->k_heads, nf = m->f_heads, nw = m->w_heads, C = m->conv_channels, P = m->proj_dim;
    const m2rnn_block_inputs *in = &p->fwd.in;
    const double *x = in->x.data, *Win = in->W_in.data, *cw = in->conv_w.data, *Al = in->A_log.data, *dtb = in->dt_bias.data;
    const double *W = in->W.data, *Dp = in->D.data, *nw_ = in->norm_w.data, *Wo = in->W_o.data;
    const double *h0 = in->h0.data, *cs0 = in->conv_state0.data;
    double *proj = calloc((size_t)(B * S * P), sizeof(double)), *qkv = calloc((size_t)(B * S * C), sizeof(double));
    double *y = calloc((size_t)(B * S * N * V), sizeof(double)), *H = calloc((size_t)(K * V), sizeof(double));
    double *A = calloc((size_t)(K * V), sizeof(double));
    for (int64_t bt = 0; bt < B * S; bt++) /* 1. P = x W_inᵀ */
        for (int64_t j = 0; j < P; j++)
            for (int64_t i = 0; i < d; i++) proj[bt * P + j] += x[bt * d + i] * Win[j * d + i];
    for (int64_t b = 0; b < B; b++) /* 3. conv over the first C channels, then SiLU */
        for (int64_t ch = 0; ch < C; ch++)
            for (int64_t t = 0; t < S; t++) {
                double acc = 0;
                for (int64_t j = 0; j < Kc; j++) {
                    int64_t u = t - (Kc - 1) + j;
                    double raw = u >= 0 ? proj[(b * S + u) * P + ch] : cs0 ? cs0[(b * C + ch) * (Kc - 1) + (Kc - 1) + u] : 0;
                    acc += cw[ch * Kc + j] * raw;
                }
                qkv[(b * S + t) * C + ch] = acc * sigm(acc);
            }
    for (int64_t b = 0; b < B; b++)
        for (int64_t ch = 0; ch < C; ch++)
            for (int64_t j = 0; j < Kc - 1; j++) {
                int64_t u = S - (Kc - 1) + j;
                cs_out[(b * C + ch) * (Kc - 1) + j] =
                    u >= 0 ? proj[(b * S + u) * P + ch] : cs0 ? cs0[(b * C + ch) * (Kc - 1) + (Kc - 1) + u] : 0;
            }
    for (int64_t b = 0; b < B; b++) /* 4. the recurrence, head n reading source head n / (N/Nx) */
        for (int64_t n = 0; n < N; n++) {
            for (int64_t e = 0; e < K * V; e++) H[e] = h0 ? h0[(b * N + n) * K * V + e] : 0;
            for (int64_t t = 0; t < S; t++) {
                const double *row = proj + (b * S + t) * P, *r2 = qkv + (b * S + t) * C;
                const double *q = r2 + (n / (N / nq)) * K, *k = r2 + nq * K + (n / (N / nk)) * K;
                const double *v = r2 + (nq + nk) * K + n * V;
                double fr = row[C + n / (N / nf)] + dtb[n / (N / nf)];
                double f = exp(-exp(Al[n / (N / nf)]) * log1p(exp(fr))); /* 2. the decay gate */
                const double *Wn = W + (n / (N / nw)) * V * V;
                for (int64_t i = 0; i < K; i++)
                    for (int64_t j = 0; j < V; j++) {
                        double a = k[i] * v[j];
                        for (int64_t l = 0; l < V; l++) a += H[i * V + l] * Wn[l * V + j];
                        A[i * V + j] = a;
                    }
                for (int64_t e = 0; e < K * V; e++) H[e] = f * H[e] + (1 - f) * tanh(A[e]);
                for (int64_t j = 0; j < V; j++) {
                    double acc = 0;
                    for (int64_t i = 0; i < K; i++) acc += q[i] * H[i * V + j];
                    y[((b * S + t) * N + n) * V + j] = acc + v[j] * Dp[n * V + j]; /* 5. + v ⊙ D */
                }
            }
            for (int64_t e = 0; e < K * V; e++) ht[(b * N + n) * K * V + e] = H[e];
        }
    for (int64_t bt = 0; bt < B * S; bt++) { /* 6-8. gate, one RMSNorm over N·V, W_o */
        double *yr = y + bt * N * V, ms = 0;
        const double *g = proj + bt * P + C + nf;
        for (int64_t e = 0; e < N * V; e++) { yr[e] *= g[e] * sigm(g[e]); ms += yr[e] * yr[e] / (double)(N * V); }
        for (int64_t e = 0; e < N * V; e++) yr[e] = yr[e] / sqrt(ms + 1e-5) * nw_[e];
        for (int64_t i = 0; i < d; i++) {
            double acc = 0;
            for (int64_t e = 0; e < N * V; e++) acc += yr[e] * Wo[i * N * V + e];
            o[bt * d + i] = acc;
        }
    }
    free(proj); free(qkv); free(y); free(H); free(A);
}

START_TEST(test_forward_against_spec)
{
    if (cases[_i].varlen) return; /* the dense evaluation; varlen = separate runs is tested below */
    blk p;
    blk_init(&p, &cases[_i], 20 + (uint64_t)_i);
    blk_run(&p);
    int64_t no = m2rnn_tensor_numel(&p.fwd.o), nh = m2rnn_tensor_numel(&p.fwd.ht), nc = m2rnn_tensor_numel(&p.fwd.conv_state_out);
    double *o = calloc((size_t)no, sizeof(double)), *ht = calloc((size_t)nh, sizeof(double)), *cs = calloc((size_t)(nc ? nc : 1), sizeof(double));
    naive_forward(&p, o, ht, cs);
    for (int64_t e = 0; e < no; e++)
        ck_assert_msg(fabs(((double *)p.fwd.o.data)[e] - o[e]) <= 1e-12 * (1 + fabs(o[e])), "%s: o[%lld] %.17g vs %.17g",
                      cases[_i].name, (long long)e, ((double *)p.fwd.o.data)[e], o[e]);
    for (int64_t e = 0; e < nh; e++) ck_assert(fabs(((double *)p.fwd.ht.data)[e] - ht[e]) <= 1e-12);
    for (int64_t e = 0; e < nc; e++) ck_assert(fabs(((double *)p.fwd.conv_state_out.data)[e] - cs[e]) <= 1e-13);
    free(o); free(ht); free(cs);
    blk_free(&p);
}
END_TEST

/* ---- streaming ------------------------------------------------------------------------- */

/* Tokens [t0,t1) of every sequence of a dense (B,S,d) tensor, as (B, t1-t0, d). */
static m2rnn_tensor slice(const m2rnn_tensor *x, int64_t t0, int64_t t1)
{
    int64_t B = x->shape[0], S = x->shape[1], d = x->shape[2];
    m2rnn_tensor s = lt_tensor(3, B, t1 - t0, d);
    for (int64_t b = 0; b < B; b++)
        memcpy((double *)s.data + b * (t1 - t0) * d, (double *)x->data + (b * S + t0) * d, (size_t)((t1 - t0) * d) * sizeof(double));
    return s;
}

static void assert_close_slice(const m2rnn_tensor *part, const m2rnn_tensor *whole, int64_t t0, int64_t t1, double tol, const char *what)
{
    m2rnn_tensor w = slice(whole, t0, t1);
    for (int64_t e = 0; e < m2rnn_tensor_numel(&w); e++) {
        double a = ((double *)part->data)[e], b = ((double *)w.data)[e];
        ck_assert_msg(fabs(a - b) <= tol * (1 + fabs(b)), "%s (tokens %lld..%lld)[%lld]: %.17g vs %.17g", what, (long long)t0,
                      (long long)t1, (long long)e, a, b);
    }
    free(w.data);
}

static void assert_close(const m2rnn_tensor *a, const m2rnn_tensor *b, double tol, const char *what)
{
    for (int64_t e = 0; e < m2rnn_tensor_numel(b); e++) {
        double x = m2rnn_tensor_get(a, e), y = m2rnn_tensor_get(b, e);
        ck_assert_msg(fabs(x - y) <= tol * (1 + fabs(y)), "%s[%lld]: %.17g vs %.17g", what, (long long)e, x, y);
    }
}

/* Chunks of `chunk` tokens (1: token by token), states passed on forward; then the backward of
 * the chunks in reverse, dh0 -> dht and dconv_state0 -> dconv_state_out: o, the final states,
 * dx, dh0, dconv_state0 and the parameter gradients (summed over chunks) equal the whole run's.
 * Agreement to 1e-12 relative: both are double evaluations of the same sums, which may differ
 * only in the summation order OpenBLAS picks for different row counts. */
START_TEST(test_streaming)
{
    const int64_t chunk = _i == 0 ? 1 : _i == 1 ? 2 : 5;
    blk_case c = {"stream", 2, 7, 4, 2, 1, 1, 0, 0, 3, 2, 4, true, true, true, true, 0, {0}};
    blk p;
    blk_init(&p, &c, 99);
    blk_run(&p);
    const int64_t nchunks = (c.S + chunk - 1) / chunk;
    blk q[8];
    m2rnn_tensor state_h = tensor_like(&p.fwd.in.h0, M2RNN_F64), state_c = tensor_like(&p.fwd.in.conv_state0, M2RNN_F64);
    memcpy(state_h.data, p.fwd.in.h0.data, m2rnn_tensor_nbytes(&state_h));
    memcpy(state_c.data, p.fwd.in.conv_state0.data, m2rnn_tensor_nbytes(&state_c));
    for (int64_t k = 0; k < nchunks; k++) {
        int64_t t0 = k * chunk, t1 = t0 + chunk < c.S ? t0 + chunk : c.S;
        memset(&q[k], 0, sizeof q[k]);
        q[k].fwd.in = p.fwd.in;
        q[k].fwd.in.x = slice(&p.fwd.in.x, t0, t1);
        q[k].fwd.in.h0 = state_h;
        q[k].fwd.in.conv_state0 = state_c;
        q[k].fwd.o = tensor_like(&q[k].fwd.in.x, M2RNN_F64);
        q[k].fwd.ht = tensor_like(&p.fwd.ht, M2RNN_F64);
        q[k].fwd.conv_state_out = tensor_like(&p.fwd.conv_state_out, M2RNN_F64);
        ck_assert_msg(m2rnn_block_forward_ref(&q[k].fwd) == M2RNN_OK, "%s", m2rnn_last_error());
        assert_close_slice(&q[k].fwd.o, &p.fwd.o, t0, t1, 1e-12, "o");
        state_h = q[k].fwd.ht;
        state_c = q[k].fwd.conv_state_out;
    }
    assert_close(&state_h, &p.fwd.ht, 1e-12, "ht");
    assert_close(&state_c, &p.fwd.conv_state_out, 0, "conv_state_out");
    /* backward, last chunk first */
    double sums[8][256] = {{0}};
    m2rnn_tensor dh = tensor_like(&p.bwd.dht, M2RNN_F64), dc = tensor_like(&p.bwd.dconv_state_out, M2RNN_F64);
    memcpy(dh.data, p.bwd.dht.data, m2rnn_tensor_nbytes(&dh));
    memcpy(dc.data, p.bwd.dconv_state_out.data, m2rnn_tensor_nbytes(&dc));
    for (int64_t k = nchunks - 1; k >= 0; k--) {
        int64_t t0 = k * chunk, t1 = t0 + chunk < c.S ? t0 + chunk : c.S;
        m2rnn_block_backward_args *bw = &q[k].bwd;
        bw->in = q[k].fwd.in;
        bw->dout = slice(&p.bwd.dout, t0, t1);
        bw->dht = dh;
        bw->dconv_state_out = dc;
        for (int i = 0; i < 11; i++) *blk_grads(&q[k], i) = tensor_like(blk_params(&q[k], i), M2RNN_F64);
        ck_assert_msg(m2rnn_block_backward_ref(bw) == M2RNN_OK, "%s", m2rnn_last_error());
        assert_close_slice(&bw->dx, &p.bwd.dx, t0, t1, 1e-11, "dx");
        for (int i = 0; i < 8; i++) {
            ck_assert(m2rnn_tensor_numel(blk_grads(&q[k], i)) <= 256);
            for (int64_t e = 0; e < m2rnn_tensor_numel(blk_grads(&q[k], i)); e++) sums[i][e] += ((double *)blk_grads(&q[k], i)->data)[e];
        }
        free(dh.data);
        free(dc.data);
        dh = bw->dh0;
        dc = bw->dconv_state0;
        bw->dh0.data = bw->dconv_state0.data = NULL;
    }
    assert_close(&dh, &p.bwd.dh0, 1e-11, "dh0");
    assert_close(&dc, &p.bwd.dconv_state0, 1e-11, "dconv_state0");
    for (int i = 0; i < 8; i++) {
        m2rnn_tensor s = m2rnn_tensor_make(sums[i], M2RNN_F64, blk_grads(&p, i)->rank, blk_grads(&p, i)->shape);
        assert_close(&s, blk_grads(&p, i), 1e-11, grad_names[i]);
    }
    free(dh.data);
    free(dc.data);
    for (int64_t k = 0; k < nchunks; k++) {
        /* h0/conv_state0 of chunk k are the previous chunk's outputs (or copies of p's): free the outputs */
        if (k == 0) { free(q[k].fwd.in.h0.data); free(q[k].fwd.in.conv_state0.data); }
        m2rnn_tensor *own[6] = {&q[k].fwd.in.x, &q[k].fwd.o, &q[k].fwd.ht, &q[k].fwd.conv_state_out, &q[k].bwd.dout, &q[k].bwd.dx};
        lt_free(own, 6);
        for (int i = 0; i < 8; i++) free(blk_grads(&q[k], i)->data);
    }
    blk_free(&p);
}
END_TEST

/* Varlen == each sequence run alone (dense, B = 1): outputs, final states, input/state
 * gradients per sequence; parameter gradients summed over the sequences. */
START_TEST(test_varlen_equals_separate)
{
    const blk_case *c = &cases[4];
    blk p;
    blk_init(&p, c, 5);
    blk_run(&p);
    const m2rnn_block_dims *m = &p.m;
    const int64_t d = c->d, HS = m->heads * m->key_dim * m->value_dim, CS = m->conv_channels * (m->kernel - 1);
    double sums[8][512] = {{0}};
    for (int64_t b = 0; b < c->B; b++) {
        blk_case one = *c;
        one.varlen = 0; one.B = 1; one.S = c->seqlens[b];
        blk q;
        blk_init(&q, &one, 1);
        for (int i = 0; i < 8; i++) memcpy(blk_params(&q, i)->data, blk_params(&p, i)->data, m2rnn_tensor_nbytes(blk_params(&p, i)));
        memcpy(q.fwd.in.x.data, (double *)p.fwd.in.x.data + p.cu[b] * d, (size_t)(one.S * d) * sizeof(double));
        memcpy(q.bwd.dout.data, (double *)p.bwd.dout.data + p.cu[b] * d, (size_t)(one.S * d) * sizeof(double));
        memcpy(q.fwd.in.h0.data, (double *)p.fwd.in.h0.data + b * HS, (size_t)HS * sizeof(double));
        memcpy(q.bwd.dht.data, (double *)p.bwd.dht.data + b * HS, (size_t)HS * sizeof(double));
        memcpy(q.fwd.in.conv_state0.data, (double *)p.fwd.in.conv_state0.data + b * CS, (size_t)CS * sizeof(double));
        memcpy(q.bwd.dconv_state_out.data, (double *)p.bwd.dconv_state_out.data + b * CS, (size_t)CS * sizeof(double));
        blk_run(&q);
        for (int64_t e = 0; e < one.S * d; e++) {
            ck_assert(fabs(((double *)q.fwd.o.data)[e] - ((double *)p.fwd.o.data)[p.cu[b] * d + e]) <= 1e-12);
            ck_assert(fabs(((double *)q.bwd.dx.data)[e] - ((double *)p.bwd.dx.data)[p.cu[b] * d + e]) <= 1e-11);
        }
        for (int64_t e = 0; e < HS; e++) {
            ck_assert(fabs(((double *)q.fwd.ht.data)[e] - ((double *)p.fwd.ht.data)[b * HS + e]) <= 1e-12);
            ck_assert(fabs(((double *)q.bwd.dh0.data)[e] - ((double *)p.bwd.dh0.data)[b * HS + e]) <= 1e-11);
        }
        for (int64_t e = 0; e < CS; e++) {
            ck_assert(((double *)q.fwd.conv_state_out.data)[e] == ((double *)p.fwd.conv_state_out.data)[b * CS + e]);
            ck_assert(fabs(((double *)q.bwd.dconv_state0.data)[e] - ((double *)p.bwd.dconv_state0.data)[b * CS + e]) <= 1e-11);
        }
        for (int i = 0; i < 8; i++) {
            ck_assert(m2rnn_tensor_numel(blk_grads(&q, i)) <= 512);
            for (int64_t e = 0; e < m2rnn_tensor_numel(blk_grads(&q, i)); e++) sums[i][e] += ((double *)blk_grads(&q, i)->data)[e];
        }
        blk_free(&q);
    }
    for (int i = 0; i < 8; i++) {
        m2rnn_tensor s = m2rnn_tensor_make(sums[i], M2RNN_F64, blk_grads(&p, i)->rank, blk_grads(&p, i)->shape);
        assert_close(&s, blk_grads(&p, i), 1e-11, grad_names[i]);
    }
    blk_free(&p);
}
END_TEST

/* Init: W = I, D = 1, norm_w = 1, the decay gate's ranges, the normal stds; seeded. */
START_TEST(test_init)
{
    blk_case c = {"init", 1, 1, 64, 8, 1, 1, 0, 0, 16, 4, 4, false, false, false, false, 0, {0}};
    blk p, q;
    blk_init(&p, &c, 1);
    blk_init(&q, &c, 2);
    m2rnn_rng r1 = m2rnn_rng_seed(7), r2 = m2rnn_rng_seed(7);
    ck_assert_msg(m2rnn_block_init(&p.fwd.in, 6, &r1) == M2RNN_OK, "%s", m2rnn_last_error());
    ck_assert_int_eq(m2rnn_block_init(&q.fwd.in, 6, &r2), M2RNN_OK);
    for (int i = 0; i < 8; i++) assert_tensors_equal(blk_params(&p, i), blk_params(&q, i), grad_names[i] + 1);
    const m2rnn_block_inputs *in = &p.fwd.in;
    for (int64_t e = 0; e < m2rnn_tensor_numel(&in->W); e++) {
        int64_t i = (e / 4) % 4, j = e % 4;
        ck_assert(((double *)in->W.data)[e] == (i == j ? 1.0 : 0.0));
    }
    for (int64_t e = 0; e < m2rnn_tensor_numel(&in->D); e++) ck_assert(((double *)in->D.data)[e] == 1.0);
    for (int64_t e = 0; e < m2rnn_tensor_numel(&in->norm_w); e++) ck_assert(((double *)in->norm_w.data)[e] == 1.0);
    for (int64_t e = 0; e < 8; e++) {
        ck_assert(exp(((double *)in->A_log.data)[e]) <= 16.0 + 1e-12);
        double u = ((double *)in->dt_bias.data)[e], dt = log1p(exp(u));
        ck_assert(dt >= 1e-3 * (1 - 1e-9) && dt <= 0.1 * (1 + 1e-9));
    }
    /* sample stds: W_in has 64·(16+16+32+8+32) = 6656 entries, so the sample std is within ~1% of
     * 0.02 (1σ ≈ 0.9%); W_o has 64·32 = 2048 entries around 0.02/√12. 6σ bounds. */
    const struct { const m2rnn_tensor *t; double std; } chk[3] = {{&in->W_in, 0.02}, {&in->conv_w, 0.02}, {&in->W_o, 0.02 / sqrt(12.0)}};
    for (int i = 0; i < 3; i++) {
        int64_t n = m2rnn_tensor_numel(chk[i].t);
        double ss = 0, s = 0;
        for (int64_t e = 0; e < n; e++) { double v = ((double *)chk[i].t->data)[e]; ss += v * v; s += v; }
        double sd = sqrt(ss / (double)n);
        ck_assert_msg(fabs(sd / chk[i].std - 1) < 6.0 / sqrt(2.0 * (double)n), "tensor %d: std %g, want %g", i, sd, chk[i].std);
        ck_assert_msg(fabs(s / (double)n) < 6.0 * chk[i].std / sqrt((double)n), "tensor %d: mean %g", i, s / (double)n);
    }
    /* bad input */
    m2rnn_rng r3 = m2rnn_rng_seed(1);
    ck_assert_int_eq(m2rnn_block_init(&p.fwd.in, 0, &r3), M2RNN_ERR_ARG);
    p.fwd.in.D.shape[1] = 3;
    ck_assert_int_eq(m2rnn_block_init(&p.fwd.in, 6, &r3), M2RNN_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(m2rnn_last_error(), "D"));
    p.fwd.in.D.shape[1] = 4;
    blk_free(&p);
    blk_free(&q);
}
END_TEST

/* o in F32/BF16 is the F64 o rounded once; low-precision parameters are widened exactly. */
START_TEST(test_dtypes)
{
    blk p;
    blk_init(&p, &cases[0], 3);
    blk_run(&p);
    m2rnn_dtype dts[2] = {M2RNN_F32, M2RNN_BF16};
    for (int d = 0; d < 2; d++) {
        m2rnn_block_forward_args f = p.fwd;
        f.o = tensor_like(&p.fwd.o, dts[d]);
        f.ht = tensor_like(&p.fwd.ht, dts[d]);
        ck_assert_int_eq(m2rnn_block_forward_ref(&f), M2RNN_OK);
        for (int64_t e = 0; e < m2rnn_tensor_numel(&f.o); e++)
            ck_assert(m2rnn_tensor_get(&f.o, e) == m2rnn_round_to(dts[d], ((double *)p.fwd.o.data)[e]));
        for (int64_t e = 0; e < m2rnn_tensor_numel(&f.ht); e++)
            ck_assert(m2rnn_tensor_get(&f.ht, e) == m2rnn_round_to(dts[d], ((double *)p.fwd.ht.data)[e]));
        free(f.o.data);
        free(f.ht.data);
    }
    /* W_in in bf16 == W_in rounded to bf16 held in f64 */
    m2rnn_tensor wb = tensor_like(&p.fwd.in.W_in, M2RNN_BF16);
    for (int64_t e = 0; e < m2rnn_tensor_numel(&wb); e++) {
        m2rnn_tensor_set(&wb, e, ((double *)p.fwd.in.W_in.data)[e]);
        ((double *)p.fwd.in.W_in.data)[e] = m2rnn_tensor_get(&wb, e);
    }
    m2rnn_block_forward_args f = p.fwd;
    f.in.W_in = wb;
    f.o = tensor_like(&p.fwd.o, M2RNN_F64);
    ck_assert_int_eq(m2rnn_block_forward_ref(&f), M2RNN_OK);
    ck_assert_int_eq(m2rnn_block_forward_ref(&p.fwd), M2RNN_OK);
    assert_tensors_equal(&f.o, &p.fwd.o, "bf16 W_in");
    free(f.o.data);
    free(wb.data);
    blk_free(&p);
}
END_TEST

/* ---- bad input -------------------------------------------------------------------------- */

static void expect(blk *p, m2rnn_status want, const char *needle, bool forward_too)
{
    m2rnn_tensor *outs[14];
    for (int i = 0; i < 11; i++) outs[i] = blk_grads(p, i);
    outs[11] = &p->fwd.o; outs[12] = &p->fwd.ht; outs[13] = &p->fwd.conv_state_out;
    lt_poison(outs, 14, 99.0);
    p->bwd.in = p->fwd.in;
    const m2rnn_backend *be = m2rnn_backend_reference();
    m2rnn_status got[4] = {m2rnn_block_backward(be, &p->bwd), m2rnn_block_backward_ref(&p->bwd),
                           forward_too ? m2rnn_block_forward(be, &p->fwd) : want, forward_too ? m2rnn_block_forward_ref(&p->fwd) : want};
    for (int i = 0; i < 4; i++)
        ck_assert_msg(got[i] == want, "call %d: %d (%s), want %d [%s]", i, got[i], m2rnn_last_error(), want, needle);
    if (want == M2RNN_OK) return;
    ck_assert_msg(strstr(m2rnn_last_error(), needle), "message '%s' does not name '%s'", m2rnn_last_error(), needle);
    lt_assert_poisoned(outs, 14, 99.0, needle);
}

START_TEST(test_errors)
{
    blk p;
    blk_init(&p, &cases[0], 1); /* B2 S4 d5 N2 Nq=Nk=1 K3 V2 Kc4: C = 10, P = 16 */
    m2rnn_block_inputs *in = &p.fwd.in;
    void *s;
    s = in->x.data; in->x.data = NULL; expect(&p, M2RNN_ERR_NULL, "x", true); in->x.data = s;
    s = in->W_o.data; in->W_o.data = NULL; expect(&p, M2RNN_ERR_NULL, "W_o", true); in->W_o.data = s;
    s = p.bwd.dD.data; p.bwd.dD.data = NULL; expect(&p, M2RNN_ERR_NULL, "dD", false); p.bwd.dD.data = s;
    s = p.bwd.dout.data; p.bwd.dout.data = NULL; expect(&p, M2RNN_ERR_NULL, "dout", false); p.bwd.dout.data = s;
    in->W_in.shape[0] = 15; expect(&p, M2RNN_ERR_SHAPE, "W_in", true); in->W_in.shape[0] = 16;
    in->W_in.shape[1] = 4; expect(&p, M2RNN_ERR_SHAPE, "W_in", true); in->W_in.shape[1] = 5;
    in->conv_w.shape[0] = 9; expect(&p, M2RNN_ERR_SHAPE, "conv_w", true); in->conv_w.shape[0] = 10;
    in->D.shape[0] = 1; expect(&p, M2RNN_ERR_SHAPE, "D", true); in->D.shape[0] = 2;
    in->norm_w.shape[0] = 2; expect(&p, M2RNN_ERR_SHAPE, "norm_w", true); in->norm_w.shape[0] = 4;
    in->W.shape[0] = 3; expect(&p, M2RNN_ERR_SHAPE, "W", true); in->W.shape[0] = 2;
    in->A_log.shape[0] = 1; expect(&p, M2RNN_ERR_SHAPE, "A_log", true); in->A_log.shape[0] = 2;
    in->h0.shape[2] = 2; expect(&p, M2RNN_ERR_SHAPE, "h0", true); in->h0.shape[2] = 3;
    in->conv_state0.shape[2] = 4; expect(&p, M2RNN_ERR_SHAPE, "conv_state0", true); in->conv_state0.shape[2] = 3;
    p.bwd.dht.shape[0] = 1; expect(&p, M2RNN_ERR_SHAPE, "dht", false); p.bwd.dht.shape[0] = 2;
    p.bwd.dW_o.shape[0] = 4; expect(&p, M2RNN_ERR_SHAPE, "dW_o", false); p.bwd.dW_o.shape[0] = 5;
    in->cfg.k_heads = 3; expect(&p, M2RNN_ERR_HEADS, "cfg.k_heads", true); in->cfg.k_heads = 1;
    in->cfg.heads = 0; expect(&p, M2RNN_ERR_ARG, "cfg.heads", true); in->cfg.heads = 2;
    in->cfg.eps = -1; expect(&p, M2RNN_ERR_ARG, "cfg.eps", true); in->cfg.eps = 1e-5;
    p.bwd.clip_mode = (m2rnn_clip_mode)9; expect(&p, M2RNN_ERR_ARG, "clip_mode", false); p.bwd.clip_mode = M2RNN_CLIP_NONE;
    in->W.dtype = M2RNN_I32; expect(&p, M2RNN_ERR_DTYPE, "W", true); in->W.dtype = M2RNN_F64;
    int64_t cu[3] = {0, 3, 9};
    in->cu_seqlens = m2rnn_tensor_of(cu, M2RNN_I64, 1, (int64_t)3);
    expect(&p, M2RNN_ERR_SHAPE, "x", true); /* x is (B,S,d): packed needs (T,d) */
    in->cu_seqlens = (m2rnn_tensor){0};
    ck_assert_int_eq(m2rnn_block_forward(NULL, &p.fwd), M2RNN_ERR_NULL);
    ck_assert_int_eq(m2rnn_block_backward_ref(NULL), M2RNN_ERR_NULL);
    expect(&p, M2RNN_OK, "", true); /* and the restored arguments are valid again */
    blk_free(&p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("m2rnn_block");
    TCase *tc = tcase_create("m2rnn_block");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_gradients, 0, N_CASES);
    tcase_add_loop_test(tc, test_forward_against_spec, 0, N_CASES);
    tcase_add_loop_test(tc, test_streaming, 0, 3);
    tcase_add_test(tc, test_varlen_equals_separate);
    tcase_add_test(tc, test_init);
    tcase_add_test(tc, test_dtypes);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return run_suite(suite()); }
