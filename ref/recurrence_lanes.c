/* The recurrence's inputs widened to double (see recurrence_lanes.h). */
#include <stdlib.h>
#include <string.h>

#include "recurrence_lanes.h"

double *recurrence_widen(const m2rnn_tensor *t)
{
    int64_t n = m2rnn_tensor_numel(t);
    double *x = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    if (x) m2rnn_tensor_to_f64(t, x);
    return x;
}

void recurrence_lanes_free(recurrence_lanes *p)
{
    free(p->q); free(p->k); free(p->v); free(p->W); free(p->f); free(p->h0);
    memset(p, 0, sizeof *p);
}

m2rnn_status recurrence_lanes_init(recurrence_lanes *p, const m2rnn_recurrence_inputs *in,
                                   const m2rnn_recurrence_dims *d)
{
    memset(p, 0, sizeof *p);
    p->d = *d;
    p->q = recurrence_widen(&in->q);
    p->k = recurrence_widen(&in->k);
    p->v = recurrence_widen(&in->v);
    p->W = recurrence_widen(&in->W);
    p->f = recurrence_widen(&in->f);
    if (m2rnn_tensor_present(&in->h0)) p->h0 = recurrence_widen(&in->h0);
    if (!p->q || !p->k || !p->v || !p->W || !p->f || (m2rnn_tensor_present(&in->h0) && !p->h0)) {
        recurrence_lanes_free(p);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "recurrence: cannot allocate the widened inputs");
    }
    p->gq = d->heads / d->q_heads;
    p->gk = d->heads / d->k_heads;
    p->gv = d->heads / d->v_heads;
    p->gf = d->heads / d->f_heads;
    p->gw = d->heads / d->w_heads;
    return M2RNN_OK;
}

void recurrence_initial_state(const recurrence_lanes *p, int64_t b, int64_t n, double *H)
{
    size_t kv = (size_t)(p->d.key_dim * p->d.value_dim);
    if (p->h0) memcpy(H, p->h0 + (b * p->d.heads + n) * (int64_t)kv, kv * sizeof(double));
    else memset(H, 0, kv * sizeof(double));
}

int64_t recurrence_longest_sequence(const m2rnn_recurrence_inputs *in, const m2rnn_recurrence_dims *d)
{
    int64_t longest = 0;
    for (int64_t b = 0; b < d->batch; b++) {
        int64_t start, end;
        m2rnn_recurrence_sequence(in, d, b, &start, &end);
        if (end - start > longest) longest = end - start;
    }
    return longest;
}
