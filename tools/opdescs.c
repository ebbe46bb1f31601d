/*
 * The layer ops' descriptors: for each op, which outputs the forward writes, which inputs only the
 * backward reads, which inputs stay in host memory, and how its args struct is built from named
 * tensors (the names are the args structs' field names). Nothing else in the checker or the
 * generator knows an op's argument struct.
 *
 * classes: the precision classes whose tolerances come from an emulation (opcases.c: the double
 * reference on inputs perturbed at the class's unit roundoff, outputs rounded to the class's
 * output dtype). That input perturbation alone does not model a state rounded every step (bf16)
 * or tf32 products compounding over the sequence: GDN has its own stepped emulation
 * (vec_gdn_emulate_steps: the state rounded after every token), and so has the M²RNN block
 * (vec_block_emulate_steps: the recurrent state and the conv state rounded after every token, the
 * carried dht and dconv_state in the backward); both are calibrated in every class (a class whose
 * calibrated error is beyond a meaningful tolerance stays unchecked, with the reason, cmd_gen.c).
 */
#include "config.h"

#include <string.h>

#include "vectors.h"

#define ALL_CLASSES 0xFu

m2rnn_tensor vec_io_get(const vec_io *io, const char *name)
{
    for (int i = 0; i < io->n; i++)
        if (strcmp(io->item[i].name, name) == 0) return io->item[i].t;
    m2rnn_tensor none;
    memset(&none, 0, sizeof none);
    return none;
}

bool vec_name_in(const char *spaced, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = spaced; p && *p;) {
        while (*p == ' ') p++;
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0) return true;
        p = e;
    }
    return false;
}

/* The probe answer: has the entry, and supports() agrees. */
static m2rnn_status probe_answer(const m2rnn_backend *be, bool has, m2rnn_op op, const void *args, bool *supported)
{
    *supported = has && m2rnn_backend_supports(be, op, args);
    return M2RNN_OK;
}

static m2rnn_tensor get(const vec_io *io, const char *name) { return vec_io_get(io, name); }

/* ---- one function per op ---------------------------------------------------------------- */

static m2rnn_status decay_gate_call(const m2rnn_backend *be, bool bwd, const vec_io *io, const vec_params *p, bool probe, bool *ok)
{
    (void)p;
    m2rnn_decay_gate_inputs in = {.x = get(io, "x"), .A_log = get(io, "A_log"), .dt_bias = get(io, "dt_bias")};
    if (!bwd) {
        m2rnn_decay_gate_forward_args a = {.in = in, .f = get(io, "f")};
        if (probe) return probe_answer(be, M2RNN_BACKEND_HAS(be, decay_gate_forward), M2RNN_OP_DECAY_GATE_FORWARD, &a, ok);
        return m2rnn_decay_gate_forward(be, &a);
    }
    m2rnn_decay_gate_backward_args a = {.in = in, .df = get(io, "df"), .dx = get(io, "dx"), .dA_log = get(io, "dA_log"),
                                        .ddt_bias = get(io, "ddt_bias")};
    if (probe) return probe_answer(be, M2RNN_BACKEND_HAS(be, decay_gate_backward), M2RNN_OP_DECAY_GATE_BACKWARD, &a, ok);
    return m2rnn_decay_gate_backward(be, &a);
}

static m2rnn_status conv1d_call(const m2rnn_backend *be, bool bwd, const vec_io *io, const vec_params *p, bool probe, bool *ok)
{
    m2rnn_conv1d_inputs in = {.x = get(io, "x"), .w = get(io, "w"), .bias = get(io, "bias"), .state0 = get(io, "state0"),
                              .cu_seqlens = get(io, "cu_seqlens"), .activation = (m2rnn_activation)p->activation};
    if (!bwd) {
        m2rnn_conv1d_forward_args a = {.in = in, .y = get(io, "y"), .state_out = get(io, "state_out")};
        if (probe) return probe_answer(be, M2RNN_BACKEND_HAS(be, conv1d_forward), M2RNN_OP_CONV1D_FORWARD, &a, ok);
        return m2rnn_conv1d_forward(be, &a);
    }
    m2rnn_conv1d_backward_args a = {.in = in, .dy = get(io, "dy"), .dstate_out = get(io, "dstate_out"), .dx = get(io, "dx"),
                                    .dw = get(io, "dw"), .dbias = get(io, "dbias"), .dstate0 = get(io, "dstate0")};
    if (probe) return probe_answer(be, M2RNN_BACKEND_HAS(be, conv1d_backward), M2RNN_OP_CONV1D_BACKWARD, &a, ok);
    return m2rnn_conv1d_backward(be, &a);
}

static m2rnn_status linear_call(const m2rnn_backend *be, bool bwd, const vec_io *io, const vec_params *p, bool probe, bool *ok)
{
    (void)p;
    m2rnn_linear_inputs in = {.x = get(io, "x"), .W = get(io, "W"), .bias = get(io, "bias")};
    if (!bwd) {
        m2rnn_linear_forward_args a = {.in = in, .y = get(io, "y")};
        if (probe) return probe_answer(be, M2RNN_BACKEND_HAS(be, linear_forward), M2RNN_OP_LINEAR_FORWARD, &a, ok);
        return m2rnn_linear_forward(be, &a);
    }
    m2rnn_linear_backward_args a = {.in = in, .dy = get(io, "dy"), .dx = get(io, "dx"), .dW = get(io, "dW"), .dbias = get(io, "dbias")};
    if (probe) return probe_answer(be, M2RNN_BACKEND_HAS(be, linear_backward), M2RNN_OP_LINEAR_BACKWARD, &a, ok);
    return m2rnn_linear_backward(be, &a);
}

static m2rnn_status rmsnorm_call(const m2rnn_backend *be, bool bwd, const vec_io *io, const vec_params *p, bool probe, bool *ok)
{
    m2rnn_rmsnorm_inputs in = {.x = get(io, "x"), .w = get(io, "w"), .eps = p->eps};
    if (!bwd) {
        m2rnn_rmsnorm_forward_args a = {.in = in, .y = get(io, "y")};
        if (probe) return probe_answer(be, M2RNN_BACKEND_HAS(be, rmsnorm_forward), M2RNN_OP_RMSNORM_FORWARD, &a, ok);
        return m2rnn_rmsnorm_forward(be, &a);
    }
    m2rnn_rmsnorm_backward_args a = {.in = in, .dy = get(io, "dy"), .dx = get(io, "dx"), .dw = get(io, "dw")};
    if (probe) return probe_answer(be, M2RNN_BACKEND_HAS(be, rmsnorm_backward), M2RNN_OP_RMSNORM_BACKWARD, &a, ok);
    return m2rnn_rmsnorm_backward(be, &a);
}

static m2rnn_status silu_call(const m2rnn_backend *be, bool bwd, const vec_io *io, const vec_params *p, bool probe, bool *ok)
{
    (void)p;
    if (!bwd) {
        m2rnn_silu_forward_args a = {.x = get(io, "x"), .y = get(io, "y")};
        if (probe) return probe_answer(be, M2RNN_BACKEND_HAS(be, silu_forward), M2RNN_OP_SILU_FORWARD, &a, ok);
        return m2rnn_silu_forward(be, &a);
    }
    m2rnn_silu_backward_args a = {.x = get(io, "x"), .dy = get(io, "dy"), .dx = get(io, "dx")};
    if (probe) return probe_answer(be, M2RNN_BACKEND_HAS(be, silu_backward), M2RNN_OP_SILU_BACKWARD, &a, ok);
    return m2rnn_silu_backward(be, &a);
}

static m2rnn_status mlp_call(const m2rnn_backend *be, bool bwd, const vec_io *io, const vec_params *p, bool probe, bool *ok)
{
    (void)p;
    m2rnn_mlp_inputs in = {.x = get(io, "x"), .W_gate = get(io, "W_gate"), .W_up = get(io, "W_up"), .W_down = get(io, "W_down")};
    if (!bwd) {
        m2rnn_mlp_forward_args a = {.in = in, .y = get(io, "y")};
        if (probe) return probe_answer(be, M2RNN_BACKEND_HAS(be, mlp_forward), M2RNN_OP_MLP_FORWARD, &a, ok);
        return m2rnn_mlp_forward(be, &a);
    }
    m2rnn_mlp_backward_args a = {.in = in, .dy = get(io, "dy"), .dx = get(io, "dx"), .dW_gate = get(io, "dW_gate"),
                                 .dW_up = get(io, "dW_up"), .dW_down = get(io, "dW_down")};
    if (probe) return probe_answer(be, M2RNN_BACKEND_HAS(be, mlp_backward), M2RNN_OP_MLP_BACKWARD, &a, ok);
    return m2rnn_mlp_backward(be, &a);
}

static m2rnn_status gdn_call(const m2rnn_backend *be, bool bwd, const vec_io *io, const vec_params *p, bool probe, bool *ok)
{
    m2rnn_gdn_inputs in = {.q = get(io, "q"), .k = get(io, "k"), .v = get(io, "v"), .g = get(io, "g"), .beta = get(io, "beta"),
                           .h0 = get(io, "h0"), .cu_seqlens = get(io, "cu_seqlens"), .l2norm_qk = p->l2norm_qk != 0,
                           .scale = p->scale};
    if (!bwd) {
        m2rnn_gdn_forward_args a = {.in = in, .o = get(io, "o"), .ht = get(io, "ht")};
        if (probe) return probe_answer(be, M2RNN_BACKEND_HAS(be, gdn_forward), M2RNN_OP_GDN_FORWARD, &a, ok);
        return m2rnn_gdn_forward(be, &a);
    }
    m2rnn_gdn_backward_args a = {.in = in, .dout = get(io, "dout"), .dht = get(io, "dht"), .dq = get(io, "dq"), .dk = get(io, "dk"),
                                 .dv = get(io, "dv"), .dg = get(io, "dg"), .dbeta = get(io, "dbeta"), .dh0 = get(io, "dh0")};
    if (probe) return probe_answer(be, M2RNN_BACKEND_HAS(be, gdn_backward), M2RNN_OP_GDN_BACKWARD, &a, ok);
    return m2rnn_gdn_backward(be, &a);
}

static m2rnn_status block_call(const m2rnn_backend *be, bool bwd, const vec_io *io, const vec_params *p, bool probe, bool *ok)
{
    m2rnn_block_inputs in = {
        .cfg = {.heads = p->heads, .q_heads = p->q_heads, .k_heads = p->k_heads, .f_heads = p->f_heads, .w_heads = p->w_heads,
                .key_dim = p->key_dim, .value_dim = p->value_dim, .eps = p->eps},
        .x = get(io, "x"), .W_in = get(io, "W_in"), .conv_w = get(io, "conv_w"), .A_log = get(io, "A_log"),
        .dt_bias = get(io, "dt_bias"), .W = get(io, "W"), .D = get(io, "D"), .norm_w = get(io, "norm_w"), .W_o = get(io, "W_o"),
        .h0 = get(io, "h0"), .conv_state0 = get(io, "conv_state0"), .cu_seqlens = get(io, "cu_seqlens")};
    if (!bwd) {
        m2rnn_block_forward_args a = {.in = in, .o = get(io, "o"), .ht = get(io, "ht"), .conv_state_out = get(io, "conv_state_out")};
        if (probe) return probe_answer(be, M2RNN_BACKEND_HAS(be, block_forward), M2RNN_OP_BLOCK_FORWARD, &a, ok);
        return m2rnn_block_forward(be, &a);
    }
    m2rnn_block_backward_args a = {
        .in = in, .dout = get(io, "dout"), .dht = get(io, "dht"), .dconv_state_out = get(io, "dconv_state_out"),
        .clip_mode = (m2rnn_clip_mode)p->clip_mode, .clip = p->clip, .dx = get(io, "dx"), .dW_in = get(io, "dW_in"),
        .dconv_w = get(io, "dconv_w"), .dA_log = get(io, "dA_log"), .ddt_bias = get(io, "ddt_bias"), .dW = get(io, "dW"),
        .dD = get(io, "dD"), .dnorm_w = get(io, "dnorm_w"), .dW_o = get(io, "dW_o"), .dh0 = get(io, "dh0"),
        .dconv_state0 = get(io, "dconv_state0")};
    if (probe) return probe_answer(be, M2RNN_BACKEND_HAS(be, block_backward), M2RNN_OP_BLOCK_BACKWARD, &a, ok);
    return m2rnn_block_backward(be, &a);
}

static m2rnn_status attention_call(const m2rnn_backend *be, bool bwd, const vec_io *io, const vec_params *p, bool probe, bool *ok)
{
    m2rnn_attention_inputs in = {.q = get(io, "q"), .k = get(io, "k"), .v = get(io, "v"), .rope = p->rope != 0,
                                 .rope_theta = p->rope_theta, .scale = p->scale};
    if (!bwd) {
        m2rnn_attention_forward_args a = {.in = in, .o = get(io, "o")};
        if (probe) return probe_answer(be, M2RNN_BACKEND_HAS(be, attention_forward), M2RNN_OP_ATTENTION_FORWARD, &a, ok);
        return m2rnn_attention_forward(be, &a);
    }
    m2rnn_attention_backward_args a = {.in = in, .dout = get(io, "dout"), .dq = get(io, "dq"), .dk = get(io, "dk"), .dv = get(io, "dv")};
    if (probe) return probe_answer(be, M2RNN_BACKEND_HAS(be, attention_backward), M2RNN_OP_ATTENTION_BACKWARD, &a, ok);
    return m2rnn_attention_backward(be, &a);
}

static m2rnn_status embedding_call(const m2rnn_backend *be, bool bwd, const vec_io *io, const vec_params *p, bool probe, bool *ok)
{
    (void)p;
    m2rnn_embedding_inputs in = {.ids = get(io, "ids"), .table = get(io, "table")};
    if (!bwd) {
        m2rnn_embedding_forward_args a = {.in = in, .y = get(io, "y")};
        if (probe) return probe_answer(be, M2RNN_BACKEND_HAS(be, embedding_forward), M2RNN_OP_EMBEDDING_FORWARD, &a, ok);
        return m2rnn_embedding_forward(be, &a);
    }
    m2rnn_embedding_backward_args a = {.in = in, .dy = get(io, "dy"), .dtable = get(io, "dtable")};
    if (probe) return probe_answer(be, M2RNN_BACKEND_HAS(be, embedding_backward), M2RNN_OP_EMBEDDING_BACKWARD, &a, ok);
    return m2rnn_embedding_backward(be, &a);
}

static m2rnn_status cross_entropy_call(const m2rnn_backend *be, bool bwd, const vec_io *io, const vec_params *p, bool probe, bool *ok)
{
    m2rnn_cross_entropy_inputs in = {.logits = get(io, "logits"), .targets = get(io, "targets"), .has_ignore = p->has_ignore != 0,
                                     .ignore_index = p->ignore_index};
    if (!bwd) {
        m2rnn_cross_entropy_forward_args a = {.in = in, .loss = get(io, "loss")};
        if (probe) return probe_answer(be, M2RNN_BACKEND_HAS(be, cross_entropy_forward), M2RNN_OP_CROSS_ENTROPY_FORWARD, &a, ok);
        return m2rnn_cross_entropy_forward(be, &a);
    }
    m2rnn_cross_entropy_backward_args a = {.in = in, .dloss = get(io, "dloss"), .dlogits = get(io, "dlogits")};
    if (probe) return probe_answer(be, M2RNN_BACKEND_HAS(be, cross_entropy_backward), M2RNN_OP_CROSS_ENTROPY_BACKWARD, &a, ok);
    return m2rnn_cross_entropy_backward(be, &a);
}

static const char GDN_STEPPED[] =
    "stepped emulation: the double reference run one token at a time, the state (forward) and the carried dL/dS "
    "(backward) rounded after every token to what the class holds between steps (f32: fp32; tf32: tf32, every step's "
    "products reading it as tf32 operands, kept rounded: the pessimistic side; bf16: bf16, a state kept in the storage "
    "dtype, SPEC.md 7), on inputs perturbed by the relative rel of one token's rounding chain (the rule, tools/opcases.c)";

static const char BLOCK_STEPPED[] =
    "stepped emulation: the block's double reference run one token at a time (ht and conv_state_out fed back as h0 and "
    "conv_state0), the recurrent state and the conv state (forward) and the carried dht and dconv_state (backward) "
    "rounded after every token to what the class holds between steps (f32: fp32; tf32: tf32, kept rounded: the "
    "pessimistic side; bf16: bf16, states kept in the storage dtype, SPEC.md 7), parameter gradients summed over the "
    "tokens, on inputs perturbed by the relative rel of one token's rounding chain (the rule, tools/opcases.c)";

static const vec_opdesc descs[] = {
    {"decay_gate", M2RNN_OP_DECAY_GATE_FORWARD, M2RNN_OP_DECAY_GATE_BACKWARD, "f", "df", "", decay_gate_call, ALL_CLASSES, NULL, NULL, NULL},
    {"conv1d", M2RNN_OP_CONV1D_FORWARD, M2RNN_OP_CONV1D_BACKWARD, "y state_out", "dy dstate_out", "cu_seqlens", conv1d_call,
     ALL_CLASSES, NULL, NULL, NULL},
    {"linear", M2RNN_OP_LINEAR_FORWARD, M2RNN_OP_LINEAR_BACKWARD, "y", "dy", "", linear_call, ALL_CLASSES, NULL, NULL, NULL},
    {"rmsnorm", M2RNN_OP_RMSNORM_FORWARD, M2RNN_OP_RMSNORM_BACKWARD, "y", "dy", "", rmsnorm_call, ALL_CLASSES, NULL, NULL, NULL},
    {"silu", M2RNN_OP_SILU_FORWARD, M2RNN_OP_SILU_BACKWARD, "y", "dy", "", silu_call, ALL_CLASSES, NULL, NULL, NULL},
    {"mlp", M2RNN_OP_MLP_FORWARD, M2RNN_OP_MLP_BACKWARD, "y", "dy", "", mlp_call, ALL_CLASSES, NULL, NULL, NULL},
    {"attention", M2RNN_OP_ATTENTION_FORWARD, M2RNN_OP_ATTENTION_BACKWARD, "o", "dout", "", attention_call, ALL_CLASSES, NULL, NULL, NULL},
    {"gdn", M2RNN_OP_GDN_FORWARD, M2RNN_OP_GDN_BACKWARD, "o ht", "dout dht", "cu_seqlens", gdn_call, ALL_CLASSES, NULL,
     vec_gdn_emulate_steps, GDN_STEPPED},
    {"block", M2RNN_OP_BLOCK_FORWARD, M2RNN_OP_BLOCK_BACKWARD, "o ht conv_state_out", "dout dht dconv_state_out", "cu_seqlens",
     block_call, ALL_CLASSES, NULL, vec_block_emulate_steps, BLOCK_STEPPED},
    {"embedding", M2RNN_OP_EMBEDDING_FORWARD, M2RNN_OP_EMBEDDING_BACKWARD, "y", "dy", "ids", embedding_call, ALL_CLASSES, NULL, NULL, NULL},
    {"cross_entropy", M2RNN_OP_CROSS_ENTROPY_FORWARD, M2RNN_OP_CROSS_ENTROPY_BACKWARD, "loss", "dloss", "targets",
     cross_entropy_call, ALL_CLASSES, NULL, NULL, NULL},
};

const vec_opdesc *vec_opdescs(size_t *n)
{
    *n = sizeof descs / sizeof descs[0];
    return descs;
}

const vec_opdesc *vec_opdesc_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof descs / sizeof descs[0]; i++)
        if (strcmp(descs[i].name, name) == 0) return &descs[i];
    return NULL;
}
