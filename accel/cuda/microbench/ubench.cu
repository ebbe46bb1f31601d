/*
 * Microbenchmarks behind NOTES.md's floors: special-function (tanh) throughput in its f32, f16x2
 * and bf16x2 forms, the latency and throughput of one bf16 mma.sync m16n8k16, and the cost of one
 * bare recurrence step (H <- f H + (1-f) tanh(H W + k vᵀ), no memory traffic) at the 7B layer's
 * occupancy, the same step with part of the tanh on the FMA pipe (tanh_fma, NOTES.md v15), and a
 * probe of whether a full SM's step time is set per SM or per scheduler (v15).
 * Cycles come from clock64() inside the kernels (one SM's clock), so the results do not depend on
 * the clock the GPU happens to run at.
 *
 * Build: nvcc -O3 -std=c++17 -arch=sm_90 -o ubench ubench.cu     Run: ./ubench
 */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include <stdio.h>

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

/* 8 independent chains of one op per thread; cyc[block] = cycles of the loop. */
template <int OP>
__global__ void sfu(float *out, long long *cyc)
{
    float x[8];
    uint32_t u[8];
    for (int i = 0; i < 8; i++) { x[i] = 0.001f * (threadIdx.x + i); u[i] = 0x3c003c00u + threadIdx.x + i; }
    __syncthreads();
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
    float s = 0;
    for (int i = 0; i < 8; i++) s += x[i] + __uint_as_float(u[i]);
    if (s == 12345.f) out[0] = s;
    if (threadIdx.x == 0) cyc[blockIdx.x] = t1 - t0;
}

/* CH independent accumulator chains of mma per warp. */
template <int CH>
__global__ void mmabench(float *out, long long *cyc)
{
    uint32_t a[4] = {0x3f803f80u + threadIdx.x, 0x3f803f80u, 0x3f803f80u, 0x3f803f80u};
    float d[CH][4] = {};
    __syncthreads();
    long long t0 = clock64();
    for (int it = 0; it < ITERS; it++) {
#pragma unroll
        for (int c = 0; c < CH; c++) mma(d[c], a, 0x3f803f80u, 0x3f803f80u);
    }
    __syncthreads();
    long long t1 = clock64();
    float s = 0;
    for (int c = 0; c < CH; c++) s += d[c][0] + d[c][1] + d[c][2] + d[c][3];
    if (s == 12345.f) out[0] = s;
    if (threadIdx.x == 0) cyc[blockIdx.x] = t1 - t0;
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

static double mean_cycles(long long *d, int n)
{
    static long long h[100000];
    cudaMemcpy(h, d, n * sizeof(long long), cudaMemcpyDeviceToHost);
    double s = 0;
    for (int i = 0; i < n; i++) s += h[i];
    return s / n;
}

int main()
{
    int sms;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    float *out; long long *cyc;
    cudaMalloc(&out, 64); cudaMalloc(&cyc, 100000 * sizeof(long long));
    printf("SMs %d, %d iterations per kernel\n", sms, ITERS);
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
    cudaError_t e = cudaGetLastError();
    printf("cuda: %s\n", cudaGetErrorString(e));
    return e != cudaSuccess;
}
