/*
 * Mutants: deliberately broken M²RNN kernels, each one a bug class that real kernels have shipped
 * (or that is one keystroke away), exposed as backend tables. The vectors must kill every one of
 * them in every class it is checked in; MUT_NONE is the honest kernel the mutants are made from,
 * and must pass.
 *
 * The kernel computes in fp32 (float variables, libm's tanhf), sums K in tiles of 64 as a GPU
 * kernel does, and reduces shared heads and dW after the per-lane work. With bf16_state it also
 * rounds the state to bf16 after every step (the bf16 class).
 */
#ifndef M2RNN_TESTS_MUTANTS_H
#define M2RNN_TESTS_MUTANTS_H

#include <stdbool.h>

#include "m2rnn/backend.h"

typedef enum {
    MUT_NONE = 0,
    MUT_KTILE_OVERWRITE,    /* K tiles of 64 overwrite y, dv, df instead of adding (K > 64) */
    MUT_ACC_NOT_ZEROED,     /* dW accumulated into the output without zeroing it first */
    MUT_DHT_IGNORED,        /* the backward starts from G = 0 whatever dht is */
    MUT_DW_NOT_REDUCED,     /* dW from the last (sequence, head) program only */
    MUT_DQ_NOT_REDUCED,     /* dq of a shared q head: the last state head's, not the sum */
    MUT_DK_NOT_REDUCED,     /* same for dk */
    MUT_DV_NOT_REDUCED,     /* same for dv */
    MUT_DF_NOT_REDUCED,     /* same for df */
    MUT_SEQSTART_PREV,      /* varlen: a sequence starts from the previous sequence's final state */
    MUT_SEQSTART_ZERO,      /* every sequence starts from zero instead of h0 */
    MUT_FINISHED_LEAK_DW,   /* varlen: finished sequences run on over padding, leaking into dW */
    MUT_HEAD_MOD,           /* state head n reads source head n % Nx instead of n / G */
    MUT_FWD_W_TRANSPOSED,   /* forward: H Wᵀ instead of H W */
    MUT_BWD_W_NOT_TRANSPOSED, /* backward: G = f D + dA W instead of dA Wᵀ */
    MUT_F_SWAPPED,          /* H = (1-f) H + f Z (consistently, forward and backward) */
    MUT_DQ_FROM_HPREV,      /* dq = H_{t-1} dy instead of H_t dy */
    MUT_TANH_DERIV_FROM_H,  /* dA uses 1 - H_t² instead of 1 - Z_t² */
    MUT_CLIP_DH0,           /* dh0 clipped too */
    MUT_CLIP_TOTAL_FOR_CARRY, /* carry mode clips the total D instead of the carry G */
    MUT_CLIP_CARRY_FOR_TOTAL, /* total mode clips the carry G instead of the total D */
    MUT_PADDED_LANES,       /* K and V rounded up to a power of two; the padding is read */
    MUT_MISSING_LAST_STEP,  /* loops stop one step early (t < L-1) */
    MUT_Y_FROM_HPREV,       /* y reads the state before the update */
    MUT_DF_FROM_HCUR,       /* df = Σ D ⊙ (H_t - Z) instead of H_{t-1} */
    MUT_EMPTY_SEQ_ZERO,     /* an empty sequence gives ht = 0 and dh0 = 0, not h0 and dht */
    MUT_BF16_STATE_IN_F32,  /* an fp32 kernel that rounds its state to bf16 every step */
    MUT_F_ROUNDED_BF16,     /* an fp32 kernel that casts the forget gate to bf16 */
    MUT_BF16_DW_ACCUMULATOR, /* bf16 kernel accumulating dW over time in bf16 instead of fp32 */
    MUT_COUNT
} mutant_id;

/* Classes a mutant is checked in (bits: 1 << class index, f64=0 f32=1 tf32=2 bf16=3). */
#define MUT_IN_F32 (1u << 1)
#define MUT_IN_TF32 (1u << 2)
#define MUT_IN_BF16 (1u << 3)

typedef struct {
    const char *name;
    const char *bug;
    unsigned classes;
} mutant_info;

const mutant_info *mutant_describe(mutant_id id);

/* The backend of a mutant: the fp32 kernel (bf16_state false; class "f32") or the bf16-state
 * kernel (class "bf16" for bf16 storage). Static storage. */
const m2rnn_backend *mutant_backend(mutant_id id, bool bf16_state);

#endif
