/*
 * The M²RNN mixer block as trained (SPEC.md §3) — reference, forward and backward.
 *
 * Shapes: see m2rnn_block.h. T tokens (B·S dense, or packed), d model width, N heads,
 * Cq = Nq·K, Ck = Nk·K, Cv = N·V, C = Cq+Ck+Cv, P = C + Nf + N·V.
 *
 * Forward:
 *   P   = x W_inᵀ                               (T×P)   linear
 *   [qkv_raw | f_raw | g] = P                    columns C | Nf | N·V, in this order
 *   f   = decay_gate(f_raw; A_log, dt_bias)      (T×Nf)  in (0, 1]; no conv on f
 *   qkv = SiLU(conv1d(qkv_raw; conv_w))          (T×C)   causal, kernel Kc, state in/out
 *   [q | k | v] = qkv                            (T,Nq,K), (T,Nk,K), (T,N,V), head-major
 *   y, ht = m2rnn(q, k, v, W, f, h0)             (T,N,V)
 *   y2  = y + v ⊙ D                              (T,N,V), D broadcast over tokens
 *   y3  = flatten(y2) ⊙ SiLU(g)                  (T×N·V)
 *   y4  = RMSNorm(y3; norm_w, eps)               one norm over all N·V channels of a token
 *   o   = y4 W_oᵀ                                (T×d)
 *
 * Backward (the same chain in reverse; each piece's own file has its derivatives):
 *   dy4, dW_o   = linear_backward(y4, W_o; dout)
 *   dy3, dnorm_w = rmsnorm_backward(y3; dy4)
 *   dy2 = dy3 ⊙ SiLU(g),   dg = dy3 ⊙ y2 ⊙ SiLU'(g)
 *   dD[n,j] = Σ_t dy2[t,n,j] v[t,n,j],   dv_skip = dy2 ⊙ D
 *   dq, dk, dv, dW, df, dh0 = m2rnn_backward(dy = dy2, dht)
 *   dqkv = [dq | dk | dv + dv_skip]
 *   dqkv_raw, dconv_w, dconv_state0 = conv1d_backward(dqkv, dconv_state_out)
 *   df_raw, dA_log, ddt_bias = decay_gate_backward(df)
 *   dx, dW_in = linear_backward(x, W_in; [dqkv_raw | df_raw | dg])
 *
 * Every intermediate is an F64 buffer, and each piece is its reference implementation called on
 * F64 tensors, so the block is exactly the composition of the pieces in double; the outputs
 * handed to the caller are rounded once (the pieces write them directly). dD is summed in token
 * order; the pieces are thread-count independent, so the block is too.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layer_util.h"
#include "m2rnn/conv1d.h"
#include "m2rnn/decay_gate.h"
#include "m2rnn/linear.h"
#include "m2rnn/m2rnn_block.h"
#include "m2rnn/rmsnorm.h"

/* ---- checks ------------------------------------------------------------------------------ */

/* Resolve the config and check the parameter tensors against it; d is the model width. */
static m2rnn_status check_params(const m2rnn_block_inputs *in, int64_t d, m2rnn_block_dims *m)
{
    m2rnn_status st;
    const m2rnn_block_config *c = &in->cfg;
    if (c->heads < 1) return m2rnn_set_error(M2RNN_ERR_ARG, "cfg.heads: %lld, must be >= 1", (long long)c->heads);
    if (c->key_dim < 1 || c->value_dim < 1)
        return m2rnn_set_error(M2RNN_ERR_ARG, "cfg.key_dim, cfg.value_dim: must be >= 1 (got %lld, %lld)",
                               (long long)c->key_dim, (long long)c->value_dim);
    if (!(c->eps >= 0.0) || isinf(c->eps)) return m2rnn_set_error(M2RNN_ERR_ARG, "cfg.eps: %g, must be finite and >= 0", c->eps);
    const int64_t N = c->heads;
    int64_t counts[4] = {c->q_heads, c->k_heads, c->f_heads, c->w_heads};
    static const char *names[4] = {"cfg.q_heads", "cfg.k_heads", "cfg.f_heads", "cfg.w_heads"};
    for (int i = 0; i < 4; i++) {
        if (counts[i] == 0) counts[i] = N;
        if (counts[i] < 0 || N % counts[i] != 0)
            return m2rnn_set_error(M2RNN_ERR_HEADS, "%s: %lld heads do not divide N = %lld", names[i], (long long)counts[i],
                                   (long long)N);
    }
    if (N > (int64_t)1 << 24 || c->key_dim > (int64_t)1 << 24 || c->value_dim > (int64_t)1 << 24)
        return m2rnn_set_error(M2RNN_ERR_OVERFLOW, "cfg: head counts and dims beyond 2^24");
    *m = (m2rnn_block_dims){.model_dim = d, .heads = N, .q_heads = counts[0], .k_heads = counts[1], .f_heads = counts[2],
                            .w_heads = counts[3], .key_dim = c->key_dim, .value_dim = c->value_dim};
    const int64_t K = c->key_dim, V = c->value_dim;
    m->conv_channels = (m->q_heads + m->k_heads) * K + N * V;
    m->proj_dim = m->conv_channels + m->f_heads + N * V;

    static const char *req_names[8] = {"W_in", "conv_w", "A_log", "dt_bias", "W", "D", "norm_w", "W_o"};
    const m2rnn_tensor *req[8] = {&in->W_in, &in->conv_w, &in->A_log, &in->dt_bias, &in->W, &in->D, &in->norm_w, &in->W_o};
    for (int i = 0; i < 8; i++)
        if ((st = lu_required(req[i], req_names[i]))) return st;
    if ((st = lu_rank_at_least(&in->conv_w, "conv_w", 2))) return st;
    if (in->conv_w.rank != 2 || in->conv_w.shape[0] != m->conv_channels || in->conv_w.shape[1] < 1) {
        char buf[128];
        return m2rnn_set_error(M2RNN_ERR_SHAPE, "conv_w: expected shape (%lld, Kc) with Kc >= 1, got %s",
                               (long long)m->conv_channels, m2rnn_shape_string(&in->conv_w, buf, sizeof buf));
    }
    m->kernel = in->conv_w.shape[1];
    int64_t s_in[2] = {m->proj_dim, d}, s_f[1] = {m->f_heads}, s_W[3] = {m->w_heads, V, V}, s_D[2] = {N, V};
    int64_t s_nw[1] = {N * V}, s_o[2] = {d, N * V};
    if ((st = lu_shape(&in->W_in, "W_in", 2, s_in)) || (st = lu_shape(&in->A_log, "A_log", 1, s_f)) ||
        (st = lu_shape(&in->dt_bias, "dt_bias", 1, s_f)) || (st = lu_shape(&in->W, "W", 3, s_W)) ||
        (st = lu_shape(&in->D, "D", 2, s_D)) || (st = lu_shape(&in->norm_w, "norm_w", 1, s_nw)) ||
        (st = lu_shape(&in->W_o, "W_o", 2, s_o)))
        return st;
    return M2RNN_OK;
}

static m2rnn_status check_inputs(const m2rnn_block_inputs *in, m2rnn_block_dims *m)
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
    /* the widest intermediate, T×P doubles, must be addressable */
    if (m->proj_dim > 0 && m->tokens > INT64_MAX / 8 / m->proj_dim)
        return m2rnn_set_error(M2RNN_ERR_OVERFLOW, "x: T·P overflows");
    return M2RNN_OK;
}

m2rnn_status m2rnn_block_check_forward(const m2rnn_block_forward_args *a, m2rnn_block_dims *dims)
{
    if (!a) return m2rnn_set_error(M2RNN_ERR_NULL, "block_forward: NULL argument struct");
    m2rnn_block_dims m;
    m2rnn_status st = check_inputs(&a->in, &m);
    if (st) return st;
    int64_t s_h[4] = {m.batch, m.heads, m.key_dim, m.value_dim}, s_c[3] = {m.batch, m.conv_channels, m.kernel - 1};
    if ((st = lu_required(&a->o, "o")) || (st = lu_same_shape(&a->o, "o", &a->in.x))) return st;
    if ((st = lu_optional(&a->ht, "ht", 4, s_h)) || (st = lu_optional(&a->conv_state_out, "conv_state_out", 3, s_c))) return st;
    if (dims) *dims = m;
    return M2RNN_OK;
}

m2rnn_status m2rnn_block_check_backward(const m2rnn_block_backward_args *a, m2rnn_block_dims *dims)
{
    if (!a) return m2rnn_set_error(M2RNN_ERR_NULL, "block_backward: NULL argument struct");
    m2rnn_block_dims m;
    const m2rnn_block_inputs *in = &a->in;
    m2rnn_status st = check_inputs(in, &m);
    if (st) return st;
    int64_t s_h[4] = {m.batch, m.heads, m.key_dim, m.value_dim}, s_c[3] = {m.batch, m.conv_channels, m.kernel - 1};
    if ((st = lu_required(&a->dout, "dout")) || (st = lu_same_shape(&a->dout, "dout", &in->x))) return st;
    if ((st = lu_optional(&a->dht, "dht", 4, s_h)) || (st = lu_optional(&a->dconv_state_out, "dconv_state_out", 3, s_c)))
        return st;
    if (a->clip_mode != M2RNN_CLIP_NONE && a->clip_mode != M2RNN_CLIP_CARRY && a->clip_mode != M2RNN_CLIP_TOTAL)
        return m2rnn_set_error(M2RNN_ERR_ARG, "clip_mode: %d is not NONE, CARRY or TOTAL", (int)a->clip_mode);
    if (a->clip_mode != M2RNN_CLIP_NONE && a->clip != a->clip) return m2rnn_set_error(M2RNN_ERR_ARG, "clip: the bound is NaN");
    const lu_grad grads[] = {
        {&a->dx, &in->x, "dx"}, {&a->dW_in, &in->W_in, "dW_in"}, {&a->dconv_w, &in->conv_w, "dconv_w"},
        {&a->dA_log, &in->A_log, "dA_log"}, {&a->ddt_bias, &in->dt_bias, "ddt_bias"}, {&a->dW, &in->W, "dW"},
        {&a->dD, &in->D, "dD"}, {&a->dnorm_w, &in->norm_w, "dnorm_w"}, {&a->dW_o, &in->W_o, "dW_o"},
    };
    if ((st = lu_grads(grads, sizeof grads / sizeof grads[0]))) return st;
    if ((st = lu_optional(&a->dh0, "dh0", 4, s_h)) || (st = lu_optional(&a->dconv_state0, "dconv_state0", 3, s_c))) return st;
    if (dims) *dims = m;
    return M2RNN_OK;
}

/* ---- the forward's intermediates -------------------------------------------------------- */

typedef struct {
    m2rnn_block_dims m;
    double *proj;     /* P = x W_inᵀ (T×P) */
    double *qkv_raw;  /* (T×C) */
    double *f_raw;    /* (T×Nf) */
    double *g;        /* (T×N·V) */
    double *f;        /* decay_gate(f_raw) (T×Nf) */
    double *qkv;      /* SiLU(conv(qkv_raw)) (T×C) */
    double *q, *k, *v;
    double *y;        /* the recurrence's output (T×N·V) */
    double *y2, *y3, *y4;
} acts;

static void acts_free(acts *a)
{
    double *all[] = {a->proj, a->qkv_raw, a->f_raw, a->g, a->f, a->qkv, a->q, a->k, a->v, a->y, a->y2, a->y3, a->y4};
    lu_free_all(all, (int)(sizeof all / sizeof all[0]));
}

static bool acts_allocated(const acts *a)
{
    return a->proj && a->qkv_raw && a->f_raw && a->g && a->f && a->qkv && a->q && a->k && a->v && a->y && a->y2 &&
           a->y3 && a->y4;
}

/* An F64 tensor over a per-token buffer: the token axes of x (B,S or T), then `ntrail` dims. */
static m2rnn_tensor tok(const m2rnn_block_dims *m, double *data, int ntrail, int64_t d0, int64_t d1)
{
    lu_tokens L = {.batch = m->batch, .seqlen = m->seqlen, .tokens = m->tokens, .varlen = m->varlen};
    return lu_tok(&L, data, ntrail, d0, d1);
}

/* Run the forward up to y4 (before the output projection), writing ht and conv_state_out. */
static m2rnn_status forward_acts(const m2rnn_block_inputs *in, const m2rnn_block_dims *m, acts *a, m2rnn_tensor ht,
                                 m2rnn_tensor conv_state_out)
{
    memset(a, 0, sizeof *a);
    a->m = *m;
    const int64_t T = m->tokens, N = m->heads, K = m->key_dim, V = m->value_dim, NV = N * V;
    const int64_t Cq = m->q_heads * K, Ck = m->k_heads * K, C = m->conv_channels, Nf = m->f_heads, P = m->proj_dim;
    a->proj = lu_alloc(T * P);
    a->qkv_raw = lu_alloc(T * C);
    a->f_raw = lu_alloc(T * Nf);
    a->g = lu_alloc(T * NV);
    a->f = lu_alloc(T * Nf);
    a->qkv = lu_alloc(T * C);
    a->q = lu_alloc(T * Cq);
    a->k = lu_alloc(T * Ck);
    a->v = lu_alloc(T * NV);
    a->y = lu_alloc(T * NV);
    a->y2 = lu_alloc(T * NV);
    a->y3 = lu_alloc(T * NV);
    a->y4 = lu_alloc(T * NV);
    if (!acts_allocated(a)) {
        acts_free(a);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "block: cannot allocate the activations");
    }

    m2rnn_status st;
    /* 1. P = x W_inᵀ, split into [qkv_raw | f_raw | g] */
    m2rnn_linear_forward_args lin = {.in = {.x = in->x, .W = in->W_in}, .y = tok(m, a->proj, 1, P, 0)};
    if ((st = m2rnn_linear_forward_ref(&lin))) goto fail;
    lu_take_columns(a->proj, T, P, 0, C, a->qkv_raw);
    lu_take_columns(a->proj, T, P, C, Nf, a->f_raw);
    lu_take_columns(a->proj, T, P, C + Nf, NV, a->g);
    /* 2. f = decay_gate(f_raw) */
    m2rnn_decay_gate_forward_args gate = {
        .in = {.x = tok(m, a->f_raw, 1, Nf, 0), .A_log = in->A_log, .dt_bias = in->dt_bias}, .f = tok(m, a->f, 1, Nf, 0)};
    if ((st = m2rnn_decay_gate_forward_ref(&gate))) goto fail;
    /* 3. qkv = SiLU(conv(qkv_raw)) */
    m2rnn_conv1d_forward_args conv = {
        .in = {.x = tok(m, a->qkv_raw, 1, C, 0), .w = in->conv_w, .state0 = in->conv_state0, .cu_seqlens = in->cu_seqlens,
               .activation = M2RNN_ACT_SILU},
        .y = tok(m, a->qkv, 1, C, 0), .state_out = conv_state_out};
    if ((st = m2rnn_conv1d_forward_ref(&conv))) goto fail;
    lu_take_columns(a->qkv, T, C, 0, Cq, a->q);
    lu_take_columns(a->qkv, T, C, Cq, Ck, a->k);
    lu_take_columns(a->qkv, T, C, Cq + Ck, NV, a->v);
    /* 4. y, ht = m2rnn(q, k, v, W, f, h0) */
    m2rnn_recurrence_forward_args rec = {
        .in = {.q = tok(m, a->q, 2, m->q_heads, K), .k = tok(m, a->k, 2, m->k_heads, K), .v = tok(m, a->v, 2, N, V),
               .W = in->W, .f = tok(m, a->f, 1, Nf, 0), .h0 = in->h0, .cu_seqlens = in->cu_seqlens},
        .y = tok(m, a->y, 2, N, V), .ht = ht};
    if ((st = m2rnn_recurrence_forward_ref(&rec))) goto fail;
    /* 5, 6. y2 = y + v ⊙ D;  y3 = y2 ⊙ SiLU(g) */
    double *D = lu_widen(&in->D);
    if (!D) { st = m2rnn_set_error(M2RNN_ERR_NOMEM, "block: cannot allocate D"); goto fail; }
    for (int64_t t = 0; t < T; t++)
        for (int64_t e = 0; e < NV; e++) {
            a->y2[t * NV + e] = a->y[t * NV + e] + a->v[t * NV + e] * D[e];
            a->y3[t * NV + e] = a->y2[t * NV + e] * lu_silu(a->g[t * NV + e]);
        }
    free(D);
    /* 7. y4 = RMSNorm(y3) over all N·V channels */
    m2rnn_rmsnorm_forward_args norm = {.in = {.x = tok(m, a->y3, 1, NV, 0), .w = in->norm_w, .eps = in->cfg.eps},
                                       .y = tok(m, a->y4, 1, NV, 0)};
    if ((st = m2rnn_rmsnorm_forward_ref(&norm))) goto fail;
    return M2RNN_OK;
fail:
    acts_free(a);
    return st;
}

/* ---- forward ----------------------------------------------------------------------------- */

m2rnn_status m2rnn_block_forward_ref(const m2rnn_block_forward_args *args)
{
    m2rnn_block_dims m;
    m2rnn_status st = m2rnn_block_check_forward(args, &m);
    if (st) return st;
    acts a;
    if ((st = forward_acts(&args->in, &m, &a, args->ht, args->conv_state_out))) return st;
    /* 8. o = y4 W_oᵀ, rounded once into the caller's o */
    m2rnn_linear_forward_args out = {.in = {.x = tok(&m, a.y4, 1, m.heads * m.value_dim, 0), .W = args->in.W_o}, .y = args->o};
    st = m2rnn_linear_forward_ref(&out);
    acts_free(&a);
    return st;
}

/* ---- backward ---------------------------------------------------------------------------- */

m2rnn_status m2rnn_block_backward_ref(const m2rnn_block_backward_args *args)
{
    m2rnn_block_dims m;
    m2rnn_status st = m2rnn_block_check_backward(args, &m);
    if (st) return st;
    const m2rnn_block_inputs *in = &args->in;
    acts a;
    /* The forward again, keeping every intermediate; ht and conv_state_out are not wanted. */
    m2rnn_tensor none = {0};
    if ((st = forward_acts(in, &m, &a, none, none))) return st;

    const int64_t T = m.tokens, N = m.heads, K = m.key_dim, V = m.value_dim, NV = N * V;
    const int64_t Cq = m.q_heads * K, Ck = m.k_heads * K, C = m.conv_channels, Nf = m.f_heads, P = m.proj_dim;
    double *dy4 = lu_alloc(T * NV), *dy3 = lu_alloc(T * NV), *dy2 = lu_alloc(T * NV), *dg = lu_alloc(T * NV);
    double *dq = lu_alloc(T * Cq), *dk = lu_alloc(T * Ck), *dv = lu_alloc(T * NV), *df = lu_alloc(T * Nf);
    double *dqkv = lu_alloc(T * C), *dqkv_raw = lu_alloc(T * C), *df_raw = lu_alloc(T * Nf), *dproj = lu_alloc(T * P);
    double *D = lu_widen(&in->D), *dD = lu_alloc(NV);
    double *all[] = {dy4, dy3, dy2, dg, dq, dk, dv, df, dqkv, dqkv_raw, df_raw, dproj, D, dD};
    const int n_all = (int)(sizeof all / sizeof all[0]);
    for (int i = 0; i < n_all; i++)
        if (!all[i]) {
            lu_free_all(all, n_all);
            acts_free(&a);
            return m2rnn_set_error(M2RNN_ERR_NOMEM, "block_backward: cannot allocate gradient buffers");
        }

    /* 8. o = y4 W_oᵀ */
    m2rnn_linear_backward_args lin_o = {.in = {.x = tok(&m, a.y4, 1, NV, 0), .W = in->W_o}, .dy = args->dout,
                                        .dx = tok(&m, dy4, 1, NV, 0), .dW = args->dW_o};
    if ((st = m2rnn_linear_backward_ref(&lin_o))) goto done;
    /* 7. y4 = RMSNorm(y3) */
    m2rnn_rmsnorm_backward_args norm = {.in = {.x = tok(&m, a.y3, 1, NV, 0), .w = in->norm_w, .eps = in->cfg.eps},
                                        .dy = tok(&m, dy4, 1, NV, 0), .dx = tok(&m, dy3, 1, NV, 0), .dw = args->dnorm_w};
    if ((st = m2rnn_rmsnorm_backward_ref(&norm))) goto done;
    /* 6. y3 = y2 ⊙ SiLU(g) */
    for (int64_t e = 0; e < T * NV; e++) {
        dy2[e] = dy3[e] * lu_silu(a.g[e]);
        dg[e] = dy3[e] * a.y2[e] * lu_silu_grad(a.g[e]);
    }
    /* 5. y2 = y + v ⊙ D: dD summed over tokens in order; the skip's share of dv added below */
    for (int64_t e = 0; e < NV; e++) {
        double acc = 0.0;
        for (int64_t t = 0; t < T; t++) acc += dy2[t * NV + e] * a.v[t * NV + e];
        dD[e] = acc;
    }
    m2rnn_tensor dDt = args->dD;
    m2rnn_tensor_from_f64(&dDt, dD);
    /* 4. the recurrence, with dy = dy2 */
    m2rnn_recurrence_backward_args rec = {
        .in = {.q = tok(&m, a.q, 2, m.q_heads, K), .k = tok(&m, a.k, 2, m.k_heads, K), .v = tok(&m, a.v, 2, N, V),
               .W = in->W, .f = tok(&m, a.f, 1, Nf, 0), .h0 = in->h0, .cu_seqlens = in->cu_seqlens},
        .dy = tok(&m, dy2, 2, N, V), .dht = args->dht, .clip_mode = args->clip_mode, .clip = args->clip,
        .dq = tok(&m, dq, 2, m.q_heads, K), .dk = tok(&m, dk, 2, m.k_heads, K), .dv = tok(&m, dv, 2, N, V),
        .dW = args->dW, .df = tok(&m, df, 1, Nf, 0), .dh0 = args->dh0};
    if ((st = m2rnn_recurrence_backward_ref(&rec))) goto done;
    for (int64_t t = 0; t < T; t++)
        for (int64_t e = 0; e < NV; e++) dv[t * NV + e] += dy2[t * NV + e] * D[e];
    lu_put_columns(dq, T, C, 0, Cq, dqkv);
    lu_put_columns(dk, T, C, Cq, Ck, dqkv);
    lu_put_columns(dv, T, C, Cq + Ck, NV, dqkv);
    /* 3. qkv = SiLU(conv(qkv_raw)) */
    m2rnn_conv1d_backward_args conv = {
        .in = {.x = tok(&m, a.qkv_raw, 1, C, 0), .w = in->conv_w, .state0 = in->conv_state0, .cu_seqlens = in->cu_seqlens,
               .activation = M2RNN_ACT_SILU},
        .dy = tok(&m, dqkv, 1, C, 0), .dstate_out = args->dconv_state_out, .dx = tok(&m, dqkv_raw, 1, C, 0),
        .dw = args->dconv_w, .dstate0 = args->dconv_state0};
    if ((st = m2rnn_conv1d_backward_ref(&conv))) goto done;
    /* 2. f = decay_gate(f_raw) */
    m2rnn_decay_gate_backward_args gate = {
        .in = {.x = tok(&m, a.f_raw, 1, Nf, 0), .A_log = in->A_log, .dt_bias = in->dt_bias}, .df = tok(&m, df, 1, Nf, 0),
        .dx = tok(&m, df_raw, 1, Nf, 0), .dA_log = args->dA_log, .ddt_bias = args->ddt_bias};
    if ((st = m2rnn_decay_gate_backward_ref(&gate))) goto done;
    /* 1. P = x W_inᵀ with dP = [dqkv_raw | df_raw | dg] */
    lu_put_columns(dqkv_raw, T, P, 0, C, dproj);
    lu_put_columns(df_raw, T, P, C, Nf, dproj);
    lu_put_columns(dg, T, P, C + Nf, NV, dproj);
    m2rnn_linear_backward_args lin_in = {.in = {.x = in->x, .W = in->W_in}, .dy = tok(&m, dproj, 1, P, 0), .dx = args->dx,
                                         .dW = args->dW_in};
    st = m2rnn_linear_backward_ref(&lin_in);
done:
    lu_free_all(all, n_all);
    acts_free(&a);
    return st;
}

/* ---- initialisation ---------------------------------------------------------------------- */

m2rnn_status m2rnn_block_init(m2rnn_block_inputs *p, int64_t num_layers, m2rnn_rng *rng)
{
    if (!p || !rng) return m2rnn_set_error(M2RNN_ERR_NULL, "block_init: NULL argument");
    if (num_layers < 1) return m2rnn_set_error(M2RNN_ERR_ARG, "num_layers: %lld, must be >= 1", (long long)num_layers);
    m2rnn_status st;
    if ((st = lu_required(&p->W_in, "W_in")) || (st = lu_rank_at_least(&p->W_in, "W_in", 2))) return st;
    if (p->W_in.rank != 2) return m2rnn_set_error(M2RNN_ERR_SHAPE, "W_in: expected rank 2");
    m2rnn_block_dims m;
    if ((st = check_params(p, p->W_in.shape[1], &m))) return st;
    if ((st = m2rnn_init_normal(&p->W_in, 0.02, rng))) return st;
    if ((st = m2rnn_init_normal(&p->conv_w, 0.02, rng))) return st;
    if ((st = m2rnn_decay_gate_init(&p->A_log, &p->dt_bias, rng))) return st;
    if ((st = m2rnn_init_identity(&p->W))) return st;
    if ((st = m2rnn_init_constant(&p->D, 1.0))) return st;
    if ((st = m2rnn_init_constant(&p->norm_w, 1.0))) return st;
    return m2rnn_init_normal(&p->W_o, 0.02 / sqrt(2.0 * (double)num_layers), rng);
}
