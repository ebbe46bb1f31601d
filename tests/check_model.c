/*
 * The hybrid model (SPEC.md §5): the gradient of the whole model against central finite
 * differences on a tiny configuration (pattern "RGARGA": two layers of each kind, d = 8,
 * vocab 11), step-wise inference (token by token and in chunks, with the recurrent and conv
 * states and the KV caches) == the whole sequence's logits, init (loss ≈ log vocab), bad input.
 *
 * Finite differences: L = mean cross-entropy ≈ 2.4, ε = 1e-6, in double. Parameters are drawn
 * at O(1)/√fan_in (not the 0.02 init, whose gradients are too small to test), contractive M²RNN
 * W, g in about [-4, 0]; the stack is ~6 layers of smooth maps of O(1) values with third
 * derivatives below ~1e3: truncation ε²/6·1e3 ≈ 2e-10, rounding ≈ 1e-16·|L|·(depth)/ε ≈ 1e-9;
 * |fd - grad| <= 1e-6·(1 + |grad|). A wiring slip (a residual dropped, a norm's gradient not
 * added to the stream, a mixer's gradient into the wrong layer) moves gradients by O(grad).
 *
 * Step-wise: the same double computations; only the BLAS products of the linear layers may group
 * sums differently for 1 row than for S rows, a few ulps per layer that the stack does not
 * amplify (contractive recurrences, normalised streams): bound 1e-10 on logits of O(1).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer_testutil.h"

static m2rnn_model_config tiny_config(const char *pattern, bool rope)
{
    return (m2rnn_model_config){
        .pattern = pattern, .vocab = 11, .model_dim = 8, .mlp_dim = 12, .eps = 1e-5,
        .m2rnn = {.heads = 2, .q_heads = 1, .k_heads = 1, .key_dim = 3, .value_dim = 2, .eps = 1e-5}, .m2rnn_kernel = 4,
        .gdn = {.heads = 2, .key_dim = 3, .value_dim = 2, .eps = 1e-5}, .gdn_kernel = 4,
        .attn = {.q_heads = 2, .kv_heads = 1, .head_dim = 4, .rope = rope}};
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Random O(1) parameters in the regimes the blocks' own suites use. */
static void random_params(m2rnn_model *m, uint64_t seed)
{
    test_rng r = {seed * 31 + 7};
    for (int i = 0; i < m->num_tensors; i++) {
        m2rnn_model_tensor *e = &m->tensors[i];
        m2rnn_tensor *t = &e->t;
        const char *n = e->name;
        if (ends_with(n, "norm1") || ends_with(n, "norm2") || ends_with(n, "norm_w") || ends_with(n, "final_norm") || ends_with(n, ".D"))
            lt_fill(t, &r, 0.5, 1.5);
        else if (ends_with(n, "A_log")) lt_fill(t, &r, -1.5, 0.5);
        else if (ends_with(n, "dt_bias")) lt_fill(t, &r, -1, 1);
        else if (ends_with(n, "mixer.W") && t->rank == 3) lt_fill(t, &r, -0.9 / (double)t->shape[1], 0.9 / (double)t->shape[1]);
        else if (ends_with(n, "conv_w")) lt_fill(t, &r, -0.8, 0.8);
        else if (strcmp(n, "embed") == 0) lt_fill(t, &r, -1, 1);
        else {
            double a = 1.5 / sqrt((double)t->shape[t->rank - 1]); /* matrices: O(1) outputs */
            lt_fill(t, &r, -a, a);
        }
    }
}

typedef struct {
    m2rnn_model *m;
    m2rnn_model_run run;
    int64_t ids[16], targets[16];
} problem;

static void problem_init(problem *p, const char *pattern, bool rope, int64_t B, int64_t S, uint64_t seed)
{
    memset(p, 0, sizeof *p);
    m2rnn_model_config cfg = tiny_config(pattern, rope);
    ck_assert_msg(m2rnn_model_create(&cfg, &p->m) == M2RNN_OK, "%s", m2rnn_last_error());
    random_params(p->m, seed);
    test_rng r = {seed + 99};
    for (int64_t i = 0; i < B * S; i++) {
        p->ids[i] = (int64_t)test_uniform(&r, 0, 11);
        p->targets[i] = (int64_t)test_uniform(&r, 0, 11);
    }
    p->targets[1] = -100; /* one ignored token */
    p->run.ids = m2rnn_tensor_of(p->ids, M2RNN_I64, 2, B, S);
    p->run.targets = m2rnn_tensor_of(p->targets, M2RNN_I64, 2, B, S);
    p->run.has_ignore = true;
    p->run.ignore_index = -100;
}

static double model_loss(void *ctx)
{
    problem *p = ctx;
    m2rnn_model_run r = p->run;
    r.grad = NULL;
    ck_assert_msg(m2rnn_model_forward(p->m, &r) == M2RNN_OK, "%s", m2rnn_last_error());
    return r.loss;
}

START_TEST(test_model_gradient)
{
    problem p;
    problem_init(&p, "RGARGA", _i == 1, 2, 5, 1 + (uint64_t)_i);
    double *grad = calloc((size_t)p.m->num_params, sizeof(double));
    p.run.grad = grad;
    ck_assert_msg(m2rnn_model_backward(p.m, &p.run) == M2RNN_OK, "%s", m2rnn_last_error());
    double loss = p.run.loss;
    ck_assert_msg(loss > 0.5 && loss < 10, "loss %g", loss);
    ck_assert(fabs(model_loss(&p) - loss) == 0); /* the backward's loss is the forward's */
    double gmax = 0;
    for (int i = 0; i < p.m->num_tensors; i++) {
        m2rnn_model_tensor *e = &p.m->tensors[i];
        m2rnn_tensor g = m2rnn_tensor_make(grad + e->offset, M2RNN_F64, e->t.rank, e->t.shape);
        for (int64_t k = 0; k < m2rnn_tensor_numel(&g); k++) gmax = fmax(gmax, fabs(grad[e->offset + k]));
        char what[96];
        snprintf(what, sizeof what, "%s d%s", _i ? "rope" : "nope", e->name);
        lt_check_grad(model_loss, &p, &e->t, &g, 1e-6, 1e-6, what);
    }
    ck_assert_msg(gmax > 1e-2, "gradients too small to test (max %g)", gmax);
    ck_assert_int_eq(p.m->num_tensors, 3 + 6 * 5 + 2 * 8 + 2 * 7 + 2 * 2);
    free(grad);
    m2rnn_model_free(p.m);
}
END_TEST

/* Token by token (chunk 1) and in chunks (2, 3) with the states == the whole sequence. */
START_TEST(test_stepwise_equals_whole)
{
    const int64_t B = 2, S = 7, chunk = _i == 0 ? 1 : _i == 1 ? 2 : 3;
    problem p;
    problem_init(&p, "RGAGRA", _i == 2, B, S, 11);
    m2rnn_tensor whole = lt_tensor(3, B, S, (int64_t)11);
    m2rnn_model_run r = {.ids = p.run.ids, .logits = whole};
    ck_assert_msg(m2rnn_model_forward(p.m, &r) == M2RNN_OK, "%s", m2rnn_last_error());
    m2rnn_model_state *s;
    ck_assert_int_eq(m2rnn_model_state_create(p.m, B, S, &s), M2RNN_OK);
    for (int64_t t0 = 0; t0 < S; t0 += chunk) {
        int64_t n = t0 + chunk < S ? chunk : S - t0, ids[16];
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < n; t++) ids[b * n + t] = p.ids[b * S + t0 + t];
        m2rnn_tensor part = lt_tensor(3, B, n, (int64_t)11);
        m2rnn_model_run step = {.ids = m2rnn_tensor_of(ids, M2RNN_I64, 2, B, n), .state = s, .logits = part};
        ck_assert_msg(m2rnn_model_forward(p.m, &step) == M2RNN_OK, "%s", m2rnn_last_error());
        ck_assert_int_eq(s->pos, t0 + n);
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < n; t++)
                for (int64_t v = 0; v < 11; v++) {
                    double a = ((double *)part.data)[(b * n + t) * 11 + v], w = ((double *)whole.data)[(b * S + t0 + t) * 11 + v];
                    ck_assert_msg(fabs(a - w) <= 1e-10, "chunk %lld: logits[%lld,%lld,%lld] %.17g vs %.17g", (long long)chunk,
                                  (long long)b, (long long)(t0 + t), (long long)v, a, w);
                }
        free(part.data);
    }
    /* the state is full: one more token is refused */
    int64_t one[2] = {0, 0};
    m2rnn_model_run more = {.ids = m2rnn_tensor_of(one, M2RNN_I64, 2, B, (int64_t)1), .state = s};
    ck_assert_int_eq(m2rnn_model_forward(p.m, &more), M2RNN_ERR_ARG);
    m2rnn_model_state_free(s);
    free(whole.data);
    m2rnn_model_free(p.m);
}
END_TEST

START_TEST(test_init_and_errors)
{
    m2rnn_model_config cfg = tiny_config("RRRRARRR", false);
    m2rnn_model *m;
    ck_assert_int_eq(m2rnn_model_create(&cfg, &m), M2RNN_OK);
    ck_assert_int_eq(m->num_layers, 8);
    ck_assert_int_eq(m2rnn_model_init(m, 42), M2RNN_OK);
    ck_assert_ptr_nonnull(m2rnn_model_find(m, "layers.4.mixer.W_qkv"));
    ck_assert_ptr_null(m2rnn_model_find(m, "layers.4.mixer.W_in"));
    const double *W = m2rnn_model_find(m, "layers.0.mixer.W")->t.data;
    ck_assert(W[0] == 1 && W[1] == 0 && W[3] == 1); /* identity per head */
    int64_t ids[8] = {1, 2, 3, 4, 5, 6, 7, 8}, tg[8] = {2, 3, 4, 5, 6, 7, 8, 9};
    m2rnn_model_run r = {.ids = m2rnn_tensor_of(ids, M2RNN_I64, 2, (int64_t)2, (int64_t)4),
                         .targets = m2rnn_tensor_of(tg, M2RNN_I64, 2, (int64_t)2, (int64_t)4)};
    ck_assert_int_eq(m2rnn_model_forward(m, &r), M2RNN_OK);
    ck_assert_msg(fabs(r.loss - log(11.0)) < 0.05, "loss at init %g, log 11 = %g", r.loss, log(11.0)); /* small logits */
    ck_assert_int_eq(m2rnn_model_backward(m, &r), M2RNN_ERR_NULL); /* no grad buffer */
    ids[3] = 11;
    ck_assert_int_eq(m2rnn_model_forward(m, &r), M2RNN_ERR_ARG);
    ck_assert_msg(strstr(m2rnn_last_error(), "ids"), "%s", m2rnn_last_error());
    m2rnn_model_free(m);
    const char *bad[3] = {"RXA", "", "rga"};
    for (int i = 0; i < 3; i++) {
        cfg.pattern = bad[i];
        ck_assert_int_eq(m2rnn_model_create(&cfg, &m), M2RNN_ERR_ARG);
        ck_assert_msg(strstr(m2rnn_last_error(), "pattern"), "%s", m2rnn_last_error());
    }
    cfg = tiny_config("A", false);
    cfg.attn.kv_heads = 3;
    ck_assert_int_eq(m2rnn_model_create(&cfg, &m), M2RNN_ERR_HEADS);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("model");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_model_gradient, 0, 2);
    tcase_add_loop_test(tc, test_stepwise_equals_whole, 0, 3);
    tcase_add_test(tc, test_init_and_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return run_suite(suite()); }
