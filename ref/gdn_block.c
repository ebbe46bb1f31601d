/*
 * The Gated DeltaNet mixer block (SPEC.md §5) — reference, forward and backward.
 *
 * Shapes: see gdn_block.h. T tokens (B·S dense, or packed), d model width, H heads, K, V head
 * dims, C = 2HK + HV conv channels, P = 2H + HV.
 *
 * Forward:
 *   qkv_raw = x W_qkvᵀ                          (T×C)
 *   [a | b | gate] = x W_abgᵀ                   (T×H), (T×H), (T×HV)
 *   qkv = SiLU(conv1d(qkv_raw; conv_w))          (T×C), causal, state in/out
 *   [q | k | v] = qkv                            (T,H,K), (T,H,K), (T,H,V), head-major
 *   β = σ(b),   g = -exp(A_log)·softplus(a + dt_bias)      (T×H), per head
 *   o, ht = gdn(q, k, v, g, β, h0; L2 norm on, scale 1/√K)  (T,H,V)
 *   o2 = o ⊙ SiLU(gate)                          (T,H,V)
 *   o3 = RMSNorm(o2; norm_w, eps) over V          per token and head
 *   out = flatten(o3) W_oᵀ                       (T×d)
 *
 * Backward (the chain in reverse; the pieces carry their own derivatives):
 *   do3, dW_o = linear_backward;  do2, dnorm_w = rmsnorm_backward
 *   do = do2 ⊙ SiLU(gate),  dgate = do2 ⊙ o ⊙ SiLU'(gate)
 *   dq, dk, dv, dg, dβ, dh0 = gdn_backward(do, dht)
 *   with u = a + dt_bias, e = exp(A_log):  ∂g/∂a = ∂g/∂dt_bias = -e·σ(u),  ∂g/∂A_log = g
 *   db = dβ·β(1-β)
 *   dqkv_raw, dconv_w, dconv_state0 = conv1d_backward([dq | dk | dv], dconv_state_out)
 *   dx = linear_backward(W_qkv; dqkv_raw) + linear_backward(W_abg; [da | db | dgate])
 *
 * Every intermediate is an F64 buffer and every piece its reference on F64 tensors; the outputs
 * handed to the caller are rounded once. dA_log and ddt_bias are summed in token order.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layer_util.h"
#include "m2rnn/conv1d.h"
#include "m2rnn/decay_gate.h"
#include "m2rnn/gated_deltanet.h"
#include "m2rnn/gdn_block.h"
#include "m2rnn/linear.h"
#include "m2rnn/rmsnorm.h"

/* ---- checks ------------------------------------------------------------------------------ */

static m2rnn_status check_params(const m2rnn_gdn_block_inputs *in, int64_t d, m2rnn_gdn_block_dims *m)
{
    m2rnn_status st;
    const m2rnn_gdn_block_config *c = &in->cfg;
    if (c->heads < 1 || c->key_dim < 1 || c->value_dim < 1)
        return m2rnn_set_error(M2RNN_ERR_ARG, "cfg: heads, key_dim, value_dim must be >= 1 (got %lld, %lld, %lld)",
                               (long long)c->heads, (long long)c->key_dim, (long long)c->value_dim);
    if (c->heads > (int64_t)1 << 24 || c->key_dim > (int64_t)1 << 24 || c->value_dim > (int64_t)1 << 24)
        return m2rnn_set_error(M2RNN_ERR_OVERFLOW, "cfg: head counts and dims beyond 2^24");
    if (!(c->eps >= 0.0) || isinf(c->eps)) return m2rnn_set_error(M2RNN_ERR_ARG, "cfg.eps: %g, must be finite and >= 0", c->eps);
    const int64_t H = c->heads, K = c->key_dim, V = c->value_dim;
    *m = (m2rnn_gdn_block_dims){.model_dim = d, .heads = H, .key_dim = K, .value_dim = V,
                                .conv_channels = 2 * H * K + H * V, .gate_dim = 2 * H + H * V};
    static const char *names[8] = {"W_qkv", "W_abg", "conv_w", "A_log", "dt_bias", "norm_w", "W_o", ""};
    const m2rnn_tensor *req[7] = {&in->W_qkv, &in->W_abg, &in->conv_w, &in->A_log, &in->dt_bias, &in->norm_w, &in->W_o};
    for (int i = 0; i < 7; i++)
        if ((st = lu_required(req[i], names[i]))) return st;
    if ((st = lu_rank_at_least(&in->conv_w, "conv_w", 2))) return st;
    if (in->conv_w.rank != 2 || in->conv_w.shape[0] != m->conv_channels || in->conv_w.shape[1] < 1) {
        char buf[128];
        return m2rnn_set_error(M2RNN_ERR_SHAPE, "conv_w: expected shape (%lld, Kc) with Kc >= 1, got %s",
                               (long long)m->conv_channels, m2rnn_shape_string(&in->conv_w, buf, sizeof buf));
    }
    m->kernel = in->conv_w.shape[1];
    int64_t s_qkv[2] = {m->conv_channels, d}, s_abg[2] = {m->gate_dim, d}, s_h[1] = {H}, s_v[1] = {V}, s_o[2] = {d, H * V};
    if ((st = lu_shape(&in->W_qkv, "W_qkv", 2, s_qkv)) || (st = lu_shape(&in->W_abg, "W_abg", 2, s_abg)) ||
        (st = lu_shape(&in->A_log, "A_log", 1, s_h)) || (st = lu_shape(&in->dt_bias, "dt_bias", 1, s_h)) ||
        (st = lu_shape(&in->norm_w, "norm_w", 1, s_v)) || (st = lu_shape(&in->W_o, "W_o", 2, s_o)))
        return st;
    return M2RNN_OK;
}

static m2rnn_status check_inputs(const m2rnn_gdn_block_inputs *in, m2rnn_gdn_block_dims *m)
{
    m2rnn_status st;
    lu_tokens L;
    if ((st = lu_required(&in->x, "x")) || (st = lu_token_layout(&in->x, "x", &in->cu_seqlens, &L))) return st;
    if ((st = check_params(in, L.channels, m))) return st;
    m->batch = L.batch;
    m->seqlen = L.seqlen;
    m->tokens = L.tokens;
    m->varlen = L.varlen;
    int64_t s_h[4] = {m->batch, m->heads, m->key_dim, m->value_dim}, s_c[3] = {m->batch, m->conv_channels, m->kernel - 1};
    if ((st = lu_optional(&in->h0, "h0", 4, s_h)) || (st = lu_optional(&in->conv_state0, "conv_state0", 3, s_c))) return st;
    int64_t widest = m->conv_channels > m->gate_dim ? m->conv_channels : m->gate_dim;
    if (m->tokens > INT64_MAX / 8 / widest) return m2rnn_set_error(M2RNN_ERR_OVERFLOW, "x: T·C overflows");
    return M2RNN_OK;
}

m2rnn_status m2rnn_gdn_block_check_forward(const m2rnn_gdn_block_forward_args *a, m2rnn_gdn_block_dims *dims)
{
    if (!a) return m2rnn_set_error(M2RNN_ERR_NULL, "gdn_block_forward: NULL argument struct");
    m2rnn_gdn_block_dims m;
    m2rnn_status st = check_inputs(&a->in, &m);
    if (st) return st;
    int64_t s_h[4] = {m.batch, m.heads, m.key_dim, m.value_dim}, s_c[3] = {m.batch, m.conv_channels, m.kernel - 1};
    if ((st = lu_required(&a->o, "o")) || (st = lu_same_shape(&a->o, "o", &a->in.x))) return st;
    if ((st = lu_optional(&a->ht, "ht", 4, s_h)) || (st = lu_optional(&a->conv_state_out, "conv_state_out", 3, s_c))) return st;
    if (dims) *dims = m;
    return M2RNN_OK;
}

m2rnn_status m2rnn_gdn_block_check_backward(const m2rnn_gdn_block_backward_args *a, m2rnn_gdn_block_dims *dims)
{
    if (!a) return m2rnn_set_error(M2RNN_ERR_NULL, "gdn_block_backward: NULL argument struct");
    m2rnn_gdn_block_dims m;
    const m2rnn_gdn_block_inputs *in = &a->in;
    m2rnn_status st = check_inputs(in, &m);
    if (st) return st;
    int64_t s_h[4] = {m.batch, m.heads, m.key_dim, m.value_dim}, s_c[3] = {m.batch, m.conv_channels, m.kernel - 1};
    if ((st = lu_required(&a->dout, "dout")) || (st = lu_same_shape(&a->dout, "dout", &in->x))) return st;
    if ((st = lu_optional(&a->dht, "dht", 4, s_h)) || (st = lu_optional(&a->dconv_state_out, "dconv_state_out", 3, s_c)))
        return st;
    const lu_grad grads[] = {
        {&a->dx, &in->x, "dx"}, {&a->dW_qkv, &in->W_qkv, "dW_qkv"}, {&a->dW_abg, &in->W_abg, "dW_abg"},
        {&a->dconv_w, &in->conv_w, "dconv_w"}, {&a->dA_log, &in->A_log, "dA_log"}, {&a->ddt_bias, &in->dt_bias, "ddt_bias"},
        {&a->dnorm_w, &in->norm_w, "dnorm_w"}, {&a->dW_o, &in->W_o, "dW_o"},
    };
    if ((st = lu_grads(grads, sizeof grads / sizeof grads[0]))) return st;
    if ((st = lu_optional(&a->dh0, "dh0", 4, s_h)) || (st = lu_optional(&a->dconv_state0, "dconv_state0", 3, s_c))) return st;
    if (dims) *dims = m;
    return M2RNN_OK;
}

/* ---- the forward's intermediates -------------------------------------------------------- */

typedef struct {
    lu_tokens L;      /* the token layout (for lu_tok) */
    double *qkv_raw;  /* (T×C) */
    double *abg;      /* (T×P) */
    double *qkv;      /* SiLU(conv(qkv_raw)) (T×C) */
    double *q, *k, *v;
    double *g, *beta; /* (T×H) */
    double *o;        /* the recurrence's output (T×HV) */
    double *o2, *o3;  /* gated, normed (T×HV) */
} acts;

static void acts_free(acts *a)
{
    double *all[] = {a->qkv_raw, a->abg, a->qkv, a->q, a->k, a->v, a->g, a->beta, a->o, a->o2, a->o3};
    lu_free_all(all, (int)(sizeof all / sizeof all[0]));
}

static lu_tokens layout_of(const m2rnn_gdn_block_inputs *in, const m2rnn_gdn_block_dims *m)
{
    return (lu_tokens){.batch = m->batch, .seqlen = m->seqlen, .tokens = m->tokens, .channels = m->model_dim,
                       .varlen = m->varlen, .cu_seqlens = &in->cu_seqlens};
}

/* Run the forward up to o3 (before the output projection), writing ht and conv_state_out. */
static m2rnn_status forward_acts(const m2rnn_gdn_block_inputs *in, const m2rnn_gdn_block_dims *m, acts *a, m2rnn_tensor ht,
                                 m2rnn_tensor conv_state_out)
{
    memset(a, 0, sizeof *a);
    a->L = layout_of(in, m);
    const lu_tokens *L = &a->L;
    const int64_t T = m->tokens, H = m->heads, K = m->key_dim, V = m->value_dim, HK = H * K, HV = H * V;
    const int64_t C = m->conv_channels, P = m->gate_dim;
    a->qkv_raw = lu_alloc(T * C);
    a->abg = lu_alloc(T * P);
    a->qkv = lu_alloc(T * C);
    a->q = lu_alloc(T * HK);
    a->k = lu_alloc(T * HK);
    a->v = lu_alloc(T * HV);
    a->g = lu_alloc(T * H);
    a->beta = lu_alloc(T * H);
    a->o = lu_alloc(T * HV);
    a->o2 = lu_alloc(T * HV);
    a->o3 = lu_alloc(T * HV);
    double *A_log = lu_widen(&in->A_log), *dt_bias = lu_widen(&in->dt_bias);
    m2rnn_status st = M2RNN_OK;
    if (!a->qkv_raw || !a->abg || !a->qkv || !a->q || !a->k || !a->v || !a->g || !a->beta || !a->o || !a->o2 || !a->o3 ||
        !A_log || !dt_bias) {
        st = m2rnn_set_error(M2RNN_ERR_NOMEM, "gdn_block: cannot allocate the activations");
        goto fail;
    }
    /* the two input projections */
    m2rnn_linear_forward_args lin_qkv = {.in = {.x = in->x, .W = in->W_qkv}, .y = lu_tok(L, a->qkv_raw, 1, C, 0)};
    m2rnn_linear_forward_args lin_abg = {.in = {.x = in->x, .W = in->W_abg}, .y = lu_tok(L, a->abg, 1, P, 0)};
    if ((st = m2rnn_linear_forward_ref(&lin_qkv)) || (st = m2rnn_linear_forward_ref(&lin_abg))) goto fail;
    /* qkv = SiLU(conv(qkv_raw)), split into heads */
    m2rnn_conv1d_forward_args conv = {
        .in = {.x = lu_tok(L, a->qkv_raw, 1, C, 0), .w = in->conv_w, .state0 = in->conv_state0, .cu_seqlens = in->cu_seqlens,
               .activation = M2RNN_ACT_SILU},
        .y = lu_tok(L, a->qkv, 1, C, 0), .state_out = conv_state_out};
    if ((st = m2rnn_conv1d_forward_ref(&conv))) goto fail;
    lu_take_columns(a->qkv, T, C, 0, HK, a->q);
    lu_take_columns(a->qkv, T, C, HK, HK, a->k);
    lu_take_columns(a->qkv, T, C, 2 * HK, HV, a->v);
    /* β = σ(b), g = -exp(A_log)·softplus(a + dt_bias): the log of the decay gate, computed
     * directly (log(f) of a rounded f would lose the small |g| of slow heads) */
    for (int64_t t = 0; t < T; t++)
        for (int64_t h = 0; h < H; h++) {
            a->g[t * H + h] = -exp(A_log[h]) * lu_softplus(a->abg[t * P + h] + dt_bias[h]);
            a->beta[t * H + h] = lu_sigmoid(a->abg[t * P + H + h]);
        }
    /* the recurrence */
    m2rnn_gdn_forward_args rec = {
        .in = {.q = lu_tok(L, a->q, 2, H, K), .k = lu_tok(L, a->k, 2, H, K), .v = lu_tok(L, a->v, 2, H, V),
               .g = lu_tok(L, a->g, 1, H, 0), .beta = lu_tok(L, a->beta, 1, H, 0), .h0 = in->h0, .cu_seqlens = in->cu_seqlens,
               .l2norm_qk = true, .scale = 0.0},
        .o = lu_tok(L, a->o, 2, H, V), .ht = ht};
    if ((st = m2rnn_gdn_forward_ref(&rec))) goto fail;
    /* o2 = o ⊙ SiLU(gate), then the per-head norm over V */
    for (int64_t t = 0; t < T; t++)
        for (int64_t e = 0; e < HV; e++) a->o2[t * HV + e] = a->o[t * HV + e] * lu_silu(a->abg[t * P + 2 * H + e]);
    m2rnn_rmsnorm_forward_args norm = {.in = {.x = lu_tok(L, a->o2, 2, H, V), .w = in->norm_w, .eps = in->cfg.eps},
                                       .y = lu_tok(L, a->o3, 2, H, V)};
    if ((st = m2rnn_rmsnorm_forward_ref(&norm))) goto fail;
    free(A_log);
    free(dt_bias);
    return M2RNN_OK;
fail:
    free(A_log);
    free(dt_bias);
    acts_free(a);
    return st;
}

/* ---- forward ----------------------------------------------------------------------------- */

m2rnn_status m2rnn_gdn_block_forward_ref(const m2rnn_gdn_block_forward_args *args)
{
    m2rnn_gdn_block_dims m;
    m2rnn_status st = m2rnn_gdn_block_check_forward(args, &m);
    if (st) return st;
    acts a;
    if ((st = forward_acts(&args->in, &m, &a, args->ht, args->conv_state_out))) return st;
    m2rnn_linear_forward_args out = {.in = {.x = lu_tok(&a.L, a.o3, 1, m.heads * m.value_dim, 0), .W = args->in.W_o},
                                     .y = args->o};
    st = m2rnn_linear_forward_ref(&out);
    acts_free(&a);
    return st;
}

/* ---- backward ---------------------------------------------------------------------------- */

m2rnn_status m2rnn_gdn_block_backward_ref(const m2rnn_gdn_block_backward_args *args)
{
    m2rnn_gdn_block_dims m;
    m2rnn_status st = m2rnn_gdn_block_check_backward(args, &m);
    if (st) return st;
    const m2rnn_gdn_block_inputs *in = &args->in;
    acts a;
    m2rnn_tensor none = {0};
    if ((st = forward_acts(in, &m, &a, none, none))) return st;
    const lu_tokens *L = &a.L;
    const int64_t T = m.tokens, H = m.heads, K = m.key_dim, V = m.value_dim, HK = H * K, HV = H * V;
    const int64_t C = m.conv_channels, P = m.gate_dim, d = m.model_dim;

    double *do3 = lu_alloc(T * HV), *do2 = lu_alloc(T * HV), *dov = lu_alloc(T * HV), *dabg = lu_alloc(T * P);
    double *dq = lu_alloc(T * HK), *dk = lu_alloc(T * HK), *dv = lu_alloc(T * HV), *dg = lu_alloc(T * H), *dbeta = lu_alloc(T * H);
    double *dqkv = lu_alloc(T * C), *dqkv_raw = lu_alloc(T * C), *dx1 = lu_alloc(T * d), *dx2 = lu_alloc(T * d);
    double *A_log = lu_widen(&in->A_log), *dt_bias = lu_widen(&in->dt_bias), *dA = lu_zeros(H), *ddt = lu_zeros(H);
    double *all[] = {do3, do2, dov, dabg, dq, dk, dv, dg, dbeta, dqkv, dqkv_raw, dx1, dx2, A_log, dt_bias, dA, ddt};
    const int n_all = (int)(sizeof all / sizeof all[0]);
    for (int i = 0; i < n_all; i++)
        if (!all[i]) {
            lu_free_all(all, n_all);
            acts_free(&a);
            return m2rnn_set_error(M2RNN_ERR_NOMEM, "gdn_block_backward: cannot allocate gradient buffers");
        }

    /* out = o3 W_oᵀ */
    m2rnn_linear_backward_args lin_o = {.in = {.x = lu_tok(L, a.o3, 1, HV, 0), .W = in->W_o}, .dy = args->dout,
                                        .dx = lu_tok(L, do3, 1, HV, 0), .dW = args->dW_o};
    if ((st = m2rnn_linear_backward_ref(&lin_o))) goto done;
    /* o3 = RMSNorm(o2) per head */
    m2rnn_rmsnorm_backward_args norm = {.in = {.x = lu_tok(L, a.o2, 2, H, V), .w = in->norm_w, .eps = in->cfg.eps},
                                        .dy = lu_tok(L, do3, 2, H, V), .dx = lu_tok(L, do2, 2, H, V), .dw = args->dnorm_w};
    if ((st = m2rnn_rmsnorm_backward_ref(&norm))) goto done;
    /* o2 = o ⊙ SiLU(gate) */
    for (int64_t t = 0; t < T; t++)
        for (int64_t e = 0; e < HV; e++) {
            double gate = a.abg[t * P + 2 * H + e];
            dov[t * HV + e] = do2[t * HV + e] * lu_silu(gate);
            dabg[t * P + 2 * H + e] = do2[t * HV + e] * a.o[t * HV + e] * lu_silu_grad(gate);
        }
    /* the recurrence */
    m2rnn_gdn_backward_args rec = {
        .in = {.q = lu_tok(L, a.q, 2, H, K), .k = lu_tok(L, a.k, 2, H, K), .v = lu_tok(L, a.v, 2, H, V),
               .g = lu_tok(L, a.g, 1, H, 0), .beta = lu_tok(L, a.beta, 1, H, 0), .h0 = in->h0, .cu_seqlens = in->cu_seqlens,
               .l2norm_qk = true, .scale = 0.0},
        .dout = lu_tok(L, dov, 2, H, V), .dht = args->dht, .dq = lu_tok(L, dq, 2, H, K), .dk = lu_tok(L, dk, 2, H, K),
        .dv = lu_tok(L, dv, 2, H, V), .dg = lu_tok(L, dg, 1, H, 0), .dbeta = lu_tok(L, dbeta, 1, H, 0), .dh0 = args->dh0};
    if ((st = m2rnn_gdn_backward_ref(&rec))) goto done;
    /* g = -e·softplus(a + dt_bias), β = σ(b) */
    for (int64_t t = 0; t < T; t++)
        for (int64_t h = 0; h < H; h++) {
            double u = a.abg[t * P + h] + dt_bias[h], gt = dg[t * H + h];
            double da = -gt * exp(A_log[h]) * lu_sigmoid(u);
            dabg[t * P + h] = da;
            ddt[h] += da;
            dA[h] += gt * a.g[t * H + h];
            double be = a.beta[t * H + h];
            dabg[t * P + H + h] = dbeta[t * H + h] * be * (1.0 - be);
        }
    m2rnn_tensor dA_t = args->dA_log, ddt_t = args->ddt_bias;
    m2rnn_tensor_from_f64(&dA_t, dA);
    m2rnn_tensor_from_f64(&ddt_t, ddt);
    /* qkv = SiLU(conv(qkv_raw)) */
    lu_put_columns(dq, T, C, 0, HK, dqkv);
    lu_put_columns(dk, T, C, HK, HK, dqkv);
    lu_put_columns(dv, T, C, 2 * HK, HV, dqkv);
    m2rnn_conv1d_backward_args conv = {
        .in = {.x = lu_tok(L, a.qkv_raw, 1, C, 0), .w = in->conv_w, .state0 = in->conv_state0, .cu_seqlens = in->cu_seqlens,
               .activation = M2RNN_ACT_SILU},
        .dy = lu_tok(L, dqkv, 1, C, 0), .dstate_out = args->dconv_state_out, .dx = lu_tok(L, dqkv_raw, 1, C, 0),
        .dw = args->dconv_w, .dstate0 = args->dconv_state0};
    if ((st = m2rnn_conv1d_backward_ref(&conv))) goto done;
    /* the two input projections: x feeds both, so dx is the sum, rounded once */
    m2rnn_linear_backward_args lin_qkv = {.in = {.x = in->x, .W = in->W_qkv}, .dy = lu_tok(L, dqkv_raw, 1, C, 0),
                                          .dx = lu_tok(L, dx1, 1, d, 0), .dW = args->dW_qkv};
    m2rnn_linear_backward_args lin_abg = {.in = {.x = in->x, .W = in->W_abg}, .dy = lu_tok(L, dabg, 1, P, 0),
                                          .dx = lu_tok(L, dx2, 1, d, 0), .dW = args->dW_abg};
    if ((st = m2rnn_linear_backward_ref(&lin_qkv)) || (st = m2rnn_linear_backward_ref(&lin_abg))) goto done;
    for (int64_t e = 0; e < T * d; e++) dx1[e] += dx2[e];
    m2rnn_tensor dx = args->dx;
    m2rnn_tensor_from_f64(&dx, dx1);
done:
    lu_free_all(all, n_all);
    acts_free(&a);
    return st;
}

/* ---- initialisation ---------------------------------------------------------------------- */

m2rnn_status m2rnn_gdn_block_init(m2rnn_gdn_block_inputs *p, int64_t num_layers, m2rnn_rng *rng)
{
    if (!p || !rng) return m2rnn_set_error(M2RNN_ERR_NULL, "gdn_block_init: NULL argument");
    if (num_layers < 1) return m2rnn_set_error(M2RNN_ERR_ARG, "num_layers: %lld, must be >= 1", (long long)num_layers);
    m2rnn_status st;
    if ((st = lu_required(&p->W_qkv, "W_qkv"))) return st;
    if (p->W_qkv.rank != 2) return m2rnn_set_error(M2RNN_ERR_SHAPE, "W_qkv: expected rank 2");
    m2rnn_gdn_block_dims m;
    if ((st = check_params(p, p->W_qkv.shape[1], &m))) return st;
    if ((st = m2rnn_init_normal(&p->W_qkv, 0.02, rng)) || (st = m2rnn_init_normal(&p->W_abg, 0.02, rng)) ||
        (st = m2rnn_init_normal(&p->conv_w, 0.02, rng)) || (st = m2rnn_decay_gate_init(&p->A_log, &p->dt_bias, rng)) ||
        (st = m2rnn_init_constant(&p->norm_w, 1.0)))
        return st;
    return m2rnn_init_normal(&p->W_o, 0.02 / sqrt(2.0 * (double)num_layers), rng);
}
