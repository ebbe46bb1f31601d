/*
 * The mutant kernels (see mutants.h): one fp32 implementation of SPEC.md §1 with a switch per
 * bug. Every `if (m->id == MUT_...)` below is a place a real kernel went wrong; with MUT_NONE
 * the code is an honest fp32 (or bf16-state) kernel.
 *
 * Deliberately unlike the reference and the emulation: float variables, libm tanhf, K summed in
 * tiles of 64, lanes processed head by head and sequence by sequence, reductions over shared
 * heads by scattering into the source head. Single-threaded (tests fork; no OpenMP here).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mutants.h"

static const mutant_info infos[MUT_COUNT] = {
    [MUT_NONE] = {"none", "the honest kernel", MUT_IN_F32 | MUT_IN_TF32 | MUT_IN_BF16},
    [MUT_KTILE_OVERWRITE] = {"ktile_overwrite", "K tiles of 64 overwrite y, dv, df instead of adding", MUT_IN_F32 | MUT_IN_TF32 | MUT_IN_BF16},
    [MUT_ACC_NOT_ZEROED] = {"acc_not_zeroed", "dW accumulated into the output without zeroing it", MUT_IN_F32 | MUT_IN_TF32 | MUT_IN_BF16},
    [MUT_DHT_IGNORED] = {"dht_ignored", "dht ignored: the backward starts from G = 0", MUT_IN_F32 | MUT_IN_TF32 | MUT_IN_BF16},
    [MUT_DW_NOT_REDUCED] = {"dw_not_reduced", "dW of the last program only, not summed over sequences and shared heads", MUT_IN_F32 | MUT_IN_TF32 | MUT_IN_BF16},
    [MUT_DQ_NOT_REDUCED] = {"dq_not_reduced", "dq of a shared q head not summed over its state heads", MUT_IN_F32 | MUT_IN_TF32 | MUT_IN_BF16},
    [MUT_DK_NOT_REDUCED] = {"dk_not_reduced", "dk of a shared k head not summed", MUT_IN_F32 | MUT_IN_TF32 | MUT_IN_BF16},
    [MUT_DV_NOT_REDUCED] = {"dv_not_reduced", "dv of a shared v head not summed", MUT_IN_F32 | MUT_IN_TF32 | MUT_IN_BF16},
    [MUT_DF_NOT_REDUCED] = {"df_not_reduced", "df of a shared f head not summed", MUT_IN_F32 | MUT_IN_TF32 | MUT_IN_BF16},
    [MUT_SEQSTART_PREV] = {"seqstart_prev", "varlen: a sequence starts from the previous sequence's final state", MUT_IN_F32 | MUT_IN_TF32 | MUT_IN_BF16},
    [MUT_SEQSTART_ZERO] = {"seqstart_zero", "sequences start from zero instead of h0", MUT_IN_F32 | MUT_IN_TF32 | MUT_IN_BF16},
    [MUT_FINISHED_LEAK_DW] = {"finished_leak_dw", "varlen: finished sequences run on over padding and leak into dW", MUT_IN_F32 | MUT_IN_TF32 | MUT_IN_BF16},
    [MUT_HEAD_MOD] = {"head_mod", "state head n reads source head n % Nx instead of n / G", MUT_IN_F32 | MUT_IN_TF32 | MUT_IN_BF16},
    [MUT_FWD_W_TRANSPOSED] = {"fwd_w_transposed", "forward computes H Wᵀ instead of H W", MUT_IN_F32 | MUT_IN_TF32 | MUT_IN_BF16},
    [MUT_BWD_W_NOT_TRANSPOSED] = {"bwd_w_not_transposed", "backward computes dA W instead of dA Wᵀ", MUT_IN_F32 | MUT_IN_TF32 | MUT_IN_BF16},
    [MUT_F_SWAPPED] = {"f_swapped", "f and 1-f swapped (consistently in both directions)", MUT_IN_F32 | MUT_IN_TF32 | MUT_IN_BF16},
    [MUT_DQ_FROM_HPREV] = {"dq_from_hprev", "dq from H_{t-1} instead of H_t", MUT_IN_F32 | MUT_IN_TF32 | MUT_IN_BF16},
    [MUT_TANH_DERIV_FROM_H] = {"tanh_deriv_from_h", "tanh' from the state H instead of Z", MUT_IN_F32 | MUT_IN_TF32 | MUT_IN_BF16},
    [MUT_CLIP_DH0] = {"clip_dh0", "dh0 clipped", MUT_IN_F32 | MUT_IN_TF32 | MUT_IN_BF16},
    [MUT_CLIP_TOTAL_FOR_CARRY] = {"clip_total_for_carry", "carry mode clips the total instead of the carry", MUT_IN_F32 | MUT_IN_TF32 | MUT_IN_BF16},
    [MUT_CLIP_CARRY_FOR_TOTAL] = {"clip_carry_for_total", "total mode clips the carry instead of the total", MUT_IN_F32 | MUT_IN_TF32 | MUT_IN_BF16},
    [MUT_PADDED_LANES] = {"padded_lanes", "K, V padded to a power of two and the padding read", MUT_IN_F32 | MUT_IN_TF32 | MUT_IN_BF16},
    [MUT_MISSING_LAST_STEP] = {"missing_last_step", "loops stop one step early", MUT_IN_F32 | MUT_IN_TF32 | MUT_IN_BF16},
    [MUT_Y_FROM_HPREV] = {"y_from_hprev", "y reads the state before the update", MUT_IN_F32 | MUT_IN_TF32 | MUT_IN_BF16},
    [MUT_DF_FROM_HCUR] = {"df_from_hcur", "df uses H_t instead of H_{t-1}", MUT_IN_F32 | MUT_IN_TF32 | MUT_IN_BF16},
    [MUT_EMPTY_SEQ_ZERO] = {"empty_seq_zero", "an empty sequence gives ht = 0, dh0 = 0 instead of h0, dht", MUT_IN_F32 | MUT_IN_TF32 | MUT_IN_BF16},
    [MUT_BF16_STATE_IN_F32] = {"bf16_state_in_f32", "an fp32 kernel rounding its state to bf16 (bf16 rounding in the wrong class)", MUT_IN_F32 | MUT_IN_TF32},
    [MUT_F_ROUNDED_BF16] = {"f_rounded_bf16", "an fp32 kernel casting the forget gate to bf16", MUT_IN_F32 | MUT_IN_TF32},
    [MUT_BF16_DW_ACCUMULATOR] = {"bf16_dw_accumulator", "a bf16 kernel accumulating dW over time in bf16 (bf16 rounding in the wrong place)", MUT_IN_BF16},
};

const mutant_info *mutant_describe(mutant_id id) { return (unsigned)id < MUT_COUNT ? &infos[id] : NULL; }

typedef struct {
    mutant_id id;
    bool bf16;
} mctx;

/* ---- the problem ------------------------------------------------------------------------ */

typedef struct {
    const mctx *m;
    const m2rnn_recurrence_inputs *in;
    m2rnn_recurrence_dims d;
    int64_t N, K, V, T, B;
    float *q, *k, *v, *W, *f, *h0; /* inputs widened to float (exact for f32 and bf16 storage) */
    int64_t nq, nk, nv, nw;       /* element counts, for the padded-lane mutant's flat reads */
} prob;

static float *widen(const m2rnn_tensor *t, int64_t *count)
{
    int64_t n = m2rnn_tensor_numel(t);
    float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; x && i < n; i++) x[i] = (float)m2rnn_tensor_get(t, i);
    if (count) *count = n;
    return x;
}

static void prob_free(prob *p)
{
    free(p->q); free(p->k); free(p->v); free(p->W); free(p->f); free(p->h0);
}

static void prob_init(prob *p, const mctx *m, const m2rnn_recurrence_inputs *in, const m2rnn_recurrence_dims *d)
{
    memset(p, 0, sizeof *p);
    p->m = m;
    p->in = in;
    p->d = *d;
    p->N = d->heads; p->K = d->key_dim; p->V = d->value_dim; p->T = d->tokens; p->B = d->batch;
    p->q = widen(&in->q, &p->nq);
    p->k = widen(&in->k, &p->nk);
    p->v = widen(&in->v, &p->nv);
    p->W = widen(&in->W, &p->nw);
    p->f = widen(&in->f, NULL);
    p->h0 = m2rnn_tensor_present(&in->h0) ? widen(&in->h0, NULL) : NULL;
}

/* The source head state head n reads from an input with nx heads. */
static int64_t src(const prob *p, int64_t n, int64_t nx)
{
    if (p->m->id == MUT_HEAD_MOD) return n % nx; /* the bug: round-robin instead of blocks */
    return n / (p->N / nx);
}

static int64_t q_off(const prob *p, int64_t tok, int64_t n) { return (tok * p->d.q_heads + src(p, n, p->d.q_heads)) * p->K; }
static int64_t k_off(const prob *p, int64_t tok, int64_t n) { return (tok * p->d.k_heads + src(p, n, p->d.k_heads)) * p->K; }
static int64_t v_off(const prob *p, int64_t tok, int64_t n) { return (tok * p->d.v_heads + src(p, n, p->d.v_heads)) * p->V; }
static int64_t w_off(const prob *p, int64_t n) { return src(p, n, p->d.w_heads) * p->V * p->V; }

static float f_at(const prob *p, int64_t tok, int64_t n)
{
    float f = p->f[tok * p->d.f_heads + src(p, n, p->d.f_heads)];
    if (p->m->id == MUT_F_ROUNDED_BF16) f = (float)m2rnn_round_to(M2RNN_BF16, f);
    return f;
}

static int64_t pow2_at_least(int64_t x)
{
    int64_t p = 1;
    while (p < x) p *= 2;
    return p;
}

static float bf16_nearest(float x) { return (float)m2rnn_round_to(M2RNN_BF16, x); }

/* ---- forward ---------------------------------------------------------------------------- */

/* Z = tanh(H W + k vᵀ); Hn = f H + (1-f) Z (rounded to bf16 in the bf16 kernel). */
static void step(const prob *p, int64_t tok, int64_t n, const float *H, float *Z, float *Hn)
{
    const mctx *m = p->m;
    const int64_t K = p->K, V = p->V, KV = K * V, woff = w_off(p, n);
    const float *k = p->k + k_off(p, tok, n), *v = p->v + v_off(p, tok, n), *W = p->W + woff;
    const float f = f_at(p, tok, n);
    const int64_t lim = m->id == MUT_PADDED_LANES ? pow2_at_least(V) : V;
    for (int64_t i = 0; i < K; i++)
        for (int64_t j = 0; j < V; j++) {
            float acc = 0.0f;
            for (int64_t l = 0; l < lim; l++) {
                float h, w;
                if (l < V) {
                    h = H[i * V + l];
                    w = m->id == MUT_FWD_W_TRANSPOSED ? W[j * V + l] : W[l * V + j];
                } else {
                    /* the padding: whatever follows in memory (the next row of H, the next
                     * head's W), or a stray 0.5 past the end of the buffer */
                    h = i * V + l < KV ? H[i * V + l] : 0.5f;
                    w = woff + l * V + j < p->nw ? p->W[woff + l * V + j] : 0.5f;
                }
                acc += h * w;
            }
            Z[i * V + j] = tanhf(acc + k[i] * v[j]);
        }
    for (int64_t e = 0; e < KV; e++) {
        float h = m->id == MUT_F_SWAPPED ? (1.0f - f) * H[e] + f * Z[e] : f * H[e] + (1.0f - f) * Z[e];
        if (m->bf16) h = bf16_nearest(h);
        else if (m->id == MUT_BF16_STATE_IN_F32) h = bf16_nearest(h);
        Hn[e] = h;
    }
}

/* y[j] = Σ_i q[i] H[i,j], K summed in tiles of 64. */
static void readout(const prob *p, int64_t tok, int64_t n, const float *H, float *y)
{
    const mctx *m = p->m;
    const int64_t K = p->K, V = p->V, qo = q_off(p, tok, n);
    const int64_t lim = m->id == MUT_PADDED_LANES ? pow2_at_least(K) : K;
    for (int64_t j = 0; j < V; j++) {
        float acc = 0.0f;
        for (int64_t k0 = 0; k0 < lim; k0 += 64) {
            float part = 0.0f;
            for (int64_t i = k0; i < k0 + 64 && i < lim; i++) {
                float qi = i < K ? p->q[qo + i] : (qo + i < p->nq ? p->q[qo + i] : 0.5f);
                float hij = i < K ? H[i * V + j] : 0.5f;
                part += qi * hij;
            }
            acc = m->id == MUT_KTILE_OVERWRITE ? part : acc + part;
        }
        y[j] = acc;
    }
}

/* The state a lane starts from. prev: the previous sequence's final state of this head. */
static void start_state(const prob *p, int64_t b, int64_t n, const float *prev, float *H)
{
    const int64_t KV = p->K * p->V;
    if (p->m->id == MUT_SEQSTART_ZERO) {
        memset(H, 0, (size_t)KV * sizeof(float)); /* the bug: h0 never read */
    } else if (p->m->id == MUT_SEQSTART_PREV && p->d.varlen && b > 0 && prev) {
        memcpy(H, prev, (size_t)KV * sizeof(float)); /* the bug: the state is not reset */
    } else if (p->h0) {
        memcpy(H, p->h0 + (b * p->N + n) * KV, (size_t)KV * sizeof(float));
    } else {
        memset(H, 0, (size_t)KV * sizeof(float));
    }
}

static int64_t steps_of(const prob *p, int64_t L)
{
    return p->m->id == MUT_MISSING_LAST_STEP && L > 0 ? L - 1 : L;
}

static m2rnn_status mutant_forward(void *ctx, const m2rnn_recurrence_forward_args *args)
{
    m2rnn_recurrence_dims d;
    m2rnn_status st = m2rnn_recurrence_check_forward(args, &d);
    if (st) return st;
    prob p;
    prob_init(&p, ctx, &args->in, &d);
    const int64_t K = p.K, V = p.V, N = p.N, KV = K * V;
    float *H = malloc((size_t)KV * sizeof(float)), *Hn = malloc((size_t)KV * sizeof(float)),
          *Z = malloc((size_t)KV * sizeof(float)), *y = malloc((size_t)V * sizeof(float)),
          *prev = malloc((size_t)KV * sizeof(float));
    m2rnn_tensor yt = args->y, ht = args->ht;
    for (int64_t n = 0; n < N; n++) {
        for (int64_t b = 0; b < p.B; b++) {
            int64_t start, end;
            m2rnn_recurrence_sequence(&args->in, &d, b, &start, &end);
            start_state(&p, b, n, b > 0 ? prev : NULL, H);
            int64_t L = end - start;
            for (int64_t t = 0; t < steps_of(&p, L); t++) {
                step(&p, start + t, n, H, Z, Hn);
                readout(&p, start + t, n, p.m->id == MUT_Y_FROM_HPREV ? H : Hn, y);
                memcpy(H, Hn, (size_t)KV * sizeof(float));
                for (int64_t j = 0; j < V; j++) m2rnn_tensor_set(&yt, ((start + t) * N + n) * V + j, y[j]);
            }
            if (L == 0 && p.m->id == MUT_EMPTY_SEQ_ZERO) memset(H, 0, (size_t)KV * sizeof(float));
            if (m2rnn_tensor_present(&ht))
                for (int64_t e = 0; e < KV; e++) m2rnn_tensor_set(&ht, (b * N + n) * KV + e, H[e]);
            memcpy(prev, H, (size_t)KV * sizeof(float));
        }
    }
    free(H); free(Hn); free(Z); free(y); free(prev);
    prob_free(&p);
    return M2RNN_OK;
}

/* ---- backward --------------------------------------------------------------------------- */

static void clampf(float *x, int64_t n, float c)
{
    for (int64_t e = 0; e < n; e++) x[e] = x[e] > c ? c : x[e] < -c ? -c : x[e];
}

/* Per-state-head gradients, reduced into the source heads at the end. */
typedef struct {
    float *dq, *dk, *dv, *df; /* (T, N, dim) */
    float *dW;                /* (B, N, V, V) */
} lane_grads;

/* Scatter per-state-head values into source heads: out[tok, src(n)] (+)= g[tok, n]. The
 * "not reduced" bug overwrites, so the last state head of a group wins. */
static void reduce_heads(const prob *p, const float *g, int64_t nx, int64_t dim, bool overwrite, m2rnn_tensor *out)
{
    int64_t n_out = p->T * nx * dim;
    float *acc = calloc((size_t)(n_out > 0 ? n_out : 1), sizeof(float));
    for (int64_t tok = 0; tok < p->T; tok++)
        for (int64_t n = 0; n < p->N; n++)
            for (int64_t e = 0; e < dim; e++) {
                float *a = &acc[(tok * nx + src(p, n, nx)) * dim + e];
                float x = g[(tok * p->N + n) * dim + e];
                *a = overwrite ? x : *a + x;
            }
    for (int64_t i = 0; i < n_out; i++) m2rnn_tensor_set(out, i, acc[i]);
    free(acc);
}

static m2rnn_status mutant_backward(void *ctx, const m2rnn_recurrence_backward_args *a)
{
    m2rnn_recurrence_dims d;
    m2rnn_status st = m2rnn_recurrence_check_backward(a, &d);
    if (st) return st;
    prob p;
    prob_init(&p, ctx, &a->in, &d);
    const mctx *m = p.m;
    const int64_t K = p.K, V = p.V, N = p.N, KV = K * V, T = p.T, B = p.B;
    int64_t longest = 0;
    for (int64_t b = 0; b < B; b++) {
        int64_t s0, s1;
        m2rnn_recurrence_sequence(&a->in, &d, b, &s0, &s1);
        if (s1 - s0 > longest) longest = s1 - s0;
    }
    float *dy = widen(&a->dy, NULL), *dht = m2rnn_tensor_present(&a->dht) ? widen(&a->dht, NULL) : NULL;
    lane_grads g = {
        .dq = calloc((size_t)(T * N * K) + 1, sizeof(float)), .dk = calloc((size_t)(T * N * K) + 1, sizeof(float)),
        .dv = calloc((size_t)(T * N * V) + 1, sizeof(float)), .df = calloc((size_t)(T * N) + 1, sizeof(float)),
        .dW = calloc((size_t)(B * N * V * V) + 1, sizeof(float)),
    };
    float *Hs = malloc((size_t)(longest + 2) * KV * sizeof(float)), *Zs = malloc((size_t)(longest + 1) * KV * sizeof(float));
    float *G = malloc((size_t)KV * sizeof(float)), *D = malloc((size_t)KV * sizeof(float)), *dA = malloc((size_t)KV * sizeof(float));
    float *prev = malloc((size_t)KV * sizeof(float)), *dh0 = calloc((size_t)(B * N * KV) + 1, sizeof(float));
    const float c = (float)fabs(a->clip);
    const bool clip_carry = (a->clip_mode == M2RNN_CLIP_CARRY && m->id != MUT_CLIP_TOTAL_FOR_CARRY) ||
                            (a->clip_mode == M2RNN_CLIP_TOTAL && m->id == MUT_CLIP_CARRY_FOR_TOTAL);
    const bool clip_total = (a->clip_mode == M2RNN_CLIP_TOTAL && m->id != MUT_CLIP_CARRY_FOR_TOTAL) ||
                            (a->clip_mode == M2RNN_CLIP_CARRY && m->id == MUT_CLIP_TOTAL_FOR_CARRY);

    for (int64_t n = 0; n < N; n++) {
        const float *W = p.W + w_off(&p, n);
        for (int64_t b = 0; b < B; b++) {
            int64_t start, end;
            m2rnn_recurrence_sequence(&a->in, &d, b, &start, &end);
            const int64_t L = end - start, S = steps_of(&p, L);
            /* replay */
            start_state(&p, b, n, b > 0 ? prev : NULL, Hs);
            for (int64_t t = 0; t < S; t++) step(&p, start + t, n, Hs + t * KV, Zs + t * KV, Hs + (t + 1) * KV);
            memcpy(prev, Hs + S * KV, (size_t)KV * sizeof(float));
            float *dWl = g.dW + (b * N + n) * V * V;

            if (m->id == MUT_FINISHED_LEAK_DW && d.varlen && L > 0) {
                /* The bug: this sequence's program keeps going for the longest sequence's
                 * length, over the next sequences' tokens, and adds what it sees into dW. */
                float *Hc = Hs + (longest + 1) * KV, *Zc = Zs + longest * KV;
                memcpy(Hc, Hs + L * KV, (size_t)KV * sizeof(float));
                for (int64_t t = L; t < longest; t++) {
                    int64_t tok = start + t < T ? start + t : T - 1;
                    memcpy(G, Hc, (size_t)KV * sizeof(float)); /* G holds H_{t-1} here */
                    step(&p, tok, n, G, Zc, Hc);
                    const float *q = p.q + q_off(&p, tok, n), *dyt = dy + (tok * N + n) * V;
                    float f = f_at(&p, tok, n);
                    for (int64_t e = 0; e < KV; e++) dA[e] = (1.0f - f) * q[e / V] * dyt[e % V] * (1.0f - Zc[e] * Zc[e]);
                    for (int64_t l = 0; l < V; l++)
                        for (int64_t j = 0; j < V; j++) {
                            float acc = 0.0f;
                            for (int64_t i = 0; i < K; i++) acc += G[i * V + l] * dA[i * V + j];
                            dWl[l * V + j] += acc;
                        }
                }
            }

            if (dht && m->id != MUT_DHT_IGNORED) memcpy(G, dht + (b * N + n) * KV, (size_t)KV * sizeof(float));
            else memset(G, 0, (size_t)KV * sizeof(float));
            for (int64_t t = S - 1; t >= 0; t--) {
                const int64_t tok = start + t;
                const float *Hprev = Hs + t * KV, *Hcur = Hs + (t + 1) * KV, *Z = Zs + t * KV;
                const float *q = p.q + q_off(&p, tok, n), *k = p.k + k_off(&p, tok, n), *v = p.v + v_off(&p, tok, n);
                const float *dyt = dy + (tok * N + n) * V;
                const float f = f_at(&p, tok, n);
                const float keep = m->id == MUT_F_SWAPPED ? 1.0f - f : f; /* the weight on H_{t-1} */

                if (clip_carry) clampf(G, KV, c);
                for (int64_t e = 0; e < KV; e++) D[e] = q[e / V] * dyt[e % V] + G[e];
                if (clip_total) clampf(D, KV, c);

                const float *Hq = m->id == MUT_DQ_FROM_HPREV ? Hprev : Hcur;
                for (int64_t i = 0; i < K; i++) {
                    float acc = 0.0f;
                    for (int64_t j = 0; j < V; j++) acc += Hq[i * V + j] * dyt[j];
                    g.dq[(tok * N + n) * K + i] = acc;
                }
                /* df = Σ D ⊙ (H_{t-1} - Z), K in tiles of 64; with f and 1-f swapped its sign flips */
                const float *Hf = m->id == MUT_DF_FROM_HCUR ? Hcur : Hprev;
                float df = 0.0f;
                for (int64_t k0 = 0; k0 < K; k0 += 64) {
                    float part = 0.0f;
                    for (int64_t e = k0 * V; e < (k0 + 64 < K ? k0 + 64 : K) * V; e++) part += D[e] * (Hf[e] - Z[e]);
                    df = m->id == MUT_KTILE_OVERWRITE ? part : df + part;
                }
                g.df[tok * N + n] = m->id == MUT_F_SWAPPED ? -df : df;

                for (int64_t e = 0; e < KV; e++) {
                    float s = m->id == MUT_TANH_DERIV_FROM_H ? Hcur[e] : Z[e];
                    dA[e] = (1.0f - keep) * D[e] * (1.0f - s * s);
                }
                for (int64_t i = 0; i < K; i++)                 /* G = keep·D + dA Wᵀ */
                    for (int64_t j = 0; j < V; j++) {
                        float acc = 0.0f;
                        for (int64_t l = 0; l < V; l++)
                            acc += dA[i * V + l] * (m->id == MUT_BWD_W_NOT_TRANSPOSED ? W[l * V + j] : W[j * V + l]);
                        G[i * V + j] = keep * D[i * V + j] + acc;
                    }
                for (int64_t l = 0; l < V; l++)                 /* dW += H_{t-1}ᵀ dA */
                    for (int64_t j = 0; j < V; j++) {
                        float acc = 0.0f;
                        for (int64_t i = 0; i < K; i++) acc += Hprev[i * V + l] * dA[i * V + j];
                        dWl[l * V + j] += acc;
                        if (m->bf16 && m->id == MUT_BF16_DW_ACCUMULATOR) dWl[l * V + j] = bf16_nearest(dWl[l * V + j]);
                    }
                for (int64_t i = 0; i < K; i++) {               /* dk = dA v */
                    float acc = 0.0f;
                    for (int64_t j = 0; j < V; j++) acc += dA[i * V + j] * v[j];
                    g.dk[(tok * N + n) * K + i] = acc;
                }
                for (int64_t j = 0; j < V; j++) {               /* dv = dAᵀ k, K in tiles of 64 */
                    float acc = 0.0f;
                    for (int64_t k0 = 0; k0 < K; k0 += 64) {
                        float part = 0.0f;
                        for (int64_t i = k0; i < k0 + 64 && i < K; i++) part += dA[i * V + j] * k[i];
                        acc = m->id == MUT_KTILE_OVERWRITE ? part : acc + part;
                    }
                    g.dv[(tok * N + n) * V + j] = acc;
                }
            }
            if (m->id == MUT_CLIP_DH0 && a->clip_mode != M2RNN_CLIP_NONE) clampf(G, KV, c);
            if (L == 0 && m->id == MUT_EMPTY_SEQ_ZERO) memset(G, 0, (size_t)KV * sizeof(float));
            memcpy(dh0 + (b * N + n) * KV, G, (size_t)KV * sizeof(float));
        }
    }

    m2rnn_tensor dq = a->dq, dk = a->dk, dv = a->dv, df = a->df, dW = a->dW, dh0t = a->dh0;
    reduce_heads(&p, g.dq, d.q_heads, K, m->id == MUT_DQ_NOT_REDUCED, &dq);
    reduce_heads(&p, g.dk, d.k_heads, K, m->id == MUT_DK_NOT_REDUCED, &dk);
    reduce_heads(&p, g.dv, d.v_heads, V, m->id == MUT_DV_NOT_REDUCED, &dv);
    reduce_heads(&p, g.df, d.f_heads, 1, m->id == MUT_DF_NOT_REDUCED, &df);
    /* dW[w] = Σ over sequences and the state heads reading w */
    const int64_t VV = V * V, nw = d.w_heads;
    float *dWo = calloc((size_t)(nw * VV) + 1, sizeof(float));
    for (int64_t b = 0; b < B; b++)
        for (int64_t n = 0; n < N; n++)
            for (int64_t e = 0; e < VV; e++) {
                float *o = &dWo[src(&p, n, nw) * VV + e];
                float x = g.dW[(b * N + n) * VV + e];
                *o = m->id == MUT_DW_NOT_REDUCED ? x : *o + x;
            }
    for (int64_t i = 0; i < nw * VV; i++) {
        /* The bug: atomically adding into an output the kernel assumed was zero. */
        double base = m->id == MUT_ACC_NOT_ZEROED ? m2rnn_tensor_get(&dW, i) : 0.0;
        m2rnn_tensor_set(&dW, i, base + dWo[i]);
    }
    if (m2rnn_tensor_present(&dh0t))
        for (int64_t i = 0; i < B * N * KV; i++) m2rnn_tensor_set(&dh0t, i, dh0[i]);

    free(dWo); free(dy); free(dht); free(g.dq); free(g.dk); free(g.dv); free(g.df); free(g.dW);
    free(Hs); free(Zs); free(G); free(D); free(dA); free(prev); free(dh0);
    prob_free(&p);
    return M2RNN_OK;
}

/* ---- the tables ------------------------------------------------------------------------- */

static const char *mutant_class(void *ctx, m2rnn_dtype storage)
{
    const mctx *m = ctx;
    return m->bf16 && storage == M2RNN_BF16 ? "bf16" : "f32";
}

static mctx contexts[MUT_COUNT][2];
static m2rnn_backend tables[MUT_COUNT][2];

const m2rnn_backend *mutant_backend(mutant_id id, bool bf16_state)
{
    if ((unsigned)id >= MUT_COUNT) return NULL;
    mctx *m = &contexts[id][bf16_state];
    m->id = id;
    m->bf16 = bf16_state;
    m2rnn_backend *t = &tables[id][bf16_state];
    *t = (m2rnn_backend){
        .abi_major = M2RNN_ABI_MAJOR,
        .abi_minor = M2RNN_ABI_MINOR,
        .size = sizeof(m2rnn_backend),
        .name = infos[id].name,
        .description = infos[id].bug,
        .ctx = m,
        .precision_class = mutant_class,
        .recurrence_forward = mutant_forward,
        .recurrence_backward = mutant_backward,
    };
    return t;
}
