/*
 * The layer ops' golden vectors: the catalogue (what each case is for), how a case's data are
 * made, its file (named tensors + "params" metadata), and the generic class emulation used to
 * calibrate its tolerances.
 *
 * Data are deterministic in the case id (a splitmix64 stream seeded by the id's FNV-1a hash,
 * normals as Irwin–Hall sums of 12 uniforms, +, −, ×, ÷ and exact-rounded sqrt only), rounded once
 * to the storage dtype. Expected outputs: the reference backend (double inside) on exactly the
 * stored inputs, F64.
 *
 * The generic emulation of a precision class (vec_opcase_emulate): run the double reference on
 * F64 copies of the inputs whose every float element is multiplied by (1 + δ), δ uniform in
 * [−rel, rel], and round every output to the class's output dtype. That is the backward-error
 * model of a stable kernel of the class: its result is the exact result on inputs perturbed at
 * about the accumulated relative rounding error of its longest chain, rounded once. gen runs one
 * unperturbed and three perturbed variants and sets tolerance = safety × the worst error
 * (cmd_gen.c). Stateful ops (gdn, block) run stepped (vec_*_emulate_steps): the state carried
 * across tokens is rounded after every token, so rel below covers one token only.
 *
 * THE RULE for rel (vec_op_rounding, vec_rounding_rel), computed from the case's op and
 * parameters, never set by hand. Independent roundings add in quadrature, so
 *     rel² = Σ over the roundings on the longest dependency path to an output of u_i²
 * with, per case:
 *   R  = the longest reduction into one output value (dot-product, normalisation, softmax,
 *        window or over-token sum, e.g. dW = Σ_t dy_t x_tᵀ); a kernel accumulates it in fp32:
 *        √R·u_f32 for random rounding;
 *   S  = the rounding stages on the longest path to an output: the op's forward stages (each a
 *        product, a reduction or an elementwise function whose result is one intermediate)
 *        S_fwd, then the adjoints of all but the last for the gradients: S = 2·S_fwd − 1;
 *   L  = how many of those S stages round at the class's low precision in the tf32 class: the
 *        matrix products (their operands rounded to tf32 once) and the transcendental functions
 *        (exp, log, softplus, SiLU, tanh, rsqrt, sin/cos: approximate there), L_fwd forward,
 *        L = min(2·L_fwd, S).
 *   depth = R + S, and per class (u: 2^-53 f64, 2^-24 f32, 2^-11 tf32, 2^-9 bf16)
 *     f64, f32:  rel = u·√(R + S)                   every rounding in the class's arithmetic;
 *     tf32:      rel = √(L·u_tf32² + (R + S)·u_f32²) tf32 operands/approximations, fp32 else;
 *     bf16:      rel = √((S − 1)·u_bf16² + (R + S)·u_f32²)  every intermediate between stages
 *                held in bf16 (the storage dtype; the inputs are bf16 already and the last
 *                stage's result is the output, rounded by the emulation), fp32 accumulation.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vectors.h"

#define F32 M2RNN_F32
#define BF16 M2RNN_BF16

/* ---- the catalogue ---------------------------------------------------------------------- */

/* Block configs: tiny, with every head count different where the op allows it. */
#define BLOCK_TINY {.heads = 2, .q_heads = 1, .k_heads = 1, .f_heads = 2, .w_heads = 2, .key_dim = 4, .value_dim = 3, .eps = 1e-5}

static const vec_op_spec catalogue[] = {
    /* decay gate f = exp(-exp(A_log) softplus(x + dt_bias)) */
    {.op = "decay_gate", .tag = "gate", .storage = F32, .batch = 2, .seqlen = 9, .heads = 4,
     .flags = "SOFTPLUS_BOTH_SIGNS EXP_A_LOG", .comment = "x + dt_bias on both sides of 0, A_log spread so exp(A_log) != A_log: sigmoid for softplus or a missing exp both fail"},
    {.op = "decay_gate", .tag = "gate-large", .storage = F32, .batch = 1, .seqlen = 16, .heads = 3, .data_scale = 20.0,
     .flags = "SOFTPLUS_LARGE", .comment = "|x| up to ~60: a naive log(1+exp(u)) overflows or loses everything"},
    {.op = "decay_gate", .tag = "gate", .storage = BF16, .batch = 2, .seqlen = 9, .heads = 4,
     .flags = "SOFTPLUS_BOTH_SIGNS EXP_A_LOG", .comment = "the gate case with bf16 storage (x, A_log, dt_bias, df bf16-representable)"},
    /* depthwise causal conv1d */
    {.op = "conv1d", .tag = "k4", .storage = F32, .batch = 2, .seqlen = 9, .dim = 6, .kernel = 4, .bias = true,
     .params = {.activation = 1}, .flags = "KERNEL_4 BIAS SILU", .comment = "the model's conv: kernel 4, bias, SiLU; an asymmetric kernel so a flipped one fails"},
    {.op = "conv1d", .tag = "k1", .storage = F32, .batch = 2, .seqlen = 5, .dim = 3, .kernel = 1,
     .flags = "KERNEL_1 NO_BIAS NO_ACTIVATION", .comment = "kernel 1 (no state), no bias, no activation: a per-channel scale"},
    {.op = "conv1d", .tag = "k3", .storage = F32, .batch = 1, .seqlen = 7, .dim = 5, .kernel = 3, .state = true,
     .params = {.activation = 1}, .flags = "KERNEL_ODD STATE SILU", .comment = "odd kernel, streaming state in and out, SiLU, no bias"},
    {.op = "conv1d", .tag = "k4-state", .storage = F32, .batch = 2, .seqlen = 6, .dim = 4, .kernel = 4, .bias = true, .state = true,
     .flags = "KERNEL_4 STATE BIAS", .comment = "kernel 4 with the state in/out and its gradients, bias, no activation"},
    {.op = "conv1d", .tag = "varlen", .storage = F32, .n_seqs = 4, .seqs = {5, 2, 0, 9}, .dim = 4, .kernel = 4, .bias = true,
     .params = {.activation = 1}, .flags = "VARLEN VARLEN_SHORTER_THAN_KERNEL VARLEN_EMPTY_SEQ",
     .comment = "packed sequences of 5, 2 (shorter than the kernel), 0 and 9 tokens: no window crosses a sequence start"},
    {.op = "conv1d", .tag = "varlen-state", .storage = F32, .n_seqs = 3, .seqs = {1, 6, 3}, .dim = 3, .kernel = 4, .state = true,
     .flags = "VARLEN STATE VARLEN_SHORTER_THAN_KERNEL", .comment = "packed, each sequence with its own state in and out, one of 1 token"},
    {.op = "conv1d", .tag = "k4-state", .storage = BF16, .batch = 2, .seqlen = 6, .dim = 4, .kernel = 4, .bias = true, .state = true,
     .params = {.activation = 1}, .flags = "KERNEL_4 STATE BIAS SILU", .comment = "the model's conv (kernel 4, bias, SiLU) with the state in/out, bf16 storage"},
    /* linear y = x Wᵀ + b */
    {.op = "linear", .tag = "rect", .storage = F32, .batch = 2, .seqlen = 5, .dim = 7, .dim2 = 5, .bias = true,
     .flags = "BIAS", .comment = "in 7, out 5, bias"},
    {.op = "linear", .tag = "square", .storage = F32, .batch = 2, .seqlen = 5, .dim = 8, .dim2 = 8,
     .flags = "SQUARE", .comment = "square W: using W instead of Wᵀ runs and must fail"},
    {.op = "linear", .tag = "square", .storage = BF16, .batch = 2, .seqlen = 5, .dim = 8, .dim2 = 8,
     .flags = "SQUARE", .comment = "square W, bf16 storage"},
    /* RMSNorm y = x w / sqrt(mean(x²) + eps) */
    {.op = "rmsnorm", .tag = "eps", .storage = F32, .batch = 2, .seqlen = 4, .dim = 8, .data_scale = 0.01,
     .params = {.eps = 1e-3}, .flags = "EPS_MATTERS", .comment = "mean(x²) ~ 1e-4 against eps 1e-3: eps outside the root fails"},
    {.op = "rmsnorm", .tag = "plain", .storage = F32, .batch = 2, .seqlen = 5, .dim = 16, .params = {.eps = 1e-5},
     .comment = "unit-scale rows, eps 1e-5 as trained"},
    {.op = "rmsnorm", .tag = "plain", .storage = BF16, .batch = 2, .seqlen = 5, .dim = 16, .params = {.eps = 1e-5},
     .comment = "bf16 storage"},
    /* SiLU, SwiGLU MLP */
    {.op = "silu", .tag = "silu", .storage = F32, .batch = 2, .seqlen = 8, .dim = 8, .data_scale = 4.0,
     .comment = "x over ±12: SiLU, not the sigmoid"},
    {.op = "silu", .tag = "silu", .storage = BF16, .batch = 2, .seqlen = 8, .dim = 8, .data_scale = 4.0,
     .comment = "bf16 storage"},
    {.op = "mlp", .tag = "swiglu", .storage = F32, .batch = 2, .seqlen = 5, .dim = 6, .dim2 = 10,
     .comment = "SwiGLU: W_down (SiLU(x W_gateᵀ) ⊙ x W_upᵀ)"},
    {.op = "mlp", .tag = "swiglu", .storage = BF16, .batch = 2, .seqlen = 5, .dim = 6, .dim2 = 10,
     .comment = "SwiGLU, bf16 storage"},
    /* causal softmax attention */
    {.op = "attention", .tag = "mha", .storage = F32, .batch = 2, .seqlen = 9, .heads = 2, .kv_heads = 2, .head_dim = 8,
     .flags = "MHA CAUSAL", .comment = "plain causal MHA, NoPE"},
    {.op = "attention", .tag = "gqa", .storage = F32, .batch = 1, .seqlen = 9, .heads = 4, .kv_heads = 2, .head_dim = 8,
     .flags = "GQA", .comment = "4 query heads on 2 kv heads: query head n reads kv head n / 2, not n % 2"},
    {.op = "attention", .tag = "rope", .storage = F32, .batch = 1, .seqlen = 12, .heads = 2, .kv_heads = 1, .head_dim = 8,
     .params = {.rope = 1}, .flags = "ROPE GQA", .comment = "half-split RoPE, theta 10000, on 2 query heads sharing 1 kv head"},
    {.op = "attention", .tag = "overflow", .storage = F32, .batch = 1, .seqlen = 8, .heads = 2, .kv_heads = 2, .head_dim = 8,
     .data_scale = 20.0, .flags = "SOFTMAX_OVERFLOW", .comment = "scores up to ~1000 (> 709, where exp overflows in double): without max subtraction exp overflows"},
    {.op = "attention", .tag = "long", .storage = F32, .batch = 1, .seqlen = 96, .heads = 2, .kv_heads = 1, .head_dim = 8,
     .flags = "LONG CAUSAL GQA", .comment = "96 tokens: the causal mask over many tiles"},
    {.op = "attention", .tag = "gqa", .storage = BF16, .batch = 1, .seqlen = 9, .heads = 4, .kv_heads = 2, .head_dim = 8,
     .flags = "GQA", .comment = "GQA, bf16 storage"},
    /* Gated DeltaNet recurrence */
    {.op = "gdn", .tag = "gdn", .storage = F32, .batch = 2, .seqlen = 9, .heads = 2, .dim = 4, .dim2 = 3, .state = true,
     .params = {.l2norm_qk = 1}, .flags = "L2NORM_QK H0 DHT", .comment = "FLA convention, q/k L2-normalised in the op, h0 and dht"},
    {.op = "gdn", .tag = "gdn-raw", .storage = F32, .batch = 1, .seqlen = 12, .heads = 2, .dim = 5, .dim2 = 4,
     .params = {.scale = 0.5}, .data_scale = 0.4, .flags = "NO_L2NORM SCALE", .comment = "q/k not normalised in the op, explicit scale 0.5, no state"},
    {.op = "gdn", .tag = "gdn-varlen", .storage = F32, .n_seqs = 3, .seqs = {4, 0, 7}, .heads = 2, .dim = 4, .dim2 = 3, .state = true,
     .params = {.l2norm_qk = 1}, .flags = "VARLEN VARLEN_EMPTY_SEQ H0", .comment = "packed sequences of 4, 0 and 7 tokens, each from its own h0"},
    {.op = "gdn", .tag = "gdn", .storage = BF16, .batch = 1, .seqlen = 8, .heads = 2, .dim = 4, .dim2 = 3, .state = true,
     .params = {.l2norm_qk = 1}, .flags = "L2NORM_QK H0 DHT", .comment = "bf16 storage, L2-normalised q/k, h0 and dht"},
    /* the M²RNN block, tiny */
    {.op = "block", .tag = "tiny", .storage = F32, .batch = 2, .seqlen = 6, .dim = 8, .kernel = 4, .state = true,
     .params = BLOCK_TINY, .flags = "BLOCK H0 CONV_STATE SHARED_QK",
     .comment = "N=2, Nq=Nk=1, K=4, V=3, d=8: projection split, gate, conv+SiLU on q/k/v, recurrence, D skip, SiLU(g), RMSNorm, W_o; states in and out"},
    {.op = "block", .tag = "tiny-varlen", .storage = F32, .n_seqs = 3, .seqs = {3, 1, 5}, .dim = 8, .kernel = 4,
     .params = BLOCK_TINY, .flags = "BLOCK VARLEN", .comment = "the tiny block on packed sequences of 3, 1 and 5 tokens"},
    {.op = "block", .tag = "tiny", .storage = BF16, .batch = 1, .seqlen = 5, .dim = 8, .kernel = 4, .state = true,
     .params = BLOCK_TINY, .flags = "BLOCK H0 CONV_STATE SHARED_QK", .comment = "the tiny block with bf16 storage, states in and out"},
    /* embedding + cross-entropy */
    {.op = "embedding", .tag = "emb", .storage = F32, .batch = 2, .seqlen = 7, .dim = 5, .vocab = 6,
     .flags = "REPEATED_IDS", .comment = "14 ids over a vocabulary of 6: repeated ids must add in dtable"},
    {.op = "embedding", .tag = "emb", .storage = BF16, .batch = 2, .seqlen = 7, .dim = 5, .vocab = 6,
     .flags = "REPEATED_IDS", .comment = "bf16 table and dy; repeated ids add in dtable"},
    {.op = "cross_entropy", .tag = "ce", .storage = F32, .batch = 2, .seqlen = 6, .vocab = 7,
     .comment = "mean over every token"},
    {.op = "cross_entropy", .tag = "ce-ignore", .storage = F32, .batch = 2, .seqlen = 8, .vocab = 7, .ignore_every = 3,
     .params = {.has_ignore = 1, .ignore_index = -100}, .flags = "IGNORE_INDEX",
     .comment = "every third target is -100 (ignored): the mean is over the counted tokens only"},
    {.op = "cross_entropy", .tag = "ce", .storage = BF16, .batch = 2, .seqlen = 6, .vocab = 7,
     .comment = "bf16 logits"},
};

const vec_op_spec *vec_op_catalogue(size_t *n)
{
    *n = sizeof catalogue / sizeof catalogue[0];
    return catalogue;
}

/* ---- the rounding model (the rule: top of this file) ------------------------------------ */

static int imax(int a, int b) { return a > b ? a : b; }

static int n_tokens(const vec_op_spec *s)
{
    if (s->n_seqs <= 0) return s->batch * s->seqlen;
    int n = 0;
    for (int i = 0; i < s->n_seqs; i++) n += s->seqs[i];
    return n;
}

void vec_op_rounding(const vec_op_spec *s, vec_rounding *r)
{
    const int T = n_tokens(s);
    int R = 1, S = 1, L = 0; /* forward stages S, low-precision (tf32) ones L */
    const char *chain = "";
    char buf[sizeof r->chain];
    if (strcmp(s->op, "decay_gate") == 0) {
        R = T; /* dA_log, ddt_bias: sums over the tokens */
        S = 4, L = 3, chain = "x+dt_bias, softplus*, *exp(A_log)*, exp*; R: dA_log/ddt_bias over the tokens";
    } else if (strcmp(s->op, "conv1d") == 0) {
        R = imax(s->kernel + (s->bias ? 1 : 0), T); /* the window (+ bias); dw, dbias over the tokens */
        S = 1 + (s->params.activation ? 1 : 0), L = s->params.activation ? 1 : 0;
        chain = s->params.activation ? "window sum (+bias), SiLU*; R: max(window, dw/dbias over the tokens)"
                                     : "window sum (+bias); R: max(window, dw/dbias over the tokens)";
    } else if (strcmp(s->op, "linear") == 0) {
        R = imax(imax(s->dim + (s->bias ? 1 : 0), s->dim2), T);
        S = 1, L = 1, chain = "x W^T (+b)*; R: max(in, out, dW over the tokens)";
    } else if (strcmp(s->op, "rmsnorm") == 0) {
        R = imax(s->dim, T);
        S = 3, L = 1, chain = "mean(x^2), rsqrt*, scale by w; R: max(width, dw over the tokens)";
    } else if (strcmp(s->op, "silu") == 0) {
        R = 1, S = 1, L = 1, chain = "SiLU*; no reduction";
    } else if (strcmp(s->op, "mlp") == 0) {
        R = imax(imax(s->dim, s->dim2), T);
        S = 3, L = 3, chain = "x W_gate^T | x W_up^T*, SiLU*(.)*(.), W_down^T*; R: max(d, hidden, dW over the tokens)";
    } else if (strcmp(s->op, "attention") == 0) {
        const int group = s->kv_heads > 0 ? s->heads / s->kv_heads : 1;
        R = imax(s->head_dim, s->seqlen * group); /* q.k, softmax sum and P V over <= seqlen keys; dk, dv over the group's queries */
        S = 5 + (s->params.rope ? 1 : 0), L = 3 + (s->params.rope ? 1 : 0);
        chain = s->params.rope ? "RoPE*, q k^T*, exp(.-max)*, row sum, normalise, P V*; R: max(head_dim, seqlen x group)"
                               : "q k^T*, exp(.-max)*, row sum, normalise, P V*; R: max(head_dim, seqlen x group)";
    } else if (strcmp(s->op, "gdn") == 0) {
        R = imax(imax(s->dim, s->dim2), s->dim * s->dim2); /* per token: k.S, q.S over K, dq over V, dg over the K x V state */
        const int norm = s->params.l2norm_qk ? 2 : 1;
        S = norm + 5, L = (s->params.l2norm_qk ? 1 : 0) + 4;
        chain = s->params.l2norm_qk ? "per token: sum k^2, rsqrt* scale, exp(g)* decay, k^T S*, beta(v - .), S + k u^T*, q^T S*; R: K x V (dg)"
                                    : "per token: scale q, exp(g)* decay, k^T S*, beta(v - .), S + k u^T*, q^T S*; R: K x V (dg)";
    } else if (strcmp(s->op, "block") == 0) {
        const vec_params *p = &s->params;
        const int NV = p->heads * p->value_dim;
        R = imax(imax(imax(s->dim, NV), imax(p->key_dim, p->value_dim)), imax(s->kernel, T));
        S = 13, L = 7;
        chain = "per token: x W_in^T*, conv window, SiLU*, H W + k v^T*, tanh*, f H + (1-f) Z, q^T H*, + v D, * SiLU(g), "
                "mean square, rsqrt*, scale, W_o^T*; R: max(d, N V, K, V, conv, parameter gradients over the tokens)";
    } else if (strcmp(s->op, "embedding") == 0) {
        R = T; /* dtable: a row sums the dy of every token with its id */
        S = 1, L = 0, chain = "gather; R: dtable over the tokens";
    } else if (strcmp(s->op, "cross_entropy") == 0) {
        R = imax(s->vocab, T);
        S = 5, L = 2, chain = "exp(.-max)*, sum, log*, subtract, mean; R: max(vocab, the tokens)";
    }
    r->reduction = R;
    r->stages = 2 * S - 1;
    r->low_stages = L * 2 < r->stages ? L * 2 : r->stages;
    snprintf(buf, sizeof buf, "%s (S_fwd %d, * = tf32-rounded: %d)", chain, S, L);
    snprintf(r->chain, sizeof r->chain, "%s", buf);
}

int vec_rounding_depth(const vec_rounding *r) { return r->reduction + r->stages; }

double vec_rounding_rel(const vec_rounding *r, int cls)
{
    static const double U[4] = {0x1p-53, 0x1p-24, 0x1p-11, 0x1p-9};
    const double depth = (double)vec_rounding_depth(r), f32 = U[1] * U[1];
    switch (cls) {
    case 0: return U[0] * sqrt(depth);
    case 1: return U[1] * sqrt(depth);
    case 2: return sqrt((double)r->low_stages * U[2] * U[2] + depth * f32);
    default: return sqrt((double)(r->stages - 1) * U[3] * U[3] + depth * f32);
    }
}

static const char *storage_name(m2rnn_dtype d) { return d == BF16 ? "bf16" : d == M2RNN_F64 ? "f64" : "f32"; }

void vec_op_case_id(const vec_op_spec *s, char *buf, size_t size)
{
    char shape[160], dims[160];
    if (s->n_seqs > 0) {
        int n = snprintf(shape, sizeof shape, "T");
        for (int i = 0; i < s->n_seqs; i++) n += snprintf(shape + n, sizeof shape - (size_t)n, "%s%d", i ? "+" : "", s->seqs[i]);
    } else {
        snprintf(shape, sizeof shape, "B%dxS%d", s->batch, s->seqlen);
    }
    int n = 0;
    dims[0] = '\0';
    const struct { const char *key; int v; } d[] = {{"D", s->dim}, {"E", s->dim2}, {"Kc", s->kernel}, {"H", s->heads},
                                                   {"Hkv", s->kv_heads}, {"Dh", s->head_dim}, {"Voc", s->vocab}};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        if (d[i].v) n += snprintf(dims + n, sizeof dims - (size_t)n, ".%s%d", d[i].key, d[i].v);
    snprintf(buf, size, "%s.%s%s%s%s.%s.%s", s->op, shape, dims, s->bias ? ".bias" : "", s->state ? ".state" : "",
             storage_name(s->storage), s->tag);
}

void vec_op_case_flags(const vec_op_spec *s, char *buf, size_t size)
{
    snprintf(buf, size, "OP_%s %s%s%s", s->op, s->storage == BF16 ? "STORAGE_BF16" : "STORAGE_F32", s->flags ? " " : "",
             s->flags ? s->flags : "");
    for (char *p = buf + 3; *p && *p != ' '; p++) *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
}

void vec_op_case_file(const vec_op_spec *s, char *buf, size_t size)
{
    char id[256];
    vec_op_case_id(s, id, sizeof id);
    uint32_t h = 2166136261u;
    for (const char *p = id; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    snprintf(buf, size, "%s-%s.%s.%08x.safetensors", s->op, s->tag, storage_name(s->storage), h);
}

/* ---- data ------------------------------------------------------------------------------- */

typedef struct { uint64_t s; } rng;

static uint64_t rng_next(rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double rng_uniform(rng *r) { return (double)(rng_next(r) >> 11) * 0x1p-53; }
static double rng_normal(rng *r)
{
    double s = 0.0;
    for (int i = 0; i < 12; i++) s += rng_uniform(r);
    return s - 6.0;
}
static void rng_seed(rng *r, const char *text, uint64_t salt)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = text; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    r->s = h ^ (salt * 0x9E3779B97F4A7C15ull);
}

static void *own(vec_opcase *c, size_t bytes)
{
    void *p = calloc(bytes ? bytes : 1, 1);
    if (p && c->n_owned < 2 * VEC_MAX_TENSORS) c->owned[c->n_owned++] = p;
    return p;
}

static m2rnn_tensor *add(vec_opcase *c, bool out, const char *name, m2rnn_dtype dtype, int rank, const int64_t *shape)
{
    vec_named *n = out ? &c->out[c->n_out++] : &c->in[c->n_in++];
    snprintf(n->name, sizeof n->name, "%s", name);
    n->t = m2rnn_tensor_make(NULL, dtype, rank, shape);
    n->t.data = own(c, m2rnn_tensor_nbytes(&n->t));
    return &n->t;
}

/* An input of the storage dtype filled with scale·N(0,1) + shift, rounded once. */
static void fill(m2rnn_tensor *t, rng *r, double scale, double shift)
{
    int64_t n = m2rnn_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) m2rnn_tensor_set(t, i, shift + scale * rng_normal(r));
}
static void fill_uniform(m2rnn_tensor *t, rng *r, double lo, double hi)
{
    int64_t n = m2rnn_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) m2rnn_tensor_set(t, i, lo + (hi - lo) * rng_uniform(r));
}
static m2rnn_tensor *in_normal(vec_opcase *c, rng *r, const char *name, int rank, const int64_t *shape, double scale, double shift)
{
    m2rnn_tensor *t = add(c, false, name, c->storage, rank, shape);
    fill(t, r, scale, shift);
    return t;
}
/* An expected output shaped like an input (F64). */
static void out_like(vec_opcase *c, const char *name, const m2rnn_tensor *like)
{
    add(c, true, name, M2RNN_F64, like->rank, like->shape);
}
static void out_shape(vec_opcase *c, const char *name, int rank, const int64_t *shape) { add(c, true, name, M2RNN_F64, rank, shape); }

/* (B,S,a[,b]) dense or (T,a[,b]) packed; returns the rank. */
static int tok_shape(const vec_op_spec *s, int64_t a, int64_t b, int64_t *shp)
{
    int rank = 0;
    if (s->n_seqs > 0) {
        int64_t T = 0;
        for (int i = 0; i < s->n_seqs; i++) T += s->seqs[i];
        shp[rank++] = T;
    } else {
        shp[rank++] = s->batch;
        shp[rank++] = s->seqlen;
    }
    shp[rank++] = a;
    if (b > 0) shp[rank++] = b;
    return rank;
}
static int64_t n_batch(const vec_op_spec *s) { return s->n_seqs > 0 ? s->n_seqs : s->batch; }
static void add_cu(vec_opcase *c, const vec_op_spec *s)
{
    if (s->n_seqs <= 0) return;
    int64_t shp[1] = {s->n_seqs + 1};
    int32_t *cu = add(c, false, "cu_seqlens", M2RNN_I32, 1, shp)->data;
    for (int i = 0; i < s->n_seqs; i++) cu[i + 1] = cu[i] + s->seqs[i];
}

static void make_decay_gate(const vec_op_spec *s, vec_opcase *c, rng *r)
{
    int64_t shp[4], nh[1] = {s->heads};
    int rank = tok_shape(s, s->heads, 0, shp);
    const double xs = s->data_scale > 0 ? s->data_scale : 1.0;
    m2rnn_tensor *x = in_normal(c, r, "x", rank, shp, xs, 0.0);
    m2rnn_tensor *A = add(c, false, "A_log", c->storage, 1, nh);
    fill_uniform(A, r, -1.0, 1.5); /* exp(A_log) in (0.37, 4.5): never equal to A_log */
    in_normal(c, r, "dt_bias", 1, nh, 0.5, -0.5);
    in_normal(c, r, "df", rank, shp, 1.0, 0.0);
    out_like(c, "f", x);
    out_like(c, "dx", x);
    out_shape(c, "dA_log", 1, nh);
    out_shape(c, "ddt_bias", 1, nh);
}

static void make_conv1d(const vec_op_spec *s, vec_opcase *c, rng *r)
{
    int64_t shp[4], wsh[2] = {s->dim, s->kernel}, bsh[1] = {s->dim}, ssh[3] = {n_batch(s), s->dim, s->kernel - 1};
    int rank = tok_shape(s, s->dim, 0, shp);
    m2rnn_tensor *x = in_normal(c, r, "x", rank, shp, 1.0, 0.0);
    /* An asymmetric kernel: the taps grow toward the current token, plus noise. */
    m2rnn_tensor *w = add(c, false, "w", c->storage, 2, wsh);
    for (int64_t ch = 0; ch < s->dim; ch++)
        for (int64_t j = 0; j < s->kernel; j++)
            m2rnn_tensor_set(w, ch * s->kernel + j, (0.2 + 0.8 * (double)(j + 1) / (double)s->kernel) * (0.5 + 0.5 * rng_uniform(r)) *
                                                        (rng_uniform(r) < 0.2 ? -1.0 : 1.0));
    if (s->bias) in_normal(c, r, "bias", 1, bsh, 0.5, 0.0);
    const bool st = s->state && s->kernel > 1;
    if (st) in_normal(c, r, "state0", 3, ssh, 1.0, 0.0);
    add_cu(c, s);
    in_normal(c, r, "dy", rank, shp, 1.0, 0.0);
    if (st) in_normal(c, r, "dstate_out", 3, ssh, 1.0, 0.0);
    c->params.activation = s->params.activation;
    out_like(c, "y", x);
    if (st) out_shape(c, "state_out", 3, ssh);
    out_like(c, "dx", x);
    out_like(c, "dw", w);
    if (s->bias) out_shape(c, "dbias", 1, bsh);
    if (st) out_shape(c, "dstate0", 3, ssh);
}

static void make_linear(const vec_op_spec *s, vec_opcase *c, rng *r)
{
    int64_t shp[4], ysh[4], wsh[2] = {s->dim2, s->dim}, bsh[1] = {s->dim2};
    int rank = tok_shape(s, s->dim, 0, shp);
    tok_shape(s, s->dim2, 0, ysh);
    m2rnn_tensor *x = in_normal(c, r, "x", rank, shp, 1.0, 0.0);
    m2rnn_tensor *W = in_normal(c, r, "W", 2, wsh, 1.0 / sqrt((double)s->dim), 0.0);
    if (s->bias) in_normal(c, r, "bias", 1, bsh, 0.5, 0.0);
    in_normal(c, r, "dy", rank, ysh, 1.0, 0.0);
    out_shape(c, "y", rank, ysh);
    out_like(c, "dx", x);
    out_like(c, "dW", W);
    if (s->bias) out_shape(c, "dbias", 1, bsh);
}

static void make_rmsnorm(const vec_op_spec *s, vec_opcase *c, rng *r)
{
    int64_t shp[4], wsh[1] = {s->dim};
    int rank = tok_shape(s, s->dim, 0, shp);
    m2rnn_tensor *x = in_normal(c, r, "x", rank, shp, s->data_scale > 0 ? s->data_scale : 1.0, 0.0);
    m2rnn_tensor *w = in_normal(c, r, "w", 1, wsh, 0.2, 1.0);
    in_normal(c, r, "dy", rank, shp, 1.0, 0.0);
    out_like(c, "y", x);
    out_like(c, "dx", x);
    out_like(c, "dw", w);
}

static void make_silu(const vec_op_spec *s, vec_opcase *c, rng *r)
{
    int64_t shp[4];
    int rank = tok_shape(s, s->dim, 0, shp);
    m2rnn_tensor *x = in_normal(c, r, "x", rank, shp, s->data_scale > 0 ? s->data_scale : 1.0, 0.0);
    in_normal(c, r, "dy", rank, shp, 1.0, 0.0);
    out_like(c, "y", x);
    out_like(c, "dx", x);
}

static void make_mlp(const vec_op_spec *s, vec_opcase *c, rng *r)
{
    int64_t shp[4], gsh[2] = {s->dim2, s->dim}, dsh[2] = {s->dim, s->dim2};
    int rank = tok_shape(s, s->dim, 0, shp);
    m2rnn_tensor *x = in_normal(c, r, "x", rank, shp, 1.0, 0.0);
    m2rnn_tensor *g = in_normal(c, r, "W_gate", 2, gsh, 1.0 / sqrt((double)s->dim), 0.0);
    m2rnn_tensor *u = in_normal(c, r, "W_up", 2, gsh, 1.0 / sqrt((double)s->dim), 0.0);
    m2rnn_tensor *d = in_normal(c, r, "W_down", 2, dsh, 1.0 / sqrt((double)s->dim2), 0.0);
    in_normal(c, r, "dy", rank, shp, 1.0, 0.0);
    out_like(c, "y", x);
    out_like(c, "dx", x);
    out_like(c, "dW_gate", g);
    out_like(c, "dW_up", u);
    out_like(c, "dW_down", d);
}

static void make_attention(const vec_op_spec *s, vec_opcase *c, rng *r)
{
    int64_t qsh[4] = {s->batch, s->seqlen, s->heads, s->head_dim}, ksh[4] = {s->batch, s->seqlen, s->kv_heads, s->head_dim};
    const double xs = s->data_scale > 0 ? s->data_scale : 1.0;
    m2rnn_tensor *q = in_normal(c, r, "q", 4, qsh, xs, 0.0);
    m2rnn_tensor *k = in_normal(c, r, "k", 4, ksh, xs, 0.0);
    m2rnn_tensor *v = in_normal(c, r, "v", 4, ksh, 1.0, 0.0);
    in_normal(c, r, "dout", 4, qsh, 1.0, 0.0);
    c->params.rope = s->params.rope;
    out_like(c, "o", q);
    out_like(c, "dq", q);
    out_like(c, "dk", k);
    out_like(c, "dv", v);
}

static void make_gdn(const vec_op_spec *s, vec_opcase *c, rng *r)
{
    int64_t ksh[4], vsh[4], gsh[4], hsh[4] = {n_batch(s), s->heads, s->dim, s->dim2};
    int rank = tok_shape(s, s->heads, s->dim, ksh);
    tok_shape(s, s->heads, s->dim2, vsh);
    int grank = tok_shape(s, s->heads, 0, gsh);
    const double xs = s->data_scale > 0 ? s->data_scale : 1.0;
    m2rnn_tensor *q = in_normal(c, r, "q", rank, ksh, xs, 0.0);
    m2rnn_tensor *k = in_normal(c, r, "k", rank, ksh, xs, 0.0);
    m2rnn_tensor *v = in_normal(c, r, "v", rank, vsh, 1.0, 0.0);
    m2rnn_tensor *g = add(c, false, "g", c->storage, grank, gsh);
    fill_uniform(g, r, -1.5, -0.02); /* log-decay: exp(g) in (0.22, 0.98) */
    m2rnn_tensor *beta = add(c, false, "beta", c->storage, grank, gsh);
    fill_uniform(beta, r, 0.05, 0.95);
    if (s->state) in_normal(c, r, "h0", 4, hsh, 0.5, 0.0);
    add_cu(c, s);
    in_normal(c, r, "dout", rank, vsh, 1.0, 0.0);
    if (s->state) in_normal(c, r, "dht", 4, hsh, 1.0, 0.0);
    c->params.l2norm_qk = s->params.l2norm_qk;
    c->params.scale = s->params.scale;
    out_like(c, "o", v);
    out_shape(c, "ht", 4, hsh);
    out_like(c, "dq", q);
    out_like(c, "dk", k);
    out_like(c, "dv", v);
    out_like(c, "dg", g);
    out_like(c, "dbeta", beta);
    out_shape(c, "dh0", 4, hsh);
}

static void make_block(const vec_op_spec *s, vec_opcase *c, rng *r)
{
    const vec_params *p = &s->params;
    const int64_t N = p->heads, K = p->key_dim, V = p->value_dim, d = s->dim, Kc = s->kernel;
    const int64_t C = (p->q_heads + p->k_heads) * K + N * V, P = C + p->f_heads + N * V, B = n_batch(s);
    int64_t xsh[4], win[2] = {P, d}, cw[2] = {C, Kc}, nf[1] = {p->f_heads}, wsh[3] = {p->w_heads, V, V}, dsh[2] = {N, V},
                    nw[1] = {N * V}, wo[2] = {d, N * V}, hsh[4] = {B, N, K, V}, csh[3] = {B, C, Kc - 1};
    int rank = tok_shape(s, d, 0, xsh);
    m2rnn_tensor *x = in_normal(c, r, "x", rank, xsh, 1.0, 0.0);
    m2rnn_tensor *Win = in_normal(c, r, "W_in", 2, win, 1.0 / sqrt((double)d), 0.0);
    m2rnn_tensor *cwt = in_normal(c, r, "conv_w", 2, cw, 0.4, 0.1);
    m2rnn_tensor *A = add(c, false, "A_log", c->storage, 1, nf);
    fill_uniform(A, r, -1.0, 1.0);
    m2rnn_tensor *dt = in_normal(c, r, "dt_bias", 1, nf, 0.5, -1.0);
    m2rnn_tensor *W = in_normal(c, r, "W", 3, wsh, 0.5 / sqrt((double)V), 0.0);
    m2rnn_tensor *D = in_normal(c, r, "D", 2, dsh, 0.5, 0.0);
    m2rnn_tensor *nwt = in_normal(c, r, "norm_w", 1, nw, 0.2, 1.0);
    m2rnn_tensor *Wo = in_normal(c, r, "W_o", 2, wo, 1.0 / sqrt((double)(N * V)), 0.0);
    if (s->state) {
        in_normal(c, r, "h0", 4, hsh, 0.5, 0.0);
        in_normal(c, r, "conv_state0", 3, csh, 1.0, 0.0);
    }
    add_cu(c, s);
    in_normal(c, r, "dout", rank, xsh, 1.0, 0.0);
    if (s->state) {
        in_normal(c, r, "dht", 4, hsh, 1.0, 0.0);
        in_normal(c, r, "dconv_state_out", 3, csh, 1.0, 0.0);
    }
    c->params = *p;
    out_like(c, "o", x);
    out_shape(c, "ht", 4, hsh);
    out_shape(c, "conv_state_out", 3, csh);
    out_like(c, "dx", x);
    out_like(c, "dW_in", Win);
    out_like(c, "dconv_w", cwt);
    out_like(c, "dA_log", A);
    out_like(c, "ddt_bias", dt);
    out_like(c, "dW", W);
    out_like(c, "dD", D);
    out_like(c, "dnorm_w", nwt);
    out_like(c, "dW_o", Wo);
    out_shape(c, "dh0", 4, hsh);
    out_shape(c, "dconv_state0", 3, csh);
}

static void make_embedding(const vec_op_spec *s, vec_opcase *c, rng *r)
{
    int64_t ish[2] = {s->batch, s->seqlen}, tsh[2] = {s->vocab, s->dim}, ysh[3] = {s->batch, s->seqlen, s->dim};
    int32_t *ids = add(c, false, "ids", M2RNN_I32, 2, ish)->data;
    for (int64_t i = 0; i < ish[0] * ish[1]; i++) ids[i] = (int32_t)(rng_next(r) % (uint64_t)s->vocab);
    m2rnn_tensor *t = in_normal(c, r, "table", 2, tsh, 1.0, 0.0);
    in_normal(c, r, "dy", 3, ysh, 1.0, 0.0);
    out_shape(c, "y", 3, ysh);
    out_like(c, "dtable", t);
}

static void make_cross_entropy(const vec_op_spec *s, vec_opcase *c, rng *r)
{
    int64_t lsh[3] = {s->batch, s->seqlen, s->vocab}, tsh[2] = {s->batch, s->seqlen}, one[1] = {1};
    m2rnn_tensor *l = in_normal(c, r, "logits", 3, lsh, 2.0, 0.0);
    int32_t *tg = add(c, false, "targets", M2RNN_I32, 2, tsh)->data;
    for (int64_t i = 0; i < tsh[0] * tsh[1]; i++)
        tg[i] = s->ignore_every && i % s->ignore_every == 1 ? (int32_t)s->params.ignore_index : (int32_t)(rng_next(r) % (uint64_t)s->vocab);
    m2rnn_tensor *dl = add(c, false, "dloss", c->storage, 1, one);
    m2rnn_tensor_set(dl, 0, 0.75);
    c->params.has_ignore = s->params.has_ignore;
    c->params.ignore_index = s->params.ignore_index;
    out_shape(c, "loss", 1, one);
    out_like(c, "dlogits", l);
}

static const struct {
    const char *op;
    void (*make)(const vec_op_spec *, vec_opcase *, rng *);
} makers[] = {
    {"decay_gate", make_decay_gate}, {"conv1d", make_conv1d}, {"linear", make_linear}, {"rmsnorm", make_rmsnorm},
    {"silu", make_silu}, {"mlp", make_mlp}, {"attention", make_attention}, {"gdn", make_gdn}, {"block", make_block},
    {"embedding", make_embedding}, {"cross_entropy", make_cross_entropy},
};

/* ---- running the op --------------------------------------------------------------------- */

/* io over the case's inputs (forward: without the backward's) and the given outputs. */
static void make_io(const vec_opcase *c, const vec_named *outs, int n_outs, vec_io *io)
{
    io->n = 0;
    for (int i = 0; i < c->n_in; i++) io->item[io->n++] = c->in[i];
    for (int i = 0; i < n_outs; i++) io->item[io->n++] = outs[i];
}

bool vec_opcase_is_backward(const vec_opcase *c, int i) { return !vec_name_in(c->op->forward_outputs, c->out[i].name); }

/* Forward into the forward's outputs, backward into the backward's (outs parallel to c->out). */
static m2rnn_status run_both(const m2rnn_backend *be, const vec_opcase *c, const vec_named *ins, const vec_named *outs)
{
    for (int dir = 0; dir < 2; dir++) {
        vec_io io;
        io.n = 0;
        for (int i = 0; i < c->n_in; i++) io.item[io.n++] = ins[i];
        for (int i = 0; i < c->n_out; i++)
            if (vec_opcase_is_backward(c, i) == (dir == 1)) io.item[io.n++] = outs[i];
        bool ok;
        m2rnn_status st = c->op->call(be, dir == 1, &io, &c->params, false, &ok);
        if (st) return st;
    }
    return M2RNN_OK;
}

m2rnn_status vec_opcase_generate(const vec_op_spec *s, vec_opcase *c)
{
    memset(c, 0, sizeof *c);
    vec_op_case_id(s, c->id, sizeof c->id);
    c->op = vec_opdesc_find(s->op);
    c->storage = s->storage;
    c->params = s->params;
    if (!c->op) return m2rnn_set_error(M2RNN_ERR_FORMAT, "gen: unknown op %s", s->op);
    rng r;
    rng_seed(&r, c->id, 0);
    for (size_t i = 0; i < sizeof makers / sizeof makers[0]; i++)
        if (strcmp(makers[i].op, s->op) == 0) makers[i].make(s, c, &r);
    for (int i = 0; i < c->n_in; i++)
        if (!c->in[i].t.data) return m2rnn_set_error(M2RNN_ERR_NOMEM, "gen: out of memory");
    for (int i = 0; i < c->n_out; i++)
        if (!c->out[i].t.data) return m2rnn_set_error(M2RNN_ERR_NOMEM, "gen: out of memory");
    (void)make_io;
    return run_both(m2rnn_backend_reference(), c, c->in, c->out);
}

/* ---- the stepped emulation of the Gated DeltaNet recurrence ------------------------------ */

/* x rounded to tf32 (10 fraction bits, round to nearest even); Inf/NaN kept. */
static double tf32_round(double x)
{
    float f = (float)x;
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7f800000u) != 0x7f800000u) {
        u += 0xFFFu + ((u >> 13) & 1u);
        u &= ~0x1FFFu;
    }
    memcpy(&f, &u, sizeof f);
    return (double)f;
}

/* The value a kernel of class cls holds between steps. */
static double step_round(int cls, double x)
{
    switch (cls) {
    case 1: return (double)(float)x;
    case 2: return tf32_round(x);
    case 3: return m2rnn_round_to(M2RNN_BF16, x);
    default: return x;
    }
}

static const double *io_data(const vec_named *v, int n, const char *name, m2rnn_tensor *t)
{
    for (int i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0) { if (t) *t = v[i].t; return v[i].t.data; }
    if (t) memset(t, 0, sizeof *t);
    return NULL;
}

/* The GDN recurrence run one token at a time by the double reference, the state S (forward) and
 * the carried gradient G = dL/dS (backward) rounded to what the class holds between steps after
 * every token: bf16 in the bf16 class (a state kept in the storage dtype, SPEC.md §7), tf32 in
 * the tf32 class (every step's products read the state as tf32 operands; keeping it rounded is
 * the pessimistic side of that), fp32 in the f32 class. ins are F64 (already perturbed), outs
 * F64 buffers parallel to c->out. */
m2rnn_status vec_gdn_emulate_steps(const vec_opcase *c, const vec_named *ins, const vec_named *outs, int cls)
{
    m2rnn_tensor tq, tcu;
    const double *q = io_data(ins, c->n_in, "q", &tq), *k = io_data(ins, c->n_in, "k", NULL), *v = io_data(ins, c->n_in, "v", NULL);
    const double *g = io_data(ins, c->n_in, "g", NULL), *beta = io_data(ins, c->n_in, "beta", NULL);
    const double *h0 = io_data(ins, c->n_in, "h0", NULL), *dout = io_data(ins, c->n_in, "dout", NULL);
    const double *dht = io_data(ins, c->n_in, "dht", NULL);
    (void)io_data(ins, c->n_in, "cu_seqlens", &tcu);
    double *o = (double *)io_data(outs, c->n_out, "o", NULL), *ht = (double *)io_data(outs, c->n_out, "ht", NULL);
    double *dq = (double *)io_data(outs, c->n_out, "dq", NULL), *dk = (double *)io_data(outs, c->n_out, "dk", NULL);
    double *dv = (double *)io_data(outs, c->n_out, "dv", NULL), *dg = (double *)io_data(outs, c->n_out, "dg", NULL);
    double *dbeta = (double *)io_data(outs, c->n_out, "dbeta", NULL), *dh0 = (double *)io_data(outs, c->n_out, "dh0", NULL);
    if (!q || !k || !v || !g || !beta || !dout || !o || !ht || !dq || !dk || !dv || !dg || !dbeta || !dh0)
        return m2rnn_set_error(M2RNN_ERR_ARG, "gdn emulation: %s lacks a tensor", c->id);
    const bool varlen = tcu.data != NULL;
    const int64_t H = tq.shape[tq.rank - 2], K = tq.shape[tq.rank - 1];
    const int64_t V = m2rnn_tensor_numel(&outs[0].t) / (m2rnn_tensor_numel(&tq) / K); /* o is (tokens, H, V) */
    const int64_t B = varlen ? m2rnn_tensor_numel(&tcu) - 1 : tq.shape[0], Sd = varlen ? 0 : tq.shape[1];
    const int64_t HKV = H * K * V, T = m2rnn_tensor_numel(&tq) / (H * K);
    if (strcmp(c->out[0].name, "o") != 0) return m2rnn_set_error(M2RNN_ERR_ARG, "gdn emulation: o must be the first output");
    double *states = malloc((size_t)((T + 1) * HKV) * sizeof(double)), *G = malloc((size_t)(2 * HKV) * sizeof(double));
    m2rnn_status st = states && G ? M2RNN_OK : m2rnn_set_error(M2RNN_ERR_NOMEM, "gen: out of memory");
    const int64_t sk[4] = {1, 1, H, K}, sv[4] = {1, 1, H, V}, sg[3] = {1, 1, H}, ss[4] = {1, H, K, V};
    const m2rnn_backend *be = m2rnn_backend_reference();
    for (int64_t b = 0; b < B && !st; b++) {
        const int64_t t0 = varlen ? (int64_t)m2rnn_tensor_get(&tcu, b) : b * Sd;
        const int64_t t1 = varlen ? (int64_t)m2rnn_tensor_get(&tcu, b + 1) : (b + 1) * Sd;
        double *S0 = states; /* states[i]: the state before token t0 + i */
        for (int64_t i = 0; i < HKV; i++) S0[i] = h0 ? h0[b * HKV + i] : 0.0;
        for (int64_t t = t0; t < t1 && !st; t++) {
            double *Sin = states + (t - t0) * HKV, *Sout = Sin + HKV;
            m2rnn_gdn_forward_args a = {
                .in = {.q = m2rnn_tensor_make((void *)(q + t * H * K), M2RNN_F64, 4, sk),
                       .k = m2rnn_tensor_make((void *)(k + t * H * K), M2RNN_F64, 4, sk),
                       .v = m2rnn_tensor_make((void *)(v + t * H * V), M2RNN_F64, 4, sv),
                       .g = m2rnn_tensor_make((void *)(g + t * H), M2RNN_F64, 3, sg),
                       .beta = m2rnn_tensor_make((void *)(beta + t * H), M2RNN_F64, 3, sg),
                       .h0 = m2rnn_tensor_make(Sin, M2RNN_F64, 4, ss), .l2norm_qk = c->params.l2norm_qk != 0, .scale = c->params.scale},
                .o = m2rnn_tensor_make(o + t * H * V, M2RNN_F64, 4, sv), .ht = m2rnn_tensor_make(Sout, M2RNN_F64, 4, ss)};
            st = m2rnn_gdn_forward(be, &a);
            for (int64_t i = 0; i < HKV; i++) Sout[i] = step_round(cls, Sout[i]);
        }
        for (int64_t i = 0; i < HKV; i++) ht[b * HKV + i] = states[(t1 - t0) * HKV + i];
        double *Gc = G, *Gn = G + HKV;
        for (int64_t i = 0; i < HKV; i++) Gc[i] = step_round(cls, dht ? dht[b * HKV + i] : 0.0);
        for (int64_t t = t1 - 1; t >= t0 && !st; t--) {
            m2rnn_gdn_backward_args a = {
                .in = {.q = m2rnn_tensor_make((void *)(q + t * H * K), M2RNN_F64, 4, sk),
                       .k = m2rnn_tensor_make((void *)(k + t * H * K), M2RNN_F64, 4, sk),
                       .v = m2rnn_tensor_make((void *)(v + t * H * V), M2RNN_F64, 4, sv),
                       .g = m2rnn_tensor_make((void *)(g + t * H), M2RNN_F64, 3, sg),
                       .beta = m2rnn_tensor_make((void *)(beta + t * H), M2RNN_F64, 3, sg),
                       .h0 = m2rnn_tensor_make(states + (t - t0) * HKV, M2RNN_F64, 4, ss), .l2norm_qk = c->params.l2norm_qk != 0,
                       .scale = c->params.scale},
                .dout = m2rnn_tensor_make((void *)(dout + t * H * V), M2RNN_F64, 4, sv), .dht = m2rnn_tensor_make(Gc, M2RNN_F64, 4, ss),
                .dq = m2rnn_tensor_make(dq + t * H * K, M2RNN_F64, 4, sk), .dk = m2rnn_tensor_make(dk + t * H * K, M2RNN_F64, 4, sk),
                .dv = m2rnn_tensor_make(dv + t * H * V, M2RNN_F64, 4, sv), .dg = m2rnn_tensor_make(dg + t * H, M2RNN_F64, 3, sg),
                .dbeta = m2rnn_tensor_make(dbeta + t * H, M2RNN_F64, 3, sg), .dh0 = m2rnn_tensor_make(Gn, M2RNN_F64, 4, ss)};
            st = m2rnn_gdn_backward(be, &a);
            for (int64_t i = 0; i < HKV; i++) Gc[i] = step_round(cls, Gn[i]);
        }
        for (int64_t i = 0; i < HKV; i++) dh0[b * HKV + i] = Gc[i];
    }
    free(states);
    free(G);
    return st;
}

/* ---- the stepped emulation of the M²RNN block -------------------------------------------- */

/* The block run one token at a time by the double reference (m2rnn_block.h: ht and
 * conv_state_out passed back in as h0 and conv_state0), the recurrent state and the conv state
 * rounded to what class cls holds between steps (step_round) after every token; the backward run
 * token by token in reverse from the (rounded) states the forward kept, the carried dht and
 * dconv_state rounded after every token the same way, the parameter gradients summed over the
 * tokens in double. ins are F64 (already perturbed), outs F64 buffers parallel to c->out. */
m2rnn_status vec_block_emulate_steps(const vec_opcase *c, const vec_named *ins, const vec_named *outs, int cls)
{
    static const char *const params[] = {"W_in", "conv_w", "A_log", "dt_bias", "W", "D", "norm_w", "W_o"};
    static const char *const dparams[] = {"dW_in", "dconv_w", "dA_log", "ddt_bias", "dW", "dD", "dnorm_w", "dW_o"};
    enum { NP = 8 };
    const vec_params *p = &c->params;
    m2rnn_tensor tx, tcw, tcu, tp[NP];
    const double *x = io_data(ins, c->n_in, "x", &tx), *h0 = io_data(ins, c->n_in, "h0", NULL);
    const double *cs0 = io_data(ins, c->n_in, "conv_state0", NULL), *dout = io_data(ins, c->n_in, "dout", NULL);
    const double *dht = io_data(ins, c->n_in, "dht", NULL), *dcs = io_data(ins, c->n_in, "dconv_state_out", NULL);
    (void)io_data(ins, c->n_in, "cu_seqlens", &tcu);
    (void)io_data(ins, c->n_in, "conv_w", &tcw);
    double *o = (double *)io_data(outs, c->n_out, "o", NULL), *ht = (double *)io_data(outs, c->n_out, "ht", NULL);
    double *cso = (double *)io_data(outs, c->n_out, "conv_state_out", NULL), *dx = (double *)io_data(outs, c->n_out, "dx", NULL);
    double *dh0 = (double *)io_data(outs, c->n_out, "dh0", NULL), *dcs0 = (double *)io_data(outs, c->n_out, "dconv_state0", NULL);
    double *dp[NP];
    bool missing = !x || !dout || !o || !ht || !cso || !dx || !dh0 || !dcs0;
    for (int i = 0; i < NP; i++) {
        missing |= !io_data(ins, c->n_in, params[i], &tp[i]);
        missing |= !(dp[i] = (double *)io_data(outs, c->n_out, dparams[i], NULL));
    }
    if (missing) return m2rnn_set_error(M2RNN_ERR_ARG, "block emulation: %s lacks a tensor", c->id);
    const bool varlen = tcu.data != NULL;
    const int64_t d = tx.shape[tx.rank - 1], T = m2rnn_tensor_numel(&tx) / d;
    const int64_t B = varlen ? m2rnn_tensor_numel(&tcu) - 1 : tx.shape[0], Sd = varlen ? 0 : tx.shape[1];
    const int64_t N = p->heads, K = p->key_dim, V = p->value_dim, C = tcw.shape[0], Kc1 = tcw.shape[1] - 1;
    const int64_t NKV = N * K * V, CS = C * Kc1;
    const int64_t sx[3] = {1, 1, d}, sh[4] = {1, N, K, V}, scs[3] = {1, C, Kc1};
    double *hs = malloc((size_t)((T + 1) * NKV + 1) * sizeof(double)), *cs = malloc((size_t)((T + 1) * CS + 1) * sizeof(double));
    double *G = malloc((size_t)(2 * (NKV + CS) + 1) * sizeof(double)), *gp[NP] = {0};
    m2rnn_status st = hs && cs && G ? M2RNN_OK : m2rnn_set_error(M2RNN_ERR_NOMEM, "gen: out of memory");
    for (int i = 0; i < NP && !st; i++) {
        int64_t n = m2rnn_tensor_numel(&tp[i]);
        memset(dp[i], 0, (size_t)n * sizeof(double));
        if (!(gp[i] = malloc((size_t)(n ? n : 1) * sizeof(double)))) st = m2rnn_set_error(M2RNN_ERR_NOMEM, "gen: out of memory");
    }
    m2rnn_block_inputs in = {
        .cfg = {.heads = p->heads, .q_heads = p->q_heads, .k_heads = p->k_heads, .f_heads = p->f_heads, .w_heads = p->w_heads,
                .key_dim = p->key_dim, .value_dim = p->value_dim, .eps = p->eps},
        .W_in = tp[0], .conv_w = tp[1], .A_log = tp[2], .dt_bias = tp[3], .W = tp[4], .D = tp[5], .norm_w = tp[6], .W_o = tp[7]};
    const m2rnn_backend *be = m2rnn_backend_reference();
    for (int64_t b = 0; b < B && !st; b++) {
        const int64_t t0 = varlen ? (int64_t)m2rnn_tensor_get(&tcu, b) : b * Sd;
        const int64_t t1 = varlen ? (int64_t)m2rnn_tensor_get(&tcu, b + 1) : (b + 1) * Sd;
        /* hs/cs + i: the states before token t0 + i */
        for (int64_t i = 0; i < NKV; i++) hs[i] = h0 ? h0[b * NKV + i] : 0.0;
        for (int64_t i = 0; i < CS; i++) cs[i] = cs0 ? cs0[b * CS + i] : 0.0;
        for (int64_t t = t0; t < t1 && !st; t++) {
            double *hin = hs + (t - t0) * NKV, *cin = cs + (t - t0) * CS;
            m2rnn_block_forward_args a = {.in = in, .o = m2rnn_tensor_make(o + t * d, M2RNN_F64, 3, sx),
                                          .ht = m2rnn_tensor_make(hin + NKV, M2RNN_F64, 4, sh),
                                          .conv_state_out = m2rnn_tensor_make(cin + CS, M2RNN_F64, 3, scs)};
            a.in.x = m2rnn_tensor_make((void *)(x + t * d), M2RNN_F64, 3, sx);
            a.in.h0 = m2rnn_tensor_make(hin, M2RNN_F64, 4, sh);
            a.in.conv_state0 = m2rnn_tensor_make(cin, M2RNN_F64, 3, scs);
            st = m2rnn_block_forward(be, &a);
            for (int64_t i = 0; i < NKV; i++) hin[NKV + i] = step_round(cls, hin[NKV + i]);
            for (int64_t i = 0; i < CS; i++) cin[CS + i] = step_round(cls, cin[CS + i]);
        }
        for (int64_t i = 0; i < NKV; i++) ht[b * NKV + i] = hs[(t1 - t0) * NKV + i];
        for (int64_t i = 0; i < CS; i++) cso[b * CS + i] = cs[(t1 - t0) * CS + i];
        double *Gh = G, *Gc = G + NKV, *Gh_n = G + NKV + CS, *Gc_n = Gh_n + NKV;
        for (int64_t i = 0; i < NKV; i++) Gh[i] = step_round(cls, dht ? dht[b * NKV + i] : 0.0);
        for (int64_t i = 0; i < CS; i++) Gc[i] = step_round(cls, dcs ? dcs[b * CS + i] : 0.0);
        for (int64_t t = t1 - 1; t >= t0 && !st; t--) {
            m2rnn_block_backward_args a = {
                .in = in, .dout = m2rnn_tensor_make((void *)(dout + t * d), M2RNN_F64, 3, sx),
                .dht = m2rnn_tensor_make(Gh, M2RNN_F64, 4, sh), .dconv_state_out = m2rnn_tensor_make(Gc, M2RNN_F64, 3, scs),
                .clip_mode = (m2rnn_clip_mode)p->clip_mode, .clip = p->clip,
                .dx = m2rnn_tensor_make(dx + t * d, M2RNN_F64, 3, sx), .dh0 = m2rnn_tensor_make(Gh_n, M2RNN_F64, 4, sh),
                .dconv_state0 = m2rnn_tensor_make(Gc_n, M2RNN_F64, 3, scs)};
            a.in.x = m2rnn_tensor_make((void *)(x + t * d), M2RNN_F64, 3, sx);
            a.in.h0 = m2rnn_tensor_make(hs + (t - t0) * NKV, M2RNN_F64, 4, sh);
            a.in.conv_state0 = m2rnn_tensor_make(cs + (t - t0) * CS, M2RNN_F64, 3, scs);
            m2rnn_tensor *gt[NP] = {&a.dW_in, &a.dconv_w, &a.dA_log, &a.ddt_bias, &a.dW, &a.dD, &a.dnorm_w, &a.dW_o};
            for (int i = 0; i < NP; i++) *gt[i] = m2rnn_tensor_make(gp[i], M2RNN_F64, tp[i].rank, tp[i].shape);
            st = m2rnn_block_backward(be, &a);
            for (int i = 0; i < NP && !st; i++)
                for (int64_t e = 0; e < m2rnn_tensor_numel(&tp[i]); e++) dp[i][e] += gp[i][e];
            for (int64_t i = 0; i < NKV; i++) Gh[i] = step_round(cls, Gh_n[i]);
            for (int64_t i = 0; i < CS; i++) Gc[i] = step_round(cls, Gc_n[i]);
        }
        for (int64_t i = 0; i < NKV; i++) dh0[b * NKV + i] = Gh[i];
        for (int64_t i = 0; i < CS; i++) dcs0[b * CS + i] = Gc[i];
    }
    free(hs);
    free(cs);
    free(G);
    for (int i = 0; i < NP; i++) free(gp[i]);
    return st;
}

m2rnn_status vec_opcase_emulate(const vec_opcase *c, int cls, double rel, uint64_t seed, m2rnn_dtype out_dtype, double **out)
{
    vec_named ins[VEC_MAX_TENSORS], outs[VEC_MAX_TENSORS];
    void *bufs[2 * VEC_MAX_TENSORS] = {0};
    int nb = 0;
    m2rnn_status st = M2RNN_OK;
    rng r;
    rng_seed(&r, c->id, seed);
    for (int i = 0; i < c->n_in; i++) {
        ins[i] = c->in[i];
        m2rnn_dtype d = c->in[i].t.dtype;
        if (d == M2RNN_I32 || d == M2RNN_I64) continue;
        int64_t n = m2rnn_tensor_numel(&c->in[i].t);
        double *x = bufs[nb++] = malloc((size_t)(n ? n : 1) * sizeof(double));
        if (!x) { st = m2rnn_set_error(M2RNN_ERR_NOMEM, "gen: out of memory"); goto done; }
        for (int64_t e = 0; e < n; e++) x[e] = m2rnn_tensor_get(&c->in[i].t, e) * (1.0 + rel * (2.0 * rng_uniform(&r) - 1.0));
        ins[i].t = m2rnn_tensor_make(x, M2RNN_F64, c->in[i].t.rank, c->in[i].t.shape);
    }
    for (int i = 0; i < c->n_out; i++) {
        outs[i] = c->out[i];
        int64_t n = m2rnn_tensor_numel(&c->out[i].t);
        out[i] = malloc((size_t)(n ? n : 1) * sizeof(double));
        if (!out[i]) { st = m2rnn_set_error(M2RNN_ERR_NOMEM, "gen: out of memory"); goto done; }
        outs[i].t.data = out[i];
    }
    st = c->op->emulate_steps && cls >= 0 ? c->op->emulate_steps(c, ins, outs, cls) : run_both(m2rnn_backend_reference(), c, ins, outs);
    for (int i = 0; i < c->n_out && !st; i++) {
        int64_t n = m2rnn_tensor_numel(&c->out[i].t);
        for (int64_t e = 0; e < n; e++) out[i][e] = m2rnn_round_to(out_dtype, out[i][e]);
    }
done:
    for (int i = 0; i < nb; i++) free(bufs[i]);
    return st;
}

void vec_opcase_free(vec_opcase *c)
{
    for (int i = 0; i < c->n_owned; i++) free(c->owned[i]);
    m2rnn_safetensors_free(&c->file);
    memset(c, 0, sizeof *c);
}

/* ---- files ------------------------------------------------------------------------------ */

static void params_string(const vec_params *p, char *buf, size_t size)
{
    snprintf(buf, size,
             "activation=%d eps=%.17g rope=%d rope_theta=%.17g scale=%.17g l2norm_qk=%d has_ignore=%d ignore_index=%lld "
             "heads=%lld q_heads=%lld k_heads=%lld f_heads=%lld w_heads=%lld key_dim=%lld value_dim=%lld kv_heads=%lld "
             "head_dim=%lld clip_mode=%d clip=%.17g",
             p->activation, p->eps, p->rope, p->rope_theta, p->scale, p->l2norm_qk, p->has_ignore, (long long)p->ignore_index,
             (long long)p->heads, (long long)p->q_heads, (long long)p->k_heads, (long long)p->f_heads, (long long)p->w_heads,
             (long long)p->key_dim, (long long)p->value_dim, (long long)p->kv_heads, (long long)p->head_dim, p->clip_mode, p->clip);
}

static bool parse_params(const char *text, vec_params *p)
{
    memset(p, 0, sizeof *p);
    long long ii, h, q, k, f, w, kd, vd, kv, hd;
    int n = sscanf(text,
                   "activation=%d eps=%lf rope=%d rope_theta=%lf scale=%lf l2norm_qk=%d has_ignore=%d ignore_index=%lld "
                   "heads=%lld q_heads=%lld k_heads=%lld f_heads=%lld w_heads=%lld key_dim=%lld value_dim=%lld kv_heads=%lld "
                   "head_dim=%lld clip_mode=%d clip=%lf",
                   &p->activation, &p->eps, &p->rope, &p->rope_theta, &p->scale, &p->l2norm_qk, &p->has_ignore, &ii, &h, &q, &k,
                   &f, &w, &kd, &vd, &kv, &hd, &p->clip_mode, &p->clip);
    p->ignore_index = ii; p->heads = h; p->q_heads = q; p->k_heads = k; p->f_heads = f; p->w_heads = w;
    p->key_dim = kd; p->value_dim = vd; p->kv_heads = kv; p->head_dim = hd;
    return n == 19;
}

m2rnn_status vec_opcase_encode(const vec_opcase *c, const vec_op_spec *s, unsigned char **bytes, size_t *size)
{
    m2rnn_st_entry e[2 * VEC_MAX_TENSORS];
    char names[VEC_MAX_TENSORS][48];
    size_t n = 0;
    for (int i = 0; i < c->n_in; i++) e[n++] = (m2rnn_st_entry){c->in[i].name, c->in[i].t};
    for (int i = 0; i < c->n_out; i++) {
        snprintf(names[i], sizeof names[i], "expected.%s", c->out[i].name);
        e[n++] = (m2rnn_st_entry){names[i], c->out[i].t};
    }
    char params[1024], flags[512];
    params_string(&c->params, params, sizeof params);
    vec_op_case_flags(s, flags, sizeof flags);
    m2rnn_st_meta meta[] = {
        {"id", (char *)c->id},
        {"op", (char *)c->op->name},
        {"storage", (char *)m2rnn_dtype_name(c->storage)},
        {"params", params},
        {"flags", flags},
        {"generator", "m2rnn gen " VEC_GENERATOR_VERSION},
    };
    return m2rnn_safetensors_encode(e, n, meta, sizeof meta / sizeof meta[0], bytes, size);
}

m2rnn_status vec_opcase_load(const char *path, vec_opcase *c)
{
    memset(c, 0, sizeof *c);
    m2rnn_status st = m2rnn_safetensors_read(path, &c->file);
    if (st) return st;
    const char *id = m2rnn_safetensors_meta(&c->file, "id"), *op = m2rnn_safetensors_meta(&c->file, "op");
    const char *params = m2rnn_safetensors_meta(&c->file, "params"), *storage = m2rnn_safetensors_meta(&c->file, "storage");
    if (!id || !op || !params || !storage) st = m2rnn_set_error(M2RNN_ERR_FORMAT, "%s: metadata must give id, op, storage and params", path);
    else if (!(c->op = vec_opdesc_find(op))) st = m2rnn_set_error(M2RNN_ERR_FORMAT, "%s: unknown op '%s'", path, op);
    else if (!parse_params(params, &c->params)) st = m2rnn_set_error(M2RNN_ERR_FORMAT, "%s: params '%s' do not parse", path, params);
    if (st) { vec_opcase_free(c); return st; }
    snprintf(c->id, sizeof c->id, "%s", id);
    c->storage = strcmp(storage, "BF16") == 0 || strcmp(storage, "bf16") == 0 ? BF16 : strcmp(storage, "F64") == 0 ? M2RNN_F64 : F32;
    for (size_t i = 0; i < c->file.n_tensors; i++) {
        const char *name = c->file.tensors[i].name;
        bool expected = strncmp(name, "expected.", 9) == 0;
        if ((expected ? c->n_out : c->n_in) == VEC_MAX_TENSORS || strlen(name) >= 40) {
            vec_opcase_free(c);
            return m2rnn_set_error(M2RNN_ERR_FORMAT, "%s: too many tensors or a name too long", path);
        }
        vec_named *nt = expected ? &c->out[c->n_out++] : &c->in[c->n_in++];
        snprintf(nt->name, sizeof nt->name, "%s", expected ? name + 9 : name);
        nt->t = c->file.tensors[i].tensor;
        if (expected && nt->t.dtype != M2RNN_F64) {
            vec_opcase_free(c);
            return m2rnn_set_error(M2RNN_ERR_FORMAT, "%s: '%s' is not F64", path, name);
        }
    }
    return M2RNN_OK;
}
