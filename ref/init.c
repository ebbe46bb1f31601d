/* Seeded initialisation (see m2rnn/init.h). */
#include "config.h"

#include <math.h>

#include "m2rnn/init.h"

m2rnn_rng m2rnn_rng_seed(uint64_t seed) { return (m2rnn_rng){seed * 0x2545f4914f6cdd1dull + 0x9e3779b97f4a7c15ull}; }

double m2rnn_rng_uniform(m2rnn_rng *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1p-53;
}

double m2rnn_rng_normal(m2rnn_rng *r)
{
    double u1 = 1.0 - m2rnn_rng_uniform(r); /* (0, 1]: log(u1) is finite */
    double u2 = m2rnn_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static m2rnn_status check_fill(const m2rnn_tensor *t, const char *what)
{
    if (!m2rnn_tensor_present(t)) return m2rnn_set_error(M2RNN_ERR_NULL, "%s: tensor is missing", what);
    if (!m2rnn_dtype_is_float(t->dtype))
        return m2rnn_set_error(M2RNN_ERR_DTYPE, "%s: dtype %s is not a float dtype", what, m2rnn_dtype_name(t->dtype));
    if (m2rnn_tensor_numel(t) < 0) return m2rnn_set_error(M2RNN_ERR_SHAPE, "%s: bad shape", what);
    return M2RNN_OK;
}

m2rnn_status m2rnn_init_normal(m2rnn_tensor *t, double std, m2rnn_rng *rng)
{
    m2rnn_status st = check_fill(t, "init_normal");
    if (st) return st;
    int64_t n = m2rnn_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) m2rnn_tensor_set(t, i, std * m2rnn_rng_normal(rng));
    return M2RNN_OK;
}

m2rnn_status m2rnn_init_uniform(m2rnn_tensor *t, double lo, double hi, m2rnn_rng *rng)
{
    m2rnn_status st = check_fill(t, "init_uniform");
    if (st) return st;
    int64_t n = m2rnn_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) m2rnn_tensor_set(t, i, lo + (hi - lo) * m2rnn_rng_uniform(rng));
    return M2RNN_OK;
}

m2rnn_status m2rnn_init_constant(m2rnn_tensor *t, double value)
{
    m2rnn_status st = check_fill(t, "init_constant");
    if (st) return st;
    int64_t n = m2rnn_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) m2rnn_tensor_set(t, i, value);
    return M2RNN_OK;
}

m2rnn_status m2rnn_init_identity(m2rnn_tensor *t)
{
    m2rnn_status st = check_fill(t, "init_identity");
    if (st) return st;
    if (t->rank != 3 || t->shape[1] != t->shape[2])
        return m2rnn_set_error(M2RNN_ERR_SHAPE, "init_identity: expected shape (n,m,m)");
    int64_t m = t->shape[1], n = m2rnn_tensor_numel(t);
    for (int64_t e = 0; e < n; e++) m2rnn_tensor_set(t, e, (e % (m * m)) / m == e % m ? 1.0 : 0.0);
    return M2RNN_OK;
}
