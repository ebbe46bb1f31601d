/*
 * Shared device-side pieces of the CUDA backend: the problem description the kernels get, storage
 * conversions, tanh, the bf16 tensor-core product and the small async-copy helpers.
 *
 * Everything is computed in fp32. Storage is F32 or BF16 (all float tensors of one call share it);
 * outputs are rounded once, to nearest-even, from the fp32 result.
 */
#ifndef M2RNN_CUDA_COMMON_CUH
#define M2RNN_CUDA_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

/* Sizes of one call, resolved on the host. Group sizes are N / (heads of that input). */
struct RecDims {
    int B, N, K, V;
    int S;       /* dense layout: tokens per sequence; unused when cu != NULL */
    int64_t T;   /* total tokens */
    int Nq, Nk, Nv, Nf, Nw;
    int gq, gk, gv, gf, gw;
};

/* Inputs (device pointers). cu is the device copy of cu_seqlens (int64), NULL for dense. */
template <typename T>
struct RecIn {
    const T *q, *k, *v, *W, *f, *h0;
    const int64_t *cu;
};

/* Per-state-head gradient partials (fp32 workspace), summed over shared heads afterwards. */
struct GradOut {
    float *dq, *dk; /* (T, N, K) */
    float *dv;      /* (T, N, V) */
    float *df;      /* (T, N)    */
    float *dW;      /* (B, N, V, V) */
};

__device__ __forceinline__ void seq_range(const RecDims &d, const int64_t *cu, int b, int64_t &start, int64_t &end)
{
    if (cu) {
        start = cu[b];
        end = cu[b + 1];
    } else {
        start = (int64_t)b * d.S;
        end = start + d.S;
    }
}

/* Lane (sequence b, state head n)'s inputs: where its sequence starts in k, q, v, f (the source
 * heads n / G) and the stride between its tokens, in elements. */
template <typename T>
struct LaneIn {
    const T *k, *q, *v, *f;
    int64_t kst, qst, vst, fst;
};

template <typename T>
__device__ __forceinline__ LaneIn<T> lane_inputs(const RecDims &d, const RecIn<T> &in, int64_t start, int n)
{
    LaneIn<T> r;
    r.kst = (int64_t)d.Nk * d.K;
    r.qst = (int64_t)d.Nq * d.K;
    r.vst = (int64_t)d.Nv * d.V;
    r.fst = d.Nf;
    r.k = in.k + start * r.kst + (int64_t)(n / d.gk) * d.K;
    r.q = in.q + start * r.qst + (int64_t)(n / d.gq) * d.K;
    r.v = in.v + start * r.vst + (int64_t)(n / d.gv) * d.V;
    r.f = in.f + start * r.fst + n / d.gf;
    return r;
}

/* ---- storage conversions ---------------------------------------------------------------- */

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T> __device__ __forceinline__ T from_f(float x);
template <> __device__ __forceinline__ float from_f<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

/* ---- tanh -------------------------------------------------------------------------------
 * tanh_fast: the hardware approximation (MUFU.TANH, max relative error about 2^-11), used by the
 * V = 16 kernels for both storage dtypes: the bf16 and tf32 classes both allow it, and with F32
 * storage it made the errors against the reference typically 1.5x (at most 3x) larger, still
 * inside a ninth of check_cuda's tolerances, for a 27-29 % faster forward (NOTES.md v15).
 * tanh_accurate: 1 - 2/(1 + e^{2|x|}) with the sign put back; ex2 and rcp approximations are
 * good to about 2^-22, so the absolute error is about 1e-7 everywhere. Used by the general path. */
__device__ __forceinline__ float tanh_fast(float x)
{
    float y;
    asm("tanh.approx.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

__device__ __forceinline__ float tanh_accurate(float x)
{
    float e = __expf(2.0f * fabsf(x));          /* +inf for large |x|: then 2/(1+e) = 0 */
    float r = 1.0f - __fdividef(2.0f, 1.0f + e);
    return copysignf(r, x);
}

template <bool FAST> __device__ __forceinline__ float tanh_t(float x) { return FAST ? tanh_fast(x) : tanh_accurate(x); }

/* tanh of two values with one MUFU operation: tanh.approx.f16x2 evaluates both halves of a packed
 * f16 pair at once (sm_75+), so the special-function unit, the forward's largest floor (NOTES.md),
 * does half the work. Inputs are rounded to f16 (11 significant bits; beyond ±65504 they become
 * ±inf, whose tanh is ±1, and a NaN stays NaN) and the results come back as f16: both roundings are
 * 2^-12 relative, about the error of tanh.approx.f32 itself (2^-11). Used for BF16 storage only;
 * F32 storage takes tanh_fast (the tf32 class's tolerances are 8x tighter than the bf16 class's). */
__device__ __forceinline__ void tanh2_f16(float a, float b, float &ta, float &tb)
{
    __half2 x = __floats2half2_rn(a, b); /* a in the low half */
    uint32_t u = *reinterpret_cast<uint32_t *>(&x), r;
    asm("tanh.approx.f16x2 %0, %1;" : "=r"(r) : "r"(u));
    float2 y = __half22float2(*reinterpret_cast<__half2 *>(&r));
    ta = y.x;
    tb = y.y;
}

/* Which tanh a kernel uses: 0 tanh_accurate, 1 tanh_fast (one MUFU per element),
 * 2 tanh2_f16 (one MUFU per pair). */
enum { TANH_ACCURATE = 0, TANH_F32 = 1, TANH_F16X2 = 2 };

template <int TM>
__device__ __forceinline__ void tanh8(const float (&a)[2][4], float (&z)[8])
{
    if constexpr (TM == TANH_F16X2) {
#pragma unroll
        for (int e = 0; e < 8; e += 2) tanh2_f16(a[e >> 2][e & 3], a[e >> 2][(e & 3) + 1], z[e], z[e + 1]);
    } else {
#pragma unroll
        for (int e = 0; e < 8; e++) z[e] = TM == TANH_F32 ? tanh_fast(a[e >> 2][e & 3]) : tanh_accurate(a[e >> 2][e & 3]);
    }
}

/* ---- bf16 tensor-core product ------------------------------------------------------------
 * D (16x8 fp32) += A (16x16 bf16, row-major) * B (16x8 bf16, "col"), one warp.
 * Fragment layouts (g = lane/4, t = lane%4):
 *   C/D: c0 (g, 2t)  c1 (g, 2t+1)  c2 (g+8, 2t)  c3 (g+8, 2t+1)
 *   A:   a0 = pack(A[g][2t], A[g][2t+1])    a1 = pack(A[g+8][2t], A[g+8][2t+1])
 *        a2 = pack(A[g][2t+8], A[g][2t+9])  a3 = pack(A[g+8][2t+8], A[g+8][2t+9])
 *   B:   b0 = pack(B[2t][g], B[2t+1][g])    b1 = pack(B[2t+8][g], B[2t+9][g])
 * pack(x, y) puts x in the low half. So the fp32 accumulators of two adjacent n-tiles (columns
 * 0-7 and 8-15) are, element for element, the A fragment of the 16x16 matrix they form. */
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1)
{
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* d += a b with the m16n8k8 shape: A is two registers (rows g and g + 8, columns 2t, 2t + 1), B one
 * (rows 2t, 2t + 1, column g). The v8 outer products use it: their A has one nonzero column, and
 * the k16 shape needed two more registers of zeros, which the compiler rebuilt every step. */
__device__ __forceinline__ void mma_bf16_k8(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t b0)
{
    asm("mma.sync.aligned.m16n8k8.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(b0));
}

/* The fp32 values of the low and high bf16 halves of a word: bf16 -> fp32 is a 16-bit shift. */
__device__ __forceinline__ float bf16_lo(uint32_t x) { return __uint_as_float(x << 16); }
__device__ __forceinline__ float bf16_hi(uint32_t x) { return __uint_as_float(x & 0xffff0000u); }

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi)
{
    __nv_bfloat162 p = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&p);
}

/* x ≈ hi + lo with hi = bf16(x), lo = bf16(x - hi): 16 significant bits in two bf16 halves. */
__device__ __forceinline__ void split_bf16(float x0, float x1, uint32_t &hi, uint32_t &lo)
{
    __nv_bfloat162 h = __floats2bfloat162_rn(x0, x1);
    float r0 = x0 - __low2float(h), r1 = x1 - __high2float(h);
    hi = *reinterpret_cast<uint32_t *>(&h);
    lo = pack_bf16(r0, r1);
}

/* Transpose of an 8x8 b16 matrix held in the C-like fragment (row lane/4, cols 2(lane%4)+{0,1}). */
__device__ __forceinline__ uint32_t movmatrix_trans(uint32_t x)
{
    uint32_t y;
    asm("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;" : "=r"(y) : "r"(x));
    return y;
}

/* ---- async copies (sm_80+) -------------------------------------------------------------- */

__device__ __forceinline__ void cp_async4(void *smem_dst, const void *gmem_src)
{
    unsigned s = (unsigned)__cvta_generic_to_shared(smem_dst);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(s), "l"(gmem_src));
}
/* A barrier of `nthr` threads (a multiple of 32) on named barrier `id` (1..15; 0 is __syncthreads'):
 * the barrier of one lane's warps where a block holds several lanes (t1_group). */
__device__ __forceinline__ void bar_sync_named(int id, int nthr) { asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(nthr) : "memory"); }

/* The block's dynamic shared memory in bytes (the launch's third parameter). */
__device__ __forceinline__ unsigned dynamic_smem_bytes()
{
    unsigned r;
    asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(r));
    return r;
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;"); }
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N)); }

__device__ __forceinline__ void cp_async16(void *smem_dst, const void *gmem_src)
{
    unsigned s = (unsigned)__cvta_generic_to_shared(smem_dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(s), "l"(gmem_src));
}

/* One async copy of UNIT bytes (16 or 4). */
template <int UNIT> __device__ __forceinline__ void cp_async_unit(void *smem_dst, const void *gmem_src)
{
    if constexpr (UNIT == 16) cp_async16(smem_dst, gmem_src);
    else cp_async4(smem_dst, gmem_src);
}

/* ntok rows of row_bytes, row r from src + r*stride_bytes to dst + r*dst_bytes, in copies of UNIT
 * bytes (16 or 4; the caller checked the alignment). Each thread keeps one column of copies
 * (vec = tid % vecs) and walks the rows with pointers, so no index is divided per copy; with a
 * compile-time row width (the v6 kernels' t1_k) even the one division per call folds away. */
template <int UNIT>
__device__ __forceinline__ void stage_rows_in(char *dst, size_t dst_bytes, const char *src, size_t stride_bytes, int ntok,
                                              size_t row_bytes, int tid, int nthr)
{
    const int vecs = (int)(row_bytes / UNIT), rstep = nthr / vecs;
    if (rstep == 0) { /* rows wider than the block (long f32 rows): divide per copy */
        for (int idx = tid; idx < ntok * vecs; idx += nthr) {
            const int r = idx / vecs, v = idx - r * vecs;
            cp_async_unit<UNIT>(dst + (size_t)r * dst_bytes + UNIT * v, src + (size_t)r * stride_bytes + UNIT * v);
        }
        return;
    }
    if (tid >= rstep * vecs) return;
    const int r0 = tid / vecs, vec = tid - r0 * vecs;
    char *d = dst + (size_t)r0 * dst_bytes + (size_t)UNIT * vec;
    const char *s = src + (size_t)r0 * stride_bytes + (size_t)UNIT * vec;
    for (int r = r0; r < ntok; r += rstep, d += rstep * dst_bytes, s += rstep * stride_bytes) cp_async_unit<UNIT>(d, s);
}

/* Whether rows of row_bytes, row r at src + r*stride_bytes (global) and dst + r*dst_bytes (shared),
 * can be staged in 16-byte copies: the rows, both strides and both bases 16-byte aligned. */
__device__ __forceinline__ bool stage_u16(const void *src, size_t stride_bytes, size_t row_bytes, const void *dst, size_t dst_bytes)
{
    return row_bytes % 16 == 0 && stride_bytes % 16 == 0 && dst_bytes % 16 == 0 && (uintptr_t)src % 16 == 0 &&
           __cvta_generic_to_shared(dst) % 16 == 0;
}

/* Copy ntok rows of `width` elements, row r from src + r*stride, into dst + r*dst_stride, with
 * 16-byte async copies where stage_u16 allows them, else 4-byte ones.
 * Requires width*sizeof(T) % 4 == 0 and 4-byte aligned sources. */
template <typename T>
__device__ __forceinline__ void stage_rows_to(T *dst, int64_t dst_stride, const T *src, int ntok, int64_t stride, int width,
                                              int tid, int nthr)
{
    const size_t row_bytes = (size_t)width * sizeof(T), stride_bytes = (size_t)stride * sizeof(T);
    const size_t dst_bytes = (size_t)dst_stride * sizeof(T);
    char *d = reinterpret_cast<char *>(dst);
    const char *s = reinterpret_cast<const char *>(src);
    if (stage_u16(src, stride_bytes, row_bytes, dst, dst_bytes))
        stage_rows_in<16>(d, dst_bytes, s, stride_bytes, ntok, row_bytes, tid, nthr);
    else
        stage_rows_in<4>(d, dst_bytes, s, stride_bytes, ntok, row_bytes, tid, nthr);
}

/* Copy ntok rows of `width` elements, row r from src + r*stride, into dst (rows packed), one copy per
 * index with a division each: the v5 kernels' staging. (stage_rows_to's fixed columns measured slower
 * there: F32 7B forward+backward 16.97 against 14.85 ms in one session, NOTES.md v7; the v6 kernels take
 * stage_rows_to.)
 * Requires width*sizeof(T) % 4 == 0 and 4-byte aligned sources. */
template <typename T>
__device__ __forceinline__ void stage_rows(T *dst, const T *src, int ntok, int64_t stride, int width, int tid, int nthr)
{
    const size_t row_bytes = (size_t)width * sizeof(T), stride_bytes = (size_t)stride * sizeof(T);
    if (stage_u16(src, stride_bytes, row_bytes, dst, row_bytes)) {
        const int vecs = (int)(row_bytes / 16);
        for (int idx = tid; idx < ntok * vecs; idx += nthr) {
            int r = idx / vecs, w = idx - r * vecs;
            cp_async16(reinterpret_cast<char *>(dst) + (size_t)r * row_bytes + 16 * w,
                       reinterpret_cast<const char *>(src) + (size_t)r * stride_bytes + 16 * w);
        }
        return;
    }
    const int words = width * (int)sizeof(T) / 4;
    for (int idx = tid; idx < ntok * words; idx += nthr) {
        int r = idx / words, w = idx - r * words;
        cp_async4(reinterpret_cast<char *>(dst + (int64_t)r * width) + 4 * w,
                  reinterpret_cast<const char *>(src + (int64_t)r * stride) + 4 * w);
    }
}

#endif
