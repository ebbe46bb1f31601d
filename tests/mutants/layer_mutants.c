/*
 * Mutants of the layer ops: the reference table with one forward op replaced by a broken copy,
 * each one a classic slip. The vectors must kill every one (tests/check_mutants_layers.c).
 * Written in double with m2rnn_tensor_get/set, dense (B,S,...) layouts only where noted.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layer_mutants.h"

static const m2rnn_backend *ref(void) { return m2rnn_backend_reference(); }
#define GET(t, i) m2rnn_tensor_get(&(t), (i))
#define SET(t, i, x) m2rnn_tensor_set(&(t), (i), (x))

/* conv1d with the kernel flipped (w[c][Kc-1-j] where w[c][j] belongs). */
static m2rnn_status conv_flipped(void *ctx, const m2rnn_conv1d_forward_args *a)
{
    (void)ctx;
    int64_t C = a->in.w.shape[0], K = a->in.w.shape[1];
    double *w = malloc((size_t)(C * K) * sizeof(double));
    for (int64_t c = 0; c < C; c++)
        for (int64_t j = 0; j < K; j++) w[c * K + j] = GET(a->in.w, c * K + (K - 1 - j));
    m2rnn_conv1d_forward_args b = *a;
    b.in.w = m2rnn_tensor_make(w, M2RNN_F64, 2, a->in.w.shape);
    m2rnn_status st = m2rnn_conv1d_forward(ref(), &b);
    free(w);
    return st;
}

/* RMSNorm with eps outside the root: x w / (sqrt(mean x²) + eps). */
static m2rnn_status rmsnorm_eps_outside(void *ctx, const m2rnn_rmsnorm_forward_args *a)
{
    (void)ctx;
    int64_t D = a->in.w.shape[0], rows = m2rnn_tensor_numel(&a->in.x) / D;
    for (int64_t r = 0; r < rows; r++) {
        double ss = 0.0;
        for (int64_t i = 0; i < D; i++) ss += GET(a->in.x, r * D + i) * GET(a->in.x, r * D + i);
        double inv = 1.0 / (sqrt(ss / (double)D) + a->in.eps);
        for (int64_t i = 0; i < D; i++) SET(a->y, r * D + i, GET(a->in.x, r * D + i) * inv * GET(a->in.w, i));
    }
    return M2RNN_OK;
}

/* Causal attention, NoPE, written out; one slip per switch. */
static int attn_bug;
enum { ATT_HONEST, ATT_NO_MAX, ATT_MASK_OFF_BY_ONE, ATT_GQA_MOD };
static m2rnn_status attention_naive(void *ctx, const m2rnn_attention_forward_args *a)
{
    (void)ctx;
    if (a->in.rope) return m2rnn_set_error(M2RNN_ERR_UNSUPPORTED, "naive attention: no RoPE");
    int64_t B = a->in.q.shape[0], S = a->in.q.shape[1], Hq = a->in.q.shape[2], D = a->in.q.shape[3];
    int64_t Hkv = a->in.k.shape[2], Dv = a->in.v.shape[3], G = Hq / Hkv;
    double scale = a->in.scale > 0 ? a->in.scale : 1.0 / sqrt((double)D);
    double *p = malloc((size_t)S * sizeof(double));
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < Hq; h++) {
            int64_t hk = attn_bug == ATT_GQA_MOD ? h % Hkv : h / G;
            for (int64_t i = 0; i < S; i++) {
                int64_t last = attn_bug == ATT_MASK_OFF_BY_ONE ? (i + 1 < S ? i + 1 : i) : i;
                double mx = -INFINITY, sum = 0.0;
                for (int64_t j = 0; j <= last; j++) {
                    double s = 0.0;
                    for (int64_t d = 0; d < D; d++)
                        s += GET(a->in.q, ((b * S + i) * Hq + h) * D + d) * GET(a->in.k, ((b * S + j) * Hkv + hk) * D + d);
                    p[j] = s * scale;
                    if (p[j] > mx) mx = p[j];
                }
                for (int64_t j = 0; j <= last; j++) { p[j] = exp(attn_bug == ATT_NO_MAX ? p[j] : p[j] - mx); sum += p[j]; }
                for (int64_t e = 0; e < Dv; e++) {
                    double o = 0.0;
                    for (int64_t j = 0; j <= last; j++) o += p[j] / sum * GET(a->in.v, ((b * S + j) * Hkv + hk) * Dv + e);
                    SET(a->o, ((b * S + i) * Hq + h) * Dv + e, o);
                }
            }
        }
    free(p);
    return M2RNN_OK;
}

/* Decay gate slips: sigmoid for softplus, or A_log used without its exp. */
static int gate_bug;
static m2rnn_status decay_gate_bad(void *ctx, const m2rnn_decay_gate_forward_args *a)
{
    (void)ctx;
    int64_t H = a->in.A_log.shape[0], n = m2rnn_tensor_numel(&a->in.x);
    for (int64_t i = 0; i < n; i++) {
        double u = GET(a->in.x, i) + GET(a->in.dt_bias, i % H), A = GET(a->in.A_log, i % H);
        double sp = gate_bug == 0 ? 1.0 / (1.0 + exp(-u)) : (u > 0 ? u + log1p(exp(-u)) : log1p(exp(u)));
        SET(a->f, i, exp(-(gate_bug == 1 ? A : exp(A)) * sp));
    }
    return M2RNN_OK;
}

/* SiLU that is the sigmoid. */
static m2rnn_status silu_sigmoid(void *ctx, const m2rnn_silu_forward_args *a)
{
    (void)ctx;
    int64_t n = m2rnn_tensor_numel(&a->x);
    for (int64_t i = 0; i < n; i++) SET(a->y, i, 1.0 / (1.0 + exp(-GET(a->x, i))));
    return M2RNN_OK;
}

/* Cross-entropy: the sum over counted tokens divided by every token (ignored ones included). */
static m2rnn_status ce_mean_all(void *ctx, const m2rnn_cross_entropy_forward_args *a)
{
    (void)ctx;
    m2rnn_status st = m2rnn_cross_entropy_forward(ref(), a);
    if (st) return st;
    int64_t n = m2rnn_tensor_numel(&a->in.targets), counted = 0;
    for (int64_t i = 0; i < n; i++) counted += !(a->in.has_ignore && (int64_t)GET(a->in.targets, i) == a->in.ignore_index);
    SET(a->loss, 0, GET(a->loss, 0) * (double)counted / (double)n);
    return M2RNN_OK;
}

/* Linear y = x W (needs in == out) instead of x Wᵀ. */
static m2rnn_status linear_w_not_transposed(void *ctx, const m2rnn_linear_forward_args *a)
{
    (void)ctx;
    int64_t O = a->in.W.shape[0], I = a->in.W.shape[1];
    if (O != I) return m2rnn_set_error(M2RNN_ERR_SHAPE, "mutant: x W needs a square W");
    int64_t rows = m2rnn_tensor_numel(&a->in.x) / I;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t o = 0; o < O; o++) {
            double s = a->in.bias.data ? GET(a->in.bias, o) : 0.0;
            for (int64_t i = 0; i < I; i++) s += GET(a->in.x, r * I + i) * GET(a->in.W, i * O + o);
            SET(a->y, r * O + o, s);
        }
    return M2RNN_OK;
}

static const char *const names[LMUT_COUNT] = {
    "conv-kernel-flipped", "rmsnorm-eps-outside-root", "attention-honest-naive", "softmax-without-max",
    "causal-mask-off-by-one", "gqa-head-n-mod-G", "decay-gate-sigmoid-for-softplus", "decay-gate-missing-exp-on-A_log",
    "silu-is-sigmoid", "cross-entropy-mean-over-all-tokens", "linear-W-not-transposed"};
static const char *const ops[LMUT_COUNT] = {"conv1d", "rmsnorm", "attention", "attention", "attention", "attention",
                                            "decay_gate", "decay_gate", "silu", "cross_entropy", "linear"};

const char *layer_mutant_name(layer_mutant m) { return names[m]; }
const char *layer_mutant_op(layer_mutant m) { return ops[m]; }

const m2rnn_backend *layer_mutant_backend(layer_mutant m)
{
    static m2rnn_backend t;
    t = *ref();
    t.name = names[m];
    t.description = "a layer mutant";
    switch (m) {
    case LMUT_CONV_FLIPPED: t.conv1d_forward = conv_flipped; break;
    case LMUT_RMSNORM_EPS_OUTSIDE: t.rmsnorm_forward = rmsnorm_eps_outside; break;
    case LMUT_ATTN_HONEST: attn_bug = ATT_HONEST; t.attention_forward = attention_naive; break;
    case LMUT_ATTN_NO_MAX: attn_bug = ATT_NO_MAX; t.attention_forward = attention_naive; break;
    case LMUT_ATTN_MASK_OFF_BY_ONE: attn_bug = ATT_MASK_OFF_BY_ONE; t.attention_forward = attention_naive; break;
    case LMUT_ATTN_GQA_MOD: attn_bug = ATT_GQA_MOD; t.attention_forward = attention_naive; break;
    case LMUT_GATE_SIGMOID: gate_bug = 0; t.decay_gate_forward = decay_gate_bad; break;
    case LMUT_GATE_NO_EXP: gate_bug = 1; t.decay_gate_forward = decay_gate_bad; break;
    case LMUT_SILU_SIGMOID: t.silu_forward = silu_sigmoid; break;
    case LMUT_CE_MEAN_ALL: t.cross_entropy_forward = ce_mean_all; break;
    case LMUT_LINEAR_W: t.linear_forward = linear_w_not_transposed; break;
    default: break;
    }
    return &t;
}
