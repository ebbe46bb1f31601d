/*
 * Safetensors files: a strict reader and a deterministic writer.
 *
 * The format (https://github.com/huggingface/safetensors):
 *
 *     [8 bytes: N, unsigned little-endian]  [N bytes: a JSON object]  [the data]
 *
 * The JSON object maps each tensor name to {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]},
 * where [b, e) are byte offsets into the data section, plus an optional "__metadata__" entry that
 * maps strings to strings. Data is raw little-endian, row-major.
 *
 * The reader trusts nothing in the file. It rejects, with M2RNN_ERR_FORMAT and a message that says
 * what is wrong (m2rnn_last_error()):
 *   - a file shorter than 8 bytes, or a header length that is 0, larger than the file or larger
 *     than M2RNN_SAFETENSORS_MAX_HEADER;
 *   - a header that is not one JSON object (trailing spaces, the writer's padding, are allowed);
 *   - duplicate names, an empty name, unknown keys in a tensor entry, a metadata value that is
 *     not a string;
 *   - a dtype other than F64, F32, BF16, F16, I32, I64;
 *   - a shape that is not a list of at most M2RNN_MAX_RANK non-negative integers, or whose byte
 *     size overflows;
 *   - data_offsets that are not two integers b <= e with e - b = numel × dtype size;
 *   - tensors that do not tile the data section exactly: sorted by offset, the first starts at
 *     0, each starts where the previous ended, the last ends at the end of the file (no holes,
 *     no overlaps, nothing out of bounds, no trailing bytes).
 * It never reads outside the bytes it was given, whatever they contain.
 *
 * The writer emits tensors in the order given, contiguous, with the header padded by spaces to
 * a multiple of 8 bytes (so the data section is 8-byte aligned in the file), and the JSON in a
 * fixed format: the same tensors and metadata always produce the same bytes.
 */
#ifndef M2RNN_SAFETENSORS_H
#define M2RNN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "m2rnn/status.h"
#include "m2rnn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The reader's limits (the safetensors project also caps the header at 100 MB). */
#define M2RNN_SAFETENSORS_MAX_HEADER (100u * 1024u * 1024u)
#define M2RNN_SAFETENSORS_MAX_TENSORS 100000

/* One tensor of a file that was read: its name, and a tensor whose data the file owns (each
 * tensor's data is a separate, suitably aligned allocation). */
typedef struct {
    char *name;
    m2rnn_tensor tensor;
} m2rnn_st_tensor;

/* One "__metadata__" entry. */
typedef struct {
    char *key;
    char *value;
} m2rnn_st_meta;

/* A file read into memory. */
typedef struct {
    m2rnn_st_tensor *tensors; /* in the order of their data offsets */
    size_t n_tensors;
    m2rnn_st_meta *meta;      /* in the order of the header */
    size_t n_meta;
} m2rnn_safetensors;

/* Read and validate a file. On failure *st is left empty (safe to free) and the message names
 * the file and the problem. */
m2rnn_status m2rnn_safetensors_read(const char *path, m2rnn_safetensors *st);

/* Validate and copy out a file image of size bytes (the file need not be NUL-terminated). */
m2rnn_status m2rnn_safetensors_parse(const void *bytes, size_t size, m2rnn_safetensors *st);

void m2rnn_safetensors_free(m2rnn_safetensors *st);

/* The tensor called name, or NULL. */
const m2rnn_tensor *m2rnn_safetensors_get(const m2rnn_safetensors *st, const char *name);

/* The metadata value of key, or NULL. */
const char *m2rnn_safetensors_meta(const m2rnn_safetensors *st, const char *key);

/* One tensor to write: a name and a present host tensor. */
typedef struct {
    const char *name;
    m2rnn_tensor tensor;
} m2rnn_st_entry;

/* Encode tensors and metadata (n_meta key/value pairs) into a malloc'd file image. */
m2rnn_status m2rnn_safetensors_encode(const m2rnn_st_entry *entries, size_t n_entries, const m2rnn_st_meta *meta,
                                      size_t n_meta, unsigned char **bytes, size_t *size);

/* Encode and write to path (written to path.tmp first, then renamed). */
m2rnn_status m2rnn_safetensors_write(const char *path, const m2rnn_st_entry *entries, size_t n_entries,
                                     const m2rnn_st_meta *meta, size_t n_meta);

#ifdef __cplusplus
}
#endif
#endif
