/*
 * The fast path: V = 16 (the paper's value head size), any K up to 128, bf16 tensor cores for
 * H·W, dA·Wᵀ and H_{t-1}ᵀ·dA, the state in fp32 registers.
 *
 * Mapping. One thread block per lane (sequence b, state head n); warp w owns rows 16w .. 16w+15 of
 * the K×16 state (rows of H are independent, SPEC §1, so warps never exchange state; only the
 * readout y = Hᵀq sums over rows, across warps, through shared memory once per chunk). K is padded
 * to a multiple of 16 with zero rows: k = 0 there, so those rows stay exactly 0.
 *
 * Each thread keeps its 8 elements of the warp's 16×16 block in mma C-fragment order
 * (see common.cuh): h[0..3] = columns 0-7 tile, h[4..7] = columns 8-15 tile. Those are also the
 * A fragment of the block, so H·W needs no shuffles. F32 storage: split H into bf16 hi + lo (16
 * significant bits) and run hi·W + lo·W + hi·W_lo (W split too): the product is good to about
 * 2^-16 relative, far better than tf32. BF16 storage (W exact in bf16): H is rounded once to bf16
 * as the product's operand (2^-9), the state itself stays fp32 (v1 split it too: 1.5e-4 vs ~1e-3
 * relative error in y, at the cost of twice the MMAs and the split arithmetic; see NOTES.md).
 * The backward's dA·Wᵀ and H_{t-1}ᵀ·dA are split for F32 storage; for BF16 storage the default
 * (v4) rounds dA and H once to bf16 and also computes dk, dq, dv on the tensor cores (BMMA).
 * The BF16 forward's default (v4) also does the readout y = Hᵀq on the tensor cores (MMAY).
 *
 * Inputs of a chunk of TS tokens are staged in shared memory with cp.async one chunk ahead.
 *
 * Backward: fwd_v16 with ckpt != NULL stores the state (fragment order) every C steps; bwd_v16
 * walks the chunks backwards, recomputes the chunk's H_t and Z_t into shared memory (each thread
 * only ever reads back its own elements), and runs the reverse steps. dW uses the transposed
 * fragments of H_{t-1} and dA (movmatrix), accumulated in fp32 registers for the whole sequence.
 */
#ifndef M2RNN_CUDA_V16_CUH
#define M2RNN_CUDA_V16_CUH

#include "common.cuh"

#define V16_MAX_WARPS 8 /* K <= 128: 16-row tiles */

__host__ __device__ inline size_t align16(size_t x) { return (x + 15) & ~(size_t)15; }

/* Shared memory of fwd_v16 (NW warps). */
template <typename T>
static inline size_t fwd_v16_smem(int K, int NW, int TS)
{
    return align16(2 * (size_t)TS * (2 * K + 16) * sizeof(T)) + 2 * (size_t)TS * sizeof(float) +
           (size_t)TS * NW * 16 * sizeof(float);
}

/* Shared memory of bwd_v16. */
template <typename T>
static inline size_t bwd_v16_smem(int K, int MT, int C)
{
    size_t hs = (size_t)MT * (2 * C + 1) * 256 * sizeof(float);
    size_t stage = align16(2 * (size_t)C * (2 * K + 32) * sizeof(T));
    size_t small = 2 * (size_t)C * sizeof(float) + (size_t)C * MT * 17 * sizeof(float);
    size_t dwred = (size_t)MT * 256 * sizeof(float);
    return hs + stage + (small > dwred ? small : dwred);
}

/* W's B fragments for H·W (B[l][j] = W[l][j]) and for dA·Wᵀ (B[l][j] = W[j][l]), hi and lo parts. */
template <typename T>
__device__ __forceinline__ void load_w_fragments(const T *Wn, int g, int t4, bool transposed, uint32_t (&hi)[2][2],
                                                 uint32_t (&lo)[2][2])
{
    for (int nt = 0; nt < 2; nt++) {
        int j = nt * 8 + g;
        for (int half = 0; half < 2; half++) {
            int l = 2 * t4 + 8 * half;
            float w0 = transposed ? to_f(Wn[j * 16 + l]) : to_f(Wn[l * 16 + j]);
            float w1 = transposed ? to_f(Wn[j * 16 + l + 1]) : to_f(Wn[(l + 1) * 16 + j]);
            split_bf16(w0, w1, hi[nt][half], lo[nt][half]);
        }
    }
}

/* The 8 fragment-order floats of a 16×16 block as its bf16 A fragment (common.cuh). */
__device__ __forceinline__ void pack_state(const float (&x)[8], uint32_t (&a)[4])
{
    a[0] = pack_bf16(x[0], x[1]);
    a[1] = pack_bf16(x[2], x[3]);
    a[2] = pack_bf16(x[4], x[5]);
    a[3] = pack_bf16(x[6], x[7]);
}

/* acc[nt] += X·B for the 16×16 block X held as 8 fragment-order floats (x[0..3] tile 0, x[4..7] tile 1).
 * SPLIT: X as bf16 hi + lo (and, with W_LO, B's lo part too); the hi product goes into acc and the
 * correction terms into a second accumulator, so the two chains run side by side instead of one
 * after the other. Without SPLIT: X rounded once to bf16 (relative error 2^-9 in the product). */
template <bool SPLIT, bool W_LO>
__device__ __forceinline__ void block_times_w(float (&acc)[2][4], const float (&x)[8], const uint32_t (&bh)[2][2],
                                              const uint32_t (&bl)[2][2])
{
    if (!SPLIT) {
        const uint32_t a[4] = {pack_bf16(x[0], x[1]), pack_bf16(x[2], x[3]), pack_bf16(x[4], x[5]), pack_bf16(x[6], x[7])};
#pragma unroll
        for (int nt = 0; nt < 2; nt++) mma_bf16(acc[nt], a, bh[nt][0], bh[nt][1]);
        return;
    }
    uint32_t ah[4], al[4];
    split_bf16(x[0], x[1], ah[0], al[0]);
    split_bf16(x[2], x[3], ah[1], al[1]);
    split_bf16(x[4], x[5], ah[2], al[2]);
    split_bf16(x[6], x[7], ah[3], al[3]);
    float corr[2][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}};
#pragma unroll
    for (int nt = 0; nt < 2; nt++) {
        mma_bf16(acc[nt], ah, bh[nt][0], bh[nt][1]);
        mma_bf16(corr[nt], al, bh[nt][0], bh[nt][1]);
        if (W_LO) mma_bf16(corr[nt], ah, bl[nt][0], bl[nt][1]);
    }
#pragma unroll
    for (int nt = 0; nt < 2; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) acc[nt][e] += corr[nt][e];
}

/* One forward step of a thread's 8 elements: h <- f h + (1-f) tanh(h W + k vᵀ); z gets tanh(·).
 * acc comes in holding k vᵀ (the thread's 8 elements). hb is h packed to bf16 in A-fragment order
 * (BF16 storage: the product's operand, kept from the end of the previous step so that the forward's
 * readout can use it too; F32 storage ignores it and splits h into hi + lo instead). */
template <bool F32MODE, int TM>
__device__ __forceinline__ void v16_step(float (&h)[8], uint32_t (&hb)[4], float (&z)[8], float (&acc)[2][4], float f,
                                         const uint32_t (&bh)[2][2], const uint32_t (&bl)[2][2])
{
    /* F32 storage: 16-bit split products; BF16 storage: H rounded to bf16 for the product only
     * (the state itself stays fp32; the authors' kernel rounds the state to bf16 every step). */
    if constexpr (F32MODE) {
        block_times_w<true, true>(acc, h, bh, bl);
    } else {
#pragma unroll
        for (int nt = 0; nt < 2; nt++) mma_bf16(acc[nt], hb, bh[nt][0], bh[nt][1]);
    }
    tanh8<TM>(acc, z);
#pragma unroll
    for (int e = 0; e < 8; e++) h[e] = z[e] + f * (h[e] - z[e]);
    if constexpr (!F32MODE) pack_state(h, hb);
}

/* k vᵀ for the thread's 8 elements (rows kr0 = k[g], kr1 = k[g+8]; columns 2t, 2t+1, 2t+8, 2t+9). */
__device__ __forceinline__ void kv_init(float (&acc)[2][4], float kr0, float kr1, const float (&vc)[4])
{
    acc[0][0] = kr0 * vc[0]; acc[0][1] = kr0 * vc[1]; acc[0][2] = kr1 * vc[0]; acc[0][3] = kr1 * vc[1];
    acc[1][0] = kr0 * vc[2]; acc[1][1] = kr0 * vc[3]; acc[1][2] = kr1 * vc[2]; acc[1][3] = kr1 * vc[3];
}

/* Sum 4 per-lane column partials (columns 2t, 2t+1, 2t+8, 2t+9 of the block) over the 8 lanes of
 * a column group (lane bits 2..4). Returns the full sum for column *col on lanes with bit 2 clear. */
__device__ __forceinline__ float reduce_columns(const float (&p)[4], int l, int t4, int *col)
{
    const bool b4 = l & 16, b3 = l & 8;
    float s0 = b4 ? p[0] : p[2], s1 = b4 ? p[1] : p[3];
    float k0 = b4 ? p[2] : p[0], k1 = b4 ? p[3] : p[1];
    k0 += __shfl_xor_sync(0xffffffffu, s0, 16);
    k1 += __shfl_xor_sync(0xffffffffu, s1, 16);
    float s = b3 ? k0 : k1, k = b3 ? k1 : k0;
    k += __shfl_xor_sync(0xffffffffu, s, 8);
    k += __shfl_xor_sync(0xffffffffu, k, 4);
    *col = (b4 ? 8 : 0) + 2 * t4 + (b3 ? 1 : 0);
    return k;
}

/* Sum 4 per-lane values over the 4 lanes of a quad (lane bits 0..1); lane t ends with the sum of x[t]. */
__device__ __forceinline__ float reduce_quad(const float (&x)[4], int t4)
{
    const bool b1 = t4 & 2, b0 = t4 & 1;
    float s0 = b1 ? x[0] : x[2], s1 = b1 ? x[1] : x[3];
    float k0 = b1 ? x[2] : x[0], k1 = b1 ? x[3] : x[1];
    k0 += __shfl_xor_sync(0xffffffffu, s0, 2);
    k1 += __shfl_xor_sync(0xffffffffu, s1, 2);
    float s = b0 ? k0 : k1, k = b0 ? k1 : k0;
    k += __shfl_xor_sync(0xffffffffu, s, 1);
    return k;
}

/* ---- forward -----------------------------------------------------------------------------
 * Each warp owns TPW consecutive 16-row tiles (independent recurrences side by side in one warp:
 * more instruction-level parallelism, and the per-step token loads and the readout are shared by
 * the tiles). blockDim = 32 * ceil(MT / TPW); tiles >= MT are all padding (rows >= K).
 *
 * Variants (template parameters; backend.cu picks one per storage dtype, NOTES.md says why):
 *   TM     which tanh (common.cuh: TANH_F32 for F32 storage, TANH_F32 or TANH_F16X2 for BF16).
 *   MMAY   (BF16 only) the readout y = Hᵀq on the tensor cores: A = Hᵀ (the packed bf16 state,
 *          transposed 8×8 block by block with movmatrix), B = q in every column, so one MMA per
 *          tile sums over the tile's 16 rows and no shuffles are needed. y then sees H rounded to
 *          bf16 (2^-9, the same rounding as the H·W operand) instead of fp32 H.
 *   KVMMA  (BF16 only) k vᵀ on the tensor cores: A has k in column 0, B has v in row 0 (bf16 inputs,
 *          so every product is exact and the result equals the fp32 k·v products bit for bit);
 *          replaces 8 multiplies and the bf16→fp32 conversions of k and v per tile.
 * The simple variant (TPW 2, TANH_F32, no MMAY, no KVMMA) is the v3 kernel of NOTES.md. */
#define V16_TPW_MAX 4

/* The checkpoint layout every V = 16 kernel shares: lane `lane`'s checkpoint ck (the state before
 * step ck·C) is MT·256 floats, tile by tile, and lane l of the warp that runs a tile holds its 8
 * floats of it, in fragment order: 8 floats at this offset from ckpt. With one tile per warp that is
 * the checkpoint's start plus 8·tid. (bwd_v16 and bwd_t1 read it in that form, which their measured
 * code was compiled from: ptxas keeps the written order of the address arithmetic.) */
__device__ __forceinline__ size_t v16_ckpt_offset(int lane, int nck, int64_t ck, int MT, int tile, int l)
{
    return ((((size_t)lane * nck + ck) * MT + tile) * 32 + l) * 8;
}

/* fwd_v16's rows g and g + 8 of each of the warp's TPW tiles, and which of the tile's q pairs (rows
 * 2t, 2t+1 and 2t+8, 2t+9: the MMA readout's B words) exist (K is even for BF16). */
template <int TPW>
__device__ __forceinline__ void v16_tile_rows(int w, int g, int c0, int c2, int K, int (&rA)[TPW], int (&rB)[TPW], bool (&qok0)[TPW],
                                              bool (&qok1)[TPW])
{
#pragma unroll
    for (int i = 0; i < TPW; i++) {
        rA[i] = (w * TPW + i) * 16 + g;
        rB[i] = rA[i] + 8;
        qok0[i] = (w * TPW + i) * 16 + c0 < K;
        qok1[i] = (w * TPW + i) * 16 + c2 < K;
    }
}

/* The lane's starting state h0 (zeros without one) into the warp's tiles, and its bf16 packing. */
template <typename T, int TPW>
__device__ __forceinline__ void v16_load_h0(const T *h0_all, int lane, int K, const int (&rA)[TPW], const int (&rB)[TPW], int c0,
                                            int c2, float (&h)[TPW][8], uint32_t (&hb)[TPW][4])
{
    const T *h0 = h0_all ? h0_all + (size_t)lane * K * 16 : (const T *)0;
    const int cols[8] = {c0, c0 + 1, c0, c0 + 1, c2, c2 + 1, c2, c2 + 1};
#pragma unroll
    for (int i = 0; i < TPW; i++) {
#pragma unroll
        for (int e = 0; e < 8; e++) {
            int r = (e & 2) ? rB[i] : rA[i];
            h[i][e] = (h0 && r < K) ? to_f(h0[r * 16 + cols[e]]) : 0.0f;
        }
        pack_state(h[i], hb[i]);
    }
}

/* The final state of the warp's tiles into ht (rows past K are padding). */
template <typename T, int TPW>
__device__ __forceinline__ void v16_store_ht(T *ht, int lane, int K, const int (&rA)[TPW], const int (&rB)[TPW], int c0, int c2,
                                             const float (&h)[TPW][8])
{
    T *dst = ht + (size_t)lane * K * 16;
    const int cols[8] = {c0, c0 + 1, c0, c0 + 1, c2, c2 + 1, c2, c2 + 1};
#pragma unroll
    for (int i = 0; i < TPW; i++)
#pragma unroll
        for (int e = 0; e < 8; e++) {
            int r = (e & 2) ? rB[i] : rA[i];
            if (r < K) dst[r * 16 + cols[e]] = from_f<T>(h[i][e]);
        }
}

/* Checkpoint ck of the warp's tiles (v16_ckpt_offset's layout). */
template <int TPW>
__device__ __forceinline__ void v16_store_ckpt(float *ckpt, int lane, int nck, int64_t ck, int MT, int w, int l, const float (&h)[TPW][8])
{
#pragma unroll
    for (int i = 0; i < TPW; i++) {
        const int tile = w * TPW + i;
        if (tile < MT) {
            float4 *dst = reinterpret_cast<float4 *>(ckpt + v16_ckpt_offset(lane, nck, ck, MT, tile, l));
            dst[0] = make_float4(h[i][0], h[i][1], h[i][2], h[i][3]);
            dst[1] = make_float4(h[i][4], h[i][5], h[i][6], h[i][7]);
        }
    }
}

/* One chunk's staged inputs (fwd_v16): rows [k TS·K | q TS·K (with y) | v TS·16] from step t0 on. */
template <typename T>
__device__ __forceinline__ void v16_stage_chunk(T *s, const LaneIn<T> &li, int64_t t0, int ntok, int TS, int K, bool with_q, int tid,
                                                int nthr)
{
    stage_rows(s, li.k + t0 * li.kst, ntok, li.kst, K, tid, nthr);
    if (with_q) stage_rows(s + TS * K, li.q + t0 * li.qst, ntok, li.qst, K, tid, nthr);
    stage_rows(s + 2 * TS * K, li.v + t0 * li.vst, ntok, li.vst, 16, tid, nthr);
}

/* y of one chunk of ntok steps from step row0 on: the NW warps' partials ybuf[u][w][16] summed in
 * warp order. */
template <typename T>
__device__ __forceinline__ void v16_flush_y(T *y, const float *ybuf, int64_t row0, int ntok, int N, int n, int NW, int tid, int nthr)
{
    for (int idx = tid; idx < ntok * 16; idx += nthr) {
        int u = idx >> 4, j = idx & 15;
        float acc = 0.0f;
        for (int ww = 0; ww < NW; ww++) acc += ybuf[(u * NW + ww) * 16 + j];
        y[((row0 + u) * N + n) * 16 + j] = from_f<T>(acc);
    }
}

/* y may be NULL (the backward's checkpoint pass). ckpt: if not NULL, the state before step t,
 * t % C == 0, goes to checkpoint t / C in v16_ckpt_offset's layout, the one bwd_v16 (one tile per
 * warp) reads back, whatever TPW is. */
template <typename T, bool F32MODE, int TPW, int TM, bool MMAY, bool KVMMA>
__global__ void __launch_bounds__(32 * ((V16_MAX_WARPS + TPW - 1) / TPW), 4)
    fwd_v16(RecDims d, RecIn<T> in, T *y, T *ht, float *ckpt, int C, int nck, int TS)
{
    static_assert(!(F32MODE && (MMAY || KVMMA)), "the tensor-core readout and k vᵀ need bf16 inputs");
    extern __shared__ __align__(16) unsigned char smraw[];
    const int K = d.K, N = d.N, NW = blockDim.x >> 5, nthr = blockDim.x, MT = (K + 15) >> 4;
    const int tid = threadIdx.x, w = tid >> 5, l = tid & 31, g = l >> 2, t4 = l & 3;
    const int lane = blockIdx.x, b = lane / N, n = lane % N;
    const int c0 = 2 * t4, c2 = 2 * t4 + 8;
    int rA[TPW], rB[TPW];    /* rows g and g+8 of each tile */
    bool qok0[TPW], qok1[TPW]; /* MMAY: the tile's q pairs that exist */
    v16_tile_rows(w, g, c0, c2, K, rA, rB, qok0, qok1);

    const int stage_elems = TS * (2 * K + 16);
    T *stage = reinterpret_cast<T *>(smraw);
    float *fbuf = reinterpret_cast<float *>(smraw + align16(2 * (size_t)stage_elems * sizeof(T)));
    float *ybuf = fbuf + 2 * TS;

    uint32_t bh[2][2], bl[2][2];
    load_w_fragments(in.W + (size_t)(n / d.gw) * 256, g, t4, false, bh, bl);

    float h[TPW][8];
    uint32_t hb[TPW][4];
    v16_load_h0(in.h0, lane, K, rA, rB, c0, c2, h, hb);

    int64_t start, end;
    seq_range(d, in.cu, b, start, end);
    const int64_t L = end - start;
    const LaneIn<T> li = lane_inputs(d, in, start, n);

    auto issue = [&](int64_t t0, int buf) {
        v16_stage_chunk(stage + buf * stage_elems, li, t0, (int)(L - t0 < TS ? L - t0 : TS), TS, K, y != nullptr, tid, nthr);
    };
    if (L > 0) issue(0, 0);
    cp_async_commit();
    if (tid < TS && tid < L) fbuf[tid] = to_f(li.f[tid * li.fst]);

    int to_ckpt = 0; /* steps until the next checkpoint */
    for (int64_t t0 = 0, ci = 0; t0 < L; t0 += TS, ci++) {
        const int cur = (int)(ci & 1);
        const int ntok = (int)(L - t0 < TS ? L - t0 : TS);
        float fpre = 0.0f;
        if (t0 + TS < L) {
            issue(t0 + TS, cur ^ 1);
            if (tid < TS && t0 + TS + tid < L) fpre = to_f(li.f[(t0 + TS + tid) * li.fst]);
        }
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();

        const T *ks = stage + cur * stage_elems, *qs = ks + TS * K, *vs = qs + TS * K;
        const float *fs = fbuf + cur * TS;
        for (int u = 0; u < ntok; u++) {
            if (ckpt) {
                if (to_ckpt == 0) {
                    v16_store_ckpt(ckpt, lane, nck, (t0 + u) / C, MT, w, l, h);
                    to_ckpt = C;
                }
                to_ckpt--;
            }
            const T *kt = ks + u * K, *vt = vs + u * 16;
            const float f = fs[u];
            if constexpr (KVMMA) {
                /* A = k in column 0 (lanes t = 0 hold columns 0-1: pack(k, 0) is the zero-extended
                 * 16-bit word), B = v in row 0 (likewise); every other fragment element is 0. */
                const unsigned short *kw = reinterpret_cast<const unsigned short *>(kt);
                const unsigned short *vw = reinterpret_cast<const unsigned short *>(vt);
                const uint32_t bv0 = t4 == 0 ? (uint32_t)vw[g] : 0u, bv1 = t4 == 0 ? (uint32_t)vw[8 + g] : 0u;
#pragma unroll
                for (int i = 0; i < TPW; i++) {
                    const uint32_t ak[4] = {(t4 == 0 && rA[i] < K) ? (uint32_t)kw[rA[i]] : 0u,
                                            (t4 == 0 && rB[i] < K) ? (uint32_t)kw[rB[i]] : 0u, 0u, 0u};
                    float acc[2][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}}, z[8];
                    mma_bf16(acc[0], ak, bv0, 0u);
                    mma_bf16(acc[1], ak, bv1, 0u);
                    v16_step<F32MODE, TM>(h[i], hb[i], z, acc, f, bh, bl);
                }
            } else {
                const float vc[4] = {to_f(vt[c0]), to_f(vt[c0 + 1]), to_f(vt[c2]), to_f(vt[c2 + 1])};
#pragma unroll
                for (int i = 0; i < TPW; i++) {
                    const float kr0 = rA[i] < K ? to_f(kt[rA[i]]) : 0.0f, kr1 = rB[i] < K ? to_f(kt[rB[i]]) : 0.0f;
                    float acc[2][4], z[8];
                    kv_init(acc, kr0, kr1, vc);
                    v16_step<F32MODE, TM>(h[i], hb[i], z, acc, f, bh, bl);
                }
            }
            if (y) {
                const T *qt = qs + u * K;
                if constexpr (MMAY) {
                    /* D[j][*] = Σ_i Hᵀ[j][i] q_i over the warp's tiles; lanes t = 0 write rows g, g+8. */
                    const uint32_t *qw = reinterpret_cast<const uint32_t *>(qt);
                    float yd[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
                    for (int i = 0; i < TPW; i++) {
                        const int tile = w * TPW + i;
                        const uint32_t at[4] = {movmatrix_trans(hb[i][0]), movmatrix_trans(hb[i][2]),
                                                movmatrix_trans(hb[i][1]), movmatrix_trans(hb[i][3])};
                        const uint32_t q0 = qok0[i] ? qw[tile * 8 + t4] : 0u, q1 = qok1[i] ? qw[tile * 8 + 4 + t4] : 0u;
                        mma_bf16(yd, at, q0, q1);
                    }
                    if (t4 == 0) {
                        ybuf[(u * NW + w) * 16 + g] = yd[0];
                        ybuf[(u * NW + w) * 16 + g + 8] = yd[2];
                    }
                } else {
                    float p[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
                    for (int i = 0; i < TPW; i++) {
                        const float q0 = rA[i] < K ? to_f(qt[rA[i]]) : 0.0f, q1 = rB[i] < K ? to_f(qt[rB[i]]) : 0.0f;
                        p[0] = fmaf(q0, h[i][0], fmaf(q1, h[i][2], p[0]));
                        p[1] = fmaf(q0, h[i][1], fmaf(q1, h[i][3], p[1]));
                        p[2] = fmaf(q0, h[i][4], fmaf(q1, h[i][6], p[2]));
                        p[3] = fmaf(q0, h[i][5], fmaf(q1, h[i][7], p[3]));
                    }
                    int col;
                    float s = reduce_columns(p, l, t4, &col);
                    if (!(l & 4)) ybuf[(u * NW + w) * 16 + col] = s;
                }
            }
        }
        __syncthreads();
        if (y) v16_flush_y(y, ybuf, start + t0, ntok, N, n, NW, tid, nthr);
        if (t0 + TS < L && tid < TS) fbuf[(cur ^ 1) * TS + tid] = fpre;
        __syncthreads();
    }
    cp_async_wait<0>();

    if (ht) v16_store_ht(ht, lane, K, rA, rB, c0, c2, h);
}

/* ---- forward, BF16 fast variant -------------------------------------------------------------
 * fwd_v16<bf16, .., MMAY> with the step's loop body rearranged by hand: the compiler does not
 * overlap loop iterations, and a warp issues in order, so the readout's store at the end of a step
 * waited for its MMA (SASS of v8: two chained readout MMAs, then the STS, then the loop branch).
 * Here step u's readout result is stored to shared memory during step u+1, the tiles' readout MMAs
 * have separate accumulators, and v comes as two 32-bit words. With PREF, step u+1's inputs
 * (k rows, v words, f, q words) are also loaded into registers during step u.
 * The recurrence's arithmetic is that of fwd_v16<bf16, false, TPW, TM, true, false>; y sums the
 * tiles in a different order. */
template <int TPW, int TM, bool PREF>
__global__ void __launch_bounds__(32 * ((V16_MAX_WARPS + TPW - 1) / TPW), 4)
    fwd_v16_pf(RecDims d, RecIn<__nv_bfloat16> in, __nv_bfloat16 *y, __nv_bfloat16 *ht, float *ckpt, int C, int nck, int TS)
{
    typedef __nv_bfloat16 T;
    extern __shared__ __align__(16) unsigned char smraw[];
    const int K = d.K, N = d.N, NW = blockDim.x >> 5, nthr = blockDim.x, MT = (K + 15) >> 4;
    const int tid = threadIdx.x, w = tid >> 5, l = tid & 31, g = l >> 2, t4 = l & 3;
    const int lane = blockIdx.x, b = lane / N, n = lane % N;
    const int c0 = 2 * t4, c2 = 2 * t4 + 8;
    int rA[TPW], rB[TPW];
    bool qok0[TPW], qok1[TPW];
    v16_tile_rows(w, g, c0, c2, K, rA, rB, qok0, qok1);

    const int stage_elems = TS * (2 * K + 16);
    T *stage = reinterpret_cast<T *>(smraw);
    float *fbuf = reinterpret_cast<float *>(smraw + align16(2 * (size_t)stage_elems * sizeof(T)));
    float *ybuf = fbuf + 2 * TS;

    uint32_t bh[2][2], bl[2][2];
    load_w_fragments(in.W + (size_t)(n / d.gw) * 256, g, t4, false, bh, bl);

    float h[TPW][8];
    uint32_t hb[TPW][4];
    v16_load_h0(in.h0, lane, K, rA, rB, c0, c2, h, hb);

    int64_t start, end;
    seq_range(d, in.cu, b, start, end);
    const int64_t L = end - start;
    const LaneIn<T> li = lane_inputs(d, in, start, n);

    auto issue = [&](int64_t t0, int buf) {
        v16_stage_chunk(stage + buf * stage_elems, li, t0, (int)(L - t0 < TS ? L - t0 : TS), TS, K, y != nullptr, tid, nthr);
    };
    if (L > 0) issue(0, 0);
    cp_async_commit();
    if (tid < TS && tid < L) fbuf[tid] = to_f(li.f[tid * li.fst]);

    /* One step's inputs, in registers. v: the two bf16 pairs (2t, 2t+1) and (2t+8, 2t+9) as words. */
    struct In {
        float kr0[TPW], kr1[TPW], f;
        uint32_t v0, v1, q0[TPW], q1[TPW];
    };
    int to_ckpt = 0;
    for (int64_t t0 = 0, ci = 0; t0 < L; t0 += TS, ci++) {
        const int cur = (int)(ci & 1);
        const int ntok = (int)(L - t0 < TS ? L - t0 : TS);
        float fpre = 0.0f;
        if (t0 + TS < L) {
            issue(t0 + TS, cur ^ 1);
            if (tid < TS && t0 + TS + tid < L) fpre = to_f(li.f[(t0 + TS + tid) * li.fst]);
        }
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();

        const T *ks = stage + cur * stage_elems, *qs = ks + TS * K, *vs = qs + TS * K;
        const float *fs = fbuf + cur * TS;
        /* The staging buffer is followed by more shared memory (q/v regions, fbuf, ybuf), so loading
         * step ntok's inputs (one past the chunk) reads initialised-or-not shared memory that is
         * never used: no branch is needed around the look-ahead load. */
        auto load = [&](int u, In &x) {
            const T *kt = ks + u * K;
            const uint32_t *vw = reinterpret_cast<const uint32_t *>(vs + u * 16);
            const uint32_t *qw = reinterpret_cast<const uint32_t *>(qs + u * K);
#pragma unroll
            for (int i = 0; i < TPW; i++) {
                x.kr0[i] = rA[i] < K ? to_f(kt[rA[i]]) : 0.0f;
                x.kr1[i] = rB[i] < K ? to_f(kt[rB[i]]) : 0.0f;
                const int tile = w * TPW + i;
                x.q0[i] = qok0[i] ? qw[tile * 8 + t4] : 0u;
                x.q1[i] = qok1[i] ? qw[tile * 8 + 4 + t4] : 0u;
            }
            x.v0 = vw[t4];
            x.v1 = vw[4 + t4];
            x.f = fs[u];
        };
        In cu_in;
        if (PREF) load(0, cu_in);
        float yprev0 = 0.0f, yprev2 = 0.0f;
        for (int u = 0; u < ntok; u++) {
            In nx;
            if (PREF) load(u + 1, nx);
            else load(u, cu_in);
            if (ckpt) {
                if (to_ckpt == 0) {
                    v16_store_ckpt(ckpt, lane, nck, (t0 + u) / C, MT, w, l, h);
                    to_ckpt = C;
                }
                to_ckpt--;
            }
            const float vc[4] = {bf16_lo(cu_in.v0), bf16_hi(cu_in.v0), bf16_lo(cu_in.v1), bf16_hi(cu_in.v1)};
#pragma unroll
            for (int i = 0; i < TPW; i++) {
                float acc[2][4], z[8];
                kv_init(acc, cu_in.kr0[i], cu_in.kr1[i], vc);
                v16_step<false, TM>(h[i], hb[i], z, acc, cu_in.f, bh, bl);
            }
            if (y) {
                /* the previous step's y, whose MMA finished during this step */
                if (u > 0 && t4 == 0) {
                    ybuf[((u - 1) * NW + w) * 16 + g] = yprev0;
                    ybuf[((u - 1) * NW + w) * 16 + g + 8] = yprev2;
                }
                /* one accumulator per tile, so the tiles' MMAs do not wait on each other */
                float yd[TPW][4];
#pragma unroll
                for (int i = 0; i < TPW; i++) {
                    const uint32_t at[4] = {movmatrix_trans(hb[i][0]), movmatrix_trans(hb[i][2]),
                                            movmatrix_trans(hb[i][1]), movmatrix_trans(hb[i][3])};
                    yd[i][0] = yd[i][1] = yd[i][2] = yd[i][3] = 0.0f;
                    mma_bf16(yd[i], at, cu_in.q0[i], cu_in.q1[i]);
                }
                yprev0 = yd[0][0];
                yprev2 = yd[0][2];
#pragma unroll
                for (int i = 1; i < TPW; i++) {
                    yprev0 += yd[i][0];
                    yprev2 += yd[i][2];
                }
            }
            if (PREF) cu_in = nx;
        }
        if (y && ntok > 0 && t4 == 0) {
            ybuf[((ntok - 1) * NW + w) * 16 + g] = yprev0;
            ybuf[((ntok - 1) * NW + w) * 16 + g + 8] = yprev2;
        }
        __syncthreads();
        if (y) v16_flush_y(y, ybuf, start + t0, ntok, N, n, NW, tid, nthr);
        if (t0 + TS < L && tid < TS) fbuf[(cur ^ 1) * TS + tid] = fpre;
        __syncthreads();
    }
    cp_async_wait<0>();

    if (ht) v16_store_ht(ht, lane, K, rA, rB, c0, c2, h);
}

/* The block's barrier, for v16_finish_backward's callers with one lane per block. */
struct BlockSync {
    __device__ __forceinline__ void operator()() const { __syncthreads(); }
};

/* The end of a backward lane (one warp per 16-row tile): dh0 = G, rounded once, and dW, the
 * warps' contributions summed in warp order through dwbuf (MT × 256 floats of shared memory that
 * nothing else uses any more) into dW_out (this lane's V×V partial). tid, nthr: the thread's index
 * among the lane's threads and their number; sync: their barrier (bwd_t1's lane groups have their own). */
template <typename T, typename Sync = BlockSync>
__device__ __forceinline__ void v16_finish_backward(const float (&G)[8], const float (&dW)[2][4], T *dh0, float *dwbuf,
                                                    float *dW_out, int K, int MT, bool dW_transposed = false,
                                                    int tid = threadIdx.x, int nthr = blockDim.x, Sync sync = Sync())
{
    const int w = tid >> 5, l = tid & 31, g = l >> 2, c0 = 2 * (l & 3);
    if (dh0) {
        const int r0 = w * 16 + g, r1 = r0 + 8;
        const int rows[8] = {r0, r0, r1, r1, r0, r0, r1, r1}, cols[8] = {c0, c0 + 1, c0, c0 + 1, c0 + 8, c0 + 9, c0 + 8, c0 + 9};
#pragma unroll
        for (int e = 0; e < 8; e++)
            if (rows[e] < K) dh0[rows[e] * 16 + cols[e]] = from_f<T>(G[e]);
    }
    sync();
    /* fragment element (row, column) of the tile's dW, or of dWᵀ (bwd_t1) stored at (column, row) */
    const int rs = dW_transposed ? 1 : 16, cs = dW_transposed ? 16 : 1;
#pragma unroll
    for (int nt = 0; nt < 2; nt++) {
        dwbuf[w * 256 + g * rs + (nt * 8 + c0) * cs] = dW[nt][0];
        dwbuf[w * 256 + g * rs + (nt * 8 + c0 + 1) * cs] = dW[nt][1];
        dwbuf[w * 256 + (g + 8) * rs + (nt * 8 + c0) * cs] = dW[nt][2];
        dwbuf[w * 256 + (g + 8) * rs + (nt * 8 + c0 + 1) * cs] = dW[nt][3];
    }
    sync();
    for (int e = tid; e < 256; e += nthr) {
        float acc = 0.0f;
        for (int ww = 0; ww < MT; ww++) acc += dwbuf[ww * 256 + e];
        dW_out[e] = acc;
    }
}

/* ---- backward ---------------------------------------------------------------------------- */

/* TM: the forward's tanh (the replay must compute the same function as the checkpoint pass).
 * BSPLIT: dA·Wᵀ and H_{t-1}ᵀ·dA with bf16 hi + lo splits (16 significant bits, v1-v3, both dtypes);
 * without it (BF16 storage only) dA and H_{t-1} are rounded once to bf16 as the products' operands.
 * BMMA (BF16, !BSPLIT): dk, dq and dv on the tensor cores too (see the reverse step). */
/* MINB: blocks per SM the register allocation must allow. 2 (any K <= 128, 256 threads) leaves
 * ptxas about 128 registers: 4 blocks of 128 threads per SM. 6 (K <= 64 only, 128 threads) caps
 * it at 80 registers, so that 410M's 672 lanes (5.09 per SM on 132 SMs) run in one wave instead
 * of two (v5, NOTES.md). */
template <typename T, bool F32MODE, int TM, bool BSPLIT, bool BMMA, int MINB = 2>
__global__ void __launch_bounds__(MINB > 2 ? 128 : 32 * V16_MAX_WARPS, MINB)
    bwd_v16(RecDims d, RecIn<T> in, const T *dy, const T *dht, int clip_mode, float clip, T *dh0, GradOut go,
            const float *ckpt, int C, int nck)
{
    static_assert(!BMMA || (!F32MODE && !BSPLIT), "BMMA needs bf16 inputs and unsplit operands");
    extern __shared__ __align__(16) unsigned char smraw[];
    const int K = d.K, N = d.N, MT = blockDim.x >> 5, nthr = blockDim.x;
    const int tid = threadIdx.x, w = tid >> 5, l = tid & 31, g = l >> 2, t4 = l & 3;
    const int lane = blockIdx.x, b = lane / N, n = lane % N;
    const int r0 = w * 16 + g, r1 = r0 + 8;
    const bool ok0 = r0 < K, ok1 = r1 < K;
    const int c0 = 2 * t4, c2 = 2 * t4 + 8;
    const bool kok0 = w * 16 + c0 < K, kok1 = w * 16 + c2 < K; /* BMMA: the k pairs of this lane exist */
    const int rows[8] = {r0, r0, r1, r1, r0, r0, r1, r1}, cols[8] = {c0, c0 + 1, c0, c0 + 1, c2, c2 + 1, c2, c2 + 1};

    /* Shared memory: Hs [MT][C+1][32][8], Zs [MT][C][32][8] (each thread its own 8 floats),
     * the staged inputs [2][k C·K | q C·K | v C·16 | dy C·16], f [2][C], dv partials [C][MT][16],
     * df partials [C][MT]; at the end the dW partials [MT][256] reuse the last region. */
    float *Hs = reinterpret_cast<float *>(smraw) + (size_t)w * (C + 1) * 256 + l * 8;
    float *Zs = reinterpret_cast<float *>(smraw) + (size_t)MT * (C + 1) * 256 + (size_t)w * C * 256 + l * 8;
    unsigned char *p = smraw + (size_t)MT * (2 * C + 1) * 256 * sizeof(float);
    const int stage_elems = C * (2 * K + 32);
    T *stage = reinterpret_cast<T *>(p);
    float *fbuf = reinterpret_cast<float *>(p + align16(2 * (size_t)stage_elems * sizeof(T)));
    float *dvbuf = fbuf + 2 * C;
    float *dfbuf = dvbuf + C * MT * 16;
    float *dwbuf = fbuf;

    uint32_t bh[2][2], bl[2][2], bth[2][2], btl[2][2];
    const T *Wn = in.W + (size_t)(n / d.gw) * 256;
    load_w_fragments(Wn, g, t4, false, bh, bl);
    load_w_fragments(Wn, g, t4, true, bth, btl);

    float G[8];
#pragma unroll
    for (int e = 0; e < 8; e++) G[e] = (dht && rows[e] < K) ? to_f(dht[(size_t)lane * K * 16 + rows[e] * 16 + cols[e]]) : 0.0f;
    float dW[2][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}};

    int64_t start, end;
    seq_range(d, in.cu, b, start, end);
    const int64_t L = end - start;
    const int nchunks = (int)((L + C - 1) / C);
    const int64_t kst = (int64_t)d.Nk * K, qst = (int64_t)d.Nq * K, vst = (int64_t)d.Nv * 16, dyst = (int64_t)N * 16;
    const T *kb = in.k + (start * d.Nk + n / d.gk) * K;
    const T *qb = in.q + (start * d.Nq + n / d.gq) * K;
    const T *vb = in.v + (start * d.Nv + n / d.gv) * 16;
    const T *dyb = dy + (start * N + n) * 16;
    const T *fb = in.f + start * d.Nf + n / d.gf;
    const float cl = fabsf(clip);

    auto issue = [&](int ch, int buf) {
        int64_t t0 = (int64_t)ch * C;
        int ntok = (int)(L - t0 < C ? L - t0 : C);
        T *s = stage + buf * stage_elems;
        stage_rows(s, kb + t0 * kst, ntok, kst, K, tid, nthr);
        stage_rows(s + C * K, qb + t0 * qst, ntok, qst, K, tid, nthr);
        stage_rows(s + 2 * C * K, vb + t0 * vst, ntok, vst, 16, tid, nthr);
        stage_rows(s + 2 * C * K + C * 16, dyb + t0 * dyst, ntok, dyst, 16, tid, nthr);
    };
    /* v16_ckpt_offset's layout, as the checkpoint's start plus the thread's 8 floats (nthr = 32 MT) */
    auto ckpt_at = [&](int ch) { return reinterpret_cast<const float4 *>(ckpt + (((size_t)lane * nck + ch) * nthr + tid) * 8); };

    float4 hc0 = make_float4(0, 0, 0, 0), hc1 = hc0;
    if (nchunks > 0) {
        issue(nchunks - 1, 0);
        int64_t t0 = (int64_t)(nchunks - 1) * C;
        if (tid < C && t0 + tid < L) fbuf[tid] = to_f(fb[(t0 + tid) * d.Nf]);
        hc0 = ckpt_at(nchunks - 1)[0];
        hc1 = ckpt_at(nchunks - 1)[1];
    }
    cp_async_commit();

    for (int ch = nchunks - 1, it = 0; ch >= 0; ch--, it++) {
        const int cur = it & 1;
        const int64_t t0 = (int64_t)ch * C;
        const int Lc = (int)(L - t0 < C ? L - t0 : C);
        float fpre = 0.0f;
        float4 hn0 = hc0, hn1 = hc1;
        if (ch > 0) {
            issue(ch - 1, cur ^ 1);
            if (tid < C) fpre = to_f(fb[(t0 - C + tid) * d.Nf]);
            hn0 = ckpt_at(ch - 1)[0];
            hn1 = ckpt_at(ch - 1)[1];
        }
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();

        const T *ks = stage + cur * stage_elems, *qs = ks + C * K, *vs = qs + C * K, *dys = vs + C * 16;
        const float *fs = fbuf + cur * C;

        /* Recompute the chunk's states from its checkpoint. */
        {
            float h[8] = {hc0.x, hc0.y, hc0.z, hc0.w, hc1.x, hc1.y, hc1.z, hc1.w};
            uint32_t hb[4];
            pack_state(h, hb);
            reinterpret_cast<float4 *>(Hs)[0] = hc0;
            reinterpret_cast<float4 *>(Hs)[1] = hc1;
            for (int u = 0; u < Lc; u++) {
                const float kr0 = ok0 ? to_f(ks[u * K + r0]) : 0.0f, kr1 = ok1 ? to_f(ks[u * K + r1]) : 0.0f;
                const float vc[4] = {to_f(vs[u * 16 + c0]), to_f(vs[u * 16 + c0 + 1]), to_f(vs[u * 16 + c2]),
                                     to_f(vs[u * 16 + c2 + 1])};
                float acc[2][4], z[8];
                kv_init(acc, kr0, kr1, vc);
                v16_step<F32MODE, TM>(h, hb, z, acc, fs[u], bh, bl);
                float4 *hz = reinterpret_cast<float4 *>(Hs + (size_t)(u + 1) * 256);
                hz[0] = make_float4(h[0], h[1], h[2], h[3]);
                hz[1] = make_float4(h[4], h[5], h[6], h[7]);
                float4 *zz = reinterpret_cast<float4 *>(Zs + (size_t)u * 256);
                zz[0] = make_float4(z[0], z[1], z[2], z[3]);
                zz[1] = make_float4(z[4], z[5], z[6], z[7]);
            }
        }

        /* Reverse steps. */
        for (int u = Lc - 1; u >= 0; u--) {
            const int64_t tok = start + t0 + u;
            float hp[8], hc[8], z[8];
            {
                const float4 *a = reinterpret_cast<const float4 *>(Hs + (size_t)u * 256);
                const float4 *c = reinterpret_cast<const float4 *>(Hs + (size_t)(u + 1) * 256);
                const float4 *zz = reinterpret_cast<const float4 *>(Zs + (size_t)u * 256);
                float4 a0 = a[0], a1 = a[1], c0v = c[0], c1v = c[1], z0 = zz[0], z1 = zz[1];
                hp[0] = a0.x; hp[1] = a0.y; hp[2] = a0.z; hp[3] = a0.w; hp[4] = a1.x; hp[5] = a1.y; hp[6] = a1.z; hp[7] = a1.w;
                hc[0] = c0v.x; hc[1] = c0v.y; hc[2] = c0v.z; hc[3] = c0v.w; hc[4] = c1v.x; hc[5] = c1v.y; hc[6] = c1v.z; hc[7] = c1v.w;
                z[0] = z0.x; z[1] = z0.y; z[2] = z0.z; z[3] = z0.w; z[4] = z1.x; z[5] = z1.y; z[6] = z1.z; z[7] = z1.w;
            }
            const float kr0 = ok0 ? to_f(ks[u * K + r0]) : 0.0f, kr1 = ok1 ? to_f(ks[u * K + r1]) : 0.0f;
            const float q0 = ok0 ? to_f(qs[u * K + r0]) : 0.0f, q1 = ok1 ? to_f(qs[u * K + r1]) : 0.0f;
            const float vc[4] = {to_f(vs[u * 16 + c0]), to_f(vs[u * 16 + c0 + 1]), to_f(vs[u * 16 + c2]),
                                 to_f(vs[u * 16 + c2 + 1])};
            const float dyc[4] = {to_f(dys[u * 16 + c0]), to_f(dys[u * 16 + c0 + 1]), to_f(dys[u * 16 + c2]),
                                  to_f(dys[u * 16 + c2 + 1])};
            const float f = fs[u];
            const float qr[8] = {q0, q0, q1, q1, q0, q0, q1, q1};
            const float dyv[8] = {dyc[0], dyc[1], dyc[0], dyc[1], dyc[2], dyc[3], dyc[2], dyc[3]};

            float D[8], dA[8], dfp = 0.0f;
#pragma unroll
            for (int e = 0; e < 8; e++) {
                float gg = clip_mode == 1 ? fminf(fmaxf(G[e], -cl), cl) : G[e];
                float Dv = fmaf(qr[e], dyv[e], gg);
                if (clip_mode == 2) Dv = fminf(fmaxf(Dv, -cl), cl);
                D[e] = Dv;
                dA[e] = (1.0f - f) * Dv * (1.0f - z[e] * z[e]);
                dfp = fmaf(Dv, hp[e] - z[e], dfp);
            }
            if constexpr (BMMA) {
                /* BF16 storage, every product on the tensor cores with dA, H_{t-1} and H_t rounded
                 * once to bf16. dk = dA v and dq = H_t dy: B holds v (dy) in every column, so
                 * D[i][*] is row i's sum over the 16 columns; dv = dAᵀ k likewise with A = dAᵀ.
                 * Replaces 24 multiply-adds and the quad/column shuffle reductions per step. */
                uint32_t adb[4];
                pack_state(dA, adb);
                float acc[2][4] = {{f * D[0], f * D[1], f * D[2], f * D[3]}, {f * D[4], f * D[5], f * D[6], f * D[7]}};
#pragma unroll
                for (int nt = 0; nt < 2; nt++) mma_bf16(acc[nt], adb, bth[nt][0], bth[nt][1]);
#pragma unroll
                for (int e = 0; e < 8; e++) G[e] = acc[e >> 2][e & 3];
                const uint32_t hh[4] = {movmatrix_trans(pack_bf16(hp[0], hp[1])), movmatrix_trans(pack_bf16(hp[4], hp[5])),
                                        movmatrix_trans(pack_bf16(hp[2], hp[3])), movmatrix_trans(pack_bf16(hp[6], hp[7]))};
                const uint32_t ah[4] = {movmatrix_trans(adb[0]), movmatrix_trans(adb[1]), movmatrix_trans(adb[2]),
                                        movmatrix_trans(adb[3])};
#pragma unroll
                for (int nt = 0; nt < 2; nt++) mma_bf16(dW[nt], hh, ah[2 * nt], ah[2 * nt + 1]);
                const uint32_t *vw = reinterpret_cast<const uint32_t *>(vs + u * 16);
                const uint32_t *dyw = reinterpret_cast<const uint32_t *>(dys + u * 16);
                const uint32_t *kw = reinterpret_cast<const uint32_t *>(ks + u * K);
                uint32_t hcb[4];
                pack_state(hc, hcb);
                const uint32_t at[4] = {ah[0], ah[2], ah[1], ah[3]}; /* dAᵀ as an A fragment */
                float dkd[4] = {0, 0, 0, 0}, dqd[4] = {0, 0, 0, 0}, dvd[4] = {0, 0, 0, 0};
                mma_bf16(dkd, adb, vw[t4], vw[4 + t4]);
                mma_bf16(dqd, hcb, dyw[t4], dyw[4 + t4]);
                mma_bf16(dvd, at, kok0 ? kw[w * 8 + t4] : 0u, kok1 ? kw[w * 8 + 4 + t4] : 0u);
                /* every lane holds rows g, g+8 of each: lanes t = 0 store dk, t = 1 dq, t = 2 dv */
                if (t4 < 2) {
                    float *dst = t4 == 0 ? go.dk : go.dq;
                    const float v0 = t4 == 0 ? dkd[0] : dqd[0], v2 = t4 == 0 ? dkd[2] : dqd[2];
                    if (ok0) dst[(tok * N + n) * K + r0] = v0;
                    if (ok1) dst[(tok * N + n) * K + r1] = v2;
                } else if (t4 == 2) {
                    dvbuf[(u * MT + w) * 16 + g] = dvd[0];
                    dvbuf[(u * MT + w) * 16 + g + 8] = dvd[2];
                }
            } else {
                /* G = f D + dA Wᵀ */
                {
                    float acc[2][4] = {{f * D[0], f * D[1], f * D[2], f * D[3]}, {f * D[4], f * D[5], f * D[6], f * D[7]}};
                    block_times_w<BSPLIT, F32MODE>(acc, dA, bth, btl);
    #pragma unroll
                    for (int e = 0; e < 8; e++) G[e] = acc[e >> 2][e & 3];
                }
                /* dW += H_{t-1}ᵀ dA: A = H_{t-1}ᵀ and B = dA, both from transposed 8×8 blocks. */
                if constexpr (!BSPLIT) {
                    const uint32_t hh[4] = {movmatrix_trans(pack_bf16(hp[0], hp[1])), movmatrix_trans(pack_bf16(hp[4], hp[5])),
                                            movmatrix_trans(pack_bf16(hp[2], hp[3])), movmatrix_trans(pack_bf16(hp[6], hp[7]))};
                    const uint32_t ah[4] = {movmatrix_trans(pack_bf16(dA[0], dA[1])), movmatrix_trans(pack_bf16(dA[2], dA[3])),
                                            movmatrix_trans(pack_bf16(dA[4], dA[5])), movmatrix_trans(pack_bf16(dA[6], dA[7]))};
    #pragma unroll
                    for (int nt = 0; nt < 2; nt++) mma_bf16(dW[nt], hh, ah[2 * nt], ah[2 * nt + 1]);
                } else {
                    uint32_t hh[4], hl[4], ah[4], al[4];
                    split_bf16(hp[0], hp[1], hh[0], hl[0]); /* block (0,0) */
                    split_bf16(hp[4], hp[5], hh[1], hl[1]); /* block (0,1) */
                    split_bf16(hp[2], hp[3], hh[2], hl[2]); /* block (1,0) */
                    split_bf16(hp[6], hp[7], hh[3], hl[3]); /* block (1,1) */
                    split_bf16(dA[0], dA[1], ah[0], al[0]); /* block (0,0) */
                    split_bf16(dA[2], dA[3], ah[1], al[1]); /* block (1,0) */
                    split_bf16(dA[4], dA[5], ah[2], al[2]); /* block (0,1) */
                    split_bf16(dA[6], dA[7], ah[3], al[3]); /* block (1,1) */
    #pragma unroll
                    for (int r = 0; r < 4; r++) {
                        hh[r] = movmatrix_trans(hh[r]);
                        hl[r] = movmatrix_trans(hl[r]);
                        ah[r] = movmatrix_trans(ah[r]);
                        al[r] = movmatrix_trans(al[r]);
                    }
    #pragma unroll
                    for (int nt = 0; nt < 2; nt++) {
                        mma_bf16(dW[nt], hh, ah[2 * nt], ah[2 * nt + 1]);
                        mma_bf16(dW[nt], hl, ah[2 * nt], ah[2 * nt + 1]);
                        mma_bf16(dW[nt], hh, al[2 * nt], al[2 * nt + 1]);
                    }
                }
                /* dk = dA v and dq = H_t dy (rows r0, r1): a quad reduction leaves lane t one of the four. */
                {
                    const float x[4] = {
                        fmaf(dA[0], vc[0], fmaf(dA[1], vc[1], fmaf(dA[4], vc[2], dA[5] * vc[3]))),
                        fmaf(dA[2], vc[0], fmaf(dA[3], vc[1], fmaf(dA[6], vc[2], dA[7] * vc[3]))),
                        fmaf(hc[0], dyc[0], fmaf(hc[1], dyc[1], fmaf(hc[4], dyc[2], hc[5] * dyc[3]))),
                        fmaf(hc[2], dyc[0], fmaf(hc[3], dyc[1], fmaf(hc[6], dyc[2], hc[7] * dyc[3]))),
                    };
                    float s = reduce_quad(x, t4);
                    int row = (t4 & 1) ? r1 : r0;
                    if (row < K) {
                        float *dst = (t4 & 2) ? go.dq : go.dk;
                        dst[(tok * N + n) * K + row] = s;
                    }
                }
                /* dv = dAᵀ k (column partials, summed over rows here and over warps after the chunk). */
                {
                    const float pcol[4] = {fmaf(dA[0], kr0, dA[2] * kr1), fmaf(dA[1], kr0, dA[3] * kr1),
                                           fmaf(dA[4], kr0, dA[6] * kr1), fmaf(dA[5], kr0, dA[7] * kr1)};
                    int col;
                    float s = reduce_columns(pcol, l, t4, &col);
                    if (!(l & 4)) dvbuf[(u * MT + w) * 16 + col] = s;
                }
            }
            /* df = Σ D ⊙ (H_{t-1} - Z) */
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) dfp += __shfl_xor_sync(0xffffffffu, dfp, o);
            if (l == 0) dfbuf[u * MT + w] = dfp;
        }
        __syncthreads();
        for (int idx = tid; idx < Lc * 17; idx += nthr) {
            int u = idx / 17, j = idx - u * 17;
            const int64_t tok = start + t0 + u;
            float acc = 0.0f;
            if (j < 16) {
                for (int ww = 0; ww < MT; ww++) acc += dvbuf[(u * MT + ww) * 16 + j];
                go.dv[(tok * N + n) * 16 + j] = acc;
            } else {
                for (int ww = 0; ww < MT; ww++) acc += dfbuf[u * MT + ww];
                go.df[tok * N + n] = acc;
            }
        }
        if (ch > 0 && tid < C) fbuf[(cur ^ 1) * C + tid] = fpre;
        hc0 = hn0;
        hc1 = hn1;
        __syncthreads();
    }
    cp_async_wait<0>();
    v16_finish_backward(G, dW, dh0 ? dh0 + (size_t)lane * K * 16 : (T *)nullptr, dwbuf, go.dW + (size_t)lane * 256, K, MT);
}

#endif
