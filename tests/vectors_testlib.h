/* Helpers shared by the golden-vector tests: load the shipped manifest and cases, run a backend
 * over them. Header-only (static functions) to keep each test one file plus this. */
#ifndef M2RNN_TESTS_VECTORS_TESTLIB_H
#define M2RNN_TESTS_VECTORS_TESTLIB_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vectors.h"

/* The shipped vectors: $M2RNN_VECTORS (set by `make check`), else ./vectors. */
static const char *vectors_dir(void)
{
    const char *d = getenv("M2RNN_VECTORS");
    return d && *d ? d : "vectors";
}

typedef struct {
    vec_manifest m;      /* the recurrence's cases */
    vec_case *cases;     /* in manifest order */
    vec_manifest lm;     /* the layer ops' cases (op != recurrence) */
    vec_opcase *lcases;  /* in lm order */
} shipped;

static void shipped_load(shipped *s)
{
    memset(s, 0, sizeof *s);
    ck_assert_msg(vec_manifest_load(vectors_dir(), &s->m) == M2RNN_OK, "%s", m2rnn_last_error());
    /* Split off the layer cases. */
    s->lm.cases = calloc(s->m.n_cases + 1, sizeof *s->lm.cases);
    size_t keep = 0;
    for (size_t i = 0; i < s->m.n_cases; i++) {
        if (strcmp(s->m.cases[i].op, "recurrence") == 0) s->m.cases[keep++] = s->m.cases[i];
        else s->lm.cases[s->lm.n_cases++] = s->m.cases[i];
    }
    s->m.n_cases = keep;
    s->lcases = calloc(s->lm.n_cases + 1, sizeof *s->lcases);
    for (size_t i = 0; i < s->lm.n_cases; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", vectors_dir(), s->lm.cases[i].file);
        ck_assert_msg(vec_opcase_load(path, &s->lcases[i]) == M2RNN_OK, "%s", m2rnn_last_error());
    }
    s->cases = calloc(s->m.n_cases, sizeof *s->cases);
    for (size_t i = 0; i < s->m.n_cases; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", vectors_dir(), s->m.cases[i].file);
        ck_assert_msg(vec_case_load(path, &s->cases[i]) == M2RNN_OK, "%s", m2rnn_last_error());
    }
}

static void shipped_free(shipped *s)
{
    for (size_t i = 0; i < s->m.n_cases; i++) vec_case_free(&s->cases[i]);
    free(s->cases);
    vec_manifest_free(&s->m);
    for (size_t i = 0; i < s->lm.n_cases; i++) vec_opcase_free(&s->lcases[i]);
    free(s->lcases);
    vec_manifest_free(&s->lm);
}

#endif
