/* m2rnn info: what was built, the threads it will use, and the backends it can find. */
#include "config.h"

#include <cblas.h>
#include <stdio.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "m2rnn/m2rnn.h"
#include "commands.h"

static const char *plugin_names[] = {"cuda"};

int cmd_info(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: m2rnn info\n\nPrints the version, the BLAS library, OpenMP threads and the backends found.\n"
                   "Plug-ins are looked up as libm2rnn-<name>.so in $M2RNN_PLUGIN_PATH, then %s.\n", M2RNN_PLUGIN_DIR);
            return 0;
        }
        fprintf(stderr, "m2rnn info: unknown option '%s' (try --help)\n", argv[i]);
        return 2;
    }
    printf("m2rnn %s (backend ABI %d.%d)\n", m2rnn_version(), M2RNN_ABI_MAJOR, M2RNN_ABI_MINOR);
#ifdef HAVE_OPENBLAS_GET_CONFIG
    printf("BLAS:    %s\n", openblas_get_config());
#else
    printf("BLAS:    CBLAS (not OpenBLAS)\n");
#endif
#ifdef _OPENMP
    printf("OpenMP:  %d threads (OMP_NUM_THREADS sets it)\n", omp_get_max_threads());
#else
    printf("OpenMP:  off (built with --disable-openmp)\n");
#endif
    printf("backends:\n");
    const m2rnn_backend *ref = m2rnn_backend_reference();
    printf("  %-6s %s\n", ref->name, ref->description);
    for (size_t i = 0; i < sizeof plugin_names / sizeof plugin_names[0]; i++) {
        const m2rnn_backend *be;
        if (m2rnn_backend_open(plugin_names[i], &be) == M2RNN_OK)
            printf("  %-6s %s\n", be->name, be->description ? be->description : "");
        else
            printf("  %-6s unavailable: %s\n", plugin_names[i], m2rnn_last_error());
    }
    return 0;
}
