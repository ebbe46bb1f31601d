/*
 * Golden vectors: the case catalogue, the file layout, the error metrics, the manifest and the
 * checker, shared by `m2rnn gen`, `m2rnn check` and the tests.
 *
 * One case = one safetensors file holding
 *   inputs   q k v W f [h0] [cu_seqlens] dy [dht]   in the case's storage dtype (cu_seqlens I32)
 *   expected y ht dq dk dv dW df dh0                 F64, the reference on exactly those inputs
 *   metadata id, clip_mode (none|carry|total), clip, regime, storage, generator
 * and one entry in MANIFEST.json with, per output and precision class, the tolerance on the
 * relative L2 error and on the normalised max error, and where the numbers came from.
 */
#ifndef M2RNN_TOOLS_VECTORS_H
#define M2RNN_TOOLS_VECTORS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "m2rnn/m2rnn.h"
#include "m2rnn/safetensors.h"

#define VEC_SCHEMA_NAME "m2rnn-golden-vectors"
#define VEC_SCHEMA_VERSION 2
#define VEC_GENERATOR_VERSION "3"

/* The precision classes, in manifest order. */
#define VEC_N_CLASSES 4
#define VEC_MAX_TENSORS 24 /* named tensors of a layer case, each way */
extern const char *const vec_class_names[VEC_N_CLASSES]; /* "f64", "f32", "tf32", "bf16" */
int vec_class_index(const char *name);                    /* -1 if unknown */
/* The dtype a backend of the class writes its outputs in. */
m2rnn_dtype vec_class_output_dtype(int cls);

/* The outputs, in file order. */
enum { VEC_Y, VEC_HT, VEC_DQ, VEC_DK, VEC_DV, VEC_DW, VEC_DF, VEC_DH0, VEC_N_OUTPUTS };
extern const char *const vec_output_names[VEC_N_OUTPUTS];
/* The inputs, in file order. */
enum { VEC_Q, VEC_K, VEC_V, VEC_W, VEC_F, VEC_H0, VEC_CU, VEC_DYIN, VEC_DHT, VEC_N_INPUTS };
extern const char *const vec_input_names[VEC_N_INPUTS];

typedef enum { VEC_MODEL_INIT, VEC_GENERIC, VEC_NON_CONTRACTIVE } vec_regime;
const char *vec_regime_name(vec_regime r);

/* ---- the catalogue ---------------------------------------------------------------------- */

#define VEC_MAX_SEQS 8
typedef struct {
    const char *tag;       /* what the case is for, one word; part of the id */
    int batch, seqlen;     /* dense; seqlen 0 with n_seqs > 0 means varlen */
    int n_seqs, seqs[VEC_MAX_SEQS];
    int K, V, Nq, Nk, Nv, Nf, Nw;
    m2rnn_dtype storage;   /* M2RNN_F32 or M2RNN_BF16 */
    vec_regime regime;
    bool h0, dht;
    m2rnn_clip_mode clip_mode;
    double clip;
    const char *flags;     /* extra flags, space-separated */
    const char *comment;
} vec_spec;

const vec_spec *vec_catalogue(size_t *n);
/* The stable id of a case: op + every parameter, e.g.
 * "recurrence.B2xS33.K9.V9.H2-2-2-2-2.f32.generic.h0.dht.k9v9". */
void vec_case_id(const vec_spec *s, char *buf, size_t size);
/* All flags of a case (derived from its parameters, plus spec->flags), space-separated. */
void vec_case_flags(const vec_spec *s, char *buf, size_t size);

/* ---- a case in memory ------------------------------------------------------------------- */

typedef struct {
    char id[256];
    m2rnn_safetensors file;  /* owns the tensors when loaded from a file */
    m2rnn_tensor in[VEC_N_INPUTS];   /* absent ones have data NULL */
    m2rnn_tensor out[VEC_N_OUTPUTS]; /* expected, F64; ht/dh0 always present */
    m2rnn_clip_mode clip_mode;
    double clip;
    m2rnn_dtype storage;
    void *owned[VEC_N_INPUTS + VEC_N_OUTPUTS]; /* buffers of a generated case */
} vec_case;

/* Make a case's inputs (deterministic in the spec), run the reference for its expected outputs. */
m2rnn_status vec_case_generate(const vec_spec *s, vec_case *c);
/* Read a case file. */
m2rnn_status vec_case_load(const char *path, vec_case *c);
/* Encode a case (inputs, expected outputs, metadata) as a safetensors image. */
m2rnn_status vec_case_encode(const vec_case *c, const vec_spec *s, unsigned char **bytes, size_t *size);
void vec_case_free(vec_case *c);

/* Argument structs over a case's inputs, with the given output tensors. */
void vec_forward_args(const vec_case *c, m2rnn_recurrence_forward_args *a);
void vec_backward_args(const vec_case *c, m2rnn_recurrence_backward_args *a);

/* ---- metrics ---------------------------------------------------------------------------- */

typedef struct {
    double rel_l2;      /* ‖out − ref‖₂ / ‖ref‖₂ (absolute when ref is all zero) */
    double max_norm;    /* max|out − ref| / max|ref| (absolute when ref is all zero) */
    int64_t nonfinite_mismatch; /* elements where NaN/±Inf differ between out and ref */
    int64_t first_mismatch;     /* index of the first, or -1 */
} vec_errors;

/* Errors of out (any float dtype, host memory) against ref (F64), n elements each. */
vec_errors vec_measure(const m2rnn_tensor *out, const double *ref, int64_t n);

/* ---- the manifest ----------------------------------------------------------------------- */

typedef struct {
    bool present;       /* false: the case is not checked in this class */
    double rel_l2, max_norm;
} vec_tolerance;

typedef struct {
    char *id, *file, *sha256, *flags, *comment, *storage;
    /* why a class is not checked, NULL when it is */
    char *not_checked[VEC_N_CLASSES];
    vec_tolerance tol[VEC_N_OUTPUTS][VEC_N_CLASSES]; /* the recurrence's outputs */
    char *op;           /* "recurrence" (also when absent), or a layer op's name */
    /* A layer case's tolerances, by output name (the recurrence's are in tol). */
    int n_named;
    char *named[VEC_MAX_TENSORS];
    vec_tolerance named_tol[VEC_MAX_TENSORS][VEC_N_CLASSES];
} vec_manifest_case;

typedef struct {
    vec_manifest_case *cases;
    size_t n_cases;
} vec_manifest;

m2rnn_status vec_manifest_load(const char *dir, vec_manifest *m);
void vec_manifest_free(vec_manifest *m);

/* ---- sha256 ----------------------------------------------------------------------------- */

void vec_sha256_hex(const void *data, size_t size, char hex[65]);
/* The sha256 of a file; M2RNN_ERR_IO if it cannot be read. */
m2rnn_status vec_sha256_file(const char *path, char hex[65]);

/* ---- the checker ------------------------------------------------------------------------ */

/* The outcome of one op of one case in one class. */
typedef enum { VEC_PASS, VEC_FAIL, VEC_SKIP } vec_verdict;

typedef struct {
    vec_verdict verdict;
    char reason[512];               /* for FAIL and SKIP */
    int n_outputs;
    int outputs[VEC_N_OUTPUTS];     /* which outputs this op has */
    vec_errors err[VEC_N_OUTPUTS];  /* the worse of the two calls */
    vec_tolerance tol[VEC_N_OUTPUTS];
    bool deterministic;             /* both calls gave the same bits */
} vec_result;

typedef enum { VEC_OP_FORWARD = 0, VEC_OP_BACKWARD = 1 } vec_op;

/* Run op of the case on a backend in class cls against the tolerances of mc: poison the outputs
 * with NaN, surround them with guard zones, call twice, compare both calls (and the untouched
 * inputs and guards). Device backends get their tensors through alloc/upload/download. */
void vec_check(const m2rnn_backend *be, const vec_case *c, const vec_manifest_case *mc, int cls, vec_op op,
               vec_result *r);


/* ==== the layer ops (everything but the recurrence): named tensors + a per-op descriptor ====
 *
 * A layer case holds named input tensors (as the op's args struct names them: "x", "W", "bias",
 * "cu_seqlens", "dy", ...), named expected outputs (F64: "y", "dx", "dW", ...) and the op's
 * parameters. The descriptor of its op (tools/opcases.c) says which outputs the forward writes
 * (the rest belong to the backward), which inputs only the backward reads, and how to build the
 * op's args struct from named tensors and call it on a backend. The checker and the generator
 * know nothing else about the op. */


/* Every parameter any layer op takes; stored in the file's metadata as "params". */
typedef struct {
    int activation;              /* conv1d: M2RNN_ACT_NONE / M2RNN_ACT_SILU */
    double eps;                  /* rmsnorm, the blocks */
    int rope;                    /* attention */
    double rope_theta, scale;    /* attention, gdn (0: the default) */
    int l2norm_qk;               /* gdn */
    int has_ignore;              /* cross-entropy */
    int64_t ignore_index;
    int64_t heads, q_heads, k_heads, f_heads, w_heads, key_dim, value_dim, kv_heads, head_dim; /* block configs */
    int clip_mode;               /* m2rnn block backward */
    double clip;
} vec_params;

typedef struct {
    char name[32];
    m2rnn_tensor t;
} vec_named;

/* A set of named tensors; lookups of absent names give an empty tensor (data NULL). */
typedef struct {
    int n;
    vec_named item[2 * VEC_MAX_TENSORS];
} vec_io;
m2rnn_tensor vec_io_get(const vec_io *io, const char *name);

struct vec_opcase;

typedef struct vec_opdesc {
    const char *name;            /* "conv1d", "rmsnorm", ... (the manifest's "op") */
    m2rnn_op forward_op, backward_op;
    const char *forward_outputs; /* space-separated; every other output is the backward's */
    const char *backward_inputs; /* inputs only the backward reads (dy, ...) */
    const char *host_inputs;     /* integer inputs that stay in host memory (cu_seqlens, ids, ...) */
    /* Build the args struct from io and params; if probe, only answer whether the backend has and
     * supports the op (into *supported), else call it through the dispatcher. */
    m2rnn_status (*call)(const m2rnn_backend *be, bool backward, const vec_io *io, const vec_params *p,
                         bool probe, bool *supported);
    /* Which tolerance classes the generic emulation is honest for (bitmask over the classes);
     * the manifest says why the others are not checked. */
    unsigned classes;
    const char *not_emulated;    /* why, for the classes outside the mask */
    /* NULL: the generic emulation; else the op's own, run on the perturbed F64 inputs into F64
     * outputs (parallel to c->out) for class cls, and what it does (for the provenance). */
    m2rnn_status (*emulate_steps)(const struct vec_opcase *c, const vec_named *ins, const vec_named *outs, int cls);
    const char *emulation;
} vec_opdesc;

const vec_opdesc *vec_opdesc_find(const char *name);   /* NULL if unknown */
const vec_opdesc *vec_opdescs(size_t *n);
bool vec_name_in(const char *spaced, const char *name); /* name is a word of spaced */

typedef struct {
    const char *op, *tag;
    m2rnn_dtype storage;
    int batch, seqlen, n_seqs, seqs[VEC_MAX_SEQS]; /* dense B×S, or packed (n_seqs > 0) */
    int dim, dim2, kernel, heads, kv_heads, head_dim, vocab; /* meaning per op (opcases.c) */
    bool bias, state, square;
    double data_scale;           /* scale of the "x" data (1 if 0): overflow cases */
    int ignore_every;            /* cross-entropy: every n-th target is the ignore index (0: none) */
    vec_params params;
    const char *flags, *comment;
} vec_op_spec;

const vec_op_spec *vec_op_catalogue(size_t *n);
void vec_op_case_id(const vec_op_spec *s, char *buf, size_t size);
void vec_op_case_flags(const vec_op_spec *s, char *buf, size_t size);
void vec_op_case_file(const vec_op_spec *s, char *buf, size_t size);

typedef struct vec_opcase {
    char id[256];
    const vec_opdesc *op;
    vec_params params;
    m2rnn_dtype storage;
    m2rnn_safetensors file;
    int n_in, n_out;
    vec_named in[VEC_MAX_TENSORS], out[VEC_MAX_TENSORS]; /* out: expected, F64 */
    void *owned[2 * VEC_MAX_TENSORS];
    int n_owned;
} vec_opcase;

m2rnn_status vec_opcase_generate(const vec_op_spec *s, vec_opcase *c);
m2rnn_status vec_opcase_load(const char *path, vec_opcase *c);
m2rnn_status vec_opcase_encode(const vec_opcase *c, const vec_op_spec *s, unsigned char **bytes, size_t *size);
void vec_opcase_free(vec_opcase *c);
/* The case's op run by the reference in double on F64 copies of its inputs, each float input
 * element multiplied by (1 + δ), δ uniform in [-rel, rel] (seeded; rel 0: no perturbation);
 * outputs (same names/order as c->out) rounded to out_dtype and returned widened, in out[]. */
m2rnn_status vec_opcase_emulate(const vec_opcase *c, int cls, double rel, uint64_t seed, m2rnn_dtype out_dtype, double **out);

/* The rounding model of a layer case, computed from its op and parameters (opcases.c states the
 * rule): the longest reduction into one output, the rounding stages on the longest dependency
 * path to an output within one token (forward stages, then their adjoints), how many of those
 * stages round at the class's low precision in the tf32 class (matrix-product operands,
 * approximate transcendental functions), and the stage chain in words. */
typedef struct {
    int reduction, stages, low_stages;
    char chain[320];
} vec_rounding;
void vec_op_rounding(const vec_op_spec *s, vec_rounding *r);
int vec_rounding_depth(const vec_rounding *r); /* reduction + stages */
/* The relative input perturbation emulating class cls (0 f64, 1 f32, 2 tf32, 3 bf16). */
double vec_rounding_rel(const vec_rounding *r, int cls);

/* With cls >= 0 and an op that has emulate_steps (GDN, the block), that runs instead of the plain reference
 * on the perturbed inputs: the recurrence token by token, its state rounded as class cls holds it
 * between steps (cls < 0: the plain reference). */
m2rnn_status vec_gdn_emulate_steps(const vec_opcase *c, const vec_named *ins, const vec_named *outs, int cls);
/* The same for the M²RNN block: the block token by token (ht / conv_state_out fed back as h0 /
 * conv_state0), the recurrent state and the conv state rounded after every token (forward), the
 * carried dht and dconv_state after every token (backward), the parameter gradients summed. */
m2rnn_status vec_block_emulate_steps(const vec_opcase *c, const vec_named *ins, const vec_named *outs, int cls);
/* Whether output i of the case belongs to the backward. */
bool vec_opcase_is_backward(const vec_opcase *c, int i);

/* The result of one direction of a layer case; outputs in c->out order. */
typedef struct {
    vec_verdict verdict;
    char reason[512];
    int n_outputs;
    int outputs[VEC_MAX_TENSORS];          /* indices into c->out */
    vec_errors err[VEC_MAX_TENSORS];
    vec_tolerance tol[VEC_MAX_TENSORS];
    bool deterministic;
} vec_op_result;

void vec_op_check(const m2rnn_backend *be, const vec_opcase *c, const vec_manifest_case *mc, int cls, bool backward,
                  vec_op_result *r);

#endif
