#include "layer_testutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

m2rnn_tensor lt_tensor_dtype(m2rnn_dtype dtype, int rank, const int64_t *shape)
{
    m2rnn_tensor t = m2rnn_tensor_make(NULL, dtype, rank, shape);
    size_t bytes = m2rnn_tensor_nbytes(&t);
    t.data = calloc(bytes ? bytes : 1, 1);
    ck_assert_ptr_nonnull(t.data);
    return t;
}

m2rnn_tensor lt_tensor(int rank, ...)
{
    int64_t shape[M2RNN_MAX_RANK] = {0};
    va_list ap;
    va_start(ap, rank);
    for (int i = 0; i < rank; i++) shape[i] = va_arg(ap, int64_t);
    va_end(ap);
    return lt_tensor_dtype(M2RNN_F64, rank, shape);
}

void lt_fill(m2rnn_tensor *t, test_rng *r, double lo, double hi)
{
    int64_t n = m2rnn_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) m2rnn_tensor_set(t, i, test_uniform(r, lo, hi));
}

double lt_dot(const m2rnn_tensor *a, const m2rnn_tensor *b)
{
    if (!m2rnn_tensor_present(a) || !m2rnn_tensor_present(b)) return 0.0;
    double s = 0.0;
    int64_t n = m2rnn_tensor_numel(a);
    ck_assert_int_eq(n, m2rnn_tensor_numel(b));
    for (int64_t i = 0; i < n; i++) s += m2rnn_tensor_get(a, i) * m2rnn_tensor_get(b, i);
    return s;
}

void lt_free(m2rnn_tensor **ts, int count)
{
    for (int i = 0; i < count; i++) {
        free(ts[i]->data);
        ts[i]->data = NULL;
    }
}

void lt_check_grad(lt_loss_fn loss, void *ctx, m2rnn_tensor *x, const m2rnn_tensor *grad, double eps, double tol,
                   const char *what)
{
    ck_assert_msg(x->dtype == M2RNN_F64, "%s: the perturbed tensor must be F64", what);
    int64_t n = m2rnn_tensor_numel(x);
    ck_assert_int_eq(n, m2rnn_tensor_numel(grad));
    test_rng r = {(uint64_t)n * 7919u + 17};
    int samples = n <= 64 ? (int)n : 48;
    double *xd = x->data;
    for (int s = 0; s < samples; s++) {
        int64_t i = n <= 64 ? s : (int64_t)test_uniform(&r, 0, (double)n);
        double saved = xd[i];
        xd[i] = saved + eps;
        double plus = loss(ctx);
        xd[i] = saved - eps;
        double minus = loss(ctx);
        xd[i] = saved;
        double fd = (plus - minus) / (2 * eps), an = m2rnn_tensor_get(grad, i);
        ck_assert_msg(fabs(fd - an) <= tol * (1 + fabs(an)), "%s[%lld]: backward %.12g, finite difference %.12g", what,
                      (long long)i, an, fd);
    }
}

void lt_poison(m2rnn_tensor **ts, int count, double poison)
{
    for (int i = 0; i < count; i++) {
        if (!m2rnn_tensor_present(ts[i])) continue;
        int64_t n = m2rnn_tensor_numel(ts[i]);
        for (int64_t e = 0; e < n; e++) m2rnn_tensor_set(ts[i], e, poison);
    }
}

void lt_assert_poisoned(m2rnn_tensor **ts, int count, double poison, const char *what)
{
    for (int i = 0; i < count; i++) {
        if (!m2rnn_tensor_present(ts[i])) continue;
        int64_t n = m2rnn_tensor_numel(ts[i]);
        for (int64_t e = 0; e < n; e++)
            ck_assert_msg(m2rnn_tensor_get(ts[i], e) == poison, "%s: output %d written on error", what, i);
    }
}

double lt_max_abs_diff(const m2rnn_tensor *a, const m2rnn_tensor *b)
{
    int64_t n = m2rnn_tensor_numel(a);
    ck_assert_int_eq(n, m2rnn_tensor_numel(b));
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(m2rnn_tensor_get(a, i) - m2rnn_tensor_get(b, i));
        if (d > m || d != d) m = d;
    }
    return m;
}
