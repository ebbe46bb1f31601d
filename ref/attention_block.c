/*
 * The attention block of the hybrid models (the "A" layers) — reference, forward and backward.
 *
 * Shapes: x, out (B,S,d); W_qkv (Cq+2Ckv, d) with Cq = Hq·D, Ckv = Hkv·D; W_o (d, Cq).
 *
 * Forward:
 *   [q | k | v] = x W_qkvᵀ                 (B,S,Hq,D), (B,S,Hkv,D), (B,S,Hkv,D), head-major
 *   a = attention(q, k, v)                 causal softmax, GQA, optional RoPE, KV cache (attention.h)
 *   out = flatten(a) W_oᵀ
 * Backward:
 *   da, dW_o = linear_backward(a, W_o; dout)
 *   dq, dk, dv = attention_backward(da)
 *   dx, dW_qkv = linear_backward(x, W_qkv; [dq | dk | dv])
 * F64 intermediates; each piece is its reference; outputs rounded once.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layer_util.h"
#include "m2rnn/attention.h"
#include "m2rnn/linear.h"

typedef struct {
    int64_t B, S, d, Hq, Hkv, D, Cq, Ckv, P;
} blk_dims;

static m2rnn_status check_inputs(const m2rnn_attention_block_inputs *in, blk_dims *m)
{
    m2rnn_status st;
    const m2rnn_attention_block_config *c = &in->cfg;
    if (c->q_heads < 1 || c->kv_heads < 1 || c->head_dim < 1)
        return m2rnn_set_error(M2RNN_ERR_ARG, "cfg: q_heads, kv_heads, head_dim must be >= 1");
    if (c->q_heads % c->kv_heads != 0)
        return m2rnn_set_error(M2RNN_ERR_HEADS, "cfg.kv_heads: %lld do not divide q_heads = %lld", (long long)c->kv_heads,
                               (long long)c->q_heads);
    if (c->q_heads > (int64_t)1 << 20 || c->head_dim > (int64_t)1 << 20)
        return m2rnn_set_error(M2RNN_ERR_OVERFLOW, "cfg: head counts and dims beyond 2^20");
    if ((st = lu_required(&in->x, "x")) || (st = lu_rank_at_least(&in->x, "x", 3))) return st;
    if (in->x.rank != 3) return m2rnn_set_error(M2RNN_ERR_SHAPE, "x: expected rank 3 (B,S,d), got rank %d", in->x.rank);
    *m = (blk_dims){.B = in->x.shape[0], .S = in->x.shape[1], .d = in->x.shape[2], .Hq = c->q_heads, .Hkv = c->kv_heads,
                    .D = c->head_dim};
    m->Cq = m->Hq * m->D;
    m->Ckv = m->Hkv * m->D;
    m->P = m->Cq + 2 * m->Ckv;
    int64_t s_qkv[2] = {m->P, m->d}, s_o[2] = {m->d, m->Cq};
    if ((st = lu_required(&in->W_qkv, "W_qkv")) || (st = lu_shape(&in->W_qkv, "W_qkv", 2, s_qkv)) ||
        (st = lu_required(&in->W_o, "W_o")) || (st = lu_shape(&in->W_o, "W_o", 2, s_o)))
        return st;
    return M2RNN_OK;
}

/* The attention op's arguments over the F64 buffers q, k, v (B,S,H,D). */
static m2rnn_attention_inputs att_inputs(const m2rnn_attention_block_inputs *in, const blk_dims *m, double *q, double *k,
                                         double *v)
{
    return (m2rnn_attention_inputs){
        .q = m2rnn_tensor_of(q, M2RNN_F64, 4, m->B, m->S, m->Hq, m->D), .k = m2rnn_tensor_of(k, M2RNN_F64, 4, m->B, m->S, m->Hkv, m->D),
        .v = m2rnn_tensor_of(v, M2RNN_F64, 4, m->B, m->S, m->Hkv, m->D), .k_cache = in->k_cache, .v_cache = in->v_cache,
        .cache_len = in->cache_len, .rope = in->cfg.rope, .rope_theta = in->cfg.rope_theta};
}

m2rnn_status m2rnn_attention_block_check_forward(const m2rnn_attention_block_forward_args *a)
{
    if (!a) return m2rnn_set_error(M2RNN_ERR_NULL, "attention_block_forward: NULL argument struct");
    blk_dims m;
    m2rnn_status st = check_inputs(&a->in, &m);
    if (st) return st;
    if ((st = lu_required(&a->o, "o")) || (st = lu_same_shape(&a->o, "o", &a->in.x))) return st;
    /* the op's own checks on the shapes it will see (cache shapes, cache_len, RoPE's even D) */
    double dummy = 0;
    m2rnn_attention_forward_args op = {.in = att_inputs(&a->in, &m, &dummy, &dummy, &dummy),
                                       .o = m2rnn_tensor_of(&dummy, M2RNN_F64, 4, m.B, m.S, m.Hq, m.D)};
    return m2rnn_attention_check_forward(&op);
}

m2rnn_status m2rnn_attention_block_check_backward(const m2rnn_attention_block_backward_args *a)
{
    if (!a) return m2rnn_set_error(M2RNN_ERR_NULL, "attention_block_backward: NULL argument struct");
    blk_dims m;
    m2rnn_status st = check_inputs(&a->in, &m);
    if (st) return st;
    if (m2rnn_tensor_present(&a->in.k_cache) || m2rnn_tensor_present(&a->in.v_cache) || a->in.cache_len != 0)
        return m2rnn_set_error(M2RNN_ERR_ARG, "k_cache: the backward takes no KV cache");
    if (a->in.cfg.rope && m.D % 2) return m2rnn_set_error(M2RNN_ERR_ARG, "rope: head dim D = %lld must be even", (long long)m.D);
    if ((st = lu_required(&a->dout, "dout")) || (st = lu_same_shape(&a->dout, "dout", &a->in.x))) return st;
    if ((st = lu_required(&a->dx, "dx")) || (st = lu_same_shape(&a->dx, "dx", &a->in.x)) || (st = lu_required(&a->dW_qkv, "dW_qkv")) ||
        (st = lu_same_shape(&a->dW_qkv, "dW_qkv", &a->in.W_qkv)) || (st = lu_required(&a->dW_o, "dW_o")) ||
        (st = lu_same_shape(&a->dW_o, "dW_o", &a->in.W_o)))
        return st;
    return M2RNN_OK;
}

/* qkv = x W_qkvᵀ split into q, k, v (each a fresh (B,S,H,D) buffer). */
static m2rnn_status project(const m2rnn_attention_block_inputs *in, const blk_dims *m, double *qkv, double *q, double *k, double *v)
{
    const int64_t T = m->B * m->S;
    m2rnn_linear_forward_args lin = {.in = {.x = in->x, .W = in->W_qkv}, .y = m2rnn_tensor_of(qkv, M2RNN_F64, 3, m->B, m->S, m->P)};
    m2rnn_status st = m2rnn_linear_forward_ref(&lin);
    if (st) return st;
    lu_take_columns(qkv, T, m->P, 0, m->Cq, q);
    lu_take_columns(qkv, T, m->P, m->Cq, m->Ckv, k);
    lu_take_columns(qkv, T, m->P, m->Cq + m->Ckv, m->Ckv, v);
    return M2RNN_OK;
}

m2rnn_status m2rnn_attention_block_forward_ref(const m2rnn_attention_block_forward_args *args)
{
    m2rnn_status st = m2rnn_attention_block_check_forward(args);
    if (st) return st;
    blk_dims m;
    check_inputs(&args->in, &m);
    const int64_t T = m.B * m.S;
    double *qkv = lu_alloc(T * m.P), *q = lu_alloc(T * m.Cq), *k = lu_alloc(T * m.Ckv), *v = lu_alloc(T * m.Ckv), *a = lu_alloc(T * m.Cq);
    double *all[] = {qkv, q, k, v, a};
    if (!qkv || !q || !k || !v || !a) {
        lu_free_all(all, 5);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "attention_block: cannot allocate buffers");
    }
    if (!(st = project(&args->in, &m, qkv, q, k, v))) {
        m2rnn_attention_forward_args att = {.in = att_inputs(&args->in, &m, q, k, v),
                                            .o = m2rnn_tensor_of(a, M2RNN_F64, 4, m.B, m.S, m.Hq, m.D)};
        m2rnn_linear_forward_args out = {.in = {.x = m2rnn_tensor_of(a, M2RNN_F64, 3, m.B, m.S, m.Cq), .W = args->in.W_o}, .y = args->o};
        if (!(st = m2rnn_attention_forward_ref(&att))) st = m2rnn_linear_forward_ref(&out);
    }
    lu_free_all(all, 5);
    return st;
}

m2rnn_status m2rnn_attention_block_backward_ref(const m2rnn_attention_block_backward_args *args)
{
    m2rnn_status st = m2rnn_attention_block_check_backward(args);
    if (st) return st;
    blk_dims m;
    const m2rnn_attention_block_inputs *in = &args->in;
    check_inputs(in, &m);
    const int64_t T = m.B * m.S;
    double *qkv = lu_alloc(T * m.P), *q = lu_alloc(T * m.Cq), *k = lu_alloc(T * m.Ckv), *v = lu_alloc(T * m.Ckv), *a = lu_alloc(T * m.Cq);
    double *da = lu_alloc(T * m.Cq), *dq = lu_alloc(T * m.Cq), *dk = lu_alloc(T * m.Ckv), *dv = lu_alloc(T * m.Ckv);
    double *all[] = {qkv, q, k, v, a, da, dq, dk, dv};
    for (int i = 0; i < 9; i++)
        if (!all[i]) {
            lu_free_all(all, 9);
            return m2rnn_set_error(M2RNN_ERR_NOMEM, "attention_block_backward: cannot allocate buffers");
        }
    m2rnn_tensor at = m2rnn_tensor_of(a, M2RNN_F64, 4, m.B, m.S, m.Hq, m.D);
    m2rnn_attention_forward_args att = {.in = att_inputs(in, &m, q, k, v), .o = at};
    m2rnn_linear_backward_args lin_o = {.in = {.x = m2rnn_tensor_of(a, M2RNN_F64, 3, m.B, m.S, m.Cq), .W = in->W_o}, .dy = args->dout,
                                        .dx = m2rnn_tensor_of(da, M2RNN_F64, 3, m.B, m.S, m.Cq), .dW = args->dW_o};
    m2rnn_attention_backward_args att_b = {.in = att.in, .dout = m2rnn_tensor_of(da, M2RNN_F64, 4, m.B, m.S, m.Hq, m.D),
                                           .dq = m2rnn_tensor_of(dq, M2RNN_F64, 4, m.B, m.S, m.Hq, m.D),
                                           .dk = m2rnn_tensor_of(dk, M2RNN_F64, 4, m.B, m.S, m.Hkv, m.D),
                                           .dv = m2rnn_tensor_of(dv, M2RNN_F64, 4, m.B, m.S, m.Hkv, m.D)};
    if ((st = project(in, &m, qkv, q, k, v)) || (st = m2rnn_attention_forward_ref(&att)) || (st = m2rnn_linear_backward_ref(&lin_o)) ||
        (st = m2rnn_attention_backward_ref(&att_b)))
        goto done;
    /* dqkv reuses the qkv buffer */
    lu_put_columns(dq, T, m.P, 0, m.Cq, qkv);
    lu_put_columns(dk, T, m.P, m.Cq, m.Ckv, qkv);
    lu_put_columns(dv, T, m.P, m.Cq + m.Ckv, m.Ckv, qkv);
    m2rnn_linear_backward_args lin_in = {.in = {.x = in->x, .W = in->W_qkv}, .dy = m2rnn_tensor_of(qkv, M2RNN_F64, 3, m.B, m.S, m.P),
                                         .dx = args->dx, .dW = args->dW_qkv};
    st = m2rnn_linear_backward_ref(&lin_in);
done:
    lu_free_all(all, 9);
    return st;
}

m2rnn_status m2rnn_attention_block_init(m2rnn_attention_block_inputs *p, int64_t num_layers, m2rnn_rng *rng)
{
    if (!p || !rng) return m2rnn_set_error(M2RNN_ERR_NULL, "attention_block_init: NULL argument");
    if (num_layers < 1) return m2rnn_set_error(M2RNN_ERR_ARG, "num_layers: %lld, must be >= 1", (long long)num_layers);
    m2rnn_status st;
    if ((st = lu_required(&p->W_qkv, "W_qkv")) || (st = lu_required(&p->W_o, "W_o"))) return st;
    if (p->W_qkv.rank != 2) return m2rnn_set_error(M2RNN_ERR_SHAPE, "W_qkv: expected rank 2");
    const m2rnn_attention_block_config *c = &p->cfg;
    int64_t s_qkv[2] = {(c->q_heads + 2 * c->kv_heads) * c->head_dim, p->W_qkv.shape[1]}, s_o[2] = {p->W_qkv.shape[1], c->q_heads * c->head_dim};
    if ((st = lu_shape(&p->W_qkv, "W_qkv", 2, s_qkv)) || (st = lu_shape(&p->W_o, "W_o", 2, s_o))) return st;
    if ((st = m2rnn_init_normal(&p->W_qkv, 0.02, rng))) return st;
    return m2rnn_init_normal(&p->W_o, 0.02 / sqrt(2.0 * (double)num_layers), rng);
}
