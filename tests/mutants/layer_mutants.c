/*
 * Mutants of the layer ops: the reference table with one op (forward or backward) replaced by a broken copy,
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
#define SET(t, i, x) do { m2rnn_tensor set_t_ = (t); m2rnn_tensor_set(&set_t_, (i), (x)); } while (0)

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


/* ---- Gated DeltaNet forward, written out; one slip per switch ---------------------------- */

/* Per lane (sequence b, head h), S (K×V) from h0 or 0; honest: S' = e^g S, p = S'ᵀk̂,
 * u = β (v − p), S = S' + k̂ uᵀ, o = Sᵀ q̂ (SPEC.md §5, ref/gated_deltanet.c). */
static int gdn_bug;
enum { GDN_HONEST, GDN_BETA_V_ONLY, GDN_DECAY_AFTER, GDN_DECAY_G };
static m2rnn_status gdn_naive(void *ctx, const m2rnn_gdn_forward_args *a)
{
    (void)ctx;
    const m2rnn_tensor *q = &a->in.q, *g = &a->in.g;
    const bool varlen = a->in.cu_seqlens.data != NULL;
    const int64_t K = q->shape[q->rank - 1], V = a->in.v.shape[a->in.v.rank - 1], H = q->shape[q->rank - 2];
    const int64_t B = varlen ? m2rnn_tensor_numel(&a->in.cu_seqlens) - 1 : q->shape[0];
    const int64_t S = varlen ? 0 : q->shape[1];
    const double scale = a->in.scale != 0.0 ? a->in.scale : 1.0 / sqrt((double)K);
    (void)g;
    double *St = malloc((size_t)(K * V) * sizeof(double)), *kh = malloc((size_t)K * sizeof(double)),
           *qh = malloc((size_t)K * sizeof(double)), *u = malloc((size_t)V * sizeof(double));
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            int64_t t0 = varlen ? (int64_t)GET(a->in.cu_seqlens, b) : b * S, t1 = varlen ? (int64_t)GET(a->in.cu_seqlens, b + 1) : (b + 1) * S;
            for (int64_t i = 0; i < K * V; i++) St[i] = a->in.h0.data ? GET(a->in.h0, (b * H + h) * K * V + i) : 0.0;
            for (int64_t t = t0; t < t1; t++) {
                double nk = 0.0, nq = 0.0;
                for (int64_t i = 0; i < K; i++) {
                    kh[i] = GET(a->in.k, (t * H + h) * K + i);
                    qh[i] = GET(a->in.q, (t * H + h) * K + i);
                    nk += kh[i] * kh[i];
                    nq += qh[i] * qh[i];
                }
                double rk = a->in.l2norm_qk ? 1.0 / sqrt(nk + 1e-6) : 1.0, rq = a->in.l2norm_qk ? 1.0 / sqrt(nq + 1e-6) : 1.0;
                for (int64_t i = 0; i < K; i++) { kh[i] *= rk; qh[i] *= scale * rq; }
                double gt = GET(a->in.g, t * H + h), bt = GET(a->in.beta, t * H + h);
                double decay = gdn_bug == GDN_DECAY_G ? gt : exp(gt);
                if (gdn_bug != GDN_DECAY_AFTER)
                    for (int64_t i = 0; i < K * V; i++) St[i] *= decay;
                for (int64_t e = 0; e < V; e++) {
                    double p = 0.0;
                    for (int64_t i = 0; i < K; i++) p += St[i * V + e] * kh[i];
                    double v = GET(a->in.v, (t * H + h) * V + e);
                    u[e] = gdn_bug == GDN_BETA_V_ONLY ? bt * v - p : bt * (v - p);
                }
                for (int64_t i = 0; i < K; i++)
                    for (int64_t e = 0; e < V; e++) St[i * V + e] += kh[i] * u[e];
                if (gdn_bug == GDN_DECAY_AFTER)
                    for (int64_t i = 0; i < K * V; i++) St[i] *= decay;
                for (int64_t e = 0; e < V; e++) {
                    double o = 0.0;
                    for (int64_t i = 0; i < K; i++) o += St[i * V + e] * qh[i];
                    SET(a->o, (t * H + h) * V + e, o);
                }
            }
            if (a->ht.data)
                for (int64_t i = 0; i < K * V; i++) SET(a->ht, (b * H + h) * K * V + i, St[i]);
        }
    free(St);
    free(kh);
    free(qh);
    free(u);
    return M2RNN_OK;
}

/* ---- backward slips ---------------------------------------------------------------------- */

/* conv1d dw with the kernel index flipped: the gradient of tap j written to tap Kc-1-j. */
static m2rnn_status conv_dw_flipped(void *ctx, const m2rnn_conv1d_backward_args *a)
{
    (void)ctx;
    m2rnn_status st = m2rnn_conv1d_backward(ref(), a);
    if (st) return st;
    int64_t C = a->dw.shape[0], K = a->dw.shape[1];
    for (int64_t c = 0; c < C; c++)
        for (int64_t j = 0; j < K / 2; j++) {
            double x = GET(a->dw, c * K + j), y = GET(a->dw, c * K + K - 1 - j);
            SET(a->dw, c * K + j, y);
            SET(a->dw, c * K + K - 1 - j, x);
        }
    return M2RNN_OK;
}

/* RMSNorm backward without the mean term: dx = r w dy (the −x r³ mean(w dy x) term dropped). */
static m2rnn_status rmsnorm_bwd_no_mean(void *ctx, const m2rnn_rmsnorm_backward_args *a)
{
    (void)ctx;
    int64_t D = a->in.w.shape[0], rows = m2rnn_tensor_numel(&a->in.x) / D;
    double *dw = calloc((size_t)D, sizeof(double));
    for (int64_t r = 0; r < rows; r++) {
        double ss = 0.0;
        for (int64_t i = 0; i < D; i++) ss += GET(a->in.x, r * D + i) * GET(a->in.x, r * D + i);
        double inv = 1.0 / sqrt(ss / (double)D + a->in.eps);
        for (int64_t i = 0; i < D; i++) {
            SET(a->dx, r * D + i, inv * GET(a->in.w, i) * GET(a->dy, r * D + i));
            dw[i] += GET(a->dy, r * D + i) * GET(a->in.x, r * D + i) * inv;
        }
    }
    if (a->dw.data)
        for (int64_t i = 0; i < D; i++) SET(a->dw, i, dw[i]);
    free(dw);
    return M2RNN_OK;
}

/* Causal attention backward, NoPE, written out; one slip per switch. */
static int attn_bwd_bug;
enum { ATTB_HONEST, ATTB_NO_ROWSUM, ATTB_GQA_NO_REDUCE };
static m2rnn_status attention_bwd_naive(void *ctx, const m2rnn_attention_backward_args *a)
{
    (void)ctx;
    if (a->in.rope) return m2rnn_set_error(M2RNN_ERR_UNSUPPORTED, "naive attention backward: no RoPE");
    int64_t B = a->in.q.shape[0], S = a->in.q.shape[1], Hq = a->in.q.shape[2], D = a->in.q.shape[3];
    int64_t Hkv = a->in.k.shape[2], Dv = a->in.v.shape[3], G = Hq / Hkv;
    double scale = a->in.scale > 0 ? a->in.scale : 1.0 / sqrt((double)D);
    double *p = malloc((size_t)S * sizeof(double)), *dp = malloc((size_t)S * sizeof(double));
    double *dk = calloc((size_t)(B * S * Hkv * D), sizeof(double)), *dv = calloc((size_t)(B * S * Hkv * Dv), sizeof(double));
    double *dkh = malloc((size_t)(S * D) * sizeof(double)), *dvh = malloc((size_t)(S * Dv) * sizeof(double));
#define Q(b, i, h, d) GET(a->in.q, (((b) * S + (i)) * Hq + (h)) * D + (d))
#define KK(b, j, h, d) GET(a->in.k, (((b) * S + (j)) * Hkv + (h)) * D + (d))
#define VV(b, j, h, e) GET(a->in.v, (((b) * S + (j)) * Hkv + (h)) * Dv + (e))
#define DO(b, i, h, e) GET(a->dout, (((b) * S + (i)) * Hq + (h)) * Dv + (e))
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < Hq; h++) {
            int64_t hk = h / G;
            memset(dkh, 0, (size_t)(S * D) * sizeof(double));
            memset(dvh, 0, (size_t)(S * Dv) * sizeof(double));
            for (int64_t i = 0; i < S; i++) {
                double mx = -INFINITY, sum = 0.0, rs = 0.0;
                for (int64_t j = 0; j <= i; j++) {
                    double s = 0.0;
                    for (int64_t d = 0; d < D; d++) s += Q(b, i, h, d) * KK(b, j, hk, d);
                    p[j] = s * scale;
                    if (p[j] > mx) mx = p[j];
                }
                for (int64_t j = 0; j <= i; j++) { p[j] = exp(p[j] - mx); sum += p[j]; }
                for (int64_t j = 0; j <= i; j++) {
                    p[j] /= sum;
                    double s = 0.0;
                    for (int64_t e = 0; e < Dv; e++) s += DO(b, i, h, e) * VV(b, j, hk, e);
                    dp[j] = s;
                    rs += p[j] * s;
                }
                for (int64_t d = 0; d < D; d++) {
                    double dq = 0.0;
                    for (int64_t j = 0; j <= i; j++) {
                        double ds = p[j] * (dp[j] - (attn_bwd_bug == ATTB_NO_ROWSUM ? 0.0 : rs));
                        dq += scale * ds * KK(b, j, hk, d);
                        dkh[j * D + d] += scale * ds * Q(b, i, h, d);
                    }
                    SET(a->dq, ((b * S + i) * Hq + h) * D + d, dq);
                }
                for (int64_t j = 0; j <= i; j++)
                    for (int64_t e = 0; e < Dv; e++) dvh[j * Dv + e] += p[j] * DO(b, i, h, e);
            }
            /* honest: the group's query heads add into their kv head; the slip: each one overwrites it */
            bool add = attn_bwd_bug != ATTB_GQA_NO_REDUCE;
            for (int64_t j = 0; j < S; j++) {
                for (int64_t d = 0; d < D; d++) {
                    double *t = &dk[((b * S + j) * Hkv + hk) * D + d];
                    *t = add ? *t + dkh[j * D + d] : dkh[j * D + d];
                }
                for (int64_t e = 0; e < Dv; e++) {
                    double *t = &dv[((b * S + j) * Hkv + hk) * Dv + e];
                    *t = add ? *t + dvh[j * Dv + e] : dvh[j * Dv + e];
                }
            }
        }
#undef Q
#undef KK
#undef VV
#undef DO
    for (int64_t i = 0; i < B * S * Hkv * D; i++) SET(a->dk, i, dk[i]);
    for (int64_t i = 0; i < B * S * Hkv * Dv; i++) SET(a->dv, i, dv[i]);
    free(p);
    free(dp);
    free(dk);
    free(dv);
    free(dkh);
    free(dvh);
    return M2RNN_OK;
}

/* Decay gate backward with d(A_log) missing the factor a = exp(A_log). */
static m2rnn_status decay_gate_bwd_no_a(void *ctx, const m2rnn_decay_gate_backward_args *a)
{
    (void)ctx;
    m2rnn_status st = m2rnn_decay_gate_backward(ref(), a);
    if (st) return st;
    int64_t H = a->in.A_log.shape[0];
    for (int64_t h = 0; h < H; h++) SET(a->dA_log, h, GET(a->dA_log, h) / exp(GET(a->in.A_log, h)));
    return M2RNN_OK;
}

/* SiLU' taken as σ(x) (the x σ(x)(1 − σ(x)) term dropped). */
static m2rnn_status silu_bwd_sigmoid(void *ctx, const m2rnn_silu_backward_args *a)
{
    (void)ctx;
    int64_t n = m2rnn_tensor_numel(&a->x);
    for (int64_t i = 0; i < n; i++) SET(a->dx, i, GET(a->dy, i) / (1.0 + exp(-GET(a->x, i))));
    return M2RNN_OK;
}

/* Cross-entropy gradient divided by every token instead of the counted ones. */
static m2rnn_status ce_bwd_all_tokens(void *ctx, const m2rnn_cross_entropy_backward_args *a)
{
    (void)ctx;
    m2rnn_status st = m2rnn_cross_entropy_backward(ref(), a);
    if (st) return st;
    int64_t n = m2rnn_tensor_numel(&a->in.targets), counted = 0, m = m2rnn_tensor_numel(&a->dlogits);
    for (int64_t i = 0; i < n; i++) counted += !(a->in.has_ignore && (int64_t)GET(a->in.targets, i) == a->in.ignore_index);
    for (int64_t i = 0; i < m; i++) SET(a->dlogits, i, GET(a->dlogits, i) * (double)counted / (double)n);
    return M2RNN_OK;
}

static const char *const names[LMUT_COUNT] = {
    "conv-kernel-flipped", "rmsnorm-eps-outside-root", "attention-honest-naive", "softmax-without-max",
    "causal-mask-off-by-one", "gqa-head-n-mod-G", "decay-gate-sigmoid-for-softplus", "decay-gate-missing-exp-on-A_log",
    "silu-is-sigmoid", "cross-entropy-mean-over-all-tokens", "linear-W-not-transposed",
    "gdn-honest-naive", "gdn-beta-on-v-only", "gdn-decay-after-update", "gdn-decay-g-not-exp-g",
    "conv-dw-kernel-flipped", "rmsnorm-backward-no-mean-term", "attention-backward-honest-naive",
    "softmax-backward-no-rowsum", "gqa-dk-dv-no-group-reduction", "decay-gate-dA_log-missing-a",
    "silu-backward-sigmoid-only", "cross-entropy-grad-over-all-tokens"};
static const char *const ops[LMUT_COUNT] = {"conv1d", "rmsnorm", "attention", "attention", "attention", "attention",
                                            "decay_gate", "decay_gate", "silu", "cross_entropy", "linear",
                                            "gdn", "gdn", "gdn", "gdn", "conv1d", "rmsnorm", "attention",
                                            "attention", "attention", "decay_gate", "silu", "cross_entropy"};
/* Which direction each mutant breaks. */
static const bool bwd[LMUT_COUNT] = {[LMUT_CONV_DW_FLIPPED] = true, [LMUT_RMSNORM_BWD_NO_MEAN] = true,
                                     [LMUT_ATTN_BWD_HONEST] = true, [LMUT_ATTN_BWD_NO_ROWSUM] = true,
                                     [LMUT_ATTN_BWD_GQA_NO_REDUCE] = true, [LMUT_GATE_BWD_NO_A] = true,
                                     [LMUT_SILU_BWD_SIGMOID] = true, [LMUT_CE_BWD_ALL_TOKENS] = true};
bool layer_mutant_backward(layer_mutant m) { return bwd[m]; }

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
    case LMUT_GDN_HONEST: gdn_bug = GDN_HONEST; t.gdn_forward = gdn_naive; break;
    case LMUT_GDN_BETA_V_ONLY: gdn_bug = GDN_BETA_V_ONLY; t.gdn_forward = gdn_naive; break;
    case LMUT_GDN_DECAY_AFTER: gdn_bug = GDN_DECAY_AFTER; t.gdn_forward = gdn_naive; break;
    case LMUT_GDN_DECAY_G: gdn_bug = GDN_DECAY_G; t.gdn_forward = gdn_naive; break;
    case LMUT_CONV_DW_FLIPPED: t.conv1d_backward = conv_dw_flipped; break;
    case LMUT_RMSNORM_BWD_NO_MEAN: t.rmsnorm_backward = rmsnorm_bwd_no_mean; break;
    case LMUT_ATTN_BWD_HONEST: attn_bwd_bug = ATTB_HONEST; t.attention_backward = attention_bwd_naive; break;
    case LMUT_ATTN_BWD_NO_ROWSUM: attn_bwd_bug = ATTB_NO_ROWSUM; t.attention_backward = attention_bwd_naive; break;
    case LMUT_ATTN_BWD_GQA_NO_REDUCE: attn_bwd_bug = ATTB_GQA_NO_REDUCE; t.attention_backward = attention_bwd_naive; break;
    case LMUT_GATE_BWD_NO_A: t.decay_gate_backward = decay_gate_bwd_no_a; break;
    case LMUT_SILU_BWD_SIGMOID: t.silu_backward = silu_bwd_sigmoid; break;
    case LMUT_CE_BWD_ALL_TOKENS: t.cross_entropy_backward = ce_bwd_all_tokens; break;
    default: break;
    }
    return &t;
}
