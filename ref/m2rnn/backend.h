/*
 * The backend table: one struct of function pointers per backend, in the manner of ggml's backend
 * interface and BLIS's reference-kernel context. The reference is the default; another backend
 * fills in what it accelerates and leaves the rest NULL. A NULL op, or supports() answering false,
 * means "not supported": the checker reports that as SKIP, never as a pass.
 *
 * This is a C ABI. A plug-in is a shared object that exports
 *
 *     const m2rnn_backend *m2rnn_backend_entry(char *why, size_t why_size);
 *
 * returning its table (static storage; it must outlive the program's use of it), or NULL after
 * writing a reason into why (e.g. "no CUDA device"). The loader refuses a table whose abi_major
 * differs from M2RNN_ABI_MAJOR. Within a major version, fields are only ever appended: the loader
 * reads `size` and treats entries beyond it as NULL, so an older plug-in keeps working.
 */
#ifndef M2RNN_BACKEND_H
#define M2RNN_BACKEND_H

#include "m2rnn/decay_gate.h"
#include "m2rnn/conv1d.h"
#include "m2rnn/linear.h"
#include "m2rnn/rmsnorm.h"
#include "m2rnn/mlp.h"
#include "m2rnn/m2rnn_block.h"
#include "m2rnn/gated_deltanet.h"
#include "m2rnn/gdn_block.h"
#include "m2rnn/cross_entropy.h"
#include "m2rnn/embedding.h"
#include "m2rnn/attention.h"
#include "m2rnn/recurrence.h"
#include "m2rnn/status.h"
#include "m2rnn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define M2RNN_ABI_MAJOR 1
#define M2RNN_ABI_MINOR 3
#define M2RNN_BACKEND_ENTRY "m2rnn_backend_entry"

typedef enum {
    M2RNN_OP_RECURRENCE_FORWARD = 0,
    M2RNN_OP_RECURRENCE_BACKWARD = 1,
    /* ABI 1.1: the layers (issue 5) */
    M2RNN_OP_DECAY_GATE_FORWARD = 2,
    M2RNN_OP_DECAY_GATE_BACKWARD = 3,
    M2RNN_OP_CONV1D_FORWARD = 4,
    M2RNN_OP_CONV1D_BACKWARD = 5,
    M2RNN_OP_LINEAR_FORWARD = 6,
    M2RNN_OP_LINEAR_BACKWARD = 7,
    M2RNN_OP_RMSNORM_FORWARD = 8,
    M2RNN_OP_RMSNORM_BACKWARD = 9,
    M2RNN_OP_SILU_FORWARD = 10,
    M2RNN_OP_SILU_BACKWARD = 11,
    M2RNN_OP_MLP_FORWARD = 12,
    M2RNN_OP_MLP_BACKWARD = 13,
    M2RNN_OP_BLOCK_FORWARD = 14,
    M2RNN_OP_BLOCK_BACKWARD = 15,
    M2RNN_OP_GDN_FORWARD = 16,
    M2RNN_OP_GDN_BACKWARD = 17,
    /* ABI 1.2: the rest of the hybrid models (issue 5) */
    M2RNN_OP_GDN_BLOCK_FORWARD = 18,
    M2RNN_OP_GDN_BLOCK_BACKWARD = 19,
    M2RNN_OP_ATTENTION_FORWARD = 20,
    M2RNN_OP_ATTENTION_BACKWARD = 21,
    M2RNN_OP_ATTENTION_BLOCK_FORWARD = 22,
    M2RNN_OP_ATTENTION_BLOCK_BACKWARD = 23,
    M2RNN_OP_EMBEDDING_FORWARD = 24,
    M2RNN_OP_EMBEDDING_BACKWARD = 25,
    M2RNN_OP_CROSS_ENTROPY_FORWARD = 26,
    M2RNN_OP_CROSS_ENTROPY_BACKWARD = 27,
    M2RNN_OP_COUNT
} m2rnn_op;

/* "recurrence_forward", ... */
const char *m2rnn_op_name(m2rnn_op op);

typedef struct m2rnn_backend {
    uint32_t abi_major;       /* M2RNN_ABI_MAJOR */
    uint32_t abi_minor;       /* M2RNN_ABI_MINOR */
    size_t size;              /* sizeof(m2rnn_backend) as the backend was compiled */
    const char *name;         /* short, unique: "ref", "cuda", ... */
    const char *description;  /* one line for `m2rnn info` */
    void *ctx;                /* backend-private; passed back to every call */

    /* The precision class the backend computes in for a storage dtype: "f64", "f32" (IEEE fp32
     * arithmetic), "tf32" (fp32 storage, tf32 products, approximate transcendentals), "bf16"
     * (bf16 storage, fp32 accumulation). NULL or a NULL answer: "f64" for F64 storage, else the
     * storage dtype's own name. */
    const char *(*precision_class)(void *ctx, m2rnn_dtype storage);

    /* Device memory. All NULL for a host backend, whose tensors are host memory. */
    void *(*alloc)(void *ctx, size_t bytes);
    void (*free)(void *ctx, void *ptr);
    m2rnn_status (*upload)(void *ctx, void *device_dst, const void *host_src, size_t bytes);
    m2rnn_status (*download)(void *ctx, void *host_dst, const void *device_src, size_t bytes);
    m2rnn_status (*synchronize)(void *ctx);
    /* The most device memory any one op call has needed since the last reset: its workspaces (and,
     * in the CUDA plug-in, its padded copies), the caller's tensors excluded. reset = true starts a
     * new measurement. A backend that caches workspaces between calls may hold more than this (the
     * CUDA plug-in keeps its largest until the process ends). Optional. */
    size_t (*peak_workspace_bytes)(void *ctx, bool reset);

    /* Whether op with these arguments (a pointer to the op's args struct) is supported.
     * NULL: every non-NULL op supports every valid argument set. */
    bool (*supports)(void *ctx, m2rnn_op op, const void *args);

    /* The ops. Arguments have been validated by the caller (see the m2rnn_* dispatchers below). */
    m2rnn_status (*recurrence_forward)(void *ctx, const m2rnn_recurrence_forward_args *args);
    m2rnn_status (*recurrence_backward)(void *ctx, const m2rnn_recurrence_backward_args *args);

    /* ABI 1.1: the layers around the recurrence. */
    m2rnn_status (*decay_gate_forward)(void *ctx, const m2rnn_decay_gate_forward_args *args);
    m2rnn_status (*decay_gate_backward)(void *ctx, const m2rnn_decay_gate_backward_args *args);
    m2rnn_status (*conv1d_forward)(void *ctx, const m2rnn_conv1d_forward_args *args);
    m2rnn_status (*conv1d_backward)(void *ctx, const m2rnn_conv1d_backward_args *args);
    m2rnn_status (*linear_forward)(void *ctx, const m2rnn_linear_forward_args *args);
    m2rnn_status (*linear_backward)(void *ctx, const m2rnn_linear_backward_args *args);
    m2rnn_status (*rmsnorm_forward)(void *ctx, const m2rnn_rmsnorm_forward_args *args);
    m2rnn_status (*rmsnorm_backward)(void *ctx, const m2rnn_rmsnorm_backward_args *args);
    m2rnn_status (*silu_forward)(void *ctx, const m2rnn_silu_forward_args *args);
    m2rnn_status (*silu_backward)(void *ctx, const m2rnn_silu_backward_args *args);
    m2rnn_status (*mlp_forward)(void *ctx, const m2rnn_mlp_forward_args *args);
    m2rnn_status (*mlp_backward)(void *ctx, const m2rnn_mlp_backward_args *args);
    m2rnn_status (*block_forward)(void *ctx, const m2rnn_block_forward_args *args);
    m2rnn_status (*block_backward)(void *ctx, const m2rnn_block_backward_args *args);
    m2rnn_status (*gdn_forward)(void *ctx, const m2rnn_gdn_forward_args *args);
    m2rnn_status (*gdn_backward)(void *ctx, const m2rnn_gdn_backward_args *args);

    /* ABI 1.2: the rest of the hybrid models. */
    m2rnn_status (*gdn_block_forward)(void *ctx, const m2rnn_gdn_block_forward_args *args);
    m2rnn_status (*gdn_block_backward)(void *ctx, const m2rnn_gdn_block_backward_args *args);
    m2rnn_status (*attention_forward)(void *ctx, const m2rnn_attention_forward_args *args);
    m2rnn_status (*attention_backward)(void *ctx, const m2rnn_attention_backward_args *args);
    m2rnn_status (*attention_block_forward)(void *ctx, const m2rnn_attention_block_forward_args *args);
    m2rnn_status (*attention_block_backward)(void *ctx, const m2rnn_attention_block_backward_args *args);
    m2rnn_status (*embedding_forward)(void *ctx, const m2rnn_embedding_forward_args *args);
    m2rnn_status (*embedding_backward)(void *ctx, const m2rnn_embedding_backward_args *args);
    m2rnn_status (*cross_entropy_forward)(void *ctx, const m2rnn_cross_entropy_forward_args *args);
    m2rnn_status (*cross_entropy_backward)(void *ctx, const m2rnn_cross_entropy_backward_args *args);
    /* ABI 1.3: the recurrence as a training pair (optional; all three or none). A backend whose
     * backward recomputes the forward can have the forward keep what that costs instead:
     * recurrence_forward_save is recurrence_forward that also fills `saved` (recurrence_saved_bytes
     * bytes of the backend's memory, 256-byte aligned; for CUDA, the fp32 state every C steps);
     * recurrence_backward_saved is recurrence_backward given that buffer, filled by forward_save on
     * the same inputs, unchanged since. Its results must equal recurrence_backward's bit for bit.
     * supports() is asked with M2RNN_OP_RECURRENCE_FORWARD / _BACKWARD for these too. */
    size_t (*recurrence_saved_bytes)(void *ctx, const m2rnn_recurrence_forward_args *args);
    m2rnn_status (*recurrence_forward_save)(void *ctx, const m2rnn_recurrence_forward_args *args, void *saved);
    m2rnn_status (*recurrence_backward_saved)(void *ctx, const m2rnn_recurrence_backward_args *args, const void *saved);
} m2rnn_backend;

typedef const m2rnn_backend *(*m2rnn_backend_entry_fn)(char *why, size_t why_size);

/* --- Registry ---------------------------------------------------------------------------- */

/* The reference backend (always available). */
const m2rnn_backend *m2rnn_backend_reference(void);

/* Find a backend by name ("ref", or a plug-in name such as "cuda", looked up as
 * libm2rnn-<name>.so in $M2RNN_PLUGIN_PATH (colon-separated) and then the install's plug-in
 * directory) or by path (anything containing a '/'). */
m2rnn_status m2rnn_backend_open(const char *name_or_path, const m2rnn_backend **backend);

/* Load a plug-in from a shared-object path and check its ABI version. */
m2rnn_status m2rnn_backend_load(const char *path, const m2rnn_backend **backend);

/* Whether the table has a (non-NULL) entry at this field, honouring its size. */
#define M2RNN_BACKEND_HAS(be, field)                                                          \
    ((be)->size >= offsetof(m2rnn_backend, field) + sizeof((be)->field) && (be)->field != NULL)

/* The class the backend declares for a storage dtype (see precision_class above). */
const char *m2rnn_backend_precision_class(const m2rnn_backend *be, m2rnn_dtype storage);

/* Whether the backend supports op on these arguments. */
bool m2rnn_backend_supports(const m2rnn_backend *be, m2rnn_op op, const void *args);

/* --- Dispatch: validate, then call the backend's entry (UNSUPPORTED if it has none) ------ */

m2rnn_status m2rnn_recurrence_forward(const m2rnn_backend *be, const m2rnn_recurrence_forward_args *args);
m2rnn_status m2rnn_recurrence_backward(const m2rnn_backend *be, const m2rnn_recurrence_backward_args *args);
/* The training pair (ABI 1.3). *bytes: the size of the `saved` buffer to allocate (with the
 * backend's alloc) for forward_save; 0 when the backend has no pair, and then forward_save is the
 * plain forward and backward_saved the plain backward (saved may be NULL). */
m2rnn_status m2rnn_recurrence_saved_bytes(const m2rnn_backend *be, const m2rnn_recurrence_forward_args *args, size_t *bytes);
m2rnn_status m2rnn_recurrence_forward_save(const m2rnn_backend *be, const m2rnn_recurrence_forward_args *args, void *saved);
m2rnn_status m2rnn_recurrence_backward_saved(const m2rnn_backend *be, const m2rnn_recurrence_backward_args *args,
                                             const void *saved);
m2rnn_status m2rnn_decay_gate_forward(const m2rnn_backend *be, const m2rnn_decay_gate_forward_args *args);
m2rnn_status m2rnn_decay_gate_backward(const m2rnn_backend *be, const m2rnn_decay_gate_backward_args *args);
m2rnn_status m2rnn_conv1d_forward(const m2rnn_backend *be, const m2rnn_conv1d_forward_args *args);
m2rnn_status m2rnn_conv1d_backward(const m2rnn_backend *be, const m2rnn_conv1d_backward_args *args);
m2rnn_status m2rnn_linear_forward(const m2rnn_backend *be, const m2rnn_linear_forward_args *args);
m2rnn_status m2rnn_linear_backward(const m2rnn_backend *be, const m2rnn_linear_backward_args *args);
m2rnn_status m2rnn_rmsnorm_forward(const m2rnn_backend *be, const m2rnn_rmsnorm_forward_args *args);
m2rnn_status m2rnn_rmsnorm_backward(const m2rnn_backend *be, const m2rnn_rmsnorm_backward_args *args);
m2rnn_status m2rnn_silu_forward(const m2rnn_backend *be, const m2rnn_silu_forward_args *args);
m2rnn_status m2rnn_silu_backward(const m2rnn_backend *be, const m2rnn_silu_backward_args *args);
m2rnn_status m2rnn_mlp_forward(const m2rnn_backend *be, const m2rnn_mlp_forward_args *args);
m2rnn_status m2rnn_mlp_backward(const m2rnn_backend *be, const m2rnn_mlp_backward_args *args);
m2rnn_status m2rnn_block_forward(const m2rnn_backend *be, const m2rnn_block_forward_args *args);
m2rnn_status m2rnn_block_backward(const m2rnn_backend *be, const m2rnn_block_backward_args *args);
m2rnn_status m2rnn_gdn_forward(const m2rnn_backend *be, const m2rnn_gdn_forward_args *args);
m2rnn_status m2rnn_gdn_backward(const m2rnn_backend *be, const m2rnn_gdn_backward_args *args);
m2rnn_status m2rnn_gdn_block_forward(const m2rnn_backend *be, const m2rnn_gdn_block_forward_args *args);
m2rnn_status m2rnn_gdn_block_backward(const m2rnn_backend *be, const m2rnn_gdn_block_backward_args *args);
m2rnn_status m2rnn_attention_forward(const m2rnn_backend *be, const m2rnn_attention_forward_args *args);
m2rnn_status m2rnn_attention_backward(const m2rnn_backend *be, const m2rnn_attention_backward_args *args);
m2rnn_status m2rnn_attention_block_forward(const m2rnn_backend *be, const m2rnn_attention_block_forward_args *args);
m2rnn_status m2rnn_attention_block_backward(const m2rnn_backend *be, const m2rnn_attention_block_backward_args *args);
m2rnn_status m2rnn_embedding_forward(const m2rnn_backend *be, const m2rnn_embedding_forward_args *args);
m2rnn_status m2rnn_embedding_backward(const m2rnn_backend *be, const m2rnn_embedding_backward_args *args);
m2rnn_status m2rnn_cross_entropy_forward(const m2rnn_backend *be, const m2rnn_cross_entropy_forward_args *args);
m2rnn_status m2rnn_cross_entropy_backward(const m2rnn_backend *be, const m2rnn_cross_entropy_backward_args *args);

#ifdef __cplusplus
}
#endif
#endif
