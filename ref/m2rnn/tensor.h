/*
 * Tensors: a pointer, a dtype and a contiguous row-major shape.
 *
 * A tensor does not own its memory. A tensor whose data is NULL is "absent": that is how an
 * optional argument (h0, dht, cu_seqlens, ...) is left out. Tensors handed to a host backend (the
 * reference) live in host memory; tensors handed to a device backend live in memory that backend's
 * alloc() returned, except where an argument struct says otherwise (cu_seqlens is always host memory).
 *
 * Floating-point conversions are exact in the widening direction and round once, to nearest-even,
 * in the narrowing direction (double -> bf16 is a single rounding, never double -> float -> bf16).
 * NaN stays NaN (quiet, sign kept), infinities stay infinite, overflow rounds to infinity.
 */
#ifndef M2RNN_TENSOR_H
#define M2RNN_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "m2rnn/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    M2RNN_DTYPE_INVALID = 0,
    M2RNN_F64 = 1,
    M2RNN_F32 = 2,
    M2RNN_BF16 = 3,
    M2RNN_F16 = 4,
    M2RNN_I32 = 5,
    M2RNN_I64 = 6
} m2rnn_dtype;

#define M2RNN_MAX_RANK 8

typedef struct {
    void *data;                     /* NULL: the tensor is absent */
    m2rnn_dtype dtype;
    int rank;                       /* 0 .. M2RNN_MAX_RANK */
    int64_t shape[M2RNN_MAX_RANK];  /* row-major, contiguous */
} m2rnn_tensor;

/* Bytes per element (0 for an invalid dtype). */
size_t m2rnn_dtype_size(m2rnn_dtype dtype);
/* The safetensors name: "F64", "F32", "BF16", "F16", "I32", "I64" ("?" if invalid). */
const char *m2rnn_dtype_name(m2rnn_dtype dtype);
/* Parses a name as above (case-insensitive; "f64", "fp32", "bfloat16" also work); INVALID if unknown. */
m2rnn_dtype m2rnn_dtype_from_name(const char *name);
static inline bool m2rnn_dtype_is_float(m2rnn_dtype d) { return d >= M2RNN_F64 && d <= M2RNN_F16; }
static inline bool m2rnn_dtype_is_int(m2rnn_dtype d) { return d == M2RNN_I32 || d == M2RNN_I64; }

/* A tensor over data with the given shape (rank <= M2RNN_MAX_RANK). */
m2rnn_tensor m2rnn_tensor_make(void *data, m2rnn_dtype dtype, int rank, const int64_t *shape);
/* Same, shape given inline: m2rnn_tensor_of(p, M2RNN_F32, 3, (int64_t)B, (int64_t)S, (int64_t)N). */
m2rnn_tensor m2rnn_tensor_of(void *data, m2rnn_dtype dtype, int rank, ...);
static inline bool m2rnn_tensor_present(const m2rnn_tensor *t) { return t && t->data != NULL; }

/* Number of elements, or -1 if the product overflows int64 (or a dimension is negative). */
int64_t m2rnn_tensor_numel(const m2rnn_tensor *t);
/* Bytes of data, or 0 with M2RNN_ERR_OVERFLOW recorded if it does not fit in size_t. */
size_t m2rnn_tensor_nbytes(const m2rnn_tensor *t);
/* "(2,1024,16,64)" into buf; returns buf. */
const char *m2rnn_shape_string(const m2rnn_tensor *t, char *buf, size_t size);

/* Element i as a double (exact for every float dtype and for integers up to 2^53). */
double m2rnn_tensor_get(const m2rnn_tensor *t, int64_t i);
/* Store x at element i, rounded once to the tensor's dtype (integers: truncated toward zero). */
void m2rnn_tensor_set(m2rnn_tensor *t, int64_t i, double x);
/* Whole-tensor conversions to and from a double array of numel elements. */
void m2rnn_tensor_to_f64(const m2rnn_tensor *t, double *dst);
void m2rnn_tensor_from_f64(m2rnn_tensor *t, const double *src);

/* Scalar conversions (bit patterns for the 16-bit formats). */
uint16_t m2rnn_f64_to_bf16(double x);
double m2rnn_bf16_to_f64(uint16_t bits);
uint16_t m2rnn_f64_to_f16(double x);
double m2rnn_f16_to_f64(uint16_t bits);
/* x rounded to the nearest value of dtype and widened back (the identity for F64). */
double m2rnn_round_to(m2rnn_dtype dtype, double x);

#ifdef __cplusplus
}
#endif
#endif
