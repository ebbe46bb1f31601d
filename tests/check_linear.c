/*
 * Linear (y = x Wᵀ + bias, W stored (out, in)): values against the sum written out, finite
 * differences for dx, dW, dbias, dtypes, bad input.
 *
 * Finite differences: L = Σ y·dy is linear in each argument, so the central difference has no
 * truncation error; only rounding, ≈ 1e-16·|L|/ε ≈ 1e-10 with ε = 1e-6 and |L| ≈ 10. The bound
 * |fd - grad| <= 1e-7·(1 + |grad|) is three orders above that; a transposed W or a missed row
 * moves gradients by O(1).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer_testutil.h"

typedef struct {
    m2rnn_linear_forward_args fwd;
    m2rnn_linear_backward_args bwd;
} lin_problem;

static const struct { const char *name; int rank; int64_t lead[2]; int64_t I, O; bool bias; } cases[] = {
    {"BSd_bias", 3, {2, 3}, 4, 5, true},
    {"Td_nobias", 2, {7}, 3, 2, false},
    {"vector", 1, {0}, 6, 3, true},
    {"wide", 2, {3}, 40, 70, true}, /* big enough for OpenBLAS's blocked kernels */
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

static void problem_init(lin_problem *p, int c, uint64_t seed)
{
    memset(p, 0, sizeof *p);
    test_rng r = {seed};
    int64_t xs[3], ys[3];
    int rank = cases[c].rank;
    for (int i = 0; i < rank - 1; i++) xs[i] = ys[i] = cases[c].lead[i];
    xs[rank - 1] = cases[c].I;
    ys[rank - 1] = cases[c].O;
    p->fwd.in.x = lt_tensor_dtype(M2RNN_F64, rank, xs);
    p->fwd.in.W = lt_tensor(2, cases[c].O, cases[c].I);
    lt_fill(&p->fwd.in.x, &r, -1, 1);
    lt_fill(&p->fwd.in.W, &r, -1, 1);
    if (cases[c].bias) { p->fwd.in.bias = lt_tensor(1, cases[c].O); lt_fill(&p->fwd.in.bias, &r, -1, 1); }
    p->fwd.y = lt_tensor_dtype(M2RNN_F64, rank, ys);
    p->bwd.in = p->fwd.in;
    p->bwd.dy = lt_tensor_dtype(M2RNN_F64, rank, ys);
    lt_fill(&p->bwd.dy, &r, -1, 1);
    p->bwd.dx = lt_tensor_dtype(M2RNN_F64, rank, xs);
    p->bwd.dW = lt_tensor(2, cases[c].O, cases[c].I);
    p->bwd.dbias = lt_tensor(1, cases[c].O);
}

static void problem_free(lin_problem *p)
{
    m2rnn_tensor *all[] = {&p->fwd.in.x, &p->fwd.in.W, &p->fwd.in.bias, &p->fwd.y, &p->bwd.dy, &p->bwd.dx,
                           &p->bwd.dW, &p->bwd.dbias};
    lt_free(all, 8);
}

static double lin_loss(void *ctx)
{
    lin_problem *p = ctx;
    ck_assert_int_eq(m2rnn_linear_forward_ref(&p->fwd), M2RNN_OK);
    return lt_dot(&p->fwd.y, &p->bwd.dy);
}

static void run(lin_problem *p)
{
    p->bwd.in = p->fwd.in;
    ck_assert_msg(m2rnn_linear_forward(m2rnn_backend_reference(), &p->fwd) == M2RNN_OK, "%s", m2rnn_last_error());
    ck_assert_msg(m2rnn_linear_backward(m2rnn_backend_reference(), &p->bwd) == M2RNN_OK, "%s", m2rnn_last_error());
}

START_TEST(test_values_and_gradients)
{
    lin_problem p;
    problem_init(&p, _i, 40 + (uint64_t)_i);
    run(&p);
    const int64_t I = cases[_i].I, O = cases[_i].O, R = m2rnn_tensor_numel(&p.fwd.in.x) / I;
    const double *x = p.fwd.in.x.data, *W = p.fwd.in.W.data, *b = p.fwd.in.bias.data, *y = p.fwd.y.data;
    for (int64_t r = 0; r < R; r++)
        for (int64_t o = 0; o < O; o++) {
            double acc = b ? b[o] : 0.0;
            for (int64_t i = 0; i < I; i++) acc += x[r * I + i] * W[o * I + i]; /* y = x Wᵀ */
            ck_assert_msg(fabs(y[r * O + o] - acc) <= 1e-13, "%s: y[%lld,%lld]", cases[_i].name, (long long)r, (long long)o);
        }
    char what[64];
    snprintf(what, sizeof what, "%s: dx", cases[_i].name);
    lt_check_grad(lin_loss, &p, &p.fwd.in.x, &p.bwd.dx, 1e-6, 1e-7, what);
    snprintf(what, sizeof what, "%s: dW", cases[_i].name);
    lt_check_grad(lin_loss, &p, &p.fwd.in.W, &p.bwd.dW, 1e-6, 1e-7, what);
    if (!m2rnn_tensor_present(&p.fwd.in.bias)) p.fwd.in.bias = lt_tensor(1, O); /* dbias at zero bias */
    snprintf(what, sizeof what, "%s: dbias", cases[_i].name);
    lt_check_grad(lin_loss, &p, &p.fwd.in.bias, &p.bwd.dbias, 1e-6, 1e-7, what);
    problem_free(&p);
}
END_TEST

/* Empty dimensions: no rows, or in = 0 (y = bias), out = 0. */
START_TEST(test_empty)
{
    double W[6] = {0}, b[3] = {1, 2, 3}, y[6], dW[6] = {9, 9, 9, 9, 9, 9}, db[3] = {9, 9, 9}, x[1], dx[1], dy[6] = {1, 1, 1, 1, 1, 1};
    m2rnn_linear_backward_args a = {
        .in = {.x = m2rnn_tensor_of(x, M2RNN_F64, 2, (int64_t)2, (int64_t)0), .W = m2rnn_tensor_of(W, M2RNN_F64, 2, (int64_t)3, (int64_t)0),
               .bias = m2rnn_tensor_of(b, M2RNN_F64, 1, (int64_t)3)},
        .dy = m2rnn_tensor_of(dy, M2RNN_F64, 2, (int64_t)2, (int64_t)3), .dx = m2rnn_tensor_of(dx, M2RNN_F64, 2, (int64_t)2, (int64_t)0),
        .dW = m2rnn_tensor_of(dW, M2RNN_F64, 2, (int64_t)3, (int64_t)0), .dbias = m2rnn_tensor_of(db, M2RNN_F64, 1, (int64_t)3),
    };
    m2rnn_linear_forward_args f = {.in = a.in, .y = m2rnn_tensor_of(y, M2RNN_F64, 2, (int64_t)2, (int64_t)3)};
    ck_assert_msg(m2rnn_linear_forward_ref(&f) == M2RNN_OK, "%s", m2rnn_last_error());
    for (int i = 0; i < 6; i++) ck_assert(y[i] == b[i % 3]);
    ck_assert_msg(m2rnn_linear_backward_ref(&a) == M2RNN_OK, "%s", m2rnn_last_error());
    for (int i = 0; i < 3; i++) ck_assert(db[i] == 2.0);
    /* zero rows */
    a.in.x.shape[0] = a.dy.shape[0] = a.dx.shape[0] = 0;
    a.in.x.shape[1] = a.dx.shape[1] = a.in.W.shape[1] = a.dW.shape[1] = 2;
    ck_assert_msg(m2rnn_linear_backward_ref(&a) == M2RNN_OK, "%s", m2rnn_last_error());
    for (int i = 0; i < 6; i++) ck_assert(dW[i] == 0.0);
    for (int i = 0; i < 3; i++) ck_assert(db[i] == 0.0);
}
END_TEST

START_TEST(test_dtypes)
{
    lin_problem p;
    problem_init(&p, 0, 5);
    run(&p);
    m2rnn_dtype dts[2] = {M2RNN_F32, M2RNN_BF16};
    for (int d = 0; d < 2; d++) {
        lin_problem q = p;
        q.fwd.y = tensor_like(&p.fwd.y, dts[d]);
        q.bwd.dx = tensor_like(&p.bwd.dx, dts[d]);
        q.bwd.dW = tensor_like(&p.bwd.dW, dts[d]);
        q.bwd.dbias = tensor_like(&p.bwd.dbias, dts[d]);
        run(&q);
        m2rnn_tensor *lo[4] = {&q.fwd.y, &q.bwd.dx, &q.bwd.dW, &q.bwd.dbias}, *hi[4] = {&p.fwd.y, &p.bwd.dx, &p.bwd.dW, &p.bwd.dbias};
        for (int o = 0; o < 4; o++)
            for (int64_t e = 0; e < m2rnn_tensor_numel(hi[o]); e++)
                ck_assert(m2rnn_tensor_get(lo[o], e) == m2rnn_round_to(dts[d], m2rnn_tensor_get(hi[o], e)));
        lt_free(lo, 4);
    }
    problem_free(&p);
}
END_TEST

static void expect(lin_problem *p, m2rnn_status want, const char *needle)
{
    m2rnn_tensor *outs[4] = {&p->fwd.y, &p->bwd.dx, &p->bwd.dW, &p->bwd.dbias};
    lt_poison(outs, 4, 31.0);
    p->bwd.in = p->fwd.in;
    m2rnn_status got[2] = {m2rnn_linear_backward(m2rnn_backend_reference(), &p->bwd), m2rnn_linear_backward_ref(&p->bwd)};
    for (int i = 0; i < 2; i++) ck_assert_msg(got[i] == want, "call %d: %d (%s), want %d", i, got[i], m2rnn_last_error(), want);
    ck_assert_msg(strstr(m2rnn_last_error(), needle), "message '%s' does not name '%s'", m2rnn_last_error(), needle);
    lt_assert_poisoned(outs, 4, 31.0, needle);
}

START_TEST(test_errors)
{
    lin_problem p;
    problem_init(&p, 0, 1); /* x (2,3,4), W (5,4), bias (5) */
    void *s;
    s = p.fwd.in.x.data; p.fwd.in.x.data = NULL; expect(&p, M2RNN_ERR_NULL, "x"); p.fwd.in.x.data = s;
    s = p.fwd.in.W.data; p.fwd.in.W.data = NULL; expect(&p, M2RNN_ERR_NULL, "W"); p.fwd.in.W.data = s;
    s = p.bwd.dW.data; p.bwd.dW.data = NULL; expect(&p, M2RNN_ERR_NULL, "dW"); p.bwd.dW.data = s;
    p.fwd.in.W.shape[1] = 3; expect(&p, M2RNN_ERR_SHAPE, "W"); p.fwd.in.W.shape[1] = 4;
    p.fwd.in.bias.shape[0] = 4; expect(&p, M2RNN_ERR_SHAPE, "bias"); p.fwd.in.bias.shape[0] = 5;
    p.bwd.dy.shape[2] = 4; expect(&p, M2RNN_ERR_SHAPE, "dy"); p.bwd.dy.shape[2] = 5;
    p.bwd.dx.shape[0] = 1; expect(&p, M2RNN_ERR_SHAPE, "dx"); p.bwd.dx.shape[0] = 2;
    p.bwd.dbias.shape[0] = 1; expect(&p, M2RNN_ERR_SHAPE, "dbias"); p.bwd.dbias.shape[0] = 5;
    p.fwd.in.x.dtype = M2RNN_I64; expect(&p, M2RNN_ERR_DTYPE, "x"); p.fwd.in.x.dtype = M2RNN_F64;
    p.fwd.y.shape[2] = 4;
    ck_assert_int_eq(m2rnn_linear_forward(m2rnn_backend_reference(), &p.fwd), M2RNN_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(m2rnn_last_error(), "y"));
    ck_assert_int_eq(m2rnn_linear_forward(NULL, &p.fwd), M2RNN_ERR_NULL);
    ck_assert_int_eq(m2rnn_linear_forward_ref(NULL), M2RNN_ERR_NULL);
    p.fwd.y.shape[2] = 5;
    problem_free(&p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("linear");
    TCase *tc = tcase_create("linear");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_values_and_gradients, 0, N_CASES);
    tcase_add_test(tc, test_empty);
    tcase_add_test(tc, test_dtypes);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return run_suite(suite()); }
