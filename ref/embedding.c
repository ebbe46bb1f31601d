/*
 * Token embedding (SPEC.md §5) — reference, forward and backward.
 *
 * Shapes: ids (...) with T elements, table (vocab, d), y and dy (..., d), dtable (vocab, d).
 *   forward:   y[t, :] = table[ids[t], :]
 *   backward:  dtable[v, :] = Σ_{t: ids[t] = v} dy[t, :]   (summed in token order; zero elsewhere)
 * A gather is exact: y is the table's rows rounded once to y's dtype.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "layer_util.h"
#include "m2rnn/embedding.h"

/* ids: present, integer, every entry in [0, vocab). T = its element count. */
static m2rnn_status check_ids(const m2rnn_tensor *ids, int64_t vocab, int64_t *T)
{
    if (!m2rnn_tensor_present(ids)) return m2rnn_set_error(M2RNN_ERR_NULL, "ids: required");
    if (!m2rnn_dtype_is_int(ids->dtype))
        return m2rnn_set_error(M2RNN_ERR_DTYPE, "ids: dtype %s, must be I32 or I64", m2rnn_dtype_name(ids->dtype));
    *T = m2rnn_tensor_numel(ids);
    if (*T < 0) return m2rnn_set_error(M2RNN_ERR_OVERFLOW, "ids: element count overflows");
    for (int64_t t = 0; t < *T; t++) {
        double id = m2rnn_tensor_get(ids, t);
        if (id < 0 || id >= (double)vocab)
            return m2rnn_set_error(M2RNN_ERR_ARG, "ids[%lld] = %.0f: outside [0, %lld)", (long long)t, id, (long long)vocab);
    }
    return M2RNN_OK;
}

/* The shape (..., d) of y for ids (...). */
static m2rnn_status check_rows(const m2rnn_tensor *y, const char *name, const m2rnn_tensor *ids, int64_t d)
{
    if (ids->rank >= M2RNN_MAX_RANK) return m2rnn_set_error(M2RNN_ERR_SHAPE, "ids: rank %d leaves no room for d", ids->rank);
    int64_t shape[M2RNN_MAX_RANK];
    memcpy(shape, ids->shape, sizeof(int64_t) * (size_t)ids->rank);
    shape[ids->rank] = d;
    m2rnn_status st = lu_required(y, name);
    return st ? st : lu_shape(y, name, ids->rank + 1, shape);
}

static m2rnn_status check_inputs(const m2rnn_embedding_inputs *in, int64_t *T)
{
    m2rnn_status st;
    if ((st = lu_required(&in->table, "table")) || (st = lu_rank_at_least(&in->table, "table", 2))) return st;
    if (in->table.rank != 2) return m2rnn_set_error(M2RNN_ERR_SHAPE, "table: expected rank 2 (vocab, d)");
    return check_ids(&in->ids, in->table.shape[0], T);
}

m2rnn_status m2rnn_embedding_check_forward(const m2rnn_embedding_forward_args *a)
{
    if (!a) return m2rnn_set_error(M2RNN_ERR_NULL, "embedding_forward: NULL argument struct");
    int64_t T;
    m2rnn_status st = check_inputs(&a->in, &T);
    return st ? st : check_rows(&a->y, "y", &a->in.ids, a->in.table.shape[1]);
}

m2rnn_status m2rnn_embedding_check_backward(const m2rnn_embedding_backward_args *a)
{
    if (!a) return m2rnn_set_error(M2RNN_ERR_NULL, "embedding_backward: NULL argument struct");
    int64_t T;
    m2rnn_status st = check_inputs(&a->in, &T);
    if (st || (st = check_rows(&a->dy, "dy", &a->in.ids, a->in.table.shape[1]))) return st;
    if ((st = lu_required(&a->dtable, "dtable"))) return st;
    return lu_same_shape(&a->dtable, "dtable", &a->in.table);
}

m2rnn_status m2rnn_embedding_forward_ref(const m2rnn_embedding_forward_args *a)
{
    m2rnn_status st = m2rnn_embedding_check_forward(a);
    if (st) return st;
    const int64_t T = m2rnn_tensor_numel(&a->in.ids), d = a->in.table.shape[1];
    m2rnn_tensor y = a->y;
    for (int64_t t = 0; t < T; t++) {
        int64_t id = (int64_t)m2rnn_tensor_get(&a->in.ids, t);
        for (int64_t e = 0; e < d; e++) m2rnn_tensor_set(&y, t * d + e, m2rnn_tensor_get(&a->in.table, id * d + e));
    }
    return M2RNN_OK;
}

m2rnn_status m2rnn_embedding_backward_ref(const m2rnn_embedding_backward_args *a)
{
    m2rnn_status st = m2rnn_embedding_check_backward(a);
    if (st) return st;
    const int64_t T = m2rnn_tensor_numel(&a->in.ids), vocab = a->in.table.shape[0], d = a->in.table.shape[1];
    double *dt = lu_zeros(vocab * d);
    if (!dt) return m2rnn_set_error(M2RNN_ERR_NOMEM, "embedding_backward: cannot allocate dtable");
    for (int64_t t = 0; t < T; t++) {
        int64_t id = (int64_t)m2rnn_tensor_get(&a->in.ids, t);
        for (int64_t e = 0; e < d; e++) dt[id * d + e] += m2rnn_tensor_get(&a->dy, t * d + e);
    }
    m2rnn_tensor out = a->dtable;
    m2rnn_tensor_from_f64(&out, dt);
    free(dt);
    return M2RNN_OK;
}
