/*
 * v6 (NOTES.md): the BF16, V = 16 kernels with one 16-row tile per warp and nothing in the step
 * loop but the recurrence and a few loads.
 *
 * Why. The microbenchmarks (microbench/ubench.cu) put a bare step (no loads, no readout) at 246
 * cycles with 16 warps of one tile each per SM, the 7B layer's occupancy, against 777 cycles for v5's
 * forward step: the time went to what surrounds the recurrence, not to the recurrence. So here:
 *   - every warp owns one tile and runs its steps without waiting for the others; the warps of a
 *     block (one lane, i.e. one sequence and state head; two heads in bwd_t1 with HP = 2, v11)
 *     meet only at chunk boundaries;
 *   - forward: the block converts each staged chunk once into the layouts a warp reads with one
 *     load per input (T1Chunk; k's and q's words come made once per source head where many state
 *     heads share them, T1Words, v17); step u + 1's inputs load and step u - 1's readout y = Hᵀq (tensor
 *     cores, as v4) runs during step u's product and tanh, off the recurrence's dependency chain;
 *     the readout writes per-tile partials that are summed over the tiles once per chunk;
 *   - backward: no conversion; the outer products k vᵀ and q dyᵀ + G run as MMAs straight from the
 *     staged bf16 rows (t1_outer), and the other vectors are read as the bf16 words the
 *     tensor-core products take as B fragments. (The same in the forward measured slower, v6; its
 *     k vᵀ is an MMA too since v16, from converted words: t1_kv.)
 * The arithmetic of a step is v5's (H rounded once to bf16 as the operand of H·W, fp32 state,
 * tanh.approx.f32), written once as t1_tanh + t1_update, which the forward, the checkpoint pass,
 * the backward's replay and the backward's recomputation of Z_t all share. k vᵀ is an exact
 * tensor-core product in both: t1_outer in the backward (k in column 0 of A, v in row 0 of B),
 * t1_kv in the forward (k in A's even columns, v / 4 in B's even rows, so that each lane's words
 * depend on its row group only and load without zeroing: v16). A product of two bf16 numbers is
 * exact in fp32, and so is the sum of four equal ones; so both give the same accumulator whenever
 * the products are normal fp32 numbers and v / 4 is exact in bf16 (|v| >= 2^-124 or v = 0), and
 * then the replay repeats the forward bit for bit.
 *
 * Backward. The checkpoint pass (fwd_t1<false, true>, or forward_save) stores the fp32 state every C
 * steps. bwd_t1 walks the chunks backwards: it replays a chunk from its checkpoint keeping only H_t
 * rounded to bf16 (16 bytes per thread and step, in shared memory: what the products take anyway),
 * and in the reverse step recomputes Z_t = tanh(bf16(H_{t-1}) W + k vᵀ) as the forward did.
 * df uses bf16(H_{t-1}) too (v5 used the fp32 state there); dA, dW, dk, dq and dv are v5's.
 */
#ifndef M2RNN_CUDA_V16_T1_CUH
#define M2RNN_CUDA_V16_T1_CUH

#include "recurrence_v16.cuh"

typedef __nv_bfloat16 bf16;

/* Row u of a staged bf16 matrix with `width` columns, as 16-bit and 32-bit words. */
__device__ __forceinline__ const unsigned short *t1_row16(const bf16 *base, int u, int width)
{
    return reinterpret_cast<const unsigned short *>(base + (size_t)u * width);
}
__device__ __forceinline__ const uint32_t *t1_row32(const bf16 *base, int u, int width)
{
    return reinterpret_cast<const uint32_t *>(base + (size_t)u * width);
}

/* The operands of an outer product a bᵀ over a 16×16 tile (a: the tile's 16 rows of a K-vector,
 * b: a 16-vector) as one m16n8k8 per column half: A holds a in column 0, B holds b in row 0, so
 * D[i][j] = a[i] b[j]. Only lanes t = 0 hold nonzero halves (A[g][0] = a[r0], A[g+8][0] = a[r1],
 * B[0][g] = b[g] and b[8+g]); rows past K are 0. The backward loads them with t1_outer_at. */
struct T1Outer {
    uint32_t a0, a1, b0, b1;
};
/* acc = a bᵀ + acc (fragment order), exact products; k = 8 suffices, as only column 0 of A is nonzero. */
__device__ __forceinline__ void t1_outer(float (&acc)[2][4], const T1Outer &o)
{
    mma_bf16_k8(acc[0], o.a0, o.a1, o.b0);
    mma_bf16_k8(acc[1], o.a0, o.a1, o.b1);
}

/* The B-fragment words of a row vector over the tile's rows (x[16w+2t..], x[16w+2t+8..]) and of a
 * 16-vector (x[2t..], x[2t+8..]), 0 past K. */
__device__ __forceinline__ uint2 t1_words_rows(const uint32_t *row32, int w, int t4, int K)
{
    return make_uint2(16 * w + 2 * t4 < K ? row32[8 * w + t4] : 0u, 16 * w + 2 * t4 + 8 < K ? row32[8 * w + 4 + t4] : 0u);
}
__device__ __forceinline__ uint2 t1_words16(const uint32_t *row32, int t4) { return make_uint2(row32[t4], row32[4 + t4]); }

/* z = tanh(bf16(H) W + acc), acc holding k vᵀ (fragment order; common.cuh): hb is H packed to bf16. */
__device__ __forceinline__ void t1_tanh(float (&z)[8], const uint32_t (&hb)[4], float (&acc)[2][4], const uint32_t (&bw)[2][2])
{
    mma_bf16(acc[0], hb, bw[0][0], bw[0][1]);
    mma_bf16(acc[1], hb, bw[1][0], bw[1][1]);
#pragma unroll
    for (int e = 0; e < 8; e++) z[e] = tanh_fast(acc[e >> 2][e & 3]);
}

/* The forward's converted chunk in shared memory (u is the step within the chunk, m = u / 2 the
 * pair of steps, i = u % 2 the step within its pair):
 *   k_words[m][w][g][i] uint2   (k[16w+g], k[16w+g+8]) as the bf16 bits of two 32-bit words: the
 *                               A fragment of t1_kv (the high halves, A's odd columns, are 0)
 *   v_words[m][g][i]    uint2   (v[g] / 4, v[g+8] / 4) likewise: the B fragments of t1_kv's two
 *                               column halves
 *   q_words[w][m][t][i] uint2   bf16 words (q[16w+2t..], q[16w+2t+8..]): the readout's B fragment,
 *                               each warp's words together (q_pairs pairs), so that the conversion's
 *                               stores are free of bank conflicts (v8)
 *   f_g[u]              float2  (f, 1 - f)
 * The forward converts each staged chunk once, so that a step does one load per input and no
 * conversion (measured: 82.5 instructions per warp-step against 89 for reading the staged bf16
 * rows with t1_outer, NOTES.md v6); k, v, q and f of two steps are one 16-byte load each (v7, v16). */
struct T1Chunk {
    uint2 *k_words, *v_words, *q_words;
    float2 *f_g;
    int q_pairs;
};

/* Lays out the chunk (q_words only with the readout) from p for `rows` steps; returns the bytes used. */
__host__ __device__ inline size_t t1_chunk_layout(unsigned char *p, bool with_q, int rows, int MT, T1Chunk *c)
{
    size_t off = 0;
    auto take = [&](size_t bytes) {
        unsigned char *r = p ? p + off : nullptr;
        off += align16(bytes);
        return r;
    };
    T1Chunk z = {};
    z.k_words = (uint2 *)take((size_t)rows * MT * 8 * sizeof(uint2));
    if (with_q) z.q_words = (uint2 *)take((size_t)rows * MT * 4 * sizeof(uint2));
    z.q_pairs = rows / 2; /* rows is even */
    z.v_words = (uint2 *)take((size_t)rows * 8 * sizeof(uint2));
    z.f_g = (float2 *)take((size_t)rows * sizeof(float2));
    if (c) *c = z;
    return off;
}

/* Element r of a staged bf16 row as a 32-bit word holding its bits in the low half, 0 past K. */
__device__ __forceinline__ uint32_t t1_bits(const bf16 *row, int r, int K)
{
    return r < K ? (uint32_t)__bfloat16_as_ushort(row[r]) : 0u;
}
/* x / 4 likewise (exact in bf16 unless |x| < 2^-124: then rounded). */
__device__ __forceinline__ uint32_t t1_quarter(bf16 x)
{
    return __bfloat16_as_ushort(__float2bfloat16_rn(0.25f * __bfloat162float(x)));
}
/* One uint4 of T1Chunk's k_words: rows r0 and r0 + 8 (t1_bits) of the steps whose staged rows are
 * k0 and k1 (k1 = k0 for an odd last step). */
__device__ __forceinline__ uint4 t1_k_pair(const bf16 *k0, const bf16 *k1, int r0, int K)
{
    return make_uint4(t1_bits(k0, r0, K), t1_bits(k0, r0 + 8, K), t1_bits(k1, r0, K), t1_bits(k1, r0 + 8, K));
}

/* The index of row u's item `at` (of `per_row` items per row) in a pairs-of-rows layout
 * [u / 2][per_row][u % 2]: the items of rows 2m and 2m + 1 sit side by side. */
__device__ __forceinline__ int t1_pair_slot(int u, int per_row, int at) { return (((u >> 1) * per_row + at) << 1) + (u & 1); }

/* (f, 1 - f) of the chunk's steps, one per thread u < ntok, into fg[u * stride]. */
__device__ __forceinline__ void t1_store_f(float2 *fg, float f, int ntok, int tid, int stride = 1)
{
    if (tid < ntok) fg[tid * stride] = make_float2(f, 1.0f - f);
}

/* Converts ntok staged steps into the chunk's layouts, q's rows shifted by q_shift; f is thread u's
 * value for step u (u < ntok). The staged step u is one row of rs elements at ks, qs and vs + u rs
 * (k and q: K each, q NULL without the readout; v: 16): rows of 2K + 16 elements, not 128-byte
 * multiples, spread the reads of different steps over the banks (v8). Where T1Words brought k's
 * and q's words, with_k is false and qs NULL: only v and f are converted.
 * All threads take part, each with a fixed share and no index division: warp w converts its own
 * tile's rows of k (lane l: row pair l % 8 of the step pairs l/8, l/8 + 4, ...) and words of q
 * (lane l: word pair l % 4 of steps l/4, l/4 + 8, ...); v goes eight items per pair of steps over
 * all threads. An odd chunk's last pair repeats its step in the second half. */
__device__ __forceinline__ void t1_convert(const T1Chunk &c, const bf16 *ks, const bf16 *qs, int q_shift, const bf16 *vs, int rs,
                                           float f, int ntok, int K, int MT, int tid, int nthr, bool with_k = true)
{
    const int w = tid >> 5, l = tid & 31;
    if (with_k) {
        /* lane l: row pair g = l % 8 of the step pairs l/8, l/8 + 4, ...: one 16-byte store each */
        const int g = l & 7, r0 = 16 * w + g;
        uint4 *dst = reinterpret_cast<uint4 *>(c.k_words) + (l >> 3) * MT * 8 + w * 8 + g;
#pragma unroll 2
        for (int u = 2 * (l >> 3); u < ntok; u += 8, dst += 4 * MT * 8) {
            const bf16 *k0 = ks + u * rs, *k1 = u + 1 < ntok ? k0 + rs : k0;
            *dst = t1_k_pair(k0, k1, r0, K);
        }
    }
    if (qs) {
        const int t = l & 3;
        uint2 *qw = c.q_words + w * c.q_pairs * 8;
        for (int u = l >> 2; u < ntok; u += 8) qw[t1_pair_slot(u + q_shift, 4, t)] = t1_words_rows(t1_row32(qs, u, rs), w, t, K);
    }
    for (int i = tid; i < ((ntok + 1) >> 1) * 8; i += nthr) {
        const int u = (i >> 3) * 2, gv = i & 7;
        const bf16 *v0 = vs + u * rs, *v1 = u + 1 < ntok ? v0 + rs : v0;
        reinterpret_cast<uint4 *>(c.v_words)[i] =
            make_uint4(t1_quarter(v0[gv]), t1_quarter(v0[gv + 8]), t1_quarter(v1[gv]), t1_quarter(v1[gv + 8]));
    }
    t1_store_f(c.f_g, f, ntok, tid);
}

/* The forward's k and q words made once per source head (v17, NOTES.md). Where many state heads
 * share a k and a q head (the paper's models: Nq = Nk = 1), every block of the forward converted the
 * same rows again in each chunk, between two barriers. t1_words_prep writes them once to global
 * memory, in the chunk's pairs-of-steps order, and the forward copies a chunk's words as one
 * contiguous run of 16-byte copies. Per source head h and pair m of a sequence (from its first pair):
 *   k[h][m][w][g]  uint4  (k[16w+g], k[16w+g+8]) of steps 2m and 2m + 1, as T1Chunk's k_words
 *                          (a sequence's odd last step repeated, the pair after its end zero)
 *   q[h][m][w][t]  uint4  the readout's words of rows 2m and 2m + 1, row r holding q of step r - 1
 *                          (row 0 and rows past the end zero): pair-major, unlike T1Chunk's
 *                          per-warp q_words, so that a chunk's words are one run
 * Sequence b's pairs start at first(start, b) = start / 2 + 2b, which leaves each sequence its
 * L / 2 + 2 pairs (floor(s / 2) + floor(L / 2) <= floor((s + L) / 2)). K = 64 (MT = 4) only. */
struct T1Words {
    const uint4 *k, *q; /* q NULL: no readout (the checkpoint pass) */
    int64_t pairs;      /* pairs per source head: t1_words_pairs */
    __device__ int64_t first(int64_t start, int b) const { return start / 2 + 2 * (int64_t)b; }
};
__host__ __device__ inline int64_t t1_words_pairs(int64_t T, int B) { return T / 2 + 2 * (int64_t)B + 2; }
constexpr int k_t1_words_k = 4 * 8, k_t1_words_q = 4 * 4; /* uint4 per pair: k (MT * 8), q (MT * 4) */

/* The forward's second buffer of k (and q) words for chunks of TS steps (see fwd_t1): q's rows go to
 * TS + 1 (the chunk's last readout), k's to TS. The step loop's read of the k words past the chunk
 * (the prefetch, never used) then falls on q's first rows, which nothing writes while the chunk
 * runs; without q, k keeps its two spare rows. Those 512 bytes let the 410M layer's forward keep
 * TS = 32 at 6 blocks per SM. */
__host__ __device__ inline int t1_words_k_rows(bool with_q, int TS) { return with_q ? TS : TS + 2; }
__host__ __device__ inline size_t t1_words_buffer_bytes(bool with_q, int TS, int MT)
{
    return align16((size_t)t1_words_k_rows(with_q, TS) * MT * 8 * sizeof(uint2)) +
           (with_q ? align16((size_t)(TS + 2) * MT * 4 * sizeof(uint2)) : 0);
}

/* n consecutive uint4 from global src to shared dst, async, the block's threads in turn. */
__device__ __forceinline__ void t1_copy_run(uint2 *dst, const uint4 *src, int n, int tid, int nthr)
{
    for (int i = tid; i < n; i += nthr) cp_async16(reinterpret_cast<uint4 *>(dst) + i, src + i);
}

/* One thread per uint4 of one pair: blockIdx.y is the sequence, blockIdx.z the source head (k heads,
 * then q heads when with_q). */
__global__ void t1_words_prep(RecDims d, RecIn<bf16> in, uint4 *kw, uint4 *qw, int64_t pairs)
{
    const int b = blockIdx.y, z = blockIdx.z, K = 64;
    const bool is_q = z >= d.Nk;
    const int h = is_q ? z - d.Nk : z, per = is_q ? k_t1_words_q : k_t1_words_k;
    int64_t start, end;
    seq_range(d, in.cu, b, start, end);
    const int64_t L = end - start, np = L / 2 + 2;
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= np * per) return;
    const int64_t m = idx / per;
    const int it = (int)(idx - m * per);
    uint4 *dst = (is_q ? qw : kw) + (h * pairs + start / 2 + 2 * (int64_t)b + m) * per + it;
    if (!is_q) {
        const int w = it >> 3, g = it & 7, r0 = 16 * w + g;
        const int64_t u = 2 * m;
        const bf16 *k0 = in.k + ((start + u) * d.Nk + h) * K, *k1 = u + 1 < L ? k0 + (int64_t)d.Nk * K : k0;
        *dst = u < L ? t1_k_pair(k0, k1, r0, K) : make_uint4(0u, 0u, 0u, 0u);
    } else {
        const int w = it >> 2, t = it & 3;
        uint2 row[2];
#pragma unroll
        for (int i = 0; i < 2; i++) {
            const int64_t s = 2 * m + i - 1; /* row 2m + i holds q of step 2m + i - 1 */
            row[i] = s >= 0 && s < L ? t1_words_rows(reinterpret_cast<const uint32_t *>(in.q + ((start + s) * d.Nq + h) * K), w, t, K)
                                     : make_uint2(0u, 0u);
        }
        *dst = make_uint4(row[0].x, row[0].y, row[1].x, row[1].y);
    }
}

/* acc = k vᵀ over the tile as one m16n8k8 per column half, from words that depend on the lane's row
 * group g only (T1Chunk: kw = (k[r0], k[r0 + 8]), vw = (v[g] / 4, v[g + 8] / 4), each the bf16 bits
 * in the low half of a word). So A holds k in its even columns and B holds v / 4 in its even rows,
 * zeros in the odd ones, and D[i][j] is the sum of four equal products k[i] v[j] / 4: exact, equal
 * to t1_outer's product (column 0 and row 0 only) and to an fp32 multiply under the header's
 * conditions (microbench/kv_exact.cu checks both for every bf16 k). Against 8 fp32 multiplies of
 * per-column values it saves half a load and 6 instructions per step: the forward 1-2 % faster,
 * the 410M forward_save 2-4 % (NOTES.md v16). */
__device__ __forceinline__ void t1_kv(float (&acc)[2][4], uint2 kw, uint2 vw)
{
#pragma unroll
    for (int e = 0; e < 8; e++) acc[e >> 2][e & 3] = 0.0f;
    mma_bf16_k8(acc[0], kw.x, kw.y, vw.x);
    mma_bf16_k8(acc[1], kw.x, kw.y, vw.y);
}

/* z = tanh(bf16(H) W + k vᵀ), k vᵀ from t1_kv. */
__device__ __forceinline__ void t1_preact_tanh(float (&z)[8], const uint32_t (&hb)[4], uint2 kw, uint2 vw, const uint32_t (&bw)[2][2])
{
    float acc[2][4];
    t1_kv(acc, kw, vw);
    t1_tanh(z, hb, acc, bw);
}

/* H <- f H + (1-f) Z, and H packed to bf16 for the next step's product. fg = (f, 1-f). */
__device__ __forceinline__ void t1_update(float (&h)[8], uint32_t (&hb)[4], const float (&z)[8], float2 fg)
{
#pragma unroll
    for (int e = 0; e < 8; e++) h[e] = fmaf(fg.y, z[e], fg.x * h[e]);
    pack_state(h, hb);
}

/* fp32 value of element e of a packed fragment (pack_state's order: element e in word e/2, low half if even). */
__device__ __forceinline__ float t1_unpack(const uint32_t (&hb)[4], int e)
{
    return (e & 1) ? bf16_hi(hb[e >> 1]) : bf16_lo(hb[e >> 1]);
}

/* y partial over the tile's rows, y[j] = Σ_i H[i][j] q[i]: A = Hᵀ (the packed state's 8×8 blocks
 * transposed), B = the tile's q words in every column, so every lane gets rows g (yd[0]) and g+8 (yd[2]). */
__device__ __forceinline__ void t1_readout(float (&yd)[4], const uint32_t (&hb)[4], uint2 qq)
{
    const uint32_t at[4] = {movmatrix_trans(hb[0]), movmatrix_trans(hb[2]), movmatrix_trans(hb[1]), movmatrix_trans(hb[3])};
    mma_bf16(yd, at, qq.x, qq.y);
}

/* Σ over the MT tiles of four consecutive fp32 partials (rows of 16 floats per tile), starting at
 * tile `first` and wrapping: callers start neighbouring steps' sums at different tiles, so that their
 * 16-byte loads fall in different banks (v8). The order is fixed for each step. */
__device__ __forceinline__ float4 t1_sum_tiles(const float *p, int MT, int first)
{
    float4 acc = *reinterpret_cast<const float4 *>(p + first * 16);
    for (int i = 1; i < MT; i++) {
        const int ww = first + i < MT ? first + i : first + i - MT;
        const float4 x = *reinterpret_cast<const float4 *>(p + ww * 16);
        acc.x += x.x;
        acc.y += x.y;
        acc.z += x.z;
        acc.w += x.w;
    }
    return acc;
}

/* Four values rounded to bf16 at dst: one 8-byte store where dst is 8-byte aligned. */
__device__ __forceinline__ void t1_store4(bf16 *dst, float4 v, bool aligned8)
{
    const __nv_bfloat162 a = __floats2bfloat162_rn(v.x, v.y), b = __floats2bfloat162_rn(v.z, v.w);
    if (aligned8) {
        *reinterpret_cast<uint2 *>(dst) = make_uint2(*reinterpret_cast<const uint32_t *>(&a), *reinterpret_cast<const uint32_t *>(&b));
    } else {
        dst[0] = a.x;
        dst[1] = a.y;
        dst[2] = b.x;
        dst[3] = b.y;
    }
}

/* Threads per block: one warp per 16-row tile. MINB >= 4 means K <= 64 (4 warps). */
#define T1_THREADS(MINB) ((MINB) >= 4 ? 128 : 32 * V16_MAX_WARPS)

/* K and the number of 16-row tiles (= warps) of a v6 kernel. KC = 0: K from d (any K <= 128; the
 * launch gives one warp per tile). KC = 64, the paper's K for every model size: a compile-time
 * constant, so that the row strides of the staged chunks, the tile loops of the flushes and the
 * padding tests (r < K) fold away; measured in NOTES.md v7. */
template <int KC> __device__ __forceinline__ int t1_k(const RecDims &d) { return KC ? KC : d.K; }
template <int KC> __device__ __forceinline__ int t1_tiles()
{
    if constexpr (KC > 0) __builtin_assume(threadIdx.x < 32 * ((KC + 15) / 16)); /* so row 16 w + g + 8 < K is known */
    return KC ? (KC + 15) / 16 : (int)(blockDim.x >> 5);
}

/* ---- a block's lanes ------------------------------------------------------------------------ */

/* A block of fwd_t1 (of bwd_t1 with pairs of heads: units of two lanes) holds G lanes, G = blockDim
 * / 32·MT, one group of 32·MT threads each, with its own warps, slice of shared memory and named
 * barrier: block i takes lanes i·G .. i·G + G-1, and a group past the last lane returns at once.
 * Why not one block per lane: the warps of one block are served more evenly by an SM's schedulers
 * than the warps of several blocks sharing it, and a launch lasts as long as its slowest lane
 * (ubench lockstep, NOTES.md v21: the step with its loads at 24 warps per SM, 1.199 ms as six
 * blocks, 1.033 ms as one block with per-lane barriers). */
struct T1Group {
    int lane; /* b·N + n, or -1: no lane (the group returns) */
    int idx;  /* the group's index in its block: its slice of shared memory and barrier idx + 1 */
    int tid;  /* the thread's index in its group */
};
__device__ __forceinline__ T1Group t1_group(int64_t lanes, int nthr)
{
    T1Group r;
    /* idx through a shuffle: ptxas then knows it is the same across the warp, and keeps the lane's
     * values (b, n, its pointers) in uniform registers as it does with blockIdx; computed from
     * threadIdx alone, they took regular registers, and the 80-register kernels spilled (v21) */
    r.idx = __shfl_sync(0xffffffffu, (int)(threadIdx.x / (unsigned)nthr), 0);
    r.tid = (int)(threadIdx.x % (unsigned)nthr);
    const int64_t lane = (int64_t)blockIdx.x * (blockDim.x / (unsigned)nthr) + r.idx;
    r.lane = lane < lanes ? (int)lane : -1;
    return r;
}

/* The v6 kernels' blocks. GROUPS (fwd_t1: K = 64 at compile time; bwd_t1: pairs of heads, also
 * K = 64): up to MINB lanes of 4 warps (t1_group), with the registers of MINB one-lane blocks per SM
 * (launch bounds T1_BLOCK_THREADS, T1_BLOCK_MINB); else one lane per block of ONE threads, as before
 * v21 (bwd_t1 with one head per block measured slower grouped: its code grew, NOTES.md v21). */
#define FWD_T1_GROUPS(KC) ((KC) == 64)
#define BWD_T1_GROUPS(KC, HP) ((KC) == 64 && (HP) == 2)
#define T1_BLOCK_THREADS(GROUPS, MINB, ONE) ((GROUPS) ? 128 * (MINB) : (ONE))
#define T1_BLOCK_MINB(GROUPS, MINB) ((GROUPS) ? 1 : (MINB))

/* The thread's group: t1_group, or the whole block with one lane (unit: lanes, or pairs of heads). */
template <bool GROUPS>
__device__ __forceinline__ T1Group t1_block_group(int64_t units, int nthr)
{
    if constexpr (GROUPS) return t1_group(units, nthr);
    else return T1Group{(int)blockIdx.x, 0, (int)threadIdx.x};
}
/* The group's slice of the block's dynamic shared memory (equal slices, one per group). */
__device__ __forceinline__ unsigned char *t1_slice(unsigned char *smem, const T1Group &grp, int nthr)
{
    return smem + grp.idx * (dynamic_smem_bytes() / (blockDim.x / (unsigned)nthr));
}
/* The group's barrier: its named barrier, or the block's. */
template <bool GROUPS>
struct T1Sync {
    int bar, nthr;
    __device__ __forceinline__ void operator()() const
    {
        if constexpr (GROUPS) bar_sync_named(bar, nthr);
        else __syncthreads();
    }
};

/* ---- forward / checkpoint pass -------------------------------------------------------------- */

/* Shared memory of fwd_t1: the staged bf16 inputs (one buffer: the next chunk is staged while this
 * one runs from its converted copy; with WORDS only v), the converted chunk, with WORDS a second
 * buffer of k and q words, and (Y) the readout partials, all with spare rows (see the step loop). */
inline size_t fwd_t1_smem(int K, bool Y, int TS, bool words = false)
{
    const int MT = (K + 15) / 16;
    return align16((size_t)TS * (words ? 16 : (Y ? 2 : 1) * K + 16) * sizeof(bf16)) +
           t1_chunk_layout(nullptr, Y, TS + 2, MT, nullptr) + (words ? t1_words_buffer_bytes(Y, TS, MT) : 0) +
           (Y ? (size_t)(TS + 1) * MT * 16 * sizeof(float) : 0);
}

/* Y: write y (and ht); CKPT: store the state before step t, t % C == 0, as checkpoint t / C in
 * v16_ckpt_offset's layout (bwd_v16's and bwd_t1's). MINB: the registers of MINB one-lane blocks
 * per SM (with KC = 64, one block holds up to MINB lanes: FWD_T1_GROUPS).
 * KC: K as a compile-time constant (the paper's 64), or 0 for K from d; see t1_k.
 * EVEN_C: C is even, so every checkpoint falls on the first step of a pair (v14, NOTES.md).
 * WORDS: k's and q's words come made from `words` (T1Words, K = 64), into two buffers taken in turn,
 * and the chunk's conversion makes only v's and f's; else the block converts k and q too. */
template <bool Y, bool CKPT, int MINB, int KC, bool EVEN_C = false, bool WORDS = false>
__global__ void __launch_bounds__(T1_BLOCK_THREADS(FWD_T1_GROUPS(KC), MINB, T1_THREADS(MINB)), T1_BLOCK_MINB(FWD_T1_GROUPS(KC), MINB))
    fwd_t1(RecDims d, RecIn<bf16> in, bf16 *y, bf16 *ht, float *ckpt, int C, int nck, int TS, T1Words words)
{
    extern __shared__ __align__(16) unsigned char smraw[];
    /* (not t1_tiles: with KC = 64 a block has more than the lane's 4 warps) */
    const int K = t1_k<KC>(d), N = d.N, MT = KC ? (KC + 15) / 16 : t1_tiles<KC>(), nthr = 32 * MT;
    constexpr bool GROUPS = FWD_T1_GROUPS(KC);
    const T1Group grp = t1_block_group<GROUPS>((int64_t)d.B * N, nthr);
    if (GROUPS && grp.lane < 0) return;
    const int tid = grp.tid;
    if constexpr (KC > 0) __builtin_assume(tid < nthr); /* so row 16 w + g + 8 < K is known */
    const T1Sync<GROUPS> lane_sync{grp.idx + 1, nthr};
    const int w = tid >> 5, l = tid & 31, g = l >> 2, t4 = l & 3;
    const int lane = grp.lane, b = lane / N, n = lane % N;
    const int r0 = 16 * w + g, r1 = r0 + 8, c0 = 2 * t4, c2 = 2 * t4 + 8;

    const int RS = WORDS ? 16 : (Y ? 2 : 1) * K + 16, stage_elems = TS * RS; /* staged step: [k | q (Y) | v], or v */
    bf16 *stage = reinterpret_cast<bf16 *>(t1_slice(smraw, grp, nthr));
    unsigned char *p = reinterpret_cast<unsigned char *>(stage) + align16((size_t)stage_elems * sizeof(bf16));
    /* The step loop runs two steps per iteration (TS is even), reads the next pair's inputs during
     * a pair, and does step u - 1's readout during step u (off the recurrence's dependency chain).
     * So the converted rows have two spare rows past the chunk, q's words and the readout partials
     * one before it: q of step u is row u + 1 of q_words, the y partial of step u is row u + 1 of
     * ybuf, and row 0 of both is a dummy for step u = 0. The spare rows are zeroed once so that
     * nothing reads uninitialised memory. */
    T1Chunk ch;
    const size_t chunk_bytes = t1_chunk_layout(p, Y, TS + 2, MT, &ch);
    /* WORDS: the k and q words of odd chunks (even ones: the converted chunk's). Scalars and selects,
     * not an array indexed by the chunk, which ptxas kept in local memory and whose pointers it then
     * read through generic loads. */
    const size_t words_bytes = WORDS ? t1_words_buffer_bytes(Y, TS, MT) : 0;
    uint2 *const k_odd = reinterpret_cast<uint2 *>(p + chunk_bytes), *const q_odd = k_odd + t1_words_k_rows(Y, TS) * MT * 8;
    auto k_of = [&](int c) { return WORDS && (c & 1) ? k_odd : ch.k_words; };
    auto q_of = [&](int c) { return WORDS && (c & 1) ? q_odd : ch.q_words; };
    for (int i = tid; i < (int)((chunk_bytes + words_bytes) / 4); i += nthr) reinterpret_cast<uint32_t *>(p)[i] = 0u;
    float *ybuf = reinterpret_cast<float *>(p + chunk_bytes + words_bytes); /* [TS + 1][MT][16] */

    uint32_t bw[2][2], unused[2][2];
    load_w_fragments(in.W + (size_t)(n / d.gw) * 256, g, t4, false, bw, unused);

    float h[8];
    uint32_t hb[4];
    {
        const bf16 *h0 = in.h0 ? in.h0 + (size_t)lane * K * 16 : nullptr;
        const int rows[8] = {r0, r0, r1, r1, r0, r0, r1, r1}, cols[8] = {c0, c0 + 1, c0, c0 + 1, c2, c2 + 1, c2, c2 + 1};
#pragma unroll
        for (int e = 0; e < 8; e++) h[e] = (h0 && rows[e] < K) ? __bfloat162float(h0[rows[e] * 16 + cols[e]]) : 0.0f;
        pack_state(h, hb);
    }

    int64_t start, end;
    seq_range(d, in.cu, b, start, end);
    const int64_t L = end - start;
    const int nchunks = (int)((L + TS - 1) / TS);
    const LaneIn<bf16> li = lane_inputs(d, in, start, n);
    auto chunk_len = [&](int c) { const int64_t t0 = (int64_t)c * TS; return (int)(L - t0 < TS ? L - t0 : TS); };

    /* WORDS: this lane's first pair of k and q words (the divisions once, not per chunk) */
    const uint4 *const k_made = WORDS ? words.k + ((int64_t)(n / d.gk) * words.pairs + words.first(start, b)) * k_t1_words_k : nullptr;
    const uint4 *const q_made = WORDS && Y ? words.q + ((int64_t)(n / d.gq) * words.pairs + words.first(start, b)) * k_t1_words_q : nullptr;
    /* staged chunk: one row [k | q (Y) | v] of RS elements per step; with WORDS the rows hold v, and
     * the chunk's pairs of k words and of q words (one more: row TS) go to buffer c % 2 */
    auto issue = [&](int c) {
        const int64_t t0 = (int64_t)c * TS;
        const int ntok = chunk_len(c);
        if constexpr (WORDS) {
            const int left = (int)(L / 2 + 2 - t0 / 2); /* pairs from this chunk's first to the sequence's spare ones */
            const int npk = left < TS / 2 ? left : TS / 2, npq = left < TS / 2 + 1 ? left : TS / 2 + 1;
            t1_copy_run(k_of(c), k_made + (t0 / 2) * k_t1_words_k, npk * k_t1_words_k, tid, nthr);
            if (Y) t1_copy_run(q_of(c), q_made + (t0 / 2) * k_t1_words_q, npq * k_t1_words_q, tid, nthr);
        } else {
            stage_rows_to(stage, RS, li.k + t0 * li.kst, ntok, li.kst, K, tid, nthr);
            if (Y) stage_rows_to(stage + K, RS, li.q + t0 * li.qst, ntok, li.qst, K, tid, nthr);
        }
        stage_rows_to(WORDS ? stage : stage + (Y ? 2 : 1) * K, RS, li.v + t0 * li.vst, ntok, li.vst, 16, tid, nthr);
    };
    /* thread u's f of chunk c's step u, kept as the raw bf16 until the chunk converts it: converting
     * at once would wait for the load (NOTES.md v7); from the chunk's base plus the thread's offset */
    auto load_f = [&](int c) {
        const bf16 *fc = li.f + (int64_t)c * TS * li.fst;
        return tid < chunk_len(c) ? fc[tid * li.fst] : __float2bfloat16_rn(0.0f);
    };
    /* y of chunk c: the sum of the tiles' partials, in tile order, four columns per thread; the loop
     * runs once or twice per thread, so it is not unrolled, and the stores take the chunk's base plus
     * a 32-bit offset (v18, NOTES.md) */
    const bool y_quads = ((uintptr_t)y % 8) == 0;
    auto flush_y = [&](int c) {
        const int ntok = chunk_len(c);
        bf16 *const yc = y + ((start + (int64_t)c * TS) * N + n) * 16;
#pragma unroll 1
        for (int i = tid; i < ntok * 4; i += nthr) {
            const int u = i >> 2, j = 4 * (i & 3);
            t1_store4(yc + (u * N * 16 + j), t1_sum_tiles(ybuf + (u + 1) * MT * 16 + j, MT, MT > 1 ? (u & 1) : 0), y_quads);
        }
    };

    int to_ckpt = 0;
    /* the next checkpoint's two float4 (one per lane), carried from checkpoint to checkpoint */
    float4 *ckp = CKPT ? reinterpret_cast<float4 *>(ckpt + v16_ckpt_offset(lane, nck, 0, MT, w, l)) : nullptr;
    /* a warp's steps of one chunk, from the converted chunk ch and the k and q words, y partials into ybuf */
    auto run_chunk = [&](int ntok, const uint2 *kwords, const uint2 *qwords) {
        /* this thread's slots of the chunk, advanced one pair of steps at a time */
        const uint4 *kp = reinterpret_cast<const uint4 *>(kwords) + w * 8 + g;
        const float4 *fp = reinterpret_cast<const float4 *>(ch.f_g);
        const uint4 *vp = reinterpret_cast<const uint4 *>(ch.v_words) + g;
        /* rows u, u + 1: q of steps u - 1, u (WORDS: pair-major, T1Words) */
        const uint4 *qp = reinterpret_cast<const uint4 *>(qwords) + (WORDS ? w * 4 : w * ch.q_pairs * 4) + t4;
        float *yp = ybuf + w * 16 + g + 8 * (t4 & 1);                                /* row u: y partial of step u - 1 */
        uint4 kw2 = kp[0], vw2 = vp[0];
        float4 fg2 = fp[0];
        /* one step: the product and tanh start the chain, while the readout of step u - 1 (hb
         * still holds H_{u-1}; q is its B words) fills the wait */
        auto step = [&](uint2 kw, uint2 vw, float2 fg, uint2 q, bool may_ckpt) {
            if (CKPT && may_ckpt) {
                if (to_ckpt == 0) {
                    ckp[0] = make_float4(h[0], h[1], h[2], h[3]);
                    ckp[1] = make_float4(h[4], h[5], h[6], h[7]);
                    ckp += MT * 64; /* MT * 256 floats per checkpoint */
                    to_ckpt = C;
                }
                to_ckpt -= EVEN_C ? 2 : 1; /* EVEN_C: for the pair (an odd last step is the sequence's last) */
            }
            float z[8];
            t1_preact_tanh(z, hb, kw, vw, bw);
            float yd[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            if (Y) t1_readout(yd, hb, q);
            t1_update(h, hb, z, fg);
            /* every lane holds y rows g (yd[0]) and g+8 (yd[2]); lanes t = 0, 1 store one each */
            if (Y && t4 < 2) *yp = t4 ? yd[2] : yd[0];
            yp += MT * 16;
        };
        /* a pair of steps; may_ckpt: one of them stores a checkpoint (the test is per step there,
         * or with EVEN_C in the first step only: the steps of a pair are t and t + 1, t even) */
        auto pair = [&](bool may_ckpt) {
            const uint4 q2 = Y ? *qp : make_uint4(0u, 0u, 0u, 0u);
            kp += MT * 8;
            fp++;
            vp += 8;
            qp += WORDS ? MT * 4 : 4;
            const uint4 kw2_next = *kp, vw2_next = *vp;
            const float4 fg2_next = *fp;
            step(make_uint2(kw2.x, kw2.y), make_uint2(vw2.x, vw2.y), make_float2(fg2.x, fg2.y), make_uint2(q2.x, q2.y), may_ckpt);
            step(make_uint2(kw2.z, kw2.w), make_uint2(vw2.z, vw2.w), make_float2(fg2.z, fg2.w), make_uint2(q2.z, q2.w), may_ckpt && !EVEN_C);
            kw2 = kw2_next;
            vw2 = vw2_next;
            fg2 = fg2_next;
        };
        const int npairs = ntok >> 1;
        /* The pairs before the next checkpoint run without a test per step, the pair holding it
         * with the test (v9: 7B forward_save 1.031 → 1.012 ms, 410M checkpoint pass faster too).
         * With y at 80 registers (MINB 6) the split loop spilled and was slower (410M forward_save
         * 1.608 → 1.621 ms): there the test stays in every step. */
        constexpr bool split = CKPT && (MINB <= 4 || !Y);
        for (int m = 0; m < npairs;) {
            int plain = npairs - m;
            if (split && (to_ckpt >> 1) < plain) plain = to_ckpt >> 1;
#pragma unroll 2
            for (int e = 0; e < plain; e++) pair(CKPT && !split);
            m += plain;
            if (split) {
                to_ckpt -= 2 * plain;
                if (m < npairs) {
                    pair(true);
                    m++;
                }
            }
        }
        if (ntok & 1) /* an odd last chunk's last step: the first of the pair now in kw2, vw2, fg2 */
            step(make_uint2(kw2.x, kw2.y), make_uint2(vw2.x, vw2.y), make_float2(fg2.x, fg2.y), Y ? reinterpret_cast<const uint2 *>(qp)[0] : make_uint2(0u, 0u), true);
        if (Y) { /* the chunk's last step: q in row ntok */
            float yd[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            t1_readout(yd, hb, qwords[WORDS ? t1_pair_slot(ntok, MT * 4, w * 4 + t4) : w * ch.q_pairs * 8 + t1_pair_slot(ntok, 4, t4)]);
            if (t4 < 2) ybuf[(ntok * MT + w) * 16 + g + 8 * (t4 & 1)] = t4 ? yd[2] : yd[0];
        }
    };

    /* One staging buffer: chunk c + 1's copies are issued once chunk c is converted, and land while
     * chunk c runs (v8: the second buffer's 288 bytes per step went to a longer chunk instead). */
    bf16 fnext = __float2bfloat16_rn(0.0f);
    if (WORDS) lane_sync(); /* the zeroed word buffers before the copies land in them */
    if (nchunks > 0) {
        issue(0);
        fnext = load_f(0);
    }
    cp_async_commit();
    for (int c = 0; c < nchunks; c++) {
        const int ntok = chunk_len(c);
        const float fcur = __bfloat162float(fnext);
        cp_async_wait<0>();
        lane_sync(); /* chunk c staged; every warp done with chunk c - 1 */
        if (Y && c > 0) flush_y(c - 1);
        t1_convert(ch, stage, Y && !WORDS ? stage + K : nullptr, 1, WORDS ? stage : stage + (Y ? 2 : 1) * K, RS, fcur, ntok, K, MT,
                   tid, nthr, !WORDS);
        lane_sync(); /* chunk c converted: the staging buffer is free */
        if (c + 1 < nchunks) {
            issue(c + 1);
            fnext = load_f(c + 1);
        }
        cp_async_commit();
        run_chunk(ntok, k_of(c), q_of(c));
    }
    cp_async_wait<0>();
    if (Y && nchunks > 0) {
        lane_sync();
        flush_y(nchunks - 1);
    }
    if (ht) {
        bf16 *dst = ht + (size_t)lane * K * 16;
        const int rows[8] = {r0, r0, r1, r1, r0, r0, r1, r1}, cols[8] = {c0, c0 + 1, c0, c0 + 1, c2, c2 + 1, c2, c2 + 1};
#pragma unroll
        for (int e = 0; e < 8; e++)
            if (rows[e] < K) dst[rows[e] * 16 + cols[e]] = __float2bfloat16_rn(h[e]);
    }
}

/* ---- backward ------------------------------------------------------------------------------- */

/* The backward's staged step: one row per step u of the chunk, holding (bf16 elements)
 *   [0, KP)                    k, zero from K to KP = 16 MT (the padding rows of the last tile)
 *   [KP, 2 KP)                 q, likewise
 *   [2 KP + 32 j, +16)         v of the block's state head j (j < HP)
 *   [2 KP + 32 j + 16, +16)    dy of head j
 *   [2 KP + 32 HP, +16)        zeros: the "tail"
 * so that everything a step reads sits at the step's row plus a per-lane offset. The outer products
 * (t1_outer) need the vectors in their fragments' lanes t = 0 only and zeros elsewhere: the other
 * lanes' offsets point at the tail, so the loads need no predicate and no zeroing. The HP heads of a
 * block share k and q (see bwd_t1), so those are staged once. */
struct T1Row {
    int width;          /* elements per step row: 2 KP + 32 HP + 16 (a multiple of 8: 16-byte rows) */
    int q, v, dy, tail; /* where q, head 0's v and dy and the zero tail start */
    __host__ __device__ int v_of(int j) const { return v + 32 * j; }   /* head j's v */
    __host__ __device__ int dy_of(int j) const { return dy + 32 * j; } /* head j's dy */
};
__host__ __device__ inline T1Row t1_row_layout(int MT, int HP)
{
    const int KP = 16 * MT;
    return T1Row{2 * KP + 32 * HP + 16, KP, 2 * KP, 2 * KP + 16, 2 * KP + 32 * HP};
}

/* A lane's offsets (elements, within a step row) of its outer-product operands: a ([r0], [r0 + 8])
 * and b ([g], [g + 8]) on lanes t = 0, the zero tail on the others. */
struct T1OuterOff {
    int a, b;
};
__device__ __forceinline__ T1OuterOff t1_outer_off(int a_at, int b_at, int r0, int g, bool lead, const T1Row &R)
{
    return T1OuterOff{lead ? a_at + r0 : R.tail, lead ? b_at + g : R.tail};
}
__device__ __forceinline__ T1Outer t1_outer_at(const unsigned short *row, const T1OuterOff &o)
{
    return T1Outer{row[o.a], row[o.a + 8], row[o.b], row[o.b + 8]};
}
/* The same for head j > 0 of a block (bwd_t1's HP): a (k or q) is every head's, so it is taken from
 * head 0's operands, loaded once per step, and only b is loaded. */
__device__ __forceinline__ T1Outer t1_outer_head(const T1Outer &head0, const unsigned short *row, const T1OuterOff &o, int j)
{
    return j == 0 ? head0 : T1Outer{head0.a0, head0.a1, row[o.b], row[o.b + 8]};
}

/* Two floats stored as the bits of two 32-bit words: the state slots they may go to (bwd_t1) are
 * uint4s, read as such earlier in the same step, and a store of another type could be ordered
 * before that load by type-based alias analysis. */
__device__ __forceinline__ void t1_store_bits(float *p, float a, float b)
{
    *reinterpret_cast<uint2 *>(p) = make_uint2(__float_as_uint(a), __float_as_uint(b));
}

/* bwd_t1's packed states in their slots (v19, NOTES.md). On sm_90 a warp stores its 16×16 tile with
 * stmatrix, one 16-byte unit per row of each 8×8 block, and loads it back with ldmatrix, so that the
 * transposed blocks dWᵀ's product takes come from one ldmatrix.trans instead of four movmatrix.
 * Lane l gives the address of row r = l % 8 of block m = l / 8 (the fragment register m): unit
 * t1_slot_unit(l) = 8 m + pi_m(r) of the warp's 32, where pi_m permutes the rows so that a block's 8
 * rows fall in 8 different 16-byte bank groups (ldmatrix's phases) and so that the lanes t = 2, 3
 * (rows 2, 3, 6, 7) of blocks 0 and 2 take the groups 0-3 and those of blocks 1 and 3 the groups 4-7:
 * with t1_part_half the pairs' partials (below), stored by those lanes into their own units, then
 * cover the 32 banks once. Before sm_90 (no stmatrix) each lane keeps its 16 bytes at its unit, and
 * the transposes are movmatrix. Either way t1_slot_load<false> returns the fragments stored. */
__device__ __forceinline__ int t1_slot_unit(int l)
{
    const int m = l >> 3, r = l & 7;
    return 8 * m + ((2 * (r >> 2) + (r & 1) + ((r & 2) ? 0 : 4)) ^ (4 * (m & 1)));
}
/* volatile: a lane reads what other lanes stored, so these must stay on their side of the barriers */
__device__ __forceinline__ void t1_slot_store(uint32_t addr, const uint32_t (&h)[4])
{
#if __CUDA_ARCH__ >= 900
    asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};" ::"r"(addr), "r"(h[0]), "r"(h[1]), "r"(h[2]),
                 "r"(h[3])
                 : "memory");
#else
    asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};" ::"r"(addr), "r"(h[0]), "r"(h[1]), "r"(h[2]), "r"(h[3]) : "memory");
#endif
}
/* the fragments stored at addr, or with TRANS their four 8×8 blocks each transposed (movmatrix_trans
 * of each fragment register) */
template <bool TRANS>
__device__ __forceinline__ void t1_slot_load(uint32_t (&h)[4], uint32_t addr)
{
#if __CUDA_ARCH__ >= 900
    if constexpr (TRANS)
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
                     : "=r"(h[0]), "=r"(h[1]), "=r"(h[2]), "=r"(h[3])
                     : "r"(addr));
    else
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                     : "=r"(h[0]), "=r"(h[1]), "=r"(h[2]), "=r"(h[3])
                     : "r"(addr));
#else
    asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(h[0]), "=r"(h[1]), "=r"(h[2]), "=r"(h[3]) : "r"(addr));
    if constexpr (TRANS)
#pragma unroll
        for (int i = 0; i < 4; i++) h[i] = movmatrix_trans(h[i]);
#endif
}

/* Whether bwd_t1 keeps its dv / df partials in the state slots: with two heads per block. With one,
 * the dense buffers measured faster (NOTES.md v12 and v13: 7B training step 4.20 against 4.29 ms). */
__host__ __device__ constexpr bool t1_slot_parts(int HP) { return HP > 1; }

/* bwd_t1's uint4s per packed state (a slot of its state history): each warp's 32. With t1_slot_parts
 * the slots also take the dv and df partials (v12, NOTES.md: see bwd_t1), and 16 bytes of
 * padding put one lane's entries of consecutive slots in different banks for the flush that reads
 * them. */
__host__ __device__ constexpr int t1_slot(int MT, int HP) { return MT * 32 + (t1_slot_parts(HP) ? 1 : 0); }

/* Where lane `lane` keeps its float2 of dv / df partials within its own 16 bytes of a slot (its unit,
 * t1_slot_unit; in floats): lanes 16-31 the upper half. The 16 lanes that store them (t = 2, 3) then
 * cover the 32 banks once (v19; v13 had 2 wavefronts per store), and so do the flush's half-warp
 * reads of two steps (NOTES.md). */
__device__ __forceinline__ int t1_part_half(int lane) { return 2 * (lane >> 4); }

/* The dense partial buffers' floats per step and head (one head per block): dv's MT tiles of 16
 * columns and df's MT tiles of 8 row groups, each padded so that the flush's loads of consecutive
 * steps fall in different banks (dv's rows 16 banks apart, df's 4: v18, NOTES.md). */
__host__ __device__ constexpr int t1_dv_pitch(int MT) { return MT * 16 + (MT & 1 ? 0 : 16); }
__host__ __device__ constexpr int t1_df_pitch(int MT) { return MT * 8 + 4; }

/* Shared memory of bwd_t1 for checkpoint interval C and HP state heads per block: the chunk's packed
 * states H_0..H_C [C+1][HP] slots, the staged step rows (double-buffered, T1Row), (f, 1-f) [C][HP]
 * (double-buffered with one head per block: see bwd_t1's LATE), and with one head per block the dv
 * [C][HP][t1_dv_pitch] and df [C][HP][t1_df_pitch] partials. */
inline size_t bwd_t1_smem(int K, int C, int HP)
{
    const int MT = (K + 15) / 16;
    size_t dw = (size_t)MT * 256 * sizeof(float); /* the dW partials reuse the space at the end */
    size_t s = (size_t)(C + 1) * HP * t1_slot(MT, HP) * sizeof(uint4) +
               align16(2 * (size_t)C * t1_row_layout(MT, HP).width * sizeof(bf16)) +
               align16((t1_slot_parts(HP) ? 1 : 2) * (size_t)C * HP * sizeof(float2));
    if (!t1_slot_parts(HP))
        s += align16((size_t)C * HP * t1_dv_pitch(MT) * sizeof(float)) + align16((size_t)C * HP * t1_df_pitch(MT) * sizeof(float));
    return s > dw ? s : dw;
}

/* Threads per bwd_t1 block: T1_THREADS, or 128 (K <= 64) with more than one head per block. */
#define BWD_T1_THREADS(MINB, HP) ((HP) > 1 ? 128 : T1_THREADS(MINB))

/* bwd_t1's staging of one input: stage_rows_to's copies (ntok rows of row_bytes, 16-byte copies
 * where u16 says the rows, strides and bases allow them, else 4-byte ones), with the alignment test
 * (stage_u16) made once per block and the row loop not unrolled: per chunk, stage_rows_to's
 * tests, index arithmetic and unrolled loop (for one or two rows per thread) were most of the
 * instructions bwd_t1 runs once per chunk (v17, NOTES.md). */
template <int UNIT>
__device__ __forceinline__ void t1_stage_in(uint32_t dst, int dst_bytes, const char *src, int64_t stride_bytes, int ntok,
                                            int row_bytes, int tid, int nthr)
{
    const int vecs = row_bytes / UNIT, rstep = nthr / vecs; /* vecs <= nthr: K <= 16 MT */
    if (tid >= rstep * vecs) return;
    const int r0 = tid / vecs, vec = tid - r0 * vecs;
    dst += r0 * dst_bytes + UNIT * vec;
    src += r0 * stride_bytes + UNIT * vec;
#pragma unroll 1
    for (int r = r0; r < ntok; r += rstep, dst += rstep * dst_bytes, src += rstep * stride_bytes) {
        if constexpr (UNIT == 16) asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(dst), "l"(src));
        else asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(dst), "l"(src));
    }
}
__device__ __forceinline__ void t1_stage(bf16 *dst, int dst_stride, const bf16 *src, int ntok, int64_t stride, int width, int tid,
                                         int nthr, bool u16)
{
    const uint32_t d = (uint32_t)__cvta_generic_to_shared(dst);
    const char *s = reinterpret_cast<const char *>(src);
    const int row_bytes = width * (int)sizeof(bf16), dst_bytes = dst_stride * (int)sizeof(bf16);
    if (u16) t1_stage_in<16>(d, dst_bytes, s, stride * (int64_t)sizeof(bf16), ntok, row_bytes, tid, nthr);
    else t1_stage_in<4>(d, dst_bytes, s, stride * (int64_t)sizeof(bf16), ntok, row_bytes, tid, nthr);
}

/* CLIP: the clip mode (m2rnn_clip_mode: 0 none, 1 carry, 2 total), a template parameter so that the
 * step has no branch on it. dv_out / df_out: when not NULL (no shared v / f heads), dv / df are written
 * there directly, rounded once, instead of as fp32 partials for reduce_groups.
 * HP: state heads per block (v11, NOTES.md; with pairs, per group of a block: BWD_T1_GROUPS), the lanes
 * HP·u + j, j < HP, of one sequence (u: the block's, or the group's, unit),
 * which share their k and q heads (N, gk and gq multiples of HP). Each warp runs the same tile of
 * every head, the heads' steps interleaved: independent chains in one warp instead of one chain in
 * each of HP times as many warps. Their dk and dq partials are summed in the tensor-core products
 * themselves (one accumulator over the heads), so the partial buffers hold N / HP heads, and k and q
 * are staged once. HP = 1 is the v6 kernel. The sums over a pair happen in a different order than
 * reduce_groups' (the MMA's accumulation, then N/2 partials), so dq and dk differ in their last bits
 * between HP = 1 and HP = 2; each is bit-identical from run to run. */
template <int MINB, int CLIP, int KC, int HP>
__global__ void __launch_bounds__(T1_BLOCK_THREADS(BWD_T1_GROUPS(KC, HP), MINB, BWD_T1_THREADS(MINB, HP)),
                                  T1_BLOCK_MINB(BWD_T1_GROUPS(KC, HP), MINB))
    bwd_t1(RecDims d, RecIn<bf16> in, const bf16 *dy, const bf16 *dht, float clip, bf16 *dh0, GradOut go,
           bf16 *dv_out, bf16 *df_out, const float *ckpt, int C, int nck)
{
    static_assert(HP == 1 || (HP == 2 && KC == 64), "two heads per block: K = 64 only (BWD_T1_THREADS)");
    extern __shared__ __align__(16) unsigned char smblock[];
    constexpr bool GROUPS = BWD_T1_GROUPS(KC, HP);
    /* (not t1_tiles with GROUPS: a block holds up to MINB groups of the pair's 4 warps, t1_group) */
    const int K = t1_k<KC>(d), N = d.N, MT = GROUPS ? (KC + 15) / 16 : t1_tiles<KC>(), nthr = 32 * MT;
    const T1Group grp = t1_block_group<GROUPS>((int64_t)d.B * N / HP, nthr);
    if (GROUPS && grp.lane < 0) return;
    unsigned char *const smraw = GROUPS ? t1_slice(smblock, grp, nthr) : smblock;
    const T1Sync<GROUPS> lane_sync{grp.idx + 1, nthr};
    /* one lane per block: threadIdx and blockIdx read here, as before v21 (through grp, ptxas's code
     * for the one-head kernels changed: 121 -> 119 registers at K = 64, 4 blocks per SM) */
    const int tid = GROUPS ? grp.tid : (int)threadIdx.x, w = tid >> 5, l = tid & 31, g = l >> 2, t4 = l & 3;
    if constexpr (GROUPS) __builtin_assume(tid < nthr);
    const int lane0 = (GROUPS ? grp.lane : (int)blockIdx.x) * HP, b = lane0 / N, n0 = lane0 % N; /* heads n0 .. n0 + HP - 1 of sequence b */
    const int r0 = 16 * w + g, r1 = r0 + 8, c0 = 2 * t4, c2 = 2 * t4 + 8;
    const int rows[8] = {r0, r0, r1, r1, r0, r0, r1, r1}, cols[8] = {c0, c0 + 1, c0, c0 + 1, c2, c2 + 1, c2, c2 + 1};
    const bool lead = t4 == 0;
    const T1Row R = t1_row_layout(MT, HP);
    /* v12: with two heads per block the dv / df partials live in the state slots (t1_slot) */
    constexpr bool SLOT_PARTS = t1_slot_parts(HP);
    /* uint4s per packed state: t1_slot's value, written out (calling t1_slot here changed ptxas's code
     * for the pairs' flush, so that the kernel was no longer the one measured) */
    const int slot = MT * 32 + (SLOT_PARTS ? 1 : 0);
    /* the staging by warps (below) in the instances with K = 64 (MT = 4) and up to 4 blocks per SM:
     * the 80-register instances spilled with it, and the generic-K ones' step loops grew */
    constexpr bool JOBS = MINB < 6 && KC != 0;

    /* head j's H_u in slot u HP + j: through t1_slot_store / t1_slot_load<> at hs32 + 16 (u HP + j) slot; Hs:
     * the lane's own unit of slot 0, where the pairs' reverse steps store its partials */
    uint4 *Hs = reinterpret_cast<uint4 *>(smraw) + w * 32 + t1_slot_unit(l);
    const uint32_t hs32 = (uint32_t)__cvta_generic_to_shared(Hs);
    unsigned char *p = smraw + (size_t)(C + 1) * HP * slot * sizeof(uint4);
    const int stage_elems = C * R.width;
    bf16 *stage = reinterpret_cast<bf16 *>(p);
    p += align16(2 * (size_t)stage_elems * sizeof(bf16));
    /* LATE (the dense partial buffers): the chunk's second barrier comes after the replay, not before
     * it. It orders the flush's reads of chunk c + 1's partials before chunk c's reverse steps write
     * them; (f, 1 - f), which the replay reads, is stored a chunk ahead instead, into two buffers
     * taken in turn, and the first barrier orders it. With the partials in the state slots, which the
     * replay writes, the barrier stays before the replay; so it does in the instances without JOBS,
     * which spilled with it (their buffer of f is two all the same: bwd_t1_smem). */
    constexpr bool LATE = !SLOT_PARTS && JOBS;
    float2 *const fgbuf = reinterpret_cast<float2 *>(p); /* [2 with LATE][C][HP] */
    auto fg_of = [&](int c) { return LATE ? fgbuf + (c & 1) * C * HP : fgbuf; };
    /* with one head per block: dv [C][HP][dvp] (tile ww's 16 columns at 16 ww) and df [C][HP][dfp] (8 ww) */
    const int dvp = t1_dv_pitch(MT), dfp = t1_df_pitch(MT);
    float *dvbuf = nullptr, *dfbuf = nullptr;
    if constexpr (!SLOT_PARTS) {
        p += align16(2 * (size_t)C * HP * sizeof(float2));
        dvbuf = reinterpret_cast<float *>(p);
        dfbuf = dvbuf + align16((size_t)C * HP * dvp * sizeof(float)) / sizeof(float);
    }
    /* the padding and the tails are never staged: zero them once */
    for (int i = tid; i < stage_elems; i += nthr) reinterpret_cast<uint32_t *>(stage)[i] = 0u; /* 2 buffers, 2 per word */

    uint32_t bw[HP][2][2], bwt[HP][2][2], unused[2][2];
    float G[HP][8];
    float dW[HP][2][4]; /* dWᵀ of the tile, in fragment order (see the reverse step) */
#pragma unroll
    for (int j = 0; j < HP; j++) {
        const bf16 *Wn = in.W + (size_t)((n0 + j) / d.gw) * 256;
        load_w_fragments(Wn, g, t4, false, bw[j], unused);
        load_w_fragments(Wn, g, t4, true, bwt[j], unused);
#pragma unroll
        for (int e = 0; e < 8; e++)
            G[j][e] = (dht && rows[e] < K) ? __bfloat162float(dht[(size_t)(lane0 + j) * K * 16 + rows[e] * 16 + cols[e]]) : 0.0f;
#pragma unroll
        for (int e = 0; e < 8; e++) dW[j][e >> 2][e & 3] = 0.0f;
    }

    int64_t start, end;
    seq_range(d, in.cu, b, start, end);
    const int64_t L = end - start;
    const int nchunks = (int)((L + C - 1) / C);
    LaneIn<bf16> li[HP]; /* k and q: the same for every head */
#pragma unroll
    for (int j = 0; j < HP; j++) li[j] = lane_inputs(d, in, start, n0 + j);
    const int64_t dyst = (int64_t)N * 16;
    const bf16 *dyb = dy + (start * N + n0) * 16; /* head j's 16 j further */
    const float cl = fabsf(clip);

    auto chunk_len = [&](int c) { const int64_t t0 = (int64_t)c * C; return (int)(L - t0 < C ? L - t0 : C); };
    /* Staged chunk c (buffer c & 1): one T1Row per step. Where every input allows 16-byte copies (the
     * usual case, tested once), each warp copies whole inputs (jobs: k, q, then v and dy of head j, v
     * on lanes 0-15 and dy on 16-31), so a thread sets up one copy loop per chunk instead of one per
     * input (v18, NOTES.md); otherwise t1_stage copies each input with the whole block. */
    const int wb = R.width * (int)sizeof(bf16);
    const bool k16 = stage_u16(li[0].k, li[0].kst * 2, 2 * K, stage, wb);
    const bool q16 = stage_u16(li[0].q, li[0].qst * 2, 2 * K, stage + R.q, wb);
    bool v16[HP], dy16[HP];
#pragma unroll
    for (int j = 0; j < HP; j++) {
        v16[j] = stage_u16(li[j].v, li[j].vst * 2, 32, stage + R.v_of(j), wb);
        dy16[j] = stage_u16(dyb + 16 * j, dyst * 2, 32, stage + R.dy_of(j), wb);
    }
    bool jobs16 = JOBS && k16 && q16;
#pragma unroll
    for (int j = 0; j < HP; j++) jobs16 = jobs16 && v16[j] && dy16[j];
    auto issue = [&](int c) {
        const int64_t t0 = (int64_t)c * C;
        const int ntok = chunk_len(c);
        bf16 *s = stage + (c & 1) * stage_elems;
        if (jobs16) {
            const uint32_t s32 = (uint32_t)__cvta_generic_to_shared(s);
#pragma unroll 1
            for (int jb = w; jb < 2 + HP; jb += MT) {
                if (jb < 2) { /* k or q: the whole warp */
                    const bf16 *src = jb == 0 ? li[0].k : li[0].q;
                    const int64_t st = jb == 0 ? li[0].kst : li[0].qst;
                    t1_stage_in<16>(s32 + (jb == 0 ? 0 : 2 * R.q), wb, reinterpret_cast<const char *>(src + t0 * st), st * 2, ntok,
                                    2 * K, l, 32);
                } else { /* v (lanes 0-15) and dy (lanes 16-31) of head jb - 2 */
                    const int j = jb - 2;
                    const bool dyl = l >= 16;
                    const bool h0 = HP == 1 || j == 0; /* HP <= 2; selected by value: li stays in registers */
                    const bf16 *src = dyl ? dyb + 16 * j : h0 ? li[0].v : li[HP - 1].v;
                    const int64_t st = dyl ? dyst : h0 ? li[0].vst : li[HP - 1].vst;
                    t1_stage_in<16>(s32 + 2 * (dyl ? R.dy_of(j) : R.v_of(j)), wb, reinterpret_cast<const char *>(src + t0 * st), st * 2,
                                    ntok, 32, l & 15, 16);
                }
            }
            return;
        }
        t1_stage(s, R.width, li[0].k + t0 * li[0].kst, ntok, li[0].kst, K, tid, nthr, k16);
        t1_stage(s + R.q, R.width, li[0].q + t0 * li[0].qst, ntok, li[0].qst, K, tid, nthr, q16);
        /* v and dy (two copies per row) from the last threads: k and q leave them less to do */
#pragma unroll
        for (int j = 0; j < HP; j++) {
            t1_stage(s + R.v_of(j), R.width, li[j].v + t0 * li[j].vst, ntok, li[j].vst, 16, nthr - 1 - tid, nthr, v16[j]);
            t1_stage(s + R.dy_of(j), R.width, dyb + 16 * j + t0 * dyst, ntok, dyst, 16, nthr - 1 - tid, nthr, dy16[j]);
        }
    };
    /* Chunk c's f and checkpoint: each a block-wide base for the chunk plus the thread's offset */
    auto load_f = [&](int c, int j) { /* raw bf16, converted when the chunk is run (see fwd_t1) */
        const bf16 *fc = li[j].f + (int64_t)c * C * li[j].fst;
        return tid < chunk_len(c) ? fc[tid * li[j].fst] : __float2bfloat16_rn(0.0f);
    };
    auto ckpt_at = [&](int c, int j) { /* thread tid = 32 w + l: its 8 floats of the warp's tile */
        return reinterpret_cast<const float4 *>(ckpt + ((size_t)(lane0 + j) * nck + c) * MT * 256 + tid * 8);
    };
    /* dv and df of chunk c: the tiles' partials summed in a fixed order; dv two columns per thread,
     * stored as one bf16 pair where the caller's dv is 4-byte aligned (four columns per thread
     * measured slower: 3.50 against 3.41 ms for the 7B backward kernel, NOTES.md v7) */
    const bool dv_pairs = ((uintptr_t)dv_out % 4) == 0;
    /* With SLOT_PARTS, step u's partials of head j and tile ww sit in the state slot of H_{u+1} (see
     * the reverse steps), at uj = u HP + j from part: columns k and k + 8 of dv in lane 4 k + 2 (a
     * float2), row group x's df in lane 4 x + 3, each in the half of the lane's 16 bytes that
     * t1_part_half gives. */
    const uint4 *parts = reinterpret_cast<const uint4 *>(smraw) + (size_t)HP * slot;
    auto part = [&](int uj, int ww, int lane) {
        return reinterpret_cast<const float *>(parts + (size_t)uj * slot + ww * 32 + t1_slot_unit(lane)) + t1_part_half(lane);
    };
    /* The flush's loops run once or twice per thread (C <= 32), so they are not unrolled, and their
     * stores take the chunk's base, block-wide, plus a 32-bit offset per item (v18, NOTES.md). */
    auto flush = [&](int c) {
        const int64_t tok0 = start + (int64_t)c * C, dfbase = tok0 * N + n0, dvbase = dfbase * 16;
        if constexpr (SLOT_PARTS) {
            const int n = chunk_len(c) * HP;
            /* thread (w, l): columns k = l % 8 and k + 8 of steps uj = 4 w + l / 8, + 4 MT, ...: a
             * half-warp's 16 float2 loads (2 steps, 8 lanes: t1_slot_unit, t1_part_half, and the
             * slots' 16 bytes of padding) cover the 32 banks once */
            const int k = l & 7;
#pragma unroll 1
            for (int uj = 4 * w + (l >> 3); uj < n; uj += 4 * MT) {
                float2 acc = make_float2(0.0f, 0.0f);
                for (int ww = 0; ww < MT; ww++) {
                    const float2 x = *reinterpret_cast<const float2 *>(part(uj, ww, 4 * k + 2));
                    acc.x += x.x;
                    acc.y += x.y;
                }
                const int u = uj / HP, j = uj % HP;
                const int64_t o = dvbase + ((u * N + j) * 16 + k);
                if (!dv_out) {
                    go.dv[o] = acc.x;
                    go.dv[o + 8] = acc.y;
                } else {
                    dv_out[o] = __float2bfloat16_rn(acc.x);
                    dv_out[o + 8] = __float2bfloat16_rn(acc.y);
                }
            }
#pragma unroll 1
            for (int uj = tid; uj < n; uj += nthr) {
                const int u = uj / HP, j = uj % HP;
                float acc = 0.0f;
                for (int ww = 0; ww < MT; ww++)
                    for (int x = 0; x < 8; x++) acc += part(uj, ww, 4 * x + 3)[0];
                const int64_t o = dfbase + (u * N + j);
                if (df_out) df_out[o] = __float2bfloat16_rn(acc);
                else go.df[o] = acc;
            }
        } else {
            const int ntok = chunk_len(c);
            /* dv: the items from warp 2 on, then warps 0 and 1's, so that with jobs (MT = 4) the items
             * past the block's threads fall on warp 2, which stages only v and dy; df's sums below on
             * the last threads */
#pragma unroll 1
            for (int i = (tid + 64) % nthr; i < ntok * HP * 8; i += nthr) {
                const int uj = i >> 3, u = uj / HP, j = uj % HP, jc = 2 * (i & 7);
                float2 acc = make_float2(0.0f, 0.0f);
                for (int ww = 0; ww < MT; ww++) {
                    const float2 x = *reinterpret_cast<const float2 *>(dvbuf + uj * dvp + ww * 16 + jc);
                    acc.x += x.x;
                    acc.y += x.y;
                }
                const int64_t o = dvbase + ((u * N + j) * 16 + jc);
                if (!dv_out) {
                    *reinterpret_cast<float2 *>(go.dv + o) = acc; /* the workspace: aligned */
                } else if (dv_pairs) {
                    *reinterpret_cast<__nv_bfloat162 *>(dv_out + o) = __floats2bfloat162_rn(acc.x, acc.y);
                } else {
                    dv_out[o] = __float2bfloat16_rn(acc.x);
                    dv_out[o + 1] = __float2bfloat16_rn(acc.y);
                }
            }
            /* df: a step's MT * 8 partials in order, four per (16-byte) load */
#pragma unroll 1
            for (int uj = nthr - 1 - tid; uj < ntok * HP; uj += nthr) {
                const int u = uj / HP, j = uj % HP;
                const float4 *x4 = reinterpret_cast<const float4 *>(dfbuf + uj * dfp);
                float acc = 0.0f;
                for (int e = 0; e < MT * 2; e++) {
                    const float4 x = x4[e];
                    acc += x.x;
                    acc += x.y;
                    acc += x.z;
                    acc += x.w;
                }
                const int64_t o = dfbase + (u * N + j);
                if (df_out) df_out[o] = __float2bfloat16_rn(acc);
                else go.df[o] = acc;
            }
        }
    };

    /* Lane offsets within a step row: the outer products' operands (k vᵀ, q dyᵀ), and the B words of
     * dk = dA v, dq = H_t dy, dv = dAᵀ k (t1_words16 / the tile's rows of k, zero past K). */
    T1OuterOff okv[HP], oqd[HP];
#pragma unroll
    for (int j = 0; j < HP; j++) {
        okv[j] = t1_outer_off(0, R.v_of(j), r0, g, lead, R);
        oqd[j] = t1_outer_off(R.q, R.dy_of(j), r0, g, lead, R);
    }
    /* What a lane stores per reverse step (lanes t = 0: dk, 1: dq, both to global memory as fp32
     * partials, summed over the block's heads, 2: dv's tile partial, 3: df's, of each head), through
     * one generic pointer that walks back one step per step: rows g and g + 8 (columns for dv) at
     * out[0] and out[8], for the last head; head j's dv / df sit jback · (HP - 1 - j) before it.
     * With SLOT_PARTS one float2 per lane (v12, NOTES.md): dk, dq rows g and g + 8 side by side (the
     * partials of a head are KP floats, each tile's rows in tile_pair_index order); dv columns g and
     * g + 8, or df, in the lane's own 16 bytes of the slot of H_{u+1} (the half t1_part_half says),
     * which reverse step u has just read for the last time; head j's (HP - 1 - j) slots before the
     * last head's. */
    const bool st0 = t4 >= 2 || r0 < K, st8 = t4 == 2 || (t4 < 2 && r1 < K);
    const int Np = N / HP, np = n0 / HP, KP = 16 * MT; /* the partials' heads, their stride with SLOT_PARTS */
    const int jback = SLOT_PARTS ? slot * 4 : t4 == 2 ? t1_dv_pitch(MT) : t1_df_pitch(MT);

    bf16 fnext[HP];
    float4 hn[HP][2];
    /* chunk c's inputs staged, its f and checkpoint in flight (used when chunk c runs); with LATE,
     * chunk c's f (loaded a chunk earlier) stored and chunk c - 1's in flight */
    auto prefetch = [&](int c) {
        issue(c);
#pragma unroll
        for (int j = 0; j < HP; j++) {
            if (LATE) {
                t1_store_f(fg_of(c) + j, __bfloat162float(fnext[j]), chunk_len(c), tid, HP);
                fnext[j] = c > 0 ? load_f(c - 1, j) : __float2bfloat16_rn(0.0f);
            } else {
                fnext[j] = load_f(c, j);
            }
            hn[j][0] = ckpt_at(c, j)[0];
            hn[j][1] = ckpt_at(c, j)[1];
        }
    };
#pragma unroll
    for (int j = 0; j < HP; j++) {
        fnext[j] = __float2bfloat16_rn(0.0f);
        hn[j][0] = hn[j][1] = make_float4(0, 0, 0, 0);
    }
    lane_sync(); /* the zeroed rows before the first copies land */
    if (nchunks > 0) {
        if (LATE) /* the first chunk's f, stored by its prefetch (waiting for this load once) */
#pragma unroll
            for (int j = 0; j < HP; j++) fnext[j] = load_f(nchunks - 1, j);
        prefetch(nchunks - 1);
    }
    cp_async_commit();

    /* Where a reverse step's lane stores (above), for the last step of the last chunk; the reverse
     * steps walk it back and each chunk's end moves it on to the next (so it is worked out once per
     * block, not once per chunk). */
    float *out;
    int64_t out_step;
    {
        const int64_t tl = start + L - 1; /* the last step's token */
        const int Ll = nchunks > 0 ? chunk_len(nchunks - 1) : 0;
        out = SLOT_PARTS ? (t4 == 0   ? go.dk + (tl * Np + np) * KP + 16 * w + 2 * g
                            : t4 == 1 ? go.dq + (tl * Np + np) * KP + 16 * w + 2 * g
                                      : reinterpret_cast<float *>(Hs + (size_t)(Ll * HP + HP - 1) * slot) + t1_part_half(l))
              : t4 == 0 ? go.dk + (tl * Np + np) * K + r0
              : t4 == 1 ? go.dq + (tl * Np + np) * K + r0
              : t4 == 2 ? dvbuf + ((Ll - 1) * HP + HP - 1) * dvp + w * 16 + g
                        : dfbuf + ((Ll - 1) * HP + HP - 1) * dfp + w * 8 + g;
        out_step = SLOT_PARTS ? (t4 < 2 ? (int64_t)Np * KP : HP * slot * 4)
                   : t4 < 2   ? (int64_t)Np * K
                   : t4 == 2  ? HP * dvp
                              : HP * dfp;
    }
    for (int c = nchunks - 1; c >= 0; c--) {
        const int Lc = chunk_len(c);
        float fcur[HP], h[HP][8];
#pragma unroll
        for (int j = 0; j < HP; j++) {
            /* without LATE, chunk c's f, taken before prefetch(c - 1) loads chunk c - 1's (with LATE,
             * prefetch(c) stored chunk c's in the previous chunk, and fnext is already c - 1's) */
            fcur[j] = LATE ? 0.0f : __bfloat162float(fnext[j]);
            const float hv[8] = {hn[j][0].x, hn[j][0].y, hn[j][0].z, hn[j][0].w, hn[j][1].x, hn[j][1].y, hn[j][1].z, hn[j][1].w};
#pragma unroll
            for (int e = 0; e < 8; e++) h[j][e] = hv[e];
        }
        cp_async_wait<0>();
        lane_sync(); /* chunk c staged; every warp done with chunk c + 1 (its buffer, fgbuf, partials) */
        if (c > 0) prefetch(c - 1);
        cp_async_commit();
        if (c + 1 < nchunks) flush(c + 1);
        if (!LATE) {
#pragma unroll
            for (int j = 0; j < HP; j++)
                t1_store_f(fgbuf + j, fcur[j], Lc, tid, HP);
            lane_sync();
        }
        const float2 *const fgc = fg_of(c);

        const unsigned short *rows16 = reinterpret_cast<const unsigned short *>(stage + (c & 1) * stage_elems);
        auto row16 = [&](int u) { return rows16 + u * R.width; };

        /* Replay: H_0..H_Lc of the chunk, packed to bf16 (each thread its own slots); step u + 1's
         * outer product is issued during step u. */
        {
            uint32_t hb[HP][4];
            float acc[HP][2][4];
#pragma unroll
            for (int j = 0; j < HP; j++) {
                pack_state(h[j], hb[j]);
                t1_slot_store(hs32 + 16 * j * slot, hb[j]);
#pragma unroll
                for (int e = 0; e < 8; e++) acc[j][e >> 2][e & 3] = 0.0f;
                t1_outer(acc[j], t1_outer_at(row16(0), okv[j]));
            }
            for (int u = 0; u < Lc; u++) {
                const int un = u + 1 < Lc ? u + 1 : u;
                const T1Outer kv0 = t1_outer_at(row16(un), okv[0]);
#pragma unroll
                for (int j = 0; j < HP; j++) {
                    float z[8];
                    t1_tanh(z, hb[j], acc[j], bw[j]);
                    float accn[2][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}};
                    t1_outer(accn, t1_outer_head(kv0, row16(un), okv[j], j));
                    t1_update(h[j], hb[j], z, fgc[u * HP + j]);
                    t1_slot_store(hs32 + 16 * ((u + 1) * HP + j) * slot, hb[j]);
#pragma unroll
                    for (int e = 0; e < 8; e++) acc[j][e >> 2][e & 3] = accn[e >> 2][e & 3];
                }
            }
        }

        /* Reverse steps (out: set before the chunk loop, see there) */
        if constexpr (LATE) lane_sync(); /* the flush has read chunk c + 1's partials */
        else __syncwarp();                   /* the replay's slots, which the warp's other lanes stored */
        const float2 *fgu = fgc + (Lc - 1) * HP;
        const unsigned short *ru = row16(Lc - 1);
        uint32_t hsu = hs32 + 16 * (Lc - 1) * HP * slot; /* step u's first slot, H_{t-1} of head 0 */
        for (int u = Lc - 1; u >= 0; u--, out -= out_step, hsu -= 16 * HP * slot, fgu -= HP, ru -= R.width) {
            const uint32_t *r32 = reinterpret_cast<const uint32_t *>(ru);
            const T1Outer kv0 = t1_outer_at(ru, okv[0]), qd0 = t1_outer_at(ru, oqd[0]);
            float dkd[4], dqd[4]; /* summed over the heads */
            uint2 kw;             /* the tile's rows of k, every head's */
#pragma unroll
            for (int j = 0; j < HP; j++) {
                uint32_t hp[4], hc[4]; /* H_{t-1} and H_t, packed */
                t1_slot_load<false>(hp, hsu + 16 * j * slot);
                t1_slot_load<false>(hc, hsu + 16 * (HP + j) * slot);
                const float2 fg = fgu[j];
                /* Z_t, exactly as the forward computed it */
                float z[8];
                {
                    float acc[2][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}};
                    t1_outer(acc, t1_outer_head(kv0, ru, okv[j], j));
                    t1_tanh(z, hp, acc, bw[j]);
                }
                /* D = q dyᵀ + G (G clipped first with CLIP 1; D clipped after with CLIP 2) */
                float Dm[2][4];
#pragma unroll
                for (int e = 0; e < 8; e++) Dm[e >> 2][e & 3] = CLIP == 1 ? fminf(fmaxf(G[j][e], -cl), cl) : G[j][e];
                t1_outer(Dm, t1_outer_head(qd0, ru, oqd[j], j));
                float D[8], dA[8], dfp = 0.0f;
#pragma unroll
                for (int e = 0; e < 8; e++) {
                    float Dv = Dm[e >> 2][e & 3];
                    if (CLIP == 2) Dv = fminf(fmaxf(Dv, -cl), cl);
                    D[e] = Dv;
                    dA[e] = (fg.y * Dv) * fmaf(-z[e], z[e], 1.0f);
                    dfp = fmaf(Dv, t1_unpack(hp, e) - z[e], dfp);
                }
                /* G = f D + dA Wᵀ */
                uint32_t adb[4];
                pack_state(dA, adb);
                {
                    float acc[2][4] = {{fg.x * D[0], fg.x * D[1], fg.x * D[2], fg.x * D[3]},
                                       {fg.x * D[4], fg.x * D[5], fg.x * D[6], fg.x * D[7]}};
                    mma_bf16(acc[0], adb, bwt[j][0][0], bwt[j][0][1]);
                    mma_bf16(acc[1], adb, bwt[j][1][0], bwt[j][1][1]);
#pragma unroll
                    for (int e = 0; e < 8; e++) G[j][e] = acc[e >> 2][e & 3];
                }
                /* dWᵀ += dAᵀ H_{t-1} (A = dAᵀ, which dv takes too; B = H_{t-1}: transposed 8×8 blocks).
                 * Accumulating dWᵀ rather than dW lets both products take dAᵀ in one register order
                 * (v8: four moves per step fewer); v16_finish_backward transposes it once. */
                const uint32_t at[4] = {movmatrix_trans(adb[0]), movmatrix_trans(adb[2]), movmatrix_trans(adb[1]), movmatrix_trans(adb[3])};
                uint32_t hh[4];
                t1_slot_load<true>(hh, hsu + 16 * j * slot);
                mma_bf16(dW[j][0], at, hh[0], hh[1]);
                mma_bf16(dW[j][1], at, hh[2], hh[3]);
                /* dk += dA v, dq += H_t dy (B = the vector in every column: every lane gets rows g, g+8),
                 * dv = dAᵀ k over this tile's rows (k is zero past K in the staged row) */
                const uint2 vw = t1_words16(r32 + R.v_of(j) / 2, t4), dyw = t1_words16(r32 + R.dy_of(j) / 2, t4);
                if (j == 0) kw = make_uint2(r32[8 * w + t4], r32[8 * w + 4 + t4]);
                float dvd[4] = {0, 0, 0, 0};
                if (j == 0) /* zeroed here, not at the step's start: that kept them live over the step
                             * (the HP = 1 reverse step went from 133 to 150 instructions in the SASS) */
#pragma unroll
                    for (int e = 0; e < 4; e++) dkd[e] = dqd[e] = 0.0f;
                mma_bf16(dkd, adb, vw.x, vw.y);
                mma_bf16(dqd, hc, dyw.x, dyw.y);
                mma_bf16(dvd, at, kw.x, kw.y);
                /* df: the quad's sum covers rows g, g+8 of all 16 columns */
                dfp += __shfl_xor_sync(0xffffffffu, dfp, 1);
                dfp += __shfl_xor_sync(0xffffffffu, dfp, 2);
                if (j < HP - 1) { /* head j's dv and df; the sums over the heads wait for the last */
                    float *oj = out - jback * (HP - 1 - j);
                    if (SLOT_PARTS) {
                        if (t4 >= 2) t1_store_bits(oj, t4 == 2 ? dvd[0] : dfp, dvd[2]);
                    } else {
                        if (t4 >= 2) oj[0] = t4 == 2 ? dvd[0] : dfp;
                        if (t4 == 2) oj[8] = dvd[2];
                    }
                } else {
                    const float v0 = t4 == 0 ? dkd[0] : t4 == 1 ? dqd[0] : t4 == 2 ? dvd[0] : dfp;
                    const float v8 = t4 == 0 ? dkd[2] : t4 == 1 ? dqd[2] : dvd[2];
                    if (SLOT_PARTS) {
                        if (st0) t1_store_bits(out, v0, v8);
                    } else {
                        if (st0) out[0] = v0;
                        if (st8) out[8] = v8;
                    }
                }
            }
        }
        /* out walked back over the chunk: the global partials' lanes now point at chunk c - 1's last
         * step, the others back to their buffer's step C - 1 (chunk c - 1 is a whole one) */
        if (t4 >= 2) out += (int64_t)C * out_step;
    }
    cp_async_wait<0>();
    lane_sync();
    if (nchunks > 0) flush(0);
#pragma unroll
    for (int j = 0; j < HP; j++) /* its first barrier orders the previous head's reads of smraw before its writes;
                                  * one lane per block passes blockDim.x, equal to nthr there, as before v21
                                  * (nthr changed the one-head kernels' code) */
        v16_finish_backward(G[j], dW[j], dh0 ? dh0 + (size_t)(lane0 + j) * K * 16 : (bf16 *)nullptr, reinterpret_cast<float *>(smraw),
                            go.dW + (size_t)(lane0 + j) * 256, K, MT, true, tid,
                            GROUPS ? nthr : (int)blockDim.x, lane_sync);
}

#endif
