/*
 * m2rnn bench: time the recurrence on a backend, with the work done and the bytes moved.
 *
 * Work counted per (token, state head), for the products a straightforward implementation does:
 *   forward   2·K·V·V (H W) + 7·K·V (k vᵀ, update, readout) flops, and K·V tanh;
 *   backward  the forward again (a backward call recomputes the states from its inputs) plus
 *             4·K·V·V (dA Wᵀ, H_{t-1}ᵀ dA) + 18·K·V flops.
 * Bytes: the least any implementation must move — every input read once, every output written
 * once, at the storage dtype's size (W, h0/ht counted once per call).
 * Times are wall-clock medians over --runs runs after --warmup runs; a device backend is
 * synchronised after each call, and its data stays on the device between runs.
 *
 * With --op both and a backend that has the training pair (backend.h, ABI 1.3), a second set of
 * runs times it too: forward_save (the forward, also keeping what the backward would recompute,
 * in a buffer the bench allocates) and backward_saved (the backward from that buffer); their sum is
 * the "training step", what a framework's forward + backward costs. The plain backward's row keeps
 * the recomputation in.
 *
 * With --op both, an op the backend does not have (a forward-only plug-in's backward), or whose
 * supports() refuses these sizes, is reported as not supported and the other is still timed: a
 * kernel's author gets the forward's figures before writing the backward. Asked for alone (--op
 * forward or backward), a missing op is an error, as there is then nothing to time.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "m2rnn/m2rnn.h"
#include "commands.h"

typedef struct {
    const char *backend;
    int64_t B, S, N, K, V, nq, nk, nv, nf, nw;
    m2rnn_dtype dtype;
    int runs, warmup;
    bool json, with_h0;
    const char *op; /* "forward", "backward", "both" */
} bench_opts;

static void bench_usage(FILE *out)
{
    fprintf(out,
            "usage: m2rnn bench [options]\n\n"
            "Times the M2RNN recurrence forward, backward and forward+backward on one backend.\n\n"
            "  --backend NAME   ref (default), a plug-in name (cuda) or a path to a plug-in .so\n"
            "  --preset NAME    ci:   B=2 S=1024 N=16 K=64 V=16, every head count N (the default)\n"
            "                   7b:   B=4 S=4096 N=132 K=64 V=16 Nq=Nk=1 (the paper's 7B layer)\n"
            "                   410m: B=8 S=4096 N=84 K=64 V=16 Nq=Nk=1 (the paper's 410M layer)\n"
            "  -B, -S, -N, -K, -V N       override sizes (after --preset)\n"
            "  --q-heads/--k-heads/--v-heads/--f-heads/--w-heads N   head counts (default N)\n"
            "  --dtype f32|bf16|f64|f16   storage dtype of inputs and outputs (default f32)\n"
            "  --h0             pass an initial state (and time ht / dh0 too)\n"
            "  --op forward|backward|both  what to time (default both: forward, backward, forward+backward,\n"
            "                   and the training pair forward_save + backward_saved where the backend has one;\n"
            "                   an op the backend does not support is shown as such and the other timed;\n"
            "                   --op forward or backward on a backend without that op is an error)\n"
            "  --runs R         timed runs, median reported (default 5, at most 1000000)\n"
            "  --warmup W       untimed runs first (default 1, at most 1000000)\n"
            "  --json           one JSON object on stdout instead of the table\n\n"
            "Work and bytes: see the comment at the top of tools/cmd_bench.c. Progress goes to stderr.\n");
}

static bool set_preset(bench_opts *o, const char *name)
{
    if (strcmp(name, "ci") == 0) {
        o->B = 2; o->S = 1024; o->N = 16; o->K = 64; o->V = 16;
        o->nq = o->nk = o->nv = o->nf = o->nw = 0;
    } else if (strcmp(name, "7b") == 0) {
        o->B = 4; o->S = 4096; o->N = 132; o->K = 64; o->V = 16;
        o->nq = o->nk = 1; o->nv = o->nf = o->nw = 0;
    } else if (strcmp(name, "410m") == 0) {
        o->B = 8; o->S = 4096; o->N = 84; o->K = 64; o->V = 16;
        o->nq = o->nk = 1; o->nv = o->nf = o->nw = 0;
    } else {
        return false;
    }
    return true;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *x, int n)
{
    qsort(x, (size_t)n, sizeof *x, compare_doubles);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

/* splitmix64: a small, fixed generator so every backend sees the same data. */
static uint64_t rng_state = 0x6d32726e6e2d6265ull;
static double uniform(double lo, double hi)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return lo + (hi - lo) * (double)(z >> 11) * 0x1p-53;
}

/* One tensor in host memory and, for a device backend, its device copy. */
typedef struct {
    m2rnn_tensor host, dev;
} buffer;

static const m2rnn_backend *be;

/* Make tensor `name`; returns -1 after setting the error (naming it) when it cannot be made. */
static int buffer_make(buffer *b, const char *name, m2rnn_dtype dtype, int rank, const int64_t *shape, double lo, double hi,
                       bool identity_v)
{
    b->host = m2rnn_tensor_make(NULL, dtype, rank, shape);
    int64_t n = m2rnn_tensor_numel(&b->host);
    size_t bytes = m2rnn_tensor_nbytes(&b->host);
    /* nbytes is 0 on overflow too: the fill below would then write past a 1-byte buffer */
    if (n < 0 || (n > 0 && bytes == 0)) {
        m2rnn_set_error(M2RNN_ERR_OVERFLOW, "%s: its size overflows", name);
        return -1;
    }
    b->host.data = malloc(bytes ? bytes : 1);
    if (!b->host.data) {
        m2rnn_set_error(M2RNN_ERR_NOMEM, "%s: out of memory for %zu bytes", name, bytes);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        double x = uniform(lo, hi);
        if (identity_v) { /* W ≈ I: the model's initialisation plus a small perturbation */
            int64_t V = shape[2], r = (i / V) % V, c = i % V;
            x = (r == c ? 1.0 : 0.0) + x / sqrt((double)V);
        }
        m2rnn_tensor_set(&b->host, i, x);
    }
    b->dev = b->host;
    if (be->alloc) {
        b->dev.data = be->alloc(be->ctx, bytes ? bytes : 1);
        if (!b->dev.data) {
            m2rnn_set_error(M2RNN_ERR_NOMEM, "%s: backend %s cannot allocate %zu bytes", name, be->name, bytes);
            return -1;
        }
        if (be->upload(be->ctx, b->dev.data, b->host.data, bytes) != M2RNN_OK) return -1;
    }
    return 0;
}

static void buffer_free(buffer *b)
{
    if (be->alloc && b->dev.data) be->free(be->ctx, b->dev.data);
    free(b->host.data);
}

static int sync_backend(void)
{
    return be->synchronize ? (int)be->synchronize(be->ctx) : 0;
}

/* Why the backend cannot run recurrence op (forward or backward) on these arguments, or NULL when
 * it can. Arguments the op's own check refuses count as runnable: the call then says what is wrong
 * with them, as it would without this look. The check comes first because a backend's supports()
 * may assume checked arguments (the dispatcher only ever asks it about those). */
static const char *cannot_run(m2rnn_op op, const void *args)
{
    bool fwd = op == M2RNN_OP_RECURRENCE_FORWARD;
    if (fwd ? !M2RNN_BACKEND_HAS(be, recurrence_forward) : !M2RNN_BACKEND_HAS(be, recurrence_backward)) return "it has none";
    m2rnn_recurrence_dims dims;
    if ((fwd ? m2rnn_recurrence_check_forward(args, &dims) : m2rnn_recurrence_check_backward(args, &dims)) != M2RNN_OK)
        return NULL;
    return m2rnn_backend_supports(be, op, args) ? NULL : "not with these arguments";
}

/* The timed runs (after `warmup` untimed ones) of the forward and/or the backward; with `saved`, of
 * the training pair instead (forward_save, then backward_saved from that buffer). Seconds per run go
 * to tf, tb and tfb (the two together). `label` starts the progress line. Returns 0, or 1 after
 * reporting a failed call. */
static int time_runs(const m2rnn_recurrence_forward_args *fa, const m2rnn_recurrence_backward_args *ba, bool do_fwd,
                     bool do_bwd, void *saved, int warmup, int runs, const char *label, bool show_progress, double *tf,
                     double *tb, double *tfb)
{
    for (int r = -warmup; r < runs; r++) {
        if (show_progress)
            fprintf(stderr, "\r%s%s run %d/%d ", label, r < 0 ? "warm-up" : "timed", r < 0 ? r + warmup + 1 : r + 1,
                    r < 0 ? warmup : runs);
        double t0 = now_seconds(), t1 = t0, t2;
        m2rnn_status st = M2RNN_OK;
        if (do_fwd) {
            st = saved ? m2rnn_recurrence_forward_save(be, fa, saved) : m2rnn_recurrence_forward(be, fa);
            if (!st) st = (m2rnn_status)sync_backend();
            t1 = now_seconds();
        }
        if (!st && do_bwd) {
            st = saved ? m2rnn_recurrence_backward_saved(be, ba, saved) : m2rnn_recurrence_backward(be, ba);
            if (!st) st = (m2rnn_status)sync_backend();
        }
        t2 = now_seconds();
        if (st) { fprintf(stderr, "\nm2rnn bench: %s: %s\n", m2rnn_status_string(st), m2rnn_last_error()); return 1; }
        if (r >= 0) { tf[r] = t1 - t0; tb[r] = t2 - t1; tfb[r] = t2 - t0; }
    }
    if (show_progress) fprintf(stderr, "\r%40s\r", "");
    return 0;
}

typedef struct {
    double forward, backward, both;           /* medians, seconds */
    double forward_save, backward_saved, step; /* the training pair's, NAN without one */
} timings;

/* A size option's value: all of s a non-negative integer that fits (strtoll clamps to LLONG_MAX
 * with ERANGE, which would then surface as an overflow of some tensor, not of the option). */
static int parse_size(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || errno == ERANGE) return -1;
    *out = v;
    return 0;
}

#define MAX_RUNS 1000000

/* --runs or --warmup: all of s an integer from lo to MAX_RUNS (more runs than that is a typo, and
 * would only make the timing arrays huge). Says what is wrong and returns -1 otherwise. */
static int parse_runs(const char *option, const char *s, int lo, int *out)
{
    int64_t v;
    if (parse_size(s, &v) != 0 || v < lo || v > MAX_RUNS) {
        fprintf(stderr, "m2rnn bench: %s must be an integer from %d to %d, not '%s'\n", option, lo, MAX_RUNS, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    bench_opts o = {.backend = "ref", .dtype = M2RNN_F32, .runs = 5, .warmup = 1, .op = "both"};
    set_preset(&o, "ci");
    enum { OPT_PRESET = 256, OPT_DTYPE, OPT_RUNS, OPT_WARMUP, OPT_JSON, OPT_H0, OPT_OP, OPT_BACKEND,
           OPT_NQ, OPT_NK, OPT_NV, OPT_NF, OPT_NW };
    static const struct option longopts[] = {
        {"backend", required_argument, 0, OPT_BACKEND}, {"preset", required_argument, 0, OPT_PRESET},
        {"dtype", required_argument, 0, OPT_DTYPE},     {"runs", required_argument, 0, OPT_RUNS},
        {"warmup", required_argument, 0, OPT_WARMUP},   {"json", no_argument, 0, OPT_JSON},
        {"h0", no_argument, 0, OPT_H0},                 {"op", required_argument, 0, OPT_OP},
        {"q-heads", required_argument, 0, OPT_NQ},      {"k-heads", required_argument, 0, OPT_NK},
        {"v-heads", required_argument, 0, OPT_NV},      {"f-heads", required_argument, 0, OPT_NF},
        {"w-heads", required_argument, 0, OPT_NW},      {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "hB:S:N:K:V:", longopts, NULL)) != -1) {
        int64_t *size = NULL;
        const char *size_option = NULL; /* as the user spelt it, for the error message */
        switch (c) {
        case 'h': bench_usage(stdout); return 0;
        case OPT_BACKEND: o.backend = optarg; break;
        case OPT_PRESET:
            if (!set_preset(&o, optarg)) { fprintf(stderr, "m2rnn bench: unknown preset '%s' (ci, 7b, 410m)\n", optarg); return 2; }
            break;
        case OPT_DTYPE:
            o.dtype = m2rnn_dtype_from_name(optarg);
            if (!m2rnn_dtype_is_float(o.dtype)) { fprintf(stderr, "m2rnn bench: --dtype '%s' is not f64, f32, bf16 or f16\n", optarg); return 2; }
            break;
        case OPT_RUNS: if (parse_runs("--runs", optarg, 1, &o.runs)) return 2; break;
        case OPT_WARMUP: if (parse_runs("--warmup", optarg, 0, &o.warmup)) return 2; break;
        case OPT_JSON: o.json = true; break;
        case OPT_H0: o.with_h0 = true; break;
        case OPT_OP: o.op = optarg; break;
        case 'B': size = &o.B; size_option = "-B"; break;
        case 'S': size = &o.S; size_option = "-S"; break;
        case 'N': size = &o.N; size_option = "-N"; break;
        case 'K': size = &o.K; size_option = "-K"; break;
        case 'V': size = &o.V; size_option = "-V"; break;
        case OPT_NQ: size = &o.nq; size_option = "--q-heads"; break;
        case OPT_NK: size = &o.nk; size_option = "--k-heads"; break;
        case OPT_NV: size = &o.nv; size_option = "--v-heads"; break;
        case OPT_NF: size = &o.nf; size_option = "--f-heads"; break;
        case OPT_NW: size = &o.nw; size_option = "--w-heads"; break;
        default: fprintf(stderr, "m2rnn bench: try --help\n"); return 2;
        }
        if (size && parse_size(optarg, size) != 0) {
            fprintf(stderr, "m2rnn bench: %s must be a non-negative integer below 2^63, not '%s'\n", size_option, optarg);
            return 2;
        }
    }
    if (optind < argc) { fprintf(stderr, "m2rnn bench: unexpected argument '%s' (try --help)\n", argv[optind]); return 2; }
    /* want_*: what --op asks for; do_*: what is timed, the part of it the backend can run (below). */
    const bool want_fwd = strcmp(o.op, "forward") == 0 || strcmp(o.op, "both") == 0;
    const bool want_bwd = strcmp(o.op, "backward") == 0 || strcmp(o.op, "both") == 0;
    if (!want_fwd && !want_bwd) { fprintf(stderr, "m2rnn bench: --op must be forward, backward or both\n"); return 2; }
    int64_t *counts[] = {&o.nq, &o.nk, &o.nv, &o.nf, &o.nw};
    for (int i = 0; i < 5; i++) if (*counts[i] == 0) *counts[i] = o.N;

    if (m2rnn_backend_open(o.backend, &be) != M2RNN_OK) {
        fprintf(stderr, "m2rnn bench: %s\n", m2rnn_last_error());
        return 1;
    }

    /* Inputs: post-SiLU-like activations, W ≈ I, f in (0.05, 0.99) as the decay gate gives. */
    const m2rnn_dtype dt = o.dtype;
    buffer q = {0}, k = {0}, v = {0}, W = {0}, f = {0}, h0 = {0}, y = {0}, ht = {0};
    buffer dy = {0}, dht = {0}, dq = {0}, dk = {0}, dv = {0}, dW = {0}, df = {0}, dh0 = {0};
    int64_t sq[] = {o.B, o.S, o.nq, o.K}, sk[] = {o.B, o.S, o.nk, o.K}, sv[] = {o.B, o.S, o.nv, o.V};
    int64_t sf[] = {o.B, o.S, o.nf}, sw[] = {o.nw, o.V, o.V}, sy[] = {o.B, o.S, o.N, o.V};
    int64_t ss[] = {o.B, o.N, o.K, o.V};
    int err = 0; /* the first failure stops the rest: its message is the one printed */
    err = err || buffer_make(&q, "q", dt, 4, sq, -0.3, 1.0, false);
    err = err || buffer_make(&k, "k", dt, 4, sk, -0.3, 1.0, false);
    err = err || buffer_make(&v, "v", dt, 4, sv, -0.3, 1.0, false);
    err = err || buffer_make(&W, "W", dt, 3, sw, -0.1, 0.1, true);
    err = err || buffer_make(&f, "f", dt, 3, sf, 0.05, 0.99, false);
    err = err || buffer_make(&y, "y", dt, 4, sy, 0, 0, false);
    /* A backend without a backward entry costs no gradient buffers (a device's memory may be short). */
    const bool grads = want_bwd && M2RNN_BACKEND_HAS(be, recurrence_backward);
    if (grads) {
        err = err || buffer_make(&dy, "dy", dt, 4, sy, -1.0, 1.0, false);
        err = err || buffer_make(&dq, "dq", dt, 4, sq, 0, 0, false);
        err = err || buffer_make(&dk, "dk", dt, 4, sk, 0, 0, false);
        err = err || buffer_make(&dv, "dv", dt, 4, sv, 0, 0, false);
        err = err || buffer_make(&dW, "dW", dt, 3, sw, 0, 0, false);
        err = err || buffer_make(&df, "df", dt, 3, sf, 0, 0, false);
    }
    if (o.with_h0) {
        err = err || buffer_make(&h0, "h0", dt, 4, ss, -0.5, 0.5, false);
        err = err || buffer_make(&ht, "ht", dt, 4, ss, 0, 0, false);
        if (grads) {
            err = err || buffer_make(&dht, "dht", dt, 4, ss, -0.5, 0.5, false);
            err = err || buffer_make(&dh0, "dh0", dt, 4, ss, 0, 0, false);
        }
    }
    if (err) { fprintf(stderr, "m2rnn bench: cannot allocate the tensors: %s\n", m2rnn_last_error()); return 1; }

    m2rnn_recurrence_inputs in = {.q = q.dev, .k = k.dev, .v = v.dev, .W = W.dev, .f = f.dev, .h0 = h0.dev};
    m2rnn_recurrence_forward_args fa = {.in = in, .y = y.dev, .ht = ht.dev};
    m2rnn_recurrence_backward_args ba = {.in = in, .dy = dy.dev, .dht = dht.dev, .dq = dq.dev, .dk = dk.dev,
                                         .dv = dv.dev, .dW = dW.dev, .df = df.dev, .dh0 = dh0.dev};
    const char *no_fwd = want_fwd ? cannot_run(M2RNN_OP_RECURRENCE_FORWARD, &fa) : NULL;
    const char *no_bwd = want_bwd ? cannot_run(M2RNN_OP_RECURRENCE_BACKWARD, &ba) : NULL;
    const bool do_fwd = want_fwd && !no_fwd, do_bwd = want_bwd && !no_bwd;
    /* Say what is left out, and stop when that is all --op asked for. */
    const bool none = !do_fwd && !do_bwd;
    const char *const lacking[2][2] = {{"recurrence_forward", no_fwd}, {"recurrence_backward", no_bwd}};
    for (int i = 0; i < 2; i++)
        if (lacking[i][1])
            fprintf(stderr, "m2rnn bench: backend %s does not support %s (%s): %s%s\n", be->name, lacking[i][0], lacking[i][1],
                    none ? "nothing to time for --op " : "not timed", none ? o.op : "");
    if (none) return 1;

    double *tf = calloc((size_t)o.runs, sizeof(double)), *tb = calloc((size_t)o.runs, sizeof(double));
    double *tfb = calloc((size_t)o.runs, sizeof(double));
    if (!tf || !tb || !tfb) { fprintf(stderr, "m2rnn bench: cannot allocate the times of %d runs\n", o.runs); return 1; }
    timings med = {NAN, NAN, NAN, NAN, NAN, NAN};
    size_t peak = 0;
    bool has_peak = M2RNN_BACKEND_HAS(be, peak_workspace_bytes);
    if (has_peak) be->peak_workspace_bytes(be->ctx, true);
    bool show_progress = !o.json && isatty(STDERR_FILENO);
    if (time_runs(&fa, &ba, do_fwd, do_bwd, NULL, o.warmup, o.runs, "", show_progress, tf, tb, tfb)) return 1;
    if (do_fwd) med.forward = median(tf, o.runs);
    if (do_bwd) med.backward = median(tb, o.runs);
    if (do_fwd && do_bwd) med.both = median(tfb, o.runs);
    if (has_peak) peak = be->peak_workspace_bytes(be->ctx, false);

    /* The training pair, if the backend has one (saved_bytes > 0). */
    size_t saved_bytes = 0;
    void *saved = NULL;
    if (do_fwd && do_bwd && m2rnn_recurrence_saved_bytes(be, &fa, &saved_bytes) == M2RNN_OK && saved_bytes > 0) {
        saved = be->alloc ? be->alloc(be->ctx, saved_bytes) : malloc(saved_bytes);
        if (!saved) { fprintf(stderr, "m2rnn bench: cannot allocate the %zu-byte saved buffer\n", saved_bytes); return 1; }
        if (time_runs(&fa, &ba, true, true, saved, o.warmup, o.runs, "training pair: ", show_progress, tf, tb, tfb))
            return 1;
        med.forward_save = median(tf, o.runs);
        med.backward_saved = median(tb, o.runs);
        med.step = median(tfb, o.runs);
        if (be->free) be->free(be->ctx, saved); else free(saved);
    }

    /* Work and bytes (see the comment at the top). */
    double lanes_tokens = (double)o.B * (double)o.S * (double)o.N, K = (double)o.K, V = (double)o.V;
    double fwd_flops = lanes_tokens * (2 * K * V * V + 7 * K * V);
    double bwd_flops = fwd_flops + lanes_tokens * (4 * K * V * V + 18 * K * V);
    double es = (double)m2rnn_dtype_size(dt), tok = (double)o.B * (double)o.S;
    double in_bytes = es * (tok * (o.nq * K + o.nk * K + o.nv * V + o.nf) + o.nw * V * V + (o.with_h0 ? o.B * o.N * K * V : 0));
    double state_bytes = es * (o.with_h0 ? o.B * o.N * K * V : 0);
    double y_bytes = es * tok * o.N * V;
    double fwd_bytes = in_bytes + y_bytes + state_bytes;
    double bwd_bytes = 2 * in_bytes + y_bytes + state_bytes; /* inputs + dy, dht read; grads written */

    if (o.json) {
        /* a time that was not measured (--op forward, an op the backend does not support, or no training
         * pair) is null, not nan; not_supported lists the ops --op asked for that the backend lacks */
        char ts[6][32];
        const double times[6] = {med.forward, med.backward, med.both, med.forward_save, med.backward_saved, med.step};
        for (int i = 0; i < 6; i++) {
            if (isnan(times[i])) snprintf(ts[i], sizeof ts[i], "null");
            else snprintf(ts[i], sizeof ts[i], "%.9g", times[i]);
        }
        /* one of the two at most: with neither, the bench stopped above */
        const char *unsupported = no_fwd ? "\"forward\"" : no_bwd ? "\"backward\"" : "";
        printf("{\"backend\":\"%s\",\"dtype\":\"%s\",\"B\":%lld,\"S\":%lld,\"N\":%lld,\"K\":%lld,\"V\":%lld,"
               "\"q_heads\":%lld,\"k_heads\":%lld,\"v_heads\":%lld,\"f_heads\":%lld,\"w_heads\":%lld,\"h0\":%s,\"runs\":%d,"
               "\"not_supported\":[%s],\"forward_s\":%s,\"backward_s\":%s,\"forward_backward_s\":%s,"
               "\"forward_flops\":%.6g,\"backward_flops\":%.6g,\"forward_bytes\":%.6g,\"backward_bytes\":%.6g,"
               "\"peak_workspace_bytes\":%zu,\"forward_save_s\":%s,\"backward_saved_s\":%s,\"training_step_s\":%s,"
               "\"saved_bytes\":%zu}\n",
               be->name, m2rnn_dtype_name(dt), (long long)o.B, (long long)o.S, (long long)o.N, (long long)o.K,
               (long long)o.V, (long long)o.nq, (long long)o.nk, (long long)o.nv, (long long)o.nf, (long long)o.nw,
               o.with_h0 ? "true" : "false", o.runs, unsupported, ts[0], ts[1], ts[2], fwd_flops, bwd_flops, fwd_bytes,
               bwd_bytes, peak, ts[3], ts[4], ts[5], saved_bytes);
    } else {
        printf("backend %s, %s storage, B=%lld S=%lld N=%lld K=%lld V=%lld (heads q%lld k%lld v%lld f%lld W%lld)%s, "
               "median of %d runs\n",
               be->name, m2rnn_dtype_name(dt), (long long)o.B, (long long)o.S, (long long)o.N, (long long)o.K,
               (long long)o.V, (long long)o.nq, (long long)o.nk, (long long)o.nv, (long long)o.nf, (long long)o.nw,
               o.with_h0 ? ", with h0" : "", o.runs);
        printf("  %-18s %12s %12s %12s %12s\n", "op", "time (ms)", "GFLOP", "GFLOP/s", "GB/s (min)");
        if (want_fwd && !do_fwd) printf("  %-18s %s\n", "forward", "not supported");
        if (do_fwd)
            printf("  %-18s %12.3f %12.3f %12.2f %12.2f\n", "forward", 1e3 * med.forward, 1e-9 * fwd_flops,
                   1e-9 * fwd_flops / med.forward, 1e-9 * fwd_bytes / med.forward);
        if (want_bwd && !do_bwd) printf("  %-18s %s\n", "backward", "not supported");
        if (do_bwd)
            printf("  %-18s %12.3f %12.3f %12.2f %12.2f\n", "backward", 1e3 * med.backward, 1e-9 * bwd_flops,
                   1e-9 * bwd_flops / med.backward, 1e-9 * bwd_bytes / med.backward);
        if (want_fwd && want_bwd && !(do_fwd && do_bwd)) printf("  %-18s %s\n", "forward+backward", "not supported");
        if (do_fwd && do_bwd)
            printf("  %-18s %12.3f %12.3f %12.2f %12.2f\n", "forward+backward", 1e3 * med.both,
                   1e-9 * (fwd_flops + bwd_flops), 1e-9 * (fwd_flops + bwd_flops) / med.both,
                   1e-9 * (fwd_bytes + bwd_bytes) / med.both);
        if (saved_bytes > 0) {
            printf("  %-18s %12.3f %12.3f %12.2f %12.2f\n", "forward_save", 1e3 * med.forward_save, 1e-9 * fwd_flops,
                   1e-9 * fwd_flops / med.forward_save, 1e-9 * fwd_bytes / med.forward_save);
            printf("  %-18s %12.3f %12s %12s %12.2f\n", "backward_saved", 1e3 * med.backward_saved, "-", "-",
                   1e-9 * bwd_bytes / med.backward_saved);
            printf("  %-18s %12.3f %12s %12s %12.2f\n", "training step", 1e3 * med.step, "-", "-",
                   1e-9 * (fwd_bytes + bwd_bytes) / med.step);
            printf("  saved buffer (forward_save -> backward_saved): %.1f MiB\n", (double)saved_bytes / 1048576.0);
        }
        if (has_peak) printf("  peak device workspace: %.1f MiB\n", (double)peak / 1048576.0);
    }

    buffer *all[] = {&q, &k, &v, &W, &f, &h0, &y, &ht, &dy, &dht, &dq, &dk, &dv, &dW, &df, &dh0};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) buffer_free(all[i]);
    free(tf); free(tb); free(tfb);
    return 0;
}
