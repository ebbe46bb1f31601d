/*
 * What clock64() counts on this GPU: its ticks per %globaltimer nanosecond, with the SMs idle
 * (a spin on the counter) and under a tanh load, on one block and on 4 blocks of every SM
 * (NOTES.md v16: 1.980 in all four, the SM clock nvidia-smi reports). Under the recurrence step's
 * tensor-core and tanh load the SMs run slower: clock64 ticks about 1.80 per nanosecond there
 * (`ubench balance`'s clock_check, v23), so clock64 counts SM cycles at whatever the clock is.
 *
 * Build: nvcc -O3 -arch=sm_90 -o clockrate clockrate.cu     Run: ./clockrate
 */
#include <cstdio>
#include <cstdint>
__device__ __forceinline__ uint64_t gtime() { uint64_t t; asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)); return t; }
__global__ void spin(double *out, int mufu, long long ticks)
{
    __syncthreads();
    uint64_t g0 = gtime(); long long c0 = clock64();
    float x = threadIdx.x * 1e-3f;
    long long c;
    do {
        if (mufu) {
#pragma unroll
            for (int i = 0; i < 64; i++) asm volatile("tanh.approx.f32 %0, %0;" : "+f"(x));
        }
        c = clock64();
    } while (c - c0 < ticks);
    uint64_t g1 = gtime();
    if (threadIdx.x == 0) out[blockIdx.x] = (double)(c - c0) / (double)(g1 - g0);
    if (x == 12345.f) out[0] = x;
}
int main()
{
    int sms; cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    double *d, h[4096];
    cudaMalloc(&d, sizeof h);
    for (int mufu = 0; mufu < 2; mufu++)
        for (int full = 0; full < 2; full++) {
            int blocks = full ? 4 * sms : 1;
            spin<<<blocks, 256>>>(d, mufu, 200000000LL);
            cudaDeviceSynchronize();
            cudaMemcpy(h, d, blocks * sizeof(double), cudaMemcpyDeviceToHost);
            double s = 0; for (int i = 0; i < blocks; i++) s += h[i];
            printf("%s, %s: clock64 ticks per ns = %.3f (GHz)\n", mufu ? "tanh load" : "idle spin", full ? "4 blocks on every SM" : "1 block", s / blocks);
        }
    printf("cuda: %s\n", cudaGetErrorString(cudaGetLastError()));
}
