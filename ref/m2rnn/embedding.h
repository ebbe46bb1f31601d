/*
 * Token embedding (SPEC.md §5): y[..., :] = table[ids[...], :].
 *
 * Shapes: ids (...) I32/I64 in host memory (the dispatcher reads them to check the range, like
 * cu_seqlens), every id in [0, vocab); table (vocab, d); y (..., d). Backward: dtable (vocab, d)
 * = Σ over the tokens with id v of dy (rows of unused ids are zero); ids get no gradient.
 * Any float dtype for table, y, dy, dtable; double inside; outputs rounded once.
 */
#ifndef M2RNN_EMBEDDING_H
#define M2RNN_EMBEDDING_H

#include "m2rnn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    m2rnn_tensor ids;    /* required, (...) I32/I64, host memory */
    m2rnn_tensor table;  /* required, (vocab, d) */
} m2rnn_embedding_inputs;

typedef struct {
    m2rnn_embedding_inputs in;
    m2rnn_tensor y;      /* required output, (..., d) */
} m2rnn_embedding_forward_args;

typedef struct {
    m2rnn_embedding_inputs in;
    m2rnn_tensor dy;     /* required, (..., d) */
    m2rnn_tensor dtable; /* required output, (vocab, d) */
} m2rnn_embedding_backward_args;

m2rnn_status m2rnn_embedding_check_forward(const m2rnn_embedding_forward_args *args);
m2rnn_status m2rnn_embedding_check_backward(const m2rnn_embedding_backward_args *args);
m2rnn_status m2rnn_embedding_forward_ref(const m2rnn_embedding_forward_args *args);
m2rnn_status m2rnn_embedding_backward_ref(const m2rnn_embedding_backward_args *args);

#ifdef __cplusplus
}
#endif
#endif
