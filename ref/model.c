/*
 * The hybrid language model (SPEC.md §5) — reference forward, backward and step-wise inference.
 *
 * Shapes: ids, targets (B,S); x, n, m (B,S,d) per layer; logits (B,S,vocab). L layers.
 *
 * Forward (xs[l] is the input of layer l, mids[l] the stream after its mixer):
 *   xs[0]   = embed(ids)
 *   mids[l] = xs[l] + Mixer_l(RMSNorm(xs[l]; norm1_l))
 *   xs[l+1] = mids[l] + MLP_l(RMSNorm(mids[l]; norm2_l))
 *   logits  = RMSNorm(xs[L]; final_norm) W_headᵀ,   loss = CE(logits, targets)
 *
 * Backward (dx carries dL/d(stream)):
 *   dlogits = CE'(...);  dxf, dW_head = linear';  dx, dfinal_norm = rmsnorm'(xs[L]; dxf)
 *   for l = L-1 .. 0:
 *     dn2, dMLP_l = mlp'(RMSNorm(mids[l]); dx);   dx += rmsnorm'(mids[l]; dn2)   (the residual keeps dx)
 *     dn1, dMixer_l = mixer'(RMSNorm(xs[l]); dx); dx += rmsnorm'(xs[l]; dn1)
 *   dembed = embedding'(ids; dx)
 * Every parameter is used once, so each op writes its gradient straight into the gradient
 * buffer's view (same layout as params). Activations are F64; the blocks recompute their own
 * intermediates in their backward.
 *
 * Step-wise: with a state, each R/G mixer starts from the state's recurrent and conv states and
 * writes the new ones back; each A mixer appends to its KV cache at position state->pos.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer_util.h"
#include "m2rnn/cross_entropy.h"
#include "m2rnn/embedding.h"
#include "m2rnn/linear.h"
#include "m2rnn/mlp.h"
#include "m2rnn/model.h"
#include "m2rnn/rmsnorm.h"

typedef struct {
    char kind;
    m2rnn_tensor norm1, norm2, W_gate, W_up, W_down;
    m2rnn_block_inputs r;            /* parameter tensors of an R mixer */
    m2rnn_gdn_block_inputs g;        /* ... of a G mixer */
    m2rnn_attention_block_inputs a;  /* ... of an A mixer */
} layer_params;

struct m2rnn_model_layers {
    m2rnn_tensor embed, final_norm, head;
    layer_params *l;
    char *pattern;
};

/* ---- sizes of the mixers ----------------------------------------------------------------- */

typedef struct {
    int64_t N, nq, nk, nf, nw, K, V, C, P;
} r_sizes;

static r_sizes r_sizes_of(const m2rnn_block_config *c)
{
    r_sizes s = {.N = c->heads, .K = c->key_dim, .V = c->value_dim};
    s.nq = c->q_heads ? c->q_heads : s.N;
    s.nk = c->k_heads ? c->k_heads : s.N;
    s.nf = c->f_heads ? c->f_heads : s.N;
    s.nw = c->w_heads ? c->w_heads : s.N;
    s.C = (s.nq + s.nk) * s.K + s.N * s.V;
    s.P = s.C + s.nf + s.N * s.V;
    return s;
}

static int64_t g_conv_channels(const m2rnn_gdn_block_config *c) { return 2 * c->heads * c->key_dim + c->heads * c->value_dim; }

/* ---- the parameter layout ---------------------------------------------------------------- */

typedef struct {
    m2rnn_model *m;
    double *base;   /* NULL: only count */
    int64_t off;
    bool record;    /* add each view to m->tensors */
} builder;

static m2rnn_tensor take(builder *b, const char *prefix, const char *name, int rank, int64_t d0, int64_t d1, int64_t d2)
{
    int64_t shape[3] = {d0, d1, d2};
    m2rnn_tensor t = m2rnn_tensor_make(b->base ? b->base + b->off : NULL, M2RNN_F64, rank, shape);
    if (b->record) {
        m2rnn_model_tensor *e = &b->m->tensors[b->m->num_tensors++];
        snprintf(e->name, sizeof e->name, "%s%s", prefix, name);
        e->t = t;
        e->offset = b->off;
    }
    b->off += m2rnn_tensor_numel(&t);
    return t;
}

/* Lay out every parameter over base (in this order) into L; returns the element count. */
static int64_t build(m2rnn_model *m, double *base, bool record, m2rnn_model_layers *L)
{
    const m2rnn_model_config *c = &m->cfg;
    const int64_t d = c->model_dim, h = c->mlp_dim;
    builder b = {.m = m, .base = base, .record = record};
    if (record) m->num_tensors = 0;
    L->embed = take(&b, "", "embed", 2, c->vocab, d, 0);
    for (int64_t i = 0; i < m->num_layers; i++) {
        layer_params *p = &L->l[i];
        char pre[32];
        snprintf(pre, sizeof pre, "layers.%lld.", (long long)i);
        p->kind = c->pattern[i];
        p->norm1 = take(&b, pre, "norm1", 1, d, 0, 0);
        if (p->kind == 'R') {
            r_sizes s = r_sizes_of(&c->m2rnn);
            p->r = (m2rnn_block_inputs){.cfg = c->m2rnn};
            p->r.W_in = take(&b, pre, "mixer.W_in", 2, s.P, d, 0);
            p->r.conv_w = take(&b, pre, "mixer.conv_w", 2, s.C, c->m2rnn_kernel, 0);
            p->r.A_log = take(&b, pre, "mixer.A_log", 1, s.nf, 0, 0);
            p->r.dt_bias = take(&b, pre, "mixer.dt_bias", 1, s.nf, 0, 0);
            p->r.W = take(&b, pre, "mixer.W", 3, s.nw, s.V, s.V);
            p->r.D = take(&b, pre, "mixer.D", 2, s.N, s.V, 0);
            p->r.norm_w = take(&b, pre, "mixer.norm_w", 1, s.N * s.V, 0, 0);
            p->r.W_o = take(&b, pre, "mixer.W_o", 2, d, s.N * s.V, 0);
        } else if (p->kind == 'G') {
            const m2rnn_gdn_block_config *g = &c->gdn;
            const int64_t H = g->heads, HV = g->heads * g->value_dim;
            p->g = (m2rnn_gdn_block_inputs){.cfg = *g};
            p->g.W_qkv = take(&b, pre, "mixer.W_qkv", 2, g_conv_channels(g), d, 0);
            p->g.W_abg = take(&b, pre, "mixer.W_abg", 2, 2 * H + HV, d, 0);
            p->g.conv_w = take(&b, pre, "mixer.conv_w", 2, g_conv_channels(g), c->gdn_kernel, 0);
            p->g.A_log = take(&b, pre, "mixer.A_log", 1, H, 0, 0);
            p->g.dt_bias = take(&b, pre, "mixer.dt_bias", 1, H, 0, 0);
            p->g.norm_w = take(&b, pre, "mixer.norm_w", 1, g->value_dim, 0, 0);
            p->g.W_o = take(&b, pre, "mixer.W_o", 2, d, HV, 0);
        } else {
            const m2rnn_attention_block_config *a = &c->attn;
            p->a = (m2rnn_attention_block_inputs){.cfg = *a};
            p->a.W_qkv = take(&b, pre, "mixer.W_qkv", 2, (a->q_heads + 2 * a->kv_heads) * a->head_dim, d, 0);
            p->a.W_o = take(&b, pre, "mixer.W_o", 2, d, a->q_heads * a->head_dim, 0);
        }
        p->norm2 = take(&b, pre, "norm2", 1, d, 0, 0);
        p->W_gate = take(&b, pre, "mlp.W_gate", 2, h, d, 0);
        p->W_up = take(&b, pre, "mlp.W_up", 2, h, d, 0);
        p->W_down = take(&b, pre, "mlp.W_down", 2, d, h, 0);
    }
    L->final_norm = take(&b, "", "final_norm", 1, d, 0, 0);
    L->head = take(&b, "", "head", 2, c->vocab, d, 0);
    return b.off;
}

/* ---- create / free / init ---------------------------------------------------------------- */

static m2rnn_status check_config(const m2rnn_model_config *c)
{
    if (!c->pattern || !c->pattern[0]) return m2rnn_set_error(M2RNN_ERR_ARG, "cfg.pattern: empty (one of R, G, A per layer)");
    bool has[3] = {false, false, false};
    for (const char *p = c->pattern; *p; p++) {
        if (*p != 'R' && *p != 'G' && *p != 'A')
            return m2rnn_set_error(M2RNN_ERR_ARG, "cfg.pattern: '%c' at %d is not R (M²RNN), G (Gated DeltaNet) or A (attention)", *p,
                                   (int)(p - c->pattern));
        has[*p == 'R' ? 0 : *p == 'G' ? 1 : 2] = true;
    }
    if (strlen(c->pattern) > 4096) return m2rnn_set_error(M2RNN_ERR_ARG, "cfg.pattern: more than 4096 layers");
    if (c->vocab < 1 || c->model_dim < 1 || c->mlp_dim < 1)
        return m2rnn_set_error(M2RNN_ERR_ARG, "cfg: vocab, model_dim, mlp_dim must be >= 1");
    if (!(c->eps >= 0) || isinf(c->eps)) return m2rnn_set_error(M2RNN_ERR_ARG, "cfg.eps: must be finite and >= 0");
    if (has[0]) {
        const m2rnn_block_config *r = &c->m2rnn;
        if (r->heads < 1 || r->key_dim < 1 || r->value_dim < 1 || c->m2rnn_kernel < 1)
            return m2rnn_set_error(M2RNN_ERR_ARG, "cfg.m2rnn: heads, key_dim, value_dim and m2rnn_kernel must be >= 1");
        const int64_t counts[4] = {r->q_heads, r->k_heads, r->f_heads, r->w_heads};
        for (int i = 0; i < 4; i++)
            if (counts[i] < 0 || (counts[i] && r->heads % counts[i]))
                return m2rnn_set_error(M2RNN_ERR_HEADS, "cfg.m2rnn: a head count does not divide heads = %lld", (long long)r->heads);
    }
    if (has[1] && (c->gdn.heads < 1 || c->gdn.key_dim < 1 || c->gdn.value_dim < 1 || c->gdn_kernel < 1))
        return m2rnn_set_error(M2RNN_ERR_ARG, "cfg.gdn: heads, key_dim, value_dim and gdn_kernel must be >= 1");
    if (has[2]) {
        const m2rnn_attention_block_config *a = &c->attn;
        if (a->q_heads < 1 || a->kv_heads < 1 || a->head_dim < 1)
            return m2rnn_set_error(M2RNN_ERR_ARG, "cfg.attn: q_heads, kv_heads, head_dim must be >= 1");
        if (a->q_heads % a->kv_heads) return m2rnn_set_error(M2RNN_ERR_HEADS, "cfg.attn: kv_heads do not divide q_heads");
        if (a->rope && a->head_dim % 2) return m2rnn_set_error(M2RNN_ERR_ARG, "cfg.attn: RoPE needs an even head_dim");
    }
    return M2RNN_OK;
}

void m2rnn_model_free(m2rnn_model *m)
{
    if (!m) return;
    free(m->params);
    free(m->tensors);
    if (m->layers) {
        free(m->layers->l);
        free(m->layers->pattern);
        free(m->layers);
    }
    free(m);
}

m2rnn_status m2rnn_model_create(const m2rnn_model_config *cfg, m2rnn_model **out)
{
    if (!cfg || !out) return m2rnn_set_error(M2RNN_ERR_NULL, "model_create: NULL argument");
    *out = NULL;
    m2rnn_status st = check_config(cfg);
    if (st) return st;
    m2rnn_model *m = calloc(1, sizeof *m);
    if (!m) return m2rnn_set_error(M2RNN_ERR_NOMEM, "model_create: out of memory");
    m->cfg = *cfg;
    m->num_layers = (int64_t)strlen(cfg->pattern);
    m->layers = calloc(1, sizeof *m->layers);
    if (m->layers) {
        m->layers->pattern = malloc(strlen(cfg->pattern) + 1);
        m->layers->l = calloc((size_t)m->num_layers, sizeof(layer_params));
    }
    m->tensors = calloc((size_t)(3 + 14 * m->num_layers), sizeof(m2rnn_model_tensor));
    if (!m->layers || !m->layers->pattern || !m->layers->l || !m->tensors) {
        m2rnn_model_free(m);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "model_create: out of memory");
    }
    strcpy(m->layers->pattern, cfg->pattern);
    m->cfg.pattern = m->layers->pattern;
    m->num_params = build(m, NULL, false, m->layers);
    m->params = lu_zeros(m->num_params);
    if (!m->params) {
        m2rnn_model_free(m);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "model_create: cannot allocate %lld parameters", (long long)m->num_params);
    }
    build(m, m->params, true, m->layers);
    *out = m;
    return M2RNN_OK;
}

m2rnn_model_tensor *m2rnn_model_find(m2rnn_model *m, const char *name)
{
    for (int i = 0; m && i < m->num_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return &m->tensors[i];
    return NULL;
}

m2rnn_status m2rnn_model_init(m2rnn_model *m, uint64_t seed)
{
    if (!m) return m2rnn_set_error(M2RNN_ERR_NULL, "model_init: NULL model");
    m2rnn_rng rng = m2rnn_rng_seed(seed);
    m2rnn_model_layers *L = m->layers;
    const int64_t nl = m->num_layers;
    m2rnn_status st;
    if ((st = m2rnn_init_normal(&L->embed, 0.02, &rng))) return st;
    for (int64_t i = 0; i < nl; i++) {
        layer_params *p = &L->l[i];
        if ((st = m2rnn_init_constant(&p->norm1, 1.0)) || (st = m2rnn_init_constant(&p->norm2, 1.0))) return st;
        st = p->kind == 'R' ? m2rnn_block_init(&p->r, nl, &rng)
           : p->kind == 'G' ? m2rnn_gdn_block_init(&p->g, nl, &rng)
                            : m2rnn_attention_block_init(&p->a, nl, &rng);
        if (st || (st = m2rnn_init_normal(&p->W_gate, 0.02, &rng)) || (st = m2rnn_init_normal(&p->W_up, 0.02, &rng)) ||
            (st = m2rnn_init_normal(&p->W_down, 0.02 / sqrt(2.0 * (double)nl), &rng)))
            return st;
    }
    if ((st = m2rnn_init_constant(&L->final_norm, 1.0))) return st;
    return m2rnn_init_normal(&L->head, 0.02, &rng);
}

/* ---- states ------------------------------------------------------------------------------ */

void m2rnn_model_state_free(m2rnn_model_state *s)
{
    if (!s) return;
    for (int64_t i = 0; i < s->num_layers; i++) {
        if (s->h) free(s->h[i]);
        if (s->conv) free(s->conv[i]);
        if (s->k_cache) free(s->k_cache[i]);
        if (s->v_cache) free(s->v_cache[i]);
    }
    free(s->h);
    free(s->conv);
    free(s->k_cache);
    free(s->v_cache);
    free(s);
}

m2rnn_status m2rnn_model_state_create(const m2rnn_model *m, int64_t B, int64_t max_len, m2rnn_model_state **out)
{
    if (!m || !out) return m2rnn_set_error(M2RNN_ERR_NULL, "model_state_create: NULL argument");
    if (B < 1 || max_len < 1) return m2rnn_set_error(M2RNN_ERR_ARG, "model_state_create: batch and max_len must be >= 1");
    m2rnn_model_state *s = calloc(1, sizeof *s);
    if (!s) return m2rnn_set_error(M2RNN_ERR_NOMEM, "model_state_create: out of memory");
    *s = (m2rnn_model_state){.batch = B, .max_len = max_len, .num_layers = m->num_layers};
    const size_t n = (size_t)m->num_layers;
    s->h = calloc(n, sizeof(double *));
    s->conv = calloc(n, sizeof(double *));
    s->k_cache = calloc(n, sizeof(double *));
    s->v_cache = calloc(n, sizeof(double *));
    bool ok = s->h && s->conv && s->k_cache && s->v_cache;
    const m2rnn_model_config *c = &m->cfg;
    for (int64_t i = 0; ok && i < m->num_layers; i++) {
        if (c->pattern[i] == 'R') {
            r_sizes z = r_sizes_of(&c->m2rnn);
            ok = (s->h[i] = lu_zeros(B * z.N * z.K * z.V)) && (s->conv[i] = lu_zeros(B * z.C * (c->m2rnn_kernel - 1)));
        } else if (c->pattern[i] == 'G') {
            const m2rnn_gdn_block_config *g = &c->gdn;
            ok = (s->h[i] = lu_zeros(B * g->heads * g->key_dim * g->value_dim)) &&
                 (s->conv[i] = lu_zeros(B * g_conv_channels(g) * (c->gdn_kernel - 1)));
        } else {
            const int64_t n_kv = B * max_len * c->attn.kv_heads * c->attn.head_dim;
            ok = (s->k_cache[i] = lu_zeros(n_kv)) && (s->v_cache[i] = lu_zeros(n_kv));
        }
    }
    if (!ok) {
        m2rnn_model_state_free(s);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "model_state_create: out of memory");
    }
    *out = s;
    return M2RNN_OK;
}

/* ---- the mixers -------------------------------------------------------------------------- */

/* o = Mixer_i(n), n and o (B,S,d) F64; with a state, read and update layer i's states. */
static m2rnn_status mixer_forward(const m2rnn_model *m, int64_t i, m2rnn_tensor n, m2rnn_tensor o, m2rnn_model_state *s)
{
    const m2rnn_model_config *c = &m->cfg;
    const layer_params *p = &m->layers->l[i];
    const int64_t B = n.shape[0];
    m2rnn_status st;
    if (p->kind == 'A') {
        m2rnn_attention_block_forward_args a = {.in = p->a, .o = o};
        a.in.x = n;
        if (s) {
            const int64_t Hkv = c->attn.kv_heads, D = c->attn.head_dim;
            a.in.k_cache = m2rnn_tensor_of(s->k_cache[i], M2RNN_F64, 4, B, s->max_len, Hkv, D);
            a.in.v_cache = m2rnn_tensor_of(s->v_cache[i], M2RNN_F64, 4, B, s->max_len, Hkv, D);
            a.in.cache_len = s->pos;
        }
        return m2rnn_attention_block_forward_ref(&a);
    }
    /* R and G: states (B, heads, K, V) and (B, C, Kc-1); new ones written to fresh buffers, then copied */
    int64_t H, K, V, C, Kc;
    if (p->kind == 'R') {
        r_sizes z = r_sizes_of(&c->m2rnn);
        H = z.N, K = z.K, V = z.V, C = z.C, Kc = c->m2rnn_kernel;
    } else {
        H = c->gdn.heads, K = c->gdn.key_dim, V = c->gdn.value_dim, C = g_conv_channels(&c->gdn), Kc = c->gdn_kernel;
    }
    m2rnn_tensor h0 = {0}, cs0 = {0}, ht = {0}, cs1 = {0};
    double *ht_buf = NULL, *cs_buf = NULL;
    if (s) {
        ht_buf = lu_alloc(B * H * K * V);
        cs_buf = lu_alloc(B * C * (Kc - 1));
        if (!ht_buf || !cs_buf) {
            free(ht_buf);
            free(cs_buf);
            return m2rnn_set_error(M2RNN_ERR_NOMEM, "model: cannot allocate states");
        }
        h0 = m2rnn_tensor_of(s->h[i], M2RNN_F64, 4, B, H, K, V);
        cs0 = m2rnn_tensor_of(s->conv[i], M2RNN_F64, 3, B, C, Kc - 1);
        ht = m2rnn_tensor_of(ht_buf, M2RNN_F64, 4, B, H, K, V);
        cs1 = m2rnn_tensor_of(cs_buf, M2RNN_F64, 3, B, C, Kc - 1);
    }
    if (p->kind == 'R') {
        m2rnn_block_forward_args a = {.in = p->r, .o = o, .ht = ht, .conv_state_out = cs1};
        a.in.x = n;
        a.in.h0 = h0;
        a.in.conv_state0 = cs0;
        st = m2rnn_block_forward_ref(&a);
    } else {
        m2rnn_gdn_block_forward_args a = {.in = p->g, .o = o, .ht = ht, .conv_state_out = cs1};
        a.in.x = n;
        a.in.h0 = h0;
        a.in.conv_state0 = cs0;
        st = m2rnn_gdn_block_forward_ref(&a);
    }
    if (s && !st) {
        memcpy(s->h[i], ht_buf, (size_t)(B * H * K * V) * sizeof(double));
        memcpy(s->conv[i], cs_buf, (size_t)(B * C * (Kc - 1)) * sizeof(double));
    }
    free(ht_buf);
    free(cs_buf);
    return st;
}

/* dn = dMixer_i/dn · dout, the mixer's parameter gradients into layer gl of the gradient layout. */
static m2rnn_status mixer_backward(const m2rnn_model *m, int64_t i, const layer_params *gl, m2rnn_tensor n, m2rnn_tensor dout,
                                   m2rnn_tensor dn)
{
    const layer_params *p = &m->layers->l[i];
    if (p->kind == 'R') {
        m2rnn_block_backward_args a = {.in = p->r, .dout = dout, .dx = dn, .dW_in = gl->r.W_in, .dconv_w = gl->r.conv_w,
                                       .dA_log = gl->r.A_log, .ddt_bias = gl->r.dt_bias, .dW = gl->r.W, .dD = gl->r.D,
                                       .dnorm_w = gl->r.norm_w, .dW_o = gl->r.W_o};
        a.in.x = n;
        return m2rnn_block_backward_ref(&a);
    }
    if (p->kind == 'G') {
        m2rnn_gdn_block_backward_args a = {.in = p->g, .dout = dout, .dx = dn, .dW_qkv = gl->g.W_qkv, .dW_abg = gl->g.W_abg,
                                           .dconv_w = gl->g.conv_w, .dA_log = gl->g.A_log, .ddt_bias = gl->g.dt_bias,
                                           .dnorm_w = gl->g.norm_w, .dW_o = gl->g.W_o};
        a.in.x = n;
        return m2rnn_gdn_block_backward_ref(&a);
    }
    m2rnn_attention_block_backward_args a = {.in = p->a, .dout = dout, .dx = dn, .dW_qkv = gl->a.W_qkv, .dW_o = gl->a.W_o};
    a.in.x = n;
    return m2rnn_attention_block_backward_ref(&a);
}

/* ---- the stack --------------------------------------------------------------------------- */

typedef struct {
    int64_t B, S, T, d;
    double **xs;    /* L+1 buffers (T×d) */
    double **mids;  /* L buffers */
    double *n, *y;  /* scratch (T×d) */
} acts;

static void acts_free(acts *a, int64_t L)
{
    for (int64_t i = 0; i <= L; i++) {
        if (a->xs) free(a->xs[i]);
        if (a->mids && i < L) free(a->mids[i]);
    }
    free(a->xs);
    free(a->mids);
    free(a->n);
    free(a->y);
}

static m2rnn_tensor btd(const acts *a, double *data) { return m2rnn_tensor_of(data, M2RNN_F64, 3, a->B, a->S, a->d); }

static m2rnn_status rmsnorm_fwd(m2rnn_tensor x, m2rnn_tensor w, double eps, m2rnn_tensor y)
{
    m2rnn_rmsnorm_forward_args r = {.in = {.x = x, .w = w, .eps = eps}, .y = y};
    return m2rnn_rmsnorm_forward_ref(&r);
}

/* The residual stack, keeping every layer's input and post-mixer stream. */
static m2rnn_status run_stack(const m2rnn_model *m, const m2rnn_tensor *ids, m2rnn_model_state *s, acts *a)
{
    const m2rnn_model_layers *L = m->layers;
    const int64_t nl = m->num_layers;
    memset(a, 0, sizeof *a);
    a->B = ids->shape[0];
    a->S = ids->shape[1];
    a->T = a->B * a->S;
    a->d = m->cfg.model_dim;
    a->xs = calloc((size_t)nl + 1, sizeof(double *));
    a->mids = calloc((size_t)nl + 1, sizeof(double *));
    a->n = lu_alloc(a->T * a->d);
    a->y = lu_alloc(a->T * a->d);
    bool ok = a->xs && a->mids && a->n && a->y;
    for (int64_t i = 0; ok && i <= nl; i++) ok = (a->xs[i] = lu_alloc(a->T * a->d)) && (i == nl || (a->mids[i] = lu_alloc(a->T * a->d)));
    if (!ok) {
        acts_free(a, nl);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "model: cannot allocate the activations");
    }
    m2rnn_status st;
    m2rnn_embedding_forward_args emb = {.in = {.ids = *ids, .table = L->embed}, .y = btd(a, a->xs[0])};
    if ((st = m2rnn_embedding_forward_ref(&emb))) goto fail;
    for (int64_t i = 0; i < nl; i++) {
        const layer_params *p = &L->l[i];
        const int64_t Td = a->T * a->d;
        if ((st = rmsnorm_fwd(btd(a, a->xs[i]), p->norm1, m->cfg.eps, btd(a, a->n))) ||
            (st = mixer_forward(m, i, btd(a, a->n), btd(a, a->y), s)))
            goto fail;
        for (int64_t e = 0; e < Td; e++) a->mids[i][e] = a->xs[i][e] + a->y[e];
        m2rnn_mlp_forward_args mlp = {.in = {.x = btd(a, a->n), .W_gate = p->W_gate, .W_up = p->W_up, .W_down = p->W_down},
                                      .y = btd(a, a->y)};
        if ((st = rmsnorm_fwd(btd(a, a->mids[i]), p->norm2, m->cfg.eps, btd(a, a->n))) || (st = m2rnn_mlp_forward_ref(&mlp))) goto fail;
        for (int64_t e = 0; e < Td; e++) a->xs[i + 1][e] = a->mids[i][e] + a->y[e];
    }
    return M2RNN_OK;
fail:
    acts_free(a, nl);
    return st;
}

static m2rnn_status check_run(const m2rnn_model *m, const m2rnn_model_run *r, bool backward)
{
    if (!m || !r) return m2rnn_set_error(M2RNN_ERR_NULL, "model: NULL argument");
    const m2rnn_tensor *ids = &r->ids;
    if (!m2rnn_tensor_present(ids)) return m2rnn_set_error(M2RNN_ERR_NULL, "ids: required");
    if (ids->rank != 2 || ids->shape[0] < 1 || ids->shape[1] < 1)
        return m2rnn_set_error(M2RNN_ERR_SHAPE, "ids: expected shape (B,S) with B, S >= 1");
    if (backward && !m2rnn_tensor_present(&r->targets)) return m2rnn_set_error(M2RNN_ERR_NULL, "targets: required for the backward");
    if (backward && !r->grad) return m2rnn_set_error(M2RNN_ERR_NULL, "grad: required for the backward");
    if (backward && r->state) return m2rnn_set_error(M2RNN_ERR_ARG, "state: the backward runs whole sequences, without a state");
    if (r->state) {
        const m2rnn_model_state *s = r->state;
        if (s->batch != ids->shape[0] || s->num_layers != m->num_layers)
            return m2rnn_set_error(M2RNN_ERR_SHAPE, "state: made for batch %lld and %lld layers, ids have batch %lld", (long long)s->batch,
                                   (long long)s->num_layers, (long long)ids->shape[0]);
        if (s->pos + ids->shape[1] > s->max_len)
            return m2rnn_set_error(M2RNN_ERR_ARG, "state: %lld + %lld tokens exceed max_len %lld", (long long)s->pos,
                                   (long long)ids->shape[1], (long long)s->max_len);
    }
    if (m2rnn_tensor_present(&r->logits)) {
        int64_t shape[3] = {ids->shape[0], ids->shape[1], m->cfg.vocab};
        m2rnn_status st = lu_shape(&r->logits, "logits", 3, shape);
        if (st || (st = lu_float(&r->logits, "logits"))) return st;
    }
    return M2RNN_OK;
}

/* logits (F64, T×vocab) from the last stream; loss with targets. */
static m2rnn_status head_forward(const m2rnn_model *m, const m2rnn_model_run *r, const acts *a, double *xf, double *logits, double *loss)
{
    const m2rnn_model_layers *L = m->layers;
    m2rnn_status st;
    m2rnn_tensor lt = m2rnn_tensor_of(logits, M2RNN_F64, 3, a->B, a->S, m->cfg.vocab);
    m2rnn_linear_forward_args head = {.in = {.x = btd(a, xf), .W = L->head}, .y = lt};
    if ((st = rmsnorm_fwd(btd(a, a->xs[m->num_layers]), L->final_norm, m->cfg.eps, btd(a, xf))) ||
        (st = m2rnn_linear_forward_ref(&head)))
        return st;
    if (m2rnn_tensor_present(&r->targets)) {
        m2rnn_cross_entropy_forward_args ce = {.in = {.logits = lt, .targets = r->targets, .has_ignore = r->has_ignore,
                                                      .ignore_index = r->ignore_index},
                                               .loss = m2rnn_tensor_of(loss, M2RNN_F64, 0)};
        if ((st = m2rnn_cross_entropy_forward_ref(&ce))) return st;
    }
    return M2RNN_OK;
}

m2rnn_status m2rnn_model_forward(const m2rnn_model *m, m2rnn_model_run *r)
{
    m2rnn_status st = check_run(m, r, false);
    if (st) return st;
    acts a;
    if ((st = run_stack(m, &r->ids, r->state, &a))) return st;
    double *xf = lu_alloc(a.T * a.d), *logits = lu_alloc(a.T * m->cfg.vocab);
    if (!xf || !logits) st = m2rnn_set_error(M2RNN_ERR_NOMEM, "model: cannot allocate logits");
    else if (!(st = head_forward(m, r, &a, xf, logits, &r->loss))) {
        if (m2rnn_tensor_present(&r->logits)) m2rnn_tensor_from_f64(&r->logits, logits);
        if (r->state) r->state->pos += a.S;
    }
    free(xf);
    free(logits);
    acts_free(&a, m->num_layers);
    return st;
}

m2rnn_status m2rnn_model_backward(const m2rnn_model *m, m2rnn_model_run *r)
{
    m2rnn_status st = check_run(m, r, true);
    if (st) return st;
    const m2rnn_model_layers *L = m->layers;
    const int64_t nl = m->num_layers, V = m->cfg.vocab;
    /* the gradient buffer, laid out like the parameters */
    m2rnn_model_layers G = {.l = calloc((size_t)nl, sizeof(layer_params))};
    if (!G.l) return m2rnn_set_error(M2RNN_ERR_NOMEM, "model_backward: out of memory");
    build((m2rnn_model *)m, r->grad, false, &G);
    acts a;
    if ((st = run_stack(m, &r->ids, NULL, &a))) {
        free(G.l);
        return st;
    }
    const int64_t Td = a.T * a.d;
    double *xf = lu_alloc(Td), *logits = lu_alloc(a.T * V), *dlogits = lu_alloc(a.T * V), *dx = lu_alloc(Td), *dn = lu_alloc(Td),
           *dt = lu_alloc(Td);
    double *all[] = {xf, logits, dlogits, dx, dn, dt};
    for (int i = 0; i < 6; i++)
        if (!all[i]) {
            st = m2rnn_set_error(M2RNN_ERR_NOMEM, "model_backward: cannot allocate buffers");
            goto done;
        }
    if ((st = head_forward(m, r, &a, xf, logits, &r->loss))) goto done;
    /* loss -> logits -> head -> final norm */
    m2rnn_tensor lt = m2rnn_tensor_of(logits, M2RNN_F64, 3, a.B, a.S, V), dlt = m2rnn_tensor_of(dlogits, M2RNN_F64, 3, a.B, a.S, V);
    m2rnn_cross_entropy_backward_args ce = {.in = {.logits = lt, .targets = r->targets, .has_ignore = r->has_ignore,
                                                   .ignore_index = r->ignore_index},
                                            .dlogits = dlt};
    m2rnn_linear_backward_args head = {.in = {.x = btd(&a, xf), .W = L->head}, .dy = dlt, .dx = btd(&a, dn), .dW = G.head};
    m2rnn_rmsnorm_backward_args fn = {.in = {.x = btd(&a, a.xs[nl]), .w = L->final_norm, .eps = m->cfg.eps}, .dy = btd(&a, dn),
                                      .dx = btd(&a, dx), .dw = G.final_norm};
    if ((st = m2rnn_cross_entropy_backward_ref(&ce)) || (st = m2rnn_linear_backward_ref(&head)) || (st = m2rnn_rmsnorm_backward_ref(&fn)))
        goto done;
    for (int64_t i = nl - 1; i >= 0; i--) {
        const layer_params *p = &L->l[i], *g = &G.l[i];
        /* xs[i+1] = mids[i] + MLP(RMSNorm(mids[i])) */
        m2rnn_mlp_backward_args mlp = {.in = {.x = btd(&a, a.n), .W_gate = p->W_gate, .W_up = p->W_up, .W_down = p->W_down},
                                       .dy = btd(&a, dx), .dx = btd(&a, dn), .dW_gate = g->W_gate, .dW_up = g->W_up, .dW_down = g->W_down};
        m2rnn_rmsnorm_backward_args n2 = {.in = {.x = btd(&a, a.mids[i]), .w = p->norm2, .eps = m->cfg.eps}, .dy = btd(&a, dn),
                                          .dx = btd(&a, dt), .dw = g->norm2};
        if ((st = rmsnorm_fwd(btd(&a, a.mids[i]), p->norm2, m->cfg.eps, btd(&a, a.n))) || (st = m2rnn_mlp_backward_ref(&mlp)) ||
            (st = m2rnn_rmsnorm_backward_ref(&n2)))
            goto done;
        for (int64_t e = 0; e < Td; e++) dx[e] += dt[e];
        /* mids[i] = xs[i] + Mixer(RMSNorm(xs[i])) */
        m2rnn_rmsnorm_backward_args n1 = {.in = {.x = btd(&a, a.xs[i]), .w = p->norm1, .eps = m->cfg.eps}, .dy = btd(&a, dn),
                                          .dx = btd(&a, dt), .dw = g->norm1};
        if ((st = rmsnorm_fwd(btd(&a, a.xs[i]), p->norm1, m->cfg.eps, btd(&a, a.n))) ||
            (st = mixer_backward(m, i, g, btd(&a, a.n), btd(&a, dx), btd(&a, dn))) || (st = m2rnn_rmsnorm_backward_ref(&n1)))
            goto done;
        for (int64_t e = 0; e < Td; e++) dx[e] += dt[e];
    }
    m2rnn_embedding_backward_args emb = {.in = {.ids = r->ids, .table = L->embed}, .dy = btd(&a, dx), .dtable = G.embed};
    st = m2rnn_embedding_backward_ref(&emb);
done:
    lu_free_all(all, 6);
    acts_free(&a, nl);
    free(G.l);
    return st;
}
