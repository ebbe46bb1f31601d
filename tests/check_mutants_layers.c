/*
 * The layer mutants (tests/mutants/layer_mutants.c) against the shipped layer vectors: each one
 * fails at least one case of its op in the direction it breaks (forward or backward) in the f64
 * and in the f32 class, and in the bf16 class wherever a bf16 case of the op is checked in bf16
 * (except the mutants in bf16_blind: their slip needs data only an f32 case has), and the honest naive copies the mutants are made from (attention forward
 * and backward, Gated DeltaNet forward) pass every case they run (NoPE for attention).
 */
#include "config.h"

#include "testutil.h"
#include "mutants/layer_mutants.h"
#include "vectors_testlib.h"

/* Mutants whose slip changes nothing on the op's bf16 case: it needs data only an f32 case has. */
static bool bf16_blind(layer_mutant m)
{
    switch (m) {
    case LMUT_RMSNORM_EPS_OUTSIDE: /* needs mean(x^2) ~ eps (rmsnorm eps, f32); the bf16 case has unit rows, eps 1e-5 */
    case LMUT_ATTN_NO_MAX:         /* needs scores past exp's range (attention overflow, f32) */
    case LMUT_CE_MEAN_ALL:         /* need ignored targets (cross_entropy ce-ignore, f32) */
    case LMUT_CE_BWD_ALL_TOKENS: return true;
    default: return false;
    }
}

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
    for (int cls = 0; cls < 4; cls++) {
        if (cls == 2) continue; /* tf32: not asserted */
        int fail, pass;
        verdicts(m, cls, &fail, &pass, true);
        if (cls == 3 && (fail + pass == 0 || bf16_blind(m))) continue; /* no bf16 case of the op checked in bf16 */
        ck_assert_msg(fail > 0, "mutant %s survives every %s case of %s", layer_mutant_name(m), vec_class_names[cls], layer_mutant_op(m));
    }
}
END_TEST

static const layer_mutant honest[] = {LMUT_ATTN_HONEST, LMUT_ATTN_BWD_HONEST, LMUT_GDN_HONEST};

START_TEST(honest_naive_copies_pass)
{
    layer_mutant m = honest[_i];
    for (int cls = 0; cls < 4; cls++) {
        if (cls == 2) continue;
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
    return run_suite(s);
}
