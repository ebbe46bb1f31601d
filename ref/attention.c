/*
 * Causal softmax attention (SPEC.md §5) — reference, forward and backward.
 *
 * Shapes: q (B,S,Hq,D), k (B,S,Hkv,D), v (B,S,Hkv,Dv), o (B,S,Hq,Dv); G = Hq/Hkv query heads per
 * kv head; L = cache_len + S keys per sequence; query i sits at position cache_len + i.
 *
 * Forward per (b, h), hk = h / G:
 *   q̃_i = R(p_i) q_i,  k̃_j = R(j) k_j                 (RoPE, half-split; attention.h)
 *   s_ij = scale q̃_i·k̃_j,  j <= p_i;   m_i = max_j s_ij
 *   P_ij = exp(s_ij - m_i) / Σ_l exp(s_il - m_i)     (max subtracted: no overflow)
 *   o_i  = Σ_j P_ij v_j
 *
 * Backward (no cache; p_i = i), with δ_i = dout_i·o_i:
 *   dv_j  += Σ_i P_ij dout_i                         (summed over the G heads of the group)
 *   dP_ij  = dout_i·v_j,    ds_ij = P_ij (dP_ij - δ_i)      (softmax Jacobian)
 *   dq̃_i   = scale Σ_j ds_ij k̃_j,   dk̃_j += scale Σ_i ds_ij q̃_i
 *   dq = R(p)ᵀ dq̃,  dk = R(p)ᵀ dk̃                     (the rotation's transpose)
 *
 * Work is split over (b, kv head) lanes (OpenMP), each lane owning its dk, dv rows and the dq
 * rows of its G query heads, and summing in a fixed order: thread-count independent.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layer_util.h"
#include "m2rnn/attention.h"

typedef struct {
    int64_t B, S, Hq, Hkv, D, Dv, L, Smax;
    double scale, theta;
} att_dims;

/* ---- checks ------------------------------------------------------------------------------ */

static m2rnn_status check_inputs(const m2rnn_attention_inputs *in, att_dims *m)
{
    m2rnn_status st;
    if ((st = lu_required(&in->q, "q")) || (st = lu_required(&in->k, "k")) || (st = lu_required(&in->v, "v"))) return st;
    if ((st = lu_rank_at_least(&in->q, "q", 4)) || (st = lu_rank_at_least(&in->k, "k", 4)) || (st = lu_rank_at_least(&in->v, "v", 4)))
        return st;
    if (in->q.rank != 4) return m2rnn_set_error(M2RNN_ERR_SHAPE, "q: expected rank 4 (B,S,Hq,D), got rank %d", in->q.rank);
    *m = (att_dims){.B = in->q.shape[0], .S = in->q.shape[1], .Hq = in->q.shape[2], .D = in->q.shape[3],
                    .Hkv = in->k.shape[2], .Dv = in->v.shape[in->v.rank - 1]};
    if (m->Hq < 1 || m->D < 1 || m->Hkv < 1 || m->Dv < 1)
        return m2rnn_set_error(M2RNN_ERR_SHAPE, "q, k, v: head counts and head dims must be >= 1");
    if (m->Hq % m->Hkv != 0)
        return m2rnn_set_error(M2RNN_ERR_HEADS, "k: %lld kv heads do not divide the %lld query heads", (long long)m->Hkv,
                               (long long)m->Hq);
    int64_t sk[4] = {m->B, m->S, m->Hkv, m->D}, sv[4] = {m->B, m->S, m->Hkv, m->Dv};
    if ((st = lu_shape(&in->k, "k", 4, sk)) || (st = lu_shape(&in->v, "v", 4, sv))) return st;
    if (in->rope && m->D % 2 != 0) return m2rnn_set_error(M2RNN_ERR_ARG, "rope: head dim D = %lld must be even", (long long)m->D);
    if (!isfinite(in->scale)) return m2rnn_set_error(M2RNN_ERR_ARG, "scale: must be finite (0 means 1/sqrt(D))");
    if (!isfinite(in->rope_theta) || in->rope_theta < 0) return m2rnn_set_error(M2RNN_ERR_ARG, "rope_theta: must be finite and >= 0");
    if (m->D > (int64_t)1 << 24 || m->Dv > (int64_t)1 << 24 || m->Hq > (int64_t)1 << 24)
        return m2rnn_set_error(M2RNN_ERR_OVERFLOW, "q, v: head counts and dims beyond 2^24");
    m->scale = in->scale != 0 ? in->scale : 1.0 / sqrt((double)m->D);
    m->theta = in->rope_theta != 0 ? in->rope_theta : M2RNN_ROPE_THETA;
    bool kc = m2rnn_tensor_present(&in->k_cache), vc = m2rnn_tensor_present(&in->v_cache);
    if (kc != vc) return m2rnn_set_error(M2RNN_ERR_NULL, "k_cache, v_cache: give both or neither");
    m->L = m->S;
    m->Smax = 0;
    if (kc) {
        if ((st = lu_rank_at_least(&in->k_cache, "k_cache", 4))) return st;
        m->Smax = in->k_cache.shape[1];
        int64_t skc[4] = {m->B, m->Smax, m->Hkv, m->D}, svc[4] = {m->B, m->Smax, m->Hkv, m->Dv};
        if ((st = lu_shape(&in->k_cache, "k_cache", 4, skc)) || (st = lu_shape(&in->v_cache, "v_cache", 4, svc))) return st;
        if (in->cache_len < 0 || in->cache_len > m->Smax - m->S)
            return m2rnn_set_error(M2RNN_ERR_ARG, "cache_len: %lld, must be in [0, Smax - S] = [0, %lld]", (long long)in->cache_len,
                                   (long long)(m->Smax - m->S));
        m->L = in->cache_len + m->S;
    } else if (in->cache_len != 0) {
        return m2rnn_set_error(M2RNN_ERR_ARG, "cache_len: %lld without a cache (must be 0)", (long long)in->cache_len);
    }
    return M2RNN_OK;
}

m2rnn_status m2rnn_attention_check_forward(const m2rnn_attention_forward_args *a)
{
    if (!a) return m2rnn_set_error(M2RNN_ERR_NULL, "attention_forward: NULL argument struct");
    att_dims m;
    m2rnn_status st = check_inputs(&a->in, &m);
    if (st) return st;
    int64_t so[4] = {m.B, m.S, m.Hq, m.Dv};
    if ((st = lu_required(&a->o, "o")) || (st = lu_shape(&a->o, "o", 4, so))) return st;
    return M2RNN_OK;
}

m2rnn_status m2rnn_attention_check_backward(const m2rnn_attention_backward_args *a)
{
    if (!a) return m2rnn_set_error(M2RNN_ERR_NULL, "attention_backward: NULL argument struct");
    att_dims m;
    m2rnn_status st = check_inputs(&a->in, &m);
    if (st) return st;
    if (m2rnn_tensor_present(&a->in.k_cache))
        return m2rnn_set_error(M2RNN_ERR_ARG, "k_cache: the backward takes no KV cache (training runs whole sequences)");
    int64_t so[4] = {m.B, m.S, m.Hq, m.Dv};
    if ((st = lu_required(&a->dout, "dout")) || (st = lu_shape(&a->dout, "dout", 4, so))) return st;
    if ((st = lu_required(&a->dq, "dq")) || (st = lu_same_shape(&a->dq, "dq", &a->in.q)) || (st = lu_required(&a->dk, "dk")) ||
        (st = lu_same_shape(&a->dk, "dk", &a->in.k)) || (st = lu_required(&a->dv, "dv")) ||
        (st = lu_same_shape(&a->dv, "dv", &a->in.v)))
        return st;
    return M2RNN_OK;
}

/* ---- rotary positions -------------------------------------------------------------------- */

/* Rotate the D-vector x in place by position pos (half-split pairs); sign = -1 applies the
 * transpose (the inverse rotation), which is what the backward needs. */
static void rope_apply(double *x, int64_t D, double pos, double theta, double sign)
{
    const int64_t half = D / 2;
    for (int64_t d = 0; d < half; d++) {
        double angle = pos * pow(theta, -2.0 * (double)d / (double)D);
        double c = cos(angle), s = sign * sin(angle), x1 = x[d], x2 = x[d + half];
        x[d] = x1 * c - x2 * s;
        x[d + half] = x2 * c + x1 * s;
    }
}

/* q̃ (B,S,Hq,D) and, for the S new tokens, k̃ (B,S,Hkv,D): widened and rotated. */
static void rotate_all(double *x, int64_t B, int64_t S, int64_t H, int64_t D, int64_t pos0, double theta)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < S; t++)
            for (int64_t h = 0; h < H; h++) rope_apply(x + ((b * S + t) * H + h) * D, D, (double)(pos0 + t), theta, 1.0);
}

/* ---- the softmax rows -------------------------------------------------------------------- */

/* P[0..n) = softmax(scale · q̃·k̃_j) over keys j < n of one (b, hk) lane; keys at kr + j·kstride. */
static void softmax_row(const double *q, const double *kr, int64_t kstride, int64_t n, int64_t D, double scale, double *P)
{
    double mx = -INFINITY;
    for (int64_t j = 0; j < n; j++) {
        double s = 0;
        for (int64_t d = 0; d < D; d++) s += q[d] * kr[j * kstride + d];
        P[j] = scale * s;
        if (P[j] > mx) mx = P[j];
    }
    double sum = 0;
    for (int64_t j = 0; j < n; j++) sum += (P[j] = exp(P[j] - mx));
    for (int64_t j = 0; j < n; j++) P[j] /= sum;
}

/* ---- forward ----------------------------------------------------------------------------- */

m2rnn_status m2rnn_attention_forward_ref(const m2rnn_attention_forward_args *args)
{
    m2rnn_status st = m2rnn_attention_check_forward(args);
    if (st) return st;
    const m2rnn_attention_inputs *in = &args->in;
    att_dims m;
    check_inputs(in, &m);
    const int64_t B = m.B, S = m.S, Hq = m.Hq, Hkv = m.Hkv, D = m.D, Dv = m.Dv, L = m.L, G = Hq / Hkv, c0 = in->cache_len;
    const bool cached = m2rnn_tensor_present(&in->k_cache);
    double *q = lu_widen(&in->q), *kn = lu_widen(&in->k), *vn = lu_widen(&in->v), *o = lu_alloc(B * S * Hq * Dv);
    double *kr = cached ? lu_alloc(B * L * Hkv * D) : NULL, *vr = cached ? lu_alloc(B * L * Hkv * Dv) : NULL;
    double *all[] = {q, kn, vn, o, kr, vr};
    if (!q || !kn || !vn || !o || (cached && (!kr || !vr))) {
        lu_free_all(all, 6);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "attention: cannot allocate buffers");
    }
    if (in->rope) {
        rotate_all(q, B, S, Hq, D, c0, m.theta);
        rotate_all(kn, B, S, Hkv, D, c0, m.theta);
    }
    if (cached) {
        /* append the new rotated keys and values, then read every key back in the cache's dtype */
        m2rnn_tensor kc = in->k_cache, vc = in->v_cache;
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < S; t++) {
                int64_t row = (b * m.Smax + c0 + t) * Hkv, src = (b * S + t) * Hkv;
                for (int64_t e = 0; e < Hkv * D; e++) m2rnn_tensor_set(&kc, row * D + e, kn[src * D + e]);
                for (int64_t e = 0; e < Hkv * Dv; e++) m2rnn_tensor_set(&vc, row * Dv + e, vn[src * Dv + e]);
            }
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < L; t++) {
                int64_t row = (b * m.Smax + t) * Hkv, dst = (b * L + t) * Hkv;
                for (int64_t e = 0; e < Hkv * D; e++) kr[dst * D + e] = m2rnn_tensor_get(&kc, row * D + e);
                for (int64_t e = 0; e < Hkv * Dv; e++) vr[dst * Dv + e] = m2rnn_tensor_get(&vc, row * Dv + e);
            }
    }
    const double *K = cached ? kr : kn, *Vv = cached ? vr : vn;
    int failed = 0;
#pragma omp parallel reduction(|| : failed)
    {
        double *P = lu_alloc(L);
        if (!P) failed = 1;
#pragma omp for schedule(static)
        for (int64_t lane = 0; lane < B * Hq; lane++) {
            if (!P) continue;
            const int64_t b = lane / Hq, h = lane % Hq, hk = h / G;
            const double *kb = K + (b * L * Hkv + hk) * D, *vb = Vv + (b * L * Hkv + hk) * Dv;
            for (int64_t i = 0; i < S; i++) {
                const int64_t n = c0 + i + 1; /* keys 0 .. p_i */
                softmax_row(q + ((b * S + i) * Hq + h) * D, kb, Hkv * D, n, D, m.scale, P);
                double *oi = o + ((b * S + i) * Hq + h) * Dv;
                for (int64_t e = 0; e < Dv; e++) oi[e] = 0;
                for (int64_t j = 0; j < n; j++)
                    for (int64_t e = 0; e < Dv; e++) oi[e] += P[j] * vb[j * Hkv * Dv + e];
            }
        }
        free(P);
    }
    if (!failed) {
        m2rnn_tensor out = args->o;
        m2rnn_tensor_from_f64(&out, o);
    }
    lu_free_all(all, 6);
    return failed ? m2rnn_set_error(M2RNN_ERR_NOMEM, "attention: cannot allocate a softmax row") : M2RNN_OK;
}

/* ---- backward ---------------------------------------------------------------------------- */

m2rnn_status m2rnn_attention_backward_ref(const m2rnn_attention_backward_args *args)
{
    m2rnn_status st = m2rnn_attention_check_backward(args);
    if (st) return st;
    const m2rnn_attention_inputs *in = &args->in;
    att_dims m;
    check_inputs(in, &m);
    const int64_t B = m.B, S = m.S, Hq = m.Hq, Hkv = m.Hkv, D = m.D, Dv = m.Dv, G = Hq / Hkv;
    double *q = lu_widen(&in->q), *k = lu_widen(&in->k), *v = lu_widen(&in->v), *dout = lu_widen(&args->dout);
    double *dq = lu_zeros(B * S * Hq * D), *dk = lu_zeros(B * S * Hkv * D), *dv = lu_zeros(B * S * Hkv * Dv);
    double *all[] = {q, k, v, dout, dq, dk, dv};
    for (int i = 0; i < 7; i++)
        if (!all[i]) {
            lu_free_all(all, 7);
            return m2rnn_set_error(M2RNN_ERR_NOMEM, "attention_backward: cannot allocate buffers");
        }
    if (in->rope) {
        rotate_all(q, B, S, Hq, D, 0, m.theta);
        rotate_all(k, B, S, Hkv, D, 0, m.theta);
    }
    int failed = 0;
#pragma omp parallel reduction(|| : failed)
    {
        double *P = lu_alloc(S), *oi = lu_alloc(Dv);
        if (!P || !oi) failed = 1;
#pragma omp for schedule(static)
        for (int64_t lane = 0; lane < B * Hkv; lane++) { /* a kv head and the G query heads that read it */
            if (!P || !oi) continue;
            const int64_t b = lane / Hkv, hk = lane % Hkv;
            const double *kb = k + (b * S * Hkv + hk) * D, *vb = v + (b * S * Hkv + hk) * Dv;
            double *dkb = dk + (b * S * Hkv + hk) * D, *dvb = dv + (b * S * Hkv + hk) * Dv;
            for (int64_t h = hk * G; h < (hk + 1) * G; h++)
                for (int64_t i = 0; i < S; i++) {
                    const double *qi = q + ((b * S + i) * Hq + h) * D, *doi = dout + ((b * S + i) * Hq + h) * Dv;
                    double *dqi = dq + ((b * S + i) * Hq + h) * D;
                    softmax_row(qi, kb, Hkv * D, i + 1, D, m.scale, P);
                    double delta = 0; /* δ_i = dout_i·o_i */
                    for (int64_t e = 0; e < Dv; e++) oi[e] = 0;
                    for (int64_t j = 0; j <= i; j++)
                        for (int64_t e = 0; e < Dv; e++) oi[e] += P[j] * vb[j * Hkv * Dv + e];
                    for (int64_t e = 0; e < Dv; e++) delta += doi[e] * oi[e];
                    for (int64_t j = 0; j <= i; j++) {
                        double dP = 0;
                        for (int64_t e = 0; e < Dv; e++) {
                            dP += doi[e] * vb[j * Hkv * Dv + e];
                            dvb[j * Hkv * Dv + e] += P[j] * doi[e];
                        }
                        const double ds = m.scale * P[j] * (dP - delta);
                        for (int64_t d = 0; d < D; d++) {
                            dqi[d] += ds * kb[j * Hkv * D + d];
                            dkb[j * Hkv * D + d] += ds * qi[d];
                        }
                    }
                }
        }
        free(P);
        free(oi);
    }
    if (!failed) {
        if (in->rope) { /* back through the rotation: its transpose */
            for (int64_t b = 0; b < B; b++)
                for (int64_t t = 0; t < S; t++) {
                    for (int64_t h = 0; h < Hq; h++) rope_apply(dq + ((b * S + t) * Hq + h) * D, D, (double)t, m.theta, -1.0);
                    for (int64_t h = 0; h < Hkv; h++) rope_apply(dk + ((b * S + t) * Hkv + h) * D, D, (double)t, m.theta, -1.0);
                }
        }
        m2rnn_tensor tq = args->dq, tk = args->dk, tv = args->dv;
        m2rnn_tensor_from_f64(&tq, dq);
        m2rnn_tensor_from_f64(&tk, dk);
        m2rnn_tensor_from_f64(&tv, dv);
    }
    lu_free_all(all, 7);
    return failed ? m2rnn_set_error(M2RNN_ERR_NOMEM, "attention_backward: cannot allocate a softmax row") : M2RNN_OK;
}
