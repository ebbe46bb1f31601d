/*
 * The error of ubench.cu's tanh_fma (NOTES.md v15), checked on the CPU over every positive normal
 * float up to 20 (tanh_fma is odd, and beyond its clamp at 5.2 the value is constant) against
 * tanh in double precision. The sequence of fmaf, multiplies and the integer reciprocal guess is
 * the device's, so the CPU's IEEE results are the GPU's (no flush to zero is involved above 2^-126).
 *
 * Build: cc -O2 -o tanh_fma_check tanh_fma_check.c -lm     Run: ./tanh_fma_check   (about a minute)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static float from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static float tanh_fma(float x)
{
    x = fminf(fmaxf(x, -5.2f), 5.2f); /* the device's min/max.NaN also keep NaN */
    const float s = x * x;
    const float p = fmaf(fmaf(0.000651586058924f, s, 0.101795513119f), s, 0.999935523076f);
    const float q = fmaf(fmaf(0.0126301715239f, s, 0.434745066896f), s, 1.0f);
    float r = from_bits(0x7EF311C3u - to_bits(q));
    r = fmaf(r, fmaf(-q, r, 1.0f), r);
    const float y = x * p * r;
    return fmaf(y, fmaf(-q, r, 1.0f), y);
}

int main(void)
{
    double worst = 0, at = 0;
    for (uint32_t u = 0x00800000u; u <= to_bits(20.0f); u++) {
        const float x = from_bits(u);
        const double rel = fabs((double)tanh_fma(x) / tanh((double)x) - 1.0);
        if (rel > worst) { worst = rel; at = x; }
    }
    printf("tanh_fma: max relative error %.3g (2^%.2f) at x = %g\n", worst, log2(worst), at);
    printf("tanh_fma(+inf) = %g, tanh_fma(-0) = %g\n", tanh_fma(INFINITY), tanh_fma(-0.0f));
    return worst < 0x1p-13 ? 0 : 1;
}
