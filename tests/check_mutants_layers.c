/*
 * The layer mutants (tests/mutants/layer_mutants.c) against the shipped layer vectors: each one
 * fails at least one case of its op in the direction it breaks (forward or backward) in the f64
 * and in the f32 class, and the honest naive copies the mutants are made from (attention forward
 * and backward, Gated DeltaNet forward) pass every case they run (NoPE for attention).
 */
#include "config.h"

#include "mutants/layer_mutants.h"
#include "vectors_testlib.h"

static int verdicts(layer_mutant m, int cls, int *fail, int *pass, bool skip_rope)
{
    shipped s;
    shipped_load(&s);
    const m2rnn_backend *be = layer_mutant_backend(m);
    *fail = *pass = 0;
    for (size_t i = 0; i < s.lm.n_cases; i++) {
        if (strcmp(s.lm.cases[i].op, layer_mutant_op(m)) != 0) continue;
        if (skip_rope && s.lcases[i].params.rope) continue;
        vec_op_result r;
        vec_op_check(be, &s.lcases[i], &s.lm.cases[i], cls, layer_mutant_backward(m), &r);
        if (r.verdict == VEC_FAIL) (*fail)++;
        if (r.verdict == VEC_PASS) (*pass)++;
        printf("# %s %s %s %s: %s %s\n", layer_mutant_name(m), layer_mutant_backward(m) ? "backward" : "forward", vec_class_names[cls], s.lm.cases[i].id,
               r.verdict == VEC_FAIL ? "FAIL" : r.verdict == VEC_PASS ? "PASS" : "SKIP", r.reason);
    }
    shipped_free(&s);
    return *fail;
}

START_TEST(every_layer_mutant_dies)
{
    layer_mutant m = (layer_mutant)_i;
    if (m == LMUT_ATTN_HONEST || m == LMUT_ATTN_BWD_HONEST || m == LMUT_GDN_HONEST) return;
    for (int cls = 0; cls < 2; cls++) {
        int fail, pass;
        verdicts(m, cls, &fail, &pass, true);
        ck_assert_msg(fail > 0, "mutant %s survives every %s case of %s", layer_mutant_name(m), vec_class_names[cls], layer_mutant_op(m));
    }
}
END_TEST

static const layer_mutant honest[] = {LMUT_ATTN_HONEST, LMUT_ATTN_BWD_HONEST, LMUT_GDN_HONEST};

START_TEST(honest_naive_copies_pass)
{
    layer_mutant m = honest[_i];
    for (int cls = 0; cls < 2; cls++) {
        int fail, pass;
        verdicts(m, cls, &fail, &pass, true);
        ck_assert_msg(fail == 0 && pass > 0, "the honest %s fails %d case(s) in %s", layer_mutant_name(m), fail, vec_class_names[cls]);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("layer mutants");
    TCase *tc = tcase_create("teeth");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, honest_naive_copies_pass, 0, (int)(sizeof honest / sizeof honest[0]));
    tcase_add_loop_test(tc, every_layer_mutant_dies, 0, LMUT_COUNT);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
