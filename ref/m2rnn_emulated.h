/*
 * The M²RNN recurrence computed in an emulated precision class, for calibrating the golden
 * vectors' tolerances (`m2rnn gen`). Not part of the installed API.
 *
 * The reference (m2rnn.c) computes in double and rounds once at the end. A real kernel rounds at
 * many points; this is a second, deliberately plain implementation of SPEC.md §1 that rounds
 * where a kernel of each precision class rounds:
 *
 *   f64   every operation rounded to double                      (a double kernel, another order)
 *   f32   every operation rounded to fp32; outputs fp32          (IEEE fp32 arithmetic)
 *   tf32  fp32, but the operands of the three matrix products (H·W, dA·Wᵀ, H_{t-1}ᵀ·dA) rounded
 *         to tf32 (10 fraction bits) and tanh with a relative error up to 2^-11 (the bound of
 *         the hardware's tanh.approx.f32); outputs fp32
 *   bf16  fp32 arithmetic, the state H rounded to bf16 after every step (forward and the
 *         backward's replay), outputs bf16
 *
 * A variant perturbs this pattern the way another honest kernel of the same class would: a
 * different summation order (reversed), fused multiply-adds (one rounding per accumulation step),
 * every rounding nudged by up to one unit in the last place at random (the effect of another
 * blocking or reduction tree), tf32 operands truncated instead of rounded (what tensor cores do
 * with raw fp32 data), bf16 matrix-product operands, per-head gradients rounded to the storage
 * dtype before the shared-head reduction. The generator runs several variants per class and sets
 * each tolerance from the largest error it sees.
 *
 * Arguments are as for m2rnn_recurrence_{forward,backward}_ref (validated the same way); output
 * tensors may have any float dtype, and get the class's output values (already rounded to the
 * class's output dtype) widened to that dtype.
 */
#ifndef M2RNN_EMULATED_H
#define M2RNN_EMULATED_H

#include <stdbool.h>
#include <stdint.h>

#include "m2rnn/recurrence.h"

typedef enum { M2RNN_EMU_F64 = 0, M2RNN_EMU_F32 = 1, M2RNN_EMU_TF32 = 2, M2RNN_EMU_BF16 = 3, M2RNN_EMU_COUNT } m2rnn_emu_class;

typedef struct {
    m2rnn_emu_class cls;
    bool perturb;         /* nudge every rounding by up to 1 ulp (seeded) */
    bool reverse;         /* sum every dot product in reverse order */
    bool fused;           /* accumulate a·b exactly, one rounding per step (FMA) */
    bool tf32_truncate;   /* tf32: truncate product operands instead of rounding them */
    bool bf16_operands;   /* bf16: round matrix-product operands to bf16 (bf16 tensor cores) */
    bool approx_tanh;     /* relative error up to 2^-11 in tanh (always on in tf32) */
    bool reduce_in_storage; /* bf16: per-head gradients rounded to bf16 before the head reduction */
    uint64_t seed;
} m2rnn_emu_config;

/* "f64", "f32", "tf32", "bf16"; and back (-1 if unknown). */
const char *m2rnn_emu_class_name(m2rnn_emu_class cls);
int m2rnn_emu_class_from_name(const char *name);

/* A one-line description of a variant, e.g. "f32 reversed fused perturbed(seed 3)". */
void m2rnn_emu_describe(const m2rnn_emu_config *cfg, char *buf, size_t size);

m2rnn_status m2rnn_recurrence_forward_emulated(const m2rnn_recurrence_forward_args *args, const m2rnn_emu_config *cfg);
m2rnn_status m2rnn_recurrence_backward_emulated(const m2rnn_recurrence_backward_args *args, const m2rnn_emu_config *cfg);

#endif
