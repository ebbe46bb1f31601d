/*
 * The safetensors reader and writer: round trips of every dtype, and a reader that rejects
 * truncated, corrupted, oversized and hostile files with M2RNN_ERR_FORMAT and a message — never
 * a crash (Check runs each test in its own process, so a crash is a failure, not a hang).
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "m2rnn/safetensors.h"

/* A file image from a header string and a data section of data_size bytes (value = index). */
static unsigned char *image(const char *header, size_t data_size, size_t *size)
{
    size_t hl = strlen(header);
    *size = 8 + hl + data_size;
    unsigned char *b = malloc(*size);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, header, hl);
    for (size_t i = 0; i < data_size; i++) b[8 + hl + i] = (unsigned char)i;
    return b;
}

/* Parse a header + data; return the status (and free whatever was read). */
static m2rnn_status parse_header(const char *header, size_t data_size)
{
    size_t size;
    unsigned char *b = image(header, data_size, &size);
    m2rnn_safetensors st;
    m2rnn_clear_error();
    m2rnn_status s = m2rnn_safetensors_parse(b, size, &st);
    if (s) ck_assert_msg(m2rnn_last_error()[0] != '\0', "a rejection must come with a message");
    m2rnn_safetensors_free(&st);
    free(b);
    return s;
}

START_TEST(round_trip_every_dtype)
{
    double f64[6] = {1.0, -2.5, 3.25, 0.0, -0.0, 1e300};
    float f32[3] = {1.5f, -7.0f, 1e-30f};
    uint16_t bf16[4] = {m2rnn_f64_to_bf16(1.0), m2rnn_f64_to_bf16(-3.0), 0x7fc0, 0xff80};
    uint16_t f16[2] = {m2rnn_f64_to_f16(0.5), m2rnn_f64_to_f16(65504.0)};
    int32_t i32[5] = {0, 1, -1, INT32_MAX, INT32_MIN};
    int64_t i64[2] = {INT64_MAX, INT64_MIN};
    m2rnn_st_entry e[] = {
        {"a_f64", m2rnn_tensor_of(f64, M2RNN_F64, 2, (int64_t)2, (int64_t)3)},
        {"b_f32", m2rnn_tensor_of(f32, M2RNN_F32, 1, (int64_t)3)},
        {"c_bf16", m2rnn_tensor_of(bf16, M2RNN_BF16, 3, (int64_t)1, (int64_t)2, (int64_t)2)},
        {"d_f16", m2rnn_tensor_of(f16, M2RNN_F16, 1, (int64_t)2)},
        {"e_i32", m2rnn_tensor_of(i32, M2RNN_I32, 1, (int64_t)5)},
        {"f_i64", m2rnn_tensor_of(i64, M2RNN_I64, 1, (int64_t)2)},
        {"g_empty", m2rnn_tensor_of(NULL, M2RNN_F32, 2, (int64_t)0, (int64_t)4)},
        {"h_scalar", m2rnn_tensor_of(f64 + 1, M2RNN_F64, 0)},
    };
    m2rnn_st_meta meta[] = {{"clip_mode", "carry"}, {"quote\"and\\slash", "line\nbreak"}};
    unsigned char *bytes;
    size_t size;
    ck_assert_int_eq(m2rnn_safetensors_encode(e, 8, meta, 2, &bytes, &size), M2RNN_OK);
    ck_assert_msg((size - (6 * 8 + 3 * 4 + 4 * 2 + 2 * 2 + 5 * 4 + 2 * 8 + 8)) % 8 == 0, "data section must be 8-aligned");

    m2rnn_safetensors st;
    ck_assert_msg(m2rnn_safetensors_parse(bytes, size, &st) == M2RNN_OK, "%s", m2rnn_last_error());
    ck_assert_int_eq((int)st.n_tensors, 8);
    for (int i = 0; i < 8; i++) {
        const m2rnn_tensor *t = m2rnn_safetensors_get(&st, e[i].name);
        ck_assert_ptr_nonnull(t);
        ck_assert_int_eq(t->dtype, e[i].tensor.dtype);
        ck_assert_int_eq(t->rank, e[i].tensor.rank);
        for (int d = 0; d < t->rank; d++) ck_assert_int_eq(t->shape[d], e[i].tensor.shape[d]);
        size_t nb = m2rnn_tensor_nbytes(t);
        if (nb) ck_assert_int_eq(memcmp(t->data, e[i].tensor.data, nb), 0);
    }
    ck_assert_str_eq(m2rnn_safetensors_meta(&st, "clip_mode"), "carry");
    ck_assert_str_eq(m2rnn_safetensors_meta(&st, "quote\"and\\slash"), "line\nbreak");
    ck_assert_ptr_null(m2rnn_safetensors_meta(&st, "absent"));
    ck_assert_ptr_null(m2rnn_safetensors_get(&st, "absent"));

    /* Same input, same bytes. */
    unsigned char *again;
    size_t size2;
    ck_assert_int_eq(m2rnn_safetensors_encode(e, 8, meta, 2, &again, &size2), M2RNN_OK);
    ck_assert_int_eq(size, size2);
    ck_assert_int_eq(memcmp(bytes, again, size), 0);
    free(again);
    free(bytes);
    m2rnn_safetensors_free(&st);
}
END_TEST

START_TEST(write_and_read_a_file)
{
    float x[4] = {1, 2, 3, 4};
    m2rnn_st_entry e = {"x", m2rnn_tensor_of(x, M2RNN_F32, 2, (int64_t)2, (int64_t)2)};
    char path[] = "/tmp/m2rnn-st-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(m2rnn_safetensors_write(path, &e, 1, NULL, 0), M2RNN_OK);
    m2rnn_safetensors st;
    ck_assert_int_eq(m2rnn_safetensors_read(path, &st), M2RNN_OK);
    ck_assert_int_eq(((float *)m2rnn_safetensors_get(&st, "x")->data)[3], 4.0f);
    m2rnn_safetensors_free(&st);
    remove(path);
    ck_assert_int_eq(m2rnn_safetensors_read(path, &st), M2RNN_ERR_IO);
    ck_assert_ptr_nonnull(strstr(m2rnn_last_error(), path));
}
END_TEST

/* Hostile headers, each with the data it claims (or not). */
static const struct {
    const char *header;
    size_t data;
    const char *why;
} bad[] = {
    {"", 0, "empty header"},
    {"[]", 0, "not an object"},
    {"\"x\"", 0, "a string"},
    {"{", 0, "unterminated"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x", 4, "trailing garbage"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}{}", 4, "two objects"},
    {"{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4, "unsupported dtype"},
    {"{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "dtype in lower case"},
    {"{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "dtype not a string"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "negative dim"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "fractional dim"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4, "string dim"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4, "shape not a list"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "rank 9"},
    {"{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 0, "byte count overflows"},
    {"{\"a\":{\"dtype\":\"F64\",\"shape\":[9007199254740992,9007199254740992],\"data_offsets\":[0,8]}}", 8, "huge dims"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,4]}}", 4, "dim 1e300"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "size mismatch"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, "reversed offsets"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, "one offset"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4, "three offsets"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, "negative offset"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0, "offsets past the end"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[18446744073709551612,18446744073709551616]}}", 4, "offsets near 2^64"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "a hole at the start"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, "a hole between"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "an overlap"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "trailing data bytes"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "duplicate name"},
    {"{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "empty name"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}", 4, "unknown key"},
    {"{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "duplicate key"},
    {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "missing dtype"},
    {"{\"a\":[1,2,3]}", 0, "entry not an object"},
    {"{\"__metadata__\":{\"k\":1}}", 0, "metadata value not a string"},
    {"{\"__metadata__\":[\"k\"]}", 0, "metadata not an object"},
    {"{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, "duplicate metadata key"},
    {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, "two metadata entries"},
};

START_TEST(rejects_hostile_header)
{
    m2rnn_status s = parse_header(bad[_i].header, bad[_i].data);
    ck_assert_msg(s == M2RNN_ERR_FORMAT, "%s: expected a format error, got %d (%s)", bad[_i].why, (int)s, m2rnn_last_error());
}
END_TEST

START_TEST(accepts_edge_cases)
{
    ck_assert_int_eq(parse_header("{}", 0), M2RNN_OK);
    ck_assert_int_eq(parse_header("{\"__metadata__\":{}}   ", 0), M2RNN_OK);
    /* JSON order need not be offset order; zero-size tensors may sit anywhere. */
    ck_assert_int_eq(parse_header("{\"b\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[4,8]},"
                                  "\"z\":{\"dtype\":\"F64\",\"shape\":[0,3],\"data_offsets\":[4,4]},"
                                  "\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8), M2RNN_OK);
}
END_TEST

START_TEST(rejects_bad_lengths)
{
    m2rnn_safetensors st;
    unsigned char b[16] = {0};
    for (size_t n = 0; n < 8; n++) ck_assert_int_eq(m2rnn_safetensors_parse(b, n, &st), M2RNN_ERR_FORMAT);
    ck_assert_int_eq(m2rnn_safetensors_parse(b, 16, &st), M2RNN_ERR_FORMAT); /* length 0 */
    uint64_t lens[] = {9, 1ull << 40, UINT64_MAX, (uint64_t)M2RNN_SAFETENSORS_MAX_HEADER + 1};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        for (int k = 0; k < 8; k++) b[k] = (unsigned char)(lens[i] >> (8 * k));
        memset(b + 8, ' ', 8);
        ck_assert_int_eq(m2rnn_safetensors_parse(b, 16, &st), M2RNN_ERR_FORMAT);
    }
    /* A NUL inside the header. */
    size_t size;
    unsigned char *img = image("{}  ", 0, &size);
    img[10] = '\0';
    ck_assert_int_eq(m2rnn_safetensors_parse(img, size, &st), M2RNN_ERR_FORMAT);
    free(img);
    /* Deep nesting: cJSON's nesting limit turns it into a parse error, not a stack overflow. */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 1);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[2 * depth] = '\0';
    ck_assert_int_eq(parse_header(deep, 0), M2RNN_ERR_FORMAT);
    free(deep);
}
END_TEST

/* A valid file of several tensors, for truncation and corruption. */
static unsigned char *valid_file(size_t *size)
{
    static float a[6] = {1, 2, 3, 4, 5, 6};
    static uint16_t b[3] = {1, 2, 3};
    static int64_t c[2] = {7, 8};
    m2rnn_st_entry e[] = {
        {"a", m2rnn_tensor_of(a, M2RNN_F32, 2, (int64_t)2, (int64_t)3)},
        {"b", m2rnn_tensor_of(b, M2RNN_BF16, 1, (int64_t)3)},
        {"c", m2rnn_tensor_of(c, M2RNN_I64, 1, (int64_t)2)},
    };
    m2rnn_st_meta meta[] = {{"k", "v"}};
    unsigned char *bytes;
    ck_assert_int_eq(m2rnn_safetensors_encode(e, 3, meta, 1, &bytes, size), M2RNN_OK);
    return bytes;
}

START_TEST(rejects_every_truncation)
{
    size_t size;
    unsigned char *full = valid_file(&size);
    m2rnn_safetensors st;
    for (size_t n = 0; n < size; n++) {
        /* A copy of exactly n bytes, so that a read past it is a heap overflow (valgrind/ASan). */
        unsigned char *cut = malloc(n ? n : 1);
        memcpy(cut, full, n);
        m2rnn_status s = m2rnn_safetensors_parse(cut, n, &st);
        ck_assert_msg(s == M2RNN_ERR_FORMAT, "a file cut to %zu of %zu bytes was accepted", n, size);
        free(cut);
    }
    ck_assert_int_eq(m2rnn_safetensors_parse(full, size, &st), M2RNN_OK);
    m2rnn_safetensors_free(&st);
    free(full);
}
END_TEST

START_TEST(survives_random_corruption)
{
    size_t size;
    unsigned char *full = valid_file(&size);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    int accepted = 0;
    for (int trial = 0; trial < 20000; trial++) {
        unsigned char *c = malloc(size);
        memcpy(c, full, size);
        int flips = 1 + trial % 4;
        for (int k = 0; k < flips; k++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            /* Most corruption goes into the header, where it matters. */
            size_t at = (x >> 8) % (trial % 3 ? 8 + 96 : size);
            if (at >= size) at = size - 1;
            c[at] = (unsigned char)(x >> 40);
        }
        m2rnn_safetensors st;
        m2rnn_status s = m2rnn_safetensors_parse(c, size, &st);
        ck_assert_msg(s == M2RNN_OK || s == M2RNN_ERR_FORMAT, "status %d", (int)s);
        if (s == M2RNN_OK) {
            accepted++;
            /* Whatever was accepted must be self-consistent. */
            for (size_t i = 0; i < st.n_tensors; i++) ck_assert_int_ge(m2rnn_tensor_numel(&st.tensors[i].tensor), 0);
        }
        m2rnn_safetensors_free(&st);
        free(c);
    }
    ck_assert_int_lt(accepted, 20000);
    free(full);
}
END_TEST

START_TEST(writer_refuses_bad_entries)
{
    float x = 1;
    m2rnn_st_entry e[] = {{"__metadata__", m2rnn_tensor_of(&x, M2RNN_F32, 1, (int64_t)1)}};
    unsigned char *bytes;
    size_t size;
    ck_assert_int_eq(m2rnn_safetensors_encode(e, 1, NULL, 0, &bytes, &size), M2RNN_ERR_ARG);
    e[0].name = "";
    ck_assert_int_eq(m2rnn_safetensors_encode(e, 1, NULL, 0, &bytes, &size), M2RNN_ERR_ARG);
    e[0].name = "x";
    e[0].tensor.dtype = M2RNN_DTYPE_INVALID;
    ck_assert_int_eq(m2rnn_safetensors_encode(e, 1, NULL, 0, &bytes, &size), M2RNN_ERR_ARG);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("reader_writer");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, round_trip_every_dtype);
    tcase_add_test(tc, write_and_read_a_file);
    tcase_add_loop_test(tc, rejects_hostile_header, 0, (int)(sizeof bad / sizeof bad[0]));
    tcase_add_test(tc, accepts_edge_cases);
    tcase_add_test(tc, rejects_bad_lengths);
    tcase_add_test(tc, rejects_every_truncation);
    tcase_add_test(tc, survives_random_corruption);
    tcase_add_test(tc, writer_refuses_bad_entries);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
