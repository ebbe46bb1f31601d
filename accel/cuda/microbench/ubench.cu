/*
 * Microbenchmarks behind NOTES.md's floors: special-function (tanh) throughput in its f32, f16x2
 * and bf16x2 forms, the latency and throughput of one bf16 mma.sync m16n8k16, and the cost of one
 * bare recurrence step (H <- f H + (1-f) tanh(H W + k vᵀ), no memory traffic) at the 7B layer's
 * occupancy, the same step with part of the tanh on the FMA pipe (tanh_fma, NOTES.md v15), a
 * probe of whether a full SM's step time is set per SM or per scheduler (v15), and v16's studies:
 * the F2FP pack's rate, tf32 products from the fp32 state, the readout's transposes, and k vᵀ as a
 * tensor-core product in a step with its loads (step_var, step_loads).
 * Cycles come from clock64() inside the kernels (one SM's clock), so the results do not depend on
 * the clock the GPU happens to run at.
 *
 * Cycles per step are clock64 means over the blocks, except in `ubench wall`, which times three of
 * the step kernels by the wall clock too (wall_check: the means understate a launch by 1.4-1.56x,
 * NOTES.md v20), and `ubench lockstep`, which times the step with its loads as one block per SM
 * against several, with and without barriers (step_lock, NOTES.md v21), and `ubench balance`, which
 * measures the SM clock under the step and under tensor-core products of any density (clock64
 * against %globaltimer: 1.8 GHz, not 1.98) and times tanh's rate, tiles of 16 and 8 rows mixed,
 * tiles per warp, tanh on the FMA pipe and lanes out of phase, one block per SM (v23), and `ubench
 * mixed`, the 410M layer's best balance of 16- and 8-row tiles with every warp inlined, and 8-row
 * tiles with the state transposed (v25).
 *
 * Build: nvcc -O3 -std=c++17 -arch=sm_90 -o ubench ubench.cu
 * Run: ./ubench, ./ubench wall, ./ubench lockstep, ./ubench balance, ./ubench mixed or ./ubench clock
 */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define ITERS 4096

__device__ __forceinline__ float tanh_f32(float x) { float y; asm volatile("tanh.approx.f32 %0, %1;" : "=f"(y) : "f"(x)); return y; }
__device__ __forceinline__ uint32_t tanh_f16x2(uint32_t x) { uint32_t y; asm volatile("tanh.approx.f16x2 %0, %1;" : "=r"(y) : "r"(x)); return y; }
__device__ __forceinline__ uint32_t tanh_bf16x2(uint32_t x) { uint32_t y; asm volatile("tanh.approx.bf16x2 %0, %1;" : "=r"(y) : "r"(x)); return y; }
__device__ __forceinline__ float ex2_f32(float x) { float y; asm volatile("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x)); return y; }

/* tanh on the FMA pipe, no MUFU: x P(x^2) / Q(x^2) on x clamped to [-5.2, 5.2] (NaN kept), the
 * reciprocal from an integer first guess and two Newton steps. Max relative error 7.1e-5 (2^-13.8)
 * over all floats, checked exhaustively on the CPU with the same fmaf sequence. 14 instructions. */
__device__ __forceinline__ float tanh_fma(float x)
{
    asm("min.NaN.f32 %0, %0, 0f40A66666;\n\tmax.NaN.f32 %0, %0, 0fC0A66666;" : "+f"(x));
    const float s = x * x;
    const float p = fmaf(fmaf(0.000651586058924f, s, 0.101795513119f), s, 0.999935523076f);
    const float q = fmaf(fmaf(0.0126301715239f, s, 0.434745066896f), s, 1.0f);
    float r = __int_as_float(0x7EF311C3 - __float_as_int(q));
    r = fmaf(r, fmaf(-q, r, 1.0f), r);
    const float y = x * p * r;
    return fmaf(y, fmaf(-q, r, 1.0f), y);
}

__device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ uint32_t pack(float lo, float hi)
{
    __nv_bfloat162 p = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&p);
}

/* 8 independent chains of one op per thread; cyc[block] = cycles of the loop, cyc[grid + block]
 * its %globaltimer nanoseconds (what clock64 ticks at: sfu_wall). */
template <int OP>
__global__ void sfu(float *out, long long *cyc)
{
    float x[8];
    uint32_t u[8];
    for (int i = 0; i < 8; i++) { x[i] = 0.001f * (threadIdx.x + i); u[i] = 0x3c003c00u + threadIdx.x + i; }
    __syncthreads();
    unsigned long long g0, g1;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(g0));
    long long t0 = clock64();
    for (int it = 0; it < ITERS; it++) {
#pragma unroll
        for (int i = 0; i < 8; i++) {
            if (OP == 0) x[i] = tanh_f32(x[i]);
            if (OP == 1) u[i] = tanh_f16x2(u[i]);
            if (OP == 2) u[i] = tanh_bf16x2(u[i]);
            if (OP == 3) x[i] = ex2_f32(x[i]);
        }
    }
    __syncthreads();
    long long t1 = clock64();
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(g1));
    float s = 0;
    for (int i = 0; i < 8; i++) s += x[i] + __uint_as_float(u[i]);
    if (s == 12345.f) out[0] = s;
    if (threadIdx.x == 0) {
        cyc[blockIdx.x] = t1 - t0;
        cyc[gridDim.x + blockIdx.x] = (long long)(g1 - g0);
    }
}

/* CH independent accumulator chains of mma per warp; cyc[block] = cycles of the loop, cyc[grid +
 * block] its %globaltimer nanoseconds. */
template <int CH>
__global__ void mmabench(float *out, long long *cyc)
{
    uint32_t a[4] = {0x3f803f80u + threadIdx.x, 0x3f803f80u, 0x3f803f80u, 0x3f803f80u};
    float d[CH][4] = {};
    __syncthreads();
    unsigned long long g0, g1;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(g0));
    long long t0 = clock64();
    for (int it = 0; it < ITERS; it++) {
#pragma unroll
        for (int c = 0; c < CH; c++) mma(d[c], a, 0x3f803f80u, 0x3f803f80u);
    }
    __syncthreads();
    long long t1 = clock64();
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(g1));
    float s = 0;
    for (int c = 0; c < CH; c++) s += d[c][0] + d[c][1] + d[c][2] + d[c][3];
    if (s == 12345.f) out[0] = s;
    if (threadIdx.x == 0) {
        cyc[blockIdx.x] = t1 - t0;
        cyc[gridDim.x + blockIdx.x] = (long long)(g1 - g0);
    }
}

/* The bare steps' starting values: W's fragments, TPW tiles of state and their packed forms. */
template <int TPW>
__device__ __forceinline__ void step_init(int l, uint32_t (&bw)[2][2], float (&h)[TPW][8], uint32_t (&hb)[TPW][4])
{
    for (int i = 0; i < 2; i++) for (int j = 0; j < 2; j++) bw[i][j] = pack(0.5f, (l & 3) == 0 ? 0.5f : 0.0f);
    for (int t = 0; t < TPW; t++) { for (int e = 0; e < 8; e++) h[t][e] = 0.01f * (l + e + t); for (int e = 0; e < 4; e++) hb[t][e] = pack(h[t][2 * e], h[t][2 * e + 1]); }
}

/* One tile's pre-activation: acc = kr vc (the k vᵀ stand-in), then acc += H W (hb: H packed). */
__device__ __forceinline__ void step_product(float (&acc)[2][4], float kr, const float (&vc)[4], const uint32_t (&hb)[4],
                                             const uint32_t (&bw)[2][2])
{
    for (int n = 0; n < 2; n++) for (int e = 0; e < 4; e++) acc[n][e] = kr * vc[(n * 2 + (e & 1))];
    mma(acc[0], hb, bw[0][0], bw[0][1]);
    mma(acc[1], hb, bw[1][0], bw[1][1]);
}

/* The end of a bare-step kernel: keep h live, record the block's cycles; with PROBE, each warp's
 * (SM, warp slot, cycles) at cyc[3 w .. 3 w + 2] instead, w the warp's index in the grid. */
template <int TPW, bool PROBE = false>
__device__ __forceinline__ void step_finish(const float (&h)[TPW][8], long long t0, float *out, long long *cyc)
{
    long long t1 = clock64();
    float s = 0;
    for (int t = 0; t < TPW; t++) for (int e = 0; e < 8; e++) s += h[t][e];
    if (s == 12345.f) out[0] = s;
    if (PROBE) {
        unsigned sm, slot;
        asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
        asm volatile("mov.u32 %0, %%warpid;" : "=r"(slot));
        const long long w = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
        if ((threadIdx.x & 31) == 0) {
            cyc[3 * w] = sm;
            cyc[3 * w + 1] = slot;
            cyc[3 * w + 2] = t1 - t0;
        }
    } else if (threadIdx.x == 0) {
        cyc[blockIdx.x] = t1 - t0;
    }
}

/* Bare recurrence: TPW 16x16 tiles per warp, no loads (k, v, f vary by a cheap add). TM 0: tanh.f32
 * per element (the last NPOLY of a thread's 8 elements on the FMA pipe, tanh_fma); 1: tanh.bf16x2 per
 * pair with the pair unpacked to fp32 for the update. */
template <int TPW, int TM, int NPOLY = 0, bool PROBE = false>
__global__ void step(float *out, long long *cyc)
{
    const int l = threadIdx.x & 31;
    uint32_t bw[2][2];
    float h[TPW][8];
    uint32_t hb[TPW][4];
    step_init<TPW>(l, bw, h, hb);
    float kr = 0.1f * l, vc[4] = {0.1f, 0.2f, 0.3f, 0.4f}, f = 0.9f;
    __syncthreads();
    long long t0 = clock64();
    for (int it = 0; it < ITERS; it++) {
        kr += 1e-7f;
        f += 1e-9f;
        const float g1 = 1.0f - f;
#pragma unroll
        for (int t = 0; t < TPW; t++) {
            float fh[8];
#pragma unroll
            for (int e = 0; e < 8; e++) fh[e] = f * h[t][e];
            float acc[2][4];
            step_product(acc, kr, vc, hb[t], bw);
            if (TM == 0) {
#pragma unroll
                for (int e = 0; e < 8; e++)
                    h[t][e] = fmaf(g1, e >= 8 - NPOLY ? tanh_fma(acc[e >> 2][e & 3]) : tanh_f32(acc[e >> 2][e & 3]), fh[e]);
            } else {
#pragma unroll
                for (int e = 0; e < 8; e += 2) {
                    uint32_t z = tanh_bf16x2(pack(acc[e >> 2][e & 3], acc[e >> 2][(e & 3) + 1]));
                    h[t][e] = fmaf(g1, __uint_as_float(z << 16), fh[e]);
                    h[t][e + 1] = fmaf(g1, __uint_as_float(z & 0xffff0000u), fh[e + 1]);
                }
            }
#pragma unroll
            for (int e = 0; e < 4; e++) hb[t][e] = pack(h[t][2 * e], h[t][2 * e + 1]);
        }
    }
    __syncthreads();
    step_finish<TPW, PROBE>(h, t0, out, cyc);
}

/* Bare recurrence, two tiles per warp written half a step apart (NOTES.md v7, "what would come
 * next"): tile B's product for step it is issued before tile A's tanh of step it, and A's product
 * for step it + 1 before B's tanh, so that one tile's tanh burst runs while the other's product is
 * in flight. tanh.f32. */
__global__ void step_staggered(float *out, long long *cyc)
{
    const int l = threadIdx.x & 31;
    uint32_t bw[2][2];
    float h[2][8];
    uint32_t hb[2][4];
    step_init<2>(l, bw, h, hb);
    float kr = 0.1f * l, vc[4] = {0.1f, 0.2f, 0.3f, 0.4f}, f = 0.9f;
    float accA[2][4];
    step_product(accA, kr, vc, hb[0], bw);
    __syncthreads();
    long long t0 = clock64();
    for (int it = 0; it < ITERS; it++) {
        kr += 1e-7f;
        f += 1e-9f;
        const float g1 = 1.0f - f;
        float accB[2][4];
        step_product(accB, kr, vc, hb[1], bw);
#pragma unroll
        for (int e = 0; e < 8; e++) h[0][e] = fmaf(g1, tanh_f32(accA[e >> 2][e & 3]), f * h[0][e]);
#pragma unroll
        for (int e = 0; e < 4; e++) hb[0][e] = pack(h[0][2 * e], h[0][2 * e + 1]);
        step_product(accA, kr + 1e-7f, vc, hb[0], bw);
#pragma unroll
        for (int e = 0; e < 8; e++) h[1][e] = fmaf(g1, tanh_f32(accB[e >> 2][e & 3]), f * h[1][e]);
#pragma unroll
        for (int e = 0; e < 4; e++) hb[1][e] = pack(h[1][2 * e], h[1][2 * e + 1]);
    }
    __syncthreads();
    step_finish<2>(h, t0, out, cyc);
}

/* tf32 m16n8k8, A and B fp32 registers passed without a conversion (the timing study needs the
 * instruction stream only; its values are not checked). */
__device__ __forceinline__ void mma_tf32(float (&d)[4], float a0, float a1, float a2, float a3, float b0, float b1)
{
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(__float_as_uint(a0)), "r"(__float_as_uint(a1)), "r"(__float_as_uint(a2)), "r"(__float_as_uint(a3)),
                   "r"(__float_as_uint(b0)), "r"(__float_as_uint(b1)));
}
__device__ __forceinline__ uint32_t movm(uint32_t x)
{
    uint32_t y;
    asm volatile("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;" : "=r"(y) : "r"(x));
    return y;
}
/* bf16 pair by truncation: the high halves of two fp32 words, one PRMT (ALU). */
__device__ __forceinline__ uint32_t pack_trunc(float lo, float hi) { return __byte_perm(__float_as_uint(lo), __float_as_uint(hi), 0x7632); }

/* One step of the forward's arithmetic in a bare loop, the product and readout variants of the tf32
 * study (NOTES.md v16). MODE 0: bf16 H W from H packed with F2FP (today's kernels), no readout;
 * 1: tf32 H W straight from the fp32 state (4 m16n8k8, columns of H permuted so that the accumulator
 * is the A operand, W's rows with them), no packs, no readout; 2: mode 0 + the readout y = Hᵀq as
 * the forward does it (4 MOVM + 1 MMA on the packed state); 3: mode 1 + the readout from H packed
 * with F2FP for it alone (off the chain); 4: mode 1 + the readout with fp32 FMAs and a shuffle
 * reduce-scatter over the 8 row groups; 5: mode 0 with the packs by truncation (PRMT, ALU). */
template <int MODE>
__global__ void step_var(float *out, long long *cyc)
{
    const int l = threadIdx.x & 31;
    uint32_t bw[2][2];
    float h[1][8];
    uint32_t hb[1][4];
    step_init<1>(l, bw, h, hb);
    float wf[2][2][2]; /* [k block][n half][b0, b1] */
    for (int i = 0; i < 8; i++) wf[i >> 2][(i >> 1) & 1][i & 1] = 0.03f * (i + 1) + 0.001f * l;
    float kr = 0.1f * l, vc[4] = {0.1f, 0.2f, 0.3f, 0.4f}, f = 0.9f, q0 = 0.01f * l, q1 = 0.02f * l;
    const uint32_t qw0 = pack(q0, q1), qw1 = pack(q1, q0);
    float ya[4] = {0, 0, 0, 0};
    const bool b4 = l & 16, b3 = l & 8;
    __syncthreads();
    long long t0 = clock64();
    for (int it = 0; it < ITERS; it++) {
        kr += 1e-7f;
        f += 1e-9f;
        const float g1 = 1.0f - f;
        float fh[8];
#pragma unroll
        for (int e = 0; e < 8; e++) fh[e] = f * h[0][e];
        float acc[2][4];
        if (MODE == 0 || MODE == 2 || MODE == 5) {
            step_product(acc, kr, vc, hb[0], bw);
        } else {
            for (int n = 0; n < 2; n++) for (int e = 0; e < 4; e++) acc[n][e] = kr * vc[(n * 2 + (e & 1))];
#pragma unroll
            for (int n = 0; n < 2; n++) {
                mma_tf32(acc[n], h[0][0], h[0][2], h[0][1], h[0][3], wf[0][n][0], wf[0][n][1]);
                mma_tf32(acc[n], h[0][4], h[0][6], h[0][5], h[0][7], wf[1][n][0], wf[1][n][1]);
            }
        }
#pragma unroll
        for (int e = 0; e < 8; e++) h[0][e] = fmaf(g1, tanh_f32(acc[e >> 2][e & 3]), fh[e]);
        if (MODE == 0 || MODE == 2 || MODE == 3) {
#pragma unroll
            for (int e = 0; e < 4; e++) hb[0][e] = pack(h[0][2 * e], h[0][2 * e + 1]);
        } else if (MODE == 5) {
#pragma unroll
            for (int e = 0; e < 4; e++) hb[0][e] = pack_trunc(h[0][2 * e], h[0][2 * e + 1]);
        }
        if (MODE == 2 || MODE == 3) {
            const uint32_t at[4] = {movm(hb[0][0]), movm(hb[0][2]), movm(hb[0][1]), movm(hb[0][3])};
            mma(ya, at, qw0, qw1);
        } else if (MODE == 4) {
            /* columns (c0, c0+1, c2, c2+1) over the thread's rows g, g + 8, then summed over g */
            float p0 = fmaf(h[0][2], q1, h[0][0] * q0), p1 = fmaf(h[0][3], q1, h[0][1] * q0);
            float p2 = fmaf(h[0][6], q1, h[0][4] * q0), p3 = fmaf(h[0][7], q1, h[0][5] * q0);
            float k0 = b4 ? p2 : p0, k1 = b4 ? p3 : p1;
            const float s0 = b4 ? p0 : p2, s1 = b4 ? p1 : p3;
            k0 += __shfl_xor_sync(0xffffffffu, s0, 16);
            k1 += __shfl_xor_sync(0xffffffffu, s1, 16);
            float kk = b3 ? k1 : k0;
            const float s = b3 ? k0 : k1;
            kk += __shfl_xor_sync(0xffffffffu, s, 8);
            kk += __shfl_xor_sync(0xffffffffu, kk, 4);
            ya[it & 3] += kk;
        }
    }
    __syncthreads();
    h[0][0] += ya[0] + ya[1] + ya[2] + ya[3];
    step_finish<1>(h, t0, out, cyc);
}

/* The barrier of step_loads_body's SYNC: the whole block's, or (NAMED) that of the thread's group of
 * 4 / TPW warps alone (named barrier 1 + group, as a kernel holding several lanes per block has per
 * lane: a lane's four 16-row tiles). */
template <bool NAMED, int TPW = 1>
__device__ __forceinline__ void step_barrier()
{
    constexpr int GROUP = 128 / TPW;
    if (NAMED) asm volatile("bar.sync %0, %1;" ::"r"(1 + (int)(threadIdx.x / GROUP)), "n"(GROUP) : "memory");
    else __syncthreads();
}

/* The forward's step with its per-step loads from shared memory (64 steps, cycled), and the
 * readout of mode 2. KVMMA false: k vᵀ from fp32 multiplies of k's rows (float2) and v's columns
 * (float4), as fwd_t1 does; true: k vᵀ as one m16n8k8 per column half with every lane's words the
 * same for its row group (A: k in all 8 columns as bf16 pairs, B: v / 4 in the even rows, so that
 * the 4 nonzero products of each sum are equal and their sum is exact), loaded as two uint2.
 * RO: the readout's transpose of the packed state. 0: four movmatrix (fwd_t1); 1: two MMAs with the
 * identity as A and the packed state as B (D = I Hᵀ, exact: every sum has one nonzero product), the
 * fp32 result packed again for today's bf16 readout MMA; 2: the same transposing MMAs, then the
 * readout as two tf32 m16n8k8 straight from the fp32 result (q as fp32, one more 16-byte load).
 * SYNC: a step_barrier<NAMED> every SYNC steps (0: none; the lockstep study below).
 * HALF: a tile of 8 rows (the balance study below): rows g + 8 of the MMAs are padding, so the warp
 * takes the tanh and update of rows g only (4 of 8 per thread) and packs zeros for the others.
 * TPW: 16-row tiles per warp (KVMMA, RO 0 only), each with its own load, product, tanh and readout
 * (the readouts summed in one accumulator) and the step's f shared: the balance study's ILP form.
 * NPOLY: the last NPOLY of a thread's 8 elements take tanh_fma (the FMA pipe) instead of MUFU.
 * STAGGER: group j (a lane's warps, one per scheduler) waits j STAGGER cycles before its first step. */
__shared__ float4 kvbuf[64][32]; /* one array for every instance, so that a kernel holding two has 32 KiB */
/* The step's 64 rows of inputs, each warp writing all of them (lane l its column): KVMMA, the bf16
 * words of t1_kv's k and v / 4; else fp32 k and v stand-ins. */
template <bool KVMMA>
__device__ __forceinline__ void kvbuf_fill(int l)
{
    for (int i = l; i < 64 * 32; i += 32) {
        const float x = 0.001f * i;
        kvbuf[i >> 5][i & 31] = KVMMA ? make_float4(__uint_as_float(pack(x, x)), __uint_as_float(pack(x, x)), __uint_as_float(pack(0.25f * x, 0.25f * x)), __uint_as_float(pack(0.25f * x, 0.25f * x)))
                                      : make_float4(x, 2 * x, 3 * x, 4 * x);
    }
    __syncwarp();
}
template <bool KVMMA, int RO = 0, int SYNC = 0, bool NAMED = false, bool HALF = false, int TPW = 1, int NPOLY = 0, int STAGGER = 0>
__device__ __forceinline__ void step_loads_body(float *out, long long *cyc)
{
    static_assert(TPW == 1 || (KVMMA && RO == 0 && !HALF), "tiles per warp: the fwd_t1 step only");
    const int l = threadIdx.x & 31, g = l >> 2, t = l & 3;
    kvbuf_fill<KVMMA>(l);
    uint32_t bw[2][2];
    float h[TPW][8];
    uint32_t hb[TPW][4];
    step_init<TPW>(l, bw, h, hb);
    float f = 0.9f;
    const uint32_t qw0 = pack(0.01f * l, 0.02f * l), qw1 = pack(0.03f, 0.01f * l);
    float ya[4] = {0, 0, 0, 0};
    step_barrier<NAMED, TPW>();
    long long t0 = clock64();
    if (STAGGER > 0)
        while (clock64() - t0 < (long long)(threadIdx.x / (128 / TPW)) * STAGGER) {
        }
    for (int it = 0; it < ITERS; it++) {
        f += 1e-9f;
        const float g1 = 1.0f - f;
#pragma unroll
        for (int tt = 0; tt < TPW; tt++) {
            const float4 x = kvbuf[(it + 11 * tt) & 63][l];
            float fh[8];
#pragma unroll
            for (int e = 0; e < 8; e++) fh[e] = (HALF && (e & 2)) ? 0.0f : f * h[tt][e];
            float acc[2][4];
            if (KVMMA) {
                for (int n = 0; n < 2; n++) for (int e = 0; e < 4; e++) acc[n][e] = 0.0f;
                asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};"
                             : "+f"(acc[0][0]), "+f"(acc[0][1]), "+f"(acc[0][2]), "+f"(acc[0][3])
                             : "r"(__float_as_uint(x.x)), "r"(__float_as_uint(x.y)), "r"(__float_as_uint(x.z)));
                asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};"
                             : "+f"(acc[1][0]), "+f"(acc[1][1]), "+f"(acc[1][2]), "+f"(acc[1][3])
                             : "r"(__float_as_uint(x.x)), "r"(__float_as_uint(x.y)), "r"(__float_as_uint(x.w)));
            } else {
                const float4 v = kvbuf[(it + 7) & 63][l ^ 5];
                const float kk[2] = {x.x, x.y}, vv[4] = {v.x, v.y, v.z, v.w};
                for (int n = 0; n < 2; n++) for (int e = 0; e < 4; e++) acc[n][e] = kk[e >> 1] * vv[2 * n + (e & 1)];
            }
            mma(acc[0], hb[tt], bw[0][0], bw[0][1]);
            mma(acc[1], hb[tt], bw[1][0], bw[1][1]);
#pragma unroll
            for (int e = 0; e < 8; e++)
                if (!HALF || !(e & 2))
                    h[tt][e] = fmaf(g1, e >= 8 - NPOLY ? tanh_fma(acc[e >> 2][e & 3]) : tanh_f32(acc[e >> 2][e & 3]), fh[e]);
            if (RO == 0) {
                const uint32_t at[4] = {movm(hb[tt][0]), movm(hb[tt][2]), movm(hb[tt][1]), movm(hb[tt][3])};
                mma(ya, at, qw0, qw1);
            } else {
                const uint32_t id0 = (g == 2 * t ? 0x3f80u : 0u) | (g == 2 * t + 1 ? 0x3f800000u : 0u);
                const uint32_t ia[4] = {id0, 0u, 0u, id0};
                float d0[4] = {0, 0, 0, 0}, d1[4] = {0, 0, 0, 0};
                mma(d0, ia, hb[tt][0], hb[tt][2]);
                mma(d1, ia, hb[tt][1], hb[tt][3]);
                if (RO == 1) {
                    const uint32_t at[4] = {pack(d0[0], d0[1]), pack(d0[2], d0[3]), pack(d1[0], d1[1]), pack(d1[2], d1[3])};
                    mma(ya, at, qw0, qw1);
                } else {
                    const float4 qf = kvbuf[(it + 13) & 63][l ^ 3];
                    mma_tf32(ya, d0[0], d0[2], d0[1], d0[3], qf.x, qf.y);
                    mma_tf32(ya, d1[0], d1[2], d1[1], d1[3], qf.z, qf.w);
                }
            }
#pragma unroll
            for (int e = 0; e < 4; e++) hb[tt][e] = (HALF && (e & 1)) ? 0u : pack(h[tt][2 * e], h[tt][2 * e + 1]);
        }
        if constexpr (SYNC > 0) if (it % SYNC == SYNC - 1) step_barrier<NAMED, TPW>();
    }
    step_barrier<NAMED, TPW>();
    h[0][0] += ya[0] + ya[1] + ya[2] + ya[3];
    step_finish<TPW>(h, t0, out, cyc);
}
template <bool KVMMA, int RO = 0>
__global__ void step_loads(float *out, long long *cyc) { step_loads_body<KVMMA, RO>(out, cyc); }

/* The lockstep study (NOTES.md v21): step_loads<true> with all of an SM's warps in one block of
 * THREADS, and a barrier every SYNC steps (0: none), so that the warps sharing a scheduler cannot
 * drift apart by more than SYNC steps. Blocks of 4 warps on their own are served unevenly (v20), and
 * the launch lasts as long as the slowest. */
template <int THREADS, int SYNC, bool NAMED = false>
__global__ void __launch_bounds__(THREADS, 1) step_lock(float *out, long long *cyc) { step_loads_body<true, 0, SYNC, NAMED>(out, cyc); }
/* 4-warp blocks with a barrier of the block every SYNC steps (as fwd_t1's chunks have). */
template <int SYNC>
__global__ void step_loads_sync(float *out, long long *cyc) { step_loads_body<true, 0, SYNC>(out, cyc); }
/* The 410M layer's shape on 132 SMs: 132 blocks of 6 groups of 4 warps, of which the blocks past the
 * first 12 run only 5 (their sixth group returns at once), i.e. 672 lanes' worth of warps, with
 * per-group barriers. */
template <int SYNC>
__global__ void __launch_bounds__(768, 1) step_lock_672(float *out, long long *cyc)
{
    if (blockIdx.x >= 12 && threadIdx.x >= 640) return;
    step_loads_body<true, 0, SYNC, true>(out, cyc);
}

/* The balance study (NOTES.md v23). fwd_t1 puts the 410M layer's 672 lanes of four 16-row tiles six
 * to an SM (24 warps: six on each scheduler of 112 SMs); even spread over all 528 schedulers, 2688
 * tiles would still leave six on some. Tiles of 8 rows for the lanes past 660 (5 × 132) would leave
 * at most five and a half: five 16-row tiles and one of 8 rows, the case measured here (it needs
 * those lanes split across SMs and their y summed across SMs, which fwd_t1 does not do). One block
 * per SM of FULL groups of 4 warps with 16-row tiles and HALF groups with 8-row tiles (one warp of
 * each group per scheduler), per-group barriers every SYNC steps, as fwd_t1's lane groups. Each kind
 * of warp runs one non-inlined function, the same code in every configuration (inlined, the dead
 * 8-row path changed the 16-row path's code: 512 against 501 cycles per step, v23). */
template <int SYNC, bool HALF>
__device__ __noinline__ void step_mixed_warp(float *out, long long *cyc)
{
    step_loads_body<true, 0, SYNC, true, HALF>(out, cyc);
}
template <int FULL, int HALF, int SYNC>
__global__ void __launch_bounds__(128 * (FULL + HALF), 1) step_mixed(float *out, long long *cyc)
{
    if ((int)threadIdx.x >= 128 * FULL) step_mixed_warp<SYNC, true>(out, cyc);
    else step_mixed_warp<SYNC, false>(out, cyc);
}

/* The same mix with both kinds of warp inlined (v25), as one kernel holding both would have them:
 * step_mixed's non-inlined calls cost it 2-6 % (v23), and v23 scaled its 5 + 1 figure by that to
 * about 0.98 ms for the 410M layer's best balance; this measures it. HALF = 0 compiles no 8-row
 * path at all (the pure 16-row kernel, as step_lock). */
template <int FULL, int HALF, int SYNC>
__global__ void __launch_bounds__(128 * (FULL + HALF), 1) step_mixed_inl(float *out, long long *cyc)
{
    if constexpr (HALF > 0)
        if ((int)threadIdx.x >= 128 * FULL) {
            step_loads_body<true, 0, SYNC, true, true>(out, cyc);
            return;
        }
    step_loads_body<true, 0, SYNC, true, false>(out, cyc);
}

/* An 8-row tile with the state transposed (v25): Hᵀ (16 × 8, V by the tile's 8 rows) is the B operand
 * of one m16n8k16 whose A is Wᵀ, so that Aᵀ = Wᵀ Hᵀ + v kᵀ takes one product for 8 rows, not the
 * two of a 16-row tile half of whose rows are zero (step_loads_body's HALF). The accumulator gives
 * a thread (v = g, rows 2t, 2t + 1) and (v = g + 8, the same rows): 4 elements, 4 tanh, none wasted;
 * packed to bf16 they are the A operand of the readout's m16n8k8 (y = Hᵀ q) as they stand, and one
 * movmatrix per 8 × 8 half turns them into the next step's B operand. v kᵀ from one 16-byte load
 * of (v[g], v[g + 8], k[2t], k[2t + 1]) and four multiplies. A timing stand-in like the others:
 * its values are not checked. */
__device__ __forceinline__ void mma_k8(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t b)
{
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a0), "r"(a1), "r"(b));
}
template <int SYNC>
__device__ __forceinline__ void step_t8_body(float *out, long long *cyc)
{
    const int l = threadIdx.x & 31;
    kvbuf_fill<true>(l); /* the values step_loads_body<true> stores */
    uint32_t wa[4];
    for (int i = 0; i < 4; i++) wa[i] = pack(0.25f, (l & 3) == i ? 0.25f : 0.0f);
    float h[4];
    for (int e = 0; e < 4; e++) h[e] = 0.01f * (l + e);
    uint32_t hb[2] = {movm(pack(h[0], h[1])), movm(pack(h[2], h[3]))};
    const uint32_t qb = pack(0.01f * l, 0.02f);
    float f = 0.9f, ya[4] = {0, 0, 0, 0};
    step_barrier<true>();
    long long t0 = clock64();
    for (int it = 0; it < ITERS; it++) {
        f += 1e-9f;
        const float g1 = 1.0f - f;
        const float4 x = kvbuf[it & 63][l];
        float acc[4] = {x.x * x.z, x.x * x.w, x.y * x.z, x.y * x.w};
        mma(acc, wa, hb[0], hb[1]);
#pragma unroll
        for (int e = 0; e < 4; e++) h[e] = fmaf(g1, tanh_f32(acc[e]), f * h[e]);
        const uint32_t p0 = pack(h[0], h[1]), p1 = pack(h[2], h[3]);
        mma_k8(ya, p0, p1, qb);
        hb[0] = movm(p0);
        hb[1] = movm(p1);
        if constexpr (SYNC > 0) if (it % SYNC == SYNC - 1) step_barrier<true>();
    }
    step_barrier<true>();
    float hh[1][8] = {{h[0] + ya[0] + ya[1] + ya[2] + ya[3], h[1], h[2], h[3], 0, 0, 0, 0}};
    step_finish<1>(hh, t0, out, cyc);
}
/* FULL groups of 4 warps with 16-row tiles (step_loads_body, inlined) and T8 groups of 4 warps with
 * transposed 8-row tiles, one block per SM, per-group barriers every SYNC steps. */
template <int FULL, int T8, int SYNC>
__global__ void __launch_bounds__(128 * (FULL + T8), 1) step_mixed_t8(float *out, long long *cyc)
{
    if constexpr (T8 > 0)
        if ((int)threadIdx.x >= 128 * FULL) {
            step_t8_body<SYNC>(out, cyc);
            return;
        }
    step_loads_body<true, 0, SYNC, true, false>(out, cyc);
}

/* cvt.rn.bf16x2.f32 (F2FP) throughput: 8 independent chains per thread. */
__global__ void f2fp_rate(float *out, long long *cyc)
{
    float x[8];
    for (int i = 0; i < 8; i++) x[i] = 0.001f * (threadIdx.x + i);
    __syncthreads();
    long long t0 = clock64();
    for (int it = 0; it < ITERS; it++) {
#pragma unroll
        for (int i = 0; i < 8; i++) x[i] = __uint_as_float(pack(x[i], x[(i + 1) & 7]) ^ 0x10000u);
    }
    __syncthreads();
    long long t1 = clock64();
    float s = 0;
    for (int i = 0; i < 8; i++) s += x[i];
    if (s == 12345.f) out[0] = s;
    if (threadIdx.x == 0) cyc[blockIdx.x] = t1 - t0;
}

/* The mean of the n blocks' cycles at d (device memory); *max, if given, gets the largest. */
static double mean_cycles(long long *d, int n, double *max = nullptr)
{
    static long long h[100000];
    cudaMemcpy(h, d, n * sizeof(long long), cudaMemcpyDeviceToHost);
    double s = 0, mx = 0;
    for (int i = 0; i < n; i++) {
        s += h[i];
        if (h[i] > mx) mx = h[i];
    }
    if (max) *max = mx;
    return s / n;
}

/* A mode's exit status: CUDA's last error, printed ("cuda: no error" when all went well). */
static int cuda_status(void)
{
    cudaError_t e = cudaGetLastError();
    printf("cuda: %s\n", cudaGetErrorString(e));
    return e != cudaSuccess;
}

/* clock64 against the wall clock (NOTES.md v20). The figures above are clock64 cycles per step,
 * averaged over the blocks; a kernel's wall time is set by its slowest block, and by whether all its
 * blocks are resident at once. Here one launch is timed both ways: the mean and the largest of the
 * blocks' clock64 cycles per step, and the launch's cudaEvent time as cycles per step at 1.98 GHz
 * (clockrate.cu: what clock64 counts), with the blocks per SM the occupancy calculator allows. */
template <typename Kern>
static void wall_check(const char *name, Kern kernel, int blocks, int thr, float *out, long long *cyc)
{
    int fit = 0;
    cudaOccupancyMaxActiveBlocksPerMultiprocessor(&fit, kernel, thr, 0);
    cudaEvent_t a, b;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    kernel<<<blocks, thr>>>(out, cyc);
    cudaEventRecord(a);
    kernel<<<blocks, thr>>>(out, cyc);
    cudaEventRecord(b);
    cudaEventSynchronize(b);
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    double mx = 0;
    const double mean = mean_cycles(cyc, blocks, &mx);
    printf("%-58s %4d blocks (%d/SM fit): clock64 mean %4.0f, max %4.0f cycles/step; wall %.3f ms = %4.0f cycles/step at 1.98 GHz\n",
           name, blocks, fit, mean / ITERS, mx / ITERS, ms, ms * 1.98e6 / ITERS);
    /* (v23: under these step kernels the SM clock, and clock64, run at 1.79 GHz, not 1.98: clock_check) */
}

/* The same with TPW 16-row tiles per warp: one block per SM of WARPS warps, a lane's 4 / TPW warps
 * sharing a named barrier every SYNC steps (ILP in place of warps: 12 warps of 2 tiles hold the
 * tiles of 24 warps of one). */
template <int WARPS, int TPW, int SYNC>
__global__ void __launch_bounds__(32 * WARPS, 1) step_tiles(float *out, long long *cyc)
{
    step_loads_body<true, 0, SYNC, true, false, TPW>(out, cyc);
}

/* The same, one tile per warp, with NPOLY of a thread's 8 tanh on the FMA pipe (v15 measured it
 * slower by clock64 means over separate blocks, which v20 found biased; here by the wall clock). */
template <int WARPS, int NPOLY, int SYNC>
__global__ void __launch_bounds__(32 * WARPS, 1) step_poly(float *out, long long *cyc)
{
    step_loads_body<true, 0, SYNC, true, false, 1, NPOLY>(out, cyc);
}

/* The same, one tile per warp, each lane's group of warps starting STAGGER cycles after the previous
 * one: whether the warps sharing a scheduler stay out of phase, so that one's tanh fills another's
 * wait, or fall back into step. */
template <int WARPS, int STAGGER, int SYNC>
__global__ void __launch_bounds__(32 * WARPS, 1) step_stagger(float *out, long long *cyc)
{
    step_loads_body<true, 0, SYNC, true, false, 1, 0, STAGGER>(out, cyc);
}

/* clock64 ticks per %globaltimer nanosecond in the last launch of `blocks` blocks that left each
 * block's cycles at cyc[block] and its nanoseconds at cyc[blocks + block]: the mean over the blocks
 * (the SM clock in GHz), and with lo / hi the lowest and highest. */
static double clock_ghz(const long long *cyc, int blocks, double *lo = nullptr, double *hi = nullptr)
{
    static long long h[2 * 4096];
    cudaMemcpy(h, cyc, 2 * blocks * sizeof(long long), cudaMemcpyDeviceToHost);
    double mean = 0, mn = 1e30, mx = 0;
    for (int i = 0; i < blocks; i++) {
        const double r = (double)h[i] / (double)h[blocks + i];
        mean += r / blocks;
        mn = r < mn ? r : mn;
        mx = r > mx ? r : mx;
    }
    if (lo) *lo = mn;
    if (hi) *hi = mx;
    return mean;
}

/* What clock64 counts while the step runs: each block's clock64 cycles (cyc[block], from
 * step_finish) and its %globaltimer nanoseconds around the whole body (cyc[grid + block]). */
template <int WARPS>
__global__ void __launch_bounds__(32 * WARPS, 1) step_clock(float *out, long long *cyc)
{
    unsigned long long g0, g1;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(g0));
    step_loads_body<true, 0, 16, true>(out, cyc);
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(g1));
    if (threadIdx.x == 0) cyc[gridDim.x + blockIdx.x] = (long long)(g1 - g0);
}
template <int WARPS>
static void clock_check(int sms, float *out, long long *cyc)
{
    step_clock<WARPS><<<sms, 32 * WARPS>>>(out, cyc);
    step_clock<WARPS><<<sms, 32 * WARPS>>>(out, cyc);
    cudaDeviceSynchronize();
    double lo, hi;
    clock_ghz(cyc, sms, &lo, &hi);
    printf("step_loads, %d warps/SM as one block: clock64 cycles per globaltimer ns %.3f to %.3f over the blocks\n", WARPS, lo, hi);
}

/* One mma per NF fp32 FMAs (8 independent chains), 16 warps per SM as one block; cyc as mmabench.
 * NF = -1: FMAs only. Whether the clock the SMs keep depends on how densely the tensor cores work. */
template <int NF>
__global__ void __launch_bounds__(512, 1) mma_density(float *out, long long *cyc)
{
    uint32_t a[4] = {0x3f803f80u + threadIdx.x, 0x3f803f80u, 0x3f803f80u, 0x3f803f80u};
    float d[4] = {}, x[8];
    for (int i = 0; i < 8; i++) x[i] = 0.001f * (threadIdx.x + i);
    __syncthreads();
    unsigned long long g0, g1;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(g0));
    long long t0 = clock64();
    for (int it = 0; it < ITERS; it++) {
        if (NF >= 0) mma(d, a, 0x3f803f80u, 0x3f803f80u);
#pragma unroll
        for (int i = 0; i < (NF > 0 ? NF : NF < 0 ? 64 : 0); i++) x[i & 7] = fmaf(x[i & 7], 0.999f, 0.001f);
    }
    __syncthreads();
    long long t1 = clock64();
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(g1));
    float s = d[0] + d[1] + d[2] + d[3];
    for (int i = 0; i < 8; i++) s += x[i];
    if (s == 12345.f) out[0] = s;
    if (threadIdx.x == 0) {
        cyc[blockIdx.x] = t1 - t0;
        cyc[gridDim.x + blockIdx.x] = (long long)(g1 - g0);
    }
}
/* kern launched 20 times as one 512-thread block per SM (about 20 ms: long enough for any clock
 * change); returns the SM clock in GHz (clock_ghz) and, in *c0, block 0's cycles of its loop. */
template <typename Kern>
static double clock_under(Kern kern, int sms, float *out, long long *cyc, long long *c0)
{
    for (int i = 0; i < 20; i++) kern<<<sms, 512>>>(out, cyc);
    cudaDeviceSynchronize();
    cudaMemcpy(c0, cyc, sizeof *c0, cudaMemcpyDeviceToHost);
    return clock_ghz(cyc, sms);
}

template <int NF>
static void density_clock(int sms, float *out, long long *cyc)
{
    long long c0;
    const double ghz = clock_under(mma_density<NF>, sms, out, cyc, &c0);
    printf("one mma per %3d FFMA (-1: FFMA only), 16 warps/SM: clock64 cycles per globaltimer ns %.3f, %.1f cycles per iteration\n", NF,
           ghz, (double)c0 / ITERS);
}

/* The same for the tensor cores alone: mmabench<4> at 16 warps per SM as one block. */
static void mma_clock(int sms, float *out, long long *cyc)
{
    long long c0;
    const double ghz = clock_under(mmabench<4>, sms, out, cyc, &c0);
    printf("mma m16n8k16 bf16 alone, 16 warps/SM as one block: clock64 cycles per globaltimer ns %.3f, %.3f mma/cycle/SM\n", ghz,
           16.0 * 4 * ITERS / (double)c0);
}

/* One tensor-core instruction kind, 4 independent chains per warp, 16 warps per SM as one block:
 * KIND 0 bf16 m16n8k16 (f32 accumulate; what the kernels use), 1 f16 m16n8k16 (f32 accumulate),
 * 2 f16 m16n8k16 (f16 accumulate), 3 tf32 m16n8k8, 4 s8 m16n8k32 (s32 accumulate), 5 bf16 m16n8k8.
 * Whether the SMs drop to 1.8 GHz under every kind of tensor-core work or only some (v24). */
template <int KIND>
__global__ void __launch_bounds__(512, 1) mma_kind(float *out, long long *cyc)
{
    const uint32_t a0 = KIND == 4 ? 0x01020304u + threadIdx.x : KIND == 3 ? 0x3f800000u + threadIdx.x
                      : (KIND == 1 || KIND == 2) ? 0x3c003c00u + threadIdx.x : 0x3f803f80u + threadIdx.x;
    const uint32_t b = a0 ^ 1u;
    float d[4][4] = {};
    uint32_t dh[4][2] = {};
    int di[4][4] = {};
    __syncthreads();
    unsigned long long g0, g1;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(g0));
    long long t0 = clock64();
    for (int it = 0; it < ITERS; it++) {
#pragma unroll
        for (int c = 0; c < 4; c++) {
            if (KIND == 0)
                asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%4,%4,%4}, {%5,%5}, {%0,%1,%2,%3};"
                             : "+f"(d[c][0]), "+f"(d[c][1]), "+f"(d[c][2]), "+f"(d[c][3]) : "r"(a0), "r"(b));
            if (KIND == 1)
                asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%4,%4,%4}, {%5,%5}, {%0,%1,%2,%3};"
                             : "+f"(d[c][0]), "+f"(d[c][1]), "+f"(d[c][2]), "+f"(d[c][3]) : "r"(a0), "r"(b));
            if (KIND == 2)
                asm volatile("mma.sync.aligned.m16n8k16.row.col.f16.f16.f16.f16 {%0,%1}, {%2,%2,%2,%2}, {%3,%3}, {%0,%1};"
                             : "+r"(dh[c][0]), "+r"(dh[c][1]) : "r"(a0), "r"(b));
            if (KIND == 3)
                asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%4,%4,%4}, {%5,%5}, {%0,%1,%2,%3};"
                             : "+f"(d[c][0]), "+f"(d[c][1]), "+f"(d[c][2]), "+f"(d[c][3]) : "r"(a0), "r"(b));
            if (KIND == 4)
                asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%4,%4,%4}, {%5,%5}, {%0,%1,%2,%3};"
                             : "+r"(di[c][0]), "+r"(di[c][1]), "+r"(di[c][2]), "+r"(di[c][3]) : "r"(a0), "r"(b));
            if (KIND == 5)
                asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%4}, {%5}, {%0,%1,%2,%3};"
                             : "+f"(d[c][0]), "+f"(d[c][1]), "+f"(d[c][2]), "+f"(d[c][3]) : "r"(a0), "r"(b));
        }
    }
    __syncthreads();
    long long t1 = clock64();
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(g1));
    float s = 0;
    for (int c = 0; c < 4; c++) s += d[c][0] + d[c][1] + d[c][2] + d[c][3] + __uint_as_float(dh[c][0] ^ dh[c][1]) + (float)(di[c][0] + di[c][3]);
    if (s == 12345.f) out[0] = s;
    if (threadIdx.x == 0) {
        cyc[blockIdx.x] = t1 - t0;
        cyc[gridDim.x + blockIdx.x] = (long long)(g1 - g0);
    }
}
template <int KIND>
static void kind_clock(const char *name, int sms, float *out, long long *cyc)
{
    long long c0;
    const double ghz = clock_under(mma_kind<KIND>, sms, out, cyc, &c0);
    printf("%-40s 16 warps/SM: clock64 cycles per globaltimer ns %.3f, %.3f mma/cycle/SM\n", name, ghz, 16.0 * 4 * ITERS / (double)c0);
}

/* tanh.approx.f32's rate by the wall clock: warps per SM as blocks of 4 warps, 8 chains per thread. */
static void sfu_wall(int sms, int warps_per_sm, float *out, long long *cyc)
{
    const int blocks = sms * warps_per_sm / 4;
    cudaEvent_t a, b;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    sfu<0><<<blocks, 128>>>(out, cyc);
    cudaEventRecord(a);
    sfu<0><<<blocks, 128>>>(out, cyc);
    cudaEventRecord(b);
    cudaEventSynchronize(b);
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    const double per_sm = (double)warps_per_sm * 8 * ITERS; /* MUFU warp-instructions per SM */
    const double ghz = clock_ghz(cyc, blocks);
    printf("tanh.approx.f32, %2d warps/SM, wall %.3f ms, clock64 at %.3f GHz: %.3f warp-instr per SM cycle (clock64 mean over blocks: %.3f)\n",
           warps_per_sm, ms, ghz, per_sm / (ms * 1e6 * ghz), per_sm / mean_cycles(cyc, blocks));
}

int main(int argc, char **argv)
{
    int sms;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    float *out; long long *cyc;
    cudaMalloc(&out, 64); cudaMalloc(&cyc, 100000 * sizeof(long long));
    printf("SMs %d, %d iterations per kernel\n", sms, ITERS);
    if (argc > 1 && !strcmp(argv[1], "wall")) { /* only the clock64 / wall-clock cross-check */
        for (int bps : {4, 5, 6}) {
            char name[80];
            snprintf(name, sizeof name, "bare step (step_var<0>), %d warps/SM", 4 * bps);
            wall_check(name, step_var<0>, bps * sms, 128, out, cyc);
            snprintf(name, sizeof name, "bare step + readout (step_var<2>), %d warps/SM", 4 * bps);
            wall_check(name, step_var<2>, bps * sms, 128, out, cyc);
            snprintf(name, sizeof name, "step with loads and readout (step_loads), %d warps/SM", 4 * bps);
            wall_check(name, step_loads<true>, bps * sms, 128, out, cyc);
        }
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "clock")) { /* the SM clock under each kind of tensor-core product */
        for (int rep = 0; rep < 2; rep++) {
            kind_clock<0>("mma m16n8k16 bf16, f32 accumulate", sms, out, cyc);
            kind_clock<1>("mma m16n8k16 f16, f32 accumulate", sms, out, cyc);
            kind_clock<2>("mma m16n8k16 f16, f16 accumulate", sms, out, cyc);
            kind_clock<3>("mma m16n8k8 tf32", sms, out, cyc);
            kind_clock<4>("mma m16n8k32 s8, s32 accumulate", sms, out, cyc);
            kind_clock<5>("mma m16n8k8 bf16, f32 accumulate", sms, out, cyc);
            density_clock<-1>(sms, out, cyc);
        }
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "balance")) { /* the tanh unit's rate; 16-row and 8-row tiles mixed */
        for (int rep = 0; rep < 2; rep++) {
            for (int wps : {16, 24, 32}) sfu_wall(sms, wps, out, cyc);
            clock_check<16>(sms, out, cyc);
            clock_check<24>(sms, out, cyc);
            mma_clock(sms, out, cyc);
            density_clock<0>(sms, out, cyc);
            density_clock<8>(sms, out, cyc);
            density_clock<32>(sms, out, cyc);
            density_clock<128>(sms, out, cyc);
            density_clock<-1>(sms, out, cyc);
            wall_check("step_loads, 4 x 16-row per scheduler (16 warps/SM)", step_mixed<4, 0, 16>, sms, 512, out, cyc);
            wall_check("step_loads, 5 x 16-row per scheduler (20 warps/SM)", step_mixed<5, 0, 16>, sms, 640, out, cyc);
            wall_check("step_loads, 5 x 16-row + 1 x 8-row per scheduler", step_mixed<5, 1, 16>, sms, 768, out, cyc);
            wall_check("step_loads, 6 x 16-row per scheduler (24 warps/SM)", step_mixed<6, 0, 16>, sms, 768, out, cyc);
            wall_check("step_loads, 4 x 16-row + 2 x 8-row per scheduler", step_mixed<4, 2, 16>, sms, 768, out, cyc);
            wall_check("step_loads, 6 x 8-row per scheduler", step_mixed<0, 6, 16>, sms, 768, out, cyc);
            wall_check("step_loads, 8 x 8-row per scheduler", step_mixed<0, 8, 16>, sms, 1024, out, cyc);
            wall_check("step_loads, 2 warps of 2 x 16-row per scheduler", step_tiles<8, 2, 16>, sms, 256, out, cyc);
            wall_check("step_loads, 3 warps of 2 x 16-row per scheduler", step_tiles<12, 2, 16>, sms, 384, out, cyc);
            wall_check("step_loads, 1 warp of 4 x 16-row per scheduler", step_tiles<4, 4, 16>, sms, 128, out, cyc);
            wall_check("step_loads, 6 x 1 tile as step_tiles (= 6 x 16-row)", step_tiles<24, 1, 16>, sms, 768, out, cyc);
            wall_check("step_loads, 6 x 16-row, all tanh on MUFU (step_poly)", step_poly<24, 0, 16>, sms, 768, out, cyc);
            wall_check("step_loads, 6 x 16-row, groups staggered by 32 cycles", step_stagger<24, 32, 16>, sms, 768, out, cyc);
            wall_check("step_loads, 6 x 16-row, groups staggered by 64 cycles", step_stagger<24, 64, 16>, sms, 768, out, cyc);
            wall_check("step_loads, 6 x 16-row, groups staggered by 85 cycles", step_stagger<24, 85, 16>, sms, 768, out, cyc);
            wall_check("step_loads, 6 x 16-row, groups staggered by 64, no barrier", step_stagger<24, 64, 0>, sms, 768, out, cyc);
            wall_check("step_loads, 6 x 16-row, no barrier", step_stagger<24, 0, 0>, sms, 768, out, cyc);
            wall_check("bare step, 6 warps of 1 tile per scheduler", step<1, 0>, sms, 768, out, cyc);
            wall_check("bare step, 3 warps of 2 tiles per scheduler", step<2, 0>, sms, 384, out, cyc);
            wall_check("bare step, 3 warps of 2 tiles half a step apart", step_staggered, sms, 384, out, cyc);
            wall_check("bare step, 4 warps of 1 tile per scheduler", step<1, 0>, sms, 512, out, cyc);
            wall_check("bare step, 2 warps of 2 tiles half a step apart", step_staggered, sms, 256, out, cyc);
            wall_check("step_loads, 6 x 16-row, 1 of 8 tanh on the FMA pipe", step_poly<24, 1, 16>, sms, 768, out, cyc);
            wall_check("step_loads, 6 x 16-row, 2 of 8 tanh on the FMA pipe", step_poly<24, 2, 16>, sms, 768, out, cyc);
            wall_check("step_loads, 6 x 16-row, 3 of 8 tanh on the FMA pipe", step_poly<24, 3, 16>, sms, 768, out, cyc);
            wall_check("step_loads, 4 x 16-row, all tanh on MUFU (step_poly)", step_poly<16, 0, 16>, sms, 512, out, cyc);
            wall_check("step_loads, 4 x 16-row, 1 of 8 tanh on the FMA pipe", step_poly<16, 1, 16>, sms, 512, out, cyc);
            wall_check("step_loads, 4 x 16-row, 2 of 8 tanh on the FMA pipe", step_poly<16, 2, 16>, sms, 512, out, cyc);
        }
        return cuda_status();
    }
    if (argc > 1 && !strcmp(argv[1], "mixed")) { /* the best balance of 16- and 8-row tiles, inlined; transposed 8-row tiles (v25) */
        for (int rep = 0; rep < 3; rep++) {
            wall_check("step_loads inlined, 5 x 16-row per scheduler (20 warps/SM)", step_mixed_inl<5, 0, 16>, sms, 640, out, cyc);
            wall_check("step_loads inlined, 5 x 16-row + 1 x 8-row per scheduler", step_mixed_inl<5, 1, 16>, sms, 768, out, cyc);
            wall_check("step_loads inlined, 6 x 16-row per scheduler (24 warps/SM)", step_mixed_inl<6, 0, 16>, sms, 768, out, cyc);
            wall_check("step_loads inlined, 4 x 16-row + 2 x 8-row per scheduler", step_mixed_inl<4, 2, 16>, sms, 768, out, cyc);
            wall_check("step_loads inlined, 5 x 16-row + 1 x transposed 8-row", step_mixed_t8<5, 1, 16>, sms, 768, out, cyc);
            wall_check("step_loads inlined, 5 x 16-row + 2 x transposed 8-row", step_mixed_t8<5, 2, 16>, sms, 896, out, cyc);
            wall_check("step_loads inlined, 4 x 16-row + 2 x transposed 8-row", step_mixed_t8<4, 2, 16>, sms, 768, out, cyc);
            wall_check("step_loads inlined, 8 x transposed 8-row per scheduler", step_mixed_t8<0, 8, 16>, sms, 1024, out, cyc);
            wall_check("step_loads, 5 x 16-row + 1 x 8-row per scheduler (step_mixed)", step_mixed<5, 1, 16>, sms, 768, out, cyc);
            wall_check("step_loads, 6 x 16-row per scheduler (step_mixed)", step_mixed<6, 0, 16>, sms, 768, out, cyc);
        }
        return cuda_status();
    }
    if (argc > 1 && !strcmp(argv[1], "lockstep")) { /* one block per SM, barriers every SYNC steps */
        for (int rep = 0; rep < 2; rep++) {
            wall_check("step_loads, 16 warps/SM as 4 blocks of 4", step_loads<true>, 4 * sms, 128, out, cyc);
            wall_check("step_loads, 16 warps/SM as 1 block, no barrier", step_lock<512, 0>, sms, 512, out, cyc);
            wall_check("step_loads, 16 warps/SM as 1 block, barrier every 4", step_lock<512, 4>, sms, 512, out, cyc);
            wall_check("step_loads, 16 warps/SM as 1 block, barrier every 16", step_lock<512, 16>, sms, 512, out, cyc);
            wall_check("step_loads, 16 warps/SM as 1 block, barrier every 64", step_lock<512, 64>, sms, 512, out, cyc);
            wall_check("step_loads, 24 warps/SM as 6 blocks of 4", step_loads<true>, 6 * sms, 128, out, cyc);
            wall_check("step_loads, 24 warps/SM as 1 block, no barrier", step_lock<768, 0>, sms, 768, out, cyc);
            wall_check("step_loads, 24 warps/SM as 1 block, barrier every 4", step_lock<768, 4>, sms, 768, out, cyc);
            wall_check("step_loads, 24 warps/SM as 1 block, barrier every 16", step_lock<768, 16>, sms, 768, out, cyc);
            wall_check("step_loads, 24 warps/SM as 1 block, barrier every 64", step_lock<768, 64>, sms, 768, out, cyc);
            wall_check("step_loads, 24 warps/SM as 2 blocks of 12, barrier every 16", step_lock<384, 16>, 2 * sms, 384, out, cyc);
            wall_check("step_loads, 16 warps/SM as 4 blocks of 4, barrier every 16", step_loads_sync<16>, 4 * sms, 128, out, cyc);
            wall_check("step_loads, 16 warps/SM as 1 block, group barriers every 16", step_lock<512, 16, true>, sms, 512, out, cyc);
            wall_check("step_loads, 16 warps/SM as 1 block, group barriers every 32", step_lock<512, 32, true>, sms, 512, out, cyc);
            wall_check("step_loads, 24 warps/SM as 6 blocks of 4, barrier every 16", step_loads_sync<16>, 6 * sms, 128, out, cyc);
            wall_check("step_loads, 24 warps/SM as 1 block, group barriers every 16", step_lock<768, 16, true>, sms, 768, out, cyc);
            wall_check("step_loads, 24 warps/SM as 1 block, group barriers every 32", step_lock<768, 32, true>, sms, 768, out, cyc);
            wall_check("step_loads, 672 groups as 672 blocks of 4, barrier every 16", step_loads_sync<16>, 672, 128, out, cyc);
            wall_check("step_loads, 672 groups as 132 blocks of 6 or 5, group barriers 16", step_lock_672<16>, sms, 768, out, cyc);
        }
        return cuda_status();
    }
    /* SFU throughput: 8 warps per block, 4 blocks per SM = 32 warps per SM */
    const char *sname[4] = {"tanh.approx.f32", "tanh.approx.f16x2", "tanh.approx.bf16x2", "ex2.approx.f32"};
    for (int op = 0; op < 4; op++) {
        int blocks = 4 * sms, thr = 256;
        for (int rep = 0; rep < 2; rep++) {
            if (op == 0) sfu<0><<<blocks, thr>>>(out, cyc);
            if (op == 1) sfu<1><<<blocks, thr>>>(out, cyc);
            if (op == 2) sfu<2><<<blocks, thr>>>(out, cyc);
            if (op == 3) sfu<3><<<blocks, thr>>>(out, cyc);
        }
        cudaDeviceSynchronize();
        double c = mean_cycles(cyc, blocks);
        double instr_per_sm = 4.0 * thr / 32 * 8 * ITERS; /* warp instructions per SM */
        printf("%-20s %.2f warp-instr/clk/SM = %.1f lanes/clk/SM (elements: x%d)\n", sname[op], instr_per_sm / c,
               32 * instr_per_sm / c, (op == 1 || op == 2) ? 2 : 1);
    }
    /* MMA latency: 1 warp per SM, one chain; throughput: 16 warps per SM, 4 chains each */
    mmabench<1><<<sms, 32>>>(out, cyc); mmabench<1><<<sms, 32>>>(out, cyc); cudaDeviceSynchronize();
    printf("mma m16n8k16 bf16 dependent latency: %.1f cycles\n", mean_cycles(cyc, sms) / ITERS);
    mmabench<4><<<sms, 512>>>(out, cyc); mmabench<4><<<sms, 512>>>(out, cyc); cudaDeviceSynchronize();
    {
        double c = mean_cycles(cyc, sms);
        double mmas = 16.0 * 4 * ITERS;
        printf("mma m16n8k16 bf16 throughput: %.3f mma/clk/SM = %.0f flop/clk/SM\n", mmas / c, mmas / c * 4096);
    }
    /* bare recurrence step */
    struct { int tpw, tm, warps_per_block, blocks_per_sm; const char *name; int npoly = 0; } cfg[] = {
        {1, 0, 4, 4, "1 tile/warp, tanh.f32, 16 warps/SM (7B's 4 lanes/SM x 4 tiles)"},
        {2, 0, 2, 4, "2 tiles/warp, tanh.f32, 8 warps/SM"},
        {4, 0, 1, 4, "4 tiles/warp, tanh.f32, 4 warps/SM"},
        {1, 1, 4, 4, "1 tile/warp, tanh.bf16x2, 16 warps/SM"},
        {2, 1, 2, 4, "2 tiles/warp, tanh.bf16x2, 8 warps/SM"},
        {1, 0, 4, 1, "1 tile/warp, tanh.f32, 4 warps/SM (1 lane/SM: the chain alone)"},
        {1, 0, 4, 5, "1 tile/warp, tanh.f32, 20 warps/SM"},
        {1, 0, 4, 6, "1 tile/warp, tanh.f32, 24 warps/SM (410M-like)"},
        {2, 0, 4, 3, "2 tiles/warp, tanh.f32, 12 warps/SM (410M, two heads per warp)"},
        {1, 0, 4, 4, "1 tile/warp, 7 tanh.f32 + 1 tanh_fma, 16 warps/SM", 1},
        {1, 0, 4, 4, "1 tile/warp, 6 tanh.f32 + 2 tanh_fma, 16 warps/SM", 2},
        {1, 0, 4, 4, "1 tile/warp, 4 tanh.f32 + 4 tanh_fma, 16 warps/SM", 4},
        {1, 0, 4, 6, "1 tile/warp, 7 tanh.f32 + 1 tanh_fma, 24 warps/SM", 1},
        {1, 0, 4, 6, "1 tile/warp, 6 tanh.f32 + 2 tanh_fma, 24 warps/SM", 2},
        {1, 0, 4, 6, "1 tile/warp, 4 tanh.f32 + 4 tanh_fma, 24 warps/SM", 4},
        {1, 0, 4, 1, "1 tile/warp, 6 tanh.f32 + 2 tanh_fma, 4 warps/SM (the chain alone)", 2},
    };
    for (auto &c : cfg) {
        int blocks = c.blocks_per_sm * sms, thr = 32 * c.warps_per_block;
        for (int rep = 0; rep < 2; rep++) {
            if (c.tpw == 1 && c.tm == 0 && c.npoly == 0) step<1, 0><<<blocks, thr>>>(out, cyc);
            if (c.tpw == 1 && c.tm == 0 && c.npoly == 1) step<1, 0, 1><<<blocks, thr>>>(out, cyc);
            if (c.tpw == 1 && c.tm == 0 && c.npoly == 2) step<1, 0, 2><<<blocks, thr>>>(out, cyc);
            if (c.tpw == 1 && c.tm == 0 && c.npoly == 4) step<1, 0, 4><<<blocks, thr>>>(out, cyc);
            if (c.tpw == 2 && c.tm == 0) step<2, 0><<<blocks, thr>>>(out, cyc);
            if (c.tpw == 4 && c.tm == 0) step<4, 0><<<blocks, thr>>>(out, cyc);
            if (c.tpw == 1 && c.tm == 1) step<1, 1><<<blocks, thr>>>(out, cyc);
            if (c.tpw == 2 && c.tm == 1) step<2, 1><<<blocks, thr>>>(out, cyc);
        }
        cudaDeviceSynchronize();
        printf("bare step, %-62s %.0f cycles/step\n", c.name, mean_cycles(cyc, blocks) / ITERS);
    }
    for (int bps : {4, 8}) {
        int blocks = bps * sms;
        step_staggered<<<blocks, 64>>>(out, cyc);
        step_staggered<<<blocks, 64>>>(out, cyc);
        cudaDeviceSynchronize();
        printf("bare step, 2 tiles/warp written half a step apart, tanh.f32, %2d warps/SM   %.0f cycles/step\n", 2 * bps,
               mean_cycles(cyc, blocks) / ITERS);
    }
    /* the tf32 study (NOTES.md v16) */
    {
        int blocks = 4 * sms;
        f2fp_rate<<<blocks, 256>>>(out, cyc);
        f2fp_rate<<<blocks, 256>>>(out, cyc);
        cudaDeviceSynchronize();
        printf("cvt.rn.bf16x2.f32 (F2FP) %.2f warp-instr/clk/SM\n", 4.0 * 8 * 8 * ITERS / mean_cycles(cyc, blocks));
        const char *mname[6] = {"bf16 product, F2FP packs (today), no readout", "tf32 product from fp32 H, no packs, no readout",
                                "bf16 product, F2FP packs, MOVM+MMA readout (today)", "tf32 product, F2FP packs for the readout alone",
                                "tf32 product, FMA + shuffle readout", "bf16 product, PRMT truncation packs, no readout"};
        for (int bps : {1, 4, 5, 6}) {
            for (int m = 0; m < 6; m++) {
                for (int rep = 0; rep < 2; rep++) {
                    if (m == 0) step_var<0><<<bps * sms, 128>>>(out, cyc);
                    if (m == 1) step_var<1><<<bps * sms, 128>>>(out, cyc);
                    if (m == 2) step_var<2><<<bps * sms, 128>>>(out, cyc);
                    if (m == 3) step_var<3><<<bps * sms, 128>>>(out, cyc);
                    if (m == 4) step_var<4><<<bps * sms, 128>>>(out, cyc);
                    if (m == 5) step_var<5><<<bps * sms, 128>>>(out, cyc);
                }
                cudaDeviceSynchronize();
                printf("step, %2d warps/SM, %-52s %.0f cycles/step\n", 4 * bps, mname[m], mean_cycles(cyc, bps * sms) / ITERS);
            }
        }
    }
    for (int bps : {4, 6})
        for (int m = 0; m < 4; m++) {
            for (int rep = 0; rep < 2; rep++) {
                if (m == 0) step_loads<false><<<bps * sms, 128>>>(out, cyc);
                if (m == 1) step_loads<true><<<bps * sms, 128>>>(out, cyc);
                if (m == 2) step_loads<true, 1><<<bps * sms, 128>>>(out, cyc);
                if (m == 3) step_loads<true, 2><<<bps * sms, 128>>>(out, cyc);
            }
            cudaDeviceSynchronize();
            const char *name[4] = {"k vᵀ from fp32 multiplies (fwd_t1 before v16)", "k vᵀ as an m16n8k8 pair (broadcast words)",
                                   "and the readout transposed by MMAs, bf16", "and the readout transposed by MMAs, tf32"};
            printf("step with loads and readout, %2d warps/SM, %-48s %.0f cycles/step\n", 4 * bps, name[m], mean_cycles(cyc, bps * sms) / ITERS);
        }
    /* Is a busy SM's step time set per SM or per scheduler (NOTES.md v15)? 5 blocks of 4 one-tile
     * warps per SM on one stream and, at the same time on another, one block of 1 warp per SM: if the
     * limit is per SM, every warp of an SM with the extra warp slows by about 21/20; if it is per
     * scheduler (warp slot % 4), the warps sharing the extra warp's scheduler slow to the 6-warp rate. */
    {
        const int nA = 5 * sms, nB = sms, wA = 4 * nA;
        long long *rec;
        cudaMalloc(&rec, 3 * (size_t)(wA + nB) * sizeof(long long));
        cudaStream_t s1, s2;
        cudaStreamCreate(&s1);
        cudaStreamCreate(&s2);
        for (int rep = 0; rep < 2; rep++) {
            step<1, 0, 0, true><<<nA, 128, 0, s1>>>(out, rec);
            step<1, 0, 0, true><<<nB, 32, 0, s2>>>(out, rec + 3 * (size_t)wA);
        }
        cudaDeviceSynchronize();
        static long long r[3 * 6000];
        cudaMemcpy(r, rec, 3 * (size_t)(wA + nB) * sizeof(long long), cudaMemcpyDeviceToHost);
        int b_slot[1024], a_warps[1024];
        for (int i = 0; i < 1024; i++) { b_slot[i] = -1; a_warps[i] = 0; }
        for (int i = 0; i < nB; i++) b_slot[r[3 * (wA + i)]] = (int)(r[3 * (wA + i) + 1] % 4);
        for (int i = 0; i < wA; i++) a_warps[r[3 * i]]++;
        double sum[3] = {0, 0, 0}, mx[3] = {0, 0, 0}, bsum = 0, bmx = 0;
        int cnt[3] = {0, 0, 0}, spread[64] = {0};
        for (int i = 0; i < wA; i++) {
            const int sm = (int)r[3 * i], sched = (int)(r[3 * i + 1] % 4);
            const double c = (double)r[3 * i + 2] / ITERS;
            const int k = b_slot[sm] < 0 ? 0 : (sched == b_slot[sm] ? 1 : 2);
            sum[k] += c; cnt[k]++; if (c > mx[k]) mx[k] = c;
        }
        for (int i = 0; i < nB; i++) { const double c = (double)r[3 * (wA + i) + 2] / ITERS; bsum += c; if (c > bmx) bmx = c; }
        for (int i = 0; i < sms; i++) spread[a_warps[i] / 4 < 63 ? a_warps[i] / 4 : 63]++;
        printf("5 blocks x 4 warps per SM + 1 one-warp block per SM, concurrently (bare step, tanh.f32):\n");
        printf("  blocks of the first launch per SM:");
        for (int i = 0; i < 64; i++) if (spread[i]) printf(" %d on %d SMs;", i, spread[i]);
        printf("\n");
        const char *kname[3] = {"warps on SMs without the extra warp", "warps sharing the extra warp's scheduler", "warps on its SM's other schedulers"};
        for (int k = 0; k < 3; k++)
            if (cnt[k]) printf("  %-44s %4d warps: mean %.0f, max %.0f cycles/step\n", kname[k], cnt[k], sum[k] / cnt[k], mx[k]);
        printf("  %-44s %4d warps: mean %.0f, max %.0f cycles/step\n", "the extra warps", nB, bsum / nB, bmx);
        cudaFree(rec);
    }
    return cuda_status();
}
