/*
 * m2rnn gen: (re)generate the golden vectors and their manifest.
 *
 * For each case of the catalogue (tools/catalogue.c):
 *   1. make the inputs (deterministic in the case id) in the storage dtype;
 *   2. run the reference (double) on exactly those inputs: the expected outputs, F64;
 *   3. write <id>.safetensors and take its sha256;
 *   4. calibrate: run the emulated recurrence (ref/m2rnn_emulated.c) in every applicable precision
 *      class, in several variants (different rounding patterns of an honest kernel of that
 *      class), measure each output's errors against the expected outputs, and set
 *        tolerance = round_up_2_digits(max(SAFETY × worst observed error, FLOOR[class]))
 *      for each output × class × metric. A class whose scaled error would exceed
 *      MEANINGLESS on some output is not checked for that case, and the manifest says why.
 * Then MANIFEST.json. Nothing in the output depends on the time, the machine's thread count or
 * the order of the lanes; see the README section on regeneration for what does depend on the CPU.
 */
#include "config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "layer_util.h"
#include "m2rnn_emulated.h"
#include "vectors.h"

/* Calibration constants (recorded in the manifest). */
static const double SAFETY = 4.0;      /* tolerance = SAFETY × worst error of the emulated variants */
static const double MEANINGLESS = 0.1; /* a scaled tolerance above this checks nothing: class not checked */
/* FLOOR: twice the unit roundoff of the class's output dtype (rounding the exact answer once
 * already costs up to one unit roundoff per element). */
static const double FLOOR[VEC_N_CLASSES] = {0x1p-52, 0x1p-23, 0x1p-23, 0x1p-8};

#define N_VARIANTS 4

/* The variants of each class: the plain rounding pattern, and three honest alternatives. */
static m2rnn_emu_config variant(int cls, int v)
{
    m2rnn_emu_config c = {.cls = (m2rnn_emu_class)cls, .seed = (uint64_t)(1000 * cls + v + 1)};
    switch (cls) {
    case M2RNN_EMU_F64:
    case M2RNN_EMU_F32:
        c.perturb = v > 0;
        c.reverse = v == 2;
        c.fused = v == 3;
        break;
    case M2RNN_EMU_TF32:
        c.perturb = v >= 2;
        c.reverse = v == 1;
        c.tf32_truncate = v == 2;
        c.fused = v == 3;
        break;
    case M2RNN_EMU_BF16:
        c.perturb = v > 0;
        c.reverse = v == 2;
        c.reduce_in_storage = v == 2;
        c.bf16_operands = v == 3;
        c.approx_tanh = v == 3;
        c.fused = v == 3;
        break;
    }
    return c;
}

/* x rounded up to two significant digits: tolerances read cleanly and do not change with the
 * last bits of the reference (which depend on the CPU's BLAS kernels). */
static double round_up_2(double x)
{
    if (!(x > 0.0) || !isfinite(x)) return x;
    double e = floor(log10(x)) - 1.0;
    double scale = pow(10.0, e);
    double r = ceil(x / scale - 1e-9) * scale;
    char buf[32];
    snprintf(buf, sizeof buf, "%.1e", r); /* normalise the representation */
    return strtod(buf, NULL);
}

typedef struct {
    double rel_l2, max_norm;
    int worst_l2, worst_max; /* which variant */
} observed;

/* Run one variant of one class on a case; errors of each output against the expected ones. */
static m2rnn_status run_variant(const vec_case *c, const m2rnn_emu_config *cfg, vec_errors err[VEC_N_OUTPUTS])
{
    m2rnn_tensor out[VEC_N_OUTPUTS];
    double *buf[VEC_N_OUTPUTS] = {0};
    m2rnn_status st = M2RNN_OK;
    for (int o = 0; o < VEC_N_OUTPUTS; o++) {
        out[o] = c->out[o];
        int64_t n = m2rnn_tensor_numel(&out[o]);
        buf[o] = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
        if (!buf[o]) st = m2rnn_set_error(M2RNN_ERR_NOMEM, "gen: out of memory");
        out[o].data = buf[o];
    }
    if (!st) {
        m2rnn_recurrence_forward_args fa;
        vec_forward_args(c, &fa);
        fa.y = out[VEC_Y];
        fa.ht = out[VEC_HT];
        st = m2rnn_recurrence_forward_emulated(&fa, cfg);
    }
    if (!st) {
        m2rnn_recurrence_backward_args ba;
        vec_backward_args(c, &ba);
        ba.dq = out[VEC_DQ]; ba.dk = out[VEC_DK]; ba.dv = out[VEC_DV];
        ba.dW = out[VEC_DW]; ba.df = out[VEC_DF]; ba.dh0 = out[VEC_DH0];
        st = m2rnn_recurrence_backward_emulated(&ba, cfg);
    }
    for (int o = 0; o < VEC_N_OUTPUTS && !st; o++) err[o] = vec_measure(&out[o], c->out[o].data, m2rnn_tensor_numel(&out[o]));
    for (int o = 0; o < VEC_N_OUTPUTS; o++) free(buf[o]);
    return st;
}

static cJSON *string_array(const char *spaced)
{
    cJSON *a = cJSON_CreateArray();
    char *copy = strdup(spaced), *save = NULL;
    for (char *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) cJSON_AddItemToArray(a, cJSON_CreateString(tok));
    free(copy);
    return a;
}

/* Write one vector file and its sha256 (hex is filled even if the write fails). */
static m2rnn_status write_vector(const char *path, const unsigned char *bytes, size_t size, char hex[65])
{
    m2rnn_status st = M2RNN_OK;
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(bytes, 1, size, fp) != size || fclose(fp) != 0)
        st = m2rnn_set_error(M2RNN_ERR_IO, "%s: cannot write", path);
    vec_sha256_hex(bytes, size, hex);
    return st;
}

/* The manifest fields every case has, in the manifest's order. */
static cJSON *manifest_entry(const char *id, const char *op, const char *comment, const char *flags, const char *file,
                             const char *hex, m2rnn_dtype storage)
{
    cJSON *jc = cJSON_CreateObject();
    cJSON_AddStringToObject(jc, "id", id);
    cJSON_AddStringToObject(jc, "op", op);
    cJSON_AddStringToObject(jc, "comment", comment);
    cJSON_AddItemToObject(jc, "flags", string_array(flags));
    cJSON_AddStringToObject(jc, "file", file);
    cJSON_AddStringToObject(jc, "sha256", hex);
    cJSON_AddStringToObject(jc, "storage", m2rnn_dtype_name(storage));
    return jc;
}

static bool class_applies(int cls, m2rnn_dtype storage)
{
    return cls != 3 || storage == M2RNN_BF16; /* the bf16 class is bf16 storage */
}

/* Calibrate one case: fill the case's "tolerances" and "not_checked" objects. */
static m2rnn_status calibrate(const vec_case *c, cJSON *jcase, bool verbose)
{
    cJSON *tols = cJSON_AddObjectToObject(jcase, "tolerances");
    cJSON *notc = cJSON_AddObjectToObject(jcase, "not_checked");
    cJSON *per_out[VEC_N_OUTPUTS];
    for (int o = 0; o < VEC_N_OUTPUTS; o++) per_out[o] = cJSON_AddObjectToObject(tols, vec_output_names[o]);
    for (int cls = 0; cls < VEC_N_CLASSES; cls++) {
        if (!class_applies(cls, c->storage)) {
            cJSON_AddStringToObject(notc, vec_class_names[cls], "the bf16 class is for bf16 storage; this case stores F32");
            continue;
        }
        observed obs[VEC_N_OUTPUTS] = {{0}};
        /* The variants are independent: run them side by side (each one's own lanes then run
         * serially: nested parallel regions are off). The results are the same either way. */
        vec_errors err[N_VARIANTS][VEC_N_OUTPUTS];
        m2rnn_status vst[N_VARIANTS];
        char vmsg[N_VARIANTS][256];
#pragma omp parallel for schedule(dynamic)
        for (int v = 0; v < N_VARIANTS; v++) {
            m2rnn_emu_config cfg = variant(cls, v);
            vst[v] = run_variant(c, &cfg, err[v]);
            snprintf(vmsg[v], sizeof vmsg[v], "%s", vst[v] ? m2rnn_last_error() : "");
        }
        for (int v = 0; v < N_VARIANTS; v++) {
            m2rnn_emu_config cfg = variant(cls, v);
            if (vst[v]) return m2rnn_set_error(vst[v], "%s", vmsg[v]);
            for (int o = 0; o < VEC_N_OUTPUTS; o++) {
                if (err[v][o].nonfinite_mismatch)
                    return m2rnn_set_error(M2RNN_ERR_BACKEND, "%s: the %s emulation gives NaN/Inf in %s where the reference does not",
                                           c->id, vec_class_names[cls], vec_output_names[o]);
                if (err[v][o].rel_l2 >= obs[o].rel_l2) { obs[o].rel_l2 = err[v][o].rel_l2; obs[o].worst_l2 = v; }
                if (err[v][o].max_norm >= obs[o].max_norm) { obs[o].max_norm = err[v][o].max_norm; obs[o].worst_max = v; }
            }
            if (verbose) {
                char d[128];
                m2rnn_emu_describe(&cfg, d, sizeof d);
                fprintf(stderr, "    %-58s", d);
                for (int o = 0; o < VEC_N_OUTPUTS; o++) fprintf(stderr, " %s %.1e", vec_output_names[o], err[v][o].rel_l2);
                fprintf(stderr, "\n");
            }
        }
        /* A class whose tolerance would be meaningless is not checked on this case. */
        int worst = -1;
        for (int o = 0; o < VEC_N_OUTPUTS; o++)
            if (SAFETY * obs[o].rel_l2 > MEANINGLESS && (worst < 0 || obs[o].rel_l2 > obs[worst].rel_l2)) worst = o;
        if (worst >= 0) {
            char why[256];
            snprintf(why, sizeof why, "emulated %s kernels are off by up to %.2g (relative L2) in %s: rounding is amplified "
                     "beyond a meaningful tolerance, so this case is not checked in this class",
                     vec_class_names[cls], obs[worst].rel_l2, vec_output_names[worst]);
            cJSON_AddStringToObject(notc, vec_class_names[cls], why);
            continue;
        }
        for (int o = 0; o < VEC_N_OUTPUTS; o++) {
            cJSON *t = cJSON_AddObjectToObject(per_out[o], vec_class_names[cls]);
            double l2 = round_up_2(fmax(SAFETY * obs[o].rel_l2, FLOOR[cls]));
            double mx = round_up_2(fmax(SAFETY * obs[o].max_norm, FLOOR[cls]));
            cJSON_AddNumberToObject(t, "rel_l2", l2);
            cJSON_AddNumberToObject(t, "max_norm", mx);
            /* The observations themselves, to two digits: they vary in the last bits with the
             * reference's BLAS kernels, and the manifest should not. */
            cJSON_AddNumberToObject(t, "observed_rel_l2", round_up_2(obs[o].rel_l2));
            cJSON_AddNumberToObject(t, "observed_max_norm", round_up_2(obs[o].max_norm));
            char prov[600], d1[128], d2[128];
            m2rnn_emu_config w1 = variant(cls, obs[o].worst_l2), w2 = variant(cls, obs[o].worst_max);
            m2rnn_emu_describe(&w1, d1, sizeof d1);
            m2rnn_emu_describe(&w2, d2, sizeof d2);
            snprintf(prov, sizeof prov, "calibrated: %g x the worst of %d emulated %s variants (rel_l2: %s; max_norm: %s), floor %.1e",
                     SAFETY, N_VARIANTS, vec_class_names[cls], d1, d2, FLOOR[cls]);
            cJSON_AddStringToObject(t, "provenance", prov);
        }
    }
    return M2RNN_OK;
}

/* ---- the layer ops ---------------------------------------------------------------------- */

/* How each class's perturbation is made up (opcases.c: the rule, vec_rounding_rel). */
static const char *const UNIT_TEXT[VEC_N_CLASSES] = {
    "2^-53*sqrt(R+S)", "2^-24*sqrt(R+S)", "sqrt(L*(2^-11)^2 + (R+S)*(2^-24)^2): tf32 product operands and approximate transcendentals, fp32 else",
    "sqrt((S-1)*(2^-9)^2 + (R+S)*(2^-24)^2): bf16 intermediates, fp32 accumulation"};

/* Calibrate a layer case: run the generic emulation of each class it is checked in (one
 * unperturbed variant: the exact answer rounded to the class's output dtype; three with the
 * inputs perturbed at the case's computed rel, vec_rounding_rel), set each tolerance from the
 * worst error as for the recurrence. */
static m2rnn_status calibrate_op(const vec_opcase *c, const vec_op_spec *s, cJSON *jcase)
{
    cJSON *tols = cJSON_AddObjectToObject(jcase, "tolerances");
    cJSON *notc = cJSON_AddObjectToObject(jcase, "not_checked");
    cJSON *per_out[VEC_MAX_TENSORS];
    for (int o = 0; o < c->n_out; o++) per_out[o] = cJSON_AddObjectToObject(tols, c->out[o].name);
    for (int cls = 0; cls < VEC_N_CLASSES; cls++) {
        if (!class_applies(cls, c->storage)) {
            cJSON_AddStringToObject(notc, vec_class_names[cls], "the bf16 class is for bf16 storage; this case stores F32");
            continue;
        }
        if (!(c->op->classes & (1u << cls))) {
            cJSON_AddStringToObject(notc, vec_class_names[cls], c->op->not_emulated);
            continue;
        }
        vec_rounding rnd;
        vec_op_rounding(s, &rnd);
        const double rel = vec_rounding_rel(&rnd, cls);
        observed obs[VEC_MAX_TENSORS] = {{0}};
        for (int v = 0; v < N_VARIANTS; v++) {
            double *out[VEC_MAX_TENSORS] = {0};
            m2rnn_status st = vec_opcase_emulate(c, cls, v == 0 ? 0.0 : rel, (uint64_t)(1000 * cls + v), vec_class_output_dtype(cls), out);
            for (int o = 0; o < c->n_out && !st; o++) {
                m2rnn_tensor t = m2rnn_tensor_make(out[o], M2RNN_F64, c->out[o].t.rank, c->out[o].t.shape);
                vec_errors e = vec_measure(&t, c->out[o].t.data, m2rnn_tensor_numel(&t));
                if (e.nonfinite_mismatch)
                    st = m2rnn_set_error(M2RNN_ERR_BACKEND, "%s: the %s emulation gives NaN/Inf in %s where the reference does not",
                                         c->id, vec_class_names[cls], c->out[o].name);
                if (e.rel_l2 >= obs[o].rel_l2) { obs[o].rel_l2 = e.rel_l2; obs[o].worst_l2 = v; }
                if (e.max_norm >= obs[o].max_norm) { obs[o].max_norm = e.max_norm; obs[o].worst_max = v; }
            }
            for (int o = 0; o < c->n_out; o++) free(out[o]);
            if (st) return st;
        }
        int worst = -1;
        for (int o = 0; o < c->n_out; o++)
            if (SAFETY * obs[o].rel_l2 > MEANINGLESS && (worst < 0 || obs[o].rel_l2 > obs[worst].rel_l2)) worst = o;
        if (worst >= 0) {
            char why[256];
            snprintf(why, sizeof why, "the emulated %s class is off by up to %.2g (relative L2) in %s: beyond a meaningful tolerance, "
                     "so this case is not checked in this class", vec_class_names[cls], obs[worst].rel_l2, c->out[worst].name);
            cJSON_AddStringToObject(notc, vec_class_names[cls], why);
            continue;
        }
        for (int o = 0; o < c->n_out; o++) {
            cJSON *t = cJSON_AddObjectToObject(per_out[o], vec_class_names[cls]);
            cJSON_AddNumberToObject(t, "rel_l2", round_up_2(fmax(SAFETY * obs[o].rel_l2, FLOOR[cls])));
            cJSON_AddNumberToObject(t, "max_norm", round_up_2(fmax(SAFETY * obs[o].max_norm, FLOOR[cls])));
            cJSON_AddNumberToObject(t, "observed_rel_l2", round_up_2(obs[o].rel_l2));
            cJSON_AddNumberToObject(t, "observed_max_norm", round_up_2(obs[o].max_norm));
            char prov[1200];
            if (c->op->emulation)
                snprintf(prov, sizeof prov,
                         "calibrated: %g x the worst of %d emulated %s variants (%s; rel = %s = %.3g, R %d, S %d, L %d, in 3 seeded "
                         "variants, plus the unperturbed one; outputs rounded to %s), floor %.1e",
                         SAFETY, N_VARIANTS, vec_class_names[cls], c->op->emulation, UNIT_TEXT[cls], rel, rnd.reduction, rnd.stages,
                         rnd.low_stages,
                         m2rnn_dtype_name(vec_class_output_dtype(cls)), FLOOR[cls]);
            else
            snprintf(prov, sizeof prov,
                     "calibrated: %g x the worst of %d emulated %s variants (generic emulation: the double reference on inputs "
                     "perturbed by relative rel = %s = %.3g, R %d, S %d, L %d, in 3 seeded variants, plus the unperturbed one; "
                     "outputs rounded to %s), floor %.1e",
                     SAFETY, N_VARIANTS, vec_class_names[cls], UNIT_TEXT[cls], rel, rnd.reduction, rnd.stages, rnd.low_stages,
                     m2rnn_dtype_name(vec_class_output_dtype(cls)), FLOOR[cls]);
            cJSON_AddStringToObject(t, "provenance", prov);
        }
    }
    return M2RNN_OK;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: m2rnn gen [--out DIR] [--filter SUBSTRING] [--list] [--verbose]\n"
            "\n"
            "Regenerates the golden vectors: one <id>.safetensors per case of the catalogue (inputs in the\n"
            "storage dtype, expected outputs in F64 from the reference) and DIR/MANIFEST.json with each\n"
            "output's tolerance per precision class, calibrated by running emulated kernels of each class.\n"
            "\n"
            "  --out DIR          where to write (default: vectors)\n"
            "  --filter SUBSTR    only cases whose id contains SUBSTR (the manifest then lists only those;\n"
            "                     if none does, nothing is written and the exit status is 1)\n"
            "  --list             print the catalogue's ids and flags, write nothing\n"
            "  --verbose          print every emulated variant's errors\n");
}

/* How many cases of the two catalogues (recurrence, layer ops) have an id containing filter. */
static size_t count_selected(const vec_spec *cat, size_t n, const vec_op_spec *ocat, size_t nops, const char *filter)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        char id[256];
        vec_case_id(&cat[i], id, sizeof id);
        count += !filter || strstr(id, filter);
    }
    for (size_t i = 0; i < nops; i++) {
        char id[256];
        vec_op_case_id(&ocat[i], id, sizeof id);
        count += !filter || strstr(id, filter);
    }
    return count;
}

int cmd_gen(int argc, char **argv)
{
    const char *dir = "vectors", *filter = NULL;
    bool list = false, verbose = false;
    for (int i = 1; i < argc; i++) {
        const char **arg = NULL; /* where an option's argument goes */
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) { usage(stdout); return 0; }
        else if (strcmp(argv[i], "--out") == 0) arg = &dir;
        else if (strcmp(argv[i], "--filter") == 0) arg = &filter;
        else if (strcmp(argv[i], "--list") == 0) list = true;
        else if (strcmp(argv[i], "--verbose") == 0) verbose = true;
        else { fprintf(stderr, "m2rnn gen: unknown option '%s'\n", argv[i]); usage(stderr); return 2; }
        if (arg && !(*arg = option_arg("m2rnn gen", argc, argv, &i))) return 2;
    }
    size_t n, nops;
    const vec_spec *cat = vec_catalogue(&n);
    const vec_op_spec *ocat = vec_op_catalogue(&nops);
    if (list) {
        for (size_t i = 0; i < n; i++) {
            char id[256], flags[512];
            vec_case_id(&cat[i], id, sizeof id);
            vec_case_flags(&cat[i], flags, sizeof flags);
            printf("%s\n    %s\n", id, flags);
        }
        for (size_t i = 0; i < nops; i++) {
            char id[256], flags[512];
            vec_op_case_id(&ocat[i], id, sizeof id);
            vec_op_case_flags(&ocat[i], flags, sizeof flags);
            printf("%s\n    %s\n", id, flags);
        }
        return 0;
    }
    /* A filter that matches nothing would write a manifest listing no case, over the real one
     * with the default --out: refuse before writing anything. */
    const size_t total = count_selected(cat, n, ocat, nops, filter);
    if (total == 0) {
        fprintf(stderr, "m2rnn gen: no case matched --filter '%s' (--list shows the ids): nothing written\n", filter ? filter : "");
        return 1;
    }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "m2rnn gen: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    /* The reference's products in one summation order on every machine, not OpenBLAS's per-CPU
     * kernels: the expected outputs and the tolerances calibrated from them then come out the same
     * wherever the set is regenerated (layer_util.h, README "Regenerating the vectors"). The
     * caller's setting comes back at the end (the tests run gen inside their own process). */
    const bool was_exact = lu_exact_order();
    lu_set_exact_order(true);

    cJSON *root = cJSON_CreateObject();
    cJSON *schema = cJSON_AddObjectToObject(root, "schema");
    cJSON_AddStringToObject(schema, "name", VEC_SCHEMA_NAME);
    cJSON_AddNumberToObject(schema, "version", VEC_SCHEMA_VERSION);
    cJSON *gen = cJSON_AddObjectToObject(root, "generator");
    cJSON_AddStringToObject(gen, "name", "m2rnn gen");
    cJSON_AddStringToObject(gen, "version", VEC_GENERATOR_VERSION);
    cJSON_AddStringToObject(gen, "library_version", m2rnn_version());
    cJSON *metrics = cJSON_AddObjectToObject(root, "metrics");
    cJSON_AddStringToObject(metrics, "rel_l2", "||out - ref||_2 / ||ref||_2 over the finite elements (absolute if ref is all zero)");
    cJSON_AddStringToObject(metrics, "max_norm", "max|out - ref| / max|ref| over the finite elements (absolute if ref is all zero)");
    cJSON_AddStringToObject(metrics, "nonfinite", "NaN, +Inf and -Inf must be where the reference has them, exactly");
    cJSON_AddStringToObject(metrics, "pass", "every output of the op within both tolerances on both of two calls");
    cJSON *classes = cJSON_AddObjectToObject(root, "classes");
    cJSON_AddStringToObject(classes, "f64", "double arithmetic; outputs F64");
    cJSON_AddStringToObject(classes, "f32", "IEEE fp32 arithmetic; outputs F32");
    cJSON_AddStringToObject(classes, "tf32", "fp32 storage and accumulation, tf32 operands in the matrix products, tanh with relative error up to 2^-11; outputs F32");
    cJSON_AddStringToObject(classes, "bf16", "bf16 storage, fp32 accumulation, the state rounded to bf16 every step; outputs BF16 (bf16-storage cases only)");
    cJSON *cal = cJSON_AddObjectToObject(root, "calibration");
    cJSON_AddNumberToObject(cal, "safety_factor", SAFETY);
    cJSON_AddNumberToObject(cal, "not_checked_above", MEANINGLESS);
    cJSON *floors = cJSON_AddObjectToObject(cal, "floors");
    cJSON *vars = cJSON_AddObjectToObject(cal, "variants");
    for (int cls = 0; cls < VEC_N_CLASSES; cls++) {
        cJSON_AddNumberToObject(floors, vec_class_names[cls], FLOOR[cls]);
        cJSON *a = cJSON_AddArrayToObject(vars, vec_class_names[cls]);
        for (int v = 0; v < N_VARIANTS; v++) {
            m2rnn_emu_config cfg = variant(cls, v);
            char d[128];
            m2rnn_emu_describe(&cfg, d, sizeof d);
            cJSON_AddItemToArray(a, cJSON_CreateString(d));
        }
    }
    cJSON_AddStringToObject(cal, "layer_method", "layer ops (every case whose op is not 'recurrence'): the generic emulation of "
                            "tools/opcases.c -- the op's double reference on F64 copies of the stored inputs, each float element "
                            "multiplied by (1 + d), d uniform in [-rel, rel], in 3 seeded variants plus the unperturbed one, every output "
                            "rounded to the class's output dtype; then the same safety factor, floors and rounding as the recurrence. "
                            "Ops that carry a state over time (gdn, block) use a stepped variant: the reference run token by token, "
                            "the state and the carried state gradient rounded after every token to the class's storage "
                            "(fp32, tf32, bf16), rel then covering one token; a class whose tolerance would exceed 0.1 is not "
                            "checked, and the case says why. rel is computed from the case's op and parameters, never set by hand "
                            "(the rule, tools/opcases.c): independent roundings add in quadrature along the longest dependency path "
                            "to an output; R = the longest reduction into one output value (dot product, normalisation, softmax, "
                            "conv window, or a parameter gradient's sum over the tokens), accumulated in fp32; S = 2*S_fwd - 1 "
                            "rounding stages (the op's forward stages -- each a product, a reduction or an elementwise function "
                            "giving one intermediate -- then the adjoints of all but the last); L = min(2*L_fwd, S) of them that "
                            "round at tf32's u in the tf32 class (matrix products, their operands rounded to tf32 once; "
                            "transcendental functions, approximate there); rounding_depth = R + S. "
                            "rel: f64 2^-53*sqrt(R+S); f32 2^-24*sqrt(R+S); tf32 sqrt(L*(2^-11)^2 + (R+S)*(2^-24)^2); "
                            "bf16 sqrt((S-1)*(2^-9)^2 + (R+S)*(2^-24)^2) (every intermediate between stages held in bf16, "
                            "fp32 accumulation; the inputs are bf16 already and the output is rounded by the emulation). "
                            "Each case lists its R, S, L and stage chain under 'rounding'");
    cJSON_AddStringToObject(cal, "method", "each tolerance = max(safety_factor x the largest error of the class's emulated variants "
                            "(ref/m2rnn_emulated.c) on this case's stored inputs, floor), rounded up to 2 significant digits");
    cJSON *jcases = cJSON_AddArrayToObject(root, "cases");

    int failures = 0, written = 0;
    size_t total_bytes = 0, done = 0; /* done: cases started, for the progress lines */
    for (size_t i = 0; i < n; i++) {
        char id[256];
        vec_case_id(&cat[i], id, sizeof id);
        if (filter && !strstr(id, filter)) continue;
        fprintf(stderr, "[%zu/%zu] %s\n", ++done, total, id);
        vec_case c;
        m2rnn_status st = vec_case_generate(&cat[i], &c);
        unsigned char *bytes = NULL;
        size_t size = 0;
        if (!st) st = vec_case_encode(&c, &cat[i], &bytes, &size);
        char file[300], path[4096], hex[65];
        /* Short file names (tag, storage, a hash of the id): the full id can pass the 99
         * characters of a path that the tar format of `make dist` keeps. */
        uint32_t h = 2166136261u;
        for (const char *p = id; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
        snprintf(file, sizeof file, "%s.%s.%08x.safetensors", cat[i].tag, cat[i].storage == M2RNN_BF16 ? "bf16" : "f32", h);
        snprintf(path, sizeof path, "%s/%s", dir, file);
        if (!st) {
            st = write_vector(path, bytes, size, hex);
            total_bytes += size;
        }
        free(bytes);
        cJSON *jc = NULL;
        if (!st) {
            char flags[512];
            vec_case_flags(&cat[i], flags, sizeof flags);
            jc = manifest_entry(id, "recurrence", cat[i].comment, flags, file, hex, cat[i].storage);
            cJSON_AddStringToObject(jc, "regime", vec_regime_name(cat[i].regime));
            st = calibrate(&c, jc, verbose);
        }
        if (st) {
            fprintf(stderr, "m2rnn gen: %s: %s\n", id, m2rnn_last_error());
            cJSON_Delete(jc);
            failures++;
        } else {
            cJSON_AddItemToArray(jcases, jc);
            written++;
        }
        vec_case_free(&c);
    }

    /* The layer ops. */
    for (size_t i = 0; i < nops; i++) {
        char id[256];
        vec_op_case_id(&ocat[i], id, sizeof id);
        if (filter && !strstr(id, filter)) continue;
        fprintf(stderr, "[%zu/%zu] %s\n", ++done, total, id);
        vec_opcase c;
        m2rnn_status st = vec_opcase_generate(&ocat[i], &c);
        unsigned char *bytes = NULL;
        size_t size = 0;
        if (!st) st = vec_opcase_encode(&c, &ocat[i], &bytes, &size);
        char file[300], path[4096], hex[65];
        vec_op_case_file(&ocat[i], file, sizeof file);
        snprintf(path, sizeof path, "%s/%s", dir, file);
        if (!st) {
            st = write_vector(path, bytes, size, hex);
            total_bytes += size;
        }
        free(bytes);
        cJSON *jc = NULL;
        if (!st) {
            char flags[512];
            vec_op_case_flags(&ocat[i], flags, sizeof flags);
            jc = manifest_entry(id, ocat[i].op, ocat[i].comment, flags, file, hex, ocat[i].storage);
            cJSON *ins = cJSON_AddArrayToObject(jc, "inputs");
            for (int k = 0; k < c.n_in; k++) cJSON_AddItemToArray(ins, cJSON_CreateString(c.in[k].name));
            cJSON *fo = cJSON_AddArrayToObject(jc, "forward_outputs"), *bo = cJSON_AddArrayToObject(jc, "backward_outputs");
            for (int k = 0; k < c.n_out; k++)
                cJSON_AddItemToArray(vec_opcase_is_backward(&c, k) ? bo : fo, cJSON_CreateString(c.out[k].name));
            vec_rounding rnd;
            vec_op_rounding(&ocat[i], &rnd);
            cJSON_AddNumberToObject(jc, "rounding_depth", vec_rounding_depth(&rnd));
            cJSON *jr = cJSON_AddObjectToObject(jc, "rounding");
            cJSON_AddNumberToObject(jr, "reduction", rnd.reduction);
            cJSON_AddNumberToObject(jr, "stages", rnd.stages);
            cJSON_AddNumberToObject(jr, "tf32_stages", rnd.low_stages);
            cJSON_AddStringToObject(jr, "chain", rnd.chain);
            st = calibrate_op(&c, &ocat[i], jc);
        }
        if (st) {
            fprintf(stderr, "m2rnn gen: %s: %s\n", id, m2rnn_last_error());
            cJSON_Delete(jc);
            failures++;
        } else {
            cJSON_AddItemToArray(jcases, jc);
            written++;
        }
        vec_opcase_free(&c);
    }

    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    char path[4096];
    snprintf(path, sizeof path, "%s/MANIFEST.json", dir);
    FILE *fp = text ? fopen(path, "wb") : NULL;
    bool saved = fp && fputs(text, fp) >= 0 && fputc('\n', fp) != EOF;
    if (fp && fclose(fp) != 0) saved = false;
    if (!saved) {
        fprintf(stderr, "m2rnn gen: %s %s\n", text ? "cannot write" : "out of memory writing", path);
        failures++;
    }
    free(text);
    fprintf(stderr, "m2rnn gen: %d case(s), %.2f MB, written to %s%s\n", written, total_bytes / 1e6, dir,
            failures ? " (with failures)" : "");
    lu_set_exact_order(was_exact);
    return failures ? 1 : 0;
}
