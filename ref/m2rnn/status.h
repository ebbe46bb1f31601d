/*
 * Status codes and error messages.
 *
 * Every library call that can fail returns an m2rnn_status. On failure it also leaves a
 * human-readable message, naming the offending argument, in a thread-local buffer that
 * m2rnn_last_error() returns. Backends (plug-ins included) report errors the same way.
 */
#ifndef M2RNN_STATUS_H
#define M2RNN_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    M2RNN_OK = 0,
    M2RNN_ERR_NULL = 1,        /* a required pointer or tensor is missing */
    M2RNN_ERR_SHAPE = 2,       /* a shape does not match the others */
    M2RNN_ERR_DTYPE = 3,       /* a dtype that is not allowed here */
    M2RNN_ERR_HEADS = 4,       /* a head count that does not divide N */
    M2RNN_ERR_SEQLENS = 5,     /* cu_seqlens malformed */
    M2RNN_ERR_OVERFLOW = 6,    /* sizes whose product overflows */
    M2RNN_ERR_NOMEM = 7,       /* an allocation failed */
    M2RNN_ERR_UNSUPPORTED = 8, /* the backend does not implement this op or these arguments */
    M2RNN_ERR_ABI = 9,         /* a backend table of another ABI version */
    M2RNN_ERR_IO = 10,         /* a file could not be read or written */
    M2RNN_ERR_FORMAT = 11,     /* a file is malformed */
    M2RNN_ERR_BACKEND = 12,    /* a backend failed (device error, ...) */
    M2RNN_ERR_ARG = 13         /* any other invalid argument value */
} m2rnn_status;

/* A short constant name for the code, e.g. "shape mismatch". */
const char *m2rnn_status_string(m2rnn_status status);

/* The message of the last failure on this thread ("" if none). */
const char *m2rnn_last_error(void);

/* Record a message for status (printf-style) and return status, so that callers can write
 * `return m2rnn_set_error(M2RNN_ERR_SHAPE, "k: expected ...");`. */
m2rnn_status m2rnn_set_error(m2rnn_status status, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Forget the last message on this thread. */
void m2rnn_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif
