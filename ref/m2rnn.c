/*
 * The M²RNN recurrence — reference implementation (SPEC.md §1), forward and backward.
 *
 * Shapes (dense layout; varlen replaces the (B,S) axes by one token axis T, see recurrence.h):
 *   q (B,S,Nq,K)  k (B,S,Nk,K)  v (B,S,Nv,V)  f (B,S,Nf)  W (Nw,V,V)  h0, ht (B,N,K,V)
 *   y (B,S,N,V)   N = max(Nq,Nk,Nv,Nf,Nw), state head n reads head n / (N/Nx) of each input.
 *
 * Forward, per sequence b and state head n, H_0 = h0[b,n] (or 0), t = 0 .. S-1:
 *   A_t = H_{t-1} W + k_t v_tᵀ        K×V     (W from the right: (HW)[i,j] = Σ_l H[i,l] W[l,j])
 *   Z_t = tanh(A_t)                   K×V
 *   H_t = f_t H_{t-1} + (1 - f_t) Z_t K×V     (f_t a scalar, used as given)
 *   y_t = H_tᵀ q_t                    V       (the state AFTER the update)
 *   ht  = H_{S-1}
 *
 * Backward, carrying G (K×V) = dht[b,n] (or 0), t = S-1 .. 0:
 *   G    = clip(G)                               (clip_mode CARRY only)
 *   D_t  = q_t dy_tᵀ + G                         total dL/dH_t
 *   D_t  = clip(D_t)                             (clip_mode TOTAL only)
 *   dq_t = H_t dy_t
 *   df_t = Σ_ij D_t ⊙ (H_{t-1} - Z_t)
 *   dA_t = (1 - f_t) D_t ⊙ (1 - Z_t²)
 *   G    = f_t D_t + dA_t Wᵀ                     into H_{t-1}
 *   dW  += H_{t-1}ᵀ dA_t
 *   dk_t = dA_t v_t,   dv_t = dA_tᵀ k_t
 *   dh0  = G                                     (never clipped)
 * Gradients of an input head shared by G state heads are the sums over those heads.
 *
 * How the work is split: every (sequence, state head) pair — a "lane" — is independent, so lanes
 * run in parallel (OpenMP) and each lane is computed sequentially in double. Per-lane gradients
 * go to per-state-head buffers, which are then summed over head groups (and, for dW, over
 * sequences) in a fixed order after the parallel region. Nothing depends on which thread ran
 * which lane, so results are bit-identical for every thread count.
 */
#include "config.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layer_util.h"
#include "m2rnn/recurrence.h"
#include "recurrence_lanes.h"
#include "scalar_math.h"

/* Malloc of n doubles, n computed without overflow by the argument checks. */
static double *alloc_doubles(int64_t n) { return malloc((size_t)(n > 0 ? n : 1) * sizeof(double)); }

/* ---- small dense products ---------------------------------------------------------------
 * C (m×n) = beta·C + op(A) op(B), row-major. The naive loop (lu_gemm_naive) is the definition; from
 * m·n·k = 4096 up the layers' lu_gemm takes over: OpenBLAS (measured: at the bench's 64×16×16 the
 * naive loop made the whole reference about 3× slower), or the naive loop again in exact order
 * (layer_util.h: m2rnn gen). Both orders of summation are fixed for a given size and machine, so
 * either choice is deterministic. */
static void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t kd, const double *A, const double *B,
                 double beta, double *C)
{
    if (m * n * kd < 4096)
        lu_gemm_naive(ta, tb, m, n, kd, A, B, beta, C);
    else
        lu_gemm(ta, tb, m, n, kd, A, B, beta, C);
}

/* OpenBLAS's own thread pool would run under every OpenMP lane and oversubscribe the cores: keep
 * it at one thread for the duration of a call, then give the caller back its setting. */
static int blas_threads_single(void)
{
#if defined(HAVE_OPENBLAS_SET_NUM_THREADS) && defined(HAVE_OPENBLAS_GET_NUM_THREADS)
    int n = openblas_get_num_threads();
    openblas_set_num_threads(1);
    return n;
#else
    return 0;
#endif
}

static void blas_threads_restore(int n)
{
#if defined(HAVE_OPENBLAS_SET_NUM_THREADS) && defined(HAVE_OPENBLAS_GET_NUM_THREADS)
    if (n > 0) openblas_set_num_threads(n);
#else
    (void)n;
#endif
}

/* ---- forward ---------------------------------------------------------------------------- */

/* One step in place: Z = tanh(H W + k vᵀ), then H <- f H + (1-f) Z. Z (K×V) is an output: the
 * backward keeps it, the forward uses it as scratch. This loop is most of the reference's time
 * (the tanh of every state element); M2RNN_VECTOR_CLONES builds an AVX2+FMA copy beside the
 * baseline one, picked at load time on x86-64 (see scalar_math.h). */
M2RNN_VECTOR_CLONES
static void step_forward(int64_t K, int64_t V, const double *W, const double *k, const double *v, double f,
                         double *H, double *Z)
{
    for (int64_t i = 0; i < K; i++) {          /* Z = k vᵀ */
#pragma omp simd
        for (int64_t j = 0; j < V; j++) Z[i * V + j] = k[i] * v[j];
    }
    gemm(false, false, K, V, V, H, W, 1.0, Z); /* Z += H W */
    const int64_t KV = K * V;                  /* one flat loop: long enough to keep the pipes full */
#pragma omp simd
    for (int64_t e = 0; e < KV; e++) Z[e] = m2rnn_tanh(Z[e]);
#pragma omp simd
    for (int64_t e = 0; e < KV; e++) H[e] = f * H[e] + (1.0 - f) * Z[e];
}

/* y[j] = Σ_i q[i] H[i,j] */
M2RNN_VECTOR_CLONES
static void readout(int64_t K, int64_t V, const double *H, const double *q, double *y)
{
    for (int64_t j = 0; j < V; j++) y[j] = 0.0;
    for (int64_t i = 0; i < K; i++) {
#pragma omp simd
        for (int64_t j = 0; j < V; j++) y[j] += q[i] * H[i * V + j];
    }
}

m2rnn_status m2rnn_recurrence_forward_ref(const m2rnn_recurrence_forward_args *args)
{
    m2rnn_recurrence_dims d;
    m2rnn_status st = m2rnn_recurrence_check_forward(args, &d);
    if (st) return st;
    recurrence_lanes p;
    if ((st = recurrence_lanes_init(&p, &args->in, &d))) return st;

    const int64_t K = d.key_dim, V = d.value_dim, N = d.heads, KV = K * V;
    m2rnn_tensor y = args->y, ht = args->ht;
    int failed = 0, blas_threads = blas_threads_single();

#pragma omp parallel reduction(|| : failed)
    {
        double *H = alloc_doubles(KV), *Z = alloc_doubles(KV), *yt = alloc_doubles(V);
        failed = !H || !Z || !yt;
#pragma omp for schedule(dynamic)
        for (int64_t lane = 0; lane < d.batch * N; lane++) {
            if (failed) continue;
            int64_t b = lane / N, n = lane % N, start, end;
            m2rnn_recurrence_sequence(&args->in, &d, b, &start, &end);
            recurrence_initial_state(&p, b, n, H);
            for (int64_t tok = start; tok < end; tok++) {
                step_forward(K, V, lane_W(&p, n), lane_k(&p, tok, n), lane_v(&p, tok, n), lane_f(&p, tok, n), H, Z);
                readout(K, V, H, lane_q(&p, tok, n), yt);
                for (int64_t j = 0; j < V; j++) m2rnn_tensor_set(&y, (tok * N + n) * V + j, yt[j]);
            }
            if (m2rnn_tensor_present(&ht))
                for (int64_t e = 0; e < KV; e++) m2rnn_tensor_set(&ht, (b * N + n) * KV + e, H[e]);
        }
        free(H); free(Z); free(yt);
    }
    blas_threads_restore(blas_threads);
    recurrence_lanes_free(&p);
    if (failed) return m2rnn_set_error(M2RNN_ERR_NOMEM, "recurrence_forward: cannot allocate a lane's state");
    return M2RNN_OK;
}

/* ---- backward --------------------------------------------------------------------------- */

/* Per-state-head gradient buffers, summed over head groups at the end. */
typedef struct {
    double *dy, *dht;      /* widened dy (T,N,V); dht (B,N,K,V) or NULL */
    double *dq, *dk;       /* (T,N,K) */
    double *dv;            /* (T,N,V) */
    double *df;            /* (T,N) */
    double *dW;            /* (B,N,V,V): one V×V per lane */
    double *dh0;           /* (B,N,K,V) */
} grads;

static void grads_free(grads *g)
{
    free(g->dy); free(g->dht); free(g->dq); free(g->dk); free(g->dv); free(g->df); free(g->dW); free(g->dh0);
}

static void clamp(double *x, int64_t n, double c)
{
    for (int64_t e = 0; e < n; e++) x[e] = x[e] > c ? c : x[e] < -c ? -c : x[e];
}

/* Scratch for one lane: the state history H_0..H_L and Z_1..Z_L of the longest sequence. */
typedef struct {
    double *Hs, *Zs, *G, *D, *dA;
} lane_scratch;

M2RNN_VECTOR_CLONES
static void backward_lane(const recurrence_lanes *p, const m2rnn_recurrence_backward_args *a, const grads *g,
                          lane_scratch *s, int64_t b, int64_t n, int64_t start, int64_t end)
{
    const int64_t K = p->d.key_dim, V = p->d.value_dim, N = p->d.heads, KV = K * V, L = end - start;
    const double *W = lane_W(p, n);
    const double c = fabs(a->clip);

    /* Replay the forward pass, keeping every state and every Z. */
    recurrence_initial_state(p, b, n, s->Hs);
    for (int64_t t = 0; t < L; t++) {
        int64_t tok = start + t;
        double *H = s->Hs + (t + 1) * KV;
        memcpy(H, s->Hs + t * KV, (size_t)KV * sizeof(double));
        step_forward(K, V, W, lane_k(p, tok, n), lane_v(p, tok, n), lane_f(p, tok, n), H, s->Zs + t * KV);
    }

    double *G = s->G, *D = s->D, *dA = s->dA;
    double *dW = g->dW + (b * N + n) * V * V;
    if (g->dht) memcpy(G, g->dht + (b * N + n) * KV, (size_t)KV * sizeof(double));
    else memset(G, 0, (size_t)KV * sizeof(double));
    memset(dW, 0, (size_t)(V * V) * sizeof(double));

    for (int64_t t = L - 1; t >= 0; t--) {
        int64_t tok = start + t;
        const double *Hprev = s->Hs + t * KV, *Hcur = s->Hs + (t + 1) * KV, *Z = s->Zs + t * KV;
        const double *q = lane_q(p, tok, n), *k = lane_k(p, tok, n), *v = lane_v(p, tok, n);
        const double *dy = g->dy + (tok * N + n) * V;
        double f = lane_f(p, tok, n);

        if (a->clip_mode == M2RNN_CLIP_CARRY) clamp(G, KV, c);
        for (int64_t i = 0; i < K; i++)            /* D = q dyᵀ + G */
            for (int64_t j = 0; j < V; j++) D[i * V + j] = q[i] * dy[j] + G[i * V + j];
        if (a->clip_mode == M2RNN_CLIP_TOTAL) clamp(D, KV, c);

        double *dq = g->dq + (tok * N + n) * K;    /* dq = H_t dy */
        for (int64_t i = 0; i < K; i++) {
            double acc = 0.0;
            for (int64_t j = 0; j < V; j++) acc += Hcur[i * V + j] * dy[j];
            dq[i] = acc;
        }
        double df = 0.0;                           /* df = Σ D ⊙ (H_{t-1} - Z) */
        for (int64_t e = 0; e < KV; e++) df += D[e] * (Hprev[e] - Z[e]);
        g->df[tok * N + n] = df;

        for (int64_t e = 0; e < KV; e++) dA[e] = (1.0 - f) * D[e] * (1.0 - Z[e] * Z[e]);
        for (int64_t e = 0; e < KV; e++) G[e] = f * D[e];
        gemm(false, true, K, V, V, dA, W, 1.0, G);          /* G = f D + dA Wᵀ */
        gemm(true, false, V, V, K, Hprev, dA, 1.0, dW);     /* dW += H_{t-1}ᵀ dA */

        double *dk = g->dk + (tok * N + n) * K, *dv = g->dv + (tok * N + n) * V;
        for (int64_t i = 0; i < K; i++) {          /* dk = dA v */
            double acc = 0.0;
            for (int64_t j = 0; j < V; j++) acc += dA[i * V + j] * v[j];
            dk[i] = acc;
        }
        for (int64_t j = 0; j < V; j++) dv[j] = 0.0; /* dv = dAᵀ k */
        for (int64_t i = 0; i < K; i++)
            for (int64_t j = 0; j < V; j++) dv[j] += dA[i * V + j] * k[i];
    }
    memcpy(g->dh0 + (b * N + n) * KV, G, (size_t)KV * sizeof(double));
}

/* out[tok, h, :] = Σ_{g < G} per_head[tok, h·G + g, :] — the shared-head reduction, fixed order. */
static void sum_groups(const double *per_head, int64_t rows, int64_t N, int64_t group, int64_t dim, m2rnn_tensor *out)
{
    int64_t src_heads = N / group;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++)
        for (int64_t h = 0; h < src_heads; h++)
            for (int64_t e = 0; e < dim; e++) {
                double acc = 0.0;
                for (int64_t gi = 0; gi < group; gi++) acc += per_head[((r * N) + h * group + gi) * dim + e];
                m2rnn_tensor_set(out, (r * src_heads + h) * dim + e, acc);
            }
}

m2rnn_status m2rnn_recurrence_backward_ref(const m2rnn_recurrence_backward_args *args)
{
    m2rnn_recurrence_dims d;
    m2rnn_status st = m2rnn_recurrence_check_backward(args, &d);
    if (st) return st;
    recurrence_lanes p;
    if ((st = recurrence_lanes_init(&p, &args->in, &d))) return st;

    const int64_t K = d.key_dim, V = d.value_dim, N = d.heads, T = d.tokens, B = d.batch, KV = K * V;
    grads g = {0};
    g.dy = recurrence_widen(&args->dy);
    if (m2rnn_tensor_present(&args->dht)) g.dht = recurrence_widen(&args->dht);
    g.dq = alloc_doubles(T * N * K);
    g.dk = alloc_doubles(T * N * K);
    g.dv = alloc_doubles(T * N * V);
    g.df = alloc_doubles(T * N);
    g.dW = alloc_doubles(B * N * V * V);
    g.dh0 = alloc_doubles(B * N * KV);
    if (!g.dy || (m2rnn_tensor_present(&args->dht) && !g.dht) || !g.dq || !g.dk || !g.dv || !g.df || !g.dW || !g.dh0) {
        grads_free(&g);
        recurrence_lanes_free(&p);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "recurrence_backward: cannot allocate gradient buffers");
    }

    int64_t longest = recurrence_longest_sequence(&args->in, &d);

    int failed = 0, blas_threads = blas_threads_single();
#pragma omp parallel reduction(|| : failed)
    {
        lane_scratch s = {
            .Hs = alloc_doubles((longest + 1) * KV), .Zs = alloc_doubles(longest * KV),
            .G = alloc_doubles(KV), .D = alloc_doubles(KV), .dA = alloc_doubles(KV),
        };
        failed = !s.Hs || !s.Zs || !s.G || !s.D || !s.dA;
#pragma omp for schedule(dynamic)
        for (int64_t lane = 0; lane < B * N; lane++) {
            if (failed) continue;
            int64_t b = lane / N, n = lane % N, start, end;
            m2rnn_recurrence_sequence(&args->in, &d, b, &start, &end);
            backward_lane(&p, args, &g, &s, b, n, start, end);
        }
        free(s.Hs); free(s.Zs); free(s.G); free(s.D); free(s.dA);
    }
    blas_threads_restore(blas_threads);
    if (failed) {
        grads_free(&g);
        recurrence_lanes_free(&p);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "recurrence_backward: cannot allocate a lane's state history "
                               "(%lld steps of %lld×%lld)", (long long)longest, (long long)K, (long long)V);
    }

    m2rnn_tensor dq = args->dq, dk = args->dk, dv = args->dv, df = args->df, dW = args->dW, dh0 = args->dh0;
    sum_groups(g.dq, T, N, p.gq, K, &dq);
    sum_groups(g.dk, T, N, p.gk, K, &dk);
    sum_groups(g.dv, T, N, p.gv, V, &dv);
    sum_groups(g.df, T, N, p.gf, 1, &df);
    /* dW[w] = Σ_b Σ_{n in group w} dW_lane[b, n]: first sum the groups per sequence, then the
     * sequences, in a fixed order. */
    int64_t Nw = d.w_heads, VV = V * V;
    for (int64_t w = 0; w < Nw; w++)
        for (int64_t e = 0; e < VV; e++) {
            double acc = 0.0;
            for (int64_t b = 0; b < B; b++)
                for (int64_t gi = 0; gi < p.gw; gi++) acc += g.dW[((b * N) + w * p.gw + gi) * VV + e];
            m2rnn_tensor_set(&dW, w * VV + e, acc);
        }
    if (m2rnn_tensor_present(&dh0)) m2rnn_tensor_from_f64(&dh0, g.dh0);

    grads_free(&g);
    recurrence_lanes_free(&p);
    return M2RNN_OK;
}
