#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double test_uniform(test_rng *r, double lo, double hi)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return lo + (hi - lo) * (double)(z >> 11) * 0x1p-53;
}

static m2rnn_tensor make(int rank, const int64_t *shape)
{
    m2rnn_tensor t = m2rnn_tensor_make(NULL, M2RNN_F64, rank, shape);
    int64_t n = m2rnn_tensor_numel(&t);
    t.data = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    ck_assert_ptr_nonnull(t.data);
    return t;
}

static void fill(m2rnn_tensor *t, test_rng *r, double lo, double hi)
{
    int64_t n = m2rnn_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) ((double *)t->data)[i] = test_uniform(r, lo, hi);
}

/* A per-token tensor: the token axes, then heads, then dim (none when dim is 0). */
static m2rnn_tensor token_tensor(const int64_t *lead, int nlead, int64_t heads, int64_t dim)
{
    int64_t shape[4];
    int rank = 0;
    for (int i = 0; i < nlead; i++) shape[rank++] = lead[i];
    shape[rank++] = heads;
    if (dim > 0) shape[rank++] = dim;
    return make(rank, shape);
}

m2rnn_tensor tensor_like(const m2rnn_tensor *t, m2rnn_dtype dtype)
{
    m2rnn_tensor u = m2rnn_tensor_make(NULL, dtype, t->rank, t->shape);
    size_t bytes = m2rnn_tensor_nbytes(&u);
    u.data = calloc(bytes ? bytes : 1, 1);
    ck_assert_ptr_nonnull(u.data);
    return u;
}

double *tensor_copy(const m2rnn_tensor *t)
{
    int64_t n = m2rnn_tensor_numel(t);
    double *x = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    ck_assert_ptr_nonnull(x);
    m2rnn_tensor_to_f64(t, x);
    return x;
}

void rec_problem_init(rec_problem *p, const rec_shape *s, uint64_t seed)
{
    memset(p, 0, sizeof *p);
    p->shape = *s;
    rec_shape *sh = &p->shape;
    int64_t *counts[] = {&sh->nq, &sh->nk, &sh->nv, &sh->nf, &sh->nw};
    for (int i = 0; i < 5; i++) if (*counts[i] == 0) *counts[i] = sh->N;
    test_rng r = {seed * 0x2545f4914f6cdd1dull + 1};

    /* Token axes: (B,S) dense, or (T) packed. */
    int64_t lead[2];
    int nlead;
    if (sh->varlen) {
        p->cu[0] = 0;
        for (int64_t b = 0; b < sh->B; b++) p->cu[b + 1] = p->cu[b] + sh->seqlens[b];
        lead[0] = p->cu[sh->B];
        nlead = 1;
    } else {
        lead[0] = sh->B;
        lead[1] = sh->S;
        nlead = 2;
    }
    m2rnn_recurrence_inputs *in = &p->fwd.in;
    in->q = token_tensor(lead, nlead, sh->nq, sh->K);
    in->k = token_tensor(lead, nlead, sh->nk, sh->K);
    in->v = token_tensor(lead, nlead, sh->nv, sh->V);
    in->f = token_tensor(lead, nlead, sh->nf, 0);
    p->fwd.y = token_tensor(lead, nlead, sh->N, sh->V);
    p->bwd.dy = token_tensor(lead, nlead, sh->N, sh->V);
    int64_t wshape[3] = {sh->nw, sh->V, sh->V}, sshape[4] = {sh->B, sh->N, sh->K, sh->V};
    in->W = make(3, wshape);
    fill(&in->q, &r, -1, 1);
    fill(&in->k, &r, -1, 1);
    fill(&in->v, &r, -1, 1);
    fill(&in->f, &r, 0.05, 0.95);
    fill(&p->bwd.dy, &r, -1, 1);
    /* W: entries in ±0.9/V keep every row sum below 0.9, so ‖W‖∞ < 1: contractive. */
    fill(&in->W, &r, -0.9 / (double)sh->V, 0.9 / (double)sh->V);
    if (sh->h0) { in->h0 = make(4, sshape); fill(&in->h0, &r, -1, 1); }
    p->fwd.ht = make(4, sshape);
    if (sh->dht) { p->bwd.dht = make(4, sshape); fill(&p->bwd.dht, &r, -1, 1); }
    if (sh->varlen) in->cu_seqlens = m2rnn_tensor_of(p->cu, M2RNN_I64, 1, sh->B + 1);

    p->bwd.in = *in;
    p->bwd.clip_mode = sh->clip_mode;
    p->bwd.clip = sh->clip;
    p->bwd.dq = tensor_like(&in->q, M2RNN_F64);
    p->bwd.dk = tensor_like(&in->k, M2RNN_F64);
    p->bwd.dv = tensor_like(&in->v, M2RNN_F64);
    p->bwd.dW = tensor_like(&in->W, M2RNN_F64);
    p->bwd.df = tensor_like(&in->f, M2RNN_F64);
    p->bwd.dh0 = make(4, sshape);
}

void rec_problem_free(rec_problem *p)
{
    m2rnn_tensor *all[] = {&p->fwd.in.q, &p->fwd.in.k, &p->fwd.in.v, &p->fwd.in.W, &p->fwd.in.f, &p->fwd.in.h0,
                           &p->fwd.y, &p->fwd.ht, &p->bwd.dy, &p->bwd.dht, &p->bwd.dq, &p->bwd.dk,
                           &p->bwd.dv, &p->bwd.dW, &p->bwd.df, &p->bwd.dh0};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]->data);
}

void rec_run(rec_problem *p)
{
    m2rnn_status st = m2rnn_recurrence_forward(m2rnn_backend_reference(), &p->fwd);
    ck_assert_msg(st == M2RNN_OK, "%s: forward: %s", p->shape.name, m2rnn_last_error());
    st = m2rnn_recurrence_backward(m2rnn_backend_reference(), &p->bwd);
    ck_assert_msg(st == M2RNN_OK, "%s: backward: %s", p->shape.name, m2rnn_last_error());
}

static double dot(const m2rnn_tensor *a, const m2rnn_tensor *b)
{
    double s = 0.0;
    int64_t n = m2rnn_tensor_numel(a);
    for (int64_t i = 0; i < n; i++) s += ((const double *)a->data)[i] * ((const double *)b->data)[i];
    return s;
}

double rec_loss(rec_problem *p)
{
    m2rnn_status st = m2rnn_recurrence_forward_ref(&p->fwd);
    ck_assert_msg(st == M2RNN_OK, "%s: forward: %s", p->shape.name, m2rnn_last_error());
    double loss = dot(&p->fwd.y, &p->bwd.dy);
    if (m2rnn_tensor_present(&p->bwd.dht)) loss += dot(&p->fwd.ht, &p->bwd.dht);
    return loss;
}

void assert_tensors_equal(const m2rnn_tensor *a, const m2rnn_tensor *b, const char *what)
{
    int64_t n = m2rnn_tensor_numel(a);
    ck_assert_msg(n == m2rnn_tensor_numel(b), "%s: element counts differ", what);
    ck_assert_msg(a->dtype == b->dtype, "%s: dtypes differ", what);
    ck_assert_msg(memcmp(a->data, b->data, (size_t)n * m2rnn_dtype_size(a->dtype)) == 0 || n == 0,
                  "%s: not bit-identical", what);
}

void assert_tensors_close(const m2rnn_tensor *a, const m2rnn_tensor *b, double rtol, double atol, const char *what)
{
    int64_t n = m2rnn_tensor_numel(a);
    ck_assert_msg(n == m2rnn_tensor_numel(b), "%s: element counts differ (%lld vs %lld)", what, (long long)n,
                  (long long)m2rnn_tensor_numel(b));
    for (int64_t i = 0; i < n; i++) {
        double x = m2rnn_tensor_get(a, i), y = m2rnn_tensor_get(b, i);
        ck_assert_msg(fabs(x - y) <= atol + rtol * fabs(y), "%s[%lld]: %.17g vs %.17g (rtol %g, atol %g)", what,
                      (long long)i, x, y, rtol, atol);
    }
}

int run_suite(Suite *suite)
{
    SRunner *sr = srunner_create(suite);
    srunner_run_all(sr, CK_ENV); /* CK_NORMAL unless CK_VERBOSITY says otherwise */
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
