/*
 * Invariants of the reference recurrence that any correct implementation must satisfy:
 *  - a packed varlen batch equals running each sequence on its own;
 *  - shared heads equal explicitly repeated heads, with the gradients summed over each group;
 *  - running S1 then S2 with the state passed on equals running S1+S2, forward and backward;
 *  - the result does not depend on the number of threads (bit-identical);
 *  - f32/bf16/f16 outputs are the f64 result rounded once; bf16 storage of bf16-representable
 *    inputs gives the same result as f64 storage of the same values.
 * Where the two sides compute the same operations in the same order, equality is exact; where
 * only a sum's association differs (dW over sequences or segments), |a - b| <= 1e-12 (1 + |b|).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "testutil.h"

/* The rows [start, start+len) of a (T, ...) tensor as a (1, len, ...) tensor (copied). */
static m2rnn_tensor token_rows(const m2rnn_tensor *t, int64_t start, int64_t len)
{
    m2rnn_tensor u = m2rnn_tensor_make(NULL, t->dtype, t->rank + 1, NULL);
    u.shape[0] = 1;
    u.shape[1] = len;
    int64_t row = 1;
    for (int i = 1; i < t->rank; i++) { u.shape[i + 1] = t->shape[i]; row *= t->shape[i]; }
    u.data = malloc((size_t)(len * row + 1) * sizeof(double));
    memcpy(u.data, (double *)t->data + start * row, (size_t)(len * row) * sizeof(double));
    return u;
}

/* Entry b of a (B, ...) tensor as a (1, ...) tensor (copied). */
static m2rnn_tensor batch_entry(const m2rnn_tensor *t, int64_t b)
{
    m2rnn_tensor u = *t;
    u.shape[0] = 1;
    int64_t n = m2rnn_tensor_numel(&u);
    u.data = malloc((size_t)n * sizeof(double));
    memcpy(u.data, (double *)t->data + b * n, (size_t)n * sizeof(double));
    return u;
}

/* Compare n doubles at a and b. */
static void compare(const double *a, const double *b, int64_t n, bool exact, const char *what)
{
    for (int64_t i = 0; i < n; i++) {
        if (exact) ck_assert_msg(a[i] == b[i], "%s[%lld]: %.17g vs %.17g (must be identical)", what, (long long)i, a[i], b[i]);
        else ck_assert_msg(fabs(a[i] - b[i]) <= 1e-12 * (1 + fabs(b[i])), "%s[%lld]: %.17g vs %.17g", what, (long long)i, a[i], b[i]);
    }
}

START_TEST(test_varlen_equals_separate_runs)
{
    rec_shape s = {.name = "varlen", .B = 4, .N = 4, .K = 5, .V = 3, .nq = 1, .nk = 2, .nw = 2, .h0 = true,
                   .dht = true, .varlen = 1, .seqlens = {6, 0, 3, 1}};
    rec_problem p;
    rec_problem_init(&p, &s, 11);
    rec_run(&p);
    m2rnn_tensor dW_sum = tensor_like(&p.bwd.dW, M2RNN_F64);
    for (int64_t b = 0; b < s.B; b++) {
        int64_t start = p.cu[b], len = p.cu[b + 1] - p.cu[b];
        rec_problem one;
        rec_shape so = p.shape;
        so.B = 1; so.S = len; so.varlen = 0;
        rec_problem_init(&one, &so, 1); /* shapes and buffers; inputs replaced below */
        m2rnn_tensor *dst[] = {&one.fwd.in.q, &one.fwd.in.k, &one.fwd.in.v, &one.fwd.in.f, &one.bwd.dy};
        const m2rnn_tensor *src[] = {&p.fwd.in.q, &p.fwd.in.k, &p.fwd.in.v, &p.fwd.in.f, &p.bwd.dy};
        for (int i = 0; i < 5; i++) { free(dst[i]->data); *dst[i] = token_rows(src[i], start, len); }
        memcpy(one.fwd.in.W.data, p.fwd.in.W.data, m2rnn_tensor_nbytes(&p.fwd.in.W));
        free(one.fwd.in.h0.data); one.fwd.in.h0 = batch_entry(&p.fwd.in.h0, b);
        free(one.bwd.dht.data); one.bwd.dht = batch_entry(&p.bwd.dht, b);
        one.bwd.in = one.fwd.in;
        rec_run(&one);

        int64_t NV = s.N * s.V, KV = s.K * s.V, NKV = s.N * KV;
        compare((double *)p.fwd.y.data + start * NV, one.fwd.y.data, len * NV, true, "y");
        compare((double *)p.fwd.ht.data + b * NKV, one.fwd.ht.data, NKV, true, "ht");
        compare((double *)p.bwd.dh0.data + b * NKV, one.bwd.dh0.data, NKV, true, "dh0");
        compare((double *)p.bwd.dq.data + start * p.shape.nq * s.K, one.bwd.dq.data, len * p.shape.nq * s.K, true, "dq");
        compare((double *)p.bwd.dk.data + start * p.shape.nk * s.K, one.bwd.dk.data, len * p.shape.nk * s.K, true, "dk");
        compare((double *)p.bwd.dv.data + start * p.shape.nv * s.V, one.bwd.dv.data, len * p.shape.nv * s.V, true, "dv");
        compare((double *)p.bwd.df.data + start * p.shape.nf, one.bwd.df.data, len * p.shape.nf, true, "df");
        if (len == 0) compare(one.bwd.dh0.data, one.bwd.dht.data, NKV, true, "dh0 of an empty sequence = dht");
        if (len == 0) compare(one.fwd.ht.data, one.fwd.in.h0.data, NKV, true, "ht of an empty sequence = h0");
        for (int64_t e = 0; e < m2rnn_tensor_numel(&dW_sum); e++)
            ((double *)dW_sum.data)[e] += ((double *)one.bwd.dW.data)[e];
        rec_problem_free(&one);
    }
    compare(p.bwd.dW.data, dW_sum.data, m2rnn_tensor_numel(&dW_sum), false, "dW = sum over sequences");
    free(dW_sum.data);
    rec_problem_free(&p);
}
END_TEST

/* x repeated along its head axis (axis ax) from nx to N heads: head n <- head n / (N/nx). */
static m2rnn_tensor repeat_heads(const m2rnn_tensor *x, int ax, int64_t N)
{
    m2rnn_tensor u = *x;
    int64_t nx = x->shape[ax], G = N / nx, outer = 1, inner = 1;
    for (int i = 0; i < ax; i++) outer *= x->shape[i];
    for (int i = ax + 1; i < x->rank; i++) inner *= x->shape[i];
    u.shape[ax] = N;
    u.data = malloc((size_t)(outer * N * inner) * sizeof(double));
    for (int64_t o = 0; o < outer; o++)
        for (int64_t n = 0; n < N; n++)
            memcpy((double *)u.data + (o * N + n) * inner, (double *)x->data + (o * nx + n / G) * inner,
                   (size_t)inner * sizeof(double));
    return u;
}

/* Sum of a repeated tensor's gradient back over each group: the expected shared gradient. */
static double *sum_heads(const m2rnn_tensor *g, int ax, int64_t nx)
{
    int64_t N = g->shape[ax], G = N / nx, outer = 1, inner = 1;
    for (int i = 0; i < ax; i++) outer *= g->shape[i];
    for (int i = ax + 1; i < g->rank; i++) inner *= g->shape[i];
    double *s = calloc((size_t)(outer * nx * inner), sizeof(double));
    for (int64_t o = 0; o < outer; o++)
        for (int64_t h = 0; h < nx; h++)
            for (int64_t gi = 0; gi < G; gi++)
                for (int64_t e = 0; e < inner; e++)
                    s[(o * nx + h) * inner + e] += ((double *)g->data)[(o * N + h * G + gi) * inner + e];
    return s;
}

START_TEST(test_shared_heads_equal_repeated_heads)
{
    rec_shape s = {.name = "shared", .B = 2, .S = 5, .N = 4, .K = 3, .V = 2, .nq = 1, .nk = 2, .nv = 4, .nf = 2,
                   .nw = 1, .h0 = true, .dht = true};
    rec_problem p, r;
    rec_problem_init(&p, &s, 21);
    rec_run(&p);
    rec_shape sr = p.shape;
    sr.nq = sr.nk = sr.nv = sr.nf = sr.nw = s.N;
    rec_problem_init(&r, &sr, 1);
    m2rnn_tensor *dst[] = {&r.fwd.in.q, &r.fwd.in.k, &r.fwd.in.v, &r.fwd.in.f, &r.fwd.in.W};
    const m2rnn_tensor *src[] = {&p.fwd.in.q, &p.fwd.in.k, &p.fwd.in.v, &p.fwd.in.f, &p.fwd.in.W};
    const int axis[] = {2, 2, 2, 2, 0};
    for (int i = 0; i < 5; i++) { free(dst[i]->data); *dst[i] = repeat_heads(src[i], axis[i], s.N); }
    memcpy(r.fwd.in.h0.data, p.fwd.in.h0.data, m2rnn_tensor_nbytes(&p.fwd.in.h0));
    memcpy(r.bwd.dht.data, p.bwd.dht.data, m2rnn_tensor_nbytes(&p.bwd.dht));
    memcpy(r.bwd.dy.data, p.bwd.dy.data, m2rnn_tensor_nbytes(&p.bwd.dy));
    r.bwd.in = r.fwd.in;
    free(r.bwd.dq.data); r.bwd.dq = tensor_like(&r.fwd.in.q, M2RNN_F64);
    free(r.bwd.dk.data); r.bwd.dk = tensor_like(&r.fwd.in.k, M2RNN_F64);
    free(r.bwd.dv.data); r.bwd.dv = tensor_like(&r.fwd.in.v, M2RNN_F64);
    free(r.bwd.df.data); r.bwd.df = tensor_like(&r.fwd.in.f, M2RNN_F64);
    free(r.bwd.dW.data); r.bwd.dW = tensor_like(&r.fwd.in.W, M2RNN_F64);
    rec_run(&r);

    compare(p.fwd.y.data, r.fwd.y.data, m2rnn_tensor_numel(&p.fwd.y), true, "y");
    compare(p.fwd.ht.data, r.fwd.ht.data, m2rnn_tensor_numel(&p.fwd.ht), true, "ht");
    compare(p.bwd.dh0.data, r.bwd.dh0.data, m2rnn_tensor_numel(&p.bwd.dh0), true, "dh0");
    const m2rnn_tensor *shared[] = {&p.bwd.dq, &p.bwd.dk, &p.bwd.dv, &p.bwd.df, &p.bwd.dW};
    const m2rnn_tensor *repeated[] = {&r.bwd.dq, &r.bwd.dk, &r.bwd.dv, &r.bwd.df, &r.bwd.dW};
    const char *names[] = {"dq", "dk", "dv", "df", "dW"};
    for (int i = 0; i < 5; i++) {
        double *want = sum_heads(repeated[i], axis[i], shared[i]->shape[axis[i]]);
        compare(shared[i]->data, want, m2rnn_tensor_numel(shared[i]), false, names[i]);
        free(want);
    }
    rec_problem_free(&p);
    rec_problem_free(&r);
}
END_TEST

/* Copy of dense (B,S,...) rows [s0, s0+len) along the S axis. */
static m2rnn_tensor seq_slice(const m2rnn_tensor *t, int64_t s0, int64_t len)
{
    m2rnn_tensor u = *t;
    int64_t B = t->shape[0], S = t->shape[1], row = 1;
    for (int i = 2; i < t->rank; i++) row *= t->shape[i];
    u.shape[1] = len;
    u.data = malloc((size_t)(B * len * row + 1) * sizeof(double));
    for (int64_t b = 0; b < B; b++)
        memcpy((double *)u.data + b * len * row, (double *)t->data + (b * S + s0) * row, (size_t)(len * row) * sizeof(double));
    return u;
}

/* A problem over steps [s0, s0+len) of p, starting from state h0 (copied in), with dht given. */
static void segment(rec_problem *seg, const rec_problem *p, int64_t s0, int64_t len, const m2rnn_tensor *h0,
                    const m2rnn_tensor *dht)
{
    rec_shape ss = p->shape;
    ss.S = len;
    rec_problem_init(seg, &ss, 1);
    m2rnn_tensor *dst[] = {&seg->fwd.in.q, &seg->fwd.in.k, &seg->fwd.in.v, &seg->fwd.in.f, &seg->bwd.dy};
    const m2rnn_tensor *src[] = {&p->fwd.in.q, &p->fwd.in.k, &p->fwd.in.v, &p->fwd.in.f, &p->bwd.dy};
    for (int i = 0; i < 5; i++) { free(dst[i]->data); *dst[i] = seq_slice(src[i], s0, len); }
    memcpy(seg->fwd.in.W.data, p->fwd.in.W.data, m2rnn_tensor_nbytes(&p->fwd.in.W));
    memcpy(seg->fwd.in.h0.data, h0->data, m2rnn_tensor_nbytes(h0));
    memcpy(seg->bwd.dht.data, dht->data, m2rnn_tensor_nbytes(dht));
    seg->bwd.in = seg->fwd.in;
}

static void check_split(m2rnn_clip_mode mode, double clip)
{
    const int64_t S = 9, S1 = 4;
    rec_shape s = {.name = "split", .B = 2, .S = S, .N = 2, .K = 3, .V = 4, .nq = 1, .h0 = true, .dht = true,
                   .clip_mode = mode, .clip = clip};
    rec_problem p, a, b;
    rec_problem_init(&p, &s, 31);
    rec_run(&p);
    /* Forward: A from h0, then B from A's final state. Backward: B first, its dh0 is A's dht. */
    segment(&a, &p, 0, S1, &p.fwd.in.h0, &p.bwd.dht); /* dht of A replaced below */
    m2rnn_status st = m2rnn_recurrence_forward_ref(&a.fwd);
    ck_assert_msg(st == M2RNN_OK, "%s", m2rnn_last_error());
    segment(&b, &p, S1, S - S1, &a.fwd.ht, &p.bwd.dht);
    rec_run(&b);
    memcpy(a.bwd.dht.data, b.bwd.dh0.data, m2rnn_tensor_nbytes(&b.bwd.dh0));
    rec_run(&a);

    int64_t NV = s.N * s.V, row_q = p.shape.nq * s.K, row_k = s.N * s.K, row_v = s.N * s.V, row_f = s.N;
    for (int64_t bb = 0; bb < s.B; bb++) {
        compare((double *)p.fwd.y.data + bb * S * NV, (double *)a.fwd.y.data + bb * S1 * NV, S1 * NV, true, "y (first part)");
        compare((double *)p.fwd.y.data + (bb * S + S1) * NV, (double *)b.fwd.y.data + bb * (S - S1) * NV, (S - S1) * NV, true,
                "y (second part)");
        const struct { const m2rnn_tensor *full, *first, *second; int64_t row; const char *name; } g[] = {
            {&p.bwd.dq, &a.bwd.dq, &b.bwd.dq, row_q, "dq"}, {&p.bwd.dk, &a.bwd.dk, &b.bwd.dk, row_k, "dk"},
            {&p.bwd.dv, &a.bwd.dv, &b.bwd.dv, row_v, "dv"}, {&p.bwd.df, &a.bwd.df, &b.bwd.df, row_f, "df"},
        };
        for (int i = 0; i < 4; i++) {
            compare((double *)g[i].full->data + bb * S * g[i].row, (double *)g[i].first->data + bb * S1 * g[i].row,
                    S1 * g[i].row, true, g[i].name);
            compare((double *)g[i].full->data + (bb * S + S1) * g[i].row,
                    (double *)g[i].second->data + bb * (S - S1) * g[i].row, (S - S1) * g[i].row, true, g[i].name);
        }
    }
    compare(p.fwd.ht.data, b.fwd.ht.data, m2rnn_tensor_numel(&p.fwd.ht), true, "ht");
    compare(p.bwd.dh0.data, a.bwd.dh0.data, m2rnn_tensor_numel(&p.bwd.dh0), true, "dh0");
    int64_t nw = m2rnn_tensor_numel(&p.bwd.dW);
    double *dW = malloc((size_t)nw * sizeof(double));
    for (int64_t e = 0; e < nw; e++) dW[e] = ((double *)a.bwd.dW.data)[e] + ((double *)b.bwd.dW.data)[e];
    compare(p.bwd.dW.data, dW, nw, false, "dW = dW(first) + dW(second)");
    free(dW);
    rec_problem_free(&p); rec_problem_free(&a); rec_problem_free(&b);
}

START_TEST(test_split_sequence_equals_whole) { check_split(M2RNN_CLIP_NONE, 0); }
END_TEST
/* With carry clipping the carried G is clamped at the top of every step, dht included: the
 * segment boundary clamps A's dht = B's (unclamped) dh0 exactly where the whole run clamps G. */
START_TEST(test_split_sequence_equals_whole_clip_carry) { check_split(M2RNN_CLIP_CARRY, 0.05); }
END_TEST

#ifdef _OPENMP
static void run_with_threads(rec_problem *p, int threads)
{
    omp_set_num_threads(threads);
    rec_run(p);
}

START_TEST(test_thread_count_independence)
{
    rec_shape s = {.name = "threads", .B = 3, .N = 6, .K = 7, .V = 5, .nq = 1, .nk = 3, .nw = 2, .h0 = true,
                   .dht = true, .varlen = 1, .seqlens = {23, 0, 9}, .clip_mode = M2RNN_CLIP_CARRY, .clip = 0.5};
    rec_problem one, many;
    rec_problem_init(&one, &s, 41);
    rec_problem_init(&many, &s, 41);
    run_with_threads(&one, 1);
    run_with_threads(&many, 5); /* more threads than lanes per thread: a different schedule */
    m2rnn_tensor *a[] = {&one.fwd.y, &one.fwd.ht, &one.bwd.dq, &one.bwd.dk, &one.bwd.dv, &one.bwd.dW, &one.bwd.df, &one.bwd.dh0};
    m2rnn_tensor *b[] = {&many.fwd.y, &many.fwd.ht, &many.bwd.dq, &many.bwd.dk, &many.bwd.dv, &many.bwd.dW, &many.bwd.df, &many.bwd.dh0};
    for (int i = 0; i < 8; i++) assert_tensors_equal(a[i], b[i], "1 thread vs 5 threads");
    rec_problem_free(&one);
    rec_problem_free(&many);
}
END_TEST
#endif

/* Round every input of p to bf16 values (kept in F64 tensors). */
static void round_inputs_to_bf16(rec_problem *p)
{
    m2rnn_tensor *in[] = {&p->fwd.in.q, &p->fwd.in.k, &p->fwd.in.v, &p->fwd.in.W, &p->fwd.in.f, &p->fwd.in.h0,
                          &p->bwd.dy, &p->bwd.dht};
    for (int i = 0; i < 8; i++)
        for (int64_t e = 0; e < m2rnn_tensor_numel(in[i]); e++)
            ((double *)in[i]->data)[e] = m2rnn_round_to(M2RNN_BF16, ((double *)in[i]->data)[e]);
}

/* The same tensor stored in dtype (fresh memory). */
static m2rnn_tensor stored_as(const m2rnn_tensor *t, m2rnn_dtype dtype)
{
    m2rnn_tensor u = tensor_like(t, dtype);
    m2rnn_tensor_from_f64(&u, t->data);
    return u;
}

START_TEST(test_low_precision_storage_rounds_once)
{
    rec_shape s = {.name = "storage", .B = 2, .S = 7, .N = 2, .K = 4, .V = 3, .nq = 1, .h0 = true, .dht = true};
    rec_problem p;
    rec_problem_init(&p, &s, 51);
    round_inputs_to_bf16(&p);
    rec_run(&p);
    const m2rnn_dtype dtypes[] = {M2RNN_F32, M2RNN_BF16, M2RNN_F16};
    for (int d = 0; d < 3; d++) {
        m2rnn_dtype dt = dtypes[d];
        /* Inputs stored in bf16 (exact: they are bf16 values), outputs in dt. */
        m2rnn_recurrence_forward_args fa = p.fwd;
        m2rnn_recurrence_backward_args ba = p.bwd;
        m2rnn_tensor *ins[] = {&fa.in.q, &fa.in.k, &fa.in.v, &fa.in.W, &fa.in.f, &fa.in.h0};
        for (int i = 0; i < 6; i++) *ins[i] = stored_as(ins[i], M2RNN_BF16);
        ba.in = fa.in;
        ba.dy = stored_as(&p.bwd.dy, M2RNN_BF16);
        ba.dht = stored_as(&p.bwd.dht, M2RNN_BF16);
        m2rnn_tensor *outs[] = {&fa.y, &fa.ht, &ba.dq, &ba.dk, &ba.dv, &ba.dW, &ba.df, &ba.dh0};
        const m2rnn_tensor *ref[] = {&p.fwd.y, &p.fwd.ht, &p.bwd.dq, &p.bwd.dk, &p.bwd.dv, &p.bwd.dW, &p.bwd.df, &p.bwd.dh0};
        for (int i = 0; i < 8; i++) *outs[i] = tensor_like(ref[i], dt);
        ck_assert_int_eq(m2rnn_recurrence_forward_ref(&fa), M2RNN_OK);
        ck_assert_int_eq(m2rnn_recurrence_backward_ref(&ba), M2RNN_OK);
        for (int i = 0; i < 8; i++) {
            for (int64_t e = 0; e < m2rnn_tensor_numel(ref[i]); e++) {
                double want = m2rnn_round_to(dt, ((double *)ref[i]->data)[e]);
                double got = m2rnn_tensor_get(outs[i], e);
                ck_assert_msg(got == want || (isnan(got) && isnan(want)), "%s output %d[%lld]: %.17g, want %.17g",
                              m2rnn_dtype_name(dt), i, (long long)e, got, want);
            }
            free(outs[i]->data);
        }
        for (int i = 0; i < 6; i++) free(ins[i]->data);
        free(ba.dy.data);
        free(ba.dht.data);
    }
    rec_problem_free(&p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("recurrence_invariants");
    TCase *tc = tcase_create("invariants");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_varlen_equals_separate_runs);
    tcase_add_test(tc, test_shared_heads_equal_repeated_heads);
    tcase_add_test(tc, test_split_sequence_equals_whole);
    tcase_add_test(tc, test_split_sequence_equals_whole_clip_carry);
#ifdef _OPENMP
    tcase_add_test(tc, test_thread_count_independence);
#endif
    tcase_add_test(tc, test_low_precision_storage_rounds_once);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return run_suite(suite()); }
