/*
 * Finite-difference checks of every gradient of the reference recurrence (SPEC.md §1.1).
 *
 * The loss is L = Σ y·dy + Σ ht·dht with random dy and dht, so the backward's outputs are exactly
 * dL/dq, dL/dk, dL/dv, dL/dW, dL/df, dL/dh0. Each is compared with the central difference
 * (L(x+ε) - L(x-ε)) / 2ε, ε = 1e-5, in double: truncation error ~ε²·L''' ≈ 1e-10 and rounding
 * error ~1e-16·|L|/ε ≈ 1e-10 for these sizes, so |fd - grad| ≤ 1e-6·(1 + |grad|) leaves three
 * orders of margin and still fails on any real bug (those move gradients by O(1)).
 * Tensors of up to 64 elements are checked at every element, larger ones at 48 sampled elements.
 */
#include <stdio.h>
#include <stdlib.h>

#include "layer_testutil.h"

static const rec_shape shapes[] = {
    {.name = "all_features", .B = 2, .S = 3, .N = 2, .K = 2, .V = 3, .h0 = true, .dht = true},
    {.name = "no_h0_no_dht", .B = 1, .S = 4, .N = 1, .K = 3, .V = 2},
    {.name = "h0_no_dht", .B = 2, .S = 2, .N = 1, .K = 2, .V = 2, .h0 = true},
    {.name = "dht_no_h0", .B = 1, .S = 3, .N = 2, .K = 2, .V = 2, .dht = true},
    {.name = "share_q_g2", .B = 1, .S = 3, .N = 4, .K = 2, .V = 2, .nq = 2, .h0 = true, .dht = true},
    {.name = "share_k_g2", .B = 1, .S = 3, .N = 4, .K = 2, .V = 2, .nk = 2, .h0 = true, .dht = true},
    {.name = "share_v_g2", .B = 1, .S = 3, .N = 4, .K = 2, .V = 2, .nv = 2, .h0 = true, .dht = true},
    {.name = "share_f_g2", .B = 1, .S = 3, .N = 4, .K = 2, .V = 2, .nf = 2, .h0 = true, .dht = true},
    {.name = "share_W_g2", .B = 2, .S = 3, .N = 4, .K = 2, .V = 2, .nw = 2, .h0 = true, .dht = true},
    {.name = "paper_qk1", .B = 2, .S = 3, .N = 3, .K = 4, .V = 2, .nq = 1, .nk = 1, .h0 = true, .dht = true},
    {.name = "shared_all_but_v", .B = 1, .S = 3, .N = 3, .K = 2, .V = 2, .nq = 1, .nk = 1, .nf = 1, .nw = 1,
     .h0 = true, .dht = true},
    {.name = "varlen_empty", .B = 3, .N = 2, .K = 2, .V = 3, .h0 = true, .dht = true, .varlen = 1, .seqlens = {3, 0, 2}},
    {.name = "varlen_len1", .B = 3, .N = 2, .K = 3, .V = 2, .dht = true, .varlen = 1, .seqlens = {1, 4, 0}, .nq = 1},
    {.name = "K1_V1", .B = 2, .S = 4, .N = 1, .K = 1, .V = 1, .h0 = true, .dht = true},
    {.name = "K3_V9", .B = 1, .S = 3, .N = 1, .K = 3, .V = 9, .h0 = true, .dht = true},
    {.name = "K9_V3", .B = 1, .S = 3, .N = 2, .K = 9, .V = 3, .h0 = true, .dht = true, .nk = 1},
    {.name = "K9_V1", .B = 1, .S = 5, .N = 1, .K = 9, .V = 1, .dht = true},
    {.name = "K64_V16", .B = 1, .S = 3, .N = 2, .K = 64, .V = 16, .nq = 1, .nk = 1, .h0 = true, .dht = true},
    {.name = "K128_V64", .B = 1, .S = 2, .N = 1, .K = 128, .V = 64, .h0 = true, .dht = true},
};
#define N_SHAPES ((int)(sizeof shapes / sizeof shapes[0]))

/* Compare grad with the central difference of the loss with respect to x (layer_testutil's checker,
 * with ε and the bound derived at the top). */
static double problem_loss(void *p) { return rec_loss(p); }

static void check_gradient(rec_problem *p, m2rnn_tensor *x, const m2rnn_tensor *grad, const char *name)
{
    char what[128];
    snprintf(what, sizeof what, "%s: d%s", p->shape.name, name);
    lt_check_grad(problem_loss, p, x, grad, 1e-5, 1e-6, what);
}

START_TEST(test_gradients)
{
    rec_problem p;
    rec_problem_init(&p, &shapes[_i], (uint64_t)_i + 1);
    rec_run(&p);
    m2rnn_recurrence_inputs *in = &p.fwd.in;
    check_gradient(&p, &in->q, &p.bwd.dq, "q");
    check_gradient(&p, &in->k, &p.bwd.dk, "k");
    check_gradient(&p, &in->v, &p.bwd.dv, "v");
    check_gradient(&p, &in->W, &p.bwd.dW, "W");
    check_gradient(&p, &in->f, &p.bwd.df, "f");
    if (m2rnn_tensor_present(&in->h0)) check_gradient(&p, &in->h0, &p.bwd.dh0, "h0");
    rec_problem_free(&p);
}
END_TEST

/* dh0 without h0 is the gradient with respect to a zero initial state: set h0 = 0 explicitly
 * and the finite difference must agree with the dh0 computed without it. */
START_TEST(test_dh0_without_h0)
{
    rec_shape s = {.name = "dh0_zero_state", .B = 2, .S = 3, .N = 2, .K = 2, .V = 3, .dht = true};
    rec_problem p;
    rec_problem_init(&p, &s, 99);
    rec_run(&p);
    double *dh0_implicit = tensor_copy(&p.bwd.dh0);
    m2rnn_tensor zero = tensor_like(&p.fwd.ht, M2RNN_F64);
    p.fwd.in.h0 = zero;
    p.bwd.in.h0 = zero;
    m2rnn_tensor implicit = m2rnn_tensor_make(dh0_implicit, M2RNN_F64, 4, p.fwd.ht.shape);
    check_gradient(&p, &p.fwd.in.h0, &implicit, "h0(zero)");
    free(dh0_implicit);
    rec_problem_free(&p); /* frees zero through in.h0 */
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("recurrence_gradients");
    TCase *tc = tcase_create("finite_differences");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_gradients, 0, N_SHAPES);
    tcase_add_test(tc, test_dh0_without_h0);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return run_suite(suite()); }
