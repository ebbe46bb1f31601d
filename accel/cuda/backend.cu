/*
 * libm2rnn-cuda.so: the CUDA backend plug-in (see ref/m2rnn/backend.h for the table it fills).
 *
 * Ops: the M²RNN recurrence forward and backward (SPEC.md §1), F32 and BF16 storage (every float
 * tensor of a call in the same dtype), fp32 arithmetic with the state in fp32 on chip.
 *   - V = 16, K <= 128 (K even for BF16): the tensor-core path; BF16 storage takes v6's kernels
 *     (recurrence_v16_t1.cuh, one tile per warp; an even K from 50 to 62, and from 34 to 48 above
 *     5 blocks per SM, runs their K = 64 instances on copies padded with zero rows: pads_k), F32
 *     storage and the older BF16 variants
 *     recurrence_v16.cuh.
 *   - anything else that fits: the general path, recurrence_general.cuh.
 * Backward recomputes the forward with checkpoints every C steps (C chosen from the shared memory
 * a block may use at the occupancy the problem needs) and never stores the whole state history.
 * Per-state-head gradients go to fp32 workspaces and are summed over shared heads in a fixed order,
 * so results are bit-identical from run to run (no atomics anywhere).
 *
 * The training pair (ABI 1.3: recurrence_forward_save / recurrence_backward_saved) lets the forward
 * store those checkpoints in a caller's buffer, so that the backward does not run the forward again
 * (every path: ckpt_plan).
 *
 * Device memory for workspaces is cached between calls (grown when needed, freed with the process);
 * peak_workspace_bytes reports the most any one call needed. One op runs at a time (g_op_lock): the
 * ops of several host threads share that workspace, and the default stream orders their kernels.
 */
#include <cuda_runtime.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mutex>
#include <type_traits>
#include <vector>

extern "C" {
#include "m2rnn/backend.h"
}

#include "common.cuh"
#include "recurrence_general.cuh"
#include "recurrence_v16.cuh"
#include "recurrence_v16_t1.cuh"

namespace {

struct Ctx {
    int device = 0;
    int sms = 0;
    size_t smem_optin = 0;  /* per block */
    size_t smem_per_sm = 0;
    int regs_per_sm = 0;    /* 32-bit registers an SM's blocks share (65536 on sm_80 and sm_90) */
    void *ws = nullptr;     /* cached workspace */
    size_t ws_size = 0;
    void *pad = nullptr;    /* cached buffer of the padded copies (pads_k) */
    size_t pad_size = 0;
    size_t pad_bytes = 0;   /* of it, what the running op uses (counted in peak) */
    size_t peak = 0;        /* most workspace bytes one call needed since the last reset */
};

Ctx g_ctx;
std::mutex g_op_lock; /* held by each op from its workspace to its last launch, and by the entry */

#define CUDA_TRY(call)                                                                                     \
    do {                                                                                                   \
        cudaError_t e_ = (call);                                                                           \
        if (e_ != cudaSuccess) {                                                                           \
            (void)cudaGetLastError(); /* in case the runtime keeps it for the next op's launch check */    \
            return m2rnn_set_error(M2RNN_ERR_BACKEND, "cuda: %s (%s:%d: %s)", cudaGetErrorString(e_),      \
                                   __FILE__, __LINE__, #call);                                             \
        }                                                                                                  \
    } while (0)

/* The plug-in's device made current for one entry, and the caller's restored after it. */
struct DeviceScope {
    int saved = -1;
    explicit DeviceScope(int device)
    {
        if (cudaGetDevice(&saved) != cudaSuccess) saved = -1;
        if (saved != device) cudaSetDevice(device);
        (void)cudaGetLastError();
    }
    ~DeviceScope()
    {
        if (saved >= 0) cudaSetDevice(saved);
        (void)cudaGetLastError();
    }
};

/* ---- workspace ---------------------------------------------------------------------------- */

/* Carves a call's workspace out of the cached buffer: add() reserves, then get() allocates once. */
struct Workspace {
    size_t total = 0;
    size_t add(size_t bytes)
    {
        size_t off = total;
        total += (bytes + 255) & ~(size_t)255;
        return off;
    }
};

/* A cached device buffer (*buf of *size bytes) grown to at least `bytes`, kept for the next call. */
m2rnn_status cached_acquire(void **buf, size_t *size, size_t bytes, const char *what)
{
    if (bytes <= *size) return M2RNN_OK;
    if (*buf) {
        CUDA_TRY(cudaDeviceSynchronize());
        CUDA_TRY(cudaFree(*buf));
        *buf = nullptr;
        *size = 0;
    }
    cudaError_t e = cudaMalloc(buf, bytes);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* not sticky: the next op may run (and must not see it) */
        *buf = nullptr;
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "cuda: cannot allocate a %.1f MiB %s: %s", bytes / 1048576.0, what,
                               cudaGetErrorString(e));
    }
    *size = bytes;
    return M2RNN_OK;
}

m2rnn_status workspace_acquire(Ctx *c, size_t bytes, char **base)
{
    if (bytes + c->pad_bytes > c->peak) c->peak = bytes + c->pad_bytes;
    m2rnn_status st = cached_acquire(&c->ws, &c->ws_size, bytes, "workspace");
    *base = static_cast<char *>(c->ws);
    return st;
}

/* ---- argument helpers --------------------------------------------------------------------- */

bool same_float_dtype(m2rnn_dtype dt, const m2rnn_tensor *const *ts, int n)
{
    for (int i = 0; i < n; i++)
        if (ts[i] && m2rnn_tensor_present(ts[i]) && ts[i]->dtype != dt) return false;
    return dt == M2RNN_F32 || dt == M2RNN_BF16;
}

/* Every float tensor of an op's arguments (absent ones included): for the dtype and alignment checks. */
struct ArgTensors {
    const m2rnn_tensor *t[14];
    int n;
};
ArgTensors arg_tensors(const m2rnn_recurrence_forward_args *a)
{
    return {{&a->in.q, &a->in.k, &a->in.v, &a->in.W, &a->in.f, &a->in.h0, &a->y, &a->ht}, 8};
}
ArgTensors arg_tensors(const m2rnn_recurrence_backward_args *a)
{
    return {{&a->in.q, &a->in.k, &a->in.v, &a->in.W, &a->in.f, &a->in.h0, &a->dy, &a->dht, &a->dq, &a->dk, &a->dv, &a->dW,
             &a->df, &a->dh0},
            14};
}

RecDims make_dims(const m2rnn_recurrence_dims &d)
{
    RecDims r;
    r.B = (int)d.batch;
    r.N = (int)d.heads;
    r.K = (int)d.key_dim;
    r.V = (int)d.value_dim;
    r.S = (int)d.seqlen;
    r.T = d.tokens;
    r.Nq = (int)d.q_heads;
    r.Nk = (int)d.k_heads;
    r.Nv = (int)d.v_heads;
    r.Nf = (int)d.f_heads;
    r.Nw = (int)d.w_heads;
    r.gq = r.N / r.Nq;
    r.gk = r.N / r.Nk;
    r.gv = r.N / r.Nv;
    r.gf = r.N / r.Nf;
    r.gw = r.N / r.Nw;
    return r;
}

/* Entry b of cu_seqlens (host, I32 or I64). */
int64_t cu_at(const m2rnn_tensor *cu, int64_t b)
{
    return cu->dtype == M2RNN_I32 ? (int64_t)((const int32_t *)cu->data)[b] : ((const int64_t *)cu->data)[b];
}

/* The longest sequence: S when dense, else the largest step of cu_seqlens over `batch` sequences
 * (int64 sizes: the limits are checked with it before they are narrowed). */
int64_t longest_sequence(const m2rnn_tensor *cu, int64_t batch, int64_t seqlen)
{
    if (!m2rnn_tensor_present(cu)) return seqlen;
    int64_t longest = 0;
    for (int64_t b = 0; b < batch; b++) {
        const int64_t len = cu_at(cu, b + 1) - cu_at(cu, b);
        if (len > longest) longest = len;
    }
    return longest;
}

/* cu_seqlens as int64 (empty when dense), and the longest sequence. */
std::vector<int64_t> host_seqlens(const m2rnn_tensor *cu, const RecDims &d, int64_t *longest)
{
    std::vector<int64_t> v;
    *longest = longest_sequence(cu, d.B, d.S);
    if (!m2rnn_tensor_present(cu)) return v;
    v.resize((size_t)d.B + 1);
    for (int b = 0; b <= d.B; b++) v[b] = cu_at(cu, b);
    return v;
}

/* Which path a shape takes. */
bool use_v16(const RecDims &d, m2rnn_dtype dt)
{
    return d.V == 16 && d.K >= 1 && d.K <= 16 * V16_MAX_WARPS && (dt == M2RNN_F32 || d.K % 2 == 0);
}

int general_threads(const RecDims &d)
{
    int kv = d.K * d.V;
    int t = (kv + 31) / 32 * 32;
    return t < 32 ? 32 : t > 256 ? 256 : t;
}

size_t general_small_bytes(const RecDims &d) { return general_small_floats(d.K, d.V, general_threads(d)) * sizeof(float); }

/* Whether the general path's per-block shared memory (W and the vectors) fits. */
bool general_fits(const Ctx *c, const RecDims &d) { return general_small_bytes(d) <= c->smem_optin; }

/* Blocks per SM the problem needs to run in one wave (at most 8). */
int blocks_per_sm(const Ctx *c, int64_t blocks)
{
    int64_t want = (blocks + c->sms - 1) / c->sms;
    return (int)(want < 1 ? 1 : want > 8 ? 8 : want);
}

template <typename K>
m2rnn_status set_smem(K kernel, size_t bytes)
{
    CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
    return M2RNN_OK;
}

/* ---- forward ------------------------------------------------------------------------------ */

template <typename T>
RecIn<T> make_in(const m2rnn_recurrence_inputs &in, const int64_t *cu_dev)
{
    RecIn<T> r;
    r.q = (const T *)in.q.data;
    r.k = (const T *)in.k.data;
    r.v = (const T *)in.v.data;
    r.W = (const T *)in.W.data;
    r.f = (const T *)in.f.data;
    r.h0 = (const T *)in.h0.data;
    r.cu = cu_dev;
    return r;
}

/* ---- kernel variants ------------------------------------------------------------------------
 * BF16 storage has several forward and backward kernels (recurrence_v16.cuh's template parameters;
 * NOTES.md has each one's measured time). The default (forward 8, backward 3) is the fastest that
 * passed every check; variant 0 with backward 0 is v3, the simplest;
 * M2RNN_CUDA_FWD=<index> and M2RNN_CUDA_BWD=<index> pick another (read once, at load), for timing
 * and for the checks of the others. F32 storage has one of each (split products, tanh.approx: v15).
 * M2RNN_CUDA_CKPT_C=<C> caps the checkpoint interval of the v6 BF16 kernels (bwd_t1, and the
 * forward_save that feeds it; default: the largest that fits in shared memory), for the sweep that
 * chose it (NOTES.md v9, microbench/ckpt_sweep.sh). M2RNN_CUDA_BWD_HEADS=1 or 2 sets bwd_t1's state
 * heads per block (2 only where the problem allows it; default: t1_heads' choice), for the checks of
 * both kernels and for timing. M2RNN_CUDA_T1_WORDS=0 makes every fwd_t1 block convert its k and q
 * rows itself (v16) instead of copying the words t1_words_prep made (t1_words_wanted), for the
 * check that both give the same results and for timing. M2RNN_CUDA_T1_LANES=<n> caps the lanes (bwd_t1:
 * units of its heads) per block of fwd_t1 and bwd_t1 (t1_group; 1: one per block, v20's launches),
 * for the checks and for timing. M2RNN_CUDA_T1_MINB=4 or 6 forces the v6 kernels' register budget
 * where K <= 64 (t1_minb; 0, the default: its choice; bwd_t1's pairs of heads keep theirs), for the
 * checks and for timing. M2RNN_CUDA_PAD=0 runs an even K from 34 to 62 on the generic-K kernels
 * instead of the K = 64 ones on padded copies (pads_k), for the checks of those and for timing;
 * M2RNN_CUDA_PAD=2 pads every such K, also where pads_k would keep the generic kernels. */
struct FwdVariant {
    int tpw, tm;
    bool mmay, kvmma;
    const char *name;
};
const FwdVariant k_fwd_variants[] = {
    {2, TANH_F32, false, false, "v3: 2 tiles/warp, tanh.f32"},
    {2, TANH_F16X2, false, false, "2 tiles/warp, tanh.f16x2"},
    {2, TANH_F16X2, true, false, "2 tiles/warp, tanh.f16x2, mma readout"},
    {2, TANH_F16X2, true, true, "2 tiles/warp, tanh.f16x2, mma readout, mma k vT"},
    {4, TANH_F16X2, true, true, "4 tiles/warp, tanh.f16x2, mma readout, mma k vT"},
    {4, TANH_F16X2, false, false, "4 tiles/warp, tanh.f16x2"},
    {4, TANH_F32, false, false, "4 tiles/warp, tanh.f32"},
    {1, TANH_F16X2, true, true, "1 tile/warp, tanh.f16x2, mma readout, mma k vT"},
    {2, TANH_F32, true, false, "2 tiles/warp, tanh.f32, mma readout"},
    {2, TANH_F32, true, false, "fwd_v16_pf: 2 tiles/warp, tanh.f32, mma readout, deferred y store, inputs loaded a step ahead"},
    {2, TANH_F32, true, false, "fwd_v16_pf: 2 tiles/warp, tanh.f32, mma readout, deferred y store"},
    {1, TANH_F32, true, false, "v6 fwd_t1: 1 tile/warp, inputs converted once per chunk, mma readout"},
};
const int k_nfwd = (int)(sizeof k_fwd_variants / sizeof k_fwd_variants[0]);
/* Backward (BF16): 0 dA·Wᵀ and H_{t-1}ᵀ·dA with split operands (v3), 1 unsplit, 2 unsplit and dk, dq,
 * dv on the tensor cores (BMMA), 3 = 2 compiled for 6 blocks per SM (80 registers) when the
 * problem needs more than 4 blocks per SM and K <= 64 (else 2's kernel), 4 = 3's kernel whenever
 * K <= 64 (for timing and for the checks: it exercises the 80-register kernel on every case).
 * The replay's tanh follows the forward's. */
/* 5 = v6: bwd_t1 (recurrence_v16_t1.cuh) after fwd_t1's checkpoint pass, whatever the forward variant. */
const bool k_bwd_split[] = {true, false, false, false, false, false};
const bool k_bwd_mma[] = {false, false, true, true, true, true};
const int k_bwd_occ[] = {0, 0, 0, 1, 2, 1}; /* 6-blocks/SM kernel: 0 never, 1 when needed, 2 always */
const int k_nbwd = 6;
constexpr int k_fwd_t1 = 11, k_bwd_t1 = 5;
int g_fwd_variant = 0, g_bwd_variant = 0;
int g_ckpt_cap = 0; /* M2RNN_CUDA_CKPT_C: at most this checkpoint interval for the v6 kernels (0: as fits; timing) */
int g_bwd_heads = 0; /* M2RNN_CUDA_BWD_HEADS: bwd_t1's state heads per block, 1 or 2 where allowed (0: as t1_heads picks) */
int g_t1_words = 1;  /* M2RNN_CUDA_T1_WORDS: 0 = fwd_t1's blocks convert k and q themselves everywhere (v16's kernels) */
int g_t1_lanes = 0;  /* M2RNN_CUDA_T1_LANES: at most this many lanes per fwd_t1 / bwd_t1 block (0: as t1_lanes_per_block picks) */
int g_t1_minb = 0;   /* M2RNN_CUDA_T1_MINB: 4 or 6 forces the v6 kernels' register budget where K <= 64 (0: as t1_minb picks; timing) */
int g_pad_k = 1;     /* M2RNN_CUDA_PAD: 0 = K from 34 to 62 runs the generic-K kernels, not K = 64 on padded copies (pads_k); 2 = every such K padded */

/* One of the plug-in's settings (NOTES.md, "Settings"): unset or empty gives def, else a whole
 * number from 0 to n - 1, in decimal, and where `only` is not 0 one of the values whose bits it has
 * set (T1_MINB: 0, 4 or 6, the only ones that act). Anything else is an error (the plug-in does not
 * open), so that a mistyped setting cannot silently run other kernels. */
bool env_index(const char *name, int def, int n, unsigned only, int *out, char *msg, size_t msg_size)
{
    const char *e = getenv(name);
    *out = def;
    if (!e || !*e) return true;
    char *end = nullptr;
    errno = 0;
    const long v = strtol(e, &end, 10);
    if (!isdigit((unsigned char)e[0]) || *end || errno || v >= n || (only && !(only >> v & 1u))) {
        char want[96] = "";
        if (only) { /* "0, 4 or 6" */
            size_t len = 0;
            for (int i = 0, left = __builtin_popcount(only & ((1u << n) - 1)); i < n && len < sizeof want; i++)
                if (only >> i & 1u) {
                    --left;
                    len += snprintf(want + len, sizeof want - len, "%s%d", len == 0 ? "one of " : left ? ", " : " or ", i);
                }
        } else {
            snprintf(want, sizeof want, "a whole number from 0 to %d", n - 1);
        }
        snprintf(msg, msg_size, "%s=%s: expected %s (or unset for the default, %d)", name, e, want, def);
        return false;
    }
    *out = (int)v;
    return true;
}

template <typename T, bool F32MODE, int TPW, int TM, bool MMAY, bool KVMMA>
m2rnn_status launch_fwd_v16(const RecDims &d, const RecIn<T> &in, T *y, T *ht, float *ckpt, int C, int nck)
{
    const int MT = (d.K + 15) / 16, NW = (MT + TPW - 1) / TPW;
    const int TS = sizeof(T) == 4 ? 16 : 32;
    const size_t smem = fwd_v16_smem<T>(d.K, NW, TS);
    auto kern = fwd_v16<T, F32MODE, TPW, TM, MMAY, KVMMA>;
    m2rnn_status st = set_smem(kern, smem);
    if (st) return st;
    kern<<<d.B * d.N, 32 * NW, smem>>>(d, in, y, ht, ckpt, C, nck, TS);
    return M2RNN_OK;
}

template <int TPW, int TM, bool PREF>
m2rnn_status launch_fwd_v16_pf(const RecDims &d, const RecIn<__nv_bfloat16> &in, __nv_bfloat16 *y, __nv_bfloat16 *ht,
                               float *ckpt, int C, int nck)
{
    const int MT = (d.K + 15) / 16, NW = (MT + TPW - 1) / TPW, TS = 32;
    const size_t smem = fwd_v16_smem<__nv_bfloat16>(d.K, NW, TS);
    auto kern = fwd_v16_pf<TPW, TM, PREF>;
    m2rnn_status st = set_smem(kern, smem);
    if (st) return st;
    kern<<<d.B * d.N, 32 * NW, smem>>>(d, in, y, ht, ckpt, C, nck, TS);
    return M2RNN_OK;
}

/* v6 kernels: blocks of one lane (bwd_t1 with two heads: see t1_heads); MINB 6 (80 registers) when
 * the problem needs more than 4 blocks per SM, else 4 (K <= 64); K > 64 takes 8 warps and MINB 2.
 * The generic-K instances (KC = 0) spill at 80 registers (ptxas: bwd_t1 about 250 bytes, the
 * forward_save 46); where their blocks have so few warps that 128 registers a thread still let bps of
 * them share an SM (K <= 32 up to 8 blocks per SM, K <= 48 up to 5), they take MINB 4 (NOTES.md v22).
 * Elsewhere spilling beats MINB 4's second wave of blocks (K = 56 at 5 and 6 blocks per SM: 5-14 %
 * faster, v24), and the K = 64 instances on padded copies beat both (pads_k, v24): with BF16 storage
 * the spilling generic instances now run only when T1_MINB=6 forces them or M2RNN_CUDA_PAD=0. */
bool t1_generic_needs_80(const Ctx *c, const RecDims &d, int bps)
{
    const int warps = (d.K + 15) / 16, blocks_at_128 = c->regs_per_sm / (128 * 32 * warps);
    return bps > 4 && blocks_at_128 < bps;
}

int t1_minb(const Ctx *c, const RecDims &d, int bps)
{
    if (d.K > 64) return 2;
    if (g_t1_minb) return g_t1_minb; /* 4 or 6 (env_index allows no other) */
    if (bps <= 4) return 4;
    return d.K != 64 && !t1_generic_needs_80(c, d, bps) ? 4 : 6;
}

/* Lanes (bwd_t1: pairs of heads) per block of the v6 kernels (t1_group): the units each SM gets (bps),
 * up to MINB, so that an SM's units share one block (NOTES.md v21); grouped: whether the instance
 * launched holds several (FWD_T1_GROUPS, BWD_T1_GROUPS), else 1. */
int t1_lanes_per_block(bool grouped, int bps, int minb)
{
    int lpb = grouped ? (bps < minb ? bps : minb) : 1;
    if (g_t1_lanes > 0 && lpb > g_t1_lanes) lpb = g_t1_lanes;
    return lpb;
}

/* Shared memory one block may use when bps blocks share an SM. */
size_t smem_budget(const Ctx *c, int bps)
{
    size_t budget = c->smem_per_sm / bps;
    budget = budget > 1024 ? budget - 1024 : 0;
    return budget > c->smem_optin ? c->smem_optin : budget;
}

/* Whether fwd_t1 takes its k (and, with the readout Y, q) words made once per source head by
 * t1_words_prep (T1Words, v17): for K = 64 where every k and q head is shared by at least 8 state
 * heads. Fewer sharers would make the words' bytes (twice k's) approach what each block reads.
 * (t1_words_prep's grid has one row per sequence and one layer per source head: at most 65535 each.) */
bool t1_words_wanted(const RecDims &d, bool Y)
{
    return g_t1_words && d.K == 64 && d.gk >= 8 && (!Y || d.gq >= 8) && d.B <= 65535 && d.Nk + (Y ? d.Nq : 0) <= 65535;
}

/* The workspace those words take (0 where they are not wanted). */
size_t t1_words_bytes(const RecDims &d, bool Y)
{
    if (!t1_words_wanted(d, Y)) return 0;
    return (size_t)t1_words_pairs(d.T, d.B) * ((size_t)d.Nk * k_t1_words_k + (Y ? (size_t)d.Nq * k_t1_words_q : 0)) * sizeof(uint4);
}

/* The fwd_t1 instance for a launch: by the blocks per SM (minb: t1_minb), K = 64 at compile time
 * (k64, t1_k), the made words (made: K = 64 only), and for forward_save at 80 registers with C even
 * the checkpoint test in the first step of each pair only (even_c; v14, NOTES.md: the instance for
 * K = 64, the one the checks reach). */
template <bool Y, bool CKPT>
auto fwd_t1_instance(int minb, bool k64, bool made, bool even_c)
{
    if (minb == 2) return fwd_t1<Y, CKPT, 2, 0>;
    if (!k64) return minb == 6 ? fwd_t1<Y, CKPT, 6, 0> : fwd_t1<Y, CKPT, 4, 0>;
    if (minb == 4) return made ? fwd_t1<Y, CKPT, 4, 64, false, true> : fwd_t1<Y, CKPT, 4, 64>;
    if constexpr (Y && CKPT)
        if (even_c) return made ? fwd_t1<Y, CKPT, 6, 64, true, true> : fwd_t1<Y, CKPT, 6, 64, true>;
    return made ? fwd_t1<Y, CKPT, 6, 64, false, true> : fwd_t1<Y, CKPT, 6, 64>;
}

/* words: t1_words_bytes(d, Y) of workspace, or NULL (the blocks convert k and q); longest: the
 * longest sequence. */
template <bool Y, bool CKPT>
m2rnn_status launch_fwd_t1(const Ctx *c, const RecDims &d, const RecIn<__nv_bfloat16> &in, __nv_bfloat16 *y,
                           __nv_bfloat16 *ht, float *ckpt, int C, int nck, void *words, int64_t longest)
{
    const int64_t lanes = (int64_t)d.B * d.N;
    const int bps = blocks_per_sm(c, lanes), MT = (d.K + 15) / 16, minb = t1_minb(c, d, bps);
    const size_t budget = smem_budget(c, bps);
    const bool made = words && t1_words_wanted(d, Y);
    /* TS: the largest multiple of 8 up to 64 (and the block's threads, which load a chunk's f)
     * that fits: 7B 48 (checkpoint pass 64), 410M 32 (56) at 6 blocks per SM; without the made
     * words, whose second buffer takes room, 7B 56 (64) and 410M 32 (64) */
    int TS = 32 * MT < 64 ? 32 * MT : 64;
    while (TS > 8 && fwd_t1_smem(d.K, Y, TS, made) > budget) TS -= 8;
    const int lpb = t1_lanes_per_block(d.K == 64, bps, minb); /* fwd_t1_instance: KC = 64 iff K = 64 */
    const size_t smem = lpb * fwd_t1_smem(d.K, Y, TS, made);
    const auto kern = fwd_t1_instance<Y, CKPT>(minb, d.K == 64, made, C % 2 == 0);
    m2rnn_status st = set_smem(kern, smem);
    if (st) return st;
    T1Words tw = {};
    if (made) {
        tw.pairs = t1_words_pairs(d.T, d.B);
        uint4 *kw = static_cast<uint4 *>(words), *qw = Y ? kw + tw.pairs * d.Nk * k_t1_words_k : nullptr;
        tw.k = kw;
        tw.q = qw;
        const int64_t items = (longest / 2 + 2) * k_t1_words_k; /* per sequence and head, at most */
        const dim3 grid((unsigned)((items + 255) / 256), (unsigned)d.B, (unsigned)(d.Nk + (Y ? d.Nq : 0)));
        t1_words_prep<<<grid, 256>>>(d, in, kw, qw, tw.pairs);
    }
    kern<<<(unsigned)((lanes + lpb - 1) / lpb), lpb * 32 * MT, smem>>>(d, in, y, ht, ckpt, C, nck, TS, tw);
    return M2RNN_OK;
}

template <typename T>
m2rnn_status launch_fwd_v16_variant(int v, const RecDims &d, const RecIn<T> &in, T *y, T *ht, float *ckpt, int C, int nck,
                                    void *words, int64_t longest)
{
    if constexpr (sizeof(T) == 4) {
        (void)v;
        (void)words;
        (void)longest;
        /* tanh.approx, as the tf32 class allows: a 27-29 % faster forward than with the ex2/rcp
         * tanh, for errors against the reference typically 1.5x (at most 3x) larger and still
         * inside a ninth of check_cuda's tolerances (NOTES.md v15) */
        return launch_fwd_v16<T, true, 2, TANH_F32, false, false>(d, in, y, ht, ckpt, C, nck);
    } else {
        switch (v) {
        case 1: return launch_fwd_v16<T, false, 2, TANH_F16X2, false, false>(d, in, y, ht, ckpt, C, nck);
        case 2: return launch_fwd_v16<T, false, 2, TANH_F16X2, true, false>(d, in, y, ht, ckpt, C, nck);
        case 3: return launch_fwd_v16<T, false, 2, TANH_F16X2, true, true>(d, in, y, ht, ckpt, C, nck);
        case 4: return launch_fwd_v16<T, false, 4, TANH_F16X2, true, true>(d, in, y, ht, ckpt, C, nck);
        case 5: return launch_fwd_v16<T, false, 4, TANH_F16X2, false, false>(d, in, y, ht, ckpt, C, nck);
        case 6: return launch_fwd_v16<T, false, 4, TANH_F32, false, false>(d, in, y, ht, ckpt, C, nck);
        case 7: return launch_fwd_v16<T, false, 1, TANH_F16X2, true, true>(d, in, y, ht, ckpt, C, nck);
        case 8: return launch_fwd_v16<T, false, 2, TANH_F32, true, false>(d, in, y, ht, ckpt, C, nck);
        case 9: return launch_fwd_v16_pf<2, TANH_F32, true>(d, in, y, ht, ckpt, C, nck);
        case 10: return launch_fwd_v16_pf<2, TANH_F32, false>(d, in, y, ht, ckpt, C, nck);
        /* v6's forward; a checkpoint pass or forward_save for the older backward kernels takes
         * variant 8, whose step arithmetic their replay repeats (bwd_t1's pass is launched by
         * backward_t itself, forward_save's by forward_t) */
        case k_fwd_t1:
            if (ckpt) return launch_fwd_v16<T, false, 2, TANH_F32, true, false>(d, in, y, ht, ckpt, C, nck);
            return launch_fwd_t1<true, false>(&g_ctx, d, in, y, ht, ckpt, C, nck, words, longest);
        default: return launch_fwd_v16<T, false, 2, TANH_F32, false, false>(d, in, y, ht, ckpt, C, nck);
        }
    }
}

/* Launch the forward (y, ht), the checkpoint pass (ckpt != NULL, y = ht = NULL) or both at once
 * (forward_save on the paths other than v6's: ckpt_plan). words, longest: see launch_fwd_t1 (only
 * v6's forward takes them). */
template <typename T>
m2rnn_status launch_forward(Ctx *c, const RecDims &d, const RecIn<T> &in, T *y, T *ht, float *ckpt, int C, int nck,
                            float *big, void *words = nullptr, int64_t longest = 0)
{
    (void)c;
    const int lanes = d.B * d.N;
    if (lanes == 0) return M2RNN_OK;
    if (use_v16(d, sizeof(T) == 4 ? M2RNN_F32 : M2RNN_BF16)) {
        m2rnn_status st = launch_fwd_v16_variant<T>(g_fwd_variant, d, in, y, ht, ckpt, C, nck, words, longest);
        if (st) return st;
    } else {
        const int threads = general_threads(d);
        size_t smem = general_small_bytes(d) + (big ? 0 : 2 * (size_t)d.K * d.V * sizeof(float));
        m2rnn_status st = set_smem(fwd_general<T>, smem);
        if (st) return st;
        fwd_general<T><<<lanes, threads, smem>>>(d, in, y, ht, ckpt, C, nck, big);
    }
    CUDA_TRY(cudaGetLastError());
    return M2RNN_OK;
}

/* One bwd_v16 instance, one block per lane. */
template <typename T, typename Kern>
m2rnn_status launch_bwd_kernel(Kern kern, const RecDims &d, const RecIn<T> &in, const T *dy, const T *dht, int clip_mode,
                               float clip, T *dh0, const GradOut &go, const float *ckpt, int C, int nck, size_t smem)
{
    m2rnn_status st = set_smem(kern, smem);
    if (st) return st;
    const int MT = (d.K + 15) / 16;
    kern<<<(unsigned)((int64_t)d.B * d.N), 32 * MT, smem>>>(d, in, dy, dht, clip_mode, clip, dh0, go, ckpt, C, nck);
    return M2RNN_OK;
}

template <typename T, bool F32MODE, int TM, bool BSPLIT, bool BMMA = false, int MINB = 2>
m2rnn_status launch_bwd_v16(const RecDims &d, const RecIn<T> &in, const T *dy, const T *dht, int clip_mode, float clip,
                            T *dh0, const GradOut &go, const float *ckpt, int C, int nck, size_t smem)
{
    return launch_bwd_kernel(bwd_v16<T, F32MODE, TM, BSPLIT, BMMA, MINB>, d, in, dy, dht, clip_mode, clip, dh0, go, ckpt, C,
                             nck, smem);
}

/* F32 storage's one backward kernel: launch_bwd_v16_variant launches it, and ckpt_plan sizes the
 * checkpoint interval by how many of its blocks an SM holds. */
constexpr auto k_bwd_v16_f32 = bwd_v16<float, true, TANH_F32, true, false, 2>;

template <typename T>
m2rnn_status launch_bwd_v16_variant(const RecDims &d, const RecIn<T> &in, const T *dy, const T *dht, int clip_mode,
                                    float clip, T *dh0, const GradOut &go, const float *ckpt, int C, int nck, size_t smem,
                                    int bps)
{
    if constexpr (sizeof(T) == 4) {
        return launch_bwd_kernel(k_bwd_v16_f32, d, in, dy, dht, clip_mode, clip, dh0, go, ckpt, C, nck, smem);
    } else {
        const bool f16 = k_fwd_variants[g_fwd_variant].tm == TANH_F16X2, split = k_bwd_split[g_bwd_variant];
        const int occ = k_bwd_occ[g_bwd_variant];
        if (k_bwd_mma[g_bwd_variant] && occ && d.K <= 64 && (occ == 2 || bps > 4)) {
            if (f16) return launch_bwd_v16<T, false, TANH_F16X2, false, true, 6>(d, in, dy, dht, clip_mode, clip, dh0, go, ckpt, C, nck, smem);
            return launch_bwd_v16<T, false, TANH_F32, false, true, 6>(d, in, dy, dht, clip_mode, clip, dh0, go, ckpt, C, nck, smem);
        }
        if (k_bwd_mma[g_bwd_variant]) {
            if (f16) return launch_bwd_v16<T, false, TANH_F16X2, false, true>(d, in, dy, dht, clip_mode, clip, dh0, go, ckpt, C, nck, smem);
            return launch_bwd_v16<T, false, TANH_F32, false, true>(d, in, dy, dht, clip_mode, clip, dh0, go, ckpt, C, nck, smem);
        }
        if (f16 && split) return launch_bwd_v16<T, false, TANH_F16X2, true>(d, in, dy, dht, clip_mode, clip, dh0, go, ckpt, C, nck, smem);
        if (f16) return launch_bwd_v16<T, false, TANH_F16X2, false>(d, in, dy, dht, clip_mode, clip, dh0, go, ckpt, C, nck, smem);
        if (split) return launch_bwd_v16<T, false, TANH_F32, true>(d, in, dy, dht, clip_mode, clip, dh0, go, ckpt, C, nck, smem);
        return launch_bwd_v16<T, false, TANH_F32, false>(d, in, dy, dht, clip_mode, clip, dh0, go, ckpt, C, nck, smem);
    }
}

/* bwd_t1's launch plan for a problem that takes the v6 kernels: interval C (the largest, at most 32
 * so that one warp's threads hold a chunk's f, whose bwd_t1 block fits the shared memory a block may
 * have at the occupancy the problem needs), heads and blocks per SM. ckpt_plan derives the
 * checkpoints from it. */
struct T1Plan {
    bool ok = false;  /* false: not even C = 1 fits */
    int C = 0;
    int HP = 1;       /* bwd_t1's state heads per block */
    int bps = 0;      /* bwd_t1's blocks per SM */
};

/* Blocks per SM of bwd_t1 with two heads per block (its MINB): 3 blocks of 128 threads leave a thread
 * 168 registers (161-167 used). */
constexpr int k_t1_pair_minb = 3;

/* bwd_t1's state heads per block (v11, NOTES.md). Pairs need K = 64, pairs of heads of one sequence
 * that share their k and q heads, and at most k_t1_pair_minb blocks of pairs per SM.
 * They are taken where one head per block would need more than 4 blocks per SM, i.e. the
 * 80-register kernel (410M: training step 6.96 -> 6.48 ms); where 4 blocks of one head fit (7B),
 * pairs leave half the warps per SM and measured slower (4.24 -> 4.61 ms). M2RNN_CUDA_BWD_HEADS=1
 * keeps one head, =2 takes pairs wherever the problem allows them (for the checks of both). */
int t1_heads(const Ctx *c, const RecDims &d)
{
    const int64_t lanes = (int64_t)d.B * d.N;
    if (g_bwd_heads == 1 || d.K != 64 || d.N % 2 || d.gq % 2 || d.gk % 2 || blocks_per_sm(c, lanes / 2) > k_t1_pair_minb) return 1;
    return g_bwd_heads == 2 || blocks_per_sm(c, lanes) > 4 ? 2 : 1;
}

T1Plan t1_plan(const Ctx *c, const RecDims &d)
{
    T1Plan p;
    const int64_t lanes = (int64_t)d.B * d.N;
    p.HP = t1_heads(c, d);
    p.bps = blocks_per_sm(c, lanes / p.HP);
    const size_t budget = smem_budget(c, p.bps);
    for (int cc = g_ckpt_cap ? g_ckpt_cap : 32; cc >= 1 && !p.C; cc--)
        if (bwd_t1_smem(d.K, cc, p.HP) <= budget) p.C = cc;
    p.ok = p.C > 0; /* not even C = 1 fits: the caller reports it */
    return p;
}

/* Where the backward gets its checkpoints, for every path: v6's plan (t1_plan); the older V = 16
 * kernels' C, the largest up to 16 whose bwd_v16 block fits the shared memory a block may have; the
 * general kernels' 16 (their chunk lives in the workspace). backward_t, recurrence_saved_bytes and
 * forward_save all take it from here, so a forward_save buffer holds exactly the checkpoints that
 * the backward's own checkpoint pass would have computed. */
struct CkptPlan {
    bool ok = false; /* false: K needs more shared memory than a block may have (the backward says so) */
    bool t1 = false; /* v6's kernels */
    T1Plan t1p;
    int C = 16, nck = 0;
    size_t floats_per_lane = 0, bytes = 0;
};

template <typename T>
CkptPlan ckpt_plan(const Ctx *c, const RecDims &d, int64_t longest)
{
    CkptPlan p;
    const int64_t lanes = (int64_t)d.B * d.N;
    const bool fast = use_v16(d, sizeof(T) == 4 ? M2RNN_F32 : M2RNN_BF16);
    const int MT = (d.K + 15) / 16;
    p.t1 = fast && sizeof(T) == 2 && g_bwd_variant == k_bwd_t1;
    if (p.t1) {
        p.t1p = t1_plan(c, d);
        if (!p.t1p.ok) return p;
        p.C = p.t1p.C;
    } else if (fast) {
        int bps = blocks_per_sm(c, lanes);
        if constexpr (sizeof(T) == 4) {
            /* The F32 backward holds only as many blocks as its 128 registers a thread allow (4 of 4
             * warps): a shared-memory budget for more would only shorten C (410M: 3 where 5 fits,
             * NOTES.md v15). */
            int fit = 0;
            if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&fit, k_bwd_v16_f32, 32 * MT, 0) == cudaSuccess && fit > 0 &&
                fit < bps)
                bps = fit;
        }
        const size_t budget = smem_budget(c, bps);
        p.C = 1;
        for (int cc = 16; cc >= 1; cc--)
            if (bwd_v16_smem<T>(d.K, MT, cc) <= budget) {
                p.C = cc;
                break;
            }
        if (bwd_v16_smem<T>(d.K, MT, p.C) > c->smem_optin) return p;
    }
    p.ok = true;
    p.nck = (int)((longest + p.C - 1) / p.C);
    p.floats_per_lane = (size_t)p.nck * (fast ? (size_t)MT * 256 : (size_t)d.K * d.V);
    p.bytes = (size_t)lanes * p.floats_per_lane * sizeof(float);
    return p;
}

template <typename T>
m2rnn_status forward_t(Ctx *c, const m2rnn_recurrence_forward_args *a, const m2rnn_recurrence_dims &dims, void *saved)
{
    RecDims d = make_dims(dims);
    int64_t longest;
    std::vector<int64_t> cu = host_seqlens(&a->in.cu_seqlens, d, &longest);

    Workspace plan;
    size_t off_cu = plan.add(cu.size() * sizeof(int64_t));
    const bool general = !use_v16(d, a->in.q.dtype);
    const size_t KV = (size_t)d.K * d.V;
    const bool big_needed = general && general_small_bytes(d) + 2 * KV * sizeof(float) > c->smem_optin;
    size_t off_big = big_needed ? plan.add((size_t)d.B * d.N * 2 * KV * sizeof(float)) : 0;
    const size_t words_bytes = sizeof(T) == 2 && !general ? t1_words_bytes(d, true) : 0; /* v6's forward: launch_fwd_t1 */
    size_t off_words = words_bytes ? plan.add(words_bytes) : 0;

    char *ws = nullptr;
    if (plan.total) {
        m2rnn_status st = workspace_acquire(c, plan.total, &ws);
        if (st) return st;
    }
    int64_t *cu_dev = nullptr;
    if (!cu.empty()) {
        cu_dev = (int64_t *)(ws + off_cu);
        CUDA_TRY(cudaMemcpy(cu_dev, cu.data(), cu.size() * sizeof(int64_t), cudaMemcpyHostToDevice));
    }
    void *words = words_bytes ? ws + off_words : nullptr;
    /* forward_save: the forward also stores the checkpoints backward_saved starts from (ckpt_plan;
     * not planned for the plain forward) */
    const CkptPlan cp = saved ? ckpt_plan<T>(c, d, longest) : CkptPlan{};
    float *ckpt = saved && cp.ok && cp.bytes > 0 ? (float *)saved : nullptr;
    if constexpr (sizeof(T) == 2) {
        if (ckpt && cp.t1) {
            m2rnn_status st = launch_fwd_t1<true, true>(c, d, make_in<T>(a->in, cu_dev), (T *)a->y.data, (T *)a->ht.data,
                                                        ckpt, cp.C, cp.nck, words, longest);
            if (st) return st;
            CUDA_TRY(cudaGetLastError());
            return M2RNN_OK;
        }
    }
    return launch_forward<T>(c, d, make_in<T>(a->in, cu_dev), (T *)a->y.data, (T *)a->ht.data, ckpt, ckpt ? cp.C : 1,
                             ckpt ? cp.nck : 0, big_needed ? (float *)(ws + off_big) : nullptr, words, longest);
}

/* ---- backward ----------------------------------------------------------------------------- */

/* saved: checkpoints from forward_save (ckpt_plan's layout), or NULL to compute them here. */
template <typename T>
m2rnn_status backward_t(Ctx *c, const m2rnn_recurrence_backward_args *a, const m2rnn_recurrence_dims &dims,
                        const void *saved)
{
    RecDims d = make_dims(dims);
    int64_t longest;
    std::vector<int64_t> cu = host_seqlens(&a->in.cu_seqlens, d, &longest);
    const int64_t lanes = (int64_t)d.B * d.N, T_ = d.T;
    const size_t KV = (size_t)d.K * d.V, VV = (size_t)d.V * d.V;
    const bool fast = use_v16(d, a->in.q.dtype);
    const int MT = (d.K + 15) / 16;

    /* Checkpoint interval and layout (ckpt_plan): v6's, the older V = 16 kernels' (the largest C
     * whose block fits the shared memory one block may have when blocks_per_sm blocks share an SM)
     * or the general path's fixed 16. */
    const int bps = blocks_per_sm(c, lanes);
    const CkptPlan cp = ckpt_plan<T>(c, d, longest);
    if (!cp.ok) return m2rnn_set_error(M2RNN_ERR_UNSUPPORTED, "cuda: K=%d needs more shared memory than a block may have", d.K);
    const bool t1 = cp.t1;
    const T1Plan &t1p = cp.t1p;
    const int C = cp.C, nck = cp.nck;
    /* bwd_t1 writes dv / df itself when no state heads share a v / f head */
    const bool t1_dv_direct = t1 && d.gv == 1, t1_df_direct = t1 && d.gf == 1;
    const size_t big_per_lane = fast ? 0 : (size_t)(2 * C + 4) * KV + VV;

    /* fp32 partials per token for reduce_groups: dq and dk of each block's heads (bwd_t1 with HP heads
     * per block has summed them over its heads; with its slot partials, t1_slot_parts, a head's
     * partials are pK = 16 MT floats in tile_pair_index order), dv and df of each head unless bwd_t1
     * writes them */
    const int hp = t1 ? t1p.HP : 1;
    const bool tile_pairs = t1 && t1_slot_parts(hp);
    const int pK = tile_pairs ? 16 * MT : d.K;
    Workspace plan;
    size_t off_cu = plan.add(cu.size() * sizeof(int64_t));
    size_t off_dq = plan.add((size_t)T_ * (d.N / hp) * pK * sizeof(float));
    size_t off_dk = plan.add((size_t)T_ * (d.N / hp) * pK * sizeof(float));
    size_t off_dv = plan.add(t1_dv_direct ? 0 : (size_t)T_ * d.N * d.V * sizeof(float));
    size_t off_df = plan.add(t1_df_direct ? 0 : (size_t)T_ * d.N * sizeof(float));
    size_t off_dW = plan.add((size_t)lanes * VV * sizeof(float));
    const bool have_saved = saved && cp.bytes > 0;
    size_t off_ck = have_saved ? 0 : plan.add((size_t)lanes * cp.floats_per_lane * sizeof(float));
    size_t off_big = plan.add((size_t)lanes * big_per_lane * sizeof(float));
    /* The checkpoint pass of the general path may need its state out of shared memory too. */
    const bool fwd_big = !fast && general_small_bytes(d) + 2 * KV * sizeof(float) > c->smem_optin;
    size_t off_fbig = fwd_big ? plan.add((size_t)lanes * 2 * KV * sizeof(float)) : 0;
    const size_t words_bytes = t1 && !have_saved ? t1_words_bytes(d, false) : 0; /* the checkpoint pass's k words */
    size_t off_words = words_bytes ? plan.add(words_bytes) : 0;

    char *ws = nullptr;
    m2rnn_status st = workspace_acquire(c, plan.total, &ws);
    if (st) return st;
    int64_t *cu_dev = nullptr;
    if (!cu.empty()) {
        cu_dev = (int64_t *)(ws + off_cu);
        CUDA_TRY(cudaMemcpy(cu_dev, cu.data(), cu.size() * sizeof(int64_t), cudaMemcpyHostToDevice));
    }
    GradOut go;
    go.dq = (float *)(ws + off_dq);
    go.dk = (float *)(ws + off_dk);
    go.dv = (float *)(ws + off_dv);
    go.df = (float *)(ws + off_df);
    go.dW = (float *)(ws + off_dW);
    float *ckpt = have_saved ? (float *)saved : (float *)(ws + off_ck);
    RecIn<T> in = make_in<T>(a->in, cu_dev);

    if (lanes > 0) {
        /* 1. the forward again, keeping the state every C steps (backward_saved: forward_save did) */
        if constexpr (sizeof(T) == 2) {
            if (t1 && !have_saved)
                st = launch_fwd_t1<false, true>(c, d, in, nullptr, nullptr, ckpt, C, nck, words_bytes ? ws + off_words : nullptr, longest);
        }
        if (!t1 && !have_saved)
            st = launch_forward<T>(c, d, in, nullptr, nullptr, ckpt, C, nck, fwd_big ? (float *)(ws + off_fbig) : nullptr);
        if (st) return st;
        /* 2. the reverse sweep */
        const int clip_mode = (int)a->clip_mode;
        const float clip = (float)a->clip;
        if (t1) {
            if constexpr (sizeof(T) == 2) {
                auto pick = [&](auto m, auto kc, auto hp) {
                    constexpr int M = decltype(m)::value, KC = decltype(kc)::value, HP = decltype(hp)::value;
                    return clip_mode == 1 ? bwd_t1<M, 1, KC, HP> : clip_mode == 2 ? bwd_t1<M, 2, KC, HP> : bwd_t1<M, 0, KC, HP>;
                };
                using I1 = std::integral_constant<int, 1>;
                using I2 = std::integral_constant<int, 2>;
                using I4 = std::integral_constant<int, 4>;
                using I6 = std::integral_constant<int, 6>;
                using K0 = std::integral_constant<int, 0>;
                using K64 = std::integral_constant<int, 64>; /* the compile-time K (t1_k) */
                const bool k64 = d.K == 64;
                const int minb = t1_minb(c, d, t1p.bps);
                using IP = std::integral_constant<int, k_t1_pair_minb>;
                auto kern = t1p.HP == 2 ? pick(IP(), K64(), I2()) /* pairs of heads: K = 64 (t1_heads) */
                            : minb == 6 ? (k64 ? pick(I6(), K64(), I1()) : pick(I6(), K0(), I1()))
                            : minb == 4 ? (k64 ? pick(I4(), K64(), I1()) : pick(I4(), K0(), I1()))
                                        : pick(I2(), K0(), I1());
                const int64_t units = lanes / t1p.HP;
                const int lpb = t1_lanes_per_block(t1p.HP == 2, t1p.bps, k_t1_pair_minb); /* pairs: KC = 64 */
                const size_t smem = lpb * bwd_t1_smem(d.K, C, t1p.HP);
                if ((st = set_smem(kern, smem))) return st;
                kern<<<(unsigned)((units + lpb - 1) / lpb), lpb * 32 * MT, smem>>>(d, in, (const T *)a->dy.data, (const T *)a->dht.data, clip,
                                                          (T *)a->dh0.data, go, t1_dv_direct ? (T *)a->dv.data : nullptr,
                                                          t1_df_direct ? (T *)a->df.data : nullptr, ckpt, C, nck);
            }
        } else if (fast) {
            st = launch_bwd_v16_variant<T>(d, in, (const T *)a->dy.data, (const T *)a->dht.data, clip_mode, clip,
                                           (T *)a->dh0.data, go, ckpt, C, nck, bwd_v16_smem<T>(d.K, MT, C), bps);
            if (st) return st;
        } else {
            const int threads = general_threads(d);
            size_t smem = general_small_bytes(d);
            if ((st = set_smem(bwd_general<T>, smem))) return st;
            bwd_general<T><<<(unsigned)lanes, threads, smem>>>(d, in, (const T *)a->dy.data, (const T *)a->dht.data,
                                                               clip_mode, clip, (T *)a->dh0.data, go, ckpt, C, nck,
                                                               (float *)(ws + off_big), big_per_lane);
        }
        CUDA_TRY(cudaGetLastError());
    }

    /* 3. sums over shared heads (and dW over sequences), fixed order, rounded once */
    const int rb = 256;
    auto grid_for = [&](int64_t n) { int64_t g = (n + rb - 1) / rb; return (unsigned)(g < 1 ? 1 : g > 65535 ? 65535 : g); };
    /* the sums over the state heads sharing a q, k, v or f head (nsrc of them, dim floats each):
     * reduce_groups4 where dim keeps the partials' rows 16-byte aligned (the workspace's offsets are
     * 256-byte multiples), else reduce_groups; the same sums in the same order either way */
    auto sum_heads = [&](const float *part, int group, int dim, int nsrc, T *out) {
        const int64_t n = T_ * nsrc * dim;
        if (dim % 4 == 0) reduce_groups4<T><<<grid_for(n / 4), rb>>>(part, T_, d.N, group, dim, out);
        else reduce_groups<T><<<grid_for(n), rb>>>(part, T_, d.N, group, dim, out);
    };
    if (T_ > 0) {
        if (tile_pairs) {
            reduce_tile_pairs<T><<<grid_for(T_ * d.Nq * d.K), rb>>>(go.dq, T_, d.N / hp, d.gq / hp, d.K, pK, (T *)a->dq.data);
            reduce_tile_pairs<T><<<grid_for(T_ * d.Nk * d.K), rb>>>(go.dk, T_, d.N / hp, d.gk / hp, d.K, pK, (T *)a->dk.data);
        } else {
            sum_heads(go.dq, d.gq, d.K, d.Nq, (T *)a->dq.data);
            sum_heads(go.dk, d.gk, d.K, d.Nk, (T *)a->dk.data);
        }
        if (!t1_dv_direct) sum_heads(go.dv, d.gv, d.V, d.Nv, (T *)a->dv.data);
        if (!t1_df_direct) sum_heads(go.df, d.gf, 1, d.Nf, (T *)a->df.data);
    }
    if (lanes > 0) {
        reduce_dW<T><<<grid_for((int64_t)d.Nw * VV), rb>>>(go.dW, d.B, d.N, d.Nw, d.gw, (int)VV, (T *)a->dW.data);
    } else {
        CUDA_TRY(cudaMemset(a->dW.data, 0, (size_t)d.Nw * VV * sizeof(T)));
    }
    CUDA_TRY(cudaGetLastError());
    return M2RNN_OK;
}

/* ---- the table's entries ------------------------------------------------------------------ */

const char *cuda_precision_class(void *ctx, m2rnn_dtype storage)
{
    (void)ctx;
    switch (storage) {
    case M2RNN_F32: return "tf32"; /* fp32 storage; products through bf16 hi/lo splits (better than tf32) */
    case M2RNN_BF16: return "bf16"; /* bf16 storage, fp32 accumulation and state, hardware tanh */
    default: return NULL;
    }
}

/* Memory and copies on the plug-in's device, whichever device the calling thread has current. */
void *cuda_alloc(void *ctx, size_t bytes)
{
    DeviceScope on(static_cast<Ctx *>(ctx)->device);
    void *p = nullptr;
    if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) {
        cudaGetLastError();
        return nullptr;
    }
    return p;
}

void cuda_free(void *ctx, void *ptr)
{
    DeviceScope on(static_cast<Ctx *>(ctx)->device);
    if (ptr) cudaFree(ptr);
}

m2rnn_status cuda_upload(void *ctx, void *dst, const void *src, size_t bytes)
{
    DeviceScope on(static_cast<Ctx *>(ctx)->device);
    CUDA_TRY(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
    return M2RNN_OK;
}

m2rnn_status cuda_download(void *ctx, void *dst, const void *src, size_t bytes)
{
    DeviceScope on(static_cast<Ctx *>(ctx)->device);
    CUDA_TRY(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
    return M2RNN_OK;
}

m2rnn_status cuda_synchronize(void *ctx)
{
    DeviceScope on(static_cast<Ctx *>(ctx)->device);
    CUDA_TRY(cudaDeviceSynchronize());
    return M2RNN_OK;
}

size_t cuda_peak_workspace(void *ctx, bool reset)
{
    std::lock_guard<std::mutex> lock(g_op_lock);
    Ctx *c = static_cast<Ctx *>(ctx);
    size_t p = c->peak;
    if (reset) c->peak = 0;
    return p;
}

/* The limits of the plug-in beyond the argument check's.
 *   - int sizes: RecDims holds B, S, N and the head counts as int, and every sequence's length is
 *     an int in the kernels: anything above 2^31 - 1 would wrap (make_dims), so it is refused
 *     before make_dims runs;
 *   - B·N lanes at most 2^31 - 1 (a grid dimension), K and V at most 65536;
 *   - BF16 with V = 16 (v6's kernels): at most 2^21 state heads, as their y and dv / df offsets
 *     within a chunk, u·N·16 with u < 64, are 32-bit;
 *   - every tensor's data 16-byte aligned: the staging copies 16 or 4 bytes at a time and some
 *     stores take 8, and the checks ran only on aligned tensors;
 *   - the general path's shared memory (W and a few vectors).
 * Returns why these arguments cannot run, or NULL if they can. */
const int64_t k_i32 = INT32_MAX, k_t1_max_heads = 1 << 21;

const char *unsupported_reason(const Ctx *c, const m2rnn_recurrence_dims &dims, const m2rnn_recurrence_inputs &in,
                               const m2rnn_tensor *const *ts, int nts)
{
    const int64_t counts[] = {dims.batch, dims.heads, dims.q_heads, dims.k_heads, dims.v_heads, dims.f_heads, dims.w_heads};
    for (int64_t x : counts)
        if (x > k_i32) return "B, N and every head count at most 2^31 - 1";
    if (longest_sequence(&in.cu_seqlens, dims.batch, dims.seqlen) > k_i32) return "sequences of at most 2^31 - 1 tokens";
    if (dims.batch * dims.heads > k_i32) return "B*N at most 2^31 - 1";
    if (dims.key_dim > 1 << 16 || dims.value_dim > 1 << 16) return "K and V at most 65536";
    for (int i = 0; i < nts; i++)
        if (m2rnn_tensor_present(ts[i]) && (uintptr_t)ts[i]->data % 16 != 0) return "every tensor's data 16-byte aligned";
    const RecDims d = make_dims(dims);
    if (in.q.dtype == M2RNN_BF16 && use_v16(d, M2RNN_BF16) && d.N > k_t1_max_heads) return "N at most 2^21 with BF16 storage and V = 16";
    if (!general_fits(c, d) && !use_v16(d, in.q.dtype)) return "V*V + 2K + 2V floats to fit in a block's shared memory";
    return nullptr;
}

/* The storage dtypes, the argument check (unless `checked`: *dims already holds what a check that
 * passed filled in) and unsupported_reason, for the op's arguments. Returns M2RNN_OK, the argument
 * check's status (*why NULL: the dispatcher reports it), or M2RNN_ERR_UNSUPPORTED with *why set. */
m2rnn_status supported(const Ctx *c, m2rnn_op op, const void *args, m2rnn_recurrence_dims *dims, bool checked,
                       const char **why)
{
    *why = nullptr;
    const bool fwd = op == M2RNN_OP_RECURRENCE_FORWARD;
    if (!fwd && op != M2RNN_OP_RECURRENCE_BACKWARD) {
        *why = "only the recurrence's forward and backward";
        return M2RNN_ERR_UNSUPPORTED;
    }
    const auto *fa = static_cast<const m2rnn_recurrence_forward_args *>(args);
    const auto *ba = static_cast<const m2rnn_recurrence_backward_args *>(args);
    const m2rnn_recurrence_inputs &in = fwd ? fa->in : ba->in;
    const ArgTensors ts = fwd ? arg_tensors(fa) : arg_tensors(ba);
    if (!same_float_dtype(in.q.dtype, ts.t, ts.n)) {
        *why = "F32 or BF16 storage, one dtype for every float tensor";
        return M2RNN_ERR_UNSUPPORTED;
    }
    if (!checked) {
        const m2rnn_status st = fwd ? m2rnn_recurrence_check_forward(fa, dims) : m2rnn_recurrence_check_backward(ba, dims);
        if (st) return st;
    }
    *why = unsupported_reason(c, *dims, in, ts.t, ts.n);
    return *why ? M2RNN_ERR_UNSUPPORTED : M2RNN_OK;
}

bool cuda_supports(void *ctx, m2rnn_op op, const void *args)
{
    m2rnn_recurrence_dims dims;
    const char *why;
    if (supported(static_cast<Ctx *>(ctx), op, args, &dims, false, &why) == M2RNN_OK) return true;
    if (!why) m2rnn_clear_error(); /* invalid arguments: let the dispatcher report them */
    return !why;
}

/* The entries' common start: the argument check, the backend's own limits. */
m2rnn_status enter(void *ctx, m2rnn_op op, const void *args, m2rnn_recurrence_dims *dims)
{
    m2rnn_status st = op == M2RNN_OP_RECURRENCE_FORWARD
                          ? m2rnn_recurrence_check_forward(static_cast<const m2rnn_recurrence_forward_args *>(args), dims)
                          : m2rnn_recurrence_check_backward(static_cast<const m2rnn_recurrence_backward_args *>(args), dims);
    if (st) return st;
    const char *why;
    if (supported(static_cast<Ctx *>(ctx), op, args, dims, true, &why))
        return m2rnn_set_error(M2RNN_ERR_UNSUPPORTED, "cuda: %s needs %s", m2rnn_op_name(op), why);
    return M2RNN_OK;
}

/* ---- K from 34 to 62: the K = 64 kernels on rows padded with zeros ------------------------------
 * With BF16 storage, V = 16 and an even K from 50 to 62, or from 34 to 48 where the generic-K
 * kernels would need their 80-register instances (more than 5 blocks per SM), the op runs v6's
 * kernels for K = 64 (compile-time K, an SM's lanes in one block) on copies of q, k and the states
 * padded with zero rows, not the generic-K kernels (one lane per block, K at run time, spilling at
 * 80 registers). Measured (NOTES.md v24): K = 56 took 1.2-1.4x as long unpadded, K = 34-48 at 6
 * blocks per SM 1.2x for a training step; at 4 blocks per SM K = 34-48 ran 1-7 % faster unpadded, and
 * at 5 padded training steps took 9-11 % longer (v25).
 * M2RNN_CUDA_PAD=0 turns it off (for timing, and for the checks of the generic kernels); =2 pads
 * every even K from 34 to 62, also at 5 blocks per SM or fewer (for timing those).
 * The sums are the same sums: a row past K starts at 0 (h0 padded with zeros) and stays 0 (its k
 * is 0 and tanh(0) = 0), adds 0 to y (its q is 0), and in the backward carries G = 0 (dht and q
 * padded with zeros), so it adds 0 to dv, df and dW; its dq, dk and dh0 are dropped. (For finite
 * inputs: an infinite dy makes a padded row's D = 0·inf = NaN, so outputs that would be infinite
 * can come out NaN.) The copies take a second cached buffer (counted in peak_workspace_bytes): the
 * forward's q and k, T·(Nq + Nk)·64 bf16 values, and h0 and ht, B·N·64·16 each; the backward's q,
 * k, dq and dk, twice that, and h0, dht and dh0. */
constexpr int64_t k_padded_k = 64;

bool pads_k(const Ctx *c, const m2rnn_recurrence_dims &dims, m2rnn_dtype dt)
{
    if (!g_pad_k || dt != M2RNN_BF16 || dims.value_dim != 16 || dims.key_dim <= 32 || dims.key_dim >= k_padded_k || dims.key_dim % 2) return false;
    if (dims.key_dim > 48 || g_pad_k == 2) return true;
    const RecDims d = make_dims(dims);
    return t1_generic_needs_80(c, d, blocks_per_sm(c, (int64_t)d.B * d.N));
}

/* rows of src_w bf16 values to rows of dst_w, cut or padded with zeros */
void copy_rows(const void *src, int64_t src_w, void *dst, int64_t dst_w, int64_t rows)
{
    const int64_t n = rows * dst_w, blocks = (n + 255) / 256;
    if (n > 0)
        copy_rows_padded<<<(unsigned)(blocks < 4096 ? blocks : 4096), 256>>>(static_cast<const uint16_t *>(src), src_w,
                                                                            static_cast<uint16_t *>(dst), dst_w, rows);
}

/* The padded copies of one op: `t` (a tensor of the caller's) now points at n_rows rows of 64·unit
 * values in the pad buffer (its K axis, the last but `unit`'s, now 64), filled from the caller's
 * rows of K·unit values when `fill`. */
struct Padding {
    Workspace plan;
    struct Item {
        m2rnn_tensor *t;
        const void *from;
        size_t off;
        int64_t rows, unit;
        bool fill;
    } items[8];
    int n = 0;
    void add(m2rnn_tensor *t, int64_t rows, int64_t unit, bool fill)
    {
        if (!m2rnn_tensor_present(t)) return;
        items[n++] = {t, t->data, plan.add((size_t)(rows * k_padded_k * unit) * sizeof(uint16_t)), rows, unit, fill};
    }
    m2rnn_status apply(Ctx *c, int64_t K)
    {
        m2rnn_status st = cached_acquire(&c->pad, &c->pad_size, plan.total, "buffer for the padded copies");
        if (st) return st;
        c->pad_bytes = plan.total; /* in peak with the op's workspace (workspace_acquire), or alone: */
        if (plan.total > c->peak) c->peak = plan.total;
        for (int i = 0; i < n; i++) {
            Item &it = items[i];
            it.t->data = static_cast<char *>(c->pad) + it.off;
            it.t->shape[it.unit == 1 ? it.t->rank - 1 : it.t->rank - 2] = k_padded_k;
            if (it.fill) copy_rows(it.from, K * it.unit, it.t->data, k_padded_k * it.unit, it.rows);
        }
        return M2RNN_OK;
    }
    /* the outputs' first K rows back to the caller, if the op ran (st: its status) */
    void finish(Ctx *c, int64_t K, m2rnn_status st)
    {
        for (int i = 0; i < n && !st; i++)
            if (!items[i].fill)
                copy_rows(items[i].t->data, k_padded_k * items[i].unit, const_cast<void *>(items[i].from), K * items[i].unit,
                          items[i].rows);
        c->pad_bytes = 0;
    }
};

/* The padded copies made (p.apply), the op run on them with K = 64 (run(dims)), the outputs cut back. */
template <typename Run>
m2rnn_status run_padded(Ctx *c, Padding &p, const m2rnn_recurrence_dims &dims, Run run)
{
    m2rnn_status st = p.apply(c, dims.key_dim);
    if (st) return st;
    m2rnn_recurrence_dims padded = dims;
    padded.key_dim = k_padded_k;
    st = run(padded);
    p.finish(c, dims.key_dim, st);
    if (st) return st;
    CUDA_TRY(cudaGetLastError());
    return M2RNN_OK;
}

/* The inputs both ops pad: q, k and h0. */
void pad_inputs(Padding &p, m2rnn_recurrence_inputs &in, const m2rnn_recurrence_dims &dims)
{
    p.add(&in.q, dims.tokens * dims.q_heads, 1, true);
    p.add(&in.k, dims.tokens * dims.k_heads, 1, true);
    p.add(&in.h0, dims.batch * dims.heads, dims.value_dim, true);
}

m2rnn_status forward_padded(Ctx *c, const m2rnn_recurrence_forward_args *a, const m2rnn_recurrence_dims &dims, void *saved)
{
    m2rnn_recurrence_forward_args b = *a;
    Padding p;
    pad_inputs(p, b.in, dims);
    p.add(&b.ht, dims.batch * dims.heads, dims.value_dim, false);
    return run_padded(c, p, dims, [&](const m2rnn_recurrence_dims &pd) { return forward_t<__nv_bfloat16>(c, &b, pd, saved); });
}

m2rnn_status backward_padded(Ctx *c, const m2rnn_recurrence_backward_args *a, const m2rnn_recurrence_dims &dims,
                             const void *saved)
{
    m2rnn_recurrence_backward_args b = *a;
    const int64_t T = dims.tokens, states = dims.batch * dims.heads, V = dims.value_dim;
    Padding p;
    pad_inputs(p, b.in, dims);
    p.add(&b.dht, states, V, true);
    p.add(&b.dq, T * dims.q_heads, 1, false);
    p.add(&b.dk, T * dims.k_heads, 1, false);
    p.add(&b.dh0, states, V, false);
    return run_padded(c, p, dims, [&](const m2rnn_recurrence_dims &pd) { return backward_t<__nv_bfloat16>(c, &b, pd, saved); });
}

/* The training pair (ABI 1.3): the forward stores the checkpoints its backward would otherwise
 * recompute (ckpt_plan's). Without lanes or steps there is nothing to store: 0 bytes, and the pair
 * is the plain ops. A K whose backward does not fit reports 0 here and its error in the backward. */
size_t saved_bytes_for(const Ctx *c, const m2rnn_recurrence_dims &dims, const m2rnn_recurrence_inputs &in)
{
    RecDims d = make_dims(dims);
    if (pads_k(c, dims, in.q.dtype)) d.K = (int)k_padded_k; /* the checkpoints of the padded state */
    const int64_t longest = longest_sequence(&in.cu_seqlens, dims.batch, dims.seqlen);
    const CkptPlan p = in.q.dtype == M2RNN_F32 ? ckpt_plan<float>(c, d, longest) : ckpt_plan<__nv_bfloat16>(c, d, longest);
    return p.ok ? p.bytes : 0;
}

size_t cuda_saved_bytes(void *ctx, const m2rnn_recurrence_forward_args *a)
{
    m2rnn_recurrence_dims dims;
    const char *why;
    if (supported(static_cast<Ctx *>(ctx), M2RNN_OP_RECURRENCE_FORWARD, a, &dims, false, &why)) {
        if (!why) m2rnn_clear_error();
        return 0;
    }
    DeviceScope on(static_cast<Ctx *>(ctx)->device); /* ckpt_plan may ask the device about a kernel */
    return saved_bytes_for(static_cast<Ctx *>(ctx), dims, a->in);
}

/* The forward (save: forward_save, with its buffer) and the backward (save: backward_saved). */
m2rnn_status forward_entry(void *ctx, const m2rnn_recurrence_forward_args *a, void *saved, bool save)
{
    Ctx *c = static_cast<Ctx *>(ctx);
    m2rnn_recurrence_dims dims;
    m2rnn_status st = enter(ctx, M2RNN_OP_RECURRENCE_FORWARD, a, &dims);
    if (st) return st;
    std::lock_guard<std::mutex> lock(g_op_lock);
    DeviceScope on(c->device);
    if (save && !saved && saved_bytes_for(c, dims, a->in) > 0)
        return m2rnn_set_error(M2RNN_ERR_NULL, "cuda: recurrence_forward_save: NULL saved buffer");
    if (a->in.q.dtype == M2RNN_F32) return forward_t<float>(c, a, dims, save ? saved : nullptr);
    if (pads_k(c, dims, a->in.q.dtype)) return forward_padded(c, a, dims, save ? saved : nullptr);
    return forward_t<__nv_bfloat16>(c, a, dims, save ? saved : nullptr);
}

m2rnn_status backward_entry(void *ctx, const m2rnn_recurrence_backward_args *a, const void *saved, bool save)
{
    Ctx *c = static_cast<Ctx *>(ctx);
    m2rnn_recurrence_dims dims;
    m2rnn_status st = enter(ctx, M2RNN_OP_RECURRENCE_BACKWARD, a, &dims);
    if (st) return st;
    std::lock_guard<std::mutex> lock(g_op_lock);
    DeviceScope on(c->device);
    if (save && !saved && saved_bytes_for(c, dims, a->in) > 0)
        return m2rnn_set_error(M2RNN_ERR_NULL, "cuda: recurrence_backward_saved: NULL saved buffer");
    if (a->in.q.dtype == M2RNN_F32) return backward_t<float>(c, a, dims, save ? saved : nullptr);
    if (pads_k(c, dims, a->in.q.dtype)) return backward_padded(c, a, dims, save ? saved : nullptr);
    return backward_t<__nv_bfloat16>(c, a, dims, save ? saved : nullptr);
}

m2rnn_status cuda_forward(void *ctx, const m2rnn_recurrence_forward_args *a) { return forward_entry(ctx, a, nullptr, false); }
m2rnn_status cuda_backward(void *ctx, const m2rnn_recurrence_backward_args *a) { return backward_entry(ctx, a, nullptr, false); }
m2rnn_status cuda_forward_save(void *ctx, const m2rnn_recurrence_forward_args *a, void *saved)
{
    return forward_entry(ctx, a, saved, true);
}
m2rnn_status cuda_backward_saved(void *ctx, const m2rnn_recurrence_backward_args *a, const void *saved)
{
    return backward_entry(ctx, a, saved, true);
}

m2rnn_backend g_table;
char g_description[384];

} // namespace

extern "C" __attribute__((visibility("default"))) const m2rnn_backend *m2rnn_backend_entry(char *why, size_t why_size)
{
    auto fail = [&](const char *fmt, const char *detail) -> const m2rnn_backend * {
        if (why && why_size) snprintf(why, why_size, fmt, detail);
        return nullptr;
    };
    std::lock_guard<std::mutex> lock(g_op_lock); /* two threads opening it at once */
    if (g_table.name) return &g_table;

    /* The settings first, before any CUDA call: a bad one is reported as itself, GPU or not.
     * Defaults: the v6 kernels (fwd_t1, bwd_t1), measured fastest of those that pass check_cuda and
     * the vectors (NOTES.md v6 on); 0 for the others lets the launch code choose, and T1_WORDS = 1
     * keeps v17's k and q words made once per source head. */
    const struct {
        const char *name;
        int def, n;
        unsigned only; /* the values allowed, as bits; 0: all from 0 to n - 1 */
        int *value;
    } settings[] = {
        {"M2RNN_CUDA_FWD", k_fwd_t1, k_nfwd, 0, &g_fwd_variant}, {"M2RNN_CUDA_BWD", k_bwd_t1, k_nbwd, 0, &g_bwd_variant},
        {"M2RNN_CUDA_CKPT_C", 0, 33, 0, &g_ckpt_cap},            {"M2RNN_CUDA_BWD_HEADS", 0, 3, 0, &g_bwd_heads},
        {"M2RNN_CUDA_T1_WORDS", 1, 2, 0, &g_t1_words},           {"M2RNN_CUDA_T1_LANES", 0, 7, 0, &g_t1_lanes},
        {"M2RNN_CUDA_T1_MINB", 0, 7, 1u << 0 | 1u << 4 | 1u << 6, &g_t1_minb},
        {"M2RNN_CUDA_PAD", 1, 3, 0, &g_pad_k},
    };
    char bad[256];
    for (const auto &st : settings)
        if (!env_index(st.name, st.def, st.n, st.only, st.value, bad, sizeof bad)) return fail("%s", bad);

    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) return fail("no CUDA device (%s)", cudaGetErrorString(e));
    if (count == 0) return fail("no CUDA device%s", "");
    Ctx *c = &g_ctx;
    c->device = 0;
    cudaDeviceProp prop;
    if ((e = cudaGetDeviceProperties(&prop, c->device)) != cudaSuccess) return fail("cudaGetDeviceProperties: %s", cudaGetErrorString(e));
    if (prop.major < 8) return fail("the CUDA backend needs compute capability 8.0 or newer (found %s)", prop.name);
    /* Is there code for this device in the binary? */
    cudaFuncAttributes fa;
    if ((e = cudaFuncGetAttributes(&fa, fwd_v16<__nv_bfloat16, false, 2, TANH_F32, false, false>)) != cudaSuccess)
        return fail("no kernel image for this device (%s): rebuild with NVCC_ARCH_FLAGS for it", cudaGetErrorString(e));
    c->sms = prop.multiProcessorCount;
    c->smem_optin = prop.sharedMemPerBlockOptin;
    c->smem_per_sm = prop.sharedMemPerMultiprocessor;
    c->regs_per_sm = prop.regsPerMultiprocessor;

    snprintf(g_description, sizeof g_description,
             "CUDA on %s (sm_%d%d, %d SMs): fp32 state, bf16 tensor cores; bf16 fwd %d (%s), bwd %s", prop.name,
             prop.major, prop.minor, prop.multiProcessorCount, g_fwd_variant, k_fwd_variants[g_fwd_variant].name,
             g_bwd_variant == k_bwd_t1       ? "v6 bwd_t1: 1 tile/warp, bf16 state history per chunk, Z recomputed"
             : k_bwd_occ[g_bwd_variant] == 2 ? "unsplit, dk/dq/dv mma, 80 registers"
             : k_bwd_occ[g_bwd_variant] == 1 ? "unsplit, dk/dq/dv mma, 80 registers above 4 blocks/SM"
             : k_bwd_mma[g_bwd_variant]      ? "unsplit, dk/dq/dv mma"
             : k_bwd_split[g_bwd_variant]    ? "split"
                                             : "unsplit");
    if (g_bwd_variant == k_bwd_t1) {
        const size_t used = strlen(g_description);
        snprintf(g_description + used, sizeof g_description - used, "; %s",
                 g_bwd_heads == 1   ? "1 head/block"
                 : g_bwd_heads == 2 ? "2 heads/block where allowed (K 64, q and k shared by pairs)"
                                    : "2 heads/block where 1 would need > 4 blocks/SM (K 64, q and k shared by pairs)");
    }
    m2rnn_backend t;
    memset(&t, 0, sizeof t);
    t.abi_major = M2RNN_ABI_MAJOR;
    t.abi_minor = M2RNN_ABI_MINOR;
    t.size = sizeof(m2rnn_backend);
    t.description = g_description;
    t.ctx = c;
    t.precision_class = cuda_precision_class;
    t.alloc = cuda_alloc;
    t.free = cuda_free;
    t.upload = cuda_upload;
    t.download = cuda_download;
    t.synchronize = cuda_synchronize;
    t.peak_workspace_bytes = cuda_peak_workspace;
    t.supports = cuda_supports;
    t.recurrence_forward = cuda_forward;
    t.recurrence_backward = cuda_backward;
    t.recurrence_saved_bytes = cuda_saved_bytes;
    t.recurrence_forward_save = cuda_forward_save;
    t.recurrence_backward_saved = cuda_backward_saved;
    t.name = "cuda";
    g_table = t;
    return &g_table;
}
