/*
 * Is the forward's k vᵀ on the tensor cores (t1_kv in recurrence_v16_t1.cuh: k in A's even columns,
 * v / 4 in B's even rows, the sum of four equal products) bit for bit the fp32 product k[i] v[j]
 * that the backward's t1_outer and an FMUL give? (NOTES.md v16.) Every bf16 bit pattern of k
 * against a sweep of v: each warp takes 16 values of k (A's rows) and 16 of v (B's columns) per
 * product and compares all 256 entries with __fmul_rn; NaN counts as equal to NaN.
 * Prints the mismatches in four classes: v / 4 exact in bf16 and the product a normal fp32 number
 * (or inf, NaN), which must be none; zeros of opposite signs (a -0 product, or one that underflows:
 * the tensor core's sum of it with the +0 products is +0, as t1_outer's is; equal values); the product
 * subnormal; v / 4 not exact (|v| < 2^-124). Then the same sums against t1_outer's (k in column 0 of
 * A, v in row 0 of B, zeros elsewhere), bit for bit: the forward and the backward's replay must
 * agree. Exits 1 if the first class or the comparison with t1_outer (where v / 4 is exact) is not
 * empty. It calls the kernels' own t1_kv, t1_outer and t1_quarter, so it checks their code.
 *
 * Build: nvcc -O3 -std=c++17 -arch=sm_90 -o kv_exact kv_exact.cu     Run: ./kv_exact
 */
#include "../recurrence_v16_t1.cuh"
#include <stdio.h>
#include <string.h>

/* bf16 bits (the low half of a word) as fp32, and x / 4 as bf16 bits, as the forward converts v */
__device__ __forceinline__ float bf(uint32_t bits) { return bf16_lo(bits); }
__device__ __forceinline__ uint32_t quarter(uint32_t bits) { return t1_quarter(__ushort_as_bfloat16((unsigned short)bits)); }
__device__ __forceinline__ bool same(float a, float b) { return __float_as_uint(a) == __float_as_uint(b) || (a != a && b != b); }

/* block: 8 warps; warp job j: k values kbase + 16 (j % 4096) .. + 15, v values from the sweep */
__global__ void check(unsigned long long *bad, uint32_t *ex, uint32_t vseed)
{
    const int l = threadIdx.x & 31, g = l >> 2, t = l & 3;
    const uint32_t job = blockIdx.x * 8 + (threadIdx.x >> 5);
    const uint32_t k0 = (16 * job + g) & 0xffffu, k1 = (16 * job + g + 8) & 0xffffu; /* A rows g, g + 8 */
    uint32_t s = vseed * 2654435761u + job * 40503u;
    unsigned long long nbad[6] = {0, 0, 0, 0, 0, 0};
    for (int rep = 0; rep < 64; rep++) {
        s = s * 1664525u + 1013904223u;
        const uint32_t vg = (s >> 8 ^ (uint32_t)g * 0x9e37u) & 0xffffu, vg8 = (s >> 3 ^ (uint32_t)(g + 8) * 0x7f4bu) & 0xffffu;
        float acc[2][4], out[2][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}};
        t1_kv(acc, make_uint2(k0, k1), make_uint2(quarter(vg), quarter(vg8)));
        t1_outer(out, t ? T1Outer{0u, 0u, 0u, 0u} : T1Outer{k0, k1, vg, vg8}); /* lanes t = 0 only, as t1_outer_at loads */
        /* this lane's entries: rows g, g + 8; columns 2t, 2t + 1 (+ 8); v[j] lives in lane 4 (j % 8) */
        for (int e = 0; e < 8; e++) {
            const int col = (e >> 2) * 8 + 2 * t + (e & 1);
            const uint32_t vj = __shfl_sync(0xffffffffu, (col >= 8) ? vg8 : vg, 4 * (col & 7));
            const float ref = __fmul_rn(bf((e & 2) ? k1 : k0), bf(vj));
            const bool vexact = bf(quarter(vj)) * 4.0f == bf(vj) || bf(vj) != bf(vj);
            const bool subnormal = ref != 0.0f && fabsf(ref) < 1.17549435e-38f;
            const float a = acc[e >> 2][e & 3], o = out[e >> 2][e & 3];
            const bool zero = ref == 0.0f && a == 0.0f; /* +0 against -0 */
            if (!same(a, o)) nbad[vexact ? 4 : 5]++;
            if (!same(a, ref)) {
                const int c = !vexact ? 3 : subnormal ? 2 : zero ? 1 : 0;
                nbad[c]++;
                const uint32_t i = atomicAdd(&ex[4 * c], 1u); /* the first few of each class: k, v, tensor core, fmul */
                if (i < 6) {
                    uint32_t *x = ex + 16 + 24 * c + 4 * i; /* 6 examples of 4 words per class */
                    x[0] = (e & 2) ? k1 : k0;
                    x[1] = vj;
                    x[2] = __float_as_uint(a);
                    x[3] = __float_as_uint(ref);
                }
            }
        }
    }
    for (int c = 0; c < 6; c++) atomicAdd(&bad[c], nbad[c]);
}

int main()
{
    unsigned long long *bad, h[6] = {0, 0, 0, 0, 0, 0};
    uint32_t *ex, hx[16 + 96];
    cudaMalloc(&bad, sizeof h);
    cudaMemset(bad, 0, sizeof h);
    cudaMalloc(&ex, sizeof hx);
    cudaMemset(ex, 0, sizeof hx);
    const int blocks = 65536 / 16 / 8; /* every k pattern once per seed */
    for (uint32_t seed = 1; seed <= 64; seed++) check<<<blocks, 256>>>(bad, ex, seed);
    cudaMemcpy(h, bad, sizeof h, cudaMemcpyDeviceToHost);
    cudaMemcpy(hx, ex, sizeof hx, cudaMemcpyDeviceToHost);
    const double total = 64.0 * blocks * 8 * 64 * 256;
    printf("k vᵀ as m16n8k8 with v / 4 against __fmul_rn: %.0f products; mismatches: %llu with a normal product and v / 4 exact, "
           "%llu with +0 against -0, %llu with a subnormal product, %llu with v / 4 inexact\n",
           total, h[0], h[1], h[2], h[3]);
    printf("the same against t1_outer's product, bit for bit: %llu differ where v / 4 is exact, %llu where it is not\n", h[4], h[5]);
    const char *cname[4] = {"normal product, v / 4 exact", "+0 against -0", "subnormal product", "v / 4 inexact"};
    for (int c = 0; c < 4; c++)
        for (uint32_t i = 0; i < 6 && i < hx[4 * c]; i++) {
            const uint32_t *x = hx + 16 + 24 * c + 4 * i;
            float k, v, tc, fm;
            const uint32_t kb = x[0] << 16, vb = x[1] << 16;
            memcpy(&k, &kb, 4); memcpy(&v, &vb, 4); memcpy(&tc, &x[2], 4); memcpy(&fm, &x[3], 4);
            printf("  %-28s k %-13.6g v %-13.6g tensor core %-13.6g (%08x) fmul %-13.6g (%08x)\n", cname[c], k, v, tc, x[2], fm, x[3]);
        }
    cudaError_t e = cudaGetLastError();
    printf("cuda: %s\n", cudaGetErrorString(e));
    return e != cudaSuccess || h[0] != 0 || h[4] != 0;
}
