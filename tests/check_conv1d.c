/*
 * Depthwise causal conv1d (SPEC.md §4): values against the formula written out independently,
 * finite-difference gradients, streaming (token by token, and split in two) == whole sequence,
 * varlen == separate runs, thread-count independence, dtypes, bad input.
 *
 * Finite differences: L = Σ y·dy + Σ state_out·dstate_out with random dy, dstate_out; ε = 1e-6
 * in double. The map is linear (act none) or SiLU of a linear map with O(1) arguments, so
 * |L'''| = O(numel) and the truncation error ε²/6·|L'''| ≈ 1e-11; rounding ≈ 1e-16·|L|/ε ≈ 1e-9
 * for |L| ≈ 10. |fd - grad| <= 1e-6·(1 + |grad|) keeps >= 2 orders of margin; a flipped kernel,
 * an off-by-one window or a dropped state term moves gradients by O(1).
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer_testutil.h"

typedef struct {
    const char *name;
    int64_t B, S, C, Kc;
    bool bias, state0, dstate_out;
    m2rnn_activation act;
    int varlen;
    int64_t seqlens[6];
} conv_case;

typedef struct {
    conv_case c;
    int64_t cu[7];
    m2rnn_conv1d_forward_args fwd;
    m2rnn_conv1d_backward_args bwd;
} conv_problem;

static void problem_init(conv_problem *p, const conv_case *c, uint64_t seed)
{
    memset(p, 0, sizeof *p);
    p->c = *c;
    test_rng r = {seed};
    m2rnn_conv1d_inputs *in = &p->fwd.in;
    if (c->varlen) {
        for (int64_t b = 0; b < c->B; b++) p->cu[b + 1] = p->cu[b] + c->seqlens[b];
        in->cu_seqlens = m2rnn_tensor_of(p->cu, M2RNN_I64, 1, c->B + 1);
        in->x = lt_tensor(2, p->cu[c->B], c->C);
    } else {
        in->x = lt_tensor(3, c->B, c->S, c->C);
    }
    in->w = lt_tensor(2, c->C, c->Kc);
    in->activation = c->act;
    lt_fill(&in->x, &r, -1.5, 1.5);
    lt_fill(&in->w, &r, -1, 1);
    if (c->bias) { in->bias = lt_tensor(1, c->C); lt_fill(&in->bias, &r, -0.5, 0.5); }
    if (c->state0) { in->state0 = lt_tensor(3, c->B, c->C, c->Kc - 1); lt_fill(&in->state0, &r, -1, 1); }
    p->fwd.y = lt_tensor_dtype(M2RNN_F64, in->x.rank, in->x.shape);
    p->fwd.state_out = lt_tensor(3, c->B, c->C, c->Kc - 1);
    p->bwd.in = *in;
    p->bwd.dy = lt_tensor_dtype(M2RNN_F64, in->x.rank, in->x.shape);
    lt_fill(&p->bwd.dy, &r, -1, 1);
    if (c->dstate_out) { p->bwd.dstate_out = lt_tensor(3, c->B, c->C, c->Kc - 1); lt_fill(&p->bwd.dstate_out, &r, -1, 1); }
    p->bwd.dx = lt_tensor_dtype(M2RNN_F64, in->x.rank, in->x.shape);
    p->bwd.dw = lt_tensor(2, c->C, c->Kc);
    p->bwd.dbias = lt_tensor(1, c->C);
    p->bwd.dstate0 = lt_tensor(3, c->B, c->C, c->Kc - 1);
}

static void problem_free(conv_problem *p)
{
    m2rnn_tensor *all[] = {&p->fwd.in.x, &p->fwd.in.w, &p->fwd.in.bias, &p->fwd.in.state0, &p->fwd.y,
                           &p->fwd.state_out, &p->bwd.dy, &p->bwd.dstate_out, &p->bwd.dx, &p->bwd.dw,
                           &p->bwd.dbias, &p->bwd.dstate0};
    lt_free(all, 12);
}

static void run(conv_problem *p)
{
    p->bwd.in = p->fwd.in;
    const m2rnn_backend *be = m2rnn_backend_reference();
    ck_assert_msg(m2rnn_conv1d_forward(be, &p->fwd) == M2RNN_OK, "%s: %s", p->c.name, m2rnn_last_error());
    ck_assert_msg(m2rnn_conv1d_backward(be, &p->bwd) == M2RNN_OK, "%s: %s", p->c.name, m2rnn_last_error());
}

static double conv_loss(void *ctx)
{
    conv_problem *p = ctx;
    ck_assert_int_eq(m2rnn_conv1d_forward_ref(&p->fwd), M2RNN_OK);
    return lt_dot(&p->fwd.y, &p->bwd.dy) + lt_dot(&p->fwd.state_out, &p->bwd.dstate_out);
}

static const conv_case cases[] = {
    {"k4_silu_all", 2, 5, 3, 4, true, true, true, M2RNN_ACT_SILU, 0, {0}},
    {"k4_none_plain", 2, 5, 3, 4, false, false, false, M2RNN_ACT_NONE, 0, {0}},
    {"k1", 2, 3, 2, 1, true, true, true, M2RNN_ACT_SILU, 0, {0}},
    {"k2_state", 1, 4, 2, 2, false, true, true, M2RNN_ACT_NONE, 0, {0}},
    {"k5_longer_than_seq", 2, 3, 2, 5, true, true, true, M2RNN_ACT_SILU, 0, {0}},
    {"varlen_short_empty", 4, 0, 3, 4, true, true, true, M2RNN_ACT_SILU, 1, {5, 0, 2, 1}},
    {"varlen_no_state", 3, 0, 2, 3, false, false, false, M2RNN_ACT_SILU, 1, {1, 4, 3}},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

START_TEST(test_gradients)
{
    conv_problem p;
    problem_init(&p, &cases[_i], 500 + (uint64_t)_i);
    run(&p);
    char what[96];
    const struct { m2rnn_tensor *x, *g; const char *n; } pairs[] = {
        {&p.fwd.in.x, &p.bwd.dx, "dx"}, {&p.fwd.in.w, &p.bwd.dw, "dw"},
        {&p.fwd.in.bias, &p.bwd.dbias, "dbias"}, {&p.fwd.in.state0, &p.bwd.dstate0, "dstate0"},
    };
    for (int i = 0; i < 4; i++) {
        if (!m2rnn_tensor_present(pairs[i].x)) continue;
        snprintf(what, sizeof what, "%s: %s", cases[_i].name, pairs[i].n);
        lt_check_grad(conv_loss, &p, pairs[i].x, pairs[i].g, 1e-6, 1e-6, what);
    }
    /* Without bias / state0, their gradients are the gradients at zero: give the zeros
     * explicitly and difference. */
    double *dbias = tensor_copy(&p.bwd.dbias), *ds0 = tensor_copy(&p.bwd.dstate0);
    m2rnn_tensor gb = m2rnn_tensor_make(dbias, M2RNN_F64, 1, p.bwd.dbias.shape);
    m2rnn_tensor gs = m2rnn_tensor_make(ds0, M2RNN_F64, 3, p.bwd.dstate0.shape);
    if (!m2rnn_tensor_present(&p.fwd.in.bias)) {
        p.fwd.in.bias = lt_tensor(1, cases[_i].C);
        snprintf(what, sizeof what, "%s: dbias at zero", cases[_i].name);
        lt_check_grad(conv_loss, &p, &p.fwd.in.bias, &gb, 1e-6, 1e-6, what);
    }
    if (!m2rnn_tensor_present(&p.fwd.in.state0) && cases[_i].Kc > 1) {
        p.fwd.in.state0 = lt_tensor(3, cases[_i].B, cases[_i].C, cases[_i].Kc - 1);
        snprintf(what, sizeof what, "%s: dstate0 at zero", cases[_i].name);
        lt_check_grad(conv_loss, &p, &p.fwd.in.state0, &gs, 1e-6, 1e-6, what);
    }
    free(dbias);
    free(ds0);
    problem_free(&p);
}
END_TEST

/* The forward against SPEC.md §4 written out: x at position t-(Kc-1)+j, the state before 0. */
START_TEST(test_values)
{
    conv_problem p;
    problem_init(&p, &cases[_i], 900 + (uint64_t)_i);
    run(&p);
    const conv_case *c = &cases[_i];
    const double *x = p.fwd.in.x.data, *w = p.fwd.in.w.data, *bias = p.fwd.in.bias.data, *s0 = p.fwd.in.state0.data;
    const double *y = p.fwd.y.data, *so = p.fwd.state_out.data;
    const int64_t K1 = c->Kc - 1;
    for (int64_t b = 0; b < c->B; b++) {
        int64_t start = c->varlen ? p.cu[b] : b * c->S, len = c->varlen ? c->seqlens[b] : c->S;
        for (int64_t ch = 0; ch < c->C; ch++) {
            /* the raw input at sequence position u (u < 0: the state, newest last, or 0) */
#define RAW(u) ((u) >= 0 ? x[(start + (u)) * c->C + ch] : (s0 && (u) >= -K1 ? s0[(b * c->C + ch) * K1 + K1 + (u)] : 0.0))
            for (int64_t t = 0; t < len; t++) {
                double acc = bias ? bias[ch] : 0.0;
                for (int64_t j = 0; j < c->Kc; j++) acc += w[ch * c->Kc + j] * RAW(t - K1 + j);
                double want = c->act == M2RNN_ACT_SILU ? acc / (1.0 + exp(-acc)) : acc;
                double got = y[(start + t) * c->C + ch];
                ck_assert_msg(fabs(got - want) <= 1e-14 * (1 + fabs(want)), "%s: y[b%lld,t%lld,c%lld] = %.17g, want %.17g",
                              c->name, (long long)b, (long long)t, (long long)ch, got, want);
            }
            for (int64_t j = 0; j < K1; j++)
                ck_assert_msg(so[(b * c->C + ch) * K1 + j] == RAW(len - K1 + j), "%s: state_out[%lld,%lld,%lld]", c->name,
                              (long long)b, (long long)ch, (long long)j);
#undef RAW
        }
    }
    problem_free(&p);
}
END_TEST

/* A tensor holding tokens [t0, t1) of sequence b of a dense (B,S,C) tensor, as (1, t1-t0, C). */
static m2rnn_tensor slice_tokens(const m2rnn_tensor *x, int64_t b, int64_t t0, int64_t t1)
{
    int64_t S = x->shape[1], C = x->shape[2];
    m2rnn_tensor s = lt_tensor(3, (int64_t)1, t1 - t0, C);
    memcpy(s.data, (double *)x->data + (b * S + t0) * C, (size_t)((t1 - t0) * C) * sizeof(double));
    return s;
}

/* Streaming: sequence by sequence, running chunks [0,a), [a,b), ... with the state passed on
 * reproduces the whole run's y and state_out; and the backward of the chunks, chained in reverse
 * through dstate0 -> dstate_out, reproduces dx, dw (summed), dbias (summed) and dstate0. Chunk
 * sizes 1 (token by token) and 2 (shorter than the kernel) and 3. */
START_TEST(test_streaming)
{
    conv_case c = {"stream", 2, 7, 3, 4, true, true, true, M2RNN_ACT_SILU, 0, {0}};
    conv_problem p;
    problem_init(&p, &c, 4242);
    run(&p);
    const int64_t K1 = c.Kc - 1, C = c.C;
    for (int64_t chunk = 1; chunk <= 3; chunk++) {
        double dw_sum[64] = {0}, db_sum[8] = {0};
        for (int64_t b = 0; b < c.B; b++) {
            int64_t nchunks = (c.S + chunk - 1) / chunk;
            conv_problem q[8];
            m2rnn_tensor state = lt_tensor(3, (int64_t)1, C, K1);
            memcpy(state.data, (double *)p.fwd.in.state0.data + b * C * K1, (size_t)(C * K1) * sizeof(double));
            for (int64_t k = 0; k < nchunks; k++) { /* forward, state passed on */
                int64_t t0 = k * chunk, t1 = t0 + chunk < c.S ? t0 + chunk : c.S;
                memset(&q[k], 0, sizeof q[k]);
                q[k].fwd.in = p.fwd.in;
                q[k].fwd.in.x = slice_tokens(&p.fwd.in.x, b, t0, t1);
                q[k].fwd.in.state0 = state;
                q[k].fwd.y = tensor_like(&q[k].fwd.in.x, M2RNN_F64);
                q[k].fwd.state_out = lt_tensor(3, (int64_t)1, C, K1);
                ck_assert_int_eq(m2rnn_conv1d_forward_ref(&q[k].fwd), M2RNN_OK);
                state = q[k].fwd.state_out;
                m2rnn_tensor want = slice_tokens(&p.fwd.y, b, t0, t1);
                ck_assert_msg(lt_max_abs_diff(&q[k].fwd.y, &want) <= 1e-15, "chunk %lld, seq %lld, tokens %lld..: y differs",
                              (long long)chunk, (long long)b, (long long)t0);
                free(want.data);
            }
            for (int64_t e = 0; e < C * K1; e++)
                ck_assert(((double *)state.data)[e] == ((double *)p.fwd.state_out.data)[b * C * K1 + e]);
            /* backward in reverse, dstate0 of chunk k is dstate_out of chunk k-1 */
            m2rnn_tensor dstate = lt_tensor(3, (int64_t)1, C, K1);
            memcpy(dstate.data, (double *)p.bwd.dstate_out.data + b * C * K1, (size_t)(C * K1) * sizeof(double));
            for (int64_t k = nchunks - 1; k >= 0; k--) {
                int64_t t0 = k * chunk, t1 = t0 + chunk < c.S ? t0 + chunk : c.S;
                m2rnn_conv1d_backward_args *bw = &q[k].bwd;
                bw->in = q[k].fwd.in;
                bw->dy = slice_tokens(&p.bwd.dy, b, t0, t1);
                bw->dstate_out = dstate;
                bw->dx = tensor_like(&q[k].fwd.in.x, M2RNN_F64);
                bw->dw = lt_tensor(2, C, c.Kc);
                bw->dbias = lt_tensor(1, C);
                bw->dstate0 = lt_tensor(3, (int64_t)1, C, K1);
                ck_assert_int_eq(m2rnn_conv1d_backward_ref(bw), M2RNN_OK);
                m2rnn_tensor want = slice_tokens(&p.bwd.dx, b, t0, t1);
                ck_assert_msg(lt_max_abs_diff(&bw->dx, &want) <= 1e-14, "chunk %lld, seq %lld: dx differs", (long long)chunk,
                              (long long)b);
                free(want.data);
                for (int64_t e = 0; e < C * c.Kc; e++) dw_sum[e] += ((double *)bw->dw.data)[e];
                for (int64_t e = 0; e < C; e++) db_sum[e] += ((double *)bw->dbias.data)[e];
                free(dstate.data);
                dstate = bw->dstate0;
                bw->dstate0.data = NULL;
                m2rnn_tensor *own[7] = {&q[k].fwd.in.x, &q[k].fwd.y, &bw->dy, &bw->dx, &bw->dw, &bw->dbias, &q[k].fwd.in.state0};
                lt_free(own, 7);
            }
            for (int64_t e = 0; e < C * K1; e++)
                ck_assert_msg(fabs(((double *)dstate.data)[e] - ((double *)p.bwd.dstate0.data)[b * C * K1 + e]) <= 1e-14,
                              "chunk %lld: dstate0 differs", (long long)chunk);
            free(dstate.data);
            free(state.data);
        }
        for (int64_t e = 0; e < C * c.Kc; e++)
            ck_assert_msg(fabs(dw_sum[e] - ((double *)p.bwd.dw.data)[e]) <= 1e-13, "chunk %lld: dw differs", (long long)chunk);
        for (int64_t e = 0; e < C; e++)
            ck_assert_msg(fabs(db_sum[e] - ((double *)p.bwd.dbias.data)[e]) <= 1e-13, "chunk %lld: dbias differs", (long long)chunk);
    }
    problem_free(&p);
}
END_TEST

/* Varlen == separate dense runs of each sequence (B=1), including empty and short ones: y, state_out,
 * dx, dstate0 per sequence; dw, dbias summed over sequences. */
START_TEST(test_varlen_equals_separate)
{
    const conv_case *c = &cases[5]; /* varlen_short_empty: lengths 5, 0, 2, 1 with Kc = 4 */
    conv_problem p;
    problem_init(&p, c, 77);
    run(&p);
    const int64_t C = c->C, K1 = c->Kc - 1;
    double dw_sum[64] = {0}, db_sum[8] = {0};
    for (int64_t b = 0; b < c->B; b++) {
        conv_case one = *c;
        one.varlen = 0; one.B = 1; one.S = c->seqlens[b];
        conv_problem q;
        problem_init(&q, &one, 1);
        int64_t n = one.S * C;
        memcpy(q.fwd.in.x.data, (double *)p.fwd.in.x.data + p.cu[b] * C, (size_t)n * sizeof(double));
        memcpy(q.fwd.in.w.data, p.fwd.in.w.data, (size_t)(C * c->Kc) * sizeof(double));
        memcpy(q.fwd.in.bias.data, p.fwd.in.bias.data, (size_t)C * sizeof(double));
        memcpy(q.fwd.in.state0.data, (double *)p.fwd.in.state0.data + b * C * K1, (size_t)(C * K1) * sizeof(double));
        memcpy(q.bwd.dy.data, (double *)p.bwd.dy.data + p.cu[b] * C, (size_t)n * sizeof(double));
        memcpy(q.bwd.dstate_out.data, (double *)p.bwd.dstate_out.data + b * C * K1, (size_t)(C * K1) * sizeof(double));
        run(&q);
        for (int64_t e = 0; e < n; e++) {
            ck_assert(((double *)q.fwd.y.data)[e] == ((double *)p.fwd.y.data)[p.cu[b] * C + e]);
            ck_assert(((double *)q.bwd.dx.data)[e] == ((double *)p.bwd.dx.data)[p.cu[b] * C + e]);
        }
        for (int64_t e = 0; e < C * K1; e++) {
            ck_assert(((double *)q.fwd.state_out.data)[e] == ((double *)p.fwd.state_out.data)[b * C * K1 + e]);
            ck_assert(((double *)q.bwd.dstate0.data)[e] == ((double *)p.bwd.dstate0.data)[b * C * K1 + e]);
        }
        for (int64_t e = 0; e < C * c->Kc; e++) dw_sum[e] += ((double *)q.bwd.dw.data)[e];
        for (int64_t e = 0; e < C; e++) db_sum[e] += ((double *)q.bwd.dbias.data)[e];
        problem_free(&q);
    }
    for (int64_t e = 0; e < C * c->Kc; e++) ck_assert(fabs(dw_sum[e] - ((double *)p.bwd.dw.data)[e]) <= 1e-13);
    for (int64_t e = 0; e < C; e++) ck_assert(fabs(db_sum[e] - ((double *)p.bwd.dbias.data)[e]) <= 1e-13);
    /* An empty sequence passes its state through: state_out[1] = state0[1], dstate0[1] = dstate_out[1]. */
    for (int64_t e = 0; e < C * K1; e++) {
        ck_assert(((double *)p.fwd.state_out.data)[C * K1 + e] == ((double *)p.fwd.in.state0.data)[C * K1 + e]);
        ck_assert(((double *)p.bwd.dstate0.data)[C * K1 + e] == ((double *)p.bwd.dstate_out.data)[C * K1 + e]);
    }
    problem_free(&p);
}
END_TEST

/* 1 thread and 2 threads give bit-identical outputs (this runs in Check's forked child). */
START_TEST(test_threads)
{
    conv_case c = {"threads", 3, 40, 17, 4, true, true, true, M2RNN_ACT_SILU, 0, {0}};
    conv_problem p1, p2;
    problem_init(&p1, &c, 3);
    problem_init(&p2, &c, 3);
    omp_set_num_threads(1);
    run(&p1);
    omp_set_num_threads(2);
    run(&p2);
    assert_tensors_equal(&p1.fwd.y, &p2.fwd.y, "y");
    assert_tensors_equal(&p1.bwd.dx, &p2.bwd.dx, "dx");
    assert_tensors_equal(&p1.bwd.dw, &p2.bwd.dw, "dw");
    assert_tensors_equal(&p1.bwd.dbias, &p2.bwd.dbias, "dbias");
    problem_free(&p1);
    problem_free(&p2);
}
END_TEST

/* Low-precision outputs are the f64 results rounded once. */
START_TEST(test_dtypes)
{
    conv_problem p;
    problem_init(&p, &cases[0], 31);
    run(&p);
    m2rnn_dtype dts[3] = {M2RNN_F32, M2RNN_BF16, M2RNN_F16};
    for (int d = 0; d < 3; d++) {
        conv_problem q = p;
        q.fwd.y = tensor_like(&p.fwd.y, dts[d]);
        q.fwd.state_out = tensor_like(&p.fwd.state_out, dts[d]);
        q.bwd.dx = tensor_like(&p.bwd.dx, dts[d]);
        q.bwd.dw = tensor_like(&p.bwd.dw, dts[d]);
        q.bwd.dbias = tensor_like(&p.bwd.dbias, dts[d]);
        q.bwd.dstate0 = tensor_like(&p.bwd.dstate0, dts[d]);
        run(&q);
        m2rnn_tensor *lo[6] = {&q.fwd.y, &q.fwd.state_out, &q.bwd.dx, &q.bwd.dw, &q.bwd.dbias, &q.bwd.dstate0};
        m2rnn_tensor *hi[6] = {&p.fwd.y, &p.fwd.state_out, &p.bwd.dx, &p.bwd.dw, &p.bwd.dbias, &p.bwd.dstate0};
        for (int o = 0; o < 6; o++)
            for (int64_t e = 0; e < m2rnn_tensor_numel(hi[o]); e++)
                ck_assert_msg(m2rnn_tensor_get(lo[o], e) == m2rnn_round_to(dts[d], m2rnn_tensor_get(hi[o], e)),
                              "%s: output %d[%lld] not rounded once", m2rnn_dtype_name(dts[d]), o, (long long)e);
        lt_free(lo, 6);
    }
    problem_free(&p);
}
END_TEST

/* Bad input: status, a message naming the argument, outputs untouched. */
static void expect_error(conv_problem *p, m2rnn_status want, const char *needle, bool forward_too)
{
    m2rnn_tensor *outs[6] = {&p->fwd.y, &p->fwd.state_out, &p->bwd.dx, &p->bwd.dw, &p->bwd.dbias, &p->bwd.dstate0};
    const m2rnn_backend *be = m2rnn_backend_reference();
    lt_poison(outs, 6, 555.0);
    p->bwd.in = p->fwd.in;
    m2rnn_status got[4] = {m2rnn_conv1d_backward(be, &p->bwd), m2rnn_conv1d_backward_ref(&p->bwd),
                           forward_too ? m2rnn_conv1d_forward(be, &p->fwd) : want,
                           forward_too ? m2rnn_conv1d_forward_ref(&p->fwd) : want};
    for (int i = 0; i < 4; i++)
        ck_assert_msg(got[i] == want, "call %d: %d (%s), want %d [%s]", i, got[i], m2rnn_last_error(), want, needle);
    if (want == M2RNN_OK) return;
    ck_assert_msg(strstr(m2rnn_last_error(), needle), "message '%s' does not name '%s'", m2rnn_last_error(), needle);
    lt_assert_poisoned(outs, 6, 555.0, needle);
}

START_TEST(test_errors)
{
    conv_problem p;
    problem_init(&p, &cases[0], 1); /* B=2 S=5 C=3 Kc=4, bias, state0 */
    m2rnn_conv1d_inputs *in = &p.fwd.in;
    void *saved;
    saved = in->x.data; in->x.data = NULL; expect_error(&p, M2RNN_ERR_NULL, "x", true); in->x.data = saved;
    saved = in->w.data; in->w.data = NULL; expect_error(&p, M2RNN_ERR_NULL, "w", true); in->w.data = saved;
    saved = p.bwd.dy.data; p.bwd.dy.data = NULL; expect_error(&p, M2RNN_ERR_NULL, "dy", false); p.bwd.dy.data = saved;
    saved = p.bwd.dw.data; p.bwd.dw.data = NULL; expect_error(&p, M2RNN_ERR_NULL, "dw", false); p.bwd.dw.data = saved;
    in->w.shape[0] = 2; expect_error(&p, M2RNN_ERR_SHAPE, "w", true); in->w.shape[0] = 3;
    in->w.shape[1] = 0; expect_error(&p, M2RNN_ERR_SHAPE, "w", true); in->w.shape[1] = 4;
    in->bias.shape[0] = 4; expect_error(&p, M2RNN_ERR_SHAPE, "bias", true); in->bias.shape[0] = 3;
    in->state0.shape[2] = 4; expect_error(&p, M2RNN_ERR_SHAPE, "state0", true); in->state0.shape[2] = 3;
    in->state0.shape[0] = 1; expect_error(&p, M2RNN_ERR_SHAPE, "state0", true); in->state0.shape[0] = 2;
    p.bwd.dstate_out.shape[1] = 1; expect_error(&p, M2RNN_ERR_SHAPE, "dstate_out", false); p.bwd.dstate_out.shape[1] = 3;
    p.bwd.dx.shape[1] = 4; expect_error(&p, M2RNN_ERR_SHAPE, "dx", false); p.bwd.dx.shape[1] = 5;
    p.bwd.dbias.shape[0] = 2; expect_error(&p, M2RNN_ERR_SHAPE, "dbias", false); p.bwd.dbias.shape[0] = 3;
    p.fwd.y.shape[2] = 2; ck_assert_int_eq(m2rnn_conv1d_forward_ref(&p.fwd), M2RNN_ERR_SHAPE); p.fwd.y.shape[2] = 3;
    ck_assert_ptr_nonnull(strstr(m2rnn_last_error(), "y"));
    in->activation = (m2rnn_activation)7; expect_error(&p, M2RNN_ERR_ARG, "activation", true); in->activation = M2RNN_ACT_SILU;
    in->w.dtype = M2RNN_I32; expect_error(&p, M2RNN_ERR_DTYPE, "w", true); in->w.dtype = M2RNN_F64;
    in->x.rank = 2; expect_error(&p, M2RNN_ERR_SHAPE, "x", true); in->x.rank = 3;
    /* cu_seqlens: with a 3-d x, wrong totals, decreasing, wrong dtype */
    int64_t cu[3] = {0, 4, 10};
    in->cu_seqlens = m2rnn_tensor_of(cu, M2RNN_I64, 1, (int64_t)3);
    expect_error(&p, M2RNN_ERR_SHAPE, "x", true);
    in->x.rank = 2; in->x.shape[0] = 10; in->x.shape[1] = 3;
    p.fwd.y.rank = p.bwd.dy.rank = p.bwd.dx.rank = 2;
    p.fwd.y.shape[0] = p.bwd.dy.shape[0] = p.bwd.dx.shape[0] = 10;
    p.fwd.y.shape[1] = p.bwd.dy.shape[1] = p.bwd.dx.shape[1] = 3;
    expect_error(&p, M2RNN_OK, "", true); /* valid: (10,3) packed as 4 + 6 */
    cu[2] = 9; expect_error(&p, M2RNN_ERR_SEQLENS, "x", true); cu[2] = 10;
    cu[1] = 11; expect_error(&p, M2RNN_ERR_SEQLENS, "cu_seqlens", true); cu[1] = 4;
    cu[0] = 1; expect_error(&p, M2RNN_ERR_SEQLENS, "cu_seqlens", true); cu[0] = 0;
    in->cu_seqlens.dtype = M2RNN_F64; expect_error(&p, M2RNN_ERR_DTYPE, "cu_seqlens", true);
    in->cu_seqlens = (m2rnn_tensor){0};
    in->x.rank = 3; in->x.shape[0] = 2; in->x.shape[1] = 5; in->x.shape[2] = 3;
    ck_assert_int_eq(m2rnn_conv1d_forward(NULL, &p.fwd), M2RNN_ERR_NULL);
    ck_assert_int_eq(m2rnn_conv1d_backward_ref(NULL), M2RNN_ERR_NULL);
    problem_free(&p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("conv1d");
    TCase *tc = tcase_create("conv1d");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_gradients, 0, N_CASES);
    tcase_add_loop_test(tc, test_values, 0, N_CASES);
    tcase_add_test(tc, test_streaming);
    tcase_add_test(tc, test_varlen_equals_separate);
    tcase_add_test(tc, test_threads);
    tcase_add_test(tc, test_dtypes);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return run_suite(suite()); }
