/*
 * Safetensors reader and writer (see m2rnn/safetensors.h for the format and what is rejected).
 *
 * Reading is two passes over a file image that is held in memory: first the header is parsed
 * with cJSON and every entry is validated against the size of the data section (nothing is
 * allocated from a number in the file before that number has been checked against bytes that
 * really exist), then the tensors are copied out into their own aligned buffers.
 */
#include "config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "m2rnn/safetensors.h"

/* ---- small helpers ---------------------------------------------------------------------- */

static uint64_t read_le64(const unsigned char *p)
{
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--) x = (x << 8) | p[i];
    return x;
}

static void write_le64(unsigned char *p, uint64_t x)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(x >> (8 * i));
}

/* The dtype of an exact safetensors name; INVALID for anything else (no aliases, no case folding). */
static m2rnn_dtype dtype_from_st_name(const char *s)
{
    static const m2rnn_dtype all[] = {M2RNN_F64, M2RNN_F32, M2RNN_BF16, M2RNN_F16, M2RNN_I32, M2RNN_I64};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(s, m2rnn_dtype_name(all[i])) == 0) return all[i];
    return M2RNN_DTYPE_INVALID;
}

/* A JSON number that is an integer in [0, 2^53] (so the double holds it exactly). */
static int json_uint(const cJSON *item, uint64_t *out)
{
    if (!cJSON_IsNumber(item)) return 0;
    double d = item->valuedouble;
    if (!(d >= 0.0 && d <= 9007199254740992.0) || d != floor(d)) return 0;
    *out = (uint64_t)d;
    return 1;
}

void m2rnn_safetensors_free(m2rnn_safetensors *st)
{
    if (!st) return;
    for (size_t i = 0; i < st->n_tensors; i++) {
        free(st->tensors[i].name);
        free(st->tensors[i].tensor.data);
    }
    for (size_t i = 0; i < st->n_meta; i++) {
        free(st->meta[i].key);
        free(st->meta[i].value);
    }
    free(st->tensors);
    free(st->meta);
    memset(st, 0, sizeof *st);
}

/* ---- parsing ---------------------------------------------------------------------------- */

/* What the validation pass learns about one tensor entry. */
typedef struct {
    const char *name;
    m2rnn_dtype dtype;
    int rank;
    int64_t shape[M2RNN_MAX_RANK];
    uint64_t begin, end;
} entry_info;

static int by_offset(const void *a, const void *b)
{
    const entry_info *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    /* Zero-size tensors may share an offset with the next one: put them first. */
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static m2rnn_status validate_entry(const cJSON *item, uint64_t data_size, entry_info *e)
{
    const char *name = item->string;
    if (!cJSON_IsObject(item)) return m2rnn_set_error(M2RNN_ERR_FORMAT, "tensor '%s': entry is not a JSON object", name);
    const cJSON *dtype = NULL, *shape = NULL, *offsets = NULL;
    for (const cJSON *f = item->child; f; f = f->next) {
        const cJSON **slot = strcmp(f->string, "dtype") == 0 ? &dtype
                             : strcmp(f->string, "shape") == 0 ? &shape
                             : strcmp(f->string, "data_offsets") == 0 ? &offsets : NULL;
        if (!slot) return m2rnn_set_error(M2RNN_ERR_FORMAT, "tensor '%s': unknown key '%s'", name, f->string);
        if (*slot) return m2rnn_set_error(M2RNN_ERR_FORMAT, "tensor '%s': duplicate key '%s'", name, f->string);
        *slot = f;
    }
    if (!dtype || !shape || !offsets)
        return m2rnn_set_error(M2RNN_ERR_FORMAT, "tensor '%s': needs dtype, shape and data_offsets", name);

    if (!cJSON_IsString(dtype)) return m2rnn_set_error(M2RNN_ERR_FORMAT, "tensor '%s': dtype is not a string", name);
    e->dtype = dtype_from_st_name(dtype->valuestring);
    if (e->dtype == M2RNN_DTYPE_INVALID)
        return m2rnn_set_error(M2RNN_ERR_FORMAT, "tensor '%s': dtype '%.32s' is not one of F64 F32 BF16 F16 I32 I64",
                               name, dtype->valuestring);

    if (!cJSON_IsArray(shape)) return m2rnn_set_error(M2RNN_ERR_FORMAT, "tensor '%s': shape is not a list", name);
    int rank = cJSON_GetArraySize(shape);
    if (rank > M2RNN_MAX_RANK)
        return m2rnn_set_error(M2RNN_ERR_FORMAT, "tensor '%s': rank %d exceeds %d", name, rank, M2RNN_MAX_RANK);
    e->rank = rank;
    /* The byte size is computed with an overflow check after every factor: a hostile shape of
     * huge dimensions must fail here, not wrap around to a small number. */
    uint64_t bytes = m2rnn_dtype_size(e->dtype);
    int i = 0;
    for (const cJSON *dim = shape->child; dim; dim = dim->next, i++) {
        uint64_t n;
        if (!json_uint(dim, &n))
            return m2rnn_set_error(M2RNN_ERR_FORMAT, "tensor '%s': shape[%d] is not a non-negative integer", name, i);
        e->shape[i] = (int64_t)n;
        if (n != 0 && bytes > UINT64_MAX / n)
            return m2rnn_set_error(M2RNN_ERR_FORMAT, "tensor '%s': shape overflows a 64-bit byte count", name);
        bytes *= n;
    }

    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2)
        return m2rnn_set_error(M2RNN_ERR_FORMAT, "tensor '%s': data_offsets is not a list of two integers", name);
    if (!json_uint(offsets->child, &e->begin) || !json_uint(offsets->child->next, &e->end))
        return m2rnn_set_error(M2RNN_ERR_FORMAT, "tensor '%s': data_offsets are not non-negative integers", name);
    if (e->begin > e->end)
        return m2rnn_set_error(M2RNN_ERR_FORMAT, "tensor '%s': data_offsets [%llu, %llu] are reversed", name,
                               (unsigned long long)e->begin, (unsigned long long)e->end);
    if (e->end > data_size)
        return m2rnn_set_error(M2RNN_ERR_FORMAT, "tensor '%s': data_offsets end %llu is past the data section (%llu bytes)",
                               name, (unsigned long long)e->end, (unsigned long long)data_size);
    if (e->end - e->begin != bytes)
        return m2rnn_set_error(M2RNN_ERR_FORMAT, "tensor '%s': %llu bytes at data_offsets, but dtype %s × shape needs %llu",
                               name, (unsigned long long)(e->end - e->begin), m2rnn_dtype_name(e->dtype),
                               (unsigned long long)bytes);
    e->name = name;
    return M2RNN_OK;
}

static m2rnn_status parse_metadata(const cJSON *item, m2rnn_safetensors *st)
{
    if (!cJSON_IsObject(item)) return m2rnn_set_error(M2RNN_ERR_FORMAT, "__metadata__ is not a JSON object");
    int n = cJSON_GetArraySize(item);
    st->meta = calloc((size_t)(n > 0 ? n : 1), sizeof *st->meta);
    if (!st->meta) return m2rnn_set_error(M2RNN_ERR_NOMEM, "safetensors: cannot allocate metadata");
    for (const cJSON *m = item->child; m; m = m->next) {
        if (!cJSON_IsString(m))
            return m2rnn_set_error(M2RNN_ERR_FORMAT, "__metadata__['%s'] is not a string", m->string);
        for (size_t j = 0; j < st->n_meta; j++)
            if (strcmp(st->meta[j].key, m->string) == 0)
                return m2rnn_set_error(M2RNN_ERR_FORMAT, "__metadata__ has the key '%s' twice", m->string);
        m2rnn_st_meta *slot = &st->meta[st->n_meta++];
        slot->key = strdup(m->string);
        slot->value = strdup(m->valuestring);
        if (!slot->key || !slot->value) return m2rnn_set_error(M2RNN_ERR_NOMEM, "safetensors: cannot allocate metadata");
    }
    return M2RNN_OK;
}

static m2rnn_status parse_header(const char *json, size_t len, const unsigned char *data, uint64_t data_size,
                                 m2rnn_safetensors *st)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        size_t at = (end && end >= json && end <= json + len) ? (size_t)(end - json) : 0;
        return m2rnn_set_error(M2RNN_ERR_FORMAT, "header is not valid JSON (near byte %zu of %zu)", at, len);
    }
    m2rnn_status st_ = M2RNN_OK;
    entry_info *info = NULL;
    /* Only the writer's space padding may follow the object. */
    for (const char *p = end; p < json + len; p++)
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
            st_ = m2rnn_set_error(M2RNN_ERR_FORMAT, "header has bytes after its JSON object (at byte %zu)", (size_t)(p - json));
            goto done;
        }
    if (!cJSON_IsObject(root)) {
        st_ = m2rnn_set_error(M2RNN_ERR_FORMAT, "header is JSON but not an object");
        goto done;
    }
    int n_items = cJSON_GetArraySize(root);
    if (n_items > M2RNN_SAFETENSORS_MAX_TENSORS + 1) {
        st_ = m2rnn_set_error(M2RNN_ERR_FORMAT, "header lists %d entries (limit %d)", n_items, M2RNN_SAFETENSORS_MAX_TENSORS);
        goto done;
    }
    info = calloc((size_t)(n_items > 0 ? n_items : 1), sizeof *info);
    if (!info) {
        st_ = m2rnn_set_error(M2RNN_ERR_NOMEM, "safetensors: cannot allocate the tensor list");
        goto done;
    }
    size_t n = 0;
    int seen_meta = 0;
    for (const cJSON *item = root->child; item; item = item->next) {
        if (strcmp(item->string, "__metadata__") == 0) {
            if (seen_meta++) { st_ = m2rnn_set_error(M2RNN_ERR_FORMAT, "__metadata__ appears twice"); goto done; }
            if ((st_ = parse_metadata(item, st))) goto done;
            continue;
        }
        if (item->string[0] == '\0') { st_ = m2rnn_set_error(M2RNN_ERR_FORMAT, "a tensor has an empty name"); goto done; }
        if ((st_ = validate_entry(item, data_size, &info[n]))) goto done;
        n++;
    }
    qsort(info, n, sizeof *info, by_offset);
    /* Names must be unique (cJSON keeps duplicate keys): check on a name-sorted copy would need
     * another sort; n is small, so compare pairwise. */
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (strcmp(info[i].name, info[j].name) == 0) {
                st_ = m2rnn_set_error(M2RNN_ERR_FORMAT, "tensor '%s' appears twice", info[i].name);
                goto done;
            }
    uint64_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (info[i].begin != at) {
            st_ = m2rnn_set_error(M2RNN_ERR_FORMAT, "tensor '%s' starts at byte %llu of the data, expected %llu (%s)",
                                  info[i].name, (unsigned long long)info[i].begin, (unsigned long long)at,
                                  info[i].begin > at ? "a hole" : "an overlap");
            goto done;
        }
        at = info[i].end;
    }
    if (at != data_size) {
        st_ = m2rnn_set_error(M2RNN_ERR_FORMAT, "the tensors cover %llu bytes of data but the file has %llu",
                              (unsigned long long)at, (unsigned long long)data_size);
        goto done;
    }

    st->tensors = calloc(n > 0 ? n : 1, sizeof *st->tensors);
    if (!st->tensors) { st_ = m2rnn_set_error(M2RNN_ERR_NOMEM, "safetensors: cannot allocate the tensor list"); goto done; }
    for (size_t i = 0; i < n; i++) {
        size_t bytes = (size_t)(info[i].end - info[i].begin);
        m2rnn_st_tensor *t = &st->tensors[st->n_tensors++];
        t->name = strdup(info[i].name);
        void *buf = malloc(bytes > 0 ? bytes : 1); /* malloc's alignment suits every dtype */
        if (!t->name || !buf) {
            free(buf);
            st_ = m2rnn_set_error(M2RNN_ERR_NOMEM, "safetensors: cannot allocate %zu bytes for '%s'", bytes, info[i].name);
            goto done;
        }
        memcpy(buf, data + info[i].begin, bytes);
        t->tensor = m2rnn_tensor_make(buf, info[i].dtype, info[i].rank, info[i].shape);
    }
done:
    free(info);
    cJSON_Delete(root);
    return st_;
}

m2rnn_status m2rnn_safetensors_parse(const void *bytes, size_t size, m2rnn_safetensors *st)
{
    if (!st) return m2rnn_set_error(M2RNN_ERR_NULL, "safetensors_parse: NULL result");
    memset(st, 0, sizeof *st);
    if (!bytes && size) return m2rnn_set_error(M2RNN_ERR_NULL, "safetensors_parse: NULL bytes");
    const unsigned char *p = bytes;
    if (size < 8) return m2rnn_set_error(M2RNN_ERR_FORMAT, "file of %zu bytes is too short for the 8-byte header length", size);
    uint64_t hlen = read_le64(p);
    if (hlen == 0) return m2rnn_set_error(M2RNN_ERR_FORMAT, "header length is 0");
    if (hlen > M2RNN_SAFETENSORS_MAX_HEADER)
        return m2rnn_set_error(M2RNN_ERR_FORMAT, "header length %llu exceeds the limit of %u bytes",
                               (unsigned long long)hlen, M2RNN_SAFETENSORS_MAX_HEADER);
    if (hlen > size - 8)
        return m2rnn_set_error(M2RNN_ERR_FORMAT, "header length %llu runs past the end of the file (%zu bytes)",
                               (unsigned long long)hlen, size);
    if (memchr(p + 8, '\0', (size_t)hlen))
        return m2rnn_set_error(M2RNN_ERR_FORMAT, "header contains a NUL byte");
    m2rnn_status s = parse_header((const char *)p + 8, (size_t)hlen, p + 8 + hlen, size - 8 - hlen, st);
    if (s) m2rnn_safetensors_free(st);
    return s;
}

m2rnn_status m2rnn_safetensors_read(const char *path, m2rnn_safetensors *st)
{
    if (!st) return m2rnn_set_error(M2RNN_ERR_NULL, "safetensors_read: NULL result");
    memset(st, 0, sizeof *st);
    if (!path) return m2rnn_set_error(M2RNN_ERR_NULL, "safetensors_read: NULL path");
    FILE *fp = fopen(path, "rb");
    if (!fp) return m2rnn_set_error(M2RNN_ERR_IO, "%s: %s", path, strerror(errno));
    unsigned char *buf = NULL;
    size_t size = 0, cap = 0;
    m2rnn_status s = M2RNN_OK;
    /* Read in chunks rather than trusting a size from fseek: works for pipes and special files. */
    for (;;) {
        if (size == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            unsigned char *nb = realloc(buf, ncap);
            if (!nb) { s = m2rnn_set_error(M2RNN_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, ncap); break; }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + size, 1, cap - size, fp);
        size += got;
        if (got == 0) {
            if (ferror(fp)) s = m2rnn_set_error(M2RNN_ERR_IO, "%s: read error", path);
            break;
        }
    }
    fclose(fp);
    if (!s) {
        s = m2rnn_safetensors_parse(buf, size, st);
        if (s) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", m2rnn_last_error());
            m2rnn_set_error(s, "%s: %s", path, msg);
        }
    }
    free(buf);
    return s;
}

const m2rnn_tensor *m2rnn_safetensors_get(const m2rnn_safetensors *st, const char *name)
{
    for (size_t i = 0; st && name && i < st->n_tensors; i++)
        if (strcmp(st->tensors[i].name, name) == 0) return &st->tensors[i].tensor;
    return NULL;
}

const char *m2rnn_safetensors_meta(const m2rnn_safetensors *st, const char *key)
{
    for (size_t i = 0; st && key && i < st->n_meta; i++)
        if (strcmp(st->meta[i].key, key) == 0) return st->meta[i].value;
    return NULL;
}

/* ---- writing ---------------------------------------------------------------------------- */

/* A growing string. */
typedef struct {
    char *s;
    size_t len, cap;
    int failed;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap < b->len + n + 1) ncap *= 2;
        char *ns = realloc(b->s, ncap);
        if (!ns) { b->failed = 1; return; }
        b->s = ns;
        b->cap = ncap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_fmt(sbuf *b, const char *fmt, unsigned long long x)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, fmt, x);
    sb_put(b, tmp, (size_t)n);
}

/* A JSON string literal. */
static void sb_json_string(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') { sb_put(b, "\\", 1); sb_put(b, (const char *)p, 1); }
        else if (*p < 0x20) sb_fmt(b, "\\u%04llx", *p);
        else sb_put(b, (const char *)p, 1);
    }
    sb_put(b, "\"", 1);
}

m2rnn_status m2rnn_safetensors_encode(const m2rnn_st_entry *entries, size_t n_entries, const m2rnn_st_meta *meta,
                                      size_t n_meta, unsigned char **bytes, size_t *size)
{
    if (!bytes || !size || (n_entries && !entries) || (n_meta && !meta))
        return m2rnn_set_error(M2RNN_ERR_NULL, "safetensors_encode: NULL argument");
    *bytes = NULL;
    *size = 0;
    sbuf h = {0};
    sb_str(&h, "{");
    int first = 1;
    if (n_meta) {
        sb_str(&h, "\"__metadata__\":{");
        for (size_t i = 0; i < n_meta; i++) {
            if (i) sb_str(&h, ",");
            sb_json_string(&h, meta[i].key);
            sb_str(&h, ":");
            sb_json_string(&h, meta[i].value);
        }
        sb_str(&h, "}");
        first = 0;
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < n_entries; i++) {
        const m2rnn_tensor *t = &entries[i].tensor;
        if (!entries[i].name || !entries[i].name[0] || strcmp(entries[i].name, "__metadata__") == 0) {
            free(h.s);
            return m2rnn_set_error(M2RNN_ERR_ARG, "safetensors_encode: tensor %zu has an invalid name", i);
        }
        size_t nb = m2rnn_tensor_nbytes(t);
        if (m2rnn_dtype_size(t->dtype) == 0 || m2rnn_tensor_numel(t) < 0 || (!t->data && nb)) {
            free(h.s);
            return m2rnn_set_error(M2RNN_ERR_ARG, "safetensors_encode: tensor '%s' is invalid", entries[i].name);
        }
        if (!first) sb_str(&h, ",");
        first = 0;
        sb_json_string(&h, entries[i].name);
        sb_str(&h, ":{\"dtype\":\"");
        sb_str(&h, m2rnn_dtype_name(t->dtype));
        sb_str(&h, "\",\"shape\":[");
        for (int d = 0; d < t->rank; d++) sb_fmt(&h, d ? ",%llu" : "%llu", (unsigned long long)t->shape[d]);
        sb_str(&h, "],\"data_offsets\":[");
        sb_fmt(&h, "%llu", offset);
        sb_fmt(&h, ",%llu]}", offset + nb);
        offset += nb;
    }
    sb_str(&h, "}");
    while (!h.failed && (8 + h.len) % 8 != 0) sb_str(&h, " "); /* align the data section */
    if (h.failed) {
        free(h.s);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "safetensors_encode: cannot allocate the header");
    }
    size_t total = 8 + h.len + (size_t)offset;
    unsigned char *out = malloc(total);
    if (!out) {
        free(h.s);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "safetensors_encode: cannot allocate %zu bytes", total);
    }
    write_le64(out, h.len);
    memcpy(out + 8, h.s, h.len);
    unsigned char *p = out + 8 + h.len;
    for (size_t i = 0; i < n_entries; i++) {
        size_t nb = m2rnn_tensor_nbytes(&entries[i].tensor);
        if (nb) memcpy(p, entries[i].tensor.data, nb); /* the host is little-endian (configure checks) */
        p += nb;
    }
    free(h.s);
    *bytes = out;
    *size = total;
    return M2RNN_OK;
}

m2rnn_status m2rnn_safetensors_write(const char *path, const m2rnn_st_entry *entries, size_t n_entries,
                                     const m2rnn_st_meta *meta, size_t n_meta)
{
    if (!path) return m2rnn_set_error(M2RNN_ERR_NULL, "safetensors_write: NULL path");
    unsigned char *bytes;
    size_t size;
    m2rnn_status s = m2rnn_safetensors_encode(entries, n_entries, meta, n_meta, &bytes, &size);
    if (s) return s;
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
        free(bytes);
        return m2rnn_set_error(M2RNN_ERR_IO, "%s: path too long", path);
    }
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        free(bytes);
        return m2rnn_set_error(M2RNN_ERR_IO, "%s: %s", tmp, strerror(errno));
    }
    size_t put = fwrite(bytes, 1, size, fp);
    int closed = fclose(fp);
    free(bytes);
    if (put != size || closed != 0) {
        remove(tmp);
        return m2rnn_set_error(M2RNN_ERR_IO, "%s: write failed", tmp);
    }
    if (rename(tmp, path) != 0) {
        remove(tmp);
        return m2rnn_set_error(M2RNN_ERR_IO, "%s: cannot rename into place: %s", path, strerror(errno));
    }
    return M2RNN_OK;
}
