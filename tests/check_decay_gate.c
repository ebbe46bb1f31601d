/*
 * The decay gate (SPEC.md §2): values against the formula written out with libm, stability at
 * extreme inputs, finite-difference gradients, the init routine, dtypes, bad input.
 *
 * Finite differences: L = Σ f·w with random w, ε = 1e-6 in double. f is smooth with derivatives
 * of order a^k (a = exp(A_log) <= e here), so the truncation error ε²/6·|L'''| ≈ 1e-12·numel and
 * the rounding error ≈ 1e-16·|L|/ε ≈ 1e-10; |fd - grad| <= 1e-6·(1 + |grad|) leaves >= 3 orders
 * of margin while any real bug (a missing σ, f, or a factor a) moves a gradient by O(|grad|).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer_testutil.h"

typedef struct {
    m2rnn_decay_gate_forward_args fwd;
    m2rnn_decay_gate_backward_args bwd;
} gate_problem;

static void problem_init(gate_problem *p, int rank, const int64_t *shape, uint64_t seed, double xlo, double xhi)
{
    memset(p, 0, sizeof *p);
    test_rng r = {seed};
    int64_t H = shape[rank - 1];
    m2rnn_decay_gate_inputs *in = &p->fwd.in;
    in->x = lt_tensor_dtype(M2RNN_F64, rank, shape);
    in->A_log = lt_tensor(1, H);
    in->dt_bias = lt_tensor(1, H);
    lt_fill(&in->x, &r, xlo, xhi);
    lt_fill(&in->A_log, &r, -1, 1);
    lt_fill(&in->dt_bias, &r, -2, 2);
    p->fwd.f = lt_tensor_dtype(M2RNN_F64, rank, shape);
    p->bwd.in = *in;
    p->bwd.df = lt_tensor_dtype(M2RNN_F64, rank, shape);
    lt_fill(&p->bwd.df, &r, -1, 1);
    p->bwd.dx = lt_tensor_dtype(M2RNN_F64, rank, shape);
    p->bwd.dA_log = lt_tensor(1, H);
    p->bwd.ddt_bias = lt_tensor(1, H);
}

static void problem_free(gate_problem *p)
{
    m2rnn_tensor *all[] = {&p->fwd.in.x, &p->fwd.in.A_log, &p->fwd.in.dt_bias, &p->fwd.f,
                           &p->bwd.df, &p->bwd.dx, &p->bwd.dA_log, &p->bwd.ddt_bias};
    lt_free(all, 8);
}

static double gate_loss(void *ctx)
{
    gate_problem *p = ctx;
    ck_assert_int_eq(m2rnn_decay_gate_forward_ref(&p->fwd), M2RNN_OK);
    return lt_dot(&p->fwd.f, &p->bwd.df);
}

static const struct { const char *name; int rank; int64_t shape[3]; double xlo, xhi; } cases[] = {
    {"BSH", 3, {2, 3, 4}, -3, 3},
    {"packed_TH", 2, {7, 3}, -3, 3},
    {"one_head_rank1", 1, {5}, -3, 3},
    {"wide_inputs", 2, {4, 6}, -25, 25},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

START_TEST(test_gradients)
{
    gate_problem p;
    problem_init(&p, cases[_i].rank, cases[_i].shape, 100 + (uint64_t)_i, cases[_i].xlo, cases[_i].xhi);
    const m2rnn_backend *be = m2rnn_backend_reference();
    ck_assert_msg(m2rnn_decay_gate_forward(be, &p.fwd) == M2RNN_OK, "%s", m2rnn_last_error());
    ck_assert_msg(m2rnn_decay_gate_backward(be, &p.bwd) == M2RNN_OK, "%s", m2rnn_last_error());
    char what[64];
    snprintf(what, sizeof what, "%s: dx", cases[_i].name);
    lt_check_grad(gate_loss, &p, &p.fwd.in.x, &p.bwd.dx, 1e-6, 1e-6, what);
    snprintf(what, sizeof what, "%s: dA_log", cases[_i].name);
    lt_check_grad(gate_loss, &p, &p.fwd.in.A_log, &p.bwd.dA_log, 1e-6, 1e-6, what);
    snprintf(what, sizeof what, "%s: ddt_bias", cases[_i].name);
    lt_check_grad(gate_loss, &p, &p.fwd.in.dt_bias, &p.bwd.ddt_bias, 1e-6, 1e-6, what);
    problem_free(&p);
}
END_TEST

/* The forward against the formula evaluated naively with libm (fine for moderate u), and the
 * ranges: f in (0, 1]. */
START_TEST(test_values)
{
    int64_t shape[2] = {9, 4};
    gate_problem p;
    problem_init(&p, 2, shape, 7, -5, 5);
    ck_assert_int_eq(m2rnn_decay_gate_forward_ref(&p.fwd), M2RNN_OK);
    for (int64_t r = 0; r < 9; r++)
        for (int64_t h = 0; h < 4; h++) {
            double x = m2rnn_tensor_get(&p.fwd.in.x, r * 4 + h), A_log = m2rnn_tensor_get(&p.fwd.in.A_log, h);
            double dt = m2rnn_tensor_get(&p.fwd.in.dt_bias, h);
            double want = exp(-exp(A_log) * log(1.0 + exp(x + dt)));
            double got = m2rnn_tensor_get(&p.fwd.f, r * 4 + h);
            ck_assert_msg(fabs(got - want) <= 1e-14, "f[%lld,%lld] = %.17g, want %.17g", (long long)r, (long long)h, got, want);
            ck_assert(got > 0 && got <= 1);
        }
    problem_free(&p);
}
END_TEST

/* Extreme inputs: softplus must neither overflow (u = 800: e^u is inf) nor lose its tiny value
 * (u = -40: log(1 + e^u) rounds to 0 naively; log1p keeps e^-40). Gradients stay finite. */
START_TEST(test_stability)
{
    double xs[4] = {800.0, -800.0, -40.0, 0.0};
    double A_log[1] = {0.0}, dt[1] = {0.0}, f[4], df[4] = {1, 1, 1, 1}, dx[4], dA[1], ddt[1];
    m2rnn_decay_gate_forward_args fa = {
        .in = {.x = m2rnn_tensor_of(xs, M2RNN_F64, 2, (int64_t)4, (int64_t)1),
               .A_log = m2rnn_tensor_of(A_log, M2RNN_F64, 1, (int64_t)1),
               .dt_bias = m2rnn_tensor_of(dt, M2RNN_F64, 1, (int64_t)1)},
        .f = m2rnn_tensor_of(f, M2RNN_F64, 2, (int64_t)4, (int64_t)1),
    };
    ck_assert_int_eq(m2rnn_decay_gate_forward_ref(&fa), M2RNN_OK);
    ck_assert(f[0] == 0.0);                      /* exp(-800) underflows to 0 */
    ck_assert(f[1] == 1.0);                      /* softplus(-800) = e^-800 = 0 in double */
    ck_assert(f[2] == 1.0);                      /* 1 - e^-40 rounds to 1; the gradients below keep e^-40 */
    ck_assert(fabs(f[3] - 0.5) < 1e-16);         /* exp(-log 2) */
    m2rnn_decay_gate_backward_args ba = {
        .in = fa.in, .df = m2rnn_tensor_of(df, M2RNN_F64, 2, (int64_t)4, (int64_t)1),
        .dx = m2rnn_tensor_of(dx, M2RNN_F64, 2, (int64_t)4, (int64_t)1),
        .dA_log = m2rnn_tensor_of(dA, M2RNN_F64, 1, (int64_t)1), .ddt_bias = m2rnn_tensor_of(ddt, M2RNN_F64, 1, (int64_t)1),
    };
    ck_assert_int_eq(m2rnn_decay_gate_backward_ref(&ba), M2RNN_OK);
    for (int i = 0; i < 4; i++) ck_assert_msg(isfinite(dx[i]), "dx[%d] = %g", i, dx[i]);
    ck_assert(isfinite(dA[0]) && isfinite(ddt[0]));
    ck_assert(fabs(dx[3] - (-0.5 * 0.5)) < 1e-16); /* -a σ(0) f = -1·0.5·0.5 */
    /* dx[2] = -σ(-40)·f ≈ -e^-40 (kept, not rounded to 0); dA_log = -Σ_r s_r f_r. */
    ck_assert(fabs(dx[2] + exp(-40.0)) < 1e-30);
    ck_assert(fabs(dA[0] - (-(800.0 * f[0] + 0.0 + exp(-40.0) * f[2] + log(2.0) * f[3]))) < 1e-15);
}
END_TEST

/* Storage dtypes: f32/bf16 outputs are the f64 results rounded once; bf16 inputs are widened
 * exactly (the f64 run on the widened values gives the same result). */
START_TEST(test_dtypes)
{
    int64_t shape[3] = {2, 5, 3};
    gate_problem p;
    problem_init(&p, 3, shape, 11, -4, 4);
    ck_assert_int_eq(m2rnn_decay_gate_forward_ref(&p.fwd), M2RNN_OK);
    ck_assert_int_eq(m2rnn_decay_gate_backward_ref(&p.bwd), M2RNN_OK);
    m2rnn_dtype dts[3] = {M2RNN_F32, M2RNN_BF16, M2RNN_F16};
    for (int d = 0; d < 3; d++) {
        gate_problem q = p;
        q.fwd.f = lt_tensor_dtype(dts[d], 3, shape);
        q.bwd.dx = lt_tensor_dtype(dts[d], 3, shape);
        q.bwd.dA_log = lt_tensor_dtype(dts[d], 1, shape + 2);
        q.bwd.ddt_bias = lt_tensor_dtype(dts[d], 1, shape + 2);
        ck_assert_int_eq(m2rnn_decay_gate_forward_ref(&q.fwd), M2RNN_OK);
        ck_assert_int_eq(m2rnn_decay_gate_backward_ref(&q.bwd), M2RNN_OK);
        const m2rnn_tensor *lo[4] = {&q.fwd.f, &q.bwd.dx, &q.bwd.dA_log, &q.bwd.ddt_bias};
        const m2rnn_tensor *hi[4] = {&p.fwd.f, &p.bwd.dx, &p.bwd.dA_log, &p.bwd.ddt_bias};
        for (int o = 0; o < 4; o++) {
            int64_t n = m2rnn_tensor_numel(hi[o]);
            for (int64_t e = 0; e < n; e++)
                ck_assert_msg(m2rnn_tensor_get(lo[o], e) == m2rnn_round_to(dts[d], m2rnn_tensor_get(hi[o], e)),
                              "%s output %d element %lld is not the f64 value rounded once", m2rnn_dtype_name(dts[d]), o,
                              (long long)e);
        }
        m2rnn_tensor *own[4] = {&q.fwd.f, &q.bwd.dx, &q.bwd.dA_log, &q.bwd.ddt_bias};
        lt_free(own, 4);
    }
    /* bf16 input x: same as f64 over the widened values. */
    m2rnn_tensor xb = lt_tensor_dtype(M2RNN_BF16, 3, shape);
    int64_t n = m2rnn_tensor_numel(&xb);
    for (int64_t e = 0; e < n; e++) {
        m2rnn_tensor_set(&xb, e, m2rnn_tensor_get(&p.fwd.in.x, e));
        m2rnn_tensor_set(&p.fwd.in.x, e, m2rnn_tensor_get(&xb, e));
    }
    m2rnn_tensor f_ref = lt_tensor_dtype(M2RNN_F64, 3, shape);
    m2rnn_decay_gate_forward_args fb = p.fwd;
    fb.in.x = xb;
    ck_assert_int_eq(m2rnn_decay_gate_forward_ref(&fb), M2RNN_OK);
    fb.in.x = p.fwd.in.x;
    fb.f = f_ref;
    ck_assert_int_eq(m2rnn_decay_gate_forward_ref(&fb), M2RNN_OK);
    assert_tensors_equal(&p.fwd.f, &f_ref, "bf16 x widened exactly");
    free(xb.data);
    free(f_ref.data);
    problem_free(&p);
}
END_TEST

/* Init: A = exp(A_log) in (0, 16], softplus(dt_bias) = dt in [1e-3, 0.1], seeded. */
START_TEST(test_init)
{
    enum { H = 2000 };
    m2rnn_tensor A_log = lt_tensor(1, (int64_t)H), dt_bias = lt_tensor(1, (int64_t)H);
    m2rnn_tensor A_log2 = lt_tensor(1, (int64_t)H), dt_bias2 = lt_tensor(1, (int64_t)H);
    m2rnn_rng r1 = m2rnn_rng_seed(5), r2 = m2rnn_rng_seed(5), r3 = m2rnn_rng_seed(6);
    ck_assert_int_eq(m2rnn_decay_gate_init(&A_log, &dt_bias, &r1), M2RNN_OK);
    ck_assert_int_eq(m2rnn_decay_gate_init(&A_log2, &dt_bias2, &r2), M2RNN_OK);
    assert_tensors_equal(&A_log, &A_log2, "same seed, same A_log");
    assert_tensors_equal(&dt_bias, &dt_bias2, "same seed, same dt_bias");
    ck_assert_int_eq(m2rnn_decay_gate_init(&A_log2, &dt_bias2, &r3), M2RNN_OK);
    ck_assert(memcmp(A_log.data, A_log2.data, H * sizeof(double)) != 0);
    double Amin = 1e300, Amax = 0, dtmin = 1e300, dtmax = 0, Asum = 0, logdt_sum = 0;
    for (int h = 0; h < H; h++) {
        double A = exp(((double *)A_log.data)[h]);
        double u = ((double *)dt_bias.data)[h];
        double dt = fmax(u, 0.0) + log1p(exp(-fabs(u)));
        Amin = fmin(Amin, A); Amax = fmax(Amax, A); Asum += A;
        dtmin = fmin(dtmin, dt); dtmax = fmax(dtmax, dt); logdt_sum += log(dt);
    }
    ck_assert(Amin > 0 && Amax <= 16.0 * (1 + 1e-15));
    ck_assert(dtmin >= 1e-3 * (1 - 1e-12) && dtmax <= 0.1 * (1 + 1e-12));
    /* Means: U(0,16) has mean 8, sd 4.6, so the mean of 2000 is 8 ± 0.1 (1σ); log dt is uniform on
     * [log 1e-3, log 0.1] with mean log 1e-2 and sd 1.33, so its mean is -4.605 ± 0.03. 6σ bounds. */
    ck_assert_msg(fabs(Asum / H - 8.0) < 0.6, "mean A %g", Asum / H);
    ck_assert_msg(fabs(logdt_sum / H - log(1e-2)) < 0.18, "mean log dt %g", logdt_sum / H);
    /* bad input */
    m2rnn_tensor short_dt = lt_tensor(1, (int64_t)3);
    ck_assert_int_eq(m2rnn_decay_gate_init(&A_log, &short_dt, &r1), M2RNN_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(m2rnn_last_error(), "dt_bias"));
    ck_assert_int_eq(m2rnn_decay_gate_init(&A_log, &dt_bias, NULL), M2RNN_ERR_NULL);
    m2rnn_tensor *all[5] = {&A_log, &dt_bias, &A_log2, &dt_bias2, &short_dt};
    lt_free(all, 5);
}
END_TEST

/* Bad input: the status, a message naming the argument, nothing written. */
static void expect_error(gate_problem *p, m2rnn_status want, const char *needle)
{
    m2rnn_tensor *outs[4] = {&p->fwd.f, &p->bwd.dx, &p->bwd.dA_log, &p->bwd.ddt_bias};
    const m2rnn_backend *be = m2rnn_backend_reference();
    p->bwd.in = p->fwd.in;
    lt_poison(outs, 4, 777.0);
    m2rnn_status got[2] = {m2rnn_decay_gate_backward(be, &p->bwd), m2rnn_decay_gate_backward_ref(&p->bwd)};
    for (int i = 0; i < 2; i++)
        ck_assert_msg(got[i] == want, "backward call %d: %d (%s), want %d", i, got[i], m2rnn_last_error(), want);
    ck_assert_msg(strstr(m2rnn_last_error(), needle), "message '%s' does not name '%s'", m2rnn_last_error(), needle);
    lt_assert_poisoned(outs, 4, 777.0, needle);
}

static void expect_forward_error(gate_problem *p, m2rnn_status want, const char *needle)
{
    m2rnn_tensor *outs[1] = {&p->fwd.f};
    lt_poison(outs, 1, 777.0);
    m2rnn_status got[2] = {m2rnn_decay_gate_forward(m2rnn_backend_reference(), &p->fwd), m2rnn_decay_gate_forward_ref(&p->fwd)};
    for (int i = 0; i < 2; i++)
        ck_assert_msg(got[i] == want, "forward call %d: %d (%s), want %d", i, got[i], m2rnn_last_error(), want);
    ck_assert_msg(strstr(m2rnn_last_error(), needle), "message '%s' does not name '%s'", m2rnn_last_error(), needle);
    lt_assert_poisoned(outs, 1, 777.0, needle);
}

START_TEST(test_errors)
{
    int64_t shape[3] = {2, 3, 4};
    gate_problem p;
    problem_init(&p, 3, shape, 3, -1, 1);
    void *saved;
    /* missing tensors */
    saved = p.fwd.in.x.data; p.fwd.in.x.data = NULL;
    expect_forward_error(&p, M2RNN_ERR_NULL, "x"); expect_error(&p, M2RNN_ERR_NULL, "x");
    p.fwd.in.x.data = saved;
    saved = p.fwd.in.A_log.data; p.fwd.in.A_log.data = NULL;
    expect_forward_error(&p, M2RNN_ERR_NULL, "A_log");
    p.fwd.in.A_log.data = saved;
    saved = p.fwd.f.data; p.fwd.f.data = NULL;
    ck_assert_int_eq(m2rnn_decay_gate_forward_ref(&p.fwd), M2RNN_ERR_NULL);
    p.fwd.f.data = saved;
    saved = p.bwd.df.data; p.bwd.df.data = NULL;
    expect_error(&p, M2RNN_ERR_NULL, "df");
    p.bwd.df.data = saved;
    saved = p.bwd.ddt_bias.data; p.bwd.ddt_bias.data = NULL;
    expect_error(&p, M2RNN_ERR_NULL, "ddt_bias");
    p.bwd.ddt_bias.data = saved;
    /* shapes */
    p.fwd.in.A_log.shape[0] = 3;
    expect_forward_error(&p, M2RNN_ERR_SHAPE, "A_log");
    p.fwd.in.A_log.shape[0] = 4;
    p.fwd.in.dt_bias.rank = 2; p.fwd.in.dt_bias.shape[1] = 1;
    expect_forward_error(&p, M2RNN_ERR_SHAPE, "dt_bias");
    p.fwd.in.dt_bias.rank = 1;
    p.fwd.f.shape[1] = 2;
    expect_forward_error(&p, M2RNN_ERR_SHAPE, "f");
    p.fwd.f.shape[1] = 3;
    p.bwd.dx.shape[0] = 1;
    expect_error(&p, M2RNN_ERR_SHAPE, "dx");
    p.bwd.dx.shape[0] = 2;
    p.bwd.dA_log.shape[0] = 5;
    expect_error(&p, M2RNN_ERR_SHAPE, "dA_log");
    p.bwd.dA_log.shape[0] = 4;
    p.fwd.in.x.shape[2] = 0; p.fwd.in.x.shape[1] = 0;
    expect_forward_error(&p, M2RNN_ERR_SHAPE, "x");
    p.fwd.in.x.shape[2] = 4; p.fwd.in.x.shape[1] = 3;
    p.fwd.in.x.rank = 0;
    expect_forward_error(&p, M2RNN_ERR_SHAPE, "x");
    p.fwd.in.x.rank = 3;
    /* dtypes */
    p.fwd.in.dt_bias.dtype = M2RNN_I64;
    expect_forward_error(&p, M2RNN_ERR_DTYPE, "dt_bias");
    p.fwd.in.dt_bias.dtype = M2RNN_F64;
    /* NULL struct, NULL backend */
    ck_assert_int_eq(m2rnn_decay_gate_forward_ref(NULL), M2RNN_ERR_NULL);
    ck_assert_int_eq(m2rnn_decay_gate_backward(m2rnn_backend_reference(), NULL), M2RNN_ERR_NULL);
    ck_assert_int_eq(m2rnn_decay_gate_forward(NULL, &p.fwd), M2RNN_ERR_NULL);
    /* and the valid problem still passes */
    ck_assert_int_eq(m2rnn_decay_gate_forward(m2rnn_backend_reference(), &p.fwd), M2RNN_OK);
    ck_assert(m2rnn_backend_supports(m2rnn_backend_reference(), M2RNN_OP_DECAY_GATE_BACKWARD, &p.bwd));
    ck_assert_str_eq(m2rnn_op_name(M2RNN_OP_DECAY_GATE_FORWARD), "decay_gate_forward");
    problem_free(&p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("decay_gate");
    TCase *tc = tcase_create("decay_gate");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_gradients, 0, N_CASES);
    tcase_add_test(tc, test_values);
    tcase_add_test(tc, test_stability);
    tcase_add_test(tc, test_dtypes);
    tcase_add_test(tc, test_init);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return run_suite(suite()); }
