/*
 * `m2rnn gen` reproduces the shipped vectors.
 *
 * What is bit-exact where:
 *   - the inputs are made with integer arithmetic and +, −, ×, ÷, sqrt only (tools/catalogue.c),
 *     so they are the same bits on every IEEE machine;
 *   - the expected outputs come from the reference, whose last bits depend on the CPU (OpenBLAS
 *     picks kernels at run time; the reference has an AVX2+FMA clone of its hot loops);
 *   - the tolerances are rounded up to two digits, so they do not see those last bits.
 * So this test regenerates the whole set into a temporary directory and requires: the manifest
 * identical except for the sha256 lines, every input tensor and all metadata byte-identical, and
 * every expected output within 1e-12 (normalised max error) of the shipped one. It reports how
 * many files came out bit-identical (all of them on the machine that generated the shipped set).
 * A second test requires bit-for-bit identical output from two runs on this machine.
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "commands.h"
#include "vectors_testlib.h"

static char *slurp(const char *path, size_t *size)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (fread(b, 1, (size_t)n, fp) != (size_t)n) n = 0;
    b[n] = '\0';
    fclose(fp);
    *size = (size_t)n;
    return b;
}

/* The manifest without its "sha256": lines. */
static char *without_sha(const char *text)
{
    char *out = malloc(strlen(text) + 1), *o = out;
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line + 1) : strlen(line);
        if (!strstr(line, "\"sha256\":") || (nl && strstr(line, "\"sha256\":") > nl)) {
            memcpy(o, line, len);
            o += len;
        }
        line += len;
    }
    *o = '\0';
    return out;
}

static int gen_into(const char *dir, const char *filter)
{
    char *argv[6] = {"gen", "--out", (char *)dir, NULL, NULL, NULL};
    int argc = 3;
    if (filter) { argv[3] = "--filter"; argv[4] = (char *)filter; argc = 5; }
    return cmd_gen(argc, argv);
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(dir);
}

START_TEST(regenerates_the_shipped_set)
{
    char tmp[] = "/tmp/m2rnn-gen-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    ck_assert_int_eq(gen_into(tmp, NULL), 0);

    shipped s;
    shipped_load(&s);
    int identical = 0;
    /* Every case: the recurrence's and the layer ops'. */
    for (size_t i = 0; i < s.m.n_cases + s.lm.n_cases; i++) {
        const vec_manifest_case *mc = i < s.m.n_cases ? &s.m.cases[i] : &s.lm.cases[i - s.m.n_cases];
        char a[4096], b[4096];
        snprintf(a, sizeof a, "%s/%s", vectors_dir(), mc->file);
        snprintf(b, sizeof b, "%s/%s", tmp, mc->file);
        size_t na, nb;
        char *x = slurp(a, &na), *y = slurp(b, &nb);
        ck_assert_msg(y != NULL, "%s was not regenerated", b);
        if (na == nb && memcmp(x, y, na) == 0) identical++;
        free(x);
        free(y);
        /* Tensor by tensor. */
        m2rnn_safetensors fa, fb;
        ck_assert_int_eq(m2rnn_safetensors_read(a, &fa), M2RNN_OK);
        ck_assert_int_eq(m2rnn_safetensors_read(b, &fb), M2RNN_OK);
        ck_assert_int_eq((int)fa.n_tensors, (int)fb.n_tensors);
        ck_assert_int_eq((int)fa.n_meta, (int)fb.n_meta);
        for (size_t k = 0; k < fa.n_meta; k++) {
            ck_assert_str_eq(fa.meta[k].key, fb.meta[k].key);
            ck_assert_str_eq(fa.meta[k].value, fb.meta[k].value);
        }
        for (size_t k = 0; k < fa.n_tensors; k++) {
            const m2rnn_tensor *ta = &fa.tensors[k].tensor, *tb = m2rnn_safetensors_get(&fb, fa.tensors[k].name);
            ck_assert_ptr_nonnull(tb);
            ck_assert_int_eq(ta->dtype, tb->dtype);
            ck_assert_int_eq(ta->rank, tb->rank);
            size_t bytes = m2rnn_tensor_nbytes(ta);
            ck_assert_int_eq((int)bytes, (int)m2rnn_tensor_nbytes(tb));
            if (strncmp(fa.tensors[k].name, "expected.", 9) != 0) {
                ck_assert_msg(memcmp(ta->data, tb->data, bytes) == 0, "%s: input %s differs", a, fa.tensors[k].name);
            } else {
                vec_errors e = vec_measure(tb, ta->data, m2rnn_tensor_numel(ta));
                ck_assert_msg(e.nonfinite_mismatch == 0 && e.max_norm <= 1e-12, "%s: %s differs by %g", a,
                              fa.tensors[k].name, e.max_norm);
            }
        }
        m2rnn_safetensors_free(&fa);
        m2rnn_safetensors_free(&fb);
    }
    /* The manifest: identical but for the checksums (identical outright if every file is). */
    char pa[4096], pb[4096];
    snprintf(pa, sizeof pa, "%s/MANIFEST.json", vectors_dir());
    snprintf(pb, sizeof pb, "%s/MANIFEST.json", tmp);
    size_t na, nb;
    char *ma = slurp(pa, &na), *mb = slurp(pb, &nb);
    ck_assert_ptr_nonnull(mb);
    if (identical == (int)(s.m.n_cases + s.lm.n_cases)) {
        ck_assert_msg(na == nb && memcmp(ma, mb, na) == 0, "the manifest differs although every vector file is identical");
    } else {
        char *xa = without_sha(ma), *xb = without_sha(mb);
        ck_assert_msg(strcmp(xa, xb) == 0, "the manifest differs beyond the sha256 lines");
        free(xa);
        free(xb);
    }
    free(ma);
    free(mb);
    printf("# %d of %zu regenerated files are bit-identical to the shipped ones%s\n", identical, s.m.n_cases + s.lm.n_cases,
           identical == (int)(s.m.n_cases + s.lm.n_cases) ? "" : " (the rest differ only in the reference's last bits: another CPU)");
    shipped_free(&s);
    remove_dir(tmp);
}
END_TEST

START_TEST(two_runs_are_bit_identical)
{
    char d1[] = "/tmp/m2rnn-gen1-XXXXXX", d2[] = "/tmp/m2rnn-gen2-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(d1));
    ck_assert_ptr_nonnull(mkdtemp(d2));
    ck_assert_int_eq(gen_into(d1, "k9v9"), 0);
    ck_assert_int_eq(gen_into(d2, "k9v9"), 0);
    DIR *d = opendir(d1);
    int files = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char a[4096], b[4096];
        snprintf(a, sizeof a, "%s/%s", d1, e->d_name);
        snprintf(b, sizeof b, "%s/%s", d2, e->d_name);
        size_t na, nb;
        char *x = slurp(a, &na), *y = slurp(b, &nb);
        ck_assert_msg(y && na == nb && memcmp(x, y, na) == 0, "%s: two runs differ", e->d_name);
        free(x);
        free(y);
        files++;
    }
    closedir(d);
    ck_assert_int_gt(files, 2);
    remove_dir(d1);
    remove_dir(d2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("vectors_gen");
    TCase *tc = tcase_create("regenerate");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, regenerates_the_shipped_set);
    tcase_add_test(tc, two_runs_are_bit_identical);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
