/*
 * The M²RNN recurrence in an emulated precision class (see m2rnn_emulated.h for the classes and
 * the variants). SPEC.md §1, line by line, with every arithmetic result passed through rw()
 * ("round to the working precision") and every matrix-product operand through op().
 *
 * Why emulate in double and round, instead of computing in float: it lets one code path do all
 * four classes, and rounding a double result of one float operation back to float is exactly the
 * float operation (double has more than 2·24+2 bits, so there is no double-rounding error for
 * +, −, ×). Products of two floats are exact in double, which is how `fused` models an FMA.
 *
 * Each (sequence, head) lane has its own random stream, seeded from the variant's seed and the
 * lane index, and lanes are reduced in a fixed order: the result does not depend on threads.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "m2rnn_emulated.h"
#include "recurrence_lanes.h"

static const char *class_names[M2RNN_EMU_COUNT] = {"f64", "f32", "tf32", "bf16"};

const char *m2rnn_emu_class_name(m2rnn_emu_class cls)
{
    return (unsigned)cls < M2RNN_EMU_COUNT ? class_names[cls] : "?";
}

int m2rnn_emu_class_from_name(const char *name)
{
    for (int c = 0; c < M2RNN_EMU_COUNT; c++)
        if (name && strcmp(name, class_names[c]) == 0) return c;
    return -1;
}

void m2rnn_emu_describe(const m2rnn_emu_config *c, char *buf, size_t size)
{
    snprintf(buf, size, "%s%s%s%s%s%s%s%s", class_names[c->cls], c->reverse ? " reversed" : "", c->fused ? " fused" : "",
             c->tf32_truncate ? " tf32-truncated" : "", c->bf16_operands ? " bf16-operands" : "",
             c->approx_tanh || c->cls == M2RNN_EMU_TF32 ? " approx-tanh" : "",
             c->reduce_in_storage ? " bf16-head-reduction" : "", c->perturb ? " perturbed" : "");
    if (c->perturb || c->approx_tanh || c->cls == M2RNN_EMU_TF32) {
        size_t n = strlen(buf);
        snprintf(buf + n, size > n ? size - n : 0, "(seed %llu)", (unsigned long long)c->seed);
    }
}

/* ---- rounding --------------------------------------------------------------------------- */

typedef struct {
    const m2rnn_emu_config *cfg;
    uint64_t rng;
    double u;          /* unit roundoff of the working precision */
    bool f64;          /* working precision is double */
    bool approx_tanh;
} emu;

static double uniform_pm1(emu *e) /* in [-1, 1) */
{
    e->rng ^= e->rng << 13;
    e->rng ^= e->rng >> 7;
    e->rng ^= e->rng << 17;
    return (double)(e->rng >> 11) * 0x1p-52 - 1.0;
}

/* Round x to the working precision, nudged by up to one ulp in a perturbed variant. */
static inline double rw(emu *e, double x)
{
    if (e->cfg->perturb) x += x * (e->u * uniform_pm1(e));
    return e->f64 ? x : (double)(float)x;
}

static double round_tf32(double x, bool truncate)
{
    float f = (float)x;
    uint32_t b;
    memcpy(&b, &f, 4);
    if ((b & 0x7f800000u) != 0x7f800000u) { /* finite: keep 10 fraction bits */
        if (!truncate) b += 0x0fffu + ((b >> 13) & 1u);
        b &= ~0x1fffu;
    }
    memcpy(&f, &b, 4);
    return f;
}

/* A matrix-product operand as the class's hardware sees it. */
static inline double op(emu *e, double x)
{
    if (e->cfg->cls == M2RNN_EMU_TF32) return round_tf32(x, e->cfg->tf32_truncate);
    if (e->cfg->cls == M2RNN_EMU_BF16 && e->cfg->bf16_operands) return m2rnn_round_to(M2RNN_BF16, x);
    return x;
}

static inline double tanh_c(emu *e, double x)
{
    double t = tanh(x);
    if (e->approx_tanh) t *= 1.0 + 0x1p-11 * uniform_pm1(e);
    return rw(e, t);
}

/* acc + Σ_i a[i·sa] b[i·sb], rounded the class's way, forwards or backwards. */
static double dot(emu *e, double acc, const double *a, int64_t sa, const double *b, int64_t sb, int64_t n)
{
    for (int64_t s = 0; s < n; s++) {
        int64_t i = e->cfg->reverse ? n - 1 - s : s;
        double p = a[i * sa] * b[i * sb];
        acc = e->cfg->fused ? rw(e, acc + p) : rw(e, acc + rw(e, p));
    }
    return acc;
}

/* The class's output dtype. */
static m2rnn_dtype out_dtype(m2rnn_emu_class cls)
{
    return cls == M2RNN_EMU_F64 ? M2RNN_F64 : cls == M2RNN_EMU_BF16 ? M2RNN_BF16 : M2RNN_F32;
}

static void emu_init(emu *e, const m2rnn_emu_config *cfg, int64_t lane)
{
    e->cfg = cfg;
    e->f64 = cfg->cls == M2RNN_EMU_F64;
    e->u = e->f64 ? 0x1p-53 : 0x1p-24;
    e->approx_tanh = cfg->approx_tanh || cfg->cls == M2RNN_EMU_TF32;
    /* splitmix64 of (seed, lane): a well-mixed, never-zero xorshift state per lane */
    uint64_t z = cfg->seed * 0x9e3779b97f4a7c15ull + (uint64_t)lane * 0xbf58476d1ce4e5b9ull + 0x94d049bb133111ebull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    e->rng = z ? z : 1;
}

/* Scratch of one lane. */
typedef struct {
    double *Wop;   /* V×V, the head's W as a product operand */
    double *Hop;   /* K×V */
    double *Hs;    /* (L+1)×K×V states */
    double *Zs;    /* L×K×V */
    double *G, *D, *dA, *dAop, *dW, *col;
} scratch;

static void scratch_free(scratch *s)
{
    free(s->Wop); free(s->Hop); free(s->Hs); free(s->Zs); free(s->G); free(s->D); free(s->dA); free(s->dAop);
    free(s->dW); free(s->col);
}

static bool scratch_alloc(scratch *s, int64_t K, int64_t V, int64_t longest)
{
    size_t kv = (size_t)(K * V), vv = (size_t)(V * V);
    memset(s, 0, sizeof *s);
    s->Wop = malloc(vv * sizeof(double));
    s->Hop = malloc(kv * sizeof(double));
    s->Hs = malloc((size_t)(longest + 1) * kv * sizeof(double));
    s->Zs = malloc((size_t)(longest > 0 ? longest : 1) * kv * sizeof(double));
    s->G = malloc(kv * sizeof(double));
    s->D = malloc(kv * sizeof(double));
    s->dA = malloc(kv * sizeof(double));
    s->dAop = malloc(kv * sizeof(double));
    s->dW = malloc(vv * sizeof(double));
    s->col = malloc((size_t)(K > V ? K : V) * sizeof(double));
    return s->Wop && s->Hop && s->Hs && s->Zs && s->G && s->D && s->dA && s->dAop && s->dW && s->col;
}

/* One forward step: Z = tanh(H W + k vᵀ) into Z, then H_new = f H + (1-f) Z into Hnew. */
static void step(emu *e, int64_t K, int64_t V, const double *Wop, const double *k, const double *v, double f,
                 const double *H, double *Hop, double *Z, double *Hnew)
{
    for (int64_t x = 0; x < K * V; x++) Hop[x] = op(e, H[x]);
    for (int64_t i = 0; i < K; i++)
        for (int64_t j = 0; j < V; j++) {
            double hw = dot(e, 0.0, Hop + i * V, 1, Wop + j, V, V);         /* (H W)[i,j] */
            double a = e->cfg->fused ? rw(e, hw + k[i] * v[j]) : rw(e, hw + rw(e, k[i] * v[j]));
            Z[i * V + j] = tanh_c(e, a);
        }
    double omf = rw(e, 1.0 - f);
    for (int64_t x = 0; x < K * V; x++) {
        double h = rw(e, rw(e, f * H[x]) + rw(e, omf * Z[x]));
        Hnew[x] = e->cfg->cls == M2RNN_EMU_BF16 ? m2rnn_round_to(M2RNN_BF16, h) : h; /* the bf16 state */
    }
}

/* Replay the lane's forward pass: Hs[0..L], Zs[0..L-1]. */
static void replay(emu *e, const recurrence_lanes *p, scratch *s, int64_t b, int64_t n, int64_t start, int64_t L)
{
    const int64_t K = p->d.key_dim, V = p->d.value_dim, KV = K * V;
    const double *W = lane_W(p, n);
    for (int64_t x = 0; x < V * V; x++) s->Wop[x] = op(e, W[x]);
    recurrence_initial_state(p, b, n, s->Hs);
    for (int64_t t = 0; t < L; t++) {
        int64_t tok = start + t;
        step(e, K, V, s->Wop, lane_k(p, tok, n), lane_v(p, tok, n), lane_f(p, tok, n), s->Hs + t * KV, s->Hop, s->Zs + t * KV,
             s->Hs + (t + 1) * KV);
    }
}

m2rnn_status m2rnn_recurrence_forward_emulated(const m2rnn_recurrence_forward_args *args, const m2rnn_emu_config *cfg)
{
    m2rnn_recurrence_dims d;
    m2rnn_status st = m2rnn_recurrence_check_forward(args, &d);
    if (st) return st;
    recurrence_lanes p;
    if ((st = recurrence_lanes_init(&p, &args->in, &d))) return st;
    const int64_t K = d.key_dim, V = d.value_dim, N = d.heads, KV = K * V;
    const int64_t longest = recurrence_longest_sequence(&args->in, &d);
    const m2rnn_dtype od = out_dtype(cfg->cls);
    m2rnn_tensor y = args->y, ht = args->ht;
    int failed = 0;
#pragma omp parallel reduction(|| : failed)
    {
        scratch s;
        failed = !scratch_alloc(&s, K, V, longest);
#pragma omp for schedule(dynamic)
        for (int64_t lane = 0; lane < d.batch * N; lane++) {
            if (failed) continue;
            emu e;
            emu_init(&e, cfg, lane);
            int64_t b = lane / N, n = lane % N, start, end;
            m2rnn_recurrence_sequence(&args->in, &d, b, &start, &end);
            replay(&e, &p, &s, b, n, start, end - start);
            for (int64_t t = 0; t < end - start; t++) {
                int64_t tok = start + t;
                const double *H = s.Hs + (t + 1) * KV, *q = lane_q(&p, tok, n);
                for (int64_t j = 0; j < V; j++)                                  /* y = Hᵀ q */
                    m2rnn_tensor_set(&y, (tok * N + n) * V + j, m2rnn_round_to(od, dot(&e, 0.0, q, 1, H + j, V, K)));
            }
            if (m2rnn_tensor_present(&ht))
                for (int64_t x = 0; x < KV; x++)
                    m2rnn_tensor_set(&ht, (b * N + n) * KV + x, m2rnn_round_to(od, s.Hs[(end - start) * KV + x]));
        }
        scratch_free(&s);
    }
    recurrence_lanes_free(&p);
    return failed ? m2rnn_set_error(M2RNN_ERR_NOMEM, "emulated forward: out of memory") : M2RNN_OK;
}

/* ---- backward --------------------------------------------------------------------------- */

static void clamp(double *x, int64_t n, double c)
{
    for (int64_t i = 0; i < n; i++) x[i] = x[i] > c ? c : x[i] < -c ? -c : x[i];
}

typedef struct {
    double *dy, *dht;
    double *dq, *dk, *dv, *df, *dW, *dh0; /* per state head, working precision */
} grads;

static void backward_lane(emu *e, const recurrence_lanes *p, const m2rnn_recurrence_backward_args *a, grads *g, scratch *s,
                          int64_t b, int64_t n, int64_t start, int64_t L)
{
    const int64_t K = p->d.key_dim, V = p->d.value_dim, N = p->d.heads, KV = K * V;
    const double c = fabs(a->clip);
    replay(e, p, s, b, n, start, L);
    double *G = s->G, *D = s->D, *dA = s->dA, *dAop = s->dAop, *dW = s->dW;
    if (g->dht) memcpy(G, g->dht + (b * N + n) * KV, (size_t)KV * sizeof(double));
    else memset(G, 0, (size_t)KV * sizeof(double));
    memset(dW, 0, (size_t)(V * V) * sizeof(double));

    for (int64_t t = L - 1; t >= 0; t--) {
        int64_t tok = start + t;
        const double *Hprev = s->Hs + t * KV, *Hcur = s->Hs + (t + 1) * KV, *Z = s->Zs + t * KV;
        const double *q = lane_q(p, tok, n), *k = lane_k(p, tok, n), *v = lane_v(p, tok, n);
        const double *dy = g->dy + (tok * N + n) * V;
        const double f = lane_f(p, tok, n), omf = rw(e, 1.0 - f);

        if (a->clip_mode == M2RNN_CLIP_CARRY) clamp(G, KV, c);
        for (int64_t i = 0; i < K; i++)                                  /* D = q dyᵀ + G */
            for (int64_t j = 0; j < V; j++)
                D[i * V + j] = e->cfg->fused ? rw(e, q[i] * dy[j] + G[i * V + j]) : rw(e, rw(e, q[i] * dy[j]) + G[i * V + j]);
        if (a->clip_mode == M2RNN_CLIP_TOTAL) clamp(D, KV, c);

        for (int64_t i = 0; i < K; i++) g->dq[(tok * N + n) * K + i] = dot(e, 0.0, Hcur + i * V, 1, dy, 1, V);
        for (int64_t x = 0; x < KV; x++) s->Hop[x] = rw(e, Hprev[x] - Z[x]);   /* df = Σ D ⊙ (H_{t-1} - Z) */
        g->df[tok * N + n] = dot(e, 0.0, D, 1, s->Hop, 1, KV);

        for (int64_t x = 0; x < KV; x++) {                               /* dA = (1-f) D ⊙ (1 - Z²) */
            dA[x] = rw(e, rw(e, omf * D[x]) * rw(e, 1.0 - rw(e, Z[x] * Z[x])));
            dAop[x] = op(e, dA[x]);
        }
        for (int64_t i = 0; i < K; i++)                                  /* G = f D + dA Wᵀ */
            for (int64_t j = 0; j < V; j++)
                G[i * V + j] = rw(e, rw(e, f * D[i * V + j]) + dot(e, 0.0, dAop + i * V, 1, s->Wop + j * V, 1, V));
        for (int64_t x = 0; x < KV; x++) s->Hop[x] = op(e, Hprev[x]);    /* dW += H_{t-1}ᵀ dA */
        for (int64_t l = 0; l < V; l++)
            for (int64_t j = 0; j < V; j++) dW[l * V + j] = rw(e, dW[l * V + j] + dot(e, 0.0, s->Hop + l, V, dAop + j, V, K));
        for (int64_t i = 0; i < K; i++) g->dk[(tok * N + n) * K + i] = dot(e, 0.0, dA + i * V, 1, v, 1, V);
        for (int64_t j = 0; j < V; j++) g->dv[(tok * N + n) * V + j] = dot(e, 0.0, dA + j, V, k, 1, K);
    }
    memcpy(g->dh0 + (b * N + n) * KV, G, (size_t)KV * sizeof(double));
    memcpy(g->dW + (b * N + n) * V * V, dW, (size_t)(V * V) * sizeof(double));
}

/* out[r, h, :] = Σ_g per_head[r, h·G + g, :], summed the class's way, rounded to the output dtype. */
static void sum_groups(emu *e, const double *per_head, int64_t rows, int64_t N, int64_t group, int64_t dim, m2rnn_tensor *out)
{
    m2rnn_dtype od = out_dtype(e->cfg->cls);
    int64_t src = N / group;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t h = 0; h < src; h++)
            for (int64_t x = 0; x < dim; x++) {
                double acc = 0.0;
                for (int64_t s = 0; s < group; s++) {
                    int64_t gi = e->cfg->reverse ? group - 1 - s : s;
                    double val = per_head[((r * N) + h * group + gi) * dim + x];
                    if (e->cfg->reduce_in_storage) val = m2rnn_round_to(od, val);
                    acc = s == 0 ? val : rw(e, acc + val);
                }
                m2rnn_tensor_set(out, (r * src + h) * dim + x, m2rnn_round_to(od, acc));
            }
}

static void grads_free(grads *g)
{
    free(g->dy); free(g->dht); free(g->dq); free(g->dk); free(g->dv); free(g->df); free(g->dW); free(g->dh0);
}

m2rnn_status m2rnn_recurrence_backward_emulated(const m2rnn_recurrence_backward_args *args, const m2rnn_emu_config *cfg)
{
    m2rnn_recurrence_dims d;
    m2rnn_status st = m2rnn_recurrence_check_backward(args, &d);
    if (st) return st;
    recurrence_lanes p;
    if ((st = recurrence_lanes_init(&p, &args->in, &d))) return st;
    const int64_t K = d.key_dim, V = d.value_dim, N = d.heads, T = d.tokens, B = d.batch, KV = K * V;
    const int64_t longest = recurrence_longest_sequence(&args->in, &d);
    grads g = {0};
    g.dy = recurrence_widen(&args->dy);
    if (m2rnn_tensor_present(&args->dht)) g.dht = recurrence_widen(&args->dht);
    size_t one = sizeof(double);
    g.dq = calloc((size_t)(T * N * K) + 1, one);
    g.dk = calloc((size_t)(T * N * K) + 1, one);
    g.dv = calloc((size_t)(T * N * V) + 1, one);
    g.df = calloc((size_t)(T * N) + 1, one);
    g.dW = calloc((size_t)(B * N * V * V) + 1, one);
    g.dh0 = calloc((size_t)(B * N * KV) + 1, one);
    if (!g.dy || (m2rnn_tensor_present(&args->dht) && !g.dht) || !g.dq || !g.dk || !g.dv || !g.df || !g.dW || !g.dh0) {
        grads_free(&g);
        recurrence_lanes_free(&p);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "emulated backward: out of memory");
    }
    int failed = 0;
#pragma omp parallel reduction(|| : failed)
    {
        scratch s;
        failed = !scratch_alloc(&s, K, V, longest);
#pragma omp for schedule(dynamic)
        for (int64_t lane = 0; lane < B * N; lane++) {
            if (failed) continue;
            emu e;
            emu_init(&e, cfg, lane);
            int64_t b = lane / N, n = lane % N, start, end;
            m2rnn_recurrence_sequence(&args->in, &d, b, &start, &end);
            backward_lane(&e, &p, args, &g, &s, b, n, start, end - start);
        }
        scratch_free(&s);
    }
    if (!failed) {
        emu e; /* the reductions get their own stream */
        emu_init(&e, cfg, -1);
        m2rnn_tensor dq = args->dq, dk = args->dk, dv = args->dv, df = args->df, dW = args->dW, dh0 = args->dh0;
        sum_groups(&e, g.dq, T, N, p.gq, K, &dq);
        sum_groups(&e, g.dk, T, N, p.gk, K, &dk);
        sum_groups(&e, g.dv, T, N, p.gv, V, &dv);
        sum_groups(&e, g.df, T, N, p.gf, 1, &df);
        /* dW[w] = Σ_b Σ_{n in group w} dW_lane[b, n]: the same reduction with (b, g) as the group. */
        m2rnn_dtype od = out_dtype(cfg->cls);
        int64_t VV = V * V;
        for (int64_t w = 0; w < d.w_heads; w++)
            for (int64_t x = 0; x < VV; x++) {
                double acc = 0.0;
                int64_t terms = B * p.gw;
                for (int64_t s = 0; s < terms; s++) {
                    int64_t idx = cfg->reverse ? terms - 1 - s : s, b = idx / p.gw, gi = idx % p.gw;
                    double val = g.dW[((b * N) + w * p.gw + gi) * VV + x];
                    acc = s == 0 ? val : rw(&e, acc + val);
                }
                m2rnn_tensor_set(&dW, w * VV + x, m2rnn_round_to(od, acc));
            }
        if (m2rnn_tensor_present(&dh0))
            for (int64_t x = 0; x < B * N * KV; x++) m2rnn_tensor_set(&dh0, x, m2rnn_round_to(od, g.dh0[x]));
    }
    grads_free(&g);
    recurrence_lanes_free(&p);
    return failed ? m2rnn_set_error(M2RNN_ERR_NOMEM, "emulated backward: out of memory") : M2RNN_OK;
}
