/* m2rnn: the whole public API. */
#ifndef M2RNN_H
#define M2RNN_H

#include "m2rnn/backend.h"
#include "m2rnn/conv1d.h"
#include "m2rnn/decay_gate.h"
#include "m2rnn/gated_deltanet.h"
#include "m2rnn/gdn_block.h"
#include "m2rnn/cross_entropy.h"
#include "m2rnn/embedding.h"
#include "m2rnn/attention.h"
#include "m2rnn/init.h"
#include "m2rnn/linear.h"
#include "m2rnn/m2rnn_block.h"
#include "m2rnn/mlp.h"
#include "m2rnn/model.h"
#include "m2rnn/recurrence.h"
#include "m2rnn/rmsnorm.h"
#include "m2rnn/status.h"
#include "m2rnn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version string, e.g. "0.1.0". */
const char *m2rnn_version(void);

#ifdef __cplusplus
}
#endif
#endif
