/*
 * The Gated DeltaNet recurrence (SPEC.md §5, FLA's convention): the forward against the update
 * written out loop by loop, finite differences for dq, dk, dv, dg, dbeta, dh0 (with and without
 * the in-op L2 normalisation), varlen == separate runs, split == whole (ht -> h0), bad input.
 *
 * Finite differences: L = Σ o·dout + Σ ht·dht, ε = 1e-6. Inputs O(1), g in [-1, 0], β in (0,1),
 * so the state stays O(1) and third derivatives O(10-100) (the normalisation's 1/‖k‖ with ‖k‖
 * >= ~0.3 included): truncation ε²/6·1e2 ≈ 2e-11, rounding ≈ 1e-16·|L|/ε ≈ 1e-10. Bound
 * 1e-6·(1 + |grad|); β or the decay applied at the wrong point, or reading S before the update,
 * changes the forward at O(1) and fails the loop-by-loop comparison.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer_testutil.h"

typedef struct {
    const char *name;
    int64_t B, S, H, K, V;
    bool h0, dht, l2;
    double scale;
    int varlen;
    int64_t seqlens[5];
} gdn_case;

typedef struct {
    gdn_case c;
    int64_t cu[6];
    m2rnn_gdn_forward_args fwd;
    m2rnn_gdn_backward_args bwd;
} gdn_problem;

static void gdn_init(gdn_problem *p, const gdn_case *c, uint64_t seed)
{
    memset(p, 0, sizeof *p);
    p->c = *c;
    test_rng r = {seed * 7 + 3};
    m2rnn_gdn_inputs *in = &p->fwd.in;
    int64_t T = c->B * c->S;
    if (c->varlen) {
        for (int64_t b = 0; b < c->B; b++) p->cu[b + 1] = p->cu[b] + c->seqlens[b];
        T = p->cu[c->B];
        in->cu_seqlens = m2rnn_tensor_of(p->cu, M2RNN_I64, 1, c->B + 1);
        in->q = lt_tensor(3, T, c->H, c->K); in->k = lt_tensor(3, T, c->H, c->K); in->v = lt_tensor(3, T, c->H, c->V);
        in->g = lt_tensor(2, T, c->H); in->beta = lt_tensor(2, T, c->H);
    } else {
        in->q = lt_tensor(4, c->B, c->S, c->H, c->K); in->k = lt_tensor(4, c->B, c->S, c->H, c->K);
        in->v = lt_tensor(4, c->B, c->S, c->H, c->V);
        in->g = lt_tensor(3, c->B, c->S, c->H); in->beta = lt_tensor(3, c->B, c->S, c->H);
    }
    in->l2norm_qk = c->l2;
    in->scale = c->scale;
    double kscale = c->l2 ? 1.0 : 1.0 / sqrt((double)c->K); /* keep ‖k‖ ≈ 1 without normalisation */
    lt_fill(&in->q, &r, -1, 1);
    lt_fill(&in->k, &r, -kscale, kscale);
    lt_fill(&in->v, &r, -1, 1);
    lt_fill(&in->g, &r, -1, 0);
    lt_fill(&in->beta, &r, 0.05, 0.95);
    if (c->h0) { in->h0 = lt_tensor(4, c->B, c->H, c->K, c->V); lt_fill(&in->h0, &r, -1, 1); }
    p->fwd.o = tensor_like(&in->v, M2RNN_F64);
    p->fwd.ht = lt_tensor(4, c->B, c->H, c->K, c->V);
    p->bwd.in = *in;
    p->bwd.dout = tensor_like(&in->v, M2RNN_F64);
    lt_fill(&p->bwd.dout, &r, -1, 1);
    if (c->dht) { p->bwd.dht = lt_tensor(4, c->B, c->H, c->K, c->V); lt_fill(&p->bwd.dht, &r, -1, 1); }
    p->bwd.dq = tensor_like(&in->q, M2RNN_F64);
    p->bwd.dk = tensor_like(&in->k, M2RNN_F64);
    p->bwd.dv = tensor_like(&in->v, M2RNN_F64);
    p->bwd.dg = tensor_like(&in->g, M2RNN_F64);
    p->bwd.dbeta = tensor_like(&in->beta, M2RNN_F64);
    p->bwd.dh0 = lt_tensor(4, c->B, c->H, c->K, c->V);
}

static void gdn_free(gdn_problem *p)
{
    m2rnn_tensor *all[] = {&p->fwd.in.q, &p->fwd.in.k, &p->fwd.in.v, &p->fwd.in.g, &p->fwd.in.beta, &p->fwd.in.h0, &p->fwd.o,
                           &p->fwd.ht, &p->bwd.dout, &p->bwd.dht, &p->bwd.dq, &p->bwd.dk, &p->bwd.dv, &p->bwd.dg,
                           &p->bwd.dbeta, &p->bwd.dh0};
    lt_free(all, 16);
}

static void gdn_run(gdn_problem *p)
{
    p->bwd.in = p->fwd.in;
    ck_assert_msg(m2rnn_gdn_forward(m2rnn_backend_reference(), &p->fwd) == M2RNN_OK, "%s: %s", p->c.name, m2rnn_last_error());
    ck_assert_msg(m2rnn_gdn_backward(m2rnn_backend_reference(), &p->bwd) == M2RNN_OK, "%s: %s", p->c.name, m2rnn_last_error());
}

static double gdn_loss(void *ctx)
{
    gdn_problem *p = ctx;
    ck_assert_int_eq(m2rnn_gdn_forward_ref(&p->fwd), M2RNN_OK);
    return lt_dot(&p->fwd.o, &p->bwd.dout) + lt_dot(&p->fwd.ht, &p->bwd.dht);
}

static const gdn_case cases[] = {
    {"l2_default_scale", 2, 4, 2, 3, 2, true, true, true, 0.0, 0, {0}},
    {"no_l2_scale", 1, 5, 2, 2, 3, true, true, false, 0.7, 0, {0}},
    {"no_states", 2, 3, 1, 4, 2, false, false, true, 0.0, 0, {0}},
    {"varlen", 3, 0, 2, 3, 2, true, true, true, 0.0, 1, {3, 0, 4}},
    {"K1_V1", 1, 4, 1, 1, 1, true, true, false, 1.0, 0, {0}},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

START_TEST(test_gradients)
{
    gdn_problem p;
    gdn_init(&p, &cases[_i], 30 + (uint64_t)_i);
    gdn_run(&p);
    m2rnn_tensor *xs[6] = {&p.fwd.in.q, &p.fwd.in.k, &p.fwd.in.v, &p.fwd.in.g, &p.fwd.in.beta, &p.fwd.in.h0};
    m2rnn_tensor *gs[6] = {&p.bwd.dq, &p.bwd.dk, &p.bwd.dv, &p.bwd.dg, &p.bwd.dbeta, &p.bwd.dh0};
    static const char *names[6] = {"dq", "dk", "dv", "dg", "dbeta", "dh0"};
    char what[64];
    for (int i = 0; i < 6; i++) {
        if (!m2rnn_tensor_present(xs[i])) continue;
        snprintf(what, sizeof what, "%s: %s", cases[_i].name, names[i]);
        lt_check_grad(gdn_loss, &p, xs[i], gs[i], 1e-6, 1e-6, what);
    }
    gdn_free(&p);
}
END_TEST

/* The update written out, dense layout. */
START_TEST(test_forward_loops)
{
    const gdn_case *c = &cases[_i];
    if (c->varlen) return;
    gdn_problem p;
    gdn_init(&p, c, 50 + (uint64_t)_i);
    gdn_run(&p);
    const int64_t H = c->H, K = c->K, V = c->V;
    double scale = c->scale != 0 ? c->scale : 1 / sqrt((double)K);
    const double *q = p.fwd.in.q.data, *k = p.fwd.in.k.data, *v = p.fwd.in.v.data, *g = p.fwd.in.g.data, *be = p.fwd.in.beta.data;
    for (int64_t b = 0; b < c->B; b++)
        for (int64_t h = 0; h < H; h++) {
            double S[64] = {0}, kk[8], qq[8];
            if (c->h0) memcpy(S, (double *)p.fwd.in.h0.data + (b * H + h) * K * V, (size_t)(K * V) * sizeof(double));
            for (int64_t t = 0; t < c->S; t++) {
                int64_t th = (b * c->S + t) * H + h;
                double nk = 0, nq = 0;
                for (int64_t i = 0; i < K; i++) { nk += k[th * K + i] * k[th * K + i]; nq += q[th * K + i] * q[th * K + i]; }
                for (int64_t i = 0; i < K; i++) {
                    kk[i] = c->l2 ? k[th * K + i] / sqrt(nk + 1e-6) : k[th * K + i];
                    qq[i] = scale * (c->l2 ? q[th * K + i] / sqrt(nq + 1e-6) : q[th * K + i]);
                }
                for (int64_t e = 0; e < K * V; e++) S[e] *= exp(g[th]);   /* S = S·exp(g) */
                for (int64_t j = 0; j < V; j++) {                        /* u = β (v - Sᵀk); S += k uᵀ */
                    double sk = 0;
                    for (int64_t i = 0; i < K; i++) sk += S[i * V + j] * kk[i];
                    double u = be[th] * (v[th * V + j] - sk);
                    for (int64_t i = 0; i < K; i++) S[i * V + j] += kk[i] * u;
                }
                for (int64_t j = 0; j < V; j++) {                        /* o = Sᵀ q */
                    double o = 0;
                    for (int64_t i = 0; i < K; i++) o += S[i * V + j] * qq[i];
                    ck_assert_msg(fabs(((double *)p.fwd.o.data)[th * V + j] - o) <= 1e-14 * (1 + fabs(o)), "%s: o", c->name);
                }
            }
            for (int64_t e = 0; e < K * V; e++)
                ck_assert(fabs(((double *)p.fwd.ht.data)[(b * H + h) * K * V + e] - S[e]) <= 1e-14);
        }
    gdn_free(&p);
}
END_TEST

/* Varlen == separate dense runs (forward and backward). */
START_TEST(test_varlen_equals_separate)
{
    const gdn_case *c = &cases[3];
    gdn_problem p;
    gdn_init(&p, c, 8);
    gdn_run(&p);
    const int64_t H = c->H, K = c->K, V = c->V, HS = H * K * V;
    for (int64_t b = 0; b < c->B; b++) {
        gdn_case one = *c;
        one.varlen = 0; one.B = 1; one.S = c->seqlens[b];
        gdn_problem q;
        gdn_init(&q, &one, 1);
        int64_t t0 = p.cu[b], n = one.S;
        m2rnn_tensor *src[7] = {&p.fwd.in.q, &p.fwd.in.k, &p.fwd.in.v, &p.fwd.in.g, &p.fwd.in.beta, &p.bwd.dout, NULL};
        m2rnn_tensor *dst[7] = {&q.fwd.in.q, &q.fwd.in.k, &q.fwd.in.v, &q.fwd.in.g, &q.fwd.in.beta, &q.bwd.dout, NULL};
        int64_t width[6] = {H * K, H * K, H * V, H, H, H * V};
        for (int i = 0; i < 6; i++) memcpy(dst[i]->data, (double *)src[i]->data + t0 * width[i], (size_t)(n * width[i]) * sizeof(double));
        memcpy(q.fwd.in.h0.data, (double *)p.fwd.in.h0.data + b * HS, (size_t)HS * sizeof(double));
        memcpy(q.bwd.dht.data, (double *)p.bwd.dht.data + b * HS, (size_t)HS * sizeof(double));
        gdn_run(&q);
        m2rnn_tensor *qo[6] = {&q.fwd.o, &q.bwd.dq, &q.bwd.dk, &q.bwd.dv, &q.bwd.dg, &q.bwd.dbeta};
        m2rnn_tensor *po[6] = {&p.fwd.o, &p.bwd.dq, &p.bwd.dk, &p.bwd.dv, &p.bwd.dg, &p.bwd.dbeta};
        int64_t w2[6] = {H * V, H * K, H * K, H * V, H, H};
        for (int i = 0; i < 6; i++)
            for (int64_t e = 0; e < n * w2[i]; e++)
                ck_assert_msg(((double *)qo[i]->data)[e] == ((double *)po[i]->data)[t0 * w2[i] + e], "seq %lld output %d", (long long)b, i);
        for (int64_t e = 0; e < HS; e++) {
            ck_assert(((double *)q.fwd.ht.data)[e] == ((double *)p.fwd.ht.data)[b * HS + e]);
            ck_assert(((double *)q.bwd.dh0.data)[e] == ((double *)p.bwd.dh0.data)[b * HS + e]);
        }
        gdn_free(&q);
    }
    /* the empty sequence: ht = h0, dh0 = dht */
    for (int64_t e = 0; e < HS; e++) {
        ck_assert(((double *)p.fwd.ht.data)[HS + e] == ((double *)p.fwd.in.h0.data)[HS + e]);
        ck_assert(((double *)p.bwd.dh0.data)[HS + e] == ((double *)p.bwd.dht.data)[HS + e]);
    }
    gdn_free(&p);
}
END_TEST

static void expect(gdn_problem *p, m2rnn_status want, const char *needle)
{
    m2rnn_tensor *outs[6] = {&p->bwd.dq, &p->bwd.dk, &p->bwd.dv, &p->bwd.dg, &p->bwd.dbeta, &p->bwd.dh0};
    lt_poison(outs, 6, 5.0);
    p->bwd.in = p->fwd.in;
    m2rnn_status got[2] = {m2rnn_gdn_backward(m2rnn_backend_reference(), &p->bwd), m2rnn_gdn_backward_ref(&p->bwd)};
    for (int i = 0; i < 2; i++) ck_assert_msg(got[i] == want, "call %d: %d (%s), want %d", i, got[i], m2rnn_last_error(), want);
    ck_assert_msg(strstr(m2rnn_last_error(), needle), "message '%s' does not name '%s'", m2rnn_last_error(), needle);
    lt_assert_poisoned(outs, 6, 5.0, needle);
}

START_TEST(test_errors)
{
    gdn_problem p;
    gdn_init(&p, &cases[0], 1); /* B2 S4 H2 K3 V2 */
    m2rnn_gdn_inputs *in = &p.fwd.in;
    void *s;
    s = in->beta.data; in->beta.data = NULL; expect(&p, M2RNN_ERR_NULL, "beta"); in->beta.data = s;
    s = p.bwd.dg.data; p.bwd.dg.data = NULL; expect(&p, M2RNN_ERR_NULL, "dg"); p.bwd.dg.data = s;
    in->k.shape[3] = 2; expect(&p, M2RNN_ERR_SHAPE, "k"); in->k.shape[3] = 3;
    in->v.shape[2] = 1; expect(&p, M2RNN_ERR_SHAPE, "v"); in->v.shape[2] = 2;
    in->beta.shape[1] = 3; expect(&p, M2RNN_ERR_SHAPE, "beta"); in->beta.shape[1] = 4;
    in->h0.shape[3] = 3; expect(&p, M2RNN_ERR_SHAPE, "h0"); in->h0.shape[3] = 2;
    p.bwd.dq.shape[0] = 1; expect(&p, M2RNN_ERR_SHAPE, "dq"); p.bwd.dq.shape[0] = 2;
    in->scale = NAN; expect(&p, M2RNN_ERR_ARG, "scale"); in->scale = 0;
    in->g.dtype = M2RNN_I32; expect(&p, M2RNN_ERR_DTYPE, "g"); in->g.dtype = M2RNN_F64;
    ck_assert_int_eq(m2rnn_gdn_forward(NULL, &p.fwd), M2RNN_ERR_NULL);
    ck_assert_int_eq(m2rnn_gdn_forward_ref(NULL), M2RNN_ERR_NULL);
    gdn_free(&p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("gated_deltanet");
    TCase *tc = tcase_create("gated_deltanet");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_gradients, 0, N_CASES);
    tcase_add_loop_test(tc, test_forward_loops, 0, N_CASES);
    tcase_add_test(tc, test_varlen_equals_separate);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return run_suite(suite()); }
