/*
 * The case catalogue of the golden vectors, and how a case's data is made.
 *
 * Every case exists to catch something. The tag says what; the flags (derived from the shape,
 * plus a few given by hand) are what the manifest records. The catalogue covers issue 3's list:
 * K ∈ {9,16,64,80,128}, V ∈ {9,16,64}; head groups of size 1, 2 and N for each of q, k, v, f, W
 * (N = 4: counts 4, 2, 1); the paper's layer slice (K=64, V=16, Nq=Nk=1, N=8); h0 absent and
 * present; dht zero and random; varlen with unequal lengths, a length-1 and an empty sequence;
 * clipping off / c = 0 / small / large × carry / total; S ∈ {1, 2, 33, 127, 1024}; f32 and bf16
 * storage; the three data regimes.
 *
 * Data are deterministic in the case id: a xoshiro256** stream seeded by splitmix64 of the id's
 * FNV-1a hash, normals as a sum of 12 uniforms (Irwin–Hall; no libm, so the same bits on every
 * machine), and the few transcendental values of the model-init regime computed with our own
 * exp and log (+, −, ×, ÷ only). Every value is rounded once to the storage dtype.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scalar_math.h"
#include "vectors.h"

const char *const vec_class_names[VEC_N_CLASSES] = {"f64", "f32", "tf32", "bf16"};
const char *const vec_output_names[VEC_N_OUTPUTS] = {"y", "ht", "dq", "dk", "dv", "dW", "df", "dh0"};
const char *const vec_input_names[VEC_N_INPUTS] = {"q", "k", "v", "W", "f", "h0", "cu_seqlens", "dy", "dht"};

int vec_class_index(const char *name)
{
    for (int c = 0; c < VEC_N_CLASSES; c++)
        if (name && strcmp(name, vec_class_names[c]) == 0) return c;
    return -1;
}

m2rnn_dtype vec_class_output_dtype(int cls)
{
    return cls == 0 ? M2RNN_F64 : cls == 3 ? M2RNN_BF16 : M2RNN_F32;
}

const char *vec_regime_name(vec_regime r)
{
    return r == VEC_MODEL_INIT ? "MODEL_INIT" : r == VEC_NON_CONTRACTIVE ? "NON_CONTRACTIVE" : "GENERIC";
}

/* ---- the catalogue ---------------------------------------------------------------------- */

#define F32 M2RNN_F32
#define BF16 M2RNN_BF16
#define GEN VEC_GENERIC
#define INIT VEC_MODEL_INIT
#define NONC VEC_NON_CONTRACTIVE

static const vec_spec catalogue[] = {
    /* head dims: odd sizes (padded lanes), K > 64 (K tiles), V = 64 */
    {.tag = "k9v9", .batch = 2, .seqlen = 33, .K = 9, .V = 9, .Nq = 2, .Nk = 2, .Nv = 2, .Nf = 2, .Nw = 2, .storage = F32,
     .regime = GEN, .h0 = true, .dht = true, .comment = "K and V not powers of two: padded lanes must not be read"},
    {.tag = "k16v16", .batch = 2, .seqlen = 33, .K = 16, .V = 16, .Nq = 2, .Nk = 2, .Nv = 2, .Nf = 2, .Nw = 2, .storage = F32,
     .regime = GEN, .comment = "plain case, no h0, no dht"},
    {.tag = "k64v64", .batch = 1, .seqlen = 33, .K = 64, .V = 64, .Nq = 1, .Nk = 1, .Nv = 1, .Nf = 1, .Nw = 1, .storage = F32,
     .regime = GEN, .h0 = true, .dht = true, .comment = "V = 64: a full V×V tile of W"},
    {.tag = "k80v16", .batch = 1, .seqlen = 33, .K = 80, .V = 16, .Nq = 2, .Nk = 2, .Nv = 2, .Nf = 2, .Nw = 2, .storage = F32,
     .regime = GEN, .h0 = true, .dht = true, .comment = "K = 80 > 64: a second, partial K tile must add to y, dv, df"},
    {.tag = "k128v9", .batch = 1, .seqlen = 33, .K = 128, .V = 9, .Nq = 1, .Nk = 1, .Nv = 1, .Nf = 1, .Nw = 1, .storage = F32,
     .regime = GEN, .h0 = true, .dht = true, .comment = "K = 128: two full K tiles; V = 9 odd"},
    /* head groups: N = 4, counts 4 (G=1), 2 (G=2), 1 (G=N) for each of q, k, v, f, W */
    {.tag = "heads-all4", .batch = 2, .seqlen = 33, .K = 16, .V = 16, .Nq = 4, .Nk = 4, .Nv = 4, .Nf = 4, .Nw = 4,
     .storage = F32, .regime = GEN, .h0 = true, .dht = true, .comment = "four independent heads, nothing shared"},
    {.tag = "heads-mixA", .batch = 2, .seqlen = 33, .K = 16, .V = 16, .Nq = 2, .Nk = 1, .Nv = 4, .Nf = 2, .Nw = 1,
     .storage = F32, .regime = GEN, .h0 = true, .dht = true,
     .comment = "q, f shared by pairs (n/2, not n%2); k and W shared by all heads: their gradients are sums"},
    {.tag = "heads-mixB", .batch = 2, .seqlen = 33, .K = 16, .V = 16, .Nq = 1, .Nk = 2, .Nv = 2, .Nf = 4, .Nw = 2,
     .storage = F32, .regime = GEN, .h0 = true, .dht = true, .comment = "q shared by all heads; k, v, W shared by pairs"},
    {.tag = "heads-vf1", .batch = 2, .seqlen = 33, .K = 16, .V = 9, .Nq = 4, .Nk = 4, .Nv = 1, .Nf = 1, .Nw = 4,
     .storage = F32, .regime = GEN, .h0 = true, .dht = true, .comment = "v and f shared by all heads"},
    /* the paper's layer slice */
    {.tag = "paper", .batch = 1, .seqlen = 48, .K = 64, .V = 16, .Nq = 1, .Nk = 1, .Nv = 8, .Nf = 8, .Nw = 8,
     .storage = F32, .regime = INIT, .comment = "the paper's layer slice as trained: K=64, V=16, Nq=Nk=1, model-init data, no h0"},
    {.tag = "paper-state", .batch = 1, .seqlen = 33, .K = 64, .V = 16, .Nq = 1, .Nk = 1, .Nv = 8, .Nf = 8, .Nw = 8,
     .storage = F32, .regime = INIT, .h0 = true, .dht = true, .comment = "the paper's slice carrying a state in and out"},
    {.tag = "paper-generic", .batch = 1, .seqlen = 33, .K = 64, .V = 16, .Nq = 1, .Nk = 1, .Nv = 8, .Nf = 8, .Nw = 8,
     .storage = F32, .regime = GEN, .h0 = true, .dht = true, .comment = "the paper's slice on generic contractive data"},
    /* varlen */
    {.tag = "varlen", .n_seqs = 4, .seqs = {7, 1, 0, 33}, .K = 16, .V = 9, .Nq = 2, .Nk = 1, .Nv = 2, .Nf = 2, .Nw = 2,
     .storage = F32, .regime = GEN, .h0 = true, .dht = true,
     .comment = "packed sequences of 7, 1, 0 and 33 tokens: each starts from its own h0, none leaks into another"},
    {.tag = "varlen-noh0", .n_seqs = 5, .seqs = {0, 20, 3, 1, 9}, .K = 9, .V = 16, .Nq = 2, .Nk = 2, .Nv = 2, .Nf = 2,
     .Nw = 1, .storage = F32, .regime = GEN, .comment = "packed, empty first sequence, no h0 and no dht"},
    /* clipping (SPEC §1.2) */
    {.tag = "clip", .batch = 2, .seqlen = 33, .K = 16, .V = 9, .Nq = 2, .Nk = 2, .Nv = 2, .Nf = 2, .Nw = 2, .storage = F32,
     .regime = GEN, .h0 = true, .dht = true, .clip_mode = M2RNN_CLIP_CARRY, .clip = 0.0, .comment = "carry clip with c = 0"},
    {.tag = "clip", .batch = 2, .seqlen = 33, .K = 16, .V = 9, .Nq = 2, .Nk = 2, .Nv = 2, .Nf = 2, .Nw = 2, .storage = F32,
     .regime = GEN, .h0 = true, .dht = true, .clip_mode = M2RNN_CLIP_CARRY, .clip = -0.05, .flags = "CLIP_NEGATIVE",
     .comment = "carry clip, small c given as -0.05 (|c| is used): active on most elements"},
    {.tag = "clip", .batch = 2, .seqlen = 33, .K = 16, .V = 9, .Nq = 2, .Nk = 2, .Nv = 2, .Nf = 2, .Nw = 2, .storage = F32,
     .regime = GEN, .h0 = true, .dht = true, .clip_mode = M2RNN_CLIP_CARRY, .clip = 1.5,
     .comment = "carry clip, large c: active on the tails only"},
    {.tag = "clip", .batch = 2, .seqlen = 33, .K = 16, .V = 9, .Nq = 2, .Nk = 2, .Nv = 2, .Nf = 2, .Nw = 2, .storage = F32,
     .regime = GEN, .h0 = true, .dht = true, .clip_mode = M2RNN_CLIP_TOTAL, .clip = 0.0, .comment = "total clip with c = 0"},
    {.tag = "clip", .batch = 2, .seqlen = 33, .K = 16, .V = 9, .Nq = 2, .Nk = 2, .Nv = 2, .Nf = 2, .Nw = 2, .storage = F32,
     .regime = GEN, .h0 = true, .dht = true, .clip_mode = M2RNN_CLIP_TOTAL, .clip = 0.05, .comment = "total clip, small c"},
    {.tag = "clip", .batch = 2, .seqlen = 33, .K = 16, .V = 9, .Nq = 2, .Nk = 2, .Nv = 2, .Nf = 2, .Nw = 2, .storage = F32,
     .regime = GEN, .h0 = true, .dht = true, .clip_mode = M2RNN_CLIP_TOTAL, .clip = 1.5, .comment = "total clip, large c"},
    /* sequence lengths */
    {.tag = "s1", .batch = 3, .seqlen = 1, .K = 16, .V = 16, .Nq = 2, .Nk = 2, .Nv = 2, .Nf = 2, .Nw = 2, .storage = F32,
     .regime = GEN, .h0 = true, .dht = true, .comment = "one step: the first step is also the last"},
    {.tag = "s2", .batch = 2, .seqlen = 2, .K = 16, .V = 16, .Nq = 1, .Nk = 2, .Nv = 2, .Nf = 2, .Nw = 2, .storage = F32,
     .regime = GEN, .dht = true, .comment = "two steps, no h0"},
    {.tag = "s127", .batch = 1, .seqlen = 127, .K = 9, .V = 16, .Nq = 2, .Nk = 2, .Nv = 2, .Nf = 2, .Nw = 2,
     .storage = F32, .regime = GEN, .h0 = true, .dht = true, .comment = "127 steps"},
    {.tag = "s1024", .batch = 1, .seqlen = 1024, .K = 16, .V = 9, .Nq = 1, .Nk = 1, .Nv = 1, .Nf = 1, .Nw = 1,
     .storage = F32, .regime = GEN, .h0 = true, .dht = true, .comment = "a long sequence: error growth over 1024 steps"},
    {.tag = "s1024-init", .batch = 1, .seqlen = 1024, .K = 16, .V = 16, .Nq = 1, .Nk = 1, .Nv = 1, .Nf = 1, .Nw = 1,
     .storage = F32, .regime = INIT, .comment = "a long sequence on model-init data (f close to 1: long memory)"},
    /* not contractive: rounding is amplified */
    {.tag = "noncontractive", .batch = 2, .seqlen = 33, .K = 16, .V = 16, .Nq = 2, .Nk = 2, .Nv = 2, .Nf = 2, .Nw = 2,
     .storage = F32, .regime = NONC, .h0 = true, .dht = true,
     .comment = "W = 2·orthogonal (spectral norm 2), f in (0.05, 0.5): the recurrence amplifies rounding; tolerances say by how much"},
    {.tag = "noncontractive", .batch = 1, .seqlen = 127, .K = 16, .V = 16, .Nq = 1, .Nk = 1, .Nv = 2, .Nf = 2, .Nw = 2,
     .storage = F32, .regime = NONC, .h0 = true, .dht = true, .comment = "W of spectral norm 2 over 127 steps"},

    /* bf16 storage: bf16-representable inputs, the same teeth */
    {.tag = "k9v9", .batch = 2, .seqlen = 33, .K = 9, .V = 9, .Nq = 2, .Nk = 2, .Nv = 2, .Nf = 2, .Nw = 2, .storage = BF16,
     .regime = GEN, .h0 = true, .dht = true, .comment = "bf16: K and V not powers of two"},
    {.tag = "k80v16", .batch = 1, .seqlen = 33, .K = 80, .V = 16, .Nq = 2, .Nk = 2, .Nv = 2, .Nf = 2, .Nw = 2, .storage = BF16,
     .regime = GEN, .h0 = true, .dht = true, .comment = "bf16: K = 80 > 64"},
    {.tag = "heads-mixA", .batch = 2, .seqlen = 33, .K = 16, .V = 16, .Nq = 2, .Nk = 1, .Nv = 4, .Nf = 2, .Nw = 1,
     .storage = BF16, .regime = GEN, .h0 = true, .dht = true, .comment = "bf16: shared heads"},
    {.tag = "heads-mixB", .batch = 2, .seqlen = 33, .K = 16, .V = 16, .Nq = 1, .Nk = 2, .Nv = 2, .Nf = 4, .Nw = 2,
     .storage = BF16, .regime = GEN, .h0 = true, .dht = true, .comment = "bf16: shared heads"},
    {.tag = "paper", .batch = 1, .seqlen = 48, .K = 64, .V = 16, .Nq = 1, .Nk = 1, .Nv = 8, .Nf = 8, .Nw = 8,
     .storage = BF16, .regime = INIT, .comment = "bf16: the paper's layer slice as trained"},
    {.tag = "paper-state", .batch = 1, .seqlen = 33, .K = 64, .V = 16, .Nq = 1, .Nk = 1, .Nv = 8, .Nf = 8, .Nw = 8,
     .storage = BF16, .regime = INIT, .h0 = true, .dht = true, .comment = "bf16: the paper's slice with a state in and out"},
    {.tag = "varlen", .n_seqs = 4, .seqs = {7, 1, 0, 33}, .K = 16, .V = 9, .Nq = 2, .Nk = 1, .Nv = 2, .Nf = 2, .Nw = 2,
     .storage = BF16, .regime = GEN, .h0 = true, .dht = true, .comment = "bf16: packed sequences of 7, 1, 0, 33 tokens"},
    {.tag = "clip", .batch = 2, .seqlen = 33, .K = 16, .V = 9, .Nq = 2, .Nk = 2, .Nv = 2, .Nf = 2, .Nw = 2, .storage = BF16,
     .regime = GEN, .h0 = true, .dht = true, .clip_mode = M2RNN_CLIP_CARRY, .clip = 0.05, .comment = "bf16: carry clip, small c"},
    {.tag = "clip", .batch = 2, .seqlen = 33, .K = 16, .V = 9, .Nq = 2, .Nk = 2, .Nv = 2, .Nf = 2, .Nw = 2, .storage = BF16,
     .regime = GEN, .h0 = true, .dht = true, .clip_mode = M2RNN_CLIP_TOTAL, .clip = 0.05, .comment = "bf16: total clip, small c"},
    {.tag = "s1024", .batch = 1, .seqlen = 1024, .K = 16, .V = 9, .Nq = 1, .Nk = 1, .Nv = 1, .Nf = 1, .Nw = 1,
     .storage = BF16, .regime = GEN, .h0 = true, .dht = true, .comment = "bf16: a long sequence with the state rounded every step"},
    {.tag = "s1024-init", .batch = 1, .seqlen = 1024, .K = 16, .V = 16, .Nq = 1, .Nk = 1, .Nv = 1, .Nf = 1, .Nw = 1,
     .storage = BF16, .regime = INIT, .comment = "bf16: long memory (f near 1) over 1024 steps: a biased rounding of the state accumulates"},
    {.tag = "noncontractive", .batch = 2, .seqlen = 33, .K = 16, .V = 16, .Nq = 2, .Nk = 2, .Nv = 2, .Nf = 2, .Nw = 2,
     .storage = BF16, .regime = NONC, .h0 = true, .dht = true, .comment = "bf16: not contractive"},
};

const vec_spec *vec_catalogue(size_t *n)
{
    *n = sizeof catalogue / sizeof catalogue[0];
    return catalogue;
}

static const char *clip_mode_name(m2rnn_clip_mode m)
{
    return m == M2RNN_CLIP_CARRY ? "carry" : m == M2RNN_CLIP_TOTAL ? "total" : "none";
}

void vec_case_id(const vec_spec *s, char *buf, size_t size)
{
    char layout[96];
    if (s->n_seqs > 0) {
        int n = snprintf(layout, sizeof layout, "varlen");
        for (int i = 0; i < s->n_seqs; i++) n += snprintf(layout + n, sizeof layout - (size_t)n, "%s%d", i ? "-" : "", s->seqs[i]);
    } else {
        snprintf(layout, sizeof layout, "B%dxS%d", s->batch, s->seqlen);
    }
    char clip[48] = "";
    if (s->clip_mode != M2RNN_CLIP_NONE) snprintf(clip, sizeof clip, ".clip-%s%g", clip_mode_name(s->clip_mode), s->clip);
    snprintf(buf, size, "recurrence.%s.K%d.V%d.H%d-%d-%d-%d-%d.%s.%s%s%s%s.%s", layout, s->K, s->V, s->Nq, s->Nk, s->Nv,
             s->Nf, s->Nw, s->storage == M2RNN_BF16 ? "bf16" : "f32",
             s->regime == VEC_MODEL_INIT ? "init" : s->regime == VEC_NON_CONTRACTIVE ? "noncontractive" : "generic",
             s->h0 ? ".h0" : "", s->dht ? ".dht" : "", clip, s->tag);
}

static void add_flag(char *buf, size_t size, const char *flag)
{
    size_t n = strlen(buf);
    snprintf(buf + n, size > n ? size - n : 0, "%s%s", n ? " " : "", flag);
}

void vec_case_flags(const vec_spec *s, char *buf, size_t size)
{
    buf[0] = '\0';
    add_flag(buf, size, s->storage == M2RNN_BF16 ? "STORAGE_BF16" : "STORAGE_F32");
    add_flag(buf, size, vec_regime_name(s->regime));
    if (s->K > 64) add_flag(buf, size, "K_GT_64");
    if (s->K & (s->K - 1)) add_flag(buf, size, "K_NOT_POW2");
    if (s->V & (s->V - 1)) add_flag(buf, size, "V_NOT_POW2");
    int N = s->Nq;
    const int counts[5] = {s->Nq, s->Nk, s->Nv, s->Nf, s->Nw};
    for (int i = 0; i < 5; i++) if (counts[i] > N) N = counts[i];
    static const char *names[5] = {"Q", "K", "V", "F", "W"};
    for (int i = 0; i < 5; i++) {
        char f[32];
        if (counts[i] == N) continue;
        snprintf(f, sizeof f, "SHARED_%s_G%s", names[i], counts[i] == 1 ? "N" : "2");
        if (counts[i] != 1 && N / counts[i] != 2) snprintf(f, sizeof f, "SHARED_%s_G%d", names[i], N / counts[i]);
        add_flag(buf, size, f);
    }
    if (s->K == 64 && s->V == 16 && s->Nq == 1 && s->Nk == 1 && N >= 8) add_flag(buf, size, "PAPER_SLICE");
    add_flag(buf, size, s->h0 ? "H0_PRESENT" : "H0_ABSENT");
    add_flag(buf, size, s->dht ? "DHT_NONZERO" : "DHT_ZERO");
    if (s->n_seqs > 0) {
        add_flag(buf, size, "VARLEN");
        bool empty = false, one = false;
        for (int i = 0; i < s->n_seqs; i++) { empty |= s->seqs[i] == 0; one |= s->seqs[i] == 1; }
        if (empty) add_flag(buf, size, "VARLEN_EMPTY_SEQ");
        if (one) add_flag(buf, size, "VARLEN_LEN1_SEQ");
    } else {
        char f[32];
        snprintf(f, sizeof f, "S_%d", s->seqlen);
        add_flag(buf, size, f);
        if (s->seqlen >= 1024) add_flag(buf, size, "LONG_SEQ");
    }
    if (s->clip_mode == M2RNN_CLIP_CARRY) add_flag(buf, size, "CLIP_CARRY");
    if (s->clip_mode == M2RNN_CLIP_TOTAL) add_flag(buf, size, "CLIP_TOTAL");
    if (s->clip_mode != M2RNN_CLIP_NONE) add_flag(buf, size, s->clip == 0.0 ? "CLIP_ZERO" : fabs(s->clip) < 1 ? "CLIP_SMALL" : "CLIP_LARGE");
    if (s->flags) add_flag(buf, size, s->flags);
}

/* ---- deterministic random numbers ------------------------------------------------------- */

typedef struct { uint64_t s[4]; } rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, const char *id)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) h = (h ^ *p) * 0x100000001b3ull;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&h);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(rng *r) /* xoshiro256** */
{
    uint64_t *s = r->s, result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45);
    return result;
}

static double rng_uniform(rng *r) { return (double)(rng_next(r) >> 11) * 0x1p-53; } /* [0, 1) */

/* Approximately standard normal: 12 uniforms minus 6 (mean 0, variance 1, tails cut at ±6). */
static double rng_normal(rng *r)
{
    double s = 0.0;
    for (int i = 0; i < 12; i++) s += rng_uniform(r);
    return s - 6.0;
}

/* exp(x) for x <= 0 and log(x) for x > 0 with +, −, ×, ÷ only (bit-identical everywhere). */
static double det_exp_neg(double x) { return x < -40.0 ? 0.0 : m2rnn_expm1_negative(x) + 1.0; }

static double det_log(double x)
{
    int e;
    double m = frexp(x, &e); /* x = m·2^e, m in [0.5, 1) */
    if (m < 0.70710678118654752) { m *= 2.0; e--; }
    double s = (m - 1.0) / (m + 1.0), s2 = s * s, term = s, sum = 0.0;
    for (int k = 1; k < 40; k += 2) { sum += term / k; term *= s2; }  /* log m = 2 atanh s */
    return 2.0 * sum + e * 0.69314718055994530942;
}

static double silu(double x) { return x / (1.0 + (x >= 0 ? det_exp_neg(-x) : 1.0 / det_exp_neg(x))); }

static double softplus(double u) { return (u > 0 ? u : 0.0) + det_log(1.0 + det_exp_neg(-fabs(u))); }

/* ---- making a case ---------------------------------------------------------------------- */

static m2rnn_tensor alloc_tensor(vec_case *c, int slot, m2rnn_dtype dtype, int rank, const int64_t *shape)
{
    m2rnn_tensor t = m2rnn_tensor_make(NULL, dtype, rank, shape);
    size_t nb = m2rnn_tensor_nbytes(&t);
    t.data = calloc(nb ? nb : 1, 1);
    c->owned[slot] = t.data;
    return t;
}

/* Scale each V×V head of W to the given spectral norm (power iteration on WᵀW, fixed count). */
static void set_spectral_norm(double *W, int64_t nw, int64_t V, double target)
{
    double *x = malloc((size_t)V * sizeof(double)), *y = malloc((size_t)V * sizeof(double));
    for (int64_t h = 0; h < nw; h++) {
        double *M = W + h * V * V, sigma = 0.0;
        for (int64_t i = 0; i < V; i++) x[i] = 1.0 + 0.01 * (double)i;
        for (int it = 0; it < 200; it++) {
            for (int64_t i = 0; i < V; i++) { y[i] = 0; for (int64_t j = 0; j < V; j++) y[i] += M[i * V + j] * x[j]; }
            for (int64_t j = 0; j < V; j++) { x[j] = 0; for (int64_t i = 0; i < V; i++) x[j] += M[i * V + j] * y[i]; }
            double nx = 0.0;
            for (int64_t j = 0; j < V; j++) nx += x[j] * x[j];
            nx = sqrt(nx);
            sigma = sqrt(nx); /* ‖WᵀW x‖ for a unit x converges to σ² */
            for (int64_t j = 0; j < V; j++) x[j] /= nx;
        }
        for (int64_t e = 0; e < V * V; e++) M[e] *= target / sigma;
    }
    free(x);
    free(y);
}

/* The shape of a per-token tensor: (B,S,heads[,dim]) dense, (T,heads[,dim]) varlen. */
static int token_shape(bool varlen, int64_t B, int64_t S, int64_t T, int64_t heads, int64_t dim, int64_t *shp)
{
    int rank = 0;
    if (varlen) shp[rank++] = T;
    else { shp[rank++] = B; shp[rank++] = S; }
    shp[rank++] = heads;
    if (dim > 0) shp[rank++] = dim;
    return rank;
}

/* Replace each V×V head by scale·Q, Q from Gram–Schmidt on its rows (sqrt is exact-rounded:
 * still bit-identical everywhere). */
static void orthogonalise(double *W, int64_t nw, int64_t V, double scale)
{
    for (int64_t h = 0; h < nw; h++) {
        double *M = W + h * V * V;
        for (int64_t i = 0; i < V; i++) {
            for (int64_t p = 0; p < i; p++) {
                double dotp = 0.0;
                for (int64_t j = 0; j < V; j++) dotp += M[i * V + j] * M[p * V + j];
                for (int64_t j = 0; j < V; j++) M[i * V + j] -= dotp * M[p * V + j];
            }
            double nrm = 0.0;
            for (int64_t j = 0; j < V; j++) nrm += M[i * V + j] * M[i * V + j];
            nrm = sqrt(nrm);
            for (int64_t j = 0; j < V; j++) M[i * V + j] /= nrm;
        }
        for (int64_t e = 0; e < V * V; e++) M[e] *= scale;
    }
}

static void store(m2rnn_tensor *t, const double *x)
{
    m2rnn_tensor_from_f64(t, x); /* one rounding to the storage dtype */
}

m2rnn_status vec_case_generate(const vec_spec *s, vec_case *c)
{
    memset(c, 0, sizeof *c);
    vec_case_id(s, c->id, sizeof c->id);
    c->clip_mode = s->clip_mode;
    c->clip = s->clip;
    c->storage = s->storage;
    rng r;
    rng_seed(&r, c->id);

    const bool varlen = s->n_seqs > 0;
    int64_t B = varlen ? s->n_seqs : s->batch, T = 0;
    if (varlen) for (int i = 0; i < s->n_seqs; i++) T += s->seqs[i];
    else T = (int64_t)s->batch * s->seqlen;
    int64_t N = s->Nq;
    const int64_t counts[5] = {s->Nq, s->Nk, s->Nv, s->Nf, s->Nw};
    for (int i = 0; i < 5; i++) if (counts[i] > N) N = counts[i];
    const int64_t K = s->K, V = s->V;

    /* Shapes: dense (B,S,H,D) or varlen (T,H,D). */
    int64_t shp[5];
    int rank;
    m2rnn_dtype sd = s->storage;
    rank = token_shape(varlen, B, s->seqlen, T, s->Nq, K, shp); c->in[VEC_Q] = alloc_tensor(c, VEC_Q, sd, rank, shp);
    rank = token_shape(varlen, B, s->seqlen, T, s->Nk, K, shp); c->in[VEC_K] = alloc_tensor(c, VEC_K, sd, rank, shp);
    rank = token_shape(varlen, B, s->seqlen, T, s->Nv, V, shp); c->in[VEC_V] = alloc_tensor(c, VEC_V, sd, rank, shp);
    rank = token_shape(varlen, B, s->seqlen, T, s->Nf, 0, shp); c->in[VEC_F] = alloc_tensor(c, VEC_F, sd, rank, shp);
    rank = token_shape(varlen, B, s->seqlen, T, N, V, shp); c->in[VEC_DYIN] = alloc_tensor(c, VEC_DYIN, sd, rank, shp);
    int64_t wshape[3] = {s->Nw, V, V}, state[4] = {B, N, K, V}, cushape[1] = {B + 1};
    c->in[VEC_W] = alloc_tensor(c, VEC_W, sd, 3, wshape);
    if (s->h0) c->in[VEC_H0] = alloc_tensor(c, VEC_H0, sd, 4, state);
    if (s->dht) c->in[VEC_DHT] = alloc_tensor(c, VEC_DHT, sd, 4, state);
    if (varlen) {
        c->in[VEC_CU] = alloc_tensor(c, VEC_CU, M2RNN_I32, 1, cushape);
        int32_t *cu = c->in[VEC_CU].data;
        for (int i = 0; i < s->n_seqs; i++) cu[i + 1] = cu[i] + s->seqs[i];
    }
    for (int i = 0; i < VEC_N_INPUTS; i++)
        if (i != VEC_H0 && i != VEC_DHT && i != VEC_CU && !c->in[i].data) return m2rnn_set_error(M2RNN_ERR_NOMEM, "gen: out of memory");

    /* The data, in a fixed order: q k v W f h0 dy dht. */
    int64_t nmax = T * N * (K > V ? K : V) + B * N * K * V + 16 * 16 * 8 + 64;
    double *x = malloc((size_t)nmax * sizeof(double));
    int64_t n;
    /* q, k, v: post-SiLU at model init, N(0,1) generic, N(0, 0.5²) non-contractive (keeps tanh
     * off saturation, where the expansion of 2·Q shows). */
    const double scale = s->regime == VEC_NON_CONTRACTIVE ? 0.5 : 1.0;
    n = m2rnn_tensor_numel(&c->in[VEC_Q]);
    for (int64_t i = 0; i < n; i++) x[i] = s->regime == VEC_MODEL_INIT ? silu(rng_normal(&r)) : scale * rng_normal(&r);
    store(&c->in[VEC_Q], x);
    n = m2rnn_tensor_numel(&c->in[VEC_K]);
    for (int64_t i = 0; i < n; i++) x[i] = s->regime == VEC_MODEL_INIT ? silu(rng_normal(&r)) : scale * rng_normal(&r);
    store(&c->in[VEC_K], x);
    n = m2rnn_tensor_numel(&c->in[VEC_V]);
    for (int64_t i = 0; i < n; i++) x[i] = s->regime == VEC_MODEL_INIT ? silu(rng_normal(&r)) : scale * rng_normal(&r);
    store(&c->in[VEC_V], x);

    n = m2rnn_tensor_numel(&c->in[VEC_W]);
    if (s->regime == VEC_MODEL_INIT) {
        /* W = I at init; a little noise so that W and Wᵀ differ (as after some training). */
        for (int64_t i = 0; i < n; i++) {
            int64_t e = i % (V * V);
            x[i] = (e / V == e % V ? 1.0 : 0.0) + 0.02 * rng_normal(&r);
        }
    } else if (s->regime == VEC_NON_CONTRACTIVE) {
        /* 2·Q, Q orthogonal: spectral norm 2 and every eigenvalue of modulus 2, so (1-f)·W
         * expands wherever tanh is not saturated. (A Gaussian W scaled to norm 2 has spectral
         * radius ≈ 1 and stays contractive in practice.) */
        for (int64_t i = 0; i < n; i++) x[i] = rng_normal(&r);
        orthogonalise(x, s->Nw, V, 2.0);
    } else {
        for (int64_t i = 0; i < n; i++) x[i] = rng_normal(&r);
        set_spectral_norm(x, s->Nw, V, 0.9);
    }
    store(&c->in[VEC_W], x);

    n = m2rnn_tensor_numel(&c->in[VEC_F]);
    if (s->regime == VEC_MODEL_INIT) {
        /* The decay gate at init (SPEC §2): per head A ~ U(0,16), dt log-uniform in [1e-3, 0.1],
         * dt_bias = dt + log(-expm1(-dt)); f = exp(-A softplus(x + dt_bias)) with x the projection
         * output, N(0, 0.64) for W_in ~ N(0, 0.02) on unit-RMS inputs of width 1024. */
        double A[64], bias[64];
        for (int h = 0; h < s->Nf; h++) {
            A[h] = 16.0 * rng_uniform(&r);
            double dt = det_exp_neg(-6.907755278982137 + rng_uniform(&r) * 4.605170185988091);
            if (dt < 1e-4) dt = 1e-4;
            bias[h] = dt + det_log(-(det_exp_neg(-dt) - 1.0));
        }
        for (int64_t i = 0; i < n; i++) {
            int h = (int)(i % s->Nf);
            x[i] = det_exp_neg(-A[h] * softplus(0.64 * rng_normal(&r) + bias[h]));
        }
    } else {
        double lo = 0.05, hi = s->regime == VEC_NON_CONTRACTIVE ? 0.5 : 0.95;
        for (int64_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * rng_uniform(&r);
    }
    store(&c->in[VEC_F], x);

    if (s->h0) {
        n = m2rnn_tensor_numel(&c->in[VEC_H0]);
        for (int64_t i = 0; i < n; i++) x[i] = 0.9 * (2.0 * rng_uniform(&r) - 1.0);
        store(&c->in[VEC_H0], x);
    }
    n = m2rnn_tensor_numel(&c->in[VEC_DYIN]);
    for (int64_t i = 0; i < n; i++) x[i] = rng_normal(&r);
    store(&c->in[VEC_DYIN], x);
    if (s->dht) {
        n = m2rnn_tensor_numel(&c->in[VEC_DHT]);
        for (int64_t i = 0; i < n; i++) x[i] = rng_normal(&r);
        store(&c->in[VEC_DHT], x);
    }
    free(x);

    /* Expected outputs: the reference, in F64, on exactly the stored inputs. */
    const m2rnn_tensor *shape_of[VEC_N_OUTPUTS] = {&c->in[VEC_DYIN], NULL, &c->in[VEC_Q], &c->in[VEC_K], &c->in[VEC_V],
                                                   &c->in[VEC_W], &c->in[VEC_F], NULL};
    for (int o = 0; o < VEC_N_OUTPUTS; o++) {
        const m2rnn_tensor *like = shape_of[o];
        c->out[o] = like ? alloc_tensor(c, VEC_N_INPUTS + o, M2RNN_F64, like->rank, like->shape)
                         : alloc_tensor(c, VEC_N_INPUTS + o, M2RNN_F64, 4, state);
        if (!c->out[o].data) return m2rnn_set_error(M2RNN_ERR_NOMEM, "gen: out of memory");
    }
    m2rnn_recurrence_forward_args fa;
    vec_forward_args(c, &fa);
    fa.y = c->out[VEC_Y];
    fa.ht = c->out[VEC_HT];
    m2rnn_status st = m2rnn_recurrence_forward_ref(&fa);
    if (st) return st;
    m2rnn_recurrence_backward_args ba;
    vec_backward_args(c, &ba);
    ba.dq = c->out[VEC_DQ]; ba.dk = c->out[VEC_DK]; ba.dv = c->out[VEC_DV];
    ba.dW = c->out[VEC_DW]; ba.df = c->out[VEC_DF]; ba.dh0 = c->out[VEC_DH0];
    return m2rnn_recurrence_backward_ref(&ba);
}

void vec_case_free(vec_case *c)
{
    for (int i = 0; i < VEC_N_INPUTS + VEC_N_OUTPUTS; i++) free(c->owned[i]);
    m2rnn_safetensors_free(&c->file);
    memset(c, 0, sizeof *c);
}

void vec_forward_args(const vec_case *c, m2rnn_recurrence_forward_args *a)
{
    memset(a, 0, sizeof *a);
    a->in.q = c->in[VEC_Q]; a->in.k = c->in[VEC_K]; a->in.v = c->in[VEC_V]; a->in.W = c->in[VEC_W];
    a->in.f = c->in[VEC_F]; a->in.h0 = c->in[VEC_H0]; a->in.cu_seqlens = c->in[VEC_CU];
}

void vec_backward_args(const vec_case *c, m2rnn_recurrence_backward_args *a)
{
    memset(a, 0, sizeof *a);
    a->in.q = c->in[VEC_Q]; a->in.k = c->in[VEC_K]; a->in.v = c->in[VEC_V]; a->in.W = c->in[VEC_W];
    a->in.f = c->in[VEC_F]; a->in.h0 = c->in[VEC_H0]; a->in.cu_seqlens = c->in[VEC_CU];
    a->dy = c->in[VEC_DYIN];
    a->dht = c->in[VEC_DHT];
    a->clip_mode = c->clip_mode;
    a->clip = c->clip;
}

/* ---- files ------------------------------------------------------------------------------ */

m2rnn_status vec_case_encode(const vec_case *c, const vec_spec *s, unsigned char **bytes, size_t *size)
{
    m2rnn_st_entry e[VEC_N_INPUTS + VEC_N_OUTPUTS];
    size_t n = 0;
    for (int i = 0; i < VEC_N_INPUTS; i++)
        if (c->in[i].data) e[n++] = (m2rnn_st_entry){vec_input_names[i], c->in[i]};
    char names[VEC_N_OUTPUTS][16];
    for (int o = 0; o < VEC_N_OUTPUTS; o++) {
        snprintf(names[o], sizeof names[o], "expected.%s", vec_output_names[o]);
        e[n++] = (m2rnn_st_entry){names[o], c->out[o]};
    }
    char clip[32], flags[512];
    snprintf(clip, sizeof clip, "%.17g", c->clip);
    vec_case_flags(s, flags, sizeof flags);
    m2rnn_st_meta meta[] = {
        {"id", (char *)c->id},
        {"op", "recurrence"},
        {"storage", (char *)m2rnn_dtype_name(c->storage)},
        {"regime", (char *)vec_regime_name(s->regime)},
        {"clip_mode", (char *)clip_mode_name(c->clip_mode)},
        {"clip", clip},
        {"flags", flags},
        {"generator", "m2rnn gen " VEC_GENERATOR_VERSION},
    };
    return m2rnn_safetensors_encode(e, n, meta, sizeof meta / sizeof meta[0], bytes, size);
}

m2rnn_status vec_case_load(const char *path, vec_case *c)
{
    memset(c, 0, sizeof *c);
    m2rnn_status st = m2rnn_safetensors_read(path, &c->file);
    if (st) return st;
    const char *id = m2rnn_safetensors_meta(&c->file, "id");
    const char *mode = m2rnn_safetensors_meta(&c->file, "clip_mode");
    const char *clip = m2rnn_safetensors_meta(&c->file, "clip");
    if (!id || !mode || !clip) {
        vec_case_free(c);
        return m2rnn_set_error(M2RNN_ERR_FORMAT, "%s: metadata must give id, clip_mode and clip", path);
    }
    snprintf(c->id, sizeof c->id, "%s", id);
    c->clip_mode = strcmp(mode, "carry") == 0 ? M2RNN_CLIP_CARRY : strcmp(mode, "total") == 0 ? M2RNN_CLIP_TOTAL : M2RNN_CLIP_NONE;
    if (c->clip_mode == M2RNN_CLIP_NONE && strcmp(mode, "none") != 0) {
        vec_case_free(c);
        return m2rnn_set_error(M2RNN_ERR_FORMAT, "%s: clip_mode '%s' is not none, carry or total", path, mode);
    }
    char *end;
    c->clip = strtod(clip, &end);
    if (*end || end == clip) {
        vec_case_free(c);
        return m2rnn_set_error(M2RNN_ERR_FORMAT, "%s: clip '%s' is not a number", path, clip);
    }
    for (int i = 0; i < VEC_N_INPUTS; i++) {
        const m2rnn_tensor *t = m2rnn_safetensors_get(&c->file, vec_input_names[i]);
        if (t) c->in[i] = *t;
        else if (i != VEC_H0 && i != VEC_DHT && i != VEC_CU) {
            vec_case_free(c);
            return m2rnn_set_error(M2RNN_ERR_FORMAT, "%s: input '%s' is missing", path, vec_input_names[i]);
        }
    }
    for (int o = 0; o < VEC_N_OUTPUTS; o++) {
        char name[32];
        snprintf(name, sizeof name, "expected.%s", vec_output_names[o]);
        const m2rnn_tensor *t = m2rnn_safetensors_get(&c->file, name);
        if (!t || t->dtype != M2RNN_F64) {
            vec_case_free(c);
            return m2rnn_set_error(M2RNN_ERR_FORMAT, "%s: '%s' is missing or not F64", path, name);
        }
        c->out[o] = *t;
    }
    c->storage = c->in[VEC_Q].dtype;
    /* The shapes must make a valid problem, and the expected outputs must have its shapes. */
    m2rnn_recurrence_backward_args ba;
    vec_backward_args(c, &ba);
    ba.dq = c->out[VEC_DQ]; ba.dk = c->out[VEC_DK]; ba.dv = c->out[VEC_DV];
    ba.dW = c->out[VEC_DW]; ba.df = c->out[VEC_DF]; ba.dh0 = c->out[VEC_DH0];
    m2rnn_recurrence_dims d;
    if ((st = m2rnn_recurrence_check_backward(&ba, &d))) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", m2rnn_last_error());
        vec_case_free(c);
        return m2rnn_set_error(M2RNN_ERR_FORMAT, "%s: not a valid case: %s", path, msg);
    }
    m2rnn_recurrence_forward_args fa;
    vec_forward_args(c, &fa);
    fa.y = c->out[VEC_Y];
    fa.ht = c->out[VEC_HT];
    if ((st = m2rnn_recurrence_check_forward(&fa, &d))) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", m2rnn_last_error());
        vec_case_free(c);
        return m2rnn_set_error(M2RNN_ERR_FORMAT, "%s: not a valid case: %s", path, msg);
    }
    return M2RNN_OK;
}
