/*
 * The Gated DeltaNet block (SPEC.md §5): finite differences for the input, every parameter, h0
 * and the conv state (dense and packed), token-by-token and chunked forwards == the whole
 * sequence (outputs and final states), the composition against the pieces called by hand, init,
 * bad input.
 *
 * Finite differences: L = Σ o·dout + Σ ht·dht + Σ conv_state_out·dconv_state_out, ε = 1e-6 in
 * double. The block chains ~9 smooth maps on O(1) values (g in about [-4, 0], β in (0,1), the
 * L2-normalised q, k with ‖k‖ >= ~0.1 after the conv, RMS of o2 kept O(1) by the weights), so
 * third derivatives stay below ~1e3: truncation ε²/6·1e3 ≈ 2e-10, rounding ≈ 1e-16·|L|/ε ≈ 1e-9
 * for |L| ≈ 10; |fd - grad| <= 1e-6·(1 + |grad|) leaves >= 2 orders of margin. Wiring slips
 * (gate after the norm, norm over H·V instead of V, β without the sigmoid, g through exp) move
 * the forward by O(1) and fail the hand composition.
 *
 * Streaming: the pieces are the same double computations on the same numbers, except that the
 * linear layers' BLAS products may group sums differently for 1 row than for S rows: differences
 * stay at a few ulps of O(1) values; bound 1e-12 (absolute, outputs O(1)).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer_testutil.h"

typedef struct {
    const char *name;
    int64_t B, S, d, H, K, V, Kc;
    bool h0, cs0, dht, dcs;
    int varlen;
    int64_t seqlens[4];
} gb_case;

typedef struct {
    gb_case c;
    int64_t C, P;
    int64_t cu[5];
    m2rnn_gdn_block_forward_args fwd;
    m2rnn_gdn_block_backward_args bwd;
} gb;

#define N_GRADS 10
static const char *grad_names[N_GRADS] = {"dW_qkv", "dW_abg", "dconv_w", "dA_log", "ddt_bias", "dnorm_w", "dW_o",
                                          "dx", "dh0", "dconv_state0"};

static m2rnn_tensor *gb_param(gb *p, int i)
{
    m2rnn_gdn_block_inputs *in = &p->fwd.in;
    m2rnn_tensor *t[N_GRADS] = {&in->W_qkv, &in->W_abg, &in->conv_w, &in->A_log, &in->dt_bias, &in->norm_w, &in->W_o,
                                &in->x, &in->h0, &in->conv_state0};
    return t[i];
}
static m2rnn_tensor *gb_grad(gb *p, int i)
{
    m2rnn_gdn_block_backward_args *b = &p->bwd;
    m2rnn_tensor *t[N_GRADS] = {&b->dW_qkv, &b->dW_abg, &b->dconv_w, &b->dA_log, &b->ddt_bias, &b->dnorm_w, &b->dW_o,
                                &b->dx, &b->dh0, &b->dconv_state0};
    return t[i];
}

static void gb_init(gb *p, const gb_case *c, uint64_t seed)
{
    memset(p, 0, sizeof *p);
    p->c = *c;
    test_rng r = {seed * 0x9e3779b97f4a7c15ull + 5};
    const int64_t H = c->H, K = c->K, V = c->V, C = 2 * H * K + H * V, P = 2 * H + H * V;
    p->C = C;
    p->P = P;
    m2rnn_gdn_block_inputs *in = &p->fwd.in;
    in->cfg = (m2rnn_gdn_block_config){.heads = H, .key_dim = K, .value_dim = V, .eps = 1e-5};
    if (c->varlen) {
        for (int64_t b = 0; b < c->B; b++) p->cu[b + 1] = p->cu[b] + c->seqlens[b];
        in->cu_seqlens = m2rnn_tensor_of(p->cu, M2RNN_I64, 1, c->B + 1);
        in->x = lt_tensor(2, p->cu[c->B], c->d);
    } else {
        in->x = lt_tensor(3, c->B, c->S, c->d);
    }
    in->W_qkv = lt_tensor(2, C, c->d);
    in->W_abg = lt_tensor(2, P, c->d);
    in->conv_w = lt_tensor(2, C, c->Kc);
    in->A_log = lt_tensor(1, H);
    in->dt_bias = lt_tensor(1, H);
    in->norm_w = lt_tensor(1, V);
    in->W_o = lt_tensor(2, c->d, H * V);
    lt_fill(&in->x, &r, -1, 1);
    lt_fill(&in->W_qkv, &r, -0.8, 0.8);
    lt_fill(&in->W_abg, &r, -0.8, 0.8);
    lt_fill(&in->conv_w, &r, -0.8, 0.8);
    lt_fill(&in->A_log, &r, -1.5, 0.5);
    lt_fill(&in->dt_bias, &r, -1, 1);
    lt_fill(&in->norm_w, &r, 0.5, 1.5);
    lt_fill(&in->W_o, &r, -0.6, 0.6);
    if (c->h0) { in->h0 = lt_tensor(4, c->B, H, K, V); lt_fill(&in->h0, &r, -1, 1); }
    if (c->cs0) { in->conv_state0 = lt_tensor(3, c->B, C, c->Kc - 1); lt_fill(&in->conv_state0, &r, -1, 1); }
    p->fwd.o = tensor_like(&in->x, M2RNN_F64);
    p->fwd.ht = lt_tensor(4, c->B, H, K, V);
    p->fwd.conv_state_out = lt_tensor(3, c->B, C, c->Kc - 1);
    m2rnn_gdn_block_backward_args *bw = &p->bwd;
    bw->dout = tensor_like(&in->x, M2RNN_F64);
    lt_fill(&bw->dout, &r, -1, 1);
    if (c->dht) { bw->dht = lt_tensor(4, c->B, H, K, V); lt_fill(&bw->dht, &r, -1, 1); }
    if (c->dcs) { bw->dconv_state_out = lt_tensor(3, c->B, C, c->Kc - 1); lt_fill(&bw->dconv_state_out, &r, -1, 1); }
    for (int i = 0; i < 8; i++) *gb_grad(p, i) = tensor_like(gb_param(p, i), M2RNN_F64);
    bw->dh0 = lt_tensor(4, c->B, H, K, V);
    bw->dconv_state0 = lt_tensor(3, c->B, C, c->Kc - 1);
    bw->in = *in;
}

static void gb_free(gb *p)
{
    for (int i = 0; i < N_GRADS; i++) {
        free(gb_param(p, i)->data);
        free(gb_grad(p, i)->data);
    }
    m2rnn_tensor *rest[6] = {&p->fwd.o, &p->fwd.ht, &p->fwd.conv_state_out, &p->bwd.dout, &p->bwd.dht, &p->bwd.dconv_state_out};
    lt_free(rest, 6);
}

static void gb_run(gb *p)
{
    p->bwd.in = p->fwd.in;
    const m2rnn_backend *be = m2rnn_backend_reference();
    ck_assert_msg(m2rnn_gdn_block_forward(be, &p->fwd) == M2RNN_OK, "%s: forward: %s", p->c.name, m2rnn_last_error());
    ck_assert_msg(m2rnn_gdn_block_backward(be, &p->bwd) == M2RNN_OK, "%s: backward: %s", p->c.name, m2rnn_last_error());
}

static double gb_loss(void *ctx)
{
    gb *p = ctx;
    ck_assert_int_eq(m2rnn_gdn_block_forward_ref(&p->fwd), M2RNN_OK);
    return lt_dot(&p->fwd.o, &p->bwd.dout) + lt_dot(&p->fwd.ht, &p->bwd.dht) +
           lt_dot(&p->fwd.conv_state_out, &p->bwd.dconv_state_out);
}

static const gb_case cases[] = {
    {"all_states", 2, 4, 5, 2, 3, 2, 4, true, true, true, true, 0, {0}},
    {"no_states", 1, 5, 4, 2, 2, 3, 4, false, false, false, false, 0, {0}},
    {"kernel1_H1", 1, 3, 3, 1, 2, 2, 1, true, true, true, true, 0, {0}},
    {"varlen", 3, 0, 4, 2, 2, 2, 4, true, true, true, true, 1, {3, 0, 4}},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

START_TEST(test_gradients)
{
    gb p;
    gb_init(&p, &cases[_i], 20 + (uint64_t)_i);
    gb_run(&p);
    char what[96];
    for (int i = 0; i < N_GRADS; i++) {
        if (!m2rnn_tensor_present(gb_param(&p, i))) continue;
        snprintf(what, sizeof what, "%s: %s", cases[_i].name, grad_names[i]);
        lt_check_grad(gb_loss, &p, gb_param(&p, i), gb_grad(&p, i), 1e-6, 1e-6, what);
    }
    gb_free(&p);
}
END_TEST

/* The forward against the pieces called one by one through the public dispatchers, with the
 * elementwise steps written out here (dense, case 0). */
static double sigm(double u) { return 1.0 / (1.0 + exp(-u)); }

START_TEST(test_forward_composition)
{
    gb p;
    gb_init(&p, &cases[0], 3);
    gb_run(&p);
    const m2rnn_backend *be = m2rnn_backend_reference();
    const gb_case *c = &p.c;
    const int64_t B = c->B, S = c->S, H = c->H, K = c->K, V = c->V, C = p.C, P = p.P, T = B * S;
    m2rnn_gdn_block_inputs *in = &p.fwd.in;
    m2rnn_tensor raw = lt_tensor(3, B, S, C), abg = lt_tensor(3, B, S, P), qkv = lt_tensor(3, B, S, C);
    m2rnn_linear_forward_args l1 = {.in = {.x = in->x, .W = in->W_qkv}, .y = raw}, l2 = {.in = {.x = in->x, .W = in->W_abg}, .y = abg};
    ck_assert_int_eq(m2rnn_linear_forward(be, &l1), M2RNN_OK);
    ck_assert_int_eq(m2rnn_linear_forward(be, &l2), M2RNN_OK);
    m2rnn_conv1d_forward_args cv = {.in = {.x = raw, .w = in->conv_w, .state0 = in->conv_state0, .activation = M2RNN_ACT_SILU}, .y = qkv};
    ck_assert_int_eq(m2rnn_conv1d_forward(be, &cv), M2RNN_OK);
    m2rnn_tensor q = lt_tensor(4, B, S, H, K), k = lt_tensor(4, B, S, H, K), v = lt_tensor(4, B, S, H, V);
    m2rnn_tensor g = lt_tensor(3, B, S, H), beta = lt_tensor(3, B, S, H), o = lt_tensor(4, B, S, H, V);
    double *Q = q.data, *Kk = k.data, *Vv = v.data, *G = g.data, *Be = beta.data, *X = qkv.data, *A = abg.data;
    const double *Al = in->A_log.data, *dtb = in->dt_bias.data;
    for (int64_t t = 0; t < T; t++) {
        for (int64_t e = 0; e < H * K; e++) { Q[t * H * K + e] = X[t * C + e]; Kk[t * H * K + e] = X[t * C + H * K + e]; }
        for (int64_t e = 0; e < H * V; e++) Vv[t * H * V + e] = X[t * C + 2 * H * K + e];
        for (int64_t h = 0; h < H; h++) {
            G[t * H + h] = -exp(Al[h]) * log1p(exp(A[t * P + h] + dtb[h]));
            Be[t * H + h] = sigm(A[t * P + H + h]);
        }
    }
    m2rnn_gdn_forward_args rec = {.in = {.q = q, .k = k, .v = v, .g = g, .beta = beta, .h0 = in->h0, .l2norm_qk = true}, .o = o};
    ck_assert_int_eq(m2rnn_gdn_forward(be, &rec), M2RNN_OK);
    double *O = o.data, *nw = in->norm_w.data, *Wo = in->W_o.data, *out = p.fwd.o.data;
    for (int64_t t = 0; t < T; t++) {
        double y[64];
        for (int64_t h = 0; h < H; h++) {
            double ms = 0;
            for (int64_t j = 0; j < V; j++) {
                double gt = A[t * P + 2 * H + h * V + j];
                y[h * V + j] = O[t * H * V + h * V + j] * gt * sigm(gt);
                ms += y[h * V + j] * y[h * V + j] / (double)V;
            }
            for (int64_t j = 0; j < V; j++) y[h * V + j] = y[h * V + j] / sqrt(ms + 1e-5) * nw[j];
        }
        for (int64_t i = 0; i < c->d; i++) {
            double acc = 0;
            for (int64_t e = 0; e < H * V; e++) acc += y[e] * Wo[i * H * V + e];
            ck_assert_msg(fabs(out[t * c->d + i] - acc) <= 1e-12 * (1 + fabs(acc)), "o[%lld]: %.17g vs %.17g", (long long)(t * c->d + i),
                          out[t * c->d + i], acc);
        }
    }
    m2rnn_tensor *tmp[9] = {&raw, &abg, &qkv, &q, &k, &v, &g, &beta, &o};
    lt_free(tmp, 9);
    gb_free(&p);
}
END_TEST

/* Tokens [t0, t1) of a dense (B,S,d) tensor as a fresh (B, t1-t0, d) tensor. */
static m2rnn_tensor slice(const m2rnn_tensor *x, int64_t t0, int64_t t1)
{
    const int64_t B = x->shape[0], S = x->shape[1], d = x->shape[2];
    m2rnn_tensor s = lt_tensor(3, B, t1 - t0, d);
    for (int64_t b = 0; b < B; b++)
        memcpy((double *)s.data + b * (t1 - t0) * d, (double *)x->data + (b * S + t0) * d, (size_t)((t1 - t0) * d) * sizeof(double));
    return s;
}

/* Running chunk by chunk with the states passed on == the whole sequence. */
START_TEST(test_streaming)
{
    const int64_t chunk = _i == 0 ? 1 : 3;
    gb_case c = {"stream", 2, 7, 4, 2, 3, 2, 4, true, true, true, true, 0, {0}};
    gb p;
    gb_init(&p, &c, 77);
    gb_run(&p);
    m2rnn_tensor h = tensor_like(&p.fwd.ht, M2RNN_F64), cs = tensor_like(&p.fwd.conv_state_out, M2RNN_F64);
    memcpy(h.data, p.fwd.in.h0.data, m2rnn_tensor_nbytes(&h));
    memcpy(cs.data, p.fwd.in.conv_state0.data, m2rnn_tensor_nbytes(&cs));
    for (int64_t t0 = 0; t0 < c.S; t0 += chunk) {
        int64_t t1 = t0 + chunk < c.S ? t0 + chunk : c.S;
        m2rnn_gdn_block_forward_args f = {.in = p.fwd.in};
        f.in.x = slice(&p.fwd.in.x, t0, t1);
        f.in.h0 = h;
        f.in.conv_state0 = cs;
        f.o = tensor_like(&f.in.x, M2RNN_F64);
        f.ht = tensor_like(&h, M2RNN_F64);
        f.conv_state_out = tensor_like(&cs, M2RNN_F64);
        ck_assert_msg(m2rnn_gdn_block_forward(m2rnn_backend_reference(), &f) == M2RNN_OK, "%s", m2rnn_last_error());
        m2rnn_tensor whole = slice(&p.fwd.o, t0, t1);
        ck_assert_msg(lt_max_abs_diff(&whole, &f.o) <= 1e-12, "o at %lld: %g", (long long)t0, lt_max_abs_diff(&whole, &f.o));
        m2rnn_tensor *done[5] = {&whole, &f.in.x, &f.o, &h, &cs};
        lt_free(done, 5);
        h = f.ht;
        cs = f.conv_state_out;
    }
    ck_assert_msg(lt_max_abs_diff(&h, &p.fwd.ht) <= 1e-12, "ht");
    ck_assert_msg(lt_max_abs_diff(&cs, &p.fwd.conv_state_out) == 0, "conv_state_out");
    m2rnn_tensor *done[2] = {&h, &cs};
    lt_free(done, 2);
    gb_free(&p);
}
END_TEST

START_TEST(test_init)
{
    gb p;
    gb_init(&p, &cases[0], 1);
    m2rnn_rng rng = m2rnn_rng_seed(5);
    ck_assert_int_eq(m2rnn_gdn_block_init(&p.fwd.in, 4, &rng), M2RNN_OK);
    const double *nw = p.fwd.in.norm_w.data, *Al = p.fwd.in.A_log.data;
    for (int64_t j = 0; j < p.c.V; j++) ck_assert(nw[j] == 1.0);
    for (int64_t h = 0; h < p.c.H; h++) ck_assert(Al[h] <= log(16.0));
    double ss = 0;
    int64_t n = m2rnn_tensor_numel(&p.fwd.in.W_qkv);
    for (int64_t e = 0; e < n; e++) ss += ((double *)p.fwd.in.W_qkv.data)[e] * ((double *)p.fwd.in.W_qkv.data)[e];
    ck_assert_msg(sqrt(ss / (double)n) > 0.01 && sqrt(ss / (double)n) < 0.04, "W_qkv std %g", sqrt(ss / (double)n));
    ck_assert_int_eq(m2rnn_gdn_block_init(&p.fwd.in, 0, &rng), M2RNN_ERR_ARG);
    gb_free(&p);
}
END_TEST

static void expect(gb *p, m2rnn_status want, const char *name)
{
    m2rnn_status st = m2rnn_gdn_block_forward(m2rnn_backend_reference(), &p->fwd);
    ck_assert_msg(st == want, "forward: want %d got %d (%s)", want, st, m2rnn_last_error());
    if (name[0]) ck_assert_msg(strstr(m2rnn_last_error(), name), "message '%s' does not name %s", m2rnn_last_error(), name);
    p->bwd.in = p->fwd.in;
    st = m2rnn_gdn_block_backward(m2rnn_backend_reference(), &p->bwd);
    ck_assert_msg(st == want, "backward: want %d got %d (%s)", want, st, m2rnn_last_error());
}

START_TEST(test_errors)
{
    gb p;
    gb_init(&p, &cases[0], 2);
    m2rnn_gdn_block_inputs *in = &p.fwd.in;
    m2rnn_tensor saved = in->W_abg;
    in->W_abg.shape[0]--; expect(&p, M2RNN_ERR_SHAPE, "W_abg"); in->W_abg = saved;
    saved = in->norm_w;
    in->norm_w.shape[0]++; expect(&p, M2RNN_ERR_SHAPE, "norm_w"); in->norm_w = saved;
    saved = in->conv_w;
    in->conv_w.data = NULL; expect(&p, M2RNN_ERR_NULL, "conv_w"); in->conv_w = saved;
    in->cfg.heads = 0; expect(&p, M2RNN_ERR_ARG, "cfg"); in->cfg.heads = p.c.H;
    in->cfg.eps = -1; expect(&p, M2RNN_ERR_ARG, "eps"); in->cfg.eps = 1e-5;
    saved = in->h0;
    in->h0.shape[1]++; expect(&p, M2RNN_ERR_SHAPE, "h0"); in->h0 = saved;
    in->A_log.dtype = M2RNN_I32; expect(&p, M2RNN_ERR_DTYPE, "A_log"); in->A_log.dtype = M2RNN_F64;
    ck_assert_int_eq(m2rnn_gdn_block_forward(NULL, &p.fwd), M2RNN_ERR_NULL);
    ck_assert_int_eq(m2rnn_gdn_block_backward_ref(NULL), M2RNN_ERR_NULL);
    expect(&p, M2RNN_OK, "");
    ck_assert_str_eq(m2rnn_op_name(M2RNN_OP_GDN_BLOCK_BACKWARD), "gdn_block_backward");
    gb_free(&p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("gdn_block");
    TCase *tc = tcase_create("gdn_block");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_gradients, 0, N_CASES);
    tcase_add_test(tc, test_forward_composition);
    tcase_add_loop_test(tc, test_streaming, 0, 2);
    tcase_add_test(tc, test_init);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return run_suite(suite()); }
