/*
 * Bad input: every violated precondition returns its error code and a message naming the
 * argument, and writes nothing (outputs are poisoned first and must come back untouched);
 * valid calls write nothing outside their outputs (guard zones after each output).
 * Also the plug-in loader's refusals: unknown name, not a plug-in, wrong ABI, unavailable device,
 * and the training pair's dispatchers (fallback to the plain ops, NULL buffers, partial tables).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static rec_problem p;
static int64_t allocated[8]; /* element counts of the outputs as allocated (tests edit the shapes) */

static m2rnn_tensor **outputs(void)
{
    static m2rnn_tensor *outs[8];
    m2rnn_tensor *list[8] = {&p.fwd.y, &p.fwd.ht, &p.bwd.dq, &p.bwd.dk, &p.bwd.dv, &p.bwd.dW, &p.bwd.df, &p.bwd.dh0};
    memcpy(outs, list, sizeof list);
    return outs;
}

static void setup(void)
{
    rec_shape s = {.name = "errors", .B = 2, .S = 3, .N = 4, .K = 3, .V = 2, .nq = 2, .h0 = true, .dht = true};
    rec_problem_init(&p, &s, 71);
    for (int i = 0; i < 8; i++) allocated[i] = m2rnn_tensor_numel(outputs()[i]);
}

static void teardown(void) { rec_problem_free(&p); }

/* Run forward and backward (through the dispatcher and the reference directly) on p as
 * modified, and require status `want` with `needle` in the message, and untouched outputs. */
static void expect_error(m2rnn_status want, const char *needle)
{
    m2rnn_tensor **outs = outputs();
    for (int i = 0; i < 8; i++)
        if (outs[i]->data)
            for (int64_t e = 0; e < allocated[i]; e++) ((double *)outs[i]->data)[e] = 12345.0;
    p.bwd.in = p.fwd.in;
    m2rnn_status got[4] = {
        m2rnn_recurrence_forward(m2rnn_backend_reference(), &p.fwd), m2rnn_recurrence_forward_ref(&p.fwd),
        m2rnn_recurrence_backward(m2rnn_backend_reference(), &p.bwd), m2rnn_recurrence_backward_ref(&p.bwd),
    };
    for (int i = 0; i < 4; i++) {
        /* forward-only problems (an output of the backward) may pass the forward */
        if (i < 2 && got[i] == M2RNN_OK && want != M2RNN_OK) continue;
        ck_assert_msg(got[i] == want, "call %d: status %d (%s: %s), want %d (%s)", i, got[i], m2rnn_status_string(got[i]),
                      m2rnn_last_error(), want, m2rnn_status_string(want));
    }
    ck_assert_msg(got[2] == want, "the backward must reject it");
    if (want == M2RNN_OK) return;
    ck_assert_msg(strstr(m2rnn_last_error(), needle) != NULL, "message '%s' does not name '%s'", m2rnn_last_error(), needle);
    for (int i = 2; i < 8; i++)
        if (outs[i]->data)
            for (int64_t e = 0; e < allocated[i]; e++)
                ck_assert_msg(((double *)outs[i]->data)[e] == 12345.0, "output %d written on error", i);
}

START_TEST(test_missing_tensors)
{
    void *saved = p.fwd.in.q.data;
    p.fwd.in.q.data = NULL;
    expect_error(M2RNN_ERR_NULL, "q");
    p.fwd.in.q.data = saved;
    saved = p.bwd.dW.data;
    p.bwd.dW.data = NULL;
    expect_error(M2RNN_ERR_NULL, "dW");
    p.bwd.dW.data = saved;
    saved = p.bwd.dy.data;
    p.bwd.dy.data = NULL;
    expect_error(M2RNN_ERR_NULL, "dy");
    p.bwd.dy.data = saved;
    ck_assert_int_eq(m2rnn_recurrence_forward(m2rnn_backend_reference(), NULL), M2RNN_ERR_NULL);
    ck_assert_int_eq(m2rnn_recurrence_backward_ref(NULL), M2RNN_ERR_NULL);
    ck_assert_int_eq(m2rnn_recurrence_forward(NULL, &p.fwd), M2RNN_ERR_NULL);
}
END_TEST

START_TEST(test_shape_mismatches)
{
    p.fwd.in.k.shape[3] = 4; /* K differs from q's */
    expect_error(M2RNN_ERR_SHAPE, "k");
    p.fwd.in.k.shape[3] = 3;
    p.fwd.in.v.shape[1] = 2; /* S differs */
    expect_error(M2RNN_ERR_SHAPE, "v");
    p.fwd.in.v.shape[1] = 3;
    p.fwd.in.W.shape[2] = 3; /* not V×V */
    expect_error(M2RNN_ERR_SHAPE, "W");
    p.fwd.in.W.shape[2] = 2;
    p.fwd.in.h0.shape[1] = 2;
    expect_error(M2RNN_ERR_SHAPE, "h0");
    p.fwd.in.h0.shape[1] = 4;
    p.fwd.in.f.rank = 4;
    expect_error(M2RNN_ERR_SHAPE, "f");
    p.fwd.in.f.rank = 3;
    p.bwd.dq.shape[2] = 4; /* dq must have q's shape (2 heads) */
    expect_error(M2RNN_ERR_SHAPE, "dq");
    p.bwd.dq.shape[2] = 2;
    p.bwd.dht.shape[3] = 3;
    expect_error(M2RNN_ERR_SHAPE, "dht");
    p.bwd.dht.shape[3] = 2;
    p.fwd.y.shape[2] = 2;
    m2rnn_status st = m2rnn_recurrence_forward(m2rnn_backend_reference(), &p.fwd);
    ck_assert_int_eq(st, M2RNN_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(m2rnn_last_error(), "y"));
}
END_TEST

START_TEST(test_heads_not_dividing)
{
    /* q with 3 heads when N = 4 */
    p.fwd.in.q.shape[2] = 3;
    p.bwd.dq.shape[2] = 3;
    expect_error(M2RNN_ERR_HEADS, "q");
}
END_TEST

START_TEST(test_bad_dtypes)
{
    p.fwd.in.v.dtype = M2RNN_I32;
    expect_error(M2RNN_ERR_DTYPE, "v");
    p.fwd.in.v.dtype = M2RNN_F64;
    p.bwd.df.dtype = M2RNN_I64;
    expect_error(M2RNN_ERR_DTYPE, "df");
    p.bwd.df.dtype = M2RNN_F64;
    p.fwd.in.W.dtype = (m2rnn_dtype)99;
    expect_error(M2RNN_ERR_DTYPE, "W");
}
END_TEST

START_TEST(test_bad_cu_seqlens)
{
    /* A packed batch of T = 6 tokens: reshape the dense tensors' (B,S) axes into T. */
    m2rnn_tensor *tok[] = {&p.fwd.in.q, &p.fwd.in.k, &p.fwd.in.v, &p.fwd.in.f, &p.fwd.y, &p.bwd.dy,
                           &p.bwd.dq, &p.bwd.dk, &p.bwd.dv, &p.bwd.df};
    for (int i = 0; i < 10; i++) {
        m2rnn_tensor *t = tok[i];
        t->shape[0] *= t->shape[1];
        for (int d = 1; d + 1 < t->rank; d++) t->shape[d] = t->shape[d + 1];
        t->rank--;
    }
    int32_t cu[3] = {0, 4, 6};
    p.fwd.in.cu_seqlens = m2rnn_tensor_of(cu, M2RNN_I32, 1, (int64_t)3);
    expect_error(M2RNN_OK, ""); /* valid as built */
    cu[0] = 1;
    expect_error(M2RNN_ERR_SEQLENS, "cu_seqlens[0]");
    cu[0] = 0; cu[1] = 7;
    expect_error(M2RNN_ERR_SEQLENS, "non-decreasing");
    cu[1] = 4; cu[2] = 5; /* T = 5, but the tensors have 6 rows */
    expect_error(M2RNN_ERR_SHAPE, "q");
    cu[2] = 6;
    p.fwd.in.cu_seqlens.dtype = M2RNN_F32;
    expect_error(M2RNN_ERR_DTYPE, "cu_seqlens");
    p.fwd.in.cu_seqlens.dtype = M2RNN_I32;
    p.fwd.in.cu_seqlens.shape[0] = 0;
    expect_error(M2RNN_ERR_SHAPE, "cu_seqlens");
}
END_TEST

START_TEST(test_size_overflow)
{
    /* 2^40 × 2^40 tokens: rejected before anything is allocated or read. */
    m2rnn_tensor *tok[] = {&p.fwd.in.q, &p.fwd.in.k, &p.fwd.in.v, &p.fwd.in.f, &p.fwd.y, &p.bwd.dy,
                           &p.bwd.dq, &p.bwd.dk, &p.bwd.dv, &p.bwd.df};
    for (int i = 0; i < 10; i++) { tok[i]->shape[0] = (int64_t)1 << 40; tok[i]->shape[1] = (int64_t)1 << 40; }
    p.fwd.in.h0.data = NULL;
    p.bwd.dht.data = NULL;
    m2rnn_status st = m2rnn_recurrence_forward(m2rnn_backend_reference(), &p.fwd);
    ck_assert_msg(st == M2RNN_ERR_OVERFLOW, "status %d: %s", st, m2rnn_last_error());
    st = m2rnn_recurrence_backward(m2rnn_backend_reference(), &p.bwd);
    ck_assert_int_eq(st, M2RNN_ERR_OVERFLOW);
    /* a negative dimension */
    for (int i = 0; i < 10; i++) { tok[i]->shape[0] = 2; tok[i]->shape[1] = 3; }
    p.fwd.in.W.shape[0] = -1;
    ck_assert_int_ne(m2rnn_recurrence_forward(m2rnn_backend_reference(), &p.fwd), M2RNN_OK);
}
END_TEST

START_TEST(test_bad_clip)
{
    p.bwd.clip_mode = (m2rnn_clip_mode)7;
    expect_error(M2RNN_ERR_ARG, "clip_mode");
    p.bwd.clip_mode = M2RNN_CLIP_TOTAL;
    p.bwd.clip = NAN;
    expect_error(M2RNN_ERR_ARG, "clip");
}
END_TEST

/* Valid calls write every element of every output and nothing beyond: guard zones. */
START_TEST(test_guard_zones)
{
    const int64_t guard = 64;
    m2rnn_tensor **outs = outputs();
    double *blocks[8];
    for (int i = 0; i < 8; i++) {
        int64_t n = m2rnn_tensor_numel(outs[i]);
        blocks[i] = malloc((size_t)(n + 2 * guard) * sizeof(double));
        for (int64_t e = 0; e < n + 2 * guard; e++) blocks[i][e] = NAN;
        free(outs[i]->data);
        outs[i]->data = blocks[i] + guard;
    }
    p.bwd.in = p.fwd.in;
    ck_assert_int_eq(m2rnn_recurrence_forward(m2rnn_backend_reference(), &p.fwd), M2RNN_OK);
    ck_assert_int_eq(m2rnn_recurrence_backward(m2rnn_backend_reference(), &p.bwd), M2RNN_OK);
    for (int i = 0; i < 8; i++) {
        int64_t n = m2rnn_tensor_numel(outs[i]);
        for (int64_t e = 0; e < guard; e++) {
            ck_assert_msg(isnan(blocks[i][e]) && isnan(blocks[i][guard + n + e]), "output %d: guard zone written", i);
        }
        for (int64_t e = 0; e < n; e++) ck_assert_msg(!isnan(blocks[i][guard + e]), "output %d[%lld] never written", i, (long long)e);
        outs[i]->data = NULL;
        free(blocks[i]);
    }
}
END_TEST

START_TEST(test_backend_loader_refusals)
{
    const m2rnn_backend *be = NULL;
    ck_assert_int_eq(m2rnn_backend_open("no_such_backend", &be), M2RNN_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(m2rnn_last_error(), "no_such_backend"));
    ck_assert_int_eq(m2rnn_backend_open("ref", &be), M2RNN_OK);
    ck_assert_ptr_eq(be, m2rnn_backend_reference());
    ck_assert_int_eq(m2rnn_backend_open("/nonexistent/libx.so", &be), M2RNN_ERR_IO);

    const char *dir = getenv("M2RNN_TEST_PLUGINS");
    ck_assert_msg(dir != NULL, "M2RNN_TEST_PLUGINS is not set (run through make check)");
    char path[4096];
    snprintf(path, sizeof path, "%s/plugin_bad_abi.so", dir);
    ck_assert_int_eq(m2rnn_backend_load(path, &be), M2RNN_ERR_ABI);
    ck_assert_msg(strstr(m2rnn_last_error(), "ABI") != NULL, "%s", m2rnn_last_error());
    snprintf(path, sizeof path, "%s/plugin_unavailable.so", dir);
    ck_assert_int_eq(m2rnn_backend_load(path, &be), M2RNN_ERR_BACKEND);
    ck_assert_msg(strstr(m2rnn_last_error(), "no test device present") != NULL, "%s", m2rnn_last_error());
    /* a shared object that is not a plug-in */
    snprintf(path, sizeof path, "%s/../../.libs/libm2rnn.so", dir);
    ck_assert_int_eq(m2rnn_backend_load(path, &be), M2RNN_ERR_ABI);
}
END_TEST

/* The training pair's dispatchers (ABI 1.3). The reference has no pair: saved_bytes is 0 and
 * forward_save / backward_saved are the plain ops, bit for bit. A table with the three entries
 * gets its entries called with the caller's buffer, and a NULL buffer is refused when the backend
 * asked for one; a table with only some of them is treated as having none. */
static int pair_calls;
static size_t mock_saved_bytes(void *ctx, const m2rnn_recurrence_forward_args *a)
{
    (void)ctx;
    (void)a;
    return 64;
}
static m2rnn_status mock_forward_save(void *ctx, const m2rnn_recurrence_forward_args *a, void *saved)
{
    (void)ctx;
    pair_calls++;
    memset(saved, 0x5a, 64);
    return m2rnn_recurrence_forward_ref(a);
}
static m2rnn_status mock_backward_saved(void *ctx, const m2rnn_recurrence_backward_args *a, const void *saved)
{
    (void)ctx;
    pair_calls++;
    for (int i = 0; i < 64; i++)
        if (((const unsigned char *)saved)[i] != 0x5a) return m2rnn_set_error(M2RNN_ERR_BACKEND, "mock: not forward_save's buffer");
    return m2rnn_recurrence_backward_ref(a);
}

START_TEST(test_training_pair_dispatch)
{
    const m2rnn_backend *ref = m2rnn_backend_reference();
    size_t bytes = 1;
    ck_assert_int_eq(m2rnn_recurrence_saved_bytes(ref, &p.fwd, &bytes), M2RNN_OK);
    ck_assert_uint_eq(bytes, 0);
    ck_assert_int_eq(m2rnn_recurrence_saved_bytes(ref, &p.fwd, NULL), M2RNN_ERR_NULL);
    ck_assert_int_eq(m2rnn_recurrence_saved_bytes(NULL, &p.fwd, &bytes), M2RNN_ERR_NULL);

    /* the reference: the plain ops */
    p.bwd.in = p.fwd.in;
    rec_run(&p);
    m2rnn_tensor *outs[8] = {&p.fwd.y, &p.fwd.ht, &p.bwd.dq, &p.bwd.dk, &p.bwd.dv, &p.bwd.dW, &p.bwd.df, &p.bwd.dh0};
    m2rnn_tensor plain[8];
    for (int i = 0; i < 8; i++) {
        plain[i] = tensor_like(outs[i], outs[i]->dtype);
        memcpy(plain[i].data, outs[i]->data, m2rnn_tensor_nbytes(outs[i]));
        memset(outs[i]->data, 0, m2rnn_tensor_nbytes(outs[i]));
    }
    ck_assert_int_eq(m2rnn_recurrence_forward_save(ref, &p.fwd, NULL), M2RNN_OK);
    ck_assert_int_eq(m2rnn_recurrence_backward_saved(ref, &p.bwd, NULL), M2RNN_OK);
    for (int i = 0; i < 8; i++) assert_tensors_equal(outs[i], &plain[i], "training pair on the reference");

    /* a backend with the pair */
    m2rnn_backend mock = *ref;
    mock.name = "mock";
    mock.recurrence_saved_bytes = mock_saved_bytes;
    mock.recurrence_forward_save = mock_forward_save;
    mock.recurrence_backward_saved = mock_backward_saved;
    ck_assert_int_eq(m2rnn_recurrence_saved_bytes(&mock, &p.fwd, &bytes), M2RNN_OK);
    ck_assert_uint_eq(bytes, 64);
    pair_calls = 0;
    ck_assert_int_eq(m2rnn_recurrence_forward_save(&mock, &p.fwd, NULL), M2RNN_ERR_NULL);
    ck_assert_msg(strstr(m2rnn_last_error(), "saved") != NULL, "%s", m2rnn_last_error());
    unsigned char buffer[64] = {0};
    ck_assert_int_eq(m2rnn_recurrence_backward_saved(&mock, &p.bwd, buffer), M2RNN_ERR_BACKEND); /* not filled yet */
    ck_assert_int_eq(m2rnn_recurrence_forward_save(&mock, &p.fwd, buffer), M2RNN_OK);
    ck_assert_int_eq(m2rnn_recurrence_backward_saved(&mock, &p.bwd, buffer), M2RNN_OK);
    ck_assert_int_eq(pair_calls, 3);
    for (int i = 0; i < 8; i++) assert_tensors_equal(outs[i], &plain[i], "training pair through the mock");
    /* invalid arguments are refused before the entry is called */
    m2rnn_tensor y = p.fwd.y;
    p.fwd.y.data = NULL;
    ck_assert_int_ne(m2rnn_recurrence_forward_save(&mock, &p.fwd, buffer), M2RNN_OK);
    p.fwd.y = y;
    ck_assert_int_eq(pair_calls, 3);

    /* only two of the three entries: no pair */
    mock.recurrence_saved_bytes = NULL;
    ck_assert_int_eq(m2rnn_recurrence_saved_bytes(&mock, &p.fwd, &bytes), M2RNN_OK);
    ck_assert_uint_eq(bytes, 0);
    ck_assert_int_eq(m2rnn_recurrence_forward_save(&mock, &p.fwd, NULL), M2RNN_OK);
    ck_assert_int_eq(pair_calls, 3);
    for (int i = 0; i < 8; i++) free(plain[i].data);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("recurrence_errors");
    TCase *tc = tcase_create("bad_input");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_missing_tensors);
    tcase_add_test(tc, test_shape_mismatches);
    tcase_add_test(tc, test_heads_not_dividing);
    tcase_add_test(tc, test_bad_dtypes);
    tcase_add_test(tc, test_bad_cu_seqlens);
    tcase_add_test(tc, test_size_overflow);
    tcase_add_test(tc, test_bad_clip);
    tcase_add_test(tc, test_guard_zones);
    tcase_add_test(tc, test_backend_loader_refusals);
    tcase_add_test(tc, test_training_pair_dispatch);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return run_suite(suite()); }
