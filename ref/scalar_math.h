/*
 * Scalar functions the reference needs, in double precision, inline so that loops over a row of
 * the state vectorise.
 *
 * Why not libm's tanh: glibc's scalar tanh costs ~27 ns on the CI machines, and the recurrence
 * evaluates B·S·N·K·V of them (33 M for the bench size), which alone would take ~0.45 s on two
 * cores. m2rnn_tanh below is branch-free, vectorises, and is accurate to a few ulp (the test
 * suite compares it with libm's over [-30, 30] and asserts a relative error below 1e-15) — far
 * below anything the golden outputs, rounded to f32/bf16 or compared with tolerances >= 1e-12,
 * can see.
 *
 *   tanh(x) = sign(x) · (-m) / (2 + m),  m = expm1(-2|x|)         (no cancellation near 0)
 *   expm1(u) = 2^j (expm1(r) + 1) - 1,   u = j ln2 + r, |r| <= ln2/2
 *   expm1(r) by its Taylor series to r^13 (|r|^14/14! < 2^-60 for |r| <= 0.347)
 * |x| is capped at 20, where tanh(x) rounds to 1 in double. NaN propagates (no int conversion of
 * NaN happens: j is extracted from the bits of a shifted double).
 */
#ifndef M2RNN_SCALAR_MATH_H
#define M2RNN_SCALAR_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline double m2rnn_expm1_negative(double u) /* u in [-40, 0] or NaN */
{
    const double inv_ln2 = 1.4426950408889634074;
    const double ln2_hi = 6.93147180369123816490e-01; /* ln 2 split so j*ln2_hi is exact */
    const double ln2_lo = 1.90821492927058770002e-10;
    const double shifter = 0x1.8p52; /* adding it rounds to an integer held in the low bits */
    double t = u * inv_ln2 + shifter;
    double j = t - shifter;
    double r = (u - j * ln2_hi) - j * ln2_lo;
    /* expm1(r) = r + r^2/2! + ... + r^13/13!, Horner in r */
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    double em = r + r * r * p;
    /* 2^j from the integer in t's low bits (j in [-58, 0], so the exponent stays normal). */
    uint64_t tb;
    memcpy(&tb, &t, sizeof tb);
    int64_t ji = (int64_t)(tb - 0x4338000000000000ull); /* bits of shifter */
    uint64_t sb = (uint64_t)(ji + 1023) << 52;
    double scale;
    memcpy(&scale, &sb, sizeof scale);
    return scale * em + (scale - 1.0);
}

static inline double m2rnn_tanh(double x)
{
    double ax = fabs(x);
    ax = ax > 20.0 ? 20.0 : ax;
    double m = m2rnn_expm1_negative(-2.0 * ax);
    return copysign(-m / (2.0 + m), x);
}

/* Hot loops that call m2rnn_tanh get a second, AVX2+FMA copy on x86-64 with GCC, chosen at load
 * time by the CPU (function multi-versioning): twice the vector width for the same source. A
 * machine with FMA rounds a·b+c once, not twice, so its last bits differ from one without; every
 * bit-exactness test compares runs on one machine, which this does not affect. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define M2RNN_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define M2RNN_VECTOR_CLONES
#endif

#endif
