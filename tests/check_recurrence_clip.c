/*
 * State-gradient clipping (SPEC.md §1.2), both conventions.
 *
 * The hand-checkable case is the scalar recurrence (K = V = N = 1, S = 2), written out below
 * step by step from SPEC.md: every quantity is a named scalar, so a reader can follow it on paper.
 * The data are chosen so that clipping bites differently in each convention: dht = 3 is outside
 * the bound (carry clamps it, total clamps the sum q·dy + G instead), and the results of NONE,
 * CARRY and TOTAL are asserted to differ from each other, so the test cannot pass by ignoring
 * the mode.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef struct { double dq[2], dk[2], dv[2], df[2], dW, dh0; } scalar_grads;

static double clampc(double x, double c) { return x > c ? c : x < -c ? -c : x; }

/* The scalar recurrence and its backward, spelled out. */
static scalar_grads scalar_case(m2rnn_clip_mode mode, double c)
{
    const double q[2] = {0.7, -1.3}, k[2] = {0.9, 0.4}, v[2] = {-0.6, 1.1}, f[2] = {0.3, 0.8};
    const double w = 0.5, h0 = 0.2, dy[2] = {1.5, -0.9}, dht = 3.0;
    c = fabs(c);
    /* forward */
    double A0 = h0 * w + k[0] * v[0], Z0 = tanh(A0), H0 = f[0] * h0 + (1 - f[0]) * Z0;
    double A1 = H0 * w + k[1] * v[1], Z1 = tanh(A1), H1 = f[1] * H0 + (1 - f[1]) * Z1;
    (void)A1;
    /* backward, t = 1 */
    scalar_grads g;
    double G = dht;
    if (mode == M2RNN_CLIP_CARRY) G = clampc(G, c);
    double D1 = q[1] * dy[1] + G;
    if (mode == M2RNN_CLIP_TOTAL) D1 = clampc(D1, c);
    g.dq[1] = H1 * dy[1];
    g.df[1] = D1 * (H0 - Z1);
    double dA1 = (1 - f[1]) * D1 * (1 - Z1 * Z1);
    G = f[1] * D1 + dA1 * w;
    g.dW = H0 * dA1;
    g.dk[1] = dA1 * v[1];
    g.dv[1] = dA1 * k[1];
    /* t = 0 */
    if (mode == M2RNN_CLIP_CARRY) G = clampc(G, c);
    double D0 = q[0] * dy[0] + G;
    if (mode == M2RNN_CLIP_TOTAL) D0 = clampc(D0, c);
    g.dq[0] = H0 * dy[0];
    g.df[0] = D0 * (h0 - Z0);
    double dA0 = (1 - f[0]) * D0 * (1 - Z0 * Z0);
    G = f[0] * D0 + dA0 * w;
    g.dW += h0 * dA0;
    g.dk[0] = dA0 * v[0];
    g.dv[0] = dA0 * k[0];
    g.dh0 = G; /* never clipped */
    return g;
}

/* The same case through the reference. */
static scalar_grads reference_case(m2rnn_clip_mode mode, double c)
{
    double q[2] = {0.7, -1.3}, k[2] = {0.9, 0.4}, v[2] = {-0.6, 1.1}, f[2] = {0.3, 0.8};
    double w = 0.5, h0 = 0.2, dy[2] = {1.5, -0.9}, dht = 3.0, y[2], ht;
    scalar_grads g;
    m2rnn_recurrence_backward_args a = {0};
    a.in.q = m2rnn_tensor_of(q, M2RNN_F64, 4, (int64_t)1, (int64_t)2, (int64_t)1, (int64_t)1);
    a.in.k = m2rnn_tensor_of(k, M2RNN_F64, 4, (int64_t)1, (int64_t)2, (int64_t)1, (int64_t)1);
    a.in.v = m2rnn_tensor_of(v, M2RNN_F64, 4, (int64_t)1, (int64_t)2, (int64_t)1, (int64_t)1);
    a.in.f = m2rnn_tensor_of(f, M2RNN_F64, 3, (int64_t)1, (int64_t)2, (int64_t)1);
    a.in.W = m2rnn_tensor_of(&w, M2RNN_F64, 3, (int64_t)1, (int64_t)1, (int64_t)1);
    a.in.h0 = m2rnn_tensor_of(&h0, M2RNN_F64, 4, (int64_t)1, (int64_t)1, (int64_t)1, (int64_t)1);
    a.dy = m2rnn_tensor_of(dy, M2RNN_F64, 4, (int64_t)1, (int64_t)2, (int64_t)1, (int64_t)1);
    a.dht = m2rnn_tensor_of(&dht, M2RNN_F64, 4, (int64_t)1, (int64_t)1, (int64_t)1, (int64_t)1);
    a.clip_mode = mode;
    a.clip = c;
    a.dq = m2rnn_tensor_of(g.dq, M2RNN_F64, 4, (int64_t)1, (int64_t)2, (int64_t)1, (int64_t)1);
    a.dk = m2rnn_tensor_of(g.dk, M2RNN_F64, 4, (int64_t)1, (int64_t)2, (int64_t)1, (int64_t)1);
    a.dv = m2rnn_tensor_of(g.dv, M2RNN_F64, 4, (int64_t)1, (int64_t)2, (int64_t)1, (int64_t)1);
    a.df = m2rnn_tensor_of(g.df, M2RNN_F64, 3, (int64_t)1, (int64_t)2, (int64_t)1);
    a.dW = m2rnn_tensor_of(&g.dW, M2RNN_F64, 3, (int64_t)1, (int64_t)1, (int64_t)1);
    a.dh0 = m2rnn_tensor_of(&g.dh0, M2RNN_F64, 4, (int64_t)1, (int64_t)1, (int64_t)1, (int64_t)1);
    ck_assert_msg(m2rnn_recurrence_backward(m2rnn_backend_reference(), &a) == M2RNN_OK, "%s", m2rnn_last_error());
    m2rnn_recurrence_forward_args fa = {.in = a.in};
    fa.y = m2rnn_tensor_of(y, M2RNN_F64, 4, (int64_t)1, (int64_t)2, (int64_t)1, (int64_t)1);
    fa.ht = m2rnn_tensor_of(&ht, M2RNN_F64, 4, (int64_t)1, (int64_t)1, (int64_t)1, (int64_t)1);
    ck_assert_int_eq(m2rnn_recurrence_forward(m2rnn_backend_reference(), &fa), M2RNN_OK); /* clip: backward only */
    return g;
}

static void assert_grads_close(scalar_grads a, scalar_grads b, const char *what)
{
    const double *x = (const double *)&a, *y = (const double *)&b;
    for (size_t i = 0; i < sizeof a / sizeof(double); i++)
        ck_assert_msg(fabs(x[i] - y[i]) <= 1e-14 * (1 + fabs(y[i])), "%s: gradient %zu: %.17g vs %.17g", what, i, x[i], y[i]);
}

static bool grads_differ(scalar_grads a, scalar_grads b)
{
    return memcmp(&a, &b, sizeof a) != 0;
}

START_TEST(test_scalar_case_by_hand)
{
    const m2rnn_clip_mode modes[] = {M2RNN_CLIP_NONE, M2RNN_CLIP_CARRY, M2RNN_CLIP_TOTAL};
    const double bounds[] = {1.0, 0.25, 0.0};
    for (int m = 0; m < 3; m++)
        for (int b = 0; b < 3; b++)
            assert_grads_close(reference_case(modes[m], bounds[b]), scalar_case(modes[m], bounds[b]), "by hand");
    /* The case discriminates: the three conventions give three different answers. */
    ck_assert(grads_differ(scalar_case(M2RNN_CLIP_NONE, 1), scalar_case(M2RNN_CLIP_CARRY, 1)));
    ck_assert(grads_differ(scalar_case(M2RNN_CLIP_NONE, 1), scalar_case(M2RNN_CLIP_TOTAL, 1)));
    ck_assert(grads_differ(scalar_case(M2RNN_CLIP_CARRY, 1), scalar_case(M2RNN_CLIP_TOTAL, 1)));
}
END_TEST

/* c = 0, carry: the carried G is zero at the top of every step, so each step sees only its own
 * q dyᵀ; dh0 is then f_0 D_0 + dA_0 W, not zero (dh0 is never clipped). */
START_TEST(test_zero_bound)
{
    scalar_grads g = reference_case(M2RNN_CLIP_CARRY, 0.0);
    assert_grads_close(g, scalar_case(M2RNN_CLIP_CARRY, 0.0), "carry c=0");
    ck_assert(g.dh0 != 0.0);
    scalar_grads t = reference_case(M2RNN_CLIP_TOTAL, 0.0);
    /* total c=0: every D_t is zero, so every gradient that flows through D is zero; dq = H_t dy_t
     * does not, and is the unclipped one. */
    scalar_grads none = reference_case(M2RNN_CLIP_NONE, 0.0);
    for (int t2 = 0; t2 < 2; t2++) {
        ck_assert(t.dk[t2] == 0.0 && t.dv[t2] == 0.0 && t.df[t2] == 0.0);
        ck_assert(t.dq[t2] == none.dq[t2] && t.dq[t2] != 0.0);
    }
    ck_assert(t.dW == 0.0 && t.dh0 == 0.0);
}
END_TEST

/* The same general problem under several clip settings; the outputs as doubles. */
static void run_general(m2rnn_clip_mode mode, double c, double **out, int64_t *sizes)
{
    rec_shape s = {.name = "clip_general", .B = 2, .S = 6, .N = 2, .K = 3, .V = 4, .nq = 1, .h0 = true, .dht = true,
                   .clip_mode = mode, .clip = c};
    rec_problem p;
    rec_problem_init(&p, &s, 61);
    rec_run(&p);
    m2rnn_tensor *g[] = {&p.bwd.dq, &p.bwd.dk, &p.bwd.dv, &p.bwd.dW, &p.bwd.df, &p.bwd.dh0};
    for (int i = 0; i < 6; i++) { out[i] = tensor_copy(g[i]); sizes[i] = m2rnn_tensor_numel(g[i]); }
    rec_problem_free(&p);
}

static void assert_same_gradients(m2rnn_clip_mode ma, double ca, m2rnn_clip_mode mb, double cb, bool want_same)
{
    double *a[6], *b[6];
    int64_t n[6];
    run_general(ma, ca, a, n);
    run_general(mb, cb, b, n);
    bool same = true;
    for (int i = 0; i < 6; i++) {
        same = same && memcmp(a[i], b[i], (size_t)n[i] * sizeof(double)) == 0;
        free(a[i]); free(b[i]);
    }
    ck_assert_msg(same == want_same, "clip (%d, %g) vs (%d, %g): gradients %s", ma, ca, mb, cb,
                  same ? "identical, expected a difference" : "differ, expected identical");
}

START_TEST(test_bound_never_reached_equals_unclipped)
{
    assert_same_gradients(M2RNN_CLIP_CARRY, 1e9, M2RNN_CLIP_NONE, 0, true);
    assert_same_gradients(M2RNN_CLIP_TOTAL, 1e9, M2RNN_CLIP_NONE, 0, true);
    /* and a bound that is reached changes them (the problem is not trivially below any bound) */
    assert_same_gradients(M2RNN_CLIP_CARRY, 0.05, M2RNN_CLIP_NONE, 0, false);
    assert_same_gradients(M2RNN_CLIP_TOTAL, 0.05, M2RNN_CLIP_NONE, 0, false);
}
END_TEST

START_TEST(test_negative_bound_is_its_magnitude)
{
    assert_same_gradients(M2RNN_CLIP_CARRY, -0.05, M2RNN_CLIP_CARRY, 0.05, true);
    assert_same_gradients(M2RNN_CLIP_TOTAL, -0.05, M2RNN_CLIP_TOTAL, 0.05, true);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("recurrence_clip");
    TCase *tc = tcase_create("clip");
    tcase_add_test(tc, test_scalar_case_by_hand);
    tcase_add_test(tc, test_zero_bound);
    tcase_add_test(tc, test_bound_never_reached_equals_unclipped);
    tcase_add_test(tc, test_negative_bound_is_its_magnitude);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return run_suite(suite()); }
