/*
 * Tensors and exact dtype conversions.
 *
 * Narrowing rounds once, to nearest with ties to even, straight from the double: for a format
 * with p fraction bits and minimum normal exponent emin, x is rounded to a multiple of
 * 2^(max(e, emin) - p) where 2^e <= |x| < 2^(e+1); x / 2^k is exact (a power-of-two scaling
 * of a value that stays normal), and rint() rounds it with the default (ties-to-even) mode.
 * Rounding through float first would round twice and is wrong for bf16 in rare ties.
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "m2rnn/tensor.h"

size_t m2rnn_dtype_size(m2rnn_dtype dtype)
{
    switch (dtype) {
    case M2RNN_F64: case M2RNN_I64: return 8;
    case M2RNN_F32: case M2RNN_I32: return 4;
    case M2RNN_BF16: case M2RNN_F16: return 2;
    default: return 0;
    }
}

const char *m2rnn_dtype_name(m2rnn_dtype dtype)
{
    switch (dtype) {
    case M2RNN_F64: return "F64";
    case M2RNN_F32: return "F32";
    case M2RNN_BF16: return "BF16";
    case M2RNN_F16: return "F16";
    case M2RNN_I32: return "I32";
    case M2RNN_I64: return "I64";
    default: return "?";
    }
}

m2rnn_dtype m2rnn_dtype_from_name(const char *name)
{
    static const struct { const char *name; m2rnn_dtype dtype; } names[] = {
        {"f64", M2RNN_F64},   {"float64", M2RNN_F64}, {"fp64", M2RNN_F64},  {"double", M2RNN_F64},
        {"f32", M2RNN_F32},   {"float32", M2RNN_F32}, {"fp32", M2RNN_F32},  {"float", M2RNN_F32},
        {"bf16", M2RNN_BF16}, {"bfloat16", M2RNN_BF16},
        {"f16", M2RNN_F16},   {"float16", M2RNN_F16}, {"fp16", M2RNN_F16},  {"half", M2RNN_F16},
        {"i32", M2RNN_I32},   {"int32", M2RNN_I32},   {"i64", M2RNN_I64},   {"int64", M2RNN_I64},
    };
    if (!name) return M2RNN_DTYPE_INVALID;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(name, names[i].name) == 0) return names[i].dtype;
    return M2RNN_DTYPE_INVALID;
}

m2rnn_tensor m2rnn_tensor_make(void *data, m2rnn_dtype dtype, int rank, const int64_t *shape)
{
    m2rnn_tensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.dtype = dtype;
    t.rank = rank < 0 ? 0 : rank > M2RNN_MAX_RANK ? M2RNN_MAX_RANK : rank;
    for (int i = 0; i < t.rank; i++) t.shape[i] = shape ? shape[i] : 0; /* NULL: all zeros, to be filled */
    return t;
}

m2rnn_tensor m2rnn_tensor_of(void *data, m2rnn_dtype dtype, int rank, ...)
{
    int64_t shape[M2RNN_MAX_RANK] = {0};
    va_list ap;
    va_start(ap, rank);
    for (int i = 0; i < rank && i < M2RNN_MAX_RANK; i++) shape[i] = va_arg(ap, int64_t);
    va_end(ap);
    return m2rnn_tensor_make(data, dtype, rank, shape);
}

int64_t m2rnn_tensor_numel(const m2rnn_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) {
        int64_t d = t->shape[i];
        if (d < 0) return -1;
        if (d != 0 && n > INT64_MAX / d) return -1;
        n *= d;
    }
    return n;
}

size_t m2rnn_tensor_nbytes(const m2rnn_tensor *t)
{
    int64_t n = m2rnn_tensor_numel(t);
    size_t es = m2rnn_dtype_size(t->dtype);
    if (n < 0 || (es && (uint64_t)n > SIZE_MAX / es)) {
        m2rnn_set_error(M2RNN_ERR_OVERFLOW, "tensor size overflows");
        return 0;
    }
    return (size_t)n * es;
}

const char *m2rnn_shape_string(const m2rnn_tensor *t, char *buf, size_t size)
{
    size_t used = 0;
    if (size == 0) return buf;
    buf[0] = '\0';
    used += (size_t)snprintf(buf + used, size - used, "(");
    for (int i = 0; i < t->rank && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ",%lld" : "%lld", (long long)t->shape[i]);
    if (used < size) snprintf(buf + used, size - used, t->rank == 1 ? ",)" : ")");
    return buf;
}

/* ---- scalar conversions ---------------------------------------------------------------- */

/* x rounded to p fraction bits, exponent floor emin, largest finite value max_finite. */
static double round_to_format(double x, int p, int emin, double max_finite)
{
    if (!isfinite(x) || x == 0.0) return x;
    int e;
    frexp(x, &e); /* |x| = m * 2^e, m in [0.5, 1): leading bit is 2^(e-1) */
    int lead = e - 1 < emin ? emin : e - 1;
    double r = ldexp(rint(ldexp(x, p - lead)), lead - p);
    if (fabs(r) > max_finite) return copysign(INFINITY, x);
    return r;
}

static uint32_t float_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bits_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

uint16_t m2rnn_f64_to_bf16(double x)
{
    if (isnan(x)) /* keep sign and top payload bits, force quiet */
        return (uint16_t)((float_bits((float)x) >> 16) | 0x0040u);
    /* bf16: 7 fraction bits, emin -126, max (2 - 2^-7) * 2^127. The rounded value is exact in
     * float, so the conversion below is exact and its top half is the bf16 pattern. */
    double r = round_to_format(x, 7, -126, 0x1.fep127);
    return (uint16_t)(float_bits((float)r) >> 16);
}

double m2rnn_bf16_to_f64(uint16_t bits) { return (double)bits_float((uint32_t)bits << 16); }

uint16_t m2rnn_f64_to_f16(double x)
{
    uint16_t sign = signbit(x) ? 0x8000u : 0u;
    if (isnan(x)) return (uint16_t)(sign | 0x7e00u);
    double r = round_to_format(x, 10, -14, 65504.0);
    double a = fabs(r);
    if (isinf(a)) return (uint16_t)(sign | 0x7c00u);
    if (a < 0x1p-14) /* subnormal (or zero): a multiple of 2^-24 */
        return (uint16_t)(sign | (uint16_t)ldexp(a, 24));
    int e;
    double m = frexp(a, &e); /* a = m 2^e, m in [0.5,1) */
    uint16_t exp_field = (uint16_t)(e - 1 + 15);
    uint16_t frac = (uint16_t)(ldexp(m, 11) - 1024.0);
    return (uint16_t)(sign | (uint16_t)(exp_field << 10) | frac);
}

double m2rnn_f16_to_f64(uint16_t bits)
{
    double sign = (bits & 0x8000u) ? -1.0 : 1.0;
    int exp_field = (bits >> 10) & 0x1f;
    int frac = bits & 0x3ff;
    if (exp_field == 0x1f) return frac ? NAN * sign : sign * INFINITY;
    if (exp_field == 0) return sign * ldexp((double)frac, -24);
    return sign * ldexp(1024.0 + frac, exp_field - 25);
}

double m2rnn_round_to(m2rnn_dtype dtype, double x)
{
    switch (dtype) {
    case M2RNN_F32: return (double)(float)x;
    case M2RNN_BF16: return m2rnn_bf16_to_f64(m2rnn_f64_to_bf16(x));
    case M2RNN_F16: return m2rnn_f16_to_f64(m2rnn_f64_to_f16(x));
    default: return x;
    }
}

/* ---- element access -------------------------------------------------------------------- */

double m2rnn_tensor_get(const m2rnn_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case M2RNN_F64: return ((const double *)t->data)[i];
    case M2RNN_F32: return (double)((const float *)t->data)[i];
    case M2RNN_BF16: return m2rnn_bf16_to_f64(((const uint16_t *)t->data)[i]);
    case M2RNN_F16: return m2rnn_f16_to_f64(((const uint16_t *)t->data)[i]);
    case M2RNN_I32: return (double)((const int32_t *)t->data)[i];
    case M2RNN_I64: return (double)((const int64_t *)t->data)[i];
    default: return NAN;
    }
}

void m2rnn_tensor_set(m2rnn_tensor *t, int64_t i, double x)
{
    switch (t->dtype) {
    case M2RNN_F64: ((double *)t->data)[i] = x; break;
    case M2RNN_F32: ((float *)t->data)[i] = (float)x; break;
    case M2RNN_BF16: ((uint16_t *)t->data)[i] = m2rnn_f64_to_bf16(x); break;
    case M2RNN_F16: ((uint16_t *)t->data)[i] = m2rnn_f64_to_f16(x); break;
    case M2RNN_I32: ((int32_t *)t->data)[i] = (int32_t)x; break;
    case M2RNN_I64: ((int64_t *)t->data)[i] = (int64_t)x; break;
    default: break;
    }
}

void m2rnn_tensor_to_f64(const m2rnn_tensor *t, double *dst)
{
    int64_t n = m2rnn_tensor_numel(t);
    switch (t->dtype) { /* the common cases without a call per element */
    case M2RNN_F64: memcpy(dst, t->data, (size_t)n * sizeof(double)); return;
    case M2RNN_F32: for (int64_t i = 0; i < n; i++) dst[i] = ((const float *)t->data)[i]; return;
    default: for (int64_t i = 0; i < n; i++) dst[i] = m2rnn_tensor_get(t, i);
    }
}

void m2rnn_tensor_from_f64(m2rnn_tensor *t, const double *src)
{
    int64_t n = m2rnn_tensor_numel(t);
    if (t->dtype == M2RNN_F64) { memcpy(t->data, src, (size_t)n * sizeof(double)); return; }
    for (int64_t i = 0; i < n; i++) m2rnn_tensor_set(t, i, src[i]);
}
