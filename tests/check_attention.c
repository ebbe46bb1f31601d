/*
 * Causal softmax attention and the attention block (SPEC.md §5): the forward against a
 * loop-by-loop evaluation (causal mask, GQA head map h / G, the half-split RoPE written out,
 * scale), max subtraction (scores of 1e3 stay finite), finite differences for dq, dk, dv (MHA,
 * GQA, RoPE, Dv != D) and for the block's dx, dW_qkv, dW_o, the KV cache (token by token and in
 * chunks == the whole sequence, op and block), bad input.
 *
 * Finite differences: L = Σ o·dout, ε = 1e-6 in double. Inputs O(1), scores O(1), so the softmax
 * and its derivatives are O(1) and third derivatives O(10): truncation ε²/6·10 ≈ 2e-12, rounding
 * ≈ 1e-16·|L|/ε ≈ 1e-10 for |L| ≈ 1: |fd - grad| <= 1e-7·(1 + |grad|) for the op; the block adds
 * two linear maps with O(1) weights (|L| ≈ 10): 1e-6·(1 + |grad|). A mask off by one, the
 * interleaved RoPE pairing, n % Hkv instead of n / G, or no 1/√D change the forward at O(1) and
 * fail the loop-by-loop comparison (bound 1e-13, a few ulps of O(1) sums).
 *
 * KV cache: the cached run computes every key's rotation, every score and every sum in the same
 * order as the whole run, so op outputs agree to 1e-14 (we allow a few ulps); the block's linear
 * layers may group BLAS sums differently for 1 row than for S rows: 1e-12.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer_testutil.h"

typedef struct {
    const char *name;
    int64_t B, S, Hq, Hkv, D, Dv;
    bool rope;
    double scale;
} att_case;

typedef struct {
    att_case c;
    m2rnn_attention_forward_args fwd;
    m2rnn_attention_backward_args bwd;
} att;

static void att_init(att *p, const att_case *c, uint64_t seed, double amp)
{
    memset(p, 0, sizeof *p);
    p->c = *c;
    test_rng r = {seed * 0x9e3779b97f4a7c15ull + 11};
    m2rnn_attention_inputs *in = &p->fwd.in;
    in->q = lt_tensor(4, c->B, c->S, c->Hq, c->D);
    in->k = lt_tensor(4, c->B, c->S, c->Hkv, c->D);
    in->v = lt_tensor(4, c->B, c->S, c->Hkv, c->Dv);
    in->rope = c->rope;
    in->scale = c->scale;
    lt_fill(&in->q, &r, -amp, amp);
    lt_fill(&in->k, &r, -1, 1);
    lt_fill(&in->v, &r, -1, 1);
    p->fwd.o = lt_tensor(4, c->B, c->S, c->Hq, c->Dv);
    p->bwd.dout = tensor_like(&p->fwd.o, M2RNN_F64);
    lt_fill(&p->bwd.dout, &r, -1, 1);
    p->bwd.dq = tensor_like(&in->q, M2RNN_F64);
    p->bwd.dk = tensor_like(&in->k, M2RNN_F64);
    p->bwd.dv = tensor_like(&in->v, M2RNN_F64);
    p->bwd.in = *in;
}

static void att_free(att *p)
{
    m2rnn_tensor *all[8] = {&p->fwd.in.q, &p->fwd.in.k, &p->fwd.in.v, &p->fwd.o, &p->bwd.dout, &p->bwd.dq, &p->bwd.dk, &p->bwd.dv};
    lt_free(all, 8);
}

static void att_run(att *p)
{
    const m2rnn_backend *be = m2rnn_backend_reference();
    p->bwd.in = p->fwd.in;
    ck_assert_msg(m2rnn_attention_forward(be, &p->fwd) == M2RNN_OK, "%s: %s", p->c.name, m2rnn_last_error());
    ck_assert_msg(m2rnn_attention_backward(be, &p->bwd) == M2RNN_OK, "%s: %s", p->c.name, m2rnn_last_error());
}

static double att_loss(void *ctx)
{
    att *p = ctx;
    ck_assert_int_eq(m2rnn_attention_forward_ref(&p->fwd), M2RNN_OK);
    return lt_dot(&p->fwd.o, &p->bwd.dout);
}

static const att_case cases[] = {
    {"mha_nope", 2, 5, 2, 2, 3, 3, false, 0.0},
    {"gqa_rope", 1, 6, 4, 2, 4, 3, true, 0.0},
    {"mqa_rope_scale", 2, 4, 3, 1, 2, 2, true, 0.7},
    {"single_token", 1, 1, 2, 1, 4, 5, true, 0.0},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

START_TEST(test_gradients)
{
    att p;
    att_init(&p, &cases[_i], 40 + (uint64_t)_i, 1.0);
    att_run(&p);
    m2rnn_tensor *xs[3] = {&p.fwd.in.q, &p.fwd.in.k, &p.fwd.in.v}, *gs[3] = {&p.bwd.dq, &p.bwd.dk, &p.bwd.dv};
    static const char *names[3] = {"dq", "dk", "dv"};
    char what[64];
    for (int i = 0; i < 3; i++) {
        snprintf(what, sizeof what, "%s: %s", cases[_i].name, names[i]);
        lt_check_grad(att_loss, &p, xs[i], gs[i], 1e-6, 1e-7, what);
    }
    att_free(&p);
}
END_TEST

/* The half-split rotation, written out: pair (d, d + D/2), angle pos·10000^(-2d/D). */
static void naive_rope(const double *x, double *y, int64_t D, int64_t pos)
{
    for (int64_t d = 0; d < D / 2; d++) {
        double a = (double)pos / pow(10000.0, (double)(2 * d) / (double)D);
        y[d] = x[d] * cos(a) - x[d + D / 2] * sin(a);
        y[d + D / 2] = x[d + D / 2] * cos(a) + x[d] * sin(a);
    }
}

/* amp scales q: with amp = 1e3 the scores reach ~1e3, which overflow exp() without the max. */
static void check_against_loops(const att_case *c, double amp)
{
    att p;
    att_init(&p, c, 5, amp);
    att_run(&p);
    const int64_t B = c->B, S = c->S, Hq = c->Hq, Hkv = c->Hkv, D = c->D, Dv = c->Dv, G = Hq / Hkv;
    const double scale = c->scale != 0 ? c->scale : 1 / sqrt((double)D);
    const double *q = p.fwd.in.q.data, *k = p.fwd.in.k.data, *v = p.fwd.in.v.data, *o = p.fwd.o.data;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < Hq; h++)
            for (int64_t i = 0; i < S; i++) {
                double qi[16], kj[16], s[16], mx = -INFINITY, sum = 0;
                const double *qs = q + ((b * S + i) * Hq + h) * D;
                if (c->rope) naive_rope(qs, qi, D, i); else memcpy(qi, qs, (size_t)D * sizeof(double));
                for (int64_t j = 0; j <= i; j++) {
                    const double *ks = k + ((b * S + j) * Hkv + h / G) * D;
                    if (c->rope) naive_rope(ks, kj, D, j); else memcpy(kj, ks, (size_t)D * sizeof(double));
                    s[j] = 0;
                    for (int64_t d = 0; d < D; d++) s[j] += qi[d] * kj[d];
                    s[j] *= scale;
                    mx = fmax(mx, s[j]);
                }
                for (int64_t j = 0; j <= i; j++) sum += exp(s[j] - mx);
                for (int64_t e = 0; e < Dv; e++) {
                    double acc = 0;
                    for (int64_t j = 0; j <= i; j++) acc += exp(s[j] - mx) / sum * v[((b * S + j) * Hkv + h / G) * Dv + e];
                    double got = o[((b * S + i) * Hq + h) * Dv + e];
                    ck_assert_msg(isfinite(got) && fabs(got - acc) <= 1e-13 * (1 + fabs(acc)), "%s amp %g: o[%lld,%lld,%lld,%lld] %.17g vs %.17g",
                                  c->name, amp, (long long)b, (long long)i, (long long)h, (long long)e, got, acc);
                }
            }
    att_free(&p);
}

START_TEST(test_forward_loops)
{
    check_against_loops(&cases[_i], 1.0);
}
END_TEST

START_TEST(test_max_subtraction)
{
    check_against_loops(&cases[0], 1e3);
    check_against_loops(&cases[1], 1e3);
}
END_TEST

/* Tokens [t0, t1) of a (B,S,...) tensor as a fresh (B, t1-t0, ...) F64 tensor. */
static m2rnn_tensor slice(const m2rnn_tensor *x, int64_t t0, int64_t t1)
{
    const int64_t B = x->shape[0], S = x->shape[1], row = m2rnn_tensor_numel(x) / (B * S);
    int64_t shape[M2RNN_MAX_RANK];
    memcpy(shape, x->shape, sizeof shape);
    shape[1] = t1 - t0;
    m2rnn_tensor s = lt_tensor_dtype(M2RNN_F64, x->rank, shape);
    for (int64_t b = 0; b < B; b++)
        memcpy((double *)s.data + b * (t1 - t0) * row, (double *)x->data + (b * S + t0) * row, (size_t)((t1 - t0) * row) * sizeof(double));
    return s;
}

/* The op with a KV cache, chunk by chunk == the whole sequence. */
START_TEST(test_kv_cache)
{
    const int64_t chunk = _i == 0 ? 1 : 4;
    const att_case *c = &cases[1];
    att p;
    att_init(&p, c, 9, 1.0);
    att_run(&p);
    const int64_t Smax = c->S + 2;
    m2rnn_tensor kc = lt_tensor(4, c->B, Smax, c->Hkv, c->D), vc = lt_tensor(4, c->B, Smax, c->Hkv, c->Dv);
    for (int64_t t0 = 0; t0 < c->S; t0 += chunk) {
        int64_t t1 = t0 + chunk < c->S ? t0 + chunk : c->S;
        m2rnn_attention_forward_args f = {.in = p.fwd.in};
        f.in.q = slice(&p.fwd.in.q, t0, t1);
        f.in.k = slice(&p.fwd.in.k, t0, t1);
        f.in.v = slice(&p.fwd.in.v, t0, t1);
        f.in.k_cache = kc;
        f.in.v_cache = vc;
        f.in.cache_len = t0;
        f.o = slice(&p.fwd.o, t0, t1);
        m2rnn_tensor want = slice(&p.fwd.o, t0, t1);
        ck_assert_msg(m2rnn_attention_forward(m2rnn_backend_reference(), &f) == M2RNN_OK, "%s", m2rnn_last_error());
        ck_assert_msg(lt_max_abs_diff(&want, &f.o) <= 1e-14, "o at %lld: %g", (long long)t0, lt_max_abs_diff(&want, &f.o));
        m2rnn_tensor *done[5] = {&f.in.q, &f.in.k, &f.in.v, &f.o, &want};
        lt_free(done, 5);
    }
    m2rnn_tensor *done[2] = {&kc, &vc};
    lt_free(done, 2);
    att_free(&p);
}
END_TEST

/* ---- the block ---------------------------------------------------------------------------- */

typedef struct {
    m2rnn_attention_block_forward_args fwd;
    m2rnn_attention_block_backward_args bwd;
} ablk;

static void ablk_init(ablk *p, int64_t B, int64_t S, int64_t d, int64_t Hq, int64_t Hkv, int64_t D, bool rope, uint64_t seed)
{
    memset(p, 0, sizeof *p);
    test_rng r = {seed + 101};
    m2rnn_attention_block_inputs *in = &p->fwd.in;
    in->cfg = (m2rnn_attention_block_config){.q_heads = Hq, .kv_heads = Hkv, .head_dim = D, .rope = rope};
    in->x = lt_tensor(3, B, S, d);
    in->W_qkv = lt_tensor(2, (Hq + 2 * Hkv) * D, d);
    in->W_o = lt_tensor(2, d, Hq * D);
    lt_fill(&in->x, &r, -1, 1);
    lt_fill(&in->W_qkv, &r, -0.7, 0.7);
    lt_fill(&in->W_o, &r, -0.7, 0.7);
    p->fwd.o = tensor_like(&in->x, M2RNN_F64);
    p->bwd.dout = tensor_like(&in->x, M2RNN_F64);
    lt_fill(&p->bwd.dout, &r, -1, 1);
    p->bwd.dx = tensor_like(&in->x, M2RNN_F64);
    p->bwd.dW_qkv = tensor_like(&in->W_qkv, M2RNN_F64);
    p->bwd.dW_o = tensor_like(&in->W_o, M2RNN_F64);
    p->bwd.in = *in;
}

static void ablk_free(ablk *p)
{
    m2rnn_tensor *all[8] = {&p->fwd.in.x, &p->fwd.in.W_qkv, &p->fwd.in.W_o, &p->fwd.o, &p->bwd.dout, &p->bwd.dx, &p->bwd.dW_qkv, &p->bwd.dW_o};
    lt_free(all, 8);
}

static double ablk_loss(void *ctx)
{
    ablk *p = ctx;
    ck_assert_int_eq(m2rnn_attention_block_forward_ref(&p->fwd), M2RNN_OK);
    return lt_dot(&p->fwd.o, &p->bwd.dout);
}

START_TEST(test_block_gradients)
{
    ablk p;
    ablk_init(&p, 2, 4, 5, _i == 0 ? 2 : 4, _i == 0 ? 2 : 2, 2, _i == 1, 7 + (uint64_t)_i);
    const m2rnn_backend *be = m2rnn_backend_reference();
    p.bwd.in = p.fwd.in;
    ck_assert_msg(m2rnn_attention_block_forward(be, &p.fwd) == M2RNN_OK, "%s", m2rnn_last_error());
    ck_assert_msg(m2rnn_attention_block_backward(be, &p.bwd) == M2RNN_OK, "%s", m2rnn_last_error());
    lt_check_grad(ablk_loss, &p, &p.fwd.in.x, &p.bwd.dx, 1e-6, 1e-6, "block dx");
    lt_check_grad(ablk_loss, &p, &p.fwd.in.W_qkv, &p.bwd.dW_qkv, 1e-6, 1e-6, "block dW_qkv");
    lt_check_grad(ablk_loss, &p, &p.fwd.in.W_o, &p.bwd.dW_o, 1e-6, 1e-6, "block dW_o");
    ablk_free(&p);
}
END_TEST

START_TEST(test_block_kv_cache)
{
    ablk p;
    const int64_t B = 2, S = 5, Hkv = 1, D = 4;
    ablk_init(&p, B, S, 6, 2, Hkv, D, true, 3);
    ck_assert_int_eq(m2rnn_attention_block_forward_ref(&p.fwd), M2RNN_OK);
    m2rnn_tensor kc = lt_tensor(4, B, S, Hkv, D), vc = lt_tensor(4, B, S, Hkv, D);
    for (int64_t t = 0; t < S; t++) {
        m2rnn_attention_block_forward_args f = {.in = p.fwd.in};
        f.in.x = slice(&p.fwd.in.x, t, t + 1);
        f.in.k_cache = kc;
        f.in.v_cache = vc;
        f.in.cache_len = t;
        f.o = tensor_like(&f.in.x, M2RNN_F64);
        m2rnn_tensor want = slice(&p.fwd.o, t, t + 1);
        ck_assert_msg(m2rnn_attention_block_forward(m2rnn_backend_reference(), &f) == M2RNN_OK, "%s", m2rnn_last_error());
        ck_assert_msg(lt_max_abs_diff(&want, &f.o) <= 1e-12, "o at %lld: %g", (long long)t, lt_max_abs_diff(&want, &f.o));
        m2rnn_tensor *done[3] = {&f.in.x, &f.o, &want};
        lt_free(done, 3);
    }
    m2rnn_tensor *done[2] = {&kc, &vc};
    lt_free(done, 2);
    ablk_free(&p);
}
END_TEST

static void expect(att *p, m2rnn_status want, const char *name)
{
    m2rnn_status st = m2rnn_attention_forward(m2rnn_backend_reference(), &p->fwd);
    ck_assert_msg(st == want, "forward: want %d got %d (%s)", want, st, m2rnn_last_error());
    if (name[0]) ck_assert_msg(strstr(m2rnn_last_error(), name), "message '%s' does not name %s", m2rnn_last_error(), name);
}

START_TEST(test_errors)
{
    att p;
    att_init(&p, &cases[1], 1, 1.0);
    m2rnn_attention_inputs *in = &p.fwd.in;
    m2rnn_tensor saved = in->k;
    in->k.shape[2] = 3; expect(&p, M2RNN_ERR_HEADS, "k"); in->k = saved;
    in->k.shape[1]--; expect(&p, M2RNN_ERR_SHAPE, "k"); in->k = saved;
    saved = in->v;
    in->v.data = NULL; expect(&p, M2RNN_ERR_NULL, "v"); in->v = saved;
    in->q.shape[3] = 3; in->k.shape[3] = 3; expect(&p, M2RNN_ERR_ARG, "rope"); in->q.shape[3] = 4; in->k.shape[3] = 4;
    in->cache_len = 2; expect(&p, M2RNN_ERR_ARG, "cache_len"); in->cache_len = 0;
    m2rnn_tensor kc = lt_tensor(4, p.c.B, p.c.S + 1, p.c.Hkv, p.c.D), vc = lt_tensor(4, p.c.B, p.c.S + 1, p.c.Hkv, p.c.Dv);
    in->k_cache = kc; expect(&p, M2RNN_ERR_NULL, "v_cache");
    in->v_cache = vc; in->cache_len = 2; expect(&p, M2RNN_ERR_ARG, "cache_len");
    in->cache_len = 1; expect(&p, M2RNN_OK, "");
    p.bwd.in = *in;
    ck_assert_int_eq(m2rnn_attention_backward(m2rnn_backend_reference(), &p.bwd), M2RNN_ERR_ARG);
    in->k_cache = in->v_cache = (m2rnn_tensor){0};
    in->cache_len = 0;
    in->scale = NAN; expect(&p, M2RNN_ERR_ARG, "scale"); in->scale = 0;
    ck_assert_int_eq(m2rnn_attention_forward(NULL, &p.fwd), M2RNN_ERR_NULL);
    ck_assert_int_eq(m2rnn_attention_backward_ref(NULL), M2RNN_ERR_NULL);
    expect(&p, M2RNN_OK, "");
    ck_assert_str_eq(m2rnn_op_name(M2RNN_OP_ATTENTION_BLOCK_FORWARD), "attention_block_forward");
    m2rnn_tensor *done[2] = {&kc, &vc};
    lt_free(done, 2);
    att_free(&p);
    ablk b;
    ablk_init(&b, 1, 3, 4, 3, 2, 2, false, 1);
    ck_assert_int_eq(m2rnn_attention_block_forward(m2rnn_backend_reference(), &b.fwd), M2RNN_ERR_HEADS);
    b.fwd.in.cfg.kv_heads = 3;
    ck_assert_int_eq(m2rnn_attention_block_forward(m2rnn_backend_reference(), &b.fwd), M2RNN_ERR_SHAPE); /* W_qkv sized for Hkv = 2 */
    ablk_free(&b);
}
END_TEST

START_TEST(test_block_init)
{
    ablk p;
    ablk_init(&p, 1, 2, 8, 2, 1, 4, false, 1);
    m2rnn_rng rng = m2rnn_rng_seed(3);
    ck_assert_int_eq(m2rnn_attention_block_init(&p.fwd.in, 2, &rng), M2RNN_OK);
    double ss = 0;
    int64_t n = m2rnn_tensor_numel(&p.fwd.in.W_o);
    for (int64_t e = 0; e < n; e++) ss += ((double *)p.fwd.in.W_o.data)[e] * ((double *)p.fwd.in.W_o.data)[e];
    ck_assert_msg(sqrt(ss / (double)n) < 0.02, "W_o std %g", sqrt(ss / (double)n));
    ablk_free(&p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("attention");
    TCase *tc = tcase_create("attention");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_gradients, 0, N_CASES);
    tcase_add_loop_test(tc, test_forward_loops, 0, N_CASES);
    tcase_add_test(tc, test_max_subtraction);
    tcase_add_loop_test(tc, test_kv_cache, 0, 2);
    tcase_add_loop_test(tc, test_block_gradients, 0, 2);
    tcase_add_test(tc, test_block_kv_cache);
    tcase_add_test(tc, test_block_init);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return run_suite(suite()); }
