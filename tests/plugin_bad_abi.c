/* A plug-in built for a future, incompatible backend ABI: the loader must refuse it. */
#include "m2rnn/backend.h"

static const m2rnn_backend table = {
    .abi_major = M2RNN_ABI_MAJOR + 1,
    .abi_minor = 0,
    .size = sizeof(m2rnn_backend),
    .name = "bad_abi",
    .description = "test plug-in with the wrong ABI major version",
};

const m2rnn_backend *m2rnn_backend_entry(char *why, size_t why_size)
{
    (void)why;
    (void)why_size;
    return &table;
}
