/*
 * RMSNorm: values against the formula, finite differences for dx and dw, eps inside the root,
 * dtypes, bad input.
 *
 * Finite differences: L = Σ y·dy, ε = 1e-6. With O(1) rows of D <= 8 and eps = 1e-5, r = O(1) and
 * the third derivatives are O(1) per element: truncation ≈ ε²/6·O(10) ≈ 1e-12, rounding ≈
 * 1e-16·|L|/ε ≈ 1e-10. Bound 1e-6·(1 + |grad|); an eps outside the root, a missing r³ term or
 * a dropped 1/D moves gradients by >= 1e-2.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer_testutil.h"

typedef struct {
    m2rnn_rmsnorm_forward_args fwd;
    m2rnn_rmsnorm_backward_args bwd;
} norm_problem;

static const struct { const char *name; int rank; int64_t shape[3]; double eps; double scale; } cases[] = {
    {"BSD", 3, {2, 3, 5}, 1e-5, 1.0},
    {"TD", 2, {4, 8}, 1e-5, 1.0},
    {"D1", 2, {3, 1}, 1e-5, 1.0},
    {"small_x_eps_matters", 2, {3, 4}, 1e-2, 0.05}, /* mean(x²) ≈ 1e-3 < eps */
    {"eps0", 1, {6}, 0.0, 1.0},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

static void problem_init(norm_problem *p, int c, uint64_t seed)
{
    memset(p, 0, sizeof *p);
    test_rng r = {seed};
    int rank = cases[c].rank;
    int64_t D = cases[c].shape[rank - 1];
    p->fwd.in.x = lt_tensor_dtype(M2RNN_F64, rank, cases[c].shape);
    p->fwd.in.w = lt_tensor(1, D);
    p->fwd.in.eps = cases[c].eps;
    lt_fill(&p->fwd.in.x, &r, -cases[c].scale, cases[c].scale);
    lt_fill(&p->fwd.in.w, &r, 0.5, 1.5);
    p->fwd.y = tensor_like(&p->fwd.in.x, M2RNN_F64);
    p->bwd.in = p->fwd.in;
    p->bwd.dy = tensor_like(&p->fwd.in.x, M2RNN_F64);
    lt_fill(&p->bwd.dy, &r, -1, 1);
    p->bwd.dx = tensor_like(&p->fwd.in.x, M2RNN_F64);
    p->bwd.dw = lt_tensor(1, D);
}

static void problem_free(norm_problem *p)
{
    m2rnn_tensor *all[] = {&p->fwd.in.x, &p->fwd.in.w, &p->fwd.y, &p->bwd.dy, &p->bwd.dx, &p->bwd.dw};
    lt_free(all, 6);
}

static double norm_loss(void *ctx)
{
    norm_problem *p = ctx;
    ck_assert_int_eq(m2rnn_rmsnorm_forward_ref(&p->fwd), M2RNN_OK);
    return lt_dot(&p->fwd.y, &p->bwd.dy);
}

static void run(norm_problem *p)
{
    p->bwd.in = p->fwd.in;
    ck_assert_msg(m2rnn_rmsnorm_forward(m2rnn_backend_reference(), &p->fwd) == M2RNN_OK, "%s", m2rnn_last_error());
    ck_assert_msg(m2rnn_rmsnorm_backward(m2rnn_backend_reference(), &p->bwd) == M2RNN_OK, "%s", m2rnn_last_error());
}

START_TEST(test_values_and_gradients)
{
    norm_problem p;
    problem_init(&p, _i, 60 + (uint64_t)_i);
    run(&p);
    int64_t D = p.fwd.in.w.shape[0], R = m2rnn_tensor_numel(&p.fwd.in.x) / D;
    const double *x = p.fwd.in.x.data, *w = p.fwd.in.w.data, *y = p.fwd.y.data;
    for (int64_t r = 0; r < R; r++) {
        double ms = 0;
        for (int64_t i = 0; i < D; i++) ms += x[r * D + i] * x[r * D + i] / (double)D;
        for (int64_t i = 0; i < D; i++) {
            double want = x[r * D + i] * w[i] / sqrt(ms + cases[_i].eps);
            ck_assert_msg(fabs(y[r * D + i] - want) <= 1e-14 * (1 + fabs(want)), "%s: y[%lld]", cases[_i].name, (long long)(r * D + i));
        }
    }
    char what[64];
    snprintf(what, sizeof what, "%s: dx", cases[_i].name);
    lt_check_grad(norm_loss, &p, &p.fwd.in.x, &p.bwd.dx, 1e-6, 1e-6, what);
    snprintf(what, sizeof what, "%s: dw", cases[_i].name);
    lt_check_grad(norm_loss, &p, &p.fwd.in.w, &p.bwd.dw, 1e-6, 1e-6, what);
    problem_free(&p);
}
END_TEST

START_TEST(test_dtypes)
{
    norm_problem p;
    problem_init(&p, 0, 9);
    run(&p);
    m2rnn_dtype dts[2] = {M2RNN_F32, M2RNN_BF16};
    for (int d = 0; d < 2; d++) {
        norm_problem q = p;
        q.fwd.y = tensor_like(&p.fwd.y, dts[d]);
        q.bwd.dx = tensor_like(&p.bwd.dx, dts[d]);
        q.bwd.dw = tensor_like(&p.bwd.dw, dts[d]);
        run(&q);
        m2rnn_tensor *lo[3] = {&q.fwd.y, &q.bwd.dx, &q.bwd.dw}, *hi[3] = {&p.fwd.y, &p.bwd.dx, &p.bwd.dw};
        for (int o = 0; o < 3; o++)
            for (int64_t e = 0; e < m2rnn_tensor_numel(hi[o]); e++)
                ck_assert(m2rnn_tensor_get(lo[o], e) == m2rnn_round_to(dts[d], m2rnn_tensor_get(hi[o], e)));
        lt_free(lo, 3);
    }
    problem_free(&p);
}
END_TEST

static void expect(norm_problem *p, m2rnn_status want, const char *needle)
{
    m2rnn_tensor *outs[3] = {&p->fwd.y, &p->bwd.dx, &p->bwd.dw};
    lt_poison(outs, 3, 31.0);
    p->bwd.in = p->fwd.in;
    m2rnn_status got[2] = {m2rnn_rmsnorm_backward(m2rnn_backend_reference(), &p->bwd), m2rnn_rmsnorm_backward_ref(&p->bwd)};
    for (int i = 0; i < 2; i++) ck_assert_msg(got[i] == want, "call %d: %d (%s), want %d", i, got[i], m2rnn_last_error(), want);
    ck_assert_msg(strstr(m2rnn_last_error(), needle), "message '%s' does not name '%s'", m2rnn_last_error(), needle);
    lt_assert_poisoned(outs, 3, 31.0, needle);
}

START_TEST(test_errors)
{
    norm_problem p;
    problem_init(&p, 0, 1); /* x (2,3,5) */
    void *s;
    s = p.fwd.in.x.data; p.fwd.in.x.data = NULL; expect(&p, M2RNN_ERR_NULL, "x"); p.fwd.in.x.data = s;
    s = p.fwd.in.w.data; p.fwd.in.w.data = NULL; expect(&p, M2RNN_ERR_NULL, "w"); p.fwd.in.w.data = s;
    s = p.bwd.dw.data; p.bwd.dw.data = NULL; expect(&p, M2RNN_ERR_NULL, "dw"); p.bwd.dw.data = s;
    p.fwd.in.w.shape[0] = 4; expect(&p, M2RNN_ERR_SHAPE, "w"); p.fwd.in.w.shape[0] = 5;
    p.bwd.dx.shape[1] = 2; expect(&p, M2RNN_ERR_SHAPE, "dx"); p.bwd.dx.shape[1] = 3;
    p.bwd.dy.rank = 2; expect(&p, M2RNN_ERR_SHAPE, "dy"); p.bwd.dy.rank = 3;
    p.fwd.in.eps = -1e-5; expect(&p, M2RNN_ERR_ARG, "eps");
    p.fwd.in.eps = NAN; expect(&p, M2RNN_ERR_ARG, "eps");
    p.fwd.in.eps = INFINITY; expect(&p, M2RNN_ERR_ARG, "eps"); p.fwd.in.eps = 1e-5;
    p.fwd.in.w.dtype = M2RNN_I32; expect(&p, M2RNN_ERR_DTYPE, "w"); p.fwd.in.w.dtype = M2RNN_F64;
    ck_assert_int_eq(m2rnn_rmsnorm_forward(NULL, &p.fwd), M2RNN_ERR_NULL);
    ck_assert_int_eq(m2rnn_rmsnorm_backward_ref(NULL), M2RNN_ERR_NULL);
    problem_free(&p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("rmsnorm");
    TCase *tc = tcase_create("rmsnorm");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_values_and_gradients, 0, N_CASES);
    tcase_add_test(tc, test_dtypes);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return run_suite(suite()); }
