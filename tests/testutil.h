/*
 * Helpers shared by the Check suites: a seeded generator, recurrence problems in double
 * precision, and a main() that runs one suite.
 */
#ifndef M2RNN_TESTUTIL_H
#define M2RNN_TESTUTIL_H

#include <check.h>
#include <stdint.h>

#include "m2rnn/m2rnn.h"

/* splitmix64, seeded per test so every case is reproducible. */
typedef struct { uint64_t s; } test_rng;
double test_uniform(test_rng *r, double lo, double hi);

/* Size, sharing and options of one recurrence problem. Head counts of 0 mean N. */
typedef struct {
    const char *name;
    int64_t B, S, N, K, V;
    int64_t nq, nk, nv, nf, nw;
    bool h0, dht;
    int varlen;          /* 1: use seqlens[] (B entries) and cu_seqlens */
    int64_t seqlens[8];
    m2rnn_clip_mode clip_mode;
    double clip;
} rec_shape;

/* A problem: all tensors in F64 host memory, inputs random, outputs zeroed. */
typedef struct {
    rec_shape shape;
    m2rnn_recurrence_forward_args fwd;
    m2rnn_recurrence_backward_args bwd;
    int64_t cu[9];
} rec_problem;

/* Allocate and fill (seeded) a problem. W is random with spectral radius below 1 and f in (0.05,0.95). */
void rec_problem_init(rec_problem *p, const rec_shape *shape, uint64_t seed);
void rec_problem_free(rec_problem *p);
/* Run the reference forward and backward, failing the test on any error. */
void rec_run(rec_problem *p);
/* The scalar loss whose gradient the backward computes: Σ y·dy + Σ ht·dht. Runs the forward. */
double rec_loss(rec_problem *p);

/* Element-wise comparisons of whole tensors: fail with the first offending index. */
void assert_tensors_equal(const m2rnn_tensor *a, const m2rnn_tensor *b, const char *what);
void assert_tensors_close(const m2rnn_tensor *a, const m2rnn_tensor *b, double rtol, double atol, const char *what);

/* numel-sized copy of a tensor's data as doubles (caller frees). */
double *tensor_copy(const m2rnn_tensor *t);
/* A tensor with the same shape and dtype, fresh zeroed memory (caller frees .data). */
m2rnn_tensor tensor_like(const m2rnn_tensor *t, m2rnn_dtype dtype);

/* Run one suite through Check (TAP when CK_TAP_LOG_FILE_NAME is set); the process exit status. */
int run_suite(Suite *suite);

#endif
