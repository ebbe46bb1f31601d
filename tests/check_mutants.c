/*
 * The vectors have teeth: every mutant (tests/mutants/) is killed in every class it is checked
 * in, and the honest kernels the mutants are made from pass:
 *   - the fp32 kernel in classes f32 and tf32 (on every case, f32 and bf16 storage);
 *   - the bf16-state kernel in class bf16 (on the bf16-storage cases).
 * A mutant is killed in a class when at least one case-op FAILs. The killing case of each
 * (mutant, class) is printed as a TAP comment, which is the kill table.
 */
#include <math.h>

#include "testutil.h"
#include "vectors_testlib.h"

#include "mutants/mutants.h"

static const int checked_classes[] = {1, 2, 3}; /* f32, tf32, bf16 */

/* Run backend over every case in class cls; return the number of FAILs (stopping at the first
 * when stop_at_first), describing the first in first_kill. */
static char closest[512]; /* for a survivor: the case-op and output nearest to failing */

static int run_class(const m2rnn_backend *be, const shipped *s, int cls, bool stop_at_first, char *first_kill, size_t size,
                     int *n_checked)
{
    int fails = 0;
    double worst = 0.0;
    *n_checked = 0;
    first_kill[0] = '\0';
    closest[0] = '\0';
    for (size_t i = 0; i < s->m.n_cases; i++) {
        for (int op = 0; op < 2; op++) {
            vec_result r;
            vec_check(be, &s->cases[i], &s->m.cases[i], cls, (vec_op)op, &r);
            if (r.verdict == VEC_SKIP) continue;
            (*n_checked)++;
            for (int o = 0; o < r.n_outputs; o++) {
                double ratio = fmax(r.err[o].rel_l2 / r.tol[o].rel_l2, r.err[o].max_norm / r.tol[o].max_norm);
                if (ratio > worst) {
                    worst = ratio;
                    snprintf(closest, sizeof closest, "closest: %s %s %s at %.2f x its tolerance", s->m.cases[i].id,
                             op ? "backward" : "forward", vec_output_names[r.outputs[o]], ratio);
                }
            }
            if (r.verdict == VEC_FAIL) {
                if (!fails++) snprintf(first_kill, size, "%s %s: %s", s->m.cases[i].id, op ? "backward" : "forward", r.reason);
                if (stop_at_first) return fails;
            }
        }
    }
    return fails;
}

START_TEST(honest_fp32_passes)
{
    shipped s;
    shipped_load(&s);
    const m2rnn_backend *be = mutant_backend(MUT_NONE, false);
    for (int c = 1; c <= 2; c++) {
        char why[1024];
        int n;
        int fails = run_class(be, &s, c, false, why, sizeof why, &n);
        ck_assert_msg(fails == 0, "honest fp32 kernel fails %d case-op(s) in class %s, first: %s", fails, vec_class_names[c], why);
        ck_assert_int_gt(n, 0);
        printf("# honest fp32 kernel passes class %s: %d case-ops\n", vec_class_names[c], n);
    }
    shipped_free(&s);
}
END_TEST

START_TEST(honest_bf16_state_passes)
{
    shipped s;
    shipped_load(&s);
    const m2rnn_backend *be = mutant_backend(MUT_NONE, true);
    char why[1024];
    int n;
    int fails = run_class(be, &s, 3, false, why, sizeof why, &n);
    ck_assert_msg(fails == 0, "honest bf16-state kernel fails %d case-op(s) in class bf16, first: %s", fails, why);
    ck_assert_int_gt(n, 0);
    printf("# honest bf16-state kernel passes class bf16: %d case-ops\n", n);
    /* A kernel that keeps an fp32 state on bf16 inputs is more accurate than the class: it passes too. */
    fails = run_class(mutant_backend(MUT_NONE, false), &s, 3, false, why, sizeof why, &n);
    ck_assert_msg(fails == 0, "fp32-state kernel fails %d case-op(s) in class bf16, first: %s", fails, why);
    printf("# honest fp32-state kernel passes class bf16: %d case-ops\n", n);
    shipped_free(&s);
}
END_TEST

START_TEST(every_mutant_dies)
{
    mutant_id id = (mutant_id)_i;
    const mutant_info *info = mutant_describe(id);
    shipped s;
    shipped_load(&s);
    for (size_t k = 0; k < sizeof checked_classes / sizeof checked_classes[0]; k++) {
        int c = checked_classes[k];
        if (!(info->classes & (1u << c))) continue;
        /* The bf16 class is the bf16-state kernel's; f32 and tf32 are the fp32 kernel's. */
        const m2rnn_backend *be = mutant_backend(id, c == 3);
        char why[1024];
        int n;
        /* M2RNN_KILL_TABLE=1: run every case, and count the killing case-ops (slower). */
        bool all = getenv("M2RNN_KILL_TABLE") != NULL;
        int fails = run_class(be, &s, c, !all, why, sizeof why, &n);
        ck_assert_msg(fails > 0, "mutant %s (%s) survives class %s (%d case-ops checked; %s)", info->name, info->bug,
                      vec_class_names[c], n, closest);
        if (all) printf("# mutant %-22s class %-4s killed by %d of %d case-ops, first %s\n", info->name, vec_class_names[c], fails, n, why);
        else printf("# mutant %-22s class %-4s killed by %s\n", info->name, vec_class_names[c], why);
    }
    shipped_free(&s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mutants");
    TCase *tc = tcase_create("teeth");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, honest_fp32_passes);
    tcase_add_test(tc, honest_bf16_state_passes);
    tcase_add_loop_test(tc, every_mutant_dies, 1, MUT_COUNT);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
