/*
 * m2rnn check: run backends over the golden vectors and say, per case and op, whether each
 * output is within the calibrated tolerance of its precision class.
 *
 * The teeth (NaN poisoning, guard zones, two calls, untouched inputs) are in checker.c; this
 * file picks backends, cases and classes, and prints.
 */
#include "config.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "plugins.h"
#include "vectors.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: m2rnn check [--backend ref|NAME|PATH.so]... [--class f64|f32|tf32|bf16] [--filter SUBSTR]\n"
            "                   [--op OP] [--list] [--vectors DIR] [--json]\n"
            "\n"
            "Runs each backend's ops (the recurrence and every layer op) forward and backward on every golden vector and compares each\n"
            "output with the reference's, within the tolerance of the backend's precision class. Outputs\n"
            "start as NaN inside guard zones, every op runs twice on the same buffers, inputs must stay\n"
            "untouched. One line per case and op; the last line is 'N passed, N failed, N skipped'; the exit\n"
            "status is 1 if anything failed, or if no case matched --filter and --op (nothing was checked).\n"
            "\n"
            "  --backend B    'ref', a plug-in name (libm2rnn-B.so in $M2RNN_PLUGIN_PATH or the install's\n"
            "                 plug-in directory) or a path to a plug-in .so; repeatable, up to 32 times. Default:\n"
            "                 the reference and every plug-in found.\n"
            "  --class C      check in class C instead of the class the backend declares for each storage dtype\n"
            "  --filter S     only cases whose id contains S, or whose op is S\n"
            "  --op OP        only the cases of op OP (recurrence, decay_gate, conv1d, linear, rmsnorm, silu, mlp,\n"
            "                 attention, gdn, block, embedding, cross_entropy)\n"
            "  --list         list every op with vectors, its number of cases and their ids; check nothing\n"
            "  --vectors DIR  the vectors (default: $M2RNN_VECTORS, ./vectors, or the installed set)\n"
            "  --json         print one JSON document with every result instead of the lines (the summary\n"
            "                 line then goes to stderr)\n");
}

static const char *default_vectors(void)
{
    const char *env = getenv("M2RNN_VECTORS");
    if (env && *env) return env;
    struct stat sb;
    if (stat("vectors/MANIFEST.json", &sb) == 0) return "vectors";
#ifdef M2RNN_VECTORS_DIR
    return M2RNN_VECTORS_DIR;
#else
    return "vectors";
#endif
}

static const char *verdict_name(vec_verdict v) { return v == VEC_PASS ? "PASS" : v == VEC_FAIL ? "FAIL" : "SKIP"; }

/* One op of one case as the report shows it, recurrence or layer op alike. */
typedef struct {
    const char *backend, *cls, *id;
    const char *layer_op; /* the layer op's name; NULL for the recurrence */
    bool backward;
    vec_verdict verdict;
    const char *reason;
    bool deterministic;
    int n;                               /* outputs checked */
    const char *names[VEC_MAX_TENSORS];  /* their names */
    const vec_errors *err;
    const vec_tolerance *tol;
} report_row;

static void print_row(const report_row *r)
{
    printf("%s %s %s %s %s", verdict_name(r->verdict), r->backend, r->cls, r->id, r->backward ? "backward" : "forward");
    if (r->verdict != VEC_SKIP)
        for (int i = 0; i < r->n; i++)
            printf("  %s %.1e/%.1e %.1e/%.1e", r->names[i], r->err[i].rel_l2, r->tol[i].rel_l2, r->err[i].max_norm, r->tol[i].max_norm);
    if (r->verdict != VEC_PASS) printf("  -- %s", r->reason);
    else if (!r->deterministic) printf("  (the two calls differ bitwise)");
    printf("\n");
}

static cJSON *json_row(const report_row *r)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "backend", r->backend);
    cJSON_AddStringToObject(j, "class", r->cls);
    cJSON_AddStringToObject(j, "id", r->id);
    if (r->layer_op) cJSON_AddStringToObject(j, "layer_op", r->layer_op);
    cJSON_AddStringToObject(j, "op", r->backward ? "backward" : "forward");
    cJSON_AddStringToObject(j, "verdict", verdict_name(r->verdict));
    if (r->verdict != VEC_PASS) cJSON_AddStringToObject(j, "reason", r->reason);
    if (r->verdict != VEC_SKIP) {
        cJSON_AddBoolToObject(j, "deterministic", r->deterministic);
        cJSON *outs = cJSON_AddObjectToObject(j, "outputs");
        for (int i = 0; i < r->n; i++) {
            cJSON *o = cJSON_AddObjectToObject(outs, r->names[i]);
            cJSON_AddNumberToObject(o, "rel_l2", r->err[i].rel_l2);
            cJSON_AddNumberToObject(o, "rel_l2_tol", r->tol[i].rel_l2);
            cJSON_AddNumberToObject(o, "max_norm", r->err[i].max_norm);
            cJSON_AddNumberToObject(o, "max_norm_tol", r->tol[i].max_norm);
            cJSON_AddNumberToObject(o, "nonfinite_mismatch", (double)r->err[i].nonfinite_mismatch);
        }
    }
    return j;
}

/* The row printed, or added to the JSON results. */
static void report(const report_row *r, bool json, cJSON *jres)
{
    if (json) cJSON_AddItemToArray(jres, json_row(r));
    else print_row(r);
    fflush(stdout);
}

/* One layer case (any op but the recurrence), both directions. */
/* The vector file of a manifest case, with its sha256 verified against the manifest. */
static m2rnn_status verified_path(const char *dir, const vec_manifest_case *mc, char *path, size_t size)
{
    char hex[65];
    snprintf(path, size, "%s/%s", dir, mc->file);
    m2rnn_status st = vec_sha256_file(path, hex);
    if (!st && strcmp(hex, mc->sha256) != 0)
        st = m2rnn_set_error(M2RNN_ERR_FORMAT, "%s: sha256 %s does not match the manifest's %s", path, hex, mc->sha256);
    return st;
}

/* The verdict reached before any op runs: FAIL when the file could not be read, SKIP when the
 * backend's class has no tolerances. Returns false when the op must be checked. */
static bool verdict_before_check(m2rnn_status st, int cls, const char *cls_name, vec_verdict *verdict, char *reason,
                                 size_t size)
{
    if (st) {
        *verdict = VEC_FAIL;
        snprintf(reason, size, "cannot read the vector: %s", m2rnn_last_error());
        return true;
    }
    if (cls < 0) {
        *verdict = VEC_SKIP;
        snprintf(reason, size, "backend declares precision class '%s', which has no tolerances", cls_name);
        return true;
    }
    return false;
}

typedef struct {
    int passed, failed, skipped;
} tally;

static void count(tally *t, vec_verdict v)
{
    if (v == VEC_PASS) t->passed++;
    else if (v == VEC_FAIL) t->failed++;
    else t->skipped++;
}

static void check_layer_case(const m2rnn_backend *be, const char *dir, const vec_manifest_case *mc, const char *cls_opt, bool json,
                             cJSON *jres, tally *t)
{
    char path[4096];
    vec_opcase c;
    m2rnn_status st = verified_path(dir, mc, path, sizeof path);
    if (!st) st = vec_opcase_load(path, &c);
    if (!st && (strcmp(c.id, mc->id) != 0 || strcmp(c.op->name, mc->op) != 0)) {
        st = m2rnn_set_error(M2RNN_ERR_FORMAT, "%s: holds case '%s' of op %s, the manifest says '%s' of op %s", path, c.id, c.op->name,
                             mc->id, mc->op);
        vec_opcase_free(&c);
    }
    const char *cls_name = cls_opt ? cls_opt : m2rnn_backend_precision_class(be, st ? M2RNN_F32 : c.storage);
    int cls = vec_class_index(cls_name);
    for (int bwd = 0; bwd < 2; bwd++) {
        vec_op_result r;
        memset(&r, 0, sizeof r);
        if (!verdict_before_check(st, cls, cls_name, &r.verdict, r.reason, sizeof r.reason))
            vec_op_check(be, &c, mc, cls, bwd == 1, &r);
        count(t, r.verdict);
        report_row row = {be->name, cls_name, mc->id, mc->op, bwd == 1, r.verdict, r.reason, r.deterministic, r.n_outputs,
                          {0}, r.err, r.tol};
        for (int i = 0; i < r.n_outputs; i++) row.names[i] = c.out[r.outputs[i]].name;
        report(&row, json, jres);
    }
    if (!st) vec_opcase_free(&c);
}

/* One recurrence case: its forward and its backward, one line each. */
static void check_recurrence_case(const m2rnn_backend *be, const char *dir, const vec_manifest_case *mc, const char *cls_opt,
                                  bool json, cJSON *jres, tally *t)
{
    char path[4096];
    vec_case c;
    m2rnn_status st = verified_path(dir, mc, path, sizeof path);
    if (!st) st = vec_case_load(path, &c);
    if (!st && strcmp(c.id, mc->id) != 0) {
        st = m2rnn_set_error(M2RNN_ERR_FORMAT, "%s: holds case '%s', the manifest says '%s'", path, c.id, mc->id);
        vec_case_free(&c);
    }
    const char *cls_name = cls_opt ? cls_opt : m2rnn_backend_precision_class(be, st ? M2RNN_F32 : c.storage);
    int cls = vec_class_index(cls_name);
    for (int op = 0; op < 2; op++) {
        vec_result r;
        memset(&r, 0, sizeof r);
        if (!verdict_before_check(st, cls, cls_name, &r.verdict, r.reason, sizeof r.reason))
            vec_check(be, &c, mc, cls, (vec_op)op, &r);
        count(t, r.verdict);
        report_row row = {be->name, cls_name, mc->id, NULL, op != VEC_OP_FORWARD, r.verdict, r.reason, r.deterministic,
                          r.n_outputs, {0}, r.err, r.tol};
        for (int i = 0; i < r.n_outputs; i++) row.names[i] = vec_output_names[r.outputs[i]];
        report(&row, json, jres);
    }
    if (!st) vec_case_free(&c);
}

/* Whether op is one this checker has vectors for: the recurrence or a layer op. */
static bool known_op(const char *op)
{
    return strcmp(op, "recurrence") == 0 || vec_opdesc_find(op) != NULL;
}

static void print_known_ops(FILE *out)
{
    size_t n;
    const vec_opdesc *d = vec_opdescs(&n);
    fprintf(out, "recurrence");
    for (size_t i = 0; i < n; i++) fprintf(out, ", %s", d[i].name);
}

/* Whether manifest case mc is selected by --filter and --op. */
static bool selected(const vec_manifest_case *mc, const char *filter, const char *op_opt)
{
    if (filter && !strstr(mc->id, filter) && strcmp(mc->op, filter) != 0) return false;
    return !op_opt || strcmp(mc->op, op_opt) == 0;
}

int cmd_check(int argc, char **argv)
{
    const char *backends[32], *cls_opt = NULL, *filter = NULL, *dir = NULL, *op_opt = NULL;
    bool list = false;
    int n_backends = 0;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char **arg = NULL; /* where an option's argument goes */
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) { usage(stdout); return 0; }
        else if (strcmp(argv[i], "--backend") == 0) {
            if (n_backends == 32) { fprintf(stderr, "m2rnn check: at most 32 backends (--backend)\n"); return 2; }
            arg = &backends[n_backends++];
        }
        else if (strcmp(argv[i], "--class") == 0) arg = &cls_opt;
        else if (strcmp(argv[i], "--filter") == 0) arg = &filter;
        else if (strcmp(argv[i], "--vectors") == 0) arg = &dir;
        else if (strcmp(argv[i], "--json") == 0) json = true;
        else if (strcmp(argv[i], "--op") == 0) arg = &op_opt;
        else if (strcmp(argv[i], "--list") == 0) list = true;
        else { fprintf(stderr, "m2rnn check: unknown option '%s'\n", argv[i]); usage(stderr); return 2; }
        if (arg && !(*arg = option_arg("m2rnn check", argc, argv, &i))) return 2;
    }
    if (cls_opt && vec_class_index(cls_opt) < 0) {
        fprintf(stderr, "m2rnn check: unknown class '%s' (f64, f32, tf32, bf16)\n", cls_opt);
        return 2;
    }
    if (op_opt && !known_op(op_opt)) {
        fprintf(stderr, "m2rnn check: unknown op '%s' (", op_opt);
        print_known_ops(stderr);
        fprintf(stderr, ")\n");
        return 2;
    }
    if (!dir) dir = default_vectors();

    /* Default: the reference and every plug-in that can be found. */
    static char found[PLUGINS_MAX][PLUGIN_NAME_MAX];
    if (n_backends == 0) {
        backends[n_backends++] = "ref";
        int n = find_default_plugins(found, PLUGINS_MAX);
        for (int i = 0; i < n; i++) backends[n_backends++] = found[i];
    }

    vec_manifest m;
    if (vec_manifest_load(dir, &m)) {
        fprintf(stderr, "m2rnn check: %s\n", m2rnn_last_error());
        return 2;
    }
    /* Nothing to check is not a pass: an empty set, or a typo in --filter, would otherwise print
     * "0 passed, 0 failed, 0 skipped" and exit 0. */
    if (m.n_cases == 0) {
        fprintf(stderr, "m2rnn check: %s/MANIFEST.json lists no case\n", dir);
        vec_manifest_free(&m);
        return 1;
    }
    size_t n_selected = 0;
    for (size_t ci = 0; ci < m.n_cases; ci++) n_selected += selected(&m.cases[ci], filter, op_opt);
    if (!list && n_selected == 0) {
        fprintf(stderr, "m2rnn check: no case matched");
        if (filter) fprintf(stderr, " --filter '%s'", filter);
        if (op_opt) fprintf(stderr, " --op '%s'", op_opt);
        fprintf(stderr, " (of the %zu in %s/MANIFEST.json; --list shows them): nothing checked\n", m.n_cases, dir);
        vec_manifest_free(&m);
        return 1;
    }
    if (list) {
        /* Every op with vectors, its case count, and its ids. */
        const char *ops[64];
        int counts[64], nops = 0;
        for (size_t ci = 0; ci < m.n_cases; ci++) {
            int k = 0;
            while (k < nops && strcmp(ops[k], m.cases[ci].op) != 0) k++;
            if (k == nops && nops < 64) { ops[nops] = m.cases[ci].op; counts[nops++] = 0; }
            if (k < nops) counts[k]++;
        }
        for (int k = 0; k < nops; k++) {
            printf("%s: %d case(s)\n", ops[k], counts[k]);
            for (size_t ci = 0; ci < m.n_cases; ci++)
                if (strcmp(m.cases[ci].op, ops[k]) == 0) printf("    %s\n", m.cases[ci].id);
        }
        vec_manifest_free(&m);
        return 0;
    }
    tally t = {0, 0, 0};
    cJSON *jroot = json ? cJSON_CreateObject() : NULL;
    cJSON *jres = json ? cJSON_AddArrayToObject(jroot, "results") : NULL;
    for (int bi = 0; bi < n_backends; bi++) {
        const m2rnn_backend *be;
        if (m2rnn_backend_open(backends[bi], &be)) {
            /* A backend asked for by name must load; one found by the default scan may be
             * unavailable here (a CUDA plug-in on a machine without a GPU): say so and go on. */
            fprintf(stderr, "m2rnn check: backend '%s': %s\n", backends[bi], m2rnn_last_error());
            bool asked = false;
            for (int i = 1; i < argc; i++) asked |= strcmp(argv[i], "--backend") == 0;
            if (asked) t.failed++;
            continue;
        }
        for (size_t ci = 0; ci < m.n_cases; ci++) {
            const vec_manifest_case *mc = &m.cases[ci];
            if (!selected(mc, filter, op_opt)) continue;
            if (strcmp(mc->op, "recurrence") == 0) check_recurrence_case(be, dir, mc, cls_opt, json, jres, &t);
            else check_layer_case(be, dir, mc, cls_opt, json, jres, &t);
        }
    }
    vec_manifest_free(&m);
    if (json) {
        cJSON_AddNumberToObject(jroot, "passed", t.passed);
        cJSON_AddNumberToObject(jroot, "failed", t.failed);
        cJSON_AddNumberToObject(jroot, "skipped", t.skipped);
        char *text = cJSON_Print(jroot);
        cJSON_Delete(jroot);
        if (!text) { fprintf(stderr, "m2rnn check: out of memory writing the JSON report\n"); return 2; }
        printf("%s\n", text);
        free(text);
        fprintf(stderr, "%d passed, %d failed, %d skipped\n", t.passed, t.failed, t.skipped);
    } else {
        printf("%d passed, %d failed, %d skipped\n", t.passed, t.failed, t.skipped);
    }
    return t.failed ? 1 : 0;
}
