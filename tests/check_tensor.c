/*
 * Tensors and dtype conversions: bf16/f16 round once to nearest-even straight from double, keep
 * NaN, overflow to infinity, and widen exactly; m2rnn_tanh agrees with libm.
 */
#include <math.h>
#include <string.h>

#include "scalar_math.h"
#include "testutil.h"

static uint32_t float_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

START_TEST(test_bf16_roundtrip_exhaustive)
{
    for (uint32_t b = 0; b < 65536; b++) {
        double x = m2rnn_bf16_to_f64((uint16_t)b);
        uint16_t back = m2rnn_f64_to_bf16(x);
        if (isnan(x)) ck_assert_msg(isnan(m2rnn_bf16_to_f64(back)), "bf16 %04x: NaN lost", b);
        else ck_assert_msg(back == b, "bf16 %04x -> %.17g -> %04x", b, x, back);
    }
}
END_TEST

START_TEST(test_f16_roundtrip_exhaustive)
{
    for (uint32_t b = 0; b < 65536; b++) {
        double x = m2rnn_f16_to_f64((uint16_t)b);
        uint16_t back = m2rnn_f64_to_f16(x);
        if (isnan(x)) ck_assert_msg(isnan(m2rnn_f16_to_f64(back)), "f16 %04x: NaN lost", b);
        else ck_assert_msg(back == b, "f16 %04x -> %.17g -> %04x", b, x, back);
    }
}
END_TEST

/* For inputs that are floats, RNE to bf16 has a classic bit formula: an independent oracle. */
START_TEST(test_bf16_matches_float_oracle)
{
    test_rng r = {42};
    for (int i = 0; i < 200000; i++) {
        float x = (float)(test_uniform(&r, -1, 1) * ldexp(1.0, (int)test_uniform(&r, -140, 128)));
        uint32_t u = float_bits(x);
        uint16_t oracle = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
        ck_assert_msg(m2rnn_f64_to_bf16((double)x) == oracle, "bf16(%a): %04x, oracle %04x", (double)x,
                      m2rnn_f64_to_bf16((double)x), oracle);
    }
}
END_TEST

START_TEST(test_bf16_single_rounding)
{
    /* 1 + 2^-8 + 2^-30 lies just above the midpoint of 1 and 1 + 2^-7. Rounding through float
     * first gives 1 + 2^-8 (a tie) and then 1.0 (ties to even): wrong. Once: 1 + 2^-7. */
    ck_assert_uint_eq(m2rnn_f64_to_bf16(1.0 + 0x1p-8 + 0x1p-30), 0x3f81);
    ck_assert_uint_eq(m2rnn_f64_to_bf16(1.0 + 0x1p-8), 0x3f80);             /* exact tie: to even */
    ck_assert_uint_eq(m2rnn_f64_to_bf16(1.0 + 0x1p-7 + 0x1p-8), 0x3f82);    /* tie: to even (up) */
    ck_assert_uint_eq(m2rnn_f64_to_bf16(-0.0), 0x8000);
    ck_assert_uint_eq(m2rnn_f64_to_bf16(INFINITY), 0x7f80);
    ck_assert_uint_eq(m2rnn_f64_to_bf16(0x1.fep127), 0x7f7f);               /* largest finite */
    ck_assert_uint_eq(m2rnn_f64_to_bf16(0x1.ffp127), 0x7f80);               /* tie above it: inf */
    ck_assert_uint_eq(m2rnn_f64_to_bf16(0x1.fefp127), 0x7f7f);              /* below the tie */
    ck_assert_uint_eq(m2rnn_f64_to_bf16(0x1p-133), 0x0001);                 /* smallest subnormal */
    ck_assert_uint_eq(m2rnn_f64_to_bf16(0x1p-134), 0x0000);                 /* tie with 0: even */
    ck_assert_uint_eq(m2rnn_f64_to_bf16(0x1.8p-134), 0x0001);
    ck_assert(isnan(m2rnn_bf16_to_f64(m2rnn_f64_to_bf16(NAN))));
    ck_assert(isnan(m2rnn_bf16_to_f64(m2rnn_f64_to_bf16(-NAN))));
}
END_TEST

START_TEST(test_f16_edges)
{
    ck_assert_uint_eq(m2rnn_f64_to_f16(65504.0), 0x7bff);
    ck_assert_uint_eq(m2rnn_f64_to_f16(65519.99), 0x7bff);
    ck_assert_uint_eq(m2rnn_f64_to_f16(65520.0), 0x7c00); /* tie above the largest: to inf */
    ck_assert_uint_eq(m2rnn_f64_to_f16(0x1p-24), 0x0001);
    ck_assert_uint_eq(m2rnn_f64_to_f16(0x1p-25), 0x0000);
    ck_assert_uint_eq(m2rnn_f64_to_f16(0x1.8p-25), 0x0001);
    ck_assert_uint_eq(m2rnn_f64_to_f16(-2.0), 0xc000);
    ck_assert_uint_eq(m2rnn_f64_to_f16(1.0 + 0x1p-11 + 0x1p-40), 0x3c01); /* just above a tie */
    ck_assert_uint_eq(m2rnn_f64_to_f16(-INFINITY), 0xfc00);
    ck_assert(isnan(m2rnn_f16_to_f64(m2rnn_f64_to_f16(NAN))));
}
END_TEST

#ifdef __FLT16_MAX__
/* The compiler's _Float16 conversion (IEEE RNE) as an independent oracle. */
START_TEST(test_f16_matches_compiler)
{
    test_rng r = {7};
    for (int i = 0; i < 200000; i++) {
        double x = test_uniform(&r, -1, 1) * ldexp(1.0, (int)test_uniform(&r, -30, 18));
        _Float16 h = (_Float16)x;
        uint16_t oracle;
        memcpy(&oracle, &h, 2);
        ck_assert_msg(m2rnn_f64_to_f16(x) == oracle, "f16(%a): %04x, compiler %04x", x, m2rnn_f64_to_f16(x), oracle);
    }
}
END_TEST
#endif

START_TEST(test_tensor_access_and_names)
{
    float data[6] = {1, 2, 3, 4, 5, 6};
    m2rnn_tensor t = m2rnn_tensor_of(data, M2RNN_F32, 2, (int64_t)2, (int64_t)3);
    ck_assert_int_eq(m2rnn_tensor_numel(&t), 6);
    ck_assert_uint_eq(m2rnn_tensor_nbytes(&t), 24);
    char buf[64];
    ck_assert_str_eq(m2rnn_shape_string(&t, buf, sizeof buf), "(2,3)");
    ck_assert(m2rnn_tensor_get(&t, 4) == 5.0);
    m2rnn_tensor_set(&t, 4, 0.1);
    ck_assert(data[4] == 0.1f);
    m2rnn_tensor big = m2rnn_tensor_of(data, M2RNN_F64, 3, (int64_t)1 << 40, (int64_t)1 << 40, (int64_t)1 << 40);
    ck_assert_int_eq(m2rnn_tensor_numel(&big), -1);
    ck_assert_int_eq(m2rnn_dtype_from_name("bfloat16"), M2RNN_BF16);
    ck_assert_int_eq(m2rnn_dtype_from_name("F32"), M2RNN_F32);
    ck_assert_int_eq(m2rnn_dtype_from_name("float8"), M2RNN_DTYPE_INVALID);
    ck_assert_str_eq(m2rnn_dtype_name(M2RNN_BF16), "BF16");
    ck_assert(m2rnn_round_to(M2RNN_BF16, 1.0 + 0x1p-8 + 0x1p-30) == 1.0 + 0x1p-7);
}
END_TEST

START_TEST(test_tanh_accuracy)
{
    double worst = 0.0;
    for (int i = -3000000; i <= 3000000; i++) {
        double x = i * 1e-5 + i * 1e-12; /* not only grid points */
        double want = tanh(x), got = m2rnn_tanh(x);
        double err = fabs(got - want) / fmax(fabs(want), 1e-300);
        if (err > worst) worst = err;
    }
    ck_assert_msg(worst < 1e-15, "m2rnn_tanh: worst relative error %g over [-30, 30]", worst);
    const double specials[] = {0x1p-1000, 1e-300, 1e-10, 19.999999, 20.0, 20.000001, 710.0, 1e300};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) {
        double x = specials[i];
        ck_assert_msg(fabs(m2rnn_tanh(x) - tanh(x)) <= 1e-15 * fabs(tanh(x)), "tanh(%g)", x);
        ck_assert_msg(m2rnn_tanh(-x) == -m2rnn_tanh(x), "tanh is odd at %g", x);
    }
    ck_assert(m2rnn_tanh(INFINITY) == 1.0 && m2rnn_tanh(-INFINITY) == -1.0);
    ck_assert(isnan(m2rnn_tanh(NAN)));
    ck_assert(m2rnn_tanh(0.0) == 0.0 && signbit(m2rnn_tanh(-0.0)));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("tensor");
    TCase *tc = tcase_create("conversions");
    tcase_add_test(tc, test_bf16_roundtrip_exhaustive);
    tcase_add_test(tc, test_f16_roundtrip_exhaustive);
    tcase_add_test(tc, test_bf16_matches_float_oracle);
    tcase_add_test(tc, test_bf16_single_rounding);
    tcase_add_test(tc, test_f16_edges);
#ifdef __FLT16_MAX__
    tcase_add_test(tc, test_f16_matches_compiler);
#endif
    tcase_add_test(tc, test_tensor_access_and_names);
    tcase_add_test(tc, test_tanh_accuracy);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return run_suite(suite()); }
