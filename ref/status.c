/* Status codes and the thread-local last-error message. */
#include <stdarg.h>
#include <stdio.h>

#include "m2rnn/status.h"

static _Thread_local char last_error[1024];

const char *m2rnn_status_string(m2rnn_status status)
{
    switch (status) {
    case M2RNN_OK: return "ok";
    case M2RNN_ERR_NULL: return "missing argument";
    case M2RNN_ERR_SHAPE: return "shape mismatch";
    case M2RNN_ERR_DTYPE: return "unsupported dtype";
    case M2RNN_ERR_HEADS: return "head count does not divide N";
    case M2RNN_ERR_SEQLENS: return "bad cu_seqlens";
    case M2RNN_ERR_OVERFLOW: return "size overflow";
    case M2RNN_ERR_NOMEM: return "out of memory";
    case M2RNN_ERR_UNSUPPORTED: return "not supported";
    case M2RNN_ERR_ABI: return "backend ABI mismatch";
    case M2RNN_ERR_IO: return "I/O error";
    case M2RNN_ERR_FORMAT: return "malformed file";
    case M2RNN_ERR_BACKEND: return "backend failure";
    case M2RNN_ERR_ARG: return "invalid argument";
    }
    return "unknown status";
}

const char *m2rnn_last_error(void) { return last_error; }

void m2rnn_clear_error(void) { last_error[0] = '\0'; }

m2rnn_status m2rnn_set_error(m2rnn_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}
