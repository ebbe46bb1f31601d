/*
 * The general path: any K and V, plain fp32 arithmetic, one thread block per lane (sequence b,
 * state head n). It is the simple, obviously-correct version the fast path is checked against in
 * spirit (both are checked against the reference), and the path every shape the fast path does
 * not cover takes.
 *
 * The state H (K×V) and a scratch matrix of the same size live in shared memory when they fit, else
 * in a per-lane slice of a global workspace (`big`); W (V×V) and the token's vectors always in
 * shared memory. Threads stride over the K·V elements; every sum is a sequential loop in a fixed
 * order, so results do not depend on timing.
 *
 * Backward: a first forward pass (fwd_general with ckpt != NULL) stores the state at the start of
 * every chunk of C steps; the backward kernel then walks the chunks from last to first, recomputes
 * the chunk's states H_t and Z_t into its workspace, and runs the reverse steps of SPEC §1.1 over
 * them. Per-state-head gradients go to fp32 partial buffers; reduce_groups/reduce_dW sum them
 * over shared heads (and dW over sequences) in a fixed order afterwards.
 */
#ifndef M2RNN_CUDA_GENERAL_CUH
#define M2RNN_CUDA_GENERAL_CUH

#include "common.cuh"

/* Shared-memory floats the general kernels need besides the big per-lane matrices. */
static inline size_t general_small_floats(int K, int V, int threads)
{
    return (size_t)(2 * K + 2 * V + 1) + (size_t)V * V + (size_t)threads;
}

/* Load the token's vectors into shared memory (converted to fp32). */
template <typename T>
__device__ __forceinline__ void general_load_token(const RecDims &d, const RecIn<T> &in, int64_t tok, int n, float *ks,
                                                   float *qs, float *vs, float *fs)
{
    const int K = d.K, V = d.V;
    const T *kp = in.k + (tok * d.Nk + n / d.gk) * K;
    const T *qp = in.q + (tok * d.Nq + n / d.gq) * K;
    const T *vp = in.v + (tok * d.Nv + n / d.gv) * V;
    for (int i = threadIdx.x; i < K; i += blockDim.x) {
        ks[i] = to_f(kp[i]);
        if (qs) qs[i] = to_f(qp[i]);
    }
    for (int j = threadIdx.x; j < V; j += blockDim.x) vs[j] = to_f(vp[j]);
    if (threadIdx.x == 0) fs[0] = to_f(in.f[tok * d.Nf + n / d.gf]);
}

/* One forward step on the whole block: A = H W + k vᵀ into Zout (tanh applied), H updated in place.
 * Zout may be the scratch matrix. */
__device__ __forceinline__ void general_step(int K, int V, const float *Ws, const float *ks, const float *vs, float f,
                                             float *H, float *Zout, float *Hout)
{
    const int KV = K * V;
    for (int e = threadIdx.x; e < KV; e += blockDim.x) {
        int i = e / V, j = e - i * V;
        float a = ks[i] * vs[j];
        const float *hrow = H + i * V;
        for (int l = 0; l < V; l++) a = fmaf(hrow[l], Ws[l * V + j], a);
        Zout[e] = tanh_accurate(a);
    }
    __syncthreads();
    for (int e = threadIdx.x; e < KV; e += blockDim.x) {
        float z = Zout[e];
        Hout[e] = z + f * (H[e] - z); /* f H + (1-f) Z */
    }
    __syncthreads();
}

/* Forward. y may be NULL (checkpoint pass). ckpt: if not NULL, the state before step t is stored at
 * ckpt[(lane*nck + t/C)*K*V] for every t % C == 0. */
template <typename T>
__global__ void fwd_general(RecDims d, RecIn<T> in, T *y, T *ht, float *ckpt, int C, int nck, float *big)
{
    extern __shared__ float sm[];
    const int K = d.K, V = d.V, KV = K * V, N = d.N;
    const int lane = blockIdx.x, b = lane / N, n = lane % N;
    float *ks = sm, *qs = ks + K, *vs = qs + K, *fs = vs + V, *Ws = fs + V + 1;
    float *H, *A;
    if (big) {
        H = big + (size_t)lane * 2 * KV;
        A = H + KV;
    } else {
        H = Ws + V * V + blockDim.x;
        A = H + KV;
    }
    const T *Wn = in.W + (size_t)(n / d.gw) * V * V;
    for (int e = threadIdx.x; e < V * V; e += blockDim.x) Ws[e] = to_f(Wn[e]);
    for (int e = threadIdx.x; e < KV; e += blockDim.x) H[e] = in.h0 ? to_f(in.h0[(size_t)lane * KV + e]) : 0.0f;
    int64_t start, end;
    seq_range(d, in.cu, b, start, end);
    __syncthreads();

    for (int64_t tok = start; tok < end; tok++) {
        int64_t t = tok - start;
        if (ckpt && t % C == 0) {
            float *dst = ckpt + ((size_t)lane * nck + t / C) * KV;
            for (int e = threadIdx.x; e < KV; e += blockDim.x) dst[e] = H[e];
        }
        general_load_token(d, in, tok, n, ks, y ? qs : (float *)0, vs, fs);
        __syncthreads();
        general_step(K, V, Ws, ks, vs, fs[0], H, A, H);
        if (y) {
            for (int j = threadIdx.x; j < V; j += blockDim.x) {
                float acc = 0.0f;
                for (int i = 0; i < K; i++) acc = fmaf(qs[i], H[i * V + j], acc);
                y[(tok * N + n) * V + j] = from_f<T>(acc);
            }
        }
        __syncthreads(); /* before the next token overwrites ks/qs/vs */
    }
    if (ht)
        for (int e = threadIdx.x; e < KV; e += blockDim.x) ht[(size_t)lane * KV + e] = from_f<T>(H[e]);
}

__device__ __forceinline__ float clampf(float x, float c) { return fminf(fmaxf(x, -c), c); }

/* Backward over the chunks of C steps, from the checkpoints fwd_general stored.
 * big: per lane (C+1)·KV (states) + C·KV (Z) + 3·KV (G, D, dA) + V·V (dW) floats. */
template <typename T>
__global__ void bwd_general(RecDims d, RecIn<T> in, const T *dy, const T *dht, int clip_mode, float clip, T *dh0,
                            GradOut go, const float *ckpt, int C, int nck, float *big, size_t big_per_lane)
{
    extern __shared__ float sm[];
    const int K = d.K, V = d.V, KV = K * V, N = d.N;
    const int lane = blockIdx.x, b = lane / N, n = lane % N;
    float *ks = sm, *qs = ks + K, *vs = qs + K, *dys = vs + V, *fs = dys + V, *Ws = fs + 1, *red = Ws + V * V;
    float *Hs = big + (size_t)lane * big_per_lane; /* H_{t0-1} .. H_{t0+C-1} */
    float *Zs = Hs + (size_t)(C + 1) * KV;
    float *G = Zs + (size_t)C * KV, *D = G + KV, *dA = D + KV, *dW = dA + KV;

    const T *Wn = in.W + (size_t)(n / d.gw) * V * V;
    for (int e = threadIdx.x; e < V * V; e += blockDim.x) {
        Ws[e] = to_f(Wn[e]);
        dW[e] = 0.0f;
    }
    for (int e = threadIdx.x; e < KV; e += blockDim.x) G[e] = dht ? to_f(dht[(size_t)lane * KV + e]) : 0.0f;
    int64_t start, end;
    seq_range(d, in.cu, b, start, end);
    const int64_t L = end - start;
    const int nchunks = (int)((L + C - 1) / C);
    const float c = fabsf(clip);
    __syncthreads();

    for (int ch = nchunks - 1; ch >= 0; ch--) {
        const int64_t t0 = (int64_t)ch * C;
        const int Lc = (int)(L - t0 < C ? L - t0 : C);
        /* Recompute the chunk: Hs[u+1] = step(Hs[u]), Zs[u] = tanh(A). */
        const float *src = ckpt + ((size_t)lane * nck + ch) * KV;
        for (int e = threadIdx.x; e < KV; e += blockDim.x) Hs[e] = src[e];
        __syncthreads();
        for (int u = 0; u < Lc; u++) {
            general_load_token(d, in, start + t0 + u, n, ks, (float *)0, vs, fs);
            __syncthreads();
            general_step(K, V, Ws, ks, vs, fs[0], Hs + (size_t)u * KV, Zs + (size_t)u * KV, Hs + (size_t)(u + 1) * KV);
        }
        /* Reverse steps. */
        for (int u = Lc - 1; u >= 0; u--) {
            const int64_t tok = start + t0 + u;
            general_load_token(d, in, tok, n, ks, qs, vs, fs);
            for (int j = threadIdx.x; j < V; j += blockDim.x) dys[j] = to_f(dy[(tok * N + n) * V + j]);
            __syncthreads();
            const float f = fs[0];
            const float *Hp = Hs + (size_t)u * KV, *Hc = Hs + (size_t)(u + 1) * KV, *Z = Zs + (size_t)u * KV;
            float dfp = 0.0f;
            for (int e = threadIdx.x; e < KV; e += blockDim.x) {
                int i = e / V, j = e - i * V;
                float g = G[e];
                if (clip_mode == 1) g = clampf(g, c);
                float Dv = fmaf(qs[i], dys[j], g);
                if (clip_mode == 2) Dv = clampf(Dv, c);
                float z = Z[e];
                D[e] = Dv;
                dA[e] = (1.0f - f) * Dv * (1.0f - z * z);
                dfp = fmaf(Dv, Hp[e] - z, dfp);
            }
            red[threadIdx.x] = dfp;
            __syncthreads();
            for (int e = threadIdx.x; e < KV; e += blockDim.x) { /* G = f D + dA Wᵀ */
                int i = e / V, j = e - i * V;
                float acc = f * D[e];
                for (int l = 0; l < V; l++) acc = fmaf(dA[i * V + l], Ws[j * V + l], acc);
                G[e] = acc;
            }
            for (int e = threadIdx.x; e < V * V; e += blockDim.x) { /* dW += H_{t-1}ᵀ dA */
                int l = e / V, j = e - l * V;
                float acc = dW[e];
                for (int i = 0; i < K; i++) acc = fmaf(Hp[i * V + l], dA[i * V + j], acc);
                dW[e] = acc;
            }
            for (int i = threadIdx.x; i < K; i += blockDim.x) { /* dk = dA v, dq = H_t dy */
                float ak = 0.0f, aq = 0.0f;
                for (int j = 0; j < V; j++) {
                    ak = fmaf(dA[i * V + j], vs[j], ak);
                    aq = fmaf(Hc[i * V + j], dys[j], aq);
                }
                go.dk[(tok * N + n) * K + i] = ak;
                go.dq[(tok * N + n) * K + i] = aq;
            }
            for (int j = threadIdx.x; j < V; j += blockDim.x) { /* dv = dAᵀ k */
                float acc = 0.0f;
                for (int i = 0; i < K; i++) acc = fmaf(dA[i * V + j], ks[i], acc);
                go.dv[(tok * N + n) * V + j] = acc;
            }
            if (threadIdx.x == 0) {
                float acc = 0.0f;
                for (int r = 0; r < (int)blockDim.x; r++) acc += red[r];
                go.df[tok * N + n] = acc;
            }
            __syncthreads();
        }
    }
    if (dh0)
        for (int e = threadIdx.x; e < KV; e += blockDim.x) dh0[(size_t)lane * KV + e] = from_f<T>(G[e]);
    for (int e = threadIdx.x; e < V * V; e += blockDim.x) go.dW[(size_t)lane * V * V + e] = dW[e];
}

/* ---- reductions over shared heads (fixed order) ------------------------------------------ */

/* out[r, h, e] = Σ_{g<group} part[r, h·group + g, at(e)], rounded once to T: the partials of a head
 * are pdim >= dim floats apart, element e of a head's at at(e). */
template <typename T, typename At>
__device__ __forceinline__ void reduce_groups_at(const float *part, int64_t rows, int N, int group, int dim, int pdim, T *out, At at)
{
    const int src_heads = N / group;
    const int64_t total = rows * src_heads * dim;
    for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total; idx += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = idx / ((int64_t)src_heads * dim);
        int rem = (int)(idx - r * src_heads * dim);
        int h = rem / dim, e = rem - h * dim;
        const float *p = part + ((r * N) + (int64_t)h * group) * pdim + at(e);
        /* The loads of 16 partials are issued before their sum (in the same order, g = 0, 1, ...):
         * left to itself, ptxas interleaved the loads and adds of reduce_tile_pairs, two loads in
         * flight per thread, and it ran 15-25 % under reduce_groups' bandwidth (NOTES.md v13). */
        float acc = 0.0f;
        int g = 0;
        for (; g + 16 <= group; g += 16) {
            float x[16];
#pragma unroll
            for (int i = 0; i < 16; i++) x[i] = p[(int64_t)(g + i) * pdim];
#pragma unroll
            for (int i = 0; i < 16; i++) acc += x[i];
        }
        for (; g < group; g++) acc += p[(int64_t)g * pdim];
        out[idx] = from_f<T>(acc);
    }
}

/* out[r, h, e] = Σ_{g<group} part[r, h·group + g, e], rounded once to T. */
template <typename T>
__global__ void reduce_groups(const float *part, int64_t rows, int N, int group, int dim, T *out)
{
    reduce_groups_at(part, rows, N, group, dim, dim, out, [](int e) { return e; });
}

/* reduce_groups for dim % 4 == 0 (and 16-byte aligned partials): four consecutive outputs per thread,
 * each partial load 16 bytes, so a warp's load moves 512 bytes (v18, NOTES.md). Every output is the
 * same sum in the same order g = 0, 1, ..., so the results are reduce_groups' to the bit. */
template <typename T>
__global__ void reduce_groups4(const float *part, int64_t rows, int N, int group, int dim, T *out)
{
    const int src_heads = N / group, d4 = dim / 4;
    const int64_t total = rows * src_heads * d4;
    for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total; idx += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = idx / ((int64_t)src_heads * d4);
        const int rem = (int)(idx - r * src_heads * d4), h = rem / d4, e4 = rem - h * d4;
        const float4 *p = reinterpret_cast<const float4 *>(part + ((r * N) + (int64_t)h * group) * dim) + e4;
        float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        int g = 0;
        for (; g + 8 <= group; g += 8) { /* the loads first, then the adds (see reduce_groups_at) */
            float4 x[8];
#pragma unroll
            for (int i = 0; i < 8; i++) x[i] = p[(int64_t)(g + i) * d4];
#pragma unroll
            for (int i = 0; i < 8; i++) {
                acc.x += x[i].x;
                acc.y += x[i].y;
                acc.z += x[i].z;
                acc.w += x[i].w;
            }
        }
        for (; g < group; g++) {
            const float4 x = p[(int64_t)g * d4];
            acc.x += x.x;
            acc.y += x.y;
            acc.z += x.z;
            acc.w += x.w;
        }
        T *o = out + idx * 4;
        o[0] = from_f<T>(acc.x);
        o[1] = from_f<T>(acc.y);
        o[2] = from_f<T>(acc.z);
        o[3] = from_f<T>(acc.w);
    }
}

/* Where row e of a K-vector sits among bwd_t1's dq / dk partials of one head when it runs two heads
 * per block: each 16-row tile's rows in the order 0, 8, 1, 9, ..., 7, 15 (a lane's two rows side by
 * side: one 8-byte store, v12). */
__host__ __device__ inline int tile_pair_index(int e) { return (e & ~15) | ((e & 7) << 1) | ((e >> 3) & 1); }

/* reduce_groups for those partials: a head's pdim >= dim floats, element e at tile_pair_index(e). */
template <typename T>
__global__ void reduce_tile_pairs(const float *part, int64_t rows, int N, int group, int dim, int pdim, T *out)
{
    reduce_groups_at(part, rows, N, group, dim, pdim, out, tile_pair_index);
}

/* dst row r = src row r, cut or padded with zeros from src_w to dst_w 16-bit elements (the K = 64
 * kernels on padded copies of q, k and the states: pads_k in backend.cu). */
__global__ void copy_rows_padded(const uint16_t *src, int64_t src_w, uint16_t *dst, int64_t dst_w, int64_t rows)
{
    const int64_t total = rows * dst_w;
    for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total; idx += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = idx / dst_w, e = idx - r * dst_w;
        dst[idx] = e < src_w ? src[r * src_w + e] : (uint16_t)0;
    }
}

/* dW[w] = Σ_b Σ_{g<gw} part[b, w·gw + g] (V×V each), the reference's order. */
template <typename T>
__global__ void reduce_dW(const float *part, int B, int N, int Nw, int gw, int VV, T *out)
{
    const int64_t total = (int64_t)Nw * VV;
    for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total; idx += (int64_t)gridDim.x * blockDim.x) {
        int w = (int)(idx / VV), e = (int)(idx - (int64_t)w * VV);
        float acc = 0.0f;
        for (int b = 0; b < B; b++)
            for (int g = 0; g < gw; g++) acc += part[((size_t)b * N + (size_t)w * gw + g) * VV + e];
        out[idx] = from_f<T>(acc);
    }
}

#endif
