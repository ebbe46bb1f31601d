/*
 * The shipped golden vectors and the checker:
 *   - the manifest lists exactly the catalogue, every file matches its sha256 and loads;
 *   - the reference passes every case in every class (f64, f32, tf32, bf16);
 *   - the checker's own teeth: an op that is missing or declined is SKIP, never PASS; a device
 *     backend is served through alloc/upload/download; an honest fp32 kernel behind that device
 *     path passes.
 * The reference runs OpenMP threads: only inside the forked test processes, never before
 * srunner_run_all.
 */
#include "testutil.h"
#include "vectors_testlib.h"

#include "mutants/mutants.h"

START_TEST(manifest_is_the_catalogue)
{
    shipped s;
    shipped_load(&s);
    size_t n;
    const vec_spec *cat = vec_catalogue(&n);
    ck_assert_int_eq((int)s.m.n_cases, (int)n);
    for (size_t i = 0; i < n; i++) {
        char id[256], hex[65], path[4096];
        vec_case_id(&cat[i], id, sizeof id);
        ck_assert_str_eq(s.m.cases[i].id, id);
        ck_assert_str_eq(s.cases[i].id, id);
        snprintf(path, sizeof path, "%s/%s", vectors_dir(), s.m.cases[i].file);
        ck_assert_int_eq(vec_sha256_file(path, hex), M2RNN_OK);
        ck_assert_msg(strcmp(hex, s.m.cases[i].sha256) == 0, "%s: sha256 differs from the manifest", path);
    }
    /* The layer ops' catalogue, after the recurrence's, every op named and known. */
    const vec_op_spec *ocat = vec_op_catalogue(&n);
    ck_assert_int_eq((int)s.lm.n_cases, (int)n);
    for (size_t i = 0; i < n; i++) {
        char id[256], hex[65], path[4096];
        vec_op_case_id(&ocat[i], id, sizeof id);
        ck_assert_str_eq(s.lm.cases[i].id, id);
        ck_assert_str_eq(s.lm.cases[i].op, ocat[i].op);
        ck_assert_str_eq(s.lcases[i].id, id);
        ck_assert_str_eq(s.lcases[i].op->name, ocat[i].op);
        snprintf(path, sizeof path, "%s/%s", vectors_dir(), s.lm.cases[i].file);
        ck_assert_int_eq(vec_sha256_file(path, hex), M2RNN_OK);
        ck_assert_msg(strcmp(hex, s.lm.cases[i].sha256) == 0, "%s: sha256 differs from the manifest", path);
    }
    /* Every op of the descriptor table has vectors. */
    size_t nd;
    const vec_opdesc *d = vec_opdescs(&nd);
    for (size_t k = 0; k < nd; k++) {
        int count = 0;
        for (size_t i = 0; i < s.lm.n_cases; i++) count += strcmp(s.lm.cases[i].op, d[k].name) == 0;
        ck_assert_msg(count > 0, "op %s has no vectors", d[k].name);
    }
    shipped_free(&s);
}
END_TEST

START_TEST(sha256_known_answers)
{
    char hex[65];
    vec_sha256_hex("", 0, hex);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    vec_sha256_hex("abc", 3, hex);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    vec_sha256_hex(two, strlen(two), hex);
    ck_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    char *many = malloc(1000);
    memset(many, 'a', 1000);
    vec_sha256_hex(many, 1000, hex); /* several blocks, a partial last one */
    ck_assert_str_eq(hex, "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
    free(many);
}
END_TEST

/* The reference passes every case in every class it is checked in. */
START_TEST(reference_passes_every_class)
{
    int cls = _i;
    shipped s;
    shipped_load(&s);
    const m2rnn_backend *ref = m2rnn_backend_reference();
    int passed = 0;
    for (size_t i = 0; i < s.m.n_cases; i++)
        for (int op = 0; op < 2; op++) {
            vec_result r;
            vec_check(ref, &s.cases[i], &s.m.cases[i], cls, (vec_op)op, &r);
            ck_assert_msg(r.verdict != VEC_FAIL, "ref %s %s op %d: %s", vec_class_names[cls], s.m.cases[i].id, op, r.reason);
            if (r.verdict == VEC_PASS) passed++;
            else ck_assert_ptr_nonnull(s.m.cases[i].not_checked[cls]); /* SKIP only where the manifest says so */
        }
    for (size_t i = 0; i < s.lm.n_cases; i++)
        for (int bwd = 0; bwd < 2; bwd++) {
            vec_op_result r;
            vec_op_check(ref, &s.lcases[i], &s.lm.cases[i], cls, bwd == 1, &r);
            ck_assert_msg(r.verdict != VEC_FAIL, "ref %s %s %s: %s", vec_class_names[cls], s.lm.cases[i].id, bwd ? "backward" : "forward",
                          r.reason);
            if (r.verdict == VEC_PASS) passed++;
            else ck_assert_ptr_nonnull(s.lm.cases[i].not_checked[cls]);
        }
    ck_assert_int_gt(passed, 0);
    printf("# reference, class %s: %d case-ops passed\n", vec_class_names[cls], passed);
    shipped_free(&s);
}
END_TEST

/* A backend without a backward, and one whose supports() declines everything: SKIP, not PASS. */
static bool decline(void *ctx, m2rnn_op op, const void *args) { (void)ctx; (void)op; (void)args; return false; }

START_TEST(unsupported_is_skip)
{
    shipped s;
    shipped_load(&s);
    m2rnn_backend fwd_only = *mutant_backend(MUT_NONE, false);
    fwd_only.recurrence_backward = NULL;
    vec_result r;
    vec_check(&fwd_only, &s.cases[0], &s.m.cases[0], 1, VEC_OP_BACKWARD, &r);
    ck_assert_int_eq(r.verdict, VEC_SKIP);
    ck_assert_ptr_nonnull(strstr(r.reason, "no recurrence_backward"));
    vec_check(&fwd_only, &s.cases[0], &s.m.cases[0], 1, VEC_OP_FORWARD, &r);
    ck_assert_int_eq(r.verdict, VEC_PASS);
    m2rnn_backend declining = *mutant_backend(MUT_NONE, false);
    declining.supports = decline;
    vec_check(&declining, &s.cases[0], &s.m.cases[0], 1, VEC_OP_FORWARD, &r);
    ck_assert_int_eq(r.verdict, VEC_SKIP);
    ck_assert_ptr_nonnull(strstr(r.reason, "supports()"));
    shipped_free(&s);
}
END_TEST

/* A "device" backend: its memory is host memory behind alloc/upload/download, counted so the test
 * can tell that the harness used them; its ops forward to the honest fp32 kernel. */
static int n_alloc, n_upload, n_download, n_free;
static void *dev_alloc(void *ctx, size_t bytes) { (void)ctx; n_alloc++; return malloc(bytes ? bytes : 1); }
static void dev_free(void *ctx, void *p) { (void)ctx; n_free++; free(p); }
static m2rnn_status dev_upload(void *ctx, void *dst, const void *src, size_t n) { (void)ctx; n_upload++; memcpy(dst, src, n); return M2RNN_OK; }
static m2rnn_status dev_download(void *ctx, void *dst, const void *src, size_t n) { (void)ctx; n_download++; memcpy(dst, src, n); return M2RNN_OK; }

START_TEST(device_path_works)
{
    shipped s;
    shipped_load(&s);
    m2rnn_backend dev = *mutant_backend(MUT_NONE, false);
    dev.name = "fake-device";
    dev.alloc = dev_alloc;
    dev.free = dev_free;
    dev.upload = dev_upload;
    dev.download = dev_download;
    for (size_t i = 0; i < s.m.n_cases; i++) {
        if (!strstr(s.m.cases[i].id, "varlen") && !strstr(s.m.cases[i].id, "k9v9")) continue;
        for (int op = 0; op < 2; op++) {
            vec_result r;
            vec_check(&dev, &s.cases[i], &s.m.cases[i], 1, (vec_op)op, &r);
            ck_assert_msg(r.verdict == VEC_PASS, "%s: %s", s.m.cases[i].id, r.reason);
        }
    }
    ck_assert_int_gt(n_alloc, 0);
    ck_assert_int_eq(n_alloc, n_free);
    ck_assert_int_gt(n_upload, 0);
    ck_assert_int_gt(n_download, 0);
    shipped_free(&s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("vectors");
    TCase *tc = tcase_create("shipped");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, manifest_is_the_catalogue);
    tcase_add_test(tc, sha256_known_answers);
    tcase_add_loop_test(tc, reference_passes_every_class, 0, VEC_N_CLASSES);
    tcase_add_test(tc, unsupported_is_skip);
    tcase_add_test(tc, device_path_works);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
