/* A plug-in whose device is missing: it returns NULL with a reason, which the loader reports. */
#include <stdio.h>

#include "m2rnn/backend.h"

const m2rnn_backend *m2rnn_backend_entry(char *why, size_t why_size)
{
    snprintf(why, why_size, "no test device present");
    return NULL;
}
