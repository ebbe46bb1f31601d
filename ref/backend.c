/*
 * The backend registry, the plug-in loader and the dispatchers.
 *
 * The dispatchers are the one place arguments are validated for every backend: a backend's ops
 * are only ever called with shapes m2rnn_recurrence_check_* accepted.
 */
#include "config.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "m2rnn/m2rnn.h"

const char *m2rnn_version(void) { return PACKAGE_VERSION; }

const char *m2rnn_op_name(m2rnn_op op)
{
    switch (op) {
    case M2RNN_OP_RECURRENCE_FORWARD: return "recurrence_forward";
    case M2RNN_OP_RECURRENCE_BACKWARD: return "recurrence_backward";
    case M2RNN_OP_DECAY_GATE_FORWARD: return "decay_gate_forward";
    case M2RNN_OP_DECAY_GATE_BACKWARD: return "decay_gate_backward";
    case M2RNN_OP_CONV1D_FORWARD: return "conv1d_forward";
    case M2RNN_OP_CONV1D_BACKWARD: return "conv1d_backward";
    case M2RNN_OP_LINEAR_FORWARD: return "linear_forward";
    case M2RNN_OP_LINEAR_BACKWARD: return "linear_backward";
    case M2RNN_OP_RMSNORM_FORWARD: return "rmsnorm_forward";
    case M2RNN_OP_RMSNORM_BACKWARD: return "rmsnorm_backward";
    case M2RNN_OP_SILU_FORWARD: return "silu_forward";
    case M2RNN_OP_SILU_BACKWARD: return "silu_backward";
    case M2RNN_OP_MLP_FORWARD: return "mlp_forward";
    case M2RNN_OP_MLP_BACKWARD: return "mlp_backward";
    case M2RNN_OP_BLOCK_FORWARD: return "block_forward";
    case M2RNN_OP_BLOCK_BACKWARD: return "block_backward";
    case M2RNN_OP_GDN_FORWARD: return "gdn_forward";
    case M2RNN_OP_GDN_BACKWARD: return "gdn_backward";
    case M2RNN_OP_GDN_BLOCK_FORWARD: return "gdn_block_forward";
    case M2RNN_OP_GDN_BLOCK_BACKWARD: return "gdn_block_backward";
    case M2RNN_OP_ATTENTION_FORWARD: return "attention_forward";
    case M2RNN_OP_ATTENTION_BACKWARD: return "attention_backward";
    case M2RNN_OP_ATTENTION_BLOCK_FORWARD: return "attention_block_forward";
    case M2RNN_OP_ATTENTION_BLOCK_BACKWARD: return "attention_block_backward";
    case M2RNN_OP_EMBEDDING_FORWARD: return "embedding_forward";
    case M2RNN_OP_EMBEDDING_BACKWARD: return "embedding_backward";
    case M2RNN_OP_CROSS_ENTROPY_FORWARD: return "cross_entropy_forward";
    case M2RNN_OP_CROSS_ENTROPY_BACKWARD: return "cross_entropy_backward";
    default: return "?";
    }
}

/* ---- the reference backend's table ------------------------------------------------------ */

static const char *reference_precision_class(void *ctx, m2rnn_dtype storage)
{
    (void)ctx;
    (void)storage;
    return "f64"; /* double arithmetic whatever the storage */
}

static m2rnn_status reference_forward(void *ctx, const m2rnn_recurrence_forward_args *args)
{
    (void)ctx;
    return m2rnn_recurrence_forward_ref(args);
}

static m2rnn_status reference_backward(void *ctx, const m2rnn_recurrence_backward_args *args)
{
    (void)ctx;
    return m2rnn_recurrence_backward_ref(args);
}

/* The layers: the reference entry points take no context. */
static m2rnn_status reference_decay_gate_forward(void *ctx, const m2rnn_decay_gate_forward_args *args)
{ (void)ctx; return m2rnn_decay_gate_forward_ref(args); }
static m2rnn_status reference_decay_gate_backward(void *ctx, const m2rnn_decay_gate_backward_args *args)
{ (void)ctx; return m2rnn_decay_gate_backward_ref(args); }
static m2rnn_status reference_conv1d_forward(void *ctx, const m2rnn_conv1d_forward_args *args)
{ (void)ctx; return m2rnn_conv1d_forward_ref(args); }
static m2rnn_status reference_conv1d_backward(void *ctx, const m2rnn_conv1d_backward_args *args)
{ (void)ctx; return m2rnn_conv1d_backward_ref(args); }
static m2rnn_status reference_linear_forward(void *ctx, const m2rnn_linear_forward_args *args)
{ (void)ctx; return m2rnn_linear_forward_ref(args); }
static m2rnn_status reference_linear_backward(void *ctx, const m2rnn_linear_backward_args *args)
{ (void)ctx; return m2rnn_linear_backward_ref(args); }
static m2rnn_status reference_rmsnorm_forward(void *ctx, const m2rnn_rmsnorm_forward_args *args)
{ (void)ctx; return m2rnn_rmsnorm_forward_ref(args); }
static m2rnn_status reference_rmsnorm_backward(void *ctx, const m2rnn_rmsnorm_backward_args *args)
{ (void)ctx; return m2rnn_rmsnorm_backward_ref(args); }
static m2rnn_status reference_silu_forward(void *ctx, const m2rnn_silu_forward_args *args)
{ (void)ctx; return m2rnn_silu_forward_ref(args); }
static m2rnn_status reference_silu_backward(void *ctx, const m2rnn_silu_backward_args *args)
{ (void)ctx; return m2rnn_silu_backward_ref(args); }
static m2rnn_status reference_mlp_forward(void *ctx, const m2rnn_mlp_forward_args *args)
{ (void)ctx; return m2rnn_mlp_forward_ref(args); }
static m2rnn_status reference_mlp_backward(void *ctx, const m2rnn_mlp_backward_args *args)
{ (void)ctx; return m2rnn_mlp_backward_ref(args); }
static m2rnn_status reference_block_forward(void *ctx, const m2rnn_block_forward_args *args)
{ (void)ctx; return m2rnn_block_forward_ref(args); }
static m2rnn_status reference_block_backward(void *ctx, const m2rnn_block_backward_args *args)
{ (void)ctx; return m2rnn_block_backward_ref(args); }
static m2rnn_status reference_gdn_forward(void *ctx, const m2rnn_gdn_forward_args *args)
{ (void)ctx; return m2rnn_gdn_forward_ref(args); }
static m2rnn_status reference_gdn_backward(void *ctx, const m2rnn_gdn_backward_args *args)
{ (void)ctx; return m2rnn_gdn_backward_ref(args); }
static m2rnn_status reference_gdn_block_forward(void *ctx, const m2rnn_gdn_block_forward_args *args)
{ (void)ctx; return m2rnn_gdn_block_forward_ref(args); }
static m2rnn_status reference_gdn_block_backward(void *ctx, const m2rnn_gdn_block_backward_args *args)
{ (void)ctx; return m2rnn_gdn_block_backward_ref(args); }
static m2rnn_status reference_attention_forward(void *ctx, const m2rnn_attention_forward_args *args)
{ (void)ctx; return m2rnn_attention_forward_ref(args); }
static m2rnn_status reference_attention_backward(void *ctx, const m2rnn_attention_backward_args *args)
{ (void)ctx; return m2rnn_attention_backward_ref(args); }
static m2rnn_status reference_attention_block_forward(void *ctx, const m2rnn_attention_block_forward_args *args)
{ (void)ctx; return m2rnn_attention_block_forward_ref(args); }
static m2rnn_status reference_attention_block_backward(void *ctx, const m2rnn_attention_block_backward_args *args)
{ (void)ctx; return m2rnn_attention_block_backward_ref(args); }
static m2rnn_status reference_embedding_forward(void *ctx, const m2rnn_embedding_forward_args *args)
{ (void)ctx; return m2rnn_embedding_forward_ref(args); }
static m2rnn_status reference_embedding_backward(void *ctx, const m2rnn_embedding_backward_args *args)
{ (void)ctx; return m2rnn_embedding_backward_ref(args); }
static m2rnn_status reference_cross_entropy_forward(void *ctx, const m2rnn_cross_entropy_forward_args *args)
{ (void)ctx; return m2rnn_cross_entropy_forward_ref(args); }
static m2rnn_status reference_cross_entropy_backward(void *ctx, const m2rnn_cross_entropy_backward_args *args)
{ (void)ctx; return m2rnn_cross_entropy_backward_ref(args); }

static const m2rnn_backend reference_backend = {
    .abi_major = M2RNN_ABI_MAJOR,
    .abi_minor = M2RNN_ABI_MINOR,
    .size = sizeof(m2rnn_backend),
    .name = "ref",
    .description = "reference: double precision on the CPU (OpenBLAS + OpenMP)",
    .precision_class = reference_precision_class,
    .recurrence_forward = reference_forward,
    .recurrence_backward = reference_backward,
    .decay_gate_forward = reference_decay_gate_forward,
    .decay_gate_backward = reference_decay_gate_backward,
    .conv1d_forward = reference_conv1d_forward,
    .conv1d_backward = reference_conv1d_backward,
    .linear_forward = reference_linear_forward,
    .linear_backward = reference_linear_backward,
    .rmsnorm_forward = reference_rmsnorm_forward,
    .rmsnorm_backward = reference_rmsnorm_backward,
    .silu_forward = reference_silu_forward,
    .silu_backward = reference_silu_backward,
    .mlp_forward = reference_mlp_forward,
    .mlp_backward = reference_mlp_backward,
    .block_forward = reference_block_forward,
    .block_backward = reference_block_backward,
    .gdn_forward = reference_gdn_forward,
    .gdn_backward = reference_gdn_backward,
    .gdn_block_forward = reference_gdn_block_forward,
    .gdn_block_backward = reference_gdn_block_backward,
    .attention_forward = reference_attention_forward,
    .attention_backward = reference_attention_backward,
    .attention_block_forward = reference_attention_block_forward,
    .attention_block_backward = reference_attention_block_backward,
    .embedding_forward = reference_embedding_forward,
    .embedding_backward = reference_embedding_backward,
    .cross_entropy_forward = reference_cross_entropy_forward,
    .cross_entropy_backward = reference_cross_entropy_backward,
};

const m2rnn_backend *m2rnn_backend_reference(void) { return &reference_backend; }

/* ---- plug-ins --------------------------------------------------------------------------- */

m2rnn_status m2rnn_backend_load(const char *path, const m2rnn_backend **backend)
{
    if (!path || !backend) return m2rnn_set_error(M2RNN_ERR_NULL, "backend_load: NULL argument");
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) return m2rnn_set_error(M2RNN_ERR_IO, "cannot load backend %s: %s", path, dlerror());
    m2rnn_backend_entry_fn entry;
    *(void **)&entry = dlsym(handle, M2RNN_BACKEND_ENTRY);
    if (!entry) {
        dlclose(handle);
        return m2rnn_set_error(M2RNN_ERR_ABI, "%s does not export %s(): not an m2rnn backend", path, M2RNN_BACKEND_ENTRY);
    }
    char why[512] = "";
    const m2rnn_backend *be = entry(why, sizeof why);
    if (!be) {
        /* The handle stays open: the plug-in may have registered things with its runtime. */
        return m2rnn_set_error(M2RNN_ERR_BACKEND, "backend %s is not available: %s", path, why[0] ? why : "(no reason given)");
    }
    if (be->abi_major != M2RNN_ABI_MAJOR)
        return m2rnn_set_error(M2RNN_ERR_ABI, "backend %s was built for m2rnn backend ABI %u.%u; this library speaks %d.%d",
                               path, be->abi_major, be->abi_minor, M2RNN_ABI_MAJOR, M2RNN_ABI_MINOR);
    if (be->size < offsetof(m2rnn_backend, precision_class) || !be->name)
        return m2rnn_set_error(M2RNN_ERR_ABI, "backend %s has a truncated table (size %zu)", path, be->size);
    *backend = be;
    return M2RNN_OK;
}

/* Try <dir>/libm2rnn-<name>.so for each dir of a colon-separated list. */
static m2rnn_status open_in_path(const char *dirs, const char *name, const m2rnn_backend **backend, bool *found)
{
    const char *p = dirs;
    while (p && *p) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        char path[PATH_MAX];
        if (len > 0 && (size_t)snprintf(path, sizeof path, "%.*s/libm2rnn-%s.so", (int)len, p, name) < sizeof path) {
            FILE *fp = fopen(path, "rb");
            if (fp) {
                fclose(fp);
                *found = true;
                return m2rnn_backend_load(path, backend);
            }
        }
        p = colon ? colon + 1 : NULL;
    }
    return M2RNN_OK;
}

m2rnn_status m2rnn_backend_open(const char *name, const m2rnn_backend **backend)
{
    if (!name || !backend) return m2rnn_set_error(M2RNN_ERR_NULL, "backend_open: NULL argument");
    *backend = NULL;
    if (strcmp(name, "ref") == 0 || strcmp(name, "reference") == 0) {
        *backend = m2rnn_backend_reference();
        return M2RNN_OK;
    }
    if (strchr(name, '/')) return m2rnn_backend_load(name, backend);
    bool found = false;
    m2rnn_status st = open_in_path(getenv("M2RNN_PLUGIN_PATH"), name, backend, &found);
    if (!found) st = open_in_path(M2RNN_PLUGIN_DIR, name, backend, &found);
    if (!found)
        return m2rnn_set_error(M2RNN_ERR_UNSUPPORTED, "no backend named '%s' (looked for libm2rnn-%s.so in $M2RNN_PLUGIN_PATH and %s)",
                               name, name, M2RNN_PLUGIN_DIR);
    return st;
}

const char *m2rnn_backend_precision_class(const m2rnn_backend *be, m2rnn_dtype storage)
{
    const char *cls = M2RNN_BACKEND_HAS(be, precision_class) ? be->precision_class(be->ctx, storage) : NULL;
    if (cls) return cls;
    switch (storage) {
    case M2RNN_F64: return "f64";
    case M2RNN_F32: return "f32";
    case M2RNN_BF16: return "bf16";
    case M2RNN_F16: return "f16";
    default: return "?";
    }
}

bool m2rnn_backend_supports(const m2rnn_backend *be, m2rnn_op op, const void *args)
{
    bool has_op;
    switch (op) {
    case M2RNN_OP_RECURRENCE_FORWARD: has_op = M2RNN_BACKEND_HAS(be, recurrence_forward); break;
    case M2RNN_OP_RECURRENCE_BACKWARD: has_op = M2RNN_BACKEND_HAS(be, recurrence_backward); break;
    case M2RNN_OP_DECAY_GATE_FORWARD: has_op = M2RNN_BACKEND_HAS(be, decay_gate_forward); break;
    case M2RNN_OP_DECAY_GATE_BACKWARD: has_op = M2RNN_BACKEND_HAS(be, decay_gate_backward); break;
    case M2RNN_OP_CONV1D_FORWARD: has_op = M2RNN_BACKEND_HAS(be, conv1d_forward); break;
    case M2RNN_OP_CONV1D_BACKWARD: has_op = M2RNN_BACKEND_HAS(be, conv1d_backward); break;
    case M2RNN_OP_LINEAR_FORWARD: has_op = M2RNN_BACKEND_HAS(be, linear_forward); break;
    case M2RNN_OP_LINEAR_BACKWARD: has_op = M2RNN_BACKEND_HAS(be, linear_backward); break;
    case M2RNN_OP_RMSNORM_FORWARD: has_op = M2RNN_BACKEND_HAS(be, rmsnorm_forward); break;
    case M2RNN_OP_RMSNORM_BACKWARD: has_op = M2RNN_BACKEND_HAS(be, rmsnorm_backward); break;
    case M2RNN_OP_SILU_FORWARD: has_op = M2RNN_BACKEND_HAS(be, silu_forward); break;
    case M2RNN_OP_SILU_BACKWARD: has_op = M2RNN_BACKEND_HAS(be, silu_backward); break;
    case M2RNN_OP_MLP_FORWARD: has_op = M2RNN_BACKEND_HAS(be, mlp_forward); break;
    case M2RNN_OP_MLP_BACKWARD: has_op = M2RNN_BACKEND_HAS(be, mlp_backward); break;
    case M2RNN_OP_BLOCK_FORWARD: has_op = M2RNN_BACKEND_HAS(be, block_forward); break;
    case M2RNN_OP_BLOCK_BACKWARD: has_op = M2RNN_BACKEND_HAS(be, block_backward); break;
    case M2RNN_OP_GDN_FORWARD: has_op = M2RNN_BACKEND_HAS(be, gdn_forward); break;
    case M2RNN_OP_GDN_BACKWARD: has_op = M2RNN_BACKEND_HAS(be, gdn_backward); break;
    case M2RNN_OP_GDN_BLOCK_FORWARD: has_op = M2RNN_BACKEND_HAS(be, gdn_block_forward); break;
    case M2RNN_OP_GDN_BLOCK_BACKWARD: has_op = M2RNN_BACKEND_HAS(be, gdn_block_backward); break;
    case M2RNN_OP_ATTENTION_FORWARD: has_op = M2RNN_BACKEND_HAS(be, attention_forward); break;
    case M2RNN_OP_ATTENTION_BACKWARD: has_op = M2RNN_BACKEND_HAS(be, attention_backward); break;
    case M2RNN_OP_ATTENTION_BLOCK_FORWARD: has_op = M2RNN_BACKEND_HAS(be, attention_block_forward); break;
    case M2RNN_OP_ATTENTION_BLOCK_BACKWARD: has_op = M2RNN_BACKEND_HAS(be, attention_block_backward); break;
    case M2RNN_OP_EMBEDDING_FORWARD: has_op = M2RNN_BACKEND_HAS(be, embedding_forward); break;
    case M2RNN_OP_EMBEDDING_BACKWARD: has_op = M2RNN_BACKEND_HAS(be, embedding_backward); break;
    case M2RNN_OP_CROSS_ENTROPY_FORWARD: has_op = M2RNN_BACKEND_HAS(be, cross_entropy_forward); break;
    case M2RNN_OP_CROSS_ENTROPY_BACKWARD: has_op = M2RNN_BACKEND_HAS(be, cross_entropy_backward); break;
    default: return false;
    }
    if (!has_op) return false;
    return M2RNN_BACKEND_HAS(be, supports) ? be->supports(be->ctx, op, args) : true;
}

/* ---- dispatch --------------------------------------------------------------------------- */

/* Every dispatcher: the op's argument check (already run: `checked`), then the backend's entry if
 * it has one and supports these arguments. */
static m2rnn_status admit(const m2rnn_backend *be, m2rnn_op op, m2rnn_status checked, const void *args)
{
    if (!be) return m2rnn_set_error(M2RNN_ERR_NULL, "%s: NULL backend", m2rnn_op_name(op));
    if (checked) return checked;
    if (!m2rnn_backend_supports(be, op, args))
        return m2rnn_set_error(M2RNN_ERR_UNSUPPORTED, "backend %s does not support %s with these arguments", be->name,
                               m2rnn_op_name(op));
    return M2RNN_OK;
}

m2rnn_status m2rnn_recurrence_forward(const m2rnn_backend *be, const m2rnn_recurrence_forward_args *args)
{
    m2rnn_recurrence_dims dims;
    m2rnn_status st = admit(be, M2RNN_OP_RECURRENCE_FORWARD, m2rnn_recurrence_check_forward(args, &dims), args);
    return st ? st : be->recurrence_forward(be->ctx, args);
}

m2rnn_status m2rnn_recurrence_backward(const m2rnn_backend *be, const m2rnn_recurrence_backward_args *args)
{
    m2rnn_recurrence_dims dims;
    m2rnn_status st = admit(be, M2RNN_OP_RECURRENCE_BACKWARD, m2rnn_recurrence_check_backward(args, &dims), args);
    return st ? st : be->recurrence_backward(be->ctx, args);
}

/* The training pair: the backend's three entries when it has them all, else the plain ops. */
static bool has_training_pair(const m2rnn_backend *be)
{
    return M2RNN_BACKEND_HAS(be, recurrence_saved_bytes) && M2RNN_BACKEND_HAS(be, recurrence_forward_save) &&
           M2RNN_BACKEND_HAS(be, recurrence_backward_saved);
}

m2rnn_status m2rnn_recurrence_saved_bytes(const m2rnn_backend *be, const m2rnn_recurrence_forward_args *args, size_t *bytes)
{
    m2rnn_recurrence_dims dims;
    if (!be) return m2rnn_set_error(M2RNN_ERR_NULL, "recurrence_saved_bytes: NULL backend");
    if (!bytes) return m2rnn_set_error(M2RNN_ERR_NULL, "recurrence_saved_bytes: NULL bytes");
    m2rnn_status st = m2rnn_recurrence_check_forward(args, &dims);
    if (st) return st;
    *bytes = has_training_pair(be) ? be->recurrence_saved_bytes(be->ctx, args) : 0;
    return M2RNN_OK;
}

m2rnn_status m2rnn_recurrence_forward_save(const m2rnn_backend *be, const m2rnn_recurrence_forward_args *args, void *saved)
{
    if (!be || !has_training_pair(be)) return m2rnn_recurrence_forward(be, args);
    m2rnn_recurrence_dims dims;
    m2rnn_status st = admit(be, M2RNN_OP_RECURRENCE_FORWARD, m2rnn_recurrence_check_forward(args, &dims), args);
    if (st) return st;
    if (!saved && be->recurrence_saved_bytes(be->ctx, args) > 0)
        return m2rnn_set_error(M2RNN_ERR_NULL, "recurrence_forward_save: NULL saved buffer (see m2rnn_recurrence_saved_bytes)");
    return be->recurrence_forward_save(be->ctx, args, saved);
}

m2rnn_status m2rnn_recurrence_backward_saved(const m2rnn_backend *be, const m2rnn_recurrence_backward_args *args,
                                             const void *saved)
{
    if (!be || !has_training_pair(be)) return m2rnn_recurrence_backward(be, args);
    m2rnn_recurrence_dims dims;
    m2rnn_status st = admit(be, M2RNN_OP_RECURRENCE_BACKWARD, m2rnn_recurrence_check_backward(args, &dims), args);
    return st ? st : be->recurrence_backward_saved(be->ctx, args, saved);
}

m2rnn_status m2rnn_decay_gate_forward(const m2rnn_backend *be, const m2rnn_decay_gate_forward_args *args)
{
    m2rnn_status st = admit(be, M2RNN_OP_DECAY_GATE_FORWARD, m2rnn_decay_gate_check_forward(args), args);
    return st ? st : be->decay_gate_forward(be->ctx, args);
}

m2rnn_status m2rnn_decay_gate_backward(const m2rnn_backend *be, const m2rnn_decay_gate_backward_args *args)
{
    m2rnn_status st = admit(be, M2RNN_OP_DECAY_GATE_BACKWARD, m2rnn_decay_gate_check_backward(args), args);
    return st ? st : be->decay_gate_backward(be->ctx, args);
}

m2rnn_status m2rnn_conv1d_forward(const m2rnn_backend *be, const m2rnn_conv1d_forward_args *args)
{
    m2rnn_status st = admit(be, M2RNN_OP_CONV1D_FORWARD, m2rnn_conv1d_check_forward(args, NULL), args);
    return st ? st : be->conv1d_forward(be->ctx, args);
}

m2rnn_status m2rnn_conv1d_backward(const m2rnn_backend *be, const m2rnn_conv1d_backward_args *args)
{
    m2rnn_status st = admit(be, M2RNN_OP_CONV1D_BACKWARD, m2rnn_conv1d_check_backward(args, NULL), args);
    return st ? st : be->conv1d_backward(be->ctx, args);
}

m2rnn_status m2rnn_linear_forward(const m2rnn_backend *be, const m2rnn_linear_forward_args *args)
{
    m2rnn_status st = admit(be, M2RNN_OP_LINEAR_FORWARD, m2rnn_linear_check_forward(args), args);
    return st ? st : be->linear_forward(be->ctx, args);
}

m2rnn_status m2rnn_linear_backward(const m2rnn_backend *be, const m2rnn_linear_backward_args *args)
{
    m2rnn_status st = admit(be, M2RNN_OP_LINEAR_BACKWARD, m2rnn_linear_check_backward(args), args);
    return st ? st : be->linear_backward(be->ctx, args);
}

m2rnn_status m2rnn_rmsnorm_forward(const m2rnn_backend *be, const m2rnn_rmsnorm_forward_args *args)
{
    m2rnn_status st = admit(be, M2RNN_OP_RMSNORM_FORWARD, m2rnn_rmsnorm_check_forward(args), args);
    return st ? st : be->rmsnorm_forward(be->ctx, args);
}

m2rnn_status m2rnn_rmsnorm_backward(const m2rnn_backend *be, const m2rnn_rmsnorm_backward_args *args)
{
    m2rnn_status st = admit(be, M2RNN_OP_RMSNORM_BACKWARD, m2rnn_rmsnorm_check_backward(args), args);
    return st ? st : be->rmsnorm_backward(be->ctx, args);
}

m2rnn_status m2rnn_silu_forward(const m2rnn_backend *be, const m2rnn_silu_forward_args *args)
{
    m2rnn_status st = admit(be, M2RNN_OP_SILU_FORWARD, m2rnn_silu_check_forward(args), args);
    return st ? st : be->silu_forward(be->ctx, args);
}

m2rnn_status m2rnn_silu_backward(const m2rnn_backend *be, const m2rnn_silu_backward_args *args)
{
    m2rnn_status st = admit(be, M2RNN_OP_SILU_BACKWARD, m2rnn_silu_check_backward(args), args);
    return st ? st : be->silu_backward(be->ctx, args);
}

m2rnn_status m2rnn_mlp_forward(const m2rnn_backend *be, const m2rnn_mlp_forward_args *args)
{
    m2rnn_status st = admit(be, M2RNN_OP_MLP_FORWARD, m2rnn_mlp_check_forward(args), args);
    return st ? st : be->mlp_forward(be->ctx, args);
}

m2rnn_status m2rnn_mlp_backward(const m2rnn_backend *be, const m2rnn_mlp_backward_args *args)
{
    m2rnn_status st = admit(be, M2RNN_OP_MLP_BACKWARD, m2rnn_mlp_check_backward(args), args);
    return st ? st : be->mlp_backward(be->ctx, args);
}

m2rnn_status m2rnn_block_forward(const m2rnn_backend *be, const m2rnn_block_forward_args *args)
{
    m2rnn_status st = admit(be, M2RNN_OP_BLOCK_FORWARD, m2rnn_block_check_forward(args, NULL), args);
    return st ? st : be->block_forward(be->ctx, args);
}

m2rnn_status m2rnn_block_backward(const m2rnn_backend *be, const m2rnn_block_backward_args *args)
{
    m2rnn_status st = admit(be, M2RNN_OP_BLOCK_BACKWARD, m2rnn_block_check_backward(args, NULL), args);
    return st ? st : be->block_backward(be->ctx, args);
}

m2rnn_status m2rnn_gdn_forward(const m2rnn_backend *be, const m2rnn_gdn_forward_args *args)
{
    m2rnn_status st = admit(be, M2RNN_OP_GDN_FORWARD, m2rnn_gdn_check_forward(args), args);
    return st ? st : be->gdn_forward(be->ctx, args);
}

m2rnn_status m2rnn_gdn_backward(const m2rnn_backend *be, const m2rnn_gdn_backward_args *args)
{
    m2rnn_status st = admit(be, M2RNN_OP_GDN_BACKWARD, m2rnn_gdn_check_backward(args), args);
    return st ? st : be->gdn_backward(be->ctx, args);
}

m2rnn_status m2rnn_gdn_block_forward(const m2rnn_backend *be, const m2rnn_gdn_block_forward_args *args)
{
    m2rnn_status st = admit(be, M2RNN_OP_GDN_BLOCK_FORWARD, m2rnn_gdn_block_check_forward(args, NULL), args);
    return st ? st : be->gdn_block_forward(be->ctx, args);
}

m2rnn_status m2rnn_gdn_block_backward(const m2rnn_backend *be, const m2rnn_gdn_block_backward_args *args)
{
    m2rnn_status st = admit(be, M2RNN_OP_GDN_BLOCK_BACKWARD, m2rnn_gdn_block_check_backward(args, NULL), args);
    return st ? st : be->gdn_block_backward(be->ctx, args);
}

m2rnn_status m2rnn_attention_forward(const m2rnn_backend *be, const m2rnn_attention_forward_args *args)
{
    m2rnn_status st = admit(be, M2RNN_OP_ATTENTION_FORWARD, m2rnn_attention_check_forward(args), args);
    return st ? st : be->attention_forward(be->ctx, args);
}

m2rnn_status m2rnn_attention_backward(const m2rnn_backend *be, const m2rnn_attention_backward_args *args)
{
    m2rnn_status st = admit(be, M2RNN_OP_ATTENTION_BACKWARD, m2rnn_attention_check_backward(args), args);
    return st ? st : be->attention_backward(be->ctx, args);
}

m2rnn_status m2rnn_attention_block_forward(const m2rnn_backend *be, const m2rnn_attention_block_forward_args *args)
{
    m2rnn_status st = admit(be, M2RNN_OP_ATTENTION_BLOCK_FORWARD, m2rnn_attention_block_check_forward(args), args);
    return st ? st : be->attention_block_forward(be->ctx, args);
}

m2rnn_status m2rnn_attention_block_backward(const m2rnn_backend *be, const m2rnn_attention_block_backward_args *args)
{
    m2rnn_status st = admit(be, M2RNN_OP_ATTENTION_BLOCK_BACKWARD, m2rnn_attention_block_check_backward(args), args);
    return st ? st : be->attention_block_backward(be->ctx, args);
}

m2rnn_status m2rnn_embedding_forward(const m2rnn_backend *be, const m2rnn_embedding_forward_args *args)
{
    m2rnn_status st = admit(be, M2RNN_OP_EMBEDDING_FORWARD, m2rnn_embedding_check_forward(args), args);
    return st ? st : be->embedding_forward(be->ctx, args);
}

m2rnn_status m2rnn_embedding_backward(const m2rnn_backend *be, const m2rnn_embedding_backward_args *args)
{
    m2rnn_status st = admit(be, M2RNN_OP_EMBEDDING_BACKWARD, m2rnn_embedding_check_backward(args), args);
    return st ? st : be->embedding_backward(be->ctx, args);
}

m2rnn_status m2rnn_cross_entropy_forward(const m2rnn_backend *be, const m2rnn_cross_entropy_forward_args *args)
{
    m2rnn_status st = admit(be, M2RNN_OP_CROSS_ENTROPY_FORWARD, m2rnn_cross_entropy_check_forward(args), args);
    return st ? st : be->cross_entropy_forward(be->ctx, args);
}

m2rnn_status m2rnn_cross_entropy_backward(const m2rnn_backend *be, const m2rnn_cross_entropy_backward_args *args)
{
    m2rnn_status st = admit(be, M2RNN_OP_CROSS_ENTROPY_BACKWARD, m2rnn_cross_entropy_check_backward(args), args);
    return st ? st : be->cross_entropy_backward(be->ctx, args);
}
