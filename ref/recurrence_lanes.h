/*
 * The recurrence's inputs widened to double, and what one lane — one (sequence b, state head n)
 * pair — reads of them. Shared by the reference (m2rnn.c) and the precision-class emulation
 * (m2rnn_emulated.c), so both read the inputs exactly the same way. Internal: not installed.
 *
 * State head n reads source head n / G of each input, G = N / (that input's head count) (SPEC §1).
 */
#ifndef M2RNN_RECURRENCE_LANES_H
#define M2RNN_RECURRENCE_LANES_H

#include "m2rnn/recurrence.h"

typedef struct {
    m2rnn_recurrence_dims d;
    double *q, *k, *v, *W, *f; /* as stored, widened exactly */
    double *h0;                /* NULL when absent */
    int64_t gq, gk, gv, gf, gw; /* group sizes N / Nx */
} recurrence_lanes;

/* Widen the inputs (M2RNN_ERR_NOMEM on failure, nothing left allocated). */
m2rnn_status recurrence_lanes_init(recurrence_lanes *p, const m2rnn_recurrence_inputs *in,
                                   const m2rnn_recurrence_dims *d);
void recurrence_lanes_free(recurrence_lanes *p);

/* numel(t) doubles holding t's values (NULL if out of memory); the caller frees. */
double *recurrence_widen(const m2rnn_tensor *t);

/* H (K×V) = h0[b, n], or zeros without h0. */
void recurrence_initial_state(const recurrence_lanes *p, int64_t b, int64_t n, double *H);

/* The length of the longest sequence of the batch. */
int64_t recurrence_longest_sequence(const m2rnn_recurrence_inputs *in, const m2rnn_recurrence_dims *d);

/* The inputs state head n reads at token tok. */
static inline const double *lane_q(const recurrence_lanes *p, int64_t tok, int64_t n)
{ return p->q + (tok * p->d.q_heads + n / p->gq) * p->d.key_dim; }
static inline const double *lane_k(const recurrence_lanes *p, int64_t tok, int64_t n)
{ return p->k + (tok * p->d.k_heads + n / p->gk) * p->d.key_dim; }
static inline const double *lane_v(const recurrence_lanes *p, int64_t tok, int64_t n)
{ return p->v + (tok * p->d.v_heads + n / p->gv) * p->d.value_dim; }
static inline double lane_f(const recurrence_lanes *p, int64_t tok, int64_t n)
{ return p->f[tok * p->d.f_heads + n / p->gf]; }
static inline const double *lane_W(const recurrence_lanes *p, int64_t n)
{ return p->W + (n / p->gw) * p->d.value_dim * p->d.value_dim; }

#endif
