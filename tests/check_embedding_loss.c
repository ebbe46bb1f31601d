/*
 * Embedding and cross-entropy (SPEC.md §5): the gather and its scatter-add gradient (repeated ids
 * sum), the loss against the textbook -log softmax, the ignore index, the all-ignored batch,
 * logits of 1e3 (max subtraction), finite differences for dlogits and dtable, bad input.
 *
 * Finite differences in double, ε = 1e-6: the loss is a smooth O(1) function of O(1) logits with
 * third derivatives O(1): truncation ≈ 1e-13, rounding ≈ 1e-16·|L|/ε ≈ 1e-10;
 * |fd - grad| <= 1e-8·(1 + |grad|). The embedding is linear in the table: exact up to rounding.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer_testutil.h"

typedef struct {
    m2rnn_cross_entropy_forward_args fwd;
    m2rnn_cross_entropy_backward_args bwd;
    double loss, dloss;
    int64_t targets[12];
} ce;

static void ce_init(ce *p, bool ignore, double amp, uint64_t seed)
{
    memset(p, 0, sizeof *p);
    test_rng r = {seed + 3};
    const int64_t B = 3, S = 4, C = 5;
    p->fwd.in.logits = lt_tensor(3, B, S, C);
    lt_fill(&p->fwd.in.logits, &r, -amp, amp);
    for (int i = 0; i < 12; i++) p->targets[i] = (int64_t)test_uniform(&r, 0, (double)C);
    if (ignore) { p->targets[1] = -100; p->targets[7] = -100; }
    p->fwd.in.targets = m2rnn_tensor_of(p->targets, M2RNN_I64, 2, B, S);
    p->fwd.in.has_ignore = ignore;
    p->fwd.in.ignore_index = -100;
    p->fwd.loss = m2rnn_tensor_of(&p->loss, M2RNN_F64, 0);
    p->dloss = 0.7;
    p->bwd.in = p->fwd.in;
    p->bwd.dloss = m2rnn_tensor_of(&p->dloss, M2RNN_F64, 0);
    p->bwd.dlogits = tensor_like(&p->fwd.in.logits, M2RNN_F64);
}

static double ce_loss(void *ctx)
{
    ce *p = ctx;
    ck_assert_int_eq(m2rnn_cross_entropy_forward_ref(&p->fwd), M2RNN_OK);
    return p->dloss * p->loss;
}

START_TEST(test_cross_entropy)
{
    const m2rnn_backend *be = m2rnn_backend_reference();
    for (int ig = 0; ig < 2; ig++) {
        ce p;
        ce_init(&p, ig, 2.0, (uint64_t)ig);
        ck_assert_msg(m2rnn_cross_entropy_forward(be, &p.fwd) == M2RNN_OK, "%s", m2rnn_last_error());
        ck_assert_msg(m2rnn_cross_entropy_backward(be, &p.bwd) == M2RNN_OK, "%s", m2rnn_last_error());
        double want = 0;
        int n = 0;
        const double *x = p.fwd.in.logits.data;
        for (int t = 0; t < 12; t++) {
            if (p.targets[t] == -100) continue;
            double z = 0;
            for (int c = 0; c < 5; c++) z += exp(x[t * 5 + c]);
            want -= log(exp(x[t * 5 + p.targets[t]]) / z);
            n++;
        }
        want /= n;
        ck_assert_msg(fabs(p.loss - want) <= 1e-14 * want, "loss %.17g vs %.17g", p.loss, want);
        lt_check_grad(ce_loss, &p, &p.fwd.in.logits, &p.bwd.dlogits, 1e-6, 1e-8, ig ? "dlogits (ignore)" : "dlogits");
        if (ig) for (int c = 0; c < 5; c++) ck_assert(((double *)p.bwd.dlogits.data)[1 * 5 + c] == 0);
        free(p.fwd.in.logits.data);
        free(p.bwd.dlogits.data);
    }
}
END_TEST

START_TEST(test_cross_entropy_edges)
{
    const m2rnn_backend *be = m2rnn_backend_reference();
    ce p;
    ce_init(&p, false, 1e3, 9); /* logits of ±1e3: exp overflows without the max */
    ck_assert_int_eq(m2rnn_cross_entropy_forward(be, &p.fwd), M2RNN_OK);
    ck_assert_msg(isfinite(p.loss) && p.loss >= 0, "loss %g", p.loss);
    ck_assert_int_eq(m2rnn_cross_entropy_backward(be, &p.bwd), M2RNN_OK);
    for (int e = 0; e < 60; e++) ck_assert(isfinite(((double *)p.bwd.dlogits.data)[e]));
    /* every token ignored: loss 0, gradient 0 */
    p.fwd.in.has_ignore = true;
    for (int i = 0; i < 12; i++) p.targets[i] = -100;
    p.bwd.in = p.fwd.in;
    ck_assert_int_eq(m2rnn_cross_entropy_forward(be, &p.fwd), M2RNN_OK);
    ck_assert(p.loss == 0);
    ck_assert_int_eq(m2rnn_cross_entropy_backward(be, &p.bwd), M2RNN_OK);
    for (int e = 0; e < 60; e++) ck_assert(((double *)p.bwd.dlogits.data)[e] == 0);
    /* errors */
    p.targets[3] = 5;
    ck_assert_int_eq(m2rnn_cross_entropy_forward(be, &p.fwd), M2RNN_ERR_ARG);
    ck_assert(strstr(m2rnn_last_error(), "targets"));
    p.targets[3] = 0;
    p.fwd.in.has_ignore = false;
    ck_assert_int_eq(m2rnn_cross_entropy_forward(be, &p.fwd), M2RNN_ERR_ARG); /* -100 no longer ignored */
    p.fwd.in.has_ignore = true;
    p.fwd.in.targets.dtype = M2RNN_F64;
    ck_assert_int_eq(m2rnn_cross_entropy_forward(be, &p.fwd), M2RNN_ERR_DTYPE);
    p.fwd.in.targets.dtype = M2RNN_I64;
    p.fwd.in.targets.shape[1] = 3;
    ck_assert_int_eq(m2rnn_cross_entropy_forward(be, &p.fwd), M2RNN_ERR_SHAPE);
    ck_assert_int_eq(m2rnn_cross_entropy_forward(NULL, &p.fwd), M2RNN_ERR_NULL);
    free(p.fwd.in.logits.data);
    free(p.bwd.dlogits.data);
}
END_TEST

typedef struct {
    m2rnn_embedding_forward_args fwd;
    m2rnn_embedding_backward_args bwd;
    int32_t ids[6];
} emb;

static double emb_loss(void *ctx)
{
    emb *p = ctx;
    ck_assert_int_eq(m2rnn_embedding_forward_ref(&p->fwd), M2RNN_OK);
    return lt_dot(&p->fwd.y, &p->bwd.dy);
}

START_TEST(test_embedding)
{
    const m2rnn_backend *be = m2rnn_backend_reference();
    test_rng r = {17};
    emb p;
    memset(&p, 0, sizeof p);
    int32_t ids[6] = {3, 0, 3, 6, 1, 3};
    memcpy(p.ids, ids, sizeof ids);
    p.fwd.in.ids = m2rnn_tensor_of(p.ids, M2RNN_I32, 2, (int64_t)2, (int64_t)3);
    p.fwd.in.table = lt_tensor(2, (int64_t)7, (int64_t)4);
    lt_fill(&p.fwd.in.table, &r, -1, 1);
    p.fwd.y = lt_tensor(3, (int64_t)2, (int64_t)3, (int64_t)4);
    p.bwd.in = p.fwd.in;
    p.bwd.dy = tensor_like(&p.fwd.y, M2RNN_F64);
    lt_fill(&p.bwd.dy, &r, -1, 1);
    p.bwd.dtable = tensor_like(&p.fwd.in.table, M2RNN_F64);
    ck_assert_msg(m2rnn_embedding_forward(be, &p.fwd) == M2RNN_OK, "%s", m2rnn_last_error());
    ck_assert_msg(m2rnn_embedding_backward(be, &p.bwd) == M2RNN_OK, "%s", m2rnn_last_error());
    const double *T = p.fwd.in.table.data, *y = p.fwd.y.data, *dy = p.bwd.dy.data, *dT = p.bwd.dtable.data;
    for (int t = 0; t < 6; t++)
        for (int e = 0; e < 4; e++) ck_assert(y[t * 4 + e] == T[ids[t] * 4 + e]);
    for (int e = 0; e < 4; e++) {
        ck_assert(dT[3 * 4 + e] == dy[0 * 4 + e] + dy[2 * 4 + e] + dy[5 * 4 + e]); /* id 3 three times, in token order */
        ck_assert(dT[2 * 4 + e] == 0); /* unused */
    }
    lt_check_grad(emb_loss, &p, &p.fwd.in.table, &p.bwd.dtable, 1e-6, 1e-8, "dtable");
    p.ids[4] = 7;
    ck_assert_int_eq(m2rnn_embedding_forward(be, &p.fwd), M2RNN_ERR_ARG);
    ck_assert(strstr(m2rnn_last_error(), "ids"));
    p.ids[4] = -1;
    ck_assert_int_eq(m2rnn_embedding_backward(be, &p.bwd), M2RNN_ERR_ARG);
    p.ids[4] = 1;
    p.fwd.y.shape[2] = 5;
    ck_assert_int_eq(m2rnn_embedding_forward(be, &p.fwd), M2RNN_ERR_SHAPE);
    ck_assert_str_eq(m2rnn_op_name(M2RNN_OP_CROSS_ENTROPY_BACKWARD), "cross_entropy_backward");
    m2rnn_tensor *all[4] = {&p.fwd.in.table, &p.fwd.y, &p.bwd.dy, &p.bwd.dtable};
    lt_free(all, 4);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("embedding_loss");
    TCase *tc = tcase_create("embedding_loss");
    tcase_add_test(tc, test_cross_entropy);
    tcase_add_test(tc, test_cross_entropy_edges);
    tcase_add_test(tc, test_embedding);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return run_suite(suite()); }
