/*
 * An example third-party backend: the M²RNN forward pass in plain fp32, as a plug-in that
 * `m2rnn check` loads by path. It is the template for "Validate your kernel" (README.md):
 * replace the body of example_forward with a call into your kernel.
 *
 *   cc -O2 -fPIC -shared example_plugin.c -o libm2rnn-example.so $(pkg-config --cflags m2rnn)
 *   m2rnn check --backend ./libm2rnn-example.so
 *
 * What a plug-in must do:
 *   - export `const m2rnn_backend *m2rnn_backend_entry(char *why, size_t why_size)`;
 *   - return a table with abi_major = M2RNN_ABI_MAJOR and size = sizeof(m2rnn_backend) (the loader
 *     refuses another major version and reads nothing past `size`), or NULL with a reason in why;
 *   - say which precision class it computes in for each storage dtype (here: "f32");
 *   - fill the ops it implements and leave the others NULL: the checker reports them as SKIP.
 * This one has no backward, so every backward line of its check is a SKIP, never a pass.
 *
 * Set M2RNN_EXAMPLE_BUG=1 to make it multiply by Wᵀ instead of W, and watch the check fail.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "m2rnn/backend.h"

static int bug; /* M2RNN_EXAMPLE_BUG */

static const char *example_class(void *ctx, m2rnn_dtype storage)
{
    (void)ctx;
    (void)storage;
    return "f32"; /* IEEE fp32 arithmetic for every storage dtype */
}

/* Arguments arrive validated (the library's dispatcher checked every shape), so dims can be
 * read off them; m2rnn_recurrence_check_forward also computes N, K, V, the sequence bounds. */
static m2rnn_status example_forward(void *ctx, const m2rnn_recurrence_forward_args *a)
{
    (void)ctx;
    m2rnn_recurrence_dims d;
    m2rnn_status st = m2rnn_recurrence_check_forward(a, &d);
    if (st) return st;
    const int64_t N = d.heads, K = d.key_dim, V = d.value_dim;
    float *H = malloc((size_t)(K * V) * sizeof(float)), *Z = malloc((size_t)(K * V) * sizeof(float));
    if (!H || !Z) {
        free(H);
        free(Z);
        return m2rnn_set_error(M2RNN_ERR_NOMEM, "example: out of memory");
    }
    m2rnn_tensor y = a->y, ht = a->ht;
    for (int64_t b = 0; b < d.batch; b++)
        for (int64_t n = 0; n < N; n++) {
            /* state head n reads source head n / (N / Nx) of each input */
            int64_t hq = n / (N / d.q_heads), hk = n / (N / d.k_heads), hv = n / (N / d.v_heads);
            int64_t hf = n / (N / d.f_heads), hw = n / (N / d.w_heads);
            int64_t start, end;
            m2rnn_recurrence_sequence(&a->in, &d, b, &start, &end);
            for (int64_t e = 0; e < K * V; e++)
                H[e] = m2rnn_tensor_present(&a->in.h0) ? (float)m2rnn_tensor_get(&a->in.h0, (b * N + n) * K * V + e) : 0.0f;
            for (int64_t tok = start; tok < end; tok++) {
                float f = (float)m2rnn_tensor_get(&a->in.f, tok * d.f_heads + hf);
                for (int64_t i = 0; i < K; i++)      /* Z = tanh(H W + k vᵀ) */
                    for (int64_t j = 0; j < V; j++) {
                        float acc = (float)m2rnn_tensor_get(&a->in.k, (tok * d.k_heads + hk) * K + i) *
                                    (float)m2rnn_tensor_get(&a->in.v, (tok * d.v_heads + hv) * V + j);
                        for (int64_t l = 0; l < V; l++) {
                            int64_t w = bug ? (hw * V + j) * V + l : (hw * V + l) * V + j;
                            acc += H[i * V + l] * (float)m2rnn_tensor_get(&a->in.W, w);
                        }
                        Z[i * V + j] = tanhf(acc);
                    }
                for (int64_t e = 0; e < K * V; e++) H[e] = f * H[e] + (1.0f - f) * Z[e];
                for (int64_t j = 0; j < V; j++) {    /* y = Hᵀ q */
                    float acc = 0.0f;
                    for (int64_t i = 0; i < K; i++)
                        acc += (float)m2rnn_tensor_get(&a->in.q, (tok * d.q_heads + hq) * K + i) * H[i * V + j];
                    m2rnn_tensor_set(&y, (tok * N + n) * V + j, acc);
                }
            }
            if (m2rnn_tensor_present(&ht))
                for (int64_t e = 0; e < K * V; e++) m2rnn_tensor_set(&ht, (b * N + n) * K * V + e, H[e]);
        }
    free(H);
    free(Z);
    return M2RNN_OK;
}

static const m2rnn_backend table = {
    .abi_major = M2RNN_ABI_MAJOR,
    .abi_minor = M2RNN_ABI_MINOR,
    .size = sizeof(m2rnn_backend),
    .name = "example",
    .description = "example plug-in: the recurrence forward in plain fp32 (no backward)",
    .precision_class = example_class,
    .recurrence_forward = example_forward,
    /* .recurrence_backward left NULL: not implemented, reported as SKIP */
};

const m2rnn_backend *m2rnn_backend_entry(char *why, size_t why_size)
{
    (void)why;
    (void)why_size;
    const char *b = getenv("M2RNN_EXAMPLE_BUG");
    bug = b && *b == '1';
    return &table;
}
