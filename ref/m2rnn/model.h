/*
 * A hybrid language model built from a layer-pattern string (SPEC.md §5), forward and backward
 * end to end, and step-wise inference with recurrent states, conv states and KV caches.
 *
 *   x = embed(ids)                                        (B,S,d)
 *   for each character c of the pattern (one layer each):
 *       x = x + Mixer_c(RMSNorm(x; norm1))                 R: M²RNN block (m2rnn_block.h)
 *                                                          G: Gated DeltaNet block (gdn_block.h)
 *                                                          A: attention block (attention.h)
 *       x = x + MLP(RMSNorm(x; norm2))                     SwiGLU (mlp.h), hidden mlp_dim
 *   logits = RMSNorm(x; final_norm) W_headᵀ                untied LM head (vocab, d)
 *   loss = cross_entropy(logits, targets)                  mean over counted tokens (cross_entropy.h)
 *
 * This is a plain library API, not a backend-table op: a model is a container of parameters and
 * states that composes the table's ops; a backend accelerates ops, and a model entry would have to
 * carry a variable-length parameter list through the ABI for no gain. The composition calls the
 * reference entry points (double inside, F64 parameters and activations).
 *
 * Parameters live in one flat F64 buffer (params, num_params doubles); `tensors` names views into
 * it ("embed", "layers.3.norm1", "layers.3.mixer.W_in", ..., "final_norm", "head") in buffer
 * order, so a gradient buffer of the same length has the same layout. Dense batches only (B,S).
 */
#ifndef M2RNN_MODEL_H
#define M2RNN_MODEL_H

#include "m2rnn/attention.h"
#include "m2rnn/gdn_block.h"
#include "m2rnn/m2rnn_block.h"
#include "m2rnn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *pattern;                  /* over 'R', 'G', 'A'; one layer per character; copied */
    int64_t vocab, model_dim, mlp_dim;    /* V >= 1, d >= 1, h >= 1 */
    double eps;                           /* the pre-norms and the final norm (1e-5) */
    m2rnn_block_config m2rnn;             /* R layers (m2rnn.eps: the block's own norm) */
    int64_t m2rnn_kernel;                 /* R layers' conv kernel (4) */
    m2rnn_gdn_block_config gdn;           /* G layers */
    int64_t gdn_kernel;                   /* G layers' conv kernel (4) */
    m2rnn_attention_block_config attn;    /* A layers */
} m2rnn_model_config;

typedef struct {
    char name[64];
    m2rnn_tensor t;   /* an F64 view into params */
    int64_t offset;   /* its first element's index in params */
} m2rnn_model_tensor;

typedef struct m2rnn_model_layers m2rnn_model_layers; /* private */

typedef struct {
    m2rnn_model_config cfg;   /* cfg.pattern points at the model's own copy */
    int64_t num_layers;
    int64_t num_params;
    double *params;
    int num_tensors;
    m2rnn_model_tensor *tensors;
    m2rnn_model_layers *layers;
} m2rnn_model;

/* The states of a model run step by step: per layer the recurrent state and conv state (R, G) or
 * the KV cache (A, max_len tokens), and the number of tokens consumed so far. Zeros at creation. */
typedef struct {
    int64_t batch, max_len, pos;
    int64_t num_layers;
    double **h, **conv, **k_cache, **v_cache; /* per layer; NULL where the kind has none */
} m2rnn_model_state;

/* One forward (or forward + backward) call. */
typedef struct {
    m2rnn_tensor ids;          /* required, (B,S) I32/I64, host memory */
    m2rnn_tensor targets;      /* optional for forward, required for backward: (B,S) I32/I64 */
    bool has_ignore;
    int64_t ignore_index;
    m2rnn_model_state *state;  /* forward only, optional: start from it and advance it by S */
    m2rnn_tensor logits;       /* optional output, (B,S,vocab), any float dtype */
    double loss;               /* output (with targets): the mean cross-entropy */
    double *grad;              /* backward: output, num_params doubles, the layout of params */
} m2rnn_model_run;

/* Validate cfg (a clear error for a bad pattern or size) and allocate the model (parameters 0). */
m2rnn_status m2rnn_model_create(const m2rnn_model_config *cfg, m2rnn_model **model);
void m2rnn_model_free(m2rnn_model *model);
/* The model's initialisation: embed, head, W_gate, W_up ~ N(0, 0.02²), W_down ~ N(0,
 * (0.02/√(2L))²), norms 1, each mixer by its block's init with num_layers = L. */
m2rnn_status m2rnn_model_init(m2rnn_model *model, uint64_t seed);
/* The view named `name`, or NULL. */
m2rnn_model_tensor *m2rnn_model_find(m2rnn_model *model, const char *name);

m2rnn_status m2rnn_model_state_create(const m2rnn_model *model, int64_t batch, int64_t max_len, m2rnn_model_state **state);
void m2rnn_model_state_free(m2rnn_model_state *state);

m2rnn_status m2rnn_model_forward(const m2rnn_model *model, m2rnn_model_run *run);
/* Forward, loss and the gradient of the loss with respect to every parameter (no state). */
m2rnn_status m2rnn_model_backward(const m2rnn_model *model, m2rnn_model_run *run);

#ifdef __cplusplus
}
#endif
#endif
