/*
 * SiLU and the SwiGLU MLP: values against the formulas written out, finite differences for every
 * gradient, SiLU at extreme arguments, bad input.
 *
 * Finite differences: L = Σ y·dy, ε = 1e-6, O(1) inputs and weights, so third derivatives are
 * O(d·h) ≈ 1e2 at most: truncation ≈ ε²/6·1e2 ≈ 2e-11, rounding ≈ 1e-16·|L|/ε ≈ 1e-10. Bound
 * 1e-6·(1 + |grad|); swapping gate and up, or SiLU' for σ, moves gradients by O(1).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer_testutil.h"

/* ---- SiLU -------------------------------------------------------------------------------- */

typedef struct {
    m2rnn_silu_forward_args fwd;
    m2rnn_silu_backward_args bwd;
} silu_problem;

static double silu_loss(void *ctx)
{
    silu_problem *p = ctx;
    ck_assert_int_eq(m2rnn_silu_forward_ref(&p->fwd), M2RNN_OK);
    return lt_dot(&p->fwd.y, &p->bwd.dy);
}

START_TEST(test_silu)
{
    test_rng r = {3};
    silu_problem p = {0};
    p.fwd.x = lt_tensor(2, (int64_t)4, (int64_t)5);
    lt_fill(&p.fwd.x, &r, -6, 6);
    p.fwd.y = lt_tensor(2, (int64_t)4, (int64_t)5);
    p.bwd.x = p.fwd.x;
    p.bwd.dy = lt_tensor(2, (int64_t)4, (int64_t)5);
    lt_fill(&p.bwd.dy, &r, -1, 1);
    p.bwd.dx = lt_tensor(2, (int64_t)4, (int64_t)5);
    ck_assert_int_eq(m2rnn_silu_forward(m2rnn_backend_reference(), &p.fwd), M2RNN_OK);
    ck_assert_int_eq(m2rnn_silu_backward(m2rnn_backend_reference(), &p.bwd), M2RNN_OK);
    for (int e = 0; e < 20; e++) {
        double x = ((double *)p.fwd.x.data)[e];
        ck_assert(fabs(((double *)p.fwd.y.data)[e] - x / (1 + exp(-x))) <= 1e-15);
    }
    lt_check_grad(silu_loss, &p, &p.fwd.x, &p.bwd.dx, 1e-6, 1e-6, "silu: dx");
    /* extremes: no overflow, the right limits */
    double xs[4] = {-800, 800, -40, 0}, ys[4], dys[4] = {1, 1, 1, 1}, dxs[4];
    m2rnn_silu_forward_args f = {.x = m2rnn_tensor_of(xs, M2RNN_F64, 1, (int64_t)4), .y = m2rnn_tensor_of(ys, M2RNN_F64, 1, (int64_t)4)};
    m2rnn_silu_backward_args b = {.x = f.x, .dy = m2rnn_tensor_of(dys, M2RNN_F64, 1, (int64_t)4), .dx = m2rnn_tensor_of(dxs, M2RNN_F64, 1, (int64_t)4)};
    ck_assert_int_eq(m2rnn_silu_forward_ref(&f), M2RNN_OK);
    ck_assert_int_eq(m2rnn_silu_backward_ref(&b), M2RNN_OK);
    ck_assert(ys[0] == 0.0 && ys[1] == 800.0 && ys[3] == 0.0 && fabs(ys[2] + 40 * exp(-40.0)) < 1e-30);
    ck_assert(dxs[0] == 0.0 && dxs[1] == 1.0 && dxs[3] == 0.5);
    /* errors */
    p.bwd.dx.shape[0] = 3;
    ck_assert_int_eq(m2rnn_silu_backward(m2rnn_backend_reference(), &p.bwd), M2RNN_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(m2rnn_last_error(), "dx"));
    p.bwd.dx.shape[0] = 4;
    void *s = p.fwd.y.data; p.fwd.y.data = NULL;
    ck_assert_int_eq(m2rnn_silu_forward_ref(&p.fwd), M2RNN_ERR_NULL);
    ck_assert_ptr_nonnull(strstr(m2rnn_last_error(), "y"));
    p.fwd.y.data = s;
    m2rnn_tensor *all[4] = {&p.fwd.x, &p.fwd.y, &p.bwd.dy, &p.bwd.dx};
    lt_free(all, 4);
}
END_TEST

/* ---- MLP --------------------------------------------------------------------------------- */

typedef struct {
    m2rnn_mlp_forward_args fwd;
    m2rnn_mlp_backward_args bwd;
} mlp_problem;

static void mlp_init(mlp_problem *p, int rank, const int64_t *xshape, int64_t h, uint64_t seed)
{
    memset(p, 0, sizeof *p);
    test_rng r = {seed};
    int64_t d = xshape[rank - 1];
    m2rnn_mlp_inputs *in = &p->fwd.in;
    in->x = lt_tensor_dtype(M2RNN_F64, rank, xshape);
    in->W_gate = lt_tensor(2, h, d);
    in->W_up = lt_tensor(2, h, d);
    in->W_down = lt_tensor(2, d, h);
    lt_fill(&in->x, &r, -1, 1);
    lt_fill(&in->W_gate, &r, -1, 1);
    lt_fill(&in->W_up, &r, -1, 1);
    lt_fill(&in->W_down, &r, -1, 1);
    p->fwd.y = tensor_like(&in->x, M2RNN_F64);
    p->bwd.in = *in;
    p->bwd.dy = tensor_like(&in->x, M2RNN_F64);
    lt_fill(&p->bwd.dy, &r, -1, 1);
    p->bwd.dx = tensor_like(&in->x, M2RNN_F64);
    p->bwd.dW_gate = tensor_like(&in->W_gate, M2RNN_F64);
    p->bwd.dW_up = tensor_like(&in->W_up, M2RNN_F64);
    p->bwd.dW_down = tensor_like(&in->W_down, M2RNN_F64);
}

static void mlp_free(mlp_problem *p)
{
    m2rnn_tensor *all[] = {&p->fwd.in.x, &p->fwd.in.W_gate, &p->fwd.in.W_up, &p->fwd.in.W_down, &p->fwd.y,
                           &p->bwd.dy, &p->bwd.dx, &p->bwd.dW_gate, &p->bwd.dW_up, &p->bwd.dW_down};
    lt_free(all, 10);
}

static double mlp_loss(void *ctx)
{
    mlp_problem *p = ctx;
    ck_assert_int_eq(m2rnn_mlp_forward_ref(&p->fwd), M2RNN_OK);
    return lt_dot(&p->fwd.y, &p->bwd.dy);
}

START_TEST(test_mlp)
{
    const struct { int rank; int64_t shape[3]; int64_t h; } cs[3] = {{3, {2, 3, 4}, 6}, {2, {5, 3}, 2}, {2, {4, 24}, 40}};
    mlp_problem p;
    mlp_init(&p, cs[_i].rank, cs[_i].shape, cs[_i].h, 80 + (uint64_t)_i);
    ck_assert_int_eq(m2rnn_mlp_forward(m2rnn_backend_reference(), &p.fwd), M2RNN_OK);
    ck_assert_int_eq(m2rnn_mlp_backward(m2rnn_backend_reference(), &p.bwd), M2RNN_OK);
    const int64_t d = p.fwd.in.x.shape[p.fwd.in.x.rank - 1], h = cs[_i].h, R = m2rnn_tensor_numel(&p.fwd.in.x) / d;
    const double *x = p.fwd.in.x.data, *Wg = p.fwd.in.W_gate.data, *Wu = p.fwd.in.W_up.data, *Wd = p.fwd.in.W_down.data;
    for (int64_t r = 0; r < R; r++)
        for (int64_t o = 0; o < d; o++) {
            double acc = 0;
            for (int64_t j = 0; j < h; j++) {
                double g = 0, u = 0;
                for (int64_t i = 0; i < d; i++) { g += x[r * d + i] * Wg[j * d + i]; u += x[r * d + i] * Wu[j * d + i]; }
                acc += Wd[o * h + j] * (g / (1 + exp(-g))) * u;
            }
            ck_assert_msg(fabs(((double *)p.fwd.y.data)[r * d + o] - acc) <= 1e-12 * (1 + fabs(acc)), "y[%lld,%lld]",
                          (long long)r, (long long)o);
        }
    lt_check_grad(mlp_loss, &p, &p.fwd.in.x, &p.bwd.dx, 1e-6, 1e-6, "mlp: dx");
    lt_check_grad(mlp_loss, &p, &p.fwd.in.W_gate, &p.bwd.dW_gate, 1e-6, 1e-6, "mlp: dW_gate");
    lt_check_grad(mlp_loss, &p, &p.fwd.in.W_up, &p.bwd.dW_up, 1e-6, 1e-6, "mlp: dW_up");
    lt_check_grad(mlp_loss, &p, &p.fwd.in.W_down, &p.bwd.dW_down, 1e-6, 1e-6, "mlp: dW_down");
    mlp_free(&p);
}
END_TEST

static void expect(mlp_problem *p, m2rnn_status want, const char *needle)
{
    m2rnn_tensor *outs[5] = {&p->bwd.dx, &p->bwd.dW_gate, &p->bwd.dW_up, &p->bwd.dW_down, &p->fwd.y};
    lt_poison(outs, 5, 31.0);
    p->bwd.in = p->fwd.in;
    m2rnn_status got[2] = {m2rnn_mlp_backward(m2rnn_backend_reference(), &p->bwd), m2rnn_mlp_backward_ref(&p->bwd)};
    for (int i = 0; i < 2; i++) ck_assert_msg(got[i] == want, "call %d: %d (%s), want %d", i, got[i], m2rnn_last_error(), want);
    ck_assert_msg(strstr(m2rnn_last_error(), needle), "message '%s' does not name '%s'", m2rnn_last_error(), needle);
    lt_assert_poisoned(outs, 5, 31.0, needle);
}

START_TEST(test_mlp_errors)
{
    int64_t xs[2] = {3, 4};
    mlp_problem p;
    mlp_init(&p, 2, xs, 5, 1);
    void *s;
    s = p.fwd.in.W_up.data; p.fwd.in.W_up.data = NULL; expect(&p, M2RNN_ERR_NULL, "W_up"); p.fwd.in.W_up.data = s;
    s = p.bwd.dW_down.data; p.bwd.dW_down.data = NULL; expect(&p, M2RNN_ERR_NULL, "dW_down"); p.bwd.dW_down.data = s;
    p.fwd.in.W_gate.shape[1] = 3; expect(&p, M2RNN_ERR_SHAPE, "W_gate"); p.fwd.in.W_gate.shape[1] = 4;
    p.fwd.in.W_up.shape[0] = 4; expect(&p, M2RNN_ERR_SHAPE, "W_up"); p.fwd.in.W_up.shape[0] = 5;
    p.fwd.in.W_down.shape[0] = 5; p.fwd.in.W_down.shape[1] = 4; expect(&p, M2RNN_ERR_SHAPE, "W_down");
    p.fwd.in.W_down.shape[0] = 4; p.fwd.in.W_down.shape[1] = 5;
    p.bwd.dW_gate.shape[0] = 1; expect(&p, M2RNN_ERR_SHAPE, "dW_gate"); p.bwd.dW_gate.shape[0] = 5;
    p.bwd.dx.shape[0] = 2; expect(&p, M2RNN_ERR_SHAPE, "dx"); p.bwd.dx.shape[0] = 3;
    p.fwd.in.x.dtype = M2RNN_I32; expect(&p, M2RNN_ERR_DTYPE, "x"); p.fwd.in.x.dtype = M2RNN_F64;
    ck_assert_int_eq(m2rnn_mlp_forward(NULL, &p.fwd), M2RNN_ERR_NULL);
    ck_assert_int_eq(m2rnn_mlp_forward_ref(NULL), M2RNN_ERR_NULL);
    mlp_free(&p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("mlp");
    TCase *tc = tcase_create("mlp");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_silu);
    tcase_add_loop_test(tc, test_mlp, 0, 3);
    tcase_add_test(tc, test_mlp_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return run_suite(suite()); }
