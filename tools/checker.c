/*
 * The checker's teeth: metrics, the manifest, and running one op of one case on a backend.
 *
 * What a backend must survive, per op and case:
 *   - its outputs start as NaN (every element it forgets to write stays NaN and fails);
 *   - each output sits between two guard zones of a known byte pattern that must be intact
 *     afterwards (writes past either end fail);
 *   - it is called twice on the same buffers without re-poisoning (an accumulator that is not
 *     zeroed at the start of a call doubles on the second call and fails), and both answers are
 *     measured; the worse one is reported;
 *   - its inputs must be unchanged afterwards.
 * Device backends (alloc != NULL) get device copies through alloc/upload/download; cu_seqlens
 * always stays in host memory (the API says so).
 */
#include "config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vectors.h"

/* ---- metrics ---------------------------------------------------------------------------- */

vec_errors vec_measure(const m2rnn_tensor *out, const double *ref, int64_t n)
{
    vec_errors e = {0.0, 0.0, 0, -1};
    double diff2 = 0.0, ref2 = 0.0, maxdiff = 0.0, maxref = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double o = m2rnn_tensor_get(out, i), r = ref[i];
        bool of = isfinite(o), rf = isfinite(r);
        if (!of || !rf) {
            /* NaN must meet NaN, +Inf must meet +Inf, -Inf must meet -Inf. */
            bool same = (isnan(o) && isnan(r)) || (isinf(o) && isinf(r) && signbit(o) == signbit(r));
            if (!same) {
                if (e.first_mismatch < 0) e.first_mismatch = i;
                e.nonfinite_mismatch++;
            }
            continue;
        }
        double d = o - r;
        diff2 += d * d;
        ref2 += r * r;
        if (fabs(d) > maxdiff) maxdiff = fabs(d);
        if (fabs(r) > maxref) maxref = fabs(r);
    }
    /* Relative to the reference; absolute when the reference is exactly zero (then any
     * nonzero output is an error of its own size). */
    e.rel_l2 = ref2 > 0.0 ? sqrt(diff2) / sqrt(ref2) : sqrt(diff2);
    e.max_norm = maxref > 0.0 ? maxdiff / maxref : maxdiff;
    return e;
}

/* ---- the manifest ----------------------------------------------------------------------- */

static char *dup_string(const cJSON *item)
{
    return cJSON_IsString(item) ? strdup(item->valuestring) : NULL;
}

void vec_manifest_free(vec_manifest *m)
{
    for (size_t i = 0; i < m->n_cases; i++) {
        vec_manifest_case *c = &m->cases[i];
        free(c->id); free(c->file); free(c->sha256); free(c->flags); free(c->comment); free(c->storage);
        for (int k = 0; k < VEC_N_CLASSES; k++) free(c->not_checked[k]);
        free(c->op);
        for (int k = 0; k < c->n_named; k++) free(c->named[k]);
    }
    free(m->cases);
    memset(m, 0, sizeof *m);
}

/* One output's tolerances, one per class, from its manifest object `to`: each class has rel_l2 and
 * max_norm, unless the case says why that class is not checked. */
static m2rnn_status read_tolerances(const cJSON *to, const char *output, const vec_manifest_case *c, const char *path,
                                    vec_tolerance tol[VEC_N_CLASSES])
{
    for (int k = 0; k < VEC_N_CLASSES; k++) {
        const cJSON *tc = cJSON_GetObjectItemCaseSensitive(to, vec_class_names[k]);
        const cJSON *l2 = cJSON_GetObjectItemCaseSensitive(tc, "rel_l2");
        const cJSON *mx = cJSON_GetObjectItemCaseSensitive(tc, "max_norm");
        if (cJSON_IsNumber(l2) && cJSON_IsNumber(mx))
            tol[k] = (vec_tolerance){true, l2->valuedouble, mx->valuedouble};
        else if (!c->not_checked[k])
            return m2rnn_set_error(M2RNN_ERR_FORMAT, "%s: case %s has no %s tolerance for %s and does not say why", path, c->id,
                                   vec_class_names[k], output);
    }
    return M2RNN_OK;
}

m2rnn_status vec_manifest_load(const char *dir, vec_manifest *m)
{
    memset(m, 0, sizeof *m);
    char path[4096];
    snprintf(path, sizeof path, "%s/MANIFEST.json", dir);
    FILE *fp = fopen(path, "rb");
    if (!fp) return m2rnn_set_error(M2RNN_ERR_IO, "%s: %s", path, strerror(errno));
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *text = size >= 0 ? malloc((size_t)size + 1) : NULL;
    size_t got = text ? fread(text, 1, (size_t)size, fp) : 0;
    fclose(fp);
    if (!text || got != (size_t)size) {
        free(text);
        return m2rnn_set_error(M2RNN_ERR_IO, "%s: cannot read", path);
    }
    text[size] = '\0';
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root) return m2rnn_set_error(M2RNN_ERR_FORMAT, "%s: not valid JSON", path);

    m2rnn_status st = M2RNN_OK;
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(root, "schema");
    const cJSON *sname = cJSON_GetObjectItemCaseSensitive(schema, "name");
    const cJSON *sver = cJSON_GetObjectItemCaseSensitive(schema, "version");
    if (!cJSON_IsString(sname) || strcmp(sname->valuestring, VEC_SCHEMA_NAME) != 0 || !cJSON_IsNumber(sver)) {
        st = m2rnn_set_error(M2RNN_ERR_FORMAT, "%s: schema is not %s", path, VEC_SCHEMA_NAME);
        goto done;
    }
    if (sver->valueint != VEC_SCHEMA_VERSION) {
        st = m2rnn_set_error(M2RNN_ERR_FORMAT, "%s: schema version %d, this checker reads version %d", path,
                             sver->valueint, VEC_SCHEMA_VERSION);
        goto done;
    }
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "cases");
    if (!cJSON_IsArray(cases)) {
        st = m2rnn_set_error(M2RNN_ERR_FORMAT, "%s: no case list", path);
        goto done;
    }
    int n = cJSON_GetArraySize(cases);
    m->cases = calloc((size_t)(n > 0 ? n : 1), sizeof *m->cases);
    if (!m->cases) { st = m2rnn_set_error(M2RNN_ERR_NOMEM, "manifest: out of memory"); goto done; }
    for (const cJSON *jc = cases->child; jc; jc = jc->next) {
        vec_manifest_case *c = &m->cases[m->n_cases++];
        c->id = dup_string(cJSON_GetObjectItemCaseSensitive(jc, "id"));
        c->file = dup_string(cJSON_GetObjectItemCaseSensitive(jc, "file"));
        c->sha256 = dup_string(cJSON_GetObjectItemCaseSensitive(jc, "sha256"));
        c->comment = dup_string(cJSON_GetObjectItemCaseSensitive(jc, "comment"));
        c->storage = dup_string(cJSON_GetObjectItemCaseSensitive(jc, "storage"));
        if (!c->id || !c->file || !c->sha256 || strchr(c->file, '/')) {
            st = m2rnn_set_error(M2RNN_ERR_FORMAT, "%s: case %zu lacks id, file or sha256 (or its file has a '/')", path, m->n_cases - 1);
            goto done;
        }
        const cJSON *flags = cJSON_GetObjectItemCaseSensitive(jc, "flags");
        size_t flen = 1;
        for (const cJSON *f = flags ? flags->child : NULL; f; f = f->next) if (cJSON_IsString(f)) flen += strlen(f->valuestring) + 1;
        c->flags = calloc(flen, 1);
        for (const cJSON *f = flags ? flags->child : NULL; f && c->flags; f = f->next)
            if (cJSON_IsString(f)) { if (c->flags[0]) strcat(c->flags, " "); strcat(c->flags, f->valuestring); }
        const cJSON *nc = cJSON_GetObjectItemCaseSensitive(jc, "not_checked");
        for (int k = 0; k < VEC_N_CLASSES; k++) c->not_checked[k] = dup_string(cJSON_GetObjectItemCaseSensitive(nc, vec_class_names[k]));
        const cJSON *tols = cJSON_GetObjectItemCaseSensitive(jc, "tolerances");
        /* Its members are named by output: an array's have no names (and nothing to check). */
        if (!cJSON_IsObject(tols)) {
            st = m2rnn_set_error(M2RNN_ERR_FORMAT, "%s: case %s: %s", path, c->id,
                                 tols ? "tolerances is not an object" : "no tolerances");
            goto done;
        }
        c->op = dup_string(cJSON_GetObjectItemCaseSensitive(jc, "op"));
        if (!c->op) c->op = strdup("recurrence");
        if (strcmp(c->op, "recurrence") != 0) {
            /* A layer case: its outputs are whatever "tolerances" names. */
            if (!vec_opdesc_find(c->op)) {
                st = m2rnn_set_error(M2RNN_ERR_FORMAT, "%s: case %s has op '%s', which this checker does not know", path, c->id, c->op);
                goto done;
            }
            for (const cJSON *to = tols->child; to; to = to->next) {
                if (c->n_named == VEC_MAX_TENSORS) {
                    st = m2rnn_set_error(M2RNN_ERR_FORMAT, "%s: case %s has too many outputs", path, c->id);
                    goto done;
                }
                int o = c->n_named++;
                c->named[o] = strdup(to->string);
                if ((st = read_tolerances(to, c->named[o], c, path, c->named_tol[o]))) goto done;
            }
            continue;
        }
        for (int o = 0; o < VEC_N_OUTPUTS; o++)
            if ((st = read_tolerances(cJSON_GetObjectItemCaseSensitive(tols, vec_output_names[o]), vec_output_names[o], c, path,
                                      c->tol[o])))
                goto done;
    }
done:
    cJSON_Delete(root);
    if (st) vec_manifest_free(m);
    return st;
}

/* ---- running an op ---------------------------------------------------------------------- */

#define GUARD_BYTES 256
static const unsigned char GUARD_BYTE = 0xA5;

/* A tensor the harness hands to the backend: a host image (guards + payload + guards) and, for
 * a device backend, its device copy. */
typedef struct {
    unsigned char *host;   /* GUARD_BYTES + nbytes + GUARD_BYTES */
    void *device;          /* same layout, or NULL for a host backend */
    size_t nbytes;
    m2rnn_tensor t;        /* data points at the payload the backend sees */
} harness_buf;

static void fill_nan(m2rnn_tensor *t)
{
    int64_t n = m2rnn_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) m2rnn_tensor_set(t, i, NAN);
}

static bool is_device(const m2rnn_backend *be) { return M2RNN_BACKEND_HAS(be, alloc); }

/* Make a buffer shaped like `like` in dtype, holding a copy of src (NULL: NaN-poisoned). */
static m2rnn_status buf_make(const m2rnn_backend *be, harness_buf *b, const m2rnn_tensor *like, m2rnn_dtype dtype,
                             const void *src)
{
    memset(b, 0, sizeof *b);
    b->t = m2rnn_tensor_make(NULL, dtype, like->rank, like->shape);
    b->nbytes = m2rnn_tensor_nbytes(&b->t);
    b->host = malloc(b->nbytes + 2 * GUARD_BYTES);
    if (!b->host) return m2rnn_set_error(M2RNN_ERR_NOMEM, "check: out of memory");
    memset(b->host, GUARD_BYTE, b->nbytes + 2 * GUARD_BYTES);
    b->t.data = b->host + GUARD_BYTES;
    if (src) memcpy(b->t.data, src, b->nbytes);
    else fill_nan(&b->t);
    if (is_device(be)) {
        b->device = be->alloc(be->ctx, b->nbytes + 2 * GUARD_BYTES);
        if (!b->device) return m2rnn_set_error(M2RNN_ERR_NOMEM, "backend %s: alloc of %zu bytes failed", be->name, b->nbytes);
        m2rnn_status st = be->upload(be->ctx, b->device, b->host, b->nbytes + 2 * GUARD_BYTES);
        if (st) return st;
        b->t.data = (unsigned char *)b->device + GUARD_BYTES;
    }
    return M2RNN_OK;
}

/* Bring the backend's view back into b->host (a no-op for host backends). */
static m2rnn_status buf_fetch(const m2rnn_backend *be, harness_buf *b)
{
    if (!b->device) return M2RNN_OK;
    if (M2RNN_BACKEND_HAS(be, synchronize)) {
        m2rnn_status st = be->synchronize(be->ctx);
        if (st) return st;
    }
    return be->download(be->ctx, b->host, b->device, b->nbytes + 2 * GUARD_BYTES);
}

static void buf_free(const m2rnn_backend *be, harness_buf *b)
{
    if (b->device) be->free(be->ctx, b->device);
    free(b->host);
    memset(b, 0, sizeof *b);
}

static bool guards_intact(const harness_buf *b)
{
    for (size_t i = 0; i < GUARD_BYTES; i++)
        if (b->host[i] != GUARD_BYTE || b->host[GUARD_BYTES + b->nbytes + i] != GUARD_BYTE) return false;
    return true;
}

/* The payload as a host tensor. */
static m2rnn_tensor buf_host_view(const harness_buf *b)
{
    m2rnn_tensor t = b->t;
    t.data = b->host + GUARD_BYTES;
    return t;
}

static const int forward_outputs[] = {VEC_Y, VEC_HT};
static const int backward_outputs[] = {VEC_DQ, VEC_DK, VEC_DV, VEC_DW, VEC_DF, VEC_DH0};

/* The errors of call `call` (0 or 1) folded into w, which keeps the worse of the calls (NaN worst). */
static void keep_worst(vec_errors *w, const vec_errors *e, int call)
{
    if (call == 0) {
        *w = *e;
        return;
    }
    if (e->rel_l2 > w->rel_l2 || isnan(e->rel_l2)) w->rel_l2 = e->rel_l2;
    if (e->max_norm > w->max_norm || isnan(e->max_norm)) w->max_norm = e->max_norm;
    if (e->nonfinite_mismatch > w->nonfinite_mismatch) {
        w->nonfinite_mismatch = e->nonfinite_mismatch;
        w->first_mismatch = e->first_mismatch;
    }
}

static void verdict(vec_result *r, vec_verdict v, const char *fmt, const char *a, const char *b)
{
    if (r->verdict == VEC_FAIL) return; /* keep the first failure's reason */
    r->verdict = v;
    snprintf(r->reason, sizeof r->reason, fmt, a, b);
}

void vec_check(const m2rnn_backend *be, const vec_case *c, const vec_manifest_case *mc, int cls, vec_op op, vec_result *r)
{
    memset(r, 0, sizeof *r);
    r->verdict = VEC_PASS;
    r->deterministic = true;
    const int *outs = op == VEC_OP_FORWARD ? forward_outputs : backward_outputs;
    r->n_outputs = op == VEC_OP_FORWARD ? 2 : 6;
    for (int i = 0; i < r->n_outputs; i++) {
        r->outputs[i] = outs[i];
        if (mc) r->tol[i] = mc->tol[outs[i]][cls];
    }
    if (!mc) { verdict(r, VEC_SKIP, "case is not in the manifest%s%s", "", ""); return; }
    if (mc->not_checked[cls]) { verdict(r, VEC_SKIP, "not checked in class %s: %s", vec_class_names[cls], mc->not_checked[cls]); return; }

    harness_buf in[VEC_N_INPUTS] = {{0}}, out[VEC_N_OUTPUTS] = {{0}};
    unsigned char *first[VEC_N_OUTPUTS] = {0};
    m2rnn_status st = M2RNN_OK;
    /* Inputs: fresh copies (cu_seqlens stays a host tensor, as the API requires). */
    for (int i = 0; i < VEC_N_INPUTS && !st; i++) {
        if (!c->in[i].data) continue;
        if (op == VEC_OP_FORWARD && (i == VEC_DYIN || i == VEC_DHT)) continue;
        if (i == VEC_CU) {
            memset(&in[i], 0, sizeof in[i]);
            in[i].t = c->in[i];
            continue;
        }
        st = buf_make(be, &in[i], &c->in[i], c->in[i].dtype, c->in[i].data);
    }
    m2rnn_dtype od = vec_class_output_dtype(cls);
    for (int i = 0; i < r->n_outputs && !st; i++) st = buf_make(be, &out[outs[i]], &c->out[outs[i]], od, NULL);
    if (st) {
        verdict(r, VEC_FAIL, "harness: %s%s", m2rnn_last_error(), "");
        goto done;
    }

    m2rnn_recurrence_forward_args fa = {0};
    m2rnn_recurrence_backward_args ba = {0};
    m2rnn_recurrence_inputs *ins = op == VEC_OP_FORWARD ? &fa.in : &ba.in;
    ins->q = in[VEC_Q].t; ins->k = in[VEC_K].t; ins->v = in[VEC_V].t; ins->W = in[VEC_W].t; ins->f = in[VEC_F].t;
    ins->h0 = in[VEC_H0].t; ins->cu_seqlens = in[VEC_CU].t;
    const void *args;
    m2rnn_op mop;
    if (op == VEC_OP_FORWARD) {
        fa.y = out[VEC_Y].t; fa.ht = out[VEC_HT].t;
        args = &fa;
        mop = M2RNN_OP_RECURRENCE_FORWARD;
    } else {
        ba.dy = in[VEC_DYIN].t; ba.dht = in[VEC_DHT].t; ba.clip_mode = c->clip_mode; ba.clip = c->clip;
        ba.dq = out[VEC_DQ].t; ba.dk = out[VEC_DK].t; ba.dv = out[VEC_DV].t; ba.dW = out[VEC_DW].t;
        ba.df = out[VEC_DF].t; ba.dh0 = out[VEC_DH0].t;
        args = &ba;
        mop = M2RNN_OP_RECURRENCE_BACKWARD;
    }
    bool has_op = op == VEC_OP_FORWARD ? M2RNN_BACKEND_HAS(be, recurrence_forward) : M2RNN_BACKEND_HAS(be, recurrence_backward);
    if (!has_op) {
        verdict(r, VEC_SKIP, "backend has no %s%s", m2rnn_op_name(mop), "");
        goto done;
    }
    if (!m2rnn_backend_supports(be, mop, args)) {
        verdict(r, VEC_SKIP, "backend's supports() declines %s for these arguments%s", m2rnn_op_name(mop), "");
        goto done;
    }

    for (int call = 0; call < 2; call++) {
        m2rnn_clear_error();
        st = op == VEC_OP_FORWARD ? m2rnn_recurrence_forward(be, &fa) : m2rnn_recurrence_backward(be, &ba);
        if (st) {
            char msg[400];
            snprintf(msg, sizeof msg, "call %d returned '%s': %s", call + 1, m2rnn_status_string(st), m2rnn_last_error());
            verdict(r, VEC_FAIL, "%s%s", msg, "");
            goto done;
        }
        for (int i = 0; i < r->n_outputs; i++) {
            harness_buf *b = &out[outs[i]];
            if ((st = buf_fetch(be, b))) { verdict(r, VEC_FAIL, "download: %s%s", m2rnn_last_error(), ""); goto done; }
            if (!guards_intact(b)) {
                char msg[64];
                snprintf(msg, sizeof msg, "call %d", call + 1);
                verdict(r, VEC_FAIL, "%s wrote outside %s (guard zone damaged)", msg, vec_output_names[outs[i]]);
            }
            m2rnn_tensor view = buf_host_view(b);
            vec_errors e = vec_measure(&view, c->out[outs[i]].data, m2rnn_tensor_numel(&c->out[outs[i]]));
            keep_worst(&r->err[i], &e, call);
            if (call == 0) {
                first[outs[i]] = malloc(b->nbytes ? b->nbytes : 1);
                if (first[outs[i]]) memcpy(first[outs[i]], view.data, b->nbytes);
            } else if (first[outs[i]] && memcmp(first[outs[i]], view.data, b->nbytes) != 0) {
                r->deterministic = false;
            }
        }
    }
    /* Inputs untouched. */
    for (int i = 0; i < VEC_N_INPUTS; i++) {
        if (!in[i].host) continue;
        if ((st = buf_fetch(be, &in[i]))) { verdict(r, VEC_FAIL, "download: %s%s", m2rnn_last_error(), ""); goto done; }
        if (memcmp(in[i].host + GUARD_BYTES, c->in[i].data, in[i].nbytes) != 0 || !guards_intact(&in[i]))
            verdict(r, VEC_FAIL, "the backend modified its input %s%s", vec_input_names[i], "");
    }
    /* The verdict on the numbers. */
    for (int i = 0; i < r->n_outputs; i++) {
        const char *name = vec_output_names[outs[i]];
        const vec_errors *e = &r->err[i];
        char msg[200];
        if (e->nonfinite_mismatch) {
            snprintf(msg, sizeof msg, "%s: %lld element(s) NaN/Inf where the reference differs (first at %lld; never written?)",
                     name, (long long)e->nonfinite_mismatch, (long long)e->first_mismatch);
            verdict(r, VEC_FAIL, "%s%s", msg, "");
        } else if (!(e->rel_l2 <= r->tol[i].rel_l2) || !(e->max_norm <= r->tol[i].max_norm)) {
            snprintf(msg, sizeof msg, "%s: rel_l2 %.2e (tol %.2e), max_norm %.2e (tol %.2e)", name, e->rel_l2,
                     r->tol[i].rel_l2, e->max_norm, r->tol[i].max_norm);
            verdict(r, VEC_FAIL, "%s%s", msg, "");
        }
    }
done:
    for (int i = 0; i < VEC_N_INPUTS; i++) if (in[i].host) buf_free(be, &in[i]);
    for (int o = 0; o < VEC_N_OUTPUTS; o++) { if (out[o].host) buf_free(be, &out[o]); free(first[o]); }
}

/* ---- running a layer op ----------------------------------------------------------------- */

/* The same teeth for a layer op, driven by its descriptor: the inputs the direction reads (host
 * inputs stay host tensors), the outputs it writes (NaN-poisoned, in guard zones, in the class's
 * output dtype), two calls, inputs untouched. */
void vec_op_check(const m2rnn_backend *be, const vec_opcase *c, const vec_manifest_case *mc, int cls, bool backward,
                  vec_op_result *r)
{
    memset(r, 0, sizeof *r);
    r->verdict = VEC_PASS;
    r->deterministic = true;
    const vec_opdesc *d = c->op;
    for (int i = 0; i < c->n_out; i++) {
        if (vec_opcase_is_backward(c, i) != backward) continue;
        int k = r->n_outputs++;
        r->outputs[k] = i;
        for (int j = 0; mc && j < mc->n_named; j++)
            if (strcmp(mc->named[j], c->out[i].name) == 0) r->tol[k] = mc->named_tol[j][cls];
    }
    const char *dir = backward ? "backward" : "forward";
    if (!mc) {
        r->verdict = VEC_SKIP;
        snprintf(r->reason, sizeof r->reason, "case is not in the manifest");
        return;
    }
    if (mc->not_checked[cls]) {
        r->verdict = VEC_SKIP;
        snprintf(r->reason, sizeof r->reason, "not checked in class %s: %s", vec_class_names[cls], mc->not_checked[cls]);
        return;
    }
    for (int k = 0; k < r->n_outputs; k++)
        if (!r->tol[k].present) {
            r->verdict = VEC_FAIL;
            snprintf(r->reason, sizeof r->reason, "the manifest has no %s tolerance for %s", vec_class_names[cls], c->out[r->outputs[k]].name);
            return;
        }

    harness_buf in[VEC_MAX_TENSORS] = {{0}}, out[VEC_MAX_TENSORS] = {{0}};
    unsigned char *first[VEC_MAX_TENSORS] = {0};
    vec_io io;
    io.n = 0;
    m2rnn_status st = M2RNN_OK;
    for (int i = 0; i < c->n_in && !st; i++) {
        if (!backward && vec_name_in(d->backward_inputs, c->in[i].name)) continue;
        if (vec_name_in(d->host_inputs, c->in[i].name)) in[i].t = c->in[i].t;
        else st = buf_make(be, &in[i], &c->in[i].t, c->in[i].t.dtype, c->in[i].t.data);
        io.item[io.n] = c->in[i];
        io.item[io.n++].t = in[i].t;
    }
    m2rnn_dtype od = vec_class_output_dtype(cls);
    for (int k = 0; k < r->n_outputs && !st; k++) {
        int i = r->outputs[k];
        st = buf_make(be, &out[i], &c->out[i].t, od, NULL);
        io.item[io.n] = c->out[i];
        io.item[io.n++].t = out[i].t;
    }
    char msg[480];
    if (st) {
        r->verdict = VEC_FAIL;
        snprintf(r->reason, sizeof r->reason, "harness: %s", m2rnn_last_error());
        goto done;
    }
    bool supported = false;
    d->call(be, backward, &io, &c->params, true, &supported);
    if (!supported) {
        r->verdict = VEC_SKIP;
        snprintf(r->reason, sizeof r->reason, "backend has no %s_%s, or its supports() declines these arguments", d->name, dir);
        goto done;
    }
    for (int call = 0; call < 2; call++) {
        m2rnn_clear_error();
        st = d->call(be, backward, &io, &c->params, false, &supported);
        if (st) {
            r->verdict = VEC_FAIL;
            snprintf(r->reason, sizeof r->reason, "call %d returned '%s': %s", call + 1, m2rnn_status_string(st), m2rnn_last_error());
            goto done;
        }
        for (int k = 0; k < r->n_outputs; k++) {
            int i = r->outputs[k];
            harness_buf *b = &out[i];
            if ((st = buf_fetch(be, b))) {
                r->verdict = VEC_FAIL;
                snprintf(r->reason, sizeof r->reason, "download: %s", m2rnn_last_error());
                goto done;
            }
            if (!guards_intact(b) && r->verdict != VEC_FAIL) {
                r->verdict = VEC_FAIL;
                snprintf(r->reason, sizeof r->reason, "call %d wrote outside %s (guard zone damaged)", call + 1, c->out[i].name);
            }
            m2rnn_tensor view = buf_host_view(b);
            vec_errors e = vec_measure(&view, c->out[i].t.data, m2rnn_tensor_numel(&c->out[i].t));
            keep_worst(&r->err[k], &e, call);
            if (call == 0) {
                first[k] = malloc(b->nbytes ? b->nbytes : 1);
                if (first[k]) memcpy(first[k], view.data, b->nbytes);
            } else if (first[k] && memcmp(first[k], view.data, b->nbytes) != 0) {
                r->deterministic = false;
            }
        }
    }
    for (int i = 0; i < c->n_in; i++) {
        if (!in[i].host) continue;
        if ((st = buf_fetch(be, &in[i]))) {
            r->verdict = VEC_FAIL;
            snprintf(r->reason, sizeof r->reason, "download: %s", m2rnn_last_error());
            goto done;
        }
        if ((memcmp(in[i].host + GUARD_BYTES, c->in[i].t.data, in[i].nbytes) != 0 || !guards_intact(&in[i])) && r->verdict != VEC_FAIL) {
            r->verdict = VEC_FAIL;
            snprintf(r->reason, sizeof r->reason, "the backend modified its input %s", c->in[i].name);
        }
    }
    for (int k = 0; k < r->n_outputs && r->verdict != VEC_FAIL; k++) {
        const char *name = c->out[r->outputs[k]].name;
        const vec_errors *e = &r->err[k];
        if (e->nonfinite_mismatch) {
            snprintf(msg, sizeof msg, "%s: %lld element(s) NaN/Inf where the reference differs (first at %lld; never written?)",
                     name, (long long)e->nonfinite_mismatch, (long long)e->first_mismatch);
            r->verdict = VEC_FAIL;
            snprintf(r->reason, sizeof r->reason, "%s", msg);
        } else if (!(e->rel_l2 <= r->tol[k].rel_l2) || !(e->max_norm <= r->tol[k].max_norm)) {
            snprintf(msg, sizeof msg, "%s: rel_l2 %.2e (tol %.2e), max_norm %.2e (tol %.2e)", name, e->rel_l2, r->tol[k].rel_l2,
                     e->max_norm, r->tol[k].max_norm);
            r->verdict = VEC_FAIL;
            snprintf(r->reason, sizeof r->reason, "%s", msg);
        }
    }
done:
    for (int i = 0; i < c->n_in; i++) if (in[i].host) buf_free(be, &in[i]);
    for (int k = 0; k < VEC_MAX_TENSORS; k++) { if (out[k].host) buf_free(be, &out[k]); free(first[k]); }
}
